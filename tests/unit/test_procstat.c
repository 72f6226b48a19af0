/* Tests of net/procstat.c: the /proc parsers the load generator reports the
 * managers' CPU and memory with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include "net/procstat.h"

static void test_procstat_stat_with_odd_name(void **state)
{
	/* a command name with spaces and a ')' of its own */
	const char *line = "4242 (swarm d) x) S 1 4242 4242 0 -1 4194560 1200 0 3 0 "
			   "1234 567 0 0 20 0 3 0 100 1000000 2000 184467 1 1 0\n";
	uint64_t ut = 0, st = 0;
	(void)state;
	assert_int_equal(procstat_parse_stat(line, &ut, &st), 0);
	assert_int_equal(ut, 1234);
	assert_int_equal(st, 567);
	assert_int_equal(procstat_parse_stat("4242 (no close paren S 1", &ut, &st), -1);
	assert_int_equal(procstat_parse_stat("1 (x) S 1 2", &ut, &st), -1);
	assert_int_equal(procstat_parse_stat(NULL, &ut, &st), -1);
}

static void test_procstat_rss(void **state)
{
	uint64_t b = 0;
	(void)state;
	assert_int_equal(procstat_parse_rss("Name:\tswarmd\nVmPeak:\t  9 kB\n"
					    "VmRSS:\t  123456 kB\nThreads: 3\n",
					    &b),
			 0);
	assert_int_equal(b, 123456ull * 1024);
	assert_int_equal(procstat_parse_rss("Name:\tx\nThreads: 1\n", &b), -1);
}

static void test_procstat_reads_itself(void **state)
{
	struct procstat s = {0};
	(void)state;
	assert_int_equal(procstat_read(getpid(), &s), 0);
	assert_true(s.rss_bytes > 0);
	assert_true(s.cpu_s >= 0);
	assert_int_equal(procstat_read(-1, &s), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_procstat_stat_with_odd_name),
		cmocka_unit_test(test_procstat_rss),
		cmocka_unit_test(test_procstat_reads_itself),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
