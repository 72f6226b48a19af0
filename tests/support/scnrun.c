/* scnrun: parse and run a scenario text for a unit test (see scnrun.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sim/scenario.h"
#include "tests/support/scnrun.h"

struct runner_result scnrun(const char *text, uint64_t seed,
			    const struct runner_opts *opts)
{
	static const struct runner_opts defaults = {0};
	struct scn_script s;
	struct runner_result r;
	char err[512];

	if (scn_parse("t.scn", text, strlen(text), &s, err, sizeof err))
		fail_msg("parse: %s", err);
	assert_int_equal(runner_run(&s, seed, opts ? opts : &defaults, &r), 0);
	scn_free(&s);
	if (!r.passed)
		print_message("%s\n", r.message);
	return r;
}
