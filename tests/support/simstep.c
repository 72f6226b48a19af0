/* simstep: a checked step of a simulated cluster (see simstep.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sim/simexec.h"
#include "tests/support/simstep.h"

bool simstep(struct world *w, struct simcluster *c, bool runtime, us_t end_us)
{
	char msg[256];

	if (!world_step(w, end_us)) {
		world_advance(w, end_us);
		return false;
	}
	if (!simcluster_check(c, msg, sizeof msg))
		fail_msg("%s", msg);
	if (runtime && !simexec_check(world_exec(w), msg, sizeof msg))
		fail_msg("%s", msg);
	return true;
}
