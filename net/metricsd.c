/* metricsd: see metricsd.h. */
#include "net/metricsd.h"

#include <dirent.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/dlist.h"
#include "net/procstat.h"
#include "net/uvenv.h"

struct metricsd_conn {
	uv_tcp_t tcp;
	uv_timer_t idle;
	struct metricsd *s;
	struct metricsd_conn *prev, *next;
	http_parser parser;
	char url[256];
	size_t url_len;
	bool url_long, complete, answered, closing;
	size_t received;
	int handles_open;
	char *answer;	 /* the response being written (freed at the close) */
	char slab[4096]; /* what a read fills (parsed before the next) */
	uv_write_t wr;
};

struct metricsd {
	uv_loop_t *loop;
	uv_tcp_t listener;
	metricsd_collect_fn collect;
	void *data;
	struct metricsd_conn *conns;
	size_t conn_count;
	int port;
	bool closing;
	bool listener_closed; /* freed once it is and no connection is left */
};

static void metricsd_conn_closed(uv_handle_t *h)
{
	struct metricsd_conn *c = h->data;
	if (--c->handles_open > 0)
		return;
	DLIST_UNLINK(c->s->conns, c);
	struct metricsd *s = c->s;
	s->conn_count--;
	free(c->answer);
	free(c);
	if (s->listener_closed && s->conn_count == 0)
		free(s);
}

static void metricsd_conn_close(struct metricsd_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_timer_stop(&c->idle);
	uv_close((uv_handle_t *)&c->idle, metricsd_conn_closed);
	uv_close((uv_handle_t *)&c->tcp, metricsd_conn_closed);
}

static void metricsd_written(uv_write_t *wr, int status)
{
	(void)status;
	metricsd_conn_close(wr->data);
}

/* Answers c with status, content type and body (len bytes), then closes. */
static void metricsd_answer(struct metricsd_conn *c, int status, const char *reason,
			    const char *type, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, reason, type, len);
	uv_buf_t buf;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->answer = malloc((size_t)n + len);
	if (!c->answer) {
		metricsd_conn_close(c);
		return;
	}
	memcpy(c->answer, head, (size_t)n);
	if (len)
		memcpy(c->answer + n, body, len);
	buf = uv_buf_init(c->answer, (unsigned)((size_t)n + len));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, metricsd_written) != 0)
		metricsd_conn_close(c);
}

static void metricsd_plain(struct metricsd_conn *c, int status, const char *reason,
			   const char *text)
{
	metricsd_answer(c, status, reason, "text/plain; charset=utf-8", text,
			strlen(text));
}

static int metricsd_on_url(http_parser *p, const char *at, size_t len)
{
	struct metricsd_conn *c = p->data;
	if (c->url_len + len >= sizeof c->url) {
		c->url_long = true;
		return 0;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return 0;
}

static int metricsd_on_complete(http_parser *p)
{
	struct metricsd_conn *c = p->data;
	c->complete = true;
	return 1; /* one request per connection: parse no further */
}

static const http_parser_settings metricsd_settings = {
	.on_url = metricsd_on_url,
	.on_message_complete = metricsd_on_complete,
};

/* The whole request is in: answer it. */
static void metricsd_serve(struct metricsd_conn *c)
{
	struct metrics_buf out = {0};
	size_t path_len = strcspn(c->url, "?");

	if (c->parser.method != HTTP_GET && c->parser.method != HTTP_HEAD) {
		metricsd_plain(c, 405, "Method Not Allowed", "only GET /metrics\n");
		return;
	}
	if (c->url_long || path_len != strlen("/metrics") ||
	    strncmp(c->url, "/metrics", path_len) != 0) {
		metricsd_plain(c, 404, "Not Found", "only GET /metrics\n");
		return;
	}
	c->s->collect(c->s->data, &out);
	metricsd_process(&out);
	if (out.failed) {
		metrics_buf_free(&out);
		metricsd_plain(c, 500, "Internal Server Error", "out of memory\n");
		return;
	}
	metricsd_answer(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
			c->parser.method == HTTP_HEAD ? "" : out.text,
			c->parser.method == HTTP_HEAD ? 0 : out.len);
	metrics_buf_free(&out);
}

static void metricsd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct metricsd_conn *c = h->data;
	(void)suggested;
	*buf = uv_buf_init(c->slab, sizeof c->slab);
}

static void metricsd_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct metricsd_conn *c = st->data;
	size_t used;

	if (nread == 0)
		return;
	if (nread < 0 || c->answered) {
		metricsd_conn_close(c);
		return;
	}
	c->received += (size_t)nread;
	if (c->received > METRICSD_REQUEST_BYTES_MAX) {
		metricsd_plain(c, 431, "Request Header Fields Too Large",
			       "request over 8192 bytes\n");
		return;
	}
	used = http_parser_execute(&c->parser, &metricsd_settings, buf->base,
				   (size_t)nread);
	if (c->complete) {
		metricsd_serve(c);
		return;
	}
	if (used != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
		metricsd_plain(c, 400, "Bad Request", "not an HTTP/1.1 request\n");
}

static void metricsd_idle(uv_timer_t *t)
{
	metricsd_conn_close(t->data);
}

static void metricsd_accept(uv_stream_t *server, int status)
{
	struct metricsd *s = server->data;
	struct metricsd_conn *c;

	if (status < 0 || s->closing)
		return;
	c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->s = s;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->idle);
	c->tcp.data = c->idle.data = c;
	c->handles_open = 2;
	DLIST_PUSH(s->conns, c);
	s->conn_count++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    s->conn_count > METRICSD_CONNS_MAX) {
		metricsd_conn_close(c);
		return;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_timer_start(&c->idle, metricsd_idle, METRICSD_IDLE_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, metricsd_alloc, metricsd_read) != 0)
		metricsd_conn_close(c);
}

static void metricsd_listener_closed(uv_handle_t *h)
{
	struct metricsd *s = h->data;
	s->listener_closed = true;
	if (s->conn_count == 0)
		free(s);
}

int metricsd_open(uv_loop_t *loop, const char *addr, metricsd_collect_fn collect,
		  void *data, struct metricsd **out, char *err, size_t err_size)
{
	struct sockaddr_in sa;
	struct sockaddr_storage bound;
	int len = sizeof bound;
	struct metricsd *s;
	int rv;

	if (uvenv_parse_addr(addr, &sa, err, err_size))
		return -1;
	s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	s->loop = loop;
	s->collect = collect;
	s->data = data;
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	if ((rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0)) != 0 ||
	    (rv = uv_listen((uv_stream_t *)&s->listener, 64, metricsd_accept)) != 0) {
		snprintf(err, err_size, "%s: %s", addr, uv_strerror(rv));
		s->closing = true;
		/* freed once the close ran: the caller runs the loop */
		uv_close((uv_handle_t *)&s->listener, metricsd_listener_closed);
		*out = NULL;
		return -1;
	}
	if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0)
		s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	*out = s;
	return 0;
}

int metricsd_port(const struct metricsd *s)
{
	return s->port;
}

void metricsd_close(struct metricsd *s)
{
	if (!s || s->closing)
		return;
	s->closing = true;
	for (struct metricsd_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		metricsd_conn_close(c);
	}
	uv_close((uv_handle_t *)&s->listener, metricsd_listener_closed);
}

void metricsd_process(struct metrics_buf *out)
{
	struct procstat ps;
	size_t fds = 0;
	DIR *d = opendir("/proc/self/fd");

	if (d) {
		for (struct dirent *e; (e = readdir(d));)
			fds += e->d_name[0] != '.';
		closedir(d);
		fds = fds > 0 ? fds - 1 : 0; /* the directory's own descriptor */
	}
	if (procstat_read(getpid(), &ps) == 0) {
		metrics_family(out, "process_cpu_seconds_total", METRICS_COUNTER,
			       "User and system CPU time spent, in seconds.");
		metrics_sample(out, "process_cpu_seconds_total", NULL, ps.cpu_s);
		metrics_family(out, "process_resident_memory_bytes", METRICS_GAUGE,
			       "Resident memory size in bytes.");
		metrics_sample(out, "process_resident_memory_bytes", NULL,
			       (double)ps.rss_bytes);
	}
	metrics_family(out, "process_open_fds", METRICS_GAUGE, "Open file descriptors.");
	metrics_sample(out, "process_open_fds", NULL, (double)fds);
}
