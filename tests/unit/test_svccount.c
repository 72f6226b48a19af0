/* Tests of svccount: the per-service running/desired counts the store keeps
 * as it applies equal a full recount by Docker's rule (tasks desired
 * RUNNING and RUNNING on a node not DOWN; replicas, or a global service's
 * tasks desired RUNNING), through every kind of change: whole tasks,
 * placements, status reports, nodes going DOWN and back, removed nodes and
 * services, a restore; and on every manager after every event of a
 * simulated run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/manager.h"
#include "core/store.h"
#include "core/svccount.h"
#include "sim/cluster.h"
#include "sim/runner.h"
#include "sim/scenario.h"

#define RUNNING CS__TASK_STATE__TASK_STATE_RUNNING

static void apply(struct store *s, struct store_batch *b, uint64_t *index)
{
	uint8_t *buf;
	size_t len;
	++*index;
	assert_int_equal(store_batch_encode(b, 1, *index, &buf, &len), 0);
	assert_int_equal(store_apply(s, buf, len, *index, NULL, NULL), 0);
	free(buf);
	store_batch_free(b);
}

static void put_service(struct store *s, uint64_t *index, Cs__StoreAction__Kind kind,
			uint64_t id, bool global, uint64_t replicas)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__Service svc = CS__SERVICE__INIT;
	struct store_batch b;
	char name[32];

	snprintf(name, sizeof name, "s%llu", (unsigned long long)id);
	spec.name = name;
	spec.global = global;
	spec.replicas = global ? 0 : replicas;
	svc.id = id;
	svc.spec = &spec;
	if (store_service_get(s, id))
		svc.version = store_service_get(s, id)->version;
	store_batch_init(&b);
	assert_int_equal(store_batch_service(&b, kind, &svc), 0);
	apply(s, &b, index);
}

static void put_node(struct store *s, uint64_t *index, Cs__StoreAction__Kind kind,
		     uint64_t id, Cs__NodeState state)
{
	Cs__Node n = CS__NODE__INIT;
	struct store_batch b;
	char name[32];

	snprintf(name, sizeof name, "n%llu", (unsigned long long)id);
	n.id = id;
	n.hostname = name;
	n.state = state;
	if (store_node_get(s, id))
		n.version = store_node_get(s, id)->version;
	store_batch_init(&b);
	assert_int_equal(store_batch_node(&b, kind, &n), 0);
	apply(s, &b, index);
}

static void put_task(struct store *s, uint64_t *index, Cs__StoreAction__Kind kind,
		     uint64_t id, uint64_t service, uint64_t node, Cs__TaskState desired,
		     Cs__TaskState state)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	struct store_batch b;

	t.id = id;
	t.service_id = service;
	t.slot = id;
	t.node_id = node;
	t.desired_state = desired;
	st.state = state;
	t.status = &st;
	if (store_task_get(s, id))
		t.version = store_task_get(s, id)->version;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, kind, &t), 0);
	apply(s, &b, index);
}

static void counts_of(const struct store *s, uint64_t service, uint64_t *running,
		      uint64_t *desired)
{
	struct svccount_counts c;
	char msg[256];

	if (!svccount_check(store_svccount(s), s, msg, sizeof msg))
		fail_msg("%s", msg);
	svccount_service(store_svccount(s), store_service_get(s, service), &c);
	*running = c.running;
	*desired = c.desired;
}

#define ASSERT_COUNTS(s, svc, r, d)                  \
	do {                                         \
		uint64_t run_, des_;                 \
		counts_of((s), (svc), &run_, &des_); \
		assert_int_equal(run_, (r));         \
		assert_int_equal(des_, (d));         \
	} while (0)

/* Docker's REPLICAS, by hand: a replicated service's desired is its
 * replicas; running leaves out tasks not desired RUNNING, not RUNNING, on a
 * DOWN node or a node the store does not hold; a node going DOWN takes its
 * tasks out of running and back when it is READY again; a global service
 * desires its tasks desired RUNNING. */
static void test_svccount_docker_rule_by_hand(void **state)
{
	struct store *s = store_new();
	uint64_t ix = 0;
	const Cs__StoreAction__Kind C = CS__STORE_ACTION__KIND__KIND_CREATE,
				    U = CS__STORE_ACTION__KIND__KIND_UPDATE,
				    D = CS__STORE_ACTION__KIND__KIND_DELETE;
	(void)state;

	assert_non_null(s);
	put_node(s, &ix, C, 1, CS__NODE_STATE__NODE_STATE_READY);
	put_node(s, &ix, C, 2, CS__NODE_STATE__NODE_STATE_READY);
	put_node(s, &ix, C, 3, CS__NODE_STATE__NODE_STATE_DISCONNECTED);
	put_service(s, &ix, C, 10, false, 5);
	put_service(s, &ix, C, 20, true, 0);
	ASSERT_COUNTS(s, 10, 0, 5);
	ASSERT_COUNTS(s, 20, 0, 0);
	put_task(s, &ix, C, 100, 10, 1, RUNNING, RUNNING);
	put_task(s, &ix, C, 101, 10, 1, RUNNING, CS__TASK_STATE__TASK_STATE_STARTING);
	put_task(s, &ix, C, 102, 10, 2, RUNNING, RUNNING);
	put_task(s, &ix, C, 103, 10, 2, CS__TASK_STATE__TASK_STATE_SHUTDOWN, RUNNING);
	put_task(s, &ix, C, 104, 10, 3, RUNNING, RUNNING); /* DISCONNECTED counts */
	put_task(s, &ix, C, 105, 10, 9, RUNNING, RUNNING); /* no node 9 */
	put_task(s, &ix, C, 200, 20, 1, RUNNING, RUNNING);
	put_task(s, &ix, C, 201, 20, 2, RUNNING, CS__TASK_STATE__TASK_STATE_PREPARING);
	put_task(s, &ix, C, 202, 20, 3, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
		 CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	ASSERT_COUNTS(s, 10, 3, 5);
	ASSERT_COUNTS(s, 20, 1, 2);

	/* node 1 DOWN: its RUNNING tasks stop counting, of both services */
	put_node(s, &ix, U, 1, CS__NODE_STATE__NODE_STATE_DOWN);
	ASSERT_COUNTS(s, 10, 2, 5);
	ASSERT_COUNTS(s, 20, 0, 2);
	assert_int_equal(store_svccount(s)->nodes_down, 1);
	/* a task RUNNING on a DOWN node, updated: still not counted */
	put_task(s, &ix, U, 100, 10, 1, RUNNING, RUNNING);
	ASSERT_COUNTS(s, 10, 2, 5);
	/* READY again: back */
	put_node(s, &ix, U, 1, CS__NODE_STATE__NODE_STATE_READY);
	ASSERT_COUNTS(s, 10, 3, 5);
	ASSERT_COUNTS(s, 20, 1, 2);
	assert_int_equal(store_svccount(s)->nodes_down, 0);
	/* node 9 joins (its task counts), node 2 is removed (its do not) */
	put_node(s, &ix, C, 9, CS__NODE_STATE__NODE_STATE_READY);
	ASSERT_COUNTS(s, 10, 4, 5);
	put_node(s, &ix, D, 2, CS__NODE_STATE__NODE_STATE_READY);
	ASSERT_COUNTS(s, 10, 3, 5);
	/* STARTING to RUNNING, then told to stop */
	put_task(s, &ix, U, 101, 10, 1, RUNNING, RUNNING);
	ASSERT_COUNTS(s, 10, 4, 5);
	put_task(s, &ix, U, 101, 10, 1, CS__TASK_STATE__TASK_STATE_SHUTDOWN, RUNNING);
	ASSERT_COUNTS(s, 10, 3, 5);
	/* scaled */
	put_service(s, &ix, U, 10, false, 3);
	ASSERT_COUNTS(s, 10, 3, 3);
	/* a service removed with its tasks still there: no service to ask,
	 * the recount of every entry still agrees */
	put_service(s, &ix, D, 20, true, 0);
	ASSERT_COUNTS(s, 10, 3, 3);
	put_task(s, &ix, D, 200, 20, 1, RUNNING, RUNNING);
	ASSERT_COUNTS(s, 10, 3, 3);
	store_free(s);
}

/* A small deterministic generator (xorshift64*). */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/* Thousands of random changes of every kind (whole tasks, placements,
 * status reports, node states, node and task removals, services scaled and
 * removed), several a batch: after each batch the kept counts equal a
 * recount; a snapshot restored into another store holds the same counts
 * (rebuilt: a restore tells no watch). */
static void test_svccount_random_changes_equal_recount(void **state)
{
	struct store *s = store_new(), *copy = store_new();
	uint64_t ix = 0, x = 0x9e3779b97f4a7c15ull;
	char msg[256];
	(void)state;

	assert_non_null(s);
	assert_non_null(copy);
	for (uint64_t n = 1; n <= 8; n++)
		put_node(s, &ix, CS__STORE_ACTION__KIND__KIND_CREATE, n,
			 CS__NODE_STATE__NODE_STATE_READY);
	for (uint64_t v = 1; v <= 4; v++)
		put_service(s, &ix, CS__STORE_ACTION__KIND__KIND_CREATE, v, v == 4,
			    v * 3);
	for (int round = 0; round < 3000; round++) {
		struct store_batch b;
		int actions = 1 + (int)(rnd(&x) % 4);
		bool used[64] = {false};

		store_batch_init(&b);
		for (int a = 0; a < actions; a++) {
			uint64_t r = rnd(&x), id = 100 + r % 40;
			const Cs__Task *t = store_task_get(s, id);
			uint64_t node = 1 + (r >> 8) % 10; /* 9, 10: not in the store */
			Cs__TaskState st = (Cs__TaskState)((r >> 16) % 14);
			Cs__TaskState desired =
				(r >> 24) % 3 ? RUNNING
					      : CS__TASK_STATE__TASK_STATE_SHUTDOWN;
			unsigned kind = (unsigned)((r >> 32) % 8);

			if (kind == 7) { /* a node changes state, or goes, or comes */
				Cs__Node nd = CS__NODE__INIT;
				const Cs__Node *cur = store_node_get(s, node);
				uint64_t nk = (r >> 40) % 4;
				if (used[node])
					continue;
				used[node] = true;
				nd.id = node;
				nd.hostname = "n";
				nd.version = cur ? cur->version : 0;
				nd.state =
					nk == 0 ? CS__NODE_STATE__NODE_STATE_DOWN
					: nk == 1
						? CS__NODE_STATE__NODE_STATE_DISCONNECTED
						: CS__NODE_STATE__NODE_STATE_READY;
				assert_int_equal(
					store_batch_node(
						&b,
						!cur ? CS__STORE_ACTION__KIND__KIND_CREATE
						: nk == 3
							? CS__STORE_ACTION__KIND__KIND_DELETE
							: CS__STORE_ACTION__KIND__KIND_UPDATE,
						&nd),
					0);
				continue;
			}
			if (used[id - 100 + 20])
				continue;
			used[id - 100 + 20] = true;
			if (!t) {
				Cs__Task nt = CS__TASK__INIT;
				Cs__TaskStatus ns = CS__TASK_STATUS__INIT;
				nt.id = id;
				nt.service_id = 1 + (r >> 44) % 5; /* 5: no service */
				nt.slot = id;
				nt.node_id = node;
				nt.desired_state = desired;
				ns.state = st;
				nt.status = &ns;
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_CREATE,
						&nt),
					0);
			} else if (kind == 0) {
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_DELETE,
						t),
					0);
			} else if (kind <= 2) {
				assert_int_equal(store_batch_placement(&b, id, t->version,
								       node, st, 5, NULL),
						 0);
			} else if (kind <= 4) {
				assert_int_equal(store_batch_status_report(&b, id,
									   t->node_id, st,
									   0, 6, NULL),
						 0);
			} else {
				Cs__Task nt = *t;
				Cs__TaskStatus ns = CS__TASK_STATUS__INIT;
				nt.desired_state = desired;
				ns.state = st;
				nt.status = &ns;
				nt.node_id = kind == 5 ? node : t->node_id;
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_UPDATE,
						&nt),
					0);
			}
		}
		if (round % 97 == 0) { /* a service scaled, or global flipped */
			uint64_t v = 1 + rnd(&x) % 4;
			const Cs__Service *cur = store_service_get(s, v);
			if (cur) {
				Cs__Service sv = *cur;
				Cs__ServiceSpec sp = *cur->spec;
				sp.replicas = rnd(&x) % 20;
				sv.spec = &sp;
				assert_int_equal(
					store_batch_service(
						&b, CS__STORE_ACTION__KIND__KIND_UPDATE,
						&sv),
					0);
			}
		}
		if (b.action_count)
			apply(s, &b, &ix);
		else
			store_batch_free(&b);
		if (!svccount_check(store_svccount(s), s, msg, sizeof msg))
			fail_msg("round %d: %s", round, msg);
		if (round % 500 == 499) {
			uint8_t *buf;
			size_t len;
			assert_int_equal(store_snapshot(s, &buf, &len), 0);
			assert_int_equal(store_restore(copy, buf, len, 0), 0);
			free(buf);
			if (!svccount_check(store_svccount(copy), copy, msg, sizeof msg))
				fail_msg("restored at round %d: %s", round, msg);
			assert_int_equal(store_svccount(copy)->count,
					 store_svccount(s)->count);
			assert_int_equal(store_svccount(copy)->nodes_down,
					 store_svccount(s)->nodes_down);
		}
	}
	/* the run went through every case: something ran, something was down */
	assert_true(store_svccount(s)->count > 0);
	store_free(s);
	store_free(copy);
}

/* ---------------------------------------------------------------- a simulated run */

struct sim_check {
	uint64_t checks;
	uint64_t down_seen; /* checks that saw a DOWN node */
	uint64_t running_max;
	char failed[512];
};

/* After every event: every manager's kept counts equal its recount. */
static void check_observe(void *ctx, const struct runner_view *v)
{
	struct sim_check *sc = ctx;

	if (sc->failed[0])
		return;
	for (uint32_t i = 0; i < world_node_count(v->w); i++) {
		struct manager *m = simcluster_manager(v->cluster, i);
		const struct store *s;
		char msg[256];
		if (!m || !world_node_is_up(v->w, i))
			continue;
		s = manager_store(m);
		sc->checks++;
		if (!svccount_check(store_svccount(s), s, msg, sizeof msg)) {
			snprintf(sc->failed, sizeof sc->failed, "node %s at %llu us: %s",
				 world_node_name(v->w, i),
				 (unsigned long long)world_now_us(v->w), msg);
			return;
		}
		if (store_svccount(s)->nodes_down)
			sc->down_seen++;
		for (const Cs__Service *svc = store_service_next(s, NULL); svc;
		     svc = store_service_next(s, svc)) {
			struct svccount_counts c;
			svccount_service(store_svccount(s), svc, &c);
			if (c.running > sc->running_max)
				sc->running_max = c.running;
		}
	}
}

/* A run with nodes dying, coming back, a leader killed, a restart from a
 * snapshot, a rolling update, a global service and a scale-down: on every
 * manager, after every event, the counts equal a recount. */
static void test_svccount_equals_recount_over_a_simulated_run(void **state)
{
	static const char text[] = "cluster managers=3 workers=4\n"
				   "set snapshot-every=50\n"
				   "expect nodes ready == 7 within 1m\n"
				   "service create web replicas=12\n"
				   "service create g mode=global\n"
				   "expect running web == 12 within 1m\n"
				   "kill w1\n"
				   "expect node w1 down within 30s\n"
				   "expect running web == 12 within 1m\n"
				   "restart w1\n"
				   "service update web image=v2 update-parallelism=4\n"
				   "run 20s\n"
				   "kill leader\n"
				   "run 30s\n"
				   "kill m2\n"
				   "run 5s\n"
				   "restart m2\n"
				   "service update web replicas=5\n"
				   "expect running web == 5 within 1m\n"
				   "expect converged within 2m\n";
	struct scn_script scr;
	struct runner_opts o = {0};
	struct runner_result r;
	struct sim_check sc = {0};
	char err[512];
	(void)state;

	if (scn_parse("t.scn", text, strlen(text), &scr, err, sizeof err))
		fail_msg("parse: %s", err);
	o.observe = check_observe;
	o.observe_ctx = &sc;
	assert_int_equal(runner_run(&scr, 3, &o, &r), 0);
	scn_free(&scr);
	if (sc.failed[0])
		fail_msg("%s", sc.failed);
	if (!r.passed)
		fail_msg("%s", r.message);
	print_message("%llu checks, %llu with a node down, running max %llu\n",
		      (unsigned long long)sc.checks, (unsigned long long)sc.down_seen,
		      (unsigned long long)sc.running_max);
	assert_true(sc.checks > 1000);
	assert_true(sc.down_seen > 0);
	assert_true(sc.running_max >= 12);
	runner_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_svccount_docker_rule_by_hand),
		cmocka_unit_test(test_svccount_random_changes_equal_recount),
		cmocka_unit_test(test_svccount_equals_recount_over_a_simulated_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
