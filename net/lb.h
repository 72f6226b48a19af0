/* lb: VIP load balancing and the routing mesh (issue 17) with nftables, for
 * the data plane (net/dataplane.c) to call from net_set. The kernel here has
 * no IPVS, so a VIP and an ingress-published port are DNAT rules that spread
 * new connections over the service's running tasks (numgen random mod N;
 * conntrack keeps an existing flow where it was).
 *
 * Where the rules live: the glue's choice, two forms of one table.
 * - The node's namespace, on the network's bridge (bridge given): the VIPs
 *   are addresses of the bridge (the data plane adds each as a /32, like the
 *   anycast gateway, so a task's ARP for a VIP is answered on its own node);
 *   a packet from the bridge to a VIP is DNATed (nat PREROUTING) to a backend
 *   and sent back out of the bridge, local or over VXLAN, keeping the
 *   client's source. The answer crosses this node's bridge on its way to the
 *   client, where br_netfilter (bridge-nf-call-iptables=1: the kernel's
 *   default, and what Docker sets) lets conntrack undo the DNAT. A task
 *   given itself as the backend of a VIP it calls would answer itself
 *   directly: that connection is masqueraded to the gateway (set
 *   "hairpin"), and the task's bridge port must be in hairpin mode
 *   (br_netfilter bridges the DNATed frame back out of the port it came in
 *   by). No race with a container's start; one table per network.
 * - A task container's own namespace (bridge NULL), nat OUTPUT (as Docker's
 *   IPVS sits in each sandbox): the connection leaves the client addressed
 *   to a backend; no VIP address on the bridge and no br_netfilter needed,
 *   but one table per container to keep, and a connection opened before its
 *   container's table is in place keeps going to the VIP itself.
 * A VIP with no running task refuses at once (a TCP reset, ICMP for the
 * rest), never a timeout. The ingress rules go in the node's namespace: a
 * published port, on any local address of the node, is DNATed to a
 * backend's target port and SNATed on its way out of the ingress bridge to
 * this node's own address on the ingress network, so that the answer comes
 * back through this node. Without such an address (the gateway is the same
 * on every node, so an answer to it would stop on the backend's node) only
 * this node's backends can answer: the port then spreads over those, and
 * refuses on a node that has none.
 *
 * The text is made by pure functions (lb_model_*, lb_*_script: no I/O), so
 * that it is tested exactly; lb_apply is the one function that touches the
 * kernel (libnftables, inside a network namespace when asked). Table names:
 * "cswarm_vip_<network id, 16 hex>" per network in a container's namespace,
 * "cswarm_ingress" in the node's. Limits are here (net/ does not own
 * core/limits.h): a state over one is rejected with CS_ELIMIT, never cut. */
#ifndef NET_LB_H
#define NET_LB_H

#include <stddef.h>
#include <stdint.h>

#include "core/env.h"

#define LB_SERVICES_MAX	    4096	/* services of one network */
#define LB_BACKENDS_MAX	    4096	/* running tasks of one service */
#define LB_ENDPOINTS_MAX    65536	/* endpoints of one network (a /16) */
#define LB_PORTS_MAX	    64		/* ingress ports of one service */
#define LB_SCRIPT_BYTES_MAX (64u << 20) /* one nft transaction's text */
#define LB_ERR_BYTES	    512		/* room for nft's error text */

/* One service as the rules see it: a deep copy of what they use of an
 * env_net_service (addresses checked to be IPv4 dotted quads, ports checked,
 * backends ascending and without duplicates). */
struct lb_port {
	uint16_t published;
	uint16_t target;
	enum env_port_proto proto;
};

struct lb_service {
	uint64_t service_id;
	char vip[16]; /* "" in dnsrr mode: no VIP rules */
	char (*backends)[16];
	size_t backend_count;
	struct lb_port *ports; /* ingress only; sorted (proto, published) */
	size_t port_count;
};

/* What was (or is to be) applied for one network: ascending service_id. */
struct lb_model {
	uint64_t network_id;
	struct lb_service *services;
	size_t service_count;
	char (*local)[16]; /* the network's endpoints on this node, ascending */
	size_t local_count;
};

/* lb_model_build copies what the rules need of st into *out (which the
 * caller frees with lb_model_free; zeroed first). Borrows st. Returns 0,
 * CS_EINVAL (an address that is not IPv4, a published or target port 0 or
 * over 65535, services not ascending, duplicate published ports),
 * CS_ELIMIT (over a limit above) or CS_ENOMEM; on error *out is empty. */
int lb_model_build(const struct env_net_state *st, struct lb_model *out);

/* lb_model_free frees what *m owns and empties it; an empty model is fine. */
void lb_model_free(struct lb_model *m);

/* lb_vip_table_name writes "cswarm_vip_<16 hex>" for network_id into
 * buf (size >= 32). */
void lb_vip_table_name(uint64_t network_id, char *buf, size_t size);

/* lb_vip_script writes into *text (the caller frees it with free()) the nft
 * transaction that takes the VIP table of cur's network from old to cur, in
 * the node's namespace on bridge (1..15 of [A-Za-z0-9_.-]) or in a task
 * container's (bridge NULL); a change of bridge needs old NULL. old NULL: the whole table, replacing whatever is
 * there of that name (idempotent). old given: only the difference, assuming
 * the kernel holds exactly old (a service whose backends changed gets its
 * chain flushed and its one rule written again; an unchanged one is not
 * named). old and cur must be of the same network. Returns 0 (text ""
 * when nothing changes), CS_EINVAL (bad bridge), CS_ELIMIT, CS_ENOMEM. */
int lb_vip_script(const struct lb_model *old, const struct lb_model *cur,
		  const char *bridge, char **text);

/* lb_ingress_script: the same for the node's ingress table from cur (the
 * ingress network's model). bridge is the ingress network's bridge on this
 * node; snat_addr this node's own IPv4 on the ingress network (an address
 * of the bridge), or NULL: only cur's local backends, masqueraded. A
 * change of bridge or snat_addr needs old NULL. Returns 0, CS_EINVAL (bad
 * bridge or snat_addr), CS_ELIMIT, CS_ENOMEM. */
int lb_ingress_script(const struct lb_model *old, const struct lb_model *cur,
		      const char *bridge, const char *snat_addr, char **text);

/* lb_vip_remove_script / lb_ingress_remove_script: the text that deletes the
 * table (idempotent: nothing there is fine). Caller frees *text. */
int lb_vip_remove_script(uint64_t network_id, char **text);
int lb_ingress_remove_script(char **text);

/* lb_apply runs script as one nft transaction (all of it or nothing) in the
 * network namespace at netns_path ("/proc/PID/ns/net", "/run/netns/X"...)
 * or, NULL, the caller's own. Synchronous (a netlink round trip); the
 * calling thread is moved into the namespace and back, so nothing else may
 * open sockets on this thread meanwhile (true on the libuv loop's thread
 * inside one callback). Returns 0; CS_EEXEC with nft's own error text (or
 * the failing system call's) in err (size err_size, may be 0) otherwise. An
 * empty script is 0 and touches nothing. */
int lb_apply(const char *netns_path, const char *script, char *err, size_t err_size);

/* ---------------------------------------------------------------- glue
 * One table kept in step with the store: what was applied last, so that the
 * next sync writes only the difference. */

struct lb_target {
	char *netns_path;  /* owned; NULL: the node's namespace */
	int ingress;	   /* 1: the node's ingress table */
	char *bridge;	   /* owned, or NULL (a container's VIP table) */
	char *snat_addr;   /* ingress: owned, or NULL */
	int applied_valid; /* applied holds what the kernel has */
	struct lb_model applied;
};

/* lb_target_init_vip: a network's VIP table in the namespace at netns_path
 * (NULL: the caller's), on bridge (NULL: a container's namespace).
 * lb_target_init_ingress: the node's ingress table (netns_path NULL: the
 * caller's namespace). Both return 0 or CS_ENOMEM/CS_EINVAL; on error
 * nothing needs freeing. */
int lb_target_init_vip(struct lb_target *t, const char *netns_path, const char *bridge);
int lb_target_init_ingress(struct lb_target *t, const char *netns_path,
			   const char *bridge, const char *snat_addr);

/* lb_target_sync makes the kernel hold st's rules: the difference from the
 * last applied, or (first time, or after that failed) the whole table.
 * Borrows st (its endpoints say which tasks are local). Returns 0; CS_EINVAL/CS_ELIMIT for st (nothing applied);
 * CS_EEXEC with nft's words in err when even the whole table failed (the
 * next sync writes the whole table). */
int lb_target_sync(struct lb_target *t, const struct env_net_state *st, char *err,
		   size_t err_size);

/* The routing mesh through Docker's filter (issue 17): where Docker's
 * FORWARD policy drops what it did not publish itself, what the ingress
 * table DNATs out of bridge, and its answers back in from it, are let
 * through by two rules of ours in Docker's DOCKER-USER chain (which Docker
 * makes, jumps to first, and never flushes): `oifname BRIDGE ct status
 * dnat counter accept comment "cswarm-mesh BRIDGE"` and `iifname BRIDGE
 * ... comment "cswarm-mesh-reply BRIDGE"` (a node with no task on the
 * ingress network has no Docker rule for its bridge at all).
 * lb_forward_script writes the transaction that makes the rules tagged so
 * in listing (`nft -a list chain ip filter DOCKER-USER`'s text) exactly
 * one of each (open) or none (!open): "" when they are; CS_EINVAL for a
 * bad bridge name. lb_forward_open / _close list the
 * chain in the caller's namespace and apply that; no such chain (no Docker
 * filter): 0, nothing done. They return 0 or CS_EEXEC with nft's words. */
int lb_forward_script(const char *listing, const char *bridge, bool open, char **text);
int lb_forward_open(const char *bridge, char *err, size_t err_size);
int lb_forward_close(const char *bridge, char *err, size_t err_size);

/* lb_target_clear deletes the table (when the namespace still exists) and
 * frees what t owns. Returns what lb_apply returned (the namespace gone
 * is CS_EEXEC and harmless: its tables went with it). */
int lb_target_clear(struct lb_target *t, uint64_t network_id, char *err, size_t err_size);

#endif
