/* dispatcher: sessions, heartbeats, assignments, status. See dispatcher.h.
 * Sections: sessions, writes, assignments, status, node expiry, frames. */
#include "core/dispatcher.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ca.h"
#include "core/errors.h"
#include "core/hash.h"
#include "core/keymanager.h"
#include "core/grow.h"
#include "core/limits.h"
#include "core/sort.h"
#include "core/leader.h"
#include "core/scheduler.h"
#include "core/seal.h"
#include "core/secret.h"
#include "core/store.h"
#include "core/str.h"

enum {
	DISP_GRACE_PERIODS = 3, /* missed periods before a node is down */
	DISP_NEW_LEADER_EXTRA_MS = DISPATCHER_NEW_LEADER_EXTRA_MS,
	DISP_FLUSH_MS = 20,	    /* assignment changes wait at most this */
	DISP_STATUS_FLUSH_MS = 100, /* status reports batch for this long */
	DISP_EXPIRY_CHECK_MS = 500, /* how often silent nodes are looked for */
	DISP_NET_FLUSH_MS = 100,    /* network state changes wait at most this */
	/* acks of a committed status write wait at most this for the writes
	 * still in flight or queued (disp_ack_committed); far under the
	 * agent's first resend (4 s, agent.c AGENT_RESEND_MS_MIN) */
	DISP_ACK_HOLD_MS = 500,
};

/* A status write stops growing past this many encoded bytes (one
 * manager_write takes LIMIT_FRAME_BYTES_MAX / 2; a report adds well under
 * a kilobyte): a burst of reports becomes several writes. */
#define DISP_STATUS_BYTES_MAX (LIMIT_FRAME_BYTES_MAX / 4)
/* Task ids in one StatusAck: 10 bytes for an id and 2 for a state, well
 * inside a frame. */
#define DISP_ACK_IDS_MAX 65536u
_Static_assert(DISP_ACK_IDS_MAX * 16u < LIMIT_FRAME_BYTES_MAX, "an ack fits a frame");
/* One Assignments part: its tasks and removals, packed, leave room in the
 * frame for the Wire and Assignments fields around them. */
#define DISP_ASSIGN_BYTES_MAX	  (LIMIT_FRAME_BYTES_MAX - 1024)
#define DISP_FIELD_OVERHEAD_BYTES 6  /* a repeated field's tag and length */
#define DISP_REMOVED_BYTES_MAX	  11 /* one removed id: a varint and slack */
/* The Wire and Assignments fields around a part's tasks and removals:
 * five varints and two bools (under 60 bytes) and the two tags and
 * lengths that enclose them */
#define DISP_ASSIGN_HEAD_BYTES_MAX 1024u
_Static_assert(DISP_ASSIGN_BYTES_MAX + DISP_ASSIGN_HEAD_BYTES_MAX <=
		       LIMIT_FRAME_BYTES_MAX,
	       "a part fits a frame");
_Static_assert(LIMIT_SPEC_BYTES_MAX + 4096 < DISP_ASSIGN_BYTES_MAX,
	       "a task with the largest spec fits in one part");

struct disp_session {
	uint64_t node_id;
	uint64_t session_id; /* 0: grace only (ready in the store, no session yet) */
	char addr[LIMIT_ADDR_BYTES_MAX];
	/* issue 18: the connection of its latest accepted frame (session,
	 * heartbeat, status), as sender() named it: everything for this
	 * node goes back on it (env reply), never dialled to an address, so
	 * that a leader holds one connection per agent, the agent's. 0: none
	 * yet (a new leader's grace): nothing is sent. */
	uint64_t conn;
	ms_t last_seen_ms;
	ms_t grace_until_ms; /* grace only: not down before this (a new leader's) */
	uint64_t seq;	     /* last Assignments number sent */
	uint64_t *changed;   /* task ids changed since the last send */
	size_t changed_count, changed_cap;
	Cs__NodeRole role;     /* what the node said it runs as */
	uint64_t members_sent; /* hash of the member list it was last sent */
	Cs__NodeRole desired;  /* the node record's desired role, when known */
	bool desired_known;    /* (kept from node events: no lookup per beat) */
	bool revive;	       /* its record says DOWN while it heartbeats: write READY */
	bool backend_deltas;   /* the agent merges NetworkService backend deltas */
	bool held_writing;     /* a CA rotation: cert_held written for ... */
	uint8_t held_written[ENV_DIGEST_BYTES]; /* ... this key */
	/* issue 17: the networks its node needs, ascending, with the digest
	 * of the state last sent of each (0: to send) and when */
	struct disp_net_sent *nets;
	size_t net_count;
	/* issue 18: its network states are to be brought up to date at the
	 * next flush (a new session; a heartbeat that says one was lost),
	 * when the flush does not build them again and sync every session */
	bool net_due;
	/* issue 17: keymgr_digest of the network keys last sent (0: none) */
	uint64_t keys_sent;
	/* issue 18: when the session was opened, whether its answer waits
	 * for its record's write, and whether the agent was heard on it (a
	 * heartbeat naming it) */
	ms_t born_ms;
	uint64_t request_hash; /* of the request that opened it (0: none) */
	bool answer_pending;
	bool heard;
};

struct disp_net_sent {
	uint64_t network_id; /* first: sorted as a uint64 */
	uint64_t digest;
	ms_t at_ms;
};

/* One network's state as the store says (issue 17), with its digest. */
struct disp_net {
	uint64_t network_id;
	uint64_t digest;      /* never 0 */
	Cs__NetworkState *st; /* owned (protobuf-c unpacked); no session fields */
	/* the state before (owned, or NULL), and the change from it to st,
	 * made at most once (delta_made): sessions that hold prev get it */
	Cs__NetworkState *prev;
	uint64_t prev_digest;
	bool delta_made, delta_ok;
	bool delta_backends;	/* the change holds a backend delta */
	Cs__NetworkState delta; /* points into st, and the arrays below */
	Cs__NetworkEndpoint **d_eps;
	Cs__NetworkService **d_svcs;
	uint64_t *d_rm_eps, *d_rm_svcs;
	/* services sent as backend deltas (backends_delta), and the
	 * addresses they name (borrowed from prev and st) */
	Cs__NetworkService *d_bsvcs;
	char **d_baddrs;
};

struct disp_report {
	uint64_t task_id;
	uint64_t node_id;
	uint64_t session_id;
	Cs__TaskState state;
	int32_t exit_code;
	uint64_t timestamp_ms;
	char message[128];
};

/* What acknowledging a report takes (a write's context keeps these, not
 * the reports: 24 bytes a task, not 176). */
struct disp_ack {
	uint64_t task_id;
	uint64_t node_id;
	uint32_t state;
};

/* A map of task ids to uint32s (issue 18): the latest state a status
 * write in flight carries for a task (dispatcher.inflight), and a queued
 * report's index (dispatcher.queued). Open addressing (linear probing, at
 * most half full); only looked up, never walked. */
struct disp_map_slot {
	uint64_t task_id;
	uint32_t value;
	bool used;
};

struct disp_map {
	struct disp_map_slot *slots;
	size_t mask; /* slots - 1, a power of two less one; 0: none yet */
	size_t count;
};

struct dispatcher {
	struct env *env;
	const struct leader_ctx *ctx; /* what the leader lets it see */
	ms_t heartbeat_ms;
	uint64_t registering;	       /* a member manager whose record is being made */
	struct disp_session *sessions; /* sorted by node id */
	size_t session_count, session_cap;
	struct disp_report *reports; /* status reports waiting for a write */
	size_t report_count, report_cap;
	env_timer_id expiry_timer, flush_timer, status_timer, ack_timer;
	uint64_t members_pushed; /* hash of the member list last pushed */
	struct disp_net *nets;	 /* issue 17: every used network's state, by id */
	size_t net_count;
	bool nets_dirty;     /* the store changed what they say: build again */
	uint64_t net_builds; /* times they were built (metrics) */
	env_timer_id net_timer;
	/* issue 17: keymgr_digest of the store's network keys (0: none), and
	 * whether the sessions are to be sent them at the next flush */
	uint64_t keys_digest;
	bool keys_push;
	unsigned writes_in_flight;
	bool stopped;
	bool dying;
	uint64_t heartbeats, status_reports; /* received, for metrics */
	/* reports proposed and not yet answered: agents resend what is not
	 * acknowledged, and a write takes longer than a tick at scale: each
	 * resend became another write of the same state */
	struct disp_map inflight;
	/* issue 18: the queued report of each task: task id -> its index in
	 * reports (an agent's resend replaces it, as SwarmKit's dispatcher
	 * keeps one status per task between flushes) */
	struct disp_map queued;
	/* issue 18, the status path (metrics; a debug line per write) */
	unsigned status_writes_in_flight;
	uint64_t status_writes, status_writes_failed;
	uint64_t reports_written, reports_stale, reports_inflight, reports_replaced;
	/* issue 18, create's timeline (metrics; a debug line per flush that
	 * sends): tasks seen placed (ASSIGNED applied on a node), and tasks
	 * and Assignments messages sent as changes */
	uint64_t placed_total, asg_tasks_sent, asg_msgs_sent;
	/* issue 18: acks of committed status writes held for the writes
	 * after them (disp_ack_committed), in commit order; and the
	 * StatusAck frames sent (the debug line of each write) */
	struct disp_ack *held;
	size_t held_count, held_cap;
	uint64_t ack_frames;
	/* disp_send's frame buffer (grown to the largest frame sent, at
	 * most LIMIT_FRAME_BYTES_MAX) */
	uint8_t *send_buf;
	size_t send_cap;
};

/* One write's context: who to acknowledge once it commits. */
struct disp_write {
	struct dispatcher *d;
	struct disp_ack *acks; /* status reports in this write */
	size_t ack_count;
	bool status;			    /* a status write (counted apart) */
	uint64_t registered;		    /* a member manager's record made */
	uint64_t reply_node, reply_session; /* a session to answer once written */
};

bool dispatcher_is_assigned(const Cs__Task *t)
{
	/* a task to be removed stays assigned until it has stopped, so that
	 * the agent stops it and reports it (SwarmKit's rule) */
	if (t->node_id == 0 || !t->status ||
	    t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED)
		return false;
	return t->desired_state < CS__TASK_STATE__TASK_STATE_REMOVE ||
	       t->status->state < CS__TASK_STATE__TASK_STATE_COMPLETE;
}
/* ---------------------------------------------------------------- sessions */

/* The index where node_id is or would go. */
static size_t disp_find(const struct dispatcher *d, uint64_t node_id)
{
	size_t lo = 0, hi = d->session_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->sessions[mid].node_id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct disp_session *disp_session(struct dispatcher *d, uint64_t node_id)
{
	size_t i = disp_find(d, node_id);
	return i < d->session_count && d->sessions[i].node_id == node_id ? &d->sessions[i]
									 : NULL;
}

/* Returns the session of node_id, created empty if needed, or NULL. */
static struct disp_session *disp_session_add(struct dispatcher *d, uint64_t node_id)
{
	size_t i = disp_find(d, node_id);
	if (i < d->session_count && d->sessions[i].node_id == node_id)
		return &d->sessions[i];
	if (d->session_count >= LIMIT_NODES_MAX ||
	    grow_array((void **)&d->sessions, &d->session_cap, d->session_count + 1,
		       sizeof *d->sessions))
		return NULL;
	memmove(&d->sessions[i + 1], &d->sessions[i],
		(d->session_count - i) * sizeof *d->sessions);
	d->session_count++;
	memset(&d->sessions[i], 0, sizeof d->sessions[i]);
	d->sessions[i].node_id = node_id;
	return &d->sessions[i];
}

static void disp_session_remove(struct dispatcher *d, struct disp_session *s)
{
	size_t i = (size_t)(s - d->sessions);
	free(s->changed);
	free(s->nets);
	memmove(&d->sessions[i], &d->sessions[i + 1],
		(d->session_count - i - 1) * sizeof *d->sessions);
	d->session_count--;
}

size_t dispatcher_sessions(const struct dispatcher *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->session_count; i++)
		n += d->sessions[i].session_id != 0;
	return n;
}

/* ---------------------------------------------------------------- frames */

/* Sends wire back on connection conn (a sender()'s conn: the agent's own
 * connection; issue 18: the dispatcher never dials an agent). A frame lost
 * there (the connection gone, its queue full) is what the session protocol
 * recovers: the agent's next heartbeat, on its new connection, renews the
 * session's conn and learns the last Assignments number (a gap: it asks
 * for the full set again), status reports are resent until acknowledged,
 * and network states and keys are sent again when its heartbeat's digests
 * differ. */
static void disp_send(struct dispatcher *d, uint64_t conn, const Cs__Wire *wire)
{
	size_t len = cs__wire__get_packed_size(wire);
	uint8_t *buf;
	if (d->dying || conn == 0)
		return;
	if (len > LIMIT_FRAME_BYTES_MAX) {
		/* every sender splits first: this is a bug, said loudly */
		env_logf(d->env, ENV_LOG_ERROR,
			 "msg=\"message larger than a frame: not sent\" conn=%" PRIu64
			 " bytes=%zu",
			 conn, len);
		return;
	}
	/* one buffer, kept (reply copies what it sends): no allocation a
	 * frame (issue 18: a create sends several frames an agent) */
	if (grow_array((void **)&d->send_buf, &d->send_cap, len ? len : 1, 1))
		return;
	buf = d->send_buf;
	cs__wire__pack(wire, buf);
	d->env->ops->reply(d->env, conn, buf, len);
	if (wire->network_keys)
		seal_wipe(buf, len); /* issue 17: the network keys */
}

/* disp_send of an Assignments part whose packed size is known to be at
 * most bound_bytes (disp_send_parts adds it up): packed without a walk
 * to size it first (pack returns the length). */
static void disp_send_bounded(struct dispatcher *d, uint64_t conn, const Cs__Wire *wire,
			      size_t bound_bytes)
{
	size_t len;
	assert(!wire->network_keys);
	assert(bound_bytes <= LIMIT_FRAME_BYTES_MAX);
	if (d->dying || conn == 0)
		return;
	if (grow_array((void **)&d->send_buf, &d->send_cap, bound_bytes, 1))
		return;
	len = cs__wire__pack(wire, d->send_buf);
	assert(len <= bound_bytes);
	d->env->ops->reply(d->env, conn, d->send_buf, len);
}

/* ---------------------------------------------------------------- writes */

static void disp_maybe_free(struct dispatcher *d);

static void disp_write_done(void *data, int status);
static int disp_write(struct dispatcher *d, struct store_batch *b, struct disp_write *w);

/* Whether the session's node must renew its certificate now (a root CA
 * rotation waits for it: ca.h); held (a heartbeat's cert_key, NULL: not
 * said) is what it holds: not what the CA recorded (an answer lost), it
 * renews too. */
static bool disp_renew_cert(struct dispatcher *d, struct disp_session *s,
			    const ProtobufCBinaryData *held)
{
	const struct store *st = leader_store(d->ctx);
	const Cs__Cluster *c = store_cluster(st);
	const Cs__Node *n;

	if (!c || c->ca_rotation == CS__CA_ROTATION_PHASE__CA_ROTATION_NONE)
		return false;
	n = store_node_get(st, s->node_id);
	return ca_node_should_renew(c, n, held ? held->data : NULL, held ? held->len : 0);
}

/* Proposes n, a node's record changed, with context w (taken either
 * way); false when it could not be proposed. */
static bool disp_write_node(struct dispatcher *d, const Cs__Node *n, struct disp_write *w)
{
	struct store_batch b;

	store_batch_init(&b);
	if (store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, n)) {
		store_batch_free(&b);
		free(w);
		return false;
	}
	disp_write(d, &b, w);
	return true;
}

/* During a rotation: the node holds the certificate its record names
 * (its heartbeat says so): the record says so too (cert_held), once. */
static void disp_cert_held(struct dispatcher *d, struct disp_session *s,
			   const ProtobufCBinaryData *held)
{
	const struct store *st = leader_store(d->ctx);
	const Cs__Node *cur = store_node_get(st, s->node_id);
	struct disp_write *w;
	Cs__Node n;

	if (!ca_node_holds(store_cluster(st), cur, held->data, held->len) ||
	    (s->held_writing &&
	     memcmp(s->held_written, held->data, ENV_DIGEST_BYTES) == 0))
		return;
	w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->d = d;
	n = *cur;
	n.cert_held = *held;
	if (!disp_write_node(d, &n, w))
		return;
	/* once per key: a write lost is tried again at its next key */
	s->held_writing = true;
	memcpy(s->held_written, held->data, ENV_DIGEST_BYTES);
}

static void disp_session_reply(struct dispatcher *d, uint64_t conn, int status,
			       struct disp_session *s);
static void disp_ack_reports(struct dispatcher *d, const struct disp_ack *v, size_t n);
static void disp_inflight_done(struct disp_map *f, uint64_t task_id, uint32_t state);
static void disp_ack_committed(struct dispatcher *d, const struct disp_ack *v, size_t n);

/* Proposes batch b (freed here) with context w (taken: freed here when
 * the write could not be proposed). Returns 0 (disp_write_done runs
 * later) or an error. */
static int disp_write(struct dispatcher *d, struct store_batch *b, struct disp_write *w)
{
	uint8_t *buf;
	size_t len;
	int rv = store_batch_encode(b, 0, 0, &buf, &len);

	store_batch_free(b);
	if (rv == 0) {
		rv = leader_write(d->ctx, buf, len, disp_write_done, w);
		free(buf);
	}
	if (rv) {
		free(w->acks);
		free(w);
		return rv;
	}
	d->writes_in_flight++;
	return 0;
}

static void disp_send_full(struct dispatcher *d, struct disp_session *s);

/* Fills managers (LIMIT_MANAGERS_MAX slots) with the Raft group's member
 * addresses, the managers an agent may go to; returns how many, and their
 * hash in *hash (to tell who has seen which list). */
static size_t disp_members(struct dispatcher *d, char **managers, uint64_t *hash)
{
	size_t n =
		leader_member_addrs(d->ctx, (const char **)managers, LIMIT_MANAGERS_MAX);
	n = n < LIMIT_MANAGERS_MAX ? n : LIMIT_MANAGERS_MAX;
	*hash = 0;
	for (size_t i = 0; i < n; i++)
		*hash = hash_mix64(*hash ^ hash_str(managers[i]));
	return n;
}

static void disp_write_done(void *data, int status)
{
	struct disp_write *w = data;
	struct dispatcher *d = w->d;

	assert(d->writes_in_flight > 0);
	d->writes_in_flight--;
	if (w->registered && d->registering == w->registered)
		d->registering = 0;
	if (!d->stopped && w->reply_node) {
		/* the session's record is written: answer it (if still its) */
		struct disp_session *s = disp_session(d, w->reply_node);
		if (s && s->session_id == w->reply_session) {
			s->answer_pending = false;
			disp_session_reply(d, s->conn, status, status ? NULL : s);
			if (status == 0)
				disp_send_full(d, s);
		}
	}
	if (w->status) {
		assert(d->status_writes_in_flight > 0);
		d->status_writes_in_flight--;
		d->status_writes_failed += status != 0;
		/* its reports are no longer in flight: a failed write's come
		 * again from the agents, and are written again */
		for (size_t i = 0; i < w->ack_count; i++)
			disp_inflight_done(&d->inflight, w->acks[i].task_id,
					   (uint32_t)w->acks[i].state);
		env_logf(d->env, ENV_LOG_DEBUG,
			 "msg=\"status write done\" reports=%zu status=%d queued=%zu"
			 " writes_in_flight=%u reports_in_flight=%zu ack_frames=%" PRIu64,
			 w->ack_count, status, d->report_count,
			 d->status_writes_in_flight, d->inflight.count, d->ack_frames);
	}
	if (!d->stopped && w->status)
		disp_ack_committed(d, w->acks, status == 0 ? w->ack_count : 0);
	free(w->acks);
	free(w);
	disp_maybe_free(d);
}

/* Writes node's state (and description when given) if it differs. */
static void disp_set_node(struct dispatcher *d, const Cs__Node *cur, Cs__NodeState state,
			  const char *message, Cs__NodeRole role,
			  const Cs__ManagerStatus *ms)
{
	struct disp_write *w;
	Cs__Node n;
	bool ms_same = ms ? cur->manager_status &&
				       cur->manager_status->raft_id == ms->raft_id &&
				       strcmp(cur->manager_status->addr, ms->addr) == 0
			  : true;

	if (cur->state == state && cur->role == role && ms_same)
		return;
	w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->d = d;
	n = *cur;
	n.state = state;
	n.role = role; /* a promoted or demoted node says so in its session */
	n.state_message = (char *)message;
	if (ms)
		n.manager_status = (Cs__ManagerStatus *)ms;
	else if (role == CS__NODE_ROLE__NODE_ROLE_WORKER)
		n.manager_status = NULL;
	disp_write_node(d, &n, w);
}

/* ---------------------------------------------------------------- node description */

/* Copies the IP of an address ("a.b.c.d:port", "[v6]:port" or bare) into
 * out (LIMIT_ADDR_BYTES_MAX bytes) when it has one; false otherwise. */
static bool disp_ip_of(const char *addr, char *out)
{
	const char *host = addr, *end = addr + strlen(addr), *colon = strchr(addr, ':');

	if (addr[0] == '[' && strchr(addr, ']')) {
		host = addr + 1;
		end = strchr(addr, ']');
	} else if (colon && !strchr(colon + 1, ':')) {
		end = colon; /* one colon: host:port (more: a bare IPv6) */
	}
	if ((size_t)(end - host) >= LIMIT_ADDR_BYTES_MAX ||
	    !sched_ip_is_valid(host, (size_t)(end - host)))
		return false;
	memcpy(out, host, (size_t)(end - host));
	out[end - host] = '\0';
	return true;
}

/* The node's IP address for its record (SwarmKit's NodeStatus.Addr, for
 * node.ip and the data plane's underlay): the IP its session's connection
 * comes from as the transport sees it (peer_ip: what the node cannot lie
 * about), else the host part of the address it says it listens on (the
 * simulator's transport knows no IPs), else the one it reports, else "".
 * out holds LIMIT_ADDR_BYTES_MAX bytes. */
static void disp_node_ip(const char *peer_ip, const char *from, const char *reported,
			 char *out)
{
	out[0] = '\0';
	if (peer_ip && disp_ip_of(peer_ip, out))
		return;
	if (disp_ip_of(from, out))
		return;
	if (reported)
		disp_ip_of(reported, out);
}

static bool disp_str_same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Whether the description q gives is within the limits a record takes. */
static bool disp_desc_ok(const Cs__SessionRequest *q)
{
	if ((q->platform_os && strlen(q->platform_os) > LIMIT_NAME_BYTES_MAX) ||
	    (q->platform_arch && strlen(q->platform_arch) > LIMIT_NAME_BYTES_MAX) ||
	    q->n_engine_labels > LIMIT_ENGINE_LABELS_MAX)
		return false;
	for (size_t i = 0; i < q->n_engine_labels; i++) {
		const Cs__Label *l = q->engine_labels[i];
		if (!l->key || !*l->key || strlen(l->key) > LIMIT_NAME_BYTES_MAX ||
		    (l->value && strlen(l->value) > LIMIT_LABEL_BYTES_MAX))
			return false;
	}
	return true;
}

/* Whether cur's description already says what q and ip do. */
static bool disp_desc_same(const Cs__Node *cur, const Cs__SessionRequest *q,
			   const char *ip)
{
	if (!disp_str_same(cur->platform_os, q->platform_os) ||
	    !disp_str_same(cur->platform_arch, q->platform_arch) ||
	    !disp_str_same(cur->addr, ip) || cur->n_engine_labels != q->n_engine_labels)
		return false;
	for (size_t i = 0; i < q->n_engine_labels; i++)
		if (!disp_str_same(cur->engine_labels[i]->key,
				   q->engine_labels[i]->key) ||
		    !disp_str_same(cur->engine_labels[i]->value,
				   q->engine_labels[i]->value))
			return false;
	return true;
}

/* A session opened: the node is READY with the role its certificate
 * grants, the manager status it has, its description (platform, engine
 * labels, IP address: written when it changed), and what its agent says
 * of its resources, labels and hostname when the record (the CA's) lacks
 * them.
 * Returns true when a write carries that (the session is answered once it
 * commits: the agent hears of a session its node is READY in), false when
 * the record says so already. */
static bool disp_set_node_session(struct dispatcher *d, const Cs__Node *cur,
				  const Cs__SessionRequest *q, Cs__NodeRole role,
				  const Cs__ManagerStatus *ms,
				  const struct disp_session *s, const char *ip)
{
	bool fill = !cur->resources && q->resources;
	bool desc = !disp_desc_same(cur, q, ip) && disp_desc_ok(q);
	bool ms_same =
		ms ? cur->manager_status && cur->manager_status->raft_id == ms->raft_id &&
				strcmp(cur->manager_status->addr, ms->addr) == 0
		   : role != CS__NODE_ROLE__NODE_ROLE_WORKER || !cur->manager_status;
	struct disp_write *w;
	Cs__Node n;

	if (!fill && !desc && cur->state == CS__NODE_STATE__NODE_STATE_READY &&
	    cur->role == role && ms_same)
		return false;
	w = calloc(1, sizeof *w);
	if (!w)
		return false;
	w->d = d;
	w->reply_node = s->node_id;
	w->reply_session = s->session_id;
	n = *cur;
	n.state = CS__NODE_STATE__NODE_STATE_READY;
	n.state_message = (char *)"";
	n.role = role;
	if (ms)
		n.manager_status = (Cs__ManagerStatus *)ms;
	else if (role == CS__NODE_ROLE__NODE_ROLE_WORKER)
		n.manager_status = NULL;
	if (fill) {
		n.resources = q->resources;
		if (!cur->n_labels) {
			n.n_labels = q->n_labels;
			n.labels = q->labels;
		}
		if ((!cur->hostname || !*cur->hostname) && q->hostname)
			n.hostname = q->hostname;
	}
	if (desc) {
		n.platform_os = q->platform_os;
		n.platform_arch = q->platform_arch;
		n.n_engine_labels = q->n_engine_labels;
		n.engine_labels = q->engine_labels;
		n.addr = (char *)ip;
	}
	return disp_write_node(d, &n, w);
}

static void disp_set_node_state(struct dispatcher *d, const Cs__Node *cur,
				Cs__NodeState state, const char *message)
{
	disp_set_node(d, cur, state, message, cur->role, cur->manager_status);
}

/* ---------------------------------------------------------------- assignments */

static int disp_mark(struct disp_session *s, uint64_t task_id)
{
	if (grow_array((void **)&s->changed, &s->changed_cap, s->changed_count + 1,
		       sizeof *s->changed))
		return CS_ENOMEM;
	s->changed[s->changed_count++] = task_id;
	return 0;
}

static void disp_flush(struct env *env, env_timer_id id, void *data);
static void disp_net_on_event(struct dispatcher *d, const struct store_event *ev);
static void disp_keys_on_event(struct dispatcher *d, const struct store_event *ev);
static void disp_net_arm(struct dispatcher *d);

static void disp_arm_flush(struct dispatcher *d)
{
	if (!d->flush_timer && !d->dying)
		d->env->ops->timer_start(d->env, DISP_FLUSH_MS, 0, disp_flush, d,
					 &d->flush_timer);
}

/* Whether the change from o to n is only the agent's own news: its status
 * moving within (ASSIGNED, RUNNING], and what a status write stamps with
 * it (version, times, started_ms). The agent has the task already and
 * reads nothing of its status: nothing to send back (SwarmKit's
 * Assignments skips such an update: TasksEqualStable, state past
 * ASSIGNED). Issue 18: every report came back to its agent as a change,
 * with the whole task and spec, which the agent saved again. Past RUNNING
 * the task is sent (it no longer carries its secrets: disp_wire_task).
 * Conservative: what a full update would replace (spec, networks, ports,
 * name, unknown fields) must be the same object, as an in-place status
 * report leaves it; a full update is always sent. */
static bool disp_status_only(const Cs__Task *o, const Cs__Task *n)
{
	if (!o || !n || !o->status || !n->status ||
	    o->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED ||
	    n->status->state <= CS__TASK_STATE__TASK_STATE_ASSIGNED ||
	    n->status->state > CS__TASK_STATE__TASK_STATE_RUNNING)
		return false;
	return o->id == n->id && o->node_id == n->node_id &&
	       o->desired_state == n->desired_state && o->service_id == n->service_id &&
	       o->slot == n->slot && o->spec == n->spec &&
	       o->spec_version == n->spec_version && o->service_name == n->service_name &&
	       o->job_iteration == n->job_iteration && o->networks == n->networks &&
	       o->n_networks == n->n_networks && o->ports == n->ports &&
	       o->n_ports == n->n_ports && o->alloc_done == n->alloc_done &&
	       o->n_secret_data == n->n_secret_data &&
	       o->base.n_unknown_fields == n->base.n_unknown_fields &&
	       o->base.unknown_fields == n->base.unknown_fields;
}

static void dispatcher_on_event(void *state, const struct store_event *ev)
{
	struct dispatcher *d = state;

	const Cs__Task *o = (const Cs__Task *)ev->old_obj,
		       *n = (const Cs__Task *)ev->new_obj;
	struct disp_session *s;

	if (d->stopped)
		return;
	disp_net_on_event(d, ev);
	disp_keys_on_event(d, ev);
	/* swarmctl cluster update --dispatcher-heartbeat: agents take the new
	 * period from their next heartbeat's answer */
	if (ev->table == STORE_CLUSTER)
		d->heartbeat_ms = leader_heartbeat_ms(d->ctx);
	if (ev->table == STORE_NODE) {
		/* a node ready in an entry applied after this leader started
		 * (an older term's) gets the same grace as the others */
		const Cs__Node *node = (const Cs__Node *)ev->new_obj;
		const Cs__Node *gone = (const Cs__Node *)ev->old_obj;
		if (node && (s = disp_session(d, node->id)) != NULL) {
			s->desired = node->desired_role;
			s->desired_known = true;
			/* DOWN applied after the node opened a new session (the
			 * write was made before, committed after): the expiry
			 * check writes READY again */
			s->revive = node->state == CS__NODE_STATE__NODE_STATE_DOWN &&
				    s->session_id != 0;
		} else if (!node && gone && (s = disp_session(d, gone->id)) != NULL) {
			s->desired_known = false;
		}
		/* (and a node not READY yet, whose agent may never open its
		 * session: it is DOWN once the grace is over, as a silent
		 * ready one) */
		if (node && node->state != CS__NODE_STATE__NODE_STATE_DOWN &&
		    !disp_session(d, node->id)) {
			struct disp_session *gs = disp_session_add(d, node->id);
			if (gs)
				gs->last_seen_ms = d->env->ops->now_ms(d->env);
		}
		return;
	}
	if (ev->table != STORE_TASK || disp_status_only(o, n))
		return;
	if (n && n->node_id && n->status &&
	    n->status->state == CS__TASK_STATE__TASK_STATE_ASSIGNED &&
	    (!o || !o->status || o->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED))
		d->placed_total++;
	if (n && n->node_id && (s = disp_session(d, n->node_id)) && s->session_id &&
	    (dispatcher_is_assigned(n) || (o && dispatcher_is_assigned(o)))) {
		disp_mark(s, n->id);
		disp_arm_flush(d);
	}
	if (o && o->node_id && (!n || n->node_id != o->node_id) &&
	    (s = disp_session(d, o->node_id)) && s->session_id &&
	    dispatcher_is_assigned(o)) {
		disp_mark(s, o->id);
		disp_arm_flush(d);
	}
}

/* What an agent needs of a task: the task with its service's spec and name
 * (tasks in the store carry neither, to stay small), and (issue 20) the
 * secrets and configs that spec references, whole, while the task has
 * not ended: a node gets the data of a secret only with a task assigned
 * to it that uses it, as SwarmKit's assignment sets send only the secrets
 * of the node's tasks (manager/dispatcher/assignments.go). Shallow:
 * points into the store, valid until the next apply; out->secret_data is
 * an array the caller frees with disp_wire_task_done (NULL when out of
 * memory: then the agent fails the task, never runs it without them). */
static Cs__Task *disp_wire_task(const struct store *st, const Cs__Task *t, Cs__Task *out)
{
	const Cs__Service *svc = store_service_get(st, t->service_id);
	*out = *t;
	out->secret_data = NULL;
	out->n_secret_data = 0;
	if (svc && svc->spec) {
		out->spec = svc->spec->task;
		out->service_name = svc->spec->name;
		/* until the task ends or is told to stop: a task past RUNNING
		 * releases them, as SwarmKit's assignment set does (the agent's
		 * copy of the task is then replaced by one without them) */
		if ((!t->status ||
		     t->status->state <= CS__TASK_STATE__TASK_STATE_RUNNING) &&
		    t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING &&
		    secret_wire_data(st, out->spec, &out->secret_data,
				     &out->n_secret_data))
			out->n_secret_data = 0;
	}
	return out;
}

static void disp_wire_task_done(Cs__Task *copies, size_t n)
{
	for (size_t i = 0; copies && i < n; i++)
		free(copies[i].secret_data);
}

/* Sends s the tasks and removals given, as one Assignments or, when they do
 * not fit in a frame, as several of consecutive seq (see api.proto): a full
 * set's parts all say full, every part but the last says more; changes go
 * as several change messages, removals last. Each part is packed to at
 * most DISP_ASSIGN_BYTES_MAX. A task too large for any frame cannot exist
 * (control_validate_spec bounds a spec): it is logged, not sent, and
 * dropped from tasks. Borrows every array. */
static void disp_send_parts(struct dispatcher *d, struct disp_session *s, bool full,
			    Cs__Task **tasks, size_t n_tasks, uint64_t *removed,
			    size_t n_removed)
{
	size_t ti = 0, ri = 0;
	uint64_t set_seq = s->seq + 1;

	do {
		Cs__Wire wire = CS__WIRE__INIT;
		Cs__Assignments a = CS__ASSIGNMENTS__INIT;
		size_t bytes = 0;

		a.tasks = tasks ? tasks + ti : NULL; /* no offset on NULL: UB */
		while (ti < n_tasks) {
			size_t one = cs__task__get_packed_size(tasks[ti]) +
				     DISP_FIELD_OVERHEAD_BYTES;
			if (one > DISP_ASSIGN_BYTES_MAX) {
				env_logf(d->env, ENV_LOG_ERROR,
					 "msg=\"task too large for a frame: not sent\" "
					 "task=%016" PRIx64 " bytes=%zu",
					 tasks[ti]->id, one);
				memmove(&tasks[ti], &tasks[ti + 1],
					(n_tasks - ti - 1) * sizeof *tasks);
				n_tasks--;
				continue;
			}
			if (bytes + one > DISP_ASSIGN_BYTES_MAX)
				break;
			bytes += one;
			a.n_tasks++;
			ti++;
		}
		a.removed = removed ? removed + ri : NULL;
		while (ti == n_tasks && ri < n_removed &&
		       bytes + DISP_REMOVED_BYTES_MAX <= DISP_ASSIGN_BYTES_MAX) {
			bytes += DISP_REMOVED_BYTES_MAX;
			a.n_removed++;
			ri++;
		}
		a.session_id = s->session_id;
		a.full = full;
		a.more = full && (ti < n_tasks || ri < n_removed);
		a.set_seq = full ? set_seq : 0;
		a.seq = ++s->seq;
		a.store_index = store_applied(leader_store(d->ctx));
		wire.assignments = &a;
		/* bytes bounds the tasks and removals; the Wire and
		 * Assignments fields around them take under 100 bytes */
		disp_send_bounded(d, s->conn, &wire, bytes + DISP_ASSIGN_HEAD_BYTES_MAX);
	} while (ti < n_tasks || ri < n_removed);
}

/* Sends s its changes since the last Assignments, in task id order.
 * Returns how many tasks it sent. */
static size_t disp_send_changes(struct dispatcher *d, struct disp_session *s)
{
	const struct store *st = leader_store(d->ctx);
	Cs__Task **tasks;
	Cs__Task *copies;
	uint64_t *removed;
	size_t n_tasks = 0, n_removed = 0;

	if (!s->changed_count)
		return 0;
	qsort(s->changed, s->changed_count, sizeof *s->changed, sort_u64_cmp);
	tasks = calloc(s->changed_count, sizeof *tasks);
	copies = calloc(s->changed_count, sizeof *copies);
	removed = calloc(s->changed_count, sizeof *removed);
	if (!tasks || !removed || !copies)
		goto out;
	for (size_t i = 0; i < s->changed_count; i++) {
		const Cs__Task *t;
		if (i && s->changed[i] == s->changed[i - 1])
			continue;
		t = store_task_get(st, s->changed[i]);
		if (t && t->node_id == s->node_id && dispatcher_is_assigned(t)) {
			tasks[n_tasks] = disp_wire_task(st, t, &copies[n_tasks]);
			n_tasks++;
		} else
			removed[n_removed++] = s->changed[i];
	}
	disp_send_parts(d, s, false, tasks, n_tasks, removed, n_removed);
out:
	disp_wire_task_done(copies, n_tasks);
	free(tasks);
	free(copies);
	free(removed);
	s->changed_count = 0;
	return n_tasks;
}

/* Sends s every task assigned to its node, as a full set (in parts when it
 * does not fit in one frame). */
static void disp_send_full(struct dispatcher *d, struct disp_session *s)
{
	const struct store *st = leader_store(d->ctx);
	Cs__Task **tasks = NULL, *copies = NULL;
	size_t cap = 0, copies_cap = 0, n = 0;

	for (const Cs__Task *t = store_task_next_by_node(st, s->node_id, NULL); t;
	     t = store_task_next_by_node(st, s->node_id, t)) {
		if (!dispatcher_is_assigned(t))
			continue;
		if (grow_array((void **)&tasks, &cap, n + 1, sizeof *tasks) ||
		    grow_array((void **)&copies, &copies_cap, n + 1, sizeof *copies)) {
			free(tasks);
			free(copies);
			return;
		}
		n++;
	}
	/* pointers into copies only once it stops moving */
	{
		size_t i = 0;
		for (const Cs__Task *t = store_task_next_by_node(st, s->node_id, NULL);
		     t && i < n; t = store_task_next_by_node(st, s->node_id, t)) {
			if (!dispatcher_is_assigned(t))
				continue;
			tasks[i] = disp_wire_task(st, t, &copies[i]);
			i++;
		}
	}
	s->changed_count = 0;
	disp_send_parts(d, s, true, tasks, n, NULL, 0);
	disp_wire_task_done(copies, n);
	free(tasks);
	free(copies);
}

static void disp_flush(struct env *env, env_timer_id id, void *data)
{
	struct dispatcher *d = data;
	size_t sessions = 0, tasks = 0;
	uint64_t seq0 = 0;

	d->flush_timer = 0;
	for (size_t i = 0; i < d->session_count; i++) {
		struct disp_session *s = &d->sessions[i];
		if (!s->session_id || !s->changed_count)
			continue;
		seq0 = s->seq;
		tasks += disp_send_changes(d, s);
		d->asg_msgs_sent += s->seq - seq0;
		sessions++;
	}
	d->asg_tasks_sent += tasks;
	if (sessions)
		env_logf(d->env, ENV_LOG_DEBUG,
			 "msg=\"assignments sent\" sessions=%zu tasks=%zu"
			 " tasks_total=%" PRIu64 " placed_total=%" PRIu64,
			 sessions, tasks, d->asg_tasks_sent, d->placed_total);
}

/* ---------------------------------------------------------------- data plane
 *
 * Issue 17: each node is told the state of every network its assigned
 * tasks attach to (api.proto NetworkState), from the store. The states of
 * all networks are built in one pass over the store's tasks when something
 * they depend on changed (tasks with attachments, services, nodes,
 * networks), at most every DISP_NET_FLUSH_MS, and cached with a digest;
 * each session remembers the digest it last sent per network, so that a
 * flush sends a node only the networks whose state differs, and a
 * heartbeat (which carries the agent's digests) costs one comparison per
 * network of the node. A change on a network of E endpoints costs one
 * O(tasks log tasks) rebuild and about 40 * E bytes to each node on it. */

/* The length of an address without its prefix ("10.0.3.5/24"). */
static size_t disp_addr_len(const char *addr)
{
	const char *slash = strchr(addr, '/');
	return slash ? (size_t)(slash - addr) : strlen(addr);
}

/* An IPv4 address as a number, for ordering (0 when it is not one). */
static uint32_t disp_ip4(const char *s)
{
	uint32_t v = 0, part = 0;
	int dots = 0, digits = 0;
	for (; *s && *s != '/'; s++) {
		if (*s == '.') {
			if (!digits || ++dots > 3)
				return 0;
			v = v << 8 | part;
			part = 0;
			digits = 0;
		} else if (*s >= '0' && *s <= '9' && digits < 3) {
			part = part * 10 + (uint32_t)(*s - '0');
			digits++;
			if (part > 255)
				return 0;
		} else {
			return 0;
		}
	}
	return dots == 3 && digits ? v << 8 | part : 0;
}

static int disp_addr_cmp(const char *a, const char *b)
{
	uint32_t x = disp_ip4(a), y = disp_ip4(b);
	if (x != y)
		return x < y ? -1 : 1;
	return strcmp(a, b);
}

/* One attachment of a live task, as the build collects them. */
struct disp_net_rec {
	uint64_t network_id, service_id, task_id, node_id;
	char addr[48];
	char node_ip[LIMIT_ADDR_BYTES_MAX];
	bool backend;	   /* RUNNING, meant to run, on a node not down */
	bool node_ingress; /* a node's own ingress address (service_id 0) */
};

/* A service's VIP on a network, as the build collects them. */
struct disp_net_vip {
	uint64_t network_id;
	const Cs__Service *svc;
	char vip[48];
};

static int disp_rec_cmp(const void *a, const void *b)
{
	const struct disp_net_rec *x = a, *y = b;
	int c;
	if (x->network_id != y->network_id)
		return x->network_id < y->network_id ? -1 : 1;
	c = disp_addr_cmp(x->addr, y->addr);
	if (c)
		return c;
	return x->task_id < y->task_id ? -1 : x->task_id > y->task_id;
}

/* By service, then address: a service's backends in order. */
static int disp_rec_svc_cmp(const void *a, const void *b)
{
	const struct disp_net_rec *x = *(struct disp_net_rec *const *)a,
				  *y = *(struct disp_net_rec *const *)b;
	if (x->service_id != y->service_id)
		return x->service_id < y->service_id ? -1 : 1;
	return disp_rec_cmp(x, y);
}

static int disp_vip_cmp(const void *a, const void *b)
{
	const struct disp_net_vip *x = a, *y = b;
	if (x->network_id != y->network_id)
		return x->network_id < y->network_id ? -1 : 1;
	return x->svc->id < y->svc->id ? -1 : x->svc->id > y->svc->id;
}

static void disp_cut(char *out, size_t size, const char *addr)
{
	size_t len = addr ? disp_addr_len(addr) : 0;
	if (len >= size)
		len = 0; /* not an address of ours: left out */
	if (len)
		memcpy(out, addr, len);
	out[len] = '\0';
}

/* The IP of node n as the dispatcher knows it: its record's address, else
 * the host part of its live session's address (the simulator's addresses
 * are names). out holds LIMIT_ADDR_BYTES_MAX bytes. */
static void disp_node_underlay(struct dispatcher *d, const Cs__Node *n, char *out)
{
	const struct disp_session *s = disp_session(d, n->id);
	const char *colon;
	size_t len;

	out[0] = '\0';
	if (n->addr && *n->addr && strlen(n->addr) < LIMIT_ADDR_BYTES_MAX) {
		memcpy(out, n->addr, strlen(n->addr) + 1);
		return;
	}
	if (!s || !s->session_id)
		return;
	colon = strchr(s->addr, ':');
	len = colon && !strchr(colon + 1, ':') ? (size_t)(colon - s->addr)
					       : strlen(s->addr);
	memcpy(out, s->addr, len);
	out[len] = '\0';
}

/* Whether t's attachments are endpoints: placed on a node the store does
 * not know down, and not known stopped. */
static bool disp_net_live(const struct store *st, const Cs__Task *t,
			  const Cs__Node **node)
{
	if (!t->n_networks || !t->node_id || !t->status ||
	    t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED ||
	    t->status->state > CS__TASK_STATE__TASK_STATE_RUNNING)
		return false;
	*node = store_node_get(st, t->node_id);
	return *node && (*node)->state != CS__NODE_STATE__NODE_STATE_DOWN;
}

static void disp_net_entry_free(struct disp_net *n)
{
	if (n->st)
		cs__network_state__free_unpacked(n->st, NULL);
	if (n->prev)
		cs__network_state__free_unpacked(n->prev, NULL);
	free(n->d_eps);
	free(n->d_svcs);
	free(n->d_rm_eps);
	free(n->d_rm_svcs);
	free(n->d_bsvcs);
	free(n->d_baddrs);
	memset(n, 0, sizeof *n);
}

static void disp_net_cache_free(struct dispatcher *d)
{
	for (size_t i = 0; i < d->net_count; i++)
		disp_net_entry_free(&d->nets[i]);
	free(d->nets);
	d->nets = NULL;
	d->net_count = 0;
}

static const struct disp_net *disp_net_get(const struct dispatcher *d, uint64_t id);

/* The new cache's entries take the state before from the old cache's:
 * the old state when it changed, else the old one's own state before. */
static void disp_net_keep_prev(struct dispatcher *d, struct disp_net *nets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct disp_net *old =
			(struct disp_net *)disp_net_get(d, nets[i].network_id);
		if (!old)
			continue;
		if (old->digest == nets[i].digest) {
			nets[i].prev = old->prev;
			nets[i].prev_digest = old->prev_digest;
			old->prev = NULL;
		} else {
			nets[i].prev = old->st;
			nets[i].prev_digest = old->digest;
			old->st = NULL;
		}
	}
}

/* Builds net's state from recs[0..n) (its attachments, by address) and
 * vips[0..nv) (its services' VIPs, by service), packs it for its digest
 * and keeps an owned copy in out. Returns 0 or CS_ENOMEM. */
static int disp_net_build_one(const struct store *st, const Cs__Network *net,
			      struct disp_net_rec *recs, size_t n,
			      const struct disp_net_vip *vips, size_t nv,
			      struct disp_net *out)
{
	Cs__NetworkState s = CS__NETWORK_STATE__INIT;
	Cs__NetworkEndpoint *eps = calloc(n ? n : 1, sizeof *eps);
	Cs__NetworkEndpoint **ep_ptrs = calloc(n ? n : 1, sizeof *ep_ptrs);
	struct disp_net_rec **by_svc = calloc(n ? n : 1, sizeof *by_svc);
	Cs__NetworkService *svcs = calloc(n + nv ? n + nv : 1, sizeof *svcs);
	Cs__NetworkService **svc_ptrs = calloc(n + nv ? n + nv : 1, sizeof *svc_ptrs);
	char **backends = calloc(n ? n : 1, sizeof *backends);
	Cs__PortConfig **ports = NULL;
	size_t ns = 0, nb = 0, np = 0, ports_cap = 0, vi = 0, ri = 0;
	uint8_t *buf = NULL;
	size_t len;
	int rv = CS_ENOMEM;

	if (!eps || !ep_ptrs || !by_svc || !svcs || !svc_ptrs || !backends)
		goto out;
	s.network_id = net->id;
	s.name = net->spec && net->spec->name ? net->spec->name : (char *)"";
	s.vni = net->vni;
	s.subnet = net->subnet;
	s.gateway = net->gateway;
	s.internal = net->spec && net->spec->internal;
	s.ingress = net->spec && net->spec->ingress;
	s.encrypted = net->spec && net->spec->encrypted;
	for (size_t i = 0; i < n; i++) {
		cs__network_endpoint__init(&eps[i]);
		eps[i].task_id = recs[i].task_id;
		eps[i].addr = recs[i].addr;
		eps[i].node_ip = recs[i].node_ip;
		eps[i].node_id = recs[i].node_id;
		eps[i].node_ingress = recs[i].node_ingress;
		ep_ptrs[i] = &eps[i];
		by_svc[i] = &recs[i];
	}
	s.n_endpoints = n;
	s.endpoints = ep_ptrs;
	if (n)
		qsort(by_svc, n, sizeof *by_svc, disp_rec_svc_cmp);
	/* the nodes' own ingress addresses (service 0, first) are no
	 * service's */
	while (ri < n && by_svc[ri]->service_id == 0)
		ri++;
	/* services: those with a VIP here, and those with tasks here (dnsrr),
	 * merged in id order */
	while (vi < nv || ri < n) {
		uint64_t id =
			vi < nv && (ri == n || vips[vi].svc->id <= by_svc[ri]->service_id)
				? vips[vi].svc->id
				: by_svc[ri]->service_id;
		const Cs__Service *svc = store_service_get(st, id);
		Cs__NetworkService *e = &svcs[ns];
		char hex[17];

		cs__network_service__init(e);
		e->service_id = id;
		e->name = svc && svc->spec && svc->spec->name ? svc->spec->name
							      : (char *)"";
		e->vip = (char *)"";
		if (vi < nv && vips[vi].svc->id == id)
			e->vip = (char *)vips[vi++].vip;
		snprintf(hex, sizeof hex, "%016" PRIx64, net->id);
		for (size_t i = 0; svc && svc->spec && i < svc->spec->n_networks; i++) {
			const Cs__NetworkAttachmentConfig *c = svc->spec->networks[i];
			if (c->target && (strcmp(c->target, s.name) == 0 ||
					  strcmp(c->target, hex) == 0)) {
				e->n_aliases = c->n_aliases;
				e->aliases = c->aliases;
				break;
			}
		}
		e->backends = &backends[nb];
		for (; ri < n && by_svc[ri]->service_id == id; ri++)
			if (by_svc[ri]->backend) {
				backends[nb++] = by_svc[ri]->addr;
				e->n_backends++;
			}
		if (s.ingress && svc) {
			e->ports = ports ? &ports[np] : NULL;
			for (size_t i = 0; i < svc->n_ports; i++) {
				if (svc->ports[i]->mode !=
				    CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS)
					continue;
				if (grow_array((void **)&ports, &ports_cap, np + 1,
					       sizeof *ports))
					goto out;
				ports[np++] = svc->ports[i];
				e->n_ports++;
			}
		}
		svc_ptrs[ns++] = e;
	}
	/* ports may have moved while growing: point again */
	for (size_t i = 0, at = 0; i < ns; i++) {
		svcs[i].ports = svcs[i].n_ports ? &ports[at] : NULL;
		at += svcs[i].n_ports;
	}
	s.n_services = ns;
	s.services = svc_ptrs;
	len = cs__network_state__get_packed_size(&s);
	buf = malloc(len ? len : 1);
	if (!buf)
		goto out;
	cs__network_state__pack(&s, buf);
	out->network_id = net->id;
	out->digest = hash_mix64(hash_fnv(HASH_FNV_OFFSET, buf, len)) | 1;
	out->st = cs__network_state__unpack(NULL, len, buf);
	rv = out->st ? 0 : CS_ENOMEM;
out:
	free(buf);
	free(ports);
	free(backends);
	free(svc_ptrs);
	free(svcs);
	free(by_svc);
	free(ep_ptrs);
	free(eps);
	return rv;
}

/* Rebuilds the state of every network from the store (see above).
 * Returns 0, or CS_ENOMEM with the old cache kept. */
static int disp_net_rebuild(struct dispatcher *d)
{
	const struct store *st = leader_store(d->ctx);
	struct disp_net_rec *recs = NULL;
	struct disp_net_vip *vips = NULL;
	struct disp_net *nets = NULL;
	size_t nr = 0, rcap = 0, nvip = 0, vcap = 0, nn = 0, ncap = 0, ri = 0, vi = 0;
	int rv = CS_ENOMEM;

	for (const Cs__Task *t = store_task_next(st, NULL); t;
	     t = store_task_next(st, t)) {
		const Cs__Node *node;
		char ip[LIMIT_ADDR_BYTES_MAX];
		if (!disp_net_live(st, t, &node))
			continue;
		disp_node_underlay(d, node, ip);
		for (size_t i = 0; i < t->n_networks; i++) {
			struct disp_net_rec *r;
			if (grow_array((void **)&recs, &rcap, nr + 1, sizeof *recs))
				goto out;
			r = &recs[nr++];
			memset(r, 0, sizeof *r);
			r->network_id = t->networks[i]->network_id;
			r->service_id = t->service_id;
			r->task_id = t->id;
			r->node_id = t->node_id;
			disp_cut(r->addr, sizeof r->addr, t->networks[i]->addr);
			memcpy(r->node_ip, ip, sizeof r->node_ip);
			r->backend =
				t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING &&
				t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING;
		}
	}
	/* the routing mesh: each node's own ingress address is an endpoint of
	 * the ingress network (a node SNATs mesh traffic to its own; the
	 * backends' answers go to it through the others' entries) */
	for (const Cs__Node *node = store_node_next(st, NULL); node;
	     node = store_node_next(st, node)) {
		struct disp_net_rec *r;
		char ip[LIMIT_ADDR_BYTES_MAX];
		if (!node->ingress || !node->ingress->network_id ||
		    !node->ingress->addr || !node->ingress->addr[0] ||
		    node->state == CS__NODE_STATE__NODE_STATE_DOWN)
			continue;
		disp_node_underlay(d, node, ip);
		if (grow_array((void **)&recs, &rcap, nr + 1, sizeof *recs))
			goto out;
		r = &recs[nr++];
		memset(r, 0, sizeof *r);
		r->network_id = node->ingress->network_id;
		r->task_id = node->id;
		r->node_id = node->id;
		r->node_ingress = true;
		disp_cut(r->addr, sizeof r->addr, node->ingress->addr);
		memcpy(r->node_ip, ip, sizeof r->node_ip);
	}
	for (const Cs__Service *svc = store_service_next(st, NULL); svc;
	     svc = store_service_next(st, svc)) {
		for (size_t i = 0; i < svc->n_vips; i++) {
			if (grow_array((void **)&vips, &vcap, nvip + 1, sizeof *vips))
				goto out;
			vips[nvip].network_id = svc->vips[i]->network_id;
			vips[nvip].svc = svc;
			disp_cut(vips[nvip].vip, sizeof vips[nvip].vip,
				 svc->vips[i]->addr);
			nvip++;
		}
	}
	if (nr)
		qsort(recs, nr, sizeof *recs, disp_rec_cmp);
	if (nvip)
		qsort(vips, nvip, sizeof *vips, disp_vip_cmp);
	for (const Cs__Network *net = store_network_next(st, NULL); net;
	     net = store_network_next(st, net)) {
		size_t r0, v0;
		while (ri < nr && recs[ri].network_id < net->id)
			ri++;
		while (vi < nvip && vips[vi].network_id < net->id)
			vi++;
		for (r0 = ri; ri < nr && recs[ri].network_id == net->id;)
			ri++;
		for (v0 = vi; vi < nvip && vips[vi].network_id == net->id;)
			vi++;
		if (ri == r0 && vi == v0)
			continue; /* nothing on it: no node needs it */
		if (grow_array((void **)&nets, &ncap, nn + 1, sizeof *nets))
			goto out;
		memset(&nets[nn], 0, sizeof nets[nn]);
		/* (no arithmetic on a NULL array: none of either kind) */
		if (disp_net_build_one(st, net, recs ? &recs[r0] : NULL, ri - r0,
				       vips ? &vips[v0] : NULL, vi - v0, &nets[nn]))
			goto out;
		nn++;
	}
	disp_net_keep_prev(d, nets, nn);
	disp_net_cache_free(d);
	d->nets = nets;
	d->net_count = nn;
	nets = NULL;
	nn = 0;
	d->nets_dirty = false;
	d->net_builds++;
	rv = 0;
out:
	for (size_t i = 0; i < nn; i++)
		disp_net_entry_free(&nets[i]);
	free(nets);
	free(vips);
	free(recs);
	return rv;
}

static int disp_ep_task_cmp(const void *a, const void *b)
{
	uint64_t x = (*(Cs__NetworkEndpoint *const *)a)->task_id,
		 y = (*(Cs__NetworkEndpoint *const *)b)->task_id;
	return x < y ? -1 : x > y;
}

/* Whether two messages pack to the same bytes. */
static bool disp_same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t la = protobuf_c_message_get_packed_size(a),
	       lb = protobuf_c_message_get_packed_size(b);
	uint8_t *x, *y;
	bool same;
	if (la != lb)
		return false;
	x = malloc(la ? la : 1);
	y = malloc(lb ? lb : 1);
	if (!x || !y) {
		free(x);
		free(y);
		return false;
	}
	protobuf_c_message_pack(a, x);
	protobuf_c_message_pack(b, y);
	same = memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return same;
}

/* Whether services a and b differ in their backends alone. */
static bool disp_svc_backends_only(const Cs__NetworkService *a,
				   const Cs__NetworkService *b)
{
	Cs__NetworkService x = *a, y = *b;
	x.n_backends = y.n_backends = 0;
	x.backends = y.backends = NULL;
	return disp_same_packed(&x.base, &y.base);
}

/* Makes *out b's entry as a backend delta from a (both ascending): the
 * added in out->backends, the removed in out->removed_backends, their
 * pointers at *addrs (advanced; room for a's and b's counts). Returns
 * whether that is smaller than b's whole list. */
static bool disp_svc_backend_delta(const Cs__NetworkService *a,
				   const Cs__NetworkService *b, Cs__NetworkService *out,
				   char ***addrs)
{
	size_t ia = 0, ib = 0, nadd = 0, nrm = 0;
	char **add = *addrs, **rm;
	/* added first, then removed, in the same room */
	while (ia < a->n_backends || ib < b->n_backends) {
		int c = ia == a->n_backends ? 1
			: ib == b->n_backends
				? -1
				: disp_addr_cmp(a->backends[ia], b->backends[ib]);
		if (c < 0)
			ia++;
		else if (c > 0)
			add[nadd++] = b->backends[ib++];
		else
			ia++, ib++;
	}
	rm = add + nadd;
	ia = ib = 0;
	while (ia < a->n_backends || ib < b->n_backends) {
		int c = ia == a->n_backends ? 1
			: ib == b->n_backends
				? -1
				: disp_addr_cmp(a->backends[ia], b->backends[ib]);
		if (c < 0)
			rm[nrm++] = a->backends[ia++];
		else if (c > 0)
			ib++;
		else
			ia++, ib++;
	}
	if (nadd + nrm >= b->n_backends)
		return false;
	*out = *b;
	out->backends_delta = true;
	out->backends = add;
	out->n_backends = nadd;
	out->removed_backends = rm;
	out->n_removed_backends = nrm;
	*addrs = rm + nrm;
	return true;
}

/* Makes n's change from prev to st (once per state): endpoints by task
 * id, services by service id (one whose backends alone changed as a
 * backend delta, when smaller). Returns whether there is one worth sending
 * (prev held, the network's own fields unchanged, the change smaller than
 * half the whole state and than a part). */
static bool disp_net_delta(struct disp_net *n)
{
	const Cs__NetworkState *a = n->prev, *b = n->st;
	Cs__NetworkEndpoint **pa = NULL, **pb = NULL;
	size_t ia = 0, ib = 0, ne = 0, nre = 0, ns = 0, nrs = 0;

	if (n->delta_made)
		return n->delta_ok;
	n->delta_made = true;
	n->delta_ok = false;
	if (!a || !disp_str_same(a->name, b->name) || a->vni != b->vni ||
	    !disp_str_same(a->subnet, b->subnet) ||
	    !disp_str_same(a->gateway, b->gateway) || a->internal != b->internal ||
	    a->ingress != b->ingress || a->encrypted != b->encrypted)
		return false;
	pa = malloc((a->n_endpoints ? a->n_endpoints : 1) * sizeof *pa);
	pb = malloc((b->n_endpoints ? b->n_endpoints : 1) * sizeof *pb);
	n->d_eps = malloc((b->n_endpoints ? b->n_endpoints : 1) * sizeof *n->d_eps);
	n->d_rm_eps = malloc((a->n_endpoints ? a->n_endpoints : 1) * sizeof *n->d_rm_eps);
	n->d_svcs = malloc((b->n_services ? b->n_services : 1) * sizeof *n->d_svcs);
	n->d_rm_svcs = malloc((a->n_services ? a->n_services : 1) * sizeof *n->d_rm_svcs);
	n->d_bsvcs = calloc(b->n_services ? b->n_services : 1, sizeof *n->d_bsvcs);
	{
		size_t room = 1;
		for (size_t i = 0; i < a->n_services; i++)
			room += a->services[i]->n_backends;
		for (size_t i = 0; i < b->n_services; i++)
			room += b->services[i]->n_backends;
		n->d_baddrs = malloc(room * sizeof *n->d_baddrs);
	}
	if (!pa || !pb || !n->d_eps || !n->d_rm_eps || !n->d_svcs || !n->d_rm_svcs ||
	    !n->d_bsvcs || !n->d_baddrs)
		goto out;
	if (a->n_endpoints)
		memcpy(pa, a->endpoints, a->n_endpoints * sizeof *pa);
	if (b->n_endpoints)
		memcpy(pb, b->endpoints, b->n_endpoints * sizeof *pb);
	if (a->n_endpoints)
		qsort(pa, a->n_endpoints, sizeof *pa, disp_ep_task_cmp);
	if (b->n_endpoints)
		qsort(pb, b->n_endpoints, sizeof *pb, disp_ep_task_cmp);
	while (ia < a->n_endpoints || ib < b->n_endpoints) {
		if (ib == b->n_endpoints ||
		    (ia < a->n_endpoints && pa[ia]->task_id < pb[ib]->task_id)) {
			n->d_rm_eps[nre++] = pa[ia++]->task_id;
		} else if (ia == a->n_endpoints || pb[ib]->task_id < pa[ia]->task_id) {
			n->d_eps[ne++] = pb[ib++];
		} else {
			if (!disp_same_packed(&pa[ia]->base, &pb[ib]->base))
				n->d_eps[ne++] = pb[ib];
			ia++;
			ib++;
		}
	}
	ia = ib = 0;
	char **baddrs = n->d_baddrs;
	size_t nb = 0;
	while (ia < a->n_services || ib < b->n_services) {
		if (ib == b->n_services ||
		    (ia < a->n_services &&
		     a->services[ia]->service_id < b->services[ib]->service_id)) {
			n->d_rm_svcs[nrs++] = a->services[ia++]->service_id;
		} else if (ia == a->n_services ||
			   b->services[ib]->service_id < a->services[ia]->service_id) {
			n->d_svcs[ns++] = b->services[ib++];
		} else {
			const Cs__NetworkService *x = a->services[ia],
						 *y = b->services[ib];
			if (!disp_same_packed(&x->base, &y->base)) {
				Cs__NetworkService *bd = &n->d_bsvcs[nb];
				if (disp_svc_backends_only(x, y) &&
				    disp_svc_backend_delta(x, y, bd, &baddrs)) {
					n->d_svcs[ns++] = bd;
					nb++;
				} else {
					n->d_svcs[ns++] = b->services[ib];
				}
			}
			ia++;
			ib++;
		}
	}
	n->delta_backends = nb > 0;
	n->delta = *b;
	n->delta.endpoints = n->d_eps;
	n->delta.n_endpoints = ne;
	n->delta.services = n->d_svcs;
	n->delta.n_services = ns;
	n->delta.removed_endpoints = n->d_rm_eps;
	n->delta.n_removed_endpoints = nre;
	n->delta.removed_services = n->d_rm_svcs;
	n->delta.n_removed_services = nrs;
	n->delta.base_digest = n->prev_digest;
	n->delta.digest = n->digest;
	{
		size_t bytes = cs__network_state__get_packed_size(&n->delta);
		n->delta_ok = bytes <= DISP_ASSIGN_BYTES_MAX &&
			      2 * bytes < cs__network_state__get_packed_size(b);
	}
out:
	free(pa);
	free(pb);
	return n->delta_ok;
}

static const struct disp_net *disp_net_get(const struct dispatcher *d, uint64_t id)
{
	size_t lo = 0, hi = d->net_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->nets[mid].network_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->net_count && d->nets[lo].network_id == id ? &d->nets[lo] : NULL;
}

size_t dispatcher_net_part(const Cs__NetworkState *whole, size_t budget_bytes,
			   size_t *ep_index, size_t *svc_index, Cs__NetworkState *out)
{
	size_t bytes = 0;

	*out = *whole;
	out->endpoints = whole->endpoints + *ep_index;
	out->n_endpoints = 0;
	while (*ep_index < whole->n_endpoints) {
		size_t one = cs__network_endpoint__get_packed_size(
				     whole->endpoints[*ep_index]) +
			     DISP_FIELD_OVERHEAD_BYTES;
		if (out->n_endpoints && bytes + one > budget_bytes)
			break;
		bytes += one;
		out->n_endpoints++;
		(*ep_index)++;
	}
	out->services = whole->services + *svc_index;
	out->n_services = 0;
	while (*ep_index == whole->n_endpoints && *svc_index < whole->n_services) {
		size_t one = cs__network_service__get_packed_size(
				     whole->services[*svc_index]) +
			     DISP_FIELD_OVERHEAD_BYTES;
		if ((out->n_endpoints || out->n_services) && bytes + one > budget_bytes)
			break;
		bytes += one;
		out->n_services++;
		(*svc_index)++;
	}
	out->more = *ep_index < whole->n_endpoints || *svc_index < whole->n_services;
	return bytes;
}

/* Sends s network n's state, in parts when it does not fit a frame. */
static void disp_net_send(struct dispatcher *d, struct disp_session *s,
			  const struct disp_net *n)
{
	size_t ei = 0, si = 0;
	uint32_t part = 0;
	Cs__NetworkState whole = *n->st;

	whole.session_id = s->session_id;
	whole.digest = n->digest;
	whole.removed = false;
	do {
		Cs__Wire wire = CS__WIRE__INIT;
		Cs__NetworkState p;
		dispatcher_net_part(&whole, DISP_ASSIGN_BYTES_MAX, &ei, &si, &p);
		p.part = part++;
		wire.network_state = &p;
		disp_send(d, s->conn, &wire);
	} while (ei < whole.n_endpoints || si < whole.n_services);
}

static void disp_net_send_removed(struct dispatcher *d, struct disp_session *s,
				  uint64_t network_id)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__NetworkState p = CS__NETWORK_STATE__INIT;
	p.session_id = s->session_id;
	p.network_id = network_id;
	p.removed = true;
	wire.network_state = &p;
	disp_send(d, s->conn, &wire);
}

/* The ingress network when some service publishes a port on it (0: none):
 * every node needs it then, tasks of its own or not, for a published
 * port answers on every node (the routing mesh). */
static uint64_t disp_net_mesh(const struct dispatcher *d)
{
	for (size_t i = 0; i < d->net_count; i++) {
		const Cs__NetworkState *st = d->nets[i].st;
		if (!st->ingress)
			continue;
		for (size_t j = 0; j < st->n_services; j++)
			if (st->services[j]->n_ports)
				return d->nets[i].network_id;
	}
	return 0;
}

/* The networks s's node needs (its assigned tasks attach to, and the
 * routing mesh's), ascending, without duplicates, in *ids (the caller
 * frees). Returns the count, or SIZE_MAX when out of memory. */
static size_t disp_net_needed(struct dispatcher *d, const struct disp_session *s,
			      uint64_t **ids)
{
	const struct store *st = leader_store(d->ctx);
	size_t n = 0, cap = 0, k = 0;
	uint64_t mesh = disp_net_mesh(d);

	*ids = NULL;
	if (mesh) {
		if (grow_array((void **)ids, &cap, 1, sizeof **ids))
			return SIZE_MAX;
		(*ids)[n++] = mesh;
	}
	for (const Cs__Task *t = store_task_next_by_node(st, s->node_id, NULL); t;
	     t = store_task_next_by_node(st, s->node_id, t)) {
		if (!t->n_networks || !dispatcher_is_assigned(t))
			continue;
		for (size_t i = 0; i < t->n_networks; i++) {
			if (grow_array((void **)ids, &cap, n + 1, sizeof **ids)) {
				free(*ids);
				*ids = NULL;
				return SIZE_MAX;
			}
			(*ids)[n++] = t->networks[i]->network_id;
		}
	}
	if (!n)
		return 0;
	qsort(*ids, n, sizeof **ids, sort_u64_cmp);
	for (size_t i = 0; i < n; i++)
		if (!k || (*ids)[k - 1] != (*ids)[i])
			(*ids)[k++] = (*ids)[i];
	return k;
}

/* Brings s up to date: each network it needs whose state differs from what
 * it was last sent goes again; each it was sent and needs no more goes as
 * removed. Returns false when out of memory (nothing done). */
static bool disp_net_sync(struct dispatcher *d, struct disp_session *s)
{
	uint64_t *need;
	size_t n = disp_net_needed(d, s, &need), k = 0, j = 0;
	struct disp_net_sent *sent;
	ms_t now = d->env->ops->now_ms(d->env);

	if (n == SIZE_MAX)
		return false;
	sent = calloc(n ? n : 1, sizeof *sent);
	if (!sent) {
		free(need);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct disp_net *net = disp_net_get(d, need[i]);
		for (; j < s->net_count && s->nets[j].network_id < need[i]; j++)
			disp_net_send_removed(d, s, s->nets[j].network_id);
		sent[k].network_id = need[i];
		if (j < s->net_count && s->nets[j].network_id == need[i])
			sent[k] = s->nets[j++];
		if (net && sent[k].digest != net->digest) {
			struct disp_net *mut = (struct disp_net *)net;
			/* an agent that did not say it merges backend
			 * deltas (an older version would take the added
			 * as the whole list) gets the whole state */
			if (sent[k].digest && sent[k].digest == net->prev_digest &&
			    disp_net_delta(mut) &&
			    (s->backend_deltas || !mut->delta_backends)) {
				/* it holds the state before: the change only */
				Cs__Wire wire = CS__WIRE__INIT;
				Cs__NetworkState p = mut->delta;
				p.session_id = s->session_id;
				wire.network_state = &p;
				disp_send(d, s->conn, &wire);
			} else {
				disp_net_send(d, s, net);
			}
			sent[k].digest = net->digest;
			sent[k].at_ms = now;
		}
		k++;
	}
	for (; j < s->net_count; j++)
		disp_net_send_removed(d, s, s->nets[j].network_id);
	free(s->nets);
	s->nets = sent;
	s->net_count = k;
	free(need);
	return true;
}

/* ---------------------------------------------------------------- network keys
 *
 * Issue 17 (SwarmKit's SessionMessage.NetworkBootstrapKeys): the key
 * manager's keys go to every node that is READY in the store, over its
 * session only: when they change (the next flush), when a session opens,
 * and again when a heartbeat says the agent holds others. Never logged. */

static uint64_t disp_keys_digest_of(const Cs__Cluster *c)
{
	struct keymgr_keys k;
	uint64_t v;

	keymgr_cluster_keys(c, &k);
	v = keymgr_digest(k.v, k.count);
	keymgr_keys_wipe(&k);
	return v;
}

/* Sends the store's keys to s's node when it is READY and was not sent
 * them yet. */
static void disp_keys_send(struct dispatcher *d, struct disp_session *s)
{
	const struct store *st = leader_store(d->ctx);
	const Cs__Cluster *c = store_cluster(st);
	const Cs__Node *n = store_node_get(st, s->node_id);
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__NetworkKeys m = CS__NETWORK_KEYS__INIT;

	if (!d->keys_digest || s->keys_sent == d->keys_digest || !s->session_id || !n ||
	    n->state != CS__NODE_STATE__NODE_STATE_READY || !keymgr_valid(c))
		return;
	m.session_id = s->session_id;
	m.n_keys = c->n_network_keys;
	m.keys = c->network_keys;
	wire.network_keys = &m;
	disp_send(d, s->conn, &wire);
	s->keys_sent = d->keys_digest;
}

static void disp_keys_push(struct dispatcher *d)
{
	if (!d->keys_push)
		return;
	d->keys_push = false;
	for (size_t i = 0; i < d->session_count; i++)
		if (d->sessions[i].session_id)
			disp_keys_send(d, &d->sessions[i]);
}

/* The cluster's keys changed, or a node became READY: the sessions are
 * sent what they miss at the next flush. */
static void disp_keys_on_event(struct dispatcher *d, const struct store_event *ev)
{
	if (ev->table == STORE_CLUSTER) {
		uint64_t v = disp_keys_digest_of((const Cs__Cluster *)ev->new_obj);
		if (v == d->keys_digest)
			return;
		d->keys_digest = v;
	} else if (ev->table == STORE_NODE) {
		const Cs__Node *o = (const Cs__Node *)ev->old_obj,
			       *n = (const Cs__Node *)ev->new_obj;
		if (!d->keys_digest || !n ||
		    n->state != CS__NODE_STATE__NODE_STATE_READY ||
		    (o && o->state == n->state))
			return;
	} else {
		return;
	}
	d->keys_push = true;
	disp_net_arm(d);
}

static void disp_net_flush(struct env *env, env_timer_id id, void *data)
{
	struct dispatcher *d = data;
	bool all;
	(void)env;
	(void)id;
	d->net_timer = 0;
	if (d->stopped)
		return;
	disp_keys_push(d);
	all = d->nets_dirty;
	if (d->nets_dirty && disp_net_rebuild(d)) {
		disp_net_arm(d); /* out of memory: again later */
		return;
	}
	/* states built again: every session may need them; else only those
	 * marked (issue 18: a new leader's thousands of new sessions each
	 * built every state from every task again, and synced every session,
	 * ten times a second) */
	for (size_t i = 0; i < d->session_count; i++) {
		struct disp_session *s = &d->sessions[i];
		if (!s->session_id || !(all || s->net_due))
			continue;
		s->net_due = !disp_net_sync(d, s);
		if (s->net_due)
			disp_net_arm(d); /* out of memory: again later */
	}
}

static void disp_net_arm(struct dispatcher *d)
{
	if (!d->net_timer && !d->dying && !d->stopped)
		d->env->ops->timer_start(d->env, DISP_NET_FLUSH_MS, 0, disp_net_flush, d,
					 &d->net_timer);
}

/* What a store event means for the network states: they are built again
 * at the next flush when it may change one. */
static void disp_net_on_event(struct dispatcher *d, const struct store_event *ev)
{
	bool dirty = false;
	switch (ev->table) {
	case STORE_TASK: {
		const Cs__Task *o = (const Cs__Task *)ev->old_obj,
			       *n = (const Cs__Task *)ev->new_obj;
		dirty = (o && o->n_networks) || (n && n->n_networks);
		break;
	}
	case STORE_SERVICE: {
		const Cs__Service *o = (const Cs__Service *)ev->old_obj,
				  *n = (const Cs__Service *)ev->new_obj;
		dirty = (o && (o->n_vips || (o->spec && o->spec->n_networks))) ||
			(n && (n->n_vips || (n->spec && n->spec->n_networks)));
		break;
	}
	case STORE_NODE: {
		const Cs__Node *o = (const Cs__Node *)ev->old_obj,
			       *n = (const Cs__Node *)ev->new_obj;
		dirty = !o || !n || o->state != n->state ||
			!disp_str_same(o->addr, n->addr) ||
			/* the routing mesh: its own ingress address */
			!o->ingress != !n->ingress ||
			(o->ingress && n->ingress &&
			 !disp_str_same(o->ingress->addr, n->ingress->addr));
		break;
	}
	case STORE_NETWORK: dirty = true; break;
	default: break;
	}
	if (dirty) {
		d->nets_dirty = true;
		disp_net_arm(d);
	}
}

/* A heartbeat said which network states the agent holds whole: those that
 * differ from what it was sent, sent a while ago, are lost; they go again
 * at the next flush. */
static void disp_net_heard(struct dispatcher *d, struct disp_session *s,
			   const Cs__Heartbeat *h)
{
	ms_t now = d->env->ops->now_ms(d->env);
	bool again = false;
	size_t k = 0;

	for (size_t i = 0; i < s->net_count; i++) {
		struct disp_net_sent *e = &s->nets[i];
		uint64_t have = 0;
		for (size_t j = 0; j < h->n_net_digests; j++)
			if (h->net_digests[j]->network_id == e->network_id)
				have = h->net_digests[j]->digest;
		if (have != e->digest && now - e->at_ms >= d->heartbeat_ms) {
			e->digest = 0;
			again = true;
		}
	}
	/* networks it holds that it was not sent (a new leader): removed */
	for (size_t j = 0; j < h->n_net_digests; j++) {
		uint64_t id = h->net_digests[j]->network_id;
		bool known = false;
		for (size_t i = 0; i < s->net_count && !known; i++)
			known = s->nets[i].network_id == id;
		if (!known && k++ < LIMIT_NETWORKS_MAX)
			again = true;
	}
	if (again) {
		if (k) {
			/* make them known with digest 0: the sync removes or
			 * sends them */
			struct disp_net_sent *v = s->nets;
			size_t cap = s->net_count;
			for (size_t j = 0; j < h->n_net_digests; j++) {
				uint64_t id = h->net_digests[j]->network_id;
				bool known = false;
				for (size_t i = 0; i < s->net_count && !known; i++)
					known = v[i].network_id == id;
				if (known)
					continue;
				if (grow_array((void **)&v, &cap, s->net_count + 1,
					       sizeof *v))
					break;
				memset(&v[s->net_count], 0, sizeof *v);
				v[s->net_count++].network_id = id;
				s->nets = v;
			}
			s->nets = v;
			qsort(s->nets, s->net_count, sizeof *s->nets, sort_u64_cmp);
		}
		s->net_due = true;
		disp_net_arm(d);
	}
}

/* ---------------------------------------------------------------- status */

static void disp_status_flush(struct env *env, env_timer_id id, void *data);

static size_t disp_map_home(const struct disp_map *f, uint64_t task_id)
{
	return (size_t)hash_mix64(task_id) & f->mask;
}

/* The slot of task_id, or of the empty slot where it would go (the table
 * has one: it is at most half full). */
static struct disp_map_slot *disp_map_slot(const struct disp_map *f, uint64_t task_id)
{
	size_t i = disp_map_home(f, task_id);

	assert(f->mask != 0);
	while (f->slots[i].used && f->slots[i].task_id != task_id)
		i = (i + 1) & f->mask;
	return &f->slots[i];
}

/* Whether f holds task_id, its value in *v. */
static bool disp_map_get(const struct disp_map *f, uint64_t task_id, uint32_t *v)
{
	const struct disp_map_slot *sl;

	if (f->count == 0)
		return false;
	sl = disp_map_slot(f, task_id);
	if (sl->used)
		*v = sl->value;
	return sl->used;
}

/* Sets task_id's value to v in f (added or replaced). Returns 0 or
 * CS_ENOMEM (nothing changed). */
static int disp_map_set(struct disp_map *f, uint64_t task_id, uint32_t v)
{
	struct disp_map_slot *sl;

	if ((f->count + 1) * 2 > f->mask + 1 || f->mask == 0) {
		size_t cap = f->mask ? (f->mask + 1) * 2 : 1024;
		struct disp_map g = {calloc(cap, sizeof *g.slots), cap - 1, 0};
		if (!g.slots)
			return CS_ENOMEM;
		for (size_t i = 0; f->mask && i <= f->mask; i++)
			if (f->slots[i].used) {
				*disp_map_slot(&g, f->slots[i].task_id) = f->slots[i];
				g.count++;
			}
		free(f->slots);
		*f = g;
	}
	sl = disp_map_slot(f, task_id);
	if (!sl->used) {
		sl->used = true;
		sl->task_id = task_id;
		f->count++;
	}
	sl->value = v;
	return 0;
}

/* Removes task_id from f, if there (backward-shift delete). */
static void disp_map_del(struct disp_map *f, uint64_t task_id)
{
	struct disp_map_slot *sl;
	size_t i, j;

	if (f->count == 0)
		return;
	sl = disp_map_slot(f, task_id);
	if (!sl->used)
		return;
	i = (size_t)(sl - f->slots);
	f->slots[i].used = false;
	f->count--;
	for (j = (i + 1) & f->mask; f->slots[j].used; j = (j + 1) & f->mask) {
		size_t home = disp_map_home(f, f->slots[j].task_id);
		/* j's entry may move to the hole at i when its home is not in
		 * the cyclic range (i, j] */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			f->slots[i] = f->slots[j];
			f->slots[j].used = false;
			i = j;
		}
	}
}

/* The latest state a write in flight carries for task_id (0: none). */
static uint32_t disp_inflight_state(const struct disp_map *f, uint64_t task_id)
{
	uint32_t state;
	return disp_map_get(f, task_id, &state) ? state : 0;
}

/* Records that a write in flight carries state for task_id (a later
 * state than any other write in flight does). Returns 0 or CS_ENOMEM. */
static int disp_inflight_put(struct disp_map *f, uint64_t task_id, uint32_t state)
{
	assert(state > disp_inflight_state(f, task_id));
	return disp_map_set(f, task_id, state);
}

/* A write carrying state for task_id was answered: forgets the task unless
 * a later write in flight carries a later state. */
static void disp_inflight_done(struct disp_map *f, uint64_t task_id, uint32_t state)
{
	if (disp_inflight_state(f, task_id) == state)
		disp_map_del(f, task_id);
}

/* Queues the reports of u (from a live session) for the next status
 * write. Stale ones are acknowledged at once so the agent stops sending. */
static void disp_on_status(struct dispatcher *d, struct disp_session *s,
			   const Cs__StatusUpdate *u)
{
	for (size_t i = 0; i < u->n_tasks && i < LIMIT_STORE_BATCH_ACTIONS; i++) {
		const Cs__Task *t = u->tasks[i];
		struct disp_report *r;
		uint32_t at;
		if (!t->status)
			continue;
		if (disp_map_get(&d->queued, t->id, &at)) {
			/* queued already: the later report replaces it (the
			 * agent's resend of what is not yet acknowledged) */
			assert(at < d->report_count && d->reports[at].task_id == t->id);
			r = &d->reports[at];
			d->reports_replaced++;
		} else {
			if (grow_array((void **)&d->reports, &d->report_cap,
				       d->report_count + 1, sizeof *d->reports) ||
			    disp_map_set(&d->queued, t->id, (uint32_t)d->report_count))
				return;
			r = &d->reports[d->report_count++];
		}
		memset(r, 0, sizeof *r);
		r->task_id = t->id;
		r->node_id = s->node_id;
		r->session_id = s->session_id;
		r->state = t->status->state;
		r->exit_code = t->status->exit_code;
		r->timestamp_ms = t->status->timestamp_ms;
		if (t->status->message)
			str_copy(r->message, sizeof r->message, t->status->message);
	}
	if (!d->status_timer && !d->dying)
		d->env->ops->timer_start(d->env, DISP_STATUS_FLUSH_MS, 0,
					 disp_status_flush, d, &d->status_timer);
}

static struct disp_ack disp_ack_of(const struct disp_report *r)
{
	struct disp_ack a = {r->task_id, r->node_id, (uint32_t)r->state};
	return a;
}

/* Orders acks by node, then by arrival (the acks' grouping). */
static int disp_ack_node_cmp(const void *ctx, uint32_t x, uint32_t y)
{
	const struct disp_ack *v = ctx;
	if (v[x].node_id != v[y].node_id)
		return v[x].node_id < v[y].node_id ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* Acknowledges the n reports of v (borrowed), each with its own state: one
 * StatusAck per node (per DISP_ACK_IDS_MAX of its tasks), not a frame per
 * task (issue 18: a write of 10,000 reports sent 10,000 frames). Nodes
 * without a live session are skipped. */
static void disp_ack_reports(struct dispatcher *d, const struct disp_ack *v, size_t n)
{
	uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
	uint32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
	uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
	uint32_t *states = malloc((n ? n : 1) * sizeof *states);

	if (!idx || !tmp || !ids || !states)
		goto out; /* unacknowledged: the agents send them again */
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	sort_u32(idx, tmp, n, disp_ack_node_cmp, v);
	for (size_t k = 0; k < n;) {
		uint64_t node = v[idx[k]].node_id;
		struct disp_session *s = disp_session(d, node);
		size_t m = 0;
		for (; k < n && v[idx[k]].node_id == node && m < DISP_ACK_IDS_MAX; k++) {
			ids[m] = v[idx[k]].task_id;
			states[m++] = (uint32_t)v[idx[k]].state;
		}
		if (s && s->session_id) {
			Cs__Wire wire = CS__WIRE__INIT;
			Cs__StatusAck ack = CS__STATUS_ACK__INIT;
			ack.session_id = s->session_id;
			ack.n_task_ids = m;
			ack.task_ids = ids;
			ack.n_states = m;
			ack.states = states;
			wire.status_ack = &ack;
			disp_send(d, s->conn, &wire);
			d->ack_frames++;
		}
	}
out:
	free(idx);
	free(tmp);
	free(ids);
	free(states);
}

/* Sends the acks held, and stops their timer. */
static void disp_ack_held(struct dispatcher *d)
{
	if (d->ack_timer) {
		d->env->ops->timer_stop(d->env, d->ack_timer);
		d->ack_timer = 0;
	}
	disp_ack_reports(d, d->held, d->held_count);
	d->held_count = 0;
}

static void disp_ack_timer(struct env *env, env_timer_id id, void *data)
{
	struct dispatcher *d = data;
	(void)env;
	(void)id;
	d->ack_timer = 0;
	if (!d->stopped)
		disp_ack_held(d);
}

/* A status write committed with the n acks of v (borrowed; n is 0 for a
 * write that failed). Issue 18: its acks went at once, one StatusAck per
 * node per write, and at scale writes commit close together (the reports
 * of a burst fill several writes, proposed back to back): an agent got
 * an ack frame per write. They are held while another status write is in
 * flight or reports are queued for one, at most DISP_ACK_HOLD_MS, and go
 * together: one StatusAck per node (a task may be in it twice, with two
 * states: the agent keeps the highest). An ack only stops the agent's
 * resends, so a hold far under its resend delay changes nothing else. */
static void disp_ack_committed(struct dispatcher *d, const struct disp_ack *v, size_t n)
{
	if (n && grow_array((void **)&d->held, &d->held_cap, d->held_count + n,
			    sizeof *d->held)) {
		disp_ack_reports(d, v, n); /* out of memory: these now, alone */
		n = 0;
	}
	if (n) {
		memcpy(d->held + d->held_count, v, n * sizeof *v);
		d->held_count += n;
	}
	if (!d->held_count)
		return;
	if (d->status_writes_in_flight == 0 && d->report_count == 0) {
		disp_ack_held(d);
		return;
	}
	if (!d->ack_timer && !d->dying)
		d->env->ops->timer_start(d->env, DISP_ACK_HOLD_MS, 0, disp_ack_timer, d,
					 &d->ack_timer);
	assert(d->held_count > 0);
}

/* One write with every queued report that moves a task forward (one a
 * task: the latest, disp_on_status), up to DISP_STATUS_BYTES_MAX encoded: the rest stays queued for the
 * next flush, right after. Each is a compact status report (issue 18:
 * store_batch_status_report, which no other write in flight can make
 * refuse the batch, where a full task update carried the version read
 * here); a report a write in flight already carries (an agent's resend)
 * is not written again: that write's commit acknowledges it. */
static void disp_status_flush(struct env *env, env_timer_id id, void *data)
{
	struct dispatcher *d = data;
	const struct store *st = leader_store(d->ctx);
	struct store_batch b;
	struct disp_write *w = calloc(1, sizeof *w);
	size_t n = d->report_count, done = 0, stale_count = 0, inflight = 0;
	struct disp_ack *stale = malloc((n ? n : 1) * sizeof *stale);

	(void)env;
	(void)id;
	d->status_timer = 0;
	if (!w || !stale)
		goto fail;
	w->d = d;
	w->status = true;
	w->acks = calloc(n ? n : 1, sizeof *w->acks);
	if (!w->acks)
		goto fail;
	store_batch_init(&b);
	for (; done < n && store_batch_bytes(&b) < DISP_STATUS_BYTES_MAX; done++) {
		struct disp_report *r = &d->reports[done];
		const Cs__Task *cur = store_task_get(st, r->task_id);
		struct disp_session *s = disp_session(d, r->node_id);

		if (!cur || !s || s->session_id != r->session_id ||
		    cur->node_id != r->node_id || !cur->status ||
		    r->state <= cur->status->state) {
			/* stale: an old session, another node's task, or no news */
			stale[stale_count++] = disp_ack_of(r);
			continue;
		}
		if ((uint32_t)r->state <= disp_inflight_state(&d->inflight, r->task_id)) {
			inflight++;
			continue;
		}
		if (store_batch_status_report(&b, r->task_id, r->node_id, r->state,
					      r->exit_code, r->timestamp_ms, r->message))
			break;
		w->acks[w->ack_count++] = disp_ack_of(r);
	}
	d->reports_stale += stale_count;
	d->reports_inflight += inflight;
	disp_ack_reports(d, stale, stale_count);
	free(stale);
	stale = NULL;
	/* what did not fit waits for the next flush (one report a task:
	 * the queue's index of each moves with it) */
	for (size_t i = 0; i < done; i++)
		disp_map_del(&d->queued, d->reports[i].task_id);
	memmove(d->reports, d->reports + done, (n - done) * sizeof *d->reports);
	d->report_count = n - done;
	for (size_t i = 0; i < d->report_count; i++) {
		int rv = disp_map_set(&d->queued, d->reports[i].task_id, (uint32_t)i);
		assert(rv == 0); /* replaced in place: no growth */
		(void)rv;
	}
	if (d->report_count && !d->status_timer && !d->dying)
		d->env->ops->timer_start(d->env, 0, 0, disp_status_flush, d,
					 &d->status_timer);
	env_logf(d->env, ENV_LOG_DEBUG,
		 "msg=\"status flush\" reports=%zu written=%zu stale=%zu in_flight=%zu"
		 " queued=%zu writes_in_flight=%u replaced_total=%" PRIu64,
		 done, w->ack_count, stale_count, inflight, d->report_count,
		 d->status_writes_in_flight, d->reports_replaced);
	if (b.action_count == 0) {
		store_batch_free(&b);
		/* no write follows the held acks: they go */
		if (d->held_count && !d->status_writes_in_flight && !d->report_count)
			disp_ack_held(d);
		goto fail;
	}
	{
		const struct disp_ack *acks = w->acks;
		size_t count = w->ack_count;
		if (disp_write(d, &b, w))
			return; /* w freed: the agents send their reports again */
		/* proposed (its answer comes later, never inside the call) */
		d->status_writes++;
		d->status_writes_in_flight++;
		d->reports_written += count;
		for (size_t i = 0; i < count; i++)
			disp_inflight_put(&d->inflight, acks[i].task_id,
					  (uint32_t)acks[i].state);
	}
	return;
fail:
	if (w)
		free(w->acks);
	free(w);
	free(stale);
}

/* ---------------------------------------------------------------- node expiry */

static Cs__NodeRole disp_desired_role(struct dispatcher *d, struct disp_session *s);

/* When the Raft group's members changed, tells every session at once (as
 * SwarmKit's session stream does), not at its next heartbeat: a node that
 * joined through a manager that then dies at once must still know where
 * else to go. The push is a heartbeat answer nobody asked for. */
static void disp_push_members(struct dispatcher *d)
{
	char *managers[LIMIT_MANAGERS_MAX];
	uint64_t members;
	size_t n = disp_members(d, managers, &members);

	if (members == d->members_pushed)
		return;
	d->members_pushed = members;
	for (size_t i = 0; i < d->session_count; i++) {
		struct disp_session *s = &d->sessions[i];
		Cs__Wire wire = CS__WIRE__INIT;
		Cs__HeartbeatResponse r = CS__HEARTBEAT_RESPONSE__INIT;

		if (!s->session_id || s->members_sent == members)
			continue;
		s->members_sent = members;
		r.heartbeat_ms = d->heartbeat_ms;
		r.seq = s->seq;
		r.desired_role = disp_desired_role(d, s);
		r.n_managers = n;
		r.managers = managers;
		wire.heartbeat_response = &r;
		disp_send(d, s->conn, &wire);
	}
}

static void disp_expire(struct env *env, env_timer_id id, void *data)
{
	struct dispatcher *d = data;
	ms_t now = env->ops->now_ms(env);
	ms_t ttl = d->heartbeat_ms * DISP_GRACE_PERIODS;
	const struct store *st = leader_store(d->ctx);

	disp_push_members(d);

	for (size_t i = 0; i < d->session_count;) {
		struct disp_session *s = &d->sessions[i];
		const Cs__Node *n;
		if (now - s->last_seen_ms <= ttl ||
		    (!s->session_id && now < s->grace_until_ms)) {
			/* a DOWN written while it came back (the write was
			 * behind its new session): it is up, say so */
			if (s->revive && s->session_id) {
				s->revive = false;
				n = store_node_get(st, s->node_id);
				if (n && n->state == CS__NODE_STATE__NODE_STATE_DOWN)
					disp_set_node_state(
						d, n, CS__NODE_STATE__NODE_STATE_READY,
						"");
			}
			i++;
			continue;
		}
		n = store_node_get(st, s->node_id);
		if (n)
			disp_set_node_state(d, n, CS__NODE_STATE__NODE_STATE_DOWN,
					    "heartbeat failure");
		disp_session_remove(d, s);
	}
}

/* ---------------------------------------------------------------- frames */

/* The role the cluster wants the session's node to have: its record's, or
 * what it runs as when it has none (yet). */
static Cs__NodeRole disp_desired_role(struct dispatcher *d, struct disp_session *s)
{
	const Cs__Node *n;
	if (s->desired_known)
		return s->desired;
	n = store_node_get(leader_store(d->ctx), s->node_id);
	if (!n)
		return s->role;
	s->desired = n->desired_role;
	s->desired_known = true;
	return s->desired;
}

/* The removed-node list for an answer to an agent that holds the list of
 * digest have (0: none): the store's, unless the agent has it already;
 * none (logged) when it is longer than LIMIT_REMOVED_SENT_MAX. */
static void disp_removed(struct dispatcher *d, uint64_t have, size_t *n, uint64_t **ids,
			 protobuf_c_boolean *sent)
{
	const Cs__Cluster *c = store_cluster(leader_store(d->ctx));
	size_t count = c ? c->n_removed_nodes : 0;

	if (have == store_cluster_removed_digest(c))
		return;
	if (count > LIMIT_REMOVED_SENT_MAX) {
		env_logf(d->env, ENV_LOG_ERROR,
			 "msg=\"removed-node list not sent to agents: too long\" "
			 "removed=%zu limit=%u",
			 count, LIMIT_REMOVED_SENT_MAX);
		return;
	}
	*n = count;
	*ids = count ? c->removed_nodes : NULL;
	*sent = true;
}

static void disp_session_reply(struct dispatcher *d, uint64_t conn, int status,
			       struct disp_session *s)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__SessionResponse r = CS__SESSION_RESPONSE__INIT;
	char *managers[LIMIT_MANAGERS_MAX];
	uint64_t members;
	r.status = status;
	r.node_id = s ? s->node_id : 0;
	r.session_id = s ? s->session_id : 0;
	r.heartbeat_ms = d->heartbeat_ms;
	r.store_index = store_applied(leader_store(d->ctx));
	r.seq = s ? s->seq : 0; /* 0 on a new session: nothing sent yet */
	if (s) {
		r.desired_role = disp_desired_role(d, s);
		r.renew_cert = disp_renew_cert(d, s, NULL);
	}
	/* the managers to try when this one goes (SwarmKit's session sends
	 * the manager list too) */
	r.n_managers = disp_members(d, managers, &members);
	r.managers = managers;
	if (s)
		s->members_sent = members;
	if (status == 0)
		disp_removed(d, 0, &r.n_removed_nodes, &r.removed_nodes, &r.removed_sent);
	wire.session_response = &r;
	disp_send(d, conn, &wire);
}

/* A frame that names another node than its certificate: refused. */
static void disp_refused(struct dispatcher *d, const char *what, const char *from,
			 const struct env_identity *who, const char *why)
{
	env_logf(d->env, ENV_LOG_WARN,
		 "msg=\"refused\" what=%s from=%s node=%016" PRIx64 " why=\"%s\"", what,
		 from, who->node_id, why);
}

/* Creates the record of a member manager with no record yet; the session
 * opens on the next ask (the agent asks again when unanswered). */
static void disp_register_manager(struct dispatcher *d, const char *from,
				  const struct env_identity *who,
				  const Cs__SessionRequest *q)
{
	Cs__Node n = CS__NODE__INIT;
	Cs__ManagerStatus ms = CS__MANAGER_STATUS__INIT;
	struct store_batch b;
	struct disp_write *w;

	if (d->registering == who->node_id)
		return; /* in flight */
	w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->d = d;
	w->registered = who->node_id;
	n.id = who->node_id;
	n.hostname = q->hostname;
	n.role = CS__NODE_ROLE__NODE_ROLE_MANAGER;
	n.desired_role = CS__NODE_ROLE__NODE_ROLE_MANAGER;
	n.cert_role = CS__NODE_ROLE__NODE_ROLE_MANAGER;
	n.cert_key.data = (uint8_t *)who->key;
	n.cert_key.len = sizeof who->key;
	ms.raft_id = who->node_id;
	ms.addr = (char *)from;
	n.manager_status = &ms;
	n.resources = q->resources;
	n.n_labels = q->n_labels;
	n.labels = q->labels;
	n.state = CS__NODE_STATE__NODE_STATE_UNKNOWN;
	store_batch_init(&b);
	if (store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &n)) {
		store_batch_free(&b);
		free(w);
		return;
	}
	d->registering = who->node_id;
	disp_write(d, &b, w);
}

/* The hash of a session request's bytes (never 0; 0 when it cannot be
 * packed): the same request asked again hashes the same. */
static uint64_t disp_request_hash(const Cs__SessionRequest *q)
{
	size_t len = cs__session_request__get_packed_size(q);
	uint8_t *buf = malloc(len ? len : 1);
	uint64_t h;

	if (!buf)
		return 0;
	cs__session_request__pack(q, buf);
	h = hash_mix64(hash_fnv(HASH_FNV_OFFSET, buf, len)) | 1;
	free(buf);
	return h;
}

static void disp_on_session(struct dispatcher *d, const char *from,
			    const struct env_identity *who, const Cs__SessionRequest *q)
{
	const struct store *st = leader_store(d->ctx);
	const Cs__Node *known = store_node_get(st, who->node_id);
	Cs__ManagerStatus ms = CS__MANAGER_STATUS__INIT;
	struct disp_session *s;
	Cs__NodeRole role = who->role == ENV_ROLE_MANAGER
				    ? CS__NODE_ROLE__NODE_ROLE_MANAGER
				    : CS__NODE_ROLE__NODE_ROLE_WORKER;
	uint64_t node_id = who->node_id, request_hash;
	char ip[LIMIT_ADDR_BYTES_MAX];

	if (strlen(from) >= LIMIT_ADDR_BYTES_MAX)
		return;
	if (q->node_id && q->node_id != who->node_id) {
		disp_refused(d, "session", from, who,
			     "session for another node than its certificate");
		return;
	}
	/* a resync of a live session: the full set again */
	if (q->want_seq && (s = disp_session(d, node_id)) &&
	    s->session_id == q->session_id) {
		s->last_seen_ms = d->env->ops->now_ms(d->env);
		s->conn = who->conn;
		disp_send_full(d, s);
		return;
	}
	if (!known && who->role == ENV_ROLE_MANAGER &&
	    leader_member_addr(d->ctx, node_id) &&
	    !store_cluster_removed(store_cluster(st), node_id)) {
		/* a member manager that signed its own certificate (the
		 * managers a cluster starts with): its record is made now */
		disp_register_manager(d, from, who, q);
		return;
	}
	if (!known || store_cluster_removed(store_cluster(st), node_id)) {
		/* the CA makes the record before it signs: a certificate
		 * without one is of a node removed (or of a lost store) */
		Cs__Wire wire = CS__WIRE__INIT;
		Cs__SessionResponse r = CS__SESSION_RESPONSE__INIT;
		const char *why =
			known ? "this node was removed from the cluster: join it again "
				"with a new state directory"
			      : "this node is not in the cluster: join it again with a "
				"new state directory";
		disp_refused(d, "session", from, who, why);
		r.status = CS_EAUTH;
		r.error = (char *)why;
		wire.session_response = &r;
		disp_send(d, who->conn, &wire);
		return;
	}
	/* The same agent asking again, on the same connection and in the
	 * same words, for a session before it was heard on the one it was
	 * given: at a busy leader a
	 * request left unanswered for two ticks is asked again (often after
	 * a detour through a follower that names this leader), and a second
	 * session meant a second full set and every task state reported
	 * again, for nothing (issue 18: 14,317 answers for 9,000 sessions
	 * after a leader kill at 10,000 agents). The session it was given is
	 * answered again; one whose answer waits for its record's write is
	 * answered when the write commits. Its full set is not sent again
	 * once sent: it went on this connection ahead of this answer, and
	 * the answer names its last seq (SessionResponse.seq), so that an
	 * agent that lost it asks for it (a resync). */
	s = disp_session(d, node_id);
	request_hash = disp_request_hash(q);
	if (!q->session_id && !q->want_seq && s && s->session_id && !s->heard &&
	    s->conn == who->conn && s->role == role && request_hash &&
	    s->request_hash == request_hash &&
	    d->env->ops->now_ms(d->env) - s->born_ms < d->heartbeat_ms) {
		env_logf(d->env, ENV_LOG_DEBUG,
			 "msg=\"session asked again: the same one\" node=%016" PRIx64
			 " pending=%d",
			 node_id, (int)s->answer_pending);
		if (s->answer_pending)
			return;
		disp_session_reply(d, s->conn, 0, s);
		if (!s->seq)
			disp_send_full(d, s);
		disp_keys_send(d, s);
		return;
	}
	s = disp_session_add(d, node_id);
	if (!s)
		return;
	s->role = role;
	s->born_ms = d->env->ops->now_ms(d->env);
	s->request_hash = request_hash;
	s->answer_pending = false;
	s->heard = false;
	s->grace_until_ms = 0; /* a session now: its heartbeats tell */
	s->backend_deltas = q->backend_deltas;
	s->session_id = d->env->ops->random_u64(d->env) | 1;
	memcpy(s->addr, from, strlen(from) + 1);
	s->conn = who->conn;
	s->last_seen_ms = d->env->ops->now_ms(d->env);
	s->seq = 0;
	s->changed_count = 0;
	free(s->nets); /* a new session is sent every network state again */
	s->nets = NULL;
	s->net_count = 0;
	s->net_due = true;
	/* its endpoints' node IP comes from this session's address only when
	 * its record has none (disp_node_underlay): then built again. Else
	 * nothing they hold changed (issue 18: at a new leader, a rebuild per
	 * new session walked every task of the store, 100,000, ten times a
	 * second, 21% of its CPU) */
	if (!known->addr || !*known->addr || strlen(known->addr) >= LIMIT_ADDR_BYTES_MAX)
		d->nets_dirty = true;
	disp_net_arm(d);
	/* a manager's raft id is its node id; its address is where it is */
	if (role == CS__NODE_ROLE__NODE_ROLE_MANAGER && q->raft_id) {
		ms.raft_id = node_id;
		ms.addr = (char *)from;
	}
	disp_node_ip(who->peer_ip, from, q->addr, ip);
	if (!disp_desc_ok(q))
		disp_refused(
			d, "node description", from, who,
			"over the limits (LIMIT_NAME_BYTES_MAX, "
			"LIMIT_ENGINE_LABELS_MAX, LIMIT_LABEL_BYTES_MAX): not recorded");
	s->keys_sent = 0;
	if (disp_set_node_session(d, known, q, role, ms.raft_id ? &ms : NULL, s, ip)) {
		s->answer_pending = true;
		return; /* answered once the record says READY */
	}
	disp_session_reply(d, s->conn, 0, s);
	disp_send_full(d, s);
	disp_keys_send(d, s);
}

static void disp_on_heartbeat(struct dispatcher *d, const char *from,
			      const struct env_identity *who, const Cs__Heartbeat *h)
{
	struct disp_session *s = disp_session(d, who->node_id);
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__HeartbeatResponse r = CS__HEARTBEAT_RESPONSE__INIT;
	char *managers[LIMIT_MANAGERS_MAX];
	uint64_t members;
	size_t n;

	d->heartbeats++;

	r.heartbeat_ms = d->heartbeat_ms;
	if (!s || s->session_id == 0 || s->session_id != h->session_id) {
		r.status = CS_ESTALE; /* open a new session */
	} else {
		s->last_seen_ms = d->env->ops->now_ms(d->env);
		s->heard = true;
		s->conn = who->conn; /* its connection now (a new one after a break) */
		/* lets an agent that lost the last Assignments notice it */
		r.seq = s->seq;
		r.desired_role = disp_desired_role(d, s);
		if (h->cert_key.len == ENV_DIGEST_BYTES)
			disp_cert_held(d, s, &h->cert_key);
		r.renew_cert = disp_renew_cert(d, s, &h->cert_key);
		/* managers joined since the session began: the agent learns them
		 * here (or it could know only managers that are gone), when the
		 * list changed since it was last told */
		n = disp_members(d, managers, &members);
		if (members != s->members_sent) {
			s->members_sent = members;
			r.n_managers = n;
			r.managers = managers;
		}
		if (strlen(from) < LIMIT_ADDR_BYTES_MAX)
			memcpy(s->addr, from, strlen(from) + 1);
		disp_removed(d, h->removed_digest, &r.n_removed_nodes, &r.removed_nodes,
			     &r.removed_sent);
		disp_net_heard(d, s, h);
	}
	wire.heartbeat_response = &r;
	disp_send(d, who->conn, &wire);
	/* issue 17: keys other than the store's: sent again */
	if (s && s->session_id && s->session_id == h->session_id &&
	    h->net_keys_digest != d->keys_digest) {
		s->keys_sent = 0;
		disp_keys_send(d, s);
	}
}

static bool dispatcher_recv(void *state, const char *from, const struct env_identity *who,
			    const Cs__Wire *wire)
{
	struct dispatcher *d = state;
	uint64_t named = wire->session	       ? wire->session->node_id
			 : wire->heartbeat     ? wire->heartbeat->node_id
			 : wire->status_update ? wire->status_update->node_id
					       : 0;
	if (!wire->session && !wire->heartbeat && !wire->status_update)
		return false;
	if (named && named != who->node_id) {
		disp_refused(d,
			     wire->session     ? "session"
			     : wire->heartbeat ? "heartbeat"
					       : "status_update",
			     from, who, "frame for another node than its certificate");
		return true;
	}
	if (wire->session) {
		disp_on_session(d, from, who, wire->session);
		return true;
	}
	if (wire->heartbeat) {
		disp_on_heartbeat(d, from, who, wire->heartbeat);
		return true;
	}
	{
		struct disp_session *s = disp_session(d, who->node_id);
		if (s && s->session_id == wire->status_update->session_id) {
			s->conn = who->conn;
			disp_on_status(d, s, wire->status_update);
		}
	}
	return true;
}

/* ---------------------------------------------------------------- lifecycle */

static int dispatcher_start(const struct leader_ctx *ctx, void **state)
{
	struct env *env = leader_env(ctx);
	struct dispatcher *d = calloc(1, sizeof *d);
	const struct store *st = leader_store(ctx);
	ms_t now = env->ops->now_ms(env);

	if (!d)
		return CS_ENOMEM;
	d->env = env;
	d->ctx = ctx;
	d->heartbeat_ms = leader_heartbeat_ms(ctx);
	d->nets_dirty = true;
	d->keys_digest = disp_keys_digest_of(store_cluster(st));
	/* nodes not down under the last leader (ready, or not ready yet) get
	 * the grace of a new session: one whose agent does not come is DOWN
	 * after it (SwarmKit's markNodesUnknown) */
	for (const Cs__Node *n = store_node_next(st, NULL); n;
	     n = store_node_next(st, n)) {
		struct disp_session *s;
		if (n->state == CS__NODE_STATE__NODE_STATE_DOWN)
			continue;
		s = disp_session_add(d, n->id);
		if (s) {
			s->last_seen_ms = now;
			s->grace_until_ms = now + d->heartbeat_ms * DISP_GRACE_PERIODS +
					    DISP_NEW_LEADER_EXTRA_MS;
		}
	}
	/* a silent node is found within half a second of its deadline */
	if (env->ops->timer_start(env, DISP_EXPIRY_CHECK_MS, DISP_EXPIRY_CHECK_MS,
				  disp_expire, d, &d->expiry_timer)) {
		free(d->sessions);
		free(d);
		return CS_ENOMEM;
	}
	*state = d;
	return 0;
}

static void disp_maybe_free(struct dispatcher *d)
{
	if (!d->stopped || d->writes_in_flight)
		return;
	for (size_t i = 0; i < d->session_count; i++) {
		free(d->sessions[i].changed);
		free(d->sessions[i].nets);
	}
	disp_net_cache_free(d);
	free(d->sessions);
	free(d->reports);
	free(d->inflight.slots);
	free(d->queued.slots);
	free(d->send_buf); /* (network keys wiped after each send) */
	free(d->held);	   /* (the agents resend: a new leader acks them) */
	free(d);
}

static void dispatcher_stop(void *state, bool dying)
{
	struct dispatcher *d = state;

	d->stopped = true;
	d->dying = dying;
	if (!dying) {
		if (d->expiry_timer)
			d->env->ops->timer_stop(d->env, d->expiry_timer);
		if (d->flush_timer)
			d->env->ops->timer_stop(d->env, d->flush_timer);
		if (d->status_timer)
			d->env->ops->timer_stop(d->env, d->status_timer);
		if (d->net_timer)
			d->env->ops->timer_stop(d->env, d->net_timer);
		if (d->ack_timer)
			d->env->ops->timer_stop(d->env, d->ack_timer);
	}
	/* dying: the manager answers our writes in flight with CS_ECLOSED
	 * right after this, and the last answer frees us */
	disp_maybe_free(d);
}

static void dispatcher_metrics(void *state, struct metrics_buf *out)
{
	const struct dispatcher *d = state;

	metrics_family(out, "cswarm_dispatcher_sessions", METRICS_GAUGE,
		       "Agent sessions the leader's dispatcher holds.");
	metrics_sample(out, "cswarm_dispatcher_sessions", NULL, (double)d->session_count);
	metrics_family(out, "cswarm_dispatcher_heartbeats_total", METRICS_COUNTER,
		       "Heartbeats received since this manager began to lead.");
	metrics_sample(out, "cswarm_dispatcher_heartbeats_total", NULL,
		       (double)d->heartbeats);
	metrics_family(out, "cswarm_dispatcher_status_reports_pending", METRICS_GAUGE,
		       "Task status reports waiting for a store write.");
	metrics_sample(out, "cswarm_dispatcher_status_reports_pending", NULL,
		       (double)d->report_count);
	metrics_family(out, "cswarm_dispatcher_status_reports_in_flight", METRICS_GAUGE,
		       "Task status reports in store writes not yet answered.");
	metrics_sample(out, "cswarm_dispatcher_status_reports_in_flight", NULL,
		       (double)d->inflight.count);
	metrics_family(out, "cswarm_dispatcher_status_writes_in_flight", METRICS_GAUGE,
		       "Status writes proposed and not yet answered.");
	metrics_sample(out, "cswarm_dispatcher_status_writes_in_flight", NULL,
		       (double)d->status_writes_in_flight);
	metrics_family(out, "cswarm_dispatcher_status_writes_total", METRICS_COUNTER,
		       "Status writes proposed, by their answer (failed: refused, "
		       "lost or timed out).");
	metrics_sample(out, "cswarm_dispatcher_status_writes_total", "result=\"ok\"",
		       (double)(d->status_writes - d->status_writes_failed -
				d->status_writes_in_flight));
	metrics_sample(out, "cswarm_dispatcher_status_writes_total", "result=\"failed\"",
		       (double)d->status_writes_failed);
	metrics_family(out, "cswarm_dispatcher_status_reports_total", METRICS_COUNTER,
		       "Task status reports: written, stale (acknowledged at once), "
		       "already in a write in flight, or replaced in the queue by a "
		       "later one of their task (an agent's resend).");
	metrics_sample(out, "cswarm_dispatcher_status_reports_total", "fate=\"written\"",
		       (double)d->reports_written);
	metrics_sample(out, "cswarm_dispatcher_status_reports_total", "fate=\"stale\"",
		       (double)d->reports_stale);
	metrics_sample(out, "cswarm_dispatcher_status_reports_total",
		       "fate=\"in_flight\"", (double)d->reports_inflight);
	metrics_sample(out, "cswarm_dispatcher_status_reports_total", "fate=\"replaced\"",
		       (double)d->reports_replaced);
	metrics_family(out, "cswarm_dispatcher_tasks_placed_total", METRICS_COUNTER,
		       "Tasks seen placed on a node (ASSIGNED applied) since this "
		       "manager began to lead.");
	metrics_sample(out, "cswarm_dispatcher_tasks_placed_total", NULL,
		       (double)d->placed_total);
	metrics_family(out, "cswarm_dispatcher_assignments_sent_total", METRICS_COUNTER,
		       "Assignments sent as changes: messages, and the tasks in them.");
	metrics_sample(out, "cswarm_dispatcher_assignments_sent_total",
		       "kind=\"messages\"", (double)d->asg_msgs_sent);
	metrics_sample(out, "cswarm_dispatcher_assignments_sent_total", "kind=\"tasks\"",
		       (double)d->asg_tasks_sent);
	metrics_family(out, "cswarm_dispatcher_network_builds_total", METRICS_COUNTER,
		       "Times every network's state was built from the store again.");
	metrics_sample(out, "cswarm_dispatcher_network_builds_total", NULL,
		       (double)d->net_builds);
}

const struct leader_component_ops dispatcher_component = {
	.name = "dispatcher",
	.start = dispatcher_start,
	.stop = dispatcher_stop,
	.on_event = dispatcher_on_event,
	.recv = dispatcher_recv,
	.metrics = dispatcher_metrics,
};
