/* Tests of the simulator's random streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sim/rng.h"

static void test_rng_same_triple_same_stream(void **state)
{
	struct rng a, b;
	rng_init(&a, 42, RNG_NET, 3);
	rng_init(&b, 42, RNG_NET, 3);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rng_next(&a), rng_next(&b));
}

static void test_rng_purposes_and_indexes_split_streams(void **state)
{
	struct rng base, other_purpose, other_index, other_seed;
	uint64_t x;
	rng_init(&base, 42, RNG_NET, 3);
	rng_init(&other_purpose, 42, RNG_NODE, 3);
	rng_init(&other_index, 42, RNG_NET, 4);
	rng_init(&other_seed, 43, RNG_NET, 3);
	x = rng_next(&base);
	assert_int_not_equal(x, rng_next(&other_purpose));
	assert_int_not_equal(x, rng_next(&other_index));
	assert_int_not_equal(x, rng_next(&other_seed));
}

static void test_rng_range_stays_inside_and_covers(void **state)
{
	struct rng r;
	int seen[10] = {0};
	rng_init(&r, 1, RNG_TEST, 0);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rng_range(&r, 5, 14);
		assert_true(v >= 5 && v <= 14);
		seen[v - 5]++;
	}
	for (int i = 0; i < 10; i++)
		assert_true(seen[i] > 9000 && seen[i] < 11000);
	assert_int_equal(rng_range(&r, 7, 7), 7);
}

static void test_rng_chance_matches_rate(void **state)
{
	struct rng r;
	int hits = 0;
	rng_init(&r, 9, RNG_TEST, 0);
	for (int i = 0; i < 100000; i++)
		hits += rng_chance_ppm(&r, 250000);
	assert_true(hits > 24000 && hits < 26000);
	assert_int_equal(rng_chance_ppm(&r, 0), 0);
	assert_int_equal(rng_chance_ppm(&r, 1000000), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rng_same_triple_same_stream),
		cmocka_unit_test(test_rng_purposes_and_indexes_split_streams),
		cmocka_unit_test(test_rng_range_stays_inside_and_covers),
		cmocka_unit_test(test_rng_chance_matches_rate),
	};
	return cmocka_run_group_tests_name("rng", tests, NULL, NULL);
}
