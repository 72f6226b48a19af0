/* agent: session, heartbeats, assignments, task managers, persistence.
 * See agent.h. Sections: storage, tasks table, task managers, reporting,
 * session, frames, lifecycle. */
#include "core/agent.h"

#include <assert.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/grow.h"
#include "core/keymanager.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "core/nodecert.h"
#include "core/seal.h"
#include "core/secret.h"
#include "core/store.h"

enum {
	AGENT_TICK_MS_MAX = 1000, /* heartbeat, resend and retry clock */
	/* a task's new state is reported this soon (states changing within
	 * it go together), not at the next tick: the tick resends what was
	 * not acknowledged */
	AGENT_REPORT_SOON_MS = 20,
	/* issue 18: a state sent and not acknowledged is sent again after
	 * this, then after twice as long each time, to the max (SwarmKit's
	 * reporter retries with backoff): a leader slow to answer (its
	 * write in flight) is not sent every state again every second. A
	 * new session sends everything unacknowledged at once. At 5,000
	 * agents a status write took 1 to 3 s: with a first resend after 1 s,
	 * over half the reports the leader received were resends (stale or
	 * replacing one queued). */
	AGENT_RESEND_MS_MIN = 4000,
	AGENT_RESEND_MS_MAX = 8000,
	AGENT_BACKOFF_MS_MIN = 250, /* reconnect backoff, doubled to the max */
	AGENT_BACKOFF_MS_MAX = 5000,
	AGENT_HB_RETRY_MS = 1000, /* an unanswered heartbeat is sent again */
	AGENT_SESSION_GRACE = 3,  /* periods without an answer: session lost */
	/* Docker's, when the spec gives no stop grace period */
	AGENT_STOP_TIMEOUT_MS = 10000,
	/* a health-checked container's inspect: every second until healthy,
	 * then every interval of its check, within 1s..5s (Docker's verdict
	 * changes only once a probe ended) */
	AGENT_HEALTH_POLL_MS = 1000,
	AGENT_HEALTH_RUNNING_POLL_MS_MAX = 5000,
	AGENT_MANAGERS_MAX = 16,
	/* a follower names the leader it last heard of until its own
	 * election timeout: a redirect to a manager that left a connect
	 * unanswered this recently is not followed, once (the next manager
	 * of the list is tried instead; a lost message must not keep the
	 * agent from a live leader) */
	AGENT_STALE_REDIRECT_MS = 30000,
	/* issue 18: the manager whose connection closed under the session is
	 * passed over in the list's turn for this long (the longest of
	 * SwarmKit's randomized election timeouts, 10 to 20 ticks of 1 s:
	 * another is elected by then if it died), then every other turn
	 * until AGENT_STALE_REDIRECT_MS (agent_passed_over) */
	AGENT_GONE_PASSED_MS = 20000,
	/* ... but only once it refused a connect since (its process is gone:
	 * a live manager accepts). Without that, only until this many
	 * heartbeat periods after the last heartbeat sent: a manager alive
	 * behind a closed connection (a link that failed for seconds, a
	 * leader too busy to answer the first reconnect) must be asked again
	 * before its dispatcher declares the node down (3 periods without a
	 * heartbeat) */
	AGENT_GONE_PASSED_PERIODS = 2,
	/* redirects followed at once, in a row, before the tick paces them
	 * (two followers naming each other cannot make a storm) */
	AGENT_REDIRECTS_AT_ONCE = 3,
	/* issue 18: session answers built from an older store than the
	 * agent was given (a deposed leader's, a late one) refused in a row
	 * before one is taken all the same: a cluster restored from a backup
	 * (issue 20) starts from an older index, and its agents must not
	 * refuse it for ever. A deposed leader steps down within an election
	 * timeout; the agent tries another manager after each refusal. */
	AGENT_STALE_REFUSALS_MAX = 8,
	/* issue 18: for this long after its session ended, while the
	 * managers elect a leader, an agent tries again at least this often
	 * (its backoff capped): a manager that answered "no leader" will
	 * name the new one at once, and the new leader must have every agent
	 * back within a heartbeat of its election, not a 5 s backoff later.
	 * Past it (no quorum for long), the backoff grows as before. */
	AGENT_ELECTION_WATCH_MS = 30000,
	AGENT_ELECTION_RETRY_MS = 1000,
	/* issue 18: a connect left unanswered for two ticks by a manager
	 * that another named as the leader is asked again on the same
	 * connection this many times before the next manager is tried: a new
	 * leader taking thousands of sessions at once answers late, and a
	 * detour through a follower (whose redirect back to it is then
	 * passed over once) cost seconds more. Its dispatcher answers the
	 * same request again with the same session. */
	AGENT_REASKS_MAX = 1,
};

enum agent_link { AGENT_DISCONNECTED, AGENT_CONNECTING, AGENT_READY };

struct agent_task {
	struct agent *a;
	uint64_t id;
	Cs__Task *assigned;  /* the last assignment (owned), NULL once removed */
	Cs__TaskState state; /* what this agent observed */
	Cs__TaskState acked; /* the last state the dispatcher acknowledged */
	Cs__TaskState sent;  /* the last state sent in this session, 0: none */
	ms_t sent_ms;	     /* when it was last sent */
	ms_t resend_ms;	     /* it is sent again this long after sent_ms */
	int32_t exit_code;
	char *message; /* agent_task_text_set's: owned, NULL for "" */
	struct env_ctl *ctl;
	struct env_ctl_req op;	 /* one operation in flight */
	ms_t op_started_ms;	 /* when it was asked (metrics) */
	struct env_ctl_req wait; /* ENV_CTL_WAIT, alongside */
	enum env_ctl_op op_kind; /* of op, while op_busy */
	bool op_busy, waiting, closing;
	bool deferred;	/* op_busy, but asked only once the transaction commits */
	bool dirty;	/* in agent.dirty: saved when the open transaction ends */
	bool stopping;	/* a SHUTDOWN is in flight: SHUTDOWN once it is done */
	bool removed;	/* unassigned: stop, remove, forget */
	bool removing;	/* the REMOVE is in flight */
	bool wait_lost; /* the last WAIT failed: inspect, then wait again */
	/* the START answered an error: inspect before FAILED, for a start cut
	 * short (dockerd restarting) may have started the container */
	bool start_failed;
	char *start_error; /* Docker's words (agent_task_text_set's) */
	/* a container found by its labels that no known task owns: it has no
	 * assignment and is never reported; stopped and removed once the
	 * first full set of assignments does not name it */
	bool orphan;
	/* loaded from the database at start: its container may run (or have
	 * exited) unseen, so it is not stepped before adoption; a task this
	 * process got fresh has no container but what it made itself */
	bool loaded;
	/* loaded without its env values, which never reach the disk (they
	 * hold secrets): not prepared until an assignment brings them back */
	bool env_held;
	/* issue 14, health checks (SwarmKit's container controller): with a
	 * health check in its spec, a started task stays STARTING until its
	 * runtime says healthy (started), then RUNNING; its container's
	 * health is read by an INSPECT when agent_health_poll_ms says
	 * (health_at_ms; health_poll while one is in flight); once unhealthy,
	 * it is stopped
	 * and FAILED ("unhealthy container"), whatever its exit code, so that
	 * the restart policy replaces it. In memory only: a restarted agent
	 * reads the health again. */
	bool started;
	bool health_poll;
	bool unhealthy;
	ms_t health_at_ms;	/* see agent_health_poll_ms */
	uint32_t stop_failures; /* stops failed in a row: then TERMINATE */
	ms_t retry_at_ms;	/* 0, or a failed call is asked again then */
	ms_t backoff_ms;	/* the last retry's delay, 0 after a success */
	uint64_t mark;		/* the full set that last named it */
	/* its row holds this assignment (written by agent_db_save, or read at
	 * load): a save writes the state alone (agent_db_save_state) */
	bool row_whole;
	char id_text[17], service_text[17];
};

struct agent {
	struct env *env;
	const struct agent_cfg *cfg;
	struct sqlite3 *db;
	uint64_t node_id, session_id, seq;
	/* the highest Assignments.store_index applied: a session answer or
	 * an Assignments built from an older store (a deposed leader's, a
	 * late answer) would unassign what a newer one gave, and the task
	 * would be started again when it comes back */
	uint64_t index_seen;
	unsigned stale_refused; /* in a row (AGENT_STALE_REFUSALS_MAX) */
	enum agent_link link;
	char managers[AGENT_MANAGERS_MAX][LIMIT_ADDR_BYTES_MAX];
	size_t manager_count, next_manager;
	char target[LIMIT_ADDR_BYTES_MAX];
	/* the task table's two statements of every state change, prepared
	 * once (a prepare per save was 7 to 11% of a large simulation);
	 * finalized in agent_stop, before the env closes the database */
	sqlite3_stmt *save_st, *forget_st;
	sqlite3_stmt *state_st; /* agent_db_save_state's UPDATE */
	/* issue 18: BEGIN and COMMIT, prepared once too (sqlite3_exec parsed
	 * them at every transaction: two or three per task) */
	sqlite3_stmt *begin_st, *commit_st;
	/* the manager that last left a connect unanswered, and when */
	char unanswered[LIMIT_ADDR_BYTES_MAX];
	ms_t unanswered_ms;
	unsigned redirects; /* followed at once since the last connect by the tick */
	/* the target is a manager another named as the leader (a redirect),
	 * and the connects to it left unanswered and asked again since */
	bool target_named;
	unsigned reasks;
	ms_t heartbeat_ms, tick_ms;
	ms_t last_answer_ms, last_hb_ms, next_connect_ms, backoff_ms;
	ms_t lost_ms; /* when the last session ended (0: none did) */
	/* since then, a live manager answered that it knows no leader to go
	 * to (agent_disconnect_electing) */
	bool electing;
	/* the manager whose connection closed under this agent's session,
	 * and when; "" once anything was heard from it since. Followers name
	 * it until their own election timeout: their redirects to it are
	 * passed over (it is still tried in the list's turn) */
	char gone[LIMIT_ADDR_BYTES_MAX];
	ms_t gone_ms;
	bool gone_passed;  /* passed over at its last turn (agent_passed_over) */
	bool gone_refused; /* it refused a connect since it went (agent_peer) */
	bool hb_pending;
	env_timer_id tick_timer;
	env_timer_id report_timer; /* a report soon; 0: none armed */
	/* the next connect when it is due before the next tick; 0: none */
	env_timer_id connect_timer;
	struct agent_task **tasks; /* sorted by id */
	size_t task_count, task_cap;
	struct agent_task **closing; /* forgotten, controller closing */
	size_t closing_count, closing_cap;
	struct agent_list_ctx *listing; /* the adoption listing in flight */
	/* adoption: the executor's list has come back and been matched; no
	 * task is stepped before (what really runs decides what to do) */
	bool adopted;
	ms_t list_retry_ms, list_backoff_ms;
	/* full sets of assignments, in parts (Assignments.more): the set being
	 * received marks the tasks it names with full_gen; at its last part
	 * what it did not name is unassigned */
	bool full_open;
	uint64_t full_set_seq; /* the open set's first seq (Assignments.set_seq) */
	bool synced;	       /* a whole full set arrived since the process started */
	uint64_t full_gen;
	bool retry_pending; /* some task has retry_at_ms set */
	/* a transaction is open: executor calls wait in `deferred` until it
	 * commits, so that nothing is asked on the strength of a state the
	 * disk may not keep */
	bool in_tx;
	struct agent_task **deferred;
	size_t deferred_count, deferred_cap;
	/* issue 18: the tasks whose row changed in the open transaction, in
	 * the order they first changed; each is written once, at its end
	 * (agent_tx_end), not once per state it passed through: a task went
	 * ASSIGNED, ACCEPTED, PREPARING in one transaction and READY,
	 * STARTING in the next, six row writes (a protobuf packed each time)
	 * for three commits */
	struct agent_task **dirty;
	size_t dirty_count, dirty_cap;
	/* issue 18: outside a transaction, saves go on agent.dirty too, to be
	 * written by the next transaction or the next tick (agent_tx_lazy):
	 * only for a state a restart recovers from the executor alone */
	bool lazy;
	uint64_t saves; /* task rows written (agent_saves) */
	bool dying;
	bool dead;    /* a durable write failed: env exit asked, no new work */
	bool refused; /* the cluster refused this node: stop */
	uint32_t join_unanswered; /* join requests sent since the last answer */
	struct metrics_hist exec_ms[ENV_CTL_INSPECT + 1]; /* executor calls, by op */
	Cs__NodeRole told_role; /* the last desired role passed to on_role */
	Cs__NodeRole desired;	/* the last role the cluster said it wants */
	struct nodecert nc;	/* this node's certificate (issue 13) */
	/* the cluster's removed nodes, as the last session or heartbeat
	 * answer said (sorted; kept in agent_removed, so that a restarted
	 * agent refuses them before its first session); frames from their
	 * certificates are refused */
	uint64_t *removed;
	size_t removed_count;
	uint64_t db_resets;	 /* clean starts on a corrupt database (issue 19) */
	uint64_t removed_digest; /* 0: no list yet */
	uint64_t hb_installs;	 /* nc.installs when the last heartbeat went */
	struct agent_net *nets;	 /* issue 17: networks its tasks attach to */
	size_t net_count;
	/* issue 17: the cluster's network keys as the session last gave them
	 * (ascending id; in memory only, wiped when replaced or freed), and
	 * their keymgr_digest (0: none) */
	struct env_net_key net_keys[ENV_NET_KEYS_MAX];
	size_t net_key_count;
	uint64_t net_keys_digest;
	struct agent_logs *logs; /* issue 16: log reads in flight */
};

/* ---------------------------------------------------------------- storage */

static void agent_removed_take(struct agent *a, uint64_t *ids, size_t n);

/* Reads the removed-node list the last session left. Returns 0,
 * CS_ESTORAGE or CS_ENOMEM. */
static int agent_db_removed_load(struct agent *a)
{
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(a->db, "SELECT id FROM agent_removed", -1, &st, NULL) !=
	    SQLITE_OK)
		return CS_ESTORAGE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			uint64_t *p = realloc(ids, c * sizeof *p);
			if (!p) {
				sqlite3_finalize(st);
				free(ids);
				return CS_ENOMEM;
			}
			ids = p;
			cap = c;
		}
		ids[n++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(ids);
		return CS_ESTORAGE;
	}
	if (n)
		agent_removed_take(a, ids, n);
	else
		free(ids);
	return 0;
}

static int agent_db_init(struct agent *a)
{
	sqlite3_stmt *st;
	int rc;

	if (a->env->ops->storage_open(a->env, "agent", &a->db))
		return CS_ESTORAGE;
	/* Issue 19: damage found now is a clean start (agent_db_reset), not
	 * a fatal write later on. quick_check reads every page of the
	 * (small) database once per start. */
	if (sqlite3_prepare_v2(a->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW &&
	    (!sqlite3_column_text(st, 0) ||
	     strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)) {
		env_logf(a->env, ENV_LOG_ERROR,
			 "msg=\"the agent's task database fails its check\" what=\"%s\"",
			 sqlite3_column_text(st, 0)
				 ? (const char *)sqlite3_column_text(st, 0)
				 : "(none)");
		sqlite3_finalize(st);
		return CS_ECORRUPT;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return CS_ESTORAGE;
	/* secure_delete: the env values an older agent wrote are zeroed when
	 * agent_load writes their rows again without them */
	if (sqlite3_exec(
		    a->db,
		    "PRAGMA secure_delete = ON;"
		    "CREATE TABLE IF NOT EXISTS agent_meta(key TEXT PRIMARY KEY,"
		    " value INTEGER NOT NULL);"
		    "CREATE TABLE IF NOT EXISTS agent_tasks(id INTEGER PRIMARY KEY,"
		    " task BLOB NOT NULL, state INTEGER NOT NULL, exit_code INTEGER,"
		    " message TEXT, env_held INTEGER NOT NULL DEFAULT 0);"
		    "CREATE TABLE IF NOT EXISTS agent_removed(id INTEGER PRIMARY KEY);",
		    NULL, NULL, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	/* a table of before env_held */
	if (sqlite3_prepare_v2(a->db, "SELECT env_held FROM agent_tasks LIMIT 0", -1, &st,
			       NULL) == SQLITE_OK)
		sqlite3_finalize(st);
	else if (sqlite3_exec(
			 a->db,
			 "ALTER TABLE agent_tasks ADD COLUMN env_held INTEGER NOT NULL"
			 " DEFAULT 0",
			 NULL, NULL, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	if (sqlite3_prepare_v2(a->db,
			       "SELECT value FROM agent_meta WHERE key = 'node_id'", -1,
			       &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		a->node_id = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return CS_ESTORAGE;
	return agent_db_removed_load(a);
}

/* A durable write failed: what the agent was writing is not on its disk,
 * and acting on it (a start, a report, a removal) could contradict what a
 * restarted agent will find. The process stops (env exit); until then the
 * agent takes no new work and nothing leaves it. */
static void agent_fatal(struct agent *a, const char *what)
{
	char why[320];

	if (a->dead)
		return;
	a->dead = true;
	snprintf(why, sizeof why, "agent: cannot %s: %s", what,
		 a->db ? sqlite3_errmsg(a->db) : "no database");
	env_logf(a->env, ENV_LOG_ERROR, "msg=\"durable write failed\" err=\"%s\"", why);
	a->env->ops->exit(a->env, why);
}

/* Writes the node id. Returns 0 or CS_ESTORAGE. */
static int agent_db_node_id(struct agent *a)
{
	sqlite3_stmt *st;
	int rc;
	if (sqlite3_prepare_v2(a->db,
			       "INSERT OR REPLACE INTO agent_meta VALUES ('node_id', ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)a->node_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : CS_ESTORAGE;
}

/* Writes t's assignment and observed state; durable before it returns
 * (synchronous=FULL is the env's), or with the open transaction. A failure
 * is fatal (agent_fatal): STARTING must be on disk before a start is asked.
 * The container's env values are left out (they hold the service's
 * secrets), and so is the data of its secrets and configs (issue 20):
 * only that it had some (env_held) is written; a restarted agent
 * gets them again with its manager's assignments, and prepares nothing
 * before (agent_task_step). Returns 0, or CS_ESTORAGE / CS_ENOMEM after
 * agent_fatal. */
static int agent_db_save_state(struct agent *a, struct agent_task *t);

/* A task's words as a task state carries them: at most this many bytes
 * (less the NUL), as in the store. */
enum { AGENT_TEXT_BYTES = 256 };

/* text, or "" for NULL. */
static const char *agent_text(const char *text)
{
	return text ? text : "";
}

/* Sets *dst (t's, owned; NULL for "") to src cut to AGENT_TEXT_BYTES - 1
 * bytes; src may be *dst. The words are held in as many bytes as they
 * take (issue 18: two arrays of 256 bytes in place were 40% of a task's
 * entry, 51 MB of a 100,000-task simulation). Out of memory, the words
 * are dropped and the error logged: the state is still right. */
static void agent_task_text_set(struct agent_task *t, char **dst, const char *src)
{
	char *p = NULL;

	if (src && src[0]) {
		p = strndup(src, AGENT_TEXT_BYTES - 1);
		if (!p)
			env_logf(t->a->env, ENV_LOG_ERROR,
				 "msg=\"task's words dropped (out of memory)\" task=%s",
				 t->id_text);
	}
	free(*dst);
	*dst = p;
}

static int agent_db_save(struct agent *a, struct agent_task *t)
{
	const Cs__TaskSpec *ts = t->assigned ? t->assigned->spec : NULL;
	const Cs__ContainerSpec *cs = ts ? ts->container : NULL;
	Cs__Task task;
	Cs__TaskSpec spec;
	Cs__ContainerSpec container;
	sqlite3_stmt *st;
	size_t len;
	uint8_t *buf;
	bool env_held = t->env_held;
	int rc;

	if (!t->assigned || a->dead)
		return a->dead ? CS_ESTORAGE : 0;
	if (t->row_whole)
		return agent_db_save_state(a, t);
	/* shallow copies, the env cut off */
	task = *t->assigned;
	/* issue 20: nor the data of its secrets and configs: in memory only */
	if (task.n_secret_data) {
		task.n_secret_data = 0;
		task.secret_data = NULL;
		env_held = true;
	}
	if (cs && cs->n_env) {
		container = *cs;
		container.n_env = 0;
		container.env = NULL;
		spec = *ts;
		spec.container = &container;
		task.spec = &spec;
		env_held = true;
	}
	len = cs__task__get_packed_size(&task);
	buf = malloc(len ? len : 1);
	if (!buf) {
		agent_fatal(a, "save a task (out of memory)");
		return CS_ENOMEM;
	}
	cs__task__pack(&task, buf);
	rc = SQLITE_OK;
	if (!a->save_st)
		rc = sqlite3_prepare_v2(
			a->db,
			"INSERT OR REPLACE INTO agent_tasks VALUES (?, ?, ?, ?, ?, ?)",
			-1, &a->save_st, NULL);
	st = a->save_st;
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)t->id);
		sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)t->state);
		sqlite3_bind_int(st, 4, t->exit_code);
		sqlite3_bind_text(st, 5, agent_text(t->message), -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 6, env_held);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		/* nothing of buf or t stays bound past this call */
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	free(buf);
	a->saves++;
	if (rc != SQLITE_OK) {
		agent_fatal(a, "save a task");
		return CS_ESTORAGE;
	}
	t->row_whole = true;
	return 0;
}

/* agent_db_save of a task whose row holds its assignment already (issue
 * 18: a task is saved about three times, and packing and writing its
 * whole spec each time was most of the agents' database work): its state,
 * exit code and message only. A row found missing (never expected) is
 * written whole instead. Failures are fatal as in agent_db_save. */
static int agent_db_save_state(struct agent *a, struct agent_task *t)
{
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	if (!a->state_st)
		rc = sqlite3_prepare_v2(a->db,
					"UPDATE agent_tasks SET state = ?, exit_code = ?,"
					" message = ? WHERE id = ?",
					-1, &a->state_st, NULL);
	st = a->state_st;
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, (int)t->state);
		sqlite3_bind_int(st, 2, t->exit_code);
		sqlite3_bind_text(st, 3, agent_text(t->message), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)t->id);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	if (rc != SQLITE_OK) {
		a->saves++;
		agent_fatal(a, "save a task's state");
		return CS_ESTORAGE;
	}
	if (sqlite3_changes(a->db) != 1) {
		t->row_whole = false;
		return agent_db_save(a, t);
	}
	a->saves++;
	return 0;
}

/* Deletes t's row; a failure is fatal as in agent_db_save. */
static void agent_db_forget(struct agent *a, uint64_t id)
{
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR;
	if (a->dead)
		return;
	if (a->forget_st ||
	    sqlite3_prepare_v2(a->db, "DELETE FROM agent_tasks WHERE id = ?", -1,
			       &a->forget_st, NULL) == SQLITE_OK) {
		st = a->forget_st;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
	}
	if (rc != SQLITE_DONE)
		agent_fatal(a, "forget a task");
}

static void agent_task_unsave(struct agent *a, struct agent_task *t);

/* Saves t: at once outside a transaction; inside one, when it ends
 * (agent_tx_end writes every task changed in it once, with its last state,
 * before the COMMIT; executor calls wait for the commit in any case, so
 * nothing is asked on a state not yet written). Returns 0, or an error
 * after agent_fatal (as agent_db_save). */
static int agent_task_save(struct agent *a, struct agent_task *t)
{
	if ((!a->in_tx && !a->lazy) || a->dead) {
		agent_task_unsave(a, t); /* written now, with its last state */
		return agent_db_save(a, t);
	}
	if (t->dirty)
		return 0;
	if (a->dirty_count == a->dirty_cap) {
		size_t cap = a->dirty_cap ? a->dirty_cap * 2 : 64;
		struct agent_task **p = realloc(a->dirty, cap * sizeof *p);
		if (!p)
			return agent_db_save(a, t); /* written now instead */
		a->dirty = p;
		a->dirty_cap = cap;
	}
	a->dirty[a->dirty_count++] = t;
	t->dirty = true;
	return 0;
}

/* t is forgotten or freed: its pending save, if any, is dropped (in
 * order). O(changed tasks), once per task at most. */
static void agent_task_unsave(struct agent *a, struct agent_task *t)
{
	if (!t->dirty)
		return;
	for (size_t i = 0; i < a->dirty_count; i++) {
		if (a->dirty[i] == t) {
			memmove(&a->dirty[i], &a->dirty[i + 1],
				(a->dirty_count - i - 1) * sizeof *a->dirty);
			a->dirty_count--;
			break;
		}
	}
	t->dirty = false;
	assert(!t->dirty);
}

/* Writes every task changed in the open transaction, in the order they
 * first changed (a failure is fatal: agent_db_save). Lazy saves
 * (agent.lazy) go with it. */
static void agent_tx_flush(struct agent *a)
{
	for (size_t i = 0; i < a->dirty_count; i++) {
		struct agent_task *t = a->dirty[i];
		assert(t->dirty);
		t->dirty = false;
		agent_db_save(a, t);
	}
	a->dirty_count = 0;
}

/* ---------------------------------------------------------------- tasks table */

static size_t agent_task_index(const struct agent *a, uint64_t id)
{
	size_t lo = 0, hi = a->task_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a->tasks[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct agent_task *agent_task_get(const struct agent *a, uint64_t id)
{
	size_t i = agent_task_index(a, id);
	return i < a->task_count && a->tasks[i]->id == id ? a->tasks[i] : NULL;
}

/* A new task entry for id, not yet in the table; NULL when out of memory. */
static struct agent_task *agent_task_new(struct agent *a, uint64_t id)
{
	struct agent_task *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->a = a;
	t->id = id;
	snprintf(t->id_text, sizeof t->id_text, "%016" PRIx64, id);
	return t;
}

/* Makes room for n more tasks in the table. Returns 0 or CS_ENOMEM. */
static int agent_tasks_reserve(struct agent *a, size_t n)
{
	size_t cap = a->task_cap ? a->task_cap : 8;
	struct agent_task **p;
	while (cap < a->task_count + n)
		cap *= 2;
	if (cap == a->task_cap)
		return 0;
	p = realloc(a->tasks, cap * sizeof *p);
	if (!p)
		return CS_ENOMEM;
	a->tasks = p;
	a->task_cap = cap;
	return 0;
}

/* Adds a new task for id (not in the table) at its place: O(tasks). Returns
 * it, or NULL when out of memory. */
static struct agent_task *agent_task_add(struct agent *a, uint64_t id)
{
	size_t i = agent_task_index(a, id);
	struct agent_task *t;

	assert(i == a->task_count || a->tasks[i]->id != id);
	if (agent_tasks_reserve(a, 1))
		return NULL;
	t = agent_task_new(a, id);
	if (!t)
		return NULL;
	memmove(&a->tasks[i + 1], &a->tasks[i], (a->task_count - i) * sizeof *a->tasks);
	a->tasks[i] = t;
	a->task_count++;
	return t;
}

static void agent_task_free(struct agent_task *t);

static int agent_task_id_cmp(const void *x, const void *y)
{
	const struct agent_task *tx = *(struct agent_task *const *)x;
	const struct agent_task *ty = *(struct agent_task *const *)y;
	return tx->id < ty->id ? -1 : tx->id > ty->id;
}

/* Merges fresh (n new tasks, none of whose ids is in the table; the
 * pointers are taken, a duplicate freed) into the table in one pass: O(tasks + n log n),
 * where adding them one by one would be O(tasks x n). Returns 0, or
 * CS_ENOMEM with nothing changed. */
static int agent_tasks_merge(struct agent *a, struct agent_task **fresh, size_t n)
{
	size_t i, j, k;

	if (n == 0)
		return 0;
	if (agent_tasks_reserve(a, n))
		return CS_ENOMEM;
	qsort(fresh, n, sizeof *fresh, agent_task_id_cmp);
	/* a task named twice in one frame (never by our dispatcher): one
	 * entry */
	for (i = 1, k = 1; i < n; i++) {
		if (fresh[i]->id == fresh[k - 1]->id)
			agent_task_free(fresh[i]);
		else
			fresh[k++] = fresh[i];
	}
	n = k;
	/* from the back: the table's tail moves up by at most n */
	i = a->task_count;
	j = n;
	k = a->task_count + n;
	while (j > 0) {
		if (i > 0 && a->tasks[i - 1]->id > fresh[j - 1]->id)
			a->tasks[--k] = a->tasks[--i];
		else
			a->tasks[--k] = fresh[--j];
	}
	assert(k == i);
	a->task_count += n;
	return 0;
}

/* Frees task, its secrets' and configs' data zeroed first (issue 20: a
 * secret leaves this agent's memory with its task). */
static void agent_task_msg_free(Cs__Task *task)
{
	for (size_t i = 0; i < task->n_secret_data; i++) {
		Cs__Secret *x = task->secret_data[i];
		if (x && x->data.data)
			seal_wipe(x->data.data, x->data.len);
	}
	cs__task__free_unpacked(task, NULL);
}

static void agent_task_free(struct agent_task *t)
{
	agent_task_unsave(t->a, t);
	if (t->assigned)
		agent_task_msg_free(t->assigned);
	free(t->message);
	free(t->start_error);
	free(t);
}

static void agent_task_closed(struct env_ctl *ctl, void *data)
{
	struct agent_task *t = data;
	struct agent *a = t->a;
	for (size_t i = 0; i < a->closing_count; i++) {
		if (a->closing[i] == t) {
			a->closing[i] = a->closing[--a->closing_count];
			break;
		}
	}
	agent_task_free(t);
}

static bool agent_net_sync(struct agent *a);

/* Drops t from the table and storage; its memory goes once its controller
 * is closed. */
static void agent_task_forget(struct agent *a, struct agent_task *t)
{
	size_t i = agent_task_index(a, t->id);
	assert(i < a->task_count && a->tasks[i] == t);
	memmove(&a->tasks[i], &a->tasks[i + 1],
		(a->task_count - i - 1) * sizeof *a->tasks);
	a->task_count--;
	agent_task_unsave(a, t);
	agent_db_forget(a, t->id);
	if (t->ctl && a->closing_count == a->closing_cap) {
		size_t cap = a->closing_cap ? a->closing_cap * 2 : 8;
		struct agent_task **p = realloc(a->closing, cap * sizeof *p);
		if (p) {
			a->closing = p;
			a->closing_cap = cap;
		}
	}
	if (t->ctl && a->closing_count < a->closing_cap) {
		t->closing = true;
		a->closing[a->closing_count++] = t;
		a->env->ops->ctl_close(t->ctl, agent_task_closed, t);
	} else {
		agent_task_free(t); /* the controller stays with the env */
	}
	agent_net_sync(a); /* its networks, when it was their last task */
}

/* ---------------------------------------------------------------- data plane
 *
 * Issue 17: the state of each network the node's tasks attach to, as the
 * managers send it (api.proto NetworkState, in parts when large), declared
 * to the env by net_set before any PREPARE that attaches to it and again
 * whenever it changes; net_remove once no task of this agent (running,
 * stopping, or waiting for its container's removal) attaches to it. In
 * memory only: a restarted agent is sent every state again by its new
 * session and declares it again (adopted containers keep their network in
 * the meantime: the env keeps what was declared). */

static void agent_task_step(struct agent_task *t);
static void agent_step_ids(struct agent *a, const uint64_t *ids, size_t n);

struct agent_net {
	uint64_t id;
	Cs__NetworkState **parts; /* the whole state (owned), digest != 0 */
	size_t part_count;
	uint64_t digest;	 /* 0: no whole state */
	Cs__NetworkState **pend; /* a state whose parts are arriving */
	size_t pend_count;
	uint64_t set_digest;	/* the state net_set accepted (0: none) */
	uint64_t failed_digest; /* the state net_set refused (0: none) */
	int failed_rv;
	char failed_words[LIMIT_NET_ERROR_BYTES]; /* the env's, or "" */
	bool declared; /* net_set accepted something, no net_remove since */
	/* the node IP of each endpoint last declared, by task id: an endpoint
	 * whose node a new leader cannot place yet (no address in its record,
	 * no session: the simulator's nodes) keeps the one it had */
	struct agent_net_ip *ips;
	size_t ip_count;
};

struct agent_net_ip {
	uint64_t task_id;
	char ip[LIMIT_ADDR_BYTES_MAX];
};

static int agent_net_ip_cmp(const void *x, const void *y)
{
	uint64_t a = ((const struct agent_net_ip *)x)->task_id;
	uint64_t b = ((const struct agent_net_ip *)y)->task_id;
	return a < b ? -1 : a > b;
}

/* The IP n last declared for task_id's endpoint, or NULL. */
static const char *agent_net_ip_of(const struct agent_net *n, uint64_t task_id)
{
	struct agent_net_ip key = {.task_id = task_id};
	const struct agent_net_ip *f = n->ip_count
					       ? bsearch(&key, n->ips, n->ip_count,
							 sizeof *n->ips, agent_net_ip_cmp)
					       : NULL;
	return f ? f->ip : NULL;
}

/* Remembers the node IPs of the endpoints just declared (eps, ne). Out of
 * memory: remembers none (a later state fills them). */
static void agent_net_ips_keep(struct agent_net *n, const struct env_net_endpoint *eps,
			       size_t ne)
{
	struct agent_net_ip *v = ne ? calloc(ne, sizeof *v) : NULL;
	size_t k = 0;

	for (size_t i = 0; v && i < ne; i++)
		if (eps[i].node_ip && *eps[i].node_ip &&
		    strlen(eps[i].node_ip) < sizeof v[k].ip) {
			v[k].task_id = eps[i].task_id;
			memcpy(v[k].ip, eps[i].node_ip, strlen(eps[i].node_ip) + 1);
			k++;
		}
	if (k)
		qsort(v, k, sizeof *v, agent_net_ip_cmp);
	free(n->ips);
	n->ips = v;
	n->ip_count = k;
}

static bool agent_has_data_plane(const struct agent *a)
{
	return !a->cfg->no_data_plane && a->env->ops->net_set && a->env->ops->net_remove;
}

static void agent_net_parts_free(Cs__NetworkState **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cs__network_state__free_unpacked(v[i], NULL);
	free(v);
}

static struct agent_net *agent_net_get(const struct agent *a, uint64_t id)
{
	for (size_t i = 0; i < a->net_count; i++)
		if (a->nets[i].id == id)
			return &a->nets[i];
	return NULL;
}

/* Whether the node needs network id: some task of the agent attaches to
 * it, or it is the routing mesh's (the ingress network with a published
 * port: answered on every node, tasks here or not). */
static bool agent_net_used(const struct agent *a, uint64_t id)
{
	const struct agent_net *n = agent_net_get(a, id);
	if (n && n->digest && n->parts[0]->ingress)
		for (size_t p = 0; p < n->part_count; p++)
			for (size_t j = 0; j < n->parts[p]->n_services; j++)
				if (n->parts[p]->services[j]->n_ports)
					return true;
	for (size_t i = 0; i < a->task_count; i++) {
		const Cs__Task *task = a->tasks[i]->assigned;
		for (size_t j = 0; task && j < task->n_networks; j++)
			if (task->networks[j]->network_id == id)
				return true;
	}
	return false;
}

/* Declares n's whole state to the env. Returns net_set's answer, or
 * CS_ENOMEM. */
static int agent_net_declare(struct agent *a, struct agent_net *n)
{
	struct env_net_state st;
	struct env_net_endpoint *eps = NULL;
	struct env_net_service *svcs = NULL;
	const char **strs = NULL;
	struct env_port *ports = NULL;
	size_t ne = 0, ns = 0, nstr = 0, nport = 0, ie = 0, is = 0, istr = 0, iport = 0;
	const Cs__NetworkState *h = n->parts[0];
	int rv = CS_ENOMEM;

	for (size_t p = 0; p < n->part_count; p++) {
		ne += n->parts[p]->n_endpoints;
		ns += n->parts[p]->n_services;
		for (size_t k = 0; k < n->parts[p]->n_services; k++) {
			const Cs__NetworkService *s = n->parts[p]->services[k];
			nstr += s->n_aliases + 1 + s->n_backends + 1;
			nport += s->n_ports;
		}
	}
	eps = calloc(ne ? ne : 1, sizeof *eps);
	svcs = calloc(ns ? ns : 1, sizeof *svcs);
	strs = calloc(nstr ? nstr : 1, sizeof *strs);
	ports = calloc(nport ? nport : 1, sizeof *ports);
	if (!eps || !svcs || !strs || !ports)
		goto out;
	memset(&st, 0, sizeof st);
	st.network_id = n->id;
	st.name = h->name;
	st.vni = h->vni;
	st.subnet = h->subnet;
	st.gateway = h->gateway;
	st.internal = h->internal;
	st.ingress = h->ingress;
	/* issue 17: an encrypted network with the keys held (none yet: it
	 * carries nothing between nodes until they come) */
	st.encrypted = h->encrypted;
	if (h->encrypted && a->net_key_count) {
		st.keys = a->net_keys;
		st.key_count = a->net_key_count;
		st.key_primary = keymgr_primary(a->net_key_count);
	}
	for (size_t p = 0; p < n->part_count; p++) {
		const Cs__NetworkState *part = n->parts[p];
		for (size_t k = 0; k < part->n_endpoints; k++, ie++) {
			const Cs__NetworkEndpoint *e = part->endpoints[k];
			eps[ie].task_id = e->task_id;
			eps[ie].addr = e->addr;
			eps[ie].node_ip = e->node_ip;
			if (!e->node_ip ||
			    !*e->node_ip) /* not known to this leader yet */
				eps[ie].node_ip = agent_net_ip_of(n, e->task_id);
			eps[ie].local = e->node_id == a->node_id;
			/* the routing mesh: this node's own ingress address */
			if (h->ingress && e->node_ingress && eps[ie].local && e->addr &&
			    e->addr[0])
				st.node_addr = e->addr;
		}
		for (size_t k = 0; k < part->n_services; k++, is++) {
			const Cs__NetworkService *s = part->services[k];
			svcs[is].service_id = s->service_id;
			svcs[is].name = s->name;
			svcs[is].vip = s->vip && *s->vip ? s->vip : NULL;
			svcs[is].aliases = &strs[istr];
			for (size_t j = 0; j < s->n_aliases; j++)
				strs[istr++] = s->aliases[j];
			strs[istr++] = NULL;
			svcs[is].backends = &strs[istr];
			for (size_t j = 0; j < s->n_backends; j++)
				strs[istr++] = s->backends[j];
			strs[istr++] = NULL;
			svcs[is].ports = &ports[iport];
			svcs[is].port_count = s->n_ports;
			for (size_t j = 0; j < s->n_ports; j++, iport++) {
				ports[iport].target = s->ports[j]->target;
				ports[iport].published = s->ports[j]->published;
				ports[iport].proto =
					s->ports[j]->protocol ==
							CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP
						? ENV_PORT_UDP
					: s->ports[j]->protocol ==
							CS__PORT_PROTOCOL__PORT_PROTOCOL_SCTP
						? ENV_PORT_SCTP
						: ENV_PORT_TCP;
			}
		}
	}
	assert(ie == ne && is == ns && istr == nstr && iport == nport);
	st.endpoints = eps;
	st.endpoint_count = ne;
	st.services = svcs;
	st.service_count = ns;
	rv = a->env->ops->net_set(a->env, &st);
	if (rv == 0)
		agent_net_ips_keep(n, eps, ne); /* copies: eps point into n->ips */
out:
	free(ports);
	free(strs);
	free(svcs);
	free(eps);
	return rv;
}

/* Brings the env's networks in line: each used network with a new whole
 * state is declared, each declared one no task uses any more removed, and
 * entries neither used nor holding a state forgotten. Returns whether a
 * declaration was accepted (tasks may go on). */
static bool agent_net_sync(struct agent *a)
{
	bool progress = false;
	size_t k = 0;

	if (a->dead || !agent_has_data_plane(a))
		return false;
	for (size_t i = 0; i < a->net_count; i++) {
		struct agent_net *n = &a->nets[i];
		bool used = agent_net_used(a, n->id);
		if (used && n->digest && n->digest != n->set_digest &&
		    n->digest != n->failed_digest) {
			int rv = agent_net_declare(a, n);
			if (rv == 0) {
				n->set_digest = n->digest;
				n->declared = true;
				progress = true;
			} else if (rv != CS_ENOMEM) {
				n->failed_digest = n->digest;
				n->failed_rv = rv;
				n->failed_words[0] = '\0';
				if (a->env->ops->net_error) {
					a->env->ops->net_error(a->env, n->failed_words,
							       sizeof n->failed_words);
					n->failed_words[sizeof n->failed_words - 1] =
						'\0';
				}
				progress = true; /* its waiting tasks are rejected */
				env_logf(
					a->env, ENV_LOG_WARN,
					"msg=\"cannot realise network\" network=%016" PRIx64
					" err=\"%s\" why=\"%s\"",
					n->id, cs_strerror(rv), n->failed_words);
			}
		}
		if (!used && n->declared) {
			a->env->ops->net_remove(a->env, n->id);
			n->declared = false;
			n->set_digest = 0;
		}
		if (!used && !n->declared && !n->digest && !n->pend_count) {
			agent_net_parts_free(n->parts, n->part_count);
			agent_net_parts_free(n->pend, n->pend_count);
			free(n->ips);
			continue; /* forgotten */
		}
		a->nets[k++] = *n;
	}
	a->net_count = k;
	return progress;
}

/* Whether t's networks are declared (or it has none): then it may be
 * prepared. *why says why it never will be, when set. */
static bool agent_net_ready(struct agent *a, const struct agent_task *t, char *why,
			    size_t size)
{
	why[0] = '\0';
	for (size_t i = 0; t->assigned && i < t->assigned->n_networks; i++) {
		const Cs__NetworkAttachment *att = t->assigned->networks[i];
		const struct agent_net *n = agent_net_get(a, att->network_id);
		if (n && n->digest && n->digest == n->failed_digest) {
			snprintf(why, size,
				 "cannot attach to network %.60s (%.40s): %s%s%s",
				 n->parts[0]->name, att->addr ? att->addr : "",
				 cs_strerror(n->failed_rv),
				 n->failed_words[0] ? ": " : "", n->failed_words);
			return false;
		}
		if (!n || !n->set_digest || n->set_digest != n->digest)
			return false;
	}
	return true;
}

/* Keeps a copy of part p in *v. Returns 0 or CS_ENOMEM. */
static int agent_net_keep(Cs__NetworkState ***v, size_t *n, const Cs__NetworkState *p)
{
	size_t len = cs__network_state__get_packed_size(p);
	uint8_t *buf = malloc(len ? len : 1);
	Cs__NetworkState *copy, **grown;
	if (!buf)
		return CS_ENOMEM;
	cs__network_state__pack(p, buf);
	copy = cs__network_state__unpack(NULL, len, buf);
	free(buf);
	grown = copy ? realloc(*v, (*n + 1) * sizeof **v) : NULL;
	if (!grown) {
		if (copy)
			cs__network_state__free_unpacked(copy, NULL);
		return CS_ENOMEM;
	}
	*v = grown;
	(*v)[(*n)++] = copy;
	return 0;
}

static void agent_net_taken(struct agent *a);
static int agent_id_cmp(const void *x, const void *y);

static int agent_ep_task_cmp(const void *x, const void *y)
{
	uint64_t a = (*(Cs__NetworkEndpoint *const *)x)->task_id,
		 b = (*(Cs__NetworkEndpoint *const *)y)->task_id;
	return a < b ? -1 : a > b;
}

/* An IPv4 address as a number, for ordering (0 when it is not one). */
static uint32_t agent_ip4(const char *s)
{
	uint32_t v = 0, part = 0;
	int dots = 0, digits = 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (!digits || ++dots > 3)
				return 0;
			v = v << 8 | part;
			part = digits = 0;
		} else if (*s >= '0' && *s <= '9' && digits < 3) {
			part = part * 10 + (uint32_t)(*s - '0');
			digits++;
		} else {
			return 0;
		}
	}
	return dots == 3 && digits && part < 256 ? v << 8 | part : 0;
}

static int agent_ep_addr_cmp(const void *x, const void *y)
{
	const Cs__NetworkEndpoint *a = *(Cs__NetworkEndpoint *const *)x,
				  *b = *(Cs__NetworkEndpoint *const *)y;
	uint32_t ia = agent_ip4(a->addr), ib = agent_ip4(b->addr);
	int c = ia != ib ? (ia < ib ? -1 : 1) : strcmp(a->addr, b->addr);
	return c ? c : a->task_id < b->task_id ? -1 : a->task_id > b->task_id;
}

static bool agent_u64_in(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static int agent_addr_cmp(const void *x, const void *y)
{
	const char *a = *(char *const *)x, *b = *(char *const *)y;
	uint32_t ia = agent_ip4(a), ib = agent_ip4(b);
	return ia != ib ? (ia < ib ? -1 : 1) : strcmp(a, b);
}

/* Makes *out old's entry with backend delta d applied (see api.proto's
 * backends_delta): old's backends less d's removed, with d's added,
 * ascending, pointers into old and d at *room (advanced). */
static void agent_svc_backend_merge(const Cs__NetworkService *old,
				    const Cs__NetworkService *d, Cs__NetworkService *out,
				    char ***room)
{
	char **v = *room;
	size_t n = 0, i = 0, k = 0, r = 0;
	*out = *d;
	out->backends_delta = false;
	out->n_removed_backends = 0;
	out->removed_backends = NULL;
	while (i < old->n_backends || k < d->n_backends) {
		int c = i == old->n_backends ? 1
			: k == d->n_backends
				? -1
				: agent_addr_cmp(&old->backends[i], &d->backends[k]);
		if (c <= 0) {
			char *b = old->backends[i++];
			bool gone;
			/* the removed are ascending too: one walk */
			while (r < d->n_removed_backends &&
			       agent_addr_cmp(&d->removed_backends[r], &b) < 0)
				r++;
			gone = r < d->n_removed_backends &&
			       strcmp(d->removed_backends[r], b) == 0;
			if (!gone)
				v[n++] = b;
			if (c == 0)
				k++; /* added again: once */
		} else {
			v[n++] = d->backends[k++];
		}
	}
	out->backends = v;
	out->n_backends = n;
	*room = v + n;
}

/* Applies change p to n's whole state: one new part, the state of
 * p->digest. Returns 0, or CS_ENOMEM with n as it was. */
static int agent_net_apply_change(struct agent_net *n, const Cs__NetworkState *p)
{
	Cs__NetworkState st = *p;
	Cs__NetworkEndpoint **eps = NULL, **chg = NULL;
	Cs__NetworkService **svcs = NULL;
	Cs__NetworkState **one = NULL;
	Cs__NetworkService *merged = NULL; /* backend deltas applied */
	char **room = NULL, **at;
	size_t ne = 0, ns = 0, old_e = 0, old_s = 0, old_b = 0, nm = 0;
	int rv = CS_ENOMEM;

	for (size_t i = 0; i < n->part_count; i++) {
		old_e += n->parts[i]->n_endpoints;
		old_s += n->parts[i]->n_services;
		for (size_t j = 0; j < n->parts[i]->n_services; j++)
			old_b += n->parts[i]->services[j]->n_backends;
	}
	for (size_t j = 0; j < p->n_services; j++)
		old_b += p->services[j]->n_backends;
	eps = malloc((old_e + p->n_endpoints + 1) * sizeof *eps);
	chg = malloc((p->n_endpoints + 1) * sizeof *chg);
	svcs = malloc((old_s + p->n_services + 1) * sizeof *svcs);
	merged = malloc((p->n_services + 1) * sizeof *merged);
	room = malloc((old_b + 1) * sizeof *room);
	if (!eps || !chg || !svcs || !merged || !room)
		goto out;
	at = room;
	/* endpoints: the old ones neither removed nor replaced (in order
	 * already), merged with the new ones sorted: O(old + new log new) */
	if (p->n_endpoints)
		memcpy(chg, p->endpoints, p->n_endpoints * sizeof *chg);
	if (p->n_endpoints)
		qsort(chg, p->n_endpoints, sizeof *chg, agent_ep_task_cmp);
	{
		Cs__NetworkEndpoint **add = malloc((p->n_endpoints + 1) * sizeof *add);
		uint64_t *gone = malloc((p->n_removed_endpoints + 1) * sizeof *gone);
		size_t k = 0;
		if (!add || !gone) {
			free(add);
			free(gone);
			goto out;
		}
		if (p->n_removed_endpoints)
			memcpy(gone, p->removed_endpoints,
			       p->n_removed_endpoints * sizeof *gone);
		if (p->n_removed_endpoints)
			qsort(gone, p->n_removed_endpoints, sizeof *gone, agent_id_cmp);
		if (p->n_endpoints)
			memcpy(add, p->endpoints, p->n_endpoints * sizeof *add);
		if (p->n_endpoints)
			qsort(add, p->n_endpoints, sizeof *add, agent_ep_addr_cmp);
		for (size_t i = 0; i < n->part_count; i++)
			for (size_t j = 0; j < n->parts[i]->n_endpoints; j++) {
				Cs__NetworkEndpoint *e = n->parts[i]->endpoints[j];
				Cs__NetworkEndpoint key = *e, *kp = &key;
				if ((p->n_removed_endpoints &&
				     bsearch(&e->task_id, gone, p->n_removed_endpoints,
					     sizeof *gone, agent_id_cmp)) ||
				    (p->n_endpoints &&
				     bsearch(&kp, chg, p->n_endpoints, sizeof *chg,
					     agent_ep_task_cmp)))
					continue;
				while (k < p->n_endpoints &&
				       agent_ep_addr_cmp(&add[k], &e) < 0)
					eps[ne++] = add[k++];
				eps[ne++] = e;
			}
		while (k < p->n_endpoints)
			eps[ne++] = add[k++];
		free(add);
		free(gone);
	}
	/* services: merged in id order, the change's replacing the old */
	{
		size_t k = 0;
		for (size_t i = 0; i < n->part_count; i++)
			for (size_t j = 0; j < n->parts[i]->n_services; j++) {
				Cs__NetworkService *o = n->parts[i]->services[j];
				if (agent_u64_in(p->removed_services,
						 p->n_removed_services, o->service_id))
					continue;
				while (k < p->n_services &&
				       p->services[k]->service_id < o->service_id)
					svcs[ns++] = p->services[k++];
				if (k < p->n_services &&
				    p->services[k]->service_id == o->service_id &&
				    p->services[k]->backends_delta) {
					agent_svc_backend_merge(o, p->services[k++],
								&merged[nm], &at);
					svcs[ns++] = &merged[nm++];
				} else if (k < p->n_services &&
					   p->services[k]->service_id == o->service_id)
					svcs[ns++] = p->services[k++];
				else
					svcs[ns++] = o;
			}
		while (k < p->n_services)
			svcs[ns++] = p->services[k++];
	}
	st.endpoints = eps;
	st.n_endpoints = ne;
	st.services = svcs;
	st.n_services = ns;
	st.base_digest = 0;
	st.n_removed_endpoints = st.n_removed_services = 0;
	st.part = 0;
	st.more = false;
	{
		size_t count = 0;
		if (agent_net_keep(&one, &count, &st))
			goto out;
	}
	agent_net_parts_free(n->parts, n->part_count);
	n->parts = one;
	n->part_count = 1;
	n->digest = p->digest;
	rv = 0;
out:
	free(room);
	free(merged);
	free(svcs);
	free(chg);
	free(eps);
	return rv;
}

/* One NetworkState frame of the session: a part of a state (whole at its
 * last part, taken only when every part came in order), a change to the
 * state held, or a removal. */
static void agent_on_net_state(struct agent *a, const Cs__NetworkState *p)
{
	struct agent_net *n = agent_net_get(a, p->network_id);

	if (!n) {
		struct agent_net *v;
		if (p->removed || a->net_count >= LIMIT_NETWORKS_MAX)
			return;
		v = realloc(a->nets, (a->net_count + 1) * sizeof *v);
		if (!v)
			return;
		a->nets = v;
		n = &a->nets[a->net_count++];
		memset(n, 0, sizeof *n);
		n->id = p->network_id;
	}
	if (p->removed) {
		/* the managers say no task here needs it: gone once no task
		 * of ours attaches to it (the last may still be stopping) */
		agent_net_parts_free(n->pend, n->pend_count);
		n->pend = NULL;
		n->pend_count = 0;
		agent_net_parts_free(n->parts, n->part_count);
		n->parts = NULL;
		n->part_count = 0;
		n->digest = 0;
		agent_net_sync(a);
		return;
	}
	if (!p->digest)
		return;
	if (p->base_digest) {
		/* a change: on the state it was made from only */
		if (n->digest == p->base_digest && !n->pend_count &&
		    agent_net_apply_change(n, p) == 0)
			agent_net_taken(a);
		return;
	}
	if (p->part == 0 || !n->pend_count || p->part != n->pend_count ||
	    p->digest != n->pend[0]->digest) {
		agent_net_parts_free(n->pend, n->pend_count);
		n->pend = NULL;
		n->pend_count = 0;
		if (p->part != 0)
			return; /* a part whose first was lost: the heartbeat asks again */
	}
	if (agent_net_keep(&n->pend, &n->pend_count, p))
		return;
	if (p->more)
		return;
	agent_net_parts_free(n->parts, n->part_count);
	n->parts = n->pend;
	n->part_count = n->pend_count;
	n->digest = p->digest;
	n->pend = NULL;
	n->pend_count = 0;
	agent_net_taken(a);
}

/* A whole new state was taken: declared, and its waiting tasks go on. */
static void agent_net_taken(struct agent *a)
{
	if (agent_net_sync(a)) {
		/* its waiting tasks go on (a step may forget: by id) */
		uint64_t *ids = malloc((a->task_count ? a->task_count : 1) * sizeof *ids);
		size_t count = a->task_count;
		if (!ids)
			return; /* the next tick steps them */
		for (size_t i = 0; i < count; i++)
			ids[i] = a->tasks[i]->id;
		agent_step_ids(a, ids, count);
		free(ids);
	}
}

/* Issue 17: the network keys from the session (SwarmKit's
 * NetworkBootstrapKeys): kept in memory, and every encrypted network held
 * is declared again with them. A malformed set is refused whole. */
static void agent_on_net_keys(struct agent *a, const Cs__NetworkKeys *m)
{
	uint32_t last = 0;
	uint64_t digest;
	struct env_net_key next[ENV_NET_KEYS_MAX];

	if (m->n_keys == 0 || m->n_keys > ENV_NET_KEYS_MAX) {
		env_logf(a->env, ENV_LOG_WARN,
			 "msg=\"network keys refused\" keys=%zu why=\"not 1 to %d keys\"",
			 m->n_keys, ENV_NET_KEYS_MAX);
		return;
	}
	memset(next, 0, sizeof next);
	for (size_t i = 0; i < m->n_keys; i++) {
		const Cs__NetworkKey *k = m->keys[i];
		if (!k || k->id <= last || k->key.len != ENV_NET_KEY_BYTES) {
			seal_wipe(next, sizeof next);
			env_logf(a->env, ENV_LOG_WARN,
				 "msg=\"network keys refused\" keys=%zu why=\"ids not "
				 "ascending or a key not %d bytes\"",
				 m->n_keys, ENV_NET_KEY_BYTES);
			return;
		}
		last = k->id;
		next[i].id = k->id;
		memcpy(next[i].key, k->key.data, ENV_NET_KEY_BYTES);
	}
	digest = keymgr_digest(next, m->n_keys);
	if (digest == a->net_keys_digest) {
		seal_wipe(next, sizeof next);
		return;
	}
	seal_wipe(a->net_keys, sizeof a->net_keys);
	memcpy(a->net_keys, next, sizeof next);
	seal_wipe(next, sizeof next);
	a->net_key_count = m->n_keys;
	a->net_keys_digest = digest;
	assert(a->net_key_count > 0 && a->net_keys_digest != 0);
	/* ids only: the keys never reach a log */
	env_logf(a->env, ENV_LOG_INFO,
		 "msg=\"network keys\" keys=%zu primary=%" PRIu32 " newest=%" PRIu32,
		 a->net_key_count, a->net_keys[keymgr_primary(a->net_key_count)].id,
		 a->net_keys[a->net_key_count - 1].id);
	for (size_t i = 0; i < a->net_count; i++) {
		struct agent_net *n = &a->nets[i];
		if (n->digest && n->parts[0]->encrypted) {
			n->set_digest = 0; /* declared again, with these keys */
			n->failed_digest = 0;
		}
	}
	agent_net_taken(a);
}

/* The digests of the whole states held, for the heartbeat (*out malloc'd:
 * the caller frees it and *ptrs). Returns the count. */
static size_t agent_net_digests(const struct agent *a, Cs__NetworkDigest **out,
				Cs__NetworkDigest ***ptrs)
{
	size_t k = 0;
	*out = calloc(a->net_count ? a->net_count : 1, sizeof **out);
	*ptrs = calloc(a->net_count ? a->net_count : 1, sizeof **ptrs);
	if (!*out || !*ptrs)
		return 0;
	for (size_t i = 0; i < a->net_count; i++) {
		if (!a->nets[i].digest)
			continue;
		cs__network_digest__init(&(*out)[k]);
		(*out)[k].network_id = a->nets[i].id;
		(*out)[k].digest = a->nets[i].digest;
		(*ptrs)[k] = &(*out)[k];
		k++;
	}
	return k;
}

static void agent_net_free_all(struct agent *a)
{
	for (size_t i = 0; i < a->net_count; i++) {
		agent_net_parts_free(a->nets[i].parts, a->nets[i].part_count);
		agent_net_parts_free(a->nets[i].pend, a->nets[i].pend_count);
		free(a->nets[i].ips);
	}
	free(a->nets);
}

/* ---------------------------------------------------------------- task managers */

static void agent_task_step(struct agent_task *t);

static bool agent_terminal(Cs__TaskState s)
{
	return s >= CS__TASK_STATE__TASK_STATE_COMPLETE;
}

static void agent_report(struct agent *a);

static void agent_report_due(struct env *env, env_timer_id id, void *data)
{
	struct agent *a = data;
	(void)env;
	(void)id;
	a->report_timer = 0;
	agent_report(a);
}

/* Moves t to state (forward only) and saves it; it is reported within
 * AGENT_REPORT_SOON_MS (else at the next tick: a node out of timers). */
static void agent_task_set(struct agent_task *t, Cs__TaskState state, const char *message)
{
	struct agent *a = t->a;

	if (state <= t->state && !(state == t->state && message))
		return;
	t->state = state;
	if (message)
		agent_task_text_set(t, &t->message, message);
	agent_task_save(a, t);
	if (!a->report_timer && !a->dying && !a->dead &&
	    a->env->ops->timer_start(a->env, AGENT_REPORT_SOON_MS, 0, agent_report_due, a,
				     &a->report_timer) != 0)
		a->report_timer = 0;
}

static bool agent_task_wants_run(const struct agent_task *t)
{
	return !t->removed && t->assigned &&
	       t->assigned->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING;
}

/* The task spec's container part, or NULL. */
static const Cs__ContainerSpec *agent_task_container(const struct agent_task *t)
{
	const Cs__TaskSpec *ts = t->assigned ? t->assigned->spec : NULL;
	return ts ? ts->container : NULL;
}

/* Whether t's spec has a health check to wait for: a test given, and not
 * "NONE" (an empty test keeps the image's, which the agent does not wait
 * for: SwarmKit reads the merged config of the container, we read the
 * spec). */
static bool agent_task_has_health(const struct agent_task *t)
{
	const Cs__ContainerSpec *cs = agent_task_container(t);
	const Cs__HealthConfig *hc = cs ? cs->healthcheck : NULL;
	return hc && hc->n_test > 0 && hc->test[0] && strcmp(hc->test[0], "NONE") != 0;
}

#define AGENT_UNHEALTHY "unhealthy container" /* SwarmKit's ErrContainerUnhealthy */

/* A call for t failed: ask again after a backoff doubled from
 * LIMIT_AGENT_RETRY_MS_MIN to LIMIT_AGENT_RETRY_MS_MAX (the tick steps t
 * then). */
static void agent_task_retry(struct agent_task *t)
{
	struct agent *a = t->a;
	t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : LIMIT_AGENT_RETRY_MS_MIN;
	if (t->backoff_ms > LIMIT_AGENT_RETRY_MS_MAX)
		t->backoff_ms = LIMIT_AGENT_RETRY_MS_MAX;
	t->retry_at_ms = a->env->ops->now_ms(a->env) + t->backoff_ms;
	a->retry_pending = true;
}

/* The container of t exited with code (seen by a wait, an inspect or the
 * adoption list): COMPLETE, FAILED, or SHUTDOWN when it was not wanted. */
static void agent_task_exited(struct agent_task *t, int32_t code, const char *how)
{
	char msg[96];
	bool wanted = agent_task_wants_run(t);

	t->exit_code = code;
	if (agent_terminal(t->state))
		return;
	if (t->unhealthy) {
		/* stopped for its health: failed, as SwarmKit's Wait returns
		 * ErrContainerUnhealthy whatever the code */
		snprintf(msg, sizeof msg, AGENT_UNHEALTHY " (%s %" PRId32 ")", how, code);
		agent_task_set(t, CS__TASK_STATE__TASK_STATE_FAILED, msg);
		return;
	}
	snprintf(msg, sizeof msg, "%s %" PRId32, how, code);
	agent_task_set(t,
		       !wanted	   ? CS__TASK_STATE__TASK_STATE_SHUTDOWN
		       : code == 0 ? CS__TASK_STATE__TASK_STATE_COMPLETE
				   : CS__TASK_STATE__TASK_STATE_FAILED,
		       msg);
}

static void agent_wait_done(struct env_ctl_req *req, int status)
{
	struct agent_task *t = req->data;
	t->waiting = false;
	if (t->closing)
		return;
	if (status == 0 && req->state == ENV_CTL_EXITED) {
		t->wait_lost = false;
		agent_task_exited(t, req->exit_code, "exited with code");
	} else if (!agent_terminal(t->state)) {
		/* dockerd restarted, a connection broke: the container may
		 * still run, or have exited meanwhile; inspect it after a
		 * backoff, then wait again */
		env_logf(t->a->env, ENV_LOG_WARN,
			 "msg=\"wait failed\" task=%s err=\"%s\"", t->id_text,
			 status ? (req->message[0] ? req->message : cs_strerror(status))
				: "no exit");
		t->wait_lost = true;
		agent_task_retry(t);
	}
	agent_task_step(t);
}

static void agent_start_wait(struct agent_task *t)
{
	if (t->waiting || !t->ctl || t->a->dead)
		return;
	t->wait.data = t;
	t->wait.message[0] = '\0';
	if (t->a->env->ops->ctl_do(t->ctl, ENV_CTL_WAIT, &t->wait, agent_wait_done) == 0)
		t->waiting = true;
	else
		agent_task_retry(t);
}

/* t's container started: RUNNING, or with a health check STARTING until
 * its runtime says healthy (SwarmKit's controller.Start waits for the
 * "health_status: healthy" event). */
static void agent_task_started(struct agent_task *t, const char *message)
{
	char msg[160];

	if (!agent_task_has_health(t)) {
		agent_task_set(t, CS__TASK_STATE__TASK_STATE_RUNNING, message);
		return;
	}
	assert(t->state == CS__TASK_STATE__TASK_STATE_STARTING);
	t->started = true;
	t->health_at_ms = 0; /* read its health at the next step */
	snprintf(msg, sizeof msg, "%.100s, waiting for its health check", message);
	agent_task_set(t, CS__TASK_STATE__TASK_STATE_STARTING, msg);
	assert(t->started);
}

/* A health poll answered (req->state, req->health): a started task whose
 * container is healthy (or reports no health at all) runs; an unhealthy one
 * is marked, and its next step stops it. Exits are left to the WAIT. */
static void agent_task_health(struct agent_task *t, const struct env_ctl_req *req)
{
	if (agent_terminal(t->state) || req->state != ENV_CTL_RUNNING)
		return;
	switch (req->health) {
	case ENV_HEALTH_UNHEALTHY:
		if (!t->unhealthy)
			env_logf(t->a->env, ENV_LOG_WARN,
				 "msg=\"unhealthy container\" task=%s", t->id_text);
		t->unhealthy = true;
		break;
	case ENV_HEALTH_HEALTHY:
	case ENV_HEALTH_NONE:
		if (t->state == CS__TASK_STATE__TASK_STATE_STARTING && t->started)
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_RUNNING,
				       req->health == ENV_HEALTH_HEALTHY
					       ? "started (healthy)"
					       : "started (no health status)");
		break;
	case ENV_HEALTH_STARTING: break;
	}
}

static void agent_op_done_step(struct env_ctl_req *req, int status)
{
	struct agent_task *t = req->data;
	struct agent *a = t->a;
	const char *why = req->message[0] ? req->message : cs_strerror(status);

	t->op_busy = false;
	if ((size_t)t->op_kind < sizeof a->exec_ms / sizeof *a->exec_ms)
		metrics_hist_observe(
			&a->exec_ms[t->op_kind],
			(double)(a->env->ops->now_ms(a->env) - t->op_started_ms));
	if (t->closing)
		return;
	if (status == 0)
		t->backoff_ms = 0;
	if (t->stopping) {
		t->stopping = false;
		if (status) {
			/* the container may still run: no SHUTDOWN, so that no
			 * replacement starts beside it; again, then killed */
			t->stop_failures++;
			env_logf(a->env, ENV_LOG_WARN,
				 "msg=\"stop failed\" task=%s tries=%" PRIu32
				 " err=\"%s\"",
				 t->id_text, t->stop_failures, why);
			agent_task_retry(t);
		} else {
			t->stop_failures = 0;
			t->wait_lost = false;
			if (!agent_terminal(t->state))
				agent_task_set(
					t,
					t->unhealthy
						? CS__TASK_STATE__TASK_STATE_FAILED
						: CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					t->unhealthy ? AGENT_UNHEALTHY : "shutdown");
		}
		agent_task_step(t);
		return;
	}
	if (t->removing) {
		t->removing = false;
		if (status) {
			/* kept, and asked again: forgotten, its container would
			 * stay for good */
			env_logf(a->env, ENV_LOG_WARN,
				 "msg=\"remove failed\" task=%s err=\"%s\"", t->id_text,
				 why);
			agent_task_retry(t);
			return;
		}
		agent_task_forget(a, t);
		return;
	}
	if (t->op_kind == ENV_CTL_INSPECT && t->health_poll) {
		t->health_poll = false;
		if (status == 0)
			agent_task_health(t, req);
		/* a failed inspect: the next poll asks again */
		agent_task_step(t);
		return;
	}
	if (t->op_kind == ENV_CTL_INSPECT && t->start_failed &&
	    t->state == CS__TASK_STATE__TASK_STATE_STARTING) {
		/* after a failed start: did it start after all? (found by
		 * explore: a dockerd restarting answered the start with an
		 * error, the container ran, and the task said FAILED beside
		 * it for good) */
		if (status) {
			agent_task_retry(t);
		} else if (req->state == ENV_CTL_RUNNING) {
			t->start_failed = false;
			agent_task_started(t, "started (its start answered an error)");
		} else if (req->state == ENV_CTL_EXITED) {
			t->start_failed = false;
			agent_task_exited(t, req->exit_code, "exited with code");
		} else {
			t->start_failed = false;
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_FAILED,
				       agent_text(t->start_error));
		}
		agent_task_step(t);
		return;
	}
	if (t->op_kind == ENV_CTL_INSPECT) {
		/* after a failed wait: what became of the container */
		if (status) {
			agent_task_retry(t);
		} else if (req->state == ENV_CTL_EXITED) {
			t->wait_lost = false;
			agent_task_exited(t, req->exit_code, "exited with code");
		} else if (req->state == ENV_CTL_ABSENT) {
			t->wait_lost = false;
			if (!agent_terminal(t->state))
				agent_task_set(t, CS__TASK_STATE__TASK_STATE_FAILED,
					       "container gone");
		} else {
			t->wait_lost = false; /* still there: wait again */
		}
		agent_task_step(t);
		return;
	}
	switch (t->state) {
	case CS__TASK_STATE__TASK_STATE_PREPARING:
		if (status)
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_REJECTED, why);
		else
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_READY, "prepared");
		break;
	case CS__TASK_STATE__TASK_STATE_STARTING:
		if (status) {
			/* FAILED once an inspect says it does not run */
			t->start_failed = true;
			agent_task_text_set(t, &t->start_error, why);
		} else {
			agent_task_started(t, "started");
		}
		break;
	default: break;
	}
	agent_task_step(t);
}

static void agent_task_do_deferred(struct agent *a);

/* Runs the one-statement sql (no rows) through *st, prepared at its first
 * use and kept (agent_stop finalizes it). Returns the sqlite code:
 * SQLITE_DONE on success. */
static int agent_db_step(struct agent *a, sqlite3_stmt **st, const char *sql)
{
	int rc;

	if (!*st && sqlite3_prepare_v2(a->db, sql, -1, st, NULL) != SQLITE_OK)
		return SQLITE_ERROR;
	assert(*st != NULL);
	rc = sqlite3_step(*st);
	sqlite3_reset(*st);
	return rc;
}

/* Opens the transaction the agent's saves go into until agent_tx_end (the
 * executor calls they ask wait in `deferred` until then). A failed BEGIN
 * is fatal (why: what the agent could not do); returns whether it opened. */
static bool agent_tx_begin(struct agent *a, const char *why)
{
	assert(!a->in_tx);
	if (agent_db_step(a, &a->begin_st, "BEGIN") != SQLITE_DONE) {
		agent_fatal(a, why);
		return false;
	}
	a->in_tx = true;
	return true;
}

/* Commits what agent_tx_begin opened; a failed COMMIT is fatal (why), and
 * a dead agent's transaction is rolled back. The caller asks the deferred
 * executor calls next (agent_task_do_deferred). */
static void agent_tx_end(struct agent *a, const char *why)
{
	agent_tx_flush(a);
	assert(a->dirty_count == 0);
	a->in_tx = false;
	if (!a->dead && agent_db_step(a, &a->commit_st, "COMMIT") != SQLITE_DONE)
		agent_fatal(a, why);
	if (a->dead)
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Whether the answer (status) to t's op in flight only moves t from
 * STARTING to RUNNING: a successful START of a task without a health
 * check (one with a health check stays STARTING until healthy). */
static bool agent_op_is_plain_start(const struct agent_task *t, int status)
{
	return status == 0 && t->op_kind == ENV_CTL_START && !t->stopping &&
	       !t->removing && !t->health_poll && !t->start_failed &&
	       t->state == CS__TASK_STATE__TASK_STATE_STARTING &&
	       !agent_task_has_health(t);
}

/* Writes the lazy saves (agent_op_done) in one transaction of their own,
 * if any wait and no transaction is open (the tick's, once a second: the
 * RUNNING of every container started in that second, one commit). */
static void agent_tx_lazy(struct agent *a)
{
	if (a->dirty_count == 0 || a->in_tx || a->dead)
		return;
	if (!agent_tx_begin(a, "begin saving task states"))
		return;
	agent_tx_end(a, "save task states");
	agent_task_do_deferred(a);
}

/* An executor's answer, stepped in one transaction as agent_apply does
 * (issue 18): the states it moves a task through (a prepare's READY, then
 * STARTING) are one sync, not one each, and the next executor call waits
 * in `deferred` until they are on the disk; a failed COMMIT is fatal
 * before it is asked.
 *
 * A plain start's RUNNING is written lazily instead (issue 18: a commit
 * per container started was a third of the agent's commits): with the
 * next transaction, or at the next tick (agent_tx_lazy). Nothing needs it
 * on the disk: a restarted agent that finds STARTING there, not RUNNING,
 * adopts the task by what the executor lists, as it would have with
 * RUNNING (agent_adopt: running, RUNNING; exited, COMPLETE or FAILED;
 * gone, FAILED) and never starts it again. STARTING, which forbids a
 * second start, was committed before the START was asked. */
static void agent_op_done(struct env_ctl_req *req, int status)
{
	struct agent_task *t = req->data;
	struct agent *a = t->a;
	bool lazy = !a->in_tx && agent_op_is_plain_start(t, status);
	bool own = !lazy && !a->in_tx && !a->dead &&
		   agent_tx_begin(a, "begin saving task states");

	a->lazy = lazy;
	agent_op_done_step(req, status); /* t may be gone after */
	a->lazy = false;
	if (!own)
		return;
	agent_tx_end(a, "save task states");
	agent_task_do_deferred(a);
}

/* Issue 20: a secret's or config's path in a container, at most. */
#define AGENT_FILE_PATH_BYTES 256u

/* The buffers of a container spec's issue-16 fields (entrypoint, labels,
 * mounts), pointing into the task's ContainerSpec, and of its issue-20
 * files (pointing into the task's secret_data). */
struct agent_spec_extra {
	const char **entrypoint;
	struct env_label *labels;
	struct env_mount *mounts;
	struct env_file *files;
	char (*paths)[AGENT_FILE_PATH_BYTES];
};

/* Issue 20: the data task was sent for reference r (of a config or a
 * secret), or NULL. */
static const Cs__Secret *agent_secret_data(const Cs__Task *task,
					   const Cs__SecretReference *r, bool config)
{
	for (size_t i = 0; i < task->n_secret_data; i++) {
		const Cs__Secret *x = task->secret_data[i];
		if (x->id == r->secret_id && x->config == config)
			return x;
	}
	return NULL;
}

/* Issue 20: whether every secret and config task's spec references came
 * with it; else why not in why (a task is never run without them). */
static bool agent_secrets_ready(const Cs__Task *task, char *why, size_t why_size)
{
	const Cs__ContainerSpec *cs = task && task->spec ? task->spec->container : NULL;
	if (!cs)
		return true;
	for (size_t i = 0; i < cs->n_secrets + cs->n_configs; i++) {
		bool config = i >= cs->n_secrets;
		const Cs__SecretReference *r =
			config ? cs->configs[i - cs->n_secrets] : cs->secrets[i];
		char path[AGENT_FILE_PATH_BYTES];
		if (!agent_secret_data(task, r, config)) {
			snprintf(why, why_size,
				 "%s %.64s was not delivered with the task",
				 secret_kind(config),
				 r->secret_name ? r->secret_name : "");
			return false;
		}
		if (!secret_target(r, config, path, sizeof path)) {
			snprintf(why, why_size, "%s %.64s: target too long",
				 secret_kind(config),
				 r->secret_name ? r->secret_name : "");
			return false;
		}
	}
	return true;
}

/* Issue 20: fills spec's files from task's references and data. Returns 0
 * or CS_ENOMEM; a reference without data is left out (agent_secrets_ready
 * refused such a task before it was prepared). */
static int agent_spec_files_fill(struct agent_spec_extra *x, const Cs__Task *task,
				 struct env_container_spec *spec)
{
	const Cs__ContainerSpec *cs = task && task->spec ? task->spec->container : NULL;
	size_t n = cs ? cs->n_secrets + cs->n_configs : 0, k = 0;

	if (n == 0)
		return 0;
	x->files = calloc(n, sizeof *x->files);
	x->paths = calloc(n, sizeof *x->paths);
	if (!x->files || !x->paths)
		return CS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		bool config = i >= cs->n_secrets;
		const Cs__SecretReference *r =
			config ? cs->configs[i - cs->n_secrets] : cs->secrets[i];
		const Cs__Secret *d = agent_secret_data(task, r, config);
		struct env_file *f = &x->files[k];
		if (!d || !secret_target(r, config, x->paths[k], sizeof x->paths[k]))
			continue;
		f->config = config;
		f->name = d->name ? d->name : "";
		f->id = d->id;
		f->path = x->paths[k];
		f->data = d->data.data;
		f->len = d->data.len;
		f->uid = r->uid && *r->uid ? r->uid : "0";
		f->gid = r->gid && *r->gid ? r->gid : "0";
		f->mode = r->mode ? r->mode : 0444;
		k++;
	}
	spec->files = x->files;
	spec->file_count = k;
	return 0;
}

/* Fills spec's entrypoint, labels, dir, user and mounts from cs (borrowed:
 * spec points into it and into x, which agent_spec_extra_free frees).
 * Returns 0 or CS_ENOMEM. */
static int agent_spec_extra_fill(struct agent_spec_extra *x, const Cs__ContainerSpec *cs,
				 struct env_container_spec *spec)
{
	memset(x, 0, sizeof *x);
	if (!cs)
		return 0;
	if (cs->n_entrypoint) {
		if (!(x->entrypoint =
			      calloc(cs->n_entrypoint + 1, sizeof *x->entrypoint)))
			return CS_ENOMEM;
		for (size_t i = 0; i < cs->n_entrypoint; i++)
			x->entrypoint[i] = cs->entrypoint[i];
		spec->entrypoint = x->entrypoint;
	}
	if (cs->n_labels) {
		if (!(x->labels = calloc(cs->n_labels, sizeof *x->labels)))
			return CS_ENOMEM;
		for (size_t i = 0; i < cs->n_labels; i++) {
			x->labels[i].key = cs->labels[i]->key ? cs->labels[i]->key : "";
			x->labels[i].value =
				cs->labels[i]->value ? cs->labels[i]->value : "";
		}
		spec->labels = x->labels;
		spec->label_count = cs->n_labels;
	}
	if (cs->n_mounts) {
		if (!(x->mounts = calloc(cs->n_mounts, sizeof *x->mounts)))
			return CS_ENOMEM;
		for (size_t i = 0; i < cs->n_mounts; i++) {
			const Cs__Mount *m = cs->mounts[i];
			x->mounts[i].type = m->type == CS__MOUNT__TYPE__TYPE_VOLUME
						    ? ENV_MOUNT_VOLUME
						    : ENV_MOUNT_BIND;
			x->mounts[i].source = m->source ? m->source : "";
			x->mounts[i].target = m->target ? m->target : "";
			x->mounts[i].read_only = m->read_only;
		}
		spec->mounts = x->mounts;
		spec->mount_count = cs->n_mounts;
	}
	spec->dir = cs->dir && *cs->dir ? cs->dir : NULL;
	spec->user = cs->user && *cs->user ? cs->user : NULL;
	return 0;
}

static void agent_spec_extra_free(struct agent_spec_extra *x)
{
	free(x->files);
	free(x->paths);
	free(x->entrypoint);
	free(x->labels);
	free(x->mounts);
}

/* Opens the controller of t if it has none; a task with no assignment (an
 * orphan container) gets one from its labels alone, enough to stop and
 * remove it. Returns 0 or an error. */
static int agent_task_open(struct agent_task *t)
{
	struct env_container_spec spec;
	const Cs__Task *task = t->assigned;
	const Cs__TaskSpec *ts = task ? task->spec : NULL;
	const Cs__ContainerSpec *cs = ts ? ts->container : NULL;
	const char **cmd = NULL, **envs = NULL, **test = NULL;
	struct env_port *ports = NULL;
	struct env_net_attach *nets = NULL;
	const char **aliases = NULL;
	struct agent_spec_extra extra = {0};
	int rv = CS_ENOMEM;

	if (t->ctl)
		return 0;
	memset(&spec, 0, sizeof spec);
	if (task)
		snprintf(t->service_text, sizeof t->service_text, "%016" PRIx64,
			 task->service_id);
	spec.task_id = t->id_text;
	spec.service_id = t->service_text;
	spec.service_name = task && task->service_name ? task->service_name : "";
	spec.slot = task ? task->slot : 0;
	spec.image = cs && cs->image && *cs->image ? cs->image : "cswarm/default";
	if (cs && cs->n_command) {
		cmd = calloc(cs->n_command + 1, sizeof *cmd);
		if (!cmd)
			goto out;
		for (size_t i = 0; i < cs->n_command; i++)
			cmd[i] = cs->command[i];
		spec.command = cmd;
	}
	if (cs && cs->n_env) {
		envs = calloc(cs->n_env + 1, sizeof *envs);
		if (!envs)
			goto out;
		for (size_t i = 0; i < cs->n_env; i++)
			envs[i] = cs->env[i];
		spec.envs = envs;
	}
	if (ts && ts->limits) {
		spec.memory_limit_bytes = ts->limits->memory_bytes;
		spec.millicpu_limit = ts->limits->millicpus;
	}
	spec.stop_timeout_ms = cs && cs->stop_grace_period_ms ? cs->stop_grace_period_ms
							      : AGENT_STOP_TIMEOUT_MS;
	if (cs && cs->healthcheck) {
		const Cs__HealthConfig *hc = cs->healthcheck;
		if (hc->n_test) {
			test = calloc(hc->n_test + 1, sizeof *test);
			if (!test)
				goto out;
			for (size_t i = 0; i < hc->n_test; i++)
				test[i] = hc->test[i];
			spec.health_test = test;
		}
		spec.health_interval_ms = hc->interval_ms;
		spec.health_timeout_ms = hc->timeout_ms;
		spec.health_start_period_ms = hc->start_period_ms;
		spec.health_retries = hc->retries;
	}
	if (task && task->n_ports) { /* host-mode ones are the node's */
		ports = calloc(task->n_ports, sizeof *ports);
		if (!ports)
			goto out;
		for (size_t i = 0; i < task->n_ports; i++) {
			const Cs__PortConfig *p = task->ports[i];
			if (p->mode != CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST)
				continue;
			ports[spec.port_count].target = p->target;
			ports[spec.port_count].published = p->published;
			ports[spec.port_count].proto =
				p->protocol == CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP
					? ENV_PORT_UDP
				: p->protocol == CS__PORT_PROTOCOL__PORT_PROTOCOL_SCTP
					? ENV_PORT_SCTP
					: ENV_PORT_TCP;
			spec.port_count++;
		}
		spec.ports = ports;
	}
	if (task && task->n_networks && agent_has_data_plane(t->a)) {
		/* issue 17: its attachments, aliases NULL-terminated */
		size_t nstr = 0, k = 0;
		for (size_t i = 0; i < task->n_networks; i++)
			nstr += task->networks[i]->n_aliases + 1;
		nets = calloc(task->n_networks, sizeof *nets);
		aliases = calloc(nstr, sizeof *aliases);
		if (!nets || !aliases)
			goto out;
		for (size_t i = 0; i < task->n_networks; i++) {
			const Cs__NetworkAttachment *att = task->networks[i];
			nets[i].network_id = att->network_id;
			nets[i].addr = att->addr ? att->addr : "";
			nets[i].aliases = &aliases[k];
			for (size_t j = 0; j < att->n_aliases; j++)
				aliases[k++] = att->aliases[j];
			aliases[k++] = NULL;
		}
		spec.networks = nets;
		spec.network_count = task->n_networks;
	}
	if (agent_spec_extra_fill(&extra, cs, &spec))
		goto out;
	if (agent_spec_files_fill(&extra, task, &spec))
		goto out;
	rv = t->a->env->ops->ctl_open(t->a->env, &spec, &t->ctl);
out:
	agent_spec_extra_free(&extra);
	free(aliases);
	free(nets);
	free(ports);
	free(test);
	free(envs);
	free(cmd);
	return rv;
}

/* Asks op of t's controller; inside a transaction, once it commits. */
static void agent_task_do(struct agent_task *t, enum env_ctl_op op)
{
	struct agent *a = t->a;
	int rv;

	assert(!t->op_busy);
	assert(t->ctl != NULL);
	if (a->dead)
		return;
	t->op.data = t;
	t->op.message[0] = '\0';
	t->op.health = ENV_HEALTH_NONE;
	t->op_kind = op;
	t->op_started_ms = a->env->ops->now_ms(a->env);
	if (a->in_tx) {
		if (a->deferred_count == a->deferred_cap) {
			size_t cap = a->deferred_cap ? a->deferred_cap * 2 : 64;
			struct agent_task **p = realloc(a->deferred, cap * sizeof *p);
			if (!p) {
				agent_task_retry(t);
				return;
			}
			a->deferred = p;
			a->deferred_cap = cap;
		}
		a->deferred[a->deferred_count++] = t;
		t->deferred = true;
		t->op_busy = true;
		return;
	}
	rv = a->env->ops->ctl_do(t->ctl, op, &t->op, agent_op_done);
	if (rv == 0)
		t->op_busy = true;
	else
		agent_task_retry(t);
}

/* The transaction committed: ask the executor calls it held back. */
static void agent_task_do_deferred(struct agent *a)
{
	/* taken out of the agent: an executor answering at once opens a
	 * transaction of its own (agent_op_done) that defers again */
	struct agent_task **v = a->deferred;
	size_t n = a->deferred_count, cap = a->deferred_cap;

	assert(!a->in_tx);
	a->deferred = NULL;
	a->deferred_count = a->deferred_cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct agent_task *t = v[i];
		assert(t->deferred && t->op_busy);
		t->deferred = false;
		if (a->dead)
			continue; /* the process is stopping: never asked */
		if (a->env->ops->ctl_do(t->ctl, t->op_kind, &t->op, agent_op_done)) {
			t->op_busy = false;
			t->stopping = t->removing = t->health_poll = false;
			agent_task_retry(t);
		}
	}
	if (!a->deferred) {
		a->deferred = v;
		a->deferred_cap = cap;
	} else {
		free(v);
	}
}

/* Stop what may run of t (SHUTDOWN, after LIMIT_AGENT_STOP_TRIES failures
 * TERMINATE); SHUTDOWN is reported once the stop succeeded. Returns true
 * when a call is in flight or waits for its retry. */
static bool agent_task_stop(struct agent_task *t)
{
	if (t->state != CS__TASK_STATE__TASK_STATE_RUNNING &&
	    t->state != CS__TASK_STATE__TASK_STATE_STARTING)
		return false;
	if (agent_task_open(t)) {
		/* no executor: nothing of it can run */
		agent_task_set(t, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
			       "shutdown (no executor)");
		return false;
	}
	agent_task_do(t, t->stop_failures >= LIMIT_AGENT_STOP_TRIES ? ENV_CTL_TERMINATE
								    : ENV_CTL_SHUTDOWN);
	t->stopping = t->op_busy;
	return true;
}

/* How long until t's health is read again: AGENT_HEALTH_POLL_MS while it
 * waits to be healthy; once RUNNING its check's interval (Docker's 30s
 * when 0), within AGENT_HEALTH_POLL_MS..AGENT_HEALTH_RUNNING_POLL_MS_MAX. */
static ms_t agent_health_poll_ms(const struct agent_task *t)
{
	const Cs__ContainerSpec *cs = agent_task_container(t);
	ms_t every = cs && cs->healthcheck && cs->healthcheck->interval_ms
			     ? cs->healthcheck->interval_ms
			     : 30000;

	if (t->state != CS__TASK_STATE__TASK_STATE_RUNNING ||
	    every < AGENT_HEALTH_POLL_MS)
		return AGENT_HEALTH_POLL_MS;
	return every > AGENT_HEALTH_RUNNING_POLL_MS_MAX ? AGENT_HEALTH_RUNNING_POLL_MS_MAX
							: every;
}

/* Watches t's started container: a wait for its exit (adopted: a first
 * one; after a lost one, an inspect first, since it may have exited), and
 * with a health check an inspect of its health when due. */
static void agent_task_watch(struct agent_task *t)
{
	ms_t now;

	assert(!t->op_busy);
	if (agent_task_open(t))
		return;
	if (!t->waiting) {
		if (t->wait_lost) {
			agent_task_do(t, ENV_CTL_INSPECT);
			return;
		}
		agent_start_wait(t);
	}
	if (!agent_task_has_health(t))
		return;
	now = t->a->env->ops->now_ms(t->a->env);
	if (now < t->health_at_ms)
		return;
	t->health_at_ms = now + agent_health_poll_ms(t);
	agent_task_do(t, ENV_CTL_INSPECT);
	t->health_poll = t->op_busy;
}

/* The task manager: one step towards what the assignment wants. A task
 * loaded from the database is not stepped before adoption has matched it
 * with what really runs (its container may run unseen); a task this
 * process got fresh never ran here, and may go on (with no Docker, to
 * REJECTED with Docker's error). */
static void agent_task_step(struct agent_task *t)
{
	struct agent *a = t->a;

	if (t->op_busy || t->closing || a->dying || a->dead)
		return;
	if (t->loaded && !a->adopted)
		return;
	if (t->orphan && !t->removed)
		return; /* until a full set says whose it is */
	if (t->retry_at_ms) {
		if (a->env->ops->now_ms(a->env) < t->retry_at_ms)
			return;
		t->retry_at_ms = 0;
	}
	if (agent_task_wants_run(t) && t->unhealthy && !agent_terminal(t->state)) {
		/* stopped for its health, then FAILED (SwarmKit's controller
		 * shuts an unhealthy container down and fails the task) */
		if (agent_task_stop(t))
			return;
		agent_task_set(t, CS__TASK_STATE__TASK_STATE_FAILED, AGENT_UNHEALTHY);
		return;
	}
	if (agent_task_wants_run(t)) {
		switch (t->state) {
		case CS__TASK_STATE__TASK_STATE_ASSIGNED:
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_ACCEPTED,
				       "accepted");
			/* fall through */
		case CS__TASK_STATE__TASK_STATE_ACCEPTED:
			if (t->env_held)
				return; /* its env comes with the next assignments */
			{
				/* issue 20: never run without its secrets */
				char why[160];
				if (!agent_secrets_ready(t->assigned, why, sizeof why)) {
					agent_task_set(
						t, CS__TASK_STATE__TASK_STATE_REJECTED,
						why);
					return;
				}
			}
			if (!agent_has_data_plane(a) && t->assigned &&
			    t->assigned->n_networks > 0) {
				const Cs__NetworkAttachment *att =
					t->assigned->networks[0];
				char why[160];
				snprintf(why, sizeof why,
					 "cannot attach to network %016" PRIx64
					 " (%.40s): no overlay data plane on this node",
					 att->network_id, att->addr ? att->addr : "");
				agent_task_set(t, CS__TASK_STATE__TASK_STATE_REJECTED,
					       why);
				return;
			}
			{
				/* issue 17: its networks declared first (their
				 * state comes from the managers) */
				char why[160 + LIMIT_NET_ERROR_BYTES];
				if (!agent_net_ready(a, t, why, sizeof why)) {
					if (why[0])
						agent_task_set(
							t,
							CS__TASK_STATE__TASK_STATE_REJECTED,
							why);
					return;
				}
			}
			if (agent_task_open(t)) {
				agent_task_set(t, CS__TASK_STATE__TASK_STATE_REJECTED,
					       "no executor for the task");
				return;
			}
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_PREPARING,
				       "preparing");
			agent_task_do(t, ENV_CTL_PREPARE);
			return;
		case CS__TASK_STATE__TASK_STATE_READY:
			/* on disk before the start is asked: a restart never
			 * starts it twice (a failed save is fatal) */
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_STARTING,
				       "starting");
			agent_task_do(t, ENV_CTL_START);
			return;
		case CS__TASK_STATE__TASK_STATE_STARTING:
			/* a start that answered an error: what runs decides */
			if (t->start_failed && agent_task_open(t) == 0)
				agent_task_do(t, ENV_CTL_INSPECT);
			else if (t->started)
				agent_task_watch(t); /* until healthy */
			return;
		case CS__TASK_STATE__TASK_STATE_RUNNING: agent_task_watch(t); return;
		default: return;
		}
	}
	/* stop it: shut down what may run, then remove when unassigned */
	if (agent_task_stop(t))
		return;
	if (!agent_terminal(t->state))
		agent_task_set(t, CS__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown");
	if (t->removed) {
		/* always asked of the executor, even for a task whose
		 * container this process never saw: it may have one from
		 * before a restart, exited or not */
		if (agent_task_open(t) == 0) {
			agent_task_do(t, ENV_CTL_REMOVE);
			t->removing = t->op_busy;
			return;
		}
		agent_task_forget(a, t);
	}
}

/* ---------------------------------------------------------------- reporting */

/* Room in a frame for what is not a task of a StatusUpdate: the Wire and
 * StatusUpdate headers and the two ids (each under 16 bytes). */
enum { AGENT_REPORT_HEAD_BYTES = 64 };

/* Sends wire to `to`. Returns 0, or an error: a frame over
 * LIMIT_FRAME_BYTES_MAX is never sent and logged as an error (callers split
 * what may be large; this is the loud net under them). */
static int agent_send(struct agent *a, const char *to, const Cs__Wire *wire)
{
	size_t len = cs__wire__get_packed_size(wire);
	uint8_t *buf;
	int rv;

	if (a->dying || a->dead || !to[0])
		return CS_EINVAL;
	if (len > LIMIT_FRAME_BYTES_MAX) {
		env_logf(a->env, ENV_LOG_ERROR,
			 "msg=\"message over the frame limit, not sent\" to=%s bytes=%zu"
			 " limit=%u",
			 to, len, LIMIT_FRAME_BYTES_MAX);
		return CS_ELIMIT;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return CS_ENOMEM;
	cs__wire__pack(wire, buf);
	rv = a->env->ops->send(a->env, to, buf, len);
	free(buf);
	return rv;
}

/* Bytes of a varint. */
static size_t agent_varint_bytes(size_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Sends the n states of ptrs as one StatusUpdate. Returns agent_send's. */
static int agent_report_send(struct agent *a, Cs__Task **ptrs, size_t n)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__StatusUpdate u = CS__STATUS_UPDATE__INIT;
	u.node_id = a->node_id;
	u.session_id = a->session_id;
	u.n_tasks = n;
	u.tasks = ptrs;
	wire.status_update = &u;
	return agent_send(a, a->target, &wire);
}

/* Whether t's state goes in the next report: observed past what the
 * dispatcher acknowledged, and not sent already with its answer not yet
 * due (see AGENT_RESEND_MS_MIN). */
static bool agent_report_is_due(const struct agent_task *t, ms_t now)
{
	if (t->orphan || t->state <= t->acked ||
	    t->state < CS__TASK_STATE__TASK_STATE_ACCEPTED)
		return false;
	return !(t->sent == t->state && now - t->sent_ms < t->resend_ms);
}

/* Sends every state not yet acknowledged, in task id order, in as many
 * StatusUpdates as it takes: each under LIMIT_FRAME_BYTES_MAX and
 * LIMIT_AGENT_REPORT_TASKS_MAX states. A state that could never fit in a
 * frame (it cannot happen: a message is 256 bytes) is logged as an error. */
static void agent_report(struct agent *a)
{
	const size_t budget = LIMIT_FRAME_BYTES_MAX - AGENT_REPORT_HEAD_BYTES;
	size_t cap = 0;
	Cs__Task *objs = NULL, **ptrs = NULL;
	Cs__TaskStatus *st = NULL;
	size_t n = 0, bytes = 0;
	ms_t now;

	if (a->link != AGENT_READY || a->task_count == 0 || a->dead)
		return;
	now = a->env->ops->now_ms(a->env);
	/* room for what is due, not for every task (issue 18: zeroing room
	 * for all of them at every report was 3.6% of the instructions of a
	 * 100,000-task simulation); every slot used is written whole below */
	for (size_t i = 0; i < a->task_count; i++)
		cap += agent_report_is_due(a->tasks[i], now);
	if (cap > LIMIT_AGENT_REPORT_TASKS_MAX)
		cap = LIMIT_AGENT_REPORT_TASKS_MAX;
	if (cap == 0)
		return;
	objs = malloc(cap * sizeof *objs);
	ptrs = malloc(cap * sizeof *ptrs);
	st = malloc(cap * sizeof *st);
	if (!objs || !ptrs || !st)
		goto out;
	for (size_t i = 0; i < a->task_count; i++) {
		struct agent_task *t = a->tasks[i];
		size_t item;
		if (!agent_report_is_due(t, now))
			continue;
		Cs__Task obj = CS__TASK__INIT;
		Cs__TaskStatus ts = CS__TASK_STATUS__INIT;
		obj.id = t->id;
		ts.state = t->state;
		ts.exit_code = t->exit_code;
		ts.message = (char *)agent_text(t->message);
		ts.timestamp_ms = now;
		obj.status = &ts;
		item = cs__task__get_packed_size(&obj);
		item += 1 + agent_varint_bytes(item); /* tag and length */
		if (item > budget) {
			env_logf(a->env, ENV_LOG_ERROR,
				 "msg=\"task state can never fit in a frame\" task=%s"
				 " bytes=%zu",
				 t->id_text, item);
			continue;
		}
		if (bytes + item > budget || n == cap) {
			/* the frame is full: send it; this one opens the next */
			if (agent_report_send(a, ptrs, n))
				goto out; /* the rest waits for the next tick */
			n = 0;
			bytes = 0;
		}
		objs[n] = obj;
		st[n] = ts;
		objs[n].status = &st[n];
		ptrs[n] = &objs[n];
		bytes += item;
		n++;
		if (t->sent == t->state) {
			t->resend_ms = t->resend_ms < AGENT_RESEND_MS_MAX / 2
					       ? 2 * t->resend_ms
					       : AGENT_RESEND_MS_MAX;
		} else {
			t->sent = t->state;
			t->resend_ms = AGENT_RESEND_MS_MIN;
		}
		t->sent_ms = now;
	}
	if (n)
		agent_report_send(a, ptrs, n);
out:
	free(objs);
	free(ptrs);
	free(st);
}

/* ---------------------------------------------------------------- session */

static void agent_add_manager(struct agent *a, const char *addr)
{
	if (!addr || !*addr || strlen(addr) >= LIMIT_ADDR_BYTES_MAX)
		return;
	for (size_t i = 0; i < a->manager_count; i++)
		if (strcmp(a->managers[i], addr) == 0)
			return;
	if (a->manager_count < AGENT_MANAGERS_MAX) {
		memcpy(a->managers[a->manager_count++], addr, strlen(addr) + 1);
		env_logf(a->env, ENV_LOG_INFO,
			 "msg=\"manager learned\" addr=%s managers=%zu", addr,
			 a->manager_count);
	}
}

static void agent_set_target(struct agent *a, const char *addr)
{
	if (addr && *addr && strlen(addr) < sizeof a->target)
		memcpy(a->target, addr, strlen(addr) + 1);
}

/* agent_unanswered_lately: addr left this agent's last unanswered
 * connect, less than AGENT_STALE_REDIRECT_MS ago, and was not passed
 * over since. Being passed over once (this returning true) forgets it:
 * a manager is skipped once per unanswered connect, never shunned. */
static bool agent_unanswered_lately(struct agent *a, const char *addr, ms_t now)
{
	if (!a->unanswered[0] || strcmp(a->unanswered, addr) != 0 ||
	    now - a->unanswered_ms >= AGENT_STALE_REDIRECT_MS)
		return false;
	a->unanswered[0] = '\0';
	return true;
}

static void agent_connect(struct agent *a);
static void agent_arm_connect(struct agent *a, ms_t now);

/* The connect timer: a connect due now, not at the next tick (issue 18: a
 * backoff of 125 ms must not wait a whole tick), within
 * AGENT_ELECTION_WATCH_MS of a session's end. */
static void agent_connect_due(struct env *env, env_timer_id id, void *data)
{
	struct agent *a = data;
	ms_t now = env->ops->now_ms(env);

	(void)id;
	a->connect_timer = 0;
	if (a->dead || a->dying || a->refused || a->link != AGENT_DISCONNECTED ||
	    !nodecert_valid(&a->nc))
		return;
	if (now < a->next_connect_ms) {
		agent_arm_connect(a, now);
		return;
	}
	a->redirects = 0;
	agent_connect(a);
}

static void agent_arm_connect(struct agent *a, ms_t now)
{
	ms_t in = a->next_connect_ms > now ? a->next_connect_ms - now : 0;

	/* only while a lost session is being found again: a first connect
	 * (a node starting, or joining) keeps the tick's pace */
	if (a->connect_timer || a->dead || a->dying || !a->lost_ms ||
	    now - a->lost_ms >= AGENT_ELECTION_WATCH_MS)
		return; /* it looks again when it fires */
	if (a->env->ops->timer_start(a->env, in ? in : 1, 0, agent_connect_due, a,
				     &a->connect_timer) != 0)
		a->connect_timer = 0; /* the tick, then */
}

/* agent_passed_over: addr is to be passed over in the list's turn now:
 * the manager that last left a connect unanswered (once, as
 * agent_unanswered_lately says), or the one whose connection closed under
 * this agent's session, not heard from since, less than
 * AGENT_STALE_REDIRECT_MS ago (issue 18: after a leader's death a third of
 * the tries went to it, each a connect refused or left unanswered for two
 * ticks, and an agent at it when the new leader was elected came seconds
 * late). Never with a single manager. */
static bool agent_passed_over(struct agent *a, const char *addr, ms_t now)
{
	if (a->manager_count < 2)
		return false;
	if (a->gone[0] && strcmp(a->gone, addr) == 0 &&
	    now - a->gone_ms < AGENT_STALE_REDIRECT_MS) {
		/* always within AGENT_GONE_PASSED_MS of its going when it
		 * refused a connect since, else within
		 * AGENT_GONE_PASSED_PERIODS of the last heartbeat; later every
		 * other turn only: a connection can close with its manager
		 * alive (followers' redirects to it are passed over too), and
		 * the agent must find it again before it is declared down */
		ms_t until = a->gone_ms + AGENT_GONE_PASSED_MS;
		ms_t alive = a->last_hb_ms + AGENT_GONE_PASSED_PERIODS * a->heartbeat_ms;
		if (!a->gone_refused && alive < until)
			until = alive;
		a->gone_passed = now < until || !a->gone_passed;
		return a->gone_passed;
	}
	return agent_unanswered_lately(a, addr, now);
}

/* Session lost (or never had): try again after a backoff with jitter, at
 * most cap, on the next manager of the list. Running tasks keep running. */
static void agent_disconnect_paced(struct agent *a, bool rotate, ms_t cap)
{
	ms_t now = a->env->ops->now_ms(a->env);
	if (a->link == AGENT_READY) {
		a->lost_ms = now ? now : 1;
		a->electing = false;
	}
	a->link = AGENT_DISCONNECTED;
	a->session_id = 0;
	if (rotate && a->manager_count) {
		const char *next = a->managers[a->next_manager % a->manager_count];
		a->next_manager++;
		/* at most every other manager passed over: one is tried */
		for (size_t i = 1;
		     i < a->manager_count && agent_passed_over(a, next, now); i++) {
			next = a->managers[a->next_manager % a->manager_count];
			a->next_manager++;
		}
		agent_set_target(a, next);
		a->target_named = false;
		a->reasks = 0;
	}
	a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : AGENT_BACKOFF_MS_MIN;
	if (a->backoff_ms > cap)
		a->backoff_ms = cap;
	/* jitter: between half and all of the backoff */
	a->next_connect_ms = now + a->backoff_ms / 2 +
			     a->env->ops->random_u64(a->env) % (a->backoff_ms / 2 + 1);
	agent_arm_connect(a, now);
}

static void agent_disconnect(struct agent *a, bool rotate)
{
	ms_t now = a->env->ops->now_ms(a->env);
	bool watch = a->electing && a->link != AGENT_READY && a->lost_ms &&
		     now - a->lost_ms < AGENT_ELECTION_WATCH_MS;

	agent_disconnect_paced(a, rotate,
			       watch ? AGENT_ELECTION_RETRY_MS : AGENT_BACKOFF_MS_MAX);
}

/* A live manager answered a connect with no leader to go to (none known,
 * or the one that just left this agent unanswered): the managers are
 * electing, and one of them will name the new leader as soon as it is
 * elected. From then until AGENT_ELECTION_WATCH_MS after the session's
 * end, every retry (this one, and one after a connect left unanswered)
 * comes at most AGENT_ELECTION_RETRY_MS later. Without such an answer (no
 * manager reachable) the backoff grows as before. */
static void agent_disconnect_electing(struct agent *a)
{
	a->electing = true;
	agent_disconnect(a, true);
}

/* What the node says of itself, on every session request: a resync whose
 * session the leader no longer holds (a new leader, or one that dropped
 * it) is answered with a new session, and that session's record is
 * written from this request: without it the node's record would be
 * blanked (no hostname, no resources) until its next session. */
static void agent_describe(const struct agent *a, Cs__SessionRequest *q,
			   Cs__Resources *res)
{
	q->node_id = a->node_id;
	q->hostname = (char *)a->cfg->hostname;
	q->role = a->cfg->role;
	/* a manager's raft id is its node id (its certificate says which) */
	if (a->cfg->role == CS__NODE_ROLE__NODE_ROLE_MANAGER) {
		q->raft_id = a->node_id;
		q->manager_addr = (char *)a->env->ops->self_addr(a->env);
	}
	res->millicpus = a->cfg->millicpus;
	res->memory_bytes = a->cfg->memory_bytes;
	q->resources = res;
	q->backend_deltas = true; /* agent_merge_backends */
	if (a->cfg->desc) {
		q->platform_os = (char *)a->cfg->desc->platform_os;
		q->platform_arch = (char *)a->cfg->desc->platform_arch;
		q->addr = (char *)a->cfg->desc->addr;
		q->engine_labels = a->cfg->desc->engine_labels;
		q->n_engine_labels = a->cfg->desc->engine_label_count;
	}
}

static void agent_connect(struct agent *a)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__SessionRequest q = CS__SESSION_REQUEST__INIT;
	Cs__Resources res = CS__RESOURCES__INIT;

	agent_describe(a, &q, &res);
	wire.session = &q;
	a->link = AGENT_CONNECTING;
	a->last_answer_ms = a->env->ops->now_ms(a->env);
	agent_send(a, a->target, &wire);
}

static void agent_resync(struct agent *a)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__SessionRequest q = CS__SESSION_REQUEST__INIT;
	Cs__Resources res = CS__RESOURCES__INIT;

	agent_describe(a, &q, &res);
	q.session_id = a->session_id;
	q.want_seq = a->seq + 1;
	wire.session = &q;
	a->full_open = false; /* what comes next is a whole new full set */
	agent_send(a, a->target, &wire);
}

static void agent_list(struct agent *a);
static void agent_ask_cert(struct agent *a);

/* A join request is about to go out: after AGENT_JOIN_QUIET_TRIES without
 * any answer, says so (then at each doubling, not at every try): a node
 * whose token names a root no manager presents any more (a token from
 * before a CA rotation) is refused by its own transport, and would
 * otherwise retry in silence for ever. */
#define AGENT_JOIN_QUIET_TRIES 10u

static void agent_join_unanswered(struct agent *a)
{
	uint32_t n = ++a->join_unanswered;

	if (n < AGENT_JOIN_QUIET_TRIES ||
	    (n != AGENT_JOIN_QUIET_TRIES && (n & (n - 1)) != 0))
		return;
	env_logf(a->env, ENV_LOG_ERROR,
		 "msg=\"join unanswered\" tries=%" PRIu32
		 " why=\"no manager answered: none reachable, or none presents a "
		 "certificate of the join token's root (a token from before a CA "
		 "rotation: ask a manager for the current one)\"",
		 n);
}
static void agent_identity(struct agent *a);

/* Steps the tasks whose retry is due (in id order; a step may forget). */
static void agent_retry_due(struct agent *a, ms_t now)
{
	size_t n = 0;
	uint64_t *ids = malloc((a->task_count ? a->task_count : 1) * sizeof *ids);

	if (!ids)
		return; /* the next tick */
	a->retry_pending = false;
	for (size_t i = 0; i < a->task_count; i++) {
		const struct agent_task *t = a->tasks[i];
		if (!t->retry_at_ms)
			continue;
		if (now >= t->retry_at_ms)
			ids[n++] = t->id;
		else
			a->retry_pending = true;
	}
	for (size_t i = 0; i < n; i++) {
		struct agent_task *t = agent_task_get(a, ids[i]);
		if (t)
			agent_task_step(t);
	}
	free(ids);
}

/* Steps the started tasks whose health poll is due (in id order). */
static void agent_health_due(struct agent *a, ms_t now)
{
	for (size_t i = 0; i < a->task_count; i++) {
		struct agent_task *t = a->tasks[i];
		bool watched =
			t->state == CS__TASK_STATE__TASK_STATE_RUNNING ||
			(t->state == CS__TASK_STATE__TASK_STATE_STARTING && t->started);
		/* a step never forgets a task that wants to run, so the
		 * array stays as it is */
		if (watched && !t->op_busy && !t->closing && !t->unhealthy &&
		    now >= t->health_at_ms && agent_task_wants_run(t) &&
		    agent_task_has_health(t))
			agent_task_step(t);
	}
}

static void agent_tick(struct env *env, env_timer_id id, void *data)
{
	struct agent *a = data;
	ms_t now = env->ops->now_ms(env);

	if (a->dead)
		return;
	agent_tx_lazy(a);
	if (!a->adopted && !a->listing && now >= a->list_retry_ms)
		agent_list(a);
	if (a->retry_pending)
		agent_retry_due(a, now);
	agent_health_due(a, now);
	agent_net_taken(a); /* a declaration accepted: its waiting tasks go on */
	if (a->refused)
		return;
	if (!nodecert_valid(&a->nc)) {
		/* no certificate (or an expired one): the local manager may
		 * have signed one; else join with the token; else wait */
		if (nodecert_reload(&a->nc) && nodecert_valid(&a->nc)) {
			agent_identity(a);
		} else {
			if (a->link != AGENT_DISCONNECTED)
				agent_disconnect(a, false);
			if (now >= a->next_connect_ms && nodecert_due(&a->nc, 0)) {
				agent_join_unanswered(a);
				agent_ask_cert(a);
				agent_disconnect(a,
						 true); /* the next try, if unanswered */
			}
			return;
		}
	}
	if (a->link == AGENT_READY && nodecert_due(&a->nc, 10 * AGENT_TICK_MS_MAX))
		agent_ask_cert(a);
	switch (a->link) {
	case AGENT_DISCONNECTED:
		if (now >= a->next_connect_ms) {
			a->redirects = 0;
			agent_connect(a);
		}
		break;
	case AGENT_CONNECTING:
		/* no answer in a tick or two: the next manager; and a look at
		 * the certificate (replaced, or expired: managers do not answer
		 * a node without a valid one) */
		if (now - a->last_answer_ms >= 2 * AGENT_TICK_MS_MAX && a->target_named &&
		    a->reasks < AGENT_REASKS_MAX) {
			/* a leader named by another manager: busy, likely */
			a->reasks++;
			agent_connect(a);
			break;
		}
		if (now - a->last_answer_ms >= 2 * AGENT_TICK_MS_MAX) {
			memcpy(a->unanswered, a->target, sizeof a->unanswered);
			a->unanswered_ms = now;
			nodecert_reload(&a->nc);
			agent_disconnect(a, true);
		}
		break;
	case AGENT_READY:
		if (now - a->last_answer_ms > AGENT_SESSION_GRACE * a->heartbeat_ms) {
			env_logf(env, ENV_LOG_WARN, "msg=\"session lost\" manager=%s",
				 a->target);
			agent_disconnect(a, true);
			break;
		}
		/* heartbeat every period; an unanswered one again after a
		 * second, as TCP would retransmit */
		if (now - a->last_hb_ms >= a->heartbeat_ms ||
		    (a->hb_pending && now - a->last_hb_ms >= AGENT_HB_RETRY_MS)) {
			Cs__Wire wire = CS__WIRE__INIT;
			Cs__Heartbeat hb = CS__HEARTBEAT__INIT;
			Cs__NetworkDigest *digests, **digest_ptrs;
			hb.node_id = a->node_id;
			hb.session_id = a->session_id;
			/* which certificate it holds (a CA rotation's progress;
			 * the manager may have signed this one itself) */
			nodecert_reload(&a->nc);
			hb.cert_key =
				(ProtobufCBinaryData){sizeof a->nc.id.key, a->nc.id.key};
			a->hb_installs = a->nc.installs;
			hb.removed_digest = a->removed_digest;
			hb.net_keys_digest = a->net_keys_digest;
			hb.n_net_digests = agent_net_digests(a, &digests, &digest_ptrs);
			hb.net_digests = digest_ptrs;
			wire.heartbeat = &hb;
			agent_send(a, a->target, &wire);
			free(digests);
			free(digest_ptrs);
			a->last_hb_ms = now;
			a->hb_pending = true;
		}
		agent_report(a);
		break;
	}
}

/* The tick is the heartbeat's clock: at most a second, and no longer than
 * the period, or a heartbeat goes late and a period under a second loses
 * its session between two ticks (3 periods of grace). */
static ms_t agent_tick_ms(ms_t heartbeat_ms)
{
	ms_t tick = heartbeat_ms < AGENT_TICK_MS_MAX ? heartbeat_ms : AGENT_TICK_MS_MAX;
	return tick ? tick : 1;
}

/* A period the manager gives (at the session's start, and when the
 * cluster's setting changes): the tick follows it. */
static void agent_set_heartbeat(struct agent *a, ms_t heartbeat_ms)
{
	struct env *env = a->env;
	ms_t tick = agent_tick_ms(heartbeat_ms);

	a->heartbeat_ms = heartbeat_ms;
	if (tick == a->tick_ms)
		return;
	env->ops->timer_stop(env, a->tick_timer);
	if (env->ops->timer_start(env, tick, tick, agent_tick, a, &a->tick_timer)) {
		agent_fatal(a, "arm the tick");
		return;
	}
	a->tick_ms = tick;
}

/* ---------------------------------------------------------------- frames */

/* Makes task t's assignment: taken out of the frame (its slot left NULL,
 * which cs__wire__free_unpacked skips), not copied. The frame is the
 * caller's as cs__wire__unpack made it (agent_handle), so the task and
 * everything under it were malloc'd as agent_task_msg_free frees them
 * (issue 18: copying every task of every assignment, a pack and an unpack,
 * was 4% of the simulator's instructions at 1,000 workers). */
static void agent_assign(struct agent_task *t, Cs__Task **slot)
{
	if (t->assigned)
		agent_task_msg_free(t->assigned);
	t->assigned = *slot;
	*slot = NULL;
	t->env_held = false; /* the manager's copy has them */
	t->row_whole = false;
}

/* Steps the tasks of ids (n of them, in order; a step may forget). */
static void agent_step_ids(struct agent *a, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct agent_task *t = agent_task_get(a, ids[i]);
		if (t)
			agent_task_step(t);
	}
}

/* Applies one Assignments frame (a whole change, or a part of a full set)
 * to the table and the disk; returns the ids of the tasks to step in *ids
 * (malloc'd, the caller frees) and *n. Marks every task the frame names
 * with the open full set's generation; the last part of a full set
 * unassigns the tasks no part of it named. O(tasks + named log named).
 * Returns 0 or CS_ENOMEM. */
static int agent_apply_frame(struct agent *a, Cs__Assignments *as, uint64_t **ids,
			     size_t *n)
{
	struct agent_task **fresh = NULL;
	size_t fresh_count = 0, cap;
	bool last_part = as->full && !as->more;
	uint64_t *out;

	cap = as->n_tasks + as->n_removed + (last_part ? a->task_count : 0);
	out = malloc((cap ? cap : 1) * sizeof *out);
	fresh = malloc((as->n_tasks ? as->n_tasks : 1) * sizeof *fresh);
	*ids = NULL;
	*n = 0;
	if (!out || !fresh)
		goto fail;
	for (size_t j = 0; j < as->n_tasks; j++) {
		const Cs__Task *task = as->tasks[j];
		struct agent_task *t = agent_task_get(a, task->id);
		if (!t) {
			t = agent_task_new(a, task->id);
			if (!t)
				goto fail;
			t->state = CS__TASK_STATE__TASK_STATE_ASSIGNED;
			fresh[fresh_count++] = t;
		}
		agent_assign(t, &as->tasks[j]); /* task is t's now */
		/* the store this set comes from holds the state already (a
		 * new leader's full set after a new session, which reset every
		 * ack): nothing to report again (issue 18: at 10,000 agents,
		 * 90,000 states the new leader read and acknowledged
		 * unchanged while it took the agents back) */
		if (task->status && task->status->state == t->state &&
		    t->state > t->acked)
			t->acked = t->state;
		t->removed = false;
		t->orphan = false;
		if (as->full)
			t->mark = a->full_gen;
		agent_task_save(a, t);
		out[(*n)++] = t->id;
	}
	if (agent_tasks_merge(a, fresh, fresh_count))
		goto fail;
	fresh_count = 0;
	for (size_t j = 0; j < as->n_removed; j++) {
		struct agent_task *t = agent_task_get(a, as->removed[j]);
		if (t) {
			t->removed = true;
			out[(*n)++] = t->id;
		}
	}
	if (last_part) {
		/* what no part of the set named is no longer assigned */
		for (size_t i = 0; i < a->task_count; i++) {
			struct agent_task *t = a->tasks[i];
			if (t->mark != a->full_gen && !t->removed) {
				t->removed = true;
				out[(*n)++] = t->id;
			}
		}
	}
	free(fresh);
	*ids = out;
	return 0;
fail:
	for (size_t k = 0; k < fresh_count; k++)
		agent_task_free(fresh[k]);
	free(fresh);
	free(out);
	*n = 0;
	return CS_ENOMEM;
}

/* Applies as in one transaction (returns 0, or an error and the frame may
 * be half applied: ask for a full set): a full set of a thousand tasks is one
 * sync, not a thousand. Nothing leaves the agent before it commits:
 * executor calls the steps ask wait until then (agent_task_do), and a
 * failed COMMIT is fatal (the process stops before any of them), so a crash
 * finds the tasks as before the set or as after it. */
static int agent_apply(struct agent *a, Cs__Assignments *as)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	int rv;

	assert(!a->in_tx);
	if (a->dead || !agent_tx_begin(a, "begin saving assignments"))
		return CS_ESTORAGE;
	rv = agent_apply_frame(a, as, &ids, &n);
	if (rv == 0) {
		/* a network's state may have come before the task that needs
		 * it (the dispatcher sends states as soon as the store places
		 * the task, assignments at their own pace): declared now, so
		 * the new task finds it (without this the task waited in
		 * ACCEPTED for the network's next change; explore of
		 * dp-leader-change.scn --swarm, seed 2) */
		agent_net_sync(a);
		agent_step_ids(a, ids, n);
	}
	agent_tx_end(a, "save assignments");
	if (rv)
		env_logf(a->env, ENV_LOG_ERROR,
			 "msg=\"cannot apply assignments\" err=\"%s\"", cs_strerror(rv));
	agent_task_do_deferred(a);
	free(ids);
	return rv;
}

/* The cluster refused this node: say so once, loudly, and stop trying (a
 * wrong token does not become right by retrying). */
static void agent_refused(struct agent *a, const char *from, const char *why)
{
	char msg[LIMIT_ADDR_BYTES_MAX + 320];

	a->refused = true;
	a->link = AGENT_DISCONNECTED;
	snprintf(msg, sizeof msg, "manager %s refused this node: %s", from,
		 why && *why ? why : cs_strerror(CS_EAUTH));
	env_logf(a->env, ENV_LOG_ERROR, "msg=\"join refused\" manager=%s reason=\"%s\"",
		 from, why && *why ? why : cs_strerror(CS_EAUTH));
	if (a->cfg->on_refused)
		a->cfg->on_refused(a->cfg->hook_data, msg);
}

/* The cluster wants this node to be another role: its certificate first
 * (renewed with that role), then the host, once. */
static void agent_check_role(struct agent *a, Cs__NodeRole desired)
{
	enum env_role want = desired == CS__NODE_ROLE__NODE_ROLE_MANAGER
				     ? ENV_ROLE_MANAGER
				     : ENV_ROLE_WORKER;
	a->desired = desired;
	nodecert_want(&a->nc, want);
	if (a->nc.id.role != want)
		return; /* the renewal asks for it; this runs again once it is in */
	if (desired == a->cfg->role || desired == a->told_role)
		return;
	a->told_role = desired;
	env_logf(a->env, ENV_LOG_INFO, "msg=\"role change\" from=%s to=%s",
		 a->cfg->role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker",
		 desired == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
	if (a->cfg->on_role)
		a->cfg->on_role(a->cfg->hook_data, desired);
}

/* Sends the certificate request nodecert asks for (a join or a renewal)
 * to the manager in target. */
static void agent_ask_cert(struct agent *a)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__CertRequest q;
	int rv = nodecert_request(&a->nc, a->cfg->hostname, &q);

	if (rv) {
		env_logf(a->env, ENV_LOG_ERROR, "msg=\"cannot make a CSR\" err=%s",
			 cs_strerror(rv));
		return;
	}
	wire.cert_request = &q;
	agent_send(a, a->target, &wire);
}

/* The node's certificate changed: its id is the certificate's; the host
 * hears of it; a role the cluster asked for may now be taken. */
static void agent_identity(struct agent *a)
{
	if (a->nc.id.node_id && a->node_id != a->nc.id.node_id) {
		a->node_id = a->nc.id.node_id;
		if (agent_db_node_id(a)) {
			agent_fatal(a, "save the node id");
			return;
		}
	}
	if (a->cfg->on_identity)
		a->cfg->on_identity(a->cfg->identity_data, &a->nc.id);
	if (a->desired != a->cfg->role)
		agent_check_role(a, a->desired);
}

static void agent_on_cert_response(struct agent *a, const char *from,
				   const Cs__CertResponse *r)
{
	const char *leader, *why;
	bool joining = !nodecert_valid(&a->nc);

	a->join_unanswered = 0;

	switch (nodecert_on_response(&a->nc, r, &leader, &why)) {
	case NODECERT_INSTALLED:
		if (joining) {
			agent_set_target(a, from);
			a->link = AGENT_DISCONNECTED;
			a->backoff_ms = 0;
			a->next_connect_ms = a->env->ops->now_ms(a->env);
		}
		agent_identity(a);
		break;
	case NODECERT_REDIRECT:
		agent_add_manager(a, leader);
		if (leader) {
			agent_set_target(a, leader);
			if (joining)
				a->next_connect_ms = a->env->ops->now_ms(a->env);
		}
		break;
	case NODECERT_REFUSED: agent_refused(a, from, why); break;
	case NODECERT_IGNORED:
	case NODECERT_RETRY:
	case NODECERT_FATAL: break;
	}
}

static int agent_id_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

/* Makes ids (n of them, taken) the removed-node list, sorted. */
static void agent_removed_take(struct agent *a, uint64_t *ids, size_t n)
{
	Cs__Cluster c = CS__CLUSTER__INIT;

	if (n)
		qsort(ids, n, sizeof *ids, agent_id_cmp);
	free(a->removed);
	a->removed = ids;
	a->removed_count = n;
	c.removed_nodes = ids;
	c.n_removed_nodes = n;
	a->removed_digest = store_cluster_removed_digest(&c);
}

/* Writes the removed-node list (with the open transaction, if any).
 * Returns 0 or CS_ESTORAGE. */
static int agent_db_removed(struct agent *a)
{
	sqlite3_stmt *st = NULL;
	bool own = !a->in_tx;
	int rc = SQLITE_OK;

	if (own && sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	if (sqlite3_exec(a->db, "DELETE FROM agent_removed", NULL, NULL, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(a->db, "INSERT INTO agent_removed VALUES (?)", -1, &st,
			       NULL) != SQLITE_OK)
		rc = SQLITE_ERROR;
	for (size_t i = 0; rc == SQLITE_OK && i < a->removed_count; i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)a->removed[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = SQLITE_ERROR;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (own && rc == SQLITE_OK &&
	    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = SQLITE_ERROR;
	if (own && rc != SQLITE_OK)
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : CS_ESTORAGE;
}

/* Takes the removed-node list a manager sent (when sent says it did) and
 * writes it when it changed (a failed write is fatal); keeps the one it
 * has when memory runs out. */
static void agent_set_removed(struct agent *a, bool sent, const uint64_t *ids, size_t n)
{
	uint64_t *copy = NULL, had = a->removed_digest;

	if (!sent)
		return;
	if (n && !(copy = malloc(n * sizeof *copy)))
		return;
	if (n)
		memcpy(copy, ids, n * sizeof *copy);
	agent_removed_take(a, copy, n);
	if (a->removed_digest != had && agent_db_removed(a))
		agent_fatal(a, "save the removed nodes");
}

bool agent_handle(struct agent *a, const char *from, const struct env_identity *who,
		  Cs__Wire *wire)
{
	Cs__Cluster removed = CS__CLUSTER__INIT;

	ms_t now = a->env->ops->now_ms(a->env);

	if (!wire->session_response && !wire->heartbeat_response && !wire->assignments &&
	    !wire->status_ack && !wire->cert_response && !wire->network_state &&
	    !wire->network_keys)
		return false;
	/* only a manager of this node's cluster (before it has a certificate:
	 * a manager of the root its token names, which the env checked) */
	if (who->role != ENV_ROLE_MANAGER ||
	    (nodecert_valid(&a->nc) && who->cluster_id != a->nc.id.cluster_id)) {
		env_logf(
			a->env, ENV_LOG_WARN,
			"msg=\"refused\" what=%s from=%s node=%016" PRIx64 " why=\"%s\"",
			wire->cert_response	   ? "cert_response"
			: wire->session_response   ? "session_response"
			: wire->heartbeat_response ? "heartbeat_response"
			: wire->assignments	   ? "assignments"
			: wire->network_state	   ? "network_state"
			: wire->network_keys	   ? "network_keys"
						   : "status_ack",
			from, who->node_id,
			who->role != ENV_ROLE_MANAGER
				? "an answer from a sender without a manager's certificate"
				: "an answer from a manager of another cluster");
		return true;
	}
	/* a removed manager's certificate stays valid until it expires: the
	 * managers' removed-node list says it is no manager any more */
	removed.removed_nodes = a->removed;
	removed.n_removed_nodes = a->removed_count;
	if (store_cluster_removed(&removed, who->node_id)) {
		env_logf(a->env, ENV_LOG_WARN,
			 "msg=\"refused\" what=answer from=%s node=%016" PRIx64
			 " why=\"an answer from a node removed from the cluster\"",
			 from, who->node_id);
		return true;
	}
	if (a->gone[0] && strcmp(a->gone, from) == 0)
		a->gone[0] = '\0'; /* it answers: not gone */
	if (wire->cert_response) {
		agent_on_cert_response(a, from, wire->cert_response);
		return true;
	}

	if (wire->session_response) {
		const Cs__SessionResponse *r = wire->session_response;
		/* in session, a second session from the same manager (two
		 * requests crossed: a connect left unanswered for two ticks is
		 * asked again) is the one its dispatcher holds now: taken, or
		 * the next heartbeat is told the session is stale */
		bool newer = a->link == AGENT_READY && r->status == 0 &&
			     r->session_id != a->session_id &&
			     strcmp(from, a->target) == 0;
		/* issue 18: a session given after the agent stopped waiting
		 * for it (a new leader answering late: the agent waits out its
		 * backoff before asking elsewhere) is taken all the same, from
		 * whichever manager: its dispatcher holds it, and asking again
		 * would only queue another request behind the others */
		bool late = a->link == AGENT_DISCONNECTED && r->status == 0 &&
			    !a->refused && !a->dead && !a->dying &&
			    nodecert_valid(&a->nc);
		if (a->link != AGENT_CONNECTING && !newer && !late)
			return true;
		if (r->status == CS_ENOTLEADER) {
			/* follow the redirect at once, when there is one and
			 * it does not name the manager that just left us
			 * unanswered (a follower names the old leader until
			 * its own election timeout) */
			agent_add_manager(a, r->leader);
			if (r->leader && *r->leader &&
			    !(a->gone[0] && strcmp(a->gone, r->leader) == 0 &&
			      now - a->gone_ms < AGENT_STALE_REDIRECT_MS) &&
			    !agent_unanswered_lately(a, r->leader, now)) {
				agent_set_target(a, r->leader);
				a->target_named = true;
				a->reasks = 0;
				a->link = AGENT_DISCONNECTED;
				a->next_connect_ms = now;
				if (a->redirects < AGENT_REDIRECTS_AT_ONCE) {
					a->redirects++;
					agent_connect(a);
				}
			} else {
				agent_disconnect_electing(a);
			}
			return true;
		}
		if (r->status == CS_EAUTH) {
			agent_refused(a, from, r->error);
			return true;
		}
		if (r->status) {
			agent_disconnect(a, true);
			return true;
		}
		if (r->store_index < a->index_seen &&
		    a->stale_refused < AGENT_STALE_REFUSALS_MAX) {
			a->stale_refused++;
			env_logf(a->env, ENV_LOG_WARN,
				 "msg=\"stale session answer\" from=%s index=%" PRIu64
				 " seen=%" PRIu64,
				 from, r->store_index, a->index_seen);
			if (a->link == AGENT_CONNECTING)
				agent_disconnect(a, true);
			return true;
		}
		if (r->store_index < a->index_seen) {
			env_logf(
				a->env, ENV_LOG_WARN,
				"msg=\"store older than the agent saw: taken (a restored "
				"cluster?)\" from=%s index=%" PRIu64 " seen=%" PRIu64
				" refused=%u",
				from, r->store_index, a->index_seen, a->stale_refused);
			a->index_seen = r->store_index;
		}
		a->stale_refused = 0;
		if (a->node_id != r->node_id) {
			a->node_id = r->node_id;
			if (agent_db_node_id(a)) {
				agent_fatal(a, "save the node id");
				return true;
			}
		}
		a->session_id = r->session_id;
		agent_set_heartbeat(a, r->heartbeat_ms ? r->heartbeat_ms : 5000);
		a->link = AGENT_READY;
		a->target_named = false; /* a reconnect to it is no redirect's */
		a->reasks = 0;
		a->last_answer_ms = a->last_hb_ms = now;
		a->hb_pending = false;
		a->backoff_ms = 0;
		a->seq = 0;
		a->full_open = false;
		agent_set_target(a, from);
		for (size_t i = 0; i < r->n_managers; i++)
			agent_add_manager(a, r->managers[i]);
		agent_set_removed(a, r->removed_sent, r->removed_nodes,
				  r->n_removed_nodes);
		agent_check_role(a, r->desired_role);
		if (r->renew_cert)
			nodecert_renew(&a->nc);
		/* what was acknowledged under another session may be lost:
		 * report everything again */
		for (size_t i = 0; i < a->task_count; i++) {
			a->tasks[i]->acked = 0;
			a->tasks[i]->sent = 0;
		}
		/* a session answered again, whose full set went before the
		 * answer this agent took (lost, or ignored while it did not
		 * hold the session): ask for it */
		if (r->seq)
			agent_resync(a);
		return true;
	}
	if (wire->heartbeat_response) {
		const Cs__HeartbeatResponse *r = wire->heartbeat_response;
		/* from the session's manager only: it also pushes one unasked
		 * when the managers change */
		if (a->link != AGENT_READY || strcmp(from, a->target) != 0)
			return true;
		if (r->status == CS_ENOTLEADER) {
			agent_set_target(a, r->leader);
			agent_disconnect(a, false);
			a->next_connect_ms = now;
		} else if (r->status) {
			agent_disconnect(a, false);
			a->next_connect_ms = now;
		} else {
			a->last_answer_ms = now;
			a->hb_pending = false;
			if (r->heartbeat_ms)
				agent_set_heartbeat(a, r->heartbeat_ms);
			for (size_t i = 0; i < r->n_managers; i++)
				agent_add_manager(a, r->managers[i]);
			agent_set_removed(a, r->removed_sent, r->removed_nodes,
					  r->n_removed_nodes);
			agent_check_role(a, r->desired_role);
			/* about the certificate the heartbeat named: not one
			 * installed since (its answer crossed the heartbeat) */
			if (r->renew_cert && a->nc.installs == a->hb_installs)
				nodecert_renew(&a->nc);
			/* the last change was lost on the way: ask for all */
			if (r->seq > a->seq)
				agent_resync(a);
		}
		return true;
	}
	if (wire->assignments) {
		Cs__Assignments *as = wire->assignments;
		if (a->link != AGENT_READY || as->session_id != a->session_id || a->dead)
			return true;
		a->last_answer_ms = now;
		env_logf(a->env, ENV_LOG_DEBUG,
			 "msg=\"assignments\" seq=%" PRIu64 " last=%" PRIu64
			 " full=%d more=%d tasks=%zu removed=%zu",
			 as->seq, a->seq, (int)as->full, (int)as->more, as->n_tasks,
			 as->n_removed);
		/* seqs only grow within a session: an older one is a duplicate
		 * or was overtaken (a reordering link) */
		if (as->seq <= a->seq)
			return true;
		if (as->store_index < a->index_seen) {
			env_logf(a->env, ENV_LOG_WARN,
				 "msg=\"stale assignments\" from=%s index=%" PRIu64
				 " seen=%" PRIu64,
				 from, as->store_index, a->index_seen);
			agent_disconnect(a, true);
			return true;
		}
		/* a full set's first part (its set_seq is its own seq; 0 from
		 * a sender that never splits) starts a set, after a gap too:
		 * the answer to a resync starts past it. A later part goes on
		 * the open set only: one whose first part was lost starts
		 * nothing (it would read as a shorter set) */
		if (as->full && !a->full_open && as->set_seq && as->set_seq != as->seq) {
			agent_resync(a);
			return true;
		}
		if (as->full ? a->full_open && (as->seq != a->seq + 1 ||
						as->set_seq != a->full_set_seq)
			     : a->full_open || as->seq != a->seq + 1) {
			/* a gap: lost changes, or a part of a full set */
			agent_resync(a);
			return true;
		}
		if (as->full && !a->full_open) {
			a->full_gen++; /* a new full set: its first part */
			a->full_open = true;
			a->full_set_seq = as->set_seq;
		}
		a->seq = as->seq;
		if (as->full && !as->more)
			a->full_open = false;
		if (as->store_index > a->index_seen)
			a->index_seen = as->store_index;
		if (agent_apply(a, as)) {
			agent_resync(a);
			return true;
		}
		if (as->full && !as->more && !a->synced) {
			a->synced = true;
			env_logf(a->env, ENV_LOG_INFO,
				 "msg=\"assignments synced\" tasks=%zu", a->task_count);
		}
		return true;
	}
	if (wire->network_state) {
		const Cs__NetworkState *ns = wire->network_state;
		if (a->link != AGENT_READY || ns->session_id != a->session_id || a->dead)
			return true;
		a->last_answer_ms = now;
		agent_on_net_state(a, ns);
		return true;
	}
	if (wire->network_keys) {
		const Cs__NetworkKeys *nk = wire->network_keys;
		if (a->link != AGENT_READY || nk->session_id != a->session_id || a->dead)
			return true;
		a->last_answer_ms = now;
		agent_on_net_keys(a, nk);
		return true;
	}
	if (wire->status_ack) {
		const Cs__StatusAck *ack = wire->status_ack;
		if (ack->session_id != a->session_id)
			return true;
		for (size_t i = 0; i < ack->n_task_ids && i < ack->n_states; i++) {
			struct agent_task *t = agent_task_get(a, ack->task_ids[i]);
			if (t && (Cs__TaskState)ack->states[i] > t->acked)
				t->acked = (Cs__TaskState)ack->states[i];
		}
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- lifecycle */

/* Loads the tasks saved before a restart; their containers are matched in
 * agent_adopt. Returns 0 or an error. */
static int agent_load(struct agent *a)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(
		    a->db,
		    "SELECT id, task, state, exit_code, message, env_held FROM agent_tasks"
		    " ORDER BY id",
		    -1, &st, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
		Cs__Task *task =
			cs__task__unpack(NULL, (size_t)sqlite3_column_bytes(st, 1),
					 sqlite3_column_blob(st, 1));
		struct agent_task *t;
		const unsigned char *msg = sqlite3_column_text(st, 4);
		if (!task) {
			sqlite3_finalize(st);
			return CS_ECORRUPT;
		}
		t = agent_task_add(a, id);
		if (!t) {
			cs__task__free_unpacked(task, NULL);
			sqlite3_finalize(st);
			return CS_ENOMEM;
		}
		t->assigned = task;
		t->row_whole = true;
		t->loaded = true;
		t->state = (Cs__TaskState)sqlite3_column_int(st, 2);
		t->exit_code = sqlite3_column_int(st, 3);
		t->env_held = sqlite3_column_int(st, 5) != 0;
		if (msg)
			agent_task_text_set(t, &t->message, (const char *)msg);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return CS_ESTORAGE;
	/* rows of an older agent hold env values: written again without */
	for (size_t i = 0; i < a->task_count; i++) {
		struct agent_task *t = a->tasks[i];
		const Cs__Task *task = t->assigned;
		if (!task || !task->spec || !task->spec->container ||
		    !task->spec->container->n_env)
			continue;
		t->row_whole = false; /* the row goes, the assignment with it */
		if (agent_db_save(a, t))
			return CS_ESTORAGE;
	}
	return 0;
}

struct agent_list_ctx {
	struct env_ctl_list_req req;
	struct agent *a;
};

/* A container of the executor's list that no known task owns: an orphan
 * entry, stopped and removed once the dispatcher's first whole full set
 * does not name it (after a restart the agent may be assigned it again),
 * or adopted if it does. Returns 0 or CS_ENOMEM. */
static int agent_adopt_orphan(struct agent *a, const struct env_ctl_found *f,
			      struct agent_task ***fresh, size_t *n)
{
	struct agent_task *t;
	char text[48];
	uint64_t id;
	char *end;

	/* our containers' task ids are 16 hex digits; another's are left alone */
	if (strlen(f->task_id) != 16)
		return 0;
	id = strtoull(f->task_id, &end, 16);
	if (*end || id == 0)
		return 0;
	t = agent_task_new(a, id);
	if (!t)
		return CS_ENOMEM;
	if (strcmp(t->id_text, f->task_id) != 0) {
		agent_task_free(t); /* upper case, or not ours */
		return 0;
	}
	t->orphan = true;
	if (strlen(f->service_id) < sizeof t->service_text)
		memcpy(t->service_text, f->service_id, strlen(f->service_id) + 1);
	switch (f->state) {
	case ENV_CTL_RUNNING: t->state = CS__TASK_STATE__TASK_STATE_RUNNING; break;
	case ENV_CTL_EXITED:
		t->exit_code = f->exit_code;
		t->state = f->exit_code == 0 ? CS__TASK_STATE__TASK_STATE_COMPLETE
					     : CS__TASK_STATE__TASK_STATE_FAILED;
		snprintf(text, sizeof text, "exited with code %" PRId32, f->exit_code);
		agent_task_text_set(t, &t->message, text);
		break;
	default: t->state = CS__TASK_STATE__TASK_STATE_ASSIGNED; break;
	}
	/* a full set already came whole and did not name it */
	if (a->synced && !a->full_open)
		t->removed = true;
	(*fresh)[(*n)++] = t;
	return 0;
}

/* Matches saved tasks with the containers the executor still has (found,
 * in task id order): a running one is adopted, an exited one reported; a
 * task past STARTING whose container is gone failed (its machine died);
 * one not yet started may start now — nothing of it ever ran. Containers
 * of no known task become orphans. O(tasks + found). */
static int agent_adopt(struct agent *a, const struct env_ctl_found *found, size_t count)
{
	struct agent_task **fresh = malloc((count ? count : 1) * sizeof *fresh);
	size_t j = 0, n = 0;

	if (!fresh)
		return CS_ENOMEM;
	for (size_t i = 0; i < a->task_count; i++) {
		struct agent_task *t = a->tasks[i];
		const struct env_ctl_found *f = NULL;
		/* both in task id order (16 lower-case hex digits sort as the
		 * numbers do) */
		while (j < count && strcmp(found[j].task_id, t->id_text) < 0) {
			if (agent_adopt_orphan(a, &found[j], &fresh, &n))
				goto nomem;
			j++;
		}
		if (j < count && strcmp(found[j].task_id, t->id_text) == 0)
			f = &found[j++];
		if (!t->loaded)
			continue; /* this process made whatever it has */
		t->loaded = false;
		if (agent_terminal(t->state))
			continue; /* its container, if any, is removed with it */
		if (f && f->state == ENV_CTL_RUNNING &&
		    t->state == CS__TASK_STATE__TASK_STATE_STARTING &&
		    agent_task_has_health(t)) {
			/* started before the restart, maybe not yet healthy:
			 * its health decides (the next step reads it) */
			t->started = true;
		} else if (f && f->state == ENV_CTL_RUNNING) {
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_RUNNING, "adopted");
		} else if (f && f->state == ENV_CTL_EXITED) {
			t->exit_code = f->exit_code;
			agent_task_set(t,
				       f->exit_code == 0
					       ? CS__TASK_STATE__TASK_STATE_COMPLETE
					       : CS__TASK_STATE__TASK_STATE_FAILED,
				       "exited while the agent was down");
		} else if (f && f->state == ENV_CTL_CREATED &&
			   t->state == CS__TASK_STATE__TASK_STATE_STARTING) {
			/* being started when the daemon died: ask again
			 * (starting is idempotent: a start under way finishes,
			 * a running one answers at once), and its answer moves
			 * the task on; unwanted, it is stopped as any STARTING
			 * task. Found by a scenario probe: marked FAILED, the
			 * container started anyway and ran beside its
			 * replacement for good. */
			if (agent_task_open(t) == 0)
				agent_task_do(t, ENV_CTL_START);
		} else if (t->state >= CS__TASK_STATE__TASK_STATE_STARTING) {
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_FAILED,
				       "container gone while the agent was down");
		} else if (t->state > CS__TASK_STATE__TASK_STATE_ASSIGNED) {
			/* prepared, or being prepared, but never started: prepare
			 * again (creating is idempotent; a machine crash may have
			 * taken the created container, or the prepare was cut
			 * short). Found by explore: such a task stayed PREPARING
			 * for good. The store already has PREPARING: nothing is
			 * reported backwards. */
			t->state = CS__TASK_STATE__TASK_STATE_ACCEPTED;
		}
	}
	for (; j < count; j++)
		if (agent_adopt_orphan(a, &found[j], &fresh, &n))
			goto nomem;
	if (n)
		env_logf(a->env, ENV_LOG_INFO,
			 "msg=\"containers of no known task\" count=%zu", n);
	if (agent_tasks_merge(a, fresh, n))
		goto nomem;
	free(fresh);
	return 0;
nomem:
	for (size_t k = 0; k < n; k++)
		agent_task_free(fresh[k]);
	free(fresh);
	return CS_ENOMEM;
}

/* The executor's list came back: adopt, then step every task. A failed
 * list (dockerd not answering) is asked again after a backoff: until then
 * no task is stepped, since what really runs is unknown. */
static void agent_list_cb(struct env_ctl_list_req *req, int status)
{
	struct agent_list_ctx *ctx = req->data;
	struct agent *a = ctx->a;
	ms_t now = a->env->ops->now_ms(a->env);
	uint64_t *ids;
	size_t n;

	a->listing = NULL;
	if (a->dead) {
		free(ctx);
		return;
	}
	if (status == 0)
		status = agent_adopt(a, req->found, req->found_count);
	free(ctx);
	if (status) {
		a->list_backoff_ms = a->list_backoff_ms ? a->list_backoff_ms * 2
							: LIMIT_AGENT_RETRY_MS_MIN;
		if (a->list_backoff_ms > LIMIT_AGENT_RETRY_MS_MAX)
			a->list_backoff_ms = LIMIT_AGENT_RETRY_MS_MAX;
		a->list_retry_ms = now + a->list_backoff_ms;
		env_logf(a->env, ENV_LOG_WARN,
			 "msg=\"cannot list containers, no task moves until it can\""
			 " err=\"%s\" retry_ms=%" PRIu64,
			 cs_strerror(status), (uint64_t)a->list_backoff_ms);
		return;
	}
	a->adopted = true;
	n = a->task_count;
	ids = malloc((n ? n : 1) * sizeof *ids);
	if (!ids)
		return; /* stepped on their next event or retry */
	for (size_t i = 0; i < n; i++)
		ids[i] = a->tasks[i]->id;
	agent_step_ids(a, ids, n);
	free(ids);
}

/* Asks the executor for its containers (agent_list_cb). No executor at
 * all: nothing to adopt. */
static void agent_list(struct agent *a)
{
	struct agent_list_ctx *ctx = calloc(1, sizeof *ctx);
	int rv;

	if (!ctx)
		return; /* the next tick */
	ctx->a = a;
	ctx->req.data = ctx;
	rv = a->env->ops->ctl_list(a->env, &ctx->req, agent_list_cb);
	if (rv == 0) {
		a->listing = ctx;
		return;
	}
	free(ctx);
	if (rv == CS_ENOTSUP)
		a->adopted = true; /* no executor: nothing runs here */
	else
		a->list_retry_ms = a->env->ops->now_ms(a->env) + LIMIT_AGENT_RETRY_MS_MIN;
}

/* Whether the last failure on the agent's database was its content (a row
 * that does not decode; sqlite's SQLITE_CORRUPT or SQLITE_NOTADB; a schema
 * whose text a flipped bit changed: "no such column"), not the disk or the
 * machine failing it (I/O error, full, out of memory, cannot open, locked):
 * those stop the start as any failed storage does. */
static bool agent_db_corrupt(const struct agent *a, int rv)
{
	if (rv == CS_ECORRUPT)
		return true;
	if (rv != CS_ESTORAGE || !a->db)
		return false;
	switch (sqlite3_errcode(a->db) & 0xff) {
	case SQLITE_OK:
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_NOMEM:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_PERM:
	case SQLITE_AUTH: return false;
	default: return true;
	}
}

/* agent_db_reset starts the agent clean on a corrupt task database (issue
 * 19): what it loaded is dropped, the database is emptied in place
 * (sqlite's SQLITE_DBCONFIG_RESET_DATABASE, made for a damaged file) and
 * made again. The database is the agent's own record of what it was given
 * and what it saw; the managers hold the tasks and Docker the containers,
 * so nothing is lost: the executor's list comes back before anything moves,
 * every container of ours is an orphan adopted or removed by its labels
 * once the dispatcher's first full set names it or not (agent_adopt_orphan),
 * and a node with a certificate keeps its id from it. Returns 0, or
 * CS_ESTORAGE when the reset cannot be written (the disk fails: the start
 * fails as any failed durable write). */
static int agent_db_reset(struct agent *a)
{
	int on = 0;
	int rv;

	for (size_t i = 0; i < a->task_count; i++)
		agent_task_free(a->tasks[i]);
	a->task_count = 0;
	a->node_id = 0;
	free(a->removed);
	a->removed = NULL;
	a->removed_count = 0;
	a->removed_digest = 0;
	env_logf(a->env, ENV_LOG_ERROR,
		 "msg=\"the agent's task database is corrupt: starting clean (its"
		 " containers are adopted or removed by their labels)\" why=\"%s\"",
		 sqlite3_errmsg(a->db));
	if (sqlite3_db_config(a->db, SQLITE_DBCONFIG_RESET_DATABASE, 1, &on) != SQLITE_OK)
		return CS_ESTORAGE;
	rv = sqlite3_exec(a->db, "VACUUM", NULL, NULL, NULL);
	sqlite3_db_config(a->db, SQLITE_DBCONFIG_RESET_DATABASE, 0, &on);
	if (rv != SQLITE_OK)
		return CS_ESTORAGE;
	a->db_resets++;
	if ((rv = agent_db_init(a)) || (rv = agent_load(a)))
		return rv == CS_ENOMEM ? rv : CS_ESTORAGE;
	return 0;
}

int agent_start(struct env *env, const struct agent_cfg *cfg, struct agent **out)
{
	struct agent *a = calloc(1, sizeof *a);
	int rv;

	if (!a)
		return CS_ENOMEM;
	a->env = env;
	a->cfg = cfg;
	a->told_role = cfg->role;
	a->desired = cfg->role;
	a->heartbeat_ms = 5000;
	for (size_t i = 0; i < cfg->manager_count; i++)
		agent_add_manager(a, cfg->managers[i]);
	if ((rv = agent_db_init(a)) || (rv = agent_load(a))) {
		if (!agent_db_corrupt(a, rv) || (rv = agent_db_reset(a)))
			goto err;
	}
	/* A new node names itself, durably, before it first asks: a
	 * registration whose answer was lost, asked again, is the same node,
	 * not a second record of it. */
	while (a->node_id == 0)
		a->node_id = env->ops->random_u64(env);
	{
		char why[PKI_WHY_BYTES];
		if (nodecert_init(&a->nc, env, cfg->join_token, a->node_id, why)) {
			env_logf(env, ENV_LOG_ERROR, "msg=\"bad join token\" why=\"%s\"",
				 why);
			a->refused = true;
			if (cfg->on_refused)
				cfg->on_refused(cfg->hook_data, why);
		}
	}
	/* a node with a certificate is what it names */
	if (a->nc.id.node_id)
		a->node_id = a->nc.id.node_id;
	if ((rv = agent_db_node_id(a)))
		goto err;
	a->next_manager = (size_t)(env->ops->random_u64(env) %
				   (a->manager_count ? a->manager_count : 1));
	if (a->manager_count)
		agent_set_target(a, a->managers[a->next_manager++ % a->manager_count]);
	a->tick_ms = agent_tick_ms(a->heartbeat_ms);
	rv = env->ops->timer_start(env, 1, a->tick_ms, agent_tick, a, &a->tick_timer);
	if (rv)
		goto err;
	/* what really runs first: no task moves before the list is back */
	agent_list(a);
	*out = a;
	return 0;
err:
	for (size_t i = 0; i < a->task_count; i++)
		agent_task_free(a->tasks[i]);
	free(a->tasks);
	free(a->removed);
	free(a);
	return rv;
}

/* ---------------------------------------------------------------- logs
 * Issue 16: the leader's log broker asks for the lines of this node's
 * containers (LogRequest); they are read from the executor one task after
 * another (env logs_read) and sent back in one LogResponse. Nothing is
 * kept once it is sent. */

struct agent_logs {
	struct agent *a;
	struct agent_logs *next;
	char to[LIMIT_ADDR_BYTES_MAX];
	Cs__LogRequest *q; /* owned copy */
	size_t at;	   /* the task being read */
	size_t bytes;	   /* of data so far */
	char task_text[17];
	struct env_logs_req req;
	Cs__LogResponse resp;
	Cs__LogLine **lines;
	size_t line_count, line_cap;
	Cs__LogCursor *next_cur; /* one per task of q */
	Cs__LogCursor **next_ptrs;
	char error[320];
};

static void agent_logs_free(struct agent_logs *l)
{
	for (size_t i = 0; i < l->line_count; i++) {
		free(l->lines[i]->data.data);
		free(l->lines[i]);
	}
	free(l->lines);
	free(l->next_cur);
	free(l->next_ptrs);
	if (l->q)
		cs__log_request__free_unpacked(l->q, NULL);
	free(l);
}

/* Unlinks l from its agent and frees it. */
static void agent_logs_end(struct agent_logs *l)
{
	struct agent_logs **pp = &l->a->logs;
	while (*pp && *pp != l)
		pp = &(*pp)->next;
	assert(*pp == l);
	*pp = l->next;
	agent_logs_free(l);
}

/* Sends l's answer (status, with error when not 0) and ends l. */
static void agent_logs_answer(struct agent_logs *l, int status)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__LogResponse *r = &l->resp;

	cs__log_response__init(r);
	r->id = l->q->id;
	r->status = status;
	r->error = status ? l->error : (char *)"";
	r->lines = l->lines;
	r->n_lines = l->line_count;
	r->next = l->next_ptrs;
	r->n_next = l->q->n_tasks;
	wire.log_response = r;
	agent_send(l->a, l->to, &wire);
	agent_logs_end(l);
}

static void agent_logs_step(struct agent_logs *l);

static void agent_logs_read(struct env_logs_req *req, int status)
{
	struct agent_logs *l = req->data;
	Cs__LogCursor *cur = &l->next_cur[l->at];

	if (status) {
		snprintf(l->error, sizeof l->error, "task %s: %s", l->task_text,
			 req->message[0] ? req->message : cs_strerror(status));
		agent_logs_answer(l, status);
		return;
	}
	/* a first read of the last 0 lines (logs -f --tail 0): the newest
	 * line is read for its time only, where the next read starts */
	bool mark_only =
		!req->after_ns && !req->after_err_ns && req->tail_set && l->q->tail == 0;
	for (size_t i = 0; i < req->line_count; i++) {
		const struct env_log_line *el = &req->lines[i];
		Cs__LogLine *ln;
		if (mark_only) {
			if (el->time_ns > cur->after_ns)
				cur->after_ns = el->time_ns;
			continue;
		}
		ln = NULL;
		if (grow_array((void **)&l->lines, &l->line_cap, l->line_count + 1,
			       sizeof *l->lines) ||
		    !(ln = malloc(sizeof *ln)) ||
		    (cs__log_line__init(ln),
		     !(ln->data.data = malloc(el->len ? el->len : 1)))) {
			free(ln);
			snprintf(l->error, sizeof l->error, "out of memory");
			agent_logs_answer(l, CS_ENOMEM);
			return;
		}
		memcpy(ln->data.data, el->data, el->len);
		ln->data.len = el->len;
		ln->task_id = cur->task_id;
		ln->node_id = l->a->node_id;
		ln->time_ns = el->time_ns;
		ln->stream = el->stream;
		l->lines[l->line_count++] = ln;
		l->bytes += el->len;
		if (el->stream == 2 && el->time_ns > cur->after_err_ns)
			cur->after_err_ns = el->time_ns;
		if (el->stream != 2 && el->time_ns > cur->after_ns)
			cur->after_ns = el->time_ns;
	}
	/* a first read (a tail, or since a time): both streams go on from its
	 * newest line, so that the older lines of the stream it showed none
	 * of are not read next time */
	if (!req->after_ns && !req->after_err_ns) {
		uint64_t newest = cur->after_ns > cur->after_err_ns ? cur->after_ns
								    : cur->after_err_ns;
		cur->after_ns = cur->after_err_ns = newest;
	}
	l->at++;
	agent_logs_step(l);
}

/* Reads the next task's lines, or answers once all are read (or the
 * bytes asked are there). */
static void agent_logs_step(struct agent_logs *l)
{
	struct env *env = l->a->env;
	const Cs__LogCursor *c;
	int rv;

	if (l->at >= l->q->n_tasks || l->bytes >= l->q->max_bytes) {
		agent_logs_answer(l, 0);
		return;
	}
	c = l->q->tasks[l->at];
	snprintf(l->task_text, sizeof l->task_text, "%016" PRIx64, c->task_id);
	memset(&l->req, 0, sizeof l->req);
	l->req.data = l;
	l->req.task_id = l->task_text;
	l->req.after_ns = c->after_ns;
	l->req.after_err_ns = c->after_err_ns;
	l->req.since_ms = l->q->since_ms;
	l->req.tail = l->q->tail ? l->q->tail : 1; /* 0: see agent_logs_read */
	l->req.tail_set = l->q->tail_set;
	l->req.max_bytes = l->q->max_bytes - l->bytes;
	l->req.until_ms = l->q->until_ms;
	rv = env->ops->logs_read(env, &l->req, agent_logs_read);
	if (rv) {
		snprintf(l->error, sizeof l->error, "task %s: %s", l->task_text,
			 cs_strerror(rv));
		agent_logs_answer(l, rv);
	}
}

bool agent_logs_handle(struct agent *a, const char *from, const struct env_identity *who,
		       const Cs__Wire *wire)
{
	const Cs__LogRequest *q = wire->log_request;
	struct agent_logs *l;
	size_t len;
	uint8_t *buf;

	if (!q)
		return false;
	if (a->dying || a->dead)
		return true;
	/* only a manager of this node's cluster asks (the leader's broker) */
	if (who->role != ENV_ROLE_MANAGER || !nodecert_valid(&a->nc) ||
	    who->cluster_id != a->nc.id.cluster_id ||
	    strlen(from) >= LIMIT_ADDR_BYTES_MAX) {
		env_logf(a->env, ENV_LOG_WARN,
			 "msg=\"refused\" what=log_request from=%s node=%016" PRIx64
			 " why=\"a log request from a sender that is not a manager of "
			 "this cluster\"",
			 from, who->node_id);
		return true;
	}
	if (!(l = calloc(1, sizeof *l)))
		return true;
	l->a = a;
	memcpy(l->to, from, strlen(from) + 1);
	/* an owned copy: the request is borrowed for this call only */
	len = cs__log_request__get_packed_size(q);
	if ((buf = malloc(len ? len : 1))) {
		cs__log_request__pack(q, buf);
		l->q = cs__log_request__unpack(NULL, len, buf);
		free(buf);
	}
	l->next = a->logs;
	a->logs = l;
	if (!l->q || !(l->next_cur = calloc(q->n_tasks + 1, sizeof *l->next_cur)) ||
	    !(l->next_ptrs = calloc(q->n_tasks + 1, sizeof *l->next_ptrs))) {
		if (!l->q) { /* nothing to answer with */
			agent_logs_end(l);
			return true;
		}
		snprintf(l->error, sizeof l->error, "out of memory");
		agent_logs_answer(l, CS_ENOMEM);
		return true;
	}
	for (size_t i = 0; i < q->n_tasks; i++) {
		cs__log_cursor__init(&l->next_cur[i]);
		l->next_cur[i].task_id = q->tasks[i]->task_id;
		l->next_cur[i].after_ns = q->tasks[i]->after_ns;
		l->next_cur[i].after_err_ns = q->tasks[i]->after_err_ns;
		l->next_ptrs[i] = &l->next_cur[i];
	}
	if (l->q->max_bytes == 0 || l->q->max_bytes > LIMIT_LOG_BYTES_MAX)
		l->q->max_bytes = LIMIT_LOG_BYTES_MAX;
	if (!a->env->ops->logs_read) {
		snprintf(l->error, sizeof l->error, "this node's runtime reads no logs");
		agent_logs_answer(l, CS_ENOTSUP);
		return true;
	}
	agent_logs_step(l);
	return true;
}

void agent_stop(struct agent *a)
{
	a->dying = true;
	/* log reads in flight die with the env */
	while (a->logs) {
		struct agent_logs *l = a->logs;
		a->logs = l->next;
		agent_logs_free(l);
	}
	/* controllers belong to the env and die with the process */
	for (size_t i = 0; i < a->task_count; i++)
		agent_task_free(a->tasks[i]);
	for (size_t i = 0; i < a->closing_count; i++)
		agent_task_free(a->closing[i]);
	free(a->closing);
	free(a->deferred);
	free(a->dirty);
	free(a->listing);
	free(a->removed);
	free(a->tasks);
	agent_net_free_all(a);
	seal_wipe(a->net_keys, sizeof a->net_keys); /* issue 17 */
	sqlite3_finalize(a->save_st);
	sqlite3_finalize(a->forget_st);
	sqlite3_finalize(a->state_st);
	sqlite3_finalize(a->begin_st);
	sqlite3_finalize(a->commit_st);
	free(a);
}

uint64_t agent_saves(const struct agent *a)
{
	return a->saves;
}

uint64_t agent_db_resets(const struct agent *a)
{
	return a->db_resets;
}

uint64_t agent_node_id(const struct agent *a)
{
	return a->node_id;
}

void agent_peer(struct agent *a, const char *addr, bool up)
{
	ms_t now;

	if (!a || up || a->dead || a->refused || a->link == AGENT_DISCONNECTED ||
	    strcmp(addr, a->target) != 0)
		return;
	now = a->env->ops->now_ms(a->env);
	if (a->link == AGENT_CONNECTING) {
		/* as a connect left unanswered (agent_tick), without waiting
		 * for the tick to say so */
		memcpy(a->unanswered, a->target, sizeof a->unanswered);
		a->unanswered_ms = now;
		if (a->gone[0] && strcmp(a->gone, a->target) == 0)
			a->gone_refused = true; /* its process is gone */
		nodecert_reload(&a->nc);
		agent_disconnect(a, true);
		return;
	}
	/* in session: the same manager again at once (a connection can
	 * close with its manager alive); a dead one refuses the connect,
	 * which is told here in turn (above) */
	memcpy(a->gone, a->target, sizeof a->gone);
	a->gone_ms = now;
	a->gone_refused = false;
	env_logf(a->env, ENV_LOG_WARN,
		 "msg=\"session lost\" manager=%s why=\"connection closed\"", a->target);
	agent_disconnect(a, false);
	a->redirects = 0;
	agent_connect(a);
}

bool agent_connected(const struct agent *a)
{
	return a->link == AGENT_READY;
}
size_t agent_task_count(const struct agent *a)
{
	return a->task_count;
}

/* ---------------------------------------------------------------- metrics */

void agent_metrics(const struct agent *a, struct metrics_buf *out)
{
	static const char *const ops[] = {"prepare",   "start",	 "wait",   "shutdown",
					  "terminate", "remove", "inspect"};
	uint64_t by_state[CS__TASK_STATE__TASK_STATE_ORPHANED + 1] = {0};
	char label[64];

	_Static_assert(sizeof ops / sizeof *ops == ENV_CTL_INSPECT + 1, "a name per op");
	for (size_t i = 0; i < a->task_count; i++)
		if ((size_t)a->tasks[i]->state < sizeof by_state / sizeof *by_state)
			by_state[a->tasks[i]->state]++;
	metrics_family(out, "cswarm_agent_tasks", METRICS_GAUGE,
		       "Tasks this agent holds, by the state it observed.");
	for (size_t i = 0; i < sizeof by_state / sizeof *by_state; i++) {
		char state[32];
		metrics_enum_name(&cs__task_state__descriptor, (int)i, "TASK_STATE_",
				  state, sizeof state);
		metrics_sample(out, "cswarm_agent_tasks",
			       metrics_label(label, sizeof label, "state", state),
			       (double)by_state[i]);
	}
	metrics_family(
		out, "cswarm_agent_executor_seconds", METRICS_HISTOGRAM,
		"An executor call (Docker's, on a real node): asked to answered, by "
		"operation (wait excluded: it lasts as the container runs).");
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (i != ENV_CTL_WAIT)
			metrics_hist_write(
				out, "cswarm_agent_executor_seconds",
				metrics_label(label, sizeof label, "op", ops[i]),
				&a->exec_ms[i]);
}
