/* bench_dockerapi: the Docker Engine API (issue 16) under `GET /services`
 * with 1,000 services, next to `swarmctl service ls` on the same cluster.
 *
 * Three swarmd processes (tests/support/benchcluster: loopback, TLS between
 * them, no Docker) form a cluster. Then:
 *   1. 1,000 services (svc-0..999, 0 replicas: no task) created through the
 *      leader's Docker API socket (POST /services/create; not timed),
 *   2. R x GET /v1.41/services on one keep-alive connection to the leader's
 *      socket, timed from the first request to the last byte of the last
 *      answer, each answer checked (200, 1,000 services),
 *   3. the same on a follower's socket (it forwards every read to the
 *      leader: the follower serving the socket),
 *   4. `swarmctl --socket ... service ls`, 20 runs of the real binary.
 * Prints `docker-api: N requests/s ...`, `docker-api follower: ...` and
 * `swarmctl service ls: ...`. Without build/swarmd and build/swarmctl it
 * prints `docker-api: skipped`.
 *
 * Usage: bench_dockerapi [R]  (default 200 requests). */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/benchcluster.h"
#include "tests/support/benchutil.h"

enum {
	BENCH_REQUESTS = 200,
	BENCH_SERVICES = 1000,
	BENCH_LS_RUNS = 20,
	BENCH_START_MS = 60000,
	BENCH_ANSWER_BYTES_MAX = 64 * 1024 * 1024,
};

/* A connection to a Docker API socket, with what was read past an answer. */
struct dconn {
	int fd;
	char *buf;
	size_t len, cap;
};

static int dconn_open(struct dconn *c, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(c, 0, sizeof *c);
	if (strlen(path) >= sizeof sa.sun_path)
		return -1;
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa)) {
		close(c->fd);
		return -1;
	}
	return 0;
}

static void dconn_close(struct dconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

static int dconn_write(struct dconn *c, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(c->fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Reads one answer (Content-Length framed): its status, and its body into
 * *body (borrowed until the next call; NUL-terminated), *body_len. */
static int dconn_answer(struct dconn *c, int *status, char **body, size_t *body_len)
{
	size_t head = 0, clen = 0;
	char *end, *cl;

	for (;;) {
		if (c->len) {
			c->buf[c->len] = '\0';
			end = strstr(c->buf, "\r\n\r\n");
			if (end) {
				head = (size_t)(end - c->buf) + 4;
				cl = strcasestr(c->buf, "\r\nContent-Length:");
				clen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
				if (c->len >= head + clen)
					break;
			}
		}
		if (c->cap - c->len < 65536 + 1) {
			size_t cap = c->cap ? c->cap * 2 : 1 << 20;
			char *p;
			if (cap > BENCH_ANSWER_BYTES_MAX)
				return -1;
			if (!(p = realloc(c->buf, cap)))
				return -1;
			c->buf = p;
			c->cap = cap;
		}
		ssize_t k = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c->len += (size_t)k;
	}
	*status = atoi(c->buf + 9);
	/* the body moves to the front, after what a caller read last */
	memmove(c->buf, c->buf + head, c->len - head);
	c->len -= head;
	*body = c->buf;
	*body_len = clen;
	/* what follows the body stays for the next answer: keep it after a NUL */
	return 0;
}

/* Drops the answer just read (its body_len bytes at the front). */
static void dconn_consume(struct dconn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static int bench_create(const char *sock)
{
	struct dconn c;
	char req[1024], body[512], *ans;
	size_t alen;
	int status;

	if (dconn_open(&c, sock)) {
		fprintf(stderr, "bench_dockerapi: cannot connect to %s\n", sock);
		return -1;
	}
	for (int i = 0; i < BENCH_SERVICES; i++) {
		int bl = snprintf(
			body, sizeof body,
			"{\"Name\":\"svc-%d\",\"TaskTemplate\":{\"ContainerSpec\":"
			"{\"Image\":\"cswarm-test:busybox\",\"Args\":[\"sleep\","
			"\"1000\"]}},\"Mode\":{\"Replicated\":{\"Replicas\":0}}}",
			i);
		int rl = snprintf(
			req, sizeof req,
			"POST /v1.41/services/create HTTP/1.1\r\nHost: docker\r\n"
			"Content-Type: application/json\r\nContent-Length: %d\r\n"
			"\r\n%s",
			bl, body);
		if (dconn_write(&c, req, (size_t)rl) ||
		    dconn_answer(&c, &status, &ans, &alen)) {
			fprintf(stderr,
				"bench_dockerapi: create svc-%d: connection lost\n", i);
			dconn_close(&c);
			return -1;
		}
		if (status != 201) {
			fprintf(stderr, "bench_dockerapi: create svc-%d: %d %.*s\n", i,
				status, (int)alen, ans);
			dconn_close(&c);
			return -1;
		}
		dconn_consume(&c, alen);
	}
	dconn_close(&c);
	return 0;
}

/* Counts the services in a GET /services answer ("\"ID\":" at the top
 * level of each; a service's JSON has one). */
static size_t bench_count_ids(const char *body, size_t len)
{
	size_t n = 0;
	const char *p = body, *end = body + len;
	while ((p = memmem(p, (size_t)(end - p), "{\"ID\":", 6))) {
		n++;
		p += 6;
	}
	return n;
}

/* R x GET /services on one connection to sock: *secs, *bytes per answer.
 * Returns 0 or -1. */
static int bench_get(const char *sock, int requests, double *secs, size_t *bytes)
{
	static const char req[] = "GET /v1.41/services HTTP/1.1\r\nHost: docker\r\n\r\n";
	struct dconn c;
	double t0;
	char *ans;
	size_t alen;
	int status;

	if (dconn_open(&c, sock)) {
		fprintf(stderr, "bench_dockerapi: cannot connect to %s\n", sock);
		return -1;
	}
	t0 = bench_now();
	for (int i = 0; i < requests; i++) {
		if (dconn_write(&c, req, sizeof req - 1) ||
		    dconn_answer(&c, &status, &ans, &alen)) {
			fprintf(stderr,
				"bench_dockerapi: GET /services: connection lost\n");
			dconn_close(&c);
			return -1;
		}
		if (status != 200 || bench_count_ids(ans, alen) != BENCH_SERVICES) {
			fprintf(stderr,
				"bench_dockerapi: GET /services: %d, %zu services, not "
				"%d\n",
				status, bench_count_ids(ans, alen), BENCH_SERVICES);
			dconn_close(&c);
			return -1;
		}
		*bytes = alen;
		dconn_consume(&c, alen);
	}
	*secs = bench_now() - t0;
	dconn_close(&c);
	return 0;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One `swarmctl --socket sock service ls`: its wall time (s) and *lines,
 * or -1. */
static double bench_swarmctl_ls(const char *swarmctl, const char *sock, size_t *lines)
{
	int fds[2], st;
	double t0 = bench_now();
	char buf[65536];
	pid_t pid;
	ssize_t k;

	*lines = 0;
	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(swarmctl, swarmctl, "--socket", sock, "service", "ls",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((k = read(fds[0], buf, sizeof buf)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			*lines += buf[i] == '\n';
	}
	close(fds[0]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return bench_now() - t0;
}

static int bench_run(struct benchcluster *c, int requests)
{
	char lsock[320], fsock[320];
	double secs, fsecs, ms[BENCH_LS_RUNS];
	size_t bytes = 0, fbytes = 0, lines = 0;
	int leader, follower;

	if ((leader = benchcluster_start(c, BENCH_START_MS)) < 0)
		return -1;
	follower = (leader + 1) % BENCHCLUSTER_MANAGERS;
	snprintf(lsock, sizeof lsock, "%s/docker.sock", c->m[leader].dir);
	snprintf(fsock, sizeof fsock, "%s/docker.sock", c->m[follower].dir);
	if (bench_create(lsock))
		return -1;
	if (bench_get(lsock, requests, &secs, &bytes) ||
	    bench_get(fsock, requests, &fsecs, &fbytes))
		return -1;
	for (int i = 0; i < BENCH_LS_RUNS; i++) {
		double s = bench_swarmctl_ls(c->swarmctl, c->m[leader].sock, &lines);
		if (s < 0 || lines < BENCH_SERVICES) {
			fprintf(stderr,
				"bench_dockerapi: swarmctl service ls failed (%zu "
				"lines)\n",
				lines);
			return -1;
		}
		ms[i] = s * 1000;
	}
	qsort(ms, BENCH_LS_RUNS, sizeof ms[0], bench_cmp_double);
	printf("docker-api: %.0f requests/s (GET /services, %d services, %zu bytes "
	       "each, %d requests one after another on one keep-alive connection to "
	       "the leader's socket; %.1f ms each)\n",
	       requests / secs, BENCH_SERVICES, bytes, requests, secs * 1000 / requests);
	printf("docker-api follower: %.0f requests/s (the same on a follower's "
	       "socket, every read forwarded to the leader; %.1f ms each)\n",
	       requests / fsecs, fsecs * 1000 / requests);
	printf("swarmctl service ls: %d services: median %.1f ms, p99 %.1f ms (%d runs "
	       "of the binary, fork to exit, %zu lines read)\n",
	       BENCH_SERVICES, (ms[BENCH_LS_RUNS / 2 - 1] + ms[BENCH_LS_RUNS / 2]) / 2,
	       ms[BENCH_LS_RUNS - 1], BENCH_LS_RUNS, lines);
	(void)fbytes;
	return benchcluster_alive(c) ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct benchcluster c;
	int requests = argc > 1 ? atoi(argv[1]) : BENCH_REQUESTS, rv;

	if (requests <= 0) {
		fprintf(stderr, "usage: bench_dockerapi [requests]\n");
		return 2;
	}
	memset(&c, 0, sizeof c);
	if (benchcluster_paths(&c, "bench_dockerapi"))
		return 1;
	if (access(c.swarmd, X_OK) || access(c.swarmctl, X_OK)) {
		printf("docker-api: skipped (%s or %s not built)\n", c.swarmd,
		       c.swarmctl);
		return 0;
	}
	if (benchcluster_init(&c, "bench-dapi"))
		return 1;
	rv = bench_run(&c, requests);
	if (rv)
		benchcluster_dump_logs(&c);
	benchcluster_stop(&c);
	benchcluster_fini(&c);
	return rv ? 1 : 0;
}
