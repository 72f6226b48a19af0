# Encrypted overlay networks end to end (issue 17, --opt encrypted): the
# key manager (core/keymanager.c) and the sealed tunnel (net/crypttun.c)
# on real swarmd nodes. Sourced by `netns.sh BIN --crypt` once its three
# nodes are ready (each its own swarmd and dockerd in a namespace; the
# tunnel on UDP $CE_CPORT, VXLAN on $CE_VPORT; node 1 serves the Docker
# API on $WORK/n1api.sock); netns.sh's trap removes everything. Not run on
# its own.
#
#   1. `swarmctl network create --opt encrypted`: cesrv (httpd) on node 2,
#      cecli on node 3; cecli fetches cesrv's page by address, by
#      tasks.cesrv and by cesrv (its VIP)
#   2. the underlay (node 2's eth0) captured during those fetches: the
#      page's text never appears, no packet on the VXLAN port (nor on
#      4789), the tunnel's port carries it
#   3. `swarmctl cluster update --rotate-network-keys`, twice, while cecli
#      fetches in a loop: every fetch answers (see the window below), and
#      the nodes hold the new keys
#      (spaced: none may fail; at once: none once both hold the newest)
#   4. swarmds killed and restarted (node 3, node 3 with two rotations
#      while it is down, node 2): the task kept, the bridge's MAC kept,
#      the new swarmd given the newest keys, fetches by address and by
#      name answer at once
#   5. `docker network create -d overlay --opt encrypted` through node 1's
#      Docker API: `docker network inspect` shows Options.encrypted

ce_addr() { # ce_addr SERVICE: the overlay address of its running task
	local t
	t=$(ctl task ls --service "$1" --format json | jq -r '[.[] | select(.state == "running")][0].id')
	ctl task inspect "$t" | jq -r '.networks[0].addr' | cut -d/ -f1
}
ce_cid() { dk "$1" ps -q --filter "label=cswarm.service.name=$2" | head -n 1; }
ce_running() { [ "$(ctl task ls --service "$1" --format json | jq '[.[] | select(.state == "running")] | length')" -eq "$2" ]; }

# the page: a string that must never be seen on the wire, long enough to
# fill more than one frame
CE_SECRET="CE-SECRET-$TAG"
say "crypt: an encrypted overlay (--opt encrypted); cesrv (httpd) on node 2, cecli on node 3"
ctl network create --subnet 10.232.0.0/24 --opt encrypted cenet >/dev/null
[ "$(ctl network inspect cenet | jq -r '.encrypted')" = true ] ||
	fail "cenet is not encrypted: $(ctl network inspect cenet)"
ctl service create --name cesrv --network cenet --constraint node.hostname==csn2 \
	--image "$IMAGE" -- sh -c "mkdir -p /www && for i in \$(seq 200); do echo $CE_SECRET-\$i; done >/www/index.html && dd if=/dev/urandom of=/www/big bs=1024 count=4096 2>/dev/null &&
		httpd -f -p 80 -h /www & nc -ll -p 7000 -e cat & trap 'exit 0' TERM; wait" >/dev/null
ctl service create --name cecli --network cenet --constraint node.hostname==csn3 \
	--image "$IMAGE" -- sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' >/dev/null
wait_for 90 "cesrv running" ce_running cesrv 1
wait_for 90 "cecli running" ce_running cecli 1
CE_SRV=$(ce_addr cesrv)
CE_CLI=$(ce_addr cecli)
CE_CLICID=$(ce_cid 3 cecli)
[ -n "$CE_CLICID" ] && [ -n "$(ce_cid 2 cesrv)" ] || fail "containers: cecli '$CE_CLICID' cesrv '$(ce_cid 2 cesrv)'"
say "crypt: cesrv is $CE_SRV on node 2, cecli is $CE_CLI on node 3"
# the network's devices: a TAP on the bridge, no VXLAN device
CE_VNI=$(ip -n "$(ns 3)" -br link | awk '/^cs-tp-/{sub("cs-tp-","",$1); sub("@.*","",$1); print $1; exit}')
[ -n "$CE_VNI" ] || fail "no cs-tp- device on node 3: $(ip -n "$(ns 3)" -br link)"
ip -n "$(ns 3)" -br link | grep -q "^cs-vx-$CE_VNI" && fail "node 3 has a VXLAN device for the encrypted network"
# the MTU: the task's interface, the bridge and the TAP at the data plane's
# less the tunnel's extra (a frame over it is dropped by the tunnel)
ce_mtu() { ip -n "$(ns "$1")" -o link show "$2" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
CE_VXMTU=$(($(ce_mtu 3 eth0) - 50)) # DATAPLANE_VXLAN_OVERHEAD
CE_TAPMTU=$(ce_mtu 3 "cs-tp-$CE_VNI")
CE_TASKMTU=$(dk 3 exec "$CE_CLICID" cat /sys/class/net/eth0/mtu)
[ -n "$CE_VXMTU" ] && [ "$CE_TAPMTU" = $((CE_VXMTU - 32)) ] && [ "$(ce_mtu 3 "cs-br-$CE_VNI")" = "$CE_TAPMTU" ] &&
	[ "$CE_TASKMTU" = "$CE_TAPMTU" ] ||
	fail "MTUs: VXLAN $CE_VXMTU, TAP $CE_TAPMTU, bridge $(ce_mtu 3 "cs-br-$CE_VNI"), cecli's eth0 $CE_TASKMTU"
say "crypt: MTU $CE_TAPMTU on the TAP, the bridge and the task (the VXLAN networks' $CE_VXMTU less the tunnel's 32)"
ce_fetch() { # ce_fetch HOST: cecli fetches the page from HOST
	local got
	got=$(dk 3 exec "$CE_CLICID" timeout 3 wget -q -O - "http://$1/" 2>/dev/null) || return 1
	[ "$(printf '%s\n' "$got" | tail -n 1)" = "$CE_SECRET-200" ]
}

CE_CAP=$WORK/ce.pcap
nsenter --net="/run/netns/$(ns 2)" -- tcpdump -i eth0 -n -U --immediate-mode -s 0 -w "$CE_CAP" \
	>/dev/null 2>"$CE_CAP.err" &
CE_CAPPID=$!
for _ in $(seq 50); do
	grep -q listening "$CE_CAP.err" 2>/dev/null && break
	sleep 0.1
done
grep -q listening "$CE_CAP.err" || fail "tcpdump did not start: $(cat "$CE_CAP.err")"
wait_for 30 "cecli (node 3) fetching http://$CE_SRV/ from cesrv (node 2)" ce_fetch "$CE_SRV"
say "crypt: cecli fetched cesrv's page by address across the encrypted overlay"
wait_for 30 "cecli fetching http://tasks.cesrv/" ce_fetch tasks.cesrv
wait_for 30 "cecli fetching http://cesrv/ (its VIP)" ce_fetch cesrv
for _ in 1 2 3; do
	ce_fetch "$CE_SRV" && ce_fetch tasks.cesrv && ce_fetch cesrv || fail "a fetch failed once settled"
done
say "crypt: ... and by tasks.cesrv and by cesrv (its VIP)"
sleep 0.5
kill -INT "$CE_CAPPID"
wait "$CE_CAPPID" 2>/dev/null || true
ce_count() { tcpdump -r "$CE_CAP" -n "$1" 2>/dev/null | wc -l; }
n_clear=$(grep -a -c "CE-SECRET" "$CE_CAP" || true)
# VXLAN for this network: its VNI in the VXLAN header (bytes 4-6 after
# the UDP header's 8), on the VXLAN port or 4789; other networks' (the
# ingress network's) are counted apart
ce_vx="(udp port $CE_VPORT or udp port 4789)"
n_vx=$(ce_count "$ce_vx and (udp[12:4] >> 8) = $CE_VNI")
n_vxother=$(ce_count "$ce_vx")
n_tun=$(ce_count "udp port $CE_CPORT")
[ "$n_clear" = 0 ] || fail "the page's text is on the underlay ($n_clear lines of the capture)"
[ "$n_vx" = 0 ] || fail "VXLAN of VNI $CE_VNI on the underlay: $(tcpdump -r "$CE_CAP" -n "$ce_vx" 2>/dev/null | head -n 3)"
[ "$n_tun" -gt 20 ] || fail "only $n_tun packets on the tunnel's port $CE_CPORT"
say "crypt: the underlay held $n_tun tunnel packets (UDP $CE_CPORT), no VXLAN of VNI $CE_VNI ($n_vxother of other networks), never the page's text"

# a bulk transfer: 4 MiB in full-sized segments across the tunnel (what
# the kernel hands the TAP must fit the network's MTU, segmented)
got=$(dk 3 exec "$CE_CLICID" sh -c "timeout 20 wget -q -O - http://$CE_SRV/big | wc -c") || true
[ "$got" = 4194304 ] || fail "cecli got $got bytes of cesrv's 4 MiB file"
say "crypt: 4 MiB fetched whole across the encrypted overlay"

# the keys' ids as node NODE last logged them ("network keys" ... newest=N)
ce_newest() { grep 'msg="network keys"' "$WORK/n$1.log" | tail -n 1 | sed -n 's/.*newest=\([0-9]*\).*/\1/p'; }
ce_settled() { # ce_settled ID: nodes 2 and 3 both hold newest key ID
	[ "$(ce_newest 2)" = "$1" ] && [ "$(ce_newest 3)" = "$1" ]
}
CE_LOOP=$WORK/ce-loop.log
CE_STOP=$WORK/ce-loop.stop
ce_loop() { # fetches until $CE_STOP exists: a line per fetch, "N ok|FAIL"
	local i=0
	while [ ! -e "$CE_STOP" ]; do
		i=$((i + 1))
		if ce_fetch "$CE_SRV"; then echo "$i ok"; else echo "$i FAIL"; fi
	done >"$CE_LOOP"
}
# the marks: "MARK after N" (N: the fetches done by then)
ce_mark() { echo "$1 after $(wc -l <"$CE_LOOP")" >>"$WORK/ce-marks"; }

[ -n "$(ce_newest 2)" ] && [ -n "$(ce_newest 3)" ] || fail "nodes 2 and 3 logged no network keys"
say "crypt: keys before: node 2 newest=$(ce_newest 2), node 3 newest=$(ce_newest 3); rotating twice while cecli fetches"
ce_loop &
CE_LOOPPID=$!
sleep 2
for r in 1 2; do
	before=$(ce_newest 2)
	ce_mark "rotate$r"
	ctl cluster update --rotate-network-keys >/dev/null
	wait_for 30 "nodes 2 and 3 given a newer key (rotation $r)" eval '[ "$(ce_newest 2)" != "$before" ] && ce_settled "$(ce_newest 2)"'
	ce_mark "settled$r"
	sleep 3
done
touch "$CE_STOP"
wait "$CE_LOOPPID" || true
n_all=$(wc -l <"$CE_LOOP")
n_bad=$(grep -c FAIL "$CE_LOOP" || true)
say "crypt: $n_all fetches during the rotations, $n_bad failed; marks: $(tr '\n' ' ' <"$WORK/ce-marks")"
# the window: none. The key manager's order (the newest key only received,
# the one before it sent with; a rotation drops the oldest and adds one)
# means a node that has the new set sends with a key that the one without
# it already holds, and takes what it sends: so a rotation, once the last
# has settled, is hitless on every node in between too
[ "$n_all" -gt 10 ] || fail "only $n_all fetches during the rotations"
[ "$n_bad" = 0 ] || fail "$n_bad of $n_all fetches failed across the rotations: $(grep -n FAIL "$CE_LOOP" | head -n 5 | tr '\n' ' ')"
ce_fetch "$CE_SRV" && ce_fetch cesrv && ce_fetch tasks.cesrv || fail "a fetch failed after the rotations"
say "crypt: two rotations, keys now newest=$(ce_newest 3): every fetch answered"

# two rotations at once: a node may hold the keys of the second while
# the other still holds those before the first (the first sends with a
# key the second has dropped, the second with one the first has not got):
# fetches may fail from the first rotation until both nodes hold the
# newest keys (the window allowed), none after
rm -f "$CE_STOP"
: >"$WORK/ce-marks"
ce_loop &
CE_LOOPPID=$!
sleep 2
target=$(($(ce_newest 2) + 2))
ce_mark rotate
ctl cluster update --rotate-network-keys >/dev/null
ctl cluster update --rotate-network-keys >/dev/null
wait_for 30 "nodes 2 and 3 given key $target" ce_settled "$target"
ce_mark settled
sleep 4
touch "$CE_STOP"
wait "$CE_LOOPPID" || true
settled=$(sed -n 's/^settled after //p' "$WORK/ce-marks")
n_all=$(wc -l <"$CE_LOOP")
n_bad=$(grep -c FAIL "$CE_LOOP" || true)
# the fetch in flight when the mark was taken may have started before
late=$(awk -v s=$((settled + 1)) '$1 > s && $2 == "FAIL"' "$CE_LOOP" | wc -l)
say "crypt: two rotations at once: $n_all fetches, $n_bad failed (before both nodes held key $target); marks: $(tr '\n' ' ' <"$WORK/ce-marks")"
[ "$n_all" -gt $((settled + 3)) ] || fail "only $((n_all - settled)) fetches after the rotations settled"
[ "$late" = 0 ] || fail "$late fetches failed after both nodes held key $target: $(grep -n FAIL "$CE_LOOP" | head -n 5 | tr '\n' ' ')"

# the agent restart path: the TAP is swarmd's (it goes with the process:
# while swarmd is down the encrypted network carries nothing across
# nodes, unlike VXLAN, which the kernel keeps); a restarted swarmd makes
# it again, adopts the bridge and the task, declares the network without
# keys, then with the keys its new session brings. The bridge's MAC (the
# gateway's, in the task's ARP cache) must not move with the TAP going
# and coming: if it did, the gateway (the resolver, the VIPs) would be
# unreachable from the task until its ARP entry expired (found here:
# names failed for 10 to over 30 s after a restart; net/dataplane.c pins
# the bridge's MAC now)
ce_brmac() { ip -n "$(ns "$1")" -o link show "cs-br-$CE_VNI" | grep -o 'link/ether [0-9a-f:]*'; }
# The second time node 3 is down, the keys are rotated twice meanwhile:
# the others send with a key it never held before it comes back
for r in 1 2 3; do
	n=3
	[ $r = 3 ] && n=2
	say "crypt: node $n's swarmd killed and restarted$([ $r = 2 ] && echo ", two key rotations while it is down"): the task kept, the tunnel made again, the fetch works at once, by name too"
	mac=$(ce_brmac $n)
	if [ $r = 1 ]; then
		# a connection open across the restart: cecli to cesrv's echo
		# server (nc -e cat); a line before, a line after
		dk 3 exec -d "$CE_CLICID" sh -c "(echo one-$TAG; while [ ! -e /ce-go ]; do sleep 0.2; done;
			echo two-$TAG; sleep 3) | nc $CE_SRV 7000 >/ce-echo" >/dev/null
		ce_echoed() { dk 3 exec "$CE_CLICID" grep -q "$1-$TAG" /ce-echo; }
		wait_for 15 "cecli's connection echoing a first line" ce_echoed one
	fi
	kill -9 "${PID[$n]}"
	while kill -0 "${PID[$n]}" 2>/dev/null; do sleep 0.1; done
	[ "$(ce_brmac $n)" = "$mac" ] || fail "node $n's bridge MAC moved when its TAP went: $mac, now $(ce_brmac $n)"
	target=$(ce_newest 2)
	if [ $r = 2 ]; then
		target=$((target + 2))
		ctl cluster update --rotate-network-keys >/dev/null
		ctl cluster update --rotate-network-keys >/dev/null
		wait_for 30 "node 2 given key $target" eval '[ "$(ce_newest 2)" = "$target" ]'
	fi
	before=$(grep -c 'msg="network keys"' "$WORK/n$n.log")
	start_swarmd $n
	wait_for 60 "node $n's new swarmd given the keys" eval '[ "$(grep -c "msg=\"network keys\"" "$WORK/n$n.log")" -gt "$before" ]'
	[ "$(ce_newest $n)" = "$target" ] || fail "node $n's new swarmd holds newest key $(ce_newest $n), not $target"
	wait_for 30 "cecli fetching http://$CE_SRV/ after node $n's restart" ce_fetch "$CE_SRV"
	[ "$(ce_cid 3 cecli)" = "$CE_CLICID" ] || fail "cecli's container was replaced: $(ce_cid 3 cecli) vs $CE_CLICID"
	[ "$(ce_brmac $n)" = "$mac" ] || fail "node $n's bridge MAC changed across its restart: $mac, now $(ce_brmac $n)"
	ce_fetch tasks.cesrv || fail "tasks.cesrv right after node $n's restart"
	ce_fetch cesrv || fail "cesrv (its VIP) right after node $n's restart"
	if [ $r = 1 ]; then
		dk 3 exec "$CE_CLICID" touch /ce-go
		wait_for 15 "the connection opened before node 3's restart echoing a line after it" ce_echoed two
		say "crypt: a connection opened before node 3's restart still carries data after it"
	fi
done

say "crypt: the Docker API (node 1): docker network create -d overlay --opt encrypted"
dapi() { DOCKER_HOST="unix://$WORK/n1api.sock" docker "$@"; }
dapi network create -d overlay --opt encrypted cednet >/dev/null || fail "docker network create --opt encrypted"
enc=$(dapi network inspect cednet | jq -c '.[0].Options')
[ "$(jq -r 'has("encrypted")' <<<"$enc")" = true ] || fail "docker network inspect cednet: Options $enc"
[ "$(ctl network inspect cednet | jq -r '.encrypted')" = true ] || fail "cednet is not encrypted in the store"
dapi network create -d overlay cedclear >/dev/null || fail "docker network create (clear)"
[ "$(dapi network inspect cedclear | jq -r '.[0].Options | has("encrypted")')" = false ] ||
	fail "cedclear shows encrypted: $(dapi network inspect cedclear | jq -c '.[0].Options')"
say "crypt: docker network inspect shows Options $enc (and none on a clear one)"
