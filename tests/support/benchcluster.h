/* benchcluster: three real swarmd managers on loopback for the benchmarks
 * that measure real daemons (bench_raftreal, bench_swarmload): paths of the
 * built binaries, a temporary tree, the processes (one process group, killed
 * on a signal and with their parent), the cluster's start (m1 initialises,
 * m2 and m3 join with the manager token), the leader, their CPU, their logs.
 * No Docker (--docker-socket /nonexistent). Test code only. */
#ifndef TESTS_BENCHCLUSTER_H
#define TESTS_BENCHCLUSTER_H

#include <stdbool.h>
#include <sys/types.h>

#define BENCHCLUSTER_MANAGERS 3

struct benchcluster_mgr {
	pid_t pid;
	int port;
	char dir[256];
	char sock[300];
	char log[300];
	char name[8];
};

struct benchcluster {
	const char *who; /* the bench's name, for messages */
	char root[64];
	char bindir[256]; /* where the bench binary is */
	char swarmd[300]; /* build/swarmd */
	char swarmctl[300];
	char swarmload[300];
	struct benchcluster_mgr m[BENCHCLUSTER_MANAGERS];
	pid_t pgid; /* the daemons' process group (m1's pid) */
	/* issue 19: set before benchcluster_start: each manager runs with
	 * --record <root>/<name>.rec (record-overhead in bench_raftreal) */
	bool record;
};

/* benchcluster_paths fills the binaries' paths from this executable's
 * (build/release/bench/X -> build/swarmd, ...). Returns 0 or -1. */
int benchcluster_paths(struct benchcluster *c, const char *who);

/* benchcluster_init makes a temporary root /tmp/cswarm-<prefix>-XXXXXX,
 * names the managers and picks their ports, and kills the daemons on
 * SIGINT, SIGTERM and SIGHUP. Returns 0 or -1 (said why on stderr). */
int benchcluster_init(struct benchcluster *c, const char *prefix);

/* benchcluster_start starts m1, then m2 and m3 with its manager token, and
 * waits (at most ms) until the cluster has 3 managers and a leader. Returns
 * the leader's index, or -1 (said why). */
int benchcluster_start(struct benchcluster *c, int ms);

/* benchcluster_wait_managers waits (at most ms) until m1's NODE_LIST shows
 * 3 managers, one leading. Returns the leader's index, or -1. */
int benchcluster_wait_managers(struct benchcluster *c, int ms);

/* benchcluster_drain drains the 3 managers (NODE_UPDATE availability
 * DRAIN through m[leader]'s socket): a control plane that runs no tasks
 * (the managers have no Docker, so a task placed on one would be
 * rejected and placed again after the restart delay). Returns 0 or -1
 * (said why). */
int benchcluster_drain(struct benchcluster *c, int leader);

/* benchcluster_alive: false (and says so) when a daemon exited. */
bool benchcluster_alive(struct benchcluster *c);

/* benchcluster_cpu returns the managers' CPU time so far (user + system,
 * seconds, from /proc), or -1. */
double benchcluster_cpu(const struct benchcluster *c);

/* benchcluster_dump_logs prints the end of each daemon's log on stderr. */
void benchcluster_dump_logs(const struct benchcluster *c);

/* benchcluster_stop: SIGTERM to the group, SIGKILL what is left after 10 s. */
void benchcluster_stop(struct benchcluster *c);

/* benchcluster_fini removes the root (kept, and named on stderr, when the
 * environment has BENCH_KEEP=1). */
void benchcluster_fini(struct benchcluster *c);

#endif
