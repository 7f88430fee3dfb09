package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/peersession/peersession/bench/internal/procstat"
)

// heal is one fault's end as the checker saw it.
type heal struct {
	step   step
	agree  time.Duration // from the heal to every node holding the same data
	agreed bool
	whole  time.Duration // from the heal to every node listing every other as a live peer (-1: not seen)
	v      verdict
}

// nemesis runs the schedule against the cluster, with the workload
// paused around each heal's check.
type nemesis struct {
	c      *cluster
	w      *workload
	sched  *schedule
	limit  time.Duration // the longest wait for agreement before it counts as failed
	out    io.Writer     // the schedule and each check, as they happen
	done   []step        // the steps run, for a failing run's replay
	heals  []heal
	faults map[faultKind]int
}

// run injects and heals faults until ctx ends (the run's duration); a
// step under way when it ends is still healed and checked.
func (n *nemesis) run(ctx context.Context) error {
	n.faults = map[faultKind]int{}
	for ctx.Err() == nil {
		s := n.sched.next()
		if !procstat.Sleep(ctx, s.Gap) {
			return nil
		}
		fmt.Fprintf(n.out, "%s  %s\n", stamp(), s)
		n.done = append(n.done, s)
		if err := n.inject(s); err != nil {
			return fmt.Errorf("step %s: inject: %w", s, err)
		}
		n.faults[s.Kind]++
		procstat.Sleep(ctx, s.Hold) // ctx ending only shortens the fault
		h, err := n.healAndCheck(s)
		if err != nil {
			return fmt.Errorf("step %s: heal: %w", s, err)
		}
		n.heals = append(n.heals, h)
		fmt.Fprintf(n.out, "%s  healed #%d: %s\n", stamp(), s.N, h.summary())
	}
	return nil
}

// inject starts step s's fault.
func (n *nemesis) inject(s step) error {
	c := n.c
	switch s.Kind {
	case faultKill:
		c.kill(s.Node)
	case faultPause:
		return c.signal(s.Node, true)
	case faultPartition:
		if err := c.net.Drop(s.Side, s.Other); err != nil {
			return err
		}
		return c.net.Drop(s.Other, s.Side)
	case faultOneWay:
		return c.net.Drop(s.Side, s.Other)
	case faultNetem:
		return c.net.Netem(s.Node, s.Delay, s.Loss)
	case faultClock, faultSkew:
		return c.setClock(s.Node, s.Offset)
	}
	return nil
}

// healAndCheck pauses the clients, ends step s's fault, waits for every
// node to hold the same data and checks it against the ledger.
func (n *nemesis) healAndCheck(s step) (heal, error) {
	n.w.pause()
	defer n.w.resume()
	c := n.c
	start := time.Now()
	var err error
	switch s.Kind {
	case faultKill:
		err = c.start(s.Node)
	case faultPause:
		err = c.signal(s.Node, false)
	case faultPartition, faultOneWay, faultNetem:
		err = c.net.Heal()
	case faultClock, faultSkew:
		err = c.setClock(s.Node, 0)
	}
	if err != nil {
		return heal{}, err
	}
	return n.check(s, start)
}

// check waits for agreement since start and checks the data.
func (n *nemesis) check(s step, start time.Time) (heal, error) {
	h := heal{step: s}
	ctx := context.Background()
	a := waitAgree(ctx, n.c, start, n.limit)
	h.agree, h.agreed, h.whole = a.agree, a.agreed, a.whole
	if !h.agreed {
		fmt.Fprintf(n.out, "%s  no agreement %v after #%d: %v\n", stamp(), n.limit, s.N, a.digests)
	}
	held, err := fullDump(ctx, n.c, 0)
	if err != nil {
		return h, fmt.Errorf("dump n1: %w", err)
	}
	h.v = n.w.ledger.check(held, n.c.killsOf)
	for _, l := range h.v.lost {
		fmt.Fprintf(n.out, "%s  lost: session %.12s %s=%d acknowledged by n%d %v ago; held %q\n",
			stamp(), l.id, l.key, l.ack.seq, l.ack.node+1, time.Since(l.ack.at).Round(time.Millisecond), l.have)
	}
	for _, c := range h.v.comebacks {
		fmt.Fprintf(n.out, "%s  back: session %.12s, ended (%s) by n%d %v ago\n",
			stamp(), c.id, c.end.how, c.end.node+1, time.Since(c.end.at).Round(time.Millisecond))
	}
	return h, nil
}

func (h heal) summary() string {
	s := fmt.Sprintf("agreed in %v", h.agree.Round(time.Millisecond))
	if !h.agreed {
		s = fmt.Sprintf("NOT agreed after %v", h.agree.Round(time.Millisecond))
	}
	if h.whole >= 0 {
		s += fmt.Sprintf(" (membership whole in %v)", h.whole.Round(time.Millisecond))
	}
	s += fmt.Sprintf(", %d sessions", h.v.sessions)
	if n := len(h.v.lost); n > 0 {
		s += fmt.Sprintf(", %d acknowledged writes LOST (%d accounted by a kill)", n, countAccounted(h.v))
	}
	if n := len(h.v.comebacks); n > 0 {
		s += fmt.Sprintf(", %d ended sessions BACK", n)
	}
	return s
}

func countAccounted(v verdict) int {
	n := 0
	for _, l := range v.lost {
		if l.accounted {
			n++
		}
	}
	return n
}

func stamp() string { return time.Now().UTC().Format("15:04:05.000") }
