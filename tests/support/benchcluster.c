/* benchcluster: three real swarmd managers for benchmarks (moved from
 * bench_raftreal). See benchcluster.h. */
#define _GNU_SOURCE /* prctl */
#include "tests/support/benchcluster.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/api.pb-c.h"
#include "net/ctlsock.h"
#include "net/procstat.h"
#include "tests/support/benchutil.h"

enum {
	BC_STOP_MS = 10000, /* SIGTERM to SIGKILL */
	BC_CALL_MS = 2000,
};

static void bc_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The process group to kill from a signal handler: a signal during the
 * bench must not leave daemons behind. */
static volatile sig_atomic_t bc_pgid_for_signal;

static void bc_on_signal(int sig)
{
	if (bc_pgid_for_signal > 0)
		kill(-(pid_t)bc_pgid_for_signal, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

int benchcluster_paths(struct benchcluster *c, const char *who)
{
	ssize_t n = readlink("/proc/self/exe", c->bindir, sizeof c->bindir - 1);
	char *slash;

	c->who = who;
	if (n <= 0)
		return -1;
	c->bindir[n] = '\0';
	if (!(slash = strrchr(c->bindir, '/')))
		return -1;
	*slash = '\0';
	/* build/release/bench/ -> build/swarmd (release binaries live in build/) */
	snprintf(c->swarmd, sizeof c->swarmd, "%s/../../swarmd", c->bindir);
	snprintf(c->swarmctl, sizeof c->swarmctl, "%s/../../swarmctl", c->bindir);
	snprintf(c->swarmload, sizeof c->swarmload, "%s/../../swarmload", c->bindir);
	return 0;
}

int benchcluster_init(struct benchcluster *c, const char *prefix)
{
	snprintf(c->root, sizeof c->root, "/tmp/cswarm-%.20s-XXXXXX", prefix);
	if (!mkdtemp(c->root)) {
		fprintf(stderr, "%s: mkdtemp: %s\n", c->who, strerror(errno));
		c->root[0] = '\0';
		return -1;
	}
	signal(SIGINT, bc_on_signal);
	signal(SIGTERM, bc_on_signal);
	signal(SIGHUP, bc_on_signal);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++) {
		struct benchcluster_mgr *m = &c->m[i];
		char root[sizeof c->root], name[sizeof m->name] = {'m', (char)('1' + i)};
		memcpy(root, c->root, sizeof root); /* no overlap for -Wrestrict */
		memcpy(m->name, name, sizeof name);
		snprintf(m->dir, sizeof m->dir, "%s/%s", root, name);
		snprintf(m->sock, sizeof m->sock, "%s/%s.sock", root, name);
		snprintf(m->log, sizeof m->log, "%s/%s.log", root, name);
		m->port = bench_free_port();
		for (int tries = 0;
		     i > 0 && tries < 100 &&
		     (m->port == c->m[0].port || m->port == c->m[i - 1].port);
		     tries++)
			m->port = bench_free_port();
		if (m->port < 0) {
			fprintf(stderr, "%s: no free port\n", c->who);
			return -1;
		}
	}
	return 0;
}

/* Starts manager i (0-based); join_token NULL initialises the cluster.
 * stdout and stderr go to the manager's log file. */
static int bc_mgr_start(struct benchcluster *c, int i, const char *join_token)
{
	struct benchcluster_mgr *m = &c->m[i];
	char listen[32], join[32];
	pid_t pid;

	snprintf(listen, sizeof listen, "127.0.0.1:%d", m->port);
	snprintf(join, sizeof join, "127.0.0.1:%d", c->m[0].port);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(m->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		setpgid(0, c->pgid); /* c->pgid is 0 for m1: a new group */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		{
			/* issue 19: --record FILE when c->record */
			char rec[320];
			const char *argv[20] = {c->swarmd,     "--state-dir",
						m->dir,	       "--listen-addr",
						listen,	       "--hostname",
						m->name,       "--control-socket",
						m->sock,       "--docker-socket",
						"/nonexistent"};
			int n = 11;
			if (join_token) {
				argv[n++] = "--join-addr";
				argv[n++] = join;
				argv[n++] = "--join-token";
				argv[n++] = join_token;
			}
			if (c->record) {
				snprintf(rec, sizeof rec, "%s.rec", m->dir);
				argv[n++] = "--record";
				argv[n++] = rec;
			}
			/* BENCH_SWARMD_LOG=debug: the managers' log level (with
			 * BENCH_KEEP=1, to read their logs after) */
			if (getenv("BENCH_SWARMD_LOG") && *getenv("BENCH_SWARMD_LOG")) {
				argv[n++] = "--log-level";
				argv[n++] = getenv("BENCH_SWARMD_LOG");
			}
			argv[n] = NULL;
			execv(c->swarmd, (char *const *)argv);
		}
		_exit(127);
	}
	/* both sides set the group, so no race with a kill of the group */
	setpgid(pid, c->pgid ? c->pgid : pid);
	if (!c->pgid) {
		c->pgid = pid;
		bc_pgid_for_signal = pid;
	}
	m->pid = pid;
	return 0;
}

bool benchcluster_alive(struct benchcluster *c)
{
	for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++) {
		int st;
		if (c->m[i].pid > 0 &&
		    waitpid(c->m[i].pid, &st, WNOHANG) == c->m[i].pid) {
			fprintf(stderr, "%s: %s exited (status %d)\n", c->who,
				c->m[i].name,
				WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
			c->m[i].pid = 0;
			return false;
		}
	}
	return true;
}

void benchcluster_stop(struct benchcluster *c)
{
	double until = bench_now() + BC_STOP_MS / 1000.0;
	bool left = true;

	if (!c->pgid)
		return;
	kill(-c->pgid, SIGTERM);
	while (left && bench_now() < until) {
		left = false;
		for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++)
			if (c->m[i].pid > 0) {
				if (waitpid(c->m[i].pid, NULL, WNOHANG) == 0)
					left = true;
				else
					c->m[i].pid = 0;
			}
		if (left)
			bc_sleep_ms(20);
	}
	if (left) {
		fprintf(stderr, "%s: daemons ignored SIGTERM for %d ms\n", c->who,
			BC_STOP_MS);
		kill(-c->pgid, SIGKILL);
		for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++)
			if (c->m[i].pid > 0)
				waitpid(c->m[i].pid, NULL, 0);
	}
	bc_pgid_for_signal = 0;
	c->pgid = 0;
}

void benchcluster_dump_logs(const struct benchcluster *c)
{
	for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++) {
		char line[512];
		long at;
		FILE *f = fopen(c->m[i].log, "r");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		at = ftell(f);
		fseek(f, at > 4000 ? at - 4000 : 0, SEEK_SET);
		fprintf(stderr, "---- %s (end of log)\n", c->m[i].name);
		while (fgets(line, sizeof line, f))
			fputs(line, stderr);
		fclose(f);
	}
}

/* One request to m1, one answer; NULL on no answer. */
static Cs__ControlResponse *bc_call(struct benchcluster *c, Cs__ControlOp op)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp = NULL;
	char err[256];

	req.id = 1;
	req.op = op;
	if (ctlsock_request(c->m[0].sock, &req, &resp, BC_CALL_MS, err, sizeof err))
		return NULL;
	return resp;
}

/* Asks m1 for the manager join token until it answers (at most ms). */
static char *bc_manager_token(struct benchcluster *c, int ms)
{
	double until = bench_now() + ms / 1000.0;

	while (bench_now() < until && benchcluster_alive(c)) {
		Cs__ControlResponse *resp =
			bc_call(c, CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT);
		char *token = NULL;
		if (resp && resp->status == 0 && resp->cluster &&
		    resp->cluster->manager_token && *resp->cluster->manager_token)
			token = strdup(resp->cluster->manager_token);
		if (resp)
			cs__control_response__free_unpacked(resp, NULL);
		if (token)
			return token;
		bc_sleep_ms(50);
	}
	return NULL;
}

/* The raft id of the leader m1's cluster record names (0: unknown). */
static uint64_t bc_leader_raft_id(struct benchcluster *c)
{
	Cs__ControlResponse *resp =
		bc_call(c, CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT);
	uint64_t id = 0;

	if (resp && resp->status == 0 && resp->cluster)
		id = resp->cluster->leader_raft_id;
	if (resp)
		cs__control_response__free_unpacked(resp, NULL);
	return id;
}

int benchcluster_wait_managers(struct benchcluster *c, int ms)
{
	double until = bench_now() + ms / 1000.0;

	while (bench_now() < until && benchcluster_alive(c)) {
		uint64_t leader_id = bc_leader_raft_id(c);
		Cs__ControlResponse *resp =
			bc_call(c, CS__CONTROL_OP__CONTROL_OP_NODE_LIST);
		int managers = 0, leader = -1;

		for (size_t i = 0; resp && resp->status == 0 && i < resp->n_nodes; i++) {
			const Cs__Node *n = resp->nodes[i];
			const Cs__ManagerStatus *st = n->manager_status;
			if (n->role != CS__NODE_ROLE__NODE_ROLE_MANAGER || !st)
				continue;
			managers++;
			if (st->leader || (leader_id && st->raft_id == leader_id))
				for (int j = 0; j < BENCHCLUSTER_MANAGERS; j++)
					if (n->hostname &&
					    strcmp(n->hostname, c->m[j].name) == 0)
						leader = j;
		}
		if (resp)
			cs__control_response__free_unpacked(resp, NULL);
		if (managers == BENCHCLUSTER_MANAGERS && leader >= 0)
			return leader;
		bc_sleep_ms(100);
	}
	return -1;
}

int benchcluster_start(struct benchcluster *c, int ms)
{
	char *token;
	int leader = -1;

	if (bc_mgr_start(c, 0, NULL))
		return -1;
	if (!(token = bc_manager_token(c, ms))) {
		fprintf(stderr, "%s: m1 gave no manager token\n", c->who);
		return -1;
	}
	for (int i = 1; i < BENCHCLUSTER_MANAGERS; i++)
		if (bc_mgr_start(c, i, token))
			goto out;
	if ((leader = benchcluster_wait_managers(c, ms)) < 0)
		fprintf(stderr, "%s: no cluster of %d managers after %d ms\n", c->who,
			BENCHCLUSTER_MANAGERS, ms);
out:
	free(token);
	return leader;
}

int benchcluster_drain(struct benchcluster *c, int leader)
{
	for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++) {
		Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
		Cs__ControlResponse *resp = NULL;
		char err[256];
		int rv;

		req.id = 10 + (uint64_t)i;
		req.op = CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE;
		req.name = c->m[i].name;
		req.set_availability = true;
		req.availability = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
		rv = ctlsock_request(c->m[leader].sock, &req, &resp, BC_CALL_MS * 5, err,
				     sizeof err);
		if (rv == 0 && resp->status != 0)
			snprintf(err, sizeof err, "%s",
				 resp->error ? resp->error : "refused");
		if (rv || resp->status != 0) {
			fprintf(stderr, "%s: drain %s: %s\n", c->who, c->m[i].name, err);
			if (resp)
				cs__control_response__free_unpacked(resp, NULL);
			return -1;
		}
		cs__control_response__free_unpacked(resp, NULL);
	}
	return 0;
}

double benchcluster_cpu(const struct benchcluster *c)
{
	double secs = 0;

	for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++) {
		struct procstat st;
		if (procstat_read(c->m[i].pid, &st))
			return -1;
		secs += st.cpu_s;
	}
	return secs;
}

void benchcluster_fini(struct benchcluster *c)
{
	const char *keep = getenv("BENCH_KEEP");
	if (c->root[0] && keep && *keep && strcmp(keep, "0") != 0)
		fprintf(stderr,
			"%s: BENCH_KEEP: the managers' state and logs are in %s\n",
			c->who, c->root);
	else if (c->root[0])
		bench_rm_tree(c->root);
}
