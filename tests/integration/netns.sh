#!/bin/bash
# The data plane across nodes on one machine (issue 17): three network
# namespaces, each a node with its own swarmd and its own dockerd (own data
# root, exec root, socket, pidfile, containerd; started with nsenter --net,
# not `ip netns exec`, which remounts /sys and loses the cgroup mounts
# dockerd needs), joined by veth pairs to a bridge in a fourth namespace.
# Only addresses inside these namespaces are used (192.168.231.0/24 for the
# nodes, the overlay's 10.231.0.0/24). Node 1 is the manager; every node
# runs tasks. It builds the busybox test image in each dockerd (FROM
# scratch, busybox-static), creates an overlay network and two services
# pinned to nodes 2 and 3, and checks with real traffic that a task on one
# node reaches a task on another by address (ping, and an HTTP fetch with
# busybox wget), that the VXLAN devices hold exactly the remote endpoints'
# entries (no all-zeros flood entry), that traffic leaving the overlay is
# NATed out through the node, and, when the nodes resolve service names
# (net/resolver.c), by name. Then (full run only) a task that moves to
# another node: its old entries leave the other nodes and traffic follows;
# an agent killed and restarted: its task keeps its traffic while it is
# down, and the restarted agent adopts the network (same container, same
# entries); and a node that dies: the others drop its entries and keep
# working. The routing mesh (also in --smoke): a port published in ingress
# mode on a service with its one task on node 2 answers the hub on nodes 1
# and 3, and a task on node 3 on its own node's address.
#
# It removes everything it made (swarmds, containers, dockerds, namespaces
# and what is in them, cgroups, mounts, state dirs) with a trap, also when
# it fails or is interrupted. Needs root.
#
#   tests/integration/netns.sh [BIN_DIR] [--smoke|--crypt]    (default build/)
#
# Then (also in --smoke) an encrypted overlay end to end
# (tests/integration/netns-crypt.sh: --opt encrypted, the underlay
# captured, the keys rotated, swarmds restarted, the Docker API).
#
# --smoke stops after the first cross-node fetch, the routing mesh's step
# and the encrypted overlay's (make test runs that). --crypt runs the
# encrypted overlay's steps alone, right after the nodes are ready, with
# the tunnel and VXLAN on ports other than the defaults (27288, 27289). CSWARM_NETNS_PREFIX (default
# csnt, at most 6 characters) prefixes every name it makes (namespaces,
# veths, the work dir), so that runs of different owners never meet.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SMOKE=""
CRYPT=""
[ "${2:-}" = --smoke ] && SMOKE=1
[ "${2:-}" = --crypt ] && CRYPT=1
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
IMAGE=cswarm-test:busybox
PREFIX=${CSWARM_NETNS_PREFIX:-csnt}
[[ "$PREFIX" =~ ^[a-z][a-z0-9]{0,5}$ ]] || { echo "netns: CSWARM_NETNS_PREFIX: 1 to 6 of [a-z0-9]" >&2; exit 2; }
TAG=$PREFIX$$ # namespaces and host-side names: unique per run
HUB=${TAG}h
NODES="1 2 3"
SPORT=4242
CE_CPORT=4788 # the encrypted tunnel's UDP port (--crypt: another)
CE_VPORT=4789 # the VXLAN port (--crypt: another)
declare -A PID DPID
WORK=""
FAILED=""

say() { printf 'netns: %s\n' "$*"; }
# fail, wait_for; its ctl is replaced below (one control socket here)
. "$(dirname "$0")/lib.sh"

ns() { echo "${TAG}n$1"; }
ip_of() { echo "192.168.231.$1"; }
dk() { # dk NODE ARGS...: docker on node NODE's dockerd
	local n=$1
	shift
	DOCKER_HOST="unix://$WORK/d$n/docker.sock" docker "$@"
}
ctl() { "$SWARMCTL" --socket "$WORK/n1.sock" "$@"; }

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ $rc -ne 0 ] && [ -n "$WORK" ] && [ -S "$WORK/n1.sock" ]; then
		echo "---- the cluster, as node 1 sees it" >&2
		ctl task ls >&2
		for n in $NODES; do
			echo "---- node $n: log tail" >&2
			tail -n 12 "$WORK/n$n.log" >&2
			echo "---- node $n: devices and entries" >&2
			ip -n "$(ns $n)" -br link 2>/dev/null | grep cs- >&2
			for vx in $(ip -n "$(ns $n)" -br link 2>/dev/null | awk '/^cs-vx-/{print $1}'); do
				bridge -n "$(ns $n)" fdb show dev "$vx" >&2
				ip -n "$(ns $n)" neigh show dev "$vx" >&2
			done
		done
	fi
	# debugging: CSWARM_NETNS_HOLD=SECONDS keeps a failed run that long
	if [ $rc -ne 0 ] && [ -n "${CSWARM_NETNS_HOLD:-}" ]; then
		say "holding $CSWARM_NETNS_HOLD s: namespaces $TAG*, work dir $WORK"
		sleep "$CSWARM_NETNS_HOLD"
	fi
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
		# what the dockerds left mounted (overlays, netns files)
		findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | while read -r m; do
			umount -l "$m" 2>/dev/null
		done
		rm -rf "$WORK"
	fi
	[ $rc -eq 0 ] && say "cleaned up" || say "cleaned up after a failure"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || fail "needs root (namespaces, dockerds)"
for t in ip bridge nsenter dockerd docker jq; do
	command -v $t >/dev/null || fail "$t is missing (make deps installs it)"
done
[ -x /bin/busybox ] || fail "busybox-static is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
# short: the dockerds' sockets live under it (unix socket paths < 108 bytes)
WORK=$(mktemp -d "/tmp/$PREFIX.XXXXXX")

say "swarmd --data-plane: on refuses a loopback address (exit 1), a bad mode is usage (2)"
rc=0
"$SWARMD" --state-dir "$WORK/refused" --listen-addr 127.0.0.1:1 --data-plane on >"$WORK/out" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q "data-plane on: underlay IP 127.0.0.1 is a loopback address" "$WORK/out" ||
	fail "--data-plane on with 127.0.0.1: exit $rc, $(cat "$WORK/out")"
rc=0
"$SWARMD" --state-dir "$WORK/refused" --listen-addr 127.0.0.1:1 --data-plane maybe >"$WORK/out" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "expected auto, on or off" "$WORK/out" || fail "--data-plane maybe: exit $rc"

say "namespaces: a hub bridge and three nodes on 192.168.231.0/24"
ip netns add "$HUB"
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" link set br0 up
ip -n "$HUB" link set lo up
# the world outside the overlay: an address on the hub's bridge
ip -n "$HUB" addr add 192.168.231.254/24 dev br0
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

say "a dockerd per node (own roots, socket, pidfile, containerd)"
for n in $NODES; do
	d=$WORK/d$n
	mkdir -p "$d/data" "$d/exec"
	# --containerd-namespace / --containerd-plugins-namespace: even a
	# containerd found running would not mix our containers with the
	# host's; the exec root gives this dockerd a containerd of its own
	nsenter --net="/run/netns/$(ns $n)" -- setsid dockerd \
		--data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
		-H "unix://$d/docker.sock" --cgroup-parent "/$(ns $n)" \
		--containerd-namespace "$(ns $n)" --containerd-plugins-namespace "$(ns $n)p" \
		>"$d/dockerd.log" 2>&1 </dev/null &
	DPID[$n]=$!
done
docker_answers() { [ -S "$WORK/d$1/docker.sock" ] && dk "$1" version >/dev/null 2>&1; }
for n in $NODES; do
	wait_for 60 "node $n's dockerd" docker_answers "$n" || true
	kill -0 "${DPID[$n]}" 2>/dev/null || { tail -n 20 "$WORK/d$n/dockerd.log" >&2; fail "dockerd $n died"; }
	if grep -q "/run/containerd/containerd.sock" "$WORK/d$n/dockerd.log"; then
		fail "dockerd $n uses the host's containerd"
	fi
done

say "the busybox test image in each dockerd (FROM scratch)"
ctx=$WORK/image
mkdir -p "$ctx"
cp "$ROOT/tests/integration/image/Dockerfile" "$ctx/Dockerfile"
cp /bin/busybox "$ctx/busybox"
for n in $NODES; do
	DOCKER_BUILDKIT=0 dk "$n" build -q -t "$IMAGE" "$ctx" >"$WORK/build$n.log" 2>&1 ||
		{ tail -n 20 "$WORK/build$n.log" >&2; fail "building $IMAGE on node $n"; }
done

start_swarmd() { # start_swarmd NODE [flags...]
	local n=$1
	shift
	nsenter --net="/run/netns/$(ns $n)" -- "$SWARMD" --state-dir "$WORK/n$n" \
		--listen-addr "$(ip_of $n):$SPORT" --hostname "csn$n" \
		--control-socket "$WORK/n$n.sock" --docker-socket "$WORK/d$n/docker.sock" \
		--data-plane on --log-level "${CSWARM_IT_LOG_LEVEL:-info}" "${NODE_FLAGS[@]}" "$@" \
		>>"$WORK/n$n.log" 2>&1 &
	PID[$n]=$!
	disown "${PID[$n]}" # no job notice when the trap kills it
}
NODE_FLAGS=()
# --crypt: the tunnel's and VXLAN's ports not the defaults (the other
# runs keep the defaults); node 1 serves the Docker API (netns-crypt.sh)
if [ -n "$CRYPT" ]; then
	CE_CPORT=27288
	CE_VPORT=27289
	NODE_FLAGS=(--crypt-port "$CE_CPORT" --vxlan-port "$CE_VPORT")
fi
say "swarmd: node 1 creates the cluster, nodes 2 and 3 join as workers"
start_swarmd 1 --docker-api-socket "$WORK/n1api.sock"
wait_for 30 "node 1's control socket" ctl cluster inspect
WTOKEN=$(ctl cluster join-token worker)
start_swarmd 2 --join-addr "$(ip_of 1):$SPORT" --join-token "$WTOKEN"
start_swarmd 3 --join-addr "$(ip_of 1):$SPORT" --join-token "$WTOKEN"
ready() { [ "$(ctl node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq 3 ]; }
wait_for 60 "three nodes ready" ready
for n in $NODES; do
	grep -q "no data plane" "$WORK/n$n.log" && fail "node $n has no data plane: $(grep "no data plane" "$WORK/n$n.log")"
done
if [ -n "$CRYPT" ]; then
	. "$(dirname "$0")/netns-crypt.sh"
	say "ok (crypt)"
	exit 0
fi

say "an overlay network; srv (httpd) on node 2, cli on node 3"
ctl network create --subnet 10.231.0.0/24 appnet >/dev/null
ctl service create --name srv --network appnet --constraint node.hostname==csn2 \
	--image "$IMAGE" -- sh -c 'mkdir -p /www && echo hello-from-srv >/www/index.html &&
		httpd -f -p 80 -h /www & trap "exit 0" TERM; wait' >/dev/null
ctl service create --name cli --network appnet --constraint node.hostname==csn3 \
	--image "$IMAGE" -- sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' >/dev/null
running() { [ "$(ctl task ls --service "$1" --format json | jq '[.[] | select(.state == "running")] | length')" -eq "$2" ]; }
wait_for 90 "srv running" running srv 1
wait_for 90 "cli running" running cli 1
task_addr() { # the overlay address (no prefix) of SERVICE's running task
	local t
	t=$(ctl task ls --service "$1" --format json | jq -r '[.[] | select(.state == "running")][0].id')
	ctl task inspect "$t" | jq -r '.networks[0].addr' | cut -d/ -f1
}
cid_of() { # cid_of NODE SERVICE: its container on NODE
	dk "$1" ps -q --filter "label=cswarm.service.name=$2" | head -n 1
}
SRV=$(task_addr srv)
CLI=$(task_addr cli)
say "srv is $SRV on node 2, cli is $CLI on node 3"
CLICID=$(cid_of 3 cli)
SRVCID=$(cid_of 2 srv)
[ -n "$CLICID" ] && [ -n "$SRVCID" ] || fail "containers: cli '$CLICID' srv '$SRVCID'"
[ "$(dk 3 exec "$CLICID" ip -4 -o addr show eth0 | awk '{print $4}')" = "$CLI/24" ] ||
	fail "cli's address: $(dk 3 exec "$CLICID" ip -4 -o addr show eth0)"
# (busybox 1.35's wget -T crashes here: timeout(1) bounds it instead)
fetch() { [ "$(dk 3 exec "$CLICID" timeout 3 wget -q -O - "http://$1/" 2>/dev/null)" = hello-from-srv ]; }
wait_for 30 "cli (node 3) fetching http://$SRV/ from srv (node 2)" fetch "$SRV"
say "cli on node 3 fetched srv's page on node 2 over VXLAN"
dk 2 exec "$SRVCID" ping -c 1 -W 2 "$CLI" >/dev/null || fail "srv (node 2) cannot ping cli ($CLI, node 3)"

# the routing mesh (SwarmKit's ingress): a port published in ingress mode
# answers on every node and reaches a task on any node through the ingress
# overlay (DNAT to the task, SNAT to the node's own ingress address)
say "the routing mesh: web (httpd) on node 2 publishes 26280; nodes 1 and 3 (no task of web) answer it"
ctl service create --name web --publish 26280:80 --constraint node.hostname==csn2 \
	--image "$IMAGE" -- sh -c 'mkdir -p /www && echo hello-from-web >/www/index.html &&
		httpd -f -p 80 -h /www & trap "exit 0" TERM; wait' >/dev/null
wait_for 90 "web running" running web 1
# Docker makes FORWARD's policy DROP where it turned forwarding on itself
# (hosts where nothing else had): so here, on every node, for the mesh's
# DNAT to pass only by its DOCKER-USER rule
for n in $NODES; do nsenter --net="/run/netns/$(ns $n)" -- iptables -P FORWARD DROP; done
mesh_dump() { # what node $1 has of the mesh, when a step fails
	nsenter --net="/run/netns/$(ns $1)" -- nft list table ip cswarm_ingress >&2 || true
	nsenter --net="/run/netns/$(ns $1)" -- nft list chain ip filter DOCKER-USER >&2 || true
	ip -n "$(ns $1)" -br addr >&2 || true
}
mesh_fetch() { # mesh_fetch NODE: the hub (outside the cluster) on NODE's port 26280
	[ "$(ip netns exec "$HUB" timeout 3 busybox wget -q -O - "http://$(ip_of "$1"):26280/" 2>/dev/null)" = hello-from-web ]
}
mesh_wait() { # mesh_wait NODE WHAT CMD...: as wait_for, with node NODE's rules shown on failure
	local node=$1 what=$2 end=$((SECONDS + 30))
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && { mesh_dump "$node"; fail "waited 30s for: $what"; }
		sleep 0.5
	done
}
for n in 1 3 2; do
	mesh_wait $n "the hub fetching http://$(ip_of $n):26280/ (node $n)" mesh_fetch $n
done
say "an ingress port on a node with no task answers: nodes 1 and 3 reached web on node 2"
# a task on node 3 through its own node's port (the node's address, from
# inside the overlay: DNAT on the way out of the task, hairpin through
# the ingress overlay)
node_port() { [ "$(dk 3 exec "$CLICID" timeout 3 wget -q -O - "http://$(ip_of 3):26280/" 2>/dev/null)" = hello-from-web ]; }
mesh_wait 3 "cli (node 3) fetching its own node's port 26280" node_port
# with FORWARD's policy DROP, this rule is what lets the mesh's DNAT through
say "node 1's FORWARD: $(nsenter --net="/run/netns/$(ns 1)" -- iptables -S FORWARD | head -n 1); its DOCKER-USER accepts the mesh"
du1=$(nsenter --net="/run/netns/$(ns 1)" -- nft list chain ip filter DOCKER-USER)
grep -q 'comment "cswarm-mesh cs-br-' <<<"$du1" ||
	{ mesh_dump 1; fail "node 1's DOCKER-USER has no rule for the mesh"; }
# the encrypted overlay end to end (issue 17, --opt encrypted)
ce_t0=$SECONDS
. "$(dirname "$0")/netns-crypt.sh"
say "the encrypted overlay's steps took $((SECONDS - ce_t0)) s"
[ -n "$SMOKE" ] && {
	say "ok (smoke)"
	exit 0
}

say "the kernel's entries: exactly the remote endpoints, nothing floods"
VNI=$(ip -n "$(ns 3)" -br link | awk '/^cs-vx-/{sub("cs-vx-","",$1); sub("@.*","",$1); print $1; exit}')
[ -n "$VNI" ] || fail "no cs-vx- device on node 3"
fdb3=$(bridge -n "$(ns 3)" fdb show dev "cs-vx-$VNI" | grep ' dst ' || true)
mac_of() { printf '02:42:%02x:%02x:%02x:%02x' $(tr . ' ' <<<"$1"); }
grep -q "^$(mac_of "$SRV") dst $(ip_of 2) " <<<"$fdb3" || fail "node 3's fdb lacks srv: $fdb3"
grep -q "^00:00:00:00:00:00" <<<"$fdb3" && fail "node 3 has a flood entry: $fdb3"
grep -q "$(mac_of "$CLI")" <<<"$fdb3" && fail "node 3 has an fdb entry for its own task: $fdb3"
ip -n "$(ns 3)" neigh show dev "cs-vx-$VNI" | has "^$SRV lladdr $(mac_of "$SRV") PERMANENT" ||
	fail "node 3's neighbours: $(ip -n "$(ns 3)" neigh show dev "cs-vx-$VNI")"
ip -n "$(ns 3)" -br addr show "cs-br-$VNI" | has "10.231.0.1/24" || fail "node 3's bridge has no gateway address"

# the hub has no route to the overlay: an answer proves the NAT
say "out of the overlay: NATed through the node (the hub sees the node's address)"
dk 3 exec "$CLICID" ping -c 1 -W 2 192.168.231.254 >/dev/null || fail "cli cannot reach 192.168.231.254 through its node"

say "by name (the nodes' resolver, net/resolver.c), when there is one"
byname() { # byname NAME: cli fetches http://NAME/
	[ "$(dk 3 exec "$CLICID" timeout 3 wget -q -O - "http://$1/" 2>/dev/null)" = hello-from-srv ]
}
# the name of the tasks needs the resolver alone: Docker's embedded DNS
# forwards it to the gateway, where the node's resolver answers
wait_for 30 "cli fetching http://tasks.srv/ by name" byname tasks.srv
say "cli fetched http://tasks.srv/ by name"
# the service's name is its VIP: the VIP is an address of the bridge on
# every node, and the node's rules (net/lb.c) DNAT it to a running task
wait_for 30 "cli fetching http://srv/ by name (its VIP)" byname srv
say "cli fetched http://srv/ through its VIP"

say "srv moves to node 1: node 3's entries follow, traffic too"
ctl service update --constraint node.hostname==csn1 srv >/dev/null
on_node1() { [ -n "$(cid_of 1 srv)" ] && running srv 1; }
wait_for 90 "srv running on node 1" on_node1
SRV1=$(task_addr srv)
wait_for 30 "cli fetching http://$SRV1/ from srv on node 1" fetch "$SRV1"
gone() { ! bridge -n "$(ns 3)" fdb show dev "cs-vx-$VNI" | has " dst $(ip_of 2) "; }
wait_for 30 "node 3's entries for node 2 gone (srv left it)" gone

say "node 3's swarmd killed: its task keeps reaching srv; restarted, it adopts the network"
entries3() { bridge -n "$(ns 3)" fdb show dev "cs-vx-$VNI" | grep ' dst ' | sort; }
before=$(entries3)
kill -9 "${PID[3]}"
while kill -0 "${PID[3]}" 2>/dev/null; do sleep 0.1; done
fetch "$SRV1" || fail "cli lost srv while node 3's swarmd was down"
start_swarmd 3
node3_ready() { [ "$(ctl node ls --format json | jq -r '.[] | select(.hostname == "csn3") | .status')" = ready ]; }
wait_for 60 "node 3 ready again" node3_ready
[ "$(cid_of 3 cli)" = "$CLICID" ] || fail "cli's container was replaced: $(cid_of 3 cli) vs $CLICID"
sleep 2
fetch "$SRV1" || fail "cli cannot reach srv after node 3's restart"
[ "$(entries3)" = "$before" ] || fail "node 3's entries changed across the restart: $(entries3) vs $before"

say "aux on node 2, then node 2 dies (swarmd killed, link down): node 3 drops its entries, keeps working"
ctl service create --name aux --network appnet --constraint node.hostname==csn2 \
	--image "$IMAGE" -- sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' >/dev/null
wait_for 90 "aux running" running aux 1
has2() { ! gone; }
wait_for 30 "node 3's entry for aux on node 2" has2
kill -9 "${PID[2]}"
ip -n "$(ns 2)" link set eth0 down
wait_for 120 "node 3's entries for dead node 2 gone" gone
fetch "$SRV1" || fail "cli lost srv after node 2 died"
say "ok"
