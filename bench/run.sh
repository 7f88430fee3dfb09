#!/usr/bin/env bash
# bench/run.sh — peersession's comparison and replication benchmarks.
#
#   ./run.sh [compare]        HTTP comparison: no sessions, scs+memstore,
#                             scs+redisstore, peersession 1 node, 2 nodes
#                             Async/Sync (sticky and alternating), and
#                             alternating ÷ sticky paired on one pair; ~6 min
#   ./run.sh disk             the write path's cost of Config.DataDir: peer
#                             1 node and 2 nodes Async, each with and
#                             without a data directory, read-write; ~2 min
#                             -> results/disk.md
#   ./run.sh repl             replication figures between node processes; ~4 min
#   ./run.sh soak [duration]  two nodes in two network namespaces joined by
#                             a veth pair, load on node A (default 10m; root)
#   ./run.sh stalls           where the visibility tail at 200,000 key
#                             updates/s comes from: both nodes traced
#                             through a round, each stall explained; ~1 min
#                             (bench/diag/stalls, a one-machine diagnosis:
#                             see diag/README.md)
#   ./run.sh flood            the flood probes of issue 19 (login churn,
#                             gossip-port buffering, forged stamps,
#                             handshake slots), each on its own pair of
#                             nodes; ~1.5 min -> results/flood.md
#   ./run.sh kill [flags]     kill -9 of one of three nodes under a paced
#                             round-robin load: the survivors' latency
#                             before and after, 3 rounds; ~1.5 min
#                             -> results/kill.md (KILL_OUT). Flags go to
#                             cmd/kill: the failure run at 16 nodes is
#                             KILL_OUT=kill16.md ./run.sh kill -nodes 16
#                             -copies 2 -sessions 3200 -workers 32 -rate
#                             2000 (~5 min): sessions lost, false "not
#                             found", 5xx, time to full copies again
#   ./run.sh scale [flags]    full replication and partitioned mode as the
#                             cluster grows: N = 2, 4, 8, 16, 32 nodes in
#                             one process, CPU per 1,000 writes (whole,
#                             idle, net of idle), bytes/frames/syscalls per
#                             write, visibility, max rate, heap, join; then
#                             N = 2, 4, 8 as processes; ~40 min
#                             -> results/scale-modes.md (SCALE_OUT;
#                             SCALE_NODES, SCALE_ROUNDS, SCALE_PROCS,
#                             SCALE_COPIES: the modes, 0 full, n Copies n:
#                             "0,2"); flags go to cmd/scale, e.g.
#                             -search-at 16 -sessions 20000
#   ./run.sh chaos [flags]    the chaos harness (cmd/chaos): 3-5 nodes in
#                             network namespaces (root; else loopback
#                             without link faults), clients writing all
#                             the time, a seeded schedule of kill -9,
#                             SIGSTOP, partitions, one-way partitions,
#                             netem, clocks ahead; a check after each heal
#                             (default 60s; -duration 10m -seed N -nodes 3
#                             -consistency sync|async -faults partition,...)
#                             -> results/chaos.md (CHAOS_OUT)
#   ./run.sh all              compare, then repl
#
# Environment: ROUNDS (5), DURATION (3s per variant, mode and round),
# WORKERS (16), SESSIONS (64 per worker), VARIANTS (all; comma-separated),
# MODES (rw,ro), REDIS_PORT (6390), REPL_DURATION (3s), REPL_ROUNDS (3
# rounds of each key-update rate), JOIN_SESSIONS (100000), REPL_OUT
# (repl.md, under bench/results/), PAIRED_CYCLES (9 cycles of the paired
# alternating ÷ sticky measurement; 0: none), KILL_ROUNDS (3), KILL_RATE
# (8000 requests/s over all clients), KILL_OUT (kill.md). Results go to stdout
# and bench/results/. The environment reaches the programs, so
# GOGC=400 REPL_OUT=repl-gogc400.md ./run.sh repl runs the nodes with a
# less eager garbage collector.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
mode=${1:-compare}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3s}
WORKERS=${WORKERS:-16}
SESSIONS=${SESSIONS:-64}
VARIANTS=${VARIANTS:-}
MODES=${MODES:-rw,ro}
REDIS_PORT=${REDIS_PORT:-6390}
REPL_DURATION=${REPL_DURATION:-3s}
REPL_ROUNDS=${REPL_ROUNDS:-3}
JOIN_SESSIONS=${JOIN_SESSIONS:-100000}
REPL_OUT=${REPL_OUT:-repl.md}
PAIRED_CYCLES=${PAIRED_CYCLES:-9}
KILL_ROUNDS=${KILL_ROUNDS:-3}
KILL_RATE=${KILL_RATE:-8000}
KILL_OUT=${KILL_OUT:-kill.md}
SCALE_NODES=${SCALE_NODES:-2,4,8,16,32}
SCALE_ROUNDS=${SCALE_ROUNDS:-3}
SCALE_PROCS=${SCALE_PROCS-2,4,8}
SCALE_COPIES=${SCALE_COPIES:-0,2}
SCALE_OUT=${SCALE_OUT:-scale-modes.md}

bin=$(mktemp -d /tmp/peersession-bench.XXXXXX)
redis_pid=
netns=()
cleanup() {
	set +e
	if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; fi
	for ns in "${netns[@]}"; do
		# End what still runs in the namespace (our own processes only:
		# the namespace was created by this script), then remove it.
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
		sleep 0.2
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_updated=
apt_install() { # package...
	if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

build() { # [package...]: also build these (e.g. ./diag/stalls)
	echo "== building into $bin" >&2
	go build -o "$bin/" ./cmd/... "$@"
	if ! command -v benchstat >/dev/null && [ -z "${NO_BENCHSTAT:-}" ]; then
		# Optional: for comparing results/*.bench.txt between runs.
		GOBIN="$bin" go install golang.org/x/perf/cmd/benchstat@latest 2>/dev/null || true
	fi
}

start_redis() {
	command -v redis-server >/dev/null || apt_install redis-server
	if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
		echo "127.0.0.1:$REDIS_PORT is already in use; set REDIS_PORT" >&2
		exit 1
	fi
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
		--daemonize no --loglevel warning >"$bin/redis.log" 2>&1 &
	redis_pid=$!
	for _ in $(seq 50); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then return; fi
		sleep 0.1
	done
	echo "redis-server did not start on 127.0.0.1:$REDIS_PORT:" >&2
	cat "$bin/redis.log" >&2
	exit 1
}

run_compare() {
	start_redis
	echo "== HTTP comparison: $ROUNDS rounds × $DURATION per variant and mode (stderr shows each round)" >&2
	"$bin/compare" -server "$bin/server" -redis "127.0.0.1:$REDIS_PORT" -rounds "$ROUNDS" \
		-duration "$DURATION" -workers "$WORKERS" -sessions "$SESSIONS" -modes "$MODES" \
		-paired-cycles "$PAIRED_CYCLES" ${VARIANTS:+-variants "$VARIANTS"} -out "$here/results/latest.md"
}

run_disk() {
	echo "== data directory ÷ memory only: $ROUNDS rounds × $DURATION per variant (stderr shows each round)" >&2
	"$bin/compare" -server "$bin/server" -rounds "$ROUNDS" -duration "$DURATION" -workers "$WORKERS" \
		-sessions "$SESSIONS" -modes rw -paired-cycles "$PAIRED_CYCLES" \
		-variants peer-1,peer-1-disk,peer-2-async,peer-2-async-disk -out "$here/results/disk.md"
}

run_repl() {
	echo "== replication figures" >&2
	"$bin/repl" run -bin "$bin/repl" -duration "$REPL_DURATION" -rounds "$REPL_ROUNDS" -join-sessions "$JOIN_SESSIONS" -out "$here/results/$REPL_OUT"
}

run_flood() {
	echo "== flood probes: login churn, gossip-port buffering, forged stamps, handshake slots" >&2
	"$bin/flood" all -server "$bin/server" -out "$here/results/flood.md"
}

run_kill() { # flags for cmd/kill, after (and so over) the defaults
	echo "== kill -9 of one node: $KILL_ROUNDS rounds, -rate $KILL_RATE $* (stderr shows each round)" >&2
	"$bin/kill" -server "$bin/server" -rounds "$KILL_ROUNDS" -workers "$WORKERS" -rate "$KILL_RATE" \
		-out "$here/results/$KILL_OUT" "$@"
}

run_scale() { # flags for cmd/scale, after (and so over) the defaults
	local out="$here/results/$SCALE_OUT" c
	: >"$bin/scale.md"
	for c in ${SCALE_COPIES//,/ }; do
		echo "== scale: Copies $c (0: full replication) at $SCALE_NODES nodes in one process, $SCALE_PROCS as processes, $SCALE_ROUNDS rounds $* (stderr shows each round)" >&2
		"$bin/scale" -nodes "$SCALE_NODES" -rounds "$SCALE_ROUNDS" -copies "$c" ${SCALE_PROCS:+-procs "$SCALE_PROCS" -repl "$bin/repl"} \
			-out "$bin/scale-$c.md" "$@"
		cat "$bin/scale-$c.md" >>"$bin/scale.md"
	done
	cp "$bin/scale.md" "$out"
}

run_chaos() { # flags for cmd/chaos
	echo "== chaos: $*" >&2
	"$bin/chaos" -out "$here/results/${CHAOS_OUT:-chaos.md}" "$@"
}

run_stalls() {
	echo "== stalls: key updates at 200,000/s, the last of 8 rounds traced" >&2
	"$bin/stalls" -repl "$bin/repl" -duration "$REPL_DURATION" -out "$here/results/stalls.md"
}

# soak: node A in namespace psA (10.99.0.1), node B and the load generator
# in psB (10.99.0.2), joined by a veth pair; the /24 exists only inside the
# two namespaces, so every packet stays on the veth pair.
run_soak() {
	local dur=${1:-10m}
	[ "$(id -u)" = 0 ] || { echo "soak needs root (ip netns)" >&2; exit 1; }
	command -v ip >/dev/null || apt_install iproute2
	local sfx=$$ a=psA$$ b=psB$$
	ip netns add "$a"; netns+=("$a")
	ip netns add "$b"; netns+=("$b")
	ip link add "va$sfx" type veth peer name "vb$sfx"
	ip link set "va$sfx" netns "$a"
	ip link set "vb$sfx" netns "$b"
	ip -n "$a" addr add 10.99.0.1/24 dev "va$sfx"
	ip -n "$b" addr add 10.99.0.2/24 dev "vb$sfx"
	for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
	ip -n "$a" link set "va$sfx" up
	ip -n "$b" link set "vb$sfx" up
	head -c 32 /dev/urandom | base64 >"$bin/key"
	echo "== soak: $dur, node A in $a (10.99.0.1), node B + load in $b (10.99.0.2)" >&2
	"$bin/soak" -server "$bin/server" -loadbin "$bin/load" -ns-a "$a" -ns-b "$b" \
		-key-file "$bin/key" -duration "$dur" -workers "$WORKERS" -sessions "$SESSIONS" \
		-out "$here/results/soak.md"
}

mkdir -p results
case "$mode" in
compare) build; run_compare ;;
repl) build; run_repl ;;
disk) build; run_disk ;;
stalls) build ./diag/stalls; run_stalls ;;
kill) build; shift; run_kill "$@" ;;
scale) build; shift; run_scale "$@" ;;
flood) build; run_flood ;;
soak) build; run_soak "${2:-10m}" ;;
chaos) build; shift; run_chaos "$@" ;;
all) build; run_compare; run_repl ;;
*) echo "usage: $0 [compare|disk|repl|stalls|flood|kill [flags]|scale [flags]|soak [duration]|chaos [flags]|all]" >&2; exit 2 ;;
esac
