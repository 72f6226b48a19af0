/* metricsd: the Prometheus endpoint of a real node (--metrics-addr). An
 * HTTP/1.1 server on the loop that answers `GET /metrics` with what its
 * collector writes (core/metrics.h's text, version 0.0.4), and nothing
 * else: 404 for another path, 405 for another method, 400 for what does
 * not parse, 431 for a request over METRICSD_REQUEST_BYTES_MAX. Each
 * connection takes one request and is closed after its answer; at most
 * METRICSD_CONNS_MAX at once (more are closed at accept), each closed after
 * METRICSD_IDLE_MS without a whole request (a slow client holds nothing
 * for long). */
#ifndef NET_METRICSD_H
#define NET_METRICSD_H

#include <stddef.h>

#include <uv.h>

#include "core/metrics.h"

#define METRICSD_REQUEST_BYTES_MAX 8192
#define METRICSD_CONNS_MAX	   16
#define METRICSD_IDLE_MS	   10000

/* Writes the node's metrics into out, at the moment of a scrape. */
typedef void (*metricsd_collect_fn)(void *data, struct metrics_buf *out);

struct metricsd;

/* metricsd_open listens on addr ("127.0.0.1:9323", "[::1]:9323"; port 0
 * picks one: metricsd_port says which). Returns 0 and *out, or -1 with err
 * (a bad address, or the bind's own words). */
int metricsd_open(uv_loop_t *loop, const char *addr, metricsd_collect_fn collect,
		  void *data, struct metricsd **out, char *err, size_t err_size);

/* metricsd_port: the port it listens on. */
int metricsd_port(const struct metricsd *s);

/* metricsd_close closes the listener and every connection; the memory goes
 * once their close callbacks ran (run the loop). */
void metricsd_close(struct metricsd *s);

/* metricsd_process writes the process' own families for pid: resident
 * memory, CPU seconds and open descriptors (Prometheus' process_*). */
void metricsd_process(struct metrics_buf *out);

#endif
