/* tls: TLS 1.3 over memory BIOs (see tls.h). */
#include "net/tls.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/errors.h"

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	bool server;
};

struct tls_conn {
	SSL *ssl;
	BIO *in;  /* ciphertext from the peer, not yet decrypted */
	BIO *out; /* ciphertext to the peer, not yet taken */
};

/* OpenSSL's error queue as one line into why (and emptied), prefixed with
 * what failed; "what: no detail" when the queue is empty. */
static void tls_why(char why[TLS_WHY_BYTES], const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[TLS_WHY_BYTES / 2];

	if (!why) {
		ERR_clear_error();
		return;
	}
	if (e == 0) {
		snprintf(why, TLS_WHY_BYTES, "%s", what);
	} else {
		const char *reason = ERR_reason_error_string(e);
		if (reason)
			snprintf(detail, sizeof detail, "%s", reason);
		else
			ERR_error_string_n(e, detail, sizeof detail);
		snprintf(why, TLS_WHY_BYTES, "%.60s: %s", what, detail);
	}
	ERR_clear_error();
}

/* The decision is the caller's (pki_verify on the peer's certificate):
 * OpenSSL only makes the peer send one. */
static int tls_verify_accept(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	return 1;
}

/* In place of X509_verify_cert: OpenSSL builds and checks no chain (work
 * whose answer nobody reads). */
static int tls_chain_accept(X509_STORE_CTX *store, void *arg)
{
	(void)store;
	(void)arg;
	return 1;
}

static X509 *tls_x509(const struct env_blob *b)
{
	const unsigned char *p = b->data;

	if (!b->data || b->len == 0 || b->len > LONG_MAX)
		return NULL;
	return d2i_X509(NULL, &p, (long)b->len);
}

static EVP_PKEY *tls_pkey(const struct env_blob *b)
{
	const unsigned char *p = b->data;
	PKCS8_PRIV_KEY_INFO *info;
	EVP_PKEY *k;

	if (!b->data || b->len == 0 || b->len > LONG_MAX)
		return NULL;
	info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)b->len);
	if (!info)
		return NULL;
	k = EVP_PKCS82PKEY(info);
	PKCS8_PRIV_KEY_INFO_free(info);
	return k;
}

int tls_ctx_new(bool server, const struct env_blob *key, const struct env_blob *cert,
		const struct env_blob *chain, size_t chain_count, struct tls_ctx **out,
		char why[TLS_WHY_BYTES])
{
	struct tls_ctx *c;
	SSL_CTX *s;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int rv = CS_EINVAL;

	assert(out != NULL);
	assert(chain_count == 0 || chain != NULL);
	assert(!server || (key && cert));
	ERR_clear_error();
	c = calloc(1, sizeof *c);
	if (!c)
		return CS_ENOMEM;
	s = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!s) {
		tls_why(why, "SSL_CTX_new");
		free(c);
		return CS_ENOMEM;
	}
	if (!SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION)) {
		tls_why(why, "TLS 1.3 only");
		goto fail;
	}
	/* ask for the peer's certificate, require none, judge it elsewhere */
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER, tls_verify_accept);
	SSL_CTX_set_cert_verify_callback(s, tls_chain_accept, NULL);
	/* every connection is a full handshake: no tickets, no cache */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	if (server)
		SSL_CTX_set_num_tickets(s, 0);
	/* an idle connection keeps no record buffers */
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
	if (cert && key) {
		x = tls_x509(cert);
		if (!x) {
			tls_why(why, "certificate");
			goto fail;
		}
		k = tls_pkey(key);
		if (!k) {
			tls_why(why, "private key");
			goto fail;
		}
		if (SSL_CTX_use_certificate(s, x) != 1 ||
		    SSL_CTX_use_PrivateKey(s, k) != 1 ||
		    SSL_CTX_check_private_key(s) != 1) {
			tls_why(why, "the key is not the certificate's");
			goto fail;
		}
	}
	for (size_t i = 0; i < chain_count; i++) {
		X509 *r = tls_x509(&chain[i]);
		if (!r) {
			tls_why(why, "chain certificate");
			goto fail;
		}
		/* add0: the ctx takes r */
		if (SSL_CTX_add0_chain_cert(s, r) != 1) {
			X509_free(r);
			tls_why(why, "chain certificate");
			goto fail;
		}
		if (server && SSL_CTX_add_client_CA(s, r) != 1) {
			tls_why(why, "client CA name");
			goto fail;
		}
	}
	X509_free(x);
	EVP_PKEY_free(k);
	c->ssl_ctx = s;
	c->server = server;
	*out = c;
	ERR_clear_error();
	return 0;
fail:
	X509_free(x);
	EVP_PKEY_free(k);
	SSL_CTX_free(s);
	free(c);
	return rv;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx); /* SSLs made from it hold their own ref */
	free(ctx);
}

int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **out)
{
	struct tls_conn *t;

	assert(ctx != NULL);
	assert(out != NULL);
	t = calloc(1, sizeof *t);
	if (!t)
		return CS_ENOMEM;
	t->ssl = SSL_new(ctx->ssl_ctx);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->in || !t->out) {
		SSL_free(t->ssl);
		BIO_free(t->in);
		BIO_free(t->out);
		free(t);
		ERR_clear_error();
		return CS_ENOMEM;
	}
	/* an empty input is "try again", not the end */
	BIO_set_mem_eof_return(t->in, -1);
	BIO_set_mem_eof_return(t->out, -1);
	SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both now */
	if (ctx->server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	*out = t;
	return 0;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* and its BIOs */
	free(t);
}

int tls_feed(struct tls_conn *t, const uint8_t *p, size_t n)
{
	assert(t != NULL);
	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;
		int w = BIO_write(t->in, p, chunk);
		if (w <= 0) {
			ERR_clear_error();
			return CS_ENOMEM;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int tls_handshake(struct tls_conn *t, char why[TLS_WHY_BYTES])
{
	int r, e;

	assert(t != NULL);
	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		if (SSL_version(t->ssl) != TLS1_3_VERSION) {
			if (why)
				snprintf(why, TLS_WHY_BYTES,
					 "TLS handshake: %s, not TLSv1.3",
					 SSL_get_version(t->ssl));
			return CS_ECORRUPT;
		}
		return 1;
	}
	e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return 0;
	}
	tls_why(why, "TLS handshake");
	return CS_ECORRUPT;
}

int tls_read(struct tls_conn *t, uint8_t *buf, size_t cap, size_t *n,
	     char why[TLS_WHY_BYTES])
{
	int r, e;

	assert(t != NULL);
	assert(buf != NULL);
	assert(cap > 0);
	*n = 0;
	ERR_clear_error();
	r = SSL_read_ex(t->ssl, buf, cap, n);
	if (r == 1)
		return 0;
	*n = 0;
	e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return 0;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return CS_ECLOSED;
	}
	tls_why(why, "TLS read");
	return CS_ECORRUPT;
}

int tls_write(struct tls_conn *t, const uint8_t *p, size_t n, char why[TLS_WHY_BYTES])
{
	size_t w;

	assert(t != NULL);
	ERR_clear_error();
	/* a memory BIO takes everything: one call writes it all */
	if (SSL_write_ex(t->ssl, p, n, &w) != 1 || w != n) {
		tls_why(why, "TLS write");
		return CS_ECORRUPT;
	}
	return 0;
}

size_t tls_out_pending(const struct tls_conn *t)
{
	return BIO_ctrl_pending(t->out);
}

size_t tls_out_take(struct tls_conn *t, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		size_t want = cap - got;
		int r = BIO_read(t->out, buf + got, want > INT_MAX ? INT_MAX : (int)want);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	ERR_clear_error();
	return got;
}

size_t tls_in_pending(const struct tls_conn *t)
{
	return BIO_ctrl_pending(t->in);
}

struct x509_st *tls_peer_leaf(const struct tls_conn *t)
{
	return SSL_get0_peer_certificate(t->ssl);
}

int tls_peer_cert(const struct tls_conn *t, size_t index, uint8_t *buf, size_t cap,
		  size_t *len)
{
	X509 *leaf = SSL_get0_peer_certificate(t->ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl);
	X509 *x = NULL;
	unsigned char *p;
	int n;

	if (!leaf)
		return CS_ENOENT;
	if (index == 0) {
		x = leaf;
	} else if (chain) {
		/* a client's view of the chain has the leaf first; a server's
		 * has only what follows it */
		size_t seen = 0;
		for (int i = 0; i < sk_X509_num(chain); i++) {
			X509 *c = sk_X509_value(chain, i);
			if (X509_cmp(c, leaf) == 0)
				continue;
			if (++seen == index) {
				x = c;
				break;
			}
		}
	}
	if (!x)
		return CS_ENOENT;
	n = i2d_X509(x, NULL);
	if (n <= 0) {
		ERR_clear_error();
		return CS_ENOENT;
	}
	*len = (size_t)n;
	if ((size_t)n > cap)
		return CS_ELIMIT;
	p = buf;
	i2d_X509(x, &p);
	return 0;
}

const char *tls_version(const struct tls_conn *t)
{
	return SSL_get_version(t->ssl);
}
