/* Tests of the store: batches applied all or nothing, versions, indexes in
 * key order, watches in commit order, snapshots that round-trip byte for
 * byte, and bad bytes refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/hash.h"
#include "core/store.h"

/* Applies a batch at index; returns store_apply's verdict. */
static int apply(struct store *s, struct store_batch *b, uint64_t index)
{
	uint8_t *buf;
	size_t len;
	int rv;
	assert_int_equal(store_batch_encode(b, 1, index, &buf, &len), 0);
	rv = store_apply(s, buf, len, index, NULL, NULL);
	free(buf);
	store_batch_free(b);
	return rv;
}

static void add_service(struct store_batch *b, uint64_t id, const char *name)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__Service svc = CS__SERVICE__INIT;
	spec.name = (char *)name;
	spec.replicas = 3;
	svc.id = id;
	svc.spec = &spec;
	assert_int_equal(
		store_batch_service(b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc), 0);
}

static void add_task(struct store_batch *b, uint64_t id, uint64_t service, uint64_t slot,
		     uint64_t node, Cs__TaskState desired)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	t.id = id;
	t.service_id = service;
	t.slot = slot;
	t.node_id = node;
	t.desired_state = desired;
	st.state = CS__TASK_STATE__TASK_STATE_NEW;
	t.status = &st;
	assert_int_equal(store_batch_task(b, CS__STORE_ACTION__KIND__KIND_CREATE, &t), 0);
}

/* A store with services 10 "web" and 20 "db" and tasks 100..105. */
static struct store *sample(void)
{
	struct store *s = store_new();
	struct store_batch b;
	assert_non_null(s);
	store_batch_init(&b);
	add_service(&b, 20, "db");
	add_service(&b, 10, "web");
	add_task(&b, 105, 10, 2, 7, CS__TASK_STATE__TASK_STATE_RUNNING);
	add_task(&b, 101, 10, 1, 8, CS__TASK_STATE__TASK_STATE_RUNNING);
	add_task(&b, 103, 10, 1, 7, CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	add_task(&b, 102, 20, 1, 7, CS__TASK_STATE__TASK_STATE_RUNNING);
	add_task(&b, 104, 10, 3, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	add_task(&b, 100, 20, 2, 8, CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	assert_int_equal(apply(s, &b, 1), 0);
	return s;
}

static void add_network(struct store_batch *b, uint64_t id, const char *name,
			const char *subnet, uint32_t vni)
{
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	Cs__Network n = CS__NETWORK__INIT;
	spec.name = (char *)name;
	n.id = id;
	n.spec = &spec;
	n.subnet = (char *)subnet;
	n.vni = vni;
	assert_int_equal(store_batch_network(b, CS__STORE_ACTION__KIND__KIND_CREATE, &n),
			 0);
}

/* Two creates proposed at once were each checked against a store holding
 * neither: the store itself refuses, at apply, on every manager alike, a
 * second service or network of a name, and a network whose subnet overlaps
 * another's or whose VNI is another's; nothing of the batch applies. */
static void test_store_names_subnets_and_vnis_unique_at_apply(void **state)
{
	struct store *s = sample();
	struct store_batch b;
	(void)state;

	store_batch_init(&b);
	add_service(&b, 30, "web");
	assert_int_equal(apply(s, &b, 2), CS_EEXIST);
	assert_null(store_service_get(s, 30));
	assert_int_equal(store_service_by_name(s, "web")->id, 10);
	store_batch_init(&b);
	add_network(&b, 40, "front", "10.0.4.0/24", 4097);
	assert_int_equal(apply(s, &b, 3), 0);
	store_batch_init(&b);
	add_network(&b, 41, "front", "10.0.5.0/24", 4098);
	assert_int_equal(apply(s, &b, 4), CS_EEXIST);
	store_batch_init(&b);
	add_network(&b, 42, "wide", "10.0.0.0/16", 4099); /* holds 10.0.4.0/24 */
	assert_int_equal(apply(s, &b, 5), CS_EADDRINUSE);
	store_batch_init(&b);
	add_network(&b, 43, "back", "10.0.6.0/24", 4097);
	assert_int_equal(apply(s, &b, 6), CS_EADDRINUSE);
	assert_int_equal(store_network_count(s), 1);
	store_batch_init(&b);
	add_network(&b, 44, "back", "10.0.6.0/24", 4100);
	add_service(&b, 31, "api");
	assert_int_equal(apply(s, &b, 7), 0);
	assert_int_equal(store_network_count(s), 2);
	store_free(s);
}

static void test_store_apply_creates_and_versions_objects(void **state)
{
	struct store *s = sample();
	const Cs__Task *t = store_task_get(s, 101);

	assert_int_equal(store_task_count(s), 6);
	assert_int_equal(store_service_count(s), 2);
	assert_non_null(t);
	assert_int_equal(t->version, 1);
	assert_int_equal(t->slot, 1);
	assert_null(store_task_get(s, 999));
	assert_string_equal(store_service_by_name(s, "web")->spec->name, "web");
	assert_int_equal(store_service_by_name(s, "db")->id, 20);
	assert_null(store_service_by_name(s, "we"));
	assert_int_equal(store_applied(s), 1);
	store_free(s);
}

static void test_store_iterates_in_key_order_not_insert_order(void **state)
{
	struct store *s = sample();
	const uint64_t all[] = {100, 101, 102, 103, 104, 105};
	const uint64_t web_by_slot[] = {101, 103, 105, 104}; /* (slot, id) */
	const uint64_t node7[] = {102, 103, 105};
	const uint64_t running[] = {101, 102, 104, 105};
	const Cs__Task *t;
	size_t i;

	for (i = 0, t = store_task_next(s, NULL); t; t = store_task_next(s, t), i++)
		assert_int_equal(t->id, all[i]);
	assert_int_equal(i, 6);
	for (i = 0, t = store_task_next_by_service(s, 10, NULL); t;
	     t = store_task_next_by_service(s, 10, t), i++)
		assert_int_equal(t->id, web_by_slot[i]);
	assert_int_equal(i, 4);
	for (i = 0, t = store_task_next_by_node(s, 7, NULL); t;
	     t = store_task_next_by_node(s, 7, t), i++)
		assert_int_equal(t->id, node7[i]);
	assert_int_equal(i, 3);
	for (i = 0,
	    t = store_task_next_by_desired(s, CS__TASK_STATE__TASK_STATE_RUNNING, NULL);
	     t; t = store_task_next_by_desired(s, CS__TASK_STATE__TASK_STATE_RUNNING, t),
	    i++)
		assert_int_equal(t->id, running[i]);
	assert_int_equal(i, 4);
	i = 0;
	for (t = store_task_next_in_slot(s, 10, 1, NULL); t;
	     t = store_task_next_in_slot(s, 10, 1, t))
		i++;
	assert_int_equal(i, 2);
	assert_null(store_task_next_by_service(s, 30, NULL));
	store_free(s);
}

struct scan_seen {
	uint64_t ids[8];
	size_t count;
	uint64_t stop_node; /* stop on the first task of this node (0: never) */
};

static int scan_record(void *arg, const Cs__Task *t)
{
	struct scan_seen *s = arg;
	if (s->stop_node && t->node_id == s->stop_node)
		return 7;
	assert_true(s->count < 8);
	s->ids[s->count++] = t->id;
	return 0;
}

static void test_store_scan_by_node_follows_node_then_id(void **state)
{
	struct store *s = sample();
	const uint64_t all[] = {104, 102, 103, 105, 100, 101}; /* nodes 0, 7, 8 */
	struct scan_seen seen = {.count = 0};

	assert_int_equal(store_task_scan_by_node(s, 0, scan_record, &seen), 0);
	assert_int_equal(seen.count, 6);
	assert_memory_equal(seen.ids, all, sizeof all);
	seen = (struct scan_seen){.count = 0};
	assert_int_equal(store_task_scan_by_node(s, 1, scan_record, &seen), 0);
	assert_int_equal(seen.count, 5);
	assert_memory_equal(seen.ids, all + 1, 5 * sizeof *all);
	seen = (struct scan_seen){.count = 0};
	assert_int_equal(store_task_scan_by_node(s, 8, scan_record, &seen), 0);
	assert_int_equal(seen.count, 2);
	assert_int_equal(seen.ids[0], 100);
	seen = (struct scan_seen){.stop_node = 8};
	assert_int_equal(store_task_scan_by_node(s, 1, scan_record, &seen), 7);
	assert_int_equal(seen.count, 3);
	seen = (struct scan_seen){.count = 0};
	assert_int_equal(store_task_scan_by_node(s, 9, scan_record, &seen), 0);
	assert_int_equal(seen.count, 0);
	store_free(s);
}

/* si: the tasks-by-node index (per node id, a sorted array or past 256
 * tasks a treap; groups by node id) against a model, through random
 * creates, moves and deletes, a group that outgrows its array and shrinks
 * back, a group emptied and made again, one large group (the unassigned
 * tasks, as a rollout leaves them), iteration whose previous task moved
 * away between calls, and a restored snapshot. */
enum { SI_TASKS = 700, SI_NODES = 6 };

struct si_model {
	uint64_t node[SI_TASKS + 1]; /* by task id 1..SI_TASKS */
	bool live[SI_TASKS + 1];
	uint64_t version[SI_TASKS + 1];
};

static const uint64_t si_node_ids[SI_NODES] = {0, 3, 9, 1ull << 40, 77, 5};

/* Ids spread over 64 bits, in an order that is not the creation order. */
static uint64_t si_task_id(size_t k)
{
	return (uint64_t)k * 0x9e3779b97f4a7c15ull;
}

static int si_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int si_scan_collect(void *arg, const Cs__Task *t)
{
	uint64_t **out = arg;
	*(*out)++ = t->node_id;
	*(*out)++ = t->id;
	return 0;
}

static void si_check(const struct store *s, const struct si_model *m)
{
	static uint64_t want[2 * SI_TASKS], got[2 * SI_TASKS];
	uint64_t sorted_nodes[SI_NODES], *at = got;
	size_t n = 0;

	memcpy(sorted_nodes, si_node_ids, sizeof sorted_nodes);
	qsort(sorted_nodes, SI_NODES, sizeof *sorted_nodes, si_cmp_u64);
	for (size_t i = 0; i < SI_NODES; i++) {
		uint64_t ids[SI_TASKS];
		size_t c = 0, j = 0;
		for (size_t k = 1; k <= SI_TASKS; k++)
			if (m->live[k] && m->node[k] == sorted_nodes[i])
				ids[c++] = si_task_id(k);
		qsort(ids, c, sizeof *ids, si_cmp_u64);
		for (const Cs__Task *t =
			     store_task_next_by_node(s, sorted_nodes[i], NULL);
		     t; t = store_task_next_by_node(s, sorted_nodes[i], t), j++) {
			assert_true(j < c);
			assert_int_equal(t->id, ids[j]);
			assert_int_equal(t->node_id, sorted_nodes[i]);
		}
		assert_int_equal(j, c);
		for (j = 0; j < c; j++) {
			want[2 * n] = sorted_nodes[i];
			want[2 * n + 1] = ids[j];
			n++;
		}
	}
	assert_int_equal(store_task_scan_by_node(s, 0, si_scan_collect, &at), 0);
	assert_int_equal((size_t)(at - got), 2 * n);
	assert_memory_equal(got, want, 2 * n * sizeof *got);
	/* from a node id between two: the rest, in order */
	at = got;
	assert_int_equal(store_task_scan_by_node(s, 6, si_scan_collect, &at), 0);
	{
		size_t first = 0;
		while (first < n && want[2 * first] < 6)
			first++;
		assert_int_equal((size_t)(at - got), 2 * (n - first));
		assert_memory_equal(got, want + 2 * first, 2 * (n - first) * sizeof *got);
	}
}

static void si_write(struct store_batch *b, struct si_model *m, size_t k,
		     Cs__StoreAction__Kind kind, uint64_t node)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	t.id = si_task_id(k);
	t.service_id = 10;
	t.slot = k;
	t.node_id = node;
	t.version = m->version[k];
	t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	st.state = node ? CS__TASK_STATE__TASK_STATE_ASSIGNED
			: CS__TASK_STATE__TASK_STATE_PENDING;
	t.status = &st;
	assert_int_equal(store_batch_task(b, kind, &t), 0);
}

static void test_store_node_groups_match_a_model(void **state)
{
	static struct si_model m;
	struct store *s = store_new(), *r = store_new();
	struct store_batch b;
	uint64_t index = 1, rng = 42;
	uint8_t *buf;
	size_t len;

	(void)state;
	memset(&m, 0, sizeof m);
	store_batch_init(&b);
	add_service(&b, 10, "web");
	assert_int_equal(apply(s, &b, index++), 0);
	/* every task unassigned first: one large group */
	for (size_t k = 1; k <= SI_TASKS; k += 100) {
		store_batch_init(&b);
		for (size_t j = k; j < k + 100 && j <= SI_TASKS; j++) {
			si_write(&b, &m, j, CS__STORE_ACTION__KIND__KIND_CREATE, 0);
			m.live[j] = true;
		}
		assert_int_equal(apply(s, &b, index), 0);
		for (size_t j = k; j < k + 100 && j <= SI_TASKS; j++)
			m.version[j] = index;
		index++;
	}
	si_check(s, &m);
	/* a third of the rounds spread the tasks, a third gather them on
	 * node 3 (a group outgrows its array), a third move them elsewhere
	 * (it shrinks back) */
	for (int round = 0; round < 90; round++) {
		size_t touched[SI_TASKS + 1] = {0}, n = 0;
		store_batch_init(&b);
		for (int op = 0; op < 80; op++) {
			size_t k;
			uint64_t node;
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			k = 1 + (size_t)((rng >> 33) % SI_TASKS);
			node = si_node_ids[(rng >> 20) % SI_NODES];
			if (round >= 30 && round < 60)
				node = 3;
			else if (round >= 60 && node == 3)
				node = 77;
			if (touched[k])
				continue;
			touched[k] = 1;
			if (!m.live[k]) {
				si_write(&b, &m, k, CS__STORE_ACTION__KIND__KIND_CREATE,
					 node);
				m.live[k] = true;
				m.node[k] = node;
			} else if ((rng >> 8) % 5 == 0) {
				si_write(&b, &m, k, CS__STORE_ACTION__KIND__KIND_DELETE,
					 m.node[k]);
				m.live[k] = false;
			} else {
				si_write(&b, &m, k, CS__STORE_ACTION__KIND__KIND_UPDATE,
					 node);
				m.node[k] = node;
			}
			n++;
		}
		assert_true(n > 0);
		assert_int_equal(apply(s, &b, index), 0);
		for (size_t k = 1; k <= SI_TASKS; k++)
			if (touched[k])
				m.version[k] = index;
		index++;
		si_check(s, &m);
	}
	/* node 5 emptied (its group goes), then given a task again */
	store_batch_init(&b);
	for (size_t k = 1; k <= SI_TASKS; k++)
		if (m.live[k] && m.node[k] == 5) {
			si_write(&b, &m, k, CS__STORE_ACTION__KIND__KIND_UPDATE, 9);
			m.node[k] = 9;
			m.version[k] = index;
		}
	assert_int_equal(apply(s, &b, index++), 0);
	assert_null(store_task_next_by_node(s, 5, NULL));
	si_check(s, &m);
	/* iteration goes on after its previous task moved away */
	{
		const Cs__Task *t = store_task_next_by_node(s, 9, NULL);
		const Cs__Task *second;
		Cs__Task prev;
		size_t k;
		/* the third task of node 9 moves: the fourth follows it */
		for (int i = 0; i < 2; i++) {
			assert_non_null(t);
			t = store_task_next_by_node(s, 9, t);
		}
		assert_non_null(t);
		second = store_task_next_by_node(s, 9, t);
		assert_non_null(second);
		prev = *t;
		prev.status = NULL;
		for (k = 1; si_task_id(k) != t->id; k++)
			;
		store_batch_init(&b);
		si_write(&b, &m, k, CS__STORE_ACTION__KIND__KIND_UPDATE, 5);
		m.node[k] = 5;
		m.version[k] = index;
		assert_int_equal(apply(s, &b, index++), 0);
		t = store_task_next_by_node(s, 9, &prev);
		assert_non_null(t);
		assert_int_equal(t->id, second->id);
		assert_int_equal(store_task_next_by_node(s, 5, NULL)->id, prev.id);
	}
	si_check(s, &m);
	/* a restored snapshot indexes alike */
	assert_int_equal(store_snapshot(s, &buf, &len), 0);
	assert_int_equal(store_restore(r, buf, len, 0), 0);
	free(buf);
	si_check(r, &m);
	store_free(s);
	store_free(r);
}

/* Issue 18: a group past its array keeps its tasks in blocks of ids. The
 * unassigned tasks of a large rollout, against a model: thousands created,
 * placed a pass at a time in id order (compact placements, each block
 * emptied in turn), some sent back unassigned, some deleted, new ones
 * created among them; iteration from a task that moved away (a search by
 * id), and the group drained to an array and grown into blocks again. */
enum { BK_TASKS = 3000, BK_NODES = 40 };

struct bk_model {
	uint64_t node[BK_TASKS + 1];
	uint64_t version[BK_TASKS + 1];
	bool live[BK_TASKS + 1];
};

static uint64_t bk_task_id(size_t k)
{
	return (uint64_t)k * 0xbf58476d1ce4e5b9ull;
}

/* The model's live tasks on node, sorted by id, into ids; returns how many. */
static size_t bk_ids_on(const struct bk_model *m, uint64_t node, uint64_t *ids)
{
	size_t c = 0;
	for (size_t k = 1; k <= BK_TASKS; k++)
		if (m->live[k] && m->node[k] == node)
			ids[c++] = bk_task_id(k);
	qsort(ids, c, sizeof *ids, si_cmp_u64);
	return c;
}

static void bk_check(const struct store *s, const struct bk_model *m)
{
	static uint64_t ids[BK_TASKS], got[2 * BK_TASKS];
	uint64_t *at = got;
	size_t c = bk_ids_on(m, 0, ids), j = 0, live = 0;

	for (const Cs__Task *t = store_task_next_by_node(s, 0, NULL); t;
	     t = store_task_next_by_node(s, 0, t), j++) {
		assert_true(j < c);
		assert_int_equal(t->id, ids[j]);
	}
	assert_int_equal(j, c);
	/* a whole scan: the unassigned first, then by node, each in id order */
	assert_int_equal(store_task_scan_by_node(s, 0, si_scan_collect, &at), 0);
	for (size_t k = 1; k <= BK_TASKS; k++)
		live += m->live[k];
	assert_int_equal((size_t)(at - got), 2 * live);
	for (j = 0; j < c; j++) {
		assert_int_equal(got[2 * j], 0);
		assert_int_equal(got[2 * j + 1], ids[j]);
	}
	for (j = 1; j < live; j++)
		assert_true(got[2 * j - 2] < got[2 * j] ||
			    (got[2 * j - 2] == got[2 * j] &&
			     got[2 * j - 1] < got[2 * j + 1]));
}

static void test_store_large_group_blocks_match_a_model(void **state)
{
	static struct bk_model m;
	static uint64_t ids[BK_TASKS];
	struct store *s = store_new();
	struct store_batch b;
	uint64_t index = 1, rng = 7;

	(void)state;
	memset(&m, 0, sizeof m);
	store_batch_init(&b);
	add_service(&b, 10, "web");
	assert_int_equal(apply(s, &b, index++), 0);
	for (int round = 0; round < 40; round++) {
		size_t c, placed = 0;
		bool touched[BK_TASKS + 1] = {false};
		store_batch_init(&b);
		/* creates (all of them in the first round), then placements of
		 * every third unassigned task in id order */
		for (size_t k = 1; k <= BK_TASKS; k++) {
			Cs__Task t = CS__TASK__INIT;
			Cs__TaskStatus st = CS__TASK_STATUS__INIT;
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			if (m.live[k] || (round > 0 && (rng >> 40) % 8 != 0))
				continue;
			t.id = bk_task_id(k);
			t.service_id = 10;
			t.slot = k;
			t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
			st.state = CS__TASK_STATE__TASK_STATE_PENDING;
			t.status = &st;
			assert_int_equal(
				store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE,
						 &t),
				0);
			m.live[k] = true;
			m.node[k] = 0;
			touched[k] = true;
		}
		if (b.action_count > 0) {
			assert_int_equal(apply(s, &b, index), 0);
			for (size_t k = 1; k <= BK_TASKS; k++)
				if (touched[k])
					m.version[k] = index;
			index++;
			bk_check(s, &m);
		}
		/* a pass places unassigned tasks in id order (rounds 20 to 29
		 * place all but a few: the group drains to an array) */
		c = bk_ids_on(&m, 0, ids);
		store_batch_init(&b);
		memset(touched, 0, sizeof touched);
		for (size_t j = 0; j < c; j++) {
			size_t k;
			if (round < 20 ? j % 3 != 0 : round < 30 ? j < 10 : j % 2 != 0)
				continue;
			for (k = 1; bk_task_id(k) != ids[j]; k++)
				;
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			m.node[k] = 1 + (rng >> 33) % BK_NODES;
			touched[k] = true;
			assert_int_equal(
				store_batch_placement(&b, ids[j], m.version[k], m.node[k],
						      CS__TASK_STATE__TASK_STATE_ASSIGNED,
						      5, "ok"),
				0);
			placed++;
		}
		if (placed) {
			b.placements = true;
			assert_int_equal(apply(s, &b, index), 0);
			for (size_t k = 1; k <= BK_TASKS; k++)
				if (touched[k])
					m.version[k] = index;
			index++;
			bk_check(s, &m);
		}
		/* some placed tasks come back unassigned, some go */
		store_batch_init(&b);
		memset(touched, 0, sizeof touched);
		for (size_t k = 1; k <= BK_TASKS; k++) {
			Cs__Task t = CS__TASK__INIT;
			Cs__TaskStatus st = CS__TASK_STATUS__INIT;
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			if (!m.live[k] || m.node[k] == 0 || (rng >> 40) % 16 != 0)
				continue;
			t.id = bk_task_id(k);
			t.service_id = 10;
			t.slot = k;
			t.version = m.version[k];
			t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
			st.state = CS__TASK_STATE__TASK_STATE_PENDING;
			t.status = &st;
			touched[k] = true;
			if ((rng >> 20) % 3 == 0) {
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_DELETE,
						&t),
					0);
				m.live[k] = false;
			} else {
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_UPDATE,
						&t),
					0);
				m.node[k] = 0;
			}
		}
		if (b.action_count > 0) {
			assert_int_equal(apply(s, &b, index), 0);
			for (size_t k = 1; k <= BK_TASKS; k++)
				if (touched[k])
					m.version[k] = index;
			index++;
		} else {
			store_batch_free(&b);
		}
		bk_check(s, &m);
		/* iteration from an unassigned task that was placed since */
		c = bk_ids_on(&m, 0, ids);
		if (c > 2) {
			const Cs__Task *t = store_task_get(s, ids[c / 2]);
			Cs__Task prev = *t;
			size_t k;
			for (k = 1; bk_task_id(k) != ids[c / 2]; k++)
				;
			store_batch_init(&b);
			assert_int_equal(
				store_batch_placement(&b, ids[c / 2], m.version[k], 3,
						      CS__TASK_STATE__TASK_STATE_ASSIGNED,
						      5, "ok"),
				0);
			b.placements = true;
			assert_int_equal(apply(s, &b, index), 0);
			m.node[k] = 3;
			m.version[k] = index++;
			prev.status = NULL;
			t = store_task_next_by_node(s, 0, &prev);
			assert_non_null(t);
			assert_int_equal(t->id, ids[c / 2 + 1]);
		}
	}
	store_free(s);
}

/* A batch of more than 64 actions (keys on the heap) finds a repeated
 * object among its (table, id) keys: ids that differ in one bit alone, low
 * or high, are apart; one id in two tables is no repeat; one task twice,
 * however far apart in the batch and alike in its low bits to the others,
 * is refused whole. */
static void test_store_large_batch_finds_repeats_by_table_and_id(void **state)
{
	struct store *s = store_new();
	struct store_batch b;
	Cs__Node n = CS__NODE__INIT;
	uint64_t ids[300];

	(void)state;
	for (size_t i = 0; i < 300; i++) /* one bit each, or random-looking */
		ids[i] = i < 64 ? 1ull << i : (i + 1) * 0x9e3779b97f4a7c15ull;
	store_batch_init(&b);
	add_service(&b, 10, "web");
	n.id = ids[5]; /* a node with a task's id */
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &n),
			 0);
	for (size_t i = 0; i < 300; i++)
		add_task(&b, ids[i], 10, i, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(s, &b, 1), 0);
	assert_int_equal(store_task_count(s), 300);
	assert_non_null(store_node_get(s, ids[5]));
	/* one task twice, first and last, its id equal to the others' but in
	 * its high digits: nothing of the batch lands */
	store_batch_init(&b);
	add_task(&b, 1000 + 500 * 0x10000000000ull, 10, 1000, 0,
		 CS__TASK_STATE__TASK_STATE_RUNNING);
	for (size_t i = 1; i < 200; i++)
		add_task(&b, 1000 + i * 0x10000000000ull, 10, 1000 + i, 0,
			 CS__TASK_STATE__TASK_STATE_RUNNING);
	add_task(&b, 1000 + 500 * 0x10000000000ull, 10, 2000, 0,
		 CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(s, &b, 2), CS_EEXIST);
	assert_int_equal(store_task_count(s), 300);
	/* the same without the repeat lands */
	store_batch_init(&b);
	add_task(&b, 1000 + 500 * 0x10000000000ull, 10, 1000, 0,
		 CS__TASK_STATE__TASK_STATE_RUNNING);
	for (size_t i = 1; i < 200; i++)
		add_task(&b, 1000 + i * 0x10000000000ull, 10, 1000 + i, 0,
			 CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(s, &b, 3), 0);
	assert_int_equal(store_task_count(s), 500);
	store_free(s);
}

/* A batch's repeats are judged by its own pairs alone (issue 18: a set
 * stamped with the index applied): the same ids at the next index, and
 * at an index met again after a restore took the store back, land. */
static void test_store_repeats_judged_by_the_batch_alone(void **state)
{
	struct store *s = store_new();
	struct store_batch b;
	uint8_t *snap;
	size_t len;

	(void)state;
	store_batch_init(&b);
	add_service(&b, 10, "web");
	assert_int_equal(apply(s, &b, 1), 0);
	assert_int_equal(store_snapshot(s, &snap, &len), 0);
	for (int round = 0; round < 2; round++) {
		store_batch_init(&b);
		for (uint64_t i = 1; i <= 50; i++)
			add_task(&b, 7000 + i, 10, i, 0,
				 CS__TASK_STATE__TASK_STATE_RUNNING);
		assert_int_equal(apply(s, &b, 2), 0);
		assert_int_equal(store_task_count(s), 50);
		/* back to index 1: the same creates at index 2 again */
		assert_int_equal(store_restore(s, snap, len, 1), 0);
		assert_int_equal(store_task_count(s), 0);
	}
	free(snap);
	store_free(s);
}

static void test_store_scan_service_follows_slot_then_id(void **state)
{
	struct store *s = sample();
	const uint64_t web[] = {101, 103, 105, 104}; /* (slot, id) */
	struct scan_seen seen = {.count = 0};

	assert_int_equal(store_task_scan_service(s, 10, scan_record, &seen), 0);
	assert_int_equal(seen.count, 4);
	assert_memory_equal(seen.ids, web, sizeof web);
	seen = (struct scan_seen){.count = 0};
	assert_int_equal(store_task_scan_service(s, 20, scan_record, &seen), 0);
	assert_int_equal(seen.count, 2);
	assert_int_equal(seen.ids[0], 102);
	assert_int_equal(seen.ids[1], 100);
	/* none of service 15 or 30; a stop from fn comes back */
	seen = (struct scan_seen){.count = 0};
	assert_int_equal(store_task_scan_service(s, 15, scan_record, &seen), 0);
	assert_int_equal(store_task_scan_service(s, 30, scan_record, &seen), 0);
	assert_int_equal(seen.count, 0);
	seen = (struct scan_seen){.stop_node = 7};
	assert_int_equal(store_task_scan_service(s, 10, scan_record, &seen), 7);
	assert_int_equal(seen.count, 1); /* 101 is on node 8, 103 on 7 */
	store_free(s);
}

/* The first task of service svc after (slot, id) in the store's (slot, id)
 * order, from a whole scan: what a by-service step must return. */
struct wk_ref {
	uint64_t slot, id;
	const Cs__Task *found;
};

static int wk_ref_visit(void *arg, const Cs__Task *t)
{
	struct wk_ref *r = arg;
	if (t->slot > r->slot || (t->slot == r->slot && t->id > r->id)) {
		r->found = t;
		return 1;
	}
	return 0;
}

static const Cs__Task *wk_expected(const struct store *s, uint64_t svc,
				   const Cs__Task *prev)
{
	struct wk_ref r = {.slot = prev->slot, .id = prev->id};
	store_task_scan_service(s, svc, wk_ref_visit, &r);
	return r.found;
}

static void test_store_walk_by_service_matches_a_search_across_changes(void **state)
{
	/* store_task_next_by_service keeps the path of its last step (issue
	 * 18): each step must return what a search from the root would,
	 * while tasks come and go between steps and two walks take turns */
	struct store *s = store_new();
	struct store_batch b;
	uint64_t index = 1, next_id = 100000;
	const Cs__Task *a, *c;
	size_t steps_a = 0, steps_c = 0;

	assert_non_null(s);
	store_batch_init(&b);
	add_service(&b, 10, "a");
	add_service(&b, 20, "b");
	add_service(&b, 30, "c");
	assert_int_equal(apply(s, &b, index++), 0);
	for (uint64_t k = 0; k < 3000; k += 500) {
		store_batch_init(&b);
		for (uint64_t i = k; i < k + 500; i++)
			add_task(&b, 1000 + (i * 7919) % 3001, 10 * (1 + i % 3),
				 1 + i % 97, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
		assert_int_equal(apply(s, &b, index++), 0);
	}
	a = store_task_next_by_service(s, 20, NULL);
	c = store_task_next_by_service(s, 30, NULL);
	assert_non_null(a);
	assert_non_null(c);
	while (a || c) {
		if (a) {
			const Cs__Task *want = wk_expected(s, 20, a);
			const Cs__Task *got = store_task_next_by_service(s, 20, a);
			assert_ptr_equal(got, want);
			a = got;
			steps_a++;
		}
		if (c && steps_c % 3 == 0) {
			/* c's walk takes a step only now and then */
			const Cs__Task *want = wk_expected(s, 30, c);
			const Cs__Task *got = store_task_next_by_service(s, 30, c);
			assert_ptr_equal(got, want);
			c = got;
		}
		steps_c++;
		if (steps_a % 3 == 0 && a && index < 300) {
			/* tasks of the walk's service in the slots about it
			 * (ahead and behind), and the first ones of its
			 * service (the path's nodes, at times) and another's
			 * removed */
			const Cs__Task *gone[4];
			size_t n_gone = 0;
			gone[n_gone] = store_task_next_by_service(s, 10, NULL);
			n_gone += gone[n_gone] != NULL;
			for (const Cs__Task *t = store_task_next_by_service(s, 20, NULL);
			     t && n_gone < 4; t = store_task_next_by_service(s, 20, t))
				if (t != a)
					gone[n_gone++] = t;
			store_batch_init(&b);
			for (uint64_t k = 0; k < 8; k++)
				add_task(&b, next_id++, 20,
					 a->slot + k % 3 - (a->slot > 1), 0,
					 CS__TASK_STATE__TASK_STATE_RUNNING);
			for (size_t k = 0; k < n_gone; k++)
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_DELETE,
						gone[k]),
					0);
			assert_int_equal(apply(s, &b, index++), 0);
		}
	}
	assert_true(steps_a > 1000);
	store_free(s);
}

struct wi_ref {
	uint64_t id;
	const Cs__Task *found;
};

static int wi_ref_visit(void *arg, const Cs__Task *t)
{
	struct wi_ref *r = arg;
	if (t->id > r->id) {
		r->found = t;
		return 1;
	}
	return 0;
}

/* The task after id prev's, by a scan of the whole store. */
static const Cs__Task *wi_expected(const struct store *s, uint64_t prev_id)
{
	struct wi_ref r = {.id = prev_id};
	store_task_scan(s, wi_ref_visit, &r);
	return r.found;
}

static void test_store_task_next_matches_a_search_across_changes(void **state)
{
	/* store_task_next keeps the path of its last step (issue 18: the
	 * dispatcher walks every task by id): each step must return what a
	 * search from the root would, while tasks come and go (the walk's
	 * own, the next one, others), are updated, and after a restore */
	struct store *s = store_new(), *r = store_new();
	struct store_batch b;
	uint64_t index = 1, next_id = 3, held_id;
	const Cs__Task *t;
	size_t steps = 0;
	uint8_t *snap;
	size_t len;

	assert_non_null(s);
	assert_null(store_task_next(s, NULL));
	store_batch_init(&b);
	add_service(&b, 10, "a");
	assert_int_equal(apply(s, &b, index++), 0);
	for (uint64_t k = 0; k < 2000; k += 500) {
		store_batch_init(&b);
		for (uint64_t i = k; i < k + 500; i++)
			add_task(&b, 1000 + (i * 7919) % 2003 * 5, 10, 1 + i, 0,
				 CS__TASK_STATE__TASK_STATE_RUNNING);
		assert_int_equal(apply(s, &b, index++), 0);
	}
	t = store_task_next(s, NULL);
	assert_ptr_equal(t, wi_expected(s, 0));
	while (t) {
		const Cs__Task *want = wi_expected(s, t->id), *got;
		held_id = t->id;
		got = store_task_next(s, t);
		assert_ptr_equal(got, want);
		t = got;
		steps++;
		if (t && steps % 7 == 0) {
			/* new ids about the walk, the next task gone, another
			 * updated (a new object) */
			const Cs__Task *after = store_task_next(s, t);
			bool add_next = store_task_get(s, t->id + 1) == NULL;
			store_batch_init(&b);
			if (add_next)
				add_task(&b, t->id + 1, 10, 5000 + next_id, 0,
					 CS__TASK_STATE__TASK_STATE_RUNNING);
			add_task(&b, next_id, 10, 9000 + next_id, 0,
				 CS__TASK_STATE__TASK_STATE_RUNNING);
			next_id++;
			if (after && !(add_next && after->id == t->id + 1))
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_DELETE,
						after),
					0);
			assert_int_equal(apply(s, &b, index++), 0);
			held_id = t->id;
			store_batch_init(&b);
			assert_int_equal(
				store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE,
						 t),
				0);
			assert_int_equal(apply(s, &b, index++), 0);
			t = store_task_get(s, held_id); /* its new object */
		}
		if (t && steps % 11 == 0) {
			/* the walk's own task goes: the caller holds its id */
			Cs__Task held = *t;
			store_batch_init(&b);
			assert_int_equal(
				store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE,
						 t),
				0);
			assert_int_equal(apply(s, &b, index++), 0);
			want = wi_expected(s, held.id);
			assert_ptr_equal(store_task_next(s, &held), want);
			t = want;
		}
	}
	assert_true(steps > 1000);
	/* a restore: the walk begins anew in the restored tasks */
	assert_int_equal(store_snapshot(s, &snap, &len), 0);
	t = store_task_next(r, NULL);
	assert_null(t);
	store_batch_init(&b);
	add_service(&b, 10, "a");
	add_task(&b, 77, 10, 1, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(r, &b, 1), 0);
	t = store_task_next(r, NULL);
	assert_int_equal(t->id, 77);
	assert_int_equal(store_restore(r, snap, len, 0), 0);
	free(snap);
	steps = 0;
	{
		const Cs__Task *u = store_task_next(s, NULL);
		for (t = store_task_next(r, NULL); t; t = store_task_next(r, t)) {
			assert_non_null(u);
			assert_int_equal(t->id, u->id);
			u = store_task_next(s, u);
			steps++;
		}
		assert_null(u);
	}
	assert_int_equal(steps, store_task_count(s));
	store_free(s);
	store_free(r);
}

/* A batch's bytes are what protobuf-c packs for the same StoreBatch, and
 * decode back to the actions added (each read when added). */
static void test_store_batch_encodes_as_protobuf_c_packs(void **state)
{
	struct store_batch b;
	Cs__StoreBatch *dec;
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	uint8_t *buf, *want;
	size_t len, want_len;
	char name[600];

	store_batch_init(&b);
	assert_int_equal(store_batch_bytes(&b), 0);
	assert_int_equal(store_batch_decode(&b, &dec), 0);
	assert_int_equal(dec->n_actions, 0);
	cs__store_batch__free_unpacked(dec, NULL);
	add_service(&b, 10, "web");
	memset(name, 'x', sizeof name - 1); /* a length over one varint byte */
	name[sizeof name - 1] = '\0';
	t.id = 1ull << 63;
	t.service_id = 10;
	t.service_name = name;
	t.status = &st;
	st.state = CS__TASK_STATE__TASK_STATE_RUNNING;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t),
			 0);
	t.id = 5; /* read when added: the batch keeps 1 << 63 */
	assert_int_equal(b.action_count, 2);
	assert_true(store_batch_bytes(&b) > sizeof name);

	assert_int_equal(store_batch_decode(&b, &dec), 0);
	assert_int_equal(dec->n_actions, 2);
	assert_string_equal(dec->actions[0]->service->spec->name, "web");
	assert_int_equal(dec->actions[1]->kind, CS__STORE_ACTION__KIND__KIND_UPDATE);
	assert_int_equal(dec->actions[1]->task->id, 1ull << 63);
	assert_string_equal(dec->actions[1]->task->service_name, name);
	for (int k = 0; k < 4; k++) {
		/* proposer and proposal id: zero (left out), one byte, many */
		uint64_t proposer = k == 0 ? 0 : k == 1 ? 1 : UINT64_MAX;
		uint64_t proposal = k == 3 ? 0 : k == 2 ? 300 : 127;
		dec->proposer = proposer;
		dec->proposal_id = proposal;
		want_len = cs__store_batch__get_packed_size(dec);
		want = malloc(want_len);
		assert_non_null(want);
		cs__store_batch__pack(dec, want);
		assert_int_equal(store_batch_encode(&b, proposer, proposal, &buf, &len),
				 0);
		assert_int_equal(len, want_len);
		assert_memory_equal(buf, want, len);
		free(buf);
		free(want);
	}
	cs__store_batch__free_unpacked(dec, NULL);
	store_batch_free(&b);
	assert_int_equal(b.action_count, 0);
}

static void test_store_update_moves_indexes_and_checks_version(void **state)
{
	struct store *s = sample();
	struct store_batch b;
	Cs__Task *copy;
	const Cs__Task *t = store_task_get(s, 104);

	/* copy through the batch API: read, change, write */
	copy = (Cs__Task *)protobuf_c_message_unpack(&cs__task__descriptor, NULL, 0,
						     (const uint8_t *)"");
	assert_non_null(copy);
	copy->id = t->id;
	copy->service_id = t->service_id;
	copy->slot = t->slot;
	copy->node_id = 9;
	copy->desired_state = t->desired_state;
	copy->version = t->version;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, copy),
			 0);
	assert_int_equal(apply(s, &b, 2), 0);
	t = store_task_get(s, 104);
	assert_int_equal(t->node_id, 9);
	assert_int_equal(t->version, 2);
	assert_int_equal(store_task_next_by_node(s, 9, NULL)->id, 104);
	assert_null(store_task_next_by_node(s, 0, NULL));

	/* the same update again carries the old version: refused */
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, copy),
			 0);
	assert_int_equal(apply(s, &b, 3), CS_EVERSION);
	assert_int_equal(store_applied(s), 3);
	protobuf_c_message_free_unpacked(&copy->base, NULL);
	store_free(s);
}

static size_t count_by_node(const struct store *s, uint64_t node)
{
	size_t n = 0;
	for (const Cs__Task *t = store_task_next_by_node(s, node, NULL); t;
	     t = store_task_next_by_node(s, node, t))
		n++;
	return n;
}

static size_t count_by_desired(const struct store *s, Cs__TaskState d)
{
	size_t n = 0;
	for (const Cs__Task *t = store_task_next_by_desired(s, d, NULL); t;
	     t = store_task_next_by_desired(s, d, t))
		n++;
	return n;
}

/* issue 18: the tasks by id (the leader's components walk them, a
 * follower's store may never) are linked at the first walk, not at every
 * write: until then none is in the tree; a walk, a scan and a snapshot then
 * see what the tree kept from the start would, and every write after keeps
 * it. */
static void test_store_id_index_is_built_at_its_first_walk(void **state)
{
	struct store *s = sample(), *r = store_new();
	struct store_batch b;
	Cs__Task copy;
	const Cs__Task *t;
	uint64_t want[] = {99, 102, 103, 104, 105, 106};
	size_t k = 0;
	uint8_t *buf;
	size_t len;

	(void)state;
	/* writes before: a create, a delete */
	store_batch_init(&b);
	add_task(&b, 106, 10, 4, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	copy = *store_task_get(s, 100);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &copy),
			 0);
	assert_int_equal(apply(s, &b, 2), 0);
	assert_int_equal(store_indexed(s).by_id, 0);
	assert_int_equal(store_task_count(s), 6);
	assert_int_equal(store_task_get(s, 106)->slot, 4);

	/* the first walk links them all */
	assert_int_equal(store_task_next(s, NULL)->id, 101);
	assert_int_equal(store_indexed(s).by_id, 6);

	/* kept from then on: a create below the first id, a delete */
	store_batch_init(&b);
	add_task(&b, 99, 20, 3, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	copy = *store_task_get(s, 101);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &copy),
			 0);
	assert_int_equal(apply(s, &b, 3), 0);
	assert_int_equal(store_indexed(s).by_id, 6);
	for (t = store_task_next(s, NULL); t; t = store_task_next(s, t))
		assert_int_equal(t->id, want[k++]);
	assert_int_equal(k, 6);

	/* a snapshot of a store never walked: the same tasks, in id order */
	store_free(s);
	s = sample();
	assert_int_equal(store_indexed(s).by_id, 0);
	assert_int_equal(store_snapshot(s, &buf, &len), 0);
	assert_int_equal(store_restore(r, buf, len, 0), 0);
	free(buf);
	assert_int_equal(store_task_count(r), 6);
	k = 100;
	for (t = store_task_next(r, NULL); t; t = store_task_next(r, t))
		assert_int_equal(t->id, k++);
	assert_int_equal(k, 106);
	store_free(s);
	store_free(r);
}

/* The ids store_task_next_by_desired gives for d equal the tasks of
 * desired state d in id order (store_task_next), whatever came first. */
static void assert_desired_walk(const struct store *s, Cs__TaskState d)
{
	const Cs__Task *w = store_task_next_by_desired(s, d, NULL);
	for (const Cs__Task *t = store_task_next(s, NULL); t; t = store_task_next(s, t)) {
		if (t->desired_state != d)
			continue;
		assert_non_null(w);
		assert_int_equal(w->id, t->id);
		w = store_task_next_by_desired(s, d, w);
	}
	assert_null(w);
}

/* issue 18: the index by desired state (the scheduler's metrics read it
 * alone) is linked at its first walk, not at every write: until then no
 * task is in it; the walk then gives what the index kept from the start
 * would, and every write after keeps it (a create, a desired change, a
 * delete); a restore and a clear start again empty. */
static void test_store_desired_index_is_built_at_its_first_walk(void **state)
{
	struct store *s = sample(), *r = store_new();
	struct store_batch b;
	Cs__Task copy;
	uint8_t *buf;
	size_t len;

	(void)state;
	/* writes before the first walk: a desired change, a delete */
	copy = *store_task_get(s, 103);
	copy.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy),
			 0);
	copy = *store_task_get(s, 100);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &copy),
			 0);
	assert_int_equal(apply(s, &b, 2), 0);
	assert_int_equal(store_indexed(s).by_desired, 0);

	assert_desired_walk(s, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(store_indexed(s).by_desired, 5);
	assert_desired_walk(s, CS__TASK_STATE__TASK_STATE_SHUTDOWN);

	/* kept from then on */
	store_batch_init(&b);
	add_task(&b, 99, 10, 4, 0, CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	copy = *store_task_get(s, 105);
	copy.desired_state = CS__TASK_STATE__TASK_STATE_SHUTDOWN;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy),
			 0);
	copy = *store_task_get(s, 101);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &copy),
			 0);
	assert_int_equal(apply(s, &b, 3), 0);
	assert_int_equal(store_indexed(s).by_desired, 5);
	assert_desired_walk(s, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_desired_walk(s, CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	assert_int_equal(count_by_desired(s, CS__TASK_STATE__TASK_STATE_SHUTDOWN), 2);

	/* a restored store starts empty, and walks the same */
	assert_int_equal(store_snapshot(s, &buf, &len), 0);
	assert_int_equal(store_restore(r, buf, len, 0), 0);
	free(buf);
	assert_int_equal(store_indexed(r).by_desired, 0);
	assert_desired_walk(r, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_desired_walk(r, CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	assert_int_equal(store_indexed(r).by_desired, 5);
	store_free(s);
	store_free(r);
}

/* Tasks are found by id through a hash beside the id tree, and an update
 * moves only the indexes whose key changed: thousands of tasks created
 * (the hash grows), a third removed (runs shifted back), others placed
 * (node index only) or told to stop (desired index only); every lookup,
 * every index count and a snapshot's round trip agree. */
static void test_store_task_lookups_and_partial_index_moves(void **state)
{
	enum { N = 3000 };
	struct store *s = store_new(), *r = store_new();
	struct store_batch b;
	uint64_t index = 1;
	size_t live = 0, placed = 0, stopped = 0;
	uint8_t *buf;
	size_t len;

	(void)state;
	store_batch_init(&b);
	add_service(&b, 10, "web");
	assert_int_equal(apply(s, &b, index++), 0);
	/* ids close together and far apart: runs in the hash */
	for (size_t i = 0; i < N; i += 500) {
		store_batch_init(&b);
		for (size_t k = i; k < i + 500; k++)
			add_task(&b, k % 2 ? k + 1 : (k + 1) << 40, 10, k + 1, 0,
				 CS__TASK_STATE__TASK_STATE_RUNNING);
		assert_int_equal(apply(s, &b, index++), 0);
	}
	for (size_t k = 0; k < N; k += 500) {
		store_batch_init(&b);
		for (size_t j = k; j < k + 500; j++) {
			uint64_t id = j % 2 ? j + 1 : (j + 1) << 40;
			const Cs__Task *t = store_task_get(s, id);
			Cs__Task copy;
			assert_non_null(t);
			copy = *t;
			if (j % 3 == 0) {
				assert_int_equal(
					store_batch_task(
						&b, CS__STORE_ACTION__KIND__KIND_DELETE,
						&copy),
					0);
				continue;
			}
			live++;
			if (j % 3 == 1) {
				copy.node_id = 7;
				placed++;
			} else {
				copy.desired_state = CS__TASK_STATE__TASK_STATE_SHUTDOWN;
				stopped++;
			}
			assert_int_equal(
				store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE,
						 &copy),
				0);
		}
		assert_int_equal(apply(s, &b, index++), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		const struct store *x = pass ? r : s;
		assert_int_equal(store_task_count(x), live);
		for (size_t j = 0; j < N; j++) {
			uint64_t id = j % 2 ? j + 1 : (j + 1) << 40;
			const Cs__Task *t = store_task_get(x, id);
			if (j % 3 == 0) {
				assert_null(t);
				continue;
			}
			assert_non_null(t);
			assert_int_equal(t->id, id);
			assert_int_equal(t->node_id, j % 3 == 1 ? 7 : 0);
		}
		assert_int_equal(count_by_node(x, 7), placed);
		assert_int_equal(count_by_node(x, 0), stopped);
		assert_int_equal(count_by_desired(x, CS__TASK_STATE__TASK_STATE_SHUTDOWN),
				 stopped);
		assert_int_equal(count_by_desired(x, CS__TASK_STATE__TASK_STATE_RUNNING),
				 placed);
		assert_null(store_task_get(x, 1ull << 63));
		if (!pass) {
			assert_int_equal(store_snapshot(s, &buf, &len), 0);
			assert_int_equal(store_restore(r, buf, len, 0), 0);
			free(buf);
		}
	}
	store_free(s);
	store_free(r);
}

/* Applies b at index with StoreBatch.time_ms appended to its encoding, as
 * the leader's manager_propose does. */
static int apply_at(struct store *s, struct store_batch *b, uint64_t index,
		    uint64_t time_ms)
{
	Cs__StoreBatch *dec;
	uint8_t *buf;
	size_t len;
	int rv;

	assert_int_equal(store_batch_decode(b, &dec), 0);
	dec->time_ms = time_ms;
	len = cs__store_batch__get_packed_size(dec);
	buf = malloc(len);
	assert_non_null(buf);
	cs__store_batch__pack(dec, buf);
	cs__store_batch__free_unpacked(dec, NULL);
	rv = store_apply(s, buf, len, index, NULL, NULL);
	free(buf);
	store_batch_free(b);
	return rv;
}

/* Issue 14: created_ms and updated_ms are the store's, from the batch's
 * time: a create sets both, an update only updated_ms (the creation time
 * survives whatever the writer sends), a batch without a time keeps them. */
static void test_store_stamps_created_and_updated_times(void **state)
{
	struct store *s = store_new();
	struct store_batch b;
	Cs__Task t = CS__TASK__INIT;
	Cs__Node n = CS__NODE__INIT;
	const Cs__Task *got;
	const Cs__Service *svc;

	store_batch_init(&b);
	add_service(&b, 10, "web");
	add_task(&b, 100, 10, 1, 7, CS__TASK_STATE__TASK_STATE_RUNNING);
	n.id = 7;
	n.hostname = "w1";
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &n),
			 0);
	assert_int_equal(apply_at(s, &b, 1, 5000), 0);
	got = store_task_get(s, 100);
	svc = store_service_get(s, 10);
	assert_int_equal(got->created_ms, 5000);
	assert_int_equal(got->updated_ms, 5000);
	assert_int_equal(svc->created_ms, 5000);
	assert_int_equal(svc->updated_ms, 5000);
	assert_int_equal(store_node_get(s, 7)->created_ms, 5000);
	assert_int_equal(store_node_get(s, 7)->updated_ms, 5000);

	/* an update later, whose writer sends other times */
	t = *got;
	t.created_ms = 1;
	t.updated_ms = 2;
	t.desired_state = CS__TASK_STATE__TASK_STATE_SHUTDOWN;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t),
			 0);
	assert_int_equal(apply_at(s, &b, 2, 9000), 0);
	got = store_task_get(s, 100);
	assert_int_equal(got->created_ms, 5000);
	assert_int_equal(got->updated_ms, 9000);
	assert_int_equal(store_service_get(s, 10)->updated_ms, 5000); /* untouched */

	/* a batch without a time keeps both */
	t = *got;
	t.created_ms = t.updated_ms = 0;
	t.desired_state = CS__TASK_STATE__TASK_STATE_REMOVE;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t),
			 0);
	assert_int_equal(apply(s, &b, 3), 0);
	got = store_task_get(s, 100);
	assert_int_equal(got->created_ms, 5000);
	assert_int_equal(got->updated_ms, 9000);
	assert_int_equal(got->desired_state, CS__TASK_STATE__TASK_STATE_REMOVE);
	store_free(s);
}

static void test_store_batch_is_all_or_nothing(void **state)
{
	struct store *s = sample();
	struct store_batch b;
	Cs__Task del = CS__TASK__INIT;

	store_batch_init(&b);
	add_task(&b, 200, 10, 4, 7, CS__TASK_STATE__TASK_STATE_RUNNING);
	del.id = 100;
	del.version = 1;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	add_task(&b, 101, 10, 1, 8, CS__TASK_STATE__TASK_STATE_RUNNING); /* exists */
	assert_int_equal(apply(s, &b, 2), CS_EEXIST);
	assert_null(store_task_get(s, 200));
	assert_non_null(store_task_get(s, 100));
	assert_int_equal(store_task_count(s), 6);

	/* two actions on one object in one batch: refused */
	store_batch_init(&b);
	add_task(&b, 300, 10, 5, 7, CS__TASK_STATE__TASK_STATE_RUNNING);
	add_task(&b, 300, 10, 6, 7, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(s, &b, 3), CS_EEXIST);
	assert_null(store_task_get(s, 300));

	/* delete of a missing object */
	store_batch_init(&b);
	del.id = 4242;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply(s, &b, 4), CS_ENOENT);

	/* a good delete */
	store_batch_init(&b);
	del.id = 100;
	del.version = 1;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply(s, &b, 5), 0);
	assert_null(store_task_get(s, 100));
	assert_null(store_task_next_in_slot(s, 20, 2, NULL));
	store_free(s);
}

struct seen {
	enum store_change changes[16];
	uint64_t ids[16];
	uint64_t indexes[16];
	size_t count;
};

static void record(void *data, const struct store_event *ev)
{
	struct seen *w = data;
	const ProtobufCMessage *m = ev->new_obj ? ev->new_obj : ev->old_obj;
	assert_true(w->count < 16);
	assert_int_equal(ev->table, STORE_TASK);
	w->changes[w->count] = ev->change;
	w->ids[w->count] = ((const Cs__Task *)m)->id;
	w->indexes[w->count++] = ev->index;
}

static void test_store_watches_see_changes_in_commit_order(void **state)
{
	struct store *s = store_new();
	struct store_batch b;
	struct seen w = {0};
	Cs__Task del = CS__TASK__INIT;
	int h = store_watch(s, record, &w);

	assert_true(h > 0);
	store_batch_init(&b);
	add_task(&b, 9, 1, 1, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	add_task(&b, 3, 1, 2, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(s, &b, 1), 0);
	store_batch_init(&b);
	del.id = 9;
	del.version = 1;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply(s, &b, 2), 0);
	assert_int_equal(w.count, 3);
	assert_int_equal(w.ids[0], 9); /* batch order, not id order */
	assert_int_equal(w.ids[1], 3);
	assert_int_equal(w.changes[2], STORE_DELETED);
	assert_int_equal(w.indexes[2], 2);
	store_unwatch(s, h);
	store_batch_init(&b);
	add_task(&b, 10, 1, 3, 0, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(s, &b, 3), 0);
	assert_int_equal(w.count, 3);
	store_free(s);
}

static void test_store_snapshot_round_trips_byte_for_byte(void **state)
{
	struct store *s = sample(), *r = store_new();
	uint8_t *a, *b;
	size_t alen, blen;

	assert_int_equal(store_snapshot(s, &a, &alen), 0);
	assert_int_equal(store_restore(r, a, alen, 0), 0);
	assert_int_equal(store_applied(r), 1); /* recorded in the snapshot */
	assert_int_equal(store_task_count(r), 6);
	assert_int_equal(store_task_next_by_node(r, 7, NULL)->id, 102);
	assert_int_equal(store_service_by_name(r, "db")->id, 20);
	assert_int_equal(store_snapshot(r, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	store_free(s);
	store_free(r);
}

/* Bytes with a field numbered 0 in an overlong tag (0x80 0x00) decode in
 * libprotobuf-c but would not after the store wrote them again (its own
 * snapshot would be undecodable): a batch or snapshot holding one is
 * refused as corrupt and changes nothing. Found by tests/fuzz/fuzz_store. */
static void test_store_refuses_field_zero(void **state)
{
	struct store *s = store_new();
	struct store_batch b;
	uint8_t *buf, *snap, *bad;
	size_t len, slen;
	static const uint8_t field0[] = {0x80, 0x00, 0x00};

	store_batch_init(&b);
	add_service(&b, 10, "web");
	assert_int_equal(store_batch_encode(&b, 1, 1, &buf, &len), 0);
	store_batch_free(&b);
	bad = malloc(len + sizeof field0);
	assert_non_null(bad);
	memcpy(bad, buf, len);
	memcpy(bad + len, field0, sizeof field0);
	assert_int_equal(store_apply(s, bad, len + sizeof field0, 1, NULL, NULL),
			 CS_ECORRUPT);
	assert_int_equal(store_service_count(s), 0);
	assert_int_equal(store_apply(s, buf, len, 2, NULL, NULL), 0);
	free(bad);
	free(buf);

	assert_int_equal(store_snapshot(s, &snap, &slen), 0);
	bad = malloc(slen + sizeof field0);
	assert_non_null(bad);
	memcpy(bad, snap, slen);
	memcpy(bad + slen, field0, sizeof field0);
	assert_int_equal(store_restore(s, bad, slen + sizeof field0, 0), CS_ECORRUPT);
	assert_int_equal(store_service_count(s), 1);
	assert_int_equal(store_restore(s, snap, slen, 0), 0);
	free(bad);
	free(snap);
	store_free(s);
}

/* si: field 0 inside an action's object (a member of StoreAction's oneof,
 * looked for in the member set only) and deeper (a task's status) is
 * refused as corrupt, ahead of an earlier action's failing check, and the
 * proposer is then not reported. */
static void test_store_refuses_field_zero_in_an_action(void **state)
{
	static const uint8_t field0[] = {0x80, 0x00, 0x00};
	struct store *s = store_new();
	struct store_batch b;
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	uint8_t task[256], bytes[1024], *enc;
	size_t tlen, slen, n, elen;
	uint64_t proposer = 99;

	(void)state;
	st.state = CS__TASK_STATE__TASK_STATE_NEW;
	t.id = 7;
	t.service_id = 10;
	t.status = &st;
	for (int deep = 0; deep < 2; deep++) {
		if (deep) {
			/* the status's bytes end the task's: field 0 after them
			 * lands inside the status */
			assert_int_equal(t.n_networks, 0);
			slen = cs__task_status__get_packed_size(&st);
			tlen = cs__task__pack(&t, task);
			assert_true(tlen > slen + 2 && task[tlen - slen - 1] == slen);
			task[tlen - slen - 1] = (uint8_t)(slen + sizeof field0);
		} else {
			tlen = cs__task__pack(&t, task);
		}
		assert_true(tlen + sizeof field0 < 120);
		memcpy(task + tlen, field0, sizeof field0);
		tlen += sizeof field0;
		/* first an update of a task that is not there (CS_ENOENT alone) */
		store_batch_init(&b);
		t.id = 8;
		assert_int_equal(
			store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t), 0);
		t.id = 7;
		assert_true(b.len + tlen + 8 < sizeof bytes);
		memcpy(bytes, b.buf, b.len);
		n = b.len;
		store_batch_free(&b);
		bytes[n++] = 0x0a; /* actions: StoreAction {task: the bytes} */
		bytes[n++] = (uint8_t)(tlen + 2);
		bytes[n++] = 0x22;
		bytes[n++] = (uint8_t)tlen;
		memcpy(bytes + n, task, tlen);
		n += tlen;
		bytes[n++] = 0x10; /* proposer 5 */
		bytes[n++] = 0x05;
		assert_int_equal(
			store_apply(s, bytes, n, 1 + (uint64_t)deep, &proposer, NULL),
			CS_ECORRUPT);
		assert_int_equal(proposer, 99);
		assert_int_equal(store_task_count(s), 0);
	}
	/* the same task without field 0: created */
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t),
			 0);
	assert_int_equal(store_batch_encode(&b, 5, 1, &enc, &elen), 0);
	store_batch_free(&b);
	assert_int_equal(store_apply(s, enc, elen, 3, &proposer, NULL), 0);
	assert_int_equal(proposer, 5);
	assert_non_null(store_task_get(s, 7));
	free(enc);
	store_free(s);
}

static void test_store_refuses_bad_bytes_and_keeps_state(void **state)
{
	struct store *s = sample();
	const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
	Cs__StoreSnapshot snap = CS__STORE_SNAPSHOT__INIT;
	Cs__Task t1 = CS__TASK__INIT, t2 = CS__TASK__INIT;
	Cs__Task *tasks[2] = {&t1, &t2};
	uint8_t buf[256];
	size_t len;

	assert_int_equal(store_apply(s, junk, sizeof junk, 2, NULL, NULL), CS_ECORRUPT);
	assert_int_equal(store_task_count(s), 6);
	assert_int_equal(store_restore(s, junk, sizeof junk, 3), CS_ECORRUPT);
	assert_int_equal(store_task_count(s), 6);
	/* a snapshot of another format */
	snap.format = 99;
	len = cs__store_snapshot__pack(&snap, buf);
	assert_int_equal(store_restore(s, buf, len, 3), CS_EVERSION);
	/* a snapshot with a duplicate id */
	snap.format = STORE_SNAPSHOT_FORMAT;
	t1.id = t2.id = 5;
	snap.n_tasks = 2;
	snap.tasks = tasks;
	len = cs__store_snapshot__pack(&snap, buf);
	assert_int_equal(store_restore(s, buf, len, 3), CS_ECORRUPT);
	assert_int_equal(store_task_count(s), 6);
	assert_non_null(store_task_get(s, 101));
	store_free(s);
}

static void test_store_cluster_object_lifecycle(void **state)
{
	struct store *s = store_new();
	struct store_batch b;
	Cs__Cluster c = CS__CLUSTER__INIT;

	assert_null(store_cluster(s));
	c.id = 1;
	c.worker_token = "SWMTKN-w";
	store_batch_init(&b);
	assert_int_equal(store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &c),
			 0);
	assert_int_equal(apply(s, &b, 1), 0);
	assert_string_equal(store_cluster(s)->worker_token, "SWMTKN-w");
	store_batch_init(&b);
	assert_int_equal(store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &c),
			 0);
	assert_int_equal(apply(s, &b, 2), CS_EEXIST);
	c.version = 1;
	c.worker_token = "SWMTKN-w2";
	store_batch_init(&b);
	assert_int_equal(store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c),
			 0);
	assert_int_equal(apply(s, &b, 3), 0);
	assert_string_equal(store_cluster(s)->worker_token, "SWMTKN-w2");
	assert_int_equal(store_cluster(s)->version, 3);
	store_free(s);
}

/* The removed nodes' list is ascending (control keeps it so): found by
 * binary search, ends included; none on a NULL cluster, never id 0. */
static void test_store_cluster_removed(void **state)
{
	uint64_t ids[] = {3, 9, 27, 81, UINT64_MAX};
	Cs__Cluster c = CS__CLUSTER__INIT;

	(void)state;
	c.removed_nodes = ids;
	c.n_removed_nodes = 5;
	for (size_t i = 0; i < 5; i++)
		assert_true(store_cluster_removed(&c, ids[i]));
	assert_false(store_cluster_removed(&c, 0));
	assert_false(store_cluster_removed(&c, 1));
	assert_false(store_cluster_removed(&c, 10));
	assert_false(store_cluster_removed(&c, 82));
	assert_false(store_cluster_removed(&c, UINT64_MAX - 1));
	assert_false(store_cluster_removed(NULL, 3));
	c.n_removed_nodes = 0;
	assert_false(store_cluster_removed(&c, 3));
}

/* ---------------------------------------------------------------- placements (issue 18) */

/* Every event's old and new objects, packed. */
struct pi_seen {
	uint8_t *bytes[64];
	size_t lens[64];
	enum store_change changes[32];
	size_t count; /* of events; bytes holds two per event */
};

static void pi_pack(struct pi_seen *w, size_t at, const ProtobufCMessage *m)
{
	w->lens[at] = m ? protobuf_c_message_get_packed_size(m) : 0;
	/* one byte more, zeroed: a missing object compares as that byte */
	w->bytes[at] = calloc(1, w->lens[at] + 1);
	assert_non_null(w->bytes[at]);
	if (m)
		protobuf_c_message_pack(m, w->bytes[at]);
}

static void pi_record(void *data, const struct store_event *ev)
{
	struct pi_seen *w = data;
	assert_true(w->count < 32);
	assert_int_equal(ev->table, STORE_TASK);
	w->changes[w->count] = ev->change;
	pi_pack(w, 2 * w->count, ev->old_obj);
	pi_pack(w, 2 * w->count + 1, ev->new_obj);
	w->count++;
}

static void pi_seen_equal_free(struct pi_seen *a, struct pi_seen *b)
{
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < 2 * a->count; i++) {
		assert_int_equal(a->lens[i], b->lens[i]);
		assert_memory_equal(a->bytes[i], b->bytes[i],
				    a->lens[i] + (a->lens[i] == 0));
	}
	for (size_t i = 0; i < a->count; i++)
		assert_int_equal(a->changes[i], b->changes[i]);
	for (size_t i = 0; i < 2 * a->count; i++) {
		free(a->bytes[i]);
		free(b->bytes[i]);
	}
	a->count = b->count = 0;
}

/* A store of tasks 200..205 of service 10, pending on no node, each with
 * a spec, a status with a message, container id, exit code and an unknown
 * field of its own, and an unknown field in the task (what a full update
 * carries along and a fresh status drops), created at time 1000. */
static struct store *pi_sample(void)
{
	struct store *s = store_new();
	struct store_batch b;
	uint8_t unk[2] = {0x05, 0x07};
	ProtobufCMessageUnknownField tu = {.tag = 4000,
					   .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
					   .len = 1,
					   .data = unk};
	ProtobufCMessageUnknownField su = {.tag = 4001,
					   .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
					   .len = 1,
					   .data = unk + 1};

	assert_non_null(s);
	store_batch_init(&b);
	add_service(&b, 10, "web");
	for (uint64_t id = 200; id < 206; id++) {
		Cs__Task t = CS__TASK__INIT;
		Cs__TaskStatus st = CS__TASK_STATUS__INIT;
		Cs__TaskSpec spec = CS__TASK_SPEC__INIT;
		Cs__ContainerSpec c = CS__CONTAINER_SPEC__INIT;
		c.image = "cswarm-test:busybox";
		spec.container = &c;
		t.id = id;
		t.service_id = 10;
		t.slot = id - 199;
		t.node_id = id == 205 ? 7 : 0; /* one already on node 7 */
		t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
		t.spec = &spec;
		t.spec_version = 3;
		t.service_name = "web";
		t.alloc_done = true;
		st.state = CS__TASK_STATE__TASK_STATE_PENDING;
		st.timestamp_ms = 900;
		st.message = "no suitable node (1 node not available for new tasks)";
		st.container_id = id == 201 ? "abc" : "";
		st.exit_code = id == 201 ? 2 : 0;
		st.base.n_unknown_fields = 1;
		st.base.unknown_fields = &su;
		t.status = &st;
		t.base.n_unknown_fields = 1;
		t.base.unknown_fields = &tu;
		assert_int_equal(
			store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t), 0);
	}
	assert_int_equal(apply_at(s, &b, 1, 1000), 0);
	return s;
}

/* Restores into `to` a snapshot of `from` (what a follower installs). */
static void restore_from(struct store *to, const struct store *from)
{
	uint8_t *snap;
	size_t len;

	assert_int_equal(store_snapshot(from, &snap, &len), 0);
	assert_int_equal(store_restore(to, snap, len, 0), 0);
	free(snap);
}

/* Adds the full UPDATE the scheduler wrote before issue 18 (sched_write's
 * placement: a copy of the stored task, node, a fresh status) for task id
 * of s at version (0: the stored one). */
static void pi_full(const struct store *s, struct store_batch *b, uint64_t id,
		    uint64_t node, uint64_t version, uint64_t ts, const char *msg)
{
	const Cs__Task *t = store_task_get(s, id);
	Cs__Task copy;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	Cs__Task missing = CS__TASK__INIT;

	if (!t) { /* a deleted task: the update names it all the same */
		missing.id = id;
		t = &missing;
	}
	copy = *t;
	st.state = CS__TASK_STATE__TASK_STATE_ASSIGNED;
	st.timestamp_ms = ts;
	st.message = (char *)msg;
	copy.node_id = node;
	copy.status = &st;
	copy.version = version ? version : t->version;
	copy.created_ms = copy.updated_ms = 0;
	assert_int_equal(store_batch_task(b, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy),
			 0);
}

static void pi_compact(const struct store *s, struct store_batch *b, uint64_t id,
		       uint64_t node, uint64_t version, uint64_t ts, const char *msg)
{
	const Cs__Task *t = store_task_get(s, id);
	assert_int_equal(store_batch_placement(b, id,
					       version ? version
					       : t     ? t->version
						       : 0,
					       node, CS__TASK_STATE__TASK_STATE_ASSIGNED,
					       ts, msg),
			 0);
}

/* Both stores' snapshots are byte for byte equal (every task encoded in id
 * order, the applied index), and every task packs alike. */
static void pi_same(const struct store *a, const struct store *b)
{
	uint8_t *x, *y;
	size_t xl, yl;

	assert_int_equal(store_snapshot(a, &x, &xl), 0);
	assert_int_equal(store_snapshot(b, &y, &yl), 0);
	assert_int_equal(xl, yl);
	assert_memory_equal(x, y, xl);
	free(x);
	free(y);
	for (const Cs__Task *t = store_task_next(a, NULL); t; t = store_task_next(a, t)) {
		const Cs__Task *u = store_task_get(b, t->id);
		assert_non_null(u);
		assert_int_equal(protobuf_c_message_get_packed_size(&t->base),
				 protobuf_c_message_get_packed_size(&u->base));
		assert_int_equal(count_by_node(a, t->node_id),
				 count_by_node(b, t->node_id));
	}
	for (uint64_t n = 0; n < 12; n++) {
		const Cs__Task *p = NULL, *q = NULL;
		do { /* the node index, task by task */
			p = store_task_next_by_node(a, n, p);
			q = store_task_next_by_node(b, n, q);
			assert_true((p == NULL) == (q == NULL));
			if (p)
				assert_int_equal(p->id, q->id);
		} while (p);
	}
}

/* Applies the full path's batch bf to f and the compact path's bc to c,
 * both at *index (then moved to the next) and time_ms; both must answer
 * want, and leave the two stores the same (pi_same). */
static void pi_apply_both(struct store *f, struct store_batch *bf, struct store *c,
			  struct store_batch *bc, uint64_t *index, uint64_t time_ms,
			  int want)
{
	assert_int_equal(apply_at(f, bf, *index, time_ms), want);
	assert_int_equal(apply_at(c, bc, *index, time_ms), want);
	(*index)++;
	pi_same(f, c);
}

/* The compact placement (issue 18) leaves the store the full update leaves:
 * placed tasks (moved in the node index, or on their node already), stamped
 * alike, their status fresh; every refusal the same verdict with nothing
 * changed (a task deleted meanwhile, a stale version, a task twice in a
 * batch, alone or beside a full update); watches see the same old and new
 * objects, byte for byte. */
static void test_store_placement_equals_full_update(void **state)
{
	struct store *f = pi_sample(), *c = pi_sample();
	struct store_batch bf, bc;
	struct pi_seen wf = {0}, wc = {0};
	Cs__Task del = CS__TASK__INIT;
	uint64_t index = 2;
	const Cs__Task *before;
	int rv;

	(void)state;
	assert_true(store_watch(f, pi_record, &wf) > 0);
	assert_true(store_watch(c, pi_record, &wc) > 0);
	before = store_task_get(c, 200);

	/* success: four placed in one batch (one onto its own node 7) */
	store_batch_init(&bf);
	store_batch_init(&bc);
	pi_full(f, &bf, 200, 9, 0, 1500, "assigned");
	pi_full(f, &bf, 201, 9, 0, 1500, "assigned");
	pi_full(f, &bf, 202, 11, 0, 1500, "");
	pi_full(f, &bf, 205, 7, 0, 1500, "assigned");
	pi_compact(c, &bc, 200, 9, 0, 1500, "assigned");
	pi_compact(c, &bc, 201, 9, 0, 1500, "assigned");
	pi_compact(c, &bc, 202, 11, 0, 1500, "");
	pi_compact(c, &bc, 205, 7, 0, 1500, "assigned");
	assert_true(store_batch_bytes(&bc) * 2 < store_batch_bytes(&bf));
	pi_apply_both(f, &bf, c, &bc, &index, 2000, 0);
	pi_seen_equal_free(&wf, &wc);
	/* in place: the stored object is the one it was */
	assert_ptr_equal(store_task_get(c, 200), before);
	assert_int_equal(before->node_id, 9);
	assert_int_equal(before->version, 2);
	assert_int_equal(before->created_ms, 1000);
	assert_int_equal(before->updated_ms, 2000);
	assert_int_equal(before->status->state, CS__TASK_STATE__TASK_STATE_ASSIGNED);
	assert_int_equal(store_task_get(c, 201)->status->exit_code, 0);
	assert_string_equal(store_task_get(c, 201)->status->container_id, "");
	assert_int_equal(before->status->base.n_unknown_fields, 0);
	assert_int_equal(before->base.n_unknown_fields, 1);
	assert_int_equal(count_by_node(c, 0), 2);
	assert_int_equal(count_by_node(c, 9), 2);

	/* a batch without a time keeps the updated time */
	store_batch_init(&bf);
	store_batch_init(&bc);
	pi_full(f, &bf, 203, 9, 0, 0, "assigned");
	pi_compact(c, &bc, 203, 9, 0, 0, "assigned");
	pi_apply_both(f, &bf, c, &bc, &index, 0, 0);
	pi_seen_equal_free(&wf, &wc);
	assert_int_equal(store_task_get(c, 203)->updated_ms, 1000);

	/* refused: a stale version (the task was placed since); a good one
	 * beside it does not apply either */
	store_batch_init(&bf);
	store_batch_init(&bc);
	pi_full(f, &bf, 204, 9, 0, 2500, "assigned");
	pi_full(f, &bf, 200, 11, 1, 2500, "assigned");
	pi_compact(c, &bc, 204, 9, 0, 2500, "assigned");
	pi_compact(c, &bc, 200, 11, 1, 2500, "assigned");
	pi_apply_both(f, &bf, c, &bc, &index, 3000, CS_EVERSION);
	assert_int_equal(wc.count, 0);

	/* refused: the task deleted meanwhile */
	del.id = 204;
	del.version = 1;
	store_batch_init(&bf);
	assert_int_equal(store_batch_task(&bf, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply_at(f, &bf, index, 3000), 0);
	store_batch_init(&bc);
	assert_int_equal(store_batch_task(&bc, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply_at(c, &bc, index, 3000), 0);
	index++;
	pi_seen_equal_free(&wf, &wc);
	store_batch_init(&bf);
	store_batch_init(&bc);
	pi_full(f, &bf, 204, 9, 1, 3500, "assigned");
	pi_compact(c, &bc, 204, 9, 1, 3500, "assigned");
	pi_apply_both(f, &bf, c, &bc, &index, 4000, CS_ENOENT);
	assert_int_equal(wc.count, 0);

	/* refused: one task twice in a batch (two placements; a placement
	 * and a full update) */
	store_batch_init(&bf);
	store_batch_init(&bc);
	pi_full(f, &bf, 200, 11, 0, 4500, "assigned");
	pi_full(f, &bf, 200, 11, 0, 4500, "assigned");
	pi_compact(c, &bc, 200, 11, 0, 4500, "assigned");
	pi_compact(c, &bc, 200, 11, 0, 4500, "assigned");
	assert_int_equal(apply_at(f, &bf, index, 5000), CS_EEXIST);
	assert_int_equal(apply_at(c, &bc, index, 5000), CS_EEXIST);
	index++;
	store_batch_init(&bc);
	pi_compact(c, &bc, 200, 11, 0, 4500, "assigned");
	pi_full(c, &bc, 200, 11, 0, 4500, "assigned");
	assert_int_equal(apply_at(c, &bc, index, 5000), CS_EEXIST);
	store_batch_init(&bf); /* the index moves on both alike */
	assert_int_equal(apply_at(f, &bf, index, 5000), 0);
	index++;
	pi_same(f, c);
	assert_int_equal(wc.count, 0);

	/* snapshot and restore after placements: the same store, and both
	 * go on alike */
	{
		struct store *r = store_new();
		restore_from(r, c);
		pi_same(c, r);
		store_batch_init(&bc);
		pi_compact(c, &bc, 200, 3, 0, 6000, "assigned");
		assert_int_equal(apply_at(c, &bc, index, 6000), 0);
		store_batch_init(&bc);
		pi_compact(r, &bc, 200, 3, 0, 6000, "assigned");
		assert_int_equal(apply_at(r, &bc, index, 6000), 0);
		store_batch_init(&bf);
		pi_full(f, &bf, 200, 3, 0, 6000, "assigned");
		assert_int_equal(apply_at(f, &bf, index, 6000), 0);
		pi_same(c, r);
		pi_same(f, c);
		pi_seen_equal_free(&wf, &wc);
		store_free(r);
	}
	store_free(f);
	store_free(c);
	(void)rv;
}

/* Issue 18: nodes are found by id through a hash beside their tree: every
 * node created is found, a deleted one is not, after updates and a
 * snapshot's restore too, and the id order of a walk is the tree's. */
/* Applies a batch of one placement of task id, read at version, onto node
 * at index; returns store_apply's verdict. */
static int pv_place(struct store *s, uint64_t id, uint64_t version, uint64_t node,
		    uint64_t index)
{
	struct store_batch b;
	store_batch_init(&b);
	assert_int_equal(store_batch_placement(&b, id, version, node,
					       CS__TASK_STATE__TASK_STATE_ASSIGNED, 1000,
					       "assigned"),
			 0);
	return apply(s, &b, index);
}

/* Issue 18: a placement's check compares the version its writer read with
 * the store entry's copy of the task's version (one line read, no line of
 * the task): after each write that versions a task (create, placement,
 * whole update, status report, restore from a snapshot) a placement read
 * at the version before is refused with its batch (CS_EVERSION, nothing
 * changed) and one read at the task's version now applies. */
static void test_store_placement_checks_the_version_each_write_left(void **state)
{
	struct store *s = sample(), *r;
	struct store_batch b;
	Cs__Task copy;
	uint8_t *buf;
	size_t len;

	(void)state;
	/* created at 1 */
	assert_int_equal(pv_place(s, 104, 2, 9, 2), CS_EVERSION);
	assert_int_equal(store_task_get(s, 104)->node_id, 0);
	assert_int_equal(pv_place(s, 104, 1, 9, 3), 0);
	/* placed at 3 */
	assert_int_equal(store_task_get(s, 104)->version, 3);
	assert_int_equal(pv_place(s, 104, 1, 7, 4), CS_EVERSION);
	assert_int_equal(store_task_get(s, 104)->node_id, 9);
	/* a whole update at 5 */
	copy = *store_task_get(s, 101);
	copy.desired_state = CS__TASK_STATE__TASK_STATE_SHUTDOWN;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy),
			 0);
	assert_int_equal(apply(s, &b, 5), 0);
	assert_int_equal(pv_place(s, 101, 1, 9, 6), CS_EVERSION);
	assert_int_equal(store_task_get(s, 101)->node_id, 8);
	assert_int_equal(pv_place(s, 101, 5, 9, 7), 0);
	assert_int_equal(store_task_get(s, 101)->node_id, 9);
	/* a status report at 8, from the node the task is on */
	store_batch_init(&b);
	assert_int_equal(store_batch_status_report(&b, 104, 9,
						   CS__TASK_STATE__TASK_STATE_RUNNING, 0,
						   1500, NULL),
			 0);
	assert_int_equal(apply(s, &b, 8), 0);
	assert_int_equal(store_task_get(s, 104)->version, 8);
	assert_int_equal(pv_place(s, 104, 3, 7, 9), CS_EVERSION);
	assert_int_equal(store_task_get(s, 104)->node_id, 9);
	/* restored from a snapshot: versions as the snapshot's tasks hold */
	assert_int_equal(store_snapshot(s, &buf, &len), 0);
	r = store_new();
	assert_non_null(r);
	assert_int_equal(store_restore(r, buf, len, 0), 0);
	free(buf);
	assert_int_equal(pv_place(r, 104, 3, 7, 10), CS_EVERSION);
	assert_int_equal(pv_place(r, 105, 2, 7, 11), CS_EVERSION);
	assert_int_equal(pv_place(r, 104, 8, 7, 12), 0);
	assert_int_equal(pv_place(r, 105, 1, 9, 13), 0);
	assert_int_equal(store_task_get(r, 104)->node_id, 7);
	assert_int_equal(store_task_get(r, 105)->node_id, 9);
	assert_int_equal(pv_place(r, 104, 8, 9, 14), CS_EVERSION);
	store_free(r);
	store_free(s);
}

static void test_store_nodes_found_by_id_after_creates_deletes_and_restore(void **state)
{
	struct store *s = store_new(), *r = store_new();
	struct store_batch b;
	uint64_t index = 1, id;
	uint8_t *snap;
	size_t len, n;

	(void)state;
	for (int round = 0; round < 3; round++) {
		store_batch_init(&b);
		for (uint64_t i = 0; i < 200; i++) {
			Cs__Node node = CS__NODE__INIT;
			node.id = hash_mix64(round * 1000 + i) | 1;
			node.hostname = "w";
			assert_int_equal(
				store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE,
						 &node),
				0);
		}
		assert_int_equal(apply_at(s, &b, index++, 0), 0);
	}
	store_batch_init(&b); /* every third of the first round goes */
	for (uint64_t i = 0; i < 200; i += 3) {
		Cs__Node node = *store_node_get(s, hash_mix64(i) | 1);
		assert_int_equal(
			store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &node),
			0);
	}
	assert_int_equal(apply_at(s, &b, index++, 0), 0);
	assert_int_equal(store_snapshot(s, &snap, &len), 0);
	assert_int_equal(store_restore(r, snap, len, index), 0);
	free(snap);
	for (int round = 0; round < 3; round++)
		for (uint64_t i = 0; i < 200; i++) {
			bool gone = round == 0 && i % 3 == 0;
			id = hash_mix64(round * 1000 + i) | 1;
			for (int k = 0; k < 2; k++) {
				const Cs__Node *got = store_node_get(k ? r : s, id);
				if (gone) {
					assert_null(got);
				} else {
					assert_non_null(got);
					assert_int_equal(got->id, id);
				}
			}
		}
	assert_null(store_node_get(s, 12345));
	n = 0;
	id = 0;
	for (const Cs__Node *node = store_node_next(r, NULL); node;
	     node = store_node_next(r, node), n++) {
		assert_true(n == 0 || node->id > id);
		id = node->id;
	}
	assert_int_equal(n, 600 - 67);
	assert_int_equal(store_node_count(r), n);
	store_free(s);
	store_free(r);
}

/* The dispatcher's full UPDATE of a task's status before issue 18: a copy
 * of the task as s holds it, its status with the report's state, exit
 * code, timestamp and message, started_ms the first time it runs. */
static void sr_full(const struct store *s, struct store_batch *b, uint64_t id,
		    Cs__TaskState state, int32_t exit_code, uint64_t ts, const char *msg)
{
	const Cs__Task *t = store_task_get(s, id);
	Cs__Task copy = *t;
	Cs__TaskStatus st = *t->status;

	if (!copy.started_ms && state >= CS__TASK_STATE__TASK_STATE_RUNNING)
		copy.started_ms = ts ? ts : 1;
	st.state = state;
	st.exit_code = exit_code;
	st.timestamp_ms = ts;
	st.message = (char *)msg;
	copy.status = &st;
	copy.created_ms = copy.updated_ms = 0;
	assert_int_equal(store_batch_task(b, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy),
			 0);
}

/* Issue 18: a batch of many status reports (prefetched ahead through the
 * task hash, whose slots keep their keys) applies each as if alone: every
 * task present takes its report, ids not there (lookups that miss, some
 * hashed next to present ones) change nothing, and removed tasks' slots
 * (runs shifted back) do not hide the tasks after them. */
static void test_store_many_status_reports_apply_each(void **state)
{
	enum { N = 600 };
	struct store *s = store_new();
	struct store_batch b;
	uint64_t index = 1;

	(void)state;
	assert_non_null(s);
	store_batch_init(&b);
	add_service(&b, 10, "web");
	for (uint64_t i = 0; i < N; i++)
		add_task(&b, hash_mix64(i) | 1, 10, i + 1, 9,
			 CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(apply(s, &b, index++), 0);
	/* every third removed */
	store_batch_init(&b);
	for (uint64_t i = 0; i < N; i += 3) {
		Cs__Task t = *store_task_get(s, hash_mix64(i) | 1);
		assert_int_equal(
			store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &t), 0);
	}
	assert_int_equal(apply(s, &b, index++), 0);
	assert_int_equal(store_task_count(s), N - (N + 2) / 3);

	/* reports for all N and N more ids never created */
	store_batch_init(&b);
	for (uint64_t i = 0; i < 2 * N; i++)
		assert_int_equal(store_batch_status_report(
					 &b, hash_mix64(i) | 1, 9,
					 CS__TASK_STATE__TASK_STATE_RUNNING, (int32_t)i,
					 1000 + i, i % 2 ? "odd" : "even"),
				 0);
	assert_int_equal(apply(s, &b, index), 0);
	assert_int_equal(store_task_count(s), N - (N + 2) / 3);
	for (uint64_t i = 0; i < 2 * N; i++) {
		const Cs__Task *t = store_task_get(s, hash_mix64(i) | 1);
		if (i >= N || i % 3 == 0) {
			assert_null(t);
			continue;
		}
		assert_non_null(t);
		assert_int_equal(t->id, hash_mix64(i) | 1);
		assert_int_equal(t->status->state, CS__TASK_STATE__TASK_STATE_RUNNING);
		assert_int_equal(t->status->exit_code, (int32_t)i);
		assert_int_equal(t->status->timestamp_ms, 1000 + i);
		assert_string_equal(t->status->message, i % 2 ? "odd" : "even");
		assert_int_equal(t->started_ms, 1000 + i);
		assert_int_equal(t->version, index);
	}
	store_free(s);
}

/* Issue 18: an agent's status report as a compact action leaves the store,
 * its snapshot and its events as the full update of the task did; a stale
 * one (another node's task, no news, a task gone) changes nothing and
 * refuses nothing; and two reports of one task in two writes made before
 * either applied both apply, where the second full update was refused
 * with its whole batch (CS_EVERSION: the status path's reports lost in
 * bulk whenever writes were in flight). */
static void test_store_status_report_equals_full_update(void **state)
{
	struct store *f = pi_sample(), *c = pi_sample();
	struct store_batch bf, bc, bf2, bc2;
	struct pi_seen wf = {0}, wc = {0};
	const Cs__Task *before;
	uint64_t index = 2;
	int hf, hc;

	(void)state;
	store_batch_init(&bf);
	pi_compact(f, &bf, 200, 9, 0, 1500, "assigned");
	pi_compact(f, &bf, 201, 9, 0, 1500, "assigned");
	pi_compact(f, &bf, 202, 9, 0, 1500, "assigned");
	store_batch_init(&bc);
	pi_compact(c, &bc, 200, 9, 0, 1500, "assigned");
	pi_compact(c, &bc, 201, 9, 0, 1500, "assigned");
	pi_compact(c, &bc, 202, 9, 0, 1500, "assigned");
	assert_int_equal(apply_at(f, &bf, index, 2000), 0);
	assert_int_equal(apply_at(c, &bc, index, 2000), 0);
	index++;
	hf = store_watch(f, pi_record, &wf);
	hc = store_watch(c, pi_record, &wc);
	assert_true(hf > 0 && hc > 0);
	before = store_task_get(c, 205);

	/* forward: running (started), preparing, and one on node 7 whose
	 * status keeps its unknown field */
	store_batch_init(&bf);
	store_batch_init(&bc);
	sr_full(f, &bf, 200, CS__TASK_STATE__TASK_STATE_RUNNING, 0, 2100, "started");
	sr_full(f, &bf, 201, CS__TASK_STATE__TASK_STATE_PREPARING, 0, 2100, "");
	sr_full(f, &bf, 205, CS__TASK_STATE__TASK_STATE_FAILED, 3, 0, "exit 3");
	assert_int_equal(store_batch_status_report(&bc, 200, 9,
						   CS__TASK_STATE__TASK_STATE_RUNNING, 0,
						   2100, "started"),
			 0);
	assert_int_equal(store_batch_status_report(&bc, 201, 9,
						   CS__TASK_STATE__TASK_STATE_PREPARING,
						   0, 2100, NULL),
			 0);
	assert_int_equal(store_batch_status_report(&bc, 205, 7,
						   CS__TASK_STATE__TASK_STATE_FAILED, 3,
						   0, "exit 3"),
			 0);
	assert_true(store_batch_bytes(&bc) * 2 < store_batch_bytes(&bf));
	pi_apply_both(f, &bf, c, &bc, &index, 3000, 0);
	pi_seen_equal_free(&wf, &wc);
	assert_ptr_equal(store_task_get(c, 205), before); /* in place */
	assert_int_equal(before->started_ms, 1);
	assert_int_equal(before->status->exit_code, 3);
	assert_int_equal(before->status->base.n_unknown_fields, 1);
	assert_int_equal(store_task_get(c, 200)->started_ms, 2100);
	assert_int_equal(store_task_get(c, 200)->version, 3);
	assert_int_equal(store_task_get(c, 200)->updated_ms, 3000);

	/* stale beside fresh: another node's, no news, a task that is not;
	 * only the fresh one changes anything */
	store_batch_init(&bf);
	store_batch_init(&bc);
	sr_full(f, &bf, 201, CS__TASK_STATE__TASK_STATE_RUNNING, 0, 3100, "started");
	assert_int_equal(store_batch_status_report(&bc, 201, 9,
						   CS__TASK_STATE__TASK_STATE_RUNNING, 0,
						   3100, "started"),
			 0);
	assert_int_equal(store_batch_status_report(&bc, 202, 8,
						   CS__TASK_STATE__TASK_STATE_RUNNING, 0,
						   3100, "started"),
			 0);
	assert_int_equal(store_batch_status_report(&bc, 200, 9,
						   CS__TASK_STATE__TASK_STATE_STARTING, 0,
						   3100, "late"),
			 0);
	assert_int_equal(store_batch_status_report(&bc, 999, 9,
						   CS__TASK_STATE__TASK_STATE_RUNNING, 0,
						   3100, "gone"),
			 0);
	pi_apply_both(f, &bf, c, &bc, &index, 4000, 0);
	pi_seen_equal_free(&wf, &wc);

	/* two writes made from one read, applied in turn: the full update's
	 * second is refused, the report's applies */
	store_batch_init(&bf);
	store_batch_init(&bf2);
	sr_full(f, &bf, 202, CS__TASK_STATE__TASK_STATE_PREPARING, 0, 4100, "");
	sr_full(f, &bf2, 202, CS__TASK_STATE__TASK_STATE_STARTING, 0, 4200, "");
	assert_int_equal(apply_at(f, &bf, index, 5000), 0);
	assert_int_equal(apply_at(f, &bf2, index + 1, 5000), CS_EVERSION);
	store_batch_init(&bc);
	store_batch_init(&bc2);
	assert_int_equal(store_batch_status_report(&bc, 202, 9,
						   CS__TASK_STATE__TASK_STATE_PREPARING,
						   0, 4100, ""),
			 0);
	assert_int_equal(store_batch_status_report(&bc2, 202, 9,
						   CS__TASK_STATE__TASK_STATE_STARTING, 0,
						   4200, ""),
			 0);
	assert_int_equal(apply_at(c, &bc, index, 5000), 0);
	assert_int_equal(apply_at(c, &bc2, index + 1, 5000), 0);
	assert_int_equal(store_task_get(c, 202)->status->state,
			 CS__TASK_STATE__TASK_STATE_STARTING);
	assert_int_equal(store_task_get(c, 202)->version, index + 1);
	assert_int_equal(wf.count, 1);
	assert_int_equal(wc.count, 2);
	for (size_t k = 0; k < 2 * wc.count; k++)
		free(wc.bytes[k]);
	free(wf.bytes[0]);
	free(wf.bytes[1]);

	store_unwatch(f, hf);
	store_unwatch(c, hc);

	/* a report is an UPDATE only */
	{
		Cs__StoreAction a = CS__STORE_ACTION__INIT;
		Cs__TaskStatusReport r = CS__TASK_STATUS_REPORT__INIT;
		Cs__StoreBatch sb = CS__STORE_BATCH__INIT;
		Cs__StoreAction *ap = &a;
		uint8_t buf[64];
		size_t len;
		r.task_id = 200;
		r.node_id = 9;
		r.state = CS__TASK_STATE__TASK_STATE_COMPLETE;
		a.kind = CS__STORE_ACTION__KIND__KIND_CREATE;
		a.object_case = CS__STORE_ACTION__OBJECT_STATUS_REPORT;
		a.status_report = &r;
		sb.n_actions = 1;
		sb.actions = &ap;
		len = cs__store_batch__pack(&sb, buf);
		assert_int_equal(store_apply(c, buf, len, index + 2, NULL, NULL),
				 CS_ECORRUPT);
	}
	store_free(f);
	store_free(c);
}

/* Placements share their status message (one copy kept by the store, not
 * one a task: schedloop, issue 18); a task holding it is updated in full,
 * placed again, deleted, snapshotted and freed with the store, and each
 * frees what it owns once (ASan); past STORE_MSGS_MAX texts each task has
 * its own copy. */
static void test_store_placements_share_their_message(void **state)
{
	struct store *c = pi_sample(), *r = store_new();
	struct store_batch b;
	Cs__Task del = CS__TASK__INIT;
	static const char *const texts[] = {"m1", "m2", "m3", "m4", "m5",
					    "m6", "m7", "m8", "m9", "m10"};
	uint64_t index = 2;

	(void)state;
	store_batch_init(&b);
	pi_compact(c, &b, 200, 9, 0, 1500, "assigned");
	pi_compact(c, &b, 201, 9, 0, 1500, "assigned");
	pi_compact(c, &b, 202, 9, 0, 1500, "assigned");
	assert_int_equal(apply_at(c, &b, index++, 2000), 0);
	assert_string_equal(store_task_get(c, 200)->status->message, "assigned");
	assert_ptr_equal(store_task_get(c, 200)->status->message,
			 store_task_get(c, 201)->status->message);
	assert_ptr_equal(store_task_get(c, 200)->status->message,
			 store_task_get(c, 202)->status->message);

	/* a full update of one, a delete of another, one placed again */
	store_batch_init(&b);
	pi_full(c, &b, 200, 11, 0, 2500, "by hand");
	pi_compact(c, &b, 202, 7, 0, 2500, "assigned");
	assert_int_equal(apply_at(c, &b, index++, 3000), 0);
	del.id = 201;
	del.version = store_task_get(c, 201)->version;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply_at(c, &b, index++, 3000), 0);
	assert_string_equal(store_task_get(c, 200)->status->message, "by hand");
	assert_string_equal(store_task_get(c, 202)->status->message, "assigned");

	/* more texts than the store shares: copies of their own */
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		store_batch_init(&b);
		pi_compact(c, &b, 203, 9 + i, 0, 4000 + i, texts[i]);
		pi_compact(c, &b, 204, 9 + i, 0, 4000 + i, texts[i]);
		assert_int_equal(apply_at(c, &b, index++, 4000 + i), 0);
		assert_string_equal(store_task_get(c, 203)->status->message, texts[i]);
		assert_string_equal(store_task_get(c, 204)->status->message, texts[i]);
	}
	assert_ptr_not_equal(store_task_get(c, 203)->status->message,
			     store_task_get(c, 204)->status->message);

	/* a snapshot holds the texts; the restored store goes on alike */
	restore_from(r, c);
	pi_same(c, r);
	store_batch_init(&b);
	pi_compact(c, &b, 202, 9, 0, 5000, "assigned");
	assert_int_equal(apply_at(c, &b, index, 5000), 0);
	store_batch_init(&b);
	pi_compact(r, &b, 202, 9, 0, 5000, "assigned");
	assert_int_equal(apply_at(r, &b, index, 5000), 0);
	pi_same(c, r);
	/* a restore over a store that shares texts: its tasks go, its texts
	 * stay shared with what it places next */
	restore_from(c, r);
	pi_same(c, r);
	store_free(c);
	store_free(r);
}

/* Status reports share their message as placements do (issue 18: a copy
 * per report per task was a malloc and a free on each manager): two tasks
 * reported "started" point at one text; the placement's text and the
 * reports' are all shared; a task holding one is reported again, updated in
 * full, deleted, snapshotted and freed with the store, each freeing what it
 * owns once (ASan), and the store equals one that took full updates. */
static void test_store_status_reports_share_their_message(void **state)
{
	struct store *c = pi_sample(), *f = pi_sample(), *r = store_new();
	struct store_batch b, bf;
	Cs__Task del = CS__TASK__INIT;
	uint64_t index = 2;
	uint8_t *snap;
	size_t len;

	(void)state;
	store_batch_init(&b);
	store_batch_init(&bf);
	for (uint64_t id = 200; id < 204; id++) {
		pi_compact(c, &b, id, 9, 0, 1500, "assigned");
		pi_compact(f, &bf, id, 9, 0, 1500, "assigned");
	}
	assert_int_equal(apply_at(c, &b, index, 2000), 0);
	assert_int_equal(apply_at(f, &bf, index++, 2000), 0);
	store_batch_init(&b);
	store_batch_init(&bf);
	for (uint64_t id = 200; id < 204; id++) {
		const char *msg = id < 202 ? "started" : "preparing";
		Cs__TaskState st = id < 202 ? CS__TASK_STATE__TASK_STATE_RUNNING
					    : CS__TASK_STATE__TASK_STATE_PREPARING;
		assert_int_equal(store_batch_status_report(&b, id, 9, st, 0, 2100, msg),
				 0);
		sr_full(f, &bf, id, st, 0, 2100, msg);
	}
	assert_int_equal(apply_at(c, &b, index, 3000), 0);
	assert_int_equal(apply_at(f, &bf, index++, 3000), 0);
	pi_same(c, f);
	assert_string_equal(store_task_get(c, 200)->status->message, "started");
	assert_ptr_equal(store_task_get(c, 200)->status->message,
			 store_task_get(c, 201)->status->message);
	assert_ptr_equal(store_task_get(c, 202)->status->message,
			 store_task_get(c, 203)->status->message);

	/* reported again, one in full, one deleted */
	store_batch_init(&b);
	store_batch_init(&bf);
	assert_int_equal(store_batch_status_report(&b, 202, 9,
						   CS__TASK_STATE__TASK_STATE_RUNNING, 0,
						   2200, "started"),
			 0);
	sr_full(f, &bf, 202, CS__TASK_STATE__TASK_STATE_RUNNING, 0, 2200, "started");
	pi_full(c, &b, 201, 11, 0, 2200, "by hand");
	pi_full(f, &bf, 201, 11, 0, 2200, "by hand");
	assert_int_equal(apply_at(c, &b, index, 4000), 0);
	assert_int_equal(apply_at(f, &bf, index++, 4000), 0);
	assert_ptr_equal(store_task_get(c, 200)->status->message,
			 store_task_get(c, 202)->status->message);
	del.id = 203;
	store_batch_init(&b);
	del.version = store_task_get(c, 203)->version;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply_at(c, &b, index, 4000), 0);
	store_batch_init(&bf);
	assert_int_equal(store_batch_task(&bf, CS__STORE_ACTION__KIND__KIND_DELETE, &del),
			 0);
	assert_int_equal(apply_at(f, &bf, index++, 4000), 0);
	pi_same(c, f);

	/* a snapshot holds the texts; the restored store is the same */
	assert_int_equal(store_snapshot(c, &snap, &len), 0);
	assert_int_equal(store_restore(r, snap, len, 0), 0);
	free(snap);
	pi_same(c, r);
	store_free(c);
	store_free(f);
	store_free(r);
}

/* store_batch_placement writes its action by hand: the bytes must be what
 * protobuf-c packs for the same action, whatever the values (zeros left
 * out, widest varints, a negative enum, no message, an empty one, one
 * longer than a one-byte length). */
static void test_store_batch_placement_packs_as_protobuf_c(void **state)
{
	static const uint64_t vals[] = {
		0,	   1, 127, 128, 16383, 16384, 1ull << 35, 0x9e3779b97f4a7c15ull,
		UINT64_MAX};
	static const int states[] = {0, 1, 4, 127, 128, -1};
	char longmsg[301];
	const char *msgs[] = {NULL, "", "x", "scheduler assigned task to node", longmsg};
	size_t nv = sizeof vals / sizeof *vals, cases = 0;

	(void)state;
	memset(longmsg, 'm', sizeof longmsg - 1);
	longmsg[sizeof longmsg - 1] = 0;
	for (size_t i = 0; i < 4 * nv * nv; i++) {
		Cs__StoreAction a = CS__STORE_ACTION__INIT;
		Cs__TaskPlacement pl = CS__TASK_PLACEMENT__INIT;
		struct store_batch b;
		uint8_t want[1024];
		size_t n = 0, size;
		const char *msg = msgs[i % 5];

		pl.task_id = vals[i % nv];
		pl.version = vals[(i / nv) % nv];
		pl.node_id = vals[(i * 7 + 3) % nv];
		pl.state = (Cs__TaskState)states[i % 6];
		pl.timestamp_ms = vals[(i / (nv * nv) + i) % nv];
		pl.message = (char *)(msg ? msg : "");
		a.kind = CS__STORE_ACTION__KIND__KIND_UPDATE;
		a.object_case = CS__STORE_ACTION__OBJECT_PLACEMENT;
		a.placement = &pl;
		size = cs__store_action__get_packed_size(&a);
		assert_true(size < sizeof want - 16);
		want[n++] = (1 << 3) | 2; /* StoreBatch.actions */
		for (size_t v = size;; v >>= 7) {
			want[n++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
			if (v < 0x80)
				break;
		}
		n += cs__store_action__pack(&a, want + n);
		store_batch_init(&b);
		assert_int_equal(store_batch_placement(&b, pl.task_id, pl.version,
						       pl.node_id, pl.state,
						       pl.timestamp_ms, msg),
				 0);
		/* and a second one after it, at an offset */
		assert_int_equal(store_batch_placement(&b, pl.task_id, pl.version,
						       pl.node_id, pl.state,
						       pl.timestamp_ms, msg),
				 0);
		assert_int_equal(b.action_count, 2);
		assert_int_equal(b.len, 2 * n);
		assert_memory_equal(b.buf, want, n);
		assert_memory_equal(b.buf + n, want, n);
		store_batch_free(&b);
		cases++;
	}
	assert_true(cases > 300);
}

/* A placement is an UPDATE only (a create or delete of one is corrupt);
 * an action whose object this version does not know (a newer manager's,
 * kept as an unknown field) is CS_ENOTSUP, which its manager stops on
 * rather than diverge; either way nothing changes. */
static void test_store_placement_refuses_other_kinds_and_unknown_objects(void **state)
{
	struct store *s = pi_sample();
	Cs__StoreAction a = CS__STORE_ACTION__INIT, *ap = &a;
	Cs__TaskPlacement p = CS__TASK_PLACEMENT__INIT;
	Cs__StoreBatch b = CS__STORE_BATCH__INIT;
	uint8_t unk = 0x01;
	ProtobufCMessageUnknownField u = {.tag = 489,
					  .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
					  .len = 1,
					  .data = &unk};
	uint8_t buf[256], *before;
	size_t len, blen;

	(void)state;
	assert_int_equal(store_snapshot(s, &before, &blen), 0);
	p.task_id = 200;
	p.version = 1;
	p.node_id = 9;
	p.state = CS__TASK_STATE__TASK_STATE_ASSIGNED;
	a.kind = CS__STORE_ACTION__KIND__KIND_DELETE;
	a.object_case = CS__STORE_ACTION__OBJECT_PLACEMENT;
	a.placement = &p;
	b.n_actions = 1;
	b.actions = &ap;
	assert_true(cs__store_batch__get_packed_size(&b) <= sizeof buf);
	len = cs__store_batch__pack(&b, buf);
	assert_int_equal(store_apply(s, buf, len, 2, NULL, NULL), CS_ECORRUPT);
	a.kind = CS__STORE_ACTION__KIND__KIND_CREATE;
	len = cs__store_batch__pack(&b, buf);
	assert_int_equal(store_apply(s, buf, len, 3, NULL, NULL), CS_ECORRUPT);

	a.kind = CS__STORE_ACTION__KIND__KIND_UPDATE;
	a.object_case = CS__STORE_ACTION__OBJECT__NOT_SET;
	a.placement = NULL;
	a.base.n_unknown_fields = 1;
	a.base.unknown_fields = &u;
	len = cs__store_batch__pack(&b, buf);
	assert_int_equal(store_apply(s, buf, len, 4, NULL, NULL), CS_ENOTSUP);
	a.base.n_unknown_fields = 0; /* no object at all: corrupt, as before */
	len = cs__store_batch__pack(&b, buf);
	assert_int_equal(store_apply(s, buf, len, 5, NULL, NULL), CS_ECORRUPT);

	/* placements alone decode into an arena: cut short, they are corrupt
	 * all the same (and nothing leaks) */
	{
		struct store_batch pb;
		uint8_t *pbuf;
		size_t plen;
		store_batch_init(&pb);
		assert_int_equal(
			store_batch_placement(&pb, 200, 1, 9,
					      CS__TASK_STATE__TASK_STATE_ASSIGNED, 5,
					      "assigned"),
			0);
		assert_int_equal(
			store_batch_placement(&pb, 201, 1, 9,
					      CS__TASK_STATE__TASK_STATE_ASSIGNED, 5,
					      "assigned"),
			0);
		assert_int_equal(store_batch_encode(&pb, 0, 0, &pbuf, &plen), 0);
		for (size_t cut = 1; cut < 12; cut++)
			assert_int_equal(
				store_apply(s, pbuf, plen - cut, 5 + cut, NULL, NULL),
				CS_ECORRUPT);
		free(pbuf);
		store_batch_free(&pb);
	}
	{
		uint8_t *after;
		size_t alen;
		Cs__StoreSnapshot *x, *y;
		assert_int_equal(store_snapshot(s, &after, &alen), 0);
		x = cs__store_snapshot__unpack(NULL, blen, before);
		y = cs__store_snapshot__unpack(NULL, alen, after);
		assert_non_null(x);
		assert_non_null(y);
		assert_int_equal(x->n_tasks, y->n_tasks);
		for (size_t i = 0; i < x->n_tasks; i++)
			assert_int_equal(x->tasks[i]->version, y->tasks[i]->version);
		assert_int_equal(y->applied, 16);
		cs__store_snapshot__free_unpacked(x, NULL);
		cs__store_snapshot__free_unpacked(y, NULL);
		free(after);
	}
	free(before);
	store_free(s);
}

/* A test allocator: every block kept, freed all at once (as the store's
 * arena), and a count of the blocks it gave. */
struct dp_pool {
	void *blocks[4096];
	size_t count;
};

static void *dp_alloc(void *data, size_t size)
{
	struct dp_pool *p = data;
	void *m;
	assert_true(p->count < sizeof p->blocks / sizeof *p->blocks);
	m = malloc(size ? size : 1);
	assert_non_null(m);
	p->blocks[p->count++] = m;
	return m;
}

static void dp_free(void *data, void *m)
{
	(void)data;
	(void)m;
	fail_msg("the decoder frees nothing one by one");
}

static void dp_release(struct dp_pool *p)
{
	for (size_t i = 0; i < p->count; i++)
		free(p->blocks[i]);
	p->count = 0;
}

/* Decodes buf both ways: the hand decoder (NULL: it declined) and
 * protobuf-c (must decode when the hand decoder did); when the hand
 * decoder took it, every field must equal protobuf-c's. Returns whether
 * the hand decoder took it. */
static bool dp_check(const uint8_t *buf, size_t len)
{
	struct dp_pool pool = {.count = 0};
	ProtobufCAllocator alloc = {dp_alloc, dp_free, &pool};
	Cs__StoreBatch *x = store_batch_decode_placements(buf, len, &alloc);
	Cs__StoreBatch *y = cs__store_batch__unpack(NULL, len, buf);

	if (x) {
		assert_non_null(y);
		assert_int_equal(x->n_actions, y->n_actions);
		assert_int_equal(x->proposer, y->proposer);
		assert_int_equal(x->proposal_id, y->proposal_id);
		assert_int_equal(x->time_ms, y->time_ms);
		assert_int_equal(x->base.n_unknown_fields, 0);
		assert_int_equal(y->base.n_unknown_fields, 0);
		for (size_t i = 0; i < x->n_actions; i++) {
			const Cs__StoreAction *a = x->actions[i], *b = y->actions[i];
			assert_int_equal(a->kind, b->kind);
			assert_int_equal(a->object_case, b->object_case);
			assert_int_equal(a->base.n_unknown_fields, 0);
			assert_int_equal(b->base.n_unknown_fields, 0);
			if (a->object_case == CS__STORE_ACTION__OBJECT_STATUS_REPORT) {
				const Cs__TaskStatusReport *ra = a->status_report,
							   *rb = b->status_report;
				assert_int_equal(rb->base.n_unknown_fields, 0);
				assert_int_equal(ra->task_id, rb->task_id);
				assert_int_equal(ra->node_id, rb->node_id);
				assert_int_equal(ra->state, rb->state);
				assert_int_equal(ra->exit_code, rb->exit_code);
				assert_int_equal(ra->timestamp_ms, rb->timestamp_ms);
				assert_string_equal(ra->message, rb->message);
				continue;
			}
			assert_int_equal(a->object_case,
					 CS__STORE_ACTION__OBJECT_PLACEMENT);
			assert_int_equal(b->placement->base.n_unknown_fields, 0);
			assert_int_equal(a->placement->task_id, b->placement->task_id);
			assert_int_equal(a->placement->version, b->placement->version);
			assert_int_equal(a->placement->node_id, b->placement->node_id);
			assert_int_equal(a->placement->state, b->placement->state);
			assert_int_equal(a->placement->timestamp_ms,
					 b->placement->timestamp_ms);
			assert_string_equal(a->placement->message, b->placement->message);
		}
	}
	if (y)
		cs__store_batch__free_unpacked(y, NULL);
	dp_release(&pool);
	return x != NULL;
}

/* rounds of buf [0, len) with a bit flipped at a drawn place (every third
 * round a second byte too), cut short every fourth: each counted taken or
 * declined by check, which compares the store's decoder with protobuf-c */
static void corrupt_rounds(const uint8_t *buf, size_t len, int rounds,
			   bool (*check)(const uint8_t *, size_t), uint64_t *rng,
			   unsigned *took, unsigned *declined)
{
	for (int round = 0; round < rounds; round++) {
		size_t at, cut;
		uint8_t *bad;
		*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
		at = (size_t)(*rng >> 33) % len;
		cut = round % 4 == 0 ? (size_t)(*rng >> 13) % (len + 1) : len;
		bad = malloc(len);
		assert_non_null(bad);
		memcpy(bad, buf, len);
		bad[at] ^= (uint8_t)(1u << ((*rng >> 5) % 8));
		if (round % 3 == 0)
			bad[(at * 7 + 1) % len] = (uint8_t)(*rng >> 41);
		if (check(bad, cut))
			(*took)++;
		else
			(*declined)++;
		free(bad);
	}
}

/* issue 18: a batch of placements alone (the scheduler's) is decoded by
 * hand, field for field what protobuf-c gives (widest varints, zeros, a
 * negative state, no message, a proposer, a proposal id, the manager's time
 * stamp); any other bytes (a whole task among them, an unknown field, field
 * 0, a field twice, a message not ASCII, truncated or flipped bytes) it
 * declines or decodes as protobuf-c does. */
static void test_store_batch_decode_placements_as_protobuf_c(void **state)
{
	static const uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};
	static const char *const msgs[] = {NULL, "", "assigned", "no suitable node"};
	struct store_batch b;
	uint8_t *buf, *bad;
	size_t len;
	Cs__Task t = CS__TASK__INIT;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	unsigned took = 0, declined = 0;

	(void)state;
	store_batch_init(&b);
	for (size_t i = 0; i < 40; i++)
		assert_int_equal(
			store_batch_placement(
				&b, vals[i % 7], vals[(i / 7) % 7], vals[(i + 3) % 7],
				i % 5 == 4 ? (Cs__TaskState)-1 : (Cs__TaskState)(i % 14),
				vals[(i + 5) % 7], msgs[i % 4]),
			0);
	assert_int_equal(store_batch_encode(&b, 3, 77, &buf, &len), 0);
	assert_true(dp_check(buf, len));
	/* the manager's time stamp (field 90) after the rest */
	bad = malloc(len + 8);
	assert_non_null(bad);
	memcpy(bad, buf, len);
	bad[len] = 0xd0; /* (90 << 3) | 0 */
	bad[len + 1] = 0x05;
	bad[len + 2] = 0x2a;
	assert_true(dp_check(bad, len + 3));
	/* the proposer twice, field 0, an unknown batch field: declined */
	bad[len] = 0x10;
	bad[len + 1] = 0x04;
	assert_false(dp_check(bad, len + 2));
	bad[len] = 0x80;
	bad[len + 1] = 0x00;
	bad[len + 2] = 0x00;
	assert_false(dp_check(bad, len + 3));
	bad[len] = 0x20;
	bad[len + 1] = 0x01;
	assert_false(dp_check(bad, len + 2));
	free(bad);
	/* random bytes flipped, and truncations: either way as protobuf-c */
	corrupt_rounds(buf, len, 20000, dp_check, &rng, &took, &declined);
	assert_true(took > 100);
	assert_true(declined > 100);
	free(buf);
	/* a whole task among placements: declined */
	t.id = 5;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t),
			 0);
	assert_int_equal(store_batch_placement(&b, 6, 1, 2, 3, 4, "x"), 0);
	assert_int_equal(store_batch_encode(&b, 3, 78, &buf, &len), 0);
	assert_false(dp_check(buf, len));
	free(buf);
	store_batch_free(&b);
	/* a message of bytes over 0x7f: declined */
	store_batch_init(&b);
	assert_int_equal(store_batch_placement(&b, 6, 1, 2, 3, 4, "caf\xc3\xa9"), 0);
	assert_int_equal(store_batch_encode(&b, 0, 0, &buf, &len), 0);
	assert_false(dp_check(buf, len));
	free(buf);
	store_batch_free(&b);
}

/* issue 18: status reports (the dispatcher's batches), alone and among
 * placements, are decoded by hand too, field for field what protobuf-c
 * gives (widest varints, zeros, negative states and exit codes, no
 * message); flipped and truncated bytes are declined or decoded as
 * protobuf-c does, and a report beside a placement in one action (a oneof
 * set twice) is declined. */
static void test_store_batch_decode_reports_as_protobuf_c(void **state)
{
	static const uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};
	static const int32_t codes[] = {0, 1, -1, 137, INT32_MAX, INT32_MIN};
	static const char *const msgs[] = {NULL, "", "started", "preparing"};
	struct store_batch b;
	uint8_t *buf;
	size_t len;
	uint64_t rng = 0x2545f4914f6cdd1dull;
	unsigned took = 0, declined = 0;

	(void)state;
	for (int mixed = 0; mixed < 2; mixed++) {
		store_batch_init(&b);
		for (size_t i = 0; i < 42; i++) {
			if (mixed && i % 3 == 0)
				assert_int_equal(store_batch_placement(
							 &b, vals[i % 7], 1,
							 vals[(i + 2) % 7], 3,
							 vals[(i + 4) % 7], msgs[i % 4]),
						 0);
			assert_int_equal(store_batch_status_report(
						 &b, vals[i % 7], vals[(i / 7) % 7],
						 i % 5 == 4 ? (Cs__TaskState)-1
							    : (Cs__TaskState)(i % 14),
						 codes[i % 6], vals[(i + 5) % 7],
						 msgs[(i / 2) % 4]),
					 0);
		}
		assert_int_equal(store_batch_encode(&b, 3, 77, &buf, &len), 0);
		assert_true(dp_check(buf, len));
		corrupt_rounds(buf, len, 10000, dp_check, &rng, &took, &declined);
		free(buf);
		store_batch_free(&b);
	}
	assert_true(took > 100);
	assert_true(declined > 100);
	/* one action holding a placement and a report: declined */
	{
		static const uint8_t two[] = {
			0x0a, 0x0e,			    /* an action, 14 bytes */
			0x08, 0x01,			    /* kind UPDATE */
			0x82, 0x1e, 0x03, 0x80, 0x1e, 0x05, /* placement {task_id 5} */
			0xaa, 0x1f, 0x03, 0xa8, 0x1f, 0x06, /* report {task_id 6} */
		};
		assert_false(dp_check(two, sizeof two));
	}
	/* a report's message over 0x7f: declined */
	store_batch_init(&b);
	assert_int_equal(store_batch_status_report(&b, 6, 1, 2, 3, 4, "caf\xc3\xa9"), 0);
	assert_int_equal(store_batch_encode(&b, 0, 0, &buf, &len), 0);
	assert_false(dp_check(buf, len));
	free(buf);
	store_batch_free(&b);
}

/* Both ways, as dp_check, for store_batch_decode_tasks: when the hand
 * decoder takes buf, protobuf-c decodes it too, every task packs to the
 * same bytes, and its strings and status are allocated where protobuf-c's
 * are (a default string stays the default), so that the store frees either
 * alike (ASan). Returns whether the hand decoder took it. */
static bool dt_check(const uint8_t *buf, size_t len)
{
	struct dp_pool pool = {.count = 0};
	ProtobufCAllocator alloc = {dp_alloc, dp_free, &pool};
	Cs__StoreBatch *x = store_batch_decode_tasks(buf, len, &alloc);
	Cs__StoreBatch *y = cs__store_batch__unpack(NULL, len, buf);

	if (x) {
		assert_non_null(y);
		assert_int_equal(x->n_actions, y->n_actions);
		assert_int_equal(x->proposer, y->proposer);
		assert_int_equal(x->proposal_id, y->proposal_id);
		assert_int_equal(x->time_ms, y->time_ms);
		assert_int_equal(y->base.n_unknown_fields, 0);
		for (size_t i = 0; i < x->n_actions; i++) {
			const Cs__StoreAction *a = x->actions[i], *b = y->actions[i];
			const Cs__Task *ta = a->task, *tb = b->task;
			size_t la, lb;
			uint8_t *pa, *pb;
			assert_int_equal(a->kind, b->kind);
			assert_int_equal(a->object_case, CS__STORE_ACTION__OBJECT_TASK);
			assert_int_equal(b->object_case, CS__STORE_ACTION__OBJECT_TASK);
			assert_int_equal(b->base.n_unknown_fields, 0);
			assert_int_equal(tb->base.n_unknown_fields, 0);
			la = cs__task__get_packed_size(ta);
			lb = cs__task__get_packed_size(tb);
			assert_int_equal(la, lb);
			pa = malloc(la + 1);
			pb = malloc(lb + 1);
			assert_non_null(pa);
			assert_non_null(pb);
			cs__task__pack(ta, pa);
			cs__task__pack(tb, pb);
			assert_memory_equal(pa, pb, la);
			free(pa);
			free(pb);
			assert_int_equal(ta->desired_state, tb->desired_state);
			assert_true((ta->service_name == protobuf_c_empty_string) ==
				    (tb->service_name == protobuf_c_empty_string));
			assert_true((ta->status == NULL) == (tb->status == NULL));
			if (ta->status) {
				assert_int_equal(tb->status->base.n_unknown_fields, 0);
				assert_int_equal(ta->status->state, tb->status->state);
				assert_int_equal(ta->status->exit_code,
						 tb->status->exit_code);
				assert_true(
					(ta->status->message ==
					 protobuf_c_empty_string) ==
					(tb->status->message == protobuf_c_empty_string));
				assert_true((ta->status->container_id ==
					     protobuf_c_empty_string) ==
					    (tb->status->container_id ==
					     protobuf_c_empty_string));
			}
			protobuf_c_message_free_unpacked(&x->actions[i]->task->base,
							 NULL);
		}
	}
	if (y)
		cs__store_batch__free_unpacked(y, NULL);
	dp_release(&pool);
	return x != NULL;
}

/* issue 18: a batch of whole tasks in the forms the store's writers make
 * (the orchestrator's creates, updates and deletes without a spec) is
 * decoded by hand, each task as protobuf-c gives it (widest varints, zeros,
 * negative states and exit codes, strings or none, no status); flipped and
 * truncated bytes are declined or decoded as protobuf-c does; a task with a
 * spec, a placement among tasks, an empty string sent, a status twice are
 * declined. A store applies such batches as before (the trace hashes). */
static void test_store_batch_decode_tasks_as_protobuf_c(void **state)
{
	static const uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};
	static const int32_t codes[] = {0, 1, -1, 137, INT32_MAX, INT32_MIN};
	static const char *const msgs[] = {"", "pending task scheduling", "x", "started"};
	struct store_batch b;
	uint8_t *buf;
	size_t len;
	uint64_t rng = 0x853c49e6748fea9bull;
	unsigned took = 0, declined = 0;

	(void)state;
	store_batch_init(&b);
	for (size_t i = 0; i < 42; i++) {
		Cs__Task t = CS__TASK__INIT;
		Cs__TaskStatus st = CS__TASK_STATUS__INIT;
		t.id = vals[i % 7];
		t.service_id = vals[(i + 1) % 7];
		t.slot = vals[(i + 2) % 7];
		t.node_id = vals[(i + 3) % 7];
		t.desired_state =
			i % 5 == 4 ? (Cs__TaskState)-1 : (Cs__TaskState)(i % 14);
		t.spec_version = vals[(i + 4) % 7];
		t.version = vals[(i + 5) % 7];
		t.service_name = (char *)msgs[(i / 3) % 4];
		t.started_ms = vals[(i + 6) % 7];
		t.job_iteration = vals[i % 3];
		t.created_ms = vals[(i / 2) % 7];
		t.updated_ms = vals[(i / 4) % 7];
		if (i % 6 != 5) {
			st.state =
				i % 4 == 3 ? (Cs__TaskState)-2 : (Cs__TaskState)(i % 14);
			st.timestamp_ms = vals[(i + 2) % 7];
			st.message = (char *)msgs[i % 4];
			st.exit_code = codes[i % 6];
			st.container_id = (char *)msgs[(i + 1) % 4];
			t.status = &st;
		}
		assert_int_equal(store_batch_task(&b, (Cs__StoreAction__Kind)(i % 3), &t),
				 0);
	}
	assert_int_equal(store_batch_encode(&b, 3, 77, &buf, &len), 0);
	assert_true(dt_check(buf, len));
	corrupt_rounds(buf, len, 20000, dt_check, &rng, &took, &declined);
	assert_true(took > 100);
	assert_true(declined > 100);
	free(buf);
	/* a placement among the tasks: declined */
	assert_int_equal(store_batch_placement(&b, 6, 1, 2, 3, 4, "x"), 0);
	assert_int_equal(store_batch_encode(&b, 3, 78, &buf, &len), 0);
	assert_false(dt_check(buf, len));
	free(buf);
	store_batch_free(&b);
	/* a task with a spec: declined */
	{
		Cs__Task t = CS__TASK__INIT;
		Cs__TaskSpec spec = CS__TASK_SPEC__INIT;
		t.id = 9;
		t.spec = &spec;
		store_batch_init(&b);
		assert_int_equal(
			store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t), 0);
		assert_int_equal(store_batch_encode(&b, 0, 0, &buf, &len), 0);
		assert_false(dt_check(buf, len));
		free(buf);
		store_batch_free(&b);
	}
	/* an empty service name sent, a status twice: declined */
	{
		static const uint8_t empty[] = {0x0a, 0x06, 0x22, 0x04,
						0x08, 0x05, 0x52, 0x00};
		static const uint8_t twice[] = {0x0a, 0x0a, 0x22, 0x08, 0x08, 0x05,
						0x32, 0x00, 0x32, 0x02, 0x08, 0x01};
		assert_false(dt_check(empty, sizeof empty));
		assert_false(dt_check(twice, sizeof twice));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_cluster_removed),
		cmocka_unit_test(test_store_apply_creates_and_versions_objects),
		cmocka_unit_test(test_store_names_subnets_and_vnis_unique_at_apply),
		cmocka_unit_test(test_store_stamps_created_and_updated_times),
		cmocka_unit_test(test_store_iterates_in_key_order_not_insert_order),
		cmocka_unit_test(test_store_scan_by_node_follows_node_then_id),
		cmocka_unit_test(test_store_scan_service_follows_slot_then_id),
		cmocka_unit_test(
			test_store_walk_by_service_matches_a_search_across_changes),
		cmocka_unit_test(test_store_task_next_matches_a_search_across_changes),
		cmocka_unit_test(test_store_node_groups_match_a_model),
		cmocka_unit_test(test_store_large_group_blocks_match_a_model),
		cmocka_unit_test(test_store_large_batch_finds_repeats_by_table_and_id),
		cmocka_unit_test(test_store_repeats_judged_by_the_batch_alone),
		cmocka_unit_test(test_store_batch_encodes_as_protobuf_c_packs),
		cmocka_unit_test(test_store_update_moves_indexes_and_checks_version),
		cmocka_unit_test(test_store_task_lookups_and_partial_index_moves),
		cmocka_unit_test(test_store_desired_index_is_built_at_its_first_walk),
		cmocka_unit_test(test_store_id_index_is_built_at_its_first_walk),
		cmocka_unit_test(test_store_batch_is_all_or_nothing),
		cmocka_unit_test(test_store_watches_see_changes_in_commit_order),
		cmocka_unit_test(test_store_snapshot_round_trips_byte_for_byte),
		cmocka_unit_test(test_store_refuses_bad_bytes_and_keeps_state),
		cmocka_unit_test(test_store_refuses_field_zero),
		cmocka_unit_test(test_store_refuses_field_zero_in_an_action),
		cmocka_unit_test(test_store_cluster_object_lifecycle),
		cmocka_unit_test(test_store_placement_equals_full_update),
		cmocka_unit_test(test_store_placement_checks_the_version_each_write_left),
		cmocka_unit_test(test_store_status_report_equals_full_update),
		cmocka_unit_test(test_store_many_status_reports_apply_each),
		cmocka_unit_test(test_store_status_reports_share_their_message),
		cmocka_unit_test(
			test_store_nodes_found_by_id_after_creates_deletes_and_restore),
		cmocka_unit_test(test_store_placements_share_their_message),
		cmocka_unit_test(test_store_batch_placement_packs_as_protobuf_c),
		cmocka_unit_test(
			test_store_placement_refuses_other_kinds_and_unknown_objects),
		cmocka_unit_test(test_store_batch_decode_placements_as_protobuf_c),
		cmocka_unit_test(test_store_batch_decode_reports_as_protobuf_c),
		cmocka_unit_test(test_store_batch_decode_tasks_as_protobuf_c),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
