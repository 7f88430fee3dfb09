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

// clockSample is the latest offset measured for one peer.
type clockSample struct {
	offset time.Duration // the peer's wall clock minus this node's
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

	mu      sync.Mutex // guards samples
	samples map[string]clockSample
}

var _ memberlist.PingDelegate = (*clockProbe)(nil)

func newClockProbe(wall func() time.Time, ignored *atomic.Uint64) *clockProbe {
	return &clockProbe{wall: wall, ignored: ignored, samples: make(map[string]clockSample)}
}

// AckPayload implements memberlist.PingDelegate.
func (c *clockProbe) AckPayload() []byte { return encodeClockPayload(c.wall()) }

// NotifyPingComplete implements memberlist.PingDelegate. A payload that is
// not a clock reading (none from an older node; garbage) is ignored.
func (c *clockProbe) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	if len(payload) == 0 {
		return // a node of a release that sends no clock
	}
	theirs, ok := decodeClockPayload(payload)
	if !ok || rtt < 0 {
		c.ignored.Add(1)
		return
	}
	offset := theirs.Sub(c.wall().Add(-rtt / 2)) // Sub saturates: no overflow
	c.record(other.Name, offset, time.Now())
}

// record keeps offset as peer id's latest sample, taken at now, and
// forgets samples too old to count, so that the map holds only members
// probed lately.
func (c *clockProbe) record(id string, offset time.Duration, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples[id] = clockSample{offset: offset, at: now}
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
}

// maxAge is how long a sample stays fresh with this many peers:
// clockSampleCycles probe cycles of the peers and this node.
func (c *clockProbe) maxAge(peers int) time.Duration {
	return clockSampleCycles * time.Duration(peers+1) * c.probe
}

// fresh returns the offsets of the peers in live whose sample is fresh at
// now, by peer ID.
func (c *clockProbe) fresh(live []string, now time.Time) map[string]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]time.Duration, len(live))
	maxAge := c.maxAge(len(live))
	for _, id := range live {
		if s, ok := c.samples[id]; ok && now.Sub(s.at) <= maxAge {
			out[id] = s.offset
		}
	}
	return out
}

// ClockOffsets returns, for each live peer measured lately, how far its
// wall clock is ahead of this node's (negative: behind), by peer ID; a
// peer not measured yet, or not lately, is absent. An offset is measured
// on memberlist's pings, within half their round trip; a peer is measured
// about once every (members × ProbeInterval), and its sample is forgotten
// after ten such cycles without a new one, or at once when it leaves or
// dies. A step of this node's own clock shows as each peer is measured
// again: the offsets are not corrected for it, since nothing tells a step
// of this clock alone from one of every clock (a test's shared clock) or a
// resume from suspend. Peers of releases that do not send their clock are
// never measured.
func (n *Node) ClockOffsets() map[string]time.Duration {
	var live []string
	for _, p := range n.Peers() {
		live = append(live, p.ID)
	}
	return n.clock.fresh(live, time.Now())
}

// ProbeInterval is memberlist's ProbeInterval (after Config.Tune): about
// how often ClockOffsets may change.
func (n *Node) ProbeInterval() time.Duration { return n.clock.probe }
