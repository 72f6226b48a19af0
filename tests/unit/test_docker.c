/* Tests of the Docker executor: against a fake Docker API server served by
 * libuv on a unix socket in a temp dir, on the same loop (canned answers per
 * method and path, every request recorded), and, when CSWARM_DOCKER_SOCKET
 * names a live dockerd's socket, against the real one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "core/errors.h"
#include "net/docker.h"

#define FAKE_ROUTES_MAX	  16
#define FAKE_REQS_MAX	  32
#define FAKE_REQ_BYTES	  (1024 * 1024)
#define TEST_WAIT_MS	  5000
#define TEST_REAL_WAIT_MS 60000

/* ---------------------------------------------------------------- the fake dockerd */

struct fake_route {
	const char *method;
	const char *prefix; /* of the request target, "/v1.41/containers/create" */
	int status;
	const char *body;
	bool hold;	 /* never answer (a long poll that does not end) */
	size_t body_len; /* 0: strlen(body) (a binary body sets it) */
};

struct fake_req {
	char method[16];
	char target[1024];
	char *body; /* NUL-terminated */
};

struct fake_conn {
	uv_pipe_t pipe;
	struct fake *f;
	struct fake_conn *prev, *next;
	char *buf;
	size_t len;
	bool answered;
	uv_write_t write;
	char *out;
};

struct fake {
	uv_loop_t *loop;
	uv_pipe_t server;
	bool listening;
	struct fake_route routes[FAKE_ROUTES_MAX];
	size_t route_count;
	struct fake_req reqs[FAKE_REQS_MAX];
	size_t req_count;
	struct fake_conn *conns;
};

static void fake_route(struct fake *f, const char *method, const char *prefix, int status,
		       const char *body)
{
	assert_true(f->route_count < FAKE_ROUTES_MAX);
	f->routes[f->route_count++] =
		(struct fake_route){method, prefix, status, body, false, 0};
}

static void fake_hold(struct fake *f, const char *method, const char *prefix)
{
	assert_true(f->route_count < FAKE_ROUTES_MAX);
	f->routes[f->route_count++] =
		(struct fake_route){method, prefix, 0, NULL, true, 0};
}

static void fake_conn_closed(uv_handle_t *h)
{
	struct fake_conn *c = h->data;
	struct fake *f = c->f;
	if (c->prev)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->buf);
	free(c->out);
	free(c);
}

static void fake_conn_close(struct fake_conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, fake_conn_closed);
}

static void fake_written(uv_write_t *w, int status)
{
	(void)status;
	fake_conn_close(w->data);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(suggested);
	buf->len = buf->base ? suggested : 0;
}

static const struct fake_route fake_no_route = {
	"", "", 404, "{\"message\":\"page not found\"}", false, 0};

/* Answers c's request once it is all there. */
static void fake_serve(struct fake_conn *c)
{
	struct fake *f = c->f;
	char *end = c->buf ? strstr(c->buf, "\r\n\r\n") : NULL;
	const char *cl;
	size_t body_len = 0, head_len;
	struct fake_req *r;
	const struct fake_route *route = NULL;
	const char *reason;
	size_t out_size;
	uv_buf_t b;

	if (!end || c->answered)
		return;
	head_len = (size_t)(end - c->buf) + 4;
	for (cl = c->buf; (cl = strchr(cl, '\n')) != NULL && cl < end; cl++)
		if (strncasecmp(cl + 1, "Content-Length:", 15) == 0)
			body_len = strtoul(cl + 16, NULL, 10);
	if (c->len < head_len + body_len)
		return;
	c->answered = true;
	assert_true(f->req_count < FAKE_REQS_MAX);
	r = &f->reqs[f->req_count++];
	assert_int_equal(sscanf(c->buf, "%15s %1023s", r->method, r->target), 2);
	r->body = strndup(c->buf + head_len, body_len);
	uv_stop(f->loop);
	for (size_t i = 0; i < f->route_count && !route; i++)
		if (strcmp(f->routes[i].method, r->method) == 0 &&
		    strncmp(f->routes[i].prefix, r->target,
			    strlen(f->routes[i].prefix)) == 0)
			route = &f->routes[i];
	if (route && route->hold)
		return;
	if (!route)
		route = &fake_no_route;
	reason = route->status < 300 ? "OK" : "Error";
	{
		size_t bl = route->body_len ? route->body_len
			    : route->body   ? strlen(route->body)
					    : 0;
		int hl;
		out_size = 256 + bl;
		c->out = malloc(out_size);
		assert_non_null(c->out);
		hl = snprintf(c->out, out_size,
			      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			      "Api-Version: 1.41\r\nContent-Length: %zu\r\nConnection: "
			      "close\r\n\r\n",
			      route->status, reason, bl);
		if (bl)
			memcpy(c->out + hl, route->body, bl);
		b = uv_buf_init(c->out, (unsigned)((size_t)hl + bl));
	}
	c->write.data = c;
	assert_int_equal(
		uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, fake_written), 0);
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct fake_conn *c = s->data;
	if (n < 0) {
		free(buf->base);
		fake_conn_close(c);
		return;
	}
	if (n > 0) {
		char *p = realloc(c->buf, c->len + (size_t)n + 1);
		assert_non_null(p);
		assert_true(c->len + (size_t)n < FAKE_REQ_BYTES);
		c->buf = p;
		memcpy(c->buf + c->len, buf->base, (size_t)n);
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		fake_serve(c);
	}
	free(buf->base);
}

static void fake_accept(uv_stream_t *server, int status)
{
	struct fake *f = server->data;
	struct fake_conn *c = calloc(1, sizeof *c);

	assert_int_equal(status, 0);
	assert_non_null(c);
	c->f = f;
	uv_pipe_init(f->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = f->conns;
	if (f->conns)
		f->conns->prev = c;
	f->conns = c;
	assert_int_equal(uv_accept(server, (uv_stream_t *)&c->pipe), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->pipe, fake_alloc, fake_read),
			 0);
}

static void fake_start(struct fake *f, uv_loop_t *loop, const char *path)
{
	f->loop = loop;
	assert_int_equal(uv_pipe_init(loop, &f->server, 0), 0);
	f->server.data = f;
	assert_int_equal(uv_pipe_bind(&f->server, path), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->server, 16, fake_accept), 0);
	f->listening = true;
}

static void fake_stop(struct fake *f)
{
	for (struct fake_conn *c = f->conns; c; c = c->next)
		fake_conn_close(c);
	if (f->listening)
		uv_close((uv_handle_t *)&f->server, NULL);
	f->listening = false;
	for (size_t i = 0; i < f->req_count; i++)
		free(f->reqs[i].body);
	f->req_count = 0;
}

/* Returns the last request whose target starts with prefix, or NULL. */
static const struct fake_req *fake_find(const struct fake *f, const char *method,
					const char *prefix)
{
	for (size_t i = f->req_count; i-- > 0;)
		if (strcmp(f->reqs[i].method, method) == 0 &&
		    strncmp(f->reqs[i].target, prefix, strlen(prefix)) == 0)
			return &f->reqs[i];
	return NULL;
}

/* ---------------------------------------------------------------- fixtures */

struct test_ctx {
	uv_loop_t loop;
	char dir[64];
	char sock[128];
	struct fake fake;
	struct docker *d;
	uv_timer_t guard;
	bool timed_out;
};

/* Every callback of a test stops the loop (uv_stop), so that a run_until
 * whose flag was set by a timer does not sleep in poll until the guard. */
struct op_result {
	struct env_ctl_req req;
	uv_loop_t *loop;
	bool done;
	int status;
	int calls;
};

static void op_cb(struct env_ctl_req *req, int status)
{
	struct op_result *r = req->data;
	uv_stop(r->loop);
	r->done = true;
	r->status = status;
	r->calls++;
}

static void test_guard_cb(uv_timer_t *h)
{
	struct test_ctx *t = h->data;
	uv_stop(&t->loop);
	t->timed_out = true;
}

/* Runs the loop until *flag or timeout_ms; fails on timeout. */
static void run_until(struct test_ctx *t, const bool *flag, uint64_t timeout_ms)
{
	t->timed_out = false;
	uv_timer_start(&t->guard, test_guard_cb, timeout_ms, 0);
	while (!*flag && !t->timed_out)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_timer_stop(&t->guard);
	assert_false(t->timed_out);
}

/* Runs the loop until the fake received a request method prefix. */
static void run_until_received(struct test_ctx *t, const char *method, const char *prefix)
{
	t->timed_out = false;
	uv_timer_start(&t->guard, test_guard_cb, TEST_WAIT_MS, 0);
	while (!fake_find(&t->fake, method, prefix) && !t->timed_out)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_timer_stop(&t->guard);
	assert_false(t->timed_out);
}

static void test_open_docker(struct test_ctx *t, const char *sock, const char *node)
{
	struct docker_cfg cfg = {
		.loop = &t->loop,
		.socket_path = sock,
		.node_id_label = node,
	};
	assert_int_equal(docker_open(&cfg, &t->d), 0);
}

static int setup(void **state)
{
	struct test_ctx *t = calloc(1, sizeof *t);
	if (!t)
		return -1;
	if (uv_loop_init(&t->loop))
		return -1;
	snprintf(t->dir, sizeof t->dir, "/tmp/cswarm-docker-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->sock, sizeof t->sock, "%s/docker.sock", t->dir);
	uv_timer_init(&t->loop, &t->guard);
	t->guard.data = t;
	fake_start(&t->fake, &t->loop, t->sock);
	test_open_docker(t, t->sock, "node-1");
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct test_ctx *t = *state;
	docker_close(t->d);
	fake_stop(&t->fake);
	uv_close((uv_handle_t *)&t->guard, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&t->loop), 0);
	unlink(t->sock);
	rmdir(t->dir);
	free(t);
	return 0;
}

static const char *const test_cmd[] = {"sh", "-c", "exit 3", NULL};
static const char *const test_envs[] = {"A=1", "B=two words", NULL};

static struct env_container_spec test_spec(const char *task_id)
{
	struct env_container_spec spec = {
		.task_id = task_id,
		.service_id = "svc-1",
		.image = "cswarm-test:busybox",
		.command = test_cmd,
		.envs = test_envs,
		.memory_limit_bytes = 64u << 20,
		.millicpu_limit = 500,
		.stop_timeout_ms = 1500,
		.service_name = "web",
		.slot = 2,
	};
	return spec;
}

/* Runs op on ctl to completion; returns the result (status in r->status). */
static void do_op(struct test_ctx *t, struct env_ctl *ctl, enum env_ctl_op op,
		  struct op_result *r, uint64_t timeout_ms)
{
	memset(r, 0, sizeof *r);
	r->req.data = r;
	r->loop = &t->loop;
	assert_int_equal(docker_ctl_do(ctl, op, &r->req, op_cb), 0);
	assert_false(r->done); /* never inside the call */
	run_until(t, &r->done, timeout_ms);
	assert_int_equal(r->calls, 1);
}

/* Does op on ctl as do_op, waiting up to TEST_WAIT_MS; returns its status
 * (r holds the whole answer). */
static int op_status(struct test_ctx *t, struct env_ctl *ctl, enum env_ctl_op op,
		     struct op_result *r)
{
	do_op(t, ctl, op, r, TEST_WAIT_MS);
	return r->status;
}

struct close_result {
	uv_loop_t *loop;
	bool done;
	struct env_ctl *ctl;
};

static void close_cb(struct env_ctl *ctl, void *data)
{
	struct close_result *c = data;
	uv_stop(c->loop);
	c->done = true;
	c->ctl = ctl;
}

static void close_ctl(struct test_ctx *t, struct env_ctl *ctl)
{
	struct close_result c = {.loop = &t->loop};
	docker_ctl_close(ctl, close_cb, &c);
	assert_false(c.done);
	run_until(t, &c.done, TEST_WAIT_MS);
	assert_ptr_equal(c.ctl, ctl);
}

/* Opens a controller for spec (borrowed) into *ctl and prepares its
 * container, which must succeed; returns the body of the create request
 * the fake dockerd got, parsed (the caller json_decrefs it). */
static json_t *create_body(struct test_ctx *t, const struct env_container_spec *spec,
			   struct env_ctl **ctl)
{
	struct op_result r;
	const struct fake_req *q;
	json_t *body;

	assert_int_equal(docker_ctl_open(t->d, spec, ctl), 0);
	assert_int_equal(op_status(t, *ctl, ENV_CTL_PREPARE, &r), 0);
	q = fake_find(&t->fake, "POST", "/v1.41/containers/create");
	assert_non_null(q);
	body = json_loads(q->body, 0, NULL);
	assert_non_null(body);
	return body;
}

/* ---------------------------------------------------------------- tests */

static void test_docker_prepare_start_wait_gives_exit_code(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t1");
	struct env_ctl *ctl;
	struct op_result r;
	const struct fake_req *q;
	json_t *body, *labels, *host;

	fake_route(&t->fake, "POST", "/v1.41/containers/create", 201,
		   "{\"Id\":\"abc\",\"Warnings\":[]}");
	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t1/start", 204, "");
	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t1/wait", 200,
		   "{\"Error\":null,\"StatusCode\":3}");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);

	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_CREATED);
	q = fake_find(&t->fake, "POST", "/v1.41/containers/create");
	assert_non_null(q);
	assert_string_equal(q->target, "/v1.41/containers/create?name=cswarm-t1");
	body = json_loads(q->body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "Image")),
			    "cswarm-test:busybox");
	assert_int_equal(json_array_size(json_object_get(body, "Cmd")), 3);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(body, "Cmd"), 2)),
		"exit 3");
	assert_int_equal(json_array_size(json_object_get(body, "Env")), 2);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(body, "Env"), 1)),
		"B=two words");
	labels = json_object_get(body, "Labels");
	assert_int_equal(json_object_size(labels), 5);
	assert_string_equal(json_string_value(json_object_get(labels, "cswarm.task.id")),
			    "t1");
	assert_string_equal(
		json_string_value(json_object_get(labels, "cswarm.service.id")), "svc-1");
	assert_string_equal(
		json_string_value(json_object_get(labels, "cswarm.service.name")), "web");
	assert_string_equal(json_string_value(json_object_get(labels, "cswarm.slot")),
			    "2");
	assert_string_equal(json_string_value(json_object_get(labels, "cswarm.node.id")),
			    "node-1");
	host = json_object_get(body, "HostConfig");
	assert_int_equal(json_integer_value(json_object_get(host, "Memory")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(host, "NanoCpus")),
			 500000000);
	assert_null(json_object_get(host, "NetworkMode"));
	json_decref(body);

	assert_int_equal(op_status(t, ctl, ENV_CTL_START, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_RUNNING);

	assert_int_equal(op_status(t, ctl, ENV_CTL_WAIT, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_EXITED);
	assert_int_equal(r.req.exit_code, 3);
	assert_string_equal(r.req.message, "");
	close_ctl(t, ctl);
}

/* Issue 14: the health check and the stop grace period go into the create
 * body as Docker's HealthConfig (durations in nanoseconds) and StopTimeout
 * (seconds, rounded up); INSPECT reads State.Health.Status, and a container
 * without Health has none. */
static void test_docker_health_check_in_create_and_inspect_reads_health(void **state)
{
	static const char *const test_health[] = {"CMD-SHELL", "test -f /ok", NULL};
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("th1"), plain = test_spec("th2");
	struct env_ctl *ctl, *ctl2;
	struct op_result r;
	json_t *body, *hc;

	spec.health_test = test_health;
	spec.health_interval_ms = 2000;
	spec.health_timeout_ms = 500;
	spec.health_start_period_ms = 7000;
	spec.health_retries = 4;
	fake_route(&t->fake, "POST", "/v1.41/containers/create", 201,
		   "{\"Id\":\"abc\",\"Warnings\":[]}");
	fake_route(&t->fake, "GET", "/v1.41/containers/cswarm-th1/json", 200,
		   "{\"Id\":\"x\",\"State\":{\"Status\":\"running\",\"Running\":true,"
		   "\"ExitCode\":0,\"Health\":{\"Status\":\"unhealthy\","
		   "\"FailingStreak\":4,\"Log\":[]}}}");
	fake_route(&t->fake, "GET", "/v1.41/containers/cswarm-th2/json", 200,
		   "{\"Id\":\"y\",\"State\":{\"Status\":\"running\",\"Running\":true,"
		   "\"ExitCode\":0}}");
	body = create_body(t, &spec, &ctl);
	/* stop_timeout_ms 1500: 2 s */
	assert_int_equal(json_integer_value(json_object_get(body, "StopTimeout")), 2);
	hc = json_object_get(body, "Healthcheck");
	assert_true(json_is_object(hc));
	assert_int_equal(json_array_size(json_object_get(hc, "Test")), 2);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(hc, "Test"), 0)),
		"CMD-SHELL");
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(hc, "Test"), 1)),
		"test -f /ok");
	assert_int_equal(json_integer_value(json_object_get(hc, "Interval")),
			 2000000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "Timeout")), 500000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "StartPeriod")),
			 7000000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "Retries")), 4);
	json_decref(body);
	assert_int_equal(op_status(t, ctl, ENV_CTL_INSPECT, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_RUNNING);
	assert_int_equal(r.req.health, ENV_HEALTH_UNHEALTHY);
	close_ctl(t, ctl);

	/* no health check in the spec: no Healthcheck (the image's applies),
	 * and an inspect without Health says none */
	assert_int_equal(docker_ctl_open(t->d, &plain, &ctl2), 0);
	memset(&r, 0, sizeof r);
	r.req.health = ENV_HEALTH_HEALTHY;
	r.req.data = &r;
	r.loop = &t->loop;
	assert_int_equal(docker_ctl_do(ctl2, ENV_CTL_INSPECT, &r.req, op_cb), 0);
	run_until(t, &r.done, TEST_WAIT_MS);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.req.health, ENV_HEALTH_NONE);
	close_ctl(t, ctl2);
}

/* Issue 15: host-mode ports become ExposedPorts and HostConfig.PortBindings
 * as the docker CLI sends -p (HostPort "" when the runtime picks; two
 * published ports of one target share its list); a start refused for a
 * bound port is CS_EEXEC with Docker's words. No ports: neither key. */
static void test_docker_host_ports_become_port_bindings(void **state)
{
	static const char conflict[] =
		"{\"message\":\"driver failed programming external connectivity on "
		"endpoint cswarm-tp1 (85ed32cb): Bind for 0.0.0.0:8080 failed: port is "
		"already allocated\"}";
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("tp1"), plain = test_spec("tp2");
	struct env_port ports[4] = {
		{.target = 80, .published = 8080, .proto = ENV_PORT_TCP},
		{.target = 80, .published = 8081, .proto = ENV_PORT_TCP},
		{.target = 53, .published = 5353, .proto = ENV_PORT_UDP},
		{.target = 90, .published = 0, .proto = ENV_PORT_SCTP},
	};
	struct env_ctl *ctl, *ctl2;
	struct op_result r;
	json_t *body, *exp, *pb, *list;

	spec.ports = ports;
	spec.port_count = 4;
	fake_route(&t->fake, "POST", "/v1.41/containers/create", 201,
		   "{\"Id\":\"abc\",\"Warnings\":[]}");
	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-tp1/start", 500, conflict);
	body = create_body(t, &spec, &ctl);
	exp = json_object_get(body, "ExposedPorts");
	assert_int_equal(json_object_size(exp), 3);
	assert_true(json_is_object(json_object_get(exp, "80/tcp")));
	assert_true(json_is_object(json_object_get(exp, "53/udp")));
	assert_true(json_is_object(json_object_get(exp, "90/sctp")));
	pb = json_object_get(json_object_get(body, "HostConfig"), "PortBindings");
	assert_int_equal(json_object_size(pb), 3);
	list = json_object_get(pb, "80/tcp");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(list, 0), "HostPort")),
		"8080");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(list, 0), "HostIp")),
		"");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(list, 1), "HostPort")),
		"8081");
	list = json_object_get(pb, "53/udp");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(list, 0), "HostPort")),
		"5353");
	list = json_object_get(pb, "90/sctp");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(list, 0), "HostPort")),
		"");
	json_decref(body);
	assert_int_equal(op_status(t, ctl, ENV_CTL_START, &r), CS_EEXEC);
	assert_non_null(strstr(r.req.message, "port is already allocated"));
	close_ctl(t, ctl);

	/* no ports: neither key */
	body = create_body(t, &plain, &ctl2);
	assert_null(json_object_get(body, "ExposedPorts"));
	assert_null(json_object_get(json_object_get(body, "HostConfig"), "PortBindings"));
	json_decref(body);
	close_ctl(t, ctl2);
}

static void test_docker_missing_image_is_eexec_with_dockers_words(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t2");
	struct env_ctl *ctl;
	struct op_result r;

	fake_route(&t->fake, "POST", "/v1.41/containers/create", 404,
		   "{\"message\":\"No such image: cswarm-test:busybox\"}");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), CS_EEXEC);
	assert_string_equal(r.req.message, "No such image: cswarm-test:busybox");
	close_ctl(t, ctl);
}

static void test_docker_create_conflict_counts_as_created(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t3");
	struct env_ctl *ctl;
	struct op_result r;

	fake_route(&t->fake, "POST", "/v1.41/containers/create", 409,
		   "{\"message\":\"Conflict. The container name \\\"/cswarm-t3\\\" is "
		   "already in use\"}");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_CREATED);
	close_ctl(t, ctl);
}

static void test_docker_quick_ops_map_docker_answers(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t4");
	struct env_ctl *ctl;
	struct op_result r;

	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t4/stop", 204, "");
	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t4/kill", 409,
		   "{\"message\":\"Container cswarm-t4 is not running\"}");
	fake_route(&t->fake, "GET", "/v1.41/containers/cswarm-t4/json", 200,
		   "{\"Id\":\"x\",\"State\":{\"Status\":\"exited\",\"Running\":false,"
		   "\"ExitCode\":2}}");
	fake_route(&t->fake, "DELETE", "/v1.41/containers/cswarm-t4", 404,
		   "{\"message\":\"No such container: cswarm-t4\"}");
	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t4/start", 500,
		   "{\"message\":\"OCI runtime create failed\"}");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);

	assert_int_equal(op_status(t, ctl, ENV_CTL_SHUTDOWN, &r), 0);
	/* stop_timeout_ms 1500 is 2 s, rounded up */
	assert_non_null(
		fake_find(&t->fake, "POST", "/v1.41/containers/cswarm-t4/stop?t=2"));
	assert_int_equal(op_status(t, ctl, ENV_CTL_TERMINATE, &r), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_INSPECT, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_EXITED);
	assert_int_equal(r.req.exit_code, 2);
	assert_int_equal(op_status(t, ctl, ENV_CTL_REMOVE, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_ABSENT);
	assert_non_null(
		fake_find(&t->fake, "DELETE", "/v1.41/containers/cswarm-t4?force=1"));
	assert_int_equal(op_status(t, ctl, ENV_CTL_START, &r), CS_EEXEC);
	assert_string_equal(r.req.message, "OCI runtime create failed");
	close_ctl(t, ctl);
}

/* What the agent relies on to clean up (issue 12, item 7): a stop of a
 * container that is not running (304) or not there (404) succeeded; a
 * remove Docker refuses is an error with Docker's words, so the agent keeps
 * the task and asks again. */
static void test_docker_stop_of_stopped_or_absent_is_success_remove_refusal_is_error(
	void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec6 = test_spec("t6"), spec7 = test_spec("t7");
	struct env_ctl *c6, *c7;
	struct op_result r;

	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t6/stop", 304, "");
	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t7/stop", 404,
		   "{\"message\":\"No such container: cswarm-t7\"}");
	fake_route(&t->fake, "DELETE", "/v1.41/containers/cswarm-t6", 409,
		   "{\"message\":\"removal of container cswarm-t6 is already in "
		   "progress\"}");
	assert_int_equal(docker_ctl_open(t->d, &spec6, &c6), 0);
	assert_int_equal(docker_ctl_open(t->d, &spec7, &c7), 0);
	assert_int_equal(op_status(t, c6, ENV_CTL_SHUTDOWN, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_EXITED);
	assert_int_equal(op_status(t, c7, ENV_CTL_SHUTDOWN, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_ABSENT);
	assert_int_equal(op_status(t, c6, ENV_CTL_REMOVE, &r), CS_EEXEC);
	assert_string_equal(r.req.message,
			    "removal of container cswarm-t6 is already in progress");
	close_ctl(t, c6);
	close_ctl(t, c7);
}

static void test_docker_inspect_of_absent_container_is_absent(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t5");
	struct env_ctl *ctl;
	struct op_result r;

	fake_route(&t->fake, "GET", "/v1.41/containers/cswarm-t5/json", 404,
		   "{\"message\":\"No such container: cswarm-t5\"}");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_INSPECT, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_ABSENT);
	close_ctl(t, ctl);
}

struct list_result {
	struct env_ctl_list_req req;
	uv_loop_t *loop;
	bool done;
	int status;
	struct env_ctl_found found[8];
	size_t count;
};

static void list_cb(struct env_ctl_list_req *req, int status)
{
	struct list_result *l = req->data;
	uv_stop(l->loop);
	l->done = true;
	l->status = status;
	l->count = req->found_count;
	if (l->count > 8)
		l->count = 8;
	if (l->count)
		memcpy(l->found, req->found, l->count * sizeof *l->found);
}

static void test_docker_list_sorts_by_task_and_reads_labels(void **state)
{
	struct test_ctx *t = *state;
	struct list_result l;
	const struct fake_req *q;

	fake_route(
		&t->fake, "GET", "/v1.41/containers/json", 200,
		"[{\"Id\":\"1\",\"Labels\":{\"cswarm.task.id\":\"tc\",\"cswarm.service.id\":"
		"\"s2\"},\"State\":\"running\",\"Status\":\"Up 3 minutes\"},"
		"{\"Id\":\"2\",\"Labels\":{\"cswarm.task.id\":\"ta\",\"cswarm.service.id\":"
		"\"s1\",\"other\":\"{\\\"x\\\":[1]}\"},\"State\":\"exited\",\"Status\":"
		"\"Exited (137) 2 seconds ago\"},"
		"{\"Id\":\"3\",\"Labels\":{\"unrelated\":\"1\"},\"State\":\"running\"},"
		"{\"Id\":\"4\",\"Labels\":{\"cswarm.task.id\":\"tb\",\"cswarm.service.id\":"
		"\"s1\"},\"State\":\"created\",\"Status\":\"Created\"}]");
	memset(&l, 0, sizeof l);
	l.req.data = &l;
	l.loop = &t->loop;
	assert_int_equal(docker_ctl_list(t->d, &l.req, list_cb), 0);
	assert_false(l.done);
	run_until(t, &l.done, TEST_WAIT_MS);
	assert_int_equal(l.status, 0);
	assert_int_equal(l.count, 3);
	assert_string_equal(l.found[0].task_id, "ta");
	assert_string_equal(l.found[0].service_id, "s1");
	assert_int_equal(l.found[0].state, ENV_CTL_EXITED);
	assert_int_equal(l.found[0].exit_code, 137);
	assert_string_equal(l.found[1].task_id, "tb");
	assert_int_equal(l.found[1].state, ENV_CTL_CREATED);
	assert_string_equal(l.found[2].task_id, "tc");
	assert_string_equal(l.found[2].service_id, "s2");
	assert_int_equal(l.found[2].state, ENV_CTL_RUNNING);
	q = fake_find(&t->fake, "GET", "/v1.41/containers/json");
	assert_non_null(q);
	/* filters={"label":["cswarm.task.id","cswarm.node.id=node-1"]}, encoded */
	assert_non_null(strstr(q->target, "all=1"));
	assert_non_null(strstr(q->target,
			       "filters=%7B%22label%22%3A%5B%22cswarm.task.id%22"
			       "%2C%22cswarm.node.id%3Dnode-1%22%5D%7D"));
}

static void test_docker_missing_socket_is_eexec_with_message(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t6");
	struct env_ctl *ctl;
	struct op_result r;
	struct list_result l;
	char expect[256];

	docker_close(t->d);
	snprintf(expect, sizeof expect, "%s/none.sock", t->dir);
	test_open_docker(t, expect, NULL);
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), CS_EEXEC);
	snprintf(expect, sizeof expect,
		 "docker: cannot connect to %s/none.sock: No such file or directory",
		 t->dir);
	assert_string_equal(r.req.message, expect);
	assert_int_equal(op_status(t, ctl, ENV_CTL_WAIT, &r), CS_EEXEC);
	memset(&l, 0, sizeof l);
	l.req.data = &l;
	l.loop = &t->loop;
	assert_int_equal(docker_ctl_list(t->d, &l.req, list_cb), 0);
	run_until(t, &l.done, TEST_WAIT_MS);
	assert_int_equal(l.status, CS_EEXEC);
	assert_int_equal(l.count, 0);
	close_ctl(t, ctl);
	assert_int_equal(t->fake.req_count, 0);
}

static void test_docker_close_with_wait_pending_never_calls_it(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t7");
	struct env_ctl *ctl;
	struct op_result w, s, w2;

	fake_hold(&t->fake, "POST", "/v1.41/containers/cswarm-t7/wait");
	fake_route(&t->fake, "POST", "/v1.41/containers/cswarm-t7/start", 204, "");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	memset(&w, 0, sizeof w);
	w.req.data = &w;
	w.loop = &t->loop;
	assert_int_equal(docker_ctl_do(ctl, ENV_CTL_WAIT, &w.req, op_cb), 0);
	memset(&w2, 0, sizeof w2);
	w2.req.data = &w2;
	w2.loop = &t->loop;
	assert_int_equal(docker_ctl_do(ctl, ENV_CTL_WAIT, &w2.req, op_cb), CS_EAGAIN);
	/* one other op may run beside a WAIT */
	do_op(t, ctl, ENV_CTL_START, &s, TEST_WAIT_MS);
	assert_int_equal(s.status, 0);
	run_until_received(t, "POST", "/v1.41/containers/cswarm-t7/wait");
	assert_false(w.done);
	close_ctl(t, ctl);
	/* let the loop turn: the held request's connection is gone */
	uv_run(&t->loop, UV_RUN_NOWAIT);
	assert_int_equal(w.calls, 0);
	assert_int_equal(w2.calls, 0);
}

static void test_docker_busy_controller_says_eagain(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("t8");
	struct env_ctl *ctl;
	struct op_result a, b;

	fake_hold(&t->fake, "POST", "/v1.41/containers/cswarm-t8/start");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	memset(&a, 0, sizeof a);
	a.req.data = &a;
	a.loop = &t->loop;
	memset(&b, 0, sizeof b);
	b.req.data = &b;
	b.loop = &t->loop;
	assert_int_equal(docker_ctl_do(ctl, ENV_CTL_START, &a.req, op_cb), 0);
	assert_int_equal(docker_ctl_do(ctl, ENV_CTL_INSPECT, &b.req, op_cb), CS_EAGAIN);
	/* the docker closes with the controller open and a request held */
	run_until_received(t, "POST", "/v1.41/containers/cswarm-t8/start");
	docker_close(t->d);
	t->d = NULL;
	uv_run(&t->loop, UV_RUN_NOWAIT);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
}

static void test_docker_json_escapes_command(void **state)
{
	struct test_ctx *t = *state;
	static const char *const cmd[] = {
		"sh", "-c",
		"echo \"hi\" \\ 'there'\nprintf '\t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\xb3'",
		NULL};
	static const char *const bad[] = {"\xff\xfe", NULL};
	struct env_container_spec spec = test_spec("t9");
	struct env_ctl *ctl;
	struct op_result r;
	const struct fake_req *q;
	json_t *body, *got;

	spec.command = cmd;
	fake_route(&t->fake, "POST", "/v1.41/containers/create", 201, "{\"Id\":\"x\"}");
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), 0);
	q = fake_find(&t->fake, "POST", "/v1.41/containers/create");
	assert_non_null(q);
	/* escaped on the wire: no raw newline or tab, quotes and backslash escaped */
	assert_null(strchr(q->body, '\n'));
	assert_null(strchr(q->body, '\t'));
	assert_non_null(strstr(q->body, "echo \\\"hi\\\" \\\\ 'there'\\nprintf '\\t"));
	body = json_loads(q->body, 0, NULL);
	assert_non_null(body);
	got = json_object_get(body, "Cmd");
	assert_int_equal(json_array_size(got), 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(json_string_value(json_array_get(got, i)), cmd[i]);
	json_decref(body);
	close_ctl(t, ctl);

	/* a string that is not UTF-8 cannot be said in JSON */
	spec.command = bad;
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), CS_EINVAL);
}

static void test_docker_open_refuses_bad_task_ids(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("a/b");
	struct env_ctl *ctl = NULL;
	char longid[80];

	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), CS_EINVAL);
	spec.task_id = "";
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), CS_EINVAL);
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	spec.task_id = longid;
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), CS_ELIMIT);
	spec.task_id = "ok";
	spec.image = "";
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), CS_EINVAL);
	assert_null(ctl);
}

struct ping_result {
	uv_loop_t *loop;
	bool done;
	int status;
	char message[256];
};

static void ping_cb(void *data, int status, const char *message)
{
	struct ping_result *p = data;
	uv_stop(p->loop);
	p->done = true;
	p->status = status;
	snprintf(p->message, sizeof p->message, "%s", message);
}

static void test_docker_ping_answers(void **state)
{
	struct test_ctx *t = *state;
	struct ping_result p = {.loop = &t->loop};

	fake_route(&t->fake, "GET", "/v1.41/_ping", 200, "OK");
	assert_int_equal(docker_ping(t->d, ping_cb, &p), 0);
	assert_false(p.done);
	run_until(t, &p.done, TEST_WAIT_MS);
	assert_int_equal(p.status, 0);
}

struct info_result {
	uv_loop_t *loop;
	bool done;
	int status;
	size_t count;
	char labels[4][64];
};

static void info_cb(void *data, int status, const char *message,
		    const char *const *labels, size_t count)
{
	struct info_result *r = data;
	(void)message;
	uv_stop(r->loop);
	r->done = true;
	r->status = status;
	r->count = count;
	for (size_t i = 0; i < count && i < 4; i++)
		snprintf(r->labels[i], sizeof r->labels[i], "%s", labels[i]);
}

/* GET /info: the daemon's labels (issue 14: engine.labels.KEY). */
static void test_docker_info_gives_engine_labels(void **state)
{
	struct test_ctx *t = *state;
	struct info_result r = {.loop = &t->loop};

	fake_route(&t->fake, "GET", "/v1.41/info", 200,
		   "{\"OSType\":\"linux\",\"Labels\":[\"storage=ssd\",\"zone=b\"]}");
	assert_int_equal(docker_info(t->d, info_cb, &r), 0);
	assert_false(r.done);
	run_until(t, &r.done, TEST_WAIT_MS);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.labels[0], "storage=ssd");
	assert_string_equal(r.labels[1], "zone=b");
}

static void test_docker_info_error_gives_no_labels(void **state)
{
	struct test_ctx *t = *state;
	struct info_result r = {.loop = &t->loop};

	fake_route(&t->fake, "GET", "/v1.41/info", 500, "{\"message\":\"boom\"}");
	assert_int_equal(docker_info(t->d, info_cb, &r), 0);
	run_until(t, &r.done, TEST_WAIT_MS);
	assert_int_equal(r.status, CS_EEXEC);
	assert_int_equal(r.count, 0);
}

static void test_docker_socket_comes_from_docker_host(void **state)
{
	struct test_ctx *t = *state;
	struct ping_result p = {.loop = &t->loop};
	char host[160];

	fake_route(&t->fake, "GET", "/v1.41/_ping", 200, "OK");
	docker_close(t->d);
	snprintf(host, sizeof host, "unix://%s", t->sock);
	assert_int_equal(setenv("DOCKER_HOST", host, 1), 0);
	test_open_docker(t, NULL, NULL);
	unsetenv("DOCKER_HOST");
	assert_int_equal(docker_ping(t->d, ping_cb, &p), 0);
	run_until(t, &p.done, TEST_WAIT_MS);
	assert_int_equal(p.status, 0);
	assert_non_null(fake_find(&t->fake, "GET", "/v1.41/_ping"));
}

static void test_docker_close_drops_a_list_in_flight(void **state)
{
	struct test_ctx *t = *state;
	struct list_result l;

	fake_hold(&t->fake, "GET", "/v1.41/containers/json");
	memset(&l, 0, sizeof l);
	l.req.data = &l;
	l.loop = &t->loop;
	assert_int_equal(docker_ctl_list(t->d, &l.req, list_cb), 0);
	run_until_received(t, "GET", "/v1.41/containers/json");
	docker_close(t->d);
	t->d = NULL;
	uv_run(&t->loop, UV_RUN_NOWAIT);
	assert_false(l.done);
}

/* ---------------------------------------------------------------- a real dockerd */

static void test_docker_real_daemon_runs_a_container(void **state)
{
	struct test_ctx *t = *state;
	const char *sock = getenv("CSWARM_DOCKER_SOCKET");
	static const char *const sleep_cmd[] = {"sleep", "30", NULL};
	char task[64], node[64];
	struct env_container_spec spec;
	struct env_ctl *ctl, *absent;
	struct op_result r, w;
	struct list_result l;
	struct ping_result p = {.loop = &t->loop};
	bool seen = false;

	if (!sock || !sock[0]) {
		skip();
		return;
	}
	docker_close(t->d);
	snprintf(node, sizeof node, "unit-%ld", (long)getpid());
	test_open_docker(t, sock, node);
	assert_int_equal(docker_ping(t->d, ping_cb, &p), 0);
	run_until(t, &p.done, TEST_REAL_WAIT_MS);
	assert_int_equal(p.status, 0);

	snprintf(task, sizeof task, "unit%ld", (long)getpid());
	spec = test_spec(task);
	spec.command = sleep_cmd;
	spec.envs = NULL;
	spec.stop_timeout_ms = 1000;
	assert_int_equal(docker_ctl_open(t->d, &spec, &ctl), 0);
	do_op(t, ctl, ENV_CTL_REMOVE, &r, TEST_REAL_WAIT_MS); /* a leftover */
	assert_int_equal(r.status, 0);
	do_op(t, ctl, ENV_CTL_PREPARE, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.status, 0);
	do_op(t, ctl, ENV_CTL_PREPARE, &r, TEST_REAL_WAIT_MS); /* again: idempotent */
	assert_int_equal(r.status, 0);
	do_op(t, ctl, ENV_CTL_START, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.status, 0);
	do_op(t, ctl, ENV_CTL_INSPECT, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.req.state, ENV_CTL_RUNNING);

	memset(&l, 0, sizeof l);
	l.req.data = &l;
	l.loop = &t->loop;
	assert_int_equal(docker_ctl_list(t->d, &l.req, list_cb), 0);
	run_until(t, &l.done, TEST_REAL_WAIT_MS);
	assert_int_equal(l.status, 0);
	for (size_t i = 0; i < l.count; i++) {
		if (strcmp(l.found[i].task_id, task) != 0)
			continue;
		seen = true;
		assert_string_equal(l.found[i].service_id, "svc-1");
		assert_int_equal(l.found[i].state, ENV_CTL_RUNNING);
	}
	assert_true(seen);

	memset(&w, 0, sizeof w);
	w.req.data = &w;
	w.loop = &t->loop;
	assert_int_equal(docker_ctl_do(ctl, ENV_CTL_WAIT, &w.req, op_cb), 0);
	do_op(t, ctl, ENV_CTL_SHUTDOWN, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.status, 0);
	run_until(t, &w.done, TEST_REAL_WAIT_MS);
	assert_int_equal(w.status, 0);
	assert_int_equal(w.req.state, ENV_CTL_EXITED);
	/* sleep as pid 1 ignores SIGTERM: killed after the 1 s timeout */
	assert_int_equal(w.req.exit_code, 137);
	do_op(t, ctl, ENV_CTL_INSPECT, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.req.state, ENV_CTL_EXITED);
	assert_int_equal(r.req.exit_code, 137);
	do_op(t, ctl, ENV_CTL_REMOVE, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.status, 0);
	do_op(t, ctl, ENV_CTL_INSPECT, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.req.state, ENV_CTL_ABSENT);
	close_ctl(t, ctl);

	/* an image that is not there: never pulled, Docker's words back */
	snprintf(task, sizeof task, "unitabsent%ld", (long)getpid());
	spec = test_spec(task);
	spec.image = "cswarm-absent:nope";
	assert_int_equal(docker_ctl_open(t->d, &spec, &absent), 0);
	do_op(t, absent, ENV_CTL_PREPARE, &r, TEST_REAL_WAIT_MS);
	assert_int_equal(r.status, CS_EEXEC);
	assert_non_null(strstr(r.req.message, "No such image"));
	close_ctl(t, absent);
}

/* ---------------------------------------------------------------- networks (issue 17) */

static const char *const test_aliases[] = {"db", NULL};

/* A container on two networks: PREPARE makes both Docker networks (one
 * exists already: 409 is fine), creates the container on the first at its
 * address with the MAC the other nodes' entries use, then connects it to
 * the second, in that order. */
static void test_docker_prepare_attaches_networks_in_order(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("n1");
	const struct env_net_attach atts[] = {
		{.network_id = 7, .addr = "10.0.3.5/24", .aliases = test_aliases},
		{.network_id = 8, .addr = "10.0.4.9/24"},
	};
	const struct docker_net nets[] = {
		{.name = "cswarm-net-7",
		 .bridge = "cs-br-4097",
		 .subnet = "10.0.3.0/24",
		 .gateway = "10.0.3.1",
		 .mtu = 1450},
		{.name = "cswarm-net-8",
		 .bridge = "cs-br-4098",
		 .subnet = "10.0.4.0/24",
		 .gateway = "10.0.4.1",
		 .mtu = 1450,
		 .internal = true},
	};
	struct env_ctl *ctl;
	struct op_result r;
	const char *want[] = {"/v1.41/networks/create", "/v1.41/networks/create",
			      "/v1.41/containers/create?name=cswarm-n1",
			      "/v1.41/networks/cswarm-net-8/connect"};
	json_t *body, *ep;

	spec.networks = atts;
	spec.network_count = 2;
	fake_route(&t->fake, "POST", "/v1.41/networks/cswarm-net-8/connect", 200, "");
	fake_route(&t->fake, "POST", "/v1.41/networks/create", 409,
		   "{\"message\":\"network with name cswarm-net-7 already exists\"}");
	fake_route(&t->fake, "POST", "/v1.41/containers/create", 201, "{\"Id\":\"abc\"}");
	assert_int_equal(docker_ctl_open_net(t->d, &spec, nets, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_CREATED);
	assert_int_equal(t->fake.req_count, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(t->fake.reqs[i].target, want[i]);
	/* the second network: internal, on its bridge, its subnet and MTU */
	body = json_loads(t->fake.reqs[1].body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "Name")),
			    "cswarm-net-8");
	assert_true(json_is_true(json_object_get(body, "Internal")));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(body, "Options"),
						  "com.docker.network.bridge.name")),
		"cs-br-4098");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(body, "Options"),
						  "com.docker.network.driver.mtu")),
		"1450");
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(
				json_object_get(json_object_get(body, "IPAM"), "Config"),
				0),
			"Gateway")),
		"10.0.4.1");
	json_decref(body);
	/* the container: on the first network at its address, its MAC */
	body = json_loads(t->fake.reqs[2].body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(body, "HostConfig"), "NetworkMode")),
			    "cswarm-net-7");
	assert_string_equal(json_string_value(json_object_get(body, "MacAddress")),
			    "02:42:0a:00:03:05");
	ep = json_object_get(json_object_get(json_object_get(body, "NetworkingConfig"),
					     "EndpointsConfig"),
			     "cswarm-net-7");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(ep, "IPAMConfig"), "IPv4Address")),
			    "10.0.3.5");
	/* aliases are the cluster resolver's, not Docker's (local only) */
	assert_null(json_object_get(ep, "Aliases"));
	/* the node's resolver: on each network's gateway */
	assert_string_equal(
		json_string_value(json_array_get(
			json_object_get(json_object_get(body, "HostConfig"), "Dns"), 0)),
		"10.0.3.1");
	assert_string_equal(
		json_string_value(json_array_get(
			json_object_get(json_object_get(body, "HostConfig"), "Dns"), 1)),
		"10.0.4.1");
	json_decref(body);
	/* the second attachment: connected at its address */
	body = json_loads(t->fake.reqs[3].body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "Container")),
			    "cswarm-n1");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(body, "EndpointConfig"),
					"IPAMConfig"),
			"IPv4Address")),
		"10.0.4.9");
	json_decref(body);
	close_ctl(t, ctl);
}

/* Issue 16: entrypoint apart from the command, container labels beside
 * cswarm's (which win), working dir, user, bind and volume mounts. */
static void test_docker_container_fields_in_create_body(void **state)
{
	static const char *const ep[] = {"/bin/sh", NULL};
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("tc1");
	struct env_label labels[] = {{"team", "a"}, {"cswarm.task.id", "forged"}};
	struct env_mount mounts[] = {
		{ENV_MOUNT_BIND, "/srv/data", "/x", true},
		{ENV_MOUNT_VOLUME, "vol1", "/v", false},
	};
	struct env_ctl *ctl;
	json_t *body, *m;

	spec.entrypoint = ep;
	spec.labels = labels;
	spec.label_count = 2;
	spec.dir = "/tmp";
	spec.user = "65534";
	spec.mounts = mounts;
	spec.mount_count = 2;
	fake_route(&t->fake, "POST", "/v1.41/containers/create", 201,
		   "{\"Id\":\"abc\",\"Warnings\":[]}");
	body = create_body(t, &spec, &ctl);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(body, "Entrypoint"), 0)),
		"/bin/sh");
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(body, "Cmd"), 0)),
		test_cmd[0]);
	assert_string_equal(json_string_value(json_object_get(body, "WorkingDir")),
			    "/tmp");
	assert_string_equal(json_string_value(json_object_get(body, "User")), "65534");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(body, "Labels"), "team")),
			    "a");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(body, "Labels"), "cswarm.task.id")),
			    "tc1");
	m = json_object_get(json_object_get(body, "HostConfig"), "Mounts");
	assert_int_equal(json_array_size(m), 2);
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(m, 0), "Type")), "bind");
	assert_true(json_is_true(json_object_get(json_array_get(m, 0), "ReadOnly")));
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(m, 1), "Type")),
		"volume");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(m, 1), "Source")),
		"vol1");
	json_decref(body);
	close_ctl(t, ctl);
}

/* A network step Docker refuses fails PREPARE with its words, and nothing
 * after it is asked. */
static void test_docker_prepare_network_refusal_is_eexec_with_dockers_words(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("n2");
	const struct env_net_attach att = {.network_id = 7, .addr = "10.0.3.5/24"};
	const struct docker_net net = {.name = "cswarm-net-7",
				       .bridge = "cs-br-4097",
				       .subnet = "10.0.3.0/24",
				       .gateway = "10.0.3.1"};
	struct env_ctl *ctl;
	struct op_result r;

	spec.networks = &att;
	spec.network_count = 1;
	fake_route(&t->fake, "POST", "/v1.41/networks/create", 500,
		   "{\"message\":\"cannot create network (cs-br-4097): conflicts with "
		   "network x\"}");
	assert_int_equal(docker_ctl_open_net(t->d, &spec, &net, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), CS_EEXEC);
	assert_non_null(
		strstr(r.req.message, "network cswarm-net-7: cannot create network"));
	assert_int_equal(t->fake.req_count, 1);
	close_ctl(t, ctl);
}

/* A network the data plane does not hold here: PREPARE fails, from the
 * loop, saying so, and asks Docker nothing; the controller takes the next
 * op as usual. */
static void test_docker_prepare_undeclared_network_fails_without_asking(void **state)
{
	struct test_ctx *t = *state;
	struct env_container_spec spec = test_spec("n3");
	const struct env_net_attach att = {.network_id = 0xab, .addr = "10.0.3.5/24"};
	const struct docker_net none = {.name = NULL};
	struct env_ctl *ctl;
	struct op_result r;

	spec.networks = &att;
	spec.network_count = 1;
	fake_route(&t->fake, "GET", "/v1.41/containers/cswarm-n3/json", 404,
		   "{\"message\":\"No such container\"}");
	assert_int_equal(docker_ctl_open_net(t->d, &spec, &none, &ctl), 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_PREPARE, &r), CS_EEXEC);
	assert_non_null(
		strstr(r.req.message, "network 00000000000000ab is not declared"));
	assert_int_equal(t->fake.req_count, 0);
	assert_int_equal(op_status(t, ctl, ENV_CTL_INSPECT, &r), 0);
	assert_int_equal(r.req.state, ENV_CTL_ABSENT);
	close_ctl(t, ctl);
}

struct logs_result {
	struct env_logs_req req;
	uv_loop_t *loop;
	bool done;
	int status, calls;
	char text[256];
	uint32_t streams[8];
	uint64_t times[8];
	size_t count;
};

static void logs_cb(struct env_logs_req *req, int status)
{
	struct logs_result *r = req->data;
	uv_stop(r->loop);
	r->done = true;
	r->status = status;
	r->calls++;
	r->count = req->line_count;
	for (size_t i = 0; i < req->line_count && i < 8; i++) {
		strncat(r->text, req->lines[i].data, req->lines[i].len);
		r->streams[i] = req->lines[i].stream;
		r->times[i] = req->lines[i].time_ns;
	}
}

/* Issue 16: a container's log lines from Docker's multiplexed frames, with
 * their times: after each stream's cursor (the streams' times are not in
 * order with each other), from a since the cursors give. */
static void test_docker_logs_reads_frames_after_cursors(void **state)
{
	static const char frames[] = "\x01\0\0\0\0\0\0\x25"
				     "2026-12-06T10:00:00.000000001Z out 1\n"
				     "\x02\0\0\0\0\0\0\x25"
				     "2026-12-06T10:00:00.000000003Z err 1\n"
				     "\x01\0\0\0\0\0\0\x25"
				     "2026-12-06T10:00:00.000000002Z out 2\n"
				     "\x01\0\0\0\0\0\0\x15"
				     "2026-12-06T10:00:01Z\n"
				     "\x01\0\0\0\0\0\0\x11"
				     "not a time at all";
	struct test_ctx *t = *state;
	struct logs_result r;
	const struct fake_req *q;
	uint64_t t0 = 1796551200ull * 1000000000ull; /* 2026-12-06T10:00:00Z */

	assert_true(t->fake.route_count < FAKE_ROUTES_MAX);
	t->fake.routes[t->fake.route_count++] =
		(struct fake_route){"GET", "/v1.41/containers/cswarm-tl1/logs",
				    200,   frames,
				    false, sizeof frames - 1};
	memset(&r, 0, sizeof r);
	r.loop = &t->loop;
	r.req.data = &r;
	r.req.task_id = "tl1";
	r.req.after_ns = t0 + 1; /* out 1 was read */
	r.req.after_err_ns = 0;
	r.req.max_bytes = 1024;
	assert_int_equal(docker_logs_read(t->d, &r.req, logs_cb), 0);
	assert_false(r.done);
	run_until(t, &r.done, TEST_WAIT_MS);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.count, 3);
	assert_string_equal(r.text, "err 1\nout 2\n\n");
	assert_int_equal(r.streams[0], 2);
	assert_int_equal(r.streams[1], 1);
	assert_true(r.times[0] == t0 + 3);
	assert_true(r.times[2] == t0 + 1000000000ull);
	q = fake_find(&t->fake, "GET", "/v1.41/containers/cswarm-tl1/logs");
	assert_non_null(q);
	assert_non_null(strstr(q->target, "timestamps=1"));
	assert_non_null(strstr(q->target, "tail=all"));
	/* the older cursor of the two: stderr's, none yet */
	assert_null(strstr(q->target, "since="));

	/* without follow, nothing after until: the 10:00:01 line is not shown */
	memset(&r, 0, sizeof r);
	r.loop = &t->loop;
	r.req.data = &r;
	r.req.task_id = "tl1";
	r.req.until_ms = t0 / 1000000 + 500;
	r.req.max_bytes = 1024;
	assert_int_equal(docker_logs_read(t->d, &r.req, logs_cb), 0);
	run_until(t, &r.done, TEST_WAIT_MS);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.count, 3);
	assert_string_equal(r.text, "out 1\nerr 1\nout 2\n");

	/* a container gone: no lines, no error */
	memset(&r, 0, sizeof r);
	r.loop = &t->loop;
	r.req.data = &r;
	r.req.task_id = "gone1";
	r.req.tail_set = true;
	r.req.tail = 5;
	r.req.max_bytes = 1024;
	fake_route(&t->fake, "GET", "/v1.41/containers/cswarm-gone1/logs", 404,
		   "{\"message\":\"No such container: cswarm-gone1\"}");
	assert_int_equal(docker_logs_read(t->d, &r.req, logs_cb), 0);
	run_until(t, &r.done, TEST_WAIT_MS);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.count, 0);
	q = fake_find(&t->fake, "GET", "/v1.41/containers/cswarm-gone1/logs");
	assert_non_null(q);
	assert_non_null(strstr(q->target, "tail=5"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_docker_prepare_start_wait_gives_exit_code),
		T(test_docker_health_check_in_create_and_inspect_reads_health),
		T(test_docker_host_ports_become_port_bindings),
		T(test_docker_missing_image_is_eexec_with_dockers_words),
		T(test_docker_create_conflict_counts_as_created),
		T(test_docker_quick_ops_map_docker_answers),
		T(test_docker_inspect_of_absent_container_is_absent),
		T(test_docker_stop_of_stopped_or_absent_is_success_remove_refusal_is_error),
		T(test_docker_list_sorts_by_task_and_reads_labels),
		T(test_docker_missing_socket_is_eexec_with_message),
		T(test_docker_close_with_wait_pending_never_calls_it),
		T(test_docker_busy_controller_says_eagain),
		T(test_docker_json_escapes_command),
		T(test_docker_open_refuses_bad_task_ids),
		T(test_docker_ping_answers),
		T(test_docker_info_gives_engine_labels),
		T(test_docker_info_error_gives_no_labels),
		T(test_docker_socket_comes_from_docker_host),
		T(test_docker_close_drops_a_list_in_flight),
		T(test_docker_prepare_attaches_networks_in_order),
		T(test_docker_prepare_network_refusal_is_eexec_with_dockers_words),
		T(test_docker_prepare_undeclared_network_fails_without_asking),
		T(test_docker_real_daemon_runs_a_container),
		T(test_docker_container_fields_in_create_body),
		T(test_docker_logs_reads_frames_after_cursors),
	};
#undef T
	return cmocka_run_group_tests_name("docker", tests, NULL, NULL);
}
