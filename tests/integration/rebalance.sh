#!/bin/bash
# Rebalancing with real daemons and real containers (issue 20): a manager
# and three workers as processes on 127.0.0.1 against a real dockerd. Six
# replicas of a service that opted in (--rebalance, K = 1) and three of one
# that did not spread 2/2/2 and 1/1/1; a worker's machine dies (its swarmd
# killed, its containers removed) and the survivors take its tasks; when it
# comes back, the opted-in service gets its even spread back, one task at a
# time (never fewer than 5 running, sampled), and the other service is left
# where it runs. The manager's metrics show the moves and the imbalance.
# Modelled on job.sh; starts what it needs (dockerd, the test image) and
# stops what it started; its ports are 25400..25599, its names start with
# "rebalance".
#
#   tests/integration/rebalance.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/rebalance-it.XXXXXX)
IMAGE=cswarm-test:busybox
NODES="rebalance-m1 rebalance-w1 rebalance-w2 rebalance-w3"
M=rebalance-m1
declare -A PID PORT
STARTED_DOCKER=""

say() { printf 'rebalance: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		if [ -n "${PID[$M]:-}" ]; then
			echo "---- the cluster, as $M sees it" >&2
			ctl $M node ls >&2
			ctl $M service ls >&2
			ctl $M task ls >&2
		fi
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f")" >&2
			tail -n 15 "$f" >&2
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

# fail, wait_for, port_free, pick_port, ctl, start_node
. "$(dirname "$0")/lib.sh"

# own_port VAR: sets VAR to a free port of this test's range (25400..25599;
# not in a subshell, so that the next call moves on)
NEXT_PORT=25400
own_port() {
	while [ $NEXT_PORT -lt 25600 ]; do
		NEXT_PORT=$((NEXT_PORT + 1))
		if port_free $((NEXT_PORT - 1)); then
			printf -v "$1" '%s' $((NEXT_PORT - 1))
			return
		fi
	done
	fail "no free port in 25400..25599"
}

# on SERVICE NODE: the service's tasks the store has running on NODE
on() {
	ctl $M task ls --service "$1" --format json |
		jq --arg n "$2" '[.[] | select(.node == $n and .state == "running" and .desired == "running")] | length'
}

# up SERVICE: the service's tasks the store has running
up() {
	ctl $M task ls --service "$1" --format json |
		jq '[.[] | select(.state == "running" and .desired == "running")] | length'
}

spread_is() { # spread_is SERVICE A B C: running on w1, w2, w3
	[ "$(on "$1" rebalance-w1)" -eq "$2" ] && [ "$(on "$1" rebalance-w2)" -eq "$3" ] &&
		[ "$(on "$1" rebalance-w3)" -eq "$4" ]
}

metric() { # metric NAME[{LABELS}]: its value in the manager's scrape
	curl -sf "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# ---------------------------------------------------------------- dockerd
command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
command -v curl >/dev/null || fail "curl is missing"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
docker image inspect "$IMAGE" >/dev/null || fail "test image $IMAGE missing"

# ---------------------------------------------------------------- cluster
say "a manager and three workers"
for n in $NODES; do
	own_port p
	PORT[$n]=$p
done
own_port MPORT
start_node $M --metrics-addr "127.0.0.1:$MPORT"
wait_for 30 "$M's control socket" ctl $M cluster inspect
WTOKEN=$(ctl $M cluster join-token worker)
for w in rebalance-w1 rebalance-w2 rebalance-w3; do
	start_node $w --join-addr "127.0.0.1:${PORT[$M]}" --join-token "$WTOKEN"
done
nodes_ready() {
	[ "$(ctl $M node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq 4 ]
}
wait_for 60 "4 nodes ready" nodes_ready

say "refused: --rebalance on a global service"
ctl $M service create --name rebalance-bad --mode global --rebalance \
	--image "$IMAGE" -- sleep 3600 >"$WORK/out" 2>&1 && fail "a global service with --rebalance was accepted"
grep -q "rebalance" "$WORK/out" || fail "global with --rebalance: $(cat "$WORK/out")"

say "web (6, --rebalance, K = 1) and api (3, not opted in) on the workers"
ctl $M service create --name rebalance-web --replicas 6 --constraint node.role==worker \
	--rebalance --rebalance-parallelism 1 --update-delay 1s \
	--image "$IMAGE" -- sleep 3600 >/dev/null
ctl $M service create --name rebalance-api --replicas 3 --constraint node.role==worker \
	--image "$IMAGE" -- sleep 3600 >/dev/null
[ "$(ctl $M service inspect rebalance-web | jq -r .spec.rebalance)" = true ] ||
	fail "inspect: $(ctl $M service inspect rebalance-web | jq -c .spec)"
wait_for 90 "web 2/2/2" spread_is rebalance-web 2 2 2
wait_for 30 "api 1/1/1" spread_is rebalance-api 1 1 1

# ---------------------------------------------------------------- a worker dies
say "rebalance-w3's machine dies (swarmd killed, its containers gone)"
kill -9 "${PID[rebalance-w3]}"
wait "${PID[rebalance-w3]}" 2>/dev/null || true
unset 'PID[rebalance-w3]'
ids=$(docker ps -aq --filter "label=cswarm.node.id=rebalance-w3")
[ -n "$ids" ] && docker rm -f $ids >/dev/null
wait_for 90 "web 3/3 on the survivors" spread_is rebalance-web 3 3 0
api_survivors() { [ $(($(on rebalance-api rebalance-w1) + $(on rebalance-api rebalance-w2))) -eq 3 ]; }
wait_for 30 "api 3 on the survivors" api_survivors
API1=$(on rebalance-api rebalance-w1)
API2=$(on rebalance-api rebalance-w2)
moves0=$(metric cswarm_rebalance_moves_total)
moves0=${moves0:-0}

# ---------------------------------------------------------------- it comes back
say "rebalance-w3 comes back; web spreads again, one at a time"
start_node rebalance-w3 --join-addr "127.0.0.1:${PORT[$M]}" --join-token "$WTOKEN"
end=$((SECONDS + 120))
least=6
until spread_is rebalance-web 2 2 2; do
	[ $SECONDS -ge $end ] && fail "waited 120s for web 2/2/2 (w1 $(on rebalance-web rebalance-w1), w2 $(on rebalance-web rebalance-w2), w3 $(on rebalance-web rebalance-w3))"
	u=$(up rebalance-web)
	[ "$u" -lt "$least" ] && least=$u
	[ "$u" -ge 5 ] || fail "only $u of web's 6 running during the rebalance (K = 1)"
	sleep 0.3
done
say "web 2/2/2 again (never fewer than $least running)"

say "api, not opted in, stays where it runs"
sleep 5
[ "$(on rebalance-api rebalance-w3)" -eq 0 ] || fail "api was moved to rebalance-w3"
[ "$(on rebalance-api rebalance-w1)" -eq "$API1" ] || fail "api on w1: $(on rebalance-api rebalance-w1), was $API1"
[ "$(on rebalance-api rebalance-w2)" -eq "$API2" ] || fail "api on w2: $(on rebalance-api rebalance-w2), was $API2"
spread_is rebalance-web 2 2 2 || fail "web moved again once even"

say "metrics: the moves and the imbalance"
moves=$(metric cswarm_rebalance_moves_total)
[ -n "$moves" ] || fail "no cswarm_rebalance_moves_total in the scrape"
[ "${moves%.*}" -ge $((${moves0%.*} + 2)) ] || fail "cswarm_rebalance_moves_total $moves (was $moves0)"
imb=$(metric 'cswarm_service_spread_imbalance{service="rebalance-web"}')
[ "${imb%.*}" = 0 ] || fail "cswarm_service_spread_imbalance of web: '$imb'"
before=$(metric 'cswarm_rebalance_imbalance_before{service="rebalance-web"}')
[ "${before%.*}" -eq 3 ] || fail "cswarm_rebalance_imbalance_before of web: '$before'"
say "moves_total $moves, imbalance before $before, now $imb"

say "--no-rebalance turns it off"
ctl $M service update rebalance-web --no-rebalance >/dev/null
[ "$(ctl $M service inspect rebalance-web | jq -r '.spec.rebalance // false')" = false ] ||
	fail "still rebalanced after --no-rebalance"

for s in rebalance-web rebalance-api; do ctl $M service rm "$s" >/dev/null; done
say "PASS"
