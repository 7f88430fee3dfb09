package replicate

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/wire"
)

// dropTransferRequests makes the link drop the next n TransferRequests
// that want (a delta: one with a digest; a full transfer: one without),
// and returns how many it dropped so far.
func dropTransferRequests(l *memLink, delta bool, n int) *atomic.Int32 {
	return dropTransferRequestsCounted(l, delta, n, new(atomic.Int32))
}

// dropTransferRequestsCounted is dropTransferRequests counting in dropped,
// which links may share.
func dropTransferRequestsCounted(l *memLink, delta bool, n int, dropped *atomic.Int32) *atomic.Int32 {
	l.set(func(l *memLink) {
		l.dropIf = func(frame []byte) bool {
			typ, msg, err := wire.Decode(frame)
			if err != nil || typ != wire.MsgTransferRequest {
				return false
			}
			if (len(msg.(*wire.TransferRequest).Digest) > 0) != delta {
				return false
			}
			for {
				d := dropped.Load()
				if d >= int32(n) {
					return false
				}
				if dropped.CompareAndSwap(d, d+1) {
					return true
				}
			}
		}
	})
	return dropped
}

// A delta request lost on the way (a stream reset under it, a peer that
// declined it) is asked again: the join is not held until its context
// ends, and the node still holds every session when Transfer returns.
func TestTransferAsksAgainAPeerWhoseDeltaRequestWasLost(t *testing.T) {
	const n = 500
	net, a, _, _ := joinSetup(t, n, true, func(c *Config) { c.TransferRetry = 20 * time.Millisecond })
	// Only the peer that is not the source is sent a delta request: drop
	// the first two such on both links, whichever that is.
	droppedB := dropTransferRequests(net.link("A", "B"), true, 2)
	droppedC := dropTransferRequests(net.link("A", "C"), true, 2)

	require.NoError(t, a.e.Transfer(ctxTimeout(t, 20*time.Second)),
		"a lost delta request must not hold the transfer until its context ends")

	require.EqualValues(t, 2, droppedB.Load()+droppedC.Load(), "two delta requests, to the peer that is not the source, were lost")
	require.Equal(t, n+2, a.store.len(), "every session, the non-source peer's own included")
	require.Equal(t, "B", a.value("only-on-B", "k"))
	require.Equal(t, "C", a.value("only-on-C", "k"))
	require.GreaterOrEqual(t, a.e.Stats().TransferRetries, uint64(2), "asked again after each loss")
}

// The full state request lost likewise is asked again of the same peer.
func TestTransferAsksAgainASourceWhoseRequestWasLost(t *testing.T) {
	const n = 500
	net, a, _, _ := joinSetup(t, n, true, func(c *Config) { c.TransferRetry = 20 * time.Millisecond })
	droppedB := dropTransferRequests(net.link("A", "B"), false, 1)
	droppedC := dropTransferRequests(net.link("A", "C"), false, 1)

	require.NoError(t, a.e.Transfer(ctxTimeout(t, 20*time.Second)))

	require.EqualValues(t, 1, droppedB.Load()+droppedC.Load(), "the one full request, to the source, was lost")
	require.Equal(t, n+2, a.store.len())
	require.GreaterOrEqual(t, a.e.Stats().TransferRetries, uint64(1))
}

// A peer that never answers, but stays up, holds the join until the
// caller's context ends: Transfer never returns claiming a state it
// did not get (WaitReady's promise), it asks again instead.
func TestTransferNeverEndsWithoutAnAnswerFromALivePeer(t *testing.T) {
	const n = 100
	net, a, _, _ := joinSetup(t, n, true, func(c *Config) { c.TransferRetry = 10 * time.Millisecond })
	dropTransferRequests(net.link("A", "B"), true, 1<<30)
	dropTransferRequests(net.link("A", "C"), true, 1<<30)

	err := a.e.Transfer(ctxTimeout(t, 500*time.Millisecond))
	require.ErrorContains(t, err, "a delta transfer did not finish")
	require.GreaterOrEqual(t, a.e.Stats().TransferRetries, uint64(2), "it kept asking")
}

// A source that stays silent though asked again (a peer that does not know
// this node yet parks its requests) is given up as the source: the whole
// state comes from another peer, and the silent one is asked for a delta.
func TestTransferTakesTheWholeStateFromAnotherPeerWhenTheSourceStaysSilent(t *testing.T) {
	const n = 500
	net, a, b, c := joinSetup(t, n, true, func(c *Config) { c.TransferRetry = 20 * time.Millisecond })
	// The first full request and the maxSilentSource requests after it
	// are lost, whichever peer they go to: all go to the first source.
	dropped := new(atomic.Int32)
	dropTransferRequestsCounted(net.link("A", "B"), false, 1+maxSilentSource, dropped)
	dropTransferRequestsCounted(net.link("A", "C"), false, 1+maxSilentSource, dropped)

	require.NoError(t, a.e.Transfer(ctxTimeout(t, 20*time.Second)))

	require.EqualValues(t, 1+maxSilentSource, dropped.Load())
	require.Equal(t, n+2, a.store.len(), "every session, the silent peer's own included")
	require.Equal(t, "B", a.value("only-on-B", "k"))
	require.Equal(t, "C", a.value("only-on-C", "k"))
	// The silent peer never got a full request; the other may have served
	// one more than once (asked again when slow under load).
	full := func(tn *testNode) bool { return tn.e.Stats().Transfers > 0 }
	delta := func(tn *testNode) bool { return tn.e.Stats().DeltaTransfers > 0 }
	waitFor(t, "the whole state from one peer, a delta from the silent one", func() bool {
		return (full(b) && !full(c) && delta(c)) || (full(c) && !full(b) && delta(b))
	})
}

// Asking a silent peer again also nudges it (Config.Nudge): the network
// is told which peer, once each time a peer is asked again. (A peer slow
// under -race may be asked again too, so the test does not claim that the
// silent peer is the only one nudged.)
func TestTransferNudgesThePeerItAsksAgain(t *testing.T) {
	var mu sync.Mutex // guards nudged
	var nudged []string
	net, a, _, _ := joinSetup(t, 100, true, func(c *Config) {
		c.TransferRetry = 20 * time.Millisecond
		c.Nudge = func(peer string) {
			mu.Lock()
			defer mu.Unlock()
			nudged = append(nudged, peer)
		}
	})
	droppedB := dropTransferRequests(net.link("A", "B"), true, 2)
	droppedC := dropTransferRequests(net.link("A", "C"), true, 2)

	require.NoError(t, a.e.Transfer(ctxTimeout(t, 20*time.Second)))

	silent := "B"
	if droppedC.Load() > 0 {
		silent = "C"
	}
	require.EqualValues(t, 2, droppedB.Load()+droppedC.Load())
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, nudged, "the peer asked again was not nudged")
	require.Len(t, nudged, int(a.e.Stats().TransferRetries), "one nudge each time a peer is asked again")
	require.Contains(t, nudged, silent, "the peer whose requests were lost was not nudged")
}
