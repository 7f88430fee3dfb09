package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/peersession/peersession/bench/internal/procstat"
)

// sample is one node's resources at one moment.
type sample struct {
	at         time.Duration // since the run began
	node       int
	rss        int64 // bytes
	heap       uint64
	goroutines int
	sockets    int
	sessions   int
	tombstones int64
}

// sampler reads every running node's resources every interval.
type sampler struct {
	c        *cluster
	interval time.Duration
	begin    time.Time

	mu      sync.Mutex // guards samples
	samples []sample
	wg      sync.WaitGroup
}

// start samples until ctx ends; wait waits for the last sample.
func (s *sampler) start(ctx context.Context) {
	s.wg.Go(func() {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			s.once(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

func (s *sampler) wait() { s.wg.Wait() }

// once samples every running node.
func (s *sampler) once(ctx context.Context) {
	for i, pid := range s.c.running() {
		var st nodeStats
		if err := getJSON(ctx, s.c.url(i)+"/stats", &st); err != nil {
			continue // paused or cut off meanwhile: the next sample
		}
		x := sample{at: time.Since(s.begin), node: i, heap: st.HeapAlloc, goroutines: st.Goroutines,
			sessions: st.Sessions, tombstones: st.Tombstones, rss: rss(pid), sockets: max(procstat.Sockets(pid), 0)}
		s.mu.Lock()
		s.samples = append(s.samples, x)
		s.mu.Unlock()
	}
}

// all returns the samples so far.
func (s *sampler) all() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...)
}

// bound is one resource's check: its peak over the last third of the run
// against its peak over the first third (after the start), per node.
type bound struct {
	name        string
	first, last float64
	ok          bool
}

// bounded checks that goroutines, sockets and memory stop growing: the
// last third's peak is at most twice the first third's plus slack (the
// sessions the clients create meanwhile account for some memory).
func bounded(samples []sample, nodes int, run time.Duration) []bound {
	var out []bound
	type res struct {
		name  string
		slack float64
		get   func(sample) float64
	}
	for _, r := range []res{
		{"goroutines", 50, func(s sample) float64 { return float64(s.goroutines) }},
		{"sockets", 20, func(s sample) float64 { return float64(s.sockets) }},
		{"RSS MiB", 64, func(s sample) float64 { return float64(s.rss) / (1 << 20) }},
	} {
		for n := range nodes {
			var first, last float64
			for _, s := range samples {
				switch {
				case s.node != n:
				case s.at < run/3:
					first = max(first, r.get(s))
				case s.at >= run*2/3:
					last = max(last, r.get(s))
				}
			}
			out = append(out, bound{name: fmt.Sprintf("n%d %s", n+1, r.name), first: first, last: last, ok: last <= 2*first+r.slack})
		}
	}
	return out
}

// rss is pid's resident set in bytes; 0 if it cannot be read (the node
// just died).
func rss(pid int) int64 {
	n, _ := procstat.RSS(pid)
	return n
}
