/* fakeexec: a fake executor (the env's ctl_* ops, core/env.h) for load
 * generation: no container anywhere; a start succeeds after start_ms (plus
 * a jitter) or fails (CS_EEXEC) at a rate, a shutdown takes stop_ms, every
 * other op answers on the next timer turn. Whether a task's start fails and
 * its jitter are a pure function of (seed, task id, attempt), so a seed
 * replays the same failures whatever the order of events. Timers are the
 * env's (one per op in flight), so it runs on a uvenv as on any env.
 * swarmload puts one in front of each agent's env (net/envproxy); one
 * `struct fakeexec` is shared by many nodes (one thread) and counts what
 * they all did. Containers live as long as their controller: ctl_list
 * finds none (a restarted agent starts afresh). */
#ifndef NET_FAKEEXEC_H
#define NET_FAKEEXEC_H

#include <stdint.h>

#include "core/env.h"
#include "net/envproxy.h"

struct fakeexec_cfg {
	uint64_t seed;
	ms_t start_ms;		/* a START answers after start_ms + jitter */
	ms_t start_jitter_ms;	/* jitter: 0..start_jitter_ms, from the seed */
	ms_t stop_ms;		/* a SHUTDOWN answers (exited) after this */
	uint32_t fail_permille; /* starts that fail, per 1,000 (0..1000) */
};

/* What every node's executor did so far (read by the same thread). */
struct fakeexec_counts {
	uint64_t opened, closed;  /* controllers */
	uint64_t started, failed; /* STARTs that succeeded, that failed */
	uint64_t running;	  /* containers running now */
	uint64_t stopped;	  /* running ones that exited since */
	/* successful starts of a task id that had started before (a task
	 * restarted: never, by the agent's contract) */
	uint64_t restarted;
	/* controllers freed by fakeexec_env_gone (their node died) */
	uint64_t died;
	/* starts not counted per task (out of memory for the table); a
	 * restart among them would go unseen, so a reader must fail on it */
	uint64_t untracked;
};

struct fakeexec_task; /* the table of task ids started, private */

struct fakeexec {
	struct fakeexec_cfg cfg;
	struct fakeexec_counts counts;
	/* called on each successful start (NULL: none), with its spec's
	 * service id (borrowed for the call) */
	void (*on_start)(void *data, const char *service_id);
	void *on_start_data;
	struct env_ctl *ctls; /* every controller not yet freed */
	/* called on each restart (counts.restarted), with the task id
	 * (borrowed) and its successful starts so far (2 or more); NULL:
	 * none */
	void (*on_restart)(void *data, const char *task_id, uint64_t starts);
	void *on_restart_data;
	/* the starts per task id: open addressing, linear probing */
	struct fakeexec_task *tasks;
	size_t task_cap, task_count;
};

/* fakeexec_init sets x up from cfg (copied): counts zero, no hook. Returns 0,
 * or CS_EINVAL when fail_permille > 1000. */
int fakeexec_init(struct fakeexec *x, const struct fakeexec_cfg *cfg);

/* fakeexec_free frees every controller x still holds, without a callback
 * or an env call: once the nodes are stopped and their envs closed (their
 * timers with them), as a process's death frees its containers' handles;
 * and its table of starts per task. */
void fakeexec_free(struct fakeexec *x);

/* fakeexec_env_gone frees the controllers opened on real (the env under a
 * proxy, p->real), without a callback or an env call: its node was
 * stopped as a process death and real is about to be closed (its timers
 * with it). Their running containers stop being counted running (nor
 * stopped: counts.died counts the controllers). Returns how many. */
size_t fakeexec_env_gone(struct fakeexec *x, const struct env *real);

/* fakeexec_envs_gone does what fakeexec_env_gone does for each of the
 * count envs of reals (borrowed; a repeat is harmless), in one walk of
 * the controllers. Returns how many it freed in all. */
size_t fakeexec_envs_gone(struct fakeexec *x, const struct env *const *reals,
			  size_t count);

/* fakeexec_starts returns how many times task_id's container started
 * successfully so far (0: never, or not tracked: counts.untracked). */
uint64_t fakeexec_starts(const struct fakeexec *x, const char *task_id);

/* fakeexec_attach makes p's executor ops (ctl_open, ctl_do, ctl_close,
 * ctl_list) x's: p must be envproxy_init'ed, and x outlive every
 * controller opened through p. Uses p->data. */
void fakeexec_attach(struct fakeexec *x, struct envproxy *p);

/* fakeexec_fails says whether the attempt-th start (0-based) of task_id
 * fails under cfg, and its jitter in *jitter_ms: the pure function the
 * executor uses. */
bool fakeexec_fails(const struct fakeexec_cfg *cfg, const char *task_id, uint64_t attempt,
		    ms_t *jitter_ms);

#endif
