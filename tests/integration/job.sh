#!/bin/bash
# Jobs with real daemons and real containers (issue 14): a manager and a
# worker as processes on 127.0.0.1 against a real dockerd; a replicated job
# of 4 completions, 2 at a time, runs to completion and is not restarted;
# an update runs it again; a failing job is restarted up to its max
# attempts; a global job completes on both nodes; a job with an update
# config is refused. Modelled on cluster.sh; starts what it needs (dockerd,
# the test image) and stops what it started.
#
#   tests/integration/job.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-job.XXXXXX)
IMAGE=cswarm-test:busybox
# hostnames of this test's nodes (container label cswarm.node.id): apart
# from cluster.sh's, so that both may share a dockerd
NODES="jobm1 jobw1"
declare -A PID PORT
STARTED_DOCKER=""

say() { printf 'job: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		if [ -n "${PID[jobm1]:-}" ]; then
			echo "---- the cluster, as jobm1 sees it" >&2
			ctl jobm1 node ls >&2
			ctl jobm1 service ls >&2
			ctl jobm1 task ls >&2
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

running() { # running SERVICE: how many of its containers run
	docker ps -q --filter "label=cswarm.service.name=$1" | wc -l
}

tasks_in() { # tasks_in SERVICE STATE: how many of its tasks the store has in STATE
	ctl jobm1 task ls --service "$1" --format json |
		jq --arg s "$2" '[.[] | select(.state == $s)] | length'
}

tasks_are() { # tasks_are SERVICE STATE N
	[ "$(tasks_in "$1" "$2")" -eq "$3" ]
}

svc_field() { # svc_field SERVICE FIELD: from service ls --format json
	ctl jobm1 service ls --format json | jq -r --arg n "$1" --arg f "$2" \
		'.[] | select(.name == $n) | .[$f]'
}

# ---------------------------------------------------------------- dockerd
command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
docker image inspect "$IMAGE" >/dev/null || fail "test image $IMAGE missing"

# ---------------------------------------------------------------- cluster
say "a manager and a worker"
start_node jobm1
wait_for 30 "jobm1's control socket" ctl jobm1 cluster inspect
WTOKEN=$(ctl jobm1 cluster join-token worker)
start_node jobw1 --join-addr "127.0.0.1:${PORT[jobm1]}" --join-token "$WTOKEN"
nodes_ready() {
	[ "$(ctl jobm1 node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq 2 ]
}
wait_for 60 "2 nodes ready" nodes_ready

# ---------------------------------------------------------------- replicated job
say "refused: a job with an update config, max-concurrent on a service"
ctl jobm1 service create --name bad --mode replicated-job --update-parallelism 2 \
	--image "$IMAGE" -- true >"$WORK/out" 2>&1 && fail "a job with an update config was accepted"
grep -q "update" "$WORK/out" || fail "job with update config: $(cat "$WORK/out")"
ctl jobm1 service create --name bad --max-concurrent 2 \
	--image "$IMAGE" -- true >"$WORK/out" 2>&1 && fail "max-concurrent on a service was accepted"
grep -q "max-concurrent" "$WORK/out" || fail "max-concurrent on a service: $(cat "$WORK/out")"

say "a replicated job: 4 completions, 2 at a time"
ctl jobm1 service create --name batch --mode replicated-job --replicas 4 --max-concurrent 2 \
	--image "$IMAGE" -- sh -c 'sleep 3; exit 0' >/dev/null
[ "$(svc_field batch mode)" = replicated-job ] || fail "mode: $(svc_field batch mode)"
# never more than 2 at once, sampled until all 4 completed
end=$((SECONDS + 120))
most=0
until tasks_are batch complete 4; do
	[ $SECONDS -ge $end ] && fail "waited 120s for 4 complete tasks"
	r=$(running batch)
	[ "$r" -gt "$most" ] && most=$r
	[ "$r" -le 2 ] || fail "$r containers of the job run at once (max-concurrent 2)"
	sleep 0.5
done
[ "$most" -ge 1 ] || fail "never saw a container of the job running"
say "completed (at most $most at once)"
[ "$(svc_field batch completed)" -eq 4 ] || fail "service ls completed: $(svc_field batch completed)"
[ "$(svc_field batch completions)" -eq 4 ] || fail "service ls completions: $(svc_field batch completions)"
ctl jobm1 service ls | has "(4/4 completed)" || fail "service ls table: $(ctl jobm1 service ls)"
for id in $(ctl jobm1 task ls --service batch --format json | jq -r '.[].id'); do
	[ "$(ctl jobm1 task inspect "$id" | jq -r .desired)" = complete ] ||
		fail "task $id: desired $(ctl jobm1 task inspect "$id" | jq -r .desired), expected complete"
done

say "not restarted: 10 s later still 4 tasks, all complete, nothing runs"
sleep 10
[ "$(ctl jobm1 task ls --service batch --format json | jq length)" -eq 4 ] ||
	fail "tasks: $(ctl jobm1 task ls --service batch)"
tasks_are batch complete 4 || fail "complete: $(tasks_in batch complete)"
[ "$(running batch)" -eq 0 ] || fail "a container of the completed job runs"

say "an update runs the job again"
ctl jobm1 service update batch --replicas 2 >/dev/null
[ "$(svc_field batch job_iteration)" -eq 1 ] || fail "job_iteration: $(svc_field batch job_iteration)"
rerun_done() {
	tasks_are batch complete 2 && [ "$(ctl jobm1 task ls --service batch --format json | jq length)" -eq 2 ]
}
wait_for 90 "the second run: 2 complete, the first run's tasks gone" rerun_done

# ---------------------------------------------------------------- failures
say "a failing job: restarted once (max attempts 1), then left"
ctl jobm1 service create --name failing --mode replicated-job --replicas 1 \
	--restart-condition on-failure --restart-max-attempts 1 --restart-delay 1s \
	--image "$IMAGE" -- sh -c 'exit 3' >/dev/null
wait_for 60 "2 failed tasks" tasks_are failing failed 2
sleep 8
tasks_are failing failed 2 || fail "failed tasks: $(tasks_in failing failed), expected 2"
[ "$(svc_field failing completed)" -eq 0 ] || fail "a failing job counts completions"

# ---------------------------------------------------------------- global job
say "a global job: one completion on each node"
ctl jobm1 service create --name everywhere --mode global-job \
	--image "$IMAGE" -- sh -c 'sleep 1; exit 0' >/dev/null
wait_for 60 "2 complete tasks" tasks_are everywhere complete 2
nodes=$(ctl jobm1 task ls --service everywhere --format json | jq -r '[.[].node] | unique | length')
[ "$nodes" -eq 2 ] || fail "global job ran on $nodes node(s)"
sleep 5
tasks_are everywhere complete 2 || fail "the global job ran again"

say "removing the jobs"
for s in batch failing everywhere; do ctl jobm1 service rm "$s" >/dev/null; done
gone() { [ "$(ctl jobm1 task ls --format json | jq length)" -eq 0 ]; }
wait_for 60 "every task of the jobs gone" gone

say "PASS"
