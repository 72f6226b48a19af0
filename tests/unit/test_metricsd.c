/* Tests of the metrics endpoint on loopback: GET /metrics answers the
 * collector's text and the process' own families; another path, another
 * method, junk and an oversized request get their status; a silent client
 * is closed; the listener closes cleanly with connections open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "net/metricsd.h"

struct client {
	uv_tcp_t tcp;
	uv_connect_t conn;
	uv_write_t wr;
	const char *request;
	size_t request_len;
	char got[65536];
	size_t got_len;
	bool done;
};

static void collect(void *data, struct metrics_buf *out)
{
	int *scrapes = data;
	(*scrapes)++;
	metrics_family(out, "cswarm_test_scrapes_total", METRICS_COUNTER,
		       "Scrapes seen.");
	metrics_sample(out, "cswarm_test_scrapes_total", NULL, *scrapes);
}

static void client_closed(uv_handle_t *h)
{
	((struct client *)h->data)->done = true;
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = h->data;
	(void)suggested;
	*buf = uv_buf_init(c->got + c->got_len,
			   (unsigned)(sizeof c->got - 1 - c->got_len));
}

static void client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct client *c = st->data;
	(void)buf;
	if (n > 0) {
		c->got_len += (size_t)n;
		c->got[c->got_len] = '\0';
		return;
	}
	if (n < 0)
		uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void client_wrote(uv_write_t *wr, int status)
{
	(void)wr;
	(void)status;
}

static void client_connected(uv_connect_t *req, int status)
{
	struct client *c = req->data;
	uv_buf_t b = uv_buf_init((char *)c->request, (unsigned)c->request_len);
	if (status) {
		uv_close((uv_handle_t *)&c->tcp, client_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
	if (c->request_len)
		uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, client_wrote);
}

/* Sends request (len bytes) to the port and reads until the server closes. */
static void ask(uv_loop_t *loop, int port, const char *request, size_t len,
		struct client *c)
{
	struct sockaddr_in sa;
	memset(c, 0, sizeof *c);
	c->request = request;
	c->request_len = len;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c->conn.data = c;
	uv_ip4_addr("127.0.0.1", port, &sa);
	assert_int_equal(uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&sa,
					client_connected),
			 0);
	while (!c->done)
		uv_run(loop, UV_RUN_ONCE);
}

static void test_metricsd_serves_and_refuses(void **state)
{
	uv_loop_t loop;
	struct metricsd *s;
	struct client *c = calloc(1, sizeof *c);
	char err[128];
	char *big = malloc(METRICSD_REQUEST_BYTES_MAX + 100);
	int scrapes = 0, port;
	static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char getq[] = "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char other[] = "GET /secrets HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char post[] = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
	static const char junk[] = "\x01\x02 not http\r\n\r\n";
	(void)state;

	assert_non_null(c);
	assert_non_null(big);
	uv_loop_init(&loop);
	assert_int_equal(metricsd_open(&loop, "127.0.0.1:0", collect, &scrapes, &s, err,
				       sizeof err),
			 0);
	port = metricsd_port(s);
	assert_true(port > 0);

	ask(&loop, port, get, strlen(get), c);
	assert_non_null(strstr(c->got, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(c->got, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(c->got, "\r\n\r\n# HELP cswarm_test_scrapes_total"));
	assert_non_null(strstr(c->got, "cswarm_test_scrapes_total 1\n"));
	assert_non_null(strstr(c->got, "# TYPE process_open_fds gauge\n"));
	assert_non_null(strstr(c->got, "process_resident_memory_bytes "));
	ask(&loop, port, getq, strlen(getq), c);
	assert_non_null(strstr(c->got, "cswarm_test_scrapes_total 2\n"));

	ask(&loop, port, other, strlen(other), c);
	assert_non_null(strstr(c->got, "HTTP/1.1 404 Not Found\r\n"));
	ask(&loop, port, post, strlen(post), c);
	assert_non_null(strstr(c->got, "HTTP/1.1 405 Method Not Allowed\r\n"));
	ask(&loop, port, junk, strlen(junk), c);
	assert_non_null(strstr(c->got, "HTTP/1.1 400 Bad Request\r\n"));
	memset(big, 'a', METRICSD_REQUEST_BYTES_MAX + 100);
	memcpy(big, "GET /", 5);
	ask(&loop, port, big, METRICSD_REQUEST_BYTES_MAX + 100, c);
	assert_non_null(strstr(c->got, "HTTP/1.1 431 "));
	assert_int_equal(scrapes, 2); /* refusals collect nothing */

	/* a bad address is refused with what was expected */
	assert_int_equal(
		metricsd_open(&loop, "nowhere", collect, &scrapes, &s, err, sizeof err),
		-1);
	assert_non_null(strstr(err, "HOST:PORT"));

	metricsd_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(big);
	free(c);
}

/* A client that connects and says nothing is closed after the idle time;
 * closing the server with it open frees everything. */
static void test_metricsd_silent_client_closed(void **state)
{
	uv_loop_t loop;
	struct metricsd *s;
	struct client *c = calloc(1, sizeof *c);
	char err[128];
	int scrapes = 0;
	uint64_t t0;
	(void)state;

	uv_loop_init(&loop);
	assert_int_equal(metricsd_open(&loop, "127.0.0.1:0", collect, &scrapes, &s, err,
				       sizeof err),
			 0);
	t0 = uv_now(&loop);
	ask(&loop, metricsd_port(s), "", 0, c);
	uv_update_time(&loop);
	assert_true(uv_now(&loop) - t0 >= METRICSD_IDLE_MS - 100);
	assert_int_equal(c->got_len, 0);
	metricsd_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metricsd_serves_and_refuses),
		cmocka_unit_test(test_metricsd_silent_client_closed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
