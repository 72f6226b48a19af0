/* timeline: what happened in one scenario run, over virtual time, for the
 * report's picture (sim/report.c): when each node was up or down, who led,
 * which nodes were cut off by a partition or had a faulty link, how many
 * tasks of each service ran (sampled every second of virtual time, kept
 * when the count changes), the scenario's commands, and the failure. It
 * also feeds the run's scheduler metrics (sim/metrics.c).
 *
 * Fed by the runner: timeline_trace as (or from) the trace callback and
 * timeline_observe as the observer (timeline_attach sets both); then
 * timeline_finish with the result. Reads the world, changes nothing, so a
 * run's trace hash is the same with or without a timeline. Owns its
 * records; borrows the script. */
#ifndef SIM_TIMELINE_H
#define SIM_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/events.h"
#include "core/limits.h"
#include "sim/metrics.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/world.h"

#define TL_SAMPLE_US 1000000u /* running tasks are counted every 1 s */
#define TL_LEADER_US 10000u   /* who leads is asked every 10 ms (and per command) */
#define TL_NONE	     UINT64_MAX

enum tl_span_kind {
	TL_DOWN,      /* the node's process was down */
	TL_LEADER,    /* the node led (a leader a majority follows) */
	TL_PARTITION, /* a partition cut the node off from some other node */
	TL_LINK,      /* a link rule (loss, delay, dup, reorder) touched the node */
};

struct tl_span {
	enum tl_span_kind kind;
	uint32_t node;
	us_t from_us, to_us;
	uint32_t detail; /* TL_PARTITION: how many nodes it could not reach;
			  * TL_DOWN: why (WORLD_DOWN_PROCESS, _MACHINE, _EXIT) */
};

struct tl_node {
	char name[LIMIT_ADDR_BYTES_MAX];
	us_t added_us;
	/* while recording: when the open span began (TL_NONE: none open) */
	us_t down_since, part_since, link_since;
	uint32_t cut_count; /* nodes a partition keeps it from, when it began */
	uint32_t down_why;  /* the node-down event's a, while down */
};

struct tl_point {
	us_t at_us;
	uint32_t running;
};

/* Running tasks of one service: a step function, one point per change. */
struct tl_series {
	char name[LIMIT_NAME_BYTES_MAX + 1];
	struct tl_point *points;
	size_t count, cap;
};

struct tl_command {
	us_t at_us;
	uint32_t line;
	char text[160];
};

struct timeline {
	const struct scn_script *script;
	struct tl_node *nodes; /* by world node index */
	size_t node_count, node_cap;
	struct tl_span *spans; /* in the order they ended */
	size_t span_count, span_cap;
	struct tl_series *series; /* in the order services first ran */
	size_t series_count, series_cap;
	struct tl_command *cmds;
	size_t cmd_count, cmd_cap;
	us_t end_us;
	bool failed;
	us_t fail_us;
	char fail_msg[512];
	/* recording */
	int64_t leader;
	us_t leader_since;
	us_t next_leader_us;
	const struct scn_cmd *last_cmd;
	us_t next_sample_us;
	struct metrics_rec *metrics;
	bool finished;
	bool oom; /* something could not be recorded (the picture is partial) */
	/* issue 20: the event stream at the end, as the leader (else the
	 * first running manager) keeps it: event_count copies, from the
	 * manager named events_from ("" : none ran) */
	struct events_event *events;
	size_t event_count;
	char events_from[32];
};

/* timeline_new returns an empty timeline for a run of script (borrowed),
 * or NULL when out of memory. Free with timeline_free. */
struct timeline *timeline_new(const struct scn_script *script);
void timeline_free(struct timeline *tl);

/* timeline_attach makes opts feed tl: the observer, and the trace callback
 * when opts has none (else call timeline_trace from yours). */
void timeline_attach(struct timeline *tl, struct runner_opts *opts);

/* timeline_trace is a world_trace_fn; ctx is the timeline. */
void timeline_trace(void *ctx, const struct world *w, us_t at_us, uint32_t node,
		    enum sim_ev_kind kind, uint64_t a, uint64_t b);

/* timeline_observe is a runner_observe_fn; ctx is the timeline. */
void timeline_observe(void *ctx, const struct runner_view *v);

/* timeline_finish records the run's end and failure (borrows res). */
void timeline_finish(struct timeline *tl, const struct runner_result *res);

/* timeline_metrics returns the run's scheduler figures (borrowed). */
const struct metrics *timeline_metrics(const struct timeline *tl);

#endif
