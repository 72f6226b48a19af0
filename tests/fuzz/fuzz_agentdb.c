/* fuzz_agentdb: the agent's task database as a restarted worker reads it
 * (core/agent.c's agent_db_init and agent_load: the agent_tasks rows, each a
 * Task blob, a state, an exit code, a message, env_held; agent_meta's
 * node_id), not sqlite itself. The input is a list of rows; they replace
 * w1's rows in its database on the live simulated cluster of
 * tests/fuzz/fworld while w1's process is down, then w1 starts again and
 * the world runs 3 s. Properties: the agent starts or refuses (its process
 * then stays down), never crashes or misreads memory; the cluster's and the
 * runtime's invariants hold after every event (a row that claims a task
 * never makes a second container for a slot, nor a container of a task the
 * manager does not know survive); the leader stays. Row format: a 1-byte
 * state, a 1-byte flags (bit 0 env_held, bit 1 a NULL message), a 1-byte
 * message length and the message, a 2-byte big-endian task length and the
 * Task blob; rows follow one another until the input ends. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/node.h"
#include "sim/cluster.h"
#include "sim/world.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fworld.h"

static struct fworld fw;

/* What w1 runs while the harness writes its disk: nothing. */
static int idle_start(const void *cfg, struct env *env, void **state)
{
	*state = NULL;
	return 0;
}
static void idle_stop(void *state)
{
}
static const struct env_program_ops idle_program = {.start = idle_start,
						    .stop = idle_stop};

/* w1's real rows after the fixture was built, in the input's format */
static char *good;
static size_t good_len;

/* w1's rows, in the input's format, into fp. */
static void dump_rows(FILE *fp)
{
	struct env *e = world_node_env(fw.w, fw.w1);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	FUZZ_CHECK(fp && e && e->ops->storage_open(e, "agent", &db) == 0);
	FUZZ_CHECK(sqlite3_prepare_v2(
			   db, "SELECT task, state, message, env_held FROM agent_tasks",
			   -1, &st, NULL) == SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t tl = (size_t)sqlite3_column_bytes(st, 0);
		const unsigned char *m = sqlite3_column_text(st, 2);
		size_t ml = m ? strlen((const char *)m) : 0;
		if (ml > 255)
			ml = 255;
		fputc(sqlite3_column_int(st, 1), fp);
		fputc((sqlite3_column_int(st, 3) ? 1 : 0) | (m ? 0 : 2), fp);
		fputc((int)ml, fp);
		fwrite(m ? (const void *)m : "", 1, ml, fp);
		fputc((int)(tl >> 8), fp);
		fputc((int)(tl & 0xff), fp);
		fwrite(sqlite3_column_blob(st, 0), 1, tl, fp);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char msg[256];
	fworld_new(&fw, 23);
	fworld_create_web(&fw, 4);
	FUZZ_CHECK(fworld_run(&fw, 5000000, msg, sizeof msg));
	{
		FILE *fp = open_memstream(&good, &good_len);
		FUZZ_CHECK(fp);
		dump_rows(fp);
		fclose(fp);
	}
	if (getenv("FUZZ_DUMP")) { /* FUZZ_DUMP=FILE: the seed */
		FILE *fp = fopen(getenv("FUZZ_DUMP"), "wb");
		FUZZ_CHECK(fp);
		fwrite(good, 1, good_len, fp);
		fclose(fp);
	}
	return 0;
}

/* Writes the input's rows into w1's agent database (the tables made as the
 * agent makes them when missing). */
static void write_rows(const uint8_t *data, size_t size)
{
	struct env *e = world_node_env(fw.w, fw.w1);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t off = 0;
	int64_t id = 1;

	FUZZ_CHECK(e && e->ops->storage_open(e, "agent", &db) == 0);
	FUZZ_CHECK(
		sqlite3_exec(
			db,
			"CREATE TABLE IF NOT EXISTS agent_tasks(id INTEGER PRIMARY KEY,"
			" task BLOB NOT NULL, state INTEGER NOT NULL, exit_code INTEGER,"
			" message TEXT, env_held INTEGER NOT NULL DEFAULT 0);"
			"DELETE FROM agent_tasks",
			NULL, NULL, NULL) == SQLITE_OK);
	FUZZ_CHECK(sqlite3_prepare_v2(
			   db,
			   "INSERT OR REPLACE INTO agent_tasks(id, task, state,"
			   " exit_code, message, env_held) VALUES (?, ?, ?, ?, ?, ?)",
			   -1, &st, NULL) == SQLITE_OK);
	while (off + 5 <= size) {
		uint8_t state = data[off], flags = data[off + 1], mlen = data[off + 2];
		size_t tlen;
		const uint8_t *msg, *task;
		Cs__Task *t;

		off += 3;
		if (off + mlen + 2 > size)
			break;
		msg = data + off;
		off += mlen;
		tlen = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (off + tlen > size)
			tlen = size - off;
		task = data + off;
		off += tlen;
		/* the row's id is its task's when the blob says one */
		t = cs__task__unpack(NULL, tlen, task);
		sqlite3_bind_int64(st, 1, t && t->id ? (int64_t)t->id : id++);
		if (t)
			cs__task__free_unpacked(t, NULL);
		sqlite3_bind_blob(st, 2, tlen ? task : (const void *)"", (int)tlen,
				  SQLITE_STATIC);
		sqlite3_bind_int(st, 3, state);
		sqlite3_bind_int(st, 4, (int)(int8_t)flags);
		if (flags & 2)
			sqlite3_bind_null(st, 5);
		else
			sqlite3_bind_text(st, 5, (const char *)msg, mlen, SQLITE_STATIC);
		sqlite3_bind_int(st, 6, flags & 1);
		FUZZ_CHECK(sqlite3_step(st) == SQLITE_DONE);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[256];
	bool ok;

	const void *cfg = simcluster_node_cfg(fw.c, "w1", 0, 0, 1, 4000, 8ull << 30);

	/* w1's process dies; an idle one writes the rows on its disk (its
	 * containers keep running), then the agent starts on them */
	if (world_node_is_up(fw.w, fw.w1))
		FUZZ_CHECK(world_node_kill(fw.w, fw.w1, false, false) == 0);
	world_node_set_program(fw.w, fw.w1, &idle_program, NULL);
	FUZZ_CHECK(world_node_start(fw.w, fw.w1) == 0);
	write_rows(data, size);
	FUZZ_CHECK(world_node_kill(fw.w, fw.w1, false, false) == 0);
	world_node_set_program(fw.w, fw.w1, &node_program, cfg);
	if (world_node_start(fw.w, fw.w1) != 0) {
		/* refused (a row that does not decode: CS_ECORRUPT). Today such
		 * an agent stays down while its containers run on, and the
		 * cluster replaces them (issue 19's storage section wants it to
		 * start clean and adopt them by their labels instead): put the
		 * good rows back at once, and it must start on them. */
		FUZZ_CHECK(!world_node_is_up(fw.w, fw.w1));
		world_node_set_program(fw.w, fw.w1, &idle_program, NULL);
		FUZZ_CHECK(world_node_start(fw.w, fw.w1) == 0);
		write_rows((const uint8_t *)good, good_len);
		FUZZ_CHECK(world_node_kill(fw.w, fw.w1, false, false) == 0);
		world_node_set_program(fw.w, fw.w1, &node_program, cfg);
		FUZZ_CHECK(world_node_start(fw.w, fw.w1) == 0);
	}
	ok = fworld_run(&fw, 3000000, msg, sizeof msg);
	if (!ok)
		fprintf(stderr, "invariant: %s\n", msg);
	FUZZ_CHECK(ok);
	FUZZ_CHECK(simcluster_leader(fw.c) == (int64_t)fw.m1);
	return 0;
}
