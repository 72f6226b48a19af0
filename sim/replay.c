/* replay: a recording fed back to the core. See replay.h. */
#include "sim/replay.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/control_rpc.h"
#include "core/errors.h"
#include "core/keymanager.h"
#include "core/node.h"
#include "net/record.h"
#include "sim/report.h"
#include "sim/timeline.h"

#define RP_DESC_BYTES 400u
#define RP_NAMES_MAX  64u /* strings of the header kept (addresses, tokens) */

/* ---------------------------------------------------------------- reading */

struct rp_rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static uint64_t rd_u(struct rp_rd *d)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t c;
		if (d->off >= d->len) {
			d->bad = true;
			return 0;
		}
		c = d->p[d->off++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	d->bad = true;
	return 0;
}

static int64_t rd_i(struct rp_rd *d)
{
	uint64_t z = rd_u(d);
	return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

/* Bytes: a pointer into the buffer (not NUL-terminated) and a length. */
static const uint8_t *rd_bytes(struct rp_rd *d, size_t *len)
{
	uint64_t l = rd_u(d);
	const uint8_t *p;
	if (d->bad || l > d->len - d->off) {
		d->bad = true;
		*len = 0;
		return NULL;
	}
	p = d->p + d->off;
	d->off += (size_t)l;
	*len = (size_t)l;
	return p;
}

/* An optional string, copied into a new NUL-terminated allocation (NULL
 * when absent). Sets d->bad on out of memory too. */
static char *rd_str(struct rp_rd *d)
{
	uint64_t l = rd_u(d);
	char *s;
	if (l == 0 || d->bad)
		return NULL;
	l--;
	if (l > d->len - d->off) {
		d->bad = true;
		return NULL;
	}
	s = malloc((size_t)l + 1);
	if (!s) {
		d->bad = true;
		return NULL;
	}
	memcpy(s, d->p + d->off, (size_t)l);
	s[l] = '\0';
	d->off += (size_t)l;
	return s;
}

static void rd_raw(struct rp_rd *d, void *out, size_t len)
{
	if (d->bad || len > d->len - d->off) {
		d->bad = true;
		memset(out, 0, len);
		return;
	}
	memcpy(out, d->p + d->off, len);
	d->off += len;
}

static void rd_identity(struct rp_rd *d, struct env_identity *id)
{
	char *ip;
	memset(id, 0, sizeof *id);
	id->node_id = rd_u(d);
	id->cluster_id = rd_u(d);
	id->role = (enum env_role)rd_u(d);
	id->expires_ms = rd_u(d);
	id->life_ms = rd_u(d);
	rd_raw(d, id->root, ENV_DIGEST_BYTES);
	rd_raw(d, id->key, ENV_DIGEST_BYTES);
	id->conn = rd_u(d);
	ip = rd_str(d);
	if (ip)
		snprintf(id->peer_ip, sizeof id->peer_ip, "%s", ip);
	free(ip);
}

/* ---------------------------------------------------------------- writing
 * (the arguments of a call, encoded as the recorder does, to compare) */

struct rp_wr {
	uint8_t p[512];
	size_t len;
};

static void wr_u(struct rp_wr *w, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		if (w->len < sizeof w->p)
			w->p[w->len++] = (uint8_t)(c | (v ? 0x80 : 0));
	} while (v);
}

/* Strings longer than the buffer are compared by their start and length
 * (a log line is whole in the recording; the comparison of its first
 * 480 bytes and its length is what is checked). */
static void wr_str(struct rp_wr *w, const char *s)
{
	size_t len;
	if (!s) {
		wr_u(w, 0);
		return;
	}
	len = strlen(s);
	wr_u(w, len + 1);
	for (size_t i = 0; i < len && w->len < sizeof w->p; i++)
		w->p[w->len++] = (uint8_t)s[i];
}

/* ---------------------------------------------------------------- describing */

/* The fields of each kind, for people: u varint, i signed, x hex varint,
 * s string, b bytes (length shown), d identity. */
static const struct {
	const char *name;
	const char *fields;
} rp_kinds[REC_KIND_MAX] = {
	[REC_START] = {"start", "u:now"},
	[REC_STOP] = {"stop", ""},
	[REC_TIMER] = {"timer", "u:id"},
	[REC_RECV] = {"recv", "s:from b:bytes"},
	[REC_PEER] = {"peer", "s:addr u:up"},
	[REC_CTL_DONE] = {"ctl-done", "u:req i:status u:state i:exit u:health s:msg"},
	[REC_CTL_CLOSED] = {"ctl-closed", "u:ctl"},
	[REC_LIST_DONE] = {"list-done", "u:list i:status u:count"},
	[REC_LOGS_DONE] = {"logs-done", "u:logs i:status s:msg u:count"},
	[REC_CONTROL] = {"control", "u:call b:request"},
	[REC_NOW] = {"now", "i:delta"},
	[REC_WALL] = {"wall", "u:ms"},
	[REC_RANDOM] = {"random", "x:value"},
	[REC_TIMER_START] = {"timer-start", "u:delay u:repeat i:rv u:id"},
	[REC_TIMER_STOP] = {"timer-stop", "u:id"},
	[REC_LISTEN] = {"listen", "u:recv u:peer i:rv"},
	[REC_SEND] = {"send", "s:to u:len x:hash i:rv"},
	[REC_REPLY] = {"reply", "u:conn u:len x:hash i:rv"},
	[REC_STORAGE] = {"storage-open", "s:name i:rv u:first b:image"},
	[REC_LOG] = {"log", "u:level s:msg"},
	[REC_CTL_OPEN] = {"ctl-open", "s:task s:image i:rv u:ctl"},
	[REC_CTL_DO] = {"ctl-do", "u:ctl u:op i:rv u:req"},
	[REC_CTL_CLOSE] = {"ctl-close", "u:ctl"},
	[REC_CTL_LIST] = {"ctl-list", "i:rv u:list"},
	[REC_EXIT] = {"exit", "s:why"},
	[REC_SENDER] = {"sender", "d:id"},
	[REC_PKI_CSR] = {"pki-csr", "u:cap i:rv b:csr"},
	[REC_PKI_CA] = {"pki-ca-create", "u:cluster u:life i:rv b:cert b:key"},
	[REC_PKI_SIGN] = {"pki-sign", "x:csr u:node u:role u:life i:rv b:cert"},
	[REC_PKI_INSTALL] = {"pki-install", "x:cert u:roots i:rv"},
	[REC_PKI_PIN] = {"pki-pin", "x:digest i:rv"},
	[REC_PKI_INFO] = {"pki-info", "x:cert i:rv d:id"},
	[REC_PKI_LOCK] = {"pki-lock", "u:set i:rv"},
	[REC_PKI_UNLOCK] = {"pki-unlock", "i:rv"},
	[REC_NET_SET] = {"net-set", "x:net i:rv"},
	[REC_NET_REMOVE] = {"net-remove", "x:net i:rv"},
	[REC_NET_ERROR] = {"net-error", "u:size s:words"},
	[REC_NET_KEYS] = {"net-keys",
			  "x:net u:count u:oldest u:primary u:newest x:digest"},
	[REC_LOGS_READ] = {"logs-read", "s:task i:rv u:logs"},
	[REC_CONTROL_ANSWER] = {"control-answer", "u:call u:len x:hash"},
};

static const char *rp_kind_name(unsigned kind)
{
	return kind < REC_KIND_MAX && rp_kinds[kind].name ? rp_kinds[kind].name : "?";
}

/* Appends to out (cap bytes) a description of the kind and the fields that
 * body holds (as many as it holds: a call's arguments only, or a whole
 * record). */
static void rp_describe(char *out, size_t cap, unsigned kind, const uint8_t *body,
			size_t len)
{
	struct rp_rd d = {body, len, 0, false};
	const char *f =
		kind < REC_KIND_MAX && rp_kinds[kind].fields ? rp_kinds[kind].fields : "";
	size_t o = (size_t)snprintf(out, cap, "%s", rp_kind_name(kind));

	while (*f && d.off < d.len && o < cap) {
		char type = f[0];
		const char *name = f + 2, *end = strchr(name, ' ');
		int nlen = (int)(end ? (size_t)(end - name) : strlen(name));
		char val[160];

		if (type == 'u')
			snprintf(val, sizeof val, "%" PRIu64, rd_u(&d));
		else if (type == 'i')
			snprintf(val, sizeof val, "%" PRId64, rd_i(&d));
		else if (type == 'x')
			snprintf(val, sizeof val, "%016" PRIx64, rd_u(&d));
		else if (type == 's') {
			char *s = rd_str(&d);
			snprintf(val, sizeof val, "\"%.120s%s\"", s ? s : "",
				 s && strlen(s) > 120 ? "..." : "");
			free(s);
		} else if (type == 'b') {
			size_t bl;
			const uint8_t *bp = rd_bytes(&d, &bl);
			snprintf(val, sizeof val, "%zu bytes (hash %016" PRIx64 ")", bl,
				 bp ? record_hash(bp, bl) : 0);
		} else {
			struct env_identity id;
			rd_identity(&d, &id);
			snprintf(val, sizeof val,
				 "{node %016" PRIx64 " role %d conn %" PRIu64 "}",
				 id.node_id, (int)id.role, id.conn);
		}
		if (d.bad)
			break;
		o += (size_t)snprintf(out + o, cap - o, " %.*s=%s", nlen, name, val);
		f = end ? end + 1 : name + nlen;
	}
}

/* ---------------------------------------------------------------- state */

struct rp_timer {
	env_timer_id id;
	env_timer_cb cb;
	void *data;
	bool repeat;
};

struct rp_ctl {
	struct replay *r;
	uint64_t no;
	bool closing;
	env_ctl_close_cb close_cb;
	void *close_data;
	struct rp_ctl *next;
};

struct rp_req {
	uint64_t no;
	unsigned kind; /* REC_CTL_DO, REC_CTL_LIST, REC_LOGS_READ */
	void *req;
	void *cb;
	struct rp_ctl *ctl;
	struct rp_req *next;
};

struct rp_call {
	struct replay *r;
	uint64_t no;
};

struct rp_db {
	char name[64];
	sqlite3 *db;
};

struct replay {
	struct env env;
	struct env_ops ops;
	/* the whole file */
	const uint8_t *buf;
	size_t len, off;
	size_t seg_end; /* where this segment's records end */
	/* the record last read */
	unsigned kind;
	const uint8_t *body;
	size_t body_len;
	uint64_t index; /* of the next record */
	ms_t now;
	/* the segment's configuration */
	char *strs[RP_NAMES_MAX];
	size_t str_count;
	struct node_cfg ncfg;
	struct manager_cfg mcfg;
	struct agent_desc desc;
	struct manager_peer voters[16];
	const char *join_addrs[16];
	const char *managers[16];
	Cs__Label labels[32];
	Cs__Label *label_ptrs[32];
	uint8_t *blobs[3];
	char self_addr[64];
	/* the program */
	void *state;
	bool running;
	env_recv_cb recv_cb;
	env_peer_cb peer_cb;
	void *listen_data;
	struct rp_timer *timers;
	size_t timer_count, timer_cap;
	struct rp_ctl *ctls;
	struct rp_req *reqs;
	struct rp_db dbs[8];
	size_t db_count;
	env_timer_id fake_timer; /* after a divergence */
	bool ended;		 /* the segment ended inside an input */
	/* output */
	struct replay_result *res;
	replay_mark_cb mark;
	void *mark_ctx;
	void (*log_cb)(void *ctx, ms_t at_ms, const char *line);
	void *log_ctx;
	struct replay_mark last_mark;
};

static struct replay *rp_of(struct env *env)
{
	return (struct replay *)((char *)env - offsetof(struct replay, env));
}

/* Reads the next record of the segment into r->kind/body: false at the
 * segment's end (or a record cut by the file's end: res->truncated). */
static bool rp_read(struct replay *r)
{
	struct rp_rd d = {r->buf, r->seg_end, r->off, false};
	uint64_t l;

	if (r->off >= r->seg_end)
		return false;
	if (r->seg_end - r->off >= RECORD_MAGIC_BYTES &&
	    memcmp(r->buf + r->off, RECORD_MAGIC, RECORD_MAGIC_BYTES) == 0) {
		/* the next segment (a record never starts so: its kind
		 * byte would be 'S', no kind) */
		r->seg_end = r->off;
		return false;
	}
	l = rd_u(&d);
	if (d.bad || l == 0 || l > r->seg_end - d.off) {
		r->res->truncated = true;
		r->off = r->seg_end;
		return false;
	}
	r->kind = r->buf[d.off];
	r->body = r->buf + d.off + 1;
	r->body_len = (size_t)l - 1;
	r->off = d.off + (size_t)l;
	r->index++;
	r->res->events++;
	return true;
}

static void rp_diverge(struct replay *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rp_diverge(struct replay *r, const char *fmt, ...)
{
	va_list ap;

	if (r->res->diverged)
		return;
	r->res->diverged = true;
	r->res->at_event = r->index ? r->index - 1 : 0;
	r->res->at_ms = r->now;
	va_start(ap, fmt);
	vsnprintf(r->res->why, sizeof r->res->why, fmt, ap);
	va_end(ap);
}

/* The core made a call of kind with arguments args: the next record must be
 * that call with those arguments. Returns a reader at the recorded answer,
 * or false (a divergence, recorded) */
static bool rp_call(struct replay *r, unsigned kind, const struct rp_wr *args,
		    struct rp_rd *answer)
{
	char want[RP_DESC_BYTES], came[RP_DESC_BYTES];
	size_t alen = args ? args->len : 0;

	if (r->res->diverged || r->ended)
		return false;
	if (!rp_read(r)) {
		/* the recording ends inside an input (the process died between
		 * two writes): not a divergence; the replay stops after it */
		r->ended = true;
		return false;
	}
	if (r->kind == kind && r->body_len >= alen &&
	    (alen == 0 || memcmp(r->body, args->p, alen) == 0)) {
		answer->p = r->body;
		answer->len = r->body_len;
		answer->off = alen;
		answer->bad = false;
		return true;
	}
	rp_describe(want, sizeof want, r->kind, r->body, r->body_len);
	rp_describe(came, sizeof came, kind, args ? args->p : NULL, alen);
	rp_diverge(r, "expected %s, came %s", want, came);
	return false;
}

/* ---------------------------------------------------------------- env ops */

static ms_t rp_now_ms(struct env *env)
{
	struct replay *r = rp_of(env);
	struct rp_rd a;

	if (rp_call(r, REC_NOW, NULL, &a))
		r->now = (ms_t)((int64_t)r->now + rd_i(&a));
	return r->now;
}

static uint64_t rp_wall_ms(struct env *env)
{
	struct replay *r = rp_of(env);
	struct rp_rd a;

	return rp_call(r, REC_WALL, NULL, &a) ? rd_u(&a) : 0;
}

static uint64_t rp_random_u64(struct env *env)
{
	struct replay *r = rp_of(env);
	struct rp_rd a;

	return rp_call(r, REC_RANDOM, NULL, &a) ? rd_u(&a) : 0x5eed;
}

static int rp_timer_start(struct env *env, ms_t delay_ms, ms_t repeat_ms, env_timer_cb cb,
			  void *data, env_timer_id *id)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	wr_u(&w, delay_ms);
	wr_u(&w, repeat_ms);
	if (!rp_call(r, REC_TIMER_START, &w, &a)) {
		*id = ++r->fake_timer; /* never fires: the replay stops */
		return 0;
	}
	rv = (int)rd_i(&a);
	*id = rd_u(&a);
	if (rv)
		return rv;
	if (r->timer_count == r->timer_cap) {
		size_t cap = r->timer_cap ? r->timer_cap * 2 : 64;
		struct rp_timer *t = realloc(r->timers, cap * sizeof *t);
		if (!t) {
			rp_diverge(r, "out of memory");
			return 0;
		}
		r->timers = t;
		r->timer_cap = cap;
	}
	r->timers[r->timer_count++] = (struct rp_timer){
		.id = *id, .cb = cb, .data = data, .repeat = repeat_ms > 0};
	return 0;
}

static void rp_timer_drop(struct replay *r, env_timer_id id)
{
	for (size_t i = 0; i < r->timer_count; i++)
		if (r->timers[i].id == id) {
			r->timers[i] = r->timers[--r->timer_count];
			return;
		}
}

static void rp_timer_stop(struct env *env, env_timer_id id)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, id);
	(void)rp_call(r, REC_TIMER_STOP, &w, &a);
	rp_timer_drop(r, id);
}

static const char *rp_self_addr(struct env *env)
{
	return rp_of(env)->self_addr;
}

static int rp_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
		     void *data)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, recv_cb != NULL);
	wr_u(&w, peer_cb != NULL);
	r->recv_cb = recv_cb;
	r->peer_cb = peer_cb;
	r->listen_data = data;
	return rp_call(r, REC_LISTEN, &w, &a) ? (int)rd_i(&a) : 0;
}

static int rp_send(struct env *env, const char *addr, const uint8_t *buf, size_t len)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_str(&w, addr);
	wr_u(&w, len);
	wr_u(&w, record_hash(buf, len));
	if (!rp_call(r, REC_SEND, &w, &a))
		return 0;
	r->res->sends++;
	return (int)rd_i(&a);
}

static int rp_reply(struct env *env, uint64_t conn, const uint8_t *buf, size_t len)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, conn);
	wr_u(&w, len);
	wr_u(&w, record_hash(buf, len));
	if (!rp_call(r, REC_REPLY, &w, &a))
		return 0;
	r->res->sends++;
	return (int)rd_i(&a);
}

/* A database image as recorded, into an in-memory database. */
static int rp_db_load(const uint8_t *img, size_t len, sqlite3 **out)
{
	sqlite3 *db;
	unsigned char *copy;

	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return CS_ESTORAGE;
	}
	if (len > 0) {
		copy = sqlite3_malloc64(len);
		if (!copy) {
			sqlite3_close(db);
			return CS_ENOMEM;
		}
		memcpy(copy, img, len);
		/* a WAL database's header says so (bytes 18 and 19 = 2): the
		 * in-memory copy is a rollback one (the pages hold it all) */
		if (len > 19 && copy[18] == 2 && copy[19] == 2)
			copy[18] = copy[19] = 1;
		if (sqlite3_deserialize(
			    db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
			    SQLITE_DESERIALIZE_FREEONCLOSE |
				    SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK) {
			sqlite3_close(db);
			return CS_ECORRUPT;
		}
	}
	*out = db;
	return 0;
}

static int rp_storage_open(struct env *env, const char *name, struct sqlite3 **db)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	wr_str(&w, name);
	if (!rp_call(r, REC_STORAGE, &w, &a))
		return CS_ESTORAGE;
	rv = (int)rd_i(&a);
	if (rv)
		return rv;
	for (size_t i = 0; i < r->db_count; i++)
		if (strcmp(r->dbs[i].name, name) == 0) {
			*db = r->dbs[i].db;
			return 0;
		}
	if (rd_u(&a) != 1 || r->db_count == sizeof r->dbs / sizeof r->dbs[0] ||
	    strlen(name) >= sizeof r->dbs[0].name) {
		rp_diverge(r, "database %s: no image recorded at its first open", name);
		return CS_ESTORAGE;
	}
	{
		size_t len;
		const uint8_t *img = rd_bytes(&a, &len);
		if (a.bad || (rv = rp_db_load(img, len, db)) != 0) {
			rp_diverge(r, "database %s: its recorded image does not load",
				   name);
			return CS_ESTORAGE;
		}
	}
	snprintf(r->dbs[r->db_count].name, sizeof r->dbs[0].name, "%s", name);
	r->dbs[r->db_count++].db = *db;
	return 0;
}

static void rp_log(struct env *env, enum env_log_level level, const char *msg)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, (uint64_t)level);
	wr_str(&w, msg);
	if (!rp_call(r, REC_LOG, &w, &a))
		return;
	/* the whole line: the comparison above saw its start and length */
	{
		char *rec;
		struct rp_rd d = {r->body, r->body_len, 0, false};
		(void)rd_u(&d);
		rec = rd_str(&d);
		if (!rec || strcmp(rec, msg) != 0)
			rp_diverge(r, "expected log \"%.200s\", came log \"%.200s\"",
				   rec ? rec : "", msg);
		free(rec);
	}
	r->res->logs++;
	if (r->log_cb)
		r->log_cb(r->log_ctx, r->now, msg);
}

static void rp_exit(struct env *env, const char *why)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_str(&w, why);
	(void)rp_call(r, REC_EXIT, &w, &a);
}

static void rp_sender(struct env *env, struct env_identity *out)
{
	struct replay *r = rp_of(env);
	struct rp_rd a;

	memset(out, 0, sizeof *out);
	if (rp_call(r, REC_SENDER, NULL, &a))
		rd_identity(&a, out);
}

/* Copies recorded bytes into a caller's buffer of cap bytes. */
static int rp_out_bytes(struct replay *r, struct rp_rd *a, uint8_t *buf, size_t cap,
			size_t *len)
{
	size_t l;
	const uint8_t *p = rd_bytes(a, &l);
	if (a->bad || l > cap) {
		rp_diverge(r, "a recorded pki result does not fit (%zu > %zu bytes)", l,
			   cap);
		return CS_ELIMIT;
	}
	if (l)
		memcpy(buf, p, l);
	*len = l;
	return 0;
}

static int rp_pki_csr(struct env *env, uint8_t *buf, size_t cap, size_t *len)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	wr_u(&w, cap);
	if (!rp_call(r, REC_PKI_CSR, &w, &a))
		return CS_EINVAL;
	rv = (int)rd_i(&a);
	return rv ? rv : rp_out_bytes(r, &a, buf, cap, len);
}

static int rp_pki_ca_create(struct env *env, uint64_t cluster_id, ms_t life_ms,
			    uint8_t *cert, size_t cert_cap, size_t *cert_len,
			    uint8_t *key, size_t key_cap, size_t *key_len)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	wr_u(&w, cluster_id);
	wr_u(&w, life_ms);
	if (!rp_call(r, REC_PKI_CA, &w, &a))
		return CS_EINVAL;
	rv = (int)rd_i(&a);
	if (rv)
		return rv;
	if ((rv = rp_out_bytes(r, &a, cert, cert_cap, cert_len)) != 0)
		return rv;
	return rp_out_bytes(r, &a, key, key_cap, key_len);
}

static int rp_pki_sign(struct env *env, const struct env_blob *ca_cert,
		       const struct env_blob *ca_key, const struct env_blob *csr,
		       const struct env_identity *who, ms_t life_ms, uint8_t *cert,
		       size_t cap, size_t *len)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	(void)ca_cert;
	(void)ca_key;
	wr_u(&w, record_hash(csr->data, csr->len));
	wr_u(&w, who->node_id);
	wr_u(&w, (uint64_t)who->role);
	wr_u(&w, life_ms);
	if (!rp_call(r, REC_PKI_SIGN, &w, &a))
		return CS_EINVAL;
	rv = (int)rd_i(&a);
	return rv ? rv : rp_out_bytes(r, &a, cert, cap, len);
}

static int rp_pki_install(struct env *env, const struct env_blob *cert,
			  const struct env_blob *roots, size_t root_count)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	(void)roots;
	wr_u(&w, record_hash(cert->data, cert->len));
	wr_u(&w, root_count);
	return rp_call(r, REC_PKI_INSTALL, &w, &a) ? (int)rd_i(&a) : CS_EAUTH;
}

static int rp_pki_pin(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES])
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, record_hash(digest, ENV_DIGEST_BYTES));
	return rp_call(r, REC_PKI_PIN, &w, &a) ? (int)rd_i(&a) : 0;
}

static int rp_pki_info(struct env *env, const struct env_blob *cert,
		       struct env_identity *out)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	memset(out, 0, sizeof *out);
	wr_u(&w, record_hash(cert->data, cert->len));
	if (!rp_call(r, REC_PKI_INFO, &w, &a))
		return CS_EINVAL;
	rv = (int)rd_i(&a);
	rd_identity(&a, out);
	return rv;
}

static int rp_pki_lock(struct env *env, const uint8_t *kek)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, kek != NULL);
	return rp_call(r, REC_PKI_LOCK, &w, &a) ? (int)rd_i(&a) : CS_ESTORAGE;
}

static int rp_pki_unlock(struct env *env, const uint8_t *kek)
{
	struct replay *r = rp_of(env);
	struct rp_rd a;

	(void)kek;
	return rp_call(r, REC_PKI_UNLOCK, NULL, &a) ? (int)rd_i(&a) : CS_EAUTH;
}

static int rp_net_set(struct env *env, const struct env_net_state *st)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	if (st->encrypted) {
		/* issue 17: the keys it was given, by ids and digest */
		struct rp_wr k = {.len = 0};
		bool any = st->key_count > 0 && st->keys;
		wr_u(&k, st->network_id);
		wr_u(&k, any ? st->key_count : 0);
		wr_u(&k, any ? st->keys[0].id : 0);
		wr_u(&k, any && st->key_primary < st->key_count
				 ? st->keys[st->key_primary].id
				 : 0);
		wr_u(&k, any ? st->keys[st->key_count - 1].id : 0);
		wr_u(&k, any && st->key_count <= ENV_NET_KEYS_MAX
				 ? keymgr_digest(st->keys, st->key_count)
				 : 0);
		if (!rp_call(r, REC_NET_KEYS, &k, &a))
			return CS_EEXEC;
	}
	wr_u(&w, st->network_id);
	return rp_call(r, REC_NET_SET, &w, &a) ? (int)rd_i(&a) : CS_EEXEC;
}

static int rp_net_remove(struct env *env, uint64_t network_id)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, network_id);
	return rp_call(r, REC_NET_REMOVE, &w, &a) ? (int)rd_i(&a) : 0;
}

/* The words of the last refused net_set, as the recorded env gave them. */
static void rp_net_error(struct env *env, char *buf, size_t size)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	char *words;

	if (size)
		buf[0] = '\0';
	wr_u(&w, size);
	if (!rp_call(r, REC_NET_ERROR, &w, &a))
		return;
	words = rd_str(&a);
	if (words && size)
		snprintf(buf, size, "%s", words);
	free(words);
}

/* ---------------------------------------------------------------- executor */

static struct rp_req *rp_req_add(struct replay *r, unsigned kind, uint64_t no, void *req,
				 void *cb, struct rp_ctl *ctl)
{
	struct rp_req *q = calloc(1, sizeof *q);
	if (!q) {
		rp_diverge(r, "out of memory");
		return NULL;
	}
	q->no = no;
	q->kind = kind;
	q->req = req;
	q->cb = cb;
	q->ctl = ctl;
	q->next = r->reqs;
	r->reqs = q;
	return q;
}

/* Takes the pending request (kind, no) out of the list, or NULL. */
static struct rp_req *rp_req_take(struct replay *r, unsigned kind, uint64_t no)
{
	for (struct rp_req **p = &r->reqs; *p; p = &(*p)->next)
		if ((*p)->kind == kind && (*p)->no == no) {
			struct rp_req *q = *p;
			*p = q->next;
			return q;
		}
	return NULL;
}

static int rp_ctl_open(struct env *env, const struct env_container_spec *spec,
		       struct env_ctl **ctl)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	struct rp_ctl *c;
	int rv;

	wr_str(&w, spec->task_id);
	wr_str(&w, spec->image);
	if (!rp_call(r, REC_CTL_OPEN, &w, &a))
		return CS_ENOTSUP;
	rv = (int)rd_i(&a);
	if (rv)
		return rv;
	c = calloc(1, sizeof *c);
	if (!c) {
		rp_diverge(r, "out of memory");
		return CS_ENOMEM;
	}
	c->r = r;
	c->no = rd_u(&a);
	c->next = r->ctls;
	r->ctls = c;
	*ctl = (struct env_ctl *)c;
	return 0;
}

static int rp_ctl_do(struct env_ctl *ctl, enum env_ctl_op op, struct env_ctl_req *req,
		     env_ctl_cb cb)
{
	struct rp_ctl *c = (struct rp_ctl *)ctl;
	struct replay *r = c->r;
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	wr_u(&w, c->no);
	wr_u(&w, (uint64_t)op);
	if (!rp_call(r, REC_CTL_DO, &w, &a))
		return CS_EAGAIN;
	rv = (int)rd_i(&a);
	if (rv == 0)
		rp_req_add(r, REC_CTL_DO, rd_u(&a), req, (void *)cb, c);
	return rv;
}

static void rp_ctl_close(struct env_ctl *ctl, env_ctl_close_cb cb, void *data)
{
	struct rp_ctl *c = (struct rp_ctl *)ctl;
	struct replay *r = c->r;
	struct rp_wr w = {.len = 0};
	struct rp_rd a;

	wr_u(&w, c->no);
	(void)rp_call(r, REC_CTL_CLOSE, &w, &a);
	for (struct rp_req **p = &r->reqs; *p;) /* cancelled */
		if ((*p)->ctl == c) {
			struct rp_req *q = *p;
			*p = q->next;
			free(q);
		} else {
			p = &(*p)->next;
		}
	c->closing = true;
	c->close_cb = cb;
	c->close_data = data;
}

static int rp_ctl_list(struct env *env, struct env_ctl_list_req *req, env_ctl_list_cb cb)
{
	struct replay *r = rp_of(env);
	struct rp_rd a;
	int rv;

	if (!rp_call(r, REC_CTL_LIST, NULL, &a))
		return CS_EAGAIN;
	rv = (int)rd_i(&a);
	if (rv == 0)
		rp_req_add(r, REC_CTL_LIST, rd_u(&a), req, (void *)cb, NULL);
	return rv;
}

static int rp_logs_read(struct env *env, struct env_logs_req *req, env_logs_cb cb)
{
	struct replay *r = rp_of(env);
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	int rv;

	wr_str(&w, req->task_id);
	if (!rp_call(r, REC_LOGS_READ, &w, &a))
		return CS_EAGAIN;
	rv = (int)rd_i(&a);
	if (rv == 0)
		rp_req_add(r, REC_LOGS_READ, rd_u(&a), req, (void *)cb, NULL);
	return rv;
}

/* ---------------------------------------------------------------- inputs */

static void rp_control_answered(void *data, const Cs__ControlResponse *resp)
{
	struct rp_call *c = data;
	struct replay *r = c->r;
	struct rp_wr w = {.len = 0};
	struct rp_rd a;
	size_t len = cs__control_response__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf) {
		rp_diverge(r, "out of memory");
		free(c);
		return;
	}
	cs__control_response__pack(resp, buf);
	wr_u(&w, c->no);
	wr_u(&w, len);
	wr_u(&w, record_hash(buf, len));
	(void)rp_call(r, REC_CONTROL_ANSWER, &w, &a);
	free(buf);
	free(c);
}

static void rp_mark(struct replay *r)
{
	struct manager *m = r->running ? node_manager(r->state) : NULL;
	struct replay_mark k = {
		.at_ms = r->now,
		.up = r->running,
		.leader = m && manager_is_leader(m),
		.leader_id = m ? manager_leader(m) : 0,
		.term = m ? manager_term(m) : 0,
	};
	if (k.up == r->last_mark.up && k.leader == r->last_mark.leader &&
	    k.leader_id == r->last_mark.leader_id && k.term == r->last_mark.term)
		return;
	r->last_mark = k;
	if (r->mark)
		r->mark(r->mark_ctx, &k);
}

/* Feeds the input just read to the core. Returns false when the record is
 * not an input (a call the core did not make: a divergence). */
static bool rp_input(struct replay *r)
{
	struct rp_rd d = {r->body, r->body_len, 0, false};
	char want[RP_DESC_BYTES];

	r->res->inputs++;
	switch (r->kind) {
	case REC_TIMER: {
		env_timer_id id = rd_u(&d);
		for (size_t i = 0; i < r->timer_count; i++)
			if (r->timers[i].id == id) {
				struct rp_timer t = r->timers[i];
				if (!t.repeat)
					rp_timer_drop(r, id);
				t.cb(&r->env, id, t.data);
				return true;
			}
		rp_diverge(r,
			   "expected timer %" PRIu64 " to fire, but the core armed "
			   "no such timer",
			   id);
		return false;
	}
	case REC_RECV: {
		char *from = rd_str(&d);
		size_t len;
		const uint8_t *bytes = rd_bytes(&d, &len);
		if (d.bad || !from || !r->recv_cb) {
			free(from);
			rp_diverge(r, "a message arrived at a node that listens to none");
			return false;
		}
		r->recv_cb(&r->env, from, bytes, len, r->listen_data);
		free(from);
		return true;
	}
	case REC_PEER: {
		char *addr = rd_str(&d);
		bool up = rd_u(&d) != 0;
		if (!d.bad && addr && r->peer_cb)
			r->peer_cb(&r->env, addr, up, r->listen_data);
		free(addr);
		return true;
	}
	case REC_CTL_DONE: {
		uint64_t no = rd_u(&d);
		struct rp_req *q = rp_req_take(r, REC_CTL_DO, no);
		struct env_ctl_req *req;
		int status;
		char *msg;
		if (!q) {
			rp_diverge(r,
				   "executor request %" PRIu64 " finished, but the core "
				   "asked none such",
				   no);
			return false;
		}
		req = q->req;
		status = (int)rd_i(&d);
		req->state = (enum env_ctl_state)rd_u(&d);
		req->exit_code = (int32_t)rd_i(&d);
		req->health = (enum env_ctl_health)rd_u(&d);
		msg = rd_str(&d);
		snprintf(req->message, sizeof req->message, "%s", msg ? msg : "");
		free(msg);
		((env_ctl_cb)q->cb)(req, status);
		free(q);
		return true;
	}
	case REC_CTL_CLOSED: {
		uint64_t no = rd_u(&d);
		for (struct rp_ctl **p = &r->ctls; *p; p = &(*p)->next)
			if ((*p)->no == no && (*p)->closing) {
				struct rp_ctl *c = *p;
				*p = c->next;
				c->close_cb((struct env_ctl *)c, c->close_data);
				free(c);
				return true;
			}
		rp_diverge(r,
			   "controller %" PRIu64 " closed, but the core closed none "
			   "such",
			   no);
		return false;
	}
	case REC_LIST_DONE: {
		uint64_t no = rd_u(&d);
		struct rp_req *q = rp_req_take(r, REC_CTL_LIST, no);
		struct env_ctl_list_req *req;
		struct env_ctl_found *found = NULL;
		size_t count;
		int status;
		if (!q) {
			rp_diverge(r, "a container list came that the core did not ask");
			return false;
		}
		req = q->req;
		status = (int)rd_i(&d);
		count = (size_t)rd_u(&d);
		if (count > d.len) /* every entry takes bytes: a corrupt count */
			count = 0, d.bad = true;
		found = calloc(count ? count : 1, sizeof *found);
		for (size_t i = 0; found && i < count; i++) {
			size_t l;
			const uint8_t *p = rd_bytes(&d, &l);
			memcpy(found[i].task_id, p ? p : (const uint8_t *)"",
			       l < sizeof found[i].task_id ? l
							   : sizeof found[i].task_id - 1);
			p = rd_bytes(&d, &l);
			memcpy(found[i].service_id, p ? p : (const uint8_t *)"",
			       l < sizeof found[i].service_id
				       ? l
				       : sizeof found[i].service_id - 1);
			found[i].state = (enum env_ctl_state)rd_u(&d);
			found[i].exit_code = (int32_t)rd_i(&d);
		}
		req->found = found;
		req->found_count = found ? count : 0;
		((env_ctl_list_cb)q->cb)(req, found ? status : CS_ENOMEM);
		free(found);
		free(q);
		return true;
	}
	case REC_LOGS_DONE: {
		uint64_t no = rd_u(&d);
		struct rp_req *q = rp_req_take(r, REC_LOGS_READ, no);
		struct env_logs_req *req;
		struct env_log_line *lines = NULL;
		size_t count;
		int status;
		char *msg;
		if (!q) {
			rp_diverge(r, "log lines came that the core did not ask");
			return false;
		}
		req = q->req;
		status = (int)rd_i(&d);
		msg = rd_str(&d);
		snprintf(req->message, sizeof req->message, "%s", msg ? msg : "");
		free(msg);
		count = (size_t)rd_u(&d);
		if (count > d.len)
			count = 0, d.bad = true;
		lines = calloc(count ? count : 1, sizeof *lines);
		for (size_t i = 0; lines && i < count; i++) {
			size_t l;
			lines[i].time_ns = rd_u(&d);
			lines[i].stream = (uint32_t)rd_u(&d);
			lines[i].data = (const char *)rd_bytes(&d, &l);
			lines[i].len = l;
			if (!lines[i].data)
				lines[i].data = "";
		}
		req->lines = lines;
		req->line_count = lines ? count : 0;
		((env_logs_cb)q->cb)(req, lines ? status : CS_ENOMEM);
		free(lines);
		free(q);
		return true;
	}
	case REC_CONTROL: {
		uint64_t no = rd_u(&d);
		size_t len;
		const uint8_t *bytes = rd_bytes(&d, &len);
		Cs__ControlRequest *req =
			d.bad ? NULL : cs__control_request__unpack(NULL, len, bytes);
		struct control_rpc *rpc = r->running ? node_control(r->state) : NULL;
		struct rp_call *c = calloc(1, sizeof *c);
		if (!req || !rpc || !c) {
			if (req)
				cs__control_request__free_unpacked(req, NULL);
			free(c);
			rp_diverge(r, "a control call the replayed node cannot take");
			return false;
		}
		c->r = r;
		c->no = no;
		if (control_rpc_call(rpc, req, rp_control_answered, c) != 0)
			free(c);
		cs__control_request__free_unpacked(req, NULL);
		return true;
	}
	default:
		rp_describe(want, sizeof want, r->kind, r->body, r->body_len);
		rp_diverge(r, "expected %s, came nothing (the core made no such call)",
			   want);
		return false;
	}
}

/* ---------------------------------------------------------------- config */

static char *rp_keep(struct replay *r, char *s)
{
	if (!s)
		return NULL;
	if (r->str_count == RP_NAMES_MAX) {
		free(s);
		return NULL;
	}
	return r->strs[r->str_count++] = s;
}

static uint8_t *rp_blob(struct replay *r, struct rp_rd *d, size_t slot, size_t *len)
{
	const uint8_t *p = rd_bytes(d, len);
	if (!p || *len == 0)
		return NULL;
	r->blobs[slot] = malloc(*len);
	if (!r->blobs[slot]) {
		d->bad = true;
		return NULL;
	}
	memcpy(r->blobs[slot], p, *len);
	return r->blobs[slot];
}

static void rp_hook_apply(void *data, struct env *env, uint64_t index, const uint8_t *buf,
			  size_t len)
{
	(void)data, (void)env, (void)index, (void)buf, (void)len;
}
static void rp_hook_refused(void *data, const char *why)
{
	(void)data, (void)why;
}
static void rp_hook_role(void *data, Cs__NodeRole desired)
{
	(void)data, (void)desired;
}

/* Decodes a segment's header into r->ncfg (and the env's optional ops). */
static int rp_header(struct replay *r, const uint8_t *p, size_t len, char *err, size_t n)
{
	struct rp_rd d = {p, len, 0, false};
	struct manager_cfg *m = &r->mcfg;
	struct agent_cfg *a = &r->ncfg.agent;
	unsigned has;
	char *self = rd_str(&d);
	size_t count;

	snprintf(r->self_addr, sizeof r->self_addr, "%s", self ? self : "");
	free(self);
	has = (unsigned)rd_u(&d);
	memset(&r->ncfg, 0, sizeof r->ncfg);
	memset(m, 0, sizeof *m);
	if (rd_u(&d)) {
		size_t bl;
		m->raft_id = rd_u(&d);
		count = (size_t)rd_u(&d);
		if (count > sizeof r->voters / sizeof r->voters[0])
			goto bad;
		for (size_t i = 0; i < count; i++) {
			r->voters[i].raft_id = rd_u(&d);
			r->voters[i].addr = rp_keep(r, rd_str(&d));
		}
		m->voters = count ? r->voters : NULL;
		m->voter_count = count;
		m->tick_ms = rd_u(&d);
		m->election_ticks = (unsigned)rd_u(&d);
		m->snapshot_every = (unsigned)rd_u(&d);
		m->snapshot_trailing = (unsigned)rd_u(&d);
		m->write_timeout_ms = rd_u(&d);
		count = (size_t)rd_u(&d);
		if (count > sizeof r->join_addrs / sizeof r->join_addrs[0])
			goto bad;
		for (size_t i = 0; i < count; i++)
			r->join_addrs[i] = rp_keep(r, rd_str(&d));
		m->join_addrs = count ? r->join_addrs : NULL;
		m->join_count = count;
		m->heartbeat_ms = rd_u(&d);
		m->task_history = rd_u(&d);
		m->on_apply = rd_u(&d) ? rp_hook_apply : NULL;
		m->worker_token = rp_keep(r, rd_str(&d));
		m->manager_token = rp_keep(r, rd_str(&d));
		m->join_token = rp_keep(r, rd_str(&d));
		m->on_refused = rd_u(&d) ? rp_hook_refused : NULL;
		m->ca_cert.data = rp_blob(r, &d, 0, &bl);
		m->ca_cert.len = m->ca_cert.data ? bl : 0;
		m->ca_key.data = rp_blob(r, &d, 1, &bl);
		m->ca_key.len = m->ca_key.data ? bl : 0;
		m->cluster_id = rd_u(&d);
		m->cert_expiry_ms = rd_u(&d);
		m->unlock_key = rp_keep(r, rd_str(&d));
		m->default_addr_pool = (uint32_t)rd_u(&d);
		m->default_addr_pool_len = (uint32_t)rd_u(&d);
		m->default_subnet_len = (uint32_t)rd_u(&d);
		m->force_new_cluster = rd_u(&d) != 0;
		m->restore_store = rp_blob(r, &d, 2, &bl);
		m->restore_store_len = m->restore_store ? bl : 0;
		m->restore_index = rd_u(&d);
		m->restore_term = rd_u(&d);
		r->ncfg.manager = m;
	}
	a->hostname = rp_keep(r, rd_str(&d));
	a->role = (Cs__NodeRole)rd_u(&d);
	a->millicpus = rd_u(&d);
	a->memory_bytes = rd_u(&d);
	count = (size_t)rd_u(&d);
	if (count > sizeof r->managers / sizeof r->managers[0])
		goto bad;
	for (size_t i = 0; i < count; i++)
		r->managers[i] = rp_keep(r, rd_str(&d));
	a->managers = count ? r->managers : NULL;
	a->manager_count = count;
	a->join_token = rp_keep(r, rd_str(&d));
	a->raft_id = rd_u(&d);
	a->on_role = rd_u(&d) ? rp_hook_role : NULL;
	a->on_refused = rd_u(&d) ? rp_hook_refused : NULL;
	a->no_data_plane = rd_u(&d) != 0;
	if (rd_u(&d)) {
		memset(&r->desc, 0, sizeof r->desc);
		r->desc.platform_os = rp_keep(r, rd_str(&d));
		r->desc.platform_arch = rp_keep(r, rd_str(&d));
		r->desc.addr = rp_keep(r, rd_str(&d));
		count = (size_t)rd_u(&d);
		if (count > sizeof r->labels / sizeof r->labels[0])
			goto bad;
		for (size_t i = 0; i < count; i++) {
			cs__label__init(&r->labels[i]);
			r->labels[i].key = rp_keep(r, rd_str(&d));
			r->labels[i].value = rp_keep(r, rd_str(&d));
			r->label_ptrs[i] = &r->labels[i];
		}
		r->desc.engine_labels = count ? r->label_ptrs : NULL;
		r->desc.engine_label_count = count;
		a->desc = &r->desc;
	}
	if (d.bad || d.off != d.len)
		goto bad;
	r->ops.wall_ms = has & REC_HAS_WALL ? rp_wall_ms : NULL;
	r->ops.pki_lock = has & REC_HAS_LOCK ? rp_pki_lock : NULL;
	r->ops.pki_unlock = has & REC_HAS_LOCK ? rp_pki_unlock : NULL;
	r->ops.net_set = has & REC_HAS_NET ? rp_net_set : NULL;
	r->ops.net_remove = has & REC_HAS_NET ? rp_net_remove : NULL;
	r->ops.net_error = has & REC_HAS_NET_ERROR ? rp_net_error : NULL;
	r->ops.logs_read = has & REC_HAS_LOGS ? rp_logs_read : NULL;
	return 0;
bad:
	snprintf(err, n, "a segment's header does not decode (byte %zu of %zu)", d.off,
		 len);
	return CS_ECORRUPT;
}

/* Frees what a segment kept. */
static void rp_segment_free(struct replay *r)
{
	for (size_t i = 0; i < r->str_count; i++)
		free(r->strs[i]);
	r->str_count = 0;
	for (size_t i = 0; i < 3; i++) {
		free(r->blobs[i]);
		r->blobs[i] = NULL;
	}
	for (size_t i = 0; i < r->db_count; i++)
		sqlite3_close(r->dbs[i].db);
	r->db_count = 0;
	while (r->ctls) {
		struct rp_ctl *c = r->ctls;
		r->ctls = c->next;
		free(c);
	}
	while (r->reqs) {
		struct rp_req *q = r->reqs;
		r->reqs = q->next;
		free(q);
	}
	r->timer_count = 0;
	r->recv_cb = NULL;
	r->peer_cb = NULL;
}

static void rp_stop(struct replay *r)
{
	if (!r->running)
		return;
	node_program.stop(r->state);
	r->running = false;
	r->state = NULL;
	rp_mark(r);
}

/* Replays one segment at r->off (its magic). */
static int rp_segment(struct replay *r, char *err, size_t n)
{
	struct rp_rd d = {r->buf, r->len, r->off + RECORD_MAGIC_BYTES, false};
	uint64_t version = rd_u(&d);
	size_t hlen;
	const uint8_t *hdr;
	int rv;

	if (version != RECORD_VERSION) {
		snprintf(err, n, "format version %" PRIu64 ", this swarmsim reads %u",
			 version, RECORD_VERSION);
		return CS_ECORRUPT;
	}
	hdr = rd_bytes(&d, &hlen);
	if (d.bad) {
		snprintf(err, n, "a segment's header is cut");
		return CS_ECORRUPT;
	}
	if ((rv = rp_header(r, hdr, hlen, err, n)) != 0)
		return rv;
	r->res->segments++;
	snprintf(r->res->self_addr, sizeof r->res->self_addr, "%s", r->self_addr);
	r->off = d.off;
	r->seg_end = r->len; /* rp_read finds the next segment's magic */
	if (!rp_read(r))
		return 0; /* started, nothing recorded yet */
	if (r->kind != REC_START) {
		rp_diverge(r, "a segment begins with %s, not start",
			   rp_kind_name(r->kind));
		return 0;
	}
	{
		struct rp_rd s = {r->body, r->body_len, 0, false};
		r->now = rd_u(&s);
		if (!r->res->first_ms)
			r->res->first_ms = r->now;
	}
	rv = node_program.start(&r->ncfg, &r->env, &r->state);
	r->running = rv == 0;
	rp_mark(r);
	r->ended = false;
	while (!r->res->diverged && !r->ended && rp_read(r)) {
		if (r->kind == REC_STOP)
			break;
		if (!r->running) {
			rp_diverge(r, "an input (%s) after the program failed to start",
				   rp_kind_name(r->kind));
			break;
		}
		if (!rp_input(r))
			break;
		if (!r->res->diverged && !r->ended)
			rp_mark(r);
	}
	if (r->running) {
		struct manager *m = node_manager(r->state);
		r->res->raft_id = m ? manager_raft_id(m) : 0;
		r->res->applied = m ? manager_applied(m) : 0;
		r->res->leader = m && manager_is_leader(m);
	}
	r->res->last_ms = r->now;
	rp_stop(r);
	if (!r->res->diverged)
		while (rp_read(r)) /* after the stop: nothing of the core's */
			;
	return 0;
}

int replay_run(const uint8_t *buf, size_t len, replay_mark_cb mark, void *mark_ctx,
	       void (*log_cb)(void *ctx, ms_t at_ms, const char *line), void *log_ctx,
	       struct replay_result *res, char *err, size_t n)
{
	struct replay *r;
	int rv = 0;

	memset(res, 0, sizeof *res);
	if (len < RECORD_MAGIC_BYTES ||
	    memcmp(buf, RECORD_MAGIC, RECORD_MAGIC_BYTES) != 0) {
		snprintf(err, n, "not a cswarm recording (no %s magic)", "CSWREC");
		return CS_ECORRUPT;
	}
	r = calloc(1, sizeof *r);
	if (!r)
		return CS_ENOMEM;
	r->buf = buf;
	r->len = len;
	r->res = res;
	r->mark = mark;
	r->mark_ctx = mark_ctx;
	r->log_cb = log_cb;
	r->log_ctx = log_ctx;
	r->fake_timer = UINT64_MAX / 2;
	r->ops = (struct env_ops){
		.now_ms = rp_now_ms,
		.timer_start = rp_timer_start,
		.timer_stop = rp_timer_stop,
		.self_addr = rp_self_addr,
		.listen = rp_listen,
		.send = rp_send,
		.storage_open = rp_storage_open,
		.random_u64 = rp_random_u64,
		.log = rp_log,
		.ctl_open = rp_ctl_open,
		.ctl_do = rp_ctl_do,
		.ctl_close = rp_ctl_close,
		.ctl_list = rp_ctl_list,
		.exit = rp_exit,
		.sender = rp_sender,
		.pki_csr = rp_pki_csr,
		.pki_ca_create = rp_pki_ca_create,
		.pki_sign = rp_pki_sign,
		.pki_install = rp_pki_install,
		.pki_pin = rp_pki_pin,
		.pki_info = rp_pki_info,
		.reply = rp_reply,
	};
	r->env.ops = &r->ops;
	r->env.impl = r;
	while (rv == 0 && !res->diverged && r->off < r->len) {
		if (r->len - r->off < RECORD_MAGIC_BYTES ||
		    memcmp(r->buf + r->off, RECORD_MAGIC, RECORD_MAGIC_BYTES) != 0) {
			snprintf(err, n, "no segment at byte %zu", r->off);
			rv = CS_ECORRUPT;
			break;
		}
		rv = rp_segment(r, err, n);
		rp_stop(r);
		rp_segment_free(r);
	}
	rp_segment_free(r);
	free(r->timers);
	free(r);
	return rv;
}

/* ---------------------------------------------------------------- the command */

/* One file's replay, for the command's lines and the cluster's timeline. */
struct rp_file {
	const char *path;
	uint8_t *buf;
	size_t len;
	struct replay_result res;
	struct replay_mark *marks;
	size_t mark_count, mark_cap;
	bool oom;
};

static void rp_main_mark(void *ctx, const struct replay_mark *m)
{
	struct rp_file *f = ctx;
	if (f->mark_count == f->mark_cap) {
		size_t cap = f->mark_cap ? f->mark_cap * 2 : 32;
		struct replay_mark *p = realloc(f->marks, cap * sizeof *p);
		if (!p) {
			f->oom = true;
			return;
		}
		f->marks = p;
		f->mark_cap = cap;
	}
	f->marks[f->mark_count++] = *m;
}

static void rp_main_log(void *ctx, ms_t at_ms, const char *line)
{
	const struct rp_file *f = ctx;
	printf("  %s t=%" PRIu64 "ms %s\n", f->res.self_addr, at_ms, line);
}

/* Reads path whole into *buf (free it). Returns 0 or an errno. */
static int rp_main_read(const char *path, uint8_t **buf, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t cap = 0, n = 0;
	int e = 0;

	if (!fp)
		return errno ? errno : EIO;
	for (;;) {
		size_t got;
		if (n == cap) {
			uint8_t *q = realloc(p, cap ? cap * 2 : 1 << 16);
			if (!q) {
				e = ENOMEM;
				break;
			}
			p = q;
			cap = cap ? cap * 2 : 1 << 16;
		}
		got = fread(p + n, 1, cap - n, fp);
		n += got;
		if (got == 0) {
			if (ferror(fp))
				e = EIO;
			break;
		}
	}
	fclose(fp);
	if (e) {
		free(p);
		return e;
	}
	*buf = p;
	*len = n;
	return 0;
}

/* The cluster's run as the report's timeline: a row per recorded node,
 * down where its program did not run, leader spans where it led. */
static struct timeline *rp_main_timeline(struct rp_file *files, size_t count,
					 const struct scn_script *script, ms_t *t0)
{
	struct timeline *tl = timeline_new(script);
	ms_t first = UINT64_MAX, last = 0;

	if (!tl)
		return NULL;
	for (size_t i = 0; i < count; i++)
		for (size_t k = 0; k < files[i].mark_count; k++) {
			first = files[i].marks[k].at_ms < first ? files[i].marks[k].at_ms
								: first;
			last = files[i].marks[k].at_ms > last ? files[i].marks[k].at_ms
							      : last;
		}
	for (size_t i = 0; i < count; i++)
		if (files[i].res.last_ms > last)
			last = files[i].res.last_ms;
	if (first == UINT64_MAX)
		first = 0;
	*t0 = first;
	tl->nodes = calloc(count ? count : 1, sizeof *tl->nodes);
	tl->spans = calloc(1 + 2 * count, sizeof *tl->spans);
	tl->span_cap = 1 + 2 * count;
	if (!tl->nodes || !tl->spans) {
		timeline_free(tl);
		return NULL;
	}
	tl->node_count = tl->node_cap = count;
	for (size_t i = 0; i < count; i++) {
		const struct rp_file *f = &files[i];
		us_t down_from = 0, lead_from = 0;
		bool up = false, lead = false;
		snprintf(tl->nodes[i].name, sizeof tl->nodes[i].name, "%s",
			 f->res.self_addr);
		for (size_t k = 0; k <= f->mark_count; k++) {
			const struct replay_mark *m =
				k < f->mark_count ? &f->marks[k] : NULL;
			us_t at = (m ? m->at_ms - first : last - first) * 1000;
			bool now_up = m ? m->up : up,
			     now_lead = m ? m->up && m->leader : false;
			struct tl_span sp[2];
			size_t ns = 0;
			if (!up && (now_up || !m) && k > 0)
				sp[ns++] = (struct tl_span){TL_DOWN, (uint32_t)i,
							    down_from, at, 0};
			if (lead && !now_lead)
				sp[ns++] = (struct tl_span){TL_LEADER, (uint32_t)i,
							    lead_from, at, 0};
			if (up && !now_up)
				down_from = at;
			if (!lead && now_lead)
				lead_from = at;
			if (k == 0 && !now_up)
				down_from = at;
			up = now_up;
			lead = now_lead;
			for (size_t s = 0; s < ns; s++) {
				if (tl->span_count == tl->span_cap) {
					struct tl_span *p = realloc(
						tl->spans, 2 * tl->span_cap * sizeof *p);
					if (!p) {
						tl->oom = true;
						continue;
					}
					tl->spans = p;
					tl->span_cap *= 2;
				}
				tl->spans[tl->span_count++] = sp[s];
			}
		}
	}
	tl->end_us = (last - first) * 1000;
	tl->finished = true;
	for (size_t i = 0; i < count; i++)
		if (files[i].res.diverged) {
			tl->failed = true;
			tl->fail_us = (files[i].res.at_ms - first) * 1000;
			snprintf(tl->fail_msg, sizeof tl->fail_msg,
				 "%s diverged at event %" PRIu64 ": %.400s",
				 files[i].res.self_addr, files[i].res.at_event,
				 files[i].res.why);
			break;
		}
	return tl;
}

static const char rp_usage[] =
	"usage: swarmsim replay FILE... [--logs] [--timeline] [--report DIR]\n"
	"Runs the core code of each node recorded by `swarmd --record FILE`\n"
	"against its recording: exit 0 when every decision is the recorded one,\n"
	"1 at the first divergence (its event index, time, what was expected and\n"
	"what came), 2 on a usage or file error.\n"
	"  --logs       print the replayed log lines\n"
	"  --timeline   print who led, as each node saw it, merged in time\n"
	"  --report DIR the cluster's run as a report timeline (index.html)\n";

int replay_main(int argc, char **argv)
{
	struct rp_file *files = calloc(argc > 0 ? (size_t)argc : 1, sizeof *files);
	const char *report_dir = NULL;
	bool logs = false, timeline = false;
	size_t count = 0;
	int status = 0;

	if (!files)
		return 2;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--logs") == 0)
			logs = true;
		else if (strcmp(argv[i], "--timeline") == 0)
			timeline = true;
		else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc)
			report_dir = argv[++i];
		else if (strcmp(argv[i], "--help") == 0) {
			fputs(rp_usage, stdout);
			free(files);
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "swarmsim replay: unknown option %s\n%s", argv[i],
				rp_usage);
			free(files);
			return 2;
		} else
			files[count++].path = argv[i];
	}
	if (count == 0) {
		fputs(rp_usage, stderr);
		free(files);
		return 2;
	}
	for (size_t i = 0; i < count && status != 2; i++) {
		struct rp_file *f = &files[i];
		char err[512] = "";
		int e = rp_main_read(f->path, &f->buf, &f->len);
		if (e) {
			fprintf(stderr, "swarmsim replay: %s: %s\n", f->path,
				strerror(e));
			status = 2;
			break;
		}
		if (replay_run(f->buf, f->len, rp_main_mark, f, logs ? rp_main_log : NULL,
			       f, &f->res, err, sizeof err)) {
			fprintf(stderr, "swarmsim replay: %s: %s\n", f->path, err);
			status = 2;
			break;
		}
		printf("replay %s node=%s segments=%" PRIu64 " events=%" PRIu64
		       " inputs=%" PRIu64 " sends=%" PRIu64 " logs=%" PRIu64
		       " span=%.3fs raft_id=%016" PRIx64 " applied=%" PRIu64 "%s%s",
		       f->path, f->res.self_addr, f->res.segments, f->res.events,
		       f->res.inputs, f->res.sends, f->res.logs,
		       (double)(f->res.last_ms - f->res.first_ms) / 1000.0,
		       f->res.raft_id, f->res.applied, f->res.leader ? " leader" : "",
		       f->res.truncated ? " truncated" : "");
		if (f->res.diverged) {
			printf(" result=DIVERGED event=%" PRIu64 " t=%" PRIu64
			       "ms (+%.3fs): %s\n",
			       f->res.at_event, f->res.at_ms,
			       (double)(f->res.at_ms - f->res.first_ms) / 1000.0,
			       f->res.why);
			status = 1;
		} else {
			printf(" result=ok\n");
		}
	}
	if (status != 2 && timeline) {
		/* each node's marks, merged by the env clock (CLOCK_MONOTONIC
		 * on one machine: comparable between the nodes of it) */
		size_t *at = calloc(count, sizeof *at);
		ms_t t0 = UINT64_MAX;
		for (size_t i = 0; i < count; i++)
			if (files[i].mark_count && files[i].marks[0].at_ms < t0)
				t0 = files[i].marks[0].at_ms;
		for (; at;) {
			size_t best = count;
			for (size_t i = 0; i < count; i++)
				if (at[i] < files[i].mark_count &&
				    (best == count ||
				     files[i].marks[at[i]].at_ms <
					     files[best].marks[at[best]].at_ms))
					best = i;
			if (best == count)
				break;
			{
				const struct replay_mark *m =
					&files[best].marks[at[best]++];
				printf("timeline +%.3fs %s %s term=%" PRIu64
				       " leader=%016" PRIx64 "\n",
				       (double)(m->at_ms - t0) / 1000.0,
				       files[best].res.self_addr,
				       !m->up	   ? "down"
				       : m->leader ? "leads"
						   : "follows",
				       m->term, m->leader_id);
			}
		}
		free(at);
	}
	if (status != 2 && report_dir) {
		struct scn_script script;
		ms_t t0 = 0;
		struct timeline *tl;
		memset(&script, 0, sizeof script);
		tl = rp_main_timeline(files, count, &script, &t0);
		if (!tl) {
			fputs("swarmsim replay: out of memory\n", stderr);
			status = 2;
		} else {
			struct report_run run = {
				.file = files[0].path,
				.passed = !tl->failed,
				.message = tl->fail_msg,
				.sim_s = (double)tl->end_us / 1e6,
				.tl = tl,
			};
			struct report_opts ro = {.title = "swarmsim replay"};
			char err[512];
			for (size_t i = 0; i < count; i++)
				run.events += files[i].res.events;
			if (report_write(report_dir, &run, 1, &ro, err, sizeof err)) {
				fprintf(stderr, "swarmsim replay: --report: %s\n", err);
				status = 2;
			}
			timeline_free(tl);
		}
	}
	for (size_t i = 0; i < count; i++) {
		free(files[i].buf);
		free(files[i].marks);
	}
	free(files);
	return status;
}
