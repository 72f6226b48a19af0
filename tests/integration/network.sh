#!/bin/bash
# Networks and published ports with a real daemon (issue 15): one manager
# (which runs tasks) against a real dockerd, its cluster created with
# --default-addr-pool 10.128.0.0/16 (ingress and networks without a subnet
# take its /24s). network create/ls/inspect/rm round-trips; a subnet
# overlap and a second ingress use of a port are refused; a service gets
# its VIPs, and its tasks, which need the overlay data plane (issue 17),
# are REJECTED with the reason rather than run without their network; a
# service publishing a host-mode port answers through the node's port (a
# Docker port binding: busybox httpd, fetched from the host); a second
# service asking for that host port on the one node stays pending with the
# reason; a network is not removed while used, and is once its service is
# gone.
#
#   tests/integration/network.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-net.XXXXXX)
IMAGE=cswarm-test:busybox
NODES="netm1"
declare -A PID PORT
STARTED_DOCKER=""
# a task that stops at once when told to
RUN=(sh -c 'trap "exit 0" TERM; while :; do sleep 1; done')

say() { printf 'network: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ] && [ -n "${PID[netm1]:-}" ]; then
		echo "---- the cluster, as netm1 sees it" >&2
		ctl netm1 service ls >&2
		ctl netm1 task ls >&2
		ctl netm1 network ls >&2
		tail -n 15 "$WORK/netm1.log" >&2
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${DOCKER_HOST:-}" ]; then
		ids=$(docker ps -aq --filter "label=cswarm.node.id=netm1" 2>/dev/null)
		[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
	fi
	[ -n "$STARTED_DOCKER" ] && "$ROOT/tests/integration/docker-down.sh" "$WORK/docker" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

. "$(dirname "$0")/lib.sh"

ctl() {
	local n=$1
	shift
	"$SWARMCTL" --socket "$WORK/$n.sock" "$@"
}

command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
docker image inspect "$IMAGE" >/dev/null || fail "test image $IMAGE missing"

PORT[netm1]=$(pick_port)
"$SWARMD" --state-dir "$WORK/netm1" --listen-addr "127.0.0.1:${PORT[netm1]}" \
	--hostname netm1 --control-socket "$WORK/netm1.sock" \
	--docker-socket "$DOCKER_SOCK" --log-level "${CSWARM_IT_LOG_LEVEL:-info}" \
	--default-addr-pool 10.128.0.0/16 --default-addr-pool-mask-len 24 \
	>>"$WORK/netm1.log" 2>&1 &
PID[netm1]=$!
wait_for 30 "netm1's control socket" ctl netm1 cluster inspect

say "the ingress network comes with the cluster; create, ls, inspect"
net_field() { # net_field NAME FIELD
	ctl netm1 network ls --format json | jq -r --arg n "$1" --arg f "$2" \
		'.[] | select(.name == $n) | .[$f]'
}
[ "$(net_field ingress subnet)" = 10.128.0.0/24 ] || fail "ingress: $(ctl netm1 network ls)"
ctl netm1 network create front >/dev/null
ctl netm1 network create --subnet 10.9.0.0/24 back >/dev/null
[ "$(net_field front subnet)" = 10.128.1.0/24 ] || fail "front: $(net_field front subnet)"
[ "$(ctl netm1 network inspect back | jq -r .gateway)" = 10.9.0.1 ] || fail "back's gateway"
ctl netm1 network create --subnet 10.9.0.0/16 bad >"$WORK/out" 2>&1 && fail "an overlapping subnet was accepted"
grep -q "overlaps network back" "$WORK/out" || fail "overlap: $(cat "$WORK/out")"
ctl netm1 network create front >"$WORK/out" 2>&1 && fail "a second network named front was accepted"

say "a service on front publishing 8080: its VIPs; its tasks rejected (no data plane)"
ctl netm1 service create --name web --replicas 2 --network front -p 8080:80 \
	--image "$IMAGE" -- "${RUN[@]}" >/dev/null
running() { [ "$(ctl netm1 task ls --service "$1" --format json | jq '[.[] | select(.state == "running")] | length')" -eq "$2" ]; }
rejected() {
	ctl netm1 task ls --service web --format json |
		jq -e '[.[] | select(.state == "rejected" and (.message | test("cannot attach to network [0-9a-f]+ \\(10\\.128\\.[01]\\.[0-9]+/24\\): no overlay data plane on this node")))] | length >= 2'
}
wait_for 60 "web's tasks rejected: no overlay data plane" rejected
[ -z "$(docker ps -aq --filter "label=cswarm.service.name=web")" ] || fail "a container of web was made"
vips=$(ctl netm1 service inspect web | jq -r '[.virtual_ips[].addr] | sort | join(" ")')
[ "$vips" = "10.128.0.2/24 10.128.1.2/24" ] || fail "web's VIPs: $vips"
[ "$(ctl netm1 service inspect web | jq '.ports[0].published')" -eq 8080 ] || fail "web's port"
ctl netm1 service create --name other -p 8080:81 --image "$IMAGE" -- "${RUN[@]}" >"$WORK/out" 2>&1 &&
	fail "a second service on ingress port 8080 was accepted"
grep -q "port 8080/tcp is in use by service web" "$WORK/out" || fail "conflict: $(cat "$WORK/out")"

HP=$(pick_port)
say "host-mode port $HP: answers through the node; a second service waits"
ctl netm1 service create --name h1 --publish published=$HP,target=80,mode=host \
	--image "$IMAGE" -- sh -c 'mkdir -p /www && echo hello-from-h1 >/www/index.html &&
		httpd -f -p 80 -h /www & trap "exit 0" TERM; wait' >/dev/null
wait_for 60 "h1 running" running h1 1
tid=$(ctl netm1 task ls --service h1 --format json | jq -r '.[] | select(.state == "running") | .id')
[ "$(ctl netm1 task inspect "$tid" | jq -c '[.ports[] | .published, .mode]')" = "[$HP,\"host\"]" ] ||
	fail "h1's task ports: $(ctl netm1 task inspect "$tid" | jq -c .ports)"
cid=$(docker ps -q --filter "label=cswarm.service.name=h1")
[ -n "$cid" ] || fail "no container of h1"
binding=$(docker inspect "$cid" | jq -r '.[0].HostConfig.PortBindings["80/tcp"][0].HostPort')
[ "$binding" = "$HP" ] || fail "h1's container binds 80/tcp on '$binding', not $HP"
if [ -n "$STARTED_DOCKER" ]; then
	say "(a dockerd of our own has no bridge: the port's answer is not checked)"
else
	fetch() { wget -q -T 2 -O - "http://127.0.0.1:$HP/" 2>/dev/null || curl -s -m 2 "http://127.0.0.1:$HP/"; }
	answers() { [ "$(fetch)" = hello-from-h1 ]; }
	wait_for 30 "h1 answering on 127.0.0.1:$HP" answers
fi
ctl netm1 service create --name h2 --publish published=$HP,target=91,mode=host \
	--image "$IMAGE" -- "${RUN[@]}" >/dev/null
pending_reason() {
	ctl netm1 task ls --service h2 --format json |
		jq -e '[.[] | select(.state == "pending" and (.message | test("host port in use")))] | length == 1'
}
wait_for 30 "h2 pending: host port in use" pending_reason

say "network rm: refused while used, done once the service is gone"
ctl netm1 network rm front >"$WORK/out" 2>&1 && fail "front removed while web uses it"
grep -q "in use" "$WORK/out" || fail "rm refused: $(cat "$WORK/out")"
ctl netm1 service rm web >/dev/null
wait_for 60 "front removable" ctl netm1 network rm front
ctl netm1 network rm back >/dev/null
[ -z "$(net_field front subnet)" ] || fail "front still listed"
say "ok"
