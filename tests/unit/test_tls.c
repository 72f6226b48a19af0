/* Tests of net/tls: two connections that hand each other their bytes in
 * memory (no socket, no loop), with certificates made by core/pki. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/errors.h"
#include "core/pki.h"
#include "net/tls.h"

#define T_NOW 1780000000LL /* 2026 */

struct der {
	uint8_t b[PKI_DER_BYTES_MAX];
	size_t len;
};

struct ca {
	struct der cert, key;
};

static void seed_of(uint8_t seed[PKI_SEED_BYTES], uint8_t first)
{
	for (int i = 0; i < PKI_SEED_BYTES; i++)
		seed[i] = (uint8_t)(first + 3 * i);
}

static void ca_make(struct ca *ca, uint8_t s)
{
	uint8_t seed[PKI_SEED_BYTES];
	memset(ca, 0, sizeof *ca); /* out parameters (cppcheck reads them as inputs) */
	seed_of(seed, s);
	assert_int_equal(pki_ca_create(seed, 5, T_NOW - 60, T_NOW + 86400, 1, ca->cert.b,
				       sizeof ca->cert.b, &ca->cert.len, ca->key.b,
				       sizeof ca->key.b, &ca->key.len),
			 0);
}

/* A node key (seed byte s) and its certificate by ca. */
static void node_make(const struct ca *ca, uint8_t s, uint64_t node, struct der *key,
		      struct der *cert)
{
	uint8_t seed[PKI_SEED_BYTES];
	struct der csr;
	struct env_blob cb = {ca->cert.b, ca->cert.len}, kb = {ca->key.b, ca->key.len};
	struct env_identity who = {
		.node_id = node, .cluster_id = 5, .role = ENV_ROLE_WORKER};
	char why[PKI_WHY_BYTES];

	seed_of(seed, s);
	assert_int_equal(pki_key_der(seed, key->b, sizeof key->b, &key->len), 0);
	assert_int_equal(pki_csr_create(seed, csr.b, sizeof csr.b, &csr.len), 0);
	assert_int_equal(pki_sign(&cb, &kb, &(struct env_blob){csr.b, csr.len}, &who,
				  T_NOW - 60, T_NOW + 3600, 9, cert->b, sizeof cert->b,
				  &cert->len, why),
			 0);
}

/* Moves what a has to write into b. */
static void shuttle(struct tls_conn *a, struct tls_conn *b)
{
	uint8_t buf[65536];
	size_t n;

	while ((n = tls_out_take(a, buf, sizeof buf)) > 0)
		assert_int_equal(tls_feed(b, buf, n), 0);
}

/* Runs both handshakes to the end. */
static void handshake(struct tls_conn *client, struct tls_conn *server)
{
	char why[TLS_WHY_BYTES];
	int c = 0, s = 0;

	for (int i = 0; i < 10 && (c != 1 || s != 1); i++) {
		if (c != 1)
			c = tls_handshake(client, why);
		assert_true(c >= 0);
		shuttle(client, server);
		if (s != 1)
			s = tls_handshake(server, why);
		assert_true(s >= 0);
		shuttle(server, client);
	}
	assert_int_equal(c, 1);
	assert_int_equal(s, 1);
	assert_string_equal(tls_version(client), "TLSv1.3");
	assert_string_equal(tls_version(server), "TLSv1.3");
}

static struct tls_ctx *ctx_of(bool server, const struct der *key, const struct der *cert,
			      const struct ca *root)
{
	struct tls_ctx *ctx = NULL;
	struct env_blob k = {key ? key->b : NULL, key ? key->len : 0};
	struct env_blob c = {cert ? cert->b : NULL, cert ? cert->len : 0};
	struct env_blob r = {root ? root->cert.b : NULL, root ? root->cert.len : 0};
	char why[TLS_WHY_BYTES];

	if (tls_ctx_new(server, key ? &k : NULL, cert ? &c : NULL, root ? &r : NULL,
			root ? 1 : 0, &ctx, why) != 0)
		fail_msg("tls_ctx_new: %s", why);
	return ctx;
}

/* Mutual TLS 1.3: each side reads the other's certificate and the root
 * sent after it; records carry bytes both ways, any size. */
static void test_tls_mutual_handshake_and_records(void **state)
{
	struct ca ca;
	struct der skey, scert, ckey, ccert, got;
	struct tls_ctx *sctx, *cctx;
	struct tls_conn *s, *c;
	static uint8_t big[100000], back[100000];
	size_t n, off = 0;
	char why[TLS_WHY_BYTES];

	ca_make(&ca, 1);
	node_make(&ca, 10, 0x51, &skey, &scert);
	node_make(&ca, 11, 0xc1, &ckey, &ccert);
	sctx = ctx_of(true, &skey, &scert, &ca);
	cctx = ctx_of(false, &ckey, &ccert, &ca);
	assert_int_equal(tls_conn_new(sctx, &s), 0);
	assert_int_equal(tls_conn_new(cctx, &c), 0);
	tls_ctx_free(sctx); /* the connections keep theirs */
	tls_ctx_free(cctx);
	handshake(c, s);

	assert_int_equal(tls_peer_cert(s, 0, got.b, sizeof got.b, &got.len), 0);
	assert_memory_equal(got.b, ccert.b, ccert.len);
	assert_int_equal(tls_peer_cert(s, 1, got.b, sizeof got.b, &got.len), 0);
	assert_memory_equal(got.b, ca.cert.b, ca.cert.len);
	assert_int_equal(tls_peer_cert(s, 2, got.b, sizeof got.b, &got.len), CS_ENOENT);
	assert_int_equal(tls_peer_cert(c, 0, got.b, sizeof got.b, &got.len), 0);
	assert_memory_equal(got.b, scert.b, scert.len);
	assert_int_equal(tls_peer_cert(c, 1, got.b, sizeof got.b, &got.len), 0);
	assert_memory_equal(got.b, ca.cert.b, ca.cert.len);
	assert_int_equal(tls_peer_cert(c, 0, got.b, 10, &got.len), CS_ELIMIT);

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(tls_write(c, big, sizeof big, why), 0);
	assert_true(tls_out_pending(c) > sizeof big); /* records, not plaintext */
	shuttle(c, s);
	while (off < sizeof back) {
		assert_int_equal(tls_read(s, back + off, sizeof back - off, &n, why), 0);
		assert_true(n > 0);
		off += n;
	}
	assert_memory_equal(back, big, sizeof big);
	assert_int_equal(tls_read(s, back, sizeof back, &n, why), 0);
	assert_int_equal(n, 0); /* nothing more until more is fed */
	assert_int_equal(tls_in_pending(s), 0);

	tls_conn_free(s);
	tls_conn_free(c);
}

/* A client without a certificate completes the handshake (a joiner): the
 * server sees no certificate, and decides elsewhere. */
static void test_tls_client_without_certificate_is_let_in(void **state)
{
	struct ca ca;
	struct der skey, scert, got;
	struct tls_ctx *sctx, *cctx;
	struct tls_conn *s, *c;

	ca_make(&ca, 1);
	node_make(&ca, 10, 0x51, &skey, &scert);
	sctx = ctx_of(true, &skey, &scert, &ca);
	cctx = ctx_of(false, NULL, NULL, NULL);
	assert_int_equal(tls_conn_new(sctx, &s), 0);
	assert_int_equal(tls_conn_new(cctx, &c), 0);
	handshake(c, s);
	assert_int_equal(tls_peer_cert(s, 0, got.b, sizeof got.b, &got.len), CS_ENOENT);
	assert_int_equal(tls_peer_cert(c, 1, got.b, sizeof got.b, &got.len), 0);
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

/* Bytes that are not TLS fail the handshake with OpenSSL's reason; a
 * record altered in flight fails the read. */
static void test_tls_garbage_and_tampering_fail(void **state)
{
	struct ca ca;
	struct der skey, scert;
	struct tls_ctx *sctx, *cctx;
	struct tls_conn *s, *c;
	const char http[] = "GET / HTTP/1.1\r\n\r\n";
	uint8_t rec[256], out[64];
	size_t n;
	char why[TLS_WHY_BYTES];

	ca_make(&ca, 1);
	node_make(&ca, 10, 0x51, &skey, &scert);
	sctx = ctx_of(true, &skey, &scert, &ca);
	cctx = ctx_of(false, NULL, NULL, NULL);

	assert_int_equal(tls_conn_new(sctx, &s), 0);
	assert_int_equal(tls_feed(s, (const uint8_t *)http, sizeof http - 1), 0);
	assert_int_equal(tls_handshake(s, why), CS_ECORRUPT);
	assert_string_equal(why, "TLS handshake: http request");
	tls_conn_free(s);

	assert_int_equal(tls_conn_new(sctx, &s), 0);
	assert_int_equal(tls_conn_new(cctx, &c), 0);
	handshake(c, s);
	assert_int_equal(tls_write(c, (const uint8_t *)"hello", 5, why), 0);
	n = tls_out_take(c, rec, sizeof rec);
	assert_true(n > 5);
	rec[n - 1] ^= 1; /* the tag */
	assert_int_equal(tls_feed(s, rec, n), 0);
	assert_int_equal(tls_read(s, out, sizeof out, &n, why), CS_ECORRUPT);
	assert_non_null(strstr(why, "TLS read: "));
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

/* A key that is not the certificate's is refused when the configuration
 * is made. */
static void test_tls_ctx_refuses_a_key_not_of_the_certificate(void **state)
{
	struct ca ca;
	struct der k1, c1, k2, c2;
	struct tls_ctx *ctx = NULL;
	char why[TLS_WHY_BYTES];

	ca_make(&ca, 1);
	node_make(&ca, 10, 0x51, &k1, &c1);
	node_make(&ca, 11, 0x52, &k2, &c2);
	assert_int_equal(tls_ctx_new(true, &(struct env_blob){k2.b, k2.len},
				     &(struct env_blob){c1.b, c1.len}, NULL, 0, &ctx,
				     why),
			 CS_EINVAL);
	assert_null(ctx);
	assert_non_null(strstr(why, "the key is not the certificate's"));
	assert_int_equal(tls_ctx_new(true, &(struct env_blob){k1.b, 3},
				     &(struct env_blob){c1.b, c1.len}, NULL, 0, &ctx,
				     why),
			 CS_EINVAL);
	assert_non_null(strstr(why, "private key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_mutual_handshake_and_records),
		cmocka_unit_test(test_tls_client_without_certificate_is_let_in),
		cmocka_unit_test(test_tls_garbage_and_tampering_fail),
		cmocka_unit_test(test_tls_ctx_refuses_a_key_not_of_the_certificate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
