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
#include "core/limits.h"

enum {
	AGENT_TICK_MS_MAX = 1000,   /* heartbeat, resend and retry clock */
	AGENT_BACKOFF_MS_MIN = 250, /* reconnect backoff, doubled to the max */
	AGENT_BACKOFF_MS_MAX = 5000,
	AGENT_HB_RETRY_MS = 1000, /* an unanswered heartbeat is sent again */
	AGENT_SESSION_GRACE = 3,  /* periods without an answer: session lost */
	AGENT_STOP_TIMEOUT_MS = 10000,
	AGENT_MANAGERS_MAX = 16,
};

enum agent_link { AGENT_DISCONNECTED, AGENT_CONNECTING, AGENT_READY };

struct agent_task {
	struct agent *a;
	uint64_t id;
	Cs__Task *assigned;  /* the last assignment (owned), NULL once removed */
	Cs__TaskState state; /* what this agent observed */
	Cs__TaskState acked; /* the last state the dispatcher acknowledged */
	int32_t exit_code;
	char message[256];
	struct env_ctl *ctl;
	struct env_ctl_req op;	 /* one operation in flight */
	struct env_ctl_req wait; /* ENV_CTL_WAIT, alongside */
	bool op_busy, waiting, closing;
	bool stopping; /* a SHUTDOWN is in flight: SHUTDOWN once it is done */
	bool removed;  /* unassigned: stop, remove, forget */
	char id_text[17], service_text[17];
};

struct agent {
	struct env *env;
	const struct agent_cfg *cfg;
	struct sqlite3 *db;
	uint64_t node_id, session_id, seq;
	enum agent_link link;
	char managers[AGENT_MANAGERS_MAX][LIMIT_ADDR_BYTES_MAX];
	size_t manager_count, next_manager;
	char target[LIMIT_ADDR_BYTES_MAX];
	ms_t heartbeat_ms, tick_ms;
	ms_t last_answer_ms, last_hb_ms, next_connect_ms, backoff_ms;
	bool hb_pending;
	env_timer_id tick_timer;
	struct agent_task **tasks; /* sorted by id */
	size_t task_count, task_cap;
	struct agent_task **closing; /* forgotten, controller closing */
	size_t closing_count, closing_cap;
	struct agent_list_ctx *listing; /* the adoption listing in flight */
	bool dying;
	bool refused;		/* the cluster refused this node: stop */
	Cs__NodeRole told_role; /* the last desired role passed to on_role */
};

/* ---------------------------------------------------------------- storage */

static int agent_db_init(struct agent *a)
{
	sqlite3_stmt *st;
	int rc;

	if (a->env->ops->storage_open(a->env, "agent", &a->db))
		return CS_ESTORAGE;
	if (sqlite3_exec(a->db,
			 "CREATE TABLE IF NOT EXISTS agent_meta(key TEXT PRIMARY KEY,"
			 " value INTEGER NOT NULL);"
			 "CREATE TABLE IF NOT EXISTS agent_tasks(id INTEGER PRIMARY KEY,"
			 " task BLOB NOT NULL, state INTEGER NOT NULL, exit_code INTEGER,"
			 " message TEXT);",
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
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : CS_ESTORAGE;
}

static void agent_db_node_id(struct agent *a)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db,
			       "INSERT OR REPLACE INTO agent_meta VALUES ('node_id', ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)a->node_id);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

/* Writes t's assignment and observed state; durable before it returns
 * (synchronous=FULL is the env's). Returns 0 or CS_ESTORAGE. */
static int agent_db_save(struct agent *a, const struct agent_task *t)
{
	sqlite3_stmt *st;
	size_t len;
	uint8_t *buf;
	int rc;

	if (!t->assigned)
		return 0;
	len = cs__task__get_packed_size(t->assigned);
	buf = malloc(len ? len : 1);
	if (!buf)
		return CS_ENOMEM;
	cs__task__pack(t->assigned, buf);
	rc = sqlite3_prepare_v2(
		a->db, "INSERT OR REPLACE INTO agent_tasks VALUES (?, ?, ?, ?, ?)", -1,
		&st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)t->id);
		sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)t->state);
		sqlite3_bind_int(st, 4, t->exit_code);
		sqlite3_bind_text(st, 5, t->message, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(st);
	}
	free(buf);
	return rc == SQLITE_OK ? 0 : CS_ESTORAGE;
}

static void agent_db_forget(struct agent *a, uint64_t id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db, "DELETE FROM agent_tasks WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_step(st);
	sqlite3_finalize(st);
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

static struct agent_task *agent_task_add(struct agent *a, uint64_t id)
{
	size_t i = agent_task_index(a, id);
	struct agent_task *t;

	if (a->task_count == a->task_cap) {
		size_t cap = a->task_cap ? a->task_cap * 2 : 8;
		struct agent_task **p = realloc(a->tasks, cap * sizeof *p);
		if (!p)
			return NULL;
		a->tasks = p;
		a->task_cap = cap;
	}
	t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->a = a;
	t->id = id;
	snprintf(t->id_text, sizeof t->id_text, "%016" PRIx64, id);
	memmove(&a->tasks[i + 1], &a->tasks[i], (a->task_count - i) * sizeof *a->tasks);
	a->tasks[i] = t;
	a->task_count++;
	return t;
}

static void agent_task_free(struct agent_task *t)
{
	if (t->assigned)
		cs__task__free_unpacked(t->assigned, NULL);
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

/* Drops t from the table and storage; its memory goes once its controller
 * is closed. */
static void agent_task_forget(struct agent *a, struct agent_task *t)
{
	size_t i = agent_task_index(a, t->id);
	assert(i < a->task_count && a->tasks[i] == t);
	memmove(&a->tasks[i], &a->tasks[i + 1],
		(a->task_count - i - 1) * sizeof *a->tasks);
	a->task_count--;
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
}

/* ---------------------------------------------------------------- task managers */

static void agent_task_step(struct agent_task *t);
static void agent_report_soon(struct agent *a);

static bool agent_terminal(Cs__TaskState s)
{
	return s >= CS__TASK_STATE__TASK_STATE_COMPLETE;
}

/* Moves t to state (forward only), saves it, and reports it. */
static void agent_task_set(struct agent_task *t, Cs__TaskState state, const char *message)
{
	if (state <= t->state && !(state == t->state && message))
		return;
	t->state = state;
	if (message)
		snprintf(t->message, sizeof t->message, "%s", message);
	agent_db_save(t->a, t);
	agent_report_soon(t->a);
}

static bool agent_task_wants_run(const struct agent_task *t)
{
	return !t->removed && t->assigned &&
	       t->assigned->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING;
}

static void agent_wait_done(struct env_ctl_req *req, int status)
{
	struct agent_task *t = req->data;
	t->waiting = false;
	if (t->closing)
		return;
	if (status == 0 && req->state == ENV_CTL_EXITED) {
		t->exit_code = req->exit_code;
		if (t->state < CS__TASK_STATE__TASK_STATE_COMPLETE) {
			bool ok = req->exit_code == 0 && agent_task_wants_run(t);
			char msg[64];
			snprintf(msg, sizeof msg, "exited with code %" PRId32,
				 req->exit_code);
			agent_task_set(t,
				       !agent_task_wants_run(t)
					       ? CS__TASK_STATE__TASK_STATE_SHUTDOWN
				       : ok ? CS__TASK_STATE__TASK_STATE_COMPLETE
					    : CS__TASK_STATE__TASK_STATE_FAILED,
				       msg);
		}
	}
	agent_task_step(t);
}

static void agent_start_wait(struct agent_task *t)
{
	if (t->waiting || !t->ctl)
		return;
	t->wait.data = t;
	if (t->a->env->ops->ctl_do(t->ctl, ENV_CTL_WAIT, &t->wait, agent_wait_done) == 0)
		t->waiting = true;
}

static void agent_op_done(struct env_ctl_req *req, int status)
{
	struct agent_task *t = req->data;
	struct agent *a = t->a;
	t->op_busy = false;
	if (t->closing)
		return;
	if (t->stopping) {
		t->stopping = false;
		agent_task_set(t, CS__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown");
		agent_task_step(t);
		return;
	}
	switch (t->state) {
	case CS__TASK_STATE__TASK_STATE_PREPARING:
		if (status)
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_REJECTED,
				       req->message[0] ? req->message
						       : cs_strerror(status));
		else
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_READY, "prepared");
		break;
	case CS__TASK_STATE__TASK_STATE_STARTING:
		if (status) {
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_FAILED,
				       req->message[0] ? req->message
						       : cs_strerror(status));
		} else {
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_RUNNING, "started");
			agent_start_wait(t);
		}
		break;
	default: break;
	}
	(void)a;
	agent_task_step(t);
}

/* Opens the controller of t if it has none. Returns 0 or an error. */
static int agent_task_open(struct agent_task *t)
{
	struct env_container_spec spec;
	const Cs__Task *task = t->assigned;
	const Cs__TaskSpec *ts = task ? task->spec : NULL;
	const Cs__ContainerSpec *cs = ts ? ts->container : NULL;
	const char **cmd = NULL;
	int rv;

	if (t->ctl)
		return 0;
	memset(&spec, 0, sizeof spec);
	snprintf(t->service_text, sizeof t->service_text, "%016" PRIx64,
		 task ? task->service_id : 0);
	spec.task_id = t->id_text;
	spec.service_id = t->service_text;
	spec.service_name = task && task->service_name ? task->service_name : "";
	spec.slot = task ? task->slot : 0;
	spec.image = cs && cs->image && *cs->image ? cs->image : "cswarm/default";
	if (cs && cs->n_command) {
		cmd = calloc(cs->n_command + 1, sizeof *cmd);
		if (!cmd)
			return CS_ENOMEM;
		for (size_t i = 0; i < cs->n_command; i++)
			cmd[i] = cs->command[i];
		spec.command = cmd;
	}
	if (ts && ts->limits) {
		spec.memory_limit_bytes = ts->limits->memory_bytes;
		spec.millicpu_limit = ts->limits->millicpus;
	}
	spec.stop_timeout_ms = AGENT_STOP_TIMEOUT_MS;
	rv = t->a->env->ops->ctl_open(t->a->env, &spec, &t->ctl);
	free(cmd);
	return rv;
}

static void agent_task_do(struct agent_task *t, enum env_ctl_op op)
{
	int rv;
	t->op.data = t;
	t->op.message[0] = '\0';
	rv = t->a->env->ops->ctl_do(t->ctl, op, &t->op, agent_op_done);
	if (rv == 0)
		t->op_busy = true;
}

/* The task manager: one step towards what the assignment wants. */
static void agent_task_step(struct agent_task *t)
{
	struct agent *a = t->a;

	if (t->op_busy || t->closing || a->dying)
		return;
	if (agent_task_wants_run(t)) {
		switch (t->state) {
		case CS__TASK_STATE__TASK_STATE_ASSIGNED:
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_ACCEPTED,
				       "accepted");
			/* fall through */
		case CS__TASK_STATE__TASK_STATE_ACCEPTED:
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
			 * starts it twice */
			agent_task_set(t, CS__TASK_STATE__TASK_STATE_STARTING,
				       "starting");
			agent_task_do(t, ENV_CTL_START);
			return;
		default: return;
		}
	}
	/* stop it: shut down what may run, then remove when unassigned */
	if (t->state == CS__TASK_STATE__TASK_STATE_RUNNING ||
	    t->state == CS__TASK_STATE__TASK_STATE_STARTING) {
		if (t->ctl) {
			/* SHUTDOWN is reported once the container stopped, so
			 * that no replacement starts beside it */
			agent_task_do(t, ENV_CTL_SHUTDOWN);
			t->stopping = t->op_busy;
			if (t->op_busy)
				return;
		}
	}
	if (!agent_terminal(t->state))
		agent_task_set(t, CS__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown");
	if (t->removed) {
		if (t->ctl && !t->op_busy &&
		    t->state != CS__TASK_STATE__TASK_STATE_REMOVE) {
			t->state = CS__TASK_STATE__TASK_STATE_REMOVE;
			agent_task_do(t, ENV_CTL_REMOVE);
			if (t->op_busy)
				return;
		}
		if (!t->op_busy)
			agent_task_forget(a, t);
	}
}

/* ---------------------------------------------------------------- reporting */

static void agent_send(struct agent *a, const char *to, const Cs__Wire *wire)
{
	size_t len = cs__wire__get_packed_size(wire);
	uint8_t *buf;
	if (a->dying || !to[0] || len > LIMIT_FRAME_BYTES_MAX)
		return;
	buf = malloc(len ? len : 1);
	if (!buf)
		return;
	cs__wire__pack(wire, buf);
	a->env->ops->send(a->env, to, buf, len);
	free(buf);
}

/* Sends every state not yet acknowledged, in task id order. */
static void agent_report(struct agent *a)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__StatusUpdate u = CS__STATUS_UPDATE__INIT;
	Cs__Task *objs, **ptrs;
	Cs__TaskStatus *st;
	size_t n = 0;

	if (a->link != AGENT_READY || a->task_count == 0)
		return;
	objs = calloc(a->task_count, sizeof *objs);
	ptrs = calloc(a->task_count, sizeof *ptrs);
	st = calloc(a->task_count, sizeof *st);
	if (objs && ptrs && st) {
		for (size_t i = 0; i < a->task_count; i++) {
			struct agent_task *t = a->tasks[i];
			if (t->state <= t->acked ||
			    t->state < CS__TASK_STATE__TASK_STATE_ACCEPTED)
				continue;
			cs__task__init(&objs[n]);
			cs__task_status__init(&st[n]);
			objs[n].id = t->id;
			st[n].state = t->state;
			st[n].exit_code = t->exit_code;
			st[n].message = t->message;
			st[n].timestamp_ms = a->env->ops->now_ms(a->env);
			objs[n].status = &st[n];
			ptrs[n] = &objs[n];
			n++;
		}
		if (n) {
			u.node_id = a->node_id;
			u.session_id = a->session_id;
			u.n_tasks = n;
			u.tasks = ptrs;
			wire.status_update = &u;
			agent_send(a, a->target, &wire);
		}
	}
	free(objs);
	free(ptrs);
	free(st);
}

static void agent_report_soon(struct agent *a)
{
	/* reports ride on the next tick; a burst of changes is one frame */
	(void)a;
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

/* Session lost (or never had): try again after a backoff with jitter, on
 * the next manager of the list. Running tasks keep running. */
static void agent_disconnect(struct agent *a, bool rotate)
{
	ms_t now = a->env->ops->now_ms(a->env);
	a->link = AGENT_DISCONNECTED;
	a->session_id = 0;
	if (rotate && a->manager_count) {
		agent_set_target(a, a->managers[a->next_manager % a->manager_count]);
		a->next_manager++;
	}
	a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : AGENT_BACKOFF_MS_MIN;
	if (a->backoff_ms > AGENT_BACKOFF_MS_MAX)
		a->backoff_ms = AGENT_BACKOFF_MS_MAX;
	/* jitter: between half and all of the backoff */
	a->next_connect_ms = now + a->backoff_ms / 2 +
			     a->env->ops->random_u64(a->env) % (a->backoff_ms / 2 + 1);
}

static void agent_connect(struct agent *a)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__SessionRequest q = CS__SESSION_REQUEST__INIT;
	Cs__Resources res = CS__RESOURCES__INIT;

	q.node_id = a->node_id;
	q.hostname = (char *)a->cfg->hostname;
	q.role = a->cfg->role;
	if (a->cfg->join_token)
		q.token = (char *)a->cfg->join_token;
	if (a->cfg->raft_id) {
		q.raft_id = a->cfg->raft_id;
		q.manager_addr = (char *)a->env->ops->self_addr(a->env);
	}
	res.millicpus = a->cfg->millicpus;
	res.memory_bytes = a->cfg->memory_bytes;
	q.resources = &res;
	wire.session = &q;
	a->link = AGENT_CONNECTING;
	a->last_answer_ms = a->env->ops->now_ms(a->env);
	agent_send(a, a->target, &wire);
}

static void agent_resync(struct agent *a)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__SessionRequest q = CS__SESSION_REQUEST__INIT;
	q.node_id = a->node_id;
	q.session_id = a->session_id;
	q.want_seq = a->seq + 1;
	wire.session = &q;
	agent_send(a, a->target, &wire);
}

static void agent_tick(struct env *env, env_timer_id id, void *data)
{
	struct agent *a = data;
	ms_t now = env->ops->now_ms(env);

	if (a->refused)
		return;
	switch (a->link) {
	case AGENT_DISCONNECTED:
		if (now >= a->next_connect_ms)
			agent_connect(a);
		break;
	case AGENT_CONNECTING:
		/* no answer in a tick or two: the next manager */
		if (now - a->last_answer_ms >= 2 * a->tick_ms)
			agent_disconnect(a, true);
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
			hb.node_id = a->node_id;
			hb.session_id = a->session_id;
			wire.heartbeat = &hb;
			agent_send(a, a->target, &wire);
			a->last_hb_ms = now;
			a->hb_pending = true;
		}
		agent_report(a);
		break;
	}
}

/* ---------------------------------------------------------------- frames */

/* Replaces t's assignment with a copy of task. */
static int agent_assign(struct agent_task *t, const Cs__Task *task)
{
	size_t len = cs__task__get_packed_size(task);
	uint8_t *buf = malloc(len ? len : 1);
	Cs__Task *copy;
	if (!buf)
		return CS_ENOMEM;
	cs__task__pack(task, buf);
	copy = cs__task__unpack(NULL, len, buf);
	free(buf);
	if (!copy)
		return CS_ENOMEM;
	if (t->assigned)
		cs__task__free_unpacked(t->assigned, NULL);
	t->assigned = copy;
	return 0;
}

static void agent_apply_steps(struct agent *a, const Cs__Assignments *as);

/* Applies as in one transaction: a full set of a thousand tasks is one
 * sync, not a thousand. Nothing leaves the agent before it commits (the
 * executor's and the transport's work starts when the loop runs again), so
 * a crash finds the tasks as before the set or as after it. */
static void agent_apply(struct agent *a, const Cs__Assignments *as)
{
	bool tx = a->db && sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;

	agent_apply_steps(a, as);
	if (tx && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		env_logf(a->env, ENV_LOG_ERROR,
			 "msg=\"cannot save assignments\" err=\"%s\"",
			 sqlite3_errmsg(a->db));
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	}
}

static void agent_apply_steps(struct agent *a, const Cs__Assignments *as)
{
	/* a full set: what it does not name is unassigned */
	if (as->full) {
		for (size_t i = 0; i < a->task_count; i++) {
			bool named = false;
			for (size_t j = 0; j < as->n_tasks && !named; j++)
				named = as->tasks[j]->id == a->tasks[i]->id;
			if (!named)
				a->tasks[i]->removed = true;
		}
	}
	for (size_t j = 0; j < as->n_tasks; j++) {
		const Cs__Task *task = as->tasks[j];
		struct agent_task *t = agent_task_get(a, task->id);
		bool fresh = false;
		if (!t) {
			t = agent_task_add(a, task->id);
			if (!t)
				continue;
			t->state = CS__TASK_STATE__TASK_STATE_ASSIGNED;
			fresh = true;
		}
		if (agent_assign(t, task))
			continue;
		t->removed = false;
		if (fresh)
			agent_db_save(a, t);
	}
	for (size_t j = 0; j < as->n_removed; j++) {
		struct agent_task *t = agent_task_get(a, as->removed[j]);
		if (t)
			t->removed = true;
	}
	/* steps may forget tasks: walk a snapshot of the ids */
	{
		size_t n = a->task_count;
		uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
		if (!ids)
			return;
		for (size_t i = 0; i < n; i++)
			ids[i] = a->tasks[i]->id;
		for (size_t i = 0; i < n; i++) {
			struct agent_task *t = agent_task_get(a, ids[i]);
			if (t)
				agent_task_step(t);
		}
		free(ids);
	}
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

/* The cluster wants this node to be another role: tell the host, once. */
static void agent_check_role(struct agent *a, Cs__NodeRole desired)
{
	if (desired == a->cfg->role || desired == a->told_role)
		return;
	a->told_role = desired;
	env_logf(a->env, ENV_LOG_INFO, "msg=\"role change\" from=%s to=%s",
		 a->cfg->role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker",
		 desired == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
	if (a->cfg->on_role)
		a->cfg->on_role(a->cfg->hook_data, desired);
}

bool agent_handle(struct agent *a, const char *from, const Cs__Wire *wire)
{
	ms_t now = a->env->ops->now_ms(a->env);

	if (wire->session_response) {
		const Cs__SessionResponse *r = wire->session_response;
		if (a->link != AGENT_CONNECTING)
			return true;
		if (r->status == CS_ENOTLEADER) {
			/* follow the redirect at once, when there is one */
			agent_add_manager(a, r->leader);
			if (r->leader && *r->leader) {
				agent_set_target(a, r->leader);
				a->link = AGENT_DISCONNECTED;
				a->next_connect_ms = now;
			} else {
				agent_disconnect(a, true);
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
		if (a->node_id != r->node_id) {
			a->node_id = r->node_id;
			agent_db_node_id(a);
		}
		a->session_id = r->session_id;
		a->heartbeat_ms = r->heartbeat_ms ? r->heartbeat_ms : 5000;
		a->link = AGENT_READY;
		a->last_answer_ms = a->last_hb_ms = now;
		a->hb_pending = false;
		a->backoff_ms = 0;
		a->seq = 0;
		agent_set_target(a, from);
		for (size_t i = 0; i < r->n_managers; i++)
			agent_add_manager(a, r->managers[i]);
		agent_check_role(a, r->desired_role);
		/* what was acknowledged under another session may be lost:
		 * report everything again */
		for (size_t i = 0; i < a->task_count; i++)
			a->tasks[i]->acked = 0;
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
				a->heartbeat_ms = r->heartbeat_ms;
			for (size_t i = 0; i < r->n_managers; i++)
				agent_add_manager(a, r->managers[i]);
			agent_check_role(a, r->desired_role);
			/* the last change was lost on the way: ask for all */
			if (r->seq > a->seq)
				agent_resync(a);
		}
		return true;
	}
	if (wire->assignments) {
		const Cs__Assignments *as = wire->assignments;
		if (a->link != AGENT_READY || as->session_id != a->session_id)
			return true;
		a->last_answer_ms = now;
		if (!as->full && as->seq != a->seq + 1) {
			agent_resync(a); /* a gap: lost changes */
			return true;
		}
		if (as->full || as->seq == a->seq + 1)
			a->seq = as->seq;
		agent_apply(a, as);
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

struct agent_list_ctx;
static void agent_adopt_cb(struct env_ctl_list_req *req, int status);

/* Loads the tasks saved before a restart; their containers are matched in
 * agent_adopt_cb. Returns 0 or an error. */
static int agent_load(struct agent *a)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(
		    a->db,
		    "SELECT id, task, state, exit_code, message FROM agent_tasks"
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
		t->state = (Cs__TaskState)sqlite3_column_int(st, 2);
		t->exit_code = sqlite3_column_int(st, 3);
		if (msg)
			snprintf(t->message, sizeof t->message, "%s", msg);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : CS_ESTORAGE;
}

struct agent_list_ctx {
	struct env_ctl_list_req req;
	struct agent *a;
};

/* Matches saved tasks with the containers the executor still has: a running
 * one is adopted, an exited one reported; a task past STARTING whose
 * container is gone failed (its machine died); one not yet started may
 * start now — nothing of it ever ran. */
static void agent_adopt_cb(struct env_ctl_list_req *req, int status)
{
	struct agent_list_ctx *ctx = req->data;
	struct agent *a = ctx->a;

	a->listing = NULL;
	for (size_t i = 0; i < a->task_count; i++) {
		struct agent_task *t = a->tasks[i];
		const struct env_ctl_found *f = NULL;
		for (size_t j = 0; status == 0 && j < req->found_count && !f; j++)
			if (strcmp(req->found[j].task_id, t->id_text) == 0)
				f = &req->found[j];
		if (agent_terminal(t->state))
			continue;
		if (f && f->state == ENV_CTL_RUNNING) {
			if (agent_task_open(t) == 0) {
				agent_task_set(t, CS__TASK_STATE__TASK_STATE_RUNNING,
					       "adopted");
				agent_start_wait(t);
			}
		} else if (f && f->state == ENV_CTL_EXITED) {
			t->exit_code = f->exit_code;
			agent_task_set(t,
				       f->exit_code == 0
					       ? CS__TASK_STATE__TASK_STATE_COMPLETE
					       : CS__TASK_STATE__TASK_STATE_FAILED,
				       "exited while the agent was down");
			agent_task_open(t);
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
	free(ctx);
	for (size_t i = 0; i < a->task_count; i++)
		agent_task_step(a->tasks[i]);
}

int agent_start(struct env *env, const struct agent_cfg *cfg, struct agent **out)
{
	struct agent *a = calloc(1, sizeof *a);
	struct agent_list_ctx *ctx;
	int rv;

	if (!a)
		return CS_ENOMEM;
	a->env = env;
	a->cfg = cfg;
	a->told_role = cfg->role;
	a->heartbeat_ms = 5000;
	for (size_t i = 0; i < cfg->manager_count; i++)
		agent_add_manager(a, cfg->managers[i]);
	if ((rv = agent_db_init(a)) || (rv = agent_load(a)))
		goto err;
	/* A new node names itself, durably, before it first asks: a
	 * registration whose answer was lost, asked again, is the same node,
	 * not a second record of it. */
	while (a->node_id == 0)
		a->node_id = env->ops->random_u64(env);
	agent_db_node_id(a);
	a->next_manager = (size_t)(env->ops->random_u64(env) %
				   (a->manager_count ? a->manager_count : 1));
	if (a->manager_count)
		agent_set_target(a, a->managers[a->next_manager++ % a->manager_count]);
	a->tick_ms = a->heartbeat_ms / 5 < AGENT_TICK_MS_MAX ? a->heartbeat_ms / 5
							     : AGENT_TICK_MS_MAX;
	rv = env->ops->timer_start(env, 1, a->tick_ms, agent_tick, a, &a->tick_timer);
	if (rv)
		goto err;
	ctx = calloc(1, sizeof *ctx);
	if (ctx) {
		ctx->a = a;
		ctx->req.data = ctx;
		if (env->ops->ctl_list(env, &ctx->req, agent_adopt_cb))
			free(ctx); /* no executor: nothing to adopt */
		else
			a->listing = ctx;
	}
	*out = a;
	return 0;
err:
	for (size_t i = 0; i < a->task_count; i++)
		agent_task_free(a->tasks[i]);
	free(a->tasks);
	free(a);
	return rv;
}

void agent_stop(struct agent *a)
{
	a->dying = true;
	/* controllers belong to the env and die with the process */
	for (size_t i = 0; i < a->task_count; i++)
		agent_task_free(a->tasks[i]);
	for (size_t i = 0; i < a->closing_count; i++)
		agent_task_free(a->closing[i]);
	free(a->closing);
	free(a->listing);
	free(a->tasks);
	free(a);
}

uint64_t agent_node_id(const struct agent *a)
{
	return a->node_id;
}
bool agent_connected(const struct agent *a)
{
	return a->link == AGENT_READY;
}
size_t agent_task_count(const struct agent *a)
{
	return a->task_count;
}
