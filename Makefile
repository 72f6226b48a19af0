# cswarm: one non-recursive GNU Makefile.
#
#   make            build/swarmsim (release: -O2, assertions on)
#   make run        replay every scenario in scenarios/, one result line each;
#                   writes reports/index.html (timelines, scheduler metrics),
#                   reports/metrics.json and reports/junit.xml
#                   (BASELINE=old-metrics.json marks regressions)
#   make test       ASan+UBSan build, every cmocka test, the one-rule check,
#                   the scenario suite twice (determinism)
#   make bench      benchmarks (release build); timing claims live here only
#   make swarmload-smoke  3 real managers, build/swarmload with 100 agents
#                   (fake executor), 1,000 replicas all RUNNING, node-death
#                   and leader-kill phases (in make test)
#   make soak       real daemons and Docker under seeded random faults for
#                   SOAK_SECONDS (600); SOAK_SEED=N repeats a run's schedule
#   make huge       scenarios/huge/ (the full sizes of scenarios/large/)
#   make coverage   lcov HTML report in reports/coverage/
#   make lint       clang-format check and cppcheck
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       apt-get install what is missing (quiet when all is there)
#
# Knobs: V=1 prints full commands; SANITIZE=address,undefined overrides the
# sanitizers of the test build; CC=clang works too.

.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:
MAKEFLAGS += --no-builtin-rules

VARIANT ?= release
SANITIZE ?= address,undefined
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc

Q := $(if $(V),,@)
say = $(if $(V),,@printf '  %-6s %s\n' $(1) $(2);)

# ---------------------------------------------------------------- packages
DEPS_PKGS := build-essential pkg-config libuv1-dev libraft-dev \
	libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev \
	libcurl4-openssl-dev libjansson-dev libhttp-parser-dev libssl-dev libcmocka-dev lcov valgrind \
	docker.io busybox-static jq sqlite3 openssl tcpdump python3 curl \
	libnftables-dev nftables iproute2
# issue 17's data plane: netlink (libmnl); nsenter (util-linux) for
# tests/integration/netns.sh
DEPS_PKGS += libmnl-dev util-linux
LINT_PKGS := clang-format cppcheck

# Installs only what is missing; runs apt-get update only then. Quiet when
# everything is present. Not root and something missing: say what to run.
define install_pkgs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "deps: not root; run: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq >/dev/null && \
	  apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "deps: apt-get install failed" >&2; exit 1; }; \
	fi
endef

# ---------------------------------------------------------------- flags
WARN := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wundef \
	-Wno-unused-parameter -Werror
DEFS := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE

ifeq ($(VARIANT),release)
  OPT := -O2 -g
  LDOPT :=
else ifeq ($(VARIANT),asan)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE) \
	-fno-sanitize-recover=all
  LDOPT := -fsanitize=$(SANITIZE)
else ifeq ($(VARIANT),fuzz)
  # libFuzzer targets (tests/fuzz/, issue 19): clang only; every object
  # carries the fuzzer's coverage, ASan and UBSan
  CC := clang
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all
  LDOPT := -fsanitize=fuzzer,address,undefined
else ifeq ($(VARIANT),cov)
  OPT := -O0 -g --coverage
  LDOPT := --coverage
else ifeq ($(VARIANT),clang)
  # the release flags under the other compiler: make test's determinism
  # step replays the scenarios with it too (another compiler orders what
  # C leaves unsequenced differently; such a draw order changes a hash)
  CC := clang
  OPT := -O2 -g
  LDOPT :=
else
  $(error unknown VARIANT=$(VARIANT): release, asan, fuzz, cov or clang)
endif

GEN := build/gen
O := build/$(VARIANT)
CPPFLAGS := -I. -I$(GEN) $(DEFS) -MMD -MP
CFLAGS := $(WARN) $(OPT)
# libcrypto: core/pki.c (certificates and join tokens, pure functions).
LDLIBS := -lraft -lprotobuf-c -lsqlite3 -lcrypto -lm
# net/ (the real world) adds libuv, libcurl, jansson (Docker's JSON) and
# libssl (TLS between nodes), http_parser (the Docker API's HTTP).
NET_LDLIBS := $(LDLIBS) -luv -lcurl -ljansson -lssl -lhttp_parser
# libnftables: net/lb.c (VIP and ingress rules as nft script text, one
# transaction each, nft's own error text back; no process spawned).
NET_LDLIBS += -lnftables
# libmnl: net/dataplane.c (netlink: bridges, VXLAN devices, their entries).
NET_LDLIBS += -lmnl

# ---------------------------------------------------------------- sources
PROTO := core/api.proto
PROTO_C := $(GEN)/core/api.pb-c.c
PROTO_H := $(GEN)/core/api.pb-c.h

CORE_SRC := $(sort $(wildcard core/*.c)) $(PROTO_C)
SIM_MAIN_SRC := sim/swarmsim.c sim/explore_main.c sim/realworld.c
SIM_LIB_SRC := $(filter-out $(SIM_MAIN_SRC),$(sort $(wildcard sim/*.c)))
NET_MAIN_SRC := net/swarmd.c net/swarmctl.c net/swarmload.c
NET_LIB_SRC := $(filter-out $(NET_MAIN_SRC),$(sort $(wildcard net/*.c)))
TEST_SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SUPPORT_SRC := $(filter-out $(FUZZ_SRC),$(sort $(wildcard tests/fuzz/*.c)))

obj = $(patsubst %.c,$(O)/%.o,$(patsubst $(GEN)/%,%,$(1)))

CORE_OBJ := $(call obj,$(CORE_SRC))
SIM_LIB_OBJ := $(call obj,$(SIM_LIB_SRC))
NET_LIB_OBJ := $(call obj,$(NET_LIB_SRC))
TEST_SUPPORT_OBJ := $(call obj,$(TEST_SUPPORT_SRC))

LIBCORE := $(O)/libcore.a
LIBSIM := $(O)/libsim.a
LIBNET := $(O)/libnet.a
# tests/support/ as an archive: each test or bench takes only the helpers it
# calls, so a helper that calls cmocka (scnrun) never reaches a bench
LIBTESTSUPPORT := $(O)/libtestsupport.a
UNIT_BIN := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))
BENCH_BIN := $(patsubst tests/bench/%.c,$(O)/bench/%,$(BENCH_SRC))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(O)/bin/%,$(FUZZ_SRC))

ifeq ($(VARIANT),release)
  BIN := build
else
  BIN := $(O)
endif
SWARMSIM := $(BIN)/swarmsim
SWARMD := $(BIN)/swarmd
SWARMCTL := $(BIN)/swarmctl
DAEMONS := $(if $(wildcard net/swarmd.c),$(SWARMD)) $(if $(wildcard net/swarmctl.c),$(SWARMCTL))
# the load generator (issue 18): N real agents in one process, fake executor
SWARMLOAD := $(BIN)/swarmload

SCENARIOS := $(sort $(wildcard scenarios/*.scn))

# ---------------------------------------------------------------- top level
.PHONY: all deps lint-deps run test check unit scenarios onerule bench integration huge \
	soak coverage lint install clean

all: $(SWARMSIM) $(DAEMONS) $(SWARMLOAD)

deps:
	$(call install_pkgs,$(DEPS_PKGS))

lint-deps:
	$(call install_pkgs,$(LINT_PKGS))

run: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmsim
	@mkdir -p reports
	build/swarmsim run $(SCENARIOS) --junit reports/junit.xml --report reports \
	  $(if $(BASELINE),--baseline $(BASELINE))

test: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release onerule build/swarmsim \
	  build/swarmd build/swarmctl
	$(Q)$(MAKE) --no-print-directory VARIANT=asan check
	$(Q)$(MAKE) --no-print-directory fuzz-deps
	$(Q)$(MAKE) --no-print-directory VARIANT=clang build/clang/swarmsim
	$(Q)tools/determinism-check build/swarmsim build/asan/swarmsim \
	  build/clang/swarmsim -- $(SCENARIOS)
	$(Q)build/swarmsim explore scenarios/explore/*.scn --seeds 50 --quiet
	$(Q)build/swarmsim explore scenarios/explore/*.scn --seeds 25 --from 1001 --swarm --quiet
	@# issue 19: four shards of an exploration, merged, equal one run
	$(Q)tests/integration/explore-shards.sh build
	@# scenarios too large for ASan and valgrind: the release build, twice
	$(Q)build/swarmsim run scenarios/large/*.scn --check-determinism
	@# memcheck sees what ASan cannot: reads of uninitialised memory, the
	@# usual way a replay stops being exact
	$(Q)valgrind -q --error-exitcode=9 build/swarmsim run $(SCENARIOS) --quiet
	@# the real daemons: refusals at start (no Docker), then a cluster
	@# with real Docker (started and stopped by the test)
	$(Q)tests/integration/swarmd-start.sh build
	$(Q)tests/integration/disk-full.sh build
	$(Q)tests/integration/cluster.sh build
	@# jobs (issue 14) with real containers: run to completion, rerun
	$(Q)tests/integration/job.sh build
	@# issue 20: a worker's machine dies and returns; an opted-in service
	@# is rebalanced within its budget, another is not moved
	$(Q)tests/integration/rebalance.sh build
	@# issue 15: networks, addresses, ports (the allocator's half)
	$(Q)tests/integration/network.sh build
	@# issue 17: VIP and ingress nftables rules carrying real connections,
	@# and the tasks' resolver against glibc's, in network namespaces the
	@# tests make and remove
	$(Q)tests/integration/lb.sh build/release
	$(Q)tests/integration/lb-resolver.sh build/release
	@# issue 13 with real daemons: TLS on the wire (a capture holds no
	@# secret), a worker's key can do no more than a worker, renewal,
	@# removal, autolock
	$(Q)tests/integration/tls.sh build
	$(Q)tests/integration/security.sh build
	@# issue 14: health checks with real Docker (RUNNING once healthy, an
	@# unhealthy container replaced)
	$(Q)tests/integration/health.sh build
	@# issue 16: Debian's docker CLI drives a cluster through the Docker
	@# Engine API socket
	$(Q)tests/integration/dockerapi.sh build
	@# issue 20: secrets and configs with real daemons, swarmctl and
	@# Docker's CLI (on a tmpfs, never on the agent's disk)
	$(Q)tests/integration/secrets.sh build
	@# issue 20: backup, restore, force-new-cluster with real daemons
	$(Q)tests/integration/dr.sh build
	@# issue 20: the event stream with three real managers (swarmctl
	@# events, docker events), a follower keeps it through a leader kill
	$(Q)tests/integration/events.sh build
	$(Q)tests/integration/state-format.sh build
	@# issue 19: real managers recorded through a leader kill, each
	@# recording replayed in swarmsim with no divergence
	$(Q)tests/integration/record.sh build
	@# issue 17: the data plane across three nodes in network namespaces
	@# (each its swarmd and dockerd): a task reaches another node's by
	@# address over VXLAN, then an encrypted overlay end to end (keys
	@# rotated, swarmds restarted) (the smoke: `make netns` runs it all)
	$(Q)tests/integration/netns.sh build --smoke
	@# issue 17 encryption: an encrypted overlay between two nodes in
	@# namespaces through crypttun's tunnel; no payload and no VXLAN on the
	@# underlay (the smoke: `make crypt` runs it all)
	$(Q)tests/integration/crypt.sh build --smoke
	@# a short soak: a minute of random faults, then convergence
	$(Q)SOAK_SECONDS=60 tests/soak/soak.sh build
	@# issue 18: the load generator's smoke run (100 agents, 1,000 tasks)
	$(Q)$(MAKE) --no-print-directory swarmload-smoke
	@# issue 19: scenario files against real daemons in namespaces, both
	@# worlds must agree (about 2 minutes; `make real` runs the subset)
	$(Q)$(MAKE) --no-print-directory real-smoke
	@# issue 19: every fuzz target replays its corpus, then fuzzes briefly
	$(Q)$(MAKE) --no-print-directory fuzz-smoke

# ---------------------------------------------------------------- fuzzing
# libFuzzer targets (issue 19), one per decoder: tests/fuzz/fuzz_*.c, their
# seed corpus in tests/fuzz/corpus/TARGET/ (what they find goes to
# build/fuzz/corpus/, crashes to build/fuzz/artifacts/). `make fuzz` runs
# each for FUZZ_SECONDS; `make fuzz-smoke` (in make test) replays the corpus
# and runs each for FUZZ_SMOKE_SECONDS. tests/fuzz/run.sh says the CPU time.
FUZZ_PKGS := clang libclang-rt-14-dev
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
.PHONY: fuzz fuzz-smoke fuzz-deps fuzz-bins

fuzz-deps:
	$(call install_pkgs,$(DEPS_PKGS) $(FUZZ_PKGS))

fuzz-bins: $(FUZZ_BIN)

fuzz: fuzz-deps
	$(Q)$(MAKE) --no-print-directory VARIANT=fuzz fuzz-bins
	tests/fuzz/run.sh build/fuzz/bin $(FUZZ_SECONDS)

fuzz-smoke: fuzz-deps
	$(Q)$(MAKE) --no-print-directory VARIANT=fuzz fuzz-bins
	tests/fuzz/run.sh build/fuzz/bin $(FUZZ_SMOKE_SECONDS) --replay

# The integration test alone: 3 managers and 2 workers as processes against a
# real dockerd (started when none answers; needs root to start one).
integration: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmd build/swarmctl
	$(Q)$(MAKE) --no-print-directory VARIANT=asan build/asan/tests/test_docker
	tests/integration/swarmd-start.sh build
	tests/integration/disk-full.sh build
	tests/integration/cluster.sh build
	tests/integration/job.sh build
	tests/integration/rebalance.sh build
	tests/integration/network.sh build
	tests/integration/tls.sh build
	tests/integration/security.sh build
	tests/integration/health.sh build
	tests/integration/dockerapi.sh build
	tests/integration/secrets.sh build
	tests/integration/dr.sh build
	tests/integration/events.sh build
	tests/integration/state-format.sh build
	tests/integration/record.sh build

# Encrypted overlays (issue 17; root): two nodes in network namespaces of
# their own driving net/dataplane.c and net/crypttun.c (ct_harness), a
# capture on the underlay; removes all it made, also when it fails.
.PHONY: crypt
crypt: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release all
	tests/integration/crypt.sh build

# The data plane across nodes on one machine (issue 17; root): three nodes in
# network namespaces, each with its own swarmd and dockerd, real traffic
# between their tasks; removes all it made, also when it fails.
.PHONY: netns
netns: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmd build/swarmctl
	tests/integration/netns.sh build

# issue 17 encryption end to end (root): the encrypted overlay's steps of
# netns.sh alone (tests/integration/netns-crypt.sh), on non-default ports.
.PHONY: netns-crypt
netns-crypt: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmd build/swarmctl
	tests/integration/netns.sh build --crypt

# issue 19: scenario files against real daemons (swarmsim run --real: each
# node in a network namespace with its own swarmd and dockerd; a difference
# in outcome between the worlds fails). `make real-smoke` (in make test,
# about 2.5 minutes) runs scenarios/real/smoke-*.scn; `make real` the whole
# real subset: leader loss, partitions, worker death, rolling update, drain
# (about 12 minutes); real-smoke also interrupts two runs (SIGINT, SIGTERM)
# and checks nothing of theirs is left (30 s). Needs root.
REAL_SMOKE_SCENARIOS := $(sort $(wildcard scenarios/real/smoke-*.scn))
REAL_SCENARIOS := scenarios/leader-loss.scn scenarios/leader-minority-partition.scn \
	scenarios/partitioned-worker.scn scenarios/worker-killed.scn \
	scenarios/rolling-update.scn scenarios/drain-activate.scn \
	$(sort $(wildcard scenarios/real/*.scn))
.PHONY: real real-smoke
real: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmsim build/swarmd build/swarmctl
	build/swarmsim run $(REAL_SCENARIOS) --real --bin build

real-smoke: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmsim build/swarmd build/swarmctl
	build/swarmsim run $(REAL_SMOKE_SCENARIOS) --real --bin build
	tests/integration/real-interrupt.sh build

# The load generator's smoke run (in make test): 3 real managers, 100 real
# agents in build/swarmload with the fake executor, a service of 1,000
# replicas all RUNNING, then 10 agents killed (their tasks RUNNING
# elsewhere) and the leader killed (every agent in session with the new
# one, no task started twice): under a minute. `make bench` runs the same at 1,000 x 10,000;
# build/release/bench/bench_swarmload 10000 100000 is the issue's size.
.PHONY: swarmload-smoke
swarmload-smoke:
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmd build/swarmload \
	  build/release/bench/bench_swarmload
	build/release/bench/bench_swarmload 100 1000

# The soak alone (not in `make test`, which runs a one-minute one): 3
# managers and 3 workers as processes on one dockerd under a seeded schedule
# of kills, machine deaths, SIGSTOPs, drains, updates and scales, checked
# against Docker's containers; tests/soak/soak.sh says what it checks and
# its knobs (SOAK_SEED, SOAK_SECONDS, ...). A failure keeps the logs.
soak: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmd build/swarmctl
	SOAK_SECONDS=$${SOAK_SECONDS:-600} tests/soak/soak.sh build

# The full sizes of scenarios/large/ (a manager catching up on 100,000
# running tasks, a manager joining a store of 200,000): release build,
# minutes; not in make test.
huge: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmsim
	build/swarmsim run scenarios/huge/*.scn

check: unit scenarios

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do \
	  echo "== $$t"; $$t; done

scenarios: $(SWARMSIM)
	$(SWARMSIM) run $(SCENARIOS) --check-determinism

# The one rule, checked: core/ objects import nothing from the world and keep
# no writable globals; sim/ objects (all but swarmsim.c's main, which times
# the wall clock for its report line) read no clock and start no threads.
onerule: $(LIBCORE) $(LIBSIM)
	$(Q)tools/onerule-check $(LIBCORE) $(LIBSIM)

bench: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=release bench-bins
	@set -e; for b in $(patsubst tests/bench/%.c,build/release/bench/%,$(BENCH_SRC)); do \
	  $$b; done

.PHONY: bench-bins
# bench_raftreal runs build/swarmd and build/swarmctl (when their sources exist)
bench-bins: $(BENCH_BIN) $(DAEMONS) $(SWARMLOAD)

coverage: deps
	$(Q)rm -rf build/cov reports/coverage
	$(Q)$(MAKE) --no-print-directory VARIANT=cov check
	$(Q)lcov -q --capture --directory build/cov --output-file build/cov/all.info \
	  --rc lcov_branch_coverage=0 2>/dev/null
	$(Q)lcov -q --extract build/cov/all.info '*/core/*' '*/sim/*' '*/net/*' \
	  --output-file build/cov/src.info 2>/dev/null
	$(Q)lcov -q --remove build/cov/src.info '*/build/gen/*' \
	  --output-file build/cov/cs.info 2>/dev/null
	$(Q)genhtml -q build/cov/cs.info --output-directory reports/coverage
	$(Q)lcov -q --extract build/cov/cs.info '*/core/*' --output-file build/cov/core.info 2>/dev/null
	@printf 'all (core, sim, net): '; lcov --summary build/cov/cs.info 2>&1 | grep -E 'lines'
	@printf 'core/ alone:          '; lcov --summary build/cov/core.info 2>&1 | grep -E 'lines'
	@echo "coverage: reports/coverage/index.html"

lint: lint-deps
	$(Q)clang-format --dry-run --Werror core/*.[ch] sim/*.[ch] net/*.[ch] tests/*/*.[ch]
	$(Q)cppcheck -q --error-exitcode=1 --std=c11 --inline-suppr \
	  --enable=warning,portability,performance \
	  --suppress=missingIncludeSystem -I. -I$(GEN) core sim net tests

install:
	$(Q)$(MAKE) --no-print-directory VARIANT=release build/swarmsim build/swarmd build/swarmctl
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 build/swarmsim build/swarmd build/swarmctl $(DESTDIR)$(PREFIX)/bin/
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' contrib/swarmd.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/swarmd.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/swarmd.service

clean:
	rm -rf build

# ---------------------------------------------------------------- rules
$(GEN)/core/api.pb-c.c $(GEN)/core/api.pb-c.h &: $(PROTO)
	@mkdir -p $(GEN)
	$(call say,PROTOC,$<)protoc-c --c_out=$(GEN) $<

# Every object may include the generated header.
$(O)/%.o: %.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# Generated code is compiled without our extra warnings (not our code).
$(O)/core/api.pb-c.o: $(PROTO_C)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CPPFLAGS) $(OPT) -std=c11 -c $< -o $@

$(LIBCORE): $(CORE_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(LIBSIM): $(SIM_LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(LIBNET): $(NET_LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(LIBTESTSUPPORT): $(TEST_SUPPORT_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BIN)/swarmd $(BIN)/swarmctl $(BIN)/swarmload: $(BIN)/%: $(O)/net/%.o $(LIBNET) $(LIBCORE)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDOPT) -o $@ $^ $(NET_LDLIBS)

$(SWARMSIM): $(patsubst %.c,$(O)/%.o,$(SIM_MAIN_SRC)) $(LIBSIM) $(LIBCORE)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

$(O)/tests/test_%: $(O)/tests/unit/test_%.o $(LIBTESTSUPPORT) $(LIBSIM) $(LIBNET) $(LIBCORE)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDOPT) -o $@ $^ $(NET_LDLIBS) -lcmocka

$(O)/bin/fuzz_%: $(O)/tests/fuzz/fuzz_%.o $(call obj,$(FUZZ_SUPPORT_SRC)) $(LIBSIM) $(LIBNET) $(LIBCORE)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDOPT) -o $@ $^ $(NET_LDLIBS)

$(O)/bench/bench_%: $(O)/tests/bench/bench_%.o $(LIBTESTSUPPORT) $(LIBSIM) $(LIBNET) $(LIBCORE)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDOPT) -o $@ $^ $(NET_LDLIBS)

-include $(shell find build/$(VARIANT) -name '*.d' 2>/dev/null)
