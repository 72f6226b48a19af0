# Shell helpers shared by the real-daemon tests (cluster.sh,
# worker-restart.sh, tests/soak/soak.sh). Sourced, not run. The caller
# defines say (its own prefix) and, for fail, the exit path it traps.

fail() {
	say "FAIL: $*" >&2
	exit 1
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

# pick_port: prints a free port of 127.0.0.1 in 20000..49999.
pick_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		port_free "$p" && { echo "$p"; return; }
	done
}
