#!/usr/bin/env bash
# bench/micro.sh OLD_REF [ROUNDS] — the library's micro-benchmarks, the
# commit OLD_REF against the working tree, run alternately in one script
# (ROUNDS rounds, default 6) and compared with benchstat. The benchmark
# files of the working tree are copied into OLD_REF's checkout, so both
# sides run the same benchmarks. Output: bench/results/micro.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
old_ref=${1:?usage: bench/micro.sh OLD_REF [ROUNDS]}
rounds=${2:-6}
tmp=$(mktemp -d /tmp/peersession-micro.XXXXXX)
cleanup() { git worktree remove --force "$tmp/old" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
git worktree add -q "$tmp/old" "$old_ref"
cp bench_test.go replication_bench_test.go "$tmp/old/" 2>/dev/null || true
command -v benchstat >/dev/null || GOBIN="$tmp" go install golang.org/x/perf/cmd/benchstat@latest
PATH="$tmp:$PATH"
root='^(BenchmarkGet|BenchmarkLoadGet|BenchmarkSave|BenchmarkLoadSetSave|BenchmarkLoadSetSaveMany|BenchmarkMiddleware|BenchmarkReplication|BenchmarkReplicationLatency)$'
repl='^(BenchmarkClockNow|BenchmarkEncodeBatch|BenchmarkDecodeBatch)$'
(cd "$tmp/old" && go test -c -o "$tmp/old.root.test" . && go test -c -o "$tmp/old.repl.test" ./replicate)
go test -c -o "$tmp/new.root.test" . && go test -c -o "$tmp/new.repl.test" ./replicate
for r in $(seq "$rounds"); do
	echo "round $r/$rounds" >&2
	for v in old new; do
		(cd "$tmp" && "./$v.root.test" -test.run '^$' -test.bench "$root" -test.benchmem >>"$tmp/$v.txt")
		(cd "$tmp" && "./$v.repl.test" -test.run '^$' -test.bench "$repl" -test.benchmem >>"$tmp/$v.txt")
	done
done
mkdir -p bench/results
{ echo "# $old_ref (old) against the working tree (new), $rounds alternating rounds, $(date -u '+%Y-%m-%d %H:%M UTC')"; (cd "$tmp" && benchstat old.txt new.txt); } | tee bench/results/micro.txt
