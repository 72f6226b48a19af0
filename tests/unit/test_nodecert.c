/* Tests of nodecert (a node's own certificate: join, renew, role) against a
 * small fake env whose clock, random numbers and pki_* answers the tests
 * set: the pin of a joiner, when a request is due (a join, a renewal inside
 * [LIMIT_CERT_RENEW_PERMILLE_MIN, _MAX] of the life, a role change), what
 * a request holds (the token and id only when joining, one CSR until an
 * answer), what each answer does (redirect, refusal, retry, install, a
 * fatal install), and an expired certificate joining again as a new node. */
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
#include "core/limits.h"
#include "core/nodecert.h"
#include "core/pki.h"

#define LIFE_MS		(90ull * 24 * 3600 * 1000) /* the default life */
#define RAND_SCRIPT_MAX 8

struct fenv {
	struct env env;
	ms_t now;
	uint64_t rng;			  /* xorshift state when no script */
	uint64_t script[RAND_SCRIPT_MAX]; /* random_u64's next answers */
	size_t script_len, script_at;
	struct env_identity own;  /* node_id 0: no certificate */
	struct env_identity next; /* what pki_install makes own */
	int install_rv;
	size_t installs, install_roots;
	uint8_t installed[64];
	size_t installed_len;
	size_t csrs; /* pki_csr calls */
	size_t pins;
	uint8_t pinned[ENV_DIGEST_BYTES];
	bool exited;
	char exit_why[128];
	char last_log[256];
	size_t logs;
};

static struct fenv *fe_of(struct env *env)
{
	return env->impl;
}

static ms_t fe_now(struct env *env)
{
	return fe_of(env)->now;
}

static uint64_t fe_random(struct env *env)
{
	struct fenv *fe = fe_of(env);
	if (fe->script_at < fe->script_len)
		return fe->script[fe->script_at++];
	fe->rng ^= fe->rng << 13;
	fe->rng ^= fe->rng >> 7;
	fe->rng ^= fe->rng << 17;
	return fe->rng;
}

static void fe_log(struct env *env, enum env_log_level level, const char *msg)
{
	struct fenv *fe = fe_of(env);
	(void)level;
	snprintf(fe->last_log, sizeof fe->last_log, "%s", msg);
	fe->logs++;
}

static void fe_exit(struct env *env, const char *why)
{
	struct fenv *fe = fe_of(env);
	fe->exited = true;
	snprintf(fe->exit_why, sizeof fe->exit_why, "%s", why);
}

/* A CSR is "CSR<n>": each call a new key. */
static int fe_pki_csr(struct env *env, uint8_t *buf, size_t cap, size_t *len)
{
	struct fenv *fe = fe_of(env);
	int n = snprintf((char *)buf, cap, "CSR%zu", ++fe->csrs);
	assert_true(n > 0 && (size_t)n < cap);
	*len = (size_t)n;
	return 0;
}

static int fe_pki_pin(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES])
{
	struct fenv *fe = fe_of(env);
	memcpy(fe->pinned, digest, ENV_DIGEST_BYTES);
	fe->pins++;
	return 0;
}

static int fe_pki_info(struct env *env, const struct env_blob *cert,
		       struct env_identity *out)
{
	struct fenv *fe = fe_of(env);
	assert_int_equal(cert->len, 0); /* nodecert reads only its own */
	if (!fe->own.node_id) {
		memset(out, 0, sizeof *out);
		return CS_ENOENT;
	}
	*out = fe->own;
	return 0;
}

static int fe_pki_install(struct env *env, const struct env_blob *cert,
			  const struct env_blob *roots, size_t root_count)
{
	struct fenv *fe = fe_of(env);
	fe->installs++;
	fe->install_roots = root_count;
	assert_non_null(roots);
	assert_true(cert->len <= sizeof fe->installed);
	memcpy(fe->installed, cert->data, cert->len);
	fe->installed_len = cert->len;
	if (fe->install_rv)
		return fe->install_rv;
	fe->own = fe->next;
	return 0;
}

static const struct env_ops fe_ops = {
	.now_ms = fe_now,
	.random_u64 = fe_random,
	.log = fe_log,
	.exit = fe_exit,
	.pki_csr = fe_pki_csr,
	.pki_pin = fe_pki_pin,
	.pki_info = fe_pki_info,
	.pki_install = fe_pki_install,
};

static void fe_init(struct fenv *fe, uint64_t seed)
{
	memset(fe, 0, sizeof *fe);
	fe->env.ops = &fe_ops;
	fe->env.impl = fe;
	fe->now = 1000000;
	fe->rng = seed * 0x9e3779b97f4a7c15ull | 1;
}

/* A certificate of node id and role, issued `ago` ms before now. */
static struct env_identity fe_cert(struct fenv *fe, uint64_t id, enum env_role role,
				   ms_t life, ms_t ago)
{
	struct env_identity c = {.node_id = id, .cluster_id = 7, .role = role};
	c.life_ms = life;
	c.expires_ms = fe->now - ago + life;
	memset(c.key, (int)(id & 0xff), sizeof c.key);
	memset(c.root, 0xaa, sizeof c.root);
	return c;
}

static void token_of(uint8_t fill, char token[PKI_TOKEN_BYTES],
		     uint8_t digest[ENV_DIGEST_BYTES])
{
	memset(digest, fill, ENV_DIGEST_BYTES);
	pki_token_make(digest, 0x1234, 0x5678, token);
}

/* ---------------------------------------------------------------- init */

static void test_nodecert_init_without_certificate_pins_the_token_digest(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	char token[PKI_TOKEN_BYTES], why[PKI_WHY_BYTES] = "";
	uint8_t digest[ENV_DIGEST_BYTES];
	(void)state;

	fe_init(&fe, 1);
	token_of(0x3c, token, digest);
	assert_int_equal(nodecert_init(&nc, &fe.env, token, 0x77, why), 0);
	assert_int_equal(fe.pins, 1);
	assert_memory_equal(fe.pinned, digest, ENV_DIGEST_BYTES);
	assert_true(nc.pinned);
	assert_int_equal(nc.id.node_id, 0);
	assert_false(nodecert_valid(&nc));

	/* no token: nothing to pin, nothing to trust */
	fe_init(&fe, 1);
	assert_int_equal(nodecert_init(&nc, &fe.env, NULL, 0x77, why), 0);
	assert_int_equal(fe.pins, 0);
	assert_false(nc.pinned);
	assert_int_equal(nodecert_init(&nc, &fe.env, "", 0x77, why), 0);
	assert_int_equal(fe.pins, 0);
	assert_null(nc.token);

	/* a certificate held: the token is not needed, so not read */
	fe_init(&fe, 1);
	fe.own = fe_cert(&fe, 0x42, ENV_ROLE_WORKER, LIFE_MS, 0);
	assert_int_equal(nodecert_init(&nc, &fe.env, token, 0x42, why), 0);
	assert_int_equal(fe.pins, 0);
	assert_int_equal(nc.id.node_id, 0x42);
	assert_true(nodecert_valid(&nc));
}

static void test_nodecert_init_malformed_token_is_einval_with_pki_why(void **state)
{
	static const struct {
		const char *token, *why;
	} cases[] = {
		{"SWMTKN-2-abc-def", "token does not start with SWMTKN-1-"},
		{"SWMTKN-1-abc",
		 "token has 3 parts, expected SWMTKN-1-<digest>-<secret>"},
		{"SWMTKN-1-abc-def", "token digest is 3 characters, expected 50"},
		{"SWMTKN-1-00000000000000000000000000000000000000000000000000-x",
		 "token secret is 1 characters, expected 25"},
		{"SWMTKN-1-0000000000000000000000000000000000000000000000000A-"
		 "0000000000000000000000000",
		 "token has a character that is not 0-9 or a-z"},
	};
	struct fenv fe;
	struct nodecert nc;
	char why[PKI_WHY_BYTES];
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fe_init(&fe, 1);
		memset(why, 0, sizeof why);
		assert_int_equal(nodecert_init(&nc, &fe.env, cases[i].token, 9, why),
				 CS_EINVAL);
		assert_string_equal(why, cases[i].why);
		assert_int_equal(fe.pins, 0);
		assert_false(nc.pinned);
	}
}

/* ---------------------------------------------------------------- due */

static void test_nodecert_due_joining_needs_a_token(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertRequest q;
	char token[PKI_TOKEN_BYTES], why[PKI_WHY_BYTES];
	uint8_t digest[ENV_DIGEST_BYTES];
	(void)state;

	fe_init(&fe, 1);
	token_of(1, token, digest);
	assert_int_equal(nodecert_init(&nc, &fe.env, token, 0x77, why), 0);
	assert_true(nodecert_due(&nc, 5000));
	/* in flight: not again before retry_ms */
	assert_int_equal(nodecert_request(&nc, "h", &q), 0);
	assert_false(nodecert_due(&nc, 5000));
	fe.now += 4999;
	assert_false(nodecert_due(&nc, 5000));
	fe.now += 1;
	assert_true(nodecert_due(&nc, 5000));

	fe_init(&fe, 1);
	assert_int_equal(nodecert_init(&nc, &fe.env, NULL, 0x77, why), 0);
	assert_false(nodecert_due(&nc, 0));
	fe.now += LIFE_MS;
	assert_false(nodecert_due(&nc, 0));
}

/* The renewal point of a fresh certificate, as a fraction of its life in
 * permille, over many seeds: inside the limits, and spread over them. */
static void test_nodecert_renewal_between_min_and_max_of_life(void **state)
{
	ms_t lifes[] = {LIFE_MS, 60000, 3600 * 1000 + 7};
	(void)state;

	for (size_t l = 0; l < sizeof lifes / sizeof lifes[0]; l++) {
		ms_t life = lifes[l];
		ms_t lo = life * LIMIT_CERT_RENEW_PERMILLE_MIN / 1000;
		ms_t hi = life * LIMIT_CERT_RENEW_PERMILLE_MAX / 1000;
		ms_t min_seen = ~0ull, max_seen = 0;
		for (uint64_t seed = 1; seed <= 500; seed++) {
			struct fenv fe;
			struct nodecert nc;
			char why[PKI_WHY_BYTES];
			ms_t issued, at;

			fe_init(&fe, seed);
			issued = fe.now;
			fe.own = fe_cert(&fe, 0x42, ENV_ROLE_WORKER, life, 0);
			assert_int_equal(nodecert_init(&nc, &fe.env, NULL, 0x42, why), 0);
			at = nc.renew_at_ms - issued;
			assert_true(at >= lo);
			assert_true(at <= hi);
			/* due exactly from that point, not a ms before */
			fe.now = nc.renew_at_ms - 1;
			assert_false(nodecert_due(&nc, 0));
			fe.now = nc.renew_at_ms;
			assert_true(nodecert_due(&nc, 0));
			if (at < min_seen)
				min_seen = at;
			if (at > max_seen)
				max_seen = at;
		}
		/* 500 draws of 301 permille values: both ends are reached
		 * within 2% of the life */
		assert_true(min_seen <= lo + life / 50);
		assert_true(max_seen + life / 50 >= hi);
	}
}

/* A certificate found at start already past part of its life (a restart):
 * the point is counted from its issue, never before now. */
static void test_nodecert_renewal_counts_from_issue(void **state)
{
	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct fenv fe;
		struct nodecert nc;
		char why[PKI_WHY_BYTES];
		ms_t issued;
		(void)state;

		fe_init(&fe, seed);
		fe.now = 10 * LIFE_MS;
		/* issued 60% of its life ago */
		fe.own = fe_cert(&fe, 0x42, ENV_ROLE_WORKER, LIFE_MS, LIFE_MS * 6 / 10);
		issued = fe.now - LIFE_MS * 6 / 10;
		assert_int_equal(nodecert_init(&nc, &fe.env, NULL, 0x42, why), 0);
		assert_true(nc.renew_at_ms >= fe.now);
		assert_true(nc.renew_at_ms - issued <=
			    LIFE_MS * LIMIT_CERT_RENEW_PERMILLE_MAX / 1000);
		if (nc.renew_at_ms > fe.now)
			assert_true(nc.renew_at_ms - issued >=
				    LIFE_MS * LIMIT_CERT_RENEW_PERMILLE_MIN / 1000);
	}
}

static void test_nodecert_due_at_once_for_another_role(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	char why[PKI_WHY_BYTES];
	(void)state;

	fe_init(&fe, 3);
	fe.own = fe_cert(&fe, 0x42, ENV_ROLE_WORKER, LIFE_MS, 0);
	assert_int_equal(nodecert_init(&nc, &fe.env, NULL, 0x42, why), 0);
	assert_false(nodecert_due(&nc, 0));
	nodecert_want(&nc, ENV_ROLE_WORKER);
	assert_false(nodecert_due(&nc, 0));
	nodecert_want(&nc, ENV_ROLE_NONE);
	assert_false(nodecert_due(&nc, 0));
	nodecert_want(&nc, ENV_ROLE_MANAGER);
	assert_true(nodecert_due(&nc, 0));
	/* a renewal, not a join: no token, no id */
	{
		Cs__CertRequest q;
		assert_int_equal(nodecert_request(&nc, "w1", &q), 0);
		assert_true(q.token == NULL || q.token[0] == '\0');
		assert_int_equal(q.node_id, 0);
		assert_string_equal(q.hostname, "w1");
		assert_int_equal(q.csr.len, 4);
		assert_memory_equal(q.csr.data, "CSR1", 4);
	}
	/* in flight: held back for retry_ms even for a role */
	assert_false(nodecert_due(&nc, 1000));
}

/* ---------------------------------------------------------------- requests */

static void test_nodecert_request_join_fields_and_one_csr_until_an_answer(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertRequest q, q2;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader, *why2;
	char token[PKI_TOKEN_BYTES], why[PKI_WHY_BYTES];
	uint8_t digest[ENV_DIGEST_BYTES];
	(void)state;

	fe_init(&fe, 1);
	token_of(5, token, digest);
	assert_int_equal(nodecert_init(&nc, &fe.env, token, 0x77, why), 0);
	assert_int_equal(nodecert_request(&nc, "w9", &q), 0);
	assert_string_equal(q.token, token);
	assert_int_equal(q.node_id, 0x77);
	assert_string_equal(q.hostname, "w9");
	assert_int_equal(fe.csrs, 1);
	assert_memory_equal(q.csr.data, "CSR1", 4);

	/* asked again (no answer): the same key, the same id */
	fe.now += 10000;
	assert_int_equal(nodecert_request(&nc, NULL, &q2), 0);
	assert_int_equal(fe.csrs, 1);
	assert_int_equal(q2.csr.len, q.csr.len);
	assert_memory_equal(q2.csr.data, "CSR1", 4);
	assert_int_equal(q2.node_id, 0x77);
	assert_string_equal(q2.hostname, "");

	/* busy: the same CSR again (the CA may hold its record already) */
	r.status = CS_EAGAIN;
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why2), NODECERT_RETRY);
	assert_int_equal(nodecert_request(&nc, "w9", &q2), 0);
	assert_int_equal(fe.csrs, 1);

	/* installed: the next request (a renewal) has a new key */
	{
		uint8_t cert[] = "CERT", root[] = "ROOT";
		ProtobufCBinaryData roots[1] = {{4, root}};
		Cs__CertResponse ok = CS__CERT_RESPONSE__INIT;
		ok.cert = (ProtobufCBinaryData){4, cert};
		ok.n_roots = 1;
		ok.roots = roots;
		fe.next = fe_cert(&fe, 0x77, ENV_ROLE_WORKER, LIFE_MS, 0);
		assert_int_equal(nodecert_on_response(&nc, &ok, &leader, &why2),
				 NODECERT_INSTALLED);
	}
	fe.now += LIFE_MS * 9 / 10;
	assert_true(nodecert_due(&nc, 0));
	assert_int_equal(nodecert_request(&nc, "w9", &q2), 0);
	assert_int_equal(fe.csrs, 2);
	assert_memory_equal(q2.csr.data, "CSR2", 4);
	assert_int_equal(q2.node_id, 0);
}

/* ---------------------------------------------------------------- answers */

/* A joiner that asked; returns with a request in flight. */
static void joiner(struct fenv *fe, struct nodecert *nc, char token[PKI_TOKEN_BYTES])
{
	Cs__CertRequest q;
	uint8_t digest[ENV_DIGEST_BYTES];
	char why[PKI_WHY_BYTES];

	fe_init(fe, 11);
	token_of(9, token, digest);
	assert_int_equal(nodecert_init(nc, &fe->env, token, 0x77, why), 0);
	assert_int_equal(nodecert_request(nc, "w1", &q), 0);
}

static void test_nodecert_response_ignored_when_not_asked(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader = "x", *why = "x";
	char why2[PKI_WHY_BYTES], token[PKI_TOKEN_BYTES];
	uint8_t digest[ENV_DIGEST_BYTES];
	(void)state;

	fe_init(&fe, 1);
	token_of(9, token, digest);
	assert_int_equal(nodecert_init(&nc, &fe.env, token, 0x77, why2), 0);
	r.status = CS_EAUTH;
	r.error = "forged";
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_IGNORED);
	assert_null(leader);
	assert_null(why);
	assert_false(nc.refused);
	assert_true(nodecert_due(&nc, 0));
}

static void test_nodecert_response_redirect(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader, *why;
	char token[PKI_TOKEN_BYTES];
	(void)state;

	joiner(&fe, &nc, token);
	r.status = CS_ENOTLEADER;
	r.leader = "m2";
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_REDIRECT);
	assert_string_equal(leader, "m2");
	assert_null(why);
	/* ask the leader at once, whatever the retry period */
	assert_true(nodecert_due(&nc, 1000000));

	/* no leader known: a redirect to nowhere */
	joiner(&fe, &nc, token);
	r.leader = "";
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_REDIRECT);
	assert_null(leader);
}

static void test_nodecert_response_refused_stops_asking(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader, *why;
	char token[PKI_TOKEN_BYTES];
	(void)state;

	joiner(&fe, &nc, token);
	r.status = CS_EAUTH;
	r.error = "wrong join token (rotated, or never this cluster's)";
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_REFUSED);
	assert_string_equal(why, "wrong join token (rotated, or never this cluster's)");
	assert_null(leader);
	assert_false(nodecert_due(&nc, 0));
	fe.now += 10 * LIFE_MS;
	assert_false(nodecert_due(&nc, 0));
	assert_int_equal(fe.installs, 0);

	/* no error text: the code's own */
	joiner(&fe, &nc, token);
	r.error = "";
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_REFUSED);
	assert_string_equal(why, cs_strerror(CS_EAUTH));
}

static void test_nodecert_response_retry(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader, *why;
	char token[PKI_TOKEN_BYTES];
	uint8_t root[] = "ROOT";
	ProtobufCBinaryData roots[1] = {{4, root}};
	(void)state;

	joiner(&fe, &nc, token);
	r.status = CS_EAGAIN;
	r.error = "the cluster's CA is not ready";
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_RETRY);
	assert_false(nc.refused);
	assert_true(nodecert_due(&nc, 0));

	/* a success that carries no certificate, or no root: nothing to keep */
	joiner(&fe, &nc, token);
	r.status = 0;
	r.error = "";
	r.n_roots = 1;
	r.roots = roots;
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_RETRY);
	joiner(&fe, &nc, token);
	r.cert = (ProtobufCBinaryData){4, root};
	r.n_roots = 0;
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_RETRY);
	assert_int_equal(fe.installs, 0);

	/* a certificate the env will not take (not for our key): retry with
	 * a new key */
	joiner(&fe, &nc, token);
	r.n_roots = 1;
	fe.install_rv = CS_EAUTH;
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_RETRY);
	assert_int_equal(fe.installs, 1);
	assert_false(fe.exited);
	assert_int_equal(nc.id.node_id, 0);
	{
		Cs__CertRequest q;
		size_t before = fe.csrs;
		assert_int_equal(nodecert_request(&nc, "w1", &q), 0);
		assert_int_equal(fe.csrs, before + 1);
	}
}

static void test_nodecert_response_installed_reads_the_new_identity(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader, *why;
	char token[PKI_TOKEN_BYTES];
	uint8_t cert[] = "CERTIFICATE", r1[] = "ROOT1", r2[] = "ROOT2", r3[] = "ROOT3";
	ProtobufCBinaryData roots[3] = {{5, r1}, {5, r2}, {5, r3}};
	(void)state;

	joiner(&fe, &nc, token);
	fe.next = fe_cert(&fe, 0x77, ENV_ROLE_MANAGER, LIFE_MS, 0);
	r.cert = (ProtobufCBinaryData){11, cert};
	r.n_roots = 3; /* at most two are taken (a rotation's old and new) */
	r.roots = roots;
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why),
			 NODECERT_INSTALLED);
	assert_int_equal(fe.installs, 1);
	assert_int_equal(fe.install_roots, 2);
	assert_int_equal(fe.installed_len, 11);
	assert_memory_equal(fe.installed, "CERTIFICATE", 11);
	assert_int_equal(nc.id.node_id, 0x77);
	assert_int_equal(nc.id.role, ENV_ROLE_MANAGER);
	assert_true(nodecert_valid(&nc));
	assert_false(nodecert_due(&nc, 0));
	assert_true(nc.renew_at_ms >=
		    fe.now + LIFE_MS * LIMIT_CERT_RENEW_PERMILLE_MIN / 1000);
	assert_string_equal(fe.last_log,
			    "msg=\"certificate installed\" node=0000000000000077 "
			    "role=manager life_ms=7776000000");
	/* the same answer again: nothing asked */
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_IGNORED);
	assert_int_equal(fe.installs, 1);
}

static void test_nodecert_response_fatal_when_not_durable(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader, *why;
	char token[PKI_TOKEN_BYTES];
	uint8_t cert[] = "CERT", root[] = "ROOT";
	ProtobufCBinaryData roots[1] = {{4, root}};
	(void)state;

	joiner(&fe, &nc, token);
	fe.install_rv = CS_ESTORAGE;
	r.cert = (ProtobufCBinaryData){4, cert};
	r.n_roots = 1;
	r.roots = roots;
	assert_false(fe.exited);
	assert_int_equal(nodecert_on_response(&nc, &r, &leader, &why), NODECERT_FATAL);
	assert_true(fe.exited);
	assert_string_equal(fe.exit_why, "cannot keep this node's new certificate");
	assert_int_equal(nc.id.node_id, 0);
}

/* ---------------------------------------------------------------- expiry */

static void test_nodecert_expired_joins_again_with_a_new_id(void **state)
{
	struct fenv fe;
	struct nodecert nc;
	Cs__CertRequest q;
	char token[PKI_TOKEN_BYTES], why[PKI_WHY_BYTES];
	uint8_t digest[ENV_DIGEST_BYTES];
	(void)state;

	fe_init(&fe, 1);
	token_of(4, token, digest);
	fe.own = fe_cert(&fe, 0x42, ENV_ROLE_WORKER, 60000, 0);
	/* the caller kept the id it joined with */
	assert_int_equal(nodecert_init(&nc, &fe.env, token, 0x42, why), 0);
	assert_true(nodecert_valid(&nc));
	fe.now += 60000; /* valid while now < expiry */
	assert_false(nodecert_valid(&nc));
	assert_true(nodecert_due(&nc, 0));
	/* random draws the old id, then 0, then a usable one */
	fe.script[0] = 0x42;
	fe.script[1] = 0;
	fe.script[2] = 0x99;
	fe.script_len = 3;
	assert_int_equal(nodecert_request(&nc, "w1", &q), 0);
	assert_int_equal(q.node_id, 0x99);
	assert_string_equal(q.token, token);
	assert_int_equal(fe.script_at, 3);
	/* asked again: the same new id */
	fe.now += 100000;
	assert_int_equal(nodecert_request(&nc, "w1", &q), 0);
	assert_int_equal(q.node_id, 0x99);

	/* expired without a token: nothing to do but wait */
	fe_init(&fe, 1);
	fe.own = fe_cert(&fe, 0x42, ENV_ROLE_WORKER, 60000, 0);
	assert_int_equal(nodecert_init(&nc, &fe.env, NULL, 0x42, why), 0);
	fe.now += 60000;
	assert_false(nodecert_due(&nc, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_nodecert_init_without_certificate_pins_the_token_digest),
		cmocka_unit_test(
			test_nodecert_init_malformed_token_is_einval_with_pki_why),
		cmocka_unit_test(test_nodecert_due_joining_needs_a_token),
		cmocka_unit_test(test_nodecert_renewal_between_min_and_max_of_life),
		cmocka_unit_test(test_nodecert_renewal_counts_from_issue),
		cmocka_unit_test(test_nodecert_due_at_once_for_another_role),
		cmocka_unit_test(
			test_nodecert_request_join_fields_and_one_csr_until_an_answer),
		cmocka_unit_test(test_nodecert_response_ignored_when_not_asked),
		cmocka_unit_test(test_nodecert_response_redirect),
		cmocka_unit_test(test_nodecert_response_refused_stops_asking),
		cmocka_unit_test(test_nodecert_response_retry),
		cmocka_unit_test(test_nodecert_response_installed_reads_the_new_identity),
		cmocka_unit_test(test_nodecert_response_fatal_when_not_durable),
		cmocka_unit_test(test_nodecert_expired_joins_again_with_a_new_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
