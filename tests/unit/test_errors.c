/* Tests of the error table and of env_logf (core/errors.c, core/env.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/env.h"
#include "core/errors.h"

static void test_errors_every_code_has_name_and_text(void **state)
{
	for (int e = 0; e >= CS_ERR_LAST; e--) {
		assert_string_not_equal(cs_strerror(e), "unknown error");
		assert_string_not_equal(cs_errname(e), "CS_E?");
	}
	assert_string_equal(cs_strerror(CS_ENOQUORUM), "no quorum");
	assert_string_equal(cs_errname(CS_ENOTLEADER), "CS_ENOTLEADER");
	assert_string_equal(cs_strerror(1), "unknown error");
	assert_string_equal(cs_strerror(CS_ERR_LAST - 1), "unknown error");
}

struct log_capture {
	enum env_log_level level;
	char line[2048];
};

static void capture_log(struct env *env, enum env_log_level level, const char *msg)
{
	struct log_capture *c = env->impl;
	c->level = level;
	strncpy(c->line, msg, sizeof c->line - 1);
}

static void test_env_logf_formats_and_cuts_long_lines(void **state)
{
	struct env_ops ops = {.log = capture_log};
	struct log_capture cap = {0};
	struct env env = {&ops, &cap};
	char long_arg[1500];

	env_logf(&env, ENV_LOG_WARN, "node=%s term=%d", "m1", 3);
	assert_int_equal(cap.level, ENV_LOG_WARN);
	assert_string_equal(cap.line, "node=m1 term=3");
	memset(long_arg, 'x', sizeof long_arg - 1);
	long_arg[sizeof long_arg - 1] = '\0';
	env_logf(&env, ENV_LOG_INFO, "%s", long_arg);
	assert_int_equal(strlen(cap.line), 1023);
	assert_string_equal(cap.line + 1020, "...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_every_code_has_name_and_text),
		cmocka_unit_test(test_env_logf_formats_and_cuts_long_lines),
	};
	return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
