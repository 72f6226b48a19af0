/* dataplane: bridges, VXLAN devices and their FDB and neighbour entries,
 * through rtnetlink. See dataplane.h. */
#include "net/netlog.h"
#include "net/dataplane.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "core/errors.h"

/* ---------------------------------------------------------------- types */

#define DATAPLANE_PROBE_NAME "cs-vx-probe"
#define DATAPLANE_PROBE_VNI  16777215u
#define DATAPLANE_PROBE_PORT 1u /* tcpmux's: never VXLAN's */
/* netlink's extended ack ("Error: ...") is part of the kernel's words */
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

struct dataplane {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	uint32_t underlay_ip; /* host order */
	uint16_t vxlan_port;
	unsigned mtu;
	void (*log)(void *data, enum env_log_level lvl, const char *msg);
	void *log_data;
	struct dataplane_net *nets; /* ascending network_id */
	size_t net_count, net_cap;
	char *buf; /* MNL_SOCKET_BUFFER_SIZE: requests and answers */
};

/* ---------------------------------------------------------------- pure parts */

void dataplane_bridge_name(uint32_t vni, char out[DATAPLANE_IFNAME_BYTES])
{
	assert(vni <= DATAPLANE_VNI_MAX);
	snprintf(out, DATAPLANE_IFNAME_BYTES, "cs-br-%u", (unsigned)vni);
}

void dataplane_vxlan_name(uint32_t vni, char out[DATAPLANE_IFNAME_BYTES])
{
	assert(vni <= DATAPLANE_VNI_MAX);
	snprintf(out, DATAPLANE_IFNAME_BYTES, "cs-vx-%u", (unsigned)vni);
}

void dataplane_tap_name(uint32_t vni, char out[DATAPLANE_IFNAME_BYTES])
{
	assert(vni <= DATAPLANE_VNI_MAX);
	snprintf(out, DATAPLANE_IFNAME_BYTES, "cs-tp-%u", (unsigned)vni);
}

void dataplane_docker_name(uint64_t network_id, char out[DATAPLANE_DOCKER_NAME_BYTES])
{
	snprintf(out, DATAPLANE_DOCKER_NAME_BYTES, "cswarm-net-%016llx",
		 (unsigned long long)network_id);
}

void dataplane_mac_of(uint32_t addr, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x42;
	mac[2] = (uint8_t)(addr >> 24);
	mac[3] = (uint8_t)(addr >> 16);
	mac[4] = (uint8_t)(addr >> 8);
	mac[5] = (uint8_t)addr;
}

bool dataplane_addr_of_mac(const uint8_t mac[6], uint32_t *addr)
{
	if (mac[0] != 0x02 || mac[1] != 0x42)
		return false;
	*addr = (uint32_t)mac[2] << 24 | (uint32_t)mac[3] << 16 | (uint32_t)mac[4] << 8 |
		(uint32_t)mac[5];
	return true;
}

int dataplane_parse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return CS_EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

int dataplane_parse_cidr(const char *s, uint32_t *net, unsigned *prefix)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash;
	char *end;
	unsigned long n;
	size_t len;

	if (!s || !(slash = strchr(s, '/')))
		return CS_EINVAL;
	len = (size_t)(slash - s);
	if (len == 0 || len >= sizeof ip)
		return CS_EINVAL;
	memcpy(ip, s, len);
	ip[len] = '\0';
	errno = 0;
	n = strtoul(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end || n < 1 || n > 30)
		return CS_EINVAL;
	if (dataplane_parse_ipv4(ip, net))
		return CS_EINVAL;
	*prefix = (unsigned)n;
	return 0;
}

static uint32_t dataplane_mask(unsigned prefix)
{
	assert(prefix >= 1 && prefix <= 32);
	return prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
}

static int dataplane_entry_cmp(const void *a, const void *b)
{
	const struct dataplane_entry *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->node_ip != y->node_ip)
		return x->node_ip < y->node_ip ? -1 : 1;
	return 0;
}

size_t dataplane_entry_sort(struct dataplane_entry *es, size_t count)
{
	size_t out = 0;

	if (count == 0)
		return 0;
	qsort(es, count, sizeof *es, dataplane_entry_cmp);
	for (size_t i = 0; i < count; i++) {
		if (out > 0 && dataplane_entry_cmp(&es[out - 1], &es[i]) == 0)
			continue;
		es[out++] = es[i];
	}
	assert(out >= 1 && out <= count);
	return out;
}

int dataplane_entries_of(const struct env_net_state *st, uint32_t self_ip, bool with_node,
			 struct dataplane_entry **out, size_t *count)
{
	struct dataplane_entry *es = NULL;
	uint32_t net, mask;
	unsigned prefix;
	size_t n = 0;

	*out = NULL;
	*count = 0;
	if (dataplane_parse_cidr(st->subnet, &net, &prefix))
		return CS_EINVAL;
	mask = dataplane_mask(prefix);
	if (st->endpoint_count > DATAPLANE_ENDPOINTS_MAX)
		return CS_ELIMIT;
	if (st->endpoint_count) {
		es = calloc(st->endpoint_count, sizeof *es);
		if (!es)
			return CS_ENOMEM;
	}
	for (size_t i = 0; i < st->endpoint_count; i++) {
		const struct env_net_endpoint *ep = &st->endpoints[i];
		uint32_t addr, node_ip;
		if (dataplane_parse_ipv4(ep->addr, &addr) ||
		    dataplane_parse_ipv4(ep->node_ip, &node_ip) ||
		    (addr & mask) != (net & mask)) {
			free(es);
			return CS_EINVAL;
		}
		if (ep->local || node_ip == self_ip)
			continue;
		es[n].addr = addr;
		es[n].node_ip = with_node ? node_ip : 0;
		n++;
	}
	n = dataplane_entry_sort(es, n);
	if (n == 0) {
		free(es);
		es = NULL;
	}
	*out = es;
	*count = n;
	return 0;
}

void dataplane_diff(const struct dataplane_entry *have, size_t have_count,
		    const struct dataplane_entry *want, size_t want_count,
		    struct dataplane_entry *del, size_t *del_count,
		    struct dataplane_entry *add, size_t *add_count)
{
	size_t i = 0, j = 0, nd = 0, na = 0;

	while (i < have_count || j < want_count) {
		int c;
		if (i == have_count)
			c = 1;
		else if (j == want_count)
			c = -1;
		else
			c = dataplane_entry_cmp(&have[i], &want[j]);
		if (c < 0) {
			del[nd++] = have[i++];
		} else if (c > 0) {
			add[na++] = want[j++];
		} else {
			i++;
			j++;
		}
	}
	assert(nd <= have_count);
	assert(na <= want_count);
	*del_count = nd;
	*add_count = na;
}

/* ---------------------------------------------------------------- netlink */

/* The callback of a dump: one message. Returns MNL_CB_OK or MNL_CB_ERROR. */
typedef int (*dataplane_dump_cb)(const struct nlmsghdr *nlh, void *data);

/* Starts a request of type with flags in dp->buf; returns its header. */
static struct nlmsghdr *dataplane_msg(struct dataplane *dp, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(dp->buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	nlh->nlmsg_seq = ++dp->seq;
	return nlh;
}

/* The kernel's words for an error answer: strerror, then the extended ack's
 * message when there is one. */
static void dataplane_nl_words(const struct nlmsghdr *nlh, int errnum, char *err,
			       size_t err_size, const char *what)
{
	const char *ext = NULL;

	if (nlh && (nlh->nlmsg_flags & NLM_F_ACK_TLVS)) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
		size_t off = sizeof *e;
		const struct nlattr *a;
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		mnl_attr_for_each(a, nlh, off)
		{
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
			    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
				ext = mnl_attr_get_str(a);
		}
	}
	if (ext && ext[0])
		netlog_errf(err, err_size, "%s: %s (%s)", what, strerror(errnum), ext);
	else
		netlog_errf(err, err_size, "%s: %s", what, strerror(errnum));
}

/* Sends the request in dp->buf and reads until its ack (or, for a dump,
 * its end), calling cb on each answer. Returns 0 or -errno with the
 * kernel's words in err ("what: ..."). */
static int dataplane_talk(struct dataplane *dp, struct nlmsghdr *req,
			  dataplane_dump_cb cb, void *data, const char *what, char *err,
			  size_t err_size)
{
	uint32_t seq = req->nlmsg_seq;
	bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;

	if (!dump)
		req->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(dp->nl, req, req->nlmsg_len) < 0) {
		int e = errno;
		netlog_errf(err, err_size, "%s: netlink send: %s", what, strerror(e));
		return -e;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(dp->nl, dp->buf, MNL_SOCKET_BUFFER_SIZE);
		const struct nlmsghdr *nlh;
		int left;
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			netlog_errf(err, err_size, "%s: netlink receive: %s", what,
				    strerror(e));
			return -e;
		}
		left = (int)n;
		for (nlh = (const struct nlmsghdr *)dp->buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != dp->portid)
				continue; /* an answer to an earlier, abandoned request */
			if (nlh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				if (e->error == 0)
					return 0; /* the ack */
				dataplane_nl_words(nlh, -e->error, err, err_size, what);
				return e->error;
			}
			if (cb && cb(nlh, data) != MNL_CB_OK) {
				netlog_errf(err, err_size, "%s: malformed answer", what);
				return -EPROTO;
			}
		}
	}
}

/* ---------------------------------------------------------------- links */

/* Puts the IFLA_LINKINFO of a VXLAN device of vni. */
static void dataplane_put_vxlan_info(struct dataplane *dp, struct nlmsghdr *nlh,
				     uint32_t vni)
{
	struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	struct nlattr *vx;

	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vxlan");
	vx = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	mnl_attr_put_u32(nlh, IFLA_VXLAN_ID, vni);
	mnl_attr_put_u32(nlh, IFLA_VXLAN_LOCAL, htonl(dp->underlay_ip));
	mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(dp->vxlan_port));
	mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, 0);
	mnl_attr_put_u8(nlh, IFLA_VXLAN_PROXY, 1);
	mnl_attr_nest_end(nlh, vx);
	mnl_attr_nest_end(nlh, info);
}

/* Creates link name (kind "bridge" when vni is UINT32_MAX, else a VXLAN of
 * vni) with mtu. Returns 0, -EEXIST when it exists, or -errno. */
static int dataplane_link_create(struct dataplane *dp, const char *name, uint32_t vni,
				 unsigned mtu, char *err, size_t err_size)
{
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	char what[64];

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (vni == UINT32_MAX) {
		struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
		mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
		mnl_attr_nest_end(nlh, info);
	} else {
		dataplane_put_vxlan_info(dp, nlh, vni);
	}
	snprintf(what, sizeof what, "create %s", name);
	return dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
}

/* Sets link ifindex up, with mtu (0: unchanged) and master (0: unchanged). */
static int dataplane_link_up(struct dataplane *dp, const char *name, unsigned ifindex,
			     unsigned mtu, unsigned master, char *err, size_t err_size)
{
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	char what[64];

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (master)
		mnl_attr_put_u32(nlh, IFLA_MASTER, master);
	snprintf(what, sizeof what, "set %s up", name);
	return dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
}

/* Turns off MAC learning on bridge port ifindex: the bridge floods an
 * unknown MAC to the VXLAN port, whose own FDB sends it to one node only
 * (or drops it), so that a MAC that moved between nodes is never stuck on
 * a learned port. */
static int dataplane_port_nolearn(struct dataplane *dp, const char *name,
				  unsigned ifindex, char *err, size_t err_size)
{
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_SETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	struct nlattr *pi;
	char what[64];

	ifi->ifi_family = AF_BRIDGE;
	ifi->ifi_index = (int)ifindex;
	pi = mnl_attr_nest_start(nlh, IFLA_PROTINFO);
	mnl_attr_put_u8(nlh, IFLA_BRPORT_LEARNING, 0);
	mnl_attr_nest_end(nlh, pi);
	snprintf(what, sizeof what, "set %s learning off", name);
	return dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
}

/* Gives link ifindex the MAC of addr (02:42 + IPv4): the routing mesh's
 * node address on the ingress bridge, so that the other nodes' entries for
 * it (net/dataplane.c's own, derived the same way) reach this bridge. */
static int dataplane_link_mac(struct dataplane *dp, const char *name, unsigned ifindex,
			      uint32_t addr, char *err, size_t err_size)
{
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	uint8_t mac[6];
	char what[64];

	dataplane_mac_of(addr, mac);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	mnl_attr_put(nlh, IFLA_ADDRESS, sizeof mac, mac);
	snprintf(what, sizeof what, "set %s address", name);
	return dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
}

/* Pins bridge ifindex's MAC at what it is now (set as given: the kernel
 * then no longer moves a bridge's MAC to its lowest port's as ports come
 * and go). Without it, the TAP of an encrypted network, which goes with
 * the swarmd that made it, or a container's veth leaving, changes the
 * gateway's MAC under the tasks' ARP caches: nothing reaches the gateway
 * (the resolver, the VIPs) until they expire. Returns 0 or -errno with the
 * kernel's words. */
static int dataplane_bridge_pin_mac(struct dataplane *dp, const char *name,
				    unsigned ifindex, char *err, size_t err_size)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct ifreq ifr;
	char what[64];
	int fd, rv = 0;

	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFHWADDR, &ifr) != 0)
		rv = -errno;
	if (fd >= 0)
		close(fd);
	if (rv) {
		netlog_errf(err, err_size, "%s: its MAC: %s", name, strerror(-rv));
		return rv;
	}
	nlh = dataplane_msg(dp, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, ifr.ifr_hwaddr.sa_data);
	snprintf(what, sizeof what, "set %s address", name);
	return dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
}

static int dataplane_link_delete(struct dataplane *dp, const char *name, char *err,
				 size_t err_size)
{
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_DELLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	char what[64];
	int rv;

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	snprintf(what, sizeof what, "delete %s", name);
	rv = dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
	return rv == -ENODEV ? 0 : rv;
}

/* What a VXLAN device says of itself. */
struct dataplane_vxinfo {
	bool is_vxlan;
	uint32_t vni, local; /* local: network order */
	uint16_t port;	     /* network order */
	unsigned master;
};

static int dataplane_vxinfo_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dataplane_vxinfo *vi = data;
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct ifinfomsg))
	{
		if (mnl_attr_get_type(a) == IFLA_MASTER &&
		    mnl_attr_get_payload_len(a) >= 4)
			vi->master = mnl_attr_get_u32(a);
		if (mnl_attr_get_type(a) != IFLA_LINKINFO)
			continue;
		const struct nlattr *b;
		mnl_attr_for_each_nested(b, a)
		{
			if (mnl_attr_get_type(b) == IFLA_INFO_KIND)
				vi->is_vxlan = strncmp(mnl_attr_get_payload(b), "vxlan",
						       mnl_attr_get_payload_len(b)) == 0;
			if (mnl_attr_get_type(b) != IFLA_INFO_DATA)
				continue;
			const struct nlattr *c;
			mnl_attr_for_each_nested(c, b)
			{
				uint16_t t = mnl_attr_get_type(c);
				size_t len = mnl_attr_get_payload_len(c);
				if (t == IFLA_VXLAN_ID && len >= 4)
					vi->vni = mnl_attr_get_u32(c);
				else if (t == IFLA_VXLAN_LOCAL && len >= 4)
					vi->local = mnl_attr_get_u32(c);
				else if (t == IFLA_VXLAN_PORT && len >= 2)
					vi->port = mnl_attr_get_u16(c);
			}
		}
	}
	return MNL_CB_OK;
}

static int dataplane_vxinfo_get(struct dataplane *dp, const char *name,
				struct dataplane_vxinfo *vi, char *err, size_t err_size)
{
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	char what[64];

	memset(vi, 0, sizeof *vi);
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	snprintf(what, sizeof what, "get %s", name);
	return dataplane_talk(dp, nlh, dataplane_vxinfo_cb, vi, what, err, err_size);
}

/* Puts gateway/prefix on bridge ifindex (already there: fine). */
static int dataplane_addr_add(struct dataplane *dp, const char *name, unsigned ifindex,
			      uint32_t gateway, unsigned prefix, char *err,
			      size_t err_size)
{
	struct nlmsghdr *nlh =
		dataplane_msg(dp, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
	char what[64];

	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_index = ifindex;
	mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(gateway));
	mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(gateway));
	snprintf(what, sizeof what, "address on %s", name);
	return dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
}

/* The IPv4 addresses of one link (a dump of RTM_GETADDR). */
struct dataplane_addrs {
	unsigned ifindex;
	uint32_t *addr; /* host order */
	unsigned *prefix;
	size_t count, cap;
	bool oom;
};

static int dataplane_addrs_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dataplane_addrs *d = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_index != d->ifindex ||
	    ifa->ifa_family != AF_INET || d->oom)
		return MNL_CB_OK;
	if (d->count == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		uint32_t *addr = realloc(d->addr, cap * sizeof *addr);
		unsigned *prefix = addr ? realloc(d->prefix, cap * sizeof *prefix) : NULL;
		if (addr)
			d->addr = addr;
		if (!addr || !prefix) {
			d->oom = true;
			return MNL_CB_OK;
		}
		d->prefix = prefix;
		d->cap = cap;
	}
	mnl_attr_for_each(a, nlh, sizeof *ifa)
	{
		if (mnl_attr_get_type(a) == IFA_LOCAL &&
		    mnl_attr_get_payload_len(a) == 4) {
			d->addr[d->count] = ntohl(mnl_attr_get_u32(a));
			d->prefix[d->count] = ifa->ifa_prefixlen;
			d->count++;
			break;
		}
	}
	return MNL_CB_OK;
}

/* Whether addr/prefix is one the bridge should hold: the gateway with the
 * network's prefix, or one of the VIPs as a /32. */
static bool dataplane_addr_wanted(uint32_t addr, unsigned prefix, uint32_t gateway,
				  unsigned gw_prefix, const uint32_t *vips,
				  size_t vip_count)
{
	if (addr == gateway && prefix == gw_prefix)
		return true;
	for (size_t i = 0; i < vip_count && prefix == 32; i++)
		if (vips[i] == addr)
			return true;
	return false;
}

/* Removes every IPv4 address of bridge ifindex but gateway/prefix and the
 * VIPs' /32s (an adopted bridge of a VNI that another subnet used before;
 * a VIP whose service is gone). */
static int dataplane_addrs_prune(struct dataplane *dp, const char *name, unsigned ifindex,
				 uint32_t gateway, unsigned prefix, const uint32_t *vips,
				 size_t vip_count, char *err, size_t err_size)
{
	struct dataplane_addrs d;
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
	char what[64];
	int rv;

	memset(&d, 0, sizeof d);
	d.ifindex = ifindex;
	ifa->ifa_family = AF_INET;
	snprintf(what, sizeof what, "addresses of %s", name);
	rv = dataplane_talk(dp, nlh, dataplane_addrs_cb, &d, what, err, err_size);
	if (!rv && d.oom) {
		netlog_errf(err, err_size, "addresses of %s: out of memory", name);
		rv = -ENOMEM;
	}
	for (size_t i = 0; i < d.count && !rv; i++) {
		if (dataplane_addr_wanted(d.addr[i], d.prefix[i], gateway, prefix, vips,
					  vip_count))
			continue;
		nlh = dataplane_msg(dp, RTM_DELADDR, 0);
		ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
		ifa->ifa_family = AF_INET;
		ifa->ifa_prefixlen = (unsigned char)d.prefix[i];
		ifa->ifa_index = ifindex;
		mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(d.addr[i]));
		snprintf(what, sizeof what, "delete an old address of %s", name);
		rv = dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
		if (rv == -EADDRNOTAVAIL)
			rv = 0;
	}
	free(d.addr);
	free(d.prefix);
	return rv;
}

/* ---------------------------------------------------------------- entries */

/* A dump of the FDB (AF_BRIDGE, NTF_SELF) or neighbour (AF_INET,
 * permanent) entries of one VXLAN device, as entries. An FDB entry whose
 * MAC is not of our derivation (02:42 + address) is not ours and is left
 * alone; a neighbour entry with such a MAC becomes (addr, 1), which no
 * state wants, so that it is deleted and the right one added. */
struct dataplane_dump {
	unsigned ifindex;
	bool fdb;
	struct dataplane_entry *es;
	size_t count, cap;
	bool nomem;
};

static int dataplane_entry_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dataplane_dump *d = data;
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	const uint8_t *mac = NULL;
	uint32_t dst = 0, addr;
	bool has_dst = false;

	if (nlh->nlmsg_type != RTM_NEWNEIGH || ndm->ndm_ifindex != (int)d->ifindex)
		return MNL_CB_OK;
	if (d->fdb && !(ndm->ndm_flags & NTF_SELF))
		return MNL_CB_OK;
	if (!d->fdb && !(ndm->ndm_state & NUD_PERMANENT))
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof *ndm)
	{
		if (mnl_attr_get_type(a) == NDA_LLADDR &&
		    mnl_attr_get_payload_len(a) == 6)
			mac = mnl_attr_get_payload(a);
		else if (mnl_attr_get_type(a) == NDA_DST &&
			 mnl_attr_get_payload_len(a) == 4) {
			dst = ntohl(mnl_attr_get_u32(a));
			has_dst = true;
		}
	}
	if (!has_dst)
		return MNL_CB_OK; /* the device's own address entries */
	if (d->fdb) {
		if (!mac || !dataplane_addr_of_mac(mac, &addr))
			return MNL_CB_OK; /* not ours (all-zeros is never ours) */
	} else {
		uint32_t mac_addr;
		addr = dst;
		dst = 0;
		/* a neighbour entry whose MAC is not the address's is kept as
		 * (addr, 1): never wanted, so deleted, then the right one added */
		if (!mac || !dataplane_addr_of_mac(mac, &mac_addr) || mac_addr != addr)
			dst = 1;
	}
	if (d->count == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct dataplane_entry *es = realloc(d->es, cap * sizeof *es);
		if (!es) {
			d->nomem = true;
			return MNL_CB_OK;
		}
		d->es = es;
		d->cap = cap;
	}
	d->es[d->count].addr = addr;
	d->es[d->count].node_ip = dst;
	d->count++;
	return MNL_CB_OK;
}

static int dataplane_entries_dump(struct dataplane *dp, unsigned ifindex, bool fdb,
				  struct dataplane_dump *d, char *err, size_t err_size)
{
	struct nlmsghdr *nlh = dataplane_msg(dp, RTM_GETNEIGH, NLM_F_DUMP);
	struct ndmsg *ndm = mnl_nlmsg_put_extra_header(nlh, sizeof *ndm);
	int rv;

	memset(d, 0, sizeof *d);
	d->ifindex = ifindex;
	d->fdb = fdb;
	ndm->ndm_family = fdb ? AF_BRIDGE : AF_INET;
	rv = dataplane_talk(dp, nlh, dataplane_entry_dump_cb, d,
			    fdb ? "dump fdb" : "dump neighbours", err, err_size);
	if (!rv && d->nomem)
		rv = -ENOMEM;
	if (rv) {
		free(d->es);
		d->es = NULL;
		return rv;
	}
	d->count = dataplane_entry_sort(d->es, d->count);
	return 0;
}

/* Adds (add) or deletes one FDB (fdb) or neighbour entry of e on ifindex. */
static int dataplane_entry_put(struct dataplane *dp, unsigned ifindex, bool fdb, bool add,
			       const struct dataplane_entry *e, char *err,
			       size_t err_size)
{
	uint16_t flags =
		add ? (uint16_t)(NLM_F_CREATE | (fdb ? NLM_F_APPEND : NLM_F_REPLACE)) : 0;
	struct nlmsghdr *nlh =
		dataplane_msg(dp, add ? RTM_NEWNEIGH : RTM_DELNEIGH, flags);
	struct ndmsg *ndm = mnl_nlmsg_put_extra_header(nlh, sizeof *ndm);
	uint8_t mac[6];
	char what[96], a[INET_ADDRSTRLEN], n[INET_ADDRSTRLEN];
	struct in_addr ia;
	int rv;

	dataplane_mac_of(e->addr, mac);
	ndm->ndm_family = fdb ? AF_BRIDGE : AF_INET;
	ndm->ndm_ifindex = (int)ifindex;
	ndm->ndm_state = NUD_PERMANENT;
	ndm->ndm_flags = fdb ? NTF_SELF : 0;
	if (fdb || add)
		mnl_attr_put(nlh, NDA_LLADDR, sizeof mac, mac);
	mnl_attr_put_u32(nlh, NDA_DST, htonl(fdb ? e->node_ip : e->addr));
	ia.s_addr = htonl(e->addr);
	inet_ntop(AF_INET, &ia, a, sizeof a);
	ia.s_addr = htonl(e->node_ip);
	inet_ntop(AF_INET, &ia, n, sizeof n);
	if (fdb)
		snprintf(what, sizeof what, "%s fdb %s via %s", add ? "add" : "delete", a,
			 n);
	else
		snprintf(what, sizeof what, "%s neighbour %s", add ? "add" : "delete", a);
	rv = dataplane_talk(dp, nlh, NULL, NULL, what, err, err_size);
	if (add && rv == -EEXIST)
		return 0;
	if (!add && rv == -ENOENT)
		return 0;
	return rv;
}

/* Makes ifindex's entries of one kind equal to want. */
static int dataplane_entries_sync(struct dataplane *dp, unsigned ifindex, bool fdb,
				  const struct dataplane_entry *want, size_t want_count,
				  size_t *added, size_t *deleted, char *err,
				  size_t err_size)
{
	struct dataplane_dump have;
	struct dataplane_entry *del = NULL, *add = NULL;
	size_t nd = 0, na = 0;
	int rv;

	rv = dataplane_entries_dump(dp, ifindex, fdb, &have, err, err_size);
	if (rv)
		return rv;
	del = calloc(have.count + 1, sizeof *del);
	add = calloc(want_count + 1, sizeof *add);
	if (!del || !add) {
		rv = -ENOMEM;
		netlog_errf(err, err_size, "out of memory");
		goto out;
	}
	dataplane_diff(have.es, have.count, want, want_count, del, &nd, add, &na);
	/* deletes first: an address that moved to another node is deleted
	 * under its old node and added under its new one */
	for (size_t i = 0; i < nd && !rv; i++)
		rv = dataplane_entry_put(dp, ifindex, fdb, false, &del[i], err, err_size);
	for (size_t i = 0; i < na && !rv; i++)
		rv = dataplane_entry_put(dp, ifindex, fdb, true, &add[i], err, err_size);
	*added += na;
	*deleted += nd;
out:
	free(del);
	free(add);
	free(have.es);
	return rv;
}

/* ---------------------------------------------------------------- networks */

static size_t dataplane_net_index(const struct dataplane *dp, uint64_t network_id,
				  bool *found)
{
	size_t lo = 0, hi = dp->net_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dp->nets[mid].network_id < network_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < dp->net_count && dp->nets[lo].network_id == network_id;
	return lo;
}

const struct dataplane_net *dataplane_find(const struct dataplane *dp,
					   uint64_t network_id)
{
	bool found;
	size_t i = dataplane_net_index(dp, network_id, &found);

	return found ? &dp->nets[i] : NULL;
}

unsigned dataplane_mtu(const struct dataplane *dp)
{
	return dp->mtu;
}

/* Makes (or adopts) the bridge and the VXLAN device of n, up and joined.
 * Returns 0 or -errno with the kernel's words. */
static int dataplane_devices(struct dataplane *dp, const struct dataplane_net *n,
			     uint32_t gateway, unsigned prefix, const uint32_t *vips,
			     size_t vip_count, unsigned *vx_index, char *err,
			     size_t err_size)
{
	unsigned br, vx;
	int rv;

	rv = dataplane_link_create(dp, n->bridge, UINT32_MAX, n->mtu, err, err_size);
	if (rv && !(rv == -EEXIST && if_nametoindex(n->bridge) != 0))
		return rv;
	br = if_nametoindex(n->bridge);
	if (!br) {
		netlog_errf(err, err_size, "%s: %s", n->bridge, strerror(errno));
		return -ENODEV;
	}
	rv = dataplane_bridge_pin_mac(dp, n->bridge, br, err, err_size);
	if (rv)
		return rv;
	rv = dataplane_addr_add(dp, n->bridge, br, gateway, prefix, err, err_size);
	if (rv && rv != -EEXIST)
		return rv;
	/* the VIPs, each a /32 of the bridge as the gateway is (net/lb.c's
	 * rules DNAT what a task sends to one): answered on every node */
	for (size_t i = 0; i < vip_count; i++) {
		rv = dataplane_addr_add(dp, n->bridge, br, vips[i], 32, err, err_size);
		if (rv && rv != -EEXIST)
			return rv;
	}
	rv = dataplane_addrs_prune(dp, n->bridge, br, gateway, prefix, vips, vip_count,
				   err, err_size);
	if (rv)
		return rv;
	rv = dataplane_link_up(dp, n->bridge, br, n->mtu, 0, err, err_size);
	if (rv)
		return rv;
	if (n->encrypted) {
		/* the TAP of net/crypttun (made by the caller) in place of
		 * the VXLAN device, which goes if the network had one */
		unsigned tap;
		rv = dataplane_link_delete(dp, n->vxlan, err, err_size);
		if (rv)
			return rv;
		tap = if_nametoindex(n->tap);
		if (!tap) {
			netlog_errf(err, err_size, "%s: %s (no encrypted tunnel)", n->tap,
				    strerror(errno));
			return -ENODEV;
		}
		rv = dataplane_link_up(dp, n->tap, tap, n->mtu, br, err, err_size);
		if (!rv)
			rv = dataplane_port_nolearn(dp, n->tap, tap, err, err_size);
		if (!rv)
			*vx_index = tap;
		return rv;
	}
	/* no longer encrypted: its TAP goes (gone already when its tunnel
	 * was closed first) */
	rv = dataplane_link_delete(dp, n->tap, err, err_size);
	if (rv)
		return rv;
	rv = dataplane_link_create(dp, n->vxlan, n->vni, n->mtu, err, err_size);
	/* EEXIST is also the kernel's answer to a VNI another VXLAN device
	 * holds on that port: then ours does not exist, and err says so */
	if (rv == -EEXIST && if_nametoindex(n->vxlan) != 0) {
		/* adopt it only when it is what we would make */
		struct dataplane_vxinfo vi;
		rv = dataplane_vxinfo_get(dp, n->vxlan, &vi, err, err_size);
		if (rv)
			return rv;
		if (!vi.is_vxlan || vi.vni != n->vni ||
		    vi.local != htonl(dp->underlay_ip) ||
		    vi.port != htons(dp->vxlan_port)) {
			netlog_logf(dp->log, dp->log_data, ENV_LOG_INFO,
				    "dataplane: %s differs from what it should be: "
				    "made again",
				    n->vxlan);
			rv = dataplane_link_delete(dp, n->vxlan, err, err_size);
			if (!rv)
				rv = dataplane_link_create(dp, n->vxlan, n->vni, n->mtu,
							   err, err_size);
		}
	}
	if (rv)
		return rv;
	vx = if_nametoindex(n->vxlan);
	if (!vx) {
		netlog_errf(err, err_size, "%s: %s", n->vxlan, strerror(errno));
		return -ENODEV;
	}
	rv = dataplane_link_up(dp, n->vxlan, vx, n->mtu, br, err, err_size);
	if (rv)
		return rv;
	rv = dataplane_port_nolearn(dp, n->vxlan, vx, err, err_size);
	if (rv)
		return rv;
	*vx_index = vx;
	return 0;
}

int dataplane_set(struct dataplane *dp, const struct env_net_state *st, char *err,
		  size_t err_size)
{
	struct dataplane_net n;
	struct dataplane_entry *fdb = NULL, *neigh = NULL;
	size_t fdb_count = 0, neigh_count = 0, added = 0, deleted = 0, idx;
	uint32_t *vips = NULL;
	size_t vip_count = 0;
	uint32_t subnet, gateway, node_addr = 0;
	unsigned prefix, vx = 0;
	bool found, made_new;
	int rv;

	netlog_errf(err, err_size, "%s", "");
	if (st->vni == 0 || st->vni > DATAPLANE_VNI_MAX ||
	    dataplane_parse_cidr(st->subnet, &subnet, &prefix) ||
	    dataplane_parse_ipv4(st->gateway, &gateway) ||
	    (gateway & dataplane_mask(prefix)) != (subnet & dataplane_mask(prefix))) {
		netlog_errf(err, err_size,
			    "network %016llx: malformed (vni %u, subnet %s, gateway %s)",
			    (unsigned long long)st->network_id, (unsigned)st->vni,
			    st->subnet ? st->subnet : "-",
			    st->gateway ? st->gateway : "-");
		return CS_EINVAL;
	}
	for (size_t i = 0; i < dp->net_count; i++) {
		if (dp->nets[i].vni == st->vni &&
		    dp->nets[i].network_id != st->network_id) {
			netlog_errf(err, err_size,
				    "network %016llx: vni %u is network %016llx's here",
				    (unsigned long long)st->network_id, (unsigned)st->vni,
				    (unsigned long long)dp->nets[i].network_id);
			return CS_EINVAL;
		}
	}
	memset(&n, 0, sizeof n);
	n.network_id = st->network_id;
	n.vni = st->vni;
	dataplane_bridge_name(st->vni, n.bridge);
	dataplane_vxlan_name(st->vni, n.vxlan);
	dataplane_tap_name(st->vni, n.tap);
	n.encrypted = st->encrypted;
	dataplane_docker_name(st->network_id, n.docker_name);
	{
		struct in_addr ia = {.s_addr = htonl(subnet & dataplane_mask(prefix))};
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &ia, s, sizeof s);
		snprintf(n.subnet, sizeof n.subnet, "%s/%u", s, prefix);
		ia.s_addr = htonl(gateway);
		inet_ntop(AF_INET, &ia, n.gateway, sizeof n.gateway);
	}
	n.internal = st->internal;
	n.mtu = st->encrypted ? dp->mtu - DATAPLANE_CRYPT_EXTRA : dp->mtu;
	rv = dataplane_entries_of(st, dp->underlay_ip, true, &fdb, &fdb_count);
	if (!rv)
		rv = dataplane_entries_of(st, dp->underlay_ip, false, &neigh,
					  &neigh_count);
	if (rv) {
		netlog_errf(err, err_size,
			    "network %016llx: %s (an endpoint's address or node)",
			    (unsigned long long)st->network_id, cs_strerror(rv));
		goto out;
	}
	idx = dataplane_net_index(dp, st->network_id, &found);
	if (found && dp->nets[idx].vni != st->vni) {
		/* the same network under another VNI: the old devices go */
		char e2[128];
		dataplane_link_delete(dp, dp->nets[idx].vxlan, e2, sizeof e2);
		dataplane_link_delete(dp, dp->nets[idx].tap, e2, sizeof e2);
		dataplane_link_delete(dp, dp->nets[idx].bridge, e2, sizeof e2);
	}
	if (!found && dp->net_count == DATAPLANE_NETS_MAX) {
		rv = CS_ELIMIT;
		netlog_errf(err, err_size, "over %u networks on this node",
			    DATAPLANE_NETS_MAX);
		goto out;
	}
	made_new = if_nametoindex(n.bridge) == 0;
	vips = calloc(st->service_count + 1, sizeof *vips);
	if (!vips) {
		rv = CS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < st->service_count; i++) {
		uint32_t v;
		const char *vip = st->services[i].vip;
		if (vip && vip[0] && dataplane_parse_ipv4(vip, &v) == 0 &&
		    (v & dataplane_mask(prefix)) == (subnet & dataplane_mask(prefix)) &&
		    v != gateway)
			vips[vip_count++] = v;
	}
	/* the routing mesh: this node's own ingress address, a /32 of the
	 * bridge as a VIP is, under the MAC the other nodes' entries give it */
	if (st->ingress && st->node_addr) {
		if (dataplane_parse_ipv4(st->node_addr, &node_addr) ||
		    (node_addr & dataplane_mask(prefix)) !=
			    (subnet & dataplane_mask(prefix)) ||
		    node_addr == gateway) {
			netlog_errf(err, err_size,
				    "network %016llx: node address %s is not one of "
				    "%s",
				    (unsigned long long)st->network_id, st->node_addr,
				    n.subnet);
			rv = CS_EINVAL;
			goto out;
		}
		vips[vip_count++] = node_addr;
	}
	rv = dataplane_devices(dp, &n, gateway, prefix, vips, vip_count, &vx, err,
			       err_size);
	if (!rv && node_addr)
		rv = dataplane_link_mac(dp, n.bridge, if_nametoindex(n.bridge), node_addr,
					err, err_size);
	/* an encrypted network's remote endpoints are net/crypttun's table:
	 * no entries in the kernel */
	if (!rv && !st->encrypted)
		rv = dataplane_entries_sync(dp, vx, true, fdb, fdb_count, &added,
					    &deleted, err, err_size);
	if (!rv && !st->encrypted)
		rv = dataplane_entries_sync(dp, vx, false, neigh, neigh_count, &added,
					    &deleted, err, err_size);
	if (rv) {
		/* never a half-made network: what this call made goes (an
		 * adopted bridge may hold containers and stays) */
		char e2[128];
		dataplane_link_delete(dp, n.vxlan, e2, sizeof e2);
		if (made_new)
			dataplane_link_delete(dp, n.bridge, e2, sizeof e2);
		if (found) {
			memmove(&dp->nets[idx], &dp->nets[idx + 1],
				(dp->net_count - idx - 1) * sizeof *dp->nets);
			dp->net_count--;
		}
		rv = rv == -ENOMEM ? CS_ENOMEM : CS_EEXEC;
		goto out;
	}
	assert(vx != 0);
	if (!found) {
		if (dp->net_count == dp->net_cap) {
			size_t cap = dp->net_cap ? dp->net_cap * 2 : 8;
			struct dataplane_net *nets =
				realloc(dp->nets, cap * sizeof *nets);
			if (!nets) {
				rv = CS_ENOMEM;
				goto out;
			}
			dp->nets = nets;
			dp->net_cap = cap;
		}
		memmove(&dp->nets[idx + 1], &dp->nets[idx],
			(dp->net_count - idx) * sizeof *dp->nets);
		dp->net_count++;
	}
	dp->nets[idx] = n;
	assert(idx == 0 || dp->nets[idx - 1].network_id < n.network_id);
	assert(idx + 1 == dp->net_count || dp->nets[idx + 1].network_id > n.network_id);
	netlog_errf(err, err_size, "%s", "");
	if (added || deleted || !found)
		netlog_logf(dp->log, dp->log_data, ENV_LOG_INFO,
			    "dataplane: network %016llx vni %u: %zu remote endpoints, "
			    "%zu entries added, %zu deleted",
			    (unsigned long long)st->network_id, (unsigned)st->vni,
			    fdb_count, added, deleted);
out:
	free(vips);
	free(fdb);
	free(neigh);
	return rv;
}

int dataplane_remove(struct dataplane *dp, uint64_t network_id, char *err,
		     size_t err_size)
{
	bool found;
	size_t idx = dataplane_net_index(dp, network_id, &found);
	struct dataplane_net n;
	int rv;

	netlog_errf(err, err_size, "%s", "");
	if (!found)
		return 0;
	n = dp->nets[idx];
	memmove(&dp->nets[idx], &dp->nets[idx + 1],
		(dp->net_count - idx - 1) * sizeof *dp->nets);
	dp->net_count--;
	rv = dataplane_link_delete(dp, n.vxlan, err, err_size);
	if (!rv)
		rv = dataplane_link_delete(dp, n.tap, err, err_size);
	if (!rv)
		rv = dataplane_link_delete(dp, n.bridge, err, err_size);
	return rv ? CS_EEXEC : 0;
}

/* ---------------------------------------------------------------- the sweep at start */

#define DATAPLANE_SWEEP_LINKS_MAX 4096u

/* The links of this namespace: names, indexes, masters. */
struct dataplane_links {
	struct {
		char name[DATAPLANE_IFNAME_BYTES];
		unsigned index, master;
	} l[DATAPLANE_SWEEP_LINKS_MAX];
	size_t count;
	bool truncated;
};

static int dataplane_links_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dataplane_links *ls = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	size_t i = ls->count;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	if (i == DATAPLANE_SWEEP_LINKS_MAX) {
		ls->truncated = true;
		return MNL_CB_OK;
	}
	memset(&ls->l[i], 0, sizeof ls->l[i]);
	ls->l[i].index = (unsigned)ifi->ifi_index;
	mnl_attr_for_each(a, nlh, sizeof *ifi)
	{
		if (mnl_attr_get_type(a) == IFLA_IFNAME &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(ls->l[i].name, sizeof ls->l[i].name, "%s",
				 mnl_attr_get_str(a));
		else if (mnl_attr_get_type(a) == IFLA_MASTER &&
			 mnl_attr_get_payload_len(a) == 4)
			ls->l[i].master = mnl_attr_get_u32(a);
	}
	ls->count++;
	return MNL_CB_OK;
}

/* Deletes the bridges cs-br-<vni> (and their cs-vx-<vni>) that hold no
 * port but their VXLAN device: networks removed while this daemon was
 * down. A bridge with a container on it stays (the agent declares its
 * network again, or removes it). Failures are logged, never fatal. */
static void dataplane_sweep(struct dataplane *dp)
{
	struct dataplane_links *ls = calloc(1, sizeof *ls);
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	char err[256];

	if (!ls)
		return;
	nlh = dataplane_msg(dp, RTM_GETLINK, NLM_F_DUMP);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	ifi->ifi_family = AF_UNSPEC;
	if (dataplane_talk(dp, nlh, dataplane_links_cb, ls, "list links", err,
			   sizeof err) ||
	    ls->truncated) {
		netlog_logf(dp->log, dp->log_data, ENV_LOG_WARN,
			    "dataplane: no sweep: %s",
			    ls->truncated ? "too many links" : err);
		free(ls);
		return;
	}
	for (size_t i = 0; i < ls->count; i++) {
		char *end, vx[DATAPLANE_IFNAME_BYTES], tp[DATAPLANE_IFNAME_BYTES];
		unsigned long vni;
		size_t ports = 0;
		if (strncmp(ls->l[i].name, "cs-br-", 6) != 0)
			continue;
		vni = strtoul(ls->l[i].name + 6, &end, 10);
		if (*end || end == ls->l[i].name + 6 || vni > DATAPLANE_VNI_MAX)
			continue;
		dataplane_vxlan_name((uint32_t)vni, vx);
		dataplane_tap_name((uint32_t)vni, tp);
		for (size_t j = 0; j < ls->count; j++)
			if (ls->l[j].master == ls->l[i].index &&
			    strcmp(ls->l[j].name, vx) != 0 &&
			    strcmp(ls->l[j].name, tp) != 0)
				ports++;
		if (ports)
			continue;
		if (dataplane_link_delete(dp, vx, err, sizeof err) ||
		    dataplane_link_delete(dp, ls->l[i].name, err, sizeof err))
			netlog_logf(dp->log, dp->log_data, ENV_LOG_WARN,
				    "dataplane: sweep: %s", err);
		else
			netlog_logf(dp->log, dp->log_data, ENV_LOG_INFO,
				    "dataplane: swept %s and %s (no container on them)",
				    ls->l[i].name, vx);
	}
	free(ls);
}

/* ---------------------------------------------------------------- open and close */

/* The MTU of the interface holding ip (host order), or 0 when none does. */
static unsigned dataplane_underlay_mtu(uint32_t ip)
{
	struct ifaddrs *ifs, *i;
	unsigned mtu = 0;

	if (getifaddrs(&ifs) != 0)
		return 0;
	for (i = ifs; i && !mtu; i = i->ifa_next) {
		struct ifreq ifr;
		int fd;
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    ntohl(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr) !=
			    ip)
			continue;
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", i->ifa_name);
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd < 0)
			break;
		if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
			mtu = (unsigned)ifr.ifr_mtu;
		close(fd);
	}
	freeifaddrs(ifs);
	return mtu;
}

int dataplane_open(const struct dataplane_cfg *cfg, struct dataplane **out, char *err,
		   size_t err_size)
{
	struct dataplane *dp;
	unsigned underlay_mtu;
	int one = 1, rv;

	netlog_errf(err, err_size, "%s", "");
	dp = calloc(1, sizeof *dp);
	if (!dp)
		return CS_ENOMEM;
	dp->log = cfg->log;
	dp->log_data = cfg->log_data;
	dp->vxlan_port = cfg->vxlan_port ? cfg->vxlan_port : DATAPLANE_VXLAN_PORT_DEFAULT;
	if (dataplane_parse_ipv4(cfg->underlay_ip, &dp->underlay_ip)) {
		netlog_errf(err, err_size, "underlay IP '%s': not a dotted IPv4 address",
			    cfg->underlay_ip ? cfg->underlay_ip : "");
		rv = CS_EINVAL;
		goto err_free;
	}
	if ((dp->underlay_ip >> 24) == 127) {
		netlog_errf(err, err_size,
			    "underlay IP %s is a loopback address (nodes on one "
			    "kernel cannot each hold the network)",
			    cfg->underlay_ip);
		rv = CS_EINVAL;
		goto err_free;
	}
	underlay_mtu = dataplane_underlay_mtu(dp->underlay_ip);
	if (!underlay_mtu) {
		netlog_errf(err, err_size,
			    "underlay IP %s is not an address of this node",
			    cfg->underlay_ip);
		rv = CS_EINVAL;
		goto err_free;
	}
	dp->mtu = cfg->mtu ? cfg->mtu
			   : (underlay_mtu > DATAPLANE_VXLAN_OVERHEAD + 576
				      ? underlay_mtu - DATAPLANE_VXLAN_OVERHEAD
				      : 576);
	dp->buf = malloc(MNL_SOCKET_BUFFER_SIZE);
	if (!dp->buf) {
		rv = CS_ENOMEM;
		goto err_free;
	}
	/* not inherited by the exec of a role change */
	dp->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!dp->nl || mnl_socket_bind(dp->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		netlog_errf(err, err_size, "netlink: %s", strerror(errno));
		rv = CS_ENOTSUP;
		goto err_close;
	}
	/* the kernel's extended words on errors (older kernels: ignored) */
	mnl_socket_setsockopt(dp->nl, NETLINK_EXT_ACK, &one, sizeof one);
	dp->portid = mnl_socket_get_portid(dp->nl);
	dp->seq = (uint32_t)time(NULL);
	/* the probe: can this kernel, and may we, make a VXLAN device? On
	 * UDP port DATAPLANE_PROBE_PORT, never a VXLAN port, so that its VNI
	 * cannot clash with a network's (a VNI is unique per port) */
	rv = dataplane_link_delete(dp, DATAPLANE_PROBE_NAME, err, err_size);
	if (!rv) {
		uint16_t port = dp->vxlan_port;
		dp->vxlan_port = DATAPLANE_PROBE_PORT;
		rv = dataplane_link_create(dp, DATAPLANE_PROBE_NAME, DATAPLANE_PROBE_VNI,
					   0, err, err_size);
		dp->vxlan_port = port;
	}
	if (!rv)
		rv = dataplane_link_delete(dp, DATAPLANE_PROBE_NAME, err, err_size);
	if (rv) {
		rv = CS_ENOTSUP;
		goto err_close;
	}
	netlog_errf(err, err_size, "%s", "");
	dataplane_sweep(dp);
	*out = dp;
	return 0;
err_close:
	if (dp->nl)
		mnl_socket_close(dp->nl);
err_free:
	free(dp->buf);
	free(dp);
	return rv;
}

void dataplane_set_log(struct dataplane *dp,
		       void (*log)(void *data, enum env_log_level lvl, const char *msg),
		       void *data)
{
	dp->log = log;
	dp->log_data = data;
}

void dataplane_close(struct dataplane *dp)
{
	if (!dp)
		return;
	mnl_socket_close(dp->nl);
	free(dp->nets);
	free(dp->buf);
	free(dp);
}
