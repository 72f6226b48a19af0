/* seal: authenticated encryption for state at rest (SwarmKit's key
 * manager), pure computation over OpenSSL's libcrypto: AES-256-GCM to seal
 * and open, HKDF-SHA256 to derive a key from an unlock key, and the unlock
 * key's text form. Nothing here reads a clock or draws randomness of its
 * own: nonces, keys and salts are passed in (drawn by callers from the env),
 * so the simulator replays it exactly. raftio (the Raft log and snapshots)
 * is its user.
 *
 * Why AES-256-GCM rather than ChaCha20-Poly1305: every machine we run on
 * has AES instructions (AES-NI, ARMv8 crypto), where GCM is the faster of
 * the two in OpenSSL, and it is the one of the two a FIPS provider offers.
 * The nonce is 96 bits and must never repeat under one key: see raftio.c
 * for how raftio keeps that true (a key per process, a counter). */
#ifndef CS_SEAL_H
#define CS_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/env.h"

#define SEAL_KEY_BYTES	 32u /* AES-256 */
#define SEAL_NONCE_BYTES 12u /* GCM's 96-bit nonce */
#define SEAL_TAG_BYTES	 16u /* GCM's full tag */
#define SEAL_SALT_BYTES	 16u

/* An unlock key as the operator sees it, SwarmKit's form:
 * "SWMKEY-1-" then the 32 secret bytes in unpadded standard base64. */
#define SEAL_UNLOCK_PREFIX	 "SWMKEY-1-"
#define SEAL_UNLOCK_SECRET_BYTES 32u
#define SEAL_UNLOCK_KEY_CHARS	 (9u + 43u) /* without the NUL */

/* seal_seal encrypts len bytes of pt with key under nonce, authenticating
 * ad (ad_len bytes; the place the ciphertext belongs to) as well, and
 * writes len + SEAL_TAG_BYTES bytes to out: the ciphertext, then the tag.
 * Every pointer is borrowed; out must not overlap pt. pt may be NULL when
 * len is 0. Returns 0, CS_ELIMIT (len or ad_len over INT_MAX) or CS_ENOMEM
 * (libcrypto failed; nothing usable in out). */
int seal_seal(const uint8_t key[SEAL_KEY_BYTES], const uint8_t nonce[SEAL_NONCE_BYTES],
	      const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t len,
	      uint8_t *out);

/* seal_open checks and decrypts what seal_seal wrote: ct is len bytes
 * (ciphertext then tag), out receives len - SEAL_TAG_BYTES bytes. Borrows
 * every pointer. Returns 0; CS_EAUTH when the tag does not verify (another
 * key, another nonce or associated data, a byte changed): out then holds
 * nothing usable and is zeroed; CS_ECORRUPT when len < SEAL_TAG_BYTES;
 * CS_ELIMIT or CS_ENOMEM as seal_seal. */
int seal_open(const uint8_t key[SEAL_KEY_BYTES], const uint8_t nonce[SEAL_NONCE_BYTES],
	      const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t len,
	      uint8_t *out);

/* seal_random fills buf with len bytes drawn from env->ops->random_u64 (the
 * OS's entropy in the real world, the seed's stream in the simulator). */
void seal_random(struct env *env, uint8_t *buf, size_t len);

/* seal_derive derives a key from secret (len bytes) with HKDF-SHA256, the
 * salt and the label info (a NUL-terminated string naming the key's use),
 * into key. For secrets of full entropy (an unlock key's 256 bits): HKDF
 * adds no work factor, and needs none. Returns 0 or CS_ENOMEM. */
int seal_derive(const uint8_t *secret, size_t len, const uint8_t salt[SEAL_SALT_BYTES],
		const char *info, uint8_t key[SEAL_KEY_BYTES]);

/* seal_unlock_key_format writes secret's text form (SEAL_UNLOCK_PREFIX and
 * base64) into out, NUL-terminated: SEAL_UNLOCK_KEY_CHARS + 1 bytes. */
void seal_unlock_key_format(const uint8_t secret[SEAL_UNLOCK_SECRET_BYTES],
			    char out[SEAL_UNLOCK_KEY_CHARS + 1]);

/* seal_unlock_key_parse reads an unlock key's text (leading and trailing
 * white space ignored: a key file's newline) into secret. Returns 0 or
 * CS_EINVAL (not "SWMKEY-1-" and 43 base64 characters of 32 bytes). */
int seal_unlock_key_parse(const char *text, uint8_t secret[SEAL_UNLOCK_SECRET_BYTES]);

/* seal_wipe zeroes n bytes at p in a way the compiler keeps (keys leaving
 * memory). */
void seal_wipe(void *p, size_t n);

#endif
