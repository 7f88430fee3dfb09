// Command compare runs the side-by-side comparison: for each round, each
// variant (in a rotated order, so drift on a shared machine hits all
// alike) gets fresh server processes, a read-write and a read-only load
// run, and is stopped. It prints medians of the rounds, as ratios to scs
// with memstore and scs with redisstore, and each variant's throughput ÷
// its baseline's (alternating ÷ sticky, also paired: see paired.go; with
// a data directory ÷ memory only) round by round; it writes them as a
// markdown table (and as benchstat-readable lines).
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/bench/internal/figures"
	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/loadgen"
)

// variant is one server setup.
type variant struct {
	name, desc string
	nodes      int // server processes
	args       []string
	alternate  bool // load alternates between the two nodes
	disk       bool // each node keeps its sessions in a data directory too
	sessions   int  // sessions per client; zero means -sessions
}

// load returns lc aimed at procs, v's servers, in mode m ("ro" or "rw"):
// at the first server, or alternating over the first two.
func (v variant) load(lc loadgen.Config, procs []*proc.Proc, m string) loadgen.Config {
	lc.Targets = []string{procs[0].URL}
	if v.alternate {
		lc.Targets = append(lc.Targets, procs[1].URL)
	}
	lc.Write = m == "rw"
	lc.Path = "/" + m
	return lc
}

// variants, each baseline followed by the variants compared with it (its
// alternating ones, its data-directory one): the order rotates each round
// but keeps them together (see rotate), so that they run seconds apart,
// and their ratio in a round (see baseRatios) is less at the mercy of the
// machine's other work.
var variants = []variant{
	{name: "none", desc: "no sessions (ceiling)", nodes: 1, args: []string{"-variant", "none"}},
	{name: "scs-mem", desc: "scs v2 + memstore", nodes: 1, args: []string{"-variant", "scs-mem"}},
	{name: "scs-redis", desc: "scs v2 + redisstore (redis-server on loopback)", nodes: 1, args: []string{"-variant", "scs-redis"}},
	{name: "peer-1", desc: "peersession, one node", nodes: 1, args: []string{"-variant", "peer"}},
	{name: "peer-1-disk", desc: "peersession, one node, Config.DataDir set (sessions also on disk, flushed every second)", nodes: 1, args: []string{"-variant", "peer"}, disk: true},
	{name: "peer-2-async", desc: "peersession, two nodes, Async, load on A", nodes: 2, args: []string{"-variant", "peer", "-consistency", "async"}},
	{name: "peer-2-async-disk", desc: "peersession, two nodes, Async, load on A, Config.DataDir set on both", nodes: 2, args: []string{"-variant", "peer", "-consistency", "async"}, disk: true},
	{name: "peer-2-async-alt", desc: "peersession, two nodes, Async, requests alternate A/B (non-sticky)", nodes: 2, args: []string{"-variant", "peer", "-consistency", "async"}, alternate: true},
	{name: "peer-2-async-alt1", desc: "peersession, two nodes, Async, requests alternate A/B, one session per client: every read follows the write on the other node", nodes: 2, args: []string{"-variant", "peer", "-consistency", "async"}, alternate: true, sessions: 1},
	{name: "peer-2-sync", desc: "peersession, two nodes, Sync, load on A", nodes: 2, args: []string{"-variant", "peer", "-consistency", "sync"}},
	{name: "peer-2-sync-alt", desc: "peersession, two nodes, Sync, requests alternate A/B (non-sticky)", nodes: 2, args: []string{"-variant", "peer", "-consistency", "sync"}, alternate: true},
}

type key struct{ variant, mode string }

// workDir holds the runs' data directories and key files; removed at exit.
var workDir string

func main() {
	server := flag.String("server", "./server", "the server binary")
	redisAddr := flag.String("redis", "127.0.0.1:6390", "redis-server address for scs-redis")
	rounds := flag.Int("rounds", 5, "rounds (each runs every variant once)")
	dur := flag.Duration("duration", 3*time.Second, "load duration per variant, mode and round")
	workers := flag.Int("workers", 16, "concurrent clients")
	sessions := flag.Int("sessions", 64, "sessions per client")
	only := flag.String("variants", "", "comma-separated subset of variants (default all)")
	modes := flag.String("modes", "rw,ro", "rw (read-write handler), ro (read-only), or both")
	out := flag.String("out", "results/latest.md", "markdown output ('' for none)")
	pairedCycles := flag.Int("paired-cycles", 9, "cycles of the paired measurement of each variant ÷ its baseline (0: none)")
	pairedSlice := flag.Duration("paired-slice", time.Second, "load duration of each variant in a paired cycle")
	pairedModes := flag.String("paired-modes", "rw", "modes of the paired measurement")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "compare-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	workDir = tmp
	vs := variants
	if *only != "" {
		vs = nil
		for _, n := range strings.Split(*only, ",") {
			i := slices.IndexFunc(variants, func(v variant) bool { return v.name == n })
			if i < 0 {
				log.Fatalf("compare: unknown variant %q", n)
			}
			vs = append(vs, variants[i])
		}
	}
	ms := strings.Split(*modes, ",")
	res := map[key][]loadgen.Result{}
	var notes []string
	start := time.Now()
	for r := 0; r < *rounds; r++ {
		order := rotate(vs, r)
		for _, v := range order {
			n := *sessions
			if v.sessions > 0 {
				n = v.sessions
			}
			got, note, err := runVariant(*server, *redisAddr, v, ms, loadgen.Config{Workers: *workers, Sessions: n, Duration: *dur, Check: v.name != "none", NoSessions: v.name == "none"})
			if err != nil {
				log.Fatalf("compare: round %d, %s: %v", r+1, v.name, err)
			}
			if note != "" {
				notes = append(notes, fmt.Sprintf("round %d, %s: %s", r+1, v.name, note))
			}
			for m, g := range got {
				res[key{v.name, m}] = append(res[key{v.name, m}], g)
				fmt.Fprintf(os.Stderr, "round %d/%d %-17s %s: %s\n", r+1, *rounds, v.name, m, g)
			}
		}
	}
	var paired string
	if *pairedCycles > 0 {
		for _, m := range strings.Split(*pairedModes, ",") {
			prs, err := runPaired(*server, vs, m, *pairedCycles, *pairedSlice,
				loadgen.Config{Workers: *workers, Check: true}, *sessions)
			if err != nil {
				log.Fatalf("compare: paired %s: %v", m, err)
			}
			paired += renderPaired(prs, m, *pairedCycles, *pairedSlice, *workers, *sessions)
		}
	}
	table := render(vs, ms, res, *rounds, *dur, *workers, *sessions, time.Since(start), paired)
	if len(notes) > 0 {
		table += "\nNotes:\n\n"
		for _, n := range notes {
			table += "- " + n + "\n"
		}
	}
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(strings.TrimSuffix(*out, ".md")+".bench.txt", []byte(benchLines(vs, ms, res)), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// rotate returns vs rotated by r groups, a group being a variant and the
// ones compared with it that follow it (see baseOf): the group stays in
// order, so a baseline and its variants run back to back.
func rotate(vs []variant, r int) []variant {
	groups := groupsOf(vs)
	var out []variant
	for i := range groups {
		out = append(out, groups[(i+r)%len(groups)]...)
	}
	return out
}

// startServers starts v's server processes and, for a pair, waits until
// each lists the other as a peer. On error it returns those it started,
// to be stopped.
func startServers(bin, redisAddr string, v variant) ([]*proc.Proc, error) {
	var procs []*proc.Proc
	args := append([]string{}, v.args...)
	if v.name == "scs-redis" {
		args = append(args, "-redis", redisAddr)
	}
	disk := func(node string) []string { return nil }
	if v.disk {
		dir, err := os.MkdirTemp(workDir, v.name+"-")
		if err != nil {
			return procs, err
		}
		keyFile := filepath.Join(dir, "key")
		if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(peersession.GenerateKey())), 0o600); err != nil {
			return procs, err
		}
		args = append(args, "-key-file", keyFile)
		disk = func(node string) []string { return []string{"-data-dir", filepath.Join(dir, node)} }
	}
	if v.nodes == 1 {
		p, err := proc.Start(v.name, 30*time.Second, nil, bin, append(args, disk("a")...)...)
		if err != nil {
			return procs, err
		}
		return append(procs, p), nil
	}
	port, err := proc.FreePort("127.0.0.1")
	if err != nil {
		return procs, err
	}
	a, err := proc.Start(v.name+"/a", 30*time.Second, nil, bin, slices.Concat(args, disk("a"), []string{"-node", "a", "-gossip-port", fmt.Sprint(port)})...)
	if err != nil {
		return procs, err
	}
	procs = append(procs, a)
	b, err := proc.Start(v.name+"/b", 60*time.Second, nil, bin, slices.Concat(args, disk("b"), []string{"-node", "b", "-join", fmt.Sprintf("127.0.0.1:%d", port)})...)
	if err != nil {
		return procs, err
	}
	procs = append(procs, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range procs {
		if err := p.WaitPeers(ctx, 1); err != nil {
			return procs, err
		}
	}
	return procs, nil
}

// runVariant starts v's servers, runs each mode's load and stops them. The
// note reports anything the servers counted that a clean run would not,
// and for an alternating variant how its reads of the other node's
// changes were served.
func runVariant(bin, redisAddr string, v variant, modes []string, lc loadgen.Config) (map[string]loadgen.Result, string, error) {
	procs, err := startServers(bin, redisAddr, v)
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	if err != nil {
		return nil, "", err
	}
	out := map[string]loadgen.Result{}
	for _, m := range modes {
		r, err := loadgen.Run(context.Background(), v.load(lc, procs, m))
		if err != nil {
			return nil, "", err
		}
		out[m] = r
	}
	var notes []string
	for _, p := range procs {
		st, err := p.Stats(false)
		if err != nil {
			continue
		}
		if n := serverNotes(p.Name, st, v.alternate); n != "" {
			notes = append(notes, n)
		}
	}
	return out, strings.Join(notes, ", "), nil
}

// serverNotes reports anything a server counted that a clean run would
// not, and with alternate how its reads of the other node's changes were
// served.
func serverNotes(name string, st map[string]any, alternate bool) string {
	var notes []string
	for _, f := range [][]string{{"store", "CommitErrors"}, {"store", "Refused"}, {"store", "Replication", "Dropped"}, {"store", "Replication", "Rejected"}} {
		if n, _ := proc.Get(st, f...).(float64); n > 0 {
			notes = append(notes, fmt.Sprintf("%s %s=%v", name, strings.Join(f[1:], "."), n))
		}
	}
	if alternate {
		// Non-sticky reads of a change made on the other node: served
		// by the brief wait for it, or by a peer fetch.
		var rp []string
		for _, f := range []string{"FetchWaits", "FetchWaitHits", "Fetches", "FetchHits"} {
			n, _ := proc.Get(st, "store", f).(float64)
			rp = append(rp, fmt.Sprintf("%s=%v", f, n))
		}
		// Fetches that waited on the peer until FetchTimeout, and
		// those that did not ask it because it had left one
		// unanswered: the ways such a read can miss the change.
		for _, f := range []string{"FetchTimeouts", "FetchSkips"} {
			n, _ := proc.Get(st, "store", "Replication", f).(float64)
			rp = append(rp, fmt.Sprintf("%s=%v", f, n))
		}
		notes = append(notes, fmt.Sprintf("%s read path: %s", name, strings.Join(rp, " ")))
	}
	return strings.Join(notes, ", ")
}

type summary struct {
	rps, p50, p99  float64 // p50/p99 in microseconds
	errs, mism     int
	rpsMin, rpsMax float64
}

func summarize(rs []loadgen.Result) summary {
	var rps, p50, p99 []float64
	var s summary
	for _, r := range rs {
		rps = append(rps, r.RPS)
		p50 = append(p50, float64(r.P50)/1e3)
		p99 = append(p99, float64(r.P99)/1e3)
		s.errs += r.Errors
		s.mism += r.Mismatches
	}
	s.rps, s.p50, s.p99 = figures.Median(rps), figures.Median(p50), figures.Median(p99)
	s.rpsMin, s.rpsMax = slices.Min(rps), slices.Max(rps)
	return s
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func render(vs []variant, modes []string, res map[key][]loadgen.Result, rounds int, dur time.Duration, workers, sessions int, took time.Duration, paired string) string {
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "### HTTP comparison (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, shared with other work (figures are noisy; compare ratios within this run). "+
		"%d rounds × %v per variant and mode, variant order rotated each round; %d keep-alive clients × %d sessions each; "+
		"load generator, servers, peers and redis-server on the same machine. Medians of the rounds; ratios are "+
		"this row ÷ scs+memstore and ÷ scs+redisstore (req/s: higher is better; latency: lower is better). Run took %v.\n\n",
		host, numCPU(), rounds, dur, workers, sessions, took.Round(time.Second))
	for _, m := range modes {
		title := "read-write (read counter + 1 KiB value, increment, save)"
		if m == "ro" {
			title = "read-only (read counter + 1 KiB value)"
		}
		fmt.Fprintf(&b, "#### %s\n\n", title)
		b.WriteString("| variant | req/s | ÷ scs-mem | ÷ scs-redis | p50 µs | p50 ÷ mem | p50 ÷ redis | p99 µs | p99 ÷ mem | p99 ÷ redis | req/s range | errors | lost writes |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		mem, red := res[key{"scs-mem", m}], res[key{"scs-redis", m}]
		var sm, sr summary
		if len(mem) > 0 {
			sm = summarize(mem)
		}
		if len(red) > 0 {
			sr = summarize(red)
		}
		for _, v := range vs {
			rs := res[key{v.name, m}]
			if len(rs) == 0 {
				continue
			}
			s := summarize(rs)
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.0f | %s | %s | %.0f | %s | %s | %.0f–%.0f | %d | %d |\n",
				v.name, s.rps, ratio(s.rps, sm.rps), ratio(s.rps, sr.rps),
				s.p50, ratio(s.p50, sm.p50), ratio(s.p50, sr.p50),
				s.p99, ratio(s.p99, sm.p99), ratio(s.p99, sr.p99),
				s.rpsMin, s.rpsMax, s.errs, s.mism)
		}
		b.WriteString("\n")
	}
	b.WriteString(baseRatios(vs, modes, res))
	b.WriteString(paired)
	b.WriteString("Variants:\n\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "- `%s`: %s\n", v.name, v.desc)
	}
	return b.String()
}

// baseOf names the variant each other one is compared with: an
// alternating one with its sticky one, a data-directory one with the same
// setup in memory only.
var baseOf = map[string]string{
	"peer-2-async-alt":  "peer-2-async",
	"peer-2-async-alt1": "peer-2-async",
	"peer-2-sync-alt":   "peer-2-sync",
	"peer-1-disk":       "peer-1",
	"peer-2-async-disk": "peer-2-async",
}

// baseRatios is the table of each variant's throughput ÷ its baseline's
// (see baseOf): each round's ratio (the two ran in the same round, minutes
// apart at most), and their median and range.
func baseRatios(vs []variant, modes []string, res map[key][]loadgen.Result) string {
	var b strings.Builder
	for _, m := range modes {
		var rows []string
		for _, v := range vs {
			base, ok := baseOf[v.name]
			if !ok {
				continue
			}
			alt, st := res[key{v.name, m}], res[key{base, m}]
			if len(alt) == 0 || len(alt) != len(st) {
				continue
			}
			var rs []string
			var xs []float64
			for i := range alt {
				x := alt[i].RPS / st[i].RPS
				xs = append(xs, x)
				rs = append(rs, fmt.Sprintf("%.2f", x))
			}
			rows = append(rows, fmt.Sprintf("| %s ÷ %s | **%.2f×** | %.2f–%.2f | %s |\n",
				v.name, base, figures.Median(xs), slices.Min(xs), slices.Max(xs), strings.Join(rs, ", ")))
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "#### throughput ÷ the baseline's (alternating ÷ sticky, data directory ÷ memory only), %s, separate runs (each round's ratio; median)\n\n", m)
		b.WriteString("| variants | median | range | each round |\n|---|--:|--:|---|\n")
		b.WriteString(strings.Join(rows, ""))
		b.WriteString("\n")
	}
	return b.String()
}

// benchLines writes one Go-benchmark-format line per round, for benchstat.
func benchLines(vs []variant, modes []string, res map[key][]loadgen.Result) string {
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: github.com/peersession/peersession/bench\n")
	for _, m := range modes {
		for _, v := range vs {
			for _, r := range res[key{v.name, m}] {
				fmt.Fprintf(&b, "BenchmarkHTTP/mode=%s/variant=%s %d %.0f ns/op %.0f req/s %d p50-ns %d p99-ns\n",
					m, v.name, r.Requests, float64(r.Elapsed)/float64(max(r.Requests, 1)), r.RPS, r.P50.Nanoseconds(), r.P99.Nanoseconds())
			}
		}
	}
	return b.String()
}

func numCPU() int { return runtime.NumCPU() }
