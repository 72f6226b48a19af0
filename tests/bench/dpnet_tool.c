/* dpnet_tool: the traffic of tests/bench/dataplane.sh (issue 17's bench
 * lines), built static by that script so that it runs in the FROM-scratch
 * test image and in a bare namespace alike. Not a bench_*.c: `make bench`
 * does not build it; the script does, with the same cc.
 *
 *   dpnet_tool serve PORT        accept on PORT: each connection gets one
 *                                byte, then is read to EOF and closed; and
 *                                on PORT+1 (a child): read to EOF (a sink)
 *   dpnet_tool conn HOST PORT N  N connections one after another: connect,
 *                                read the one byte, close. Prints
 *                                "conn N mean_us P50_us P99_us"
 *   dpnet_tool send HOST PORT MB MB MiB on one connection, then shutdown
 *                                and wait for the peer's close. Prints
 *                                "send MB mib_per_s"
 *
 * Timed (conn): from socket() to close() of each connection, i.e. the
 * TCP handshake, the first byte back and the close; not the process start.
 * Timed (send): from connect() to the peer's close after the last byte. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int listen_on(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void drain(int fd)
{
	static char buf[1 << 16];
	while (read(fd, buf, sizeof buf) > 0)
		;
}

static int serve(int port)
{
	int lf = listen_on(port), sf = listen_on(port + 1);
	pid_t pid;
	if (lf < 0 || sf < 0) {
		perror("listen");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN);
	pid = fork();
	if (pid == 0) {
		for (;;) { /* the sink: one connection at a time */
			int c = accept(sf, NULL, NULL);
			if (c < 0)
				continue;
			drain(c);
			close(c);
		}
	}
	for (;;) {
		int c = accept(lf, NULL, NULL);
		if (c < 0)
			continue;
		if (write(c, "x", 1) != 1) {
			close(c);
			continue;
		}
		drain(c);
		close(c);
	}
}

static int connect_to(const char *host, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int fd;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int conn(const char *host, int port, int n)
{
	double *t = calloc((size_t)n, sizeof *t), sum = 0;
	char b;
	if (!t || n <= 0)
		return 1;
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		int fd = connect_to(host, port);
		if (fd < 0 || read(fd, &b, 1) != 1) {
			fprintf(stderr, "conn %d to %s:%d: %s\n", i, host, port,
				strerror(errno));
			return 1;
		}
		close(fd);
		t[i] = now_us() - t0;
		sum += t[i];
	}
	qsort(t, (size_t)n, sizeof *t, cmp_d);
	printf("conn %d %.1f %.1f %.1f\n", n, sum / n, t[n / 2], t[(n * 99) / 100]);
	free(t);
	return 0;
}

static int send_mb(const char *host, int port, int mb)
{
	static char buf[1 << 16];
	double t0 = now_us(), dt;
	int fd = connect_to(host, port);
	long long left = (long long)mb << 20;
	if (fd < 0) {
		fprintf(stderr, "send to %s:%d: %s\n", host, port, strerror(errno));
		return 1;
	}
	memset(buf, 'y', sizeof buf);
	while (left > 0) {
		ssize_t w =
			write(fd, buf,
			      left < (long long)sizeof buf ? (size_t)left : sizeof buf);
		if (w <= 0) {
			perror("write");
			return 1;
		}
		left -= w;
	}
	shutdown(fd, SHUT_WR);
	drain(fd); /* the peer closes once it read everything */
	close(fd);
	dt = now_us() - t0;
	printf("send %d %.1f\n", mb, (double)mb / (dt / 1e6));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(atoi(argv[2]));
	if (argc == 5 && strcmp(argv[1], "conn") == 0)
		return conn(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "send") == 0)
		return send_mb(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr,
		"usage: dpnet_tool serve PORT | conn HOST PORT N | send HOST PORT MB\n");
	return 2;
}
