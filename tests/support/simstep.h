/* simstep: one checked step of a simulated cluster, for the unit tests that
 * drive one event by event (test_agent, test_ca, test_dispatcher,
 * test_manager): the world's next event, then the cluster's invariants and,
 * when asked, the simulated runtime's. A broken invariant fails the calling
 * cmocka test, so only the unit tests link it. */
#ifndef TESTS_SIMSTEP_H
#define TESTS_SIMSTEP_H

#include <stdbool.h>

#include "sim/cluster.h"
#include "sim/world.h"

/* simstep runs w's next event before end_us, then checks c's invariants
 * (simcluster_check) and, with runtime, the simulated runtime's invariant
 * 3 (simexec_check), failing the test with the message of the first that
 * broke. Returns true after an event; false when none was left before
 * end_us, w then advanced to end_us and nothing checked. Borrows w and c. */
bool simstep(struct world *w, struct simcluster *c, bool runtime, us_t end_us);

#endif
