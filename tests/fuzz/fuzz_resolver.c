/* fuzz_resolver: a DNS query, as a task sends it to its network's resolver,
 * through net/resolver's codec: resolver_parse_query, resolver_encode_error,
 * resolver_is_reply_to and resolver_answer_local on a resolver that answers
 * a network's names (services in vip and dnsrr mode, aliases, tasks.NAME).
 * The first input byte picks the answer's room (a UDP reply's 512 bytes, a
 * TCP message's 65535, or a few bytes: TC and the cap checks); the rest is
 * the query. Properties:
 * - what parses has a question that ends inside the message, a name of
 *   at most 253 characters, lower case;
 * - every answer (local or an error) fits its room, is a response (QR) with
 *   the query's id, is a reply to the query's question when that parsed
 *   (resolver_is_reply_to), and its records are what was asked (A, IN,
 *   4 bytes, the question's name by pointer), as many as ANCOUNT says,
 *   nothing after them; TC set when an answer was cut;
 * - the answer itself never parses as a query (QR set: no loops). */
#include <ctype.h>
#include <string.h>
#include <uv.h>

#include "core/errors.h"
#include "net/resolver.h"
#include "tests/fuzz/fuzz.h"

static uv_loop_t loop;
static struct resolver *rsv;

static const char *const web_aliases[] = {"www", "Front.End", NULL};
static const char *const web_backends[] = {"10.0.3.5", "10.0.3.6", NULL};
static const char *const db_backends[] = {"10.0.3.7", "10.0.3.8", "10.0.3.9", NULL};
static const char *big_backends[41];
static char big_text[40][16];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct resolver_config cfg = {.port = 0};
	struct env_net_service svcs[4];
	struct env_net_state st;

	for (int i = 0; i < 40; i++) {
		snprintf(big_text[i], sizeof big_text[i], "10.0.4.%d", i + 1);
		big_backends[i] = big_text[i];
	}
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
	st = (struct env_net_state){.network_id = 7,
				    .name = "app",
				    .subnet = "127.0.0.0/8",
				    .gateway = "127.0.0.1",
				    .services = svcs,
				    .service_count = 4};
	FUZZ_CHECK(uv_loop_init(&loop) == 0);
	FUZZ_CHECK(resolver_start(&loop, &cfg, &rsv) == 0);
	FUZZ_CHECK(resolver_set_at(rsv, &st, "127.0.0.1") == 0);
	return 0;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* An answer of k bytes (room cap) to the query msg/len. */
static void check_answer(const uint8_t *msg, size_t len, const uint8_t *out, size_t k,
			 size_t cap, bool local)
{
	struct resolver_question q, again;
	enum resolver_rcode why;
	int parsed = resolver_parse_query(msg, len, &q, &why);
	uint16_t flags, qd, an;
	size_t off;

	FUZZ_CHECK(k <= cap);
	if (k == 0)
		return;
	FUZZ_CHECK(k >= 12);
	FUZZ_CHECK(len >= 12 && get16(out) == get16(msg));
	flags = get16(out + 2);
	FUZZ_CHECK(flags & 0x8000u); /* QR */
	FUZZ_CHECK(resolver_parse_query(out, k, &again, NULL) == CS_ECORRUPT);
	qd = get16(out + 4);
	an = get16(out + 6);
	FUZZ_CHECK(get16(out + 8) == 0 && get16(out + 10) == 0);
	if (parsed != 0) {
		/* an error about a query that did not parse: no question */
		FUZZ_CHECK(qd == 0 && an == 0 && k == 12);
		FUZZ_CHECK((flags & 15) == why && why != RESOLVER_NOERROR);
		return;
	}
	FUZZ_CHECK(qd == 1);
	FUZZ_CHECK(resolver_is_reply_to(out, k, &q));
	off = q.end;
	FUZZ_CHECK(off <= k);
	for (uint16_t i = 0; i < an; i++) {
		FUZZ_CHECK(off + 16 <= k);
		FUZZ_CHECK(get16(out + off) == 0xc00c);
		FUZZ_CHECK(get16(out + off + 2) == RESOLVER_TYPE_A);
		FUZZ_CHECK(get16(out + off + 4) == RESOLVER_CLASS_IN);
		FUZZ_CHECK(get16(out + off + 10) == 4);
		off += 16;
	}
	FUZZ_CHECK(off == k); /* nothing after the records */
	if (an && local)
		FUZZ_CHECK(q.qtype == RESOLVER_TYPE_A || q.qtype == RESOLVER_TYPE_ANY);
	if (local && (flags & 0x0200u)) /* TC: cut because the room was full */
		FUZZ_CHECK(k + 16 > cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t rooms[4] = {RESOLVER_UDP_REPLY_BYTES, RESOLVER_MSG_BYTES_MAX,
					40, 120};
	static uint8_t out[RESOLVER_MSG_BYTES_MAX];
	struct resolver_question q;
	enum resolver_rcode why;
	const uint8_t *msg;
	size_t len, cap, k;

	if (size < 1)
		return 0;
	cap = rooms[data[0] & 3];
	msg = data + 1;
	len = size - 1;
	if (resolver_parse_query(msg, len, &q, &why) == 0) {
		FUZZ_CHECK(q.end >= 12 + 5 && q.end <= len);
		FUZZ_CHECK(strlen(q.name) <= RESOLVER_NAME_TEXT_MAX);
		for (const char *c = q.name; *c; c++)
			FUZZ_CHECK(!isupper((unsigned char)*c));
		FUZZ_CHECK(why == RESOLVER_NOERROR);
	}
	k = resolver_encode_error(msg, len, RESOLVER_NXDOMAIN, out, cap);
	check_answer(msg, len, out, k, cap, false);
	k = resolver_answer_local(rsv, 7, msg, len, out, cap);
	check_answer(msg, len, out, k, cap, true);
	return 0;
}
