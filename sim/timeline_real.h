/* timeline_real: fills a timeline (sim/timeline.h) from what a real run
 * observed (sim/realworld.c, `swarmsim run --real --report`), so that the
 * report draws the real world's picture as it draws the simulated one's:
 * nodes down, who led, who was cut off, running tasks per service, the
 * commands. Times are microseconds since the scenario began. Called in
 * time order; an allocation that fails marks the timeline partial (oom),
 * as the simulated recorder does. Borrows every string. */
#ifndef SIM_TIMELINE_REAL_H
#define SIM_TIMELINE_REAL_H

#include <stdbool.h>
#include <stdint.h>

#include "sim/timeline.h"

/* Names node index (managers then workers), known from at_us. */
void timeline_real_node(struct timeline *tl, uint32_t node, const char *name, us_t at_us);

/* A node's daemon went down (machine: its machine too) or came back. */
void timeline_real_down(struct timeline *tl, uint32_t node, bool machine, us_t at_us);
void timeline_real_up(struct timeline *tl, uint32_t node, us_t at_us);

/* Who leads as observed (-1: nobody). */
void timeline_real_leader(struct timeline *tl, int64_t leader, us_t at_us);

/* How many nodes node is cut from (0: none any more). */
void timeline_real_cut(struct timeline *tl, uint32_t node, uint32_t cut_count,
		       us_t at_us);

/* Whether a link rule (loss) touches node now. */
void timeline_real_link(struct timeline *tl, uint32_t node, bool on, us_t at_us);

/* Containers of service svc running (Docker's ground truth). */
void timeline_real_running(struct timeline *tl, const char *svc, uint32_t running,
			   us_t at_us);

/* A scenario command began. */
void timeline_real_command(struct timeline *tl, uint32_t line, const char *text,
			   us_t at_us);

/* The run ended at at_us: open spans close there. */
void timeline_real_end(struct timeline *tl, us_t at_us);

#endif
