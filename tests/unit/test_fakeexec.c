/* Tests of the load generator's fake executor (net/fakeexec.c) behind an
 * env proxy (net/envproxy.c), on a stub env whose timers the test fires by
 * hand: starts answer after their delay, fail at the seeded rate (the same
 * seed, the same failures), WAIT answers when the container exits, a
 * closed controller calls nothing back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/env.h"
#include "core/errors.h"
#include "net/envproxy.h"
#include "net/fakeexec.h"

/* ---------------------------------------------------------------- stub env */

enum { TIMERS = 64 };

struct stub {
	ms_t now;
	env_timer_id next_id;
	struct {
		env_timer_id id;
		ms_t due;
		env_timer_cb cb;
		void *data;
	} t[TIMERS];
};

static ms_t stub_now(struct env *env)
{
	return ((struct stub *)env->impl)->now;
}

static int stub_timer_start(struct env *env, ms_t delay_ms, ms_t repeat_ms,
			    env_timer_cb cb, void *data, env_timer_id *id)
{
	struct stub *s = env->impl;
	assert_int_equal(repeat_ms, 0);
	for (int i = 0; i < TIMERS; i++)
		if (!s->t[i].id) {
			s->t[i].id = ++s->next_id;
			s->t[i].due = s->now + delay_ms;
			s->t[i].cb = cb;
			s->t[i].data = data;
			*id = s->t[i].id;
			return 0;
		}
	return CS_ELIMIT;
}

static void stub_timer_stop(struct env *env, env_timer_id id)
{
	struct stub *s = env->impl;
	for (int i = 0; i < TIMERS; i++)
		if (s->t[i].id == id)
			s->t[i].id = 0;
}

static size_t stub_timers(const struct stub *s)
{
	size_t n = 0;
	for (int i = 0; i < TIMERS; i++)
		n += s->t[i].id != 0;
	return n;
}

/* Fires every timer due by `until`, earliest (then oldest) first. */
static void stub_run(struct env *env, ms_t until)
{
	struct stub *s = env->impl;
	for (;;) {
		int best = -1;
		for (int i = 0; i < TIMERS; i++)
			if (s->t[i].id && s->t[i].due <= until &&
			    (best < 0 || s->t[i].due < s->t[best].due ||
			     (s->t[i].due == s->t[best].due &&
			      s->t[i].id < s->t[best].id)))
				best = i;
		if (best < 0)
			break;
		env_timer_cb cb = s->t[best].cb;
		void *data = s->t[best].data;
		env_timer_id id = s->t[best].id;
		if (s->t[best].due > s->now)
			s->now = s->t[best].due;
		s->t[best].id = 0;
		cb(env, id, data);
	}
	if (until > s->now)
		s->now = until;
}

static const struct env_ops stub_ops = {
	.now_ms = stub_now,
	.timer_start = stub_timer_start,
	.timer_stop = stub_timer_stop,
};

struct fixture {
	struct stub stub;
	struct env real;
	struct envproxy px;
	struct fakeexec x;
};

static void fixture_init(struct fixture *f, const struct fakeexec_cfg *cfg)
{
	memset(f, 0, sizeof *f);
	f->real.ops = &stub_ops;
	f->real.impl = &f->stub;
	envproxy_init(&f->px, &f->real);
	assert_int_equal(fakeexec_init(&f->x, cfg), 0);
	fakeexec_attach(&f->x, &f->px);
}

/* What one callback saw. */
struct seen {
	struct env_ctl_req req;
	int calls, status;
	ms_t at;
	struct stub *stub;
};

static void seen_cb(struct env_ctl_req *req, int status)
{
	struct seen *s = req->data;
	s->calls++;
	s->status = status;
	s->at = s->stub->now;
}

static void seen_init(struct seen *s, struct fixture *f)
{
	memset(s, 0, sizeof *s);
	s->req.data = s;
	s->stub = &f->stub;
}

static struct env_ctl *open_task(struct fixture *f, const char *task_id)
{
	struct env_container_spec spec = {.task_id = task_id, .service_id = "svc1"};
	struct env_ctl *c = NULL;
	struct env *env = &f->px.env;
	assert_int_equal(env->ops->ctl_open(env, &spec, &c), 0);
	assert_non_null(c);
	return c;
}

/* ---------------------------------------------------------------- tests */

static void test_fakeexec_start_answers_after_its_delay(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {.seed = 1, .start_ms = 200, .stop_ms = 50};
	struct seen prep, start, wait, stop;
	struct env *env = &f.px.env;
	(void)state;

	fixture_init(&f, &cfg);
	struct env_ctl *c = open_task(&f, "t1");
	seen_init(&prep, &f);
	seen_init(&start, &f);
	seen_init(&wait, &f);
	seen_init(&stop, &f);

	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_PREPARE, &prep.req, seen_cb), 0);
	assert_int_equal(prep.calls, 0); /* never inside the call */
	stub_run(&f.real, 0);
	assert_int_equal(prep.calls, 1);
	assert_int_equal(prep.req.state, ENV_CTL_CREATED);

	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_START, &start.req, seen_cb), 0);
	/* one op at a time, WAIT beside it */
	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_INSPECT, &stop.req, seen_cb),
			 CS_EAGAIN);
	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_WAIT, &wait.req, seen_cb), 0);
	stub_run(&f.real, 199);
	assert_int_equal(start.calls, 0);
	stub_run(&f.real, 200);
	assert_int_equal(start.calls, 1);
	assert_int_equal(start.status, 0);
	assert_int_equal(start.req.state, ENV_CTL_RUNNING);
	assert_int_equal(f.x.counts.started, 1);
	assert_int_equal(f.x.counts.running, 1);
	assert_int_equal(wait.calls, 0); /* still running */

	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_SHUTDOWN, &stop.req, seen_cb), 0);
	stub_run(&f.real, 249);
	assert_int_equal(stop.calls + wait.calls, 0);
	stub_run(&f.real, 250);
	assert_int_equal(stop.calls, 1);
	assert_int_equal(wait.calls, 1);
	assert_int_equal(wait.req.state, ENV_CTL_EXITED);
	assert_int_equal(wait.req.exit_code, 0);
	assert_int_equal(f.x.counts.running, 0);
	assert_int_equal(f.x.counts.stopped, 1);

	env->ops->ctl_close(c, NULL, NULL);
	stub_run(&f.real, 1000);
	assert_int_equal(f.x.counts.closed, 1);
	assert_null(f.x.ctls);
	fakeexec_free(&f.x);
}

/* A seed gives the same failures, whatever the order; the rate holds. */
static void test_fakeexec_failures_follow_the_seed(void **state)
{
	struct fakeexec_cfg a = {.seed = 7, .fail_permille = 100, .start_jitter_ms = 50};
	struct fakeexec_cfg b = a;
	unsigned fails = 0, same = 0, differ = 0;
	char id[32];
	(void)state;

	b.seed = 8;
	for (unsigned i = 0; i < 10000; i++) {
		ms_t j1, j2;
		snprintf(id, sizeof id, "task%u", i);
		bool f1 = fakeexec_fails(&a, id, 0, &j1);
		assert_true(f1 == fakeexec_fails(&a, id, 0, &j2));
		assert_int_equal(j1, j2);
		assert_true(j1 <= 50);
		fails += f1;
		if (f1 == fakeexec_fails(&b, id, 0, NULL))
			same++;
		else
			differ++;
	}
	/* 10% of 10,000 (sd 30): far from 0 and 10,000 */
	assert_in_range(fails, 850, 1150);
	assert_true(differ > 0); /* another seed, other failures */
	a.fail_permille = 0;
	b.fail_permille = 1000;
	for (unsigned i = 0; i < 100; i++) {
		snprintf(id, sizeof id, "t%u", i);
		assert_false(fakeexec_fails(&a, id, i, NULL));
		assert_true(fakeexec_fails(&b, id, i, NULL));
	}
	(void)same;
}

static void test_fakeexec_failed_start_is_eexec(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {.seed = 3, .start_ms = 10, .fail_permille = 1000};
	struct seen start, wait;
	struct env *env = &f.px.env;
	(void)state;

	fixture_init(&f, &cfg);
	struct env_ctl *c = open_task(&f, "doomed");
	seen_init(&start, &f);
	seen_init(&wait, &f);
	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_START, &start.req, seen_cb), 0);
	stub_run(&f.real, 10);
	assert_int_equal(start.calls, 1);
	assert_int_equal(start.status, CS_EEXEC);
	assert_non_null(strstr(start.req.message, "fakeexec"));
	assert_int_equal(f.x.counts.failed, 1);
	assert_int_equal(f.x.counts.started, 0);
	/* a WAIT on the exited container answers at once (on a timer) */
	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_WAIT, &wait.req, seen_cb), 0);
	assert_int_equal(wait.calls, 0);
	stub_run(&f.real, 10);
	assert_int_equal(wait.calls, 1);
	assert_int_equal(wait.req.state, ENV_CTL_EXITED);
	env->ops->ctl_close(c, NULL, NULL);
	stub_run(&f.real, 20);
	fakeexec_free(&f.x);
}

static int closed_calls;
static void closed_cb(struct env_ctl *ctl, void *data)
{
	(void)ctl;
	(void)data;
	closed_calls++;
}

/* Closing cancels what is in flight: no callback but the close's, later. */
static void test_fakeexec_close_cancels_requests(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {.seed = 1, .start_ms = 100};
	struct seen start, wait;
	struct env *env = &f.px.env;
	(void)state;

	fixture_init(&f, &cfg);
	struct env_ctl *c = open_task(&f, "t");
	seen_init(&start, &f);
	seen_init(&wait, &f);
	closed_calls = 0;
	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_START, &start.req, seen_cb), 0);
	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_WAIT, &wait.req, seen_cb), 0);
	env->ops->ctl_close(c, closed_cb, NULL);
	assert_int_equal(closed_calls, 0);
	assert_int_equal(stub_timers(&f.stub), 1); /* the close's own */
	stub_run(&f.real, 1000);
	assert_int_equal(closed_calls, 1);
	assert_int_equal(start.calls + wait.calls, 0);
	assert_int_equal(f.x.counts.closed, 1);
	/* a controller never closed is freed by fakeexec_free */
	(void)open_task(&f, "left");
	fakeexec_free(&f.x);
	assert_null(f.x.ctls);
}

static int listed;
static void list_cb(struct env_ctl_list_req *req, int status)
{
	assert_int_equal(status, 0);
	assert_int_equal(req->found_count, 0);
	listed++;
}

static void test_fakeexec_list_is_empty_and_async(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {0};
	struct env_ctl_list_req req = {0};
	struct env *env = &f.px.env;
	(void)state;

	fixture_init(&f, &cfg);
	listed = 0;
	assert_int_equal(env->ops->ctl_list(env, &req, list_cb), 0);
	assert_int_equal(listed, 0);
	stub_run(&f.real, 0);
	assert_int_equal(listed, 1);
	struct fakeexec bad;
	cfg.fail_permille = 1001;
	assert_int_equal(fakeexec_init(&bad, &cfg), CS_EINVAL);
}

/* The proxy forwards what it does not replace to the real env. */
/* Starts one container of task_id to RUNNING (its controller open). */
static struct env_ctl *start_task(struct fixture *f, const char *task_id)
{
	struct env_ctl *c = open_task(f, task_id);
	struct seen start;
	struct env *env = &f->px.env;

	seen_init(&start, f);
	assert_int_equal(env->ops->ctl_do(c, ENV_CTL_START, &start.req, seen_cb), 0);
	stub_run(&f->real, f->stub.now + f->x.cfg.start_ms + f->x.cfg.start_jitter_ms);
	assert_int_equal(start.calls, 1);
	assert_int_equal(start.status, 0);
	return c;
}

struct restarts {
	int calls;
	char last[64];
	uint64_t starts;
};

static void on_restart(void *data, const char *task_id, uint64_t starts)
{
	struct restarts *r = data;
	r->calls++;
	snprintf(r->last, sizeof r->last, "%s", task_id);
	r->starts = starts;
}

/* A task id's second successful start is a restart, counted and told;
 * other ids (thousands: the table grows) are not, however many. */
static void test_fakeexec_counts_a_second_start_of_a_task(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {.seed = 1, .start_ms = 5};
	struct restarts r = {0};
	struct env_ctl *c;
	char id[32];
	(void)state;

	fixture_init(&f, &cfg);
	f.x.on_restart = on_restart;
	f.x.on_restart_data = &r;
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(id, sizeof id, "task%u", i);
		c = start_task(&f, id);
		f.px.env.ops->ctl_close(c, NULL, NULL);
		stub_run(&f.real, f.stub.now);
	}
	assert_int_equal(f.x.counts.started, 3000);
	assert_int_equal(f.x.counts.restarted, 0);
	assert_int_equal(f.x.counts.untracked, 0);
	assert_int_equal(r.calls, 0);
	assert_int_equal(fakeexec_starts(&f.x, "task0"), 1);
	assert_int_equal(fakeexec_starts(&f.x, "task2999"), 1);
	assert_int_equal(fakeexec_starts(&f.x, "task3000"), 0);
	assert_int_equal(fakeexec_starts(&f.x, ""), 0);

	/* task17 again, on another controller (another agent's, say) */
	c = start_task(&f, "task17");
	assert_int_equal(f.x.counts.restarted, 1);
	assert_int_equal(r.calls, 1);
	assert_string_equal(r.last, "task17");
	assert_int_equal(r.starts, 2);
	assert_int_equal(fakeexec_starts(&f.x, "task17"), 2);
	f.px.env.ops->ctl_close(c, NULL, NULL);
	stub_run(&f.real, f.stub.now);
	fakeexec_free(&f.x);
	assert_null(f.x.tasks);
}

/* A failed start is no start: the task's next (successful) one is its
 * first. */
static void test_fakeexec_failed_start_is_not_a_start(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {.seed = 3, .start_ms = 10, .fail_permille = 1000};
	struct env_ctl *c;
	struct seen start;
	(void)state;

	fixture_init(&f, &cfg);
	c = open_task(&f, "t9");
	seen_init(&start, &f);
	assert_int_equal(f.px.env.ops->ctl_do(c, ENV_CTL_START, &start.req, seen_cb), 0);
	stub_run(&f.real, 100);
	assert_int_equal(start.status, CS_EEXEC);
	assert_int_equal(fakeexec_starts(&f.x, "t9"), 0);
	f.x.cfg.fail_permille = 0;
	seen_init(&start, &f);
	assert_int_equal(f.px.env.ops->ctl_do(c, ENV_CTL_START, &start.req, seen_cb), 0);
	stub_run(&f.real, 200);
	assert_int_equal(start.status, 0);
	assert_int_equal(fakeexec_starts(&f.x, "t9"), 1);
	assert_int_equal(f.x.counts.restarted, 0);
	f.px.env.ops->ctl_close(c, NULL, NULL);
	stub_run(&f.real, 300);
	fakeexec_free(&f.x);
}

/* A node's death frees its env's controllers (no callback, no env call:
 * the env is closed next) and no other env's; what ran there is no longer
 * running. */
static void test_fakeexec_env_gone_frees_that_env_only(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {.seed = 1, .start_ms = 5};
	struct stub stub2;
	struct env real2;
	struct envproxy px2;
	struct env_ctl *c1, *c2, *c3;
	struct seen wait;
	(void)state;

	fixture_init(&f, &cfg);
	memset(&stub2, 0, sizeof stub2);
	real2.ops = &stub_ops;
	real2.impl = &stub2;
	envproxy_init(&px2, &real2);
	fakeexec_attach(&f.x, &px2);

	c1 = start_task(&f, "a1");
	c2 = start_task(&f, "a2");
	{
		struct env_container_spec spec = {.task_id = "b1", .service_id = "s"};
		struct seen start;
		assert_int_equal(px2.env.ops->ctl_open(&px2.env, &spec, &c3), 0);
		seen_init(&start, &f);
		start.stub = &stub2;
		assert_int_equal(
			px2.env.ops->ctl_do(c3, ENV_CTL_START, &start.req, seen_cb), 0);
		stub_run(&real2, 100);
		assert_int_equal(start.status, 0);
	}
	/* a WAIT in flight on the dying node: never answered */
	seen_init(&wait, &f);
	assert_int_equal(f.px.env.ops->ctl_do(c1, ENV_CTL_WAIT, &wait.req, seen_cb), 0);
	(void)c2;
	assert_int_equal(f.x.counts.running, 3);

	assert_int_equal(fakeexec_env_gone(&f.x, &real2), 1);
	assert_int_equal(f.x.counts.running, 2);
	assert_int_equal(f.x.counts.died, 1);
	assert_int_equal(f.x.counts.stopped, 0);
	assert_int_equal(fakeexec_env_gone(&f.x, &real2), 0);

	assert_int_equal(fakeexec_env_gone(&f.x, &f.real), 2);
	assert_int_equal(f.x.counts.running, 0);
	assert_int_equal(f.x.counts.died, 3);
	assert_null(f.x.ctls);
	assert_int_equal(wait.calls, 0);
	assert_int_equal(fakeexec_starts(&f.x, "b1"), 1); /* remembered */
	fakeexec_free(&f.x);
}

/* Issue 18: the deaths of many nodes at once free their controllers in
 * one walk (fakeexec_envs_gone), the same ones as one env at a time; an
 * env named twice or holding none is harmless. */
static void test_fakeexec_envs_gone_frees_every_env_named_at_once(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {.seed = 1, .start_ms = 5};
	struct stub stub2, stub3;
	struct env real2, real3;
	struct envproxy px2, px3;
	struct env_ctl *c;
	const struct env *gone[3];
	(void)state;

	fixture_init(&f, &cfg);
	memset(&stub2, 0, sizeof stub2);
	memset(&stub3, 0, sizeof stub3);
	real2.ops = real3.ops = &stub_ops;
	real2.impl = &stub2;
	real3.impl = &stub3;
	envproxy_init(&px2, &real2);
	envproxy_init(&px3, &real3);
	fakeexec_attach(&f.x, &px2);
	fakeexec_attach(&f.x, &px3);

	(void)start_task(&f, "a1");
	{
		struct env_container_spec spec = {.task_id = "b1", .service_id = "s"};
		assert_int_equal(px2.env.ops->ctl_open(&px2.env, &spec, &c), 0);
		spec.task_id = "b2";
		assert_int_equal(px2.env.ops->ctl_open(&px2.env, &spec, &c), 0);
		spec.task_id = "c1";
		assert_int_equal(px3.env.ops->ctl_open(&px3.env, &spec, &c), 0);
	}
	gone[0] = &real3;
	gone[1] = &real2;
	gone[2] = &real3;
	assert_int_equal(fakeexec_envs_gone(&f.x, gone, 3), 3);
	assert_int_equal(f.x.counts.died, 3);
	assert_non_null(f.x.ctls); /* a1's, on the env not named */
	assert_int_equal(fakeexec_envs_gone(&f.x, gone, 3), 0);
	assert_int_equal(fakeexec_envs_gone(&f.x, gone, 0), 0);
	assert_int_equal(fakeexec_env_gone(&f.x, &f.real), 1);
	assert_null(f.x.ctls);
	fakeexec_free(&f.x);
}

static void test_envproxy_forwards(void **state)
{
	struct fixture f;
	struct fakeexec_cfg cfg = {0};
	env_timer_id id;
	(void)state;

	fixture_init(&f, &cfg);
	f.stub.now = 1234;
	assert_int_equal(f.px.env.ops->now_ms(&f.px.env), 1234);
	assert_int_equal(f.px.env.ops->timer_start(&f.px.env, 5, 0, NULL, NULL, &id), 0);
	assert_int_equal(stub_timers(&f.stub), 1);
	f.px.env.ops->timer_stop(&f.px.env, id);
	assert_int_equal(stub_timers(&f.stub), 0);
	assert_ptr_equal(envproxy_of(&f.px.env), &f.px);
	assert_null(f.px.ops.wall_ms); /* the stub has none: neither has the proxy */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fakeexec_start_answers_after_its_delay),
		cmocka_unit_test(test_fakeexec_failures_follow_the_seed),
		cmocka_unit_test(test_fakeexec_failed_start_is_eexec),
		cmocka_unit_test(test_fakeexec_close_cancels_requests),
		cmocka_unit_test(test_fakeexec_list_is_empty_and_async),
		cmocka_unit_test(test_fakeexec_counts_a_second_start_of_a_task),
		cmocka_unit_test(test_fakeexec_failed_start_is_not_a_start),
		cmocka_unit_test(test_fakeexec_env_gone_frees_that_env_only),
		cmocka_unit_test(test_fakeexec_envs_gone_frees_every_env_named_at_once),
		cmocka_unit_test(test_envproxy_forwards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
