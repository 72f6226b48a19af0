/* ca: the cluster's certificate authority. See ca.h. */
#include "core/ca.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "core/store.h"

enum env_role ca_role_of(Cs__NodeRole role)
{
	return role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? ENV_ROLE_MANAGER
							: ENV_ROLE_WORKER;
}

ms_t ca_cert_life(const Cs__Cluster *c)
{
	ms_t life = c && c->settings ? c->settings->cert_expiry_ms : 0;
	if (life == 0)
		return LIMIT_CERT_LIFE_MS_DEFAULT;
	return life < LIMIT_CERT_LIFE_MS_MIN ? LIMIT_CERT_LIFE_MS_MIN : life;
}

/* ---------------------------------------------------------------- tokens */

/* Whether two NUL-terminated secrets are equal, in time that depends on
 * their lengths only (a token's secret is not to be guessed byte by byte
 * from the time a refusal takes). */
static bool ca_secret_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned diff = la != lb;
	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned)(a[i] ^ b[i]);
	return diff == 0;
}

int ca_token_role(const Cs__Cluster *c, const char *token, Cs__NodeRole *role,
		  char why[PKI_WHY_BYTES])
{
	uint8_t digest[ENV_DIGEST_BYTES], root[ENV_DIGEST_BYTES], d2[ENV_DIGEST_BYTES];
	char secret[PKI_TOKEN_SECRET_BYTES], s2[PKI_TOKEN_SECRET_BYTES];
	char why2[PKI_WHY_BYTES];

	if (!token || !*token) {
		snprintf(why, PKI_WHY_BYTES, "no join token");
		return CS_EAUTH;
	}
	if (pki_token_parse(token, digest, secret, why) != 0)
		return CS_EAUTH;
	if (!c || c->ca_cert.len == 0) {
		snprintf(why, PKI_WHY_BYTES, "the cluster has no CA yet: try again");
		return CS_EAUTH;
	}
	pki_digest(c->ca_cert.data, c->ca_cert.len, root);
	if (memcmp(digest, root, sizeof root) != 0) {
		snprintf(why, PKI_WHY_BYTES,
			 "join token names another root CA than this cluster's "
			 "(a token of another cluster, or from before a CA rotation)");
		return CS_EAUTH;
	}
	if (c->manager_token && pki_token_parse(c->manager_token, d2, s2, why2) == 0 &&
	    ca_secret_eq(secret, s2)) {
		*role = CS__NODE_ROLE__NODE_ROLE_MANAGER;
		return 0;
	}
	if (c->worker_token && pki_token_parse(c->worker_token, d2, s2, why2) == 0 &&
	    ca_secret_eq(secret, s2)) {
		*role = CS__NODE_ROLE__NODE_ROLE_WORKER;
		return 0;
	}
	snprintf(why, PKI_WHY_BYTES,
		 "wrong join token (rotated, or never this cluster's)");
	return CS_EAUTH;
}

/* Whether token is a token of the root whose digest is root. */
static bool ca_token_names(const char *token, const uint8_t root[ENV_DIGEST_BYTES])
{
	uint8_t digest[ENV_DIGEST_BYTES];
	char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];
	return token && pki_token_parse(token, digest, secret, why) == 0 &&
	       memcmp(digest, root, ENV_DIGEST_BYTES) == 0;
}

int ca_cluster_new(struct env *env, const struct manager_cfg *cfg, uint64_t cluster_id,
		   struct ca_new *out)
{
	uint8_t root[ENV_DIGEST_BYTES];
	int rv;

	memset(out, 0, sizeof *out);
	if (cfg->ca_cert.len && cfg->ca_key.len && cfg->ca_cert.len <= sizeof out->cert &&
	    cfg->ca_key.len <= sizeof out->key) {
		memcpy(out->cert, cfg->ca_cert.data, cfg->ca_cert.len);
		memcpy(out->key, cfg->ca_key.data, cfg->ca_key.len);
		out->cert_len = cfg->ca_cert.len;
		out->key_len = cfg->ca_key.len;
	} else {
		rv = env->ops->pki_ca_create(env, cluster_id, LIMIT_CA_LIFE_MS, out->cert,
					     sizeof out->cert, &out->cert_len, out->key,
					     sizeof out->key, &out->key_len);
		if (rv)
			return rv;
	}
	pki_digest(out->cert, out->cert_len, root);
	if (ca_token_names(cfg->worker_token, root))
		snprintf(out->worker_token, sizeof out->worker_token, "%s",
			 cfg->worker_token);
	else
		pki_token_new(env, root, out->worker_token);
	if (ca_token_names(cfg->manager_token, root))
		snprintf(out->manager_token, sizeof out->manager_token, "%s",
			 cfg->manager_token);
	else
		pki_token_new(env, root, out->manager_token);
	return 0;
}

/* Signs a certificate for who from the CA (ca_cert, ca_key) for this node's
 * new key and installs it trusting roots; the certificate's bytes in cert
 * (cap bytes) and *cert_len. Returns 0 or the first error. */
static int ca_sign_own(struct env *env, const struct env_blob *ca_cert,
		       const struct env_blob *ca_key, const struct env_blob *roots,
		       size_t root_count, const struct env_identity *who, ms_t life_ms,
		       uint8_t *cert, size_t cap, size_t *cert_len)
{
	uint8_t csr[PKI_DER_BYTES_MAX];
	size_t csr_len;
	struct env_blob csrb, certb;
	int rv;

	if ((rv = env->ops->pki_csr(env, csr, sizeof csr, &csr_len)))
		return rv;
	csrb = (struct env_blob){csr, csr_len};
	if ((rv = env->ops->pki_sign(env, ca_cert, ca_key, &csrb, who, life_ms, cert, cap,
				     cert_len)))
		return rv;
	certb = (struct env_blob){cert, *cert_len};
	return env->ops->pki_install(env, &certb, roots, root_count);
}

int ca_issue_self(struct env *env, const struct env_blob *ca_cert,
		  const struct env_blob *ca_key, uint64_t cluster_id, uint64_t node_id,
		  enum env_role role, ms_t life_ms)
{
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
	struct env_identity who = {
		.node_id = node_id, .cluster_id = cluster_id, .role = role};

	return ca_sign_own(env, ca_cert, ca_key, ca_cert, 1, &who, life_ms, cert,
			   sizeof cert, &cert_len);
}

/* ---------------------------------------------------------------- rotation */

const char *ca_rotation_name(Cs__CaRotationPhase phase)
{
	switch (phase) {
	case CS__CA_ROTATION_PHASE__CA_ROTATION_TRUST_BOTH: return "trust-both";
	case CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW: return "sign-new";
	case CS__CA_ROTATION_PHASE__CA_ROTATION_DROP_OLD: return "drop-old";
	default: return "none";
	}
}

/* The rotation phase of c, NONE when the record is not one of a rotation
 * (a phase that needs the next root without it). */
static Cs__CaRotationPhase ca_phase(const Cs__Cluster *c)
{
	if (!c || c->ca_cert.len == 0)
		return CS__CA_ROTATION_PHASE__CA_ROTATION_NONE;
	switch (c->ca_rotation) {
	case CS__CA_ROTATION_PHASE__CA_ROTATION_TRUST_BOTH:
	case CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW:
		return c->ca_next_cert.len && c->ca_next_key.len
			       ? c->ca_rotation
			       : CS__CA_ROTATION_PHASE__CA_ROTATION_NONE;
	case CS__CA_ROTATION_PHASE__CA_ROTATION_DROP_OLD: return c->ca_rotation;
	default: return CS__CA_ROTATION_PHASE__CA_ROTATION_NONE;
	}
}

/* Who signs in c's phase, and the roots a certificate comes with (the
 * signer's first). */
struct ca_signer {
	struct env_blob cert, key;
	struct env_blob roots[2];
	size_t root_count;
	uint8_t digest[2][ENV_DIGEST_BYTES]; /* of roots[i] */
};

static void ca_signer(const Cs__Cluster *c, struct ca_signer *s)
{
	struct env_blob cur = {c->ca_cert.data, c->ca_cert.len};
	struct env_blob next = {c->ca_next_cert.data, c->ca_next_cert.len};

	memset(s, 0, sizeof *s);
	switch (ca_phase(c)) {
	case CS__CA_ROTATION_PHASE__CA_ROTATION_TRUST_BOTH:
		s->cert = cur;
		s->key = (struct env_blob){c->ca_key.data, c->ca_key.len};
		s->roots[0] = cur;
		/* a replaced rotation's root stays trusted while its
		 * certificates are held; the next one's turn comes after */
		s->roots[1] = c->ca_abandoned_cert.len
				      ? (struct env_blob){c->ca_abandoned_cert.data,
							  c->ca_abandoned_cert.len}
				      : next;
		s->root_count = 2;
		break;
	case CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW:
		s->cert = next;
		s->key = (struct env_blob){c->ca_next_key.data, c->ca_next_key.len};
		s->roots[0] = next;
		s->roots[1] = cur;
		s->root_count = 2;
		break;
	default:
		s->cert = cur;
		s->key = (struct env_blob){c->ca_key.data, c->ca_key.len};
		s->roots[0] = cur;
		s->root_count = 1;
		break;
	}
	for (size_t i = 0; i < s->root_count; i++)
		pki_digest(s->roots[i].data, s->roots[i].len, s->digest[i]);
}

/* Whether n's record names root digest d among the roots it trusts. */
static bool ca_node_trusts(const Cs__Node *n, const uint8_t d[ENV_DIGEST_BYTES])
{
	for (size_t i = 0; i < n->n_cert_trust; i++)
		if (n->cert_trust[i].len == ENV_DIGEST_BYTES &&
		    memcmp(n->cert_trust[i].data, d, ENV_DIGEST_BYTES) == 0)
			return true;
	return false;
}

/* Whether n's record is done with c's phase (see ca.h); held: take it
 * that the node holds what the record names (else its cert_held says). */
static bool ca_node_done_as(const Cs__Cluster *c, const Cs__Node *n, bool held)
{
	uint8_t cur[ENV_DIGEST_BYTES], next[ENV_DIGEST_BYTES];
	bool signed_by;

	if (!held && (n->cert_key.len != ENV_DIGEST_BYTES ||
		      n->cert_held.len != ENV_DIGEST_BYTES ||
		      memcmp(n->cert_key.data, n->cert_held.data, ENV_DIGEST_BYTES) != 0))
		return false; /* not seen to hold what the CA recorded */

	pki_digest(c->ca_cert.data, c->ca_cert.len, cur);
	switch (ca_phase(c)) {
	case CS__CA_ROTATION_PHASE__CA_ROTATION_TRUST_BOTH:
		if (c->ca_abandoned_cert.len) {
			/* a replaced rotation: re-issued by the old root,
			 * still trusting the abandoned one (its holders) */
			pki_digest(c->ca_abandoned_cert.data, c->ca_abandoned_cert.len,
				   next);
			signed_by = n->cert_root.len == ENV_DIGEST_BYTES &&
				    memcmp(n->cert_root.data, cur, ENV_DIGEST_BYTES) == 0;
			return signed_by && ca_node_trusts(n, cur) &&
			       ca_node_trusts(n, next);
		}
		pki_digest(c->ca_next_cert.data, c->ca_next_cert.len, next);
		return ca_node_trusts(n, cur) && ca_node_trusts(n, next);
	case CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW:
		pki_digest(c->ca_next_cert.data, c->ca_next_cert.len, next);
		signed_by = n->cert_root.len == ENV_DIGEST_BYTES &&
			    memcmp(n->cert_root.data, next, ENV_DIGEST_BYTES) == 0;
		return signed_by && ca_node_trusts(n, cur) && ca_node_trusts(n, next);
	case CS__CA_ROTATION_PHASE__CA_ROTATION_DROP_OLD:
		signed_by = n->cert_root.len == ENV_DIGEST_BYTES &&
			    memcmp(n->cert_root.data, cur, ENV_DIGEST_BYTES) == 0;
		return signed_by && n->n_cert_trust == 1 && ca_node_trusts(n, cur);
	default: return true;
	}
}

static bool ca_node_done(const Cs__Cluster *c, const Cs__Node *n)
{
	return ca_node_done_as(c, n, false);
}

bool ca_node_should_renew(const Cs__Cluster *c, const Cs__Node *n, const uint8_t *held,
			  size_t held_len)
{
	if (!c || !n || ca_phase(c) == CS__CA_ROTATION_PHASE__CA_ROTATION_NONE ||
	    store_cluster_removed(c, n->id))
		return false;
	if (held_len == ENV_DIGEST_BYTES &&
	    (n->cert_key.len != ENV_DIGEST_BYTES ||
	     memcmp(n->cert_key.data, held, ENV_DIGEST_BYTES) != 0))
		return true; /* not the one recorded: an answer was lost */
	return !ca_node_done_as(c, n, true);
}

bool ca_node_holds(const Cs__Cluster *c, const Cs__Node *n, const uint8_t *held,
		   size_t held_len)
{
	if (!c || !n || ca_phase(c) == CS__CA_ROTATION_PHASE__CA_ROTATION_NONE ||
	    held_len != ENV_DIGEST_BYTES || n->cert_key.len != ENV_DIGEST_BYTES ||
	    memcmp(n->cert_key.data, held, ENV_DIGEST_BYTES) != 0)
		return false;
	return n->cert_held.len != ENV_DIGEST_BYTES ||
	       memcmp(n->cert_held.data, held, ENV_DIGEST_BYTES) != 0;
}

void ca_rotation_progress(const struct store *st, const uint64_t *voters,
			  size_t voter_count, size_t *done, size_t *total)
{
	const Cs__Cluster *c = store_cluster(st);

	*done = *total = 0;
	if (ca_phase(c) == CS__CA_ROTATION_PHASE__CA_ROTATION_NONE)
		return;
	for (size_t i = 0; i < voter_count; i++)
		if (!store_node_get(st, voters[i]))
			(*total)++;
	for (const Cs__Node *n = store_node_next(st, NULL); n;
	     n = store_node_next(st, n)) {
		if (store_cluster_removed(c, n->id))
			continue;
		(*total)++;
		if (ca_node_done(c, n))
			(*done)++;
	}
}

int ca_rotation_start(struct env *env, const Cs__Cluster *cur, Cs__Cluster *next,
		      uint8_t cert[PKI_DER_BYTES_MAX], uint8_t key[PKI_DER_BYTES_MAX],
		      char *why, size_t why_size)
{
	size_t cert_len, key_len;
	int rv;

	if (!cur || cur->ca_cert.len == 0 || cur->ca_key.len == 0) {
		snprintf(why, why_size, "the cluster has no root CA yet");
		return CS_ENOENT;
	}
	rv = env->ops->pki_ca_create(env, cur->id, LIMIT_CA_LIFE_MS, cert,
				     PKI_DER_BYTES_MAX, &cert_len, key, PKI_DER_BYTES_MAX,
				     &key_len);
	if (rv) {
		snprintf(why, why_size, "cannot make a new root CA: %s", cs_strerror(rv));
		return rv;
	}
	*next = *cur;
	switch (ca_phase(cur)) {
	case CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW:
		/* its root signed already: trusted on, abandoned, until no
		 * node holds a certificate of it (SwarmKit re-issues those) */
		next->ca_abandoned_cert = cur->ca_next_cert;
		break;
	case CS__CA_ROTATION_PHASE__CA_ROTATION_DROP_OLD:
		/* its root is the cluster's already, every certificate
		 * its: that rotation is done, the next starts from it */
		next->ca_rotations = cur->ca_rotations + 1;
		break;
	/* none, or trust-both: nothing was signed by its new root */
	default: break;
	}
	next->ca_next_cert = (ProtobufCBinaryData){cert_len, cert};
	next->ca_next_key = (ProtobufCBinaryData){key_len, key};
	next->ca_rotation = CS__CA_ROTATION_PHASE__CA_ROTATION_TRUST_BOTH;
	return 0;
}

/* ---------------------------------------------------------------- the component */

struct ca {
	const struct leader_ctx *ctx;
	struct env *env;
	size_t writes; /* in flight: the last answer frees a stopped CA */
	bool stopped;
	bool rotating;	    /* a rotation step's write is in flight */
	bool again;	    /* a store event came meanwhile: look again after it */
	bool own_due;	    /* look at the leader's own certificate (at start) */
	env_timer_id timer; /* the next look, armed (0: none) */
};

/* One certificate waiting for its Node record to commit: the answer, with
 * the roots it was signed to come with. */
struct ca_write {
	struct ca *ca;
	uint64_t conn; /* the request's connection (0: none to answer) */
	uint64_t node_id;
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
	uint8_t roots[2][PKI_DER_BYTES_MAX];
	size_t root_len[2], root_count;
};

static void ca_maybe_free(struct ca *ca)
{
	if (ca->stopped && ca->writes == 0)
		free(ca);
}

/* Answers on the connection the request came on (a joiner has no
 * certificate to be dialled at, and no address it names is trusted). */
static void ca_reply(struct ca *ca, uint64_t conn, int status, const char *error,
		     const uint8_t *cert, size_t cert_len, const struct env_blob *roots,
		     size_t root_count)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	ProtobufCBinaryData rb[2];

	r.status = status;
	r.error = (char *)(error ? error : "");
	if (status == 0 && root_count) {
		r.cert.data = (uint8_t *)cert;
		r.cert.len = cert_len;
		for (size_t i = 0; i < root_count && i < 2; i++)
			rb[i] = (ProtobufCBinaryData){roots[i].len,
						      (uint8_t *)roots[i].data};
		r.n_roots = root_count < 2 ? root_count : 2;
		r.roots = rb;
	}
	wire.cert_response = &r;
	leader_reply(ca->ctx, conn, &wire);
}

static void ca_refuse(struct ca *ca, const char *from, const struct env_identity *who,
		      const char *why)
{
	leader_log_refusal(ca->ctx, "cert_request", from, who, why);
	ca_reply(ca, who->conn, CS_EAUTH, why, NULL, 0, NULL, 0);
}

static void ca_write_done(void *data, int status)
{
	struct ca_write *w = data;
	struct ca *ca = w->ca;
	struct env_blob roots[2];

	ca->writes--;
	if (!ca->stopped) {
		for (size_t i = 0; i < w->root_count; i++)
			roots[i] = (struct env_blob){w->roots[i], w->root_len[i]};
		if (status == 0 && w->conn)
			ca_reply(ca, w->conn, 0, NULL, w->cert, w->cert_len, roots,
				 w->root_count);
		else if (status)
			/* the node asks again (a lost leadership, a full log) */
			env_logf(ca->env, ENV_LOG_WARN,
				 "msg=\"certificate not recorded\" node=%016" PRIx64
				 " err=%s",
				 w->node_id, cs_strerror(status));
	}
	free(w);
	ca_maybe_free(ca);
}

/* Whether cur's record already says what issuing (key, role, signer) says:
 * the same answer again needs no write. */
static bool ca_record_same(const Cs__Node *cur, Cs__NodeRole role, const uint8_t *key,
			   const struct ca_signer *s)
{
	if (!cur || cur->cert_role != role || cur->cert_key.len != ENV_DIGEST_BYTES ||
	    memcmp(cur->cert_key.data, key, ENV_DIGEST_BYTES) != 0 ||
	    cur->cert_root.len != ENV_DIGEST_BYTES ||
	    memcmp(cur->cert_root.data, s->digest[0], ENV_DIGEST_BYTES) != 0 ||
	    cur->n_cert_trust != s->root_count)
		return false;
	for (size_t i = 0; i < s->root_count; i++)
		if (!ca_node_trusts(cur, s->digest[i]))
			return false;
	return true;
}

/* Records the certificate of node id (new: a record from the request) and
 * answers once it commits (conn 0: no answer). */
static void ca_record(struct ca *ca, uint64_t conn, const Cs__Node *cur, uint64_t id,
		      const char *hostname, Cs__NodeRole role,
		      const uint8_t issued_key[ENV_DIGEST_BYTES],
		      const struct ca_signer *s, const uint8_t *cert, size_t cert_len)
{
	Cs__Node n = CS__NODE__INIT;
	ProtobufCBinaryData trust[2];
	struct store_batch b;
	struct ca_write *w;
	uint8_t *buf;
	size_t len;
	int rv;

	if (cur)
		n = *cur;
	else {
		n.id = id;
		n.hostname = hostname ? (char *)hostname : (char *)"";
		n.role = role;
		n.desired_role = role;
		n.state = CS__NODE_STATE__NODE_STATE_UNKNOWN;
	}
	n.cert_key.data = (uint8_t *)issued_key;
	n.cert_key.len = ENV_DIGEST_BYTES;
	n.cert_role = role;
	n.cert_root = (ProtobufCBinaryData){ENV_DIGEST_BYTES, (uint8_t *)s->digest[0]};
	for (size_t i = 0; i < s->root_count; i++)
		trust[i] =
			(ProtobufCBinaryData){ENV_DIGEST_BYTES, (uint8_t *)s->digest[i]};
	n.n_cert_trust = s->root_count;
	n.cert_trust = trust;
	w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->ca = ca;
	w->node_id = id;
	w->conn = conn;
	memcpy(w->cert, cert, cert_len);
	w->cert_len = cert_len;
	for (size_t i = 0; i < s->root_count; i++) {
		assert(s->roots[i].len <= sizeof w->roots[i]);
		memcpy(w->roots[i], s->roots[i].data, s->roots[i].len);
		w->root_len[i] = s->roots[i].len;
	}
	w->root_count = s->root_count;
	store_batch_init(&b);
	rv = store_batch_node(&b,
			      cur ? CS__STORE_ACTION__KIND__KIND_UPDATE
				  : CS__STORE_ACTION__KIND__KIND_CREATE,
			      &n);
	if (rv == 0)
		rv = store_batch_encode(&b, leader_raft_id(ca->ctx), 0, &buf, &len);
	store_batch_free(&b);
	if (rv == 0) {
		rv = leader_write(ca->ctx, buf, len, ca_write_done, w);
		free(buf);
	}
	if (rv) {
		free(w);
		return;
	}
	ca->writes++;
}

static void ca_on_request(struct ca *ca, const char *from, const struct env_identity *who,
			  const Cs__CertRequest *q)
{
	const struct store *st = leader_store(ca->ctx);
	const Cs__Cluster *c = store_cluster(st);
	const Cs__Node *cur;
	struct env_identity subject = {0};
	uint8_t issued_key[ENV_DIGEST_BYTES];
	struct ca_signer s;
	struct env_blob csr, certb;
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
	Cs__NodeRole role;
	char why[PKI_WHY_BYTES];
	uint64_t id;
	int rv;

	if (strlen(from) >= LIMIT_ADDR_BYTES_MAX)
		return;
	if (!c || c->ca_cert.len == 0 || c->ca_key.len == 0) {
		ca_reply(ca, who->conn, CS_EAGAIN, "the cluster's CA is not ready", NULL,
			 0, NULL, 0);
		return;
	}
	if (who->node_id) {
		/* renewal: the certificate names the node */
		if (who->cluster_id != c->id) {
			ca_refuse(ca, from, who, "certificate of another cluster");
			return;
		}
		if (q->node_id && q->node_id != who->node_id) {
			ca_refuse(
				ca, from, who,
				"certificate request for another node than its certificate");
			return;
		}
		id = who->node_id;
		cur = store_node_get(st, id);
		if (!cur || store_cluster_removed(c, id)) {
			ca_refuse(ca, from, who,
				  cur ? "this node was removed from the cluster"
				      : "no such node in the cluster: join it again");
			return;
		}
		role = cur->desired_role;
		if (role == CS__NODE_ROLE__NODE_ROLE_WORKER &&
		    leader_member_addr(ca->ctx, id)) {
			/* demoted: a worker's certificate once it has left the
			 * Raft group (the leader removes it first) */
			ca_reply(ca, who->conn, CS_EAGAIN,
				 "still a member of the Raft group: try again", NULL, 0,
				 NULL, 0);
			return;
		}
	} else {
		if (ca_token_role(c, q->token, &role, why)) {
			ca_refuse(ca, from, who, why);
			return;
		}
		id = q->node_id;
		if (id == 0) {
			ca_refuse(ca, from, who, "no node id in the request");
			return;
		}
		if (store_cluster_removed(c, id)) {
			ca_refuse(ca, from, who,
				  "this node was removed from the cluster: join it again "
				  "with a new state directory");
			return;
		}
		cur = store_node_get(st, id);
		if (!cur && leader_member_addr(ca->ctx, id)) {
			/* a manager that signed its own certificate has no
			 * record until its first session: its id is taken */
			snprintf(why, sizeof why, "node id %016" PRIx64 " is taken", id);
			ca_refuse(ca, from, who, why);
			return;
		}
	}
	subject.node_id = id;
	subject.cluster_id = c->id;
	subject.role = ca_role_of(role);
	ca_signer(c, &s);
	csr = (struct env_blob){q->csr.data, q->csr.len};
	rv = ca->env->ops->pki_sign(ca->env, &s.cert, &s.key, &csr, &subject,
				    ca_cert_life(c), cert, sizeof cert, &cert_len);
	if (rv == CS_EAUTH) {
		ca_refuse(ca, from, who, "certificate signing request does not verify");
		return;
	}
	if (rv == 0) {
		/* the key of what it signed (never expected to fail) */
		certb = (struct env_blob){cert, cert_len};
		rv = pki_cert_key_digest(&certb, issued_key);
	}
	if (rv) {
		/* the CA's own trouble: the node asks again */
		env_logf(ca->env, ENV_LOG_ERROR,
			 "msg=\"cannot sign\" node=%016" PRIx64 " err=%s", id,
			 cs_strerror(rv));
		ca_reply(ca, who->conn, CS_EAGAIN, "the CA cannot sign now: try again",
			 NULL, 0, NULL, 0);
		return;
	}
	if (!who->node_id && cur &&
	    (cur->cert_key.len != sizeof issued_key ||
	     memcmp(cur->cert_key.data, issued_key, sizeof issued_key) != 0) &&
	    !(cur->state == CS__NODE_STATE__NODE_STATE_UNKNOWN &&
	      cur->cert_role == role)) {
		/* the id is someone's: only the same key (an answer lost on
		 * the way) gets it again, or a new key while the node never
		 * opened a session with the same token (a joiner that died
		 * before it kept its certificate: its key died with it; whoever
		 * shows that token could join as a new node anyway) */
		snprintf(why, sizeof why, "node id %016" PRIx64 " is taken", id);
		ca_refuse(ca, from, who, why);
		return;
	}
	if (ca_record_same(cur, role, issued_key, &s)) {
		ca_reply(ca, who->conn, 0, NULL, cert, cert_len, s.roots, s.root_count);
		return;
	}
	env_logf(ca->env, ENV_LOG_INFO,
		 "msg=\"certificate issued\" node=%016" PRIx64
		 " role=%s renewal=%d roots=%zu",
		 id, role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker",
		 who->node_id != 0, s.root_count);
	ca_record(ca, who->conn, cur, id, q->hostname, role, issued_key, &s, cert,
		  cert_len);
}

/* The leader's own certificate during a rotation: the manager signs one for
 * itself from ca_cert alone when it takes the lead (manager_own_certificate),
 * which would not trust the nodes the new root signed already. One the CA's
 * records do not describe is signed again as the phase wants, and recorded. */
static void ca_own(struct ca *ca)
{
	const struct store *st = leader_store(ca->ctx);
	const Cs__Cluster *c = store_cluster(st);
	struct env *env = ca->env;
	struct env_blob none = {NULL, 0}, certb;
	struct env_identity me, who;
	uint8_t issued_key[ENV_DIGEST_BYTES];
	const Cs__Node *n;
	struct ca_signer s;
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
	int rv;

	if (ca_phase(c) == CS__CA_ROTATION_PHASE__CA_ROTATION_NONE ||
	    env->ops->pki_info(env, &none, &me) != 0 || me.node_id == 0 ||
	    me.cluster_id != c->id)
		return;
	n = store_node_get(st, me.node_id);
	if (n && n->cert_key.len == sizeof me.key &&
	    memcmp(n->cert_key.data, me.key, sizeof me.key) == 0)
		return; /* the CA's: the dispatcher asks for what the phase wants */
	ca_signer(c, &s);
	who = (struct env_identity){
		.node_id = me.node_id, .cluster_id = c->id, .role = me.role};
	rv = ca_sign_own(env, &s.cert, &s.key, s.roots, s.root_count, &who,
			 ca_cert_life(c), cert, sizeof cert, &cert_len);
	if (rv) {
		env_logf(env, ENV_LOG_ERROR,
			 "msg=\"own certificate\" node=%016" PRIx64 " err=%s", me.node_id,
			 cs_strerror(rv));
		if (rv == CS_ESTORAGE)
			env->ops->exit(env, "cannot keep this manager's certificate");
		return;
	}
	env_logf(env, ENV_LOG_INFO,
		 "msg=\"own certificate\" node=%016" PRIx64 " rotation=%s roots=%zu",
		 me.node_id, ca_rotation_name(ca_phase(c)), s.root_count);
	certb = (struct env_blob){cert, cert_len};
	if (n && pki_cert_key_digest(&certb, issued_key) == 0)
		ca_record(ca, 0, n, me.node_id, NULL, n->cert_role, issued_key, &s, cert,
			  cert_len);
}

static void ca_rotate_step(struct ca *ca);
static void ca_own(struct ca *ca);

/* Looks at the rotation (and the leader's own certificate) from a timer of
 * its own: a store event comes while the manager applies a Raft entry, and
 * no write may start inside libraft's apply (its log may move). */
static void ca_tick(struct env *env, env_timer_id id, void *data)
{
	struct ca *ca = data;
	(void)env;
	(void)id;
	ca->timer = 0;
	if (ca->own_due) {
		ca->own_due = false;
		ca_own(ca);
	}
	ca_rotate_step(ca);
}

static void ca_kick(struct ca *ca)
{
	if (ca->timer || ca->stopped)
		return;
	if (ca->env->ops->timer_start(ca->env, 0, 0, ca_tick, ca, &ca->timer)) {
		ca->timer = 0; /* the next event tries again */
		env_logf(ca->env, ENV_LOG_WARN, "msg=\"CA timer not armed\"");
	}
}

static void ca_rotate_done(void *data, int status)
{
	struct ca *ca = data;

	ca->writes--;
	ca->rotating = false;
	if (!ca->stopped && status)
		env_logf(ca->env, ENV_LOG_WARN,
			 "msg=\"root CA rotation step not written\" err=%s",
			 cs_strerror(status));
	if (!ca->stopped && ca->again)
		ca_kick(ca);
	ca_maybe_free(ca);
}

/* Moves the rotation on when every node is done with its phase (one write
 * at a time; events that come meanwhile look again after it). */
static void ca_rotate_step(struct ca *ca)
{
	const struct store *st = leader_store(ca->ctx);
	const Cs__Cluster *cur = store_cluster(st);
	Cs__CaRotationPhase phase = ca_phase(cur);
	char wt[PKI_TOKEN_BYTES], mt[PKI_TOKEN_BYTES];
	uint8_t root[ENV_DIGEST_BYTES];
	uint64_t ids[LIMIT_MANAGERS_MAX];
	struct store_batch b;
	size_t done, total, voters;
	Cs__Cluster c;
	uint8_t *buf;
	size_t len;
	int rv;

	ca->again = false;
	if (phase == CS__CA_ROTATION_PHASE__CA_ROTATION_NONE)
		return;
	if (ca->rotating) {
		ca->again = true;
		return;
	}
	/* a manager of the Raft group without a record yet (the first ones
	 * signed their own certificates) counts too: not done */
	voters = leader_voters(ca->ctx, ids, LIMIT_MANAGERS_MAX);
	ca_rotation_progress(st, ids, voters, &done, &total);
	if (done < total)
		return;
	c = *cur;
	switch (phase) {
	case CS__CA_ROTATION_PHASE__CA_ROTATION_TRUST_BOTH:
		if (cur->ca_abandoned_cert.len) {
			/* no node holds the abandoned root's certificate any
			 * more: the rotation to the new root goes on */
			c.ca_abandoned_cert = (ProtobufCBinaryData){0, NULL};
			env_logf(ca->env, ENV_LOG_INFO,
				 "msg=\"root CA rotation\" phase=trust-both "
				 "abandoned=dropped nodes=%zu",
				 total);
			goto write;
		}
		c.ca_rotation = CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW;
		break;
	case CS__CA_ROTATION_PHASE__CA_ROTATION_SIGN_NEW:
		/* the new root is the cluster's; the tokens name it (new
		 * secrets too: the old tokens stop working) */
		c.ca_cert = cur->ca_next_cert;
		c.ca_key = cur->ca_next_key;
		c.ca_next_cert = (ProtobufCBinaryData){0, NULL};
		c.ca_next_key = (ProtobufCBinaryData){0, NULL};
		c.ca_rotation = CS__CA_ROTATION_PHASE__CA_ROTATION_DROP_OLD;
		pki_digest(c.ca_cert.data, c.ca_cert.len, root);
		pki_token_new(ca->env, root, wt);
		pki_token_new(ca->env, root, mt);
		c.worker_token = wt;
		c.manager_token = mt;
		break;
	default:
		c.ca_rotation = CS__CA_ROTATION_PHASE__CA_ROTATION_NONE;
		c.ca_rotations = cur->ca_rotations + 1;
		break;
	}
	env_logf(ca->env, ENV_LOG_INFO, "msg=\"root CA rotation\" phase=%s nodes=%zu",
		 ca_rotation_name(c.ca_rotation), total);
write:
	store_batch_init(&b);
	rv = store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c);
	if (rv == 0)
		rv = store_batch_encode(&b, leader_raft_id(ca->ctx), 0, &buf, &len);
	store_batch_free(&b);
	if (rv)
		return;
	rv = leader_write(ca->ctx, buf, len, ca_rotate_done, ca);
	free(buf);
	if (rv == 0) {
		ca->writes++;
		ca->rotating = true;
	}
}

static int ca_start(const struct leader_ctx *ctx, void **state)
{
	struct ca *ca = calloc(1, sizeof *ca);
	if (!ca)
		return CS_ENOMEM;
	ca->ctx = ctx;
	ca->env = leader_env(ctx);
	*state = ca;
	/* a rotation in progress goes on, and the leader's own certificate
	 * follows it */
	ca->own_due = true;
	if (ca_phase(store_cluster(leader_store(ctx))) !=
	    CS__CA_ROTATION_PHASE__CA_ROTATION_NONE)
		ca_kick(ca);
	return 0;
}

static void ca_stop(void *state, bool dying)
{
	struct ca *ca = state;
	if (!dying && ca->timer)
		ca->env->ops->timer_stop(ca->env, ca->timer);
	ca->timer = 0;
	ca->stopped = true;
	ca_maybe_free(ca);
}

static void ca_on_event(void *state, const struct store_event *ev)
{
	struct ca *ca = state;
	if ((ev->table == STORE_NODE || ev->table == STORE_CLUSTER) &&
	    ca_phase(store_cluster(leader_store(ca->ctx))) !=
		    CS__CA_ROTATION_PHASE__CA_ROTATION_NONE)
		ca_kick(ca);
}

static bool ca_recv(void *state, const char *from, const struct env_identity *who,
		    const Cs__Wire *wire)
{
	if (!wire->cert_request)
		return false;
	ca_on_request(state, from, who, wire->cert_request);
	return true;
}

const struct leader_component_ops ca_component = {
	.name = "ca",
	.start = ca_start,
	.stop = ca_stop,
	.on_event = ca_on_event,
	.recv = ca_recv,
};
