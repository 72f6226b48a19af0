#!/bin/bash
# The tasks' resolver (issue 17, net/resolver.c) against the C library's own
# resolver, in network namespaces this script makes and removes (also when it
# fails): a "node" namespace with a bridge (gateway 10.0.9.1/24) where a
# small driver linked with net/resolver.c serves one network's names on the
# gateway, port 53, as swarmd would; a "task" namespace on the bridge whose
# /etc/resolv.conf (ip netns exec's /etc/netns/NAME/resolv.conf) names the
# gateway; an "upstream" namespace (192.168.77.2, the node's resolver) with a
# fake DNS server answering every name with 192.0.2.99. It checks, through
# getaddrinfo (A and AAAA asked together, as glibc does):
#   - a service name and its alias give the VIP; tasks.NAME the tasks;
#   - a dnsrr service gives its tasks, in a rotating order;
#   - NAME.NETWORK answers too; an unknown name is forwarded upstream;
#   - a name with more addresses than a UDP answer holds comes back whole
#     (glibc retries over TCP on TC);
#   - with the upstream gone, an unknown name fails (SERVFAIL) in bounded time.
# Needs root, iproute2, python3.
#
#   tests/integration/lb-resolver.sh [BUILD_DIR]      (default build/release)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OBJ=${1:-$ROOT/build/release}
WORK=$(mktemp -d /tmp/cswarm-rsv.XXXXXX)
P=csrv$$
NODE=${P}n TASK=${P}t UP=${P}u
NSS="$NODE $TASK $UP"
DRV_PID="" UP_PID=""
ETC_NETNS_MADE=""
[ -d /etc/netns ] || ETC_NETNS_MADE=1

say() { printf 'lb-resolver: %s\n' "$*"; }
fail() {
	printf 'lb-resolver: FAIL: %s\n' "$*" >&2
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ] && [ -f "$WORK/drv.log" ]; then
		echo "---- the driver's log" >&2
		tail -n 20 "$WORK/drv.log" >&2
	fi
	[ -n "$DRV_PID" ] && kill "$DRV_PID" 2>/dev/null
	[ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null
	for ns in $NSS; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	[ -n "$ETC_NETNS_MADE" ] && rmdir /etc/netns 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || fail "needs root"
for t in ip python3 cc; do command -v $t >/dev/null || fail "needs $t"; done
[ -f "$OBJ/libnet.a" ] && [ -f "$OBJ/libcore.a" ] || fail "build first: make (no $OBJ/libnet.a)"

# ---------------------------------------------------------------- the driver
cat >"$WORK/rsvdrv.c" <<'EOF'
/* rsvdrv: serve one network's names as swarmd would, until killed.
 *   rsvdrv GATEWAY UPSTREAM NETNAME SVC...
 *   SVC: NAME,VIP|-,B1+B2|-,ALIAS1+ALIAS2|-  (VIP "-": dnsrr) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "core/errors.h"
#include "net/resolver.h"
#define MAXS 16
#define MAXB 64
static const char **list(char *s)
{
	const char **out = calloc(MAXB + 1, sizeof *out);
	size_t n = 0;
	if (strcmp(s, "-") == 0)
		return out;
	for (char *a = strtok(s, "+"); a && n < MAXB; a = strtok(NULL, "+"))
		out[n++] = a;
	return out;
}
int main(int argc, char **argv)
{
	static struct env_net_service s[MAXS];
	struct env_net_state st = {.network_id = 1, .services = s};
	struct resolver *r;
	const char *ups[] = {argv[2], NULL};
	struct resolver_config cfg = {.port = 53, .upstreams = ups, .forward_timeout_ms = 500};
	if (argc < 4)
		return 2;
	st.gateway = argv[1];
	st.name = argv[3];
	for (int i = 4; i < argc && st.service_count < MAXS; i++) {
		struct env_net_service *v = &s[st.service_count];
		char *name = strtok(argv[i], ","), *vip = strtok(NULL, ","), *b = strtok(NULL, ","),
		     *al = strtok(NULL, ",");
		v->service_id = ++st.service_count;
		v->name = name;
		v->vip = strcmp(vip, "-") ? vip : NULL;
		char *bcopy = strdup(b), *acopy = strdup(al ? al : "-");
		v->backends = list(bcopy);
		v->aliases = list(acopy);
	}
	if (resolver_start(uv_default_loop(), &cfg, &r))
		return 3;
	int rc = resolver_set(r, &st);
	if (rc) {
		fprintf(stderr, "rsvdrv: %s\n", cs_errname(rc));
		return 4;
	}
	printf("ready\n");
	fflush(stdout);
	return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
EOF
cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$ROOT" -I"$ROOT/build/gen" \
	-o "$WORK/rsvdrv" "$WORK/rsvdrv.c" "$OBJ/libnet.a" "$OBJ/libcore.a" -luv ||
	fail "cannot build the driver"

# ---------------------------------------------------------------- the place
say "namespaces $NSS"
for ns in $NSS; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$NODE" link add br0 type bridge
ip -n "$NODE" addr add 10.0.9.1/24 dev br0
ip -n "$NODE" link set br0 up
ip link add "${P}vt" type veth peer name eth0 netns "$TASK"
ip link set "${P}vt" netns "$NODE"
ip -n "$NODE" link set "${P}vt" master br0 up
ip -n "$TASK" addr add 10.0.9.10/24 dev eth0
ip -n "$TASK" link set eth0 up
ip -n "$TASK" route add default via 10.0.9.1
ip link add "${P}vu" type veth peer name eth0 netns "$UP"
ip link set "${P}vu" netns "$NODE"
ip -n "$NODE" addr add 192.168.77.1/24 dev "${P}vu"
ip -n "$NODE" link set "${P}vu" up
ip -n "$UP" addr add 192.168.77.2/24 dev eth0
ip -n "$UP" link set eth0 up
mkdir -p "/etc/netns/$TASK"
printf 'nameserver 10.0.9.1\noptions timeout:1 attempts:2\n' >"/etc/netns/$TASK/resolv.conf"

# the node's resolver: every A question gets 192.0.2.99, anything else empty
ip netns exec "$UP" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53))
while True:
    q, a = s.recvfrom(512)
    end = 12
    while q[end]: end += 1 + q[end]
    qtype = q[end + 1:end + 3]; qend = end + 5
    ans = b""
    if qtype == b"\x00\x01":
        ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 99])
    hdr = q[:2] + b"\x81\x80" + b"\x00\x01" + (b"\x00\x01" if ans else b"\x00\x00") + b"\x00\x00\x00\x00"
    s.sendto(hdr + q[12:qend] + ans, a)' &
UP_PID=$!

BIG=$(for i in $(seq 11 50); do printf '10.0.9.%d+' $i; done)
BIG=${BIG%+}
ip netns exec "$NODE" "$WORK/rsvdrv" 10.0.9.1 192.168.77.2 app \
	"web,10.0.9.2,10.0.9.11+10.0.9.12,www" "db,-,10.0.9.13+10.0.9.14+10.0.9.15" \
	"big,-,$BIG" >"$WORK/drv.log" 2>&1 &
DRV_PID=$!
for _ in $(seq 50); do grep -q ready "$WORK/drv.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/drv.log" || fail "the driver did not start"

# look NAME: the IPv4 addresses getaddrinfo gives, in its order, or ERR
look() {
	ip netns exec "$TASK" python3 -c '
import socket, sys
try:
    seen = []
    for fam, _, _, _, sa in socket.getaddrinfo(sys.argv[1], 80, 0, socket.SOCK_STREAM):
        if fam == socket.AF_INET and sa[0] not in seen: seen.append(sa[0])
    print(",".join(seen))
except socket.gaierror as e:
    print("ERR " + str(e.errno))' "$1"
}
# raw NAME: the A records of one UDP question, in the order sent
raw() {
	ip netns exec "$TASK" python3 -c '
import socket, struct, sys
q = struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0)
for l in sys.argv[1].split("."): q += bytes([len(l)]) + l.encode()
q += b"\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(q, ("10.0.9.1", 53)); r = s.recv(4096)
n = struct.unpack(">H", r[6:8])[0]; off = len(q); out = []
for i in range(n):
    out.append(socket.inet_ntoa(r[off + 12:off + 16])); off += 16
print(",".join(out))' "$1"
}

say "service name, alias, NAME.NETWORK: the VIP"
[ "$(look web)" = 10.0.9.2 ] || fail "web: $(look web)"
[ "$(look www)" = 10.0.9.2 ] || fail "www: $(look www)"
[ "$(look web.app)" = 10.0.9.2 ] || fail "web.app: $(look web.app)"
say "tasks.web: the tasks"
got=$(look tasks.web | tr , '\n' | sort | paste -sd,)
[ "$got" = 10.0.9.11,10.0.9.12 ] || fail "tasks.web: $got"
say "dnsrr: the tasks, rotated from one answer to the next"
a=$(raw db) b=$(raw db) c=$(raw db)
[ "$a" = 10.0.9.13,10.0.9.14,10.0.9.15 ] || fail "db first: $a"
[ "$b" = 10.0.9.14,10.0.9.15,10.0.9.13 ] || fail "db second: $b"
[ "$c" = 10.0.9.15,10.0.9.13,10.0.9.14 ] || fail "db third: $c"
say "40 addresses: whole, over TCP after a truncated UDP answer"
got=$(look big | tr , '\n' | wc -l)
[ "$got" = 40 ] || fail "big: $got addresses: $(look big)"
say "an unknown name: forwarded to the node's resolver"
[ "$(look example.org)" = 192.0.2.99 ] || fail "example.org: $(look example.org)"
say "the node's resolver gone: an unknown name fails, in bounded time"
kill "$UP_PID"
wait "$UP_PID" 2>/dev/null || true
UP_PID=""
start=$(date +%s)
got=$(look example.org)
case "$got" in ERR*) ;; *) fail "example.org without upstream: $got" ;; esac
[ $(($(date +%s) - start)) -lt 15 ] || fail "took $(($(date +%s) - start)) s"
say "ok"
