/* record: swarmd --record FILE (issue 19). An env wrapper (as net/envproxy)
 * put between a real env (a uvenv) and the node program: everything that
 * crosses the env seam of that node goes into FILE, so that sim/replay.c
 * can run the same core code against it and take the same decisions. The
 * core does not learn it is recorded: it gets an env whose ops forward.
 *
 * What is recorded (and why it is enough: core/ reads the world through
 * env.h only, keeps no globals and iterates in id order, so its behaviour is
 * a function of its configuration, its storage at start and the sequence of
 * answers the env gives it):
 *  - a header per process start: the format version, the node's
 *    configuration (struct node_cfg, every field core reads, hooks as
 *    present/absent), its self address, which optional ops its env has;
 *  - inputs, in the order they happened: the program's start and stop,
 *    timer firings (by the id the env gave), messages received (whole:
 *    sender address and bytes), peer notices, executor results (by
 *    controller and request number), ctl_list, logs_read results, control
 *    RPC calls coming from the daemon's sockets;
 *  - every answer the env gives a call of the core: now_ms and wall_ms
 *    values (the clock at each read, delta-coded), random draws, timer ids,
 *    return codes, the identity sender() proves, pki results (CSRs,
 *    certificates and keys the env made: its crypto and its clock), the
 *    contents of each sqlite database at its first open (the storage the
 *    core reads at start; what it writes later it reads back from the same
 *    replayed database);
 *  - the core's decisions, to check the replay against: messages sent
 *    (address, length and record_hash of the bytes, not the bytes), log
 *    lines (whole), timers armed and stopped, executor operations asked,
 *    control answers (length and hash).
 * Below the seam and never recorded: TLS, sockets, partial reads (the env
 * gives whole messages), Docker's HTTP, sqlite's files after the first
 * open, wall clock reads outside the env.
 *
 * Format (all integers LEB128 varints unless said; strings and byte strings
 * a varint length then the bytes). A file holds one or more segments, one
 * per process start (a restarted or re-executed swarmd appends):
 *   segment: "CSWREC\r\n" (8 bytes), varint version (RECORD_VERSION),
 *            varint header length, the header, then records;
 *   record:  varint length (of what follows), 1 byte kind (enum rec_kind),
 *            the kind's fields.
 * A segment ends at the next magic or the end of the file; a record cut by
 * the end (a SIGKILL) ends the recording there.
 *
 * Flush policy: records are buffered in memory and written with write(2)
 * (no fsync) when RECORD_BUF_BYTES are buffered, at the end of any input
 * whose callback left more than RECORD_FLUSH_BYTES buffered or came
 * RECORD_FLUSH_MS (env clock) after the last write, at program stop and at
 * close. A SIGKILL loses at most the last RECORD_FLUSH_MS of events (the
 * kernel keeps what write(2) took). A failed write is fatal to the
 * recording: the recorder says so once on stderr and stops recording (the
 * node goes on; the file ends at the last whole write), never a half
 * record in the middle of a file. */
#ifndef NET_RECORD_H
#define NET_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/control_rpc.h"
#include "core/env.h"
#include "core/node.h"

#define RECORD_MAGIC	   "CSWREC\r\n"
#define RECORD_MAGIC_BYTES 8u
#define RECORD_VERSION	   1u
#define RECORD_BUF_BYTES   (256u * 1024)
#define RECORD_FLUSH_BYTES (32u * 1024)
#define RECORD_FLUSH_MS	   50u

/* Kinds of records. Inputs (I) are what the replay feeds the core; calls
 * (C) are the core's calls to the env, with the env's answer. Appended,
 * never renumbered. */
enum rec_kind {
	REC_START = 1,	    /* I: now */
	REC_STOP,	    /* I: (the program stopped) */
	REC_TIMER,	    /* I: id */
	REC_RECV,	    /* I: from, bytes */
	REC_PEER,	    /* I: addr, up */
	REC_CTL_DONE,	    /* I: reqno, status, state, exit_code, health, message */
	REC_CTL_CLOSED,	    /* I: ctlno */
	REC_LIST_DONE,	    /* I: listno, status, count, {task, service, state, exit} */
	REC_LOGS_DONE,	    /* I: logsno, status, message, count, {time, stream, data} */
	REC_CONTROL,	    /* I: callno, request bytes */
	REC_NOW,	    /* C: zigzag delta from the last NOW */
	REC_WALL,	    /* C: value */
	REC_RANDOM,	    /* C: value */
	REC_TIMER_START,    /* C: delay, repeat, rv, id */
	REC_TIMER_STOP,	    /* C: id */
	REC_LISTEN,	    /* C: has_recv, has_peer, rv */
	REC_SEND,	    /* C: addr, len, hash (record_hash), rv */
	REC_REPLY,	    /* C: conn, len, hash, rv */
	REC_STORAGE,	    /* C: name, rv, first (0/1), [database image] */
	REC_LOG,	    /* C: level, msg */
	REC_CTL_OPEN,	    /* C: task_id, image, rv, ctlno */
	REC_CTL_DO,	    /* C: ctlno, op, rv, reqno */
	REC_CTL_CLOSE,	    /* C: ctlno */
	REC_CTL_LIST,	    /* C: rv, listno */
	REC_EXIT,	    /* C: why */
	REC_SENDER,	    /* C: identity */
	REC_PKI_CSR,	    /* C: cap, rv, bytes */
	REC_PKI_CA,	    /* C: cluster_id, life, rv, cert, key */
	REC_PKI_SIGN,	    /* C: csr hash, node_id, role, life, rv, cert */
	REC_PKI_INSTALL,    /* C: cert hash, root_count, rv */
	REC_PKI_PIN,	    /* C: digest hash, rv */
	REC_PKI_INFO,	    /* C: cert hash, rv, identity */
	REC_PKI_LOCK,	    /* C: set (0/1), rv */
	REC_PKI_UNLOCK,	    /* C: rv */
	REC_NET_SET,	    /* C: network_id, rv */
	REC_NET_REMOVE,	    /* C: network_id, rv */
	REC_LOGS_READ,	    /* C: task_id, rv, logsno */
	REC_CONTROL_ANSWER, /* C: callno, len, hash */
	REC_NET_ERROR,	    /* C: size, words */
	/* issue 17: before the REC_NET_SET of an encrypted network, the keys it
	 * was given by ids and a hash, never the keys: network_id, count,
	 * oldest id, primary id, newest id, keymgr_digest (0s: no key) */
	REC_NET_KEYS,
	REC_KIND_MAX
};

/* Which optional ops the recorded env had (header bit set). */
#define REC_HAS_WALL	  (1u << 0)
#define REC_HAS_LOCK	  (1u << 1)
#define REC_HAS_NET	  (1u << 2)
#define REC_HAS_LOGS	  (1u << 3)
#define REC_HAS_NET_ERROR (1u << 4)

/* record_hash is a 64-bit digest of len bytes of p (the digest a recording
 * keeps of what the core sent; the replay computes the same): 8 bytes a
 * step, multiply and xor-shift (not cryptographic: it tells a replay's
 * message from the recorded one, not an attacker's). */
static inline uint64_t record_hash(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ (len * 0x100000001b3ull);
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	for (; i < len; i++) {
		h = (h ^ b[i]) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h;
}

struct record;

/* record_open starts a recording into path (appending a new segment; the
 * file is created 0600: it holds the node's tokens and keys), of a node run
 * on real with cfg (borrowed for the recorder's life, as the program
 * borrows it). Returns 0 and *out, or a cs error with err saying why. */
int record_open(const char *path, struct env *real, const struct node_cfg *cfg,
		struct record **out, char *err, size_t n);

/* record_env is the env to give the program (valid until record_close). */
struct env *record_env(struct record *r);

/* record_program_start / record_program_stop run ops->start / ops->stop of
 * the program on record_env(r), recording them as inputs. */
int record_program_start(struct record *r, const struct env_program_ops *ops,
			 const void *cfg, void **state);
void record_program_stop(struct record *r, const struct env_program_ops *ops,
			 void *state);

/* record_control_call calls control_rpc_call(rpc, req, cb, data) as a
 * recorded input (the daemon's control socket and Docker API reach the
 * core this way, not through the env); its answer is recorded too. */
int record_control_call(struct record *r, struct control_rpc *rpc,
			const Cs__ControlRequest *req, control_rpc_cb cb, void *data);

/* record_bytes returns how many bytes were recorded so far (written and
 * buffered, headers included). */
uint64_t record_bytes(const struct record *r);

/* record_close flushes and closes the file and frees r (NULL: nothing).
 * The program must be stopped. */
void record_close(struct record *r);

/* ---- the encoding, shared with the replay (sim/replay.c decodes) */

/* A growing byte buffer. */
struct rec_buf {
	uint8_t *p;
	size_t len, cap;
	bool failed; /* out of memory: everything after is dropped and the
			recorder stops (said once) */
};
void rec_buf_u(struct rec_buf *b, uint64_t v);
void rec_buf_bytes(struct rec_buf *b, const void *p, size_t len);
void rec_buf_str(struct rec_buf *b, const char *s); /* NULL: "" with a flag */

/* record_cfg_encode appends the header for cfg on a node at self_addr whose
 * env has the optional ops `has` (REC_HAS_*) to b. */
void record_cfg_encode(struct rec_buf *b, const struct node_cfg *cfg,
		       const char *self_addr, unsigned has);

#endif
