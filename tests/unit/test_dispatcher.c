/* Tests of the dispatcher on the simulator: real managers (manager_program,
 * so that no agent of theirs registers) and bare nodes that play agents by
 * sending hand-made Wire frames and recording every frame that comes back.
 * Sessions (ids, the period, the Node object before the answer, redirects
 * from followers), heartbeats and expiry (down after 3 silent periods, a
 * new leader's grace), the assignment stream (a full set, numbered changes,
 * a resync) and status reports (forward only; stale ones change nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"
#include "core/dispatcher.h"
#include "core/errors.h"
#include "core/keymanager.h"
#include "core/manager.h"
#include "core/metrics.h"
#include "core/pki.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/world.h"
#include "tests/support/simstep.h"

#define SEC   1000000ull
#define MS    1000ull
#define HB_MS 4000u /* the dispatcher's period here: not the 5 s default */

#define FAKES_MAX 2

enum rx_kind { RX_SESSION, RX_HEARTBEAT, RX_ASSIGNMENTS, RX_ACK, RX_OTHER };

/* One frame a fake agent received. */
struct rx {
	us_t at;
	Cs__Wire *wire; /* owned */
};

struct fixture;

/* A bare node playing an agent. */
struct fake {
	struct fixture *f;
	uint32_t node;
	char name[16];
	struct rx *rx;
	size_t rx_count, rx_cap;
	uint64_t node_id, session_id;
	/* the beat driver: a heartbeat every HB_MS while beating */
	bool beating, chain_live;
	char beat_to[16];
	us_t last_beat_us;
	/* the leader's store when a good SessionResponse arrived */
	bool node_in_store_at_reply;
	Cs__NodeState state_at_reply;
	char hostname_at_reply[32];
	uint64_t millicpus_at_reply, memory_at_reply;
	bool certified;	  /* joined: holds a certificate of the cluster */
	uint64_t cert_id; /* the node id it names */
	/* what its sessions say of the node (issue 14); NULL: nothing */
	const Cs__SessionRequest *desc;
	/* issue 17: the network state its heartbeats say it holds (0: none) */
	uint64_t net_id, net_digest;
	bool backend_deltas;  /* its sessions say it merges backend deltas */
	uint64_t keys_digest; /* issue 17: the network keys it says it holds */
};

struct fixture {
	struct world *w;
	struct simcluster *c;
	struct scn_settings settings;
	uint32_t managers; /* m1..mN on nodes 0..N-1 */
	struct fake fakes[FAKES_MAX];
	size_t fake_count;
	/* run after every event when set */
	void (*check)(struct fixture *f, void *ctx);
	void *check_ctx;
};

/* ---------------------------------------------------------------- the world */

static void setup(struct fixture *f, uint64_t seed, uint32_t managers)
{
	memset(f, 0, sizeof *f);
	f->w = world_new(seed);
	assert_non_null(f->w);
	f->settings.set = SCN_SET_HEARTBEAT;
	f->settings.heartbeat_ms = HB_MS;
	f->c = simcluster_new(f->w, &f->settings);
	assert_non_null(f->c);
	f->managers = managers;
	for (uint32_t i = 1; i <= managers; i++) {
		char name[16];
		uint32_t idx;
		const struct manager_cfg *cfg = simcluster_manager_cfg(f->c, i, managers);
		assert_non_null(cfg);
		snprintf(name, sizeof name, "m%" PRIu32, i);
		assert_int_equal(world_node_add(f->w, name, &manager_program, cfg, &idx),
				 0);
		assert_int_equal(idx, i - 1);
		assert_int_equal(simcluster_track(f->c, idx, i), 0);
		assert_int_equal(world_node_start(f->w, idx), 0);
	}
}

static void teardown(struct fixture *f)
{
	world_free(f->w);
	simcluster_free(f->c);
	for (size_t i = 0; i < f->fake_count; i++) {
		struct fake *fk = &f->fakes[i];
		for (size_t j = 0; j < fk->rx_count; j++)
			cs__wire__free_unpacked(fk->rx[j].wire, NULL);
		free(fk->rx);
	}
}

/* cmocka's per-test setup and teardown: the fixture is freed even when a
 * test fails half-way. */
static int fixture_new(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state ? 0 : -1;
}

static int fixture_free(void **state)
{
	struct fixture *f = *state;
	if (f->w)
		teardown(f);
	free(f);
	return 0;
}

typedef bool (*pred_fn)(struct fixture *f, void *ctx);

/* Runs until pred holds (checked after every event, with the invariants
 * and f->check) or `limit` of virtual time passes; returns whether it held.
 * A NULL pred runs the whole limit. */
static bool run_until(struct fixture *f, us_t limit, pred_fn pred, void *ctx)
{
	us_t end = world_now_us(f->w) + limit;
	while (!pred || !pred(f, ctx)) {
		if (!simstep(f->w, f->c, false, end))
			return pred ? pred(f, ctx) : true;
		if (f->check)
			f->check(f, f->check_ctx);
	}
	return true;
}

static void run_for(struct fixture *f, us_t d)
{
	run_until(f, d, NULL, NULL);
}

static struct manager *mgr(struct fixture *f, uint32_t node)
{
	return simcluster_manager(f->c, node);
}

/* A leader every manager up follows (so that followers can redirect). */
static bool settled_leader(struct fixture *f, void *ctx)
{
	int64_t l = simcluster_leader(f->c);
	(void)ctx;
	if (l < 0 || !mgr(f, (uint32_t)l))
		return false;
	for (uint32_t i = 0; i < f->managers; i++) {
		struct manager *m = mgr(f, i);
		if (m && manager_leader(m) != manager_raft_id(mgr(f, (uint32_t)l)))
			return false;
	}
	/* the leader's own record is in: its dispatcher runs */
	return store_cluster(manager_store(mgr(f, (uint32_t)l))) != NULL;
}

static uint32_t leader(struct fixture *f)
{
	int64_t l = simcluster_leader(f->c);
	assert_true(l >= 0);
	return (uint32_t)l;
}

static const struct store *leader_store(struct fixture *f)
{
	return manager_store(mgr(f, leader(f)));
}

static uint32_t wait_leader(struct fixture *f)
{
	assert_true(run_until(f, 60 * SEC, settled_leader, NULL));
	return leader(f);
}

/* ---------------------------------------------------------------- fake agents */

static enum rx_kind rx_kind(const Cs__Wire *w)
{
	if (w->session_response)
		return RX_SESSION;
	if (w->heartbeat_response)
		return RX_HEARTBEAT;
	if (w->assignments)
		return RX_ASSIGNMENTS;
	if (w->status_ack)
		return RX_ACK;
	return RX_OTHER;
}

static void fake_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		      void *data)
{
	struct fake *fk = data;
	struct fixture *f = fk->f;
	Cs__Wire *wire = cs__wire__unpack(NULL, len, buf);

	(void)from;
	assert_non_null(wire);
	if (wire->cert_response && wire->cert_response->status == 0 && !fk->certified) {
		/* the join: the fake's certificate from the cluster's CA */
		const Cs__CertResponse *r = wire->cert_response;
		struct env_blob cert = {r->cert.data, r->cert.len};
		struct env_blob root = {r->roots[0].data, r->roots[0].len};
		assert_int_equal(env->ops->pki_install(env, &cert, &root, 1), 0);
		fk->certified = true;
	}
	if (wire->session_response && wire->session_response->status == 0) {
		/* what the leader's store says at the moment the answer lands */
		int64_t l = simcluster_leader(f->c);
		const Cs__Node *n =
			l < 0 ? NULL
			      : store_node_get(manager_store(mgr(f, (uint32_t)l)),
					       wire->session_response->node_id);
		fk->node_in_store_at_reply = n != NULL;
		if (n) {
			fk->state_at_reply = n->state;
			snprintf(fk->hostname_at_reply, sizeof fk->hostname_at_reply,
				 "%s", n->hostname ? n->hostname : "");
			fk->millicpus_at_reply =
				n->resources ? n->resources->millicpus : 0;
			fk->memory_at_reply =
				n->resources ? n->resources->memory_bytes : 0;
		}
	}
	if (fk->rx_count == fk->rx_cap) {
		size_t cap = fk->rx_cap ? fk->rx_cap * 2 : 64;
		struct rx *p = realloc(fk->rx, cap * sizeof *p);
		assert_non_null(p);
		fk->rx = p;
		fk->rx_cap = cap;
	}
	fk->rx[fk->rx_count].at = world_now_us(f->w);
	fk->rx[fk->rx_count].wire = wire;
	fk->rx_count++;
}

static void fake_send(struct fake *fk, const char *to, const Cs__Wire *wire);

static bool fake_certified(struct fixture *f, void *ctx)
{
	(void)f;
	return ((struct fake *)ctx)->certified;
}

/* The fake joins as a real node would: it trusts the root the worker
 * token names, sends a CSR with the token, and installs the certificate
 * the leader's CA answers with. Its node id is the certificate's. */
static void fake_join(struct fixture *f, struct fake *fk)
{
	struct env *env = world_node_env(f->w, fk->node);
	const char *token = simcluster_worker_token(f->c);
	uint8_t digest[ENV_DIGEST_BYTES], csr[PKI_DER_BYTES_MAX];
	char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__CertRequest q = CS__CERT_REQUEST__INIT;
	struct env_identity me;
	struct env_blob none = {NULL, 0};
	size_t len;

	assert_int_equal(pki_token_parse(token, digest, secret, why), 0);
	assert_int_equal(env->ops->pki_pin(env, digest), 0);
	assert_int_equal(env->ops->pki_csr(env, csr, sizeof csr, &len), 0);
	q.csr.data = csr;
	q.csr.len = len;
	q.token = (char *)token;
	q.node_id = 0x1000 + fk->node;
	q.hostname = fk->name;
	wire.cert_request = &q;
	for (int tries = 0; !fk->certified && tries < 10; tries++) {
		int64_t l = simcluster_leader(f->c);
		if (l < 0)
			run_for(f, SEC);
		else
			fake_send(fk, world_node_name(f->w, (uint32_t)l), &wire);
		run_until(f, 5 * SEC, fake_certified, fk);
	}
	assert_true(fk->certified);
	assert_int_equal(env->ops->pki_info(env, &none, &me), 0);
	fk->cert_id = me.node_id;
}

static struct fake *fake_add(struct fixture *f, const char *name)
{
	struct fake *fk;
	struct env *env;
	assert_true(f->fake_count < FAKES_MAX);
	fk = &f->fakes[f->fake_count++];
	fk->f = f;
	snprintf(fk->name, sizeof fk->name, "%s", name);
	assert_int_equal(world_node_add(f->w, name, NULL, NULL, &fk->node), 0);
	assert_int_equal(world_node_start(f->w, fk->node), 0);
	env = world_node_env(f->w, fk->node);
	assert_int_equal(env->ops->listen(env, fake_recv, NULL, fk), 0);
	fake_join(f, fk);
	return fk;
}

/* A cluster of `managers` managers drawn from seed, once it has a leader,
 * and a fake worker w1, not registered yet. Returns w1. */
static struct fake *boot_w1(struct fixture *f, uint64_t seed, uint32_t managers)
{
	setup(f, seed, managers);
	wait_leader(f);
	return fake_add(f, "w1");
}

static void fake_send(struct fake *fk, const char *to, const Cs__Wire *wire)
{
	struct env *env = world_node_env(fk->f->w, fk->node);
	size_t len = cs__wire__get_packed_size(wire);
	uint8_t *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	cs__wire__pack(wire, buf);
	assert_int_equal(env->ops->send(env, to, buf, len), 0);
	free(buf);
}

/* A SessionRequest: node_id 0 for a new node; want_seq > 0 asks a resync of
 * session_id. */
static void fake_session(struct fake *fk, const char *to, uint64_t node_id,
			 uint64_t session_id, uint64_t want_seq)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__SessionRequest q = CS__SESSION_REQUEST__INIT;
	Cs__Resources res = CS__RESOURCES__INIT;
	Cs__Label label = CS__LABEL__INIT, *labels[1] = {&label};
	q.node_id = node_id;
	q.hostname = fk->name;
	q.role = CS__NODE_ROLE__NODE_ROLE_WORKER;
	res.millicpus = 2000;
	res.memory_bytes = 4ull << 30;
	q.resources = &res;
	label.key = "zone";
	label.value = "a";
	q.n_labels = 1;
	q.labels = labels;
	q.session_id = session_id;
	q.want_seq = want_seq;
	q.backend_deltas = fk->backend_deltas;
	if (fk->desc) {
		q.platform_os = fk->desc->platform_os;
		q.platform_arch = fk->desc->platform_arch;
		q.addr = fk->desc->addr;
		q.n_engine_labels = fk->desc->n_engine_labels;
		q.engine_labels = fk->desc->engine_labels;
	}
	wire.session = &q;
	fake_send(fk, to, &wire);
}

static void fake_heartbeat(struct fake *fk, const char *to, uint64_t node_id,
			   uint64_t session_id)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__Heartbeat hb = CS__HEARTBEAT__INIT;
	Cs__NetworkDigest nd = CS__NETWORK_DIGEST__INIT, *nds[1] = {&nd};
	hb.node_id = node_id;
	hb.session_id = session_id;
	if (fk->net_digest) {
		nd.network_id = fk->net_id;
		nd.digest = fk->net_digest;
		hb.n_net_digests = 1;
		hb.net_digests = nds;
	}
	hb.net_keys_digest = fk->keys_digest;
	wire.heartbeat = &hb;
	fake_send(fk, to, &wire);
}

/* Reports task_id at state, as node_id in session_id. */
static void fake_status(struct fake *fk, const char *to, uint64_t node_id,
			uint64_t session_id, uint64_t task_id, Cs__TaskState state,
			const char *message)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__StatusUpdate u = CS__STATUS_UPDATE__INIT;
	Cs__Task t = CS__TASK__INIT, *tasks[1] = {&t};
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	t.id = task_id;
	st.state = state;
	st.message = (char *)message;
	st.timestamp_ms = world_now_us(fk->f->w) / MS;
	t.status = &st;
	u.node_id = node_id;
	u.session_id = session_id;
	u.n_tasks = 1;
	u.tasks = tasks;
	wire.status_update = &u;
	fake_send(fk, to, &wire);
}

/* fk reports task_id's state to m1, in its own session. */
static void fake_own_status(struct fake *fk, uint64_t task_id, Cs__TaskState state,
			    const char *message)
{
	fake_status(fk, "m1", fk->node_id, fk->session_id, task_id, state, message);
}

static void fake_beat(struct world *w, void *data)
{
	struct fake *fk = data;
	if (!fk->beating) {
		fk->chain_live = false;
		return;
	}
	fake_heartbeat(fk, fk->beat_to, fk->node_id, fk->session_id);
	fk->last_beat_us = world_now_us(w);
	assert_int_equal(
		world_call_at(w, world_now_us(w) + HB_MS * MS, fk->node, fake_beat, fk),
		0);
}

/* Heartbeats to `to` every period from now on, with the fake's ids. */
static void fake_beat_start(struct fake *fk, const char *to)
{
	snprintf(fk->beat_to, sizeof fk->beat_to, "%s", to);
	fk->beating = true;
	if (!fk->chain_live) {
		fk->chain_live = true;
		assert_int_equal(world_call_at(fk->f->w, world_now_us(fk->f->w), fk->node,
					       fake_beat, fk),
				 0);
	}
}

static size_t fake_count(const struct fake *fk, enum rx_kind kind, size_t from)
{
	size_t n = 0;
	for (size_t i = from; i < fk->rx_count; i++)
		n += rx_kind(fk->rx[i].wire) == kind;
	return n;
}

/* The n-th frame (0-based) of kind at or after index from, or NULL. */
static const Cs__Wire *fake_nth(const struct fake *fk, enum rx_kind kind, size_t from,
				size_t n)
{
	for (size_t i = from; i < fk->rx_count; i++)
		if (rx_kind(fk->rx[i].wire) == kind && n-- == 0)
			return fk->rx[i].wire;
	return NULL;
}

static const Cs__Wire *fake_last(const struct fake *fk, enum rx_kind kind)
{
	for (size_t i = fk->rx_count; i-- > 0;)
		if (rx_kind(fk->rx[i].wire) == kind)
			return fk->rx[i].wire;
	return NULL;
}

struct rx_wait {
	struct fake *fk;
	enum rx_kind kind;
	size_t from, n;
};

static bool got_rx(struct fixture *f, void *ctx)
{
	struct rx_wait *q = ctx;
	(void)f;
	return fake_count(q->fk, q->kind, q->from) >= q->n;
}

/* Runs until fk has n frames of kind at or after index from (within
 * limit); returns the n-th, or NULL. */
static const Cs__Wire *wait_rx(struct fixture *f, struct fake *fk, enum rx_kind kind,
			       size_t from, size_t n, us_t limit)
{
	struct rx_wait q = {fk, kind, from, n};
	if (!run_until(f, limit, got_rx, &q))
		return NULL;
	return fake_nth(fk, kind, from, n - 1);
}

/* Opens a session for fk with manager `to` (a new node when fk has no id
 * yet) and returns the answer; the fake takes the ids. */
static const Cs__SessionResponse *fake_register(struct fixture *f, struct fake *fk,
						const char *to)
{
	size_t from = fk->rx_count;
	const Cs__Wire *w;
	fake_session(fk, to, fk->node_id, 0, 0);
	w = wait_rx(f, fk, RX_SESSION, from, 1, 10 * SEC);
	assert_non_null(w);
	assert_int_equal(w->session_response->status, 0);
	fk->node_id = w->session_response->node_id;
	fk->session_id = w->session_response->session_id;
	return w->session_response;
}

/* ---------------------------------------------------------------- the store */

static Cs__NodeState node_state(struct fixture *f, uint64_t node_id)
{
	const Cs__Node *n = store_node_get(leader_store(f), node_id);
	assert_non_null(n);
	return n->state;
}

struct node_wait {
	uint64_t node_id;
	Cs__NodeState state;
};

static bool node_in_state(struct fixture *f, void *ctx)
{
	struct node_wait *q = ctx;
	int64_t l = simcluster_leader(f->c);
	const Cs__Node *n;
	if (l < 0)
		return false;
	n = store_node_get(manager_store(mgr(f, (uint32_t)l)), q->node_id);
	return n && n->state == q->state;
}

struct write_result {
	bool done;
	int status;
};

static void write_done(void *data, int status)
{
	struct write_result *r = data;
	assert_false(r->done);
	r->done = true;
	r->status = status;
}

static bool write_answered(struct fixture *f, void *ctx)
{
	(void)f;
	return ((struct write_result *)ctx)->done;
}

/* Asserts that a control call was taken (rv 0) and that its write, in *r,
 * committed within 30 s. */
static void assert_written(struct fixture *f, int rv, struct write_result *r)
{
	assert_int_equal(rv, 0);
	assert_true(run_until(f, 30 * SEC, write_answered, r));
	assert_int_equal(r->status, 0);
}

/* Creates service `name` (replicas, placed by `constraint` when not NULL)
 * through the leader's control API; returns its id once committed. */
static uint64_t create_service_env(struct fixture *f, const char *name, uint64_t replicas,
				   const char *constraint, char *env);

static uint64_t create_service(struct fixture *f, const char *name, uint64_t replicas,
			       const char *constraint)
{
	return create_service_env(f, name, replicas, constraint, NULL);
}

/* create_service, with one environment variable `env` ("K=V") when not
 * NULL: a way to make tasks large. */
static uint64_t create_service_env(struct fixture *f, const char *name, uint64_t replicas,
				   const char *constraint, char *env)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec cs = CS__CONTAINER_SPEC__INIT;
	Cs__Placement pl = CS__PLACEMENT__INIT;
	char *constraints[1] = {(char *)constraint};
	struct write_result r = {0};
	char err[256] = "";
	uint64_t id = 0;

	spec.name = (char *)name;
	spec.replicas = replicas;
	cs.image = "nginx:1";
	if (env) {
		cs.n_env = 1;
		cs.env = &env;
	}
	ts.container = &cs;
	if (constraint) {
		pl.n_constraints = 1;
		pl.constraints = constraints;
		ts.placement = &pl;
	}
	spec.task = &ts;
	assert_written(f,
		       control_service_create(mgr(f, leader(f)), &spec, &id, err,
					      sizeof err, write_done, &r),
		       &r);
	return id;
}

static void remove_service(struct fixture *f, const char *name)
{
	struct write_result r = {0};
	char err[256] = "";
	assert_written(f,
		       control_service_remove(mgr(f, leader(f)), name, err, sizeof err,
					      write_done, &r),
		       &r);
}

/* Task ids of service_id assigned (ASSIGNED or later) to node_id, up to
 * max, in id order; returns how many. */
static size_t tasks_on(struct fixture *f, uint64_t service_id, uint64_t node_id,
		       uint64_t *ids, size_t max)
{
	const struct store *st = leader_store(f);
	size_t n = 0;
	for (const Cs__Task *t = store_task_next_by_node(st, node_id, NULL); t;
	     t = store_task_next_by_node(st, node_id, t)) {
		if (t->service_id != service_id || !t->status ||
		    t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED)
			continue;
		if (n < max)
			ids[n] = t->id;
		n++;
	}
	return n;
}

struct tasks_wait {
	uint64_t service_id, node_id;
	size_t n;
};

static bool tasks_assigned(struct fixture *f, void *ctx)
{
	struct tasks_wait *q = ctx;
	uint64_t ids[8];
	return simcluster_leader(f->c) >= 0 &&
	       tasks_on(f, q->service_id, q->node_id, ids, 8) >= q->n;
}

/* Waits until n tasks of service_id are assigned to node_id; fills ids. */
static void wait_tasks(struct fixture *f, uint64_t service_id, uint64_t node_id, size_t n,
		       uint64_t *ids)
{
	struct tasks_wait q = {service_id, node_id, n};
	assert_true(run_until(f, 30 * SEC, tasks_assigned, &q));
	assert_int_equal(tasks_on(f, service_id, node_id, ids, n), n);
}

static const Cs__Task *task_get(struct fixture *f, uint64_t id)
{
	const Cs__Task *t = store_task_get(leader_store(f), id);
	assert_non_null(t);
	assert_non_null(t->status);
	return t;
}

static bool ids_has(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* ---------------------------------------------------------------- sessions */

static void test_disp_new_node_gets_ids_period_and_ready_node_before_reply(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	const Cs__SessionResponse *r;
	const Cs__Node *n;

	w1 = boot_w1(f, 21, 1);
	r = fake_register(f, w1, "m1");
	assert_int_equal(r->status, 0);
	assert_int_not_equal(r->node_id, 0);
	assert_int_not_equal(r->session_id, 0);
	assert_int_equal(r->heartbeat_ms, HB_MS);
	/* the Node object was in the leader's store when the answer came */
	assert_true(w1->node_in_store_at_reply);
	assert_int_equal(w1->state_at_reply, CS__NODE_STATE__NODE_STATE_READY);
	assert_string_equal(w1->hostname_at_reply, "w1");
	assert_int_equal(w1->millicpus_at_reply, 2000);
	assert_int_equal(w1->memory_at_reply, 4ull << 30);
	/* and it is the node described */
	n = store_node_get(leader_store(f), r->node_id);
	assert_non_null(n);
	assert_int_equal(n->role, CS__NODE_ROLE__NODE_ROLE_WORKER);
	assert_int_equal(n->n_labels, 1);
	assert_string_equal(n->labels[0]->key, "zone");
	assert_string_equal(n->labels[0]->value, "a");
	assert_int_equal(store_node_count(leader_store(f)), 1);
}

static void test_disp_follower_answers_not_leader_with_leader_address(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint32_t l, follower;
	size_t from;
	const Cs__Wire *w;

	setup(f, 22, 3);
	l = wait_leader(f);
	follower = (l + 1) % 3;
	w1 = fake_add(f, "w1");
	from = w1->rx_count;
	fake_session(w1, world_node_name(f->w, follower), 0, 0, 0);
	w = wait_rx(f, w1, RX_SESSION, from, 1, 5 * SEC);
	assert_non_null(w);
	assert_int_equal(w->session_response->status, CS_ENOTLEADER);
	assert_int_equal(w->session_response->session_id, 0);
	assert_string_equal(w->session_response->leader, world_node_name(f->w, l));
	/* the follower registered nothing: the record is the CA's, made
	 * when the fake joined, and no session made it READY */
	run_for(f, 2 * SEC);
	assert_int_equal(store_node_count(leader_store(f)), 1);
	assert_int_equal(node_state(f, w1->cert_id), CS__NODE_STATE__NODE_STATE_UNKNOWN);
	/* a heartbeat to a follower is redirected the same way */
	from = w1->rx_count;
	fake_heartbeat(w1, world_node_name(f->w, follower), 1, 1);
	w = wait_rx(f, w1, RX_HEARTBEAT, from, 1, 5 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, CS_ENOTLEADER);
	assert_string_equal(w->heartbeat_response->leader, world_node_name(f->w, l));
	/* the leader named registers it */
	fake_register(f, w1, world_node_name(f->w, l));
	assert_int_equal(node_state(f, w1->node_id), CS__NODE_STATE__NODE_STATE_READY);
}

static void test_disp_known_node_keeps_its_id_on_a_new_session(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint64_t id, s1;

	w1 = boot_w1(f, 23, 1);
	fake_register(f, w1, "m1");
	id = w1->node_id;
	s1 = w1->session_id;
	assert_int_equal(fake_register(f, w1, "m1")->heartbeat_ms, HB_MS);
	assert_int_equal(w1->node_id, id);
	assert_int_not_equal(w1->session_id, s1);
	assert_int_equal(store_node_count(leader_store(f)), 1);
}

/* A node's description (platform, engine labels, its IP) reaches its
 * record, and a new session with another one rewrites it. The simulator's
 * transport addresses are names, so the IP is the one the node reports. */
static void test_disp_session_writes_node_description(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	Cs__SessionRequest d = CS__SESSION_REQUEST__INIT;
	Cs__Label l1 = CS__LABEL__INIT, l2 = CS__LABEL__INIT;
	Cs__Label *labels[LIMIT_ENGINE_LABELS_MAX + 1];
	const Cs__Node *n;

	for (size_t i = 0; i <= LIMIT_ENGINE_LABELS_MAX; i++)
		labels[i] = i == 0 ? &l1 : &l2;
	l1.key = "storage";
	l1.value = "ssd";
	l2.key = "gpu";
	l2.value = "none";
	d.platform_os = "linux";
	d.platform_arch = "x86_64";
	d.addr = "10.0.0.9";
	d.engine_labels = labels;
	d.n_engine_labels = 2;
	w1 = boot_w1(f, 24, 1);
	w1->desc = &d;
	fake_register(f, w1, "m1");
	n = store_node_get(leader_store(f), w1->node_id);
	assert_non_null(n);
	assert_string_equal(n->platform_os, "linux");
	assert_string_equal(n->platform_arch, "x86_64");
	assert_string_equal(n->addr, "10.0.0.9");
	assert_int_equal(n->n_engine_labels, 2);
	assert_string_equal(n->engine_labels[0]->key, "storage");
	assert_string_equal(n->engine_labels[0]->value, "ssd");
	assert_string_equal(n->engine_labels[1]->key, "gpu");
	/* the node is READY already: a changed description is written too */
	l1.value = "hdd";
	d.addr = "not-an-ip";
	fake_register(f, w1, "m1");
	run_for(f, 1 * SEC);
	n = store_node_get(leader_store(f), w1->node_id);
	assert_string_equal(n->engine_labels[0]->value, "hdd");
	assert_string_equal(n->addr, ""); /* neither address is an IP */
	/* over the limits: refused (logged), the record keeps what it had */
	d.n_engine_labels = LIMIT_ENGINE_LABELS_MAX + 1;
	d.platform_os = "plan9";
	fake_register(f, w1, "m1");
	run_for(f, 1 * SEC);
	n = store_node_get(leader_store(f), w1->node_id);
	assert_string_equal(n->platform_os, "linux");
	assert_int_equal(n->n_engine_labels, 2);
	assert_int_equal(n->state, CS__NODE_STATE__NODE_STATE_READY);
}

/* node.ip is where the session's connection comes from as the transport
 * sees it, not what the node says of itself */
static void test_disp_node_ip_is_the_observed_peer_ip(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	Cs__SessionRequest d = CS__SESSION_REQUEST__INIT;
	const Cs__Node *n;

	d.addr = "10.0.0.9"; /* what it claims */
	w1 = boot_w1(f, 24, 1);
	world_node_set_ip(f->w, w1->node, "192.0.2.7");
	w1->desc = &d;
	fake_register(f, w1, "m1");
	n = store_node_get(leader_store(f), w1->node_id);
	assert_non_null(n);
	assert_string_equal(n->addr, "192.0.2.7");
	/* a transport that knows no IP: the claim is all there is */
	world_node_set_ip(f->w, w1->node, "");
	fake_register(f, w1, "m1");
	run_for(f, 1 * SEC);
	n = store_node_get(leader_store(f), w1->node_id);
	assert_string_equal(n->addr, "10.0.0.9");
}

/* ---------------------------------------------------------------- heartbeats */

struct ready_check {
	uint64_t node_id;
	uint64_t events;
};

static void check_ready(struct fixture *f, void *ctx)
{
	struct ready_check *q = ctx;
	assert_int_equal(node_state(f, q->node_id), CS__NODE_STATE__NODE_STATE_READY);
	q->events++;
}

static void test_disp_heartbeats_keep_node_ready(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	struct ready_check rc = {0};
	size_t from;

	w1 = boot_w1(f, 24, 1);
	fake_register(f, w1, "m1");
	from = w1->rx_count;
	fake_beat_start(w1, "m1");
	rc.node_id = w1->node_id;
	f->check = check_ready;
	f->check_ctx = &rc;
	run_for(f, 10 * HB_MS * MS); /* ten periods: ready all along */
	f->check = NULL;
	assert_true(rc.events > 0);
	/* every heartbeat was answered, with the period */
	assert_true(fake_count(w1, RX_HEARTBEAT, from) >= 10);
	for (size_t i = 0; i < fake_count(w1, RX_HEARTBEAT, from); i++) {
		const Cs__Wire *w = fake_nth(w1, RX_HEARTBEAT, from, i);
		assert_int_equal(w->heartbeat_response->status, 0);
		assert_int_equal(w->heartbeat_response->heartbeat_ms, HB_MS);
	}
}

static void test_disp_marks_silent_node_down_after_three_periods(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	struct node_wait q;
	us_t last_sent, last_answer, down_at;

	w1 = boot_w1(f, 25, 1);
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	run_for(f, 3 * HB_MS * MS + 100 * MS);
	w1->beating = false;
	last_sent = w1->last_beat_us;
	run_for(f, 100 * MS);
	last_answer = 0;
	for (size_t i = 0; i < w1->rx_count; i++)
		if (w1->rx[i].wire->heartbeat_response)
			last_answer = w1->rx[i].at;
	assert_true(last_answer > last_sent);
	assert_int_equal(node_state(f, w1->node_id), CS__NODE_STATE__NODE_STATE_READY);
	q.node_id = w1->node_id;
	q.state = CS__NODE_STATE__NODE_STATE_DOWN;
	assert_true(run_until(f, 10 * HB_MS * MS, node_in_state, &q));
	down_at = world_now_us(f->w);
	/* not before 3 periods of silence, and within 3 periods + 1 */
	assert_true(down_at > last_sent + 3 * HB_MS * MS);
	assert_true(down_at <= last_answer + 4 * HB_MS * MS);
	assert_string_equal(store_node_get(leader_store(f), w1->node_id)->state_message,
			    "heartbeat failure");
	/* its session is gone: a heartbeat now is stale */
	fake_heartbeat(w1, "m1", w1->node_id, w1->session_id);
	assert_int_equal(wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC)
				 ->heartbeat_response->status,
			 CS_ESTALE);
	/* a new session makes it ready again, with the same id */
	fake_register(f, w1, "m1");
	q.state = CS__NODE_STATE__NODE_STATE_READY;
	assert_true(run_until(f, 5 * SEC, node_in_state, &q));
}

static void test_disp_heartbeat_with_wrong_session_is_stale(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	const Cs__Wire *w;

	w1 = boot_w1(f, 26, 1);
	fake_register(f, w1, "m1");
	fake_heartbeat(w1, "m1", w1->node_id, w1->session_id);
	w = wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, 0);
	/* another session id */
	fake_heartbeat(w1, "m1", w1->node_id, w1->session_id ^ 2);
	w = wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, CS_ESTALE);
	/* no session at all */
	fake_heartbeat(w1, "m1", w1->node_id, 0);
	w = wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, CS_ESTALE);
	/* another node than its certificate names (issue 13): refused, not
	 * answered */
	fake_heartbeat(w1, "m1", w1->node_id + 1, w1->session_id);
	w = wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC);
	assert_null(w);
	/* an old session, replaced by a new one */
	{
		uint64_t old = w1->session_id;
		fake_register(f, w1, "m1");
		fake_heartbeat(w1, "m1", w1->node_id, old);
		w = wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC);
		assert_non_null(w);
		assert_int_equal(w->heartbeat_response->status, CS_ESTALE);
	}
}

/* A new leader gives the nodes its store says are ready three periods and
 * DISPATCHER_NEW_LEADER_EXTRA_MS to come back (their sessions died with
 * the old leader): a node that reconnects within them is never marked
 * down; one that stays silent is, after them. */
static void test_disp_new_leader_gives_ready_nodes_three_periods_grace(void **state)
{
	struct fixture *f = *state;
	struct fake *w1, *w2;
	struct node_wait q;
	uint32_t old, l;
	us_t elected;
	const Cs__Wire *w;

	setup(f, 27, 3);
	old = wait_leader(f);
	w1 = fake_add(f, "w1");
	w2 = fake_add(f, "w2");
	fake_register(f, w1, world_node_name(f->w, old));
	fake_register(f, w2, world_node_name(f->w, old));
	fake_beat_start(w1, world_node_name(f->w, old));
	fake_beat_start(w2, world_node_name(f->w, old));
	run_for(f, 2 * HB_MS * MS);
	/* everyone applied both nodes as ready */
	for (uint32_t i = 0; i < 3; i++) {
		assert_non_null(store_node_get(manager_store(mgr(f, i)), w1->node_id));
		assert_non_null(store_node_get(manager_store(mgr(f, i)), w2->node_id));
	}
	w1->beating = false;
	w2->beating = false;
	assert_int_equal(world_node_kill(f->w, old, false, false), 0);
	assert_true(run_until(f, 60 * SEC, settled_leader, NULL));
	l = leader(f);
	assert_int_not_equal(l, old);
	elected = world_now_us(f->w);
	/* silent for almost three periods of the new leader: still ready */
	{
		struct ready_check rc1 = {w1->node_id, 0};
		f->check = check_ready;
		f->check_ctx = &rc1;
		run_for(f, 3 * HB_MS * MS - 600 * MS);
		f->check = NULL;
		assert_true(rc1.events > 0);
	}
	assert_int_equal(node_state(f, w2->node_id), CS__NODE_STATE__NODE_STATE_READY);
	/* the old session means nothing to the new leader */
	fake_heartbeat(w1, world_node_name(f->w, l), w1->node_id, w1->session_id);
	w = wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, CS_ESTALE);
	/* w1 comes back in time and stays ready; w2 stays silent and goes down
	 * after its grace */
	fake_register(f, w1, world_node_name(f->w, l));
	fake_beat_start(w1, world_node_name(f->w, l));
	q.node_id = w2->node_id;
	q.state = CS__NODE_STATE__NODE_STATE_DOWN;
	assert_true(run_until(f, 4 * HB_MS * MS + DISPATCHER_NEW_LEADER_EXTRA_MS * MS,
			      node_in_state, &q));
	assert_true(world_now_us(f->w) > elected + 3 * HB_MS * MS +
						 DISPATCHER_NEW_LEADER_EXTRA_MS * MS -
						 600 * MS);
	assert_true(world_now_us(f->w) <= elected + 4 * HB_MS * MS +
						  DISPATCHER_NEW_LEADER_EXTRA_MS * MS +
						  1 * SEC);
	{
		struct ready_check rc1 = {w1->node_id, 0};
		f->check = check_ready;
		f->check_ctx = &rc1;
		run_for(f, 5 * HB_MS * MS);
		f->check = NULL;
	}
}

/* A node registered just before the leader dies, then silent: the new
 * leader may apply its Node (READY) only after it started dispatching
 * (entries of the old term are applied once the new term commits one),
 * and must still mark it down once silent for its grace. */
static void test_disp_node_registered_just_before_failover_goes_down_when_silent(
	void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	struct node_wait q;
	uint32_t old;

	setup(f, 29, 3);
	old = wait_leader(f);
	w1 = fake_add(f, "w1");
	fake_register(f, w1, world_node_name(f->w, old));
	/* the answer came once committed; the leader dies at once */
	assert_int_equal(world_node_kill(f->w, old, false, false), 0);
	assert_true(run_until(f, 60 * SEC, settled_leader, NULL));
	assert_true(run_until(
		f, 10 * SEC, node_in_state,
		&(struct node_wait){w1->node_id, CS__NODE_STATE__NODE_STATE_READY}));
	q.node_id = w1->node_id;
	q.state = CS__NODE_STATE__NODE_STATE_DOWN;
	/* BUG (core/dispatcher.c dispatcher_start): the grace sessions are
	 * made from the store as it is when leadership starts; a node applied
	 * READY after that gets no session and is never marked down, so it
	 * stays READY for ever and keeps receiving tasks. */
	assert_true(run_until(f, 5 * HB_MS * MS + DISPATCHER_NEW_LEADER_EXTRA_MS * MS,
			      node_in_state, &q));
}

/* A heartbeat must name the node's session: during a new leader's grace
 * the node has none yet, and a heartbeat with session id 0 must not pass
 * for one.
 * BUG (core/dispatcher.c disp_on_heartbeat): a grace entry has session_id
 * 0, so `s->session_id != h->session_id` lets a heartbeat with session id
 * 0 through (status 0): it keeps the node ready with no session and no
 * assignment stream. */
static void test_disp_heartbeat_without_session_in_grace_is_stale(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint32_t old, l;
	const Cs__Wire *w;

	setup(f, 28, 3);
	old = wait_leader(f);
	w1 = fake_add(f, "w1");
	fake_register(f, w1, world_node_name(f->w, old));
	run_for(f, HB_MS * MS);
	assert_int_equal(world_node_kill(f->w, old, false, false), 0);
	assert_true(run_until(f, 60 * SEC, settled_leader, NULL));
	l = leader(f);
	run_for(f, 1 * SEC); /* its dispatcher runs */
	fake_heartbeat(w1, world_node_name(f->w, l), w1->node_id, 0);
	w = wait_rx(f, w1, RX_HEARTBEAT, w1->rx_count, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, CS_ESTALE);
}

/* ---------------------------------------------------------------- assignments */

/* Checks that the Assignments of session after index from are numbered
 * 1.. (or continue from first_seq) without a gap. */
static void assert_numbered(const struct fake *fk, size_t from, uint64_t session,
			    uint64_t first_seq)
{
	uint64_t seq = first_seq;
	for (size_t i = from; i < fk->rx_count; i++) {
		const Cs__Wire *w = fk->rx[i].wire;
		if (!w->assignments || w->assignments->session_id != session)
			continue;
		assert_int_equal(w->assignments->seq, seq);
		seq++;
	}
}

/* The ids that the Assignments of session at or after from list as added
 * or changed (tasks) or removed, up to max each. */
static void collect(const struct fake *fk, size_t from, uint64_t session, bool full,
		    uint64_t *added, size_t *n_added, uint64_t *removed,
		    size_t *n_removed)
{
	*n_added = *n_removed = 0;
	for (size_t i = from; i < fk->rx_count; i++) {
		const Cs__Assignments *a = fk->rx[i].wire->assignments;
		if (!a || a->session_id != session || a->full != full)
			continue;
		for (size_t j = 0; j < a->n_tasks; j++)
			if (!ids_has(added, *n_added, a->tasks[j]->id) && *n_added < 8)
				added[(*n_added)++] = a->tasks[j]->id;
		for (size_t j = 0; j < a->n_removed; j++)
			if (!ids_has(removed, *n_removed, a->removed[j]) &&
			    *n_removed < 8)
				removed[(*n_removed)++] = a->removed[j];
	}
}

/* Checks the Assignments of session from index `from` on: each fits in a
 * frame, they are numbered without a gap from first_seq, and every task of
 * ids[n] is in one of them. With full: every part says full, all but the
 * last say more. Returns how many messages. */
static size_t assert_parts(const struct fake *fk, size_t from, uint64_t session,
			   uint64_t first_seq, bool full, const uint64_t *ids, size_t n)
{
	size_t count = 0, seen = 0;
	uint64_t seq = first_seq;
	const Cs__Assignments *last = NULL;

	for (size_t i = from; i < fk->rx_count; i++) {
		const Cs__Assignments *a = fk->rx[i].wire->assignments;
		if (!a || a->session_id != session)
			continue;
		assert_true(cs__wire__get_packed_size(fk->rx[i].wire) <=
			    LIMIT_FRAME_BYTES_MAX);
		assert_int_equal(a->seq, seq);
		assert_int_equal(a->full, full);
		if (last)
			assert_true(!full || last->more);
		for (size_t j = 0; j < a->n_tasks; j++)
			seen += ids_has(ids, n, a->tasks[j]->id);
		last = a;
		seq++;
		count++;
	}
	assert_non_null(last);
	assert_false(last->more);
	assert_int_equal(seen, n);
	return count;
}

/* Issue 12, item 3: a node's assignments larger than a frame were dropped
 * without a word (and at every resync again): the node never got its
 * tasks. They go in parts now, the full set as well as changes. */
static void test_disp_assignments_larger_than_a_frame_go_in_parts(void **state)
{
	struct fixture *f = *state;
	enum { REPLICAS = 48, ENV_BYTES = 200 * 1024 }; /* about 9.6 MB */
	struct fake *w1;
	size_t from, parts;
	uint64_t web, ids[REPLICAS];
	char *env = malloc(ENV_BYTES + 1);

	assert_non_null(env);
	memcpy(env, "BIG=", 4);
	memset(env + 4, 'x', ENV_BYTES - 4);
	env[ENV_BYTES] = '\0';
	w1 = boot_w1(f, 37, 1);
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	run_for(f, 1 * SEC);

	/* placed while the session is open: changes, in several messages */
	from = w1->rx_count;
	web = create_service_env(f, "web", REPLICAS, NULL, env);
	wait_tasks(f, web, w1->node_id, REPLICAS, ids);
	run_for(f, 2 * SEC);
	parts = assert_parts(w1, from, w1->session_id, 2, false, ids, REPLICAS);
	assert_true(parts >= 3);

	/* a new session: the full set, in parts that say more */
	from = w1->rx_count;
	fake_register(f, w1, "m1");
	run_for(f, 2 * SEC);
	parts = assert_parts(w1, from, w1->session_id, 1, true, ids, REPLICAS);
	assert_true(parts >= 3);
	free(env);
}

/* ---------------------------------------------------------------- data plane (issue 17) */

/* The last NetworkState for network id the fake received from index
 * `from` on (NULL: none), and how many. */
static const Cs__NetworkState *net_last(const struct fake *fk, size_t from, uint64_t id,
					size_t *count)
{
	const Cs__NetworkState *last = NULL;
	*count = 0;
	for (size_t i = from; i < fk->rx_count; i++) {
		const Cs__NetworkState *ns = fk->rx[i].wire->network_state;
		if (ns && ns->network_id == id) {
			last = ns;
			(*count)++;
		}
	}
	return last;
}

static uint64_t create_network(struct fixture *f, const char *name)
{
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	struct write_result r = {0};
	char err[256] = "";
	uint64_t id = 0;
	spec.name = (char *)name;
	assert_written(f,
		       control_network_create(mgr(f, leader(f)), &spec, &id, err,
					      sizeof err, write_done, &r),
		       &r);
	return id;
}

static uint64_t create_service_on(struct fixture *f, const char *name, uint64_t replicas,
				  const char *network)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec cs = CS__CONTAINER_SPEC__INIT;
	Cs__NetworkAttachmentConfig nc = CS__NETWORK_ATTACHMENT_CONFIG__INIT;
	Cs__NetworkAttachmentConfig *ncs[1] = {&nc};
	char *aliases[1] = {"database"};
	struct write_result r = {0};
	char err[256] = "";
	uint64_t id = 0;

	spec.name = (char *)name;
	spec.replicas = replicas;
	cs.image = "nginx:1";
	ts.container = &cs;
	spec.task = &ts;
	nc.target = (char *)network;
	nc.n_aliases = 1;
	nc.aliases = aliases;
	spec.n_networks = 1;
	spec.networks = ncs;
	assert_written(f,
		       control_service_create(mgr(f, leader(f)), &spec, &id, err,
					      sizeof err, write_done, &r),
		       &r);
	return id;
}

/* Issue 17 (encrypted overlays): the NetworkKeys frames the fake received
 * from index `from` on, and the last. */
static const Cs__NetworkKeys *keys_last(const struct fake *fk, size_t from, size_t *count)
{
	const Cs__NetworkKeys *last = NULL;
	*count = 0;
	for (size_t i = from; i < fk->rx_count; i++)
		if (fk->rx[i].wire->network_keys) {
			last = fk->rx[i].wire->network_keys;
			(*count)++;
		}
	return last;
}

/* The digest of a NetworkKeys frame's keys (as the agent computes it). */
static uint64_t keys_digest_of(const Cs__NetworkKeys *m)
{
	struct env_net_key k[ENV_NET_KEYS_MAX];
	assert_true(m->n_keys <= ENV_NET_KEYS_MAX);
	for (size_t i = 0; i < m->n_keys; i++) {
		assert_int_equal(m->keys[i]->key.len, ENV_NET_KEY_BYTES);
		k[i].id = m->keys[i]->id;
		memcpy(k[i].key, m->keys[i]->key.data, ENV_NET_KEY_BYTES);
	}
	return keymgr_digest(k, m->n_keys);
}

/* Issue 17 (encrypted overlays): the first encrypted network makes the
 * key manager write three keys; the dispatcher gives them to the ready
 * node on its session (the store's keys, its session id); not again
 * while its heartbeats say it holds them, again when they say otherwise,
 * and again when the keys rotate; the network's state says encrypted. */
static void test_disp_network_keys_given_on_the_session(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	const Cs__NetworkKeys *m;
	const Cs__Cluster *c;
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	struct write_result r = {0};
	const Cs__NetworkState *ns;
	char err[256] = "";
	uint64_t net, db, ids[1];
	size_t from, count;

	w1 = boot_w1(f, 47, 1);
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	run_for(f, 2 * SEC);
	keys_last(w1, 0, &count);
	assert_int_equal(count, 0); /* no encrypted network: no keys */
	/* a bridge cannot be encrypted */
	spec.name = (char *)"br";
	spec.driver = (char *)"bridge";
	spec.encrypted = true;
	assert_int_equal(control_network_create(mgr(f, leader(f)), &spec, &net, err,
						sizeof err, write_done, &r),
			 CS_EINVAL);
	assert_non_null(strstr(err, "only an overlay network can be encrypted"));
	spec.driver = NULL;
	spec.ingress = true;
	assert_int_equal(control_network_create(mgr(f, leader(f)), &spec, &net, err,
						sizeof err, write_done, &r),
			 CS_EINVAL);
	assert_non_null(strstr(err, "the ingress network (the routing mesh's) cannot"));
	spec.ingress = false;
	spec.name = (char *)"secure";
	spec.driver = NULL;
	assert_written(f,
		       control_network_create(mgr(f, leader(f)), &spec, &net, err,
					      sizeof err, write_done, &r),
		       &r);
	run_for(f, 2 * SEC);
	c = store_cluster(leader_store(f));
	assert_true(keymgr_valid(c));
	assert_int_equal(c->n_network_keys, 3);
	m = keys_last(w1, 0, &count);
	assert_int_equal(count, 1);
	assert_int_equal(m->session_id, w1->session_id);
	assert_int_equal(m->n_keys, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(m->keys[i]->id, i + 1);
		assert_memory_equal(m->keys[i]->key.data, c->network_keys[i]->key.data,
				    ENV_NET_KEY_BYTES);
	}
	/* held: not sent again (after the beats already on their way) */
	w1->keys_digest = keys_digest_of(m);
	run_for(f, HB_MS * MS + SEC);
	from = w1->rx_count;
	run_for(f, 3 * HB_MS * MS);
	keys_last(w1, from, &count);
	assert_int_equal(count, 0);
	/* the agent says it holds none (a restart): sent again */
	w1->keys_digest = 0;
	run_for(f, HB_MS * MS + SEC);
	m = keys_last(w1, from, &count);
	assert_true(count >= 1);
	w1->keys_digest = keys_digest_of(m);
	/* a rotation: pushed, the oldest gone, one new */
	from = w1->rx_count;
	r.done = false;
	assert_written(f,
		       control_cluster_rotate_network_keys(mgr(f, leader(f)), err,
							   sizeof err, write_done, &r),
		       &r);
	run_for(f, SEC);
	m = keys_last(w1, from, &count);
	assert_int_equal(count, 1);
	assert_int_equal(m->n_keys, 3);
	assert_int_equal(m->keys[0]->id, 2);
	assert_int_equal(m->keys[2]->id, 4);
	assert_int_not_equal(keys_digest_of(m), w1->keys_digest);
	/* the network's state says it is encrypted, and holds no key */
	from = w1->rx_count;
	db = create_service_on(f, "db", 1, "secure");
	wait_tasks(f, db, w1->node_id, 1, ids);
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_non_null(ns);
	assert_true(ns->encrypted);
}

/* Item 1: a node is sent the state of the network its tasks attach to
 * (its endpoints with their node, the service with its VIP, aliases and
 * running backends), again when it changes (a task RUNNING: a backend),
 * not again when nothing changed, and removed once no task of the node
 * attaches to it. */
static void test_disp_network_state_sent_changed_and_removed(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	const Cs__NetworkState *ns;
	uint64_t net, db, ids[2], digest;
	size_t from, count;

	w1 = boot_w1(f, 43, 1);
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	net = create_network(f, "back");
	from = w1->rx_count;
	db = create_service_on(f, "db", 2, "back");
	wait_tasks(f, db, w1->node_id, 2, ids);
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_non_null(ns);
	assert_false(ns->removed);
	assert_false(ns->more);
	assert_int_equal(ns->session_id, w1->session_id);
	assert_string_equal(ns->name, "back");
	assert_true(ns->vni >= 4096);
	assert_int_equal(ns->n_endpoints, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(ns->endpoints[i]->node_id, w1->node_id);
		assert_true(ids_has(ids, 2, ns->endpoints[i]->task_id));
		assert_string_equal(ns->endpoints[i]->node_ip, "w1");
		assert_null(strchr(ns->endpoints[i]->addr, '/'));
	}
	assert_int_equal(ns->n_services, 1);
	assert_string_equal(ns->services[0]->name, "db");
	assert_int_equal(ns->services[0]->n_aliases, 1);
	assert_string_equal(ns->services[0]->aliases[0], "database");
	assert_true(ns->services[0]->vip[0] != '\0');
	assert_int_equal(ns->services[0]->n_backends, 0);
	digest = ns->digest;
	assert_true(digest != 0);

	/* heartbeats that say the node lacks it: sent again */
	from = w1->rx_count;
	run_for(f, 10 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_true(count >= 1);
	assert_int_equal(ns->digest, digest);
	/* heartbeats that say it holds it, and nothing changed: not again */
	w1->net_id = net;
	w1->net_digest = digest;
	run_for(f, 5 * SEC);
	from = w1->rx_count;
	run_for(f, 10 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_int_equal(count, 0);

	/* a task RUNNING: its address becomes a backend, sent again */
	fake_own_status(w1, ids[0], CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_int_equal(count, 1);
	assert_true(ns->digest != digest);
	assert_int_equal(ns->services[0]->n_backends, 1);
	w1->net_digest = ns->digest;

	/* the service removed and its tasks stopped: removed */
	remove_service(f, "db");
	run_for(f, 1 * SEC);
	fake_own_status(w1, ids[0], CS__TASK_STATE__TASK_STATE_SHUTDOWN, "stopped");
	fake_own_status(w1, ids[1], CS__TASK_STATE__TASK_STATE_SHUTDOWN, "stopped");
	from = w1->rx_count;
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_non_null(ns);
	assert_true(ns->removed);
}

/* The leader's count of network state builds (its metrics). */
static unsigned long net_builds(struct fixture *f)
{
	struct metrics_buf out = {0};
	const char *line;
	unsigned long n = 0;

	manager_metrics(mgr(f, leader(f)), &out);
	assert_false(out.failed);
	line = strstr(out.text, "\ncswarm_dispatcher_network_builds_total ");
	assert_non_null(line);
	n = strtoul(line + strlen("\ncswarm_dispatcher_network_builds_total "), NULL, 10);
	metrics_buf_free(&out);
	return n;
}

/* Issue 18: a new session of a known node changes no network's state when
 * its node's record has an address: the states are not built again from every task
 * (at a new leader, thousands of new sessions rebuilt them ten times a
 * second, 21% of its CPU at 100,000 tasks), and the nodes in session are
 * sent nothing again; the new session gets the states its node needs. */
static void test_disp_new_session_builds_no_network_state_again(void **state)
{
	struct fixture *f = *state;
	struct fake *w1, *w2;
	const Cs__NetworkState *ns;
	Cs__SessionRequest d1 = CS__SESSION_REQUEST__INIT, d2 = CS__SESSION_REQUEST__INIT;
	uint64_t net, db, ids[2];
	unsigned long builds;
	size_t from, count;

	d1.addr = "10.0.0.1"; /* the records' addresses (a real node's) */
	d2.addr = "10.0.0.2";
	w1 = boot_w1(f, 44, 1);
	w1->desc = &d1;
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	net = create_network(f, "back");
	db = create_service_on(f, "db", 2, "back");
	wait_tasks(f, db, w1->node_id, 2, ids);
	run_for(f, 2 * SEC);
	ns = net_last(w1, 0, net, &count);
	assert_non_null(ns);
	w1->net_id = net;
	w1->net_digest = ns->digest;
	w2 = fake_add(f, "w2"); /* a new node's record: built again */
	w2->desc = &d2;
	fake_register(f, w2, "m1");
	fake_beat_start(w2, "m1");
	run_for(f, 6 * SEC);
	builds = net_builds(f);
	assert_true(builds >= 1);

	/* w2 (no task on a network) opens a new session, as at a new
	 * leader: its record stays as it is */
	from = w1->rx_count;
	fake_register(f, w2, "m1");
	run_for(f, 2 * SEC);
	assert_int_equal(net_builds(f), builds);
	net_last(w1, from, net, &count);
	assert_int_equal(count, 0);

	/* w1's own new session: sent its network's state again, still
	 * without a build */
	from = w1->rx_count;
	fake_register(f, w1, "m1");
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_int_equal(count, 1);
	assert_int_equal(ns->session_id, w1->session_id);
	assert_int_equal(ns->n_endpoints, 2);
	assert_int_equal(net_builds(f), builds);
}

/* Item 1, cost: a change to a network's state goes to a node that holds
 * the state before as the change only (base_digest: the endpoints and
 * services added, changed or removed), not the whole state again. */
static void test_disp_network_state_change_goes_as_a_delta(void **state)
{
	struct fixture *f = *state;
	enum { REPLICAS = 12 };
	struct fake *w1;
	const Cs__NetworkState *ns;
	uint64_t net, db, ids[REPLICAS], digest;
	size_t from, count;

	w1 = boot_w1(f, 47, 1);
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	net = create_network(f, "back");
	db = create_service_on(f, "db", REPLICAS, "back");
	wait_tasks(f, db, w1->node_id, REPLICAS, ids);
	run_for(f, 2 * SEC);
	ns = net_last(w1, 0, net, &count);
	assert_non_null(ns);
	assert_int_equal(ns->n_endpoints, REPLICAS);
	assert_int_equal(ns->base_digest, 0);
	digest = ns->digest;
	w1->net_id = net;
	w1->net_digest = digest;

	from = w1->rx_count;
	fake_own_status(w1, ids[3], CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_int_equal(count, 1);
	assert_int_equal(ns->base_digest, digest);
	assert_true(ns->digest != digest);
	assert_int_equal(ns->n_endpoints, 0);
	assert_int_equal(ns->n_removed_endpoints, 0);
	assert_int_equal(ns->n_services, 1);
	assert_int_equal(ns->services[0]->n_backends, 1);
	w1->net_digest = ns->digest;
	digest = ns->digest;

	/* a task failed: its endpoint removed, its backend gone */
	from = w1->rx_count;
	fake_own_status(w1, ids[3], CS__TASK_STATE__TASK_STATE_FAILED, "exit 1");
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_true(count >= 1);
	assert_int_equal(ns->base_digest, digest);
	assert_int_equal(ns->n_removed_endpoints, 1);
	assert_int_equal(ns->removed_endpoints[0], ids[3]);
}

/* One manager and a fake worker w1 (merging backend deltas when deltas)
 * that runs up of the `replicas` tasks of service db (ids[0..replicas)),
 * on network back, and holds back's state (its digest). Returns w1; *net
 * and *db are the network's and service's ids. */
static struct fake *backend_world(struct fixture *f, bool deltas, size_t replicas,
				  size_t up, uint64_t *net, uint64_t *db, uint64_t *ids)
{
	struct fake *w1;
	const Cs__NetworkState *ns;
	size_t count;

	w1 = boot_w1(f, 61, 1);
	w1->backend_deltas = deltas;
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	*net = create_network(f, "back");
	*db = create_service_on(f, "db", replicas, "back");
	wait_tasks(f, *db, w1->node_id, replicas, ids);
	for (size_t i = 0; i < up; i++)
		fake_own_status(w1, ids[i], CS__TASK_STATE__TASK_STATE_RUNNING,
				"started");
	run_for(f, 2 * SEC);
	ns = net_last(w1, 0, *net, &count);
	assert_non_null(ns);
	w1->net_id = *net;
	w1->net_digest = ns->digest;
	run_for(f, 2 * SEC);
	return w1;
}

/* Issue 17, backend deltas: a service whose backends alone changed goes
 * in a change as the backends added and removed (backends_delta), not its
 * whole list again. */
static void test_disp_backend_change_goes_as_a_backend_delta(void **state)
{
	struct fixture *f = *state;
	enum { REPLICAS = 8, UP = 5 };
	struct fake *w1;
	const Cs__NetworkState *ns;
	uint64_t net, db, ids[REPLICAS];
	size_t from, count;
	char added[48];

	w1 = backend_world(f, true, REPLICAS, UP, &net, &db, ids);

	/* one more RUNNING: one backend added, the others not sent */
	from = w1->rx_count;
	fake_own_status(w1, ids[UP], CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_int_equal(count, 1);
	assert_int_equal(ns->base_digest, w1->net_digest);
	assert_int_equal(ns->n_services, 1);
	assert_true(ns->services[0]->backends_delta);
	assert_int_equal(ns->services[0]->n_backends, 1);
	assert_int_equal(ns->services[0]->n_removed_backends, 0);
	snprintf(added, sizeof added, "%s", ns->services[0]->backends[0]);
	{
		const Cs__Task *t = store_task_get(leader_store(f), ids[UP]);
		assert_int_equal(strncmp(t->networks[0]->addr, added, strlen(added)), 0);
	}
	w1->net_digest = ns->digest;
	run_for(f, 2 * SEC);

	/* it fails: that backend removed, alone */
	from = w1->rx_count;
	fake_own_status(w1, ids[UP], CS__TASK_STATE__TASK_STATE_FAILED, "exit 1");
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_true(count >= 1);
	assert_int_equal(ns->base_digest, w1->net_digest);
	assert_int_equal(ns->n_services, 1);
	assert_true(ns->services[0]->backends_delta);
	assert_int_equal(ns->services[0]->n_backends, 0);
	assert_int_equal(ns->services[0]->n_removed_backends, 1);
	assert_string_equal(ns->services[0]->removed_backends[0], added);
}

/* An agent that does not say it merges backend deltas (an older version
 * would take the added backends as the whole list) is sent the service
 * whole: its backends all there, no delta flag. */
static void test_disp_backend_change_whole_for_agent_without_deltas(void **state)
{
	struct fixture *f = *state;
	enum { REPLICAS = 8, UP = 5 };
	struct fake *w1;
	const Cs__NetworkState *ns;
	uint64_t net, db, ids[REPLICAS];
	size_t from, count;

	w1 = backend_world(f, false, REPLICAS, UP, &net, &db, ids);
	from = w1->rx_count;
	fake_own_status(w1, ids[UP], CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 2 * SEC);
	ns = net_last(w1, from, net, &count);
	assert_non_null(ns);
	for (size_t i = 0; i < ns->n_services; i++) {
		assert_false(ns->services[i]->backends_delta);
		assert_int_equal(ns->services[i]->n_removed_backends, 0);
		if (ns->services[i]->service_id == db)
			assert_int_equal(ns->services[i]->n_backends, UP + 1);
	}
}

/* The routing mesh: a port published in ingress mode answers on every
 * node, so every node is sent the ingress network's state (the service
 * with its ports) while some service publishes one, tasks of its own on
 * it or not. */
static void test_disp_every_node_gets_ingress_state_when_a_port_is_published(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	const Cs__NetworkState *ns = NULL;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec cs = CS__CONTAINER_SPEC__INIT;
	Cs__Placement pl = CS__PLACEMENT__INIT;
	Cs__EndpointSpec ep = CS__ENDPOINT_SPEC__INIT;
	Cs__PortConfig port = CS__PORT_CONFIG__INIT, *ports[1] = {&port};
	char *constraints[1] = {"node.hostname==nowhere"};
	struct write_result r = {0};
	char err[256] = "";
	uint64_t id = 0;

	w1 = boot_w1(f, 53, 1);
	fake_register(f, w1, "m1");
	fake_beat_start(w1, "m1");
	run_for(f, 2 * SEC);
	for (size_t i = 0; i < w1->rx_count; i++)
		assert_null(w1->rx[i].wire->network_state);
	spec.name = "web";
	spec.replicas = 1;
	cs.image = "nginx:1";
	ts.container = &cs;
	pl.n_constraints = 1;
	pl.constraints = constraints; /* placed nowhere: no task on w1 */
	ts.placement = &pl;
	spec.task = &ts;
	port.target = 80;
	port.published = 8080;
	ep.n_ports = 1;
	ep.ports = ports;
	spec.endpoint = &ep;
	assert_written(f,
		       control_service_create(mgr(f, leader(f)), &spec, &id, err,
					      sizeof err, write_done, &r),
		       &r);
	run_for(f, 3 * SEC);
	for (size_t i = 0; i < w1->rx_count; i++)
		if (w1->rx[i].wire->network_state)
			ns = w1->rx[i].wire->network_state;
	assert_non_null(ns);
	assert_true(ns->ingress);
	assert_false(ns->removed);
	/* the routing mesh: every node's own ingress address is an endpoint
	 * (w1's own among them: where it SNATs mesh traffic to), no task's:
	 * here w1 is the store's one node */
	{
		bool own = false;
		size_t with = 0;
		for (const Cs__Node *n = store_node_next(leader_store(f), NULL); n;
		     n = store_node_next(leader_store(f), n))
			with += n->ingress && n->ingress->addr && n->ingress->addr[0];
		assert_int_equal(ns->n_endpoints, with);
		for (size_t i = 0; i < ns->n_endpoints; i++) {
			const Cs__NetworkEndpoint *e = ns->endpoints[i];
			const Cs__Node *n = store_node_get(leader_store(f), e->node_id);
			assert_true(e->node_ingress);
			assert_int_equal(e->task_id, e->node_id);
			assert_non_null(n);
			assert_non_null(n->ingress);
			assert_int_equal(
				strncmp(n->ingress->addr, e->addr, strlen(e->addr)), 0);
			assert_int_equal(n->ingress->addr[strlen(e->addr)], '/');
			own |= e->node_id == w1->node_id;
		}
		assert_true(own);
	}
	assert_int_equal(ns->n_services, 1);
	assert_string_equal(ns->services[0]->name, "web");
	assert_int_equal(ns->services[0]->n_ports, 1);
	assert_int_equal(ns->services[0]->ports[0]->published, 8080);
	/* the service gone: removed */
	remove_service(f, "web");
	run_for(f, 3 * SEC);
	for (size_t i = 0; i < w1->rx_count; i++)
		if (w1->rx[i].wire->network_state)
			ns = w1->rx[i].wire->network_state;
	assert_true(ns->removed);
}

/* Item 1: a state larger than a part goes in parts, each under the
 * budget, every endpoint and service in exactly one, in order, all but
 * the last saying more; one too large alone still goes (alone). */
static void test_disp_network_state_splits_into_parts(void **state)
{
	enum { EPS = 50, SVCS = 7 };
	Cs__NetworkState whole = CS__NETWORK_STATE__INIT, p;
	Cs__NetworkEndpoint eps[EPS], *ep_ptrs[EPS];
	Cs__NetworkService svcs[SVCS], *svc_ptrs[SVCS];
	char addrs[EPS][16];
	size_t ei = 0, si = 0, parts = 0, seen_e = 0, seen_s = 0;
	(void)state;

	for (size_t i = 0; i < EPS; i++) {
		cs__network_endpoint__init(&eps[i]);
		snprintf(addrs[i], sizeof addrs[i], "10.0.3.%zu", i + 2);
		eps[i].task_id = 1000 + i;
		eps[i].addr = addrs[i];
		eps[i].node_ip = "192.168.1.1";
		ep_ptrs[i] = &eps[i];
	}
	for (size_t i = 0; i < SVCS; i++) {
		cs__network_service__init(&svcs[i]);
		svcs[i].service_id = i + 1;
		svcs[i].name = "svc";
		svc_ptrs[i] = &svcs[i];
	}
	whole.network_id = 5;
	whole.name = "back";
	whole.digest = 99;
	whole.n_endpoints = EPS;
	whole.endpoints = ep_ptrs;
	whole.n_services = SVCS;
	whole.services = svc_ptrs;
	do {
		size_t bytes = dispatcher_net_part(&whole, 200, &ei, &si, &p);
		assert_true(bytes <= 200);
		assert_true(p.n_endpoints + p.n_services > 0);
		assert_int_equal(p.network_id, 5);
		assert_int_equal(p.digest, 99);
		assert_string_equal(p.name, "back");
		for (size_t i = 0; i < p.n_endpoints; i++)
			assert_int_equal(p.endpoints[i]->task_id, 1000 + seen_e++);
		for (size_t i = 0; i < p.n_services; i++)
			assert_int_equal(p.services[i]->service_id, 1 + seen_s++);
		assert_int_equal(p.more, ei < EPS || si < SVCS);
		parts++;
	} while (p.more);
	assert_int_equal(seen_e, EPS);
	assert_int_equal(seen_s, SVCS);
	assert_true(parts >= 5);
	/* a budget smaller than one endpoint: one per part, never stuck */
	ei = si = 0;
	dispatcher_net_part(&whole, 1, &ei, &si, &p);
	assert_int_equal(p.n_endpoints, 1);
	assert_true(p.more);
}

static void test_disp_first_assignments_full_then_numbered_changes(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	size_t from;
	const Cs__Wire *w;
	uint64_t web, db, web_ids[2], db_ids[1], added[8], removed[8];
	size_t n_added, n_removed;

	w1 = boot_w1(f, 31, 1);
	from = w1->rx_count;
	fake_register(f, w1, "m1");
	/* nothing assigned yet: an empty full set, number 1 */
	w = wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 1 * SEC);
	assert_non_null(w);
	assert_true(w->assignments->full);
	assert_int_equal(w->assignments->seq, 1);
	assert_int_equal(w->assignments->session_id, w1->session_id);
	assert_int_equal(w->assignments->n_tasks, 0);

	/* tasks placed on the node come as changes */
	from = w1->rx_count;
	web = create_service(f, "web", 2, NULL);
	wait_tasks(f, web, w1->node_id, 2, web_ids);
	run_for(f, 1 * SEC);
	assert_true(fake_count(w1, RX_ASSIGNMENTS, from) >= 1);
	assert_numbered(w1, 0, w1->session_id, 1);
	collect(w1, from, w1->session_id, false, added, &n_added, removed, &n_removed);
	assert_int_equal(n_added, 2);
	assert_true(ids_has(added, n_added, web_ids[0]));
	assert_true(ids_has(added, n_added, web_ids[1]));
	assert_int_equal(n_removed, 0);
	assert_int_equal(fake_count(w1, RX_ASSIGNMENTS, from),
			 fake_count(w1, RX_ASSIGNMENTS, 0) - 1);
	/* what an agent needs to run them: the spec and the service's name */
	w = fake_last(w1, RX_ASSIGNMENTS);
	assert_false(w->assignments->full);
	assert_true(w->assignments->n_tasks >= 1);
	assert_string_equal(w->assignments->tasks[0]->service_name, "web");
	assert_non_null(w->assignments->tasks[0]->spec);
	assert_string_equal(w->assignments->tasks[0]->spec->container->image, "nginx:1");
	assert_int_equal(w->assignments->tasks[0]->node_id, w1->node_id);

	/* a task's status as its agent reported it is not sent back (issue
	 * 18: the agent's own news; SwarmKit's Assignments skips it too) */
	from = w1->rx_count;
	fake_own_status(w1, web_ids[0], CS__TASK_STATE__TASK_STATE_ACCEPTED, "accepted");
	run_for(f, 2 * SEC);
	assert_int_equal(task_get(f, web_ids[0])->status->state,
			 CS__TASK_STATE__TASK_STATE_ACCEPTED);
	assert_int_equal(fake_count(w1, RX_ASSIGNMENTS, from), 0);

	/* another service: only its task is added */
	from = w1->rx_count;
	db = create_service(f, "db", 1, NULL);
	wait_tasks(f, db, w1->node_id, 1, db_ids);
	run_for(f, 1 * SEC);
	collect(w1, from, w1->session_id, false, added, &n_added, removed, &n_removed);
	assert_int_equal(n_added, 1);
	assert_int_equal(added[0], db_ids[0]);

	/* a service removed: its tasks come again, desired REMOVE, so that
	 * the agent stops them and says so; they leave the assignments once
	 * stopped (SwarmKit's rule: removed while still running, a task would
	 * stay in the store for ever) */
	from = w1->rx_count;
	remove_service(f, "web");
	run_for(f, 2 * SEC);
	collect(w1, from, w1->session_id, false, added, &n_added, removed, &n_removed);
	assert_int_equal(n_removed, 0);
	assert_true(ids_has(added, n_added, web_ids[0]));
	assert_true(ids_has(added, n_added, web_ids[1]));
	assert_false(ids_has(added, n_added, db_ids[0]));
	/* one session, numbered 1, 2, 3... without a gap, only the first full */
	assert_numbered(w1, 0, w1->session_id, 1);
	for (size_t i = 1; i < fake_count(w1, RX_ASSIGNMENTS, 0); i++)
		assert_false(fake_nth(w1, RX_ASSIGNMENTS, 0, i)->assignments->full);

	/* a new session starts again with a full set of what is assigned */
	from = w1->rx_count;
	fake_register(f, w1, "m1");
	w = wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 1 * SEC);
	assert_non_null(w);
	assert_true(w->assignments->full);
	assert_int_equal(w->assignments->seq, 1);
	assert_int_equal(w->assignments->session_id, w1->session_id);
	/* db's task, and web's two, still to be stopped (desired REMOVE) */
	assert_int_equal(w->assignments->n_tasks, 3);
	{
		size_t removing = 0;
		bool has_db = false;
		for (size_t i = 0; i < w->assignments->n_tasks; i++) {
			const Cs__Task *t = w->assignments->tasks[i];
			has_db |= t->id == db_ids[0];
			removing += t->desired_state == CS__TASK_STATE__TASK_STATE_REMOVE;
		}
		assert_true(has_db);
		assert_int_equal(removing, 2);
	}
}

static void test_disp_resync_request_gets_full_set_again(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	size_t from;
	const Cs__Wire *w;
	uint64_t web, ids[3], session, last_seq;

	w1 = boot_w1(f, 32, 1);
	fake_register(f, w1, "m1");
	session = w1->session_id;
	web = create_service(f, "web", 3, NULL);
	wait_tasks(f, web, w1->node_id, 3, ids);
	run_for(f, 1 * SEC);
	last_seq = fake_last(w1, RX_ASSIGNMENTS)->assignments->seq;
	assert_true(last_seq >= 2);
	/* the agent saw a gap: it asks for the next number again */
	from = w1->rx_count;
	fake_session(w1, "m1", w1->node_id, session, last_seq + 1);
	w = wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 1 * SEC);
	assert_non_null(w);
	assert_true(w->assignments->full);
	assert_int_equal(w->assignments->session_id, session);
	assert_int_equal(w->assignments->seq, last_seq + 1);
	assert_int_equal(w->assignments->n_tasks, 3);
	for (size_t i = 0; i < 3; i++)
		assert_true(ids_has(ids, 3, w->assignments->tasks[i]->id));
	/* the same session goes on: no new session, heartbeats still good */
	run_for(f, 1 * SEC);
	assert_int_equal(fake_count(w1, RX_SESSION, from), 0);
	fake_heartbeat(w1, "m1", w1->node_id, session);
	w = wait_rx(f, w1, RX_HEARTBEAT, from, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, 0);
	/* and later changes continue from the resync's number */
	from = w1->rx_count;
	create_service(f, "db", 1, NULL);
	w = wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 2 * SEC);
	assert_non_null(w);
	assert_false(w->assignments->full);
	assert_int_equal(w->assignments->seq, last_seq + 2);
}

static bool leader_stepped_down(struct fixture *f, void *ctx)
{
	return !manager_is_leader(mgr(f, *(uint32_t *)ctx));
}

/* A leader cut off from the other managers steps down (libraft: no
 * majority heard within an election timeout), and the manager stops its
 * leader components at its next look (every tenth of a tick). A frame
 * arriving between the two is not the dispatcher's: an agent is told the
 * manager does not lead, never answered as if it still did. */
static void test_disp_no_frame_served_once_raft_stepped_down(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint32_t l, groups[8] = {0};
	size_t from;
	const Cs__Wire *w;
	const char *name;

	setup(f, 41, 3);
	l = wait_leader(f);
	name = world_node_name(f->w, l);
	w1 = fake_add(f, "w1");
	run_for(f, 2 * SEC); /* the CA's record of the node is written */
	fake_register(f, w1, name);
	assert_true(world_node_count(f->w) <= 8);
	for (uint32_t i = 0; i < world_node_count(f->w); i++)
		groups[i] = i == l || i == w1->node ? 1 : 2;
	assert_int_equal(world_net_partition(f->w, groups, world_node_count(f->w), 0), 0);
	assert_true(run_until(f, 60 * SEC, leader_stepped_down, &l));
	from = w1->rx_count;
	fake_heartbeat(w1, name, w1->node_id, w1->session_id);
	w = wait_rx(f, w1, RX_HEARTBEAT, from, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, CS_ENOTLEADER);
}

/* Issue 18: a busy leader's agent asks again for a session it was not
 * answered in two ticks (often after a detour through a follower). The
 * same request on the same connection, before the agent was heard on
 * the session it was given, gets that session again: not a second session
 * (a second full set, every task state reported again). Its full set is
 * not sent again either: the answer names the last seq sent, and an agent
 * that lost the set asks for it. Once heard on it, or in other words, a
 * request opens a new one. */
static void test_disp_same_session_request_again_gets_the_same_session(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	size_t from;
	const Cs__Wire *w;
	uint64_t s2, web, ids[2], last_seq;

	w1 = boot_w1(f, 43, 1);
	fake_register(f, w1, "m1");
	web = create_service(f, "web", 2, NULL);
	wait_tasks(f, web, w1->node_id, 2, ids);
	run_for(f, 1 * SEC);
	/* a new session, asked in the words a known node uses */
	from = w1->rx_count;
	fake_session(w1, "m1", w1->node_id, 0, 0);
	w = wait_rx(f, w1, RX_SESSION, from, 1, 5 * SEC);
	assert_non_null(w);
	assert_int_equal(w->session_response->status, 0);
	s2 = w->session_response->session_id;
	assert_int_not_equal(s2, w1->session_id);
	assert_int_equal(w->session_response->seq, 0); /* a new one: nothing sent */
	w = wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 5 * SEC);
	assert_non_null(w);
	last_seq = w->assignments->seq;
	/* asked again, the same words, before any heartbeat on s2: the same
	 * session, and its full set is not sent again (it went ahead of this
	 * answer); the answer names its last seq instead */
	run_for(f, 1 * SEC);
	from = w1->rx_count;
	fake_session(w1, "m1", w1->node_id, 0, 0);
	w = wait_rx(f, w1, RX_SESSION, from, 1, 5 * SEC);
	assert_non_null(w);
	assert_int_equal(w->session_response->status, 0);
	assert_int_equal(w->session_response->session_id, s2);
	assert_int_equal(w->session_response->seq, last_seq);
	assert_null(wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 2 * SEC));
	/* an agent that lost it asks for it: the whole set */
	fake_session(w1, "m1", w1->node_id, s2, last_seq + 1);
	w = wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 5 * SEC);
	assert_non_null(w);
	assert_true(w->assignments->full);
	assert_int_equal(w->assignments->session_id, s2);
	assert_int_equal(w->assignments->n_tasks, 2);
	/* heard on s2: the same words now open a new session */
	fake_heartbeat(w1, "m1", w1->node_id, s2);
	w = wait_rx(f, w1, RX_HEARTBEAT, from, 1, 5 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, 0);
	from = w1->rx_count;
	fake_session(w1, "m1", w1->node_id, 0, 0);
	w = wait_rx(f, w1, RX_SESSION, from, 1, 5 * SEC);
	assert_non_null(w);
	assert_int_equal(w->session_response->status, 0);
	assert_int_not_equal(w->session_response->session_id, s2);
}

/* Issue 18: the dispatcher answers an agent on the connection of its
 * latest frame and never dials it. The agent's process restarts without
 * a word (its old connection is gone): a task assigned to it meanwhile is
 * not dialled to the new process; its next heartbeat, on its new
 * connection, is answered there with the number of the change it missed,
 * and its resync gets the whole set, the task in it. Before, the change
 * went to the node's address (a dial), to whatever process listened. */
static void test_disp_answers_on_the_session_connection_never_dialled(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	struct env *env;
	size_t from;
	const Cs__Wire *w;
	uint64_t web, id, session, last_seq;

	w1 = boot_w1(f, 33, 1);
	fake_register(f, w1, "m1");
	session = w1->session_id;
	run_for(f, 1 * SEC);
	w = fake_last(w1, RX_ASSIGNMENTS);
	assert_non_null(w); /* the session's first (empty) full set */
	last_seq = w->assignments->seq;
	/* the agent's process dies and comes back: its connection is gone */
	assert_int_equal(world_node_kill(f->w, w1->node, false, false), 0);
	assert_int_equal(world_node_start(f->w, w1->node), 0);
	env = world_node_env(f->w, w1->node);
	assert_int_equal(env->ops->listen(env, fake_recv, NULL, w1), 0);
	from = w1->rx_count;
	web = create_service(f, "web", 1, NULL);
	wait_tasks(f, web, w1->node_id, 1, &id);
	run_for(f, 1 * SEC);
	assert_int_equal(w1->rx_count, from); /* nothing dialled to it */
	/* its heartbeat on the new connection: answered there, with the
	 * number of the change it missed */
	fake_heartbeat(w1, "m1", w1->node_id, session);
	w = wait_rx(f, w1, RX_HEARTBEAT, from, 1, 1 * SEC);
	assert_non_null(w);
	assert_int_equal(w->heartbeat_response->status, 0);
	assert_true(w->heartbeat_response->seq > last_seq);
	/* the gap: it asks for everything again, and gets the task */
	from = w1->rx_count;
	fake_session(w1, "m1", w1->node_id, session, last_seq + 1);
	w = wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 1 * SEC);
	assert_non_null(w);
	assert_true(w->assignments->full);
	assert_int_equal(w->assignments->session_id, session);
	assert_int_equal(w->assignments->n_tasks, 1);
	assert_int_equal(w->assignments->tasks[0]->id, id);
	/* and the changes after it come on that connection too */
	from = w1->rx_count;
	fake_status(w1, "m1", w1->node_id, session, id,
		    CS__TASK_STATE__TASK_STATE_ACCEPTED, "accepted");
	w = wait_rx(f, w1, RX_ACK, from, 1, 2 * SEC);
	assert_non_null(w);
}

/* ---------------------------------------------------------------- status */

/* The StatusAck for task_id at or after from, or NULL. */
static const Cs__StatusAck *find_ack(const struct fake *fk, size_t from, uint64_t task_id)
{
	for (size_t i = from; i < fk->rx_count; i++) {
		const Cs__StatusAck *a = fk->rx[i].wire->status_ack;
		if (!a)
			continue;
		for (size_t j = 0; j < a->n_task_ids; j++)
			if (a->task_ids[j] == task_id)
				return a;
	}
	return NULL;
}

static uint32_t ack_state(const Cs__StatusAck *a, uint64_t task_id)
{
	for (size_t j = 0; j < a->n_task_ids && j < a->n_states; j++)
		if (a->task_ids[j] == task_id)
			return a->states[j];
	fail_msg("task %" PRIx64 " not in the ack", task_id);
	return 0;
}

/* One fake registered with one task of service web assigned; returns it. */
static uint64_t one_task(struct fixture *f, struct fake **out)
{
	uint64_t web, id;
	*out = fake_add(f, "w1");
	fake_register(f, *out, "m1");
	fake_beat_start(*out, "m1");
	web = create_service(f, "web", 1, NULL);
	wait_tasks(f, web, (*out)->node_id, 1, &id);
	return id;
}

/* Reports and waits for the ack of task_id; returns it. */
static const Cs__StatusAck *report(struct fixture *f, struct fake *fk, uint64_t session,
				   uint64_t task_id, Cs__TaskState st, const char *msg)
{
	size_t from = fk->rx_count;
	fake_status(fk, "m1", fk->node_id, session, task_id, st, msg);
	for (int i = 0; i < 30 && !find_ack(fk, from, task_id); i++)
		run_for(f, 100 * MS);
	return find_ack(fk, from, task_id);
}

static void test_disp_status_moving_forward_is_written_and_acked(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	const Cs__StatusAck *ack;
	const Cs__Task *t;
	uint64_t id;

	setup(f, 41, 1);
	wait_leader(f);
	id = one_task(f, &w1);
	assert_int_equal(task_get(f, id)->status->state,
			 CS__TASK_STATE__TASK_STATE_ASSIGNED);
	ack = report(f, w1, w1->session_id, id, CS__TASK_STATE__TASK_STATE_ACCEPTED,
		     "accepted");
	assert_non_null(ack);
	assert_int_equal(ack->session_id, w1->session_id);
	assert_int_equal(ack_state(ack, id), CS__TASK_STATE__TASK_STATE_ACCEPTED);
	/* the ack comes once the write is in the store */
	t = task_get(f, id);
	assert_int_equal(t->status->state, CS__TASK_STATE__TASK_STATE_ACCEPTED);
	assert_string_equal(t->status->message, "accepted");
	/* states may be skipped: forward is forward */
	ack = report(f, w1, w1->session_id, id, CS__TASK_STATE__TASK_STATE_RUNNING,
		     "started");
	assert_non_null(ack);
	assert_int_equal(ack_state(ack, id), CS__TASK_STATE__TASK_STATE_RUNNING);
	t = task_get(f, id);
	assert_int_equal(t->status->state, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_string_equal(t->status->message, "started");
	assert_int_equal(t->node_id, w1->node_id);
}

/* A 3-manager cluster (seed), agent w1 in session with the leader and
 * running both tasks of a service "web" (ids), a second later; returns
 * the leader. */
static uint32_t open_w1_two_tasks(struct fixture *f, uint64_t seed, struct fake **w1,
				  const char **lname, uint64_t ids[2])
{
	uint32_t l;
	uint64_t web;

	setup(f, seed, 3);
	l = wait_leader(f);
	*lname = world_node_name(f->w, l);
	*w1 = fake_add(f, "w1");
	fake_register(f, *w1, *lname);
	fake_beat_start(*w1, *lname);
	web = create_service(f, "web", 2, NULL);
	wait_tasks(f, web, (*w1)->node_id, 2, ids);
	run_for(f, 1 * SEC);
	return l;
}

/* The followers' messages to leader l arrive delay_us late (its writes
 * are in flight that long). */
static void followers_answer_late(struct fixture *f, uint32_t l, uint64_t delay_us)
{
	struct sim_link_rule slow = {0};

	slow.dst = l;
	slow.has_delay = true;
	slow.delay_min_us = slow.delay_max_us = delay_us;
	for (uint32_t i = 0; i < 3; i++) {
		slow.src = i;
		if (i != l)
			assert_int_equal(world_net_link(f->w, &slow), 0);
	}
}

/* Issue 18: an agent sends again what is not acknowledged every tick, and a
 * write takes longer than that at scale: a report resent while the write
 * carrying it is in flight is not written again (that write's commit
 * acknowledges it), and the reports of one write are acknowledged to the
 * agent in one StatusAck, not one frame per task. */
static void test_disp_status_resent_in_flight_is_written_once_and_acked_together(
	void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint64_t ids[2], applied;
	size_t from, acks = 0;
	const char *lname;
	uint32_t l;

	l = open_w1_two_tasks(f, 44, &w1, &lname, ids);
	/* the followers answer the leader 400 ms late: a write is in flight
	 * that long */
	followers_answer_late(f, l, 400 * MS);
	applied = store_applied(leader_store(f));
	from = w1->rx_count;
	for (int k = 0; k < 2; k++)
		fake_status(w1, lname, w1->node_id, w1->session_id, ids[k],
			    CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 300 * MS); /* flushed after 100 ms, not committed yet */
	assert_null(find_ack(w1, from, ids[0]));
	for (int k = 0; k < 2; k++)
		fake_status(w1, lname, w1->node_id, w1->session_id, ids[k],
			    CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 3 * SEC);
	world_net_heal(f->w);
	assert_int_equal(store_applied(leader_store(f)), applied + 1);
	for (size_t i = from; i < w1->rx_count; i++) {
		const Cs__StatusAck *a = w1->rx[i].wire->status_ack;
		if (!a)
			continue;
		acks++;
		assert_int_equal(a->n_task_ids, 2);
		assert_int_equal(ack_state(a, ids[0]),
				 CS__TASK_STATE__TASK_STATE_RUNNING);
		assert_int_equal(ack_state(a, ids[1]),
				 CS__TASK_STATE__TASK_STATE_RUNNING);
	}
	assert_int_equal(acks, 1);
	for (int k = 0; k < 2; k++)
		assert_int_equal(task_get(f, ids[k])->status->state,
				 CS__TASK_STATE__TASK_STATE_RUNNING);
}

/* Issue 18: status writes that commit while another is in flight have
 * their acks held for it, and the agent gets them in one StatusAck (it got
 * one frame per write: at scale, several writes a burst, each acked to
 * every agent); once no write is in flight nor queued, they go. */
static void test_disp_status_acks_of_writes_in_flight_go_together(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint64_t ids[2], applied;
	size_t from, acks = 0;
	const char *lname;
	uint32_t l;

	l = open_w1_two_tasks(f, 45, &w1, &lname, ids);
	/* the followers answer the leader 400 ms late: a write is in flight
	 * that long */
	followers_answer_late(f, l, 400 * MS);
	applied = store_applied(leader_store(f));
	from = w1->rx_count;
	/* two reports 200 ms apart: two writes, the second proposed while
	 * the first is in flight */
	fake_status(w1, lname, w1->node_id, w1->session_id, ids[0],
		    CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 200 * MS);
	fake_status(w1, lname, w1->node_id, w1->session_id, ids[1],
		    CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 3 * SEC);
	world_net_heal(f->w);
	assert_int_equal(store_applied(leader_store(f)), applied + 2);
	for (size_t i = from; i < w1->rx_count; i++) {
		const Cs__StatusAck *a = w1->rx[i].wire->status_ack;
		if (!a)
			continue;
		acks++;
		assert_int_equal(a->n_task_ids, 2);
		assert_int_equal(ack_state(a, ids[0]),
				 CS__TASK_STATE__TASK_STATE_RUNNING);
		assert_int_equal(ack_state(a, ids[1]),
				 CS__TASK_STATE__TASK_STATE_RUNNING);
	}
	assert_int_equal(acks, 1);
	/* a write alone is acked once committed, not held */
	from = w1->rx_count;
	fake_status(w1, lname, w1->node_id, w1->session_id, ids[0],
		    CS__TASK_STATE__TASK_STATE_COMPLETE, "done");
	run_for(f, 300 * MS);
	assert_non_null(find_ack(w1, from, ids[0]));
}

/* ... and held no longer than DISP_ACK_HOLD_MS (500 ms): a write that
 * commits while a report is queued for the next, which is then slow, is
 * acked by then, before the next commits. */
static void test_disp_status_acks_held_go_within_the_hold_time(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint64_t ids[2], applied;
	size_t from;
	const char *lname;
	uint32_t l;

	l = open_w1_two_tasks(f, 45, &w1, &lname, ids);
	from = w1->rx_count;
	applied = store_applied(leader_store(f));
	/* A's write is proposed at about 101 ms and commits at about 106 */
	fake_status(w1, lname, w1->node_id, w1->session_id, ids[0],
		    CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 102 * MS);
	assert_int_equal(store_applied(leader_store(f)), applied);
	/* B is queued when it commits */
	fake_status(w1, lname, w1->node_id, w1->session_id, ids[1],
		    CS__TASK_STATE__TASK_STATE_RUNNING, "started");
	run_for(f, 8 * MS);
	assert_int_equal(store_applied(leader_store(f)), applied + 1);
	/* and B's write, at about 200 ms, is answered 1.5 s late */
	followers_answer_late(f, l, 1500 * MS);
	run_for(f, 40 * MS);
	assert_null(find_ack(w1, from, ids[0])); /* held */
	run_for(f, 650 * MS);
	assert_non_null(find_ack(w1, from, ids[0])); /* the hold is over */
	assert_null(find_ack(w1, from, ids[1]));
	assert_int_equal(store_applied(leader_store(f)), applied + 1);
	world_net_heal(f->w);
	run_for(f, 3 * SEC);
	assert_non_null(find_ack(w1, from, ids[1]));
}

/* Issue 18: an agent's report is its own news: the task is not sent back
 * to it as a change (it was, with its spec, for every report); a change of
 * what the agent runs still is. */
static void test_disp_status_report_is_not_sent_back_to_its_agent(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint64_t id;
	size_t from;

	setup(f, 45, 1);
	wait_leader(f);
	id = one_task(f, &w1);
	run_for(f, 1 * SEC);
	from = w1->rx_count;
	assert_non_null(report(f, w1, w1->session_id, id,
			       CS__TASK_STATE__TASK_STATE_ACCEPTED, "accepted"));
	assert_non_null(report(f, w1, w1->session_id, id,
			       CS__TASK_STATE__TASK_STATE_RUNNING, "started"));
	run_for(f, 1 * SEC);
	assert_int_equal(task_get(f, id)->status->state,
			 CS__TASK_STATE__TASK_STATE_RUNNING);
	for (size_t i = from; i < w1->rx_count; i++)
		assert_int_not_equal(rx_kind(w1->rx[i].wire), RX_ASSIGNMENTS);
	/* the service removed: the task is told to stop */
	remove_service(f, "web");
	assert_non_null(wait_rx(f, w1, RX_ASSIGNMENTS, from, 1, 5 * SEC));
}

/* Issue 18, create's timeline: the leader counts the tasks it saw placed
 * (ASSIGNED applied on a node) and the Assignments it sent as changes
 * (messages, and tasks in them), in its metrics. */
static void test_disp_counts_placements_and_assignments_sent(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	struct metrics_buf out = {0};

	setup(f, 47, 1);
	wait_leader(f);
	one_task(f, &w1);
	run_for(f, 1 * SEC);
	manager_metrics(mgr(f, leader(f)), &out);
	assert_false(out.failed);
	assert_non_null(strstr(out.text, "\ncswarm_dispatcher_tasks_placed_total 1\n"));
	assert_non_null(
		strstr(out.text,
		       "\ncswarm_dispatcher_assignments_sent_total{kind=\"tasks\"} 1\n"));
	assert_non_null(strstr(
		out.text,
		"\ncswarm_dispatcher_assignments_sent_total{kind=\"messages\"} 1\n"));
	metrics_buf_free(&out);
}

/* Issue 18: the queue holds one report a task: an agent's resend before
 * the flush replaces its queued report (the later wins) instead of
 * queueing a copy (at 5,000 agents the queue held ten reports a task). */
static void test_disp_status_resent_before_the_flush_is_queued_once(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	struct metrics_buf out = {0};
	const Cs__StatusAck *ack;
	uint64_t id;
	size_t from;

	setup(f, 46, 1);
	wait_leader(f);
	id = one_task(f, &w1);
	run_for(f, 1 * SEC);
	from = w1->rx_count;
	fake_own_status(w1, id, CS__TASK_STATE__TASK_STATE_ACCEPTED, "accepted");
	for (int k = 0; k < 4; k++)
		fake_own_status(w1, id, CS__TASK_STATE__TASK_STATE_PREPARING,
				"preparing");
	run_for(f, 30 * MS); /* delivered; the flush is 100 ms after the first */
	manager_metrics(mgr(f, leader(f)), &out);
	assert_false(out.failed);
	assert_non_null(strstr(out.text, "cswarm_dispatcher_status_reports_pending 1\n"));
	assert_non_null(
		strstr(out.text,
		       "cswarm_dispatcher_status_reports_total{fate=\"replaced\"} 4\n"));
	metrics_buf_free(&out);
	for (int i = 0; i < 30 && !find_ack(w1, from, id); i++)
		run_for(f, 100 * MS);
	ack = find_ack(w1, from, id);
	assert_non_null(ack);
	assert_int_equal(ack_state(ack, id), CS__TASK_STATE__TASK_STATE_PREPARING);
	assert_int_equal(task_get(f, id)->status->state,
			 CS__TASK_STATE__TASK_STATE_PREPARING);
	assert_string_equal(task_get(f, id)->status->message, "preparing");
}

static void test_disp_status_for_older_state_changes_nothing_and_is_acked(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	const Cs__StatusAck *ack;
	const Cs__Task *t;
	uint64_t id, version;

	setup(f, 42, 1);
	wait_leader(f);
	id = one_task(f, &w1);
	assert_non_null(report(f, w1, w1->session_id, id,
			       CS__TASK_STATE__TASK_STATE_RUNNING, "started"));
	run_for(f, 1 * SEC);
	version = task_get(f, id)->version;
	/* an older state (a late duplicate) */
	ack = report(f, w1, w1->session_id, id, CS__TASK_STATE__TASK_STATE_PREPARING,
		     "preparing");
	assert_non_null(ack);
	assert_int_equal(ack_state(ack, id), CS__TASK_STATE__TASK_STATE_PREPARING);
	/* the same state again: no news either */
	ack = report(f, w1, w1->session_id, id, CS__TASK_STATE__TASK_STATE_RUNNING,
		     "again");
	assert_non_null(ack);
	run_for(f, 1 * SEC);
	t = task_get(f, id);
	assert_int_equal(t->status->state, CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_string_equal(t->status->message, "started");
	assert_int_equal(t->version, version);
}

static void test_disp_status_from_old_session_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct fake *w1;
	uint64_t id, old, version;

	setup(f, 43, 1);
	wait_leader(f);
	id = one_task(f, &w1);
	old = w1->session_id;
	fake_register(f, w1, "m1");
	assert_int_not_equal(w1->session_id, old);
	run_for(f, 1 * SEC);
	version = task_get(f, id)->version;
	fake_status(w1, "m1", w1->node_id, old, id, CS__TASK_STATE__TASK_STATE_RUNNING,
		    "from the old session");
	run_for(f, 2 * SEC);
	assert_int_equal(task_get(f, id)->status->state,
			 CS__TASK_STATE__TASK_STATE_ASSIGNED);
	assert_int_equal(task_get(f, id)->version, version);
	/* the same report under the live session is taken */
	assert_non_null(report(f, w1, w1->session_id, id,
			       CS__TASK_STATE__TASK_STATE_RUNNING, "live"));
	assert_int_equal(task_get(f, id)->status->state,
			 CS__TASK_STATE__TASK_STATE_RUNNING);
}

static void test_disp_status_for_another_nodes_task_changes_nothing_and_is_acked(
	void **state)
{
	struct fixture *f = *state;
	struct fake *w1, *w2;
	const Cs__StatusAck *ack;
	uint64_t s1, s2, id1, id2, version;

	w1 = boot_w1(f, 44, 1);
	w2 = fake_add(f, "w2");
	fake_register(f, w1, "m1");
	fake_register(f, w2, "m1");
	fake_beat_start(w1, "m1");
	fake_beat_start(w2, "m1");
	s1 = create_service(f, "one", 1, "node.hostname==w1");
	s2 = create_service(f, "two", 1, "node.hostname==w2");
	wait_tasks(f, s1, w1->node_id, 1, &id1);
	wait_tasks(f, s2, w2->node_id, 1, &id2);
	run_for(f, 1 * SEC);
	version = task_get(f, id2)->version;
	/* w1 reports w2's task */
	ack = report(f, w1, w1->session_id, id2, CS__TASK_STATE__TASK_STATE_FAILED,
		     "not mine");
	assert_non_null(ack);
	assert_int_equal(ack->session_id, w1->session_id);
	assert_int_equal(ack_state(ack, id2), CS__TASK_STATE__TASK_STATE_FAILED);
	run_for(f, 1 * SEC);
	assert_int_equal(task_get(f, id2)->status->state,
			 CS__TASK_STATE__TASK_STATE_ASSIGNED);
	assert_int_equal(task_get(f, id2)->version, version);
	assert_null(find_ack(w2, 0, id2));
	/* w1's own task is still its to report */
	assert_non_null(report(f, w1, w1->session_id, id1,
			       CS__TASK_STATE__TASK_STATE_RUNNING, "mine"));
	assert_int_equal(task_get(f, id1)->status->state,
			 CS__TASK_STATE__TASK_STATE_RUNNING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_disp_new_node_gets_ids_period_and_ready_node_before_reply,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_follower_answers_not_leader_with_leader_address,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_known_node_keeps_its_id_on_a_new_session, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(test_disp_node_ip_is_the_observed_peer_ip,
						fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(test_disp_session_writes_node_description,
						fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(test_disp_heartbeats_keep_node_ready,
						fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_marks_silent_node_down_after_three_periods, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_heartbeat_with_wrong_session_is_stale, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_new_leader_gives_ready_nodes_three_periods_grace,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_heartbeat_without_session_in_grace_is_stale,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_node_registered_just_before_failover_goes_down_when_silent,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_first_assignments_full_then_numbered_changes,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_no_frame_served_once_raft_stepped_down, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_same_session_request_again_gets_the_same_session,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_resync_request_gets_full_set_again, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_assignments_larger_than_a_frame_go_in_parts,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_network_state_sent_changed_and_removed, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_network_keys_given_on_the_session, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_new_session_builds_no_network_state_again, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_backend_change_goes_as_a_backend_delta, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_backend_change_whole_for_agent_without_deltas,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_network_state_change_goes_as_a_delta, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_every_node_gets_ingress_state_when_a_port_is_published,
			fixture_new, fixture_free),
		cmocka_unit_test(test_disp_network_state_splits_into_parts),
		cmocka_unit_test_setup_teardown(
			test_disp_answers_on_the_session_connection_never_dialled,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_moving_forward_is_written_and_acked, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_resent_in_flight_is_written_once_and_acked_together,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_acks_of_writes_in_flight_go_together,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_acks_held_go_within_the_hold_time, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_report_is_not_sent_back_to_its_agent,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_resent_before_the_flush_is_queued_once,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_counts_placements_and_assignments_sent, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_for_older_state_changes_nothing_and_is_acked,
			fixture_new, fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_from_old_session_changes_nothing, fixture_new,
			fixture_free),
		cmocka_unit_test_setup_teardown(
			test_disp_status_for_another_nodes_task_changes_nothing_and_is_acked,
			fixture_new, fixture_free),
	};
	return cmocka_run_group_tests_name("dispatcher", tests, NULL, NULL);
}
