#!/bin/bash
# State format versioning (issue 20) with the real daemon: a copy of
# tests/data/state-v1/ (a state directory of the current format, kept in
# the repo; tests/data/make-state-v1.sh made it) starts, on another port,
# as the manager it was: its cluster, network and service are there and it
# leads. A copy of tests/data/state-v1-raft1/ (the format before: a raft
# database of format 1, from before certificates) is upgraded on start:
# its service is kept, the cluster gets its root CA, the database is of
# format 2 after, and it starts again. The same directory saying a newer state format, or holding a raft
# database of an unknown format, is refused with the version named, and
# left as it was. (An older raft database, format 1, is upgraded in place:
# test_raftio's test_raftio_upgrades_a_format_1_database.)
#
#   tests/integration/state-format.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-state.XXXXXX)
DATA=$ROOT/tests/data/state-v1
declare -A PID PORT

say() { printf 'state-format: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		for f in "$WORK"/*.log; do
			[ -f "$f" ] && { echo "---- $(basename "$f")" >&2; tail -n 20 "$f" >&2; }
		done
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# fail, wait_for, pick_port, ctl
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
command -v python3 >/dev/null || fail "python3 is missing"
[ -d "$DATA" ] || fail "no $DATA"

copy() { rm -rf "$WORK/$1" && cp -r "${2:-$DATA}" "$WORK/$1"; }
start() { # start DIR: swarmd on DIR, no Docker (nothing runs)
	PORT[$1]=$(pick_port)
	"$SWARMD" --state-dir "$WORK/$1" --listen-addr "127.0.0.1:${PORT[$1]}" \
		--hostname keeper --control-socket "$WORK/$1.sock" \
		--docker-api-socket "$WORK/$1.dapi" --docker-socket "$WORK/no-docker.sock" \
		>>"$WORK/$1.log" 2>&1 &
	PID[$1]=$!
}
refused() { # refused DIR WORDS: swarmd on DIR exits 1 saying WORDS, DIR unchanged
	local rc
	cp -r "$WORK/$1" "$WORK/$1.before"
	set +e
	"$SWARMD" --state-dir "$WORK/$1" --listen-addr "127.0.0.1:$(pick_port)" \
		--hostname keeper --control-socket "$WORK/$1.sock" \
		--docker-api-socket "$WORK/$1.dapi" --docker-socket "$WORK/no-docker.sock" \
		>"$WORK/out" 2>&1
	rc=$?
	set -e
	[ $rc -eq 1 ] || fail "$1: exit $rc, expected 1: $(cat "$WORK/out")"
	grep -q "$2" "$WORK/out" || fail "$1: $(cat "$WORK/out")"
	# (sqlite's shared-memory index of a database opened in WAL mode may
	# appear beside it: not state)
	diff -r -x '*-shm' "$WORK/$1" "$WORK/$1.before" >"$WORK/diff" 2>&1 || fail "$1 was changed: $(cat "$WORK/diff")"
}

say "the kept state dir of format 1 starts as the manager it was"
copy keeper
start keeper
wait_for 30 "keeper's control socket" ctl keeper cluster inspect
leads() { ctl keeper node ls --format json | jq -e '.[] | select(.hostname == "keeper" and .leader == true and .status == "ready")'; }
wait_for 60 "keeper leads and is ready" leads
ctl keeper service inspect kept >/dev/null || fail "service kept missing"
ctl keeper network inspect kept-net | jq -e '.subnet == "10.66.0.0/24"' >/dev/null ||
	fail "network kept-net: $(ctl keeper network inspect kept-net)"
ctl keeper service create --name added --replicas 0 --image x >/dev/null ||
	fail "a write on the kept state"
kill -TERM "${PID[keeper]}"
wait "${PID[keeper]}" || fail "keeper did not stop cleanly"
unset 'PID[keeper]'

say "the kept state dir of the format before (raft database 1, no certificates) is upgraded"
copy keeper-raft1 "$ROOT/tests/data/state-v1-raft1"
start keeper-raft1
wait_for 30 "the upgraded manager's control socket" ctl keeper-raft1 cluster inspect
grep -q 'raft storage upgraded from format 1 to 2' "$WORK/keeper-raft1.log" ||
	fail "no upgrade said in the log"
ctl keeper-raft1 service inspect oldsvc >/dev/null || fail "service oldsvc lost in the upgrade"
[ "$(ctl keeper-raft1 cluster inspect | jq -r .root_ca_sha256)" != null ] || fail "no root CA after the upgrade"
wait_for 30 "a write after the upgrade" ctl keeper-raft1 service create --name added --replicas 0 --image x
kill -TERM "${PID[keeper-raft1]}"
wait "${PID[keeper-raft1]}" || fail "the upgraded manager did not stop cleanly"
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
f = db.execute("SELECT value FROM raft_meta WHERE key = '"'"'format'"'"'").fetchone()[0]
sys.exit(0 if f == 2 else 1)' "$WORK/keeper-raft1/raft.db" || fail "raft.db not of format 2 after the upgrade"
start keeper-raft1
wait_for 30 "the upgraded manager starts again" ctl keeper-raft1 service inspect added
kill -TERM "${PID[keeper-raft1]}"
wait "${PID[keeper-raft1]}" || true
unset 'PID[keeper-raft1]'

say "a newer state format is refused, named, untouched"
copy newer
printf 'cswarm-state 2\n' >"$WORK/newer/VERSION"
refused newer 'VERSION says "cswarm-state 2", this build reads "cswarm-state 1" (a newer state format'

say "a raft database of an unknown format is refused, named, untouched"
copy rafty
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("UPDATE raft_meta SET value = 3 WHERE key = '"'"'format'"'"'"); db.commit(); db.close()' "$WORK/rafty/raft.db"
refused rafty "raft storage of format 3"
say "PASS"
