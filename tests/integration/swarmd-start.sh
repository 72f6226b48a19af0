#!/bin/bash
# swarmd refuses to start, with a clear message and exit 1, when what it
# needs is not right; it never aborts, and leaves the state as it was.
#
#   tests/integration/swarmd-start.sh BUILD_DIR
#
# No Docker needed (the daemons are stopped before they run a task).
set -euo pipefail

BUILD=${1:?usage: swarmd-start.sh BUILD_DIR}
SWARMD=$(cd "$BUILD" && pwd)/swarmd
T=$(mktemp -d "${TMPDIR:-/tmp}/cswarm-start.XXXXXX")
trap 'rm -rf "$T"' EXIT
say() { printf 'swarmd-start: %s\n' "$*"; }
fail() {
	say "FAIL: $*"
	exit 1
}
# expect_exit1 WHAT PATTERN ARGS...: swarmd exits 1 within 10 s and its
# stderr matches PATTERN
expect_exit1() {
	local what=$1 pat=$2 rc=0
	shift 2
	timeout 10 "$SWARMD" --docker-socket "$T/no-docker.sock" "$@" >"$T/out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || { cat "$T/out"; fail "$what: exit $rc, expected 1"; }
	grep -q -- "$pat" "$T/out" || { cat "$T/out"; fail "$what: no '$pat' in its words"; }
}

say "control socket on a regular file, under a file, in no directory"
: >"$T/file"
expect_exit1 "socket on a file" "control socket: $T/file exists and is not a socket" \
	--state-dir "$T/s1" --listen-addr 127.0.0.1:0 --control-socket "$T/file"
expect_exit1 "socket under a file" "$T/file is not a directory" \
	--state-dir "$T/s2" --listen-addr 127.0.0.1:0 --control-socket "$T/file/sock"
expect_exit1 "socket in no directory" "directory $T/none: No such file or directory" \
	--state-dir "$T/s3" --listen-addr 127.0.0.1:0 --control-socket "$T/none/sock"

say "join tokens from a file or the environment, and their mistakes"
expect_exit() {
	local code=$1 what=$2 pat=$3 rc=0
	shift 3
	timeout 10 "$SWARMD" --docker-socket "$T/no-docker.sock" "$@" >"$T/out" 2>&1 || rc=$?
	[ "$rc" = "$code" ] || { cat "$T/out"; fail "$what: exit $rc, expected $code"; }
	grep -q -- "$pat" "$T/out" || { cat "$T/out"; fail "$what: no '$pat' in its words"; }
}
expect_exit 2 "token file missing" "--join-token-file $T/nofile: No such file" \
	--state-dir "$T/j1" --listen-addr 127.0.0.1:0 --join-addr 127.0.0.1:9 \
	--join-token-file "$T/nofile"
: >"$T/empty"
expect_exit 2 "token file empty" "empty (expected the token on its first line)" \
	--state-dir "$T/j2" --listen-addr 127.0.0.1:0 --join-addr 127.0.0.1:9 \
	--join-token-file "$T/empty"
echo "not-a-token" >"$T/tok"
expect_exit 1 "token file read" "--join-token: token does not start with SWMTKN-1-" \
	--state-dir "$T/j3" --listen-addr 127.0.0.1:0 --join-addr 127.0.0.1:9 \
	--join-token-file "$T/tok"
SWARMD_JOIN_TOKEN=env-token expect_exit 1 "token from the environment" \
	"--join-token: token does not start with SWMTKN-1-" \
	--state-dir "$T/j4" --listen-addr 127.0.0.1:0 --join-addr 127.0.0.1:9
expect_exit 1 "token on the command line warns" "shows in ps" \
	--state-dir "$T/j5" --listen-addr 127.0.0.1:0 --join-addr 127.0.0.1:9 \
	--join-token bad

say "a state table that cannot be read is not a fresh directory"
(umask 022 && exec "$SWARMD" --docker-socket "$T/no-docker.sock" --state-dir "$T/st" \
	--listen-addr 127.0.0.1:0 >"$T/first.log" 2>&1) &
pid=$!
for _ in $(seq 50); do
	[ -S "$T/st/swarmd.sock" ] && break
	sleep 0.1
done
kill -TERM "$pid"
wait "$pid" || fail "the first start did not stop cleanly"
# private whatever the umask it ran under
for f in "$T/st" "$T"/st/* "$T"/st/tls/*; do
	[ -e "$f" ] || continue
	m=$(stat -c %a "$f")
	case "$f" in
	*.sock) ;;
	"$T/st" | "$T/st/tls") [ "$m" = 700 ] || fail "$f is $m, expected 700" ;;
	*) [ "$m" = 600 ] || fail "$f is $m, expected 600" ;;
	esac
done
# a node with state needs no join flags, and leftover ones (a unit that
# kept --join-addr) do not stop it (issue 14, item 11: refused before)
"$SWARMD" --docker-socket "$T/no-docker.sock" --state-dir "$T/st" \
	--listen-addr 127.0.0.1:0 --join-addr 127.0.0.1:9 >"$T/again.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
	grep -q '"started"' "$T/again.log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$T/again.log"; fail "a leftover --join-addr stopped a node with state"; }
	sleep 0.1
done
grep -q 'the join flags are ignored' "$T/again.log" || { cat "$T/again.log"; fail "no word of the ignored --join-addr"; }
kill -TERM "$pid"
wait "$pid" || fail "the restart with a leftover --join-addr did not stop cleanly"
# ... but on a first start, an address without a token is a mistake
expect_exit 2 "first start with an address and no token" "go together on a node's first start" \
	--state-dir "$T/j6" --listen-addr 127.0.0.1:0 --join-addr 127.0.0.1:9
# the default address pool (issue 15): bad values stop it at once (status
# 2, bad usage), with what was expected; no state is made
say "--default-addr-pool and --default-addr-pool-mask-len: bad values"
expect_exit 2 "pool not a subnet" "--default-addr-pool 'banana': expected an IPv4 subnet a.b.c.d/N" \
	--state-dir "$T/p1" --listen-addr 127.0.0.1:0 --default-addr-pool banana
expect_exit 2 "pool with host bits" "--default-addr-pool '10.20.0.1/16': host bits set after /16" \
	--state-dir "$T/p2" --listen-addr 127.0.0.1:0 --default-addr-pool 10.20.0.1/16
expect_exit 2 "mask length out of range" "--default-addr-pool-mask-len '31': expected a prefix length 16..30" \
	--state-dir "$T/p3" --listen-addr 127.0.0.1:0 --default-addr-pool-mask-len 31
expect_exit 2 "mask length shorter than the pool" "--default-addr-pool-mask-len 16: shorter than the pool's /20" \
	--state-dir "$T/p4" --listen-addr 127.0.0.1:0 --default-addr-pool 10.20.0.0/20 \
	--default-addr-pool-mask-len 16
expect_exit 2 "pool when joining" "are for creating a cluster, not with --join-addr" \
	--state-dir "$T/p5" --listen-addr 127.0.0.1:0 --default-addr-pool 10.20.0.0/16 \
	--join-addr 127.0.0.1:9 --join-token x
for d in p1 p2 p3 p4 p5; do [ ! -e "$T/$d" ] || fail "a bad pool flag left state in $T/$d"; done
# a table whose rows fail to read (sqlite's integrity check passes: the
# error comes at the first row), and a page of garbage
sqlite3 "$T/st/swarmd.db" "ALTER TABLE swarmd RENAME TO old;
	CREATE VIEW swarmd AS SELECT 'role' AS key, abs(-9223372036854775807 - 1) AS value;"
before=$(sha256sum "$T"/st/*.db)
expect_exit1 "unreadable state rows" "cannot read the state in $T/st: .*integer overflow" \
	--state-dir "$T/st" --listen-addr 127.0.0.1:0
after=$(sha256sum "$T"/st/*.db)
[ "$before" = "$after" ] || fail "the state files changed"
root=$(sqlite3 "$T/st/swarmd.db" "SELECT rootpage FROM sqlite_master WHERE name='old'")
psize=$(sqlite3 "$T/st/swarmd.db" "PRAGMA page_size")
head -c "$psize" /dev/urandom | dd of="$T/st/swarmd.db" bs="$psize" seek=$((root - 1)) \
	conv=notrunc status=none
before=$(sha256sum "$T"/st/*.db)
expect_exit1 "corrupt state page" "cannot read the state in $T/st: .*swarmd.db" \
	--state-dir "$T/st" --listen-addr 127.0.0.1:0
after=$(sha256sum "$T"/st/*.db)
[ "$before" = "$after" ] || fail "the state files changed"
say PASS
