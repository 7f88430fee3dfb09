package peersession

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/internal/ratelog"
	"github.com/peersession/peersession/replicate"
)

// A node whose wall clock is far from its peers' stops taking writes: its
// peers would refuse what it stamps (more than replicate's MaxClockSkew in
// their future), or it would refuse theirs, and a change it acknowledged
// would be lost or, once the clocks agree, win over later writes made
// elsewhere. Each peer's clock offset is measured on memberlist's pings
// (cluster.Node.ClockOffsets); a node whose clock differs by more than
// MaxClockSkew from a strict majority of its measured live peers (the
// only one, with a single peer) is clock-fenced: every local change fails
// with ErrClockSkew before it is applied, and ReadyHandler answers 503.
// Reads, and changes replicated from peers, go on. A pair with one wrong
// clock fences both nodes: neither can tell which clock is wrong.

// maxClockSkew is replicate's refusal bound, which the root leaves at its
// default: the fence keeps a node from writing what its peers refuse.
const maxClockSkew = replicate.DefaultMaxClockSkew

// clockVerdict is why a node is clock-fenced.
type clockVerdict struct {
	off, measured int           // peers more than maxClockSkew away, of those measured
	skew          time.Duration // this node's clock minus the median peer's
}

// judgeClock returns the verdict on this node's clock given its peers'
// offsets (each peer's clock minus this node's), or nil when the node may
// take writes: when no strict majority of the measured peers is more than
// maxSkew away, or none is measured.
func judgeClock(offsets map[string]time.Duration, maxSkew time.Duration) *clockVerdict {
	var all []time.Duration
	off := 0
	for _, d := range offsets {
		all = append(all, d)
		if d > maxSkew || d < -maxSkew {
			off++
		}
	}
	if len(all) == 0 || 2*off <= len(all) {
		return nil
	}
	slices.Sort(all)
	return &clockVerdict{off: off, measured: len(all), skew: -all[len(all)/2]}
}

// err is the error of a write refused for this verdict.
func (v *clockVerdict) err() error {
	way := "ahead of"
	if v.skew < 0 {
		way = "behind"
	}
	return fmt.Errorf("%w: this node's clock is about %s %s its peers' (%d of the %d measured differ by more than %s), "+
		"so they would refuse its changes or it theirs; fix its time sync (NTP); writes resume once its clock agrees",
		ErrClockSkew, v.skew.Abs().Round(time.Second), way, v.off, v.measured, maxClockSkew)
}

// reason is what ReadyHandler answers for this verdict.
func (v *clockVerdict) reason() string {
	return "clock-fenced: " + v.err().Error()
}

// clockFence holds the current verdict on this node's clock, which the
// write path reads without a lock, and logs its changes.
type clockFence struct {
	verdict atomic.Pointer[clockVerdict] // nil while the node may take writes
	rounds  atomic.Uint64                // verdicts reached: tests wait for one

	// Only the fence loop's goroutine uses these.
	logged bool            // the last line logged said the node is fenced
	flaps  ratelog.Limiter // holds back lines of a verdict that flaps
}

// err returns the error of a write refused now, or nil.
func (f *clockFence) err() error {
	if v := f.verdict.Load(); v != nil {
		return v.err()
	}
	return nil
}

// update sets the verdict from the peers' offsets measured now, and logs
// a change of verdict: one warning when the node becomes fenced, one line
// when it is clear again, at most one line per ten seconds with the count
// of changes when the verdict flaps (a clock near the bound); the last
// line logged always ends up telling the current verdict.
func (f *clockFence) update(r *replication, now time.Time) {
	v := judgeClock(r.node.ClockOffsets(), maxClockSkew)
	f.verdict.Store(v)
	f.rounds.Add(1)
	if (v != nil) == f.logged {
		return
	}
	n, ok := f.flaps.Allow(now, 1)
	if !ok {
		return
	}
	f.logged = v != nil
	log := r.st.cfg.Logger
	if v != nil {
		log.Warn("peersession: clock-fenced: this node refuses writes (ErrClockSkew) and reports not ready until its clock agrees with its peers'; fix its time sync (NTP)",
			"ahead", v.skew.Round(time.Millisecond), "peers", v.measured, "count", v.off, "max_skew", maxClockSkew, "changes", n)
		return
	}
	log.Warn("peersession: clock fence lifted: this node's clock agrees with its peers' again; it takes writes and reports ready",
		"changes", n)
}

// clockFenceLoop updates the fence every probe interval (about as often
// as a new offset is measured) until Close.
func (r *replication) clockFenceLoop() {
	defer r.st.wg.Done()
	t := time.NewTicker(r.node.ProbeInterval())
	defer t.Stop()
	for {
		select {
		case <-r.st.stop:
			return
		case now := <-t.C:
			r.fence.update(r, now)
		}
	}
}

// clockFenced returns the error of a local change refused because this
// node is clock-fenced, or nil (always, on a single node).
func (st *Store) clockFenced() error {
	if st.repl == nil {
		return nil
	}
	return st.repl.fence.err()
}
