#!/bin/bash
# Secrets and configs with real daemons and real containers (issue 20): a
# manager and a worker as processes on 127.0.0.1 against a real dockerd.
# A secret and a config reach the container (/run/secrets/NAME, the config
# at its target with its mode); the secret is on no disk of the worker
# (its state directory, the tmpfs left out, and its log) nor in the clear
# in the manager's Raft log; it cannot be removed while the service uses
# it; its file is gone once the service is removed. Ports from
# 25200-25399; every name starts with "secrets".
#
#   tests/integration/secrets.sh [BIN_DIR]     (default build/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build}
SWARMD=$BIN/swarmd
SWARMCTL=$BIN/swarmctl
WORK=$(mktemp -d /tmp/secrets-it.XXXXXX)
IMAGE=cswarm-test:busybox
NODES="secretsm1 secretsw1"
declare -A PID PORT
STARTED_DOCKER=""
VALUE="s3cr3t-$RANDOM-$RANDOM-value"

say() { printf 'secrets: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ]; then
		[ -n "${PID[secretsm1]:-}" ] && ctl secretsm1 task ls >&2
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f")" >&2
			tail -n 15 "$f" >&2
		done
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${DOCKER_HOST:-}" ]; then
		ids=$(for n in $NODES; do
			docker ps -aq --filter "label=cswarm.node.id=$n" 2>/dev/null
		done)
		[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
	fi
	# the secrets' tmpfs of a node killed (not stopped) stays mounted
	for n in $NODES; do
		mountpoint -q "$WORK/$n/secrets" 2>/dev/null && umount -l "$WORK/$n/secrets"
	done
	[ -n "$STARTED_DOCKER" ] && "$ROOT/tests/integration/docker-down.sh" "$WORK/docker" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# fail, wait_for, port_free, ctl, start_node
. "$(dirname "$0")/lib.sh"
# this test's ports: 25200-25399
pick_port() {
	local p
	while :; do
		p=$((25200 + RANDOM % 200))
		port_free "$p" && { echo "$p"; return; }
	done
}

container_of() { # container_of SERVICE: the id of its running container
	docker ps -q --filter "label=cswarm.service.name=$1" | head -n 1
}

# ---------------------------------------------------------------- dockerd
command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$SWARMD" ] && [ -x "$SWARMCTL" ] || fail "build $SWARMD and $SWARMCTL first"
DOCKER_SOCK=$("$ROOT/tests/integration/docker-up.sh" "$WORK/docker" | tail -n 1)
[ -S "$DOCKER_SOCK" ] || fail "no docker socket from docker-up.sh"
[ -f "$WORK/docker/started-by-us" ] && STARTED_DOCKER=1
export DOCKER_HOST=unix://$DOCKER_SOCK
docker image inspect "$IMAGE" >/dev/null || fail "test image $IMAGE missing"

# ---------------------------------------------------------------- cluster
say "a manager and a worker"
start_node secretsm1 --docker-api-socket "$WORK/secretsm1-docker.sock"
wait_for 30 "secretsm1's control socket" ctl secretsm1 cluster inspect
WTOKEN=$(ctl secretsm1 cluster join-token worker)
start_node secretsw1 --join-addr "127.0.0.1:${PORT[secretsm1]}" --join-token "$WTOKEN"
nodes_ready() {
	[ "$(ctl secretsm1 node ls --format json | jq '[.[] | select(.status == "ready")] | length')" -eq 2 ]
}
wait_for 60 "2 nodes ready" nodes_ready

# ---------------------------------------------------------------- create
say "secret and config create, ls, inspect (no data for a secret)"
printf '%s' "$VALUE" | ctl secretsm1 secret create --label team=a secrets-pw - >/dev/null
printf 'listen 80\n' >"$WORK/app.conf"
ctl secretsm1 config create secrets-conf "$WORK/app.conf" >/dev/null
ctl secretsm1 secret ls | has secrets-pw || fail "secret ls: $(ctl secretsm1 secret ls)"
ctl secretsm1 secret inspect secrets-pw >"$WORK/inspect.json"
jq -e '.name == "secrets-pw" and .labels.team == "a" and (has("data") | not)' \
	"$WORK/inspect.json" >/dev/null || fail "secret inspect: $(cat "$WORK/inspect.json")"
grep -q "$VALUE" "$WORK/inspect.json" && fail "secret inspect shows the data"
[ "$(ctl secretsm1 config inspect secrets-conf | jq -r .data | base64 -d)" = "listen 80" ] ||
	fail "config inspect: $(ctl secretsm1 config inspect secrets-conf)"
head -c 600000 /dev/zero >"$WORK/big"
ctl secretsm1 secret create secrets-big "$WORK/big" >"$WORK/out" 2>&1 &&
	fail "a secret of 600000 bytes was accepted"
grep -q "limit" "$WORK/out" || fail "600000 bytes: $(cat "$WORK/out")"
ctl secretsm1 secret create secrets-pw "$WORK/app.conf" >"$WORK/out" 2>&1 &&
	fail "a second secret of one name was accepted"

# ---------------------------------------------------------------- delivery
say "a service with the secret and the config, on the worker"
ctl secretsm1 service create --name secrets-web --constraint node.hostname==secretsw1 \
	--secret secrets-pw --config source=secrets-conf,target=/etc/app.conf,mode=0440 \
	--image "$IMAGE" -- sleep 1000 >/dev/null
wait_for 60 "secrets-web running" sh -c "[ -n \"\$(docker ps -q --filter label=cswarm.service.name=secrets-web)\" ]"
ctl secretsm1 service inspect secrets-web >"$WORK/svc-inspect.json"
[ "$(jq -r '.spec | [.secrets[0].name, .secrets[0].target, .configs[0].target, .configs[0].mode] | join(" ")' "$WORK/svc-inspect.json")" = \
	"secrets-pw secrets-pw /etc/app.conf 0440" ] || fail "service inspect: $(cat "$WORK/svc-inspect.json")"
C=$(container_of secrets-web)
[ "$(docker exec "$C" cat /run/secrets/secrets-pw)" = "$VALUE" ] ||
	fail "/run/secrets/secrets-pw: $(docker exec "$C" cat /run/secrets/secrets-pw 2>&1)"
[ "$(docker exec "$C" cat /etc/app.conf)" = "listen 80" ] || fail "/etc/app.conf"
mode=$(docker exec "$C" stat -c %a /etc/app.conf)
[ "$mode" = 440 ] || fail "/etc/app.conf mode $mode, not 440"
docker exec "$C" sh -c 'echo x >/run/secrets/secrets-pw' 2>/dev/null &&
	fail "/run/secrets/secrets-pw is writable"
# on a tmpfs, and nowhere on a disk: the worker's state directory (without
# the tmpfs: -xdev), its log, the manager's state (Raft log sealed) and log
mountpoint -q "$WORK/secretsw1/secrets" || fail "no tmpfs at secretsw1/secrets"
[ "$(stat -f -c %T "$WORK/secretsw1/secrets")" = tmpfs ] || fail "secrets dir is no tmpfs"
for n in secretsw1 secretsm1; do
	if find "$WORK/$n" -xdev -type f -print0 | xargs -0 grep -l -a -- "$VALUE" >"$WORK/found"; then
		fail "the secret is in the clear on $n's disk: $(cat "$WORK/found")"
	fi
	grep -q -a -- "$VALUE" "$WORK/$n.log" && fail "the secret is in $n's log"
done
say "the secret is not on the disks (state dirs, logs); it is on the tmpfs"
grep -r -q -a -- "$VALUE" "$WORK/secretsw1/secrets" || fail "not on the tmpfs either?"

# ---------------------------------------------------------------- in use
say "secret rm refused while used, naming the service"
ctl secretsm1 secret rm secrets-pw >"$WORK/out" 2>&1 && fail "secret rm of a used secret"
grep -q "secrets-web" "$WORK/out" || fail "secret rm: $(cat "$WORK/out")"
ctl secretsm1 config rm secrets-conf >"$WORK/out" 2>&1 && fail "config rm of a used config"

# ---------------------------------------------------------------- gone
say "service rm: the container and its files go"
ctl secretsm1 service rm secrets-web >/dev/null
wait_for 60 "secrets-web's container gone" sh -c "[ -z \"\$(docker ps -aq --filter label=cswarm.service.name=secrets-web)\" ]"
files_gone() { [ -z "$(ls -A "$WORK/secretsw1/secrets")" ]; }
wait_for 30 "the secret's files gone from the tmpfs" files_gone
wait_for 30 "secret rm once unused" ctl secretsm1 secret rm secrets-pw
ctl secretsm1 config rm secrets-conf >/dev/null
[ -z "$(ctl secretsm1 secret ls --format json | jq -r '.[].name')" ] || fail "secret ls not empty"
# ---------------------------------------------------------------- Docker's CLI
dk() { DOCKER_HOST=unix://$WORK/secretsm1-docker.sock docker "$@"; }
say "docker secret create/ls/inspect, service create --secret, stack deploy with secrets:"
printf '%s' "$VALUE" | dk secret create --label via=docker secrets-dk - >/dev/null
dk secret ls --format '{{.Name}}' | has -x secrets-dk || fail "docker secret ls: $(dk secret ls 2>&1)"
dk secret inspect secrets-dk >"$WORK/dk.json"
jq -e '.[0].Spec.Name == "secrets-dk" and .[0].Spec.Labels.via == "docker" and (.[0].Spec | has("Data") | not)' \
	"$WORK/dk.json" >/dev/null || fail "docker secret inspect: $(cat "$WORK/dk.json")"
printf 'k=v\n' | dk config create secrets-dkconf - >/dev/null
[ "$(dk config inspect secrets-dkconf --format '{{printf "%s" .Spec.Data}}')" = "k=v" ] ||
	fail "docker config inspect: $(dk config inspect secrets-dkconf 2>&1)"
dk service create --detach --name secrets-dkweb --constraint node.hostname==secretsw1 \
	--secret source=secrets-dk,target=pw --config source=secrets-dkconf,target=/etc/k.conf \
	"$IMAGE" sleep 1000 >/dev/null || fail "docker service create --secret"
dk service inspect secrets-dkweb >"$WORK/svc.json"
jq -e '.[0].Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName == "secrets-dk" and
	.[0].Spec.TaskTemplate.ContainerSpec.Secrets[0].File.Name == "pw"' "$WORK/svc.json" >/dev/null ||
	fail "docker service inspect: $(jq .[0].Spec.TaskTemplate.ContainerSpec "$WORK/svc.json")"
wait_for 60 "secrets-dkweb running" sh -c "[ -n \"\$(docker ps -q --filter label=cswarm.service.name=secrets-dkweb)\" ]"
C=$(container_of secrets-dkweb)
[ "$(docker exec "$C" cat /run/secrets/pw)" = "$VALUE" ] || fail "docker: /run/secrets/pw"
[ "$(docker exec "$C" cat /etc/k.conf)" = "k=v" ] || fail "docker: /etc/k.conf"
dk secret rm secrets-dk >"$WORK/out" 2>&1 && fail "docker secret rm of a used secret"
grep -q secrets-dkweb "$WORK/out" || fail "docker secret rm: $(cat "$WORK/out")"
dk service rm secrets-dkweb >/dev/null
wait_for 60 "secrets-dkweb gone" sh -c "[ -z \"\$(docker ps -aq --filter label=cswarm.service.name=secrets-dkweb)\" ]"
wait_for 30 "docker secret rm once unused" dk secret rm secrets-dk
dk config rm secrets-dkconf >/dev/null
# docker stack deploy with a secrets: section (the CLI creates it, labelled)
printf 'stacked-%s' "$VALUE" >"$WORK/stack-secret.txt"
cat >"$WORK/stack.yml" <<YML
version: "3.8"
services:
  app:
    image: $IMAGE
    command: ["sleep", "1000"]
    deploy:
      placement:
        constraints: [node.hostname == secretsw1]
    secrets: [stk]
secrets:
  stk:
    file: $WORK/stack-secret.txt
YML
dk stack deploy -c "$WORK/stack.yml" secretsstk >"$WORK/out" 2>&1 || fail "docker stack deploy: $(cat "$WORK/out")"
# the stack's default overlay network cannot run on loopback nodes (no
# data plane): what the stack made is checked, delivery is above
dk secret ls --format '{{.Name}} {{.Labels}}' | has "^secretsstk_stk .*com.docker.stack.namespace=secretsstk" ||
	fail "stack: its secret: $(dk secret ls --format '{{.Name}} {{.Labels}}' 2>&1)"
[ "$(dk service inspect secretsstk_app --format '{{(index .Spec.TaskTemplate.ContainerSpec.Secrets 0).SecretName}} {{(index .Spec.TaskTemplate.ContainerSpec.Secrets 0).File.Name}}')" = "secretsstk_stk stk" ] ||
	fail "stack: the service's secret: $(dk service inspect secretsstk_app --format '{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}' 2>&1)"
dk stack rm secretsstk >/dev/null 2>&1 || true
wait_for 60 "the stack's secret removed" sh -c "! DOCKER_HOST=unix://$WORK/secretsm1-docker.sock docker secret ls --format '{{.Name}}' | grep -q secretsstk"
say "PASS"
