/* nodecert: a node's own certificate. See nodecert.h. */
#include "core/nodecert.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"

/* Picks when to renew: a random point between the min and max fractions of
 * the certificate's life, counted from when it was issued. */
static void nodecert_schedule(struct nodecert *nc)
{
	struct env *env = nc->env;
	ms_t now = env->ops->now_ms(env);
	ms_t life = nc->id.life_ms;
	ms_t left = nc->id.expires_ms > now ? nc->id.expires_ms - now : 0;
	ms_t issued_ago = life > left ? life - left : 0;
	uint64_t span = LIMIT_CERT_RENEW_PERMILLE_MAX - LIMIT_CERT_RENEW_PERMILLE_MIN + 1;
	uint64_t permille =
		LIMIT_CERT_RENEW_PERMILLE_MIN + env->ops->random_u64(env) % span;
	ms_t target = life / 1000 * permille + life % 1000 * permille / 1000;

	nc->renew_at_ms = now + (target > issued_ago ? target - issued_ago : 0);
}

static bool nodecert_read(struct nodecert *nc)
{
	struct env_blob none = {NULL, 0};
	struct env_identity id;

	if (nc->env->ops->pki_info(nc->env, &none, &id) != 0)
		memset(&id, 0, sizeof id);
	/* the same certificate: the same key, name and root (its expiry on
	 * the env's clock may read differently from one call to the next) */
	bool same = id.node_id == nc->id.node_id && id.role == nc->id.role &&
		    id.cluster_id == nc->id.cluster_id && id.life_ms == nc->id.life_ms &&
		    memcmp(id.key, nc->id.key, sizeof id.key) == 0 &&
		    memcmp(id.root, nc->id.root, sizeof id.root) == 0;
	nc->id = id; /* its end, read again */
	if (same)
		return false;
	if (id.node_id)
		nodecert_schedule(nc);
	return true;
}

int nodecert_init(struct nodecert *nc, struct env *env, const char *token,
		  uint64_t join_id, char why[PKI_WHY_BYTES])
{
	memset(nc, 0, sizeof *nc);
	nc->env = env;
	nc->token = token && *token ? token : NULL;
	nc->join_id = join_id;
	nodecert_read(nc);
	if (!nc->id.node_id && nc->token) {
		uint8_t digest[ENV_DIGEST_BYTES];
		char secret[PKI_TOKEN_SECRET_BYTES];
		if (pki_token_parse(nc->token, digest, secret, why) != 0)
			return CS_EINVAL;
		env->ops->pki_pin(env, digest);
		nc->pinned = true;
	}
	return 0;
}

bool nodecert_valid(struct nodecert *nc)
{
	return nc->id.node_id != 0 && nc->id.expires_ms > nc->env->ops->now_ms(nc->env);
}

bool nodecert_reload(struct nodecert *nc)
{
	return nodecert_read(nc);
}

bool nodecert_due(struct nodecert *nc, ms_t retry_ms)
{
	ms_t now = nc->env->ops->now_ms(nc->env);

	if (nc->refused || (nc->asked_ms && now - nc->asked_ms < retry_ms))
		return false;
	if (!nodecert_valid(nc))
		return nc->token != NULL;
	return now >= nc->renew_at_ms || nc->renew_now ||
	       (nc->want != ENV_ROLE_NONE && nc->want != nc->id.role);
}

int nodecert_request(struct nodecert *nc, const char *hostname, Cs__CertRequest *q)
{
	struct env *env = nc->env;
	int rv;

	if (nc->csr_len == 0 &&
	    (rv = env->ops->pki_csr(env, nc->csr, sizeof nc->csr, &nc->csr_len)) != 0) {
		nc->csr_len = 0;
		return rv;
	}
	cs__cert_request__init(q);
	q->csr.data = nc->csr;
	q->csr.len = nc->csr_len;
	q->hostname = (char *)(hostname ? hostname : "");
	if (!nodecert_valid(nc)) {
		/* a join (again, after an expiry: as a new node) */
		if (nc->id.node_id && nc->join_id == nc->id.node_id)
			while ((nc->join_id = env->ops->random_u64(env)) ==
				       nc->id.node_id ||
			       nc->join_id == 0)
				;
		q->token = (char *)nc->token;
		q->node_id = nc->join_id;
	}
	nc->asked_ms = env->ops->now_ms(env);
	if (nc->asked_ms == 0)
		nc->asked_ms = 1;
	return 0;
}

enum nodecert_result nodecert_on_response(struct nodecert *nc, const Cs__CertResponse *r,
					  const char **leader, const char **why)
{
	struct env *env = nc->env;
	struct env_blob cert, roots[2];
	size_t n = r->n_roots < 2 ? r->n_roots : 2;
	int rv;

	*leader = NULL;
	*why = NULL;
	if (!nc->asked_ms)
		return NODECERT_IGNORED;
	if (r->status == CS_ENOTLEADER) {
		*leader = r->leader && *r->leader ? r->leader : NULL;
		nc->asked_ms = 0;
		return NODECERT_REDIRECT;
	}
	if (r->status == CS_EAUTH) {
		*why = r->error && *r->error ? r->error : cs_strerror(CS_EAUTH);
		nc->asked_ms = 0;
		/* a renewal refused is the cluster's verdict on this node; a
		 * join refused, on its token: either way, asking again will
		 * not change it */
		nc->refused = true;
		return NODECERT_REFUSED;
	}
	if (r->status || r->cert.len == 0 || n == 0) {
		nc->asked_ms = 0;
		return NODECERT_RETRY;
	}
	cert = (struct env_blob){r->cert.data, r->cert.len};
	for (size_t i = 0; i < n; i++)
		roots[i] = (struct env_blob){r->roots[i].data, r->roots[i].len};
	rv = env->ops->pki_install(env, &cert, roots, n);
	nc->asked_ms = 0;
	if (rv == CS_ESTORAGE) {
		env->ops->exit(env, "cannot keep this node's new certificate");
		return NODECERT_FATAL;
	}
	if (rv) {
		env_logf(env, ENV_LOG_WARN, "msg=\"certificate not installed\" err=%s",
			 cs_strerror(rv));
		nc->csr_len = 0; /* a new key next time */
		return NODECERT_RETRY;
	}
	nc->csr_len = 0;
	nc->renew_now = false;
	nc->installs++;
	nodecert_read(nc);
	env_logf(env, ENV_LOG_INFO,
		 "msg=\"certificate installed\" node=%016" PRIx64
		 " role=%s life_ms=%" PRIu64,
		 nc->id.node_id, nc->id.role == ENV_ROLE_MANAGER ? "manager" : "worker",
		 (uint64_t)nc->id.life_ms);
	return NODECERT_INSTALLED;
}

void nodecert_want(struct nodecert *nc, enum env_role role)
{
	nc->want = role;
}

void nodecert_renew(struct nodecert *nc)
{
	nc->renew_now = true;
}
