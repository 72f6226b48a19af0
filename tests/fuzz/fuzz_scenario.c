/* fuzz_scenario: the scenario parser (sim/scenario.c) on any text.
 * Properties: it accepts (0 and a script) or refuses with one line
 * "PATH:LINE:COL: message" (CS_EINVAL), nothing else; a refusal leaves the
 * script empty; parsing the same text twice gives the same verdict, the
 * same message and the same number of commands (the parser keeps no state
 * between calls); a script's commands and node counts are bounded by the
 * text (no command from nothing). */
#include <string.h>

#include "core/errors.h"
#include "sim/scenario.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scn_script a, b;
	char ea[512] = "", eb[512] = "";
	int ra, rb;

	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	ra = scn_parse("f.scn", (const char *)data, size, &a, ea, sizeof ea);
	rb = scn_parse("f.scn", (const char *)data, size, &b, eb, sizeof eb);
	FUZZ_CHECK(ra == rb);
	FUZZ_CHECK(strcmp(ea, eb) == 0);
	FUZZ_CHECK(ra == 0 || ra == CS_EINVAL);
	if (ra == 0) {
		FUZZ_CHECK(a.cmd_count == b.cmd_count);
		FUZZ_CHECK(a.cmd_count <= size);
		FUZZ_CHECK(a.managers_total == b.managers_total &&
			   a.workers_total == b.workers_total);
	} else {
		FUZZ_CHECK(strncmp(ea, "f.scn:", 6) == 0);
		FUZZ_CHECK(strchr(ea, '\n') == NULL);
		FUZZ_CHECK(a.cmd_count == 0);
	}
	scn_free(&a);
	scn_free(&b);
	return 0;
}
