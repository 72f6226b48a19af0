/* dataplane: the real world's data plane (core/env.h's net_set/net_remove)
 * on Linux, through rtnetlink (libmnl): per network a bridge cs-br-<vni>
 * holding the network's gateway address (the same on every node: an anycast
 * gateway that never leaves the node, since nothing floods), joined by a
 * VXLAN device cs-vx-<vni> (the network's VNI, local = the node's underlay
 * IP, no learning, proxy ARP from its neighbour table), with one forwarding
 * (FDB) and one neighbour entry per remote endpoint, each MAC derived from
 * the address (02:42 + the IPv4 address, as Docker does), so that no MAC
 * crosses the wire and nothing floods (no all-zeros FDB entry). Containers
 * join the bridge through a Docker bridge network named by the network id
 * (net/docker.c: Docker makes the veth, the address, the default route via
 * the gateway and the NAT out). uvenv calls it from the loop; each call is a
 * few synchronous netlink round trips to the kernel (no process, no
 * blocking on anything but the kernel). One `struct dataplane` per node; it
 * owns its netlink socket and its table of networks. Everything it makes
 * carries a name derived from the VNI, so that a restarted daemon adopts it
 * (net_set on a bridge that exists reuses it). */
#ifndef NET_DATAPLANE_H
#define NET_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"

struct dataplane;

#define DATAPLANE_VXLAN_PORT_DEFAULT 4789u
/* VXLAN over IPv4: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. */
#define DATAPLANE_VXLAN_OVERHEAD 50u
/* The networks one node realises at once. */
#define DATAPLANE_NETS_MAX 1024u
/* The endpoints of one network (a network's /16 at most). */
#define DATAPLANE_ENDPOINTS_MAX 65536u
/* The largest VXLAN id (24 bits). */
#define DATAPLANE_VNI_MAX	    0xffffffu
#define DATAPLANE_IFNAME_BYTES	    16u /* IFNAMSIZ */
#define DATAPLANE_DOCKER_NAME_BYTES 32u /* "cswarm-net-" + 16 hex digits */
/* (issue 17 encryption) an encrypted network's frames cross in
 * net/crypttun's tunnel (outer IPv4 20 + UDP 8 + its header 24 + tag 16 +
 * the inner Ethernet 14 = 82 bytes): its devices' MTU is this much below
 * the VXLAN networks' (82 - DATAPLANE_VXLAN_OVERHEAD), so that nothing
 * fragments. */
#define DATAPLANE_CRYPT_EXTRA 32u

struct dataplane_cfg {
	const char *underlay_ip; /* dotted IPv4: the VXLAN's local address */
	uint16_t vxlan_port;	 /* 0: DATAPLANE_VXLAN_PORT_DEFAULT */
	/* the MTU of bridges, VXLAN devices and containers; 0: the MTU of the
	 * interface holding underlay_ip minus DATAPLANE_VXLAN_OVERHEAD */
	unsigned mtu;
	/* optional log sink; msg is borrowed for the call */
	void (*log)(void *data, enum env_log_level lvl, const char *msg);
	void *log_data;
};

/* What the data plane holds of one network (for net/docker.c's attachment:
 * the Docker network that joins a container to this node's bridge). */
struct dataplane_net {
	uint64_t network_id;
	uint32_t vni;
	char bridge[DATAPLANE_IFNAME_BYTES];	       /* cs-br-<vni> */
	char vxlan[DATAPLANE_IFNAME_BYTES];	       /* cs-vx-<vni> */
	char docker_name[DATAPLANE_DOCKER_NAME_BYTES]; /* cswarm-net-<id hex> */
	char subnet[20];			       /* "10.0.3.0/24" */
	char gateway[16];			       /* "10.0.3.1" */
	bool internal;
	unsigned mtu;
	/* (appended, issue 17 encryption) joined by the TAP device tap
	 * (cs-tp-<vni>, net/crypttun's) instead of the VXLAN device */
	bool encrypted;
	char tap[DATAPLANE_IFNAME_BYTES];
};

/* dataplane_open opens a netlink socket and proves the kernel can do it: a
 * probe VXLAN device (cs-vx-probe) is made and deleted (needs
 * CAP_NET_ADMIN and VXLAN), and underlay_ip must be an address of this
 * node. Then it sweeps what an earlier daemon left that nothing uses: each
 * bridge cs-br-<vni> with no port but its cs-vx-<vni> is deleted with it
 * (a bridge with a container on it stays: it is adopted by the net_set
 * that declares its network again). Returns 0 and *out, or CS_EINVAL (no or bad underlay IP, a loopback
 * one: nodes sharing a kernel cannot each have the network), CS_ENOTSUP
 * (the kernel or our privileges refuse: err has the kernel's words),
 * CS_ENOMEM. err is always NUL-terminated when err_size > 0. */
int dataplane_open(const struct dataplane_cfg *cfg, struct dataplane **out, char *err,
		   size_t err_size);

/* dataplane_set_log sends dp's log lines to log (NULL: none) from now on. */
void dataplane_set_log(struct dataplane *dp,
		       void (*log)(void *data, enum env_log_level lvl, const char *msg),
		       void *data);

/* dataplane_close frees dp. What it made in the kernel stays (a restarted
 * daemon adopts it). NULL is fine. */
void dataplane_close(struct dataplane *dp);

/* dataplane_set realises st (borrowed for the call) on this node before it
 * returns: bridge, VXLAN, gateway address, and the FDB and neighbour
 * entries of st's remote endpoints, the kernel's entries made equal to them
 * (an entry the kernel has and st does not name is removed); on the
 * ingress network, st->node_addr (when given) as a /32 of the bridge, and
 * the bridge's MAC that address's (02:42 + IPv4), so that the other
 * nodes' entries for it reach this node (the routing mesh). Returns 0;
 * CS_EINVAL for a malformed state (bad address, subnet, gateway or VNI; a
 * VNI another network holds here), CS_ELIMIT (over DATAPLANE_NETS_MAX or
 * DATAPLANE_ENDPOINTS_MAX), CS_EEXEC with the kernel's words in err (what
 * was made of this network is then removed, never left half-made),
 * CS_ENOMEM. */
int dataplane_set(struct dataplane *dp, const struct env_net_state *st, char *err,
		  size_t err_size);

/* dataplane_remove deletes network_id's VXLAN device (or TAP) and bridge (their
 * entries go with them). Unknown ids: 0. CS_EEXEC with the kernel's words
 * in err when a delete fails (the network is forgotten all the same). */
int dataplane_remove(struct dataplane *dp, uint64_t network_id, char *err,
		     size_t err_size);

/* dataplane_find returns what dp holds of network_id (owned by dp, valid
 * until the next set or remove), or NULL when it was not declared. */
const struct dataplane_net *dataplane_find(const struct dataplane *dp,
					   uint64_t network_id);

/* dataplane_mtu returns the MTU dp gives its devices and containers. */
unsigned dataplane_mtu(const struct dataplane *dp);

/* ---------------------------------------------------------------- pure parts
 * (no kernel: unit-tested) */

/* The names of network vni's devices, and of network id's Docker network. */
void dataplane_bridge_name(uint32_t vni, char out[DATAPLANE_IFNAME_BYTES]);
void dataplane_vxlan_name(uint32_t vni, char out[DATAPLANE_IFNAME_BYTES]);
void dataplane_docker_name(uint64_t network_id, char out[DATAPLANE_DOCKER_NAME_BYTES]);
/* (issue 17 encryption) cs-tp-<vni>: an encrypted network's TAP. */
void dataplane_tap_name(uint32_t vni, char out[DATAPLANE_IFNAME_BYTES]);

/* dataplane_mac_of writes the MAC of IPv4 address addr (host order):
 * 02:42:a:b:c:d, locally administered and unicast, as Docker derives it.
 * dataplane_addr_of_mac is its inverse: true and *addr for such a MAC. */
void dataplane_mac_of(uint32_t addr, uint8_t mac[6]);
bool dataplane_addr_of_mac(const uint8_t mac[6], uint32_t *addr);

/* dataplane_parse_ipv4 parses a dotted IPv4 address into host order;
 * dataplane_parse_cidr "a.b.c.d/n" (n in 1..30). Return 0 or CS_EINVAL. */
int dataplane_parse_ipv4(const char *s, uint32_t *out);
int dataplane_parse_cidr(const char *s, uint32_t *net, unsigned *prefix);

/* One remote endpoint as the kernel holds it: its address (its MAC is
 * derived) and the underlay IP of its node (both host order). For
 * neighbour entries node_ip is 0. */
struct dataplane_entry {
	uint32_t addr;
	uint32_t node_ip;
};

/* dataplane_entries_of returns, sorted by (addr, node_ip) and without
 * duplicates, the entries st asks for on a node whose underlay IP is
 * self_ip: one per endpoint that is not local (neither marked local nor on
 * self_ip), its address inside st's subnet. with_node false gives the
 * neighbour entries (node_ip 0, one per address). *out is malloc'd (the
 * caller frees it; NULL when *count is 0). Returns 0, CS_EINVAL (an
 * endpoint's address or node IP does not parse, or lies outside the
 * subnet), CS_ELIMIT (more than DATAPLANE_ENDPOINTS_MAX), CS_ENOMEM. */
int dataplane_entries_of(const struct env_net_state *st, uint32_t self_ip, bool with_node,
			 struct dataplane_entry **out, size_t *count);

/* dataplane_entry_sort sorts and deduplicates es in place; returns the new
 * count. */
size_t dataplane_entry_sort(struct dataplane_entry *es, size_t count);

/* dataplane_diff compares the kernel's entries (have, sorted, no
 * duplicates) with the wanted ones (want, likewise): writes to del what is
 * in have and not in want (at most have_count), to add what is in want and
 * not in have (at most want_count), both in order. */
void dataplane_diff(const struct dataplane_entry *have, size_t have_count,
		    const struct dataplane_entry *want, size_t want_count,
		    struct dataplane_entry *del, size_t *del_count,
		    struct dataplane_entry *add, size_t *add_count);

#endif
