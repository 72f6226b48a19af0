#!/bin/bash
# The soak: real managers and workers (build/swarmd processes on 127.0.0.1,
# each with its own state directory and port, all on one dockerd, told apart
# by the container label cswarm.node.id = hostname) under a seeded schedule
# of random faults for a set time, checked against Docker's ground truth and
# the control API:
#
#   faults   kill      SIGKILL of a daemon (process death: containers keep
#                      running), started again after a while
#            crash     SIGKILL and removal of the node's containers (machine
#                      death, disk kept), started again after a while
#            stop      SIGSTOP for a while, then SIGCONT
#            drain     availability drain for a while, then active
#            scale, env, image, create, rm   service changes (an env or
#                      image change is a stop-first rolling update)
#            Never more than a minority of managers down (killed, crashed
#            or stopped) at once, never a node hit twice at once.
#   checks   1  slot twice: once the nodes of its containers have been up
#               and ready for SOAK_SETTLE_S, no replicated slot (service id,
#               slot) runs in two containers for longer than SOAK_GRACE_S
#           1b  no container whose task the store has stopped or deleted
#               keeps running on such a settled node beyond SOAK_GRACE_S
#            2  nothing acknowledged is lost: each service exists (or not)
#               with the replicas, image and env of its last acknowledged
#               change (or of a later change whose answer was an error)
#            3  after the faults (every daemon running, every node active)
#               the cluster converges within SOAK_CONVERGE_S: each service
#               runs exactly its replicas, each node ready, and no container
#               (running or exited) is left whose task the store does not
#               want (running: desired running; any: the task exists)
#            a daemon that exits by itself is a violation too.
#
#   tests/soak/soak.sh [BIN_DIR]      (default build/)
#
# Knobs (environment): SOAK_SECONDS (600) of faults, SOAK_SEED (random;
# printed: the same seed gives the same fault schedule), SOAK_MANAGERS (3),
# SOAK_WORKERS (3), SOAK_CONVERGE_S (120), SOAK_SETTLE_S (20),
# SOAK_GRACE_S (30), SOAK_CHECK_S (5), SOAK_LOG_DIR (where a failed run
# keeps its logs; default build/soak-logs/seed-SEED), SOAK_KEEP=1 keeps them
# after a pass too, SOAK_PRINT=1 prints the schedule and exits, SOAK_PLANT=1
# tests the checks: it breaks the cluster behind its back halfway (see plant).
#
# Exit 0: no violation. 1: a violation (logs, the timeline of faults and
# snapshots kept in the directory it names). 2: the cluster could not be set
# up. It removes only containers whose cswarm.node.id starts with its own
# prefix (soak-TAG-), so that it can share a dockerd with other tests.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
IMAGE=cswarm-test:busybox

SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_SEED=${SOAK_SEED:-$(((RANDOM << 15 | RANDOM) % 1000000000))}
SOAK_MANAGERS=${SOAK_MANAGERS:-3}
SOAK_WORKERS=${SOAK_WORKERS:-3}
SOAK_CONVERGE_S=${SOAK_CONVERGE_S:-120}
SOAK_SETTLE_S=${SOAK_SETTLE_S:-20}
SOAK_GRACE_S=${SOAK_GRACE_S:-30}
SOAK_CHECK_S=${SOAK_CHECK_S:-5}
SOAK_LOG_DIR=${SOAK_LOG_DIR:-$ROOT/build/soak-logs/seed-$SOAK_SEED}
for v in SOAK_SECONDS SOAK_SEED SOAK_MANAGERS SOAK_WORKERS SOAK_CONVERGE_S \
	SOAK_SETTLE_S SOAK_GRACE_S SOAK_CHECK_S; do
	[[ ${!v} =~ ^[0-9]+$ ]] || {
		echo "soak: $v must be a whole number, got '${!v}'" >&2
		exit 2
	}
done
[ "$SOAK_MANAGERS" -ge 1 ] && [ "$SOAK_WORKERS" -ge 1 ] || {
	echo "soak: at least one manager and one worker" >&2
	exit 2
}

TAG=$(printf '%04x' $(($$ % 65536)))
PREFIX=soak-$TAG-
NODES=()
MANAGERS=()
for ((i = 1; i <= SOAK_MANAGERS; i++)); do
	NODES+=("m$i")
	MANAGERS+=("m$i")
done
for ((i = 1; i <= SOAK_WORKERS; i++)); do NODES+=("w$i"); done
MAX_MGR_DOWN=$(((SOAK_MANAGERS - 1) / 2))
MAX_FAULTED=2 # nodes in a fault (down, stopped or drained) at once
[ ${#NODES[@]} -le 3 ] && MAX_FAULTED=1

say() { printf 'soak: %s\n' "$*"; }

# ---------------------------------------------------------------- the schedule
# A 31-bit LCG of our own: the schedule depends on the seed alone (not on
# bash's RANDOM, nor on how long anything took).
RNG=$((SOAK_SEED % 2147483648))
R=0
rnd() { # rnd LO HI: R = a number in [LO, HI]
	RNG=$(((RNG * 1103515245 + 12345) % 2147483648))
	R=$(((RNG >> 8) % ($2 - $1 + 1) + $1))
}

# Prints "AT_MS KIND ARG..." lines, in time order. Node faults come with
# their undo (start, cont, activate); service ops name exact values.
gen_schedule() {
	local t=0 end=$((SOAK_SECONDS * 1000)) n k d busy down faulted i
	local -A busy=() # node -> ms until which it is in a fault (+ recovery)
	local -A downu=() # manager -> ms until which it is down
	local svcs=(soak-s1 soak-s2) next=3 gen=0
	local -A img=([soak-s1]=name [soak-s2]=name)
	while :; do
		rnd 4000 15000
		t=$((t + R))
		[ $t -lt $end ] || break
		# kinds by weight: kill 3, crash 2, stop 2, drain 2, scale 3,
		# env 2, image 1, create 1, rm 1
		rnd 1 17
		case $R in
		[1-3]) k="kill" ;; [4-5]) k="crash" ;; [6-7]) k="stop" ;; [8-9]) k="drain" ;;
		1[0-2]) k="scale" ;; 1[3-4]) k="env" ;; 15) k="image" ;; 16) k="create" ;;
		*) k="rm" ;;
		esac
		case $k in
		kill | crash | stop | drain)
			faulted=0
			down=0
			for n in "${NODES[@]}"; do
				[ "${busy[$n]:-0}" -gt $t ] && faulted=$((faulted + 1))
				[ "${downu[$n]:-0}" -gt $t ] && down=$((down + 1))
			done
			[ $faulted -lt $MAX_FAULTED ] || continue
			rnd 0 $((${#NODES[@]} - 1))
			n=${NODES[$R]}
			[ "${busy[$n]:-0}" -le $t ] || continue
			if [[ $n == m* && $k != drain ]]; then
				[ $down -lt $MAX_MGR_DOWN ] || continue
			fi
			case $k in
			kill | crash) rnd 3000 30000 ;;
			stop) rnd 2000 25000 ;;
			drain) rnd 10000 40000 ;;
			esac
			d=$R
			case $k in
			kill | crash) echo "$t $k $n" && echo "$((t + d)) start $n" ;;
			stop) echo "$t stop $n" && echo "$((t + d)) cont $n" ;;
			drain) echo "$t drain $n" && echo "$((t + d)) activate $n" ;;
			esac
			# a manager back needs to catch up before the next goes
			busy[$n]=$((t + d + 10000))
			[[ $n == m* && $k != drain ]] && downu[$n]=$((t + d + 10000))
			;;
		create)
			[ ${#svcs[@]} -lt 4 ] || continue
			rnd 1 4
			echo "$t create soak-s$next $R"
			svcs+=("soak-s$next")
			img[soak-s$next]=name
			next=$((next + 1))
			;;
		rm)
			[ ${#svcs[@]} -gt 1 ] || continue
			rnd 0 $((${#svcs[@]} - 1))
			echo "$t rm ${svcs[$R]}"
			unset "svcs[$R]"
			svcs=("${svcs[@]}")
			;;
		scale | env | image)
			rnd 0 $((${#svcs[@]} - 1))
			i=$R
			case $k in
			scale) rnd 1 5 && echo "$t scale ${svcs[$i]} $R" ;;
			env) gen=$((gen + 1)) && echo "$t env ${svcs[$i]} $gen" ;;
			image)
				[ "${img[${svcs[$i]}]}" = name ] && img[${svcs[$i]}]=id || img[${svcs[$i]}]=name
				echo "$t image ${svcs[$i]} ${img[${svcs[$i]}]}"
				;;
			esac
			;;
		esac
	done | sort -s -n -k1,1
}

if [ -n "${SOAK_PRINT:-}" ]; then
	gen_schedule
	exit 0
fi

# ---------------------------------------------------------------- state
WORK=$(mktemp -d /tmp/cswarm-soak.XXXXXX)
TIMELINE=$WORK/timeline.txt
declare -A PID PORT ST UP_SINCE SETTLED_SINCE NSTATUS NAVAIL
STARTED_DOCKER=""
DOCKER_SOCK=""
T0_US=${EPOCHREALTIME/./}
declare -A FAULTS=() # kind -> count
CHECKS_SLOT=0 CHECKS_ACK=0 CHECKS_CONVERGE=0 VIOLATIONS=0
PHASE=setup

now_ms() { local t=${EPOCHREALTIME/./}; echo $(((t - T0_US) / 1000)); }
stamp() { local m; m=$(now_ms); printf '%d.%03d' $((m / 1000)) $((m % 1000)); }
log() { printf '[%9s] %s\n' "$(stamp)" "$*" >>"$TIMELINE"; }
note() { log "$*"; say "$*"; }

violation() {
	VIOLATIONS=$((VIOLATIONS + 1))
	log "VIOLATION $*"
	say "VIOLATION $*" >&2
	snapshot "violation-$VIOLATIONS"
}

snapshot() { # snapshot NAME: what Docker and the store say, into WORK
	local f=$WORK/snap-$1.txt
	{
		echo "# $(stamp) s"
		echo "# docker (node task service slot state)"
		cat "$WORK/docker.now" 2>/dev/null
		echo "# task ls"
		cat "$WORK/tasks.now" 2>/dev/null
		echo "# node ls"
		cat "$WORK/nodes.now" 2>/dev/null
		echo "# service ls"
		cat "$WORK/services.now" 2>/dev/null
	} >"$f"
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for n in "${!PID[@]}"; do kill -CONT "${PID[$n]}" 2>/dev/null; done
	for n in "${!PID[@]}"; do kill -KILL "${PID[$n]}" 2>/dev/null; done
	for n in "${!PID[@]}"; do wait "${PID[$n]}" 2>/dev/null; done
	if [ -n "$DOCKER_SOCK" ]; then
		local ids
		ids=$(my_containers | cut -d'|' -f1)
		[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
	fi
	if { [ $rc -ne 0 ] || [ -n "${SOAK_KEEP:-}" ]; } && [ -d "$WORK" ]; then
		rm -rf "$SOAK_LOG_DIR"
		mkdir -p "$SOAK_LOG_DIR" &&
			cp "$WORK"/*.log "$WORK"/*.txt "$WORK"/schedule "$SOAK_LOG_DIR/" 2>/dev/null
		say "kept every daemon's log, the timeline and snapshots in $SOAK_LOG_DIR" >&2
	fi
	[ -n "$STARTED_DOCKER" ] && "$ROOT/tests/integration/docker-down.sh" "$WORK/docker" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted" >&2; exit 130' INT TERM

die() { # the cluster could not be set up (not a finding of the soak)
	say "SETUP FAILED: $*" >&2
	exit 2
}

# port_free, pick_port (its fail and wait_for are its own: a soak's
# failures are counted, not fatal)
. "$(dirname "$0")/../integration/lib.sh"

host() { echo "$PREFIX$1"; }

start_node() { # start_node NAME [swarmd flags...]
	local n=$1
	shift
	[ -n "${PORT[$n]:-}" ] || PORT[$n]=$(pick_port)
	echo "==== soak: start at $(stamp) s" >>"$WORK/$n.log"
	"$SWARMD" --state-dir "$WORK/$n" --listen-addr "127.0.0.1:${PORT[$n]}" \
		--hostname "$(host "$n")" --control-socket "$WORK/$n.sock" \
		--docker-socket "$DOCKER_SOCK" --log-level "${SOAK_LOG_LEVEL:-info}" "$@" \
		>>"$WORK/$n.log" 2>&1 </dev/null &
	PID[$n]=$!
	ST[$n]=up
	UP_SINCE[$n]=$(now_ms)
	unset "SETTLED_SINCE[$n]"
}

kill_node() { # kill_node NAME: SIGKILL, reaped
	local n=$1
	kill -KILL "${PID[$n]}" 2>/dev/null
	wait "${PID[$n]}" 2>/dev/null
	ST[$n]=dead
	unset "SETTLED_SINCE[$n]"
}

# my_containers: "id|state|node|service_id|slot|task_id" of every cswarm
# container of this soak's nodes
my_containers() {
	docker ps -a --no-trunc --filter label=cswarm.task.id --format \
		'{{.ID}}|{{.State}}|{{.Label "cswarm.node.id"}}|{{.Label "cswarm.service.id"}}|{{.Label "cswarm.slot"}}|{{.Label "cswarm.task.id"}}' |
		awk -F'|' -v p="$PREFIX" 'index($3, p) == 1'
}

# up managers, starting at a rotating one (followers forward to the leader)
RR=0
live_managers() {
	local i n c=${#MANAGERS[@]}
	RR=$((RR + 1))
	for ((i = 0; i < c; i++)); do
		n=${MANAGERS[$(((RR + i) % c))]}
		[ "${ST[$n]:-}" = up ] && echo "$n"
	done
}

ctl_on() { # ctl_on NODE ARGS...
	local n=$1
	shift
	timeout 40 "$SWARMCTL" --socket "$WORK/$n.sock" "$@"
}

# read_ctl OUT ARGS...: a read from the first of two up managers that
# answers within 5 s (a follower without a leader would wait 10 s)
read_ctl() {
	local out=$1 n
	shift
	for n in $(live_managers | head -n 2); do
		timeout 5 "$SWARMCTL" --socket "$WORK/$n.sock" --format json "$@" >"$out.tmp" 2>/dev/null &&
			mv "$out.tmp" "$out" && return 0
	done
	rm -f "$out.tmp"
	return 1
}

# ---------------------------------------------------------------- the model
# What the client was told, per service and field: a space-separated set of
# values the store may hold. An acknowledged change makes it one value; a
# change whose answer was an error (it may or may not have happened) adds its
# value. Updates carry the version they read, so an unanswered one cannot
# land after a later acknowledged one.
declare -A M_EXISTS M_REPL M_IMAGE M_GEN M_OPAT
M_NAMES=()
IMAGE_ID=""

img_of() { [ "$1" = id ] && echo "$IMAGE_ID" || echo "$IMAGE"; }

model_set() { # model_set ARRAY NAME VALUE ACKED
	local -n a=$1
	if [ "$4" = 1 ]; then
		a[$2]=$3
	else
		case " ${a[$2]:-} " in *" $3 "*) ;; *) a[$2]="${a[$2]:+${a[$2]} }$3" ;; esac
	fi
}

# svc_op KIND NAME ARG: one attempt on an up manager; updates the model
svc_op() {
	local k=$1 s=$2 v=$3 n rc acked out
	n=$(live_managers | head -n 1)
	[ -n "$n" ] || {
		log "op $k $s $v: no manager up, skipped"
		return
	}
	case $k in
	create)
		out=$(ctl_on "$n" service create --name "$s" --replicas "$v" --image "$IMAGE" \
			--env SOAK_GEN=0 --update-order stop-first --update-failure-action continue \
			--restart-delay 1s -- sleep 86400 2>&1)
		;;
	rm) out=$(ctl_on "$n" service rm "$s" 2>&1) ;;
	scale) out=$(ctl_on "$n" service update "$s" --replicas "$v" 2>&1) ;;
	env) out=$(ctl_on "$n" service update "$s" --env "SOAK_GEN=$v" 2>&1) ;;
	image) out=$(ctl_on "$n" service update "$s" --image "$(img_of "$v")" 2>&1) ;;
	esac
	rc=$?
	acked=0
	[ $rc -eq 0 ] && acked=1
	M_OPAT[$s]=$(now_ms)
	case $k in
	create)
		M_NAMES+=("$s")
		M_EXISTS[$s]=$([ $acked = 1 ] && echo yes || echo "no yes")
		M_REPL[$s]=$v M_IMAGE[$s]=name M_GEN[$s]=0
		;;
	rm) model_set M_EXISTS "$s" no $acked ;;
	scale) model_set M_REPL "$s" "$v" $acked ;;
	env) model_set M_GEN "$s" "$v" $acked ;;
	image) model_set M_IMAGE "$s" "$v" $acked ;;
	esac
	# an acknowledged update says the service exists
	[ $acked = 1 ] && [ "$k" != rm ] && M_EXISTS[$s]=yes
	if [ $acked = 1 ]; then
		log "op $k $s $v via $n: acknowledged"
	else
		log "op $k $s $v via $n: error (rc $rc: ${out//$'\n'/ }): may or may not have happened"
	fi
}

# ---------------------------------------------------------------- checks
declare -A DUP_SINCE UNW_SINCE ACK_BAD_SINCE FLAGGED

# refresh: docker.now, tasks.now, nodes.now, services.now (+ specs.now);
# fails when the store cannot be read
refresh() {
	my_containers | awk -F'|' '{print $3, $6, $4, $5, $2, $1}' | sort >"$WORK/docker.now" || return 1
	read_ctl "$WORK/tasks.json" task ls || return 1
	read_ctl "$WORK/nodes.json" node ls || return 1
	read_ctl "$WORK/services.json" service ls || return 1
	jq -r '.[] | "\(.id) \(.desired) \(.state) \(.service_id) \(.slot) \(.node)"' \
		"$WORK/tasks.json" | sort >"$WORK/tasks.now" || return 1
	jq -r '.[] | "\(.hostname) \(.status) \(.availability) \(.role) \(.leader)"' \
		"$WORK/nodes.json" | sort >"$WORK/nodes.now" || return 1
	jq -r '.[] | "\(.name) \(.id) \(.replicas) \(.running) \(.image) \(.update_state)"' \
		"$WORK/services.json" | sort >"$WORK/services.now" || return 1
	: >"$WORK/specs.now"
	local name rest
	while read -r name rest; do
		read_ctl "$WORK/inspect.json" service inspect "$name" || return 1
		jq -r '"\(.spec.name) \(.spec.replicas) \(.spec.image) \((.spec.env // []) | join(","))"' \
			"$WORK/inspect.json" >>"$WORK/specs.now" || return 1
	done <"$WORK/services.now"
	NSTATUS=()
	NAVAIL=()
	local h st av
	while read -r h st av _; do
		NSTATUS[$h]=$st
		NAVAIL[$h]=$av
	done <"$WORK/nodes.now"
}

# settled NODE: its daemon running (not stopped) for SOAK_SETTLE_S and the
# node ready in the store (as of the last refresh)
# A change of leader (or no answer) restarts the clocks of checks 1 and 1b:
# a new leader has to learn what runs before it can have it stopped.
LEADER=""
update_settled() {
	local n h t l
	t=$(now_ms)
	l=$(awk '$5 == "true" { print $1 }' "$WORK/nodes.now")
	if [ -z "$l" ] || [ "$l" != "$LEADER" ]; then
		DUP_SINCE=()
		UNW_SINCE=()
	fi
	LEADER=$l
	for n in "${NODES[@]}"; do
		h=$(host "$n")
		if [ "${ST[$n]}" = up ] && [ "${NSTATUS[$h]:-}" = ready ] &&
			[ $((t - UP_SINCE[$n])) -ge $((SOAK_SETTLE_S * 1000)) ]; then
			[ -n "${SETTLED_SINCE[$n]:-}" ] || SETTLED_SINCE[$n]=$t
		else
			unset "SETTLED_SINCE[$n]"
		fi
	done
}
is_settled() { [ -n "${SETTLED_SINCE[${1#"$PREFIX"}]:-}" ]; }

# Checks 1 and 1b, on a fresh refresh.
check_slots() {
	local t key nodes cids h ok c line
	local -A seen_dup=() seen_unw=()
	t=$(now_ms)
	CHECKS_SLOT=$((CHECKS_SLOT + 1))
	# 1: running containers per (service id, slot)
	while read -r key nodes cids; do
		ok=1
		for h in ${nodes//,/ }; do is_settled "$h" || ok=0; done
		[ $ok = 1 ] || continue
		key="$key $cids"
		seen_dup[$key]=1
		[ -n "${DUP_SINCE[$key]:-}" ] || DUP_SINCE[$key]=$t
		if [ $((t - DUP_SINCE[$key])) -ge $((SOAK_GRACE_S * 1000)) ] && [ -z "${FLAGGED[$key]:-}" ]; then
			FLAGGED[$key]=1
			violation "check 1 (slot twice): service/slot ${key%% *} runs in containers ${cids} on ${nodes}, every node settled, for $(((t - DUP_SINCE[$key]) / 1000)) s"
		fi
	done < <(awk '$5 == "running" && $4 != "" && $4 != "0" {
			k = $3 "/" $4; n[k] = n[k] (n[k] == "" ? "" : ",") $1
			c[k] = c[k] (c[k] == "" ? "" : ",") substr($6, 1, 12); cnt[k]++ }
		END { for (k in cnt) if (cnt[k] > 1) print k, n[k], c[k] }' "$WORK/docker.now" | sort)
	for key in "${!DUP_SINCE[@]}"; do [ -n "${seen_dup[$key]:-}" ] || unset "DUP_SINCE[$key]"; done
	c=$(awk '$5 == "running" && $4 != "" && $4 != "0" { n[$3 "/" $4]++ }
		END { for (k in n) if (n[k] > 1) d++; print d + 0 }' "$WORK/docker.now")
	[ "$c" -gt 0 ] && log "check: $c slot(s) twice, ${#seen_dup[@]} on settled nodes"
	# 1b: a running container whose task is not wanted running (or gone)
	while read -r h c line; do
		is_settled "$h" || continue
		key="unwanted $c"
		seen_unw[$key]=1
		[ -n "${UNW_SINCE[$key]:-}" ] || UNW_SINCE[$key]=$t
		if [ $((t - UNW_SINCE[$key])) -ge $((SOAK_GRACE_S * 1000)) ] && [ -z "${FLAGGED[$key]:-}" ]; then
			FLAGGED[$key]=1
			violation "check 1b (stopped task still running): container ${c:0:12} of task $line on settled node $h, for $(((t - UNW_SINCE[$key]) / 1000)) s"
		fi
	done < <(unwanted_running)
	for key in "${!UNW_SINCE[@]}"; do [ -n "${seen_unw[$key]:-}" ] || unset "UNW_SINCE[$key]"; done
	c=$(unwanted_running | wc -l)
	[ "$c" -gt 0 ] && log "check: $c container(s) running unwanted, ${#seen_unw[@]} on settled nodes"
	return 0
}

# unwanted_running: "node container task(desired/state or gone)" for each
# running container whose task the store does not want running
unwanted_running() {
	awk 'NR == FNR { d[$1] = $2; s[$1] = $3; next }
		$5 == "running" {
			if (!($2 in d)) print $1, $6, $2 "(not in the store)"
			else if (d[$2] !~ /^(new|pending|assigned|accepted|preparing|ready|starting|running)$/)
				print $1, $6, $2 "(desired " d[$2] ", state " s[$2] ")"
		}' "$WORK/tasks.now" "$WORK/docker.now"
}

in_set() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

# spec_mismatch NAME: empty when the store's spec of NAME is one the model
# allows, else why not
spec_mismatch() {
	local s=$1 line repl image env gen ikind
	line=$(awk -v s="$s" '$1 == s' "$WORK/specs.now")
	if [ -z "$line" ]; then
		in_set no "${M_EXISTS[$s]}" || echo "missing (acknowledged: exists=${M_EXISTS[$s]})"
		return
	fi
	in_set yes "${M_EXISTS[$s]}" || {
		echo "exists, acknowledged removed"
		return
	}
	read -r _ repl image env <<<"$line"
	gen=${env#SOAK_GEN=}
	ikind=other
	[ "$image" = "$IMAGE" ] && ikind=name
	[ "$image" = "$IMAGE_ID" ] && ikind=id
	in_set "$repl" "${M_REPL[$s]}" || echo "replicas $repl, acknowledged ${M_REPL[$s]}"
	in_set "$ikind" "${M_IMAGE[$s]}" || echo "image $image, acknowledged ${M_IMAGE[$s]}"
	{ [ "$env" = "SOAK_GEN=$gen" ] && in_set "$gen" "${M_GEN[$s]}"; } ||
		echo "env '$env', acknowledged SOAK_GEN=${M_GEN[$s]}"
}

# Check 2: a mismatch counts when it lasts two rounds 10 s apart with no
# change sent to that service in between (a stale read is not a loss).
check_acked() {
	local s why t name
	t=$(now_ms)
	CHECKS_ACK=$((CHECKS_ACK + 1))
	for s in "${M_NAMES[@]}"; do
		why=$(spec_mismatch "$s" | paste -sd ';' -)
		if [ -z "$why" ]; then
			unset "ACK_BAD_SINCE[$s]"
			continue
		fi
		# first seen, or a change was sent since: judge again later
		if [ -z "${ACK_BAD_SINCE[$s]:-}" ] || [ "${M_OPAT[$s]:-0}" -ge "${ACK_BAD_SINCE[$s]}" ]; then
			ACK_BAD_SINCE[$s]=$t
			continue
		fi
		if [ $((t - ACK_BAD_SINCE[$s])) -ge 10000 ] && [ -z "${FLAGGED[ack $s]:-}" ]; then
			FLAGGED[ack $s]=1
			violation "check 2 (acknowledged lost): service $s: $why"
		fi
	done
	while read -r name _; do
		in_set "$name" "${M_NAMES[*]}" || {
			[ -n "${FLAGGED[ack $name]:-}" ] || {
				FLAGGED[ack $name]=1
				violation "check 2: service $name exists but was never created"
			}
		}
	done <"$WORK/services.now"
}

# not_converged: empty when the cluster has converged, else why not
not_converged() {
	local n h s sid repl running
	for n in "${NODES[@]}"; do
		h=$(host "$n")
		[ "${NSTATUS[$h]:-}" = ready ] || echo "node $h is ${NSTATUS[$h]:-absent}"
		[ "${NAVAIL[$h]:-}" = active ] || echo "node $h is ${NAVAIL[$h]:-absent}"
	done
	for s in "${M_NAMES[@]}"; do
		spec_mismatch "$s"
		sid=$(awk -v s="$s" '$1 == s { print $2 }' "$WORK/services.now")
		[ -n "$sid" ] || continue
		repl=$(awk -v s="$s" '$1 == s { print $2 }' "$WORK/specs.now")
		running=$(awk -v id="$sid" '$3 == id && $5 == "running"' "$WORK/docker.now" | wc -l)
		[ "$running" -eq "$repl" ] || echo "service $s runs $running containers, wants $repl"
	done
	unwanted_running | sed 's/^/running, not wanted: /'
	awk 'NR == FNR { d[$1] = 1; next } $5 != "running" && !($2 in d) {
		print "leftover: " $5 " container " substr($6, 1, 12) " of task " $2 " (not in the store) on " $1 }' \
		"$WORK/tasks.now" "$WORK/docker.now"
}

# daemons that exited by themselves
check_alive() {
	local n rc
	for n in "${NODES[@]}"; do
		[ "${ST[$n]}" = up ] || [ "${ST[$n]}" = stopped ] || continue
		kill -0 "${PID[$n]}" 2>/dev/null && continue
		wait "${PID[$n]}" 2>/dev/null
		rc=$?
		ST[$n]=dead
		violation "daemon $n exited by itself (status $rc): $(grep -v '^====' "$WORK/$n.log" | tail -n 1)"
		[ "$PHASE" = faults ] && start_node "$n" && log "restart $n (after it exited by itself)"
	done
}

# ---------------------------------------------------------------- faults
run_event() { # run_event KIND ARG...
	local k=$1 n=${2:-} c ids
	case $k in
	kill | crash | stop | drain | scale | env | image | create | rm)
		FAULTS[$k]=$((${FAULTS[$k]:-0} + 1))
		;;
	esac
	case $k in
	kill)
		kill_node "$n"
		log "kill $n (process death)"
		;;
	crash)
		kill_node "$n"
		ids=$(docker ps -aq --no-trunc --filter "label=cswarm.node.id=$(host "$n")")
		c=$(wc -w <<<"$ids")
		[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
		log "crash $n (machine death: daemon killed, $c containers removed)"
		;;
	start)
		[ "${ST[$n]}" = dead ] && start_node "$n" && log "start $n"
		;;
	stop)
		if [ "${ST[$n]}" = up ]; then
			kill -STOP "${PID[$n]}"
			ST[$n]=stopped
			unset "SETTLED_SINCE[$n]"
			log "stop $n (SIGSTOP)"
		fi
		;;
	cont)
		if [ "${ST[$n]}" = stopped ]; then
			kill -CONT "${PID[$n]}"
			ST[$n]=up
			UP_SINCE[$n]=$(now_ms)
			log "cont $n (SIGCONT)"
		fi
		;;
	drain | activate)
		local av=$k m out
		[ "$k" = activate ] && av=active
		m=$(live_managers | head -n 1)
		if [ -n "$m" ] && out=$(ctl_on "$m" node update --availability "$av" "$(host "$n")" 2>&1); then
			log "$k $n via $m: acknowledged"
		else
			log "$k $n via ${m:-nobody}: error: ${out:-no manager up}"
		fi
		;;
	scale | env | image | create | rm) svc_op "$k" "$n" "${3:-}" ;;
	esac
}

# plant: the checks' own test (SOAK_PLANT=1). Behind the cluster's back, a
# second container for slot 1 of soak-s2 on w1 (checks 1, 1b and 3 must
# fire, unless the agent removes cswarm containers it does not know) and a
# change to soak-s2's env that the model is not told of (check 2 must fire).
plant() {
	local sid m
	sid=$(awk '$1 == "soak-s2" { print $2 }' "$WORK/services.now")
	m=$(live_managers | head -n 1)
	docker run -d --name "${PREFIX}rogue" --label cswarm.task.id=00000000deadbeef \
		--label "cswarm.node.id=$(host w1)" --label "cswarm.service.id=$sid" \
		--label cswarm.slot=1 --label cswarm.service.name=soak-s2 "$IMAGE" sleep 3600 >/dev/null
	ctl_on "$m" service update soak-s2 --env SOAK_GEN=999999 >/dev/null
	log "PLANT a rogue container for soak-s2 ($sid) slot 1 on w1, and SOAK_GEN=999999 on soak-s2 unknown to the model"
}

# ---------------------------------------------------------------- setup
command -v jq >/dev/null || die "jq is missing (make deps installs it)"
command -v docker >/dev/null || die "docker is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || die "build $SWARMD and $SWARMCTL first"
gen_schedule >"$WORK/schedule"
say "seed $SOAK_SEED (SOAK_SEED=$SOAK_SEED repeats this schedule), ${SOAK_SECONDS}s of faults," \
	"$(wc -l <"$WORK/schedule") events, ${#MANAGERS[@]} managers and $SOAK_WORKERS workers, nodes $PREFIX*"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || die "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE") || die "test image $IMAGE missing"

wait_for() { # wait_for SECONDS WHAT COMMAND...
	local limit=$1 what=$2
	shift 2
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && die "waited ${limit}s for: $what"
		sleep 0.5
	done
}

start_node m1
wait_for 30 "m1's control socket" ctl_on m1 cluster inspect
MTOKEN=$(ctl_on m1 cluster join-token manager) || die "manager token"
WTOKEN=$(ctl_on m1 cluster join-token worker) || die "worker token"
for n in "${NODES[@]}"; do
	[ "$n" = m1 ] && continue
	if [[ $n == m* ]]; then tok=$MTOKEN; else tok=$WTOKEN; fi
	start_node "$n" --join-addr "127.0.0.1:${PORT[m1]}" --join-token "$tok"
done
all_ready() {
	[ "$(ctl_on m1 node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq ${#NODES[@]} ] &&
		[ "$(ctl_on m1 node ls --format json | jq '[.[] | select(.role == "manager")] | length')" -eq ${#MANAGERS[@]} ] &&
		[ "$(grep -c 'membership change" step=2 .*status=ok' "$WORK/m1.log")" -ge $((${#MANAGERS[@]} - 1)) ]
}
wait_for 90 "${#NODES[@]} nodes ready, ${#MANAGERS[@]} managers voting" all_ready
log "cluster up: ${NODES[*]}"
svc_op create soak-s1 3
svc_op create soak-s2 2
[ "${M_EXISTS[soak-s1]}" = yes ] && [ "${M_EXISTS[soak-s2]}" = yes ] || die "creating the first services"
first_up() { refresh && [ -z "$(not_converged)" ]; }
wait_for 90 "the first services running" first_up

# ---------------------------------------------------------------- faults
PHASE=faults
note "faults for ${SOAK_SECONDS}s"
F0=$(now_ms)
NEXT_CHECK=0
mapfile -t EVENTS <"$WORK/schedule"
EI=0
while :; do
	t=$(($(now_ms) - F0))
	[ $t -ge $((SOAK_SECONDS * 1000)) ] && break
	while [ $EI -lt ${#EVENTS[@]} ]; do
		read -r at kind arg1 arg2 <<<"${EVENTS[$EI]}"
		[ "$at" -le $t ] || break
		run_event "$kind" "$arg1" "${arg2:-}"
		EI=$((EI + 1))
	done
	if [ -n "${SOAK_PLANT:-}" ] && [ -z "${PLANTED:-}" ] && [ $t -ge $((SOAK_SECONDS * 500)) ]; then
		plant
		PLANTED=1
	fi
	if [ $t -ge $NEXT_CHECK ]; then
		check_alive
		if refresh; then
			update_settled
			check_slots
			check_acked
		else
			# no answer (an election): the clocks start again
			LEADER=""
			DUP_SINCE=()
			UNW_SINCE=()
			log "check: the store did not answer"
		fi
		NEXT_CHECK=$((t + SOAK_CHECK_S * 1000))
	fi
	sleep 0.5
done

# ---------------------------------------------------------------- convergence
PHASE=heal
note "faults over: every daemon running, every node active"
while [ $EI -lt ${#EVENTS[@]} ]; do
	read -r at kind arg1 arg2 <<<"${EVENTS[$EI]}"
	case $kind in start | cont | activate) run_event "$kind" "$arg1" ;; esac
	EI=$((EI + 1))
done
for n in "${NODES[@]}"; do [ "${ST[$n]}" = dead ] && start_node "$n" && log "start $n"; done
for n in "${NODES[@]}"; do
	# active again, whatever an earlier drain or activate answered
	end=$((SECONDS + 60))
	until [ $SECONDS -ge $end ]; do
		m=$(live_managers | head -n 1)
		ctl_on "$m" node update --availability active "$(host "$n")" >/dev/null 2>&1 && break
		sleep 1
	done
done
H0=$(now_ms)
converged=0
why=""
while [ $(($(now_ms) - H0)) -lt $((SOAK_CONVERGE_S * 1000)) ]; do
	check_alive
	CHECKS_CONVERGE=$((CHECKS_CONVERGE + 1))
	if refresh; then
		why=$(not_converged)
		if [ -z "$why" ]; then
			# and still so a few seconds later
			sleep 3
			if refresh; then why=$(not_converged); else why="the store did not answer"; fi
			[ -z "$why" ] && converged=1 && break
		fi
	else
		why="the store did not answer"
	fi
	sleep 3
done
if [ $converged = 1 ]; then
	note "converged in $((($(now_ms) - H0) / 1000)) s"
	check_acked
else
	snapshot final
	while read -r line; do violation "check 3 (no convergence in ${SOAK_CONVERGE_S}s): $line"; done <<<"$why"
fi

# ---------------------------------------------------------------- summary
faults=""
for k in kill crash stop drain scale env image create rm; do faults="$faults $k=${FAULTS[$k]:-0}"; done
summary="seed=$SOAK_SEED seconds=$SOAK_SECONDS faults:$faults; checks: slots=$CHECKS_SLOT acked=$CHECKS_ACK converge=$CHECKS_CONVERGE; violations=$VIOLATIONS"
log "summary $summary"
if [ $VIOLATIONS -gt 0 ]; then
	say "FAIL $summary"
	exit 1
fi
say "PASS $summary"
