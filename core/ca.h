/* ca: the cluster's certificate authority (SwarmKit's CA server), a leader
 * component. The root CA's certificate and key live in the Cluster record
 * (replicated, encrypted at rest), so that any leader signs. A node gets
 * its certificate by sending a CSR (its private key never leaves it):
 *  - a joiner, over a connection without a certificate, with a join token
 *    (SWMTKN-1-<root digest>-<secret>) and the node id it drew: the secret
 *    says the role; the id must be new, or the same node asking again with
 *    the same key (an answer lost on the way);
 *  - a node renewing, over its own certificate (which names it): the
 *    certificate gets the role the cluster wants for it (a promote or
 *    demote takes effect this way).
 * The CA records each node's key and granted role in its Node record before
 * it answers, so that a second key for a taken id is refused by any later
 * leader. Removed nodes get nothing. */
#ifndef CS_CA_H
#define CS_CA_H

#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/leader.h"
#include "core/pki.h"

extern const struct leader_component_ops ca_component;

/* What a new cluster's record holds of the CA: its root and the tokens. */
struct ca_new {
	uint8_t cert[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	size_t cert_len, key_len;
	char worker_token[PKI_TOKEN_BYTES], manager_token[PKI_TOKEN_BYTES];
};

/* ca_cluster_new makes the root CA of cluster_id (or takes cfg's, when it
 * gives one: the simulator's and tests' managers that start together) and
 * join tokens for it (cfg's, when they name that root; else drawn). Returns
 * 0, or an error of pki_ca_create. */
int ca_cluster_new(struct env *env, const struct manager_cfg *cfg, uint64_t cluster_id,
		   struct ca_new *out);

/* ca_token_role reads which role token grants in cluster c: 0 and *role, or
 * CS_EAUTH with why (a token that is malformed, names another root, or
 * carries neither secret). */
int ca_token_role(const Cs__Cluster *c, const char *token, Cs__NodeRole *role,
		  char why[PKI_WHY_BYTES]);

/* ca_issue_self gives this node a certificate from c's CA directly (the
 * leader for itself; a manager started with the CA in its configuration):
 * a new key, signed, installed. Returns 0, CS_ESTORAGE (not durable: fatal
 * to the caller), or another error. */
int ca_issue_self(struct env *env, const struct env_blob *ca_cert,
		  const struct env_blob *ca_key, uint64_t cluster_id, uint64_t node_id,
		  enum env_role role, ms_t life_ms);

/* ca_cert_life: the node certificates' life in cluster c. */
ms_t ca_cert_life(const Cs__Cluster *c);

/* ca_role_of: the env role of a node role. */
enum env_role ca_role_of(Cs__NodeRole role);

#endif
