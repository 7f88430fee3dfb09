package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/bench/internal/figures"
	"github.com/peersession/peersession/bench/internal/procstat"
)

// Probe 2, gossip-port buffering: K connections to node A's gossip TCP
// port (memberlist's), each sending 0x0a (memberlist's encrypted message),
// a big-endian uint32 length and then filler, paced, as someone without the
// key would. An unguarded memberlist v0.7.0 reads the declared length into
// memory before it decrypts anything. A's RSS and the connections it holds
// are sampled four times a second.

type gossipCounters struct {
	connCounters
	cut, stalled, completed atomic.Int64
	open                    atomic.Int64
	bytes                   atomic.Int64
}

// gossipRun is one flood of the gossip port from one source address.
type gossipRun struct {
	label, src            string
	dur                   time.Duration
	baseline, peak, after float64
	rss, estab, socks     []float64
	c                     gossipCounters
	flood                 time.Duration
	capped, alive         bool
	counters0, counters1  map[string]any
	refusedNode, cutNode  float64
	haveNodeCounters      bool
}

func runGossip(e *env, o *options) *section {
	s := &section{title: "2. Gossip-port buffering"}
	s.setup = fmt.Sprintf("%d connections to node A's gossip TCP port, each sending byte 0x0a (memberlist's encrypted message), "+
		"the big-endian uint32 length %s and then filler at %s bytes/s per connection in 32 KiB writes (each with a 2 s write deadline); "+
		"a connection the node ends is opened again 100 ms later (at most %d per connection slot). No key: what anyone who reaches the port can do. "+
		"Two runs, each on a fresh pair: from 127.0.0.1, the address the members advertise (on one machine the flood shares it: the worst case "+
		"for limits that tell members from strangers by source IP), for %v; and from %s, a loopback address no member has (a stranger), for %v. "+
		"Node A's RSS and the established connections on its gossip port (/proc/net/tcp) are sampled every 250 ms; the baseline is the "+
		"median of four samples before the flood. Filler stops while A's RSS is above %d MiB (a safety cap for the machine).",
		o.gossipConns, count(o.gossipLen), count(o.gossipRate), o.gossipMax, o.gossipDur, o.strangerSrc, o.strangerDur, o.rssCapMiB)
	runs := []*gossipRun{{label: "from 127.0.0.1 (a member's IP)", dur: o.gossipDur}}
	if o.strangerSrc != "" && o.strangerDur > 0 {
		runs = append(runs, &gossipRun{label: "from " + o.strangerSrc + " (a stranger's IP)", src: o.strangerSrc, dur: o.strangerDur})
	}
	for _, r := range runs {
		if err := gossipOnce(e, o, r); err != nil {
			s.err = fmt.Errorf("%s: %w", r.label, err)
			return s
		}
	}

	// Only samples after the first second: connections are being opened.
	steady := func(xs []float64) []float64 {
		if len(xs) > 4 {
			return xs[4:]
		}
		return xs
	}
	s.table = [][]string{{"figure"}}
	for _, r := range runs {
		s.table[0] = append(s.table[0], fmt.Sprintf("%s, %v", r.label, r.dur))
	}
	add := func(name string, f func(r *gossipRun) string) {
		row := []string{name}
		for _, r := range runs {
			row = append(row, f(r))
		}
		s.table = append(s.table, row)
	}
	add("node A RSS baseline", func(r *gossipRun) string { return mib(r.baseline) })
	add("node A RSS peak (peak − baseline)", func(r *gossipRun) string {
		return fmt.Sprintf("%s (%s)", mib(r.peak), mibSigned(r.peak-r.baseline))
	})
	add("node A RSS median during the flood (after its first second)", func(r *gossipRun) string { return mib(figures.Median(steady(r.rss))) })
	add("node A RSS 1 s after the flood", func(r *gossipRun) string { return mib(r.after) })
	add("connections held by A: median (max) established on its gossip port", func(r *gossipRun) string {
		return fmt.Sprintf("%.0f (%.0f)", figures.Median(steady(r.estab)), slices.Max(append(r.estab, 0)))
	})
	add("A's open sockets above its baseline: median (max)", func(r *gossipRun) string {
		return fmt.Sprintf("%.0f (%.0f)", figures.Median(steady(r.socks)), slices.Max(append(r.socks, 0)))
	})
	add("connections opened (dial errors)", func(r *gossipRun) string {
		return fmt.Sprintf("%s (%s)", count(r.c.opened.Load()), count(r.c.dialErrs.Load()))
	})
	add("ended by the node (a write failed: reset or closed)", func(r *gossipRun) string { return count(r.c.cut.Load()) })
	add("writes that blocked 2 s (the node held the connection without reading)", func(r *gossipRun) string { return count(r.c.stalled.Load()) })
	add("all declared bytes sent, then ended by the node", func(r *gossipRun) string { return count(r.c.completed.Load()) })
	add("lifetime of the connections the node ended", func(r *gossipRun) string {
		r.c.mu.Lock()
		defer r.c.mu.Unlock()
		return lifetimes(r.c.lifetimes)
	})
	add("filler sent in total (per second)", func(r *gossipRun) string {
		b := float64(r.c.bytes.Load())
		return fmt.Sprintf("%s (%s/s)", mib(b), mib(b/r.flood.Seconds()))
	})
	add("node's own counters: connections refused / cut", func(r *gossipRun) string {
		if !r.haveNodeCounters {
			return "not in /stats"
		}
		return fmt.Sprintf("%s / %s", count(r.refusedNode), count(r.cutNode))
	})
	add("node A answered /stats after the flood", func(r *gossipRun) string { return fmt.Sprint(r.alive) })

	for _, r := range runs {
		if r.capped {
			s.notes = append(s.notes, fmt.Sprintf("%s: A's RSS passed the probe's safety cap (%d MiB): filler was held back while above it, so the peak is the cap's, not the node's.", r.label, o.rssCapMiB))
		}
	}
	s.notes = append(s.notes,
		"Without a guard, memberlist v0.7.0 reads the declared length (up to 20 MiB) into a growing buffer before decrypting, keeps each connection up to its 10 s TCP timeout, and has no connection limit; "+
			"a guard on the gossip transport shows here as connections ended early (short lifetimes, few held) and a flat RSS.")
	for _, r := range runs {
		per := (r.peak - r.baseline) / float64(max(1, o.gossipConns))
		s.summary = append(s.summary, [3]string{
			fmt.Sprintf("gossip-port buffering, %d connections %s", o.gossipConns, r.label),
			fmt.Sprintf("node A RSS %s → peak %s (%s); A held a median of %.0f connections (max %.0f); lifetime of the ones it ended: %s",
				mib(r.baseline), mib(r.peak), mibSigned(r.peak-r.baseline), figures.Median(steady(r.estab)), slices.Max(append(r.estab, 0)), lifetimesShort(r)),
			fmt.Sprintf("%s above baseline at the peak (%s per flooding connection)", mib(r.peak-r.baseline), mib(per)),
		})
	}
	return s
}

func lifetimesShort(r *gossipRun) string {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if len(r.c.lifetimes) == 0 {
		return "none ended"
	}
	return fmt.Sprintf("median %.2f s", figures.Median(r.c.lifetimes))
}

func gossipOnce(e *env, o *options, r *gossipRun) error {
	pr, err := e.pair()
	if err != nil {
		return err
	}
	defer e.stopPair(pr)
	pid := pr.a.Pid()

	var base []float64
	for range 4 {
		x, err := procstat.RSS(pid)
		if err != nil {
			return err
		}
		base = append(base, float64(x))
		time.Sleep(250 * time.Millisecond)
	}
	r.baseline = figures.Median(base)
	baseSockets := procstat.Sockets(pid)
	r.counters0, _ = stats(pr.a, false)

	var hold atomic.Bool // over the RSS cap: send no filler
	ctx, cancel := context.WithTimeout(context.Background(), r.dur)
	defer cancel()
	var local net.Addr
	if r.src != "" {
		ip := net.ParseIP(r.src)
		if ip == nil {
			return fmt.Errorf("source address %q is no IP", r.src)
		}
		local = &net.TCPAddr{IP: ip}
	}
	var wg sync.WaitGroup
	for range o.gossipConns {
		wg.Go(func() { gossipWorker(ctx, pr.gossipA, local, o, &r.c, &hold) })
	}
	r.peak = r.baseline
	start := time.Now()
	procstat.Every(ctx, 250*time.Millisecond, func() {
		x, err := procstat.RSS(pid)
		if err != nil {
			return
		}
		r.rss = append(r.rss, float64(x))
		r.peak = max(r.peak, float64(x))
		over := x > int64(o.rssCapMiB)<<20
		hold.Store(over)
		r.capped = r.capped || over
		r.estab = append(r.estab, float64(established(pr.gossipPort)))
		r.socks = append(r.socks, float64(procstat.Sockets(pid)-baseSockets))
	})
	wg.Wait()
	r.flood = time.Since(start)
	// A second more: what the node still holds once the senders are gone.
	time.Sleep(time.Second)
	after, _ := procstat.RSS(pid)
	r.after = float64(after)
	r.peak = max(r.peak, r.after)
	r.counters1, err = stats(pr.a, false)
	r.alive = err == nil
	if r.counters0 != nil && r.counters1 != nil {
		ref0, ok0 := findNum(r.counters0, "GossipConnsRefused")
		ref1, ok1 := findNum(r.counters1, "GossipConnsRefused")
		cut0, _ := findNum(r.counters0, "GossipConnsCut")
		cut1, _ := findNum(r.counters1, "GossipConnsCut")
		if ok0 && ok1 {
			r.haveNodeCounters = true
			r.refusedNode, r.cutNode = ref1-ref0, cut1-cut0
		}
	}
	if r.c.opened.Load() == 0 {
		return fmt.Errorf("no connection could be opened (%d dial errors)", r.c.dialErrs.Load())
	}
	return nil
}

// gossipWorker keeps one flooding connection up until ctx ends, opening a
// new one when the node ends it, at most o.gossipMax times.
func gossipWorker(ctx context.Context, addr string, local net.Addr, o *options, c *gossipCounters, hold *atomic.Bool) {
	const chunk = 32 << 10
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = 'f'
	}
	interval := time.Duration(float64(time.Second) * chunk / float64(max(1, o.gossipRate)))
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: local}
	c.redial(ctx, &d, addr, o.gossipMax, 100*time.Millisecond, func(conn net.Conn) bool {
		c.open.Add(1)
		defer c.open.Add(-1)
		return floodOne(ctx, conn, o, buf, interval, c, hold)
	}, nil)
}

// floodOne sends the header and the filler on conn; true if the node ended
// the connection (rather than ctx).
func floodOne(ctx context.Context, conn net.Conn, o *options, buf []byte, interval time.Duration, c *gossipCounters, hold *atomic.Bool) bool {
	var hdr [5]byte
	hdr[0] = 0x0a
	binary.BigEndian.PutUint32(hdr[1:], uint32(o.gossipLen))
	_ = conn.SetWriteDeadline(within(ctx, 2*time.Second))
	if _, err := conn.Write(hdr[:]); err != nil {
		c.cut.Add(1)
		return true
	}
	sent := 0
	next := time.Now()
	for sent < o.gossipLen {
		if !procstat.Sleep(ctx, time.Until(next)) {
			return false
		}
		next = next.Add(interval)
		if hold.Load() {
			continue
		}
		n := min(len(buf), o.gossipLen-sent)
		_ = conn.SetWriteDeadline(within(ctx, 2*time.Second))
		w, err := conn.Write(buf[:n])
		sent += w
		c.bytes.Add(int64(w))
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The node is not reading: it holds the connection
				// without buffering. Keep it, as an attacker would.
				c.stalled.Add(1)
				continue
			}
			c.cut.Add(1)
			return true
		}
	}
	// Everything declared was sent: the node decrypts, fails and closes.
	_ = conn.SetReadDeadline(within(ctx, 12*time.Second))
	var one [1]byte
	for {
		if _, err := conn.Read(one[:]); err != nil {
			if ctx.Err() != nil {
				return false
			}
			c.completed.Add(1)
			return true
		}
	}
}

// within is now+d, or ctx's deadline if that comes first.
func within(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// lifetimes describes the lifetimes of connections the node ended.
func lifetimes(life []float64) string {
	if len(life) == 0 {
		return "none ended"
	}
	return fmt.Sprintf("median %.2f s (max %.2f s, %d ended)", figures.Median(life), slices.Max(life), len(life))
}
