#!/bin/bash
# Disaster recovery with real daemons (issue 20), against a real dockerd:
#  1. three managers and a worker running a service; a backup from a
#     follower (forwarded to the leader) is a 0600 file that swarmd
#     --restore checks; bad, truncated and foreign files are refused with
#     what is wrong, and a restore into a state dir that is not empty too;
#  2. a backup taken while services are created one after another is
#     consistent: restored, it holds svc-1..svc-K with no gap, K at least
#     what was acknowledged before the backup began and at most what was
#     created by the time it returned;
#  3. force-new-cluster: two managers killed and their state dirs deleted;
#     the third, started again with --force-new-cluster, leads alone with
#     its store; the worker's container ran throughout (the same one); a
#     new manager joins with the manager token; the lost managers' records
#     are removed as they are;
#  4. the round trip: --restore on a fresh state dir starts a new
#     one-manager cluster holding the services, networks and node records
#     of the backup; a new worker joins it with the cluster's worker token
#     and runs its tasks.
#
#   tests/integration/dr.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-dr.XXXXXX)
IMAGE=cswarm-test:busybox
NODES="dr1 dr2 dr3 dr4 drw1 rs1 rsw1 rs2"
declare -A PID PORT
STARTED_DOCKER=""
RUN=(sh -c 'trap "exit 0" TERM; while :; do sleep 1; done')

say() { printf 'dr: %s\n' "$*"; }

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

# fail, wait_for, port_free, pick_port, ctl, start_node
. "$(dirname "$0")/lib.sh"

alive() { kill -0 "${PID[$1]}" 2>/dev/null; }
ready_count() { ctl "$1" node ls --format json | jq '[.[] | select(.status == "ready")] | length'; }
ready_is() { [ "$(ready_count "$1")" -eq "$2" ]; }
running() { # running NODE SERVICE N: the store says N tasks of SERVICE run
	[ "$(ctl "$1" task ls --service "$2" --format json |
		jq '[.[] | select(.state == "running")] | length')" -eq "$3" ]
}
svc_names() { ctl "$1" service ls --format json | jq -r '.[].name' | sort; }

command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
docker image inspect "$IMAGE" >/dev/null || fail "test image $IMAGE missing"

# ---------------------------------------------------------------- a cluster
say "three managers and a worker"
start_node dr1
wait_for 30 "dr1's control socket" ctl dr1 cluster inspect
MTOKEN=$(ctl dr1 cluster join-token manager)
WTOKEN=$(ctl dr1 cluster join-token worker)
for n in dr2 dr3; do start_node $n --join-addr "127.0.0.1:${PORT[dr1]}" --join-token "$MTOKEN"; done
start_node drw1 --join-addr "127.0.0.1:${PORT[dr1]}" --join-token "$WTOKEN"
wait_for 60 "4 nodes ready" ready_is dr1 4
voters_three() { [ "$(grep -c 'membership change" step=2 .*status=ok' "$WORK/dr1.log")" -ge 2 ]; }
wait_for 60 "dr2 and dr3 voters" voters_three
for n in dr1 dr2 dr3; do ctl dr1 node update --availability drain "$n" >/dev/null; done
ctl dr1 network create --subnet 10.77.0.0/24 back >/dev/null
ctl dr1 service create --name web --replicas 2 --image "$IMAGE" -- "${RUN[@]}" >/dev/null
wait_for 60 "web running" running dr1 web 2
# (the dockerd may be shared: this test's worker's containers only)
web_containers() {
	docker ps -q --filter label=cswarm.service.name=web --filter label=cswarm.node.id=drw1 |
		sort | tr '\n' ' '
}
WEB_CONTAINERS=$(web_containers)
[ "$(wc -w <<<"$WEB_CONTAINERS")" -eq 2 ] || fail "web's containers on drw1: $WEB_CONTAINERS"

# ---------------------------------------------------------------- backup
say "a backup from a follower; its file"
ctl dr2 cluster backup "$WORK/b1.bak" >"$WORK/out" || fail "backup: $(cat "$WORK/out")"
grep -q "mode 0600" "$WORK/out" || fail "backup said: $(cat "$WORK/out")"
[ "$(stat -c %a "$WORK/b1.bak")" = 600 ] || fail "backup mode $(stat -c %a "$WORK/b1.bak")"
head -c 14 "$WORK/b1.bak" | has "CSWARM-BACKUP" || fail "no magic line"

say "bad backups are refused with what is wrong"
refused() { # refused FILE WORDS STATUS: --restore FILE exits STATUS saying WORDS
	local rc
	rm -rf "$WORK/bad"
	set +e
	"$SWARMD" --state-dir "$WORK/bad" --listen-addr "127.0.0.1:$(pick_port)" \
		--restore "$1" >"$WORK/out" 2>&1
	rc=$?
	set -e
	[ $rc -eq "$3" ] || fail "--restore $1: exit $rc, expected $3: $(cat "$WORK/out")"
	grep -q "$2" "$WORK/out" || fail "--restore $1: $(cat "$WORK/out")"
	[ ! -e "$WORK/bad" ] || fail "--restore $1 left a state dir"
}
size=$(stat -c %s "$WORK/b1.bak")
head -c $((size / 2)) "$WORK/b1.bak" >"$WORK/trunc.bak"
refused "$WORK/trunc.bak" "truncated or damaged" 1
printf 'hello\n' >"$WORK/foreign.bak"
refused "$WORK/foreign.bak" "not a cswarm backup" 1
cp "$WORK/b1.bak" "$WORK/flip.bak"
# a byte near the end (inside the store or its checksum) changed
printf '\xff' | dd of="$WORK/flip.bak" bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
refused "$WORK/flip.bak" "damaged" 1
refused "$WORK/none.bak" "No such file" 1
mkdir -p "$WORK/full" && touch "$WORK/full/x"
set +e
"$SWARMD" --state-dir "$WORK/full" --listen-addr "127.0.0.1:$(pick_port)" \
	--restore "$WORK/b1.bak" >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "not empty" "$WORK/out" || fail "restore into a used dir: $rc $(cat "$WORK/out")"
set +e
"$SWARMD" --state-dir "$WORK/fresh" --listen-addr "127.0.0.1:$(pick_port)" \
	--force-new-cluster >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "holds no manager's state" "$WORK/out" ||
	fail "--force-new-cluster on nothing: $rc $(cat "$WORK/out")"

say "a backup taken while services are created is consistent"
(
	i=1
	while [ ! -e "$WORK/stop" ]; do
		ctl dr1 service create --name "svc-$i" --replicas 0 --image "$IMAGE" >/dev/null 2>&1 &&
			{ echo "$i" >"$WORK/acked.tmp" && mv "$WORK/acked.tmp" "$WORK/acked"; }
		i=$((i + 1))
	done
) &
WRITER=$!
wait_for 30 "the writer's first services" test -s "$WORK/acked"
sleep 1
BEFORE=$(cat "$WORK/acked")
ctl dr3 cluster backup "$WORK/b2.bak" >/dev/null || fail "backup under writes"
AFTER=$(cat "$WORK/acked")
touch "$WORK/stop"
wait $WRITER || true
say "(acknowledged before: $BEFORE, by the backup's end: $AFTER)"

# ---------------------------------------------------------------- force-new-cluster
say "force-new-cluster: dr1 and dr2 die with their disks; dr3 recovers alone"
kill -9 "${PID[dr1]}" "${PID[dr2]}"
rm -rf "$WORK/dr1" "$WORK/dr2"
sleep 3
kill -TERM "${PID[dr3]}"
wait "${PID[dr3]}" 2>/dev/null || true
start_node dr3 --force-new-cluster
leads() { ctl dr3 node ls --format json | jq -e '.[] | select(.hostname == "dr3" and .leader == true)'; }
wait_for 60 "dr3 leads alone" leads
grep -q "force-new-cluster: a new cluster of this manager alone" "$WORK/dr3.log" ||
	fail "no log line for the recovery"
ctl dr3 service inspect web >/dev/null || fail "web lost"
wait_for 60 "web's tasks running, seen by dr3" running dr3 web 2
now=$(web_containers)
[ "$now" = "$WEB_CONTAINERS" ] || fail "web's containers changed: '$WEB_CONTAINERS' -> '$now'"
ctl dr3 service update web --replicas 3 >/dev/null
wait_for 60 "web scaled to 3 on the recovered cluster" running dr3 web 3
MTOKEN3=$(ctl dr3 cluster join-token manager)
start_node dr4 --join-addr "127.0.0.1:${PORT[dr3]}" --join-token "$MTOKEN3"
dr4_manager() {
	ctl dr3 node ls --format json |
		jq -e '.[] | select(.hostname == "dr4" and .role == "manager" and .status == "ready")'
}
wait_for 90 "dr4 joined as a manager" dr4_manager
# the lost managers' records: removed as they are (no longer Raft members)
ctl dr3 node rm --force dr1 dr2 >"$WORK/out" 2>&1 || fail "node rm of the lost managers: $(cat "$WORK/out")"
left=$(ctl dr3 node ls --format json | jq -r '.[].hostname' | sort | tr '\n' ' ')
[ "$left" = "dr3 dr4 drw1 " ] || fail "nodes after the removal: $left"
say "the flag left in place: a restart with it is refused; without it dr3 goes on"
kill -TERM "${PID[dr3]}"
wait "${PID[dr3]}" 2>/dev/null || true
start_node dr3 --force-new-cluster
set +e
wait "${PID[dr3]}"
rc=$?
set -e
[ $rc -eq 2 ] || fail "a second --force-new-cluster: exit $rc"
tail -n 3 "$WORK/dr3.log" | has "forced a new cluster at its last start" ||
	fail "a second --force-new-cluster: $(tail -n 3 "$WORK/dr3.log")"
start_node dr3
both_up() { ctl dr3 node ls --format json | jq -e '[.[] | select(.role == "manager" and .status == "ready")] | length == 2' && ctl dr3 node ls --format json | jq -e '.[] | select(.leader == true)'; }
wait_for 90 "dr3 and dr4 lead again" both_up
ctl dr3 service update web --replicas 2 >/dev/null || fail "a write after dr3's restart"

# ---------------------------------------------------------------- restore
say "restore the first backup on a fresh state dir"
start_node rs1 --restore "$WORK/b1.bak"
wait_for 60 "rs1's control socket" ctl rs1 cluster inspect
rs_leads() { ctl rs1 node ls --format json | jq -e '.[] | select(.hostname == "rs1" and .leader == true)'; }
wait_for 60 "rs1 leads" rs_leads
[ "$(svc_names rs1 | tr '\n' ' ')" = "web " ] || fail "restored services: $(svc_names rs1)"
ctl rs1 network inspect back | jq -e '.subnet == "10.77.0.0/24"' >/dev/null ||
	fail "network back: $(ctl rs1 network inspect back)"
hosts=$(ctl rs1 node ls --format json | jq -r '.[].hostname' | sort | tr '\n' ' ')
[ "$hosts" = "dr1 dr2 dr3 drw1 rs1 " ] || fail "restored nodes: $hosts"
[ "$(ctl rs1 cluster inspect | jq -r .root_ca_sha256)" = "$(ctl dr3 cluster inspect | jq -r .root_ca_sha256)" ] ||
	fail "the restored cluster has another root CA"
[ "$(ctl rs1 cluster join-token worker)" = "$WTOKEN" ] || fail "the worker token changed"
say "a new worker joins the restored cluster and runs its tasks"
ctl rs1 service create --name after --replicas 1 --constraint node.hostname==rsw1 \
	--image "$IMAGE" -- "${RUN[@]}" >/dev/null
start_node rsw1 --join-addr "127.0.0.1:${PORT[rs1]}" --join-token "$WTOKEN"
wait_for 90 "after running on rsw1" running rs1 after 1
kill -TERM "${PID[rs1]}" "${PID[rsw1]}"
wait "${PID[rs1]}" "${PID[rsw1]}" 2>/dev/null || true
unset 'PID[rs1]' 'PID[rsw1]'

say "restore the backup taken under writes: svc-1..svc-K, no gap"
rm -rf "$WORK/rs1"
unset 'PORT[rs1]'
start_node rs1 --restore "$WORK/b2.bak"
wait_for 60 "rs1 leads (second restore)" rs_leads
K=$(svc_names rs1 | grep -c '^svc-' || true)
for i in $(seq 1 "$K"); do
	svc_names rs1 | has -x "svc-$i" || fail "svc-$i missing among $K restored"
done
[ "$K" -ge "$BEFORE" ] || fail "$K services restored, $BEFORE were acknowledged before the backup"
[ "$K" -le $((AFTER + 1)) ] || fail "$K services restored, only $AFTER by the backup's end"
say "restored $K services (acknowledged before $BEFORE, by the end $AFTER)"

say "under autolock a backup is sealed with the unlock key"
ctl rs1 cluster update --autolock=true >"$WORK/out" 2>&1 || fail "autolock: $(cat "$WORK/out")"
grep -o 'SWMKEY-1-[A-Za-z0-9+/]*' "$WORK/out" | head -1 >"$WORK/unlock.key"
[ -s "$WORK/unlock.key" ] || fail "no unlock key printed: $(cat "$WORK/out")"
ctl rs1 cluster backup "$WORK/b3.bak" >"$WORK/out" || fail "sealed backup: $(cat "$WORK/out")"
head -c 21 "$WORK/b3.bak" | has "CSWARM-BACKUP-SEALED" || fail "the backup is not sealed"
! grep -q "$(cat "$WORK/unlock.key")" "$WORK/b3.bak" || fail "the sealed backup holds its key"
refused "$WORK/b3.bak" "unlock-key-file" 1
echo "SWMKEY-1-Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA" >"$WORK/wrong.key"
rm -rf "$WORK/bad"
set +e
"$SWARMD" --state-dir "$WORK/bad" --listen-addr "127.0.0.1:$(pick_port)" \
	--restore "$WORK/b3.bak" --unlock-key-file "$WORK/wrong.key" >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] && grep -q "does not open" "$WORK/out" || fail "restore with a wrong key: $rc $(cat "$WORK/out")"
start_node rs2 --restore "$WORK/b3.bak" --unlock-key-file "$WORK/unlock.key"
rs2_leads() { ctl rs2 node ls --format json | jq -e '.[] | select(.hostname == "rs2" and .leader == true)'; }
wait_for 60 "rs2 leads (the sealed backup restored)" rs2_leads
[ "$(svc_names rs2 | grep -c '^svc-' || true)" -eq "$K" ] || fail "rs2 restored $(svc_names rs2 | grep -c '^svc-') services, not $K"
say "PASS"
