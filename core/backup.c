/* backup: see backup.h. */
#include "core/backup.h"

#include <assert.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "core/pki.h"
#include "core/seal.h"

#define BACKUP_MAGIC_BYTES (sizeof BACKUP_MAGIC - 1)

int backup_encode(const struct store *s, uint64_t term, uint8_t **out, size_t *out_len)
{
	Cs__Backup msg = CS__BACKUP__INIT;
	const Cs__Cluster *c = store_cluster(s);
	uint8_t *store = NULL, *buf;
	size_t store_len, len, body;

	assert(out != NULL);
	assert(out_len != NULL);
	*out = NULL;
	*out_len = 0;
	if (!c)
		return CS_ENOENT;
	if (store_snapshot(s, &store, &store_len))
		return CS_ENOMEM;
	msg.format = BACKUP_FORMAT;
	msg.index = store_applied(s);
	msg.term = term;
	msg.cluster_id = c->id;
	msg.store.data = store;
	msg.store.len = store_len;
	body = BACKUP_MAGIC_BYTES + cs__backup__get_packed_size(&msg);
	len = body + ENV_DIGEST_BYTES;
	buf = malloc(len);
	if (!buf) {
		seal_wipe(store, store_len);
		free(store);
		return CS_ENOMEM;
	}
	memcpy(buf, BACKUP_MAGIC, BACKUP_MAGIC_BYTES);
	cs__backup__pack(&msg, buf + BACKUP_MAGIC_BYTES);
	pki_digest(buf, body, buf + body);
	seal_wipe(store, store_len); /* it holds the CA key */
	free(store);
	*out = buf;
	*out_len = len;
	assert(*out_len > BACKUP_MAGIC_BYTES);
	return 0;
}

__attribute__((format(printf, 3, 4))) static int backup_why(char *why, size_t size,
							    const char *fmt, ...);

#define BACKUP_SEALED_MAGIC_BYTES (sizeof BACKUP_SEALED_MAGIC - 1)
#define BACKUP_SEALED_HEAD \
	(BACKUP_SEALED_MAGIC_BYTES + SEAL_SALT_BYTES + SEAL_NONCE_BYTES)
static const char backup_seal_info[] = "cswarm backup v1";

bool backup_is_sealed(const uint8_t *buf, size_t len)
{
	return len >= BACKUP_SEALED_MAGIC_BYTES &&
	       memcmp(buf, BACKUP_SEALED_MAGIC, BACKUP_SEALED_MAGIC_BYTES) == 0;
}

/* The backup key from the unlock key's text and salt. */
static int backup_key(const char *unlock_key, const uint8_t *salt,
		      uint8_t key[SEAL_KEY_BYTES])
{
	uint8_t secret[SEAL_UNLOCK_SECRET_BYTES];
	int rv = seal_unlock_key_parse(unlock_key, secret);

	if (rv == 0)
		rv = seal_derive(secret, sizeof secret, salt, backup_seal_info, key);
	seal_wipe(secret, sizeof secret);
	return rv;
}

int backup_seal(struct env *env, const char *unlock_key, const uint8_t *plain,
		size_t plain_len, uint8_t **out, size_t *out_len)
{
	uint8_t key[SEAL_KEY_BYTES], *buf;
	size_t len = BACKUP_SEALED_HEAD + plain_len + SEAL_TAG_BYTES;
	uint8_t *salt, *nonce;
	int rv;

	*out = NULL;
	*out_len = 0;
	buf = malloc(len);
	if (!buf)
		return CS_ENOMEM;
	memcpy(buf, BACKUP_SEALED_MAGIC, BACKUP_SEALED_MAGIC_BYTES);
	salt = buf + BACKUP_SEALED_MAGIC_BYTES;
	nonce = salt + SEAL_SALT_BYTES;
	seal_random(env, salt, SEAL_SALT_BYTES);
	seal_random(env, nonce, SEAL_NONCE_BYTES);
	rv = backup_key(unlock_key, salt, key);
	if (rv == 0)
		rv = seal_seal(key, nonce, buf, BACKUP_SEALED_MAGIC_BYTES, plain,
			       plain_len, buf + BACKUP_SEALED_HEAD);
	seal_wipe(key, sizeof key);
	if (rv) {
		free(buf);
		return rv;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int backup_open(const char *unlock_key, const uint8_t *buf, size_t len, uint8_t **out,
		size_t *out_len, char *why, size_t why_size)
{
	uint8_t key[SEAL_KEY_BYTES], *plain;
	size_t ct_len;
	int rv;

	*out = NULL;
	*out_len = 0;
	if (!backup_is_sealed(buf, len)) {
		backup_why(why, why_size, "not a sealed cswarm backup");
		return CS_EINVAL;
	}
	if (len < BACKUP_SEALED_HEAD + SEAL_TAG_BYTES) {
		backup_why(why, why_size, "truncated (%zu bytes)", len);
		return CS_ECORRUPT;
	}
	ct_len = len - BACKUP_SEALED_HEAD;
	plain = malloc(ct_len - SEAL_TAG_BYTES + 1);
	if (!plain)
		return CS_ENOMEM;
	rv = backup_key(unlock_key, buf + BACKUP_SEALED_MAGIC_BYTES, key);
	if (rv == CS_EINVAL)
		backup_why(why, why_size,
			   "the unlock key given is not one (expected SWMKEY-1-...)");
	if (rv == 0) {
		rv = seal_open(key, buf + BACKUP_SEALED_MAGIC_BYTES + SEAL_SALT_BYTES,
			       buf, BACKUP_SEALED_MAGIC_BYTES, buf + BACKUP_SEALED_HEAD,
			       ct_len, plain);
		if (rv == CS_EAUTH)
			backup_why(why, why_size,
				   "the unlock key does not open it (another key, or the "
				   "file was changed or cut)");
	}
	seal_wipe(key, sizeof key);
	if (rv) {
		free(plain);
		return rv;
	}
	*out = plain;
	*out_len = ct_len - SEAL_TAG_BYTES;
	return 0;
}

__attribute__((format(printf, 3, 4))) static int backup_why(char *why, size_t size,
							    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why && size)
		vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return 0;
}

static uint8_t *backup_dup(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* Checks that the store bytes decode, hold the cluster record of id with
 * its CA, and copies the CA into b. */
static int backup_check_store(struct backup *b, char *why, size_t why_size)
{
	struct store *st = store_new();
	const Cs__Cluster *c;
	int rv;

	if (!st)
		return CS_ENOMEM;
	rv = store_restore(st, b->store, b->store_len, 0);
	if (rv) {
		backup_why(why, why_size, "its store does not decode (%s)",
			   cs_strerror(rv));
		rv = rv == CS_EVERSION ? CS_EVERSION : CS_ECORRUPT;
		goto out;
	}
	c = store_cluster(st);
	if (!c || c->id != b->cluster_id) {
		backup_why(why, why_size,
			   "its store holds no record of cluster %016" PRIx64,
			   b->cluster_id);
		rv = CS_ECORRUPT;
		goto out;
	}
	if (!c->ca_cert.len || !c->ca_key.len) {
		backup_why(why, why_size, "its cluster record holds no root CA");
		rv = CS_ECORRUPT;
		goto out;
	}
	b->ca_cert = backup_dup(c->ca_cert.data, c->ca_cert.len);
	b->ca_key = backup_dup(c->ca_key.data, c->ca_key.len);
	if (!b->ca_cert || !b->ca_key) {
		rv = CS_ENOMEM;
		goto out;
	}
	b->ca_cert_len = c->ca_cert.len;
	b->ca_key_len = c->ca_key.len;
	if (b->index == 0)
		b->index = store_applied(st);
	rv = 0;
out:
	store_free(st);
	return rv;
}

int backup_decode(const uint8_t *buf, size_t len, struct backup *b, char *why,
		  size_t why_size)
{
	uint8_t digest[ENV_DIGEST_BYTES];
	Cs__Backup *msg;
	int rv;

	assert(b != NULL);
	memset(b, 0, sizeof *b);
	backup_why(why, why_size, "%s", "");
	if (backup_is_sealed(buf, len)) {
		backup_why(why, why_size,
			   "sealed with the cluster's unlock key (autolock was on): give "
			   "it with --unlock-key-file");
		return CS_EAUTH;
	}
	if (len < BACKUP_MAGIC_BYTES ||
	    memcmp(buf, BACKUP_MAGIC, BACKUP_MAGIC_BYTES) != 0) {
		backup_why(
			why, why_size,
			"not a cswarm backup (it does not begin with \"CSWARM-BACKUP\")");
		return CS_EINVAL;
	}
	if (len < BACKUP_MAGIC_BYTES + ENV_DIGEST_BYTES) {
		backup_why(why, why_size, "truncated (%zu bytes)", len);
		return CS_ECORRUPT;
	}
	pki_digest(buf, len - ENV_DIGEST_BYTES, digest);
	if (memcmp(digest, buf + len - ENV_DIGEST_BYTES, sizeof digest) != 0) {
		backup_why(why, why_size,
			   "truncated or damaged: its SHA-256 differs from the one it "
			   "ends with (%zu bytes)",
			   len);
		return CS_ECORRUPT;
	}
	msg = cs__backup__unpack(NULL, len - ENV_DIGEST_BYTES - BACKUP_MAGIC_BYTES,
				 buf + BACKUP_MAGIC_BYTES);
	if (!msg) {
		backup_why(why, why_size, "damaged (%zu bytes do not decode as a backup)",
			   len);
		return CS_ECORRUPT;
	}
	if (msg->format != BACKUP_FORMAT) {
		backup_why(why, why_size,
			   "backup format %" PRIu32 ": this build reads format %u",
			   msg->format, BACKUP_FORMAT);
		rv = CS_EVERSION;
		goto out;
	}
	if (msg->store.len == 0) {
		backup_why(why, why_size, "damaged (it holds no store)");
		rv = CS_ECORRUPT;
		goto out;
	}
	b->index = msg->index;
	b->term = msg->term;
	b->cluster_id = msg->cluster_id;
	b->store_len = msg->store.len;
	b->store = backup_dup(msg->store.data, msg->store.len);
	if (!b->store) {
		rv = CS_ENOMEM;
		goto out;
	}
	rv = backup_check_store(b, why, why_size);
out:
	if (msg->store.len)
		seal_wipe(msg->store.data, msg->store.len);
	cs__backup__free_unpacked(msg, NULL);
	if (rv) {
		backup_free(b);
		if (rv == CS_ENOMEM)
			backup_why(why, why_size, "out of memory");
	}
	return rv;
}

void backup_free(struct backup *b)
{
	if (!b)
		return;
	if (b->store)
		seal_wipe(b->store, b->store_len);
	if (b->ca_key)
		seal_wipe(b->ca_key, b->ca_key_len);
	free(b->store);
	free(b->ca_cert);
	free(b->ca_key);
	memset(b, 0, sizeof *b);
}
