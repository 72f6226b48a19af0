/* bench_raftreal: committed control-API writes per second through 3 real
 * managers (build/swarmd: libraft over our sqlite raft_io, every connection
 * between them TLS 1.3 through net/tls) on loopback, and
 * the latency of `swarmctl service ls` with 1,000 services.
 *
 * Three swarmd processes (one process group, data under /tmp, no Docker:
 * every service has 0 replicas) form a cluster: m1 initialises, m2 and m3
 * join with the manager token from CLUSTER_INSPECT. Then:
 *   1. 1,000 SERVICE_CREATEs (svc-0..999; not timed),
 *   2. `swarmctl --socket ... service ls`, 20 runs of the real binary,
 *   3. W SERVICE_CREATEs (bench-0..W-1) to the leader's control socket, at
 *      most C in flight (pipelined on a few connections), timed from the
 *      first send to the last success answer.
 * Prints `swarmctl service ls: ...` and `raft-real: N commits/s (...)`, and
 * writes the figure to raftreal.txt beside this binary: bench_raftuv, which
 * `make bench` runs next (names sort), prints `raft-real/raft-uv: R`.
 *
 * Without build/swarmd and build/swarmctl it prints `raft-real: skipped`.
 *
 * Usage: bench_raftreal [W [C]]  (defaults: 10000 writes, 64 in flight, the
 * same load as bench_raftuv's). */
#define _GNU_SOURCE /* prctl */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "tests/support/benchcluster.h"
#include "tests/support/benchutil.h"

enum {
	BENCH_WRITES = 10000,
	BENCH_INFLIGHT = 64,
	BENCH_INFLIGHT_MAX = 1024,
	BENCH_PER_CONN = 16, /* requests in flight on one connection (ctlsock: 64) */
	BENCH_LS_SERVICES = 1000,
	BENCH_LS_RUNS = 20,
	BENCH_ATTEMPTS_MAX = 100, /* per write, on not-leader/no-quorum answers */
	BENCH_START_MS = 60000,	  /* cluster up and 3 managers */
	BENCH_LOAD_MS = 300000,	  /* one load phase */
	BENCH_FRAME_BYTES_MAX = 16 * 1024 * 1024, /* as net/ctlsock.h */
	BENCH_REC_WRITES = 1000,		  /* per timed load of record-overhead */
};

static void bench_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

struct bench {
	struct benchcluster c; /* the 3 managers */
	uint64_t writes, inflight_max;
	bool print_latency; /* the timed load's */
};

/* ---------------------------------------------------------------- framing */

static int bench_connect(const char *path)
{
	struct sockaddr_un sa = {0};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bench_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Sends req as one frame: a 4-byte big-endian length, then the message. */
static int bench_send(int fd, const Cs__ControlRequest *req)
{
	size_t len = cs__control_request__get_packed_size(req);
	uint8_t *buf = malloc(len + 4);
	int rv;

	if (!buf)
		return -1;
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	cs__control_request__pack(req, buf + 4);
	rv = bench_write_all(fd, buf, len + 4);
	free(buf);
	return rv;
}

/* A connection's read side: bytes in, whole responses out. */
struct bench_conn {
	int fd;
	int inflight;
	uint8_t *buf;
	size_t len, cap;
};

/* Reads what is there (call after POLLIN). Returns 0, or -1 on EOF/error. */
static int bench_conn_read(struct bench_conn *c)
{
	ssize_t k;

	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 131072;
		uint8_t *p = realloc(c->buf, cap);
		if (!p)
			return -1;
		c->buf = p;
		c->cap = cap;
	}
	k = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (k < 0 && errno == EINTR)
		return 0;
	if (k <= 0)
		return -1;
	c->len += (size_t)k;
	return 0;
}

/* The next whole response in c's buffer, or NULL (none yet; *bad set when
 * the bytes are not a response). Free with
 * cs__control_response__free_unpacked. */
static Cs__ControlResponse *bench_conn_next(struct bench_conn *c, bool *bad)
{
	Cs__ControlResponse *resp;
	size_t len;

	*bad = false;
	if (c->len < 4)
		return NULL;
	len = (size_t)c->buf[0] << 24 | (size_t)c->buf[1] << 16 | (size_t)c->buf[2] << 8 |
	      c->buf[3];
	if (len > BENCH_FRAME_BYTES_MAX) {
		*bad = true;
		return NULL;
	}
	if (c->len < len + 4)
		return NULL;
	resp = cs__control_response__unpack(NULL, len, c->buf + 4);
	memmove(c->buf, c->buf + 4 + len, c->len - 4 - len);
	c->len -= 4 + len;
	if (!resp)
		*bad = true;
	return resp;
}

/* ---------------------------------------------------------------- load */

/* The spec of a benchmark service: 0 replicas (nothing runs), and enough
 * of a container spec that the service record is about the size of
 * bench_raftuv's entries. */
struct bench_spec {
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec container;
	char name[48];
	char *command[3];
	char *env[5];
};

static void bench_spec_init(struct bench_spec *s)
{
	static const char *const command[] = {"sh", "-c", "exec sleep 3600"};
	static const char *const env[] = {
		"BENCH_ROLE=control-plane-write-load",
		"BENCH_REGION=loopback-127-0-0-1",
		"BENCH_NOTE=replicas-0-so-nothing-runs",
		"BENCH_PAD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"BENCH_PAD2=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	};

	cs__service_spec__init(&s->spec);
	cs__task_spec__init(&s->task);
	cs__container_spec__init(&s->container);
	for (size_t i = 0; i < 3; i++)
		s->command[i] = (char *)command[i];
	for (size_t i = 0; i < 5; i++)
		s->env[i] = (char *)env[i];
	s->container.image = "registry.example.com/cswarm/bench-app:1.0.0";
	s->container.n_command = 3;
	s->container.command = s->command;
	s->container.n_env = 5;
	s->container.env = s->env;
	s->task.container = &s->container;
	s->spec.task = &s->task;
	s->spec.replicas = 0;
	s->spec.name = s->name;
}

/* The load: count SERVICE_CREATEs of prefix-0..count-1 to sock, at most
 * inflight_max in flight, spread over connections of BENCH_PER_CONN.
 * Answers CS_ENOTLEADER, CS_ENOQUORUM, CS_EAGAIN, CS_ETIMEDOUT, CS_EUNREACH
 * are asked again (a client's retry; CS_EEXIST then means the first try
 * committed). Returns 0 with *secs from the first send to the last answer,
 * or -1 (said why on stderr). */
static int bench_double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int bench_load(struct bench *b, const char *sock, const char *prefix,
		      uint64_t count, uint64_t inflight_max, double *secs,
		      uint64_t *retries)
{
	size_t nconn = (size_t)((inflight_max + BENCH_PER_CONN - 1) / BENCH_PER_CONN);
	struct bench_conn *conns = calloc(nconn, sizeof *conns);
	struct pollfd *pfd = calloc(nconn, sizeof *pfd);
	uint8_t *attempts = calloc(count, 1);
	uint64_t *redo = calloc(count, sizeof *redo);
	double *sent = calloc(count, sizeof *sent), *lat = calloc(count, sizeof *lat);
	size_t nlat = 0;
	uint64_t next = 0, done = 0, nredo = 0;
	uint64_t inflight = 0;
	struct bench_spec spec;
	double t0 = 0, until;
	int rv = -1;

	*retries = 0;
	bench_spec_init(&spec);
	if (!conns || !pfd || !attempts || !redo || !sent || !lat)
		goto out;
	for (size_t i = 0; i < nconn; i++) {
		conns[i].fd = bench_connect(sock);
		if (conns[i].fd < 0) {
			fprintf(stderr, "bench_raftreal: connect %s: %s\n", sock,
				strerror(errno));
			goto out;
		}
	}
	t0 = bench_now();
	until = t0 + BENCH_LOAD_MS / 1000.0;
	while (done < count) {
		/* keep every connection at its share */
		for (size_t i = 0; i < nconn && (next < count || nredo); i++) {
			while (conns[i].inflight < BENCH_PER_CONN &&
			       inflight < inflight_max && (next < count || nredo)) {
				Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
				uint64_t w = nredo ? redo[--nredo] : next++;

				snprintf(spec.name, sizeof spec.name, "%s-%" PRIu64,
					 prefix, w);
				req.id = w + 1;
				req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
				req.spec = &spec.spec;
				attempts[w]++;
				sent[w] = bench_now();
				if (bench_send(conns[i].fd, &req)) {
					fprintf(stderr, "bench_raftreal: send: %s\n",
						strerror(errno));
					goto out;
				}
				conns[i].inflight++;
				inflight++;
			}
		}
		for (size_t i = 0; i < nconn; i++)
			pfd[i] = (struct pollfd){conns[i].fd, POLLIN, 0};
		if (poll(pfd, (nfds_t)nconn, 1000) < 0 && errno != EINTR)
			goto out;
		if (bench_now() > until) {
			fprintf(stderr,
				"bench_raftreal: %" PRIu64 " of %" PRIu64
				" answered after %d ms\n",
				done, count, BENCH_LOAD_MS);
			goto out;
		}
		for (size_t i = 0; i < nconn; i++) {
			Cs__ControlResponse *resp;
			bool bad = false, again = false;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (bench_conn_read(&conns[i])) {
				fprintf(stderr, "bench_raftreal: %s hung up\n", sock);
				goto out;
			}
			while ((resp = bench_conn_next(&conns[i], &bad))) {
				uint64_t w = resp->id - 1;
				int st = resp->status;

				conns[i].inflight--;
				inflight--;
				if (resp->id == 0 || w >= count) {
					fprintf(stderr,
						"bench_raftreal: answer to unknown id %" PRIu64
						"\n",
						resp->id);
					cs__control_response__free_unpacked(resp, NULL);
					goto out;
				}
				if (st == 0 || (st == CS_EEXIST && attempts[w] > 1)) {
					done++;
					lat[nlat++] = bench_now() - sent[w];
				} else if ((st == CS_ENOTLEADER || st == CS_ENOQUORUM ||
					    st == CS_EAGAIN || st == CS_ETIMEDOUT ||
					    st == CS_EUNREACH) &&
					   attempts[w] < BENCH_ATTEMPTS_MAX) {
					redo[nredo++] = w;
					(*retries)++;
					again = true;
				} else {
					fprintf(stderr,
						"bench_raftreal: create %s-%" PRIu64
						": %s (%s)\n",
						prefix, w, cs_errname(st),
						resp->error ? resp->error : "");
					cs__control_response__free_unpacked(resp, NULL);
					goto out;
				}
				cs__control_response__free_unpacked(resp, NULL);
			}
			if (bad) {
				fprintf(stderr, "bench_raftreal: a malformed answer\n");
				goto out;
			}
			if (again)
				bench_sleep_ms(20); /* no leader for now: let it elect */
		}
	}
	*secs = bench_now() - t0;
	if (nlat > 0 && b->print_latency) {
		qsort(lat, nlat, sizeof *lat, bench_double_cmp);
		printf("raft-real latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms (send "
		       "to answer of each write, the %zu answered at the first try)\n",
		       lat[nlat / 2] * 1e3, lat[nlat * 99 / 100] * 1e3,
		       lat[nlat - 1] * 1e3, nlat);
	}
	rv = 0;
out:
	free(sent);
	free(lat);
	for (size_t i = 0; conns && i < nconn; i++) {
		if (conns[i].fd > 0)
			close(conns[i].fd);
		free(conns[i].buf);
	}
	free(conns);
	free(pfd);
	free(attempts);
	free(redo);
	return rv;
}

/* ---------------------------------------------------------------- swarmctl */

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Runs `swarmctl --socket sock service ls` once; returns its wall time in
 * seconds (fork to exit, its output read through a pipe) and *lines, or
 * -1 when it fails. */
static double bench_swarmctl_ls(struct bench *b, const char *sock, size_t *lines)
{
	int fds[2], st;
	double t0 = bench_now();
	char buf[65536];
	pid_t pid;
	ssize_t k;

	*lines = 0;
	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(b->c.swarmctl, b->c.swarmctl, "--socket", sock, "service", "ls",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((k = read(fds[0], buf, sizeof buf)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			*lines += buf[i] == '\n';
	}
	close(fds[0]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return bench_now() - t0;
}

static int bench_ls(struct bench *b, const char *sock)
{
	double ms[BENCH_LS_RUNS];
	size_t lines = 0;

	for (int i = 0; i < BENCH_LS_RUNS; i++) {
		double s = bench_swarmctl_ls(b, sock, &lines);
		if (s < 0) {
			fprintf(stderr, "bench_raftreal: swarmctl service ls failed\n");
			return -1;
		}
		if (lines < BENCH_LS_SERVICES) {
			fprintf(stderr,
				"bench_raftreal: swarmctl service ls printed %zu lines, "
				"not %d services\n",
				lines, BENCH_LS_SERVICES);
			return -1;
		}
		ms[i] = s * 1000;
	}
	qsort(ms, BENCH_LS_RUNS, sizeof ms[0], bench_cmp_double);
	/* of 20 runs, the 99th percentile is the slowest */
	printf("swarmctl service ls: %d services: median %.1f ms, p99 %.1f ms "
	       "(%d runs of the binary, fork to exit, %zu lines read)\n",
	       BENCH_LS_SERVICES, (ms[BENCH_LS_RUNS / 2 - 1] + ms[BENCH_LS_RUNS / 2]) / 2,
	       ms[BENCH_LS_RUNS - 1], BENCH_LS_RUNS, lines);
	return 0;
}

/* ---------------------------------------------------------------- main */

static int bench_run(struct bench *b)
{
	struct bench_spec spec;
	double secs = 0, rate, cpu0, cpu1;
	uint64_t retries = 0;
	int leader, rv = -1;
	char path[300];
	FILE *f;

	if ((leader = benchcluster_start(&b->c, BENCH_START_MS)) < 0)
		return -1;
	if (bench_load(b, b->c.m[leader].sock, "svc", BENCH_LS_SERVICES, b->inflight_max,
		       &secs, &retries))
		goto out;
	if (bench_ls(b, b->c.m[leader].sock))
		goto out;
	if ((leader = benchcluster_wait_managers(&b->c, BENCH_START_MS)) < 0)
		goto out;
	cpu0 = benchcluster_cpu(&b->c);
	b->print_latency = true;
	if (bench_load(b, b->c.m[leader].sock, "bench", b->writes, b->inflight_max, &secs,
		       &retries))
		goto out;
	cpu1 = benchcluster_cpu(&b->c);
	if (!benchcluster_alive(&b->c))
		goto out;
	rate = (double)b->writes / secs;
	bench_spec_init(&spec);
	snprintf(spec.name, sizeof spec.name, "bench-%" PRIu64, b->writes / 2);
	printf("raft-real: %.0f commits/s (%d managers, loopback, TLS 1.3 between "
	       "them, %" PRIu64 " writes, %" PRIu64 " in flight; SERVICE_CREATE, spec "
	       "%zu bytes; timed: first send to last answer, cluster start and "
	       "handshakes excluded; %.2fs, %" PRIu64 " asked again)\n",
	       rate, BENCHCLUSTER_MANAGERS, b->writes, b->inflight_max,
	       cs__service_spec__get_packed_size(&spec.spec), secs, retries);
	if (cpu0 >= 0 && cpu1 >= cpu0)
		printf("raft-real cpu: %.0f us per commit (user + system of the 3 "
		       "managers over the timed load, from /proc; the client "
		       "excluded)\n",
		       (cpu1 - cpu0) * 1e6 / (double)b->writes);
	snprintf(path, sizeof path, "%s/raftreal.txt", b->c.bindir);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%.0f\n", rate);
		fclose(f);
	}
	rv = 0;
out:
	return rv;
}

/* issue 19: one more cluster, recorded or not, with the same loads (1,000
 * services, then two timed loads of W writes): the least CPU per commit of
 * the two into *cpu_us, the best rate into *rate, the bytes recorded into
 * *bytes. Returns 0 or -1. */
static int bench_cluster_again(struct bench *b, bool record, double *cpu_us, double *rate,
			       uint64_t *bytes)
{
	double secs = 0;
	uint64_t retries = 0;
	int leader, rv = -1;

	*cpu_us = -1;
	*rate = 0;
	*bytes = 0;
	memset(&b->c, 0, sizeof b->c);
	if (benchcluster_paths(&b->c, "bench_raftreal") ||
	    benchcluster_init(&b->c, record ? "bench-raftrec" : "bench-raftre2"))
		return -1;
	b->c.record = record;
	b->print_latency = false;
	if ((leader = benchcluster_start(&b->c, BENCH_START_MS)) < 0)
		goto out;
	if (bench_load(b, b->c.m[leader].sock, "svc", BENCH_LS_SERVICES, b->inflight_max,
		       &secs, &retries))
		goto out;
	if ((leader = benchcluster_wait_managers(&b->c, BENCH_START_MS)) < 0)
		goto out;
	for (int k = 0; k < 2; k++) {
		double c0 = benchcluster_cpu(&b->c), c1, us;
		if (bench_load(b, b->c.m[leader].sock, k ? "again" : "bench", b->writes,
			       b->inflight_max, &secs, &retries))
			goto out;
		c1 = benchcluster_cpu(&b->c);
		us = c0 >= 0 && c1 >= c0 ? (c1 - c0) * 1e6 / (double)b->writes : -1;
		if (us >= 0 && (*cpu_us < 0 || us < *cpu_us))
			*cpu_us = us;
		if ((double)b->writes / secs > *rate)
			*rate = (double)b->writes / secs;
	}
	if (!benchcluster_alive(&b->c))
		goto out;
	for (int i = 0; i < BENCHCLUSTER_MANAGERS; i++) {
		char path[320];
		struct stat st;
		snprintf(path, sizeof path, "%s.rec", b->c.m[i].dir);
		if (stat(path, &st) == 0)
			*bytes += (uint64_t)st.st_size;
	}
	rv = 0;
out:
	if (rv)
		benchcluster_dump_logs(&b->c);
	benchcluster_stop(&b->c);
	benchcluster_fini(&b->c);
	return rv;
}

/* issue 19: `record-overhead: N%`: the CPU per commit that --record adds.
 * Measured one write at a time (no batching: how many entries a Raft
 * round carries depends on how busy the machine is, and moves the CPU per
 * commit more than the recorder does), BENCH_REC_WRITES writes per timed
 * load, on three new clusters in the order plain, recorded, plain: the
 * recorded cluster's figure against the mean of the plain ones, each the
 * least of its two timed loads (other work on the machine only adds).
 * Returns 0 or -1. */
static int bench_record_overhead(struct bench *b)
{
	uint64_t writes = b->writes, inflight = b->inflight_max, bytes, none;
	double cpu[3], rate[3];
	int rv = 0;

	b->writes = BENCH_REC_WRITES;
	b->inflight_max = 1;
	for (int i = 0; i < 3 && rv == 0; i++)
		rv = bench_cluster_again(b, i == 1, &cpu[i], &rate[i],
					 i == 1 ? &bytes : &none);
	b->writes = writes;
	b->inflight_max = inflight;
	if (rv)
		return -1;
	if (cpu[0] <= 0 || cpu[1] < 0 || cpu[2] <= 0) {
		printf("record-overhead: skipped (no CPU figures from /proc)\n");
		return 0;
	}
	{
		double plain = (cpu[0] + cpu[2]) / 2;
		printf("record-overhead: %.0f%% (CPU per commit of the 3 managers, one "
		       "write at a time, %d writes a load: %.0f us with --record vs %.0f "
		       "us without (%.0f and %.0f, before and after); %.0f vs %.0f "
		       "commits/s; %.1f MB recorded by the 3, %.0f bytes per commit, "
		       "cluster start and the 1,000 services before the timed loads "
		       "included)\n",
		       (cpu[1] / plain - 1) * 100, BENCH_REC_WRITES, cpu[1], plain,
		       cpu[0], cpu[2], rate[1], (rate[0] + rate[2]) / 2,
		       (double)bytes / 1e6,
		       (double)bytes /
			       (double)(2 * BENCH_REC_WRITES + BENCH_LS_SERVICES));
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof *b);
	char path[300];
	int rv = 1;

	if (!b)
		return 1;
	b->writes = argc > 1 ? strtoull(argv[1], NULL, 10) : BENCH_WRITES;
	b->inflight_max = argc > 2 ? strtoull(argv[2], NULL, 10) : BENCH_INFLIGHT;
	if (b->writes == 0 || b->inflight_max == 0 ||
	    b->inflight_max > BENCH_INFLIGHT_MAX) {
		fprintf(stderr, "usage: bench_raftreal [writes [in-flight (1..%d)]]\n",
			BENCH_INFLIGHT_MAX);
		free(b);
		return 2;
	}
	if (benchcluster_paths(&b->c, "bench_raftreal")) {
		free(b);
		return 1;
	}
	/* no stale figure for bench_raftuv's ratio, whatever happens below */
	snprintf(path, sizeof path, "%s/raftreal.txt", b->c.bindir);
	unlink(path);
	if (access(b->c.swarmd, X_OK) || access(b->c.swarmctl, X_OK)) {
		/* the daemons are built with the benches once net/swarmd.c exists */
		printf("raft-real: skipped (%s or %s not built)\n", b->c.swarmd,
		       b->c.swarmctl);
		free(b);
		return 0;
	}
	if (benchcluster_init(&b->c, "bench-raftreal"))
		goto out;
	if (bench_run(b) == 0)
		rv = 0;
	else
		benchcluster_dump_logs(&b->c);
	benchcluster_stop(&b->c);
	benchcluster_fini(&b->c);
	/* issue 19 (BENCH_NO_RECORD=1 leaves it out) */
	if (rv == 0 && !getenv("BENCH_NO_RECORD") && bench_record_overhead(b))
		rv = 1;
	free(b);
	return rv;
out:
	benchcluster_fini(&b->c);
	free(b);
	return rv;
}
