/* Tests of the simulator kernel: event order, timers, the network (latency,
 * loss, duplication, reordering, partitions, one-way faults, heal), node kill
 * and restart, disks that survive, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/pki.h"
#include "sim/simdisk.h"
#include "sim/world.h"
#include "tests/support/pingprog.h"

/* ---------------------------------------------------------------- helpers */

struct inbox {
	uint64_t count;
	uint64_t from_count[8];
	uint64_t sent_at_us[4]; /* unused slot guard */
	us_t min_delay_us, max_delay_us;
	uint64_t last_seq;
	uint64_t out_of_order;
	uint64_t ups, downs;
	struct world *w;
};

/* Message payload: sender's index, a sequence number, the send time. */
struct probe {
	uint32_t from;
	uint64_t seq;
	us_t sent_us;
};

static void inbox_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		       void *data)
{
	struct inbox *in = data;
	struct probe p;
	us_t d;

	assert_int_equal(len, sizeof p);
	memcpy(&p, buf, sizeof p);
	in->count++;
	if (p.from < 8)
		in->from_count[p.from]++;
	d = world_now_us(in->w) - p.sent_us;
	if (in->count == 1 || d < in->min_delay_us)
		in->min_delay_us = d;
	if (d > in->max_delay_us)
		in->max_delay_us = d;
	if (p.seq < in->last_seq)
		in->out_of_order++;
	in->last_seq = p.seq;
}

static void inbox_peer(struct env *env, const char *addr, bool up, void *data)
{
	struct inbox *in = data;
	if (up)
		in->ups++;
	else
		in->downs++;
}

/* A world of n bare nodes "n0".."n{n-1}", all up, each listening into
 * inboxes[i]. */
static struct world *bare_world(uint64_t seed, size_t n, struct inbox *inboxes)
{
	struct world *w = world_new(seed);
	assert_non_null(w);
	for (size_t i = 0; i < n; i++) {
		char name[24];
		uint32_t index;
		snprintf(name, sizeof name, "n%zu", i);
		assert_int_equal(world_node_add(w, name, NULL, NULL, &index), 0);
		assert_int_equal(index, i);
		assert_int_equal(world_node_start(w, index), 0);
		memset(&inboxes[i], 0, sizeof inboxes[i]);
		inboxes[i].w = w;
		struct env *env = world_node_env(w, index);
		assert_int_equal(
			env->ops->listen(env, inbox_recv, inbox_peer, &inboxes[i]), 0);
	}
	return w;
}

static int send_probe(struct world *w, uint32_t from, uint32_t to, uint64_t seq)
{
	struct env *env = world_node_env(w, from);
	struct probe p = {.from = from, .seq = seq, .sent_us = world_now_us(w)};
	return env->ops->send(env, world_node_name(w, to), (const uint8_t *)&p, sizeof p);
}

static void run_all(struct world *w)
{
	while (world_step(w, UINT64_MAX))
		;
}

/* Advances virtual time by d, delivering what is due. */
static void run_for(struct world *w, us_t d)
{
	us_t until = world_now_us(w) + d;
	while (world_step(w, until))
		;
	world_advance(w, until);
}

/* ---------------------------------------------------------------- event order */

struct order_log {
	int seen[16];
	size_t count;
};

struct order_call {
	struct order_log *log;
	int id;
};

static void order_fn(struct world *w, void *data)
{
	struct order_call *c = data;
	c->log->seen[c->log->count++] = c->id;
}

static void test_world_same_instant_runs_in_schedule_order(void **state)
{
	struct world *w = world_new(1);
	struct order_log log = {0};
	struct order_call calls[6];
	/* scheduled out of time order; equal times keep schedule order */
	const us_t at[6] = {50, 10, 50, 10, 0, 50};
	const int want[6] = {4, 1, 3, 0, 2, 5};

	for (int i = 0; i < 6; i++) {
		calls[i] = (struct order_call){&log, i};
		assert_int_equal(world_call_at(w, at[i], UINT32_MAX, order_fn, &calls[i]),
				 0);
	}
	run_all(w);
	assert_int_equal(log.count, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(log.seen[i], want[i]);
	assert_int_equal(world_now_us(w), 50);
	world_free(w);
}

/* Many events, scheduled before and while the queue runs (every level of
 * the heap, pushes between pops): they run by time, and at equal times in
 * the order they were scheduled. */
#define MANY_EVENTS 6000

struct many_log {
	struct world *w;
	uint32_t rng;
	int scheduled, ran;
	us_t last_at;
	int last_id;
	bool in_order;
	struct many_call {
		struct many_log *log;
		int id;
		us_t at;
	} calls[MANY_EVENTS];
};

static uint32_t many_rand(struct many_log *log)
{
	log->rng = log->rng * 1103515245u + 12345u;
	return log->rng >> 8;
}

static void many_fn(struct world *w, void *data);

static void many_schedule(struct many_log *log, us_t at)
{
	struct many_call *c = &log->calls[log->scheduled];
	c->log = log;
	c->id = log->scheduled++;
	c->at = at;
	assert_int_equal(world_call_at(log->w, at, UINT32_MAX, many_fn, c), 0);
}

static void many_fn(struct world *w, void *data)
{
	struct many_call *c = data;
	struct many_log *log = c->log;

	if (world_now_us(w) != c->at || c->at < log->last_at ||
	    (c->at == log->last_at && c->id < log->last_id))
		log->in_order = false;
	log->last_at = c->at;
	log->last_id = c->id;
	log->ran++;
	/* some schedule more: now (after every other event due now), or later */
	while (log->scheduled < MANY_EVENTS && many_rand(log) % 3 == 0)
		many_schedule(log, world_now_us(w) + many_rand(log) % 4 * 25);
}

static void test_world_many_events_run_by_time_then_schedule(void **state)
{
	struct many_log *log = calloc(1, sizeof *log);

	assert_non_null(log);
	log->w = world_new(1);
	log->rng = 42;
	log->in_order = true;
	log->last_id = -1;
	/* times from few values: many ties */
	for (int i = 0; i < MANY_EVENTS / 2; i++)
		many_schedule(log, many_rand(log) % 200 * 5);
	run_all(log->w);
	assert_int_equal(log->ran, log->scheduled);
	assert_true(log->scheduled > MANY_EVENTS / 2 + 500);
	assert_true(log->in_order);
	world_free(log->w);
	free(log);
}

struct timer_count {
	int fired;
	us_t last_us;
	struct world *w;
	env_timer_id stop_me;
};

static void count_timer(struct env *env, env_timer_id id, void *data)
{
	struct timer_count *t = data;
	t->fired++;
	t->last_us = world_now_us(t->w);
	if (t->stop_me && t->fired == 3)
		env->ops->timer_stop(env, t->stop_me);
}

/* A disk fault's end, and the bound of every fault's end, read back in
 * virtual time; a fault without an end is UINT64_MAX (the conversion from
 * the disks' clock overflowed to a small time for it, and the health key
 * of invariant 6 and converged took its fast path while the fault held). */
static void test_world_disk_fault_times_in_virtual_time(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(1, 2, in);
	(void)state;

	assert_int_equal(world_disk_faults_until(w), 0);
	assert_int_equal(world_disk_fault(w, 0, SIMVFS_FAULT_EIO_WRITE, 5000000), 0);
	assert_true(world_disk_faulted(w, 0));
	assert_false(world_disk_faulted(w, 1));
	assert_int_equal(world_disk_faults_until(w), 5000000);
	assert_int_equal(world_disk_healthy_from(w, 0), 5000000);
	assert_int_equal(world_disk_fault(w, 1, SIMVFS_FAULT_FULL, UINT64_MAX), 0);
	assert_true(world_disk_faults_until(w) == UINT64_MAX);
	assert_true(world_disk_healthy_from(w, 1) == UINT64_MAX);
	world_free(w);
}

static void test_world_timers_fire_at_their_time_and_stop(void **state)
{
	struct inbox in[1];
	struct world *w = bare_world(1, 1, in);
	struct env *env = world_node_env(w, 0);
	struct timer_count once = {.w = w}, rep = {.w = w}, stopped = {.w = w};
	env_timer_id a, b, c;

	assert_int_equal(env->ops->timer_start(env, 250, 0, count_timer, &once, &a), 0);
	assert_int_equal(env->ops->timer_start(env, 100, 100, count_timer, &rep, &b), 0);
	assert_int_equal(env->ops->timer_start(env, 10, 0, count_timer, &stopped, &c), 0);
	rep.stop_me = b;
	env->ops->timer_stop(env, c);
	env->ops->timer_stop(env, c);	  /* twice: harmless */
	env->ops->timer_stop(env, 12345); /* unknown: harmless */
	run_for(w, 1000 * 1000);
	assert_int_equal(once.fired, 1);
	assert_int_equal(once.last_us, 250 * 1000);
	assert_int_equal(rep.fired, 3); /* stopped itself at the third */
	assert_int_equal(rep.last_us, 300 * 1000);
	assert_int_equal(stopped.fired, 0);
	assert_int_equal(env->ops->now_ms(env), 1000);
	assert_int_equal(world_pending(w), 0);
	world_free(w);
}

static void test_world_timers_die_with_their_node(void **state)
{
	struct inbox in[1];
	struct world *w = bare_world(1, 1, in);
	struct env *env = world_node_env(w, 0);
	struct timer_count rep = {.w = w};
	env_timer_id id;

	assert_int_equal(env->ops->timer_start(env, 100, 100, count_timer, &rep, &id), 0);
	run_for(w, 250 * 1000);
	assert_int_equal(rep.fired, 2);
	assert_int_equal(world_node_kill(w, 0, true, false), 0);
	assert_int_equal(world_node_kill(w, 0, true, false), CS_ENOENT);
	run_for(w, 1000 * 1000);
	assert_int_equal(rep.fired, 2);
	assert_int_equal(world_node_start(w, 0), 0);
	assert_int_equal(world_node_start(w, 0), CS_EEXIST);
	run_for(w, 1000 * 1000);
	assert_int_equal(rep.fired, 2); /* the old process's timer stays dead */
	world_free(w);
}

/* ---------------------------------------------------------------- network */

static void test_net_delivers_within_default_latency_in_order(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(7, 2, in);
	struct sim_net_stats st;

	world_net_set_delay(w, 2000, 9000);
	for (uint64_t i = 1; i <= 1000; i++) {
		assert_int_equal(send_probe(w, 0, 1, i), 0);
		run_for(w, 100);
	}
	run_all(w);
	assert_int_equal(in[1].count, 1000);
	assert_true(in[1].min_delay_us >= 2000);
	assert_true(in[1].max_delay_us <= 9000);
	/* a link without a rule is steady: one latency of its own */
	assert_int_equal(in[1].max_delay_us, in[1].min_delay_us);
	assert_int_equal(in[1].out_of_order, 0); /* FIFO per link, as TCP */
	world_net_stats(w, &st);
	assert_int_equal(st.sent, 1000);
	assert_int_equal(st.delivered, 1000);
	world_free(w);
}

static void test_net_link_delay_range_holds_for_every_message(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(3, 2, in);
	struct sim_link_rule r = {.src = 0,
				  .dst = 1,
				  .has_delay = true,
				  .delay_min_us = 5000,
				  .delay_max_us = 20000};

	assert_int_equal(world_net_link(w, &r), 0);
	for (uint64_t i = 1; i <= 20000; i++) {
		send_probe(w, 0, 1, i);
		send_probe(w, 1, 0, i);
		run_for(w, 50);
	}
	run_all(w);
	/* dense sending: FIFO holds messages back, never past the range */
	assert_int_equal(in[1].count, 20000);
	assert_true(in[1].min_delay_us >= 5000);
	assert_true(in[1].max_delay_us <= 20000);
	/* the other direction keeps the default (1..3 ms) */
	assert_true(in[0].max_delay_us <= 3000);
	/* sparse sending: the whole range is used, not one end of it */
	memset(&in[1], 0, sizeof in[1]);
	in[1].w = w;
	for (uint64_t i = 1; i <= 2000; i++) {
		send_probe(w, 0, 1, i);
		run_for(w, 25000);
	}
	run_all(w);
	assert_int_equal(in[1].count, 2000);
	assert_true(in[1].min_delay_us >= 5000);
	assert_true(in[1].max_delay_us <= 20000);
	assert_true(in[1].min_delay_us < 5200);
	assert_true(in[1].max_delay_us > 19800);
	world_free(w);
}

static void test_net_loss_rate_within_one_percent_over_100k(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(11, 2, in);
	struct sim_link_rule r = {.src = 0, .dst = 1, .loss_ppm = 200000};
	struct sim_net_stats st;
	double rate;

	assert_int_equal(world_net_link(w, &r), 0);
	for (uint64_t i = 0; i < 100000; i++) {
		send_probe(w, 0, 1, i);
		if (i % 64 == 0)
			run_for(w, 10);
	}
	run_all(w);
	rate = 1.0 - (double)in[1].count / 100000.0;
	assert_true(rate > 0.19 && rate < 0.21);
	world_net_stats(w, &st);
	assert_int_equal(st.dropped_loss + in[1].count, 100000);
	world_free(w);
}

static void test_net_dup_and_reorder_when_asked(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(5, 2, in);
	struct sim_link_rule r = {.src = 0,
				  .dst = 1,
				  .dup_ppm = 100000,
				  .reorder_ppm = 500000,
				  .has_delay = true,
				  .delay_min_us = 1000,
				  .delay_max_us = 50000};
	struct sim_net_stats st;

	assert_int_equal(world_net_link(w, &r), 0);
	for (uint64_t i = 1; i <= 10000; i++) {
		send_probe(w, 0, 1, i);
		run_for(w, 100);
	}
	run_all(w);
	world_net_stats(w, &st);
	assert_true(st.duplicated > 900 && st.duplicated < 1100);
	assert_int_equal(in[1].count, 10000 + st.duplicated);
	assert_true(in[1].out_of_order > 100);
	world_free(w);
}

/* What the send tap saw: the sequence numbers in the order it saw them. */
struct send_log {
	uint64_t seqs[64];
	size_t count;
	uint32_t last_src, last_dst;
};

static void send_log_tap(void *ctx, const struct world *w, uint32_t src, uint32_t dst,
			 const uint8_t *data, size_t len)
{
	struct send_log *l = ctx;
	struct probe p;

	(void)w;
	assert_int_equal(len, sizeof p);
	memcpy(&p, data, sizeof p);
	if (l->count < 64)
		l->seqs[l->count++] = p.seq;
	l->last_src = src;
	l->last_dst = dst;
}

static void test_net_send_tap_sees_frames_in_send_order_before_faults(void **state)
{
	/* A link that loses, duplicates and reorders: the send tap still
	 * sees each frame once, as it was sent, dropped ones included */
	struct inbox in[2];
	struct world *w = bare_world(5, 2, in);
	struct sim_link_rule r = {.src = 0,
				  .dst = 1,
				  .loss_ppm = 300000,
				  .dup_ppm = 300000,
				  .reorder_ppm = 500000,
				  .has_delay = true,
				  .delay_min_us = 1000,
				  .delay_max_us = 50000};
	struct send_log log = {0};

	assert_int_equal(world_net_link(w, &r), 0);
	world_set_send_tap(w, send_log_tap, &log);
	for (uint64_t i = 1; i <= 50; i++)
		send_probe(w, 0, 1, i);
	run_all(w);
	assert_int_equal(log.count, 50);
	for (size_t i = 0; i < log.count; i++)
		assert_int_equal(log.seqs[i], i + 1);
	assert_int_equal(log.last_src, 0);
	assert_int_equal(log.last_dst, 1);
	assert_true(in[1].count != 50 || in[1].out_of_order > 0);
	world_free(w);
}

static void test_net_partition_blocks_both_ways_and_heal_restores(void **state)
{
	struct inbox in[3];
	struct world *w = bare_world(2, 3, in);
	uint32_t groups[3] = {1, 2, 2}; /* n0 | n1 n2 */

	assert_int_equal(world_net_partition(w, groups, 3, 0), 0);
	assert_true(world_net_blocked(w, 0, 1));
	assert_true(world_net_blocked(w, 1, 0));
	assert_false(world_net_blocked(w, 1, 2));
	send_probe(w, 0, 1, 1);
	send_probe(w, 1, 0, 1);
	send_probe(w, 1, 2, 1);
	run_for(w, 100 * 1000);
	assert_int_equal(in[0].count, 0);
	assert_int_equal(in[1].count, 0);
	assert_int_equal(in[2].count, 1);
	world_net_heal(w);
	assert_false(world_net_blocked(w, 0, 1));
	send_probe(w, 0, 1, 2);
	send_probe(w, 1, 0, 2);
	run_for(w, 100 * 1000);
	assert_int_equal(in[0].count, 1);
	assert_int_equal(in[1].count, 1);
	world_free(w);
}

static void test_net_partition_drops_messages_in_flight(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(2, 2, in);
	uint32_t groups[2] = {1, 2};

	send_probe(w, 0, 1, 1); /* due in 1..3 ms */
	assert_int_equal(world_net_partition(w, groups, 2, 0), 0);
	run_for(w, 100 * 1000);
	assert_int_equal(in[1].count, 0);
	world_free(w);
}

static void test_net_star_group_takes_nodes_added_later(void **state)
{
	struct inbox in[3];
	struct world *w = bare_world(2, 2, in);
	uint32_t groups[2] = {1, 0}; /* n0 | * */
	uint32_t index;

	assert_int_equal(world_net_partition(w, groups, 2, 2), 0);
	assert_true(world_net_blocked(w, 0, 1));
	assert_int_equal(world_node_add(w, "late", NULL, NULL, &index), 0);
	assert_true(world_net_blocked(w, 0, index));
	assert_false(world_net_blocked(w, 1, index));
	world_free(w);
}

static void test_net_one_way_fault_blocks_one_direction_only(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(4, 2, in);
	struct sim_link_rule r = {.src = 0, .dst = 1, .loss_ppm = 1000000};

	assert_int_equal(world_net_link(w, &r), 0);
	for (uint64_t i = 0; i < 100; i++) {
		send_probe(w, 0, 1, i);
		send_probe(w, 1, 0, i);
	}
	run_all(w);
	assert_int_equal(in[1].count, 0);
	assert_int_equal(in[0].count, 100);
	world_net_heal(w);
	send_probe(w, 0, 1, 200);
	run_all(w);
	assert_int_equal(in[1].count, 1);
	world_free(w);
}

struct send_trace {
	uint32_t node;
	uint64_t sends, delivers;
};

static void count_node_events(void *ctx, const struct world *w, us_t at_us, uint32_t node,
			      enum sim_ev_kind kind, uint64_t a, uint64_t b)
{
	struct send_trace *t = ctx;
	if (node != t->node)
		return;
	if (kind == SIM_EV_SEND)
		t->sends++;
	if (kind == SIM_EV_MSG)
		t->delivers++;
}

static void test_net_killed_node_sends_and_receives_nothing(void **state)
{
	static const char *const peers[] = {"a", "b", "c"};
	const struct pingprog_cfg cfg = {peers, 3, 10, false};
	struct world *w = world_new(9);
	struct send_trace tr = {.node = 2};
	uint32_t idx;
	struct sim_net_stats before, after;

	for (int i = 0; i < 3; i++) {
		assert_int_equal(world_node_add(w, peers[i], &pingprog_ops, &cfg, &idx),
				 0);
		assert_int_equal(world_node_start(w, idx), 0);
	}
	run_for(w, 1000 * 1000);
	assert_int_equal(world_node_kill(w, 2, true, false), 0);
	world_set_trace(w, count_node_events, &tr);
	world_net_stats(w, &before);
	run_for(w, 5 * 1000 * 1000);
	world_net_stats(w, &after);
	assert_int_equal(tr.sends, 0);
	assert_int_equal(tr.delivers, 0);
	assert_true(after.dropped_down > before.dropped_down); /* others tried */
	assert_null(world_node_state(w, 2));
	assert_int_equal(world_node_start(w, 2), 0);
	run_for(w, 1000 * 1000);
	assert_true(tr.sends > 0);
	assert_true(tr.delivers > 0);
	world_free(w);
}

static void test_net_peers_hear_a_killed_node_go_down(void **state)
{
	struct inbox in[3];
	struct world *w = bare_world(4, 3, in);

	send_probe(w, 1, 0, 1);
	send_probe(w, 0, 2, 1);
	run_all(w);
	assert_int_equal(in[0].ups, 1);
	assert_int_equal(in[2].ups, 1);
	assert_int_equal(world_node_kill(w, 0, true, false), 0);
	run_all(w);
	assert_int_equal(in[1].downs, 1);
	assert_int_equal(in[2].downs, 1);
	world_free(w);
}

static void test_world_disk_survives_kill_and_restart(void **state)
{
	static const char *const peers[] = {"a", "b"};
	const struct pingprog_cfg cfg = {peers, 2, 10, true};
	struct world *w = world_new(21);
	struct pingprog *p;
	uint64_t pongs;
	uint32_t idx;

	for (int i = 0; i < 2; i++) {
		assert_int_equal(world_node_add(w, peers[i], &pingprog_ops, &cfg, &idx),
				 0);
		assert_int_equal(world_node_start(w, idx), 0);
	}
	run_for(w, 2 * 1000 * 1000);
	p = world_node_state(w, 0);
	assert_non_null(p);
	pongs = p->pongs_received;
	assert_true(pongs > 10);
	assert_int_equal(world_node_kill(w, 0, true, true), 0);
	assert_int_equal(world_node_start(w, 0), 0);
	p = world_node_state(w, 0);
	assert_non_null(p);
	assert_int_equal(p->stored_pongs, pongs); /* committed: survives */
	assert_int_equal(p->pongs_received, 0);
	world_free(w);
}

/* ---------------------------------------------------------------- determinism */

static uint64_t ping_world_hash(uint64_t seed, size_t nodes, us_t run_us)
{
	static const char *const names[] = {"a", "b", "c", "d", "e"};
	const struct pingprog_cfg cfg = {names, nodes, 7, true};
	struct world *w = world_new(seed);
	struct sim_link_rule r = {.src = 0,
				  .dst = 1,
				  .loss_ppm = 100000,
				  .dup_ppm = 50000,
				  .reorder_ppm = 100000};
	uint32_t idx;
	uint64_t h;

	for (size_t i = 0; i < nodes; i++) {
		assert_int_equal(world_node_add(w, names[i], &pingprog_ops, &cfg, &idx),
				 0);
		assert_int_equal(world_node_start(w, idx), 0);
	}
	assert_int_equal(world_net_link(w, &r), 0);
	run_for(w, run_us / 2);
	world_node_kill(w, 2, true, false);
	run_for(w, run_us / 4);
	world_node_start(w, 2);
	run_for(w, run_us / 4);
	h = world_hash(w);
	assert_true(world_events(w) > 1000);
	world_free(w);
	return h;
}

static void test_world_same_seed_same_hash_other_seed_other_hash(void **state)
{
	uint64_t a = ping_world_hash(42, 5, 3000000);
	uint64_t b = ping_world_hash(42, 5, 3000000);
	uint64_t c = ping_world_hash(43, 5, 3000000);
	assert_int_equal(a, b);
	assert_int_not_equal(a, c);
}

static void test_world_records_every_event_for_divergence(void **state)
{
	struct inbox in[2];
	struct world *w = bare_world(1, 2, in);
	const struct sim_trace_rec *recs;
	size_t n;

	world_record(w, true);
	send_probe(w, 0, 1, 1);
	run_all(w);
	recs = world_records(w, &n);
	assert_int_equal(n, 2); /* the send and the delivery */
	assert_int_equal(recs[0].kind, SIM_EV_SEND);
	assert_int_equal(recs[1].kind, SIM_EV_MSG);
	assert_int_equal(recs[1].node, 1);
	assert_true(recs[1].at_us >= 1000);
	world_free(w);
}

static void test_net_rejects_oversized_and_unknown(void **state)
{
	struct inbox in[1];
	struct world *w = bare_world(1, 1, in);
	struct env *env = world_node_env(w, 0);
	uint8_t *big = calloc(1, 4u * 1024 * 1024 + 1);

	assert_non_null(big);
	assert_int_equal(env->ops->send(env, "n0", big, 4u * 1024 * 1024 + 1), CS_ELIMIT);
	assert_int_equal(env->ops->send(env, "nobody", big, 1), CS_EINVAL);
	free(big);
	world_free(w);
}

/* ---------------------------------------------------------------- env exit */

/* A program that asks to exit from a timer 1 s after it starts, twice. */
struct exitprog {
	struct env *env;
	int fired;
	bool ran_after_exit;
};

static void exitprog_timer(struct env *env, env_timer_id id, void *data)
{
	struct exitprog *p = data;
	(void)id;
	p->fired++;
	env->ops->exit(env, "disk full");
	env->ops->exit(env, "again"); /* calls after the first do nothing */
}

static int exitprog_start(const void *cfg, struct env *env, void **state)
{
	struct exitprog *p = calloc(1, sizeof *p);
	env_timer_id id;
	(void)cfg;
	if (!p)
		return CS_ENOMEM;
	p->env = env;
	if (env->ops->timer_start(env, 1000, 0, exitprog_timer, p, &id)) {
		free(p);
		return CS_ELIMIT;
	}
	*state = p;
	return 0;
}

static void exitprog_stop(void *state)
{
	free(state);
}

static const struct env_program_ops exitprog_ops = {exitprog_start, exitprog_stop};

struct down_trace {
	int downs;
	uint64_t why;
	us_t at_us;
};

static void record_downs(void *ctx, const struct world *w, us_t at_us, uint32_t node,
			 enum sim_ev_kind kind, uint64_t a, uint64_t b)
{
	struct down_trace *d = ctx;
	(void)w;
	(void)node;
	(void)b;
	if (kind != SIM_EV_NODE_DOWN)
		return;
	d->downs++;
	d->why = a;
	d->at_us = at_us;
}

/* env exit: the node goes down after the current callback, traced as an
 * exit (a = WORLD_DOWN_EXIT); a kill of the exited node finds it already
 * down; a start brings it back (its program runs again). */
static void test_world_env_exit_is_a_process_death_a_restart_undoes(void **state)
{
	struct world *w = world_new(3);
	struct down_trace d = {0};
	uint32_t idx;
	uint32_t inc;

	assert_non_null(w);
	world_set_trace(w, record_downs, &d);
	assert_int_equal(world_node_add(w, "m1", &exitprog_ops, NULL, &idx), 0);
	assert_int_equal(world_node_start(w, idx), 0);
	assert_int_equal(world_node_up_since(w, idx), 0);
	inc = world_node_incarnation(w, idx);
	run_for(w, 1500 * 1000);
	assert_false(world_node_is_up(w, idx));
	assert_int_equal(d.downs, 1);
	assert_int_equal(d.why, WORLD_DOWN_EXIT);
	assert_int_equal(d.at_us, 1000 * 1000);
	assert_int_equal(world_node_kill(w, idx, false, false), CS_ENOENT);
	assert_int_equal(d.downs, 1);
	assert_int_equal(world_node_start(w, idx), 0);
	assert_true(world_node_is_up(w, idx));
	assert_true(world_node_incarnation(w, idx) > inc);
	assert_int_equal(world_node_up_since(w, idx), 1500 * 1000);
	run_for(w, 1500 * 1000); /* it exits again, a second after its start */
	assert_int_equal(d.downs, 2);
	assert_int_equal(d.at_us, 2500 * 1000);
	world_free(w);
}

/* ---------------------------------------------------------------- identity */

struct ident_box {
	uint64_t count;
	struct env_identity last;
};

static void ident_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		       void *data)
{
	struct ident_box *b = data;
	(void)from;
	(void)buf;
	(void)len;
	b->count++;
	env->ops->sender(env, &b->last);
}

/* A CA made on node ca_node's env: its certificate and key. */
struct test_ca {
	uint8_t cert[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	size_t cert_len, key_len;
};

static void make_ca(struct world *w, uint32_t on, uint64_t cluster_id, struct test_ca *ca)
{
	struct env *env = world_node_env(w, on);
	assert_int_equal(env->ops->pki_ca_create(env, cluster_id, 365ull * 86400 * 1000,
						 ca->cert, sizeof ca->cert, &ca->cert_len,
						 ca->key, sizeof ca->key, &ca->key_len),
			 0);
}

/* Gives node a certificate of ca naming node_id and role, valid life_ms,
 * through its own env (pki_csr, pki_sign, pki_install), trusting roots. */
static int enroll(struct world *w, uint32_t node, const struct test_ca *ca,
		  uint64_t node_id, uint64_t cluster_id, enum env_role role, ms_t life_ms,
		  const struct env_blob *roots, size_t root_count)
{
	struct env *env = world_node_env(w, node);
	uint8_t csr[PKI_DER_BYTES_MAX], cert[PKI_DER_BYTES_MAX];
	size_t csr_len, cert_len;
	struct env_blob ca_cert = {ca->cert, ca->cert_len},
			ca_key = {ca->key, ca->key_len};
	struct env_blob csr_blob, cert_blob;
	struct env_identity who = {
		.node_id = node_id, .cluster_id = cluster_id, .role = role};

	assert_int_equal(env->ops->pki_csr(env, csr, sizeof csr, &csr_len), 0);
	csr_blob = (struct env_blob){csr, csr_len};
	assert_int_equal(env->ops->pki_sign(env, &ca_cert, &ca_key, &csr_blob, &who,
					    life_ms, cert, sizeof cert, &cert_len),
			 0);
	cert_blob = (struct env_blob){cert, cert_len};
	return env->ops->pki_install(env, &cert_blob, roots, root_count);
}

/* A world of n bare nodes listening into boxes; node 0 holds the CA of
 * cluster 7; nodes 0..enrolled-1 get certificates (node 0 a manager's, the
 * others workers', node ids 100 + i) trusting it. */
static struct world *pki_world(uint64_t seed, size_t n, size_t enrolled,
			       struct ident_box *boxes, struct test_ca *ca)
{
	struct world *w = world_new(seed);
	struct env_blob root;

	assert_non_null(w);
	for (size_t i = 0; i < n; i++) {
		char name[24];
		uint32_t index;
		snprintf(name, sizeof name, "n%zu", i);
		assert_int_equal(world_node_add(w, name, NULL, NULL, &index), 0);
		assert_int_equal(world_node_start(w, index), 0);
		memset(&boxes[i], 0, sizeof boxes[i]);
		struct env *env = world_node_env(w, index);
		assert_int_equal(env->ops->listen(env, ident_recv, NULL, &boxes[i]), 0);
	}
	make_ca(w, 0, 7, ca);
	root = (struct env_blob){ca->cert, ca->cert_len};
	for (size_t i = 0; i < enrolled; i++)
		assert_int_equal(enroll(w, (uint32_t)i, ca, 100 + i, 7,
					i == 0 ? ENV_ROLE_MANAGER : ENV_ROLE_WORKER,
					90ull * 86400 * 1000, &root, 1),
				 0);
	return w;
}

static void send_one(struct world *w, uint32_t from, uint32_t to)
{
	struct env *env = world_node_env(w, from);
	uint8_t b = 1;
	assert_int_equal(env->ops->send(env, world_node_name(w, to), &b, 1), 0);
}

static void test_world_sender_names_the_senders_node_and_role(void **state)
{
	struct ident_box boxes[3];
	struct test_ca ca;
	struct world *w = pki_world(1, 3, 3, boxes, &ca);
	uint8_t digest[ENV_DIGEST_BYTES];

	(void)state;
	send_one(w, 1, 0);
	send_one(w, 0, 2);
	run_for(w, 1000 * 1000);
	assert_int_equal(boxes[0].count, 1);
	assert_int_equal(boxes[0].last.node_id, 101);
	assert_int_equal(boxes[0].last.role, ENV_ROLE_WORKER);
	assert_int_equal(boxes[0].last.cluster_id, 7);
	assert_int_equal(boxes[0].last.life_ms, 90ull * 86400 * 1000);
	assert_int_equal(boxes[0].last.expires_ms, 90ull * 86400 * 1000);
	pki_digest(ca.cert, ca.cert_len, digest);
	assert_memory_equal(boxes[0].last.root, digest, sizeof digest);
	assert_int_equal(boxes[2].count, 1);
	assert_int_equal(boxes[2].last.node_id, 100);
	assert_int_equal(boxes[2].last.role, ENV_ROLE_MANAGER);
	/* outside a recv callback: nothing */
	struct env_identity id;
	world_node_env(w, 0)->ops->sender(world_node_env(w, 0), &id);
	assert_int_equal(id.node_id, 0);
	world_free(w);
}

static void test_world_sender_of_another_ca_is_zero(void **state)
{
	struct ident_box boxes[3];
	struct test_ca ca, other;
	struct world *w = pki_world(2, 3, 1, boxes, &ca);
	struct env_blob roots[2];

	(void)state;
	/* n1: a certificate of another CA of the same cluster id; it trusts
	 * both roots, so its own TLS check lets it reach n0 */
	make_ca(w, 1, 7, &other);
	roots[0] = (struct env_blob){ca.cert, ca.cert_len};
	roots[1] = (struct env_blob){other.cert, other.cert_len};
	assert_int_equal(enroll(w, 1, &other, 101, 7, ENV_ROLE_MANAGER,
				90ull * 86400 * 1000, roots, 2),
			 0);
	/* n2: no certificate, no roots: it sends to anyone */
	send_one(w, 1, 0);
	send_one(w, 2, 0);
	run_for(w, 1000 * 1000);
	assert_int_equal(boxes[0].count, 2);
	assert_int_equal(boxes[0].last.node_id, 0);
	assert_int_equal(boxes[0].last.role, ENV_ROLE_NONE);
	world_free(w);
}

static void test_world_sender_expired_at_virtual_time_is_zero(void **state)
{
	struct ident_box boxes[2];
	struct test_ca ca;
	struct world *w = pki_world(3, 2, 1, boxes, &ca);
	struct env_blob root = {ca.cert, ca.cert_len};

	(void)state;
	assert_int_equal(enroll(w, 1, &ca, 101, 7, ENV_ROLE_WORKER, 10 * 1000, &root, 1),
			 0);
	run_for(w, 5 * 1000 * 1000);
	send_one(w, 1, 0);
	run_for(w, 1000 * 1000);
	assert_int_equal(boxes[0].count, 1);
	assert_int_equal(boxes[0].last.node_id, 101);
	assert_int_equal(boxes[0].last.expires_ms, 10 * 1000);
	run_for(w, 5 * 1000 * 1000); /* 11 s: past its end */
	/* n0's own check drops what it sends to n1 now; n1 has no check
	 * against itself, so its message arrives, proving nothing */
	send_one(w, 1, 0);
	run_for(w, 1000 * 1000);
	assert_int_equal(boxes[0].count, 2);
	assert_int_equal(boxes[0].last.node_id, 0);
	world_free(w);
}

static void test_world_pin_mismatch_drops_at_send(void **state)
{
	struct ident_box boxes[3];
	struct test_ca ca;
	struct world *w = pki_world(4, 3, 1, boxes, &ca);
	struct sim_net_stats st;
	uint8_t good[ENV_DIGEST_BYTES], bad[ENV_DIGEST_BYTES];
	struct env *e1 = world_node_env(w, 1), *e2 = world_node_env(w, 2);

	(void)state;
	pki_digest(ca.cert, ca.cert_len, good);
	memcpy(bad, good, sizeof bad);
	bad[0] ^= 1;
	assert_int_equal(e1->ops->pki_pin(e1, bad), 0);
	assert_int_equal(e2->ops->pki_pin(e2, good), 0);
	send_one(w, 1, 0); /* a fake manager, as the token's digest shows */
	send_one(w, 2, 0); /* the real one */
	run_for(w, 1000 * 1000);
	world_net_stats(w, &st);
	assert_int_equal(st.dropped_auth, 1);
	assert_int_equal(boxes[0].count, 1);
	/* the pinned joiner has no certificate: it proves nothing */
	assert_int_equal(boxes[0].last.node_id, 0);
	/* n0 answers the joiner on the connection it opened (env reply), and
	 * the pinned joiner identifies n0 by the chain n0 presents; a send
	 * to a node without a certificate is dropped (a dial would fail its
	 * TLS check), answer or not */
	{
		struct env *e0 = world_node_env(w, 0);
		uint8_t b = 1;
		assert_int_not_equal(boxes[0].last.conn, 0);
		assert_int_equal(e0->ops->reply(e0, boxes[0].last.conn, &b, 1), 0);
	}
	send_one(w, 0, 2);
	send_one(w, 0, 1);
	run_for(w, 1000 * 1000);
	assert_int_equal(boxes[2].count, 1);
	assert_int_equal(boxes[2].last.node_id, 100);
	assert_int_equal(boxes[1].count, 0);
	world_net_stats(w, &st);
	assert_int_equal(st.dropped_auth, 3);
	world_free(w);
}

static void test_world_identity_survives_restart(void **state)
{
	struct ident_box boxes[2];
	struct test_ca ca;
	struct world *w = pki_world(5, 2, 2, boxes, &ca);
	struct env_identity id;
	struct env_blob own = {NULL, 0};
	struct env *e1 = world_node_env(w, 1);

	(void)state;
	assert_int_equal(world_node_kill(w, 1, true, true), 0);
	assert_int_equal(world_node_start(w, 1), 0);
	assert_int_equal(e1->ops->listen(e1, ident_recv, NULL, &boxes[1]), 0);
	assert_int_equal(e1->ops->pki_info(e1, &own, &id), 0);
	assert_int_equal(id.node_id, 101);
	send_one(w, 1, 0);
	run_for(w, 1000 * 1000);
	assert_int_equal(boxes[0].count, 1);
	assert_int_equal(boxes[0].last.node_id, 101);
	world_free(w);
}

static void test_world_pki_install_fails_under_a_disk_fault(void **state)
{
	struct ident_box boxes[2];
	struct test_ca ca;
	struct world *w = pki_world(6, 2, 1, boxes, &ca);
	struct env_blob root = {ca.cert, ca.cert_len}, own = {NULL, 0};
	struct env_identity id;
	struct env *e1 = world_node_env(w, 1);

	(void)state;
	assert_int_equal(world_disk_fault(w, 1, SIMVFS_FAULT_EIO_SYNC, UINT64_MAX), 0);
	assert_int_equal(enroll(w, 1, &ca, 101, 7, ENV_ROLE_WORKER, 60 * 1000, &root, 1),
			 CS_ESTORAGE);
	assert_int_equal(e1->ops->pki_info(e1, &own, &id), CS_ENOENT);
	assert_int_equal(world_disk_fault(w, 1, 0, 0), 0);
	assert_int_equal(enroll(w, 1, &ca, 101, 7, ENV_ROLE_WORKER, 60 * 1000, &root, 1),
			 0);
	assert_int_equal(e1->ops->pki_info(e1, &own, &id), 0);
	assert_int_equal(id.node_id, 101);
	world_free(w);
}

/* The bytes of a CA and a CSR made on node 0 of a world of seed. */
static void pki_bytes(uint64_t seed, uint8_t *out, size_t cap, size_t *len)
{
	struct ident_box boxes[1];
	struct test_ca ca;
	struct world *w = pki_world(seed, 1, 0, boxes, &ca);
	struct env *env = world_node_env(w, 0);
	size_t csr_len;

	assert_true(ca.cert_len < cap);
	memcpy(out, ca.cert, ca.cert_len);
	assert_int_equal(
		env->ops->pki_csr(env, out + ca.cert_len, cap - ca.cert_len, &csr_len),
		0);
	*len = ca.cert_len + csr_len;
	world_free(w);
}

static void test_world_pki_is_deterministic(void **state)
{
	uint8_t a[2 * PKI_DER_BYTES_MAX], b[2 * PKI_DER_BYTES_MAX],
		c[2 * PKI_DER_BYTES_MAX];
	size_t la, lb, lc;

	(void)state;
	pki_bytes(9, a, sizeof a, &la);
	pki_bytes(9, b, sizeof b, &lb);
	pki_bytes(10, c, sizeof c, &lc);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	assert_true(la != lc || memcmp(a, c, la) != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_world_same_instant_runs_in_schedule_order),
		cmocka_unit_test(test_world_many_events_run_by_time_then_schedule),
		cmocka_unit_test(test_world_timers_fire_at_their_time_and_stop),
		cmocka_unit_test(test_world_timers_die_with_their_node),
		cmocka_unit_test(test_world_disk_fault_times_in_virtual_time),
		cmocka_unit_test(test_net_delivers_within_default_latency_in_order),
		cmocka_unit_test(test_net_link_delay_range_holds_for_every_message),
		cmocka_unit_test(test_net_loss_rate_within_one_percent_over_100k),
		cmocka_unit_test(test_net_dup_and_reorder_when_asked),
		cmocka_unit_test(
			test_net_send_tap_sees_frames_in_send_order_before_faults),
		cmocka_unit_test(test_net_partition_blocks_both_ways_and_heal_restores),
		cmocka_unit_test(test_net_partition_drops_messages_in_flight),
		cmocka_unit_test(test_net_star_group_takes_nodes_added_later),
		cmocka_unit_test(test_net_one_way_fault_blocks_one_direction_only),
		cmocka_unit_test(test_net_killed_node_sends_and_receives_nothing),
		cmocka_unit_test(test_net_peers_hear_a_killed_node_go_down),
		cmocka_unit_test(test_world_disk_survives_kill_and_restart),
		cmocka_unit_test(test_world_same_seed_same_hash_other_seed_other_hash),
		cmocka_unit_test(test_world_records_every_event_for_divergence),
		cmocka_unit_test(test_net_rejects_oversized_and_unknown),
		cmocka_unit_test(test_world_env_exit_is_a_process_death_a_restart_undoes),
		cmocka_unit_test(test_world_sender_names_the_senders_node_and_role),
		cmocka_unit_test(test_world_sender_of_another_ca_is_zero),
		cmocka_unit_test(test_world_sender_expired_at_virtual_time_is_zero),
		cmocka_unit_test(test_world_pin_mismatch_drops_at_send),
		cmocka_unit_test(test_world_identity_survives_restart),
		cmocka_unit_test(test_world_pki_install_fails_under_a_disk_fault),
		cmocka_unit_test(test_world_pki_is_deterministic),
	};
	return cmocka_run_group_tests_name("world", tests, NULL, NULL);
}
