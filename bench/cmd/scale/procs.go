package main

import (
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/peersession/peersession/bench/internal/procstat"
	rd "github.com/peersession/peersession/bench/internal/repldrive"
)

// procRow is one cluster size's figures with every node its own process.
type procRow struct {
	n                            int
	cpuPer1k                     float64 // ms, all the node processes
	bytes, frames, writes, reads float64 // per write
	p50, p99                     time.Duration
}

// measureProcs runs the fixed-rate rounds on n `repl node` processes
// (bench/cmd/repl, -repl): each node creates sessions of one key-size
// value at rate/n a second for dur (so every write is one new 200-byte
// key, as in one process, but a new session), and the last node's
// OnCreate times those of the others. CPU is every node process's, from
// /proc, from the start of the writes until the last node has seen them.
func measureProcs(n int, repl string, o options) (procRow, error) {
	r := procRow{n: n}
	c := &rd.Cluster{Bin: repl}
	defer c.Stop()
	if err := c.Start("async", n); err != nil {
		return r, err
	}
	last := c.Nodes[n-1]
	var cpu, bytes, frames, writes, reads, p50, p99 []float64
	for i := range o.rounds {
		rd.Settle(c.Nodes[0], last)
		var vis rd.Figures
		if err := rd.Call(last, "/vis", nil, &vis); err != nil { // reset
			return r, err
		}
		before, err := procTotals(c)
		if err != nil {
			return r, err
		}
		res := make([]rd.WriteResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for k, p := range c.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := url.Values{"kind": {"create"}, "rate": {fmt.Sprint(o.rate / n)}, "workers": {"2"},
					"size": {fmt.Sprint(o.keySize)}, "dur": {o.dur.String()}}
				errs[k] = rd.Call(p, "/write", q, &res[k])
			}()
		}
		wg.Wait()
		total, others := 0, 0
		for k := range res {
			if errs[k] != nil {
				return r, errs[k]
			}
			total += res[k].Writes
			if k < n-1 {
				others += res[k].Writes
			}
		}
		if err := rd.WaitVisible(last, nil, others); err != nil {
			return r, err
		}
		after, err := procTotals(c)
		if err != nil {
			return r, err
		}
		if err := rd.Call(last, "/vis", nil, &vis); err != nil {
			return r, err
		}
		d := after.minus(before)
		w := float64(max(total, 1))
		cpu = append(cpu, d.cpu.Seconds()*1e3/w*1000)
		bytes = append(bytes, float64(d.c.bytesOut)/w)
		frames = append(frames, float64(d.c.framesOut)/w)
		writes = append(writes, float64(d.c.writes)/w)
		reads = append(reads, float64(d.c.reads)/w)
		p50 = append(p50, vis.P50*1e3)
		p99 = append(p99, vis.P99*1e3)
		logProcRound(n, i, total, cpu[i], bytes[i], frames[i], writes[i], reads[i], vis)
	}
	r.cpuPer1k, r.bytes, r.frames, r.writes, r.reads = median(cpu), median(bytes), median(frames), median(writes), median(reads)
	r.p50, r.p99 = time.Duration(median(p50)), time.Duration(median(p99))
	return r, nil
}

// logProcRound prints one round of measureProcs on stderr.
func logProcRound(n, i, total int, cpu, bytes, frames, writes, reads float64, vis rd.Figures) {
	fmt.Fprintf(os.Stderr, "scale: %d processes, round %d: %d writes, cpu %.0f ms/1k, %.0f B, %.2f frames, %.2f writes, %.2f reads per write, vis p50 %.0f µs p99 %.0f µs (%d seen)\n",
		n, i+1, total, cpu, bytes, frames, writes, reads, vis.P50, vis.P99, vis.Count)
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
