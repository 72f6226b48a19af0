/* backup (issue 20): the bytes of a backup file, and their reading back.
 * A backup is a manager's whole store at one applied index (the control
 * API's CLUSTER_BACKUP, `swarmctl cluster backup FILE`), from which
 * `swarmd --restore FILE` starts a new one-manager cluster. The file is the
 * line BACKUP_MAGIC, a protobuf Backup (core/api.proto: the format, the
 * index and term, the cluster id, the store in store_snapshot's encoding),
 * then the SHA-256 of all that (a file cut or changed anywhere is found,
 * not read as a smaller backup). It holds the cluster's root CA key in the clear (the
 * store does): whoever reads it can sign node certificates for the cluster,
 * so it is written 0600 and kept like the CA key. Pure: no I/O; callers own
 * the files. */
#ifndef CS_BACKUP_H
#define CS_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"
#include "core/store.h"

#define BACKUP_MAGIC	 "CSWARM-BACKUP\n"
#define BACKUP_FORMAT	 1u
#define BACKUP_WHY_BYTES 256u

/* backup_encode writes the backup of s (borrowed) at the index it has
 * applied, with term (the manager's current term). Returns 0 and *out (the
 * file's bytes, *out_len of them, malloc'd: the caller frees), CS_ENOENT
 * when s holds no cluster record yet, or CS_ENOMEM. */
int backup_encode(const struct store *s, uint64_t term, uint8_t **out, size_t *out_len);

/* What a restore needs of a backup: every pointer malloc'd, freed with
 * backup_free. */
struct backup {
	uint64_t index, term, cluster_id;
	uint8_t *store; /* store_snapshot's encoding */
	size_t store_len;
	uint8_t *ca_cert, *ca_key; /* the cluster's root CA (DER) */
	size_t ca_cert_len, ca_key_len;
};

/* backup_decode reads a backup file's bytes (borrowed) into *b, checking
 * all of it: the magic line, the message, the format, the checksum, the
 * store (it must decode, and hold a cluster record of the id the backup
 * names, with its CA). Returns 0, or CS_EINVAL (not a backup: another
 * file), CS_ECORRUPT (truncated or damaged), CS_EVERSION (a format this
 * build does not read), CS_ENOMEM, with why (one line naming what is
 * wrong) filled; then *b holds nothing. */
int backup_decode(const uint8_t *buf, size_t len, struct backup *b, char *why,
		  size_t why_size);

/* Sealed backups (the cluster has autolock on): the state at rest of a
 * manager with autolock is sealed with a key derived from the unlock key
 * (issue 13), and so is a backup of it. The file is the line
 * BACKUP_SEALED_MAGIC, a salt (SEAL_SALT_BYTES), a nonce
 * (SEAL_NONCE_BYTES), then the plain backup's bytes sealed (AES-256-GCM,
 * the magic line as associated data) with a key derived (HKDF) from the
 * unlock key's secret and the salt. */
#define BACKUP_SEALED_MAGIC "CSWARM-BACKUP-SEALED\n"

/* backup_seal turns a plain backup (plain, plain_len; borrowed) into a
 * sealed one with the unlock key's text (SWMKEY-1-...), drawing the salt
 * and nonce from env. Returns 0 and *out (malloc'd), CS_EINVAL (not an
 * unlock key) or CS_ENOMEM. */
int backup_seal(struct env *env, const char *unlock_key, const uint8_t *plain,
		size_t plain_len, uint8_t **out, size_t *out_len);

/* backup_is_sealed says whether buf begins with BACKUP_SEALED_MAGIC. */
bool backup_is_sealed(const uint8_t *buf, size_t len);

/* backup_open turns a sealed backup (borrowed) back into the plain one
 * with the unlock key's text. Returns 0 and *out (malloc'd), CS_EINVAL
 * (not a sealed backup, or not an unlock key), CS_EAUTH (the key does not
 * open it, or a byte changed), CS_ECORRUPT (truncated) or CS_ENOMEM; why
 * says which. */
int backup_open(const char *unlock_key, const uint8_t *buf, size_t len, uint8_t **out,
		size_t *out_len, char *why, size_t why_size);

/* backup_free frees what backup_decode filled (and zeroes the CA key). */
void backup_free(struct backup *b);

#endif
