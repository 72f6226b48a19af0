/* Tests of the simulated disk: an sqlite VFS in memory whose files outlive
 * their node, lose unsynced writes on demand, and take sqlite's time and
 * randomness from the world. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "sim/simdisk.h"

#define TEST_VFS_NAME "simdisk-test"
#define TEST_NOW_MS   1700000000123ll /* 2023-11-14 22:13:20.123 UTC */
/* LIMIT_SIM_FILE_BYTES_MAX of sim/simdisk.c */
#define TEST_FILE_BYTES_MAX (1ll << 30)
#define TEST_OPEN_MAX	    8

/* ---------------------------------------------------------------- fixtures */

/* What a world gives the VFS: a clock and a random stream (splitmix64). */
struct test_world {
	uint64_t rng;
	int64_t now_ms;
	struct simvfs *vfs;
	/* What a test left open when it failed, closed by teardown so that
	 * simvfs_destroy's contract holds and cmocka reports the failure. */
	sqlite3 *dbs[TEST_OPEN_MAX];
	sqlite3_file *files[TEST_OPEN_MAX];
};

static int64_t test_now(void *ctx)
{
	const struct test_world *w = ctx;
	return w->now_ms;
}

static void test_random(void *ctx, void *buf, size_t size)
{
	struct test_world *w = ctx;
	unsigned char *p = buf;
	for (size_t i = 0; i < size; i++) {
		uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		p[i] = (unsigned char)(z ^ (z >> 31));
	}
}

static int setup(void **state)
{
	struct test_world *w = calloc(1, sizeof *w);
	if (!w)
		return -1;
	w->rng = 42;
	w->now_ms = TEST_NOW_MS;
	w->vfs = simvfs_create(TEST_VFS_NAME, test_now, test_random, w);
	if (!w->vfs) {
		free(w);
		return -1;
	}
	*state = w;
	return 0;
}

/* world_close closes whatever w still has open, then its VFS. */
static void world_close(struct test_world *w)
{
	for (int i = 0; i < TEST_OPEN_MAX; i++) {
		if (w->files[i]) {
			if (w->files[i]->pMethods)
				w->files[i]->pMethods->xClose(w->files[i]);
			free(w->files[i]);
		}
		if (w->dbs[i]) {
			sqlite3_stmt *stmt;
			while ((stmt = sqlite3_next_stmt(w->dbs[i], NULL)))
				sqlite3_finalize(stmt);
			sqlite3_close(w->dbs[i]);
		}
	}
	simvfs_destroy(w->vfs);
	w->vfs = NULL;
}

static int teardown(void **state)
{
	struct test_world *w = *state;
	world_close(w);
	free(w);
	return 0;
}

static void track(void **slots, void *p, void *replace)
{
	for (int i = 0; i < TEST_OPEN_MAX; i++)
		if (slots[i] == replace) {
			slots[i] = p;
			return;
		}
	fail_msg("more than %d open at once", TEST_OPEN_MAX);
}

/* ---------------------------------------------------------------- helpers */

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		print_error("sql %s: %s\n", sql, err ? err : "?");
	sqlite3_free(err);
	assert_int_equal(rc, SQLITE_OK);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int64_t v;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	assert_int_equal(sqlite3_finalize(stmt), SQLITE_OK);
	return v;
}

/* query_text copies the first column of the first row into out. */
static void query_text(sqlite3 *db, const char *sql, char *out, size_t out_size)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *text;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	text = sqlite3_column_text(stmt, 0);
	assert_non_null(text);
	snprintf(out, out_size, "%s", (const char *)text);
	assert_int_equal(sqlite3_finalize(stmt), SQLITE_OK);
}

/* open_db opens disk/file with the durable settings a node uses. */
static sqlite3 *open_db(struct test_world *w, const char *disk, const char *file)
{
	sqlite3 *db = NULL;
	char err[256] = "";
	int rv = simvfs_open(w->vfs, disk, file, &db, err, sizeof err);
	if (rv != 0)
		print_error("simvfs_open: %s\n", err);
	assert_int_equal(rv, 0);
	assert_non_null(db);
	track((void **)w->dbs, db, NULL);
	exec_ok(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;");
	return db;
}

static void close_db(struct test_world *w, sqlite3 *db)
{
	track((void **)w->dbs, NULL, db);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static sqlite3_vfs *test_vfs(void)
{
	sqlite3_vfs *v = sqlite3_vfs_find(TEST_VFS_NAME);
	assert_non_null(v);
	return v;
}

/* file_open opens path through the VFS itself, below sqlite; the caller
 * closes it with file_close. */
static sqlite3_file *file_open(struct test_world *w, const char *path, int flags)
{
	sqlite3_vfs *v = test_vfs();
	sqlite3_file *f = calloc(1, (size_t)v->szOsFile);
	int out_flags = 0;
	assert_non_null(f);
	track((void **)w->files, f, NULL); /* teardown frees it, even half open */
	assert_int_equal(v->xOpen(v, path, f, flags, &out_flags), SQLITE_OK);
	assert_non_null(f->pMethods);
	return f;
}

#define FILE_RW (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB)

static void file_close(struct test_world *w, sqlite3_file *f)
{
	track((void **)w->files, NULL, f);
	assert_int_equal(f->pMethods->xClose(f), SQLITE_OK);
	free(f);
}

static void file_write(sqlite3_file *f, const char *text, int64_t offset)
{
	assert_int_equal(f->pMethods->xWrite(f, text, (int)strlen(text), offset),
			 SQLITE_OK);
}

static int64_t file_size(sqlite3_file *f)
{
	sqlite3_int64 size = -1;
	assert_int_equal(f->pMethods->xFileSize(f, &size), SQLITE_OK);
	return size;
}

static bool file_exists(const char *path)
{
	sqlite3_vfs *v = test_vfs();
	int exists = -1;
	assert_int_equal(v->xAccess(v, path, SQLITE_ACCESS_EXISTS, &exists), SQLITE_OK);
	return exists != 0;
}

/* write_file creates path holding text, synced. */
static void write_file(struct test_world *w, const char *path, const char *text)
{
	sqlite3_file *f = file_open(w, path, FILE_RW);
	assert_int_equal(f->pMethods->xTruncate(f, 0), SQLITE_OK);
	file_write(f, text, 0);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	file_close(w, f);
}

/* ---------------------------------------------------------------- durability */

static void test_simdisk_committed_table_survives_reopen(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = open_db(w, "m1", "state.db");
	char text[64];

	exec_ok(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"
		    "INSERT INTO t(v) VALUES ('alpha'), ('beta');");
	close_db(w, db);
	assert_true(simvfs_disk_bytes(w->vfs, "m1") > 0);

	/* The node restarts: a new connection sees the committed rows. */
	db = open_db(w, "m1", "state.db");
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 2);
	query_text(db, "SELECT v FROM t WHERE k = 2", text, sizeof text);
	assert_string_equal(text, "beta");
	close_db(w, db);
}

/* Issue 18: simvfs_create bounds sqlite's memory (SIMVFS_SQLITE_SOFT_BYTES),
 * and a database past the bound answers every query as in memory: its
 * page cache gives back pages and reads them again from the disk. */
static void test_simdisk_database_past_the_soft_bound_reads_back_whole(void **state)
{
	struct test_world *w = *state;
	enum { ROWS = 12000, ROW_BYTES = 4000 };
	sqlite3 *db;
	sqlite3_stmt *st;
	uint64_t sum_in = 0, sum_out = 0;
	size_t rows = 0;

	assert_int_equal(sqlite3_soft_heap_limit64(-1), SIMVFS_SQLITE_SOFT_BYTES);
	assert_true((int64_t)ROWS * ROW_BYTES > SIMVFS_SQLITE_SOFT_BYTES);
	db = open_db(w, "m1", "big.db");
	exec_ok(db, "PRAGMA cache_size = -65536;" /* 64 MiB: over the bound */
		    "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);"
		    "BEGIN;");
	assert_int_equal(
		sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?, ?)", -1, &st, NULL),
		SQLITE_OK);
	for (int i = 0; i < ROWS; i++) {
		uint8_t v[ROW_BYTES];
		memset(v, (uint8_t)(i * 7), sizeof v);
		v[0] = (uint8_t)i;
		sum_in += (uint64_t)(uint8_t)(i * 7) * (sizeof v - 1) + v[0];
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_blob(st, 2, v, sizeof v, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	exec_ok(db, "COMMIT;");
	/* sqlite holds less than the database: pages were given back */
	assert_true(sqlite3_memory_used() < (int64_t)ROWS * ROW_BYTES);
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT v FROM t ORDER BY id", -1, &st, NULL),
		SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const uint8_t *v = sqlite3_column_blob(st, 0);
		assert_int_equal(sqlite3_column_bytes(st, 0), ROW_BYTES);
		for (int j = 0; j < ROW_BYTES; j++)
			sum_out += v[j];
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, ROWS);
	assert_true(sum_in == sum_out);
	close_db(w, db);
}

static void test_simdisk_committed_data_survives_crash_losing_unsynced(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = open_db(w, "m1", "state.db");
	sqlite3 *db2;
	char text[64];

	exec_ok(db, "CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3);");
	/* The node dies with its connection open. */
	simvfs_crash_begin(w->vfs, "m1");
	close_db(w, db);
	simvfs_crash_end(w->vfs, "m1", true);

	db2 = open_db(w, "m1", "state.db");
	assert_int_equal(query_int(db2, "SELECT sum(v) FROM t"), 6);
	query_text(db2, "PRAGMA integrity_check", text, sizeof text);
	assert_string_equal(text, "ok");
	close_db(w, db2);
}

static void test_simdisk_writes_during_crash_do_not_reach_disk(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = open_db(w, "m1", "state.db");
	uint64_t hash, bytes;

	exec_ok(db, "CREATE TABLE t(v); INSERT INTO t VALUES (1);");
	hash = simvfs_disk_hash(w->vfs, "m1");
	bytes = simvfs_disk_bytes(w->vfs, "m1");

	simvfs_crash_begin(w->vfs, "m1");
	/* The dying node's writes look successful to it... */
	exec_ok(db, "INSERT INTO t VALUES (2); CREATE TABLE u(x);");
	close_db(w, db);
	/* ...and change nothing, even keeping unsynced bytes. */
	assert_int_equal(simvfs_disk_hash(w->vfs, "m1"), hash);
	simvfs_crash_end(w->vfs, "m1", false);
	assert_int_equal(simvfs_disk_hash(w->vfs, "m1"), hash);
	assert_int_equal(simvfs_disk_bytes(w->vfs, "m1"), bytes);
	assert_false(file_exists("/m1/state.db-journal"));

	db = open_db(w, "m1", "state.db");
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master"), 1);
	close_db(w, db);
}

/* An open transaction big enough to spill pages into the database file
 * before it commits; the crash comes while it is open. */
static void crash_inside_spilling_transaction(struct test_world *w, bool lose_unsynced)
{
	sqlite3 *db = open_db(w, "m1", "state.db");
	sqlite3_file *raw;
	int64_t committed_bytes;
	char text[64];

	exec_ok(db, "PRAGMA cache_size=4; CREATE TABLE t(v BLOB);"
		    "INSERT INTO t VALUES (zeroblob(100));");
	raw = file_open(w, "/m1/state.db", FILE_RW);
	committed_bytes = file_size(raw);
	exec_ok(db, "BEGIN;"
		    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
		    " WHERE i < 400) INSERT INTO t SELECT printf('%0500d', i) FROM n;");
	assert_true(file_exists("/m1/state.db-journal"));
	/* The cache spilled: uncommitted pages are in the database file. */
	assert_true(file_size(raw) > committed_bytes);
	file_close(w, raw);

	simvfs_crash_begin(w->vfs, "m1");
	close_db(w, db); /* its rollback is dropped: the journal stays hot */
	simvfs_crash_end(w->vfs, "m1", lose_unsynced);

	db = open_db(w, "m1", "state.db");
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	query_text(db, "PRAGMA integrity_check", text, sizeof text);
	assert_string_equal(text, "ok");
	close_db(w, db);
	assert_false(file_exists("/m1/state.db-journal"));
}

static void test_simdisk_crash_mid_transaction_rolls_back_keeping_unsynced(void **state)
{
	crash_inside_spilling_transaction(*state, false);
}

static void test_simdisk_crash_mid_transaction_rolls_back_losing_unsynced(void **state)
{
	crash_inside_spilling_transaction(*state, true);
}

static void test_simdisk_unsynced_bytes_lost_synced_bytes_kept(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f = file_open(w, "/m1/raw", FILE_RW);
	sqlite3_file *never = file_open(w, "/m1/never", FILE_RW);
	char buf[16];

	file_write(f, "synced!", 0);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
	file_write(f, "unsynced", 7);
	file_write(f, "S", 0);
	assert_int_equal(file_size(f), 15);
	file_write(never, "gone", 0);
	file_close(w, f);
	file_close(w, never);

	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", true);

	assert_false(file_exists("/m1/never"));
	assert_true(file_exists("/m1/raw"));
	assert_int_equal(simvfs_disk_bytes(w->vfs, "m1"), 7);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(file_size(f), 7);
	assert_int_equal(f->pMethods->xRead(f, buf, 7, 0), SQLITE_OK);
	assert_memory_equal(buf, "synced!", 7);
	file_close(w, f);
}

static void test_simdisk_unsynced_bytes_kept_when_crash_keeps_them(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f = file_open(w, "/m1/raw", FILE_RW);
	char buf[16];

	file_write(f, "abc", 0);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
	file_write(f, "def", 3);
	file_close(w, f);
	file_close(w, file_open(w, "/m1/never", FILE_RW));

	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", false);

	assert_true(file_exists("/m1/never"));
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(file_size(f), 6);
	assert_int_equal(f->pMethods->xRead(f, buf, 6, 0), SQLITE_OK);
	assert_memory_equal(buf, "abcdef", 6);
	file_close(w, f);
}

static void test_simdisk_truncate_after_sync_is_lost_with_unsynced(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f = file_open(w, "/m1/raw", FILE_RW);
	char buf[8];

	file_write(f, "0123456789", 0);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
	assert_int_equal(f->pMethods->xTruncate(f, 2), SQLITE_OK);
	assert_int_equal(file_size(f), 2);
	assert_int_equal(f->pMethods->xTruncate(f, 4), SQLITE_OK);
	assert_int_equal(f->pMethods->xRead(f, buf, 4, 0), SQLITE_OK);
	assert_memory_equal(buf, "01\0\0", 4); /* growth reads as zeros */
	file_close(w, f);

	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", true);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(file_size(f), 10);
	file_close(w, f);
}

/* A model of one file: what reads see and what a crash losing unsynced
 * writes leaves, kept whole (the simulator keeps only the pages changed
 * since the last sync). */
#define MODEL_BYTES_MAX (5 * 4096 + 123)
struct model {
	unsigned char cur[MODEL_BYTES_MAX], synced[MODEL_BYTES_MAX];
	size_t cur_size, synced_size;
};

static uint64_t model_next(uint64_t *x)
{
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	return *x >> 33;
}

static void model_check(sqlite3_file *f, const struct model *m)
{
	static unsigned char buf[MODEL_BYTES_MAX];
	assert_int_equal(file_size(f), (int64_t)m->cur_size);
	if (m->cur_size == 0)
		return;
	assert_int_equal(f->pMethods->xRead(f, buf, (int)m->cur_size, 0), SQLITE_OK);
	assert_memory_equal(buf, m->cur, m->cur_size);
}

/* Writes across page edges, truncates down and up, syncs and crashes in
 * random order: after each step the file reads as the model says, and
 * after each crash it is the model's synced image. */
static void test_simdisk_crash_restores_exactly_the_synced_image(void **state)
{
	struct test_world *w = *state;
	static struct model m;
	uint64_t x = 12345;
	sqlite3_file *f = file_open(w, "/m1/model", FILE_RW);
	unsigned crashes = 0;

	memset(&m, 0, sizeof m);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	for (int step = 0; step < 4000; step++) {
		uint64_t op = model_next(&x) % 100;
		if (op < 60) {
			unsigned char data[3 * 4096];
			size_t off = model_next(&x) % (MODEL_BYTES_MAX - 1);
			size_t len = 1 + model_next(&x) % (op < 10 ? sizeof data : 300);
			if (off + len > MODEL_BYTES_MAX)
				len = MODEL_BYTES_MAX - off;
			for (size_t i = 0; i < len; i++)
				data[i] = (unsigned char)model_next(&x);
			assert_int_equal(
				f->pMethods->xWrite(f, data, (int)len, (int64_t)off),
				SQLITE_OK);
			if (off > m.cur_size)
				memset(m.cur + m.cur_size, 0, off - m.cur_size);
			memcpy(m.cur + off, data, len);
			if (off + len > m.cur_size)
				m.cur_size = off + len;
		} else if (op < 75) {
			size_t size = model_next(&x) % MODEL_BYTES_MAX;
			assert_int_equal(f->pMethods->xTruncate(f, (int64_t)size),
					 SQLITE_OK);
			if (size > m.cur_size)
				memset(m.cur + m.cur_size, 0, size - m.cur_size);
			m.cur_size = size;
		} else if (op < 90) {
			assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL),
					 SQLITE_OK);
			memcpy(m.synced, m.cur, m.cur_size);
			m.synced_size = m.cur_size;
		} else {
			bool lose = op < 97;
			file_close(w, f);
			simvfs_crash_begin(w->vfs, "m1");
			simvfs_crash_end(w->vfs, "m1", lose);
			f = file_open(w, "/m1/model", FILE_RW);
			if (lose) {
				memcpy(m.cur, m.synced, m.synced_size);
				m.cur_size = m.synced_size;
				crashes++;
			}
		}
		model_check(f, &m);
	}
	assert_true(crashes > 50);
	file_close(w, f);
}

static void test_simdisk_disks_are_independent(void **state)
{
	struct test_world *w = *state;
	sqlite3 *a = open_db(w, "m1", "state.db");
	sqlite3 *b = open_db(w, "m2", "state.db");

	exec_ok(a, "CREATE TABLE t(v); INSERT INTO t VALUES ('on m1');");
	exec_ok(b, "CREATE TABLE t(v); INSERT INTO t VALUES ('on m2'), ('too');");
	assert_int_not_equal(simvfs_disk_hash(w->vfs, "m1"),
			     simvfs_disk_hash(w->vfs, "m2"));

	/* m1 dies; m2 keeps writing. */
	simvfs_crash_begin(w->vfs, "m1");
	exec_ok(a, "INSERT INTO t VALUES ('lost');");
	exec_ok(b, "INSERT INTO t VALUES ('kept');");
	close_db(w, a);
	simvfs_crash_end(w->vfs, "m1", true);
	close_db(w, b);

	a = open_db(w, "m1", "state.db");
	b = open_db(w, "m2", "state.db");
	assert_int_equal(query_int(a, "SELECT count(*) FROM t"), 1);
	assert_int_equal(query_int(b, "SELECT count(*) FROM t"), 3);
	close_db(w, a);
	close_db(w, b);
	assert_int_equal(simvfs_disk_bytes(w->vfs, "m3"), 0);
	assert_int_equal(simvfs_disk_hash(w->vfs, "m3"), 0);
}

/* ---------------------------------------------------------------- files */

static void test_simdisk_deleted_file_is_gone(void **state)
{
	struct test_world *w = *state;
	sqlite3_vfs *v = test_vfs();
	sqlite3_file *f;

	write_file(w, "/m1/x", "hello");
	assert_true(file_exists("/m1/x"));
	assert_int_equal(v->xDelete(v, "/m1/x", 0), SQLITE_OK);
	assert_false(file_exists("/m1/x"));
	assert_int_equal(simvfs_disk_bytes(w->vfs, "m1"), 0);
	assert_int_equal(simvfs_disk_hash(w->vfs, "m1"), 0);
	assert_int_equal(v->xDelete(v, "/m1/x", 0), SQLITE_IOERR_DELETE_NOENT);

	/* Opening without CREATE does not bring it back. */
	f = calloc(1, (size_t)v->szOsFile);
	assert_non_null(f);
	assert_int_equal(v->xOpen(v, "/m1/x", f, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_CANTOPEN);
	assert_null(f->pMethods);
	free(f);
}

static void test_simdisk_file_deleted_while_open_lives_until_close(void **state)
{
	struct test_world *w = *state;
	sqlite3_vfs *v = test_vfs();
	sqlite3_file *f, *g;
	char buf[5];

	write_file(w, "/m1/x", "hello");
	f = file_open(w, "/m1/x", FILE_RW);
	assert_int_equal(v->xDelete(v, "/m1/x", 0), SQLITE_OK);
	assert_false(file_exists("/m1/x"));
	assert_int_equal(f->pMethods->xRead(f, buf, 5, 0), SQLITE_OK);
	assert_memory_equal(buf, "hello", 5);

	/* The name is free again: a new, empty file. */
	g = file_open(w, "/m1/x", FILE_RW);
	assert_int_equal(file_size(g), 0);
	file_close(w, g);
	file_close(w, f);
	assert_true(file_exists("/m1/x"));
}

static void test_simdisk_delete_on_close_removes_file(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f = file_open(w, "/m1/tmp", FILE_RW | SQLITE_OPEN_DELETEONCLOSE);

	file_write(f, "scratch", 0);
	assert_true(file_exists("/m1/tmp"));
	file_close(w, f);
	assert_false(file_exists("/m1/tmp"));
}

static void test_simdisk_delete_during_crash_is_dropped(void **state)
{
	struct test_world *w = *state;
	sqlite3_vfs *v = test_vfs();

	write_file(w, "/m1/x", "hello");
	simvfs_crash_begin(w->vfs, "m1");
	assert_int_equal(v->xDelete(v, "/m1/x", 0), SQLITE_OK);
	/* Files the dead node creates never reach its disk. */
	file_close(w, file_open(w, "/m1/new", FILE_RW));
	simvfs_crash_end(w->vfs, "m1", false);
	assert_true(file_exists("/m1/x"));
	assert_false(file_exists("/m1/new"));
}

static void test_simdisk_short_read_zero_fills(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f = file_open(w, "/m1/raw", FILE_RW);
	char buf[8];

	file_write(f, "abcd", 0);
	memset(buf, 'z', sizeof buf);
	assert_int_equal(f->pMethods->xRead(f, buf, 8, 0), SQLITE_IOERR_SHORT_READ);
	assert_memory_equal(buf, "abcd\0\0\0\0", 8);
	memset(buf, 'z', sizeof buf);
	assert_int_equal(f->pMethods->xRead(f, buf, 8, 100), SQLITE_IOERR_SHORT_READ);
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0", 8);

	/* A write past the end fills the gap with zeros. */
	file_write(f, "e", 6);
	assert_int_equal(f->pMethods->xRead(f, buf, 7, 0), SQLITE_OK);
	assert_memory_equal(buf, "abcd\0\0e", 7);
	file_close(w, f);
}

static void test_simdisk_new_file_reuses_a_deleted_ones_buffer_unseen(void **state)
{
	/* issue 18: a deleted file's buffer goes to the next new file (a
	 * journal per transaction allocates nothing); what it held before is
	 * never read: reads stop at the new size, a gap reads as zeros */
	struct test_world *w = *state;
	sqlite3_vfs *v = test_vfs();
	sqlite3_file *f;
	char big[3000], buf[16];
	uint64_t taken = simvfs_spares_taken(w->vfs);
	sqlite3 *db;

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	write_file(w, "/m1/old", big);
	assert_int_equal(v->xDelete(v, "/m1/old", 0), SQLITE_OK);
	f = file_open(w, "/m1/new", FILE_RW);
	assert_int_equal(file_size(f), 0);
	file_write(f, "ab", 4);
	assert_int_equal(simvfs_spares_taken(w->vfs), taken + 1);
	memset(buf, 'z', sizeof buf);
	assert_int_equal(f->pMethods->xRead(f, buf, 8, 0), SQLITE_IOERR_SHORT_READ);
	assert_memory_equal(buf, "\0\0\0\0ab\0\0", 8);
	assert_int_equal(f->pMethods->xTruncate(f, 10), SQLITE_OK);
	assert_int_equal(f->pMethods->xRead(f, buf, 10, 0), SQLITE_OK);
	assert_memory_equal(buf, "\0\0\0\0ab\0\0\0\0", 10);
	file_close(w, f);

	/* transactions in journal_mode=DELETE: each journal takes a buffer
	 * back; the data is all there */
	db = open_db(w, "m2", "db");
	exec_ok(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
	taken = simvfs_spares_taken(w->vfs);
	for (int i = 0; i < 20; i++) {
		char sql[96];
		snprintf(sql, sizeof sql,
			 "INSERT INTO t VALUES(%d, printf('%%0200d', %d))", i, i);
		exec_ok(db, sql);
	}
	assert_true(simvfs_spares_taken(w->vfs) >= taken + 19);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 20);
	assert_int_equal(query_int(db, "SELECT sum(CAST(v AS INTEGER)) FROM t"), 190);
	{
		char ok[16];
		query_text(db, "PRAGMA integrity_check", ok, sizeof ok);
		assert_string_equal(ok, "ok");
	}
	close_db(w, db);
}

static void test_simdisk_file_over_limit_is_full(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f = file_open(w, "/m1/raw", FILE_RW);

	assert_int_equal(f->pMethods->xWrite(f, "ab", 2, TEST_FILE_BYTES_MAX - 1),
			 SQLITE_FULL);
	assert_int_equal(f->pMethods->xTruncate(f, TEST_FILE_BYTES_MAX + 1), SQLITE_FULL);
	assert_int_equal(file_size(f), 0);
	file_close(w, f);
}

static void test_simdisk_temp_files_stay_off_the_disks(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = open_db(w, "m1", "state.db");
	uint64_t bytes;

	exec_ok(db, "CREATE TABLE t(v);");
	bytes = simvfs_disk_bytes(w->vfs, "m1");
	exec_ok(db, "PRAGMA temp_store=FILE; PRAGMA cache_size=4;"
		    "CREATE TEMP TABLE tt(v);"
		    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
		    " WHERE i < 300) INSERT INTO tt SELECT printf('%0400d', i) FROM n;");
	assert_int_equal(query_int(db, "SELECT count(*) FROM tt"), 300);
	assert_int_equal(
		query_int(db, "SELECT count(*) FROM (SELECT v FROM tt ORDER BY v DESC)"),
		300);
	assert_int_equal(simvfs_disk_bytes(w->vfs, "m1"), bytes);
	close_db(w, db);
}

/* ---------------------------------------------------------------- locks, names, WAL */

static void test_simdisk_two_connections_lock_each_other(void **state)
{
	struct test_world *w = *state;
	sqlite3 *a = open_db(w, "m1", "state.db");
	sqlite3 *b = open_db(w, "m1", "state.db");
	sqlite3_stmt *read = NULL;

	exec_ok(a, "CREATE TABLE t(v); INSERT INTO t VALUES (1);");
	/* One writer at a time; readers still read. */
	exec_ok(a, "BEGIN IMMEDIATE; INSERT INTO t VALUES (2);");
	assert_int_equal(sqlite3_exec(b, "BEGIN IMMEDIATE", NULL, NULL, NULL),
			 SQLITE_BUSY);
	assert_int_equal(query_int(b, "SELECT count(*) FROM t"), 1);

	/* A reader in the middle of a read keeps the writer from committing,
	 * and the writer's pending lock keeps new readers out. */
	assert_int_equal(sqlite3_prepare_v2(b, "SELECT v FROM t", -1, &read, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(read), SQLITE_ROW);
	assert_int_equal(sqlite3_exec(a, "COMMIT", NULL, NULL, NULL), SQLITE_BUSY);
	assert_int_equal(sqlite3_finalize(read), SQLITE_OK);
	exec_ok(a, "COMMIT");

	assert_int_equal(query_int(b, "SELECT count(*) FROM t"), 2);
	exec_ok(b, "INSERT INTO t VALUES (3);");
	assert_int_equal(query_int(a, "SELECT count(*) FROM t"), 3);
	close_db(w, a);
	close_db(w, b);
}

static void test_simdisk_pending_writer_keeps_new_readers_out(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *reader = file_open(w, "/m1/db", FILE_RW);
	sqlite3_file *writer = file_open(w, "/m1/db", FILE_RW);
	sqlite3_file *late = file_open(w, "/m1/db", FILE_RW);
	const sqlite3_io_methods *m = reader->pMethods;
	int reserved = -1;

	assert_int_equal(m->xLock(reader, SQLITE_LOCK_SHARED), SQLITE_OK);
	assert_int_equal(m->xLock(writer, SQLITE_LOCK_SHARED), SQLITE_OK);
	assert_int_equal(m->xLock(writer, SQLITE_LOCK_RESERVED), SQLITE_OK);
	assert_int_equal(m->xCheckReservedLock(reader, &reserved), SQLITE_OK);
	assert_int_equal(reserved, 1);
	assert_int_equal(m->xLock(reader, SQLITE_LOCK_RESERVED), SQLITE_BUSY);
	/* EXCLUSIVE waits for the reader, holding PENDING. */
	assert_int_equal(m->xLock(writer, SQLITE_LOCK_EXCLUSIVE), SQLITE_BUSY);
	assert_int_equal(m->xLock(late, SQLITE_LOCK_SHARED), SQLITE_BUSY);
	assert_int_equal(m->xUnlock(reader, SQLITE_LOCK_NONE), SQLITE_OK);
	assert_int_equal(m->xLock(writer, SQLITE_LOCK_EXCLUSIVE), SQLITE_OK);
	assert_int_equal(m->xUnlock(writer, SQLITE_LOCK_SHARED), SQLITE_OK);
	assert_int_equal(m->xCheckReservedLock(reader, &reserved), SQLITE_OK);
	assert_int_equal(reserved, 0);
	assert_int_equal(m->xLock(late, SQLITE_LOCK_SHARED), SQLITE_OK);
	/* Closing releases whatever a handle holds. */
	file_close(w, late);
	file_close(w, writer);
	file_close(w, reader);
}

static void test_simdisk_open_rejects_bad_names(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = (sqlite3 *)&db;
	char err[128] = "";
	char long_disk[80];

	assert_int_equal(simvfs_open(w->vfs, "", "state.db", &db, err, sizeof err),
			 CS_EINVAL);
	assert_null(db);
	assert_true(err[0] != '\0');
	assert_int_equal(simvfs_open(w->vfs, "m1", "a/b.db", &db, err, sizeof err),
			 CS_EINVAL);
	memset(long_disk, 'd', sizeof long_disk - 1);
	long_disk[sizeof long_disk - 1] = '\0';
	assert_int_equal(simvfs_open(w->vfs, long_disk, "x.db", &db, err, sizeof err),
			 CS_ELIMIT);

	/* sqlite itself cannot open a path outside the "/DISK/FILE" form. */
	assert_int_not_equal(sqlite3_open_v2("relative.db", &db,
					     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					     TEST_VFS_NAME),
			     SQLITE_OK);
	sqlite3_close(db);
	db = NULL;
	assert_int_equal(sqlite3_open_v2("/m1/missing.db", &db, SQLITE_OPEN_READWRITE,
					 TEST_VFS_NAME),
			 SQLITE_CANTOPEN);
	sqlite3_close(db);
	assert_int_equal(simvfs_disk_hash(w->vfs, "m1"), 0);
}

static void test_simdisk_wal_is_refused(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = open_db(w, "m1", "state.db");
	char mode[16];

	exec_ok(db, "CREATE TABLE t(v);");
	query_text(db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
	assert_string_equal(mode, "delete");
	close_db(w, db);
}

static void test_simdisk_create_refuses_taken_name(void **state)
{
	struct test_world *w = *state;
	assert_null(simvfs_create(TEST_VFS_NAME, test_now, test_random, w));
	/* The first one is still registered and the default. */
	assert_ptr_equal(sqlite3_vfs_find(NULL), test_vfs());
}

/* ---------------------------------------------------------------- time, randomness, hash */

static void test_simdisk_sqlite_time_follows_callback(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = open_db(w, "m1", "state.db");
	sqlite3_vfs *v = test_vfs();
	char text[64];
	double julian_day = 0;

	query_text(db, "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')", text, sizeof text);
	assert_string_equal(text, "2023-11-14 22:13:20.123");
	assert_int_equal(query_int(db, "SELECT strftime('%s', 'now')"), 1700000000);
	w->now_ms += 5000;
	assert_int_equal(query_int(db, "SELECT strftime('%s', 'now')"), 1700000005);
	close_db(w, db);

	assert_int_equal(v->xCurrentTime(v, &julian_day), SQLITE_OK);
	assert_true(julian_day > 2440587.5 + 1700000005.123 / 86400 - 1e-6);
	assert_true(julian_day < 2440587.5 + 1700000005.123 / 86400 + 1e-6);
}

/* random_values creates a world seeded with seed, reads n values of
 * sqlite's random() through it, and destroys it. */
static void random_values(uint64_t seed, int64_t *out, int n)
{
	struct test_world w = {.rng = seed, .now_ms = TEST_NOW_MS};
	sqlite3 *db;

	w.vfs = simvfs_create(TEST_VFS_NAME, test_now, test_random, &w);
	assert_non_null(w.vfs);
	db = open_db(&w, "m1", "state.db");
	for (int i = 0; i < n; i++)
		out[i] = query_int(db, "SELECT random()");
	close_db(&w, db);
	world_close(&w);
	assert_null(sqlite3_vfs_find(TEST_VFS_NAME));
}

static void test_simdisk_sqlite_randomness_follows_seed(void **state)
{
	int64_t a[4], b[4], c[4];

	random_values(7, a, 4);
	/* Something else draws from sqlite's PRNG between the two worlds. */
	sqlite3_randomness((int)sizeof c, c);
	random_values(7, b, 4);
	random_values(8, c, 4);
	assert_memory_equal(a, b, sizeof a);
	assert_memory_not_equal(a, c, sizeof a);
}

static void test_simdisk_disk_hash_tracks_content(void **state)
{
	struct test_world *w = *state;
	uint64_t a, b;

	assert_int_equal(simvfs_disk_hash(w->vfs, "a"), 0);
	write_file(w, "/a/f", "abc");
	write_file(w, "/b/f", "abc");
	a = simvfs_disk_hash(w->vfs, "a");
	assert_int_not_equal(a, 0);
	assert_int_equal(simvfs_disk_hash(w->vfs, "b"), a);

	write_file(w, "/b/f", "abd");
	b = simvfs_disk_hash(w->vfs, "b");
	assert_int_not_equal(b, a);
	write_file(w, "/b/f", "abc");
	assert_int_equal(simvfs_disk_hash(w->vfs, "b"), a);

	/* Names count, and so does every file. */
	write_file(w, "/c/g", "abc");
	assert_int_not_equal(simvfs_disk_hash(w->vfs, "c"), a);
	write_file(w, "/b/g", "");
	assert_int_not_equal(simvfs_disk_hash(w->vfs, "b"), a);
	assert_int_equal(simvfs_disk_bytes(w->vfs, "b"), 3);
}

/* ---------------------------------------------------------------- faults */

/* Runs sql (a whole transaction); returns sqlite's primary result code. */
static int exec_rc(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return rc & 0xff;
}

/* A committed table t of one row, then fault on disk m1; a commit of a
 * second row fails with want (the extended code, read from the
 * connection), the row is not there, and after the fault ends the same
 * commit works and the database is whole. */
static void fault_fails_commit(struct test_world *w, uint32_t faults, int want)
{
	sqlite3 *db = open_db(w, "m1", "state.db");
	char text[64];
	int rc;

	exec_ok(db, "CREATE TABLE t(v); INSERT INTO t VALUES (1);");
	assert_int_equal(simvfs_fault(w->vfs, "m1", faults, INT64_MAX), 0);
	assert_true(simvfs_faulted(w->vfs, "m1"));
	rc = sqlite3_exec(db, "BEGIN; INSERT INTO t VALUES (2); COMMIT;", NULL, NULL,
			  NULL);
	assert_int_not_equal(rc, SQLITE_OK);
	assert_int_equal(sqlite3_extended_errcode(db), want);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* if still open */
	/* the node would exit here; say it reads again after the fault */
	assert_int_equal(simvfs_fault(w->vfs, "m1", 0, 0), 0);
	assert_false(simvfs_faulted(w->vfs, "m1"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	exec_ok(db, "INSERT INTO t VALUES (2);");
	assert_int_equal(query_int(db, "SELECT sum(v) FROM t"), 3);
	query_text(db, "PRAGMA integrity_check", text, sizeof text);
	assert_string_equal(text, "ok");
	close_db(w, db);
}

static void test_simdisk_eio_on_write_fails_commit(void **state)
{
	fault_fails_commit(*state, SIMVFS_FAULT_EIO_WRITE, SQLITE_IOERR_WRITE);
}

static void test_simdisk_eio_on_sync_fails_commit(void **state)
{
	fault_fails_commit(*state, SIMVFS_FAULT_EIO_SYNC, SQLITE_IOERR_FSYNC);
}

static void test_simdisk_full_disk_fails_commit(void **state)
{
	fault_fails_commit(*state, SIMVFS_FAULT_FULL, SQLITE_FULL);
}

/* A failed sync keeps the last synced image: a crash after it loses what
 * the sync would have kept. */
static void test_simdisk_failed_sync_keeps_nothing_new(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f;

	write_file(w, "/m1/f", "old");
	f = file_open(w, "/m1/f", FILE_RW);
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_EIO_SYNC, INT64_MAX), 0);
	file_write(f, "new", 0);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_IOERR_FSYNC);
	file_close(w, f);
	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", true);
	f = file_open(w, "/m1/f", FILE_RW);
	{
		char buf[4] = "";
		assert_int_equal(f->pMethods->xRead(f, buf, 3, 0), SQLITE_OK);
		assert_memory_equal(buf, "old", 3);
	}
	file_close(w, f);
}

/* A full disk refuses growth only: rewrites in place and shrinking work;
 * other disks and temp files are untouched. */
static void test_simdisk_full_disk_refuses_only_growth(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f;

	write_file(w, "/m1/f", "abcdef");
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_FULL, INT64_MAX), 0);
	f = file_open(w, "/m1/f", FILE_RW);
	file_write(f, "xyz", 3);
	assert_int_equal(f->pMethods->xWrite(f, "long", 4, 4), SQLITE_FULL);
	assert_int_equal(f->pMethods->xTruncate(f, 10), SQLITE_FULL);
	assert_int_equal(f->pMethods->xTruncate(f, 2), SQLITE_OK);
	assert_int_equal(file_size(f), 2);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	file_close(w, f);
	write_file(w, "/m2/f", "grows fine"); /* another disk */
	assert_false(simvfs_faulted(w->vfs, "m2"));
}

/* EIO on write fails writes and truncates, not reads or syncs. */
static void test_simdisk_eio_on_write_fails_write_and_truncate(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f;
	char buf[3];

	write_file(w, "/m1/f", "abc");
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_EIO_WRITE, INT64_MAX),
			 0);
	f = file_open(w, "/m1/f", FILE_RW);
	assert_int_equal(f->pMethods->xWrite(f, "x", 1, 0), SQLITE_IOERR_WRITE);
	assert_int_equal(f->pMethods->xTruncate(f, 1), SQLITE_IOERR_TRUNCATE);
	assert_int_equal(f->pMethods->xRead(f, buf, 3, 0), SQLITE_OK);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	file_close(w, f);
}

/* A fault with an end holds until the clock reaches it; ok ends it early. */
static void test_simdisk_fault_ends_at_its_time(void **state)
{
	struct test_world *w = *state;
	sqlite3 *db = open_db(w, "m1", "state.db");

	exec_ok(db, "CREATE TABLE t(v);");
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_FULL, w->now_ms + 1000),
			 0);
	assert_int_equal(simvfs_healthy_from(w->vfs, "m1"), w->now_ms + 1000);
	assert_int_equal(exec_rc(db, "INSERT INTO t VALUES (1);"), SQLITE_FULL);
	w->now_ms += 999;
	assert_true(simvfs_faulted(w->vfs, "m1"));
	w->now_ms += 1;
	assert_false(simvfs_faulted(w->vfs, "m1"));
	exec_ok(db, "INSERT INTO t VALUES (1);");
	/* for ever, then ok */
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_EIO_WRITE, INT64_MAX),
			 0);
	assert_int_equal(simvfs_healthy_from(w->vfs, "m1"), INT64_MAX);
	assert_int_equal(exec_rc(db, "INSERT INTO t VALUES (2);"), SQLITE_IOERR);
	w->now_ms += 5000;
	assert_int_equal(simvfs_fault(w->vfs, "m1", 0, 0), 0);
	assert_int_equal(simvfs_healthy_from(w->vfs, "m1"), w->now_ms);
	exec_ok(db, "INSERT INTO t VALUES (2);");
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 2);
	assert_int_equal(simvfs_fault(w->vfs, "m1", 1u << 9, 0), CS_EINVAL);
	close_db(w, db);
}

/* A crash wins over a fault: the dying node's writes vanish, no error. */
static void test_simdisk_crash_drops_writes_under_a_fault(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f;

	write_file(w, "/m1/f", "abc");
	f = file_open(w, "/m1/f", FILE_RW);
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_ALL, INT64_MAX), 0);
	simvfs_crash_begin(w->vfs, "m1");
	assert_int_equal(f->pMethods->xWrite(f, "x", 1, 10), SQLITE_OK);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	file_close(w, f);
	simvfs_crash_end(w->vfs, "m1", true);
	assert_true(simvfs_faulted(w->vfs, "m1"));
}

/* ---------------------------------------------------------------- issue 19: torn pages, bit flips */

/* A crash under fault=torn keeps, in each page written since the sync,
 * the new bytes of a run of 512-byte sectors and the synced bytes
 * elsewhere: across many pages, some keep none, some all, some a part;
 * every byte is either its synced or its new value. Without the fault the
 * same crash puts every page back whole. */
static void test_simdisk_torn_crash_tears_unsynced_pages(void **state)
{
	struct test_world *w = *state;
	enum { PAGES = 64, PAGE = 4096 };
	unsigned char *old = malloc(PAGES * PAGE), *neu = malloc(PAGES * PAGE),
		      *got = malloc(PAGES * PAGE);
	sqlite3_file *f;
	unsigned none = 0, all = 0, part = 0;

	assert_non_null(old);
	assert_non_null(neu);
	assert_non_null(got);
	memset(old, 'o', PAGES * PAGE);
	memset(neu, 'n', PAGES * PAGE);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(f->pMethods->xWrite(f, old, PAGES * PAGE, 0), SQLITE_OK);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	assert_int_equal(f->pMethods->xWrite(f, neu, PAGES * PAGE, 0), SQLITE_OK);
	file_close(w, f);
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_TORN, INT64_MAX), 0);
	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", true);

	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(file_size(f), PAGES * PAGE);
	assert_int_equal(f->pMethods->xRead(f, got, PAGES * PAGE, 0), SQLITE_OK);
	file_close(w, f);
	for (unsigned p = 0; p < PAGES; p++) {
		unsigned n = 0;
		for (unsigned b = 0; b < PAGE; b++) {
			unsigned char c = got[p * PAGE + b];
			assert_true(c == 'o' || c == 'n');
			/* whole sectors: a sector is all old or all new */
			assert_int_equal(c, got[p * PAGE + (b / 512) * 512]);
			n += c == 'n';
		}
		if (n == 0)
			none++;
		else if (n == PAGE)
			all++;
		else
			part++;
	}
	assert_true(part > 0);
	assert_true(none + all > 0);
	free(old);
	free(neu);
	free(got);
}

/* Under fault=torn, a sync with nothing written since the last one (or a
 * file's first) works, and a crash with nothing unsynced changes nothing. */
static void test_simdisk_torn_fault_fails_no_call(void **state)
{
	struct test_world *w = *state;
	sqlite3_file *f;
	char buf[8];

	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_TORN, INT64_MAX), 0);
	f = file_open(w, "/m1/raw", FILE_RW);
	file_write(f, "synced!", 0);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	file_close(w, f);
	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", true);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(f->pMethods->xRead(f, buf, 7, 0), SQLITE_OK);
	assert_memory_equal(buf, "synced!", 7);
	file_close(w, f);
}

/* sqlite survives a torn sync: the power fails while a commit writes the
 * database (its journal synced already), the commit fails (EIO), the
 * process dies; started again on what the platter holds (torn pages), the
 * hot journal puts the pages back: the last committed state, checking ok. */
static void test_simdisk_sqlite_survives_torn_crash(void **state)
{
	struct test_world *w = *state;
	unsigned failed = 0;
	int64_t expect = 0;

	for (unsigned round = 0; round < 20; round++) {
		sqlite3 *db = open_db(w, "m1", "t.db");
		char check[32];
		int rc;
		exec_ok(db,
			"CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v BLOB)");
		exec_ok(db, "BEGIN; INSERT INTO t(v) VALUES (randomblob(3000));"
			    "INSERT INTO t(v) VALUES (randomblob(3000)); COMMIT");
		assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_TORN, INT64_MAX),
				 0);
		rc = sqlite3_exec(db,
				  "BEGIN; UPDATE t SET v = randomblob(2000);"
				  "INSERT INTO t(v) VALUES (randomblob(40000)); COMMIT",
				  NULL, NULL, NULL);
		failed += rc != SQLITE_OK;
		expect += 2 + (rc == SQLITE_OK);
		/* the process dies with the power; the disk works again */
		simvfs_crash_begin(w->vfs, "m1");
		close_db(w, db);
		simvfs_crash_end(w->vfs, "m1", true);
		assert_int_equal(simvfs_fault(w->vfs, "m1", 0, 0), 0);
		db = open_db(w, "m1", "t.db");
		assert_int_equal(query_int(db, "SELECT count(*) FROM t"), expect);
		query_text(db, "PRAGMA integrity_check", check, sizeof check);
		assert_string_equal(check, "ok");
		close_db(w, db);
	}
	assert_true(failed > 0); /* the fault did fail commits */
}

/* fault=corrupt flips exactly one bit per page asked, in the named file,
 * in bytes reads see and in the synced image (a crash keeps it). */
static void test_simdisk_corrupt_flips_bits_that_stay(void **state)
{
	struct test_world *w = *state;
	enum { SIZE = 3 * 4096 };
	unsigned char *zero = calloc(1, SIZE), *got = malloc(SIZE);
	sqlite3_file *f;
	uint32_t flipped = 9;
	unsigned bits = 0;

	assert_non_null(zero);
	assert_non_null(got);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(f->pMethods->xWrite(f, zero, SIZE, 0), SQLITE_OK);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	file_close(w, f);
	write_file(w, "/m1/other", "untouched");
	assert_int_equal(simvfs_corrupt(w->vfs, "m1", "raw", NULL, 2, &flipped), 0);
	assert_int_equal(flipped, 2);
	assert_int_equal(simvfs_corrupt(w->vfs, "m1", "absent", NULL, 2, &flipped), 0);
	assert_int_equal(flipped, 0);
	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", true);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(f->pMethods->xRead(f, got, SIZE, 0), SQLITE_OK);
	file_close(w, f);
	for (unsigned i = 0; i < SIZE; i++)
		bits += (unsigned)__builtin_popcount(got[i]);
	/* two flips, maybe of the same bit twice: 2 or 0 */
	assert_true(bits == 2 || bits == 0);
	f = file_open(w, "/m1/other", FILE_RW);
	assert_int_equal(f->pMethods->xRead(f, got, 9, 0), SQLITE_OK);
	assert_memory_equal(got, "untouched", 9);
	file_close(w, f);
	free(zero);
	free(got);
}

/* In an sqlite database, flips land in pages sqlite reads: a table's rows
 * fail their check, or the file no longer opens as a database. */
static void test_simdisk_corrupt_is_seen_by_sqlite(void **state)
{
	struct test_world *w = *state;
	unsigned seen = 0;

	for (unsigned round = 0; round < 10; round++) {
		char name[16], check[64];
		sqlite3 *db;
		uint32_t flipped;
		sqlite3_stmt *st;
		int rc;

		snprintf(name, sizeof name, "c%u.db", round);
		db = open_db(w, "m1", name);
		exec_ok(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
		exec_ok(db,
			"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			" WHERE i < 400) INSERT INTO t(v) SELECT printf('%0100d', i) FROM n");
		exec_ok(db, "DELETE FROM t WHERE k > 200"); /* free pages */
		close_db(w, db);
		assert_int_equal(simvfs_corrupt(w->vfs, "m1", name, NULL, 30, &flipped),
				 0);
		assert_int_equal(flipped, 30);
		db = open_db(w, "m1", name);
		check[0] = 0;
		rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
		if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			snprintf(check, sizeof check, "%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (strcmp(check, "ok") != 0 ||
		    sqlite3_exec(db,
				 "SELECT count(*) FROM t WHERE length(v) != 100 OR"
				 " CAST(v AS INTEGER) != k",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    query_int(db, "SELECT count(*) FROM t WHERE length(v) != 100 OR"
				  " CAST(v AS INTEGER) != k") > 0)
			seen++;
		close_db(w, db);
	}
	assert_int_equal(seen, 10);
}

/* table= (issue 18): flips land only in the rows of the named table (its
 * leaf and overflow pages' records), never in its b-tree's structure nor
 * in another table: sqlite still counts every row under its own key, and
 * each round finds values altered, in rows that overflow too. */
static void test_simdisk_corrupt_table_flips_only_its_rows(void **state)
{
	struct test_world *w = *state;
	static const char *const want =
		"printf('%0*d', CASE WHEN k % 10 = 0 THEN 6000 ELSE 100 END, k)";
	uint32_t none = 9;
	char sql[256];

	for (unsigned round = 0; round < 10; round++) {
		char name[16];
		sqlite3 *db;
		uint32_t flipped;
		int rc, bad;

		snprintf(name, sizeof name, "t%u.db", round);
		db = open_db(w, "m1", name);
		exec_ok(db, "CREATE TABLE u(k INTEGER PRIMARY KEY, v TEXT NOT NULL);"
			    "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT NOT NULL);"
			    "CREATE TABLE z(k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
		for (int i = 0; i < 3; i++) {
			snprintf(
				sql, sizeof sql,
				"WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1"
				" FROM n WHERE k < 300) INSERT INTO %s SELECT k, %s FROM n",
				i == 0	 ? "u"
				: i == 1 ? "t"
					 : "z",
				want);
			exec_ok(db, sql);
		}
		close_db(w, db);
		assert_int_equal(simvfs_corrupt(w->vfs, "m1", name, "t", 30, &flipped),
				 0);
		assert_int_equal(flipped, 30);
		db = open_db(w, "m1", name);
		/* the other tables: every row as written */
		for (int i = 0; i < 2; i++) {
			snprintf(sql, sizeof sql,
				 "SELECT count(*) FROM %s WHERE v IS NOT %s",
				 i == 0 ? "u" : "z", want);
			assert_int_equal(query_int(db, sql), 0);
		}
		/* t's b-tree: every key there */
		assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 300);
		assert_int_equal(query_int(db, "SELECT sum(k) FROM t"), 300 * 301 / 2);
		/* and some row's values altered (or its record malformed) */
		snprintf(sql, sizeof sql, "SELECT count(*) FROM t WHERE v IS NOT %s",
			 want);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		bad = rc == SQLITE_OK ? query_int(db, sql) : 1;
		assert_true(bad > 0);
		close_db(w, db);
	}
	/* no such table: nothing flipped (the runner says so) */
	assert_int_equal(simvfs_corrupt(w->vfs, "m1", "t0.db", "absent", 3, &none), 0);
	assert_int_equal(none, 0);
}

/* Page-granular copy-on-write (issue 18): a crash after unsynced writes to
 * a few scattered pages of a large synced file (and a growth past its
 * synced size) loses exactly those writes, every other byte being the
 * synced one, through rounds that save more pages each time (1, 2, 5, 9:
 * past every growth of the room kept for saved pages) and a sync between
 * rounds that makes the new bytes the synced ones. */
static void test_simdisk_crash_loses_exactly_the_unsynced_pages(void **state)
{
	struct test_world *w = *state;
	enum { PAGES = 40, PAGE = 4096, ROUNDS = 4 };
	static const unsigned touched[ROUNDS][9] = {
		{7}, {0, 39}, {1, 2, 3, 20, 38}, {4, 5, 9, 11, 13, 17, 19, 23, 31}};
	static const unsigned count[ROUNDS] = {1, 2, 5, 9};
	unsigned char *synced = malloc(PAGES * PAGE), *got = malloc((PAGES + 3) * PAGE);
	unsigned char junk[PAGE];
	sqlite3_file *f;

	assert_non_null(synced);
	assert_non_null(got);
	for (size_t i = 0; i < PAGES * PAGE; i++)
		synced[i] = (unsigned char)(i * 7 + i / PAGE);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(f->pMethods->xWrite(f, synced, PAGES * PAGE, 0), SQLITE_OK);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	for (unsigned r = 0; r < ROUNDS; r++) {
		memset(junk, 0xA0 + (int)r, sizeof junk);
		/* a part of each page (not its start) and one write across two
		 * pages, then growth past the synced size */
		for (unsigned i = 0; i < count[r]; i++)
			assert_int_equal(
				f->pMethods->xWrite(f, junk, 100 + (int)i,
						    (int64_t)touched[r][i] * PAGE + 1000),
				SQLITE_OK);
		assert_int_equal(f->pMethods->xWrite(f, junk, 200, 12 * PAGE - 100),
				 SQLITE_OK);
		assert_int_equal(f->pMethods->xWrite(f, junk, PAGE, (PAGES + 2) * PAGE),
				 SQLITE_OK);
		assert_int_equal(file_size(f), (PAGES + 3) * PAGE);
		file_close(w, f);
		simvfs_crash_begin(w->vfs, "m1");
		simvfs_crash_end(w->vfs, "m1", true);
		f = file_open(w, "/m1/raw", FILE_RW);
		assert_int_equal(file_size(f), PAGES * PAGE);
		assert_int_equal(f->pMethods->xRead(f, got, PAGES * PAGE, 0), SQLITE_OK);
		assert_memory_equal(got, synced, PAGES * PAGE);
		/* the next round's synced image: this round's writes, synced */
		for (unsigned i = 0; i < count[r]; i++) {
			size_t off = (size_t)touched[r][i] * PAGE + 1000;
			assert_int_equal(
				f->pMethods->xWrite(f, junk, 100 + (int)i, (int64_t)off),
				SQLITE_OK);
			memset(synced + off, 0xA0 + (int)r, 100 + i);
		}
		assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	}
	file_close(w, f);
	free(synced);
	free(got);
}

/* A torn sync (issue 19) at page granularity: only the pages written since
 * the last sync can tear; every other page of the file keeps its synced
 * bytes exactly, and a written page is, sector by sector, old or new. */
static void test_simdisk_torn_sync_tears_only_written_pages(void **state)
{
	struct test_world *w = *state;
	enum { PAGES = 40, PAGE = 4096 };
	static const unsigned written[] = {2, 9, 30};
	unsigned char *old = malloc(PAGES * PAGE), *got = malloc(PAGES * PAGE);
	unsigned char neu[PAGE];
	sqlite3_file *f;

	assert_non_null(old);
	assert_non_null(got);
	memset(old, 'o', PAGES * PAGE);
	memset(neu, 'n', sizeof neu);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(f->pMethods->xWrite(f, old, PAGES * PAGE, 0), SQLITE_OK);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	for (size_t i = 0; i < sizeof written / sizeof written[0]; i++)
		assert_int_equal(
			f->pMethods->xWrite(f, neu, PAGE, (int64_t)written[i] * PAGE),
			SQLITE_OK);
	assert_int_equal(simvfs_fault(w->vfs, "m1", SIMVFS_FAULT_TORN, INT64_MAX), 0);
	assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_IOERR_FSYNC);
	assert_int_equal(simvfs_fault(w->vfs, "m1", 0, 0), 0);
	assert_int_equal(file_size(f), PAGES * PAGE);
	assert_int_equal(f->pMethods->xRead(f, got, PAGES * PAGE, 0), SQLITE_OK);
	for (unsigned p = 0; p < PAGES; p++) {
		bool was_written = p == 2 || p == 9 || p == 30;
		for (unsigned b = 0; b < PAGE; b++) {
			unsigned char c = got[p * PAGE + b];
			assert_int_equal(c, got[p * PAGE + (b / 512) * 512]);
			assert_true(c == 'o' || (was_written && c == 'n'));
		}
	}
	/* what the tear left is the synced image: a crash now keeps it */
	memcpy(old, got, PAGES * PAGE);
	file_close(w, f);
	simvfs_crash_begin(w->vfs, "m1");
	simvfs_crash_end(w->vfs, "m1", true);
	f = file_open(w, "/m1/raw", FILE_RW);
	assert_int_equal(f->pMethods->xRead(f, got, PAGES * PAGE, 0), SQLITE_OK);
	assert_memory_equal(got, old, PAGES * PAGE);
	file_close(w, f);
	free(old);
	free(got);
}

/* Memory (issue 18): sqlite allocates no bulk page cache on the simulated
 * disks (it used to allocate 20 pages, some 87 KiB, up front for every
 * page cache, twice per connection: two thirds of a simulated worker's
 * memory). A small database, opened, written and read, costs sqlite less
 * than 64 KiB. */
static void test_simdisk_connection_allocates_no_bulk_page_cache(void **state)
{
	struct test_world *w = *state;
	sqlite3_int64 before = sqlite3_memory_used(), after;
	sqlite3 *db = open_db(w, "w1", "agent.db");

	exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
		    "INSERT INTO t VALUES (1, 'one');");
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	{
		char ok[16];
		query_text(db, "PRAGMA quick_check", ok, sizeof ok);
		assert_string_equal(ok, "ok");
	}
	after = sqlite3_memory_used();
	print_message("sqlite memory of one small database: %lld bytes\n",
		      (long long)(after - before));
	assert_true(after - before < 64 * 1024);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_simdisk_committed_table_survives_reopen),
		T(test_simdisk_database_past_the_soft_bound_reads_back_whole),
		T(test_simdisk_committed_data_survives_crash_losing_unsynced),
		T(test_simdisk_writes_during_crash_do_not_reach_disk),
		T(test_simdisk_crash_mid_transaction_rolls_back_keeping_unsynced),
		T(test_simdisk_crash_mid_transaction_rolls_back_losing_unsynced),
		T(test_simdisk_unsynced_bytes_lost_synced_bytes_kept),
		T(test_simdisk_unsynced_bytes_kept_when_crash_keeps_them),
		T(test_simdisk_truncate_after_sync_is_lost_with_unsynced),
		T(test_simdisk_crash_restores_exactly_the_synced_image),
		T(test_simdisk_disks_are_independent),
		T(test_simdisk_deleted_file_is_gone),
		T(test_simdisk_file_deleted_while_open_lives_until_close),
		T(test_simdisk_delete_on_close_removes_file),
		T(test_simdisk_delete_during_crash_is_dropped),
		T(test_simdisk_short_read_zero_fills),
		T(test_simdisk_new_file_reuses_a_deleted_ones_buffer_unseen),
		T(test_simdisk_file_over_limit_is_full),
		T(test_simdisk_temp_files_stay_off_the_disks),
		T(test_simdisk_two_connections_lock_each_other),
		T(test_simdisk_pending_writer_keeps_new_readers_out),
		T(test_simdisk_open_rejects_bad_names),
		T(test_simdisk_wal_is_refused),
		T(test_simdisk_create_refuses_taken_name),
		T(test_simdisk_sqlite_time_follows_callback),
		cmocka_unit_test(test_simdisk_sqlite_randomness_follows_seed),
		T(test_simdisk_disk_hash_tracks_content),
		T(test_simdisk_eio_on_write_fails_commit),
		T(test_simdisk_eio_on_sync_fails_commit),
		T(test_simdisk_full_disk_fails_commit),
		T(test_simdisk_failed_sync_keeps_nothing_new),
		T(test_simdisk_full_disk_refuses_only_growth),
		T(test_simdisk_eio_on_write_fails_write_and_truncate),
		T(test_simdisk_fault_ends_at_its_time),
		T(test_simdisk_crash_drops_writes_under_a_fault),
		T(test_simdisk_torn_crash_tears_unsynced_pages),
		T(test_simdisk_torn_fault_fails_no_call),
		T(test_simdisk_sqlite_survives_torn_crash),
		T(test_simdisk_corrupt_flips_bits_that_stay),
		T(test_simdisk_corrupt_is_seen_by_sqlite),
		T(test_simdisk_corrupt_table_flips_only_its_rows),
		T(test_simdisk_crash_loses_exactly_the_unsynced_pages),
		T(test_simdisk_torn_sync_tears_only_written_pages),
		T(test_simdisk_connection_allocates_no_bulk_page_cache),
	};
#undef T
	return cmocka_run_group_tests_name("simdisk", tests, NULL, NULL);
}
