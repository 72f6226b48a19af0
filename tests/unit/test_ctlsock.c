/* Tests of the control socket: a node that is not a manager answers
 * CS_ENOTSUP; an oversized or undecodable frame closes that connection
 * and the server keeps serving; stale socket files are replaced, other
 * files are not. The blocking client runs on a thread while the test
 * runs the server's loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/node.h"
#include "sim/cluster.h"
#include "sim/world.h"
#include "net/ctlsock.h"

static struct control_rpc *no_rpc(void *data)
{
	int *asked = data;
	(*asked)++;
	return NULL;
}

struct client {
	const char *path;
	const Cs__ControlRequest *req; /* NULL: a node list */
	atomic_int done;
	int rv;
	Cs__ControlResponse *resp;
	char err[256];
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;

	req.id = 42;
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_LIST;
	c->rv = ctlsock_request(c->path, c->req ? c->req : &req, &c->resp, 5000, c->err,
				sizeof c->err);
	atomic_store(&c->done, 1);
	return NULL;
}

/* One request from a client thread, served by the loop here. */
static void request(uv_loop_t *loop, const char *path, struct client *c)
{
	pthread_t t;

	memset(c, 0, sizeof *c);
	c->path = path;
	assert_int_equal(pthread_create(&t, NULL, client_main, c), 0);
	while (!atomic_load(&c->done)) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	pthread_join(t, NULL);
}

static void tmp_path(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "/tmp/cs-ctlsock-%ld-%s.sock", (long)getpid(), tag);
	unlink(buf);
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* Runs the loop until the server closed fd's connection (true), or 2 s. */
static bool closed_by_server(uv_loop_t *loop, int fd)
{
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint8_t b;
		uv_run(loop, UV_RUN_NOWAIT);
		if (poll(&p, 1, 1) == 1)
			return recv(fd, &b, 1, 0) == 0;
	}
	return false;
}

static void test_ctlsock_not_a_manager_answers_enotsup(void **state)
{
	uv_loop_t loop;
	struct ctlsock *s;
	struct client c;
	struct stat st;
	char path[108], err[256];
	int asked = 0;

	tmp_path(path, sizeof path, "enotsup");
	uv_loop_init(&loop);
	assert_int_equal(ctlsock_open(&loop, path, no_rpc, &asked, &s, err, sizeof err),
			 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	request(&loop, path, &c);
	assert_int_equal(c.rv, 0);
	assert_non_null(c.resp);
	assert_int_equal(c.resp->id, 42);
	assert_int_equal(c.resp->status, CS_ENOTSUP);
	assert_string_equal(c.resp->error, "this node is not a manager");
	assert_int_equal(asked, 1);
	cs__control_response__free_unpacked(c.resp, NULL);
	ctlsock_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_not_equal(access(path, F_OK), 0); /* removed */

	/* no daemon: the client says so */
	assert_int_equal(client_main(&c), NULL);
	assert_int_equal(c.rv, CS_EUNREACH);
	assert_non_null(strstr(c.err, "is swarmd running?"));
}

static void test_ctlsock_bad_frames_close_the_client_only(void **state)
{
	uv_loop_t loop;
	struct ctlsock *s;
	struct client c;
	char path[108], err[256];
	uint8_t oversized[4] = {0x01, 0x00, 0x00, 0x01}; /* 16 MiB + 1 */
	uint8_t garbage[9] = {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff};
	int asked = 0, fd, idle;

	tmp_path(path, sizeof path, "bad");
	uv_loop_init(&loop);
	assert_int_equal(ctlsock_open(&loop, path, no_rpc, &asked, &s, err, sizeof err),
			 0);
	idle = raw_connect(path); /* a quiet client stays connected */

	fd = raw_connect(path);
	assert_int_equal(send(fd, oversized, sizeof oversized, 0), 4);
	assert_true(closed_by_server(&loop, fd));
	close(fd);

	fd = raw_connect(path);
	assert_int_equal(send(fd, garbage, sizeof garbage, 0), 9);
	assert_true(closed_by_server(&loop, fd));
	close(fd);

	/* the server survives: the quiet one is still there, a new one served */
	{
		struct pollfd p = {.fd = idle, .events = POLLIN};
		uv_run(&loop, UV_RUN_NOWAIT);
		assert_int_equal(poll(&p, 1, 0), 0);
	}
	request(&loop, path, &c);
	assert_int_equal(c.rv, 0);
	assert_int_equal(c.resp->status, CS_ENOTSUP);
	cs__control_response__free_unpacked(c.resp, NULL);
	assert_int_equal(asked, 1); /* the bad frames reached no one */
	close(idle);
	ctlsock_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_ctlsock_replaces_stale_socket_not_files(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uv_loop_t loop;
	struct ctlsock *s;
	char path[108], err[256];
	int asked = 0, fd;
	FILE *f;

	tmp_path(path, sizeof path, "stale");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd); /* a socket file nobody listens on */
	uv_loop_init(&loop);
	assert_int_equal(ctlsock_open(&loop, path, no_rpc, &asked, &s, err, sizeof err),
			 0);
	/* a second daemon on the same path is refused */
	{
		struct ctlsock *s2;
		assert_int_equal(
			ctlsock_open(&loop, path, no_rpc, &asked, &s2, err, sizeof err),
			CS_EADDRINUSE);
		assert_non_null(strstr(err, "another daemon"));
	}
	ctlsock_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);

	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(ctlsock_open(&loop, path, no_rpc, &asked, &s, err, sizeof err),
			 CS_EADDRINUSE);
	assert_non_null(strstr(err, "is not a socket"));
	assert_int_equal(access(path, F_OK), 0); /* left alone */

	/* a path under a file, or in a directory that does not exist, is
	 * named as such (libuv alone says "permission denied") */
	{
		char under[160];
		snprintf(under, sizeof under, "%s/sock", path);
		assert_int_equal(
			ctlsock_open(&loop, under, no_rpc, &asked, &s, err, sizeof err),
			CS_EINVAL);
		assert_non_null(strstr(err, "is not a directory"));
		unlink(path);
		assert_int_equal(
			ctlsock_open(&loop, under, no_rpc, &asked, &s, err, sizeof err),
			CS_EINVAL);
		assert_non_null(strstr(err, "No such file or directory"));
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A one-manager simulated cluster behind the socket: the loop and the world
 * take turns, as swarmd's loop runs the node. */
struct simnode {
	struct world *w;
	struct simcluster *c;
	uint32_t idx;
};

static struct control_rpc *sim_rpc(void *data)
{
	struct simnode *s = data;
	struct node *n = world_node_state(s->w, s->idx);
	return n ? node_control(n) : NULL;
}

static void *client_thread(void *arg)
{
	return client_main(arg);
}

static void sim_request(uv_loop_t *loop, struct simnode *sn, const char *path,
			const Cs__ControlRequest *req, struct client *c)
{
	pthread_t t;

	memset(c, 0, sizeof *c);
	c->path = path;
	c->req = req;
	assert_int_equal(pthread_create(&t, NULL, client_thread, c), 0);
	while (!atomic_load(&c->done)) {
		uv_run(loop, UV_RUN_NOWAIT);
		world_step(sn->w, world_now_us(sn->w) + 100000);
		usleep(100);
	}
	pthread_join(t, NULL);
}

static void test_ctlsock_serves_a_simulated_leader(void **state)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec task = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec ctr = CS__CONTAINER_SPEC__INIT;
	const struct node_cfg *cfg;
	struct simnode sn;
	uv_loop_t loop;
	struct ctlsock *s;
	struct client c;
	char path[108], err[256];

	sn.w = world_new(5);
	sn.c = simcluster_new(sn.w, NULL);
	simcluster_node_programs(sn.c, true);
	cfg = simcluster_node_cfg(sn.c, "m1", 1, 1, 1, 4000, 1ull << 33);
	assert_int_equal(world_node_add(sn.w, "m1", &node_program, cfg, &sn.idx), 0);
	simcluster_track(sn.c, sn.idx, 1);
	assert_int_equal(world_node_start(sn.w, sn.idx), 0);
	while ((simcluster_leader(sn.c) < 0 ||
		!manager_serves(
			simcluster_manager(sn.c, (uint32_t)simcluster_leader(sn.c)))) &&
	       world_step(sn.w, 60000000ull))
		;
	assert_true(simcluster_leader(sn.c) >= 0);

	tmp_path(path, sizeof path, "sim");
	uv_loop_init(&loop);
	assert_int_equal(ctlsock_open(&loop, path, sim_rpc, &sn, &s, err, sizeof err), 0);
	spec.name = "web";
	spec.replicas = 1;
	ctr.image = "img";
	task.container = &ctr;
	spec.task = &task;
	req.id = 77;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	sim_request(&loop, &sn, path, &req, &c);
	assert_int_equal(c.rv, 0);
	assert_int_equal(c.resp->id, 77);
	assert_int_equal(c.resp->status, 0);
	assert_true(c.resp->created_id != 0);
	cs__control_response__free_unpacked(c.resp, NULL);

	cs__control_request__init(&req);
	req.id = 78;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST;
	sim_request(&loop, &sn, path, &req, &c);
	assert_int_equal(c.rv, 0);
	assert_int_equal(c.resp->status, 0);
	assert_int_equal(c.resp->n_services, 1);
	assert_string_equal(c.resp->services[0]->spec->name, "web");
	cs__control_response__free_unpacked(c.resp, NULL);

	ctlsock_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	world_free(sn.w);
	simcluster_free(sn.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctlsock_not_a_manager_answers_enotsup),
		cmocka_unit_test(test_ctlsock_bad_frames_close_the_client_only),
		cmocka_unit_test(test_ctlsock_replaces_stale_socket_not_files),
		cmocka_unit_test(test_ctlsock_serves_a_simulated_leader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
