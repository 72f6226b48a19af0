/* Tests of the scheduler (core/scheduler.c): filters, the reasons of tasks
 * that fit nowhere, spread and spread preferences, pinned (global) tasks
 * (placed before every other), bad-node avoidance (SwarmKit's 5 failures
 * in 5 minutes per spec version),
 * batch placement equal to one at a time, bounds and determinism. Stores
 * are built with store_batch_* and store_apply, as the Raft FSM does. */
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
#include "core/scheduler.h"
#include "core/store.h"

#define KIND_CREATE CS__STORE_ACTION__KIND__KIND_CREATE
#define ST_PENDING  CS__TASK_STATE__TASK_STATE_PENDING
#define ST_ASSIGNED CS__TASK_STATE__TASK_STATE_ASSIGNED
#define ST_RUNNING  CS__TASK_STATE__TASK_STATE_RUNNING
#define ST_SHUTDOWN CS__TASK_STATE__TASK_STATE_SHUTDOWN
#define ST_FAILED   CS__TASK_STATE__TASK_STATE_FAILED
#define ST_NEW	    CS__TASK_STATE__TASK_STATE_NEW

#define GB (1024ull * 1024 * 1024)
#define MB (1024ull * 1024)

/* A test world: a store and the raft index of its last batch. */
struct world {
	struct store *s;
	uint64_t index;
	struct store_batch b; /* being built */
};

static void world_init(struct world *w)
{
	w->s = store_new();
	assert_non_null(w->s);
	w->index = 0;
	store_batch_init(&w->b);
}

static void world_free(struct world *w)
{
	store_batch_free(&w->b);
	store_free(w->s);
}

/* Applies b (and frees it); returns store_apply's verdict. */
static int world_apply(struct world *w, struct store_batch *b)
{
	uint8_t *buf;
	size_t len;
	int rv;
	assert_int_equal(store_batch_encode(b, 1, w->index + 1, &buf, &len), 0);
	rv = store_apply(w->s, buf, len, ++w->index, NULL, NULL);
	free(buf);
	store_batch_free(b);
	return rv;
}

static void world_commit(struct world *w)
{
	assert_int_equal(world_apply(w, &w->b), 0);
	store_batch_init(&w->b);
}

struct node_opts {
	const char *hostname;
	Cs__NodeRole role;
	Cs__NodeAvailability availability;
	Cs__NodeState state;
	uint64_t millicpus;
	uint64_t memory_bytes;
	const char *labels[4][2]; /* key, value; NULL key ends */
};

/* A ready, active worker with 4 CPUs and 8 GB unless o says otherwise. */
static void add_node(struct world *w, uint64_t id, const struct node_opts *o)
{
	Cs__Node n = CS__NODE__INIT;
	Cs__Resources r = CS__RESOURCES__INIT;
	Cs__Label labels[4], *lp[4];
	size_t nl = 0;

	n.id = id;
	n.hostname = (char *)(o && o->hostname ? o->hostname : "h");
	n.role = o ? o->role : CS__NODE_ROLE__NODE_ROLE_WORKER;
	n.availability =
		o ? o->availability : CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
	n.state = o && o->state ? o->state : CS__NODE_STATE__NODE_STATE_READY;
	r.millicpus = o && o->millicpus ? o->millicpus : 4000;
	r.memory_bytes = o && o->memory_bytes ? o->memory_bytes : 8 * GB;
	n.resources = &r;
	for (; o && nl < 4 && o->labels[nl][0]; nl++) {
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
	bool global;
	uint64_t millicpus;
	uint64_t memory_bytes;
	const char *constraints[4];
	const char *spread[3];
	uint64_t max_per_node;
};

static void add_service(struct world *w, uint64_t id, const struct svc_opts *o)
{
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__Resources res = CS__RESOURCES__INIT;
	Cs__Placement pl = CS__PLACEMENT__INIT;
	char name[32];
	size_t nc = 0, ns = 0;

	snprintf(name, sizeof name, "svc%llu", (unsigned long long)id);
	spec.name = name;
	spec.global = o && o->global;
	ts.reservations = &res;
	ts.placement = &pl;
	spec.task = &ts;
	if (o) {
		res.millicpus = o->millicpus;
		res.memory_bytes = o->memory_bytes;
		while (nc < 4 && o->constraints[nc])
			nc++;
		while (ns < 3 && o->spread[ns])
			ns++;
		pl.constraints = (char **)o->constraints;
		pl.spread_labels = (char **)o->spread;
		pl.max_replicas_per_node = o->max_per_node;
	}
	pl.n_constraints = nc;
	pl.n_spread_labels = ns;
	svc.id = id;
	svc.spec = &spec;
	assert_int_equal(store_batch_service(&w->b, KIND_CREATE, &svc), 0);
}

static void add_task_full(struct world *w, uint64_t id, uint64_t svc, uint64_t node,
			  Cs__TaskState desired, Cs__TaskState state, const char *msg)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	t.id = id;
	t.service_id = svc;
	t.slot = id;
	t.node_id = node;
	t.desired_state = desired;
	st.state = state;
	st.timestamp_ms = 1000;
	st.message = (char *)(msg ? msg : "");
	t.status = &st;
	assert_int_equal(store_batch_task(&w->b, KIND_CREATE, &t), 0);
}

/* A pending task, desired running, not on a node. */
static void add_pending(struct world *w, uint64_t id, uint64_t svc)
{
	add_task_full(w, id, svc, 0, ST_RUNNING, ST_PENDING, NULL);
}

/* count pending tasks of svc, ids first to first + count - 1. */
static void add_pendings(struct world *w, uint64_t first, uint64_t count, uint64_t svc)
{
	for (uint64_t i = 0; i < count; i++)
		add_pending(w, first + i, svc);
}

/* Runs the scheduler once (writes_max at the limit) and applies its batch;
 * returns the number of writes. */
static size_t sched_once(struct world *w, struct sched_stats *st)
{
	struct store_batch out;
	size_t n;
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(w->s, 0, LIMIT_SCHED_TASKS_PER_RUN, &out, st), 0);
	n = out.action_count;
	assert_int_equal(world_apply(w, &out), 0);
	return n;
}

/* Commits w's writes, then runs one scheduling pass as sched_once. */
static size_t commit_sched(struct world *w, struct sched_stats *st)
{
	world_commit(w);
	return sched_once(w, st);
}

static uint64_t node_of(const struct world *w, uint64_t task)
{
	const Cs__Task *t = store_task_get(w->s, task);
	assert_non_null(t);
	return t->node_id;
}

static Cs__TaskState state_of(const struct world *w, uint64_t task)
{
	return store_task_get(w->s, task)->status->state;
}

static const char *message_of(const struct world *w, uint64_t task)
{
	return store_task_get(w->s, task)->status->message;
}

/* Tasks of service svc on node (any state ASSIGNED..RUNNING). */
static size_t count_on(const struct world *w, uint64_t svc, uint64_t node)
{
	size_t n = 0;
	for (const Cs__Task *t = store_task_next_by_node(w->s, node, NULL); t;
	     t = store_task_next_by_node(w->s, node, t))
		if (t->service_id == svc && t->status->state >= ST_ASSIGNED &&
		    t->status->state <= ST_RUNNING)
			n++;
	return n;
}

/* ---------------------------------------------------------------- the loop's plan */

struct keep {
	struct sched **plan;
	size_t dropped;
};

static void keep_on_event(void *data, const struct store_event *ev)
{
	struct keep *k = data;
	if (*k->plan && !sched_survives(*k->plan, ev)) {
		sched_free(*k->plan);
		*k->plan = NULL;
		k->dropped++;
	}
}

/* A world of `nodes` nodes (spread over two zones), services 1 (spread
 * over zone) and 2 (plain), `tasks` pending tasks between them. */
static void loop_world(struct world *w, size_t nodes, size_t tasks)
{
	struct svc_opts spread = {.spread = {"node.labels.zone"}};
	world_init(w);
	for (size_t i = 1; i <= nodes; i++) {
		struct node_opts o = {.labels = {{"zone", i % 2 ? "a" : "b"}}};
		add_node(w, i * 0x1000, &o);
	}
	add_service(w, 1, &spread);
	add_service(w, 2, NULL);
	world_commit(w);
	for (size_t i = 1; i <= tasks; i++) {
		add_pending(w, 0x100000 + i, i % 3 ? 1 : 2);
		if (i % 1000 == 0)
			world_commit(w);
	}
	world_commit(w);
}

/* issue 18: a compact placement is written from what the plan read of its
 * task (id, version, status time), not from the task again (a cache miss
 * or more a placement at 1,000,000 tasks): the plan lives only while its
 * pending tasks stay as read (sched_survives). Shown by changing a stored
 * task behind the store's back after the read. */
static void test_sched_placement_writes_the_task_as_read(void **state)
{
	struct world w;
	struct store_batch out;
	struct sched *p;
	Cs__StoreBatch *dec;
	Cs__Task *t;
	uint64_t version, stamp;

	(void)state;
	world_init(&w);
	add_node(&w, 1, NULL);
	add_service(&w, 1, NULL);
	add_pending(&w, 100, 1);
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_new(w.s, 0, &p), 0);
	t = (Cs__Task *)store_task_get(w.s, 100);
	version = t->version;
	stamp = t->status->timestamp_ms;
	t->version = version + 1000;
	t->status->timestamp_ms = stamp + 1000;
	assert_int_equal(sched_step(p, &out, 10, NULL), SCHED_STEP_GROUP);
	t->version = version;
	t->status->timestamp_ms = stamp;
	assert_int_equal(store_batch_decode(&out, &dec), 0);
	assert_int_equal(dec->n_actions, 1);
	assert_int_equal(dec->actions[0]->object_case,
			 CS__STORE_ACTION__OBJECT_PLACEMENT);
	assert_int_equal(dec->actions[0]->placement->task_id, 100);
	assert_int_equal(dec->actions[0]->placement->version, version);
	assert_int_equal(dec->actions[0]->placement->timestamp_ms, stamp);
	assert_int_equal(dec->actions[0]->placement->node_id, 1);
	cs__store_batch__free_unpacked(dec, NULL);
	sched_free(p);
	/* applied, it is the placement of the task as stored */
	assert_int_equal(world_apply(&w, &out), 0);
	assert_int_equal(node_of(&w, 100), 1);
	world_free(&w);
}

/* The loop's plan kept across batches (sched_pass) writes what a new plan
 * per batch writes, task for task; a change it does not survive (a node's)
 * drops it, and the next pass reads the store again. */
static void test_sched_pass_keeps_its_plan_and_places_as_fresh_runs(void **state)
{
	enum { NODES = 40, TASKS = 2 * LIMIT_SCHED_TASKS_PER_RUN + 500 };
	struct world a, b;
	struct sched *plan = NULL;
	struct keep k = {.plan = &plan};
	size_t passes = 0, reads = 0;

	(void)state;
	loop_world(&a, NODES, TASKS);
	loop_world(&b, NODES, TASKS);
	assert_true(store_watch(a.s, keep_on_event, &k) > 0);
	for (;;) {
		struct store_batch out;
		struct sched_stats st;
		size_t n;
		store_batch_init(&out);
		out.placements = true;
		reads += plan == NULL;
		assert_int_equal(sched_pass(&plan, a.s, 0, NULL,
					    LIMIT_SCHED_TASKS_PER_RUN, &out, &st),
				 0);
		n = out.action_count;
		assert_int_equal(world_apply(&a, &out), 0);
		passes++;
		if (!n)
			break;
	}
	assert_int_equal(passes, 4); /* three batches, then nothing */
	/* the first plan only: the last, empty pass goes on with it (schedloop
	 * issue 18: it read the whole store again to find nothing) */
	assert_int_equal(reads, 1);
	assert_null(plan);
	while (sched_once(&b, NULL) > 0)
		;
	for (size_t i = 1; i <= TASKS; i++)
		assert_int_equal(node_of(&a, 0x100000 + i), node_of(&b, 0x100000 + i));
	assert_int_equal(k.dropped, 0);

	/* a node's change ends a kept plan */
	world_free(&a);
	loop_world(&a, NODES, TASKS);
	assert_true(store_watch(a.s, keep_on_event, &k) > 0);
	{
		struct store_batch out;
		struct sched_stats st;
		Cs__Node n;
		store_batch_init(&out);
		out.placements = true;
		assert_int_equal(sched_pass(&plan, a.s, 0, NULL,
					    LIMIT_SCHED_TASKS_PER_RUN, &out, &st),
				 0);
		assert_true(st.more);
		assert_non_null(plan);
		assert_int_equal(world_apply(&a, &out), 0);
		assert_non_null(plan); /* its own writes landing: kept */
		n = *store_node_get(a.s, 0x1000);
		n.availability = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
		assert_int_equal(
			store_batch_node(&a.b, CS__STORE_ACTION__KIND__KIND_UPDATE, &n),
			0);
		world_commit(&a);
		assert_null(plan);
		assert_int_equal(k.dropped, 1);
	}
	world_free(&a);
	world_free(&b);
}

/* A finished plan kept after its last writes (sched_pass) counts, in the
 * pass its writes call for, what a new read counts, and writes nothing; a
 * task that came meanwhile makes that pass read the store again and place
 * it, as a new plan would. */
static void test_sched_pass_finished_plan_stands_for_a_read_until_a_task_comes(
	void **state)
{
	struct svc_opts nowhere = {.constraints = {"node.labels.zone==c"}};
	struct world a;
	struct sched *plan = NULL;
	struct keep k = {.plan = &plan};
	struct store_batch out;
	struct sched_stats st, fresh;

	(void)state;
	loop_world(&a, 10, 300);
	add_service(&a, 3, &nowhere);
	for (uint64_t i = 1; i <= 7; i++)
		add_pending(&a, 0x200000 + i, 3);
	world_commit(&a);
	assert_true(store_watch(a.s, keep_on_event, &k) > 0);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(
		sched_pass(&plan, a.s, 0, NULL, LIMIT_SCHED_TASKS_PER_RUN, &out, &st), 0);
	assert_false(st.more);
	assert_int_equal(st.assigned_count, 300);
	assert_int_equal(st.reasons_written, 7);
	assert_non_null(plan); /* it wrote: kept for the pass its writes call for */
	assert_int_equal(world_apply(&a, &out), 0);
	assert_non_null(plan);

	/* the pass after: nothing written, a new read's counts */
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(
		sched_pass(&plan, a.s, 0, NULL, LIMIT_SCHED_TASKS_PER_RUN, &out, &st), 0);
	assert_int_equal(out.action_count, 0);
	assert_null(plan);
	store_batch_free(&out);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(a.s, 0, LIMIT_SCHED_TASKS_PER_RUN, &out, &fresh), 0);
	assert_int_equal(out.action_count, 0);
	store_batch_free(&out);
	assert_int_equal(st.pending_count, fresh.pending_count);
	assert_int_equal(st.pending_count, 7);
	assert_int_equal(st.unplaceable_count, fresh.unplaceable_count);
	assert_int_equal(st.groups_count, fresh.groups_count);
	assert_int_equal(st.groups_count, 1);
	assert_int_equal(st.skipped_count, fresh.skipped_count);
	assert_int_equal(st.nodes_count, fresh.nodes_count);
	assert_int_equal(st.assigned_count, 0);
	assert_int_equal(st.reasons_written, 0);
	assert_false(st.more);

	/* again, with a task created while the finished plan's writes land */
	world_free(&a);
	loop_world(&a, 10, 300);
	assert_true(store_watch(a.s, keep_on_event, &k) > 0);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(
		sched_pass(&plan, a.s, 0, NULL, LIMIT_SCHED_TASKS_PER_RUN, &out, &st), 0);
	assert_non_null(plan);
	assert_false(st.more);
	assert_int_equal(world_apply(&a, &out), 0);
	add_pending(&a, 0x300000, 2);
	world_commit(&a);
	assert_non_null(plan); /* survived: the task is noted, not placed */
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(
		sched_pass(&plan, a.s, 0, NULL, LIMIT_SCHED_TASKS_PER_RUN, &out, &st), 0);
	assert_int_equal(out.action_count, 1);
	assert_int_equal(st.assigned_count, 1);
	assert_int_equal(st.pending_count, 1); /* a new read's */
	assert_int_equal(world_apply(&a, &out), 0);
	assert_int_not_equal(node_of(&a, 0x300000), 0);
	assert_int_equal(k.dropped, 0);
	sched_free(plan);
	world_free(&a);
}

/* ---------------------------------------------------------------- basics */

static void test_sched_assigns_pending_task_with_version_unchanged(void **state)
{
	struct world w;
	struct store_batch out;
	struct sched_stats st;
	Cs__StoreBatch *dec;
	const Cs__TaskPlacement *pl;

	world_init(&w);
	add_node(&w, 0x10, NULL);
	add_service(&w, 1, NULL);
	add_pending(&w, 100, 1);
	world_commit(&w);

	store_batch_init(&out);

	out.placements = true;
	assert_int_equal(sched_run(w.s, 5000, 10, &out, &st), 0);
	assert_int_equal(out.action_count, 1);
	assert_int_equal(store_batch_decode(&out, &dec), 0);
	assert_int_equal(dec->n_actions, 1);
	/* a placement goes as the compact action (issue 18) */
	assert_int_equal(dec->actions[0]->object_case,
			 CS__STORE_ACTION__OBJECT_PLACEMENT);
	pl = dec->actions[0]->placement;
	assert_int_equal(dec->actions[0]->kind, CS__STORE_ACTION__KIND__KIND_UPDATE);
	assert_int_equal(pl->task_id, 100);
	assert_int_equal(pl->node_id, 0x10);
	assert_int_equal(pl->version, 1); /* as read: the store checks it */
	assert_int_equal(pl->state, ST_ASSIGNED);
	assert_string_equal(pl->message, SCHED_MSG_ASSIGNED);
	assert_int_equal(pl->timestamp_ms, 5000);
	cs__store_batch__free_unpacked(dec, NULL);
	assert_int_equal(st.pending_count, 1);
	assert_int_equal(st.assigned_count, 1);
	assert_int_equal(st.groups_count, 1);
	assert_int_equal(st.nodes_count, 1);
	assert_false(st.more);
	assert_int_equal(world_apply(&w, &out), 0);
	assert_int_equal(node_of(&w, 100), 0x10);
	assert_int_equal(state_of(&w, 100), ST_ASSIGNED);
	assert_int_equal(store_task_get(w.s, 100)->version, 2);

	/* placed: nothing more to do */
	assert_int_equal(sched_once(&w, &st), 0);
	assert_int_equal(st.pending_count, 0);
	world_free(&w);
}

static void test_sched_keeps_timestamp_without_now(void **state)
{
	struct world w;
	struct store_batch out;
	Cs__StoreBatch *dec;

	world_init(&w);
	add_node(&w, 0x10, NULL);
	add_service(&w, 1, NULL);
	add_pending(&w, 100, 1);
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(w.s, 0, 10, &out, NULL), 0);
	assert_int_equal(out.action_count, 1);
	assert_int_equal(store_batch_decode(&out, &dec), 0);
	assert_int_equal(dec->actions[0]->placement->timestamp_ms, 1000);
	cs__store_batch__free_unpacked(dec, NULL);
	store_batch_free(&out);
	world_free(&w);
}

static void test_sched_ignores_tasks_not_pending_or_not_desired_running(void **state)
{
	struct world w;
	struct sched_stats st;

	world_init(&w);
	add_node(&w, 0x10, NULL);
	add_service(&w, 1, NULL);
	add_task_full(&w, 100, 1, 0, ST_RUNNING, ST_NEW, NULL);	     /* not pending yet */
	add_task_full(&w, 101, 1, 0, ST_SHUTDOWN, ST_PENDING, NULL); /* scaled down */
	add_task_full(&w, 102, 1, 0x10, ST_RUNNING, ST_RUNNING, NULL);
	assert_int_equal(commit_sched(&w, &st), 0);
	assert_int_equal(st.pending_count, 0);
	assert_int_equal(node_of(&w, 100), 0);
	assert_int_equal(node_of(&w, 101), 0);
	world_free(&w);
}

/* issue 18: the read takes tasks from the store's scans a ring behind
 * (SCHED_SCAN_AHEAD, 16), prefetching them; every task still counts, in
 * the scans' order, with more tasks than the ring and fewer, tasks on a
 * node gone from the store passed over, and the unassigned scan stopping
 * at the first task on a node. Nodes A, B, C hold 20, 10 and 0 running
 * tasks of the service (17 more on a node gone); 35 pending go to C until
 * 10, to B and C until 20 each, then A, B, C, A, B (fewest of the
 * service, then the index). */
static void test_sched_read_counts_every_task_through_its_ring(void **state)
{
	struct world w;
	struct sched_stats st;
	uint64_t id = 1;

	(void)state;
	world_init(&w);
	add_node(&w, 0x1000, NULL);
	add_node(&w, 0x2000, NULL);
	add_node(&w, 0x3000, NULL);
	add_service(&w, 1, NULL);
	for (size_t i = 0; i < 20; i++)
		add_task_full(&w, id++, 1, 0x1000, ST_RUNNING, ST_RUNNING, NULL);
	for (size_t i = 0; i < 17; i++) /* on a node gone */
		add_task_full(&w, id++, 1, 0x1800, ST_RUNNING, ST_RUNNING, NULL);
	for (size_t i = 0; i < 10; i++)
		add_task_full(&w, id++, 1, 0x2000, ST_RUNNING, ST_RUNNING, NULL);
	add_pendings(&w, 1000, 35, 1);
	assert_int_equal(commit_sched(&w, &st), 35);
	assert_int_equal(st.pending_count, 35);
	assert_int_equal(st.assigned_count, 35);
	assert_int_equal(count_on(&w, 1, 0x1000), 22);
	assert_int_equal(count_on(&w, 1, 0x2000), 22);
	assert_int_equal(count_on(&w, 1, 0x3000), 21);
	assert_int_equal(node_of(&w, 1000), 0x3000);
	assert_int_equal(node_of(&w, 1034), 0x2000);
	world_free(&w);

	/* fewer tasks than the ring: one running, two pending */
	world_init(&w);
	add_node(&w, 0x1000, NULL);
	add_node(&w, 0x2000, NULL);
	add_service(&w, 1, NULL);
	add_task_full(&w, 1, 1, 0x1000, ST_RUNNING, ST_RUNNING, NULL);
	add_pending(&w, 2, 1);
	add_pending(&w, 3, 1);
	assert_int_equal(commit_sched(&w, &st), 2);
	assert_int_equal(st.pending_count, 2);
	assert_int_equal(node_of(&w, 2), 0x2000);
	assert_int_equal(node_of(&w, 3), 0x1000);
	world_free(&w);
}

static void test_sched_skips_tasks_of_missing_service(void **state)
{
	struct world w;
	struct sched_stats st;

	world_init(&w);
	add_node(&w, 0x10, NULL);
	add_service(&w, 1, NULL);
	add_pending(&w, 100, 9); /* service 9 is gone */
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, &st), 1);
	assert_int_equal(st.skipped_count, 1);
	assert_int_equal(st.pending_count, 1);
	assert_int_equal(node_of(&w, 100), 0);
	assert_int_equal(state_of(&w, 100), ST_PENDING);
	assert_string_equal(message_of(&w, 100), "");
	assert_int_equal(node_of(&w, 101), 0x10);
	world_free(&w);
}

/* ---------------------------------------------------------------- filters */

static void test_sched_skips_down_drained_and_paused_nodes(void **state)
{
	struct world w;
	struct node_opts down = {.state = CS__NODE_STATE__NODE_STATE_DOWN};
	struct node_opts disc = {.state = CS__NODE_STATE__NODE_STATE_DISCONNECTED};
	struct node_opts drain = {.availability =
					  CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN};
	struct node_opts pause = {.availability =
					  CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE};

	world_init(&w);
	add_node(&w, 1, &down);
	add_node(&w, 2, &drain);
	add_node(&w, 3, &pause);
	add_node(&w, 4, &disc);
	add_node(&w, 5, NULL);
	add_service(&w, 1, NULL);
	add_pendings(&w, 100, 3, 1);
	assert_int_equal(commit_sched(&w, NULL), 3);
	assert_int_equal(count_on(&w, 1, 5), 3);
	for (uint64_t n = 1; n <= 4; n++)
		assert_int_equal(count_on(&w, 1, n), 0);
	world_free(&w);
}

static void test_sched_no_available_node_leaves_task_pending_with_reason(void **state)
{
	struct world w;
	struct sched_stats st;
	struct node_opts down = {.state = CS__NODE_STATE__NODE_STATE_DOWN};
	struct node_opts drain = {.availability =
					  CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN};

	world_init(&w);
	add_node(&w, 1, &down);
	add_node(&w, 2, &drain);
	add_node(&w, 3, &drain);
	add_service(&w, 1, NULL);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, &st), 2);
	assert_int_equal(st.assigned_count, 0);
	assert_int_equal(st.unplaceable_count, 2);
	assert_int_equal(st.reasons_written, 2);
	for (uint64_t t = 100; t <= 101; t++) {
		assert_int_equal(state_of(&w, t), ST_PENDING);
		assert_int_equal(node_of(&w, t), 0);
		assert_string_equal(
			message_of(&w, t),
			"no suitable node (3 nodes not available for new tasks)");
	}
	world_free(&w);
}

static void test_sched_no_nodes_at_all_says_so(void **state)
{
	struct world w;

	world_init(&w);
	add_service(&w, 1, NULL);
	add_pending(&w, 100, 1);
	assert_int_equal(commit_sched(&w, NULL), 1);
	assert_string_equal(message_of(&w, 100), "no suitable node (no nodes)");
	world_free(&w);
}

static void test_sched_exhausted_memory_reason_names_counts(void **state)
{
	struct world w;
	struct sched_stats st;
	struct node_opts small = {.memory_bytes = 1 * GB};
	struct node_opts drain = {.availability =
					  CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN};
	struct svc_opts big = {.memory_bytes = 600 * MB};

	world_init(&w);
	add_node(&w, 1, &small);
	add_node(&w, 2, &small);
	add_node(&w, 3, &small);
	add_node(&w, 4, &drain);
	add_service(&w, 1, &big);
	add_pendings(&w, 100, 5, 1);
	assert_int_equal(commit_sched(&w, &st), 5);
	assert_int_equal(st.assigned_count, 3);
	assert_int_equal(st.unplaceable_count, 2);
	for (uint64_t n = 1; n <= 3; n++)
		assert_int_equal(count_on(&w, 1, n), 1);
	/* the lowest ids are placed first */
	assert_int_equal(node_of(&w, 100), 1);
	assert_int_equal(node_of(&w, 101), 2);
	assert_int_equal(node_of(&w, 102), 3);
	assert_int_equal(state_of(&w, 103), ST_PENDING);
	assert_string_equal(
		message_of(&w, 104),
		"no suitable node (1 node not available for new tasks; 3 nodes lack memory)");
	world_free(&w);
}

static void test_sched_exhausted_cpu_reason_names_cpu(void **state)
{
	struct world w;
	struct node_opts one_cpu = {.millicpus = 1000};
	struct svc_opts heavy = {.millicpus = 700};

	world_init(&w);
	add_node(&w, 1, &one_cpu);
	add_service(&w, 1, &heavy);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, NULL), 2);
	assert_int_equal(node_of(&w, 100), 1);
	assert_string_equal(message_of(&w, 101), "no suitable node (1 node lacks CPU)");
	world_free(&w);
}

/* SwarmKit's choice: a task on a node with status ASSIGNED..RUNNING holds
 * its reservation whatever its desired state; finished tasks hold none. */
static void test_sched_counts_reservations_of_tasks_still_running(void **state)
{
	struct world w;
	struct node_opts one_gb = {.memory_bytes = 1 * GB};
	struct svc_opts half = {.memory_bytes = 600 * MB};

	world_init(&w);
	add_node(&w, 1, &one_gb);
	add_node(&w, 2, &one_gb);
	add_node(&w, 3, &one_gb);
	add_service(&w, 1, &half);
	add_service(&w, 2, &half);
	/* node 1: a task being stopped, still running: holds 600 MB */
	add_task_full(&w, 10, 2, 1, ST_SHUTDOWN, ST_RUNNING, NULL);
	/* node 2: a failed task: holds nothing */
	add_task_full(&w, 11, 2, 2, ST_SHUTDOWN, ST_FAILED, NULL);
	/* node 3: a running task: holds 600 MB */
	add_task_full(&w, 12, 2, 3, ST_RUNNING, ST_RUNNING, NULL);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, NULL), 2);
	assert_int_equal(node_of(&w, 100), 2);
	assert_int_equal(node_of(&w, 101), 0);
	assert_string_equal(message_of(&w, 101),
			    "no suitable node (3 nodes lack memory)");
	world_free(&w);
}

/* One service per constraint form over the same three nodes. */
static void test_sched_constraint_forms_select_nodes(void **state)
{
	struct world w;
	struct node_opts a = {.hostname = "alpha",
			      .role = CS__NODE_ROLE__NODE_ROLE_MANAGER,
			      .labels = {{"zone", "a"}, {"disk", "ssd"}}};
	struct node_opts b = {.hostname = "beta", .labels = {{"zone", "b"}}};
	struct node_opts c = {.hostname = "gamma"};
	static const struct {
		const char *constraint;
		uint64_t node; /* where both tasks go; 0: nowhere */
	} cases[] = {
		{"node.id==00000000000000b2", 0xb2},
		{"node.id!=a1", 0},
		{"node.hostname==beta", 0xb2},
		{"node.hostname!=alpha", 0},
		{"node.role==manager", 0xa1},
		{"node.role==worker", 0},
		{"node.labels.zone==a", 0xa1},
		{"node.labels.zone!=a", 0},
		{"node.labels.disk==ssd", 0xa1},
		{" node.labels.zone == B ", 0xb2}, /* spaces trimmed, value any case */
		{"NODE.HOSTNAME==GAMMA", 0xc3},
	};
	size_t n = sizeof cases / sizeof cases[0];

	world_init(&w);
	add_node(&w, 0xa1, &a);
	add_node(&w, 0xb2, &b);
	add_node(&w, 0xc3, &c);
	for (size_t i = 0; i < n; i++) {
		struct svc_opts o = {.constraints = {cases[i].constraint}};
		add_service(&w, 1 + i, &o);
		add_pending(&w, 100 + 2 * i, 1 + i);
		add_pending(&w, 101 + 2 * i, 1 + i);
	}
	assert_int_equal(commit_sched(&w, NULL), 2 * n);
	for (size_t i = 0; i < n; i++) {
		uint64_t n1 = node_of(&w, 100 + 2 * i), n2 = node_of(&w, 101 + 2 * i);
		if (cases[i].node) {
			assert_int_equal(n1, cases[i].node);
			assert_int_equal(n2, cases[i].node);
		} else {
			/* the two other nodes, one task each */
			assert_true(n1 != 0 && n2 != 0 && n1 != n2);
		}
	}
	/* != picks the two others */
	assert_true(node_of(&w, 102) != 0xa1 && node_of(&w, 103) != 0xa1);
	assert_true(node_of(&w, 106) != 0xa1 && node_of(&w, 107) != 0xa1);
	assert_true(node_of(&w, 110) != 0xa1 && node_of(&w, 111) != 0xa1);
	assert_true(node_of(&w, 114) != 0xa1 && node_of(&w, 115) != 0xa1);
	world_free(&w);
}

static void test_sched_missing_label_fails_eq_and_passes_ne(void **state)
{
	struct world w;
	struct node_opts labeled = {.labels = {{"zone", "a"}}};
	struct svc_opts eq = {.constraints = {"node.labels.rack==r1"}};
	struct svc_opts ne = {.constraints = {"node.labels.rack!=r1"}};

	world_init(&w);
	add_node(&w, 1, &labeled); /* no rack label */
	add_service(&w, 1, &eq);
	add_service(&w, 2, &ne);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 2);
	assert_int_equal(commit_sched(&w, NULL), 2);
	assert_int_equal(node_of(&w, 100), 0);
	assert_string_equal(
		message_of(&w, 100),
		"no suitable node (1 node fails constraint node.labels.rack==r1)");
	assert_int_equal(node_of(&w, 101), 1);
	world_free(&w);
}

static void test_sched_reason_counts_first_failing_filter_in_order(void **state)
{
	struct world w;
	struct node_opts drain = {.availability =
					  CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN,
				  .labels = {{"zone", "b"}}};
	struct node_opts small_a = {.memory_bytes = 100 * MB, .labels = {{"zone", "a"}}};
	struct node_opts b = {.labels = {{"zone", "b"}}};
	struct node_opts a_ssd = {.labels = {{"zone", "a"}, {"disk", "hdd"}}};
	struct svc_opts o = {
		.memory_bytes = 200 * MB,
		.constraints = {"node.labels.zone==a", "node.labels.disk==ssd"}};

	world_init(&w);
	add_node(&w, 1, &drain);   /* not available (first, though zone b too) */
	add_node(&w, 2, &small_a); /* lacks memory */
	add_node(&w, 3, &b);	   /* fails zone */
	add_node(&w, 4, &b);	   /* fails zone */
	add_node(&w, 5, &a_ssd);   /* fails disk */
	add_service(&w, 1, &o);
	add_pending(&w, 100, 1);
	assert_int_equal(commit_sched(&w, NULL), 1);
	assert_string_equal(
		message_of(&w, 100),
		"no suitable node (1 node not available for new tasks; 1 node "
		"lacks memory; 2 nodes fail constraint node.labels.zone==a; "
		"1 node fails constraint node.labels.disk==ssd)");
	world_free(&w);
}

/* Issue 18: groups whose services name the same constraint text share its
 * results per node (a memo for the plan's life). Each still counts its
 * first failing filter in its own order, and places as alone. */
static void test_sched_shared_constraints_place_and_explain_per_service(void **state)
{
	struct world w;
	struct node_opts a_hdd = {.labels = {{"zone", "a"}, {"disk", "hdd"}}};
	struct node_opts b_ssd = {.labels = {{"zone", "b"}, {"disk", "ssd"}}};
	struct node_opts b_hdd = {.labels = {{"zone", "b"}, {"disk", "hdd"}}};
	struct svc_opts both = {
		.constraints = {"node.labels.zone==a", "node.labels.disk==ssd"}};
	struct svc_opts both_reversed = {
		.constraints = {"node.labels.disk==ssd", "node.labels.zone==a"}};
	struct svc_opts ssd = {.constraints = {"node.labels.disk==ssd"}};
	struct svc_opts not_a = {.constraints = {"node.labels.zone!=a"}};

	(void)state;
	world_init(&w);
	add_node(&w, 1, &a_hdd);
	add_node(&w, 2, &b_ssd);
	add_node(&w, 3, &b_hdd);
	add_service(&w, 1, &both);
	add_service(&w, 2, &both_reversed);
	add_service(&w, 3, &ssd);
	add_service(&w, 4, &not_a);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 2);
	add_pending(&w, 102, 3);
	add_pending(&w, 103, 4);
	add_pending(&w, 104, 4);
	assert_int_equal(commit_sched(&w, NULL), 5);
	assert_int_equal(node_of(&w, 100), 0);
	assert_string_equal(
		message_of(&w, 100),
		"no suitable node (2 nodes fail constraint node.labels.zone==a; "
		"1 node fails constraint node.labels.disk==ssd)");
	assert_int_equal(node_of(&w, 101), 0);
	assert_string_equal(
		message_of(&w, 101),
		"no suitable node (2 nodes fail constraint node.labels.disk==ssd; "
		"1 node fails constraint node.labels.zone==a)");
	assert_int_equal(node_of(&w, 102), 2);
	assert_true(node_of(&w, 103) == 2 || node_of(&w, 103) == 3);
	assert_true(node_of(&w, 104) == 2 || node_of(&w, 104) == 3);
	assert_int_not_equal(node_of(&w, 103), node_of(&w, 104));
	world_free(&w);
}

static void test_sched_invalid_constraint_fails_every_node(void **state)
{
	struct world w;
	struct svc_opts o = {.constraints = {"node.colour==red"}};

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_service(&w, 1, &o);
	add_pending(&w, 100, 1);
	assert_int_equal(commit_sched(&w, NULL), 1);
	assert_string_equal(
		message_of(&w, 100),
		"no suitable node (2 nodes fail constraint node.colour==red)");
	world_free(&w);
}

static void test_sched_long_reason_is_cut_visibly(void **state)
{
	struct world w;
	char c[1200];
	struct svc_opts o = {.constraints = {c}};
	const char *msg;

	snprintf(c, sizeof c, "node.labels.k==");
	memset(c + strlen(c), 'v', sizeof c - 1 - strlen(c));
	c[sizeof c - 1] = '\0';
	world_init(&w);
	add_node(&w, 1, NULL);
	add_service(&w, 1, &o);
	add_pending(&w, 100, 1);
	assert_int_equal(commit_sched(&w, NULL), 1);
	msg = message_of(&w, 100);
	assert_int_equal(strlen(msg), 1023);
	assert_memory_equal(
		msg, "no suitable node (1 node fails constraint node.labels.k==vvv", 59);
	assert_string_equal(msg + 1019, "...)");
	/* the same cut reason next time: no write */
	assert_int_equal(sched_once(&w, NULL), 0);
	world_free(&w);
}

/* node.platform.os, node.platform.arch, engine.labels.KEY and node.ip (an
 * address or a CIDR block), as SwarmKit's constraint.NodeMatches. */
static void test_sched_platform_engine_label_and_ip_constraints(void **state)
{
	Cs__Label el = CS__LABEL__INIT, *elp[1] = {&el};
	Cs__Node a = CS__NODE__INIT, b = CS__NODE__INIT, bare = CS__NODE__INIT;
	static const struct {
		const char *constraint;
		bool a, b, bare;
	} cases[] = {
		{"node.platform.os==linux", true, false, false},
		{"node.platform.os==LINUX", true, false, false},
		{"node.platform.os!=linux", false, true, true},
		{"node.platform.arch==x86_64", true, false, false},
		{"node.platform.arch==aarch64", false, true, false},
		{"node.platform.arch!=aarch64", true, false, true},
		{"engine.labels.storage==SSD", true, false, false},
		{"engine.labels.storage!=ssd", false, true, true},
		{"ENGINE.LABELS.storage==ssd", true, false, false},
		{"engine.labels.Storage==ssd", false, false, false}, /* keys: case */
		{"node.ip==10.1.2.3", true, false, false},
		{"node.ip!=10.1.2.3", false, true, true},
		{"node.ip==10.0.0.0/8", true, false, false},
		{"node.ip==10.1.2.99/24", true, false, false}, /* host bits off */
		{"node.ip==10.1.3.0/24", false, false, false},
		{"node.ip!=10.0.0.0/8", false, true, true},
		{"node.ip==0.0.0.0/0", true, false, false},
		{"node.ip==fd00::/16", false, true, false},
		{"node.ip==fd00:0:0:1::7", false, true, false},
		{"node.ip==fd00:0:0:2::/64", false, false, false},
		{"node.ip==::ffff:10.1.2.3", true, false, false}, /* IPv4-mapped */
	};

	a.platform_os = (char *)"linux";
	a.platform_arch = (char *)"x86_64";
	el.key = (char *)"storage";
	el.value = (char *)"ssd";
	a.engine_labels = elp;
	a.n_engine_labels = 1;
	a.addr = (char *)"10.1.2.3";
	b.platform_os = (char *)"windows";
	b.platform_arch = (char *)"aarch64";
	b.addr = (char *)"fd00:0:0:1::7";
	bare.addr = (char *)"w3"; /* not an address: no node.ip matches */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Cs__Service svc = CS__SERVICE__INIT;
		Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
		Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
		Cs__Placement pl = CS__PLACEMENT__INIT;
		char *c = (char *)cases[i].constraint;

		pl.constraints = &c;
		pl.n_constraints = 1;
		ts.placement = &pl;
		spec.task = &ts;
		svc.spec = &spec;
		assert_true(sched_constraint_is_valid(c));
		if (sched_node_satisfies(&svc, &a) != cases[i].a ||
		    sched_node_satisfies(&svc, &b) != cases[i].b ||
		    sched_node_satisfies(&svc, &bare) != cases[i].bare)
			fail_msg("constraint %s", c);
	}
}

static void test_sched_constraint_validity(void **state)
{
	assert_true(sched_constraint_is_valid("node.id==0123456789abcdef"));
	assert_true(sched_constraint_is_valid("node.id!=FF"));
	assert_true(sched_constraint_is_valid("node.hostname==web-1"));
	assert_true(sched_constraint_is_valid("node.role==worker"));
	assert_true(sched_constraint_is_valid("node.labels.zone!=a"));
	assert_true(sched_constraint_is_valid("Node.Labels.zone == a"));
	assert_false(
		sched_constraint_is_valid("node.id==0123456789abcdef0")); /* 17 digits */
	assert_false(sched_constraint_is_valid("node.id==xyz"));
	assert_false(sched_constraint_is_valid("node.labels.==a"));
	assert_false(sched_constraint_is_valid("node.labels.zone=="));
	assert_false(sched_constraint_is_valid("==a"));
	assert_false(sched_constraint_is_valid("node.role=worker"));
	assert_false(sched_constraint_is_valid("node.labels.a==b==c"));
	assert_true(sched_constraint_is_valid("engine.labels.a==b"));
	assert_true(sched_constraint_is_valid("node.platform.os==linux"));
	assert_true(sched_constraint_is_valid("Node.Platform.Arch!=x86_64"));
	assert_true(sched_constraint_is_valid("node.ip==10.0.0.1"));
	assert_true(sched_constraint_is_valid("node.ip!=10.0.0.0/8"));
	assert_true(sched_constraint_is_valid("node.ip==fd00::/64"));
	assert_true(sched_constraint_is_valid("node.ip==::1"));
	assert_false(sched_constraint_is_valid("engine.labels.==b"));
	assert_false(sched_constraint_is_valid("node.platform==linux"));
	assert_false(sched_constraint_is_valid("node.ip==10.0.0"));
	assert_false(sched_constraint_is_valid("node.ip==10.0.0.0/33"));
	assert_false(sched_constraint_is_valid("node.ip==10.0.0.0/"));
	assert_false(sched_constraint_is_valid("node.ip==fd00::/129"));
	assert_false(sched_constraint_is_valid("node.ip==web-1"));
	assert_false(sched_constraint_is_valid(""));
	assert_false(sched_constraint_is_valid(NULL));
}

static void test_sched_max_replicas_per_node_caps_and_explains(void **state)
{
	struct world w;
	struct sched_stats st;
	struct svc_opts o = {.max_per_node = 2};

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_service(&w, 1, &o);
	add_pendings(&w, 100, 5, 1);
	assert_int_equal(commit_sched(&w, &st), 5);
	assert_int_equal(st.assigned_count, 4);
	assert_int_equal(count_on(&w, 1, 1), 2);
	assert_int_equal(count_on(&w, 1, 2), 2);
	assert_int_equal(node_of(&w, 104), 0);
	assert_string_equal(message_of(&w, 104),
			    "no suitable node (2 nodes at max replicas per node (2))");
	world_free(&w);
}

/* Max replicas counts every task of the service still on the node (not
 * terminal), also one being stopped; spread counts only active ones. */
static void test_sched_max_replicas_counts_tasks_being_stopped(void **state)
{
	struct world w;
	struct svc_opts o = {.max_per_node = 1};

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_service(&w, 1, &o);
	add_task_full(&w, 10, 1, 1, ST_SHUTDOWN, ST_RUNNING, NULL);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, NULL), 2);
	assert_int_equal(node_of(&w, 100), 2);
	assert_int_equal(node_of(&w, 101), 0);
	assert_string_equal(message_of(&w, 101),
			    "no suitable node (2 nodes at max replicas per node (1))");
	world_free(&w);
}

/* ---------------------------------------------------------------- ranking */

static void test_sched_spreads_seven_tasks_three_two_two(void **state)
{
	struct world w;

	world_init(&w);
	add_node(&w, 3, NULL);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_service(&w, 1, NULL);
	add_pendings(&w, 100, 7, 1);
	assert_int_equal(commit_sched(&w, NULL), 7);
	assert_int_equal(count_on(&w, 1, 1), 3); /* ties go to the smallest id */
	assert_int_equal(count_on(&w, 1, 2), 2);
	assert_int_equal(count_on(&w, 1, 3), 2);
	/* round robin in id order */
	assert_int_equal(node_of(&w, 100), 1);
	assert_int_equal(node_of(&w, 101), 2);
	assert_int_equal(node_of(&w, 102), 3);
	assert_int_equal(node_of(&w, 103), 1);
	assert_int_equal(node_of(&w, 106), 1);
	world_free(&w);
}

static void test_sched_prefers_fewest_service_tasks_then_fewest_total(void **state)
{
	struct world w;

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_node(&w, 3, NULL);
	add_service(&w, 1, NULL);
	add_service(&w, 2, NULL);
	/* node 1: one task of service 1; node 2: two of service 2 */
	add_task_full(&w, 10, 1, 1, ST_RUNNING, ST_RUNNING, NULL);
	add_task_full(&w, 11, 2, 2, ST_RUNNING, ST_RUNNING, NULL);
	add_task_full(&w, 12, 2, 2, ST_RUNNING, ST_ASSIGNED, NULL);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 1);
	add_pending(&w, 102, 1);
	assert_int_equal(commit_sched(&w, NULL), 3);
	/* nodes 2 and 3 have no task of service 1; 3 has fewer tasks overall */
	assert_int_equal(node_of(&w, 100), 3);
	assert_int_equal(node_of(&w, 101), 2);
	/* now 1/1/1 of service 1; totals 1, 3, 1: node 1 (smaller id than 3) */
	assert_int_equal(node_of(&w, 102), 1);
	world_free(&w);
}

/* The plan's decision tree keeps each item's key beside it, each branch's
 * items in a sorted run and a queue of those that took a task (issue 18:
 * where heaps read the counts at each compare). Against a model that reads
 * the counts afresh at every pick:
 * 30 nodes in three zones (one drained) holding tasks of three services,
 * then 50 pending tasks of a service spread over zone and 50 of a plain
 * one, placed in task id order, service by service. The model's pick: the
 * zone with the fewest of the service's active tasks (on any of its
 * nodes) among zones with an eligible node, value order on a tie; then,
 * in it (or anywhere, unspread), SwarmKit's nodeLess: fewest of the
 * service's tasks, then fewest tasks in all, then the smaller node id. */
enum { HK_NODES = 30, HK_SVCS = 3, HK_DRAINED = 11 };

static const char *hk_zone(size_t i)
{
	static const char *zones[] = {"a", "b", "c"};
	return zones[i * 7 % 3];
}

static size_t hk_pick(const uint32_t cnt[HK_SVCS + 1][HK_NODES], const uint32_t *total,
		      size_t svc, bool spread)
{
	const char *zone = NULL;
	size_t best = HK_NODES;

	if (spread) {
		uint32_t zc[3] = {0};
		static const char *zones[] = {"a", "b", "c"};
		for (size_t i = 0; i < HK_NODES; i++)
			zc[hk_zone(i)[0] - 'a'] += cnt[svc][i];
		for (size_t z = 0; z < 3; z++)
			if (!zone || zc[z] < zc[zone[0] - 'a'])
				zone = zones[z]; /* every zone has eligible nodes */
	}
	for (size_t i = 0; i < HK_NODES; i++) {
		if (i == HK_DRAINED || (zone && strcmp(hk_zone(i), zone) != 0))
			continue;
		if (best == HK_NODES || cnt[svc][i] < cnt[svc][best] ||
		    (cnt[svc][i] == cnt[svc][best] && total[i] < total[best]))
			best = i; /* ids grow with i: the first wins a tie */
	}
	return best;
}

static void test_sched_tree_picks_as_node_less_over_fresh_counts(void **state)
{
	struct world w;
	struct svc_opts spread = {.spread = {"node.labels.zone"}};
	uint32_t cnt[HK_SVCS + 1][HK_NODES] = {{0}}, total[HK_NODES] = {0};
	size_t placed = 0;

	(void)state;
	world_init(&w);
	for (size_t i = 0; i < HK_NODES; i++) {
		struct node_opts o = {.labels = {{"zone", hk_zone(i)}}};
		if (i == HK_DRAINED)
			o.availability = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
		add_node(&w, 0x100 + i * 3, &o);
	}
	add_service(&w, 1, &spread);
	add_service(&w, 2, NULL);
	add_service(&w, 3, NULL);
	/* uneven load: i*i mod 30 piles tasks on some nodes, none on others */
	for (size_t i = 0; i < 90; i++) {
		size_t svc = 1 + i % 3, node = i * i % HK_NODES;
		add_task_full(&w, 10 + i, svc, 0x100 + node * 3, ST_RUNNING,
			      i % 2 ? ST_RUNNING : ST_ASSIGNED, NULL);
		cnt[svc][node]++;
		total[node]++;
	}
	for (size_t i = 0; i < 100; i++)
		add_pending(&w, 1000 + i, i < 50 ? 1 : 2);
	assert_int_equal(commit_sched(&w, NULL), 100);
	for (size_t i = 0; i < 100; i++) {
		size_t svc = i < 50 ? 1 : 2, n = hk_pick(cnt, total, svc, svc == 1);
		assert_true(n < HK_NODES);
		assert_int_equal(node_of(&w, 1000 + i), 0x100 + n * 3);
		cnt[svc][n]++;
		total[n]++;
		placed++;
	}
	assert_int_equal(placed, 100);
	world_free(&w);
}

static void test_sched_spread_preference_balances_zones_first(void **state)
{
	struct world w;
	struct node_opts a = {.labels = {{"zone", "a"}}};
	struct node_opts b = {.labels = {{"zone", "b"}}};
	struct svc_opts o = {.spread = {"zone"}};

	world_init(&w);
	add_node(&w, 1, &b);
	add_node(&w, 2, &b);
	add_node(&w, 3, &b);
	add_node(&w, 4, &a);
	add_service(&w, 1, &o);
	add_pendings(&w, 100, 4, 1);
	assert_int_equal(commit_sched(&w, NULL), 4);
	assert_int_equal(count_on(&w, 1, 4), 2); /* zone a: its only node */
	assert_int_equal(count_on(&w, 1, 1) + count_on(&w, 1, 2) + count_on(&w, 1, 3), 2);
	assert_int_equal(count_on(&w, 1, 1), 1); /* within b: spread by node */
	assert_int_equal(count_on(&w, 1, 2), 1);
	/* without the preference: 2/1/1 over b and a, by node only */
	world_free(&w);
}

static void test_sched_spread_preference_accepts_label_prefix(void **state)
{
	struct world w;
	struct node_opts a = {.labels = {{"zone", "a"}}};
	struct node_opts b = {.labels = {{"zone", "b"}}};
	struct svc_opts o = {.spread = {"node.labels.zone"}};

	world_init(&w);
	add_node(&w, 1, &b);
	add_node(&w, 2, &b);
	add_node(&w, 3, &a);
	add_service(&w, 1, &o);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, NULL), 2);
	assert_int_equal(count_on(&w, 1, 3), 1);
	assert_int_equal(count_on(&w, 1, 1) + count_on(&w, 1, 2), 1);
	world_free(&w);
}

static void test_sched_nodes_missing_spread_label_form_their_own_branch(void **state)
{
	struct world w;
	struct node_opts a = {.labels = {{"zone", "a"}}};
	struct svc_opts o = {.spread = {"zone"}};

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_node(&w, 3, &a);
	add_service(&w, 1, &o);
	add_pendings(&w, 100, 4, 1);
	assert_int_equal(commit_sched(&w, NULL), 4);
	assert_int_equal(count_on(&w, 1, 3), 2);
	assert_int_equal(count_on(&w, 1, 1), 1);
	assert_int_equal(count_on(&w, 1, 2), 1);
	/* labelled values come first on ties, the unlabelled branch last */
	assert_int_equal(node_of(&w, 100), 3);
	world_free(&w);
}

static void test_sched_nested_spread_preferences(void **state)
{
	struct world w;
	struct node_opts a1 = {.labels = {{"zone", "a"}, {"rack", "1"}}};
	struct node_opts a2 = {.labels = {{"zone", "a"}, {"rack", "2"}}};
	struct node_opts b1 = {.labels = {{"zone", "b"}, {"rack", "1"}}};
	struct svc_opts o = {.spread = {"zone", "rack"}};

	world_init(&w);
	/* zone a: rack 1 has three nodes, rack 2 one; zone b: one node */
	add_node(&w, 1, &a1);
	add_node(&w, 2, &a1);
	add_node(&w, 3, &a1);
	add_node(&w, 4, &a2);
	add_node(&w, 5, &b1);
	add_service(&w, 1, &o);
	add_pendings(&w, 100, 8, 1);
	assert_int_equal(commit_sched(&w, NULL), 8);
	/* 4 per zone; in zone a, 2 per rack */
	assert_int_equal(count_on(&w, 1, 5), 4);
	assert_int_equal(count_on(&w, 1, 4), 2);
	assert_int_equal(count_on(&w, 1, 1), 1);
	assert_int_equal(count_on(&w, 1, 2), 1);
	assert_int_equal(count_on(&w, 1, 3), 0);
	world_free(&w);
}

static void test_sched_spread_skips_branch_without_eligible_node(void **state)
{
	struct world w;
	struct node_opts a = {.labels = {{"zone", "a"}},
			      .availability =
				      CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN};
	struct node_opts b = {.labels = {{"zone", "b"}}};
	struct svc_opts o = {.spread = {"zone"}};

	world_init(&w);
	add_node(&w, 1, &a);
	add_node(&w, 2, &b);
	add_node(&w, 3, &b);
	add_service(&w, 1, &o);
	add_pendings(&w, 100, 3, 1);
	assert_int_equal(commit_sched(&w, NULL), 3);
	assert_int_equal(count_on(&w, 1, 1), 0);
	assert_int_equal(count_on(&w, 1, 2), 2);
	assert_int_equal(count_on(&w, 1, 3), 1);
	world_free(&w);
}

/* ---------------------------------------------------------------- pinned tasks */

static void test_sched_global_task_pinned_to_its_node(void **state)
{
	struct world w;
	struct sched_stats st;
	struct node_opts drain = {.availability =
					  CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN};
	struct svc_opts o = {.global = true, .memory_bytes = 1 * GB};
	struct node_opts small = {.memory_bytes = 512 * MB};

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_node(&w, 3, &drain);
	add_node(&w, 4, &small);
	add_service(&w, 1, &o);
	/* pinned to node 2 though node 1 has fewer tasks */
	add_task_full(&w, 100, 1, 2, ST_RUNNING, ST_PENDING, NULL);
	add_task_full(&w, 101, 1, 3, ST_RUNNING, ST_PENDING, NULL);
	add_task_full(&w, 102, 1, 4, ST_RUNNING, ST_PENDING, NULL);
	assert_int_equal(commit_sched(&w, &st), 3);
	assert_int_equal(st.assigned_count, 1);
	assert_int_equal(st.unplaceable_count, 2);
	assert_int_equal(node_of(&w, 100), 2);
	assert_int_equal(state_of(&w, 100), ST_ASSIGNED);
	assert_int_equal(node_of(&w, 101), 3); /* stays pinned, pending */
	assert_int_equal(state_of(&w, 101), ST_PENDING);
	assert_string_equal(message_of(&w, 101),
			    "no suitable node (1 node not available for new tasks)");
	assert_int_equal(state_of(&w, 102), ST_PENDING);
	assert_string_equal(message_of(&w, 102),
			    "no suitable node (1 node lacks memory)");
	assert_int_equal(count_on(&w, 1, 1), 0);
	/* again: nothing changed, nothing written */
	assert_int_equal(sched_once(&w, &st), 0);
	assert_int_equal(st.unplaceable_count, 2);
	world_free(&w);
}

/* Pinned tasks of every service go before the unpinned tasks of any
 * (SwarmKit's processPreassignedTasks runs before tick): a replicated
 * service with a lower id does not take the room a global task is due. */
static void test_sched_pinned_tasks_of_every_service_go_first(void **state)
{
	struct world w;
	struct sched_stats st;
	struct node_opts one_cpu = {.millicpus = 1000};
	struct svc_opts rep = {.millicpus = 600};
	struct svc_opts glob = {.global = true, .millicpus = 600};

	world_init(&w);
	add_node(&w, 1, &one_cpu);
	add_service(&w, 1, &rep); /* lower id: its group came first */
	add_service(&w, 2, &glob);
	add_pending(&w, 100, 1);
	add_task_full(&w, 200, 2, 1, ST_RUNNING, ST_PENDING, NULL);
	assert_int_equal(commit_sched(&w, &st), 2);
	assert_int_equal(st.assigned_count, 1);
	assert_int_equal(st.groups_count, 2);
	assert_int_equal(state_of(&w, 200), ST_ASSIGNED);
	assert_int_equal(node_of(&w, 100), 0);
	assert_int_equal(state_of(&w, 100), ST_PENDING);
	assert_string_equal(message_of(&w, 100), "no suitable node (1 node lacks CPU)");
	world_free(&w);
}

/* A service with pinned and unpinned pending tasks: what the first sweep
 * placed counts when the second places the others (max per node). */
static void test_sched_pinned_placements_count_for_the_second_sweep(void **state)
{
	struct world w;
	struct sched_stats st;
	struct svc_opts capped = {.max_per_node = 1};

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_service(&w, 1, &capped);
	add_service(&w, 2, NULL);
	/* node 2 is busier: the unpinned task would prefer node 1 */
	add_task_full(&w, 50, 2, 2, ST_RUNNING, ST_RUNNING, NULL);
	add_task_full(&w, 100, 1, 1, ST_RUNNING, ST_PENDING, NULL); /* pinned */
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, &st), 2);
	assert_int_equal(st.groups_count, 1);
	assert_int_equal(node_of(&w, 100), 1);
	assert_int_equal(state_of(&w, 100), ST_ASSIGNED);
	assert_int_equal(node_of(&w, 101), 2);
	world_free(&w);
}

/* ---------------------------------------------------------------- bad-node avoidance */

#define MIN_MS (60u * 1000u)

static void test_sched_failures_count_five_minutes_per_spec_version(void **state)
{
	struct sched_failures *f;
	uint64_t t0 = 1000000;

	assert_int_equal(SCHED_FAILURES_MAX, 5);
	assert_int_equal(SCHED_FAILURES_WINDOW_MS, 5 * MIN_MS);
	assert_int_equal(sched_failures_new(&f), 0);
	for (uint64_t i = 0; i < 5; i++)
		assert_int_equal(sched_failures_add(f, 0x10, 1, 7, t0 + i * MIN_MS / 2),
				 0);
	assert_int_equal(sched_failures_total(f), 5);
	assert_int_equal(sched_failures_count(f, 0x10, 1, 7, t0 + 2 * MIN_MS), 5);
	/* keyed by node, service and spec version */
	assert_int_equal(sched_failures_count(f, 0x11, 1, 7, t0 + 2 * MIN_MS), 0);
	assert_int_equal(sched_failures_count(f, 0x10, 2, 7, t0 + 2 * MIN_MS), 0);
	assert_int_equal(sched_failures_count(f, 0x10, 1, 8, t0 + 2 * MIN_MS), 0);
	/* one exactly 5 minutes old still counts; a millisecond later not */
	assert_int_equal(sched_failures_count(f, 0x10, 1, 7, t0 + 5 * MIN_MS), 5);
	assert_int_equal(sched_failures_count(f, 0x10, 1, 7, t0 + 5 * MIN_MS + 1), 4);
	assert_int_equal(sched_failures_count(f, 0x10, 1, 7, t0 + 7 * MIN_MS + 1), 0);
	assert_int_equal(sched_failures_count(NULL, 0x10, 1, 7, t0), 0);
	/* an add a window later forgets what expired */
	assert_int_equal(sched_failures_add(f, 0x12, 3, 1, t0 + 10 * MIN_MS), 0);
	assert_int_equal(sched_failures_total(f), 1);
	assert_int_equal(sched_failures_count(f, 0x12, 3, 1, t0 + 10 * MIN_MS), 1);
	sched_failures_free(f);
	sched_failures_free(NULL);
}

static void test_sched_failures_refuse_past_their_limit(void **state)
{
	struct sched_failures *f;

	assert_int_equal(sched_failures_new(&f), 0);
	for (uint64_t i = 0; i < LIMIT_SCHED_FAILURES_KEPT; i++)
		assert_int_equal(sched_failures_add(f, 1 + i % 97, 1 + i % 13, 1, 5000),
				 0);
	assert_int_equal(sched_failures_add(f, 1, 1, 1, 5000), CS_ELIMIT);
	assert_int_equal(sched_failures_total(f), LIMIT_SCHED_FAILURES_KEPT);
	/* a window later, room again */
	assert_int_equal(sched_failures_add(f, 1, 1, 1, 5000 + 5 * MIN_MS + 1), 0);
	assert_int_equal(sched_failures_total(f), 1);
	sched_failures_free(f);
}

static void test_sched_task_is_failure_as_swarmkit_records_it(void **state)
{
	Cs__ServiceSpec rspec = CS__SERVICE_SPEC__INIT, gspec = CS__SERVICE_SPEC__INIT;
	Cs__Service rep = CS__SERVICE__INIT, glob = CS__SERVICE__INIT;
	Cs__TaskStatus so = CS__TASK_STATUS__INIT, sn = CS__TASK_STATUS__INIT;
	Cs__Task o = CS__TASK__INIT, n = CS__TASK__INIT;

	gspec.global = true;
	rep.spec = &rspec;
	glob.spec = &gspec;
	o.status = &so;
	n.status = &sn;
	o.node_id = n.node_id = 0x10;
	so.state = ST_RUNNING;
	sn.state = ST_FAILED;
	assert_true(sched_task_is_failure(&o, &n, &rep));
	sn.state = CS__TASK_STATE__TASK_STATE_REJECTED;
	assert_true(sched_task_is_failure(&o, &n, &rep));
	so.state = ST_ASSIGNED;
	assert_true(sched_task_is_failure(&o, &n, &rep));
	/* not a change into failure */
	so.state = CS__TASK_STATE__TASK_STATE_REJECTED;
	assert_false(sched_task_is_failure(&o, &n, &rep));
	so.state = ST_SHUTDOWN; /* already ended */
	sn.state = ST_FAILED;
	assert_false(sched_task_is_failure(&o, &n, &rep));
	so.state = ST_RUNNING;
	sn.state = ST_SHUTDOWN;
	assert_false(sched_task_is_failure(&o, &n, &rep));
	sn.state = CS__TASK_STATE__TASK_STATE_COMPLETE;
	assert_false(sched_task_is_failure(&o, &n, &rep));
	/* pinned (global) tasks, no node, no old task, no service: not */
	sn.state = ST_FAILED;
	assert_false(sched_task_is_failure(&o, &n, &glob));
	assert_false(sched_task_is_failure(&o, &n, NULL));
	assert_false(sched_task_is_failure(NULL, &n, &rep));
	n.node_id = 0;
	assert_false(sched_task_is_failure(&o, &n, &rep));
}

/* A pending task of service 1 at spec version ver. */
static void add_pending_v(struct world *w, uint64_t id, uint64_t ver)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	t.id = id;
	t.service_id = 1;
	t.slot = id;
	t.desired_state = ST_RUNNING;
	t.spec_version = ver;
	st.state = ST_PENDING;
	st.message = (char *)"";
	t.status = &st;
	assert_int_equal(store_batch_task(&w->b, KIND_CREATE, &t), 0);
}

/* Where the scheduler puts task id (service 1, spec version ver) in a world
 * of node 1 (idle) and node 2 (running one task of service 2), given
 * failures f at now_ms; nodes lists which nodes exist (bits 1, 2). */
static uint64_t place_with_failures(const struct sched_failures *f, uint64_t now_ms,
				    uint64_t ver, unsigned nodes)
{
	struct world w;
	struct store_batch out;
	uint64_t where;

	world_init(&w);
	if (nodes & 1)
		add_node(&w, 1, NULL);
	if (nodes & 2)
		add_node(&w, 2, NULL);
	add_service(&w, 1, NULL);
	add_service(&w, 2, NULL);
	if (nodes & 2)
		add_task_full(&w, 50, 2, 2, ST_RUNNING, ST_RUNNING, NULL);
	add_pending_v(&w, 100, ver);
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(
		sched_run_with(w.s, now_ms, f, LIMIT_SCHED_TASKS_PER_RUN, &out, NULL), 0);
	assert_int_equal(world_apply(&w, &out), 0);
	where = node_of(&w, 100);
	world_free(&w);
	return where;
}

static void test_sched_avoids_node_with_five_recent_failures(void **state)
{
	struct sched_failures *f;
	uint64_t t0 = 10 * MIN_MS;

	assert_int_equal(sched_failures_new(&f), 0);
	/* the idle node 1 is preferred */
	assert_int_equal(place_with_failures(f, t0, 3, 3), 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(sched_failures_add(f, 1, 1, 3, t0 + (uint64_t)i * 1000),
				 0);
	/* 4 failures: still preferred */
	assert_int_equal(place_with_failures(f, t0 + 5000, 3, 3), 1);
	assert_int_equal(sched_failures_add(f, 1, 1, 3, t0 + 4000), 0);
	/* 5 within 5 minutes: the busier node 2 goes first */
	assert_int_equal(place_with_failures(f, t0 + 5000, 3, 3), 2);
	/* counted per spec version: version 4 has none */
	assert_int_equal(place_with_failures(f, t0 + 5000, 4, 3), 1);
	/* a preference, not a filter: alone, node 1 still takes it */
	assert_int_equal(place_with_failures(f, t0 + 5000, 3, 1), 1);
	/* 5 minutes after the first failure, 4 count again: node 1 again */
	assert_int_equal(place_with_failures(f, t0 + 5 * MIN_MS, 3, 3), 2);
	assert_int_equal(place_with_failures(f, t0 + 5 * MIN_MS + 1, 3, 3), 1);
	/* both at 5 or more: fewer failures first */
	for (int i = 0; i < 5; i++)
		assert_int_equal(sched_failures_add(f, 2, 1, 3, t0 + 5000), 0);
	assert_int_equal(place_with_failures(f, t0 + 6000, 3, 3), 1); /* 5 = 5: load */
	assert_int_equal(sched_failures_add(f, 1, 1, 3, t0 + 6000), 0);
	assert_int_equal(place_with_failures(f, t0 + 7000, 3, 3), 2); /* 6 > 5 */
	sched_failures_free(f);
}

/* In one group, tasks of two spec versions each rank nodes by their own
 * version's failures. */
static void test_sched_failures_rank_each_spec_version_of_a_group(void **state)
{
	struct world w;
	struct store_batch out;
	struct sched_failures *f;
	uint64_t now = 10 * MIN_MS;

	assert_int_equal(sched_failures_new(&f), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(sched_failures_add(f, 1, 1, 3, now), 0);
		assert_int_equal(sched_failures_add(f, 2, 1, 4, now), 0);
	}
	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_service(&w, 1, NULL);
	add_pending_v(&w, 100, 3);
	add_pending_v(&w, 101, 4);
	add_pending_v(&w, 102, 3);
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(
		sched_run_with(w.s, now, f, LIMIT_SCHED_TASKS_PER_RUN, &out, NULL), 0);
	assert_int_equal(world_apply(&w, &out), 0);
	assert_int_equal(node_of(&w, 100), 2);
	assert_int_equal(node_of(&w, 101), 1);
	assert_int_equal(node_of(&w, 102), 2); /* 5 failures outrank the load */
	world_free(&w);
	sched_failures_free(f);
}

/* ---------------------------------------------------------------- writes */

static void test_sched_writes_nothing_when_reason_unchanged(void **state)
{
	struct world w;
	struct sched_stats st;
	struct store_batch out;
	struct node_opts drain = {.availability =
					  CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN};

	world_init(&w);
	add_node(&w, 1, &drain);
	add_service(&w, 1, NULL);
	add_pending(&w, 100, 1);
	add_pending(&w, 101, 1);
	assert_int_equal(commit_sched(&w, &st), 2);
	assert_int_equal(st.reasons_written, 2);

	store_batch_init(&out);

	out.placements = true;
	assert_int_equal(sched_run(w.s, 99, LIMIT_SCHED_TASKS_PER_RUN, &out, &st), 0);
	assert_int_equal(out.action_count, 0);
	assert_int_equal(st.unplaceable_count, 2);
	assert_int_equal(st.reasons_written, 0);
	store_batch_free(&out);

	/* a second drained node changes the reason: written again */
	add_node(&w, 2, &drain);
	assert_int_equal(commit_sched(&w, &st), 2);
	assert_string_equal(message_of(&w, 100),
			    "no suitable node (2 nodes not available for new tasks)");
	world_free(&w);
}

static void test_sched_respects_writes_max_and_resumes(void **state)
{
	struct world w;
	struct sched_stats st;
	Cs__StoreBatch *dec;
	struct store_batch out;

	world_init(&w);
	add_node(&w, 1, NULL);
	add_node(&w, 2, NULL);
	add_service(&w, 1, NULL);
	add_service(&w, 2, NULL);
	for (uint64_t i = 0; i < 3; i++) {
		add_pending(&w, 100 + i, 1);
		add_pending(&w, 200 + i, 2);
	}
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(w.s, 0, 4, &out, &st), 0);
	assert_int_equal(out.action_count, 4);
	assert_true(st.more);
	assert_int_equal(store_batch_decode(&out, &dec), 0);
	assert_int_equal(dec->actions[3]->placement->task_id,
			 200); /* service order, then id */
	cs__store_batch__free_unpacked(dec, NULL);
	assert_int_equal(world_apply(&w, &out), 0);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(w.s, 0, 4, &out, &st), 0);
	assert_int_equal(out.action_count, 2);
	assert_false(st.more);
	assert_int_equal(world_apply(&w, &out), 0);
	/* 200 went to node 2 (fewer tasks overall), then 1, then 2 */
	assert_int_equal(count_on(&w, 2, 1), 1);
	assert_int_equal(count_on(&w, 2, 2), 2);
	world_free(&w);
}

static void test_sched_rejects_bad_writes_max(void **state)
{
	struct world w;
	struct store_batch out;
	struct sched *p;

	world_init(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(w.s, 0, 0, &out, NULL), CS_EINVAL);
	assert_int_equal(sched_run(w.s, 0, LIMIT_SCHED_TASKS_PER_RUN + 1, &out, NULL),
			 CS_ELIMIT);
	assert_int_equal(sched_new(w.s, 0, &p), 0);
	assert_int_equal(sched_step(p, &out, LIMIT_SCHED_TASKS_PER_RUN + 1, NULL),
			 CS_ELIMIT);
	assert_int_equal(sched_step(p, &out, 1, NULL), SCHED_STEP_DONE);
	sched_free(p);
	assert_int_equal(out.action_count, 0);
	world_free(&w);
}

static void test_sched_plan_steps_one_group_per_service(void **state)
{
	struct world w;
	struct store_batch out;
	struct sched_stats st;
	struct sched *p;

	world_init(&w);
	add_node(&w, 1, NULL);
	add_service(&w, 1, NULL);
	add_service(&w, 2, NULL);
	add_service(&w, 3, NULL); /* nothing pending */
	for (uint64_t i = 0; i < 3; i++) {
		add_pending(&w, 100 + i, 1);
		add_pending(&w, 200 + i, 2);
	}
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_new(w.s, 0, &p), 0);
	assert_int_equal(sched_step(p, &out, 2, NULL), SCHED_STEP_FULL);
	assert_int_equal(out.action_count, 2);
	assert_int_equal(sched_step(p, &out, 10, NULL), SCHED_STEP_GROUP);
	assert_int_equal(out.action_count, 3);
	assert_int_equal(sched_step(p, &out, 10, NULL), SCHED_STEP_GROUP);
	assert_int_equal(out.action_count, 6);
	assert_int_equal(sched_step(p, &out, 10, NULL), SCHED_STEP_DONE);
	sched_get_stats(p, &st);
	assert_int_equal(st.groups_count, 2);
	assert_int_equal(st.assigned_count, 6);
	assert_false(st.more);
	sched_free(p);
	assert_int_equal(world_apply(&w, &out), 0);
	assert_int_equal(count_on(&w, 1, 1) + count_on(&w, 2, 1), 6);
	world_free(&w);
}

static void test_sched_step_stops_when_bytes_run_out(void **state)
{
	struct world w;
	struct store_batch out;
	struct sched *p;
	size_t one = 0, left;

	world_init(&w);
	add_node(&w, 1, NULL);
	add_service(&w, 1, NULL);
	add_pendings(&w, 100, 3, 1);
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_new(w.s, 0, &p), 0);
	/* learn what one write takes */
	left = 100000;
	assert_int_equal(sched_step(p, &out, 1, &left), SCHED_STEP_FULL);
	one = 100000 - left;
	assert_true(one >= 80 && one < 300);
	/* room for one and a half: one more write */
	left = one + one / 2;
	assert_int_equal(sched_step(p, &out, 10, &left), SCHED_STEP_FULL);
	assert_int_equal(out.action_count, 2);
	assert_int_equal(left, one / 2);
	assert_int_equal(sched_step(p, &out, 10, NULL), SCHED_STEP_GROUP);
	assert_int_equal(out.action_count, 3);
	sched_free(p);
	store_batch_free(&out);
	world_free(&w);
}

/* Tasks with long strings: the run stops at its bytes, not its count, and
 * its batch is one manager_write. */
static void test_sched_run_batch_fits_one_write(void **state)
{
	struct world w;
	struct store_batch out;
	struct sched_stats st;
	char name[401];
	uint8_t *buf;
	size_t len;

	memset(name, 'x', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	world_init(&w);
	/* no node: every task gets its reason, a full update of it (a
	 * placement is compact since issue 18: see below) */
	add_service(&w, 1, NULL);
	world_commit(&w);
	for (uint64_t i = 0; i < 6000; i++) {
		Cs__Task t = CS__TASK__INIT;
		Cs__TaskStatus ts = CS__TASK_STATUS__INIT;
		t.id = 100 + i;
		t.service_id = 1;
		t.desired_state = ST_RUNNING;
		t.service_name = name;
		ts.state = ST_PENDING;
		t.status = &ts;
		assert_int_equal(store_batch_task(&w.b, KIND_CREATE, &t), 0);
		if (w.b.action_count == 1000)
			world_commit(&w);
	}
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(w.s, 0, LIMIT_SCHED_TASKS_PER_RUN, &out, &st), 0);
	assert_true(st.more);
	assert_true(out.action_count > 3000);
	assert_true(out.action_count < 6000);
	assert_int_equal(store_batch_encode(&out, 1, 1, &buf, &len), 0);
	assert_true(len <= SCHED_RUN_BYTES_MAX);
	assert_true(len > SCHED_RUN_BYTES_MAX / 2);
	free(buf);
	store_batch_free(&out);

	/* with a node, the placements of the same large tasks are compact:
	 * the run stops at its count, far under its bytes */
	add_node(&w, 1, NULL);
	world_commit(&w);
	store_batch_init(&out);
	out.placements = true;
	assert_int_equal(sched_run(w.s, 0, LIMIT_SCHED_TASKS_PER_RUN, &out, &st), 0);
	assert_int_equal(out.action_count, 6000);
	assert_int_equal(st.assigned_count, 6000);
	assert_int_equal(store_batch_encode(&out, 1, 1, &buf, &len), 0);
	assert_true(len < 6000 * 100);
	free(buf);
	store_batch_free(&out);
	world_free(&w);
}

/* ---------------------------------------------------------------- batch = one at a time, determinism */

/* A mixed store: zones and racks, constraints, resources, max per node,
 * running tasks, a drained node. Built in the order given by rev. */
static void build_mixed(struct world *w, bool rev)
{
	static const char *zones[] = {"a", "b", "c"};
	struct node_opts o[12];

	for (int k = 0; k < 12; k++) {
		int i = rev ? 11 - k : k;
		memset(&o[i], 0, sizeof o[i]);
		o[i].labels[0][0] = "zone";
		o[i].labels[0][1] = zones[i % 3 == 2 && i > 6 ? 0 : i % 3];
		o[i].labels[1][0] = i % 4 ? "disk" : NULL;
		o[i].labels[1][1] = i % 2 ? "ssd" : "hdd";
		o[i].memory_bytes = (uint64_t)(1 + i % 3) * GB;
		o[i].availability =
			i == 5 ? CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN
			       : CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
		add_node(w, 0x100 + (uint64_t)i * 7, &o[i]);
	}
	for (int k = 0; k < 4; k++) {
		int i = rev ? 3 - k : k;
		struct svc_opts s = {0};
		if (i == 0)
			s.spread[0] = "zone";
		if (i == 1) {
			s.constraints[0] = "node.labels.disk==ssd";
			s.memory_bytes = 700 * MB;
		}
		if (i == 2) {
			s.spread[0] = "zone";
			s.spread[1] = "disk";
			s.max_per_node = 2;
		}
		add_service(w, 1 + (uint64_t)i, &s);
	}
	for (int k = 0; k < 80; k++) {
		int i = rev ? 79 - k : k;
		if (i % 9 == 0)
			add_task_full(w, 1000 + (uint64_t)i, 1 + (uint64_t)(i % 4),
				      0x100 + (uint64_t)(i % 12) * 7, ST_RUNNING,
				      ST_RUNNING, NULL);
		else
			add_pending(w, 1000 + (uint64_t)i, 1 + (uint64_t)(i % 4));
	}
	world_commit(w);
}

static void test_sched_group_placement_equals_one_at_a_time(void **state)
{
	struct world all, one;
	size_t runs = 0, placed = 0;

	world_init(&all);
	world_init(&one);
	build_mixed(&all, false);
	build_mixed(&one, false);
	assert_true(sched_once(&all, NULL) > 0);
	assert_int_equal(sched_once(&all, NULL), 0); /* settled in one run */
	for (;;) {
		struct store_batch out;
		store_batch_init(&out);
		out.placements = true;
		assert_int_equal(sched_run(one.s, 0, 1, &out, NULL), 0);
		if (out.action_count == 0) {
			store_batch_free(&out);
			break;
		}
		assert_int_equal(out.action_count, 1);
		assert_int_equal(world_apply(&one, &out), 0);
		assert_true(++runs < 1000);
	}
	for (const Cs__Task *t = store_task_next(all.s, NULL); t;
	     t = store_task_next(all.s, t)) {
		const Cs__Task *u = store_task_get(one.s, t->id);
		assert_int_equal(t->node_id, u->node_id);
		assert_int_equal(t->status->state, u->status->state);
		assert_string_equal(t->status->message, u->status->message);
		placed += t->status->state == ST_ASSIGNED;
	}
	assert_true(placed > 40); /* most were placed, some not */
	assert_true(placed < 71);
	world_free(&all);
	world_free(&one);
}

static void test_sched_same_store_gives_same_batch_bytes(void **state)
{
	struct world a, b;
	struct store_batch oa, ob;
	uint8_t *ba, *bb;
	size_t la, lb;

	world_init(&a);
	world_init(&b);
	build_mixed(&a, false);
	build_mixed(&b, true); /* same objects, created in the other order */
	store_batch_init(&oa);
	oa.placements = true;
	store_batch_init(&ob);
	ob.placements = true;
	assert_int_equal(sched_run(a.s, 7, LIMIT_SCHED_TASKS_PER_RUN, &oa, NULL), 0);
	assert_int_equal(sched_run(b.s, 7, LIMIT_SCHED_TASKS_PER_RUN, &ob, NULL), 0);
	assert_true(oa.action_count > 40);
	assert_int_equal(store_batch_encode(&oa, 1, 1, &ba, &la), 0);
	assert_int_equal(store_batch_encode(&ob, 1, 1, &bb, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	free(bb);
	/* and again on the same store */
	store_batch_free(&ob);
	store_batch_init(&ob);
	ob.placements = true;
	assert_int_equal(sched_run(a.s, 7, LIMIT_SCHED_TASKS_PER_RUN, &ob, NULL), 0);
	assert_int_equal(store_batch_encode(&ob, 1, 1, &bb, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	free(ba);
	free(bb);
	store_batch_free(&oa);
	store_batch_free(&ob);
	world_free(&a);
	world_free(&b);
}

/* A batch that does not take placements (store_batch_init's default: a
 * tool's or a benchmark's own batch) gets whole-task UPDATEs only, and the
 * store they make is the one compact placements make. */
static void test_sched_whole_tasks_unless_the_batch_takes_placements(void **state)
{
	struct world a, b;
	struct store_batch oa, ob;
	Cs__StoreBatch *dec;

	(void)state;
	world_init(&a);
	world_init(&b);
	build_mixed(&a, false);
	build_mixed(&b, false);
	store_batch_init(&oa);
	oa.placements = true;
	store_batch_init(&ob);
	assert_false(ob.placements);
	assert_int_equal(sched_run(a.s, 7, LIMIT_SCHED_TASKS_PER_RUN, &oa, NULL), 0);
	assert_int_equal(sched_run(b.s, 7, LIMIT_SCHED_TASKS_PER_RUN, &ob, NULL), 0);
	assert_true(ob.action_count > 40);
	assert_int_equal(oa.action_count, ob.action_count);
	assert_int_equal(store_batch_decode(&ob, &dec), 0);
	for (size_t i = 0; i < dec->n_actions; i++)
		assert_int_equal(dec->actions[i]->object_case,
				 CS__STORE_ACTION__OBJECT_TASK);
	cs__store_batch__free_unpacked(dec, NULL);
	assert_int_equal(store_batch_decode(&oa, &dec), 0);
	assert_int_equal(dec->actions[0]->object_case,
			 CS__STORE_ACTION__OBJECT_PLACEMENT);
	cs__store_batch__free_unpacked(dec, NULL);
	assert_int_equal(world_apply(&a, &oa), 0);
	assert_int_equal(world_apply(&b, &ob), 0);
	for (const Cs__Task *t = store_task_next(a.s, NULL); t;
	     t = store_task_next(a.s, t)) {
		const Cs__Task *u = store_task_get(b.s, t->id);
		assert_non_null(u);
		assert_int_equal(t->node_id, u->node_id);
		assert_int_equal(t->version, u->version);
		assert_int_equal(t->status->state, u->status->state);
		assert_int_equal(t->status->timestamp_ms, u->status->timestamp_ms);
		assert_string_equal(t->status->message, u->status->message);
	}
	world_free(&a);
	world_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched_pass_keeps_its_plan_and_places_as_fresh_runs),
		cmocka_unit_test(test_sched_placement_writes_the_task_as_read),
		cmocka_unit_test(
			test_sched_pass_finished_plan_stands_for_a_read_until_a_task_comes),
		cmocka_unit_test(test_sched_assigns_pending_task_with_version_unchanged),
		cmocka_unit_test(test_sched_keeps_timestamp_without_now),
		cmocka_unit_test(
			test_sched_ignores_tasks_not_pending_or_not_desired_running),
		cmocka_unit_test(test_sched_read_counts_every_task_through_its_ring),
		cmocka_unit_test(test_sched_skips_tasks_of_missing_service),
		cmocka_unit_test(test_sched_skips_down_drained_and_paused_nodes),
		cmocka_unit_test(
			test_sched_no_available_node_leaves_task_pending_with_reason),
		cmocka_unit_test(test_sched_no_nodes_at_all_says_so),
		cmocka_unit_test(test_sched_exhausted_memory_reason_names_counts),
		cmocka_unit_test(test_sched_exhausted_cpu_reason_names_cpu),
		cmocka_unit_test(test_sched_counts_reservations_of_tasks_still_running),
		cmocka_unit_test(test_sched_constraint_forms_select_nodes),
		cmocka_unit_test(test_sched_missing_label_fails_eq_and_passes_ne),
		cmocka_unit_test(test_sched_reason_counts_first_failing_filter_in_order),
		cmocka_unit_test(
			test_sched_shared_constraints_place_and_explain_per_service),
		cmocka_unit_test(test_sched_invalid_constraint_fails_every_node),
		cmocka_unit_test(test_sched_long_reason_is_cut_visibly),
		cmocka_unit_test(test_sched_constraint_validity),
		cmocka_unit_test(test_sched_platform_engine_label_and_ip_constraints),
		cmocka_unit_test(test_sched_max_replicas_per_node_caps_and_explains),
		cmocka_unit_test(test_sched_max_replicas_counts_tasks_being_stopped),
		cmocka_unit_test(test_sched_spreads_seven_tasks_three_two_two),
		cmocka_unit_test(
			test_sched_prefers_fewest_service_tasks_then_fewest_total),
		cmocka_unit_test(test_sched_tree_picks_as_node_less_over_fresh_counts),
		cmocka_unit_test(test_sched_spread_preference_balances_zones_first),
		cmocka_unit_test(test_sched_spread_preference_accepts_label_prefix),
		cmocka_unit_test(
			test_sched_nodes_missing_spread_label_form_their_own_branch),
		cmocka_unit_test(test_sched_nested_spread_preferences),
		cmocka_unit_test(test_sched_spread_skips_branch_without_eligible_node),
		cmocka_unit_test(test_sched_global_task_pinned_to_its_node),
		cmocka_unit_test(test_sched_pinned_tasks_of_every_service_go_first),
		cmocka_unit_test(test_sched_pinned_placements_count_for_the_second_sweep),
		cmocka_unit_test(test_sched_failures_count_five_minutes_per_spec_version),
		cmocka_unit_test(test_sched_failures_refuse_past_their_limit),
		cmocka_unit_test(test_sched_task_is_failure_as_swarmkit_records_it),
		cmocka_unit_test(test_sched_avoids_node_with_five_recent_failures),
		cmocka_unit_test(test_sched_failures_rank_each_spec_version_of_a_group),
		cmocka_unit_test(test_sched_writes_nothing_when_reason_unchanged),
		cmocka_unit_test(test_sched_respects_writes_max_and_resumes),
		cmocka_unit_test(test_sched_rejects_bad_writes_max),
		cmocka_unit_test(test_sched_plan_steps_one_group_per_service),
		cmocka_unit_test(test_sched_step_stops_when_bytes_run_out),
		cmocka_unit_test(test_sched_run_batch_fits_one_write),
		cmocka_unit_test(test_sched_group_placement_equals_one_at_a_time),
		cmocka_unit_test(test_sched_same_store_gives_same_batch_bytes),
		cmocka_unit_test(
			test_sched_whole_tasks_unless_the_batch_takes_placements),
	};
	return cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
}
