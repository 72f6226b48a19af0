/* fakeexec: a fake executor for load generation. See fakeexec.h. */
#include "net/fakeexec.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

/* A controller and its one container. Every answer is a one-shot timer of
 * the node's env (the real env, since timers call back with it). */
struct env_ctl {
	struct fakeexec *x;
	struct env *env;
	struct env_ctl *prev, *next; /* x->ctls */
	char task_id[64];
	char service_id[64];
	enum env_ctl_state state;
	int32_t exit_code;
	uint64_t attempts; /* STARTs so far */
	bool closed;	   /* ctl_close called: no callback runs again */
	/* the op in flight */
	enum env_ctl_op op;
	struct env_ctl_req *op_req;
	env_ctl_cb op_cb;
	env_timer_id op_timer;
	/* a WAIT in flight; wait_timer when it answers at once */
	struct env_ctl_req *wait_req;
	env_ctl_cb wait_cb;
	env_timer_id wait_timer;
	/* ctl_close's */
	env_ctl_close_cb close_cb;
	void *close_data;
	env_timer_id close_timer;
};

/* A task id that started, and how many times (a table slot: id[0] == 0
 * is empty). */
struct fakeexec_task {
	char id[64];
	uint64_t starts;
};

/* A list request's answer (always empty). */
struct fakeexec_list {
	struct env_ctl_list_req *req;
	env_ctl_list_cb cb;
};

/* ---------------------------------------------------------------- the seed */

static uint64_t fakeexec_mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

bool fakeexec_fails(const struct fakeexec_cfg *cfg, const char *task_id, uint64_t attempt,
		    ms_t *jitter_ms)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the task id */
	for (const char *p = task_id ? task_id : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	h = fakeexec_mix(h ^ fakeexec_mix(cfg->seed) ^ fakeexec_mix(attempt + 1));
	if (jitter_ms)
		*jitter_ms =
			cfg->start_jitter_ms ? (h >> 32) % (cfg->start_jitter_ms + 1) : 0;
	return (h & 0xffffffffu) % 1000 < cfg->fail_permille;
}

int fakeexec_init(struct fakeexec *x, const struct fakeexec_cfg *cfg)
{
	assert(x != NULL && cfg != NULL);
	if (cfg->fail_permille > 1000)
		return CS_EINVAL;
	memset(x, 0, sizeof *x);
	x->cfg = *cfg;
	return 0;
}

static void fakeexec_ctl_free(struct env_ctl *c)
{
	struct fakeexec *x = c->x;
	if (c->prev)
		c->prev->next = c->next;
	else
		x->ctls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	x->counts.closed++;
	if (c->state == ENV_CTL_RUNNING)
		x->counts.running--;
	free(c);
}

void fakeexec_free(struct fakeexec *x)
{
	while (x->ctls)
		fakeexec_ctl_free(x->ctls);
	free(x->tasks);
	x->tasks = NULL;
	x->task_cap = x->task_count = 0;
}

size_t fakeexec_env_gone(struct fakeexec *x, const struct env *real)
{
	assert(real != NULL);
	return fakeexec_envs_gone(x, &real, 1);
}

static int fakeexec_env_cmp(const void *p, const void *q)
{
	uintptr_t a = (uintptr_t) * (const struct env *const *)p;
	uintptr_t b = (uintptr_t) * (const struct env *const *)q;
	return a < b ? -1 : a > b;
}

/* One walk of the controllers, each env looked up in a sorted copy of
 * reals: O((controllers + count) log count). A walk per env was
 * O(count x controllers): node-death at 10,000 agents kills 1,000 of
 * them with 100,000 controllers open, 10^8 list steps on the loop
 * thread before any death was felt. (Pointer order is fine here: net/,
 * and the result does not depend on it.) */
size_t fakeexec_envs_gone(struct fakeexec *x, const struct env *const *reals,
			  size_t count)
{
	const struct env **sorted;
	struct env_ctl *c = x->ctls, *next;
	size_t n = 0;

	assert(reals != NULL || count == 0);
	if (count == 0)
		return 0;
	sorted = malloc(count * sizeof *sorted);
	if (!sorted) {
		/* one walk per env, as before */
		for (size_t i = 0; i < count; i++)
			for (c = x->ctls; c; c = next) {
				next = c->next;
				if (c->env != reals[i])
					continue;
				x->counts.died++;
				fakeexec_ctl_free(c);
				n++;
			}
		return n;
	}
	memcpy(sorted, reals, count * sizeof *sorted);
	qsort(sorted, count, sizeof *sorted, fakeexec_env_cmp);
	for (; c; c = next) {
		next = c->next;
		if (!bsearch(&c->env, sorted, count, sizeof *sorted, fakeexec_env_cmp))
			continue;
		x->counts.died++;
		fakeexec_ctl_free(c);
		n++;
	}
	free(sorted);
	return n;
}

/* ---------------------------------------------------------------- starts per task */

static uint64_t fakeexec_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return fakeexec_mix(h);
}

/* The slot of id in a table of cap (a power of two, never full): its own,
 * or the empty one where it would go. */
static struct fakeexec_task *fakeexec_slot(struct fakeexec_task *tab, size_t cap,
					   const char *id)
{
	size_t i = (size_t)fakeexec_hash(id) & (cap - 1);
	while (tab[i].id[0] && strcmp(tab[i].id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* Doubles the table (from 1,024) when it is half full. Returns 0 or
 * CS_ENOMEM (the table unchanged). */
static int fakeexec_grow(struct fakeexec *x)
{
	size_t cap = x->task_cap ? x->task_cap * 2 : 1024;
	struct fakeexec_task *tab;

	if ((x->task_count + 1) * 2 <= x->task_cap)
		return 0;
	if (!(tab = calloc(cap, sizeof *tab)))
		return CS_ENOMEM;
	for (size_t i = 0; i < x->task_cap; i++)
		if (x->tasks[i].id[0])
			*fakeexec_slot(tab, cap, x->tasks[i].id) = x->tasks[i];
	free(x->tasks);
	x->tasks = tab;
	x->task_cap = cap;
	return 0;
}

uint64_t fakeexec_starts(const struct fakeexec *x, const char *task_id)
{
	if (!x->task_cap || !task_id || !*task_id)
		return 0;
	return fakeexec_slot(x->tasks, x->task_cap, task_id)->starts;
}

/* Counts a successful start of task_id: a second one is a restart. */
static void fakeexec_count_start(struct fakeexec *x, const char *task_id)
{
	struct fakeexec_task *t;

	if (!*task_id || fakeexec_grow(x) != 0) {
		x->counts.untracked++;
		return;
	}
	t = fakeexec_slot(x->tasks, x->task_cap, task_id);
	if (!t->id[0]) {
		snprintf(t->id, sizeof t->id, "%s", task_id);
		x->task_count++;
	}
	if (++t->starts > 1) {
		x->counts.restarted++;
		if (x->on_restart)
			x->on_restart(x->on_restart_data, task_id, t->starts);
	}
}

/* ---------------------------------------------------------------- containers */

/* The container stops running (code): a WAIT in flight answers. Returns
 * false when that answer closed the controller. */
static bool fakeexec_exited(struct env_ctl *c, int32_t code)
{
	if (c->state == ENV_CTL_RUNNING) {
		c->x->counts.running--;
		c->x->counts.stopped++;
	}
	if (c->state == ENV_CTL_RUNNING || c->state == ENV_CTL_CREATED) {
		c->state = ENV_CTL_EXITED;
		c->exit_code = code;
	}
	if (c->wait_req && !c->wait_timer) {
		struct env_ctl_req *req = c->wait_req;
		env_ctl_cb cb = c->wait_cb;
		c->wait_req = NULL;
		c->wait_cb = NULL;
		req->state = c->state;
		req->exit_code = c->exit_code;
		req->message[0] = '\0';
		cb(req, 0);
		if (c->closed)
			return false;
	}
	return true;
}

static void fakeexec_wait_fire(struct env *env, env_timer_id id, void *data)
{
	struct env_ctl *c = data;
	struct env_ctl_req *req = c->wait_req;
	env_ctl_cb cb = c->wait_cb;
	(void)env;
	(void)id;
	c->wait_timer = 0;
	c->wait_req = NULL;
	c->wait_cb = NULL;
	req->state = c->state;
	req->exit_code = c->exit_code;
	req->message[0] = '\0';
	cb(req, 0);
}

static void fakeexec_op_fire(struct env *env, env_timer_id id, void *data)
{
	struct env_ctl *c = data;
	struct env_ctl_req *req = c->op_req;
	env_ctl_cb cb = c->op_cb;
	int status = 0;
	(void)env;
	(void)id;
	c->op_timer = 0;
	c->op_req = NULL;
	c->op_cb = NULL;
	req->message[0] = '\0';
	switch (c->op) {
	case ENV_CTL_PREPARE:
		if (c->state == ENV_CTL_ABSENT)
			c->state = ENV_CTL_CREATED;
		break;
	case ENV_CTL_START:
		if (fakeexec_fails(&c->x->cfg, c->task_id, c->attempts++, NULL)) {
			c->x->counts.failed++;
			snprintf(req->message, sizeof req->message,
				 "fakeexec: start failed (seeded, %u per 1000)",
				 (unsigned)c->x->cfg.fail_permille);
			status = CS_EEXEC;
			c->state = ENV_CTL_EXITED;
			c->exit_code = 1;
			break;
		}
		if (c->state != ENV_CTL_RUNNING) {
			c->state = ENV_CTL_RUNNING;
			c->x->counts.started++;
			c->x->counts.running++;
			fakeexec_count_start(c->x, c->task_id);
			if (c->x->on_start)
				c->x->on_start(c->x->on_start_data, c->service_id);
		}
		break;
	case ENV_CTL_SHUTDOWN:
		if (!fakeexec_exited(c, 0))
			return;
		break;
	case ENV_CTL_TERMINATE:
		if (!fakeexec_exited(c, 137))
			return;
		break;
	case ENV_CTL_REMOVE:
		if (!fakeexec_exited(c, 137))
			return;
		c->state = ENV_CTL_ABSENT;
		break;
	case ENV_CTL_INSPECT:
	case ENV_CTL_WAIT: break;
	}
	req->state = c->state;
	req->exit_code = c->exit_code;
	req->health = ENV_HEALTH_NONE;
	cb(req, status);
}

/* ---------------------------------------------------------------- the ops */

static int fakeexec_ctl_open(struct env *env, const struct env_container_spec *spec,
			     struct env_ctl **out)
{
	struct envproxy *p = envproxy_of(env);
	struct fakeexec *x = p->data;
	struct env_ctl *c = calloc(1, sizeof *c);

	if (!c)
		return CS_ENOMEM;
	c->x = x;
	c->env = p->real;
	snprintf(c->task_id, sizeof c->task_id, "%s", spec->task_id ? spec->task_id : "");
	snprintf(c->service_id, sizeof c->service_id, "%s",
		 spec->service_id ? spec->service_id : "");
	c->state = ENV_CTL_ABSENT;
	c->next = x->ctls;
	if (x->ctls)
		x->ctls->prev = c;
	x->ctls = c;
	x->counts.opened++;
	*out = c;
	return 0;
}

static int fakeexec_ctl_do(struct env_ctl *c, enum env_ctl_op op, struct env_ctl_req *req,
			   env_ctl_cb cb)
{
	ms_t delay = 0;
	int rv;

	assert(c != NULL && req != NULL && cb != NULL && !c->closed);
	if (op == ENV_CTL_WAIT) {
		if (c->wait_req)
			return CS_EAGAIN;
		c->wait_req = req;
		c->wait_cb = cb;
		if (c->state == ENV_CTL_RUNNING || c->state == ENV_CTL_CREATED)
			return 0; /* answers when the container exits */
		rv = c->env->ops->timer_start(c->env, 0, 0, fakeexec_wait_fire, c,
					      &c->wait_timer);
		if (rv) {
			c->wait_req = NULL;
			c->wait_cb = NULL;
		}
		return rv;
	}
	if (c->op_req)
		return CS_EAGAIN;
	switch (op) {
	case ENV_CTL_START: {
		ms_t jitter = 0;
		(void)fakeexec_fails(&c->x->cfg, c->task_id, c->attempts, &jitter);
		delay = c->x->cfg.start_ms + jitter;
		break;
	}
	case ENV_CTL_SHUTDOWN:
		delay = c->state == ENV_CTL_RUNNING ? c->x->cfg.stop_ms : 0;
		break;
	case ENV_CTL_PREPARE:
	case ENV_CTL_TERMINATE:
	case ENV_CTL_REMOVE:
	case ENV_CTL_INSPECT: break;
	default: return CS_EINVAL;
	}
	rv = c->env->ops->timer_start(c->env, delay, 0, fakeexec_op_fire, c,
				      &c->op_timer);
	if (rv)
		return rv;
	c->op = op;
	c->op_req = req;
	c->op_cb = cb;
	return 0;
}

static void fakeexec_close_fire(struct env *env, env_timer_id id, void *data)
{
	struct env_ctl *c = data;
	env_ctl_close_cb cb = c->close_cb;
	void *cb_data = c->close_data;
	(void)env;
	(void)id;
	/* the callback is the last word on c: it is freed right after */
	if (cb)
		cb(c, cb_data);
	fakeexec_ctl_free(c);
}

static void fakeexec_ctl_close(struct env_ctl *c, env_ctl_close_cb cb, void *data)
{
	assert(c != NULL && !c->closed);
	c->closed = true;
	if (c->op_timer)
		c->env->ops->timer_stop(c->env, c->op_timer);
	if (c->wait_timer)
		c->env->ops->timer_stop(c->env, c->wait_timer);
	c->op_timer = c->wait_timer = 0;
	c->op_req = c->wait_req = NULL;
	c->close_cb = cb;
	c->close_data = data;
	if (c->env->ops->timer_start(c->env, 0, 0, fakeexec_close_fire, c,
				     &c->close_timer) != 0) {
		/* no timer (the node's timer table is full: it is failing
		 * anyway): the callback never runs, fakeexec_free frees c */
		c->close_timer = 0;
		c->close_cb = NULL;
	}
}

static void fakeexec_list_fire(struct env *env, env_timer_id id, void *data)
{
	struct fakeexec_list *l = data;
	struct env_ctl_list_req *req = l->req;
	env_ctl_list_cb cb = l->cb;
	(void)env;
	(void)id;
	free(l);
	req->found = NULL;
	req->found_count = 0;
	cb(req, 0);
}

static int fakeexec_ctl_list(struct env *env, struct env_ctl_list_req *req,
			     env_ctl_list_cb cb)
{
	struct envproxy *p = envproxy_of(env);
	struct fakeexec_list *l = malloc(sizeof *l);
	env_timer_id id;
	int rv;

	if (!l)
		return CS_ENOMEM;
	l->req = req;
	l->cb = cb;
	rv = p->real->ops->timer_start(p->real, 0, 0, fakeexec_list_fire, l, &id);
	if (rv)
		free(l);
	return rv;
}

void fakeexec_attach(struct fakeexec *x, struct envproxy *p)
{
	assert(x != NULL && p != NULL);
	p->data = x;
	p->ops.ctl_open = fakeexec_ctl_open;
	p->ops.ctl_do = fakeexec_ctl_do;
	p->ops.ctl_close = fakeexec_ctl_close;
	p->ops.ctl_list = fakeexec_ctl_list;
}
