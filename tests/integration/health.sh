#!/bin/bash
# Health checks and the stop grace period with a real dockerd (issue 14): a
# task whose container has a health check is RUNNING only once Docker says
# healthy; a container that turns unhealthy is stopped, its task FAILED
# ("unhealthy container") and replaced through the restart policy; the
# stop grace period is Docker's stop timeout. One manager of its own
# (hostname hc-m1), which runs the tasks.
#
#   tests/integration/health.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-hc.XXXXXX)
IMAGE=cswarm-test:busybox
NODE=hc-m1
PID=""
STARTED_DOCKER=""

say() { printf 'health: %s\n' "$*"; }

ours() { # this test's containers: ID TASK SERVICE STATE HEALTH
	docker ps -aq --filter "label=cswarm.node.id=$NODE" | xargs -r docker inspect -f \
		'{{.Id}} {{index .Config.Labels "cswarm.task.id"}} {{index .Config.Labels "cswarm.service.name"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}'
}

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		echo "---- containers" >&2
		ours >&2
		[ -n "$PID" ] && ctl task ls >&2
		echo "---- last lines of $NODE.log" >&2
		tail -n 30 "$WORK/$NODE.log" >&2
		rm -rf "$ROOT/build/integration-logs/health"
		mkdir -p "$ROOT/build/integration-logs/health" &&
			cp "$WORK"/*.log "$ROOT/build/integration-logs/health/" 2>/dev/null
	fi
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	wait 2>/dev/null
	ids=$(ours | cut -d' ' -f1)
	[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
	[ -n "$STARTED_DOCKER" ] && "$ROOT/tests/integration/docker-down.sh" "$WORK/docker" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# fail, wait_for, port_free, pick_port
. "$(dirname "$0")/lib.sh"

ctl() { "$SWARMCTL" --socket "$WORK/$NODE.sock" "$@"; }

command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK

say "one manager"
"$SWARMD" --state-dir "$WORK/$NODE" --listen-addr "127.0.0.1:$(pick_port)" \
	--hostname "$NODE" --control-socket "$WORK/$NODE.sock" \
	--docker-socket "$DOCKER_SOCK" --log-level "${CSWARM_IT_LOG_LEVEL:-info}" \
	>>"$WORK/$NODE.log" 2>&1 &
PID=$!
wait_for 30 "$NODE's control socket" ctl cluster inspect
ready() { [ "$(ctl node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq 1 ]; }
wait_for 60 "$NODE ready" ready

tasks_of() { # tasks_of SERVICE: its tasks, as JSON lines {state, message}
	ctl task ls --format json | jq -c --arg s "$1" '.[] | select(.service == $s) | {id, state, message}'
}
container_of() { # container_of SERVICE: ID and HEALTH of its running container
	ours | awk -v s="$1" '$3 == s && $4 == "running" {print $1, $5}'
}

# ---------------------------------------------------------------- RUNNING once healthy
say "hc-slow: healthy 6 s after its start; STARTING until then"
ctl service create --name hc-slow --image "$IMAGE" --health-cmd "test -f /ok" \
	--health-interval 1s --health-retries 3 --health-start-period 30s \
	--stop-grace-period 2s -- sh -c 'sleep 6; touch /ok; exec sleep 3600' >/dev/null
has_container() { [ -n "$(container_of "$1")" ]; }
wait_for 60 "hc-slow's container running" has_container hc-slow
read -r cid health < <(container_of hc-slow)
[ "$(docker inspect -f '{{.Config.StopTimeout}}' "$cid")" = 2 ] ||
	fail "--stop-grace-period 2s is not the container's StopTimeout"
[ "$(docker inspect -f '{{json .Config.Healthcheck.Test}}' "$cid")" = '["CMD-SHELL","test -f /ok"]' ] ||
	fail "the health command is not the container's"
# the task's state read first, Docker's health after: a task RUNNING while
# Docker still says "starting" would mean it did not wait
seen_starting=0
for _ in $(seq 1 20); do
	state=$(tasks_of hc-slow | jq -r .state | head -n 1)
	health=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
	[ "$health" = starting ] || break
	[ "$state" != running ] || fail "hc-slow is RUNNING while Docker says its health is starting"
	[ "$state" = starting ] && seen_starting=1
	sleep 0.5
done
[ $seen_starting -eq 1 ] || fail "hc-slow was never seen STARTING while Docker said starting"
slow_running() { [ "$(tasks_of hc-slow | jq -r .state)" = running ]; }
wait_for 60 "hc-slow RUNNING once healthy" slow_running
[ "$(docker inspect -f '{{.State.Health.Status}}' "$cid")" = healthy ] ||
	fail "hc-slow RUNNING, Docker does not say healthy"

# ---------------------------------------------------------------- unhealthy: replaced
say "hc-flaky: healthy, then unhealthy 5 s after its start: stopped, FAILED, replaced"
ctl service create --name hc-flaky --image "$IMAGE" --health-cmd "test -f /ok" \
	--health-interval 1s --health-retries 2 --restart-delay 1s --stop-grace-period 1s \
	-- sh -c 'touch /ok; sleep 5; rm /ok; exec sleep 3600' >/dev/null
failed_unhealthy() {
	tasks_of hc-flaky |
		jq -s -e 'any(.[]; .state == "failed" and (.message | contains("unhealthy")))' >/dev/null
}
wait_for 90 "a hc-flaky task FAILED as unhealthy" failed_unhealthy
first=$(tasks_of hc-flaky | jq -r 'select(.state == "failed") | .id' | head -n 1)
replaced() { # a task other than the failed one runs
	tasks_of hc-flaky | jq -s -e --arg f "$first" 'any(.[]; .id != $f and .state == "running")' >/dev/null
}
wait_for 60 "hc-flaky's replacement RUNNING" replaced
# the unhealthy container was stopped, not left running beside it
[ "$(ours | awk '$3 == "hc-flaky" && $4 == "running"' | wc -l)" -le 1 ] ||
	fail "hc-flaky runs more than one container"

# ---------------------------------------------------------------- restart=none: not replaced
say "hc-once: restart none: FAILED as unhealthy and not replaced"
ctl service create --name hc-once --image "$IMAGE" --health-cmd "test -f /ok" \
	--health-interval 1s --health-retries 2 --restart-condition none --stop-grace-period 1s \
	-- sh -c 'touch /ok; sleep 3; rm /ok; exec sleep 3600' >/dev/null
once_failed() { [ "$(tasks_of hc-once | jq -r .state)" = failed ]; }
wait_for 60 "hc-once FAILED" once_failed
no_once() { [ -z "$(container_of hc-once)" ]; }
wait_for 30 "hc-once's container stopped" no_once
sleep 3
[ "$(tasks_of hc-once | wc -l)" -eq 1 ] || fail "hc-once was replaced despite restart none"

for s in hc-slow hc-flaky hc-once; do ctl service rm "$s" >/dev/null; done
none_left() { [ -z "$(ours)" ]; }
wait_for 60 "every container gone" none_left
kill -TERM "$PID"
set +e
wait "$PID"
rc=$?
set -e
PID=""
[ $rc -eq 0 ] || fail "$NODE exited $rc on SIGTERM"
say "PASS"
