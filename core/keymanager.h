/* keymanager: the network keys of encrypted overlay networks (issue 17;
 * SwarmKit's manager/keymanager). A leader component (core/leader.h) that
 * makes the keys once the cluster has an encrypted network, keeps them in
 * the cluster object (Cluster.network_keys: replicated by Raft, encrypted
 * at rest with the log) and rotates them on a period (the cluster setting
 * network_key_rotation_ms; SwarmKit's 12 h). A new leader takes the keys
 * from the store: it makes none while valid ones exist.
 *
 * The order of use is SwarmKit's (and libnetwork's): at most
 * KEYMGR_KEYS_MAX keys, ascending id (each id the key manager's lamport
 * time when it made it); every key is accepted on receive; the newest is
 * for receive only, the one before it is the one to send with (the
 * primary). A rotation drops the oldest and adds a new one: the new key
 * reaches every node before any node sends with it, at the next rotation.
 * The dispatcher gives the keys to ready nodes on their sessions; the
 * agents keep them in memory only. Keys never go to logs, recordings or
 * the control API's answers: those say ids and keymgr_digest. */
#ifndef CS_KEYMANAGER_H
#define CS_KEYMANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"

struct leader_component_ops;
struct store;

/* SwarmKit's keyringSize. */
#define KEYMGR_KEYS_MAX ENV_NET_KEYS_MAX
_Static_assert(KEYMGR_KEYS_MAX == 3, "SwarmKit keeps three keys");

/* The key manager, a leader component (core/leader.h). */
extern const struct leader_component_ops keymanager_component;

/* A key set being built (keymgr_next): ascending id. Holds secrets: wipe
 * it with keymgr_keys_wipe when done. */
struct keymgr_keys {
	struct env_net_key v[KEYMGR_KEYS_MAX];
	size_t count;
	uint32_t clock; /* the lamport clock after the set was made */
};

/* keymgr_digest sums up count keys (borrowed; ids and bytes) in 64 bits
 * (the first 8 bytes of a SHA-256, never 0); 0 for no keys. Says whether
 * two holders have the same keys without saying the keys. */
uint64_t keymgr_digest(const struct env_net_key *keys, size_t count);

/* keymgr_primary: the index of the key to send with among count keys in
 * ascending id (libnetwork's order: the second newest; the only one when
 * there is one). count > 0. */
size_t keymgr_primary(size_t count);

/* keymgr_valid: whether c (borrowed, may be NULL) holds a valid key set:
 * 1..KEYMGR_KEYS_MAX keys of ENV_NET_KEY_BYTES, ids > 0, strictly
 * ascending, none above the clock. */
bool keymgr_valid(const Cs__Cluster *c);

/* keymgr_cluster_keys copies c's keys (when valid) into out; out->count is
 * 0 otherwise. */
void keymgr_cluster_keys(const Cs__Cluster *c, struct keymgr_keys *out);

/* keymgr_next makes the set that follows c's (borrowed, may be NULL), with
 * bytes from env's randomness: KEYMGR_KEYS_MAX new keys when c holds no
 * valid set (SwarmKit's first run); else c's keys less the oldest when
 * full, with one new key. */
void keymgr_next(struct env *env, const Cs__Cluster *c, struct keymgr_keys *out);

/* keymgr_batch encodes the store batch that writes keys into the cluster
 * cur (borrowed; the update names cur's version), proposed by proposer.
 * Returns 0 and *buf (the caller frees it, after wiping *len bytes: it
 * holds the keys), or CS_ENOMEM / CS_EINVAL (no cluster). */
int keymgr_batch(const Cs__Cluster *cur, const struct keymgr_keys *keys,
		 uint64_t proposer, uint8_t **buf, size_t *len);

/* keymgr_keys_wipe zeroes a key set. */
void keymgr_keys_wipe(struct keymgr_keys *k);

/* keymgr_rotation_ms: the cluster's rotation period (the default when
 * unset). */
uint64_t keymgr_rotation_ms(const Cs__Cluster *c);

/* keymgr_has_encrypted: whether the store holds an encrypted network. */
bool keymgr_has_encrypted(const struct store *st);

#endif
