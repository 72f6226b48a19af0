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
 * leader. Removed nodes get nothing.
 *
 * Root CA rotation (swarmctl ca rotate; SwarmKit's root rotation, without
 * cross-signing: a root is trusted as given, one step). The Cluster record
 * holds the new root in ca_next_* and a phase; each Node record says which
 * root signed its last certificate (cert_root) and which roots it was told
 * to trust with it (cert_trust), and its heartbeats which certificate it
 * holds (cert_held: a node counts only once it holds what the record says,
 * as an answer may be lost after its record committed). Nodes renew when their dispatcher says so
 * (renew_cert in a session or heartbeat answer: ca_node_should_renew).
 *  TRUST_BOTH: the old root signs; certificates come with roots [old, new].
 *  SIGN_NEW:   once every node's record trusts both: the new root signs
 *              (roots [new, old]).
 *  DROP_OLD:   once every node's certificate is the new root's: the new
 *              root becomes ca_cert/ca_key, the old is forgotten, the join
 *              tokens are drawn again naming the new root (old tokens stop
 *              working), and certificates come with roots [new] only.
 *  NONE:       once every node trusts only the new root (ca_rotations + 1).
 * A `ca rotate` during a rotation replaces it, as SwarmKit's does (a new
 * desired root; controlapi/ca_rotation.go: "if a root rotation is already
 * in progress, just replace it and start over"):
 *  in TRUST_BOTH: the new root takes the next one's place (nothing was
 *              signed by that one); nodes renew to trust it.
 *  in SIGN_NEW: the root that signed is kept as ca_abandoned_cert, trusted
 *              beside the old one (SwarmKit's cross-signed chain keeps its
 *              certificates valid too), and the phase goes back to
 *              TRUST_BOTH: the old root signs, with roots [old, abandoned],
 *              until every node's certificate is the old root's again;
 *              then the abandoned root is dropped and the rotation to the
 *              new root goes on (nodes renew to trust it).
 *  in DROP_OLD: the rotation is done (its root is the cluster's, every
 *              certificate its; ca_rotations + 1) and the next starts from
 *              it, in TRUST_BOTH.
 * At most two roots are trusted at once in every step.
 * Every transition is this component's decision on store events (a new
 * leader carries on a rotation in progress). The nodes a rotation waits for
 * are every node record of the store (a removed node has none): a node that
 * is down holds the rotation at its phase until it comes back (and renews)
 * or is removed, as SwarmKit's does; no node is ever left with a
 * certificate its peers do not trust. */
#ifndef CS_CA_H
#define CS_CA_H

#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/leader.h"
#include "core/pki.h"
#include "core/store.h"

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

/* ca_node_should_renew: whether node n (its record) must renew its
 * certificate for the rotation in c (false when none is in progress): the
 * certificate it holds (held, the SHA-256 of its key; held_len 0: not
 * known, take the recorded one) is not the one the CA recorded, or that
 * one is not what the phase wants. */
bool ca_node_should_renew(const Cs__Cluster *c, const Cs__Node *n, const uint8_t *held,
			  size_t held_len);

/* ca_node_holds: during a rotation, whether a heartbeat saying the node
 * holds a certificate of key (held, ENV_DIGEST_BYTES) should be written in
 * its record (cert_held): it holds the one the CA recorded, and the record
 * does not say so yet. */
bool ca_node_holds(const Cs__Cluster *c, const Cs__Node *n, const uint8_t *held,
		   size_t held_len);

/* ca_rotation_progress counts the nodes the rotation in st's cluster waits
 * for (*total) and those done with its current phase (*done); both 0 when
 * none is in progress. voters (voter_count ids, NULL when 0) are the Raft
 * group's members: one without a node record yet (the first managers,
 * until their first session) is waited for too, and not done. */
void ca_rotation_progress(const struct store *st, const uint64_t *voters,
			  size_t voter_count, size_t *done, size_t *total);

/* ca_rotation_name: "none", "trust-both", "sign-new", "drop-old". */
const char *ca_rotation_name(Cs__CaRotationPhase phase);

/* ca_rotation_start fills next (a copy of cur, borrowing from it and from
 * the buffers) to start a rotation to a new root made with the env, or to
 * replace the one in progress with it (see above): 0, CS_ENOENT (no CA
 * yet), or an error of pki_ca_create. */
int ca_rotation_start(struct env *env, const Cs__Cluster *cur, Cs__Cluster *next,
		      uint8_t cert[PKI_DER_BYTES_MAX], uint8_t key[PKI_DER_BYTES_MAX],
		      char *why, size_t why_size);

/* ca_role_of: the env role of a node role. */
enum env_role ca_role_of(Cs__NodeRole role);

#endif
