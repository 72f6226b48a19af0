/* Tests of net/resolver.c: the DNS codec against hostile input (truncated,
 * looping pointers, huge counts, random bytes), the answers for each kind of
 * name, and real round trips on 127.0.0.1 (UDP and TCP, forwarding to a fake
 * upstream that answers, lies, or says nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/errors.h"
#include "net/resolver.h"
#include "tests/support/netnschild.h"

/* ---------------------------------------------------------------- helpers */

/* a query for name (dotted) of qtype, id, RD set */
static size_t make_query(uint8_t *buf, size_t cap, uint16_t id, const char *name,
			 uint16_t qtype)
{
	size_t off = 12;
	memset(buf, 0, 12);
	buf[0] = (uint8_t)(id >> 8), buf[1] = (uint8_t)id;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* one question */
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		assert_true(off + 1 + l < cap);
		buf[off++] = (uint8_t)l;
		memcpy(buf + off, p, l);
		off += l;
		p += l;
		if (*p == '.')
			p++;
	}
	buf[off++] = 0;
	buf[off++] = (uint8_t)(qtype >> 8), buf[off++] = (uint8_t)qtype;
	buf[off++] = 0, buf[off++] = 1;
	return off;
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* the A records of an answer, as text, "a,b,c"; the answer's rcode and
 * count checked by the caller */
static void answer_addrs(const uint8_t *msg, size_t len, size_t qend, char *out,
			 size_t cap)
{
	size_t n = g16(msg + 6), off = qend;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char a[INET_ADDRSTRLEN];
		assert_true(off + 16 <= len);
		assert_int_equal(g16(msg + off), 0xc00c);
		assert_int_equal(g16(msg + off + 2), 1);
		assert_int_equal(g16(msg + off + 10), 4);
		inet_ntop(AF_INET, msg + off + 12, a, sizeof a);
		if (i)
			strncat(out, ",", cap - strlen(out) - 1);
		strncat(out, a, cap - strlen(out) - 1);
		off += 16;
	}
	assert_int_equal(off, len);
}

/* ---------------------------------------------------------------- codec */

static void test_resolver_parses_a_query(void **state)
{
	uint8_t q[300];
	struct resolver_question qq;
	enum resolver_rcode rc;
	(void)state;
	size_t n = make_query(q, sizeof q, 0x1234, "Tasks.WEB", RESOLVER_TYPE_A);
	assert_int_equal(resolver_parse_query(q, n, &qq, &rc), 0);
	assert_int_equal(qq.id, 0x1234);
	assert_string_equal(qq.name, "tasks.web");
	assert_false(qq.name_odd);
	assert_int_equal(qq.qtype, RESOLVER_TYPE_A);
	assert_int_equal(qq.qclass, RESOLVER_CLASS_IN);
	assert_int_equal(qq.end, n);
	/* the root */
	n = make_query(q, sizeof q, 7, "", RESOLVER_TYPE_A);
	assert_int_equal(resolver_parse_query(q, n, &qq, &rc), 0);
	assert_string_equal(qq.name, "");
}

static void test_resolver_rejects_truncations(void **state)
{
	uint8_t q[300];
	struct resolver_question qq;
	enum resolver_rcode rc;
	(void)state;
	size_t n = make_query(q, sizeof q, 1, "web.app", RESOLVER_TYPE_A);
	/* every prefix of a valid query is refused, without reading past it
	 * (ASan watches: each prefix in a buffer of exactly that size) */
	for (size_t k = 0; k < n; k++) {
		uint8_t *p = malloc(k ? k : 1);
		memcpy(p, q, k);
		assert_int_equal(resolver_parse_query(p, k, &qq, &rc), CS_ECORRUPT);
		assert_int_equal(rc, k < 12 ? RESOLVER_NOERROR : RESOLVER_FORMERR);
		free(p);
	}
}

static void test_resolver_rejects_pointer_loops_and_bad_labels(void **state)
{
	struct resolver_question qq;
	enum resolver_rcode rc;
	(void)state;
	/* a pointer to itself */
	uint8_t self[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
	assert_int_equal(resolver_parse_query(self, sizeof self, &qq, &rc), CS_ECORRUPT);
	assert_int_equal(rc, RESOLVER_FORMERR);
	/* a label, then a pointer back to it: a loop */
	uint8_t loop[] = {0, 1, 0, 0,	0,    1,  0, 0, 0, 0,
			  0, 0, 1, 'a', 0xc0, 12, 0, 1, 0, 1};
	assert_int_equal(resolver_parse_query(loop, sizeof loop, &qq, &rc), CS_ECORRUPT);
	/* a pointer into the header */
	uint8_t hdr[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 2, 0, 1, 0, 1};
	assert_int_equal(resolver_parse_query(hdr, sizeof hdr, &qq, &rc), CS_ECORRUPT);
	/* a pointer past the end */
	uint8_t far[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 1, 0, 1};
	assert_int_equal(resolver_parse_query(far, sizeof far, &qq, &rc), CS_ECORRUPT);
	/* a cut pointer */
	uint8_t cut[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0};
	assert_int_equal(resolver_parse_query(cut, sizeof cut, &qq, &rc), CS_ECORRUPT);
	/* an extended label type (01xxxxxx) */
	uint8_t ext[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 'a', 0, 0, 1, 0, 1};
	assert_int_equal(resolver_parse_query(ext, sizeof ext, &qq, &rc), CS_ECORRUPT);
	/* a name longer than 255 bytes on the wire */
	uint8_t big[12 + 300 + 4];
	memset(big, 0, sizeof big);
	big[5] = 1;
	for (size_t i = 0; i < 5; i++) {
		big[12 + i * 60] = 59;
		memset(big + 13 + i * 60, 'a', 59);
	}
	assert_int_equal(resolver_parse_query(big, sizeof big, &qq, &rc), CS_ECORRUPT);
	/* a dot inside a label: parsed, never ours */
	uint8_t dot[] = {0, 1, 0,   0,	 0,   1, 0, 0, 0, 0, 0,
			 0, 3, 'w', '.', 'b', 0, 0, 1, 0, 1};
	assert_int_equal(resolver_parse_query(dot, sizeof dot, &qq, &rc), 0);
	assert_true(qq.name_odd);
}

static void test_resolver_counts_and_flags(void **state)
{
	uint8_t q[300], out[512];
	struct resolver_question qq;
	enum resolver_rcode rc;
	(void)state;
	size_t n = make_query(q, sizeof q, 9, "web", RESOLVER_TYPE_A);
	/* huge other counts are never followed */
	q[6] = q[7] = q[8] = q[9] = q[10] = q[11] = 0xff;
	assert_int_equal(resolver_parse_query(q, n, &qq, &rc), 0);
	/* two questions (or 65535): FORMERR, and the answer says so */
	q[4] = 0xff, q[5] = 0xff;
	assert_int_equal(resolver_parse_query(q, n, &qq, &rc), CS_ECORRUPT);
	assert_int_equal(rc, RESOLVER_FORMERR);
	size_t k = resolver_encode_error(q, n, RESOLVER_SERVFAIL, out, sizeof out);
	assert_int_equal(k, 12);
	assert_int_equal(g16(out), 9);
	assert_int_equal(out[3] & 0xf, RESOLVER_FORMERR);
	assert_int_equal(g16(out + 4), 0);
	q[4] = 0, q[5] = 1;
	/* a response is never answered */
	q[2] |= 0x80;
	assert_int_equal(resolver_parse_query(q, n, &qq, &rc), CS_ECORRUPT);
	assert_int_equal(rc, RESOLVER_NOERROR);
	assert_int_equal(resolver_encode_error(q, n, RESOLVER_SERVFAIL, out, sizeof out),
			 0);
	/* another opcode (STATUS): NOTIMP */
	q[2] = 0x10;
	assert_int_equal(resolver_parse_query(q, n, &qq, &rc), CS_ECORRUPT);
	assert_int_equal(rc, RESOLVER_NOTIMP);
	k = resolver_encode_error(q, n, RESOLVER_SERVFAIL, out, sizeof out);
	assert_int_equal(out[3] & 0xf, RESOLVER_NOTIMP);
	assert_int_equal(out[2] & 0x80, 0x80);
}

static void test_resolver_survives_random_bytes(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	struct resolver_question qq;
	uint8_t out[512];
	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		len = (size_t)(x % 80);
		uint8_t *p = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			p[i] = (uint8_t)x;
		}
		if (len > 5)
			p[2] &= 0x7f, p[4] = 0, p[5] = 1; /* mostly a query: go deep */
		if (len > 13 && (x & 1))
			p[12] = 0xc0 | (p[12] & 1); /* a pointer, often */
		(void)resolver_parse_query(p, len, &qq, NULL);
		(void)resolver_encode_error(p, len, RESOLVER_SERVFAIL, out, sizeof out);
		(void)resolver_is_reply_to(p, len, &qq);
		free(p);
	}
}

static void test_resolver_reads_resolv_conf(void **state)
{
	char path[] = "/tmp/test_resolver_XXXXXX";
	char out[RESOLVER_UPSTREAMS_MAX][46];
	int skipped = -1;
	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text =
		"# comment\nsearch example.org\nnameserver 10.0.0.1\nnameserver ::1\n"
		"nameserver  192.168.1.1 \nnameserver bogus\nnameserver 8.8.8.8\nnameserver 1.1.1.1\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(resolver_read_resolv_conf(path, out, &skipped), 3);
	assert_string_equal(out[0], "10.0.0.1");
	assert_string_equal(out[1], "192.168.1.1");
	assert_string_equal(out[2], "8.8.8.8");
	assert_int_equal(skipped, 3); /* ::1, bogus, and 1.1.1.1 past the third */
	unlink(path);
	assert_int_equal(
		resolver_read_resolv_conf("/nonexistent/resolv.conf", out, &skipped),
		CS_ENOENT);
}

/* ---------------------------------------------------------------- answers */

static const char *const web_aliases[] = {"www", NULL};
static const char *const web_backends[] = {"10.0.3.5", "10.0.3.6", NULL};
static const char *const db_backends[] = {"10.0.3.7", "10.0.3.8", "10.0.3.9", NULL};
static const char *big_backends[41];
static char big_text[40][16];

static struct env_net_state app_state(struct env_net_service *svcs)
{
	for (int i = 0; i < 40; i++) {
		snprintf(big_text[i], sizeof big_text[i], "10.0.4.%u",
			 (unsigned)(i + 1) & 0xffu);
		big_backends[i] = big_text[i];
	}
	big_backends[40] = NULL;
	svcs[0] = (struct env_net_service){.service_id = 1,
					   .name = "web",
					   .aliases = web_aliases,
					   .vip = "10.0.3.2",
					   .backends = web_backends};
	svcs[1] = (struct env_net_service){
		.service_id = 2, .name = "db", .vip = NULL, .backends = db_backends};
	svcs[2] = (struct env_net_service){
		.service_id = 3, .name = "idle", .vip = "10.0.3.3", .backends = NULL};
	svcs[3] = (struct env_net_service){
		.service_id = 4, .name = "big", .vip = NULL, .backends = big_backends};
	struct env_net_state st = {.network_id = 7,
				   .name = "app",
				   .subnet = "127.0.0.0/8",
				   .gateway = "127.0.0.1",
				   .services = svcs,
				   .service_count = 4};
	return st;
}

struct fixture {
	uv_loop_t loop;
	struct resolver *r;
};

static int fixture_up(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct resolver_config cfg = {.port = 0};
	struct env_net_service svcs[4];
	struct env_net_state st = app_state(svcs);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(resolver_start(&f->loop, &cfg, &f->r), 0);
	assert_int_equal(resolver_set(f->r, &st), 0);
	assert_true(resolver_port(f->r, 7) != 0);
	*state = f;
	return 0;
}

static int fixture_down(void **state)
{
	struct fixture *f = *state;
	resolver_stop(f->r);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

/* ask network 7 for name; returns the answer's length (0: not ours) */
static size_t ask(struct fixture *f, const char *name, uint16_t qtype, uint8_t *out,
		  size_t cap, size_t *qend)
{
	uint8_t q[300];
	size_t n = make_query(q, sizeof q, 0x4242, name, qtype);
	*qend = n;
	return resolver_answer_local(f->r, 7, q, n, out, cap);
}

static void test_resolver_answers_vip_aliases_and_tasks(void **state)
{
	struct fixture *f = *state;
	uint8_t out[512];
	char addrs[1024];
	size_t qend, k;

	k = ask(f, "web", RESOLVER_TYPE_A, out, sizeof out, &qend);
	assert_true(k > 0);
	assert_int_equal(g16(out), 0x4242);
	assert_int_equal(g16(out + 2), 0x8580); /* QR AA RD RA, NOERROR */
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.2");
	assert_int_equal(g16(out + qend + 6) << 16 | g16(out + qend + 8),
			 RESOLVER_TTL_VIP_S);

	k = ask(f, "WWW.app.", RESOLVER_TYPE_A, out, sizeof out,
		&qend); /* alias, any case, network suffix */
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.2");

	k = ask(f, "tasks.web", RESOLVER_TYPE_A, out, sizeof out, &qend);
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.5,10.0.3.6");
	assert_int_equal(g16(out + qend + 6) << 16 | g16(out + qend + 8),
			 RESOLVER_TTL_TASKS_S);

	k = ask(f, "tasks.www", RESOLVER_TYPE_A, out, sizeof out, &qend);
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.5,10.0.3.6");
	k = ask(f, "tasks.web", RESOLVER_TYPE_A, out, sizeof out, &qend);
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.6,10.0.3.5"); /* rotated: its second answer */

	/* a VIP with no running task still answers its VIP */
	k = ask(f, "idle", RESOLVER_TYPE_A, out, sizeof out, &qend);
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.3");
	k = ask(f, "tasks.idle", RESOLVER_TYPE_A, out, sizeof out, &qend);
	assert_int_equal(g16(out + 2) & 0xf, RESOLVER_NOERROR);
	assert_int_equal(g16(out + 6), 0);
}

static void test_resolver_dnsrr_rotates(void **state)
{
	struct fixture *f = *state;
	uint8_t out[512];
	char addrs[1024];
	size_t qend, k;
	const char *want[] = {"10.0.3.7,10.0.3.8,10.0.3.9", "10.0.3.8,10.0.3.9,10.0.3.7",
			      "10.0.3.9,10.0.3.7,10.0.3.8", "10.0.3.7,10.0.3.8,10.0.3.9"};
	for (int i = 0; i < 4; i++) {
		k = ask(f, "db", RESOLVER_TYPE_A, out, sizeof out, &qend);
		answer_addrs(out, k, qend, addrs, sizeof addrs);
		assert_string_equal(addrs, want[i]);
	}
}

static void test_resolver_aaaa_and_unknown(void **state)
{
	struct fixture *f = *state;
	uint8_t out[512];
	size_t qend, k;
	k = ask(f, "web", RESOLVER_TYPE_AAAA, out, sizeof out, &qend);
	assert_int_equal(k, qend); /* no records */
	assert_int_equal(g16(out + 2) & 0xf, RESOLVER_NOERROR);
	assert_int_equal(g16(out + 6), 0);
	assert_int_equal(ask(f, "example.org", RESOLVER_TYPE_A, out, sizeof out, &qend),
			 0);
	assert_int_equal(ask(f, "tasks.nothere", RESOLVER_TYPE_A, out, sizeof out, &qend),
			 0);
	assert_int_equal(ask(f, "web.otherapp", RESOLVER_TYPE_A, out, sizeof out, &qend),
			 0);
	/* another network's id: nothing */
	uint8_t q[64];
	size_t n = make_query(q, sizeof q, 1, "web", RESOLVER_TYPE_A);
	assert_int_equal(resolver_answer_local(f->r, 8, q, n, out, sizeof out), 0);
}

static void test_resolver_truncates_with_tc_over_udp(void **state)
{
	struct fixture *f = *state;
	uint8_t out[RESOLVER_MSG_BYTES_MAX];
	size_t qend, k;
	k = ask(f, "big", RESOLVER_TYPE_A, out, RESOLVER_UDP_REPLY_BYTES, &qend);
	assert_true(k <= RESOLVER_UDP_REPLY_BYTES);
	assert_int_equal(g16(out + 2) & 0x0200, 0x0200); /* TC */
	assert_int_equal(g16(out + 6), (RESOLVER_UDP_REPLY_BYTES - qend) / 16);
	k = ask(f, "big", RESOLVER_TYPE_A, out, sizeof out, &qend);
	assert_int_equal(g16(out + 2) & 0x0200, 0);
	assert_int_equal(g16(out + 6), 40);
	assert_int_equal(k, qend + 40 * 16);
}

static void test_resolver_set_replaces_and_rejects(void **state)
{
	struct fixture *f = *state;
	uint8_t out[512];
	char addrs[64];
	size_t qend, k;
	const char *const one[] = {"10.0.3.6", NULL};
	const char *const bad[] = {"10.0.3.6; rm", NULL};
	struct env_net_service s[] = {
		{.service_id = 1, .name = "web", .vip = NULL, .backends = one}};
	struct env_net_state st = {.network_id = 7,
				   .name = "app",
				   .gateway = "127.0.0.1",
				   .services = s,
				   .service_count = 1};
	uint16_t port = resolver_port(f->r, 7);
	assert_int_equal(resolver_set(f->r, &st), 0);
	assert_int_equal(resolver_port(f->r, 7), port); /* same socket */
	k = ask(f, "web", RESOLVER_TYPE_A, out, sizeof out, &qend);
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.6"); /* now dnsrr */
	assert_int_equal(ask(f, "db", RESOLVER_TYPE_A, out, sizeof out, &qend), 0);
	/* a bad state changes nothing */
	s[0].backends = bad;
	assert_int_equal(resolver_set(f->r, &st), CS_EINVAL);
	k = ask(f, "web", RESOLVER_TYPE_A, out, sizeof out, &qend);
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.6");
	/* a listen address that is not this node's */
	st.network_id = 9;
	st.gateway = "192.0.2.1";
	s[0].backends = one;
	assert_int_equal(resolver_set(f->r, &st), CS_EEXEC);
	assert_int_equal(resolver_port(f->r, 9), 0);
	/* a move to an address that is not this node's fails and leaves the
	 * network answering where it was */
	st.network_id = 7;
	assert_int_equal(resolver_set_at(f->r, &st, "192.0.2.1"), CS_EEXEC);
	assert_int_equal(resolver_port(f->r, 7), port);
	k = ask(f, "web", RESOLVER_TYPE_A, out, sizeof out, &qend);
	answer_addrs(out, k, qend, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.6");
	/* a move that works */
	assert_int_equal(resolver_set_at(f->r, &st, "127.0.0.3"), 0);
	assert_true(resolver_port(f->r, 7) != 0);
	/* "." is no service name (it would answer for the root) */
	s[0].name = ".";
	assert_int_equal(resolver_set(f->r, &st), CS_EINVAL);
	s[0].name = "web";
	resolver_remove(f->r, 7);
	assert_int_equal(resolver_port(f->r, 7), 0);
	resolver_remove(f->r, 7); /* unknown: fine */
}

/* ---------------------------------------------------------------- wire */

enum upstream_mode { UP_ANSWER, UP_LIE_THEN_ANSWER, UP_SILENT };

struct wire {
	uv_loop_t loop;
	struct resolver *r;
	int up; /* the fake upstream's socket */
	uint16_t up_port;
	enum upstream_mode mode;
	int up_queries;		/* queries it saw */
	struct resolver *extra; /* a test's own, stopped by wire_down */
};

static int udp_socket_on(const char *ip, uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof a;
	assert_true(fd >= 0);
	inet_pton(AF_INET, ip, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* the fake upstream: answers "A 192.0.2.99" for any question, after a
 * reply with a wrong id when it lies */
static void upstream_serve(struct wire *w)
{
	uint8_t buf[1024];
	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	ssize_t n = recvfrom(w->up, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
	if (n < 12)
		return;
	w->up_queries++;
	if (w->mode == UP_SILENT)
		return;
	buf[2] |= 0x80, buf[3] = 0x80; /* QR, RA, NOERROR */
	buf[7] = 1;		       /* one answer */
	uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 99};
	memcpy(buf + n, rr, sizeof rr);
	if (w->mode == UP_LIE_THEN_ANSWER) {
		buf[0] ^= 0xff; /* a wrong id first, another address: ignored */
		buf[n + sizeof rr - 1] = 66;
		sendto(w->up, buf, (size_t)n + sizeof rr, 0, (struct sockaddr *)&from,
		       fl);
		buf[0] ^= 0xff;
		buf[n + sizeof rr - 1] = 99;
	}
	sendto(w->up, buf, (size_t)n + sizeof rr, 0, (struct sockaddr *)&from, fl);
}

/* run the loop and the fake upstream until fd has something to read;
 * false after ~10 s of nothing (the test then fails) */
static bool pump_until_readable(struct wire *w, int fd)
{
	for (int i = 0; i < 1000; i++) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = w->up, .events = POLLIN}};
		uv_run(&w->loop, UV_RUN_NOWAIT);
		if (poll(p, 2, 10) > 0) {
			if (p[1].revents & POLLIN)
				upstream_serve(w);
			if (p[0].revents & POLLIN)
				return true;
		}
	}
	return false;
}

static int wire_up(void **state)
{
	struct wire *w = calloc(1, sizeof *w);
	char upstream[32];
	struct env_net_service svcs[4];
	struct env_net_state st = app_state(svcs);
	struct env_net_state other = {
		.network_id = 8, .name = "other", .gateway = "127.0.0.2"};
	assert_int_equal(uv_loop_init(&w->loop), 0);
	w->up = udp_socket_on("127.0.0.1", &w->up_port);
	snprintf(upstream, sizeof upstream, "127.0.0.1:%u", w->up_port);
	const char *ups[] = {upstream, NULL};
	struct resolver_config cfg = {
		.port = 0, .upstreams = ups, .forward_timeout_ms = 50};
	assert_int_equal(resolver_start(&w->loop, &cfg, &w->r), 0);
	assert_int_equal(resolver_set(w->r, &st), 0);
	assert_int_equal(resolver_set(w->r, &other), 0);
	*state = w;
	return 0;
}

static int wire_down(void **state)
{
	struct wire *w = *state;
	if (w->extra)
		resolver_stop(w->extra); /* a failed assert left it running */
	resolver_stop(w->r);
	assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	close(w->up);
	free(w);
	return 0;
}

/* one UDP query to network net_id's resolver; the answer in out */
static ssize_t udp_ask(struct wire *w, uint64_t net_id, const char *gw, const char *name,
		       uint16_t id, uint8_t *out, size_t cap)
{
	uint8_t q[300];
	uint16_t myport;
	int fd = udp_socket_on("127.0.0.1", &myport);
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons(resolver_port(w->r, net_id))};
	inet_pton(AF_INET, gw, &to.sin_addr);
	size_t n = make_query(q, sizeof q, id, name, RESOLVER_TYPE_A);
	assert_int_equal(sendto(fd, q, n, 0, (struct sockaddr *)&to, sizeof to),
			 (ssize_t)n);
	assert_true(pump_until_readable(w, fd));
	ssize_t k = recv(fd, out, cap, 0);
	close(fd);
	return k;
}

static void test_resolver_udp_round_trip_local_and_forwarded(void **state)
{
	struct wire *w = *state;
	uint8_t out[1024];
	char addrs[256];
	ssize_t k = udp_ask(w, 7, "127.0.0.1", "tasks.web", 0x1111, out, sizeof out);
	assert_true(k > 12);
	assert_int_equal(g16(out), 0x1111);
	answer_addrs(out, (size_t)k, 12 + 11 + 4, addrs, sizeof addrs);
	assert_string_equal(addrs, "10.0.3.5,10.0.3.6");
	assert_int_equal(w->up_queries, 0);

	/* not ours: forwarded, the answer relayed with the client's id */
	k = udp_ask(w, 7, "127.0.0.1", "example.org", 0x2222, out, sizeof out);
	assert_int_equal(w->up_queries, 1);
	assert_int_equal(g16(out), 0x2222);
	assert_int_equal(g16(out + 6), 1);
	assert_int_equal(out[k - 4], 192);
	assert_int_equal(out[k - 1], 99);
}

static void test_resolver_scopes_names_by_network(void **state)
{
	struct wire *w = *state;
	uint8_t out[1024];
	/* network 8 (on 127.0.0.2) has no "web": it goes upstream */
	ssize_t k = udp_ask(w, 8, "127.0.0.2", "web", 0x3333, out, sizeof out);
	assert_int_equal(w->up_queries, 1);
	assert_int_equal(g16(out), 0x3333);
	assert_int_equal(out[k - 1], 99);
}

static void test_resolver_ignores_a_wrong_id(void **state)
{
	struct wire *w = *state;
	uint8_t out[1024];
	w->mode = UP_LIE_THEN_ANSWER;
	ssize_t k = udp_ask(w, 7, "127.0.0.1", "example.org", 0x4444, out, sizeof out);
	assert_int_equal(g16(out), 0x4444);
	assert_int_equal(g16(out + 2) & 0xf, RESOLVER_NOERROR);
	assert_int_equal(out[k - 1], 99);
}

static void test_resolver_servfail_when_upstream_silent(void **state)
{
	struct wire *w = *state;
	uint8_t out[1024];
	w->mode = UP_SILENT;
	ssize_t k = udp_ask(w, 7, "127.0.0.1", "example.org", 0x5555, out, sizeof out);
	assert_true(k >= 12);
	assert_int_equal(g16(out), 0x5555);
	assert_int_equal(g16(out + 2) & 0xf, RESOLVER_SERVFAIL);
	assert_int_equal(w->up_queries, 1);
}

struct captured {
	int lines;
	enum env_log_level lvl;
	char last[512];
};

static void capture_log(void *data, enum env_log_level lvl, const char *msg)
{
	struct captured *c = data;
	c->lines++;
	c->lvl = lvl;
	snprintf(c->last, sizeof c->last, "%s", msg);
}

static void test_resolver_no_upstream_servfails_and_logs_one_field(void **state)
{
	struct wire *w = *state;
	struct captured cap = {0};
	struct resolver_config cfg = {.port = 0, .log = capture_log, .log_data = &cap};
	struct env_net_state st = {
		.network_id = 5, .name = "lonely", .gateway = "127.0.0.4"};
	struct resolver *r;
	uint8_t q[64], out[512];
	uint16_t myport;
	assert_int_equal(resolver_start(&w->loop, &cfg, &r), 0);
	w->extra = r;
	assert_int_equal(resolver_set(r, &st), 0);
	int fd = udp_socket_on("127.0.0.1", &myport);
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons(resolver_port(r, 5))};
	inet_pton(AF_INET, "127.0.0.4", &to.sin_addr);
	/* a name with a quote and a backslash in a label */
	size_t n = make_query(q, sizeof q, 0x7777, "a\"b\\c", RESOLVER_TYPE_A);
	assert_int_equal(sendto(fd, q, n, 0, (struct sockaddr *)&to, sizeof to),
			 (ssize_t)n);
	assert_true(pump_until_readable(w, fd));
	ssize_t k = recv(fd, out, sizeof out, 0);
	close(fd);
	assert_true(k >= 12);
	assert_int_equal(g16(out), 0x7777);
	assert_int_equal(g16(out + 2) & 0xf, RESOLVER_SERVFAIL);
	assert_int_equal(cap.lines, 1);
	assert_int_equal(cap.lvl, ENV_LOG_WARN);
	assert_string_equal(cap.last, "SERVFAIL for a?b?c: no upstream resolver");
	assert_int_equal(w->up_queries, 0);
}

static void test_resolver_tcp_carries_the_whole_answer(void **state)
{
	struct wire *w = *state;
	uint8_t q[2 + 300], out[2 + 2048] = {0};
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons(resolver_port(w->r, 7))};
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to),
			 0); /* the backlog accepts it */
	size_t n = make_query(q + 2, sizeof q - 2, 0x6666, "big", RESOLVER_TYPE_A);
	q[0] = (uint8_t)(n >> 8), q[1] = (uint8_t)n;
	/* in two pieces: the framing must not care */
	assert_int_equal(write(fd, q, 5), 5);
	uv_run(&w->loop, UV_RUN_NOWAIT);
	assert_int_equal(write(fd, q + 5, n + 2 - 5), (ssize_t)(n + 2 - 5));
	while (got < 2 || got < 2 + (size_t)g16(out)) {
		assert_true(pump_until_readable(w, fd));
		ssize_t k = read(fd, out + got, sizeof out - got);
		assert_true(k > 0);
		got += (size_t)k;
	}
	assert_int_equal(g16(out + 2), 0x6666);
	assert_int_equal(g16(out + 4) & 0x0200, 0); /* no TC */
	assert_int_equal(g16(out + 8), 40);
	assert_int_equal(got, 2 + n + 40 * 16);
	close(fd);
}

/* ---------------------------------------------------------------- port 0 */

/* In a namespace of its own whose ephemeral range is ten ports, three
 * taken by TCP sockets and three by UDP ones, a resolver on port 0 must
 * still find a port free for both TCP and UDP, round after round. Taking
 * TCP on the port UDP got, as the resolver did, failed about half the
 * rounds (and CI's run beside a loopback busy with connections: "address
 * already in use"). */
static int port_pick_child(void)
{
	static const uint16_t taken[] = {40000, 40001, 40002, 40003, 40004, 40005};
	/* the first three by TCP, the others by UDP */
	int fds[6];
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "w");
	if (s < 0 || !f)
		return 1;
	fputs("40000 40009\n", f);
	if (fclose(f))
		return 2;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return 3;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return 4;
	close(s);
	for (size_t i = 0; i < 6; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(taken[i])};
		inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
		fds[i] = socket(AF_INET, i < 3 ? SOCK_STREAM : SOCK_DGRAM, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a))
			return 5;
	}
	for (int round = 0; round < 16; round++) {
		uv_loop_t loop;
		struct resolver *r;
		struct resolver_config cfg = {.port = 0};
		struct env_net_state st = {
			.network_id = 7, .name = "app", .gateway = "127.0.0.1"};
		if (uv_loop_init(&loop) || resolver_start(&loop, &cfg, &r))
			return 6;
		int rc = resolver_set(r, &st);
		uint16_t port = resolver_port(r, 7);
		resolver_stop(r);
		if (uv_run(&loop, UV_RUN_DEFAULT) || uv_loop_close(&loop))
			return 7;
		if (rc || port < 40006 || port > 40009) {
			fprintf(stderr, "round %d: rc %d port %u\n", round, rc, port);
			return 8;
		}
	}
	for (size_t i = 0; i < 6; i++)
		close(fds[i]);
	return 0;
}

static void test_resolver_port_zero_finds_a_pair(void **state)
{
	(void)state;
	int status = netnschild_run(port_pick_child);
	if (status == NETNSCHILD_NO_RIGHT)
		skip(); /* no right to a network namespace here */
	assert_int_equal(status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolver_parses_a_query),
		cmocka_unit_test(test_resolver_rejects_truncations),
		cmocka_unit_test(test_resolver_rejects_pointer_loops_and_bad_labels),
		cmocka_unit_test(test_resolver_counts_and_flags),
		cmocka_unit_test(test_resolver_survives_random_bytes),
		cmocka_unit_test(test_resolver_reads_resolv_conf),
		cmocka_unit_test_setup_teardown(
			test_resolver_answers_vip_aliases_and_tasks, fixture_up,
			fixture_down),
		cmocka_unit_test_setup_teardown(test_resolver_dnsrr_rotates, fixture_up,
						fixture_down),
		cmocka_unit_test_setup_teardown(test_resolver_aaaa_and_unknown,
						fixture_up, fixture_down),
		cmocka_unit_test_setup_teardown(test_resolver_truncates_with_tc_over_udp,
						fixture_up, fixture_down),
		cmocka_unit_test_setup_teardown(test_resolver_set_replaces_and_rejects,
						fixture_up, fixture_down),
		cmocka_unit_test_setup_teardown(
			test_resolver_udp_round_trip_local_and_forwarded, wire_up,
			wire_down),
		cmocka_unit_test_setup_teardown(test_resolver_scopes_names_by_network,
						wire_up, wire_down),
		cmocka_unit_test_setup_teardown(test_resolver_ignores_a_wrong_id, wire_up,
						wire_down),
		cmocka_unit_test_setup_teardown(
			test_resolver_servfail_when_upstream_silent, wire_up, wire_down),
		cmocka_unit_test_setup_teardown(
			test_resolver_no_upstream_servfails_and_logs_one_field, wire_up,
			wire_down),
		cmocka_unit_test_setup_teardown(
			test_resolver_tcp_carries_the_whole_answer, wire_up, wire_down),
		cmocka_unit_test(test_resolver_port_zero_finds_a_pair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
