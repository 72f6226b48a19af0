#!/bin/bash
# The data plane's bench lines (issue 17), run by build/release/bench/bench_dataplane
# (`make bench`; needs root). Two nodes in network namespaces of their own
# (ms<pid>n1, ms<pid>n2, joined by veths to a bridge in ms<pid>h), each
# with its own dockerd and swarmd, as tests/integration/netns.sh makes
# them; node 1 is the manager. Each cswarm path is measured next to the
# same path without cswarm: two containers on one plain Docker bridge
# network of node 1's dockerd (and a port Docker publishes with -p), and
# each line gives the ratio. The traffic is tests/bench/dpnet_tool.c,
# built static here and put in the image beside busybox.
#
#   conn VIP:     a task on node 1 opens N connections to a service's VIP
#                 whose one task is on node 2 (DNAT, then VXLAN); next to
#                 N connections between two containers on a plain bridge
#   conn overlay: the same to the task's overlay address (no DNAT), to
#                 tell the VIP's part from the VXLAN's
#   conn ingress: the hub opens N connections to node 1's published port
#                 (node 1 runs no task of it: the routing mesh DNATs to
#                 node 2 through the ingress overlay, SNAT to node 1's
#                 ingress address); next to the hub on a port Docker
#                 publishes (-p) for a container on node 1
#   throughput:   MB MiB on one TCP connection, a task on node 1 to a task
#                 on node 2 over VXLAN; next to the plain bridge
#
# Timed (conn): per connection, socket() to close(): the handshake, one
# byte back, the close; not the process start, not DNS (addresses are
# given). Timed (throughput): connect() to the peer's close after the last
# byte. Each figure is one run on a shared machine: read ratios, not
# absolute numbers; connection ratios are of medians (p50), as the means
# follow the machine's other load (the p99 tail).
#
#   tests/bench/dataplane.sh [BIN_DIR] [N] [MB]    (default build/, 2000, 512)
#
# It removes everything it made with a trap, also on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
N=${2:-2000}
MB=${3:-512}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
IMAGE=mstest:dpnet
TAG=ms$$
HUB=${TAG}h
NODES="1 2"
SPORT=26210
declare -A PID DPID
WORK=""

say() { printf 'dataplane bench: %s\n' "$*" >&2; }
. "$ROOT/tests/integration/lib.sh"
ns() { echo "${TAG}n$1"; }
ip_of() { echo "192.168.233.$1"; }
dk() {
	local n=$1
	shift
	DOCKER_HOST="unix://$WORK/d$n/docker.sock" docker "$@"
}
ctl() { "$SWARMCTL" --socket "$WORK/n1.sock" "$@"; }

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	[ $rc -ne 0 ] && [ -n "$WORK" ] && for n in $NODES; do
		tail -n 8 "$WORK/n$n.log" >&2
	done
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	for n in $NODES; do
		[ -n "${DPID[$n]:-}" ] || continue
		if [ -S "$WORK/d$n/docker.sock" ]; then
			ids=$(dk "$n" ps -aq 2>/dev/null)
			[ -n "$ids" ] && dk "$n" rm -f $ids >/dev/null 2>&1
		fi
		kill -TERM "${DPID[$n]}" 2>/dev/null
	done
	for n in $NODES; do
		[ -n "${DPID[$n]:-}" ] || continue
		for ((i = 0; i < 60; i++)); do
			kill -0 "${DPID[$n]}" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "${DPID[$n]}" 2>/dev/null
	done
	wait 2>/dev/null
	for n in $NODES; do ip netns del "$(ns $n)" 2>/dev/null; done
	ip netns del "$HUB" 2>/dev/null
	for n in $NODES; do
		for d in /sys/fs/cgroup/*/"$(ns $n)" /sys/fs/cgroup/"$(ns $n)"; do
			[ -d "$d" ] && rmdir "$d" 2>/dev/null
		done
	done
	if [ -n "$WORK" ]; then
		findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | while read -r m; do
			umount -l "$m" 2>/dev/null
		done
		rm -rf "$WORK"
	fi
	[ $rc -eq 0 ] || say "failed (cleaned up)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || fail "needs root"
for t in ip nsenter dockerd docker jq; do command -v $t >/dev/null || fail "$t is missing"; done
[ -x /bin/busybox ] || fail "busybox-static is missing"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
WORK=$(mktemp -d /tmp/ms-dpb.XXXXXX)

ip netns add "$HUB"
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" link set br0 up
ip -n "$HUB" link set lo up
ip -n "$HUB" addr add 192.168.233.254/24 dev br0
for n in $NODES; do
	ip netns add "$(ns $n)"
	ip link add "${TAG}a$n" type veth peer name "${TAG}b$n"
	ip link set "${TAG}a$n" netns "$(ns $n)"
	ip link set "${TAG}b$n" netns "$HUB"
	ip -n "$(ns $n)" link set "${TAG}a$n" name eth0
	ip -n "$(ns $n)" addr add "$(ip_of $n)/24" dev eth0
	ip -n "$(ns $n)" link set eth0 up
	ip -n "$(ns $n)" link set lo up
	ip -n "$HUB" link set "${TAG}b$n" master br0 up
done
for n in $NODES; do
	d=$WORK/d$n
	mkdir -p "$d/data" "$d/exec"
	nsenter --net="/run/netns/$(ns $n)" -- setsid dockerd \
		--data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
		-H "unix://$d/docker.sock" --cgroup-parent "/$(ns $n)" \
		--containerd-namespace "$(ns $n)" --containerd-plugins-namespace "$(ns $n)p" \
		>"$d/dockerd.log" 2>&1 </dev/null &
	DPID[$n]=$!
done
docker_answers() { [ -S "$WORK/d$1/docker.sock" ] && dk "$1" version >/dev/null 2>&1; }
for n in $NODES; do wait_for 60 "node $n's dockerd" docker_answers "$n"; done

ctx=$WORK/image
mkdir -p "$ctx"
cp /bin/busybox "$ctx/busybox"
${CC:-cc} -static -O2 -o "$ctx/dpnet_tool" "$ROOT/tests/bench/dpnet_tool.c"
cp "$ctx/dpnet_tool" "$WORK/dpnet_tool"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCOPY dpnet_tool /dpnet_tool\n' >"$ctx/Dockerfile"
for n in $NODES; do
	DOCKER_BUILDKIT=0 dk "$n" build -q -t "$IMAGE" "$ctx" >"$WORK/build$n.log" 2>&1 ||
		{ tail -n 20 "$WORK/build$n.log" >&2; fail "building $IMAGE on node $n"; }
done

start_swarmd() {
	local n=$1
	shift
	nsenter --net="/run/netns/$(ns $n)" -- "$SWARMD" --state-dir "$WORK/n$n" \
		--listen-addr "$(ip_of $n):$SPORT" --hostname "msn$n" \
		--control-socket "$WORK/n$n.sock" --docker-socket "$WORK/d$n/docker.sock" \
		--data-plane on --log-level warn "$@" >>"$WORK/n$n.log" 2>&1 &
	PID[$n]=$!
	disown "${PID[$n]}"
}
start_swarmd 1
wait_for 30 "node 1's control socket" ctl cluster inspect
start_swarmd 2 --join-addr "$(ip_of 1):$SPORT" --join-token "$(ctl cluster join-token worker)"
ready() { [ "$(ctl node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq 2 ]; }
wait_for 60 "two nodes ready" ready

ctl network create --subnet 10.233.0.0/24 benchnet >/dev/null
ctl service create --name srvb --network benchnet --publish 26300:80 \
	--constraint node.hostname==msn2 --image "$IMAGE" -- /dpnet_tool serve 80 >/dev/null
ctl service create --name clib --network benchnet --constraint node.hostname==msn1 \
	--image "$IMAGE" -- sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' >/dev/null
running() { [ "$(ctl task ls --service "$1" --format json | jq '[.[] | select(.state == "running")] | length')" -eq 1 ]; }
wait_for 90 "srvb running" running srvb
wait_for 90 "clib running" running clib
t=$(ctl task ls --service srvb --format json | jq -r '[.[] | select(.state == "running")][0].id')
SRV=$(ctl task inspect "$t" | jq -r '.networks[] | select(.addr | startswith("10.233.")) | .addr' | cut -d/ -f1)
VIP=$(ctl service inspect srvb | jq -r '.virtual_ips[] | select(.addr | startswith("10.233.")) | .addr' | cut -d/ -f1)
CLI=$(dk 1 ps -q --filter "label=cswarm.service.name=clib" | head -n 1)
[ -n "$SRV" ] && [ -n "$VIP" ] && [ -n "$CLI" ] || fail "srvb $SRV vip $VIP clib $CLI"

# without cswarm: two containers on a plain bridge of node 1's dockerd,
# the server's ports also published by Docker (-p)
dk 1 network create msplain >/dev/null
dk 1 run -d --name msb_srv --network msplain -p 26301:80 "$IMAGE" /dpnet_tool serve 80 >/dev/null
dk 1 run -d --name msb_cli --network msplain "$IMAGE" sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' >/dev/null
PSRV=$(dk 1 inspect -f '{{(index .NetworkSettings.Networks "msplain").IPAddress}}' msb_srv)

in_cli() { dk 1 exec "$CLI" /dpnet_tool "$@"; }
in_plain() { dk 1 exec msb_cli /dpnet_tool "$@"; }
in_hub() { ip netns exec "$HUB" "$WORK/dpnet_tool" "$@"; }
# every path answers before it is timed (rules and entries in place)
ok() { "$@" >/dev/null 2>&1; }
wait_for 30 "clib -> VIP" ok in_cli conn "$VIP" 80 1
wait_for 30 "clib -> srvb" ok in_cli conn "$SRV" 80 1
wait_for 30 "hub -> node 1:26300 (mesh)" ok in_hub conn "$(ip_of 1)" 26300 1
wait_for 30 "plain" ok in_plain conn "$PSRV" 80 1
wait_for 30 "hub -> node 1:26301 (docker -p)" ok in_hub conn "$(ip_of 1)" 26301 1

# warm both sides once, then the timed runs
in_cli conn "$VIP" 80 200 >/dev/null
in_plain conn "$PSRV" 80 200 >/dev/null
read -r _ _ vip_mean vip_p50 vip_p99 < <(in_cli conn "$VIP" 80 "$N")
read -r _ _ ovl_mean ovl_p50 ovl_p99 < <(in_cli conn "$SRV" 80 "$N")
read -r _ _ pl_mean pl_p50 pl_p99 < <(in_plain conn "$PSRV" 80 "$N")
read -r _ _ ing_mean ing_p50 ing_p99 < <(in_hub conn "$(ip_of 1)" 26300 "$N")
read -r _ _ dp_mean dp_p50 dp_p99 < <(in_hub conn "$(ip_of 1)" 26301 "$N")
read -r _ _ il_mean il_p50 il_p99 < <(in_hub conn "$(ip_of 2)" 26300 "$N")
read -r _ _ ovl_mib < <(in_cli send "$SRV" 81 "$MB")
read -r _ _ pl_mib < <(in_plain send "$PSRV" 81 "$MB")
for v in "$vip_mean" "$ovl_mean" "$pl_mean" "$ing_mean" "$dp_mean" "$il_mean" "$ovl_mib" "$pl_mib"; do
	[ -n "$v" ] || fail "a run gave no figure"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "dataplane conn VIP: task node 1 -> VIP -> task node 2 (nft DNAT + VXLAN), $N connections: mean $vip_mean us (p50 $vip_p50, p99 $vip_p99); plain Docker bridge, 2 containers on 1 node: mean $pl_mean us (p50 $pl_p50, p99 $pl_p99); p50 ratio $(ratio "$vip_p50" "$pl_p50") (timed per connection: socket() to close(), handshake + 1 byte back + close; excludes process start and DNS)"
echo "dataplane conn overlay: task node 1 -> task node 2 by address (VXLAN, no DNAT): mean $ovl_mean us (p50 $ovl_p50, p99 $ovl_p99); p50 ratio to the plain bridge $(ratio "$ovl_p50" "$pl_p50") (same timed region)"
echo "dataplane conn ingress: hub -> node 1:26300, node 1 runs no task (mesh: DNAT, SNAT to node 1's ingress address, VXLAN to node 2): mean $ing_mean us (p50 $ing_p50, p99 $ing_p99); hub -> node 1:26301 published by Docker (-p) to a container on node 1: mean $dp_mean us (p50 $dp_p50, p99 $dp_p99); p50 ratio $(ratio "$ing_p50" "$dp_p50") (same timed region; the hub's client runs in a bare namespace)"
echo "dataplane conn ingress local: hub -> node 2:26300, the task on node 2 (DNAT + SNAT, no VXLAN): mean $il_mean us (p50 $il_p50, p99 $il_p99); p50 ratio to Docker's -p $(ratio "$il_p50" "$dp_p50") (same timed region)"
echo "dataplane throughput: task node 1 -> task node 2 over VXLAN, $MB MiB on one TCP connection: $ovl_mib MiB/s; plain Docker bridge: $pl_mib MiB/s; ratio $(ratio "$ovl_mib" "$pl_mib") (timed connect() to the peer's close after the last byte; veths and VXLAN on one kernel: no NIC, so VXLAN's cost is CPU only)"
