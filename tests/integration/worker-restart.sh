#!/bin/bash
# A worker's daemon killed while its node's tasks are replaced elsewhere,
# then started again behind a Docker whose container list answers 1.5 s late
# (tests/integration/slow-docker.py), so that its assignments always arrive
# before it knows what runs (issue 12, items 8 and 9): afterwards no slot
# runs twice and no container is left whose task is not in the store, the
# exited container of a task removed meanwhile included. Then a service's
# environment in its container (item 5). One manager and two workers of its
# own (hostnames wr-*); cluster.sh runs it after its own cluster.
#
#   tests/integration/worker-restart.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-wr.XXXXXX)
IMAGE=cswarm-test:busybox
NODES="wr-m1 wr-w1 wr-w2"
declare -A PID PORT
STARTED_DOCKER=""
PROXY=""

say() { printf 'worker-restart: %s\n' "$*"; }

ours() { # every cswarm container of this test's nodes: ID TASK SERVICE SLOT NODE STATE
	local n
	for n in $NODES; do
		docker ps -aq --filter "label=cswarm.node.id=$n"
	done | xargs -r docker inspect -f \
		'{{.Id}} {{index .Config.Labels "cswarm.task.id"}} {{index .Config.Labels "cswarm.service.name"}} {{index .Config.Labels "cswarm.slot"}} {{index .Config.Labels "cswarm.node.id"}} {{.State.Status}}'
}

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		echo "---- containers" >&2
		ours >&2
		[ -n "${PID[wr-m1]:-}" ] && ctl wr-m1 task ls >&2
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f")" >&2
			tail -n 20 "$f" >&2
		done
		rm -rf "$ROOT/build/integration-logs/worker-restart"
		mkdir -p "$ROOT/build/integration-logs/worker-restart" &&
			cp "$WORK"/*.log "$ROOT/build/integration-logs/worker-restart/" 2>/dev/null
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	[ -n "$PROXY" ] && kill "$PROXY" 2>/dev/null
	wait 2>/dev/null
	ids=$(ours | cut -d' ' -f1)
	[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
	[ -n "$STARTED_DOCKER" ] && "$ROOT/tests/integration/docker-down.sh" "$WORK/docker" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# fail, wait_for, port_free, pick_port, ctl, start_node
. "$(dirname "$0")/lib.sh"

start_node() { # start_node NAME DOCKER_SOCKET [swarmd flags...]
	local n=$1 sock=$2
	shift 2
	[ -n "${PORT[$n]:-}" ] || PORT[$n]=$(pick_port)
	"$SWARMD" --state-dir "$WORK/$n" --listen-addr "127.0.0.1:${PORT[$n]}" \
		--hostname "$n" --control-socket "$WORK/$n.sock" \
		--docker-socket "$sock" --log-level "${CSWARM_IT_LOG_LEVEL:-info}" "$@" \
		>>"$WORK/$n.log" 2>&1 &
	PID[$n]=$!
}

# ---------------------------------------------------------------- dockerd
command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
command -v python3 >/dev/null || fail "python3 is missing"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
python3 "$ROOT/tests/integration/slow-docker.py" "$WORK/slow-docker.sock" "$DOCKER_SOCK" 1.5 \
	>>"$WORK/slow-docker.log" 2>&1 &
PROXY=$!
wait_for 10 "the slow relay's socket" test -S "$WORK/slow-docker.sock"

# ---------------------------------------------------------------- cluster
say "a manager and two workers, wr-w2 behind the slow relay"
start_node wr-m1 "$DOCKER_SOCK"
wait_for 30 "wr-m1's control socket" ctl wr-m1 cluster inspect
WTOKEN=$(ctl wr-m1 cluster join-token worker)
start_node wr-w1 "$DOCKER_SOCK" --join-addr "127.0.0.1:${PORT[wr-m1]}" --join-token "$WTOKEN"
start_node wr-w2 "$WORK/slow-docker.sock" --join-addr "127.0.0.1:${PORT[wr-m1]}" --join-token "$WTOKEN"
ready() { # ready N: N nodes ready
	[ "$(ctl wr-m1 node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq "$1" ]
}
wait_for 60 "3 nodes ready" ready 3
# everything on wr-w2 first
ctl wr-m1 node update --availability drain wr-m1 >/dev/null
ctl wr-m1 node update --availability drain wr-w1 >/dev/null

in_store() { # the task ids the store has, one a line
	ctl wr-m1 task ls --format json | jq -r '.[].id'
}
state_of() { # state_of SERVICE: the states of its tasks
	ctl wr-m1 task ls --format json | jq -r --arg s "$1" '.[] | select(.service == $s) | .state'
}
running_of() { # running_of SERVICE [NODE]: how many of its containers run
	ours | awk -v s="$1" -v n="${2:-}" '$3 == s && $6 == "running" && (n == "" || $5 == n)' | wc -l
}
count_is() { # count_is N SERVICE [NODE]
	[ "$(running_of "$2" "${3:-}")" -eq "$1" ]
}

say "a task that ends, and three that run, all on wr-w2"
ctl wr-m1 service create --name wr-oneshot --replicas 1 --image "$IMAGE" \
	--restart-condition none -- true >/dev/null
ctl wr-m1 service create --name wr-race --replicas 3 --image "$IMAGE" -- sleep 3600 >/dev/null
oneshot_complete() { [ "$(state_of wr-oneshot)" = complete ]; }
wait_for 60 "wr-oneshot complete" oneshot_complete
wait_for 60 "3 wr-race containers on wr-w2" count_is 3 wr-race wr-w2

say "killing wr-w2's daemon: its tasks replaced on wr-w1, wr-oneshot removed"
ctl wr-m1 node update --availability active wr-w1 >/dev/null
kill -9 "${PID[wr-w2]}"
wait "${PID[wr-w2]}" 2>/dev/null || true
unset "PID[wr-w2]"
ctl wr-m1 service rm wr-oneshot >/dev/null
wait_for 90 "3 wr-race containers on wr-w1" count_is 3 wr-race wr-w1
oneshot_gone() { ! ctl wr-m1 task ls --format json | jq -e '.[] | select(.service == "wr-oneshot")'; }
wait_for 60 "wr-oneshot's task gone from the store" oneshot_gone
# the old containers still run, or lie exited, on wr-w2's Docker
[ "$(running_of wr-race wr-w2)" -eq 3 ] || fail "wr-w2's containers did not outlive its daemon"
ours | awk '$3 == "wr-oneshot"' | has exited || fail "no exited wr-oneshot container left"

say "starting wr-w2 again (its container list 1.5 s late)"
start_node wr-w2 "$WORK/slow-docker.sock"
wait_for 60 "3 nodes ready again" ready 3
settled() {
	local slots
	[ "$(running_of wr-race)" -eq 3 ] || return 1
	[ "$(running_of wr-race wr-w2)" -eq 0 ] || return 1
	slots=$(ours | awk '$3 == "wr-race" && $6 == "running" {print $4}' | sort | uniq -d)
	[ -z "$slots" ]
}
wait_for 60 "wr-race: 3 containers, none on wr-w2, no slot twice" settled
leftovers() { # the containers whose task the store does not have
	local store
	store=$(in_store)
	ours | while read -r id task _; do
		grep -qxF "$task" <<<"$store" || echo "$id $task"
	done
}
no_leftover() { [ -z "$(leftovers)" ]; }
wait_for 60 "no container of a task the store does not have" no_leftover
[ "$(grep -c 'delayed' "$WORK/slow-docker.log" || true)" -ge 2 ] ||
	fail "the relay delayed fewer than two lists: the race was not staged"

say "a service's environment reaches its container"
ctl wr-m1 service create --name wr-env --replicas 1 --image "$IMAGE" \
	--env GREETING=hello --env "SPACED=a b" -- sleep 3600 >/dev/null
wait_for 60 "the wr-env container" count_is 1 wr-env
c=$(ours | awk '$3 == "wr-env" && $6 == "running" {print $1}')
envs=$(docker inspect -f '{{json .Config.Env}}' "$c")
jq -e 'index("GREETING=hello") != null and index("SPACED=a b") != null' <<<"$envs" >/dev/null ||
	fail "the service's env is not in the container: $envs"
ctl wr-m1 service rm wr-env >/dev/null
ctl wr-m1 service rm wr-race >/dev/null
none_left() { [ -z "$(ours)" ]; }
wait_for 60 "every container gone" none_left

for n in "${!PID[@]}"; do kill -TERM "${PID[$n]}"; done
for n in "${!PID[@]}"; do
	set +e
	wait "${PID[$n]}"
	rc=$?
	set -e
	[ $rc -eq 0 ] || fail "$n exited $rc on SIGTERM"
	unset "PID[$n]"
done
say "PASS"
