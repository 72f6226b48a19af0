/* keymanager: see keymanager.h. SwarmKit's manager/keymanager/keymanager.go
 * is the reference: keys from the manager's randomness, each with a
 * lamport-time id, KEYMGR_KEYS_MAX kept, the oldest dropped at each
 * rotation; the first run makes a full set. Unlike SwarmKit (whose keys
 * also serve the gossip of libnetwork, which cswarm has not), no key is
 * made before the cluster has an encrypted network. */
#include "core/keymanager.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/leader.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "core/pki.h"
#include "core/seal.h"
#include "core/store.h"

/* ---------------------------------------------------------------- key sets */

uint64_t keymgr_digest(const struct env_net_key *keys, size_t count)
{
	uint8_t buf[KEYMGR_KEYS_MAX * (4 + ENV_NET_KEY_BYTES)];
	uint8_t d[ENV_DIGEST_BYTES];
	uint64_t v = 0;
	size_t len = 0;

	if (count == 0)
		return 0;
	assert(count <= KEYMGR_KEYS_MAX);
	for (size_t i = 0; i < count; i++) {
		for (int b = 3; b >= 0; b--)
			buf[len++] = (uint8_t)(keys[i].id >> (8 * b));
		memcpy(buf + len, keys[i].key, ENV_NET_KEY_BYTES);
		len += ENV_NET_KEY_BYTES;
	}
	pki_digest(buf, len, d);
	seal_wipe(buf, sizeof buf);
	for (size_t i = 0; i < 8; i++)
		v = v << 8 | d[i];
	return v | 1;
}

size_t keymgr_primary(size_t count)
{
	assert(count > 0);
	assert(count <= KEYMGR_KEYS_MAX);
	/* libnetwork's getKeys: sorted by lamport time, the second newest
	 * first (the primary); the newest is only accepted */
	return count >= 2 ? count - 2 : 0;
}

bool keymgr_valid(const Cs__Cluster *c)
{
	uint32_t last = 0;

	if (!c || c->n_network_keys == 0 || c->n_network_keys > KEYMGR_KEYS_MAX)
		return false;
	for (size_t i = 0; i < c->n_network_keys; i++) {
		const Cs__NetworkKey *k = c->network_keys[i];
		if (!k || k->id <= last || k->key.len != ENV_NET_KEY_BYTES)
			return false;
		last = k->id;
	}
	return last <= c->network_key_clock;
}

void keymgr_cluster_keys(const Cs__Cluster *c, struct keymgr_keys *out)
{
	memset(out, 0, sizeof *out);
	if (c)
		out->clock = c->network_key_clock;
	if (!keymgr_valid(c))
		return;
	for (size_t i = 0; i < c->n_network_keys; i++) {
		out->v[i].id = c->network_keys[i]->id;
		memcpy(out->v[i].key, c->network_keys[i]->key.data, ENV_NET_KEY_BYTES);
	}
	out->count = c->n_network_keys;
}

/* One new key with the next lamport time. */
static void keymgr_make(struct env *env, struct keymgr_keys *k)
{
	struct env_net_key *n;

	assert(k->count < KEYMGR_KEYS_MAX);
	n = &k->v[k->count++];
	n->id = ++k->clock;
	for (size_t i = 0; i < ENV_NET_KEY_BYTES; i += 8) {
		uint64_t r = env->ops->random_u64(env);
		for (size_t b = 0; b < 8 && i + b < ENV_NET_KEY_BYTES; b++)
			n->key[i + b] = (uint8_t)(r >> (8 * b));
		seal_wipe(&r, sizeof r);
	}
	assert(n->id > 0);
}

void keymgr_next(struct env *env, const Cs__Cluster *c, struct keymgr_keys *out)
{
	keymgr_cluster_keys(c, out);
	if (out->count == 0) {
		while (out->count < KEYMGR_KEYS_MAX)
			keymgr_make(env, out);
		return;
	}
	if (out->count == KEYMGR_KEYS_MAX) {
		/* the oldest goes (SwarmKit keeps the latest keys) */
		seal_wipe(&out->v[0], sizeof out->v[0]);
		memmove(&out->v[0], &out->v[1], (KEYMGR_KEYS_MAX - 1) * sizeof out->v[0]);
		seal_wipe(&out->v[KEYMGR_KEYS_MAX - 1], sizeof out->v[0]);
		out->count--;
	}
	keymgr_make(env, out);
	assert(out->count >= 2);
}

int keymgr_batch(const Cs__Cluster *cur, const struct keymgr_keys *keys,
		 uint64_t proposer, uint8_t **buf, size_t *len)
{
	Cs__NetworkKey nk[KEYMGR_KEYS_MAX];
	Cs__NetworkKey *ptrs[KEYMGR_KEYS_MAX];
	struct store_batch b;
	Cs__Cluster c;
	int rv;

	if (!cur)
		return CS_EINVAL;
	assert(keys->count <= KEYMGR_KEYS_MAX);
	c = *cur;
	for (size_t i = 0; i < keys->count; i++) {
		cs__network_key__init(&nk[i]);
		nk[i].id = keys->v[i].id;
		nk[i].key.data = (uint8_t *)keys->v[i].key;
		nk[i].key.len = ENV_NET_KEY_BYTES;
		ptrs[i] = &nk[i];
	}
	c.network_keys = ptrs;
	c.n_network_keys = keys->count;
	c.network_key_clock = keys->clock;
	store_batch_init(&b);
	rv = store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c);
	if (rv == 0)
		rv = store_batch_encode(&b, proposer, 0, buf, len);
	if (b.buf)
		seal_wipe(b.buf, b.len);
	store_batch_free(&b);
	return rv;
}

void keymgr_keys_wipe(struct keymgr_keys *k)
{
	seal_wipe(k, sizeof *k);
}

uint64_t keymgr_rotation_ms(const Cs__Cluster *c)
{
	uint64_t ms = c && c->settings ? c->settings->network_key_rotation_ms : 0;
	return ms ? ms : LIMIT_NET_KEY_ROTATION_MS_DEFAULT;
}

bool keymgr_has_encrypted(const struct store *st)
{
	for (const Cs__Network *n = store_network_next(st, NULL); n;
	     n = store_network_next(st, n))
		if (n->spec && n->spec->encrypted)
			return true;
	return false;
}

/* ---------------------------------------------------------------- the component */

struct keymgr {
	const struct leader_ctx *ctx;
	struct env *env;
	env_timer_id period_timer, kick_timer;
	uint64_t period_ms; /* the period period_timer runs with */
	bool writing, stopped, dying;
	bool rotate_due;	  /* the period fired while a write was in flight */
	uint64_t rotations, made; /* writes that rotated, that made a first set */
};

static void km_on_timer(struct env *env, env_timer_id id, void *data);

static void km_free(struct keymgr *k)
{
	free(k);
}

static void km_write_done(void *data, int status)
{
	struct keymgr *k = data;

	k->writing = false;
	if (k->stopped) {
		km_free(k);
		return;
	}
	if (status)
		env_logf(k->env, ENV_LOG_INFO, "msg=\"network keys write failed\" err=%s",
			 cs_errname(status));
	if (status || k->rotate_due) {
		/* again from the store as it is now */
		if (!k->kick_timer)
			k->env->ops->timer_start(k->env, 0, 0, km_on_timer, k,
						 &k->kick_timer);
	}
}

/* Writes the set that follows the store's: a first set (rotate false:
 * only when there is no valid one), or a rotation. */
static void km_write(struct keymgr *k, bool rotate)
{
	const Cs__Cluster *c = store_cluster(leader_store(k->ctx));
	struct keymgr_keys next;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool first;
	int rv;

	if (k->writing || k->stopped || !c) {
		if (k->writing && rotate)
			k->rotate_due = true;
		return;
	}
	first = !keymgr_valid(c);
	if (!first && !rotate)
		return; /* a new leader keeps the valid keys it finds */
	k->rotate_due = false;
	keymgr_next(k->env, c, &next);
	rv = keymgr_batch(c, &next, leader_raft_id(k->ctx), &buf, &len);
	if (rv == 0) {
		rv = leader_write(k->ctx, buf, len, km_write_done, k);
		seal_wipe(buf, len);
		free(buf);
	}
	if (rv == 0) {
		k->writing = true;
		if (first)
			k->made++;
		else
			k->rotations++;
		/* ids only: the keys never reach a log */
		env_logf(k->env, ENV_LOG_INFO,
			 "msg=\"network keys %s\" keys=%zu primary=%" PRIu32
			 " newest=%" PRIu32,
			 first ? "made" : "rotated", next.count,
			 next.v[keymgr_primary(next.count)].id,
			 next.v[next.count - 1].id);
	} else {
		env_logf(k->env, ENV_LOG_ERROR, "msg=\"network keys not written\" err=%s",
			 cs_errname(rv));
	}
	keymgr_keys_wipe(&next);
}

/* Arms the period timer with the cluster's period (again when it changed). */
static void km_arm_period(struct keymgr *k)
{
	uint64_t ms = keymgr_rotation_ms(store_cluster(leader_store(k->ctx)));

	if (k->period_timer && ms == k->period_ms)
		return;
	if (k->period_timer)
		k->env->ops->timer_stop(k->env, k->period_timer);
	k->period_timer = 0;
	k->period_ms = ms;
	if (k->env->ops->timer_start(k->env, ms, ms, km_on_timer, k, &k->period_timer))
		k->period_timer = 0;
}

static void km_on_timer(struct env *env, env_timer_id id, void *data)
{
	struct keymgr *k = data;
	const struct store *st = leader_store(k->ctx);
	(void)env;

	if (id == k->kick_timer) {
		k->kick_timer = 0;
		if (k->rotate_due)
			km_write(k, true);
		else if (keymgr_has_encrypted(st))
			km_write(k, false);
		return;
	}
	/* the period: rotate keys there are (none yet: the first encrypted
	 * network makes them) */
	if (keymgr_valid(store_cluster(st)))
		km_write(k, true);
}

static void keymanager_on_event(void *state, const struct store_event *ev)
{
	struct keymgr *k = state;

	if (ev->table == STORE_CLUSTER) {
		km_arm_period(k);
		return;
	}
	if (ev->table == STORE_NETWORK && ev->new_obj) {
		const Cs__Network *n = (const Cs__Network *)ev->new_obj;
		if (n->spec && n->spec->encrypted &&
		    !keymgr_valid(store_cluster(leader_store(k->ctx))) && !k->kick_timer)
			k->env->ops->timer_start(k->env, 0, 0, km_on_timer, k,
						 &k->kick_timer);
	}
}

static int keymanager_start(const struct leader_ctx *ctx, void **state)
{
	struct keymgr *k = calloc(1, sizeof *k);

	if (!k)
		return CS_ENOMEM;
	k->ctx = ctx;
	k->env = leader_env(ctx);
	km_arm_period(k);
	if (!k->period_timer) {
		free(k);
		return CS_ENOMEM;
	}
	/* keys missing while an encrypted network exists: made now */
	if (!keymgr_valid(store_cluster(leader_store(ctx))) &&
	    keymgr_has_encrypted(leader_store(ctx)) &&
	    k->env->ops->timer_start(k->env, 0, 0, km_on_timer, k, &k->kick_timer))
		k->kick_timer = 0;
	*state = k;
	return 0;
}

static void keymanager_stop(void *state, bool dying)
{
	struct keymgr *k = state;

	k->stopped = true;
	k->dying = dying;
	if (!dying) {
		if (k->period_timer)
			k->env->ops->timer_stop(k->env, k->period_timer);
		if (k->kick_timer)
			k->env->ops->timer_stop(k->env, k->kick_timer);
	}
	if (!k->writing)
		km_free(k);
	/* else the write's answer frees it */
}

static void keymanager_metrics(void *state, struct metrics_buf *out)
{
	const struct keymgr *k = state;

	metrics_family(out, "cswarm_network_key_rotations_total", METRICS_COUNTER,
		       "Network key rotations this manager wrote while it led.");
	metrics_sample(out, "cswarm_network_key_rotations_total", NULL,
		       (double)k->rotations);
	metrics_family(out, "cswarm_network_key_sets_made_total", METRICS_COUNTER,
		       "First network key sets this manager wrote (no valid keys in "
		       "the store).");
	metrics_sample(out, "cswarm_network_key_sets_made_total", NULL, (double)k->made);
}

const struct leader_component_ops keymanager_component = {
	.name = "keymanager",
	.start = keymanager_start,
	.stop = keymanager_stop,
	.on_event = keymanager_on_event,
	.metrics = keymanager_metrics,
};
