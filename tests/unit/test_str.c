/* Tests of str_copy (core/str.h): what snprintf(dst, size, "%s", src)
 * writes, byte for byte, for every length around the bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/str.h"

static void test_str_copy_writes_what_snprintf_writes(void **state)
{
	const char src[] = "0123456789abcdef";
	(void)state;

	for (size_t size = 1; size <= 20; size++) {
		for (size_t len = 0; len < sizeof src; len++) {
			char want[24], got[24], in[24];
			memcpy(in, src, len);
			in[len] = '\0';
			memset(want, 'x', sizeof want);
			memset(got, 'x', sizeof got);
			assert_int_equal(snprintf(want, size, "%s", in), (int)len);
			str_copy(got, size, in);
			/* nothing written past size either */
			assert_memory_equal(got, want, sizeof got);
			assert_true(strlen(got) < size);
		}
	}
}

static void test_str_copy_of_null_is_empty(void **state)
{
	char dst[8] = "full";
	(void)state;

	str_copy(dst, sizeof dst, NULL);
	assert_string_equal(dst, "");
	str_copy(dst, 1, "abc");
	assert_string_equal(dst, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_copy_writes_what_snprintf_writes),
		cmocka_unit_test(test_str_copy_of_null_is_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
