/* scheduler_loop: runs the scheduler (core/scheduler.c, a pure function of
 * the store) on the leader: after changes that may let a pending task be
 * placed, and at least once a second, one write at a time. Leader only. */
#ifndef CS_SCHEDULER_LOOP_H
#define CS_SCHEDULER_LOOP_H

#include <stdbool.h>

#include "core/env.h"

struct manager;
struct store_event;
struct schedloop;

/* Returns NULL when out of memory. */
struct schedloop *schedloop_start(struct env *env, struct manager *m);
void schedloop_stop(struct schedloop *l, bool dying);
void schedloop_on_event(struct schedloop *l, const struct store_event *ev);

#endif
