package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// loss is one acknowledged write the cluster no longer holds.
type loss struct {
	id   string
	key  string
	ack  ackRec
	have string // the value held instead, "" if the session is gone
	// accounted: (Async) the node that acknowledged it was killed within
	// lossWindow after; age is how long after.
	accounted bool
	age       time.Duration
}

// comeback is an ended session (or a login's old ID) found alive again.
type comeback struct {
	id        string
	end       ackRec
	accounted bool
	age       time.Duration
}

// lossWindow is how soon after an acknowledgement a kill -9 of the node
// that gave it accounts for its loss in Async mode: the data directory's
// FlushInterval (1 s) and the time the change takes to reach a peer, with
// room for a loaded machine.
const lossWindow = 3 * time.Second

// verdict is one check's findings: what is newly lost or back since the
// last check, and how many sessions' fate is open (a login or logout that
// went unanswered, and the session gone).
type verdict struct {
	lost          []loss
	comebacks     []comeback
	indeterminate int
	// lateUnacked counts sessions found holding the value of a write that
	// was never acknowledged over later acknowledged ones.
	lateUnacked int
	sessions    int
}

// check compares the ledger with the sessions every live node holds (they
// agree: see waitAgree). killsOf gives the kill times of a node, to
// account Async losses.
func (l *ledger) check(held []dumped, killsOf func(node int) []time.Time) verdict {
	byID := make(map[string]dumped, len(held))
	for _, d := range held {
		byID[d.ID] = d
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v := verdict{sessions: len(held)}
	for id, t := range l.tracks {
		if t.dead {
			continue
		}
		d, ok := byID[id]
		if !ok && t.uncertain {
			v.indeterminate++
			continue
		}
		have := -1
		val := ""
		if ok {
			val = d.Values[t.key]
			if n, err := strconv.Atoi(val); err == nil {
				have = n
			}
		}
		if have >= t.last {
			continue
		}
		if t.failed[have] {
			// A write that got no answer took effect after later ones
			// that did: allowed (it was never refused, only unanswered),
			// and counted.
			if !l.seen[id+"/late/"+val] {
				l.seen[id+"/late/"+val] = true
				v.lateUnacked++
			}
			continue
		}
		for _, a := range t.acks {
			if a.seq <= have || l.seen[id+"/"+strconv.Itoa(a.seq)] {
				continue
			}
			l.seen[id+"/"+strconv.Itoa(a.seq)] = true
			x := loss{id: id, key: t.key, ack: a, have: val}
			x.accounted, x.age = accountFor(a, killsOf)
			v.lost = append(v.lost, x)
		}
	}
	for id, end := range l.dead {
		if _, ok := byID[id]; !ok || l.seen[id] {
			continue
		}
		l.seen[id] = true
		c := comeback{id: id, end: end}
		c.accounted, c.age = accountFor(end, killsOf)
		v.comebacks = append(v.comebacks, c)
	}
	sort.Slice(v.lost, func(i, j int) bool { return v.lost[i].ack.at.Before(v.lost[j].ack.at) })
	return v
}

// accountFor reports whether the node that gave a was killed within
// lossWindow after it, and how long after.
func accountFor(a ackRec, killsOf func(node int) []time.Time) (bool, time.Duration) {
	for _, k := range killsOf(a.node) {
		if age := k.Sub(a.at); age >= 0 && age <= lossWindow {
			return true, age
		}
	}
	return false, 0
}

// agreement is what waitAgree saw after a heal: when every node again
// listed every other as a live peer (membership whole; the last time it
// became so, if it flapped), and when they all held the same data.
type agreement struct {
	whole   time.Duration // -1 if never within the limit
	agree   time.Duration
	agreed  bool
	digests []string // the last digests seen (each node's, or its error)
}

// waitAgree polls every node's digest and peers until, in one round, all
// list each other as live peers and hold the same data, at most limit
// after since.
func waitAgree(ctx context.Context, c *cluster, since time.Time, limit time.Duration) agreement {
	ctx, cancel := context.WithDeadline(ctx, since.Add(limit))
	defer cancel()
	a := agreement{whole: -1}
	for {
		a.digests = make([]string, len(c.nodes))
		failed, whole := false, true
		for i := range c.nodes {
			var st nodeStats
			if err := getJSON(ctx, c.url(i)+"/stats", &st); err != nil || st.Peers != len(c.nodes)-1 {
				whole = false
			}
			var d dump
			if err := getJSON(ctx, c.url(i)+"/dump", &d); err != nil {
				a.digests[i] = "error: " + err.Error()
				failed = true
				continue
			}
			a.digests[i] = fmt.Sprintf("%s (%d sessions)", d.Digest, d.Count)
		}
		switch {
		case !whole:
			a.whole = -1 // it was whole, and is not any more: a flap
		case a.whole < 0 && ctx.Err() == nil:
			a.whole = time.Since(since)
		}
		if whole && !failed && !slices.ContainsFunc(a.digests, func(s string) bool { return s != a.digests[0] }) && ctx.Err() == nil {
			a.agree, a.agreed = time.Since(since), true
			return a
		}
		select {
		case <-ctx.Done():
			a.agree = time.Since(since)
			return a
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fullDump fetches node i's sessions.
func fullDump(ctx context.Context, c *cluster, i int) ([]dumped, error) {
	var d dump
	err := getJSON(ctx, c.url(i)+"/dump?full=1", &d)
	return d.Sessions, err
}
