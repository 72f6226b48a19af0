/* seal: AES-256-GCM, HKDF-SHA256 and unlock keys over libcrypto. See
 * seal.h. */
#include "core/seal.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/errors.h"

_Static_assert(SEAL_KEY_BYTES == 32, "AES-256 takes 32 bytes");
_Static_assert(SEAL_NONCE_BYTES == 12, "GCM's default IV length");

/* One AES-256-GCM operation: enc 1 seals, 0 opens. in is len bytes of
 * plaintext (seal) or ciphertext without its tag (open); tag is written
 * (seal) or checked (open). Returns 0, CS_EAUTH (open: the tag does not
 * verify), CS_ELIMIT or CS_ENOMEM. */
static int seal_gcm(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *ad,
		    size_t ad_len, const uint8_t *in, size_t len, uint8_t *out,
		    uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t fin[16]; /* GCM's final writes nothing */
	int n = 0, rv = CS_ENOMEM;

	if (len > INT_MAX - 32 || ad_len > INT_MAX)
		return CS_ELIMIT;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return CS_ENOMEM;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) != 1)
		goto out;
	if (ad_len && EVP_CipherUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1)
		goto out;
	if (len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
		goto out;
	assert(len == 0 || (size_t)n == len);
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_BYTES,
					(void *)tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, fin, &n) != 1) {
		/* opening: the tag did not verify (GCM has nothing else to
		 * fail on here); what was written must not be used */
		rv = enc ? CS_ENOMEM : CS_EAUTH;
		if (!enc && len)
			seal_wipe(out, len);
		goto out;
	}
	assert(n == 0);
	if (enc &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_BYTES, tag) != 1)
		goto out;
	rv = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rv;
}

int seal_seal(const uint8_t key[SEAL_KEY_BYTES], const uint8_t nonce[SEAL_NONCE_BYTES],
	      const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t len,
	      uint8_t *out)
{
	assert(key && nonce && out);
	assert(pt || len == 0);
	return seal_gcm(1, key, nonce, ad, ad_len, pt, len, out, out + len);
}

int seal_open(const uint8_t key[SEAL_KEY_BYTES], const uint8_t nonce[SEAL_NONCE_BYTES],
	      const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t len,
	      uint8_t *out)
{
	assert(key && nonce);
	if (len < SEAL_TAG_BYTES)
		return CS_ECORRUPT;
	len -= SEAL_TAG_BYTES;
	assert(out || len == 0);
	return seal_gcm(0, key, nonce, ad, ad_len, ct, len, out, (uint8_t *)ct + len);
}

void seal_random(struct env *env, uint8_t *buf, size_t len)
{
	while (len) {
		uint64_t r = env->ops->random_u64(env);
		size_t n = len < sizeof r ? len : sizeof r;
		memcpy(buf, &r, n);
		buf += n;
		len -= n;
	}
}

int seal_derive(const uint8_t *secret, size_t len, const uint8_t salt[SEAL_SALT_BYTES],
		const char *info, uint8_t key[SEAL_KEY_BYTES])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t out_len = SEAL_KEY_BYTES;
	int rv = CS_ENOMEM;

	if (!ctx)
		return CS_ENOMEM;
	if (len > INT_MAX || strlen(info) > INT_MAX)
		goto out;
	if (EVP_PKEY_derive_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, SEAL_SALT_BYTES) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_key(ctx, secret, (int)len) <= 0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info,
					(int)strlen(info)) <= 0 ||
	    EVP_PKEY_derive(ctx, key, &out_len) <= 0 || out_len != SEAL_KEY_BYTES)
		goto out;
	rv = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

/* ---------------------------------------------------------------- unlock keys */

static const char seal_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void seal_unlock_key_format(const uint8_t secret[SEAL_UNLOCK_SECRET_BYTES],
			    char out[SEAL_UNLOCK_KEY_CHARS + 1])
{
	size_t o = strlen(SEAL_UNLOCK_PREFIX);
	uint32_t acc = 0;
	unsigned bits = 0;

	memcpy(out, SEAL_UNLOCK_PREFIX, o);
	for (size_t i = 0; i < SEAL_UNLOCK_SECRET_BYTES; i++) {
		acc = (acc << 8) | secret[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = seal_b64[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = seal_b64[(acc << (6 - bits)) & 63];
	assert(o == SEAL_UNLOCK_KEY_CHARS);
	out[o] = '\0';
}

int seal_unlock_key_parse(const char *text, uint8_t secret[SEAL_UNLOCK_SECRET_BYTES])
{
	size_t plen = strlen(SEAL_UNLOCK_PREFIX), len, n = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	if (!text)
		return CS_EINVAL;
	while (isspace((unsigned char)*text))
		text++;
	len = strlen(text);
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	if (len != SEAL_UNLOCK_KEY_CHARS || strncmp(text, SEAL_UNLOCK_PREFIX, plen) != 0)
		return CS_EINVAL;
	for (size_t i = plen; i < len; i++) {
		const char *p = memchr(seal_b64, text[i], 64);
		if (!text[i] || !p)
			goto bad;
		acc = (acc << 6) | (uint32_t)(p - seal_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			secret[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* 43 characters: 258 bits, the last 2 must be zero (canonical) */
	if (n != SEAL_UNLOCK_SECRET_BYTES || (acc & ((1u << bits) - 1)) != 0)
		goto bad;
	return 0;
bad:
	seal_wipe(secret, SEAL_UNLOCK_SECRET_BYTES);
	return CS_EINVAL;
}

void seal_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}
