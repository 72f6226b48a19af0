/* bench_raftuv: the yardstick for bench_raftreal. Three libraft instances in
 * one process on one libuv loop, each on libraft's own backend (raft_uv over
 * raft_uv_tcp) on loopback, data under /tmp like the real managers'; W
 * entries of B bytes with at most C in flight, timed from the first apply to
 * the last apply callback. Prints `raft-uv: N commits/s (...)`, writes the
 * figure to raftuv.txt beside this binary, and, when bench_raftreal (which
 * `make bench` runs just before: names sort) left raftreal.txt there in the
 * last hour, prints `raft-real/raft-uv: R`.
 *
 * Usage: bench_raftuv [W [C]]  (defaults: 10000 writes, 64 in flight). */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "tests/support/benchutil.h"

enum {
	BENCH_VOTERS = 3,
	BENCH_WRITES = 10000,
	BENCH_INFLIGHT = 64,
	BENCH_INFLIGHT_MAX = 1024,
	BENCH_ENTRY_BYTES = 300, /* about one control write (a service create batch) */
	BENCH_TIMEOUT_MS = 300000,
	/* as core/manager.c's defaults, so both logs snapshot alike */
	BENCH_SNAPSHOT_EVERY = 10000,
	BENCH_SNAPSHOT_TRAILING = 1000,
};

struct bench;

struct bench_server {
	struct bench *b;
	raft_id id;
	char addr[32];
	char dir[256];
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft raft;
	uint64_t applied; /* the trivial FSM: a count */
	bool inited;
	bool closed;
};

struct bench_req {
	struct raft_apply req;
	struct bench *b;
	bool busy;
};

struct bench {
	uv_loop_t loop;
	uv_timer_t tick; /* waits for a leader; re-issues after a lost one */
	uv_timer_t deadline;
	struct bench_server s[BENCH_VOTERS];
	struct bench_req reqs[BENCH_INFLIGHT_MAX];
	uint64_t writes, inflight_max;
	uint64_t issued, done, failed;
	int inflight;
	double t0, t1;
	double cpu0, cpu1; /* this process's CPU time at t0 and t1 */
	bool started, finished, timed_out;
	int closing;
};

/* This process's CPU time so far (user + system, every thread: libraft's
 * disk writes run on libuv's thread pool), in seconds. */
static double bench_cpu(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---------------------------------------------------------------- the FSM */

static int bench_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
			   void **result)
{
	struct bench_server *s = fsm->data;
	s->applied++;
	*result = NULL;
	return 0;
}

static int bench_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			      unsigned *n_bufs)
{
	struct bench_server *s = fsm->data;
	struct raft_buffer *b = raft_malloc(sizeof *b);

	if (!b)
		return RAFT_NOMEM;
	b->len = sizeof s->applied;
	b->base = raft_malloc(b->len);
	if (!b->base) {
		raft_free(b);
		return RAFT_NOMEM;
	}
	memcpy(b->base, &s->applied, b->len);
	*bufs = b;
	*n_bufs = 1;
	return 0;
}

static int bench_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct bench_server *s = fsm->data;
	if (buf->len != sizeof s->applied)
		return RAFT_MALFORMED;
	memcpy(&s->applied, buf->base, sizeof s->applied);
	raft_free(buf->base);
	return 0;
}

/* ---------------------------------------------------------------- the load */

static struct raft *bench_leader(struct bench *b)
{
	for (int i = 0; i < BENCH_VOTERS; i++)
		if (raft_state(&b->s[i].raft) == RAFT_LEADER)
			return &b->s[i].raft;
	return NULL;
}

static void bench_finish(struct bench *b);
static void bench_apply_cb(struct raft_apply *req, int status, void *result);

/* Issues writes on the leader until C are in flight or W are issued; without
 * a leader, the tick timer tries again. */
static void bench_fill(struct bench *b)
{
	struct raft *leader = bench_leader(b);

	if (!leader || b->finished)
		return;
	for (uint64_t i = 0; i < b->inflight_max; i++) {
		struct bench_req *r = &b->reqs[i];
		struct raft_buffer buf;

		if (b->issued >= b->writes)
			return;
		if (r->busy)
			continue;
		buf.len = BENCH_ENTRY_BYTES;
		buf.base = raft_malloc(buf.len);
		if (!buf.base)
			return;
		memset(buf.base, 'a' + (int)(b->issued % 26), buf.len);
		memcpy(buf.base, &b->issued, sizeof b->issued);
		r->b = b;
		r->req.data = r;
		if (raft_apply(leader, &r->req, &buf, 1, bench_apply_cb) != 0) {
			raft_free(buf.base);
			return; /* not the leader any more: the tick tries again */
		}
		if (!b->started) {
			b->started = true;
			b->t0 = bench_now();
			b->cpu0 = bench_cpu();
		}
		r->busy = true;
		b->issued++;
		b->inflight++;
	}
}

static void bench_apply_cb(struct raft_apply *req, int status, void *result)
{
	struct bench_req *r = req->data;
	struct bench *b = r->b;

	r->busy = false;
	b->inflight--;
	if (status == 0) {
		b->done++;
	} else {
		/* leadership lost on the way: write it again */
		b->failed++;
		b->issued--;
	}
	if (b->done == b->writes) {
		b->t1 = bench_now();
		b->cpu1 = bench_cpu();
		bench_finish(b);
		return;
	}
	bench_fill(b);
}

static void bench_tick_cb(uv_timer_t *t)
{
	bench_fill(t->data);
}

static void bench_deadline_cb(uv_timer_t *t)
{
	struct bench *b = t->data;
	fprintf(stderr,
		"bench_raftuv: no result after %d ms (%" PRIu64 " of %" PRIu64
		" committed)\n",
		BENCH_TIMEOUT_MS, b->done, b->writes);
	b->timed_out = true;
	bench_finish(b);
}

/* ---------------------------------------------------------------- shutdown */

static void bench_transport_closed(struct bench_server *s)
{
	struct bench *b = s->b;
	raft_uv_close(&s->io);
	raft_uv_tcp_close(&s->transport);
	s->closed = true;
	if (--b->closing == 0) {
		uv_close((uv_handle_t *)&b->tick, NULL);
		uv_close((uv_handle_t *)&b->deadline, NULL);
	}
}

static void bench_raft_close_cb(struct raft *r)
{
	bench_transport_closed(r->data);
}

static void bench_finish(struct bench *b)
{
	if (b->finished)
		return;
	b->finished = true;
	uv_timer_stop(&b->tick);
	uv_timer_stop(&b->deadline);
	for (int i = 0; i < BENCH_VOTERS; i++)
		if (b->s[i].inited)
			b->closing++;
	if (b->closing == 0) {
		uv_close((uv_handle_t *)&b->tick, NULL);
		uv_close((uv_handle_t *)&b->deadline, NULL);
		return;
	}
	for (int i = 0; i < BENCH_VOTERS; i++)
		if (b->s[i].inited)
			raft_close(&b->s[i].raft, bench_raft_close_cb);
}

/* ---------------------------------------------------------------- setup */

/* A free loopback TCP port (the kernel's pick, released at once). */

static int bench_server_init(struct bench *b, int i, const char *root)
{
	struct bench_server *s = &b->s[i];
	int port = bench_free_port();

	if (port < 0)
		return -1;
	s->b = b;
	s->id = (raft_id)(i + 1);
	snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", port);
	snprintf(s->dir, sizeof s->dir, "%s/m%d", root, i + 1);
	if (mkdir(s->dir, 0700) != 0)
		return -1;
	if (raft_uv_tcp_init(&s->transport, &b->loop) != 0)
		return -1;
	if (raft_uv_init(&s->io, &b->loop, s->dir, &s->transport) != 0) {
		fprintf(stderr, "bench_raftuv: raft_uv_init %s: %s\n", s->dir,
			s->io.errmsg);
		raft_uv_tcp_close(&s->transport);
		return -1;
	}
	s->fsm.version = 1;
	s->fsm.data = s;
	s->fsm.apply = bench_fsm_apply;
	s->fsm.snapshot = bench_fsm_snapshot;
	s->fsm.restore = bench_fsm_restore;
	if (raft_init(&s->raft, &s->io, &s->fsm, s->id, s->addr) != 0) {
		fprintf(stderr, "bench_raftuv: raft_init: %s\n", raft_errmsg(&s->raft));
		raft_uv_close(&s->io);
		raft_uv_tcp_close(&s->transport);
		return -1;
	}
	s->raft.data = s;
	s->inited = true;
	raft_set_snapshot_threshold(&s->raft, BENCH_SNAPSHOT_EVERY);
	raft_set_snapshot_trailing(&s->raft, BENCH_SNAPSHOT_TRAILING);
	return 0;
}

static int bench_start(struct bench *b)
{
	struct raft_configuration conf;
	int rv = 0;

	raft_configuration_init(&conf);
	for (int i = 0; i < BENCH_VOTERS && rv == 0; i++)
		rv = raft_configuration_add(&conf, b->s[i].id, b->s[i].addr, RAFT_VOTER);
	for (int i = 0; i < BENCH_VOTERS && rv == 0; i++)
		rv = raft_bootstrap(&b->s[i].raft, &conf);
	raft_configuration_close(&conf);
	for (int i = 0; i < BENCH_VOTERS && rv == 0; i++)
		rv = raft_start(&b->s[i].raft);
	if (rv)
		fprintf(stderr, "bench_raftuv: bootstrap/start: %s\n", raft_strerror(rv));
	return rv;
}

/* Says, as libraft's own probe would find it, whether O_DIRECT works in dir
 * (libraft opens its segments O_DSYNC either way, and with O_DIRECT and
 * kernel AIO when the filesystem allows). */
static bool bench_direct_io(const char *dir)
{
	char path[300];
	void *block = NULL;
	bool ok = false;
	int fd;

	snprintf(path, sizeof path, "%s/probe", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_DIRECT, 0600);
	if (fd >= 0 && posix_memalign(&block, 4096, 4096) == 0) {
		memset(block, 0, 4096);
		ok = pwrite(fd, block, 4096, 0) == 4096;
	}
	free(block);
	if (fd >= 0)
		close(fd);
	unlink(path);
	return ok;
}

/* The directory this binary lives in (build/release/bench/), for the figure
 * files shared with bench_raftreal. */
static int bench_bin_dir(char *out, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);
	char *slash;

	if (n <= 0)
		return -1;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	return 0;
}

static void bench_report(struct bench *b, bool direct)
{
	double rate = (double)b->done / (b->t1 - b->t0);
	char dir[256], path[300];
	struct stat st;
	double real = 0;
	FILE *f;

	printf("raft-uv: %.0f commits/s (%d voters, loopback, %" PRIu64
	       " writes of %d bytes, %" PRIu64 " in flight; %.2fs, %" PRIu64
	       " re-sent after a lost leader; segments O_DSYNC%s)\n",
	       rate, BENCH_VOTERS, b->done, BENCH_ENTRY_BYTES, b->inflight_max,
	       b->t1 - b->t0, b->failed, direct ? " + O_DIRECT" : ", buffered");
	printf("raft-uv cpu: %.0f us per commit (user + system of the process, its "
	       "3 voters and the load, over the timed load)\n",
	       (b->cpu1 - b->cpu0) * 1e6 / (double)b->done);
	if (bench_bin_dir(dir, sizeof dir))
		return;
	snprintf(path, sizeof path, "%s/raftuv.txt", dir);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%.0f\n", rate);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/raftreal.txt", dir);
	if (stat(path, &st) == 0 && time(NULL) - st.st_mtime < 3600 &&
	    (f = fopen(path, "r"))) {
		if (fscanf(f, "%lf", &real) == 1 && real > 0)
			printf("raft-real/raft-uv: %.2f (%.0f / %.0f commits/s; "
			       "goal: at least 1)\n",
			       real / rate, real, rate);
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof *b);
	char root[] = "/tmp/cswarm-bench-raftuv-XXXXXX";
	bool direct;
	int rv = 1;

	if (!b)
		return 1;
	b->writes = argc > 1 ? strtoull(argv[1], NULL, 10) : BENCH_WRITES;
	b->inflight_max = argc > 2 ? strtoull(argv[2], NULL, 10) : BENCH_INFLIGHT;
	if (b->writes == 0 || b->inflight_max == 0 ||
	    b->inflight_max > BENCH_INFLIGHT_MAX) {
		fprintf(stderr, "usage: bench_raftuv [writes [in-flight (1..%d)]]\n",
			BENCH_INFLIGHT_MAX);
		free(b);
		return 2;
	}
	if (!mkdtemp(root)) {
		perror("bench_raftuv: mkdtemp");
		free(b);
		return 1;
	}
	direct = bench_direct_io(root);
	if (uv_loop_init(&b->loop) != 0)
		goto out_dir;
	uv_timer_init(&b->loop, &b->tick);
	uv_timer_init(&b->loop, &b->deadline);
	b->tick.data = b;
	b->deadline.data = b;
	for (int i = 0; i < BENCH_VOTERS; i++)
		if (bench_server_init(b, i, root) != 0)
			goto out_close;
	if (bench_start(b) != 0)
		goto out_close;
	uv_timer_start(&b->tick, bench_tick_cb, 5, 5);
	uv_timer_start(&b->deadline, bench_deadline_cb, BENCH_TIMEOUT_MS, 0);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	if (!b->timed_out && b->done == b->writes) {
		bench_report(b, direct);
		rv = 0;
	}
	goto out_loop;

out_close:
	bench_finish(b);
	uv_run(&b->loop, UV_RUN_DEFAULT);
out_loop:
	if (uv_loop_close(&b->loop) != 0)
		fprintf(stderr, "bench_raftuv: handles left on the loop\n");
out_dir:
	bench_rm_tree(root);
	free(b);
	return rv;
}
