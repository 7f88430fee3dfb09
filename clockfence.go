package peersession

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/ratelog"
	"github.com/peersession/peersession/replicate"
)

// A node whose wall clock is far from its peers' stops taking writes: its
// peers would refuse what it stamps (more than replicate's MaxClockSkew in
// their future), or it would refuse theirs, and a change it acknowledged
// would be lost or, once the clocks agree, win over later writes made
// elsewhere. Each peer's clock offset is measured on memberlist's pings
// (cluster.Node.ClockOffsets). A node whose clock differs by more than
// MaxClockSkew from a strict majority of its measured peers (from the only
// one, in a pair), or whose hybrid clock still stamps versions that far
// ahead of theirs (written while its clock was ahead), is clock-fenced:
// every local change fails with ErrClockSkew before it is applied, and
// ReadyHandler answers 503. Reads, and changes replicated from peers, go
// on. A pair with one wrong clock fences both nodes: neither can tell which
// clock is wrong. A joining node reports ready only once it has compared
// its clock with a peer's (waitClock), so that one started with a wrong
// clock is fenced before it is sent any request.

// maxClockSkew is replicate's refusal bound, which the root leaves at its
// default: the fence keeps a node from writing what its peers refuse.
const maxClockSkew = replicate.DefaultMaxClockSkew

// clockVerdict is why a node is clock-fenced.
type clockVerdict struct {
	off, measured int           // peers too far away, of those measured
	stepped       int           // of off, those measured before a step of this node's clock
	step          time.Duration // the largest such step
	skew          time.Duration // this node's wall clock minus the median peer's
	lead          time.Duration // how far the hybrid clock is ahead of this node's wall clock
}

// stampSkew is how far ahead of the median peer's clock this node's next
// version would be.
func (v *clockVerdict) stampSkew() time.Duration { return v.lead + v.skew }

// judgeClock returns the verdict on this node's clock, or nil when the
// node may take writes. clocks are its measured peers' (offsets: their
// clock minus its own wall clock); lead is how far its hybrid clock's
// newest version is ahead of its wall clock (zero if behind), as after
// writes made while the wall clock was ahead and since set back: the next
// version it stamps is lead − offset ahead of a peer's clock. A peer is
// too far away when that is over maxSkew (it would refuse the node's
// changes), when its clock is over maxSkew ahead (the node would refuse
// its changes), or when it was measured before this node's clock was
// stepped by more than maxSkew: its offset, corrected for the step, is
// only as good as its sample, and the peer's clock may have been stepped
// too since (set right after being off, in the chaos harness), which only
// a new ping shows. The node is fenced when a strict majority of its
// measured peers are too far away; never when none is measured. So a node
// that has measured only a wrong clock yet (just after it or that peer
// started) fences itself until it measures another: a probe interval or
// two without writes, rather than writes its peers might refuse. Waiting
// for a majority of the live peers instead let a node whose clock was
// stepped while a peer was not measured yet take writes its peers refused.
func judgeClock(clocks map[string]cluster.PeerClock, lead, maxSkew time.Duration) *clockVerdict {
	var all []time.Duration
	v := clockVerdict{lead: lead}
	for _, c := range clocks {
		d := c.Offset
		all = append(all, d)
		switch {
		case lead-d > maxSkew || d > maxSkew:
			v.off++
		case c.Step.Abs() > maxSkew:
			v.off++
			v.stepped++
			v.step = max(v.step, c.Step.Abs())
		}
	}
	if len(all) == 0 || 2*v.off <= len(all) {
		return nil
	}
	slices.Sort(all)
	v.measured, v.skew = len(all), -all[len(all)/2]
	return &v
}

// stamping reports whether the node is fenced for the versions its hybrid
// clock stamps rather than for its wall clock.
func (v *clockVerdict) stamping() bool {
	return v.lead >= time.Second && v.stampSkew() > maxClockSkew && v.skew.Abs() <= maxClockSkew
}

// ahead is how far ahead of its peers' the node is, as the verdict says:
// its stamps', or its wall clock's (negative: behind).
func (v *clockVerdict) ahead() time.Duration {
	if v.stamping() {
		return v.stampSkew()
	}
	return v.skew
}

// err is the error of a write refused for this verdict.
func (v *clockVerdict) err() error {
	if v.stepped > 0 && !v.stamping() && 2*(v.off-v.stepped) <= v.measured {
		return fmt.Errorf("%w: this node's clock was stepped by about %s since %d of its %d measured peers were measured, more than %s: "+
			"it takes writes again once their clocks are measured again (a probe interval or two); if its clock keeps jumping, check its time sync (NTP)",
			ErrClockSkew, v.step.Round(time.Second), v.stepped, v.measured, maxClockSkew)
	}
	if v.stamping() {
		return fmt.Errorf("%w: this node stamps versions about %s ahead of its peers' clocks (%d of the %d measured are more than %s off), "+
			"from writes made while its clock was ahead (its clock itself is %s off): its peers would refuse its changes. "+
			"It takes writes again once their clocks are within %s of those versions; check its time sync (NTP)",
			ErrClockSkew, v.stampSkew().Round(time.Second), v.off, v.measured, maxClockSkew, v.skew.Round(time.Second), maxClockSkew)
	}
	way := "ahead"
	if v.skew < 0 {
		way = "behind"
	}
	return fmt.Errorf("%w: this node's clock differs from its peers' by about %s (%s; %d of the %d measured are more than %s off), "+
		"so they would refuse its changes or it theirs; fix its time sync (NTP): it takes writes again once its clock agrees",
		ErrClockSkew, v.skew.Abs().Round(time.Second), way, v.off, v.measured, maxClockSkew)
}

// reason is what ReadyHandler answers for this verdict.
func (v *clockVerdict) reason() string {
	return "clock-fenced: " + v.err().Error()
}

// clockFence holds the current verdict on this node's clock, which the
// write path reads without a lock, and logs its changes.
type clockFence struct {
	state  atomic.Pointer[fenceState] // the latest verdict; nil before the first
	rounds atomic.Uint64              // verdicts the loop reached: tests wait for one

	// Only the fence loop's goroutine uses these.
	was, logged         bool            // the previous verdict, and the last line logged, said fenced
	changes             int             // changes of verdict since the last line
	fencedLog, clearLog ratelog.Limiter // one line of each kind per 10 s at most
}

// fenceState is a verdict and the clock drift it was reached at.
type fenceState struct {
	v     *clockVerdict // nil: the node may take writes
	drift time.Duration // cluster.Node.ClockDrift when it was reached
}

// clockStep is how far this node's clock may have been stepped since the
// verdict before a write judges again: a step shows in the offsets at once
// (cluster.Node.ClockOffsets), so a node whose clock is set an hour ahead
// refuses its very next write rather than some probe intervals later.
const clockStep = 100 * time.Millisecond

// current returns the verdict now: nil while the node may take writes.
// It judges again first if this node's clock was stepped since the last
// verdict.
func (f *clockFence) current(r *replication) *clockVerdict {
	s := f.state.Load()
	if s == nil || (r.node.ClockDrift()-s.drift).Abs() > clockStep {
		s = f.judge(r)
	}
	return s.v
}

// trusted reports whether a version may be stamped with the wall clock
// reading wall (Unix nanoseconds): not when this node's clock was stepped
// by more than clockStep since the verdict, which the write being stamped
// was judged by: it passed the fence a moment before the step. The hybrid
// clock then orders the version on its counter alone (model.Clock.SetTrust),
// so that it is not stamped in the peers' future, and the next write
// judges again. The chaos harness found such a write, stamped 91 s ahead.
func (f *clockFence) trusted(r *replication, wall int64) bool {
	s := f.state.Load()
	return s == nil || stampTrusted(s.drift, r.node.ClockDriftAt(wall))
}

// stampTrusted is trusted's rule: the drift at the verdict and at the
// reading differ by at most clockStep.
func stampTrusted(verdict, now time.Duration) bool { return (now - verdict).Abs() <= clockStep }

// judge reaches a verdict from the peers' offsets measured now, and keeps
// it.
func (f *clockFence) judge(r *replication) *fenceState {
	drift := r.node.ClockDrift()
	lead := time.Duration(max(0, r.st.clock.Last().Wall-r.st.clock.Wall().UnixNano()))
	s := &fenceState{judgeClock(r.node.PeerClocks(), lead, maxClockSkew), drift}
	f.state.Store(s)
	return s
}

// update sets the verdict from the peers' offsets measured now, and logs
// a change of verdict: one warning when the node becomes fenced, one when
// it is clear again. A verdict that flaps (a clock near the bound) costs at
// most one line of each kind per 10 seconds, which counts the changes
// since the last line; the last line logged always ends up telling the
// current verdict.
func (f *clockFence) update(r *replication, now time.Time) {
	f.logChange(f.judge(r).v, now, r.st.cfg.Logger)
}

// logChange logs, to log, a change of verdict to v reached at now.
func (f *clockFence) logChange(v *clockVerdict, now time.Time, log *slog.Logger) {
	f.rounds.Add(1)
	fenced := v != nil
	if fenced != f.was {
		f.was = fenced
		f.changes++
	}
	if fenced == f.logged {
		return
	}
	lim := &f.clearLog
	if fenced {
		lim = &f.fencedLog
	}
	if _, ok := lim.Allow(now, 0); !ok {
		return
	}
	n := f.changes
	f.logged, f.changes = fenced, 0
	if fenced {
		log.Warn("peersession: clock-fenced: this node refuses writes (ErrClockSkew) and reports not ready until its clock agrees with its peers'; fix its time sync (NTP)",
			"ahead", v.ahead().Round(time.Millisecond), "peers", v.measured, "count", v.off, "max_skew", maxClockSkew, "changes", n)
		return
	}
	log.Warn("peersession: clock fence lifted: this node's clock agrees with its peers' again; it takes writes and reports ready",
		"changes", n)
}

// clockJudgeProbes and clockJudgeMax bound how long a node that has
// joined waits to measure a peer's clock before it reports ready: the
// lesser of that many probe intervals and that long. A peer is probed
// within an interval, unless pings fail (UDP blocked: the TCP fallback
// carries no clock) or every peer is of a release that sends none, which
// the node learns from their first answer.
const (
	clockJudgeProbes = 3
	clockJudgeMax    = 3 * time.Second
)

// waitClock returns once this node's clock has been compared with a
// peer's, and judged (or it has no live peer, or every live peer sends no
// clock), or the bound (clockJudgeProbes, clockJudgeMax) has passed, or
// ctx ends.
func (r *replication) waitClock(ctx context.Context) {
	probe := r.node.ProbeInterval()
	deadline := time.Now().Add(min(clockJudgeProbes*probe, clockJudgeMax))
	t := time.NewTicker(max(probe/10, time.Millisecond))
	defer t.Stop()
	for {
		peers := len(r.node.Peers())
		if peers == 0 || len(r.node.ClockOffsets()) > 0 || r.node.ClocklessPeers() == peers || !time.Now().Before(deadline) {
			r.fence.judge(r)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
	if v := st.repl.fence.current(st.repl); v != nil {
		return v.err()
	}
	return nil
}
