#!/usr/bin/env bash
# bench/ab.sh OLD_REF [ROUNDS] — replication figures of the commit OLD_REF
# against the working tree, the two builds started alternately in each of
# ROUNDS rounds (default 3), so that both see the same machine:
#
#   vis   write-to-visible latency on the peer at 10,000 writes/s (p50, p99 µs)
#   join  a third node joining two that hold 100,000 sessions of 1 KiB:
#         WaitReady (ms)
#   upd   200,000 key updates/s on A with a probe session created every
#         millisecond: updates reached/s and the probes' visibility on B
#         (p50, p99 µs)
#
# One line per run on stderr, then the median of each figure per build
# (and the runs) on stdout and in bench/results/ab.txt. Node
# processes of bench/cmd/repl on loopback ports 17000-19999; every run is
# bounded (3 s of writes, 20 s for a join) and its processes are ended.
set -euo pipefail
cd "$(dirname "$0")"
old_ref=${1:?usage: bench/ab.sh OLD_REF [ROUNDS]}
rounds=${2:-3}
tmp=$(mktemp -d /tmp/peersession-ab.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	git worktree remove --force "$tmp/old" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

git worktree add -q --detach "$tmp/old" "$old_ref"
(cd "$tmp/old/bench" && go build -o "$tmp/old/bin/" ./cmd/repl)
go build -o "$tmp/new/bin/" ./cmd/repl

# field JSON NAME: the number after "NAME": in JSON.
field() { grep -o "\"$2\":[0-9.e+-]*" <<<"$1" | head -1 | cut -d: -f2; }

# start_node BIN NAME PORT LOG [ARGS...]: start a node; wait until it serves.
start_node() {
	local bin=$1 name=$2 port=$3 log=$4
	shift 4
	"$bin" node -name "$name" -gossip-port "$port" -http "127.0.0.1:$((port + 1000))" "$@" >"$log" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do
		grep -q LISTEN "$log" && return 0
		sleep 0.1
	done
	echo "ab.sh: node $name did not start; its log:" >&2
	cat "$log" >&2
	stop_nodes # each run is a subshell: its nodes are its own to end
	exit 1
}

stop_nodes() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}

# pair BIN: nodes a and b on fresh ports; sets A and B to their HTTP bases.
pair() {
	local p=$((17000 + RANDOM % 1000))
	start_node "$1" a "$p" "$tmp/a.log"
	start_node "$1" b $((p + 1)) "$tmp/b.log" -join "127.0.0.1:$p"
	A=http://127.0.0.1:$((p + 1000)) B=http://127.0.0.1:$((p + 1001)) P=$p
}

run_vis() {
	pair "$1"
	curl -sf "$B/vis" >/dev/null
	curl -sf "$A/write?kind=create&rate=10000&workers=4&dur=3s" >/dev/null
	sleep 1
	local v
	v=$(curl -sf "$B/vis")
	stop_nodes
	echo "vis p50_us $(field "$v" p50_us) p99_us $(field "$v" p99_us)"
}

run_join() {
	pair "$1"
	curl -sf "$A/write?kind=create&n=100000&rate=20000&workers=2&size=1024&dur=5m" >/dev/null
	sleep 2
	start_node "$1" c $((P + 2)) "$tmp/c.log" -join "127.0.0.1:$P"
	local r
	r=$(curl -sf --max-time 20 "http://127.0.0.1:$((P + 1002))/ready")
	stop_nodes
	echo "join ready_ms $(field "$r" ready_ms) sessions $(field "$r" sessions_at_ready)"
}

run_upd() {
	pair "$1"
	local w since v
	w=$(curl -sf "$A/write?kind=update&rate=200000&workers=4&sessions=4096&dur=3s&probe=1000")
	since=$(field "$w" start_unix_ns)
	sleep 1
	v=$(curl -sf "$B/vis?since=$since")
	stop_nodes
	echo "upd rate $(field "$w" rate) probe_p50_us $(field "$v" p50_us) probe_p99_us $(field "$v" p99_us)"
}

out=$tmp/runs.txt
for r in $(seq "$rounds"); do
	for fig in vis join upd; do
		for v in old new; do
			line="$v $(run_$fig "$tmp/$v/bin/repl")"
			echo "round $r/$rounds $line" >&2
			echo "$line" >>"$out"
		done
	done
done

# median BUILD FIGURE KEY
median() {
	awk -v b="$1" -v f="$2" -v k="$3" '$1 == b && $2 == f { for (i = 3; i < NF; i += 2) if ($i == k) print $(i + 1) }' "$out" |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.0f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
mkdir -p results
{
	echo "# $old_ref (old) against the working tree (new), $rounds alternating rounds, $(date -u '+%Y-%m-%d %H:%M UTC'); medians"
	printf '%-22s %10s %10s\n' figure old new
	for fk in "vis p50_us" "vis p99_us" "join ready_ms" "upd rate" "upd probe_p50_us" "upd probe_p99_us"; do
		set -- $fk
		printf '%-22s %10s %10s\n' "$1 $2" "$(median old "$1" "$2")" "$(median new "$1" "$2")"
	done
	echo
	echo "# runs"
	cat "$out"
} | tee results/ab.txt
