/* Tests of the cluster's CA (core/ca.c). Its pure parts (ca_token_role,
 * ca_cluster_new, ca_cert_life) on hand-made records; the component on the
 * simulator: real managers (manager_program) and bare nodes that play
 * joiners and renewing nodes with hand-made CertRequest frames, recording
 * every CertResponse that comes back on their connection. Refusals are
 * checked by their exact words, in the answer and in the manager's log;
 * grants by the certificate's fields and the Node record the CA writes
 * (cert_key, cert_role) before it answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ca.h"
#include "core/errors.h"
#include "core/limits.h"
#include "core/manager.h"
#include "core/pki.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/world.h"
#include "tests/support/simstep.h"

#define SEC 1000000ull

#define FAKES_MAX 4
#define LOGS_MAX  8192

/* One CertResponse a fake received. */
struct answer {
	int status;
	char error[PKI_WHY_BYTES];
	char leader[32];
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
	uint8_t root[PKI_DER_BYTES_MAX];
	size_t root_len;
	size_t n_roots;
};

struct fixture;

/* A bare node asking for certificates. */
struct fake {
	struct fixture *f;
	uint32_t node;
	char name[16];
	struct answer *rx;
	size_t rx_count, rx_cap;
	size_t others; /* frames that were not CertResponses */
	uint8_t csr[PKI_DER_BYTES_MAX];
	size_t csr_len;
};

struct fixture {
	struct world *w;
	struct simcluster *c;
	struct scn_settings settings;
	uint32_t managers; /* m1..mN on nodes 0..N-1 */
	struct fake fakes[FAKES_MAX];
	size_t fake_count;
	char *logs[LOGS_MAX]; /* "<node name>: <line>" */
	size_t log_count;
};

/* ---------------------------------------------------------------- the world */

static void on_log(void *ctx, const struct world *w, uint32_t node,
		   enum env_log_level level, const char *msg)
{
	struct fixture *f = ctx;
	char line[512];
	(void)level;
	if (f->log_count == LOGS_MAX)
		return;
	snprintf(line, sizeof line, "%s: %s", world_node_name(w, node), msg);
	f->logs[f->log_count] = malloc(strlen(line) + 1);
	assert_non_null(f->logs[f->log_count]);
	memcpy(f->logs[f->log_count], line, strlen(line) + 1);
	f->log_count++;
}

/* Lines that contain `what`. */
static size_t logged(const struct fixture *f, const char *what)
{
	size_t n = 0;
	for (size_t i = 0; i < f->log_count; i++)
		n += strstr(f->logs[i], what) != NULL;
	return n;
}

static void setup(struct fixture *f, uint64_t seed, uint32_t managers)
{
	memset(f, 0, sizeof *f);
	f->w = world_new(seed);
	assert_non_null(f->w);
	world_set_log(f->w, on_log, f);
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

static int fixture_new(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state ? 0 : -1;
}

static int fixture_free(void **state)
{
	struct fixture *f = *state;
	if (f->w) {
		world_free(f->w);
		simcluster_free(f->c);
	}
	for (size_t i = 0; i < f->fake_count; i++)
		free(f->fakes[i].rx);
	for (size_t i = 0; i < f->log_count; i++)
		free(f->logs[i]);
	free(f);
	return 0;
}

typedef bool (*pred_fn)(struct fixture *f, void *ctx);

static bool run_until(struct fixture *f, us_t limit, pred_fn pred, void *ctx)
{
	us_t end = world_now_us(f->w) + limit;
	while (!pred || !pred(f, ctx))
		if (!simstep(f->w, f->c, false, end))
			return pred ? pred(f, ctx) : true;
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

/* A leader every manager follows, its cluster record (and CA) in place
 * and its components started (it serves). */
static bool settled_leader(struct fixture *f, void *ctx)
{
	int64_t l = simcluster_leader(f->c);
	const Cs__Cluster *c;
	(void)ctx;
	if (l < 0 || !mgr(f, (uint32_t)l) || !manager_serves(mgr(f, (uint32_t)l)))
		return false;
	for (uint32_t i = 0; i < f->managers; i++) {
		struct manager *m = mgr(f, i);
		if (m && manager_leader(m) != manager_raft_id(mgr(f, (uint32_t)l)))
			return false;
		if (m && !store_cluster(manager_store(m)))
			return false;
	}
	c = store_cluster(manager_store(mgr(f, (uint32_t)l)));
	return c && c->ca_cert.len > 0;
}

static uint32_t leader(struct fixture *f)
{
	int64_t l = simcluster_leader(f->c);
	assert_true(l >= 0);
	return (uint32_t)l;
}

static uint32_t wait_leader(struct fixture *f)
{
	assert_true(run_until(f, 60 * SEC, settled_leader, NULL));
	return leader(f);
}

static const struct store *lstore(struct fixture *f)
{
	return manager_store(mgr(f, leader(f)));
}

static const Cs__Cluster *lcluster(struct fixture *f)
{
	const Cs__Cluster *c = store_cluster(lstore(f));
	assert_non_null(c);
	return c;
}

struct write_wait {
	bool done;
	int status;
};

static void write_cb(void *data, int status)
{
	struct write_wait *ww = data;
	ww->done = true;
	ww->status = status;
}

static bool write_done(struct fixture *f, void *ctx)
{
	(void)f;
	return ((struct write_wait *)ctx)->done;
}

/* Commits a batch through the leader. */
static void commit(struct fixture *f, struct store_batch *b)
{
	struct write_wait ww = {0};
	uint8_t *buf;
	size_t len;
	struct manager *m = mgr(f, leader(f));

	assert_int_equal(store_batch_encode(b, manager_raft_id(m), 0, &buf, &len), 0);
	store_batch_free(b);
	assert_int_equal(manager_write(m, buf, len, write_cb, &ww), 0);
	free(buf);
	assert_true(run_until(f, 10 * SEC, write_done, &ww));
	assert_int_equal(ww.status, 0);
}

/* ---------------------------------------------------------------- fakes */

static void fake_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		      void *data)
{
	struct fake *fk = data;
	Cs__Wire *wire = cs__wire__unpack(NULL, len, buf);
	const Cs__CertResponse *r;
	struct answer *a;

	(void)env;
	(void)from;
	assert_non_null(wire);
	if (!wire->cert_response) {
		fk->others++;
		cs__wire__free_unpacked(wire, NULL);
		return;
	}
	r = wire->cert_response;
	if (fk->rx_count == fk->rx_cap) {
		size_t cap = fk->rx_cap ? fk->rx_cap * 2 : 16;
		struct answer *p = realloc(fk->rx, cap * sizeof *p);
		assert_non_null(p);
		fk->rx = p;
		fk->rx_cap = cap;
	}
	a = &fk->rx[fk->rx_count++];
	memset(a, 0, sizeof *a);
	a->status = r->status;
	snprintf(a->error, sizeof a->error, "%s", r->error ? r->error : "");
	snprintf(a->leader, sizeof a->leader, "%s", r->leader ? r->leader : "");
	assert_true(r->cert.len <= sizeof a->cert);
	if (r->cert.len)
		memcpy(a->cert, r->cert.data, r->cert.len);
	a->cert_len = r->cert.len;
	a->n_roots = r->n_roots;
	if (r->n_roots) {
		assert_true(r->roots[0].len <= sizeof a->root);
		memcpy(a->root, r->roots[0].data, r->roots[0].len);
		a->root_len = r->roots[0].len;
	}
	cs__wire__free_unpacked(wire, NULL);
}

static struct env *fenv(struct fake *fk)
{
	return world_node_env(fk->f->w, fk->node);
}

/* A bare node, up and listening; `seed` non-NULL: it starts with cert
 * (signed by the test) for that key. */
static struct fake *fake_add(struct fixture *f, const char *name,
			     const uint8_t seed[PKI_SEED_BYTES],
			     const struct env_blob *cert, const struct env_blob *root)
{
	struct fake *fk;
	assert_true(f->fake_count < FAKES_MAX);
	fk = &f->fakes[f->fake_count++];
	fk->f = f;
	snprintf(fk->name, sizeof fk->name, "%s", name);
	assert_int_equal(world_node_add(f->w, name, NULL, NULL, &fk->node), 0);
	if (seed)
		assert_int_equal(world_pki_provision(f->w, fk->node, seed, cert, root, 1),
				 0);
	assert_int_equal(world_node_start(f->w, fk->node), 0);
	assert_int_equal(fenv(fk)->ops->listen(fenv(fk), fake_recv, NULL, fk), 0);
	return fk;
}

/* Trusts the root the token names (a joiner's first step). */
static void fake_pin(struct fake *fk, const char *token)
{
	uint8_t digest[ENV_DIGEST_BYTES];
	char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];
	assert_int_equal(pki_token_parse(token, digest, secret, why), 0);
	assert_int_equal(fenv(fk)->ops->pki_pin(fenv(fk), digest), 0);
}

/* A new key: the CSR the next requests carry. */
static void fake_new_key(struct fake *fk)
{
	assert_int_equal(
		fenv(fk)->ops->pki_csr(fenv(fk), fk->csr, sizeof fk->csr, &fk->csr_len),
		0);
}

static void fake_send(struct fake *fk, uint32_t to, const Cs__Wire *wire)
{
	struct env *env = fenv(fk);
	size_t len = cs__wire__get_packed_size(wire);
	uint8_t *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	cs__wire__pack(wire, buf);
	assert_int_equal(env->ops->send(env, world_node_name(fk->f->w, to), buf, len), 0);
	free(buf);
}

/* Sends a CertRequest with the fake's current CSR (token NULL: none). */
static void fake_ask(struct fake *fk, uint32_t to, const char *token, uint64_t node_id)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__CertRequest q = CS__CERT_REQUEST__INIT;
	if (!fk->csr_len)
		fake_new_key(fk);
	q.csr.data = fk->csr;
	q.csr.len = fk->csr_len;
	q.token = (char *)(token ? token : "");
	q.node_id = node_id;
	q.hostname = fk->name;
	wire.cert_request = &q;
	fake_send(fk, to, &wire);
}

struct count_wait {
	struct fake *fk;
	size_t n;
};

static bool has_answers(struct fixture *f, void *ctx)
{
	struct count_wait *cw = ctx;
	(void)f;
	return cw->fk->rx_count >= cw->n;
}

/* Asks and waits for the answer (the last one received). */
static const struct answer *fake_exchange(struct fake *fk, uint32_t to, const char *token,
					  uint64_t node_id)
{
	struct count_wait cw = {fk, fk->rx_count + 1};
	fake_ask(fk, to, token, node_id);
	assert_true(run_until(fk->f, 10 * SEC, has_answers, &cw));
	assert_int_equal(fk->rx_count, cw.n);
	return &fk->rx[fk->rx_count - 1];
}

/* Keeps an answer's certificate (install, as a joiner does). */
static void fake_install(struct fake *fk, const struct answer *a)
{
	struct env_blob cert = {a->cert, a->cert_len}, root = {a->root, a->root_len};
	assert_int_equal(a->status, 0);
	assert_int_equal(a->n_roots, 1);
	assert_int_equal(fenv(fk)->ops->pki_install(fenv(fk), &cert, &root, 1), 0);
	fk->csr_len = 0;
}

/* What an answer's certificate says. */
static struct env_identity cert_of(struct fake *fk, const struct answer *a)
{
	struct env_identity id;
	struct env_blob cert = {a->cert, a->cert_len};
	assert_true(a->cert_len > 0);
	assert_int_equal(fenv(fk)->ops->pki_info(fenv(fk), &cert, &id), 0);
	return id;
}

/* The refusal line a manager logs for a joiner's (or node's) request. */
static void refusal_line(char *buf, size_t size, const char *mgr_name, const char *from,
			 uint64_t node, const char *why)
{
	snprintf(buf, size,
		 "%s: msg=\"refused\" what=cert_request from=%s node=%016" PRIx64
		 " why=\"%s\"",
		 mgr_name, from, node, why);
}

/* A copy of the record of node id with another desired role (role and
 * cert_role kept), written. */
static void set_desired_role(struct fixture *f, uint64_t id, Cs__NodeRole desired)
{
	const Cs__Node *cur = store_node_get(lstore(f), id);
	Cs__Node n;
	struct store_batch b;
	assert_non_null(cur);
	n = *cur;
	n.desired_role = desired;
	store_batch_init(&b);
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &n),
			 0);
	commit(f, &b);
	assert_int_equal(store_node_get(lstore(f), id)->desired_role, desired);
}

/* ---------------------------------------------------------------- pure parts */

/* A root of cluster 0x5eed (seed fill) and its two tokens. */
struct hand_ca {
	uint8_t cert[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	size_t cert_len, key_len;
	uint8_t digest[ENV_DIGEST_BYTES];
	char worker[PKI_TOKEN_BYTES], manager[PKI_TOKEN_BYTES];
};

static void hand_ca(struct hand_ca *h, uint8_t fill)
{
	uint8_t seed[PKI_SEED_BYTES];
	memset(seed, fill, sizeof seed);
	assert_int_equal(pki_ca_create(seed, 0x5eed, 1700000000, 1800000000, 1, h->cert,
				       sizeof h->cert, &h->cert_len, h->key,
				       sizeof h->key, &h->key_len),
			 0);
	pki_digest(h->cert, h->cert_len, h->digest);
	pki_token_make(h->digest, 0x1111, 0x2222, h->worker);
	pki_token_make(h->digest, 0x3333, 0x4444, h->manager);
}

static void test_ca_token_role(void **state)
{
	struct hand_ca h, other;
	Cs__Cluster c = CS__CLUSTER__INIT;
	Cs__NodeRole role;
	char why[PKI_WHY_BYTES], tok[PKI_TOKEN_BYTES];
	(void)state;

	hand_ca(&h, 1);
	hand_ca(&other, 2);
	c.id = 0x5eed;
	c.ca_cert = (ProtobufCBinaryData){h.cert_len, h.cert};
	c.worker_token = h.worker;
	c.manager_token = h.manager;

	role = (Cs__NodeRole)-1;
	assert_int_equal(ca_token_role(&c, h.worker, &role, why), 0);
	assert_int_equal(role, CS__NODE_ROLE__NODE_ROLE_WORKER);
	assert_int_equal(ca_token_role(&c, h.manager, &role, why), 0);
	assert_int_equal(role, CS__NODE_ROLE__NODE_ROLE_MANAGER);

	assert_int_equal(ca_token_role(&c, NULL, &role, why), CS_EAUTH);
	assert_string_equal(why, "no join token");
	assert_int_equal(ca_token_role(&c, "", &role, why), CS_EAUTH);
	assert_string_equal(why, "no join token");
	assert_int_equal(ca_token_role(&c, "SWMTKN-1-abc", &role, why), CS_EAUTH);
	assert_string_equal(why,
			    "token has 3 parts, expected SWMTKN-1-<digest>-<secret>");
	/* the worker's secret under another root */
	pki_token_make(other.digest, 0x1111, 0x2222, tok);
	assert_int_equal(ca_token_role(&c, tok, &role, why), CS_EAUTH);
	assert_string_equal(why,
			    "join token names another root CA than this cluster's (a "
			    "token of another cluster, or from before a CA rotation)");
	/* this root, another secret */
	pki_token_make(h.digest, 0x1111, 0x2223, tok);
	assert_int_equal(ca_token_role(&c, tok, &role, why), CS_EAUTH);
	assert_string_equal(why, "wrong join token (rotated, or never this cluster's)");
	/* a secret that is a prefix of... no: one digit off at the end */
	snprintf(tok, sizeof tok, "%s", h.manager);
	tok[strlen(tok) - 1] = tok[strlen(tok) - 1] == '0' ? '1' : '0';
	assert_int_equal(ca_token_role(&c, tok, &role, why), CS_EAUTH);
	assert_string_equal(why, "wrong join token (rotated, or never this cluster's)");

	/* a cluster without its CA: nobody joins yet */
	c.ca_cert = (ProtobufCBinaryData){0, NULL};
	assert_int_equal(ca_token_role(&c, h.worker, &role, why), CS_EAUTH);
	assert_string_equal(why, "the cluster has no CA yet: try again");
	assert_int_equal(ca_token_role(NULL, h.worker, &role, why), CS_EAUTH);
	assert_string_equal(why, "the cluster has no CA yet: try again");

	/* a cluster whose manager token is missing still takes its worker's,
	 * and grants nothing for the other */
	c.ca_cert = (ProtobufCBinaryData){h.cert_len, h.cert};
	c.manager_token = NULL;
	assert_int_equal(ca_token_role(&c, h.worker, &role, why), 0);
	assert_int_equal(role, CS__NODE_ROLE__NODE_ROLE_WORKER);
	assert_int_equal(ca_token_role(&c, h.manager, &role, why), CS_EAUTH);
	assert_string_equal(why, "wrong join token (rotated, or never this cluster's)");
}

static void test_ca_cert_life_and_roles(void **state)
{
	Cs__Cluster c = CS__CLUSTER__INIT;
	Cs__ClusterSettings s = CS__CLUSTER_SETTINGS__INIT;
	(void)state;

	assert_int_equal(ca_cert_life(NULL), LIMIT_CERT_LIFE_MS_DEFAULT);
	assert_int_equal(ca_cert_life(&c), LIMIT_CERT_LIFE_MS_DEFAULT);
	c.settings = &s;
	assert_int_equal(ca_cert_life(&c), LIMIT_CERT_LIFE_MS_DEFAULT);
	s.cert_expiry_ms = 1000;
	assert_int_equal(ca_cert_life(&c), LIMIT_CERT_LIFE_MS_MIN);
	s.cert_expiry_ms = 2 * 3600 * 1000;
	assert_int_equal(ca_cert_life(&c), 2 * 3600 * 1000);
	assert_int_equal(ca_role_of(CS__NODE_ROLE__NODE_ROLE_MANAGER), ENV_ROLE_MANAGER);
	assert_int_equal(ca_role_of(CS__NODE_ROLE__NODE_ROLE_WORKER), ENV_ROLE_WORKER);
}

/* A minimal env for ca_cluster_new: pki_ca_create from a fixed seed,
 * random_u64 a counter. */
struct cenv {
	struct env env;
	uint64_t next;
	size_t creates;
	uint64_t cluster_id;
};

static uint64_t cenv_random(struct env *env)
{
	return ++((struct cenv *)env->impl)->next;
}

static int cenv_ca_create(struct env *env, uint64_t cluster_id, ms_t life_ms,
			  uint8_t *cert, size_t cert_cap, size_t *cert_len, uint8_t *key,
			  size_t key_cap, size_t *key_len)
{
	struct cenv *ce = env->impl;
	uint8_t seed[PKI_SEED_BYTES];
	memset(seed, 7, sizeof seed);
	ce->creates++;
	ce->cluster_id = cluster_id;
	return pki_ca_create(seed, cluster_id, 1700000000,
			     1700000000 + (int64_t)(life_ms / 1000), 1, cert, cert_cap,
			     cert_len, key, key_cap, key_len);
}

static const struct env_ops cenv_ops = {
	.random_u64 = cenv_random,
	.pki_ca_create = cenv_ca_create,
};

/* Checks that token parses and names the root whose digest is root. */
static void assert_token_names(const char *token, const uint8_t root[ENV_DIGEST_BYTES])
{
	uint8_t digest[ENV_DIGEST_BYTES];
	char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];
	assert_int_equal(pki_token_parse(token, digest, secret, why), 0);
	assert_memory_equal(digest, root, ENV_DIGEST_BYTES);
}

static void test_ca_cluster_new(void **state)
{
	struct cenv ce = {.env = {&cenv_ops, NULL}};
	struct manager_cfg cfg;
	struct ca_new *out = malloc(sizeof *out);
	struct hand_ca h, other;
	uint8_t root[ENV_DIGEST_BYTES];
	struct pki_cert pc;
	char why[PKI_WHY_BYTES];
	(void)state;

	assert_non_null(out);
	ce.env.impl = &ce;
	hand_ca(&h, 1);
	hand_ca(&other, 2);

	/* nothing given: a new root for the cluster, tokens drawn for it */
	manager_defaults(&cfg);
	cfg.worker_token = NULL;
	cfg.manager_token = NULL;
	assert_int_equal(ca_cluster_new(&ce.env, &cfg, 0xc1, out), 0);
	assert_int_equal(ce.creates, 1);
	assert_int_equal(ce.cluster_id, 0xc1);
	assert_true(out->cert_len > 0 && out->key_len > 0);
	{
		struct env_blob cert = {out->cert, out->cert_len};
		assert_int_equal(pki_read(&cert, &pc, why), 0);
		assert_int_equal(pc.cluster_id, 0xc1);
		assert_int_equal(pc.node_id, 0);
		struct env_blob key = {out->key, out->key_len};
		assert_true(pki_key_matches(&key, &cert));
	}
	pki_digest(out->cert, out->cert_len, root);
	assert_token_names(out->worker_token, root);
	assert_token_names(out->manager_token, root);
	assert_string_not_equal(out->worker_token, out->manager_token);

	/* the configuration's root and tokens (managers started together) */
	cfg.ca_cert = (struct env_blob){h.cert, h.cert_len};
	cfg.ca_key = (struct env_blob){h.key, h.key_len};
	cfg.worker_token = h.worker;
	cfg.manager_token = h.manager;
	assert_int_equal(ca_cluster_new(&ce.env, &cfg, 0x5eed, out), 0);
	assert_int_equal(ce.creates, 1);
	assert_int_equal(out->cert_len, h.cert_len);
	assert_memory_equal(out->cert, h.cert, h.cert_len);
	assert_int_equal(out->key_len, h.key_len);
	assert_memory_equal(out->key, h.key, h.key_len);
	assert_string_equal(out->worker_token, h.worker);
	assert_string_equal(out->manager_token, h.manager);

	/* tokens of another root (or malformed) are not this root's: drawn */
	cfg.worker_token = other.worker;
	cfg.manager_token = "SWMTKN-1-garbage";
	assert_int_equal(ca_cluster_new(&ce.env, &cfg, 0x5eed, out), 0);
	assert_memory_equal(out->cert, h.cert, h.cert_len);
	assert_string_not_equal(out->worker_token, other.worker);
	assert_token_names(out->worker_token, h.digest);
	assert_token_names(out->manager_token, h.digest);
	assert_string_not_equal(out->worker_token, out->manager_token);

	/* a key without its certificate: a root of its own */
	cfg.ca_cert = (struct env_blob){NULL, 0};
	cfg.worker_token = h.worker;
	assert_int_equal(ca_cluster_new(&ce.env, &cfg, 0x5eed, out), 0);
	assert_int_equal(ce.creates, 2);
	pki_digest(out->cert, out->cert_len, root);
	assert_memory_not_equal(root, h.digest, ENV_DIGEST_BYTES);
	assert_token_names(out->worker_token, root);
	free(out);
}

/* ---------------------------------------------------------------- root rotation */

#define PH_NONE	      CS__CA_ROTATION_PHASE__CA_ROTATION_NONE
#define PH_TRUST_BOTH CS__CA_ROTATION_PHASE__CA_ROTATION_TRUST_BOTH
#define PH_SIGN_NEW   CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW
#define PH_DROP_OLD   CS__CA_ROTATION_PHASE__CA_ROTATION_DROP_OLD

/* The two roots of a rotation (old: fill 1, next: fill 2) and a cluster
 * record of 0x5eed between them. */
struct rot {
	struct hand_ca old, next;
	Cs__Cluster c;
};

static void rot_init(struct rot *r)
{
	hand_ca(&r->old, 1);
	hand_ca(&r->next, 2);
	cs__cluster__init(&r->c);
	r->c.id = 0x5eed;
}

/* Puts r's record in phase as the CA leaves it: NONE, TRUST_BOTH and
 * SIGN_NEW have the old root as ca_cert (the last two the new one as
 * ca_next); DROP_OLD has the new root as ca_cert and no next one. */
static void rot_phase(struct rot *r, Cs__CaRotationPhase phase)
{
	struct hand_ca *cur = phase == PH_DROP_OLD ? &r->next : &r->old;
	bool next = phase == PH_TRUST_BOTH || phase == PH_SIGN_NEW;

	r->c.ca_cert = (ProtobufCBinaryData){cur->cert_len, cur->cert};
	r->c.ca_key = (ProtobufCBinaryData){cur->key_len, cur->key};
	r->c.ca_next_cert = next ? (ProtobufCBinaryData){r->next.cert_len, r->next.cert}
				 : (ProtobufCBinaryData){0, NULL};
	r->c.ca_next_key = next ? (ProtobufCBinaryData){r->next.key_len, r->next.key}
				: (ProtobufCBinaryData){0, NULL};
	r->c.ca_rotation = phase;
}

/* A node record as the CA writes it: the key digest (fill k), the root
 * that signed it, the roots it was told to trust (t1 NULL: one), and,
 * held, its heartbeats' word that it holds that key (cert_held). The
 * record points into h: h is not to be copied. */
struct hand_node {
	Cs__Node n;
	uint8_t key[ENV_DIGEST_BYTES], root[ENV_DIGEST_BYTES];
	uint8_t trust[2][ENV_DIGEST_BYTES];
	ProtobufCBinaryData tb[2];
};

static void hand_node(struct hand_node *h, uint64_t id, uint8_t k, const uint8_t *root,
		      const uint8_t *t0, const uint8_t *t1, bool held)
{
	memset(h, 0, sizeof *h);
	cs__node__init(&h->n);
	h->n.id = id;
	h->n.hostname = "n";
	memset(h->key, k, sizeof h->key);
	h->n.cert_key = (ProtobufCBinaryData){ENV_DIGEST_BYTES, h->key};
	if (held)
		h->n.cert_held = (ProtobufCBinaryData){ENV_DIGEST_BYTES, h->key};
	memcpy(h->root, root, ENV_DIGEST_BYTES);
	h->n.cert_root = (ProtobufCBinaryData){ENV_DIGEST_BYTES, h->root};
	memcpy(h->trust[0], t0, ENV_DIGEST_BYTES);
	h->tb[0] = (ProtobufCBinaryData){ENV_DIGEST_BYTES, h->trust[0]};
	h->n.n_cert_trust = 1;
	if (t1) {
		memcpy(h->trust[1], t1, ENV_DIGEST_BYTES);
		h->tb[1] = (ProtobufCBinaryData){ENV_DIGEST_BYTES, h->trust[1]};
		h->n.n_cert_trust = 2;
	}
	h->n.cert_trust = h->tb;
}

/* Whether node n must renew: held_len 0 (the recorded key), the recorded
 * key given as held, and another key given as held (a lost answer). */
static bool renews(const struct rot *r, const struct hand_node *h)
{
	return ca_node_should_renew(&r->c, &h->n, NULL, 0);
}

static bool renews_holding(const struct rot *r, const struct hand_node *h,
			   const uint8_t *held)
{
	return ca_node_should_renew(&r->c, &h->n, held, ENV_DIGEST_BYTES);
}

/* ca_node_should_renew, phase by phase: a record whose roots are not what
 * the phase wants renews; one that is, does not, unless the node holds
 * another key than the recorded one (an answer was lost); no rotation or
 * a removed node: never. */
static void test_ca_should_renew_by_phase(void **state)
{
	struct rot r;
	struct hand_node h;
	uint8_t other[ENV_DIGEST_BYTES];
	const uint8_t *o, *x; /* the old and the new root's digests */
	uint64_t removed[2] = {0x10, 0x11};
	(void)state;

	rot_init(&r);
	o = r.old.digest;
	x = r.next.digest;
	memset(other, 0xee, sizeof other);

	/* no rotation: nobody renews, whatever it holds */
	rot_phase(&r, PH_NONE);
	hand_node(&h, 0x11, 0xa1, o, o, NULL, true);
	assert_false(renews(&r, &h));
	assert_false(renews_holding(&r, &h, other));
	assert_false(ca_node_should_renew(NULL, &h.n, other, sizeof other));
	/* a phase without its next root is no rotation */
	r.c.ca_rotation = PH_TRUST_BOTH;
	assert_false(renews(&r, &h));
	r.c.ca_rotation = PH_SIGN_NEW;
	assert_false(renews_holding(&r, &h, other));
	/* nor a cluster without a CA */
	rot_phase(&r, PH_TRUST_BOTH);
	r.c.ca_cert = (ProtobufCBinaryData){0, NULL};
	assert_false(renews(&r, &h));

	/* TRUST_BOTH: the record must trust both roots */
	rot_phase(&r, PH_TRUST_BOTH);
	assert_false(ca_node_should_renew(&r.c, NULL, NULL, 0));
	hand_node(&h, 0x11, 0xa1, o, o, NULL, true);
	assert_true(renews(&r, &h));
	assert_true(renews_holding(&r, &h, h.key));
	hand_node(&h, 0x11, 0xa1, x, x, NULL, true); /* the new one only */
	assert_true(renews(&r, &h));
	hand_node(&h, 0x11, 0xa1, o, o, x, true);
	assert_false(renews(&r, &h));
	assert_false(renews_holding(&r, &h, h.key));
	assert_true(renews_holding(&r, &h, other)); /* an answer was lost */
	hand_node(&h, 0x11, 0xa1, o, x, o, true);   /* in any order */
	assert_false(renews(&r, &h));
	/* held_len 0 takes the recorded key as held, even before any
	 * heartbeat said so */
	hand_node(&h, 0x11, 0xa1, o, o, x, false);
	assert_false(renews(&r, &h));
	assert_false(renews_holding(&r, &h, h.key));
	/* a trusted root of another length is not that root */
	h.tb[1].len = ENV_DIGEST_BYTES - 1;
	assert_true(renews(&r, &h));
	/* no key recorded, a key held: renew */
	hand_node(&h, 0x11, 0xa1, o, o, x, true);
	h.n.cert_key = (ProtobufCBinaryData){0, NULL};
	assert_true(renews_holding(&r, &h, other));
	/* a removed node is never asked, whatever its record or key */
	hand_node(&h, 0x11, 0xa1, o, o, NULL, true);
	r.c.n_removed_nodes = 2;
	r.c.removed_nodes = removed;
	assert_false(renews(&r, &h));
	assert_false(renews_holding(&r, &h, other));
	h.n.id = 0x12; /* the same record under an id not removed */
	assert_true(renews(&r, &h));

	/* SIGN_NEW: signed by the new root, trusting both */
	rot_phase(&r, PH_SIGN_NEW);
	hand_node(&h, 0x12, 0xa2, o, o, x, true); /* TRUST_BOTH's: done there */
	assert_true(renews(&r, &h));
	assert_true(renews_holding(&r, &h, h.key));
	hand_node(&h, 0x12, 0xa2, x, x, NULL, true); /* not trusting the old */
	assert_true(renews(&r, &h));
	hand_node(&h, 0x12, 0xa2, x, x, o, true);
	assert_false(renews(&r, &h));
	assert_false(renews_holding(&r, &h, h.key));
	assert_true(renews_holding(&r, &h, other));
	h.n.id = 0x11; /* removed */
	assert_false(renews_holding(&r, &h, other));

	/* DROP_OLD: signed by the new root (now ca_cert), trusting it only */
	rot_phase(&r, PH_DROP_OLD);
	hand_node(&h, 0x12, 0xa3, x, x, o, true); /* SIGN_NEW's: done there */
	assert_true(renews(&r, &h));
	hand_node(&h, 0x12, 0xa3, o, x, NULL, true); /* signed by the old */
	assert_true(renews(&r, &h));
	hand_node(&h, 0x12, 0xa3, x, o, NULL, true); /* trusting the old */
	assert_true(renews(&r, &h));
	hand_node(&h, 0x12, 0xa3, x, x, NULL, true);
	assert_false(renews(&r, &h));
	assert_false(renews_holding(&r, &h, h.key));
	assert_true(renews_holding(&r, &h, other));
	h.n.id = 0x10; /* removed */
	assert_false(renews(&r, &h));
	assert_false(renews_holding(&r, &h, other));
	/* the old root again as ca_cert (a DROP_OLD record the CA would not
	 * write): the new root's certificate is not what it wants */
	h.n.id = 0x12;
	r.c.ca_cert = (ProtobufCBinaryData){r.old.cert_len, r.old.cert};
	assert_true(renews(&r, &h));
}

/* ca_node_holds: a heartbeat's key is written only during a rotation,
 * only when it is the recorded key, and only once. */
static void test_ca_node_holds(void **state)
{
	struct rot r;
	struct hand_node h;
	uint8_t other[ENV_DIGEST_BYTES];
	(void)state;

	rot_init(&r);
	memset(other, 0xee, sizeof other);
	hand_node(&h, 0x11, 0xa1, r.old.digest, r.old.digest, NULL, false);

	rot_phase(&r, PH_NONE);
	assert_false(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES));
	assert_false(ca_node_holds(NULL, &h.n, h.key, ENV_DIGEST_BYTES));

	rot_phase(&r, PH_TRUST_BOTH);
	assert_false(ca_node_holds(&r.c, NULL, h.key, ENV_DIGEST_BYTES));
	assert_true(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES));
	/* not the recorded key, or not a digest */
	assert_false(ca_node_holds(&r.c, &h.n, other, ENV_DIGEST_BYTES));
	assert_false(ca_node_holds(&r.c, &h.n, h.key, 0));
	assert_false(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES - 1));
	/* the record says so already: nothing to write */
	h.n.cert_held = (ProtobufCBinaryData){ENV_DIGEST_BYTES, h.key};
	assert_false(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES));
	/* it says another key was held (the previous certificate's) */
	h.n.cert_held = (ProtobufCBinaryData){ENV_DIGEST_BYTES, other};
	assert_true(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES));
	/* a record without a key */
	h.n.cert_key = (ProtobufCBinaryData){0, NULL};
	h.n.cert_held = (ProtobufCBinaryData){0, NULL};
	assert_false(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES));

	hand_node(&h, 0x11, 0xa1, r.old.digest, r.old.digest, NULL, false);
	rot_phase(&r, PH_SIGN_NEW);
	assert_true(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES));
	rot_phase(&r, PH_DROP_OLD);
	assert_true(ca_node_holds(&r.c, &h.n, h.key, ENV_DIGEST_BYTES));
}

/* Applies b to s at index, as the Raft FSM does (frees b). */
static void rot_apply(struct store *s, struct store_batch *b, uint64_t index)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_batch_encode(b, 1, 0, &buf, &len), 0);
	store_batch_free(b);
	assert_int_equal(store_apply(s, buf, len, index, NULL, NULL), 0);
	free(buf);
}

/* Writes r's record (an update: the store's version) at index. */
static void rot_write_cluster(struct store *s, struct rot *r, uint64_t index)
{
	struct store_batch b;
	r->c.version = store_cluster(s)->version;
	store_batch_init(&b);
	assert_int_equal(
		store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &r->c), 0);
	rot_apply(s, &b, index);
	assert_int_equal(store_cluster(s)->ca_rotation, r->c.ca_rotation);
}

/* Writes h's record over the store's (its version) at index. */
static void rot_write_node(struct store *s, struct hand_node *h, uint64_t index)
{
	struct store_batch b;
	const Cs__Node *cur = store_node_get(s, h->n.id);
	assert_non_null(cur);
	h->n.version = cur->version;
	store_batch_init(&b);
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &h->n),
			 0);
	rot_apply(s, &b, index);
}

/* Asserts that ca_rotation_progress counts want_done of want_total nodes
 * of s done with the phase (no Raft voters given). */
static void assert_progress(const struct store *s, size_t want_done, size_t want_total)
{
	size_t done = 99, total = 99;

	ca_rotation_progress(s, NULL, 0, &done, &total);
	assert_int_equal(done, want_done);
	assert_int_equal(total, want_total);
}

/* ca_rotation_progress on a store: a node is done with the phase when its
 * record is what the phase wants and its heartbeats said it holds the
 * recorded key; removed nodes are not counted; 0 of 0 without a rotation
 * (or a cluster). */
static void test_ca_rotation_progress(void **state)
{
	struct rot r;
	struct hand_node h[6];
	struct store *s = store_new();
	struct store_batch b;
	uint8_t other[ENV_DIGEST_BYTES];
	const uint8_t *o, *x;
	uint64_t removed[3] = {0x25, 0x26, 0};
	size_t done = 99, total = 99;
	(void)state;

	assert_non_null(s);
	rot_init(&r);
	o = r.old.digest;
	x = r.next.digest;
	memset(other, 0xee, sizeof other);

	/* no cluster yet */
	assert_progress(s, 0, 0);

	/* every node trusts the old root only: no rotation */
	rot_phase(&r, PH_NONE);
	r.c.n_removed_nodes = 2;
	r.c.removed_nodes = removed;
	hand_node(&h[0], 0x21, 0xa1, o, o, NULL, true);
	hand_node(&h[1], 0x22, 0xa2, o, o, NULL, true);
	hand_node(&h[2], 0x23, 0xa3, o, o, NULL, true);
	hand_node(&h[3], 0x24, 0xa4, o, o, NULL, true);
	hand_node(&h[4], 0x25, 0xa5, o, o, NULL, true); /* removed */
	hand_node(&h[5], 0x26, 0xa6, o, o, NULL, true); /* removed */
	store_batch_init(&b);
	assert_int_equal(
		store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &r.c), 0);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE,
						  &h[i].n),
				 0);
	rot_apply(s, &b, 1);
	assert_int_equal(store_node_count(s), 6);
	assert_progress(s, 0, 0);

	/* TRUST_BOTH: 0x21 done; 0x22's record trusts both but no heartbeat
	 * said it holds that key; 0x23 holds another key (an answer lost);
	 * 0x24 trusts the old only; 0x26 is done but removed */
	rot_phase(&r, PH_TRUST_BOTH);
	rot_write_cluster(s, &r, 2);
	assert_progress(s, 0, 4);
	hand_node(&h[0], 0x21, 0xa1, o, o, x, true);
	hand_node(&h[1], 0x22, 0xa2, o, o, x, false);
	hand_node(&h[2], 0x23, 0xa3, o, o, x, false);
	h[2].n.cert_held = (ProtobufCBinaryData){ENV_DIGEST_BYTES, other};
	hand_node(&h[5], 0x26, 0xa6, o, o, x, true);
	rot_write_node(s, &h[0], 3);
	rot_write_node(s, &h[1], 4);
	rot_write_node(s, &h[2], 5);
	rot_write_node(s, &h[5], 6);
	assert_progress(s, 1, 4);
	/* what the dispatcher asks of each (none of the removed) */
	assert_false(ca_node_should_renew(&r.c, store_node_get(s, 0x21), NULL, 0));
	assert_false(ca_node_should_renew(&r.c, store_node_get(s, 0x22), NULL, 0));
	assert_true(
		ca_node_should_renew(&r.c, store_node_get(s, 0x23), other, sizeof other));
	assert_true(ca_node_should_renew(&r.c, store_node_get(s, 0x24), NULL, 0));
	assert_false(ca_node_should_renew(&r.c, store_node_get(s, 0x25), NULL, 0));
	/* 0x22's heartbeat: written once, then it counts */
	assert_true(
		ca_node_holds(&r.c, store_node_get(s, 0x22), h[1].key, ENV_DIGEST_BYTES));
	hand_node(&h[1], 0x22, 0xa2, o, o, x, true);
	rot_write_node(s, &h[1], 7);
	assert_false(
		ca_node_holds(&r.c, store_node_get(s, 0x22), h[1].key, ENV_DIGEST_BYTES));
	assert_progress(s, 2, 4);
	/* 0x23 and 0x24 renew: all four done */
	hand_node(&h[2], 0x23, 0xb3, o, o, x, true);
	hand_node(&h[3], 0x24, 0xb4, o, x, o, true);
	rot_write_node(s, &h[2], 8);
	rot_write_node(s, &h[3], 9);
	assert_progress(s, 4, 4);
	/* a Raft voter with no record yet (a first manager before its first
	 * session) is waited for: not done; a voter with a record counts once */
	{
		const uint64_t voters[] = {0x21, 0x99};
		ca_rotation_progress(s, voters, 2, &done, &total);
		assert_int_equal(done, 4);
		assert_int_equal(total, 5);
	}

	/* SIGN_NEW: nobody's certificate is the new root's yet */
	rot_phase(&r, PH_SIGN_NEW);
	rot_write_cluster(s, &r, 10);
	assert_progress(s, 0, 4);
	hand_node(&h[0], 0x21, 0xc1, x, x, o, true);
	hand_node(&h[1], 0x22, 0xc2, x, x, o, false);	/* not seen to hold it */
	hand_node(&h[2], 0x23, 0xc3, x, x, NULL, true); /* not trusting the old */
	rot_write_node(s, &h[0], 11);
	rot_write_node(s, &h[1], 12);
	rot_write_node(s, &h[2], 13);
	assert_progress(s, 1, 4);

	/* DROP_OLD: the new root is ca_cert; done means trusting it alone */
	rot_phase(&r, PH_DROP_OLD);
	rot_write_cluster(s, &r, 14);
	assert_progress(s, 1, 4); /* 0x23, signed by and trusting the new only */
	hand_node(&h[0], 0x21, 0xd1, x, x, NULL, true);
	hand_node(&h[1], 0x22, 0xd2, x, x, NULL, true);
	hand_node(&h[3], 0x24, 0xd4, o, x, NULL, true); /* signed by the old */
	rot_write_node(s, &h[0], 15);
	rot_write_node(s, &h[1], 16);
	rot_write_node(s, &h[3], 17);
	assert_progress(s, 3, 4);
	/* 0x24 removed: the rotation no longer waits for it */
	removed[0] = 0x24;
	removed[1] = 0x25;
	removed[2] = 0x26;
	r.c.n_removed_nodes = 3;
	rot_write_cluster(s, &r, 18);
	assert_progress(s, 3, 3);

	/* over: 0 of 0 */
	rot_phase(&r, PH_NONE);
	rot_write_cluster(s, &r, 19);
	assert_progress(s, 0, 0);
	store_free(s);
}

static int cenv_ca_create_fails(struct env *env, uint64_t cluster_id, ms_t life_ms,
				uint8_t *cert, size_t cert_cap, size_t *cert_len,
				uint8_t *key, size_t key_cap, size_t *key_len)
{
	struct cenv *ce = env->impl;
	(void)cluster_id;
	(void)life_ms;
	(void)cert;
	(void)cert_cap;
	(void)cert_len;
	(void)key;
	(void)key_cap;
	(void)key_len;
	ce->creates++;
	return CS_ENOMEM;
}

static const struct env_ops cenv_failing_ops = {
	.random_u64 = cenv_random,
	.pki_ca_create = cenv_ca_create_fails,
};

/* ca_rotation_start: refused without a CA (no root made); else a new root
 * of the same cluster, in TRUST_BOTH, the rest of the record kept (a
 * rotation in progress is replaced: test_ca_rotation_replaced). */
static void test_ca_rotation_start(void **state)
{
	struct cenv ce = {.env = {&cenv_ops, NULL}};
	struct cenv fe = {.env = {&cenv_failing_ops, NULL}};
	struct rot r;
	Cs__Cluster next;
	uint8_t *cert = malloc(PKI_DER_BYTES_MAX), *key = malloc(PKI_DER_BYTES_MAX);
	uint8_t root[ENV_DIGEST_BYTES];
	uint64_t removed[1] = {0x77};
	char why[PKI_WHY_BYTES];
	struct pki_cert pc;
	struct hand_node h;
	(void)state;

	assert_non_null(cert);
	assert_non_null(key);
	ce.env.impl = &ce;
	fe.env.impl = &fe;
	rot_init(&r);

	/* no CA: no cluster, no root certificate, no root key */
	assert_int_equal(
		ca_rotation_start(&ce.env, NULL, &next, cert, key, why, sizeof why),
		CS_ENOENT);
	assert_string_equal(why, "the cluster has no root CA yet");
	memset(why, 0, sizeof why);
	assert_int_equal(
		ca_rotation_start(&ce.env, &r.c, &next, cert, key, why, sizeof why),
		CS_ENOENT);
	assert_string_equal(why, "the cluster has no root CA yet");
	rot_phase(&r, PH_NONE);
	r.c.ca_key = (ProtobufCBinaryData){0, NULL};
	memset(why, 0, sizeof why);
	assert_int_equal(
		ca_rotation_start(&ce.env, &r.c, &next, cert, key, why, sizeof why),
		CS_ENOENT);
	assert_string_equal(why, "the cluster has no root CA yet");
	assert_int_equal(ce.creates, 0);

	/* the env cannot make a root: its error, said */
	rot_phase(&r, PH_NONE);
	assert_int_equal(
		ca_rotation_start(&fe.env, &r.c, &next, cert, key, why, sizeof why),
		CS_ENOMEM);
	assert_string_equal(why, "cannot make a new root CA: out of memory");
	assert_int_equal(fe.creates, 1);

	/* started: a new root of 0x5eed next to the old one */
	r.c.ca_rotations = 3;
	r.c.worker_token = r.old.worker;
	r.c.manager_token = r.old.manager;
	r.c.n_removed_nodes = 1;
	r.c.removed_nodes = removed;
	r.c.version = 42;
	assert_int_equal(
		ca_rotation_start(&ce.env, &r.c, &next, cert, key, why, sizeof why), 0);
	assert_int_equal(ce.creates, 1);
	assert_int_equal(ce.cluster_id, 0x5eed);
	assert_int_equal(next.ca_rotation, PH_TRUST_BOTH);
	assert_ptr_equal(next.ca_next_cert.data, cert);
	assert_ptr_equal(next.ca_next_key.data, key);
	assert_true(next.ca_next_cert.len > 0 && next.ca_next_key.len > 0);
	{
		struct env_blob cb = {cert, next.ca_next_cert.len};
		struct env_blob kb = {key, next.ca_next_key.len};
		assert_int_equal(pki_read(&cb, &pc, why), 0);
		assert_int_equal(pc.cluster_id, 0x5eed);
		assert_int_equal(pc.node_id, 0);
		assert_true(pki_key_matches(&kb, &cb));
	}
	pki_digest(cert, next.ca_next_cert.len, root);
	assert_memory_not_equal(root, r.old.digest, ENV_DIGEST_BYTES);
	/* the rest is cur's */
	assert_int_equal(next.id, 0x5eed);
	assert_int_equal(next.version, 42);
	assert_ptr_equal(next.ca_cert.data, r.old.cert);
	assert_int_equal(next.ca_cert.len, r.old.cert_len);
	assert_ptr_equal(next.ca_key.data, r.old.key);
	assert_int_equal(next.ca_rotations, 3);
	assert_ptr_equal(next.worker_token, r.old.worker);
	assert_ptr_equal(next.manager_token, r.old.manager);
	assert_int_equal(next.n_removed_nodes, 1);
	assert_ptr_equal(next.removed_nodes, removed);
	assert_int_equal(r.c.ca_rotation, PH_NONE); /* cur untouched */
	assert_int_equal(r.c.ca_next_cert.len, 0);
	/* and the record it makes is a rotation: nodes of the old root renew */
	hand_node(&h, 0x11, 0xa1, r.old.digest, r.old.digest, NULL, true);
	assert_true(ca_node_should_renew(&next, &h.n, NULL, 0));
	assert_int_equal(next.ca_abandoned_cert.len, 0);
	free(cert);
	free(key);
}

/* A `ca rotate` during a rotation replaces it (SwarmKit's
 * controlapi/ca_rotation.go: "if a root rotation is already in progress,
 * just replace it and start over"), in each phase, always in TRUST_BOTH
 * with the old root signing: in TRUST_BOTH the new root takes the next
 * one's place (nothing was signed by it); in SIGN_NEW the root that signed
 * is kept as ca_abandoned_cert, trusted beside the old one while its
 * certificates are re-issued by the old root; in DROP_OLD that rotation is
 * done (its root is ca_cert, ca_rotations + 1) and the next starts from
 * it. Was refused (CS_EAGAIN) in every phase. */
static void test_ca_rotation_replaced(void **state)
{
	struct cenv ce = {.env = {&cenv_ops, NULL}};
	struct rot r;
	Cs__Cluster next;
	uint8_t *cert = malloc(PKI_DER_BYTES_MAX), *key = malloc(PKI_DER_BYTES_MAX);
	uint8_t made[ENV_DIGEST_BYTES];
	const uint8_t *o, *x; /* the old root's and the replaced one's digests */
	char why[PKI_WHY_BYTES];
	struct hand_node h;
	(void)state;

	assert_non_null(cert);
	assert_non_null(key);
	ce.env.impl = &ce;
	rot_init(&r);
	o = r.old.digest;
	x = r.next.digest;

	/* TRUST_BOTH: the next root replaced, nothing abandoned */
	rot_phase(&r, PH_TRUST_BOTH);
	r.c.ca_rotations = 2;
	assert_int_equal(
		ca_rotation_start(&ce.env, &r.c, &next, cert, key, why, sizeof why), 0);
	assert_int_equal(ce.creates, 1);
	assert_int_equal(next.ca_rotation, PH_TRUST_BOTH);
	assert_ptr_equal(next.ca_cert.data, r.old.cert);
	assert_ptr_equal(next.ca_next_cert.data, cert);
	assert_ptr_equal(next.ca_next_key.data, key);
	assert_int_equal(next.ca_abandoned_cert.len, 0);
	assert_int_equal(next.ca_rotations, 2);
	pki_digest(cert, next.ca_next_cert.len, made);
	assert_memory_not_equal(made, x, ENV_DIGEST_BYTES);
	assert_memory_not_equal(made, o, ENV_DIGEST_BYTES);
	/* a node that trusted the replaced root renews to trust the new one */
	hand_node(&h, 0x11, 0xa1, o, o, x, true);
	assert_true(ca_node_should_renew(&next, &h.n, NULL, 0));
	hand_node(&h, 0x11, 0xa1, o, o, made, true);
	assert_false(ca_node_should_renew(&next, &h.n, NULL, 0));

	/* SIGN_NEW: the root that signed is abandoned, still trusted */
	rot_phase(&r, PH_SIGN_NEW);
	assert_int_equal(
		ca_rotation_start(&ce.env, &r.c, &next, cert, key, why, sizeof why), 0);
	assert_int_equal(ce.creates, 2);
	assert_int_equal(next.ca_rotation, PH_TRUST_BOTH);
	assert_ptr_equal(next.ca_cert.data, r.old.cert);
	assert_ptr_equal(next.ca_key.data, r.old.key);
	assert_ptr_equal(next.ca_abandoned_cert.data, r.next.cert);
	assert_int_equal(next.ca_abandoned_cert.len, r.next.cert_len);
	assert_ptr_equal(next.ca_next_cert.data, cert);
	assert_int_equal(next.ca_rotations, 2);
	pki_digest(cert, next.ca_next_cert.len, made);
	/* a holder of the abandoned root's certificate is re-issued by the old
	 * root (it still trusts both it and the old); one the old root signed
	 * that trusts both is done for now; one that trusts the old alone
	 * renews (it would refuse the abandoned root's holders) */
	hand_node(&h, 0x12, 0xa2, x, x, o, true);
	assert_true(ca_node_should_renew(&next, &h.n, NULL, 0));
	hand_node(&h, 0x12, 0xa2, o, o, x, true);
	assert_false(ca_node_should_renew(&next, &h.n, NULL, 0));
	hand_node(&h, 0x12, 0xa2, o, o, NULL, true);
	assert_true(ca_node_should_renew(&next, &h.n, NULL, 0));
	/* a replacement while the abandoned root is still held keeps it */
	{
		Cs__Cluster again;
		uint8_t *cert2 = malloc(PKI_DER_BYTES_MAX);
		uint8_t *key2 = malloc(PKI_DER_BYTES_MAX);
		assert_non_null(cert2);
		assert_non_null(key2);
		assert_int_equal(ca_rotation_start(&ce.env, &next, &again, cert2, key2,
						   why, sizeof why),
				 0);
		assert_int_equal(again.ca_rotation, PH_TRUST_BOTH);
		assert_ptr_equal(again.ca_abandoned_cert.data, r.next.cert);
		assert_ptr_equal(again.ca_next_cert.data, cert2);
		assert_ptr_equal(again.ca_cert.data, r.old.cert);
		free(cert2);
		free(key2);
	}
	/* once dropped (the CA's next step), nodes renew to trust the new root */
	next.ca_abandoned_cert = (ProtobufCBinaryData){0, NULL};
	hand_node(&h, 0x12, 0xa2, o, o, x, true);
	assert_true(ca_node_should_renew(&next, &h.n, NULL, 0));
	hand_node(&h, 0x12, 0xa2, o, o, made, true);
	assert_false(ca_node_should_renew(&next, &h.n, NULL, 0));

	/* DROP_OLD: that rotation is done; the next starts from its root */
	rot_phase(&r, PH_DROP_OLD);
	assert_int_equal(
		ca_rotation_start(&ce.env, &r.c, &next, cert, key, why, sizeof why), 0);
	assert_int_equal(next.ca_rotation, PH_TRUST_BOTH);
	assert_ptr_equal(next.ca_cert.data, r.next.cert);
	assert_ptr_equal(next.ca_next_cert.data, cert);
	assert_int_equal(next.ca_abandoned_cert.len, 0);
	assert_int_equal(next.ca_rotations, 3);
	pki_digest(cert, next.ca_next_cert.len, made);
	hand_node(&h, 0x13, 0xa3, x, x, o, true);
	assert_true(ca_node_should_renew(&next, &h.n, NULL, 0));
	hand_node(&h, 0x13, 0xa3, x, x, made, true);
	assert_false(ca_node_should_renew(&next, &h.n, NULL, 0));
	free(cert);
	free(key);
}

/* ---------------------------------------------------------------- joiners refused */

/* Tokens refused, each with its words, in the answer and the log; nothing
 * written. */
static void test_ca_refuses_bad_tokens(void **state)
{
	struct fixture *f = *state;
	struct fake *fk;
	uint32_t l;
	const Cs__Cluster *c;
	char other_root[PKI_TOKEN_BYTES], wrong_secret[PKI_TOKEN_BYTES], line[512];
	uint8_t digest[ENV_DIGEST_BYTES], d2[ENV_DIGEST_BYTES];
	size_t nodes;

	setup(f, 1, 1);
	l = wait_leader(f);
	c = lcluster(f);
	pki_digest(c->ca_cert.data, c->ca_cert.len, digest);
	memcpy(d2, digest, sizeof d2);
	d2[0] ^= 1;
	pki_token_make(d2, 0x5157000000000001ull, 0x77, other_root);
	pki_token_make(digest, 0x5157000000000001ull, 0x78, wrong_secret);
	nodes = store_node_count(lstore(f));

	/* a joiner that trusts no one sends to anyone: the CA is reached
	 * whatever root the token names */
	fk = fake_add(f, "j1", NULL, NULL, NULL);
	struct {
		const char *token;
		uint64_t id;
		const char *why;
	} cases[] = {
		{"SWMTKN-1-abc", 0x101,
		 "token has 3 parts, expected SWMTKN-1-<digest>-<secret>"},
		{"SWMTKN-9-x-y", 0x102, "token does not start with SWMTKN-1-"},
		{NULL, 0x103, "no join token"},
		{other_root, 0x104,
		 "join token names another root CA than this cluster's (a token of "
		 "another cluster, or from before a CA rotation)"},
		{wrong_secret, 0x105,
		 "wrong join token (rotated, or never this cluster's)"},
		{simcluster_worker_token(f->c), 0, "no node id in the request"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct answer *a =
			fake_exchange(fk, l, cases[i].token, cases[i].id);
		assert_int_equal(a->status, CS_EAUTH);
		assert_string_equal(a->error, cases[i].why);
		assert_int_equal(a->cert_len, 0);
		assert_int_equal(a->n_roots, 0);
		refusal_line(line, sizeof line, "m1", "j1", 0, cases[i].why);
		assert_int_equal(logged(f, line), 1);
		if (cases[i].id)
			assert_null(store_node_get(lstore(f), cases[i].id));
	}
	assert_int_equal(store_node_count(lstore(f)), nodes);
	assert_int_equal(logged(f, "msg=\"certificate issued\""), 0);
}

/* ---------------------------------------------------------------- joiners granted */

static void check_granted(struct fixture *f, struct fake *fk, const struct answer *a,
			  uint64_t id, enum env_role role, Cs__NodeRole nrole,
			  const char *hostname)
{
	const Cs__Cluster *c = lcluster(f);
	const Cs__Node *n;
	struct env_identity me, issued = cert_of(fk, a);
	struct env_blob none = {NULL, 0};
	uint8_t root[ENV_DIGEST_BYTES];

	assert_int_equal(a->status, 0);
	assert_string_equal(a->error, "");
	assert_int_equal(a->n_roots, 1);
	assert_int_equal(a->root_len, c->ca_cert.len);
	assert_memory_equal(a->root, c->ca_cert.data, c->ca_cert.len);
	assert_int_equal(issued.node_id, id);
	assert_int_equal(issued.role, role);
	assert_int_equal(issued.cluster_id, c->id);
	/* the default life: 90 days */
	assert_int_equal(issued.life_ms, LIMIT_CERT_LIFE_MS_DEFAULT);

	fake_install(fk, a);
	assert_int_equal(fenv(fk)->ops->pki_info(fenv(fk), &none, &me), 0);
	assert_int_equal(me.node_id, id);
	assert_int_equal(me.role, role);
	/* it chains to the cluster's root, valid now (the env's pki_info does
	 * not say the root of a node's own certificate in the simulator) */
	{
		struct env_blob cert = {a->cert, a->cert_len};
		struct env_blob rootb = {c->ca_cert.data, c->ca_cert.len};
		struct pki_cert pc;
		char why[PKI_WHY_BYTES];
		assert_int_equal(
			pki_verify(&cert, &rootb, 1, world_pki_now_s(f->w), &pc, why), 0);
		pki_digest(c->ca_cert.data, c->ca_cert.len, root);
		assert_memory_equal(pc.root, root, sizeof root);
		assert_memory_equal(pc.key, me.key, sizeof me.key);
	}

	/* recorded before the answer */
	n = store_node_get(lstore(f), id);
	assert_non_null(n);
	assert_int_equal(n->cert_role, nrole);
	assert_int_equal(n->role, nrole);
	assert_int_equal(n->desired_role, nrole);
	assert_int_equal(n->state, CS__NODE_STATE__NODE_STATE_UNKNOWN);
	assert_string_equal(n->hostname, hostname);
	assert_int_equal(n->cert_key.len, ENV_DIGEST_BYTES);
	assert_memory_equal(n->cert_key.data, me.key, ENV_DIGEST_BYTES);
}

static void test_ca_worker_and_manager_tokens_grant_their_roles(void **state)
{
	struct fixture *f = *state;
	struct fake *w, *m;
	uint32_t l;
	const struct answer *a;
	size_t nodes;

	setup(f, 2, 1);
	l = wait_leader(f);
	nodes = store_node_count(lstore(f));
	w = fake_add(f, "w1", NULL, NULL, NULL);
	m = fake_add(f, "x1", NULL, NULL, NULL);
	fake_pin(w, simcluster_worker_token(f->c));
	fake_pin(m, simcluster_manager_token(f->c));

	a = fake_exchange(w, l, simcluster_worker_token(f->c), 0x201);
	check_granted(f, w, a, 0x201, ENV_ROLE_WORKER, CS__NODE_ROLE__NODE_ROLE_WORKER,
		      w->name);
	assert_int_equal(logged(f, "m1: msg=\"certificate issued\" node=0000000000000201 "
				   "role=worker renewal=0"),
			 1);
	a = fake_exchange(m, l, simcluster_manager_token(f->c), 0x202);
	check_granted(f, m, a, 0x202, ENV_ROLE_MANAGER, CS__NODE_ROLE__NODE_ROLE_MANAGER,
		      m->name);
	assert_int_equal(logged(f, "m1: msg=\"certificate issued\" node=0000000000000202 "
				   "role=manager renewal=0"),
			 1);
	assert_int_equal(store_node_count(lstore(f)), nodes + 2);
	assert_int_equal(logged(f, "msg=\"refused\""), 0);
}

/* The same node asking again with the same CSR (its answer was lost): the
 * same id, the same key, no second record, no second write. */
static void test_ca_same_csr_again_is_the_same_node(void **state)
{
	struct fixture *f = *state;
	struct fake *fk;
	uint32_t l;
	const struct answer *a;
	const char *tok;
	struct env_identity first, again;
	uint64_t version;
	size_t nodes;

	setup(f, 3, 1);
	l = wait_leader(f);
	tok = simcluster_worker_token(f->c);
	fk = fake_add(f, "w1", NULL, NULL, NULL);
	fake_pin(fk, tok);
	nodes = store_node_count(lstore(f));
	a = fake_exchange(fk, l, tok, 0x301);
	assert_int_equal(a->status, 0);
	first = cert_of(fk, a);
	/* the allocator gives the new node its ingress address (a write of
	 * its own, not the CA's) */
	run_for(f, 1 * SEC);
	assert_non_null(store_node_get(lstore(f), 0x301)->ingress);
	version = store_node_get(lstore(f), 0x301)->version;
	/* the answer is "lost": not installed; asked again with the same CSR */
	a = fake_exchange(fk, l, tok, 0x301);
	assert_int_equal(a->status, 0);
	again = cert_of(fk, a);
	assert_int_equal(again.node_id, 0x301);
	assert_memory_equal(again.key, first.key, sizeof first.key);
	assert_int_equal(store_node_count(lstore(f)), nodes + 1);
	assert_int_equal(store_node_get(lstore(f), 0x301)->version, version);
	assert_int_equal(logged(f, "msg=\"certificate issued\""), 1);
	check_granted(f, fk, a, 0x301, ENV_ROLE_WORKER, CS__NODE_ROLE__NODE_ROLE_WORKER,
		      fk->name);
}

static bool node_in_session(struct fixture *f, void *ctx)
{
	const Cs__Node *n = store_node_get(lstore(f), *(uint64_t *)ctx);
	return n && n->state != CS__NODE_STATE__NODE_STATE_UNKNOWN;
}

/* Another key for an id whose node opened a session: refused. */
static void test_ca_taken_id_refused_after_a_session(void **state)
{
	struct fixture *f = *state;
	struct fake *a1, *b1;
	uint32_t l;
	const struct answer *a;
	const char *tok;
	uint64_t id = 0x401;
	uint8_t key[ENV_DIGEST_BYTES];
	char line[512];

	setup(f, 4, 1);
	l = wait_leader(f);
	tok = simcluster_worker_token(f->c);
	a1 = fake_add(f, "w1", NULL, NULL, NULL);
	b1 = fake_add(f, "w2", NULL, NULL, NULL);
	fake_pin(a1, tok);
	fake_pin(b1, tok);
	a = fake_exchange(a1, l, tok, id);
	fake_install(a1, a);
	memcpy(key, store_node_get(lstore(f), id)->cert_key.data, sizeof key);
	/* w1 opens its session over its certificate */
	{
		Cs__Wire wire = CS__WIRE__INIT;
		Cs__SessionRequest q = CS__SESSION_REQUEST__INIT;
		q.hostname = "w1";
		q.role = CS__NODE_ROLE__NODE_ROLE_WORKER;
		wire.session = &q;
		fake_send(a1, l, &wire);
	}
	assert_true(run_until(f, 10 * SEC, node_in_session, &id));

	/* w2 claims the id with its own key and the same token */
	a = fake_exchange(b1, l, tok, id);
	assert_int_equal(a->status, CS_EAUTH);
	assert_string_equal(a->error, "node id 0000000000000401 is taken");
	assert_int_equal(a->cert_len, 0);
	refusal_line(line, sizeof line, "m1", "w2", 0,
		     "node id 0000000000000401 is taken");
	assert_int_equal(logged(f, line), 1);
	assert_memory_equal(store_node_get(lstore(f), id)->cert_key.data, key,
			    sizeof key);
	assert_int_equal(logged(f, "msg=\"certificate issued\""), 1);
}

/* Another key for an id whose node never opened a session (a joiner that
 * died before it kept its certificate): granted, the record takes the new
 * key; but not under another role's token. */
static void test_ca_new_key_allowed_before_any_session(void **state)
{
	struct fixture *f = *state;
	struct fake *a1, *b1, *c1;
	uint32_t l;
	const struct answer *a;
	const char *tok, *mtok;
	uint64_t id = 0x501, mid = 0x502;
	struct env_identity first;
	size_t nodes;
	char line[512];

	setup(f, 5, 1);
	l = wait_leader(f);
	tok = simcluster_worker_token(f->c);
	mtok = simcluster_manager_token(f->c);
	a1 = fake_add(f, "w1", NULL, NULL, NULL);
	b1 = fake_add(f, "w2", NULL, NULL, NULL);
	c1 = fake_add(f, "w3", NULL, NULL, NULL);
	fake_pin(a1, tok);
	fake_pin(b1, tok);
	fake_pin(c1, mtok);
	nodes = store_node_count(lstore(f));
	a = fake_exchange(a1, l, tok, id);
	assert_int_equal(a->status, 0);
	first = cert_of(a1, a);

	a = fake_exchange(b1, l, tok, id);
	assert_memory_not_equal(cert_of(b1, a).key, first.key, sizeof first.key);
	/* the record is the same node's: its hostname stays the first one's */
	check_granted(f, b1, a, id, ENV_ROLE_WORKER, CS__NODE_ROLE__NODE_ROLE_WORKER,
		      "w1");
	assert_int_equal(store_node_count(lstore(f)), nodes + 1);
	assert_int_equal(logged(f, "msg=\"certificate issued\" node=0000000000000501"),
			 2);

	/* a manager's id (never in session) claimed with the worker token */
	a = fake_exchange(c1, l, mtok, mid);
	assert_int_equal(a->status, 0);
	a = fake_exchange(a1, l, tok, mid);
	assert_int_equal(a->status, CS_EAUTH);
	assert_string_equal(a->error, "node id 0000000000000502 is taken");
	refusal_line(line, sizeof line, "m1", "w1", 0,
		     "node id 0000000000000502 is taken");
	assert_int_equal(logged(f, line), 1);
	assert_int_equal(store_node_get(lstore(f), mid)->cert_role,
			 CS__NODE_ROLE__NODE_ROLE_MANAGER);
}

/* A removed node id: refused to a joiner; a certificate naming it is
 * refused by the gate, told so on its connection. */
static void test_ca_removed_node_refused(void **state)
{
	struct fixture *f = *state;
	struct fake *j, *old;
	uint32_t l;
	const struct answer *a;
	const char *tok;
	Cs__Cluster c;
	uint64_t removed[2];
	struct store_batch b;
	char line[512];
	const char *why = "this node was removed from the cluster: join it again with a "
			  "new state directory";

	setup(f, 6, 1);
	l = wait_leader(f);
	tok = simcluster_worker_token(f->c);
	old = fake_add(f, "w1", NULL, NULL, NULL);
	j = fake_add(f, "w2", NULL, NULL, NULL);
	fake_pin(old, tok);
	fake_pin(j, tok);
	a = fake_exchange(old, l, tok, 0x601);
	fake_install(old, a);

	c = *lcluster(f);
	assert_int_equal(c.n_removed_nodes, 0);
	removed[0] = 0x601;
	removed[1] = 0x602;
	c.n_removed_nodes = 2;
	c.removed_nodes = removed;
	store_batch_init(&b);
	assert_int_equal(store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c),
			 0);
	commit(f, &b);
	assert_int_equal(lcluster(f)->n_removed_nodes, 2);

	/* a joiner naming a removed id, with a good token */
	a = fake_exchange(j, l, tok, 0x602);
	assert_int_equal(a->status, CS_EAUTH);
	assert_string_equal(a->error, why);
	refusal_line(line, sizeof line, "m1", "w2", 0, why);
	assert_int_equal(logged(f, line), 1);
	assert_null(store_node_get(lstore(f), 0x602));
	/* and the removed node renewing over its certificate */
	fake_new_key(old);
	a = fake_exchange(old, l, NULL, 0);
	assert_int_equal(a->status, CS_EAUTH);
	assert_string_equal(a->error, why);
	refusal_line(line, sizeof line, "m1", "w1", 0x601, why);
	assert_int_equal(logged(f, line), 1);
	/* joining again under its old id with a new key: refused too */
	a = fake_exchange(j, l, tok, 0x601);
	assert_int_equal(a->status, CS_EAUTH);
	assert_string_equal(a->error, why);
	assert_int_equal(logged(f, "msg=\"certificate issued\""), 1);
}

/* ---------------------------------------------------------------- renewals */

/* A renewal gets the role the record's desired_role says; one naming
 * another node id is refused. */
static void test_ca_renewal_follows_desired_role(void **state)
{
	struct fixture *f = *state;
	struct fake *fk;
	uint32_t l;
	const struct answer *a;
	const char *tok;
	struct env_identity cert;
	const Cs__Node *n;
	char line[512];

	setup(f, 7, 1);
	l = wait_leader(f);
	tok = simcluster_worker_token(f->c);
	fk = fake_add(f, "w1", NULL, NULL, NULL);
	fake_pin(fk, tok);
	a = fake_exchange(fk, l, tok, 0x701);
	fake_install(fk, a);

	/* a plain renewal: the same role, a new key, recorded */
	fake_new_key(fk);
	a = fake_exchange(fk, l, NULL, 0);
	cert = cert_of(fk, a);
	assert_int_equal(cert.node_id, 0x701);
	assert_int_equal(cert.role, ENV_ROLE_WORKER);
	assert_int_equal(logged(f, "m1: msg=\"certificate issued\" node=0000000000000701 "
				   "role=worker renewal=1"),
			 1);
	fake_install(fk, a);
	n = store_node_get(lstore(f), 0x701);
	assert_memory_equal(n->cert_key.data, cert.key, ENV_DIGEST_BYTES);

	/* promoted: the next renewal is a manager's */
	set_desired_role(f, 0x701, CS__NODE_ROLE__NODE_ROLE_MANAGER);
	fake_new_key(fk);
	a = fake_exchange(fk, l, NULL, 0);
	cert = cert_of(fk, a);
	assert_int_equal(cert.node_id, 0x701);
	assert_int_equal(cert.role, ENV_ROLE_MANAGER);
	n = store_node_get(lstore(f), 0x701);
	assert_int_equal(n->cert_role, CS__NODE_ROLE__NODE_ROLE_MANAGER);
	assert_memory_equal(n->cert_key.data, cert.key, ENV_DIGEST_BYTES);
	assert_int_equal(logged(f, "m1: msg=\"certificate issued\" node=0000000000000701 "
				   "role=manager renewal=1"),
			 1);
	fake_install(fk, a);

	/* a renewal that names another node (a token is no help) */
	fake_new_key(fk);
	a = fake_exchange(fk, l, tok, 0x702);
	assert_int_equal(a->status, CS_EAUTH);
	assert_string_equal(a->error,
			    "certificate request for another node than its certificate");
	refusal_line(line, sizeof line, "m1", "w1", 0x701,
		     "certificate request for another node than its certificate");
	assert_int_equal(logged(f, line), 1);
	assert_null(store_node_get(lstore(f), 0x702));
	/* naming itself is fine */
	a = fake_exchange(fk, l, NULL, 0x701);
	assert_int_equal(a->status, 0);
}

/* A node whose record says worker while it is still a member of the Raft
 * group: no worker's certificate yet (CS_EAGAIN), nothing written. The
 * node shows a manager's certificate naming m2 (signed here with the
 * cluster's CA); its record is made a worker's without a manager status,
 * so that the leader's role reconciler leaves m2 in the group. */
static void test_ca_demoted_member_gets_eagain(void **state)
{
	struct fixture *f = *state;
	struct fake *fk;
	uint32_t l, member;
	const struct answer *a;
	const Cs__Cluster *c;
	uint8_t seed[PKI_SEED_BYTES], csr[PKI_DER_BYTES_MAX], cert[PKI_DER_BYTES_MAX];
	size_t csr_len, cert_len;
	struct env_blob ca_cert, ca_key, csrb, certb, root;
	struct env_identity who = {0};
	char why[PKI_WHY_BYTES];
	uint64_t id;
	Cs__Node n = CS__NODE__INIT;
	struct store_batch b;
	int64_t now_s;

	setup(f, 8, 3);
	l = wait_leader(f);
	member = l == 1 ? 2 : 1;
	id = manager_raft_id(mgr(f, member));
	c = lcluster(f);
	memset(seed, 0x5a, sizeof seed);
	assert_int_equal(pki_csr_create(seed, csr, sizeof csr, &csr_len), 0);
	ca_cert = (struct env_blob){c->ca_cert.data, c->ca_cert.len};
	ca_key = (struct env_blob){c->ca_key.data, c->ca_key.len};
	csrb = (struct env_blob){csr, csr_len};
	who.node_id = id;
	who.cluster_id = c->id;
	who.role = ENV_ROLE_MANAGER;
	now_s = world_pki_now_s(f->w);
	assert_int_equal(pki_sign(&ca_cert, &ca_key, &csrb, &who, now_s - 60,
				  now_s + 86400, 777, cert, sizeof cert, &cert_len, why),
			 0);
	certb = (struct env_blob){cert, cert_len};
	root = ca_cert;
	fk = fake_add(f, "d1", seed, &certb, &root);

	n.id = id;
	n.hostname = "m";
	n.role = CS__NODE_ROLE__NODE_ROLE_WORKER;
	n.desired_role = CS__NODE_ROLE__NODE_ROLE_WORKER;
	n.cert_role = CS__NODE_ROLE__NODE_ROLE_WORKER;
	store_batch_init(&b);
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &n),
			 0);
	commit(f, &b);
	assert_non_null(manager_member_addr(mgr(f, l), id));

	fake_new_key(fk);
	a = fake_exchange(fk, l, NULL, 0);
	assert_int_equal(a->status, CS_EAGAIN);
	assert_string_equal(a->error, "still a member of the Raft group: try again");
	assert_int_equal(a->cert_len, 0);
	assert_int_equal(store_node_get(lstore(f), id)->cert_key.len, 0);
	assert_int_equal(logged(f, "msg=\"certificate issued\""), 0);
	/* a retry is no refusal: the node asks again later */
	assert_int_equal(logged(f, "what=cert_request"), 0);
}

/* ---------------------------------------------------------------- the join path */

/* LIMIT_JOIN_BURST requests at once from senders without a certificate
 * are answered; one more is dropped and logged; a second later
 * LIMIT_JOIN_RATE_PER_S more are answered, and one more dropped. The
 * requests carry a wrong token, so that nothing is signed. */
static void test_ca_join_rate_limit(void **state)
{
	struct fixture *f = *state;
	struct fake *fk;
	uint32_t l;
	char bad[PKI_TOKEN_BYTES];
	uint8_t digest[ENV_DIGEST_BYTES];
	const Cs__Cluster *c;
	size_t before;

	setup(f, 9, 1);
	l = wait_leader(f);
	run_for(f, 5 * SEC); /* the bucket is full */
	c = lcluster(f);
	pki_digest(c->ca_cert.data, c->ca_cert.len, digest);
	pki_token_make(digest, 1, 2, bad);
	fk = fake_add(f, "j1", NULL, NULL, NULL);
	fake_new_key(fk);
	for (size_t i = 0; i < LIMIT_JOIN_BURST + 1; i++)
		fake_ask(fk, l, bad, 0x1000 + i);
	run_for(f, 100000); /* 100 ms: all delivered, at one instant */
	assert_int_equal(fk->rx_count, LIMIT_JOIN_BURST);
	for (size_t i = 0; i < fk->rx_count; i++)
		assert_int_equal(fk->rx[i].status, CS_EAUTH);
	/* refusals are logged 10 a second at most, the rest counted */
	assert_int_equal(logged(f, "msg=\"refused\""), 10);

	/* one second later: the rate's worth, refilled */
	run_for(f, SEC - 100000);
	before = fk->rx_count;
	for (size_t i = 0; i < LIMIT_JOIN_RATE_PER_S + 1; i++)
		fake_ask(fk, l, bad, 0x1000 + i);
	run_for(f, 100000);
	assert_int_equal(fk->rx_count - before, LIMIT_JOIN_RATE_PER_S);
	/* the first line of the next second says how many went unlogged:
	 * the burst's 2000 refusals and its one drop, less the 10 logged */
	assert_int_equal(logged(f, "unlogged=1991"), 1);
	assert_int_equal(logged(f, "msg=\"refused\""), 20);
	assert_int_equal(logged(f, "msg=\"certificate issued\""), 0);
}

/* A renewal over a certificate is not counted against the join rate. */
static void test_ca_renewals_not_rate_limited(void **state)
{
	struct fixture *f = *state;
	struct fake *fk, *j;
	uint32_t l;
	const char *tok;
	const struct answer *a;
	char bad[PKI_TOKEN_BYTES];
	uint8_t digest[ENV_DIGEST_BYTES];
	const Cs__Cluster *c;

	setup(f, 10, 1);
	l = wait_leader(f);
	tok = simcluster_worker_token(f->c);
	fk = fake_add(f, "w1", NULL, NULL, NULL);
	j = fake_add(f, "j1", NULL, NULL, NULL);
	fake_pin(fk, tok);
	a = fake_exchange(fk, l, tok, 0x901);
	fake_install(fk, a);
	c = lcluster(f);
	pki_digest(c->ca_cert.data, c->ca_cert.len, digest);
	pki_token_make(digest, 1, 2, bad);
	/* the bucket emptied by strangers, then a renewal at the same instant */
	fake_new_key(j);
	for (size_t i = 0; i < LIMIT_JOIN_BURST + 10; i++)
		fake_ask(j, l, bad, 0x1000 + i);
	fake_new_key(fk);
	fake_ask(fk, l, NULL, 0);
	run_for(f, 100000);
	assert_int_equal(j->rx_count, LIMIT_JOIN_BURST); /* the rest dropped */
	assert_int_equal(fk->rx_count, 2);
	assert_int_equal(fk->rx[1].status, 0);
	assert_int_equal(cert_of(fk, &fk->rx[1]).node_id, 0x901);
}

/* A follower redirects a good token to the leader, and refuses a bad one
 * itself, on the request's connection (the joiner has no certificate to be
 * dialled at). */
static void test_ca_follower_redirects_or_refuses(void **state)
{
	struct fixture *f = *state;
	struct fake *fk;
	uint32_t l, fo;
	const struct answer *a;
	const char *tok;
	char wrong[PKI_TOKEN_BYTES], line[512];
	uint8_t digest[ENV_DIGEST_BYTES];
	const Cs__Cluster *c;
	size_t nodes;

	setup(f, 11, 3);
	l = wait_leader(f);
	fo = l == 0 ? 1 : 0;
	tok = simcluster_worker_token(f->c);
	c = lcluster(f);
	pki_digest(c->ca_cert.data, c->ca_cert.len, digest);
	pki_token_make(digest, 9, 9, wrong);
	nodes = store_node_count(lstore(f));
	fk = fake_add(f, "j1", NULL, NULL, NULL);
	fake_pin(fk, tok);

	a = fake_exchange(fk, fo, tok, 0xa01);
	assert_int_equal(a->status, CS_ENOTLEADER);
	assert_string_equal(a->leader, world_node_name(f->w, l));
	assert_int_equal(a->cert_len, 0);
	assert_string_equal(a->error, "");
	run_for(f, SEC);
	assert_null(store_node_get(lstore(f), 0xa01));
	assert_int_equal(store_node_count(lstore(f)), nodes);

	a = fake_exchange(fk, fo, wrong, 0xa01);
	assert_int_equal(a->status, CS_EAUTH);
	assert_string_equal(a->error,
			    "wrong join token (rotated, or never this cluster's)");
	assert_string_equal(a->leader, "");
	refusal_line(line, sizeof line, world_node_name(f->w, fo), "j1", 0,
		     "wrong join token (rotated, or never this cluster's)");
	assert_int_equal(logged(f, line), 1);

	/* and the leader it names grants it */
	a = fake_exchange(fk, l, tok, 0xa01);
	assert_int_equal(a->status, 0);
	assert_int_equal(cert_of(fk, a).node_id, 0xa01);
}

#define SIM_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_new, fixture_free)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_token_role),
		cmocka_unit_test(test_ca_cert_life_and_roles),
		cmocka_unit_test(test_ca_cluster_new),
		cmocka_unit_test(test_ca_should_renew_by_phase),
		cmocka_unit_test(test_ca_node_holds),
		cmocka_unit_test(test_ca_rotation_progress),
		cmocka_unit_test(test_ca_rotation_start),
		cmocka_unit_test(test_ca_rotation_replaced),
		SIM_TEST(test_ca_refuses_bad_tokens),
		SIM_TEST(test_ca_worker_and_manager_tokens_grant_their_roles),
		SIM_TEST(test_ca_same_csr_again_is_the_same_node),
		SIM_TEST(test_ca_taken_id_refused_after_a_session),
		SIM_TEST(test_ca_new_key_allowed_before_any_session),
		SIM_TEST(test_ca_removed_node_refused),
		SIM_TEST(test_ca_renewal_follows_desired_role),
		SIM_TEST(test_ca_demoted_member_gets_eagain),
		SIM_TEST(test_ca_join_rate_limit),
		SIM_TEST(test_ca_renewals_not_rate_limited),
		SIM_TEST(test_ca_follower_redirects_or_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
