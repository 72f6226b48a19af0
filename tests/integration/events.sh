#!/bin/bash
# The event stream with real daemons (issue 20): three swarmd managers on
# loopback (no worker, no container: services of 0 replicas, so no Docker
# work, though swarmd is given the test dockerd as usual):
#  1. `swarmctl events --json` followed on a follower (ev2) sees a node
#     update (ev3 drained), then a service create, update and remove, in
#     commit order (indexes increasing), each with its attributes;
#  2. filters: type=service and name=web on another follower (ev3);
#  3. the leader killed, ev2 still has them all (`--since 1`): each manager
#     keeps the events of what it applied, no leader needed;
#  4. `docker events` through ev2's Docker API socket, if the docker CLI is
#     installed: the same service events as Docker's swarm events;
#  5. --since 0 and a bad filter are refused as usage errors (exit 2), an
#     unknown filter key by the manager (exit 1).
#
#   tests/integration/events.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/events-it.XXXXXX)
declare -A PID PORT
STARTED_DOCKER=""
FOLLOWERS=()

say() { printf 'events: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		for f in "$WORK"/*.out "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f")" >&2
			tail -n 15 "$f" >&2
		done
	fi
	for p in "${FOLLOWERS[@]}"; do kill "$p" 2>/dev/null; done
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "$STARTED_DOCKER" ] && "$ROOT/tests/integration/docker-down.sh" "$WORK/docker" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# fail, wait_for, port_free, pick_port, ctl, start_node
. "$(dirname "$0")/lib.sh"

# this test's ports: 25000-25199 (the events helper's range)
pick_port() {
	local p
	while :; do
		p=$((25000 + RANDOM % 200))
		port_free "$p" && { echo "$p"; return; }
	done
}

command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1

ready_is() { [ "$(ctl "$1" node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq "$2" ]; }

# ---------------------------------------------------------------- a cluster
say "three managers"
start_node ev1
wait_for 30 "ev1's control socket" ctl ev1 cluster inspect
MTOKEN=$(ctl ev1 cluster join-token manager)
for n in ev2 ev3; do start_node $n --join-addr "127.0.0.1:${PORT[ev1]}" --join-token "$MTOKEN"; done
wait_for 60 "3 nodes ready" ready_is ev1 3
voters_three() { [ "$(grep -c 'membership change" step=2 .*status=ok' "$WORK/ev1.log")" -ge 2 ]; }
wait_for 60 "ev2 and ev3 voters" voters_three
# ev2 and ev3 have applied the joins: their streams hold them
# (a stream runs until interrupted: read for 2 s into a file)
read_events() { # read_events NODE FILE ARGS...
	local n=$1 f=$2
	shift 2
	timeout 2 "$SWARMCTL" --socket "$WORK/$n.sock" events "$@" >"$f" 2>&1 || true
}
has_ev3_create() {
	read_events ev2 "$WORK/first.out" --since 1 --json
	jq -se 'any(.[]; .type == "node" and .action == "create" and .name == "ev3")' "$WORK/first.out"
}
wait_for 30 "ev2's stream holds ev3's node create" has_ev3_create

# ---------------------------------------------------------------- follow
say "swarmctl events followed on the followers ev2 (all) and ev3 (filtered)"
"$SWARMCTL" --socket "$WORK/ev2.sock" events --json >"$WORK/ev2.out" 2>&1 &
FOLLOWERS+=($!)
"$SWARMCTL" --socket "$WORK/ev3.sock" events --filter type=service --filter name=web \
	--filter name=other >"$WORK/ev3.out" 2>&1 &
FOLLOWERS+=($!)
sleep 1
ctl ev1 node update --availability drain ev3 >/dev/null
ctl ev1 service create --name web --replicas 0 --image cswarm-test:busybox >/dev/null
ctl ev1 service update web --image cswarm-test:busybox2 >/dev/null
ctl ev1 service create --name db --replicas 0 --image cswarm-test:busybox >/dev/null
ctl ev1 service rm web >/dev/null
# (jq 1.6's -e looks at the last input's output: slurp, then any)
web_removed() { jq -se 'any(.[]; .type == "service" and .action == "remove" and .name == "web")' "$WORK/ev2.out"; }
wait_for 30 "ev2's follower sees web removed" web_removed

say "in commit order, with their attributes"
# the lines of interest, as "type action name", in the order printed
SEEN=$(jq -r 'select((.type == "service") or (.type == "node" and .name == "ev3" and .action == "update" and .attributes["availability.new"] == "drain")) | "\(.type) \(.action) \(.name)"' "$WORK/ev2.out" | tr '\n' ',')
[ "$SEEN" = "node update ev3,service create web,service update web,service create db,service remove web," ] ||
	fail "ev2 saw: $SEEN"
jq -se '[.[].index] as $i | $i == ($i | sort)' "$WORK/ev2.out" >/dev/null || fail "indexes not in commit order"
jq -se 'any(.[]; .type == "service" and .action == "update" and .attributes["image.old"] == "cswarm-test:busybox" and .attributes["image.new"] == "cswarm-test:busybox2")' \
	"$WORK/ev2.out" >/dev/null || fail "the update's image attributes"

say "filters on ev3: type=service and name=web|other"
ev3_three() { [ "$(grep -c ' service ' "$WORK/ev3.out")" -eq 3 ]; }
wait_for 10 "ev3's filtered follower: 3 lines" ev3_three
grep -q ' service create .* (name=web, index=' "$WORK/ev3.out" || fail "ev3: $(cat "$WORK/ev3.out")"
! grep -q 'name=db' "$WORK/ev3.out" || fail "ev3 shows db: $(cat "$WORK/ev3.out")"
! grep -q ' node ' "$WORK/ev3.out" || fail "ev3 shows a node: $(cat "$WORK/ev3.out")"

# ---------------------------------------------------------------- docker
if command -v docker >/dev/null; then
	say "docker events through ev2's Docker API socket"
	timeout 5 docker -H "unix://$WORK/ev2/docker.sock" events --since 0 \
		--filter scope=swarm --filter type=service \
		--format '{{.Type}} {{.Action}} {{index .Actor.Attributes "name"}} {{.Scope}}' \
		>"$WORK/docker.out" 2>&1 || true
	DSEEN=$(tr '\n' ',' <"$WORK/docker.out")
	[ "$DSEEN" = "service create web swarm,service update web swarm,service create db swarm,service remove web swarm," ] ||
		fail "docker events: $DSEEN"
else
	say "(no docker CLI: the Docker API step is skipped)"
fi

# ---------------------------------------------------------------- no leader needed
say "the leader killed: ev2 still has every event (each manager keeps its own)"
kill -9 "${PID[ev1]}"
wait "${PID[ev1]}" 2>/dev/null || true
read_events ev2 "$WORK/since.out" --since 1 --filter type=service
[ "$(grep -c ' service ' "$WORK/since.out")" -eq 4 ] || fail "ev2 --since 1: $(cat "$WORK/since.out")"

say "usage errors"
set +e
"$SWARMCTL" --socket "$WORK/ev2.sock" events --since 0 >"$WORK/err.out" 2>&1
rc=$?
"$SWARMCTL" --socket "$WORK/ev2.sock" events --filter colour=red >>"$WORK/err.out" 2>&1
rc2=$?
set -e
[ $rc -eq 2 ] || fail "--since 0: exit $rc"
[ $rc2 -eq 1 ] && grep -q "unknown key" "$WORK/err.out" || fail "a bad filter: exit $rc2: $(cat "$WORK/err.out")"
"$SWARMCTL" events --help | has "fell behind\|behind" || fail "events --help"
say "PASS"
