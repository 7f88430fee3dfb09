// Command repl measures replication between two node processes on this
// machine:
//
//	repl run [flags]   the driver: starts the nodes, runs every phase,
//	                   prints and writes a markdown report
//	repl stalls [flags] traces both nodes through a round of key updates
//	                   and reports where its slowest probes were held up
//	repl node [flags]  one node with a control endpoint (started by run)
//
// Visibility is timed by the receiving node: the writer creates a new
// session per write, and the peer's OnCreate hook (NotifyOnReplication)
// computes now minus the session's creation time. Both processes read the
// same machine clock, so no clock skew enters.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: repl run|stalls|node|wake|faults [flags]")
	}
	switch os.Args[1] {
	case "node":
		runNode(os.Args[2:])
	case "run":
		runDriver(os.Args[2:])
	case "stalls":
		runStalls(os.Args[2:])
	case "wake":
		runWake(os.Args[2:])
	case "faults":
		runFaults(os.Args[2:])
	default:
		log.Fatalf("repl: unknown command %q: want run, stalls, node, wake or faults", os.Args[1])
	}
}

type cluster struct {
	bin   string
	nodes []*proc.Proc
	port  int
}

func (c *cluster) stop() {
	for _, p := range c.nodes {
		p.Stop()
	}
	c.nodes = nil
}

// start starts node a and, for n > 1, nodes joining it.
func (c *cluster) start(consistency string, n int) error {
	var err error
	if c.port, err = proc.FreePort("127.0.0.1"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		args := []string{"node", "-name", string(rune('a' + i)), "-consistency", consistency}
		if i == 0 {
			args = append(args, "-gossip-port", fmt.Sprint(c.port))
		} else {
			args = append(args, "-join", fmt.Sprintf("127.0.0.1:%d", c.port))
		}
		if err := c.add(args...); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range c.nodes {
		if err := p.WaitPeers(ctx, n-1); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) add(args ...string) error {
	p, err := proc.Start("node "+args[2], 90*time.Second, nil, c.bin, append(args, "-v")...)
	if err != nil {
		return err
	}
	c.nodes = append(c.nodes, p)
	return nil
}

func call(p *proc.Proc, path string, q url.Values, v any) error {
	c := http.Client{Timeout: 5 * time.Minute}
	u := p.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func num(m map[string]any, path ...string) float64 {
	f, _ := proc.Get(m, path...).(float64)
	return f
}

// settle waits (at most 60s) until a has nothing queued for its peers and
// the peer's applied count has not moved for half a second, so that one
// phase's backlog does not count against the next.
func settle(a, peer *proc.Proc) {
	last, since := -1.0, time.Now()
	for dl := time.Now().Add(60 * time.Second); time.Now().Before(dl); time.Sleep(50 * time.Millisecond) {
		var as, ps map[string]any
		if call(a, "/stats", nil, &as) != nil || call(peer, "/stats", nil, &ps) != nil {
			return
		}
		queued := 0.0
		peers, _ := proc.Get(as, "store", "Replication", "peers").(map[string]any)
		for _, p := range peers {
			q, _ := proc.Get(p.(map[string]any), "Queued").(float64)
			queued += q
		}
		ap := num(ps, "store", "Replication", "Applied")
		if ap != last || queued > 0 {
			last, since = ap, time.Now()
			continue
		}
		if time.Since(since) > 500*time.Millisecond {
			return
		}
	}
}

// waitVisible waits (at most 15s) until the peer has recorded n sessions
// created (since q's "since", if set) arriving from the writer.
func waitVisible(peer *proc.Proc, q url.Values, n int) error {
	for dl := time.Now().Add(15 * time.Second); time.Now().Before(dl); time.Sleep(50 * time.Millisecond) {
		var st map[string]any
		if err := call(peer, "/stats", q, &st); err != nil {
			return err
		}
		if int(num(st, "visible_recorded")) >= n {
			return nil
		}
	}
	return nil // the report shows how many arrived
}

func runDriver(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	bin := fs.String("bin", os.Args[0], "this binary (started as the nodes)")
	dur := fs.Duration("duration", 3*time.Second, "length of each writing phase")
	joinN := fs.Int("join-sessions", 100_000, "sessions of 1 KiB held by the cluster a node joins")
	out := fs.String("out", "results/repl.md", "markdown output ('' for none)")
	rounds := fs.Int("rounds", 3, "rounds of each key-update rate (the report gives medians)")
	_ = fs.Parse(args)

	c := &cluster{bin: *bin}
	defer c.stop()
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "### Replication between two node processes (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, 2 cores shared with other work; both nodes and the writer on it, over loopback. Each writing phase %v. "+
		"Visibility: the peer's OnCreate hook (NotifyOnReplication) computes now − the session's creation time, one machine clock.\n\n", host, *dur)
	must := func(err error) {
		if err != nil {
			c.stop()
			log.Fatalf("repl: %v", err)
		}
	}

	// 1. Async pair: visibility at paced rates and at full speed, then
	// the sustainable rate of key updates.
	must(c.start("async", 2))
	a, peer := c.nodes[0], c.nodes[1]
	b.WriteString("| Async, new session per write (64 B value) | target/s | achieved/s | visible on peer | visibility p50 µs | p99 µs | max µs | save p50 µs | save p99 µs | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, ph := range []struct {
		label   string
		rate    int
		workers int
	}{{"1,000 writes/s", 1000, 1}, {"10,000 writes/s", 10000, 2}, {"25,000 writes/s", 25000, 4}, {"50,000 writes/s", 50000, 4}, {"as fast as 4 writers go", 0, 4}} {
		var vis figures
		must(call(peer, "/vis", nil, &vis)) // reset
		var w writeResult
		must(call(a, "/write", url.Values{"kind": {"create"}, "rate": {fmt.Sprint(ph.rate)}, "workers": {fmt.Sprint(ph.workers)}, "dur": {dur.String()}}, &w))
		must(waitVisible(peer, nil, w.Writes))
		must(call(peer, "/vis", nil, &vis))
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
	c.stop()
	must(c.start("async", 2))
	a, peer = c.nodes[0], c.nodes[1]
	fmt.Fprintf(&b, "| Async key updates (one key of 4,096 sessions, 4 writers); median of %d rounds | target/s | achieved/s | save p50 µs | save p99 µs | peer applied (records) | dropped by A | drain after writers stop | visibility p50 µs | p99 µs | p99 of each round, ms | probes seen/sent | sustained |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n", *rounds)
	probeErrs := 0
	for _, rate := range []int{25000, 50000, 100000, 200000, 300000} {
		var rs []updateRound
		for range *rounds {
			r := updatePhase(a, peer, rate, probeRate, *dur, must)
			probeErrs += r.w.ProbeErrors
			fmt.Fprintf(os.Stderr, "repl: updates at %d/s: %+v applied %.0f dropped %.0f drain %v probe visibility %+v\n", rate, r.w, r.applied, r.dropped, r.drain, r.vis)
			rs = append(rs, r)
		}
		ok, seen, sent := "yes", 0, 0
		var p99s []string
		for _, r := range rs {
			if !r.sustained(rate) {
				ok = "no"
			}
			seen += r.vis.Count
			sent += r.w.Probes
			p99s = append(p99s, fmt.Sprintf("%.1f", r.vis.P99/1e3))
		}
		med := func(f func(updateRound) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		fmt.Fprintf(&b, "| %d/s | %d | %.0f | %.1f | %.1f | %.0f | %.0f | %v | %.0f | %.0f | %s | %d/%d | %s |\n", rate, rate,
			med(func(r updateRound) float64 { return r.w.Rate }),
			med(func(r updateRound) float64 { return r.w.Save.P50 }),
			med(func(r updateRound) float64 { return r.w.Save.P99 }),
			med(func(r updateRound) float64 { return r.applied }),
			med(func(r updateRound) float64 { return r.dropped }),
			time.Duration(med(func(r updateRound) float64 { return float64(r.drain) })).Round(time.Millisecond),
			med(func(r updateRound) float64 { return r.vis.P50 }),
			med(func(r updateRound) float64 { return r.vis.P99 }),
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
	c.stop()

	// 2. Sync pair: save latency (Load + Set + Save, waiting for the
	// peer's ack).
	must(c.start("sync", 2))
	a = c.nodes[0]
	b.WriteString("| Sync save (one key of 1,024 sessions) | writers | saves/s | save p50 µs | save p99 µs | max µs | errors |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, ph := range []struct {
		label         string
		rate, workers int
	}{{"paced 1,000/s", 1000, 1}, {"closed loop, 1 writer", 0, 1}, {"closed loop, 16 writers", 0, 16}} {
		var w writeResult
		must(call(a, "/write", url.Values{"kind": {"update"}, "rate": {fmt.Sprint(ph.rate)}, "workers": {fmt.Sprint(ph.workers)}, "dur": {dur.String()}}, &w))
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.1f | %.1f | %.0f | %d |\n", ph.label, ph.workers, w.Rate, w.Save.P50, w.Save.P99, w.Save.Max, w.Errors)
		fmt.Fprintf(os.Stderr, "repl: sync %s: %+v\n", ph.label, w)
	}
	b.WriteString("\n")
	c.stop()

	// 3. Join: a fresh pair holds joinN sessions of 1 KiB; a third node
	// joins and is timed to WaitReady.
	must(c.start("async", 2))
	a, peer = c.nodes[0], c.nodes[1]
	var w writeResult
	// Paced, so that the fill does not overflow the peer's queue (the
	// pair must really hold every session when the third node joins).
	must(call(a, "/write", url.Values{"kind": {"create"}, "n": {fmt.Sprint(*joinN)}, "rate": {"20000"}, "workers": {"2"}, "size": {"1024"}, "dur": {"5m"}}, &w))
	held := 0
	for dl := time.Now().Add(60 * time.Second); time.Now().Before(dl); time.Sleep(50 * time.Millisecond) {
		var st map[string]any
		must(call(peer, "/stats", nil, &st))
		if held = int(num(st, "store", "Sessions")); held >= *joinN {
			break
		}
	}
	if held < *joinN {
		fmt.Fprintf(&b, "Note: after the fill, node b held %d of the %d sessions (the rest were dropped from a full queue and wait for anti-entropy).\n\n", held, *joinN)
	}
	fmt.Fprintf(os.Stderr, "repl: filled %d sessions in %.0f ms\n", w.Writes, w.ElapsedMS)
	joinStart := time.Now()
	joinErr := c.add("node", "-name", "c", "-join", fmt.Sprintf("127.0.0.1:%d", c.port))
	joinWall := time.Since(joinStart)
	if joinErr != nil {
		fmt.Fprintf(&b, "Join: a cluster of two nodes holding %d sessions of 1 KiB; a third node **did not become ready**: %v.\n\n", *joinN, joinErr)
	} else {
		var ready map[string]any
		must(call(c.nodes[2], "/ready", nil, &ready))
		// WaitReady should mean "holds everything"; check, and time
		// when the node really held every session.
		full := time.Duration(-1)
		for dl := time.Now().Add(60 * time.Second); time.Now().Before(dl); time.Sleep(10 * time.Millisecond) {
			var st map[string]any
			must(call(c.nodes[2], "/stats", nil, &st))
			if int(num(st, "store", "Sessions")) >= *joinN {
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
			*joinN, w.Rate, num(ready, "ready_ms"), num(ready, "sessions_at_ready"), *joinN, joinWall.Round(time.Millisecond), *joinN, fullS)
	}
	b.WriteString("| node | sessions | payload (keys + values) MiB | heap after GC MiB | heap ÷ payload |\n|---|--:|--:|--:|--:|\n")
	for i, p := range c.nodes {
		var st map[string]any
		must(call(p, "/stats", url.Values{"gc": {"1"}}, &st))
		payload := num(st, "store", "Bytes")
		heap := num(st, "heap_alloc")
		fmt.Fprintf(&b, "| %c | %.0f | %.1f | %.1f | %.2f× |\n", 'a'+i, num(st, "store", "Sessions"), payload/(1<<20), heap/(1<<20), heap/max(payload, 1))
	}
	c.stop()

	fmt.Print(b.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// updateRound is one round of a key-update phase.
type updateRound struct {
	w                writeResult
	vis              figures
	applied, dropped float64
	drain            time.Duration
}

// sustained reports whether the round kept up with rate: nothing dropped,
// the peer done within a second of the writers, no error, and the writers
// within 5% of the rate.
func (r updateRound) sustained(rate int) bool {
	return r.dropped == 0 && r.drain <= time.Second && r.w.Errors == 0 && r.w.Rate >= 0.95*float64(rate)
}

// updatePhase runs one round of key updates at rate on a, with probes,
// and measures it on peer.
func updatePhase(a, peer *proc.Proc, rate, probeRate int, dur time.Duration, must func(error)) updateRound {
	settle(a, peer)
	var vis figures
	must(call(peer, "/vis", nil, &vis)) // reset
	var before, aBefore map[string]any
	must(call(peer, "/stats", nil, &before))
	must(call(a, "/stats", nil, &aBefore))
	var w writeResult
	must(call(a, "/write", url.Values{"kind": {"update"}, "rate": {fmt.Sprint(rate)}, "workers": {"4"}, "sessions": {"4096"}, "probe": {fmt.Sprint(probeRate)}, "dur": {dur.String()}}, &w))
	writeEnd := time.Now()
	var after, aStats map[string]any
	last, stable := -1.0, time.Now()
	for dl := time.Now().Add(30 * time.Second); time.Now().Before(dl); time.Sleep(20 * time.Millisecond) {
		must(call(peer, "/stats", nil, &after))
		must(call(a, "/stats", nil, &aStats))
		ap := num(after, "store", "Replication", "Applied")
		queued := num(aStats, "store", "Replication", "peers", "b", "Queued")
		if ap != last {
			last, stable = ap, time.Now()
			continue
		}
		if queued == 0 && time.Since(stable) > 200*time.Millisecond {
			break
		}
	}
	drain := max(stable.Sub(writeEnd), 0)
	// Wait (bounded) for the peer to have seen every probe; only sessions
	// created since the writers started count, not the 4,096 the round
	// created to update.
	since := url.Values{"since": {fmt.Sprint(w.StartNS)}}
	must(waitVisible(peer, since, w.Probes))
	must(call(peer, "/vis", since, &vis))
	return updateRound{
		w:       w,
		vis:     vis,
		applied: num(after, "store", "Replication", "Applied") - num(before, "store", "Replication", "Applied"),
		dropped: num(aStats, "store", "Replication", "Dropped") - num(aBefore, "store", "Replication", "Dropped"),
		drain:   drain,
	}
}
