/* bench_tls: full mutual TLS 1.3 handshakes per second on loopback, the
 * cost a node pays per new connection (a join, a redial, a flood).
 *
 * The server is a real uvenv (net/uvenv.c: accept, TLS 1.3 with its node
 * certificate, the client's certificate checked with pki_verify, the hello,
 * one frame delivered to its receive callback). The clients, on the same
 * loop, are libuv TCP sockets driven through net/tls with a node
 * certificate of the same CA; each checks the server's certificate with
 * pki_verify, sends its hello and one frame, and closes. BENCH_PARALLEL
 * clients run at once, each starting a new connection when its frame has
 * arrived, until BENCH_HANDSHAKES frames arrived.
 *
 * Two rounds: the same client certificate every time (a node redialing:
 * the server's check of it is remembered), then a new certificate on each
 * connection (issue 18: ten thousand agents reconnecting to a new leader,
 * which checks each certificate for the first time). A client shows its
 * leaf alone, as uvenv's clients do.
 *
 * Timed: from the first connect to the last frame received: TCP connect,
 * both sides of the handshake (X25519, Ed25519 signatures and their
 * checks), both pki_verify calls, the hello and frame, the close. Not
 * timed: making the CA, certificates and the env. Client and server share
 * one thread, so the figure is both sides' work on one core.
 *
 * Usage: bench_tls [N [P]]  (defaults 2000 handshakes a round, 16 at once). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/errors.h"
#include "core/pki.h"
#include "net/tls.h"
#include "net/uvenv.h"
#include "tests/support/benchutil.h"

enum {
	BENCH_HANDSHAKES = 2000,
	BENCH_HANDSHAKES_MAX = 100000, /* a certificate each in round 2 */
	BENCH_PARALLEL = 16,
	BENCH_PARALLEL_MAX = 256
};

struct bench;

struct client {
	struct bench *b;
	uv_tcp_t tcp;
	uv_connect_t connect;
	struct tls_conn *tls;
	uint64_t n; /* which connection of the round: its certificate */
	bool done;  /* its frame is written */
	bool live;  /* a handle open */
};

struct bench {
	uv_loop_t loop;
	struct uvenv *server;
	struct sockaddr_in sa;
	struct tls_ctx **ctxs; /* the clients' certificates, one a connection */
	size_t ctx_count;
	struct env_blob root;
	uint8_t root_der[PKI_DER_BYTES_MAX];
	uint64_t wanted, started, received, failed;
	struct client clients[BENCH_PARALLEL_MAX];
	size_t parallel;
	uint8_t rbuf[65536];
};

static void client_start(struct client *c);

static void client_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	struct bench *b = c->b;

	tls_conn_free(c->tls);
	c->tls = NULL;
	c->live = false;
	if (b->started < b->wanted && b->failed < 100)
		client_start(c);
}

static void client_fail(struct client *c, const char *why)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
		fprintf(stderr, "bench_tls: client: %s\n", why);
		c->b->failed++;
		uv_close((uv_handle_t *)&c->tcp, client_closed);
	}
}

/* Once its frame is in the kernel, a client is finished: it closes (the
 * server reads the frame, then the end). */
static void client_written(uv_write_t *req, int status)
{
	struct client *c = req->handle->data;

	free(req);
	if (c->done && !uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void client_push(struct client *c)
{
	size_t n = tls_out_pending(c->tls);
	uv_write_t *req;
	uv_buf_t buf;

	if (n == 0)
		return;
	req = malloc(sizeof *req + n);
	if (!req)
		abort();
	buf = uv_buf_init((char *)(req + 1),
			  (unsigned)tls_out_take(c->tls, (uint8_t *)(req + 1), n));
	if (uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, client_written) != 0)
		free(req);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = h->data;
	*buf = uv_buf_init((char *)c->b->rbuf, sizeof c->b->rbuf);
}

/* The handshake is done: check the server, then hello and one frame. */
static void client_send(struct client *c)
{
	uint8_t leaf[PKI_DER_BYTES_MAX], msg[64];
	struct env_blob lb = {leaf, 0};
	struct pki_cert pc;
	char why[PKI_WHY_BYTES];
	const char *addr = "127.0.0.1:1";
	size_t alen = strlen(addr);

	if (tls_peer_cert(c->tls, 0, leaf, sizeof leaf, &lb.len) != 0 ||
	    pki_verify(&lb, &c->b->root, 1, time(NULL), &pc, why) != 0) {
		client_fail(c, "server certificate refused");
		return;
	}
	msg[0] = msg[1] = msg[2] = 0;
	msg[3] = (uint8_t)(4 + alen);
	memcpy(msg + 4, "CSW1", 4);
	memcpy(msg + 8, addr, alen);
	memcpy(msg + 8 + alen, "\0\0\0\4ping", 8);
	if (tls_write(c->tls, msg, 8 + alen + 8, why) != 0) {
		client_fail(c, why);
		return;
	}
	client_push(c);
	c->done = true;
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;
	char why[TLS_WHY_BYTES];
	int rv;

	if (nread < 0) {
		if (!c->done)
			client_fail(c, uv_strerror((int)nread));
		else if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, client_closed);
		return;
	}
	if (nread == 0 || c->done)
		return;
	tls_feed(c->tls, (const uint8_t *)buf->base, (size_t)nread);
	rv = tls_handshake(c->tls, why);
	client_push(c);
	if (rv < 0)
		client_fail(c, why);
	else if (rv == 1)
		client_send(c);
}

static void client_connected(uv_connect_t *req, int status)
{
	struct client *c = req->data;
	char why[TLS_WHY_BYTES];

	if (status < 0) {
		client_fail(c, uv_strerror(status));
		return;
	}
	if (tls_conn_new(c->b->ctxs[c->n % c->b->ctx_count], &c->tls) != 0 ||
	    tls_handshake(c->tls, why) < 0) {
		client_fail(c, "tls");
		return;
	}
	client_push(c);
	uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
}

static void client_start(struct client *c)
{
	struct bench *b = c->b;

	c->n = b->started++;
	c->done = false;
	c->live = true;
	uv_tcp_init(&b->loop, &c->tcp);
	c->tcp.data = c;
	c->connect.data = c;
	if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&b->sa,
			   client_connected) != 0)
		client_fail(c, "connect");
}

/* The server got a client's frame, from a client it identified. */
static void server_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
			void *data)
{
	struct bench *b = data;
	struct env_identity id;

	env->ops->sender(env, &id);
	if (id.node_id == 0) {
		fprintf(stderr, "bench_tls: a client was not identified\n");
		b->failed++;
	}
	b->received++;
	if (b->received >= b->wanted)
		uv_stop(&b->loop);
}

/* A key seed of its own for each s: s's 8 bytes, then a fixed fill. */
static void seed_fill(uint8_t seed[PKI_SEED_BYTES], uint64_t s)
{
	for (int i = 0; i < PKI_SEED_BYTES; i++)
		seed[i] = i < 8 ? (uint8_t)(s >> (8 * i)) : (uint8_t)(i * 31 + 7);
}

/* count client configurations, each with a certificate of its own for
 * node 2.. signed by the bench's CA, showing its leaf alone. Returns 0. */
static int clients_make(struct bench *b, const struct env_blob *ca_kb, size_t count)
{
	uint8_t seed[PKI_SEED_BYTES], csr[PKI_DER_BYTES_MAX], key[PKI_DER_BYTES_MAX];
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t csr_len, key_len, cert_len;
	struct env_identity who = {.cluster_id = 9, .role = ENV_ROLE_WORKER};
	int64_t now = time(NULL);
	char why[PKI_WHY_BYTES];

	b->ctxs = calloc(count, sizeof *b->ctxs);
	if (!b->ctxs)
		return -1;
	b->ctx_count = count;
	for (size_t i = 0; i < count; i++) {
		struct env_blob rb;
		seed_fill(seed, 2 + i);
		who.node_id = 2 + i;
		pki_key_der(seed, key, sizeof key, &key_len);
		pki_csr_create(seed, csr, sizeof csr, &csr_len);
		rb = (struct env_blob){csr, csr_len};
		if (pki_sign(&b->root, ca_kb, &rb, &who, now - 60, now + 3600, 2 + i,
			     cert, sizeof cert, &cert_len, why) != 0 ||
		    tls_ctx_new(false, &(struct env_blob){key, key_len},
				&(struct env_blob){cert, cert_len}, NULL, 0, &b->ctxs[i],
				why) != 0) {
			fprintf(stderr, "bench_tls: client: %s\n", why);
			return -1;
		}
	}
	return 0;
}

static void clients_free(struct bench *b)
{
	for (size_t i = 0; i < b->ctx_count; i++)
		tls_ctx_free(b->ctxs[i]);
	free(b->ctxs);
	b->ctxs = NULL;
	b->ctx_count = 0;
}

/* One round of b->wanted handshakes; its seconds, or a negative value. */
static double round_run(struct bench *b)
{
	double t0 = bench_now();

	b->started = b->received = b->failed = 0;
	for (size_t i = 0; i < b->parallel && b->started < b->wanted; i++) {
		b->clients[i].b = b;
		client_start(&b->clients[i]);
	}
	uv_run(&b->loop, UV_RUN_DEFAULT);
	if (b->failed || b->received < b->wanted) {
		fprintf(stderr,
			"bench_tls: %" PRIu64 " failed, %" PRIu64 " of %" PRIu64 "\n",
			b->failed, b->received, b->wanted);
		return -1;
	}
	return bench_now() - t0;
}

/* Closes what clients still hold (after uv_stop) and lets the loop free
 * it, starting nothing new. */
static void clients_close(struct bench *b)
{
	uint64_t wanted = b->wanted;

	for (size_t i = 0; i < b->parallel; i++)
		if (b->clients[i].live &&
		    !uv_is_closing((uv_handle_t *)&b->clients[i].tcp))
			uv_close((uv_handle_t *)&b->clients[i].tcp, client_closed);
	b->wanted = 0; /* client_closed starts none */
	for (size_t i = 0; i < b->parallel; i++)
		while (b->clients[i].live)
			uv_run(&b->loop, UV_RUN_ONCE);
	b->wanted = wanted;
}

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	uint8_t seed[PKI_SEED_BYTES], ca_key[PKI_DER_BYTES_MAX], csr[PKI_DER_BYTES_MAX];
	uint8_t cert[PKI_DER_BYTES_MAX];
	size_t root_len, ca_key_len, csr_len, cert_len;
	struct env_blob ca_kb;
	struct env_identity who = {.cluster_id = 9, .role = ENV_ROLE_MANAGER};
	char dir[] = "/tmp/bench_tls-XXXXXX", err[256];
	int64_t now = time(NULL);
	struct env *env;
	double secs;
	int rv = 1;

	b->wanted = argc > 1 ? strtoull(argv[1], NULL, 10) : BENCH_HANDSHAKES;
	b->parallel = argc > 2 ? strtoull(argv[2], NULL, 10) : BENCH_PARALLEL;
	if (b->wanted == 0 || b->wanted > BENCH_HANDSHAKES_MAX || b->parallel == 0 ||
	    b->parallel > BENCH_PARALLEL_MAX) {
		fprintf(stderr, "usage: bench_tls [N <= %d [P <= %d]]\n",
			BENCH_HANDSHAKES_MAX, BENCH_PARALLEL_MAX);
		return 2;
	}
	if (!mkdtemp(dir))
		return 1;
	uv_loop_init(&b->loop);

	/* the CA, the server (through its env's own ops), the clients' cert */
	seed_fill(seed, 1);
	if (pki_ca_create(seed, 9, now - 60, now + 86400, 1, b->root_der,
			  sizeof b->root_der, &root_len, ca_key, sizeof ca_key,
			  &ca_key_len) != 0)
		return 1;
	b->root = (struct env_blob){b->root_der, root_len};
	ca_kb = (struct env_blob){ca_key, ca_key_len};
	if (uvenv_open(&(struct uvenv_cfg){.loop = &b->loop,
					   .listen_addr = "127.0.0.1:0",
					   .state_dir = dir,
					   .name = "bench",
					   .log_level = ENV_LOG_WARN},
		       &b->server, err, sizeof err) != 0) {
		fprintf(stderr, "bench_tls: %s\n", err);
		return 1;
	}
	env = uvenv_env(b->server);
	who.node_id = 1;
	if (env->ops->pki_csr(env, csr, sizeof csr, &csr_len) != 0 ||
	    env->ops->pki_sign(env, &b->root, &ca_kb, &(struct env_blob){csr, csr_len},
			       &who, 3600 * 1000, cert, sizeof cert, &cert_len) != 0 ||
	    env->ops->pki_install(env, &(struct env_blob){cert, cert_len}, &b->root, 1) !=
		    0) {
		fprintf(stderr, "bench_tls: server enrolment failed\n");
		return 1;
	}
	uv_ip4_addr("127.0.0.1", atoi(strrchr(uvenv_addr(b->server), ':') + 1), &b->sa);
	env->ops->listen(env, server_recv, NULL, b);

	/* round 1: one client certificate, again and again */
	if (clients_make(b, &ca_kb, 1) != 0 || (secs = round_run(b)) < 0)
		goto out;
	printf("tls-handshakes: %.0f/s (%" PRIu64 " full mutual TLS 1.3 handshakes on "
	       "loopback, Ed25519 certificates, %zu at once, client and server on one "
	       "loop and one core; each: TCP connect, handshake, both certificates "
	       "checked with pki_verify (the server's check of the one client "
	       "certificate remembered), hello and one frame, close; %.2fs)\n",
	       (double)b->wanted / secs, b->wanted, b->parallel, secs);
	clients_close(b);
	clients_free(b);

	/* round 2: a certificate the server never saw on each connection */
	if (clients_make(b, &ca_kb, b->wanted) != 0 || (secs = round_run(b)) < 0)
		goto out;
	printf("tls-handshakes-new-peers: %.0f/s (%" PRIu64 " handshakes as above, each "
	       "client with a certificate the server checks for the first time, as "
	       "agents reconnecting to a new leader; making the certificates not "
	       "timed; %.2fs)\n",
	       (double)b->wanted / secs, b->wanted, secs);
	rv = 0;
out:
	clients_close(b);
	b->wanted = 0;
	uvenv_close(b->server);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uv_loop_close(&b->loop);
	clients_free(b);
	bench_rm_tree(dir);
	return rv;
}
