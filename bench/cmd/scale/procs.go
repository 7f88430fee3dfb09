package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/internal/procstat"
	rd "github.com/peersession/peersession/bench/internal/repldrive"
)

// procRow is one cluster size's figures with every node its own process.
type procRow struct {
	n                            int
	cpuPer1k                     float64 // ms, all the node processes
	idleCPU                      float64 // ms of CPU per second, all the node processes, with no writes
	netCPUPer1k                  float64 // ms, net of the idle CPU over the same span
	bytes, frames, writes, reads float64 // per write
	p50, p99                     time.Duration
}

// measureProcs runs the fixed-rate rounds on n `repl node` processes
// (bench/cmd/repl, -repl), with -copies: each node first creates -pool/n
// sessions it owns (the first of Store.Holders: in partitioned mode each
// write is then made on a holder of its session, as a route-aware
// balancer sends it), then updates one key-size key of one of them per
// write at rate/n a second for dur, while the nodes but the last create
// probe sessions (probeRate a second in all) whose arrival the last node
// times (OnCreate; partitioned, only the probes it holds count). CPU is
// every node process's, from /proc, from the start of the writes until
// replication caught up on every node; then the same span again with no
// writes gives the idle CPU.
func measureProcs(n int, repl string, o options) (procRow, error) {
	r := procRow{n: n}
	c := &rd.Cluster{Bin: repl, Copies: o.copies}
	defer c.Stop()
	if err := c.Start("async", n); err != nil {
		return r, err
	}
	last, lastName := c.Nodes[n-1], string(rune('a'+n-1))
	if err := each(c.Nodes, func(k int, p *proc.Proc) error {
		var out map[string]any
		return rd.Call(p, "/pool", url.Values{"sessions": {fmt.Sprint(max(o.poolSize/n, 1))}, "size": {fmt.Sprint(o.keySize)}}, &out)
	}); err != nil {
		return r, fmt.Errorf("pool: %w", err)
	}
	var cpu, idle, net, bytes, frames, writes, reads, p50, p99 []float64
	for i := range o.rounds {
		if !caughtUp(c.Nodes, o.drain) {
			return r, fmt.Errorf("round %d: replication did not catch up within %v before it", i+1, o.drain)
		}
		var vis rd.Figures
		if err := rd.Call(last, "/vis", nil, &vis); err != nil { // reset
			return r, err
		}
		before, err := procTotals(c)
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		res := make([]rd.WriteResult, n)
		if err := each(c.Nodes, func(k int, p *proc.Proc) error {
			probe := 0
			if k < n-1 {
				probe = max(probeRate/(n-1), 1)
			}
			q := url.Values{"kind": {"owned"}, "rate": {fmt.Sprint(o.rate / n)}, "workers": {"2"}, "size": {fmt.Sprint(o.keySize)},
				"dur": {o.dur.String()}, "probe": {fmt.Sprint(probe)}, "watch": {lastName}}
			return rd.Call(p, "/write", q, &res[k])
		}); err != nil {
			return r, err
		}
		settled := caughtUp(c.Nodes, o.drain)
		after, err := procTotals(c)
		if err != nil {
			return r, err
		}
		wall := time.Since(t0)
		total, probes, errs, since := 0, 0, 0, res[0].StartNS
		for k := range res {
			total += res[k].Writes
			errs += res[k].Errors
			since = min(since, res[k].StartNS)
			if k < n-1 {
				probes += res[k].Probes
			}
		}
		sq := url.Values{"since": {fmt.Sprint(since)}}
		if err := rd.WaitVisible(last, sq, probes); err != nil {
			return r, err
		}
		if err := rd.Call(last, "/vis", sq, &vis); err != nil {
			return r, err
		}
		// The same span with no writes: the processes' idle CPU.
		i0, err := procTotals(c)
		if err != nil {
			return r, err
		}
		it := time.Now()
		time.Sleep(wall) // idle on purpose: what the nodes cost with no writes
		i1, err := procTotals(c)
		if err != nil {
			return r, err
		}
		idleRate := float64(i1.cpu-i0.cpu) / float64(time.Since(it))
		d := after.minus(before)
		w := float64(max(total, 1))
		cpu = append(cpu, d.cpu.Seconds()*1e3/w*1000)
		idle = append(idle, idleRate*1e3)
		net = append(net, (d.cpu.Seconds()-idleRate*wall.Seconds())*1e3/w*1000)
		bytes = append(bytes, float64(d.c.bytesOut)/w)
		frames = append(frames, float64(d.c.framesOut)/w)
		writes = append(writes, float64(d.c.writes)/w)
		reads = append(reads, float64(d.c.reads)/w)
		p50 = append(p50, vis.P50*1e3)
		p99 = append(p99, vis.P99*1e3)
		logProcRound(n, i, total, errs, cpu[i], idle[i], net[i], bytes[i], frames[i], writes[i], reads[i], vis, probes, settled)
	}
	r.cpuPer1k, r.bytes, r.frames, r.writes, r.reads = median(cpu), median(bytes), median(frames), median(writes), median(reads)
	r.idleCPU, r.netCPUPer1k = median(idle), median(net)
	r.p50, r.p99 = time.Duration(median(p50)), time.Duration(median(p99))
	return r, nil
}

// each calls f for every node at once and returns the first error.
func each(nodes []*proc.Proc, f func(k int, p *proc.Proc) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, p := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(k, p); err != nil {
				errs[k] = fmt.Errorf("node %s: %w", p.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// caughtUp waits (at most limit) until no node has anything queued or
// unacknowledged for a peer, nor (partitioned) a stray to hand over;
// false if limit passed first.
func caughtUp(nodes []*proc.Proc, limit time.Duration) bool {
	for dl := time.Now().Add(limit); time.Now().Before(dl); time.Sleep(20 * time.Millisecond) {
		busy := false
		for _, p := range nodes {
			st, err := p.Stats(false)
			if err != nil {
				busy = true
				break
			}
			if rd.Num(st, "store", "Replication", "Strays") > 0 {
				busy = true
				break
			}
			peers, _ := proc.Get(st, "store", "Replication", "peers").(map[string]any)
			for _, v := range peers {
				ps, _ := v.(map[string]any)
				num := func(k string) float64 { f, _ := ps[k].(float64); return f }
				if num("Queued") > 0 || num("Acked")+num("Refused") < num("Sent") {
					busy = true
				}
			}
			if busy {
				break
			}
		}
		if !busy {
			return true
		}
	}
	return false
}

// logProcRound prints one round of measureProcs on stderr.
func logProcRound(n, i, total, errs int, cpu, idle, net, bytes, frames, writes, reads float64, vis rd.Figures, probes int, settled bool) {
	fmt.Fprintf(os.Stderr, "scale: %d processes, round %d: %d writes (%d errors), cpu %.0f ms/1k, idle %.0f ms/s, net %.0f ms/1k, %.0f B, %.2f frames, %.2f writes, %.2f reads per write, vis p50 %.0f µs p99 %.0f µs (%d of %d probes seen), settled %v\n",
		n, i+1, total, errs, cpu, idle, net, bytes, frames, writes, reads, vis.P50, vis.P99, vis.Count, probes, settled)
}

// procSnapshot is the node processes' summed CPU time and replication
// counters.
type procSnapshot struct {
	cpu time.Duration
	c   counters
}

func (a procSnapshot) minus(b procSnapshot) procSnapshot {
	return procSnapshot{a.cpu - b.cpu, a.c.minus(b.c)}
}

// procTotals sums the node processes' CPU time (from /proc) and counters.
func procTotals(c *rd.Cluster) (procSnapshot, error) {
	var s procSnapshot
	for _, p := range c.Nodes {
		t, err := procstat.CPU(p.Pid())
		if err != nil {
			return s, err
		}
		s.cpu += t
		st, err := p.Stats(false)
		if err != nil {
			return s, err
		}
		num := func(k string) uint64 { return uint64(rd.Num(st, "store", "Replication", k)) }
		s.c.bytesOut += num("BytesOut")
		s.c.framesOut += num("FramesOut")
		s.c.writes += num("StreamWrites")
		s.c.reads += num("StreamReads")
		s.c.dropped += num("Dropped")
	}
	return s, nil
}
