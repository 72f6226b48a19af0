/* jobs: SwarmKit's jobs orchestrator (manager/orchestrator/jobs): services
 * whose tasks run to completion. A replicated job wants `replicas` (its total
 * completions) tasks to end COMPLETE, one per slot 1..replicas, with at most
 * max_concurrent running at once; a global job wants one COMPLETE task on
 * every eligible node (ready, active, meeting its constraints; nodes that
 * become eligible later get theirs too). A task that completes is never
 * restarted and stays COMPLETE; one that fails goes through the restart
 * policy as the orchestrator's do (condition any counts as on-failure,
 * delay, max attempts in a window: orchestrator_may_restart); one whose
 * node died or was drained is replaced at once, as the orchestrator does
 * (SwarmKit's jobs orchestrator leaves such a task alone until it is
 * orphaned, 24 h later). Every update of a job is a rerun: the control API
 * moves Service.job_status.job_iteration on, and this component stops the
 * tasks of earlier iterations (desired REMOVE), deletes them once finished,
 * and runs the job again.
 *
 * cswarm's scheduler and agents run a task while it is desired RUNNING, so
 * a job's task is created desired RUNNING (SwarmKit: COMPLETE) and moved to
 * desired COMPLETE once it completed, as SwarmKit's reads.
 *
 * Leader only (a leader component, core/leader.h): it reads the store and
 * writes batches through the leader context, one at a time. The replicated
 * and global orchestrator leaves job services alone; the tasks of a removed
 * job are its orphans as for any service. */
#ifndef CS_JOBS_H
#define CS_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/leader.h"
#include "core/store.h"

extern const struct leader_component_ops jobs_component;

/* What a job's current iteration has done, read from a store. */
struct jobs_progress {
	uint64_t iteration; /* Service.job_status.job_iteration */
	uint64_t desired;   /* completions wanted: replicas (replicated), or
			     * the eligible nodes plus those done (global) */
	uint64_t completed; /* places with a COMPLETE task */
	uint64_t running;   /* places whose task runs, starts, stops or
			     * waits for its restart delay */
	uint64_t gave_up;   /* places whose restart policy gave up */
};

/* jobs_is_job says whether svc is a job (replicated or global). */
bool jobs_is_job(const Cs__Service *svc);

/* jobs_iteration: svc's current iteration (0 for a job without status). */
uint64_t jobs_iteration(const Cs__Service *svc);

/* jobs_max_concurrent: how many tasks of replicated job svc may run at
 * once: max_concurrent, or replicas when 0 (and never more than replicas).
 * svc must be a replicated job. */
uint64_t jobs_max_concurrent(const Cs__Service *svc);

/* jobs_progress fills *out for job svc from st (borrowed). Read only: what
 * `swarmctl service inspect`, the scenario conditions and `converged` see. */
void jobs_progress(const struct store *st, const Cs__Service *svc,
		   struct jobs_progress *out);

/* jobs_completed says whether job svc's current iteration is done: every
 * place wanted has a COMPLETE task. */
bool jobs_completed(const struct store *st, const Cs__Service *svc);

/* jobs_settled says whether job svc has nothing more to do: every place is
 * complete or its restart policy gave up, and no task of it (of any
 * iteration) still runs or is to be stopped. What `converged` asks of a
 * job. */
bool jobs_settled(const struct store *st, const Cs__Service *svc);

#endif
