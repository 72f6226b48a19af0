/* crypttun: the encrypted overlay's tunnel (issue 17, `--opt encrypted`),
 * in swarmd, because this machine's kernel has no IPsec AEAD, WireGuard or
 * macsec. Per encrypted network, a TAP device (cs-tp-<vni>, which
 * net/dataplane.c puts on the network's bridge in place of a VXLAN device)
 * whose frames are read on the libuv loop, sealed with AES-256-GCM and sent
 * over UDP to the node holding the destination MAC (the MACs derived from
 * addresses, as the VXLAN path's entries); frames received on the node's
 * one UDP socket are opened, checked (a node of the network, a key the
 * node holds, no replay, a source MAC of that node's endpoints) and written
 * to the TAP. ARP for remote endpoints is answered from the endpoint table:
 * nothing floods, nothing broadcast crosses the wire. With no key, nothing
 * is sent: never clear. uvenv calls it from net_set/net_remove; one
 * `struct crypttun` per node owns its socket, TAP fds and key material.
 *
 * The wire (all big-endian; the 24-byte header is the AEAD's AAD):
 *   u8 version (1), u8 0, u16 0, u32 key id, u32 VNI, 12-byte nonce
 *   (u32 per-process random salt, u64 counter), ciphertext (the Ethernet
 *   frame), 16-byte tag.
 * Key: HKDF-SHA256 of the network key (never used raw), info = label, the
 * VNI and the sender's underlay IPv4: each sender of each network has its
 * own key, so that nonces of two nodes never meet under one key. The
 * counter starts at the wall clock's nanoseconds when the network is set up
 * in this process and counts up, so that a restarted sender is above what
 * receivers saw of it; the receiver keeps a sliding window per (sender,
 * key). */
#ifndef NET_CRYPTTUN_H
#define NET_CRYPTTUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/env.h"

#define CRYPTTUN_PORT_DEFAULT 4788u
#define CRYPTTUN_VERSION      1u
#define CRYPTTUN_HDR_BYTES    24u
#define CRYPTTUN_TAG_BYTES    16u
#define CRYPTTUN_NONCE_BYTES  12u
/* outer IPv4 20 + UDP 8 + header 24 + tag 16 + the inner Ethernet 14: what
 * the network's MTU is lowered by from the underlay's */
#define CRYPTTUN_OVERHEAD 82u
/* the largest frame carried (an inner MTU of 9000 plus Ethernet) */
#define CRYPTTUN_FRAME_BYTES_MAX 9014u
#define CRYPTTUN_WIRE_BYTES_MAX \
	(CRYPTTUN_HDR_BYTES + CRYPTTUN_FRAME_BYTES_MAX + CRYPTTUN_TAG_BYTES)
#define CRYPTTUN_FRAME_BYTES_MIN 14u /* an Ethernet header */
/* the replay window: counters this far below the highest seen are refused */
#define CRYPTTUN_WINDOW_BITS 1024u
/* frames read from one fd per loop turn before yielding */
#define CRYPTTUN_BATCH 64u
/* the TAP's transmit queue (frames the tasks sent, waiting for the loop) */
#define CRYPTTUN_TAP_QLEN 8192
/* the encrypted networks one node carries (as DATAPLANE_NETS_MAX) */
#define CRYPTTUN_NETS_MAX     1024u
#define CRYPTTUN_IFNAME_BYTES 16u
/* drops are logged at most once per this many ms per reason */
#define CRYPTTUN_LOG_EVERY_MS 10000u

/* Why a frame went nowhere (counted in crypttun_stats.drops[]). */
enum crypttun_drop {
	CRYPTTUN_DROP_MALFORMED,  /* a header that does not parse */
	CRYPTTUN_DROP_NO_NETWORK, /* a VNI no encrypted network here has */
	CRYPTTUN_DROP_NOT_A_NODE, /* from an address no endpoint's node is */
	CRYPTTUN_DROP_NO_KEY,	  /* a key id not held, or no key to send */
	CRYPTTUN_DROP_AUTH,	  /* the tag does not verify */
	CRYPTTUN_DROP_REPLAY,	  /* a counter seen, or below the window */
	CRYPTTUN_DROP_SPOOFED,	  /* inner source MAC not of that node */
	CRYPTTUN_DROP_NO_ROUTE,	  /* to a MAC no remote endpoint has */
	CRYPTTUN_DROP_FLOOD,	  /* broadcast/multicast that is no ARP we answer */
	CRYPTTUN_DROP_IO,	  /* a send or a TAP write failed (full) */
	/* a frame over the network's MTU (a task whose interface kept an
	 * older, larger MTU): sealed it would fragment on the underlay */
	CRYPTTUN_DROP_TOO_BIG,
	CRYPTTUN_DROP_COUNT
};

struct crypttun_stats {
	uint64_t sealed, opened, arp_answered;
	uint64_t drops[CRYPTTUN_DROP_COUNT];
};

struct crypttun_cfg {
	const char *underlay_ip; /* dotted IPv4: the socket's and HKDF's */
	uint16_t port;		 /* 0: CRYPTTUN_PORT_DEFAULT */
	/* NULL: a detached tunnel (unit tests): no socket, no TAP; frames go
	 * through crypttun_tx/crypttun_rx only */
	uv_loop_t *loop;
	void (*log)(void *data, enum env_log_level lvl, const char *msg);
	void *log_data;
};

struct crypttun;

/* crypttun_open binds the UDP socket (with a loop) and draws the nonce salt.
 * Returns 0 and *out, CS_EINVAL (a bad IP), CS_EEXEC (bind failed: err
 * says why), CS_ENOMEM. err always NUL-terminated when err_size > 0. */
int crypttun_open(const struct crypttun_cfg *cfg, struct crypttun **out, char *err,
		  size_t err_size);

/* crypttun_close closes every TAP (their devices vanish) and the socket;
 * with a loop, the memory is freed once its handles closed (run the loop).
 * NULL is fine. */
void crypttun_close(struct crypttun *ct);

/* crypttun_tap_name writes cs-tp-<vni>. */
void crypttun_tap_name(uint32_t vni, char out[CRYPTTUN_IFNAME_BYTES]);

/* crypttun_set makes (or updates) encrypted network st: its TAP (made and
 * opened on the first call, with a loop), its remote endpoints and keys.
 * Keys: the primary is sent with from now on; every given key is accepted;
 * windows of keys still given are kept, those of keys gone are dropped.
 * mtu: the TAP's MTU (the caller puts it on the bridge); a frame over it
 * (plus its Ethernet header) is dropped, never sent to fragment; the
 * socket sets DF. Returns 0,
 * CS_EINVAL (not encrypted, a bad VNI, endpoint or key list: more than
 * ENV_NET_KEYS_MAX, a zero id, a primary out of range), CS_ELIMIT, CS_EEXEC
 * (the TAP: err says why), CS_ENOMEM. On failure the network's earlier
 * state is kept. */
int crypttun_set(struct crypttun *ct, const struct env_net_state *st, unsigned mtu,
		 char *err, size_t err_size);

/* crypttun_remove closes network_id's TAP (the device vanishes) and forgets
 * it. Unknown ids: nothing. */
void crypttun_remove(struct crypttun *ct, uint64_t network_id);

/* crypttun_has returns whether network_id is one ct carries. */
bool crypttun_has(const struct crypttun *ct, uint64_t network_id);

/* crypttun_stats copies the counters. */
void crypttun_get_stats(const struct crypttun *ct, struct crypttun_stats *out);

/* ---------------------------------------------------------------- the frame paths
 * (what the loop's callbacks run; called directly by the unit tests) */

enum crypttun_verdict {
	CRYPTTUN_SEND,	  /* tx: wire[0..*wire_len) goes to *dst_ip */
	CRYPTTUN_REPLY,	  /* tx: an ARP answer in wire[0..*wire_len) for the TAP */
	CRYPTTUN_DELIVER, /* rx: frame[0..*frame_len) goes to the TAP */
	CRYPTTUN_DROP	  /* counted */
};

/* crypttun_tx: a frame read from network_id's TAP. wire has room for
 * CRYPTTUN_WIRE_BYTES_MAX. dst_ip host order. */
enum crypttun_verdict crypttun_tx(struct crypttun *ct, uint64_t network_id,
				  const uint8_t *frame, size_t frame_len, uint8_t *wire,
				  size_t *wire_len, uint32_t *dst_ip);

/* crypttun_rx: a datagram from src_ip (host order). frame has room for
 * CRYPTTUN_FRAME_BYTES_MAX; *network_id says whose TAP. */
enum crypttun_verdict crypttun_rx(struct crypttun *ct, uint32_t src_ip,
				  const uint8_t *wire, size_t wire_len, uint8_t *frame,
				  size_t *frame_len, uint64_t *network_id);

/* ---------------------------------------------------------------- pure parts */

struct crypttun_hdr {
	uint8_t version;
	uint32_t key_id;
	uint32_t vni;
	uint8_t nonce[CRYPTTUN_NONCE_BYTES];
};

/* crypttun_hdr_parse reads the header of wire (any bytes, any length).
 * Returns 0 and *h when wire holds a version-1 header with zero reserved
 * bytes, a VNI of 24 bits, a non-zero key id and room for at least an
 * Ethernet header and the tag; CS_EINVAL otherwise. */
int crypttun_hdr_parse(const uint8_t *wire, size_t wire_len, struct crypttun_hdr *h);

/* crypttun_derive writes the key of sender_ip (host order) on network vni
 * under network key nk. Returns 0 or CS_ENOMEM (OpenSSL failed). */
int crypttun_derive(const uint8_t nk[ENV_NET_KEY_BYTES], uint32_t vni, uint32_t sender_ip,
		    uint8_t out[32]);

/* crypttun_seal writes header h then frame sealed under key to wire (room
 * for CRYPTTUN_HDR_BYTES + frame_len + CRYPTTUN_TAG_BYTES). Returns the
 * bytes written, or 0 when OpenSSL fails or frame_len is out of bounds. */
size_t crypttun_seal(const uint8_t key[32], const struct crypttun_hdr *h,
		     const uint8_t *frame, size_t frame_len, uint8_t *wire);

/* crypttun_unseal opens wire (parsed into h) under key into frame (room for
 * wire_len - header - tag). Returns the frame's length, or 0 when the tag
 * does not verify (tampered, or another key). */
size_t crypttun_unseal(const uint8_t key[32], const uint8_t *wire, size_t wire_len,
		       uint8_t *frame);

/* A sliding window of counters seen (one per sender and key). */
struct crypttun_window {
	bool any;
	uint64_t top;
	uint64_t bits[CRYPTTUN_WINDOW_BITS / 64];
};

/* crypttun_window_check: whether counter c would be new (not seen, not
 * below the window). crypttun_window_mark records it (after the tag
 * verified). */
bool crypttun_window_check(const struct crypttun_window *w, uint64_t c);
void crypttun_window_mark(struct crypttun_window *w, uint64_t c);

/* crypttun_arp_answer: when frame is an ARP request (Ethernet, IPv4) for
 * target address target (host order, checked by the caller to be a remote
 * endpoint), writes the answer (from target's derived MAC) to out (room for
 * 42 bytes) and returns its length; 0 when frame is no such request.
 * crypttun_arp_target reads a request's target address: true and *target. */
bool crypttun_arp_target(const uint8_t *frame, size_t len, uint32_t *target);
size_t crypttun_arp_answer(const uint8_t *frame, size_t len, uint8_t *out);

#endif
