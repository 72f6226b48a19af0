# Shell helpers shared by the real-daemon tests (cluster.sh,
# worker-restart.sh, tls.sh, security.sh, job.sh, health.sh, network.sh,
# tests/soak/soak.sh). Sourced, not run. The caller defines say (its own
# prefix) and, for fail, the exit path it traps; for ctl and start_node,
# SWARMD, SWARMCTL, WORK, DOCKER_SOCK and the arrays PORT and PID
# (declare -A). A script may define its own after sourcing this.

fail() {
	say "FAIL: $*" >&2
	# said again as the last file of the scripts' dumps of "$WORK"/*.log,
	# so that a CI log cut to its tail still shows why
	[ -d "${WORK:-}" ] && say "FAIL: $*" >"$WORK/zz-why-it-failed.log" 2>/dev/null
	exit 1
}

# PRODUCER | has GREP-ARGS...: grep -q's answer, read to the end. A
# `producer | grep -q` under pipefail fails when grep stops at the first
# match and the producer, still writing, dies of SIGPIPE (curl of a
# metrics scrape: stop 33's CI); GNU grep stops early also when its output
# is /dev/null, so has reads all of its input first.
has() {
	local in
	in=$(cat)
	grep -q "$@" <<<"$in"
}

# wait_for SECONDS WHAT COMMAND...: retries COMMAND every 0.5 s; fails the
# test naming WHAT after SECONDS.
wait_for() {
	local limit=$1 what=$2
	shift 2
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && fail "waited ${limit}s for: $what"
		sleep 0.5
	done
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port: prints a free port of 127.0.0.1 below the kernel's ephemeral
# range (20000 up to its start, 32768 by default), so that no connection's
# own end can hold it: a busy loopback (thousands of connections beside the
# test) took four picks in a row from the ephemeral range.
pick_port() {
	local p low=32768 high
	read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	[ "$low" -gt 21000 ] 2>/dev/null || low=50000
	while :; do
		p=$((20000 + RANDOM % (low - 20000)))
		port_free "$p" && { echo "$p"; return; }
	done
}

# ctl NODE ARGS...: swarmctl on NODE's control socket.
ctl() {
	local n=$1
	shift
	"$SWARMCTL" --socket "$WORK/$n.sock" "$@"
}

# start_node NAME [swarmd flags...]: swarmd NAME in the background, state in
# $WORK/NAME, log appended to $WORK/NAME.log, on a port of its own (PORT[NAME],
# kept across restarts), its pid in PID[NAME], Docker at $DOCKER_SOCK (a
# join token comes from the caller's SWARMD_JOIN_TOKEN or flags). A port
# picked free can be taken by someone else before swarmd binds it: a first
# start that dies of that tries another port (up to 5).
start_node() {
	local n=$1 fresh= tries=0
	shift
	[ -n "${PORT[$n]:-}" ] || {
		PORT[$n]=$(pick_port)
		fresh=1
	}
	while :; do
		"$SWARMD" --state-dir "$WORK/$n" --listen-addr "127.0.0.1:${PORT[$n]}" \
			--hostname "$n" --control-socket "$WORK/$n.sock" \
			--docker-socket "$DOCKER_SOCK" --log-level "${CSWARM_IT_LOG_LEVEL:-info}" "$@" \
			>>"$WORK/$n.log" 2>&1 &
		PID[$n]=$!
		[ -n "$fresh" ] || return 0
		sleep 0.3
		kill -0 "${PID[$n]}" 2>/dev/null && return 0
		tail -n 1 "$WORK/$n.log" | has "address already in use" || return 0
		tries=$((tries + 1))
		[ $tries -lt 5 ] || return 0
		say "$n: port ${PORT[$n]} was taken meanwhile; another"
		PORT[$n]=$(pick_port)
	done
}
