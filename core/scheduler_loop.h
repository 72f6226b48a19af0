/* scheduler_loop: runs the scheduler (core/scheduler.c, a pure function of
 * the store) on the leader: after changes that may let a pending task be
 * placed, and at least once a second, one write at a time. Leader only. */
#ifndef CS_SCHEDULER_LOOP_H
#define CS_SCHEDULER_LOOP_H

#include <stdbool.h>

#include "core/env.h"

struct leader_component_ops;

/* The scheduler's loop, a leader component (core/leader.h): it sees the
 * store and writes, nothing else of the manager. */
extern const struct leader_component_ops scheduler_component;

#endif
