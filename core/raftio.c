/* raftio: libraft's raft_io on env. See raftio.h. Sections: storage,
 * completions, raft_io methods, the wire. */
#include "core/raftio.h"

#include <assert.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/hash.h"
#include "core/limits.h"

/* 1: payloads in the clear; 2: sealed (state at rest), with raft_kek and
 * raft_deks */
#define RAFTIO_FORMAT 2

enum raftio_req_kind { RAFTIO_APPEND, RAFTIO_SEND, RAFTIO_SNAP_PUT, RAFTIO_SNAP_GET };

struct raftio_req {
	struct raftio_req *next;
	enum raftio_req_kind kind;
	int status;
	union {
		struct raft_io_append *append;
		struct raft_io_send *send;
		struct raft_io_snapshot_put *put;
		struct raft_io_snapshot_get *get;
	} req;
	struct raft_snapshot *snapshot; /* SNAP_GET result */
};

/* An InstallSnapshot going out in chunks. data and the configuration's
 * addresses are libraft's: valid until the send's callback runs. */
struct raftio_out {
	struct raftio_out *next;
	struct raftio_req *r; /* the send's completion, once the last chunk is queued */
	char addr[LIMIT_ADDR_BYTES_MAX];
	Cs__RaftMessage msg; /* every chunk's header */
	Cs__RaftConfig *conf;
	const uint8_t *data;
	size_t total, offset, chunk;
	ms_t last_ms; /* when a chunk was last queued */
};

static void raftio_bind(struct raftio *rio);
static int raftio_batch_commit(struct raftio *rio);

static struct raftio *raftio_of(struct raft_io *io)
{
	return (struct raftio *)io; /* io is the first member */
}

/* raftio_down: nothing may be written, sent or delivered any more (the
 * process died, or a durable write failed). */
static bool raftio_down(const struct raftio *rio)
{
	return rio->dead || rio->broken;
}

/* raftio_break: a durable write failed (`what`), so the log on disk is not
 * what libraft believes it is. As libraft's own uv backend ("errored") and
 * etcd, we never carry on: every later write, send and receive fails or is
 * dropped, nothing pending completes (close cancels it), and the program
 * exits; after a restart the node loads what its disk holds and catches up
 * from its peers. Carrying on is what split the logs (issue 12, item 1):
 * libraft 0.15 drops an entry whose write failed and reuses its index in
 * the same term, though the entry has reached the followers. */
static void raftio_break(struct raftio *rio, const char *what)
{
	char why[192];

	if (raftio_down(rio))
		return;
	rio->broken = true;
	rio->last_known = false;
	snprintf(why, sizeof why, "raft storage: %s failed: %s", what,
		 rio->db ? sqlite3_errmsg(rio->db) : "no database");
	if (rio->batch_open) {
		sqlite3_exec(rio->db, "ROLLBACK", NULL, NULL, NULL);
		rio->batch_open = false;
	}
	env_logf(
		rio->env, ENV_LOG_ERROR,
		"msg=\"a durable write of the raft log failed: the node stops\" why=\"%s\"",
		why);
	rio->env->ops->exit(rio->env, why);
}

/* ---------------------------------------------------------------- storage */

static int raftio_exec(struct raftio *rio, const char *sql)
{
	return sqlite3_exec(rio->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : RAFT_IOERR;
}

/* The check of raft_meta's value of key (issue 19), kept in the row
 * "KEY#" beside it and written by the same statement: nothing else checks
 * the term and the vote (the entries are sealed; these are not). */
static sqlite3_int64 raftio_meta_check(const char *key, uint64_t value)
{
	uint8_t v[8];
	for (unsigned i = 0; i < 8; i++)
		v[i] = (uint8_t)(value >> (8 * i));
	return (sqlite3_int64)hash_mix64(
		hash_fnv(hash_fnv(HASH_FNV_OFFSET, key, strlen(key) + 1), v, sizeof v));
}

/* Reads one integer of raft_meta (0 when absent). Returns 0, RAFT_IOERR,
 * or RAFT_CORRUPT (logged) when its check does not match (a value written
 * before the checks has none, and is taken as it is). */
static int raftio_meta_get(struct raftio *rio, const char *key, uint64_t *value)
{
	sqlite3_stmt *st;
	int rc, rv = 0;
	*value = 0;
	/* one row always: the value and its check, each NULL when absent */
	if (sqlite3_prepare_v2(rio->db,
			       "SELECT (SELECT value FROM raft_meta WHERE key = ?1),"
			       " (SELECT value FROM raft_meta WHERE key = ?1 || '#')",
			       -1, &st, NULL) != SQLITE_OK)
		return RAFT_IOERR;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL &&
	    sqlite3_column_type(st, 1) != SQLITE_NULL) {
		/* the check without its value: the row was lost (its key
		 * flipped, in the table or in sqlite's index of the keys);
		 * read as 0, a lost term or vote would let this node vote
		 * twice in a term */
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage: the %s is missing, its check is there"
			 " (corrupt)\"",
			 key);
		rv = RAFT_CORRUPT;
	} else if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*value = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) != SQLITE_NULL &&
		    sqlite3_column_int64(st, 1) != raftio_meta_check(key, *value)) {
			env_logf(rio->env, ENV_LOG_ERROR,
				 "msg=\"raft storage: the %s fails its check (corrupt)\"",
				 key);
			*value = 0;
			rv = RAFT_CORRUPT;
		}
	}
	if (rc != SQLITE_ROW)
		/* sqlite's why, said here: the callers have only RAFT_IOERR */
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage: the %s cannot be read\" why=\"%s\"", key,
			 sqlite3_errmsg(rio->db));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return RAFT_IOERR;
	return rv;
}

static int raftio_meta_set(struct raftio *rio, const char *key, uint64_t value)
{
	/* the format goes unchecked: a value this build does not know is
	 * refused by name anyway, and tools set it by hand */
	bool checked = strcmp(key, "format") != 0;
	sqlite3_stmt *st;
	int rc;
	if (sqlite3_prepare_v2(
		    rio->db,
		    checked ? "INSERT OR REPLACE INTO raft_meta VALUES (?1, ?2),"
			      " (?1 || '#', ?3)"
			    : "INSERT OR REPLACE INTO raft_meta VALUES (?1, ?2)",
		    -1, &st, NULL) != SQLITE_OK)
		return RAFT_IOERR;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)value);
	if (checked)
		sqlite3_bind_int64(st, 3, raftio_meta_check(key, value));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : RAFT_IOERR;
}

/* The index of the last entry stored (or of the snapshot when the log is
 * empty), 0 when there is nothing. */
static int raftio_last_index(struct raftio *rio, uint64_t *last)
{
	sqlite3_stmt *st;
	int rc;
	if (rio->last_known) {
		*last = rio->last_index;
		return 0;
	}
	if (sqlite3_prepare_v2(
		    rio->db,
		    "SELECT max(coalesce((SELECT max(idx) FROM raft_log), 0),"
		    " coalesce((SELECT idx FROM raft_snapshot WHERE id = 1), 0))",
		    -1, &st, NULL) != SQLITE_OK)
		return RAFT_IOERR;
	rc = sqlite3_step(st);
	*last = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return RAFT_IOERR;
	rio->last_index = *last;
	rio->last_known = true;
	return 0;
}

/* ---------------------------------------------------------------- keys
 *
 * raft_kek holds one row: mode 0, the node-local KEK in the clear; mode 1
 * (autolock), the salt of the unlock key's derivation and a check (an
 * empty text sealed with the KEK) that tells a wrong unlock key from a
 * corrupt DEK. raft_deks holds each DEK sealed with the KEK: a random nonce
 * (the KEK seals a handful of keys in its life, far below GCM's 2^32 bound
 * for random nonces), the sealed key, its tag; bound to its id.
 *
 * Rows (raft_log.data, raft_snapshot.data) are the nonce, the ciphertext
 * and the tag; their key column names the DEK. The nonce is the writing
 * DEK's counter: a DEK seals only in the process that drew it (a restart
 * draws a new one at its first write), so a counter that a restart would
 * start again never meets the same key; no nonce repeats under a key, and
 * there is no birthday bound to watch. */

#define RAFTIO_KEK_NODE	  0
#define RAFTIO_KEK_UNLOCK 1
#define RAFTIO_ROW_EXTRA  (SEAL_NONCE_BYTES + SEAL_TAG_BYTES)

static const char raftio_kek_info[] = "cswarm raft kek v1";
static const char raftio_kek_check[] = "cswarm raft kek check";

struct raftio_dek {
	uint64_t id;
	uint8_t key[SEAL_KEY_BYTES];
};

/* Writes x little-endian at p; returns p + 8. */
static uint8_t *raftio_put64(uint8_t *p, uint64_t x)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(x >> (8 * i));
	return p + 8;
}

/* The associated data of entry idx: where it sits, what it is, its key. */
enum { RAFTIO_AD_ENTRY_BYTES = 1 + 8 + 8 + 1 + 8 };
static void raftio_ad_entry(uint8_t ad[RAFTIO_AD_ENTRY_BYTES], uint64_t idx,
			    uint64_t term, unsigned type, uint64_t key)
{
	uint8_t *p = ad;
	*p++ = 'E';
	p = raftio_put64(p, idx);
	p = raftio_put64(p, term);
	*p++ = (uint8_t)type;
	p = raftio_put64(p, key);
	assert(p == ad + RAFTIO_AD_ENTRY_BYTES);
}

/* The associated data of a snapshot: its index, term, configuration's
 * index and key, then its configuration's bytes (malloc'd: the caller
 * frees *ad). Returns 0 or RAFT_NOMEM. */
static int raftio_ad_snapshot(uint8_t **ad, size_t *len, uint64_t idx, uint64_t term,
			      uint64_t conf_idx, uint64_t key, const void *conf,
			      size_t conf_len)
{
	uint8_t *p;
	*len = 1 + 4 * 8 + conf_len;
	*ad = p = malloc(*len);
	if (!p)
		return RAFT_NOMEM;
	*p++ = 'S';
	p = raftio_put64(p, idx);
	p = raftio_put64(p, term);
	p = raftio_put64(p, conf_idx);
	p = raftio_put64(p, key);
	if (conf_len)
		memcpy(p, conf, conf_len);
	return 0;
}

/* A DEK's associated data: its id. */
static void raftio_ad_dek(uint8_t ad[9], uint64_t id)
{
	ad[0] = 'D';
	raftio_put64(ad + 1, id);
}

static const struct raftio_dek *raftio_dek_find(const struct raftio *rio, uint64_t id)
{
	size_t lo = 0, hi = rio->dek_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rio->deks[mid].id == id)
			return &rio->deks[mid];
		if (rio->deks[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Forgets every opened key (the KEK too), wiped. */
static void raftio_keys_forget(struct raftio *rio)
{
	if (rio->deks)
		seal_wipe(rio->deks, rio->dek_cap * sizeof *rio->deks);
	free(rio->deks);
	rio->deks = NULL;
	rio->dek_count = rio->dek_cap = 0;
	rio->wkey_id = 0;
	seal_wipe(rio->kek, sizeof rio->kek);
}

/* A scratch buffer of at least n bytes (rio's, reused). NULL: no memory. */
static uint8_t *raftio_scratch(struct raftio *rio, size_t n)
{
	if (n > rio->seal_cap) {
		size_t cap = n < 4096 ? 4096 : n;
		uint8_t *p = realloc(rio->seal_buf, cap);
		if (!p)
			return NULL;
		rio->seal_buf = p;
		rio->seal_cap = cap;
	}
	return rio->seal_buf;
}

/* Seals a DEK (key) for row id with kek into out (RAFTIO_ROW_EXTRA +
 * SEAL_KEY_BYTES bytes): a random nonce, the sealed key, the tag. */
static int raftio_dek_seal(struct raftio *rio, const uint8_t *kek, uint64_t id,
			   const uint8_t *key, uint8_t *out)
{
	uint8_t ad[9];
	raftio_ad_dek(ad, id);
	seal_random(rio->env, out, SEAL_NONCE_BYTES);
	return seal_seal(kek, out, ad, sizeof ad, key, SEAL_KEY_BYTES,
			 out + SEAL_NONCE_BYTES);
}

/* The check of an unlock-derived KEK: an empty text sealed with it. */
static int raftio_kek_check_make(struct raftio *rio, const uint8_t *kek,
				 uint8_t out[RAFTIO_ROW_EXTRA])
{
	seal_random(rio->env, out, SEAL_NONCE_BYTES);
	return seal_seal(kek, out, (const uint8_t *)raftio_kek_check,
			 sizeof raftio_kek_check - 1, NULL, 0, out + SEAL_NONCE_BYTES);
}

/* Writes the raft_kek row (inside the caller's transaction). salt is NULL
 * for a node-local KEK (kept in the clear). Returns 0 or an error. */
static int raftio_kek_write(struct raftio *rio, const uint8_t *kek, const uint8_t *salt)
{
	uint8_t check[RAFTIO_ROW_EXTRA];
	sqlite3_stmt *st;
	int rc;

	if (salt && raftio_kek_check_make(rio, kek, check))
		return CS_ENOMEM;
	if (sqlite3_prepare_v2(rio->db,
			       "INSERT OR REPLACE INTO raft_kek VALUES (1, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	sqlite3_bind_int(st, 1, salt ? RAFTIO_KEK_UNLOCK : RAFTIO_KEK_NODE);
	if (salt) {
		sqlite3_bind_null(st, 2);
		sqlite3_bind_blob(st, 3, salt, SEAL_SALT_BYTES, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, check, sizeof check, SQLITE_STATIC);
	} else {
		sqlite3_bind_blob(st, 2, kek, SEAL_KEY_BYTES, SQLITE_STATIC);
		sqlite3_bind_null(st, 3);
		sqlite3_bind_null(st, 4);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : CS_ESTORAGE;
}

/* Opens every DEK of raft_deks with rio->kek into rio->deks. Returns 0,
 * CS_ECORRUPT (a DEK does not open: logged), CS_ESTORAGE or CS_ENOMEM. */
static int raftio_deks_load(struct raftio *rio)
{
	sqlite3_stmt *st;
	int rc, rv = 0;

	if (sqlite3_prepare_v2(rio->db, "SELECT id, sealed FROM raft_deks ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
		const uint8_t *row = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		struct raftio_dek *d;
		uint8_t ad[9];

		if (rio->dek_count == rio->dek_cap) {
			size_t cap = rio->dek_cap ? rio->dek_cap * 2 : 8;
			struct raftio_dek *p = calloc(cap, sizeof *p);
			if (!p) {
				rv = CS_ENOMEM;
				break;
			}
			if (rio->dek_count)
				memcpy(p, rio->deks, rio->dek_count * sizeof *p);
			if (rio->deks)
				seal_wipe(rio->deks, rio->dek_cap * sizeof *rio->deks);
			free(rio->deks);
			rio->deks = p;
			rio->dek_cap = cap;
		}
		d = &rio->deks[rio->dek_count];
		raftio_ad_dek(ad, id);
		if (len != RAFTIO_ROW_EXTRA + SEAL_KEY_BYTES ||
		    seal_open(rio->kek, row, ad, sizeof ad, row + SEAL_NONCE_BYTES,
			      len - SEAL_NONCE_BYTES, d->key)) {
			env_logf(rio->env, ENV_LOG_ERROR,
				 "msg=\"raft storage: a data key does not open with the"
				 " key encryption key\" key=%" PRIu64,
				 id);
			rio->why = "a data key does not open with the key encryption key";
			rv = CS_ECORRUPT;
			break;
		}
		d->id = id;
		rio->dek_count++;
	}
	sqlite3_finalize(st);
	if (rv == 0 && rc != SQLITE_DONE)
		rv = CS_ESTORAGE;
	if (rv)
		raftio_keys_forget(rio);
	return rv;
}

/* Reads raft_kek: a node-local KEK opens the DEKs now; an unlock-derived
 * one leaves rio locked. Returns 0 or an error (as raftio_deks_load). */
static int raftio_keys_read(struct raftio *rio)
{
	sqlite3_stmt *st;
	int rc, mode = -1;

	if (sqlite3_prepare_v2(rio->db, "SELECT mode, key FROM raft_kek WHERE id = 1", -1,
			       &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mode = sqlite3_column_int(st, 0);
		if (mode == RAFTIO_KEK_NODE &&
		    sqlite3_column_bytes(st, 1) == (int)SEAL_KEY_BYTES)
			memcpy(rio->kek, sqlite3_column_blob(st, 1), SEAL_KEY_BYTES);
		else if (mode == RAFTIO_KEK_NODE)
			mode = -1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return CS_ESTORAGE;
	if (mode == RAFTIO_KEK_UNLOCK) {
		rio->autolock = rio->locked = true;
		env_logf(rio->env, ENV_LOG_WARN,
			 "msg=\"raft storage is locked (autolock): this manager waits"
			 " for its unlock key (swarmctl node unlock)\"");
		return 0;
	}
	if (mode != RAFTIO_KEK_NODE) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage: no key encryption key\"");
		rio->why = "no key encryption key";
		return CS_ECORRUPT;
	}
	return raftio_deks_load(rio);
}

/* The DEK this process seals with, drawn (and written, inside the caller's
 * open transaction) at its first use. NULL: locked, no memory, or the write
 * failed (the caller breaks rio: a failed durable write). */
static const struct raftio_dek *raftio_wkey(struct raftio *rio)
{
	uint8_t row[RAFTIO_ROW_EXTRA + SEAL_KEY_BYTES];
	struct raftio_dek d;
	sqlite3_stmt *st;
	int rc;

	if (rio->locked)
		return NULL;
	if (rio->wkey_id)
		return raftio_dek_find(rio, rio->wkey_id);
	if (rio->dek_count == rio->dek_cap) {
		size_t cap = rio->dek_cap ? rio->dek_cap * 2 : 8;
		struct raftio_dek *p = calloc(cap, sizeof *p);
		if (!p)
			return NULL;
		if (rio->dek_count)
			memcpy(p, rio->deks, rio->dek_count * sizeof *p);
		if (rio->deks)
			seal_wipe(rio->deks, rio->dek_cap * sizeof *rio->deks);
		free(rio->deks);
		rio->deks = p;
		rio->dek_cap = cap;
	}
	d.id = rio->dek_count ? rio->deks[rio->dek_count - 1].id + 1 : 1;
	seal_random(rio->env, d.key, sizeof d.key);
	if (raftio_dek_seal(rio, rio->kek, d.id, d.key, row))
		return NULL;
	if (sqlite3_prepare_v2(rio->db, "INSERT INTO raft_deks VALUES (?, ?)", -1, &st,
			       NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)d.id);
	sqlite3_bind_blob(st, 2, row, sizeof row, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		seal_wipe(&d, sizeof d);
		return NULL;
	}
	rio->deks[rio->dek_count++] = d;
	seal_wipe(&d, sizeof d);
	rio->wkey_id = rio->deks[rio->dek_count - 1].id;
	rio->wkey_nonces = 0;
	rio->deks_created++;
	env_logf(rio->env, ENV_LOG_INFO,
		 "msg=\"raft storage: new data key\" key=%" PRIu64, rio->wkey_id);
	return &rio->deks[rio->dek_count - 1];
}

/* Seals len bytes of pt with the write key k into out (len +
 * RAFTIO_ROW_EXTRA bytes): the counter's nonce, the ciphertext, the tag. */
static int raftio_seal_row(struct raftio *rio, const struct raftio_dek *k,
			   const uint8_t *ad, size_t ad_len, const void *pt, size_t len,
			   uint8_t *out)
{
	uint64_t n = ++rio->wkey_nonces;
	assert(k->id == rio->wkey_id);
	assert(n != 0); /* 2^64 seals: never */
	memset(out, 0, 4);
	for (unsigned i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(n >> (56 - 8 * i));
	return seal_seal(k->key, out, ad, ad_len, pt, len, out + SEAL_NONCE_BYTES);
}

/* Opens a row (len bytes) sealed with key id into out (len -
 * RAFTIO_ROW_EXTRA bytes). Returns 0 or RAFT_CORRUPT (logged: what fails). */
static int raftio_open_row(struct raftio *rio, uint64_t id, const uint8_t *ad,
			   size_t ad_len, const uint8_t *row, size_t len, uint8_t *out,
			   const char *what, uint64_t idx)
{
	const struct raftio_dek *k = raftio_dek_find(rio, id);
	if (!k || len < RAFTIO_ROW_EXTRA ||
	    seal_open(k->key, row, ad, ad_len, row + SEAL_NONCE_BYTES,
		      len - SEAL_NONCE_BYTES, out)) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage: %s does not open (%s)\" index=%" PRIu64
			 " key=%" PRIu64,
			 what, k ? "altered, moved, or another key" : "no such data key",
			 idx, id);
		return RAFT_CORRUPT;
	}
	return 0;
}

/* Whether sqlite zeroes what it deletes or overwrites. Off by default (the
 * log and the snapshot are ciphertext: a data key deleted makes what it
 * sealed unreadable, so zeroing their freed pages would only double the
 * writes of every compaction); on around the writes that replace or delete
 * key material or clear bytes. Debian's sqlite is built with it on, so it
 * is set either way. Returns 0 or RAFT_IOERR. */
static int raftio_secure_delete(struct raftio *rio, bool on)
{
	return raftio_exec(rio, on ? "PRAGMA secure_delete = ON"
				   : "PRAGMA secure_delete = OFF");
}

/* Deletes the DEKs no row uses any more, but the write key (inside the
 * caller's transaction; their bytes are zeroed). Returns 0 or RAFT_IOERR. */
static int raftio_deks_gc(struct raftio *rio)
{
	sqlite3_stmt *st;
	uint64_t *used = NULL;
	size_t used_count = 0, used_cap = 0, kept = 0, u = 0;
	int rc;

	if (sqlite3_prepare_v2(
		    rio->db,
		    "SELECT key FROM raft_log UNION SELECT key FROM raft_snapshot"
		    " ORDER BY 1",
		    -1, &st, NULL) != SQLITE_OK)
		return RAFT_IOERR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (used_count == used_cap) {
			size_t cap = used_cap ? used_cap * 2 : 16;
			uint64_t *p = realloc(used, cap * sizeof *p);
			if (!p) {
				rc = SQLITE_NOMEM;
				break;
			}
			used = p;
			used_cap = cap;
		}
		used[used_count++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(used);
		return RAFT_IOERR;
	}
	for (size_t i = 0; i < rio->dek_count; i++) {
		uint64_t id = rio->deks[i].id;
		while (u < used_count && used[u] < id)
			u++;
		if (id == rio->wkey_id || (u < used_count && used[u] == id)) {
			rio->deks[kept++] = rio->deks[i];
			continue;
		}
		if (raftio_secure_delete(rio, true) ||
		    sqlite3_prepare_v2(rio->db, "DELETE FROM raft_deks WHERE id = ?", -1,
				       &st, NULL) != SQLITE_OK) {
			free(used);
			return RAFT_IOERR;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE || raftio_secure_delete(rio, false)) {
			free(used);
			return RAFT_IOERR;
		}
		rio->deks_deleted++;
		env_logf(
			rio->env, ENV_LOG_INFO,
			"msg=\"raft storage: data key no longer used, deleted\" key=%" PRIu64,
			id);
	}
	free(used);
	if (kept < rio->dek_count)
		seal_wipe(rio->deks + kept, (rio->dek_count - kept) * sizeof *rio->deks);
	rio->dek_count = kept;
	return 0;
}

/* The tables of format 2 (a new database's, and what an upgrade adds). */
static const char raftio_schema_keys[] =
	"CREATE TABLE IF NOT EXISTS raft_kek(id INTEGER PRIMARY KEY CHECK (id = 1),"
	" mode INTEGER NOT NULL, key BLOB, salt BLOB, chk BLOB);"
	"CREATE TABLE IF NOT EXISTS raft_deks(id INTEGER PRIMARY KEY,"
	" sealed BLOB NOT NULL);";

/* Creates a new database of format 2 with a new node-local KEK. */
static int raftio_create(struct raftio *rio)
{
	uint8_t kek[SEAL_KEY_BYTES];
	int rv;

	if (raftio_exec(rio, "BEGIN"))
		return CS_ESTORAGE;
	seal_random(rio->env, kek, sizeof kek);
	if (raftio_exec(rio,
			"CREATE TABLE raft_log(idx INTEGER PRIMARY KEY,"
			" term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB,"
			" key INTEGER NOT NULL DEFAULT 0);"
			"CREATE TABLE raft_snapshot(id INTEGER PRIMARY KEY"
			" CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL,"
			" conf BLOB, conf_idx INTEGER NOT NULL, data BLOB,"
			" key INTEGER NOT NULL DEFAULT 0);"
			"INSERT INTO raft_meta VALUES ('format', 2), ('term', 0),"
			" ('vote', 0);") ||
	    raftio_exec(rio, raftio_schema_keys) || raftio_kek_write(rio, kek, NULL) ||
	    raftio_exec(rio, "COMMIT")) {
		raftio_exec(rio, "ROLLBACK");
		rv = CS_ESTORAGE;
	} else {
		rv = 0;
	}
	seal_wipe(kek, sizeof kek);
	return rv;
}

/* Seals one format-1 row of raft_log in place. */
static int raftio_upgrade_entry(struct raftio *rio, const struct raftio_dek *k,
				uint64_t idx, uint64_t term, unsigned type,
				const void *data, size_t len)
{
	uint8_t ad[RAFTIO_AD_ENTRY_BYTES],
		*row = raftio_scratch(rio, len + RAFTIO_ROW_EXTRA);
	sqlite3_stmt *st;
	int rc;

	if (!row)
		return CS_ENOMEM;
	raftio_ad_entry(ad, idx, term, type, k->id);
	if (raftio_seal_row(rio, k, ad, sizeof ad, data, len, row))
		return CS_ENOMEM;
	if (sqlite3_prepare_v2(rio->db,
			       "UPDATE raft_log SET data = ?, key = ? WHERE idx = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	sqlite3_bind_blob(st, 1, row, (int)(len + RAFTIO_ROW_EXTRA), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)k->id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)idx);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : CS_ESTORAGE;
}

/* Format 1 to 2, in one transaction: the key tables, a new node-local KEK
 * and DEK, every payload and the snapshot's data sealed in place (the clear
 * bytes zeroed: secure_delete is on). Returns 0 or an error (rolled back:
 * nothing changed). */
static int raftio_upgrade(struct raftio *rio)
{
	const struct raftio_dek *k;
	sqlite3_stmt *st = NULL;
	uint64_t next = 0, rows = 0;
	int rv = CS_ESTORAGE, rc;

	if (raftio_secure_delete(rio, true) || raftio_exec(rio, "BEGIN"))
		return CS_ESTORAGE;
	seal_random(rio->env, rio->kek, sizeof rio->kek);
	if (raftio_exec(rio, "ALTER TABLE raft_log ADD COLUMN key INTEGER NOT NULL"
			     " DEFAULT 0;"
			     "ALTER TABLE raft_snapshot ADD COLUMN key INTEGER NOT NULL"
			     " DEFAULT 0;") ||
	    raftio_exec(rio, raftio_schema_keys) || raftio_kek_write(rio, rio->kek, NULL))
		goto rollback;
	if (!(k = raftio_wkey(rio)))
		goto rollback;
	/* one row at a time by index: no statement reads a table it changes */
	for (;;) {
		if (sqlite3_prepare_v2(rio->db,
				       "SELECT idx, term, type, data FROM raft_log"
				       " WHERE idx > ? ORDER BY idx LIMIT 1",
				       -1, &st, NULL) != SQLITE_OK)
			goto rollback;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)next);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW)
			goto rollback;
		next = (uint64_t)sqlite3_column_int64(st, 0);
		if ((rv = raftio_upgrade_entry(rio, k, next,
					       (uint64_t)sqlite3_column_int64(st, 1),
					       (unsigned)sqlite3_column_int(st, 2),
					       sqlite3_column_blob(st, 3),
					       (size_t)sqlite3_column_bytes(st, 3))))
			goto rollback;
		rv = CS_ESTORAGE;
		sqlite3_finalize(st);
		st = NULL;
		rows++;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(rio->db,
			       "SELECT idx, term, conf, conf_idx, data FROM raft_snapshot"
			       " WHERE id = 1",
			       -1, &st, NULL) != SQLITE_OK)
		goto rollback;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		uint8_t *ad = NULL, *row;
		size_t ad_len, len = (size_t)sqlite3_column_bytes(st, 4);
		sqlite3_stmt *up;
		if (raftio_ad_snapshot(&ad, &ad_len,
				       (uint64_t)sqlite3_column_int64(st, 0),
				       (uint64_t)sqlite3_column_int64(st, 1),
				       (uint64_t)sqlite3_column_int64(st, 3), k->id,
				       sqlite3_column_blob(st, 2),
				       (size_t)sqlite3_column_bytes(st, 2)))
			goto rollback;
		row = raftio_scratch(rio, len + RAFTIO_ROW_EXTRA);
		rc = !row || raftio_seal_row(rio, k, ad, ad_len,
					     sqlite3_column_blob(st, 4), len, row);
		free(ad);
		if (rc)
			goto rollback;
		if (sqlite3_prepare_v2(
			    rio->db,
			    "UPDATE raft_snapshot SET data = ?, key = ? WHERE id = 1", -1,
			    &up, NULL) != SQLITE_OK)
			goto rollback;
		sqlite3_bind_blob(up, 1, row, (int)(len + RAFTIO_ROW_EXTRA),
				  SQLITE_STATIC);
		sqlite3_bind_int64(up, 2, (sqlite3_int64)k->id);
		rc = sqlite3_step(up);
		sqlite3_finalize(up);
		if (rc != SQLITE_DONE)
			goto rollback;
	} else if (rc != SQLITE_DONE) {
		goto rollback;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (raftio_meta_set(rio, "format", RAFTIO_FORMAT) || raftio_exec(rio, "COMMIT"))
		goto rollback;
	(void)raftio_secure_delete(rio, false); /* if it stays on: slower, no worse */
	/* the WAL (the real world's journal) still holds the clear pages */
	sqlite3_exec(rio->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	env_logf(rio->env, ENV_LOG_WARN,
		 "msg=\"raft storage upgraded from format 1 to 2: the log and the"
		 " snapshot are encrypted at rest now\" entries=%" PRIu64,
		 rows);
	return 0;
rollback:
	sqlite3_finalize(st);
	raftio_exec(rio, "ROLLBACK");
	(void)raftio_secure_delete(rio, false);
	raftio_keys_forget(rio);
	env_logf(rio->env, ENV_LOG_ERROR,
		 "msg=\"raft storage: the upgrade from format 1 failed, nothing"
		 " changed\" err=\"%s\"",
		 sqlite3_errmsg(rio->db));
	return rv;
}

static int raftio_init_db(struct raftio *rio, struct env *env);

/* Whether the file has the table raft_log. Returns 1 (it has), 0 (not) or
 * CS_ESTORAGE (sqlite cannot tell). */
static int raftio_has_log(struct raftio *rio)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(rio->db,
			       "SELECT 1 FROM sqlite_schema WHERE type = 'table'"
			       " AND name = 'raft_log'",
			       -1, &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return CS_ESTORAGE;
	return rc == SQLITE_ROW;
}

int raftio_init(struct raftio *rio, struct env *env)
{
	int rv = raftio_init_db(rio, env);
	const char *why;
	int code;

	if (rv != CS_ESTORAGE && rv != CS_ECORRUPT)
		return rv;
	/* Issue 19: say why. Damage outside the log and the snapshot (the
	 * schema, the keys, the term or the vote) cannot be recovered from
	 * safely by the node alone: it refuses to start. The why is that of
	 * raftio's own check when one failed (sqlite then has no error to
	 * tell: its text was "not an error"), else sqlite's. */
	code = rio->db ? sqlite3_errcode(rio->db) & 0xff : SQLITE_OK;
	why = rio->why		  ? rio->why
	      : !rio->db	  ? "cannot open"
	      : code != SQLITE_OK ? sqlite3_errmsg(rio->db)
				  : "unknown";
	if (rv == CS_ECORRUPT || code == SQLITE_CORRUPT || code == SQLITE_NOTADB ||
	    code == SQLITE_ERROR)
		env_logf(env, ENV_LOG_ERROR,
			 "msg=\"raft storage is corrupt beyond its log: this manager"
			 " refuses to start; remove it from the cluster and join it"
			 " again with an empty state\" why=\"%s\"",
			 why);
	else
		env_logf(env, ENV_LOG_ERROR,
			 "msg=\"raft storage cannot be opened\" why=\"%s\"", why);
	return rv;
}

static int raftio_init_db(struct raftio *rio, struct env *env)
{
	uint64_t format;
	int rv;

	memset(rio, 0, sizeof *rio);
	rio->env = env;
	raftio_bind(rio);
	if (env->ops->storage_open(env, "raft", &rio->db))
		return CS_ESTORAGE;
	/* deleted bytes are zeroed only where they held keys or clear bytes
	 * (raftio_secure_delete); a compaction (a snapshot of a few MB in,
	 * thousands of rows out) fits the page cache: sqlite's default 2 MB
	 * made it spill and read back pages (the DELETE behind a 3 MB
	 * snapshot took 35 to 74 ms, 3 to 13 ms with this) */
	if (sqlite3_exec(rio->db,
			 "PRAGMA secure_delete = OFF; PRAGMA cache_size = -16384;"
			 "CREATE TABLE IF NOT EXISTS raft_meta(key TEXT PRIMARY KEY,"
			 " value INTEGER NOT NULL);",
			 NULL, NULL, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	if (raftio_meta_get(rio, "format", &format))
		return CS_ESTORAGE;
	/* no format but a log: the format's row was lost (a flipped key);
	 * creating the tables again would fail on them */
	if (format == 0 && (rv = raftio_has_log(rio)) != 0) {
		if (rv > 0) {
			rio->why = "the format record is missing from a file that holds a"
				   " log";
			rv = CS_ECORRUPT;
		}
		return rv;
	}
	if (format == 0 && (rv = raftio_create(rio)))
		return rv;
	if (format == 1 && (rv = raftio_upgrade(rio)))
		return rv;
	if (format != 0 && format != 1 && format != RAFTIO_FORMAT) {
		env_logf(env, ENV_LOG_ERROR,
			 "msg=\"raft storage of format %" PRIu64
			 ": this build reads formats 1 (upgraded in place) and %d\"",
			 format, RAFTIO_FORMAT);
		return CS_EVERSION;
	}
	if (format == 1)
		return 0; /* the upgrade holds the keys */
	return raftio_keys_read(rio);
}

bool raftio_is_locked(const struct raftio *rio)
{
	return rio->locked;
}

/* Reads the unlock-derived KEK's salt and check. Returns 0 or CS_ESTORAGE
 * / CS_ECORRUPT. */
static int raftio_kek_params(struct raftio *rio, uint8_t salt[SEAL_SALT_BYTES],
			     uint8_t check[RAFTIO_ROW_EXTRA])
{
	sqlite3_stmt *st;
	int rc, rv = CS_ECORRUPT;

	if (sqlite3_prepare_v2(rio->db,
			       "SELECT salt, chk FROM raft_kek WHERE id = 1 AND mode = 1",
			       -1, &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)SEAL_SALT_BYTES &&
	    sqlite3_column_bytes(st, 1) == (int)RAFTIO_ROW_EXTRA) {
		memcpy(salt, sqlite3_column_blob(st, 0), SEAL_SALT_BYTES);
		memcpy(check, sqlite3_column_blob(st, 1), RAFTIO_ROW_EXTRA);
		rv = 0;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rv = CS_ESTORAGE;
	}
	sqlite3_finalize(st);
	return rv;
}

/* Derives the KEK of an unlock key's text with salt into kek. Returns 0,
 * CS_EINVAL (not an unlock key) or CS_ENOMEM. */
static int raftio_kek_derive(const char *unlock_key, const uint8_t *salt, uint8_t *kek)
{
	uint8_t secret[SEAL_UNLOCK_SECRET_BYTES];
	int rv = seal_unlock_key_parse(unlock_key, secret);
	if (rv == 0)
		rv = seal_derive(secret, sizeof secret, salt, raftio_kek_info, kek);
	seal_wipe(secret, sizeof secret);
	return rv;
}

int raftio_unlock(struct raftio *rio, const char *unlock_key)
{
	uint8_t salt[SEAL_SALT_BYTES], check[RAFTIO_ROW_EXTRA], kek[SEAL_KEY_BYTES];
	int rv;

	if (!rio->locked)
		return 0;
	if ((rv = raftio_kek_params(rio, salt, check)))
		return rv;
	if ((rv = raftio_kek_derive(unlock_key, salt, kek))) {
		if (rv == CS_EINVAL)
			env_logf(rio->env, ENV_LOG_WARN,
				 "msg=\"raft storage stays locked: not an unlock key"
				 " (SWMKEY-1-...)\"");
		return rv;
	}
	if (seal_open(kek, check, (const uint8_t *)raftio_kek_check,
		      sizeof raftio_kek_check - 1, check + SEAL_NONCE_BYTES,
		      SEAL_TAG_BYTES, NULL) != 0) {
		seal_wipe(kek, sizeof kek);
		env_logf(rio->env, ENV_LOG_WARN,
			 "msg=\"raft storage stays locked: wrong unlock key\"");
		return CS_EAUTH;
	}
	memcpy(rio->kek, kek, sizeof kek);
	seal_wipe(kek, sizeof kek);
	if ((rv = raftio_deks_load(rio)))
		return rv;
	rio->locked = false;
	env_logf(rio->env, ENV_LOG_INFO, "msg=\"raft storage unlocked\" keys=%zu",
		 rio->dek_count);
	return 0;
}

int raftio_set_autolock(struct raftio *rio, const char *unlock_key)
{
	uint8_t kek[SEAL_KEY_BYTES], salt[SEAL_SALT_BYTES];
	uint8_t row[RAFTIO_ROW_EXTRA + SEAL_KEY_BYTES];
	int rv;

	if (rio->locked || raftio_down(rio))
		return CS_EINVAL;
	if (unlock_key) {
		seal_random(rio->env, salt, sizeof salt);
		if ((rv = raftio_kek_derive(unlock_key, salt, kek)))
			return rv;
	} else {
		seal_random(rio->env, kek, sizeof kek);
	}
	if (raftio_batch_commit(rio)) {
		seal_wipe(kek, sizeof kek);
		return CS_ESTORAGE;
	}
	if (raftio_secure_delete(rio, true) || raftio_exec(rio, "BEGIN") ||
	    raftio_kek_write(rio, kek, unlock_key ? salt : NULL))
		goto fail;
	for (size_t i = 0; i < rio->dek_count; i++) {
		sqlite3_stmt *st;
		int rc;
		if (raftio_dek_seal(rio, kek, rio->deks[i].id, rio->deks[i].key, row) ||
		    sqlite3_prepare_v2(rio->db,
				       "UPDATE raft_deks SET sealed = ? WHERE id = ?", -1,
				       &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_blob(st, 1, row, sizeof row, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)rio->deks[i].id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (raftio_exec(rio, "COMMIT"))
		goto fail;
	(void)raftio_secure_delete(rio, false); /* if it stays on: slower, no worse */
	memcpy(rio->kek, kek, sizeof kek);
	seal_wipe(kek, sizeof kek);
	rio->autolock = unlock_key != NULL;
	/* the old KEK's pages leave the WAL (the real world's journal) */
	sqlite3_exec(rio->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	env_logf(rio->env, ENV_LOG_INFO,
		 "msg=\"raft storage: key encryption key replaced\" autolock=%s keys=%zu",
		 rio->autolock ? "on" : "off", rio->dek_count);
	return 0;
fail:
	seal_wipe(kek, sizeof kek);
	raftio_exec(rio, "ROLLBACK");
	(void)raftio_secure_delete(rio, false);
	raftio_break(rio, "sealing the data keys with a new key encryption key");
	return CS_ESTORAGE;
}

int raftio_rotate_dek(struct raftio *rio)
{
	if (rio->locked || raftio_down(rio))
		return CS_EINVAL;
	if (raftio_batch_commit(rio))
		return CS_ESTORAGE;
	rio->wkey_id = 0; /* the next write draws a new one */
	if (raftio_exec(rio, "BEGIN") || raftio_deks_gc(rio) ||
	    raftio_exec(rio, "COMMIT")) {
		raftio_exec(rio, "ROLLBACK");
		raftio_break(rio, "deleting unused data keys");
		return CS_ESTORAGE;
	}
	return 0;
}

/* ---------------------------------------------------------------- configurations */

Cs__RaftConfig *raftio_encode_conf(const struct raft_configuration *conf)
{
	Cs__RaftConfig *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	cs__raft_config__init(c);
	c->n_servers = conf->n;
	c->servers = calloc(conf->n ? conf->n : 1, sizeof *c->servers);
	if (!c->servers) {
		free(c);
		return NULL;
	}
	for (unsigned i = 0; i < conf->n; i++) {
		Cs__RaftServer *s = malloc(sizeof *s);
		if (!s) {
			c->n_servers = i;
			raftio_free_conf(c);
			return NULL;
		}
		cs__raft_server__init(s);
		s->id = conf->servers[i].id;
		s->address = conf->servers[i].address;
		s->role = conf->servers[i].role;
		c->servers[i] = s;
	}
	return c;
}

/* Frees a configuration made by raftio_encode_conf (addresses borrowed). */
void raftio_free_conf(Cs__RaftConfig *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_servers; i++)
		free(c->servers[i]);
	free(c->servers);
	free(c);
}

int raftio_decode_conf(const Cs__RaftConfig *c, struct raft_configuration *conf)
{
	raft_configuration_init(conf);
	if (!c)
		return 0;
	for (size_t i = 0; i < c->n_servers; i++) {
		const Cs__RaftServer *s = c->servers[i];
		int rv;
		if (s->id == 0 || !s->address || s->role < RAFT_STANDBY ||
		    s->role > RAFT_SPARE) {
			raft_configuration_close(conf);
			return RAFT_MALFORMED;
		}
		rv = raft_configuration_add(conf, s->id, s->address, s->role);
		if (rv) {
			raft_configuration_close(conf);
			return rv;
		}
	}
	return 0;
}

/* libraft encodes a configuration (RAFT_CHANGE entries) as: a format byte,
 * the server count (u64), then per server its id (u64), address (NUL
 * terminated) and role (u8); it pads the buffer to 8 bytes and leaves the
 * padding uninitialised. Those bytes would reach the disk and the wire and
 * make a replay differ (valgrind showed it), so we zero them in place:
 * libraft never reads them. Leaves anything it cannot parse untouched. */
static void raftio_scrub_conf(void *base, size_t len)
{
	uint8_t *p = base;
	size_t at = 1 + 8;
	uint64_t n;

	if (!p || len < at || p[0] != 1)
		return;
	memcpy(&n, p + 1, 8);
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *nul;
		at += 8;
		if (at >= len)
			return;
		nul = memchr(p + at, 0, len - at);
		if (!nul)
			return;
		at = (size_t)(nul - p) + 1 + 1; /* the NUL, then the role */
		if (at > len)
			return;
	}
	memset(p + at, 0, len - at);
}

/* ---------------------------------------------------------------- completions */

static void raftio_flush(struct env *env, env_timer_id id, void *data);

/* Queues a completion for the next flush. Returns 0 or RAFT_NOMEM. */
static int raftio_defer(struct raftio *rio, struct raftio_req *r)
{
	r->next = NULL;
	if (rio->pending_tail)
		rio->pending_tail->next = r;
	else
		rio->pending_head = r;
	rio->pending_tail = r;
	if (!rio->flush_timer && rio->env->ops->timer_start(rio->env, 0, 0, raftio_flush,
							    rio, &rio->flush_timer)) {
		/* cannot arm: unqueue and fail the request */
		if (rio->pending_head == r) {
			rio->pending_head = rio->pending_tail = NULL;
		} else {
			struct raftio_req *p = rio->pending_head;
			while (p->next != r)
				p = p->next;
			p->next = NULL;
			rio->pending_tail = p;
		}
		return RAFT_NOMEM;
	}
	return 0;
}

static void raftio_complete(struct raftio_req *r)
{
	switch (r->kind) {
	case RAFTIO_APPEND: r->req.append->cb(r->req.append, r->status); break;
	case RAFTIO_SEND:
		if (r->req.send->cb)
			r->req.send->cb(r->req.send, r->status);
		break;
	case RAFTIO_SNAP_PUT:
		if (r->req.put->cb)
			r->req.put->cb(r->req.put, r->status);
		break;
	case RAFTIO_SNAP_GET: r->req.get->cb(r->req.get, r->snapshot, r->status); break;
	}
	free(r);
}

/* Commits the appends' open transaction, if any. Returns 0, or RAFT_IOERR
 * when rio is down or the COMMIT failed (then rio is broken: see
 * raftio_break). */
static int raftio_batch_commit(struct raftio *rio)
{
	if (raftio_down(rio))
		return RAFT_IOERR;
	if (!rio->batch_open)
		return 0;
	rio->batch_open = false;
	if (raftio_exec(rio, "COMMIT")) {
		raftio_break(rio, "the appends' commit");
		return RAFT_IOERR;
	}
	return 0;
}

/* Runs the completions queued before this flush; later ones wait for the
 * next. The appends among them are made durable first, in one commit. */
static void raftio_flush(struct env *env, env_timer_id id, void *data)
{
	struct raftio *rio = data;
	struct raftio_req *r;

	rio->flush_timer = 0;
	/* broken: nothing is reported, not even a failure (libraft would
	 * reuse the index); the pending requests wait for close */
	if (raftio_batch_commit(rio))
		return;
	r = rio->pending_head;
	rio->pending_head = rio->pending_tail = NULL;
	while (r) {
		struct raftio_req *next = r->next;
		raftio_complete(r);
		r = next;
	}
}

/* Completes every pending request with RAFT_CANCELED now (close), newest
 * first. */
static void raftio_cancel_all(struct raftio *rio)
{
	struct raftio_req *r = rio->pending_head, *rev = NULL;
	rio->pending_head = rio->pending_tail = NULL;
	/* Newest first. libraft (0.15) truncates its in-memory log from a
	 * failed append's first index, entries of later appends still in
	 * flight included; their own callbacks then release entries it no
	 * longer holds (a NULL dereference in its refcount table: explore
	 * found it, a leader whose commit of two appends failed, issue 19).
	 * Cancelled newest first, each truncates only its own entries. */
	while (r) {
		struct raftio_req *next = r->next;
		r->next = rev;
		rev = r;
		r = next;
	}
	r = rev;
	while (r) {
		struct raftio_req *next = r->next;
		if (r->snapshot) {
			/* a snapshot read for nobody */
			for (unsigned i = 0; i < r->snapshot->n_bufs; i++)
				raft_free(r->snapshot->bufs[i].base);
			raft_free(r->snapshot->bufs);
			raft_configuration_close(&r->snapshot->configuration);
			raft_free(r->snapshot);
			r->snapshot = NULL;
		}
		r->status = RAFT_CANCELED;
		raftio_complete(r);
		r = next;
	}
}

/* ---------------------------------------------------------------- votes resent
 *
 * A candidate's RequestVote to a peer that has not answered it is sent
 * again (see raftio.h, "Vote requests resent"). raftio does not read
 * libraft's state: it sees what libraft does through raft_io. A new
 * candidacy (electionStart) sets the term (a real vote) or not (a pre-vote),
 * then sends one RequestVote per voter, which replaces the one kept for that
 * voter; every way out of candidacy shows: a new term is set, the node sends
 * what only a leader sends, or it receives what only a leader of its term
 * or later sends. */

static int raftio_wire_send(struct raftio *rio, const struct raft_message *m, bool *cut);

/* Forgets every kept RequestVote. */
static void raftio_votes_forget(struct raftio *rio)
{
	rio->vote_count = 0;
}

/* Forgets votes[i] (order is not kept: votes[] is looked up by id). */
static void raftio_vote_drop(struct raftio *rio, size_t i)
{
	assert(i < rio->vote_count);
	rio->votes[i] = rio->votes[--rio->vote_count];
}

/* Keeps m (a RequestVote being sent) as the one to resend to its peer,
 * replacing an earlier one. */
static void raftio_vote_keep(struct raftio *rio, const struct raft_message *m)
{
	size_t i;

	assert(m->type == RAFT_IO_REQUEST_VOTE);
	if (!m->server_address || strlen(m->server_address) >= LIMIT_ADDR_BYTES_MAX)
		return; /* never sent (raftio_wire_send refuses it) */
	for (i = 0; i < rio->vote_count && rio->votes[i].to != m->server_id; i++)
		;
	if (i == LIMIT_MANAGERS_MAX) {
		/* more voters than managers: libraft's own timer still elects;
		 * counted, and said once */
		if (rio->vote_unkept++ == 0)
			env_logf(rio->env, ENV_LOG_WARN,
				 "msg=\"raft: more voters than LIMIT_MANAGERS_MAX:"
				 " some vote requests are not resent\" max=%u",
				 LIMIT_MANAGERS_MAX);
		return;
	}
	if (i == rio->vote_count)
		rio->vote_count++;
	rio->votes[i].to = m->server_id;
	memcpy(rio->votes[i].address, m->server_address, strlen(m->server_address) + 1);
	rio->votes[i].req = m->request_vote;
	rio->votes[i].sent_ms = rio->env->ops->now_ms(rio->env);
	rio->votes[i].resends = 0;
}

/* A RequestVoteResult came from `from`: its RequestVote of the same phase
 * (pre-vote or vote) and term is answered. An answer of another phase (a
 * late answer to a pre-vote once the vote is under way) or an older term is
 * not. A voter of a later term answers with its term: the candidate then
 * sets that term, which forgets everything anyway. */
static void raftio_vote_answered(struct raftio *rio, raft_id from, raft_term term,
				 raft_tribool pre_vote)
{
	for (size_t i = 0; i < rio->vote_count; i++) {
		const struct raftio_vote *v = &rio->votes[i];
		if (v->to != from)
			continue;
		if (pre_vote != raft_tribool_unknown &&
		    (pre_vote == raft_tribool_true) != v->req.pre_vote)
			return;
		if (term < v->req.term)
			return;
		raftio_vote_drop(rio, i);
		return;
	}
}

/* An AppendEntries or InstallSnapshot of `term` arrived: a leader of that
 * term. A candidate of that term or an earlier one becomes its follower
 * (libraft: recvAppendEntries, recvInstallSnapshot); a pre-vote asks for
 * current term + 1, so a leader of the current term ends it too. Older
 * leaders are refused and change nothing. */
static void raftio_votes_leader_heard(struct raftio *rio, raft_term term)
{
	size_t i = 0;
	while (i < rio->vote_count) {
		const struct raftio_vote *v = &rio->votes[i];
		raft_term candidate_term =
			v->req.pre_vote ? v->req.term - 1 : v->req.term;
		if (term >= candidate_term)
			raftio_vote_drop(rio, i);
		else
			i++;
	}
}

/* The resend interval: vote_resend_ms, or a quarter of libraft's tick (its
 * heartbeat: 250 ms by default). bench_election, 30% loss, 1,000 seeds: a
 * resend every election timeout / 4 left p99 at 25 s, every heartbeat at
 * 19.7 s, every heartbeat / 4 at 18.2 s (17.8 s with no loss at all: the
 * first timeout itself). */
static ms_t raftio_vote_interval_ms(const struct raftio *rio)
{
	if (rio->vote_resend_ms)
		return rio->vote_resend_ms;
	return rio->tick_ms >= 4 ? rio->tick_ms / 4 : 1;
}

/* Sends again each kept RequestVote whose interval has passed (from the
 * tick). One that failed to send (no connection) is tried at the next
 * interval, as libraft would not retry it at all. */
static void raftio_votes_resend(struct raftio *rio)
{
	ms_t now = rio->env->ops->now_ms(rio->env);
	ms_t every = raftio_vote_interval_ms(rio);
	size_t i = 0;

	assert(every > 0);
	while (i < rio->vote_count) {
		struct raftio_vote *v = &rio->votes[i];
		struct raft_message m;
		bool cut = false;

		if (now - v->sent_ms < every) {
			i++;
			continue;
		}
		if (v->resends >= LIMIT_RAFT_VOTE_RESENDS_MAX) {
			raftio_vote_drop(rio, i);
			continue;
		}
		memset(&m, 0, sizeof m);
		m.type = RAFT_IO_REQUEST_VOTE;
		m.server_id = v->to;
		m.server_address = v->address;
		m.request_vote = v->req;
		(void)raftio_wire_send(rio, &m, &cut);
		assert(!cut);
		v->sent_ms = now;
		v->resends++;
		rio->vote_resent++;
		i++;
	}
}

/* ---------------------------------------------------------------- raft_io methods */

static int raftio_m_init(struct raft_io *io, raft_id id, const char *address)
{
	struct raftio *rio = raftio_of(io);
	if (strlen(address) >= sizeof rio->address)
		return RAFT_NAMETOOLONG;
	rio->id = id;
	memcpy(rio->address, address, strlen(address) + 1);
	return 0;
}

static void raftio_outs_pump(struct raftio *rio);
static void raftio_outs_cancel(struct raftio *rio, int status);
static void raftio_in_drop(struct raftio *rio, const char *why);

static void raftio_tick(struct env *env, env_timer_id id, void *data)
{
	struct raftio *rio = data;
	if (rio->closing || raftio_down(rio))
		return;
	if (rio->outs)
		raftio_outs_pump(rio);
	if (rio->in.buf &&
	    rio->env->ops->now_ms(rio->env) - rio->in.last_ms >= LIMIT_RAFT_CHUNK_IDLE_MS)
		raftio_in_drop(rio, "no chunk for too long");
	if (rio->vote_count)
		raftio_votes_resend(rio);
	if (rio->tick_cb)
		rio->tick_cb(&rio->io);
}

/* Every LIMIT_RAFT_DEK_ROTATE_MS: a new data key (SwarmKit's key manager
 * rotates every 12 hours). */
static void raftio_rotate_tick(struct env *env, env_timer_id id, void *data)
{
	struct raftio *rio = data;
	if (rio->closing || raftio_down(rio))
		return;
	if (raftio_rotate_dek(rio) == 0)
		env_logf(env, ENV_LOG_INFO, "msg=\"raft storage: data key rotated\"");
}

static int raftio_m_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
			  raft_io_recv_cb recv)
{
	struct raftio *rio = raftio_of(io);
	if (raftio_down(rio) || rio->locked)
		return RAFT_IOERR;
	rio->tick_ms = msecs;
	rio->tick_cb = tick;
	rio->recv_cb = recv;
	/* libraft measures its timeouts with io->time; ticking a hundred times
	 * per heartbeat only makes it notice them sooner. Coarser ticks put
	 * followers whose randomized timeouts differ by a few milliseconds on
	 * the same tick: split votes, again and again (seen in the simulator;
	 * libraft draws a follower's timeout only at start and at elections). */
	msecs = msecs >= 100 ? msecs / 100 : 1;
	if (rio->env->ops->timer_start(rio->env, msecs, msecs, raftio_tick, rio,
				       &rio->tick_timer))
		return RAFT_NOMEM;
	if (rio->env->ops->timer_start(rio->env, LIMIT_RAFT_DEK_ROTATE_MS,
				       LIMIT_RAFT_DEK_ROTATE_MS, raftio_rotate_tick, rio,
				       &rio->rotate_timer)) {
		rio->env->ops->timer_stop(rio->env, rio->tick_timer);
		rio->tick_timer = 0;
		return RAFT_NOMEM;
	}
	return 0;
}

static void raftio_m_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct raftio *rio = raftio_of(io);
	rio->closing = true;
	if (!rio->dead) {
		raftio_batch_commit(rio); /* nothing when broken */
		if (rio->tick_timer)
			rio->env->ops->timer_stop(rio->env, rio->tick_timer);
		if (rio->flush_timer)
			rio->env->ops->timer_stop(rio->env, rio->flush_timer);
		if (rio->rotate_timer)
			rio->env->ops->timer_stop(rio->env, rio->rotate_timer);
	}
	rio->tick_timer = rio->flush_timer = rio->rotate_timer = 0;
	raftio_votes_forget(rio);
	raftio_outs_cancel(rio, RAFT_CANCELED);
	raftio_cancel_all(rio);
	if (rio->in.buf) {
		raft_free(rio->in.buf);
		rio->in.buf = NULL;
	}
	if (cb)
		cb(io);
}

/* Reads the snapshot row into a new raft_snapshot (raft_malloc'd), or
 * *out = NULL when there is none. */
static int raftio_read_snapshot(struct raftio *rio, struct raft_snapshot **out)
{
	sqlite3_stmt *st;
	struct raft_snapshot *snap = NULL;
	Cs__RaftConfig *conf = NULL;
	int rc, rv = 0;

	*out = NULL;
	if (sqlite3_prepare_v2(
		    rio->db,
		    "SELECT idx, term, conf, conf_idx, data, key FROM raft_snapshot"
		    " WHERE id = 1",
		    -1, &st, NULL) != SQLITE_OK)
		return RAFT_IOERR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		goto out;
	if (rc != SQLITE_ROW) {
		rv = RAFT_IOERR;
		goto out;
	}
	snap = raft_calloc(1, sizeof *snap);
	if (!snap) {
		rv = RAFT_NOMEM;
		goto out;
	}
	snap->index = (raft_index)sqlite3_column_int64(st, 0);
	snap->term = (raft_term)sqlite3_column_int64(st, 1);
	conf = cs__raft_config__unpack(NULL, (size_t)sqlite3_column_bytes(st, 2),
				       sqlite3_column_blob(st, 2));
	if (!conf) {
		rv = RAFT_CORRUPT;
		goto err_snap;
	}
	rv = raftio_decode_conf(conf, &snap->configuration);
	if (rv)
		goto err_snap;
	snap->configuration_index = (raft_index)sqlite3_column_int64(st, 3);
	snap->bufs = raft_malloc(sizeof *snap->bufs);
	if (!snap->bufs) {
		rv = RAFT_NOMEM;
		goto err_conf;
	}
	snap->n_bufs = 1;
	{
		size_t len = (size_t)sqlite3_column_bytes(st, 4), ad_len;
		uint8_t *ad;
		if (len < RAFTIO_ROW_EXTRA) {
			rv = RAFT_CORRUPT;
			raft_free(snap->bufs);
			goto err_conf;
		}
		snap->bufs[0].len = len - RAFTIO_ROW_EXTRA;
		snap->bufs[0].base =
			raft_malloc(snap->bufs[0].len ? snap->bufs[0].len : 1);
		if (!snap->bufs[0].base ||
		    raftio_ad_snapshot(&ad, &ad_len, snap->index, snap->term,
				       snap->configuration_index,
				       (uint64_t)sqlite3_column_int64(st, 5),
				       sqlite3_column_blob(st, 2),
				       (size_t)sqlite3_column_bytes(st, 2))) {
			rv = RAFT_NOMEM;
			raft_free(snap->bufs[0].base);
			raft_free(snap->bufs);
			goto err_conf;
		}
		rv = raftio_open_row(rio, (uint64_t)sqlite3_column_int64(st, 5), ad,
				     ad_len, sqlite3_column_blob(st, 4), len,
				     snap->bufs[0].base, "the snapshot", snap->index);
		free(ad);
		if (rv) {
			raft_free(snap->bufs[0].base);
			raft_free(snap->bufs);
			goto err_conf;
		}
	}
	*out = snap;
	goto out;
err_conf:
	raft_configuration_close(&snap->configuration);
err_snap:
	raft_free(snap);
out:
	if (conf)
		cs__raft_config__free_unpacked(conf, NULL);
	sqlite3_finalize(st);
	return rv;
}

static bool raftio_corrupt(const struct raftio *rio, int rv);
static int raftio_recover(struct raftio *rio, uint64_t term, raft_index *start_index);
static uint64_t raftio_recover_high(struct raftio *rio);
static int raftio_load_log(struct raftio *rio, struct raft_snapshot **snapshot,
			   raft_index *start_index, struct raft_entry *entries[],
			   size_t *n_entries);

static int raftio_m_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
			 struct raft_snapshot **snapshot, raft_index *start_index,
			 struct raft_entry *entries[], size_t *n_entries)
{
	struct raftio *rio = raftio_of(io);
	uint64_t t, v;
	int rv;

	*snapshot = NULL;
	*entries = NULL;
	*n_entries = 0;
	if (rio->locked) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage is locked: unlock it first (swarmctl node"
			 " unlock)\"");
		return RAFT_IOERR;
	}
	if ((rv = raftio_meta_get(rio, "term", &t)) ||
	    (rv = raftio_meta_get(rio, "vote", &v)) ||
	    (rv = raftio_meta_get(rio, "recover_term", &rio->recover_term)) ||
	    (rv = raftio_meta_get(rio, "recover_index", &rio->recover_index))) {
		if (rv == RAFT_CORRUPT)
			env_logf(
				rio->env, ENV_LOG_ERROR,
				"msg=\"raft storage: the term or the vote is corrupt: this"
				" manager cannot vote safely; remove it from the cluster and"
				" join it again with an empty state\"");
		return rv;
	}
	*term = t;
	*voted_for = v;
	rv = raftio_load_log(rio, snapshot, start_index, entries, n_entries);
	if (rv == 0 || !raftio_corrupt(rio, rv))
		return rv;
	return raftio_recover(rio, t, start_index);
}

/* Whether a load's failure rv is the content of the log (an entry or the
 * snapshot does not open, a hole; sqlite's pages malformed), not the disk
 * failing to read it. */
static bool raftio_corrupt(const struct raftio *rio, int rv)
{
	int code;
	if (rv == RAFT_CORRUPT)
		return true;
	if (rv != RAFT_IOERR)
		return false;
	code = sqlite3_errcode(rio->db) & 0xff;
	return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

/* The highest index the corrupt log may have held (an upper bound is
 * safe, a lower one is not, and a wild one stalls the recovery): the
 * largest of the last row that opens (its index is bound to it), min(idx) +
 * count - 1 (the rows are contiguous: a last row whose key was altered is
 * found by it), the snapshot's index and that kept from an earlier
 * recovery. Not max(idx) alone: a flipped key bit makes it huge. 0 when
 * sqlite reads none of them (the term rule alone ends the recovery). */
static uint64_t raftio_recover_high(struct raftio *rio)
{
	sqlite3_stmt *st;
	uint64_t high = rio->recover_index;

	if (sqlite3_prepare_v2(
		    rio->db,
		    "SELECT coalesce(min(idx) + count(*) - 1, 0),"
		    " (SELECT coalesce(max(idx), 0) FROM raft_snapshot) FROM raft_log",
		    -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			for (int i = 0; i < 2; i++)
				if ((uint64_t)sqlite3_column_int64(st, i) > high)
					high = (uint64_t)sqlite3_column_int64(st, i);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(
		    rio->db,
		    "SELECT idx, term, type, data, key FROM raft_log ORDER BY idx DESC",
		    -1, &st, NULL) != SQLITE_OK)
		return high;
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
		const struct raftio_dek *k =
			raftio_dek_find(rio, (uint64_t)sqlite3_column_int64(st, 4));
		size_t len = (size_t)sqlite3_column_bytes(st, 3);
		const uint8_t *row = sqlite3_column_blob(st, 3);
		uint8_t ad[RAFTIO_AD_ENTRY_BYTES], *out;

		if (idx <= high)
			break; /* nothing below raises it */
		if (!k || !row || len < RAFTIO_ROW_EXTRA)
			continue;
		out = raftio_scratch(rio, len);
		raftio_ad_entry(ad, idx, (uint64_t)sqlite3_column_int64(st, 1),
				(unsigned)sqlite3_column_int(st, 2), k->id);
		if (out && seal_open(k->key, row, ad, sizeof ad, row + SEAL_NONCE_BYTES,
				     len - SEAL_NONCE_BYTES, out) == 0) {
			high = idx;
			break;
		}
	}
	sqlite3_finalize(st);
	return high;
}

/* raftio_rebuild, inside the recovery's open transaction, when sqlite
 * cannot even delete the log's rows (its pages are malformed): the tables
 * but the log and the snapshot are copied aside (a temporary in-memory
 * database), the file is emptied in place (sqlite's
 * SQLITE_DBCONFIG_RESET_DATABASE, made for a damaged file: it cannot run
 * in a transaction, so the one open is rolled back first and opened again
 * after), the schema made again from the copy of sqlite_schema, and the
 * rows put back. Returns 0 or RAFT_IOERR (the caller refuses to start). */
static int raftio_rebuild(struct raftio *rio)
{
	static const char *const save =
		"ATTACH ':memory:' AS keep;"
		"CREATE TABLE keep.schema AS SELECT name, sql FROM main.sqlite_schema"
		" WHERE type = 'table' AND name NOT LIKE 'sqlite_%';"
		"CREATE TABLE keep.meta AS SELECT * FROM main.raft_meta;"
		"CREATE TABLE keep.kek AS SELECT * FROM main.raft_kek;"
		"CREATE TABLE keep.deks AS SELECT * FROM main.raft_deks;";
	static const char *const restore =
		"INSERT INTO main.raft_meta SELECT * FROM keep.meta;"
		"INSERT INTO main.raft_kek SELECT * FROM keep.kek;"
		"INSERT INTO main.raft_deks SELECT * FROM keep.deks;";
	sqlite3_stmt *st = NULL;
	int on = 0, rv = RAFT_IOERR;

	sqlite3_exec(rio->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(rio->db, "DETACH keep", NULL, NULL, NULL);
	if (raftio_exec(rio, save))
		goto out;
	if (sqlite3_db_config(rio->db, SQLITE_DBCONFIG_RESET_DATABASE, 1, &on) !=
	    SQLITE_OK)
		goto out;
	if (raftio_exec(rio, "VACUUM main")) {
		sqlite3_db_config(rio->db, SQLITE_DBCONFIG_RESET_DATABASE, 0, &on);
		goto out;
	}
	sqlite3_db_config(rio->db, SQLITE_DBCONFIG_RESET_DATABASE, 0, &on);
	if (raftio_exec(rio, "BEGIN") ||
	    sqlite3_prepare_v2(rio->db, "SELECT sql FROM keep.schema ORDER BY name", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *sql = (const char *)sqlite3_column_text(st, 0);
		if (!sql || raftio_exec(rio, sql))
			goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (raftio_exec(rio, restore) || raftio_exec(rio, "COMMIT"))
		goto out;
	rv = 0;
out:
	sqlite3_finalize(st);
	if (rv)
		sqlite3_exec(rio->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(rio->db, "DETACH keep", NULL, NULL, NULL);
	if (rv == 0 && raftio_exec(rio, "BEGIN"))
		rv = RAFT_IOERR; /* the caller's transaction, open again */
	if (rio->insert) {
		sqlite3_finalize(rio->insert);
		rio->insert = NULL;
	}
	env_logf(rio->env, rv ? ENV_LOG_ERROR : ENV_LOG_WARN,
		 "msg=\"raft storage: the file was rebuilt without its log\" ok=%d", !rv);
	return rv;
}

/* raftio_recover drops a corrupt log and snapshot (the term and the vote
 * stay) and marks the node recovering from term (see raftio.h): libraft
 * starts with an empty log, and the leader sends it entries or a snapshot.
 * Returns 0, or the storage's error when the log cannot be dropped (the
 * node then refuses to start, logged). */
static int raftio_recover(struct raftio *rio, uint64_t term, raft_index *start_index)
{
	uint64_t recover = rio->recover_term > term ? rio->recover_term : term;
	uint64_t high = raftio_recover_high(rio);

	env_logf(rio->env, ENV_LOG_ERROR,
		 "msg=\"raft storage: the log or the snapshot is corrupt: it is dropped"
		 " and the node recovers from its peers (no votes until it holds an"
		 " entry of a later term)\" term=%" PRIu64,
		 recover);
	if (raftio_exec(rio, "BEGIN") ||
	    (raftio_exec(rio, "DELETE FROM raft_log; DELETE FROM raft_snapshot;") &&
	     raftio_rebuild(rio)) ||
	    raftio_meta_set(rio, "recover_term", recover ? recover : 1) ||
	    raftio_meta_set(rio, "recover_index", high) || raftio_exec(rio, "COMMIT")) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage: the corrupt log cannot be dropped: remove"
			 " this manager from the cluster and join it again with an empty"
			 " state\" why=\"%s\"",
			 sqlite3_errmsg(rio->db));
		sqlite3_exec(rio->db, "ROLLBACK", NULL, NULL, NULL);
		return RAFT_CORRUPT;
	}
	rio->recover_term = recover ? recover : 1;
	rio->recover_index = high;
	rio->last_known = false;
	rio->recoveries++;
	*start_index = 1;
	return 0;
}

/* raftio_load_log: the snapshot and the entries, for raftio_m_load. */
static int raftio_load_log(struct raftio *rio, struct raft_snapshot **snapshot,
			   raft_index *start_index, struct raft_entry *entries[],
			   size_t *n_entries)
{
	sqlite3_stmt *st = NULL;
	uint64_t count = 0, bytes = 0, first = 0;
	struct raft_entry *es = NULL;
	uint8_t *batch = NULL, *cursor, ad[RAFTIO_AD_ENTRY_BYTES];
	int rv;

	if ((rv = raftio_read_snapshot(rio, snapshot)))
		return rv;
	*start_index = *snapshot ? (*snapshot)->index + 1 : 1;
	if (sqlite3_prepare_v2(rio->db,
			       "SELECT count(*), coalesce(sum(length(data)), 0),"
			       " coalesce(min(idx), 0) FROM raft_log",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rv = RAFT_IOERR;
		goto err;
	}
	count = (uint64_t)sqlite3_column_int64(st, 0);
	bytes = (uint64_t)sqlite3_column_int64(st, 1);
	first = (uint64_t)sqlite3_column_int64(st, 2);
	sqlite3_finalize(st);
	st = NULL;
	if (count == 0)
		return 0;
	if (bytes < count * RAFTIO_ROW_EXTRA) {
		rv = RAFT_CORRUPT; /* a row shorter than a nonce and a tag */
		goto err;
	}
	bytes -= count * RAFTIO_ROW_EXTRA; /* the payloads' */
	*start_index = first;
	es = raft_calloc(count, sizeof *es);
	batch = raft_malloc(bytes ? bytes : 1);
	if (!es || !batch) {
		rv = RAFT_NOMEM;
		goto err;
	}
	if (sqlite3_prepare_v2(
		    rio->db,
		    "SELECT idx, term, type, data, key FROM raft_log ORDER BY idx", -1,
		    &st, NULL) != SQLITE_OK) {
		rv = RAFT_IOERR;
		goto err;
	}
	cursor = batch;
	for (uint64_t i = 0; i < count; i++) {
		size_t len;
		if (sqlite3_step(st) != SQLITE_ROW ||
		    (uint64_t)sqlite3_column_int64(st, 0) != first + i) {
			rv = RAFT_CORRUPT; /* a hole in the log */
			goto err;
		}
		len = (size_t)sqlite3_column_bytes(st, 3);
		if (len < RAFTIO_ROW_EXTRA ||
		    (uint64_t)(cursor - batch) + len - RAFTIO_ROW_EXTRA > bytes) {
			rv = RAFT_CORRUPT;
			goto err;
		}
		es[i].term = (raft_term)sqlite3_column_int64(st, 1);
		es[i].type = (unsigned short)sqlite3_column_int(st, 2);
		raftio_ad_entry(ad, first + i, es[i].term, es[i].type,
				(uint64_t)sqlite3_column_int64(st, 4));
		if ((rv = raftio_open_row(rio, (uint64_t)sqlite3_column_int64(st, 4), ad,
					  sizeof ad, sqlite3_column_blob(st, 3), len,
					  cursor, "an entry", first + i)))
			goto err;
		len -= RAFTIO_ROW_EXTRA;
		es[i].buf.base = cursor;
		es[i].buf.len = len;
		es[i].batch = batch;
		cursor += len;
	}
	sqlite3_finalize(st);
	*entries = es;
	*n_entries = count;
	return 0;
err:
	sqlite3_finalize(st);
	raft_free(es);
	raft_free(batch);
	if (*snapshot) {
		raft_free((*snapshot)->bufs[0].base);
		raft_free((*snapshot)->bufs);
		raft_configuration_close(&(*snapshot)->configuration);
		raft_free(*snapshot);
		*snapshot = NULL;
	}
	return rv;
}

static int raftio_m_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
	struct raftio *rio = raftio_of(io);
	struct raft_buffer buf;
	const struct raftio_dek *k;
	sqlite3_stmt *st = NULL;
	uint8_t ad[RAFTIO_AD_ENTRY_BYTES], *row;
	uint64_t term, last;
	int rv, rc;

	if (rio->dead)
		return RAFT_IOERR;
	if (rio->locked) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage is locked: cannot bootstrap\"");
		return RAFT_IOERR;
	}
	/* a term is written with the bootstrap's entry (and by any later
	 * vote or append): a node that has one was bootstrapped, and a
	 * restart does not read its log here, which load checks (a corrupt
	 * log is dropped there and recovered from the peers; read here, it
	 * failed the start) */
	if ((rv = raftio_meta_get(rio, "term", &term))) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage: the term is unreadable or corrupt: this "
			 "manager refuses to start; remove it from the cluster and "
			 "join it again with an empty state\"");
		return rv;
	}
	if (term != 0)
		return RAFT_CANTBOOTSTRAP;
	if ((rv = raftio_last_index(rio, &last)))
		return rv;
	if (last != 0)
		return RAFT_CANTBOOTSTRAP;
	if (raftio_batch_commit(rio))
		return RAFT_IOERR;
	rio->last_known = false;
	if ((rv = raft_configuration_encode(conf, &buf)))
		return rv;
	raftio_scrub_conf(buf.base, buf.len);
	if (raftio_exec(rio, "BEGIN")) {
		raft_free(buf.base);
		return RAFT_IOERR;
	}
	k = raftio_wkey(rio);
	row = raftio_scratch(rio, buf.len + RAFTIO_ROW_EXTRA);
	rc = SQLITE_ERROR;
	if (k && row) {
		raftio_ad_entry(ad, 1, 1, RAFT_CHANGE, k->id);
		if (raftio_seal_row(rio, k, ad, sizeof ad, buf.base, buf.len, row) == 0)
			rc = sqlite3_prepare_v2(
				rio->db,
				"INSERT INTO raft_log (idx, term, type, data, key)"
				" VALUES (1, 1, ?, ?, ?)",
				-1, &st, NULL);
	}
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, RAFT_CHANGE);
		sqlite3_bind_blob(st, 2, row, (int)(buf.len + RAFTIO_ROW_EXTRA),
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)k->id);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(st);
	}
	raft_free(buf.base);
	if (rc != SQLITE_OK || raftio_meta_set(rio, "term", 1) ||
	    raftio_exec(rio, "COMMIT")) {
		raftio_exec(rio, "ROLLBACK");
		/* the data key drawn may be lost with it: stop (nothing was
		 * acknowledged; a restart bootstraps again) */
		raftio_break(rio, "the bootstrap");
		return RAFT_IOERR;
	}
	return 0;
}

/* Forced recovery (raft_recover; swarmd --force-new-cluster): appends conf as
 * a RAFT_CHANGE entry after the last one stored (or the snapshot), at the
 * current term (no lower than any entry's), durably, before libraft loads the
 * log, and the current term one past it; libraft then takes it as the
 * configuration (uncommitted until this node, its only voter, commits it with
 * everything before it). Nothing is removed. Refused on an empty log (nothing to recover: bootstrap instead). */
static int raftio_m_recover(struct raft_io *io, const struct raft_configuration *conf)
{
	struct raftio *rio = raftio_of(io);
	struct raft_buffer buf;
	const struct raftio_dek *k;
	sqlite3_stmt *st = NULL;
	uint8_t ad[RAFTIO_AD_ENTRY_BYTES], *row;
	uint64_t term, last;
	int rv, rc;

	assert(conf != NULL);
	if (raftio_down(rio))
		return RAFT_IOERR;
	if (rio->locked) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft storage is locked: cannot recover\"");
		return RAFT_IOERR;
	}
	if (raftio_batch_commit(rio))
		return RAFT_IOERR;
	rio->last_known = false;
	if ((rv = raftio_meta_get(rio, "term", &term)) ||
	    (rv = raftio_last_index(rio, &last)))
		return rv;
	if (last == 0)
		return RAFT_CANTBOOTSTRAP; /* an empty log: nothing to recover */
	if (term == 0)
		term = 1;
	rio->last_known = false;
	if ((rv = raft_configuration_encode(conf, &buf)))
		return rv;
	raftio_scrub_conf(buf.base, buf.len);
	if (raftio_exec(rio, "BEGIN")) {
		raft_free(buf.base);
		return RAFT_IOERR;
	}
	k = raftio_wkey(rio);
	row = raftio_scratch(rio, buf.len + RAFTIO_ROW_EXTRA);
	rc = SQLITE_ERROR;
	if (k && row) {
		raftio_ad_entry(ad, last + 1, term, RAFT_CHANGE, k->id);
		if (raftio_seal_row(rio, k, ad, sizeof ad, buf.base, buf.len, row) == 0)
			rc = sqlite3_prepare_v2(
				rio->db,
				"INSERT INTO raft_log (idx, term, type, data, key)"
				" VALUES (?, ?, ?, ?, ?)",
				-1, &st, NULL);
	}
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(last + 1));
		sqlite3_bind_int64(st, 2, (sqlite3_int64)term);
		sqlite3_bind_int(st, 3, RAFT_CHANGE);
		sqlite3_bind_blob(st, 4, row, (int)(buf.len + RAFTIO_ROW_EXTRA),
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)k->id);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(st);
	}
	raft_free(buf.base);
	/* the current term moves one past the entry's, the vote cleared:
	 * libraft with pre-vote makes a lone voter leader at the term it
	 * loads, and the term this node last knew may have had a leader */
	if (rc != SQLITE_OK || raftio_meta_set(rio, "term", term + 1) ||
	    raftio_meta_set(rio, "vote", 0) || raftio_exec(rio, "COMMIT")) {
		raftio_exec(rio, "ROLLBACK");
		raftio_break(rio, "the forced recovery");
		return RAFT_IOERR;
	}
	rio->last_known = false;
	env_logf(rio->env, ENV_LOG_WARN,
		 "msg=\"raft: forced a new configuration\" index=%" PRIu64
		 " term=%" PRIu64 " voters=%u",
		 last + 1, term, conf->n);
	return 0;
}

int raftio_restore(struct raftio *rio, const struct raft_configuration *conf,
		   uint64_t index, uint64_t term, const uint8_t *data, size_t len)
{
	const struct raftio_dek *k;
	Cs__RaftConfig *c;
	sqlite3_stmt *st = NULL;
	uint8_t *conf_buf = NULL, *sealed = NULL, *ad = NULL;
	size_t conf_len, ad_len = 0;
	uint64_t cur, last;
	int rv = CS_ENOMEM;

	assert(conf != NULL);
	if (raftio_down(rio) || rio->locked || index == 0 || term == 0)
		return CS_EINVAL;
	if (raftio_batch_commit(rio))
		return CS_ESTORAGE;
	rio->last_known = false;
	if (raftio_meta_get(rio, "term", &cur) || raftio_last_index(rio, &last))
		return CS_ESTORAGE;
	if (cur != 0 || last != 0)
		return CS_EEXIST;
	c = raftio_encode_conf(conf);
	if (!c)
		return CS_ENOMEM;
	conf_len = cs__raft_config__get_packed_size(c);
	conf_buf = malloc(conf_len ? conf_len : 1);
	sealed = malloc(len + RAFTIO_ROW_EXTRA);
	if (!conf_buf || !sealed)
		goto out;
	cs__raft_config__pack(c, conf_buf);
	rv = CS_ESTORAGE;
	if (raftio_exec(rio, "BEGIN"))
		goto out;
	if (!(k = raftio_wkey(rio)) ||
	    raftio_ad_snapshot(&ad, &ad_len, index, term, index, k->id, conf_buf,
			       conf_len) ||
	    raftio_seal_row(rio, k, ad, ad_len, data, len, sealed) ||
	    sqlite3_prepare_v2(rio->db,
			       "INSERT INTO raft_snapshot (id, idx, term, conf,"
			       " conf_idx, data, key) VALUES (1, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)term);
	sqlite3_bind_blob(st, 3, conf_buf, (int)conf_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)index);
	sqlite3_bind_blob(st, 5, sealed, (int)(len + RAFTIO_ROW_EXTRA), SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)k->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto rollback;
	/* one past the snapshot's term: a lone voter under pre-vote leads at
	 * the term it loads (as after raftio_m_recover) */
	if (raftio_meta_set(rio, "term", term + 1) || raftio_meta_set(rio, "vote", 0) ||
	    raftio_exec(rio, "COMMIT"))
		goto rollback;
	rio->last_known = false;
	env_logf(rio->env, ENV_LOG_WARN,
		 "msg=\"raft: log seeded from a backup\" index=%" PRIu64 " term=%" PRIu64
		 " bytes=%zu",
		 index, term, len);
	rv = 0;
	goto out;
rollback:
	raftio_exec(rio, "ROLLBACK");
	raftio_break(rio, "the restore");
	rv = CS_ESTORAGE;
out:
	sqlite3_finalize(st);
	free(conf_buf);
	free(sealed);
	free(ad);
	raftio_free_conf(c);
	return rv;
}

static int raftio_m_set_term(struct raft_io *io, raft_term term)
{
	struct raftio *rio = raftio_of(io);
	raftio_votes_forget(rio); /* a new term: no candidacy of the old one */
	if (raftio_batch_commit(rio))
		return RAFT_IOERR;
	if (raftio_exec(rio, "BEGIN") || raftio_meta_set(rio, "term", term) ||
	    raftio_meta_set(rio, "vote", 0) || raftio_exec(rio, "COMMIT")) {
		raftio_break(rio, "setting the term");
		return RAFT_IOERR;
	}
	return 0;
}

static int raftio_m_set_vote(struct raft_io *io, raft_id server_id)
{
	struct raftio *rio = raftio_of(io);
	if (raftio_batch_commit(rio))
		return RAFT_IOERR;
	if (raftio_meta_set(rio, "vote", server_id)) {
		raftio_break(rio, "setting the vote");
		return RAFT_IOERR;
	}
	return 0;
}

/* Appends in one sqlite transaction: durable (synchronous=FULL where the env
 * asks it) before the callback is even queued. */
static int raftio_m_append(struct raft_io *io, struct raft_io_append *req,
			   const struct raft_entry entries[], unsigned n,
			   raft_io_append_cb cb)
{
	struct raftio *rio = raftio_of(io);
	const struct raftio_dek *k;
	struct raftio_req *r;
	sqlite3_stmt *st;
	uint64_t last;
	int rv = 0;

	if (raftio_down(rio) || rio->closing)
		return RAFT_IOERR;
	r = calloc(1, sizeof *r);
	if (!r)
		return RAFT_NOMEM; /* nothing written */
	if (raftio_last_index(rio, &last)) {
		rv = RAFT_IOERR;
		goto err;
	}
	if (!rio->batch_open) {
		if (raftio_exec(rio, "BEGIN")) {
			rv = RAFT_IOERR;
			goto err;
		}
		rio->batch_open = true;
	}
	if (!rio->insert &&
	    sqlite3_prepare_v3(
		    rio->db,
		    "INSERT OR REPLACE INTO raft_log (idx, term, type, data, key)"
		    " VALUES (?, ?, ?, ?, ?)",
		    -1, SQLITE_PREPARE_PERSISTENT, &rio->insert, NULL) != SQLITE_OK) {
		rio->insert = NULL;
		rv = RAFT_IOERR;
		goto err;
	}
	if (!(k = raftio_wkey(rio))) {
		rv = RAFT_IOERR; /* the data key's write failed */
		goto err;
	}
	st = rio->insert;
	for (unsigned i = 0; i < n && rv == 0; i++) {
		uint8_t ad[RAFTIO_AD_ENTRY_BYTES], *row;
		size_t len = entries[i].buf.len;
		if (entries[i].type == RAFT_CHANGE)
			raftio_scrub_conf(entries[i].buf.base, len);
		row = raftio_scratch(rio, len + RAFTIO_ROW_EXTRA);
		raftio_ad_entry(ad, last + 1 + i, entries[i].term, entries[i].type,
				k->id);
		if (!row || raftio_seal_row(rio, k, ad, sizeof ad, entries[i].buf.base,
					    len, row)) {
			rv = RAFT_NOMEM;
			break;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(last + 1 + i));
		sqlite3_bind_int64(st, 2, (sqlite3_int64)entries[i].term);
		sqlite3_bind_int(st, 3, entries[i].type);
		sqlite3_bind_blob(st, 4, row, (int)(len + RAFTIO_ROW_EXTRA),
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)k->id);
		if (sqlite3_step(st) != SQLITE_DONE)
			rv = RAFT_IOERR;
		sqlite3_reset(st);
	}
	sqlite3_clear_bindings(st);
	if (rv)
		goto err;
	if (rio->recover_term && n > 0 &&
	    (entries[n - 1].term > rio->recover_term ||
	     (rio->recover_index && last + n >= rio->recover_index))) {
		/* durable with these entries, by the same commit */
		if (raftio_meta_set(rio, "recover_term", 0) ||
		    raftio_meta_set(rio, "recover_index", 0)) {
			rv = RAFT_IOERR;
			goto err;
		}
		env_logf(
			rio->env, ENV_LOG_INFO,
			"msg=\"raft storage: recovered from peers: votes again\" term=%" PRIu64,
			(uint64_t)entries[n - 1].term);
		rio->recover_term = 0;
		rio->recover_index = 0;
	}
	rio->last_index = last + n;
	/* committed by the flush that runs the callback, with the other
	 * appends of this turn */
	req->cb = cb;
	r->kind = RAFTIO_APPEND;
	r->req.append = req;
	if (raftio_defer(rio, r)) {
		rv = RAFT_NOMEM;
		goto err;
	}
	return 0;
err:
	/* the turn's batch goes with it, though earlier appends of the turn
	 * were accepted: the log is not what libraft believes, so stop */
	free(r);
	raftio_break(rio, "an append");
	return rv;
}

static int raftio_m_truncate(struct raft_io *io, raft_index index)
{
	struct raftio *rio = raftio_of(io);
	sqlite3_stmt *st;
	int rc;

	if (raftio_batch_commit(rio))
		return RAFT_IOERR;
	rio->last_known = false;
	if (sqlite3_prepare_v2(rio->db, "DELETE FROM raft_log WHERE idx >= ?", -1, &st,
			       NULL) != SQLITE_OK) {
		raftio_break(rio, "a truncation");
		return RAFT_IOERR;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		raftio_break(rio, "a truncation");
		return RAFT_IOERR;
	}
	return 0;
}

/* Stores the snapshot and drops the log behind it: everything when trailing
 * is 0 (a snapshot installed from the leader), else all but the last
 * `trailing` entries before the snapshot's index. */
static int raftio_m_snapshot_put(struct raft_io *io, unsigned trailing,
				 struct raft_io_snapshot_put *req,
				 const struct raft_snapshot *snapshot,
				 raft_io_snapshot_put_cb cb)
{
	struct raftio *rio = raftio_of(io);
	const struct raftio_dek *k;
	Cs__RaftConfig *conf;
	struct raftio_req *r;
	sqlite3_stmt *st = NULL;
	uint8_t *conf_buf = NULL, *data = NULL, *sealed = NULL, *ad = NULL;
	size_t conf_len, data_len = 0, ad_len = 0;
	int rv = RAFT_IOERR;

	if (raftio_down(rio) || rio->closing)
		return RAFT_IOERR;
	r = calloc(1, sizeof *r);
	conf = raftio_encode_conf(&snapshot->configuration);
	for (unsigned i = 0; i < snapshot->n_bufs; i++)
		data_len += snapshot->bufs[i].len;
	data = malloc(data_len ? data_len : 1);
	if (!r || !conf || !data) {
		rv = RAFT_NOMEM;
		goto out;
	}
	conf_len = cs__raft_config__get_packed_size(conf);
	conf_buf = malloc(conf_len ? conf_len : 1);
	if (!conf_buf) {
		rv = RAFT_NOMEM;
		goto out;
	}
	cs__raft_config__pack(conf, conf_buf);
	for (size_t i = 0, off = 0; i < snapshot->n_bufs; i++) {
		if (snapshot->bufs[i].len)
			memcpy(data + off, snapshot->bufs[i].base, snapshot->bufs[i].len);
		off += snapshot->bufs[i].len;
	}
	rio->last_known = false;
	if (raftio_batch_commit(rio))
		goto out;
	if (raftio_exec(rio, "BEGIN") || !(k = raftio_wkey(rio)))
		goto rollback;
	sealed = malloc(data_len + RAFTIO_ROW_EXTRA);
	if (!sealed ||
	    raftio_ad_snapshot(&ad, &ad_len, snapshot->index, snapshot->term,
			       snapshot->configuration_index, k->id, conf_buf,
			       conf_len) ||
	    raftio_seal_row(rio, k, ad, ad_len, data, data_len, sealed))
		goto rollback;
	if (sqlite3_prepare_v2(
		    rio->db,
		    "INSERT OR REPLACE INTO raft_snapshot (id, idx, term, conf,"
		    " conf_idx, data, key) VALUES (1, ?, ?, ?, ?, ?, ?)",
		    -1, &st, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)snapshot->index);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)snapshot->term);
	sqlite3_bind_blob(st, 3, conf_buf, (int)conf_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)snapshot->configuration_index);
	sqlite3_bind_blob(st, 5, sealed, (int)(data_len + RAFTIO_ROW_EXTRA),
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)k->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto rollback;
	sqlite3_finalize(st);
	st = NULL;
	if (trailing == 0) {
		if (raftio_exec(rio, "DELETE FROM raft_log"))
			goto rollback;
	} else if (snapshot->index > trailing) {
		if (sqlite3_prepare_v2(rio->db, "DELETE FROM raft_log WHERE idx <= ?", -1,
				       &st, NULL) != SQLITE_OK)
			goto rollback;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(snapshot->index - trailing));
		if (sqlite3_step(st) != SQLITE_DONE)
			goto rollback;
	}
	/* an installed snapshot of a later term ends a recovery (raftio.h) */
	bool recovered = rio->recover_term &&
			 (snapshot->term > rio->recover_term ||
			  (rio->recover_index && snapshot->index >= rio->recover_index));
	if (recovered && (raftio_meta_set(rio, "recover_term", 0) ||
			  raftio_meta_set(rio, "recover_index", 0)))
		goto rollback;
	/* the data keys of the rows just dropped may be unused now */
	if (raftio_deks_gc(rio) || raftio_exec(rio, "COMMIT"))
		goto rollback;
	if (recovered) {
		rio->recover_index = 0;
		env_logf(rio->env, ENV_LOG_INFO,
			 "msg=\"raft storage: recovered from peers by a snapshot: votes"
			 " again\" term=%" PRIu64,
			 (uint64_t)snapshot->term);
		rio->recover_term = 0;
	}
	req->cb = cb;
	r->kind = RAFTIO_SNAP_PUT;
	r->req.put = req;
	rv = raftio_defer(rio, r);
	if (rv == 0)
		r = NULL;
	else
		raftio_break(rio, "reporting a snapshot stored");
	goto out;
rollback:
	raftio_exec(rio, "ROLLBACK");
	raftio_break(rio, "storing a snapshot");
	rv = RAFT_IOERR;
out:
	sqlite3_finalize(st);
	free(r);
	free(conf_buf);
	free(data);
	free(sealed);
	free(ad);
	raftio_free_conf(conf);
	return rv;
}

static int raftio_m_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
				 raft_io_snapshot_get_cb cb)
{
	struct raftio *rio = raftio_of(io);
	struct raftio_req *r;
	int rv;

	if (raftio_down(rio) || rio->closing)
		return RAFT_IOERR;
	r = calloc(1, sizeof *r);
	if (!r)
		return RAFT_NOMEM;
	rv = raftio_read_snapshot(rio, &r->snapshot);
	if (rv) {
		free(r);
		/* a snapshot found corrupt while running (issue 19): serve
		 * nothing from it; the restart's load drops it and recovers */
		if (raftio_corrupt(rio, rv)) {
			env_logf(rio->env, ENV_LOG_ERROR,
				 "msg=\"raft storage: the snapshot is corrupt: the node"
				 " stops\"");
			rio->broken = true;
			rio->env->ops->exit(rio->env,
					    "raft storage: the snapshot is corrupt");
		}
		return rv;
	}
	req->cb = cb;
	r->kind = RAFTIO_SNAP_GET;
	r->req.get = req;
	r->status = r->snapshot ? 0 : RAFT_NOTFOUND;
	rv = raftio_defer(rio, r);
	if (rv) {
		if (r->snapshot) {
			raft_free(r->snapshot->bufs[0].base);
			raft_free(r->snapshot->bufs);
			raft_configuration_close(&r->snapshot->configuration);
			raft_free(r->snapshot);
		}
		free(r);
	}
	return rv;
}

static raft_time raftio_m_time(struct raft_io *io)
{
	struct raftio *rio = raftio_of(io);
	return rio->env->ops->now_ms(rio->env);
}

static int raftio_m_random(struct raft_io *io, int min, int max)
{
	struct raftio *rio = raftio_of(io);
	uint64_t span;
	assert(min <= max);
	span = (uint64_t)((int64_t)max - (int64_t)min) + 1;
	return (int)((int64_t)min +
		     (int64_t)(rio->env->ops->random_u64(rio->env) % span));
}

/* ---------------------------------------------------------------- the wire */

/* The largest frame rio sends. */
static size_t raftio_frame_max(const struct raftio *rio)
{
	return rio->frame_max && rio->frame_max < LIMIT_FRAME_BYTES_MAX
		       ? rio->frame_max
		       : LIMIT_FRAME_BYTES_MAX;
}

/* Bytes of x as a protobuf varint. */
static size_t raftio_varint_len(uint64_t x)
{
	size_t n = 1;
	while (x >= 0x80) {
		x >>= 7;
		n++;
	}
	return n;
}

/* Keeps in msg the longest prefix of its entries whose Wire frame fits
 * rio's frame. Returns 0 (*len is the new frame's size) or RAFT_TOOBIG when
 * not even the first entry fits (logged: it can never be sent). */
static int raftio_cut_entries(struct raftio *rio, Cs__Wire *wire, Cs__RaftMessage *msg,
			      size_t *len)
{
	size_t n = msg->n_entries, head, room, used = 0, k = 0;

	msg->n_entries = 0;
	head = cs__wire__get_packed_size(wire);
	/* + the Wire's raft field length, which grows with the entries */
	room = head + 8 < raftio_frame_max(rio) ? raftio_frame_max(rio) - head - 8 : 0;
	while (k < n) {
		size_t e = cs__raft_entry__get_packed_size(msg->entries[k]);
		e += 1 + raftio_varint_len(e); /* field 15's tag and length */
		if (used + e > room)
			break;
		used += e;
		k++;
	}
	if (k == 0) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft entry larger than a frame: it cannot be sent\""
			 " bytes=%zu frame_max=%zu",
			 msg->entries[0]->data.len, raftio_frame_max(rio));
		msg->n_entries = n;
		return RAFT_TOOBIG;
	}
	msg->n_entries = k;
	*len = cs__wire__get_packed_size(wire);
	assert(*len <= raftio_frame_max(rio));
	rio->cut_appends++;
	env_logf(rio->env, ENV_LOG_DEBUG,
		 "msg=\"append entries cut to a frame\" sent=%zu of=%zu prev=%" PRIu64, k,
		 n, msg->prev_log_index);
	return 0;
}

static int raftio_send_chunked(struct raftio *rio, const struct raft_message *m,
			       struct raftio_req *r);

/* Encodes message as a Wire frame and sends it; returns 0 or a RAFT_ code.
 * An AppendEntries too large for a frame goes cut to a prefix: *cut is set
 * (the caller reports RAFT_TOOBIG to libraft, see raftio.h). */
static int raftio_wire_send(struct raftio *rio, const struct raft_message *m, bool *cut)
{
	Cs__RaftMessage msg = CS__RAFT_MESSAGE__INIT;
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__RaftEntry *entry_objs = NULL, **entry_ptrs = NULL;
	Cs__RaftConfig *conf = NULL;
	uint8_t *buf = NULL;
	size_t len;
	int rv = 0;

	if (!m->server_address || !*m->server_address)
		return RAFT_NOCONNECTION;
	msg.type = m->type;
	msg.from_id = rio->id;
	msg.from_address = rio->address;
	switch (m->type) {
	case RAFT_IO_REQUEST_VOTE:
		msg.term = m->request_vote.term;
		msg.candidate_id = m->request_vote.candidate_id;
		msg.last_log_index = m->request_vote.last_log_index;
		msg.last_log_term = m->request_vote.last_log_term;
		msg.disrupt_leader = m->request_vote.disrupt_leader;
		msg.pre_vote = m->request_vote.pre_vote;
		break;
	case RAFT_IO_REQUEST_VOTE_RESULT:
		msg.term = m->request_vote_result.term;
		msg.vote_granted = m->request_vote_result.vote_granted;
		msg.pre_vote_result = (int32_t)m->request_vote_result.pre_vote;
		break;
	case RAFT_IO_APPEND_ENTRIES: {
		const struct raft_append_entries *ae = &m->append_entries;
		msg.term = ae->term;
		msg.prev_log_index = ae->prev_log_index;
		msg.prev_log_term = ae->prev_log_term;
		msg.leader_commit = ae->leader_commit;
		if (ae->n_entries) {
			entry_objs = calloc(ae->n_entries, sizeof *entry_objs);
			entry_ptrs = calloc(ae->n_entries, sizeof *entry_ptrs);
			if (!entry_objs || !entry_ptrs) {
				rv = RAFT_NOMEM;
				goto out;
			}
			for (unsigned i = 0; i < ae->n_entries; i++) {
				if (ae->entries[i].type == RAFT_CHANGE)
					raftio_scrub_conf(ae->entries[i].buf.base,
							  ae->entries[i].buf.len);
				cs__raft_entry__init(&entry_objs[i]);
				entry_objs[i].term = ae->entries[i].term;
				entry_objs[i].type = ae->entries[i].type;
				entry_objs[i].data.data = ae->entries[i].buf.base;
				entry_objs[i].data.len = ae->entries[i].buf.len;
				entry_ptrs[i] = &entry_objs[i];
			}
			msg.n_entries = ae->n_entries;
			msg.entries = entry_ptrs;
		}
		break;
	}
	case RAFT_IO_APPEND_ENTRIES_RESULT:
		msg.term = m->append_entries_result.term;
		msg.rejected = m->append_entries_result.rejected;
		msg.last_log_index = m->append_entries_result.last_log_index;
		break;
	case RAFT_IO_INSTALL_SNAPSHOT: {
		const struct raft_install_snapshot *is = &m->install_snapshot;
		msg.term = is->term;
		msg.snapshot_index = is->last_index;
		msg.snapshot_term = is->last_term;
		msg.conf_index = is->conf_index;
		msg.data.data = is->data.base;
		msg.data.len = is->data.len;
		conf = raftio_encode_conf(&is->conf);
		if (!conf) {
			rv = RAFT_NOMEM;
			goto out;
		}
		msg.conf = conf;
		break;
	}
	case RAFT_IO_TIMEOUT_NOW:
		msg.term = m->timeout_now.term;
		msg.last_log_index = m->timeout_now.last_log_index;
		msg.last_log_term = m->timeout_now.last_log_term;
		break;
	default: return RAFT_MALFORMED;
	}
	wire.raft = &msg;
	len = cs__wire__get_packed_size(&wire);
	if (len > raftio_frame_max(rio) && m->type == RAFT_IO_APPEND_ENTRIES &&
	    msg.n_entries > 0) {
		if ((rv = raftio_cut_entries(rio, &wire, &msg, &len)))
			goto out;
		*cut = true;
	}
	if (len > raftio_frame_max(rio)) {
		env_logf(rio->env, ENV_LOG_ERROR,
			 "msg=\"raft message larger than a frame: not sent\" type=%u"
			 " bytes=%zu frame_max=%zu",
			 (unsigned)m->type, len, raftio_frame_max(rio));
		rv = RAFT_TOOBIG;
		goto out;
	}
	buf = malloc(len ? len : 1);
	if (!buf) {
		rv = RAFT_NOMEM;
		goto out;
	}
	cs__wire__pack(&wire, buf);
	if (rio->env->ops->send(rio->env, m->server_address, buf, len))
		rv = RAFT_NOCONNECTION;
	else
		rio->sent_bytes += len;
out:
	free(buf);
	free(entry_objs);
	free(entry_ptrs);
	raftio_free_conf(conf);
	return rv;
}

static void raftio_out_free(struct raftio_out *o)
{
	raftio_free_conf(o->conf);
	free(o);
}

/* Queues o's next chunks while the transport takes them. Returns 1 once
 * all are queued, 0 when the peer's queue is full (try again later), or a
 * RAFT_ error. */
static int raftio_out_pump(struct raftio *rio, struct raftio_out *o)
{
	Cs__Wire wire = CS__WIRE__INIT;
	uint8_t *buf = NULL;
	int rv = 1;

	wire.raft = &o->msg;
	while (o->offset < o->total) {
		size_t n =
			o->total - o->offset < o->chunk ? o->total - o->offset : o->chunk;
		size_t len;
		int sent;

		o->msg.chunk_offset = o->offset;
		o->msg.data.data = (uint8_t *)o->data + o->offset;
		o->msg.data.len = n;
		len = cs__wire__get_packed_size(&wire);
		assert(len <= raftio_frame_max(rio));
		if (!buf && !(buf = malloc(raftio_frame_max(rio)))) {
			rv = RAFT_NOMEM;
			break;
		}
		cs__wire__pack(&wire, buf);
		sent = rio->env->ops->send(rio->env, o->addr, buf, len);
		if (sent == CS_EAGAIN) {
			rv = 0;
			break;
		}
		if (sent) {
			rv = RAFT_NOCONNECTION;
			break;
		}
		o->offset += n;
		o->last_ms = rio->env->ops->now_ms(rio->env);
		rio->sent_bytes += len;
		rio->chunks_sent++;
	}
	free(buf);
	return rv;
}

/* Sends an InstallSnapshot larger than a frame in chunks (see raftio.h);
 * r is its completion, run once the last chunk is queued or it failed.
 * Returns 0 or a RAFT_ error (r freed). */
static int raftio_send_chunked(struct raftio *rio, const struct raft_message *m,
			       struct raftio_req *r)
{
	const struct raft_install_snapshot *is = &m->install_snapshot;
	struct raftio_out *o;
	Cs__Wire wire = CS__WIRE__INIT;
	size_t head;
	int rv;

	if (!m->server_address || !*m->server_address ||
	    strlen(m->server_address) >= sizeof o->addr) {
		free(r);
		return RAFT_NOCONNECTION;
	}
	o = calloc(1, sizeof *o);
	if (!o) {
		free(r);
		return RAFT_NOMEM;
	}
	o->r = r;
	memcpy(o->addr, m->server_address, strlen(m->server_address) + 1);
	cs__raft_message__init(&o->msg);
	o->msg.type = m->type;
	o->msg.from_id = rio->id;
	o->msg.from_address = rio->address;
	o->msg.term = is->term;
	o->msg.snapshot_index = is->last_index;
	o->msg.snapshot_term = is->last_term;
	o->msg.conf_index = is->conf_index;
	o->conf = raftio_encode_conf(&is->conf);
	if (!o->conf) {
		rv = RAFT_NOMEM;
		goto err;
	}
	o->msg.conf = o->conf;
	o->msg.chunk_id = ++rio->next_chunk_id;
	o->msg.chunk_total = is->data.len;
	o->data = is->data.base;
	o->total = is->data.len;
	/* the header at its largest: an offset as large as the total */
	o->msg.chunk_offset = o->total;
	wire.raft = &o->msg;
	head = cs__wire__get_packed_size(&wire);
	if (head + 64 > raftio_frame_max(rio)) {
		env_logf(
			rio->env, ENV_LOG_ERROR,
			"msg=\"snapshot header larger than a frame: not sent\" bytes=%zu",
			head);
		rv = RAFT_TOOBIG;
		goto err;
	}
	/* + the data field's tag and length, + the raft field's length */
	o->chunk = raftio_frame_max(rio) - head - 16;
	o->last_ms = rio->env->ops->now_ms(rio->env);
	env_logf(rio->env, ENV_LOG_INFO,
		 "msg=\"snapshot sent in chunks\" to=%s index=%" PRIu64
		 " bytes=%zu chunks=%zu",
		 o->addr, (uint64_t)is->last_index, o->total,
		 (o->total + o->chunk - 1) / o->chunk);
	rv = raftio_out_pump(rio, o);
	if (rv < 0)
		goto err;
	if (rv == 1) { /* all queued at once */
		rv = raftio_defer(rio, r);
		raftio_out_free(o);
		if (rv)
			free(r);
		return rv;
	}
	o->next = rio->outs;
	rio->outs = o;
	return 0;
err:
	free(r);
	raftio_out_free(o);
	return rv;
}

/* On every tick: pushes the snapshots going out; completes those done,
 * or stuck for LIMIT_RAFT_CHUNK_IDLE_MS (their queue stayed full). */
static void raftio_outs_pump(struct raftio *rio)
{
	struct raftio_out **p = &rio->outs;
	ms_t now = rio->env->ops->now_ms(rio->env);

	while (*p) {
		struct raftio_out *o = *p;
		int rv = raftio_out_pump(rio, o);
		if (rv == 0 && now - o->last_ms < LIMIT_RAFT_CHUNK_IDLE_MS) {
			p = &o->next;
			continue;
		}
		if (rv == 0) {
			env_logf(
				rio->env, ENV_LOG_WARN,
				"msg=\"snapshot transfer stalled: abandoned\" to=%s sent=%zu"
				" of=%zu",
				o->addr, o->offset, o->total);
			rv = RAFT_NOCONNECTION;
		}
		*p = o->next;
		o->r->status = rv == 1 ? 0 : rv;
		raftio_complete(o->r); /* a timer's callback: not inside a call */
		raftio_out_free(o);
	}
}

/* Completes every snapshot going out with status (close), now. */
static void raftio_outs_cancel(struct raftio *rio, int status)
{
	while (rio->outs) {
		struct raftio_out *o = rio->outs;
		rio->outs = o->next;
		o->r->status = status;
		raftio_complete(o->r);
		raftio_out_free(o);
	}
}

/* Clamps a successful AppendEntriesResult to the verified prefix (see
 * raftio.h). Returns the message to send (m itself, or *copy). */
static const struct raft_message *raftio_clamp_result(struct raftio *rio,
						      const struct raft_message *m,
						      struct raft_message *copy)
{
	uint64_t end;

	if (m->type != RAFT_IO_APPEND_ENTRIES_RESULT || m->append_entries_result.rejected)
		return m;
	if (rio->in_append) {
		rio->answered = true;
		end = rio->append_end; /* a synchronous answer to this request */
	} else {
		end = rio->verified_end; /* the answer to an append just stored */
	}
	if (m->append_entries_result.term != rio->verified_term && !rio->in_append)
		return m; /* no request of this term seen: nothing to clamp to */
	if (rio->in_append && m->append_entries_result.term == rio->verified_term &&
	    end > rio->verified_end)
		rio->verified_end = end;
	if (m->append_entries_result.last_log_index <= end)
		return m;
	*copy = *m;
	copy->append_entries_result.last_log_index = end;
	return copy;
}

static int raftio_m_send(struct raft_io *io, struct raft_io_send *req,
			 const struct raft_message *message, raft_io_send_cb cb)
{
	struct raftio *rio = raftio_of(io);
	struct raft_message copy;
	struct raftio_req *r;
	bool cut = false;

	if (raftio_down(rio) || rio->closing)
		return RAFT_IOERR;
	message = raftio_clamp_result(rio, message, &copy);
	r = calloc(1, sizeof *r);
	if (!r)
		return RAFT_NOMEM;
	req->cb = cb;
	r->kind = RAFTIO_SEND;
	r->req.send = req;
	/* Only a leader sends these: it is in contact with a leader (itself),
	 * so its lease holds and RequestVotes keep libraft's own check (a
	 * leader grants none but a transfer's). Without this, a leader never
	 * heard an AppendEntries and after lease_ms granted any vote: a
	 * follower that merely stopped hearing it deposed it. */
	if (message->type == RAFT_IO_APPEND_ENTRIES ||
	    message->type == RAFT_IO_INSTALL_SNAPSHOT)
		rio->last_leader_contact_ms = rio->env->ops->now_ms(rio->env);
	/* what only a leader sends: no candidacy any more */
	if (message->type == RAFT_IO_APPEND_ENTRIES ||
	    message->type == RAFT_IO_INSTALL_SNAPSHOT ||
	    message->type == RAFT_IO_TIMEOUT_NOW)
		raftio_votes_forget(rio);
	if (message->type == RAFT_IO_REQUEST_VOTE && rio->recover_term) {
		/* no candidacy while recovering: the request goes nowhere,
		 * as if lost (the send completes) */
		rio->votes_withheld++;
		if (raftio_defer(rio, r)) {
			free(r);
			return RAFT_NOMEM;
		}
		return 0;
	}
	if (message->type == RAFT_IO_REQUEST_VOTE)
		raftio_vote_keep(rio, message);
	if (message->type == RAFT_IO_INSTALL_SNAPSHOT &&
	    message->install_snapshot.data.len + 4096 > raftio_frame_max(rio))
		return raftio_send_chunked(rio, message, r);
	r->status = raftio_wire_send(rio, message, &cut);
	if (r->status == 0 && cut)
		r->status = RAFT_TOOBIG; /* sent in part: libraft probes again */
	if (raftio_defer(rio, r)) {
		free(r);
		return RAFT_NOMEM;
	}
	return 0;
}

/* Builds libraft's AppendEntries entries: one raft_malloc'd batch holding
 * every payload, as libraft expects of received entries. */
static int raftio_recv_entries(const Cs__RaftMessage *msg, struct raft_append_entries *ae)
{
	size_t bytes = 0;
	uint8_t *batch, *cursor;

	ae->entries = NULL;
	ae->n_entries = 0;
	if (msg->n_entries == 0)
		return 0;
	for (size_t i = 0; i < msg->n_entries; i++) {
		const Cs__RaftEntry *e = msg->entries[i];
		if (e->type < RAFT_COMMAND || e->type > RAFT_CHANGE)
			return RAFT_MALFORMED;
		bytes += e->data.len;
	}
	ae->entries = raft_calloc(msg->n_entries, sizeof *ae->entries);
	batch = raft_malloc(bytes ? bytes : 1);
	if (!ae->entries || !batch) {
		raft_free(ae->entries);
		raft_free(batch);
		ae->entries = NULL;
		return RAFT_NOMEM;
	}
	cursor = batch;
	for (size_t i = 0; i < msg->n_entries; i++) {
		const Cs__RaftEntry *e = msg->entries[i];
		ae->entries[i].term = e->term;
		ae->entries[i].type = (unsigned short)e->type;
		ae->entries[i].buf.base = cursor;
		ae->entries[i].buf.len = e->data.len;
		ae->entries[i].batch = batch;
		if (e->data.len)
			memcpy(cursor, e->data.data, e->data.len);
		cursor += e->data.len;
	}
	ae->n_entries = (unsigned)msg->n_entries;
	return 0;
}

/* Fills m (zeroed, type and sender set) with the InstallSnapshot of msg's
 * header and data (raft_malloc'd, len bytes; m owns it on success, else it
 * is freed). Returns 0 or RAFT_MALFORMED. */
static int raftio_snapshot_msg(const Cs__RaftMessage *msg, uint8_t *data, size_t len,
			       struct raft_message *m)
{
	struct raft_install_snapshot *is = &m->install_snapshot;

	is->term = msg->term;
	is->last_index = msg->snapshot_index;
	is->last_term = msg->snapshot_term;
	is->conf_index = msg->conf_index;
	if (raftio_decode_conf(msg->conf, &is->conf)) {
		raft_free(data);
		return RAFT_MALFORMED;
	}
	is->data.base = data;
	is->data.len = len;
	return 0;
}

/* Hands a whole InstallSnapshot (m) to libraft: the snapshot is committed
 * state, so its whole prefix is verified (see the clamp). */
static void raftio_deliver_snapshot(struct raftio *rio, struct raft_message *m)
{
	if (m->install_snapshot.term != rio->verified_term) {
		rio->verified_term = m->install_snapshot.term;
		rio->verified_end = 0;
	}
	if (m->install_snapshot.last_index > rio->verified_end)
		rio->verified_end = m->install_snapshot.last_index;
	rio->recv_cb(&rio->io, m); /* libraft owns the data now */
}

/* Drops the snapshot being reassembled, loudly. */
static void raftio_in_drop(struct raftio *rio, const char *why)
{
	env_logf(rio->env, ENV_LOG_WARN,
		 "msg=\"partial snapshot dropped\" why=\"%s\" from=%" PRIu64
		 " index=%" PRIu64 " got=%" PRIu64 " of=%" PRIu64,
		 why, rio->in.from_id, rio->in.index, rio->in.got, rio->in.total);
	raft_free(rio->in.buf);
	rio->in.buf = NULL;
	rio->reassemblies_dropped++;
}

/* One chunk of an InstallSnapshot (see api.proto). One reassembly at a
 * time: a first chunk starts a new one (unless the one under way is of a
 * later term), a chunk out of order drops it; a whole one is delivered. */
static void raftio_recv_chunk(struct raftio *rio, const Cs__RaftMessage *msg)
{
	struct raft_message m;

	if (msg->chunk_total > LIMIT_RAFT_SNAPSHOT_BYTES_MAX ||
	    msg->chunk_total > SIZE_MAX) {
		env_logf(
			rio->env, ENV_LOG_ERROR,
			"msg=\"snapshot larger than LIMIT_RAFT_SNAPSHOT_BYTES_MAX: refused\""
			" from=%" PRIu64 " bytes=%" PRIu64,
			msg->from_id, msg->chunk_total);
		rio->recv_malformed++;
		return;
	}
	if (msg->chunk_offset == 0) {
		if (rio->in.buf && rio->in.term > msg->term)
			return; /* a deposed leader's */
		if (rio->in.buf)
			raftio_in_drop(rio, "a new snapshot started");
		rio->in.buf = raft_malloc((size_t)msg->chunk_total);
		if (!rio->in.buf) {
			env_logf(rio->env, ENV_LOG_ERROR,
				 "msg=\"no memory for a snapshot\" bytes=%" PRIu64,
				 msg->chunk_total);
			return;
		}
		rio->in.from_id = msg->from_id;
		rio->in.chunk_id = msg->chunk_id;
		rio->in.term = msg->term;
		rio->in.index = msg->snapshot_index;
		rio->in.total = msg->chunk_total;
		rio->in.got = 0;
	}
	if (!rio->in.buf || rio->in.from_id != msg->from_id ||
	    rio->in.chunk_id != msg->chunk_id)
		return; /* a chunk of a transfer not (or no longer) under way */
	if (msg->chunk_offset != rio->in.got || msg->chunk_total != rio->in.total ||
	    msg->data.len > rio->in.total - rio->in.got || msg->data.len == 0) {
		raftio_in_drop(rio, "a chunk out of order");
		return;
	}
	memcpy(rio->in.buf + rio->in.got, msg->data.data, msg->data.len);
	rio->in.got += msg->data.len;
	rio->in.last_ms = rio->env->ops->now_ms(rio->env);
	if (rio->in.got < rio->in.total)
		return;
	memset(&m, 0, sizeof m);
	m.type = RAFT_IO_INSTALL_SNAPSHOT;
	m.server_id = msg->from_id;
	m.server_address = msg->from_address;
	rio->snapshots_reassembled++;
	{
		uint8_t *data = rio->in.buf;
		rio->in.buf = NULL;
		if (raftio_snapshot_msg(msg, data, (size_t)rio->in.total, &m)) {
			rio->recv_malformed++;
			return;
		}
	}
	raftio_deliver_snapshot(rio, &m);
}

void raftio_recv(struct raftio *rio, const Cs__RaftMessage *msg)
{
	struct raft_message m;

	if (raftio_down(rio) || rio->closing || !rio->recv_cb)
		return;
	memset(&m, 0, sizeof m);
	rio->recv_frames++;
	if (msg->from_id == 0 || !msg->from_address || !*msg->from_address)
		goto malformed;
	m.type = (unsigned short)msg->type;
	m.server_id = msg->from_id;
	m.server_address = msg->from_address;
	switch (msg->type) {
	case RAFT_IO_REQUEST_VOTE:
		if (rio->recover_term) {
			rio->votes_withheld++; /* no vote while recovering */
			return;
		}
		m.request_vote.term = msg->term;
		m.request_vote.candidate_id = msg->candidate_id;
		m.request_vote.last_log_index = msg->last_log_index;
		m.request_vote.last_log_term = msg->last_log_term;
		m.request_vote.disrupt_leader = msg->disrupt_leader;
		m.request_vote.pre_vote = msg->pre_vote;
		/* Lease expired: the leader we knew is silent; votes are
		 * judged on logs and terms alone (safety is Raft's, unchanged). */
		if (rio->lease_ms &&
		    rio->env->ops->now_ms(rio->env) - rio->last_leader_contact_ms >=
			    rio->lease_ms)
			m.request_vote.disrupt_leader = true;
		break;
	case RAFT_IO_REQUEST_VOTE_RESULT:
		if (msg->pre_vote_result < raft_tribool_unknown ||
		    msg->pre_vote_result > raft_tribool_false)
			goto malformed;
		m.request_vote_result.term = msg->term;
		m.request_vote_result.vote_granted = msg->vote_granted;
		m.request_vote_result.pre_vote = (raft_tribool)msg->pre_vote_result;
		raftio_vote_answered(rio, msg->from_id, msg->term,
				     (raft_tribool)msg->pre_vote_result);
		break;
	case RAFT_IO_APPEND_ENTRIES:
		rio->last_leader_contact_ms = rio->env->ops->now_ms(rio->env);
		raftio_votes_leader_heard(rio, msg->term);
		m.append_entries.term = msg->term;
		m.append_entries.prev_log_index = msg->prev_log_index;
		m.append_entries.prev_log_term = msg->prev_log_term;
		m.append_entries.leader_commit = msg->leader_commit;
		if (raftio_recv_entries(msg, &m.append_entries))
			goto malformed;
		break;
	case RAFT_IO_APPEND_ENTRIES_RESULT:
		m.append_entries_result.term = msg->term;
		m.append_entries_result.rejected = msg->rejected;
		m.append_entries_result.last_log_index = msg->last_log_index;
		break;
	case RAFT_IO_INSTALL_SNAPSHOT: {
		uint8_t *data;
		rio->last_leader_contact_ms = rio->env->ops->now_ms(rio->env);
		raftio_votes_leader_heard(rio, msg->term);
		if (msg->chunk_total > 0) {
			raftio_recv_chunk(rio, msg);
			return;
		}
		data = raft_malloc(msg->data.len ? msg->data.len : 1);
		if (!data)
			goto malformed;
		if (msg->data.len)
			memcpy(data, msg->data.data, msg->data.len);
		if (raftio_snapshot_msg(msg, data, msg->data.len, &m))
			goto malformed;
		break;
	}
	case RAFT_IO_TIMEOUT_NOW:
		m.timeout_now.term = msg->term;
		m.timeout_now.last_log_index = msg->last_log_index;
		m.timeout_now.last_log_term = msg->last_log_term;
		break;
	default: goto malformed;
	}
	if (m.type == RAFT_IO_APPEND_ENTRIES) {
		uint64_t end = msg->prev_log_index + msg->n_entries;
		if (msg->term != rio->verified_term) {
			rio->verified_term = msg->term;
			rio->verified_end = 0;
		}
		rio->in_append = true;
		rio->answered = false;
		rio->append_end = end;
		rio->recv_cb(&rio->io, &m); /* libraft owns the entries now */
		rio->in_append = false;
		/* accepted for storing: answered later, once stored */
		if (!rio->answered && msg->n_entries > 0 && end > rio->verified_end)
			rio->verified_end = end;
		return;
	}
	if (m.type == RAFT_IO_INSTALL_SNAPSHOT) {
		raftio_deliver_snapshot(rio, &m);
		return;
	}
	rio->recv_cb(&rio->io, &m); /* libraft owns what it was given now */
	return;
malformed:
	rio->recv_malformed++;
}

void raftio_crash(struct raftio *rio)
{
	/* From now on nothing reaches the env; raft_close then cancels what
	 * is pending (libraft frees its requests in their callbacks) and
	 * completes at once. */
	rio->dead = true;
}

void raftio_release(struct raftio *rio)
{
	struct raftio_req *r = rio->pending_head;
	/* a statement of a connection the env closed (a crash) finalizes too:
	 * sqlite keeps such a connection until its last statement goes */
	sqlite3_finalize(rio->insert);
	rio->insert = NULL;
	while (rio->outs) { /* close completed them: only the memory is left */
		struct raftio_out *o = rio->outs;
		rio->outs = o->next;
		free(o->r);
		raftio_out_free(o);
	}
	raft_free(rio->in.buf);
	rio->in.buf = NULL;
	raftio_keys_forget(rio);
	free(rio->seal_buf);
	rio->seal_buf = NULL;
	rio->seal_cap = 0;
	while (r) {
		struct raftio_req *next = r->next;
		free(r);
		r = next;
	}
	rio->pending_head = rio->pending_tail = NULL;
}

/* The method table. */
static void raftio_bind(struct raftio *rio)
{
	rio->io.version = 1;
	rio->io.impl = rio;
	rio->io.init = raftio_m_init;
	rio->io.close = raftio_m_close;
	rio->io.load = raftio_m_load;
	rio->io.start = raftio_m_start;
	rio->io.bootstrap = raftio_m_bootstrap;
	rio->io.recover = raftio_m_recover;
	rio->io.set_term = raftio_m_set_term;
	rio->io.set_vote = raftio_m_set_vote;
	rio->io.send = raftio_m_send;
	rio->io.append = raftio_m_append;
	rio->io.truncate = raftio_m_truncate;
	rio->io.snapshot_put = raftio_m_snapshot_put;
	rio->io.snapshot_get = raftio_m_snapshot_get;
	rio->io.time = raftio_m_time;
	rio->io.random = raftio_m_random;
	rio->io.async_work = NULL;
}
