/* Tests of the simulated container runtime (sim/simexec) through the env of
 * simulated nodes, as the agent uses it: the container lifecycle, the async
 * contract, images (pull failures, start latency, exits), process and
 * machine deaths, ctl_list, ground truth counts and invariant 3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "sim/simexec.h"
#include "sim/world.h"

#define MS 1000ull
#define S  1000000ull

/* ---------------------------------------------------------------- helpers */

struct ctx {
	struct world *w;
	struct simexec *x;
	bool in_call; /* inside an env call: no callback may run now */
};

/* One request and what its callback saw. */
struct done {
	struct env_ctl_req req;
	struct ctx *t;
	int calls;
	int status;
	enum env_ctl_state state;
	int32_t exit_code;
	char message[256];
	us_t called_us; /* when the op was asked */
	us_t done_us;	/* when the callback ran */
	enum env_ctl_health health;
};

struct listed {
	struct env_ctl_list_req req;
	struct ctx *t;
	int calls;
	int status;
	size_t count;
	struct env_ctl_found found[16];
};

struct closed {
	struct ctx *t;
	int calls;
};

/* A world of n nodes "w0".."w{n-1}" running no program, all up. */
static void ctx_init(struct ctx *t, uint64_t seed, size_t n)
{
	memset(t, 0, sizeof *t);
	t->w = world_new(seed);
	assert_non_null(t->w);
	t->x = world_exec(t->w);
	assert_non_null(t->x);
	for (size_t i = 0; i < n; i++) {
		char name[24];
		uint32_t index;
		snprintf(name, sizeof name, "w%zu", i);
		assert_int_equal(world_node_add(t->w, name, NULL, NULL, &index), 0);
		assert_int_equal(world_node_start(t->w, index), 0);
	}
}

static struct env *env_of(struct ctx *t, uint32_t node)
{
	return world_node_env(t->w, node);
}

static struct env_ctl *open_task(struct ctx *t, uint32_t node, const char *task,
				 const char *service, uint64_t slot, const char *image,
				 ms_t stop_timeout_ms)
{
	struct env *env = env_of(t, node);
	struct env_container_spec spec = {
		.task_id = task,
		.service_id = service,
		.image = image,
		.stop_timeout_ms = stop_timeout_ms,
		.service_name = service,
		.slot = slot,
	};
	struct env_ctl *ctl = NULL;
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), 0);
	assert_non_null(ctl);
	return ctl;
}

static void done_cb(struct env_ctl_req *req, int status)
{
	struct done *d = req->data;
	assert_false(d->t->in_call);
	d->calls++;
	d->status = status;
	d->state = req->state;
	d->exit_code = req->exit_code;
	memcpy(d->message, req->message, sizeof d->message);
	d->done_us = world_now_us(d->t->w);
	d->health = req->health;
}

/* Asks op on ctl (an env of node) into d; returns ctl_do's result. */
static int do_op(struct ctx *t, uint32_t node, struct env_ctl *ctl, enum env_ctl_op op,
		 struct done *d)
{
	struct env *env = env_of(t, node);
	int rv;
	memset(d, 0, sizeof *d);
	d->t = t;
	d->req.data = d;
	d->called_us = world_now_us(t->w);
	t->in_call = true;
	rv = env->ops->ctl_do(ctl, op, &d->req, done_cb);
	t->in_call = false;
	return rv;
}

static void list_cb(struct env_ctl_list_req *req, int status)
{
	struct listed *l = req->data;
	assert_false(l->t->in_call);
	l->calls++;
	l->status = status;
	l->count = req->found_count;
	assert_true(req->found_count <= 16);
	if (req->found_count)
		memcpy(l->found, req->found, req->found_count * sizeof *req->found);
}

static int do_list(struct ctx *t, uint32_t node, struct listed *l)
{
	struct env *env = env_of(t, node);
	int rv;
	memset(l, 0, sizeof *l);
	l->t = t;
	l->req.data = l;
	t->in_call = true;
	rv = env->ops->ctl_list(env, &l->req, list_cb);
	t->in_call = false;
	return rv;
}

static void closed_cb(struct env_ctl *ctl, void *data)
{
	struct closed *c = data;
	assert_false(c->t->in_call);
	c->calls++;
}

static void do_close(struct ctx *t, uint32_t node, struct env_ctl *ctl, struct closed *c)
{
	struct env *env = env_of(t, node);
	memset(c, 0, sizeof *c);
	c->t = t;
	t->in_call = true;
	env->ops->ctl_close(ctl, closed_cb, c);
	t->in_call = false;
}

/* Runs the world for dur_us of virtual time. */
static void run_for(struct ctx *t, us_t dur_us)
{
	us_t until = world_now_us(t->w) + dur_us;
	while (world_step(t->w, until))
		;
	world_advance(t->w, until);
}

/* Runs until d's callback ran (at most 60 s). */
static void run_until(struct ctx *t, const int *calls)
{
	us_t limit = world_now_us(t->w) + 60 * S;
	while (*calls == 0 && world_step(t->w, limit))
		;
	assert_int_equal(*calls, 1);
}

/* Does op on ctl (node's env) and runs until its callback ran, once: d
 * holds the answer. */
static void op_wait(struct ctx *t, uint32_t node, struct env_ctl *ctl, enum env_ctl_op op,
		    struct done *d)
{
	assert_int_equal(do_op(t, node, ctl, op, d), 0);
	run_until(t, &d->calls);
}

/* Prepares and starts ctl's container; returns when it runs. */
static void prepare_start(struct ctx *t, uint32_t node, struct env_ctl *ctl)
{
	struct done d;
	op_wait(t, node, ctl, ENV_CTL_PREPARE, &d);
	assert_int_equal(d.status, 0);
	op_wait(t, node, ctl, ENV_CTL_START, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_RUNNING);
}

/* ---------------------------------------------------------------- lifecycle */

static void test_simexec_lifecycle_prepare_start_wait_shutdown_remove(void **state)
{
	struct ctx t;
	struct done d, wait;
	struct closed c;
	struct env_ctl *ctl;

	ctx_init(&t, 1, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);

	op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_CREATED);
	assert_int_equal(d.done_us - d.called_us, SIMEXEC_PREPARE_US);
	assert_int_equal(simexec_count(t.x), 1);
	assert_int_equal(simexec_running(t.x, "web", -1), 0);

	op_wait(&t, 0, ctl, ENV_CTL_START, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_RUNNING);
	assert_in_range(d.done_us - d.called_us, SIMEXEC_START_MIN_US,
			SIMEXEC_START_MAX_US);
	assert_int_equal(simexec_running(t.x, "web", -1), 1);

	/* an image never configured runs until stopped */
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	run_for(&t, 30 * S);
	assert_int_equal(wait.calls, 0);

	op_wait(&t, 0, ctl, ENV_CTL_SHUTDOWN, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_EXITED);
	assert_int_equal(d.exit_code, SIMEXEC_EXIT_STOPPED);
	assert_int_equal(d.done_us - d.called_us, SIMEXEC_STOP_US);
	run_until(&t, &wait.calls); /* at the same instant */
	assert_int_equal(wait.status, 0);
	assert_int_equal(wait.state, ENV_CTL_EXITED);
	assert_int_equal(wait.exit_code, SIMEXEC_EXIT_STOPPED);
	assert_int_equal(wait.done_us, d.done_us);
	assert_int_equal(simexec_running(t.x, "web", -1), 0);

	op_wait(&t, 0, ctl, ENV_CTL_REMOVE, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_ABSENT);
	assert_int_equal(simexec_count(t.x), 0);

	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_ABSENT);

	do_close(&t, 0, ctl, &c);
	assert_int_equal(c.calls, 0);
	run_for(&t, 1 * S);
	assert_int_equal(c.calls, 1);
	world_free(t.w);
}

/* ---------------------------------------------------------------- logs */

struct logs_got {
	struct env_logs_req req;
	struct ctx *t;
	int calls, status;
	size_t count;
	char text[1024];
	uint64_t first_ns, last_ns, last_err_ns;
};

static void logs_cb(struct env_logs_req *req, int status)
{
	struct logs_got *g = req->data;
	assert_false(g->t->in_call);
	g->calls++;
	g->status = status;
	g->count = req->line_count;
	g->text[0] = '\0';
	for (size_t i = 0; i < req->line_count; i++) {
		const struct env_log_line *l = &req->lines[i];
		if (strlen(g->text) + l->len + 3 < sizeof g->text) {
			strcat(g->text, l->stream == 2 ? "E:" : "");
			strncat(g->text, l->data, l->len);
		}
		if (i == 0)
			g->first_ns = l->time_ns;
		if (l->stream == 2)
			g->last_err_ns = l->time_ns;
		else
			g->last_ns = l->time_ns;
	}
}

static void do_logs(struct ctx *t, uint32_t node, struct logs_got *g, const char *task,
		    uint64_t after_ns, uint64_t after_err_ns, bool tail_set,
		    uint64_t tail)
{
	struct env *env = env_of(t, node);
	memset(g, 0, sizeof *g);
	g->t = t;
	g->req.data = g;
	g->req.task_id = task;
	g->req.after_ns = after_ns;
	g->req.after_err_ns = after_err_ns;
	g->req.tail_set = tail_set;
	g->req.tail = tail;
	g->req.max_bytes = 1 << 20;
	t->in_call = true;
	assert_int_equal(env->ops->logs_read(env, &g->req, logs_cb), 0);
	t->in_call = false;
	run_until(t, &g->calls);
}

/* Issue 16: a running container's deterministic lines (started, a tick a
 * second, a tock on stderr every fifth), by the tail or after per-stream
 * cursors; none for a container not running or none at all. */
static void test_simexec_logs_are_deterministic_lines_after_cursors(void **state)
{
	struct ctx t;
	struct logs_got g;
	struct env_ctl *ctl;
	uint64_t out_ns, err_ns;
	struct done d;

	ctx_init(&t, 3, 1);
	ctl = open_task(&t, 0, "tl1", "web", 1, "nginx", 10000);
	do_logs(&t, 0, &g, "tl1", 0, 0, false, 0);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.count, 0); /* created, not running */
	prepare_start(&t, 0, ctl);
	run_for(&t, 5500 * 1000);
	do_logs(&t, 0, &g, "tl1", 0, 0, false, 0);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.text, "started nginx task tl1\ntick 1\ntick 2\ntick 3\n"
				    "tick 4\ntick 5\nE:tock 5\n");
	out_ns = g.last_ns;
	err_ns = g.last_err_ns;
	do_logs(&t, 0, &g, "tl1", 0, 0, true, 2);
	assert_string_equal(g.text, "tick 5\nE:tock 5\n");
	/* after the cursors: only what came since */
	run_for(&t, 2 * S);
	do_logs(&t, 0, &g, "tl1", out_ns, err_ns, false, 0);
	assert_string_equal(g.text, "tick 6\ntick 7\n");
	assert_true(g.first_ns > out_ns);
	do_logs(&t, 0, &g, "nosuch", 0, 0, false, 0);
	assert_int_equal(g.count, 0);
	op_wait(&t, 0, ctl, ENV_CTL_SHUTDOWN, &d);
	do_logs(&t, 0, &g, "tl1", 0, 0, false, 0);
	assert_int_equal(g.count, 0);
	world_free(t.w);
}

static void test_simexec_callbacks_never_run_inside_the_call(void **state)
{
	struct ctx t;
	struct done d, wait, start;
	struct listed l;
	struct closed c;
	struct env_ctl *ctl;

	ctx_init(&t, 2, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);

	/* an error found at once still comes by callback, later */
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_START, &start), 0);
	assert_int_equal(start.calls, 0);
	run_until(&t, &start.calls);
	assert_int_equal(start.status, CS_EEXEC);
	assert_non_null(strstr(start.message, "No such container: t1"));

	prepare_start(&t, 0, ctl);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	/* TERMINATE kills during the call; both callbacks come later */
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_TERMINATE, &d), 0);
	assert_int_equal(simexec_running(t.x, NULL, -1), 0);
	assert_int_equal(d.calls, 0);
	assert_int_equal(wait.calls, 0);
	run_until(&t, &d.calls);
	assert_int_equal(wait.calls, 1);
	assert_int_equal(wait.exit_code, SIMEXEC_EXIT_KILLED);
	assert_int_equal(d.state, ENV_CTL_EXITED);
	assert_int_equal(d.exit_code, SIMEXEC_EXIT_KILLED);

	/* WAIT on an exited container, INSPECT, list, close: all later */
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_INSPECT, &d), 0);
	assert_int_equal(do_list(&t, 0, &l), 0);
	assert_int_equal(wait.calls + d.calls + l.calls, 0);
	run_for(&t, 1 * S);
	assert_int_equal(wait.calls, 1);
	assert_int_equal(wait.exit_code, SIMEXEC_EXIT_KILLED);
	assert_int_equal(d.calls, 1);
	assert_int_equal(l.calls, 1);
	do_close(&t, 0, ctl, &c);
	assert_int_equal(c.calls, 0);
	run_for(&t, 1 * S);
	assert_int_equal(c.calls, 1);
	world_free(t.w);
}

static void test_simexec_busy_controller_returns_eagain_and_never_calls_back(void **state)
{
	struct ctx t;
	struct done prep, busy, wait, wait2;
	struct env_ctl *ctl;

	ctx_init(&t, 3, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_PREPARE, &prep), 0);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_INSPECT, &busy), CS_EAGAIN);
	/* a WAIT may run alongside one op, but not alongside another WAIT */
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait2), CS_EAGAIN);
	run_for(&t, 5 * S);
	assert_int_equal(prep.calls, 1);
	assert_int_equal(busy.calls, 0);
	assert_int_equal(wait2.calls, 0);
	assert_int_equal(wait.calls, 0); /* created, never started: still waiting */
	world_free(t.w);
}

static void test_simexec_shutdown_past_stop_timeout_kills_with_137(void **state)
{
	struct ctx t;
	struct done d;
	struct env_ctl *ctl;

	ctx_init(&t, 4, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10);
	prepare_start(&t, 0, ctl);
	op_wait(&t, 0, ctl, ENV_CTL_SHUTDOWN, &d);
	assert_int_equal(d.state, ENV_CTL_EXITED);
	assert_int_equal(d.exit_code, SIMEXEC_EXIT_KILLED);
	assert_int_equal(d.done_us - d.called_us, 10 * MS);
	world_free(t.w);
}

static void test_simexec_remove_while_waiting_on_created_fails_the_wait(void **state)
{
	struct ctx t;
	struct done d, wait;
	struct env_ctl *ctl;

	ctx_init(&t, 5, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	op_wait(&t, 0, ctl, ENV_CTL_REMOVE, &d);
	assert_int_equal(wait.calls, 1);
	assert_int_equal(wait.status, CS_EEXEC);
	assert_int_equal(wait.state, ENV_CTL_ABSENT);
	assert_int_equal(simexec_count(t.x), 0);
	world_free(t.w);
}

/* ---------------------------------------------------------------- images */

static void test_simexec_pull_failure_gives_eexec_and_docker_message(void **state)
{
	struct ctx t;
	struct done d;
	struct listed l;
	struct env_ctl *ctl;

	ctx_init(&t, 6, 1);
	assert_int_equal(simexec_image(t.x, "bad:1", true, 0, 0, false, 0, 0, 0), 0);
	ctl = open_task(&t, 0, "t1", "web", 1, "bad:1", 10000);
	op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
	assert_int_equal(d.status, CS_EEXEC);
	assert_non_null(strstr(d.message, "pull access denied for bad:1"));
	assert_int_equal(d.state, ENV_CTL_ABSENT);
	assert_int_equal(do_list(&t, 0, &l), 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.count, 0);
	world_free(t.w);
}

static void test_simexec_image_names_of_one_image_are_one(void **state)
{
	/* Docker reads nginx, library/nginx, docker.io/library/nginx and
	 * nginx:latest as one image: a pull failure set for one name holds
	 * for the others; another tag, another registry's image are others */
	static const char *const same[] = {"nginx:latest", "docker.io/library/nginx",
					   "library/nginx:latest",
					   "index.docker.io/library/nginx:latest"};
	static const char *const other[] = {"nginx:1.25", "example.com/nginx",
					    "me/nginx"};
	struct ctx t;
	struct done d;
	struct env_ctl *ctl;

	ctx_init(&t, 6, 1);
	assert_int_equal(simexec_image(t.x, "nginx", true, 0, 0, false, 0, 0, 0), 0);
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		char id[8];
		snprintf(id, sizeof id, "s%zu", i);
		ctl = open_task(&t, 0, id, "web", (uint64_t)i + 1, same[i], 10000);
		memset(&d, 0, sizeof d);
		op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
		assert_int_equal(d.status, CS_EEXEC);
	}
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		char id[8];
		snprintf(id, sizeof id, "o%zu", i);
		ctl = open_task(&t, 0, id, "web", (uint64_t)i + 10, other[i], 10000);
		memset(&d, 0, sizeof d);
		op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
		assert_int_equal(d.status, 0);
	}
	world_free(t.w);
}

static void test_simexec_start_latency_within_configured_range(void **state)
{
	struct ctx t;
	us_t lo = UINT64_MAX, hi = 0;

	ctx_init(&t, 7, 1);
	assert_int_equal(
		simexec_image(t.x, "fast", false, 200 * MS, 300 * MS, false, 0, 0, 0), 0);
	for (int i = 0; i < 40; i++) {
		char task[16];
		struct done d;
		struct env_ctl *ctl;
		snprintf(task, sizeof task, "t%02d", i);
		ctl = open_task(&t, 0, task, "web", (uint64_t)i + 1, "fast", 10000);
		op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
		op_wait(&t, 0, ctl, ENV_CTL_START, &d);
		assert_int_equal(d.state, ENV_CTL_RUNNING);
		if (d.done_us - d.called_us < lo)
			lo = d.done_us - d.called_us;
		if (d.done_us - d.called_us > hi)
			hi = d.done_us - d.called_us;
	}
	assert_true(lo >= 200 * MS);
	assert_true(hi <= 300 * MS);
	assert_true(hi - lo >= 50 * MS); /* drawn, not fixed */
	assert_int_equal(simexec_running(t.x, "web", 0), 40);
	world_free(t.w);
}

static void test_simexec_exit_after_configured_time_with_code(void **state)
{
	struct ctx t;
	struct done d, wait;
	struct env_ctl *ctl;

	ctx_init(&t, 8, 1);
	assert_int_equal(simexec_image(t.x, "job", false, 100 * MS, 100 * MS, true, 3,
				       2 * S, 3 * S),
			 0);
	ctl = open_task(&t, 0, "t1", "batch", 1, "job", 10000);
	prepare_start(&t, 0, ctl);
	assert_int_equal(simexec_running(t.x, "batch", -1), 1);
	op_wait(&t, 0, ctl, ENV_CTL_WAIT, &wait);
	assert_int_equal(wait.status, 0);
	assert_int_equal(wait.state, ENV_CTL_EXITED);
	assert_int_equal(wait.exit_code, 3);
	assert_in_range(wait.done_us - wait.called_us, 2 * S, 3 * S);
	assert_int_equal(simexec_running(t.x, "batch", -1), 0);
	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.state, ENV_CTL_EXITED);
	assert_int_equal(d.exit_code, 3);
	world_free(t.w);
}

static void test_simexec_image_settings_are_validated(void **state)
{
	struct ctx t;
	char long_name[SIMEXEC_IMAGE_BYTES_MAX + 2];

	ctx_init(&t, 9, 0);
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	assert_int_equal(simexec_image(t.x, "", false, 0, 0, false, 0, 0, 0), CS_EINVAL);
	assert_int_equal(simexec_image(t.x, "x", false, 2, 1, false, 0, 0, 0), CS_EINVAL);
	assert_int_equal(simexec_image(t.x, "x", false, 1, 2, true, 0, 5, 4), CS_EINVAL);
	assert_int_equal(simexec_image(t.x, long_name, false, 0, 0, false, 0, 0, 0),
			 CS_ELIMIT);
	assert_int_equal(simexec_image(t.x, "x", false, 1, 2, true, 0, 4, 5), 0);
	assert_int_equal(simexec_image(t.x, "x", true, 1, 2, false, 0, 0, 0), 0);
	world_free(t.w);
}

static void test_simexec_open_rejects_bad_specs(void **state)
{
	struct ctx t;
	struct env *env;
	struct env_ctl *ctl = NULL;
	char long_id[80];
	struct env_container_spec spec = {.image = "nginx"};

	ctx_init(&t, 10, 1);
	env = env_of(&t, 0);
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), CS_EINVAL);
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	spec.task_id = long_id;
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), CS_ELIMIT);
	spec.task_id = "t1";
	spec.image = NULL;
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), CS_EINVAL);
	assert_null(ctl);
	world_free(t.w);
}

/* A controller's texts (service id and name, image) are bounded as the
 * arrays that held them were, and kept once for every container that
 * shares them (issue 18); its published ports at most SIMEXEC_PORTS_MAX,
 * ports Docker picks not counted. Each container keeps its own service
 * id after another's controller is gone. */
static void test_simexec_open_bounds_texts_and_ports(void **state)
{
	struct ctx t;
	struct env *env;
	struct env_ctl *ctl = NULL, *a, *b;
	struct listed l;
	struct done d;
	char id64[65], image[SIMEXEC_IMAGE_BYTES_MAX + 2];
	struct env_port ports[SIMEXEC_PORTS_MAX + 3];
	struct env_container_spec spec = {.task_id = "t1", .image = "nginx"};

	ctx_init(&t, 10, 1);
	env = env_of(&t, 0);
	memset(id64, 's', sizeof id64 - 1);
	id64[sizeof id64 - 1] = '\0';
	memset(image, 'i', sizeof image - 1);
	image[sizeof image - 1] = '\0';
	spec.service_id = id64; /* 64 bytes: one over */
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), CS_ELIMIT);
	spec.service_id = id64 + 1;
	spec.service_name = id64;
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), CS_ELIMIT);
	spec.service_name = id64 + 1;
	spec.image = image; /* SIMEXEC_IMAGE_BYTES_MAX + 1 */
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), CS_ELIMIT);
	assert_null(ctl);
	spec.image = image + 1;
	for (size_t i = 0; i < SIMEXEC_PORTS_MAX + 3; i++)
		ports[i] = (struct env_port){.target = 80,
					     .published = (uint32_t)(8000 + i)};
	spec.ports = ports;
	spec.port_count = SIMEXEC_PORTS_MAX + 1;
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), CS_ELIMIT);
	ports[0].published = ports[1].published = ports[2].published = 0;
	spec.port_count = SIMEXEC_PORTS_MAX + 3; /* 16 published */
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), 0);
	a = ctl;
	op_wait(&t, 0, a, ENV_CTL_PREPARE, &d);
	assert_int_equal(d.status, 0);
	op_wait(&t, 0, a, ENV_CTL_START, &d);
	assert_int_equal(d.status, 0);
	/* another task of the same texts, then one of another service id */
	b = open_task(&t, 0, "t2", id64 + 1, 2, image + 1, 10000);
	op_wait(&t, 0, b, ENV_CTL_PREPARE, &d);
	assert_int_equal(d.status, 0);
	env->ops->ctl_close(b, NULL, NULL);
	b = open_task(&t, 0, "t3", "other", 3, image + 1, 10000);
	op_wait(&t, 0, b, ENV_CTL_PREPARE, &d);
	assert_int_equal(d.status, 0);
	env->ops->ctl_close(a, NULL, NULL);
	assert_int_equal(do_list(&t, 0, &l), 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.count, 3);
	assert_string_equal(l.found[0].task_id, "t1");
	assert_string_equal(l.found[0].service_id, id64 + 1);
	assert_int_equal(l.found[0].state, ENV_CTL_RUNNING);
	assert_string_equal(l.found[1].service_id, id64 + 1);
	assert_string_equal(l.found[2].service_id, "other");
	world_free(t.w);
}

/* ---------------------------------------------------------------- node death */

static void test_simexec_process_kill_keeps_container_and_new_controller_adopts(
	void **state)
{
	struct ctx t;
	struct done d, lost, wait;
	struct listed l;
	struct env_ctl *ctl;
	us_t started_us;

	ctx_init(&t, 11, 1);
	assert_int_equal(simexec_image(t.x, "long", false, 100 * MS, 100 * MS, true, 7,
				       10 * S, 10 * S),
			 0);
	ctl = open_task(&t, 0, "t1", "web", 1, "long", 10000);
	prepare_start(&t, 0, ctl);
	started_us = world_now_us(t.w);
	/* requests in flight when the process dies never call back */
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_INSPECT, &lost), 0);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	assert_int_equal(world_node_kill(t.w, 0, false, false), 0);
	assert_int_equal(simexec_running(t.x, "web", 0), 1);
	run_for(&t, 1 * S);
	assert_int_equal(lost.calls, 0);
	assert_int_equal(simexec_running(t.x, "web", 0), 1);

	assert_int_equal(world_node_start(t.w, 0), 0);
	assert_int_equal(do_list(&t, 0, &l), 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.status, 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.found[0].task_id, "t1");
	assert_string_equal(l.found[0].service_id, "web");
	assert_int_equal(l.found[0].state, ENV_CTL_RUNNING);

	ctl = open_task(&t, 0, "t1", "web", 1, "long", 10000);
	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_RUNNING);
	op_wait(&t, 0, ctl, ENV_CTL_WAIT, &d);
	assert_int_equal(d.state, ENV_CTL_EXITED);
	assert_int_equal(d.exit_code, 7);
	assert_int_equal(d.done_us, started_us + 10 * S); /* its schedule held */
	assert_int_equal(wait.calls, 0); /* the dead process's WAIT stayed dead */
	assert_int_equal(lost.calls, 0);
	world_free(t.w);
}

static void test_simexec_start_in_flight_completes_after_process_kill(void **state)
{
	struct ctx t;
	struct done d;
	struct env_ctl *ctl;

	ctx_init(&t, 12, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_START, &d), 0);
	assert_int_equal(world_node_kill(t.w, 0, false, false), 0);
	run_for(&t, 2 * S);
	assert_int_equal(d.calls, 0);
	assert_int_equal(simexec_running(t.x, "web", 0), 1); /* dockerd went on */
	world_free(t.w);
}

static void test_simexec_machine_kill_makes_its_containers_gone(void **state)
{
	struct ctx t;
	struct done d, starting;
	struct listed l;
	struct env_ctl *ctl, *ctl2, *other;

	ctx_init(&t, 13, 2);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, ctl);
	ctl2 = open_task(&t, 0, "t2", "web", 2, "nginx", 10000);
	op_wait(&t, 0, ctl2, ENV_CTL_PREPARE, &d);
	other = open_task(&t, 1, "t3", "web", 3, "nginx", 10000);
	prepare_start(&t, 1, other);
	assert_int_equal(do_op(&t, 0, ctl2, ENV_CTL_START, &starting), 0);
	assert_int_equal(simexec_running(t.x, "web", -1), 2);

	assert_int_equal(world_node_kill(t.w, 0, true, false), 0);
	assert_int_equal(simexec_running(t.x, "web", 0), 0);
	assert_int_equal(simexec_running(t.x, "web", -1), 1);
	assert_int_equal(simexec_count(t.x), 1);
	run_for(&t, 5 * S); /* the start in flight died with the machine */
	assert_int_equal(starting.calls, 0);
	assert_int_equal(simexec_running(t.x, "web", 0), 0);

	assert_int_equal(world_node_start(t.w, 0), 0);
	assert_int_equal(do_list(&t, 0, &l), 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.count, 0);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.state, ENV_CTL_ABSENT);
	assert_int_equal(simexec_running(t.x, "web", 1), 1);
	world_free(t.w);
}

static void test_simexec_machine_crash_after_process_kill_kills_containers(void **state)
{
	struct ctx t;
	struct env_ctl *ctl;

	ctx_init(&t, 14, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, ctl);
	assert_int_equal(world_node_kill(t.w, 0, false, false), 0);
	assert_int_equal(simexec_running(t.x, NULL, 0), 1);
	simexec_node_died(t.x, 0, true);
	assert_int_equal(simexec_running(t.x, NULL, 0), 0);
	assert_int_equal(simexec_count(t.x), 0);
	world_free(t.w);
}

static void test_simexec_close_cancels_pending_requests_without_callbacks(void **state)
{
	struct ctx t;
	struct done d, start, wait;
	struct closed c;
	struct env_ctl *ctl;

	ctx_init(&t, 15, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_START, &start), 0);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	do_close(&t, 0, ctl, &c);
	run_for(&t, 5 * S);
	assert_int_equal(c.calls, 1);
	assert_int_equal(start.calls, 0);
	assert_int_equal(wait.calls, 0);
	/* the container is the machine's: it started anyway */
	assert_int_equal(simexec_running(t.x, "web", 0), 1);
	world_free(t.w);
}

static void test_simexec_world_free_releases_everything_pending(void **state)
{
	struct ctx t;
	struct done d[3];
	struct listed l;
	struct closed c;
	struct env_ctl *a, *b, *gone;

	ctx_init(&t, 16, 2);
	assert_int_equal(simexec_image(t.x, "job", false, 0, 0, true, 1, 60 * S, 60 * S),
			 0);
	a = open_task(&t, 0, "t1", "web", 1, "job", 10000);
	prepare_start(&t, 0, a);
	b = open_task(&t, 1, "t2", "web", 2, "nginx", 10000);
	gone = open_task(&t, 1, "t3", "web", 3, "nginx", 10000);
	assert_int_equal(do_op(&t, 0, a, ENV_CTL_WAIT, &d[0]), 0);
	assert_int_equal(do_op(&t, 0, a, ENV_CTL_SHUTDOWN, &d[1]), 0);
	assert_int_equal(do_op(&t, 1, b, ENV_CTL_PREPARE, &d[2]), 0);
	assert_int_equal(do_list(&t, 1, &l), 0);
	do_close(&t, 1, gone, &c);
	assert_int_equal(world_node_kill(t.w, 0, false, false), 0); /* exit still due */
	world_free(t.w); /* LSan: nothing left behind */
}

/* ---------------------------------------------------------------- listing and ground truth */

static void test_simexec_list_is_in_task_id_order_per_node(void **state)
{
	struct ctx t;
	struct listed l;
	const char *tasks[] = {"t3", "t1", "t2"};

	ctx_init(&t, 17, 2);
	for (size_t i = 0; i < 3; i++) {
		struct done d;
		char svc[8];
		struct env_ctl *ctl;
		snprintf(svc, sizeof svc, "s%zu", i);
		ctl = open_task(&t, 0, tasks[i], svc, 1, "nginx", 10000);
		op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
	}
	prepare_start(&t, 1, open_task(&t, 1, "t0", "s9", 1, "nginx", 10000));
	assert_int_equal(do_list(&t, 0, &l), 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.status, 0);
	assert_int_equal(l.count, 3);
	assert_string_equal(l.found[0].task_id, "t1");
	assert_string_equal(l.found[0].service_id, "s1");
	assert_string_equal(l.found[1].task_id, "t2");
	assert_string_equal(l.found[1].service_id, "s2");
	assert_string_equal(l.found[2].task_id, "t3");
	assert_string_equal(l.found[2].service_id, "s0");
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(l.found[i].state, ENV_CTL_CREATED);
	assert_int_equal(do_list(&t, 1, &l), 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.found[0].task_id, "t0");
	assert_int_equal(l.found[0].state, ENV_CTL_RUNNING);
	world_free(t.w);
}

static void test_simexec_running_counts_by_service_and_node(void **state)
{
	struct ctx t;
	struct done d;
	struct env_ctl *created;

	ctx_init(&t, 18, 3);
	prepare_start(&t, 0, open_task(&t, 0, "a1", "web", 1, "nginx", 10000));
	prepare_start(&t, 0, open_task(&t, 0, "a2", "web", 2, "nginx", 10000));
	prepare_start(&t, 1, open_task(&t, 1, "a3", "web", 3, "nginx", 10000));
	prepare_start(&t, 1, open_task(&t, 1, "b1", "db", 1, "nginx", 10000));
	created = open_task(&t, 2, "a4", "web", 4, "nginx", 10000);
	op_wait(&t, 2, created, ENV_CTL_PREPARE, &d);

	assert_int_equal(simexec_running(t.x, "web", -1), 3);
	assert_int_equal(simexec_running(t.x, "web", 0), 2);
	assert_int_equal(simexec_running(t.x, "web", 1), 1);
	assert_int_equal(simexec_running(t.x, "web", 2), 0);
	assert_int_equal(simexec_running(t.x, "db", -1), 1);
	assert_int_equal(simexec_running(t.x, "db", 0), 0);
	assert_int_equal(simexec_running(t.x, NULL, 1), 2);
	assert_int_equal(simexec_running(t.x, NULL, -1), 4);
	assert_int_equal(simexec_running(t.x, "nope", -1), 0);
	assert_int_equal(simexec_count(t.x), 5);
	world_free(t.w);
}

struct seen {
	size_t count;
	char tasks[8][16];
	uint32_t nodes[8];
};

static void seen_fn(void *ctx, const struct simexec_info *info)
{
	struct seen *s = ctx;
	assert_true(s->count < 8);
	snprintf(s->tasks[s->count], sizeof s->tasks[0], "%s", info->task_id);
	s->nodes[s->count++] = info->node;
}

/* Issue 17, the routing mesh: declares the ingress network (id 0x10) on
 * node as the agent would: every node's own address 10.0.0.2N at wN (w1's
 * own left out when drop_w0 says so: w0's then), web's task 10.0.0.5 at
 * w1, web publishing 8080/tcp; own: node's own address, or NULL. */
static void mesh_declare(struct ctx *t, uint32_t node, const char *own, bool drop_w0)
{
	struct env *env = env_of(t, node);
	struct env_net_endpoint eps[4] = {
		{.task_id = 5, .addr = "10.0.0.5", .node_ip = "w1"},
		{.task_id = 100, .addr = "10.0.0.20", .node_ip = "w0"},
		{.task_id = 101, .addr = "10.0.0.21", .node_ip = "w1"},
		{.task_id = 102, .addr = "10.0.0.22", .node_ip = "w2"},
	};
	struct env_net_endpoint kept[4];
	const char *backends[] = {"10.0.0.5", NULL};
	struct env_port port = {.target = 80, .published = 8080, .proto = ENV_PORT_TCP};
	struct env_net_service svc = {.service_id = 7,
				      .name = "web",
				      .vip = "10.0.0.3",
				      .backends = backends,
				      .ports = &port,
				      .port_count = 1};
	struct env_net_state st = {.network_id = 0x10,
				   .name = "ingress",
				   .subnet = "10.0.0.0/24",
				   .gateway = "10.0.0.1",
				   .ingress = true,
				   .services = &svc,
				   .service_count = 1,
				   .node_addr = own};
	size_t n = 0;
	for (size_t i = 0; i < 4; i++) {
		if (drop_w0 && i == 1)
			continue;
		kept[n] = eps[i];
		kept[n].local = strcmp(eps[i].node_ip, world_node_name(t->w, node)) == 0;
		n++;
	}
	st.endpoints = kept;
	st.endpoint_count = n;
	assert_int_equal(env->ops->net_set(env, &st), 0);
}

static void test_simexec_mesh_reaches_a_running_task_through_any_node(void **state)
{
	struct ctx t;
	struct env *env;
	struct env_net_attach att = {.network_id = 0x10, .addr = "10.0.0.5/24"};
	struct env_container_spec spec = {.task_id = "t5",
					  .service_id = "web",
					  .image = "img",
					  .service_name = "web",
					  .slot = 1,
					  .networks = &att,
					  .network_count = 1};
	struct env_ctl *ctl = NULL;
	struct simexec_mesh_out out;
	struct done d;
	char got[256];
	(void)state;

	ctx_init(&t, 1, 3);
	for (uint32_t i = 0; i < 3; i++) {
		char own[16];
		snprintf(own, sizeof own, "10.0.0.2%u", i);
		mesh_declare(&t, i, own, false);
	}
	env = env_of(&t, 1);
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), 0);
	/* declared, no task runs yet: the rule's backend does not answer */
	assert_int_equal(
		simexec_mesh_reach(t.x, 0, 8080, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_BROKEN);
	prepare_start(&t, 1, ctl);
	/* through w0 and w2 (no task there) and on w1 itself */
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(simexec_mesh_reach(t.x, i, 8080, ENV_PORT_TCP, &out, got,
						    sizeof got),
				 SIMEXEC_MESH_REACHES);
		assert_string_equal(out.service, "web");
		assert_int_equal(out.backend_count, 1);
		assert_int_equal(out.network_id, 0x10);
		assert_true(simexec_check_mesh(t.x, i, 8080, ENV_PORT_TCP, "web", NULL,
					       NULL, got, sizeof got));
		/* answers for web only */
		assert_false(simexec_check_mesh(t.x, i, 8080, ENV_PORT_TCP, "api", NULL,
						NULL, got, sizeof got));
	}
	/* another port, or protocol: refused */
	assert_int_equal(
		simexec_mesh_reach(t.x, 0, 9090, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_REFUSED);
	assert_null(out.service);
	assert_int_equal(
		simexec_mesh_reach(t.x, 0, 8080, ENV_PORT_UDP, &out, got, sizeof got),
		SIMEXEC_MESH_REFUSED);
	/* w1 no longer lists w0's own address: w0's answers cannot come back */
	mesh_declare(&t, 1, "10.0.0.21", true);
	assert_int_equal(
		simexec_mesh_reach(t.x, 0, 8080, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_BROKEN);
	assert_non_null(strstr(got, "cannot answer back"));
	assert_false(simexec_check_mesh(t.x, 0, 8080, ENV_PORT_TCP, "web", NULL, NULL,
					got, sizeof got));
	assert_int_equal(
		simexec_mesh_reach(t.x, 2, 8080, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_REACHES);
	/* w2 without its own address: local backends only, none: refused,
	 * and the invariant says web's running task gets nothing from it */
	mesh_declare(&t, 2, NULL, false);
	assert_int_equal(
		simexec_mesh_reach(t.x, 2, 8080, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_REFUSED);
	assert_false(simexec_check_mesh(t.x, 2, 8080, ENV_PORT_TCP, "web", NULL, NULL,
					got, sizeof got));
	/* ... while w1 (its task local) still answers */
	mesh_declare(&t, 1, NULL, false);
	assert_int_equal(
		simexec_mesh_reach(t.x, 1, 8080, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_REACHES);
	/* the task stops: a rule still listing it is broken */
	mesh_declare(&t, 1, "10.0.0.21", false);
	op_wait(&t, 1, ctl, ENV_CTL_SHUTDOWN, &d);
	assert_int_equal(
		simexec_mesh_reach(t.x, 0, 8080, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_BROKEN);
	assert_non_null(strstr(got, "does not run"));
	/* a machine crash takes the node's rules with it */
	assert_int_equal(world_node_kill(t.w, 0, true, false), 0);
	assert_int_equal(
		simexec_mesh_reach(t.x, 0, 8080, ENV_PORT_TCP, &out, got, sizeof got),
		SIMEXEC_MESH_REFUSED);
	world_free(t.w);
}

static void test_simexec_foreach_goes_by_node_then_task_id(void **state)
{
	struct ctx t;
	struct seen s = {0};

	ctx_init(&t, 19, 2);
	prepare_start(&t, 1, open_task(&t, 1, "a", "web", 1, "nginx", 10000));
	prepare_start(&t, 0, open_task(&t, 0, "c", "web", 2, "nginx", 10000));
	prepare_start(&t, 0, open_task(&t, 0, "b", "web", 3, "nginx", 10000));
	simexec_foreach(t.x, seen_fn, &s);
	assert_int_equal(s.count, 3);
	assert_string_equal(s.tasks[0], "b");
	assert_int_equal(s.nodes[0], 0);
	assert_string_equal(s.tasks[1], "c");
	assert_string_equal(s.tasks[2], "a");
	assert_int_equal(s.nodes[2], 1);
	world_free(t.w);
}

static void test_simexec_check_catches_one_task_in_two_containers(void **state)
{
	struct ctx t;
	struct done d;
	struct env_ctl *a;
	char msg[256];

	ctx_init(&t, 20, 3);
	a = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, a);
	assert_true(simexec_check(t.x, msg, sizeof msg));
	assert_string_equal(msg, "");
	prepare_start(&t, 2, open_task(&t, 2, "t1", "web", 0, "nginx", 10000));
	assert_false(simexec_check(t.x, msg, sizeof msg));
	assert_non_null(strstr(msg, "task t1"));
	assert_non_null(strstr(msg, "w0"));
	assert_non_null(strstr(msg, "w2"));
	assert_null(strstr(msg, "w1"));
	assert_int_equal(do_op(&t, 0, a, ENV_CTL_TERMINATE, &d), 0);
	assert_true(simexec_check(t.x, msg, sizeof msg));
	run_until(&t, &d.calls);
	world_free(t.w);
}

static void test_simexec_check_catches_two_running_in_one_slot_unless_allowed(
	void **state)
{
	struct ctx t;
	struct done d;
	struct env_ctl *a;
	char msg[256];

	ctx_init(&t, 21, 2);
	/* global tasks (slot 0) share no slot */
	prepare_start(&t, 0, open_task(&t, 0, "g1", "mon", 0, "nginx", 10000));
	prepare_start(&t, 1, open_task(&t, 1, "g2", "mon", 0, "nginx", 10000));
	assert_true(simexec_check(t.x, msg, sizeof msg));

	a = open_task(&t, 0, "a", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, a);
	prepare_start(&t, 1, open_task(&t, 1, "b", "web", 1, "nginx", 10000));
	assert_false(simexec_check(t.x, msg, sizeof msg));
	assert_non_null(strstr(msg, "service web slot 1"));
	assert_non_null(strstr(msg, "task a on w0"));
	assert_non_null(strstr(msg, "task b on w1"));

	assert_int_equal(simexec_allow_two_per_slot(t.x, "web", true), 0);
	assert_true(simexec_check(t.x, msg, sizeof msg));
	assert_int_equal(simexec_allow_two_per_slot(t.x, "web", false), 0);
	assert_false(simexec_check(t.x, msg, sizeof msg));

	op_wait(&t, 0, a, ENV_CTL_SHUTDOWN, &d);
	assert_true(simexec_check(t.x, msg, sizeof msg));
	world_free(t.w);
}

static void test_simexec_tallies_follow_starts_and_stops_in_every_slot(void **state)
{
	/* issue 18: the running containers of each task id and slot are
	 * counted in place (slots up to a bound; beyond it in the tree):
	 * invariant 3's tallies follow every start and stop either way */
	struct ctx t;
	struct done d;
	struct env_ctl *a, *b, *c, *e, *f;
	const uint64_t far = 1ull << 23; /* past the slots counted in place */
	char msg[256];

	ctx_init(&t, 23, 3);
	prepare_start(&t, 0, open_task(&t, 0, "s1", "web", 1, "nginx", 10000));
	a = open_task(&t, 0, "s100a", "web", 100, "nginx", 10000); /* grows the counts */
	prepare_start(&t, 0, a);
	assert_false(simexec_slots_over(t.x));
	prepare_start(&t, 1, open_task(&t, 1, "s100b", "web", 100, "nginx", 10000));
	assert_true(simexec_slots_over(t.x));
	assert_false(simexec_check(t.x, msg, sizeof msg));
	assert_non_null(strstr(msg, "slot 100"));
	op_wait(&t, 0, a, ENV_CTL_SHUTDOWN, &d);
	assert_false(simexec_slots_over(t.x));
	assert_true(simexec_check(t.x, msg, sizeof msg));

	/* slot 100 counted right after a stop */
	prepare_start(&t, 2, open_task(&t, 2, "s100c", "web", 100, "nginx", 10000));
	assert_true(simexec_slots_over(t.x));
	b = open_task(&t, 0, "far-a", "api", far, "nginx", 10000);
	prepare_start(&t, 0, b);
	c = open_task(&t, 2, "far-b", "api", far, "nginx", 10000);
	prepare_start(&t, 2, c);
	assert_true(simexec_slots_over(t.x));
	op_wait(&t, 2, c, ENV_CTL_SHUTDOWN, &d);
	assert_true(simexec_slots_over(t.x)); /* web's slot 100 still */
	assert_false(simexec_check(t.x, msg, sizeof msg));
	assert_null(strstr(msg, "api"));

	/* one task id on two machines, then on one again */
	e = open_task(&t, 0, "twice", "db", 0, "nginx", 10000);
	prepare_start(&t, 0, e);
	assert_false(simexec_tasks_twice(t.x));
	f = open_task(&t, 1, "twice", "db", 0, "nginx", 10000);
	prepare_start(&t, 1, f);
	assert_true(simexec_tasks_twice(t.x));
	op_wait(&t, 1, f, ENV_CTL_SHUTDOWN, &d);
	assert_false(simexec_tasks_twice(t.x));
	op_wait(&t, 0, e, ENV_CTL_SHUTDOWN, &d);
	assert_false(simexec_tasks_twice(t.x));
	world_free(t.w);
}

static void test_simexec_indexes_are_built_at_their_first_read(void **state)
{
	/* issue 18: a healthy run links no container by task id or slot;
	 * the first read links them all, and from then on every create and
	 * remove keeps them, with the same answers as ever */
	struct ctx t;
	struct done d;
	struct env_ctl *a, *b, *c;
	char msg[256];

	ctx_init(&t, 37, 3);
	a = open_task(&t, 0, "a", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, a);
	prepare_start(&t, 1, open_task(&t, 1, "b", "web", 2, "nginx", 10000));
	prepare_start(&t, 2, open_task(&t, 2, "c", "web", 3, "nginx", 10000));
	assert_true(simexec_check(t.x, msg, sizeof msg));
	assert_int_equal(simexec_count(t.x), 3);
	assert_int_equal(simexec_indexed(t.x), 0);

	/* a second container of slot 1: the check's message reads them */
	b = open_task(&t, 1, "a2", "web", 1, "nginx", 10000);
	prepare_start(&t, 1, b);
	assert_false(simexec_check(t.x, msg, sizeof msg));
	assert_int_equal(simexec_indexed(t.x), 4);
	assert_non_null(strstr(msg, "service web slot 1"));
	assert_non_null(strstr(msg, "task a on w0"));
	assert_non_null(strstr(msg, "task a2 on w1"));

	/* kept from then on: a create, a removal, a task id twice */
	c = open_task(&t, 2, "a", "web", 1, "nginx", 10000);
	prepare_start(&t, 2, c);
	assert_int_equal(simexec_indexed(t.x), 5);
	assert_true(simexec_tasks_twice(t.x));
	assert_false(simexec_check(t.x, msg, sizeof msg));
	assert_non_null(strstr(msg, "task a runs in 2 containers at once: on w0, w2"));
	op_wait(&t, 2, c, ENV_CTL_SHUTDOWN, &d);
	op_wait(&t, 2, c, ENV_CTL_REMOVE, &d);
	op_wait(&t, 1, b, ENV_CTL_SHUTDOWN, &d);
	assert_int_equal(simexec_indexed(t.x), 4);
	assert_true(simexec_check(t.x, msg, sizeof msg));
	world_free(t.w);
}

static void test_simexec_finds_each_container_among_thousands_after_removals(void **state)
{
	/* issue 18: a controller's op finds its container by (node, task id)
	 * in a hash beside the trees, which grows past its first size and
	 * closes the gaps removals leave: every op still finds its own
	 * container, and a removed one is gone, the same task id on another
	 * node untouched */
	enum { N = 2400 };
	struct ctx t;
	struct env_ctl **ctl = calloc(N, sizeof *ctl);
	struct done *d = calloc(N, sizeof *d);
	struct env_ctl *twin;
	struct done e;

	assert_non_null(ctl);
	assert_non_null(d);
	ctx_init(&t, 31, 3);
	for (size_t i = 0; i < N; i++) {
		char task[16];
		snprintf(task, sizeof task, "t%05zu", i);
		ctl[i] = open_task(&t, (uint32_t)(i % 3), task, "web", i + 1, "nginx",
				   10000);
		assert_int_equal(
			do_op(&t, (uint32_t)(i % 3), ctl[i], ENV_CTL_PREPARE, &d[i]), 0);
	}
	run_for(&t, 5 * S);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(d[i].status, 0);
	twin = open_task(&t, 1, "t00000", "web", 1, "nginx", 10000); /* t00000 is on w0 */
	op_wait(&t, 1, twin, ENV_CTL_PREPARE, &e);
	assert_int_equal(e.status, 0);
	/* remove two of every three (runs of neighbours in the hash) */
	for (size_t i = 0; i < N; i++)
		if (i % 3 != 1)
			assert_int_equal(do_op(&t, (uint32_t)(i % 3), ctl[i],
					       ENV_CTL_REMOVE, &d[i]),
					 0);
	run_for(&t, 5 * S);
	for (size_t i = 0; i < N; i++) {
		if (i % 3 != 1)
			assert_int_equal(d[i].status, 0);
		assert_int_equal(
			do_op(&t, (uint32_t)(i % 3), ctl[i], ENV_CTL_INSPECT, &d[i]), 0);
	}
	run_for(&t, 5 * S);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].status, 0);
		assert_int_equal(d[i].state,
				 i % 3 == 1 ? ENV_CTL_CREATED : ENV_CTL_ABSENT);
	}
	op_wait(&t, 1, twin, ENV_CTL_INSPECT, &e);
	assert_int_equal(e.status, 0);
	assert_int_equal(e.state, ENV_CTL_CREATED);
	free(ctl);
	free(d);
	world_free(t.w);
}

static void test_simexec_check_message_is_cut_to_fit(void **state)
{
	struct ctx t;
	char msg[12];

	ctx_init(&t, 22, 2);
	prepare_start(&t, 0, open_task(&t, 0, "t1", "web", 1, "nginx", 10000));
	prepare_start(&t, 1, open_task(&t, 1, "t1", "web", 1, "nginx", 10000));
	assert_false(simexec_check(t.x, msg, sizeof msg));
	assert_int_equal(strlen(msg), sizeof msg - 1);
	world_free(t.w);
}

/* ---------------------------------------------------------------- determinism */

/* Starts n containers and returns the trace hash; start times into at[]. */
static uint64_t start_many(uint64_t seed, us_t *at, size_t n)
{
	struct ctx t;
	uint64_t hash;

	ctx_init(&t, seed, 1);
	for (size_t i = 0; i < n; i++) {
		char task[24];
		snprintf(task, sizeof task, "t%zu", i);
		prepare_start(&t, 0,
			      open_task(&t, 0, task, "web", i + 1, "nginx", 10000));
		at[i] = world_now_us(t.w);
	}
	hash = world_hash(t.w);
	world_free(t.w);
	return hash;
}

static void test_simexec_same_seed_same_timeline(void **state)
{
	us_t a[10], b[10], c[10];
	uint64_t ha = start_many(42, a, 10);
	uint64_t hb = start_many(42, b, 10);
	uint64_t hc = start_many(43, c, 10);
	assert_int_equal(ha, hb);
	assert_memory_equal(a, b, sizeof a);
	assert_true(ha != hc);
	assert_true(memcmp(a, c, sizeof a) != 0);
}

/* ---------------------------------------------------------------- faults */

static void test_simexec_start_fail_image_fails_start_container_stays_created(
	void **state)
{
	struct ctx t;
	struct done d;
	struct env_ctl *ctl;

	ctx_init(&t, 31, 1);
	assert_int_equal(simexec_image(t.x, "broken", false, 0, 0, false, 0, 0, 0), 0);
	assert_int_equal(simexec_image_faults(t.x, "broken", true, false), 0);
	assert_int_equal(simexec_image_faults(t.x, "never-configured", true, false),
			 CS_ENOENT);
	ctl = open_task(&t, 0, "t1", "web", 1, "broken", 10000);
	op_wait(&t, 0, ctl, ENV_CTL_PREPARE, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_START, &d), 0);
	assert_int_equal(d.calls, 0);
	run_until(&t, &d.calls);
	assert_int_equal(d.status, CS_EEXEC);
	assert_non_null(strstr(d.message, "OCI runtime create failed"));
	assert_int_equal(d.state, ENV_CTL_CREATED);
	run_for(&t, 5 * S);
	assert_int_equal(simexec_running(t.x, NULL, -1), 0);
	/* `image broken` again: the fault is reset, the start works */
	assert_int_equal(simexec_image(t.x, "broken", false, 0, 0, false, 0, 0, 0), 0);
	op_wait(&t, 0, ctl, ENV_CTL_START, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_RUNNING);
	world_free(t.w);
}

static void test_simexec_stop_ignore_is_killed_at_the_stop_timeout(void **state)
{
	struct ctx t;
	struct done d;
	struct env_ctl *ctl;

	ctx_init(&t, 32, 1);
	assert_int_equal(simexec_image(t.x, "stubborn", false, 0, 0, false, 0, 0, 0), 0);
	assert_int_equal(simexec_image_faults(t.x, "stubborn", false, true), 0);
	ctl = open_task(&t, 0, "t1", "web", 1, "stubborn", 10000);
	prepare_start(&t, 0, ctl);
	op_wait(&t, 0, ctl, ENV_CTL_SHUTDOWN, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_EXITED);
	assert_int_equal(d.exit_code, SIMEXEC_EXIT_KILLED);
	assert_int_equal(d.done_us - d.called_us, 10 * S);
	world_free(t.w);
}

/* Every listed kind of call fails, asynchronously, with Docker's words;
 * others work; the fault ends at its time. */
static void test_simexec_runtime_fail_fails_listed_calls_until_its_end(void **state)
{
	struct ctx t;
	struct done d;
	struct listed l;
	struct env_ctl *ctl;

	ctx_init(&t, 33, 2);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, ctl);
	assert_int_equal(simexec_runtime_fail(t.x, 0, SIMEXEC_OP_STOP | SIMEXEC_OP_LIST,
					      world_now_us(t.w) + 10 * S),
			 0);
	assert_true(simexec_runtime_faulted(t.x, 0));
	assert_false(simexec_runtime_faulted(t.x, 1));
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_SHUTDOWN, &d), 0);
	assert_int_equal(d.calls, 0); /* never inside the call */
	run_until(&t, &d.calls);
	assert_int_equal(d.status, CS_EEXEC);
	assert_non_null(strstr(d.message, "Cannot connect to the Docker daemon"));
	op_wait(&t, 0, ctl, ENV_CTL_TERMINATE, &d);
	assert_int_equal(d.status, CS_EEXEC);
	assert_int_equal(simexec_running(t.x, "web", 0), 1); /* untouched */
	assert_int_equal(do_list(&t, 0, &l), 0);
	assert_int_equal(l.calls, 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.status, CS_EEXEC);
	assert_int_equal(l.count, 0);
	assert_int_equal(do_list(&t, 1, &l), 0); /* another node's daemon */
	run_until(&t, &l.calls);
	assert_int_equal(l.status, 0);
	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_RUNNING);
	run_for(&t, 10 * S);
	assert_false(simexec_runtime_faulted(t.x, 0));
	op_wait(&t, 0, ctl, ENV_CTL_SHUTDOWN, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.exit_code, SIMEXEC_EXIT_STOPPED);
	assert_int_equal(simexec_runtime_fail(t.x, 0, 0, UINT64_MAX), CS_EINVAL);
	world_free(t.w);
}

/* fail=wait fails the WAIT in flight at once, and new ones; the container
 * keeps running; after ok a WAIT works again. */
static void test_simexec_runtime_fail_wait_fails_waits_in_flight(void **state)
{
	struct ctx t;
	struct done d, wait;
	struct env_ctl *ctl;

	ctx_init(&t, 34, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, ctl);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	run_for(&t, 1 * S);
	assert_int_equal(wait.calls, 0);
	assert_int_equal(simexec_runtime_fail(t.x, 0, SIMEXEC_OP_WAIT, UINT64_MAX), 0);
	assert_int_equal(wait.calls, 0);
	run_until(&t, &wait.calls);
	assert_int_equal(wait.status, CS_EEXEC);
	assert_int_equal(wait.state, ENV_CTL_RUNNING);
	op_wait(&t, 0, ctl, ENV_CTL_WAIT, &wait);
	assert_int_equal(wait.status, CS_EEXEC);
	assert_int_equal(simexec_running(t.x, "web", 0), 1);
	assert_int_equal(simexec_runtime_healthy_from(t.x, 0), UINT64_MAX);
	run_for(&t, 60 * S);
	assert_true(simexec_runtime_faulted(t.x, 0));
	simexec_runtime_ok(t.x, 0);
	assert_false(simexec_runtime_faulted(t.x, 0));
	assert_int_equal(simexec_runtime_healthy_from(t.x, 0), world_now_us(t.w));
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	op_wait(&t, 0, ctl, ENV_CTL_SHUTDOWN, &d);
	run_until(&t, &wait.calls);
	assert_int_equal(wait.status, 0);
	assert_int_equal(wait.exit_code, SIMEXEC_EXIT_STOPPED);
	world_free(t.w);
}

/* A restart keeping containers: calls in flight fail, calls fail while it
 * is down, the containers run on. */
static void test_simexec_runtime_restart_keep_fails_calls_keeps_containers(void **state)
{
	struct ctx t;
	struct done d, wait, start;
	struct env_ctl *ctl, *ctl2;

	ctx_init(&t, 35, 1);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, ctl);
	ctl2 = open_task(&t, 0, "t2", "web", 2, "nginx", 10000);
	op_wait(&t, 0, ctl2, ENV_CTL_PREPARE, &d);
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	assert_int_equal(do_op(&t, 0, ctl2, ENV_CTL_START, &start), 0);
	assert_int_equal(simexec_runtime_restart(t.x, 0, false, 2 * S), 0);
	assert_int_equal(wait.calls + start.calls, 0);
	run_for(&t, 10 * MS);
	assert_int_equal(wait.calls, 1);
	assert_int_equal(wait.status, CS_EEXEC);
	assert_int_equal(start.calls, 1);
	assert_int_equal(start.status, CS_EEXEC);
	assert_true(simexec_runtime_faulted(t.x, 0));
	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.status, CS_EEXEC);
	assert_int_equal(simexec_running(t.x, "web", 0), 1);
	run_for(&t, 2 * S);
	assert_false(simexec_runtime_faulted(t.x, 0));
	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_RUNNING);
	world_free(t.w);
}

/* A restart losing containers: every running one exits with 143 and a
 * WAIT after the restart sees it exited. */
static void test_simexec_runtime_restart_lose_stops_every_container(void **state)
{
	struct ctx t;
	struct done d, wait;
	struct env_ctl *ctl;

	ctx_init(&t, 36, 2);
	ctl = open_task(&t, 0, "t1", "web", 1, "nginx", 10000);
	prepare_start(&t, 0, ctl);
	prepare_start(&t, 1, open_task(&t, 1, "t2", "web", 2, "nginx", 10000));
	assert_int_equal(do_op(&t, 0, ctl, ENV_CTL_WAIT, &wait), 0);
	assert_int_equal(simexec_runtime_restart(t.x, 0, true, 1 * S), 0);
	assert_int_equal(simexec_running(t.x, "web", 0), 0);
	assert_int_equal(simexec_running(t.x, "web", 1), 1);
	run_until(&t, &wait.calls);
	assert_int_equal(wait.status, CS_EEXEC);
	run_for(&t, 1 * S);
	op_wait(&t, 0, ctl, ENV_CTL_WAIT, &wait);
	assert_int_equal(wait.status, 0);
	assert_int_equal(wait.exit_code, SIMEXEC_EXIT_STOPPED);
	op_wait(&t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.state, ENV_CTL_EXITED);
	world_free(t.w);
}

/* Runtime faults belong to the machine: they outlive a process kill. */
static void test_simexec_runtime_fault_outlives_the_process(void **state)
{
	struct ctx t;
	struct listed l;

	ctx_init(&t, 37, 1);
	assert_int_equal(simexec_runtime_fail(t.x, 0, SIMEXEC_OP_ALL, UINT64_MAX), 0);
	assert_int_equal(world_node_kill(t.w, 0, false, false), 0);
	assert_int_equal(world_node_start(t.w, 0), 0);
	assert_int_equal(do_list(&t, 0, &l), 0);
	run_until(&t, &l.calls);
	assert_int_equal(l.status, CS_EEXEC);
	world_free(t.w);
}

/* ---------------------------------------------------------------- health checks (issue 14) */

static const char *const test_health_cmd[] = {"CMD-SHELL", "check", NULL};

/* A controller of task on node 0 with a health check every interval_ms,
 * retries and start period as given (test NULL: none in the spec). */
static struct env_ctl *open_health(struct ctx *t, const char *task, const char *image,
				   const char *const *test, ms_t interval_ms,
				   uint64_t retries, ms_t start_period_ms)
{
	struct env *env = env_of(t, 0);
	struct env_container_spec spec = {
		.task_id = task,
		.service_id = "web",
		.image = image,
		.stop_timeout_ms = 10000,
		.service_name = "web",
		.slot = 1,
		.health_test = test,
		.health_interval_ms = interval_ms,
		.health_retries = retries,
		.health_start_period_ms = start_period_ms,
	};
	struct env_ctl *ctl = NULL;
	assert_int_equal(env->ops->ctl_open(env, &spec, &ctl), 0);
	return ctl;
}

/* The health INSPECT reports at the current time. */
static enum env_ctl_health health_now(struct ctx *t, struct env_ctl *ctl)
{
	struct done d;
	op_wait(t, 0, ctl, ENV_CTL_INSPECT, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.state, ENV_CTL_RUNNING);
	return d.health;
}

/* Docker's probe rules: a probe every interval from the start; a success
 * is healthy; `retries` failures in a row unhealthy, before any success
 * too (no start period); a healthy container turns unhealthy once its
 * check fails `retries` times. */
static void test_simexec_health_follows_dockers_probe_rules(void **state)
{
	struct ctx t;
	struct env_ctl *ctl, *early, *patient, *plain;
	us_t t0;

	ctx_init(&t, 40, 1);
	assert_int_equal(simexec_image(t.x, "h", false, 0, 0, false, 0, 0, 0), 0);
	assert_int_equal(
		simexec_image_health(t.x, "h", true, 5 * S, 5 * S, true, 30 * S, 30 * S),
		0);
	assert_int_equal(simexec_image_health(t.x, "nope", false, 0, 0, false, 0, 0),
			 CS_ENOENT);
	assert_int_equal(simexec_image_health(t.x, "h", true, 2, 1, false, 0, 0),
			 CS_EINVAL);
	assert_int_equal(
		simexec_image_health(t.x, "h", true, 5 * S, 5 * S, true, 30 * S, 30 * S),
		0);
	/* probes every 2s, 3 retries: fails at 2s and 4s, succeeds at 6s */
	ctl = open_health(&t, "t1", "h", test_health_cmd, 2000, 3, 0);
	/* 2 retries, no start period: unhealthy at 4s, never healthy */
	early = open_health(&t, "t2", "h", test_health_cmd, 2000, 2, 0);
	/* the same with a start period of 5s: the failures at 2s and 4s do
	 * not count */
	patient = open_health(&t, "t3", "h", test_health_cmd, 2000, 2, 5000);
	plain = open_health(&t, "t4", "h", NULL, 2000, 2, 0);
	prepare_start(&t, 0, ctl);
	prepare_start(&t, 0, early);
	prepare_start(&t, 0, patient);
	prepare_start(&t, 0, plain);
	t0 = world_now_us(t.w);
	run_for(&t, 3 * S);
	assert_int_equal(health_now(&t, ctl), ENV_HEALTH_STARTING);
	assert_int_equal(health_now(&t, early), ENV_HEALTH_STARTING);
	assert_int_equal(health_now(&t, plain), ENV_HEALTH_NONE);
	run_for(&t, t0 + 5 * S - world_now_us(t.w));
	assert_int_equal(health_now(&t, early), ENV_HEALTH_UNHEALTHY);
	assert_int_equal(health_now(&t, patient), ENV_HEALTH_STARTING);
	run_for(&t, t0 + 7 * S - world_now_us(t.w));
	assert_int_equal(health_now(&t, ctl), ENV_HEALTH_HEALTHY);
	assert_int_equal(health_now(&t, patient), ENV_HEALTH_HEALTHY);
	/* the check fails from 30s: probes at 30 and 32 fail, 34 is the third */
	run_for(&t, t0 + 33 * S - world_now_us(t.w));
	assert_int_equal(health_now(&t, ctl), ENV_HEALTH_HEALTHY);
	assert_int_equal(health_now(&t, patient), ENV_HEALTH_UNHEALTHY);
	run_for(&t, t0 + 35 * S - world_now_us(t.w));
	assert_int_equal(health_now(&t, ctl), ENV_HEALTH_UNHEALTHY);
	assert_int_equal(health_now(&t, plain), ENV_HEALTH_NONE);
	world_free(t.w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_simexec_lifecycle_prepare_start_wait_shutdown_remove),
		cmocka_unit_test(test_simexec_callbacks_never_run_inside_the_call),
		cmocka_unit_test(test_simexec_logs_are_deterministic_lines_after_cursors),
		cmocka_unit_test(
			test_simexec_busy_controller_returns_eagain_and_never_calls_back),
		cmocka_unit_test(test_simexec_shutdown_past_stop_timeout_kills_with_137),
		cmocka_unit_test(
			test_simexec_remove_while_waiting_on_created_fails_the_wait),
		cmocka_unit_test(
			test_simexec_pull_failure_gives_eexec_and_docker_message),
		cmocka_unit_test(test_simexec_image_names_of_one_image_are_one),
		cmocka_unit_test(test_simexec_start_latency_within_configured_range),
		cmocka_unit_test(test_simexec_exit_after_configured_time_with_code),
		cmocka_unit_test(test_simexec_image_settings_are_validated),
		cmocka_unit_test(test_simexec_open_rejects_bad_specs),
		cmocka_unit_test(test_simexec_open_bounds_texts_and_ports),
		cmocka_unit_test(
			test_simexec_process_kill_keeps_container_and_new_controller_adopts),
		cmocka_unit_test(
			test_simexec_start_in_flight_completes_after_process_kill),
		cmocka_unit_test(test_simexec_machine_kill_makes_its_containers_gone),
		cmocka_unit_test(
			test_simexec_machine_crash_after_process_kill_kills_containers),
		cmocka_unit_test(
			test_simexec_close_cancels_pending_requests_without_callbacks),
		cmocka_unit_test(test_simexec_world_free_releases_everything_pending),
		cmocka_unit_test(test_simexec_list_is_in_task_id_order_per_node),
		cmocka_unit_test(test_simexec_running_counts_by_service_and_node),
		cmocka_unit_test(
			test_simexec_mesh_reaches_a_running_task_through_any_node),
		cmocka_unit_test(test_simexec_foreach_goes_by_node_then_task_id),
		cmocka_unit_test(test_simexec_check_catches_one_task_in_two_containers),
		cmocka_unit_test(
			test_simexec_check_catches_two_running_in_one_slot_unless_allowed),
		cmocka_unit_test(
			test_simexec_tallies_follow_starts_and_stops_in_every_slot),
		cmocka_unit_test(
			test_simexec_finds_each_container_among_thousands_after_removals),
		cmocka_unit_test(test_simexec_indexes_are_built_at_their_first_read),
		cmocka_unit_test(test_simexec_check_message_is_cut_to_fit),
		cmocka_unit_test(test_simexec_same_seed_same_timeline),
		cmocka_unit_test(
			test_simexec_start_fail_image_fails_start_container_stays_created),
		cmocka_unit_test(test_simexec_stop_ignore_is_killed_at_the_stop_timeout),
		cmocka_unit_test(test_simexec_health_follows_dockers_probe_rules),
		cmocka_unit_test(
			test_simexec_runtime_fail_fails_listed_calls_until_its_end),
		cmocka_unit_test(test_simexec_runtime_fail_wait_fails_waits_in_flight),
		cmocka_unit_test(
			test_simexec_runtime_restart_keep_fails_calls_keeps_containers),
		cmocka_unit_test(test_simexec_runtime_restart_lose_stops_every_container),
		cmocka_unit_test(test_simexec_runtime_fault_outlives_the_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
