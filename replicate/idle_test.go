package replicate

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
)

// held is what a peer's buffers hold on to between bursts: the frame
// buffers of its spare batches (bytes), its queue's peak since the last
// release, and the capacity of its queue's arrays (entries).
type held struct {
	frameBytes, peak, arrays int
}

func heldBy(p *peer) held {
	var h held
	p.window.mu.Lock()
	for _, b := range p.window.spare {
		h.frameBytes += b.buf.Cap()
	}
	p.window.mu.Unlock()
	p.queue.mu.Lock()
	h.peak = p.queue.peak
	h.arrays = cap(p.queue.order) + cap(p.queue.drained)
	p.queue.mu.Unlock()
	return h
}

// burstPair returns nodes A and B up to each other, whose senders release
// idle buffers after releaseAfter, and A's peer B after A replicated a
// burst of n sessions of 1 KiB to B, every one acknowledged.
func burstPair(t *testing.T, releaseAfter time.Duration, n int) (a, b *testNode, p *peer) {
	t.Helper()
	net := newMemNet(t)
	a = newNode(t, net, "A", 1, nil)
	b = newNode(t, net, "B", 2, nil)
	a.e.releaseAfter, b.e.releaseAfter = releaseAfter, releaseAfter
	connectAll([]*testNode{a, b})
	val := strings.Repeat("x", 1024)
	recs := make([]model.Record, n)
	for i := range recs {
		recs[i] = a.write(sessionID(i), "v", val)
	}
	a.publish(recs...)
	require.NoError(t, a.e.Flush(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, n, b.store.len())
	a.e.mu.RLock()
	p = a.e.peers["B"]
	a.e.mu.RUnlock()
	return a, b, p
}

func TestReleaseIdleReturnsWhatABurstGrew(t *testing.T) {
	_, _, p := burstPair(t, time.Hour, 3000) // the sender never releases on its own here
	before := heldBy(p)
	// What the burst left: the test could not fail without it.
	require.Greater(t, before.frameBytes, keepFrameBuf, "spare frame buffers after a burst of 3 MiB")
	require.Greater(t, before.peak, keepIndex, "queue peak after the burst")

	require.True(t, p.releaseIdle(), "nothing in flight or queued")

	after := heldBy(p)
	require.LessOrEqual(t, after.frameBytes, keepFrameBuf*p.window.limit)
	require.Zero(t, after.peak)
	require.Zero(t, after.arrays)
}

func TestReleaseIdleKeepsWhatIsInUse(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a := nodes[0]
	link := net.link("A", "B")
	link.set(func(l *memLink) { l.blocked = true }) // nothing is acknowledged
	a.e.mu.RLock()
	p := a.e.peers["B"]
	a.e.mu.RUnlock()
	val := strings.Repeat("x", 1024)
	for i := range 200 {
		a.publish(a.write(sessionID(i), "v", val))
	}
	waitFor(t, "a batch in flight", func() bool { return peerStats(a, "B").Batches > 0 })
	p.window.mu.Lock()
	inflight := len(p.window.inflight)
	p.window.mu.Unlock()
	queued := p.queue.len()

	require.False(t, p.releaseIdle(), "a batch in flight")

	p.window.mu.Lock()
	require.Len(t, p.window.inflight, inflight, "batches in flight stay")
	p.window.mu.Unlock()
	require.Equal(t, queued, p.queue.len(), "queued changes stay")
	link.set(func(l *memLink) { l.blocked = false })
	require.NoError(t, a.e.Flush(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, 200, nodes[1].store.len())
}

func TestIdleSenderReleasesOnItsOwn(t *testing.T) {
	_, _, p := burstPair(t, time.Millisecond, 3000)
	// The sender releases once it has sent nothing for releaseAfter: wait
	// for it, with no bound on when.
	waitFor(t, "buffers released by the idle sender", func() bool {
		h := heldBy(p)
		return h.frameBytes <= keepFrameBuf*p.window.limit && h.peak == 0 && h.arrays == 0
	})
}

func TestIdleReleaseWaitsAWholePeriodWithoutSends(t *testing.T) {
	r := newIdleRelease(time.Hour)
	defer r.timer.Stop()
	r.arm()
	require.False(t, r.armed, "nothing sent yet: nothing to release")
	r.sent()
	r.arm()
	require.True(t, r.armed)
	r.sent() // a send during the period
	require.False(t, r.fired(), "sent during the period: not idle")
	r.arm()
	require.True(t, r.fired(), "a whole period without a send")
	r.arm()
	require.True(t, r.armed, "the release found something in use: another period")
	require.True(t, r.fired())
	r.done()
	r.arm()
	require.False(t, r.armed, "released: armed again only after a send")
}
