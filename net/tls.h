/* tls: TLS 1.3 over memory BIOs (OpenSSL 3), for uvenv. Nothing here touches
 * a socket, a clock or blocks: the caller feeds the ciphertext it read
 * (tls_feed), takes the ciphertext to write (tls_out_take), and moves both
 * with libuv. Which certificate a peer showed is read here (tls_peer_cert);
 * whether it is trusted is the caller's decision (core/pki.h's pki_verify):
 * OpenSSL's own chain verification decides nothing. A tls_ctx is one side's
 * configuration (this node's key, certificate and chain); a tls_conn is one
 * connection, which keeps its ctx alive after tls_ctx_free. */
#ifndef NET_TLS_H
#define NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"

#define TLS_WHY_BYTES 160

struct tls_ctx;
struct tls_conn;

/* tls_ctx_new makes a TLS 1.3-only configuration for the server side
 * (server: it asks for a client certificate without requiring one) or the
 * client side. key (PKCS#8 DER) and cert (DER) are this node's; both NULL
 * for a client that shows no certificate (a server needs both). chain
 * (chain_count certificates, DER) is sent after the leaf (the roots, so
 * that a joiner holding only a digest finds its root); a server also names
 * them as the certificate authorities it accepts. Every blob is borrowed.
 * Returns 0 and *out (free with tls_ctx_free), or CS_EINVAL (a key or
 * certificate OpenSSL does not read, or a key not of the certificate) or
 * CS_ENOMEM, with why. */
int tls_ctx_new(bool server, const struct env_blob *key, const struct env_blob *cert,
		const struct env_blob *chain, size_t chain_count, struct tls_ctx **out,
		char why[TLS_WHY_BYTES]);

/* tls_ctx_free drops the caller's reference; connections made from ctx
 * keep theirs. NULL does nothing. */
void tls_ctx_free(struct tls_ctx *ctx);

/* tls_conn_new starts a connection on ctx's side (nothing is sent until
 * tls_handshake). Returns 0 and *out (free with tls_conn_free), or
 * CS_ENOMEM. */
int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **out);

/* tls_conn_free frees t and what it buffered. NULL does nothing. */
void tls_conn_free(struct tls_conn *t);

/* tls_feed hands n bytes read from the socket to t (copied). Returns 0 or
 * CS_ENOMEM. */
int tls_feed(struct tls_conn *t, const uint8_t *p, size_t n);

/* tls_handshake advances the handshake with what was fed. Returns 1 when
 * it is complete (TLS 1.3 agreed), 0 when it needs more bytes from the
 * peer, CS_ECORRUPT with why when it failed. Either way, what it wrote is
 * waiting in tls_out_pending. */
int tls_handshake(struct tls_conn *t, char why[TLS_WHY_BYTES]);

/* tls_read decrypts into buf (cap > 0): sets *n to the plaintext bytes
 * (0: none until more is fed). Returns 0, CS_ECLOSED (the peer ended the
 * session), CS_ECORRUPT with why (a bad record). */
int tls_read(struct tls_conn *t, uint8_t *buf, size_t cap, size_t *n,
	     char why[TLS_WHY_BYTES]);

/* tls_write encrypts n bytes (the handshake is complete); the records wait
 * in tls_out_pending. Returns 0, CS_ECORRUPT with why. */
int tls_write(struct tls_conn *t, const uint8_t *p, size_t n, char why[TLS_WHY_BYTES]);

/* tls_out_pending returns how many ciphertext bytes wait to be written. */
size_t tls_out_pending(const struct tls_conn *t);

/* tls_out_take moves up to cap waiting bytes into buf; returns how many. */
size_t tls_out_take(struct tls_conn *t, uint8_t *buf, size_t cap);

/* tls_in_pending returns how many fed bytes are not yet decrypted (a
 * partial record). */
size_t tls_in_pending(const struct tls_conn *t);

/* tls_peer_leaf: OpenSSL's parse of the certificate the peer showed
 * (X509, borrowed: valid while t is), or NULL (none). A caller that checks
 * the certificate hands it to pki_cache_keep_leaf rather than parse its
 * bytes again. */
struct x509_st *tls_peer_leaf(const struct tls_conn *t);

/* tls_peer_cert writes the index-th certificate the peer sent (DER) into
 * buf: 0 is its own (the leaf), 1.. the chain after it. Returns 0,
 * CS_ENOENT (no such certificate), CS_ELIMIT (cap too small). */
int tls_peer_cert(const struct tls_conn *t, size_t index, uint8_t *buf, size_t cap,
		  size_t *len);

/* tls_version returns the protocol agreed ("TLSv1.3"), static. */
const char *tls_version(const struct tls_conn *t);

#endif
