#!/bin/bash
# Undoes docker-up.sh DIR: removes the containers labelled cswarm.* that
# tests left on the daemon, and stops the dockerd only when docker-up.sh
# started it (DIR/started-by-us).
#
#   tests/integration/docker-down.sh DIR
set -uo pipefail

DIR=${1:?usage: docker-down.sh DIR}
say() { printf 'docker-down: %s\n' "$*" >&2; }

[ -f "$DIR/socket" ] || {
	say "no $DIR/socket: nothing to do"
	exit 0
}
sock=$(cat "$DIR/socket")
export DOCKER_HOST=unix://$sock

if [ -S "$sock" ] && timeout 10 docker version >/dev/null 2>&1; then
	ids=$(docker ps -aq --filter label=cswarm.task.id 2>/dev/null || true)
	if [ -n "$ids" ]; then
		say "removing $(wc -w <<<"$ids") cswarm container(s)"
		docker rm -f $ids >/dev/null 2>&1 || true
	fi
fi

if [ -f "$DIR/started-by-us" ]; then
	pid=""
	[ -f "$DIR/docker.pid" ] && pid=$(cat "$DIR/docker.pid")
	[ -z "$pid" ] && [ -f "$DIR/dockerd.spawned" ] && pid=$(cat "$DIR/dockerd.spawned")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		say "stopping dockerd $pid"
		kill -TERM "$pid"
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "dockerd $pid still there after 30s: killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	rm -f "$DIR/started-by-us" "$DIR/socket" "$DIR/dockerd.spawned"
fi
exit 0
