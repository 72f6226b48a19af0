/* bench_swarmload: end to end on real daemons: 3 swarmd managers on
 * loopback (tests/support/benchcluster, no Docker; drained, so that
 * every task goes to the load's agents), build/swarmload with A
 * agents (each a real agent with its own certificate, the fake executor)
 * joining them, then a service of T replicas created through the leader's
 * control socket. swarmload prints the phases (join, hold: heartbeats/s,
 * create) with each manager's CPU and RSS, and
 *   e2e: T tasks on A agents: S s (R tasks/s)
 * (from SERVICE_CREATE sent to the last fake container started; the control
 * API's all-RUNNING time on the next line), then the node-death phase (the
 * last A/10 agents stopped at once as process deaths:
 *   node-death: K agents killed: tasks running elsewhere in T s (detection D s))
 * and the leader-kill phase (the bench names the leader's pid; swarmload
 * sends it SIGKILL once the tasks run elsewhere, and reads the control API
 * through a follower's socket from then on:
 *   leader-kill: N agents in session with the new leader in T s (...); tasks restarted: 0).
 * The open-file limit is raised to the hard limit first (the managers
 * inherit it: the leader holds a connection per agent).
 *
 * Usage: bench_swarmload [A [T [SWARMLOAD-OPTION...]]]  (T 0: no service, no
 * node-death: the hold figure at A agents; defaults 1000 agents, 10000 tasks: about
 * a minute on 2 cores, most of it joining; the full size is
 * `bench_swarmload 10000 100000`; options after T go to swarmload, e.g.
 * --fail-permille 10 or --state-dir DIR to keep the agents' log). Without build/swarmd and build/swarmload
 * it prints `e2e: skipped`. A failure prints the managers' logs' ends. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/benchcluster.h"

enum {
	BENCH_AGENTS = 1000,
	BENCH_TASKS = 10000,
	BENCH_START_MS = 60000,
};

static int bench_swarmload(struct benchcluster *c, int leader, unsigned agents,
			   unsigned long tasks, int extra_count, char **extra)
{
	char join[128], a[16], t[24], k[16], lpid[16], watch[BENCHCLUSTER_MANAGERS][32];
	int after = (leader + 1) % BENCHCLUSTER_MANAGERS;
	const char *argv[64];
	int argc = 0, st;
	pid_t pid;

	snprintf(join, sizeof join, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
		 c->m[0].port, c->m[1].port, c->m[2].port);
	snprintf(a, sizeof a, "%u", agents);
	snprintf(t, sizeof t, "%lu", tasks);
	argv[argc++] = c->swarmload;
	argv[argc++] = "--join";
	argv[argc++] = join;
	argv[argc++] = "--control-socket";
	argv[argc++] = c->m[leader].sock;
	argv[argc++] = "--agents";
	argv[argc++] = a;
	if (tasks) {
		argv[argc++] = "--replicas";
		argv[argc++] = t;
	}
	argv[argc++] = "--hold";
	argv[argc++] = "3";
	snprintf(k, sizeof k, "%u", agents / 10 ? agents / 10 : 1);
	snprintf(lpid, sizeof lpid, "%d", (int)c->m[leader].pid);
	if (agents > 1 && tasks) {
		argv[argc++] = "--kill-agents";
		argv[argc++] = k;
	}
	argv[argc++] = "--kill-leader";
	argv[argc++] = lpid;
	argv[argc++] = "--after-socket";
	argv[argc++] = c->m[after].sock;
	for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++) {
		snprintf(watch[i], sizeof watch[i], "%s%s=%d", c->m[i].name,
			 i == leader ? "(leader)" : "", (int)c->m[i].pid);
		argv[argc++] = "--watch";
		argv[argc++] = watch[i];
	}
	for (int i = 0; i < extra_count && argc < 63; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(c->swarmload, (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	/* the leader swarmload killed (or not, when it failed before) */
	if (waitpid(c->m[leader].pid, NULL, WNOHANG) == c->m[leader].pid)
		c->m[leader].pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_swarmload: swarmload failed (status %d)\n",
			WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
		return -1;
	}
	return benchcluster_alive(c) ? 0 : -1;
}

int main(int argc, char **argv)
{
	static struct benchcluster c;
	unsigned long agents = argc > 1 ? strtoul(argv[1], NULL, 10) : BENCH_AGENTS;
	unsigned long tasks = argc > 2 ? strtoul(argv[2], NULL, 10) : BENCH_TASKS;
	int leader, rv = 1;

	if (agents == 0 || agents > 100000) {
		fprintf(stderr, "usage: bench_swarmload [agents (1..100000) [tasks (0: "
				"none: join, hold, leader-kill)]]\n");
		return 2;
	}
	if (benchcluster_paths(&c, "bench_swarmload"))
		return 1;
	{ /* all the open files this machine allows, for the managers too (the
	   leader holds about two per agent): the hard limit, or past it
	   when privileged */
		struct rlimit rl;
		rlim_t want = (rlim_t)agents * 4 + 4096;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			struct rlimit more = {want, want};
			if (rl.rlim_max >= want || setrlimit(RLIMIT_NOFILE, &more) != 0) {
				rl.rlim_cur = rl.rlim_max;
				setrlimit(RLIMIT_NOFILE, &rl);
			}
		}
	}
	if (access(c.swarmd, X_OK) || access(c.swarmload, X_OK)) {
		printf("e2e: skipped (%s or %s not built)\n", c.swarmd, c.swarmload);
		return 0;
	}
	if (benchcluster_init(&c, "bench-swarmload"))
		goto out;
	if ((leader = benchcluster_start(&c, BENCH_START_MS)) >= 0 &&
	    benchcluster_drain(&c, leader) == 0 &&
	    bench_swarmload(&c, leader, (unsigned)agents, tasks, argc > 3 ? argc - 3 : 0,
			    argv + 3) == 0)
		rv = 0;
	else
		benchcluster_dump_logs(&c);
	benchcluster_stop(&c);
out:
	benchcluster_fini(&c);
	return rv;
}
