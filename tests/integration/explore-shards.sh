#!/bin/bash
# Exploring past one machine (issue 19): four shards of one exploration,
# merged, equal one unsharded run of it; a missing or repeated shard, or a
# shard of another exploration, is refused.
#
#   tests/integration/explore-shards.sh BUILD_DIR
#
# No Docker; about 20 s of CPU.
set -euo pipefail

BUILD=${1:?usage: explore-shards.sh BUILD_DIR}
SIM=$(cd "$BUILD" && pwd)/swarmsim
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/cswarm-shards.XXXXXX")
trap 'rm -rf "$T"' EXIT
say() { printf 'explore-shards: %s\n' "$*"; }
fail() {
	say "FAIL: $*"
	exit 1
}
cd "$ROOT"
# two files, so that a shard holds units of both; --swarm; a claim that
# generated faults break (tests/explore/claims.scn), so that failures.txt
# and the classes are not empty
FILES="scenarios/explore/replicated.scn tests/explore/claims.scn"
ARGS="--seeds 6 --from 40 --swarm --faults crash,restart,partition --quiet --jobs 2"

say "one unsharded run"
rc=0
"$SIM" explore $FILES $ARGS --out "$T/all" >"$T/all.out" || rc=$?
[ "$rc" -le 1 ] || fail "unsharded run: exit $rc"

say "four shards, then merge"
for i in 0 1 2 3; do
	src=0
	"$SIM" explore $FILES $ARGS --shard "$i/4" --out "$T/s$i" >"$T/s$i.out" || src=$?
	[ "$src" -le 1 ] || fail "shard $i/4: exit $src"
	n=$(grep -vc '^#' "$T/s$i/results.tsv" || true)
	[ "$n" = 3 ] || fail "shard $i/4 ran $n units, expected 3 of 12"
done
mrc=0
"$SIM" merge "$T/s2" "$T/s0" "$T/s3" "$T/s1" --out "$T/merged" >"$T/merge.out" || mrc=$?
[ "$mrc" = "$rc" ] || fail "merge exit $mrc, the unsharded run's $rc"
for f in results.tsv failures.txt summary.txt; do
	cmp "$T/all/$f" "$T/merged/$f" || fail "merged $f differs from the unsharded one"
done
diff <(grep -v wall_s "$T/all/metrics.json") <(grep -v wall_s "$T/merged/metrics.json") ||
	fail "merged metrics.json differs"
grep -q '"shard": "0/1"' "$T/merged/metrics.json" || fail "merged metrics not 0/1"
# the printed report: the unsharded run's lines, less its wall time
diff <(grep -v '^explore: results in' "$T/all.out" | sed 's/, wall [0-9.]*s//' |
	sort) <(grep -v '^merge: results in' "$T/merge.out" | sort) ||
	fail "merge's report differs from the unsharded run's"
# the shards cover each unit once
cat "$T"/s?/results.tsv | grep -v '^#' | cut -f1 | sort -n | uniq -d | grep . &&
	fail "a unit ran in two shards"
grep -q '"claim": [1-9]' "$T/all/metrics.json" || fail "no claim judged: the test sees too little"

say "missing, repeated and foreign shards are refused (exit 2)"
mrc=0
"$SIM" merge "$T/s0" "$T/s1" "$T/s3" >"$T/m.out" 2>&1 || mrc=$?
[ "$mrc" = 2 ] && grep -q 'shard 2/4 is missing' "$T/m.out" || fail "missing shard: exit $mrc"
mrc=0
"$SIM" merge "$T/s0" "$T/s0" "$T/s1" "$T/s2" >"$T/m.out" 2>&1 || mrc=$?
[ "$mrc" = 2 ] && grep -q 'given twice' "$T/m.out" || fail "repeated shard: exit $mrc"
"$SIM" explore $FILES --seeds 6 --from 41 --swarm --faults crash,restart,partition --quiet \
	--shard 2/4 --out "$T/other" >/dev/null || true
mrc=0
"$SIM" merge "$T/s0" "$T/s1" "$T/other" "$T/s3" >"$T/m.out" 2>&1 || mrc=$?
[ "$mrc" = 2 ] && grep -q 'another exploration' "$T/m.out" || fail "foreign shard: exit $mrc"
say "ok: 4 shards merged equal one run ($(head -1 "$T/all/summary.txt"))"
