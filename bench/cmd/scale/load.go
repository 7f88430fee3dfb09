package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"
)

// recorder keeps the delays with which sessions created on other nodes
// became visible on the last node.
type recorder struct {
	mu sync.Mutex // guards d
	d  []time.Duration
}

// maxSamples bounds the delays a recorder keeps.
const maxSamples = 1 << 20

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	if len(r.d) < maxSamples {
		r.d = append(r.d, d)
	}
	r.mu.Unlock()
}

// take returns the delays recorded and forgets them.
func (r *recorder) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.d
	r.d = nil
	return d
}

// count returns how many delays are recorded.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.d)
}

// pool is the sessions each node updates: tokens[i] are node i's.
type pool struct {
	tokens [][]string
}

// makePool creates total sessions spread over the nodes, each with one key
// "v" of size bytes, and waits until they are replicated.
func (c *cluster) makePool(total, size int) (*pool, error) {
	ctx := context.Background()
	p := &pool{tokens: make([][]string, len(c.nodes))}
	per := max(total/len(c.nodes), 1)
	val := value(size)
	for i, st := range c.nodes {
		for range per {
			s := st.NewSession(ctx)
			if err := s.Set("v", val); err != nil {
				return nil, err
			}
			t, err := st.Save(ctx, s)
			if err != nil {
				return nil, fmt.Errorf("pool: %w", err)
			}
			p.tokens[i] = append(p.tokens[i], t)
		}
	}
	if !c.settle(2 * time.Minute) {
		return nil, fmt.Errorf("pool: replication did not settle in 2 minutes")
	}
	if c.copies > 0 {
		// Partitioned: each session is written through its owner, as a
		// route-aware balancer would send its requests.
		routed := &pool{tokens: make([][]string, len(c.nodes))}
		for i, toks := range p.tokens {
			for _, t := range toks {
				s, err := c.nodes[i].Load(ctx, t)
				if err != nil {
					return nil, fmt.Errorf("pool: %w", err)
				}
				o, _ := c.owner(s.ID())
				routed.tokens[o] = append(routed.tokens[o], t)
			}
		}
		for i := range routed.tokens {
			if len(routed.tokens[i]) == 0 { // a node that owns none: writes one of another's
				routed.tokens[i] = p.tokens[i][:1]
			}
		}
		p = routed
	}
	return p, nil
}

// phase is what one load phase measured.
type phase struct {
	rate     int             // target writes/s, cluster-wide
	writes   int             // writes made
	errors   int             // writes that failed
	achieved float64         // writes/s made
	cpu      time.Duration   // the process's, from the first write until replication caught up
	wall     time.Duration   // the same span in wall-clock time
	c        counters        // the cluster's counters over the phase
	vis      []time.Duration // probes' visibility on the last node, sorted
	probes   int
	settled  bool // replication caught up within the drain bound
}

// probeRate is how many probe sessions a second the phase creates (on
// every node but the last, in turn) to time visibility on the last node.
const probeRate = 200

// load runs writes at rate (cluster-wide, each write on the next node in
// turn: one key of size bytes updated in one of the node's pool sessions)
// for dur, with probes, then waits (at most drain) for replication to
// catch up. CPU is the process's, writers included, from the start to the
// end of the drain.
func (c *cluster) load(p *pool, rate, workers, size int, dur, drain time.Duration) phase {
	c.settle(drain)
	c.vis.take()
	ctx := context.Background()
	n := len(c.nodes)
	before := c.totals()
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(dur)
	total := int(float64(rate) * dur.Seconds())
	vals := [2]string{value(size), value(size-1) + "w"} // a change every write

	var mu sync.Mutex // guards res's writes and errors
	res := phase{rate: rate}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, errs := 0, 0
			for i := w; i < total; i += workers {
				at := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				if time.Now().After(deadline) {
					break
				}
				node := i % n
				st := c.nodes[node]
				toks := p.tokens[node]
				s, err := st.Load(ctx, toks[(i/n)%len(toks)])
				if err == nil {
					_ = s.Set("v", vals[(i/n/len(toks))%2])
					_, err = st.Save(ctx, s)
				}
				done++
				if err != nil {
					errs++
				}
			}
			mu.Lock()
			res.writes += done
			res.errors += errs
			mu.Unlock()
		}()
	}
	// Probes: new sessions on every node but the last, timed there.
	probes := 0
	if n > 1 {
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * time.Second / probeRate)
			if !at.Before(deadline) {
				break
			}
			time.Sleep(time.Until(at))
			st := c.nodes[i%(n-1)]
			s := st.NewSession(ctx)
			_ = s.Set("p", i)
			if _, err := st.Save(ctx, s); err == nil {
				if _, onLast := c.owner(s.ID()); onLast {
					probes++ // partitioned: only those the last node holds reach it
				}
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.settled = c.settle(drain)
	res.cpu = cpuTime() - cpu0
	res.wall = time.Since(start)
	res.c = c.totals().minus(before)
	// Every probe that replicated is recorded (bounded wait).
	for dl := time.Now().Add(drain); c.vis.count() < probes && time.Now().Before(dl); time.Sleep(10 * time.Millisecond) {
	}
	res.vis = c.vis.take()
	slices.Sort(res.vis)
	res.probes = probes
	res.achieved = float64(res.writes) / elapsed.Seconds()
	return res
}

// idleCPU returns the CPU time the process uses per second of wall time
// with no writes (memberlist's probes and gossip, the engine's timers,
// anti-entropy): measured over d once replication has caught up (at most
// drain).
func (c *cluster) idleCPU(d, drain time.Duration) float64 {
	c.settle(drain)
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(d) // idle on purpose: what the nodes cost with no writes
	return float64(cpuTime()-cpu0) / float64(time.Since(t0))
}

// sustained reports whether the phase kept up with its rate: probes'
// visibility p99 at most maxP99, every probe seen, nothing dropped or
// failed, replication caught up, and the writers within 5% of the rate.
func (ph phase) sustained(maxP99 time.Duration) bool {
	return ph.settled && ph.errors == 0 && ph.c.dropped == 0 && len(ph.vis) >= ph.probes &&
		quantile(ph.vis, 0.99) <= maxP99 && ph.achieved >= 0.95*float64(ph.rate)
}

// quantile returns the q-quantile of sorted d (0 if empty).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(int(q*float64(len(d))), len(d)-1)]
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
