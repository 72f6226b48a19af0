/* explore: random fault schedules for a scenario, drawn from a seed, and
 * their shrinking. explore_plan_make draws a plan (which faults, on which
 * nodes, when and for how long; with swarm testing also the cluster's shape
 * and timings); explore_text writes the plan into a complete scenario file
 * (the scenario's commands with the faults interleaved, then a liveness
 * phase); explore_run parses and runs that text, so a plan's run and a
 * `swarmsim run` of its text are the same run, with the same trace hash.
 * Called by sim/explore_main.c (the commands) and tests. Pure: the seed is
 * the only source of randomness, no clock is read. */
#ifndef SIM_EXPLORE_H
#define SIM_EXPLORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/runner.h"
#include "sim/scenario.h"

/* Fault kinds; a set of them is a bit mask of (1u << kind). */
enum explore_kind {
	EXPLORE_CRASH,	   /* kill NODE: the machine dies, maybe back later */
	EXPLORE_RESTART,   /* kill NODE process, then restart NODE */
	EXPLORE_PARTITION, /* partition a minority | *, then heal */
	EXPLORE_LINK,	   /* link A B loss/delay/dup, then link A B */
	EXPLORE_PROCESS,   /* image IMG exit=1 / pull=fail, then reset */
	EXPLORE_RUNTIME,   /* runtime NODE fail=OPS | restart ..., then ok */
	EXPLORE_DISK,	   /* disk NODE fault=eio|full, then ok and restart */
	EXPLORE_CERT,	   /* cert wN expire: the worker joins again, as new */
	EXPLORE_CA,	   /* ca rotate: a root CA rotation mid-run */
	EXPLORE_KIND_COUNT,
};
#define EXPLORE_FAULTS_ALL ((1u << EXPLORE_KIND_COUNT) - 1)
/* What --faults means when not given: every kind (a replay command names
 * its kinds, so changing this changes no printed replay). */
#define EXPLORE_FAULTS_DEFAULT EXPLORE_FAULTS_ALL

enum {
	EXPLORE_FAULTS_MAX = 24,	    /* faults in one plan */
	EXPLORE_CMD_MAX = 160,		    /* bytes of one fault command */
	EXPLORE_IMAGES_MAX = 16,	    /* images a process fault may pick */
	EXPLORE_WINDOW_MS = 5 * 60 * 1000,  /* the shortest fault window */
	EXPLORE_LIVENESS_MS = 120 * 1000,   /* heal to converged, at most */
	EXPLORE_FAULT_MIN_MS = 1000,	    /* a fault lasts at least this */
	EXPLORE_RUNTIME_MAX_MS = 30 * 1000, /* a runtime fault lasts at most this */
};

/* One fault: `start` runs at at_ms of the window, `end` (when not empty) at
 * at_ms + dur_ms. Masks name the managers and workers (bit n-1 for mn/wn)
 * that it takes down or cuts off while it lasts. */
struct explore_fault {
	enum explore_kind kind;
	bool enabled; /* shrink turns faults off */
	uint64_t at_ms;
	uint64_t dur_ms;
	uint64_t mgr_mask;
	uint64_t wrk_mask;
	int32_t image; /* PROCESS: index into plan images; else -1 */
	char start[EXPLORE_CMD_MAX];
	char end[EXPLORE_CMD_MAX];
};

struct explore_plan {
	uint64_t seed;
	uint32_t kinds; /* the --faults set */
	bool swarm;
	uint32_t managers; /* the cluster's shape (drawn or as written) */
	uint32_t workers;
	bool managers_drawn, workers_drawn;
	char settings[EXPLORE_CMD_MAX]; /* a drawn `set ...` line, or "" */
	uint64_t window_ms;
	uint64_t liveness_ms;
	char images[EXPLORE_IMAGES_MAX][64]; /* images of restart=any services */
	char image_reset[EXPLORE_IMAGES_MAX][EXPLORE_CMD_MAX];
	size_t image_count;
	struct explore_fault faults[EXPLORE_FAULTS_MAX];
	size_t fault_count;
	/* The survivability budget left to generated faults once the
	 * scenario's own are counted: how many managers they may take down
	 * or cut off at once (may be 0), and how many workers (always fewer
	 * than plan->workers minus those the scenario faults). */
	uint32_t mgr_budget;
	uint32_t wrk_budget;
	/* The scenario's waits (`expect ... within`, `await`) are stretched
	 * by wait_scale_pct / 100 (>= 100) to the drawn timings: an election
	 * of the drawn tick and ticks takes that much longer than with the
	 * defaults (10 ticks of 1s, a 5s heartbeat). */
	uint32_t wait_scale_pct;
	/* With --swarm: the nodes the scenario's services that reserve
	 * resources need (see explore_plan_make), workers and any role, which
	 * generated faults leave; 0 when none. */
	uint32_t need_workers;
	uint32_t need_nodes;
};

/* How an explored run failed (explore_judge). */
enum explore_class {
	EXPLORE_PASSED,
	EXPLORE_INVARIANT,	 /* an invariant broken, or the simulated code died:
			    * always a bug */
	EXPLORE_LIVENESS,	 /* the cluster did not get where it had to (the
			    * liveness phase, a command that found no leader
			    * or no answer): a bug unless the schedule is not
			    * survivable */
	EXPLORE_CLAIM,		 /* a scenario's `always` broken after a generated
			    * fault: the fault may make the claim false; a
			    * failure only with --strict-claims */
	EXPLORE_CLAIM_UNFAULTED, /* an `always` broken before any generated
				  * fault: the scenario's own claim, false
				  * without help: a failure */
	EXPLORE_STORY,		 /* a wait of the liveness phase failed as it
				  * fails, with the same words, in the same
				  * plan with every generated fault off: the
				  * scenario's own story never gets there (a
				  * service it leaves no room for), and no
				  * fault made it so: not a failure */
	EXPLORE_CLASS_COUNT,
};

/* A judged run: its class and, for a claim, the generated fault named as
 * its likely cause ("kill w2 process at 11.0s"), else "". */
struct explore_verdict {
	enum explore_class cls;
	char fault[EXPLORE_CMD_MAX + 32];
};

/* explore_class_name: "passed", "invariant", "liveness", "claim",
 * "claim-unfaulted", "story". */
const char *explore_class_name(enum explore_class cls);

/* explore_class_parse: the reverse; returns 0, or -1 for an unknown name. */
int explore_class_parse(const char *name, enum explore_class *cls);

/* explore_class_fails: whether a run of class cls fails the exploration
 * (a claim broken after a generated fault only when strict_claims). */
bool explore_class_fails(enum explore_class cls, bool strict_claims);

/* explore_kinds_parse reads a list such as "crash,partition" (or "all")
 * into a kind mask. Returns 0, or CS_EINVAL with a message in err. */
int explore_kinds_parse(const char *list, uint32_t *kinds, char *err, size_t err_size);

/* explore_kinds_text writes the list form of kinds into buf; returns buf. */
const char *explore_kinds_text(uint32_t kinds, char *buf, size_t size);

/* explore_plan_make draws the plan of seed for script (borrowed) with the
 * given kinds, and swarm testing when swarm. Fills *plan; returns 0, or
 * CS_EINVAL when the script has no `cluster` command. */
int explore_plan_make(const struct scn_script *script, uint64_t seed, uint32_t kinds,
		      bool swarm, struct explore_plan *plan);

/* explore_text writes the plan as a complete scenario file. Returns 0 with
 * *text (NUL-terminated, the caller frees it with free) and *len, or
 * CS_ENOMEM. Borrows script and plan. */
int explore_text(const struct scn_script *script, const struct explore_plan *plan,
		 char **text, size_t *len);

/* Where the lines of a plan's text come from: src[k] for line k+1 is the
 * line of the user's file whose command it writes (a timed expect as an
 * await, a run split around faults), EXPLORE_LINE_FAULT + i for a line of
 * the plan's fault i, 0 for another line explore adds (a wait for a
 * leader, the liveness phase, from liveness_line on). */
#define EXPLORE_LINE_FAULT 0x80000000u
struct explore_lines {
	uint32_t *src; /* count entries, owned: explore_lines_free */
	uint32_t count;
	uint32_t liveness_line;
};

/* explore_text_lines is explore_text that also fills *lines (the caller
 * frees it with explore_lines_free, on success or not). */
int explore_text_lines(const struct scn_script *script, const struct explore_plan *plan,
		       char **text, size_t *len, struct explore_lines *lines);

void explore_lines_free(struct explore_lines *lines);

/* explore_lines_apply makes a failure of a run of the plan's text (res, in
 * place) name the user's file line: `line L: ...` of a command of the
 * scenario becomes its line in the file (fail_line too); a line explore
 * generated stays the plan's line and says so (`line L of explore's plan
 * (generated fault 3, partition): ...`). Borrows lines and plan. */
void explore_lines_apply(const struct explore_lines *lines,
			 const struct explore_plan *plan, struct runner_result *res);

/* explore_run writes the plan's text, parses it and runs it with the plan's
 * seed. Returns 0 with *res filled, CS_EINVAL with err set when the text
 * does not parse (a drawn shape the scenario cannot use), or CS_ENOMEM.
 * When text is not NULL it receives the text (caller frees). */
int explore_run(const struct scn_script *script, const struct explore_plan *plan,
		struct runner_result *res, char **text, char *err, size_t err_size);

/* explore_run_judged is explore_run that also judges the run (verdict,
 * not NULL): which class its failure is, and the generated fault a broken
 * claim follows. The run and its result are explore_run's; a failure of
 * the liveness phase runs the plan once more with its faults off, to tell
 * a story that never converges (EXPLORE_STORY) from a liveness failure. */
int explore_run_judged(const struct scn_script *script, const struct explore_plan *plan,
		       struct runner_result *res, struct explore_verdict *verdict,
		       char **text, char *err, size_t err_size);

/* Called by explore_shrink after each trial run. */
typedef void (*explore_progress_fn)(void *ctx, const char *what,
				    const struct runner_result *res);

/* explore_shrink reduces a failing plan: drops faults one at a time, keeping
 * a drop when the run still fails (any failure counts), then halves the
 * remaining faults' durations while the run still fails. *plan ends as the
 * smallest failing plan found and *res as its result. Returns 0, 1 when the
 * plan does not fail to begin with (nothing to shrink), or an error from
 * explore_run. */
int explore_shrink(const struct scn_script *script, struct explore_plan *plan,
		   struct runner_result *res, explore_progress_fn progress, void *ctx,
		   char *err, size_t err_size);

/* explore_enabled_count returns how many of the plan's faults are on. */
size_t explore_enabled_count(const struct explore_plan *plan);

#endif
