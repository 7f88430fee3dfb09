package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/bench/internal/figures"
	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/internal/procstat"
)

// Probe 4, handshake slots: M silent TCP connections held to node A's
// replication stream port (each opened again as soon as A drops it), then
// node B is restarted; how long until B serves again (its WaitReady, i.e.
// the state transfer from A, is done) and both nodes list each other as
// live peers. The same restart without the flood is the baseline.

type hsCounters struct {
	connCounters
	refused, dropped atomic.Int64
}

type restart struct {
	stop           time.Duration // the old B's graceful stop
	listen, peered time.Duration // from the new B's start
	served, paired bool          // within the wait
	afterLift      time.Duration // paired this long after the flood ended (if it had to)
	err            error
}

func runHandshake(e *env, o *options) *section {
	s := &section{title: "4. Handshake slots"}
	s.setup = fmt.Sprintf("%d TCP connections to node A's replication stream port (Member.Addr from A's /status) that send nothing, "+
		"each opened again 10 ms after A drops it (at most %d per connection slot); after 1.5 s of that, node B is stopped (SIGTERM: it "+
		"leaves the cluster) and started again with the same name, joining A. Timed from the new B's start: until it serves (it prints "+
		"LISTEN after WaitReady, i.e. after its state transfer from A) and until both nodes list each other as live peers; waited for at "+
		"most %v, then the flood stops and B is waited for up to 10 s more. The same restart without the flood is the baseline. A connection A drops within 100 ms of its opening counts as refused. "+
		"The flood comes from 127.0.0.1, the members' own address: the worst case for limits that tell members from strangers by source IP.",
		o.hsConns, o.hsMax, o.hsTimeout)
	pr, err := e.pair()
	if err != nil {
		s.err = err
		return s
	}
	defer func() { e.stopPair(pr) }()
	streamA, err := selfAddr(pr.a)
	if err != nil {
		s.err = err
		return s
	}

	base := restartB(e, pr, o.hsTimeout, nil, 0)
	if !base.served || !base.paired {
		s.err = fmt.Errorf("baseline restart failed: %v", base.err)
		return s
	}

	var c hsCounters
	ctx, cancel := context.WithTimeout(context.Background(), o.hsTimeout+15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range o.hsConns {
		wg.Go(func() { hsWorker(ctx, streamA, o.hsMax, &c) })
	}
	procstat.Sleep(ctx, 1500*time.Millisecond)
	floodStart := time.Now()
	estab := established(portOf(streamA))
	st0, _ := stats(pr.a, false)
	var floodDur time.Duration
	lift := func() {
		cancel()
		wg.Wait()
		floodDur = time.Since(floodStart) + 1500*time.Millisecond
	}
	flooded := restartB(e, pr, o.hsTimeout, lift, 10*time.Second)
	if floodDur == 0 {
		lift()
	}

	st1, _ := stats(pr.a, false)
	nodeCounter := func(key string) string {
		x0, ok0 := findNum(st0, key)
		x1, ok1 := findNum(st1, key)
		if !ok0 || !ok1 {
			return "not in /stats"
		}
		return count(x1 - x0)
	}
	c.mu.Lock()
	life := slices.Clone(c.lifetimes)
	c.mu.Unlock()
	show := func(r restart, d time.Duration, ok bool) string {
		if !ok {
			return fmt.Sprintf("> %s (not while the flood lasted)", secs(o.hsTimeout))
		}
		return secs(d)
	}
	s.table = [][]string{{"figure", "no flood (baseline)", fmt.Sprintf("%d silent connections", o.hsConns)},
		{"old B's graceful stop", secs(base.stop), secs(flooded.stop)},
		{"new B serving (WaitReady done)", show(base, base.listen, base.served), show(flooded, flooded.listen, flooded.served)},
		{"both list each other as live peers", show(base, base.peered, base.paired), show(flooded, flooded.peered, flooded.paired)},
	}
	s.extraTbl = [][]string{{"flood figure", "value"},
		{"established connections on A's stream port when B was stopped", fmt.Sprint(estab)},
		{"connections opened (dial errors)", fmt.Sprintf("%s (%s)", count(c.opened.Load()), count(c.dialErrs.Load()))},
		{"dropped by A within 100 ms (refused), per second", fmt.Sprintf("%s (%s/s)", count(c.refused.Load()), count(float64(c.refused.Load())/floodDur.Seconds()))},
		{"dropped by A later (held a slot until its deadline)", count(c.dropped.Load())},
		{"lifetime of the held ones: median (max)", fmt.Sprintf("%.2f s (%.2f s)", figures.Median(heldOnly(life)), slices.Max(append(life, 0)))},
		{"A's own counters during the flood: stream connections refused / handshake timeouts", nodeCounter("StreamConnsRefused") + " / " + nodeCounter("HandshakeTimeouts")},
	}
	if flooded.afterLift > 0 {
		s.table = append(s.table, []string{"paired once the flood stopped, after", "", secs(flooded.afterLift)})
	}
	if flooded.err != nil {
		s.notes = append(s.notes, "Under the flood: "+flooded.err.Error())
	}
	s.notes = append(s.notes, "A silent connection takes one of A's pending-handshake slots until A's deadline for the first message; "+
		"while all slots are taken A refuses new stream connections, B's among them, unless it prefers members' addresses.",
		"The refusal rate is set by the probe (80 connections, each reopened 10 ms after it is dropped), not by the node.")
	fig := fmt.Sprintf("B serving after %s, peered after %s (baseline %s, %s)",
		show(flooded, flooded.listen, flooded.served), show(flooded, flooded.peered, flooded.paired), secs(base.listen), secs(base.peered))
	if flooded.afterLift > 0 {
		fig += fmt.Sprintf("; paired %s after the flood stopped", secs(flooded.afterLift))
	}
	bound := fmt.Sprintf("a silent connection held a slot a median %.2f s; A refused %s/s beyond its slots", figures.Median(heldOnly(life)), count(float64(c.refused.Load())/floodDur.Seconds()))
	s.summary = append(s.summary, [3]string{fmt.Sprintf("handshake slots, %d silent connections", o.hsConns), fig, bound})
	return s
}

func heldOnly(xs []float64) []float64 {
	var out []float64
	for _, x := range xs {
		if x >= 0.1 {
			out = append(out, x)
		}
	}
	return out
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	var n int
	_, _ = fmt.Sscan(p, &n)
	return n
}

// restartB stops pr.b and starts it again, waiting at most timeout for
// it to serve and pair with A. When lift is set and B is not paired by
// then, lift is called (the flood ends) and B is waited for another
// afterWait, timed from that moment in r.afterLift.
func restartB(e *env, pr *pair, timeout time.Duration, lift func(), afterWait time.Duration) restart {
	var r restart
	t := time.Now()
	e.stop(pr.b)
	pr.b = nil
	r.stop = time.Since(t)

	type started struct {
		p   *proc.Proc
		err error
		at  time.Time
	}
	t0 := time.Now()
	total := timeout
	if lift != nil {
		total += afterWait
	}
	ch := make(chan started, 1)
	go func() {
		p, err := e.node("b", total, append([]string{"-join", pr.gossipA}, pr.args...)...)
		ch <- started{p, err, time.Now()}
	}()
	liftAt := time.Time{}
	lifted := func() {
		if lift != nil && liftAt.IsZero() {
			lift()
			liftAt = time.Now()
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var st started
	select {
	case st = <-ch:
	case <-timer.C:
		lifted()
		st = <-ch // bounded by total
	}
	if st.err != nil {
		r.err = st.err
		r.listen = time.Since(t0)
		return r
	}
	pr.b = st.p
	r.listen = st.at.Sub(t0)
	r.served = r.listen <= timeout
	for time.Since(t0) < total {
		if peered(pr.a, "b") && peered(pr.b, "a") {
			r.peered = time.Since(t0)
			r.paired = r.peered <= timeout
			if !liftAt.IsZero() {
				r.afterLift = time.Since(liftAt)
			}
			return r
		}
		if time.Since(t0) >= timeout {
			lifted()
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.err = fmt.Errorf("B served after %s, but the nodes did not list each other as peers within %v", secs(r.listen), total)
	return r
}

func peered(p *proc.Proc, name string) bool {
	m, err := getJSON(p.URL+"/stats", time.Second)
	return err == nil && hasPeer(m, name)
}

// hsWorker holds one silent connection to addr until ctx ends, opening a
// new one 10 ms after the node drops it, at most maxConns times.
func hsWorker(ctx context.Context, addr string, maxConns int, c *hsCounters) {
	d := net.Dialer{Timeout: time.Second}
	var buf [256]byte
	c.redial(ctx, &d, addr, maxConns, 10*time.Millisecond, func(conn net.Conn) bool {
		for ctx.Err() == nil {
			_ = conn.SetReadDeadline(within(ctx, 200*time.Millisecond))
			if _, err := conn.Read(buf[:]); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				return ctx.Err() == nil
			}
		}
		return false
	}, func(l time.Duration) {
		if l < 100*time.Millisecond {
			c.refused.Add(1)
		} else {
			c.dropped.Add(1)
		}
	})
}
