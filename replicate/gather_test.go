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
