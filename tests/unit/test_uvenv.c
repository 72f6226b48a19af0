/* Tests of net/uvenv: the real env over loopback TCP, real timers and sqlite
 * files in temp dirs, everything on one uv loop that must end empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <inttypes.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/errors.h"
#include "core/limits.h"
#include "core/pki.h"
#include "net/uvenv.h"

/* ---------------------------------------------------------------- helpers */

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[4096];

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			rm_tree(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static void make_tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/test_uvenv-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static size_t dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void write_file(const char *path, const void *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Reads a whole (small) file into a malloc'd buffer. */
static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* A log sink the test can read. */
struct logbuf {
	FILE *f;
	char *text;
	size_t size;
};

static void logbuf_open(struct logbuf *l)
{
	l->text = NULL;
	l->size = 0;
	l->f = open_memstream(&l->text, &l->size);
	assert_non_null(l->f);
}

static const char *logbuf_text(struct logbuf *l)
{
	fflush(l->f);
	return l->text ? l->text : "";
}

static void logbuf_close(struct logbuf *l)
{
	fclose(l->f);
	free(l->text);
}

/* Opens an env as cfg says (its loop, address, dir and name filled in
 * here; log level WARN unless cfg sets one). */
static struct uvenv *open_env_cfg(uv_loop_t *loop, const char *dir, const char *listen,
				  struct uvenv_cfg cfg)
{
	struct uvenv *u = NULL;
	char err[256];
	int rv;

	cfg.loop = loop;
	cfg.listen_addr = listen;
	cfg.state_dir = dir;
	cfg.name = "test";
	if (!cfg.log_level)
		cfg.log_level = ENV_LOG_WARN;
	rv = uvenv_open(&cfg, &u, err, sizeof err);
	if (rv != 0)
		fail_msg("uvenv_open %s: %s (%s)", listen, err, cs_errname(rv));
	return u;
}

static struct uvenv *open_env(uv_loop_t *loop, const char *dir, const char *listen,
			      FILE *log, size_t frame_max)
{
	return open_env_cfg(loop, dir, listen,
			    (struct uvenv_cfg){.log_out = log, .frame_max = frame_max});
}

/* Opens an env as open_env does, listening on a loopback port of the
 * kernel's choosing, in a new temporary state dir: dir (size bytes) gets
 * its path. */
static struct uvenv *open_tmp_env(uv_loop_t *loop, char *dir, size_t size, FILE *log,
				  size_t frame_max)
{
	make_tmpdir(dir, size);
	return open_env(loop, dir, "127.0.0.1:0", log, frame_max);
}

/* Closes u and runs the loop until its close callbacks ran (other envs on
 * the loop keep it alive, so not until it is empty). */
static void close_env(uv_loop_t *loop, struct uvenv *u)
{
	uvenv_close(u);
	for (int i = 0; i < 3; i++)
		uv_run(loop, UV_RUN_NOWAIT);
}

/* hold_port binds a TCP socket of 127.0.0.1 to a port of the kernel's
 * choosing and never listens on it: a dial there is refused, and nobody
 * else (a loopback busy with other connections and listeners) can take
 * the port, or connect from it, until the caller closes the returned
 * socket. addr gets "127.0.0.1:PORT". */
static int hold_port(char addr[LIMIT_ADDR_BYTES_MAX + 1])
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(addr, LIMIT_ADDR_BYTES_MAX + 1, "127.0.0.1:%u", ntohs(a.sin_port));
	return fd;
}

static void loop_done(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* Ends a test: closes each uvenv of envs (NULL-terminated), runs the loop
 * dry and closes it, then removes each state dir of dirs (NULL-terminated). */
static void teardown(uv_loop_t *loop, struct uvenv *const *envs, const char *const *dirs)
{
	for (; *envs; envs++)
		close_env(loop, *envs);
	loop_done(loop);
	for (; *dirs; dirs++)
		rm_tree(*dirs);
}

static void guard_fired(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static void guard_closed(uv_handle_t *h)
{
	(void)h;
}

/* Runs the loop until *flag or timeout_ms; returns *flag. */
static bool run_until(uv_loop_t *loop, bool (*done)(void *), void *ctx, uint64_t ms)
{
	uv_timer_t guard;
	bool timed_out = false;
	bool ok;

	uv_timer_init(loop, &guard);
	guard.data = &timed_out;
	uv_timer_start(&guard, guard_fired, ms, 0);
	while (!(ok = done(ctx)) && !timed_out)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, guard_closed);
	uv_run(loop, UV_RUN_NOWAIT);
	return ok;
}

static bool never(void *ctx)
{
	(void)ctx;
	return false;
}

/* ---------------------------------------------------------------- receiver */

struct rx {
	uint32_t count;
	uint32_t next_seq;
	bool in_order;
	char from[LIMIT_ADDR_BYTES_MAX + 1];
	uint32_t ups, downs;
	char peer[LIMIT_ADDR_BYTES_MAX + 1];
	uint32_t want;
};

static void rx_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		    void *data)
{
	struct rx *r = data;
	uint32_t seq;

	assert_true(len >= sizeof seq);
	memcpy(&seq, buf, sizeof seq);
	for (size_t i = sizeof seq; i < len; i++)
		assert_int_equal(buf[i], (uint8_t)(seq + i));
	if (seq != r->next_seq)
		r->in_order = false;
	r->next_seq = seq + 1;
	r->count++;
	snprintf(r->from, sizeof r->from, "%s", from);
}

static void rx_peer(struct env *env, const char *addr, bool up, void *data)
{
	struct rx *r = data;

	if (up)
		r->ups++;
	else
		r->downs++;
	snprintf(r->peer, sizeof r->peer, "%s", addr);
}

static bool rx_has_want(void *ctx)
{
	struct rx *r = ctx;
	return r->count >= r->want;
}

static void rx_init(struct rx *r)
{
	memset(r, 0, sizeof *r);
	r->in_order = true;
}

/* Sends frame seq (len bytes) from u to addr. */
static int send_seq(struct uvenv *u, const char *addr, uint32_t seq, size_t len)
{
	uint8_t buf[512];
	struct env *env = uvenv_env(u);

	assert_true(len >= sizeof seq && len <= sizeof buf);
	memcpy(buf, &seq, sizeof seq);
	for (size_t i = sizeof seq; i < len; i++)
		buf[i] = (uint8_t)(seq + i);
	return env->ops->send(env, addr, buf, len);
}

/* A blocking raw client socket on 127.0.0.1:port (the listener's backlog
 * takes it without the loop running). */
static int raw_connect(const char *addr)
{
	struct sockaddr_in sa;
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(uvenv_parse_addr(addr, &sa, NULL, 0), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void raw_send_frame(int fd, uint32_t len, const void *payload, size_t n)
{
	uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			(uint8_t)len};
	assert_int_equal(send(fd, h, 4, 0), 4);
	if (n)
		assert_int_equal(send(fd, payload, n, 0), (ssize_t)n);
}

/* ---------------------------------------------------------------- TLS client
 *
 * A hand-driven TLS 1.3 client (OpenSSL on a non-blocking socket) that runs
 * the loop while it waits, for tests that send what no uvenv would: bad
 * hellos, half-sent frames, certificates of other CAs. */

/* A key (PKCS#8 DER) and its certificate (DER); len 0: none. */
struct cred {
	uint8_t key[PKI_DER_BYTES_MAX], cert[PKI_DER_BYTES_MAX];
	size_t key_len, cert_len;
};

struct traw {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static void traw_pump(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_NOWAIT);
	usleep(200);
}

/* Connects to addr and completes a TLS 1.3 handshake, showing c's
 * certificate (c NULL or empty: none). */
static struct traw traw_connect(uv_loop_t *loop, const char *addr, const struct cred *c)
{
	struct traw t;
	int r, tries = 0;

	t.fd = raw_connect(addr);
	assert_int_equal(fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) | O_NONBLOCK), 0);
	t.ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(t.ctx);
	SSL_CTX_set_min_proto_version(t.ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(t.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (c && c->cert_len) {
		const uint8_t *p = c->cert;
		X509 *x = d2i_X509(NULL, &p, (long)c->cert_len);
		const uint8_t *k = c->key;
		PKCS8_PRIV_KEY_INFO *info =
			d2i_PKCS8_PRIV_KEY_INFO(NULL, &k, (long)c->key_len);
		EVP_PKEY *pk = info ? EVP_PKCS82PKEY(info) : NULL;
		assert_non_null(x);
		assert_non_null(pk);
		assert_int_equal(SSL_CTX_use_certificate(t.ctx, x), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(t.ctx, pk), 1);
		X509_free(x);
		EVP_PKEY_free(pk);
		PKCS8_PRIV_KEY_INFO_free(info);
	}
	t.ssl = SSL_new(t.ctx);
	SSL_set_fd(t.ssl, t.fd);
	while ((r = SSL_connect(t.ssl)) != 1) {
		int e = SSL_get_error(t.ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			fail_msg("TLS handshake with %s failed (%d)", addr, e);
		assert_true(++tries < 20000);
		traw_pump(loop);
	}
	assert_string_equal(SSL_get_version(t.ssl), "TLSv1.3");
	return t;
}

/* Writes n bytes (all of them, running the loop while the socket is
 * full). Returns false when the connection broke. */
static bool traw_write(uv_loop_t *loop, struct traw *t, const void *p, size_t n)
{
	size_t off = 0;
	int tries = 0;

	while (off < n) {
		size_t w = 0;
		if (SSL_write_ex(t->ssl, (const uint8_t *)p + off, n - off, &w) == 1) {
			off += w;
			continue;
		}
		if (SSL_get_error(t->ssl, 0) != SSL_ERROR_WANT_WRITE &&
		    SSL_get_error(t->ssl, 0) != SSL_ERROR_WANT_READ) {
			ERR_clear_error();
			return false;
		}
		if (++tries > 20000)
			return false;
		traw_pump(loop);
	}
	return true;
}

static void traw_send_frame(uv_loop_t *loop, struct traw *t, uint32_t len,
			    const void *payload, size_t n)
{
	uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			(uint8_t)len};
	assert_true(traw_write(loop, t, h, 4));
	if (n)
		assert_true(traw_write(loop, t, payload, n));
}

static void traw_hello(uv_loop_t *loop, struct traw *t, const char *hello)
{
	traw_send_frame(loop, t, (uint32_t)strlen(hello), hello, strlen(hello));
}

static void traw_free(struct traw *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	close(t->fd);
}

/* After the env closed it, the TLS client reads the end. */
static void assert_traw_closed(struct traw *t)
{
	char b[16];
	int r;

	assert_int_equal(fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) & ~O_NONBLOCK), 0);
	r = SSL_read(t->ssl, b, sizeof b);
	assert_true(r <= 0);
	/* not "nothing yet" (the 5 s receive timeout) */
	assert_int_not_equal(SSL_get_error(t->ssl, r), SSL_ERROR_WANT_READ);
	ERR_clear_error();
	traw_free(t);
}

/* Whether the env left t open: nothing to read, no end. */
static bool traw_open(struct traw *t)
{
	char b[4];
	return recv(t->fd, b, sizeof b, MSG_DONTWAIT) == -1 && errno == EAGAIN;
}

struct log_wait {
	struct logbuf *log;
	const char *needle;
	unsigned times; /* 0 or 1: once */
};

static unsigned log_count(struct logbuf *l, const char *needle)
{
	unsigned n = 0;
	for (const char *p = logbuf_text(l); (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static bool log_has(void *ctx)
{
	struct log_wait *w = ctx;
	return log_count(w->log, w->needle) >= (w->times ? w->times : 1);
}

/* After the env closed it, the raw socket reads the end (EOF or reset). */
static void assert_raw_closed(int fd)
{
	char b[64];
	ssize_t n;
	int reads = 0;

	/* a TLS alert may come first */
	while ((n = recv(fd, b, sizeof b, 0)) > 0)
		assert_true(++reads < 100);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	close(fd);
}

/* ---------------------------------------------------------------- transport */

static void test_uvenv_two_envs_exchange_1000_frames_in_order(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct rx ra, rb;
	struct env *ea, *eb;

	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_env(&loop, dir_b, "localhost:0", NULL, 0);
	ea = uvenv_env(a);
	eb = uvenv_env(b);
	assert_string_equal(ea->ops->self_addr(ea), uvenv_addr(a));
	assert_true(strncmp(uvenv_addr(a), "127.0.0.1:", 10) == 0);
	assert_string_not_equal(uvenv_addr(a), "127.0.0.1:0");
	rx_init(&ra);
	rx_init(&rb);
	ea->ops->listen(ea, rx_recv, rx_peer, &ra);
	eb->ops->listen(eb, rx_recv, rx_peer, &rb);
	for (uint32_t i = 0; i < 1000; i++) {
		assert_int_equal(send_seq(a, uvenv_addr(b), i, 4 + i % 300), 0);
		assert_int_equal(send_seq(b, uvenv_addr(a), i, 4 + (i * 7) % 500), 0);
	}
	assert_int_equal(rb.count, 0); /* nothing inside send */
	ra.want = rb.want = 1000;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	assert_true(run_until(&loop, rx_has_want, &ra, 5000));
	assert_int_equal(rb.count, 1000);
	assert_true(rb.in_order);
	assert_true(ra.in_order);
	assert_string_equal(rb.from, uvenv_addr(a));
	assert_string_equal(ra.from, uvenv_addr(b));
	assert_int_equal(ra.ups, 1); /* a's connection to b came up once */
	assert_string_equal(ra.peer, uvenv_addr(b));
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

static void test_uvenv_oversized_frame_closes_only_that_connection(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct rx rb;
	struct logbuf log;
	struct log_wait w = {0};
	struct env *eb;
	struct traw t;
	const char hello[] = "CSW19.9.9.9:1";

	logbuf_open(&log);
	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, log.f, 0);
	eb = uvenv_env(b);
	rx_init(&rb);
	eb->ops->listen(eb, rx_recv, NULL, &rb);

	t = traw_connect(&loop, uvenv_addr(b), NULL);
	traw_hello(&loop, &t, hello);
	traw_send_frame(&loop, &t, 70000000, NULL, 0);
	w.log = &log;
	w.needle = "reason=\"frame of 70000000 bytes over the limit 4194304\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_non_null(strstr(logbuf_text(&log), "level=warn"));
	assert_non_null(
		strstr(logbuf_text(&log), "msg=\"closing connection\" peer=127.0.0.1:"));
	assert_non_null(strstr(logbuf_text(&log), "from=9.9.9.9:1"));
	assert_traw_closed(&t);

	/* b still serves others */
	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 100), 0);
	rb.want = 1;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	assert_string_equal(rb.from, uvenv_addr(a));

	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
	logbuf_close(&log);
}

static void test_uvenv_garbage_without_hello_is_rejected(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct rx rb;
	struct logbuf log;
	struct log_wait w = {0};
	struct env *eb;
	int fd1;
	struct traw t2, t3, t4;
	const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	const char magic[] = "XXXX1.2.3.4:5";
	const char bad_addr[] = "CSW1a\x01";

	logbuf_open(&log);
	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, log.f, 0);
	eb = uvenv_env(b);
	rx_init(&rb);
	eb->ops->listen(eb, rx_recv, NULL, &rb);

	/* issue 13: plain TCP (no TLS) gets nothing: not even a hello is read */
	fd1 = raw_connect(uvenv_addr(b));
	assert_int_equal(send(fd1, http, sizeof http - 1, 0), (ssize_t)sizeof http - 1);
	w.log = &log;
	w.needle = "reason=\"TLS handshake: http request\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_raw_closed(fd1);
	/* a plain frame with a valid hello, then a frame, neither delivered */
	fd1 = raw_connect(uvenv_addr(b));
	raw_send_frame(fd1, 15, "CSW1127.0.0.1:9", 15);
	raw_send_frame(fd1, 4, "ping", 4);
	w.needle = "reason=\"TLS handshake: ";
	w.times = 2;
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_raw_closed(fd1);
	w.times = 0;

	/* inside TLS, the hello is checked as before */
	t2 = traw_connect(&loop, uvenv_addr(b), NULL);
	assert_true(traw_write(&loop, &t2, http, sizeof http - 1));
	w.needle = "reason=\"bad hello: first frame of 1195725856 bytes";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_traw_closed(&t2);

	t3 = traw_connect(&loop, uvenv_addr(b), NULL);
	traw_send_frame(&loop, &t3, sizeof magic - 1, magic, sizeof magic - 1);
	w.needle = "reason=\"bad hello: no CSW1 magic\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_traw_closed(&t3);

	t4 = traw_connect(&loop, uvenv_addr(b), NULL);
	traw_send_frame(&loop, &t4, sizeof bad_addr - 1, bad_addr, sizeof bad_addr - 1);
	w.needle = "reason=\"bad hello: address not printable\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_traw_closed(&t4);
	assert_int_equal(rb.count, 0);

	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 10), 0);
	rb.want = 1;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));

	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
	logbuf_close(&log);
}

/* A connection that never says hello is closed after the hello timeout;
 * one that said hello and then keeps quiet is not. */
static void test_uvenv_silent_connection_is_closed_after_hello_timeout(void **state)
{
	uv_loop_t loop;
	char dir[64];
	struct uvenv *b;
	struct logbuf log;
	struct log_wait w = {0};
	int mute;
	struct traw silent, quiet;
	const char hello[] = "CSW1127.0.0.1:9";

	make_tmpdir(dir, sizeof dir);
	logbuf_open(&log);
	uv_loop_init(&loop);
	b = open_env_cfg(&loop, dir, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f,
					    .hello_timeout_ms = 200,
					    .handshake_timeout_ms = 200});
	mute = raw_connect(uvenv_addr(b)); /* not even a TLS handshake */
	silent = traw_connect(&loop, uvenv_addr(b), NULL);
	quiet = traw_connect(&loop, uvenv_addr(b), NULL);
	traw_hello(&loop, &quiet, hello);
	w.log = &log;
	w.needle = "from=- reason=\"no hello within 200 ms\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_traw_closed(&silent);
	w.needle = "from=- reason=\"no TLS handshake within 200 ms\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_raw_closed(mute);
	run_until(&loop, never, NULL, 400); /* two more timeouts' worth */
	assert_true(traw_open(&quiet));
	assert_null(strstr(logbuf_text(&log), "from=127.0.0.1:9"));
	traw_free(&quiet);
	teardown(&loop, (struct uvenv *[]){b, NULL}, (const char *[]){dir, NULL});
	logbuf_close(&log);
}

/* Issue 13: a connection that said hello, then began a frame (its header and
 * half its payload) and stopped, is closed after the frame deadline (it held
 * the buffer for ever); one that said hello and sent nothing more is not. */
static void test_uvenv_half_sent_frame_is_closed_after_the_frame_deadline(void **state)
{
	uv_loop_t loop;
	char dir[64];
	struct uvenv *b;
	struct logbuf log;
	struct log_wait w = {0};
	struct traw half, quiet;
	uint8_t payload[500];
	const char hello[] = "CSW1127.0.0.1:7";
	const char hello_quiet[] = "CSW1127.0.0.1:9";

	make_tmpdir(dir, sizeof dir);
	logbuf_open(&log);
	uv_loop_init(&loop);
	b = open_env_cfg(&loop, dir, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f, .frame_deadline_ms = 200});
	memset(payload, 'x', sizeof payload);
	half = traw_connect(&loop, uvenv_addr(b), NULL);
	traw_hello(&loop, &half, hello);
	traw_send_frame(&loop, &half, 1000, payload, sizeof payload);
	quiet = traw_connect(&loop, uvenv_addr(b), NULL);
	traw_hello(&loop, &quiet, hello_quiet);
	w.log = &log;
	w.needle = "from=127.0.0.1:7 reason=\"frame not complete within 200 ms (504 "
		   "bytes read)\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_traw_closed(&half);
	/* its buffer went back; quiet keeps one read chunk between frames */
	if (uvenv_in_buffered_bytes(b) > 65536)
		fail_msg("buffered %zu", uvenv_in_buffered_bytes(b));
	run_until(&loop, never, NULL, 400); /* two more deadlines' worth */
	assert_true(traw_open(&quiet));
	assert_null(strstr(logbuf_text(&log), "from=127.0.0.1:9"));
	traw_free(&quiet);
	teardown(&loop, (struct uvenv *[]){b, NULL}, (const char *[]){dir, NULL});
	logbuf_close(&log);
}

#define FLOOD_CONNS	 40
#define FLOOD_BOUND	 (1024u * 1024)
#define FLOOD_SENT_BYTES (256u * 1024)

struct flood_watch {
	struct uvenv *u;
	struct rx *rx;
	size_t max_seen;
};

static bool flood_done(void *ctx)
{
	struct flood_watch *f = ctx;
	size_t n = uvenv_in_buffered_bytes(f->u);

	if (n > f->max_seen)
		f->max_seen = n;
	return f->rx->count >= f->rx->want;
}

/* Issue 13 (1,000 connections each holding half of a 4 MiB frame took a
 * manager to 4.1 GB): FLOOD_CONNS raw connections each send a hello and
 * 256 KiB of a 2 MiB frame, 10 MiB in all, against a global bound of 1 MiB
 * on read buffers. The buffers never pass the bound (without it they held
 * the 10 MiB), the stalest half-sent frames are closed with a reason, and a
 * well-behaved peer's frames keep arriving, in order, meanwhile. */
static void test_uvenv_half_sent_frames_stay_under_the_global_bound(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct rx rb;
	struct logbuf log;
	struct flood_watch fw;
	struct env *eb;
	struct traw fds[FLOOD_CONNS];
	uint8_t *junk = malloc(FLOOD_SENT_BYTES);
	const char hello[] = "CSW1127.0.0.1:7";
	uint32_t seq = 0;

	assert_non_null(junk);
	memset(junk, 'j', FLOOD_SENT_BYTES);
	make_tmpdir(dir_b, sizeof dir_b);
	logbuf_open(&log);
	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f,
					    .in_buffered_bytes_max = FLOOD_BOUND});
	eb = uvenv_env(b);
	rx_init(&rb);
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	fw = (struct flood_watch){.u = b, .rx = &rb};

	/* the well-behaved peer is connected before the flood */
	assert_int_equal(send_seq(a, uvenv_addr(b), seq++, 100), 0);
	rb.want = 1;
	assert_true(run_until(&loop, flood_done, &fw, 5000));

	for (int i = 0; i < FLOOD_CONNS; i++) {
		size_t off = 0;
		fds[i] = traw_connect(&loop, uvenv_addr(b), NULL);
		traw_hello(&loop, &fds[i], hello);
		traw_send_frame(&loop, &fds[i], 2u * 1024 * 1024, NULL, 0);
		/* as much as the kernel takes now; the rest as b reads */
		while (off < FLOOD_SENT_BYTES) {
			size_t n = 0;
			if (SSL_write_ex(fds[i].ssl, junk + off, FLOOD_SENT_BYTES - off,
					 &n) != 1)
				break;
			off += n;
		}
		ERR_clear_error();
		/* and a frame from the peer between every two attackers */
		assert_int_equal(send_seq(a, uvenv_addr(b), seq++, 100), 0);
		for (int k = 0; k < 5; k++)
			uv_run(&loop, UV_RUN_NOWAIT);
		flood_done(&fw);
	}
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < FLOOD_CONNS; i++) { /* push what is left */
			size_t n;
			(void)SSL_write_ex(fds[i].ssl, junk, FLOOD_SENT_BYTES / 4, &n);
			ERR_clear_error();
		}
		assert_int_equal(send_seq(a, uvenv_addr(b), seq++, 100), 0);
		rb.want = seq;
		assert_true(run_until(&loop, flood_done, &fw, 5000));
	}
	assert_int_equal(rb.count, seq);
	assert_true(rb.in_order);
	assert_true(fw.max_seen > 0);
	assert_true(fw.max_seen <= FLOOD_BOUND);
	assert_non_null(strstr(logbuf_text(&log),
			       "reason=\"read buffers over the global bound of 1048576 "
			       "bytes: this connection's frame, begun "));
	assert_null(strstr(logbuf_text(&log), uvenv_addr(a)));
	print_message("half-sent frames: %d conns x %u bytes sent, bound %u, "
		      "max buffered %zu\n",
		      FLOOD_CONNS, FLOOD_SENT_BYTES, FLOOD_BOUND, fw.max_seen);

	for (int i = 0; i < FLOOD_CONNS; i++)
		traw_free(&fds[i]);
	free(junk);
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
	logbuf_close(&log);
}

/* Issue 18: connections that read a whole frame keep an empty buffer until
 * room is needed; then the longest idle give theirs back, no more of them
 * than needed, and no connection is closed. IDLE_CONNS connections each
 * send one frame against a bound of 16 read chunks: every frame arrives,
 * nothing is closed, and the buffers held stay near the bound (the old
 * walk freed every idle buffer at once). */
#define IDLE_CONNS 24

static void test_uvenv_idle_buffers_give_room_longest_idle_first(void **state)
{
	uv_loop_t loop;
	char dir[64];
	struct uvenv *b;
	struct rx rb;
	struct logbuf log;
	struct env *eb;
	struct traw fds[IDLE_CONNS];
	const char hello[] = "CSW1127.0.0.1:7";
	const size_t bound = 16u * 65536;

	make_tmpdir(dir, sizeof dir);
	logbuf_open(&log);
	uv_loop_init(&loop);
	b = open_env_cfg(
		&loop, dir, "127.0.0.1:0",
		(struct uvenv_cfg){.log_out = log.f, .in_buffered_bytes_max = bound});
	eb = uvenv_env(b);
	rx_init(&rb);
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	for (uint32_t i = 0; i < IDLE_CONNS; i++) {
		uint8_t frame[8];
		memcpy(frame, &i, sizeof i);
		for (size_t k = sizeof i; k < sizeof frame; k++)
			frame[k] = (uint8_t)(i + k);
		fds[i] = traw_connect(&loop, uvenv_addr(b), NULL);
		traw_hello(&loop, &fds[i], hello);
		traw_send_frame(&loop, &fds[i], sizeof frame, frame, sizeof frame);
		rb.want = i + 1;
		assert_true(run_until(&loop, rx_has_want, &rb, 5000));
		if (uvenv_in_buffered_bytes(b) > bound)
			fail_msg("buffered %zu over %zu", uvenv_in_buffered_bytes(b),
				 bound);
	}
	assert_int_equal(rb.count, IDLE_CONNS);
	assert_true(rb.in_order);
	assert_null(strstr(logbuf_text(&log), "global bound"));
	for (int i = 0; i < IDLE_CONNS; i++)
		assert_true(traw_open(&fds[i]));
	/* as few freed as needed: the buffers held fill the bound (less a
	 * chunk: a read makes room for its ciphertext first) */
	if (uvenv_in_buffered_bytes(b) + 2 * 65536 <= bound)
		fail_msg("buffered %zu: more freed than needed under %zu",
			 uvenv_in_buffered_bytes(b), bound);
	for (int i = 0; i < IDLE_CONNS; i++)
		traw_free(&fds[i]);
	teardown(&loop, (struct uvenv *[]){b, NULL}, (const char *[]){dir, NULL});
	logbuf_close(&log);
}

/* Issue 12, item 10: an accepted connection that went quiet after its
 * hello is closed after the idle timeout (there was none: idle
 * connections piled up), and a sender whose connection was closed dials
 * again at its next send. */
static void test_uvenv_idle_connection_is_closed_and_redialled(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct logbuf log;
	struct log_wait w = {0};
	struct rx rb;
	struct env *eb;

	make_tmpdir(dir_b, sizeof dir_b);
	logbuf_open(&log);
	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f,
					    .log_level = ENV_LOG_DEBUG,
					    .idle_timeout_ms = 300});
	eb = uvenv_env(b);
	rx_init(&rb);
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 8), 0);
	rb.want = 1;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	w.log = &log;
	w.needle = "reason=\"idle for 300 ms\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	/* a's connection learns of the close; its next send dials again */
	run_until(&loop, never, NULL, 100);
	assert_int_equal(send_seq(a, uvenv_addr(b), 1, 8), 0);
	rb.want = 2;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
	logbuf_close(&log);
}

static bool rx_ups_at_least(void *ctx)
{
	struct rx *r = ctx;
	return r->ups >= r->want;
}

/* Issue 18: a manager keeps a connection to every other member before it
 * has anything to send (a follower's first vote request once went out in
 * a dial that waited behind thousands of agents at the other follower's
 * listener), and again after the other side closes it as idle; a peer
 * left out of the set is dialled no more and forgotten when unused. */
static void test_uvenv_kept_peers_are_connected_without_frames(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	const char *addrs[2];
	struct uvenv *a, *b;
	struct rx ra;
	struct env *ea;
	uint32_t ups;

	make_tmpdir(dir_a, sizeof dir_a);
	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);
	a = open_env_cfg(&loop, dir_a, "127.0.0.1:0",
			 (struct uvenv_cfg){.peer_idle_ms = 200});
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0",
			 (struct uvenv_cfg){.idle_timeout_ms = 300});
	ea = uvenv_env(a);
	rx_init(&ra);
	ea->ops->listen(ea, rx_recv, rx_peer, &ra);
	addrs[0] = uvenv_addr(a); /* itself: skipped */
	addrs[1] = uvenv_addr(b);
	assert_int_equal(uvenv_keep_peers(a, addrs, 2), 0);
	ra.want = 1;
	assert_true(run_until(&loop, rx_ups_at_least, &ra, 5000));
	assert_string_equal(ra.peer, uvenv_addr(b));
	assert_int_equal(ra.count, 0); /* no frame was needed */
	/* b closes it as idle (300 ms): a dials again by itself, and keeps
	 * the peer past its own idle limit (200 ms) */
	ra.want = 3;
	assert_true(run_until(&loop, rx_ups_at_least, &ra, 10000));
	assert_true(ra.downs >= 2);
	assert_int_equal(uvenv_peer_count(a), 1);
	/* the same set again changes nothing */
	assert_int_equal(uvenv_keep_peers(a, addrs, 2), 0);
	/* left out: once b closes it, nothing dials it again */
	assert_int_equal(uvenv_keep_peers(a, addrs, 1), 0);
	run_until(&loop, never, NULL, 1500);
	ups = ra.ups;
	run_until(&loop, never, NULL, 1000);
	assert_int_equal(ra.ups, ups);
	assert_int_equal(uvenv_peer_count(a), 0);
	/* a bad address is refused, the good ones kept */
	addrs[0] = "not an address";
	assert_int_equal(uvenv_keep_peers(a, addrs, 2), CS_EINVAL);
	ra.want = ups + 1;
	assert_true(run_until(&loop, rx_ups_at_least, &ra, 5000));
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

/* Issue 12, item 10: the table of peers shrank never, so every address
 * ever named (a reply_to in a control request, say) stayed for good. A
 * peer with no connection, nothing queued, unused for a while goes. */
static void test_uvenv_unused_peers_are_forgotten(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64], dead[LIMIT_ADDR_BYTES_MAX + 1];
	struct uvenv *a;
	struct env *ea;
	uint8_t byte = 1;
	int held;

	make_tmpdir(dir_a, sizeof dir_a);
	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);
	held = hold_port(dead); /* nobody answers there */
	a = open_env_cfg(&loop, dir_a, "127.0.0.1:0",
			 (struct uvenv_cfg){.frame_ttl_ms = 100, .peer_idle_ms = 200});
	ea = uvenv_env(a);
	for (unsigned i = 0; i < 50; i++) {
		char addr[LIMIT_ADDR_BYTES_MAX + 1];
		/* nobody listens on these ports of the held port's address */
		snprintf(addr, sizeof addr, "%.*s%u",
			 (int)(strrchr(dead, ':') - dead + 1), dead, 1 + i);
		assert_int_equal(ea->ops->send(ea, addr, &byte, 1), 0);
	}
	assert_int_equal(uvenv_peer_count(a), 50);
	run_until(&loop, never, NULL, 1500);
	assert_int_equal(uvenv_peer_count(a), 0);
	/* and a forgotten address is as good as new */
	assert_int_equal(ea->ops->send(ea, dead, &byte, 1), 0);
	assert_int_equal(uvenv_peer_count(a), 1);
	close_env(&loop, a);
	close(held);
	loop_done(&loop);
	rm_tree(dir_a);
	rm_tree(dir_b);
}

/* The state dir is 0700 and every database file 0600, whatever the umask
 * and whether they existed (they were made 0644 under the usual umask). */
static void test_uvenv_state_files_are_private(void **state)
{
	uv_loop_t loop;
	char dir[64], path[128];
	struct uvenv *a;
	struct env *ea;
	struct sqlite3 *db;
	struct stat st;
	mode_t old = umask(0);

	make_tmpdir(dir, sizeof dir);
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/old.db", dir);
	close(open(path, O_CREAT | O_WRONLY, 0666)); /* an empty older file */
	{
		snprintf(path, sizeof path, "%s/VERSION", dir);
		int fd = open(path, O_CREAT | O_WRONLY, 0644);
		assert_true(fd >= 0);
		assert_int_equal(
			write(fd, UVENV_STATE_VERSION, strlen(UVENV_STATE_VERSION)),
			(ssize_t)strlen(UVENV_STATE_VERSION));
		close(fd);
	}
	uv_loop_init(&loop);
	a = open_env(&loop, dir, "127.0.0.1:0", NULL, 0);
	ea = uvenv_env(a);
	assert_int_equal(ea->ops->storage_open(ea, "fresh", &db), 0);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x); INSERT INTO t VALUES (1)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(ea->ops->storage_open(ea, "old", &db), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	const char *files[] = {"fresh.db", "fresh.db-wal", "old.db", "VERSION"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		assert_int_equal(stat(path, &st), 0);
		if ((st.st_mode & 07777) != 0600)
			fail_msg("%s is %o", files[i], (unsigned)(st.st_mode & 07777));
	}
	teardown(&loop, (struct uvenv *[]){a, NULL}, (const char *[]){dir, NULL});
	umask(old);
}

/* Frames queued for a peer nobody answers are dropped after their time to
 * live, which frees the queue for new ones. */
static void test_uvenv_frames_queued_past_their_ttl_are_dropped(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	char dead[LIMIT_ADDR_BYTES_MAX + 1];
	struct uvenv *a;
	struct env *ea;
	struct logbuf log;
	struct log_wait w = {0};
	const size_t kib = 1024;
	uint8_t *big = calloc(1, 4 * kib);
	int ok = 0, rv = 0, held;

	assert_non_null(big);
	make_tmpdir(dir_a, sizeof dir_a);
	make_tmpdir(dir_b, sizeof dir_b);
	logbuf_open(&log);
	uv_loop_init(&loop);
	held = hold_port(dead); /* nobody answers there */
	a = open_env_cfg(&loop, dir_a, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f,
					    .log_level = ENV_LOG_INFO,
					    .peer_queue_bytes_max = 16 * kib,
					    .frame_ttl_ms = 200});
	ea = uvenv_env(a);
	while (ok < 20 && (rv = ea->ops->send(ea, dead, big, 4 * kib)) == 0)
		ok++;
	assert_int_equal(rv, CS_EAGAIN);
	assert_int_equal(ok, 3); /* a fourth frame with its header passes 16 KiB */
	w.log = &log;
	w.needle = "msg=\"dropped frames queued too long\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_non_null(strstr(logbuf_text(&log), "frames=3 ttl_ms=200"));
	assert_int_equal(ea->ops->send(ea, dead, big, 4 * kib), 0);
	close_env(&loop, a);
	close(held);
	loop_done(&loop);
	logbuf_close(&log);
	free(big);
	rm_tree(dir_a);
	rm_tree(dir_b);
}

static void test_uvenv_frames_before_listen_are_dropped(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct rx rb;
	struct env *eb;

	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, NULL, 0);
	eb = uvenv_env(b);
	rx_init(&rb);
	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 8), 0);
	run_until(&loop, never, NULL, 200);
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	assert_int_equal(send_seq(a, uvenv_addr(b), 1, 8), 0);
	rb.want = 1;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	assert_int_equal(rb.count, 1);
	assert_int_equal(rb.next_seq, 2); /* frame 1 came, frame 0 did not */
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

struct downs_since {
	struct rx *rx;
	uint32_t before;
};

static bool rx_has_downs_since(void *ctx)
{
	const struct downs_since *d = ctx;
	return d->rx->downs > d->before;
}

static void test_uvenv_redials_a_peer_that_starts_late(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	char b_addr[LIMIT_ADDR_BYTES_MAX + 1];
	struct uvenv *a, *b;
	struct rx ra, rb;
	struct env *ea, *eb;
	int held;

	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);
	/* a port nobody answers on, held until b takes it */
	held = hold_port(b_addr);

	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	ea = uvenv_env(a);
	rx_init(&ra);
	ea->ops->listen(ea, rx_recv, rx_peer, &ra);
	assert_int_equal(send_seq(a, b_addr, 0, 16), 0);
	run_until(&loop, never, NULL, 300); /* refused, redialled with backoff */
	assert_int_equal(ra.ups, 0);
	/* each refused connect is told (issue 18: an agent dialling a dead
	 * manager learns it at once) */
	assert_true(ra.downs >= 1);
	assert_string_equal(ra.peer, b_addr);

	close(held);
	b = open_env(&loop, dir_b, b_addr, NULL, 0);
	eb = uvenv_env(b);
	rx_init(&rb);
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	rb.want = 1;
	assert_true(run_until(&loop, rx_has_want, &rb, 10000));
	assert_int_equal(ra.ups, 1);
	assert_string_equal(ra.peer, b_addr);
	assert_int_equal(send_seq(a, b_addr, 1, 16), 0);
	rb.want = 2;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	assert_true(rb.in_order);

	/* b dies: a hears the connection go down */
	{
		struct downs_since d = {&ra, ra.downs};
		close_env(&loop, b);
		assert_true(run_until(&loop, rx_has_downs_since, &d, 5000));
		assert_int_equal(ra.downs, d.before + 1);
		assert_string_equal(ra.peer, b_addr);
	}

	/* b comes back: frames sent after it arrive */
	assert_int_equal(send_seq(a, b_addr, 2, 16), 0);
	b = open_env(&loop, dir_b, b_addr, NULL, 0);
	eb = uvenv_env(b);
	rx_init(&rb);
	rb.next_seq = 2;
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	assert_int_equal(send_seq(a, b_addr, 3, 16), 0);
	rb.want = 2;
	assert_true(run_until(&loop, rx_has_want, &rb, 10000));
	assert_true(rb.in_order);
	assert_int_equal(ra.ups, 2);

	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

static void test_uvenv_send_limits_queue_size_and_addresses(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	char dead[LIMIT_ADDR_BYTES_MAX + 1];
	struct uvenv *a, *b;
	struct env *ea;
	const size_t mib = 1024 * 1024;
	uint8_t *big = calloc(1, LIMIT_FRAME_BYTES_MAX + 1);
	int ok = 0, rv = 0;
	static const char *const bad[] = {
		"",	      "nohost",	  "1.2.3.4",	    "1.2.3.4:",	  "1.2.3.4:99999",
		"1.2.3.4:0",  "1.2.3:80", "example.com:80", "1.2.3.4:8x", ":80",
		"1.2.3.4:-1", "a b:80",
	};

	assert_non_null(big);
	uv_loop_init(&loop);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, NULL, 0);
	snprintf(dead, sizeof dead, "%s", uvenv_addr(b));
	close_env(&loop, b);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	ea = uvenv_env(a);

	assert_int_equal(ea->ops->send(ea, dead, big, LIMIT_FRAME_BYTES_MAX + 1),
			 CS_ELIMIT);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(ea->ops->send(ea, bad[i], big, 10), CS_EINVAL);
	/* nobody listens at dead: frames queue up to the cap */
	while (ok < 20 && (rv = ea->ops->send(ea, dead, big, mib)) == 0)
		ok++;
	assert_int_equal(rv, CS_EAGAIN);
	assert_int_equal(ok, 7); /* 8 frames of 1 MiB + header pass 8 MiB */
	assert_int_equal(ea->ops->send(ea, dead, big, 100), 0);
	assert_int_equal(ea->ops->send(ea, dead, big, mib), CS_EAGAIN);
	run_until(&loop, never, NULL, 150);
	close_env(&loop, a);

	/* a smaller frame limit: frame_max passes, frame_max+1 does not */
	a = open_env(&loop, dir_a, "127.0.0.1:0", NULL, 1024);
	ea = uvenv_env(a);
	assert_int_equal(ea->ops->send(ea, dead, big, 1025), CS_ELIMIT);
	assert_int_equal(ea->ops->send(ea, dead, big, 1024), 0);
	teardown(&loop, (struct uvenv *[]){a, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
	free(big);
}

static void test_uvenv_receiver_frame_limit_closes_connection(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct rx rb;
	struct logbuf log;
	struct log_wait w = {0};
	struct env *eb;
	uint8_t big[600] = {0};

	logbuf_open(&log);
	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, log.f, 256);
	eb = uvenv_env(b);
	rx_init(&rb);
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 256), 0);
	assert_int_equal(uvenv_env(a)->ops->send(uvenv_env(a), uvenv_addr(b), big, 257),
			 0);
	w.log = &log;
	w.needle = "reason=\"frame of 257 bytes over the limit 256\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_int_equal(rb.count, 1);
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
	logbuf_close(&log);
}

static void test_uvenv_open_rejects_bad_address_and_port_in_use(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64], err[256];
	struct uvenv_cfg cfg = {0};
	struct uvenv *a, *b = NULL;
	struct sockaddr_in sa;

	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);

	assert_int_equal(uvenv_parse_addr("x:99999", &sa, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "'x:99999': port must be 1..65535");
	assert_int_equal(uvenv_parse_addr("node1:80", &sa, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "'node1:80': host must be"));
	assert_int_equal(uvenv_parse_addr("10.0.0.1", &sa, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "'10.0.0.1': expected HOST:PORT");
	assert_int_equal(uvenv_parse_addr("10.0.0.1:4242", &sa, err, sizeof err), 0);
	assert_int_equal(ntohs(sa.sin_port), 4242);
	assert_int_equal(ntohl(sa.sin_addr.s_addr), 0x0a000001);

	cfg.loop = &loop;
	cfg.state_dir = dir_b;
	cfg.listen_addr = "127.0.0.1:99999";
	assert_int_equal(uvenv_open(&cfg, &b, err, sizeof err), CS_EINVAL);
	assert_string_equal(err,
			    "listen address '127.0.0.1:99999': port must be 1..65535");
	cfg.listen_addr = "127.0.0.1:0";
	cfg.advertise_addr = "somewhere";
	assert_int_equal(uvenv_open(&cfg, &b, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "advertise address 'somewhere': expected HOST:PORT");
	assert_null(b);
	assert_int_equal(dir_entries(dir_b), 0); /* nothing touched */

	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	cfg.listen_addr = uvenv_addr(a);
	cfg.advertise_addr = NULL;
	assert_int_equal(uvenv_open(&cfg, &b, err, sizeof err), CS_EADDRINUSE);
	assert_null(b);
	{
		char want[128];
		snprintf(want, sizeof want, "%s: address already in use", uvenv_addr(a));
		assert_string_equal(err, want);
	}
	/* the advertised address: given, with the real port when it says 0 */
	cfg.listen_addr = "127.0.0.1:0";
	cfg.advertise_addr = "10.1.2.3:0";
	assert_int_equal(uvenv_open(&cfg, &b, err, sizeof err), 0);
	{
		const char *colon = strrchr(uvenv_addr(b), ':');
		assert_true(strncmp(uvenv_addr(b), "10.1.2.3:", 9) == 0);
		assert_true(atoi(colon + 1) > 0);
	}
	teardown(&loop, (struct uvenv *[]){b, a, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

/* ---------------------------------------------------------------- clock */

struct tick {
	char order[32];
	size_t n;
	env_timer_id stop_me; /* the repeating timer, stopped after 4 fires */
	env_timer_id victim;  /* stopped by 'f' before it fires */
	uint32_t repeats;
	bool end;
};

static void tick_cb(struct env *env, env_timer_id id, void *data);

struct tick_arg {
	struct tick *t;
	char name;
};

static void tick_cb(struct env *env, env_timer_id id, void *data)
{
	struct tick_arg *a = data;
	struct tick *t = a->t;

	if (a->name == 'e') {
		t->repeats++;
		if (t->repeats == 4)
			env->ops->timer_stop(env, id);
		return;
	}
	env->ops->timer_stop(env, id); /* dead already: does nothing */
	t->order[t->n++] = a->name;
	if (a->name == 'f')
		env->ops->timer_stop(env, t->victim);
	if (a->name == 'z')
		t->end = true;
}

static bool tick_end(void *ctx)
{
	return ((struct tick *)ctx)->end;
}

static void test_uvenv_timers_fire_in_order_stop_and_repeat(void **state)
{
	uv_loop_t loop;
	char dir[64];
	struct uvenv *u;
	struct env *e;
	struct tick t = {0};
	struct tick_arg args[] = {{&t, 'a'}, {&t, 'b'}, {&t, 'c'}, {&t, 'd'},
				  {&t, 'e'}, {&t, 'f'}, {&t, 'g'}, {&t, 'z'}};
	env_timer_id ids[8], last = 0;
	ms_t t0;

	uv_loop_init(&loop);
	u = open_tmp_env(&loop, dir, sizeof dir, NULL, 0);
	e = uvenv_env(u);
	t0 = e->ops->now_ms(e);
	assert_int_equal(e->ops->timer_start(e, 30, 0, tick_cb, &args[0], &ids[0]), 0);
	assert_int_equal(e->ops->timer_start(e, 0, 0, tick_cb, &args[1], &ids[1]), 0);
	assert_int_equal(t.n, 0); /* not inside timer_start */
	assert_int_equal(e->ops->timer_start(e, 20, 0, tick_cb, &args[2], &ids[2]), 0);
	assert_int_equal(e->ops->timer_start(e, 15, 0, tick_cb, &args[3], &ids[3]), 0);
	assert_int_equal(e->ops->timer_start(e, 5, 5, tick_cb, &args[4], &ids[4]), 0);
	assert_int_equal(e->ops->timer_start(e, 12, 0, tick_cb, &args[5], &ids[5]), 0);
	assert_int_equal(e->ops->timer_start(e, 12, 0, tick_cb, &args[6], &ids[6]), 0);
	assert_int_equal(e->ops->timer_start(e, 80, 0, tick_cb, &args[7], &ids[7]), 0);
	for (size_t i = 0; i < 8; i++) {
		assert_true(ids[i] > last); /* ids never reused */
		last = ids[i];
	}
	t.victim = ids[6];
	e->ops->timer_stop(e, ids[3]); /* d never fires */
	e->ops->timer_stop(e, 999999); /* unknown: nothing */
	assert_true(run_until(&loop, tick_end, &t, 5000));
	t.order[t.n] = '\0';
	assert_string_equal(t.order, "bfcaz");
	assert_int_equal(t.repeats, 4);
	assert_true(e->ops->now_ms(e) - t0 >= 80);
	run_until(&loop, never, NULL, 30); /* e stays stopped */
	assert_int_equal(t.repeats, 4);

	/* a timer left armed is closed by uvenv_close */
	assert_int_equal(e->ops->timer_start(e, 100000, 0, tick_cb, &args[0], &ids[0]),
			 0);
	teardown(&loop, (struct uvenv *[]){u, NULL}, (const char *[]){dir, NULL});
}

/* Many env timers with one deadline fire in the order they were armed (the
 * stopped ones never), one armed with 0 ms by a callback after them; and the
 * loop holds one libuv timer for them all, not one each. */
#define FIFO_TIMERS 300

struct fifo {
	uint32_t order[FIFO_TIMERS + 1];
	size_t n;
	env_timer_id ids[FIFO_TIMERS];
	uint32_t index[FIFO_TIMERS + 1];
	bool end;
};

struct fifo_arg {
	struct fifo *f;
	uint32_t i;
};

static void fifo_cb(struct env *env, env_timer_id id, void *data)
{
	struct fifo_arg *a = data;
	struct fifo *f = a->f;
	env_timer_id child;

	(void)id;
	f->order[f->n++] = a->i;
	if (a->i == 0) /* the first arms one more, 0 ms: after the others */
		assert_int_equal(env->ops->timer_start(env, 0, 0, fifo_cb,
						       &a[FIFO_TIMERS], &child),
				 0);
	if (a->i == FIFO_TIMERS)
		f->end = true;
}

static bool fifo_end(void *ctx)
{
	return ((struct fifo *)ctx)->end;
}

static void count_active_timers(uv_handle_t *h, void *arg)
{
	if (h->type == UV_TIMER && uv_is_active(h))
		(*(size_t *)arg)++;
}

static void test_uvenv_timers_equal_deadlines_fifo_on_one_uv_timer(void **state)
{
	uv_loop_t loop;
	char dir[64];
	struct uvenv *u;
	struct env *e;
	static struct fifo f;
	static struct fifo_arg args[FIFO_TIMERS + 1];
	size_t before = 0, after = 0, expect = 0;

	(void)state;
	memset(&f, 0, sizeof f);
	make_tmpdir(dir, sizeof dir);
	uv_loop_init(&loop);
	u = open_env(&loop, dir, "127.0.0.1:0", NULL, 0);
	e = uvenv_env(u);
	uv_walk(&loop, count_active_timers, &before);
	for (uint32_t i = 0; i <= FIFO_TIMERS; i++)
		args[i] = (struct fifo_arg){&f, i};
	for (uint32_t i = 0; i < FIFO_TIMERS; i++)
		assert_int_equal(
			e->ops->timer_start(e, 3, 0, fifo_cb, &args[i], &f.ids[i]), 0);
	uv_walk(&loop, count_active_timers, &after);
	assert_true(after <= before + 1);
	for (uint32_t i = 5; i < FIFO_TIMERS; i += 7)
		e->ops->timer_stop(e, f.ids[i]);
	assert_true(run_until(&loop, fifo_end, &f, 5000));
	for (uint32_t i = 0; i < FIFO_TIMERS; i++)
		if (i < 5 || (i - 5) % 7 != 0)
			assert_int_equal(f.order[expect++], i);
	assert_int_equal(f.order[expect++], FIFO_TIMERS);
	assert_int_equal(f.n, expect);
	after = 0;
	uv_walk(&loop, count_active_timers, &after);
	assert_true(after <= before); /* nothing armed: the tick stopped */

	close_env(&loop, u);
	loop_done(&loop);
	rm_tree(dir);
}

/* uvenvs of one loop sharing a clock: their timers are one heap on one
 * libuv timer, fire across the envs in deadline then arming order, and a
 * closed env's timers leave the heap (the others' still fire). */
struct shared_tick {
	char order[16];
	size_t n;
};

struct shared_arg {
	struct shared_tick *s;
	char name;
};

static void shared_cb(struct env *env, env_timer_id id, void *data)
{
	struct shared_arg *a = data;

	(void)env;
	(void)id;
	a->s->order[a->s->n++] = a->name;
}

static bool shared_four(void *ctx)
{
	return ((struct shared_tick *)ctx)->n >= 4;
}

static bool shared_one(void *ctx)
{
	return ((struct shared_tick *)ctx)->n >= 1;
}

static void test_uvenv_clock_shared_by_envs_of_a_loop(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct env *ea, *eb;
	struct uvenv_clock *k;
	struct shared_tick s = {0};
	struct shared_arg args[] = {{&s, 'a'}, {&s, 'b'}, {&s, 'c'},
				    {&s, 'd'}, {&s, 'x'}, {&s, 'e'}};
	env_timer_id id;
	size_t before = 0, after = 0;

	(void)state;
	make_tmpdir(dir_a, sizeof dir_a);
	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);
	k = uvenv_clock_new(&loop);
	assert_non_null(k);
	a = open_env_cfg(&loop, dir_a, "127.0.0.1:0", (struct uvenv_cfg){.clock = k});
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0", (struct uvenv_cfg){.clock = k});
	ea = uvenv_env(a);
	eb = uvenv_env(b);
	uv_walk(&loop, count_active_timers, &before);
	assert_int_equal(ea->ops->timer_start(ea, 5, 0, shared_cb, &args[0], &id), 0);
	assert_int_equal(eb->ops->timer_start(eb, 5, 0, shared_cb, &args[1], &id), 0);
	assert_int_equal(ea->ops->timer_start(ea, 1, 0, shared_cb, &args[2], &id), 0);
	assert_int_equal(eb->ops->timer_start(eb, 5, 0, shared_cb, &args[3], &id), 0);
	assert_int_equal(eb->ops->timer_start(eb, 2, 0, shared_cb, &args[4], &id), 0);
	eb->ops->timer_stop(eb, id); /* x never fires */
	uv_walk(&loop, count_active_timers, &after);
	assert_true(after <= before + 1); /* one libuv timer for both envs */
	assert_true(run_until(&loop, shared_four, &s, 5000));
	s.order[s.n] = '\0';
	assert_string_equal(s.order, "cabd");

	/* b closes with a timer armed: it leaves the heap, a's still fires
	 * (b's is due first: had it stayed, "x" would come before "e").
	 * Counted from before the close, which runs the loop and may take
	 * longer than 3 ms on a loaded machine (the test's timing, not the
	 * clock's, made it fail there). */
	s.n = 0;
	assert_int_equal(eb->ops->timer_start(eb, 1, 0, shared_cb, &args[4], &id), 0);
	assert_int_equal(ea->ops->timer_start(ea, 3, 0, shared_cb, &args[5], &id), 0);
	close_env(&loop, b);
	assert_true(run_until(&loop, shared_one, &s, 5000));
	run_until(&loop, never, NULL, 10);
	s.order[s.n] = '\0';
	assert_string_equal(s.order, "e");

	close_env(&loop, a);
	uvenv_clock_free(k);
	loop_done(&loop);
	rm_tree(dir_a);
	rm_tree(dir_b);
}

/* ---------------------------------------------------------------- storage */

static void test_uvenv_storage_same_handle_and_survives_reopen(void **state)
{
	uv_loop_t loop;
	char dir[64], sub[128], path[256];
	struct uvenv *u;
	struct env *e;
	struct sqlite3 *db1, *db2, *db3;
	sqlite3_stmt *st;
	struct stat sb;
	uint8_t *bytes;
	size_t len;

	make_tmpdir(dir, sizeof dir);
	snprintf(sub, sizeof sub, "%s/a/state", dir);
	uv_loop_init(&loop);
	u = open_env(&loop, sub, "127.0.0.1:0", NULL, 0);
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof path, "%s/VERSION", sub);
	bytes = read_file(path, &len);
	assert_int_equal(len, strlen(UVENV_STATE_VERSION));
	assert_memory_equal(bytes, UVENV_STATE_VERSION, len);
	free(bytes);

	e = uvenv_env(u);
	assert_int_equal(e->ops->storage_open(e, "node", &db1), 0);
	assert_int_equal(e->ops->storage_open(e, "node", &db2), 0);
	assert_ptr_equal(db1, db2);
	assert_int_equal(e->ops->storage_open(e, "other", &db3), 0);
	assert_ptr_not_equal(db1, db3);
	assert_int_equal(e->ops->storage_open(e, "../evil", &db3), CS_ESTORAGE);
	assert_int_equal(sqlite3_exec(db1, "CREATE TABLE t(v); INSERT INTO t VALUES(42);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db1, "PRAGMA journal_mode", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	close_env(&loop, u);

	u = open_env(&loop, sub, "127.0.0.1:0", NULL, 0);
	e = uvenv_env(u);
	assert_int_equal(e->ops->storage_open(e, "node", &db1), 0);
	assert_int_equal(sqlite3_prepare_v2(db1, "SELECT v FROM t", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 42);
	sqlite3_finalize(st);
	assert_string_equal(uvenv_storage_error(u), "");
	teardown(&loop, (struct uvenv *[]){u, NULL}, (const char *[]){dir, NULL});
}

static void test_uvenv_state_dir_of_another_version_is_refused_untouched(void **state)
{
	uv_loop_t loop;
	char dir[64], path[128], err[512];
	struct uvenv_cfg cfg = {0};
	struct uvenv *u = NULL;
	const char other[] = "cswarm-state 99\n";
	uint8_t *bytes;
	size_t len;

	make_tmpdir(dir, sizeof dir);
	uv_loop_init(&loop);
	snprintf(path, sizeof path, "%s/VERSION", dir);
	write_file(path, other, sizeof other - 1);
	snprintf(path, sizeof path, "%s/swarmd.db", dir);
	write_file(path, "keep", 4);
	cfg.loop = &loop;
	cfg.state_dir = dir;
	cfg.listen_addr = "127.0.0.1:0";
	assert_int_equal(uvenv_open(&cfg, &u, err, sizeof err), CS_EVERSION);
	assert_null(u);
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, "VERSION says \"cswarm-state 99\""));
	assert_non_null(strstr(err, "this build reads \"cswarm-state 1\""));
	assert_non_null(strstr(err, "(a newer state format")); /* issue 20 */
	assert_int_equal(dir_entries(dir), 2);
	bytes = read_file(path, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(bytes, "keep", 4);
	free(bytes);

	/* files but no VERSION at all: refused too */
	snprintf(path, sizeof path, "%s/VERSION", dir);
	unlink(path);
	assert_int_equal(uvenv_open(&cfg, &u, err, sizeof err), CS_EVERSION);
	assert_non_null(strstr(err, "no VERSION"));
	assert_int_equal(dir_entries(dir), 1);
	loop_done(&loop);
	rm_tree(dir);
}

static void assert_corrupt_refused(uv_loop_t *loop, const char *dir, const char *name)
{
	char path[256];
	struct logbuf log;
	struct uvenv *u;
	struct env *e;
	struct sqlite3 *db = NULL;
	uint8_t *before, *after;
	size_t len_before, len_after;

	snprintf(path, sizeof path, "%s/%s.db", dir, name);
	before = read_file(path, &len_before);
	logbuf_open(&log);
	u = open_env(loop, dir, "127.0.0.1:0", log.f, 0);
	e = uvenv_env(u);
	assert_int_equal(e->ops->storage_open(e, name, &db), CS_ESTORAGE);
	assert_non_null(strstr(uvenv_storage_error(u), path));
	assert_non_null(strstr(logbuf_text(&log), "level=error"));
	assert_non_null(strstr(logbuf_text(&log), path));
	close_env(loop, u);
	after = read_file(path, &len_after);
	assert_int_equal(len_after, len_before);
	assert_memory_equal(after, before, len_before);
	snprintf(path, sizeof path, "%s/%s.db-wal", dir, name);
	assert_int_not_equal(access(path, F_OK), 0);
	free(before);
	free(after);
	logbuf_close(&log);
}

static void test_uvenv_corrupt_database_is_refused_untouched(void **state)
{
	uv_loop_t loop;
	char dir[64], path[256];
	uint8_t garbage[8192];
	struct sqlite3 *db;
	int fd;

	make_tmpdir(dir, sizeof dir);
	uv_loop_init(&loop);
	close_env(&loop, open_env(&loop, dir, "127.0.0.1:0", NULL, 0)); /* VERSION */

	/* garbage from the first byte */
	for (size_t i = 0; i < sizeof garbage; i++)
		garbage[i] = (uint8_t)(i * 131 + 7);
	snprintf(path, sizeof path, "%s/junk.db", dir);
	write_file(path, garbage, sizeof garbage);
	assert_corrupt_refused(&loop, dir, "junk");

	/* a real database whose pages are overwritten past the header page */
	snprintf(path, sizeof path, "%s/torn.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"PRAGMA page_size=1024; CREATE TABLE t(k INTEGER PRIMARY KEY, v);"
			"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c "
			"WHERE i<2000) INSERT INTO t SELECT i, hex(randomblob(40)) FROM c;"
			"CREATE INDEX tv ON t(v);",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, garbage, sizeof garbage, 1024 * 3),
			 (ssize_t)sizeof garbage);
	close(fd);
	assert_corrupt_refused(&loop, dir, "torn");
	loop_done(&loop);
	rm_tree(dir);
}

/* Issue 19: the agent's task database is one a node can start without: a
 * corrupt one is set aside (agent.db.corrupt, bytes unchanged, its -wal
 * beside) and a new, empty one opens, with an error line saying so; a
 * corrupt raft.db is still refused (above). */
static void test_uvenv_corrupt_agent_database_is_set_aside(void **state)
{
	uv_loop_t loop;
	char dir[64], path[256], aside[280];
	uint8_t garbage[8192], *kept;
	size_t len;
	struct logbuf log;
	struct uvenv *u;
	struct env *e;
	struct sqlite3 *db = NULL;
	sqlite3_stmt *st;

	make_tmpdir(dir, sizeof dir);
	uv_loop_init(&loop);
	close_env(&loop, open_env(&loop, dir, "127.0.0.1:0", NULL, 0)); /* VERSION */
	for (size_t i = 0; i < sizeof garbage; i++)
		garbage[i] = (uint8_t)(i * 131 + 7);
	snprintf(path, sizeof path, "%s/agent.db", dir);
	write_file(path, garbage, sizeof garbage);

	logbuf_open(&log);
	u = open_env(&loop, dir, "127.0.0.1:0", log.f, 0);
	e = uvenv_env(u);
	assert_int_equal(e->ops->storage_open(e, "agent", &db), 0);
	assert_non_null(db);
	/* a new, empty database */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1,
					    &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	assert_non_null(strstr(logbuf_text(&log), "corrupt database set aside"));
	close_env(&loop, u);
	snprintf(aside, sizeof aside, "%s.corrupt", path);
	kept = read_file(aside, &len);
	assert_int_equal(len, sizeof garbage);
	assert_memory_equal(kept, garbage, sizeof garbage);
	free(kept);
	logbuf_close(&log);
	loop_done(&loop);
	rm_tree(dir);
}

/* A node killed mid-run leaves DB-wal and DB-shm beside its database: the
 * check before opening must accept that, and the committed rows are there. */
static void test_uvenv_storage_opens_after_a_crash_with_wal_left(void **state)
{
	uv_loop_t loop;
	char dir[64], path[256];
	struct uvenv *u;
	struct env *e;
	struct sqlite3 *db;
	sqlite3_stmt *st;
	pid_t pid;
	int status;

	make_tmpdir(dir, sizeof dir);
	uv_loop_init(&loop);
	close_env(&loop, open_env(&loop, dir, "127.0.0.1:0", NULL, 0)); /* VERSION */
	snprintf(path, sizeof path, "%s/crashed.db", dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sqlite3_open(path, &db) != SQLITE_OK ||
		    sqlite3_exec(db,
				 "PRAGMA journal_mode=WAL; CREATE TABLE t(v);"
				 "INSERT INTO t VALUES(7);",
				 NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		_exit(0); /* no close: the WAL stays, as after kill -9 */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(path, sizeof path, "%s/crashed.db-wal", dir);
	assert_int_equal(access(path, F_OK), 0);

	u = open_env(&loop, dir, "127.0.0.1:0", NULL, 0);
	e = uvenv_env(u);
	assert_int_equal(e->ops->storage_open(e, "crashed", &db), 0);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT v FROM t", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 7);
	sqlite3_finalize(st);
	teardown(&loop, (struct uvenv *[]){u, NULL}, (const char *[]){dir, NULL});
}

/* ---------------------------------------------------------------- the rest */

static void test_uvenv_log_lines_are_logfmt_and_filtered(void **state)
{
	uv_loop_t loop;
	char dir[64], err[256];
	struct uvenv_cfg cfg = {0};
	struct uvenv *u;
	struct env *e;
	struct logbuf log;
	const char *text;

	make_tmpdir(dir, sizeof dir);
	logbuf_open(&log);
	uv_loop_init(&loop);
	cfg.loop = &loop;
	cfg.state_dir = dir;
	cfg.listen_addr = "127.0.0.1:0";
	cfg.name = "host1";
	cfg.log_out = log.f;
	cfg.log_level = ENV_LOG_WARN;
	assert_int_equal(uvenv_open(&cfg, &u, err, sizeof err), 0);
	e = uvenv_env(u);
	e->ops->log(e, ENV_LOG_INFO, "msg=\"dropped\"");
	e->ops->log(e, ENV_LOG_WARN, "plain \"quoted\" text");
	uvenv_set_log_node(u, "n0d3");
	env_logf(e, ENV_LOG_ERROR, "msg=\"malformed frame\" from=%s bytes=%d",
		 "10.0.0.1:4242", 12);
	text = logbuf_text(&log);
	assert_null(strstr(text, "dropped"));
	assert_true(strncmp(text, "ts=20", 5) == 0);
	assert_non_null(strstr(
		text, "Z level=warn node=host1 msg=\"plain \\\"quoted\\\" text\"\n"));
	assert_non_null(strstr(text, "Z level=error node=n0d3 msg=\"malformed frame\" "
				     "from=10.0.0.1:4242 bytes=12\n"));
	/* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
	assert_int_equal(text[13], 'T');
	assert_int_equal(text[26], 'Z');
	teardown(&loop, (struct uvenv *[]){u, NULL}, (const char *[]){dir, NULL});
	logbuf_close(&log);
}

static void test_uvenv_no_executor_and_random(void **state)
{
	uv_loop_t loop;
	char dir[64];
	struct uvenv *u;
	struct env *e;
	struct env_container_spec spec = {.task_id = "t1", .image = "busybox"};
	struct env_ctl *ctl = NULL;
	struct env_ctl_list_req lreq = {0};
	uint64_t r1, r2;

	uv_loop_init(&loop);
	u = open_tmp_env(&loop, dir, sizeof dir, NULL, 0);
	e = uvenv_env(u);
	assert_int_equal(e->ops->ctl_open(e, &spec, &ctl), CS_ENOTSUP);
	assert_null(ctl);
	assert_int_equal(e->ops->ctl_list(e, &lreq, NULL), CS_ENOTSUP);
	r1 = e->ops->random_u64(e);
	r2 = e->ops->random_u64(e);
	assert_true(r1 != r2);
	/* across several refills of the pool: none zero, none repeated */
	{
		uint64_t seen[200];
		for (size_t i = 0; i < 200; i++) {
			seen[i] = e->ops->random_u64(e);
			assert_true(seen[i] != 0);
			for (size_t j = 0; j < i; j++)
				assert_true(seen[i] != seen[j]);
		}
	}
	teardown(&loop, (struct uvenv *[]){u, NULL}, (const char *[]){dir, NULL});
}

/* ---------------------------------------------------------------- identity */

/* A root CA (its certificate and key, DER). */
struct ca {
	uint8_t cert[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	size_t cert_len, key_len;
};

static void seed_of(uint8_t seed[PKI_SEED_BYTES], uint8_t first)
{
	for (int i = 0; i < PKI_SEED_BYTES; i++)
		seed[i] = (uint8_t)(first + 7 * i);
}

/* A root of cluster, from seed byte s, valid from an hour ago for a year. */
static void ca_make(struct ca *ca, uint8_t s, uint64_t cluster)
{
	uint8_t seed[PKI_SEED_BYTES];
	int64_t now = time(NULL);

	seed_of(seed, s);
	assert_int_equal(pki_ca_create(seed, cluster, now - 3600, now + 365 * 86400, 1,
				       ca->cert, sizeof ca->cert, &ca->cert_len, ca->key,
				       sizeof ca->key, &ca->key_len),
			 0);
}

/* A key (seed byte s) and its certificate by ca for (node, cluster, role),
 * valid [nb, na]. */
static void cred_make(struct cred *c, const struct ca *ca, uint8_t s, uint64_t node,
		      uint64_t cluster, enum env_role role, int64_t nb, int64_t na)
{
	uint8_t seed[PKI_SEED_BYTES], csr[PKI_DER_BYTES_MAX];
	size_t csr_len;
	struct env_blob cb = {ca->cert, ca->cert_len}, kb = {ca->key, ca->key_len};
	struct env_blob rb;
	struct env_identity who = {.node_id = node, .cluster_id = cluster, .role = role};
	char why[PKI_WHY_BYTES];

	seed_of(seed, s);
	assert_int_equal(pki_key_der(seed, c->key, sizeof c->key, &c->key_len), 0);
	assert_int_equal(pki_csr_create(seed, csr, sizeof csr, &csr_len), 0);
	rb = (struct env_blob){csr, csr_len};
	if (pki_sign(&cb, &kb, &rb, &who, nb, na, 7, c->cert, sizeof c->cert,
		     &c->cert_len, why) != 0)
		fail_msg("pki_sign: %s", why);
}

/* Gives u a certificate of ca for (node, role) through the env's own ops:
 * its CSR, the CA's signature (on u's env: any manager signs), install. */
static void enroll(struct uvenv *u, const struct ca *ca, uint64_t cluster, uint64_t node,
		   enum env_role role)
{
	struct env *e = uvenv_env(u);
	uint8_t csr[PKI_DER_BYTES_MAX], cert[PKI_DER_BYTES_MAX];
	size_t csr_len, cert_len;
	struct env_blob cb = {ca->cert, ca->cert_len}, kb = {ca->key, ca->key_len};
	struct env_blob rb, crt;
	struct env_identity who = {.node_id = node, .cluster_id = cluster, .role = role};

	assert_int_equal(e->ops->pki_csr(e, csr, sizeof csr, &csr_len), 0);
	rb = (struct env_blob){csr, csr_len};
	assert_int_equal(e->ops->pki_sign(e, &cb, &kb, &rb, &who, 3600 * 1000, cert,
					  sizeof cert, &cert_len),
			 0);
	crt = (struct env_blob){cert, cert_len};
	assert_int_equal(e->ops->pki_install(e, &crt, &cb, 1), 0);
}

/* A receiver that records who sent each frame. */
struct idrx {
	struct env *env;
	uint32_t count, want;
	struct env_identity last;
	char from[LIMIT_ADDR_BYTES_MAX + 1];
};

static void idrx_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		      void *data)
{
	struct idrx *r = data;

	env->ops->sender(env, &r->last);
	snprintf(r->from, sizeof r->from, "%s", from);
	r->count++;
}

static bool idrx_has_want(void *ctx)
{
	struct idrx *r = ctx;
	return r->count >= r->want;
}

/* All zero but the connection (which reply() needs even for no one). */
static bool identity_is_zero(const struct env_identity *id)
{
	static const struct env_identity zero;
	struct env_identity c = *id;

	c.conn = 0; /* where it came from is no certificate's claim */
	memset(c.peer_ip, 0, sizeof c.peer_ip);
	return memcmp(&c, &zero, sizeof zero) == 0;
}

#define ID_CLUSTER 0x77u

/* a enrolled as worker 0xa1 and b as manager 0xb1 of ca, b listening into
 * rb: a's first frame to b is heard (rb.last says by whom). */
static void pair_first_frame(uv_loop_t *loop, struct uvenv *a, struct uvenv *b,
			     const struct ca *ca, struct idrx *rb)
{
	enroll(a, ca, ID_CLUSTER, 0xa1, ENV_ROLE_WORKER);
	enroll(b, ca, ID_CLUSTER, 0xb1, ENV_ROLE_MANAGER);
	rb->env = uvenv_env(b);
	rb->env->ops->listen(rb->env, idrx_recv, NULL, rb);
	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 10), 0);
	rb->want = 1;
	assert_true(run_until(loop, idrx_has_want, rb, 5000));
}

/* Issue 13, "every message's sender is the node named by the certificate of
 * the connection it came on": a node's frames carry its certificate's node,
 * role, cluster and root; a TLS client without a certificate, or with one
 * of another CA, of another cluster, or expired, is heard with an all-zero
 * sender (the core decides what such a sender may say), each refusal said
 * once with pki_verify's reason; outside a receive callback, sender() is
 * all zero. */
static void test_uvenv_sender_is_who_the_certificate_names(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct env *eb;
	struct idrx rb = {0};
	struct logbuf log;
	struct ca ca, other_ca, other_cluster;
	struct cred none = {0}, foreign, alien, expired;
	uint8_t root[ENV_DIGEST_BYTES];
	struct env_identity id;
	int64_t now = time(NULL);

	make_tmpdir(dir_b, sizeof dir_b);
	logbuf_open(&log);
	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	ca_make(&other_ca, 2, ID_CLUSTER);
	ca_make(&other_cluster, 3, ID_CLUSTER + 1);
	pki_digest(ca.cert, ca.cert_len, root);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f, .log_level = ENV_LOG_INFO});
	eb = uvenv_env(b);
	pair_first_frame(&loop, a, b, &ca, &rb);
	assert_int_equal(rb.last.node_id, 0xa1);
	assert_int_equal(rb.last.cluster_id, ID_CLUSTER);
	assert_int_equal(rb.last.role, ENV_ROLE_WORKER);
	assert_memory_equal(rb.last.root, root, sizeof root);
	assert_true(rb.last.expires_ms > eb->ops->now_ms(eb));
	assert_true(rb.last.life_ms >= 3600 * 1000);
	assert_string_equal(rb.from, uvenv_addr(a));
	assert_true(rb.last.conn != 0);
	/* the socket's peer, not anything the sender said */
	assert_string_equal(rb.last.peer_ip, "127.0.0.1");
	eb->ops->sender(eb, &id);
	assert_true(identity_is_zero(&id));
	assert_int_equal(id.conn, 0);

	/* b's own certificate, as pki_info reads it */
	assert_int_equal(eb->ops->pki_info(eb, &(struct env_blob){NULL, 0}, &id), 0);
	assert_int_equal(id.node_id, 0xb1);
	assert_int_equal(id.role, ENV_ROLE_MANAGER);
	assert_memory_equal(id.root, root, sizeof root);

	cred_make(&foreign, &other_ca, 20, 0xc1, ID_CLUSTER, ENV_ROLE_MANAGER, now - 60,
		  now + 3600);
	cred_make(&alien, &other_cluster, 21, 0xc2, ID_CLUSTER + 1, ENV_ROLE_MANAGER,
		  now - 60, now + 3600);
	cred_make(&expired, &ca, 22, 0xc3, ID_CLUSTER, ENV_ROLE_MANAGER, now - 7200,
		  now - 3600);
	const struct {
		const struct cred *c;
		const char *why;
	} cases[] = {
		{&none, NULL},
		{&foreign, "why=\"certificate not signed by a trusted root\""},
		{&alien, "why=\"certificate of cluster 0000000000000078, expected "
			 "0000000000000077\""},
		{&expired, "why=\"certificate expired at "},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct traw t = traw_connect(&loop, uvenv_addr(b), cases[i].c);
		traw_hello(&loop, &t, "CSW1127.0.0.1:9");
		traw_send_frame(&loop, &t, 4, "ping", 4);
		rb.want = rb.count + 1;
		assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
		if (!identity_is_zero(&rb.last))
			fail_msg("case %zu: sender node %" PRIx64, i, rb.last.node_id);
		if (cases[i].why && !strstr(logbuf_text(&log), cases[i].why))
			fail_msg("case %zu: no %s in\n%s", i, cases[i].why,
				 logbuf_text(&log));
		traw_free(&t);
	}
	assert_int_equal(log_count(&log, "msg=\"peer certificate refused\""), 4);
	assert_int_equal(log_count(&log, "why=\"no certificate\""), 1);

	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
	logbuf_close(&log);
}

/* Issue 13 (a fake manager is detected before anything is sent): a node
 * pinned to a join token's digest sends nothing to a server whose chain
 * holds no root of that digest, and says why; pinned to the right digest,
 * its frames arrive (its sender all zero: it has no certificate yet). A
 * node with roots sends nothing to a server of another CA either. */
static void test_uvenv_client_refuses_a_server_it_does_not_trust(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64], dir_c[64];
	struct uvenv *a, *b, *c;
	struct env *ea, *eb;
	struct idrx rb = {0};
	struct logbuf log;
	struct log_wait w = {0};
	struct ca ca, other_ca;
	uint8_t good[ENV_DIGEST_BYTES], bad[ENV_DIGEST_BYTES];

	logbuf_open(&log);
	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	ca_make(&other_ca, 2, ID_CLUSTER);
	pki_digest(ca.cert, ca.cert_len, good);
	pki_digest(other_ca.cert, other_ca.cert_len, bad);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, log.f, 0);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, NULL, 0);
	c = open_tmp_env(&loop, dir_c, sizeof dir_c, NULL, 0);
	enroll(b, &ca, ID_CLUSTER, 0xb1, ENV_ROLE_MANAGER);
	enroll(c, &other_ca, ID_CLUSTER, 0xc1, ENV_ROLE_MANAGER);
	ea = uvenv_env(a);
	eb = uvenv_env(b);
	rb.env = eb;
	eb->ops->listen(eb, idrx_recv, NULL, &rb);

	assert_int_equal(ea->ops->pki_pin(ea, bad), 0);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(send_seq(a, uvenv_addr(b), i, 10), 0);
	w.log = &log;
	w.needle = "msg=\"peer certificate refused\"";
	assert_true(run_until(&loop, log_has, &w, 5000));
	assert_non_null(strstr(logbuf_text(&log),
			       "why=\"no certificate of the peer's chain has the pinned "
			       "root digest\" dropped=3"));
	run_until(&loop, never, NULL, 300);
	assert_int_equal(rb.count, 0);

	assert_int_equal(ea->ops->pki_pin(ea, good), 0);
	assert_int_equal(send_seq(a, uvenv_addr(b), 3, 10), 0);
	rb.want = 1;
	assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
	assert_true(identity_is_zero(&rb.last));

	/* b, with roots, refuses c (another CA) as a server */
	assert_int_equal(send_seq(b, uvenv_addr(c), 0, 10), 0);
	run_until(&loop, never, NULL, 300);
	assert_int_equal(log_count(&log, "msg=\"peer certificate refused\""), 1);

	teardown(&loop, (struct uvenv *[]){a, b, c, NULL},
		 (const char *[]){dir_a, dir_b, dir_c, NULL});
	logbuf_close(&log);
}

static void rx_count_recv(struct env *env, const char *from, const uint8_t *buf,
			  size_t len, void *data)
{
	(*(uint32_t *)data)++;
}

static bool count_at_least_one(void *ctx)
{
	return *(uint32_t *)ctx >= 1;
}

/* b with roots refuses c: nothing reached c (counted at c). */
static void test_uvenv_node_with_roots_sends_nothing_to_another_ca(void **state)
{
	uv_loop_t loop;
	char dir_b[64], dir_c[64];
	struct uvenv *b, *c;
	struct env *ec;
	struct logbuf log;
	struct log_wait w = {0};
	struct ca ca, other_ca;
	uint32_t got = 0;

	logbuf_open(&log);
	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	ca_make(&other_ca, 2, ID_CLUSTER);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, log.f, 0);
	c = open_tmp_env(&loop, dir_c, sizeof dir_c, NULL, 0);
	enroll(b, &ca, ID_CLUSTER, 0xb1, ENV_ROLE_MANAGER);
	ec = uvenv_env(c);
	ec->ops->listen(ec, rx_count_recv, NULL, &got);
	/* c without a certificate at all (its throwaway one) */
	assert_int_equal(send_seq(b, uvenv_addr(c), 0, 10), 0);
	w.log = &log;
	w.needle = "why=\"certificate of cluster 0000000000000000, expected "
		   "0000000000000077\" dropped=1";
	if (!run_until(&loop, log_has, &w, 5000))
		fail_msg("%s", logbuf_text(&log));
	/* c with a certificate of another CA */
	enroll(c, &other_ca, ID_CLUSTER, 0xc1, ENV_ROLE_MANAGER);
	run_until(&loop, never, NULL, 300); /* past the backoff */
	assert_int_equal(send_seq(b, uvenv_addr(c), 1, 10), 0);
	run_until(&loop, count_at_least_one, &got, 1000);
	assert_int_equal(got, 0);
	/* c with a certificate of b's CA: now it arrives */
	enroll(c, &ca, ID_CLUSTER, 0xc1, ENV_ROLE_MANAGER);
	run_until(&loop, never, NULL, 300);
	assert_int_equal(send_seq(b, uvenv_addr(c), 2, 10), 0);
	assert_true(run_until(&loop, count_at_least_one, &got, 5000));

	teardown(&loop, (struct uvenv *[]){b, c, NULL},
		 (const char *[]){dir_b, dir_c, NULL});
	logbuf_close(&log);
}

/* Issue 13 (renewal, nothing restarts): a node that installs a new
 * certificate while connected dials its peers again, and they see the new
 * key and role at once (a joiner's first connection, without a
 * certificate, left it a stranger to its manager until it closed);
 * the files it keeps are 0600 in a 0700 tls/, whatever the umask, and the
 * pending key is gone once installed. */
static void test_uvenv_renewal_redials_and_files_private(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64], dir_c[64], path[160];
	struct uvenv *a, *b, *c;
	struct env *ea, *eb, *ec;
	struct idrx rb = {0}, rc = {0};
	struct ca ca;
	struct env_identity before, after;
	struct stat st;
	mode_t old = umask(0);

	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, NULL, 0);
	c = open_tmp_env(&loop, dir_c, sizeof dir_c, NULL, 0);
	ea = uvenv_env(a);
	eb = uvenv_env(b);
	ec = uvenv_env(c);
	enroll(a, &ca, ID_CLUSTER, 0xa1, ENV_ROLE_WORKER);
	enroll(b, &ca, ID_CLUSTER, 0xb1, ENV_ROLE_MANAGER);
	enroll(c, &ca, ID_CLUSTER, 0xc1, ENV_ROLE_MANAGER);
	rb.env = eb;
	rc.env = ec;
	eb->ops->listen(eb, idrx_recv, NULL, &rb);
	ec->ops->listen(ec, idrx_recv, NULL, &rc);
	assert_int_equal(ea->ops->pki_info(ea, &(struct env_blob){NULL, 0}, &before), 0);

	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 10), 0);
	rb.want = 1;
	assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
	assert_memory_equal(rb.last.key, before.key, sizeof before.key);

	enroll(a, &ca, ID_CLUSTER, 0xa1, ENV_ROLE_MANAGER); /* renewed, promoted */
	assert_int_equal(ea->ops->pki_info(ea, &(struct env_blob){NULL, 0}, &after), 0);
	assert_memory_not_equal(after.key, before.key, sizeof before.key);
	assert_int_equal(after.role, ENV_ROLE_MANAGER);

	assert_int_equal(send_seq(a, uvenv_addr(b), 1, 10), 0);
	rb.want = 2;
	assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
	assert_memory_equal(rb.last.key, after.key, sizeof after.key); /* dialled again */
	assert_int_equal(rb.last.role, ENV_ROLE_MANAGER);
	assert_int_equal(send_seq(a, uvenv_addr(c), 0, 10), 0);
	rc.want = 1;
	assert_true(run_until(&loop, idrx_has_want, &rc, 5000));
	assert_memory_equal(rc.last.key, after.key, sizeof after.key); /* new conn */
	assert_int_equal(rc.last.role, ENV_ROLE_MANAGER);

	snprintf(path, sizeof path, "%s/tls", dir_a);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	const char *files[] = {"node.key", "node.crt", "roots"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/tls/%s", dir_a, files[i]);
		assert_int_equal(stat(path, &st), 0);
		if ((st.st_mode & 07777) != 0600)
			fail_msg("%s is %o", files[i], (unsigned)(st.st_mode & 07777));
	}
	snprintf(path, sizeof path, "%s/tls/pending.key", dir_a);
	assert_int_equal(stat(path, &st), -1);

	teardown(&loop, (struct uvenv *[]){a, b, c, NULL},
		 (const char *[]){dir_a, dir_b, dir_c, NULL});
	umask(old);
}

/* cfg dial_from (issue 18): a node's connections leave from that address,
 * which its peer sees (the socket's, as the sender's peer_ip), its
 * identity unchanged; an address that is not dotted IPv4 is refused at
 * open, said clearly. */
static void test_uvenv_dial_from_is_the_peer_address_seen(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64], err[256];
	struct uvenv *a, *b, *bad = NULL;
	struct idrx rb = {0};
	struct ca ca;

	(void)state;
	make_tmpdir(dir_a, sizeof dir_a);
	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	a = open_env_cfg(&loop, dir_a, "127.0.0.1:0",
			 (struct uvenv_cfg){.dial_from = "127.1.2.3"});
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0", (struct uvenv_cfg){0});
	pair_first_frame(&loop, a, b, &ca, &rb);
	assert_string_equal(rb.last.peer_ip, "127.1.2.3");
	assert_int_equal(rb.last.node_id, 0xa1);
	assert_string_equal(rb.from, uvenv_addr(a)); /* what it calls itself */

	assert_int_equal(uvenv_open(&(struct uvenv_cfg){.loop = &loop,
							.listen_addr = "127.0.0.1:0",
							.state_dir = dir_a,
							.dial_from = "127.1.2"},
				    &bad, err, sizeof err),
			 CS_EINVAL);
	assert_null(bad);
	assert_string_equal(err,
			    "dial-from address \"127.1.2\": not a dotted IPv4 address");
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

/* The identity survives a restart; a node.crt that is not node.key's
 * certificate is refused at open, said clearly, unless it is pending.key's
 * (an install cut by a crash after the certificate): then open finishes
 * it. pki_install refuses a certificate for neither key. */
static void test_uvenv_identity_files_checked_at_open(void **state)
{
	uv_loop_t loop;
	char dir[64], path[160], err[512];
	struct uvenv *a = NULL;
	struct env *ea;
	struct ca ca;
	struct cred stranger;
	struct env_identity id;
	uint8_t *key, *pend;
	size_t key_len, pend_len;
	int64_t now = time(NULL);

	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	a = open_tmp_env(&loop, dir, sizeof dir, NULL, 0);
	ea = uvenv_env(a);
	assert_int_equal(ea->ops->pki_info(ea, &(struct env_blob){NULL, 0}, &id),
			 CS_ENOENT);
	enroll(a, &ca, ID_CLUSTER, 0xa1, ENV_ROLE_WORKER);
	cred_make(&stranger, &ca, 30, 0xa1, ID_CLUSTER, ENV_ROLE_MANAGER, now - 60,
		  now + 3600);
	assert_int_equal(ea->ops->pki_install(
				 ea, &(struct env_blob){stranger.cert, stranger.cert_len},
				 &(struct env_blob){ca.cert, ca.cert_len}, 1),
			 CS_EAUTH);
	close_env(&loop, a);

	a = open_env(&loop, dir, "127.0.0.1:0", NULL, 0);
	ea = uvenv_env(a);
	assert_int_equal(ea->ops->pki_info(ea, &(struct env_blob){NULL, 0}, &id), 0);
	assert_int_equal(id.node_id, 0xa1);
	close_env(&loop, a);

	/* node.key replaced by another key: refused */
	snprintf(path, sizeof path, "%s/tls/node.key", dir);
	key = read_file(path, &key_len);
	write_file(path, stranger.key, stranger.key_len);
	assert_int_equal(uvenv_open(&(struct uvenv_cfg){.loop = &loop,
							.listen_addr = "127.0.0.1:0",
							.state_dir = dir},
				    &a, err, sizeof err),
			 CS_ESTORAGE);
	assert_non_null(strstr(err, "/tls/node.crt is not the certificate of node.key"));

	/* ... unless pending.key is its key: the install is finished */
	snprintf(path, sizeof path, "%s/tls/pending.key", dir);
	write_file(path, key, key_len);
	a = open_env(&loop, dir, "127.0.0.1:0", NULL, 0);
	snprintf(path, sizeof path, "%s/tls/node.key", dir);
	pend = read_file(path, &pend_len);
	assert_int_equal(pend_len, key_len);
	assert_memory_equal(pend, key, key_len);
	snprintf(path, sizeof path, "%s/tls/pending.key", dir);
	assert_int_equal(access(path, F_OK), -1);
	close_env(&loop, a);

	free(key);
	free(pend);
	loop_done(&loop);
	rm_tree(dir);
}

static int64_t fake_wall_s(void *data)
{
	return *(int64_t *)data;
}

/* The system's wall clock in ms (time() is coarser: it may lag). */
static uint64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Issue 14: wall_ms is the wall clock (records' created and updated times):
 * the test hook's seconds when set, else the system's, in ms. */
static void test_uvenv_wall_clock(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	int64_t wall = 1767225600;
	uint64_t before = real_ms(), got;

	make_tmpdir(dir_a, sizeof dir_a);
	uv_loop_init(&loop);
	a = open_env_cfg(
		&loop, dir_a, "127.0.0.1:0",
		(struct uvenv_cfg){.wall_now_s = fake_wall_s, .wall_data = &wall});
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, NULL, 0);
	assert_int_equal(uvenv_env(a)->ops->wall_ms(uvenv_env(a)), 1767225600000ull);
	got = uvenv_env(b)->ops->wall_ms(uvenv_env(b));
	assert_true(got >= before);
	assert_true(got <= real_ms());
	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

/* A certificate that expires after its connection's handshake no longer
 * names its sender: sender() checks the clock at every frame. */
static void test_uvenv_sender_expires_with_the_certificate(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct env *eb;
	struct idrx rb = {0};
	struct ca ca;
	int64_t wall = time(NULL);

	make_tmpdir(dir_a, sizeof dir_a);
	make_tmpdir(dir_b, sizeof dir_b);
	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	a = open_env_cfg(
		&loop, dir_a, "127.0.0.1:0",
		(struct uvenv_cfg){.wall_now_s = fake_wall_s, .wall_data = &wall});
	b = open_env_cfg(
		&loop, dir_b, "127.0.0.1:0",
		(struct uvenv_cfg){.wall_now_s = fake_wall_s, .wall_data = &wall});
	enroll(a, &ca, ID_CLUSTER, 0xa1, ENV_ROLE_WORKER); /* an hour */
	enroll(b, &ca, ID_CLUSTER, 0xb1, ENV_ROLE_MANAGER);
	eb = uvenv_env(b);
	rb.env = eb;
	eb->ops->listen(eb, idrx_recv, NULL, &rb);
	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 10), 0);
	rb.want = 1;
	assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
	assert_int_equal(rb.last.node_id, 0xa1);
	assert_true(rb.last.expires_ms > eb->ops->now_ms(eb) + 3500 * 1000);

	wall += 3600 + 1;
	assert_int_equal(send_seq(a, uvenv_addr(b), 1, 10), 0);
	rb.want = 2;
	assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
	assert_true(identity_is_zero(&rb.last));

	teardown(&loop, (struct uvenv *[]){a, b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

/* Issue 18: a peer's certificate checked once is remembered, shared by the
 * uvenvs given one cache (swarmload's agents), per certificate (two
 * clients are two checks on the server), and only within its validity: a
 * server certificate that expired is checked anew, and refused. */
static void test_uvenv_peer_checks_are_remembered_until_expiry(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64], dir_c[64], dir_d[64];
	struct uvenv *a, *b, *c, *d;
	struct uvenv_vcache *vc = uvenv_vcache_new(64);
	struct env *eb;
	struct idrx rb = {0};
	struct ca ca;
	int64_t wall = time(NULL);
	uint64_t hits, misses;
	struct uvenv_cfg shared = {
		.wall_now_s = fake_wall_s, .wall_data = &wall, .vcache = vc};

	assert_non_null(vc);
	make_tmpdir(dir_a, sizeof dir_a);
	make_tmpdir(dir_b, sizeof dir_b);
	make_tmpdir(dir_c, sizeof dir_c);
	make_tmpdir(dir_d, sizeof dir_d);
	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	a = open_env_cfg(&loop, dir_a, "127.0.0.1:0", shared);
	c = open_env_cfg(&loop, dir_c, "127.0.0.1:0", shared);
	d = open_env_cfg(&loop, dir_d, "127.0.0.1:0", shared);
	b = open_env_cfg(
		&loop, dir_b, "127.0.0.1:0",
		(struct uvenv_cfg){.wall_now_s = fake_wall_s, .wall_data = &wall});
	assert_ptr_equal(uvenv_vcache_of(a), vc);
	assert_ptr_not_equal(uvenv_vcache_of(b), vc);
	enroll(a, &ca, ID_CLUSTER, 0xa1, ENV_ROLE_WORKER); /* an hour */
	enroll(b, &ca, ID_CLUSTER, 0xb1, ENV_ROLE_MANAGER);
	enroll(c, &ca, ID_CLUSTER, 0xc1, ENV_ROLE_WORKER);
	eb = uvenv_env(b);
	rb.env = eb;
	eb->ops->listen(eb, idrx_recv, NULL, &rb);

	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 10), 0);
	rb.want = 1;
	assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
	assert_int_equal(rb.last.node_id, 0xa1);
	uvenv_vcache_counts(vc, &hits, &misses);
	assert_int_equal(hits, 0);
	assert_int_equal(misses, 1); /* a checked b's certificate */

	assert_int_equal(send_seq(c, uvenv_addr(b), 0, 10), 0);
	rb.want = 2;
	assert_true(run_until(&loop, idrx_has_want, &rb, 5000));
	assert_int_equal(rb.last.node_id, 0xc1); /* b told c from a */
	uvenv_vcache_counts(vc, &hits, &misses);
	assert_int_equal(hits, 1); /* c took a's check of b */
	assert_int_equal(misses, 1);
	uvenv_vcache_counts(uvenv_vcache_of(b), &hits, &misses);
	assert_int_equal(hits, 0);
	assert_int_equal(misses, 2); /* two certificates, two checks */

	/* b's certificate expires: d, enrolled now, does not take the old
	 * check of it, and b hears nothing from d */
	wall += 3600 + 1;
	enroll(d, &ca, ID_CLUSTER, 0xd1, ENV_ROLE_WORKER);
	assert_int_equal(send_seq(d, uvenv_addr(b), 0, 10), 0);
	run_until(&loop, never, NULL, 1000);
	assert_int_equal(rb.count, 2);
	uvenv_vcache_counts(vc, &hits, &misses);
	assert_int_equal(hits, 1);
	assert_true(misses >= 2);

	teardown(&loop, (struct uvenv *[]){a, b, c, d, NULL},
		 (const char *[]){dir_a, dir_b, dir_c, dir_d, NULL});
	uvenv_vcache_free(vc);
}

/* A receiver that answers every frame with env reply (a CA answering a
 * joiner), and records the connection. */
struct replier {
	struct env *env;
	uint32_t count;
	uint64_t conn;
	int rv;
};

static void replier_recv(struct env *env, const char *from, const uint8_t *buf,
			 size_t len, void *data)
{
	struct replier *r = data;
	struct env_identity id;

	env->ops->sender(env, &id);
	r->conn = id.conn;
	r->count++;
	r->rv = env->ops->reply(env, id.conn, (const uint8_t *)"answer", 6);
}

static void answer_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
			void *data)
{
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "answer", 6);
	idrx_recv(env, from, buf, len, data);
}

/* Issue 13 (no dial to an address a message names): a node without a
 * certificate, pinned to the root's digest, is answered on the connection
 * it opened, never dialled; the answer arrives from the address it
 * dialled, and proves the server's certificate. A connection gone answers
 * CS_ECLOSED. */
static void test_uvenv_reply_answers_a_joiner_on_its_own_connection(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64];
	struct uvenv *a, *b;
	struct env *ea, *eb;
	struct idrx ra = {0};
	struct replier rb = {0};
	struct ca ca;
	uint8_t root[ENV_DIGEST_BYTES];

	uv_loop_init(&loop);
	ca_make(&ca, 1, ID_CLUSTER);
	pki_digest(ca.cert, ca.cert_len, root);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_tmp_env(&loop, dir_b, sizeof dir_b, NULL, 0);
	enroll(b, &ca, ID_CLUSTER, 0xb1, ENV_ROLE_MANAGER);
	ea = uvenv_env(a);
	eb = uvenv_env(b);
	ra.env = ea;
	rb.env = eb;
	ea->ops->listen(ea, answer_recv, NULL, &ra);
	eb->ops->listen(eb, replier_recv, NULL, &rb);
	assert_int_equal(ea->ops->pki_pin(ea, root), 0);

	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 10), 0);
	ra.want = 1;
	assert_true(run_until(&loop, idrx_has_want, &ra, 5000));
	assert_int_equal(rb.count, 1);
	assert_int_equal(rb.rv, 0);
	assert_true(rb.conn != 0);
	assert_string_equal(ra.from, uvenv_addr(b));
	assert_int_equal(ra.last.node_id, 0xb1); /* proven by the pinned root */
	assert_int_equal(ra.last.role, ENV_ROLE_MANAGER);
	assert_memory_equal(ra.last.root, root, sizeof root);
	assert_int_equal(ra.last.conn, 0);
	assert_int_equal(uvenv_peer_count(b), 0); /* b dialled no one */
	/* the answer, header and frame, went in one TLS record, not two */
	assert_int_equal(uvenv_tls_writes(b), 1);

	assert_int_equal(eb->ops->reply(eb, rb.conn + 1000, (const uint8_t *)"x", 1),
			 CS_ECLOSED);
	close_env(&loop, a);
	run_until(&loop, never, NULL, 100);
	assert_int_equal(eb->ops->reply(eb, rb.conn, (const uint8_t *)"x", 1),
			 CS_ECLOSED);

	teardown(&loop, (struct uvenv *[]){b, NULL},
		 (const char *[]){dir_a, dir_b, NULL});
}

/* Issue 18: a leader answers every agent on the agent's own connection,
 * so env reply finds a connection by its id in a table that grows (past
 * its first 64 slots here) and forgets closed ones. Each of 70 clients
 * gets back exactly its own frame; once half of them are gone, a reply on
 * theirs is CS_ECLOSED and the others' still arrive. */
#define MANY_CLIENTS 70
struct many_server {
	uint64_t conn[MANY_CLIENTS];
	uint32_t count;
};

static void many_server_recv(struct env *env, const char *from, const uint8_t *buf,
			     size_t len, void *data)
{
	struct many_server *m = data;
	struct env_identity id;
	uint32_t seq;

	(void)from;
	assert_true(len >= sizeof seq);
	memcpy(&seq, buf, sizeof seq);
	assert_true(seq < MANY_CLIENTS);
	env->ops->sender(env, &id);
	assert_true(id.conn != 0);
	m->conn[seq] = id.conn;
	m->count++;
	assert_int_equal(env->ops->reply(env, id.conn, buf, len), 0);
}

struct many_client {
	uint32_t got, seq;
};

static void many_client_recv(struct env *env, const char *from, const uint8_t *buf,
			     size_t len, void *data)
{
	struct many_client *c = data;
	(void)env;
	(void)from;
	assert_true(len >= sizeof c->seq);
	memcpy(&c->seq, buf, sizeof c->seq);
	c->got++;
}

struct many_wait {
	struct many_client *c;
	size_t from, to;
	uint32_t want;
};

static bool many_all_got(void *ctx)
{
	struct many_wait *w = ctx;
	for (size_t i = w->from; i < w->to; i++)
		if (w->c[i].got < w->want)
			return false;
	return true;
}

static void test_uvenv_reply_finds_each_of_many_connections(void **state)
{
	uv_loop_t loop;
	char dir_s[64], dir_c[MANY_CLIENTS][64];
	struct uvenv *srv, *cl[MANY_CLIENTS];
	struct many_server ms = {0};
	static struct many_client mc[MANY_CLIENTS];
	struct env *es;
	uint8_t frame[8] = {0};
	(void)state;

	memset(mc, 0, sizeof mc);
	uv_loop_init(&loop);
	srv = open_tmp_env(&loop, dir_s, sizeof dir_s, NULL, 0);
	es = uvenv_env(srv);
	es->ops->listen(es, many_server_recv, NULL, &ms);
	/* in two waves: at most LIMIT_TLS_HANDSHAKES_MAX handshakes at once */
	for (uint32_t i = 0; i < MANY_CLIENTS; i++) {
		struct env *e;
		make_tmpdir(dir_c[i], sizeof dir_c[i]);
		cl[i] = open_env(&loop, dir_c[i], "127.0.0.1:0", NULL, 0);
		e = uvenv_env(cl[i]);
		e->ops->listen(e, many_client_recv, NULL, &mc[i]);
		assert_int_equal(send_seq(cl[i], uvenv_addr(srv), i, 8), 0);
		if (i + 1 == MANY_CLIENTS / 2 || i + 1 == MANY_CLIENTS)
			assert_true(
				run_until(&loop, many_all_got,
					  &(struct many_wait){
						  mc, i + 1 - MANY_CLIENTS / 2, i + 1, 1},
					  20000));
	}
	for (uint32_t i = 0; i < MANY_CLIENTS; i++) {
		assert_int_equal(mc[i].got, 1);
		assert_int_equal(mc[i].seq, i); /* its own, on its own connection */
	}
	assert_int_equal(uvenv_peer_count(srv), 0); /* the server dialled no one */
	/* half of them go: their connections are gone, the others' stay */
	for (uint32_t i = 0; i < MANY_CLIENTS / 2; i++)
		close_env(&loop, cl[i]);
	run_until(&loop, never, NULL, 200);
	for (uint32_t i = 0; i < MANY_CLIENTS; i++) {
		memcpy(frame, &i, sizeof i);
		assert_int_equal(es->ops->reply(es, ms.conn[i], frame, sizeof frame),
				 i < MANY_CLIENTS / 2 ? CS_ECLOSED : 0);
	}
	assert_true(run_until(&loop, many_all_got,
			      &(struct many_wait){mc, MANY_CLIENTS / 2, MANY_CLIENTS, 2},
			      20000));
	for (uint32_t i = MANY_CLIENTS / 2; i < MANY_CLIENTS; i++) {
		assert_int_equal(mc[i].got, 2);
		assert_int_equal(mc[i].seq, i);
	}
	for (uint32_t i = MANY_CLIENTS / 2; i < MANY_CLIENTS; i++)
		close_env(&loop, cl[i]);
	teardown(&loop, (struct uvenv *[]){srv, NULL}, (const char *[]){dir_s, NULL});
	for (uint32_t i = 0; i < MANY_CLIENTS; i++)
		rm_tree(dir_c[i]);
}

/* Issue 13 (a flood of TLS handshakes must not starve established
 * sessions): past handshakes_max connections in their handshake, the next
 * ones wait their turn (said in one log line a sweep), and a peer already
 * connected goes on being heard. Issue 18: a connection that came
 * meanwhile is not closed but served in turn: when the handshakes in
 * progress end, its handshake begins, and its frame arrives with no down
 * notice at its dialler (closed at accept, it was told down and
 * redialled); the waiting ones are accepted, not left in the kernel's
 * backlog (whose overflow dropped them for TCP's retransmissions). */
static void test_uvenv_handshake_flood_is_bounded(void **state)
{
	uv_loop_t loop;
	char dir_a[64], dir_b[64], dir_c[64];
	struct uvenv *a, *b, *c;
	struct env *eb, *ec;
	struct rx rb, rc;
	struct logbuf log;
	struct log_wait w = {0};
	int fds[10];
	char x[8];

	make_tmpdir(dir_b, sizeof dir_b);
	logbuf_open(&log);
	uv_loop_init(&loop);
	a = open_tmp_env(&loop, dir_a, sizeof dir_a, NULL, 0);
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f, .handshakes_max = 4});
	c = open_tmp_env(&loop, dir_c, sizeof dir_c, NULL, 0);
	eb = uvenv_env(b);
	ec = uvenv_env(c);
	rx_init(&rb);
	rx_init(&rc);
	eb->ops->listen(eb, rx_recv, NULL, &rb);
	ec->ops->listen(ec, rx_recv, rx_peer, &rc);
	assert_int_equal(send_seq(a, uvenv_addr(b), 0, 100), 0);
	rb.want = 1;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));

	for (int i = 0; i < 10; i++)
		fds[i] = raw_connect(uvenv_addr(b)); /* never a handshake */
	for (uint32_t i = 1; i <= 20; i++) {
		assert_int_equal(send_seq(a, uvenv_addr(b), i, 100), 0);
		rb.want = i + 1;
		assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	}
	assert_true(rb.in_order);
	/* c dials b meanwhile: it waits behind the flood, accepted: the 10
	 * raw ones, a's and c's are all b's, 7 of them waiting */
	assert_int_equal(send_seq(c, uvenv_addr(b), 21, 100), 0);
	run_until(&loop, never, NULL, 300);
	assert_int_equal(rb.count, 21);
	assert_int_equal(uvenv_in_count(b), 12);
	assert_int_equal(uvenv_in_waiting(b), 7);
	for (int i = 0; i < 10; i++) { /* none closed: they wait */
		assert_int_equal(recv(fds[i], x, sizeof x, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
		close(fds[i]);
	}
	/* the flood gone, c's connection is accepted and heard */
	rb.want = 22;
	assert_true(run_until(&loop, rx_has_want, &rb, 5000));
	assert_int_equal(rc.downs, 0);
	assert_int_equal(rc.ups, 1);
	w.log = &log;
	w.needle = "connections waited: too many TLS handshakes in progress\" times=";
	if (!run_until(&loop, log_has, &w, 5000))
		fail_msg("no pause said: %s", logbuf_text(&log));
	/* said with what the handshakes since the last sweep came to
	 * (issue 18) */
	w.needle = " ended_undone=";
	if (!run_until(&loop, log_has, &w, 5000))
		fail_msg("the pause without its handshakes: %s", logbuf_text(&log));
	assert_non_null(strstr(logbuf_text(&log), " done="));
	assert_non_null(strstr(logbuf_text(&log), " done_ms_avg="));

	teardown(&loop, (struct uvenv *[]){a, b, c, NULL},
		 (const char *[]){dir_a, dir_b, dir_c, NULL});
	logbuf_close(&log);
}

/* Issue 18: a connection that waited for a handshake slot three
 * quarters of the handshake timeout is closed when its turn comes, not
 * served: its client gives up about when the handshake would be done. */
static void test_uvenv_handshake_waiting_too_long_is_closed(void **state)
{
	uv_loop_t loop;
	char dir_b[64], x[8];
	struct uvenv *b;
	struct logbuf log;
	struct log_wait w = {0};
	int holder, waiter;

	(void)state;
	make_tmpdir(dir_b, sizeof dir_b);
	logbuf_open(&log);
	uv_loop_init(&loop);
	b = open_env_cfg(&loop, dir_b, "127.0.0.1:0",
			 (struct uvenv_cfg){.log_out = log.f,
					    .log_level = ENV_LOG_INFO,
					    .handshakes_max = 1,
					    .handshake_timeout_ms = 4000});
	holder = raw_connect(uvenv_addr(b)); /* the one slot, no handshake */
	run_until(&loop, never, NULL, 100);
	waiter = raw_connect(uvenv_addr(b));
	run_until(&loop, never, NULL, 100);
	assert_int_equal(uvenv_in_count(b), 2);
	assert_int_equal(uvenv_in_waiting(b), 1);
	/* past 3 s (3/4 of 4 s), before the sweep's 4 s: the slot frees */
	run_until(&loop, never, NULL, 3200);
	assert_int_equal(uvenv_in_waiting(b), 1);
	close(holder);
	w.log = &log;
	w.needle = "reason=\"waited too long for a TLS handshake\"";
	if (!run_until(&loop, log_has, &w, 5000))
		fail_msg("not closed for its wait: %s", logbuf_text(&log));
	assert_int_equal(uvenv_in_waiting(b), 0);
	assert_int_equal(uvenv_in_count(b), 0);
	assert_int_equal(recv(waiter, x, sizeof x, 0), 0); /* closed, nothing said */
	close(waiter);
	teardown(&loop, (struct uvenv *[]){b, NULL}, (const char *[]){dir_b, NULL});
	logbuf_close(&log);
}

/* Autolock (issue 13): the node's TLS key is sealed on its disk with the
 * key the core gives (pki_lock); a new process starts with it locked (no
 * identity: pki_info CS_EAUTH) until pki_unlock gives the same key; a wrong
 * key changes nothing; pki_lock(NULL) writes it in the clear again. */
static void test_uvenv_autolock_seals_the_node_key(void **state)
{
	uv_loop_t loop;
	char dir[64], path[160];
	struct uvenv *a;
	struct env *ea;
	struct ca ca;
	struct env_identity me;
	struct env_blob none = {NULL, 0};
	uint8_t kek[32], wrong[32], head[8];
	FILE *f;

	(void)state;
	memset(kek, 7, sizeof kek);
	memset(wrong, 8, sizeof wrong);
	uv_loop_init(&loop);
	ca_make(&ca, 3, ID_CLUSTER);
	a = open_tmp_env(&loop, dir, sizeof dir, NULL, 0);
	ea = uvenv_env(a);
	enroll(a, &ca, ID_CLUSTER, 0xa7, ENV_ROLE_MANAGER);
	assert_int_equal(ea->ops->pki_lock(ea, kek), 0);
	snprintf(path, sizeof path, "%s/tls/node.key", dir);
	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
	fclose(f);
	assert_memory_equal(head, "CSWSEAL1", 8);
	assert_int_equal(ea->ops->pki_info(ea, &none, &me), 0); /* this process */
	close_env(&loop, a);

	a = open_env(&loop, dir, "127.0.0.1:0", NULL, 0);
	ea = uvenv_env(a);
	assert_int_equal(ea->ops->pki_info(ea, &none, &me), CS_EAUTH);
	assert_int_equal(ea->ops->pki_unlock(ea, wrong), CS_EAUTH);
	assert_int_equal(ea->ops->pki_info(ea, &none, &me), CS_EAUTH);
	assert_int_equal(ea->ops->pki_unlock(ea, kek), 0);
	assert_int_equal(ea->ops->pki_info(ea, &none, &me), 0);
	assert_int_equal(me.node_id, 0xa7);
	assert_int_equal(ea->ops->pki_lock(ea, NULL), 0);
	close_env(&loop, a);

	a = open_env(&loop, dir, "127.0.0.1:0", NULL, 0);
	ea = uvenv_env(a);
	assert_int_equal(ea->ops->pki_info(ea, &none, &me), 0);
	teardown(&loop, (struct uvenv *[]){a, NULL}, (const char *[]){dir, NULL});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uvenv_two_envs_exchange_1000_frames_in_order),
		cmocka_unit_test(test_uvenv_oversized_frame_closes_only_that_connection),
		cmocka_unit_test(test_uvenv_garbage_without_hello_is_rejected),
		cmocka_unit_test(
			test_uvenv_silent_connection_is_closed_after_hello_timeout),
		cmocka_unit_test(
			test_uvenv_half_sent_frame_is_closed_after_the_frame_deadline),
		cmocka_unit_test(test_uvenv_half_sent_frames_stay_under_the_global_bound),
		cmocka_unit_test(test_uvenv_frames_queued_past_their_ttl_are_dropped),
		cmocka_unit_test(test_uvenv_idle_buffers_give_room_longest_idle_first),
		cmocka_unit_test(test_uvenv_idle_connection_is_closed_and_redialled),
		cmocka_unit_test(test_uvenv_kept_peers_are_connected_without_frames),
		cmocka_unit_test(test_uvenv_unused_peers_are_forgotten),
		cmocka_unit_test(test_uvenv_state_files_are_private),
		cmocka_unit_test(test_uvenv_frames_before_listen_are_dropped),
		cmocka_unit_test(test_uvenv_redials_a_peer_that_starts_late),
		cmocka_unit_test(test_uvenv_send_limits_queue_size_and_addresses),
		cmocka_unit_test(test_uvenv_receiver_frame_limit_closes_connection),
		cmocka_unit_test(test_uvenv_open_rejects_bad_address_and_port_in_use),
		cmocka_unit_test(test_uvenv_timers_fire_in_order_stop_and_repeat),
		cmocka_unit_test(test_uvenv_timers_equal_deadlines_fifo_on_one_uv_timer),
		cmocka_unit_test(test_uvenv_clock_shared_by_envs_of_a_loop),
		cmocka_unit_test(test_uvenv_storage_same_handle_and_survives_reopen),
		cmocka_unit_test(
			test_uvenv_state_dir_of_another_version_is_refused_untouched),
		cmocka_unit_test(test_uvenv_corrupt_database_is_refused_untouched),
		cmocka_unit_test(test_uvenv_corrupt_agent_database_is_set_aside),
		cmocka_unit_test(test_uvenv_storage_opens_after_a_crash_with_wal_left),
		cmocka_unit_test(test_uvenv_log_lines_are_logfmt_and_filtered),
		cmocka_unit_test(test_uvenv_no_executor_and_random),
		cmocka_unit_test(test_uvenv_sender_is_who_the_certificate_names),
		cmocka_unit_test(test_uvenv_client_refuses_a_server_it_does_not_trust),
		cmocka_unit_test(test_uvenv_node_with_roots_sends_nothing_to_another_ca),
		cmocka_unit_test(test_uvenv_renewal_redials_and_files_private),
		cmocka_unit_test(test_uvenv_autolock_seals_the_node_key),
		cmocka_unit_test(test_uvenv_identity_files_checked_at_open),
		cmocka_unit_test(test_uvenv_dial_from_is_the_peer_address_seen),
		cmocka_unit_test(test_uvenv_sender_expires_with_the_certificate),
		cmocka_unit_test(test_uvenv_peer_checks_are_remembered_until_expiry),
		cmocka_unit_test(test_uvenv_wall_clock),
		cmocka_unit_test(test_uvenv_handshake_flood_is_bounded),
		cmocka_unit_test(test_uvenv_handshake_waiting_too_long_is_closed),
		cmocka_unit_test(test_uvenv_reply_answers_a_joiner_on_its_own_connection),
		cmocka_unit_test(test_uvenv_reply_finds_each_of_many_connections),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("uvenv", tests, NULL, NULL);
}
