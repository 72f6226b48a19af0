/* resolver: the DNS server the tasks of a node use (issue 17; SwarmKit's
 * embedded DNS, Docker's 127.0.0.11), on the node's libuv loop, called by the
 * data plane (net/dataplane.c) from net_set and net_remove. For each network
 * it listens on that network's gateway address (UDP and TCP, port 53), so a
 * query answers the names of the network it came from: a service's name and
 * aliases resolve to its VIP (vip mode) or to its running tasks' addresses
 * (dnsrr mode, rotated on each answer), "tasks.NAME" and "tasks.ALIAS" to the
 * tasks' addresses, each also with ".NETWORK" after it; AAAA and other types
 * of a known name get an empty NOERROR; any other name is forwarded to the
 * node's own resolvers (resolv.conf's nameservers, in order, each with a
 * timeout) and the answer relayed, SERVFAIL when none answers.
 *
 * DNS is parsed by hand (resolver_parse_query): only the header and the one
 * question are read, every read is bounds-checked, a compression pointer
 * must point backwards into the question (no loops), and the counts of the
 * other sections are never followed. Limits are here (net/ does not own
 * core/limits.h); a state over one is refused with CS_ELIMIT, an answer
 * over a UDP reply's 512 bytes is sent with TC set (the client asks again
 * over TCP, which carries all of it). */
#ifndef NET_RESOLVER_H
#define NET_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/env.h"

#define RESOLVER_NAME_TEXT_MAX	     253   /* a name in text, no final dot */
#define RESOLVER_NAMES_MAX	     65536 /* names of one network */
#define RESOLVER_ADDRS_MAX	     4096  /* addresses one name answers */
#define RESOLVER_UPSTREAMS_MAX	     3	   /* resolv.conf's MAXNS */
#define RESOLVER_FORWARDS_MAX	     1024  /* forwarded queries in flight */
#define RESOLVER_TCP_CONNS_MAX	     64	   /* open TCP connections, per network */
#define RESOLVER_PORT_PICKS	     32	   /* tries for one free TCP+UDP port (port 0) */
#define RESOLVER_TCP_PENDING_MAX     16	   /* forwards in flight per TCP connection */
#define RESOLVER_TCP_QUEUE_BYTES_MAX (1u << 20) /* answers a TCP client has not read */
#define RESOLVER_TCP_IDLE_MS	     10000	/* a TCP connection with nothing to do */
#define RESOLVER_UDP_REPLY_BYTES     512	/* RFC 1035; no EDNS */
#define RESOLVER_MSG_BYTES_MAX	     65535	/* one DNS message (TCP's length) */
#define RESOLVER_FORWARD_TIMEOUT_MS  2000	/* per upstream, by default */
#define RESOLVER_TTL_VIP_S	     600 /* Docker's; a VIP lives as long as its service */
#define RESOLVER_TTL_TASKS_S	     0	 /* task lists change: never cache them */

/* ---------------------------------------------------------------- codec */

enum resolver_rcode {
	RESOLVER_NOERROR = 0,
	RESOLVER_FORMERR = 1,
	RESOLVER_SERVFAIL = 2,
	RESOLVER_NXDOMAIN = 3,
	RESOLVER_NOTIMP = 4,
};

#define RESOLVER_TYPE_A	   1
#define RESOLVER_TYPE_AAAA 28
#define RESOLVER_TYPE_ANY  255
#define RESOLVER_CLASS_IN  1

struct resolver_question {
	uint16_t id;
	uint16_t flags;
	char name[RESOLVER_NAME_TEXT_MAX +
		  1];  /* lower case, dotted, no final dot; "" is the root */
	bool name_odd; /* a label holds '.', NUL or is not text: never ours */
	uint16_t qtype;
	uint16_t qclass;
	size_t end; /* offset just past the question */
};

/* resolver_parse_query reads the header and the one question of msg (len
 * bytes, borrowed) into *q. Returns 0; CS_ECORRUPT when it is not a query
 * one can answer: shorter than a header, a response (QR set), or (with
 * q->id valid, so that a FORMERR/NOTIMP answer can be made: *rcode set)
 * not exactly one question, a truncated or looping name, an opcode other
 * than QUERY. rcode may be NULL. */
int resolver_parse_query(const uint8_t *msg, size_t len, struct resolver_question *q,
			 enum resolver_rcode *rcode);

/* resolver_is_reply_to checks that msg is a response to q's question
 * (same id, QR set, one question, the same name in any case, type and
 * class). Returns true when it is. Borrows both. */
bool resolver_is_reply_to(const uint8_t *msg, size_t len,
			  const struct resolver_question *q);

/* resolver_encode_error writes an answer to the query msg (len bytes) with
 * rcode and no records into out (cap bytes): the question copied when it
 * parsed, none otherwise. Returns the length, or 0 when msg is not one to
 * answer (shorter than a header, or a response). */
size_t resolver_encode_error(const uint8_t *msg, size_t len, enum resolver_rcode rcode,
			     uint8_t *out, size_t cap);

/* ---------------------------------------------------------------- server */

struct resolver;

struct resolver_config {
	uint16_t port; /* 53; 0: any (tests; resolver_port says which) */
	/* the node's resolvers, "IPv4" or "IPv4:PORT", NULL-terminated, at
	 * most RESOLVER_UPSTREAMS_MAX; NULL or empty: other names SERVFAIL */
	const char *const *upstreams;
	uint64_t forward_timeout_ms; /* per upstream; 0: RESOLVER_FORWARD_TIMEOUT_MS */
	/* what went wrong and was not the caller's to see (a reply that could
	 * not be sent, a connection refused over the limit), as dataplane's
	 * log (msg borrowed for the call); NULL: stderr */
	void (*log)(void *log_data, enum env_log_level lvl, const char *msg);
	void *log_data;
};

/* resolver_start makes a resolver on loop, listening nowhere yet. Copies
 * cfg. Returns 0 and *out, CS_EINVAL (an upstream that is not an IPv4
 * address, too many upstreams) or CS_ENOMEM. */
int resolver_start(uv_loop_t *loop, const struct resolver_config *cfg,
		   struct resolver **out);

/* resolver_set answers st's names from now on for queries that arrive on
 * st->gateway:port (resolver_set_at: on listen_addr instead), replacing what
 * it answered for that network. The first set of a network binds UDP and
 * TCP sockets on that address, which must be this node's (the bridge's
 * gateway address, up). Borrows st. Returns 0; CS_EINVAL (a name too long,
 * an address that is not IPv4), CS_ELIMIT, CS_EADDRINUSE or CS_EEXEC (the
 * bind failed: its words logged), CS_ENOMEM. On error the network's names
 * are as they were. */
int resolver_set(struct resolver *r, const struct env_net_state *st);
int resolver_set_at(struct resolver *r, const struct env_net_state *st,
		    const char *listen_addr);

/* resolver_port returns the port network_id's UDP socket is bound to, 0
 * when it has none. */
uint16_t resolver_port(const struct resolver *r, uint64_t network_id);

/* resolver_remove stops answering for network_id and closes its sockets
 * (asynchronously; unknown ids are fine). Forwards in flight for it are
 * answered to nobody. */
void resolver_remove(struct resolver *r, uint64_t network_id);

/* resolver_stop closes everything; the resolver is freed once every handle
 * has closed (run the loop). r is not to be used after. */
void resolver_stop(struct resolver *r);

/* resolver_answer_local: the answer for msg (a query of len bytes) from
 * network_id's names, written into out (cap bytes: RESOLVER_UDP_REPLY_BYTES
 * for UDP; more records than fit set TC). Returns the answer's length; 0
 * when the name is not the network's (forward it) or msg is not a query to
 * answer (drop it). A malformed query gets FORMERR. For tests and the
 * server itself. */
size_t resolver_answer_local(struct resolver *r, uint64_t network_id, const uint8_t *msg,
			     size_t len, uint8_t *out, size_t cap);

/* resolver_read_resolv_conf reads the "nameserver" lines of path (the
 * first RESOLVER_UPSTREAMS_MAX IPv4 ones, as the C library does) into
 * out[] (each up to 46 bytes), returning how many (0..max) or CS_ENOENT
 * when it cannot be read. *skipped counts the IPv6 or malformed ones (the
 * caller says so). */
int resolver_read_resolv_conf(const char *path, char out[RESOLVER_UPSTREAMS_MAX][46],
			      int *skipped);

#endif
