#!/bin/bash
# How tests/data/state-v1/ was made (issue 20: a state directory of each
# format stays in the repo; tests/integration/state-format.sh starts from a
# copy of it). A one-manager cluster whose node certificate lives 10 years
# (cert expiry set, then a root CA rotation re-issues it), with a network
# and a service of no replicas, stopped cleanly (no WAL left).
#
# tests/data/state-v1-raft1/ is the format before it (VERSION 1, the raft
# database of format 1: payloads in the clear, no certificates, the first
# manager's join token of the old form), made by swarmd built from commit
# 18dd387 (the last before raft format 2: `git archive 18dd387 | tar -x`,
# `make build/swarmd build/swarmctl`): a new cluster on 127.0.0.1:47312,
# hostname oldkeeper, `service create --name oldsvc --replicas 0 --image
# cswarm-test:busybox`, SIGTERM.
#
#   tests/data/make-state-v1.sh BIN_DIR OUT_DIR
set -euo pipefail
BIN=$1
OUT=$2
T=$(mktemp -d /tmp/cswarm-mkstate.XXXXXX)
CTL=("$BIN/swarmctl" --socket "$T/ctl.sock")
[ ! -e "$OUT" ] || { echo "$OUT exists" >&2; exit 2; }
"$BIN/swarmd" --state-dir "$OUT" --listen-addr 127.0.0.1:47311 --hostname keeper \
	--control-socket "$T/ctl.sock" --docker-api-socket "$T/docker.sock" \
	--docker-socket /nonexistent.sock >"$T/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$T"' EXIT
until "${CTL[@]}" cluster inspect >/dev/null 2>&1; do sleep 0.3; done
"${CTL[@]}" cluster update --cert-expiry 87600h >/dev/null
"${CTL[@]}" ca rotate >/dev/null
until "${CTL[@]}" cluster inspect | grep -q '"ca_rotation": *"none"'; do sleep 0.5; done
"${CTL[@]}" network create --subnet 10.66.0.0/24 kept-net >/dev/null
"${CTL[@]}" service create --name kept --replicas 0 --image cswarm-test:busybox >/dev/null
sleep 2
kill -TERM $PID
wait $PID || true
grep "not_after" "$T/log" | tail -2
