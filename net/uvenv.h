/* uvenv: the real world's `struct env` (core/env.h) on one libuv loop: the
 * loop's clock and timers, mutual TLS 1.3 over TCP between nodes
 * (net/tls; length-prefixed frames after a hello naming the dialer's
 * advertised address, one outgoing connection per peer redialled with
 * backoff), the node's identity (its key, certificate and trusted roots in
 * STATE_DIR/tls/, checked with core/pki), sqlite files in the node's state
 * dir, the OS's randomness, logfmt lines, and Docker (net/docker) as the
 * executor. swarmd
 * and the tests make one per node; everything runs on the caller's loop, no
 * thread anywhere. The uvenv owns every handle, buffer and sqlite handle it
 * makes and frees them after uvenv_close, in its last close callback.
 * Peer notices (env_peer_cb) are about its outgoing connections: "up" when
 * one is connected, "down" when one ends or a connect fails; each is told
 * from the loop's idle phase, in order, never from inside an env call.
 * Incoming connections in their TLS handshake are at most handshakes_max:
 * past it, accepting pauses (the kernel's backlog holds the rest) until
 * one ends. */
#ifndef NET_UVENV_H
#define NET_UVENV_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "core/env.h"
#include "core/limits.h"

struct dataplane;
struct docker;
struct uvenv;

/* What a node's TCP peer may hold queued (not yet in the kernel) before
 * send() answers CS_EAGAIN. */
#define UVENV_PEER_QUEUE_BYTES_MAX (8u * 1024 * 1024)
/* Redial backoff after a failed or broken connection, ±25% jitter. */
#define UVENV_BACKOFF_MIN_MS 100u
#define UVENV_BACKOFF_MAX_MS 5000u
/* Incoming connections held at once; more are accepted and closed. */
#define UVENV_CONNS_IN_MAX 16384u
/* An incoming connection that has not sent its hello by then is closed. */
#define UVENV_HELLO_TIMEOUT_MS 10000u
/* An incoming connection that began a frame (part of its header or payload
 * is buffered) and has not completed it by then is closed: a peer cannot
 * hold a half-sent frame, and the memory it costs, for ever. A whole
 * LIMIT_FRAME_BYTES_MAX frame (a snapshot's chunk) in 30 s needs about
 * 1.2 Mbit/s: any link a cluster runs on. */
#define UVENV_FRAME_DEADLINE_MS 30000u
/* What the read buffers of all incoming connections may hold at once (their
 * capacity, so a connection that sent one byte of a frame counts the chunk
 * it holds). A read that would pass it first frees the buffers of
 * connections with nothing partly read, then closes the connection whose
 * incomplete frame began the longest ago (see uvenv_in_make_room). */
#define UVENV_IN_BUFFERED_BYTES_MAX (64u * 1024 * 1024)
/* A frame still queued (its peer not connected) this long after send() is
 * dropped: the env may lose messages, and a late one is worth less than the
 * memory and the redials it costs. Once a peer's queue is empty, redialling
 * it stops until the next send. */
#define UVENV_FRAME_TTL_MS 10000u
/* An incoming connection that sent nothing this long is closed (its peer
 * dials again at its next send): idle connections do not pile up. Every
 * cswarm peer talks far more often (heartbeats every few seconds). */
#define UVENV_IDLE_TIMEOUT_MS 300000u
/* A peer address with no connection, nothing queued and no send this long
 * is forgotten: the table of peers does not grow with every address ever
 * named. */
#define UVENV_PEER_IDLE_MS 60000u
/* Incoming connections in their TLS handshake at once; more are accepted
 * and closed at once, so that a flood of handshakes (each costs the server
 * a signature) cannot starve established sessions. (To become a LIMIT_ of
 * core/limits.h.) */
#define UVENV_HANDSHAKES_MAX LIMIT_TLS_HANDSHAKES_MAX
/* A connection (either way) whose TLS handshake has not completed by then,
 * counted from accept or dial, is closed. */
#define UVENV_HANDSHAKE_TIMEOUT_MS 10000u
/* Certificates this env makes start this much before now: a peer whose
 * clock is behind ours by up to that still takes them. */
#define UVENV_CERT_BACKDATE_S 60
/* The content of STATE_DIR/VERSION this build reads and writes. */
#define UVENV_STATE_VERSION "cswarm-state 1\n"

struct uvenv_cfg {
	uv_loop_t *loop;	       /* borrowed; must outlive the uvenv */
	const char *listen_addr;       /* "HOST:PORT": dotted IPv4 or "localhost";
				       port 0 = any free port (tests) */
	const char *advertise_addr;    /* what peers call us; NULL = listen_addr
				       (with the real port when 0) */
	const char *state_dir;	       /* created 0700 if missing */
	const char *name;	       /* node name in log lines (hostname) */
	struct docker *docker;	       /* borrowed; NULL: no executor (CS_ENOTSUP) */
	FILE *log_out;		       /* borrowed; NULL: stderr */
	enum env_log_level log_level;  /* lines below it are dropped */
	size_t frame_max;	       /* 0: LIMIT_FRAME_BYTES_MAX */
	size_t peer_queue_bytes_max;   /* 0: UVENV_PEER_QUEUE_BYTES_MAX */
	unsigned hello_timeout_ms;     /* 0: UVENV_HELLO_TIMEOUT_MS */
	unsigned frame_deadline_ms;    /* 0: UVENV_FRAME_DEADLINE_MS */
	size_t in_buffered_bytes_max;  /* 0: UVENV_IN_BUFFERED_BYTES_MAX; at
				       least one read chunk (64 KiB) */
	unsigned frame_ttl_ms;	       /* 0: UVENV_FRAME_TTL_MS */
	unsigned idle_timeout_ms;      /* 0: UVENV_IDLE_TIMEOUT_MS */
	unsigned peer_idle_ms;	       /* 0: UVENV_PEER_IDLE_MS */
	unsigned handshakes_max;       /* 0: UVENV_HANDSHAKES_MAX */
	unsigned handshake_timeout_ms; /* 0: UVENV_HANDSHAKE_TIMEOUT_MS */
	/* The wall clock in seconds since the epoch, for certificates' times
	 * (tests); NULL: time(). */
	int64_t (*wall_now_s)(void *data);
	void *wall_data;
	/* The program called env exit (a durable write failed): on_exit runs
	 * once, from the loop after the current callback, with the reason
	 * (borrowed for the call). NULL: the loop is stopped (uv_stop). */
	void (*on_exit)(void *data, const char *why);
	void *exit_data;
	/* appended (issue 17): the node's data plane (net/dataplane),
	 * borrowed; NULL: none, and env's net_set/net_remove are NULL (the
	 * agent rejects tasks on networks). With one, a container's network
	 * attachments join the data plane's bridges (docker_ctl_open_net). */
	struct dataplane *dataplane;
	/* appended (issue 17 encryption): the node's tunnel for encrypted
	 * overlays (net/crypttun), borrowed; NULL: an encrypted network's
	 * net_set fails (CS_ENOTSUP: never carried in clear) */
	struct crypttun *crypttun;
	/* appended (issue 18): where peer certificates verified against the
	 * roots are remembered (uvenv_vcache_new), borrowed: several uvenvs
	 * of one loop may share one (swarmload's agents all check the same
	 * managers' certificates). NULL: the uvenv keeps one of its own of
	 * UVENV_VCACHE_SLOTS. */
	struct uvenv_vcache *vcache;
	/* appended (issue 18): the env timers' clock (uvenv_clock_new),
	 * borrowed: the uvenvs of one loop may share one (swarmload's agents),
	 * so all their timers are one heap on one libuv timer. NULL: the
	 * uvenv keeps one of its own. */
	struct uvenv_clock *clock;
	/* appended (issue 18): the IPv4 address this node's outgoing
	 * connections leave from ("127.1.0.1"), its port the kernel's; NULL
	 * or "": the kernel's choice. swarmload gives each agent an address
	 * of loopback's own, as ten thousand machines have ten thousand:
	 * from 127.0.0.1 alone, the kernel's search for a free port
	 * (__inet_hash_connect) was 8% of the CPU in a reconnect wave. */
	const char *dial_from;
};

/* The clock of env timers (issue 18): each env timer was a libuv timer
 * handle of its own, and with thousands of agents' timers on one loop
 * libuv's heap (uv_timer_stop) was swarmload's first cost. A clock is one
 * heap of env timers by (deadline, arming order), the order libuv keeps,
 * with one libuv timer armed for the earliest. */
struct uvenv_clock;

/* uvenv_clock_new makes a clock on loop, or NULL (no memory). Used from
 * loop's thread only. uvenv_clock_free, after every uvenv using it closed,
 * closes its handle: the loop must run once more to free it. */
struct uvenv_clock *uvenv_clock_new(uv_loop_t *loop);
void uvenv_clock_free(struct uvenv_clock *k);

/* Peer certificates verified against the roots (issue 18): pki_verify of
 * a peer's certificate was a fifth of a manager's CPU and a quarter of
 * swarmload's in a reconnect wave, the same certificates checked again
 * and again. Remembered by the digest of the certificate's bytes and of
 * the roots (successes only, direct-mapped: a newer entry replaces an
 * older one in its slot), each good while the wall clock is within the
 * certificate's validity; refusals are checked anew every time. */
#define UVENV_VCACHE_SLOTS 4096u
struct uvenv_vcache;

/* uvenv_vcache_new makes a cache of slots entries (rounded up to a power
 * of two, at least 1), or NULL (no memory). Used from one loop's thread
 * only; freed with uvenv_vcache_free after every uvenv using it closed. */
struct uvenv_vcache *uvenv_vcache_new(size_t slots);
void uvenv_vcache_free(struct uvenv_vcache *c);

/* uvenv_vcache_counts: checks answered from the cache (hits) and by
 * pki_verify (misses), since it was made. */
void uvenv_vcache_counts(const struct uvenv_vcache *c, uint64_t *hits, uint64_t *misses);

/* uvenv_vcache_of: the cache u uses (its own or the one it was given). */
struct uvenv_vcache *uvenv_vcache_of(struct uvenv *u);

/* uvenv_open binds and listens on cfg->listen_addr, checks (or makes) the
 * state dir, loads the node's identity from STATE_DIR/tls/ (node.key, the
 * PKCS#8 DER key; node.crt, its certificate, DER; roots, the trusted roots,
 * each a 4-byte big-endian length then DER; pending.key, the key of the
 * last CSR until pki_install), and returns the env in *out. A node without
 * a certificate serves TLS with a throwaway self-signed one that no peer
 * with roots accepts. Every cfg string is copied. Fails with a one-line
 * message in err (always NUL-terminated when err_size > 0): CS_EINVAL (no
 * loop or state dir, a malformed address), CS_EADDRINUSE (the port is
 * taken), CS_ESTORAGE (the state dir cannot be made or read; a tls/ file
 * that does not parse; a tls/node.crt that is not the certificate of
 * tls/node.key), CS_EVERSION (the state dir's VERSION is not
 * UVENV_STATE_VERSION: nothing there is touched), CS_ENOMEM. On failure
 * nothing is left allocated, except
 * when libuv refuses the bound socket (not seen in practice): then a handle
 * is being closed, and running the loop frees what is left. */
int uvenv_open(const struct uvenv_cfg *cfg, struct uvenv **out, char *err,
	       size_t err_size);

/* uvenv_env returns the env (owned by u, valid until uvenv_close). */
struct env *uvenv_env(struct uvenv *u);

/* uvenv_addr returns the advertised address, with the real port (owned by
 * u). */
const char *uvenv_addr(const struct uvenv *u);

/* uvenv_set_log_node names the node in log lines from now on (node_id is
 * copied; cut at LIMIT_NAME_BYTES_MAX). */
void uvenv_set_log_node(struct uvenv *u, const char *node_id);

/* uvenv_storage_error returns the message of the last failed storage_open
 * ("" when none); owned by u. */
const char *uvenv_storage_error(const struct uvenv *u);

/* uvenv_keep_peers keeps a connection open to each of addrs[0..n) (its own
 * address skipped) whether or not frames wait for it: dialled now, and
 * again with the usual backoff whenever it closes or fails (the other side
 * closes it after its idle limit), until a later call leaves it out. Issue
 * 18: a manager keeps one to every other member, so that the vote requests
 * of an election go on connections made before a dead leader's agents fill
 * the listener's backlog (dialled during that storm, a follower waited in
 * the queue behind thousands of agents, and the election took 30 to 61 s
 * at 10,000 agents). Borrows addrs. Returns 0, or CS_EINVAL (an address
 * that does not parse: skipped), CS_ENOMEM or CS_ECLOSED (the others are
 * kept all the same), or CS_ELIMIT (more than LIMIT_MANAGERS_MAX: none). */
int uvenv_keep_peers(struct uvenv *u, const char *const *addrs, size_t n);

/* uvenv_peer_count returns how many peer addresses u keeps (for tests). */
size_t uvenv_peer_count(const struct uvenv *u);

/* uvenv_tls_writes returns how many times u handed plaintext to TLS for
 * frames (each seals at least one record): for tests and profiles. */
uint64_t uvenv_tls_writes(const struct uvenv *u);

/* uvenv_in_buffered_bytes returns what the read buffers of u's incoming
 * connections hold now (their capacity; for tests). Never more than the
 * cfg's in_buffered_bytes_max. */
size_t uvenv_in_buffered_bytes(const struct uvenv *u);

/* uvenv_in_count returns how many incoming connections u holds, and
 * uvenv_in_waiting how many of them wait for a handshake slot (accepted
 * past handshakes_max; issue 18). */
size_t uvenv_in_count(const struct uvenv *u);
size_t uvenv_in_waiting(const struct uvenv *u);

/* uvenv_close drops every queued frame, closes every connection, timer and
 * sqlite handle, and calls no env callback again (from this call on). The
 * caller then runs the loop until it is empty; u is freed in the last close
 * callback. The docker executor is the caller's to close. */
void uvenv_close(struct uvenv *u);

/* uvenv_parse_addr parses "HOST:PORT" (dotted IPv4 or "localhost"; port
 * 1..65535, or 0 meaning any free port, which only a listen address may use)
 * into *out. Returns 0, or CS_EINVAL with a message in err naming what was
 * given and what is expected. */
int uvenv_parse_addr(const char *s, struct sockaddr_in *out, char *err, size_t err_size);

/* ---------------------------------------------------------------- the wire
 * Pure functions of the incoming byte stream (exposed for tests and the
 * fuzz targets in tests/fuzz/; the connections use them). */

/* uvenv_frame_next looks at the start of an incoming connection's bytes
 * (buf, len, borrowed): a frame is a 4-byte big-endian length n then n
 * payload bytes; a connection's first frame (hello false) is its hello, of
 * 5..4+LIMIT_ADDR_BYTES_MAX bytes. Returns 1 with *payload_len = n when buf
 * starts with a whole frame (it takes 4 + n bytes), 0 when it holds no whole
 * frame yet and nothing is wrong so far, CS_ECORRUPT with why
 * (NUL-terminated when why_size > 0) when the connection is to be closed: an
 * empty frame, one over frame_max, a first frame not of a hello's size. */
int uvenv_frame_next(const uint8_t *buf, size_t len, bool hello, size_t frame_max,
		     size_t *payload_len, char *why, size_t why_size);

/* uvenv_hello_parse checks a hello's payload (p, n bytes, borrowed): "CSW1"
 * then the dialer's advertised address, 1..LIMIT_ADDR_BYTES_MAX bytes of
 * printable ASCII without space, quote or backslash. Returns true with the
 * address in from (NUL-terminated), or false with why and from untouched. */
bool uvenv_hello_parse(const uint8_t *p, size_t n, char from[LIMIT_ADDR_BYTES_MAX + 1],
		       char *why, size_t why_size);

#endif
