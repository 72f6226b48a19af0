#!/bin/bash
# Makes a dockerd available to the integration tests and prints its socket.
#
#   tests/integration/docker-up.sh DIR
#
# Uses a daemon that answers at $DOCKER_HOST (unix://PATH) or
# /var/run/docker.sock; else starts one of its own on DIR/docker.sock (data
# and exec roots in DIR, no iptables, no bridge), installing docker.io and
# busybox-static first when missing (as root), and leaves DIR/started-by-us
# so that docker-down.sh DIR stops it. Then builds the test image
# cswarm-test:busybox (FROM scratch, busybox-static's busybox) unless the
# daemon has it. Writes the socket path to DIR/socket and prints it as the
# last line of its output; progress goes to stderr.
set -euo pipefail

DIR=${1:?usage: docker-up.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE=cswarm-test:busybox
WAIT_S=60

say() { printf 'docker-up: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}
# answers SOCK: true when a daemon answers `docker version` on SOCK
answers() {
	[ -S "$1" ] && DOCKER_HOST="unix://$1" timeout 10 docker version >/dev/null 2>&1
}

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# ---------------------------------------------------------------- tools
missing=""
command -v docker >/dev/null 2>&1 || missing="$missing docker.io"
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
[ -x /bin/busybox ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
	missing=$(tr ' ' '\n' <<<"$missing" | sort -u | xargs)
	[ "$(id -u)" = 0 ] || die "missing $missing; run: sudo apt-get install -y $missing"
	say "installing $missing"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
		apt-get update -qq >/dev/null 2>&1 || true
		apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
			die "apt-get install $missing failed"
	fi
fi

# ---------------------------------------------------------------- a daemon
sock=""
candidates=("$DIR/docker.sock")
case "${DOCKER_HOST:-}" in
unix://?*) candidates+=("${DOCKER_HOST#unix://}") ;;
esac
candidates+=(/var/run/docker.sock)
for c in "${candidates[@]}"; do
	if answers "$c"; then
		sock=$c
		break
	fi
done

if [ -z "$sock" ]; then
	[ "$(id -u)" = 0 ] || die "no dockerd answers, and starting one needs root"
	sock=$DIR/docker.sock
	[ ${#sock} -lt 100 ] || die "socket path too long for a unix socket: $sock"
	rm -f "$sock" "$DIR/docker.pid"
	mkdir -p "$DIR/data" "$DIR/exec"
	say "starting dockerd on $sock (log: $DIR/dockerd.log)"
	setsid dockerd --data-root "$DIR/data" --exec-root "$DIR/exec" \
		-H "unix://$sock" --pidfile "$DIR/docker.pid" \
		--iptables=false --bridge=none >"$DIR/dockerd.log" 2>&1 </dev/null &
	echo $! >"$DIR/dockerd.spawned"
	touch "$DIR/started-by-us"
	for ((i = 0; i < WAIT_S * 2; i++)); do
		answers "$sock" && break
		if ! kill -0 "$(cat "$DIR/dockerd.spawned")" 2>/dev/null; then
			tail -n 30 "$DIR/dockerd.log" >&2
			die "dockerd exited"
		fi
		sleep 0.5
	done
	if ! answers "$sock"; then
		tail -n 30 "$DIR/dockerd.log" >&2
		die "dockerd did not answer within ${WAIT_S}s"
	fi
fi
echo "$sock" >"$DIR/socket"
export DOCKER_HOST=unix://$sock

# ---------------------------------------------------------------- the image
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
	ctx=$(mktemp -d "${TMPDIR:-/tmp}/cswarm-image.XXXXXX")
	trap 'rm -rf "$ctx"' EXIT
	cp "$HERE/image/Dockerfile" "$ctx/Dockerfile"
	cp /bin/busybox "$ctx/busybox"
	say "building $IMAGE"
	# the classic builder: no BuildKit, no registry
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$ctx" >"$DIR/build.log" 2>&1; then
		tail -n 20 "$DIR/build.log" >&2
		die "building $IMAGE failed"
	fi
fi
echo "$sock"
