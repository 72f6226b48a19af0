/* raftio: libraft's struct raft_io, built once on core/env.h, for both
 * worlds. Time, randomness and the tick come from the env; messages travel
 * over the env transport encoded as protobuf (core/api.proto RaftMessage in
 * a Wire frame); term, vote, log entries and the snapshot live in the node's
 * sqlite storage "raft", durable before the callbacks that report them.
 *
 * The manager owns a struct raftio and hands &rio->io to raft_init. Frames
 * that arrive for raft are passed in with raftio_recv. Completions (append,
 * send, snapshot put/get) are delivered from a zero-delay env timer, never
 * inside the call that started them. raftio_crash is the process dying: it
 * drops everything and calls nothing.
 *
 * A failed durable write is fatal to the log: raftio logs it, fails every
 * later call, completes nothing more (not even with an error: libraft would
 * reuse the entry's index) and calls env exit; the node restarts from what
 * its disk holds and catches up from its peers.
 *
 * At rest (SwarmKit's key manager), every entry's payload and the
 * snapshot's data are sealed (core/seal.h, AES-256-GCM) with a data
 * encryption key (DEK) named by a key id stored beside them, and bound to
 * their place (an entry's index, term and type; a snapshot's index, term and
 * configuration) so that a row moved or replayed elsewhere fails to open.
 * The DEKs are kept in the database sealed with the key encryption key
 * (KEK): a random node-local key kept beside them in the clear (the
 * default: a copied log is useless without the node's database, a stolen
 * disk is not protected), or with autolock a key derived from an unlock key
 * the operator holds, never stored: raftio then opens LOCKED and libraft
 * cannot load or start until raftio_unlock. The term, the vote, the
 * configurations and the indexes stay in the clear. A process seals with a
 * DEK it drew itself (its first write draws one; raftio_rotate_dek, and
 * every LIMIT_RAFT_DEK_ROTATE_MS, draw another), with a counter as the
 * nonce: no nonce ever repeats under a key. A DEK no row uses any more (after
 * a snapshot compacted the log) is deleted. */
#ifndef CS_RAFTIO_H
#define CS_RAFTIO_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/limits.h"
#include "core/seal.h"

struct raftio_dek; /* an opened data encryption key */
struct raftio_req; /* a pending completion */
struct raftio_out; /* an InstallSnapshot going out in chunks */
struct sqlite3_stmt;

struct raftio {
	struct raft_io io; /* first: libraft's view */
	struct env *env;
	struct sqlite3 *db;
	raft_id id;
	char address[64];
	unsigned tick_ms;
	raft_io_tick_cb tick_cb;
	raft_io_recv_cb recv_cb;
	env_timer_id tick_timer;
	env_timer_id flush_timer;
	struct raftio_req *pending_head, *pending_tail;
	const char *why; /* init's refusal, when one of raftio's own checks
			    failed (a static string; NULL: sqlite's error) */
	bool closing;
	/* The leader lease, as etcd's: a follower that has heard nothing from
	 * a leader for lease_ms grants votes again (libraft alone waits for
	 * its own randomized timer, which can take two timeouts). A leader's
	 * own AppendEntries sent are contact: it never lets its lease lapse. */
	ms_t lease_ms;
	ms_t last_leader_contact_ms;
	/* libraft (0.15 to 0.18) answers a successful AppendEntries with its
	 * whole log's last index, even past the entries the leader checked:
	 * a leader then counts a follower's stale, conflicting entries as
	 * replicated (the simulator found it: a follower stuck forever, and
	 * commits counted on entries that differ). We clamp each successful
	 * answer to the prefix the leader's requests really verified. */
	bool in_append;		/* inside recv of an AppendEntries */
	bool answered;		/* ... and libraft answered it at once */
	uint64_t append_end;	/* its prev_log_index + n_entries */
	uint64_t verified_term; /* term of verified_end */
	uint64_t verified_end;	/* highest prefix verified in that term */
	bool dead;		/* raftio_crash: every call fails, nothing fires */
	/* A durable write failed (an append or its commit, a truncation, the
	 * term or vote, a snapshot): every later call fails, nothing pending
	 * completes, and env exit was called (see raftio.c raftio_break). */
	bool broken;
	/* Appends of one turn of the loop share one transaction, committed
	 * (durable) before any of their callbacks runs: one sync for many. */
	bool batch_open;
	bool last_known; /* last_index holds the log's last index */
	uint64_t last_index;
	struct sqlite3_stmt *insert; /* the append's statement, kept */
	size_t frame_max; /* a frame's bytes (0: LIMIT_FRAME_BYTES_MAX; tests) */
	/* Messages larger than a frame (libraft sends every entry from a
	 * follower's next index in one AppendEntries, a whole snapshot in one
	 * InstallSnapshot): an AppendEntries goes with the prefix of its
	 * entries that fits, and its send reports RAFT_TOOBIG, which puts
	 * libraft's progress for that follower back to probing from its match
	 * index (not past entries never sent); the follower's answer, clamped
	 * to what it received, moves it on. An InstallSnapshot goes in chunks,
	 * as fast as the transport's queue takes them, its send completing
	 * once the last is queued; the receiver reassembles one at a time. */
	struct raftio_out *outs; /* snapshots going out */
	uint64_t next_chunk_id;
	struct {
		uint64_t from_id, chunk_id, term, index;
		uint8_t *buf; /* raft_malloc'd: total bytes */
		uint64_t total, got;
		ms_t last_ms;
	} in;		      /* the snapshot coming in (buf NULL: none) */
	uint64_t cut_appends; /* counters */
	uint64_t chunks_sent;
	uint64_t snapshots_reassembled;
	uint64_t reassemblies_dropped;
	uint64_t sent_bytes; /* counters */
	uint64_t recv_frames;
	uint64_t recv_malformed;
	/* State at rest (see above and raftio.c, "keys"). */
	bool locked;		     /* autolock, not unlocked yet: no KEK */
	bool autolock;		     /* the KEK comes from an unlock key */
	uint8_t kek[SEAL_KEY_BYTES]; /* while !locked */
	struct raftio_dek *deks;     /* opened DEKs, in id order */
	size_t dek_count, dek_cap;
	uint64_t wkey_id;     /* the DEK this process seals with, 0: none yet */
	uint64_t wkey_nonces; /* nonces used with it (the counter) */
	uint8_t *seal_buf;    /* scratch for sealed rows */
	size_t seal_cap;
	env_timer_id rotate_timer;
	uint64_t deks_created; /* counters */
	uint64_t deks_deleted;
	/* Vote requests resent (issue 14, "Raft liveness under loss"): libraft
	 * sends a candidate's (pre-)vote requests once and waits for its next
	 * election timeout (one to two of them) when they or their answers are
	 * lost. raftio keeps the last RequestVote sent to each peer and sends
	 * it again every vote_resend_ms (0: a quarter of the heartbeat)
	 * until that peer answers it, the term changes (set_term), the node
	 * leads (it sends an AppendEntries, InstallSnapshot or TimeoutNow) or
	 * follows (it receives an AppendEntries or InstallSnapshot of the
	 * candidate's term or later), or LIMIT_RAFT_VOTE_RESENDS_MAX resends.
	 * A copy of a RequestVote is what a network that duplicates messages
	 * delivers: Raft's safety does not depend on it; a voter answers it as
	 * the first (libraft: the same vote granted again, pre-vote unchanged). */
	struct raftio_vote {
		raft_id to;
		char address[LIMIT_ADDR_BYTES_MAX];
		struct raft_request_vote req;
		ms_t sent_ms;	  /* last sent */
		unsigned resends; /* so far */
	} votes[LIMIT_MANAGERS_MAX];
	size_t vote_count;    /* votes[0..vote_count) are waiting */
	ms_t vote_resend_ms;  /* 0: tick_ms / 4 */
	uint64_t vote_resent; /* counters */
	uint64_t vote_unkept; /* requests to more peers than votes[] holds */
	/* A corrupt log or snapshot (issue 19). raft_meta's values carry a
	 * check each (a bit flipped in the term or the vote is found, not
	 * believed); the entries and the snapshot are sealed (AEAD). A load
	 * that finds an entry or the snapshot altered (or sqlite's pages
	 * malformed there) drops the log and the snapshot, keeps the term and
	 * the vote, and the node recovers from its peers: recover_term (kept
	 * in raft_meta) is the term then. Until the node durably holds an
	 * entry (or an installed snapshot) of a later term, it neither grants
	 * nor asks for votes: entries it acknowledged before may have counted
	 * in a commit, and a node that lost them must not help elect a leader
	 * that lacks them (as Protocol-Aware Recovery, FAST'18). A leader of a
	 * later term was elected without it, so holds every entry committed
	 * before; an entry of that leader's term on this node's log means
	 * this log matches it up to there. */
	uint64_t recover_term; /* 0: not recovering */
	/* ... or until it holds the entries up to recover_index (the highest
	 * index the dropped log held, 0: unknown), received from leaders of
	 * its term or later: every entry it may have acknowledged is then
	 * back, as the leaders' logs have it */
	uint64_t recover_index;
	uint64_t recoveries;	 /* counters: loads that dropped a corrupt log */
	uint64_t votes_withheld; /* vote requests dropped while recovering */
};

/* raftio_init prepares rio on env: opens storage "raft" and creates its
 * tables, with a new node-local KEK when the database is new. A database of
 * format 1 (before state at rest: payloads in the clear, no keys) is
 * upgraded in place, in one transaction: every payload sealed, the clear
 * bytes zeroed (secure_delete) and the WAL truncated. With autolock set
 * (raftio_set_autolock), rio opens locked (raftio_is_locked): libraft's
 * load, bootstrap and start then fail until raftio_unlock. Returns 0, or
 * CS_ESTORAGE (an unreadable or foreign database, or the upgrade failed:
 * nothing is changed), CS_EVERSION (a raft database of another format,
 * logged with its number), CS_ECORRUPT (a key that does not open). */
int raftio_init(struct raftio *rio, struct env *env);

/* raftio_is_locked: autolock is on and raftio_unlock has not succeeded. */
bool raftio_is_locked(const struct raftio *rio);

/* raftio_unlock: derives the KEK from unlock_key (the operator's
 * "SWMKEY-1-..." text, borrowed) and opens the DEKs; libraft may then load
 * and start. Returns 0 (also when rio was not locked: nothing checked),
 * CS_EINVAL (not an unlock key's text), CS_EAUTH (the wrong unlock key:
 * rio stays locked; logged), CS_ECORRUPT (the key is right but a DEK does
 * not open), CS_ENOMEM. */
int raftio_unlock(struct raftio *rio, const char *unlock_key);

/* raftio_set_autolock: with unlock_key (borrowed text) the KEK becomes the
 * key derived from it (autolock on, or its unlock key rotated); with NULL a
 * new random node-local key (autolock off). Every DEK is sealed again with
 * the new KEK in one transaction; the old KEK's bytes are zeroed on disk
 * (secure_delete, then a WAL checkpoint). Returns 0, CS_EINVAL (rio locked,
 * down, or unlock_key not an unlock key's text: nothing changed),
 * CS_ESTORAGE (the write failed: fatal, as every failed durable write of
 * raftio: rio is broken and env exit was called). */
int raftio_set_autolock(struct raftio *rio, const char *unlock_key);

/* raftio_rotate_dek: new writes use a new DEK (drawn at the next write);
 * DEKs no row uses any more are deleted now, the others once a snapshot has
 * compacted the rows that use them. Also runs every
 * LIMIT_RAFT_DEK_ROTATE_MS once libraft started. Returns 0, CS_EINVAL (rio
 * locked or down), CS_ESTORAGE (fatal, as in raftio_set_autolock). */
int raftio_rotate_dek(struct raftio *rio);

/* raftio_restore (issue 20, swarmd --restore) seeds an empty log (term 0,
 * no entry, no snapshot) with a snapshot of data (borrowed: the store's
 * encoding) at index and term, whose configuration is conf (borrowed), and
 * the current term one past it, in one transaction: libraft's load then
 * restores the FSM from it, and a lone voter leads a new cluster. Before
 * libraft loads. Returns 0, CS_EEXIST (the log is not empty: nothing
 * changed), CS_EINVAL (rio locked or down, index or term 0), CS_ENOMEM,
 * CS_ESTORAGE (the write failed: fatal, as every failed durable write). */
int raftio_restore(struct raftio *rio, const struct raft_configuration *conf,
		   uint64_t index, uint64_t term, const uint8_t *data, size_t len);

/* raftio_recv hands one decoded RaftMessage, from peer address `from`, to
 * libraft. Malformed content is counted and dropped. The message is
 * borrowed. */
void raftio_recv(struct raftio *rio, const Cs__RaftMessage *msg);

/* raftio_crash marks rio dead: the process is gone. Pending completions are
 * dropped without callbacks; later calls from libraft fail with RAFT_IOERR
 * and close completes at once. Used before raft_close when a node is killed
 * so that libraft can free its memory. */
void raftio_crash(struct raftio *rio);

/* raftio_release frees what rio holds (pending requests, keys, wiped);
 * after close. */
void raftio_release(struct raftio *rio);

/* raftio_encode_conf / raftio_decode_conf convert a configuration to and
 * from our protobuf (for snapshots in storage and on the wire). decode
 * returns 0 or RAFT_NOMEM / RAFT_MALFORMED; the result is raft_malloc'd
 * (raft_configuration_close frees it). */
Cs__RaftConfig *raftio_encode_conf(const struct raft_configuration *conf);
void raftio_free_conf(Cs__RaftConfig *c);
int raftio_decode_conf(const Cs__RaftConfig *c, struct raft_configuration *conf);

#endif
