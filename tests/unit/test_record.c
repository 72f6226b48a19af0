/* Tests of swarmd --record (net/record.c) and swarmsim replay
 * (sim/replay.c). The recorder wraps any env, so here it wraps a simulated
 * node's: m1 of three simulated managers is recorded through a leader
 * change (the leader is killed, and restarted), and its recording replays
 * with no divergence. Then the recording is altered, one byte of one
 * event or one event dropped, and the replay names that event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/control_rpc.h"
#include "core/errors.h"
#include "core/manager.h"
#include "core/node.h"
#include "net/record.h"
#include "sim/cluster.h"
#include "sim/replay.h"
#include "sim/world.h"

/* ---------------------------------------------------------------- a recorded program */

struct rec_prog_cfg {
	const struct node_cfg *ncfg;
	const char *path;
};

struct rec_prog {
	struct record *rec;
	void *node; /* node_program's state */
};

static int rec_prog_start(const void *cfg_ptr, struct env *env, void **state)
{
	const struct rec_prog_cfg *cfg = cfg_ptr;
	struct rec_prog *p = calloc(1, sizeof *p);
	char err[256];
	int rv;

	if (!p)
		return CS_ENOMEM;
	rv = record_open(cfg->path, env, cfg->ncfg, &p->rec, err, sizeof err);
	if (rv == 0)
		rv = record_program_start(p->rec, &node_program, cfg->ncfg, &p->node);
	if (rv) {
		record_close(p->rec);
		free(p);
		return rv;
	}
	*state = p;
	return 0;
}

static void rec_prog_stop(void *state)
{
	struct rec_prog *p = state;
	record_program_stop(p->rec, &node_program, p->node);
	record_close(p->rec);
	free(p);
}

static const struct env_program_ops rec_program = {
	.start = rec_prog_start,
	.stop = rec_prog_stop,
};

/* ---------------------------------------------------------------- the run */

struct run {
	struct world *w;
	struct simcluster *c;
	uint32_t idx[3];
	struct rec_prog_cfg rcfg;
	char path[64];
	int created; /* the service: 1 created, -1 refused */
};

static struct manager *run_manager(struct run *r, int i)
{
	void *st = world_node_state(r->w, r->idx[i]);
	if (!st)
		return NULL;
	if (i == 0)
		return node_manager(((struct rec_prog *)st)->node);
	return node_manager(st);
}

/* The manager that leads, or -1. */
static int run_leader(struct run *r)
{
	for (int i = 0; i < 3; i++) {
		struct manager *m = run_manager(r, i);
		if (m && manager_is_leader(m) && manager_serves(m))
			return i;
	}
	return -1;
}

static void created(void *data, const Cs__ControlResponse *resp)
{
	int *status = data;
	*status = resp->status == 0 ? 1 : -1;
}

/* A service of three replicas, asked of the leader (m1's control RPC
 * through its recorder, as swarmd's control socket does). */
static void run_service(struct run *r, int leader, int *status)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec task = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec ctr = CS__CONTAINER_SPEC__INIT;
	void *st = world_node_state(r->w, r->idx[leader]);

	spec.name = "web";
	spec.replicas = 3;
	ctr.image = "img";
	task.container = &ctr;
	spec.task = &task;
	req.id = 7;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	if (leader == 0) {
		struct rec_prog *p = st;
		assert_int_equal(record_control_call(p->rec, node_control(p->node), &req,
						     created, status),
				 0);
	} else {
		assert_int_equal(
			control_rpc_call(node_control(st), &req, created, status), 0);
	}
}

static void run_until(struct run *r, us_t until_us)
{
	while (world_step(r->w, until_us))
		;
	world_advance(r->w, until_us);
}

/* Records m1 of three managers: a leader, the leader killed, a new leader,
 * the killed one back. */
static void run_record(struct run *r, uint64_t seed)
{
	const char *names[3] = {"m1", "m2", "m3"};
	int leader;

	memset(r, 0, sizeof *r);
	snprintf(r->path, sizeof r->path, "/tmp/replay-test-%d-%llu.rec", (int)getpid(),
		 (unsigned long long)seed);
	unlink(r->path);
	r->w = world_new(seed);
	assert_non_null(r->w);
	r->c = simcluster_new(r->w, NULL);
	assert_non_null(r->c);
	simcluster_node_programs(r->c, true);
	for (uint32_t i = 0; i < 3; i++) {
		const struct node_cfg *cfg = simcluster_node_cfg(r->c, names[i], i + 1, 3,
								 3, 4000, 1ull << 33);
		assert_non_null(cfg);
		if (i == 0) {
			r->rcfg.ncfg = cfg;
			r->rcfg.path = r->path;
			assert_int_equal(world_node_add(r->w, names[i], &rec_program,
							&r->rcfg, &r->idx[i]),
					 0);
		} else {
			assert_int_equal(world_node_add(r->w, names[i], &node_program,
							cfg, &r->idx[i]),
					 0);
		}
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(world_node_start(r->w, r->idx[i]), 0);
	run_until(r, 30000000ull);
	leader = run_leader(r);
	assert_true(leader >= 0);
	run_service(r, leader, &r->created);
	run_until(r, 45000000ull);
	assert_int_equal(r->created, 1);
	assert_int_equal(world_node_kill(r->w, r->idx[leader], false, false), 0);
	/* an election after the timeout (10 ticks of 1 s, randomised) */
	for (us_t t = 46000000ull; run_leader(r) < 0 && t < 120000000ull; t += 1000000ull)
		run_until(r, t);
	assert_true(run_leader(r) >= 0);
	assert_true(run_leader(r) != leader);
	assert_int_equal(world_node_start(r->w, r->idx[leader]), 0);
	run_until(r, world_now_us(r->w) + 20000000ull);
	/* m1's process dies and starts again on its disk: a second segment,
	 * whose databases' images hold the log so far */
	if (world_node_is_up(r->w, r->idx[0]))
		assert_int_equal(world_node_kill(r->w, r->idx[0], false, false), 0);
	assert_int_equal(world_node_start(r->w, r->idx[0]), 0);
	run_until(r, world_now_us(r->w) + 20000000ull);
	for (int i = 0; i < 3; i++)
		if (world_node_is_up(r->w, r->idx[i]))
			assert_int_equal(world_node_kill(r->w, r->idx[i], false, false),
					 0);
}

static void run_free(struct run *r)
{
	world_free(r->w);
	simcluster_free(r->c);
	unlink(r->path);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* ---------------------------------------------------------------- the format */

static uint64_t get_u(const uint8_t *p, size_t len, size_t *off)
{
	uint64_t v = 0;
	for (unsigned shift = 0; *off < len; shift += 7) {
		uint8_t c = p[(*off)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			break;
	}
	return v;
}

/* The records of buf: where each starts (its length varint), its kind and
 * its body; segments' headers skipped. Returns how many (at most max). */
struct rec_at {
	size_t start, body, end;
	unsigned kind;
};

static size_t records(const uint8_t *buf, size_t len, struct rec_at *out, size_t max)
{
	size_t off = 0, n = 0;

	while (off < len && n < max) {
		if (len - off >= RECORD_MAGIC_BYTES &&
		    memcmp(buf + off, RECORD_MAGIC, RECORD_MAGIC_BYTES) == 0) {
			uint64_t hlen;
			off += RECORD_MAGIC_BYTES;
			(void)get_u(buf, len, &off);
			hlen = get_u(buf, len, &off);
			off += (size_t)hlen;
			continue;
		}
		out[n].start = off;
		{
			uint64_t l = get_u(buf, len, &off);
			out[n].kind = buf[off];
			out[n].body = off + 1;
			out[n].end = off + (size_t)l;
			off = out[n].end;
		}
		n++;
	}
	return n;
}

struct marks {
	uint64_t leaders[8];
	size_t count;
};

static void on_mark(void *ctx, const struct replay_mark *m)
{
	struct marks *k = ctx;
	if (!m->leader_id)
		return;
	for (size_t i = 0; i < k->count; i++)
		if (k->leaders[i] == m->leader_id)
			return;
	if (k->count < 8)
		k->leaders[k->count++] = m->leader_id;
}

/* ---------------------------------------------------------------- tests */

static void test_record_replays_a_leader_change(void **state)
{
	struct run r;
	struct replay_result res;
	struct marks k = {.count = 0};
	char err[256];
	uint8_t *buf;
	size_t len;

	(void)state;
	run_record(&r, 11);
	buf = read_all(r.path, &len);
	assert_int_equal(
		replay_run(buf, len, on_mark, &k, NULL, NULL, &res, err, sizeof err), 0);
	if (res.diverged)
		fail_msg("diverged at event %llu: %s", (unsigned long long)res.at_event,
			 res.why);
	assert_false(res.truncated);
	assert_true(res.segments >= 2);
	assert_true(res.inputs > 100);
	assert_true(res.sends > 10);
	/* m1 saw two leaders */
	assert_true(k.count >= 2);
	/* and ran containers of the service: executor operations recorded
	 * and replayed */
	{
		static struct rec_at at[200000];
		size_t n = records(buf, len, at, sizeof at / sizeof at[0]);
		size_t opens = 0, dones = 0;
		for (size_t i = 0; i < n; i++) {
			opens += at[i].kind == REC_CTL_OPEN;
			dones += at[i].kind == REC_CTL_DONE;
		}
		assert_true(opens >= 1);
		assert_true(dones >= 2);
	}
	free(buf);
	run_free(&r);
}

/* The first record of kind at or after record `from`, or -1. */
static long find_kind(const struct rec_at *at, size_t n, size_t from, unsigned kind)
{
	for (size_t i = from; i < n; i++)
		if (at[i].kind == kind && at[i].end > at[i].body + 4)
			return (long)i;
	return -1;
}

static void test_record_names_an_altered_byte(void **state)
{
	static struct rec_at at[200000];
	struct run r;
	struct replay_result res;
	char err[256];
	uint8_t *buf;
	size_t len, n;
	long i;

	(void)state;
	run_record(&r, 12);
	buf = read_all(r.path, &len);
	n = records(buf, len, at, sizeof at / sizeof at[0]);
	assert_true(n > 1000);

	/* a message the core sent, its hash's last byte changed */
	i = find_kind(at, n, n / 2, REC_SEND);
	assert_true(i > 0);
	buf[at[i].end - 2] ^= 0x01; /* inside the hash varint (rv follows) */
	assert_int_equal(
		replay_run(buf, len, NULL, NULL, NULL, NULL, &res, err, sizeof err), 0);
	assert_true(res.diverged);
	assert_int_equal(res.at_event, (uint64_t)i);
	assert_non_null(strstr(res.why, "expected send"));
	assert_non_null(strstr(res.why, "came send"));
	buf[at[i].end - 2] ^= 0x01;

	/* a log line, one byte of its text changed */
	i = find_kind(at, n, 0, REC_LOG);
	assert_true(i >= 0);
	buf[at[i].end - 1] ^= 0x20;
	assert_int_equal(
		replay_run(buf, len, NULL, NULL, NULL, NULL, &res, err, sizeof err), 0);
	assert_true(res.diverged);
	assert_int_equal(res.at_event, (uint64_t)i);
	assert_non_null(strstr(res.why, "log"));
	buf[at[i].end - 1] ^= 0x20;

	/* unaltered again: no divergence (the alterations were the cause) */
	assert_int_equal(
		replay_run(buf, len, NULL, NULL, NULL, NULL, &res, err, sizeof err), 0);
	assert_false(res.diverged);
	free(buf);
	run_free(&r);
}

static void test_record_names_a_dropped_event(void **state)
{
	static struct rec_at at[200000];
	struct run r;
	struct replay_result res;
	char err[256];
	uint8_t *buf;
	size_t len, n, cut;
	long i;

	(void)state;
	run_record(&r, 13);
	buf = read_all(r.path, &len);
	n = records(buf, len, at, sizeof at / sizeof at[0]);
	/* a timer the core armed, dropped from the recording */
	i = find_kind(at, n, n / 3, REC_TIMER_START);
	if (i < 0)
		i = find_kind(at, n, 0, REC_TIMER_START);
	assert_true(i > 0);
	cut = at[i].end - at[i].start;
	memmove(buf + at[i].start, buf + at[i].end, len - at[i].end);
	assert_int_equal(
		replay_run(buf, len - cut, NULL, NULL, NULL, NULL, &res, err, sizeof err),
		0);
	assert_true(res.diverged);
	/* the core's timer_start met what came after it in the recording */
	assert_int_equal(res.at_event, (uint64_t)i);
	assert_non_null(strstr(res.why, "came timer-start"));
	free(buf);
	run_free(&r);
}

/* A recording cut inside a record (a SIGKILL between two writes would
 * not, a full disk could): the replay goes as far as it holds, says it
 * was truncated, and does not call it a divergence. */
static void test_record_cut_short_replays_what_it_holds(void **state)
{
	static struct rec_at at[200000];
	struct run r;
	struct replay_result res, whole;
	char err[256];
	uint8_t *buf;
	size_t len, n;

	(void)state;
	run_record(&r, 14);
	buf = read_all(r.path, &len);
	n = records(buf, len, at, sizeof at / sizeof at[0]);
	assert_true(n > 100);
	assert_int_equal(
		replay_run(buf, len, NULL, NULL, NULL, NULL, &whole, err, sizeof err), 0);
	assert_false(whole.diverged);
	/* cut in the middle of a record (one of 3 bytes or more) */
	{
		size_t k = n / 4;
		while (k < n && at[k].end - at[k].body < 2)
			k++;
		assert_true(k < n);
		assert_int_equal(replay_run(buf, at[k].body + 1, NULL, NULL, NULL, NULL,
					    &res, err, sizeof err),
				 0);
	}
	assert_true(res.truncated);
	assert_false(res.diverged);
	assert_true(res.events < whole.events);
	free(buf);
	run_free(&r);
}

static void test_record_refuses_what_is_not_a_recording(void **state)
{
	const uint8_t junk[] = "not a recording at all";
	struct replay_result res;
	char err[256] = "";

	(void)state;
	assert_int_equal(replay_run(junk, sizeof junk, NULL, NULL, NULL, NULL, &res, err,
				    sizeof err),
			 CS_ECORRUPT);
	assert_non_null(strstr(err, "not a cswarm recording"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_replays_a_leader_change),
		cmocka_unit_test(test_record_names_an_altered_byte),
		cmocka_unit_test(test_record_names_a_dropped_event),
		cmocka_unit_test(test_record_cut_short_replays_what_it_holds),
		cmocka_unit_test(test_record_refuses_what_is_not_a_recording),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
