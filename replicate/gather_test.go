package replicate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/wire"
)

// The Acks waiting for a peer and the Batch the window lets out go in one
// write (FramesSender), Acks first.
func TestAcksAndBatchesWaitingGoInOneWrite(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	ab := net.link("A", "B")
	ab.set(func(l *memLink) { l.stalled = true }) // A's sender blocks in its first Send

	a.publish(a.write("a-1", "k", "v"))
	waitFor(t, "A's first batch in flight", func() bool { return peerStats(a, "B").Batches == 1 })
	for _, id := range []string{"b-1", "b-2", "b-3"} { // three Batches, so three Acks
		b.publish(b.write(id, "k", "v"))
		waitFor(t, "A applied "+id, func() bool { return a.value(id, "k") == "v" })
	}
	a.e.mu.RLock()
	p := a.e.peers["B"]
	a.e.mu.RUnlock()
	waitFor(t, "three Acks waiting at A", func() bool {
		p.ctrl.mu.Lock()
		defer p.ctrl.mu.Unlock()
		return len(p.ctrl.frames) == 3
	})
	a.publish(a.write("a-2", "k", "v"))
	waitFor(t, "a-2 queued", func() bool { return p.queue.len() == 1 })

	ab.set(func(l *memLink) { l.stalled = false })
	require.NoError(t, a.e.Flush(ctxTimeout(t, 10*time.Second)))
	require.NoError(t, b.e.Flush(ctxTimeout(t, 10*time.Second)))

	require.EqualValues(t, 1, ab.writes.Load(), "the three Acks and the second Batch in one write")
	require.Equal(t, 3, ab.count(wire.MsgAck))
	require.Equal(t, 2, ab.count(wire.MsgBatch))
	require.Equal(t, "v", b.value("a-2", "k"))
	require.EqualValues(t, 3, peerStats(b, "A").Acked, "B's three Batches acknowledged")
}

// An Ack with nothing to go with, for a peer whose Batches come less than
// AckDelay apart, waits up to AckDelay for the next Batch to its peer, and
// then goes with it in one write.
func TestAnAckWaitsForTheNextBatch(t *testing.T) {
	net, nodes := newCluster(t, holdAcksPeers+1, func(c *Config) { c.AckDelay, c.AckTimeout = time.Hour, time.Hour })
	a, b := nodes[0], nodes[1]
	ab := net.link("A", "B")

	b.publish(b.write("b-0", "k", "v")) // the first from B in an hour: acknowledged at once
	waitFor(t, "B's first Batch acknowledged by A", func() bool { return peerStats(b, "A").Acked == 1 })
	b.publish(b.write("b-1", "k", "v")) // the second, within the hour: its Ack waits
	waitFor(t, "A applied b-1", func() bool { return a.value("b-1", "k") == "v" })
	require.Equal(t, 1, ab.count(wire.MsgAck), "the second Ack waits")

	a.publish(a.write("a-1", "k", "v"))
	waitFor(t, "B's second Batch acknowledged by A", func() bool { return peerStats(b, "A").Acked == 2 })
	waitFor(t, "B applied a-1", func() bool { return b.value("a-1", "k") == "v" })
	require.Equal(t, 2, ab.count(wire.MsgAck))
	require.Equal(t, 1, ab.count(wire.MsgBatch))
	require.EqualValues(t, 1, ab.writes.Load(), "the second Ack and the Batch in one write (the first went alone, by Send)")
}

// The first Ack after a quiet spell longer than AckDelay (here: the first
// of all) goes at once: a lone write is not held up waiting for company
// that is unlikely to come.
func TestAnAckAfterQuietGoesAtOnce(t *testing.T) {
	net, nodes := newCluster(t, holdAcksPeers+1, func(c *Config) { c.AckDelay, c.AckTimeout = time.Hour, time.Hour })
	b := nodes[1]
	b.publish(b.write("b-1", "k", "v"))
	waitFor(t, "the Ack sent", func() bool { return net.link("A", "B").count(wire.MsgAck) == 1 })
	require.NoError(t, b.e.Flush(ctxTimeout(t, 10*time.Second)))
}

// An Ack alone goes once AckDelay has passed (the test waits for it, with
// no bound on when).
func TestAnAckAloneGoesAfterAckDelay(t *testing.T) {
	_, nodes := newCluster(t, holdAcksPeers+1, func(c *Config) { c.AckDelay = time.Millisecond })
	a, b := nodes[0], nodes[1]
	b.publish(b.write("b-1", "k", "v"))
	require.NoError(t, b.e.Flush(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, "v", a.value("b-1", "k"))
	require.EqualValues(t, 1, peerStats(b, "A").Acked)
}

// With a negative AckDelay, every Ack goes at once, alone.
func TestNegativeAckDelaySendsAcksAtOnce(t *testing.T) {
	net, nodes := newCluster(t, 2, func(c *Config) { c.AckDelay = -1 })
	a, b := nodes[0], nodes[1]
	b.publish(b.write("b-1", "k", "v"))
	waitFor(t, "the Ack sent", func() bool { return net.link("A", "B").count(wire.MsgAck) == 1 })
	require.NoError(t, b.e.Flush(ctxTimeout(t, 10*time.Second)))
	require.Zero(t, peerStats(a, "B").Batches)
}

// With fewer than holdAcksPeers peers, Acks go at once.
func TestAcksAreNotHeldWithFewPeers(t *testing.T) {
	net, nodes := newCluster(t, holdAcksPeers, func(c *Config) { c.AckDelay = time.Hour })
	a, b := nodes[0], nodes[1]
	b.publish(b.write("b-1", "k", "v"))
	waitFor(t, "the Ack sent", func() bool { return net.link("A", "B").count(wire.MsgAck) == 1 })
	require.NoError(t, b.e.Flush(ctxTimeout(t, 10*time.Second)))
	require.Zero(t, peerStats(a, "B").Batches)
}
