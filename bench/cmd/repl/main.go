// Command repl measures replication between two node processes on this
// machine:
//
//	repl run [flags]   the driver: starts the nodes, runs every phase,
//	                   prints and writes a markdown report
//	repl node [flags]  one node with a control endpoint (started by run,
//	                   by bench/ab.sh and by bench/diag/stalls)
//
// Visibility is timed by the receiving node: the writer creates a new
// session per write, and the peer's OnCreate hook (NotifyOnReplication)
// computes now minus the session's creation time. Both processes read the
// same machine clock, so no clock skew enters.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	rd "github.com/peersession/peersession/bench/internal/repldrive"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: repl run|node [flags]")
	}
	switch os.Args[1] {
	case "node":
		runNode(os.Args[2:])
	case "run":
		runDriver(os.Args[2:])
	default:
		log.Fatalf("repl: unknown command %q: want run or node", os.Args[1])
	}
}

func runDriver(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	bin := fs.String("bin", os.Args[0], "this binary (started as the nodes)")
	dur := fs.Duration("duration", 3*time.Second, "length of each writing phase")
	joinN := fs.Int("join-sessions", 100_000, "sessions of 1 KiB held by the cluster a node joins")
	out := fs.String("out", "results/repl.md", "markdown output ('' for none)")
	rounds := fs.Int("rounds", 3, "rounds of each key-update rate (the report gives medians)")
	_ = fs.Parse(args)

	c := &rd.Cluster{Bin: *bin}
	defer c.Stop()
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "### Replication between two node processes (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, 2 cores shared with other work; both nodes and the writer on it, over loopback. Each writing phase %v. "+
		"Visibility: the peer's OnCreate hook (NotifyOnReplication) computes now − the session's creation time, one machine clock.\n\n", host, *dur)
	must := func(err error) {
		if err != nil {
			c.Stop()
			log.Fatalf("repl: %v", err)
		}
	}

	// 1. Async pair: visibility at paced rates and at full speed, then
	// the sustainable rate of key updates.
	must(c.Start("async", 2))
	a, peer := c.Nodes[0], c.Nodes[1]
	b.WriteString("| Async, new session per write (64 B value) | target/s | achieved/s | visible on peer | visibility p50 µs | p99 µs | max µs | save p50 µs | save p99 µs | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, ph := range []struct {
		label   string
		rate    int
		workers int
	}{{"1,000 writes/s", 1000, 1}, {"10,000 writes/s", 10000, 2}, {"25,000 writes/s", 25000, 4}, {"50,000 writes/s", 50000, 4}, {"as fast as 4 writers go", 0, 4}} {
		var vis rd.Figures
		must(rd.Call(peer, "/vis", nil, &vis)) // reset
		var w rd.WriteResult
		must(rd.Call(a, "/write", url.Values{"kind": {"create"}, "rate": {fmt.Sprint(ph.rate)}, "workers": {fmt.Sprint(ph.workers)}, "dur": {dur.String()}}, &w))
		must(rd.WaitVisible(peer, nil, w.Writes))
		must(rd.Call(peer, "/vis", nil, &vis))
		target := "–"
		if ph.rate > 0 {
			target = fmt.Sprint(ph.rate)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %d/%d | %.0f | %.0f | %.0f | %.1f | %.1f | %d |\n", ph.label, target, w.Rate, vis.Count, w.Writes, vis.P50, vis.P99, vis.Max, w.Save.P50, w.Save.P99, w.Errors)
		fmt.Fprintf(os.Stderr, "repl: %s: %+v visibility %+v\n", ph.label, w, vis)
	}
	b.WriteString("\n")

	// Replicated key updates: 4 writers update one key of 4,096 sessions at
	// paced rates, several rounds each (the report gives medians: one
	// round's p99 is set by a few stalls of this shared machine); a rate is
	// sustained if, in every round, A dropped nothing for the peer (queue
	// full) and the peer had applied everything within a second of the
	// writers stopping. Meanwhile a probe goroutine on A creates
	// sessions at probeRate; the peer times their arrival, which is the
	// replication lag under that load. A fresh pair, so that the phases do
	// not inherit the unpaced create phase's backlog (its queue overflow,
	// repaired later by anti-entropy).
	const probeRate = 1000
	c.Stop()
	must(c.Start("async", 2))
	a, peer = c.Nodes[0], c.Nodes[1]
	fmt.Fprintf(&b, "| Async key updates (one key of 4,096 sessions, 4 writers); median of %d rounds | target/s | achieved/s | save p50 µs | save p99 µs | peer applied (records) | dropped by A | drain after writers stop | visibility p50 µs | p99 µs | p99 of each round, ms | probes seen/sent | sustained |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n", *rounds)
	probeErrs := 0
	for _, rate := range []int{25000, 50000, 100000, 200000, 300000} {
		var rs []rd.UpdateRound
		for range *rounds {
			r := rd.UpdatePhase(a, peer, rate, probeRate, *dur, must)
			probeErrs += r.W.ProbeErrors
			fmt.Fprintf(os.Stderr, "repl: updates at %d/s: %+v applied %.0f dropped %.0f drain %v probe visibility %+v\n", rate, r.W, r.Applied, r.Dropped, r.Drain, r.Vis)
			rs = append(rs, r)
		}
		ok, seen, sent := "yes", 0, 0
		var p99s []string
		for _, r := range rs {
			if !r.Sustained(rate) {
				ok = "no"
			}
			seen += r.Vis.Count
			sent += r.W.Probes
			p99s = append(p99s, fmt.Sprintf("%.1f", r.Vis.P99/1e3))
		}
		med := func(f func(rd.UpdateRound) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		fmt.Fprintf(&b, "| %d/s | %d | %.0f | %.1f | %.1f | %.0f | %.0f | %v | %.0f | %.0f | %s | %d/%d | %s |\n", rate, rate,
			med(func(r rd.UpdateRound) float64 { return r.W.Rate }),
			med(func(r rd.UpdateRound) float64 { return r.W.Save.P50 }),
			med(func(r rd.UpdateRound) float64 { return r.W.Save.P99 }),
			med(func(r rd.UpdateRound) float64 { return r.Applied }),
			med(func(r rd.UpdateRound) float64 { return r.Dropped }),
			time.Duration(med(func(r rd.UpdateRound) float64 { return float64(r.Drain) })).Round(time.Millisecond),
			med(func(r rd.UpdateRound) float64 { return r.Vis.P50 }),
			med(func(r rd.UpdateRound) float64 { return r.Vis.P99 }),
			strings.Join(p99s, ", "), seen, sent, ok)
	}
	fmt.Fprintf(&b, "\nKey updates run on a fresh pair. Visibility: while the writers run, a probe on A creates a session (one small key) at %d/s; "+
		"the peer times each one's arrival (now − creation time), so it waits behind the updates in the same queue and batches. "+
		"Achieved/s and save latency count the updates only; peer applied includes the round's 4,096 initial creates and the probes. "+
		"Each round creates its own 4,096 sessions and starts once the peer holds them; the figures are medians over the rounds, which run one after another on the same pair.", probeRate)
	if probeErrs > 0 {
		fmt.Fprintf(&b, " %d probe saves failed.", probeErrs)
	}
	b.WriteString("\n\n")
	c.Stop()

	// 2. Sync pair: save latency (Load + Set + Save, waiting for the
	// peer's ack).
	must(c.Start("sync", 2))
	a = c.Nodes[0]
	b.WriteString("| Sync save (one key of 1,024 sessions) | writers | saves/s | save p50 µs | save p99 µs | max µs | errors |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, ph := range []struct {
		label         string
		rate, workers int
	}{{"paced 1,000/s", 1000, 1}, {"closed loop, 1 writer", 0, 1}, {"closed loop, 16 writers", 0, 16}} {
		var w rd.WriteResult
		must(rd.Call(a, "/write", url.Values{"kind": {"update"}, "rate": {fmt.Sprint(ph.rate)}, "workers": {fmt.Sprint(ph.workers)}, "dur": {dur.String()}}, &w))
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.1f | %.1f | %.0f | %d |\n", ph.label, ph.workers, w.Rate, w.Save.P50, w.Save.P99, w.Save.Max, w.Errors)
		fmt.Fprintf(os.Stderr, "repl: sync %s: %+v\n", ph.label, w)
	}
	b.WriteString("\n")
	c.Stop()

	// 3. Join: a fresh pair holds joinN sessions of 1 KiB; a third node
	// joins and is timed to WaitReady.
	must(c.Start("async", 2))
	a, peer = c.Nodes[0], c.Nodes[1]
	var w rd.WriteResult
	// Paced, so that the fill does not overflow the peer's queue (the
	// pair must really hold every session when the third node joins).
	must(rd.Call(a, "/write", url.Values{"kind": {"create"}, "n": {fmt.Sprint(*joinN)}, "rate": {"20000"}, "workers": {"2"}, "size": {"1024"}, "dur": {"5m"}}, &w))
	held := 0
	for dl := time.Now().Add(60 * time.Second); time.Now().Before(dl); time.Sleep(50 * time.Millisecond) {
		var st map[string]any
		must(rd.Call(peer, "/stats", nil, &st))
		if held = int(rd.Num(st, "store", "Sessions")); held >= *joinN {
			break
		}
	}
	if held < *joinN {
		fmt.Fprintf(&b, "Note: after the fill, node b held %d of the %d sessions (the rest were dropped from a full queue and wait for anti-entropy).\n\n", held, *joinN)
	}
	fmt.Fprintf(os.Stderr, "repl: filled %d sessions in %.0f ms\n", w.Writes, w.ElapsedMS)
	joinStart := time.Now()
	joinErr := c.Add("node", "-name", "c", "-join", fmt.Sprintf("127.0.0.1:%d", c.Port))
	joinWall := time.Since(joinStart)
	if joinErr != nil {
		fmt.Fprintf(&b, "Join: a cluster of two nodes holding %d sessions of 1 KiB; a third node **did not become ready**: %v.\n\n", *joinN, joinErr)
	} else {
		var ready map[string]any
		must(rd.Call(c.Nodes[2], "/ready", nil, &ready))
		// WaitReady should mean "holds everything"; check, and time
		// when the node really held every session.
		full := time.Duration(-1)
		for dl := time.Now().Add(60 * time.Second); time.Now().Before(dl); time.Sleep(10 * time.Millisecond) {
			var st map[string]any
			must(rd.Call(c.Nodes[2], "/stats", nil, &st))
			if int(rd.Num(st, "store", "Sessions")) >= *joinN {
				full = time.Since(joinStart)
				break
			}
		}
		fullS := "not within 60 s"
		if full >= 0 {
			fullS = full.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "Join: a cluster of two nodes holding %d sessions of 1 KiB (filled at %.0f sessions/s); a third node process starts and joins: "+
			"**WaitReady returned %.0f ms after peersession.New**, the node then holding %.0f of the %d sessions (%v from process start to serving). "+
			"It held all %d sessions %s after its process started.\n\n",
			*joinN, w.Rate, rd.Num(ready, "ready_ms"), rd.Num(ready, "sessions_at_ready"), *joinN, joinWall.Round(time.Millisecond), *joinN, fullS)
	}
	b.WriteString("| node | sessions | payload (keys + values) MiB | heap after GC MiB | heap ÷ payload |\n|---|--:|--:|--:|--:|\n")
	for i, p := range c.Nodes {
		var st map[string]any
		must(rd.Call(p, "/stats", url.Values{"gc": {"1"}}, &st))
		payload := rd.Num(st, "store", "Bytes")
		heap := rd.Num(st, "heap_alloc")
		fmt.Fprintf(&b, "| %c | %.0f | %.1f | %.1f | %.2f× |\n", 'a'+i, rd.Num(st, "store", "Sessions"), payload/(1<<20), heap/(1<<20), heap/max(payload, 1))
	}
	c.Stop()

	fmt.Print(b.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
