/* replay: swarmsim replay FILE... (issue 19). Runs the recorded node's core
 * code (node_program: core/node.c and below) against a recording made by
 * swarmd --record (net/record.h has the format and what is recorded): each
 * recorded input is fed to the callback the core registered for it, each
 * env call the core makes must be the next recorded one (the same kind and
 * arguments: messages sent by hash, log lines whole, timers, executor
 * operations) and gets the recorded answer. The first call that differs is
 * a divergence, named by its event index, the node's clock and what was
 * expected and what came. Pure: the caller reads the file into memory. */
#ifndef SIM_REPLAY_H
#define SIM_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"

#define REPLAY_WHY_BYTES 1024u

/* What one node's clock-stamped role looked like, for a timeline: called
 * whenever what the replayed manager believes changes (after an input). */
struct replay_mark {
	ms_t at_ms;	    /* the node's env clock */
	bool up;	    /* the program runs */
	bool leader;	    /* it leads */
	uint64_t leader_id; /* the raft id it follows (0: none) */
	uint64_t term;
};
typedef void (*replay_mark_cb)(void *ctx, const struct replay_mark *m);

struct replay_result {
	uint64_t events;   /* records consumed */
	uint64_t inputs;   /* inputs fed */
	uint64_t sends;	   /* messages the core sent (matched) */
	uint64_t logs;	   /* log lines (matched) */
	uint64_t segments; /* process starts */
	ms_t first_ms, last_ms;
	bool diverged;
	bool truncated;		    /* the file ended inside a record (a SIGKILL) */
	uint64_t at_event;	    /* the divergence: its index (0-based) */
	ms_t at_ms;		    /* and the node's clock then */
	char why[REPLAY_WHY_BYTES]; /* "expected ..., came ..." */
	char self_addr[64];
	uint64_t raft_id; /* the manager's, at the end (0: none) */
	uint64_t applied; /* its applied index at the end */
	bool leader;	  /* it led at the end */
};

/* replay_run replays the recording buf (len bytes, borrowed) and fills
 * *res; mark (NULL: none) sees role changes. Log lines the replayed core
 * writes go to log_cb when not NULL. Returns 0 (res says whether it
 * diverged), or CS_ECORRUPT when buf is not a recording (err says why). */
int replay_run(const uint8_t *buf, size_t len, replay_mark_cb mark, void *mark_ctx,
	       void (*log_cb)(void *ctx, ms_t at_ms, const char *line), void *log_ctx,
	       struct replay_result *res, char *err, size_t n);

/* replay_main is `swarmsim replay FILE... [--logs] [--timeline] [--report
 * DIR]` (argv after "replay"): one line per file, exit 0 (all replayed
 * without divergence), 1 (a divergence), 2 (usage, unreadable file). */
int replay_main(int argc, char **argv);

#endif
