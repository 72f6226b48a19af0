/* allocator: hands out network resources before tasks are scheduled
 * (SwarmKit's allocator, issue 15): an address per task per network, a
 * virtual IP per service per network (vip mode), ingress ports
 * cluster-wide. A leader component (allocator_component); its state is a
 * pure function of the store plus what its write in flight reserves, and a
 * new leader rebuilds it from the store before it allocates anything.
 *
 * The pure parts (the bitmap IPAM, the whole state, one task's or one
 * service's allocation, the checks the control API and the simulator run)
 * are exported for them and for tests. Single-threaded; no I/O. */
#ifndef CS_ALLOCATOR_H
#define CS_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/leader.h"
#include "core/store.h"

/* ---------------------------------------------------------------- IPAM */

/* One subnet's addresses: bit i is base + i. The subnet's own address, its
 * broadcast address and the gateway are reserved at init. Allocation takes
 * the lowest free address (deterministic; an address is reused only after
 * its holder is known stopped, see allocator.c). */
struct alloc_ipam {
	uint32_t base; /* the network address, host order */
	unsigned prefix_len;
	uint32_t size;	    /* addresses in the subnet */
	uint32_t used;	    /* bits set, the reserved ones included */
	uint32_t hint_word; /* every word below it is full */
	uint64_t *bits;	    /* size / 64 words (at least 1) */
};

/* alloc_ipam_init prepares ipam for base/prefix_len (base's host bits must
 * be 0) with gateway reserved (0: base + 1). Returns 0, CS_EINVAL (prefix
 * out of LIMIT_NET_PREFIX_MIN..MAX, host bits set, gateway outside), or
 * CS_ENOMEM. Free with alloc_ipam_free. */
int alloc_ipam_init(struct alloc_ipam *ipam, uint32_t base, unsigned prefix_len,
		    uint32_t gateway);
void alloc_ipam_free(struct alloc_ipam *ipam);
/* alloc_ipam_take takes the lowest free address into *addr: 0, or
 * CS_ELIMIT when none is free (nothing changed). */
int alloc_ipam_take(struct alloc_ipam *ipam, uint32_t *addr);
/* alloc_ipam_mark marks addr held: 0, CS_EEXIST (already held: still
 * held), CS_EINVAL (outside the subnet). */
int alloc_ipam_mark(struct alloc_ipam *ipam, uint32_t addr);
/* alloc_ipam_release frees addr (a reserved address, or one outside, is
 * left alone); returns whether it was held. */
bool alloc_ipam_release(struct alloc_ipam *ipam, uint32_t addr);
bool alloc_ipam_held(const struct alloc_ipam *ipam, uint32_t addr);

/* ---------------------------------------------------------------- text forms */

/* alloc_parse_cidr reads "a.b.c.d/len" (len 0..32) or, with len_out NULL,
 * "a.b.c.d". Returns 0 or CS_EINVAL. */
int alloc_parse_cidr(const char *s, uint32_t *addr, unsigned *len_out);
/* alloc_cidr_overlap: whether blocks a/alen and b/blen share an address. */
bool alloc_cidr_overlap(uint32_t a, unsigned alen, uint32_t b, unsigned blen);
/* alloc_format_cidr writes "a.b.c.d/len" (len > 32: no "/len") into buf
 * (at least 19 bytes). */
void alloc_format_cidr(char *buf, size_t size, uint32_t addr, unsigned len);
/* alloc_port_text: "8080/tcp" into buf (at least 16 bytes). */
void alloc_port_text(char *buf, size_t size, uint32_t port, Cs__PortProtocol proto);

/* ---------------------------------------------------------------- the state */

/* What the allocator holds: one IPAM per network (by id) and the ingress
 * ports in use, per protocol. */
struct alloc_net {
	uint64_t id;
	char subnet[20];
	struct alloc_ipam ipam;
};

#define ALLOC_PROTOCOLS 3
struct alloc_state {
	struct alloc_net *nets; /* ascending id */
	size_t net_count, net_cap;
	uint64_t ports[ALLOC_PROTOCOLS][65536 / 64];
	uint32_t port_count; /* ingress ports held */
};

/* alloc_state_init: an empty state (no networks, no ports). */
void alloc_state_init(struct alloc_state *a);
void alloc_state_free(struct alloc_state *a);
/* alloc_state_rebuild replaces a with what the store holds: every
 * network, the VIPs and ingress ports of every service, the addresses of
 * every task that holds them (alloc_task_holds). Returns 0 or CS_ENOMEM
 * (a is then empty). */
int alloc_state_rebuild(struct alloc_state *a, const struct store *st);
/* alloc_state_equal: bit for bit the same networks, addresses and ports. */
bool alloc_state_equal(const struct alloc_state *a, const struct alloc_state *b);
/* alloc_state_on_event keeps a in step with one store change (networks
 * added and removed; a task's addresses released once it is known
 * stopped; a service's VIPs and ports released with it). Returns whether
 * anything was released (tasks waiting for room may now fit). */
bool alloc_state_on_event(struct alloc_state *a, const struct store_event *ev);
const struct alloc_net *alloc_state_net(const struct alloc_state *a, uint64_t id);

/* ---------------------------------------------------------------- predicates */

/* alloc_service_needs: whether svc's tasks need the allocator before they
 * may be placed (networks, or published ports: ingress ones are drawn,
 * and every task gets its service's ports, Task.ports, which the agent
 * binds in host mode). */
bool alloc_service_needs(const Cs__Service *svc);
/* alloc_service_ready: whether svc's current spec has its allocation (or
 * needs none). */
bool alloc_service_ready(const Cs__Service *svc);
/* alloc_task_ready: whether the scheduler may place t of service svc
 * (SwarmKit's NEW -> PENDING gate). svc may be NULL (then true). */
bool alloc_task_ready(const Cs__Service *svc, const Cs__Task *t);
/* alloc_task_holds: whether t's attachments are held: until t is known
 * stopped (state past RUNNING), or never placed and told to stop. */
bool alloc_task_holds(const Cs__Task *t);

/* alloc_has_host_ports: whether svc publishes a port in host mode.
 * alloc_host_port_busy: whether a task placed on node_id and not known
 * stopped holds, in host mode, a port and protocol that svc's spec
 * publishes (SwarmKit's host-port filter: such a node cannot take svc's
 * task). A task holds the ports it was given (Task.ports), not what its
 * service's spec says now. */
bool alloc_has_host_ports(const Cs__Service *svc);
bool alloc_host_port_busy(const struct store *st, const Cs__Service *svc,
			  uint64_t node_id);

/* ---------------------------------------------------------------- allocating */

/* alloc_service fills *out (a shallow copy of svc; its vips and ports
 * point into *mem, which the caller frees with alloc_mem_free after use)
 * with svc's allocation for its current spec, taking what is new from a.
 * Returns 0, or an error with a reason in why (CS_ELIMIT: no free address
 * / port; CS_EADDRINUSE: a port given is held; CS_ENOENT: a network not
 * found); then a is unchanged. */
struct alloc_mem {
	void **ptrs;
	size_t count, cap;
};
void alloc_mem_free(struct alloc_mem *mem);
int alloc_service(struct alloc_state *a, const struct store *st, const Cs__Service *svc,
		  Cs__Service *out, struct alloc_mem *mem, char *why, size_t why_size);
/* alloc_task fills *out (a shallow copy of t) with an attachment on each
 * network of svc (and the ingress network when svc publishes ingress
 * ports), each with an address taken from a, and alloc_done. Same returns
 * as alloc_service ("no free address in 10.0.3.0/24"). */
int alloc_task(struct alloc_state *a, const struct store *st, const Cs__Service *svc,
	       const Cs__Task *t, Cs__Task *out, struct alloc_mem *mem, char *why,
	       size_t why_size);

/* ---------------------------------------------------------------- checks */

/* alloc_check_ports: whether spec's ingress ports given are free of every
 * other service's (self_id's own are fine), and of each other: 0, or
 * CS_EADDRINUSE with why ("port 8080/tcp is in use by service web"), or
 * CS_EINVAL (a port out of 1..65535, a host port without published). */
int alloc_check_ports(const struct store *st, const Cs__ServiceSpec *spec,
		      uint64_t self_id, char *why, size_t why_size);
/* alloc_network_prepare fills net (id given by the caller, spec borrowed)
 * for creation: its subnet (spec's, or the next free one of the cluster's
 * pool), gateway and VNI, into net's strings, which point into bufs (at
 * least 2 x 20 bytes). Returns 0, CS_EEXIST (the name is taken),
 * CS_EINVAL (a bad subnet or driver), CS_EADDRINUSE (the subnet overlaps
 * another network's), CS_ELIMIT (the pool is full); why says which. */
int alloc_network_prepare(const struct store *st, const Cs__NetworkSpec *spec,
			  Cs__Network *net, char bufs[2][20], char *why, size_t why_size);
/* alloc_network_users counts the services that name network n. */
size_t alloc_network_users(const struct store *st, const Cs__Network *n,
			   const Cs__Service **first);
/* alloc_invariants checks the store: no address held by two live tasks
 * (or a task and a VIP) on one network, no ingress port held by two
 * services, no host port bound by two live tasks on one node, no
 * attachment on a network that does not exist while held. Returns true,
 * or false with why. */
bool alloc_invariants(const struct store *st, char *why, size_t why_size);

extern const struct leader_component_ops allocator_component;

#endif
