/* Tests of core/pki.c: a root, a CSR, a node certificate signed from it,
 * read and verified back; the same inputs giving the same bytes; every
 * refusal of pki_verify, pki_sign and pki_token_parse with its exact words;
 * join tokens at the edges of their range (checked against Python's
 * base 36 of the same numbers); keys matching certificates. Certificates
 * named other than pki_sign names them are built here with OpenSSL
 * directly, signed by the real CA key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/errors.h"
#include "core/pki.h"

#define CLUSTER	      0x0123456789abcdefull
#define OTHER_CLUSTER 0x00000000000000ffull
#define NODE	      0xfeedface00c0ffeeull
#define T_2026	      1767225600ll /* 2026-01-01T00:00:00Z */
#define T_DEC	      1796530800ll /* 2026-12-06T04:20:00Z */
#define T_2060	      2845281600ll /* 2060-02-29T12:00:00Z */
#define YEAR_S	      (365ll * 86400)

struct ca {
	uint8_t cert[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	size_t cert_len, key_len;
};

struct der {
	uint8_t b[PKI_DER_BYTES_MAX + 1]; /* one over: to pass a DER over the limit */
	size_t len;
};

static void seed_of(uint8_t seed[PKI_SEED_BYTES], uint8_t first)
{
	for (int i = 0; i < PKI_SEED_BYTES; i++)
		seed[i] = (uint8_t)(first + 7 * i);
}

static struct env_blob blob(const uint8_t *data, size_t len)
{
	struct env_blob b = {data, len};
	return b;
}

/* A root for cluster, from seed byte s, valid [T_2026, T_2026 + 10 years]. */
static void ca_make(struct ca *ca, uint8_t s, uint64_t cluster)
{
	uint8_t seed[PKI_SEED_BYTES];
	seed_of(seed, s);
	assert_int_equal(pki_ca_create(seed, cluster, T_2026, T_2026 + 10 * YEAR_S, 1,
				       ca->cert, sizeof ca->cert, &ca->cert_len, ca->key,
				       sizeof ca->key, &ca->key_len),
			 0);
}

static void csr_make(struct der *csr, uint8_t s)
{
	uint8_t seed[PKI_SEED_BYTES];
	seed_of(seed, s);
	assert_int_equal(pki_csr_create(seed, csr->b, sizeof csr->b, &csr->len), 0);
}

/* pki_sign with CA ca for (node, cluster, role) over [nb, na]. */
static int sign(const struct ca *ca, const struct der *csr, uint64_t node,
		uint64_t cluster, enum env_role role, int64_t nb, int64_t na,
		struct der *out, char *why)
{
	struct env_blob c = blob(ca->cert, ca->cert_len), k = blob(ca->key, ca->key_len);
	struct env_blob r = blob(csr->b, csr->len);
	struct env_identity who;

	memset(&who, 0, sizeof who);
	who.node_id = node;
	who.cluster_id = cluster;
	who.role = role;
	return pki_sign(&c, &k, &r, &who, nb, na, 42, out->b, sizeof out->b, &out->len,
			why);
}

/* A manager certificate for NODE, valid [T_2026, T_DEC]. */
static void node_make(const struct ca *ca, struct der *cert)
{
	struct der csr;
	char why[PKI_WHY_BYTES];
	csr_make(&csr, 100);
	assert_int_equal(
		sign(ca, &csr, NODE, CLUSTER, ENV_ROLE_MANAGER, T_2026, T_DEC, cert, why),
		0);
}

static int verify(const struct der *cert, const struct ca *roots, size_t n, int64_t now,
		  struct pki_cert *out, char *why)
{
	struct env_blob c = blob(cert->b, cert->len), r[2];
	assert_true(n <= 2);
	for (size_t i = 0; i < n; i++)
		r[i] = blob(roots[i].cert, roots[i].cert_len);
	memset(why, 0, PKI_WHY_BYTES);
	return pki_verify(&c, r, n, now, out, why);
}

/* A certificate built by hand: subject O=o[, OU=ou], CN=cn, issuer the CA's
 * subject, valid [T_2026, T_DEC], signed with the CA's key; ca_flag sets
 * basicConstraints CA:TRUE. The key is that of seed byte 100. */
static void craft(const struct ca *ca, const char *o, const char *ou, const char *cn,
		  bool ca_flag, struct der *out)
{
	uint8_t seed[PKI_SEED_BYTES];
	const unsigned char *p = ca->cert, *kp = ca->key;
	X509 *root = d2i_X509(NULL, &p, (long)ca->cert_len);
	EVP_PKEY *cakey = d2i_AutoPrivateKey(NULL, &kp, (long)ca->key_len), *k;
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	unsigned char *q;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	memset(out, 0, sizeof *out);
	q = out->b;
	seed_of(seed, 100);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, PKI_SEED_BYTES);
	assert_non_null(root);
	assert_non_null(cakey);
	assert_non_null(k);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), 9);
	if (o)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					   (const unsigned char *)o, -1, -1, 0);
	if (ou)
		X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
					   (const unsigned char *)ou, -1, -1, 0);
	if (cn)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(root));
	ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20260101000000Z");
	ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "20261206042000Z");
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, root, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_basic_constraints,
				   ca_flag ? "critical,CA:TRUE" : "critical,CA:FALSE");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, cakey, NULL) > 0);
	out->len = (size_t)i2d_X509(x, NULL);
	assert_true(out->len > 0 && out->len <= sizeof out->b);
	i2d_X509(x, &q);
	X509_free(x);
	X509_free(root);
	EVP_PKEY_free(k);
	EVP_PKEY_free(cakey);
}

/* find: where the bytes of s first occur in b, or NULL. */
static uint8_t *find(uint8_t *b, size_t len, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(b + i, s, n) == 0)
			return b + i;
	return NULL;
}

/* ---------------------------------------------------------------- certificates */

static void test_pki_round_trip_ca_csr_sign_read_verify(void **state)
{
	struct ca ca;
	struct der cert, csr;
	struct pki_cert rd, vf, root;
	uint8_t digest[ENV_DIGEST_BYTES], seed[PKI_SEED_BYTES];
	char why[PKI_WHY_BYTES];
	struct env_blob b;

	ca_make(&ca, 1, CLUSTER);
	assert_true(ca.cert_len > 100 && ca.cert_len < 1000);
	b = blob(ca.cert, ca.cert_len);
	assert_int_equal(pki_read(&b, &root, why), 0);
	assert_true(root.node_id == 0);
	assert_true(root.cluster_id == CLUSTER);
	assert_int_equal(root.role, ENV_ROLE_NONE);
	assert_true(root.not_before_s == T_2026);
	assert_true(root.not_after_s == T_2026 + 10 * YEAR_S);
	assert_true(root.serial == 1);

	for (int r = 0; r < 2; r++) {
		enum env_role role = r ? ENV_ROLE_WORKER : ENV_ROLE_MANAGER;
		csr_make(&csr, 100);
		assert_int_equal(
			sign(&ca, &csr, NODE, CLUSTER, role, T_2026, T_DEC, &cert, why),
			0);
		b = blob(cert.b, cert.len);
		assert_int_equal(pki_read(&b, &rd, why), 0);
		assert_true(rd.node_id == NODE);
		assert_true(rd.cluster_id == CLUSTER);
		assert_int_equal(rd.role, role);
		assert_true(rd.not_before_s == T_2026);
		assert_true(rd.not_after_s == T_DEC);
		assert_true(rd.serial == 42);
		memset(digest, 0, sizeof digest);
		assert_memory_equal(rd.root, digest, sizeof digest);

		assert_int_equal(verify(&cert, &ca, 1, T_2026 + 1000, &vf, why), 0);
		assert_true(vf.node_id == NODE);
		assert_true(vf.cluster_id == CLUSTER);
		assert_int_equal(vf.role, role);
		assert_memory_equal(vf.key, rd.key, sizeof rd.key);
		pki_digest(ca.cert, ca.cert_len, digest);
		assert_memory_equal(vf.root, digest, sizeof digest);
	}
	/* the certificate's key is the CSR's, and not the CA's */
	seed_of(seed, 100);
	b = blob(cert.b, cert.len);
	{
		struct env_blob s = blob(seed, sizeof seed);
		struct env_blob k = blob(ca.key, ca.key_len);
		assert_true(pki_key_matches(&s, &b));
		assert_false(pki_key_matches(&k, &b));
	}
	/* inclusive ends (RFC 5280) */
	assert_int_equal(verify(&cert, &ca, 1, T_2026, &vf, why), 0);
	assert_int_equal(verify(&cert, &ca, 1, T_DEC, &vf, why), 0);
}

static void test_pki_same_inputs_same_bytes(void **state)
{
	struct ca a, b;
	struct der ca1, ca2, c1, c2, k1, k2;
	uint8_t seed[PKI_SEED_BYTES];

	ca_make(&a, 1, CLUSTER);
	ca_make(&b, 1, CLUSTER);
	assert_int_equal(a.cert_len, b.cert_len);
	assert_memory_equal(a.cert, b.cert, a.cert_len);
	assert_int_equal(a.key_len, b.key_len);
	assert_memory_equal(a.key, b.key, a.key_len);
	csr_make(&ca1, 100);
	csr_make(&ca2, 100);
	assert_int_equal(ca1.len, ca2.len);
	assert_memory_equal(ca1.b, ca2.b, ca1.len);
	node_make(&a, &c1);
	node_make(&b, &c2);
	assert_int_equal(c1.len, c2.len);
	assert_memory_equal(c1.b, c2.b, c1.len);
	seed_of(seed, 9);
	assert_int_equal(pki_key_der(seed, k1.b, sizeof k1.b, &k1.len), 0);
	assert_int_equal(pki_key_der(seed, k2.b, sizeof k2.b, &k2.len), 0);
	assert_int_equal(k1.len, k2.len);
	assert_memory_equal(k1.b, k2.b, k1.len);
	/* and other inputs, other bytes */
	ca_make(&b, 2, CLUSTER);
	assert_memory_not_equal(a.cert, b.cert, a.cert_len);
}

/* The public key is written as X509_PUBKEY_set writes it (pki.c sets the
 * bytes without decoding them back): the CSR is byte for byte the one
 * OpenSSL's X509_REQ_set_pubkey makes (Ed25519 signs deterministically),
 * and a certificate signed from it carries the same SubjectPublicKeyInfo
 * as X509_set_pubkey gives. */
static void test_pki_public_key_bytes_as_openssl_sets_them(void **state)
{
	uint8_t seed[PKI_SEED_BYTES];
	unsigned char *der = NULL, *spki = NULL, *cert_spki = NULL;
	const unsigned char *p;
	struct der csr, cert;
	struct ca ca;
	EVP_PKEY *k;
	X509_REQ *req;
	X509 *x;
	int n, spki_len, cert_spki_len;
	(void)state;

	seed_of(seed, 100);
	csr_make(&csr, 100);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
	assert_non_null(k);
	req = X509_REQ_new();
	assert_non_null(req);
	assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
	assert_true(X509_REQ_sign(req, k, NULL) > 0);
	n = i2d_X509_REQ(req, &der);
	assert_true(n > 0);
	assert_int_equal((size_t)n, csr.len);
	assert_memory_equal(der, csr.b, csr.len);
	spki_len = i2d_PUBKEY(k, &spki);
	assert_true(spki_len > 0);

	ca_make(&ca, 1, CLUSTER);
	node_make(&ca, &cert);
	p = cert.b;
	x = d2i_X509(NULL, &p, (long)cert.len);
	assert_non_null(x);
	cert_spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &cert_spki);
	assert_int_equal(cert_spki_len, spki_len);
	assert_memory_equal(cert_spki, spki, (size_t)spki_len);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);

	OPENSSL_free(cert_spki);
	OPENSSL_free(spki);
	OPENSSL_free(der);
	X509_free(x);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

static void test_pki_key_der_is_pkcs8_of_the_seed(void **state)
{
	static const uint8_t prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30,
					   0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
					   0x04, 0x22, 0x04, 0x20};
	uint8_t seed[PKI_SEED_BYTES], key[PKI_DER_BYTES_MAX];
	size_t len = 0;

	seed_of(seed, 5);
	assert_int_equal(pki_key_der(seed, key, sizeof key, &len), 0);
	assert_int_equal(len, 48);
	assert_memory_equal(key, prefix, sizeof prefix);
	assert_memory_equal(key + 16, seed, sizeof seed);
	assert_int_equal(pki_key_der(seed, key, 47, &len), CS_ELIMIT);
}

static void test_pki_key_matches(void **state)
{
	struct ca ca, other;
	uint8_t seed[PKI_SEED_BYTES], junk[40];
	struct env_blob c, k;

	ca_make(&ca, 1, CLUSTER);
	ca_make(&other, 2, CLUSTER);
	c = blob(ca.cert, ca.cert_len);
	k = blob(ca.key, ca.key_len);
	assert_true(pki_key_matches(&k, &c));
	seed_of(seed, 1);
	k = blob(seed, sizeof seed);
	assert_true(pki_key_matches(&k, &c));
	k = blob(other.key, other.key_len);
	assert_false(pki_key_matches(&k, &c));
	seed_of(seed, 2);
	k = blob(seed, sizeof seed);
	assert_false(pki_key_matches(&k, &c));
	memset(junk, 0x30, sizeof junk);
	k = blob(junk, sizeof junk);
	assert_false(pki_key_matches(&k, &c));
	k = blob(ca.key, ca.key_len);
	c = blob(junk, sizeof junk);
	assert_false(pki_key_matches(&k, &c));
	k = blob(ca.key, ca.key_len - 1); /* cut short */
	c = blob(ca.cert, ca.cert_len);
	assert_false(pki_key_matches(&k, &c));
}

/* pki_key_digest of a seed equals what pki_read says of a certificate of
 * that key, and only of that key: the simulator matches keys to
 * certificates by it, as pki_key_matches does by parsing. */
static void test_pki_key_digest_matches_as_key_matches(void **state)
{
	struct ca ca, other;
	struct der csr, cert;
	struct pki_cert rd;
	uint8_t seed[PKI_SEED_BYTES], d[ENV_DIGEST_BYTES];
	char why[PKI_WHY_BYTES];
	struct env_blob b, k;

	ca_make(&ca, 1, CLUSTER);
	ca_make(&other, 2, CLUSTER);
	csr_make(&csr, 100);
	assert_int_equal(sign(&ca, &csr, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026, T_DEC,
			      &cert, why),
			 0);
	b = blob(cert.b, cert.len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	for (int i = 1; i <= 200; i += 33) { /* 100 among them */
		bool same;
		seed_of(seed, (uint8_t)i);
		assert_int_equal(pki_key_digest(seed, d), 0);
		k = blob(seed, sizeof seed);
		same = memcmp(d, rd.key, sizeof d) == 0;
		assert_true(same == pki_key_matches(&k, &b));
	}
	seed_of(seed, 100);
	assert_int_equal(pki_key_digest(seed, d), 0);
	assert_memory_equal(d, rd.key, sizeof d);
	/* the root's own key, and another root's */
	seed_of(seed, 1);
	assert_int_equal(pki_key_digest(seed, d), 0);
	b = blob(ca.cert, ca.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_memory_equal(d, rd.key, sizeof d);
	b = blob(other.cert, other.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_memory_not_equal(d, rd.key, sizeof d);
	/* pki_csr_create_keyed: pki_csr_create's bytes, and the digest of
	 * the key they ask for */
	{
		struct der plain, keyed;
		uint8_t kd[ENV_DIGEST_BYTES];
		for (int i = 100; i <= 102; i++) {
			seed_of(seed, (uint8_t)i);
			assert_int_equal(
				pki_csr_create(seed, plain.b, sizeof plain.b, &plain.len),
				0);
			assert_int_equal(pki_csr_create_keyed(seed, keyed.b,
							      sizeof keyed.b, &keyed.len,
							      kd),
					 0);
			assert_int_equal(plain.len, keyed.len);
			assert_memory_equal(plain.b, keyed.b, plain.len);
			assert_int_equal(pki_key_digest(seed, d), 0);
			assert_memory_equal(kd, d, sizeof d);
		}
		b = blob(cert.b, cert.len); /* of seed 100's key */
		assert_int_equal(pki_read(&b, &rd, why), 0);
		seed_of(seed, 100);
		assert_int_equal(pki_csr_create_keyed(seed, keyed.b, sizeof keyed.b,
						      &keyed.len, kd),
				 0);
		assert_memory_equal(kd, rd.key, sizeof kd);
	}
}

/* Issue 18: pki_cert_key_digest, which the CA reads every certificate it
 * signs with, gives pki_read's key digest: for node certificates of several
 * keys, for roots, and for every single-bit change of a certificate that
 * pki_read still reads. A certificate cut short anywhere, or what is not
 * one, is CS_EINVAL with a zeroed digest. */
static void test_pki_cert_key_digest_is_what_pki_read_gives(void **state)
{
	struct ca ca, other;
	struct der csr, cert, bad;
	struct pki_cert rd;
	uint8_t d[ENV_DIGEST_BYTES], zero[ENV_DIGEST_BYTES] = {0};
	char why[PKI_WHY_BYTES];
	struct env_blob b;
	size_t read_after_flip = 0, refused_after_flip = 0;

	ca_make(&ca, 1, CLUSTER);
	ca_make(&other, 2, CLUSTER);
	for (int i = 100; i <= 103; i++) {
		csr_make(&csr, (uint8_t)i);
		assert_int_equal(sign(&ca, &csr, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026,
				      T_DEC, &cert, why),
				 0);
		b = blob(cert.b, cert.len);
		assert_int_equal(pki_read(&b, &rd, why), 0);
		assert_int_equal(pki_cert_key_digest(&b, d), 0);
		assert_memory_equal(d, rd.key, sizeof d);
	}
	b = blob(ca.cert, ca.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_int_equal(pki_cert_key_digest(&b, d), 0);
	assert_memory_equal(d, rd.key, sizeof d);
	b = blob(other.cert, other.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_int_equal(pki_cert_key_digest(&b, d), 0);
	assert_memory_equal(d, rd.key, sizeof d);
	/* every bit of the last one changed, alone: never another digest than
	 * pki_read's. Refused only where the key's unused-bits count was
	 * changed (OpenSSL then masks the key's last bits: pki_read digests
	 * other bytes than the certificate holds), one byte's bits at most */
	for (size_t i = 0; i < cert.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			bad = cert;
			bad.b[i] ^= (uint8_t)(1u << bit);
			b = blob(bad.b, bad.len);
			if (pki_read(&b, &rd, why) != 0)
				continue;
			if (pki_cert_key_digest(&b, d) != 0) {
				refused_after_flip++;
				continue;
			}
			read_after_flip++;
			if (memcmp(d, rd.key, sizeof d) != 0)
				fail_msg("byte %zu bit %d: not pki_read's key digest", i,
					 bit);
		}
	}
	assert_true(read_after_flip > 0);
	assert_true(refused_after_flip <= 8);
	/* cut short */
	for (size_t len = 0; len < cert.len; len++) {
		b = blob(cert.b, len);
		memset(d, 0xff, sizeof d);
		if (pki_cert_key_digest(&b, d) != CS_EINVAL)
			fail_msg("cut to %zu bytes: read", len);
		assert_memory_equal(d, zero, sizeof d);
	}
	/* not a certificate: a CSR (a SEQUENCE of a SEQUENCE, no version) */
	b = blob(csr.b, csr.len);
	assert_int_equal(pki_cert_key_digest(&b, d), CS_EINVAL);
}

/* The parse cache: signing and verifying through it gives what the
 * uncached calls give, byte for byte and refusal for refusal, across more
 * CAs than it has slots (each evicted and parsed again), and a cached root
 * is never taken for other bytes. */
static void test_pki_cache_gives_what_no_cache_gives(void **state)
{
	struct pki_cache cache;
	struct ca ca[PKI_CACHE_SLOTS + 2];
	struct der csr, a, b;
	struct pki_cert x, y;
	char why_a[PKI_WHY_BYTES], why_b[PKI_WHY_BYTES];
	struct env_identity who;
	const size_t n = sizeof ca / sizeof ca[0];

	memset(&cache, 0, sizeof cache);
	memset(&who, 0, sizeof who);
	who.node_id = NODE;
	who.cluster_id = CLUSTER;
	who.role = ENV_ROLE_WORKER;
	for (size_t i = 0; i < n; i++)
		ca_make(&ca[i], (uint8_t)(1 + i), CLUSTER);
	csr_make(&csr, 100);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < n; i++) {
			struct env_blob c = blob(ca[i].cert, ca[i].cert_len);
			struct env_blob k = blob(ca[i].key, ca[i].key_len);
			struct env_blob r = blob(csr.b, csr.len);
			struct env_blob cb, roots[2];
			/* a key of another CA: refused the same way */
			struct env_blob wrong =
				blob(ca[(i + 1) % n].key, ca[(i + 1) % n].key_len);
			int ra, rb;

			ra = pki_sign(&c, &k, &r, &who, T_2026, T_DEC, 42, a.b,
				      sizeof a.b, &a.len, why_a);
			rb = pki_sign_cached(&cache, &c, &k, &r, &who, T_2026, T_DEC, 42,
					     b.b, sizeof b.b, &b.len, why_b);
			assert_int_equal(ra, 0);
			assert_int_equal(rb, 0);
			assert_int_equal(a.len, b.len);
			assert_memory_equal(a.b, b.b, a.len);
			ra = pki_sign(&c, &wrong, &r, &who, T_2026, T_DEC, 42, a.b,
				      sizeof a.b, &a.len, why_a);
			rb = pki_sign_cached(&cache, &c, &wrong, &r, &who, T_2026, T_DEC,
					     42, b.b, sizeof b.b, &b.len, why_b);
			assert_int_equal(ra, rb);
			assert_int_not_equal(ra, 0);
			assert_string_equal(why_a, why_b);

			/* verified against this root, the next one, and both */
			cb = blob(b.b, b.len);
			roots[0] = c;
			roots[1] = blob(ca[(i + 1) % n].cert, ca[(i + 1) % n].cert_len);
			for (size_t first = 0; first < 2; first++) {
				for (size_t cnt = 1; cnt + first <= 2; cnt++) {
					memset(why_a, 0, sizeof why_a);
					memset(why_b, 0, sizeof why_b);
					ra = pki_verify(&cb, roots + first, cnt,
							T_2026 + 1000, &x, why_a);
					rb = pki_verify_cached(&cache, &cb, roots + first,
							       cnt, T_2026 + 1000, &y,
							       why_b);
					assert_int_equal(ra, rb);
					assert_int_equal(ra, first == 0 ? 0 : CS_EAUTH);
					assert_memory_equal(&x, &y, sizeof x);
					assert_string_equal(why_a, why_b);
				}
			}
			/* outside its validity: the same refusal */
			ra = pki_verify(&cb, roots, 1, T_DEC + 1, &x, why_a);
			rb = pki_verify_cached(&cache, &cb, roots, 1, T_DEC + 1, &y,
					       why_b);
			assert_int_equal(ra, CS_EAUTH);
			assert_int_equal(rb, CS_EAUTH);
			assert_string_equal(why_a, why_b);
		}
	}
	/* a root's bytes changed by one: not the cached one */
	{
		struct ca bad = ca[0];
		struct env_blob c = blob(ca[0].cert, ca[0].cert_len), k, r, cb, root;
		k = blob(ca[0].key, ca[0].key_len);
		r = blob(csr.b, csr.len);
		assert_int_equal(pki_sign_cached(&cache, &c, &k, &r, &who, T_2026, T_DEC,
						 42, b.b, sizeof b.b, &b.len, why_b),
				 0);
		bad.cert[bad.cert_len - 1] ^= 1; /* its signature */
		root = blob(bad.cert, bad.cert_len);
		cb = blob(b.b, b.len);
		assert_int_equal(pki_verify_cached(&cache, &cb, &root, 1, T_2026 + 1000,
						   &y, why_b),
				 pki_verify(&cb, &root, 1, T_2026 + 1000, &x, why_a));
	}
	/* a certificate read, then checked, through the cache (as a CA reads
	 * what it signed and the node checks it): what no cache gives; the
	 * same bytes but one: not the cached certificate */
	{
		struct env_blob cb = blob(b.b, b.len);
		struct env_blob root = blob(ca[0].cert, ca[0].cert_len);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(pki_read_cached(&cache, &cb, &y, why_b), 0);
			assert_int_equal(pki_read(&cb, &x, why_a), 0);
			assert_memory_equal(&x, &y, sizeof x);
		}
		assert_int_equal(pki_verify_cached(&cache, &cb, &root, 1, T_2026 + 1000,
						   &y, why_b),
				 0);
		assert_int_equal(pki_verify(&cb, &root, 1, T_2026 + 1000, &x, why_a), 0);
		assert_memory_equal(&x, &y, sizeof x);
		b.b[b.len - 1] ^= 1; /* its signature */
		assert_int_equal(pki_verify_cached(&cache, &cb, &root, 1, T_2026 + 1000,
						   &y, why_b),
				 CS_EAUTH);
		assert_int_equal(pki_verify(&cb, &root, 1, T_2026 + 1000, &x, why_a),
				 CS_EAUTH);
		assert_string_equal(why_a, why_b);
	}
	pki_cache_free(&cache);
	for (size_t i = 0; i < PKI_CACHE_SLOTS; i++)
		assert_null(cache.slot[i].x);
	pki_cache_free(NULL);
}

/* pki_verify_cached and pki_verify on the same certificate and roots at
 * now: the same answer, fields and words. Returns the answer. */
static int verify_both(struct pki_cache *cache, const struct der *cert,
		       const struct env_blob *roots, size_t n, int64_t now)
{
	struct env_blob c = blob(cert->b, cert->len);
	struct pki_cert x, y;
	char why_a[PKI_WHY_BYTES], why_b[PKI_WHY_BYTES];
	int ra, rb;

	memset(why_a, 0, sizeof why_a);
	memset(why_b, 0, sizeof why_b);
	ra = pki_verify(&c, roots, n, now, &x, why_a);
	rb = pki_verify_cached(cache, &c, roots, n, now, &y, why_b);
	assert_int_equal(ra, rb);
	assert_memory_equal(&x, &y, sizeof x);
	assert_string_equal(why_a, why_b);
	return rb;
}

/* A certificate and its roots already parsed (the cache warm: as when a
 * CA has read what it signed and the node then checks it): every refusal
 * pki_verify makes, pki_verify_cached makes, the same words; at both ends
 * of the validity (inclusive, RFC 5280) and one second past each; against
 * a root of another cluster, another root of the same cluster, a node's
 * certificate given as a root, a CA's certificate given as the leaf; and
 * once the leaf was evicted (more leaves read than there are slots). Who
 * was removed from the cluster is not pki's to say (core/ca.c and the
 * dispatcher refuse a removed node by the id its certificate names): its
 * certificate answers here as any other. */
static void test_pki_cache_hit_refuses_as_no_cache(void **state)
{
	struct pki_cache cache;
	struct ca ca, same_cluster, other;
	struct der leaf, crafted, evict;
	struct env_blob r_ca, r_same, r_other, r_leaf, both[2];
	struct pki_cert rd;
	char why[PKI_WHY_BYTES];
	const int64_t at[] = {T_2026 - 1, T_2026, T_2026 + 1000, T_DEC, T_DEC + 1};

	memset(&cache, 0, sizeof cache);
	ca_make(&ca, 1, CLUSTER);
	ca_make(&same_cluster, 2, CLUSTER);
	ca_make(&other, 3, OTHER_CLUSTER);
	node_make(&ca, &leaf);
	r_ca = blob(ca.cert, ca.cert_len);
	r_same = blob(same_cluster.cert, same_cluster.cert_len);
	r_other = blob(other.cert, other.cert_len);
	r_leaf = blob(leaf.b, leaf.len);
	both[0] = r_other;
	both[1] = r_ca;

	for (int round = 0; round < 2; round++) {
		struct env_blob lb = blob(leaf.b, leaf.len);
		/* warm: read (the CA's read of what it signed), then checked */
		assert_int_equal(pki_read_cached(&cache, &lb, &rd, why), 0);
		for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
			int want = at[i] >= T_2026 && at[i] <= T_DEC ? 0 : CS_EAUTH;
			assert_int_equal(verify_both(&cache, &leaf, &r_ca, 1, at[i]),
					 want);
			assert_int_equal(verify_both(&cache, &leaf, both, 2, at[i]),
					 want);
		}
		assert_int_equal(verify_both(&cache, &leaf, &r_other, 1, T_2026 + 1000),
				 CS_EAUTH);
		assert_int_equal(verify_both(&cache, &leaf, &r_same, 1, T_2026 + 1000),
				 CS_EAUTH);
		assert_int_equal(verify_both(&cache, &leaf, &r_leaf, 1, T_2026 + 1000),
				 CS_EAUTH);
		{
			struct der root_as_leaf;
			memcpy(root_as_leaf.b, ca.cert, ca.cert_len);
			root_as_leaf.len = ca.cert_len;
			assert_int_equal(verify_both(&cache, &root_as_leaf, &r_ca, 1,
						     T_2026 + 1000),
					 CS_EAUTH);
		}
		/* signed by the real CA but of another cluster */
		craft(&ca, "00000000000000ff", "swarm-worker", "00000000000000aa", false,
		      &crafted);
		assert_int_equal(verify_both(&cache, &crafted, &r_ca, 1, T_2026 + 1000),
				 CS_EAUTH);
		/* evict every leaf slot: the leaf is parsed again */
		for (int i = 0; i <= PKI_CACHE_LEAF_SLOTS; i++) {
			struct der csr;
			struct env_blob eb;
			csr_make(&csr, (uint8_t)(i + 1));
			assert_int_equal(sign(&ca, &csr, NODE + (uint64_t)i + 1, CLUSTER,
					      ENV_ROLE_WORKER, T_2026, T_DEC, &evict,
					      why),
					 0);
			eb = blob(evict.b, evict.len);
			assert_int_equal(pki_read_cached(&cache, &eb, &rd, why), 0);
		}
	}
	pki_cache_free(&cache);
	assert_null(cache.leaf);
}

/* pki_sign_cached through cache, as sign does without one: the same
 * answer, bytes and words. */
static int sign_cached(struct pki_cache *cache, const struct ca *ca,
		       const struct der *csr, struct der *out, char *why)
{
	struct env_blob c = blob(ca->cert, ca->cert_len), k = blob(ca->key, ca->key_len);
	struct env_blob r = blob(csr->b, csr->len);
	struct env_identity who;
	struct der plain;
	char why_plain[PKI_WHY_BYTES];
	int rc, rc_plain;

	memset(&who, 0, sizeof who);
	who.node_id = NODE;
	who.cluster_id = CLUSTER;
	who.role = ENV_ROLE_WORKER;
	memset(why, 0, PKI_WHY_BYTES);
	memset(why_plain, 0, sizeof why_plain);
	rc = pki_sign_cached(cache, &c, &k, &r, &who, T_2026, T_DEC, 42, out->b,
			     sizeof out->b, &out->len, why);
	rc_plain = sign(ca, csr, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026, T_DEC, &plain,
			why_plain);
	assert_int_equal(rc, rc_plain);
	if (rc == 0) {
		assert_int_equal(out->len, plain.len);
		assert_memory_equal(out->b, plain.b, plain.len);
	} else {
		assert_string_equal(why, why_plain);
	}
	return rc;
}

/* Issue 18: a signature made through the cache (a CSR of
 * pki_csr_create_cached, a certificate of pki_sign_cached) is not checked
 * again when the very bytes come back (for a certificate: against the very
 * CA certificate that signed it); the answers stay those of no cache. A
 * byte changed, or another root of the same name, is checked in full and
 * refused. */
static void test_pki_made_signatures_skip_their_check_and_nothing_else(void **state)
{
	struct pki_cache cache;
	struct ca ca, same_name;
	struct der csr, plain_csr, cert, bad;
	struct env_blob r_ca, r_same;
	uint8_t seed[PKI_SEED_BYTES], digest[ENV_DIGEST_BYTES];
	char why[PKI_WHY_BYTES];

	memset(&cache, 0, sizeof cache);
	ca_make(&ca, 1, CLUSTER);
	ca_make(&same_name, 2, CLUSTER);
	r_ca = blob(ca.cert, ca.cert_len);
	r_same = blob(same_name.cert, same_name.cert_len);
	seed_of(seed, 100);
	assert_int_equal(pki_csr_create_cached(&cache, seed, csr.b, sizeof csr.b,
					       &csr.len, digest),
			 0);
	csr_make(&plain_csr, 100);
	assert_int_equal(csr.len, plain_csr.len);
	assert_memory_equal(csr.b, plain_csr.b, csr.len);
	assert_int_equal(cache.made_hits, 0);

	/* the CSR made here: signed, its check skipped */
	assert_int_equal(sign_cached(&cache, &ca, &csr, &cert, why), 0);
	assert_int_equal(cache.made_hits, 1);
	/* its signature's last byte changed: checked, refused */
	bad = csr;
	bad.b[bad.len - 1] ^= 0x01;
	assert_int_equal(sign_cached(&cache, &ca, &bad, &cert, why), CS_EAUTH);
	assert_string_equal(why, "CSR signature does not verify");
	assert_int_equal(cache.made_hits, 1);
	/* signed again (the same bytes): made, its check skipped again */
	assert_int_equal(sign_cached(&cache, &ca, &csr, &cert, why), 0);
	assert_int_equal(cache.made_hits, 2);

	/* the certificate made here, against the CA that signed it: skipped */
	assert_int_equal(verify_both(&cache, &cert, &r_ca, 1, T_2026 + 1000), 0);
	assert_int_equal(cache.made_hits, 3);
	/* against another root of the same name (another key): checked */
	assert_int_equal(verify_both(&cache, &cert, &r_same, 1, T_2026 + 1000), CS_EAUTH);
	assert_int_equal(cache.made_hits, 3);
	/* its signature's last byte changed: checked, refused */
	bad = cert;
	bad.b[bad.len - 1] ^= 0x01;
	assert_int_equal(verify_both(&cache, &bad, &r_ca, 1, T_2026 + 1000), CS_EAUTH);
	assert_int_equal(cache.made_hits, 3);
	/* past its validity: the skipped check changes no other answer */
	assert_int_equal(verify_both(&cache, &cert, &r_ca, 1, T_DEC + 1), CS_EAUTH);
	pki_cache_free(&cache);
	assert_null(cache.made);
	assert_int_equal(cache.made_hits, 0);
}

/* A certificate another parse already holds (a TLS handshake's: issue
 * 18) kept in the cache: its check parses nothing more (no slot taken),
 * and answers as pki_verify does, refusals included: only the parse is
 * saved. */
static void test_pki_kept_leaf_is_checked_in_full_without_a_parse(void **state)
{
	struct pki_cache cache;
	struct ca ca, other;
	struct der cert, cert2;
	struct env_blob r_ca, r_other;
	const unsigned char *p;
	X509 *x;
	size_t next;

	(void)state;
	memset(&cache, 0, sizeof cache);
	ca_make(&ca, 1, CLUSTER);
	ca_make(&other, 2, CLUSTER);
	r_ca = blob(ca.cert, ca.cert_len);
	r_other = blob(other.cert, other.cert_len);
	node_make(&ca, &cert);
	p = cert.b;
	x = d2i_X509(NULL, &p, (long)cert.len);
	assert_non_null(x);

	pki_cache_keep_leaf(&cache, x);
	assert_non_null(cache.leaf);
	assert_ptr_equal(cache.leaf[0].x, x);
	assert_int_equal(cache.leaf[0].len, cert.len);
	assert_memory_equal(cache.leaf[0].der, cert.b, cert.len);
	next = cache.leaf_next;
	pki_cache_keep_leaf(&cache, x); /* kept once */
	assert_int_equal(cache.leaf_next, next);
	X509_free(x); /* the cache holds its own reference */

	/* checked against its root: found, no new slot */
	assert_int_equal(verify_both(&cache, &cert, &r_ca, 1, T_2026 + 1000), 0);
	assert_int_equal(cache.leaf_next, next);
	/* against another root (another key, the same name): refused */
	assert_int_equal(verify_both(&cache, &cert, &r_other, 1, T_2026 + 1000),
			 CS_EAUTH);
	/* past its validity: refused */
	assert_int_equal(verify_both(&cache, &cert, &r_ca, 1, T_DEC + 1), CS_EAUTH);
	assert_int_equal(cache.leaf_next, next);
	/* other bytes: parsed for themselves, a slot of their own */
	node_make(&other, &cert2);
	assert_int_equal(verify_both(&cache, &cert2, &r_ca, 1, T_2026 + 1000), CS_EAUTH);
	assert_int_equal(cache.leaf_next, next + 1);
	assert_int_equal(verify_both(&cache, &cert2, &r_other, 1, T_2026 + 1000), 0);
	assert_int_equal(cache.leaf_next, next + 1);
	pki_cache_keep_leaf(&cache, NULL); /* nothing */
	assert_int_equal(cache.leaf_next, next + 1);
	pki_cache_free(&cache);
	assert_null(cache.leaf);
}

static void test_pki_validity_cut_to_the_roots_end(void **state)
{
	struct ca ca;
	struct der csr, cert;
	struct pki_cert rd;
	char why[PKI_WHY_BYTES];
	struct env_blob b;

	ca_make(&ca, 1, CLUSTER);
	csr_make(&csr, 100);
	assert_int_equal(sign(&ca, &csr, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026, T_2060,
			      &cert, why),
			 0);
	b = blob(cert.b, cert.len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_true(rd.not_after_s == T_2026 + 10 * YEAR_S);
	/* a CA that has ended signs nothing */
	assert_int_equal(sign(&ca, &csr, NODE, CLUSTER, ENV_ROLE_WORKER,
			      T_2026 + 11 * YEAR_S, T_2026 + 12 * YEAR_S, &cert, why),
			 CS_EINVAL);
	assert_string_equal(
		why, "validity would end at 2035-12-30T00:00:00Z, before it starts at "
		     "2036-12-29T00:00:00Z");
}

static void test_pki_times_after_2049_round_trip(void **state)
{
	uint8_t seed[PKI_SEED_BYTES];
	struct der cert, key;
	struct pki_cert rd, vf;
	char why[PKI_WHY_BYTES];
	struct env_blob b;
	struct ca ca;

	/* GeneralizedTime from 2050 on, UTCTime before (RFC 5280) */
	seed_of(seed, 3);
	assert_int_equal(pki_ca_create(seed, CLUSTER, T_2026, T_2060, 5, ca.cert,
				       sizeof ca.cert, &ca.cert_len, ca.key,
				       sizeof ca.key, &ca.key_len),
			 0);
	b = blob(ca.cert, ca.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_true(rd.not_after_s == T_2060);
	node_make(&ca, &cert);
	(void)key;
	assert_int_equal(verify(&cert, &ca, 1, T_DEC + 1, &vf, why), CS_EAUTH);
	assert_string_equal(why, "certificate expired at 2026-12-06T04:20:00Z");
	/* times past 9999 are cut to 9999-12-31T23:59:59Z */
	assert_int_equal(pki_ca_create(seed, CLUSTER, T_2026, INT64_MAX, 5, ca.cert,
				       sizeof ca.cert, &ca.cert_len, ca.key,
				       sizeof ca.key, &ca.key_len),
			 0);
	b = blob(ca.cert, ca.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_true(rd.not_after_s == 253402300799ll);
}

static void test_pki_verify_refusals_say_exactly_why(void **state)
{
	struct ca ca, other_ca, other_cluster, two[2];
	struct der cert, bad;
	struct pki_cert out;
	char why[PKI_WHY_BYTES];
	uint8_t digest[ENV_DIGEST_BYTES];

	ca_make(&ca, 1, CLUSTER);
	ca_make(&other_ca, 2, CLUSTER);
	ca_make(&other_cluster, 3, OTHER_CLUSTER);
	node_make(&ca, &cert);

	assert_int_equal(verify(&cert, &ca, 1, T_DEC + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate expired at 2026-12-06T04:20:00Z");
	assert_true(out.node_id == 0); /* nothing said on refusal */
	assert_int_equal(verify(&cert, &ca, 1, T_2026 - 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate not valid before 2026-01-01T00:00:00Z");
	assert_int_equal(verify(&cert, &other_ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate not signed by a trusted root");
	assert_int_equal(verify(&cert, &ca, 0, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate not signed by a trusted root");
	assert_int_equal(verify(&cert, &other_cluster, 1, T_2026 + 1, &out, why),
			 CS_EAUTH);
	assert_string_equal(
		why,
		"certificate of cluster 0123456789abcdef, expected 00000000000000ff");
	/* the signature is checked before the times */
	assert_int_equal(verify(&cert, &other_ca, 1, T_DEC + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate not signed by a trusted root");

	/* a tampered byte in the signature (the DER's last) */
	bad = cert;
	bad.b[bad.len - 1] ^= 1;
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate not signed by a trusted root");
	/* ... or in the signed part: the CN's last hex digit */
	bad = cert;
	{
		uint8_t *p = find(bad.b, bad.len, "feedface00c0ffee");
		assert_non_null(p);
		p[15] = 'f';
	}
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate not signed by a trusted root");

	/* garbage, cut short, trailing bytes */
	memset(bad.b, 0xff, 64);
	bad.len = 64;
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "not a certificate: header too long");
	bad = cert;
	bad.len -= 10;
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "not a certificate: too long");
	bad = cert;
	bad.b[bad.len++] = 0;
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "not a certificate: 1 bytes after its DER");
	bad.len = 0;
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "not a certificate: empty");
	{
		static uint8_t big[PKI_DER_BYTES_MAX + 1];
		struct env_blob c = blob(big, sizeof big), r = blob(ca.cert, ca.cert_len);
		memcpy(big, cert.b, cert.len);
		assert_int_equal(pki_verify(&c, &r, 1, T_2026 + 1, &out, why), CS_EAUTH);
		assert_string_equal(why, "not a certificate: 2049 bytes, over 2048");
	}

	/* a root is not a node's certificate */
	memcpy(bad.b, ca.cert, ca.cert_len);
	bad.len = ca.cert_len;
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why,
			    "not a certificate: a root (CN=swarm-ca), expected a node's");

	/* two roots (a rotation): the one that signed is named */
	two[0] = other_ca;
	two[1] = ca;
	assert_int_equal(verify(&cert, two, 2, T_2026 + 1, &out, why), 0);
	pki_digest(ca.cert, ca.cert_len, digest);
	assert_memory_equal(out.root, digest, sizeof digest);
	two[0] = other_cluster;
	two[1] = other_ca;
	assert_int_equal(verify(&cert, two, 2, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate not signed by a trusted root");
}

static void test_pki_verify_refuses_names_not_ours(void **state)
{
	struct ca ca;
	struct der bad;
	struct pki_cert out;
	char why[PKI_WHY_BYTES];
	struct env_blob b;

	ca_make(&ca, 1, CLUSTER);
	/* the crafted certificate itself verifies when named as ours */
	craft(&ca, "0123456789abcdef", "swarm-worker", "feedface00c0ffee", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), 0);
	assert_int_equal(out.role, ENV_ROLE_WORKER);

	craft(&ca, "0123456789abcdef", "swarm-admin", "feedface00c0ffee", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(
		why,
		"not a certificate: subject OU is not swarm-manager or swarm-worker");
	b = blob(bad.b, bad.len);
	assert_int_equal(pki_read(&b, &out, why), CS_EINVAL);
	assert_string_equal(
		why,
		"not a certificate: subject OU is not swarm-manager or swarm-worker");

	craft(&ca, "0123456789abcdef", NULL, "feedface00c0ffee", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(
		why,
		"not a certificate: subject OU is not swarm-manager or swarm-worker");
	craft(&ca, "0123456789abcdef", "swarm-manager", "FEEDFACE00C0FFEE", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(
		why,
		"not a certificate: subject CN is not a node id (16 hex digits, not 0)");
	craft(&ca, "0123456789abcdef", "swarm-manager", "0000000000000000", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(
		why,
		"not a certificate: subject CN is not a node id (16 hex digits, not 0)");
	craft(&ca, "cluster", "swarm-manager", "feedface00c0ffee", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(
		why, "not a certificate: subject O is not a cluster id (16 hex digits)");
	craft(&ca, "0123456789abcdef", "swarm-manager", "feedface00c0ffee", true, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(why,
			    "not a certificate: a node certificate that says it is a CA");
	/* signed by the root of cluster ...ef, but naming cluster ...ff */
	craft(&ca, "00000000000000ff", "swarm-manager", "feedface00c0ffee", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_2026 + 1, &out, why), CS_EAUTH);
	assert_string_equal(
		why,
		"certificate of cluster 00000000000000ff, expected 0123456789abcdef");
	/* names are checked after the times */
	craft(&ca, "0123456789abcdef", "swarm-admin", "feedface00c0ffee", false, &bad);
	assert_int_equal(verify(&bad, &ca, 1, T_DEC + 1, &out, why), CS_EAUTH);
	assert_string_equal(why, "certificate expired at 2026-12-06T04:20:00Z");
}

static void test_pki_read_refuses_what_is_not_ours(void **state)
{
	struct pki_cert out;
	char why[PKI_WHY_BYTES];
	uint8_t junk[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
	struct env_blob b = blob(junk, sizeof junk);

	assert_int_equal(pki_read(&b, &out, why), CS_EINVAL);
	assert_string_equal(why, "not a certificate: wrong tag");
	assert_true(out.node_id == 0);
	b = blob(junk, 0);
	assert_int_equal(pki_read(&b, &out, NULL), CS_EINVAL);
}

static void test_pki_sign_refusals(void **state)
{
	struct ca ca, other;
	struct der csr, cert;
	char why[PKI_WHY_BYTES];
	struct env_blob c, k, r;
	struct env_identity who;

	ca_make(&ca, 1, CLUSTER);
	ca_make(&other, 2, CLUSTER);
	csr_make(&csr, 100);

	/* a CSR whose signature (its DER's last byte) does not verify */
	{
		struct der bad = csr;
		bad.b[bad.len - 1] ^= 0x40;
		assert_int_equal(sign(&ca, &bad, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026,
				      T_DEC, &cert, why),
				 CS_EAUTH);
		assert_string_equal(why, "CSR signature does not verify");
		bad = csr;
		bad.len = 5;
		assert_int_equal(sign(&ca, &bad, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026,
				      T_DEC, &cert, why),
				 CS_EAUTH);
		assert_string_equal(why, "CSR is not DER: too long");
		{
			static struct der big;
			memcpy(big.b, csr.b, csr.len);
			big.len = PKI_DER_BYTES_MAX + 1;
			assert_int_equal(sign(&ca, &big, NODE, CLUSTER, ENV_ROLE_WORKER,
					      T_2026, T_DEC, &cert, why),
					 CS_EAUTH);
			assert_string_equal(why, "CSR is 2049 bytes, over 2048");
		}
	}
	assert_int_equal(
		sign(&ca, &csr, 0, CLUSTER, ENV_ROLE_WORKER, T_2026, T_DEC, &cert, why),
		CS_EINVAL);
	assert_string_equal(why, "node id 0 is not a node");
	assert_int_equal(
		sign(&ca, &csr, NODE, CLUSTER, ENV_ROLE_NONE, T_2026, T_DEC, &cert, why),
		CS_EINVAL);
	assert_string_equal(why, "role 0 is not worker or manager");
	assert_int_equal(sign(&ca, &csr, NODE, CLUSTER, (enum env_role)3, T_2026, T_DEC,
			      &cert, why),
			 CS_EINVAL);
	assert_string_equal(why, "role 3 is not worker or manager");
	assert_int_equal(sign(&ca, &csr, NODE, OTHER_CLUSTER, ENV_ROLE_WORKER, T_2026,
			      T_DEC, &cert, why),
			 CS_EINVAL);
	assert_string_equal(why,
			    "cluster 00000000000000ff is not the CA's, 0123456789abcdef");

	/* the CA's certificate with another CA's key */
	c = blob(ca.cert, ca.cert_len);
	k = blob(other.key, other.key_len);
	r = blob(csr.b, csr.len);
	memset(&who, 0, sizeof who);
	who.node_id = NODE;
	who.cluster_id = CLUSTER;
	who.role = ENV_ROLE_MANAGER;
	assert_int_equal(pki_sign(&c, &k, &r, &who, T_2026, T_DEC, 1, cert.b,
				  sizeof cert.b, &cert.len, why),
			 CS_EINVAL);
	assert_string_equal(why, "CA key does not match the CA certificate");
	/* a node's certificate is no CA */
	node_make(&ca, &cert);
	{
		struct der out;
		c = blob(cert.b, cert.len);
		k = blob(ca.key, ca.key_len);
		assert_int_equal(pki_sign(&c, &k, &r, &who, T_2026, T_DEC, 1, out.b,
					  sizeof out.b, &out.len, why),
				 CS_EINVAL);
		assert_string_equal(why, "CA certificate is not a root of ours");
	}
	/* too small a buffer */
	c = blob(ca.cert, ca.cert_len);
	assert_int_equal(
		pki_sign(&c, &k, &r, &who, T_2026, T_DEC, 1, cert.b, 100, &cert.len, why),
		CS_ELIMIT);
	/* no why buffer: the same answer */
	assert_int_equal(pki_sign(&c, &k, &r, &who, T_2026, T_DEC, 1, cert.b, 100,
				  &cert.len, NULL),
			 CS_ELIMIT);
}

static void test_pki_ca_create_and_csr_refuse_small_buffers(void **state)
{
	uint8_t seed[PKI_SEED_BYTES], cert[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	size_t cl = 0, kl = 0;

	seed_of(seed, 1);
	assert_int_equal(pki_ca_create(seed, CLUSTER, T_2026, T_DEC, 1, cert, 64, &cl,
				       key, sizeof key, &kl),
			 CS_ELIMIT);
	assert_int_equal(pki_ca_create(seed, CLUSTER, T_2026, T_DEC, 1, cert, sizeof cert,
				       &cl, key, 16, &kl),
			 CS_ELIMIT);
	assert_int_equal(pki_csr_create(seed, cert, 16, &cl), CS_ELIMIT);
}

/* A CSR built by hand for the key of seed byte 100 (or a P-256 key), whose
 * subject and requested extensions ask for more than it may have. */
static void csr_craft(struct der *out, bool p256, bool greedy)
{
	uint8_t seed[PKI_SEED_BYTES];
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_REQ_get_subject_name(req);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	unsigned char *q;
	EVP_PKEY *k;

	memset(out, 0, sizeof *out);
	q = out->b;
	seed_of(seed, 100);
	k = p256 ? EVP_EC_gen("P-256")
		 : EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
						PKI_SEED_BYTES);
	assert_non_null(k);
	if (greedy) {
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					   (const unsigned char *)"00000000000000ff", -1,
					   -1, 0);
		X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
					   (const unsigned char *)"swarm-manager", -1, -1,
					   0);
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					   (const unsigned char *)"0000000000000001", -1,
					   -1, 0);
		sk_X509_EXTENSION_push(exts, X509V3_EXT_nconf_nid(NULL, NULL,
								  NID_basic_constraints,
								  "critical,CA:TRUE"));
		X509_REQ_add_extensions(req, exts);
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_set_pubkey(req, k);
	assert_true(X509_REQ_sign(req, k, p256 ? EVP_sha256() : NULL) > 0);
	out->len = (size_t)i2d_X509_REQ(req, NULL);
	assert_true(out->len > 0 && out->len <= sizeof out->b);
	i2d_X509_REQ(req, &q);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

static void test_pki_sign_ignores_what_the_csr_asks(void **state)
{
	struct ca ca;
	struct der csr, plain, cert, cert2;
	struct pki_cert out;
	char why[PKI_WHY_BYTES];
	struct env_blob b;

	ca_make(&ca, 1, CLUSTER);
	csr_craft(&csr, false, true);
	assert_int_equal(sign(&ca, &csr, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026, T_DEC,
			      &cert, why),
			 0);
	assert_int_equal(verify(&cert, &ca, 1, T_2026 + 1, &out, why), 0);
	assert_true(out.node_id == NODE);
	assert_true(out.cluster_id == CLUSTER);
	assert_int_equal(out.role, ENV_ROLE_WORKER);
	/* the same certificate as for the plain CSR of the same key */
	csr_make(&plain, 100);
	assert_int_equal(sign(&ca, &plain, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026, T_DEC,
			      &cert2, why),
			 0);
	assert_int_equal(cert.len, cert2.len);
	assert_memory_equal(cert.b, cert2.b, cert.len);
	b = blob(cert.b, cert.len);
	assert_int_equal(pki_read(&b, &out, why), 0);

	/* a key other than Ed25519 is refused */
	csr_craft(&csr, true, false);
	assert_int_equal(sign(&ca, &csr, NODE, CLUSTER, ENV_ROLE_WORKER, T_2026, T_DEC,
			      &cert, why),
			 CS_EAUTH);
	assert_string_equal(why, "CSR key is not Ed25519");
}

static void test_pki_ca_key_as_seed_and_other_key_forms(void **state)
{
	struct ca ca;
	struct der csr, cert, cert2;
	uint8_t seed[PKI_SEED_BYTES];
	struct env_blob c, k, r;
	struct env_identity who;
	char why[PKI_WHY_BYTES];

	ca_make(&ca, 1, CLUSTER);
	csr_make(&csr, 100);
	node_make(&ca, &cert);
	seed_of(seed, 1);
	c = blob(ca.cert, ca.cert_len);
	k = blob(seed, sizeof seed);
	r = blob(csr.b, csr.len);
	memset(&who, 0, sizeof who);
	who.node_id = NODE;
	who.cluster_id = CLUSTER;
	who.role = ENV_ROLE_MANAGER;
	assert_int_equal(pki_sign(&c, &k, &r, &who, T_2026, T_DEC, 42, cert2.b,
				  sizeof cert2.b, &cert2.len, why),
			 0);
	assert_int_equal(cert.len, cert2.len);
	assert_memory_equal(cert.b, cert2.b, cert.len);

	/* a P-256 key in PKCS#8 is not ours */
	{
		EVP_PKEY *ec = EVP_EC_gen("P-256");
		unsigned char *der = NULL;
		int n = i2d_PrivateKey(ec, &der);
		assert_true(n > 0);
		k = blob(der, (size_t)n);
		assert_false(pki_key_matches(&k, &c));
		assert_int_equal(pki_sign(&c, &k, &r, &who, T_2026, T_DEC, 42, cert2.b,
					  sizeof cert2.b, &cert2.len, why),
				 CS_EINVAL);
		assert_string_equal(
			why, "CA key is not an Ed25519 private key (PKCS#8 DER or seed)");
		OPENSSL_free(der);
		EVP_PKEY_free(ec);
	}
}

/* Every byte of a certificate flipped, one at a time and in two ways: each
 * such certificate is refused (signature, parse or names), none crashes or
 * leaks (ASan), and pki_read never says more than a node or a root. */
static void test_pki_verify_refuses_every_single_byte_change(void **state)
{
	struct ca ca;
	struct der cert, bad;
	struct pki_cert out;
	char why[PKI_WHY_BYTES];
	struct env_blob b;
	static const uint8_t flips[2] = {0x01, 0x80};

	ca_make(&ca, 1, CLUSTER);
	node_make(&ca, &cert);
	for (size_t i = 0; i < cert.len; i++) {
		for (int f = 0; f < 2; f++) {
			bad = cert;
			bad.b[i] ^= flips[f];
			if (verify(&bad, &ca, 1, T_2026 + 1, &out, why) != CS_EAUTH)
				fail_msg("byte %zu ^ 0x%02x verified", i, flips[f]);
			assert_true(out.node_id == 0);
			assert_true(why[0] != '\0');
			b = blob(bad.b, bad.len);
			if (pki_read(&b, &out, why) == 0)
				assert_true(out.role == ENV_ROLE_WORKER ||
					    out.role == ENV_ROLE_MANAGER);
		}
	}
}

/* The bytes are pinned: a change of encoding (ours or OpenSSL's) changes
 * every join token's digest and the simulator's traces, so it must show
 * here first. The digest is the one `openssl x509 -inform der` and
 * sha256sum read from the same certificate. */
static void test_pki_root_bytes_are_pinned(void **state)
{
	static const uint8_t want[ENV_DIGEST_BYTES] = {
		0xf7, 0x9d, 0xc3, 0x10, 0x94, 0xec, 0x4f, 0x6c, 0x97, 0x11, 0xff,
		0x68, 0x66, 0xc1, 0x3f, 0x68, 0x6d, 0x83, 0xda, 0xa8, 0x0e, 0x10,
		0x59, 0xa5, 0x42, 0x0d, 0x19, 0xcb, 0x94, 0xf4, 0xa5, 0xfd};
	uint8_t seed[PKI_SEED_BYTES], cert[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	uint8_t digest[ENV_DIGEST_BYTES];
	char tok[PKI_TOKEN_BYTES];
	size_t cl, kl;

	for (int i = 0; i < PKI_SEED_BYTES; i++)
		seed[i] = (uint8_t)i;
	assert_int_equal(pki_ca_create(seed, CLUSTER, T_2026, T_2026 + 3650ll * 86400, 1,
				       cert, sizeof cert, &cl, key, sizeof key, &kl),
			 0);
	assert_int_equal(cl, 336);
	pki_digest(cert, cl, digest);
	assert_memory_equal(digest, want, sizeof want);
	pki_token_make(digest, 1, 2, tok);
	assert_string_equal(tok,
			    "SWMTKN-1-666coxpe397d5l2icw1sjfo0hq3wh59v5e9c0ztu9b41i6shkt-"
			    "0000000000003w5e11264sgsi");
}

static void test_pki_serial_and_time_edges(void **state)
{
	uint8_t seed[PKI_SEED_BYTES];
	struct pki_cert rd;
	struct env_blob b;
	struct ca ca;
	char why[PKI_WHY_BYTES];

	seed_of(seed, 4);
	assert_int_equal(pki_ca_create(seed, 0, -5, 0, UINT64_MAX, ca.cert,
				       sizeof ca.cert, &ca.cert_len, ca.key,
				       sizeof ca.key, &ca.key_len),
			 0);
	b = blob(ca.cert, ca.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_true(rd.serial == UINT64_MAX);
	assert_true(rd.not_before_s == 0); /* before 1970: cut to 1970 */
	assert_true(rd.not_after_s == 0);
	assert_true(rd.cluster_id == 0);
	assert_int_equal(pki_ca_create(seed, UINT64_MAX, 2524607999ll, 2524608000ll, 0,
				       ca.cert, sizeof ca.cert, &ca.cert_len, ca.key,
				       sizeof ca.key, &ca.key_len),
			 0);
	b = blob(ca.cert, ca.cert_len);
	assert_int_equal(pki_read(&b, &rd, why), 0);
	assert_true(rd.serial == 0);
	assert_true(rd.cluster_id == UINT64_MAX);
	assert_true(rd.not_before_s == 2524607999ll); /* 2049-12-31T23:59:59Z: UTCTime */
	assert_true(rd.not_after_s ==
		    2524608000ll); /* 2050-01-01T00:00:00Z: GeneralizedTime */
}

/* ---------------------------------------------------------------- join tokens */

static void test_pki_token_round_trip_and_edges(void **state)
{
	uint8_t digest[ENV_DIGEST_BYTES], back[ENV_DIGEST_BYTES];
	char tok[PKI_TOKEN_BYTES], secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];

	memset(digest, 0, sizeof digest);
	pki_token_make(digest, 0, 0, tok);
	assert_string_equal(tok,
			    "SWMTKN-1-00000000000000000000000000000000000000000000000000-"
			    "0000000000000000000000000");
	assert_int_equal(pki_token_parse(tok, back, secret, why), 0);
	assert_memory_equal(back, digest, sizeof digest);
	assert_string_equal(secret, "0000000000000000000000000");

	memset(digest, 0xff, sizeof digest);
	pki_token_make(digest, UINT64_MAX, UINT64_MAX, tok);
	assert_string_equal(tok,
			    "SWMTKN-1-6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof-"
			    "f5lxx1zz5pnorynqglhzmsp33");
	memset(back, 0, sizeof back);
	assert_int_equal(pki_token_parse(tok, back, secret, why), 0);
	assert_memory_equal(back, digest, sizeof digest);
	assert_string_equal(secret, "f5lxx1zz5pnorynqglhzmsp33");

	for (int i = 0; i < ENV_DIGEST_BYTES; i++)
		digest[i] = (uint8_t)i;
	pki_token_make(digest, 0x0123456789abcdefull, 0xfedcba9876543210ull, tok);
	assert_string_equal(tok,
			    "SWMTKN-1-0004kt6yh5gguqfu8e93hara9xtyf5l309wcar43f213wip34v-"
			    "02fapl4n1azs9fhghwz46aryo");
	assert_int_equal(pki_token_parse(tok, back, secret, NULL), 0);
	assert_memory_equal(back, digest, sizeof digest);

	/* a real root's digest */
	{
		struct ca ca;
		ca_make(&ca, 1, CLUSTER);
		pki_digest(ca.cert, ca.cert_len, digest);
		pki_token_make(digest, 1, 2, tok);
		assert_int_equal(strlen(tok), 85);
		assert_int_equal(pki_token_parse(tok, back, secret, why), 0);
		assert_memory_equal(back, digest, sizeof digest);
	}
}

static void expect_token_refused(const char *tok, const char *msg)
{
	uint8_t digest[ENV_DIGEST_BYTES];
	char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];

	memset(why, 0, sizeof why);
	assert_int_equal(pki_token_parse(tok, digest, secret, why), CS_EINVAL);
	assert_string_equal(why, msg);
}

/* pki_token_new draws its secret's two words in one order (low, then
 * high) whatever the compiler: drawn as two arguments of one call, they
 * were unsequenced, and gcc and clang builds made different tokens (and
 * trace hashes) from one seed. */
static uint64_t counting_random(struct env *env)
{
	uint64_t *n = env->impl;
	return ++*n;
}

static void test_pki_token_new_draws_low_then_high(void **state)
{
	struct env_ops ops;
	uint64_t n = 0;
	struct env env = {&ops, &n};
	uint8_t digest[ENV_DIGEST_BYTES];
	char got[PKI_TOKEN_BYTES], want[PKI_TOKEN_BYTES];

	(void)state;
	memset(&ops, 0, sizeof ops);
	ops.random_u64 = counting_random;
	memset(digest, 7, sizeof digest);
	pki_token_new(&env, digest, got);
	assert_int_equal(n, 2);
	pki_token_make(digest, 2, 1, want);
	assert_string_equal(got, want);
	pki_token_make(digest, 1, 2, want);
	assert_string_not_equal(got, want);
}

static void test_pki_token_parse_refusals_say_exactly_why(void **state)
{
	expect_token_refused("", "token does not start with SWMTKN-1-");
	expect_token_refused(
		"SWMTKN-2-00000000000000000000000000000000000000000000000000-"
		"0000000000000000000000000",
		"token does not start with SWMTKN-1-");
	expect_token_refused(
		"swmtkn-1-00000000000000000000000000000000000000000000000000-"
		"0000000000000000000000000",
		"token does not start with SWMTKN-1-");
	expect_token_refused(
		"SWMTKN-1-00000000000000000000000000000000000000000000000000",
		"token has 3 parts, expected SWMTKN-1-<digest>-<secret>");
	expect_token_refused(
		"SWMTKN-1-00000000000000000000000000000000000000000000000000-"
		"0000000000000000000000000-x",
		"token has 5 parts, expected SWMTKN-1-<digest>-<secret>");
	expect_token_refused("SWMTKN-1-0000000000000000000000000000000000000000000000000-"
			     "0000000000000000000000000",
			     "token digest is 49 characters, expected 50");
	expect_token_refused("SWMTKN-1--0000000000000000000000000",
			     "token digest is 0 characters, expected 50");
	expect_token_refused(
		"SWMTKN-1-00000000000000000000000000000000000000000000000000-"
		"000000000000000000000000",
		"token secret is 24 characters, expected 25");
	expect_token_refused(
		"SWMTKN-1-00000000000000000000000000000000000000000000000000-"
		"00000000000000000000000000",
		"token secret is 26 characters, expected 25");
	expect_token_refused(
		"SWMTKN-1-0000000000000000000000000000000000000000000000000A-"
		"0000000000000000000000000",
		"token has a character that is not 0-9 or a-z");
	expect_token_refused(
		"SWMTKN-1-00000000000000000000000000000000000000000000000000-"
		"000000000000000000000000_",
		"token has a character that is not 0-9 or a-z");
	expect_token_refused(
		"SWMTKN-1-00000000000000000000000000000000000000000000000000-"
		"000000000000000000000000 ",
		"token has a character that is not 0-9 or a-z");
	/* 2^256: one over the largest digest */
	expect_token_refused(
		"SWMTKN-1-6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtog-"
		"0000000000000000000000000",
		"token digest is out of range");
	expect_token_refused(
		"SWMTKN-1-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-"
		"0000000000000000000000000",
		"token digest is out of range");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pki_round_trip_ca_csr_sign_read_verify),
		cmocka_unit_test(test_pki_same_inputs_same_bytes),
		cmocka_unit_test(test_pki_public_key_bytes_as_openssl_sets_them),
		cmocka_unit_test(test_pki_key_der_is_pkcs8_of_the_seed),
		cmocka_unit_test(test_pki_key_matches),
		cmocka_unit_test(test_pki_key_digest_matches_as_key_matches),
		cmocka_unit_test(test_pki_cert_key_digest_is_what_pki_read_gives),
		cmocka_unit_test(test_pki_cache_gives_what_no_cache_gives),
		cmocka_unit_test(test_pki_cache_hit_refuses_as_no_cache),
		cmocka_unit_test(
			test_pki_made_signatures_skip_their_check_and_nothing_else),
		cmocka_unit_test(test_pki_kept_leaf_is_checked_in_full_without_a_parse),
		cmocka_unit_test(test_pki_validity_cut_to_the_roots_end),
		cmocka_unit_test(test_pki_times_after_2049_round_trip),
		cmocka_unit_test(test_pki_verify_refusals_say_exactly_why),
		cmocka_unit_test(test_pki_verify_refuses_names_not_ours),
		cmocka_unit_test(test_pki_read_refuses_what_is_not_ours),
		cmocka_unit_test(test_pki_sign_refusals),
		cmocka_unit_test(test_pki_ca_create_and_csr_refuse_small_buffers),
		cmocka_unit_test(test_pki_sign_ignores_what_the_csr_asks),
		cmocka_unit_test(test_pki_ca_key_as_seed_and_other_key_forms),
		cmocka_unit_test(test_pki_verify_refuses_every_single_byte_change),
		cmocka_unit_test(test_pki_root_bytes_are_pinned),
		cmocka_unit_test(test_pki_serial_and_time_edges),
		cmocka_unit_test(test_pki_token_round_trip_and_edges),
		cmocka_unit_test(test_pki_token_new_draws_low_then_high),
		cmocka_unit_test(test_pki_token_parse_refusals_say_exactly_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
