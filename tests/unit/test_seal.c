/* Tests of seal: AES-256-GCM round trip and every way opening must fail
 * (another key, a changed byte of the ciphertext or tag, other associated
 * data, another nonce, a cut tag), a known answer from NIST's GCM test
 * vectors, HKDF, unlock keys' text form, and randomness drawn from the env
 * (distinct draws, the same for the same stream). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/seal.h"

/* An env whose only method is random_u64: a splitmix64 stream. */
struct fake {
	struct env env;
	uint64_t state;
};

static uint64_t fake_random(struct env *env)
{
	struct fake *f = env->impl;
	uint64_t z = (f->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const struct env_ops fake_ops = {.random_u64 = fake_random};

static void fake_init(struct fake *f, uint64_t seed)
{
	f->env.ops = &fake_ops;
	f->env.impl = f;
	f->state = seed;
}

/* Whether needle (n bytes) occurs in hay (len bytes). */
static bool contains(const uint8_t *hay, size_t len, const char *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

static const uint8_t key_a[SEAL_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key_b[SEAL_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 10};
static const uint8_t nonce_a[SEAL_NONCE_BYTES] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t nonce_b[SEAL_NONCE_BYTES] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

static void test_seal_round_trip_and_ciphertext_hides_the_text(void **state)
{
	static const char text[] = "SECRET_ENV=hunter2 and a service name";
	const uint8_t ad[] = "E idx 7 term 3";
	size_t len = sizeof text - 1;
	uint8_t ct[sizeof text + SEAL_TAG_BYTES], back[sizeof text];

	assert_int_equal(
		seal_seal(key_a, nonce_a, ad, sizeof ad, (const uint8_t *)text, len, ct),
		0);
	assert_false(contains(ct, len + SEAL_TAG_BYTES, "hunter2", 7));
	assert_int_equal(
		seal_open(key_a, nonce_a, ad, sizeof ad, ct, len + SEAL_TAG_BYTES, back),
		0);
	assert_memory_equal(back, text, len);
	/* an empty text seals to a tag alone, which opens */
	assert_int_equal(seal_seal(key_a, nonce_a, ad, sizeof ad, NULL, 0, ct), 0);
	assert_int_equal(
		seal_open(key_a, nonce_a, ad, sizeof ad, ct, SEAL_TAG_BYTES, back), 0);
	/* the same key and nonce and text give the same bytes: pure */
	{
		uint8_t ct2[sizeof ct];
		assert_int_equal(seal_seal(key_a, nonce_a, ad, sizeof ad,
					   (const uint8_t *)text, len, ct),
				 0);
		assert_int_equal(seal_seal(key_a, nonce_a, ad, sizeof ad,
					   (const uint8_t *)text, len, ct2),
				 0);
		assert_memory_equal(ct, ct2, len + SEAL_TAG_BYTES);
	}
}

static void test_seal_open_refuses_wrong_key_tampering_other_ad_and_nonce(void **state)
{
	static const char text[] = "the CA key";
	const uint8_t ad[] = "S idx 9", other_ad[] = "S idx 8";
	size_t len = sizeof text - 1, ct_len = len + SEAL_TAG_BYTES;
	uint8_t ct[sizeof text + SEAL_TAG_BYTES], back[sizeof text];

	assert_int_equal(
		seal_seal(key_a, nonce_a, ad, sizeof ad, (const uint8_t *)text, len, ct),
		0);
	assert_int_equal(seal_open(key_b, nonce_a, ad, sizeof ad, ct, ct_len, back),
			 CS_EAUTH);
	assert_int_equal(seal_open(key_a, nonce_b, ad, sizeof ad, ct, ct_len, back),
			 CS_EAUTH);
	assert_int_equal(
		seal_open(key_a, nonce_a, other_ad, sizeof other_ad, ct, ct_len, back),
		CS_EAUTH);
	assert_int_equal(seal_open(key_a, nonce_a, NULL, 0, ct, ct_len, back), CS_EAUTH);
	/* one flipped bit anywhere: in the ciphertext, in the tag */
	for (size_t i = 0; i < ct_len; i++) {
		ct[i] ^= 0x10;
		memset(back, 0x55, sizeof back);
		assert_int_equal(
			seal_open(key_a, nonce_a, ad, sizeof ad, ct, ct_len, back),
			CS_EAUTH);
		/* nothing of the text is left in out */
		for (size_t k = 0; k < len; k++)
			assert_int_equal(back[k], 0);
		ct[i] ^= 0x10;
	}
	/* a tag cut short, a row cut to less than a tag */
	assert_int_equal(seal_open(key_a, nonce_a, ad, sizeof ad, ct, ct_len - 1, back),
			 CS_EAUTH);
	assert_int_equal(
		seal_open(key_a, nonce_a, ad, sizeof ad, ct, SEAL_TAG_BYTES - 1, back),
		CS_ECORRUPT);
	assert_int_equal(seal_open(key_a, nonce_a, ad, sizeof ad, ct, ct_len, back), 0);
	assert_memory_equal(back, text, len);
}

/* NIST GCM test vector (gcmEncryptExtIV256.rsp, Count 0 of Keylen 256,
 * IVlen 96, PTlen 128, AADlen 0, Taglen 128): the cipher is AES-256-GCM. */
static void test_seal_is_aes_256_gcm_known_answer(void **state)
{
	static const uint8_t key[32] = {0x31, 0xbd, 0xad, 0xd9, 0x66, 0x98, 0xc2, 0x04,
					0xaa, 0x9c, 0xe1, 0x44, 0x8e, 0xa9, 0x4a, 0xe1,
					0xfb, 0x4a, 0x9a, 0x0b, 0x3c, 0x9d, 0x77, 0x3b,
					0x51, 0xbb, 0x18, 0x22, 0x66, 0x6b, 0x8f, 0x22};
	static const uint8_t iv[12] = {0x0d, 0x18, 0xe0, 0x6c, 0x7c, 0x72,
				       0x5a, 0xc9, 0xe3, 0x62, 0xe1, 0xce};
	static const uint8_t pt[16] = {0x2d, 0xb5, 0x16, 0x8e, 0x93, 0x25, 0x56, 0xf8,
				       0x08, 0x9a, 0x06, 0x22, 0x98, 0x1d, 0x01, 0x7d};
	static const uint8_t want[32] = {0xfa, 0x43, 0x62, 0x18, 0x96, 0x61, 0xd1, 0x63,
					 0xfc, 0xd6, 0xa5, 0x6d, 0x8b, 0xf0, 0x40, 0x5a,
					 0xd6, 0x36, 0xac, 0x1b, 0xbe, 0xdd, 0x5c, 0xc3,
					 0xee, 0x72, 0x7d, 0xc2, 0xab, 0x4a, 0x94, 0x89};
	uint8_t ct[32];

	assert_int_equal(seal_seal(key, iv, NULL, 0, pt, sizeof pt, ct), 0);
	assert_memory_equal(ct, want, sizeof want);
}

static void test_seal_random_draws_differ_and_replay_from_the_seed(void **state)
{
	enum { N = 4096 };
	struct fake f, g;
	uint8_t(*nonces)[SEAL_NONCE_BYTES] = calloc(N, sizeof *nonces);
	uint8_t again[SEAL_NONCE_BYTES];

	assert_non_null(nonces);
	fake_init(&f, 42);
	for (size_t i = 0; i < N; i++)
		seal_random(&f.env, nonces[i], SEAL_NONCE_BYTES);
	for (size_t i = 0; i < N; i++)
		for (size_t j = i + 1; j < N; j++)
			assert_memory_not_equal(nonces[i], nonces[j], SEAL_NONCE_BYTES);
	/* the same stream gives the same draws (the simulator replays) */
	fake_init(&g, 42);
	seal_random(&g.env, again, sizeof again);
	assert_memory_equal(again, nonces[0], sizeof again);
	free(nonces);
}

static void test_seal_derive_depends_on_secret_salt_and_label(void **state)
{
	uint8_t secret[32] = {7}, salt[SEAL_SALT_BYTES] = {1},
		salt2[SEAL_SALT_BYTES] = {2};
	uint8_t k1[SEAL_KEY_BYTES], k2[SEAL_KEY_BYTES], k3[SEAL_KEY_BYTES],
		k4[SEAL_KEY_BYTES], k5[SEAL_KEY_BYTES];

	assert_int_equal(seal_derive(secret, sizeof secret, salt, "kek", k1), 0);
	assert_int_equal(seal_derive(secret, sizeof secret, salt, "kek", k2), 0);
	assert_memory_equal(k1, k2, sizeof k1);
	assert_int_equal(seal_derive(secret, sizeof secret, salt2, "kek", k3), 0);
	assert_memory_not_equal(k1, k3, sizeof k1);
	assert_int_equal(seal_derive(secret, sizeof secret, salt, "other", k4), 0);
	assert_memory_not_equal(k1, k4, sizeof k1);
	secret[31] = 1;
	assert_int_equal(seal_derive(secret, sizeof secret, salt, "kek", k5), 0);
	assert_memory_not_equal(k1, k5, sizeof k1);
}

static void test_seal_unlock_keys_round_trip_and_refuse_other_text(void **state)
{
	uint8_t secret[SEAL_UNLOCK_SECRET_BYTES], back[SEAL_UNLOCK_SECRET_BYTES];
	char text[SEAL_UNLOCK_KEY_CHARS + 1], padded[SEAL_UNLOCK_KEY_CHARS + 8];

	for (size_t i = 0; i < sizeof secret; i++)
		secret[i] = (uint8_t)(i * 37 + 255);
	seal_unlock_key_format(secret, text);
	assert_int_equal(strlen(text), SEAL_UNLOCK_KEY_CHARS);
	assert_memory_equal(text, "SWMKEY-1-", 9);
	assert_int_equal(seal_unlock_key_parse(text, back), 0);
	assert_memory_equal(back, secret, sizeof secret);
	/* a key file's newline and spaces around it */
	snprintf(padded, sizeof padded, "  %s\n", text);
	assert_int_equal(seal_unlock_key_parse(padded, back), 0);
	assert_memory_equal(back, secret, sizeof secret);
	/* 32 zero bytes: 43 base64 zeros */
	memset(secret, 0, sizeof secret);
	seal_unlock_key_format(secret, text);
	assert_string_equal(text, "SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	/* refused: another prefix, a short key, a character not base64, a
	 * last character with bits past the 32 bytes, nothing */
	assert_int_equal(
		seal_unlock_key_parse(
			"SWMKEY-2-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", back),
		CS_EINVAL);
	assert_int_equal(seal_unlock_key_parse("SWMKEY-1-AAAA", back), CS_EINVAL);
	assert_int_equal(
		seal_unlock_key_parse(
			"SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*", back),
		CS_EINVAL);
	assert_int_equal(
		seal_unlock_key_parse(
			"SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", back),
		CS_EINVAL);
	assert_int_equal(seal_unlock_key_parse("", back), CS_EINVAL);
	assert_int_equal(seal_unlock_key_parse(NULL, back), CS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_round_trip_and_ciphertext_hides_the_text),
		cmocka_unit_test(
			test_seal_open_refuses_wrong_key_tampering_other_ad_and_nonce),
		cmocka_unit_test(test_seal_is_aes_256_gcm_known_answer),
		cmocka_unit_test(test_seal_random_draws_differ_and_replay_from_the_seed),
		cmocka_unit_test(test_seal_derive_depends_on_secret_salt_and_label),
		cmocka_unit_test(test_seal_unlock_keys_round_trip_and_refuse_other_text),
	};
	return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
