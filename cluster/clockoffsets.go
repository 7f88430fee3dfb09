package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Clock offsets are measured on memberlist's failure-detector pings, at no
// extra traffic: every direct ack this node sends carries its wall clock
// (Config.Clock; clockpayload.go), and when one of its own probes
// completes it takes the peer's offset as the peer's reading minus this
// node's wall clock half a round trip before the ack arrived:
//
//	offset = their wall − (our wall at completion − rtt/2)
//
// the way NTP and CockroachDB's RPC heartbeats estimate it, within ±rtt/2.
// memberlist probes one member per ProbeInterval, in turn, so each peer
// is measured about once every (members × ProbeInterval). Indirect probes
// and the TCP fallback carry no payload, so a peer reachable only that
// way has no fresh offset.

// clockSampleCycles is how many probe cycles (a probe of every member) a
// sample stays fresh: older ones are forgotten, so a peer no longer
// measured (its pings go unanswered, or over TCP) stops counting.
const clockSampleCycles = 10

// A step of this node's own wall clock (set by hand, by an NTP step, or
// by a test's Config.Clock) shifts every peer's offset by as much at once,
// before any new ping: so each sample also keeps how far the wall clock had
// moved against the monotonic clock when it was taken (its drift), and
// an offset is reported corrected by the drift since. Slewing moves the
// two clocks alike; only steps change the drift.
//
// Two things move the drift while this clock is right: a resume from
// suspend (the monotonic clock stood still meanwhile: the node looks
// ahead of its peers until they are measured again), and a test's fake
// clock that every node shares, moved on by hand. The latter is told
// apart: a wall clock seen standing still while the monotonic clock moves
// is a fake one, and its steps are not corrected for from then on.

// clockSample is the latest offset measured for one peer.
type clockSample struct {
	offset time.Duration // the peer's wall clock minus this node's
	drift  time.Duration // this node's drift when it was taken
	at     time.Time     // when it was taken, on the monotonic clock
}

// clockProbe is memberlist's PingDelegate: it answers pings with this
// node's wall clock and keeps the latest offset measured for each peer.
// Its callbacks run on memberlist's goroutines; they do not block and
// take no lock but mu.
type clockProbe struct {
	wall    func() time.Time // this node's wall clock (Config.Clock)
	probe   time.Duration    // memberlist's ProbeInterval
	ignored *atomic.Uint64   // payloads that were not clock readings
	// wall0 and mono0 are the wall and monotonic clocks read at the start:
	// the reference of the drift.
	wall0, mono0 time.Time
	manual       atomic.Bool // the wall clock was seen standing still: a fake one

	mu        sync.Mutex // guards samples, clockless, lastWall and lastMono
	samples   map[string]clockSample
	clockless map[string]bool // peers whose pings came back without a clock: an older release
	lastWall  int64           // the wall clock's last reading seen, Unix nanoseconds
	lastMono  time.Time       // when it was taken, on the monotonic clock
}

var _ memberlist.PingDelegate = (*clockProbe)(nil)

func newClockProbe(wall func() time.Time, ignored *atomic.Uint64) *clockProbe {
	mono := time.Now()
	return &clockProbe{wall: wall, ignored: ignored, wall0: wall(), mono0: mono,
		samples: make(map[string]clockSample), clockless: make(map[string]bool)}
}

// driftAt is how far the wall clock reading wall, taken at mono on the
// monotonic clock, has moved against the monotonic clock since the start.
// The wall readings are compared as Unix times: time.Time.Sub would use
// their monotonic readings (time.Now's carry one), which a step of the
// wall clock does not move.
func (c *clockProbe) driftAt(wall, mono time.Time) time.Duration {
	return time.Duration(wall.UnixNano()-c.wall0.UnixNano()) - mono.Sub(c.mono0)
}

// drift is driftAt now; always zero for a fake clock.
func (c *clockProbe) drift() time.Duration {
	if c.manual.Load() {
		return 0
	}
	wall := c.wall()
	return c.driftAt(wall, time.Now())
}

// noteLocked notes a reading of the wall clock, taken at mono on the
// monotonic clock, and marks the clock a fake one if it stood still since
// the last reading, a millisecond or more before. c.mu must be held.
func (c *clockProbe) noteLocked(wall, mono time.Time) {
	ns := wall.UnixNano()
	if !c.lastMono.IsZero() && mono.Sub(c.lastMono) >= time.Millisecond && ns == c.lastWall {
		c.manual.Store(true)
	}
	c.lastWall, c.lastMono = ns, mono
}

// AckPayload implements memberlist.PingDelegate.
func (c *clockProbe) AckPayload() []byte { return encodeClockPayload(c.wall()) }

// NotifyPingComplete implements memberlist.PingDelegate. A payload that is
// not a clock reading (none from an older node; garbage) is ignored.
func (c *clockProbe) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	if len(payload) == 0 { // a node of a release that sends no clock
		c.mu.Lock()
		c.clockless[other.Name] = true
		c.mu.Unlock()
		return
	}
	theirs, ok := decodeClockPayload(payload)
	if !ok || rtt < 0 {
		c.ignored.Add(1)
		return
	}
	ours := c.wall()
	now := time.Now()
	offset := theirs.Sub(ours.Add(-rtt / 2)) // Sub saturates: no overflow
	c.mu.Lock()
	c.noteLocked(ours, now)
	c.mu.Unlock()
	c.record(other.Name, offset, c.driftAt(ours, now), now)
}

// record keeps offset as peer id's latest sample, taken at now with this
// node's clock at drift, and forgets samples too old to count, so that the
// map holds only members probed lately.
func (c *clockProbe) record(id string, offset, drift time.Duration, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples[id] = clockSample{offset: offset, drift: drift, at: now}
	delete(c.clockless, id)
	maxAge := c.maxAge(len(c.samples))
	for p, s := range c.samples {
		if now.Sub(s.at) > maxAge {
			delete(c.samples, p)
		}
	}
}

// forget drops peer id's sample (it left or died).
func (c *clockProbe) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.samples, id)
	delete(c.clockless, id)
}

// maxAge is how long a sample stays fresh with this many peers:
// clockSampleCycles probe cycles of the peers and this node.
func (c *clockProbe) maxAge(peers int) time.Duration {
	return clockSampleCycles * time.Duration(peers+1) * c.probe
}

// fresh returns the clocks of the peers in live whose sample is fresh at
// now, by peer ID, corrected for the steps of this node's clock since they
// were taken (drift is its drift now).
func (c *clockProbe) fresh(live []string, now time.Time, drift time.Duration) map[string]PeerClock {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]PeerClock, len(live))
	maxAge := c.maxAge(len(live))
	for _, id := range live {
		if s, ok := c.samples[id]; ok && now.Sub(s.at) <= maxAge {
			pc := PeerClock{Offset: s.offset}
			if !c.manual.Load() {
				pc.Step = drift - s.drift
				pc.Offset -= pc.Step
			}
			out[id] = pc
		}
	}
	return out
}

// PeerClock is a live peer's clock as this node measured it last.
type PeerClock struct {
	// Offset is how far the peer's wall clock is ahead of this node's
	// (negative: behind), corrected for Step.
	Offset time.Duration
	// Step is how far this node's own wall clock was stepped since the
	// offset was measured (zero for a fake clock that stands still
	// between steps): the correction applied. An offset corrected for a
	// large step is only as good as the sample: the peer's clock may
	// have been stepped too since, which only a new ping shows.
	Step time.Duration
}

// PeerClocks returns, for each live peer measured lately, its clock as
// measured, by peer ID; a peer not measured yet, or not lately, is absent.
// An offset is measured on memberlist's pings, within half their round
// trip; a peer is measured about once every (members × ProbeInterval),
// and its sample is forgotten after ten such cycles without a new one, or
// at once when it leaves or dies. A step of this node's own clock
// (Config.Clock set forward or back) shows at once: each offset is
// corrected by the step since it was measured (see ClockDrift), unless
// the clock is a fake one that stands still between steps. Peers of
// releases that do not send their clock are never measured.
func (n *Node) PeerClocks() map[string]PeerClock {
	var live []string
	for _, p := range n.Peers() {
		live = append(live, p.ID)
	}
	wall := n.clock.wall()
	now := time.Now()
	n.clock.mu.Lock()
	n.clock.noteLocked(wall, now)
	n.clock.mu.Unlock()
	return n.clock.fresh(live, now, n.clock.driftAt(wall, now))
}

// ClockOffsets returns the offsets of PeerClocks: for each live peer
// measured lately, how far its wall clock is ahead of this node's.
func (n *Node) ClockOffsets() map[string]time.Duration {
	out := make(map[string]time.Duration)
	for id, pc := range n.PeerClocks() {
		out[id] = pc.Offset
	}
	return out
}

// ClocklessPeers returns how many of the live peers answered a ping
// without a clock reading (nodes of a release that sends none): they are
// never measured, and ClockOffsets never has them.
func (n *Node) ClocklessPeers() int {
	peers := n.Peers()
	n.clock.mu.Lock()
	defer n.clock.mu.Unlock()
	k := 0
	for _, p := range peers {
		if n.clock.clockless[p.ID] {
			k++
		}
	}
	return k
}

// ClockDrift is how far this node's wall clock (Config.Clock) has moved
// against the monotonic clock since New: it changes when the wall clock is
// stepped, by the step, and barely otherwise; it is zero for a fake clock
// that stands still between steps (a test's). A caller that keeps a
// judgement of ClockOffsets re-reads them when it changes.
func (n *Node) ClockDrift() time.Duration { return n.clock.drift() }

// ClockDriftAt is ClockDrift as of the wall clock reading wall (Unix
// nanoseconds), taken just before: what a caller that stamped with that
// reading compares with the drift its judgement of ClockOffsets was made
// at. Zero for a fake clock, as ClockDrift.
func (n *Node) ClockDriftAt(wall int64) time.Duration {
	if n.clock.manual.Load() {
		return 0
	}
	return n.clock.driftAt(time.Unix(0, wall), time.Now())
}

// ProbeInterval is memberlist's ProbeInterval (after Config.Tune): about
// how often ClockOffsets may change.
func (n *Node) ProbeInterval() time.Duration { return n.clock.probe }
