/* Tests of sort_u32 (core/sort.c): order, stability, edge sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/hash.h"
#include "core/sort.h"

enum { N = 1000 };

/* keys[i] for index i: few distinct values, so that many are equal */
static int by_key(const void *ctx, uint32_t a, uint32_t b)
{
	const uint32_t *keys = ctx;
	return keys[a] < keys[b] ? -1 : keys[a] > keys[b];
}

static void test_sort_orders_and_keeps_equal_ones_in_order(void **state)
{
	static uint32_t keys[N], v[N], tmp[N];

	for (uint32_t i = 0; i < N; i++) {
		keys[i] = (uint32_t)(hash_mix64(i + 1) % 17);
		v[i] = i;
	}
	sort_u32(v, tmp, N, by_key, keys);
	for (size_t k = 1; k < N; k++) {
		assert_true(keys[v[k - 1]] <= keys[v[k]]);
		if (keys[v[k - 1]] == keys[v[k]])
			assert_true(v[k - 1] < v[k]); /* stable */
	}
	/* a permutation: every index once */
	{
		static uint8_t seen[N];
		for (size_t k = 0; k < N; k++) {
			assert_int_equal(seen[v[k]], 0);
			seen[v[k]] = 1;
		}
	}
}

static void test_sort_small_sizes(void **state)
{
	uint32_t keys[3] = {5, 1, 3}, v[3] = {0, 1, 2}, tmp[3];

	sort_u32(v, tmp, 0, by_key, keys); /* nothing to do */
	sort_u32(v, tmp, 1, by_key, keys);
	assert_int_equal(v[0], 0);
	sort_u32(v, tmp, 3, by_key, keys);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 2);
	assert_int_equal(v[2], 0);
}

/* The uint64 comparison every module's qsort and bsearch of ids share:
 * ascending over the whole range (a difference cast to int would order
 * ids that differ in their high bits wrongly), equal ones equal. */
static void test_sort_u64_cmp_orders_the_whole_range(void **state)
{
	uint64_t v[] = {UINT64_MAX, 1ull << 63, 0, 1ull << 32, 1, (1ull << 63) + 1, 1};
	const uint64_t want[] = {
		0, 1, 1, 1ull << 32, 1ull << 63, (1ull << 63) + 1, UINT64_MAX};
	uint64_t key = 1ull << 32;
	(void)state;

	qsort(v, sizeof v / sizeof *v, sizeof *v, sort_u64_cmp);
	for (size_t i = 0; i < sizeof v / sizeof *v; i++)
		assert_true(v[i] == want[i]);
	assert_int_equal(sort_u64_cmp(&v[1], &v[2]), 0);
	assert_true(bsearch(&key, v, sizeof v / sizeof *v, sizeof *v, sort_u64_cmp) ==
		    &v[3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sort_orders_and_keeps_equal_ones_in_order),
		cmocka_unit_test(test_sort_small_sizes),
		cmocka_unit_test(test_sort_u64_cmp_orders_the_whole_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
