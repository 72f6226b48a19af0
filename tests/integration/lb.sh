#!/bin/bash
# VIP load balancing and the routing mesh's ingress port, for real (issue 17,
# net/lb.c), in network namespaces this script makes and removes (also when
# it fails): a "node" namespace with a bridge (the network, gateway
# 10.0.9.1/24, and this node's own address 10.0.9.250 on it) and an
# "outside" link (192.168.77.1/24); a client "container" (10.0.9.10) and two
# backends (10.0.9.11, 10.0.9.12) on the bridge, each answering TCP port 80
# with its name; an outside host (192.168.77.2). A small driver linked with
# net/lb.c applies a network's state as swarmd would, and the script checks:
#   - the VIP (10.0.9.2:80) from the client reaches both backends;
#   - a backend that leaves the state gets no new connection;
#   - a VIP with no backend refuses at once (a reset, not a timeout);
#   each in both places the rules may live: the client's namespace, and
#   the node's on the bridge (where a backend may also call its own VIP,
#   and a backend on another node, b3 behind a second bridge, answers);
#   - the ingress port 30080 on the node's outside address reaches both
#     backends' port 80 from outside, and from the node itself;
#   - an ingress port with no backend refuses; clearing removes the tables.
# Needs root, iproute2, nftables' kernel parts, python3.
#
#   tests/integration/lb.sh [BUILD_DIR]      (default build/release)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OBJ=${1:-$ROOT/build/release}
WORK=$(mktemp -d /tmp/cswarm-lb.XXXXXX)
P=cslb$$ # namespace prefix: unique to this run
NODE=${P}n CLIENT=${P}c B1=${P}b1 B2=${P}b2 EXT=${P}x OTHER=${P}m B3=${P}b3
NSS="$NODE $CLIENT $B1 $B2 $EXT $OTHER $B3"

say() { printf 'lb: %s\n' "$*"; }
fail() {
	printf 'lb: FAIL: %s\n' "$*" >&2
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		echo "---- node ruleset" >&2
		ip netns exec "$NODE" nft list ruleset >&2 2>/dev/null
		echo "---- client ruleset" >&2
		ip netns exec "$CLIENT" nft list ruleset >&2 2>/dev/null
	fi
	for ns in $NSS; do
		# the servers die with their namespace's last process
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || fail "needs root"
for t in ip python3 cc; do command -v $t >/dev/null || fail "needs $t"; done
[ -f "$OBJ/libnet.a" ] && [ -f "$OBJ/libcore.a" ] || fail "build first: make (no $OBJ/libnet.a)"

# ---------------------------------------------------------------- the driver
cat >"$WORK/lbdrv.c" <<'EOF'
/* lbdrv: one network's state applied as swarmd's data plane would.
 *   lbdrv vip NETNS BRIDGE NETID LOCALS SVC...  SVC: ID,VIP,B1+B2 (or ID,VIP,)
 *   lbdrv ingress NETNS BRIDGE SNAT LOCALS SVC...  SVC: ID,PUB:TARGET,B1+B2
 * BRIDGE "-": a container's namespace; LOCALS: A+B, the local endpoints
 *   lbdrv clear-vip NETNS NETID | clear-ingress NETNS
 * NETNS "-": this process's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/errors.h"
#include "net/lb.h"
#define MAXS 16
#define MAXB 16
int main(int argc, char **argv)
{
	static struct env_net_service s[MAXS];
	static const char *b[MAXS][MAXB + 1];
	static struct env_port p[MAXS];
	static struct env_net_endpoint ep[MAXB];
	struct env_net_state st = {.services = s};
	struct lb_target t;
	char err[LB_ERR_BYTES];
	int ingress, first, rc;
	if (argc < 3)
		return 2;
	const char *ns = strcmp(argv[2], "-") ? argv[2] : NULL;
	if (!strcmp(argv[1], "clear-vip") && argc == 4) {
		lb_target_init_vip(&t, ns, NULL);
		rc = lb_target_clear(&t, strtoull(argv[3], NULL, 0), err, sizeof err);
		goto out;
	}
	if (!strcmp(argv[1], "clear-ingress")) {
		lb_target_init_ingress(&t, ns, "br0", NULL);
		rc = lb_target_clear(&t, 0, err, sizeof err);
		goto out;
	}
	ingress = !strcmp(argv[1], "ingress");
	if (argc < 6)
		return 2;
	if (ingress) {
		rc = lb_target_init_ingress(&t, ns, argv[3], strcmp(argv[4], "-") ? argv[4] : NULL);
	} else {
		rc = lb_target_init_vip(&t, ns, strcmp(argv[3], "-") ? argv[3] : NULL);
		st.network_id = strtoull(argv[4], NULL, 0);
	}
	if (rc)
		return 3;
	for (char *a = strcmp(argv[5], "-") ? strtok(argv[5], "+") : NULL;
	     a && st.endpoint_count < MAXB; a = strtok(NULL, "+"))
		ep[st.endpoint_count++] = (struct env_net_endpoint){.addr = a, .local = 1};
	st.endpoints = ep;
	first = 6;
	for (int i = first; i < argc && st.service_count < MAXS; i++) {
		size_t k = st.service_count++;
		char *id = strtok(argv[i], ","), *key = strtok(NULL, ","), *bl = strtok(NULL, ",");
		s[k].service_id = strtoull(id, NULL, 0);
		s[k].name = id;
		if (ingress) {
			p[k].published = (uint32_t)strtoul(key, NULL, 10);
			p[k].target = (uint32_t)strtoul(strchr(key, ':') + 1, NULL, 10);
			p[k].proto = ENV_PORT_TCP;
			s[k].ports = &p[k];
			s[k].port_count = 1;
		} else {
			s[k].vip = key;
		}
		size_t n = 0;
		for (char *a = bl ? strtok(bl, "+") : NULL; a && n < MAXB; a = strtok(NULL, "+"))
			b[k][n++] = a;
		b[k][n] = NULL;
		s[k].backends = b[k];
	}
	rc = lb_target_sync(&t, &st, err, sizeof err);
out:
	if (rc) {
		fprintf(stderr, "lbdrv: %s: %s\n", cs_errname(rc), err);
		return 1;
	}
	return 0;
}
EOF
cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$ROOT" -I"$ROOT/build/gen" \
	-o "$WORK/lbdrv" "$WORK/lbdrv.c" "$OBJ/libnet.a" "$OBJ/libcore.a" -lnftables ||
	fail "cannot build the driver"
DRV=$WORK/lbdrv

# ---------------------------------------------------------------- the place
say "namespaces $NSS"
for ns in $NSS; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$NODE" link add br0 type bridge
ip -n "$NODE" addr add 10.0.9.1/24 dev br0
ip -n "$NODE" addr add 10.0.9.250/24 dev br0
ip -n "$NODE" link set br0 up
ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1
i=0
for pair in "$CLIENT 10.0.9.10" "$B1 10.0.9.11" "$B2 10.0.9.12"; do
	set -- $pair
	i=$((i + 1))
	ip link add "${P}v$i" type veth peer name eth0 netns "$1"
	ip link set "${P}v$i" netns "$NODE"
	ip -n "$NODE" link set "${P}v$i" master br0 up
	# a task may be given itself as its VIP's backend: br_netfilter then
	# bridges the DNATed frame back out of the port it came in by
	ip -n "$NODE" link set "${P}v$i" type bridge_slave hairpin on
	ip -n "$1" addr add "$2/24" dev eth0
	ip -n "$1" link set eth0 up
	ip -n "$1" route add default via 10.0.9.1
done
ip link add "${P}vx" type veth peer name eth0 netns "$EXT"
ip link set "${P}vx" netns "$NODE"
ip -n "$NODE" addr add 192.168.77.1/24 dev "${P}vx"
ip -n "$NODE" link set "${P}vx" up
ip -n "$EXT" addr add 192.168.77.2/24 dev eth0
ip -n "$EXT" link set eth0 up
# the outside host knows nothing of 10.0.9.0/24: only the node's address

# another node: its bridge joined to br0 by a veth pair (in place of the
# VXLAN device), holding b3 (10.0.9.13), which this node reaches as a
# remote backend; its answers reach the client through br0
ip -n "$OTHER" link add brm type bridge
ip -n "$OTHER" link set brm up
ip link add "${P}vl" type veth peer name "${P}vm" netns "$OTHER"
ip link set "${P}vl" netns "$NODE"
ip -n "$NODE" link set "${P}vl" master br0 up
ip -n "$OTHER" link set "${P}vm" master brm up
ip link add "${P}v3" type veth peer name eth0 netns "$B3"
ip link set "${P}v3" netns "$OTHER"
ip -n "$OTHER" link set "${P}v3" master brm up
ip -n "$B3" addr add 10.0.9.13/24 dev eth0
ip -n "$B3" link set eth0 up

serve() { # NS NAME: answer port 80 with NAME, forever
	ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()' "$2" &
}
serve "$B1" b1
serve "$B2" b2
serve "$B3" b3

# ask NS ADDR PORT COUNT: one line per connection, the name that answered,
# "refused", or "timeout"
ask() {
	ip netns exec "$1" python3 -c '
import socket, sys
for _ in range(int(sys.argv[3])):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((sys.argv[1], int(sys.argv[2]))); print(s.recv(64).decode() or "empty")
    except ConnectionRefusedError: print("refused")
    except OSError as e: print("timeout" if isinstance(e, socket.timeout) else "error " + str(e))
    s.close()' "$2" "$3" "$4"
}
# wait until the servers listen
for ns in $B1 $B2 $B3; do
	for _ in $(seq 50); do
		ip netns exec "$ns" python3 -c 'import socket; socket.create_connection(("127.0.0.1", 80), 1)' \
			2>/dev/null && break
		sleep 0.1
	done
done

expect_both() { # what ask printed: both backends, nothing else
	local got=$1 what=$2
	echo "$got" | grep -qx b1 || fail "$what: b1 never answered: $(echo $got)"
	echo "$got" | grep -qx b2 || fail "$what: b2 never answered: $(echo $got)"
	[ -z "$(echo "$got" | grep -vx 'b[12]')" ] || fail "$what: $(echo $got)"
}

# ---------------------------------------------------------------- VIP
CNS=/run/netns/$CLIENT
LOCALS=10.0.9.10+10.0.9.11+10.0.9.12
say "VIP 10.0.9.2 over b1 and b2, in the client's namespace"
$DRV vip "$CNS" - 0xab $LOCALS "1,10.0.9.2,10.0.9.11+10.0.9.12" "2,10.0.9.3,"
expect_both "$(ask "$CLIENT" 10.0.9.2 80 30)" "VIP"

say "b2 leaves the state: no new connection reaches it"
$DRV vip "$CNS" - 0xab $LOCALS "1,10.0.9.2,10.0.9.11" "2,10.0.9.3,"
got=$(ask "$CLIENT" 10.0.9.2 80 20)
[ "$(echo "$got" | sort -u)" = b1 ] || fail "after b2 left: $(echo $got)"

say "a VIP with no backend refuses at once"
got=$(ask "$CLIENT" 10.0.9.3 80 1)
[ "$got" = refused ] || fail "empty VIP: $got"

say "the node's namespace is untouched by the VIP's rules"
ip netns exec "$NODE" nft list tables | grep -q cswarm_vip && fail "VIP table in the node's namespace"
$DRV clear-vip "$CNS" 0xab
[ -z "$(ip netns exec "$CLIENT" nft list tables)" ] || fail "client tables left"

# ---------------------------------------------------------------- VIP, node
say "VIP in the node's namespace on br0 (the VIPs /32 on the bridge)"
ip -n "$NODE" addr add 10.0.9.2/32 dev br0
ip -n "$NODE" addr add 10.0.9.3/32 dev br0
ip netns exec "$NODE" sysctl -qw net.bridge.bridge-nf-call-iptables=1
NNS=/run/netns/$NODE
$DRV vip "$NNS" br0 0xcd $LOCALS "1,10.0.9.2,10.0.9.11+10.0.9.12" "2,10.0.9.3,"
expect_both "$(ask "$CLIENT" 10.0.9.2 80 30)" "node VIP"
say "a backend calling its own VIP, given itself (hairpin)"
expect_both "$(ask "$B1" 10.0.9.2 80 30)" "node VIP from b1"
$DRV vip "$NNS" br0 0xcd $LOCALS "1,10.0.9.2,10.0.9.11" "2,10.0.9.3,"
got=$(ask "$B1" 10.0.9.2 80 10)
[ "$(echo "$got" | sort -u)" = b1 ] || fail "hairpin: $(echo $got)"
got=$(ask "$CLIENT" 10.0.9.2 80 10)
[ "$(echo "$got" | sort -u)" = b1 ] || fail "node VIP after b2 left: $(echo $got)"
got=$(ask "$CLIENT" 10.0.9.3 80 1)
[ "$got" = refused ] || fail "empty node VIP: $got"
say "a backend on another node: its answer is un-DNATed on br0"
$DRV vip "$NNS" br0 0xcd $LOCALS "1,10.0.9.2,10.0.9.13" "2,10.0.9.3,"
got=$(ask "$CLIENT" 10.0.9.2 80 10)
[ "$(echo "$got" | sort -u)" = b3 ] || fail "remote backend: $(echo $got)"
$DRV vip "$NNS" br0 0xcd $LOCALS "1,10.0.9.2,10.0.9.11+10.0.9.13" "2,10.0.9.3,"
got=$(ask "$CLIENT" 10.0.9.2 80 30)
echo "$got" | grep -qx b1 && echo "$got" | grep -qx b3 || fail "local and remote: $(echo $got)"
$DRV clear-vip "$NNS" 0xcd

# ---------------------------------------------------------------- ingress
say "ingress: 30080 on every node address -> b1/b2 port 80, SNAT 10.0.9.250"
$DRV ingress "/run/netns/$NODE" br0 10.0.9.250 $LOCALS "1,30080:80,10.0.9.11+10.0.9.12" "2,30081:80,"
expect_both "$(ask "$EXT" 192.168.77.1 30080 30)" "ingress from outside"
expect_both "$(ask "$NODE" 192.168.77.1 30080 30)" "ingress from the node"

say "an ingress port with no backend refuses"
got=$(ask "$EXT" 192.168.77.1 30081 1)
[ "$got" = refused ] || fail "empty ingress port: $got"

say "clear: the tables go"
$DRV clear-ingress "/run/netns/$NODE"
[ -z "$(ip netns exec "$NODE" nft list tables)" ] || fail "node tables left"
got=$(ask "$EXT" 192.168.77.1 30080 1)
[ "$got" = refused ] || fail "ingress port after clear: $got"

say "ok"
