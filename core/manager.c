/* manager: Raft, the store as its FSM, and writes. See manager.h. Sections:
 * the FSM, writes, the wire, lifecycle. */
#include "core/manager.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/ca.h"
#include "core/errors.h"
#include "core/events.h"
#include "core/hash.h"
#include "core/jobs.h"
#include "core/logbroker.h"
#include "core/leader.h"
#include "core/metrics.h"
#include "core/pki.h"
#include "core/allocator.h"
#include "core/limits.h"
#include "core/dispatcher.h"
#include "core/orchestrator.h"
#include "core/raftio.h"
#include "core/keymanager.h"
#include "core/rebalancer.h"
#include "core/seal.h"
#include "core/scheduler_loop.h"

/* The leader components, in start order (stopped in reverse). */
#define MANAGER_COMPONENTS 9
static const struct leader_component_ops *const manager_components[MANAGER_COMPONENTS];

/* One write in flight: local (raft_apply here), forwarded out (waiting for
 * the leader's answer) or forwarded in (the leader applying it for a
 * follower, answering reply_to). */
enum manager_write_kind { MW_LOCAL, MW_FORWARDED_OUT, MW_FORWARDED_IN };

struct manager_write {
	struct raft_apply apply; /* libraft's, while raft holds it */
	struct manager *m;
	struct manager_write *prev, *next;
	enum manager_write_kind kind;
	uint64_t id; /* MW_FORWARDED_OUT: ours; IN: the follower's */
	manager_write_cb cb;
	void *data;
	env_timer_id timer;  /* timeout, or the deferred completion */
	int status;	     /* the result, once known */
	uint64_t index;	     /* where it was applied (0: not yet) */
	uint64_t wait_index; /* FORWARDED_OUT: done once applied here too */
	bool done;	     /* cb ran (or the answer was sent) */
	bool raft_owned;     /* raft holds &apply: free in its callback */
	ms_t started_ms;     /* when it was asked (the proposal latency) */
	char reply_to[LIMIT_ADDR_BYTES_MAX];
};

struct manager {
	struct env *env;
	const struct manager_cfg *cfg;
	bool force_new; /* cfg->force_new_cluster, until done */
	struct raftio rio;
	struct raft raft;
	struct raft_fsm fsm;
	struct store *store;
	struct manager_write *writes; /* every write in flight */
	/* Forwarded writes' ids: from a random start drawn at each process
	 * start, so that a late ProposalResult meant for an earlier process
	 * (the leader answers whoever has the address now) completes nothing
	 * of this one. Counting from 1 at every start, it completed the write
	 * that reused the id, with another write's verdict. */
	uint64_t next_write_id;
	env_timer_id watch_timer;  /* notices leadership changes */
	env_timer_id join_timer;   /* asks to join until a voter */
	size_t join_next;	   /* the next of cfg->join_addrs to ask */
	struct raft_change change; /* the one membership change this leader drives */
	bool changing;
	uint64_t change_id; /* being added/promoted/removed */
	int change_step;    /* 1: add, 2: assign voter, 3: remove */
	manager_write_cb change_cb;
	void *change_data;
	bool was_leader;
	uint64_t fsm_index; /* the index the FSM applied last */
	/* leader-only components (the table below), running while this
	 * manager leads; they see it through lctx */
	struct leader_ctx {
		struct manager *m;
	} lctx;
	void *components[MANAGER_COMPONENTS];
	/* metrics (manager_metrics) */
	struct metrics_hist write_ms; /* a local write: asked to its verdict */
	uint64_t leader_changes;      /* the leader this manager knows changed */
	uint64_t last_leader;
	/* the join path's bucket (LIMIT_JOIN_*): milli-tokens, refilled on
	 * the env's clock */
	uint64_t join_tokens;
	ms_t join_refill_ms;
	/* refusals logged in the current second, and beyond the cap */
	ms_t refused_second;
	uint32_t refused_logged, refused_quiet;
	int store_watch;
	struct events *events; /* the event stream (issue 20) */
	bool dying;
	bool closed;
	bool roles_dirty;  /* a node record changed: check demotions */
	bool join_demoted; /* a join was answered "demoted": said once */
	/* A new leader serves (control API, leader components) only once its
	 * own first write committed and applied: by then it has applied every
	 * entry of earlier terms, so its store is the cluster's (a fresh
	 * leader's store can lack what an earlier leader acknowledged). */
	bool ready;
	bool leader_writing;	    /* that write is in flight */
	uint64_t leader_write_term; /* the term it was made in */
	bool transferring;
	struct raft_transfer transfer;
	bool join_refused;
	bool locked; /* autolock: waiting for the unlock key */
	char unlock_applied[SEAL_UNLOCK_KEY_CHARS + 1]; /* the key the Raft
							     keys are sealed with ("" none) */
	uint64_t node_id; /* this node's id, once known (promoted joiners) */
};

void manager_defaults(struct manager_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->tick_ms = 1000;
	cfg->election_ticks = 10;
	cfg->snapshot_every = 10000;
	cfg->snapshot_trailing = 1000;
	cfg->write_timeout_ms = 10000;
	cfg->heartbeat_ms = 5000;
	cfg->task_history = 5;
}

static int manager_defer_status(struct manager_write *w, int status);
static void manager_leader_stop(struct manager *m, bool dying);

/* ---------------------------------------------------------------- the FSM */

static int manager_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
			     void **result)
{
	struct manager *m = fsm->data;
	uint64_t index = raft_last_applied(&m->raft) + 1;
	int verdict = store_apply(m->store, buf->base, buf->len, index, NULL, NULL);

	/* an action of a newer version (issue 18's placement, to a manager
	 * without it): the others applied it, this one cannot: it stops, as
	 * on a durable write failing, rather than diverge */
	if (verdict == CS_ENOTSUP)
		m->env->ops->exit(m->env, "a committed store action of a newer version");
	m->fsm_index = index;
	/* forwarded writes the leader confirmed complete once applied here */
	for (struct manager_write *w = m->writes; w; w = w->next)
		if (w->wait_index && w->wait_index <= index && !w->done) {
			w->wait_index = 0;
			manager_defer_status(w, w->status);
		}

	if (m->cfg->on_apply)
		m->cfg->on_apply(m->cfg->hook_data, m->env, index, buf->base, buf->len);
	*result = (void *)(intptr_t)verdict;
	return 0; /* a refused batch is a verdict, not a failure of raft */
}

static int manager_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
				unsigned *n_bufs)
{
	struct manager *m = fsm->data;
	uint8_t *buf;
	size_t len;

	if (store_snapshot(m->store, &buf, &len))
		return RAFT_NOMEM;
	*bufs = raft_malloc(sizeof **bufs);
	if (!*bufs) {
		free(buf);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = raft_malloc(len ? len : 1);
	if (!(*bufs)[0].base) {
		raft_free(*bufs);
		free(buf);
		return RAFT_NOMEM;
	}
	memcpy((*bufs)[0].base, buf, len);
	(*bufs)[0].len = len;
	*n_bufs = 1;
	free(buf);
	return 0;
}

/* Restores a snapshot; on success the FSM owns buf's memory (libraft's
 * rule) and frees it. */
static int manager_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct manager *m = fsm->data;
	int rv = store_restore(m->store, buf->base, buf->len, 0);
	if (rv)
		return RAFT_CORRUPT;
	events_restored(m->events, store_applied(m->store));
	raft_free(buf->base);
	return 0;
}

/* ---------------------------------------------------------------- writes */

static void manager_write_link(struct manager *m, struct manager_write *w)
{
	w->prev = NULL;
	w->next = m->writes;
	if (m->writes)
		m->writes->prev = w;
	m->writes = w;
}

static void manager_write_unlink(struct manager *m, struct manager_write *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		m->writes = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

static void manager_write_free(struct manager *m, struct manager_write *w)
{
	if (w->timer && !m->dying)
		m->env->ops->timer_stop(m->env, w->timer);
	manager_write_unlink(m, w);
	free(w);
}

static void manager_send_result(struct manager *m, const char *to, uint64_t id,
				int status, uint64_t index);

/* Reports a write's result once: to the local caller, or to the follower
 * that forwarded it. Frees w unless raft still holds it. */
static void manager_write_finish(struct manager_write *w, int status)
{
	struct manager *m = w->m;
	if (!w->done) {
		w->done = true;
		if (w->kind != MW_FORWARDED_IN)
			metrics_hist_observe(
				&m->write_ms,
				(double)(m->env->ops->now_ms(m->env) - w->started_ms));
		if (w->kind == MW_FORWARDED_IN)
			manager_send_result(m, w->reply_to, w->id, status, w->index);
		else
			w->cb(w->data, status);
	}
	if (!w->raft_owned)
		manager_write_free(m, w);
}

static int manager_raft_status(int status)
{
	switch (status) {
	case 0: return 0;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST: return CS_ENOTLEADER;
	case RAFT_SHUTDOWN: return CS_ECLOSED;
	case RAFT_NOMEM: return CS_ENOMEM;
	default: return CS_ESTORAGE;
	}
}

static void manager_apply_cb(struct raft_apply *req, int status, void *result)
{
	struct manager_write *w = req->data;
	struct manager *m = w->m;

	w->raft_owned = false;
	if (m->dying) {
		/* the process is going: tell our own components, then forget */
		if (!w->done && w->kind != MW_FORWARDED_IN) {
			w->done = true;
			w->cb(w->data, CS_ECLOSED);
		}
		manager_write_free(m, w);
		return;
	}
	if (status == 0)
		w->index = m->fsm_index; /* the callback follows its entry's apply */
	manager_write_finish(w, status == 0 ? (int)(intptr_t)result
					    : manager_raft_status(status));
}

static void manager_write_timeout(struct env *env, env_timer_id id, void *data)
{
	struct manager_write *w = data;
	w->timer = 0;
	/* the write may still commit later: a timeout says nothing was
	 * confirmed in time, as SwarmKit's "context deadline exceeded" */
	manager_write_finish(w, w->done ? w->status
				: w->wait_index
					? CS_ETIMEDOUT /* committed, not applied here */
					: CS_ENOQUORUM);
}

/* Completion scheduled from inside manager_write: runs on the next turn. */
static void manager_write_deferred(struct env *env, env_timer_id id, void *data)
{
	struct manager_write *w = data;
	w->timer = 0;
	manager_write_finish(w, w->status);
}

static int manager_defer_status(struct manager_write *w, int status)
{
	struct manager *m = w->m;
	w->status = status;
	if (w->timer)
		m->env->ops->timer_stop(m->env, w->timer);
	w->timer = 0;
	return m->env->ops->timer_start(m->env, 0, 0, manager_write_deferred, w,
					&w->timer);
}

/* The leader's clock on a batch: StoreBatch.time_ms (field 90, a varint)
 * appended to its encoding (a later field wins in protobuf), so that every
 * manager's store stamps the records it writes with the same time. Writes
 * at most MANAGER_BATCH_TIME_BYTES at out; returns how many. */
#define MANAGER_BATCH_TIME_BYTES 12u
static size_t manager_batch_time(const struct manager *m, uint8_t *out)
{
	uint64_t t = m->env->ops->wall_ms ? m->env->ops->wall_ms(m->env) : 0;
	size_t n = 0;

	if (t == 0)
		return 0;
	out[n++] = (uint8_t)(((90u << 3) & 0x7fu) | 0x80u); /* field 90, varint */
	out[n++] = (uint8_t)((90u << 3) >> 7);
	do {
		out[n++] = (uint8_t)((t & 0x7f) | (t > 0x7f ? 0x80 : 0));
		t >>= 7;
	} while (t);
	assert(n <= MANAGER_BATCH_TIME_BYTES);
	return n;
}

/* Proposes buf through raft on this (leader) manager, with the leader's
 * time appended. Returns 0, or a CS_ error (w untouched by raft). */
static int manager_propose(struct manager *m, struct manager_write *w,
			   const uint8_t *batch, size_t len)
{
	struct raft_buffer buf;
	int rv;

	buf.base = raft_malloc(len + MANAGER_BATCH_TIME_BYTES);
	if (!buf.base)
		return CS_ENOMEM;
	memcpy(buf.base, batch, len);
	buf.len = len + manager_batch_time(m, (uint8_t *)buf.base + len);
	w->apply.data = w;
	rv = raft_apply(&m->raft, &w->apply, &buf, 1, manager_apply_cb);
	if (rv) {
		raft_free(buf.base);
		return manager_raft_status(rv);
	}
	w->raft_owned = true;
	return 0;
}

static int manager_forward(struct manager *m, struct manager_write *w,
			   const uint8_t *batch, size_t len);

int manager_write(struct manager *m, const uint8_t *batch, size_t len,
		  manager_write_cb cb, void *data)
{
	struct manager_write *w;
	int rv;

	if (len > LIMIT_FRAME_BYTES_MAX / 2)
		return CS_ELIMIT;
	w = calloc(1, sizeof *w);
	if (!w)
		return CS_ENOMEM;
	w->m = m;
	w->cb = cb;
	w->data = data;
	w->started_ms = m->env->ops->now_ms(m->env);
	manager_write_link(m, w);
	if (raft_state(&m->raft) == RAFT_LEADER) {
		w->kind = MW_LOCAL;
		rv = manager_propose(m, w, batch, len);
	} else {
		w->kind = MW_FORWARDED_OUT;
		rv = manager_forward(m, w, batch, len);
	}
	if (rv == 0)
		rv = m->env->ops->timer_start(m->env, m->cfg->write_timeout_ms, 0,
					      manager_write_timeout, w, &w->timer);
	else
		rv = manager_defer_status(w, rv);
	if (rv) {
		/* cannot even schedule: the caller hears it now */
		if (!w->raft_owned) {
			manager_write_free(m, w);
			return CS_ENOMEM;
		}
		w->done = true; /* raft's callback frees it */
		return CS_ENOMEM;
	}
	return 0;
}

/* ---------------------------------------------------------------- the wire */

/* Encodes wire and sends it to `to`, or back on connection conn when to
 * is NULL. */
static int manager_out(struct manager *m, const char *to, uint64_t conn,
		       const Cs__Wire *wire)
{
	size_t len = cs__wire__get_packed_size(wire);
	uint8_t small[256];
	uint8_t *buf = len <= sizeof small ? small : malloc(len);
	int rv;

	if (!buf)
		return CS_ENOMEM;
	cs__wire__pack(wire, buf);
	rv = to ? m->env->ops->send(m->env, to, buf, len)
		: m->env->ops->reply(m->env, conn, buf, len);
	if (buf != small)
		free(buf);
	return rv;
}

static int manager_send_wire(struct manager *m, const char *to, const Cs__Wire *wire)
{
	return manager_out(m, to, 0, wire);
}

const char *manager_leader_addr(const struct manager *m)
{
	raft_id id = 0;
	const char *addr = NULL;
	raft_leader((struct raft *)&m->raft, &id, &addr);
	return id ? addr : NULL;
}

static int manager_forward(struct manager *m, struct manager_write *w,
			   const uint8_t *batch, size_t len)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__Proposal p = CS__PROPOSAL__INIT;
	const char *leader = manager_leader_addr(m);

	if (!leader)
		return CS_ENOTLEADER; /* no leader known: nowhere to forward */
	if (++m->next_write_id == 0)
		m->next_write_id = 1; /* 0 is "none" */
	w->id = m->next_write_id;
	p.id = w->id;
	p.batch.data = (uint8_t *)batch;
	p.batch.len = len;
	p.reply_to = (char *)m->env->ops->self_addr(m->env);
	wire.proposal = &p;
	/* a lost frame shows as a timeout, as a lost answer would */
	manager_send_wire(m, leader, &wire);
	return 0;
}

static void manager_send_result(struct manager *m, const char *to, uint64_t id,
				int status, uint64_t index)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__ProposalResult r = CS__PROPOSAL_RESULT__INIT;
	const char *leader = manager_leader_addr(m);

	r.id = id;
	r.status = status;
	r.index = index;
	r.leader = (char *)(leader ? leader : "");
	wire.proposal_result = &r;
	manager_send_wire(m, to, &wire);
}

static const struct raft_server *manager_server(const struct manager *m, uint64_t id);

/* A member's forwarded write (the gate checked who): answered at the
 * member's address in the configuration, never at one the frame names. */
static void manager_on_proposal(struct manager *m, const struct env_identity *who,
				const Cs__Proposal *p)
{
	const struct raft_server *s = manager_server(m, who->node_id);
	const char *reply_to = s ? s->address : NULL;
	struct manager_write *w;
	int rv;

	if (!reply_to || strlen(reply_to) >= LIMIT_ADDR_BYTES_MAX)
		return; /* not a member: nobody to answer */
	if (raft_state(&m->raft) != RAFT_LEADER) {
		manager_send_result(m, reply_to, p->id, CS_ENOTLEADER, 0);
		return;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->m = m;
	w->kind = MW_FORWARDED_IN;
	w->id = p->id;
	memcpy(w->reply_to, reply_to, strlen(reply_to) + 1);
	manager_write_link(m, w);
	rv = manager_propose(m, w, p->batch.data, p->batch.len);
	if (rv)
		manager_write_finish(w, rv);
}

static void manager_on_result(struct manager *m, const Cs__ProposalResult *r)
{
	for (struct manager_write *w = m->writes; w; w = w->next) {
		if (w->kind == MW_FORWARDED_OUT && w->id == r->id && !w->done) {
			/* committed at the leader; the caller hears it once this
			 * manager has applied it too, so it reads its own write */
			if (r->status == 0 && r->index > raft_last_applied(&m->raft)) {
				w->status = 0;
				w->wait_index = r->index;
				return;
			}
			manager_write_finish(w, r->status);
			return;
		}
	}
}

static void manager_on_join(struct manager *m, const char *from, const Cs__JoinRequest *j,
			    const Cs__Wire *wire);
static void manager_on_join_response(struct manager *m, const char *from,
				     const Cs__JoinResponse *r);

static bool manager_components_recv(struct manager *m, const char *from,
				    const struct env_identity *who, const Cs__Wire *wire);

/* An agent's frame: the dispatcher's when leading; else the agent is told
 * where the leader is. */
static void manager_on_agent_frame(struct manager *m, const char *from,
				   const struct env_identity *who, const Cs__Wire *wire)
{
	const char *leader;
	Cs__Wire reply = CS__WIRE__INIT;
	Cs__SessionResponse sr = CS__SESSION_RESPONSE__INIT;
	Cs__HeartbeatResponse hr = CS__HEARTBEAT_RESPONSE__INIT;

	if (manager_components_recv(m, from, who, wire))
		return;
	if (!wire->session && !wire->heartbeat)
		return; /* a status update for a former leader: the agent resends */
	leader = manager_leader_addr(m);
	if (wire->session) {
		sr.status = CS_ENOTLEADER;
		sr.leader = (char *)(leader ? leader : "");
		reply.session_response = &sr;
	} else {
		hr.status = CS_ENOTLEADER;
		hr.leader = (char *)(leader ? leader : "");
		reply.heartbeat_response = &hr;
	}
	/* on the agent's own connection: a manager never dials an agent */
	manager_out(m, NULL, who->conn, &reply);
}

/* ---------------------------------------------------------------- who may say what
 *
 * Issue 13: a frame acts for the node its connection's certificate names
 * (`who`), never for an id or address written in it. Without a certificate
 * of this cluster a sender may only ask for one (the join path, rate-
 * limited); Raft comes only from managers speaking as themselves (raft id is
 * node id) that are members, or a would-be leader this manager does not
 * know yet and the cluster does not refuse; forwarded writes and joins only
 * from managers; sessions from any node of the cluster that was not
 * removed. */

/* Logs one refusal (at most 10 lines a second; the rest are counted and
 * said in the next line). */
void manager_log_refusal(struct manager *m, const char *what, const char *from,
			 const struct env_identity *who, const char *why)
{
	ms_t sec = m->env->ops->now_ms(m->env) / 1000;

	if (sec != m->refused_second) {
		m->refused_second = sec;
		m->refused_logged = 0;
	}
	if (m->refused_logged >= 10) {
		m->refused_quiet++;
		return;
	}
	m->refused_logged++;
	env_logf(m->env, ENV_LOG_WARN,
		 "msg=\"refused\" what=%s from=%s node=%016llx why=\"%s\" unlogged=%u",
		 what, from, (unsigned long long)who->node_id, why, m->refused_quiet);
	m->refused_quiet = 0;
}

/* Takes one token of a bucket (milli-tokens); false when empty. */
static bool manager_bucket_take(uint64_t *tokens)
{
	if (*tokens < 1000)
		return false;
	*tokens -= 1000;
	return true;
}

static void manager_buckets_refill(struct manager *m, ms_t now)
{
	ms_t dt = now - m->join_refill_ms;
	if (dt == 0)
		return;
	m->join_refill_ms = now;
	if (dt > 1000000)
		dt = 1000000;
	m->join_tokens += dt * LIMIT_JOIN_RATE_PER_S;
	if (m->join_tokens > (uint64_t)LIMIT_JOIN_BURST * 1000)
		m->join_tokens = (uint64_t)LIMIT_JOIN_BURST * 1000;
}

/* Raft from who: a manager speaking as itself, a member of this manager's
 * configuration (with the address the configuration has for it), or, for
 * what only a leader sends, one this manager may not know yet (it joined
 * while this one was away) whom the store does not refuse. NULL, or why
 * not. */
static const char *manager_raft_refusal(const struct manager *m, const char *from,
					const struct env_identity *who,
					const Cs__RaftMessage *r)
{
	const struct raft_server *s;
	const Cs__Node *n;

	if (who->role != ENV_ROLE_MANAGER)
		return "raft from a certificate that is not a manager's";
	if (r->from_id != who->node_id)
		return "raft message names another raft id than its certificate";
	if (r->from_id == m->raft.id)
		return "raft message claiming this manager's own raft id";
	if ((r->type == RAFT_IO_APPEND_ENTRIES || r->type == RAFT_IO_INSTALL_SNAPSHOT) &&
	    raft_state((struct raft *)&m->raft) == RAFT_LEADER &&
	    r->term == m->raft.current_term)
		/* two leaders in one term is what Raft rules out: only a
		 * compromised member sends this (libraft 0.15 crashed on it) */
		return "a second leader in this leader's own term";
	s = manager_server(m, r->from_id);
	if (s) {
		if (!r->from_address || strcmp(r->from_address, s->address) != 0 ||
		    strcmp(from, s->address) != 0)
			return "raft message from another address than its member's";
		return NULL;
	}
	if (m->raft.configuration.n == 0)
		return NULL; /* a new joiner: whoever the cluster's CA made a manager */
	if (r->type != RAFT_IO_APPEND_ENTRIES && r->type != RAFT_IO_INSTALL_SNAPSHOT)
		return "raft from a manager that is not a member";
	n = store_node_get(m->store, who->node_id);
	if (n && n->desired_role != CS__NODE_ROLE__NODE_ROLE_MANAGER)
		return "raft from a demoted manager";
	if (!r->from_address || strcmp(r->from_address, from) != 0)
		return "raft message from another address than its sender's";
	return NULL;
}

/* The gate: NULL when who may send wire here, else why not; *what names the
 * frame's kind for the log. */
static const char *manager_refusal(struct manager *m, const char *from,
				   const struct env_identity *who, const Cs__Wire *wire,
				   const char **what)
{
	const Cs__Cluster *c = store_cluster(m->store);
	bool manager = who->role == ENV_ROLE_MANAGER;

	*what = wire->raft		? "raft"
		: wire->proposal	? "proposal"
		: wire->proposal_result ? "proposal_result"
		: wire->join		? "join"
		: wire->join_response	? "join_response"
		: wire->cert_request	? "cert_request"
		: wire->session		? "session"
		: wire->heartbeat	? "heartbeat"
		: wire->status_update	? "status_update"
		: wire->log_response	? "log_response"
					: "other";
	if (wire->cert_request && who->node_id == 0)
		return NULL; /* a joiner: the join path decides */
	if (who->node_id == 0)
		return "no certificate of this cluster";
	if (c && who->cluster_id != c->id)
		return "certificate of another cluster";
	if (store_cluster_removed(c, who->node_id))
		return "this node was removed from the cluster: join it again with a new "
		       "state directory";
	if (wire->raft)
		return manager_raft_refusal(m, from, who, wire->raft);
	if (wire->proposal || wire->proposal_result || wire->join ||
	    wire->join_response) {
		if (!manager)
			return "a manager's message from a worker's certificate";
		if (wire->proposal && !manager_server(m, who->node_id))
			return "forwarded write from a manager that is not a member";
		if (wire->join &&
		    (wire->join->raft_id != who->node_id || !wire->join->addr ||
		     strcmp(wire->join->addr, from) != 0))
			return "join naming another raft id or address than its sender";
	}
	return NULL;
}

/* The join path: requests from senders without a certificate are rate-
 * limited; false when this one is over the limit (dropped, counted). */
static bool manager_join_admit(struct manager *m, const struct env_identity *who)
{
	ms_t now = m->env->ops->now_ms(m->env);
	if (who->node_id)
		return true; /* a renewal, over a certificate */
	manager_buckets_refill(m, now);
	if (manager_bucket_take(&m->join_tokens))
		return true;
	manager_log_refusal(m, "cert_request", "-", who, "over the join rate limit");
	return false;
}

/* A certificate request to a manager that does not lead: where to go, for
 * a token this manager's store takes; a refusal (rate-limited) for one it
 * does not. */
static void manager_cert_redirect(struct manager *m, const char *from,
				  const struct env_identity *who,
				  const Cs__CertRequest *q)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__CertResponse r = CS__CERT_RESPONSE__INIT;
	const char *leader = manager_leader_addr(m);
	const Cs__Cluster *c = store_cluster(m->store);
	char why[PKI_WHY_BYTES];
	Cs__NodeRole role;

	if (who->node_id == 0 && c && c->ca_cert.len &&
	    ca_token_role(c, q->token, &role, why) != 0) {
		manager_log_refusal(m, "cert_request", from, who, why);
		r.status = CS_EAUTH;
		r.error = why;
	} else {
		r.status = CS_ENOTLEADER;
		r.leader = (char *)(leader ? leader : "");
	}
	wire.cert_response = &r;
	manager_out(m, NULL, who->conn, &wire); /* on its connection: no dial */
}

/* A node the gate refused for good (removed, another cluster) that asks
 * for a session or a certificate is told why, on its connection (no dial),
 * so that its daemon stops and says so. */
static void manager_tell_refused(struct manager *m, const struct env_identity *who,
				 const Cs__Wire *wire, const char *why)
{
	Cs__Wire out = CS__WIRE__INIT;
	Cs__SessionResponse sr = CS__SESSION_RESPONSE__INIT;
	Cs__CertResponse cr = CS__CERT_RESPONSE__INIT;

	if (wire->session) {
		sr.status = CS_EAUTH;
		sr.error = (char *)why;
		out.session_response = &sr;
	} else {
		cr.status = CS_EAUTH;
		cr.error = (char *)why;
		out.cert_response = &cr;
	}
	manager_out(m, NULL, who->conn, &out);
}

bool manager_handle(struct manager *m, const char *from, const struct env_identity *who,
		    const Cs__Wire *wire)
{
	const char *what, *why;

	if (!(wire->raft || wire->proposal || wire->proposal_result || wire->join ||
	      wire->join_response || wire->cert_request || wire->session ||
	      wire->heartbeat || wire->status_update || wire->log_response))
		return false;
	if (m->locked)
		return true; /* no Raft, no leader components until unlocked */
	if ((why = manager_refusal(m, from, who, wire, &what)) != NULL) {
		manager_log_refusal(m, what, from, who, why);
		if (who->node_id && (wire->session || wire->cert_request))
			manager_tell_refused(m, who, wire, why);
		return true;
	}
	if (wire->raft)
		raftio_recv(&m->rio, wire->raft);
	else if (wire->proposal)
		manager_on_proposal(m, who, wire->proposal);
	else if (wire->proposal_result)
		manager_on_result(m, wire->proposal_result);
	else if (wire->join)
		manager_on_join(m, from, wire->join, wire);
	else if (wire->join_response)
		manager_on_join_response(m, from, wire->join_response);
	else if (wire->cert_request) {
		if (!manager_join_admit(m, who))
			return true;
		if (!manager_components_recv(m, from, who, wire))
			manager_cert_redirect(m, from, who, wire->cert_request);
	} else
		manager_on_agent_frame(m, from, who, wire);
	return true;
}

static void manager_recv(struct env *env, const char *from, const uint8_t *buf,
			 size_t len, void *data)
{
	struct manager *m = data;
	Cs__Wire *wire = cs__wire__unpack(NULL, len, buf);
	struct env_identity who;

	if (!wire) {
		env_logf(env, ENV_LOG_WARN, "msg=\"malformed frame\" from=%s bytes=%zu",
			 from, len);
		return;
	}
	env->ops->sender(env, &who);
	manager_handle(m, from, &who, wire);
	cs__wire__free_unpacked(wire, NULL);
}

/* ---------------------------------------------------------------- leadership */

static void manager_leader_start(struct manager *m);
static int manager_own_certificate(struct manager *m);
static void manager_follow_autolock(struct manager *m);

static void manager_leader_write_done(void *data, int status)
{
	struct manager *m = data;
	m->leader_writing = false;
	if (status) {
		/* the watch asks again while this manager leads */
		env_logf(m->env, ENV_LOG_WARN, "msg=\"leader record not written\" err=%s",
			 cs_strerror(status));
		return;
	}
	if (m->dying || raft_state(&m->raft) != RAFT_LEADER ||
	    m->raft.current_term != m->leader_write_term || m->ready)
		return;
	if (manager_own_certificate(m))
		return;
	m->ready = true;
	manager_leader_start(m);
	m->roles_dirty = true;
}

/* The leader's own certificate comes from the store's CA: a manager's,
 * naming it, chaining to the cluster's root. The first leader of a cluster
 * (or of one from before certificates) has none yet, or one of a root the
 * store does not hold: it signs one for itself. Returns 0, or an error (a
 * failed install is fatal: env exit). */
static int manager_own_certificate(struct manager *m)
{
	const Cs__Cluster *c = store_cluster(m->store);
	struct env_identity me;
	struct env_blob none = {NULL, 0}, ca_cert, ca_key;
	uint8_t root[ENV_DIGEST_BYTES];
	int rv;

	if (!c || c->ca_cert.len == 0)
		return CS_ENOENT;
	pki_digest(c->ca_cert.data, c->ca_cert.len, root);
	/* during a root CA rotation, any valid one of its own: the CA (ca_own)
	 * signs it again as the phase wants (this one would know one root) */
	if (m->env->ops->pki_info(m->env, &none, &me) == 0 && me.node_id == m->raft.id &&
	    me.role == ENV_ROLE_MANAGER && me.cluster_id == c->id &&
	    me.expires_ms > m->env->ops->now_ms(m->env) &&
	    (c->ca_rotation != CS__CA_ROTATION_PHASE__CA_ROTATION_NONE ||
	     memcmp(me.root, root, sizeof root) == 0))
		return 0;
	ca_cert = (struct env_blob){c->ca_cert.data, c->ca_cert.len};
	ca_key = (struct env_blob){c->ca_key.data, c->ca_key.len};
	rv = ca_issue_self(m->env, &ca_cert, &ca_key, c->id, m->raft.id, ENV_ROLE_MANAGER,
			   ca_cert_life(c));
	env_logf(m->env, rv ? ENV_LOG_ERROR : ENV_LOG_INFO,
		 "msg=\"own certificate\" node=%016llx err=%s",
		 (unsigned long long)m->raft.id, rv ? cs_strerror(rv) : "none");
	if (rv == CS_ESTORAGE)
		m->env->ops->exit(m->env, "cannot keep this manager's certificate");
	return rv;
}

/* The cluster's ingress network (issue 15), when it has none (SwarmKit's
 * leader creates it the same way): the first subnet of the default address
 * pool (10.0.0.0/24 unless the cluster was created with another pool),
 * unless taken, its id drawn from the cluster's (no random draw: other ids
 * stay as they were). */
static int manager_ingress_network(struct manager *m, struct store_batch *b,
				   uint64_t cluster_id)
{
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	Cs__Network net = CS__NETWORK__INIT;
	char bufs[2][20], why[160], first[32];
	const Cs__Cluster *cl = store_cluster(m->store);
	const Cs__ClusterSettings *cs = cl ? cl->settings : NULL;
	uint32_t pool = cs ? cs->default_addr_pool : m->cfg->default_addr_pool;
	uint32_t plen = cs ? cs->default_addr_pool_len : m->cfg->default_addr_pool_len;
	uint32_t slen = cs ? cs->default_subnet_len : m->cfg->default_subnet_len;
	int rv;

	for (const Cs__Network *n = store_network_next(m->store, NULL); n;
	     n = store_network_next(m->store, n))
		if (n->spec->ingress)
			return 0;
	spec.name = "ingress";
	spec.driver = "overlay";
	spec.ingress = true;
	if (!plen)
		pool = LIMIT_NET_POOL_DEFAULT;
	snprintf(first, sizeof first, "%u.%u.%u.%u/%u", pool >> 24, pool >> 16 & 255,
		 pool >> 8 & 255, pool & 255, slen ? slen : LIMIT_NET_SUBNET_LEN);
	spec.subnet = store_network_by_name(m->store, "ingress") ? "" : first;
	if (store_network_by_name(m->store, "ingress"))
		spec.name = "ingress-mesh";
	net.id = (cluster_id * 0x9e3779b97f4a7c15ull) | 1;
	rv = alloc_network_prepare(m->store, &spec, &net, bufs, why, sizeof why);
	if (rv) {
		env_logf(m->env, ENV_LOG_ERROR, "msg=\"no ingress network\" why=\"%s\"",
			 why);
		return 0; /* the cluster goes on without one */
	}
	return store_batch_network(b, CS__STORE_ACTION__KIND__KIND_CREATE, &net);
}

/* A new leader records itself in the cluster object, creating the object
 * (with its root CA and join tokens) on the cluster's first election. The write also
 * commits an entry of the new term, which is what lets the leader apply
 * the entries of earlier terms (Raft's rule, section 5.4.2). */
static void manager_became_leader(struct manager *m)
{
	const Cs__Cluster *cur = store_cluster(m->store);
	Cs__Cluster c = CS__CLUSTER__INIT;
	Cs__ClusterSettings settings = CS__CLUSTER_SETTINGS__INIT;
	struct store_batch b;
	struct ca_new *ca = NULL;
	uint8_t *buf;
	size_t len;
	int rv;

	if (cur) {
		c = *cur;
		c.base = cur->base;
	} else {
		c.id = m->cfg->cluster_id;
		while (c.id == 0)
			c.id = m->env->ops->random_u64(m->env);
		if (m->cfg->cert_expiry_ms) {
			settings.cert_expiry_ms = m->cfg->cert_expiry_ms;
			c.settings = &settings;
		}
		if (m->cfg->default_addr_pool_len || m->cfg->default_subnet_len) {
			settings.default_addr_pool = m->cfg->default_addr_pool;
			settings.default_addr_pool_len = m->cfg->default_addr_pool_len;
			settings.default_subnet_len = m->cfg->default_subnet_len;
			c.settings = &settings;
		}
	}
	if (!cur || cur->ca_cert.len == 0) {
		/* the cluster's root CA and the tokens that name it (a cluster
		 * from before certificates gets them now, new tokens too) */
		ca = malloc(sizeof *ca);
		if (!ca || (rv = ca_cluster_new(m->env, m->cfg, c.id, ca)) != 0) {
			env_logf(m->env, ENV_LOG_ERROR,
				 "msg=\"cannot make the root CA\"");
			free(ca);
			return;
		}
		c.ca_cert = (ProtobufCBinaryData){ca->cert_len, ca->cert};
		c.ca_key = (ProtobufCBinaryData){ca->key_len, ca->key};
		c.worker_token = ca->worker_token;
		c.manager_token = ca->manager_token;
	}
	c.leader_raft_id = m->raft.id;
	c.leader_term = m->raft.current_term;
	store_batch_init(&b);
	rv = store_batch_cluster(&b,
				 cur ? CS__STORE_ACTION__KIND__KIND_UPDATE
				     : CS__STORE_ACTION__KIND__KIND_CREATE,
				 &c);
	if (rv == 0)
		rv = manager_ingress_network(m, &b, c.id);
	if (rv == 0)
		rv = store_batch_encode(&b, m->raft.id, 0, &buf, &len);
	store_batch_free(&b);
	free(ca);
	if (rv)
		return;
	if (!m->leader_writing)
		env_logf(m->env, ENV_LOG_INFO, "msg=\"became leader\" term=%llu",
			 (unsigned long long)m->raft.current_term);
	if (manager_write(m, buf, len, manager_leader_write_done, m) == 0) {
		m->leader_writing = true;
		m->leader_write_term = m->raft.current_term;
	}
	free(buf);
}

/* Starts the leader-only components (SwarmKit's manager does the same on
 * its leadership change). A component that cannot start is logged; the
 * next election retries. */
static void manager_leader_start(struct manager *m)
{
	for (size_t i = 0; i < MANAGER_COMPONENTS; i++) {
		int rv = manager_components[i]->start(&m->lctx, &m->components[i]);
		if (rv) {
			m->components[i] = NULL;
			env_logf(m->env, ENV_LOG_ERROR,
				 "msg=\"leader component failed to start\" component=%s "
				 "err=%s",
				 manager_components[i]->name, cs_strerror(rv));
		}
	}
}

static void manager_leader_stop(struct manager *m, bool dying)
{
	for (size_t i = MANAGER_COMPONENTS; i-- > 0;) {
		if (m->components[i])
			manager_components[i]->stop(m->components[i], dying);
		m->components[i] = NULL;
	}
}

static void manager_on_store_event(void *data, const struct store_event *ev)
{
	struct manager *m = data;
	events_on_store_event(m->events, m->store, ev);
	if (ev->table == STORE_NODE)
		m->roles_dirty = true;
	for (size_t i = 0; i < MANAGER_COMPONENTS; i++)
		if (m->components[i] && manager_components[i]->on_event)
			manager_components[i]->on_event(m->components[i], ev);
}

/* Passes a frame to the leader components; false when none took it (or
 * this manager does not lead). Raft may have stepped down before the watch
 * stops the components (at most a tenth of a tick): from then on no frame
 * is theirs, and the sender is told this manager does not lead. */
static bool manager_components_recv(struct manager *m, const char *from,
				    const struct env_identity *who, const Cs__Wire *wire)
{
	if (!manager_serves(m))
		return false;
	for (size_t i = 0; i < MANAGER_COMPONENTS; i++)
		if (m->components[i] && manager_components[i]->recv &&
		    manager_components[i]->recv(m->components[i], from, who, wire))
			return true;
	return false;
}

static const struct raft_server *manager_server(const struct manager *m, uint64_t id);
static int manager_change(struct manager *m, int step, uint64_t id, const char *addr,
			  manager_write_cb cb, void *data);

static void manager_transfer_cb(struct raft_transfer *req)
{
	struct manager *m = req->data;
	m->transferring = false;
}

static void manager_role_change_cb(void *data, int status)
{
	struct manager *m = data;
	m->roles_dirty = true; /* look again: another may wait, or a retry */
	(void)status;
}

/* Whether the cluster record lists node_id among the removed nodes (kept
 * ascending by control_node_remove). */
static bool manager_is_removed(const Cs__Cluster *c, uint64_t node_id)
{
	size_t lo = 0, hi = c ? c->n_removed_nodes : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->removed_nodes[mid] == node_id)
			return true;
		if (c->removed_nodes[mid] < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Takes member id out of the Raft group, one change at a time (why:
 * "demoted" or "removed"): this leader's own removal after handing its
 * leadership over; busy, the next tick retries. */
static void manager_leave_member(struct manager *m, uint64_t id, const char *why)
{
	if (id == m->raft.id) {
		m->transfer.data = m;
		if (raft_transfer(&m->raft, &m->transfer, 0, manager_transfer_cb) == 0) {
			m->transferring = true;
			env_logf(m->env, ENV_LOG_INFO,
				 "msg=\"handing leadership over\" reason=%s", why);
		}
		m->roles_dirty = true;
		return;
	}
	env_logf(m->env, ENV_LOG_INFO,
		 "msg=\"removing a member\" reason=%s raft_id=%llu node=%016llx", why,
		 (unsigned long long)id, (unsigned long long)id);
	if (manager_change(m, 3, id, NULL, manager_role_change_cb, m) != 0)
		m->roles_dirty = true;
}

/* SwarmKit's role manager evicts a Raft member whose node was removed
 * (evictRemovedNode): `node rm` of a demoted manager that had not left the
 * group yet. One change at a time, this leader's own removal after handing
 * its leadership over, as for a demotion. */
static void manager_evict_removed(struct manager *m)
{
	const Cs__Cluster *c = store_cluster(m->store);

	for (unsigned i = 0; c && i < m->raft.configuration.n; i++) {
		uint64_t id = m->raft.configuration.servers[i].id;
		if (store_node_get(m->store, id) || !manager_is_removed(c, id))
			continue;
		manager_leave_member(m, id, "removed");
		return;
	}
}

/* SwarmKit's role manager: a manager whose node the cluster wants as a
 * worker leaves the Raft group. This leader removes the others one change
 * at a time and hands its leadership over before its own removal. Promoted
 * nodes need nothing here: they restart as managers and ask to join. */
static void manager_reconcile_roles(struct manager *m)
{
	const Cs__Node *n = NULL;

	if (m->changing || m->transferring)
		return; /* the change's callback looks again */
	m->roles_dirty = false;
	while ((n = store_node_next(m->store, n)) != NULL) {
		/* a manager's raft id is its node id; the record is a manager's
		 * (the CA gives it a worker's certificate only once it has
		 * left the Raft group) */
		uint64_t id = n->id;
		if (n->desired_role != CS__NODE_ROLE__NODE_ROLE_WORKER ||
		    (n->role != CS__NODE_ROLE__NODE_ROLE_MANAGER &&
		     n->cert_role != CS__NODE_ROLE__NODE_ROLE_MANAGER &&
		     !n->manager_status) ||
		    !manager_server(m, id))
			continue;
		manager_leave_member(m, id, "demoted");
		return;
	}
	manager_evict_removed(m);
}

static void manager_watch(struct env *env, env_timer_id id, void *data)
{
	struct manager *m = data;
	bool leader = raft_state(&m->raft) == RAFT_LEADER;

	if (leader && !m->was_leader) {
		m->ready = false;
		manager_became_leader(m); /* serves once that write is applied */
	} else if (leader && !m->ready && !m->leader_writing) {
		manager_became_leader(m); /* the last try failed: again */
	} else if (!leader && m->was_leader) {
		env_logf(env, ENV_LOG_INFO, "msg=\"lost leadership\" term=%llu",
			 (unsigned long long)m->raft.current_term);
		m->ready = false;
		manager_leader_stop(m, false);
	}
	m->was_leader = leader;
	{
		uint64_t known = manager_leader(m);
		if (known && known != m->last_leader) {
			if (m->last_leader)
				m->leader_changes++;
			m->last_leader = known;
		}
	}
	if (leader && m->ready && m->roles_dirty)
		manager_reconcile_roles(m);
	manager_follow_autolock(m);
}

/* ---------------------------------------------------------------- membership */

static const struct raft_server *manager_server(const struct manager *m, uint64_t id)
{
	for (unsigned i = 0; i < m->raft.configuration.n; i++)
		if (m->raft.configuration.servers[i].id == id)
			return &m->raft.configuration.servers[i];
	return NULL;
}

const char *manager_member_addr(const struct manager *m, uint64_t id)
{
	const struct raft_server *s = manager_server(m, id);
	return s ? s->address : NULL;
}

bool manager_is_voter(const struct manager *m)
{
	const struct raft_server *s = manager_server(m, m->raft.id);
	return s && s->role == RAFT_VOTER;
}

static void manager_change_cb(struct raft_change *req, int status)
{
	struct manager *m = req->data;
	manager_write_cb cb = m->change_cb;
	void *data = m->change_data;
	int rv;

	if (m->dying) {
		m->changing = false;
		return;
	}
	if (status == 0 && m->change_step == 1) {
		/* added as a spare: promote; libraft first catches it up */
		m->change_step = 2;
		m->change.data = m;
		rv = raft_assign(&m->raft, &m->change, m->change_id, RAFT_VOTER,
				 manager_change_cb);
		if (rv == 0)
			return;
		status = rv;
	}
	m->changing = false;
	env_logf(m->env, status ? ENV_LOG_WARN : ENV_LOG_INFO,
		 "msg=\"membership change\" step=%d raft_id=%llu status=%s",
		 m->change_step, (unsigned long long)m->change_id,
		 status ? raft_strerror(status) : "ok");
	if (cb)
		cb(data, manager_raft_status(status));
}

/* Starts adding (step 1) or promoting (2) or removing (3) id on this
 * leader. Returns 0 or a CS_ error. */
static int manager_change(struct manager *m, int step, uint64_t id, const char *addr,
			  manager_write_cb cb, void *data)
{
	int rv;

	if (raft_state(&m->raft) != RAFT_LEADER)
		return CS_ENOTLEADER;
	if (m->changing)
		return CS_EAGAIN;
	m->change.data = m;
	m->change_step = step;
	m->change_id = id;
	m->change_cb = cb;
	m->change_data = data;
	if (step == 1)
		rv = raft_add(&m->raft, &m->change, id, addr, manager_change_cb);
	else if (step == 2)
		rv = raft_assign(&m->raft, &m->change, id, RAFT_VOTER, manager_change_cb);
	else
		rv = raft_remove(&m->raft, &m->change, id, manager_change_cb);
	if (rv)
		return rv == RAFT_CANTCHANGE ? CS_EAGAIN : manager_raft_status(rv);
	m->changing = true;
	return 0;
}

/* A join request arrived (from a manager's certificate naming the raft id
 * and address it asks for: the gate checked): the leader adds or promotes
 * the joiner, unless the cluster demoted its node; anyone else says where
 * the leader is. */
static void manager_on_join(struct manager *m, const char *from, const Cs__JoinRequest *j,
			    const Cs__Wire *wire)
{
	const struct raft_server *s;
	const Cs__Node *n = store_node_get(m->store, j->raft_id);
	Cs__Wire out = CS__WIRE__INIT;
	Cs__JoinResponse r = CS__JOIN_RESPONSE__INIT;
	int rv = 0;

	(void)wire;
	if (j->raft_id == 0 || strlen(j->addr) >= LIMIT_ADDR_BYTES_MAX)
		return;
	if (raft_state(&m->raft) != RAFT_LEADER) {
		const char *leader = manager_leader_addr(m);
		if (!leader || strcmp(leader, m->env->ops->self_addr(m->env)) == 0)
			return;
		r.status = CS_ENOTLEADER;
		r.leader = (char *)leader;
		out.join_response = &r;
		manager_send_wire(m, from, &out);
		return;
	}
	s = manager_server(m, j->raft_id);
	if (!s && n && n->desired_role != CS__NODE_ROLE__NODE_ROLE_MANAGER) {
		const char *why = "the cluster wants this node as a worker (demoted)";
		env_logf(m->env, ENV_LOG_WARN,
			 "msg=\"manager refused\" addr=%s raft_id=%llu reason=\"%s\"",
			 j->addr, (unsigned long long)j->raft_id, why);
		r.status = CS_EAUTH;
		r.error = (char *)why;
		r.demoted = true;
		out.join_response = &r;
		manager_send_wire(m, from, &out);
		return;
	}
	if (!s)
		rv = manager_change(m, 1, j->raft_id, j->addr, NULL, NULL);
	else if (s->role != RAFT_VOTER)
		rv = manager_change(m, 2, j->raft_id, NULL, NULL, NULL);
	if (rv && rv != CS_EAGAIN)
		env_logf(m->env, ENV_LOG_WARN, "msg=\"join refused\" raft_id=%llu err=%s",
			 (unsigned long long)j->raft_id, cs_strerror(rv));
	/* the joiner asks again until it sees itself a voter */
}

static void manager_join_ask(struct manager *m, const char *to);

/* The leader refused this joiner: stop asking, say why. */
static void manager_on_join_response(struct manager *m, const char *from,
				     const Cs__JoinResponse *r)
{
	char msg[LIMIT_ADDR_BYTES_MAX + 200];

	if (r->status == CS_ENOTLEADER) {
		/* ask the leader named at once (a follower used to pass the
		 * request on; now the leader must hear it from the joiner's
		 * own certificate): a join period later would leave the
		 * cluster short of a voter that long */
		if (r->leader && *r->leader && strlen(r->leader) < LIMIT_ADDR_BYTES_MAX &&
		    !m->join_refused && !manager_is_voter(m))
			manager_join_ask(m, r->leader);
		return;
	}
	if (r->status == 0 || m->join_refused || manager_is_voter(m))
		return;
	if (r->demoted) {
		/* demoted while it restarted to join: its agent renews its
		 * certificate as a worker's and the node restarts as one; a
		 * promotion back lets the next ask in. Said once. */
		if (!m->join_demoted)
			env_logf(m->env, ENV_LOG_INFO,
				 "msg=\"join deferred\" manager=%s reason=\"%s\"", from,
				 r->error ? r->error : "demoted");
		m->join_demoted = true;
		return;
	}
	m->join_refused = true;
	snprintf(msg, sizeof msg, "manager %s refused to let this manager join: %s", from,
		 r->error && *r->error ? r->error : cs_strerror(r->status));
	env_logf(m->env, ENV_LOG_ERROR, "msg=\"join refused\" manager=%s reason=\"%s\"",
		 from, r->error ? r->error : "");
	if (m->cfg->on_refused)
		m->cfg->on_refused(m->cfg->refused_data, msg);
}

void manager_set_node_id(struct manager *m, uint64_t node_id)
{
	m->node_id = node_id;
}

/* Asks `to` to let this manager join (the certificate says who asks: a
 * manager's, raft id its node id). */
static void manager_join_ask(struct manager *m, const char *to)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__JoinRequest j = CS__JOIN_REQUEST__INIT;

	j.raft_id = m->raft.id;
	j.addr = (char *)m->env->ops->self_addr(m->env);
	wire.join = &j;
	manager_send_wire(m, to, &wire);
}

static void manager_join_tick(struct env *env, env_timer_id id, void *data)
{
	struct manager *m = data;
	const char *to;

	/* Asked for as long as this manager hears no leader, not only until
	 * it sees itself a voter: libraft applies a configuration when it is
	 * appended, so a joiner can believe in a promotion that its leader's
	 * death lost; a spare gets no log, and would wait forever (seen in
	 * the simulator). The leader ignores a voter's request. */
	if ((manager_is_voter(m) && manager_leader(m) != 0) || m->join_refused)
		return;
	to = manager_leader_addr(m);
	if (!to) {
		to = m->cfg->join_addrs[m->join_next % m->cfg->join_count];
		m->join_next++;
	}
	manager_join_ask(m, to);
}

/* ---------------------------------------------------------------- status */

bool manager_serves(const struct manager *m)
{
	return m->ready && raft_state((struct raft *)&m->raft) == RAFT_LEADER;
}

bool manager_is_leader(const struct manager *m)
{
	return raft_state((struct raft *)&m->raft) == RAFT_LEADER;
}

uint64_t manager_term(const struct manager *m)
{
	return m->raft.current_term;
}
uint64_t manager_raft_id(const struct manager *m)
{
	return m->raft.id;
}
uint64_t manager_applied(const struct manager *m)
{
	return raft_last_applied((struct raft *)&m->raft);
}
const struct store *manager_store(const struct manager *m)
{
	return m->store;
}

struct events *manager_events(const struct manager *m)
{
	return m->events;
}

uint64_t manager_last_write_id(const struct manager *m)
{
	return m->next_write_id;
}

uint64_t manager_random(struct manager *m)
{
	return m->env->ops->random_u64(m->env);
}

uint64_t manager_leader(const struct manager *m)
{
	raft_id id = 0;
	const char *addr = NULL;
	raft_leader((struct raft *)&m->raft, &id, &addr);
	return id;
}

size_t manager_member_addrs(const struct manager *m, const char **addrs, size_t max)
{
	size_t n = 0;
	for (unsigned i = 0; i < m->raft.configuration.n; i++) {
		if (n < max)
			addrs[n] = m->raft.configuration.servers[i].address;
		n++;
	}
	return n;
}

size_t manager_voters(const struct manager *m, uint64_t *ids, size_t max)
{
	size_t n = 0;
	for (unsigned i = 0; i < m->raft.configuration.n; i++) {
		if (m->raft.configuration.servers[i].role != RAFT_VOTER)
			continue;
		if (n < max)
			ids[n] = m->raft.configuration.servers[i].id;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------- lifecycle */

static int manager_bootstrap(struct manager *m)
{
	struct raft_configuration conf;
	int rv;

	raft_configuration_init(&conf);
	for (size_t i = 0; i < m->cfg->voter_count; i++) {
		rv = raft_configuration_add(&conf, m->cfg->voters[i].raft_id,
					    m->cfg->voters[i].addr, RAFT_VOTER);
		if (rv) {
			raft_configuration_close(&conf);
			return CS_ENOMEM;
		}
	}
	rv = raft_bootstrap(&m->raft, &conf);
	raft_configuration_close(&conf);
	if (rv == 0 || rv == RAFT_CANTBOOTSTRAP) /* already bootstrapped: restart */
		return 0;
	return CS_ESTORAGE;
}

/* --force-new-cluster: a configuration of this manager alone, appended to
 * its log (raftio's recover) before Raft loads it, once (m->force_new is
 * cleared: an unlock later does not force it again). Returns 0 or
 * CS_ESTORAGE (raftio exits the process on a failed write), CS_ENOENT (no
 * cluster in this log: nothing to recover). */
static int manager_force_new(struct manager *m)
{
	struct raft_configuration conf;
	const char *addr = m->env->ops->self_addr(m->env);
	int rv;

	assert(m->force_new);
	assert(addr != NULL);
	m->force_new = false;
	raft_configuration_init(&conf);
	if (raft_configuration_add(&conf, m->cfg->raft_id, addr, RAFT_VOTER)) {
		raft_configuration_close(&conf);
		return CS_ENOMEM;
	}
	rv = raft_recover(&m->raft, &conf);
	raft_configuration_close(&conf);
	if (rv == RAFT_CANTBOOTSTRAP) {
		env_logf(m->env, ENV_LOG_ERROR,
			 "msg=\"force-new-cluster: this manager's log holds no "
			 "cluster to recover\"");
		return CS_ENOENT;
	}
	if (rv)
		return CS_ESTORAGE;
	env_logf(m->env, ENV_LOG_WARN,
		 "msg=\"force-new-cluster: a new cluster of this manager alone, "
		 "with the store it held; other managers must join again\"");
	return 0;
}

/* --restore: the first configuration (the voters given) with the backup's
 * store as a snapshot, in place of an empty bootstrap; nothing when the log
 * is not empty (a later start). Returns 0, CS_ENOMEM, CS_ESTORAGE. */
static int manager_restore(struct manager *m)
{
	const struct manager_cfg *cfg = m->cfg;
	struct raft_configuration conf;
	int rv = 0;

	assert(cfg->voter_count > 0);
	assert(cfg->restore_store != NULL);
	raft_configuration_init(&conf);
	for (size_t i = 0; i < cfg->voter_count && rv == 0; i++)
		rv = raft_configuration_add(&conf, cfg->voters[i].raft_id,
					    cfg->voters[i].addr, RAFT_VOTER);
	if (rv) {
		raft_configuration_close(&conf);
		return CS_ENOMEM;
	}
	rv = raftio_restore(&m->rio, &conf, cfg->restore_index ? cfg->restore_index : 1,
			    cfg->restore_term ? cfg->restore_term : 1, cfg->restore_store,
			    cfg->restore_store_len);
	raft_configuration_close(&conf);
	if (rv == CS_EEXIST)
		return 0; /* restored before: a restart */
	if (rv == 0)
		env_logf(m->env, ENV_LOG_WARN,
			 "msg=\"restored from a backup: a new cluster of this manager "
			 "with the backup's store; other nodes must join again\" "
			 "index=%llu",
			 (unsigned long long)cfg->restore_index);
	return rv == CS_EINVAL ? CS_ESTORAGE : rv;
}

static void manager_raft_closed(struct raft *r)
{
	struct manager *m = r->data;
	m->closed = true;
}

/* The key that seals this node's TLS key under autolock: derived from the
 * unlock key (its own label: not the Raft keys' KEK). Returns 0, or
 * CS_EINVAL when text is not an unlock key. */
static int manager_tls_kek(const char *text, uint8_t kek[SEAL_KEY_BYTES])
{
	static const uint8_t salt[SEAL_SALT_BYTES];
	uint8_t secret[SEAL_UNLOCK_SECRET_BYTES];
	int rv = seal_unlock_key_parse(text, secret);

	if (rv == 0)
		rv = seal_derive(secret, sizeof secret, salt, "cswarm node tls key", kek);
	seal_wipe(secret, sizeof secret);
	return rv;
}

/* Unlocks this node's TLS key with the unlock key (autolock; nothing to do
 * when it is not sealed). */
static int manager_unlock_tls(struct manager *m, const char *unlock_key)
{
	uint8_t kek[SEAL_KEY_BYTES];
	int rv = manager_tls_kek(unlock_key, kek);

	if (rv == 0)
		rv = m->env->ops->pki_unlock(m->env, kek);
	seal_wipe(kek, sizeof kek);
	return rv;
}

/* Starts Raft (bootstrapping the cluster's first configuration when this
 * manager starts one) and the manager's timers: at open, or at unlock. */
static int manager_run(struct manager *m)
{
	const struct manager_cfg *cfg = m->cfg;
	struct env *env = m->env;
	int rv;

	if (cfg->voter_count && cfg->restore_store_len) {
		if ((rv = manager_restore(m)) != 0)
			return rv;
	} else if (cfg->voter_count && (rv = manager_bootstrap(m)) != 0) {
		return rv;
	}
	if (m->force_new && (rv = manager_force_new(m)) != 0)
		return rv;
	if (raft_start(&m->raft))
		return CS_ESTORAGE;
	/* a joiner asks for as long as it hears no leader, also when its log
	 * says it is a voter (a manager demoted, then promoted again: the
	 * configuration it last saw names it; the cluster's does not) */
	if (cfg->voter_count == 0 && cfg->join_count > 0) {
		rv = env->ops->timer_start(env, cfg->tick_ms, cfg->tick_ms * 2,
					   manager_join_tick, m, &m->join_timer);
		if (rv)
			return rv;
	}
	/* libraft has no role-change callback: look ten times per tick */
	return env->ops->timer_start(env, cfg->tick_ms / 10 + 1, cfg->tick_ms / 10 + 1,
				     manager_watch, m, &m->watch_timer);
}

bool manager_locked(const struct manager *m)
{
	return m->locked;
}

int manager_unlock(struct manager *m, const char *unlock_key)
{
	int rv;

	if (!m->locked)
		return 0;
	if ((rv = raftio_unlock(&m->rio, unlock_key)) != 0)
		return rv;
	if ((rv = manager_unlock_tls(m, unlock_key)) != 0)
		env_logf(
			m->env, ENV_LOG_ERROR,
			"msg=\"the node's TLS key does not open with the unlock key\" err=%s",
			cs_strerror(rv));
	m->locked = false;
	env_logf(m->env, ENV_LOG_INFO, "msg=\"manager unlocked\"");
	rv = manager_run(m);
	if (rv) {
		env_logf(m->env, ENV_LOG_ERROR,
			 "msg=\"manager cannot start after unlock\" err=%s",
			 cs_strerror(rv));
		m->env->ops->exit(m->env, "the manager cannot start after its unlock");
	}
	return rv;
}

/* The cluster's autolock setting changed (a Cluster record applied): this
 * manager's Raft keys follow it, from the watch (not inside libraft's
 * apply, which may run within raftio's own transaction). */
static void manager_follow_autolock(struct manager *m)
{
	const Cs__Cluster *c = store_cluster(m->store);
	const char *want = c && c->autolock && c->unlock_key && *c->unlock_key
				   ? c->unlock_key
				   : NULL;
	int rv;

	if (m->locked)
		return;
	if (want ? strcmp(want, m->unlock_applied) == 0 : !m->unlock_applied[0])
		return;
	rv = raftio_set_autolock(&m->rio, want);
	if (rv) {
		env_logf(m->env, ENV_LOG_ERROR, "msg=\"autolock not applied\" err=%s",
			 cs_strerror(rv));
		return; /* CS_ESTORAGE: raftio exits the process */
	}
	/* the node's TLS key too (SwarmKit seals it with the same key) */
	{
		uint8_t kek[SEAL_KEY_BYTES];
		rv = want ? manager_tls_kek(want, kek) : 0;
		if (rv == 0)
			rv = m->env->ops->pki_lock(m->env, want ? kek : NULL);
		seal_wipe(kek, sizeof kek);
		if (rv == CS_ESTORAGE) {
			m->env->ops->exit(m->env, "cannot keep the node's TLS key");
			return;
		}
		if (rv)
			env_logf(m->env, ENV_LOG_ERROR,
				 "msg=\"the node's TLS key not sealed\" err=%s",
				 cs_strerror(rv));
	}
	snprintf(m->unlock_applied, sizeof m->unlock_applied, "%s", want ? want : "");
	env_logf(m->env, ENV_LOG_INFO, "msg=\"autolock %s\"", want ? "on" : "off");
}

int manager_open(struct env *env, const struct manager_cfg *cfg, struct manager **out)
{
	struct manager *m = calloc(1, sizeof *m);
	int rv;

	if (!m)
		return CS_ENOMEM;
	assert(cfg->raft_id > 0);
	m->env = env;
	m->cfg = cfg;
	m->force_new = cfg->force_new_cluster;
	m->lctx.m = m;
	m->join_tokens = (uint64_t)LIMIT_JOIN_BURST * 1000;
	m->join_refill_ms = env->ops->now_ms(env);
	m->next_write_id = env->ops->random_u64(env);
	m->store = store_new();
	m->events = events_new(env, 0);
	if (!m->store || !m->events) {
		rv = CS_ENOMEM;
		goto err_store;
	}
	rv = raftio_init(&m->rio, env);
	if (rv)
		goto err_store;
	m->store_watch = store_watch(m->store, manager_on_store_event, m);
	m->fsm.version = 1;
	m->fsm.data = m;
	m->fsm.apply = manager_fsm_apply;
	m->fsm.snapshot = manager_fsm_snapshot;
	m->fsm.restore = manager_fsm_restore;
	if (raft_init(&m->raft, &m->rio.io, &m->fsm, cfg->raft_id,
		      env->ops->self_addr(env))) {
		rv = CS_ENOMEM;
		goto err_store;
	}
	m->raft.data = m;
	raft_set_heartbeat_timeout(&m->raft, (unsigned)cfg->tick_ms);
	raft_set_election_timeout(&m->raft,
				  (unsigned)(cfg->tick_ms * cfg->election_ticks));
	raft_set_pre_vote(&m->raft, true);
	m->rio.lease_ms = cfg->tick_ms * cfg->election_ticks;
	m->rio.last_leader_contact_ms = env->ops->now_ms(env);
	/* the managers of a group reach an index together: spread over a
	 * quarter of the period by raft id, they do not all compact at once
	 * (two of three keep the quorum going while the third writes) */
	raft_set_snapshot_threshold(&m->raft,
				    cfg->snapshot_every +
					    (unsigned)(hash_mix64(cfg->raft_id) %
						       (cfg->snapshot_every / 4 + 1)));
	raft_set_snapshot_trailing(&m->raft, cfg->snapshot_trailing);
	/* managers started together with the cluster's CA: each signs its own
	 * certificate from it at its first start */
	if (cfg->ca_cert.len && cfg->ca_key.len) {
		struct env_identity me;
		struct env_blob none = {NULL, 0};
		if (env->ops->pki_info(env, &none, &me) == CS_ENOENT &&
		    (rv = ca_issue_self(env, &cfg->ca_cert, &cfg->ca_key, cfg->cluster_id,
					cfg->raft_id, ENV_ROLE_MANAGER,
					cfg->cert_expiry_ms
						? cfg->cert_expiry_ms
						: LIMIT_CERT_LIFE_MS_DEFAULT)) != 0)
			goto err_raft;
	}
	/* autolock: the Raft log's keys wait for the unlock key (given, or
	 * from `swarmctl node unlock` later) */
	if (raftio_is_locked(&m->rio) && cfg->unlock_key &&
	    raftio_unlock(&m->rio, cfg->unlock_key) == 0) /* a wrong one: logged */
		manager_unlock_tls(m, cfg->unlock_key);
	if (raftio_is_locked(&m->rio)) {
		m->locked = true;
		env_logf(
			env, ENV_LOG_WARN,
			"msg=\"manager locked: its state is encrypted with the cluster's "
			"unlock key; run swarmctl node unlock (or start swarmd with "
			"--unlock-key-file)\"");
	} else if ((rv = manager_run(m)) != 0) {
		goto err_raft;
	}
	*out = m;
	return 0;
err_raft:
	raftio_crash(&m->rio);
	m->dying = true;
	raft_close(&m->raft, manager_raft_closed);
	raftio_release(&m->rio);
err_store:
	events_free(m->events);
	store_free(m->store);
	free(m);
	return rv;
}

/* The process dies: raft is closed at once (its io makes no more env calls)
 * so that libraft frees its memory; nothing is reported to anyone. */
void manager_close(struct manager *m)
{
	m->dying = true;
	manager_leader_stop(m, true);
	raftio_crash(&m->rio);
	raft_close(&m->raft, manager_raft_closed);
	assert(m->closed);
	/* writes raft did not answer: their owners in this process hear
	 * CS_ECLOSED so they can free what they hold; nothing else runs */
	while (m->writes) {
		struct manager_write *w = m->writes;
		if (!w->done && w->kind != MW_FORWARDED_IN) {
			w->done = true;
			w->cb(w->data, CS_ECLOSED);
		}
		manager_write_free(m, w);
	}
	raftio_release(&m->rio);
	events_free(m->events);
	store_free(m->store);
	free(m);
}

static int manager_start(const void *cfg, struct env *env, void **state)
{
	struct manager *m;
	int rv = manager_open(env, cfg, &m);
	if (rv)
		return rv;
	env->ops->listen(env, manager_recv, NULL, m);
	*state = m;
	return 0;
}

static void manager_stop(void *state)
{
	manager_close(state);
}

const struct env_program_ops manager_program = {
	.start = manager_start,
	.stop = manager_stop,
};

struct env *manager_env(const struct manager *m)
{
	return m->env;
}

uint64_t manager_cluster_id(const struct manager *m)
{
	const Cs__Cluster *c = store_cluster(m->store);
	return c ? c->id : 0;
}

/* ---------------------------------------------------------------- leader components */

struct env *leader_env(const struct leader_ctx *ctx)
{
	return ctx->m->env;
}
const struct store *leader_store(const struct leader_ctx *ctx)
{
	return ctx->m->store;
}
const struct manager_cfg *leader_cfg(const struct leader_ctx *ctx)
{
	return ctx->m->cfg;
}
ms_t leader_heartbeat_ms(const struct leader_ctx *ctx)
{
	const Cs__Cluster *c = store_cluster(leader_store(ctx));
	if (c && c->settings && c->settings->dispatcher_heartbeat_ms)
		return c->settings->dispatcher_heartbeat_ms;
	return ctx->m->cfg->heartbeat_ms ? ctx->m->cfg->heartbeat_ms : 5000;
}
uint64_t leader_task_history(const struct leader_ctx *ctx)
{
	const Cs__Cluster *c = store_cluster(leader_store(ctx));
	if (c && c->settings && c->settings->task_history)
		return c->settings->task_history;
	return ctx->m->cfg->task_history;
}
int leader_write(const struct leader_ctx *ctx, const uint8_t *batch, size_t len,
		 manager_write_cb cb, void *data)
{
	return manager_write(ctx->m, batch, len, cb, data);
}
uint64_t leader_raft_id(const struct leader_ctx *ctx)
{
	return ctx->m->raft.id;
}
int leader_send(const struct leader_ctx *ctx, const char *addr, const Cs__Wire *wire)
{
	return manager_send_wire(ctx->m, addr, wire);
}
int leader_reply(const struct leader_ctx *ctx, uint64_t conn, const Cs__Wire *wire)
{
	return manager_out(ctx->m, NULL, conn, wire);
}
size_t leader_voters(const struct leader_ctx *ctx, uint64_t *ids, size_t max)
{
	return manager_voters(ctx->m, ids, max);
}
size_t leader_member_addrs(const struct leader_ctx *ctx, const char **addrs, size_t max)
{
	return manager_member_addrs(ctx->m, addrs, max);
}
const char *leader_member_addr(const struct leader_ctx *ctx, uint64_t id)
{
	return manager_member_addr(ctx->m, id);
}
void leader_log_refusal(const struct leader_ctx *ctx, const char *what, const char *from,
			const struct env_identity *who, const char *why)
{
	manager_log_refusal(ctx->m, what, from, who, why);
}

/* the log broker first: it looks at the agents' session and heartbeat
 * frames (to learn where they are) before the dispatcher takes them */
static const struct leader_component_ops *const manager_components[MANAGER_COMPONENTS] = {
	&logbroker_component, &dispatcher_component, &orchestrator_component,
	&scheduler_component, &ca_component,	     &jobs_component,
	&allocator_component, &rebalancer_component, &keymanager_component,
};

/* ---------------------------------------------------------------- metrics */

void manager_metrics(const struct manager *m, struct metrics_buf *out)
{
	const struct store *st = m->store;
	uint64_t by_state[CS__TASK_STATE__TASK_STATE_ORPHANED + 1] = {0};
	char label[64];

	metrics_family(out, "cswarm_raft_term", METRICS_GAUGE,
		       "The Raft term this manager is in.");
	metrics_sample(out, "cswarm_raft_term", NULL, (double)m->raft.current_term);
	metrics_family(out, "cswarm_raft_commit_index", METRICS_GAUGE,
		       "The last Raft log index known committed.");
	metrics_sample(out, "cswarm_raft_commit_index", NULL,
		       (double)m->raft.commit_index);
	metrics_family(out, "cswarm_raft_apply_index", METRICS_GAUGE,
		       "The last Raft log index applied to this manager's store.");
	metrics_sample(out, "cswarm_raft_apply_index", NULL, (double)manager_applied(m));
	metrics_family(out, "cswarm_raft_leader", METRICS_GAUGE,
		       "1 when this manager leads and serves, else 0.");
	metrics_sample(out, "cswarm_raft_leader", NULL, manager_serves(m) ? 1 : 0);
	metrics_family(out, "cswarm_raft_leader_changes_total", METRICS_COUNTER,
		       "Times the leader this manager knows changed since it started.");
	metrics_sample(out, "cswarm_raft_leader_changes_total", NULL,
		       (double)m->leader_changes);
	metrics_family(out, "cswarm_raft_proposal_seconds", METRICS_HISTOGRAM,
		       "A store write from this manager: asked to its verdict.");
	metrics_hist_write(out, "cswarm_raft_proposal_seconds", NULL, &m->write_ms);

	metrics_family(out, "cswarm_store_objects", METRICS_GAUGE,
		       "Objects in this manager's store, by kind.");
	metrics_sample(out, "cswarm_store_objects", "kind=\"node\"",
		       (double)store_node_count(st));
	metrics_sample(out, "cswarm_store_objects", "kind=\"service\"",
		       (double)store_service_count(st));
	metrics_sample(out, "cswarm_store_objects", "kind=\"task\"",
		       (double)store_task_count(st));
	metrics_sample(out, "cswarm_store_objects", "kind=\"network\"",
		       (double)store_network_count(st));
	for (const Cs__Task *t = store_task_next(st, NULL); t;
	     t = store_task_next(st, t)) {
		size_t s = t->status ? (size_t)t->status->state : 0;
		if (s < sizeof by_state / sizeof *by_state)
			by_state[s]++;
	}
	metrics_family(out, "cswarm_store_tasks", METRICS_GAUGE,
		       "Tasks in this manager's store, by observed state.");
	for (size_t i = 0; i < sizeof by_state / sizeof *by_state; i++) {
		char state[32];
		metrics_enum_name(&cs__task_state__descriptor, (int)i, "TASK_STATE_",
				  state, sizeof state);
		metrics_sample(out, "cswarm_store_tasks",
			       metrics_label(label, sizeof label, "state", state),
			       (double)by_state[i]);
	}
	for (size_t i = 0; i < MANAGER_COMPONENTS; i++)
		if (m->components[i] && manager_components[i]->metrics)
			manager_components[i]->metrics(m->components[i], out);
}

void *manager_component(struct manager *m, const struct leader_component_ops *ops)
{
	for (size_t i = 0; i < MANAGER_COMPONENTS; i++)
		if (manager_components[i] == ops)
			return m->components[i];
	return NULL;
}
