/* realworld: `swarmsim run FILE --real` (issue 19): runs a parsed scenario
 * against real swarmd processes and real Docker on this machine. Each node
 * gets a network namespace (veth to a bridge in a hub namespace), its own
 * dockerd and state directory; network faults are nftables rules in the
 * nodes' namespaces; conditions read the leader through swarmctl and ground
 * truth from the dockerds. Durations are real time. Everything a run makes
 * is removed when it ends, fails or is interrupted (SIGINT, SIGTERM,
 * SIGHUP). It lives beside swarmsim's main (not in libsim): it forks,
 * execs and reads the clock, which the one rule keeps out of sim's library.
 * Needs root. The pure half (what can be realised, rule text) is
 * sim/realplan.c. */
#ifndef SIM_REALWORLD_H
#define SIM_REALWORLD_H

#include <stdbool.h>
#include <stdint.h>

#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/timeline.h"

struct realworld_opts {
	const char *bin_dir; /* where swarmd and swarmctl are (build) */
	bool verbose;	     /* say each step on stderr */
	bool keep_logs;	     /* leave the daemons' logs in /tmp/rw-logs.TAG */
	/* NULL, or a timeline (timeline_new) to fill with what was observed:
	 * nodes down, who led, cuts, running tasks (sampled every second),
	 * the commands (--report) */
	struct timeline *tl;
};

/* realworld_netem_works says whether this kernel takes a netem qdisc (it
 * tries one in a namespace of its own, then removes it). */
bool realworld_netem_works(void);

/* realworld_run runs script (already checked by realplan_check and
 * scaled) on real daemons. Returns 0 with *res filled: passed, or the
 * failing line and why; sim_us is the real time the scenario took (from
 * the start of m1's swarmd: the namespaces, dockerds and images are built
 * before, as the machines), events the commands and observations, hash a
 * hash of the commands and whether each failed (the same for two runs
 * that pass the same way; it says nothing of timing). Returns CS_ECANCELED when a signal stopped it
 * (after cleaning up), or another error when the world could not be built
 * (said in res->message). Borrows everything. */
int realworld_run(const struct scn_script *script, const struct realworld_opts *opts,
		  struct runner_result *res);

#endif
