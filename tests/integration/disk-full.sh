#!/bin/bash
# A manager whose disk fills up: the failed write is fatal (the daemon says
# why and exits 3, nothing half-written carries on), nothing it
# acknowledged is lost, and once there is room again it starts on what its
# disk holds. The state directory is on a small tmpfs the test mounts
# (root needed) and unmounts, also on failure. No Docker needed: services
# of 0 replicas.
#
#   tests/integration/disk-full.sh BUILD_DIR
set -euo pipefail

BUILD=$(cd "${1:?usage: disk-full.sh BUILD_DIR}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/cswarm-full.XXXXXX")
DISK=$T/disk
PID=""
say() { printf 'disk-full: %s\n' "$*"; }
fail() {
	say "FAIL: $*"
	[ -f "$T/swarmd.log" ] && tail -n 20 "$T/swarmd.log" >&2
	exit 1
}
cleanup() {
	set +e
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	mountpoint -q "$DISK" && umount "$DISK"
	rm -rf "$T"
}
trap cleanup EXIT
if [ "$(id -u)" != 0 ]; then
	say "SKIP: mounting a small disk needs root"
	exit 0
fi
mkdir -p "$DISK"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$DISK" || fail "cannot mount a tmpfs"

start() {
	"$BUILD/swarmd" --state-dir "$DISK/st" --listen-addr 127.0.0.1:0 \
		--docker-socket "$T/no-docker.sock" --hostname full1 >>"$T/swarmd.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do
		"$BUILD/swarmctl" --socket "$DISK/st/swarmd.sock" node ls >/dev/null 2>&1 && return
		kill -0 "$PID" 2>/dev/null || fail "swarmd exited at start"
		sleep 0.1
	done
	fail "swarmd did not answer within 10 s"
}
ctl() { "$BUILD/swarmctl" --socket "$DISK/st/swarmd.sock" "$@"; }

say "a manager on a 4 MiB disk, filled to its last few KB"
start
ctl service create --name first --replicas 0 --image none >/dev/null || fail "first create"
free_kb=$(df -k --output=avail "$DISK" | tail -n 1)
dd if=/dev/zero of="$DISK/filler" bs=1k count=$((free_kb - 48)) status=none 2>/dev/null || true

say "services created until a write fails"
acked=()
env_value=$(head -c 2000 /dev/zero | tr '\0' x)
for i in $(seq 1 400); do
	kill -0 "$PID" 2>/dev/null || break
	if ctl service create --name "s$i" --replicas 0 --image none \
		--env "PAD=$env_value" >/dev/null 2>&1; then
		acked+=("s$i")
	fi
done
for _ in $(seq 100); do
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$PID" 2>/dev/null && fail "the disk is full and swarmd still runs (${#acked[@]} creates acknowledged)"
rc=0
wait "$PID" || rc=$?
PID=""
[ "$rc" = 3 ] || fail "swarmd exited $rc, expected 3 (a failed write)"
grep -q 'fatal' "$T/swarmd.log" || fail "swarmd did not say why it stopped"
grep -qiE 'full|disk|I/O' "$T/swarmd.log" || fail "swarmd's words do not name the disk"
say "swarmd exited 3 after ${#acked[@]} acknowledged creates: $(grep -m1 -o 'why="[^"]*"' "$T/swarmd.log")"

say "room again: it starts on what its disk holds, nothing acknowledged lost"
rm -f "$DISK/filler"
start
names=$(ctl --format json service ls | jq -r '.[].name')
for s in first "${acked[@]}"; do
	grep -qx "$s" <<<"$names" || fail "service $s was acknowledged and is gone"
done
ctl service create --name after --replicas 0 --image none >/dev/null || fail "create after the restart"
kill -TERM "$PID"
wait "$PID" || fail "swarmd did not stop cleanly"
PID=""
say PASS
