#!/usr/bin/env bash
# bench/httpab.sh [ROUNDS] REF... — the HTTP comparison's read-write
# workload against the servers (bench/cmd/server) of each REF and of the
# working tree ("new"), the builds alternating in each of ROUNDS rounds
# (default 6; the order rotates every round), so that all see the same
# machine. For each of the variants none, scs-mem, peer-1 and peer-2
# (two nodes, Async, load on the first), one closed-loop load of 3 s
# (cmd/load: 16 clients × 64 sessions, /rw) gives:
#
#   cpu  the server processes' CPU time (user + system, both nodes for
#        peer-2, from /proc) per request, in µs: what a request costs,
#        which a busy shared machine disturbs far less than throughput
#   rps  requests per second (the README's figure: noisy here)
#
# One line per build and round on stderr, then the median of each figure
# per build and variant, and of the ratios peer-2 ÷ scs-mem and peer-2 ÷
# none within each run, on stdout and in bench/results/httpab.txt. The
# load generator (cmd/load) is the working tree's for every build. Servers
# listen on loopback (gossip ports 20000-24999); each is ended after its
# load, and every process and worktree at exit.
set -euo pipefail
cd "$(dirname "$0")"
rounds=6
if [[ ${1:-} =~ ^[0-9]+$ ]]; then rounds=$1; shift; fi
[ $# -gt 0 ] || { echo "usage: bench/httpab.sh [ROUNDS] REF..." >&2; exit 2; }
refs=("$@")
tmp=$(mktemp -d /tmp/peersession-httpab.XXXXXX)
pids=()
stop_servers() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
cleanup() {
	stop_servers
	for r in "${refs[@]}"; do git worktree remove --force "$tmp/wt-$r" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

builds=()
for r in "${refs[@]}"; do
	git worktree add -q --detach "$tmp/wt-$r" "$r"
	(cd "$tmp/wt-$r/bench" && go build -o "$tmp/bin-$r/" ./cmd/server)
	builds+=("$r")
done
go build -o "$tmp/bin-new/" ./cmd/server
go build -o "$tmp/" ./cmd/load
builds+=(new)

# ticks PID...: the processes' CPU time, in clock ticks.
ticks() {
	local t=0 p
	for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	echo "$t"
}
hz=$(getconf CLK_TCK)

# start_server BIN LOG ARGS...: start a server; wait until it serves.
start_server() {
	local bin=$1 log=$2
	shift 2
	rm -f "$log"
	"$bin" "$@" >"$log" 2>&1 &
	pids+=($!)
	for _ in $(seq 300); do
		grep -q LISTEN "$log" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "httpab.sh: server $bin $* did not start; its log:" >&2
	cat "$log" >&2
	exit 1
}

# run BUILD VARIANT: one load; prints "VARIANT cpu µs rps N".
run() {
	local bin=$tmp/bin-$1/server v=$2 port=$((20000 + RANDOM % 5000)) extra=
	case $v in
	none | scs-mem) start_server "$bin" "$tmp/a.log" -variant "$v" ;;
	peer-1) start_server "$bin" "$tmp/a.log" -variant peer ;;
	peer-2)
		start_server "$bin" "$tmp/a.log" -variant peer -node a -gossip-port "$port"
		start_server "$bin" "$tmp/b.log" -variant peer -node b -join "127.0.0.1:$port"
		;;
	esac
	[ "$v" = none ] && extra=-no-sessions
	local url t0 t1 res req rps
	url=$(grep -o 'http://[0-9.:]*' "$tmp/a.log" | head -1)
	t0=$(ticks "${pids[@]}")
	res=$("$tmp/load" -url "$url" -path /rw -duration 3s -json $extra)
	t1=$(ticks "${pids[@]}")
	stop_servers
	req=$(grep -o '"requests":[0-9]*' <<<"$res" | cut -d: -f2)
	rps=$(grep -o '"rps":[0-9.]*' <<<"$res" | cut -d: -f2)
	echo "$v cpu $(((t1 - t0) * 1000000 / hz / req)) rps ${rps%.*}"
}

out=$tmp/runs.txt
n=${#builds[@]}
for i in $(seq "$rounds"); do
	for j in $(seq 0 $((n - 1))); do
		b=${builds[$(((i + j) % n))]}
		line=$b
		for v in none scs-mem peer-1 peer-2; do line="$line $(run "$b" "$v")"; done
		echo "round $i/$rounds $line" >&2
		echo "$line" >>"$out"
	done
done

# median BUILD EXPR: the median over the build's runs of an awk expression
# of the run's figures (c["peer-2"], r["none"], ...).
median() {
	awk -v b="$1" '$1 == b { delete c; delete r; for (i = 2; i < NF; i += 5) { c[$i] = $(i + 2); r[$i] = $(i + 4) } print '"$2"' }' "$out" |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.2f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
mkdir -p results
{
	echo "# ${refs[*]} against the working tree (new), $rounds alternating rounds, $(date -u '+%Y-%m-%d %H:%M UTC'); medians"
	printf '%-26s' figure
	for b in "${builds[@]}"; do printf ' %10s' "$b"; done
	echo
	for v in none scs-mem peer-1 peer-2; do
		for f in cpu rps; do
			printf '%-26s' "$v $f$([ $f = cpu ] && echo ' µs/req' || echo ' req/s')"
			for b in "${builds[@]}"; do printf ' %10s' "$(median "$b" "$([ $f = cpu ] && echo c || echo r)[\"$v\"]")"; done
			echo
		done
	done
	for ratio in 'cpu peer-2 ÷ none:c["peer-2"]/c["none"]' 'cpu peer-2 ÷ scs-mem:c["peer-2"]/c["scs-mem"]' 'rps peer-2 ÷ scs-mem:r["peer-2"]/r["scs-mem"]'; do
		printf '%-26s' "${ratio%%:*}"
		for b in "${builds[@]}"; do printf ' %10s' "$(median "$b" "${ratio#*:}")"; done
		echo
	done
	echo
	echo "# runs (build, then per variant: cpu µs/req, rps)"
	cat "$out"
} | tee results/httpab.txt
