#!/bin/bash
# Issue 13, "what must hold", with real daemons (no Docker needed: the
# services here run no container):
#   - a worker's own certificate (its key and certificate from its state
#     dir) can send no Raft message, open no session as another node and
#     report no other node's tasks: each is refused (`msg="refused"`), the
#     term does not move, the cluster goes on;
#   - node certificates renew by themselves with a short life (cluster
#     update --cert-expiry 1m) and nothing restarts;
#   - a root CA rotation finishes with every node on the new root and no
#     restart, and the join tokens name the new root;
#   - a removed node's certificate is refused: its daemon exits 1 saying so;
#   - a manager with autolock stays locked after a restart until `swarmctl
#     node unlock` (a wrong key refused), or starts unlocked with
#     --unlock-key-file.
# Kills its daemons on exit, whatever happens.
#
#   tests/integration/security.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/cswarm-sec.XXXXXX)
declare -A PID PORT

say() { printf 'security: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f")" >&2
			tail -n 20 "$f" >&2
		done
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# fail, wait_for, port_free, pick_port, ctl, start_node
. "$(dirname "$0")/lib.sh"
DOCKER_SOCK=$WORK/no-docker.sock # no Docker: the nodes run no task here

for tool in jq openssl python3; do
	command -v $tool >/dev/null || fail "$tool is missing (make deps installs it)"
done
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"

alive() { kill -0 "${PID[$1]}" 2>/dev/null; }
node_id() { ctl m1 node ls --format json | jq -r ".[] | select(.hostname == \"$1\") | .id"; }
ready_count() { ctl m1 node ls --format json | jq '[.[] | select(.status == "ready")] | length'; }
term() { ctl m1 cluster inspect | jq -r .leader_term; }

# ---------------------------------------------------------------- cluster
say "a cluster: m1, and w1 and w2 (worker token, from the environment)"
start_node m1
wait_for 30 "m1's control socket" ctl m1 cluster inspect
WTOKEN=$(ctl m1 cluster join-token worker)
# short certificates for the nodes that join from now on
ctl m1 cluster update --cert-expiry 1m >/dev/null
SWARMD_JOIN_TOKEN=$WTOKEN start_node w1 --join-addr "127.0.0.1:${PORT[m1]}"
SWARMD_JOIN_TOKEN=$WTOKEN start_node w2 --join-addr "127.0.0.1:${PORT[m1]}"
three_ready() { [ "$(ready_count)" -eq 3 ]; }
wait_for 60 "3 nodes ready" three_ready
W1=$(node_id w1)
W2=$(node_id w2)
[ -n "$W1" ] && [ -n "$W2" ] || fail "no node ids: '$W1' '$W2'"
T0=$(term)

# ---------------------------------------------------------------- a worker's key
say "w1's own certificate: no Raft, no session as w2, no report of w2's tasks"
openssl x509 -inform der -in "$WORK/w1/tls/node.crt" -out "$WORK/w1.pem"
openssl pkey -inform der -in "$WORK/w1/tls/node.key" -out "$WORK/w1.key"
python3 - "${PORT[w1]}" "$W1" "$W2" >"$WORK/forged.bin" <<'EOF'
import struct, sys

def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload

def frame(body):
    return struct.pack(">I", len(body)) + body

port, w1, w2 = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3], 16)
out = frame(b"CSW1127.0.0.1:" + port.encode())
# Wire.raft: a RequestVote (type 3) from w1's raft id at term 2^64-1
vote = field(1, 0, 3) + field(2, 0, w1) + field(4, 0, 2**64 - 1) + field(5, 0, w1)
out += frame(field(1, 2, vote))
# Wire.session: a SessionRequest naming w2
out += frame(field(5, 2, field(1, 0, w2) + field(2, 2, b"w2")))
# Wire.status_update naming w2, one task FAILED (state 10)
task = field(1, 0, 12345) + field(6, 2, field(1, 0, 10))
out += frame(field(10, 2, field(1, 0, w2) + field(2, 0, 1) + field(3, 2, task)))
sys.stdout.buffer.write(out)
EOF
(cat "$WORK/forged.bin"; sleep 3) |
	timeout 10 openssl s_client -quiet -connect "127.0.0.1:${PORT[m1]}" -tls1_3 \
		-cert "$WORK/w1.pem" -key "$WORK/w1.key" >"$WORK/forge.out" 2>&1 || true
refused() { grep -q "msg=\"refused\" what=$1 .*node=$W1 why=\"$2\"" "$WORK/m1.log"; }
wait_for 10 "the Raft message refused" refused raft "raft from a certificate that is not a manager's"
refused session "frame for another node than its certificate" ||
	fail "the session as w2 was not refused"
refused status_update "frame for another node than its certificate" ||
	fail "the status report for w2 was not refused"
[ "$(term)" = "$T0" ] || fail "the term moved: $T0 -> $(term)"
for n in m1 w1 w2; do alive $n || fail "$n died"; done
[ "$(ready_count)" -eq 3 ] || fail "a node is no longer ready"

# ---------------------------------------------------------------- renewal
say "w1's one-minute certificate renews by itself (50-80% of its life), twice"
renewed_twice() { [ "$(grep -c 'msg="certificate installed".*life_ms' "$WORK/w1.log")" -ge 3 ]; }
wait_for 120 "w1's certificate renewed twice" renewed_twice
alive w1 || fail "w1 restarted or died"
[ "$(grep -c '"started"' "$WORK/w1.log")" -eq 1 ] || fail "w1 started more than once"
[ "$(ready_count)" -eq 3 ] || fail "a node is no longer ready after renewals"

# ---------------------------------------------------------------- CA rotation
say "root CA rotation: every node on the new root, nothing restarts"
OLDROOT=$(ctl m1 cluster inspect | jq -r .root_ca_sha256)
ctl m1 ca rotate >/dev/null
rotated() {
	local j
	j=$(ctl m1 cluster inspect)
	[ "$(jq -r .ca_rotations <<<"$j")" = 1 ] && [ "$(jq -r .ca_rotation <<<"$j")" = none ]
}
wait_for 120 "the rotation to finish" rotated
NEWROOT=$(ctl m1 cluster inspect | jq -r .root_ca_sha256)
[ "$NEWROOT" != "$OLDROOT" ] || fail "the root did not change"
[ "$(ctl m1 cluster join-token worker)" != "$WTOKEN" ] || fail "the worker token still names the old root"
for n in m1 w1 w2; do alive $n || fail "$n died during the rotation"; done
[ "$(grep -c '"started"' "$WORK/w1.log")" -eq 1 ] || fail "w1 restarted during the rotation"
wait_for 30 "3 nodes ready after the rotation" three_ready

# ---------------------------------------------------------------- removal
say "w2 removed: its certificate is refused, its daemon exits 1"
kill -TERM "${PID[w2]}"
wait "${PID[w2]}" || true
ctl m1 node rm --force w2 >/dev/null
start_node w2
set +e
timeout 30 tail --pid="${PID[w2]}" -f /dev/null
wait "${PID[w2]}"
rc=$?
set -e
[ $rc -eq 1 ] || fail "removed w2: exit $rc (expected 1)"
grep -q "removed from the cluster" "$WORK/w2.log" || fail "w2 did not say it was removed"
unset 'PID[w2]'

# ---------------------------------------------------------------- autolock
say "autolock: m1 restarted stays locked until unlocked"
KEY=$(ctl m1 cluster update --autolock=true | awk '/SWMKEY-1-/ {print $1}')
[[ $KEY == SWMKEY-1-* ]] || fail "no unlock key printed: '$KEY'"
[ "$(ctl m1 cluster unlock-key)" = "$KEY" ] || fail "cluster unlock-key differs"
sleep 2 # every manager seals its keys with it (the watch, 10 times a tick)
[ "$(head -c 8 "$WORK/m1/tls/node.key")" = CSWSEAL1 ] ||
	fail "m1's TLS key is not sealed with the unlock key"
kill -TERM "${PID[m1]}"
wait "${PID[m1]}" || true
start_node m1
locked() { grep -q 'msg="manager locked' "$WORK/m1.log"; }
wait_for 30 "m1 saying it is locked" locked
wait_for 10 "m1's control socket" test -S "$WORK/m1.sock"
ctl m1 node ls >/dev/null 2>"$WORK/ls.err" && fail "a locked manager answered node ls"
grep -q "locked" "$WORK/ls.err" || fail "node ls on a locked manager: $(cat "$WORK/ls.err")"
echo "SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" |
	ctl m1 node unlock >/dev/null 2>"$WORK/unlock.err" && fail "a wrong key unlocked m1"
grep -q "wrong unlock key" "$WORK/unlock.err" || fail "wrong key: $(cat "$WORK/unlock.err")"
echo "$KEY" | ctl m1 node unlock >/dev/null || fail "the right key did not unlock m1"
wait_for 30 "m1 serving again" ctl m1 node ls
echo "$KEY" >"$WORK/unlock.key"
chmod 600 "$WORK/unlock.key"
kill -TERM "${PID[m1]}"
wait "${PID[m1]}" || true
start_node m1 --unlock-key-file "$WORK/unlock.key"
wait_for 30 "m1 serving with --unlock-key-file" ctl m1 node ls
ctl m1 cluster update --autolock=false >/dev/null
clear_key() { [ "$(head -c 8 "$WORK/m1/tls/node.key")" != CSWSEAL1 ]; }
wait_for 10 "m1's TLS key in the clear again (autolock off)" clear_key
two_ready() { [ "$(ready_count)" -ge 2 ]; }
wait_for 60 "m1 and w1 ready" two_ready
say "ok"
