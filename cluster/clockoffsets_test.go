package cluster

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aheadBy returns a wall clock running d ahead of the real one.
func aheadBy(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(d) }
}

// offsetTolerance bounds the error of a measured offset on loopback: half
// a round trip, plus the scheduling of a -race run. It is a bound on the
// value measured, not on how long anything takes.
const offsetTolerance = time.Second

// pingSpy wraps a node's ping delegate: it records the payload of every
// ack the node's probes received, by peer, after the node itself saw it,
// and, if replace is set, acks with replace's payload instead of the
// node's clock.
type pingSpy struct {
	inner   memberlist.PingDelegate
	replace func() []byte

	mu  sync.Mutex // guards got
	got map[string][][]byte
}

// spy returns a Config modifier installing s on the node's memberlist.
func (s *pingSpy) spy(c *Config) {
	c.Tune = func(mc *memberlist.Config) {
		fastTimers(mc)
		s.inner, mc.Ping = mc.Ping, s
	}
}

func (s *pingSpy) AckPayload() []byte {
	if s.replace != nil {
		return s.replace()
	}
	return s.inner.AckPayload()
}

func (s *pingSpy) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	s.inner.NotifyPingComplete(other, rtt, payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = make(map[string][][]byte)
	}
	s.got[other.Name] = append(s.got[other.Name], append([]byte(nil), payload...))
}

// acksFrom returns the payloads of the acks received from peer id.
func (s *pingSpy) acksFrom(id string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[id]
}

// waitOffsets waits until n has measured each of the peers.
func waitOffsets(t *testing.T, n testNode, peers ...testNode) map[string]time.Duration {
	t.Helper()
	var offs map[string]time.Duration
	require.Eventually(t, func() bool {
		offs = n.ClockOffsets()
		for _, p := range peers {
			if _, ok := offs[p.Self().ID]; !ok {
				return false
			}
		}
		return true
	}, waitFor, tick, "%s never measured its peers' clocks", n.Self().Name)
	return offs
}

func TestClockOffsetOfAPeerAheadIsMeasuredOnPings(t *testing.T) {
	a := newTestNode(t, nil)
	join(t, a)
	b := newTestNode(t, seeds(a))
	join(t, b)
	ahead := newTestNode(t, func(c *Config) {
		seeds(a)(c)
		c.Clock = aheadBy(2 * time.Minute)
	})
	join(t, ahead)
	waitPeers(t, a, b, ahead)

	offs := waitOffsets(t, a, b, ahead)
	assert.InDelta(t, 2*time.Minute, offs[ahead.Self().ID], float64(offsetTolerance), "a sees the clock 2 min ahead")
	assert.InDelta(t, 0, offs[b.Self().ID], float64(offsetTolerance), "a sees b's clock with its own")

	offs = waitOffsets(t, ahead, a, b)
	assert.InDelta(t, -2*time.Minute, offs[a.Self().ID], float64(offsetTolerance), "the node ahead sees a behind")
	assert.InDelta(t, -2*time.Minute, offs[b.Self().ID], float64(offsetTolerance), "and b")

	assert.Zero(t, a.Stats().ClockPayloadsIgnored)
}

// A peer that acks with a payload that is not a clock reading (a hostile
// one, or a newer release's) is not measured, and the payloads are
// counted; the peer is otherwise a member like any other.
func TestClockPayloadThatIsNoClockReadingIsIgnored(t *testing.T) {
	var seen pingSpy
	a := newTestNode(t, seen.spy)
	join(t, a)
	hostile := pingSpy{replace: func() []byte {
		b := encodeClockPayload(time.Now().Add(time.Hour))
		b[len(clockTag)] = 9 // another version
		return b
	}}
	h := newTestNode(t, func(c *Config) {
		hostile.spy(c)
		seeds(a)(c)
	})
	join(t, h)
	waitPeers(t, a, h)

	require.Eventually(t, func() bool { return len(seen.acksFrom(h.Self().ID)) > 0 }, waitFor, tick)
	assert.NotContains(t, a.ClockOffsets(), h.Self().ID)
	assert.NotZero(t, a.Stats().ClockPayloadsIgnored)
	_, live := a.alivePeer(h.Self().ID)
	assert.True(t, live, "still a live peer")
}

// Nodes of releases before clock offsets ack with no payload: they are not
// measured, nothing is counted as ignored, and they are counted as
// clockless (a joining node does not wait to measure them).
func TestPeerThatSendsNoClockIsNotMeasured(t *testing.T) {
	var seen pingSpy
	a := newTestNode(t, seen.spy)
	join(t, a)
	old := pingSpy{replace: func() []byte { return nil }}
	o := newTestNode(t, func(c *Config) {
		old.spy(c)
		seeds(a)(c)
	})
	join(t, o)
	waitPeers(t, a, o)

	require.Eventually(t, func() bool { return len(seen.acksFrom(o.Self().ID)) > 0 }, waitFor, tick)
	assert.Empty(t, seen.acksFrom(o.Self().ID)[0])
	assert.NotContains(t, a.ClockOffsets(), o.Self().ID)
	assert.Zero(t, a.Stats().ClockPayloadsIgnored)
	assert.Equal(t, 1, a.ClocklessPeers())
	waitOffsets(t, o, a) // the old node's peers still answer with their clock
	assert.Zero(t, o.ClocklessPeers())
}

// A peer that dies is forgotten: its sample goes with it.
func TestClockOffsetOfADeadPeerIsForgotten(t *testing.T) {
	a, b := pair(t, nil)
	waitOffsets(t, a, b)
	id := b.Self().ID
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool {
		a.clock.mu.Lock()
		defer a.clock.mu.Unlock()
		_, held := a.clock.samples[id]
		return !held
	}, waitFor, tick)
	assert.NotContains(t, a.ClockOffsets(), id)
}

// A sample is fresh for ten probe cycles of the members (a peer no longer
// measured stops counting), and only live peers are reported.
func TestClockSamplesGoStale(t *testing.T) {
	var ignored atomic.Uint64
	c := newClockProbe(time.Now, &ignored)
	c.probe = time.Second
	t0 := time.Now()
	c.record("p1", time.Minute, 0, t0)
	c.record("p2", -time.Minute, 0, t0.Add(5*time.Second))

	// Two peers: fresh for 10 × 3 × 1s.
	live := []string{"p1", "p2"}
	assert.Equal(t, map[string]PeerClock{"p1": {Offset: time.Minute}, "p2": {Offset: -time.Minute}}, c.fresh(live, t0.Add(30*time.Second), 0))
	assert.Equal(t, map[string]PeerClock{"p2": {Offset: -time.Minute}}, c.fresh(live, t0.Add(31*time.Second), 0))
	assert.Equal(t, map[string]PeerClock{"p1": {Offset: time.Minute}}, c.fresh([]string{"p1", "p3"}, t0, 0), "only live peers")

	// A new sample drops those too old to count.
	c.record("p3", 0, 0, t0.Add(time.Hour))
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Equal(t, []string{"p3"}, keys(c.samples))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A step of this node's own clock shifts every offset by as much, at once:
// the samples are corrected by how far the wall clock moved against the
// monotonic one since they were taken, and say by how much (Step).
func TestClockOffsetsFollowAStepOfTheOwnClockAtOnce(t *testing.T) {
	c := newClockProbe(time.Now, new(atomic.Uint64))
	c.probe = time.Second
	t0 := time.Now()
	c.record("p1", time.Minute, 0, t0)
	c.record("p2", 0, 2*time.Minute, t0) // taken while this clock was 2 min ahead
	assert.Equal(t, map[string]PeerClock{"p1": {Offset: -time.Minute, Step: 2 * time.Minute}, "p2": {}},
		c.fresh([]string{"p1", "p2"}, t0, 2*time.Minute), "stepped 2 min forward")
	assert.Equal(t, map[string]PeerClock{"p1": {Offset: time.Minute}, "p2": {Offset: 2 * time.Minute, Step: -2 * time.Minute}},
		c.fresh([]string{"p1", "p2"}, t0, 0), "set back")
}

// On real nodes: the node whose clock is stepped sees its peers' offsets
// move at once, without waiting for its next ping of them.
func TestClockStepShowsInTheOffsetsAtOnce(t *testing.T) {
	var shift atomic.Int64
	a := newTestNode(t, func(c *Config) {
		c.Clock = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	})
	join(t, a)
	b := newTestNode(t, seeds(a))
	join(t, b)
	waitPeers(t, a, b)
	require.InDelta(t, 0, waitOffsets(t, a, b)[b.Self().ID], float64(offsetTolerance))
	require.InDelta(t, 0, a.ClockDrift(), float64(offsetTolerance))

	shift.Store(int64(2 * time.Minute))
	assert.InDelta(t, 2*time.Minute, a.ClockDrift(), float64(offsetTolerance))
	assert.InDelta(t, -2*time.Minute, a.ClockOffsets()[b.Self().ID], float64(offsetTolerance))
	shift.Store(0)
	assert.InDelta(t, 0, a.ClockOffsets()[b.Self().ID], float64(offsetTolerance), "and back")
}

// A fake clock that stands still between steps (a test's, shared by every
// node) is not corrected for: its steps move every node's clock alike.
func TestClockOffsetsOfAFakeClockAreNotCorrected(t *testing.T) {
	fake := time.Unix(1_800_000_000, 0)
	c := newClockProbe(func() time.Time { return fake }, new(atomic.Uint64))
	c.probe = time.Second
	t0 := time.Now()
	c.mu.Lock()
	c.noteLocked(fake, t0)
	c.noteLocked(fake, t0.Add(time.Microsecond))
	c.mu.Unlock()
	assert.False(t, c.manual.Load(), "read twice within a millisecond: no telling yet")
	c.record("p1", 0, c.driftAt(fake, t0), t0)

	c.mu.Lock()
	c.noteLocked(fake, t0.Add(5*time.Millisecond))
	c.mu.Unlock()
	require.True(t, c.manual.Load(), "stood still for 5 ms: a fake clock")
	fake = fake.Add(time.Hour) // a test moves every node's clock on
	assert.Zero(t, c.drift())
	assert.Equal(t, map[string]PeerClock{"p1": {}}, c.fresh([]string{"p1"}, t0, time.Hour), "no correction")
}

// A real clock is never taken for a fake one.
func TestRunningClockIsNotTakenForAFakeOne(t *testing.T) {
	a, b := pair(t, nil)
	for range 3 {
		waitOffsets(t, a, b)
		a.ClockOffsets()
	}
	assert.False(t, a.clock.manual.Load())
	assert.False(t, b.clock.manual.Load())
}
