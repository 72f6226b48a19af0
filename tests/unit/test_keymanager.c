/* Tests of the key manager's key sets (issue 17; SwarmKit's
 * manager/keymanager): a first set of three keys with lamport-time ids, a
 * rotation that drops the oldest and adds one, the order of use (a new key
 * is only received until the next rotation makes it the one to send with),
 * what counts as a valid set in the store, the digest that says whether two
 * holders have the same keys, and the store write that keeps the rest of
 * the cluster object. The component itself (a new leader keeps valid keys,
 * rotation on the period) is judged by scenarios/nk-*.scn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/keymanager.h"
#include "core/limits.h"
#include "core/store.h"

/* random_u64: splitmix64 over a counter (distinct bytes per draw). */
static uint64_t fake_random(struct env *env)
{
	uint64_t *n = env->impl;
	uint64_t z = (*n += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct fenv {
	struct env_ops ops;
	uint64_t n;
	struct env env;
};

static void fenv_init(struct fenv *f)
{
	memset(f, 0, sizeof *f);
	f->ops.random_u64 = fake_random;
	f->env.ops = &f->ops;
	f->env.impl = &f->n;
}

/* A store holding a cluster record (id 7, a worker token). */
static struct store *store_with_cluster(void)
{
	struct store *s = store_new();
	Cs__Cluster c = CS__CLUSTER__INIT;
	struct store_batch b;
	uint8_t *buf;
	size_t len;

	assert_non_null(s);
	c.id = 7;
	c.worker_token = (char *)"SWMTKN-1-test";
	store_batch_init(&b);
	assert_int_equal(store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &c),
			 0);
	assert_int_equal(store_batch_encode(&b, 1, 0, &buf, &len), 0);
	store_batch_free(&b);
	assert_int_equal(store_apply(s, buf, len, 1, NULL, NULL), 0);
	free(buf);
	return s;
}

/* Writes keys into s's cluster at index (keymgr_batch, then apply). */
static void write_keys(struct store *s, const struct keymgr_keys *k, uint64_t index)
{
	uint8_t *buf;
	size_t len;

	assert_int_equal(keymgr_batch(store_cluster(s), k, 1, &buf, &len), 0);
	assert_int_equal(store_apply(s, buf, len, index, NULL, NULL), 0);
	free(buf);
}

static bool holds_id(const struct keymgr_keys *k, uint32_t id)
{
	for (size_t i = 0; i < k->count; i++)
		if (k->v[i].id == id)
			return true;
	return false;
}

static void test_keymgr_first_set_is_three_keys_with_lamport_ids(void **state)
{
	struct fenv f;
	struct keymgr_keys k;
	struct store *s = store_with_cluster();

	(void)state;
	fenv_init(&f);
	assert_false(keymgr_valid(store_cluster(s)));
	keymgr_next(&f.env, store_cluster(s), &k);
	assert_int_equal(k.count, KEYMGR_KEYS_MAX);
	assert_int_equal(k.clock, 3);
	for (size_t i = 0; i < k.count; i++)
		assert_int_equal(k.v[i].id, i + 1);
	/* each key its own bytes */
	assert_memory_not_equal(k.v[0].key, k.v[1].key, ENV_NET_KEY_BYTES);
	assert_memory_not_equal(k.v[1].key, k.v[2].key, ENV_NET_KEY_BYTES);
	/* the second newest is sent with; the newest only received */
	assert_int_equal(keymgr_primary(k.count), 1);
	assert_int_equal(keymgr_primary(2), 0);
	assert_int_equal(keymgr_primary(1), 0);
	keymgr_keys_wipe(&k);
	/* no cluster at all: a first set too */
	keymgr_next(&f.env, NULL, &k);
	assert_int_equal(k.count, KEYMGR_KEYS_MAX);
	assert_int_equal(k.v[2].id, 3);
	keymgr_keys_wipe(&k);
	store_free(s);
}

/* SwarmKit's order: after each rotation, the key each node sends with is
 * one every node held before (the new primary was received for a whole
 * period), and the key it sent with before is still accepted. */
static void test_keymgr_rotation_keeps_every_sender_understood(void **state)
{
	struct fenv f;
	struct keymgr_keys prev, next, stored;
	struct store *s = store_with_cluster();
	uint64_t index = 2;

	(void)state;
	fenv_init(&f);
	keymgr_next(&f.env, store_cluster(s), &prev);
	write_keys(s, &prev, index++);
	assert_true(keymgr_valid(store_cluster(s)));
	for (int round = 0; round < 6; round++) {
		uint32_t old_primary = prev.v[keymgr_primary(prev.count)].id;
		uint32_t new_primary;

		keymgr_next(&f.env, store_cluster(s), &next);
		assert_int_equal(next.count, KEYMGR_KEYS_MAX);
		/* the oldest dropped, one new key with the next lamport time */
		assert_int_equal(next.v[0].id, prev.v[1].id);
		assert_int_equal(next.v[1].id, prev.v[2].id);
		assert_int_equal(next.v[2].id, prev.clock + 1);
		assert_int_equal(next.clock, prev.clock + 1);
		assert_memory_equal(next.v[0].key, prev.v[1].key, ENV_NET_KEY_BYTES);
		new_primary = next.v[keymgr_primary(next.count)].id;
		assert_true(holds_id(&prev, new_primary));
		assert_true(holds_id(&next, old_primary));
		/* the newest is never sent with in its first period */
		assert_int_not_equal(new_primary, next.v[2].id);
		write_keys(s, &next, index++);
		keymgr_cluster_keys(store_cluster(s), &stored);
		assert_int_equal(stored.count, next.count);
		assert_int_equal(keymgr_digest(stored.v, stored.count),
				 keymgr_digest(next.v, next.count));
		keymgr_keys_wipe(&stored);
		prev = next;
	}
	keymgr_keys_wipe(&prev);
	keymgr_keys_wipe(&next);
	store_free(s);
}

/* A partial set (two keys: a store written by hand, or an older format)
 * grows to three without dropping any. */
static void test_keymgr_rotation_of_a_short_set_drops_nothing(void **state)
{
	struct fenv f;
	struct keymgr_keys k, next;
	struct store *s = store_with_cluster();

	(void)state;
	fenv_init(&f);
	keymgr_next(&f.env, NULL, &k);
	k.count = 2; /* ids 1, 2 */
	k.clock = 2;
	write_keys(s, &k, 2);
	assert_true(keymgr_valid(store_cluster(s)));
	keymgr_next(&f.env, store_cluster(s), &next);
	assert_int_equal(next.count, 3);
	assert_int_equal(next.v[0].id, 1);
	assert_int_equal(next.v[2].id, 3);
	keymgr_keys_wipe(&k);
	keymgr_keys_wipe(&next);
	store_free(s);
}

static void test_keymgr_valid_refuses_malformed_sets(void **state)
{
	uint8_t key[ENV_NET_KEY_BYTES] = {1};
	Cs__NetworkKey a = CS__NETWORK_KEY__INIT, b = CS__NETWORK_KEY__INIT;
	Cs__NetworkKey c = CS__NETWORK_KEY__INIT, d = CS__NETWORK_KEY__INIT;
	Cs__NetworkKey *v[4] = {&a, &b, &c, &d};
	Cs__Cluster cl = CS__CLUSTER__INIT;

	(void)state;
	a.id = 1;
	b.id = 2;
	c.id = 3;
	d.id = 4;
	a.key = b.key = c.key = d.key = (ProtobufCBinaryData){sizeof key, key};
	cl.network_keys = v;
	cl.n_network_keys = 3;
	cl.network_key_clock = 3;
	assert_true(keymgr_valid(&cl));
	assert_false(keymgr_valid(NULL));
	cl.n_network_keys = 4; /* more than SwarmKit keeps */
	cl.network_key_clock = 4;
	assert_false(keymgr_valid(&cl));
	cl.n_network_keys = 3;
	cl.network_key_clock = 2; /* an id the clock never gave */
	assert_false(keymgr_valid(&cl));
	cl.network_key_clock = 3;
	b.id = 1; /* not ascending */
	assert_false(keymgr_valid(&cl));
	b.id = 2;
	c.key.len = 16; /* not ENV_NET_KEY_BYTES */
	assert_false(keymgr_valid(&cl));
	c.key.len = sizeof key;
	a.id = 0; /* ids start at 1 */
	assert_false(keymgr_valid(&cl));
	a.id = 1;
	cl.n_network_keys = 0;
	assert_false(keymgr_valid(&cl));
}

static void test_keymgr_digest_says_same_keys_only(void **state)
{
	struct fenv f;
	struct keymgr_keys k, copy;
	uint64_t d;

	(void)state;
	fenv_init(&f);
	keymgr_next(&f.env, NULL, &k);
	copy = k;
	d = keymgr_digest(k.v, k.count);
	assert_int_not_equal(d, 0);
	assert_int_equal(keymgr_digest(NULL, 0), 0);
	assert_int_equal(keymgr_digest(copy.v, copy.count), d);
	copy.v[2].key[31] ^= 1; /* one bit of one key */
	assert_int_not_equal(keymgr_digest(copy.v, copy.count), d);
	copy = k;
	copy.v[2].id = 9; /* same bytes, another id */
	assert_int_not_equal(keymgr_digest(copy.v, copy.count), d);
	assert_int_not_equal(keymgr_digest(k.v, 2), d);
	keymgr_keys_wipe(&k);
	keymgr_keys_wipe(&copy);
	for (size_t i = 0; i < sizeof k; i++)
		assert_int_equal(((const uint8_t *)&k)[i], 0);
}

/* The write changes the keys and the clock only: the rest of the cluster
 * object (tokens, settings) is the one read. */
static void test_keymgr_batch_keeps_the_rest_of_the_cluster(void **state)
{
	struct fenv f;
	struct keymgr_keys k;
	struct store *s = store_with_cluster();
	const Cs__Cluster *c;
	uint8_t *buf;
	size_t len;

	(void)state;
	fenv_init(&f);
	assert_int_equal(keymgr_batch(NULL, &k, 1, &buf, &len), CS_EINVAL);
	keymgr_next(&f.env, store_cluster(s), &k);
	write_keys(s, &k, 2);
	c = store_cluster(s);
	assert_int_equal(c->id, 7);
	assert_string_equal(c->worker_token, "SWMTKN-1-test");
	assert_int_equal(c->n_network_keys, 3);
	assert_int_equal(c->network_key_clock, 3);
	assert_memory_equal(c->network_keys[1]->key.data, k.v[1].key, ENV_NET_KEY_BYTES);
	assert_int_equal(keymgr_rotation_ms(c), LIMIT_NET_KEY_ROTATION_MS_DEFAULT);
	keymgr_keys_wipe(&k);
	store_free(s);
}

/* keymgr_has_encrypted: the first encrypted network is what makes keys. */
static void test_keymgr_has_encrypted_looks_at_the_networks(void **state)
{
	struct store *s = store_with_cluster();
	Cs__Network n = CS__NETWORK__INIT;
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	struct store_batch b;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_false(keymgr_has_encrypted(s));
	n.id = 5;
	spec.name = (char *)"plain";
	n.spec = &spec;
	for (int i = 0; i < 2; i++) {
		store_batch_init(&b);
		assert_int_equal(
			store_batch_network(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &n),
			0);
		assert_int_equal(store_batch_encode(&b, 1, 0, &buf, &len), 0);
		store_batch_free(&b);
		assert_int_equal(store_apply(s, buf, len, 2 + (uint64_t)i, NULL, NULL),
				 0);
		free(buf);
		assert_int_equal(keymgr_has_encrypted(s), i == 1);
		n.id = 6;
		spec.name = (char *)"secure";
		spec.encrypted = true;
	}
	store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keymgr_first_set_is_three_keys_with_lamport_ids),
		cmocka_unit_test(test_keymgr_rotation_keeps_every_sender_understood),
		cmocka_unit_test(test_keymgr_rotation_of_a_short_set_drops_nothing),
		cmocka_unit_test(test_keymgr_valid_refuses_malformed_sets),
		cmocka_unit_test(test_keymgr_digest_says_same_keys_only),
		cmocka_unit_test(test_keymgr_batch_keeps_the_rest_of_the_cluster),
		cmocka_unit_test(test_keymgr_has_encrypted_looks_at_the_networks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
