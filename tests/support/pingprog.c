#include "tests/support/pingprog.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

static void pingprog_recv(struct env *env, const char *from, const uint8_t *buf,
			  size_t len, void *data)
{
	struct pingprog *p = data;
	if (len >= 4 && memcmp(buf, "ping", 4) == 0) {
		p->pings_received++;
		env->ops->send(env, from, (const uint8_t *)"pong", 4);
	} else if (len >= 4 && memcmp(buf, "pong", 4) == 0) {
		p->pongs_received++;
		if (p->db)
			sqlite3_exec(p->db, "UPDATE counts SET pongs = pongs + 1", NULL,
				     NULL, NULL);
	}
}

static void pingprog_tick(struct env *env, env_timer_id id, void *data)
{
	struct pingprog *p = data;
	const char *self = env->ops->self_addr(env);
	const char *peer;

	if (p->cfg->peer_count == 0)
		return;
	peer = p->cfg->peers[env->ops->random_u64(env) % p->cfg->peer_count];
	if (strcmp(peer, self) == 0)
		return;
	if (env->ops->send(env, peer, (const uint8_t *)"ping", 4) == 0)
		p->pings_sent++;
}

static int pingprog_open_db(struct pingprog *p)
{
	sqlite3_stmt *st;
	if (p->env->ops->storage_open(p->env, "ping", &p->db))
		return CS_ESTORAGE;
	if (sqlite3_exec(
		    p->db,
		    "CREATE TABLE IF NOT EXISTS counts(pongs INTEGER);"
		    "INSERT INTO counts SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counts);",
		    NULL, NULL, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	if (sqlite3_prepare_v2(p->db, "SELECT pongs FROM counts", -1, &st, NULL) !=
	    SQLITE_OK)
		return CS_ESTORAGE;
	if (sqlite3_step(st) == SQLITE_ROW)
		p->stored_pongs = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int pingprog_start(const void *cfg, struct env *env, void **state)
{
	struct pingprog *p = calloc(1, sizeof *p);
	int rv;

	if (!p)
		return CS_ENOMEM;
	p->env = env;
	p->cfg = cfg;
	if (p->cfg->persist && (rv = pingprog_open_db(p)) != 0)
		goto err_free;
	env->ops->listen(env, pingprog_recv, NULL, p);
	rv = env->ops->timer_start(env, p->cfg->period_ms, p->cfg->period_ms,
				   pingprog_tick, p, &p->timer);
	if (rv)
		goto err_free;
	*state = p;
	return 0;
err_free:
	free(p);
	return rv;
}

static void pingprog_stop(void *state)
{
	free(state);
}

const struct env_program_ops pingprog_ops = {
	.start = pingprog_start,
	.stop = pingprog_stop,
};
