/* record: the env wrapper behind swarmd --record. See record.h. */
#include "net/record.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/keymanager.h"

#define REC_TIMER_BUCKETS 1024u

/* ---------------------------------------------------------------- encoding */

static void rec_buf_reserve(struct rec_buf *b, size_t more)
{
	size_t cap;
	uint8_t *p;

	if (b->failed || b->len + more <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

void rec_buf_u(struct rec_buf *b, uint64_t v)
{
	rec_buf_reserve(b, 10);
	if (b->failed)
		return;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		b->p[b->len++] = (uint8_t)(c | (v ? 0x80 : 0));
	} while (v);
}

void rec_buf_bytes(struct rec_buf *b, const void *p, size_t len)
{
	rec_buf_u(b, len);
	rec_buf_reserve(b, len);
	if (b->failed || len == 0)
		return;
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

void rec_buf_str(struct rec_buf *b, const char *s)
{
	size_t len;

	if (!s) {
		rec_buf_u(b, 0);
		return;
	}
	len = strlen(s);
	rec_buf_u(b, len + 1);
	rec_buf_reserve(b, len);
	if (b->failed)
		return;
	memcpy(b->p + b->len, s, len);
	b->len += len;
}

static void rec_buf_raw(struct rec_buf *b, const void *p, size_t len)
{
	rec_buf_reserve(b, len);
	if (b->failed || len == 0)
		return;
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static void rec_buf_i(struct rec_buf *b, int64_t v)
{
	rec_buf_u(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); /* zigzag */
}

void record_cfg_encode(struct rec_buf *b, const struct node_cfg *cfg,
		       const char *self_addr, unsigned has)
{
	const struct manager_cfg *m = cfg->manager;
	const struct agent_cfg *a = &cfg->agent;

	rec_buf_str(b, self_addr);
	rec_buf_u(b, has);
	rec_buf_u(b, m != NULL);
	if (m) {
		rec_buf_u(b, m->raft_id);
		rec_buf_u(b, m->voter_count);
		for (size_t i = 0; i < m->voter_count; i++) {
			rec_buf_u(b, m->voters[i].raft_id);
			rec_buf_str(b, m->voters[i].addr);
		}
		rec_buf_u(b, m->tick_ms);
		rec_buf_u(b, m->election_ticks);
		rec_buf_u(b, m->snapshot_every);
		rec_buf_u(b, m->snapshot_trailing);
		rec_buf_u(b, m->write_timeout_ms);
		rec_buf_u(b, m->join_count);
		for (size_t i = 0; i < m->join_count; i++)
			rec_buf_str(b, m->join_addrs[i]);
		rec_buf_u(b, m->heartbeat_ms);
		rec_buf_u(b, m->task_history);
		rec_buf_u(b, m->on_apply != NULL);
		rec_buf_str(b, m->worker_token);
		rec_buf_str(b, m->manager_token);
		rec_buf_str(b, m->join_token);
		rec_buf_u(b, m->on_refused != NULL);
		rec_buf_bytes(b, m->ca_cert.data, m->ca_cert.len);
		rec_buf_bytes(b, m->ca_key.data, m->ca_key.len);
		rec_buf_u(b, m->cluster_id);
		rec_buf_u(b, m->cert_expiry_ms);
		rec_buf_str(b, m->unlock_key);
		rec_buf_u(b, m->default_addr_pool);
		rec_buf_u(b, m->default_addr_pool_len);
		rec_buf_u(b, m->default_subnet_len);
		rec_buf_u(b, m->force_new_cluster);
		rec_buf_bytes(b, m->restore_store, m->restore_store_len);
		rec_buf_u(b, m->restore_index);
		rec_buf_u(b, m->restore_term);
	}
	rec_buf_str(b, a->hostname);
	rec_buf_u(b, (uint64_t)a->role);
	rec_buf_u(b, a->millicpus);
	rec_buf_u(b, a->memory_bytes);
	rec_buf_u(b, a->manager_count);
	for (size_t i = 0; i < a->manager_count; i++)
		rec_buf_str(b, a->managers[i]);
	rec_buf_str(b, a->join_token);
	rec_buf_u(b, a->raft_id);
	rec_buf_u(b, a->on_role != NULL);
	rec_buf_u(b, a->on_refused != NULL);
	rec_buf_u(b, a->no_data_plane);
	rec_buf_u(b, a->desc != NULL);
	if (a->desc) {
		rec_buf_str(b, a->desc->platform_os);
		rec_buf_str(b, a->desc->platform_arch);
		rec_buf_str(b, a->desc->addr);
		rec_buf_u(b, a->desc->engine_label_count);
		for (size_t i = 0; i < a->desc->engine_label_count; i++) {
			rec_buf_str(b, a->desc->engine_labels[i]->key);
			rec_buf_str(b, a->desc->engine_labels[i]->value);
		}
	}
}

static void rec_buf_identity(struct rec_buf *b, const struct env_identity *id)
{
	rec_buf_u(b, id->node_id);
	rec_buf_u(b, id->cluster_id);
	rec_buf_u(b, (uint64_t)id->role);
	rec_buf_u(b, id->expires_ms);
	rec_buf_u(b, id->life_ms);
	rec_buf_raw(b, id->root, ENV_DIGEST_BYTES);
	rec_buf_raw(b, id->key, ENV_DIGEST_BYTES);
	rec_buf_u(b, id->conn);
	rec_buf_str(b, id->peer_ip[0] ? id->peer_ip : "");
}

/* ---------------------------------------------------------------- state */

struct rec_timer {
	struct record *r;
	env_timer_id id;
	env_timer_cb cb;
	void *data;
	bool repeat;
	struct rec_timer *next; /* in its bucket */
};

struct rec_ctlreq {
	struct env_ctl_req shadow; /* what the real env fills */
	struct env_ctl_req *orig;
	env_ctl_cb cb;
	struct rec_ctl *ctl;
	uint64_t no;
	struct rec_ctlreq *next; /* pending on ctl */
};

struct rec_ctl {
	struct rec_ctl *next_open; /* the record's controllers not closed */
	struct record *r;
	struct env_ctl *real;
	uint64_t no;
	struct rec_ctlreq *pending;
	env_ctl_close_cb close_cb;
	void *close_data;
};

struct rec_listreq {
	struct env_ctl_list_req shadow;
	struct env_ctl_list_req *orig;
	env_ctl_list_cb cb;
	struct record *r;
	uint64_t no;
};

struct rec_logsreq {
	struct env_logs_req shadow;
	struct env_logs_req *orig;
	env_logs_cb cb;
	struct record *r;
	uint64_t no;
};

struct rec_call {
	struct record *r;
	control_rpc_cb cb;
	void *data;
	uint64_t no;
};

struct record {
	struct env env;
	struct env_ops ops;
	struct env *real;
	const struct node_cfg *cfg;
	int fd;
	bool dead;	    /* a write failed: no more recording */
	struct rec_buf out; /* buffered, not written yet */
	struct rec_buf rec; /* the record being built */
	uint64_t written;   /* bytes written to the file */
	unsigned depth;	    /* inside an input (or the program's start) */
	bool foreign_said;
	ms_t last_now; /* the last NOW recorded */
	ms_t last_flush_ms;
	/* the program's callbacks */
	env_recv_cb recv_cb;
	env_peer_cb peer_cb;
	void *listen_data;
	struct rec_timer *timers[REC_TIMER_BUCKETS];
	uint64_t next_ctl, next_req, next_list, next_logs, next_call;
	struct rec_ctl *ctls; /* open (freed at close: a process death closes
				 none of them) */
	char opened[8][64];   /* databases already imaged */
	size_t opened_count;
};

static struct record *rec_of(struct env *env)
{
	return (struct record *)((char *)env - offsetof(struct record, env));
}

/* ---------------------------------------------------------------- writing */

/* Writes out what is buffered. A failure ends the recording (said once). */
static void rec_flush(struct record *r)
{
	size_t off = 0;

	if (r->dead || r->out.len == 0)
		return;
	while (off < r->out.len) {
		ssize_t n = write(r->fd, r->out.p + off, r->out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr,
				"swarmd: --record: write failed (%s): the recording "
				"ends here\n",
				n < 0 ? strerror(errno) : "short write");
			r->dead = true;
			break;
		}
		off += (size_t)n;
	}
	r->written += off;
	r->out.len = 0;
	r->last_flush_ms = r->last_now;
}

static void rec_begin(struct record *r, enum rec_kind kind)
{
	r->rec.len = 0;
	r->rec.failed = false;
	rec_buf_raw(&r->rec, &(uint8_t){(uint8_t)kind}, 1);
}

static void rec_end(struct record *r)
{
	if (r->dead)
		return;
	if (r->rec.failed || r->out.failed) {
		fputs("swarmd: --record: out of memory: the recording ends here\n",
		      stderr);
		rec_flush(r);
		r->dead = true;
		return;
	}
	rec_buf_u(&r->out, r->rec.len);
	rec_buf_raw(&r->out, r->rec.p, r->rec.len);
	if (r->out.len >= RECORD_BUF_BYTES)
		rec_flush(r);
}

/* A call of the core outside any input: something reached the core other
 * than through the env (what the replay cannot feed). Recorded anyway (the
 * replay then names it as the divergence), said once. */
static void rec_check_scope(struct record *r, enum rec_kind kind)
{
	if (r->depth > 0 || r->foreign_said)
		return;
	r->foreign_said = true;
	fprintf(stderr,
		"swarmd: --record: the core made an env call (kind %d) outside any "
		"recorded input: the replay will diverge there\n",
		(int)kind);
}

/* rec_answer ends the record of a call that starts a request (begun by
 * the caller with the call's arguments): its answer rv, and no, the
 * number the request took, or 0 when rv says it never started. Then, on
 * an error, frees q (the request's state, owned here: its callback will
 * never run). Returns rv. */
static int rec_answer(struct record *r, int rv, uint64_t no, void *q)
{
	rec_buf_i(&r->rec, rv);
	rec_buf_u(&r->rec, rv == 0 ? no : 0);
	rec_end(r);
	if (rv)
		free(q);
	return rv;
}

static void rec_in_begin(struct record *r)
{
	r->depth++;
}

static void rec_in_end(struct record *r)
{
	assert(r->depth > 0);
	if (--r->depth > 0)
		return;
	if (r->out.len >= RECORD_FLUSH_BYTES ||
	    r->last_now - r->last_flush_ms >= RECORD_FLUSH_MS)
		rec_flush(r);
}

/* ---------------------------------------------------------------- clock */

static ms_t rec_now_ms(struct env *env)
{
	struct record *r = rec_of(env);
	ms_t now = r->real->ops->now_ms(r->real);

	if (r->depth == 0)
		return now; /* a read from outside (a metrics scrape): no decision */
	rec_begin(r, REC_NOW);
	rec_buf_i(&r->rec, (int64_t)(now - r->last_now));
	rec_end(r);
	r->last_now = now;
	return now;
}

static uint64_t rec_wall_ms(struct env *env)
{
	struct record *r = rec_of(env);
	uint64_t v = r->real->ops->wall_ms(r->real);

	if (r->depth == 0)
		return v;
	rec_begin(r, REC_WALL);
	rec_buf_u(&r->rec, v);
	rec_end(r);
	return v;
}

static uint64_t rec_random_u64(struct env *env)
{
	struct record *r = rec_of(env);
	uint64_t v = r->real->ops->random_u64(r->real);

	rec_check_scope(r, REC_RANDOM);
	rec_begin(r, REC_RANDOM);
	rec_buf_u(&r->rec, v);
	rec_end(r);
	return v;
}

static struct rec_timer **rec_timer_slot(struct record *r, env_timer_id id)
{
	struct rec_timer **p = &r->timers[id % REC_TIMER_BUCKETS];
	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

static void rec_timer_fired(struct env *real, env_timer_id id, void *data)
{
	struct rec_timer *t = data;
	struct record *r = t->r;
	env_timer_cb cb = t->cb;
	void *cb_data = t->data;

	(void)real;
	rec_begin(r, REC_TIMER);
	rec_buf_u(&r->rec, id);
	rec_end(r);
	if (!t->repeat) {
		struct rec_timer **p = rec_timer_slot(r, id);
		if (*p == t)
			*p = t->next;
		free(t);
	}
	rec_in_begin(r);
	cb(&r->env, id, cb_data);
	rec_in_end(r);
}

static int rec_timer_start(struct env *env, ms_t delay_ms, ms_t repeat_ms,
			   env_timer_cb cb, void *data, env_timer_id *id)
{
	struct record *r = rec_of(env);
	struct rec_timer *t = calloc(1, sizeof *t);
	int rv;

	rec_check_scope(r, REC_TIMER_START);
	if (!t)
		rv = CS_ENOMEM;
	else {
		t->r = r;
		t->cb = cb;
		t->data = data;
		t->repeat = repeat_ms > 0;
		rv = r->real->ops->timer_start(r->real, delay_ms, repeat_ms,
					       rec_timer_fired, t, &t->id);
	}
	rec_begin(r, REC_TIMER_START);
	rec_buf_u(&r->rec, delay_ms);
	rec_buf_u(&r->rec, repeat_ms);
	rec_buf_i(&r->rec, rv);
	rec_buf_u(&r->rec, rv == 0 ? t->id : 0);
	rec_end(r);
	if (rv) {
		free(t);
		return rv;
	}
	{
		struct rec_timer **p = &r->timers[t->id % REC_TIMER_BUCKETS];
		t->next = *p;
		*p = t;
	}
	*id = t->id;
	return 0;
}

static void rec_timer_stop(struct env *env, env_timer_id id)
{
	struct record *r = rec_of(env);
	struct rec_timer **p = rec_timer_slot(r, id);

	rec_check_scope(r, REC_TIMER_STOP);
	rec_begin(r, REC_TIMER_STOP);
	rec_buf_u(&r->rec, id);
	rec_end(r);
	r->real->ops->timer_stop(r->real, id);
	if (*p) {
		struct rec_timer *t = *p;
		*p = t->next;
		free(t);
	}
}

/* ---------------------------------------------------------------- transport */

static const char *rec_self_addr(struct env *env)
{
	struct record *r = rec_of(env);
	return r->real->ops->self_addr(r->real);
}

static void rec_recv(struct env *real, const char *from, const uint8_t *buf, size_t len,
		     void *data)
{
	struct record *r = data;

	(void)real;
	rec_begin(r, REC_RECV);
	rec_buf_str(&r->rec, from);
	rec_buf_bytes(&r->rec, buf, len);
	rec_end(r);
	rec_in_begin(r);
	r->recv_cb(&r->env, from, buf, len, r->listen_data);
	rec_in_end(r);
}

static void rec_peer(struct env *real, const char *addr, bool up, void *data)
{
	struct record *r = data;

	(void)real;
	rec_begin(r, REC_PEER);
	rec_buf_str(&r->rec, addr);
	rec_buf_u(&r->rec, up);
	rec_end(r);
	rec_in_begin(r);
	r->peer_cb(&r->env, addr, up, r->listen_data);
	rec_in_end(r);
}

static int rec_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
		      void *data)
{
	struct record *r = rec_of(env);
	int rv;

	rec_check_scope(r, REC_LISTEN);
	r->recv_cb = recv_cb;
	r->peer_cb = peer_cb;
	r->listen_data = data;
	rv = r->real->ops->listen(r->real, recv_cb ? rec_recv : NULL,
				  peer_cb ? rec_peer : NULL, r);
	rec_begin(r, REC_LISTEN);
	rec_buf_u(&r->rec, recv_cb != NULL);
	rec_buf_u(&r->rec, peer_cb != NULL);
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

static int rec_send(struct env *env, const char *addr, const uint8_t *buf, size_t len)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->send(r->real, addr, buf, len);

	rec_check_scope(r, REC_SEND);
	rec_begin(r, REC_SEND);
	rec_buf_str(&r->rec, addr);
	rec_buf_u(&r->rec, len);
	rec_buf_u(&r->rec, record_hash(buf, len));
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

static int rec_reply(struct env *env, uint64_t conn, const uint8_t *buf, size_t len)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->reply(r->real, conn, buf, len);

	rec_check_scope(r, REC_REPLY);
	rec_begin(r, REC_REPLY);
	rec_buf_u(&r->rec, conn);
	rec_buf_u(&r->rec, len);
	rec_buf_u(&r->rec, record_hash(buf, len));
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

/* ---------------------------------------------------------------- storage */

/* The first open of a database records its whole contents (what the core
 * reads from then on is that plus its own writes). */
static int rec_storage_open(struct env *env, const char *name, struct sqlite3 **db)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->storage_open(r->real, name, db);
	bool first = true;

	rec_check_scope(r, REC_STORAGE);
	for (size_t i = 0; i < r->opened_count; i++)
		if (strcmp(r->opened[i], name) == 0)
			first = false;
	rec_begin(r, REC_STORAGE);
	rec_buf_str(&r->rec, name);
	rec_buf_i(&r->rec, rv);
	rec_buf_u(&r->rec, rv == 0 && first);
	if (rv == 0 && first) {
		sqlite3_int64 size = 0;
		unsigned char *img = sqlite3_serialize(*db, "main", &size, 0);
		if (!img && size > 0) {
			r->rec.failed = true; /* out of memory: said by rec_end */
		} else {
			rec_buf_bytes(&r->rec, img, (size_t)size);
			sqlite3_free(img);
		}
		if (r->opened_count < sizeof r->opened / sizeof r->opened[0] &&
		    strlen(name) < sizeof r->opened[0])
			snprintf(r->opened[r->opened_count++], sizeof r->opened[0], "%s",
				 name);
	}
	rec_end(r);
	return rv;
}

/* ---------------------------------------------------------------- misc */

static void rec_log(struct env *env, enum env_log_level level, const char *msg)
{
	struct record *r = rec_of(env);

	if (r->depth > 0) { /* logs from outside an input are not the core's */
		rec_begin(r, REC_LOG);
		rec_buf_u(&r->rec, (uint64_t)level);
		rec_buf_str(&r->rec, msg);
		rec_end(r);
	}
	r->real->ops->log(r->real, level, msg);
}

static void rec_exit(struct env *env, const char *why)
{
	struct record *r = rec_of(env);

	rec_check_scope(r, REC_EXIT);
	rec_begin(r, REC_EXIT);
	rec_buf_str(&r->rec, why);
	rec_end(r);
	rec_flush(r);
	r->real->ops->exit(r->real, why);
}

/* ---------------------------------------------------------------- executor */

static void rec_ctl_done(struct env_ctl_req *shadow, int status)
{
	struct rec_ctlreq *q = (struct rec_ctlreq *)shadow;
	struct rec_ctl *c = q->ctl;
	struct record *r = c->r;
	struct env_ctl_req *orig = q->orig;
	env_ctl_cb cb = q->cb;

	for (struct rec_ctlreq **p = &c->pending; *p; p = &(*p)->next)
		if (*p == q) {
			*p = q->next;
			break;
		}
	orig->state = shadow->state;
	orig->exit_code = shadow->exit_code;
	orig->health = shadow->health;
	memcpy(orig->message, shadow->message, sizeof orig->message);
	orig->message[sizeof orig->message - 1] = '\0';
	rec_begin(r, REC_CTL_DONE);
	rec_buf_u(&r->rec, q->no);
	rec_buf_i(&r->rec, status);
	rec_buf_u(&r->rec, (uint64_t)orig->state);
	rec_buf_i(&r->rec, orig->exit_code);
	rec_buf_u(&r->rec, (uint64_t)orig->health);
	rec_buf_str(&r->rec, orig->message);
	rec_end(r);
	free(q);
	rec_in_begin(r);
	cb(orig, status);
	rec_in_end(r);
}

static int rec_ctl_open(struct env *env, const struct env_container_spec *spec,
			struct env_ctl **ctl)
{
	struct record *r = rec_of(env);
	struct rec_ctl *c = calloc(1, sizeof *c);
	int rv;

	rec_check_scope(r, REC_CTL_OPEN);
	if (!c)
		rv = CS_ENOMEM;
	else
		rv = r->real->ops->ctl_open(r->real, spec, &c->real);
	if (rv == 0) {
		c->r = r;
		c->no = ++r->next_ctl;
		c->next_open = r->ctls;
		r->ctls = c;
	}
	rec_begin(r, REC_CTL_OPEN);
	rec_buf_str(&r->rec, spec->task_id);
	rec_buf_str(&r->rec, spec->image);
	if (rec_answer(r, rv, rv == 0 ? c->no : 0, c))
		return rv;
	*ctl = (struct env_ctl *)c;
	return 0;
}

static int rec_ctl_do(struct env_ctl *ctl, enum env_ctl_op op, struct env_ctl_req *req,
		      env_ctl_cb cb)
{
	struct rec_ctl *c = (struct rec_ctl *)ctl;
	struct record *r = c->r;
	struct rec_ctlreq *q = calloc(1, sizeof *q);
	int rv;

	rec_check_scope(r, REC_CTL_DO);
	if (!q) {
		rv = CS_ENOMEM;
	} else {
		q->shadow = *req;
		q->shadow.data = q;
		q->orig = req;
		q->cb = cb;
		q->ctl = c;
		rv = r->real->ops->ctl_do(c->real, op, &q->shadow, rec_ctl_done);
	}
	if (rv == 0) {
		q->no = ++r->next_req;
		q->next = c->pending;
		c->pending = q;
	}
	rec_begin(r, REC_CTL_DO);
	rec_buf_u(&r->rec, c->no);
	rec_buf_u(&r->rec, (uint64_t)op);
	return rec_answer(r, rv, rv == 0 ? q->no : 0, q);
}

static void rec_ctl_closed(struct env_ctl *real, void *data)
{
	struct rec_ctl *c = data;
	struct record *r = c->r;

	(void)real;
	while (c->pending) { /* cancelled by the close: freed once it is done */
		struct rec_ctlreq *q = c->pending;
		c->pending = q->next;
		free(q);
	}
	rec_begin(r, REC_CTL_CLOSED);
	rec_buf_u(&r->rec, c->no);
	rec_end(r);
	for (struct rec_ctl **p = &r->ctls; *p; p = &(*p)->next_open)
		if (*p == c) {
			*p = c->next_open;
			break;
		}
	rec_in_begin(r);
	c->close_cb((struct env_ctl *)c, c->close_data);
	rec_in_end(r);
	free(c);
}

static void rec_ctl_close(struct env_ctl *ctl, env_ctl_close_cb cb, void *data)
{
	struct rec_ctl *c = (struct rec_ctl *)ctl;
	struct record *r = c->r;

	rec_check_scope(r, REC_CTL_CLOSE);
	rec_begin(r, REC_CTL_CLOSE);
	rec_buf_u(&r->rec, c->no);
	rec_end(r);
	c->close_cb = cb;
	c->close_data = data;
	r->real->ops->ctl_close(c->real, rec_ctl_closed, c);
}

static void rec_list_done(struct env_ctl_list_req *shadow, int status)
{
	struct rec_listreq *q = (struct rec_listreq *)shadow;
	struct record *r = q->r;
	struct env_ctl_list_req *orig = q->orig;
	env_ctl_list_cb cb = q->cb;

	orig->found = shadow->found;
	orig->found_count = shadow->found_count;
	rec_begin(r, REC_LIST_DONE);
	rec_buf_u(&r->rec, q->no);
	rec_buf_i(&r->rec, status);
	rec_buf_u(&r->rec, status == 0 ? orig->found_count : 0);
	for (size_t i = 0; status == 0 && i < orig->found_count; i++) {
		const struct env_ctl_found *f = &orig->found[i];
		rec_buf_bytes(&r->rec, f->task_id,
			      strnlen(f->task_id, sizeof f->task_id));
		rec_buf_bytes(&r->rec, f->service_id,
			      strnlen(f->service_id, sizeof f->service_id));
		rec_buf_u(&r->rec, (uint64_t)f->state);
		rec_buf_i(&r->rec, f->exit_code);
	}
	rec_end(r);
	free(q);
	rec_in_begin(r);
	cb(orig, status);
	rec_in_end(r);
}

static int rec_ctl_list(struct env *env, struct env_ctl_list_req *req, env_ctl_list_cb cb)
{
	struct record *r = rec_of(env);
	struct rec_listreq *q = calloc(1, sizeof *q);
	int rv;

	rec_check_scope(r, REC_CTL_LIST);
	if (!q) {
		rv = CS_ENOMEM;
	} else {
		q->shadow = *req;
		q->shadow.data = q;
		q->orig = req;
		q->cb = cb;
		q->r = r;
		rv = r->real->ops->ctl_list(r->real, &q->shadow, rec_list_done);
	}
	if (rv == 0)
		q->no = ++r->next_list;
	rec_begin(r, REC_CTL_LIST);
	return rec_answer(r, rv, rv == 0 ? q->no : 0, q);
}

static void rec_logs_done(struct env_logs_req *shadow, int status)
{
	struct rec_logsreq *q = (struct rec_logsreq *)shadow;
	struct record *r = q->r;
	struct env_logs_req *orig = q->orig;
	env_logs_cb cb = q->cb;

	orig->lines = shadow->lines;
	orig->line_count = shadow->line_count;
	memcpy(orig->message, shadow->message, sizeof orig->message);
	orig->message[sizeof orig->message - 1] = '\0';
	rec_begin(r, REC_LOGS_DONE);
	rec_buf_u(&r->rec, q->no);
	rec_buf_i(&r->rec, status);
	rec_buf_str(&r->rec, orig->message);
	rec_buf_u(&r->rec, status == 0 ? orig->line_count : 0);
	for (size_t i = 0; status == 0 && i < orig->line_count; i++) {
		rec_buf_u(&r->rec, orig->lines[i].time_ns);
		rec_buf_u(&r->rec, orig->lines[i].stream);
		rec_buf_bytes(&r->rec, orig->lines[i].data, orig->lines[i].len);
	}
	rec_end(r);
	free(q);
	rec_in_begin(r);
	cb(orig, status);
	rec_in_end(r);
}

static int rec_logs_read(struct env *env, struct env_logs_req *req, env_logs_cb cb)
{
	struct record *r = rec_of(env);
	struct rec_logsreq *q = calloc(1, sizeof *q);
	int rv;

	rec_check_scope(r, REC_LOGS_READ);
	if (!q) {
		rv = CS_ENOMEM;
	} else {
		q->shadow = *req;
		q->shadow.data = q;
		q->orig = req;
		q->cb = cb;
		q->r = r;
		rv = r->real->ops->logs_read(r->real, &q->shadow, rec_logs_done);
	}
	if (rv == 0)
		q->no = ++r->next_logs;
	rec_begin(r, REC_LOGS_READ);
	rec_buf_str(&r->rec, req->task_id);
	return rec_answer(r, rv, rv == 0 ? q->no : 0, q);
}

static int rec_net_set(struct env *env, const struct env_net_state *st)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->net_set(r->real, st);

	rec_check_scope(r, REC_NET_SET);
	if (st->encrypted) {
		/* issue 17: which keys, never what they are */
		bool any = st->key_count > 0 && st->keys;
		rec_begin(r, REC_NET_KEYS);
		rec_buf_u(&r->rec, st->network_id);
		rec_buf_u(&r->rec, any ? st->key_count : 0);
		rec_buf_u(&r->rec, any ? st->keys[0].id : 0);
		rec_buf_u(&r->rec, any && st->key_primary < st->key_count
					   ? st->keys[st->key_primary].id
					   : 0);
		rec_buf_u(&r->rec, any ? st->keys[st->key_count - 1].id : 0);
		rec_buf_u(&r->rec, any && st->key_count <= ENV_NET_KEYS_MAX
					   ? keymgr_digest(st->keys, st->key_count)
					   : 0);
		rec_end(r);
	}
	rec_begin(r, REC_NET_SET);
	rec_buf_u(&r->rec, st->network_id);
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

static int rec_net_remove(struct env *env, uint64_t network_id)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->net_remove(r->real, network_id);

	rec_check_scope(r, REC_NET_REMOVE);
	rec_begin(r, REC_NET_REMOVE);
	rec_buf_u(&r->rec, network_id);
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

static void rec_net_error(struct env *env, char *buf, size_t size)
{
	struct record *r = rec_of(env);

	r->real->ops->net_error(r->real, buf, size);
	rec_check_scope(r, REC_NET_ERROR);
	rec_begin(r, REC_NET_ERROR);
	rec_buf_u(&r->rec, size);
	rec_buf_str(&r->rec, size ? buf : "");
	rec_end(r);
}

/* ---------------------------------------------------------------- identity */

static void rec_sender(struct env *env, struct env_identity *out)
{
	struct record *r = rec_of(env);

	r->real->ops->sender(r->real, out);
	rec_check_scope(r, REC_SENDER);
	rec_begin(r, REC_SENDER);
	rec_buf_identity(&r->rec, out);
	rec_end(r);
}

static int rec_pki_csr(struct env *env, uint8_t *buf, size_t cap, size_t *len)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->pki_csr(r->real, buf, cap, len);

	rec_check_scope(r, REC_PKI_CSR);
	rec_begin(r, REC_PKI_CSR);
	rec_buf_u(&r->rec, cap);
	rec_buf_i(&r->rec, rv);
	rec_buf_bytes(&r->rec, buf, rv == 0 ? *len : 0);
	rec_end(r);
	return rv;
}

static int rec_pki_ca_create(struct env *env, uint64_t cluster_id, ms_t life_ms,
			     uint8_t *cert, size_t cert_cap, size_t *cert_len,
			     uint8_t *key, size_t key_cap, size_t *key_len)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->pki_ca_create(r->real, cluster_id, life_ms, cert, cert_cap,
					     cert_len, key, key_cap, key_len);

	rec_check_scope(r, REC_PKI_CA);
	rec_begin(r, REC_PKI_CA);
	rec_buf_u(&r->rec, cluster_id);
	rec_buf_u(&r->rec, life_ms);
	rec_buf_i(&r->rec, rv);
	rec_buf_bytes(&r->rec, cert, rv == 0 ? *cert_len : 0);
	rec_buf_bytes(&r->rec, key, rv == 0 ? *key_len : 0);
	rec_end(r);
	return rv;
}

static int rec_pki_sign(struct env *env, const struct env_blob *ca_cert,
			const struct env_blob *ca_key, const struct env_blob *csr,
			const struct env_identity *who, ms_t life_ms, uint8_t *cert,
			size_t cap, size_t *len)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->pki_sign(r->real, ca_cert, ca_key, csr, who, life_ms, cert,
					cap, len);

	rec_check_scope(r, REC_PKI_SIGN);
	rec_begin(r, REC_PKI_SIGN);
	rec_buf_u(&r->rec, record_hash(csr->data, csr->len));
	rec_buf_u(&r->rec, who->node_id);
	rec_buf_u(&r->rec, (uint64_t)who->role);
	rec_buf_u(&r->rec, life_ms);
	rec_buf_i(&r->rec, rv);
	rec_buf_bytes(&r->rec, cert, rv == 0 ? *len : 0);
	rec_end(r);
	return rv;
}

static int rec_pki_install(struct env *env, const struct env_blob *cert,
			   const struct env_blob *roots, size_t root_count)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->pki_install(r->real, cert, roots, root_count);

	rec_check_scope(r, REC_PKI_INSTALL);
	rec_begin(r, REC_PKI_INSTALL);
	rec_buf_u(&r->rec, record_hash(cert->data, cert->len));
	rec_buf_u(&r->rec, root_count);
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

static int rec_pki_pin(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES])
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->pki_pin(r->real, digest);

	rec_check_scope(r, REC_PKI_PIN);
	rec_begin(r, REC_PKI_PIN);
	rec_buf_u(&r->rec, record_hash(digest, ENV_DIGEST_BYTES));
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

static int rec_pki_info(struct env *env, const struct env_blob *cert,
			struct env_identity *out)
{
	struct record *r = rec_of(env);
	int rv;

	memset(out, 0, sizeof *out);
	rv = r->real->ops->pki_info(r->real, cert, out);
	rec_check_scope(r, REC_PKI_INFO);
	rec_begin(r, REC_PKI_INFO);
	rec_buf_u(&r->rec, record_hash(cert->data, cert->len));
	rec_buf_i(&r->rec, rv);
	rec_buf_identity(&r->rec, out);
	rec_end(r);
	return rv;
}

static int rec_pki_lock(struct env *env, const uint8_t *kek)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->pki_lock(r->real, kek);

	rec_check_scope(r, REC_PKI_LOCK);
	rec_begin(r, REC_PKI_LOCK);
	rec_buf_u(&r->rec, kek != NULL);
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

static int rec_pki_unlock(struct env *env, const uint8_t *kek)
{
	struct record *r = rec_of(env);
	int rv = r->real->ops->pki_unlock(r->real, kek);

	rec_check_scope(r, REC_PKI_UNLOCK);
	rec_begin(r, REC_PKI_UNLOCK);
	rec_buf_i(&r->rec, rv);
	rec_end(r);
	return rv;
}

/* ---------------------------------------------------------------- control */

static void rec_control_answered(void *data, const Cs__ControlResponse *resp)
{
	struct rec_call *c = data;
	struct record *r = c->r;
	size_t len = cs__control_response__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);

	rec_check_scope(r, REC_CONTROL_ANSWER);
	rec_begin(r, REC_CONTROL_ANSWER);
	rec_buf_u(&r->rec, c->no);
	rec_buf_u(&r->rec, len);
	if (buf) {
		cs__control_response__pack(resp, buf);
		rec_buf_u(&r->rec, record_hash(buf, len));
	} else {
		r->rec.failed = true;
	}
	rec_end(r);
	free(buf);
	c->cb(c->data, resp);
	free(c);
}

int record_control_call(struct record *r, struct control_rpc *rpc,
			const Cs__ControlRequest *req, control_rpc_cb cb, void *data)
{
	struct rec_call *c = calloc(1, sizeof *c);
	size_t len = cs__control_request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	int rv;

	if (!c || !buf) {
		free(c);
		free(buf);
		return CS_ENOMEM;
	}
	cs__control_request__pack(req, buf);
	c->r = r;
	c->cb = cb;
	c->data = data;
	c->no = ++r->next_call;
	rec_begin(r, REC_CONTROL);
	rec_buf_u(&r->rec, c->no);
	rec_buf_bytes(&r->rec, buf, len);
	rec_end(r);
	free(buf);
	rec_in_begin(r);
	rv = control_rpc_call(rpc, req, rec_control_answered, c);
	rec_in_end(r);
	if (rv)
		free(c);
	return rv;
}

/* ---------------------------------------------------------------- program */

int record_program_start(struct record *r, const struct env_program_ops *ops,
			 const void *cfg, void **state)
{
	int rv;

	r->last_now = r->real->ops->now_ms(r->real);
	r->last_flush_ms = r->last_now;
	rec_begin(r, REC_START);
	rec_buf_u(&r->rec, r->last_now);
	rec_end(r);
	rec_in_begin(r);
	rv = ops->start(cfg, &r->env, state);
	rec_in_end(r);
	return rv;
}

void record_program_stop(struct record *r, const struct env_program_ops *ops, void *state)
{
	rec_begin(r, REC_STOP);
	rec_end(r);
	ops->stop(state);
	rec_flush(r);
	for (size_t i = 0; i < REC_TIMER_BUCKETS; i++)
		while (r->timers[i]) {
			struct rec_timer *t = r->timers[i];
			r->timers[i] = t->next;
			free(t);
		}
}

/* ---------------------------------------------------------------- open/close */

int record_open(const char *path, struct env *real, const struct node_cfg *cfg,
		struct record **out, char *err, size_t n)
{
	struct record *r = calloc(1, sizeof *r);
	struct rec_buf hdr = {0};
	const struct env_ops *o = real->ops;
	unsigned has = 0;

	if (!r)
		return CS_ENOMEM;
	r->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (r->fd < 0) {
		snprintf(err, n, "--record %s: %s", path, strerror(errno));
		free(r);
		return CS_ESTORAGE;
	}
	/* an existing file too: it holds tokens and keys */
	if (fchmod(r->fd, 0600) != 0) {
		snprintf(err, n, "--record %s: %s", path, strerror(errno));
		close(r->fd);
		free(r);
		return CS_ESTORAGE;
	}
	r->real = real;
	r->cfg = cfg;
	r->ops = *o;
	r->ops.now_ms = rec_now_ms;
	r->ops.timer_start = rec_timer_start;
	r->ops.timer_stop = rec_timer_stop;
	r->ops.self_addr = rec_self_addr;
	r->ops.listen = rec_listen;
	r->ops.send = rec_send;
	r->ops.storage_open = rec_storage_open;
	r->ops.random_u64 = rec_random_u64;
	r->ops.log = rec_log;
	r->ops.ctl_open = rec_ctl_open;
	r->ops.ctl_do = rec_ctl_do;
	r->ops.ctl_close = rec_ctl_close;
	r->ops.ctl_list = rec_ctl_list;
	r->ops.exit = rec_exit;
	r->ops.sender = rec_sender;
	r->ops.pki_csr = rec_pki_csr;
	r->ops.pki_ca_create = rec_pki_ca_create;
	r->ops.pki_sign = rec_pki_sign;
	r->ops.pki_install = rec_pki_install;
	r->ops.pki_pin = rec_pki_pin;
	r->ops.pki_info = rec_pki_info;
	r->ops.reply = rec_reply;
	r->ops.pki_lock = o->pki_lock ? rec_pki_lock : NULL;
	r->ops.pki_unlock = o->pki_unlock ? rec_pki_unlock : NULL;
	r->ops.wall_ms = o->wall_ms ? rec_wall_ms : NULL;
	r->ops.net_set = o->net_set ? rec_net_set : NULL;
	r->ops.net_remove = o->net_remove ? rec_net_remove : NULL;
	r->ops.logs_read = o->logs_read ? rec_logs_read : NULL;
	r->ops.net_error = o->net_error ? rec_net_error : NULL;
	r->env.ops = &r->ops;
	r->env.impl = r;
	has |= o->wall_ms ? REC_HAS_WALL : 0;
	has |= o->pki_lock && o->pki_unlock ? REC_HAS_LOCK : 0;
	has |= o->net_set && o->net_remove ? REC_HAS_NET : 0;
	has |= o->logs_read ? REC_HAS_LOGS : 0;
	has |= o->net_error ? REC_HAS_NET_ERROR : 0;
	record_cfg_encode(&hdr, cfg, o->self_addr(real), has);
	rec_buf_raw(&r->out, RECORD_MAGIC, RECORD_MAGIC_BYTES);
	rec_buf_u(&r->out, RECORD_VERSION);
	rec_buf_u(&r->out, hdr.len);
	rec_buf_raw(&r->out, hdr.p, hdr.len);
	if (hdr.failed || r->out.failed) {
		free(hdr.p);
		record_close(r);
		snprintf(err, n, "--record %s: out of memory", path);
		return CS_ENOMEM;
	}
	free(hdr.p);
	rec_flush(r);
	*out = r;
	return 0;
}

struct env *record_env(struct record *r)
{
	return &r->env;
}

uint64_t record_bytes(const struct record *r)
{
	return r->written + r->out.len;
}

void record_close(struct record *r)
{
	if (!r)
		return;
	rec_flush(r);
	if (r->fd >= 0)
		close(r->fd);
	for (size_t i = 0; i < REC_TIMER_BUCKETS; i++)
		while (r->timers[i]) {
			struct rec_timer *t = r->timers[i];
			r->timers[i] = t->next;
			free(t);
		}
	while (r->ctls) {
		struct rec_ctl *c = r->ctls;
		r->ctls = c->next_open;
		while (c->pending) {
			struct rec_ctlreq *q = c->pending;
			c->pending = q->next;
			free(q);
		}
		free(c);
	}
	free(r->out.p);
	free(r->rec.p);
	free(r);
}
