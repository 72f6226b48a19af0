/* pki: certificates, CSRs, keys and join tokens (core/pki.h), pure functions
 * over libcrypto. Nothing here reads a clock or draws a random number: every
 * time and every key seed is a parameter, Ed25519 signs deterministically,
 * and times are written and read as RFC 5280 strings computed here (no libc
 * time function), so that the same inputs give the same bytes on every run.
 *
 * OpenSSL's error queue: each public function clears it on entry and leaves
 * it empty on return (what OpenSSL said travels in `why`), so that a TLS
 * caller's SSL_get_error never sees an error of ours. */
#include "core/pki.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/errors.h"
#include "core/hash.h"

_Static_assert(PKI_DER_BYTES_MAX <= LONG_MAX, "a DER's length fits d2i's long");

#define PKI_ROOT_CN	 "swarm-ca"
#define PKI_OU_MANAGER	 "swarm-manager"
#define PKI_OU_WORKER	 "swarm-worker"
#define PKI_HEX_ID_CHARS 16
/* The times an X.509 certificate can say (RFC 5280, 4.1.2.5):
 * 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define PKI_TIME_MIN_S 0
#define PKI_TIME_MAX_S 253402300799ll

#define PKI_TOKEN_PREFIX       "SWMTKN-1-"
#define PKI_TOKEN_PREFIX_CHARS 9
#define PKI_TOKEN_DIGEST_CHARS 50
#define PKI_TOKEN_SECRET_CHARS 25
#define PKI_TOKEN_PARTS	       4
#define PKI_BASE	       36

_Static_assert(PKI_TOKEN_PREFIX_CHARS + PKI_TOKEN_DIGEST_CHARS + 1 +
			       PKI_TOKEN_SECRET_CHARS + 1 <=
		       PKI_TOKEN_BYTES,
	       "a token and its NUL fit PKI_TOKEN_BYTES");
_Static_assert(PKI_TOKEN_SECRET_CHARS + 1 == PKI_TOKEN_SECRET_BYTES,
	       "the secret's digits and a NUL fill PKI_TOKEN_SECRET_BYTES");

/* ---------------------------------------------------------------- helpers */

static void pki_why(char *why, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* pki_why writes one line into why (PKI_WHY_BYTES, may be NULL). */
static void pki_why(char *why, const char *fmt, ...)
{
	va_list ap;
	if (why == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(why, PKI_WHY_BYTES, fmt, ap);
	va_end(ap);
}

/* pki_ossl_said: the reason of the oldest error in OpenSSL's queue, or
 * `fallback` when the queue is empty or the reason has no text. */
static const char *pki_ossl_said(const char *fallback)
{
	unsigned long e = ERR_peek_error();
	const char *s = e != 0 ? ERR_reason_error_string(e) : NULL;
	return s != NULL ? s : fallback;
}

/* pki_key_from_seed returns a new Ed25519 key (the caller frees it with
 * EVP_PKEY_free), or NULL when out of memory. */
static EVP_PKEY *pki_key_from_seed(const uint8_t seed[PKI_SEED_BYTES])
{
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, PKI_SEED_BYTES);
}

/* PKCS#8 PrivateKeyInfo of an Ed25519 key (RFC 8410): version 0, the
 * algorithm 1.3.101.112, then the 32-byte seed as an OCTET STRING in an
 * OCTET STRING. */
static const uint8_t pki_pkcs8_prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30,
					     0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
					     0x04, 0x22, 0x04, 0x20};

/* pki_key_load reads a private key: PKCS#8 DER, or a raw seed when
 * b->len == PKI_SEED_BYTES. Returns a new Ed25519 key (caller frees) or
 * NULL when b is neither, or not Ed25519. */
static EVP_PKEY *pki_key_load(const struct env_blob *b)
{
	const unsigned char *p;
	EVP_PKEY *k;

	if (b == NULL || b->data == NULL || b->len == 0 || b->len > PKI_DER_BYTES_MAX)
		return NULL;
	if (b->len == PKI_SEED_BYTES)
		return pki_key_from_seed(b->data);
	/* ours (pki_key_der's): the seed behind a fixed prefix; OpenSSL 3's
	 * decoders take several times as long to say the same */
	if (b->len == sizeof pki_pkcs8_prefix + PKI_SEED_BYTES &&
	    memcmp(b->data, pki_pkcs8_prefix, sizeof pki_pkcs8_prefix) == 0)
		return pki_key_from_seed(b->data + sizeof pki_pkcs8_prefix);
	p = b->data;
	k = d2i_AutoPrivateKey(NULL, &p, (long)b->len);
	if (k == NULL)
		return NULL;
	if (p != b->data + b->len || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

/* pki_der_out moves an encoding (n bytes at der, from an i2d_* call that
 * allocated it; freed here whatever happens) into out. Returns 0, CS_ENOMEM
 * (n <= 0: OpenSSL could not encode) or CS_ELIMIT (cap too small). */
static int pki_der_out(unsigned char *der, int n, uint8_t *out, size_t cap, size_t *len)
{
	int rc = 0;

	if (n <= 0 || der == NULL)
		rc = CS_ENOMEM;
	else if ((size_t)n > cap)
		rc = CS_ELIMIT;
	if (rc == 0) {
		memcpy(out, der, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(der);
	return rc;
}

/* pki_cert_parse: the DER of one X.509 certificate, all of b and nothing
 * more. Returns a new X509 (caller frees) or NULL with why set to
 * "not a certificate: <what OpenSSL said>". */
static X509 *pki_cert_parse(const struct env_blob *b, char *why)
{
	const unsigned char *p;
	X509 *x;

	if (b == NULL || b->data == NULL || b->len == 0) {
		pki_why(why, "not a certificate: empty");
		return NULL;
	}
	if (b->len > PKI_DER_BYTES_MAX) {
		pki_why(why, "not a certificate: %zu bytes, over %d", b->len,
			PKI_DER_BYTES_MAX);
		return NULL;
	}
	p = b->data;
	x = d2i_X509(NULL, &p, (long)b->len);
	if (x == NULL) {
		pki_why(why, "not a certificate: %s", pki_ossl_said("unreadable DER"));
		return NULL;
	}
	if (p != b->data + b->len) {
		pki_why(why, "not a certificate: %zu bytes after its DER",
			(size_t)(b->data + b->len - p));
		X509_free(x);
		return NULL;
	}
	return x;
}

/* pki_cert_parse_in: pki_cert_parse through slots[0..slot_count) (NULL:
 * none): the certificate of the same bytes parsed before, or parsed now
 * and kept (in slot *next, round robin). The caller frees what it gets, as
 * from pki_cert_parse; the slot holds a reference of its own.
 * pki_cert_parse_c: the same through cache's slots for CAs and roots. */
static struct pki_cache_slot *pki_slot_find(struct pki_cache_slot *slots,
					    size_t slot_count, const uint8_t *der,
					    size_t len)
{
	for (size_t i = 0; i < slot_count; i++)
		if (slots[i].x != NULL && slots[i].len == len &&
		    memcmp(slots[i].der, der, len) == 0)
			return &slots[i];
	return NULL;
}

/* Keeps x, a parse of der (len <= PKI_DER_BYTES_MAX), in slot *next (round
 * robin), replacing what it held; the slot takes a reference the caller
 * took for it. */
static void pki_slot_put(struct pki_cache_slot *slots, size_t slot_count, size_t *next,
			 X509 *x, const uint8_t *der, size_t len)
{
	struct pki_cache_slot *sl = &slots[*next];

	assert(*next < slot_count && len <= PKI_DER_BYTES_MAX);
	*next = (*next + 1) % slot_count;
	X509_free(sl->x);
	sl->x = x;
	sl->len = len;
	memcpy(sl->der, der, len);
}

static X509 *pki_cert_parse_in(struct pki_cache_slot *slots, size_t slot_count,
			       size_t *next, const struct env_blob *b, char *why)
{
	struct pki_cache_slot *sl;
	X509 *x;

	if (slots == NULL || b == NULL || b->data == NULL || b->len == 0 ||
	    b->len > PKI_DER_BYTES_MAX)
		return pki_cert_parse(b, why);
	sl = pki_slot_find(slots, slot_count, b->data, b->len);
	if (sl != NULL && X509_up_ref(sl->x) == 1)
		return sl->x;
	x = pki_cert_parse(b, why);
	if (x == NULL || X509_up_ref(x) != 1)
		return x; /* (not kept: parsed again next time) */
	pki_slot_put(slots, slot_count, next, x, b->data, b->len);
	return x;
}

static X509 *pki_cert_parse_c(struct pki_cache *cache, const struct env_blob *b,
			      char *why)
{
	if (cache == NULL)
		return pki_cert_parse(b, why);
	return pki_cert_parse_in(cache->slot, PKI_CACHE_SLOTS, &cache->next, b, why);
}

/* cache's leaf slots, allocated at first use (NULL: no memory). */
static struct pki_cache_slot *pki_cache_leaves(struct pki_cache *cache)
{
	if (cache->leaf == NULL)
		cache->leaf = calloc(PKI_CACHE_LEAF_SLOTS, sizeof *cache->leaf);
	return cache->leaf;
}

/* pki_cert_parse_c for a certificate checked or read: the leaf slots. */
static X509 *pki_cert_parse_leaf(struct pki_cache *cache, const struct env_blob *b,
				 char *why)
{
	if (cache == NULL)
		return pki_cert_parse(b, why);
	return pki_cert_parse_in(pki_cache_leaves(cache), PKI_CACHE_LEAF_SLOTS,
				 &cache->leaf_next, b, why);
}

void pki_cache_keep_leaf(struct pki_cache *cache, X509 *x)
{
	uint8_t der[PKI_DER_BYTES_MAX];
	unsigned char *p = der;
	struct pki_cache_slot *leaves;
	int n;

	if (cache == NULL || x == NULL || (leaves = pki_cache_leaves(cache)) == NULL)
		return;
	n = i2d_X509(x, NULL);
	if (n <= 0 || (size_t)n > sizeof der || i2d_X509(x, &p) != n) {
		ERR_clear_error();
		return;
	}
	if (pki_slot_find(leaves, PKI_CACHE_LEAF_SLOTS, der, (size_t)n) != NULL)
		return; /* those bytes are kept already */
	if (X509_up_ref(x) == 1)
		pki_slot_put(leaves, PKI_CACHE_LEAF_SLOTS, &cache->leaf_next, x, der,
			     (size_t)n);
}

void pki_cache_free(struct pki_cache *cache)
{
	if (cache == NULL)
		return;
	for (size_t i = 0; cache->made != NULL && i < PKI_CACHE_MADE_SLOTS; i++)
		free(cache->made[i].der);
	free(cache->made);
	for (size_t i = 0; i < PKI_CACHE_SLOTS; i++)
		X509_free(cache->slot[i].x);
	for (size_t i = 0; cache->leaf != NULL && i < PKI_CACHE_LEAF_SLOTS; i++)
		X509_free(cache->leaf[i].x);
	free(cache->leaf);
	EVP_PKEY_free(cache->ca_key);
	OPENSSL_cleanse(cache->ca_key_der, sizeof cache->ca_key_der);
	memset(cache, 0, sizeof *cache);
}

static uint64_t pki_made_hash(const uint8_t *der, size_t len, const uint8_t *signer,
			      size_t signer_len)
{
	return hash_fnv(hash_fnv(HASH_FNV_OFFSET, der, len), signer, signer_len);
}

/* Keeps der (len bytes), signed by the key of the certificate signer
 * (signer_len bytes; NULL, 0: der is a CSR, signed by its own key, whose
 * raw public key is pub), as made through cache. Out of memory, nothing is
 * kept. */
static void pki_made_note(struct pki_cache *cache, const uint8_t *der, size_t len,
			  const uint8_t *signer, size_t signer_len,
			  const uint8_t pub[PKI_SEED_BYTES])
{
	struct pki_made *m;

	if (cache == NULL || len == 0)
		return;
	if (cache->made == NULL) {
		cache->made = calloc(PKI_CACHE_MADE_SLOTS, sizeof *cache->made);
		if (cache->made == NULL)
			return;
	}
	m = &cache->made[cache->made_next];
	cache->made_next = (cache->made_next + 1) % PKI_CACHE_MADE_SLOTS;
	free(m->der);
	m->der = malloc(len + signer_len);
	if (m->der == NULL)
		return;
	memcpy(m->der, der, len);
	if (signer_len > 0)
		memcpy(m->der + len, signer, signer_len);
	m->len = len;
	m->signer_len = signer_len;
	m->hash = pki_made_hash(der, len, signer, signer_len);
	if (pub != NULL)
		memcpy(m->pub, pub, sizeof m->pub);
	else
		memset(m->pub, 0, sizeof m->pub);
}

/* der, signed by the key of signer (NULL, 0: its own), as made through
 * cache: then its signature checks (see pki.h). NULL: not made here. */
static const struct pki_made *pki_made_find(struct pki_cache *cache, const uint8_t *der,
					    size_t len, const uint8_t *signer,
					    size_t signer_len)
{
	uint64_t h;

	if (cache == NULL || cache->made == NULL || der == NULL || len == 0 ||
	    (signer == NULL && signer_len > 0))
		return NULL;
	h = pki_made_hash(der, len, signer, signer_len);
	for (size_t i = 0; i < PKI_CACHE_MADE_SLOTS; i++) {
		const struct pki_made *m = &cache->made[i];
		if (m->der != NULL && m->hash == h && m->len == len &&
		    m->signer_len == signer_len && memcmp(m->der, der, len) == 0 &&
		    (signer_len == 0 || memcmp(m->der + len, signer, signer_len) == 0)) {
			cache->made_hits++;
			return m;
		}
	}
	return NULL;
}

/* pki_key_load through cache: the key parsed last, when b holds the same
 * bytes. The caller frees what it gets with pki_key_put. */
static EVP_PKEY *pki_key_load_c(struct pki_cache *cache, const struct env_blob *b)
{
	EVP_PKEY *k;

	if (cache == NULL)
		return pki_key_load(b);
	if (cache->ca_key != NULL && b != NULL && b->data != NULL &&
	    b->len == cache->ca_key_len &&
	    memcmp(b->data, cache->ca_key_der, b->len) == 0)
		return cache->ca_key;
	k = pki_key_load(b);
	if (k == NULL || b->len > sizeof cache->ca_key_der)
		return k;
	EVP_PKEY_free(cache->ca_key);
	cache->ca_key = k;
	cache->ca_key_len = b->len;
	memcpy(cache->ca_key_der, b->data, b->len);
	return k;
}

/* Frees k unless cache keeps it (pki_key_load_c). */
static void pki_key_put(struct pki_cache *cache, EVP_PKEY *k)
{
	if (cache == NULL || k != cache->ca_key)
		EVP_PKEY_free(k);
}

/* ---------------------------------------------------------------- times
 *
 * Civil dates from days since the epoch and back: Howard Hinnant's
 * algorithms (proleptic Gregorian calendar), in integers. */

struct pki_civil {
	int64_t year;
	int month, day, hour, minute, second;
};

static void pki_civil_from_s(int64_t s, struct pki_civil *c)
{
	int64_t days = s / 86400, rem = s % 86400;
	int64_t z, era, doe, yoe, doy, mp;

	if (rem < 0) {
		rem += 86400;
		days--;
	}
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
	c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
	c->year = yoe + era * 400 + (c->month <= 2);
	c->hour = (int)(rem / 3600);
	c->minute = (int)(rem / 60 % 60);
	c->second = (int)(rem % 60);
	assert(c->month >= 1 && c->month <= 12);
	assert(c->day >= 1 && c->day <= 31);
}

static int64_t pki_s_from_civil(const struct pki_civil *c)
{
	int64_t y = c->year - (c->month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy =
		(153 * (c->month > 2 ? c->month - 3 : c->month + 9) + 2) / 5 + c->day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	return days * 86400 + c->hour * 3600 + c->minute * 60 + c->second;
}

static bool pki_is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int pki_month_days(int64_t y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	assert(m >= 1 && m <= 12);
	return m == 2 && pki_is_leap(y) ? 29 : days[m - 1];
}

static int64_t pki_time_clamp(int64_t s)
{
	if (s < PKI_TIME_MIN_S)
		return PKI_TIME_MIN_S;
	if (s > PKI_TIME_MAX_S)
		return PKI_TIME_MAX_S;
	return s;
}

/* pki_rfc3339 writes s as "2026-12-06T04:20:00Z" into out (24 bytes). */
static void pki_rfc3339(int64_t s, char out[24])
{
	struct pki_civil c;
	pki_civil_from_s(pki_time_clamp(s), &c);
	snprintf(out, 24, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)c.year, c.month, c.day,
		 c.hour, c.minute, c.second);
}

/* pki_time_set sets t to s (clamped to what X.509 can say), as RFC 5280
 * wants it: UTCTime for 1950-2049, GeneralizedTime otherwise. Returns 0 or
 * CS_ENOMEM. */
static int pki_time_set(ASN1_TIME *t, int64_t s)
{
	struct pki_civil c;
	char str[16];

	pki_civil_from_s(pki_time_clamp(s), &c);
	snprintf(str, sizeof str, "%04d%02d%02d%02d%02d%02dZ", (int)c.year, c.month,
		 c.day, c.hour, c.minute, c.second);
	return ASN1_TIME_set_string_X509(t, str) == 1 ? 0 : CS_ENOMEM;
}

/* pki_digits reads n decimal digits at p into *v; false when one is not. */
static bool pki_digits(const unsigned char *p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (p[i] - '0');
	}
	return true;
}

/* pki_time_get reads t, in RFC 5280's forms only (UTCTime YYMMDDHHMMSSZ,
 * GeneralizedTime YYYYMMDDHHMMSSZ), into *s. Returns 0 or CS_EINVAL. */
static int pki_time_get(const ASN1_TIME *t, int64_t *s)
{
	const unsigned char *p;
	struct pki_civil c;
	int len, y, off;

	if (t == NULL)
		return CS_EINVAL;
	p = ASN1_STRING_get0_data(t);
	len = ASN1_STRING_length(t);
	if (ASN1_STRING_type(t) == V_ASN1_UTCTIME && len == 13) {
		if (!pki_digits(p, 2, &y))
			return CS_EINVAL;
		c.year = y < 50 ? 2000 + y : 1900 + y;
		off = 2;
	} else if (ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME && len == 15) {
		if (!pki_digits(p, 4, &y))
			return CS_EINVAL;
		c.year = y;
		off = 4;
	} else {
		return CS_EINVAL;
	}
	if (!pki_digits(p + off, 2, &c.month) || !pki_digits(p + off + 2, 2, &c.day) ||
	    !pki_digits(p + off + 4, 2, &c.hour) ||
	    !pki_digits(p + off + 6, 2, &c.minute) ||
	    !pki_digits(p + off + 8, 2, &c.second) || p[off + 10] != 'Z')
		return CS_EINVAL;
	if (c.month < 1 || c.month > 12 || c.day < 1 ||
	    c.day > pki_month_days(c.year, c.month) || c.hour > 23 || c.minute > 59 ||
	    c.second > 59)
		return CS_EINVAL;
	*s = pki_s_from_civil(&c);
	return 0;
}

/* ---------------------------------------------------------------- names */

static void pki_hex16(uint64_t v, char out[PKI_HEX_ID_CHARS + 1])
{
	snprintf(out, PKI_HEX_ID_CHARS + 1, "%016" PRIx64, v);
}

/* pki_hex16_parse: exactly 16 lowercase hex digits. */
static bool pki_hex16_parse(const ASN1_STRING *s, uint64_t *v)
{
	const unsigned char *p = ASN1_STRING_get0_data(s);
	*v = 0;
	if (ASN1_STRING_length(s) != PKI_HEX_ID_CHARS)
		return false;
	for (int i = 0; i < PKI_HEX_ID_CHARS; i++) {
		unsigned d;
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else
			return false;
		*v = *v << 4 | d;
	}
	return true;
}

static bool pki_str_is(const ASN1_STRING *s, const char *want)
{
	size_t n = strlen(want);
	return (size_t)ASN1_STRING_length(s) == n &&
	       memcmp(ASN1_STRING_get0_data(s), want, n) == 0;
}

/* pki_name_get: the value of the only entry of nid in name, or NULL when
 * there is none or more than one. */
static const ASN1_STRING *pki_name_get(const X509_NAME *name, int nid)
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return NULL;
	return X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
}

/* pki_name_set: name = O=cluster[, OU=ou], CN=cn. Returns 0 or CS_ENOMEM. */
static int pki_name_set(X509_NAME *name, uint64_t cluster_id, const char *ou,
			const char *cn)
{
	char o[PKI_HEX_ID_CHARS + 1];

	pki_hex16(cluster_id, o);
	if (X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_ASC,
				       (const unsigned char *)o, -1, -1, 0) != 1)
		return CS_ENOMEM;
	if (ou != NULL &&
	    X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, MBSTRING_ASC,
				       (const unsigned char *)ou, -1, -1, 0) != 1)
		return CS_ENOMEM;
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
				       (const unsigned char *)cn, -1, -1, 0) != 1)
		return CS_ENOMEM;
	return 0;
}

/* pki_cert_cluster: the cluster id of x's O, if it has one of ours. */
static bool pki_cert_cluster(X509 *x, uint64_t *cluster_id)
{
	const ASN1_STRING *o =
		pki_name_get(X509_get_subject_name(x), NID_organizationName);
	return o != NULL && pki_hex16_parse(o, cluster_id);
}

/* pki_cert_basics fills what any certificate says: validity, serial, key
 * digest. Returns 0 or CS_EINVAL with why ("not a certificate: ..."). */
static int pki_cert_basics(X509 *x, struct pki_cert *out, char *why)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	X509_PUBKEY *pub = X509_get_X509_PUBKEY(x);
	unsigned char *der = NULL;
	int n;

	if (pki_time_get(X509_get0_notBefore(x), &out->not_before_s) != 0 ||
	    pki_time_get(X509_get0_notAfter(x), &out->not_after_s) != 0) {
		pki_why(why, "not a certificate: a validity time not in RFC 5280's form");
		return CS_EINVAL;
	}
	if (serial == NULL || ASN1_INTEGER_get_uint64(&out->serial, serial) != 1) {
		pki_why(why, "not a certificate: serial number not a 64-bit unsigned");
		return CS_EINVAL;
	}
	n = pub != NULL ? i2d_X509_PUBKEY(pub, &der) : -1;
	if (n <= 0) {
		pki_why(why, "not a certificate: no public key");
		return CS_EINVAL;
	}
	pki_digest(der, (size_t)n, out->key);
	OPENSSL_free(der);
	return 0;
}

/* One DER element of tag and class at *p (before end), of definite length
 * inside end: *body is its contents, *body_len their length, and *p moves
 * past it. */
static bool pki_der_elem(const unsigned char **p, const unsigned char *end, int tag,
			 int cls, const unsigned char **body, long *body_len)
{
	const unsigned char *q = *p;
	long len;
	int t, c, r;

	if (q >= end)
		return false;
	r = ASN1_get_object(&q, &len, &t, &c, end - q);
	if ((r & 0x80) || (r & 0x01) || t != tag || c != cls || len < 0 || len > end - q)
		return false;
	*body = q;
	*body_len = len;
	*p = q + len;
	return true;
}

int pki_cert_key_digest(const struct env_blob *cert, uint8_t out[ENV_DIGEST_BYTES])
{
	/* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version,
	 * serialNumber, signature, issuer, validity, subject,
	 * subjectPublicKeyInfo, ... } ... } (RFC 5280) */
	static const int before_key[] = {V_ASN1_INTEGER, V_ASN1_SEQUENCE, V_ASN1_SEQUENCE,
					 V_ASN1_SEQUENCE, V_ASN1_SEQUENCE};
	const unsigned char *p, *end, *body, *key;
	long n;

	assert(cert != NULL && out != NULL);
	ERR_clear_error();
	p = cert->data;
	end = p + cert->len;
	if (cert->len == 0 || cert->len > LONG_MAX ||
	    !pki_der_elem(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &body, &n))
		goto bad;
	end = body + n;
	p = body;
	if (!pki_der_elem(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &body, &n))
		goto bad;
	end = body + n;
	p = body;
	if (!pki_der_elem(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &body, &n))
		goto bad;
	for (size_t i = 0; i < sizeof before_key / sizeof before_key[0]; i++)
		if (!pki_der_elem(&p, end, before_key[i], V_ASN1_UNIVERSAL, &body, &n))
			goto bad;
	key = p;
	if (!pki_der_elem(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &body, &n))
		goto bad;
	/* SubjectPublicKeyInfo ::= SEQUENCE { algorithm, BIT STRING }: a key
	 * of whole bytes (no unused bits), which OpenSSL encodes back as
	 * written (with unused bits it masks them: another digest) */
	{
		const unsigned char *q = body, *kend = body + n, *bits;
		long bits_len;
		if (!pki_der_elem(&q, kend, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &bits,
				  &bits_len) ||
		    !pki_der_elem(&q, kend, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, &bits,
				  &bits_len) ||
		    q != kend || bits_len < 1 || bits[0] != 0)
			goto bad;
	}
	pki_digest(key, (size_t)(p - key), out);
	ERR_clear_error();
	return 0;
bad:
	ERR_clear_error();
	memset(out, 0, ENV_DIGEST_BYTES);
	return CS_EINVAL;
}

/* pki_cert_names fills node_id, cluster_id and role from x's subject and
 * checks that x is named as ours: a root (CN=swarm-ca, O, CA:TRUE, the
 * issuer itself) or a node (CN=<id>, OU=<role>, O, not a CA), with an
 * Ed25519 key. Returns 0 or CS_EINVAL with why ("not a certificate: ..."). */
static int pki_cert_names(X509 *x, struct pki_cert *out, char *why)
{
	const X509_NAME *subj = X509_get_subject_name(x);
	const ASN1_STRING *cn = pki_name_get(subj, NID_commonName);
	const ASN1_STRING *ou = pki_name_get(subj, NID_organizationalUnitName);
	const ASN1_STRING *o = pki_name_get(subj, NID_organizationName);
	EVP_PKEY *pub = X509_get0_pubkey(x);
	uint32_t flags = X509_get_extension_flags(x);

	if (flags & EXFLAG_INVALID) {
		pki_why(why, "not a certificate: invalid extensions");
		return CS_EINVAL;
	}
	if (pub == NULL || EVP_PKEY_get_id(pub) != EVP_PKEY_ED25519) {
		pki_why(why, "not a certificate: key is not Ed25519");
		return CS_EINVAL;
	}
	if (o == NULL || !pki_hex16_parse(o, &out->cluster_id)) {
		pki_why(why,
			"not a certificate: subject O is not a cluster id (16 hex digits)");
		return CS_EINVAL;
	}
	if (cn == NULL) {
		pki_why(why, "not a certificate: subject has no single CN");
		return CS_EINVAL;
	}
	if (pki_str_is(cn, PKI_ROOT_CN)) {
		if (ou != NULL || X509_NAME_entry_count(subj) != 2) {
			pki_why(why,
				"not a certificate: a root named other than CN=swarm-ca, O=<cluster>");
			return CS_EINVAL;
		}
		if (X509_check_ca(x) != 1 ||
		    X509_NAME_cmp(X509_get_issuer_name(x), subj) != 0) {
			pki_why(why,
				"not a certificate: CN=swarm-ca but not a self-issued CA");
			return CS_EINVAL;
		}
		out->node_id = 0;
		out->role = ENV_ROLE_NONE;
		return 0;
	}
	if (!pki_hex16_parse(cn, &out->node_id) || out->node_id == 0) {
		pki_why(why,
			"not a certificate: subject CN is not a node id (16 hex digits, not 0)");
		return CS_EINVAL;
	}
	if (ou != NULL && pki_str_is(ou, PKI_OU_MANAGER)) {
		out->role = ENV_ROLE_MANAGER;
	} else if (ou != NULL && pki_str_is(ou, PKI_OU_WORKER)) {
		out->role = ENV_ROLE_WORKER;
	} else {
		pki_why(why,
			"not a certificate: subject OU is not swarm-manager or swarm-worker");
		return CS_EINVAL;
	}
	if (X509_NAME_entry_count(subj) != 3) {
		pki_why(why,
			"not a certificate: subject has entries other than CN, OU, O");
		return CS_EINVAL;
	}
	if (flags & EXFLAG_CA) {
		pki_why(why,
			"not a certificate: a node certificate that says it is a CA");
		return CS_EINVAL;
	}
	return 0;
}

/* pki_ext_add adds extension nid = value (OpenSSL's config syntax, no
 * config file) to x, in ctx. Returns 0 or CS_ENOMEM. */
static int pki_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return CS_ENOMEM;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : CS_ENOMEM;
}

/* ---------------------------------------------------------------- API */

void pki_digest(const uint8_t *data, size_t len, uint8_t out[ENV_DIGEST_BYTES])
{
	_Static_assert(ENV_DIGEST_BYTES == SHA256_DIGEST_LENGTH, "a digest is SHA-256");
	assert(data != NULL || len == 0);
	SHA256(data, len, out);
}

int pki_ca_create(const uint8_t seed[PKI_SEED_BYTES], uint64_t cluster_id,
		  int64_t not_before_s, int64_t not_after_s, uint64_t serial,
		  uint8_t *cert, size_t cert_cap, size_t *cert_len, uint8_t *key,
		  size_t key_cap, size_t *key_len)
{
	unsigned char *der = NULL, *kder = NULL;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	int rc = CS_ENOMEM, n;

	assert(seed != NULL && cert != NULL && cert_len != NULL);
	assert(key != NULL && key_len != NULL);
	ERR_clear_error();
	k = pki_key_from_seed(seed);
	if (k == NULL)
		goto out;
	x = X509_new();
	if (x == NULL)
		goto free_key;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 ||
	    pki_name_set(X509_get_subject_name(x), cluster_id, NULL, PKI_ROOT_CN) != 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    pki_time_set(X509_getm_notBefore(x), not_before_s) != 0 ||
	    pki_time_set(X509_getm_notAfter(x), not_after_s) != 0 ||
	    X509_set_pubkey(x, k) != 1)
		goto free_cert;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (pki_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    pki_ext_add(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
	    pki_ext_add(x, &ctx, NID_subject_key_identifier, "hash") != 0)
		goto free_cert;
	if (X509_sign(x, k, NULL) <= 0)
		goto free_cert;
	n = i2d_X509(x, &der);
	rc = pki_der_out(der, n, cert, cert_cap, cert_len);
	if (rc == 0) {
		n = i2d_PrivateKey(k, &kder);
		rc = pki_der_out(kder, n, key, key_cap, key_len);
	}
free_cert:
	X509_free(x);
free_key:
	EVP_PKEY_free(k);
out:
	ERR_clear_error();
	return rc;
}

int pki_key_der(const uint8_t seed[PKI_SEED_BYTES], uint8_t *key, size_t cap, size_t *len)
{
	unsigned char *der = NULL;
	EVP_PKEY *k;
	int rc, n;

	assert(seed != NULL && key != NULL && len != NULL);
	ERR_clear_error();
	k = pki_key_from_seed(seed);
	if (k == NULL)
		return CS_ENOMEM;
	n = i2d_PrivateKey(k, &der);
	rc = pki_der_out(der, n, key, cap, len);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return rc;
}

/* The SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): a SEQUENCE of
 * the algorithm 1.3.101.112 (no parameters) and a BIT STRING of the 32 key
 * bytes: these 12 bytes, then the key. */
static const uint8_t pki_spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
					    0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

/* pki_key_digest of the key k: the digest of its SubjectPublicKeyInfo, as
 * pki_cert_basics digests a certificate's, built from the raw key (i2d_PUBKEY
 * said the same through OpenSSL 3's encoders, a third of the work). Returns
 * 0 or CS_ENOMEM (k not Ed25519). */
static int pki_key_digest_of(const EVP_PKEY *k, uint8_t out[ENV_DIGEST_BYTES])
{
	uint8_t spki[sizeof pki_spki_prefix + PKI_SEED_BYTES];
	size_t n = PKI_SEED_BYTES;

	memcpy(spki, pki_spki_prefix, sizeof pki_spki_prefix);
	if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k, spki + sizeof pki_spki_prefix, &n) != 1 ||
	    n != PKI_SEED_BYTES)
		return CS_ENOMEM;
	pki_digest(spki, sizeof spki, out);
	return 0;
}

int pki_key_digest(const uint8_t seed[PKI_SEED_BYTES], uint8_t out[ENV_DIGEST_BYTES])
{
	EVP_PKEY *k;
	int rv;

	assert(seed != NULL && out != NULL);
	ERR_clear_error();
	k = pki_key_from_seed(seed);
	if (k == NULL)
		return CS_ENOMEM;
	rv = pki_key_digest_of(k, out);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return rv;
}

/* pki_pubkey_set_raw: sets spki (a certificate's or a request's
 * SubjectPublicKeyInfo) to the Ed25519 public key raw: the bytes
 * X509_PUBKEY_set writes (RFC 8410: the OID, no parameters, the 32 key
 * bytes), without the decode of them back into a key that X509_PUBKEY_set
 * makes (OpenSSL 3.0's search of its decoders: most of a join's
 * certificate work in the simulator). Returns 1, or 0 when memory ran
 * out. pki_pubkey_set: the same from key, 0 when it is not Ed25519. */
static int pki_pubkey_set_raw(X509_PUBKEY *spki, const uint8_t raw[PKI_SEED_BYTES])
{
	unsigned char *penc;

	_Static_assert(PKI_SEED_BYTES == 32, "an Ed25519 public key is 32 bytes");
	if (spki == NULL)
		return 0;
	penc = OPENSSL_memdup(raw, PKI_SEED_BYTES);
	if (penc == NULL)
		return 0;
	if (X509_PUBKEY_set0_param(spki, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL,
				   penc, PKI_SEED_BYTES) != 1) {
		OPENSSL_free(penc);
		return 0;
	}
	return 1;
}

static int pki_pubkey_set(X509_PUBKEY *spki, const EVP_PKEY *key)
{
	unsigned char raw[PKI_SEED_BYTES];
	size_t n = sizeof raw;

	if (spki == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(key, raw, &n) != 1 || n != sizeof raw)
		return 0;
	return pki_pubkey_set_raw(spki, raw);
}

int pki_csr_create(const uint8_t seed[PKI_SEED_BYTES], uint8_t *csr, size_t cap,
		   size_t *len)
{
	return pki_csr_create_keyed(seed, csr, cap, len, NULL);
}

/* pki_csr_create_keyed, the CSR kept in cache (NULL: none) as made. */
static int pki_csr_create_in(struct pki_cache *cache, const uint8_t seed[PKI_SEED_BYTES],
			     uint8_t *csr, size_t cap, size_t *len,
			     uint8_t key_digest[ENV_DIGEST_BYTES])
{
	unsigned char *der = NULL;
	EVP_PKEY *k = NULL;
	X509_REQ *req = NULL;
	uint8_t pub[PKI_SEED_BYTES];
	size_t pub_len = sizeof pub;
	int rc = CS_ENOMEM, n;

	assert(seed != NULL && csr != NULL && len != NULL);
	ERR_clear_error();
	k = pki_key_from_seed(seed);
	if (k == NULL)
		goto out;
	req = X509_REQ_new();
	if (req == NULL)
		goto free_key;
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    pki_pubkey_set(X509_REQ_get_X509_PUBKEY(req), k) != 1 ||
	    X509_REQ_sign(req, k, NULL) <= 0)
		goto free_req;
	n = i2d_X509_REQ(req, &der);
	rc = pki_der_out(der, n, csr, cap, len);
	if (rc == 0 && key_digest != NULL)
		rc = pki_key_digest_of(k, key_digest);
	if (rc == 0 && cache != NULL &&
	    EVP_PKEY_get_raw_public_key(k, pub, &pub_len) == 1 && pub_len == sizeof pub)
		pki_made_note(cache, csr, *len, NULL, 0, pub);
free_req:
	X509_REQ_free(req);
free_key:
	EVP_PKEY_free(k);
out:
	ERR_clear_error();
	return rc;
}

int pki_csr_create_keyed(const uint8_t seed[PKI_SEED_BYTES], uint8_t *csr, size_t cap,
			 size_t *len, uint8_t key_digest[ENV_DIGEST_BYTES])
{
	return pki_csr_create_in(NULL, seed, csr, cap, len, key_digest);
}

int pki_csr_create_cached(struct pki_cache *cache, const uint8_t seed[PKI_SEED_BYTES],
			  uint8_t *csr, size_t cap, size_t *len,
			  uint8_t key_digest[ENV_DIGEST_BYTES])
{
	return pki_csr_create_in(cache, seed, csr, cap, len, key_digest);
}

int pki_sign(const struct env_blob *ca_cert, const struct env_blob *ca_key,
	     const struct env_blob *csr, const struct env_identity *who,
	     int64_t not_before_s, int64_t not_after_s, uint64_t serial, uint8_t *cert,
	     size_t cap, size_t *len, char why[PKI_WHY_BYTES])
{
	return pki_sign_cached(NULL, ca_cert, ca_key, csr, who, not_before_s, not_after_s,
			       serial, cert, cap, len, why);
}

int pki_sign_cached(struct pki_cache *cache, const struct env_blob *ca_cert,
		    const struct env_blob *ca_key, const struct env_blob *csr,
		    const struct env_identity *who, int64_t not_before_s,
		    int64_t not_after_s, uint64_t serial, uint8_t *cert, size_t cap,
		    size_t *len, char why[PKI_WHY_BYTES])
{
	struct pki_cert ca_info;
	char o[PKI_HEX_ID_CHARS + 1], cn[PKI_HEX_ID_CHARS + 1];
	char nb_str[24], na_str[24];
	const unsigned char *p;
	X509 *ca = NULL, *x = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *cakey = NULL, *pub;
	const struct pki_made *made;
	uint8_t raw[PKI_SEED_BYTES];
	size_t raw_len = sizeof raw;
	X509V3_CTX ctx;
	unsigned char *der = NULL;
	int rc = CS_EINVAL, n;

	assert(ca_cert != NULL && ca_key != NULL && csr != NULL && who != NULL);
	assert(cert != NULL && len != NULL);
	ERR_clear_error();
	memset(&ca_info, 0, sizeof ca_info);

	/* the CA: a root of ours, and its key */
	ca = pki_cert_parse_c(cache, ca_cert, NULL);
	if (ca == NULL || pki_cert_basics(ca, &ca_info, NULL) != 0 ||
	    pki_cert_names(ca, &ca_info, NULL) != 0 || ca_info.node_id != 0) {
		pki_why(why, "CA certificate is not a root of ours");
		goto free_ca;
	}
	cakey = pki_key_load_c(cache, ca_key);
	if (cakey == NULL) {
		pki_why(why, "CA key is not an Ed25519 private key (PKCS#8 DER or seed)");
		goto free_ca;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(ca), cakey) != 1) {
		pki_why(why, "CA key does not match the CA certificate");
		goto free_cakey;
	}

	/* who */
	if (who->node_id == 0) {
		pki_why(why, "node id 0 is not a node");
		goto free_cakey;
	}
	if (who->role != ENV_ROLE_WORKER && who->role != ENV_ROLE_MANAGER) {
		pki_why(why, "role %d is not worker or manager", (int)who->role);
		goto free_cakey;
	}
	if (who->cluster_id != ca_info.cluster_id) {
		pki_hex16(who->cluster_id, o);
		pki_hex16(ca_info.cluster_id, cn);
		pki_why(why, "cluster %s is not the CA's, %s", o, cn);
		goto free_cakey;
	}
	not_before_s = pki_time_clamp(not_before_s);
	not_after_s = pki_time_clamp(not_after_s);
	if (not_after_s > ca_info.not_after_s)
		not_after_s = ca_info.not_after_s;
	if (not_after_s < not_before_s) {
		pki_rfc3339(not_before_s, nb_str);
		pki_rfc3339(not_after_s, na_str);
		pki_why(why, "validity would end at %s, before it starts at %s", na_str,
			nb_str);
		goto free_cakey;
	}

	/* the CSR: well formed, an Ed25519 key, its own signature */
	rc = CS_EAUTH;
	if (csr->data == NULL || csr->len == 0) {
		pki_why(why, "CSR is empty");
		goto free_cakey;
	}
	if (csr->len > PKI_DER_BYTES_MAX) {
		pki_why(why, "CSR is %zu bytes, over %d", csr->len, PKI_DER_BYTES_MAX);
		goto free_cakey;
	}
	made = pki_made_find(cache, csr->data, csr->len, NULL, 0);
	if (made != NULL) {
		/* made here: well formed, its key Ed25519, its signature its own */
		memcpy(raw, made->pub, sizeof raw);
	} else {
		p = csr->data;
		req = d2i_X509_REQ(NULL, &p, (long)csr->len);
		if (req == NULL) {
			pki_why(why, "CSR is not DER: %s",
				pki_ossl_said("unreadable DER"));
			goto free_cakey;
		}
		if (p != csr->data + csr->len) {
			pki_why(why, "CSR has %zu bytes after its DER",
				(size_t)(csr->data + csr->len - p));
			goto free_req;
		}
		pub = X509_REQ_get0_pubkey(req);
		if (pub == NULL || EVP_PKEY_get_id(pub) != EVP_PKEY_ED25519 ||
		    EVP_PKEY_get_raw_public_key(pub, raw, &raw_len) != 1 ||
		    raw_len != sizeof raw) {
			pki_why(why, "CSR key is not Ed25519");
			goto free_req;
		}
		if (X509_REQ_verify(req, pub) != 1) {
			pki_why(why, "CSR signature does not verify");
			goto free_req;
		}
	}

	/* the certificate */
	rc = CS_ENOMEM;
	pki_why(why, "out of memory");
	x = X509_new();
	if (x == NULL)
		goto free_req;
	pki_hex16(who->node_id, cn);
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 ||
	    pki_name_set(X509_get_subject_name(x), who->cluster_id,
			 who->role == ENV_ROLE_MANAGER ? PKI_OU_MANAGER : PKI_OU_WORKER,
			 cn) != 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
	    pki_time_set(X509_getm_notBefore(x), not_before_s) != 0 ||
	    pki_time_set(X509_getm_notAfter(x), not_after_s) != 0 ||
	    pki_pubkey_set_raw(X509_get_X509_PUBKEY(x), raw) != 1)
		goto free_x;
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if (pki_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    pki_ext_add(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
	    pki_ext_add(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") != 0 ||
	    pki_ext_add(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
	    pki_ext_add(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0)
		goto free_x;
	if (X509_sign(x, cakey, NULL) <= 0)
		goto free_x;
	n = i2d_X509(x, &der);
	rc = pki_der_out(der, n, cert, cap, len);
	if (rc == CS_ELIMIT)
		pki_why(why, "certificate does not fit %zu bytes", cap);
	if (rc == 0)
		pki_made_note(cache, cert, *len, ca_cert->data, ca_cert->len, NULL);
free_x:
	X509_free(x);
free_req:
	X509_REQ_free(req);
free_cakey:
	pki_key_put(cache, cakey);
free_ca:
	X509_free(ca);
	ERR_clear_error();
	return rc;
}

int pki_read(const struct env_blob *cert, struct pki_cert *out, char why[PKI_WHY_BYTES])
{
	return pki_read_cached(NULL, cert, out, why);
}

int pki_read_cached(struct pki_cache *cache, const struct env_blob *cert,
		    struct pki_cert *out, char why[PKI_WHY_BYTES])
{
	X509 *x;
	int rc;

	assert(cert != NULL && out != NULL);
	ERR_clear_error();
	memset(out, 0, sizeof *out);
	x = pki_cert_parse_leaf(cache, cert, why);
	if (x == NULL) {
		rc = CS_EINVAL;
		goto out;
	}
	rc = pki_cert_basics(x, out, why);
	if (rc == 0)
		rc = pki_cert_names(x, out, why);
	X509_free(x);
out:
	if (rc != 0)
		memset(out, 0, sizeof *out);
	ERR_clear_error();
	return rc;
}

int pki_verify(const struct env_blob *cert, const struct env_blob *roots,
	       size_t root_count, int64_t now_s, struct pki_cert *out,
	       char why[PKI_WHY_BYTES])
{
	return pki_verify_cached(NULL, cert, roots, root_count, now_s, out, why);
}

int pki_verify_cached(struct pki_cache *cache, const struct env_blob *cert,
		      const struct env_blob *roots, size_t root_count, int64_t now_s,
		      struct pki_cert *out, char why[PKI_WHY_BYTES])
{
	struct pki_cert info, root_info;
	char a[PKI_HEX_ID_CHARS + 1], b[PKI_HEX_ID_CHARS + 1], t[24];
	uint64_t cert_cluster = 0, first_root_cluster = 0;
	bool has_cluster, any_root = false, cluster_differs = true;
	size_t matched = root_count;
	X509 *x;
	int rc = CS_EAUTH;

	assert(cert != NULL && out != NULL);
	assert(roots != NULL || root_count == 0);
	ERR_clear_error();
	memset(out, 0, sizeof *out);
	memset(&info, 0, sizeof info);

	/* parse */
	x = pki_cert_parse_leaf(cache, cert, why);
	if (x == NULL)
		goto out;
	if (pki_cert_basics(x, &info, why) != 0)
		goto free_x;
	has_cluster = pki_cert_cluster(x, &cert_cluster);

	/* signature: by one of the roots, as given */
	for (size_t i = 0; i < root_count && matched == root_count; i++) {
		X509 *r = pki_cert_parse_c(cache, &roots[i], NULL);
		memset(&root_info, 0, sizeof root_info);
		if (r != NULL && pki_cert_basics(r, &root_info, NULL) == 0 &&
		    pki_cert_names(r, &root_info, NULL) == 0 && root_info.node_id == 0) {
			if (!any_root)
				first_root_cluster = root_info.cluster_id;
			any_root = true;
			if (has_cluster && root_info.cluster_id == cert_cluster)
				cluster_differs = false;
			if (X509_NAME_cmp(X509_get_issuer_name(x),
					  X509_get_subject_name(r)) == 0 &&
			    (pki_made_find(cache, cert->data, cert->len, roots[i].data,
					   roots[i].len) != NULL ||
			     X509_verify(x, X509_get0_pubkey(r)) == 1))
				matched = i;
		}
		X509_free(r);
	}
	ERR_clear_error();
	if (matched == root_count) {
		if (any_root && has_cluster && cluster_differs) {
			pki_hex16(cert_cluster, a);
			pki_hex16(first_root_cluster, b);
			pki_why(why, "certificate of cluster %s, expected %s", a, b);
		} else {
			pki_why(why, "certificate not signed by a trusted root");
		}
		goto free_x;
	}

	/* validity: notBefore through notAfter, inclusive (RFC 5280) */
	if (now_s < info.not_before_s) {
		pki_rfc3339(info.not_before_s, t);
		pki_why(why, "certificate not valid before %s", t);
		goto free_x;
	}
	if (now_s > info.not_after_s) {
		pki_rfc3339(info.not_after_s, t);
		pki_why(why, "certificate expired at %s", t);
		goto free_x;
	}

	/* names: a node of the root's cluster */
	if (pki_cert_names(x, &info, why) != 0)
		goto free_x;
	if (info.node_id == 0) {
		pki_why(why,
			"not a certificate: a root (CN=swarm-ca), expected a node's");
		goto free_x;
	}
	if (info.cluster_id != root_info.cluster_id) {
		pki_hex16(info.cluster_id, a);
		pki_hex16(root_info.cluster_id, b);
		pki_why(why, "certificate of cluster %s, expected %s", a, b);
		goto free_x;
	}
	pki_digest(roots[matched].data, roots[matched].len, info.root);
	*out = info;
	rc = 0;
free_x:
	X509_free(x);
out:
	ERR_clear_error();
	return rc;
}

bool pki_key_matches(const struct env_blob *key, const struct env_blob *cert)
{
	EVP_PKEY *k;
	X509 *x;
	bool match = false;

	assert(key != NULL && cert != NULL);
	ERR_clear_error();
	k = pki_key_load(key);
	if (k == NULL)
		goto out;
	x = pki_cert_parse(cert, NULL);
	if (x != NULL) {
		EVP_PKEY *pub = X509_get0_pubkey(x);
		match = pub != NULL && EVP_PKEY_eq(pub, k) == 1;
		X509_free(x);
	}
	EVP_PKEY_free(k);
out:
	ERR_clear_error();
	return match;
}

/* ---------------------------------------------------------------- join tokens */

static const char pki_base36[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* pki_base36_write writes the big-endian number n (n_len bytes, destroyed:
 * it ends as n / 36^digits) as `digits` base-36 digits into out, most
 * significant first, zero-padded. */
static void pki_base36_write(uint8_t *n, size_t n_len, char *out, size_t digits)
{
	for (size_t d = digits; d-- > 0;) {
		unsigned rem = 0;
		for (size_t i = 0; i < n_len; i++) {
			unsigned cur = rem << 8 | n[i];
			n[i] = (uint8_t)(cur / PKI_BASE);
			rem = cur % PKI_BASE;
		}
		out[d] = pki_base36[rem];
	}
}

void pki_token_new(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES],
		   char out[PKI_TOKEN_BYTES])
{
	uint64_t lo = env->ops->random_u64(env);
	uint64_t hi = env->ops->random_u64(env);
	pki_token_make(digest, hi, lo, out);
}

void pki_token_make(const uint8_t digest[ENV_DIGEST_BYTES], uint64_t secret_hi,
		    uint64_t secret_lo, char out[PKI_TOKEN_BYTES])
{
	uint8_t n[ENV_DIGEST_BYTES], s[16];
	char *p;

	assert(digest != NULL && out != NULL);
	p = out;
	memcpy(n, digest, sizeof n);
	for (int i = 0; i < 8; i++) {
		s[i] = (uint8_t)(secret_hi >> (56 - 8 * i));
		s[8 + i] = (uint8_t)(secret_lo >> (56 - 8 * i));
	}
	memcpy(p, PKI_TOKEN_PREFIX, PKI_TOKEN_PREFIX_CHARS);
	p += PKI_TOKEN_PREFIX_CHARS;
	pki_base36_write(n, sizeof n, p, PKI_TOKEN_DIGEST_CHARS);
	p += PKI_TOKEN_DIGEST_CHARS;
	*p++ = '-';
	pki_base36_write(s, sizeof s, p, PKI_TOKEN_SECRET_CHARS);
	p += PKI_TOKEN_SECRET_CHARS;
	*p = '\0';
	/* 36^50 > 2^256 and 36^25 > 2^128: every digit was taken */
	for (size_t i = 0; i < sizeof n; i++)
		assert(n[i] == 0);
	for (size_t i = 0; i < sizeof s; i++)
		assert(s[i] == 0);
}

static int pki_base36_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	return -1;
}

int pki_token_parse(const char *token, uint8_t digest[ENV_DIGEST_BYTES],
		    char secret[PKI_TOKEN_SECRET_BYTES], char why[PKI_WHY_BYTES])
{
	/* one byte more than the digest: what overflows 2^256 lands there */
	uint8_t n[ENV_DIGEST_BYTES + 1];
	const char *dg, *sec, *dash;
	size_t parts = 1, dg_len, sec_len;

	assert(token != NULL && digest != NULL && secret != NULL);
	if (strncmp(token, PKI_TOKEN_PREFIX, PKI_TOKEN_PREFIX_CHARS) != 0) {
		pki_why(why, "token does not start with SWMTKN-1-");
		return CS_EINVAL;
	}
	for (const char *c = token; *c != '\0'; c++)
		parts += *c == '-';
	if (parts != PKI_TOKEN_PARTS) {
		pki_why(why, "token has %zu parts, expected SWMTKN-1-<digest>-<secret>",
			parts);
		return CS_EINVAL;
	}
	dg = token + PKI_TOKEN_PREFIX_CHARS;
	dash = strchr(dg, '-');
	assert(dash != NULL);
	sec = dash + 1;
	dg_len = (size_t)(dash - dg);
	sec_len = strlen(sec);
	if (dg_len != PKI_TOKEN_DIGEST_CHARS) {
		pki_why(why, "token digest is %zu characters, expected 50", dg_len);
		return CS_EINVAL;
	}
	if (sec_len != PKI_TOKEN_SECRET_CHARS) {
		pki_why(why, "token secret is %zu characters, expected 25", sec_len);
		return CS_EINVAL;
	}
	for (size_t i = 0; i < PKI_TOKEN_DIGEST_CHARS; i++)
		if (pki_base36_digit(dg[i]) < 0)
			goto bad_char;
	for (size_t i = 0; i < PKI_TOKEN_SECRET_CHARS; i++)
		if (pki_base36_digit(sec[i]) < 0)
			goto bad_char;

	/* n = n * 36 + digit; 36^50 < 2^264, so n never overflows its bytes */
	memset(n, 0, sizeof n);
	for (size_t i = 0; i < PKI_TOKEN_DIGEST_CHARS; i++) {
		unsigned carry = (unsigned)pki_base36_digit(dg[i]);
		for (size_t j = sizeof n; j-- > 0;) {
			unsigned cur = n[j] * PKI_BASE + carry;
			n[j] = (uint8_t)cur;
			carry = cur >> 8;
		}
		assert(carry == 0);
	}
	if (n[0] != 0) {
		pki_why(why, "token digest is out of range");
		return CS_EINVAL;
	}
	memcpy(digest, n + 1, ENV_DIGEST_BYTES);
	memcpy(secret, sec, PKI_TOKEN_SECRET_CHARS);
	secret[PKI_TOKEN_SECRET_CHARS] = '\0';
	return 0;

bad_char:
	pki_why(why, "token has a character that is not 0-9 or a-z");
	return CS_EINVAL;
}
