/* scnrun: the unit tests' one way to run a scenario text through the
 * simulator's runner (sim/runner.c) and get its result. It fails the
 * calling cmocka test on a text that does not parse or a runner error, so
 * only the unit tests link it (the benches link tests/support/ from the same
 * archive and never pull it in). */
#ifndef TESTS_SCNRUN_H
#define TESTS_SCNRUN_H

#include <stdint.h>

#include "sim/runner.h"

/* scnrun parses text as the scenario "t.scn" and runs it under seed with
 * opts (borrowed; NULL for the defaults). Returns the run's result; when the
 * scenario failed, its message is printed first. A text that does not parse,
 * or a runner_run that returns non-zero, fails the test. With opts->record
 * the caller frees the result with runner_result_free. */
struct runner_result scnrun(const char *text, uint64_t seed,
			    const struct runner_opts *opts);

#endif
