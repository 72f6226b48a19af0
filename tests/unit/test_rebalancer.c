/* Tests of the rebalancer's plan (core/rebalancer.c): which tasks move,
 * within which budget, never against a filter of the scheduler, never a
 * move of no gain; and that the scheduler, given the plan's replacements,
 * puts them where the plan expects. Stores are built with store_batch_*
 * and store_apply, as the Raft FSM does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "core/rebalancer.h"
#include "core/scheduler.h"
#include "core/store.h"

#define KIND_CREATE CS__STORE_ACTION__KIND__KIND_CREATE
#define KIND_UPDATE CS__STORE_ACTION__KIND__KIND_UPDATE
#define ST_PENDING  CS__TASK_STATE__TASK_STATE_PENDING
#define ST_RUNNING  CS__TASK_STATE__TASK_STATE_RUNNING
#define ST_SHUTDOWN CS__TASK_STATE__TASK_STATE_SHUTDOWN
#define GB	    (1024ull * 1024 * 1024)
#define SVC	    100u

struct world {
	struct store *s;
	uint64_t index;
	struct store_batch b;
	uint64_t next_task;
};

static void world_init(struct world *w)
{
	w->s = store_new();
	assert_non_null(w->s);
	w->index = 0;
	w->next_task = 1000;
	store_batch_init(&w->b);
}

static void world_free(struct world *w)
{
	store_batch_free(&w->b);
	store_free(w->s);
}

static void world_apply(struct world *w, struct store_batch *b)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_batch_encode(b, 1, w->index + 1, &buf, &len), 0);
	assert_int_equal(store_apply(w->s, buf, len, ++w->index, NULL, NULL), 0);
	free(buf);
	store_batch_free(b);
}

static void world_commit(struct world *w)
{
	world_apply(w, &w->b);
	store_batch_init(&w->b);
}

struct node_opts {
	Cs__NodeAvailability availability;
	uint64_t memory_bytes;
	const char *labels[2][2];
};

static void add_node(struct world *w, uint64_t id, const struct node_opts *o)
{
	Cs__Node n = CS__NODE__INIT;
	Cs__Resources r = CS__RESOURCES__INIT;
	Cs__Label labels[2], *lp[2];
	size_t nl = 0;
	char host[16];

	snprintf(host, sizeof host, "n%llu", (unsigned long long)id);
	n.id = id;
	n.hostname = host;
	n.role = CS__NODE_ROLE__NODE_ROLE_WORKER;
	n.availability =
		o ? o->availability : CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
	n.state = CS__NODE_STATE__NODE_STATE_READY;
	r.millicpus = 4000;
	r.memory_bytes = o && o->memory_bytes ? o->memory_bytes : 8 * GB;
	n.resources = &r;
	for (; o && nl < 2 && o->labels[nl][0]; nl++) {
		cs__label__init(&labels[nl]);
		labels[nl].key = (char *)o->labels[nl][0];
		labels[nl].value = (char *)o->labels[nl][1];
		lp[nl] = &labels[nl];
	}
	n.n_labels = nl;
	n.labels = lp;
	assert_int_equal(store_batch_node(&w->b, KIND_CREATE, &n), 0);
}

struct svc_opts {
	bool off;		/* not opted in */
	uint64_t replicas;	/* 0: the tasks added */
	uint64_t parallelism;	/* rebalance_parallelism */
	uint64_t memory_bytes;	/* reservation */
	const char *constraint; /* one, or NULL */
	const char *spread;	/* one level, or NULL */
	Cs__UpdateStatus__State update_state;
};

static void add_service(struct world *w, uint64_t replicas, const struct svc_opts *o)
{
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__Resources res = CS__RESOURCES__INIT;
	Cs__Placement pl = CS__PLACEMENT__INIT;
	Cs__UpdateStatus us = CS__UPDATE_STATUS__INIT;
	char *cons[1], *spread[1];

	spec.name = "web";
	spec.replicas = o && o->replicas ? o->replicas : replicas;
	spec.rebalance = !(o && o->off);
	spec.rebalance_parallelism = o ? o->parallelism : 0;
	ts.reservations = &res;
	ts.placement = &pl;
	spec.task = &ts;
	if (o && o->memory_bytes)
		res.memory_bytes = o->memory_bytes;
	if (o && o->constraint) {
		cons[0] = (char *)o->constraint;
		pl.constraints = cons;
		pl.n_constraints = 1;
	}
	if (o && o->spread) {
		spread[0] = (char *)o->spread;
		pl.spread_labels = spread;
		pl.n_spread_labels = 1;
	}
	if (o && o->update_state) {
		us.state = o->update_state;
		svc.update_status = &us;
	}
	svc.id = SVC;
	svc.spec = &spec;
	svc.spec_version = 1;
	assert_int_equal(store_batch_service(&w->b, KIND_CREATE, &svc), 0);
}

/* A task of the service in slot slot, on node (0: none), desired RUNNING. */
static void add_task(struct world *w, uint64_t slot, uint64_t node, Cs__TaskState state)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	t.id = w->next_task++;
	t.service_id = SVC;
	t.slot = slot;
	t.node_id = node;
	t.spec_version = 1;
	t.desired_state = ST_RUNNING;
	t.started_ms = 1000 + t.id;
	st.state = state;
	t.status = &st;
	assert_int_equal(store_batch_task(&w->b, KIND_CREATE, &t), 0);
}

/* Nodes 1..n, the service, and counts[i] running tasks on node i + 1. */
static void build(struct world *w, size_t n, const uint64_t *counts,
		  const struct node_opts *nodes, const struct svc_opts *so)
{
	uint64_t slot = 1, total = 0;
	world_init(w);
	for (size_t i = 0; i < n; i++) {
		add_node(w, i + 1, nodes ? &nodes[i] : NULL);
		total += counts[i];
	}
	add_service(w, total, so);
	for (size_t i = 0; i < n; i++)
		for (uint64_t k = 0; k < counts[i]; k++)
			add_task(w, slot++, i + 1, ST_RUNNING);
	world_commit(w);
}

static const Cs__Service *svc_of(const struct world *w)
{
	const Cs__Service *s = store_service_get(w->s, SVC);
	assert_non_null(s);
	return s;
}

/* Does what the orchestrator and scheduler would: the moved tasks stop,
 * replacements in their slots are placed by sched_run. Checks that each
 * lands where the plan expected. */
static void carry_out(struct world *w, const struct rebalancer_plan *p)
{
	struct store_batch out;
	for (size_t i = 0; i < p->move_count; i++) {
		const Cs__Task *t = store_task_get(w->s, p->moves[i].task_id);
		Cs__Task copy = *t;
		Cs__TaskStatus st = *t->status;
		assert_int_equal(t->node_id, p->moves[i].from_node);
		copy.desired_state = ST_SHUTDOWN;
		st.state = ST_SHUTDOWN;
		copy.status = &st;
		assert_int_equal(store_batch_task(&w->b, KIND_UPDATE, &copy), 0);
		add_task(w, p->moves[i].slot, 0, ST_PENDING);
	}
	world_commit(w);
	store_batch_init(&out);
	assert_int_equal(sched_run(w->s, 0, LIMIT_SCHED_TASKS_PER_RUN, &out, NULL), 0);
	world_apply(w, &out);
	/* mark them running, and check each landed where expected */
	for (size_t i = 0; i < p->move_count; i++) {
		const Cs__Task *nt = NULL;
		for (const Cs__Task *t =
			     store_task_next_in_slot(w->s, SVC, p->moves[i].slot, NULL);
		     t; t = store_task_next_in_slot(w->s, SVC, p->moves[i].slot, t))
			if (t->desired_state == ST_RUNNING)
				nt = t;
		assert_non_null(nt);
		assert_int_equal(nt->node_id, p->moves[i].to_node);
		{
			Cs__Task copy = *nt;
			Cs__TaskStatus st = *nt->status;
			st.state = ST_RUNNING;
			copy.status = &st;
			assert_int_equal(store_batch_task(&w->b, KIND_UPDATE, &copy), 0);
		}
	}
	world_commit(w);
}

static size_t running_on(const struct world *w, uint64_t node)
{
	size_t n = 0;
	for (const Cs__Task *t = store_task_next_by_node(w->s, node, NULL); t;
	     t = store_task_next_by_node(w->s, node, t))
		n += t->desired_state == ST_RUNNING && t->status->state == ST_RUNNING;
	return n;
}

/* ---------------------------------------------------------------- tests */

static void test_rebalancer_parallelism_defaults(void **state)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__UpdateConfig up = CS__UPDATE_CONFIG__INIT;
	(void)state;
	assert_int_equal(rebalancer_parallelism(&spec), 1);
	spec.update = &up; /* parallelism 0: all at once for an update, 1 here */
	assert_int_equal(rebalancer_parallelism(&spec), 1);
	up.parallelism = 3;
	assert_int_equal(rebalancer_parallelism(&spec), 3);
	spec.rebalance_parallelism = 2;
	assert_int_equal(rebalancer_parallelism(&spec), 2);
}

static void test_rebalancer_off_moves_nothing(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {3, 3, 0};
	struct svc_opts so = {.off = true, .parallelism = 4};
	(void)state;
	build(&w, 3, counts, NULL, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.skip, REBALANCER_SKIP_OFF);
	assert_int_equal(p.move_count, 0);
	world_free(&w);
}

static void test_rebalancer_fills_the_empty_node_and_scheduler_agrees(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {3, 3, 0};
	struct svc_opts so = {.parallelism = 2};
	(void)state;
	build(&w, 3, counts, NULL, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.skip, REBALANCER_GO);
	assert_int_equal(p.imbalance, 3);
	assert_int_equal(p.budget, 2);
	assert_int_equal(p.move_count, 2);
	assert_int_equal(p.imbalance_after, 0);
	/* one from each full node, both to the empty one */
	assert_int_equal(p.moves[0].to_node, 3);
	assert_int_equal(p.moves[1].to_node, 3);
	assert_int_not_equal(p.moves[0].from_node, p.moves[1].from_node);
	carry_out(&w, &p);
	assert_int_equal(running_on(&w, 1), 2);
	assert_int_equal(running_on(&w, 2), 2);
	assert_int_equal(running_on(&w, 3), 2);
	/* balanced: nothing more */
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.move_count, 0);
	assert_int_equal(p.imbalance, 0);
	world_free(&w);
}

static void test_rebalancer_never_moves_within_one(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {3, 2, 2}; /* seven on three: as even as it gets */
	struct svc_opts so = {.parallelism = 7};
	(void)state;
	build(&w, 3, counts, NULL, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.imbalance, 1);
	assert_int_equal(p.move_count, 0);
	world_free(&w);
}

static void test_rebalancer_budget_counts_slots_not_running(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {4, 4, 0, 0};
	struct svc_opts so = {.parallelism = 2, .replicas = 9};
	(void)state;
	build(&w, 4, counts, NULL, &so);
	/* slot 9 has no running task: one of K = 2 is used */
	add_task(&w, 9, 0, ST_PENDING);
	world_commit(&w);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.unavailable, 1);
	assert_int_equal(p.budget, 1);
	assert_int_equal(p.move_count, 1);
	/* and moves_max (what the caller has left) bounds it too */
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 0, &p), 0);
	assert_int_equal(p.move_count, 0);
	world_free(&w);
}

static void test_rebalancer_respects_constraints(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {3, 1, 0};
	struct node_opts nodes[3] = {
		{.labels = {{"tier", "web"}}},
		{.labels = {{"tier", "web"}}},
		{.labels = {{"tier", "db"}}},
	};
	struct svc_opts so = {.parallelism = 4, .constraint = "node.labels.tier==web"};
	(void)state;
	build(&w, 3, counts, nodes, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.imbalance, 2); /* n3 is not eligible: 3 - 1 */
	assert_int_equal(p.move_count, 1);
	assert_int_equal(p.moves[0].from_node, 1);
	assert_int_equal(p.moves[0].to_node, 2);
	carry_out(&w, &p);
	assert_int_equal(running_on(&w, 3), 0);
	world_free(&w);
}

static void test_rebalancer_moves_nowhere_without_room(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {3, 3, 0};
	struct node_opts nodes[3] = {
		{.memory_bytes = 0}, {.memory_bytes = 0}, {.memory_bytes = 1 * GB}};
	struct svc_opts so = {.parallelism = 2, .memory_bytes = 2 * GB};
	(void)state;
	build(&w, 3, counts, nodes, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.imbalance, 3);
	assert_int_equal(p.move_count, 0); /* n3 lacks memory: no move */
	world_free(&w);
}

static void test_rebalancer_leaves_paused_nodes_alone(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {4, 0};
	struct node_opts nodes[2] = {
		{.availability = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE}, {0}};
	struct svc_opts so = {.parallelism = 2};
	(void)state;
	build(&w, 2, counts, nodes, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.move_count, 0);
	world_free(&w);
}

static void test_rebalancer_spread_preference_evens_zones_first(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	/* zone a: n1, n2 (2 + 2); zone b: n3 (0). Flat, one move would do
	 * (1, 2, 1); by zone, two go to n3 (a 2, b 2), as the scheduler
	 * would have placed them */
	const uint64_t counts[] = {2, 2, 0};
	struct node_opts nodes[3] = {
		{.labels = {{"zone", "a"}}},
		{.labels = {{"zone", "a"}}},
		{.labels = {{"zone", "b"}}},
	};
	struct svc_opts so = {.parallelism = 4, .spread = "node.labels.zone"};
	(void)state;
	build(&w, 3, counts, nodes, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.move_count, 2);
	assert_int_equal(p.moves[0].to_node, 3);
	assert_int_equal(p.moves[1].to_node, 3);
	carry_out(&w, &p);
	assert_int_equal(running_on(&w, 1), 1);
	assert_int_equal(running_on(&w, 2), 1);
	assert_int_equal(running_on(&w, 3), 2);
	/* node-level uneven (1, 1, 2) but the zones are even: no more */
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.move_count, 0);
	world_free(&w);
}

static void test_rebalancer_waits_for_an_update(void **state)
{
	struct world w;
	struct rebalancer_plan p;
	const uint64_t counts[] = {4, 0};
	struct svc_opts so = {.parallelism = 2,
			      .update_state = CS__UPDATE_STATUS__STATE__STATE_UPDATING};
	(void)state;
	build(&w, 2, counts, NULL, &so);
	assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
	assert_int_equal(p.skip, REBALANCER_SKIP_UPDATING);
	assert_int_equal(p.move_count, 0);
	assert_int_equal(p.imbalance, 4); /* still measured */
	world_free(&w);
}

static void test_rebalancer_converges_and_is_deterministic(void **state)
{
	struct world w;
	struct rebalancer_plan p, q;
	const uint64_t counts[] = {9, 0, 1, 0, 2};
	struct svc_opts so = {.parallelism = 3};
	size_t rounds = 0, moves = 0;
	(void)state;
	build(&w, 5, counts, NULL, &so);
	for (;;) {
		assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &p), 0);
		assert_int_equal(rebalancer_plan(w.s, svc_of(&w), 8, &q), 0);
		assert_memory_equal(&p, &q, sizeof p);
		if (p.move_count == 0)
			break;
		assert_true(p.move_count <= 3);
		moves += p.move_count;
		carry_out(&w, &p);
		assert_true(++rounds < 10);
	}
	/* 12 on 5: 3, 3, 2, 2, 2; the fewest moves: 9 -> 3 */
	assert_int_equal(p.imbalance, 1);
	assert_int_equal(moves, 6);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rebalancer_parallelism_defaults),
		cmocka_unit_test(test_rebalancer_off_moves_nothing),
		cmocka_unit_test(
			test_rebalancer_fills_the_empty_node_and_scheduler_agrees),
		cmocka_unit_test(test_rebalancer_never_moves_within_one),
		cmocka_unit_test(test_rebalancer_budget_counts_slots_not_running),
		cmocka_unit_test(test_rebalancer_respects_constraints),
		cmocka_unit_test(test_rebalancer_moves_nowhere_without_room),
		cmocka_unit_test(test_rebalancer_leaves_paused_nodes_alone),
		cmocka_unit_test(test_rebalancer_spread_preference_evens_zones_first),
		cmocka_unit_test(test_rebalancer_waits_for_an_update),
		cmocka_unit_test(test_rebalancer_converges_and_is_deterministic),
	};
	return cmocka_run_group_tests_name("rebalancer", tests, NULL, NULL);
}
