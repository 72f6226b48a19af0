/* resolver: the tasks' DNS server (see resolver.h). */
#include "net/resolver.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/errors.h"

/* ---------------------------------------------------------------- codec */

#define HDR	      12
#define F_QR	      0x8000u
#define F_AA	      0x0400u
#define F_TC	      0x0200u
#define F_RD	      0x0100u
#define F_RA	      0x0080u
#define OPCODE(f)     (((f) >> 11) & 0xfu)
#define NAME_HOPS_MAX 64 /* compression pointers followed in one name */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* name_decode reads the name at off of msg into text (lower case, dotted,
 * no final dot), *end just past it where it sits (after its first pointer).
 * A pointer must point backwards, at or after the header's end: no loops,
 * nothing outside the message. Returns 0 or CS_ECORRUPT. */
static int name_decode(const uint8_t *msg, size_t len, size_t off,
		       char text[RESOLVER_NAME_TEXT_MAX + 1], bool *odd, size_t *end)
{
	size_t out = 0, wire = 0, pos = off, limit = off; /* a pointer goes below limit */
	int hops = 0;
	bool jumped = false;
	*odd = false;
	text[0] = '\0';
	for (;;) {
		if (pos >= len)
			return CS_ECORRUPT;
		uint8_t l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return CS_ECORRUPT;
			size_t target = ((size_t)(l & 0x3f) << 8) | msg[pos + 1];
			if (!jumped)
				*end = pos + 2;
			jumped = true;
			if (target < HDR || target >= limit || ++hops > NAME_HOPS_MAX)
				return CS_ECORRUPT;
			limit = target;
			pos = target;
			continue;
		}
		if (l & 0xc0)
			return CS_ECORRUPT; /* 01 and 10: extended labels, none today */
		if (l == 0) {
			if (!jumped)
				*end = pos + 1;
			break;
		}
		wire += 1u + l;
		if (wire + 1 > 255 || pos + 1 + l > len)
			return CS_ECORRUPT;
		if (out) {
			if (out + 1 > RESOLVER_NAME_TEXT_MAX)
				return CS_ECORRUPT;
			text[out++] = '.';
		}
		for (size_t i = 0; i < l; i++) {
			uint8_t c = msg[pos + 1 + i];
			if (c == '.' || c <= 0x20 || c >= 0x7f)
				*odd = true; /* kept as '?': it matches nothing of ours */
			if (out + 1 > RESOLVER_NAME_TEXT_MAX)
				return CS_ECORRUPT;
			text[out++] = *odd && (c == '.' || c <= 0x20 || c >= 0x7f)
					      ? '?'
					      : (char)tolower(c);
		}
		pos += 1u + l;
	}
	assert(out <= RESOLVER_NAME_TEXT_MAX);
	text[out] = '\0';
	return 0;
}

int resolver_parse_query(const uint8_t *msg, size_t len, struct resolver_question *q,
			 enum resolver_rcode *rcode)
{
	enum resolver_rcode scratch;
	if (!rcode)
		rcode = &scratch;
	memset(q, 0, sizeof *q);
	*rcode = RESOLVER_NOERROR;
	if (!msg || len < HDR)
		return CS_ECORRUPT;
	q->id = get16(msg);
	q->flags = get16(msg + 2);
	if (q->flags & F_QR)
		return CS_ECORRUPT; /* never answer a response: no loops */
	if (OPCODE(q->flags) != 0) {
		*rcode = RESOLVER_NOTIMP;
		return CS_ECORRUPT;
	}
	*rcode = RESOLVER_FORMERR;
	if (get16(msg + 4) != 1)
		return CS_ECORRUPT;
	size_t end = 0;
	if (name_decode(msg, len, HDR, q->name, &q->name_odd, &end))
		return CS_ECORRUPT;
	if (end + 4 > len)
		return CS_ECORRUPT;
	q->qtype = get16(msg + end);
	q->qclass = get16(msg + end + 2);
	q->end = end + 4;
	*rcode = RESOLVER_NOERROR;
	return 0;
}

bool resolver_is_reply_to(const uint8_t *msg, size_t len,
			  const struct resolver_question *q)
{
	char name[RESOLVER_NAME_TEXT_MAX + 1];
	bool odd;
	size_t end = 0;
	if (!msg || len < HDR || get16(msg) != q->id || !(get16(msg + 2) & F_QR) ||
	    get16(msg + 4) != 1)
		return false;
	if (name_decode(msg, len, HDR, name, &odd, &end) || end + 4 > len)
		return false;
	return strcmp(name, q->name) == 0 && odd == q->name_odd &&
	       get16(msg + end) == q->qtype && get16(msg + end + 2) == q->qclass;
}

/* the answer's header and question; returns the offset after them, 0 when
 * cap is too small */
static size_t encode_head(const uint8_t *msg, const struct resolver_question *q,
			  bool with_question, enum resolver_rcode rcode, uint8_t *out,
			  size_t cap)
{
	if (with_question)
		assert(q->end >= HDR + 5); /* a name (1 byte at least), type, class */
	size_t qlen = with_question ? q->end - HDR : 0;
	if (cap < HDR + qlen)
		return 0;
	put16(out, q->id);
	put16(out + 2, (uint16_t)(F_QR | F_AA | (q->flags & F_RD) | F_RA |
				  (q->flags & 0x7800u) | rcode));
	put16(out + 4, with_question ? 1 : 0);
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	memcpy(out + HDR, msg + HDR, qlen);
	return HDR + qlen;
}

size_t resolver_encode_error(const uint8_t *msg, size_t len, enum resolver_rcode rcode,
			     uint8_t *out, size_t cap)
{
	struct resolver_question q;
	enum resolver_rcode why;
	int rc = resolver_parse_query(msg, len, &q, &why);
	if (rc && why == RESOLVER_NOERROR)
		return 0; /* not a query: nothing to say */
	if (rc) {
		q.flags &= (uint16_t)~0x7800u; /* OPCODE: copied only when known */
		if (why == RESOLVER_NOTIMP)
			q.flags |= (uint16_t)(get16(msg + 2) & 0x7800u);
		return encode_head(msg, &q, false, why, out, cap);
	}
	return encode_head(msg, &q, true, rcode, out, cap);
}

/* ---------------------------------------------------------------- names */

struct rsv_name {
	char *name;	 /* lower case */
	uint32_t *addrs; /* network order */
	size_t count;
	uint32_t ttl_s;
	bool rotate;
	size_t next; /* rotation: the first address of the next answer */
};

struct rsv_table {
	struct rsv_name *names; /* ascending by name (bsearch) */
	size_t count;
	char *netname; /* lower case: "NAME.NETWORK" also answers */
};

static void table_free(struct rsv_table *t)
{
	for (size_t i = 0; i < t->count; i++) {
		free(t->names[i].name);
		free(t->names[i].addrs);
	}
	free(t->names);
	free(t->netname);
	memset(t, 0, sizeof *t);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct rsv_name *)a)->name,
		      ((const struct rsv_name *)b)->name);
}

static char *lower_dup(const char *prefix, const char *s)
{
	size_t pl = strlen(prefix), sl = strlen(s);
	if (sl == 0 || pl + sl > RESOLVER_NAME_TEXT_MAX)
		return NULL;
	char *d = malloc(pl + sl + 1);
	if (!d)
		return NULL;
	memcpy(d, prefix, pl);
	for (size_t i = 0; i < sl; i++)
		d[pl + i] = (char)tolower((unsigned char)s[i]);
	d[pl + sl] = '\0';
	if (d[pl + sl - 1] == '.')
		d[pl + sl - 1] = '\0'; /* "web." is "web" */
	return d;
}

/* table_add appends one (name, addresses) entry; table_merge, after the
 * sort, joins the entries of one name (two services may share an alias:
 * Docker answers the addresses of both) */
static int table_add(struct rsv_table *t, size_t *cap, const char *prefix,
		     const char *name, const uint32_t *addrs, size_t n, uint32_t ttl_s,
		     bool rotate)
{
	if (!*name || strcmp(name, ".") == 0 ||
	    strlen(prefix) + strlen(name) > RESOLVER_NAME_TEXT_MAX)
		return CS_EINVAL; /* "." would answer for the root */
	if (t->count >= RESOLVER_NAMES_MAX)
		return CS_ELIMIT;
	if (t->count == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct rsv_name *p = realloc(t->names, nc * sizeof *p);
		if (!p)
			return CS_ENOMEM;
		t->names = p;
		*cap = nc;
	}
	struct rsv_name *e = &t->names[t->count];
	memset(e, 0, sizeof *e);
	e->name = lower_dup(prefix, name);
	e->addrs = malloc((n + 1) * sizeof *e->addrs);
	if (!e->name || !e->addrs) {
		free(e->name);
		free(e->addrs);
		return CS_ENOMEM;
	}
	memcpy(e->addrs, addrs, n * sizeof *e->addrs);
	e->count = n;
	e->ttl_s = ttl_s;
	e->rotate = rotate;
	e->next = t->count; /* the order they came in, until the merge */
	t->count++;
	return 0;
}

static int cmp_name_then_order(const void *a, const void *b)
{
	const struct rsv_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->next < y->next ? -1 : x->next > y->next;
}

static int table_merge(struct rsv_table *t)
{
	size_t k = 0;
	if (t->count == 0)
		return 0;
	qsort(t->names, t->count, sizeof *t->names, cmp_name_then_order);
	for (size_t i = 0; i < t->count; i++) {
		struct rsv_name *e = &t->names[i];
		e->next = 0;
		if (k == 0 || strcmp(t->names[k - 1].name, e->name) != 0) {
			t->names[k++] = *e;
			continue;
		}
		struct rsv_name *into = &t->names[k - 1];
		uint32_t *a = NULL;
		if (into->count + e->count <= RESOLVER_ADDRS_MAX)
			a = realloc(into->addrs,
				    (into->count + e->count + 1) * sizeof *a);
		if (!a) {
			/* keep every entry owned by the table for table_free */
			int rc = into->count + e->count > RESOLVER_ADDRS_MAX ? CS_ELIMIT
									     : CS_ENOMEM;
			for (size_t j = i; j < t->count; j++)
				t->names[k++] = t->names[j];
			t->count = k;
			return rc;
		}
		memcpy(a + into->count, e->addrs, e->count * sizeof *a);
		into->addrs = a;
		into->count += e->count;
		into->rotate = true;
		into->ttl_s = into->ttl_s < e->ttl_s ? into->ttl_s : e->ttl_s;
		free(e->name);
		free(e->addrs);
	}
	t->count = k;
	return 0;
}

/* table_build: the names of st, as libnetwork's addServiceBinding makes
 * them: NAME and each ALIAS to the VIP (or, dnsrr, to the tasks), and
 * tasks.NAME and tasks.ALIAS to the tasks. */
static int table_build(const struct env_net_state *st, struct rsv_table *t)
{
	size_t cap = 0;
	uint32_t *tasks = NULL;
	int rc = 0;
	memset(t, 0, sizeof *t);
	if (st->name && *st->name) {
		t->netname = lower_dup("", st->name);
		if (!t->netname)
			return CS_EINVAL;
	}
	if (st->service_count && !st->services) {
		rc = CS_EINVAL;
		goto fail;
	}
	for (size_t i = 0; i < st->service_count; i++) {
		const struct env_net_service *s = &st->services[i];
		size_t n = 0;
		uint32_t vip;
		if (!s->name || !*s->name) {
			rc = CS_EINVAL;
			goto fail;
		}
		if (s->backends)
			while (s->backends[n])
				if (++n > RESOLVER_ADDRS_MAX) {
					rc = CS_ELIMIT;
					goto fail;
				}
		free(tasks);
		tasks = malloc((n + 1) * sizeof *tasks);
		if (!tasks) {
			rc = CS_ENOMEM;
			goto fail;
		}
		for (size_t k = 0; k < n; k++) {
			if (inet_pton(AF_INET, s->backends[k], &tasks[k]) != 1) {
				rc = CS_EINVAL;
				goto fail;
			}
		}
		if (s->vip && inet_pton(AF_INET, s->vip, &vip) != 1) {
			rc = CS_EINVAL;
			goto fail;
		}
		size_t alias_count = 0;
		if (s->aliases)
			while (s->aliases[alias_count])
				alias_count++;
		for (size_t a = 0; a <= alias_count; a++) {
			const char *nm = a == 0 ? s->name : s->aliases[a - 1];
			if (!*nm)
				continue;
			rc = table_add(t, &cap, "tasks.", nm, tasks, n,
				       RESOLVER_TTL_TASKS_S, true);
			if (!rc && s->vip)
				rc = table_add(t, &cap, "", nm, &vip, 1,
					       RESOLVER_TTL_VIP_S, false);
			else if (!rc)
				rc = table_add(t, &cap, "", nm, tasks, n,
					       RESOLVER_TTL_TASKS_S, true);
			if (rc)
				goto fail;
		}
	}
	free(tasks);
	rc = table_merge(t);
	if (rc)
		goto fail_merged;
	return 0;
fail:
	free(tasks);
fail_merged:
	table_free(t);
	return rc;
}

static struct rsv_name *table_find(struct rsv_table *t, const char *name)
{
	struct rsv_name key = {.name = (char *)name};
	struct rsv_name *e =
		t->count ? bsearch(&key, t->names, t->count, sizeof key, cmp_name) : NULL;
	if (e || !t->netname)
		return e;
	/* NAME.NETWORK */
	size_t nl = strlen(name), ml = strlen(t->netname);
	char buf[RESOLVER_NAME_TEXT_MAX + 1];
	if (nl <= ml + 1 || name[nl - ml - 1] != '.' ||
	    strcmp(name + nl - ml, t->netname) != 0)
		return NULL;
	memcpy(buf, name, nl - ml - 1);
	buf[nl - ml - 1] = '\0';
	key.name = buf;
	return t->count ? bsearch(&key, t->names, t->count, sizeof key, cmp_name) : NULL;
}

/* answer_from_table: the answer to msg from t, or 0 (not ours, or not a
 * query) */
static size_t answer_from_table(struct rsv_table *t, const uint8_t *msg, size_t len,
				uint8_t *out, size_t cap)
{
	struct resolver_question q;
	enum resolver_rcode why;
	if (resolver_parse_query(msg, len, &q, &why))
		return resolver_encode_error(msg, len, why, out, cap);
	if (q.name_odd || q.qclass != RESOLVER_CLASS_IN)
		return 0;
	struct rsv_name *e = table_find(t, q.name);
	if (!e)
		return 0;
	size_t off = encode_head(msg, &q, true, RESOLVER_NOERROR, out, cap);
	if (off == 0)
		return 0;
	if (q.qtype != RESOLVER_TYPE_A && q.qtype != RESOLVER_TYPE_ANY)
		return off; /* AAAA, MX...: the name is ours and has none */
	size_t start = e->rotate && e->count ? e->next % e->count : 0;
	size_t written = 0;
	for (size_t i = 0; i < e->count; i++) {
		if (off + 16 > cap) {
			put16(out + 2, (uint16_t)(get16(out + 2) | F_TC));
			break;
		}
		uint32_t a = e->addrs[(start + i) % e->count];
		put16(out + off, 0xc000 | HDR); /* the question's name */
		put16(out + off + 2, RESOLVER_TYPE_A);
		put16(out + off + 4, RESOLVER_CLASS_IN);
		put16(out + off + 6, (uint16_t)(e->ttl_s >> 16));
		put16(out + off + 8, (uint16_t)e->ttl_s);
		put16(out + off + 10, 4);
		memcpy(out + off + 12, &a, 4);
		off += 16;
		written++;
	}
	assert(off <= cap);
	assert(written <= e->count);
	put16(out + 6, (uint16_t)written);
	if (e->rotate && e->count)
		e->next = (start + 1) % e->count;
	return off;
}

/* ---------------------------------------------------------------- server */

struct rsv_net;

struct rsv_conn {
	uv_tcp_t tcp;
	uv_timer_t idle;
	struct rsv_net *net; /* NULL once its network went */
	struct resolver *r;
	uint8_t *buf; /* 2 + RESOLVER_MSG_BYTES_MAX */
	size_t used;
	int pending; /* forwards in flight for it */
	int handles_open;
	bool closing;
	struct rsv_conn *next;
};

struct rsv_net {
	struct resolver *r;
	uint64_t id;
	struct sockaddr_in addr;
	uv_udp_t udp;
	uv_tcp_t tcp;
	int handles_open;
	bool bound;
	struct rsv_table table;
	struct rsv_conn *conns;
	size_t conn_count;
	struct rsv_net *next; /* ascending id */
};

struct rsv_fwd {
	struct resolver *r;
	uv_udp_t udp;
	uv_timer_t timer;
	uint64_t net_id;
	struct sockaddr_in client; /* UDP */
	bool tcp;
	struct rsv_conn *conn; /* TCP: NULL once it closed */
	uint16_t client_id;
	struct resolver_question q; /* q.id: ours */
	uint8_t *msg;
	size_t len;
	size_t upstream;
	int handles_open;
	bool done;
	struct rsv_fwd *next;
};

struct resolver {
	uv_loop_t *loop;
	uint16_t port;
	struct sockaddr_in upstreams[RESOLVER_UPSTREAMS_MAX];
	size_t upstream_count;
	uint64_t timeout_ms;
	void (*log)(void *, enum env_log_level, const char *);
	void *log_data;
	struct rsv_net *nets;
	struct rsv_fwd *fwds;
	size_t fwd_count;
	uint16_t next_id;
	int handles_open; /* every handle of nets, conns, fwds, still open */
	bool stopping;
	uint8_t rx[RESOLVER_MSG_BYTES_MAX];
};

static void rlog(struct resolver *r, enum env_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* rlog: a line for the node's log; a name from a query may hold any
 * printable byte, so quotes and backslashes become '?' (the log's
 * msg="..." stays one field) */
static void rlog(struct resolver *r, enum env_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *c = msg; *c; c++)
		if (*c == '"' || *c == '\\')
			*c = '?';
	if (r->log)
		r->log(r->log_data, lvl, msg);
	else
		fprintf(stderr, "resolver: %s\n", msg);
}

static void maybe_free(struct resolver *r)
{
	if (r->stopping && r->handles_open == 0 && !r->nets && !r->fwds)
		free(r);
}

static int parse_hostport(const char *s, uint16_t dflt, struct sockaddr_in *out)
{
	char host[46];
	const char *colon = strchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	unsigned long port = dflt;
	if (hl == 0 || hl >= sizeof host)
		return CS_EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (colon) {
		char *endp;
		errno = 0;
		port = strtoul(colon + 1, &endp, 10);
		if (errno || *endp || port == 0 || port > 65535 || endp == colon + 1)
			return CS_EINVAL;
	}
	memset(out, 0, sizeof *out);
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return CS_EINVAL;
	return 0;
}

int resolver_start(uv_loop_t *loop, const struct resolver_config *cfg,
		   struct resolver **out)
{
	struct resolver *r = calloc(1, sizeof *r);
	*out = NULL;
	if (!r)
		return CS_ENOMEM;
	r->loop = loop;
	r->port = cfg->port;
	r->timeout_ms = cfg->forward_timeout_ms ? cfg->forward_timeout_ms
						: RESOLVER_FORWARD_TIMEOUT_MS;
	r->log = cfg->log;
	r->log_data = cfg->log_data;
	for (size_t i = 0; cfg->upstreams && cfg->upstreams[i]; i++) {
		if (i >= RESOLVER_UPSTREAMS_MAX ||
		    parse_hostport(cfg->upstreams[i], 53,
				   &r->upstreams[r->upstream_count])) {
			free(r);
			return CS_EINVAL;
		}
		r->upstream_count++;
	}
	r->next_id = (uint16_t)(uintptr_t)r ^
		     (uint16_t)uv_hrtime(); /* only a start; see fwd_id */
	*out = r;
	return 0;
}

static struct rsv_net *net_find(const struct resolver *r, uint64_t id)
{
	for (struct rsv_net *n = r->nets; n; n = n->next)
		if (n->id == id)
			return n;
	return NULL;
}

uint16_t resolver_port(const struct resolver *r, uint64_t network_id)
{
	struct rsv_net *n = net_find(r, network_id);
	struct sockaddr_in a;
	int alen = sizeof a;
	if (!n || !n->bound || uv_udp_getsockname(&n->udp, (struct sockaddr *)&a, &alen))
		return 0;
	return ntohs(a.sin_port);
}

size_t resolver_answer_local(struct resolver *r, uint64_t network_id, const uint8_t *msg,
			     size_t len, uint8_t *out, size_t cap)
{
	struct rsv_net *n = net_find(r, network_id);
	if (!n)
		return 0;
	return answer_from_table(&n->table, msg, len, out, cap);
}

/* ---- closing */

static void net_handle_closed(uv_handle_t *h)
{
	struct rsv_net *n = h->data;
	struct resolver *r = n->r;
	r->handles_open--;
	if (--n->handles_open == 0) {
		table_free(&n->table);
		free(n);
		maybe_free(r);
	}
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct rsv_conn *c = h->data;
	struct resolver *r = c->r;
	r->handles_open--;
	if (--c->handles_open == 0) {
		free(c->buf);
		free(c);
		maybe_free(r);
	}
}

static void conn_close(struct rsv_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->net) {
		struct rsv_conn **pp = &c->net->conns;
		while (*pp && *pp != c)
			pp = &(*pp)->next;
		if (*pp) {
			*pp = c->next;
			c->net->conn_count--;
		}
		c->net = NULL;
	}
	for (struct rsv_fwd *f = c->r->fwds; f; f = f->next)
		if (f->conn == c)
			f->conn = NULL;
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
	uv_close((uv_handle_t *)&c->idle, conn_handle_closed);
}

static void fwd_handle_closed(uv_handle_t *h)
{
	struct rsv_fwd *f = h->data;
	struct resolver *r = f->r;
	r->handles_open--;
	if (--f->handles_open == 0) {
		free(f->msg);
		free(f);
		maybe_free(r);
	}
}

static void fwd_finish(struct rsv_fwd *f)
{
	struct resolver *r = f->r;
	struct rsv_fwd **pp = &r->fwds;
	if (f->done)
		return;
	f->done = true;
	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	r->fwd_count--;
	if (f->conn)
		f->conn->pending--;
	uv_close((uv_handle_t *)&f->udp, fwd_handle_closed);
	uv_close((uv_handle_t *)&f->timer, fwd_handle_closed);
}

static void net_close(struct rsv_net *n)
{
	while (n->conns)
		conn_close(n->conns);
	uv_close((uv_handle_t *)&n->udp, net_handle_closed);
	uv_close((uv_handle_t *)&n->tcp, net_handle_closed);
}

void resolver_remove(struct resolver *r, uint64_t network_id)
{
	struct rsv_net **pp = &r->nets;
	while (*pp && (*pp)->id != network_id)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	struct rsv_net *n = *pp;
	*pp = n->next;
	net_close(n);
}

void resolver_stop(struct resolver *r)
{
	r->stopping = true;
	while (r->nets)
		resolver_remove(r, r->nets->id);
	while (r->fwds)
		fwd_finish(r->fwds);
	maybe_free(r);
}

/* ---- sending answers */

struct tcp_write {
	uv_write_t req;
	uint8_t bytes[];
};

static void tcp_written(uv_write_t *req, int status)
{
	(void)status; /* a broken connection is closed by its reader */
	free(req);
}

static void conn_send(struct rsv_conn *c, const uint8_t *msg, size_t len)
{
	struct tcp_write *w;
	if (c->closing || len > RESOLVER_MSG_BYTES_MAX)
		return;
	if (c->tcp.write_queue_size > RESOLVER_TCP_QUEUE_BYTES_MAX) {
		/* a client that asks and never reads: not our memory to fill */
		rlog(c->r, ENV_LOG_WARN,
		     "tcp connection closed: %zu bytes of answers unread",
		     c->tcp.write_queue_size);
		conn_close(c);
		return;
	}
	w = malloc(sizeof *w + 2 + len);
	if (!w) {
		rlog(c->r, ENV_LOG_WARN, "tcp answer of %zu bytes lost: out of memory",
		     len);
		conn_close(c);
		return;
	}
	put16(w->bytes, (uint16_t)len);
	memcpy(w->bytes + 2, msg, len);
	uv_buf_t b = uv_buf_init((char *)w->bytes, (unsigned)(2 + len));
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tcp_written)) {
		free(w);
		conn_close(c);
	}
}

static void udp_send(struct resolver *r, uv_udp_t *h, const struct sockaddr_in *to,
		     const uint8_t *msg, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
	int rc = uv_udp_try_send(h, &b, 1, (const struct sockaddr *)to);
	if (rc < 0)
		rlog(r, ENV_LOG_WARN, "udp answer of %zu bytes not sent: %s", len,
		     uv_strerror(rc));
}

/* ---- forwarding */

static void fwd_send_next(struct rsv_fwd *f);

static void fwd_answer(struct rsv_fwd *f, const uint8_t *msg, size_t len)
{
	struct rsv_net *n = net_find(f->r, f->net_id);
	if (f->tcp) {
		if (f->conn) /* NULL: it closed meanwhile */
			conn_send(f->conn, msg, len);
	} else if (n && n->bound) {
		udp_send(f->r, &n->udp, &f->client, msg, len);
	}
}

static void fwd_servfail(struct rsv_fwd *f)
{
	uint8_t out[HDR + 260];
	put16(f->msg, f->client_id);
	size_t n =
		resolver_encode_error(f->msg, f->len, RESOLVER_SERVFAIL, out, sizeof out);
	if (n)
		fwd_answer(f, out, n);
	fwd_finish(f);
}

static void fwd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rsv_fwd *f = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)f->r->rx, sizeof f->r->rx);
}

static bool from_upstream(const struct resolver *r, const struct sockaddr *from)
{
	const struct sockaddr_in *a = (const struct sockaddr_in *)from;
	if (!from || from->sa_family != AF_INET)
		return false;
	for (size_t i = 0; i < r->upstream_count; i++)
		if (r->upstreams[i].sin_addr.s_addr == a->sin_addr.s_addr &&
		    r->upstreams[i].sin_port == a->sin_port)
			return true;
	return false;
}

static void fwd_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
		     const struct sockaddr *from, unsigned flags)
{
	struct rsv_fwd *f = h->data;
	if (f->done || nread <= 0 || (flags & UV_UDP_PARTIAL))
		return;
	/* a spoofed or stale answer is ignored: we go on waiting */
	if (!from_upstream(f->r, from) ||
	    !resolver_is_reply_to((const uint8_t *)buf->base, (size_t)nread, &f->q))
		return;
	put16((uint8_t *)buf->base, f->client_id);
	fwd_answer(f, (const uint8_t *)buf->base, (size_t)nread);
	fwd_finish(f);
}

static void fwd_timeout(uv_timer_t *t)
{
	struct rsv_fwd *f = t->data;
	f->upstream++;
	fwd_send_next(f);
}

static void fwd_send_next(struct rsv_fwd *f)
{
	struct resolver *r = f->r;
	while (f->upstream < r->upstream_count) {
		uv_buf_t b = uv_buf_init((char *)f->msg, (unsigned)f->len);
		int rc = uv_udp_try_send(
			&f->udp, &b, 1,
			(const struct sockaddr *)&r->upstreams[f->upstream]);
		if (rc >= 0) {
			uv_timer_start(&f->timer, fwd_timeout, r->timeout_ms, 0);
			return;
		}
		rlog(r, ENV_LOG_WARN, "forward to upstream %zu failed: %s", f->upstream,
		     uv_strerror(rc));
		f->upstream++;
	}
	fwd_servfail(f);
}

/* fwd_id: an id an off-path attacker cannot guess (with the socket's
 * random source port, what a forged answer must match) */
static uint16_t fwd_id(struct resolver *r)
{
	uint16_t id;
	if (getrandom(&id, sizeof id, GRND_NONBLOCK) == (ssize_t)sizeof id)
		return id;
	return r->next_id = (uint16_t)(r->next_id * 25173u + 13849u);
}

/* fwd_start forwards msg (a parsed query q) for a client on net n (UDP:
 * client; TCP: conn). Answers SERVFAIL itself when it cannot. */
static void fwd_start(struct rsv_net *n, const struct resolver_question *q,
		      const uint8_t *msg, size_t len, const struct sockaddr_in *client,
		      struct rsv_conn *conn)
{
	struct resolver *r = n->r;
	uint8_t out[HDR + 260];
	struct rsv_fwd *f = NULL;
	const char *why = NULL;
	if (r->upstream_count == 0)
		why = "no upstream resolver";
	else if (r->fwd_count >= RESOLVER_FORWARDS_MAX)
		why = "too many forwards in flight";
	else if (conn && conn->pending >= RESOLVER_TCP_PENDING_MAX)
		why = "too many forwards on one connection";
	else if (len > RESOLVER_MSG_BYTES_MAX)
		why = "query too long";
	if (!why) {
		f = calloc(1, sizeof *f);
		if (f)
			f->msg = malloc(len);
		if (!f || !f->msg)
			why = "out of memory";
	}
	/* uv_udp_init opens no socket (AF_UNSPEC): failing, it left nothing
	 * to close; uv_timer_init cannot fail */
	if (!why && uv_udp_init(r->loop, &f->udp))
		why = "cannot make a socket";
	if (why) {
		if (f)
			free(f->msg);
		free(f);
		rlog(r, ENV_LOG_WARN, "SERVFAIL for %s: %s", q->name, why);
		size_t k = resolver_encode_error(msg, len, RESOLVER_SERVFAIL, out,
						 sizeof out);
		if (!k)
			return;
		if (conn)
			conn_send(conn, out, k);
		else
			udp_send(r, &n->udp, client, out, k);
		return;
	}
	uv_timer_init(r->loop, &f->timer);
	f->r = r;
	f->net_id = n->id;
	f->udp.data = f;
	f->timer.data = f;
	f->handles_open = 2;
	r->handles_open += 2;
	f->q = *q;
	f->client_id = q->id;
	/* a fresh id of ours and a fresh source port (the socket's): an
	 * answer must match both to be believed */
	f->q.id = fwd_id(r);
	memcpy(f->msg, msg, len);
	put16(f->msg, f->q.id);
	f->len = len;
	if (client)
		f->client = *client;
	f->conn = conn;
	f->tcp = conn != NULL;
	if (conn)
		conn->pending++;
	f->next = r->fwds;
	r->fwds = f;
	r->fwd_count++;
	struct sockaddr_in any = {.sin_family = AF_INET};
	int rc = uv_udp_bind(&f->udp, (const struct sockaddr *)&any, 0);
	if (!rc)
		rc = uv_udp_recv_start(&f->udp, fwd_alloc, fwd_recv);
	if (rc) {
		rlog(r, ENV_LOG_WARN, "forward socket: %s", uv_strerror(rc));
		f->upstream = r->upstream_count;
	}
	fwd_send_next(f);
}

/* ---- serving */

/* serve answers one query from net n (UDP: client; TCP: conn) */
static void serve(struct rsv_net *n, const uint8_t *msg, size_t len,
		  const struct sockaddr_in *client, struct rsv_conn *conn)
{
	struct resolver *r = n->r;
	size_t cap = conn ? RESOLVER_MSG_BYTES_MAX : RESOLVER_UDP_REPLY_BYTES;
	uint8_t *out = malloc(cap);
	if (!out) {
		rlog(r, ENV_LOG_WARN, "query dropped: out of memory");
		return;
	}
	size_t k = answer_from_table(&n->table, msg, len, out, cap);
	if (k) {
		if (conn)
			conn_send(conn, out, k);
		else
			udp_send(r, &n->udp, client, out, k);
	} else {
		struct resolver_question q;
		if (resolver_parse_query(msg, len, &q, NULL) == 0)
			fwd_start(n, &q, msg, len, client, conn);
	}
	free(out);
}

static void net_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rsv_net *n = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)n->r->rx, sizeof n->r->rx);
}

static void net_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
			 const struct sockaddr *from, unsigned flags)
{
	struct rsv_net *n = h->data;
	if (nread <= 0 || !from || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL))
		return;
	serve(n, (const uint8_t *)buf->base, (size_t)nread,
	      (const struct sockaddr_in *)from, NULL);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rsv_conn *c = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)c->buf + c->used,
			   (unsigned)(2 + RESOLVER_MSG_BYTES_MAX - c->used));
}

static void conn_idle(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rsv_conn *c = s->data;
	(void)buf;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (c->closing || !c->net)
		return;
	c->used += (size_t)nread;
	uv_timer_start(&c->idle, conn_idle, RESOLVER_TCP_IDLE_MS, 0);
	for (;;) {
		if (c->used < 2)
			break;
		size_t mlen = get16(c->buf);
		if (c->used < 2 + mlen)
			break;
		if (mlen)
			serve(c->net, c->buf + 2, mlen, NULL, c);
		if (c->closing || !c->net)
			return;
		memmove(c->buf, c->buf + 2 + mlen, c->used - 2 - mlen);
		c->used -= 2 + mlen;
	}
}

static void net_accept(uv_stream_t *server, int status)
{
	struct rsv_net *n = server->data;
	struct resolver *r = n->r;
	struct rsv_conn *c;
	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (c)
		c->buf = malloc(2 + RESOLVER_MSG_BYTES_MAX);
	if (!c || !c->buf || uv_tcp_init(r->loop, &c->tcp)) {
		rlog(r, ENV_LOG_WARN, "tcp connection refused: out of memory");
		if (c)
			free(c->buf);
		free(c);
		return;
	}
	c->r = r;
	c->tcp.data = c;
	c->idle.data = c;
	uv_timer_init(r->loop, &c->idle);
	c->handles_open = 2;
	r->handles_open += 2;
	c->net = n;
	c->next = n->conns;
	n->conns = c;
	n->conn_count++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
		conn_close(c);
		return;
	}
	if (n->conn_count > RESOLVER_TCP_CONNS_MAX) {
		rlog(r, ENV_LOG_WARN,
		     "tcp connection refused: %d open on network %016llx",
		     RESOLVER_TCP_CONNS_MAX, (unsigned long long)n->id);
		conn_close(c);
		return;
	}
	uv_timer_start(&c->idle, conn_idle, RESOLVER_TCP_IDLE_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read))
		conn_close(c);
}

/* ---- set */

static int uv_to_cs(int rc)
{
	if (rc == UV_EADDRINUSE)
		return CS_EADDRINUSE;
	if (rc == UV_ENOMEM)
		return CS_ENOMEM;
	return CS_EEXEC;
}

/* pair_pick binds a TCP and a UDP socket to one free port of addr's
 * address (addr's port is 0): TCP takes a port from the kernel, UDP must
 * then get the same one, which fails when that port is a UDP socket's
 * already (a busy loopback, tests beside other tests): it tries again
 * with another port, up to RESOLVER_PORT_PICKS times. Returns 0 with both
 * sockets bound (non-blocking, close-on-exec), or a negative uv error. */
static int pair_pick(const struct sockaddr_in *addr, int *tcp_fd, int *udp_fd)
{
	int rc = UV_EADDRINUSE;
	for (int i = 0; i < RESOLVER_PORT_PICKS && rc == UV_EADDRINUSE; i++) {
		struct sockaddr_in got = *addr;
		socklen_t alen = sizeof got;
		int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (t < 0 || u < 0) {
			rc = uv_translate_sys_error(errno);
		} else if (bind(t, (const struct sockaddr *)addr, sizeof *addr) ||
			   getsockname(t, (struct sockaddr *)&got, &alen) ||
			   bind(u, (const struct sockaddr *)&got, sizeof got)) {
			rc = uv_translate_sys_error(errno);
		} else {
			*tcp_fd = t;
			*udp_fd = u;
			return 0;
		}
		if (t >= 0)
			close(t);
		if (u >= 0)
			close(u);
	}
	return rc;
}

static int net_open(struct resolver *r, uint64_t id, const struct sockaddr_in *addr,
		    struct rsv_net **out)
{
	struct rsv_net *n = calloc(1, sizeof *n);
	int rc;
	*out = NULL;
	if (!n)
		return CS_ENOMEM;
	n->r = r;
	n->id = id;
	n->addr = *addr;
	/* neither opens a socket (AF_UNSPEC): when one fails, the other is
	 * the only handle to close */
	if (uv_udp_init(r->loop, &n->udp)) {
		free(n);
		return CS_ENOMEM;
	}
	if (uv_tcp_init(r->loop, &n->tcp)) {
		n->udp.data = n;
		n->handles_open = 1;
		r->handles_open += 1;
		uv_close((uv_handle_t *)&n->udp, net_handle_closed);
		return CS_ENOMEM;
	}
	n->udp.data = n;
	n->tcp.data = n;
	n->handles_open = 2;
	r->handles_open += 2;
	if (addr->sin_port == 0) {
		int tfd = -1, ufd = -1;
		rc = pair_pick(addr, &tfd, &ufd);
		if (!rc && (rc = uv_tcp_open(&n->tcp, tfd)) != 0) {
			close(tfd);
			close(ufd);
		} else if (!rc && (rc = uv_udp_open(&n->udp, ufd)) != 0) {
			close(ufd);
		}
	} else {
		rc = uv_udp_bind(&n->udp, (const struct sockaddr *)addr, 0);
		if (!rc)
			rc = uv_tcp_bind(&n->tcp, (const struct sockaddr *)addr, 0);
	}
	if (!rc)
		rc = uv_listen((uv_stream_t *)&n->tcp, 64, net_accept);
	if (!rc)
		rc = uv_udp_recv_start(&n->udp, net_alloc, net_udp_recv);
	if (rc) {
		char a[INET_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET, &addr->sin_addr, a, sizeof a);
		rlog(r, ENV_LOG_ERROR, "cannot listen on %s:%u for network %016llx: %s",
		     a, ntohs(addr->sin_port), (unsigned long long)id, uv_strerror(rc));
		net_close(n);
		return uv_to_cs(rc);
	}
	n->bound = true;
	*out = n;
	return 0;
}

int resolver_set_at(struct resolver *r, const struct env_net_state *st,
		    const char *listen_addr)
{
	struct rsv_table t;
	struct sockaddr_in addr;
	struct rsv_net *n;
	int rc;
	if (!st || r->stopping)
		return CS_EINVAL;
	if (!listen_addr)
		listen_addr = st->gateway;
	if (!listen_addr || parse_hostport(listen_addr, 1, &addr) ||
	    strchr(listen_addr, ':'))
		return CS_EINVAL;
	addr.sin_port = htons(r->port);
	rc = table_build(st, &t);
	if (rc)
		return rc;
	n = net_find(r, st->network_id);
	if (!n || n->addr.sin_addr.s_addr != addr.sin_addr.s_addr) {
		/* new, or moved: listen there before the old one goes, so
		 * that a failure leaves the network as it was */
		struct rsv_net *fresh;
		rc = net_open(r, st->network_id, &addr, &fresh);
		if (rc) {
			table_free(&t);
			return rc;
		}
		if (n)
			resolver_remove(r, st->network_id);
		n = fresh;
		struct rsv_net **pp = &r->nets;
		while (*pp && (*pp)->id < n->id)
			pp = &(*pp)->next;
		n->next = *pp;
		*pp = n;
	}
	table_free(&n->table);
	n->table = t;
	return 0;
}

int resolver_set(struct resolver *r, const struct env_net_state *st)
{
	return resolver_set_at(r, st, NULL);
}

/* ---------------------------------------------------------------- resolv.conf */

int resolver_read_resolv_conf(const char *path, char out[RESOLVER_UPSTREAMS_MAX][46],
			      int *skipped)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;
	*skipped = 0;
	if (!f)
		return CS_ENOENT;
	while (fgets(line, sizeof line, f)) {
		char word[16], addr[64];
		struct in_addr a;
		if (sscanf(line, "%15s %63s", word, addr) != 2 ||
		    strcmp(word, "nameserver") != 0)
			continue;
		if (n >= RESOLVER_UPSTREAMS_MAX || inet_pton(AF_INET, addr, &a) != 1) {
			(*skipped)++;
			continue;
		}
		inet_ntop(AF_INET, &a, out[n], 46);
		n++;
	}
	fclose(f);
	return n;
}
