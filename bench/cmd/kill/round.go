package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/loadgen"
)

// sample is one request: when it was sent (from the round's kill), how
// long it took, to which node, and how it ended.
type sample struct {
	t    time.Duration // send time - kill time (negative before the kill)
	lat  time.Duration
	node int8
	res  int8
}

// lateMin is the lateness of a 1 ms sleep the report lists.
const lateMin = 20 * time.Millisecond

const (
	resOK       = iota
	resError    // transport error or an answer other than 2xx, 5xx and "not found"
	resMismatch // a counter other than the client's last write + 1: a lost write
	resMissing  // "not found" for the client's session: a false logout
	res5xx      // 5xx other than "not found" (503: the holders did not answer)
)

// detect is what one survivor's /stats said about c after the kill.
type detect struct {
	unresponsive time.Duration // c's PeerStats.Unresponsive first seen set; -1: never
	dead         time.Duration // c first missing from Replication.Peers; -1: never
}

type round struct {
	n          int
	samples    []sample
	late       []sample // the sleeper's wake-ups ≥ lateMin late: t, lateness
	killed     int
	names      []string
	detect     []detect // per survivor
	deadAt     time.Duration
	fullAt     time.Duration    // every session on its full copies again, from the kill; -1: not within the load
	fullLast   copiesState      // the survivors' copies when the polling ended
	end        time.Duration    // the load's end, from the kill
	stats0     []map[string]any // survivors' /stats at the start of the measured window
	stats1     []map[string]any // at the kill
	stats2     []map[string]any // at the end
	windows    []window
	achieved   float64 // requests/s sent before the kill
	sessions   int     // the clients' sessions (all created before the load)
	lost       int     // of those, not found on a survivor after the load
	stale      int     // of those, found with a counter older than the client's last write
	unchecked  int     // of those, answered with errors only (five tries)
	setup      setupMisses
	errSamples []string // a few of the load's distinct errors
}

type window struct {
	name      string
	from, to  time.Duration
	survivors bool
	reqs      int
	errors    int // transport errors and answers other than 2xx, 5xx and "not found"
	missing   int // "not found" for a session that exists: a false logout
	fivexx    int // 5xx other than "not found"
	mismatch  int
	p50, p99  time.Duration
	max       time.Duration
	slow      int // ≥ FetchTimeout
}

func (w window) rate() float64 {
	d := (w.to - w.from).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(w.reqs) / d
}

func (r *round) brief() string {
	var b strings.Builder
	for _, w := range r.windows {
		fmt.Fprintf(&b, "%s: p50 %s p99 %s ≥FT %d/%d; ", w.name, ms(w.p50), ms(w.p99), w.slow, w.reqs)
	}
	fmt.Fprintf(&b, "dead after %s, full copies after %s (%s), %d of %d sessions lost", secs(r.deadAt), secs(r.fullAt), r.fullLast, r.lost, r.sessions)
	return b.String()
}

func runRound(ctx context.Context, o *options, n int) (*round, error) {
	names := nodeNames(o.nodes)
	killed := o.nodes - 1
	procs, err := startNodes(ctx, o, names)
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	rd := &round{n: n, killed: killed, names: names, fullAt: -1}
	rd.fullLast.err = errors.New("not polled: the node was not declared dead by every survivor")
	urls := make([]string, len(procs))
	all := make([]int, len(procs))
	for i, p := range procs {
		urls[i] = p.URL
		all[i] = i
	}
	survivors := all[:killed]

	tr := loadgen.NewTransport(o.workers)
	defer tr.CloseIdleConnections()
	clients, ids, setup, err := makeClients(ctx, o, tr, procs, names)
	if err != nil {
		return nil, err
	}
	holders := holdersOf(o.copies, names, survivors, ids) // once every survivor declared the node dead
	for _, cs := range clients {
		rd.sessions += len(cs)
	}
	rd.setup = setup

	// live is the balancer's rotation: all nodes, then the survivors.
	var live atomic.Pointer[[]int]
	live.Store(&all)
	loadStart := time.Now()
	stopAt := atomic.Int64{}
	stopAt.Store(loadStart.Add(o.warm + o.before + o.maxAfter).UnixNano())
	// A sleeper of its own: how late this process wakes from 1 ms sleeps
	// tells a stall of the machine (or of this process) from one of the
	// nodes.
	sleeperDone := make(chan struct{})
	var late []sample
	go func() {
		defer close(sleeperDone)
		for time.Now().UnixNano() < stopAt.Load() && ctx.Err() == nil {
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			if l := time.Since(t0) - time.Millisecond; l >= lateMin {
				late = append(late, sample{t: t0.Sub(loadStart), lat: l})
			}
		}
	}()
	maxReqs := int(o.rate/float64(o.workers)*(o.warm+o.before+o.maxAfter).Seconds()) + 100

	results := make([][]sample, o.workers)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) * float64(o.workers) / o.rate)
	for wi := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cls := clients[wi]
			ss := make([]sample, 0, maxReqs)
			// Spread the workers' first requests over one interval.
			next := time.Now().Add(time.Duration(wi) * interval / time.Duration(o.workers))
			for i := 0; i < maxReqs && ctx.Err() == nil; i++ {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				now := time.Now()
				if now.UnixNano() >= stopAt.Load() {
					break
				}
				// Paced, without bursts to catch up: a worker that fell
				// behind (its last answer was slow) sends at once.
				next = next.Add(interval)
				if next.Before(now) {
					next = now
				}
				// The worker's clients in turn; each client's next
				// request goes to the next node of the rotation (never
				// sticky).
				rot := *live.Load()
				j, turn := i%len(cls), i/len(cls)
				node := rot[(wi+j+turn)%len(rot)]
				t0 := time.Now()
				res := cls[j].rw(urls[node])
				lat := time.Since(t0)
				ss = append(ss, sample{t: t0.Sub(loadStart), lat: lat, node: int8(node), res: res})
			}
			results[wi] = ss
		}()
	}

	// The measured window before the kill starts after the warm-up.
	sleepCtx(ctx, o.warm)
	rd.stats0 = statsOf(procs, survivors)
	sleepCtx(ctx, o.before)
	if ctx.Err() != nil {
		stopAt.Store(0)
		wg.Wait()
		<-sleeperDone
		return nil, ctx.Err()
	}
	rd.stats1 = statsOf(procs, survivors)

	// The kill: out of the rotation, then SIGKILL.
	live.Store(&survivors)
	kt := time.Now()
	if err := syscall.Kill(procs[killed].Pid(), syscall.SIGKILL); err != nil {
		return nil, fmt.Errorf("kill -9 %s: %w", names[killed], err)
	}

	// Poll the survivors until all declared the node dead and every
	// session has its full copies on them again.
	rd.detect = make([]detect, len(survivors))
	for i := range rd.detect {
		rd.detect[i] = detect{unresponsive: -1, dead: -1}
	}
	rd.deadAt = -1
	for {
		el := time.Since(kt)
		done := true
		for i, s := range survivors {
			if rd.detect[i].dead >= 0 {
				continue
			}
			st, err := procs[s].Stats(false)
			if err != nil {
				done = false
				continue
			}
			peers, _ := proc.Get(st, "store", "Replication", "peers").(map[string]any)
			pc, ok := peers[names[killed]].(map[string]any)
			if !ok {
				rd.detect[i].dead = el
			} else {
				done = false
				if u, _ := pc["Unresponsive"].(bool); u && rd.detect[i].unresponsive < 0 {
					rd.detect[i].unresponsive = el
				}
			}
		}
		if done && rd.deadAt < 0 {
			rd.deadAt = el
		}
		if done {
			rd.fullLast = copiesOn(procs, survivors, ids, holders)
			if rd.fullLast.full() {
				rd.fullAt = time.Since(kt)
				break
			}
		}
		if el > o.maxAfter || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	end := o.after
	if rd.fullAt >= 0 {
		end = max(end, rd.fullAt+o.afterDead)
	}
	end = min(end, o.maxAfter)
	if rem := time.Until(kt.Add(end)); rem > 0 {
		sleepCtx(ctx, rem)
	}
	stopAt.Store(time.Now().UnixNano())
	wg.Wait()
	<-sleeperDone
	rd.end = time.Since(kt)
	rd.stats2 = statsOf(procs, survivors)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Every client's session must still be there, on any survivor.
	k := 0
	for _, cs := range clients {
		for _, cl := range cs {
			if cl.firstErr != "" && len(rd.errSamples) < 5 && !slices.Contains(rd.errSamples, cl.firstErr) {
				rd.errSamples = append(rd.errSamples, cl.firstErr)
			}
			res, current := cl.check(urls[survivors[k%len(survivors)]])
			k++
			switch {
			case res == resMissing:
				rd.lost++
			case res == resOK && !current:
				rd.stale++
			case res != resOK:
				rd.unchecked++
			}
		}
	}

	// Rebase the samples on the kill time; the warm-up's are dropped.
	var pre int
	off := kt.Sub(loadStart)
	for wi := range results {
		for _, s := range results[wi] {
			s.t -= off
			if s.t < -o.before {
				continue
			}
			if s.t < 0 {
				pre++
			}
			rd.samples = append(rd.samples, s)
		}
	}
	rd.achieved = float64(pre) / o.before.Seconds()
	for _, l := range late {
		l.t -= off
		if l.t >= -o.before {
			rd.late = append(rd.late, l)
		}
	}

	isSurvivor := func(node int8) bool { return int(node) != killed }
	type wdef struct {
		name     string
		from, to time.Duration
	}
	defs := []wdef{
		{"before the kill", -o.before, 0},
		{"0–1 s after", 0, time.Second},
		{"1–5 s after", time.Second, 5 * time.Second},
		{"5–15 s after", 5 * time.Second, 15 * time.Second},
	}
	if rd.deadAt >= 0 {
		defs = append(defs, wdef{"after declared dead", rd.deadAt, rd.end})
	}
	for _, d := range defs {
		w := window{name: d.name, from: d.from, to: min(d.to, rd.end), survivors: true}
		var lats []time.Duration
		for _, s := range rd.samples {
			if s.t < w.from || s.t >= w.to || !isSurvivor(s.node) {
				continue
			}
			w.reqs++
			switch s.res {
			case resError:
				w.errors++
			case resMissing:
				w.missing++
			case res5xx:
				w.fivexx++
			case resMismatch:
				w.mismatch++
			}
			lats = append(lats, s.lat)
			if s.lat >= o.fetchTimeout {
				w.slow++
			}
		}
		slices.Sort(lats)
		w.p50, w.p99 = quantile(lats, 0.5), quantile(lats, 0.99)
		if len(lats) > 0 {
			w.max = lats[len(lats)-1]
		}
		rd.windows = append(rd.windows, w)
	}
	return rd, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func statsOf(procs []*proc.Proc, which []int) []map[string]any {
	out := make([]map[string]any, len(which))
	for i, w := range which {
		out[i], _ = procs[w].Stats(false)
	}
	return out
}
