#!/bin/bash
# Real runs, replayed in the simulator (issue 19), against a real dockerd:
# three swarmd managers on loopback, each started with --record FILE (the
# joiners re-exec as managers: a second segment in the same file), a
# service of two real containers, then the leader killed (SIGKILL); a new
# leader is elected, the service keeps running. Each recording is replayed
# with `swarmsim replay`: no divergence (the same messages sent, log lines,
# timers, executor operations), and the timeline shows that a recorded
# survivor saw the leader change.
#
#   tests/integration/record.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
SWARMSIM=$BIN/swarmsim
WORK=$(mktemp -d /tmp/replay-it.XXXXXX)
IMAGE=cswarm-test:busybox
NODES="replay-m1 replay-m2 replay-m3"
declare -A PID PORT
STARTED_DOCKER=""

say() { printf 'record: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f")" >&2
			tail -n 12 "$f" >&2
		done
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${DOCKER_HOST:-}" ]; then
		ids=$(for n in $NODES; do
			docker ps -aq --filter "label=cswarm.node.id=$n" 2>/dev/null
		done)
		[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
	fi
	[ -n "$STARTED_DOCKER" ] && "$ROOT/tests/integration/docker-down.sh" "$WORK/docker" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# fail, wait_for, port_free, ctl, start_node
. "$(dirname "$0")/lib.sh"

# ports of this test: 25800..25999 (RECORD_PORT_BASE moves them)
base=${RECORD_PORT_BASE:-25810}
i=0
for n in $NODES; do
	p=$((base + i))
	while ! port_free "$p"; do p=$((p + 7)); done
	PORT[$n]=$p
	i=$((i + 1))
done

command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] && [ -x "$SWARMSIM" ] ||
	fail "build $SWARMD, $SWARMCTL and $SWARMSIM first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
docker image inspect "$IMAGE" >/dev/null || fail "test image $IMAGE missing"

leader_of() { # leader_of NODE: the hostname NODE's cluster says leads
	ctl "$1" node ls --format json | jq -r '.[] | select(.leader == true) | .hostname'
}
managers_ready() {
	[ "$(ctl "$1" node ls --format json |
		jq '[.[] | select(.role == "manager" and .status == "ready")] | length')" -eq "$2" ]
}
running() {
	[ "$(ctl "$1" task ls --service "$2" --format json |
		jq '[.[] | select(.state == "running")] | length')" -eq "$3" ]
}
new_leader() { # new_leader NODE OLD: NODE's cluster has a leader, not OLD
	local l
	l=$(leader_of "$1") && [ -n "$l" ] && [ "$l" != "$2" ]
}

say "three recorded managers on ports ${PORT[replay-m1]}, ${PORT[replay-m2]}, ${PORT[replay-m3]}"
start_node replay-m1 --record "$WORK/replay-m1.rec"
wait_for 30 "replay-m1 leads" sh -c "'$SWARMCTL' --socket '$WORK/replay-m1.sock' node ls"
MTOKEN=$(ctl replay-m1 cluster join-token manager)
for n in replay-m2 replay-m3; do
	start_node $n --join-addr "127.0.0.1:${PORT[replay-m1]}" --join-token "$MTOKEN" \
		--record "$WORK/$n.rec"
	wait_for 60 "$n a manager" managers_ready replay-m1 $(( ${n#replay-m} ))
done
# a manager record says manager once its daemon runs as one, before it is a
# Raft voter: killing the leader before both are voters leaves no quorum
voters_three() { [ "$(grep -c 'membership change" step=2 .*status=ok' "$WORK/replay-m1.log")" -ge 2 ]; }
wait_for 60 "replay-m2 and replay-m3 voters" voters_three
ctl replay-m1 service create --name replay-web --replicas 2 --image "$IMAGE" \
	-- sleep 100000 >/dev/null
wait_for 60 "replay-web running 2" running replay-m1 replay-web 2

OLD=$(leader_of replay-m2)
[ -n "$OLD" ] || fail "no leader"
say "killing the leader $OLD (SIGKILL)"
kill -9 "${PID[$OLD]}"
wait "${PID[$OLD]}" 2>/dev/null || true
unset "PID[$OLD]"
SURV=""
for n in $NODES; do [ "$n" != "$OLD" ] && SURV="$SURV $n"; done
first=$(echo $SURV | cut -d' ' -f1)
wait_for 60 "a new leader after $OLD" new_leader "$first" "$OLD"
NEW=$(leader_of "$first")
say "new leader: $NEW"
wait_for 60 "replay-web running 2 again" running "$first" replay-web 2
sleep 2
for n in $SURV; do
	kill -TERM "${PID[$n]}"
	wait "${PID[$n]}" 2>/dev/null || true
	unset "PID[$n]"
done

say "replaying"
for n in $NODES; do
	f="$WORK/$n.rec"
	[ -s "$f" ] || fail "$n recorded nothing"
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f is not 0600"
	if ! "$SWARMSIM" replay "$f" >"$WORK/$n.replay" 2>&1; then
		cat "$WORK/$n.replay" >&2
		fail "$n's recording diverged"
	fi
	grep -q "result=ok" "$WORK/$n.replay" || fail "$n: no result line"
	cat "$WORK/$n.replay"
done
# every survivor's recording has two segments (joined as a worker, then
# re-executed as a manager) and saw two distinct leaders
for n in $SURV; do
	grep -q "segments=2" "$WORK/$n.replay" || fail "$n: expected 2 segments"
	"$SWARMSIM" replay "$WORK/$n.rec" --timeline >"$WORK/$n.tl"
	leaders=$(grep '^timeline' "$WORK/$n.tl" | sed -n 's/.* leader=\([0-9a-f]*\)$/\1/p' |
		grep -v '^0000000000000000$' | sort -u | wc -l)
	[ "$leaders" -ge 2 ] || { cat "$WORK/$n.tl" >&2; fail "$n saw $leaders leader(s), not a change"; }
done
# the whole cluster's run, one timeline and a report page
"$SWARMSIM" replay "$WORK"/replay-m*.rec --timeline --report "$WORK/report" >"$WORK/all.tl"
grep '^timeline' "$WORK/all.tl"
[ -f "$WORK/report/index.html" ] || fail "no report"
say "PASS: three recordings through a leader change replay with no divergence"
