/* fuzz_dockerapi_http: a byte stream from a Docker client to the Docker API
 * socket (net/dockerapi.c: http_parser, routing, query strings, the JSON
 * bodies, the ControlRequests it makes), served by the real server on a
 * unix socket against a fake control API (one service "web" at version 7,
 * one node, the cluster; answers inside the call). The input is sent, the
 * client half-closes, and the loop runs until the server closes. Properties:
 * - what the server writes back is a sequence of whole, well-formed HTTP/1.1
 *   responses (http_parser in response mode takes all of it, nothing left
 *   over mid-message), each body JSON when there is one (but for
 *   /_ping's and /version's text) and a status a Docker client knows;
 * - every ControlRequest the server makes packs within a frame;
 * - the server closes the connection after the client's end (no connection
 *   left behind: the next input starts alone).
 * The first input byte is not sent: it picks nothing yet (kept for
 * future knobs, so the corpus format is stable). */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "core/limits.h"
#include "net/dockerapi.h"
#include "tests/fuzz/fuzz.h"

static uv_loop_t loop;
static struct dockerapi *api;
static char path[108];

static int fake_call(void *data, const Cs__ControlRequest *req, control_rpc_cb cb,
		     void *cb_data)
{
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec cs = CS__CONTAINER_SPEC__INIT;
	Cs__Service svc = CS__SERVICE__INIT, *svcs[1] = {&svc};
	Cs__Node node = CS__NODE__INIT, *nodes[1] = {&node};
	Cs__Task task = CS__TASK__INIT, *tasks[1] = {&task};
	Cs__TaskStatus tst = CS__TASK_STATUS__INIT;
	Cs__Cluster cl = CS__CLUSTER__INIT;

	FUZZ_CHECK(cs__control_request__get_packed_size(req) <= LIMIT_FRAME_BYTES_MAX);
	cs.image = "img";
	ts.container = &cs;
	spec.name = "web";
	spec.replicas = 1;
	spec.task = &ts;
	svc.id = 0xaa;
	svc.spec = &spec;
	svc.version = 7;
	node.id = 0x5;
	node.hostname = "n1";
	node.version = 3;
	task.id = 0xcc;
	task.service_id = 0xaa;
	task.node_id = 0x5;
	task.slot = 1;
	task.status = &tst;
	cl.id = 1;
	cl.version = 2;
	resp.id = req->id;
	switch (req->op) {
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST:
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT:
		resp.services = svcs;
		resp.n_services = 1;
		break;
	case CS__CONTROL_OP__CONTROL_OP_NODE_LIST:
	case CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT:
		resp.nodes = nodes;
		resp.n_nodes = 1;
		break;
	case CS__CONTROL_OP__CONTROL_OP_TASK_LIST:
	case CS__CONTROL_OP__CONTROL_OP_TASK_INSPECT:
		resp.tasks = tasks;
		resp.n_tasks = 1;
		resp.services = svcs;
		resp.n_services = 1;
		break;
	case CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT: resp.cluster = &cl; break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE:
		if (req->spec && req->spec->name && strcmp(req->spec->name, "web") == 0) {
			resp.status = CS_EEXIST;
			resp.error = "name: a service named 'web' exists";
		} else {
			resp.created_id = 0xbb;
		}
		break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE:
		if (req->version != 7) {
			resp.status = CS_EVERSION;
			resp.error = "service 'web' is at version 7, not 6";
		}
		break;
	default: break;
	}
	cb(cb_data, &resp);
	return 0;
}

static uint64_t self_id(void *data)
{
	return 0x5;
}

static struct dockerapi_backend be = {
	.call = fake_call, .self_id = self_id, .hostname = "n1", .idle_ms = 2000};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	snprintf(path, sizeof path, "/tmp/cswarm-fuzz-dapi-%d.sock", (int)getpid());
	FUZZ_CHECK(uv_loop_init(&loop) == 0);
	FUZZ_CHECK(dockerapi_open(&loop, path, &be, &api, err, sizeof err) == 0);
	return 0;
}

/* ---- checking what came back */

struct resp_check {
	char body[1 << 16];
	size_t body_len;
	bool body_cut;
	size_t messages;
	unsigned status;
	bool json_expected;
};

static int on_begin(http_parser *p)
{
	struct resp_check *r = p->data;
	r->body_len = 0;
	r->body_cut = false;
	r->json_expected = true;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct resp_check *r = p->data;
	if (len >= 10 && strncmp(at, "text/plain", 10) == 0)
		r->json_expected = false;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct resp_check *r = p->data;
	if (r->body_len + len > sizeof r->body) {
		r->body_cut = true;
		return 0;
	}
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	return 0;
}

static int on_complete(http_parser *p)
{
	struct resp_check *r = p->data;
	r->messages++;
	r->status = p->status_code;
	FUZZ_CHECK(p->status_code >= 200 && p->status_code < 600);
	if (r->body_len && !r->body_cut && r->json_expected) {
		json_error_t e;
		json_t *j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &e);
		if (!j)
			fprintf(stderr, "body not JSON: %.*s\n", (int)r->body_len,
				r->body);
		FUZZ_CHECK(j);
		json_decref(j);
	}
	return 0;
}

static const http_parser_settings resp_settings = {
	.on_message_begin = on_begin,
	.on_header_value = on_header_value,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa;
	int fd;
	size_t sent = 0;
	bool eof = false;
	static struct resp_check r;
	http_parser hp;
	int spins = 0;

	if (size < 1)
		return 0;
	data++;
	size--;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	FUZZ_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	memset(&r, 0, sizeof r);
	http_parser_init(&hp, HTTP_RESPONSE);
	hp.data = &r;
	while (!eof) {
		char buf[65536];
		ssize_t n;

		if (sent < size) {
			n = write(fd, data + sent, size - sent);
			if (n > 0)
				sent += (size_t)n;
			if (sent == size)
				shutdown(fd, SHUT_WR);
		} else if (size == 0 && sent == 0) {
			shutdown(fd, SHUT_WR);
			sent = 1;
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		n = read(fd, buf, sizeof buf);
		if (n == 0) {
			eof = true;
		} else if (n > 0) {
			size_t done =
				http_parser_execute(&hp, &resp_settings, buf, (size_t)n);
			if (HTTP_PARSER_ERRNO(&hp) != HPE_OK)
				fprintf(stderr, "bad response: %s\n",
					http_errno_description(HTTP_PARSER_ERRNO(&hp)));
			FUZZ_CHECK(HTTP_PARSER_ERRNO(&hp) == HPE_OK && done == (size_t)n);
		} else {
			FUZZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK ||
				   errno == ECONNRESET);
			if (errno == ECONNRESET)
				eof = true;
			else if (++spins > 200000) {
				/* waiting for a request that will not come
				 * whole: the idle timer closes it */
				usleep(1000);
			}
		}
	}
	/* the stream ends between responses */
	http_parser_execute(&hp, &resp_settings, NULL, 0);
	FUZZ_CHECK(HTTP_PARSER_ERRNO(&hp) == HPE_OK);
	close(fd);
	for (int i = 0; i < 4; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
