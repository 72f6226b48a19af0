/* Tests of net/crypttun.c without a loop: two detached tunnels (node A and
 * node B of one encrypted network) pass frames through crypttun_tx and
 * crypttun_rx as the loop's callbacks would. Sealing and opening, tampered
 * and foreign frames, the replay window, the order of a key rotation, ARP
 * answered locally, and hostile headers. Real TAPs and sockets are
 * tests/integration/crypt.sh's. */
#define _GNU_SOURCE /* memmem, unshare */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "core/errors.h"
#include "net/crypttun.h"
#include "net/dataplane.h"
#include "tests/support/netnschild.h"

#define IP(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

#define NET_ID 0x1234u
#define VNI    4100u
#define NODE_A "10.9.0.1"
#define NODE_B "10.9.0.2"

static const struct env_net_endpoint eps[] = {
	{.task_id = 1, .addr = "10.0.9.2", .node_ip = NODE_A},
	{.task_id = 2, .addr = "10.0.9.3", .node_ip = NODE_B},
	{.task_id = 3, .addr = "10.0.9.4", .node_ip = ""}, /* no node known yet */
};

static struct env_net_key keys[3];

/* A state of the network holding keys[from..from+count) with the
 * primary at from+primary. */
static struct env_net_state net_state(size_t from, size_t count, size_t primary)
{
	struct env_net_state st;

	memset(&st, 0, sizeof st);
	st.network_id = NET_ID;
	st.name = "secret";
	st.vni = VNI;
	st.subnet = "10.0.9.0/24";
	st.gateway = "10.0.9.1";
	st.endpoints = eps;
	st.endpoint_count = sizeof eps / sizeof eps[0];
	st.encrypted = true;
	st.keys = count ? &keys[from] : NULL;
	st.key_count = count;
	st.key_primary = primary;
	return st;
}

static struct crypttun *tun(const char *ip)
{
	struct crypttun_cfg cfg;
	struct crypttun *ct = NULL;
	char err[128];

	memset(&cfg, 0, sizeof cfg);
	cfg.underlay_ip = ip;
	assert_int_equal(crypttun_open(&cfg, &ct, err, sizeof err), 0);
	assert_non_null(ct);
	return ct;
}

static void set(struct crypttun *ct, struct env_net_state st)
{
	char err[256];

	assert_int_equal(crypttun_set(ct, &st, 1418, err, sizeof err), 0);
}

/* An IPv4-looking frame from address src to address dst with payload. */
static size_t frame_of(uint32_t src, uint32_t dst, const char *payload, uint8_t *f)
{
	size_t n = strlen(payload);

	dataplane_mac_of(dst, f);
	dataplane_mac_of(src, f + 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memcpy(f + 14, payload, n);
	return 14 + n;
}

struct wire {
	uint8_t b[CRYPTTUN_WIRE_BYTES_MAX];
	size_t len;
};

/* A seals a frame from .2 to .3; returns the datagram. */
static struct wire a_sends(struct crypttun *a, const char *payload)
{
	uint8_t f[256];
	size_t fl = frame_of(IP(10, 0, 9, 2), IP(10, 0, 9, 3), payload, f);
	struct wire w;
	uint32_t dst = 0;

	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, w.b, &w.len, &dst), CRYPTTUN_SEND);
	assert_int_equal(dst, IP(10, 9, 0, 2));
	assert_int_equal(w.len, CRYPTTUN_HDR_BYTES + fl + CRYPTTUN_TAG_BYTES);
	/* never the payload in clear on the wire */
	assert_null(memmem(w.b, w.len, payload, strlen(payload)));
	return w;
}

static enum crypttun_verdict b_gets(struct crypttun *b, uint32_t from,
				    const struct wire *w)
{
	uint8_t f[CRYPTTUN_FRAME_BYTES_MAX];
	size_t fl = 0;
	uint64_t id = 0;
	enum crypttun_verdict v = crypttun_rx(b, from, w->b, w->len, f, &fl, &id);

	if (v == CRYPTTUN_DELIVER) {
		assert_int_equal(id, NET_ID);
		assert_int_equal(fl, w->len - CRYPTTUN_HDR_BYTES - CRYPTTUN_TAG_BYTES);
	}
	return v;
}

static uint64_t drops(struct crypttun *ct, enum crypttun_drop why)
{
	struct crypttun_stats s;

	crypttun_get_stats(ct, &s);
	return s.drops[why];
}

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		keys[i].id = (uint32_t)(10 + i);
		for (size_t j = 0; j < ENV_NET_KEY_BYTES; j++)
			keys[i].key[j] = (uint8_t)(i * 31 + j * 7 + 1);
	}
	return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_crypttun_roundtrip(void **state)
{
	struct crypttun *a = tun(NODE_A), *b = tun(NODE_B);
	uint8_t f[256], got[CRYPTTUN_FRAME_BYTES_MAX];
	size_t fl, gl = 0;
	uint64_t id = 0;
	struct wire w;

	(void)state;
	set(a, net_state(0, 1, 0));
	set(b, net_state(0, 1, 0));
	w = a_sends(a, "hello secret payload");
	fl = frame_of(IP(10, 0, 9, 2), IP(10, 0, 9, 3), "hello secret payload", f);
	assert_int_equal(crypttun_rx(b, IP(10, 9, 0, 1), w.b, w.len, got, &gl, &id),
			 CRYPTTUN_DELIVER);
	assert_int_equal(gl, fl);
	assert_memory_equal(got, f, fl);
	/* the header: version, key id, VNI in the clear (the AAD) */
	assert_int_equal(w.b[0], CRYPTTUN_VERSION);
	assert_int_equal(w.b[7], keys[0].id);
	assert_int_equal(w.b[10] << 8 | w.b[11], VNI);
	/* two frames never share a nonce */
	{
		struct wire w2 = a_sends(a, "hello secret payload");
		assert_memory_not_equal(w.b + 12, w2.b + 12, CRYPTTUN_NONCE_BYTES);
		assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w2), CRYPTTUN_DELIVER);
	}
	crypttun_close(a);
	crypttun_close(b);
}

static void test_crypttun_tamper_is_refused(void **state)
{
	struct crypttun *a = tun(NODE_A), *b = tun(NODE_B);
	struct wire w;

	(void)state;
	set(a, net_state(0, 1, 0));
	set(b, net_state(0, 1, 0));
	w = a_sends(a, "tamper with me");
	/* every bit of every byte: header (AAD), ciphertext, tag */
	for (size_t i = 0; i < w.len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			struct wire t = w;
			t.b[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &t), CRYPTTUN_DROP);
		}
	}
	/* cut short, or longer */
	for (size_t cut = 1; cut < w.len; cut++) {
		struct wire t = w;
		t.len = cut;
		assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &t), CRYPTTUN_DROP);
	}
	{
		struct wire t = w;
		t.b[t.len++] = 0;
		assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &t), CRYPTTUN_DROP);
	}
	assert_true(drops(b, CRYPTTUN_DROP_AUTH) > 0);
	/* the refused copies moved no window: the real one still arrives */
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DELIVER);
	crypttun_close(a);
	crypttun_close(b);
}

static void test_crypttun_wrong_key_or_sender(void **state)
{
	struct crypttun *a = tun(NODE_A), *b = tun(NODE_B);
	struct env_net_key other = keys[0];
	struct env_net_state sb;
	uint64_t auth;
	struct wire w;

	(void)state;
	set(a, net_state(0, 1, 0));
	other.key[0] ^= 1; /* the same id, other material */
	sb = net_state(0, 1, 0);
	sb.keys = &other;
	set(b, sb);
	w = a_sends(a, "wrong key");
	auth = drops(b, CRYPTTUN_DROP_AUTH);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DROP);
	assert_int_equal(drops(b, CRYPTTUN_DROP_AUTH), auth + 1);
	/* a key id B does not hold */
	set(b, net_state(1, 1, 0));
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DROP);
	assert_int_equal(drops(b, CRYPTTUN_DROP_NO_KEY), 1);
	/* the right key, but from an address that is no node of the network */
	set(b, net_state(0, 1, 0));
	assert_int_equal(b_gets(b, IP(10, 9, 0, 99), &w), CRYPTTUN_DROP);
	assert_int_equal(drops(b, CRYPTTUN_DROP_NOT_A_NODE), 1);
	/* a node of the network relaying A's frame: the key is A's own
	 * (derived with its address), so it does not open as B's peer C's */
	{
		static const struct env_net_endpoint eps3[] = {
			{.task_id = 1, .addr = "10.0.9.2", .node_ip = NODE_A},
			{.task_id = 2, .addr = "10.0.9.3", .node_ip = NODE_B},
			{.task_id = 5, .addr = "10.0.9.5", .node_ip = "10.9.0.3"},
		};
		struct env_net_state s3 = net_state(0, 1, 0);
		s3.endpoints = eps3;
		s3.endpoint_count = 3;
		set(b, s3);
		assert_int_equal(b_gets(b, IP(10, 9, 0, 3), &w), CRYPTTUN_DROP);
		assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DELIVER);
	}
	/* the derived keys: never the raw one, one per VNI and sender */
	{
		uint8_t k1[32], k2[32], k3[32], k4[32];
		assert_int_equal(crypttun_derive(keys[0].key, VNI, IP(10, 9, 0, 1), k1),
				 0);
		assert_int_equal(crypttun_derive(keys[0].key, VNI, IP(10, 9, 0, 1), k2),
				 0);
		assert_memory_equal(k1, k2, 32);
		assert_memory_not_equal(k1, keys[0].key, 32);
		assert_int_equal(
			crypttun_derive(keys[0].key, VNI + 1, IP(10, 9, 0, 1), k3), 0);
		assert_memory_not_equal(k1, k3, 32);
		assert_int_equal(crypttun_derive(keys[0].key, VNI, IP(10, 9, 0, 2), k4),
				 0);
		assert_memory_not_equal(k1, k4, 32);
	}
	crypttun_close(a);
	crypttun_close(b);
}

static void test_crypttun_replay_is_refused(void **state)
{
	struct crypttun *a = tun(NODE_A), *b = tun(NODE_B);
	struct wire w[5];

	(void)state;
	set(a, net_state(0, 1, 0));
	set(b, net_state(0, 1, 0));
	for (size_t i = 0; i < 5; i++)
		w[i] = a_sends(a, "replay");
	/* out of order within the window: each once */
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w[3]), CRYPTTUN_DELIVER);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w[1]), CRYPTTUN_DELIVER);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w[4]), CRYPTTUN_DELIVER);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w[0]), CRYPTTUN_DELIVER);
	for (size_t i = 0; i < 5; i++) {
		if (i == 2)
			continue;
		assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w[i]), CRYPTTUN_DROP);
	}
	assert_int_equal(drops(b, CRYPTTUN_DROP_REPLAY), 4);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w[2]), CRYPTTUN_DELIVER);
	/* a set with the same key keeps the window */
	set(b, net_state(0, 1, 0));
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w[2]), CRYPTTUN_DROP);
	/* far behind the window: refused even if never seen */
	{
		struct wire old = a_sends(a, "old");
		for (size_t i = 0; i < CRYPTTUN_WINDOW_BITS + 64; i++) {
			struct wire x = a_sends(a, "newer");
			assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &x),
					 CRYPTTUN_DELIVER);
		}
		assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &old), CRYPTTUN_DROP);
	}
	crypttun_close(a);
	crypttun_close(b);
}

static void test_crypttun_window(void **state)
{
	struct crypttun_window w;

	(void)state;
	memset(&w, 0, sizeof w);
	assert_true(crypttun_window_check(&w, 1000000));
	crypttun_window_mark(&w, 1000000);
	assert_false(crypttun_window_check(&w, 1000000));
	assert_true(crypttun_window_check(&w, 999999));
	/* word-granular: at least BITS - 63 counters back are held */
	assert_true(crypttun_window_check(&w, 1000000 - (CRYPTTUN_WINDOW_BITS - 64)));
	assert_false(crypttun_window_check(&w, 1000000 - CRYPTTUN_WINDOW_BITS));
	assert_false(crypttun_window_check(&w, 0));
	/* a jump far ahead forgets all below, and marks nothing it skipped */
	crypttun_window_mark(&w, 1000000 + 5000);
	assert_false(crypttun_window_check(&w, 1000000));
	for (uint64_t c = 1000000 + 5000 - 900; c < 1000000 + 5000; c++)
		assert_true(crypttun_window_check(&w, c));
	/* a counter seen, then the window slid so far that its word now
	 * holds newer counters: its replay is refused (it read as new: the
	 * bit it was checked against was a newer counter's) */
	memset(&w, 0, sizeof w);
	crypttun_window_mark(&w, 63);
	crypttun_window_mark(&w, 1024);
	assert_false(crypttun_window_check(&w, 63));
	/* nor does marking it spoil the newer counter that shares its bit */
	crypttun_window_mark(&w, 1024 + 62);
	crypttun_window_mark(&w, 63);
	crypttun_window_mark(&w, 1100);
	assert_true(crypttun_window_check(&w, 1024 + 63));
	/* steps of one: each seen once, those skipped still new */
	for (uint64_t c = 2000000; c < 2000000 + 3000; c += 2) {
		assert_true(crypttun_window_check(&w, c));
		crypttun_window_mark(&w, c);
		assert_false(crypttun_window_check(&w, c));
		assert_true(crypttun_window_check(&w, c - 1));
	}
}

/* The rotation as the key manager orders it: the new key is given to every
 * node first (accepted), then made primary (sent with), then the old one
 * is taken away (refused). */
static void test_crypttun_rotation_order(void **state)
{
	struct crypttun *a = tun(NODE_A), *b = tun(NODE_B);
	struct wire old_key, w;

	(void)state;
	set(a, net_state(0, 1, 0));
	set(b, net_state(0, 1, 0));
	old_key = a_sends(a, "under key 10");
	/* step 1: both hold 10 and 11, 10 primary */
	set(a, net_state(0, 2, 0));
	set(b, net_state(0, 2, 0));
	w = a_sends(a, "still 10");
	assert_int_equal(w.b[7], 10);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DELIVER);
	/* step 2: A sends with 11 at once; B, not yet told, accepts it */
	set(a, net_state(0, 2, 1));
	w = a_sends(a, "now 11");
	assert_int_equal(w.b[7], 11);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DELIVER);
	/* step 3: 10 is gone on B: a frame under it (late, or replayed) is
	 * refused; 11 goes on */
	set(b, net_state(1, 1, 0));
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &old_key), CRYPTTUN_DROP);
	assert_int_equal(drops(b, CRYPTTUN_DROP_NO_KEY), 1);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DROP); /* replay */
	w = a_sends(a, "11 again");
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DELIVER);
	/* a primary before it is given to the receiver: refused there (the
	 * order the key manager keeps is what makes rotation lossless) */
	set(a, net_state(1, 2, 1));
	w = a_sends(a, "12 too early");
	assert_int_equal(w.b[7], 12);
	assert_int_equal(b_gets(b, IP(10, 9, 0, 1), &w), CRYPTTUN_DROP);
	crypttun_close(a);
	crypttun_close(b);
}

static void test_crypttun_no_key_never_clear(void **state)
{
	struct crypttun *a = tun(NODE_A);
	uint8_t f[256], wire[CRYPTTUN_WIRE_BYTES_MAX];
	size_t fl = frame_of(IP(10, 0, 9, 2), IP(10, 0, 9, 3), "no key", f), wl = 0;
	uint32_t dst = 0;

	(void)state;
	set(a, net_state(0, 0, 0));
	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst), CRYPTTUN_DROP);
	assert_int_equal(drops(a, CRYPTTUN_DROP_NO_KEY), 1);
	/* keys come: it sends */
	set(a, net_state(0, 1, 0));
	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst), CRYPTTUN_SEND);
	/* and go again: it stops */
	set(a, net_state(0, 0, 0));
	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst), CRYPTTUN_DROP);
	/* an endpoint with no node known, or a local one, or unknown: no route */
	fl = frame_of(IP(10, 0, 9, 2), IP(10, 0, 9, 4), "x", f);
	set(a, net_state(0, 1, 0));
	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst), CRYPTTUN_DROP);
	fl = frame_of(IP(10, 0, 9, 3), IP(10, 0, 9, 2), "x", f);
	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst), CRYPTTUN_DROP);
	assert_int_equal(drops(a, CRYPTTUN_DROP_NO_ROUTE), 2);
	/* a network not encrypted, or malformed key lists: refused */
	{
		struct env_net_state st = net_state(0, 2, 0);
		char err[256];
		st.encrypted = false;
		assert_int_equal(crypttun_set(a, &st, 1418, err, sizeof err), CS_EINVAL);
		st = net_state(0, 2, 2);
		assert_int_equal(crypttun_set(a, &st, 1418, err, sizeof err), CS_EINVAL);
		st = net_state(0, 2, 0);
		st.keys = &keys[0];
		{
			struct env_net_key rev[2] = {keys[1], keys[0]};
			st.keys = rev;
			assert_int_equal(crypttun_set(a, &st, 1418, err, sizeof err),
					 CS_EINVAL);
		}
		st = net_state(0, 3, 0);
		st.key_count = 4;
		assert_int_equal(crypttun_set(a, &st, 1418, err, sizeof err), CS_EINVAL);
		/* the earlier state stays: it still sends with key 10 */
		assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst),
				 CRYPTTUN_DROP);
		fl = frame_of(IP(10, 0, 9, 2), IP(10, 0, 9, 3), "x", f);
		assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst),
				 CRYPTTUN_SEND);
		assert_int_equal(wire[7], 10);
	}
	/* a frame over the MTU given (1418 + 14): dropped, never sent */
	{
		uint8_t *big = calloc(1, 1418 + 15);
		assert_non_null(big);
		memcpy(big, f, fl);
		assert_int_equal(crypttun_tx(a, NET_ID, big, 1418 + 14, wire, &wl, &dst),
				 CRYPTTUN_SEND);
		assert_int_equal(crypttun_tx(a, NET_ID, big, 1418 + 15, wire, &wl, &dst),
				 CRYPTTUN_DROP);
		assert_int_equal(drops(a, CRYPTTUN_DROP_TOO_BIG), 1);
		free(big);
	}
	crypttun_remove(a, NET_ID);
	assert_false(crypttun_has(a, NET_ID));
	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst), CRYPTTUN_DROP);
	crypttun_close(a);
}

static void test_crypttun_spoofed_source_refused(void **state)
{
	struct crypttun *a = tun(NODE_A), *b = tun(NODE_B);
	uint8_t f[256], wire[CRYPTTUN_WIRE_BYTES_MAX], got[CRYPTTUN_FRAME_BYTES_MAX];
	size_t fl, wl = 0, gl = 0;
	uint32_t dst = 0;
	uint64_t id = 0;

	(void)state;
	set(a, net_state(0, 1, 0));
	set(b, net_state(0, 1, 0));
	/* A claims to be .4 (no node) when it sends to .3 */
	fl = frame_of(IP(10, 0, 9, 4), IP(10, 0, 9, 3), "spoof", f);
	assert_int_equal(crypttun_tx(a, NET_ID, f, fl, wire, &wl, &dst), CRYPTTUN_SEND);
	assert_int_equal(crypttun_rx(b, IP(10, 9, 0, 1), wire, wl, got, &gl, &id),
			 CRYPTTUN_DROP);
	assert_int_equal(drops(b, CRYPTTUN_DROP_SPOOFED), 1);
	crypttun_close(a);
	crypttun_close(b);
}

static void test_crypttun_arp_answered_nothing_floods(void **state)
{
	struct crypttun *a = tun(NODE_A);
	uint8_t req[42], out[CRYPTTUN_WIRE_BYTES_MAX], mac2[6], mac3[6];
	size_t ol = 0;
	uint32_t dst = 0;

	(void)state;
	set(a, net_state(0, 1, 0));
	dataplane_mac_of(IP(10, 0, 9, 2), mac2);
	dataplane_mac_of(IP(10, 0, 9, 3), mac3);
	memset(req, 0xff, 6);
	memcpy(req + 6, mac2, 6);
	req[12] = 0x08, req[13] = 0x06;
	req[14] = 0, req[15] = 1, req[16] = 0x08, req[17] = 0, req[18] = 6, req[19] = 4;
	req[20] = 0, req[21] = 1;
	memcpy(req + 22, mac2, 6);
	req[28] = 10, req[29] = 0, req[30] = 9, req[31] = 2;
	memset(req + 32, 0, 6);
	req[38] = 10, req[39] = 0, req[40] = 9, req[41] = 3;
	assert_int_equal(crypttun_tx(a, NET_ID, req, sizeof req, out, &ol, &dst),
			 CRYPTTUN_REPLY);
	assert_int_equal(ol, 42);
	assert_memory_equal(out, mac2, 6);	/* to the asker */
	assert_memory_equal(out + 6, mac3, 6);	/* from .3's MAC */
	assert_int_equal(out[21], 2);		/* a reply */
	assert_memory_equal(out + 22, mac3, 6); /* .3 is at mac3 */
	assert_memory_equal(out + 28, req + 38, 4);
	assert_memory_equal(out + 32, mac2, 6);
	assert_memory_equal(out + 38, req + 28, 4);
	/* for an address no remote endpoint has: nothing, and nothing sent */
	req[41] = 77;
	assert_int_equal(crypttun_tx(a, NET_ID, req, sizeof req, out, &ol, &dst),
			 CRYPTTUN_DROP);
	/* any other broadcast or multicast: dropped */
	req[21] = 2;
	req[41] = 3;
	assert_int_equal(crypttun_tx(a, NET_ID, req, sizeof req, out, &ol, &dst),
			 CRYPTTUN_DROP);
	req[0] = 0x33, req[1] = 0x33;
	assert_int_equal(crypttun_tx(a, NET_ID, req, sizeof req, out, &ol, &dst),
			 CRYPTTUN_DROP);
	assert_int_equal(drops(a, CRYPTTUN_DROP_FLOOD), 3);
	crypttun_close(a);
}

/* Hostile datagrams: every length, random bytes, and valid headers with
 * random bodies. Nothing is delivered, nothing reads out of bounds (ASan). */
static void test_crypttun_hostile_headers(void **state)
{
	struct crypttun *b = tun(NODE_B);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	struct crypttun_hdr h;
	uint8_t *buf = malloc(CRYPTTUN_WIRE_BYTES_MAX + 64);
	uint8_t *got = malloc(CRYPTTUN_FRAME_BYTES_MAX + 64);

	(void)state;
	assert_non_null(buf);
	assert_non_null(got);
	set(b, net_state(0, 3, 0));
	assert_int_equal(crypttun_hdr_parse(NULL, 0, &h), CS_EINVAL);
	for (size_t round = 0; round < 20000; round++) {
		size_t len, gl = 0;
		uint64_t id = 0;
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		len = (size_t)(seed % (CRYPTTUN_WIRE_BYTES_MAX + 40));
		if (round % 3 == 0)
			len = seed % 96;
		/* the exact bytes, in a buffer of exactly len (ASan sees past) */
		uint8_t *w = malloc(len ? len : 1);
		assert_non_null(w);
		for (size_t i = 0; i < len; i++) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			w[i] = (uint8_t)seed;
		}
		if (round % 2 == 0 && len >= CRYPTTUN_HDR_BYTES) {
			/* a well-formed header of a key and VNI B holds */
			w[0] = 1, w[1] = w[2] = w[3] = 0;
			w[4] = w[5] = w[6] = 0, w[7] = (uint8_t)(10 + round % 4);
			w[8] = 0, w[9] = 0, w[10] = VNI >> 8, w[11] = VNI & 0xff;
		}
		assert_int_not_equal(
			crypttun_rx(b, IP(10, 9, 0, 1), w, len, got, &gl, &id),
			CRYPTTUN_DELIVER);
		if (crypttun_hdr_parse(w, len, &h) == 0) {
			assert_int_equal(h.version, 1);
			assert_true(h.vni > 0 && h.vni <= DATAPLANE_VNI_MAX);
			assert_true(h.key_id > 0);
			assert_true(len >= CRYPTTUN_HDR_BYTES + CRYPTTUN_FRAME_BYTES_MIN +
						   CRYPTTUN_TAG_BYTES);
		}
		free(w);
	}
	/* each header rule on its own */
	{
		struct crypttun *a = tun(NODE_A);
		struct wire ok;
		set(a, net_state(0, 1, 0));
		ok = a_sends(a, "a valid one");
		assert_int_equal(crypttun_hdr_parse(ok.b, ok.len, &h), 0);
		memcpy(buf, ok.b, ok.len);
		buf[0] = 2;
		assert_int_equal(crypttun_hdr_parse(buf, ok.len, &h), CS_EINVAL);
		buf[0] = 1, buf[2] = 1;
		assert_int_equal(crypttun_hdr_parse(buf, ok.len, &h), CS_EINVAL);
		buf[2] = 0, buf[4] = buf[5] = buf[6] = buf[7] = 0;
		assert_int_equal(crypttun_hdr_parse(buf, ok.len, &h), CS_EINVAL);
		memcpy(buf, ok.b, ok.len);
		buf[8] = 1; /* a VNI over 24 bits */
		assert_int_equal(crypttun_hdr_parse(buf, ok.len, &h), CS_EINVAL);
		memcpy(buf, ok.b, ok.len);
		assert_int_equal(crypttun_hdr_parse(buf,
						    CRYPTTUN_HDR_BYTES +
							    CRYPTTUN_FRAME_BYTES_MIN +
							    CRYPTTUN_TAG_BYTES - 1,
						    &h),
				 CS_EINVAL);
		assert_int_equal(crypttun_hdr_parse(buf, CRYPTTUN_WIRE_BYTES_MAX + 1, &h),
				 CS_EINVAL);
		crypttun_close(a);
	}
	free(buf);
	free(got);
	crypttun_close(b);
}

/* ---------------------------------------------------------------- the kernel part */

#define CHILD_CHECK(c)                                                          \
	do {                                                                    \
		if (!(c)) {                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
			return 1;                                               \
		}                                                               \
	} while (0)

/* Whether `ip -d -o link show dev DEV` (this namespace's, through
 * netlink: /sys is still the parent's) says words. */
static bool link_says(const char *dev, const char *words)
{
	char cmd[128], line[4096];
	bool found = false;
	FILE *f;

	snprintf(cmd, sizeof cmd, "ip -d -o link show dev %s 2>/dev/null", dev);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof line, f))
		if (strstr(line, words))
			found = true;
	pclose(f);
	return found;
}

/* In a namespace of its own: what dataplane_set makes of an encrypted
 * network (the TAP crypttun opened, on the bridge, the MTU 32 below, no
 * VXLAN device), a network switched to clear and back (rebuilt each
 * way), and an encrypted network whose TAP is missing (refused, nothing
 * half-made). */
static int kernel_child(void)
{
	const struct env_net_endpoint e[] = {
		{.task_id = 1, .addr = "10.0.9.2", .node_ip = "192.168.78.1"},
		{.task_id = 2, .addr = "10.0.9.3", .node_ip = "192.168.78.2"},
	};
	struct env_net_state st = net_state(0, 1, 0);
	struct dataplane_cfg cfg;
	struct dataplane *dp;
	struct ifreq ifr;
	char err[256], tap[DATAPLANE_IFNAME_BYTES];
	char mtu_words[32];
	unsigned mtu;
	int fd;

	st.endpoints = e;
	st.endpoint_count = 2;
	CHILD_CHECK(
		system("ip link set lo up && ip link add cs-t0 type veth peer name cs-t1 "
		       "&& ip addr add 192.168.78.1/24 dev cs-t0 && ip link set cs-t0 "
		       "up") == 0);
	memset(&cfg, 0, sizeof cfg);
	cfg.underlay_ip = "192.168.78.1";
	CHILD_CHECK(dataplane_open(&cfg, &dp, err, sizeof err) == 0);
	mtu = dataplane_mtu(dp);
	snprintf(mtu_words, sizeof mtu_words, "mtu %u ", mtu - DATAPLANE_CRYPT_EXTRA);
	/* no TAP: refused, nothing made */
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == CS_EEXEC);
	CHILD_CHECK(strstr(err, "cs-tp-4100") != NULL);
	CHILD_CHECK(if_nametoindex("cs-br-4100") == 0);
	CHILD_CHECK(dataplane_find(dp, NET_ID) == NULL);
	/* the TAP as crypttun opens it */
	dataplane_tap_name(VNI, tap);
	CHILD_CHECK((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) >= 0);
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", tap);
	CHILD_CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == 0);
	CHILD_CHECK(link_says(tap, "master cs-br-4100 "));
	CHILD_CHECK(link_says(tap, mtu_words));
	CHILD_CHECK(link_says("cs-br-4100", mtu_words));
	CHILD_CHECK(link_says(tap, "learning off"));
	CHILD_CHECK(if_nametoindex("cs-vx-4100") == 0);
	CHILD_CHECK(dataplane_find(dp, NET_ID)->encrypted);
	CHILD_CHECK(dataplane_find(dp, NET_ID)->mtu == mtu - DATAPLANE_CRYPT_EXTRA);
	/* switched to clear: the TAP goes (uvenv closed it first: here it is
	 * deleted under its fd), the VXLAN device comes, the MTU goes up */
	st.encrypted = false;
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == 0);
	CHILD_CHECK(if_nametoindex(tap) == 0);
	CHILD_CHECK(link_says("cs-vx-4100", "master cs-br-4100 "));
	snprintf(mtu_words, sizeof mtu_words, "mtu %u ", mtu);
	CHILD_CHECK(link_says("cs-br-4100", mtu_words));
	close(fd);
	/* and back: the VXLAN device goes, a new TAP joins */
	CHILD_CHECK((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) >= 0);
	CHILD_CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
	st.encrypted = true;
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == 0);
	CHILD_CHECK(if_nametoindex("cs-vx-4100") == 0);
	CHILD_CHECK(link_says(tap, "master cs-br-4100 "));
	/* removed: nothing stays */
	CHILD_CHECK(dataplane_remove(dp, NET_ID, err, sizeof err) == 0);
	CHILD_CHECK(if_nametoindex(tap) == 0);
	CHILD_CHECK(if_nametoindex("cs-br-4100") == 0);
	close(fd);
	dataplane_close(dp);
	return 0;
}

static void test_crypttun_dataplane_kernel(void **state)
{
	int status;

	(void)state;
	if (access("/dev/net/tun", R_OK | W_OK) != 0)
		skip();
	status = netnschild_run(kernel_child);
	if (status == NETNSCHILD_NO_RIGHT)
		skip(); /* no right to a network namespace here */
	assert_int_equal(status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crypttun_roundtrip),
		cmocka_unit_test(test_crypttun_tamper_is_refused),
		cmocka_unit_test(test_crypttun_wrong_key_or_sender),
		cmocka_unit_test(test_crypttun_replay_is_refused),
		cmocka_unit_test(test_crypttun_window),
		cmocka_unit_test(test_crypttun_rotation_order),
		cmocka_unit_test(test_crypttun_no_key_never_clear),
		cmocka_unit_test(test_crypttun_spoofed_source_refused),
		cmocka_unit_test(test_crypttun_arp_answered_nothing_floods),
		cmocka_unit_test(test_crypttun_hostile_headers),
		cmocka_unit_test(test_crypttun_dataplane_kernel),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
