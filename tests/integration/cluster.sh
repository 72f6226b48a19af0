#!/bin/bash
# The real daemons against a real dockerd: 3 managers and 2 workers as
# processes on 127.0.0.1, a service of sleeping busybox containers, the
# leader killed, a worker's daemon killed and restarted, containers stopped
# by hand, the service removed — and the bad input a daemon must survive;
# then tests/integration/worker-restart.sh (a worker restarted while its
# tasks were replaced, behind a Docker whose list answers late; the env).
# Starts what it needs (dockerd, the test image) and stops what it started.
#
#   tests/integration/cluster.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-it.XXXXXX)
IMAGE=cswarm-test:busybox
declare -A PID PORT
STARTED_DOCKER=""

say() { printf 'integration: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		for n in m1 m2 m3; do
			[ -n "${PID[$n]:-}" ] && alive "$n" || continue
			echo "---- the cluster, as $n sees it" >&2
			ctl "$n" node ls >&2
			ctl "$n" service ls >&2
			ctl "$n" task ls >&2
			break
		done
		[ -n "${DOCKER_HOST:-}" ] &&
			docker ps -a --filter label=cswarm.task.id --format '{{.Names}} {{.Status}} {{.Labels}}' >&2
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f")" >&2
			tail -n 15 "$f" >&2
		done
		rm -rf "$ROOT/build/integration-logs"
		mkdir -p "$ROOT/build/integration-logs" &&
			cp "$WORK"/*.log "$ROOT/build/integration-logs/" 2>/dev/null &&
			say "every daemon's whole log: build/integration-logs/" >&2
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${DOCKER_HOST:-}" ]; then
		# only this test's nodes' containers: a soak or another test
		# may share the dockerd
		ids=$(for n in m1 m2 m3 w1 w2 w3 bad; do
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

alive() { kill -0 "${PID[$1]}" 2>/dev/null; }

running() { # running [FILTER...]: how many cswarm containers run
	docker ps -q --filter label=cswarm.task.id "$@" | wc -l
}

count_is() { # count_is N FILTER...
	local n=$1
	shift
	[ "$(running "$@")" -eq "$n" ]
}

leader_of() { # the hostname of the leader, as NODE's manager sees it
	ctl "$1" node ls --format json | jq -r '.[] | select(.leader == true) | .hostname'
}

# ---------------------------------------------------------------- dockerd
command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
docker image inspect "$IMAGE" >/dev/null || fail "test image $IMAGE missing"

# the executor's own test against this real dockerd
if [ -x "$ROOT/build/asan/tests/test_docker" ]; then
	say "net/docker against the real dockerd"
	CSWARM_DOCKER_SOCKET=$DOCKER_SOCK "$ROOT/build/asan/tests/test_docker" >"$WORK/test_docker.out" 2>&1 ||
		fail "test_docker: $(tail -5 "$WORK/test_docker.out")"
	grep -q SKIPPED "$WORK/test_docker.out" && fail "test_docker skipped the real daemon"
fi

# ---------------------------------------------------------------- bad input
say "bad input"
out=$("$SWARMD" --bogus 2>&1) && fail "unknown flag accepted"
grep -q "unknown flag '--bogus'" <<<"$out" || fail "unknown flag: got: $out"
set +e
"$SWARMD" --state-dir "$WORK/x" --listen-addr 127.0.0.1:99999 >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "bad address: exit $rc, expected 2"
grep -q -- "--listen-addr" "$WORK/out" || fail "bad address: $(cat "$WORK/out")"

# ---------------------------------------------------------------- cluster
say "starting m1 (a new cluster)"
MPORT=$(pick_port)
start_node m1 --metrics-addr "127.0.0.1:$MPORT"
wait_for 30 "m1's control socket" ctl m1 cluster inspect
MTOKEN=$(ctl m1 cluster join-token manager)
WTOKEN=$(ctl m1 cluster join-token worker)
[[ $MTOKEN == SWMTKN-1-* && $WTOKEN == SWMTKN-1-* && $MTOKEN != "$WTOKEN" ]] ||
	fail "join tokens: '$MTOKEN' '$WTOKEN'"
# SwarmKit's form: SWMTKN-1-<the root CA's SHA-256 in base 36>-<secret>
CAROOT=$(ctl m1 cluster inspect | jq -r .root_ca_sha256)
DIGEST=$(python3 -c 'import sys
n = int(sys.argv[1], 16); s = ""
while n: n, r = divmod(n, 36); s = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + s
print(s.rjust(50, "0"))' "$CAROOT")
[[ $MTOKEN =~ ^SWMTKN-1-$DIGEST-[0-9a-z]{25}$ && $WTOKEN =~ ^SWMTKN-1-$DIGEST-[0-9a-z]{25}$ ]] ||
	fail "join tokens do not name the root CA $CAROOT ($DIGEST): '$MTOKEN' '$WTOKEN'"

say "port in use"
set +e
"$SWARMD" --state-dir "$WORK/y" --listen-addr "127.0.0.1:${PORT[m1]}" \
	--docker-socket "$DOCKER_SOCK" >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "port in use: exit $rc"
grep -q "address already in use" "$WORK/out" || fail "port in use: $(cat "$WORK/out")"

say "wrong join token"
# the worker token with its last digit changed
if [ "${WTOKEN: -1}" = x ]; then BADTOKEN="${WTOKEN%?}y"; else BADTOKEN="${WTOKEN%?}x"; fi
PORT[bad]=$(pick_port)
set +e
timeout 30 "$SWARMD" --state-dir "$WORK/bad" --listen-addr "127.0.0.1:${PORT[bad]}" \
	--hostname bad --docker-socket "$DOCKER_SOCK" \
	--join-addr "127.0.0.1:${PORT[m1]}" --join-token "$BADTOKEN" >"$WORK/bad.out" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "wrong token: exit $rc (expected the daemon to stop with 1)"
grep -q "refused" "$WORK/bad.out" || fail "wrong token, joiner side: $(tail -3 "$WORK/bad.out")"
grep -q "msg=\"refused\" what=cert_request.*wrong join token" "$WORK/m1.log" || fail "wrong token, manager side: no log line"

say "joining m2, m3 (managers) and w1, w2 (workers)"
for n in m2 m3; do start_node $n --join-addr "127.0.0.1:${PORT[m1]}" --join-token "$MTOKEN"; done
for n in w1 w2; do start_node $n --join-addr "127.0.0.1:${PORT[m1]}" --join-token "$WTOKEN"; done
nodes_ready() {
	[ "$(ctl m1 node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq 5 ]
}
wait_for 60 "5 nodes ready" nodes_ready
managers_three() {
	[ "$(ctl m1 node ls --format json | jq '[.[] | select(.role == "manager")] | length')" -eq 3 ]
}
wait_for 60 "3 managers" managers_three
# and both joiners voters (a spare does not count towards a quorum)
voters_three() { [ "$(grep -c 'membership change" step=2 .*status=ok' "$WORK/m1.log")" -ge 2 ]; }
wait_for 60 "m2 and m3 voters" voters_three
# tasks on the workers only, so that a manager's death leaves no orphans
for n in m1 m2 m3; do ctl m1 node update --availability drain "$n" >/dev/null; done

say "garbage and an oversized frame on m1's port"
printf 'GET / HTTP/1.0\r\n\r\n' >"/dev/tcp/127.0.0.1/${PORT[m1]}" || true
printf '\x7f\xff\xff\xffCSW1' >"/dev/tcp/127.0.0.1/${PORT[m1]}" || true
sleep 1
alive m1 || fail "m1 died on garbage"
grep -q "closing connection" "$WORK/m1.log" || fail "no log line for the bad connection"

say "service of 4 replicas"
ctl m1 service create --name sleeper --replicas 4 --image "$IMAGE" -- sleep 3600 >/dev/null
wait_for 90 "4 containers" count_is 4 --filter label=cswarm.service.name=sleeper
for c in $(docker ps -q --filter label=cswarm.service.name=sleeper); do
	labels=$(docker inspect -f '{{json .Config.Labels}}' "$c")
	for k in cswarm.task.id cswarm.service.id; do
		jq -e --arg k $k 'has($k) and (.[$k] | length > 0)' <<<"$labels" >/dev/null ||
			fail "container $c lacks label $k: $labels"
	done
done

say "metrics: a Prometheus scrape of the leader (issue 20)"
scrape() { curl -sf "http://127.0.0.1:$MPORT/metrics"; }
metric() { scrape | awk -v k="$1" '$1 == k { print $2 }'; }
running_4() { [ "$(metric 'cswarm_store_tasks{state="running"}')" = 4 ]; }
wait_for 30 "the store's 4 running tasks in the metrics" running_4
[ "$(metric cswarm_dispatcher_sessions)" = 5 ] || fail "metrics: sessions $(metric cswarm_dispatcher_sessions), not 5"
[ "$(metric cswarm_raft_leader)" = 1 ] || fail "metrics: m1 does not say it leads"
[ "$(metric 'cswarm_store_objects{kind="service"}')" = 1 ] || fail "metrics: services"
[ "$(metric cswarm_raft_proposal_seconds_count)" -gt 0 ] || fail "metrics: no proposal counted"
[ "$(metric process_open_fds)" -gt 0 ] || fail "metrics: no process_open_fds"
# issue 20's rest: pending tasks by reason (all placed here: 0 each),
# restarts, update progress (a family, samples only while one updates),
# the agent's executor latencies (histograms, by op)
for k in none not_available cpu memory constraint max_replicas host_port no_nodes; do
	[ "$(metric "cswarm_scheduler_pending_tasks{reason=\"$k\"}")" = 0 ] ||
		fail "metrics: pending tasks for reason $k: '$(metric "cswarm_scheduler_pending_tasks{reason=\"$k\"}")'"
done
[ "$(metric cswarm_orchestrator_restarts_total)" -ge 0 ] || fail "metrics: no restarts counter"
scrape | has '^# TYPE cswarm_orchestrator_update_tasks gauge$' || fail "metrics: no update progress family"
# (m1 is drained: it starts nothing, its histogram is there with 0)
[ "$(metric 'cswarm_agent_executor_seconds_count{op="start"}')" -ge 0 ] ||
	fail "metrics: no executor start latency histogram"
# every line a comment or `name{labels} value` (Prometheus' text format)
BAD=$(scrape | grep -Ev '^# (HELP|TYPE) [a-z_:][a-z0-9_:]* ' |
	grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? (-?[0-9.e+]+|\+Inf|NaN)$' || true)
[ -z "$BAD" ] || fail "metrics: lines not in the text format: $BAD"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/other")
[ "$code" = 404 ] || fail "metrics: /other answered $code, not 404"

say "by id prefix, with times and task filters (issue 14)"
SID=$(ctl m1 service inspect sleeper | jq -r .id)
ctl m1 service inspect "${SID:0:8}" |
	jq -e '.name == "sleeper" and (.created_at | test("^20[0-9-]+T[0-9:.]+Z$"))' >/dev/null ||
	fail "service inspect by the id prefix ${SID:0:8}, with created_at"
TID=$(ctl m1 task ls --service sleeper --format json | jq -r '.[0].id')
ctl m1 task inspect "${TID:0:10}" | jq -e --arg t "$TID" '.id == $t and (.updated_at | length > 0)' \
	>/dev/null || fail "task inspect by the id prefix ${TID:0:10}"
T=0
for n in m1 m2 m3 w1 w2; do
	T=$((T + $(ctl m1 node ps "$n" --filter desired-state=running --filter service="${SID:0:8}" \
		--format json | jq length)))
done
[ "$T" = 4 ] || fail "node ps NODE --filter desired-state=running, on every node: $T tasks, not 4"

say "killing the leader"
L=$(leader_of m1)
[ -n "$L" ] || fail "no leader"
kill -9 "${PID[$L]}"
wait "${PID[$L]}" 2>/dev/null || true
unset "PID[$L]"
for n in m1 m2 m3; do [ "$n" != "$L" ] && OTHER=$n; done
scaled() { ctl "$OTHER" service update sleeper --replicas 6; }
wait_for 60 "a new leader taking the scale to 6" scaled
wait_for 90 "6 containers" count_is 6 --filter label=cswarm.service.name=sleeper
say "restarting the old leader $L"
start_node "$L"

say "killing w1's daemon and starting it again"
before=$(docker ps -q --no-trunc --filter label=cswarm.service.name=sleeper | sort)
kill -9 "${PID[w1]}"
wait "${PID[w1]}" 2>/dev/null || true
sleep 2
start_node w1
sleep 15
after=$(docker ps -q --no-trunc --filter label=cswarm.service.name=sleeper | sort)
[ "$before" = "$after" ] || fail "containers changed over w1's restart"
dups=$(docker ps -aq --filter label=cswarm.task.id | xargs docker inspect -f '{{index .Config.Labels "cswarm.task.id"}}' | sort | uniq -d)
[ -z "$dups" ] || fail "a task ran in two containers: $dups"
for c in $after; do
	n=$(docker inspect -f '{{.RestartCount}}' "$c")
	[ "$n" -eq 0 ] || fail "container $c restarted"
done

say "stopping w2's containers by hand"
victims=$(docker ps -q --filter label=cswarm.service.name=sleeper --filter label=cswarm.node.id=w2)
[ -n "$victims" ] || victims=$(docker ps -q --filter label=cswarm.service.name=sleeper | head -n 2)
docker stop -t 1 $victims >/dev/null
replaced() {
	count_is 6 --filter label=cswarm.service.name=sleeper &&
		! docker ps -q --no-trunc --filter label=cswarm.service.name=sleeper | has -F "$(echo "$victims" | head -n 1)"
}
wait_for 90 "the stopped containers replaced" replaced

say "a worker whose Docker is not running"
start_node w3 --join-addr "127.0.0.1:${PORT[m1]}" --join-token "$WTOKEN" --docker-socket "$WORK/no-docker.sock"
w3_ready() { ctl "$OTHER" node ls --format json | jq -e '.[] | select(.hostname == "w3" and .status == "ready")'; }
wait_for 60 "w3 ready" w3_ready
ctl "$OTHER" service create --name nodocker --replicas 1 --image "$IMAGE" \
	--constraint node.hostname==w3 -- sleep 3600 >/dev/null
rejected() {
	ctl "$OTHER" task ls --service nodocker --format json | jq -e '.[] | select(.message | test("docker|connect"; "i"))'
}
wait_for 60 "the task rejected with Docker's error" rejected
sleep 3
alive w3 || fail "w3 died without Docker"
ctl "$OTHER" service rm nodocker >/dev/null

say "an image that is not on the machine"
ctl "$OTHER" service create --name absent --replicas 1 --image cswarm-test:absent \
	--constraint node.hostname==w1 -- sleep 3600 >/dev/null
rejected_absent() {
	ctl "$OTHER" task ls --service absent --format json |
		jq -e '.[] | select(.state == "rejected" and (.message | test("No such image")))'
}
wait_for 60 "the task rejected with Docker's 'No such image'" rejected_absent
ctl "$OTHER" service rm absent >/dev/null

say "removing the service"
ctl "$OTHER" service rm sleeper >/dev/null
gone() { [ -z "$(docker ps -aq --filter label=cswarm.service.name=sleeper)" ]; }
wait_for 90 "every container gone" gone

# issue 19: the agent's task database is one a node can start without (the
# managers hold the tasks, Docker the containers and their labels): a
# corrupt one is set aside, untouched, and the worker starts clean
say "corrupt agent database: set aside, the worker starts clean"
kill -TERM "${PID[w3]}"
wait "${PID[w3]}" || true
unset "PID[w3]"
printf 'this is not a database, only garbage bytes of a broken disk....' >"$WORK/w3/agent.db"
rm -f "$WORK/w3/agent.db-wal" "$WORK/w3/agent.db-shm"
sum_before=$(md5sum <"$WORK/w3/agent.db")
set +e
timeout 20 "$SWARMD" --state-dir "$WORK/w3" --listen-addr "127.0.0.1:$(pick_port)" \
	--hostname w3 --docker-socket "$DOCKER_SOCK" >"$WORK/w3.out" 2>&1
rc=$?
set -e
[ $rc -eq 124 ] || fail "corrupt agent database: exit $rc (it should have kept running)"
grep -q 'corrupt database set aside.*agent.db' "$WORK/w3.out" ||
	fail "corrupt agent database: $(tail -3 "$WORK/w3.out")"
[ "$(md5sum <"$WORK/w3/agent.db.corrupt")" = "$sum_before" ] ||
	fail "the corrupt agent database was not kept aside unchanged"

say "SIGTERM stops every daemon cleanly"
for n in "${!PID[@]}"; do kill -TERM "${PID[$n]}"; done
for n in "${!PID[@]}"; do
	set +e
	wait "${PID[$n]}"
	rc=$?
	set -e
	[ $rc -eq 0 ] || fail "$n exited $rc on SIGTERM"
	unset "PID[$n]"
done

# a cluster of its own: a worker restarted while Docker's list is slow
say "a worker restarted behind a slow Docker (worker-restart.sh)"
"$ROOT/tests/integration/worker-restart.sh" "$BIN" || fail "worker-restart.sh"
say "PASS"
