/* ca: the cluster's certificate authority. See ca.h. */
#include "core/ca.h"

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
	snprintf(why, PKI_WHY_BYTES, "wrong join token (rotated, or never this cluster's)");
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
		snprintf(out->worker_token, sizeof out->worker_token, "%s", cfg->worker_token);
	else
		pki_token_make(root, env->ops->random_u64(env), env->ops->random_u64(env),
			       out->worker_token);
	if (ca_token_names(cfg->manager_token, root))
		snprintf(out->manager_token, sizeof out->manager_token, "%s",
			 cfg->manager_token);
	else
		pki_token_make(root, env->ops->random_u64(env), env->ops->random_u64(env),
			       out->manager_token);
	return 0;
}

int ca_issue_self(struct env *env, const struct env_blob *ca_cert,
		  const struct env_blob *ca_key, uint64_t cluster_id, uint64_t node_id,
		  enum env_role role, ms_t life_ms)
{
	uint8_t csr[PKI_DER_BYTES_MAX], cert[PKI_DER_BYTES_MAX];
	size_t csr_len, cert_len;
	struct env_identity who = {.node_id = node_id, .cluster_id = cluster_id,
				   .role = role};
	struct env_blob csrb, certb;
	int rv;

	if ((rv = env->ops->pki_csr(env, csr, sizeof csr, &csr_len)))
		return rv;
	csrb = (struct env_blob){csr, csr_len};
	if ((rv = env->ops->pki_sign(env, ca_cert, ca_key, &csrb, &who, life_ms, cert,
				     sizeof cert, &cert_len)))
		return rv;
	certb = (struct env_blob){cert, cert_len};
	return env->ops->pki_install(env, &certb, ca_cert, 1);
}

/* ---------------------------------------------------------------- the component */

struct ca {
	const struct leader_ctx *ctx;
	struct env *env;
	size_t writes; /* in flight: the last answer frees a stopped CA */
	bool stopped;
};

/* One certificate waiting for its Node record to commit. */
struct ca_write {
	struct ca *ca;
	uint64_t conn; /* the request's connection */
	uint64_t node_id;
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
};

static void ca_maybe_free(struct ca *ca)
{
	if (ca->stopped && ca->writes == 0)
		free(ca);
}

/* Answers on the connection the request came on (a joiner has no
 * certificate to be dialled at, and no address it names is trusted). */
static void ca_reply(struct ca *ca, uint64_t conn, int status, const char *error,
		     const uint8_t *cert, size_t cert_len)
{
	const Cs__Cluster *c = store_cluster(leader_store(ca->ctx));
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	ProtobufCBinaryData root;

	r.status = status;
	r.error = (char *)(error ? error : "");
	if (status == 0 && c && c->ca_cert.len) {
		r.cert.data = (uint8_t *)cert;
		r.cert.len = cert_len;
		root = c->ca_cert;
		r.n_roots = 1;
		r.roots = &root;
	}
	wire.cert_response = &r;
	leader_reply(ca->ctx, conn, &wire);
}

static void ca_refuse(struct ca *ca, const char *from, const struct env_identity *who,
		      const char *why)
{
	manager_log_refusal(leader_manager(ca->ctx), "cert_request", from, who, why);
	ca_reply(ca, who->conn, CS_EAUTH, why, NULL, 0);
}

static void ca_write_done(void *data, int status)
{
	struct ca_write *w = data;
	struct ca *ca = w->ca;

	ca->writes--;
	if (!ca->stopped) {
		if (status == 0)
			ca_reply(ca, w->conn, 0, NULL, w->cert, w->cert_len);
		else
			/* the node asks again (a lost leadership, a full log) */
			env_logf(ca->env, ENV_LOG_WARN,
				 "msg=\"certificate not recorded\" node=%016" PRIx64
				 " err=%s",
				 w->node_id, cs_strerror(status));
	}
	free(w);
	ca_maybe_free(ca);
}

/* Whether node id was removed (node rm): it may not come back as itself. */
static bool ca_removed(const Cs__Cluster *c, uint64_t id)
{
	for (size_t i = 0; c && i < c->n_removed_nodes; i++)
		if (c->removed_nodes[i] == id)
			return true;
	return false;
}

/* Records the certificate of node id (new: a record from the request) and
 * answers once it commits. */
static void ca_record(struct ca *ca, uint64_t conn, const Cs__Node *cur, uint64_t id,
		      const Cs__CertRequest *q, Cs__NodeRole role,
		      const struct env_identity *issued, const uint8_t *cert,
		      size_t cert_len)
{
	Cs__Node n = CS__NODE__INIT;
	struct store_batch b;
	struct ca_write *w;
	uint8_t *buf;
	size_t len;
	int rv;

	if (cur)
		n = *cur;
	else {
		n.id = id;
		n.hostname = q->hostname ? q->hostname : (char *)"";
		n.role = role;
		n.desired_role = role;
		n.state = CS__NODE_STATE__NODE_STATE_UNKNOWN;
	}
	n.cert_key.data = (uint8_t *)issued->key;
	n.cert_key.len = sizeof issued->key;
	n.cert_role = role;
	w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->ca = ca;
	w->node_id = id;
	w->conn = conn;
	memcpy(w->cert, cert, cert_len);
	w->cert_len = cert_len;
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
	struct env_identity subject = {0}, issued;
	struct env_blob ca_cert, ca_key, csr, certb;
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
	Cs__NodeRole role;
	char why[PKI_WHY_BYTES];
	uint64_t id;
	int rv;

	if (strlen(from) >= LIMIT_ADDR_BYTES_MAX)
		return;
	if (!c || c->ca_cert.len == 0 || c->ca_key.len == 0) {
		ca_reply(ca, who->conn, CS_EAGAIN, "the cluster's CA is not ready", NULL, 0);
		return;
	}
	if (who->node_id) {
		/* renewal: the certificate names the node */
		if (who->cluster_id != c->id) {
			ca_refuse(ca, from, who, "certificate of another cluster");
			return;
		}
		if (q->node_id && q->node_id != who->node_id) {
			ca_refuse(ca, from, who,
				  "certificate request for another node than its certificate");
			return;
		}
		id = who->node_id;
		cur = store_node_get(st, id);
		if (!cur || ca_removed(c, id)) {
			ca_refuse(ca, from, who,
				  cur ? "this node was removed from the cluster"
				      : "no such node in the cluster: join it again");
			return;
		}
		role = cur->desired_role;
		if (role == CS__NODE_ROLE__NODE_ROLE_WORKER &&
		    manager_member_addr(leader_manager(ca->ctx), id)) {
			/* demoted: a worker's certificate once it has left the
			 * Raft group (the leader removes it first) */
			ca_reply(ca, who->conn, CS_EAGAIN,
				 "still a member of the Raft group: try again", NULL, 0);
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
		if (ca_removed(c, id)) {
			ca_refuse(ca, from, who,
				  "this node was removed from the cluster: join it again "
				  "with a new state directory");
			return;
		}
		cur = store_node_get(st, id);
		if (!cur && manager_member_addr(leader_manager(ca->ctx), id)) {
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
	ca_cert = (struct env_blob){c->ca_cert.data, c->ca_cert.len};
	ca_key = (struct env_blob){c->ca_key.data, c->ca_key.len};
	csr = (struct env_blob){q->csr.data, q->csr.len};
	rv = ca->env->ops->pki_sign(ca->env, &ca_cert, &ca_key, &csr, &subject,
				    ca_cert_life(c), cert, sizeof cert, &cert_len);
	if (rv == CS_EAUTH) {
		ca_refuse(ca, from, who, "certificate signing request does not verify");
		return;
	}
	if (rv) {
		/* the CA's own trouble: the node asks again */
		env_logf(ca->env, ENV_LOG_ERROR, "msg=\"cannot sign\" node=%016" PRIx64 " err=%s",
			 id, cs_strerror(rv));
		ca_reply(ca, who->conn, CS_EAGAIN, "the CA cannot sign now: try again", NULL,
			 0);
		return;
	}
	certb = (struct env_blob){cert, cert_len};
	if (ca->env->ops->pki_info(ca->env, &certb, &issued))
		return;
	if (!who->node_id && cur &&
	    (cur->cert_key.len != sizeof issued.key ||
	     memcmp(cur->cert_key.data, issued.key, sizeof issued.key) != 0) &&
	    !(cur->state == CS__NODE_STATE__NODE_STATE_UNKNOWN && cur->cert_role == role)) {
		/* the id is someone's: only the same key (an answer lost on
		 * the way) gets it again, or a new key while the node never
		 * opened a session with the same token (a joiner that died
		 * before it kept its certificate: its key died with it; whoever
		 * shows that token could join as a new node anyway) */
		snprintf(why, sizeof why, "node id %016" PRIx64 " is taken", id);
		ca_refuse(ca, from, who, why);
		return;
	}
	if (cur && cur->cert_role == role && cur->cert_key.len == sizeof issued.key &&
	    memcmp(cur->cert_key.data, issued.key, sizeof issued.key) == 0) {
		ca_reply(ca, who->conn, 0, NULL, cert, cert_len);
		return;
	}
	env_logf(ca->env, ENV_LOG_INFO,
		 "msg=\"certificate issued\" node=%016" PRIx64 " role=%s renewal=%d", id,
		 role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker",
		 who->node_id != 0);
	ca_record(ca, who->conn, cur, id, q, role, &issued, cert, cert_len);
}

static int ca_start(const struct leader_ctx *ctx, void **state)
{
	struct ca *ca = calloc(1, sizeof *ca);
	if (!ca)
		return CS_ENOMEM;
	ca->ctx = ctx;
	ca->env = leader_env(ctx);
	*state = ca;
	return 0;
}

static void ca_stop(void *state, bool dying)
{
	struct ca *ca = state;
	(void)dying;
	ca->stopped = true;
	ca_maybe_free(ca);
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
	.recv = ca_recv,
};
