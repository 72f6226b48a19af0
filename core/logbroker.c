/* logbroker: service logs through the leader. See logbroker.h. */
#include "core/logbroker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/grow.h"
#include "core/limits.h"

/* Per node asked, at least this much data (the frame's share otherwise). */
#define LB_NODE_BYTES_MIN 4096u

struct lb_addr {
	uint64_t node_id;
	char addr[LIMIT_ADDR_BYTES_MAX];
	uint64_t conn; /* the connection of its latest session or heartbeat
			  (issue 18: asked on it, never dialled) */
};

struct lb_ask {
	uint64_t node_id;
	bool answered;
};

struct lb_read {
	struct logbroker *lb;
	struct lb_read *next;
	uint64_t id; /* the LogRequests' id */
	logbroker_cb cb;
	void *data;
	env_timer_id timer;
	struct logbroker_task *tasks;
	Cs__LogCursor *cursors;
	Cs__LogCursor **cursor_ptrs;
	size_t task_count;
	struct lb_ask *asks;
	size_t ask_count, waiting;
	Cs__LogLine **lines; /* owned deep copies */
	size_t line_count, line_cap;
	uint64_t unanswered;
};

struct logbroker {
	const struct leader_ctx *ctx;
	struct env *env;
	struct lb_addr *addrs; /* by node id, ascending */
	size_t addr_count, addr_cap;
	struct lb_read *reads;
	size_t read_count;
	uint64_t next_id;
};

/* ---------------------------------------------------------------- addresses */

static struct lb_addr *lb_addr_find(struct logbroker *lb, uint64_t node_id, size_t *at)
{
	size_t lo = 0, hi = lb->addr_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lb->addrs[mid].node_id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return lo < lb->addr_count && lb->addrs[lo].node_id == node_id ? &lb->addrs[lo]
								       : NULL;
}

/* Remembers where node_id's frames come from (its certificate's id) and
 * the connection they came on. */
static void lb_addr_learn(struct logbroker *lb, uint64_t node_id, const char *from,
			  uint64_t conn)
{
	struct lb_addr *a;
	size_t at;

	if (!node_id || strlen(from) >= LIMIT_ADDR_BYTES_MAX)
		return;
	if ((a = lb_addr_find(lb, node_id, &at))) {
		memcpy(a->addr, from, strlen(from) + 1);
		a->conn = conn;
		return;
	}
	if (lb->addr_count >= LIMIT_NODES_MAX ||
	    grow_array((void **)&lb->addrs, &lb->addr_cap, lb->addr_count + 1,
		       sizeof *lb->addrs))
		return; /* not known: its tasks' reads go unanswered */
	memmove(&lb->addrs[at + 1], &lb->addrs[at],
		(lb->addr_count - at) * sizeof *lb->addrs);
	lb->addrs[at].node_id = node_id;
	memcpy(lb->addrs[at].addr, from, strlen(from) + 1);
	lb->addrs[at].conn = conn;
	lb->addr_count++;
	assert(lb_addr_find(lb, node_id, NULL));
}

/* ---------------------------------------------------------------- reads */

static void lb_read_free(struct lb_read *r)
{
	for (size_t i = 0; i < r->line_count; i++) {
		free(r->lines[i]->data.data);
		free(r->lines[i]);
	}
	free(r->lines);
	free(r->tasks);
	free(r->cursors);
	free(r->cursor_ptrs);
	free(r->asks);
	free(r);
}

static void lb_read_unlink(struct lb_read *r)
{
	struct lb_read **pp = &r->lb->reads;
	while (*pp && *pp != r)
		pp = &(*pp)->next;
	assert(*pp == r);
	*pp = r->next;
	assert(r->lb->read_count > 0);
	r->lb->read_count--;
}

/* By time, then task: the merge of the nodes' lines. */
static int lb_line_cmp(const void *pa, const void *pb)
{
	const Cs__LogLine *a = *(const Cs__LogLine *const *)pa;
	const Cs__LogLine *b = *(const Cs__LogLine *const *)pb;
	if (a->time_ns != b->time_ns)
		return a->time_ns < b->time_ns ? -1 : 1;
	if (a->task_id != b->task_id)
		return a->task_id < b->task_id ? -1 : 1;
	return 0;
}

/* Answers r with what it has and ends it. */
static void lb_read_finish(struct lb_read *r, int status, const char *why)
{
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	struct env *env = r->lb->env;

	if (r->timer)
		env->ops->timer_stop(env, r->timer);
	r->timer = 0;
	lb_read_unlink(r);
	/* stable within a task: a task's lines come in order from its node */
	for (size_t i = 1; i < r->line_count; i++)
		for (size_t k = i;
		     k > 0 && lb_line_cmp(&r->lines[k - 1], &r->lines[k]) > 0; k--) {
			Cs__LogLine *t = r->lines[k];
			r->lines[k] = r->lines[k - 1];
			r->lines[k - 1] = t;
		}
	for (size_t i = 0; i < r->ask_count; i++)
		if (!r->asks[i].answered)
			for (size_t k = 0; k < r->task_count; k++)
				r->unanswered +=
					r->tasks[k].node_id == r->asks[i].node_id;
	resp.status = status;
	resp.error = (char *)(status ? why : "");
	resp.logs = r->lines;
	resp.n_logs = r->line_count;
	resp.logs_next = r->cursor_ptrs;
	resp.n_logs_next = r->task_count;
	resp.logs_unanswered = r->unanswered;
	r->cb(r->data, &resp);
	lb_read_free(r);
}

static void lb_read_timeout(struct env *env, env_timer_id id, void *data)
{
	struct lb_read *r = data;
	(void)env;
	(void)id;
	r->timer = 0;
	lb_read_finish(r, 0, NULL);
}

/* Takes a node's answer to read r: its lines, and its tasks' cursors. */
static void lb_read_take(struct lb_read *r, struct lb_ask *ask, const Cs__LogResponse *a)
{
	ask->answered = true;
	assert(r->waiting > 0);
	r->waiting--;
	if (a->status) {
		env_logf(r->lb->env, ENV_LOG_INFO,
			 "msg=\"logs not read\" node=%016llx status=%d why=\"%s\"",
			 (unsigned long long)ask->node_id, (int)a->status,
			 a->error ? a->error : "");
		for (size_t k = 0; k < r->task_count; k++)
			r->unanswered += r->tasks[k].node_id == ask->node_id;
		return;
	}
	for (size_t i = 0; i < a->n_lines; i++) {
		const Cs__LogLine *in = a->lines[i];
		const struct logbroker_task *t = NULL;
		Cs__LogLine *ln = NULL;
		for (size_t k = 0; k < r->task_count && !t; k++)
			if (r->tasks[k].task_id == in->task_id &&
			    r->tasks[k].node_id == ask->node_id)
				t = &r->tasks[k];
		if (!t)
			continue; /* a task not asked of that node */
		if (grow_array((void **)&r->lines, &r->line_cap, r->line_count + 1,
			       sizeof *r->lines) ||
		    !(ln = malloc(sizeof *ln)))
			break;
		cs__log_line__init(ln);
		if (!(ln->data.data = malloc(in->data.len ? in->data.len : 1))) {
			free(ln);
			break;
		}
		memcpy(ln->data.data, in->data.data, in->data.len);
		ln->data.len = in->data.len;
		ln->task_id = t->task_id;
		ln->service_id = t->service_id;
		ln->node_id = ask->node_id;
		ln->time_ns = in->time_ns;
		ln->stream = in->stream == 2 ? 2 : 1;
		r->lines[r->line_count++] = ln;
	}
	for (size_t i = 0; i < a->n_next; i++)
		for (size_t k = 0; k < r->task_count; k++)
			if (r->tasks[k].task_id == a->next[i]->task_id &&
			    r->tasks[k].node_id == ask->node_id &&
			    a->next[i]->after_ns >= r->cursors[k].after_ns &&
			    a->next[i]->after_err_ns >= r->cursors[k].after_err_ns) {
				r->cursors[k].after_ns = a->next[i]->after_ns;
				r->cursors[k].after_err_ns = a->next[i]->after_err_ns;
			}
}

/* Sends r's LogRequest to the node of ask (its tasks' cursors). 0 or an
 * error (then it is not waited for). */
static int lb_read_ask(struct lb_read *r, const struct lb_ask *ask, uint64_t since_ms,
		       uint64_t until_ms, uint64_t tail, bool tail_set,
		       uint64_t max_bytes)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__LogRequest q = CS__LOG_REQUEST__INIT;
	Cs__LogCursor **cur;
	const struct lb_addr *a = lb_addr_find(r->lb, ask->node_id, NULL);
	size_t n = 0;
	int rv;

	if (!a)
		return CS_EUNREACH;
	if (!(cur = calloc(r->task_count, sizeof *cur)))
		return CS_ENOMEM;
	for (size_t k = 0; k < r->task_count; k++)
		if (r->tasks[k].node_id == ask->node_id)
			cur[n++] = &r->cursors[k];
	q.id = r->id;
	q.tasks = cur;
	q.n_tasks = n;
	q.since_ms = since_ms;
	q.until_ms = until_ms;
	q.tail = tail;
	q.tail_set = tail_set;
	q.max_bytes = max_bytes;
	wire.log_request = &q;
	rv = leader_reply(r->lb->ctx, a->conn, &wire);
	free(cur);
	return rv;
}

int logbroker_read(struct logbroker *lb, const struct logbroker_task *tasks, size_t n,
		   uint64_t since_ms, uint64_t until_ms, uint64_t tail, bool tail_set,
		   logbroker_cb cb, void *data)
{
	struct env *env = lb->env;
	struct lb_read *r;
	uint64_t share;
	int rv;

	assert(cb);
	if (n > LIMIT_LOG_TASKS_MAX)
		return CS_ELIMIT;
	if (lb->read_count >= LOGBROKER_READS_MAX)
		return CS_EAGAIN;
	if (!(r = calloc(1, sizeof *r)))
		return CS_ENOMEM;
	r->lb = lb;
	r->cb = cb;
	r->data = data;
	r->id = ++lb->next_id;
	r->task_count = n;
	if (!(r->tasks = calloc(n + 1, sizeof *r->tasks)) ||
	    !(r->cursors = calloc(n + 1, sizeof *r->cursors)) ||
	    !(r->cursor_ptrs = calloc(n + 1, sizeof *r->cursor_ptrs)) ||
	    !(r->asks = calloc(n + 1, sizeof *r->asks))) {
		lb_read_free(r);
		return CS_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		r->tasks[i] = tasks[i];
		cs__log_cursor__init(&r->cursors[i]);
		r->cursors[i].task_id = tasks[i].task_id;
		r->cursors[i].after_ns = tasks[i].after_ns;
		r->cursors[i].after_err_ns = tasks[i].after_err_ns;
		r->cursor_ptrs[i] = &r->cursors[i];
		for (size_t k = 0; k < r->ask_count && !seen; k++)
			seen = r->asks[k].node_id == tasks[i].node_id;
		if (!seen && tasks[i].node_id)
			r->asks[r->ask_count++].node_id = tasks[i].node_id;
	}
	/* the answers together stay in one frame: each node gets a share */
	share = r->ask_count ? LIMIT_LOG_BYTES_MAX / r->ask_count : LIMIT_LOG_BYTES_MAX;
	if (share < LB_NODE_BYTES_MIN)
		share = LB_NODE_BYTES_MIN;
	r->next = lb->reads;
	lb->reads = r;
	lb->read_count++;
	for (size_t k = 0; k < r->ask_count; k++) {
		if (lb_read_ask(r, &r->asks[k], since_ms, until_ms, tail, tail_set,
				share) == 0)
			r->waiting++;
		else
			r->asks[k].answered = false;
	}
	/* nodes not asked count as unanswered at the finish; with none to
	 * wait for, the answer goes at once (from a timer: never inside) */
	rv = env->ops->timer_start(env, r->waiting ? LOGBROKER_WAIT_MS : 0, 0,
				   lb_read_timeout, r, &r->timer);
	if (rv) {
		lb_read_unlink(r);
		lb_read_free(r);
		return rv;
	}
	return 0;
}

/* ---------------------------------------------------------------- component */

static int logbroker_start(const struct leader_ctx *ctx, void **state)
{
	struct logbroker *lb = calloc(1, sizeof *lb);
	if (!lb)
		return CS_ENOMEM;
	lb->ctx = ctx;
	lb->env = leader_env(ctx);
	*state = lb;
	return 0;
}

static void logbroker_stop(void *state, bool dying)
{
	struct logbroker *lb = state;

	/* leadership lost: every read is told so; dying: freed, no env call */
	while (lb->reads) {
		struct lb_read *r = lb->reads;
		if (dying) {
			lb->reads = r->next;
			lb->read_count--;
			lb_read_free(r);
		} else {
			lb_read_finish(r, CS_ENOTLEADER,
				       "this manager lost the leadership: read again");
		}
	}
	free(lb->addrs);
	free(lb);
}

static bool logbroker_recv(void *state, const char *from, const struct env_identity *who,
			   const Cs__Wire *wire)
{
	struct logbroker *lb = state;
	const Cs__LogResponse *a = wire->log_response;

	/* where agents are: what their sessions and heartbeats come from (the
	 * dispatcher takes those frames: only looked at here) */
	if ((wire->session || wire->heartbeat) && who->node_id) {
		lb_addr_learn(lb, who->node_id, from, who->conn);
		return false;
	}
	if (!a)
		return false;
	for (struct lb_read *r = lb->reads; r; r = r->next) {
		if (r->id != a->id)
			continue;
		/* only the node asked answers for its tasks (its certificate) */
		for (size_t k = 0; k < r->ask_count; k++)
			if (r->asks[k].node_id == who->node_id && !r->asks[k].answered) {
				lb_read_take(r, &r->asks[k], a);
				if (r->waiting == 0)
					lb_read_finish(r, 0, NULL);
				return true;
			}
		break;
	}
	return true; /* late, or not asked: dropped */
}

const struct leader_component_ops logbroker_component = {
	.name = "logbroker",
	.start = logbroker_start,
	.stop = logbroker_stop,
	.recv = logbroker_recv,
};
