#!/bin/bash
# Encrypted overlay networks on the real data plane (issue 17, --opt
# encrypted): two nodes in network namespaces of their own (ct<pid>a,
# ct<pid>b, joined by veths to a bridge in ct<pid>h), each running
# tests/integration/ct_harness.c: net/dataplane.c and net/crypttun.c driven
# by a state file, in the order uvenv's net_set calls them (the key manager
# and `--opt encrypted` on the managers are another helper's part; until
# they land, the states are written here). A "task" on each node is a
# namespace of its own (ct<pid>a1, ct<pid>b1) on the network's bridge at its
# address and derived MAC, as Docker puts a container there.
#
#   1. the network in clear (VXLAN): a fetch across nodes works, and the
#      underlay capture sees the payload (the capture would see clear text)
#   2. the same network switched to encrypted (rebuilt: the TAP replaces
#      the VXLAN device): the fetch works; the capture holds no payload, no
#      VXLAN packet, no IP fragment; only the tunnel's UDP port
#   3. a node holding the key id with other material: no traffic
#   4. a key rotation in the key manager's order (add, switch the primary
#      on one node then the other, drop the old key): traffic flows at each
#      step, the last ones under the new key only
#   5. a node with no key: nothing reaches the wire from it
#   6. a node's daemon restarted: its TAP is made again, the bridge and the
#      task's link adopted, the fetch works
#   7. net_remove on both: nothing of the network stays
#
#   tests/integration/crypt.sh [BIN_DIR] [--smoke]     (needs root)
#   tests/integration/crypt.sh [BIN_DIR] --bench [N] [MB]
#
# --smoke stops after step 2. --bench measures connection setup (N
# connections) and throughput (MB MiB) between the two tasks, over the
# network in clear (VXLAN) then encrypted, and prints the ratio (the
# `make bench` line; what is timed is tests/bench/dpnet_tool.c's). It
# removes everything it made with a trap, also on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
MODE=${2:-full}
TAG=ct$$
HUB=${TAG}h
CPORT=26500
VPORT=26501
HPORT=26580
VNI=4242
WORK=""
declare -A HPID
PIDS=()

say() { printf 'crypt: %s\n' "$*" >&2; }
fail() {
	say "FAIL: $*"
	# CT_KEEP=SECONDS: leave it all standing that long to look at it
	[ -n "${CT_KEEP:-}" ] && { say "kept: $WORK, namespaces $TAG*"; sleep "$CT_KEEP"; }
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	for p in "${PIDS[@]}" "${HPID[@]}"; do
		kill "$p" 2>/dev/null
	done
	# and what those started (dpnet_tool's sink child) in our namespaces
	for n in a1 b1 a b; do
		for p in $(ip netns pids "${TAG}$n" 2>/dev/null); do
			kill "$p" 2>/dev/null
		done
	done
	wait 2>/dev/null
	for n in a1 b1 a b; do
		ip netns del "${TAG}$n" 2>/dev/null
	done
	ip netns del "$HUB" 2>/dev/null
	[ -n "$WORK" ] && [ $rc -ne 0 ] && [ -f "$WORK/ha.log" ] &&
		{ say "harness logs:"; tail -n 20 "$WORK/ha.log" "$WORK/hb.log" >&2; }
	[ -n "$WORK" ] && rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { say "skipped (needs root)"; exit 0; }
[ -r /dev/net/tun ] || { say "skipped (no /dev/net/tun)"; exit 0; }
[ -f "$BIN/release/libnet.a" ] || [ -f "$BIN/libnet.a" ] || fail "no libnet.a under $BIN (make first)"
LIBDIR=$BIN/release
[ -f "$LIBDIR/libnet.a" ] || LIBDIR=$BIN
WORK=$(mktemp -d /tmp/ct-crypt.XXXXXX)
${CC:-cc} -O2 -I"$ROOT" -I"$ROOT/build/gen" -o "$WORK/ct_harness" \
	"$ROOT/tests/integration/ct_harness.c" "$LIBDIR/libnet.a" "$LIBDIR/libcore.a" \
	-luv -lmnl -lcrypto || fail "cannot build ct_harness"

in_ns() {
	local n=$1
	shift
	ip netns exec "${TAG}$n" "$@"
}
# bg_ns NODE CMD...: CMD in NODE's namespace in the background; $! is CMD
bg_ns() {
	local n=$1
	shift
	ip netns exec "${TAG}$n" "$@" &
}
node_ip() { [ "$1" = a ] && echo 192.168.240.1 || echo 192.168.240.2; }
task_ip() { [ "$1" = a ] && echo 10.77.0.2 || echo 10.77.0.3; }
task_mac() { [ "$1" = a ] && echo 02:42:0a:4d:00:02 || echo 02:42:0a:4d:00:03; }

K1=$(openssl rand -hex 32)
K2=$(openssl rand -hex 32)
KX=$(openssl rand -hex 32)

# state NODE ENCRYPTED [key ID HEX]... [primary N]: the network as NODE's
# agent would be given it
state() {
	local node=$1 enc=$2
	shift 2
	{
		echo "net 77 $VNI 10.77.0.0/24 10.77.0.1 $enc"
		echo "ep 10.77.0.2 192.168.240.1"
		echo "ep 10.77.0.3 192.168.240.2"
		while [ $# -gt 0 ]; do
			case $1 in
			key) echo "key $2 $3"; shift 3 ;;
			primary) echo "primary $2"; shift 2 ;;
			esac
		done
	} >"$WORK/state-$node.tmp"
	mv "$WORK/state-$node.tmp" "$WORK/state-$node"
}

applied() { grep -c '^applied' "$WORK/h$1.out" 2>/dev/null || true; }

# apply NODE: SIGHUP the node's harness, wait for its next "applied"
apply() {
	local n=$1 before
	before=$(applied "$n")
	kill -HUP "${HPID[$n]}"
	for _ in $(seq 50); do
		[ "$(applied "$n")" -gt "$before" ] && return 0
		grep -q '^error' "$WORK/h$n.out" && fail "node $n: $(grep '^error' "$WORK/h$n.out" | tail -1)"
		sleep 0.1
	done
	fail "node $n did not apply its state"
}

start_harness() {
	local n=$1
	: >"$WORK/h$n.out"
	bg_ns "$n" ${CT_NICE:+nice -n "$CT_NICE"} "$WORK/ct_harness" "$(node_ip "$n")" $CPORT $VPORT "$WORK/state-$n" \
		>>"$WORK/h$n.out" 2>>"$WORK/h$n.log"
	HPID[$n]=$!
	for _ in $(seq 50); do
		[ "$(applied "$n")" -ge 1 ] && return 0
		grep -q '^error' "$WORK/h$n.out" && fail "node $n: $(cat "$WORK/h$n.out")"
		sleep 0.1
	done
	fail "node $n's harness did not start"
}

# plug NODE: the task's namespace on the node's bridge (as Docker's veth)
plug() {
	local n=$1 mtu
	mtu=$(in_ns "$n" cat /sys/class/net/cs-br-$VNI/mtu)
	ip netns add "${TAG}${n}1"
	in_ns "$n" ip link add "${TAG}${n}t" mtu "$mtu" type veth peer name eth0 netns "${TAG}${n}1"
	in_ns "$n" ip link set "${TAG}${n}t" master cs-br-$VNI up
	in_ns "${n}1" ip link set lo up
	in_ns "${n}1" ip link set eth0 address "$(task_mac "$n")" mtu "$mtu" up
	in_ns "${n}1" ip addr add "$(task_ip "$n")/24" dev eth0
	in_ns "${n}1" ip route add default via 10.77.0.1
}

# ---------------------------------------------------------------- topology
ip netns add "$HUB"
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" link set br0 up
for n in a b; do
	ip netns add "${TAG}$n"
	ip link add "${TAG}${n}u" type veth peer name "${TAG}${n}h"
	ip link set "${TAG}${n}u" netns "${TAG}$n"
	ip link set "${TAG}${n}h" netns "$HUB"
	ip -n "$HUB" link set "${TAG}${n}h" master br0 up
	in_ns "$n" ip link set "${TAG}${n}u" name eth0
	in_ns "$n" ip addr add "$(node_ip "$n")/24" dev eth0
	in_ns "$n" ip link set eth0 up
	in_ns "$n" ip link set lo up
done

for n in a b; do
	state "$n" 0
	start_harness "$n"
	plug "$n"
done
mkdir -p "$WORK/www"
for _ in $(seq 400); do printf 'CTSECRET-%s-payload-never-in-clear\n' "$TAG"; done >"$WORK/www/f"
SIZE=$(stat -c %s "$WORK/www/f")
bg_ns b1 busybox httpd -f -p $HPORT -h "$WORK/www"
PIDS+=($!)

# (curl: busybox-static's wget faults here)
fetch() { in_ns a1 curl -s -m 3 "http://10.77.0.3:$HPORT/f" 2>/dev/null | wc -c; }
fetch_ok() { [ "$(fetch)" = "$SIZE" ]; }
wait_fetch() {
	for _ in $(seq 20); do
		fetch_ok && return 0
		sleep 0.3
	done
	fail "$1: the task on a cannot fetch from the task on b"
}

# retune: the tasks at the network's MTU now, as Docker's network made
# again with dataplane_net.mtu gives its containers (a task that kept 1450
# on an encrypted network has its large frames dropped: crypttun's "over
# the network's MTU")
retune() {
	local n mtu
	for n in a b; do
		mtu=$(in_ns "$n" cat /sys/class/net/cs-br-$VNI/mtu)
		in_ns "${n}1" ip link set eth0 mtu "$mtu"
		in_ns "$n" ip link set "${TAG}${n}t" mtu "$mtu"
	done
}

CAP=""
cap_start() {
	CAP=$WORK/cap-$1.pcap
	bg_ns b tcpdump -i eth0 -n -U --immediate-mode -s 0 -w "$CAP" >/dev/null 2>"$CAP.err"
	CAPPID=$!
	for _ in $(seq 50); do
		grep -q listening "$CAP.err" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "tcpdump did not start: $(cat "$CAP.err")"
}
cap_stop() {
	sleep 0.5
	kill -INT "$CAPPID"
	wait "$CAPPID" 2>/dev/null || true
}
cap_count() { tcpdump -r "$CAP" -n "$1" 2>/dev/null | wc -l; }
cap_clear() { grep -a -c "CTSECRET-$TAG" "$CAP" || true; }

if [ "$MODE" = --bench ]; then
	N=${3:-2000}
	MB=${4:-512}
	${CC:-cc} -O2 -o "$WORK/dpnet_tool" "$ROOT/tests/bench/dpnet_tool.c"
	wait_fetch "bench (clear)"
	bg_ns b1 "$WORK/dpnet_tool" serve 26590
	PIDS+=($!)
	sleep 0.5
	measure() {
		local c s
		c=$(in_ns a1 "$WORK/dpnet_tool" conn 10.77.0.3 26590 "$N")
		s=$(in_ns a1 "$WORK/dpnet_tool" send 10.77.0.3 26591 "$MB")
		echo "$c|$s"
	}
	PLAIN=$(measure)
	for n in a b; do state "$n" 1 key 1 "$K1" primary 0; apply "$n"; done
	retune
	wait_fetch "bench (encrypted)"
	ENC=$(measure)
	for n in a b; do kill -USR1 "${HPID[$n]}"; done
	sleep 0.3
	for n in a b; do say "node $n tunnel: $(grep '^stats' "$WORK/h$n.out" | tail -1)"; done
	say "node b UDP: $(in_ns b grep '^Udp:' /proc/net/snmp | tail -1)"
	for n in a b; do say "node $n TAP: $(in_ns "$n" ip -s link show cs-tp-$VNI | tr -s ' \n' ' ')"; done
	# conn N mean_us p50_us p99_us | send MB mib_per_s
	read -r _ _ pm pp _ <<<"${PLAIN%%|*}"
	read -r _ _ em ep _ <<<"${ENC%%|*}"
	read -r _ _ ps <<<"${PLAIN##*|}"
	read -r _ _ es <<<"${ENC##*|}"
	printf 'dataplane conn encrypted: %s connections, p50 %s us (mean %s) vs VXLAN in clear p50 %s us (mean %s): ratio %.2f (socket() to close(), 2 nodes in namespaces, userspace AES-256-GCM tunnel)\n' \
		"$N" "$ep" "$em" "$pp" "$pm" "$(awk -v a="$ep" -v b="$pp" 'BEGIN { print a / b }')"
	printf 'dataplane throughput encrypted: %s MiB/s vs VXLAN in clear %s MiB/s: ratio %.2f (%s MiB on one TCP connection, connect() to the peer close)\n' \
		"$es" "$ps" "$(awk -v a="$es" -v b="$ps" 'BEGIN { print a / b }')" "$MB"
	exit 0
fi

# ---------------------------------------------------------------- 1. clear
cap_start clear
wait_fetch "in clear (VXLAN)"
cap_stop
[ "$(cap_clear)" -gt 0 ] || fail "the capture did not see the clear payload over VXLAN (the capture is blind)"
[ "$(cap_count "udp port $VPORT")" -gt 0 ] || fail "no VXLAN packet in clear mode"
say "ok: in clear over VXLAN, the capture sees the payload ($(cap_clear) lines)"

# ---------------------------------------------------------------- 2. encrypted
for n in a b; do state "$n" 1 key 1 "$K1" primary 0; apply "$n"; done
for n in a b; do
	in_ns "$n" test ! -e /sys/class/net/cs-vx-$VNI || fail "node $n: the VXLAN device stayed"
	[ "$(in_ns "$n" cat /sys/class/net/cs-tp-$VNI/master/ifindex)" = \
		"$(in_ns "$n" cat /sys/class/net/cs-br-$VNI/ifindex)" ] ||
		fail "node $n: the TAP is not on the bridge"
done
MTU_BR=$(in_ns a cat /sys/class/net/cs-br-$VNI/mtu)
[ "$MTU_BR" = $((1500 - 82)) ] || fail "the encrypted bridge's MTU is $MTU_BR, not 1500 - 82"
retune
cap_start enc
wait_fetch "encrypted"
cap_stop
[ "$(cap_clear)" = 0 ] || fail "the payload crossed the underlay in clear"
[ "$(cap_count "udp port $VPORT")" = 0 ] || fail "VXLAN packets on an encrypted network"
[ "$(cap_count "udp port $CPORT")" -gt 0 ] || fail "no tunnel packet"
[ "$(cap_count 'ip[6:2] & 0x3fff != 0')" = 0 ] || fail "IP fragments on the underlay"
[ "$(cap_count "ip and not udp port $CPORT")" = 0 ] || fail "other IPv4 traffic between the nodes: $(tcpdump -r "$CAP" -n "ip and not udp port $CPORT" 2>/dev/null | head -3)"
say "ok: encrypted: the fetch works ($SIZE bytes), $(cap_count "udp port $CPORT") tunnel packets, no payload, no VXLAN, no fragment"
[ "$MODE" = --smoke ] && { say "ok (smoke)"; exit 0; }

# ---------------------------------------------------------------- 3. wrong key
state b 1 key 1 "$KX" primary 0
apply b
fetch_ok && fail "a node with other key material still receives"
state b 1 key 1 "$K1" primary 0
apply b
wait_fetch "the right key again"
say "ok: a node with other material under the same key id gets nothing"

# ---------------------------------------------------------------- 4. rotation
for n in a b; do state "$n" 1 key 1 "$K1" key 2 "$K2" primary 0; apply "$n"; done
wait_fetch "rotation: both keys, 1 primary"
state a 1 key 1 "$K1" key 2 "$K2" primary 1
apply a
wait_fetch "rotation: a sends with 2"
state b 1 key 1 "$K1" key 2 "$K2" primary 1
apply b
wait_fetch "rotation: both send with 2"
for n in a b; do state "$n" 1 key 2 "$K2" primary 0; apply "$n"; done
wait_fetch "rotation: key 1 gone"
say "ok: a key rotation (add, switch, drop) keeps the fetch working"

# ---------------------------------------------------------------- 5. no key
state a 1
apply a
cap_start nokey
fetch_ok && fail "a node with no key still talks"
cap_stop
[ "$(cap_count "src host 192.168.240.1 and udp")" = 0 ] || fail "a node with no key sent on the underlay"
[ "$(cap_clear)" = 0 ] || fail "the payload in clear with no key"
state a 1 key 2 "$K2" primary 0
apply a
wait_fetch "the key back"
say "ok: with no key nothing leaves the node"

# ---------------------------------------------------------------- 6. restart
kill -TERM "${HPID[a]}"
wait "${HPID[a]}" 2>/dev/null || true
in_ns a test ! -e /sys/class/net/cs-tp-$VNI || fail "the TAP outlived its daemon"
in_ns a test -e /sys/class/net/cs-br-$VNI || fail "the bridge went with the daemon"
start_harness a
wait_fetch "after node a's daemon restarted"
say "ok: a restarted daemon makes its TAP again and adopts the bridge"

# ---------------------------------------------------------------- 7. remove
for n in a b; do
	kill -INT "${HPID[$n]}"
	wait "${HPID[$n]}" 2>/dev/null || true
	left=$(in_ns "$n" ip -o link show | grep -c "cs-" || true)
	[ "$left" = 0 ] || fail "node $n: $left devices left after net_remove"
done
HPID=()
say "ok: net_remove leaves nothing"
say "ok"
