/* nodecert: a node's own certificate, from the node's side (SwarmKit's
 * node certificate renewal): joining with a token, renewing, and following
 * the role the cluster wants. The agent drives it; nodecert only decides
 * and builds requests.
 *
 *  - A node without a certificate and with a join token trusts the root the
 *    token's digest names (env pki_pin: a fake manager is found out before
 *    anything is sent to it) and asks with a CSR, the token and the id it
 *    drew; the answer's certificate and roots are installed (durably).
 *  - A node with one renews it, over it, at a random point between
 *    LIMIT_CERT_RENEW_PERMILLE_MIN and _MAX of its life, and at once when the
 *    cluster wants another role than the one it grants.
 *    It renews at once too when the cluster asks (a root CA rotation: the
 *    renew_cert of a session or heartbeat answer).
 *  - A node whose certificate expired is a stranger: with a token it joins
 *    again as a new node; without, it can only wait (logged).
 * Single-threaded; no timers of its own (the agent's tick asks). */
#ifndef CS_NODECERT_H
#define CS_NODECERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/pki.h"

struct nodecert {
	struct env *env;
	const char *token;	/* join token, or NULL */
	struct env_identity id; /* the installed certificate (node_id 0: none) */
	uint64_t join_id;	/* the id asked for when joining */
	uint8_t csr[PKI_DER_BYTES_MAX];
	size_t csr_len;	    /* the pending request's CSR (0: none) */
	ms_t renew_at_ms;   /* when to renew */
	ms_t asked_ms;	    /* the last request sent (0: none in flight) */
	enum env_role want; /* the role the cluster wants (NONE: unknown) */
	bool pinned;
	bool refused;
	bool renew_now;	   /* the cluster asked for a renewal (a CA rotation) */
	uint64_t installs; /* certificates installed from answers so far */
};

/* What an answer did. */
enum nodecert_result {
	NODECERT_IGNORED,   /* not an answer this node waits for */
	NODECERT_INSTALLED, /* a new certificate is in place */
	NODECERT_REDIRECT,  /* ask the leader named in *leader */
	NODECERT_RETRY,	    /* ask again later (busy, not ready) */
	NODECERT_REFUSED,   /* the cluster refused: *why; stop asking */
	NODECERT_FATAL,	    /* the certificate could not be kept: env exit asked */
};

/* nodecert_init reads this node's certificate from the env; without one,
 * pins the token's root (a malformed token: CS_EINVAL, why set). join_id is
 * the id to ask for (drawn and kept by the caller). Returns 0 or an error. */
int nodecert_init(struct nodecert *nc, struct env *env, const char *token,
		  uint64_t join_id, char why[PKI_WHY_BYTES]);

/* nodecert_valid: the node has a certificate valid now. */
bool nodecert_valid(struct nodecert *nc);

/* nodecert_reload reads the env's certificate again (another part of the
 * node installed one: a manager signing its own); true when it changed. */
bool nodecert_reload(struct nodecert *nc);

/* nodecert_due: a request should go now (none held and a token to join
 * with, or a renewal due, or a role to change), and none is in flight
 * since less than retry_ms. */
bool nodecert_due(struct nodecert *nc, ms_t retry_ms);

/* nodecert_request fills q (its csr points into nc) for the next request:
 * a join or a renewal. Returns 0 or an error of pki_csr. */
int nodecert_request(struct nodecert *nc, const char *hostname, Cs__CertRequest *q);

/* nodecert_on_response takes an answer from who (a manager's certificate:
 * the caller checked). */
enum nodecert_result nodecert_on_response(struct nodecert *nc, const Cs__CertResponse *r,
					  const char **leader, const char **why);

/* nodecert_want: the role the cluster wants for this node (from a session
 * or heartbeat answer): a certificate of another role is renewed at once. */
void nodecert_want(struct nodecert *nc, enum env_role role);

/* nodecert_renew: the cluster asks this node to renew now (a root CA
 * rotation: new roots to trust, or a certificate from the new root). */
void nodecert_renew(struct nodecert *nc);

#endif
