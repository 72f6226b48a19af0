/* crypttun: the encrypted overlay's userspace tunnel. See crypttun.h. */
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#include "net/netlog.h"
#include "net/crypttun.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "core/errors.h"
#include "net/dataplane.h"

/* ---------------------------------------------------------------- types */

#define CRYPTTUN_HKDF_SALT "cswarm crypttun v1"
#define CRYPTTUN_HKDF_INFO "cswarm overlay frame key"
#define CRYPTTUN_ARP_BYTES 42u
/* one datagram of a batch (sendmmsg, recvmmsg), one byte over the largest
 * so that a longer one shows */
#define CRYPTTUN_SLOT_BYTES (CRYPTTUN_WIRE_BYTES_MAX + 1u)

/* A remote endpoint: its address and its node's underlay IP (host order). */
struct crypttun_ep {
	uint32_t addr, node_ip;
};

/* What a receiver holds of one key for one sender. */
struct crypttun_pkey {
	uint32_t id;
	uint8_t key[32];
	struct crypttun_window win;
	EVP_CIPHER_CTX *ctx; /* AES-256-GCM with key set: only the IV per frame */
};

/* A node of the network (an endpoint's node, not this one). */
struct crypttun_peer {
	uint32_t ip;
	size_t key_count;
	struct crypttun_pkey keys[ENV_NET_KEYS_MAX];
};

struct crypttun_net {
	struct crypttun *ct;
	uint64_t network_id;
	uint32_t vni;
	int tap_fd; /* -1: detached */
	uv_poll_t poll;
	bool polling;
	char tap[CRYPTTUN_IFNAME_BYTES];
	struct crypttun_ep *eps; /* ascending (addr, node_ip) */
	size_t ep_count;
	struct crypttun_peer *peers; /* ascending ip */
	size_t peer_count;
	bool has_key;
	uint32_t tx_key_id;
	uint8_t tx_key[32];
	uint64_t tx_counter;
	unsigned mtu;
	EVP_CIPHER_CTX *tx_ctx; /* with tx_key set; NULL without a key */
};

struct crypttun {
	uv_loop_t *loop;
	uint32_t self_ip;
	uint16_t port;
	int fd; /* the UDP socket; -1: detached */
	uv_poll_t poll;
	bool polling;
	uint32_t salt;
	struct crypttun_net **nets; /* ascending network_id */
	size_t net_count, net_cap;
	struct crypttun_stats stats;
	uint64_t drop_logged_ms[CRYPTTUN_DROP_COUNT];
	uint64_t drop_unlogged[CRYPTTUN_DROP_COUNT];
	void (*log)(void *data, enum env_log_level lvl, const char *msg);
	void *log_data;
	size_t handles_open; /* uv handles not yet closed */
	bool closing;
	uint8_t *in, *out; /* CRYPTTUN_WIRE_BYTES_MAX each */
	uint8_t *batch;	   /* CRYPTTUN_BATCH slots of CRYPTTUN_SLOT_BYTES */
};

static const char *const crypttun_drop_names[CRYPTTUN_DROP_COUNT] = {
	[CRYPTTUN_DROP_MALFORMED] = "malformed",
	[CRYPTTUN_DROP_NO_NETWORK] = "no such network",
	[CRYPTTUN_DROP_NOT_A_NODE] = "not from a node of the network",
	[CRYPTTUN_DROP_NO_KEY] = "no key",
	[CRYPTTUN_DROP_AUTH] = "authentication failed",
	[CRYPTTUN_DROP_REPLAY] = "replayed",
	[CRYPTTUN_DROP_SPOOFED] = "source MAC not of the sending node",
	[CRYPTTUN_DROP_NO_ROUTE] = "no remote endpoint",
	[CRYPTTUN_DROP_FLOOD] = "broadcast or multicast",
	[CRYPTTUN_DROP_IO] = "send or TAP write failed",
	[CRYPTTUN_DROP_TOO_BIG] =
		"over the network's MTU (the task's interface MTU is too large)",
};

static uint64_t crypttun_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Counts a drop; logs the drops of one reason at most every
 * CRYPTTUN_LOG_EVERY_MS. Returns CRYPTTUN_DROP. */
static enum crypttun_verdict crypttun_drop(struct crypttun *ct, enum crypttun_drop why)
{
	assert(why < CRYPTTUN_DROP_COUNT);
	ct->stats.drops[why]++;
	ct->drop_unlogged[why]++;
	if (ct->log) {
		uint64_t now = crypttun_mono_ms();
		if (ct->drop_logged_ms[why] == 0 ||
		    now - ct->drop_logged_ms[why] >= CRYPTTUN_LOG_EVERY_MS) {
			/* what tasks broadcast, or send to addresses gone, is
			 * routine; the rest is an attack or a misconfiguration */
			netlog_logf(ct->log, ct->log_data,
				    why == CRYPTTUN_DROP_NO_ROUTE ||
						    why == CRYPTTUN_DROP_FLOOD
					    ? ENV_LOG_DEBUG
					    : ENV_LOG_WARN,
				    "crypttun: dropped frames: %s (%llu since the last "
				    "line, %llu in all)",
				    crypttun_drop_names[why],
				    (unsigned long long)ct->drop_unlogged[why],
				    (unsigned long long)ct->stats.drops[why]);
			ct->drop_logged_ms[why] = now;
			ct->drop_unlogged[why] = 0;
		}
	}
	return CRYPTTUN_DROP;
}

static void crypttun_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t crypttun_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	       (uint32_t)p[3];
}

static uint64_t crypttun_get64(const uint8_t *p)
{
	return (uint64_t)crypttun_get32(p) << 32 | crypttun_get32(p + 4);
}

/* ---------------------------------------------------------------- pure parts */

void crypttun_tap_name(uint32_t vni, char out[CRYPTTUN_IFNAME_BYTES])
{
	dataplane_tap_name(vni, out);
}

int crypttun_hdr_parse(const uint8_t *wire, size_t wire_len, struct crypttun_hdr *h)
{
	if (!wire ||
	    wire_len <
		    CRYPTTUN_HDR_BYTES + CRYPTTUN_FRAME_BYTES_MIN + CRYPTTUN_TAG_BYTES ||
	    wire_len > CRYPTTUN_WIRE_BYTES_MAX)
		return CS_EINVAL;
	if (wire[0] != CRYPTTUN_VERSION || wire[1] || wire[2] || wire[3])
		return CS_EINVAL;
	h->version = wire[0];
	h->key_id = crypttun_get32(wire + 4);
	h->vni = crypttun_get32(wire + 8);
	if (h->key_id == 0 || h->vni == 0 || h->vni > DATAPLANE_VNI_MAX)
		return CS_EINVAL;
	memcpy(h->nonce, wire + 12, CRYPTTUN_NONCE_BYTES);
	return 0;
}

int crypttun_derive(const uint8_t nk[ENV_NET_KEY_BYTES], uint32_t vni, uint32_t sender_ip,
		    uint8_t out[32])
{
	uint8_t info[sizeof CRYPTTUN_HKDF_INFO - 1 + 8];
	size_t out_len = 32;
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	int ok;

	memcpy(info, CRYPTTUN_HKDF_INFO, sizeof CRYPTTUN_HKDF_INFO - 1);
	crypttun_put32(info + sizeof CRYPTTUN_HKDF_INFO - 1, vni);
	crypttun_put32(info + sizeof CRYPTTUN_HKDF_INFO - 1 + 4, sender_ip);
	ok = pc && EVP_PKEY_derive_init(pc) > 0 &&
	     EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_salt(pc, (const unsigned char *)CRYPTTUN_HKDF_SALT,
					 (int)(sizeof CRYPTTUN_HKDF_SALT - 1)) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_key(pc, nk, ENV_NET_KEY_BYTES) > 0 &&
	     EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)sizeof info) > 0 &&
	     EVP_PKEY_derive(pc, out, &out_len) > 0 && out_len == 32;
	EVP_PKEY_CTX_free(pc);
	return ok ? 0 : CS_ENOMEM;
}

/* A context of AES-256-GCM with key set (enc: to seal), or NULL. */
static EVP_CIPHER_CTX *crypttun_key_ctx(const uint8_t key[32], bool enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	if (c && (enc ? EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL)
		      : EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL)) != 1) {
		EVP_CIPHER_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* crypttun_seal with c, a context whose key is set (crypttun_key_ctx). */
static size_t crypttun_seal_with(EVP_CIPHER_CTX *c, const struct crypttun_hdr *h,
				 const uint8_t *frame, size_t frame_len, uint8_t *wire)
{
	int n = 0, fin = 0;

	if (!c || frame_len < CRYPTTUN_FRAME_BYTES_MIN ||
	    frame_len > CRYPTTUN_FRAME_BYTES_MAX)
		return 0;
	wire[0] = h->version;
	wire[1] = wire[2] = wire[3] = 0;
	crypttun_put32(wire + 4, h->key_id);
	crypttun_put32(wire + 8, h->vni);
	memcpy(wire + 12, h->nonce, CRYPTTUN_NONCE_BYTES);
	if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, h->nonce) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, wire, CRYPTTUN_HDR_BYTES) != 1 ||
	    EVP_EncryptUpdate(c, wire + CRYPTTUN_HDR_BYTES, &n, frame, (int)frame_len) !=
		    1 ||
	    (size_t)n != frame_len ||
	    EVP_EncryptFinal_ex(c, wire + CRYPTTUN_HDR_BYTES + n, &fin) != 1 ||
	    fin != 0 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CRYPTTUN_TAG_BYTES,
				wire + CRYPTTUN_HDR_BYTES + frame_len) != 1)
		return 0;
	return CRYPTTUN_HDR_BYTES + frame_len + CRYPTTUN_TAG_BYTES;
}

/* crypttun_unseal with c, a context whose key is set (crypttun_key_ctx). */
static size_t crypttun_unseal_with(EVP_CIPHER_CTX *c, const uint8_t *wire,
				   size_t wire_len, uint8_t *frame)
{
	size_t len;
	int n = 0, fin = 0;
	uint8_t tag[CRYPTTUN_TAG_BYTES];

	if (!c ||
	    wire_len <
		    CRYPTTUN_HDR_BYTES + CRYPTTUN_FRAME_BYTES_MIN + CRYPTTUN_TAG_BYTES ||
	    wire_len > CRYPTTUN_WIRE_BYTES_MAX)
		return 0;
	len = wire_len - CRYPTTUN_HDR_BYTES - CRYPTTUN_TAG_BYTES;
	memcpy(tag, wire + wire_len - CRYPTTUN_TAG_BYTES, sizeof tag);
	if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, wire + 12) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, wire, CRYPTTUN_HDR_BYTES) != 1 ||
	    EVP_DecryptUpdate(c, frame, &n, wire + CRYPTTUN_HDR_BYTES, (int)len) != 1 ||
	    (size_t)n != len ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CRYPTTUN_TAG_BYTES, tag) != 1 ||
	    EVP_DecryptFinal_ex(c, frame + n, &fin) != 1) {
		/* what was decrypted of a frame that does not verify goes */
		OPENSSL_cleanse(frame, len);
		return 0;
	}
	return len;
}

size_t crypttun_seal(const uint8_t key[32], const struct crypttun_hdr *h,
		     const uint8_t *frame, size_t frame_len, uint8_t *wire)
{
	EVP_CIPHER_CTX *c = crypttun_key_ctx(key, true);
	size_t n = crypttun_seal_with(c, h, frame, frame_len, wire);

	EVP_CIPHER_CTX_free(c);
	return n;
}

size_t crypttun_unseal(const uint8_t key[32], const uint8_t *wire, size_t wire_len,
		       uint8_t *frame)
{
	EVP_CIPHER_CTX *c = crypttun_key_ctx(key, false);
	size_t n = crypttun_unseal_with(c, wire, wire_len, frame);

	EVP_CIPHER_CTX_free(c);
	return n;
}

/* A counter at or below the window's top is new only while its word has
 * not been reused for a newer one: the window keeps between BITS - 63 and
 * BITS counters (a counter further back reads as seen). */
static bool crypttun_window_holds(const struct crypttun_window *w, uint64_t c)
{
	return w->top - c < CRYPTTUN_WINDOW_BITS &&
	       w->top / 64 - c / 64 < CRYPTTUN_WINDOW_BITS / 64;
}

bool crypttun_window_check(const struct crypttun_window *w, uint64_t c)
{
	if (!w->any || c > w->top)
		return true;
	if (!crypttun_window_holds(w, c))
		return false;
	return !(w->bits[(c / 64) % (CRYPTTUN_WINDOW_BITS / 64)] & (1ull << (c % 64)));
}

void crypttun_window_mark(struct crypttun_window *w, uint64_t c)
{
	const size_t words = CRYPTTUN_WINDOW_BITS / 64;

	if (!w->any) {
		memset(w->bits, 0, sizeof w->bits);
		w->any = true;
		w->top = c;
	} else if (c > w->top) {
		/* clear the words the window slid over (word granularity:
		 * the window keeps between BITS-64 and BITS counters) */
		uint64_t from = w->top / 64 + 1, to = c / 64;
		if (to >= from) {
			if (to - from + 1 >= words)
				memset(w->bits, 0, sizeof w->bits);
			else
				for (uint64_t i = from; i <= to; i++)
					w->bits[i % words] = 0;
		}
		w->top = c;
	}
	assert(w->top >= c);
	if (crypttun_window_holds(w, c))
		w->bits[(c / 64) % words] |= 1ull << (c % 64);
}

bool crypttun_arp_target(const uint8_t *f, size_t len, uint32_t *target)
{
	if (len < CRYPTTUN_ARP_BYTES)
		return false;
	/* Ethernet type ARP; htype Ethernet, ptype IPv4, hlen 6, plen 4,
	 * operation request */
	if (f[12] != 0x08 || f[13] != 0x06 || f[14] != 0 || f[15] != 1 || f[16] != 0x08 ||
	    f[17] != 0 || f[18] != 6 || f[19] != 4 || f[20] != 0 || f[21] != 1)
		return false;
	*target = crypttun_get32(f + 38);
	return true;
}

size_t crypttun_arp_answer(const uint8_t *f, size_t len, uint8_t *out)
{
	uint32_t target;
	uint8_t mac[6];

	if (!crypttun_arp_target(f, len, &target))
		return 0;
	dataplane_mac_of(target, mac);
	memcpy(out, f + 6, 6); /* to the asker */
	memcpy(out + 6, mac, 6);
	out[12] = 0x08;
	out[13] = 0x06;
	memcpy(out + 14, f + 14, 6); /* htype, ptype, hlen, plen */
	out[20] = 0;
	out[21] = 2;		  /* reply */
	memcpy(out + 22, mac, 6); /* sender: the target */
	memcpy(out + 28, f + 38, 4);
	memcpy(out + 32, f + 22, 6); /* target: the asker */
	memcpy(out + 38, f + 28, 4);
	return CRYPTTUN_ARP_BYTES;
}

/* ---------------------------------------------------------------- tables */

static size_t crypttun_net_index(const struct crypttun *ct, uint64_t id, bool *found)
{
	size_t lo = 0, hi = ct->net_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ct->nets[mid]->network_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < ct->net_count && ct->nets[lo]->network_id == id;
	return lo;
}

static struct crypttun_net *crypttun_net_by_vni(const struct crypttun *ct, uint32_t vni)
{
	for (size_t i = 0; i < ct->net_count; i++)
		if (ct->nets[i]->vni == vni)
			return ct->nets[i];
	return NULL;
}

/* The first endpoint of address addr, or NULL. */
static const struct crypttun_ep *crypttun_ep_find(const struct crypttun_net *n,
						  uint32_t addr)
{
	size_t lo = 0, hi = n->ep_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->eps[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->ep_count && n->eps[lo].addr == addr ? &n->eps[lo] : NULL;
}

/* Whether addr is an endpoint of node_ip. */
static bool crypttun_ep_of(const struct crypttun_net *n, uint32_t addr, uint32_t node_ip)
{
	const struct crypttun_ep *e = crypttun_ep_find(n, addr);

	for (; e && e < n->eps + n->ep_count && e->addr == addr; e++)
		if (e->node_ip == node_ip)
			return true;
	return false;
}

static struct crypttun_peer *crypttun_peer_find(const struct crypttun_net *n, uint32_t ip)
{
	size_t lo = 0, hi = n->peer_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->peers[mid].ip < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->peer_count && n->peers[lo].ip == ip ? &n->peers[lo] : NULL;
}

static int crypttun_ep_cmp(const void *a, const void *b)
{
	const struct crypttun_ep *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->node_ip != y->node_ip)
		return x->node_ip < y->node_ip ? -1 : 1;
	return 0;
}

static int crypttun_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- the frame paths */

enum crypttun_verdict crypttun_tx(struct crypttun *ct, uint64_t network_id,
				  const uint8_t *frame, size_t frame_len, uint8_t *wire,
				  size_t *wire_len, uint32_t *dst_ip)
{
	bool found;
	size_t i = crypttun_net_index(ct, network_id, &found);
	struct crypttun_net *n;
	const struct crypttun_ep *ep;
	struct crypttun_hdr h;
	uint32_t addr;

	if (!found)
		return crypttun_drop(ct, CRYPTTUN_DROP_NO_NETWORK);
	n = ct->nets[i];
	if (frame_len < CRYPTTUN_FRAME_BYTES_MIN || frame_len > CRYPTTUN_FRAME_BYTES_MAX)
		return crypttun_drop(ct, CRYPTTUN_DROP_MALFORMED);
	if (frame[0] & 1) {
		/* broadcast or multicast: only an ARP request for a remote
		 * endpoint, answered here; nothing floods to other nodes */
		uint32_t target;
		if (crypttun_arp_target(frame, frame_len, &target) &&
		    crypttun_ep_find(n, target)) {
			*wire_len = crypttun_arp_answer(frame, frame_len, wire);
			assert(*wire_len == CRYPTTUN_ARP_BYTES);
			ct->stats.arp_answered++;
			return CRYPTTUN_REPLY;
		}
		return crypttun_drop(ct, CRYPTTUN_DROP_FLOOD);
	}
	if (!dataplane_addr_of_mac(frame, &addr) || !(ep = crypttun_ep_find(n, addr)))
		return crypttun_drop(ct, CRYPTTUN_DROP_NO_ROUTE);
	if (n->mtu && frame_len > (size_t)n->mtu + CRYPTTUN_FRAME_BYTES_MIN)
		return crypttun_drop(ct, CRYPTTUN_DROP_TOO_BIG);
	if (!n->has_key)
		return crypttun_drop(ct, CRYPTTUN_DROP_NO_KEY);
	h.version = CRYPTTUN_VERSION;
	h.key_id = n->tx_key_id;
	h.vni = n->vni;
	crypttun_put32(h.nonce, ct->salt);
	crypttun_put32(h.nonce + 4, (uint32_t)(n->tx_counter >> 32));
	crypttun_put32(h.nonce + 8, (uint32_t)n->tx_counter);
	n->tx_counter++;
	*wire_len = crypttun_seal_with(n->tx_ctx, &h, frame, frame_len, wire);
	if (*wire_len == 0)
		return crypttun_drop(ct, CRYPTTUN_DROP_IO);
	*dst_ip = ep->node_ip;
	ct->stats.sealed++;
	return CRYPTTUN_SEND;
}

static enum crypttun_verdict crypttun_rx_net(struct crypttun *ct, uint32_t src_ip,
					     const uint8_t *wire, size_t wire_len,
					     uint8_t *frame, size_t *frame_len,
					     struct crypttun_net **out)
{
	struct crypttun_hdr h;
	struct crypttun_net *n;
	struct crypttun_peer *p;
	struct crypttun_pkey *k = NULL;
	uint64_t counter;
	uint32_t src_addr;
	size_t len;

	if (crypttun_hdr_parse(wire, wire_len, &h))
		return crypttun_drop(ct, CRYPTTUN_DROP_MALFORMED);
	if (!(n = crypttun_net_by_vni(ct, h.vni)))
		return crypttun_drop(ct, CRYPTTUN_DROP_NO_NETWORK);
	if (!(p = crypttun_peer_find(n, src_ip)))
		return crypttun_drop(ct, CRYPTTUN_DROP_NOT_A_NODE);
	for (size_t i = 0; i < p->key_count && !k; i++)
		if (p->keys[i].id == h.key_id)
			k = &p->keys[i];
	if (!k)
		return crypttun_drop(ct, CRYPTTUN_DROP_NO_KEY);
	counter = crypttun_get64(h.nonce + 4);
	if (!crypttun_window_check(&k->win, counter))
		return crypttun_drop(ct, CRYPTTUN_DROP_REPLAY);
	len = crypttun_unseal_with(k->ctx, wire, wire_len, frame);
	if (len == 0)
		return crypttun_drop(ct, CRYPTTUN_DROP_AUTH);
	crypttun_window_mark(&k->win, counter);
	if (frame[0] & 1)
		return crypttun_drop(ct, CRYPTTUN_DROP_FLOOD);
	if (!dataplane_addr_of_mac(frame + 6, &src_addr) ||
	    !crypttun_ep_of(n, src_addr, src_ip))
		return crypttun_drop(ct, CRYPTTUN_DROP_SPOOFED);
	*frame_len = len;
	*out = n;
	ct->stats.opened++;
	return CRYPTTUN_DELIVER;
}

enum crypttun_verdict crypttun_rx(struct crypttun *ct, uint32_t src_ip,
				  const uint8_t *wire, size_t wire_len, uint8_t *frame,
				  size_t *frame_len, uint64_t *network_id)
{
	struct crypttun_net *n = NULL;
	enum crypttun_verdict v =
		crypttun_rx_net(ct, src_ip, wire, wire_len, frame, frame_len, &n);

	if (v == CRYPTTUN_DELIVER)
		*network_id = n->network_id;
	return v;
}

/* ---------------------------------------------------------------- the loop's side */

static void crypttun_tap_write(struct crypttun *ct, struct crypttun_net *n,
			       const uint8_t *frame, size_t len)
{
	if (n->tap_fd < 0 || write(n->tap_fd, frame, len) != (ssize_t)len)
		crypttun_drop(ct, CRYPTTUN_DROP_IO);
}

/* The TAP is readable: up to CRYPTTUN_BATCH frames sealed and sent. */
static void crypttun_on_tap(uv_poll_t *h, int status, int events)
{
	struct crypttun_net *n = h->data;
	struct crypttun *ct = n->ct;
	struct mmsghdr msgs[CRYPTTUN_BATCH];
	struct iovec iov[CRYPTTUN_BATCH];
	struct sockaddr_in sas[CRYPTTUN_BATCH];
	unsigned k = 0, done = 0;

	(void)events;
	if (status < 0)
		return;
	memset(msgs, 0, sizeof msgs);
	for (unsigned i = 0; i < CRYPTTUN_BATCH; i++) {
		ssize_t r = read(n->tap_fd, ct->in, CRYPTTUN_FRAME_BYTES_MAX);
		uint8_t *slot = ct->batch + (size_t)k * CRYPTTUN_SLOT_BYTES;
		size_t wl = 0;
		uint32_t dst = 0;
		if (r < 0)
			break; /* EAGAIN: drained */
		switch (crypttun_tx(ct, n->network_id, ct->in, (size_t)r, slot, &wl,
				    &dst)) {
		case CRYPTTUN_SEND:
			memset(&sas[k], 0, sizeof sas[k]);
			sas[k].sin_family = AF_INET;
			sas[k].sin_port = htons(ct->port);
			sas[k].sin_addr.s_addr = htonl(dst);
			iov[k].iov_base = slot;
			iov[k].iov_len = wl;
			msgs[k].msg_hdr.msg_name = &sas[k];
			msgs[k].msg_hdr.msg_namelen = sizeof sas[k];
			msgs[k].msg_hdr.msg_iov = &iov[k];
			msgs[k].msg_hdr.msg_iovlen = 1;
			k++;
			break;
		case CRYPTTUN_REPLY: crypttun_tap_write(ct, n, slot, wl); break;
		default: break;
		}
	}
	/* the batch in one call (what the socket refuses is counted) */
	while (done < k) {
		int sent = sendmmsg(ct->fd, msgs + done, k - done, 0);
		if (sent <= 0) {
			for (; done < k; done++)
				crypttun_drop(ct, CRYPTTUN_DROP_IO);
			break;
		}
		done += (unsigned)sent;
	}
	assert(done == k);
}

/* The socket is readable: up to CRYPTTUN_BATCH datagrams (one recvmmsg)
 * opened and written to their TAPs. */
static void crypttun_on_udp(uv_poll_t *h, int status, int events)
{
	struct crypttun *ct = h->data;
	struct mmsghdr msgs[CRYPTTUN_BATCH];
	struct iovec iov[CRYPTTUN_BATCH];
	struct sockaddr_in sas[CRYPTTUN_BATCH];
	int got;

	(void)events;
	if (status < 0)
		return;
	memset(msgs, 0, sizeof msgs);
	for (unsigned i = 0; i < CRYPTTUN_BATCH; i++) {
		iov[i].iov_base = ct->batch + (size_t)i * CRYPTTUN_SLOT_BYTES;
		iov[i].iov_len = CRYPTTUN_SLOT_BYTES;
		msgs[i].msg_hdr.msg_name = &sas[i];
		msgs[i].msg_hdr.msg_namelen = sizeof sas[i];
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	got = recvmmsg(ct->fd, msgs, CRYPTTUN_BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < got; i++) {
		struct crypttun_net *n = NULL;
		size_t fl = 0;
		if (msgs[i].msg_hdr.msg_namelen != sizeof sas[i] ||
		    sas[i].sin_family != AF_INET) {
			crypttun_drop(ct, CRYPTTUN_DROP_NOT_A_NODE);
			continue;
		}
		if (crypttun_rx_net(ct, ntohl(sas[i].sin_addr.s_addr), iov[i].iov_base,
				    msgs[i].msg_len, ct->out, &fl,
				    &n) == CRYPTTUN_DELIVER)
			crypttun_tap_write(ct, n, ct->out, fl);
	}
}

/* Opens (making) TAP name, non-blocking. Returns the fd or -errno. */
static int crypttun_tap_open(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	{
		/* a longer queue than the default 1000 frames: what the tasks
		 * send in a burst waits for the loop instead of being dropped
		 * (TCP would read a drop as congestion). Best effort. */
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s >= 0) {
			ifr.ifr_qlen = CRYPTTUN_TAP_QLEN;
			ioctl(s, SIOCSIFTXQLEN, &ifr);
			close(s);
		}
	}
	return fd;
}

static void crypttun_free(struct crypttun *ct)
{
	assert(ct->handles_open == 0);
	free(ct->nets);
	if (ct->in)
		OPENSSL_cleanse(ct->in, CRYPTTUN_WIRE_BYTES_MAX + 1);
	if (ct->out)
		OPENSSL_cleanse(ct->out, CRYPTTUN_WIRE_BYTES_MAX);
	if (ct->batch)
		OPENSSL_cleanse(ct->batch, (size_t)CRYPTTUN_BATCH * CRYPTTUN_SLOT_BYTES);
	free(ct->batch);
	free(ct->in);
	free(ct->out);
	free(ct);
}

/* Frees the contexts of peers[0..count) and wipes them. */
static void crypttun_peers_free(struct crypttun_peer *peers, size_t count)
{
	for (size_t i = 0; peers && i < count; i++)
		for (size_t k = 0; k < peers[i].key_count; k++)
			EVP_CIPHER_CTX_free(peers[i].keys[k].ctx);
	if (peers)
		OPENSSL_cleanse(peers, count * sizeof *peers);
	free(peers);
}

static void crypttun_net_free(struct crypttun_net *n)
{
	EVP_CIPHER_CTX_free(n->tx_ctx);
	OPENSSL_cleanse(n->tx_key, sizeof n->tx_key);
	crypttun_peers_free(n->peers, n->peer_count);
	free(n->eps);
	free(n);
}

static void crypttun_net_closed(uv_handle_t *h)
{
	struct crypttun_net *n = h->data;
	struct crypttun *ct = n->ct;

	assert(ct->handles_open > 0);
	ct->handles_open--;
	crypttun_net_free(n);
	if (ct->closing && ct->handles_open == 0)
		crypttun_free(ct);
}

static void crypttun_sock_closed(uv_handle_t *h)
{
	struct crypttun *ct = h->data;

	assert(ct->handles_open > 0);
	ct->handles_open--;
	if (ct->closing && ct->handles_open == 0)
		crypttun_free(ct);
}

/* Closes n's TAP (the device vanishes with its last fd) and frees n, now
 * or once its poll handle closed. */
static void crypttun_net_drop(struct crypttun *ct, struct crypttun_net *n)
{
	if (n->tap_fd >= 0) {
		if (n->polling)
			uv_poll_stop(&n->poll);
		close(n->tap_fd);
		n->tap_fd = -1;
	}
	if (n->polling) {
		n->polling = false;
		uv_close((uv_handle_t *)&n->poll, crypttun_net_closed);
		return;
	}
	crypttun_net_free(n);
	(void)ct;
}

/* ---------------------------------------------------------------- open, set, close */

int crypttun_open(const struct crypttun_cfg *cfg, struct crypttun **out, char *err,
		  size_t err_size)
{
	struct crypttun *ct;
	struct in_addr ia;
	struct sockaddr_in sa;
	int rv;

	netlog_errf(err, err_size, "%s", "");
	if (!cfg->underlay_ip || inet_pton(AF_INET, cfg->underlay_ip, &ia) != 1) {
		netlog_errf(err, err_size, "underlay IP '%s': not a dotted IPv4 address",
			    cfg->underlay_ip ? cfg->underlay_ip : "");
		return CS_EINVAL;
	}
	ct = calloc(1, sizeof *ct);
	if (!ct)
		return CS_ENOMEM;
	ct->fd = -1;
	ct->loop = cfg->loop;
	ct->self_ip = ntohl(ia.s_addr);
	ct->port = cfg->port ? cfg->port : CRYPTTUN_PORT_DEFAULT;
	ct->log = cfg->log;
	ct->log_data = cfg->log_data;
	ct->in = malloc(CRYPTTUN_WIRE_BYTES_MAX + 1);
	ct->out = malloc(CRYPTTUN_WIRE_BYTES_MAX);
	if (cfg->loop)
		ct->batch = malloc((size_t)CRYPTTUN_BATCH * CRYPTTUN_SLOT_BYTES);
	if (!ct->in || !ct->out || (cfg->loop && !ct->batch)) {
		rv = CS_ENOMEM;
		goto err_free;
	}
	if (RAND_bytes((unsigned char *)&ct->salt, sizeof ct->salt) != 1) {
		netlog_errf(err, err_size, "no randomness for the nonce salt");
		rv = CS_EEXEC;
		goto err_free;
	}
	if (!ct->loop) {
		*out = ct;
		return 0;
	}
	ct->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ct->fd < 0) {
		netlog_errf(err, err_size, "socket: %s", strerror(errno));
		rv = CS_EEXEC;
		goto err_free;
	}
	{
		/* room for a burst of frames (the loop drains in batches) */
		int sz = 4 << 20;
		setsockopt(ct->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
		setsockopt(ct->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	}
	{
		/* DF on what it sends: never fragmented on the underlay (the
		 * MTU is lowered for that); the route's learnt PMTU ignored */
		int pmtu = IP_PMTUDISC_PROBE;
		setsockopt(ct->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
	}
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(ct->port);
	sa.sin_addr = ia;
	if (bind(ct->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		netlog_errf(err, err_size,
			    "bind %s:%u (the encrypted overlay's port): %s",
			    cfg->underlay_ip, (unsigned)ct->port, strerror(errno));
		rv = CS_EEXEC;
		goto err_close;
	}
	if (uv_poll_init(ct->loop, &ct->poll, ct->fd) != 0) {
		netlog_errf(err, err_size, "poll on the encrypted overlay's socket");
		rv = CS_EEXEC;
		goto err_close;
	}
	ct->poll.data = ct;
	ct->polling = true;
	ct->handles_open++;
	uv_poll_start(&ct->poll, UV_READABLE, crypttun_on_udp);
	*out = ct;
	return 0;
err_close:
	close(ct->fd);
err_free:
	free(ct->batch);
	free(ct->in);
	free(ct->out);
	free(ct);
	return rv;
}

void crypttun_close(struct crypttun *ct)
{
	if (!ct)
		return;
	assert(!ct->closing);
	ct->closing = true;
	for (size_t i = 0; i < ct->net_count; i++)
		crypttun_net_drop(ct, ct->nets[i]);
	ct->net_count = 0;
	if (ct->fd >= 0) {
		if (ct->polling)
			uv_poll_stop(&ct->poll);
		close(ct->fd);
		ct->fd = -1;
	}
	if (ct->polling) {
		ct->polling = false;
		uv_close((uv_handle_t *)&ct->poll, crypttun_sock_closed);
	}
	if (ct->handles_open == 0)
		crypttun_free(ct);
}

bool crypttun_has(const struct crypttun *ct, uint64_t network_id)
{
	bool found;

	crypttun_net_index(ct, network_id, &found);
	return found;
}

void crypttun_get_stats(const struct crypttun *ct, struct crypttun_stats *out)
{
	*out = ct->stats;
}

void crypttun_remove(struct crypttun *ct, uint64_t network_id)
{
	bool found;
	size_t i = crypttun_net_index(ct, network_id, &found);
	struct crypttun_net *n;

	if (!found)
		return;
	n = ct->nets[i];
	memmove(&ct->nets[i], &ct->nets[i + 1],
		(ct->net_count - i - 1) * sizeof *ct->nets);
	ct->net_count--;
	netlog_logf(ct->log, ct->log_data, ENV_LOG_INFO,
		    "crypttun: network %016llx: %s closed",
		    (unsigned long long)network_id, n->tap);
	crypttun_net_drop(ct, n);
}

/* Builds the endpoint and peer tables of st into eps/peers (malloc'd;
 * peers' keys derived, windows taken from old where the same sender and
 * key id were held). Returns 0, CS_EINVAL, CS_ELIMIT or CS_ENOMEM. */
static int crypttun_tables(const struct crypttun *ct, const struct env_net_state *st,
			   const struct crypttun_net *old, struct crypttun_ep **eps_out,
			   size_t *ep_count, struct crypttun_peer **peers_out,
			   size_t *peer_count)
{
	struct crypttun_ep *eps = NULL;
	struct crypttun_peer *peers = NULL;
	uint32_t *ips = NULL;
	size_t ne = 0, np = 0;
	int rv = 0;

	*eps_out = NULL;
	*peers_out = NULL;
	*ep_count = *peer_count = 0;
	if (st->endpoint_count > DATAPLANE_ENDPOINTS_MAX)
		return CS_ELIMIT;
	eps = calloc(st->endpoint_count + 1, sizeof *eps);
	ips = calloc(st->endpoint_count + 1, sizeof *ips);
	if (!eps || !ips) {
		rv = CS_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < st->endpoint_count; i++) {
		const struct env_net_endpoint *e = &st->endpoints[i];
		uint32_t addr, node;
		if (dataplane_parse_ipv4(e->addr, &addr)) {
			rv = CS_EINVAL;
			goto fail;
		}
		if (e->local || !e->node_ip || !e->node_ip[0])
			continue; /* local, or no underlay known yet: no route */
		if (dataplane_parse_ipv4(e->node_ip, &node)) {
			rv = CS_EINVAL;
			goto fail;
		}
		if (node == ct->self_ip)
			continue;
		eps[ne].addr = addr;
		eps[ne].node_ip = node;
		ips[ne] = node;
		ne++;
	}
	if (ne) {
		qsort(eps, ne, sizeof *eps, crypttun_ep_cmp);
		qsort(ips, ne, sizeof *ips, crypttun_u32_cmp);
	}
	for (size_t i = 0; i < ne; i++)
		if (np == 0 || ips[np - 1] != ips[i])
			ips[np++] = ips[i];
	peers = calloc(np + 1, sizeof *peers);
	if (!peers) {
		rv = CS_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < np; i++) {
		struct crypttun_peer *p = &peers[i];
		const struct crypttun_peer *op =
			old ? crypttun_peer_find(old, ips[i]) : NULL;
		p->ip = ips[i];
		for (size_t k = 0; k < st->key_count; k++) {
			struct crypttun_pkey *pk = &p->keys[p->key_count++];
			pk->id = st->keys[k].id;
			rv = crypttun_derive(st->keys[k].key, st->vni, p->ip, pk->key);
			if (!rv && !(pk->ctx = crypttun_key_ctx(pk->key, false)))
				rv = CS_ENOMEM;
			if (rv)
				goto fail;
			for (size_t j = 0; op && j < op->key_count; j++)
				if (op->keys[j].id == pk->id)
					pk->win = op->keys[j].win;
		}
	}
	free(ips);
	*eps_out = eps;
	*ep_count = ne;
	*peers_out = peers;
	*peer_count = np;
	return 0;
fail:
	free(ips);
	free(eps);
	crypttun_peers_free(peers, np);
	return rv;
}

int crypttun_set(struct crypttun *ct, const struct env_net_state *st, unsigned mtu,
		 char *err, size_t err_size)
{
	struct crypttun_ep *eps = NULL;
	struct crypttun_peer *peers = NULL;
	size_t ep_count = 0, peer_count = 0, at;
	struct crypttun_net *n, *old;
	uint8_t tx_key[32];
	EVP_CIPHER_CTX *tx_ctx = NULL;
	bool found;
	int rv;

	netlog_errf(err, err_size, "%s", "");
	assert(!ct->closing);
	if (!st->encrypted || st->vni == 0 || st->vni > DATAPLANE_VNI_MAX ||
	    st->key_count > ENV_NET_KEYS_MAX ||
	    (st->key_count && (!st->keys || st->key_primary >= st->key_count)) ||
	    mtu > CRYPTTUN_FRAME_BYTES_MAX - CRYPTTUN_FRAME_BYTES_MIN) {
		netlog_errf(err, err_size,
			    "network %016llx: not an encrypted network crypttun can "
			    "carry (vni %u, %zu keys, mtu %u)",
			    (unsigned long long)st->network_id, (unsigned)st->vni,
			    st->key_count, mtu);
		return CS_EINVAL;
	}
	for (size_t k = 0; k < st->key_count; k++) {
		if (st->keys[k].id == 0 ||
		    (k > 0 && st->keys[k].id <= st->keys[k - 1].id)) {
			netlog_errf(err, err_size,
				    "network %016llx: key ids must be > 0 and ascending",
				    (unsigned long long)st->network_id);
			return CS_EINVAL;
		}
	}
	for (size_t i = 0; i < ct->net_count; i++) {
		if (ct->nets[i]->vni == st->vni &&
		    ct->nets[i]->network_id != st->network_id) {
			netlog_errf(err, err_size,
				    "network %016llx: vni %u is network "
				    "%016llx's here",
				    (unsigned long long)st->network_id, (unsigned)st->vni,
				    (unsigned long long)ct->nets[i]->network_id);
			return CS_EINVAL;
		}
	}
	at = crypttun_net_index(ct, st->network_id, &found);
	old = found ? ct->nets[at] : NULL;
	if (old && old->vni != st->vni) {
		/* another VNI: another TAP */
		crypttun_remove(ct, st->network_id);
		old = NULL;
		at = crypttun_net_index(ct, st->network_id, &found);
		assert(!found);
	}
	if (!old && ct->net_count == CRYPTTUN_NETS_MAX) {
		netlog_errf(err, err_size, "over %u encrypted networks on this node",
			    CRYPTTUN_NETS_MAX);
		return CS_ELIMIT;
	}
	if (st->key_count) {
		rv = crypttun_derive(st->keys[st->key_primary].key, st->vni, ct->self_ip,
				     tx_key);
		if (!rv && !(tx_ctx = crypttun_key_ctx(tx_key, true)))
			rv = CS_ENOMEM;
		if (rv) {
			OPENSSL_cleanse(tx_key, sizeof tx_key);
			return rv;
		}
	}
	rv = crypttun_tables(ct, st, old, &eps, &ep_count, &peers, &peer_count);
	if (rv) {
		netlog_errf(err, err_size, "network %016llx: %s (its endpoints or keys)",
			    (unsigned long long)st->network_id, cs_strerror(rv));
		goto fail;
	}
	if (old) {
		n = old;
		crypttun_peers_free(n->peers, n->peer_count);
		free(n->eps);
	} else {
		struct timespec ts;
		if (ct->net_count == ct->net_cap) {
			size_t cap = ct->net_cap ? ct->net_cap * 2 : 8;
			struct crypttun_net **nets =
				realloc(ct->nets, cap * sizeof *nets);
			if (!nets) {
				rv = CS_ENOMEM;
				goto fail;
			}
			ct->nets = nets;
			ct->net_cap = cap;
		}
		n = calloc(1, sizeof *n);
		if (!n) {
			rv = CS_ENOMEM;
			goto fail;
		}
		n->ct = ct;
		n->network_id = st->network_id;
		n->vni = st->vni;
		n->tap_fd = -1;
		crypttun_tap_name(st->vni, n->tap);
		/* the counter starts at the wall clock's ns: above anything an
		 * earlier process of this node sent (it sent less than one
		 * frame per ns of its life) */
		clock_gettime(CLOCK_REALTIME, &ts);
		n->tx_counter = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		if (ct->loop) {
			int fd = crypttun_tap_open(n->tap);
			if (fd < 0) {
				netlog_errf(err, err_size, "TAP %s: %s", n->tap,
					    strerror(-fd));
				free(n);
				rv = CS_EEXEC;
				goto fail;
			}
			n->tap_fd = fd;
			if (uv_poll_init(ct->loop, &n->poll, fd) != 0) {
				netlog_errf(err, err_size, "TAP %s: no poll", n->tap);
				close(fd);
				free(n);
				rv = CS_EEXEC;
				goto fail;
			}
			n->poll.data = n;
			n->polling = true;
			ct->handles_open++;
			uv_poll_start(&n->poll, UV_READABLE, crypttun_on_tap);
		}
		memmove(&ct->nets[at + 1], &ct->nets[at],
			(ct->net_count - at) * sizeof *ct->nets);
		ct->nets[at] = n;
		ct->net_count++;
		netlog_logf(ct->log, ct->log_data, ENV_LOG_INFO,
			    "crypttun: network %016llx vni %u: %s open",
			    (unsigned long long)st->network_id, (unsigned)st->vni,
			    n->tap);
	}
	if (n->has_key != (st->key_count > 0) ||
	    (st->key_count && n->tx_key_id != st->keys[st->key_primary].id))
		netlog_logf(ct->log, ct->log_data, ENV_LOG_INFO,
			    "crypttun: network %016llx: sending with key %u (%zu keys "
			    "accepted)",
			    (unsigned long long)st->network_id,
			    st->key_count ? (unsigned)st->keys[st->key_primary].id : 0u,
			    st->key_count);
	n->eps = eps;
	n->ep_count = ep_count;
	n->peers = peers;
	n->peer_count = peer_count;
	n->mtu = mtu;
	n->has_key = st->key_count > 0;
	n->tx_key_id = n->has_key ? st->keys[st->key_primary].id : 0;
	EVP_CIPHER_CTX_free(n->tx_ctx);
	n->tx_ctx = tx_ctx;
	tx_ctx = NULL;
	if (n->has_key)
		memcpy(n->tx_key, tx_key, sizeof tx_key);
	else
		OPENSSL_cleanse(n->tx_key, sizeof n->tx_key);
	OPENSSL_cleanse(tx_key, sizeof tx_key);
	assert(at < ct->net_count && ct->nets[at] == n);
	return 0;
fail:
	OPENSSL_cleanse(tx_key, sizeof tx_key);
	EVP_CIPHER_CTX_free(tx_ctx);
	crypttun_peers_free(peers, peer_count);
	free(eps);
	return rv;
}
