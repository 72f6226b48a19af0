/* ctlsock: the control socket, server (libuv) and client (blocking). See
 * ctlsock.h. */
#include "net/ctlsock.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "net/dlist.h"

struct ctl_client {
	uv_pipe_t pipe;
	struct ctlsock *s; /* NULL once the server closed */
	struct ctl_client *prev, *next;
	uint8_t *buf; /* bytes read, not yet a whole frame */
	size_t len, cap;
	size_t refs;	 /* the handle's, and one per request in flight */
	size_t inflight; /* requests in the control RPC */
	bool closing;
};

struct ctlsock {
	uv_loop_t *loop;
	uv_pipe_t listener;
	char *path;
	ctlsock_rpc_fn get_rpc;
	void *data;
	ctlsock_call_fn call; /* issue 19: NULL: control_rpc_call */
	void *call_data;
	struct ctl_client *clients;
	size_t client_count;
};

struct ctl_write {
	uv_write_t req;
	struct ctl_client *cl;
	uint8_t frame[]; /* length, then the message */
};

static void ctl_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ctl_logf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ctlsock: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void ctl_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t ctl_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------------------------------------------------------- server */

static void ctl_client_unref(struct ctl_client *cl)
{
	assert(cl->refs > 0);
	if (--cl->refs > 0)
		return;
	assert(cl->closing);
	free(cl->buf);
	free(cl);
}

static void ctl_client_closed(uv_handle_t *h)
{
	struct ctl_client *cl = h->data;
	struct ctlsock *s = cl->s;

	if (s) {
		DLIST_UNLINK(s->clients, cl);
		assert(s->client_count > 0);
		s->client_count--;
	}
	cl->s = NULL;
	ctl_client_unref(cl);
}

static void ctl_client_close(struct ctl_client *cl)
{
	if (cl->closing)
		return;
	cl->closing = true;
	uv_close((uv_handle_t *)&cl->pipe, ctl_client_closed);
}

static void ctl_written(uv_write_t *req, int status)
{
	struct ctl_write *w = (struct ctl_write *)req;
	struct ctl_client *cl = w->cl;

	if (status < 0 && !cl->closing) {
		ctl_logf("answer not written: %s", uv_strerror(status));
		ctl_client_close(cl);
	}
	free(w);
	ctl_client_unref(cl);
}

/* ctl_answer writes resp as one frame to cl (a client closing gets nothing). */
static void ctl_answer(struct ctl_client *cl, const Cs__ControlResponse *resp)
{
	size_t len = cs__control_response__get_packed_size(resp);
	struct ctl_write *w;
	uv_buf_t b;
	int rv;

	if (cl->closing)
		return;
	if (len > CTLSOCK_FRAME_BYTES_MAX) {
		ctl_logf("answer of %zu bytes over the frame limit: closing", len);
		ctl_client_close(cl);
		return;
	}
	w = malloc(sizeof *w + 4 + len);
	if (!w) {
		ctl_logf("answer lost: out of memory");
		ctl_client_close(cl);
		return;
	}
	w->cl = cl;
	ctl_put_be32(w->frame, (uint32_t)len);
	cs__control_response__pack(resp, w->frame + 4);
	b = uv_buf_init((char *)w->frame, (unsigned)(4 + len));
	cl->refs++;
	rv = uv_write(&w->req, (uv_stream_t *)&cl->pipe, &b, 1, ctl_written);
	if (rv < 0) {
		ctl_logf("answer not written: %s", uv_strerror(rv));
		free(w);
		cl->refs--;
		ctl_client_close(cl);
	}
}

static void ctl_answer_error(struct ctl_client *cl, uint64_t id, int status,
			     const char *error)
{
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	resp.id = id;
	resp.status = status;
	resp.error = (char *)error;
	ctl_answer(cl, &resp);
}

static void ctl_answered(void *data, const Cs__ControlResponse *resp)
{
	struct ctl_client *cl = data;

	assert(cl->inflight > 0);
	cl->inflight--;
	ctl_answer(cl, resp);
	ctl_client_unref(cl);
}

static void ctl_request(struct ctl_client *cl, const Cs__ControlRequest *req)
{
	struct control_rpc *rpc = cl->s->get_rpc(cl->s->data);
	int rv;

	if (!rpc) {
		ctl_answer_error(cl, req->id, CS_ENOTSUP, "this node is not a manager");
		return;
	}
	if (cl->inflight >= CTLSOCK_INFLIGHT_MAX) {
		ctl_answer_error(cl, req->id, CS_EAGAIN,
				 "too many requests in flight on this connection");
		return;
	}
	cl->refs++;
	cl->inflight++;
	rv = cl->s->call ? cl->s->call(cl->s->call_data, rpc, req, ctl_answered, cl)
			 : control_rpc_call(rpc, req, ctl_answered, cl);
	if (rv) {
		cl->refs--;
		cl->inflight--;
		ctl_answer_error(cl, req->id, rv, cs_strerror(rv));
	}
}

/* ctl_frames runs every whole frame in cl's buffer; a bad one closes cl. */
static void ctl_frames(struct ctl_client *cl)
{
	size_t off = 0;

	while (!cl->closing && cl->len - off >= 4) {
		uint32_t flen = ctl_get_be32(cl->buf + off);
		Cs__ControlRequest *req;

		if (flen > CTLSOCK_FRAME_BYTES_MAX) {
			ctl_logf("frame of %u bytes over the limit of %u: closing the "
				 "connection",
				 flen, CTLSOCK_FRAME_BYTES_MAX);
			ctl_client_close(cl);
			return;
		}
		if (cl->len - off - 4 < flen)
			break;
		req = cs__control_request__unpack(NULL, flen, cl->buf + off + 4);
		if (!req) {
			ctl_logf(
				"undecodable request of %u bytes: closing the connection",
				flen);
			ctl_client_close(cl);
			return;
		}
		off += 4 + (size_t)flen;
		ctl_request(cl, req);
		cs__control_request__free_unpacked(req, NULL);
	}
	if (off) {
		memmove(cl->buf, cl->buf + off, cl->len - off);
		cl->len -= off;
	}
}

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct ctl_client *cl = h->data;
	size_t want = cl->len + 65536;

	if (want > CTLSOCK_FRAME_BYTES_MAX + 4 + 65536)
		want = CTLSOCK_FRAME_BYTES_MAX + 4 + 65536;
	if (cl->cap < want) {
		uint8_t *p = realloc(cl->buf, want);
		if (p) {
			cl->buf = p;
			cl->cap = want;
		}
	}
	if (!cl->buf)
		*b = uv_buf_init(NULL, 0); /* read gets UV_ENOBUFS: closes */
	else
		*b = uv_buf_init((char *)cl->buf + cl->len,
				 (unsigned)(cl->cap - cl->len));
}

static void ctl_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct ctl_client *cl = st->data;

	if (nread < 0) {
		if (nread != UV_EOF)
			ctl_logf("read: %s", uv_strerror((int)nread));
		ctl_client_close(cl);
		return;
	}
	if (nread == 0)
		return;
	assert((uint8_t *)b->base == cl->buf + cl->len);
	cl->len += (size_t)nread;
	ctl_frames(cl);
}

static void ctl_connection(uv_stream_t *listener, int status)
{
	struct ctlsock *s = listener->data;
	struct ctl_client *cl;
	int rv;

	if (status < 0) {
		ctl_logf("accept: %s", uv_strerror(status));
		return;
	}
	cl = calloc(1, sizeof *cl);
	if (!cl) {
		ctl_logf("connection refused: out of memory");
		return;
	}
	cl->refs = 1;
	uv_pipe_init(s->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	cl->s = s;
	DLIST_PUSH(s->clients, cl);
	s->client_count++;
	if ((rv = uv_accept(listener, (uv_stream_t *)&cl->pipe)) < 0) {
		ctl_logf("accept: %s", uv_strerror(rv));
		ctl_client_close(cl);
		return;
	}
	if (s->client_count > CTLSOCK_CLIENTS_MAX) {
		ctl_logf("connection refused: %u at once", CTLSOCK_CLIENTS_MAX);
		ctl_client_close(cl);
		return;
	}
	if ((rv = uv_read_start((uv_stream_t *)&cl->pipe, ctl_alloc, ctl_read)) < 0) {
		ctl_logf("read: %s", uv_strerror(rv));
		ctl_client_close(cl);
	}
}

static void ctl_listener_closed(uv_handle_t *h)
{
	struct ctlsock *s = h->data;
	free(s->path);
	free(s);
}

/* Whether something accepts connections at the unix socket path. */
static bool ctl_is_live(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return live;
}

int ctlsock_path_check(const char *path, const char *what, char *err, size_t n)
{
	struct sockaddr_un sa;
	struct stat st;

	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, n, "%s path '%s' is over %zu bytes", what, path,
			 sizeof sa.sun_path - 1);
		return CS_EINVAL;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, n, "%s exists and is not a socket", path);
			return CS_EADDRINUSE;
		}
		if (ctl_is_live(path)) {
			snprintf(err, n, "%s: another daemon listens there", path);
			return CS_EADDRINUSE;
		}
		if (unlink(path) != 0) {
			snprintf(err, n, "remove stale %s: %s", path, strerror(errno));
			return CS_EADDRINUSE;
		}
	}
	/* libuv reports a missing directory as "permission denied" (ENOENT
	 * becomes EACCES, for Windows' sake): say what is wrong ourselves */
	{
		char dir[sizeof sa.sun_path];
		char *slash;
		snprintf(dir, sizeof dir, "%s", path);
		slash = strrchr(dir, '/');
		if (slash) {
			slash[slash == dir ? 1 : 0] = '\0';
			if (stat(dir, &st) != 0) {
				snprintf(err, n, "%s: directory %s: %s", path, dir,
					 strerror(errno));
				return CS_EINVAL;
			}
			if (!S_ISDIR(st.st_mode)) {
				snprintf(err, n, "%s: %s is not a directory", path, dir);
				return CS_EINVAL;
			}
		}
	}
	return 0;
}

int ctlsock_listen_pipe(uv_pipe_t *h, const char *path, uv_connection_cb cb, char *err,
			size_t n)
{
	int rv;

	if ((rv = uv_pipe_bind(h, path)) < 0) {
		snprintf(err, n, "bind %s: %s", path, uv_strerror(rv));
		return rv == UV_EADDRINUSE ? CS_EADDRINUSE : CS_EUNREACH;
	}
	/* before listen: nobody connects with the umask's mode */
	if (chmod(path, 0600) != 0) {
		snprintf(err, n, "chmod %s: %s", path, strerror(errno));
		unlink(path);
		return CS_EUNREACH;
	}
	if ((rv = uv_listen((uv_stream_t *)h, 16, cb)) < 0) {
		snprintf(err, n, "listen %s: %s", path, uv_strerror(rv));
		unlink(path);
		return rv == UV_EADDRINUSE ? CS_EADDRINUSE : CS_EUNREACH;
	}
	return 0;
}

int ctlsock_open(uv_loop_t *loop, const char *path, ctlsock_rpc_fn get_rpc, void *data,
		 struct ctlsock **out, char *err, size_t n)
{
	struct ctlsock *s;
	int rv;

	if ((rv = ctlsock_path_check(path, "control socket", err, n)))
		return rv;
	s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		snprintf(err, n, "out of memory");
		return CS_ENOMEM;
	}
	s->loop = loop;
	s->get_rpc = get_rpc;
	s->data = data;
	uv_pipe_init(loop, &s->listener, 0);
	s->listener.data = s;
	if ((rv = ctlsock_listen_pipe(&s->listener, path, ctl_connection, err, n))) {
		/* the handle lives in s: s goes in the close callback */
		uv_close((uv_handle_t *)&s->listener, ctl_listener_closed);
		return rv;
	}
	*out = s;
	return 0;
}

void ctlsock_set_call(struct ctlsock *s, ctlsock_call_fn call, void *data)
{
	s->call = call;
	s->call_data = data;
}

void ctlsock_close(struct ctlsock *s)
{
	if (!s)
		return;
	/* clients outlive the server until their close and answers */
	while (s->clients) {
		struct ctl_client *cl = s->clients;
		s->clients = cl->next;
		cl->s = NULL;
		cl->prev = cl->next = NULL;
		ctl_client_close(cl);
	}
	s->client_count = 0;
	unlink(s->path);
	uv_close((uv_handle_t *)&s->listener, ctl_listener_closed);
}

/* ---------------------------------------------------------------- client */

static int64_t ctl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ctl_io reads (want_read) or writes len bytes on fd before deadline_ms.
 * Returns 0, CS_ETIMEDOUT, CS_ECLOSED (end of stream) or CS_EUNREACH. */
static int ctl_io(int fd, bool want_read, uint8_t *buf, size_t len, int64_t deadline_ms)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd p = {.fd = fd, .events = want_read ? POLLIN : POLLOUT};
		int64_t left = deadline_ms - ctl_now_ms();
		ssize_t k;
		int rv;

		if (left <= 0)
			return CS_ETIMEDOUT;
		rv = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rv < 0 && errno == EINTR)
			continue;
		if (rv < 0)
			return CS_EUNREACH;
		if (rv == 0)
			return CS_ETIMEDOUT;
		k = want_read ? recv(fd, buf + done, len - done, 0)
			      : send(fd, buf + done, len - done, MSG_NOSIGNAL);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return want_read ? CS_ECLOSED : CS_EUNREACH;
		if (k == 0)
			return CS_ECLOSED;
		done += (size_t)k;
	}
	return 0;
}

int ctlsock_request(const char *path, const Cs__ControlRequest *req,
		    Cs__ControlResponse **resp, int timeout_ms, char *err, size_t n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int64_t deadline_ms = ctl_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t len = cs__control_request__get_packed_size(req);
	uint8_t head[4], *buf = NULL;
	uint32_t flen;
	int fd, rv;

	*resp = NULL;
	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, n, "socket path '%s' is too long", path);
		return CS_EINVAL;
	}
	if (len > CTLSOCK_FRAME_BYTES_MAX) {
		snprintf(err, n, "request of %zu bytes is over the limit of %u", len,
			 CTLSOCK_FRAME_BYTES_MAX);
		return CS_ELIMIT;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, n, "socket: %s", strerror(errno));
		return CS_EUNREACH;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(err, n, "cannot connect to %s: %s (is swarmd running?)", path,
			 strerror(errno));
		rv = CS_EUNREACH;
		goto out;
	}
	buf = malloc(4 + len);
	if (!buf) {
		snprintf(err, n, "out of memory");
		rv = CS_ENOMEM;
		goto out;
	}
	ctl_put_be32(buf, (uint32_t)len);
	cs__control_request__pack(req, buf + 4);
	if ((rv = ctl_io(fd, false, buf, 4 + len, deadline_ms))) {
		snprintf(err, n, "sending to %s: %s", path, cs_strerror(rv));
		goto out;
	}
	free(buf);
	buf = NULL;
	if ((rv = ctl_io(fd, true, head, 4, deadline_ms)))
		goto io_failed;
	flen = ctl_get_be32(head);
	if (flen > CTLSOCK_FRAME_BYTES_MAX) {
		snprintf(err, n, "answer of %u bytes is over the limit", flen);
		rv = CS_ECORRUPT;
		goto out;
	}
	buf = malloc(flen ? flen : 1);
	if (!buf) {
		snprintf(err, n, "out of memory");
		rv = CS_ENOMEM;
		goto out;
	}
	if ((rv = ctl_io(fd, true, buf, flen, deadline_ms)))
		goto io_failed;
	*resp = cs__control_response__unpack(NULL, flen, buf);
	if (!*resp) {
		snprintf(err, n, "the answer from %s does not decode", path);
		rv = CS_ECORRUPT;
	}
	goto out;
io_failed:
	if (rv == CS_ETIMEDOUT)
		snprintf(err, n, "no answer from %s within %d ms", path, timeout_ms);
	else
		snprintf(err, n, "%s closed the connection without an answer", path);
out:
	free(buf);
	close(fd);
	return rv;
}
