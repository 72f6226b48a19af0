/* uvenv: the real world's env on libuv (see uvenv.h).
 *
 * Memory: every uv handle is counted in u->handles_live from init to its close
 * callback; after uvenv_close the last close callback frees u. An env timer
 * is no handle: it is one allocation in u's heap, run by u's one libuv timer
 * and freed when it fires (once) or stops. An incoming connection and an
 * outgoing connection are each one allocation holding its handle, freed in
 * that handle's close callback; a peer holds its backoff timer and is freed
 * in that timer's close callback (only at uvenv_close: peers live as long as
 * the env). One more timer, the sweep, closes connections that never said
 * hello and drops frames queued past their time to live. */
#include "net/netlog.h"
#include "net/uvenv.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/crypto.h>

#include "core/errors.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/pki.h"
#include "core/seal.h"
#include "net/crypttun.h"
#include "net/dataplane.h"
#include "net/dlist.h"
#include "net/tls.h"

#if defined(__has_include)
#if __has_include("net/docker.h")
#include "net/docker.h"
#define UVENV_HAS_DOCKER 1
#endif
#endif
#ifndef UVENV_HAS_DOCKER
#define UVENV_HAS_DOCKER 0
#endif
/* issue 17: the names of the data plane (net/resolver, another part of the
 * issue), when this tree has it */
#if defined(__has_include)
#if __has_include("net/resolver.h")
#include "net/resolver.h"
#define UVENV_HAS_RESOLVER 1
#endif
#endif
#ifndef UVENV_HAS_RESOLVER
#define UVENV_HAS_RESOLVER 0
#endif
#include "net/lb.h"

#define UVENV_MAGIC	       "CSW1"
#define UVENV_MAGIC_BYTES      4u
#define UVENV_HEADER_BYTES     4u
#define UVENV_READ_CHUNK_BYTES 65536u
#define UVENV_READ_KEEP_BYTES  (256u * 1024) /* an idle conn keeps no more */
#define UVENV_TLS_RECORD_BYTES 16384u	     /* plaintext of one TLS record */
#define UVENV_LOG_LINE_BYTES   4096u
#define UVENV_MESSAGE_BYTES    512u
#define UVENV_BUSY_TIMEOUT_MS  5000
#define UVENV_LISTEN_BACKLOG   4096 /* the kernel caps it at net.core.somaxconn */
/* connections accepted to wait for a handshake slot (see accept_paused) */
#define UVENV_HANDSHAKES_WAITING_MAX 16384u
#define UVENV_ROOTS_MAX		     2u /* trusted at once: the old and new in a rotation */
#define UVENV_CHAIN_MAX		     4u /* a peer's chain certificates looked at */
#define UVENV_EPHEMERAL_S	     (10LL * 365 * 24 * 3600)

_Static_assert(LIMIT_ADDR_BYTES_MAX < 256, "an address fits a hello");

/* ---------------------------------------------------------------- types */

/* Env timers of one or more uvenvs of one loop: a heap by (due, seq) and
 * one libuv timer (tick) armed for its earliest (tick_due; UINT64_MAX when
 * stopped). */
struct uvenv_clock {
	uv_loop_t *loop;
	uv_timer_t tick;
	uint64_t tick_due;
	struct uvenv_timer **heap;
	size_t count, cap;
	uint64_t seq; /* arming order */
	bool running; /* in uvenv_clock_fire */
	bool closed;
};

/* An env timer: not a uv handle of its own but an entry in its clock's
 * heap. */
struct uvenv_timer {
	struct uvenv *u;
	env_timer_id id;
	env_timer_cb cb;
	void *data;
	ms_t repeat_ms; /* 0: fires once */
	uint64_t due;	/* the loop's time it fires at */
	uint64_t seq;	/* arming order: breaks ties of due */
	size_t heap_i;	/* its index in the clock's heap */
};

/* One frame on the wire: 4-byte big-endian length then payload. */
struct uvenv_frame {
	struct uvenv_frame *next;
	uv_write_t req;
	uint64_t queued_ms; /* the loop's time at send() */
	size_t size;	    /* header included */
	uint8_t bytes[];
};

/* An incoming connection: read only. */
struct uvenv_in {
	uv_tcp_t handle;
	struct uvenv *u;
	struct uvenv_in *prev, *next;
	/* in u's idle list (u->idle_first): a buffer held, nothing in it, and
	 * not in its read callback */
	struct uvenv_in *idle_prev, *idle_next;
	bool idle;
	uint8_t *buf;
	size_t len, cap;
	bool hello; /* from is known */
	bool closing;
	bool evicted;			     /* its read would pass the global bound */
	uint64_t accepted_ms;		     /* the loop's time at accept */
	uint64_t frame_ms;		     /* ... when the partial frame began
						(meaningful while len > 0) */
	uint64_t read_ms;		     /* ... at the last bytes read */
	char remote[64];		     /* ip:port of the socket */
	char ip[48];			     /* its IP alone ("" unknown) */
	char from[LIMIT_ADDR_BYTES_MAX + 1]; /* the hello's address */
	/* TLS: the server side of the session; who the client proved to be */
	struct tls_conn *tls;
	size_t cipher;	  /* bytes fed to tls not yet decrypted (counted in
			     u->in_buffered) */
	bool handshaking; /* counted in u->handshakes */
	/* accepted past handshakes_max: in u's wait list (u->wait_first),
	 * no TLS yet, not read, until a handshake ends (uvenv_wait_start) */
	bool waiting;
	struct uvenv_in *wait_prev, *wait_next;
	bool handshaken;
	bool verified; /* peer holds a certificate pki_verify took */
	struct pki_cert peer;
	uint64_t conn;		    /* its id for env reply (never 0, never reused) */
	struct uvenv_in *conn_next; /* its chain in u->conn_tab */
};

/* A node key sealed with the autolock kek (node.key): this magic, a
 * nonce, the sealed PKCS#8 DER and its tag. */
#define UVENV_SEAL_MAGIC       "CSWSEAL1"
#define UVENV_SEAL_MAGIC_BYTES 8u
#define UVENV_SEAL_AD	       "cswarm node.key"
#define UVENV_SEALED_BYTES_MAX \
	(UVENV_SEAL_MAGIC_BYTES + SEAL_NONCE_BYTES + PKI_DER_BYTES_MAX + SEAL_TAG_BYTES)

/* An outgoing connection: write only (reads only to notice the end). */
struct uvenv_out {
	uv_tcp_t handle;
	uv_connect_t connect;
	struct uvenv *u;
	struct uvenv_peer *peer; /* NULL once detached */
	bool up;		 /* handshaken, the server's certificate checked */
	bool closing;
	struct tls_conn *tls; /* the client side; NULL until connected */
	uint64_t dialed_ms;   /* the loop's time at dial */
	/* what the server showed, and the frames it replies (env reply) */
	bool verified;
	struct pki_cert shown;
	uint8_t *buf;
	size_t len, cap;
};

struct uvenv_peer {
	struct uvenv_peer *next_in_bucket;
	struct uvenv *u;
	struct sockaddr_in sa;
	struct uvenv_out *out;		 /* NULL: not connected nor dialing */
	struct uvenv_frame *head, *tail; /* not yet handed to libuv */
	size_t pending_bytes;
	uv_timer_t backoff;
	bool backoff_armed;
	bool drops_told;   /* frames dropped since it was last up: said at info */
	bool refused_told; /* its certificate refused since it was last up */
	ms_t backoff_ms;   /* next delay; 0 after a success */
	uint64_t sent_ms;  /* the loop's time at the last send() to it */
	/* issue 18: kept connected (uvenv_keep_peers), frames or not */
	bool kept;
	char addr[LIMIT_ADDR_BYTES_MAX + 1];
};

struct uvenv_db {
	struct uvenv_db *next;
	struct sqlite3 *db;
	char name[LIMIT_NAME_BYTES_MAX + 1];
};

struct uvenv {
	struct env env;
	uv_loop_t *loop;
	uv_tcp_t listener;
	bool closing;
	size_t handles_live;

	char addr[LIMIT_ADDR_BYTES_MAX + 1]; /* advertised */
	char node[LIMIT_NAME_BYTES_MAX + 1]; /* for log lines */
	char *state_dir;
	struct docker *docker;
	struct dataplane *dataplane; /* issue 17: borrowed; NULL: none */
	struct crypttun *crypttun;   /* issue 17 encryption: borrowed; NULL: none */
#if UVENV_HAS_RESOLVER
	struct resolver *resolver; /* the tasks' DNS on each gateway; NULL: none */
#endif
	/* issue 17: each network's VIP rules (and the ingress network's
	 * published ports) as last applied, ascending network id */
	struct uvenv_lb *lbs;
	size_t lb_count, lb_cap;
	/* the words of the last net_set that failed (env net_error) */
	char net_err[640];
	FILE *log_out;
	enum env_log_level log_level;
	size_t frame_max;
	size_t peer_queue_bytes_max;
	uint64_t hello_timeout_ms;
	uint64_t frame_deadline_ms;
	uint64_t frame_ttl_ms;
	uint64_t idle_timeout_ms;
	uint64_t peer_idle_ms;
	/* cfg dial_from: where outgoing connections leave from */
	bool dial_from;
	struct sockaddr_in dial_sa;
	uv_timer_t sweep;
	uint64_t sweeps; /* how many ran: every sweep_full-th looks at all */

	/* transport */
	env_recv_cb recv_cb;
	env_peer_cb peer_cb;
	void *cb_data;
	bool listening;
	struct uvenv_in *ins;
	size_t in_count;
	/* issue 18: the ins by conn id (chained, conn & (cap - 1)): a leader
	 * answers every agent on its connection, so env reply must not walk
	 * the list. cap a power of two, or 0 before the first accept. */
	struct uvenv_in **conn_tab;
	size_t conn_tab_cap;
	size_t in_buffered; /* sum of the ins' buffer capacities */
	size_t in_buffered_max;
	/* issue 18: the ins holding an empty buffer, the longest idle first,
	 * whose buffers go first when a read needs room (a walk of every
	 * connection for them was 4.5% of a leader's time at 10,000 agents) */
	struct uvenv_in *idle_first, *idle_last;
	struct uvenv_peer **buckets; /* chained hash of peers by address */
	size_t bucket_count;	     /* a power of two */
	size_t peer_count;
	uint64_t tls_writes; /* plaintext handed to TLS: one record each (to 16 KiB) */
	/* frames sent to connected peers during one loop turn go out together,
	 * just before the loop waits again (uvenv_corked) */
	uv_prepare_t cork;
	bool corked;
	/* peer notices (env_peer_cb), in the order they happened: told from
	 * the loop's idle phase, never from inside an env call (a connection
	 * can fail within send or pki_install; the core must not be re-entered
	 * there, and a recording must see a notice as an event of its own) */
	uv_idle_t notify;
	struct uvenv_notice {
		char addr[LIMIT_ADDR_BYTES_MAX + 1];
		bool up;
	} * notices;
	size_t notice_count, notice_cap;

	/* random: what getrandom gave and is not drawn yet (from random_used) */
	uint8_t random_pool[256];
	size_t random_used;

	/* timers: sorted by id (ids only grow, so appends keep the order);
	 * the same timers are in clock's heap, the clock of cfg (shared by the
	 * uvenvs of a loop) or own_clock */
	struct uvenv_timer **timers;
	size_t timer_count, timer_cap;
	env_timer_id timer_next_id;
	struct uvenv_clock *clock;
	struct uvenv_clock own_clock;

	/* exit (env exit): the reason, kept until on_exit runs from the loop */
	void (*on_exit)(void *data, const char *why);
	void *exit_data;
	bool exiting;
	uv_timer_t exit_timer;
	char exit_why[UVENV_MESSAGE_BYTES];

	/* storage */
	struct uvenv_db *dbs;
	char storage_error[2 * UVENV_MESSAGE_BYTES];

	/* identity (STATE_DIR/tls/): key and certificate in use, the pending
	 * key of the last CSR, the roots trusted (or a pinned digest) */
	char *tls_dir;
	int64_t (*wall_now_s)(void *data);
	void *wall_data;
	struct tls_ctx *tls_server; /* node cert (or a throwaway one) + roots */
	struct tls_ctx *tls_client; /* node cert + roots, or none */
	uint8_t key[PKI_DER_BYTES_MAX];
	size_t key_len;
	/* autolock: node.key sealed on disk with kek; sealed_len > 0 while the
	 * key is still locked (loaded sealed, no pki_unlock yet) */
	uint8_t kek[SEAL_KEY_BYTES];
	bool kek_set;
	uint8_t sealed[UVENV_SEALED_BYTES_MAX];
	size_t sealed_len;
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t cert_len;
	uint8_t pending[PKI_DER_BYTES_MAX];
	size_t pending_len;
	uint8_t roots[UVENV_ROOTS_MAX][PKI_DER_BYTES_MAX];
	struct env_blob root_blobs[UVENV_ROOTS_MAX];
	size_t root_count;
	/* pki_info's last verification of its own certificate against its
	 * roots: the result for the bytes whose digest is own_digest (the
	 * certificate's, then the roots'), which holds while the wall clock
	 * stays within the certificate's validity. A node asks every tick
	 * (nodecert_read): parsing it each time was 62% of swarmload's CPU
	 * with 600 agents reconnecting (perf, issue 18) */
	bool own_ok;
	uint8_t own_digest[ENV_DIGEST_BYTES];
	struct pki_cert own_pc;
	/* peers' certificates verified (issue 18): given, or its own */
	struct uvenv_vcache *vcache;
	bool vcache_own;
	uint8_t pin[ENV_DIGEST_BYTES];
	bool pinned;
	/* the frame being delivered: who sent it, on which connection */
	bool recv_active;
	bool recv_verified;
	const struct pki_cert *recv_peer;
	uint64_t recv_conn;
	const char *recv_ip; /* the socket peer's IP, "" unknown */
	uint64_t conn_next_id;
	size_t handshakes; /* incoming connections in their handshake */
	size_t handshakes_max;
	/* at handshakes_max, the next connection is accepted to wait its turn
	 * (in the wait list, oldest first, neither read nor answered) until a
	 * handshake ends: a burst of legitimate nodes (all of a dead leader's
	 * agents at its successor) is served in turn, not closed to retry.
	 * Issue 18: it waited in the kernel's backlog, which overflowed (4,096
	 * at most): each connection dropped there came back only at TCP's
	 * retransmissions, 1, 2, 4 s later, and 134,000 drops in a leader's
	 * kill at 10,000 agents left the managers idle for seconds. Past
	 * UVENV_HANDSHAKES_WAITING_MAX waiting, accepting pauses (libuv holds
	 * the next, the backlog the rest) */
	struct uvenv_in *wait_first, *wait_last;
	size_t waiting;
	bool accept_paused;
	size_t accepts_held; /* connections that waited since the sweep said so */
	/* handshakes of incoming connections since the last sweep: completed
	 * (and their time from accept, summed), and ended before completing
	 * (closed by the client, an error or a timeout): said with the pause,
	 * where slots spent on clients that gave up show (issue 18) */
	size_t hs_done, hs_ended;
	uint64_t hs_done_ms;
	uint64_t handshake_timeout_ms;
	uint8_t *rbuf; /* every socket read lands here (one loop, one at a time) */
	/* issue 18: the addresses uvenv_keep_peers was last given */
	char kept[LIMIT_MANAGERS_MAX][LIMIT_ADDR_BYTES_MAX + 1];
	size_t kept_count;
	struct env_ops ops_dp; /* with a data plane: env.ops points here */
};

static const struct env_ops uvenv_ops;

/* ---------------------------------------------------------------- helpers */

static struct uvenv *uvenv_of(struct env *env)
{
	assert(env != NULL);
	assert(env->ops->now_ms == uvenv_ops.now_ms); /* uvenv_ops, or its copy */
	return env->impl;
}

/* ---------------------------------------------------------------- verified peers */

struct uvenv_vcache_slot {
	uint8_t key[ENV_DIGEST_BYTES]; /* of the certificate and the roots */
	bool used;
	struct pki_cert pc;
};

struct uvenv_vcache {
	size_t slots; /* a power of two */
	uint64_t hits, misses;
	/* the roots (and the last leaves) parsed once for every miss's
	 * pki_verify_cached: a root's parse was one of the two parses of
	 * each check, 0.85 M instructions in OpenSSL 3.0. Only parses: no
	 * signature is ever made through it (pki_sign_cached,
	 * pki_csr_create_cached), so no check is ever skipped */
	struct pki_cache parsed;
	struct uvenv_vcache_slot slot[];
};

struct uvenv_vcache *uvenv_vcache_new(size_t slots)
{
	struct uvenv_vcache *c;
	size_t n = 1;
	while (n < slots && n < ((size_t)1 << 24))
		n *= 2;
	c = calloc(1, sizeof *c + n * sizeof c->slot[0]);
	if (c)
		c->slots = n;
	return c;
}

void uvenv_vcache_free(struct uvenv_vcache *c)
{
	if (!c)
		return;
	pki_cache_free(&c->parsed);
	free(c);
}

void uvenv_vcache_counts(const struct uvenv_vcache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c ? c->hits : 0;
	*misses = c ? c->misses : 0;
}

struct uvenv_vcache *uvenv_vcache_of(struct uvenv *u)
{
	return u->vcache;
}

/* The digest of data's digest and each of u's roots': the key of what
 * was verified of data against those roots (a peer's certificate in the
 * vcache, its own in own_pc). */
static void uvenv_digest_with_roots(const struct uvenv *u, const uint8_t *data,
				    size_t len, uint8_t key[ENV_DIGEST_BYTES])
{
	uint8_t d[(UVENV_ROOTS_MAX + 1) * ENV_DIGEST_BYTES];

	pki_digest(data, len, d);
	for (size_t i = 0; i < u->root_count; i++)
		pki_digest(u->root_blobs[i].data, u->root_blobs[i].len,
			   d + (i + 1) * ENV_DIGEST_BYTES);
	pki_digest(d, (u->root_count + 1) * ENV_DIGEST_BYTES, key);
}

/* pki_verify of a peer's leaf (the one t's handshake parsed) against u's
 * roots at now, through u's cache. Returns as pki_verify. */
static int uvenv_verify_peer(struct uvenv *u, const struct tls_conn *t,
			     const struct env_blob *leaf, int64_t now,
			     struct pki_cert *out, char why[PKI_WHY_BYTES])
{
	struct uvenv_vcache *c = u->vcache;
	struct uvenv_vcache_slot *s;
	uint8_t key[ENV_DIGEST_BYTES];
	uint64_t at;

	if (!c)
		return pki_verify(leaf, u->root_blobs, u->root_count, now, out, why);
	uvenv_digest_with_roots(u, leaf->data, leaf->len, key);
	memcpy(&at, key, sizeof at);
	s = &c->slot[at & (c->slots - 1)];
	if (s->used && memcmp(s->key, key, sizeof key) == 0 &&
	    now >= s->pc.not_before_s && now <= s->pc.not_after_s) {
		c->hits++;
		*out = s->pc;
		return 0;
	}
	c->misses++;
	pki_cache_keep_leaf(&c->parsed, tls_peer_leaf(t)); /* not parsed again */
	if (pki_verify_cached(&c->parsed, leaf, u->root_blobs, u->root_count, now, out,
			      why) != 0)
		return CS_EAUTH;
	memcpy(s->key, key, sizeof key);
	s->pc = *out;
	s->used = true;
	return 0;
}

/* Frees u and what it holds outside handles (its keys wiped first). */
static void uvenv_free(struct uvenv *u)
{
	if (u->vcache_own)
		uvenv_vcache_free(u->vcache);
	tls_ctx_free(u->tls_server);
	tls_ctx_free(u->tls_client);
	free(u->rbuf);
	free(u->tls_dir);
	free(u->state_dir);
	OPENSSL_cleanse(u, sizeof *u);
	free(u);
}

/* Counts a handle gone; the last one after uvenv_close frees u. */
static void uvenv_handle_gone(struct uvenv *u)
{
	assert(u->handles_live > 0);
	u->handles_live--;
	if (u->closing && u->handles_live == 0)
		uvenv_free(u);
}

static void uvenv_write_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t uvenv_read_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------------------------------------------------------- addresses */

int uvenv_parse_addr(const char *s, struct sockaddr_in *out, char *err, size_t err_size)
{
	char host[LIMIT_ADDR_BYTES_MAX + 1];
	const char *colon;
	size_t host_len;
	unsigned long port = 0;
	struct in_addr ip;

	assert(out != NULL);
	if (!s || !*s) {
		netlog_errf(err, err_size, "empty address: expected HOST:PORT");
		return CS_EINVAL;
	}
	if (strlen(s) > LIMIT_ADDR_BYTES_MAX) {
		netlog_errf(err, err_size, "'%.32s...': longer than %u bytes", s,
			    LIMIT_ADDR_BYTES_MAX);
		return CS_EINVAL;
	}
	colon = strrchr(s, ':');
	if (!colon) {
		netlog_errf(err, err_size, "'%s': expected HOST:PORT", s);
		return CS_EINVAL;
	}
	host_len = (size_t)(colon - s);
	memcpy(host, s, host_len);
	host[host_len] = '\0';
	if (colon[1] == '\0') {
		netlog_errf(err, err_size, "'%s': no port, expected HOST:PORT", s);
		return CS_EINVAL;
	}
	for (const char *p = colon + 1; *p; p++) {
		if (!isdigit((unsigned char)*p) || port > 65535) {
			netlog_errf(err, err_size, "'%s': port must be 1..65535", s);
			return CS_EINVAL;
		}
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port > 65535) {
		netlog_errf(err, err_size, "'%s': port must be 1..65535", s);
		return CS_EINVAL;
	}
	if (strcmp(host, "localhost") == 0) {
		ip.s_addr = htonl(INADDR_LOOPBACK);
	} else if (host_len == 0 || inet_pton(AF_INET, host, &ip) != 1) {
		netlog_errf(err, err_size,
			    "'%s': host must be a dotted IPv4 address or 'localhost'", s);
		return CS_EINVAL;
	}
	memset(out, 0, sizeof *out);
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	out->sin_addr = ip;
	return 0;
}

/* ---------------------------------------------------------------- log */

static const char *uvenv_level_name(enum env_log_level level)
{
	switch (level) {
	case ENV_LOG_DEBUG: return "debug";
	case ENV_LOG_INFO: return "info";
	case ENV_LOG_WARN: return "warn";
	case ENV_LOG_ERROR: return "error";
	}
	return "?";
}

/* One logfmt line: ts, level, node, then the message, itself logfmt when it
 * starts with msg=, else quoted as msg="...". */
static void uvenv_log_line(struct uvenv *u, enum env_log_level level, const char *msg)
{
	char line[UVENV_LOG_LINE_BYTES];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int w;

	if (level < u->log_level || !u->log_out)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	w = snprintf(line, sizeof line,
		     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s node=%s ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, uvenv_level_name(level),
		     u->node[0] ? u->node : "-");
	n = w > 0 && (size_t)w < sizeof line ? (size_t)w : 0;
	if (strncmp(msg, "msg=", 4) == 0) {
		w = snprintf(line + n, sizeof line - n, "%s", msg);
		n = w > 0 && (size_t)w < sizeof line - n ? n + (size_t)w
							 : sizeof line - 1;
	} else {
		line[n++] = 'm';
		line[n++] = 's';
		line[n++] = 'g';
		line[n++] = '=';
		line[n++] = '"';
		for (const char *p = msg; *p && n + 3 < sizeof line; p++) {
			if (*p == '"' || *p == '\\')
				line[n++] = '\\';
			line[n++] = *p == '\n' ? ' ' : *p;
		}
		line[n++] = '"';
		line[n] = '\0';
	}
	fprintf(u->log_out, "%s\n", line);
	fflush(u->log_out);
}

static void uvenv_logf(struct uvenv *u, enum env_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void uvenv_logf(struct uvenv *u, enum env_log_level level, const char *fmt, ...)
{
	char msg[UVENV_LOG_LINE_BYTES];
	va_list ap;

	if (level < u->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	uvenv_log_line(u, level, msg);
}

static void uvenv_env_log(struct env *env, enum env_log_level level, const char *msg)
{
	uvenv_log_line(uvenv_of(env), level, msg);
}

/* ---------------------------------------------------------------- clock */

static ms_t uvenv_now_ms(struct env *env)
{
	return uv_now(uvenv_of(env)->loop);
}

/* The wall clock in ms (the test hook, when set, in whole seconds). */
static uint64_t uvenv_wall_ms(struct env *env)
{
	struct uvenv *u = uvenv_of(env);
	struct timespec ts;

	if (u->wall_now_s)
		return (uint64_t)u->wall_now_s(u->wall_data) * 1000u;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Index of id in u->timers, or of where it would go. */
static size_t uvenv_timer_slot(const struct uvenv *u, env_timer_id id)
{
	size_t lo = 0, hi = u->timer_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (u->timers[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct uvenv_timer *uvenv_timer_find(const struct uvenv *u, env_timer_id id)
{
	size_t i = uvenv_timer_slot(u, id);

	if (i < u->timer_count && u->timers[i]->id == id)
		return u->timers[i];
	return NULL;
}

/* The heap's order is libuv's: the earlier due first, then the earlier
 * armed (seq), so equal deadlines fire in the order they were armed. */
static bool uvenv_timer_before(const struct uvenv_timer *a, const struct uvenv_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void uvenv_heap_set(struct uvenv_clock *k, size_t i, struct uvenv_timer *t)
{
	k->heap[i] = t;
	t->heap_i = i;
}

static void uvenv_heap_up(struct uvenv_clock *k, size_t i)
{
	struct uvenv_timer *t = k->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!uvenv_timer_before(t, k->heap[parent]))
			break;
		uvenv_heap_set(k, i, k->heap[parent]);
		i = parent;
	}
	uvenv_heap_set(k, i, t);
}

static void uvenv_heap_down(struct uvenv_clock *k, size_t i)
{
	struct uvenv_timer *t = k->heap[i];
	size_t n = k->count;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && uvenv_timer_before(k->heap[c + 1], k->heap[c]))
			c++;
		if (!uvenv_timer_before(k->heap[c], t))
			break;
		uvenv_heap_set(k, i, k->heap[c]);
		i = c;
	}
	uvenv_heap_set(k, i, t);
}

/* Takes t out of k's heap. */
static void uvenv_heap_remove(struct uvenv_clock *k, struct uvenv_timer *t)
{
	size_t i = t->heap_i;
	struct uvenv_timer *last;

	assert(i < k->count && k->heap[i] == t);
	last = k->heap[--k->count];
	if (last == t)
		return;
	uvenv_heap_set(k, i, last);
	if (i > 0 && uvenv_timer_before(last, k->heap[(i - 1) / 2]))
		uvenv_heap_up(k, i);
	else
		uvenv_heap_down(k, i);
}

static void uvenv_clock_fire(uv_timer_t *h);

/* Arms k's one libuv timer for the earliest env timer (or stops it). Not
 * while the timers run: the run re-arms it when it ends. */
static void uvenv_clock_rearm(struct uvenv_clock *k)
{
	uint64_t now, due;

	if (k->running || k->closed)
		return;
	if (k->count == 0) {
		if (k->tick_due != UINT64_MAX) {
			uv_timer_stop(&k->tick);
			k->tick_due = UINT64_MAX;
		}
		return;
	}
	due = k->heap[0]->due;
	if (due == k->tick_due)
		return;
	now = uv_now(k->loop);
	uv_timer_start(&k->tick, uvenv_clock_fire, due > now ? due - now : 0, 0);
	k->tick_due = due;
}

/* Takes t out of u's table and its clock's heap and frees it: it never
 * fires again. */
static void uvenv_timer_kill(struct uvenv *u, struct uvenv_timer *t)
{
	size_t i = uvenv_timer_slot(u, t->id);

	assert(i < u->timer_count);
	assert(u->timers[i] == t);
	memmove(&u->timers[i], &u->timers[i + 1],
		(u->timer_count - i - 1) * sizeof *u->timers);
	u->timer_count--;
	uvenv_heap_remove(u->clock, t);
	free(t);
}

/* The one libuv timer: runs every env timer due by the loop's time, of
 * every uvenv on the clock, in the heap's order, as libuv ran them when
 * each was a uv_timer of its own (a repeating one is re-armed before its
 * callback; one armed with 0 ms by a callback runs in the same pass). */
static void uvenv_clock_fire(uv_timer_t *h)
{
	struct uvenv_clock *k =
		(struct uvenv_clock *)((char *)h - offsetof(struct uvenv_clock, tick));
	uint64_t now = uv_now(k->loop);

	k->tick_due = UINT64_MAX; /* a one-shot: it fired */
	k->running = true;
	while (k->count > 0 && k->heap[0]->due <= now) {
		struct uvenv_timer *t = k->heap[0];
		struct uvenv *u = t->u;
		env_timer_cb cb = t->cb;
		void *data = t->data;
		env_timer_id id = t->id;

		assert(!u->closing); /* uvenv_close took its timers out */
		if (t->repeat_ms > 0) {
			t->due = now + t->repeat_ms;
			t->seq = k->seq++;
			uvenv_heap_down(k, 0);
		} else {
			uvenv_timer_kill(u, t); /* the id is dead when cb runs */
		}
		cb(&u->env, id, data);
	}
	k->running = false;
	uvenv_clock_rearm(k);
}

static void uvenv_clock_init(struct uvenv_clock *k, uv_loop_t *loop)
{
	memset(k, 0, sizeof *k);
	k->loop = loop;
	k->tick_due = UINT64_MAX;
	uv_timer_init(loop, &k->tick);
}

struct uvenv_clock *uvenv_clock_new(uv_loop_t *loop)
{
	struct uvenv_clock *k = malloc(sizeof *k);

	if (k)
		uvenv_clock_init(k, loop);
	return k;
}

static void uvenv_clock_closed(uv_handle_t *h)
{
	free((char *)h - offsetof(struct uvenv_clock, tick));
}

void uvenv_clock_free(struct uvenv_clock *k)
{
	if (!k)
		return;
	assert(k->count == 0); /* every uvenv on it closed */
	k->closed = true;
	free(k->heap);
	k->heap = NULL;
	uv_timer_stop(&k->tick);
	uv_close((uv_handle_t *)&k->tick, uvenv_clock_closed);
}

static int uvenv_timer_start(struct env *env, ms_t delay_ms, ms_t repeat_ms,
			     env_timer_cb cb, void *data, env_timer_id *id)
{
	struct uvenv *u = uvenv_of(env);
	struct uvenv_clock *k = u->clock;
	struct uvenv_timer *t;
	int rv;

	assert(cb != NULL);
	assert(id != NULL);
	assert(!u->closing);
	if (u->timer_count >= LIMIT_TIMERS_PER_NODE_MAX)
		return CS_ELIMIT;
	if ((rv = grow_array((void **)&u->timers, &u->timer_cap, u->timer_count + 1,
			     sizeof *u->timers)) ||
	    (rv = grow_array((void **)&k->heap, &k->cap, k->count + 1, sizeof *k->heap)))
		return rv;
	t = malloc(sizeof *t);
	if (!t)
		return CS_ENOMEM;
	t->u = u;
	t->id = u->timer_next_id++;
	t->cb = cb;
	t->data = data;
	t->repeat_ms = repeat_ms;
	t->due = uv_now(u->loop) + delay_ms;
	t->seq = k->seq++;
	assert(u->timer_count == 0 || u->timers[u->timer_count - 1]->id < t->id);
	u->timers[u->timer_count++] = t;
	uvenv_heap_set(k, k->count, t);
	uvenv_heap_up(k, k->count++);
	uvenv_clock_rearm(k);
	*id = t->id;
	return 0;
}

static void uvenv_timer_stop(struct env *env, env_timer_id id)
{
	struct uvenv *u = uvenv_of(env);
	struct uvenv_timer *t = uvenv_timer_find(u, id);

	if (t) {
		uvenv_timer_kill(u, t);
		uvenv_clock_rearm(u->clock);
	}
	assert(uvenv_timer_find(u, id) == NULL);
}

/* ---------------------------------------------------------------- incoming */

/* Takes c out of u's idle list (if it is in it). */
static void uvenv_in_idle_unlink(struct uvenv_in *c)
{
	struct uvenv *u = c->u;

	if (!c->idle)
		return;
	DQUEUE_UNLINK(u->idle_first, u->idle_last, c, idle_prev, idle_next);
	c->idle = false;
}

/* Puts c at the end of u's idle list if it holds an empty buffer. */
static void uvenv_in_idle_link(struct uvenv_in *c)
{
	struct uvenv *u = c->u;

	if (c->idle || c->closing || c->len > 0 || c->cap == 0)
		return;
	DQUEUE_APPEND(u->idle_first, u->idle_last, c, idle_prev, idle_next);
	c->idle = true;
}

/* Frees c's plaintext read buffer (it holds nothing partly read, or c is
 * closing). */
static void uvenv_in_release(struct uvenv_in *c)
{
	struct uvenv *u = c->u;

	uvenv_in_idle_unlink(c);
	assert(u->in_buffered >= c->cap);
	u->in_buffered -= c->cap;
	free(c->buf);
	c->buf = NULL;
	c->cap = 0;
	c->len = 0;
}

/* Whether c holds part of a frame: plaintext of an incomplete frame, or
 * ciphertext of an incomplete record. */
static bool uvenv_in_partial(const struct uvenv_in *c)
{
	return c->len > 0 || c->cipher > 0;
}

/* Sets c's count of undecrypted ciphertext to what tls holds now. */
static void uvenv_in_count_cipher(struct uvenv_in *c)
{
	struct uvenv *u = c->u;
	size_t now = c->tls ? tls_in_pending(c->tls) : 0;

	assert(u->in_buffered >= c->cipher);
	u->in_buffered -= c->cipher;
	u->in_buffered += now;
	c->cipher = now;
}

static void uvenv_in_close_cb(uv_handle_t *h)
{
	struct uvenv_in *c = h->data;
	struct uvenv *u = c->u;

	tls_conn_free(c->tls);
	free(c->buf);
	free(c);
	uvenv_handle_gone(u);
}

static void uvenv_notify(uv_idle_t *h);

/* Whether u takes the next connection: a handshake slot free, or room
 * in the wait list. */
static bool uvenv_accept_room(const struct uvenv *u)
{
	return u->handshakes < u->handshakes_max ||
	       u->waiting < UVENV_HANDSHAKES_WAITING_MAX;
}

/* Takes c out of u's wait list. */
static void uvenv_wait_unlink(struct uvenv_in *c)
{
	struct uvenv *u = c->u;

	assert(c->waiting && u->waiting > 0);
	DQUEUE_UNLINK(u->wait_first, u->wait_last, c, wait_prev, wait_next);
	c->waiting = false;
	u->waiting--;
}

/* A handshake ended (or a waiting connection closed): the waiting ones'
 * turn comes, and accepting goes on when it paused, from the loop's idle
 * phase, not inside the close or read that ended it. */
static void uvenv_accept_wake(struct uvenv *u)
{
	if ((u->accept_paused || u->wait_first) && !u->closing)
		uv_idle_start(&u->notify, uvenv_notify);
}

/* Adds c to the table of ins by conn id, growing it (doubling, so that
 * chains stay about one long) when it has fewer slots than ins. Returns 0,
 * or CS_ENOMEM (c is then not in the table: replies on it find nothing,
 * as on a closed connection). */
static int uvenv_conn_add(struct uvenv *u, struct uvenv_in *c)
{
	if (u->in_count > u->conn_tab_cap) {
		size_t cap = u->conn_tab_cap ? u->conn_tab_cap * 2 : 64;
		struct uvenv_in **tab;
		while (cap < u->in_count)
			cap *= 2;
		tab = calloc(cap, sizeof *tab);
		if (!tab)
			return CS_ENOMEM;
		for (size_t i = 0; i < u->conn_tab_cap; i++) {
			struct uvenv_in *d = u->conn_tab[i];
			while (d) {
				struct uvenv_in *next = d->conn_next;
				d->conn_next = tab[d->conn & (cap - 1)];
				tab[d->conn & (cap - 1)] = d;
				d = next;
			}
		}
		free(u->conn_tab);
		u->conn_tab = tab;
		u->conn_tab_cap = cap;
	}
	c->conn_next = u->conn_tab[c->conn & (u->conn_tab_cap - 1)];
	u->conn_tab[c->conn & (u->conn_tab_cap - 1)] = c;
	return 0;
}

/* The in of conn id conn, or NULL. */
static struct uvenv_in *uvenv_conn_find(const struct uvenv *u, uint64_t conn)
{
	struct uvenv_in *c;
	if (!u->conn_tab_cap)
		return NULL;
	for (c = u->conn_tab[conn & (u->conn_tab_cap - 1)]; c && c->conn != conn;
	     c = c->conn_next)
		;
	return c;
}

static void uvenv_conn_remove(struct uvenv *u, struct uvenv_in *c)
{
	struct uvenv_in **pp;
	if (!u->conn_tab_cap)
		return;
	for (pp = &u->conn_tab[c->conn & (u->conn_tab_cap - 1)]; *pp;
	     pp = &(*pp)->conn_next)
		if (*pp == c) {
			*pp = c->conn_next;
			c->conn_next = NULL;
			return;
		}
}

/* Closes an incoming connection; a reason (not NULL) is logged at warn. */
static void uvenv_in_close(struct uvenv_in *c, const char *reason)
{
	struct uvenv *u = c->u;

	if (c->closing)
		return;
	c->closing = true;
	if (reason) {
		char msg[UVENV_MESSAGE_BYTES + 128];
		snprintf(msg, sizeof msg,
			 "msg=\"closing connection\" peer=%s from=%s reason=\"%s\"",
			 c->remote, c->hello ? c->from : "-", reason);
		uvenv_log_line(u, ENV_LOG_WARN, msg);
	}
	DLIST_UNLINK(u->ins, c);
	uvenv_conn_remove(u, c);
	u->in_count--;
	if (c->waiting) {
		uvenv_wait_unlink(c);
		uvenv_accept_wake(u);
	}
	if (c->handshaking) {
		u->hs_ended++;
		assert(u->handshakes > 0);
		u->handshakes--;
		c->handshaking = false;
		uvenv_accept_wake(u);
	}
	/* libuv reads synchronously into the buffer alloc gave, so none is
	 * pending now: its memory goes back at once, not at the close
	 * callback (the global bound counts on it). The ciphertext tls holds
	 * is freed with it in the close callback, but uncounted from now. */
	uvenv_in_release(c);
	assert(u->in_buffered >= c->cipher);
	u->in_buffered -= c->cipher;
	c->cipher = 0;
	uv_close((uv_handle_t *)&c->handle, uvenv_in_close_cb);
}

/* Closes c because the read buffers would pass the global bound, saying
 * so. */
static void uvenv_in_close_over_bound(struct uvenv_in *c)
{
	struct uvenv *u = c->u;
	char why[224];

	if (uvenv_in_partial(c))
		snprintf(why, sizeof why,
			 "read buffers over the global bound of %zu bytes: this "
			 "connection's frame, begun %" PRIu64
			 " ms ago with %zu bytes read, is the oldest not complete",
			 u->in_buffered_max, uv_now(u->loop) - c->frame_ms,
			 c->len + c->cipher);
	else
		snprintf(why, sizeof why,
			 "read buffers over the global bound of %zu bytes: no room "
			 "to read, and no older partial frame to close",
			 u->in_buffered_max);
	uvenv_in_close(c, why);
}

/* Finds the connection to close when the read buffers would pass the global
 * bound: the one, other than those already closing, whose incomplete frame
 * began the longest ago; NULL when none has a partial frame.
 *
 * Why close the stalest partial frame, and not stop reading or close the
 * biggest: stopping reads (uv_read_stop until others drain) lets an
 * attacker who fills the bound with half-sent frames freeze every
 * connection, well-behaved ones included, until the frame deadline, and
 * then do it again; closing the biggest kills a well-behaved peer sending a
 * large frame (a snapshot) while attackers each hold a bit less. A peer that
 * behaves sends a frame at the speed of its link, so its partial frame is
 * young; one held to cost memory is old by construction. The oldest is
 * closed, its memory comes back at once, and the reader goes on. */
static struct uvenv_in *uvenv_in_stalest(struct uvenv *u)
{
	struct uvenv_in *best = NULL;

	for (struct uvenv_in *d = u->ins; d; d = d->next) {
		if (d->closing || !uvenv_in_partial(d))
			continue;
		if (!best || d->frame_ms < best->frame_ms)
			best = d;
	}
	return best;
}

/* Makes room for c's buffers to grow by more bytes within the global bound:
 * frees the plaintext buffers of connections with nothing partly read, the
 * longest idle first and no more than needed (they get a new one at their
 * next read), then closes the stalest partial frames, with a logged
 * reason. Returns false when c itself is the one to close (it then has
 * c->evicted set). c is never in the idle list here (uvenv_in_read). */
static bool uvenv_in_make_room(struct uvenv_in *c, size_t more)
{
	struct uvenv *u = c->u;

	assert(!c->idle);
	while (u->in_buffered + more > u->in_buffered_max && u->idle_first)
		uvenv_in_release(u->idle_first);
	while (u->in_buffered + more > u->in_buffered_max) {
		struct uvenv_in *v = uvenv_in_stalest(u);
		if (!v || v == c) {
			c->evicted = true;
			return false;
		}
		uvenv_in_close_over_bound(v);
	}
	return true;
}

/* Grows c's plaintext buffer so that a TLS record fits (a buffer is a read
 * chunk at first, then doubles, up to a whole frame and a chunk). Returns
 * false when it cannot: c->evicted (over the global bound) or out of
 * memory. */
static bool uvenv_in_grow(struct uvenv_in *c)
{
	size_t limit = UVENV_HEADER_BYTES + c->u->frame_max + UVENV_READ_CHUNK_BYTES;

	if (c->cap - c->len < UVENV_TLS_RECORD_BYTES && c->cap < limit) {
		size_t cap = c->cap * 2;
		uint8_t *b;
		if (cap < c->len + UVENV_READ_CHUNK_BYTES)
			cap = c->len + UVENV_READ_CHUNK_BYTES;
		if (cap > limit)
			cap = limit;
		if (!uvenv_in_make_room(c, cap - c->cap))
			return false;
		b = realloc(c->buf, cap);
		if (b) {
			c->u->in_buffered += cap - c->cap;
			c->buf = b;
			c->cap = cap;
		}
		assert(c->u->in_buffered <= c->u->in_buffered_max);
	}
	return c->buf != NULL && c->cap > c->len;
}

/* Every socket read lands in the env's one read buffer (libuv reads
 * synchronously into it and calls the read callback at once): the
 * ciphertext is fed to TLS there, and the plaintext goes to the
 * connection's own buffer. */
static void uvenv_in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct uvenv_in *c = h->data;

	*buf = uv_buf_init((char *)c->u->rbuf, UVENV_READ_CHUNK_BYTES);
}

bool uvenv_hello_parse(const uint8_t *p, size_t n, char from[LIMIT_ADDR_BYTES_MAX + 1],
		       char *why, size_t why_size)
{
	size_t alen = n - UVENV_MAGIC_BYTES;

	if (n < UVENV_MAGIC_BYTES || memcmp(p, UVENV_MAGIC, UVENV_MAGIC_BYTES) != 0) {
		snprintf(why, why_size, "bad hello: no CSW1 magic");
		return false;
	}
	if (alen == 0 || alen > LIMIT_ADDR_BYTES_MAX) {
		snprintf(why, why_size, "bad hello: address of %zu bytes, expected 1..%u",
			 alen, LIMIT_ADDR_BYTES_MAX);
		return false;
	}
	for (size_t i = 0; i < alen; i++) {
		uint8_t ch = p[UVENV_MAGIC_BYTES + i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
			snprintf(why, why_size, "bad hello: address not printable");
			return false;
		}
	}
	memcpy(from, p + UVENV_MAGIC_BYTES, alen);
	from[alen] = '\0';
	return true;
}

int uvenv_frame_next(const uint8_t *buf, size_t len, bool hello, size_t frame_max,
		     size_t *payload_len, char *why, size_t why_size)
{
	uint32_t n;

	if (len < UVENV_HEADER_BYTES)
		return 0;
	n = uvenv_read_be32(buf);
	if (!hello &&
	    (n <= UVENV_MAGIC_BYTES || n > UVENV_MAGIC_BYTES + LIMIT_ADDR_BYTES_MAX)) {
		snprintf(why, why_size,
			 "bad hello: first frame of %" PRIu32 " bytes, expected %u..%u",
			 n, UVENV_MAGIC_BYTES + 1,
			 UVENV_MAGIC_BYTES + LIMIT_ADDR_BYTES_MAX);
		return CS_ECORRUPT;
	}
	if (n == 0) {
		snprintf(why, why_size, "empty frame");
		return CS_ECORRUPT;
	}
	if (n > frame_max) {
		snprintf(why, why_size, "frame of %" PRIu32 " bytes over the limit %zu",
			 n, frame_max);
		return CS_ECORRUPT;
	}
	if (len - UVENV_HEADER_BYTES < n)
		return 0;
	*payload_len = n;
	return 1;
}

/* Delivers every whole frame in c's buffer; closes c on a bad one. */
static void uvenv_in_parse(struct uvenv_in *c)
{
	struct uvenv *u = c->u;
	char why[160];
	size_t off = 0;

	for (;;) {
		size_t n = 0;
		int rc = uvenv_frame_next(c->buf + off, c->len - off, c->hello,
					  u->frame_max, &n, why, sizeof why);
		const uint8_t *payload = c->buf + off + UVENV_HEADER_BYTES;

		if (rc < 0) {
			uvenv_in_close(c, why);
			return;
		}
		if (rc == 0)
			break;
		off += UVENV_HEADER_BYTES + n;
		if (!c->hello) {
			if (!uvenv_hello_parse(payload, n, c->from, why, sizeof why)) {
				uvenv_in_close(c, why);
				return;
			}
			c->hello = true;
		} else if (u->listening && u->recv_cb) {
			/* sender() answers for c */
			u->recv_active = true;
			u->recv_verified = c->verified;
			u->recv_peer = &c->peer;
			u->recv_conn = c->conn;
			u->recv_ip = c->ip;
			u->recv_cb(&u->env, c->from, payload, n, u->cb_data);
			u->recv_active = false;
			if (c->closing || u->closing)
				return;
		}
	}
	assert(off <= c->len);
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	if (off > 0)
		c->frame_ms = uv_now(u->loop); /* what is left began in this read */
	if (c->len == 0 && c->cap > UVENV_READ_KEEP_BYTES)
		uvenv_in_release(c);
}

static void uvenv_in_written(uv_write_t *req, int status)
{
	struct uvenv_frame *f = req->data;
	struct uvenv_in *c = req->handle->data;

	free(f);
	if (status < 0 && status != UV_ECANCELED && !c->closing) {
		char why[128];
		snprintf(why, sizeof why, "write: %s", uv_strerror(status));
		uvenv_in_close(c, why);
	}
}

/* tls_write, counted in u->tls_writes (each call seals its own records). */
static int uvenv_tls_write(struct uvenv *u, struct tls_conn *t, const uint8_t *p,
			   size_t n, char why[TLS_WHY_BYTES])
{
	u->tls_writes++;
	return tls_write(t, p, n, why);
}

/* Hands what tls has to write on s to libuv, in one write. Returns 0, or a
 * libuv error / CS_ENOMEM (nothing was handed). */
static int uvenv_tls_push(struct tls_conn *t, uv_stream_t *s, uv_write_cb cb)
{
	size_t n = tls_out_pending(t);
	struct uvenv_frame *f;
	uv_buf_t buf;
	int rv;

	if (n == 0)
		return 0;
	f = malloc(sizeof *f + n);
	if (!f)
		return CS_ENOMEM;
	f->next = NULL;
	f->req.data = f;
	f->size = tls_out_take(t, f->bytes, n);
	assert(f->size == n);
	buf = uv_buf_init((char *)f->bytes, (unsigned)f->size);
	rv = uv_write(&f->req, s, &buf, 1, cb);
	if (rv != 0)
		free(f);
	return rv;
}

static int64_t uvenv_wall_s(const struct uvenv *u)
{
	return u->wall_now_s ? u->wall_now_s(u->wall_data) : (int64_t)time(NULL);
}

/* Checks the certificate the peer of t showed: against the roots this node
 * trusts, or, with none, against a certificate of its chain whose digest is
 * the pinned one. Returns 0 and *out, CS_EAUTH with why (refused), or
 * CS_ENOENT with why (this node has neither roots nor pin: it can check
 * nothing). */
static int uvenv_peer_check(struct uvenv *u, const struct tls_conn *t,
			    struct pki_cert *out, char why[PKI_WHY_BYTES])
{
	uint8_t leaf[PKI_DER_BYTES_MAX], other[PKI_DER_BYTES_MAX];
	struct env_blob leaf_b = {leaf, 0}, other_b = {other, 0};
	int64_t now = uvenv_wall_s(u);

	memset(out, 0, sizeof *out);
	if (tls_peer_cert(t, 0, leaf, sizeof leaf, &leaf_b.len) != 0) {
		snprintf(why, PKI_WHY_BYTES, "no certificate");
		return u->root_count || u->pinned ? CS_EAUTH : CS_ENOENT;
	}
	if (u->root_count > 0)
		return uvenv_verify_peer(u, t, &leaf_b, now, out, why) ? CS_EAUTH : 0;
	if (!u->pinned) {
		snprintf(why, PKI_WHY_BYTES, "no trusted root");
		return CS_ENOENT;
	}
	for (size_t i = 1; i <= UVENV_CHAIN_MAX; i++) {
		uint8_t d[ENV_DIGEST_BYTES];
		if (tls_peer_cert(t, i, other, sizeof other, &other_b.len) != 0)
			break;
		pki_digest(other, other_b.len, d);
		if (memcmp(d, u->pin, sizeof d) == 0)
			return pki_verify(&leaf_b, &other_b, 1, now, out, why) ? CS_EAUTH
									       : 0;
	}
	snprintf(why, PKI_WHY_BYTES,
		 "no certificate of the peer's chain has the pinned root digest");
	return CS_EAUTH;
}

/* c's handshake completed: who is the client? Anyone without a certificate
 * that holds is all zero, and still heard (a joiner): the core decides what
 * such a sender may say. */
static void uvenv_in_identify(struct uvenv_in *c)
{
	struct uvenv *u = c->u;
	char why[PKI_WHY_BYTES];
	int rv = uvenv_peer_check(u, c->tls, &c->peer, why);

	c->verified = rv == 0 && c->peer.node_id != 0;
	if (c->verified)
		return;
	memset(&c->peer, 0, sizeof c->peer);
	if (rv == 0)
		snprintf(why, sizeof why, "not a node's certificate");
	uvenv_logf(u, rv == CS_EAUTH ? ENV_LOG_INFO : ENV_LOG_DEBUG,
		   "msg=\"peer certificate refused\" peer=%s why=\"%s\"", c->remote, why);
}

static void uvenv_in_read_now(struct uvenv_in *c, uv_stream_t *s, ssize_t nread,
			      const uv_buf_t *buf);

/* libuv's read callback: c leaves the idle list while it reads (its own
 * buffer is not one to free for room), and goes back if it is left with
 * an empty buffer. A closing c is left out (its memory goes at the close
 * callback). */
static void uvenv_in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct uvenv_in *c = s->data;

	if (c->closing)
		return;
	uvenv_in_idle_unlink(c);
	uvenv_in_read_now(c, s, nread, buf);
	uvenv_in_idle_link(c);
}

static void uvenv_in_read_now(struct uvenv_in *c, uv_stream_t *s, ssize_t nread,
			      const uv_buf_t *buf)
{
	struct uvenv *u = c->u;
	char why[TLS_WHY_BYTES];
	int rv;

	if (nread < 0) {
		if (nread == UV_EOF)
			uvenv_in_close(c, NULL);
		else {
			snprintf(why, sizeof why, "read: %s", uv_strerror((int)nread));
			uvenv_in_close(c, why);
		}
		return;
	}
	if (nread == 0)
		return; /* EAGAIN: nothing came, the connection stays idle */
	assert((size_t)nread <= UVENV_READ_CHUNK_BYTES);
	c->read_ms = uv_now(u->loop);
	if (!uvenv_in_make_room(c, (size_t)nread)) {
		uvenv_in_close_over_bound(c);
		return;
	}
	if (!uvenv_in_partial(c))
		c->frame_ms = uv_now(u->loop);
	if (tls_feed(c->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
		uvenv_in_close(c, "out of memory");
		return;
	}
	uvenv_in_count_cipher(c);
	if (!c->handshaken) {
		rv = tls_handshake(c->tls, why);
		if (uvenv_tls_push(c->tls, s, uvenv_in_written) != 0) {
			uvenv_in_close(c, "write failed");
			return;
		}
		if (rv < 0) {
			uvenv_in_close(c, why);
			return;
		}
		uvenv_in_count_cipher(c);
		if (rv == 0)
			return;
		c->handshaken = true;
		u->hs_done++;
		u->hs_done_ms += uv_now(u->loop) - c->accepted_ms;
		assert(c->handshaking);
		assert(u->handshakes > 0);
		u->handshakes--;
		c->handshaking = false;
		uvenv_accept_wake(u);
		uvenv_in_identify(c);
	}
	for (;;) {
		size_t n;
		if (!uvenv_in_grow(c)) {
			if (c->evicted)
				uvenv_in_close_over_bound(c);
			else
				uvenv_in_close(c, "out of memory");
			return;
		}
		rv = tls_read(c->tls, c->buf + c->len, c->cap - c->len, &n, why);
		if (rv == CS_ECLOSED) {
			uvenv_in_close(c, NULL);
			return;
		}
		if (rv != 0) {
			uvenv_in_close(c, why);
			return;
		}
		uvenv_in_count_cipher(c);
		if (n == 0)
			break;
		c->len += n;
		uvenv_in_parse(c);
		if (c->closing || u->closing)
			return;
	}
	if (c->len == 0 && c->cap > UVENV_READ_KEEP_BYTES)
		uvenv_in_release(c);
	if (uvenv_tls_push(c->tls, s, uvenv_in_written) != 0)
		uvenv_in_close(c, "write failed");
}

static void uvenv_in_start(struct uvenv_in *c);

static void uvenv_accept(uv_stream_t *server, int status)
{
	struct uvenv *u = server->data;
	struct uvenv_in *c;
	struct sockaddr_storage ss;
	int len = sizeof ss;

	if (u->closing)
		return;
	if (status < 0) {
		uvenv_logf(u, ENV_LOG_WARN, "msg=\"accept failed\" err=\"%s\"",
			   uv_strerror(status));
		return;
	}
	if (!uvenv_accept_room(u)) {
		/* not accepted: libuv keeps it and stops listening until
		 * uvenv_notify accepts again */
		u->accept_paused = true;
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		uvenv_logf(u, ENV_LOG_ERROR, "msg=\"accept: out of memory\"");
		return; /* the connection waits in the backlog */
	}
	c->u = u;
	c->conn = ++u->conn_next_id;
	c->accepted_ms = c->read_ms = uv_now(u->loop);
	uv_tcp_init(u->loop, &c->handle);
	c->handle.data = c;
	u->handles_live++;
	DLIST_PUSH(u->ins, c);
	u->in_count++;
	snprintf(c->remote, sizeof c->remote, "?");
	if (uvenv_conn_add(u, c) != 0) {
		uvenv_in_close(c, "out of memory");
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&c->handle) != 0) {
		uvenv_in_close(c, "accept failed");
		return;
	}
	if (uv_tcp_getpeername(&c->handle, (struct sockaddr *)&ss, &len) != 0) {
		/* unknown: remote "?", ip "" */
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
		uv_ip4_name(sin, c->ip, sizeof c->ip);
		snprintf(c->remote, sizeof c->remote, "%s:%u", c->ip,
			 ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
		uv_ip6_name(sin6, c->ip, sizeof c->ip);
		snprintf(c->remote, sizeof c->remote, "[%s]:%u", c->ip,
			 ntohs(sin6->sin6_port));
	}
	if (u->in_count > UVENV_CONNS_IN_MAX) {
		uvenv_in_close(c, "too many connections");
		return;
	}
	if (u->handshakes >= u->handshakes_max) {
		/* its turn comes when a handshake ends (said once a sweep,
		 * with the count) */
		c->waiting = true;
		DQUEUE_APPEND(u->wait_first, u->wait_last, c, wait_prev, wait_next);
		u->waiting++;
		u->accepts_held++;
		return;
	}
	uvenv_in_start(c);
}

/* c's handshake begins: its TLS, counted in u->handshakes, read. */
static void uvenv_in_start(struct uvenv_in *c)
{
	struct uvenv *u = c->u;

	if (tls_conn_new(u->tls_server, &c->tls) != 0) {
		uvenv_in_close(c, "out of memory");
		return;
	}
	c->handshaking = true;
	u->handshakes++;
	if (uv_read_start((uv_stream_t *)&c->handle, uvenv_in_alloc, uvenv_in_read) != 0)
		uvenv_in_close(c, "read_start failed");
}

/* Handshakes for the connections waiting, oldest first, while slots are
 * free. One that waited three quarters of the handshake timeout is closed
 * instead: its client (whose own timeout, the same by default, runs from
 * its connect) gives up about when its handshake would be done, and the
 * work would be for nothing (issue 18: such handshakes were a leader's
 * CPU spent on clients that had gone). */
static void uvenv_wait_start(struct uvenv *u)
{
	uint64_t now = uv_now(u->loop);

	while (u->wait_first && u->handshakes < u->handshakes_max && !u->closing) {
		struct uvenv_in *c = u->wait_first;
		uvenv_wait_unlink(c);
		if (now - c->accepted_ms >= u->handshake_timeout_ms / 4 * 3) {
			u->hs_ended++;
			uvenv_in_close(c, "waited too long for a TLS handshake");
			continue;
		}
		uvenv_in_start(c);
	}
}

/* ---------------------------------------------------------------- outgoing */

static struct uvenv_frame *uvenv_frame_new(const uint8_t *a, size_t a_len,
					   const uint8_t *b, size_t b_len)
{
	size_t n = a_len + b_len;
	struct uvenv_frame *f = malloc(sizeof *f + UVENV_HEADER_BYTES + n);

	if (!f)
		return NULL;
	f->next = NULL;
	f->size = UVENV_HEADER_BYTES + n;
	uvenv_write_be32(f->bytes, (uint32_t)n);
	if (a_len)
		memcpy(f->bytes + UVENV_HEADER_BYTES, a, a_len);
	if (b_len)
		memcpy(f->bytes + UVENV_HEADER_BYTES + a_len, b, b_len);
	f->req.data = f;
	return f;
}

static void uvenv_out_close_cb(uv_handle_t *h)
{
	struct uvenv_out *o = h->data;
	struct uvenv *u = o->u;

	tls_conn_free(o->tls);
	free(o->buf);
	free(o);
	uvenv_handle_gone(u);
}

/* The loop's idle phase: the notices queued so far, in order (one a
 * callback queues waits for the next turn). */
static void uvenv_notify(uv_idle_t *h)
{
	struct uvenv *u = h->data;
	size_t n = u->notice_count;

	uvenv_wait_start(u);
	if (u->accept_paused && !u->closing && uvenv_accept_room(u)) {
		u->accept_paused = false; /* set again if it is full again */
		uvenv_accept((uv_stream_t *)&u->listener, 0);
	}
	for (size_t i = 0; i < n && !u->closing; i++) {
		struct uvenv_notice ev = u->notices[i];
		if (u->listening && u->peer_cb)
			u->peer_cb(&u->env, ev.addr, ev.up, u->cb_data);
	}
	if (u->closing)
		return;
	if (n) {
		memmove(u->notices, u->notices + n,
			(u->notice_count - n) * sizeof *u->notices);
		u->notice_count -= n;
	}
	if (u->notice_count == 0 &&
	    !(u->wait_first && u->handshakes < u->handshakes_max) &&
	    !(u->accept_paused && uvenv_accept_room(u)))
		uv_idle_stop(h);
}

/* Queues the notice that the connection to addr came up or went down,
 * for uvenv_notify. Notices are hints (env.h): one that finds no memory
 * is not told (logged). */
static void uvenv_notice(struct uvenv *u, const char *addr, bool up)
{
	struct uvenv_notice *ev;

	if (!u->listening || !u->peer_cb || u->closing)
		return;
	if (u->notice_count == u->notice_cap &&
	    grow_array((void **)&u->notices, &u->notice_cap, u->notice_count + 1,
		       sizeof *u->notices) != 0) {
		uvenv_logf(u, ENV_LOG_WARN,
			   "msg=\"peer notice not told\" peer=%s "
			   "why=\"out of memory\"",
			   addr);
		return;
	}
	ev = &u->notices[u->notice_count++];
	snprintf(ev->addr, sizeof ev->addr, "%s", addr);
	ev->up = up;
	uv_idle_start(&u->notify, uvenv_notify);
}

static void uvenv_peer_backoff(struct uvenv_peer *p);

/* The connection o failed or ended: close it; drop what it had in flight;
 * tell the core when it had been up; redial later when frames wait. */
static void uvenv_out_fail(struct uvenv_out *o, const char *why)
{
	struct uvenv *u = o->u;
	struct uvenv_peer *p = o->peer;
	bool was_up = o->up;

	if (o->closing)
		return;
	o->closing = true;
	o->up = false;
	o->peer = NULL;
	uv_close((uv_handle_t *)&o->handle, uvenv_out_close_cb);
	if (!p)
		return;
	assert(p->out == o);
	p->out = NULL;
	uvenv_logf(u, was_up ? ENV_LOG_INFO : ENV_LOG_DEBUG,
		   "msg=\"%s\" peer=%s err=\"%s\"",
		   was_up ? "connection lost" : "connect failed", p->addr, why);
	if (p->head || p->kept)
		uvenv_peer_backoff(p);
	/* a connect that failed is told too: a node dialling a dead
	 * manager learns it at once, not from a timeout of its own */
	uvenv_notice(u, p->addr, false);
}

/* The server of o showed a certificate this node does not trust: nothing
 * was written on o but the handshake. Close it, drop what waits for that
 * peer (it is not who the sender meant), say why once per outage, and
 * redial only after the backoff. */
static void uvenv_out_refuse(struct uvenv_out *o, const char *why)
{
	struct uvenv *u = o->u;
	struct uvenv_peer *p = o->peer;
	size_t dropped = 0;

	assert(p != NULL);
	assert(!o->up);
	while (p->head) {
		struct uvenv_frame *f = p->head;
		p->head = f->next;
		assert(p->pending_bytes >= f->size);
		p->pending_bytes -= f->size;
		free(f);
		dropped++;
	}
	p->tail = NULL;
	assert(p->pending_bytes == 0);
	uvenv_logf(u, p->refused_told ? ENV_LOG_DEBUG : ENV_LOG_WARN,
		   "msg=\"peer certificate refused\" peer=%s why=\"%s\" dropped=%zu",
		   p->addr, why, dropped);
	p->refused_told = true;
	uvenv_out_fail(o, "peer certificate refused");
	uvenv_peer_backoff(p);
}

static void uvenv_out_written(uv_write_t *req, int status)
{
	struct uvenv_frame *f = req->data;
	struct uvenv_out *o = req->handle->data;

	free(f);
	if (status < 0 && status != UV_ECANCELED)
		uvenv_out_fail(o, uv_strerror(status));
}

/* Encrypts p's queued frames and hands them to libuv in one write (p is
 * connected). Small frames share records: they are staged up to a record's
 * plaintext, so a burst of Raft messages costs a few records, not one
 * each. What libuv refuses is dropped: the read side notices a dead
 * socket. */
static void uvenv_peer_flush(struct uvenv_peer *p)
{
	struct uvenv_out *o = p->out;
	uint8_t stage[UVENV_TLS_RECORD_BYTES];
	size_t staged = 0;
	char why[TLS_WHY_BYTES];
	int rv = 0;

	assert(o != NULL);
	assert(o->up);
	while (p->head) {
		struct uvenv_frame *f = p->head;

		p->head = f->next;
		if (!p->head)
			p->tail = NULL;
		assert(p->pending_bytes >= f->size);
		p->pending_bytes -= f->size;
		if (staged + f->size > sizeof stage && staged > 0) {
			rv |= uvenv_tls_write(p->u, o->tls, stage, staged, why);
			staged = 0;
		}
		if (f->size <= sizeof stage) {
			memcpy(stage + staged, f->bytes, f->size);
			staged += f->size;
		} else {
			rv |= uvenv_tls_write(p->u, o->tls, f->bytes, f->size, why);
		}
		free(f);
	}
	if (staged > 0)
		rv |= uvenv_tls_write(p->u, o->tls, stage, staged, why);
	if (rv != 0) {
		/* a memory BIO refuses only without memory: frames are lost,
		 * as on a broken socket */
		uvenv_logf(p->u, ENV_LOG_ERROR,
			   "msg=\"dropped frames\" peer=%s err=\"%s\"", p->addr, why);
	}
	assert(p->pending_bytes == 0);
	(void)uvenv_tls_push(o->tls, (uv_stream_t *)&o->handle, uvenv_out_written);
}

static void uvenv_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct uvenv_out *o = h->data;

	*buf = uv_buf_init((char *)o->u->rbuf, UVENV_READ_CHUNK_BYTES);
}

/* o's handshake completed: check the server, then say hello and send. */
static void uvenv_out_handshaken(struct uvenv_out *o)
{
	struct uvenv *u = o->u;
	struct uvenv_peer *p = o->peer;
	struct pki_cert pc;
	char why[PKI_WHY_BYTES];
	uint8_t hello[UVENV_HEADER_BYTES + UVENV_MAGIC_BYTES + LIMIT_ADDR_BYTES_MAX];
	size_t alen = strlen(u->addr);
	int rv = uvenv_peer_check(u, o->tls, &pc, why);

	if (rv == 0 && pc.node_id == 0) {
		snprintf(why, sizeof why, "not a node's certificate");
		rv = CS_EAUTH;
	}
	if (rv == CS_EAUTH) {
		uvenv_out_refuse(o, why);
		return;
	}
	/* CS_ENOENT: no roots nor pin, this node checks no one */
	o->verified = rv == 0;
	if (o->verified)
		o->shown = pc;
	assert(alen <= LIMIT_ADDR_BYTES_MAX);
	uvenv_write_be32(hello, (uint32_t)(UVENV_MAGIC_BYTES + alen));
	memcpy(hello + UVENV_HEADER_BYTES, UVENV_MAGIC, UVENV_MAGIC_BYTES);
	memcpy(hello + UVENV_HEADER_BYTES + UVENV_MAGIC_BYTES, u->addr, alen);
	if (tls_write(o->tls, hello, UVENV_HEADER_BYTES + UVENV_MAGIC_BYTES + alen,
		      why) != 0) {
		uvenv_out_fail(o, why);
		return;
	}
	o->up = true;
	p->backoff_ms = 0;
	p->drops_told = false;
	p->refused_told = false;
	uvenv_peer_flush(p);
	uvenv_logf(u, ENV_LOG_DEBUG, "msg=\"connected\" peer=%s", p->addr);
	uvenv_notice(u, p->addr, true);
}

/* Delivers the whole frames in o's buffer. Returns false when o (or u) was
 * closed meanwhile, or a frame was bad (o then failed). */
static bool uvenv_out_parse(struct uvenv_out *o)
{
	struct uvenv *u = o->u;
	size_t off = 0;

	while (o->len - off >= UVENV_HEADER_BYTES) {
		uint32_t n = uvenv_read_be32(o->buf + off);
		if (n == 0 || n > u->frame_max) {
			uvenv_out_fail(o, "bad frame from the server");
			return false;
		}
		if (o->len - off - UVENV_HEADER_BYTES < n)
			break;
		if (u->listening && u->recv_cb) {
			u->recv_active = true;
			u->recv_verified = o->verified;
			u->recv_peer = &o->shown;
			u->recv_conn = 0; /* no reply to a reply */
			u->recv_ip = "";
			u->recv_cb(&u->env, o->peer ? o->peer->addr : "",
				   o->buf + off + UVENV_HEADER_BYTES, n, u->cb_data);
			u->recv_active = false;
			if (o->closing || u->closing)
				return false;
		}
		off += UVENV_HEADER_BYTES + n;
	}
	memmove(o->buf, o->buf + off, o->len - off);
	o->len -= off;
	return true;
}

static void uvenv_out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct uvenv_out *o = s->data;
	struct uvenv *u = o->u;
	char why[TLS_WHY_BYTES];
	size_t n;
	int rv;

	if (o->closing || !o->peer)
		return;
	if (nread < 0) {
		uvenv_out_fail(o, nread == UV_EOF ? "closed by peer"
						  : uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	if (tls_feed(o->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
		uvenv_out_fail(o, "out of memory");
		return;
	}
	if (!o->up) {
		rv = tls_handshake(o->tls, why);
		if (uvenv_tls_push(o->tls, s, uvenv_out_written) != 0) {
			uvenv_out_fail(o, "write failed");
			return;
		}
		if (rv < 0) {
			uvenv_out_fail(o, why);
			return;
		}
		if (rv == 0)
			return;
		uvenv_out_handshaken(o);
		if (o->closing || !o->up)
			return;
	}
	/* frames the server sent back (env reply): delivered from the address
	 * dialled, sender() what its certificate proved */
	for (;;) {
		if (o->cap - o->len < UVENV_TLS_RECORD_BYTES &&
		    o->cap < UVENV_HEADER_BYTES + u->frame_max + UVENV_TLS_RECORD_BYTES) {
			size_t cap = o->cap ? o->cap * 2 : UVENV_TLS_RECORD_BYTES * 2;
			uint8_t *b;
			if (cap >
			    UVENV_HEADER_BYTES + u->frame_max + UVENV_TLS_RECORD_BYTES)
				cap = UVENV_HEADER_BYTES + u->frame_max +
				      UVENV_TLS_RECORD_BYTES;
			b = realloc(o->buf, cap);
			if (!b) {
				uvenv_out_fail(o, "out of memory");
				return;
			}
			o->buf = b;
			o->cap = cap;
		}
		rv = tls_read(o->tls, o->buf + o->len, o->cap - o->len, &n, why);
		if (rv != 0) {
			uvenv_out_fail(o, rv == CS_ECLOSED ? "closed by peer" : why);
			return;
		}
		if (n == 0)
			break;
		o->len += n;
		if (!uvenv_out_parse(o))
			return;
	}
}

static void uvenv_out_connected(uv_connect_t *req, int status)
{
	struct uvenv_out *o = req->data;
	struct uvenv_peer *p = o->peer;
	struct uvenv *u = o->u;
	char why[TLS_WHY_BYTES];

	if (o->closing || !p)
		return;
	if (status < 0) {
		uvenv_out_fail(o, uv_strerror(status));
		return;
	}
	if (tls_conn_new(u->tls_client, &o->tls) != 0) {
		uvenv_out_fail(o, "out of memory");
		return;
	}
	if (tls_handshake(o->tls, why) < 0) {
		uvenv_out_fail(o, why);
		return;
	}
	if (uvenv_tls_push(o->tls, (uv_stream_t *)&o->handle, uvenv_out_written) != 0) {
		uvenv_out_fail(o, "write failed");
		return;
	}
	if (uv_read_start((uv_stream_t *)&o->handle, uvenv_out_alloc, uvenv_out_read)) {
		uvenv_out_fail(o, "read_start failed");
		return;
	}
}

/* Binds o's socket to the address of cfg dial_from, its port left to
 * the connect (IP_BIND_ADDRESS_NO_PORT: chosen for the four-tuple, not
 * reserved for the address alone; a kernel without it reserves one at
 * the bind). Returns 0 or libuv's error. */
static int uvenv_out_bind(struct uvenv_out *o)
{
	uv_os_fd_t fd;
	int one = 1;

	if (uv_fileno((const uv_handle_t *)&o->handle, &fd) == 0)
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
				 sizeof one);
	return uv_tcp_bind(&o->handle, (const struct sockaddr *)&o->u->dial_sa, 0);
}

/* Starts a connection to p. Failure to even start counts as a failed
 * connect (backoff). */
static void uvenv_peer_dial(struct uvenv_peer *p)
{
	struct uvenv *u = p->u;
	struct uvenv_out *o;
	int rv;

	assert(p->out == NULL);
	assert(!p->backoff_armed);
	o = calloc(1, sizeof *o);
	if (!o) {
		uvenv_peer_backoff(p);
		return;
	}
	o->u = u;
	o->peer = p;
	o->dialed_ms = uv_now(u->loop);
	if (u->dial_from) {
		/* the socket now, to be bound before the connect */
		rv = uv_tcp_init_ex(u->loop, &o->handle, AF_INET);
		if (rv != 0) {
			free(o);
			uvenv_logf(u, ENV_LOG_DEBUG,
				   "msg=\"connect failed\" peer=%s err=\"%s\"", p->addr,
				   uv_strerror(rv));
			uvenv_peer_backoff(p);
			return;
		}
	} else {
		uv_tcp_init(u->loop, &o->handle);
	}
	o->handle.data = o;
	o->connect.data = o;
	u->handles_live++;
	p->out = o;
	uv_tcp_nodelay(&o->handle, 1);
	rv = u->dial_from ? uvenv_out_bind(o) : 0;
	if (rv == 0)
		rv = uv_tcp_connect(&o->connect, &o->handle,
				    (const struct sockaddr *)&p->sa, uvenv_out_connected);
	if (rv != 0) {
		/* no peer_cb: the connection was never up, and we are inside
		 * send or a timer of ours */
		o->closing = true;
		o->peer = NULL;
		p->out = NULL;
		uv_close((uv_handle_t *)&o->handle, uvenv_out_close_cb);
		uvenv_logf(u, ENV_LOG_DEBUG, "msg=\"connect failed\" peer=%s err=\"%s\"",
			   p->addr, uv_strerror(rv));
		uvenv_peer_backoff(p);
	}
}

static void uvenv_peer_redial(uv_timer_t *h)
{
	struct uvenv_peer *p = h->data;

	p->backoff_armed = false;
	if ((p->head || p->kept) && !p->out)
		uvenv_peer_dial(p);
}

/* Arms p's redial: 100 ms doubling to 5 s, each ±25%. */
static void uvenv_peer_backoff(struct uvenv_peer *p)
{
	struct uvenv *u = p->u;
	ms_t base, delay;
	uint64_t r;

	if (p->backoff_armed || u->closing)
		return;
	base = p->backoff_ms ? p->backoff_ms : UVENV_BACKOFF_MIN_MS;
	p->backoff_ms = base * 2 > UVENV_BACKOFF_MAX_MS ? UVENV_BACKOFF_MAX_MS : base * 2;
	r = u->env.ops->random_u64(&u->env);
	delay = base - base / 4 + r % (base / 2 + 1);
	assert(delay >= base * 3 / 4);
	assert(delay <= base + base / 4 + 1);
	p->backoff_armed = true;
	uv_timer_start(&p->backoff, uvenv_peer_redial, delay, 0);
}

/* ---------------------------------------------------------------- peers */

static struct uvenv_peer *uvenv_peer_find(const struct uvenv *u, const char *addr)
{
	struct uvenv_peer *p;

	if (!u->bucket_count)
		return NULL;
	p = u->buckets[hash_str(addr) & (u->bucket_count - 1)];
	while (p && strcmp(p->addr, addr) != 0)
		p = p->next_in_bucket;
	return p;
}

static int uvenv_peer_grow(struct uvenv *u)
{
	size_t count = u->bucket_count ? u->bucket_count * 2 : 64;
	struct uvenv_peer **b = calloc(count, sizeof *b);

	if (!b)
		return CS_ENOMEM;
	for (size_t i = 0; i < u->bucket_count; i++) {
		struct uvenv_peer *p = u->buckets[i];
		while (p) {
			struct uvenv_peer *next = p->next_in_bucket;
			size_t j = hash_str(p->addr) & (count - 1);
			p->next_in_bucket = b[j];
			b[j] = p;
			p = next;
		}
	}
	free(u->buckets);
	u->buckets = b;
	u->bucket_count = count;
	return 0;
}

/* Returns the peer for addr (made on first use), or NULL without memory. */
static struct uvenv_peer *uvenv_peer_get(struct uvenv *u, const char *addr,
					 const struct sockaddr_in *sa)
{
	struct uvenv_peer *p = uvenv_peer_find(u, addr);
	size_t j;

	if (p)
		return p;
	if (u->peer_count >= u->bucket_count && uvenv_peer_grow(u) != 0)
		return NULL;
	p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->u = u;
	p->sa = *sa;
	snprintf(p->addr, sizeof p->addr, "%s", addr);
	uv_timer_init(u->loop, &p->backoff);
	p->backoff.data = p;
	u->handles_live++;
	j = hash_str(addr) & (u->bucket_count - 1);
	p->next_in_bucket = u->buckets[j];
	u->buckets[j] = p;
	u->peer_count++;
	assert(uvenv_peer_find(u, addr) == p);
	return p;
}

static void uvenv_peer_close_cb(uv_handle_t *h)
{
	struct uvenv_peer *p = h->data;
	struct uvenv *u = p->u;

	free(p);
	uvenv_handle_gone(u);
}

int uvenv_keep_peers(struct uvenv *u, const char *const *addrs, size_t n)
{
	bool same = n == u->kept_count;
	int rv = 0;

	assert(addrs != NULL || n == 0);
	if (u->closing)
		return CS_ECLOSED;
	if (n > LIMIT_MANAGERS_MAX)
		return CS_ELIMIT;
	for (size_t j = 0; j < n && same; j++)
		same = addrs[j] && strcmp(addrs[j], u->kept[j]) == 0;
	if (!same) {
		/* the set changed (a manager joined or left): the peers left
		 * out go back to the usual rules (forgotten when unused) */
		for (size_t i = 0; i < u->kept_count; i++) {
			struct uvenv_peer *p = uvenv_peer_find(u, u->kept[i]);
			if (p)
				p->kept = false;
		}
		u->kept_count = 0;
	}
	for (size_t j = 0; j < n; j++) {
		struct sockaddr_in sa;
		struct uvenv_peer *p;

		if (!addrs[j] || strlen(addrs[j]) > LIMIT_ADDR_BYTES_MAX ||
		    uvenv_parse_addr(addrs[j], &sa, NULL, 0) != 0 || sa.sin_port == 0) {
			rv = CS_EINVAL;
			continue;
		}
		if (!same)
			snprintf(u->kept[u->kept_count++], sizeof u->kept[0], "%s",
				 addrs[j]);
		if (strcmp(addrs[j], u->addr) == 0)
			continue; /* itself */
		p = uvenv_peer_get(u, addrs[j], &sa);
		if (!p) {
			rv = CS_ENOMEM;
			continue;
		}
		p->kept = true;
		if (!p->out && !p->backoff_armed)
			uvenv_peer_dial(p);
		assert(p->out || p->backoff_armed);
	}
	/* (with an address skipped, kept_count < n: the next call walks
	 * again, and clears what this one kept) */
	assert(u->kept_count <= LIMIT_MANAGERS_MAX);
	return rv;
}

/* ---------------------------------------------------------------- sweep */

/* How often the sweep runs: every second, or often enough for short limits
 * (tests). */
static uint64_t uvenv_sweep_ms(const struct uvenv *u)
{
	uint64_t ms = 1000;
	if (u->hello_timeout_ms / 2 < ms)
		ms = u->hello_timeout_ms / 2;
	if (u->frame_deadline_ms / 2 < ms)
		ms = u->frame_deadline_ms / 2;
	if (u->frame_ttl_ms / 2 < ms)
		ms = u->frame_ttl_ms / 2;
	if (u->idle_timeout_ms / 2 < ms)
		ms = u->idle_timeout_ms / 2;
	if (u->peer_idle_ms / 2 < ms)
		ms = u->peer_idle_ms / 2;
	if (u->handshake_timeout_ms / 2 < ms)
		ms = u->handshake_timeout_ms / 2;
	return ms ? ms : 1;
}

/* Drops p's queued frames older than the time to live (the oldest are at
 * the head); logs how many. */
static void uvenv_peer_expire(struct uvenv_peer *p, uint64_t now)
{
	struct uvenv *u = p->u;
	size_t dropped = 0;

	while (p->head && now - p->head->queued_ms >= u->frame_ttl_ms) {
		struct uvenv_frame *f = p->head;
		p->head = f->next;
		if (!p->head)
			p->tail = NULL;
		assert(p->pending_bytes >= f->size);
		p->pending_bytes -= f->size;
		free(f);
		dropped++;
	}
	if (dropped)
		uvenv_logf(u, p->drops_told ? ENV_LOG_DEBUG : ENV_LOG_INFO,
			   "msg=\"dropped frames queued too long\" peer=%s frames=%zu "
			   "ttl_ms=%" PRIu64 " connected=%s",
			   p->addr, dropped, u->frame_ttl_ms, p->out ? "dialing" : "no");
	p->drops_told |= dropped > 0; /* once per outage at info, then debug */
}

/* Issue 18: a leader holds a connection per agent (10,000), and a walk of
 * them all each second was 13% of its CPU while it created 100,000 tasks.
 * Only connections accepted within the handshake and hello limits (and a
 * sweep) can reach those two; they are the head of the list, which is in
 * accept order, newest first. The others can reach only the frame deadline
 * and the idle limit, which are looked at every sweep_full-th sweep: about
 * an eighth of the shorter of the two apart (every sweep when short). */
static uint64_t uvenv_sweep_full(const struct uvenv *u)
{
	uint64_t limit = u->frame_deadline_ms < u->idle_timeout_ms ? u->frame_deadline_ms
								   : u->idle_timeout_ms;
	uint64_t n = limit / (8 * uvenv_sweep_ms(u));
	return n ? n : 1;
}

static void uvenv_sweep(uv_timer_t *h)
{
	struct uvenv *u = h->data;
	uint64_t now = uv_now(u->loop);
	struct uvenv_in *c = u->ins;
	bool full = u->sweeps++ % uvenv_sweep_full(u) == 0;
	uint64_t young =
		(u->handshake_timeout_ms > u->hello_timeout_ms ? u->handshake_timeout_ms
							       : u->hello_timeout_ms) +
		2 * uvenv_sweep_ms(u);

	if (u->accepts_held) {
		uvenv_logf(
			u, ENV_LOG_WARN,
			"msg=\"connections waited: too many TLS handshakes in progress\" "
			"times=%zu waiting=%zu handshakes_max=%zu done=%zu done_ms_avg=%" PRIu64
			" ended_undone=%zu",
			u->accepts_held, u->waiting, u->handshakes_max, u->hs_done,
			u->hs_done ? u->hs_done_ms / u->hs_done : 0, u->hs_ended);
		u->accepts_held = 0;
	}
	u->hs_done = u->hs_ended = 0;
	u->hs_done_ms = 0;
	while (c) {
		struct uvenv_in *next = c->next;
		if (!full && now - c->accepted_ms > young)
			break; /* the rest are older: handshaken and heard */
		if (!c->handshaken && now - c->accepted_ms >= u->handshake_timeout_ms) {
			char why[96];
			snprintf(why, sizeof why,
				 "no TLS handshake within %" PRIu64 " ms",
				 u->handshake_timeout_ms);
			uvenv_in_close(c, why);
		} else if (!c->hello && now - c->accepted_ms >= u->hello_timeout_ms) {
			char why[96];
			snprintf(why, sizeof why, "no hello within %" PRIu64 " ms",
				 u->hello_timeout_ms);
			uvenv_in_close(c, why);
		} else if (uvenv_in_partial(c) &&
			   now - c->frame_ms >= u->frame_deadline_ms) {
			char why[128];
			snprintf(why, sizeof why,
				 "frame not complete within %" PRIu64
				 " ms (%zu bytes read)",
				 u->frame_deadline_ms, c->len);
			uvenv_in_close(c, why);
		} else if (c->hello && now - c->read_ms >= u->idle_timeout_ms) {
			char why[96];
			snprintf(why, sizeof why, "idle for %" PRIu64 " ms",
				 u->idle_timeout_ms);
			uvenv_in_close(c, why);
		}
		c = next;
	}
	for (size_t i = 0; i < u->bucket_count; i++) {
		struct uvenv_peer **pp = &u->buckets[i];
		while (*pp) {
			struct uvenv_peer *p = *pp;
			if (p->out && !p->out->up && !p->out->closing &&
			    now - p->out->dialed_ms >= u->handshake_timeout_ms) {
				char why[96];
				snprintf(why, sizeof why,
					 "no TLS handshake within %" PRIu64 " ms",
					 u->handshake_timeout_ms);
				uvenv_out_fail(p->out, why);
			}
			if (p->head)
				uvenv_peer_expire(p, now);
			if (p->out || p->head || p->backoff_armed || p->kept ||
			    now - p->sent_ms < u->peer_idle_ms) {
				pp = &p->next_in_bucket;
				continue;
			}
			/* nothing to it, and nothing for a while: forget it */
			*pp = p->next_in_bucket;
			u->peer_count--;
			uv_close((uv_handle_t *)&p->backoff, uvenv_peer_close_cb);
		}
	}
}

size_t uvenv_in_buffered_bytes(const struct uvenv *u)
{
	return u->in_buffered;
}

size_t uvenv_in_count(const struct uvenv *u)
{
	return u->in_count;
}

size_t uvenv_in_waiting(const struct uvenv *u)
{
	return u->waiting;
}

size_t uvenv_peer_count(const struct uvenv *u)
{
	return u->peer_count;
}

uint64_t uvenv_tls_writes(const struct uvenv *u)
{
	return u->tls_writes;
}

/* ---------------------------------------------------------------- transport */

static const char *uvenv_self_addr(struct env *env)
{
	return uvenv_of(env)->addr;
}

static int uvenv_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
			void *data)
{
	struct uvenv *u = uvenv_of(env);

	u->recv_cb = recv_cb;
	u->peer_cb = peer_cb;
	u->cb_data = data;
	u->listening = true;
	return 0;
}

/* The loop is about to wait: the frames the turn queued for connected
 * peers go out, each peer's in one write (a burst of Raft messages and
 * answers shares TLS records and syscalls instead of one of each per
 * frame). Runs after the turn's timers and I/O callbacks alike. */
static void uvenv_corked(uv_prepare_t *h)
{
	struct uvenv *u = h->data;

	uv_prepare_stop(h);
	u->corked = false;
	for (size_t i = 0; i < u->bucket_count; i++)
		for (struct uvenv_peer *p = u->buckets[i]; p; p = p->next_in_bucket)
			if (p->head && p->out && p->out->up)
				uvenv_peer_flush(p);
}

static int uvenv_send(struct env *env, const char *addr, const uint8_t *buf, size_t len)
{
	struct uvenv *u = uvenv_of(env);
	struct sockaddr_in sa;
	struct uvenv_peer *p;
	struct uvenv_frame *f;
	size_t queued;

	assert(buf != NULL || len == 0);
	if (u->closing)
		return CS_ECLOSED;
	if (len > u->frame_max)
		return CS_ELIMIT;
	if (len == 0)
		return CS_EINVAL; /* a zero length is not a frame on the wire */
	if (!addr || uvenv_parse_addr(addr, &sa, NULL, 0) != 0 || sa.sin_port == 0)
		return CS_EINVAL;
	p = uvenv_peer_get(u, addr, &sa);
	if (!p)
		return CS_ENOMEM;
	p->sent_ms = uv_now(u->loop);
	queued = p->pending_bytes;
	if (p->out && p->out->up)
		queued += uv_stream_get_write_queue_size((uv_stream_t *)&p->out->handle);
	if (queued > 0 && queued + UVENV_HEADER_BYTES + len > u->peer_queue_bytes_max)
		return CS_EAGAIN;
	f = uvenv_frame_new(buf, len, NULL, 0);
	if (!f)
		return CS_ENOMEM;
	f->queued_ms = uv_now(u->loop);
	if (p->tail)
		p->tail->next = f;
	else
		p->head = f;
	p->tail = f;
	p->pending_bytes += f->size;
	if (p->out && p->out->up) {
		if (!u->corked) {
			u->corked = true;
			uv_prepare_start(&u->cork, uvenv_corked);
		}
	} else if (!p->out && !p->backoff_armed) {
		uvenv_peer_dial(p);
	}
	return 0;
}

/* ---------------------------------------------------------------- storage */

/* A name is [A-Za-z0-9_-.], not starting with '.', 1..63 bytes. */
static bool uvenv_db_name_ok(const char *name)
{
	size_t n = 0;

	if (!name || name[0] == '.' || name[0] == '\0')
		return false;
	for (; name[n]; n++) {
		char ch = name[n];
		if (!isalnum((unsigned char)ch) && ch != '_' && ch != '-' && ch != '.')
			return false;
	}
	return n <= LIMIT_NAME_BYTES_MAX;
}

static int uvenv_storage_fail(struct uvenv *u, sqlite3 *db, const char *path,
			      const char *what)
{
	snprintf(u->storage_error, sizeof u->storage_error, "%s: %s", path, what);
	uvenv_logf(u, ENV_LOG_ERROR, "msg=\"cannot open storage\" file=%s err=\"%s\"",
		   path, what);
	if (db)
		sqlite3_close_v2(db);
	return CS_ESTORAGE;
}

/* Checks an existing database file without writing to it: the header, then
 * PRAGMA quick_check on a read-only connection. Returns 0 or CS_ESTORAGE;
 * *corrupt (when not NULL) says whether the file's content is at fault
 * (not a database, malformed, fails its check), not the disk or the
 * permissions. */
static int uvenv_db_check_why(struct uvenv *u, const char *path, bool *corrupt);

/* Issue 19: the databases a node can start without. The agent's task
 * database is its own record of what the managers gave it and what it saw
 * run: the managers hold the tasks, Docker the containers (with their
 * labels), and the node's certificate its id. A corrupt one is set aside
 * (NAME.db.corrupt, its -wal/-shm/-journal beside, replacing an older set:
 * evidence, never read again) and the agent starts clean, adopting or
 * removing its containers by their labels. The Raft log (a manager's vote
 * and acknowledgements) and swarmd.db (the node's identity) are not: a
 * corrupt one refuses the start (exit 1). */
static bool uvenv_db_disposable(const char *name)
{
	return strcmp(name, "agent") == 0;
}

/* Sets the corrupt database at path aside (see uvenv_db_disposable).
 * Returns 0 or CS_ESTORAGE (logged). */
static int uvenv_db_set_aside(struct uvenv *u, const char *path)
{
	static const char *const side[] = {"", "-wal", "-shm", "-journal"};
	char from[512], to[512];

	for (size_t i = 0; i < sizeof side / sizeof side[0]; i++) {
		int n = snprintf(from, sizeof from, "%s%s", path, side[i]);
		int m = snprintf(to, sizeof to, "%s%s.corrupt", path, side[i]);
		if (n < 0 || (size_t)n >= sizeof from || m < 0 || (size_t)m >= sizeof to)
			return uvenv_storage_fail(u, NULL, path, "path too long");
		if (rename(from, to) != 0 && errno != ENOENT)
			return uvenv_storage_fail(u, NULL, from, strerror(errno));
	}
	uvenv_logf(u, ENV_LOG_ERROR,
		   "msg=\"corrupt database set aside: starting it clean\" file=%s"
		   " aside=%s.corrupt",
		   path, path);
	u->storage_error[0] = '\0';
	return 0;
}

static int uvenv_db_check_why(struct uvenv *u, const char *path, bool *corrupt)
{
	static const char header[16] = "SQLite format 3";
	char got[16];
	char what[UVENV_MESSAGE_BYTES / 2];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return uvenv_storage_fail(u, NULL, path, strerror(errno));
	}
	n = read(fd, got, sizeof got);
	close(fd);
	if (n == 0)
		return 0; /* empty: sqlite makes a database of it */
	if (corrupt)
		*corrupt = true; /* unless the failure below says otherwise */
	if (n != (ssize_t)sizeof got || memcmp(got, header, sizeof header) != 0)
		return uvenv_storage_fail(u, NULL, path,
					  "file is not a database (bad header)");
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		if (corrupt)
			*corrupt = (rc & 0xff) == SQLITE_CORRUPT ||
				   (rc & 0xff) == SQLITE_NOTADB;
		return uvenv_storage_fail(u, db, path,
					  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	}
	sqlite3_busy_timeout(db, UVENV_BUSY_TIMEOUT_MS);
	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int code = sqlite3_errcode(db) & 0xff;
		if (corrupt)
			*corrupt = code != SQLITE_IOERR && code != SQLITE_NOMEM &&
				   code != SQLITE_BUSY && code != SQLITE_CANTOPEN &&
				   code != SQLITE_PERM;
		snprintf(what, sizeof what, "%s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return uvenv_storage_fail(u, db, path, what);
	}
	snprintf(what, sizeof what, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (strcmp(what, "ok") != 0)
		return uvenv_storage_fail(u, db, path, what);
	sqlite3_close_v2(db);
	return 0;
}

static int uvenv_storage_open(struct env *env, const char *name, struct sqlite3 **out)
{
	struct uvenv *u = uvenv_of(env);
	struct uvenv_db *d;
	sqlite3 *db = NULL;
	char *path;
	char *msg = NULL;
	size_t path_size;
	int rc;

	assert(out != NULL);
	if (!uvenv_db_name_ok(name))
		return uvenv_storage_fail(
			u, NULL, name ? name : "(null)",
			"bad database name: expected [A-Za-z0-9_.-]{1,63}");
	for (d = u->dbs; d; d = d->next) {
		if (strcmp(d->name, name) == 0) {
			*out = d->db;
			return 0;
		}
	}
	path_size = strlen(u->state_dir) + strlen(name) + 5;
	path = malloc(path_size);
	d = calloc(1, sizeof *d);
	if (!path || !d) {
		free(path);
		free(d);
		return uvenv_storage_fail(u, NULL, name, "out of memory");
	}
	snprintf(path, path_size, "%s/%s.db", u->state_dir, name);
	{
		bool corrupt = false;
		if (uvenv_db_check_why(u, path, &corrupt) != 0 &&
		    (!corrupt || !uvenv_db_disposable(name) ||
		     uvenv_db_set_aside(u, path)))
			goto fail;
	}
	/* 0600 whatever the umask: made here, or set on an older file;
	 * sqlite gives its -wal and -shm files the database's mode */
	{
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || fchmod(fd, 0600) != 0) {
			uvenv_storage_fail(u, NULL, path, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		close(fd);
		static const char *const side[] = {"-wal", "-shm", "-journal"};
		char *p2 = malloc(path_size + 8);
		int bad = p2 ? 0 : ENOMEM;
		for (size_t i = 0; i < 3 && !bad; i++) {
			snprintf(p2, path_size + 8, "%s%s", path, side[i]);
			if (chmod(p2, 0600) != 0 && errno != ENOENT)
				bad = errno;
		}
		free(p2);
		if (bad) {
			uvenv_storage_fail(u, NULL, path, strerror(bad));
			goto fail;
		}
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		uvenv_storage_fail(u, db, path,
				   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(db, UVENV_BUSY_TIMEOUT_MS);
	/* one connection per file, this process's alone: exclusive locking
	 * spares a lock and unlock per transaction (and a second daemon on
	 * the same state directory finds it busy) */
	rc = sqlite3_exec(db,
			  "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;"
			  " PRAGMA synchronous=FULL;",
			  NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		uvenv_storage_fail(u, db, path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		goto fail;
	}
	snprintf(d->name, sizeof d->name, "%s", name);
	d->db = db;
	d->next = u->dbs;
	u->dbs = d;
	free(path);
	*out = db;
	return 0;
fail:
	free(path);
	free(d);
	return CS_ESTORAGE;
}

/* ---------------------------------------------------------------- random */

/* Draws from a pool the kernel refills (getrandom) when it runs dry: one
 * syscall per UVENV_RANDOM_POOL_BYTES / 8 draws, not one each (ids,
 * nonces and jitter come from here, one or more per committed write). */
static uint64_t uvenv_random_u64(struct env *env)
{
	struct uvenv *u = uvenv_of(env);
	uint64_t v;

	if (u->random_used + sizeof v > sizeof u->random_pool) {
		size_t got = 0;
		while (got < sizeof u->random_pool) {
			ssize_t n = getrandom(u->random_pool + got,
					      sizeof u->random_pool - got, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				/* no entropy source at all: nothing sane to go on with */
				fprintf(stderr, "uvenv: getrandom: %s\n",
					strerror(errno));
				abort();
			}
			got += (size_t)n;
		}
		u->random_used = 0;
	}
	memcpy(&v, u->random_pool + u->random_used, sizeof v);
	/* a drawn value leaves no copy behind */
	memset(u->random_pool + u->random_used, 0, sizeof v);
	u->random_used += sizeof v;
	return v;
}

/* ---------------------------------------------------------------- executor */

#if UVENV_HAS_DOCKER
/* A controller for a spec with network attachments: each network as the
 * data plane holds it (a network it does not hold fails PREPARE). */
static int uvenv_ctl_open_net(struct uvenv *u, const struct env_container_spec *spec,
			      struct env_ctl **ctl)
{
	struct docker_net *nets = calloc(spec->network_count, sizeof *nets);
	int rv;

	if (!nets)
		return CS_ENOMEM;
	for (size_t i = 0; i < spec->network_count; i++) {
		const struct dataplane_net *n =
			dataplane_find(u->dataplane, spec->networks[i].network_id);
		if (!n)
			continue; /* name NULL: PREPARE fails, saying so */
		nets[i].name = n->docker_name;
		nets[i].bridge = n->bridge;
		nets[i].subnet = n->subnet;
		nets[i].gateway = n->gateway;
		nets[i].mtu = n->mtu;
		nets[i].internal = n->internal;
	}
	rv = docker_ctl_open_net(u->docker, spec, nets, ctl);
	free(nets);
	return rv;
}
#endif

static int uvenv_ctl_open(struct env *env, const struct env_container_spec *spec,
			  struct env_ctl **ctl)
{
	struct uvenv *u = uvenv_of(env);

	if (!u->docker)
		return CS_ENOTSUP;
#if UVENV_HAS_DOCKER
	if (u->dataplane && spec->network_count)
		return uvenv_ctl_open_net(u, spec, ctl);
	return docker_ctl_open(u->docker, spec, ctl);
#else
	return CS_ENOTSUP;
#endif
}

static int uvenv_ctl_do(struct env_ctl *ctl, enum env_ctl_op op, struct env_ctl_req *req,
			env_ctl_cb cb)
{
#if UVENV_HAS_DOCKER
	return docker_ctl_do(ctl, op, req, cb);
#else
	return CS_ENOTSUP; /* no controller can exist */
#endif
}

static void uvenv_ctl_close(struct env_ctl *ctl, env_ctl_close_cb cb, void *data)
{
#if UVENV_HAS_DOCKER
	docker_ctl_close(ctl, cb, data);
#else
	assert(!"no controller can exist without an executor");
#endif
}

/* issue 16: a container's log lines, from the executor's dockerd */
static int uvenv_logs_read(struct env *env, struct env_logs_req *req, env_logs_cb cb)
{
	struct uvenv *u = uvenv_of(env);

	if (!u->docker)
		return CS_ENOTSUP;
#if UVENV_HAS_DOCKER
	return docker_logs_read(u->docker, req, cb);
#else
	(void)req;
	(void)cb;
	return CS_ENOTSUP;
#endif
}

static int uvenv_ctl_list(struct env *env, struct env_ctl_list_req *req,
			  env_ctl_list_cb cb)
{
	struct uvenv *u = uvenv_of(env);

	if (!u->docker)
		return CS_ENOTSUP;
#if UVENV_HAS_DOCKER
	return docker_ctl_list(u->docker, req, cb);
#else
	return CS_ENOTSUP;
#endif
}

static void uvenv_exit_fire(uv_timer_t *t)
{
	struct uvenv *u = t->data;
	if (u->closing)
		return;
	if (u->on_exit)
		u->on_exit(u->exit_data, u->exit_why);
	else
		uv_stop(u->loop);
}

/* env exit: logged at once, acted on from the loop (never inside the
 * caller's callback). */
static void uvenv_exit(struct env *env, const char *why)
{
	struct uvenv *u = uvenv_of(env);
	if (u->exiting || u->closing)
		return;
	u->exiting = true;
	snprintf(u->exit_why, sizeof u->exit_why, "%s", why);
	env_logf(env, ENV_LOG_ERROR, "msg=\"fatal: the daemon exits\" why=\"%s\"", why);
	uv_timer_start(&u->exit_timer, uvenv_exit_fire, 0, 0);
}

/* ---------------------------------------------------------------- identity */

/* Fills 32 bytes from the OS (getrandom, as random_u64). */
static void uvenv_random_bytes(uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "uvenv: getrandom: %s\n", strerror(errno));
			abort();
		}
		got += (size_t)r;
	}
}

/* A serial: 63 random bits, never 0. */
static uint64_t uvenv_serial(void)
{
	uint64_t v;

	do {
		uvenv_random_bytes((uint8_t *)&v, sizeof v);
		v >>= 1;
	} while (v == 0);
	return v;
}

/* Writes bytes to tls/name durably: a temp file (0600) written and
 * fsync'ed, renamed over name, the directory fsync'ed. Returns 0 or an
 * errno. */
static int uvenv_file_put(const struct uvenv *u, const char *name, const uint8_t *bytes,
			  size_t len)
{
	char path[4096], tmp[4200];
	int fd, dfd, e = 0;
	size_t off = 0;

	snprintf(path, sizeof path, "%s/%s", u->tls_dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	if (fchmod(fd, 0600) != 0)
		e = errno;
	while (!e && off < len) {
		ssize_t w = write(fd, bytes + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			e = w < 0 ? errno : EIO;
		else
			off += (size_t)w;
	}
	if (!e && fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) != 0)
		e = errno;
	if (e) {
		unlink(tmp);
		return e;
	}
	dfd = open(u->tls_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno;
	if (fsync(dfd) != 0)
		e = errno;
	close(dfd);
	return e;
}

/* Removes tls/name durably (gone: fine). Returns 0 or an errno. */
static int uvenv_file_remove(const struct uvenv *u, const char *name)
{
	char path[4096];
	int dfd, e = 0;

	snprintf(path, sizeof path, "%s/%s", u->tls_dir, name);
	if (unlink(path) != 0)
		return errno == ENOENT ? 0 : errno;
	dfd = open(u->tls_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno;
	if (fsync(dfd) != 0)
		e = errno;
	close(dfd);
	return e;
}

/* Reads tls/name (at most cap bytes) into buf. Returns 0, ENOENT, EFBIG
 * (larger than cap) or another errno. */
static int uvenv_file_get(const char *dir, const char *name, uint8_t *buf, size_t cap,
			  size_t *len)
{
	char path[4096];
	int fd, e = 0;
	size_t off = 0;

	*len = 0;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	for (;;) {
		ssize_t r;
		if (off == cap) {
			char extra;
			r = read(fd, &extra, 1);
			e = r == 0 ? 0 : r > 0 ? EFBIG : errno;
			break;
		}
		r = read(fd, buf + off, cap - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			break;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	*len = off;
	return e;
}

/* The roots file: each root a 4-byte big-endian length, then its DER. */
static size_t uvenv_roots_encode(const struct env_blob *roots, size_t count, uint8_t *buf,
				 size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < count; i++) {
		assert(n + UVENV_HEADER_BYTES + roots[i].len <= cap);
		uvenv_write_be32(buf + n, (uint32_t)roots[i].len);
		memcpy(buf + n + UVENV_HEADER_BYTES, roots[i].data, roots[i].len);
		n += UVENV_HEADER_BYTES + roots[i].len;
	}
	return n;
}

/* Rebuilds the TLS configurations from the node's key, certificate and
 * roots; a node without a certificate serves with a throwaway self-signed
 * one (TLS 1.3 has no server without a certificate) and shows none as a
 * client. Connections open keep theirs. Returns 0, or an error with why. */
static int uvenv_tls_rebuild(struct uvenv *u, char why[TLS_WHY_BYTES])
{
	struct env_blob key = {u->key, u->key_len}, cert = {u->cert, u->cert_len};
	uint8_t eph_cert[PKI_DER_BYTES_MAX], eph_key[PKI_DER_BYTES_MAX];
	struct env_blob ekey = {eph_key, 0}, ecert = {eph_cert, 0};
	struct tls_ctx *server = NULL, *client = NULL;
	int rv;

	if (u->cert_len == 0 || u->key_len == 0) {
		uint8_t seed[PKI_SEED_BYTES];
		int64_t now = uvenv_wall_s(u);
		uvenv_random_bytes(seed, sizeof seed);
		rv = pki_ca_create(seed, 0, now - UVENV_CERT_BACKDATE_S,
				   now + UVENV_EPHEMERAL_S, uvenv_serial(), eph_cert,
				   sizeof eph_cert, &ecert.len, eph_key, sizeof eph_key,
				   &ekey.len);
		OPENSSL_cleanse(seed, sizeof seed);
		if (rv != 0) {
			snprintf(why, TLS_WHY_BYTES, "throwaway certificate: %s",
				 cs_strerror(rv));
			return rv;
		}
		rv = tls_ctx_new(true, &ekey, &ecert, NULL, 0, &server, why);
		OPENSSL_cleanse(eph_key, sizeof eph_key);
		if (rv == 0)
			rv = tls_ctx_new(false, NULL, NULL, NULL, 0, &client, why);
	} else {
		rv = tls_ctx_new(true, &key, &cert, u->root_blobs, u->root_count, &server,
				 why);
		/* a client shows its leaf alone: a server checks it against
		 * its own roots (uvenv_peer_check), never a chain the client
		 * sends, and each certificate sent is one more parse for the
		 * server, 0.85 M instructions in OpenSSL 3.0 (issue 18: ten
		 * thousand agents reconnecting to a new leader). A joiner
		 * needs the server's roots (its pin), so a server sends them. */
		if (rv == 0)
			rv = tls_ctx_new(false, &key, &cert, NULL, 0, &client, why);
	}
	if (rv != 0) {
		tls_ctx_free(server);
		return rv;
	}
	tls_ctx_free(u->tls_server);
	tls_ctx_free(u->tls_client);
	u->tls_server = server;
	u->tls_client = client;
	return 0;
}

/* Sets u's roots to a copy of roots (count 1..UVENV_ROOTS_MAX, each at
 * most PKI_DER_BYTES_MAX). */
static void uvenv_roots_set(struct uvenv *u, const struct env_blob *roots, size_t count)
{
	assert(count <= UVENV_ROOTS_MAX);
	for (size_t i = 0; i < count; i++) {
		assert(roots[i].len <= PKI_DER_BYTES_MAX);
		memmove(u->roots[i], roots[i].data, roots[i].len);
		u->root_blobs[i] = (struct env_blob){u->roots[i], roots[i].len};
	}
	u->root_count = count;
}

/* Loads STATE_DIR/tls/ (made 0700 when missing). A node.crt that is not
 * node.key's certificate is an error, unless it is pending.key's: then an
 * install was cut by a crash after the certificate, and is finished here.
 * Returns 0 or CS_ESTORAGE with err. */
static int uvenv_identity_load(struct uvenv *u, char *err, size_t err_size)
{
	uint8_t buf[UVENV_ROOTS_MAX * (UVENV_HEADER_BYTES + PKI_DER_BYTES_MAX)];
	size_t len, off = 0;
	int e;

	if (mkdir(u->tls_dir, 0700) != 0 && errno != EEXIST) {
		netlog_errf(err, err_size, "cannot create %s: %s", u->tls_dir,
			    strerror(errno));
		return CS_ESTORAGE;
	}
	if (chmod(u->tls_dir, 0700) != 0) {
		netlog_errf(err, err_size, "chmod %s: %s", u->tls_dir, strerror(errno));
		return CS_ESTORAGE;
	}
	static const char *const names[] = {"node.key", "node.crt", "pending.key"};
	uint8_t *dst[] = {u->key, u->cert, u->pending};
	size_t *lens[] = {&u->key_len, &u->cert_len, &u->pending_len};
	for (size_t i = 0; i < 3; i++) {
		e = uvenv_file_get(u->tls_dir, names[i], dst[i], PKI_DER_BYTES_MAX,
				   lens[i]);
		if (e == ENOENT) {
			*lens[i] = 0;
			continue;
		}
		if (e != 0) {
			netlog_errf(err, err_size, "%s/%s: %s", u->tls_dir, names[i],
				    e == EFBIG
					    ? "larger than a key or certificate of ours"
					    : strerror(e));
			return CS_ESTORAGE;
		}
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", u->tls_dir, names[i]);
		if (chmod(p, 0600) != 0) {
			netlog_errf(err, err_size, "chmod %s: %s", p, strerror(errno));
			return CS_ESTORAGE;
		}
	}
	e = uvenv_file_get(u->tls_dir, "roots", buf, sizeof buf, &len);
	if (e != 0 && e != ENOENT) {
		netlog_errf(err, err_size, "%s/roots: %s", u->tls_dir,
			    e == EFBIG ? "more roots than 2" : strerror(e));
		return CS_ESTORAGE;
	}
	while (e == 0 && off < len) {
		size_t n;
		if (len - off < UVENV_HEADER_BYTES || u->root_count == UVENV_ROOTS_MAX) {
			netlog_errf(err, err_size,
				    "%s/roots: not 1 or 2 length-prefixed roots",
				    u->tls_dir);
			return CS_ESTORAGE;
		}
		n = uvenv_read_be32(buf + off);
		if (n == 0 || n > PKI_DER_BYTES_MAX ||
		    n > len - off - UVENV_HEADER_BYTES) {
			netlog_errf(err, err_size, "%s/roots: a root of %zu bytes",
				    u->tls_dir, n);
			return CS_ESTORAGE;
		}
		memcpy(u->roots[u->root_count], buf + off + UVENV_HEADER_BYTES, n);
		u->root_blobs[u->root_count] =
			(struct env_blob){u->roots[u->root_count], n};
		u->root_count++;
		off += UVENV_HEADER_BYTES + n;
	}
	if (u->key_len >= UVENV_SEAL_MAGIC_BYTES &&
	    memcmp(u->key, UVENV_SEAL_MAGIC, UVENV_SEAL_MAGIC_BYTES) == 0) {
		/* sealed (autolock): usable once pki_unlock gives the kek */
		memcpy(u->sealed, u->key, u->key_len);
		u->sealed_len = u->key_len;
		OPENSSL_cleanse(u->key, sizeof u->key);
		u->key_len = 0;
	}
	if (u->cert_len > 0 && u->sealed_len == 0) {
		struct env_blob cert = {u->cert, u->cert_len};
		struct env_blob key = {u->key, u->key_len};
		struct env_blob pend = {u->pending, u->pending_len};
		if (u->key_len == 0 || !pki_key_matches(&key, &cert)) {
			if (u->pending_len == 0 || !pki_key_matches(&pend, &cert)) {
				netlog_errf(err, err_size,
					    "%s/node.crt is not the certificate of %s: "
					    "the node's identity is inconsistent (remove "
					    "%s to join again)",
					    u->tls_dir,
					    u->key_len ? "node.key"
						       : "any key (no node.key)",
					    u->tls_dir);
				return CS_ESTORAGE;
			}
			e = uvenv_file_put(u, "node.key", u->pending, u->pending_len);
			if (e == 0)
				e = uvenv_file_remove(u, "pending.key");
			if (e != 0) {
				netlog_errf(err, err_size, "%s/node.key: %s", u->tls_dir,
					    strerror(e));
				return CS_ESTORAGE;
			}
			memcpy(u->key, u->pending, u->pending_len);
			u->key_len = u->pending_len;
			OPENSSL_cleanse(u->pending, sizeof u->pending);
			u->pending_len = 0;
		}
	}
	return 0;
}

/* What a certificate says, as the env tells it: times on the env's clock. */
static void uvenv_identity_of(struct uvenv *u, const struct pki_cert *pc,
			      struct env_identity *out)
{
	int64_t wall = uvenv_wall_s(u);
	ms_t now = uv_now(u->loop);

	memset(out, 0, sizeof *out);
	out->node_id = pc->node_id;
	out->cluster_id = pc->cluster_id;
	out->role = pc->role;
	out->expires_ms = pc->not_after_s > wall
				  ? now + (ms_t)(pc->not_after_s - wall) * 1000
				  : now;
	out->life_ms = pc->not_after_s > pc->not_before_s
			       ? (ms_t)(pc->not_after_s - pc->not_before_s) * 1000
			       : 0;
	memcpy(out->root, pc->root, sizeof out->root);
	memcpy(out->key, pc->key, sizeof out->key);
}

static void uvenv_sender(struct env *env, struct env_identity *out)
{
	struct uvenv *u = uvenv_of(env);

	memset(out, 0, sizeof *out);
	if (!u->recv_active)
		return;
	/* it held at the handshake; expired since, it holds no more */
	if (u->recv_verified && uvenv_wall_s(u) < u->recv_peer->not_after_s) {
		uvenv_identity_of(u, u->recv_peer, out);
		assert(out->node_id != 0);
	}
	out->conn = u->recv_conn;
	if (u->recv_ip)
		snprintf(out->peer_ip, sizeof out->peer_ip, "%s", u->recv_ip);
}

/* env reply: a frame back on incoming connection conn, in its TLS session,
 * never a dial. */
static int uvenv_reply(struct env *env, uint64_t conn, const uint8_t *buf, size_t len)
{
	struct uvenv *u = uvenv_of(env);
	struct uvenv_in *c;
	uint8_t stage[UVENV_TLS_RECORD_BYTES];
	char why[TLS_WHY_BYTES];
	size_t queued;
	int rv;

	assert(buf != NULL || len == 0);
	if (u->closing)
		return CS_ECLOSED;
	if (len == 0 || len > u->frame_max)
		return len == 0 ? CS_EINVAL : CS_ELIMIT;
	/* every answer of a leader's dispatcher to its agents: by table */
	c = uvenv_conn_find(u, conn);
	if (!c || c->closing || !c->handshaken)
		return CS_ECLOSED;
	queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->handle);
	if (queued > 0 && queued + UVENV_HEADER_BYTES + len > u->peer_queue_bytes_max)
		return CS_EAGAIN;
	/* header and frame in one TLS record when they fit one: a leader
	 * answers every agent this way, and a record each cost two seals and
	 * twice the overhead on the wire */
	if (len <= sizeof stage - UVENV_HEADER_BYTES) {
		uvenv_write_be32(stage, (uint32_t)len);
		memcpy(stage + UVENV_HEADER_BYTES, buf, len);
		rv = uvenv_tls_write(u, c->tls, stage, UVENV_HEADER_BYTES + len, why);
	} else {
		uvenv_write_be32(stage, (uint32_t)len);
		rv = uvenv_tls_write(u, c->tls, stage, UVENV_HEADER_BYTES, why);
		if (rv == 0)
			rv = uvenv_tls_write(u, c->tls, buf, len, why);
	}
	if (rv != 0 ||
	    uvenv_tls_push(c->tls, (uv_stream_t *)&c->handle, uvenv_in_written) != 0) {
		uvenv_in_close(c, "write failed");
		return CS_ECLOSED;
	}
	return 0;
}

static int uvenv_pki_csr(struct env *env, uint8_t *buf, size_t cap, size_t *len)
{
	struct uvenv *u = uvenv_of(env);
	uint8_t seed[PKI_SEED_BYTES];
	int rv, e;

	uvenv_random_bytes(seed, sizeof seed);
	rv = pki_csr_create(seed, buf, cap, len);
	if (rv == 0)
		rv = pki_key_der(seed, u->pending, sizeof u->pending, &u->pending_len);
	OPENSSL_cleanse(seed, sizeof seed);
	if (rv != 0) {
		u->pending_len = 0;
		return rv;
	}
	/* kept on disk so that an answer after a restart still installs; not
	 * durable is survivable (a new CSR after a restart) */
	e = uvenv_file_put(u, "pending.key", u->pending, u->pending_len);
	if (e != 0)
		uvenv_logf(u, ENV_LOG_WARN,
			   "msg=\"cannot keep the pending key\" file=%s/pending.key "
			   "err=\"%s\"",
			   u->tls_dir, strerror(e));
	return 0;
}

static int uvenv_pki_ca_create(struct env *env, uint64_t cluster_id, ms_t life_ms,
			       uint8_t *cert, size_t cert_cap, size_t *cert_len,
			       uint8_t *key, size_t key_cap, size_t *key_len)
{
	struct uvenv *u = uvenv_of(env);
	uint8_t seed[PKI_SEED_BYTES];
	int64_t now = uvenv_wall_s(u);
	int rv;

	uvenv_random_bytes(seed, sizeof seed);
	rv = pki_ca_create(seed, cluster_id, now - UVENV_CERT_BACKDATE_S,
			   now + (int64_t)(life_ms / 1000), uvenv_serial(), cert,
			   cert_cap, cert_len, key, key_cap, key_len);
	OPENSSL_cleanse(seed, sizeof seed);
	return rv;
}

static int uvenv_pki_sign(struct env *env, const struct env_blob *ca_cert,
			  const struct env_blob *ca_key, const struct env_blob *csr,
			  const struct env_identity *who, ms_t life_ms, uint8_t *cert,
			  size_t cap, size_t *len)
{
	struct uvenv *u = uvenv_of(env);
	int64_t now = uvenv_wall_s(u);
	char why[PKI_WHY_BYTES] = "";
	int rv;

	rv = pki_sign(ca_cert, ca_key, csr, who, now - UVENV_CERT_BACKDATE_S,
		      now + (int64_t)(life_ms / 1000), uvenv_serial(), cert, cap, len,
		      why);
	if (rv != 0)
		uvenv_logf(u, ENV_LOG_WARN,
			   "msg=\"cannot sign a certificate\" node=%016" PRIx64
			   " err=\"%s\"",
			   who->node_id, why);
	return rv;
}

/* A new certificate (or new roots): the connections this node dialled
 * close, and the next frames dial again, presenting it (a joiner's first
 * connection had none: its peers would hear it as a stranger for as long
 * as that connection lived), and checking the peer against the new roots.
 * What waits in a peer's queue stays for the new connection; what libuv
 * was writing is lost (best effort, as any lost connection). */
static void uvenv_out_redial_all(struct uvenv *u)
{
	for (size_t i = 0; i < u->bucket_count; i++)
		for (struct uvenv_peer *p = u->buckets[i]; p; p = p->next_in_bucket)
			if (p->out)
				uvenv_out_fail(p->out, "this node's certificate changed");
}

/* Writes node.key: sealed with the autolock kek when it is set, else in
 * the clear. Returns 0 or an errno. */
static int uvenv_key_put(const struct uvenv *u, const uint8_t *key, size_t len)
{
	uint8_t out[UVENV_SEALED_BYTES_MAX];
	uint8_t *nonce = out + UVENV_SEAL_MAGIC_BYTES;
	int e;

	if (!u->kek_set)
		return uvenv_file_put(u, "node.key", key, len);
	if (len > PKI_DER_BYTES_MAX)
		return EFBIG;
	memcpy(out, UVENV_SEAL_MAGIC, UVENV_SEAL_MAGIC_BYTES);
	uvenv_random_bytes(nonce, SEAL_NONCE_BYTES);
	if (seal_seal(u->kek, nonce, (const uint8_t *)UVENV_SEAL_AD,
		      strlen(UVENV_SEAL_AD), key, len, nonce + SEAL_NONCE_BYTES) != 0)
		return ENOMEM;
	e = uvenv_file_put(u, "node.key", out,
			   UVENV_SEAL_MAGIC_BYTES + SEAL_NONCE_BYTES + len +
				   SEAL_TAG_BYTES);
	OPENSSL_cleanse(out, sizeof out);
	return e;
}

static void uvenv_out_redial_all(struct uvenv *u);

static int uvenv_pki_lock(struct env *env, const uint8_t *kek)
{
	struct uvenv *u = uvenv_of(env);
	int e;

	if (u->sealed_len)
		return CS_EINVAL; /* locked: unlock first */
	if (kek) {
		memcpy(u->kek, kek, SEAL_KEY_BYTES);
		u->kek_set = true;
	} else {
		OPENSSL_cleanse(u->kek, sizeof u->kek);
		u->kek_set = false;
	}
	if (u->key_len == 0)
		return 0;
	e = uvenv_key_put(u, u->key, u->key_len);
	if (e != 0) {
		uvenv_logf(u, ENV_LOG_ERROR,
			   "msg=\"cannot write the node's key\" dir=%s err=\"%s\"",
			   u->tls_dir, strerror(e));
		return CS_ESTORAGE;
	}
	uvenv_logf(u, ENV_LOG_INFO, "msg=\"node key %s\"",
		   kek ? "sealed with the unlock key" : "in the clear (autolock off)");
	return 0;
}

static int uvenv_pki_unlock(struct env *env, const uint8_t *kek)
{
	struct uvenv *u = uvenv_of(env);
	const uint8_t *nonce = u->sealed + UVENV_SEAL_MAGIC_BYTES;
	size_t ct_len;
	uint8_t key[PKI_DER_BYTES_MAX];
	struct env_blob kb, cert = {u->cert, u->cert_len};
	char why[TLS_WHY_BYTES];

	if (!u->sealed_len) {
		memcpy(u->kek, kek, SEAL_KEY_BYTES);
		u->kek_set = true;
		return 0;
	}
	if (u->sealed_len < UVENV_SEAL_MAGIC_BYTES + SEAL_NONCE_BYTES + SEAL_TAG_BYTES)
		return CS_EAUTH;
	ct_len = u->sealed_len - UVENV_SEAL_MAGIC_BYTES - SEAL_NONCE_BYTES;
	if (ct_len - SEAL_TAG_BYTES > sizeof key ||
	    seal_open(kek, nonce, (const uint8_t *)UVENV_SEAL_AD, strlen(UVENV_SEAL_AD),
		      nonce + SEAL_NONCE_BYTES, ct_len, key) != 0)
		return CS_EAUTH;
	kb = (struct env_blob){key, ct_len - SEAL_TAG_BYTES};
	if (u->cert_len && !pki_key_matches(&kb, &cert)) {
		OPENSSL_cleanse(key, sizeof key);
		return CS_EAUTH;
	}
	memcpy(u->key, key, kb.len);
	u->key_len = kb.len;
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(u->sealed, sizeof u->sealed);
	u->sealed_len = 0;
	memcpy(u->kek, kek, SEAL_KEY_BYTES);
	u->kek_set = true;
	uvenv_out_redial_all(u);
	if (uvenv_tls_rebuild(u, why) != 0)
		uvenv_logf(u, ENV_LOG_ERROR,
			   "msg=\"node key unlocked, TLS not rebuilt\" err=\"%s\"", why);
	uvenv_logf(u, ENV_LOG_INFO, "msg=\"node key unlocked\"");
	return 0;
}

static int uvenv_pki_install(struct env *env, const struct env_blob *cert,
			     const struct env_blob *roots, size_t root_count)
{
	struct uvenv *u = uvenv_of(env);
	uint8_t buf[UVENV_ROOTS_MAX * (UVENV_HEADER_BYTES + PKI_DER_BYTES_MAX)];
	char why[PKI_WHY_BYTES];
	struct pki_cert pc;
	struct env_blob pend = {u->pending, u->pending_len};
	struct env_blob key = {u->key, u->key_len};
	bool use_pending;
	size_t n;
	int e;

	assert(cert != NULL);
	if (root_count == 0 || root_count > UVENV_ROOTS_MAX || !roots) {
		uvenv_logf(
			u, ENV_LOG_WARN,
			"msg=\"certificate not installed\" why=\"%zu roots, expected 1 "
			"or 2\"",
			root_count);
		return CS_EAUTH;
	}
	for (size_t i = 0; i < root_count; i++)
		if (roots[i].len == 0 || roots[i].len > PKI_DER_BYTES_MAX)
			return CS_EAUTH;
	if (cert->len == 0 || cert->len > PKI_DER_BYTES_MAX)
		return CS_EAUTH;
	use_pending = u->pending_len > 0 && pki_key_matches(&pend, cert);
	if (!use_pending && !(u->key_len > 0 && pki_key_matches(&key, cert))) {
		uvenv_logf(
			u, ENV_LOG_WARN,
			"msg=\"certificate not installed\" why=\"it is for neither the "
			"pending key nor the current one\"");
		return CS_EAUTH;
	}
	if (pki_verify(cert, roots, root_count, uvenv_wall_s(u), &pc, why) != 0) {
		uvenv_logf(u, ENV_LOG_WARN,
			   "msg=\"certificate not installed\" why=\"%s\"", why);
		return CS_EAUTH;
	}
	/* durable first: the roots, the certificate, then its key (a crash
	 * between the last two is finished at the next open) */
	n = uvenv_roots_encode(roots, root_count, buf, sizeof buf);
	e = uvenv_file_put(u, "roots", buf, n);
	if (e == 0)
		e = uvenv_file_put(u, "node.crt", cert->data, cert->len);
	if (e == 0 && use_pending) {
		e = uvenv_key_put(u, u->pending, u->pending_len);
		if (e == 0)
			e = uvenv_file_remove(u, "pending.key");
	}
	if (e != 0) {
		uvenv_logf(u, ENV_LOG_ERROR,
			   "msg=\"cannot install the certificate\" dir=%s err=\"%s\"",
			   u->tls_dir, strerror(e));
		return CS_ESTORAGE;
	}
	/* then in memory, and for connections from now on */
	memmove(u->cert, cert->data, cert->len);
	u->cert_len = cert->len;
	if (use_pending) {
		memcpy(u->key, u->pending, u->pending_len);
		u->key_len = u->pending_len;
		OPENSSL_cleanse(u->pending, sizeof u->pending);
		u->pending_len = 0;
	}
	uvenv_roots_set(u, roots, root_count);
	u->pinned = false;
	uvenv_out_redial_all(u);
	if (uvenv_tls_rebuild(u, why) != 0) {
		/* the files hold it; only OpenSSL's memory failed */
		uvenv_logf(u, ENV_LOG_ERROR,
			   "msg=\"certificate installed, but TLS keeps the old one\" "
			   "err=\"%s\"",
			   why);
	}
	uvenv_logf(u, ENV_LOG_INFO,
		   "msg=\"certificate installed\" node=%016" PRIx64 " role=%s "
		   "not_after=%" PRId64 " roots=%zu",
		   pc.node_id, pc.role == ENV_ROLE_MANAGER ? "manager" : "worker",
		   pc.not_after_s, root_count);
	return 0;
}

static int uvenv_pki_pin(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES])
{
	struct uvenv *u = uvenv_of(env);

	memcpy(u->pin, digest, ENV_DIGEST_BYTES);
	u->pinned = true;
	return 0;
}

/* pki_verify of its own certificate against its roots now, from the last
 * result when neither changed and the wall clock is still within its
 * validity. Returns 0 and *pc, or pki_verify's error (why said). */
static int uvenv_own_verify(struct uvenv *u, struct pki_cert *pc, char *why)
{
	struct env_blob own = {u->cert, u->cert_len};
	int64_t wall = uvenv_wall_s(u);
	uint8_t digest[ENV_DIGEST_BYTES];
	int rv;

	uvenv_digest_with_roots(u, u->cert, u->cert_len, digest);
	if (u->own_ok && memcmp(digest, u->own_digest, sizeof digest) == 0 &&
	    wall >= u->own_pc.not_before_s && wall <= u->own_pc.not_after_s) {
		*pc = u->own_pc;
		return 0;
	}
	u->own_ok = false;
	rv = pki_verify(&own, u->root_blobs, u->root_count, wall, pc, why);
	if (rv == 0) {
		u->own_ok = true;
		memcpy(u->own_digest, digest, sizeof digest);
		u->own_pc = *pc;
	}
	return rv;
}

static int uvenv_pki_info(struct env *env, const struct env_blob *cert,
			  struct env_identity *out)
{
	struct uvenv *u = uvenv_of(env);
	struct env_blob own = {u->cert, u->cert_len};
	char why[PKI_WHY_BYTES];
	struct pki_cert pc;

	memset(out, 0, sizeof *out);
	if (cert->len == 0) {
		if (u->cert_len == 0)
			return CS_ENOENT;
		if (u->key_len == 0)
			return CS_EAUTH; /* its key still locked (autolock) */
		/* its root too, when it chains to one we trust */
		if (u->root_count > 0 && uvenv_own_verify(u, &pc, why) == 0) {
			uvenv_identity_of(u, &pc, out);
			return 0;
		}
		cert = &own;
	}
	if (pki_read(cert, &pc, why) != 0)
		return CS_EINVAL;
	uvenv_identity_of(u, &pc, out);
	return 0;
}

static const struct env_ops uvenv_ops = {
	.now_ms = uvenv_now_ms,
	.timer_start = uvenv_timer_start,
	.timer_stop = uvenv_timer_stop,
	.self_addr = uvenv_self_addr,
	.listen = uvenv_listen,
	.send = uvenv_send,
	.storage_open = uvenv_storage_open,
	.random_u64 = uvenv_random_u64,
	.log = uvenv_env_log,
	.ctl_open = uvenv_ctl_open,
	.ctl_do = uvenv_ctl_do,
	.ctl_close = uvenv_ctl_close,
	.ctl_list = uvenv_ctl_list,
	.logs_read = uvenv_logs_read,
	.exit = uvenv_exit,
	.sender = uvenv_sender,
	.pki_csr = uvenv_pki_csr,
	.pki_ca_create = uvenv_pki_ca_create,
	.pki_sign = uvenv_pki_sign,
	.pki_install = uvenv_pki_install,
	.pki_pin = uvenv_pki_pin,
	.pki_info = uvenv_pki_info,
	.pki_lock = uvenv_pki_lock,
	.pki_unlock = uvenv_pki_unlock,
	.reply = uvenv_reply,
	.wall_ms = uvenv_wall_ms,
};

/* ---------------------------------------------------------------- data plane (issue 17) */

/* One network's load-balancing tables on this node (net/lb.c). */
struct uvenv_lb {
	uint64_t network_id;
	struct lb_target vip; /* its VIPs, on its bridge */
	struct lb_target ing; /* the ingress network's published ports */
	bool has_ing;
};

static struct uvenv_lb *uvenv_lb_find(struct uvenv *u, uint64_t id, size_t *at)
{
	size_t lo = 0, hi = u->lb_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (u->lbs[mid].network_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return lo < u->lb_count && u->lbs[lo].network_id == id ? &u->lbs[lo] : NULL;
}

static void uvenv_lb_drop(struct uvenv *u, size_t at, bool clear)
{
	struct uvenv_lb *l = &u->lbs[at];
	char err[LB_ERR_BYTES];

	if (clear) {
		if (lb_target_clear(&l->vip, l->network_id, err, sizeof err))
			uvenv_logf(
				u, ENV_LOG_WARN,
				"msg=\"data plane: VIP rules of %016llx not removed: %s\"",
				(unsigned long long)l->network_id, err);
		if (l->has_ing && l->ing.bridge &&
		    lb_forward_close(l->ing.bridge, err, sizeof err))
			uvenv_logf(u, ENV_LOG_WARN,
				   "msg=\"data plane: the mesh's DOCKER-USER rule not "
				   "removed: %s\"",
				   err);
		if (l->has_ing && lb_target_clear(&l->ing, 0, err, sizeof err))
			uvenv_logf(u, ENV_LOG_WARN,
				   "msg=\"data plane: ingress rules not removed: %s\"",
				   err);
	} else {
		lb_model_free(&l->vip.applied);
		free(l->vip.netns_path);
		free(l->vip.bridge);
		free(l->vip.snat_addr);
		if (l->has_ing) {
			lb_model_free(&l->ing.applied);
			free(l->ing.netns_path);
			free(l->ing.bridge);
			free(l->ing.snat_addr);
		}
	}
	memmove(l, l + 1, (u->lb_count - at - 1) * sizeof *l);
	u->lb_count--;
}

/* Makes the kernel hold st's VIP rules (and, on the ingress network, its
 * published ports), on the network's bridge: only what changed since the
 * last time. Returns 0, or CS_EEXEC / CS_ENOMEM / CS_EINVAL with nft's
 * words logged (a VIP that would not answer is no half-state to run on). */
static int uvenv_lb_sync(struct uvenv *u, const struct env_net_state *st)
{
	const struct dataplane_net *dn = dataplane_find(u->dataplane, st->network_id);
	struct uvenv_lb *l;
	char err[LB_ERR_BYTES];
	size_t at;
	int rv;

	if (!dn)
		return CS_EINVAL;
	l = uvenv_lb_find(u, st->network_id, &at);
	if (l && strcmp(l->vip.bridge ? l->vip.bridge : "", dn->bridge) != 0) {
		uvenv_lb_drop(u, at, true); /* its bridge changed (a new VNI) */
		l = NULL;
	}
	if (!l) {
		if (u->lb_count == u->lb_cap) {
			size_t cap = u->lb_cap ? u->lb_cap * 2 : 8;
			struct uvenv_lb *lbs = realloc(u->lbs, cap * sizeof *lbs);
			if (!lbs)
				return CS_ENOMEM;
			u->lbs = lbs;
			u->lb_cap = cap;
		}
		memmove(&u->lbs[at + 1], &u->lbs[at],
			(u->lb_count - at) * sizeof *u->lbs);
		l = &u->lbs[at];
		memset(l, 0, sizeof *l);
		l->network_id = st->network_id;
		if (lb_target_init_vip(&l->vip, NULL, dn->bridge) != 0)
			return CS_ENOMEM;
		u->lb_count++;
	}
	rv = lb_target_sync(&l->vip, st, err, sizeof err);
	if (!rv && st->ingress) {
		/* published ports answer on this node's addresses and reach
		 * every backend (the routing mesh): those of other nodes
		 * through the ingress overlay, SNATed to this node's own
		 * ingress address (st->node_addr) so that their answers come
		 * back here; without one, this node's own backends only */
		const char *snat = st->node_addr;
		if (l->has_ing &&
		    !(snat ? l->ing.snat_addr && strcmp(l->ing.snat_addr, snat) == 0
			   : l->ing.snat_addr == NULL)) {
			/* its address came or changed: the whole table again */
			lb_model_free(&l->ing.applied);
			free(l->ing.netns_path);
			free(l->ing.bridge);
			free(l->ing.snat_addr);
			l->has_ing = false;
		}
		if (!l->has_ing) {
			int irv = lb_target_init_ingress(&l->ing, NULL, dn->bridge, snat);
			if (irv != 0)
				return irv;
			l->has_ing = true;
		}
		rv = lb_target_sync(&l->ing, st, err, sizeof err);
		/* Docker's FORWARD policy drops what it did not publish:
		 * what the mesh DNATs to this bridge is let through */
		if (!rv)
			rv = lb_forward_open(dn->bridge, err, sizeof err);
	}
	if (rv) {
		uvenv_logf(
			u, ENV_LOG_ERROR,
			"msg=\"data plane: network %016llx: load-balancing rules: %s\" "
			"err=%s",
			(unsigned long long)st->network_id, err, cs_errname(rv));
		snprintf(u->net_err, sizeof u->net_err, "load-balancing rules: %s", err);
	}
	return rv;
}

/* An encrypted network's tunnel first (its TAP, which dataplane_set puts
 * on the bridge), at the data plane's MTU less the tunnel's extra; a
 * network no longer encrypted loses its tunnel before the data plane
 * rebuilds it over VXLAN. Returns 0, or an error with its words in err. */
static int uvenv_crypt_set(struct uvenv *u, const struct env_net_state *st, char *err,
			   size_t err_size)
{
	if (!st->encrypted) {
		if (u->crypttun && crypttun_has(u->crypttun, st->network_id))
			crypttun_remove(u->crypttun, st->network_id);
		return 0;
	}
	if (!u->crypttun) {
		snprintf(err, err_size,
			 "network %016llx is encrypted and this node has no encrypted "
			 "tunnel",
			 (unsigned long long)st->network_id);
		return CS_ENOTSUP;
	}
	return crypttun_set(u->crypttun, st,
			    dataplane_mtu(u->dataplane) - DATAPLANE_CRYPT_EXTRA, err,
			    err_size);
}

static int uvenv_net_set(struct env *env, const struct env_net_state *st)
{
	struct uvenv *u = uvenv_of(env);
	char err[512];
	int rv;

	assert(u->dataplane != NULL);
	u->net_err[0] = '\0';
	rv = uvenv_crypt_set(u, st, err, sizeof err);
	if (!rv)
		rv = dataplane_set(u->dataplane, st, err, sizeof err);
	/* never half-made: a network the data plane dropped loses its TAP */
	if (rv && st->encrypted && u->crypttun &&
	    !dataplane_find(u->dataplane, st->network_id))
		crypttun_remove(u->crypttun, st->network_id);
	if (rv) {
		uvenv_logf(u, ENV_LOG_ERROR, "msg=\"data plane: %s\" err=%s", err,
			   cs_errname(rv));
		snprintf(u->net_err, sizeof u->net_err, "%s", err);
	}
	if (!rv)
		rv = uvenv_lb_sync(u, st);
#if UVENV_HAS_RESOLVER
	/* the network's names, answered on its gateway (the bridge's address,
	 * up once dataplane_set returned) */
	if (!rv && u->resolver) {
		rv = resolver_set(u->resolver, st);
		if (rv)
			snprintf(u->net_err, sizeof u->net_err, "its names on %s:53: %s",
				 st->gateway ? st->gateway : "-", cs_strerror(rv));
		if (rv)
			uvenv_logf(
				u, ENV_LOG_ERROR,
				"msg=\"data plane: network %016llx: its names on %s:53\" "
				"err=%s",
				(unsigned long long)st->network_id, st->gateway,
				cs_errname(rv));
	}
#endif
	return rv;
}

/* env net_error: the words of the last net_set that failed, cut with
 * "..." when they do not fit (whole in the log line it wrote) */
static void uvenv_net_error(struct env *env, char *buf, size_t size)
{
	struct uvenv *u = uvenv_of(env);
	size_t len = strlen(u->net_err);
	if (size == 0)
		return;
	snprintf(buf, size, "%s", u->net_err);
	if (len >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

static int uvenv_net_remove(struct env *env, uint64_t network_id)
{
	struct uvenv *u = uvenv_of(env);
	const struct dataplane_net *n = dataplane_find(u->dataplane, network_id);
	char err[512], name[DATAPLANE_DOCKER_NAME_BYTES];
	int rv;

	assert(u->dataplane != NULL);
	if (u->crypttun)
		crypttun_remove(u->crypttun, network_id);
#if UVENV_HAS_RESOLVER
	if (u->resolver)
		resolver_remove(u->resolver, network_id);
#endif
	{
		size_t at;
		if (uvenv_lb_find(u, network_id, &at))
			uvenv_lb_drop(u, at, true);
	}
	if (!n)
		return 0;
	snprintf(name, sizeof name, "%s", n->docker_name);
	rv = dataplane_remove(u->dataplane, network_id, err, sizeof err);
	if (rv)
		uvenv_logf(u, ENV_LOG_ERROR, "msg=\"data plane: %s\" err=%s", err,
			   cs_errname(rv));
#if UVENV_HAS_DOCKER
	/* Docker's record of the network goes too (asynchronously; a failure
	 * is logged: the next PREPARE on it finds it and uses it) */
	if (u->docker)
		docker_net_remove(u->docker, name);
#endif
	return rv;
}

/* The data plane's own lines, in the node's log. */
static void uvenv_dataplane_log(void *data, enum env_log_level lvl, const char *msg)
{
	uvenv_logf(data, lvl, "msg=\"%s\"", msg);
}

#if UVENV_HAS_RESOLVER
/* Starts the tasks' resolver, forwarding what is not the cluster's to the
 * node's own resolvers (/etc/resolv.conf). Without it (logged), names of
 * the cluster do not resolve; addresses still work. */
static void uvenv_resolver_start(struct uvenv *u)
{
	char ups[RESOLVER_UPSTREAMS_MAX][46];
	const char *up_ptrs[RESOLVER_UPSTREAMS_MAX + 1];
	struct resolver_config rc;
	int skipped = 0, n, rv;

	n = resolver_read_resolv_conf("/etc/resolv.conf", ups, &skipped);
	for (int i = 0; i < n && i < (int)RESOLVER_UPSTREAMS_MAX; i++)
		up_ptrs[i] = ups[i];
	up_ptrs[n > 0 ? n : 0] = NULL;
	memset(&rc, 0, sizeof rc);
	rc.port = 53;
	rc.upstreams = up_ptrs;
	rc.log = uvenv_dataplane_log;
	rc.log_data = u;
	rv = resolver_start(u->loop, &rc, &u->resolver);
	if (rv) {
		u->resolver = NULL;
		uvenv_logf(u, ENV_LOG_ERROR, "msg=\"no resolver for the tasks\" err=%s",
			   cs_errname(rv));
	}
}
#endif

/* ---------------------------------------------------------------- state dir */

/* Makes dir and its missing parents, 0700. Returns 0 or an errno. */
static int uvenv_mkdirs(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof path)
		return ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return errno;
		path[i] = i == n ? '\0' : '/';
	}
	return 0;
}

/* Reads what the state dir holds: *fresh when it must be made (missing, or
 * empty). Refuses, touching nothing, a dir whose VERSION differs. */
static int uvenv_state_check(const char *dir, bool *fresh, char *err, size_t err_size)
{
	char path[4096], got[64];
	struct stat st;
	DIR *dh;
	struct dirent *e;
	bool empty = true;
	size_t n;
	FILE *f;

	*fresh = false;
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT) {
			*fresh = true;
			return 0;
		}
		netlog_errf(err, err_size, "state dir %s: %s", dir, strerror(errno));
		return CS_ESTORAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		netlog_errf(err, err_size, "state dir %s: not a directory", dir);
		return CS_ESTORAGE;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/VERSION", dir) >= sizeof path) {
		netlog_errf(err, err_size, "state dir %s: path too long", dir);
		return CS_ESTORAGE;
	}
	f = fopen(path, "r");
	if (!f) {
		if (errno != ENOENT) {
			netlog_errf(err, err_size, "%s: %s", path, strerror(errno));
			return CS_ESTORAGE;
		}
		dh = opendir(dir);
		if (!dh) {
			netlog_errf(err, err_size, "state dir %s: %s", dir,
				    strerror(errno));
			return CS_ESTORAGE;
		}
		while ((e = readdir(dh)) != NULL) {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				empty = false;
		}
		closedir(dh);
		if (!empty) {
			netlog_errf(
				err, err_size,
				"state dir %s has files but no VERSION: not a cswarm state "
				"dir, or from a version before %.*s",
				dir, (int)strlen(UVENV_STATE_VERSION) - 1,
				UVENV_STATE_VERSION);
			return CS_EVERSION;
		}
		*fresh = true;
		return 0;
	}
	n = fread(got, 1, sizeof got - 1, f);
	fclose(f);
	got[n] = '\0';
	if (strcmp(got, UVENV_STATE_VERSION) != 0) {
		for (size_t i = 0; i < n; i++) {
			if (!isprint((unsigned char)got[i]))
				got[i] = got[i] == '\n' && i + 1 == n ? '\0' : '?';
		}
		/* issue 20: say which way it differs (no older format exists
		 * yet: format 1 is the first, so none is upgraded) */
		unsigned have = 0, mine = 0;
		char tail = 0;
		const char *which = "not a cswarm state format";
		sscanf(UVENV_STATE_VERSION, "cswarm-state %u", &mine);
		if (sscanf(got, "cswarm-state %u%c", &have, &tail) >= 1 && have > mine)
			which = "a newer state format: run the swarmd that wrote it, "
				"or a later one";
		else if (have > 0 && have < mine)
			which = "an older state format, which this build does not "
				"upgrade";
		netlog_errf(
			err, err_size,
			"state dir %s was written by an incompatible version: VERSION "
			"says \"%s\", this build reads \"%.*s\" (%s)",
			dir, got, (int)strlen(UVENV_STATE_VERSION) - 1,
			UVENV_STATE_VERSION, which);
		return CS_EVERSION;
	}
	return 0;
}

/* Makes the state dir and writes its VERSION (durably). */
static int uvenv_state_make(const char *dir, char *err, size_t err_size)
{
	char path[4096];
	int fd, rv;
	size_t n = strlen(UVENV_STATE_VERSION);

	rv = uvenv_mkdirs(dir);
	if (rv != 0) {
		netlog_errf(err, err_size, "cannot create state dir %s: %s", dir,
			    strerror(rv));
		return CS_ESTORAGE;
	}
	snprintf(path, sizeof path, "%s/VERSION", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, UVENV_STATE_VERSION, n) != (ssize_t)n || fsync(fd) != 0) {
		netlog_errf(err, err_size, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return CS_ESTORAGE;
	}
	close(fd);
	return 0;
}

/* ---------------------------------------------------------------- open/close */

/* Binds and listens on sa with a plain socket, so that a failure leaves no
 * uv handle to close. Returns the fd, or a negative errno. */
static int uvenv_bind(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, e;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 ||
	    listen(fd, UVENV_LISTEN_BACKLOG) != 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int uvenv_open(const struct uvenv_cfg *cfg, struct uvenv **out, char *err,
	       size_t err_size)
{
	struct sockaddr_in listen_sa, adv_sa, real_sa, dial_sa = {.sin_family = AF_INET};
	socklen_t real_len = sizeof real_sa;
	bool dial_from;
	char why[UVENV_MESSAGE_BYTES];
	struct uvenv *u;
	bool fresh;
	int fd, rv;

	assert(cfg != NULL);
	assert(out != NULL);
	netlog_errf(err, err_size, "%s", "");
	if (!cfg->loop || !cfg->state_dir || !*cfg->state_dir) {
		netlog_errf(err, err_size, "%s", cfg->loop ? "no state dir" : "no loop");
		return CS_EINVAL;
	}
	if (uvenv_parse_addr(cfg->listen_addr, &listen_sa, why, sizeof why) != 0) {
		netlog_errf(err, err_size, "listen address %s", why);
		return CS_EINVAL;
	}
	if (cfg->advertise_addr &&
	    uvenv_parse_addr(cfg->advertise_addr, &adv_sa, why, sizeof why) != 0) {
		netlog_errf(err, err_size, "advertise address %s", why);
		return CS_EINVAL;
	}
	dial_from = cfg->dial_from && *cfg->dial_from;
	if (dial_from && inet_pton(AF_INET, cfg->dial_from, &dial_sa.sin_addr) != 1) {
		netlog_errf(err, err_size,
			    "dial-from address \"%.64s\": not a dotted IPv4 address",
			    cfg->dial_from);
		return CS_EINVAL;
	}
	rv = uvenv_state_check(cfg->state_dir, &fresh, err, err_size);
	if (rv != 0)
		return rv;
	u = calloc(1, sizeof *u);
	if (!u || !(u->state_dir = strdup(cfg->state_dir)) ||
	    !(u->rbuf = malloc(UVENV_READ_CHUNK_BYTES)) ||
	    !(u->tls_dir = malloc(strlen(cfg->state_dir) + 5))) {
		if (u)
			uvenv_free(u);
		netlog_errf(err, err_size, "out of memory");
		return CS_ENOMEM;
	}
	u->random_used = sizeof u->random_pool; /* empty: the first draw fills it */
	sprintf(u->tls_dir, "%s/tls", cfg->state_dir);
	u->wall_now_s = cfg->wall_now_s;
	u->wall_data = cfg->wall_data;
	fd = uvenv_bind(&listen_sa);
	if (fd < 0) {
		netlog_errf(err, err_size, "%s: %s", cfg->listen_addr,
			    fd == -EADDRINUSE ? "address already in use" : strerror(-fd));
		rv = fd == -EADDRINUSE ? CS_EADDRINUSE : CS_EINVAL;
		goto free_u;
	}
	if (getsockname(fd, (struct sockaddr *)&real_sa, &real_len) != 0) {
		netlog_errf(err, err_size, "%s: %s", cfg->listen_addr, strerror(errno));
		rv = CS_EINVAL;
		goto close_fd;
	}
	{
		const char *a =
			cfg->advertise_addr ? cfg->advertise_addr : cfg->listen_addr;
		const char *colon = strrchr(a, ':');
		unsigned port = ntohs(real_sa.sin_port);
		if (cfg->advertise_addr && adv_sa.sin_port != 0)
			port = ntohs(adv_sa.sin_port);
		assert(colon != NULL);
		rv = snprintf(u->addr, sizeof u->addr, "%.*s:%u", (int)(colon - a), a,
			      port);
		if (rv < 0 || (size_t)rv >= sizeof u->addr) {
			netlog_errf(err, err_size, "address '%s' too long", a);
			rv = CS_EINVAL;
			goto close_fd;
		}
	}
	if (fresh && (rv = uvenv_state_make(cfg->state_dir, err, err_size)) != 0)
		goto close_fd;
	/* 0700 whatever the umask, and whether it existed or not: what the
	 * node keeps (tokens, task specs with their env) is its own */
	{
		char version[4096];
		snprintf(version, sizeof version, "%s/VERSION", cfg->state_dir);
		if (chmod(cfg->state_dir, 0700) != 0 || chmod(version, 0600) != 0) {
			netlog_errf(err, err_size, "chmod %s: %s", cfg->state_dir,
				    strerror(errno));
			rv = CS_ESTORAGE;
			goto close_fd;
		}
	}
	rv = uvenv_identity_load(u, err, err_size);
	if (rv != 0)
		goto close_fd;
	{
		char tw[TLS_WHY_BYTES];
		rv = uvenv_tls_rebuild(u, tw);
		if (rv != 0) {
			netlog_errf(err, err_size, "%s: %s", u->tls_dir, tw);
			rv = CS_ESTORAGE;
			goto close_fd;
		}
	}

	u->env.ops = &uvenv_ops;
	u->env.impl = u;
	u->loop = cfg->loop;
	snprintf(u->node, sizeof u->node, "%s", cfg->name ? cfg->name : "");
	u->docker = cfg->docker;
	u->dataplane = cfg->dataplane;
	u->crypttun = cfg->dataplane ? cfg->crypttun : NULL;
	if (u->dataplane) {
		/* uvenv_ops plus the data plane's two ops: one table, so that
		 * an op added to it is never missing here */
		u->ops_dp = uvenv_ops;
		u->ops_dp.net_set = uvenv_net_set;
		u->ops_dp.net_remove = uvenv_net_remove;
		u->ops_dp.net_error = uvenv_net_error;
		u->env.ops = &u->ops_dp;
		dataplane_set_log(u->dataplane, uvenv_dataplane_log, u);
	}
	u->log_out = cfg->log_out ? cfg->log_out : stderr;
	u->log_level = cfg->log_level;
	u->vcache = cfg->vcache;
	if (!u->vcache) {
		/* without one, peers are checked each time (no memory is no
		 * reason to refuse them) */
		u->vcache = uvenv_vcache_new(UVENV_VCACHE_SLOTS);
		u->vcache_own = u->vcache != NULL;
	}
	u->frame_max = cfg->frame_max ? cfg->frame_max : LIMIT_FRAME_BYTES_MAX;
	if (u->frame_max > UINT32_MAX - UVENV_HEADER_BYTES)
		u->frame_max = UINT32_MAX - UVENV_HEADER_BYTES;
	u->peer_queue_bytes_max = cfg->peer_queue_bytes_max ? cfg->peer_queue_bytes_max
							    : UVENV_PEER_QUEUE_BYTES_MAX;
	u->hello_timeout_ms =
		cfg->hello_timeout_ms ? cfg->hello_timeout_ms : UVENV_HELLO_TIMEOUT_MS;
	u->frame_ttl_ms = cfg->frame_ttl_ms ? cfg->frame_ttl_ms : UVENV_FRAME_TTL_MS;
	u->frame_deadline_ms =
		cfg->frame_deadline_ms ? cfg->frame_deadline_ms : UVENV_FRAME_DEADLINE_MS;
	u->in_buffered_max = cfg->in_buffered_bytes_max ? cfg->in_buffered_bytes_max
							: UVENV_IN_BUFFERED_BYTES_MAX;
	if (u->in_buffered_max < UVENV_READ_CHUNK_BYTES)
		u->in_buffered_max = UVENV_READ_CHUNK_BYTES;
	u->idle_timeout_ms =
		cfg->idle_timeout_ms ? cfg->idle_timeout_ms : UVENV_IDLE_TIMEOUT_MS;
	u->peer_idle_ms = cfg->peer_idle_ms ? cfg->peer_idle_ms : UVENV_PEER_IDLE_MS;
	u->handshakes_max =
		cfg->handshakes_max ? cfg->handshakes_max : UVENV_HANDSHAKES_MAX;
	u->dial_from = dial_from;
	u->dial_sa = dial_sa;
	u->handshake_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
							    : UVENV_HANDSHAKE_TIMEOUT_MS;
	u->timer_next_id = 1;
	if (cfg->clock) {
		assert(cfg->clock->loop == u->loop);
		u->clock = cfg->clock;
	} else {
		uvenv_clock_init(&u->own_clock, u->loop);
		u->own_clock.tick.data = u; /* closed as one of u's own */
		u->clock = &u->own_clock;
		u->handles_live++;
	}

	u->on_exit = cfg->on_exit;
	u->exit_data = cfg->exit_data;
	uv_timer_init(u->loop, &u->exit_timer);
	u->exit_timer.data = u;
	u->handles_live++;
	uv_timer_init(u->loop, &u->sweep);
	u->sweep.data = u;
	u->handles_live++;
	uv_prepare_init(u->loop, &u->cork);
	u->cork.data = u;
	u->handles_live++;
	uv_idle_init(u->loop, &u->notify);
	u->notify.data = u;
	u->handles_live++;
	uv_timer_start(&u->sweep, uvenv_sweep, uvenv_sweep_ms(u), uvenv_sweep_ms(u));
	uv_unref((uv_handle_t *)&u->sweep); /* it alone keeps no loop running */
	uv_tcp_init(u->loop, &u->listener);
	u->listener.data = u;
	u->handles_live++;
	rv = uv_tcp_open(&u->listener, fd);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&u->listener, UVENV_LISTEN_BACKLOG,
			       uvenv_accept);
	if (rv != 0) {
		/* the handle is closed through the loop: free u there */
		netlog_errf(err, err_size, "%s: %s", cfg->listen_addr, uv_strerror(rv));
		if (uv_fileno((uv_handle_t *)&u->listener, &(uv_os_fd_t){0}) != 0)
			close(fd);
		uvenv_close(u);
		return CS_EINVAL;
	}
#if UVENV_HAS_RESOLVER
	if (u->dataplane)
		uvenv_resolver_start(u);
#endif
	if (strncmp(u->addr, "0.0.0.0:", 8) == 0)
		uvenv_logf(u, ENV_LOG_WARN,
			   "msg=\"advertised address is not reachable by peers: give an "
			   "advertise address\" addr=%s",
			   u->addr);
	*out = u;
	return 0;

close_fd:
	close(fd);
free_u:
	uvenv_free(u);
	return rv;
}

struct env *uvenv_env(struct uvenv *u)
{
	return &u->env;
}

const char *uvenv_addr(const struct uvenv *u)
{
	return u->addr;
}

void uvenv_set_log_node(struct uvenv *u, const char *node_id)
{
	snprintf(u->node, sizeof u->node, "%s", node_id ? node_id : "");
}

const char *uvenv_storage_error(const struct uvenv *u)
{
	return u->storage_error;
}

/* The close callback of a handle of u itself (its data is u): the
 * listener, the sweep, exit and env timers' tick. */
static void uvenv_own_close_cb(uv_handle_t *h)
{
	uvenv_handle_gone(h->data);
}

void uvenv_close(struct uvenv *u)
{
	assert(u != NULL);
	assert(!u->closing);
	u->closing = true;
	u->listening = false;
	u->recv_cb = NULL;
	u->peer_cb = NULL;
#if UVENV_HAS_RESOLVER
	if (u->resolver) {
		resolver_stop(u->resolver); /* frees itself as its handles close */
		u->resolver = NULL;
	}
#endif
	/* the rules stay in the kernel for the next process to adopt (as the
	 * bridges do); only the memory goes */
	while (u->lb_count > 0)
		uvenv_lb_drop(u, u->lb_count - 1, false);
	free(u->lbs);
	u->lbs = NULL;

	while (u->timer_count > 0)
		uvenv_timer_kill(u, u->timers[u->timer_count - 1]);
	free(u->timers);
	u->timers = NULL;
	if (u->clock == &u->own_clock) {
		u->own_clock.closed = true;
		free(u->own_clock.heap);
		u->own_clock.heap = NULL;
		uv_timer_stop(&u->own_clock.tick);
		uv_close((uv_handle_t *)&u->own_clock.tick, uvenv_own_close_cb);
	} else {
		uvenv_clock_rearm(u->clock);
	}
	u->timer_count = u->timer_cap = 0;
	uv_timer_stop(&u->sweep);
	uv_close((uv_handle_t *)&u->sweep, uvenv_own_close_cb);
	uv_prepare_stop(&u->cork);
	uv_close((uv_handle_t *)&u->cork, uvenv_own_close_cb);
	uv_idle_stop(&u->notify);
	uv_close((uv_handle_t *)&u->notify, uvenv_own_close_cb);
	free(u->notices);
	u->notices = NULL;
	u->notice_count = u->notice_cap = 0;
	uv_timer_stop(&u->exit_timer);
	uv_close((uv_handle_t *)&u->exit_timer, uvenv_own_close_cb);

	while (u->ins)
		uvenv_in_close(u->ins, NULL);
	free(u->conn_tab);
	u->conn_tab = NULL;
	u->conn_tab_cap = 0;

	for (size_t i = 0; i < u->bucket_count; i++) {
		struct uvenv_peer *p = u->buckets[i];
		while (p) {
			struct uvenv_peer *next = p->next_in_bucket;
			while (p->head) {
				struct uvenv_frame *f = p->head;
				p->head = f->next;
				free(f);
			}
			if (p->out) {
				struct uvenv_out *o = p->out;
				o->closing = true;
				o->peer = NULL;
				uv_close((uv_handle_t *)&o->handle, uvenv_out_close_cb);
			}
			uv_close((uv_handle_t *)&p->backoff, uvenv_peer_close_cb);
			p = next;
		}
	}
	free(u->buckets);
	u->buckets = NULL;
	u->bucket_count = u->peer_count = 0;

	while (u->dbs) {
		struct uvenv_db *d = u->dbs;
		u->dbs = d->next;
		sqlite3_close_v2(d->db);
		free(d);
	}
	uv_close((uv_handle_t *)&u->listener, uvenv_own_close_cb);
}
