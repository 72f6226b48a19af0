/* pki: the cluster's certificates, the same code in both worlds. X.509 with
 * Ed25519 keys (deterministic: a key is its 32-byte seed, a signature
 * depends on nothing but key and message), built and checked with OpenSSL's
 * libcrypto as pure functions: every time is a parameter (seconds since the
 * Unix epoch: the wall clock in the real world, a fixed epoch plus virtual
 * time in the simulator), every random number too. The envs (net/uvenv.c,
 * sim/world.c) implement env.h's identity ops on top of this; the core
 * reads join tokens with it.
 *
 * Names, as SwarmKit's: a node certificate's subject has CN = the node id
 * (16 hex digits), OU = "swarm-manager" or "swarm-worker", O = the cluster id
 * (16 hex digits); a root's has CN = "swarm-ca", O = the cluster id, and
 * basicConstraints CA:TRUE. Every error returns a negative code of
 * core/errors.h and, where a `why` buffer is given, one line for people that
 * says what was wrong and what was expected. */
#ifndef CS_PKI_H
#define CS_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"

#define PKI_SEED_BYTES 32
/* A certificate, CSR or key of ours (DER) fits: Ed25519's are ~400-700. */
#define PKI_DER_BYTES_MAX 2048
#define PKI_WHY_BYTES	  160

/* What a certificate says, read from it (pki_read) or checked (pki_verify). */
struct pki_cert {
	uint64_t node_id; /* 0 for a root */
	uint64_t cluster_id;
	enum env_role role;   /* ENV_ROLE_NONE for a root */
	int64_t not_before_s; /* seconds since the epoch */
	int64_t not_after_s;
	uint64_t serial;
	uint8_t key[ENV_DIGEST_BYTES];	/* SHA-256 of its public key (DER) */
	uint8_t root[ENV_DIGEST_BYTES]; /* pki_verify: SHA-256 of the root it
					   chains to; pki_read: zero */
};

/* pki_digest writes the SHA-256 of data into out. */
void pki_digest(const uint8_t *data, size_t len, uint8_t out[ENV_DIGEST_BYTES]);

/* pki_ca_create builds a self-signed root for cluster_id from a key seed:
 * its certificate into cert and its private key (PKCS#8 DER) into key.
 * Returns 0, CS_ELIMIT (a buffer under PKI_DER_BYTES_MAX is too small),
 * CS_ENOMEM. */
int pki_ca_create(const uint8_t seed[PKI_SEED_BYTES], uint64_t cluster_id,
		  int64_t not_before_s, int64_t not_after_s, uint64_t serial,
		  uint8_t *cert, size_t cert_cap, size_t *cert_len, uint8_t *key,
		  size_t key_cap, size_t *key_len);

/* pki_key_der writes the private key of seed (PKCS#8 DER) into key: what
 * an env keeps for its node and hands to TLS. */
int pki_key_der(const uint8_t seed[PKI_SEED_BYTES], uint8_t *key, size_t cap,
		size_t *len);

/* pki_key_digest writes the SHA-256 of the public key of seed (its
 * SubjectPublicKeyInfo, DER) into out: what struct pki_cert's key holds for
 * a certificate of that key, so that a key and a certificate read once are
 * matched by comparing digests (pki_key_matches parses the certificate
 * again). Returns 0 or CS_ENOMEM. */
int pki_key_digest(const uint8_t seed[PKI_SEED_BYTES], uint8_t out[ENV_DIGEST_BYTES]);

/* pki_csr_create writes a certificate signing request for the key of seed
 * into csr (DER, self-signed; it names nothing: the CA decides the
 * subject). Returns 0, CS_ELIMIT, CS_ENOMEM. */
int pki_csr_create(const uint8_t seed[PKI_SEED_BYTES], uint8_t *csr, size_t cap,
		   size_t *len);

/* pki_csr_create, and the key's digest (pki_key_digest's) into key_digest
 * from the key it made: a caller that matches the certificate coming back
 * to its key derives the key once, not twice. */
int pki_csr_create_keyed(const uint8_t seed[PKI_SEED_BYTES], uint8_t *csr, size_t cap,
			 size_t *len, uint8_t key_digest[ENV_DIGEST_BYTES]);

/* pki_sign checks csr's own signature and signs a certificate for its key
 * naming who->node_id (> 0), who->cluster_id and who->role (worker or
 * manager), valid [not_before_s, not_after_s] cut to the CA's own end, with
 * serial. Returns 0, CS_EAUTH (the CSR is malformed or does not verify),
 * CS_EINVAL (the CA's certificate and key do not match, or who is not a
 * node), CS_ELIMIT, CS_ENOMEM; why says which. */
int pki_sign(const struct env_blob *ca_cert, const struct env_blob *ca_key,
	     const struct env_blob *csr, const struct env_identity *who,
	     int64_t not_before_s, int64_t not_after_s, uint64_t serial, uint8_t *cert,
	     size_t cap, size_t *len, char why[PKI_WHY_BYTES]);

/* ---------------------------------------------------------------- a parse cache
 *
 * The few certificates a caller presents again and again (its roots, its
 * CA's certificate), parsed once: a caller-owned cache (zeroed: empty),
 * freed with pki_cache_free. pki_sign_cached and pki_verify_cached are
 * pki_sign and pki_verify, their results the same byte for byte, with the
 * CA's certificate, the roots and the certificate checked or read taken
 * from it when the same bytes were parsed before. NULL: no cache. */
#define PKI_CACHE_SLOTS 4
/* Certificates checked or read (pki_verify_cached, pki_read_cached): a
 * node's new certificate is read by the CA that signed it, then checked
 * by the node, with up to hundreds of other joins' certificates in
 * between when a thousand nodes join at once. */
#define PKI_CACHE_LEAF_SLOTS 256
struct pki_cache_slot {
	void *x; /* the parsed certificate (OpenSSL's X509), NULL: empty */
	size_t len;
	uint8_t der[PKI_DER_BYTES_MAX];
};
/* Signatures made through the cache (issue 18): a CSR pki_csr_create_cached
 * made, a certificate pki_sign_cached signed, with the CA certificate
 * whose key signed it. Checking one of them again, the same bytes (and
 * for a certificate the same CA certificate as its root), cannot fail:
 * Ed25519 is deterministic and the key that signed is the one checked
 * against; so the check is skipped, which gives the same result (an
 * Ed25519 check was 1.5 M instructions, two per node that joins). A CSR
 * made here keeps its public key too: signing it again reads the key from
 * here, not from a parse of the CSR (0.8 M instructions, most of them
 * OpenSSL 3.0's search for a key decoder). Other bytes, however near, are
 * checked in full. */
#define PKI_CACHE_MADE_SLOTS 1024
struct pki_made {
	uint64_t hash;	   /* of der's len bytes, then of the signer's */
	uint8_t *der;	   /* owned: the signed DER, then its signer's (NULL: empty) */
	size_t len;	   /* the signed DER's */
	size_t signer_len; /* 0 for a CSR (it signs itself) */
	uint8_t pub[PKI_SEED_BYTES]; /* a CSR's raw Ed25519 public key */
};
struct pki_cache {
	struct pki_cache_slot slot[PKI_CACHE_SLOTS];
	size_t next; /* the slot the next new certificate takes */
	/* PKI_CACHE_LEAF_SLOTS of them, allocated at first use (no memory:
	 * nothing kept) */
	struct pki_cache_slot *leaf;
	size_t leaf_next; /* the leaf slot the next one takes */
	/* the CA's private key (OpenSSL's EVP_PKEY, NULL: none yet) as read
	 * from ca_key_der: pki_sign_cached derived it at every signature */
	void *ca_key;
	size_t ca_key_len;
	uint8_t ca_key_der[PKI_DER_BYTES_MAX];
	/* PKI_CACHE_MADE_SLOTS of them, allocated at first use (no memory:
	 * nothing kept), the oldest replaced first */
	struct pki_made *made;
	size_t made_next;
	uint64_t made_hits; /* checks skipped (for tests) */
};

/* pki_cache_free frees what cache holds and empties it (NULL: nothing). */
void pki_cache_free(struct pki_cache *cache);

/* pki_csr_create_keyed, the CSR kept in cache as made (see above). */
int pki_csr_create_cached(struct pki_cache *cache, const uint8_t seed[PKI_SEED_BYTES],
			  uint8_t *csr, size_t cap, size_t *len,
			  uint8_t key_digest[ENV_DIGEST_BYTES]);

/* pki_sign through cache (see above). */
int pki_sign_cached(struct pki_cache *cache, const struct env_blob *ca_cert,
		    const struct env_blob *ca_key, const struct env_blob *csr,
		    const struct env_identity *who, int64_t not_before_s,
		    int64_t not_after_s, uint64_t serial, uint8_t *cert, size_t cap,
		    size_t *len, char why[PKI_WHY_BYTES]);

/* pki_cache_keep_leaf keeps x (OpenSSL's X509, which gains a reference)
 * among cache's checked certificates, keyed by its own DER (i2d_X509, the
 * bytes it was parsed from): pki_verify_cached of those bytes then parses
 * nothing (issue 18: a TLS peer's certificate, parsed by the handshake
 * already, was parsed again for its check, 0.85 M instructions in OpenSSL
 * 3.0). Only a parse is saved: every check is made. NULL x, or no
 * memory: nothing kept. */
struct x509_st;
void pki_cache_keep_leaf(struct pki_cache *cache, struct x509_st *x);

/* pki_verify through cache (see above). */
int pki_verify_cached(struct pki_cache *cache, const struct env_blob *cert,
		      const struct env_blob *roots, size_t root_count, int64_t now_s,
		      struct pki_cert *out, char why[PKI_WHY_BYTES]);

/* pki_read reads a certificate's fields without checking its signature.
 * Returns 0 or CS_EINVAL (not DER X.509, or not named as ours). */
int pki_read(const struct env_blob *cert, struct pki_cert *out, char why[PKI_WHY_BYTES]);

/* pki_cert_key_digest writes the key digest pki_read gives (out->key) of
 * cert, digested from its DER where the subject's public key sits, without
 * parsing the rest (issue 18: a parse, with OpenSSL 3's search for a key
 * decoder, was 0.9 M instructions; a CA reads the key of every certificate
 * it signs). For a certificate as pki_sign writes it (canonical DER, which
 * pki_read's encoding of the key gives back byte for byte; a key with
 * unused bits, which OpenSSL masks, is refused). Returns 0, or CS_EINVAL
 * when cert is not X.509 v3 as far as its key. */
int pki_cert_key_digest(const struct env_blob *cert, uint8_t out[ENV_DIGEST_BYTES]);

/* pki_read through cache (see above; NULL: none): the same result. */
int pki_read_cached(struct pki_cache *cache, const struct env_blob *cert,
		    struct pki_cert *out, char why[PKI_WHY_BYTES]);

/* pki_verify checks cert against roots at now_s: signed by one of them (a
 * root is trusted as given: no chain of more than one step), inside its
 * validity, named as ours, of the roots' cluster. Fills *out, root
 * included. Returns 0, or CS_EAUTH with why, one of (exactly):
 *   "certificate expired at <not_after, RFC 3339>"
 *   "certificate not valid before <not_before, RFC 3339>"
 *   "certificate not signed by a trusted root"
 *   "certificate of cluster <hex>, expected <hex>"
 *   "not a certificate: <what OpenSSL said>"
 */
int pki_verify(const struct env_blob *cert, const struct env_blob *roots,
	       size_t root_count, int64_t now_s, struct pki_cert *out,
	       char why[PKI_WHY_BYTES]);

/* pki_key_matches: whether key (PKCS#8 DER, or a 32-byte seed when
 * key->len == PKI_SEED_BYTES) is the private key of cert's public key. */
bool pki_key_matches(const struct env_blob *key, const struct env_blob *cert);

/* ---------------------------------------------------------------- join tokens
 *
 * SwarmKit's form: "SWMTKN-1-<digest>-<secret>", the digest the SHA-256 of
 * the root certificate in base 36 (50 digits, zero-padded), the secret 128
 * random bits in base 36 (25 digits). Which role a token grants is which of
 * the cluster's two secrets it carries. */
#define PKI_TOKEN_BYTES	       96 /* "SWMTKN-1-" + 50 + "-" + 25 + NUL fits */
#define PKI_TOKEN_SECRET_BYTES 26

/* pki_token_make writes a token for root digest and a secret (two random
 * 64-bit words) into out. */
void pki_token_make(const uint8_t digest[ENV_DIGEST_BYTES], uint64_t secret_hi,
		    uint64_t secret_lo, char out[PKI_TOKEN_BYTES]);

/* pki_token_new writes a new token for root digest into out, its secret
 * drawn from env's randomness: the low word first, then the high one, in
 * that order whatever the compiler (two draws as arguments of one call
 * are unsequenced in C: gcc and clang drew them in opposite orders, and
 * the same seed gave two builds different tokens). */
void pki_token_new(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES],
		   char out[PKI_TOKEN_BYTES]);

/* pki_token_parse reads a token: its digest and its secret (the 25 digits,
 * NUL-terminated). Returns 0, or CS_EINVAL with why, one of (exactly):
 *   "token does not start with SWMTKN-1-"
 *   "token has <n> parts, expected SWMTKN-1-<digest>-<secret>"
 *   "token digest is <n> characters, expected 50"
 *   "token secret is <n> characters, expected 25"
 *   "token has a character that is not 0-9 or a-z"
 *   "token digest is out of range"  */
int pki_token_parse(const char *token, uint8_t digest[ENV_DIGEST_BYTES],
		    char secret[PKI_TOKEN_SECRET_BYTES], char why[PKI_WHY_BYTES]);

#endif
