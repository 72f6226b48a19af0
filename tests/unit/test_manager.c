/* Tests of the managers on the simulator: elections with 1, 3 and 5
 * managers, a new leader within two election timeouts after the leader dies
 * (100 seeds), writes through leader and followers, quorum loss and
 * recovery, a full restart from disk, partitions that heal into identical
 * stores, and a lagging manager caught up by snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/events.h"
#include "core/manager.h"
#include "core/metrics.h"
#include "core/control.h"
#include "core/seal.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/world.h"
#include "tests/support/simstep.h"

#define SEC 1000000ull

struct fixture {
	struct world *w;
	struct simcluster *c;
	uint32_t n;
	struct scn_settings settings;
};

static void setup(struct fixture *f, uint64_t seed, uint32_t n, uint64_t snapshot_every)
{
	memset(f, 0, sizeof *f);
	f->w = world_new(seed);
	assert_non_null(f->w);
	if (snapshot_every) {
		f->settings.set = SCN_SET_SNAPSHOT_EVERY;
		f->settings.snapshot_every = snapshot_every;
	}
	f->c = simcluster_new(f->w, &f->settings);
	assert_non_null(f->c);
	f->n = n;
	for (uint32_t i = 1; i <= n; i++) {
		char name[16];
		uint32_t idx;
		const struct manager_cfg *cfg = simcluster_manager_cfg(f->c, i, n);
		assert_non_null(cfg);
		snprintf(name, sizeof name, "m%" PRIu32, i);
		assert_int_equal(world_node_add(f->w, name, &manager_program, cfg, &idx),
				 0);
		assert_int_equal(simcluster_track(f->c, idx, i), 0);
		assert_int_equal(world_node_start(f->w, idx), 0);
	}
}

static void teardown(struct fixture *f)
{
	world_free(f->w);
	simcluster_free(f->c);
}

/* Runs until pred holds (checked after every event, invariants too) or
 * until `limit` of virtual time passes; returns whether pred held. */
static bool run_until(struct fixture *f, us_t limit, bool (*pred)(struct fixture *))
{
	us_t end = world_now_us(f->w) + limit;
	while (!pred || !pred(f))
		if (!simstep(f->w, f->c, false, end))
			return pred ? pred(f) : true;
	return true;
}

static bool has_leader(struct fixture *f)
{
	return simcluster_leader(f->c) >= 0;
}

static struct manager *mgr(struct fixture *f, uint32_t node)
{
	return simcluster_manager(f->c, node);
}

struct write_result {
	int status;
	bool done;
};

static void write_done(void *data, int status)
{
	struct write_result *r = data;
	assert_false(r->done);
	r->done = true;
	r->status = status;
}

/* Writes one object with id through manager `node` (a Node record in
 * state UNKNOWN: no leader component touches it); runs until the write
 * answers; returns its status. */
static int write_task(struct fixture *f, uint32_t node, uint64_t id)
{
	struct store_batch b;
	Cs__Node n = CS__NODE__INIT;
	struct write_result r = {0};
	uint8_t *buf;
	size_t len;
	us_t end = world_now_us(f->w) + 60 * SEC;

	n.id = id;
	n.hostname = "test";
	store_batch_init(&b);
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &n),
			 0);
	assert_int_equal(store_batch_encode(&b, 0, 0, &buf, &len), 0);
	store_batch_free(&b);
	assert_int_equal(manager_write(mgr(f, node), buf, len, write_done, &r), 0);
	free(buf);
	assert_false(r.done); /* never inside the call */
	while (!r.done && world_step(f->w, end))
		;
	assert_true(r.done);
	return r.status;
}

static uint32_t leader(struct fixture *f)
{
	int64_t l = simcluster_leader(f->c);
	assert_true(l >= 0);
	return (uint32_t)l;
}

/* Byte-for-byte comparison of every up manager's store snapshot. */
static void assert_stores_equal(struct fixture *f)
{
	uint8_t *first = NULL;
	size_t first_len = 0;
	for (uint32_t i = 0; i < f->n; i++) {
		uint8_t *buf;
		size_t len;
		if (!mgr(f, i))
			continue;
		assert_int_equal(store_snapshot(manager_store(mgr(f, i)), &buf, &len), 0);
		if (!first) {
			first = buf;
			first_len = len;
			continue;
		}
		assert_int_equal(len, first_len);
		assert_memory_equal(buf, first, len);
		free(buf);
	}
	free(first);
}

static void dump(struct fixture *f)
{
	for (uint32_t i = 0; i < f->n; i++)
		if (mgr(f, i))
			print_message(
				"m%u: applied=%llu term=%llu leader=%llu is_leader=%d tasks=%zu\n",
				i + 1, (unsigned long long)manager_applied(mgr(f, i)),
				(unsigned long long)manager_term(mgr(f, i)),
				(unsigned long long)manager_leader(mgr(f, i)),
				manager_is_leader(mgr(f, i)),
				store_node_count(manager_store(mgr(f, i))));
		else
			print_message("m%u: down\n", i + 1);
}

static bool all_applied(struct fixture *f)
{
	uint64_t max = 0;
	for (uint32_t i = 0; i < f->n; i++)
		if (mgr(f, i) && manager_applied(mgr(f, i)) > max)
			max = manager_applied(mgr(f, i));
	for (uint32_t i = 0; i < f->n; i++)
		if (mgr(f, i) && manager_applied(mgr(f, i)) != max)
			return false;
	return true;
}

/* ---------------------------------------------------------------- tests */

static void test_manager_1_3_5_managers_elect_a_leader(void **state)
{
	const uint32_t sizes[] = {1, 3, 5};
	for (size_t s = 0; s < 3; s++) {
		struct fixture f;
		setup(&f, 7 + s, sizes[s], 0);
		assert_true(run_until(&f, 60 * SEC, has_leader));
		assert_true(manager_is_leader(mgr(&f, leader(&f))));
		teardown(&f);
	}
}

static void test_manager_new_leader_within_two_election_timeouts_99_of_100(void **state)
{
	int within = 0;
	for (uint64_t seed = 1; seed <= 100; seed++) {
		struct fixture f;
		uint32_t old;
		us_t killed_at;
		setup(&f, seed, 3, 0);
		assert_true(run_until(&f, 60 * SEC, has_leader));
		run_until(&f, 5 * SEC, NULL);
		old = leader(&f);
		killed_at = world_now_us(f.w);
		assert_int_equal(world_node_kill(f.w, old, true, false), 0);
		if (run_until(&f, 20 * SEC, has_leader)) {
			assert_int_not_equal(leader(&f), old);
			within++;
		}
		(void)killed_at;
		teardown(&f);
	}
	print_message("new leader within 20s in %d of 100 seeds\n", within);
	assert_true(within >= 99);
}

static void test_manager_writes_through_leader_and_follower(void **state)
{
	struct fixture f;
	uint32_t l, follower;

	setup(&f, 3, 3, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	l = leader(&f);
	follower = (l + 1) % 3;
	assert_int_equal(write_task(&f, l, 100), 0);
	assert_int_equal(write_task(&f, follower, 101), 0);
	/* a follower's caller reads its own write at once */
	assert_non_null(store_node_get(manager_store(mgr(&f, follower)), 101));
	/* the FSM's verdict travels back: a duplicate create is refused */
	assert_int_equal(write_task(&f, follower, 100), CS_EEXIST);
	assert_true(run_until(&f, 10 * SEC, all_applied));
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(store_node_count(manager_store(mgr(&f, i))), 2);
	assert_stores_equal(&f);
	teardown(&f);
}

/* The metrics a scrape reads follow the manager: its term and indexes,
 * its writes' latency, its store; the leader's components too (the
 * dispatcher's sessions), a follower's not; a killed leader counts a
 * leader change on the survivors. */
static void test_manager_metrics_follow_raft_store_and_leadership(void **state)
{
	struct fixture f;
	struct metrics_buf out = {0};
	uint32_t l, follower;
	char line[64];
	(void)state;

	setup(&f, 5, 3, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	l = leader(&f);
	follower = (l + 1) % 3;
	assert_int_equal(write_task(&f, l, 100), 0);
	manager_metrics(mgr(&f, l), &out);
	assert_false(out.failed);
	snprintf(line, sizeof line, "cswarm_raft_term %llu\n",
		 (unsigned long long)manager_term(mgr(&f, l)));
	assert_non_null(strstr(out.text, line));
	assert_non_null(strstr(out.text, "cswarm_raft_leader 1\n"));
	assert_non_null(strstr(out.text, "cswarm_store_objects{kind=\"node\"} 1\n"));
	assert_non_null(
		strstr(out.text, "# TYPE cswarm_raft_proposal_seconds histogram\n"));
	assert_null(strstr(out.text, "cswarm_raft_proposal_seconds_count 0\n"));
	assert_non_null(strstr(out.text, "# TYPE cswarm_dispatcher_sessions gauge\n"));
	assert_non_null(
		strstr(out.text, "# TYPE cswarm_scheduler_placements_total counter\n"));
	metrics_buf_free(&out);
	manager_metrics(mgr(&f, follower), &out);
	assert_non_null(strstr(out.text, "cswarm_raft_leader 0\n"));
	assert_null(strstr(out.text, "cswarm_dispatcher_sessions"));
	assert_non_null(strstr(out.text, "cswarm_raft_leader_changes_total 0\n"));
	metrics_buf_free(&out);
	assert_int_equal(world_node_kill(f.w, l, true, false), 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	run_until(&f, 2 * SEC, NULL); /* its watch has looked */
	manager_metrics(mgr(&f, follower), &out);
	assert_non_null(strstr(out.text, "cswarm_raft_leader_changes_total 1\n"));
	metrics_buf_free(&out);
	teardown(&f);
}

struct ev_find {
	uint64_t id;
	bool found;
};

static void ev_find_visit(void *arg, const struct events_event *ev)
{
	struct ev_find *f = arg;
	if (ev->id == f->id && ev->action == EVENTS_CREATE &&
	    strcmp(events_kinds[ev->kind].name, "node") == 0)
		f->found = true;
}

/* Issue 20: every manager, a follower too, keeps the events of what it
 * applied (a follower's reader needs no leader); the leader's scrape has
 * its pending tasks by reason and the orchestrator's families. */
static void test_manager_events_on_every_manager_and_pending_reasons(void **state)
{
	struct fixture f;
	struct metrics_buf out = {0};
	Cs__ContainerSpec cs = CS__CONTAINER_SPEC__INIT;
	Cs__Placement pl = CS__PLACEMENT__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	char *cons[] = {"node.hostname==nowhere"};
	struct write_result r = {0};
	char err[256];
	uint32_t l;
	(void)state;

	setup(&f, 9, 3, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	l = leader(&f);
	assert_int_equal(write_task(&f, l, 100), 0);
	assert_true(run_until(&f, 10 * SEC, all_applied));
	for (uint32_t i = 0; i < 3; i++) {
		struct ev_find fd = {100, false};
		uint64_t index, ni;
		uint32_t ord, no;
		struct events *e = manager_events(mgr(&f, i));
		assert_non_null(e);
		assert_true(events_oldest(e, &index, &ord));
		while (events_read(e, NULL, index, ord, EVENTS_READ_MAX, ev_find_visit,
				   &fd, &ni, &no, err, sizeof err) > 0) {
			index = ni;
			ord = no;
		}
		assert_true(fd.found);
	}
	cs.image = "img";
	ts.container = &cs;
	pl.constraints = cons;
	pl.n_constraints = 1;
	ts.placement = &pl;
	spec.name = "web";
	spec.replicas = 2;
	spec.task = &ts;
	{ /* written as the control API would: the leader's components act */
		Cs__Service svc = CS__SERVICE__INIT;
		struct store_batch b;
		uint8_t *buf;
		size_t len;
		us_t end = world_now_us(f.w) + 60 * SEC;
		svc.id = 200;
		svc.spec = &spec;
		svc.spec_version = 1;
		store_batch_init(&b);
		assert_int_equal(store_batch_service(
					 &b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc),
				 0);
		assert_int_equal(store_batch_encode(&b, 0, 0, &buf, &len), 0);
		store_batch_free(&b);
		assert_int_equal(manager_write(mgr(&f, l), buf, len, write_done, &r), 0);
		free(buf);
		while (!r.done && world_step(f.w, end))
			;
	}
	run_until(&f, 10 * SEC, NULL);
	assert_true(r.done);
	assert_int_equal(r.status, 0);
	manager_metrics(mgr(&f, l), &out);
	assert_false(out.failed);
	assert_non_null(
		strstr(out.text, "cswarm_scheduler_pending_tasks{reason=\"none\"} 0\n"));
	assert_non_null(strstr(out.text, "cswarm_orchestrator_restarts_total 0\n"));
	assert_non_null(
		strstr(out.text, "# TYPE cswarm_orchestrator_update_tasks gauge\n"));
	/* the one node (UNKNOWN: never ready) takes no task */
	assert_non_null(
		strstr(out.text,
		       "cswarm_scheduler_pending_tasks{reason=\"not_available\"} 2\n"));
	assert_non_null(strstr(
		out.text, "cswarm_scheduler_pending_tasks{reason=\"constraint\"} 0\n"));
	metrics_buf_free(&out);
	teardown(&f);
}

static void test_manager_quorum_loss_fails_writes_then_recovers(void **state)
{
	struct fixture f;
	uint32_t l, a, b;

	setup(&f, 11, 3, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	l = leader(&f);
	assert_int_equal(write_task(&f, l, 1), 0);
	a = (l + 1) % 3;
	b = (l + 2) % 3;
	world_node_kill(f.w, a, true, false);
	world_node_kill(f.w, b, true, false);
	assert_int_equal(write_task(&f, l, 2), CS_ENOQUORUM);
	assert_true(run_until(&f, 30 * SEC, NULL));
	assert_false(has_leader(&f));
	world_node_start(f.w, a);
	world_node_start(f.w, b);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	assert_int_equal(write_task(&f, leader(&f), 3), 0);
	/* Before raftio clamped AppendEntriesResult (libraft's last_log_index
	 * bug) the old leader stayed stuck here with its stale entry. */
	if (!run_until(&f, 10 * SEC, all_applied))
		dump(&f);
	assert_true(all_applied(&f));
	/* acknowledged writes are there; the unacknowledged one may be too
	 * (it was in the leader's log) but nothing is half-applied */
	for (uint32_t i = 0; i < 3; i++) {
		const struct store *s = manager_store(mgr(&f, i));
		assert_non_null(store_node_get(s, 1));
		assert_non_null(store_node_get(s, 3));
	}
	assert_stores_equal(&f);
	teardown(&f);
}

static void test_manager_full_restart_restores_store_from_disk(void **state)
{
	struct fixture f;
	uint8_t *before, *after;
	size_t before_len, after_len;

	setup(&f, 5, 3, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	for (uint64_t id = 1; id <= 20; id++)
		assert_int_equal(write_task(&f, leader(&f), id), 0);
	assert_true(run_until(&f, 10 * SEC, all_applied));
	assert_int_equal(store_snapshot(manager_store(mgr(&f, 0)), &before, &before_len),
			 0);
	for (uint32_t i = 0; i < 3; i++)
		world_node_kill(f.w, i, true, true);
	run_until(&f, 5 * SEC, NULL);
	for (uint32_t i = 0; i < 3; i++)
		world_node_start(f.w, i);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	/* the new leader commits an entry of its term, then everything is
	 * applied again from the log */
	assert_int_equal(write_task(&f, leader(&f), 21), 0);
	assert_true(run_until(&f, 10 * SEC, all_applied));
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(store_node_count(manager_store(mgr(&f, i))), 21);
	assert_int_equal(store_snapshot(manager_store(mgr(&f, 0)), &after, &after_len),
			 0);
	assert_true(after_len > before_len);
	free(before);
	free(after);
	assert_stores_equal(&f);
	teardown(&f);
}

static void test_manager_partitioned_leader_steps_down_and_stores_agree(void **state)
{
	struct fixture f;
	uint32_t old;
	uint32_t groups[5] = {0};

	setup(&f, 9, 5, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	old = leader(&f);
	assert_int_equal(write_task(&f, old, 1), 0);
	groups[old] = 1;
	assert_int_equal(world_net_partition(f.w, groups, 5, 2), 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	assert_int_not_equal(leader(&f), old);
	assert_int_equal(write_task(&f, leader(&f), 2), 0);
	assert_int_equal(write_task(&f, leader(&f), 3), 0);
	/* the old leader cannot commit alone */
	run_until(&f, 20 * SEC, NULL);
	assert_false(manager_is_leader(mgr(&f, old)) &&
		     store_node_get(manager_store(mgr(&f, old)), 2) != NULL);
	world_net_heal(f.w);
	assert_true(run_until(&f, 30 * SEC, all_applied));
	assert_stores_equal(&f);
	assert_non_null(store_node_get(manager_store(mgr(&f, old)), 3));
	teardown(&f);
}

static void test_manager_lagging_manager_catches_up_by_snapshot(void **state)
{
	struct fixture f;
	uint32_t lag;

	setup(&f, 13, 3, 16); /* a snapshot every 16 entries */
	assert_true(run_until(&f, 60 * SEC, has_leader));
	lag = (leader(&f) + 1) % 3;
	world_node_kill(f.w, lag, true, false);
	/* the leader may have counted the dead one: wait for a majority */
	assert_true(run_until(&f, 30 * SEC, has_leader));
	for (uint64_t id = 1; id <= 100; id++)
		assert_int_equal(write_task(&f, leader(&f), id), 0);
	world_node_start(f.w, lag);
	if (!run_until(&f, 60 * SEC, all_applied))
		dump(&f);
	assert_true(all_applied(&f));
	assert_int_equal(store_node_count(manager_store(mgr(&f, lag))), 100);
	assert_stores_equal(&f);
	teardown(&f);
}

/* Issue 12, item 10: forwarded writes were numbered from 1 at every
 * process start, so a ProposalResult meant for the previous process (the
 * leader answers the address, whoever has it now) completed the new
 * process's write with the same id, with the other write's verdict. Here
 * the late answer says "applied" for the old write (id of the first
 * incarnation's last write); the new write, a duplicate the FSM refuses,
 * must still hear CS_EEXIST. */
static void test_manager_a_late_result_for_an_earlier_process_completes_nothing(
	void **state)
{
	struct fixture f;
	uint32_t l, fo;
	uint64_t old_id;
	struct store_batch b;
	Cs__Node n = CS__NODE__INIT;
	struct write_result r = {0};
	uint8_t *buf;
	size_t len;
	us_t end;

	setup(&f, 5, 3, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	l = leader(&f);
	fo = (l + 1) % 3;
	assert_int_equal(write_task(&f, fo, 100), 0); /* forwarded */
	old_id = manager_last_write_id(mgr(&f, fo));
	/* the follower's process dies and starts again */
	assert_int_equal(world_node_kill(f.w, fo, false, false), 0);
	assert_int_equal(world_node_start(f.w, fo), 0);
	assert_true(run_until(&f, 30 * SEC, all_applied));
	assert_int_equal(leader(&f), l);
	/* a duplicate create, forwarded: refused by the FSM */
	n.id = 100;
	n.hostname = "test";
	store_batch_init(&b);
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &n),
			 0);
	assert_int_equal(store_batch_encode(&b, 0, 0, &buf, &len), 0);
	store_batch_free(&b);
	assert_int_equal(manager_write(mgr(&f, fo), buf, len, write_done, &r), 0);
	free(buf);
	/* the leader's late answer to the first process's write arrives */
	{
		Cs__Wire wire = CS__WIRE__INIT;
		Cs__ProposalResult pr = CS__PROPOSAL_RESULT__INIT;
		pr.id = old_id;
		pr.status = 0;
		pr.index = manager_applied(mgr(&f, fo));
		pr.leader = "";
		struct env_identity who = {0};
		who.node_id = manager_raft_id(mgr(&f, l));
		who.cluster_id = manager_cluster_id(mgr(&f, l));
		who.role = ENV_ROLE_MANAGER;
		wire.proposal_result = &pr;
		assert_true(manager_handle(mgr(&f, fo), world_node_name(f.w, l), &who,
					   &wire));
	}
	end = world_now_us(f.w) + 60 * SEC;
	while (!r.done && world_step(f.w, end))
		;
	assert_true(r.done);
	assert_int_equal(r.status, CS_EEXIST);
	assert_int_not_equal(manager_last_write_id(mgr(&f, fo)), old_id);
	teardown(&f);
}

/* Autolock (issue 13): the cluster's unlock key seals every manager's Raft
 * keys; a manager restarted waits locked (no Raft: the others lead without
 * it) until it is given the key; a wrong key leaves it locked; the right
 * one starts it, and it catches up. Turning autolock off again lets a
 * restart go on without a key. */
static void test_manager_autolock_locks_a_restarted_manager_until_unlocked(void **state)
{
	struct fixture f;
	struct write_result r = {0};
	char key[SEAL_UNLOCK_KEY_CHARS + 1], err[256];
	uint32_t l, fo;
	us_t end;

	(void)state;
	setup(&f, 31, 3, 0);
	assert_true(run_until(&f, 60 * SEC, has_leader));
	while (!store_cluster(manager_store(mgr(&f, leader(&f)))) &&
	       world_step(f.w, UINT64_MAX))
		;
	assert_true(run_until(&f, 10 * SEC, all_applied));
	l = leader(&f);
	fo = (l + 1) % 3;
	assert_int_equal(control_cluster_set_autolock(mgr(&f, l), true, key, err,
						      sizeof err, write_done, &r),
			 0);
	end = world_now_us(f.w) + 30 * SEC;
	while (!r.done && world_step(f.w, end))
		;
	assert_int_equal(r.status, 0);
	assert_memory_equal(key, "SWMKEY-1-", 9);
	run_until(&f, 5 * SEC, NULL); /* every manager seals its keys with it */
	assert_int_equal(world_node_kill(f.w, fo, false, false), 0);
	assert_int_equal(world_node_start(f.w, fo), 0);
	assert_true(manager_locked(mgr(&f, fo)));
	{
		/* its TLS key is sealed with it too: no identity until unlocked */
		struct env *e = world_node_env(f.w, fo);
		struct env_identity me;
		struct env_blob none = {NULL, 0};
		assert_int_equal(e->ops->pki_info(e, &none, &me), CS_EAUTH);
	}
	assert_int_equal(write_task(&f, l, 500), 0); /* the others go on */
	run_until(&f, 5 * SEC, NULL);
	assert_true(manager_locked(mgr(&f, fo)));
	assert_int_equal(manager_applied(mgr(&f, fo)), 0);
	assert_int_equal(
		manager_unlock(mgr(&f, fo),
			       "SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
		CS_EAUTH);
	assert_true(manager_locked(mgr(&f, fo)));
	assert_int_equal(manager_unlock(mgr(&f, fo), key), 0);
	assert_false(manager_locked(mgr(&f, fo)));
	{
		struct env *e = world_node_env(f.w, fo);
		struct env_identity me;
		struct env_blob none = {NULL, 0};
		assert_int_equal(e->ops->pki_info(e, &none, &me), 0);
		assert_int_equal(me.node_id, manager_raft_id(mgr(&f, fo)));
	}
	assert_true(run_until(&f, 30 * SEC, all_applied));
	assert_non_null(store_node_get(manager_store(mgr(&f, fo)), 500));
	/* off again: a restart needs no key */
	r.done = false;
	assert_int_equal(control_cluster_set_autolock(mgr(&f, leader(&f)), false, key,
						      err, sizeof err, write_done, &r),
			 0);
	end = world_now_us(f.w) + 30 * SEC;
	while (!r.done && world_step(f.w, end))
		;
	assert_int_equal(r.status, 0);
	run_until(&f, 5 * SEC, NULL);
	assert_int_equal(world_node_kill(f.w, fo, false, false), 0);
	assert_int_equal(world_node_start(f.w, fo), 0);
	assert_false(manager_locked(mgr(&f, fo)));
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manager_1_3_5_managers_elect_a_leader),
		cmocka_unit_test(test_manager_writes_through_leader_and_follower),
		cmocka_unit_test(test_manager_metrics_follow_raft_store_and_leadership),
		cmocka_unit_test(
			test_manager_events_on_every_manager_and_pending_reasons),
		cmocka_unit_test(test_manager_quorum_loss_fails_writes_then_recovers),
		cmocka_unit_test(test_manager_full_restart_restores_store_from_disk),
		cmocka_unit_test(
			test_manager_partitioned_leader_steps_down_and_stores_agree),
		cmocka_unit_test(test_manager_lagging_manager_catches_up_by_snapshot),
		cmocka_unit_test(
			test_manager_a_late_result_for_an_earlier_process_completes_nothing),
		cmocka_unit_test(
			test_manager_new_leader_within_two_election_timeouts_99_of_100),
		cmocka_unit_test(
			test_manager_autolock_locks_a_restarted_manager_until_unlocked),
	};
	return cmocka_run_group_tests_name("manager", tests, NULL, NULL);
}
