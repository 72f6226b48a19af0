#!/bin/bash
# swarmsim run --real removes everything it made when it is interrupted
# (issue 19): SIGINT while the daemons run a scenario, SIGTERM while the
# world is still being built, and SIGINT twice (the second during the
# teardown). After each: exit status 130, and no namespace,
# veth, dockerd, swarmd, cgroup or work dir of the run's tag (rw + 4 hex of
# its pid) is left. Needs root.
#
#   tests/integration/real-interrupt.sh [BIN_DIR]    (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
WORK=$(mktemp -d /tmp/rw-int.XXXXXX)
PID=""

say() { printf 'real-interrupt: %s\n' "$*"; }
fail() {
	say "FAIL: $*" >&2
	exit 1
}
cleanup() {
	local rc=$?
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

cat >"$WORK/long.scn" <<'EOF'
cluster managers=1 workers=1
service create web replicas=2
expect running web == 2 within 1m
run 10m
EOF

# leftovers TAG: what of the run's tag is still there (empty: nothing)
leftovers() {
	local tag=$1
	ip netns list | grep -o "^$tag[^ ]*" || true
	ip -br link | grep -o "^$tag[^ @]*" || true
	ls -d /tmp/"$tag".* 2>/dev/null || true
	ls -d /sys/fs/cgroup/"$tag"-* 2>/dev/null || true
	pgrep -af "$tag" | grep -v -e pgrep -e real-interrupt || true
}

# interrupt SIG WHEN [again]: start a run, send SIG when the log shows
# WHEN (again: and once more when its teardown has begun)
interrupt() {
	local sig=$1 when=$2 again=${3:-} tag rc
	"$BIN/swarmsim" run "$WORK/long.scn" --real --bin "$BIN" --verbose >"$WORK/out" 2>&1 &
	PID=$!
	tag=$(printf 'rw%04x' $((PID & 0xffff)))
	for ((i = 0; i < 600; i++)); do
		grep -q "$when" "$WORK/out" && break
		kill -0 "$PID" 2>/dev/null || fail "swarmsim ended early: $(tail -n 5 "$WORK/out")"
		sleep 0.2
	done
	grep -q "$when" "$WORK/out" || fail "never saw '$when'"
	[ -n "$(ip netns list | grep "^$tag")" ] || fail "no namespace of $tag while running"
	kill -"$sig" "$PID"
	if [ -n "$again" ]; then
		for ((i = 0; i < 100; i++)); do
			grep -q "tearing down" "$WORK/out" && break
			sleep 0.1
		done
		sleep 0.3 # inside the teardown: stopping the swarmds, the containers
		kill -"$sig" "$PID" 2>/dev/null || true
	fi
	rc=0
	wait "$PID" || rc=$?
	PID=""
	[ $rc -eq 130 ] || fail "SIG$sig: exit $rc, expected 130: $(tail -n 5 "$WORK/out")"
	grep -q "interrupted by signal" "$WORK/out" || fail "SIG$sig: no 'interrupted' line"
	left=$(leftovers "$tag")
	[ -z "$left" ] || fail "SIG$sig left: $left"
	say "SIG$sig at '$when'${again:+ and in its teardown}: exit 130, nothing of $tag left"
}

interrupt INT "line 4: run 10m"
interrupt TERM "starting 2 dockerds"
# a second signal during the teardown must not cut the teardown short
interrupt INT "line 4: run 10m" again
say ok
