#!/bin/sh
# run.sh BINDIR SECONDS [--replay]: runs every libFuzzer target in BINDIR
# (fuzz_*) for SECONDS each, at nice 10, starting from its corpus in
# tests/fuzz/corpus/TARGET/ (read only: what a run finds goes to
# build/fuzz/corpus/TARGET/, crashes to build/fuzz/artifacts/). --replay
# first runs every corpus file once (the regression check of `make
# fuzz-smoke`). Prints one line per target with its runs and CPU seconds,
# and the total; exits 1 when a target found something (its input named).
set -u
bindir=$1
secs=$2
replay=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
out=build/fuzz
mkdir -p "$out/artifacts" "$out/logs"
status=0
total_cpu=0
for bin in "$bindir"/fuzz_*; do
	[ -x "$bin" ] || continue
	t=$(basename "$bin")
	t=${t#fuzz_}
	seeds="$here/corpus/$t"
	work="$out/corpus/$t"
	mkdir -p "$work" "$seeds"
	log="$out/logs/$t.log"
	if [ "$replay" = --replay ]; then
		if ! nice -n 10 "$bin" -runs=0 -rss_limit_mb=4096 \
			-artifact_prefix="$out/artifacts/$t-" "$seeds" >"$log" 2>&1; then
			echo "fuzz $t: FAILED replaying its corpus (see $log)"
			tail -n 20 "$log"
			status=1
			continue
		fi
	fi
	t0=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
	start=$(date +%s)
	nice -n 10 "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	# the fuzzer's CPU time: the children's user+system ticks of this shell
	cpu=$(awk -v t0="$t0" '{printf "%.1f", ($14 + $15 + $16 + $17 - t0) / 100}' /proc/$$/stat)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN {printf "%.1f", a + b}')
	if [ $rc -ne 0 ]; then
		echo "fuzz $t: FOUND something after $(($(date +%s) - start)) s (see $log):"
		grep -E 'property failed|ERROR:|SUMMARY|invariant|Test unit written' "$log" | head -n 8
		status=1
	else
		echo "fuzz $t: ${runs:-?} runs, ${cpu} s CPU, nothing found"
	fi
done
echo "fuzz: ${total_cpu} s CPU in all"
exit $status
