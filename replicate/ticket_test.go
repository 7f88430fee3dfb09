package replicate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testclock"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

func TestTicketWait(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]

	tk := a.publish(a.write("s1", "k", "v1"))
	require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), -1))
	// Acks come after apply: both peers hold it now, without waiting.
	require.Equal(t, "v1", b.value("s1", "k"))
	require.Equal(t, "v1", c.value("s1", "k"))

	require.NoError(t, tk.Wait(context.Background(), 0))
	require.ErrorIs(t, tk.Wait(context.Background(), 3), ErrNotEnoughPeers)
	require.NoError(t, a.e.Publish().Wait(context.Background(), 2))

	// Every peer frozen: Wait times out with the context's error.
	net.link("A", "B").set(func(l *memLink) { l.blocked = true })
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	tk = a.publish(a.write("s2", "k", "v"))
	err := tk.Wait(ctxTimeout(t, 30*time.Millisecond), 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "acknowledgements")
}

func TestTicketWaitOneFrozenPeer(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	net.link("A", "C").set(func(l *memLink) { l.blocked = true }) // C is frozen

	for i := range 20 {
		tk := a.publish(a.write(sessionID(i), "k", "v"))
		start := time.Now()
		require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
		require.Less(t, time.Since(start), 2*time.Second)
	}
	require.Equal(t, "v", b.value(sessionID(19), "k"))
	tk := a.publish(a.write("last", "k", "v"))
	require.ErrorIs(t, tk.Wait(ctxTimeout(t, 20*time.Millisecond), 2), context.DeadlineExceeded)
	require.ErrorIs(t, tk.Wait(ctxTimeout(t, 20*time.Millisecond), -1), context.DeadlineExceeded)
}

// frozenTicket starts size nodes, freezes A's link to peer (it gets
// nothing, so acknowledges nothing) and publishes one change on A.
func frozenTicket(t *testing.T, size int, peer string) (a *testNode, tk *Ticket) {
	t.Helper()
	net, nodes := newCluster(t, size, nil)
	a = nodes[0]
	net.link("A", peer).set(func(l *memLink) { l.blocked = true })
	return a, a.publish(a.write("s", "k", "v"))
}

func TestTicketReleasedByPeerDown(t *testing.T) {
	a, tk := frozenTicket(t, 2, "B")
	errc := make(chan error, 2)
	go func() { errc <- tk.Wait(context.Background(), 1) }()
	go func() { errc <- tk.Wait(context.Background(), -1) }()
	a.e.PeerDown("B", false)
	errs := []error{<-errc, <-errc}
	require.Condition(t, func() bool {
		return (errors.Is(errs[0], ErrNotEnoughPeers) && errs[1] == nil) ||
			(errors.Is(errs[1], ErrNotEnoughPeers) && errs[0] == nil)
	}, "got %v", errs)
}

// A change that cannot be sent at all (a value over Limits.MaxValue) is
// dropped, and a Ticket waiting for it fails: the peer's Ack for the Batch
// that should have carried it does not count for it.
func TestTicketFailsForChangeThatCannotBeEncoded(t *testing.T) {
	_, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	huge := model.Record{ID: "huge", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: make([]byte, wire.DefaultLimits.MaxValue+1), Ver: a.clock.Now()}}}}
	tk := a.publish(huge)
	err := tk.Wait(ctxTimeout(t, 5*time.Second), 1)
	require.ErrorIs(t, err, ErrNotEnoughPeers)
	_, ok := b.store.Lookup("huge")
	require.False(t, ok)

	// The peer's later changes are acknowledged as usual.
	require.NoError(t, a.publish(a.write("s", "k", "v")).Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v", b.value("s", "k"))
	require.Positive(t, a.e.Stats().Dropped)
}

// A change the peer's store refuses is acknowledged (the window moves on)
// but never counted as applied: a Ticket waiting for it fails, the peer's
// figures say so, and the changes after it are acknowledged as usual.
func TestTicketFailsForChangeThePeerRefused(t *testing.T) {
	_, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	b.store.mu.Lock()
	b.store.refuse = func(r model.Record) bool { return r.ID == "refused" }
	b.store.mu.Unlock()

	err := a.publish(a.write("refused", "k", "v")).Wait(ctxTimeout(t, 5*time.Second), 1)
	require.ErrorIs(t, err, ErrNotEnoughPeers)
	require.ErrorContains(t, err, "refused")
	_, ok := b.store.Lookup("refused")
	require.False(t, ok)
	st := peerStats(a, "B")
	require.EqualValues(t, 1, st.Refused)
	require.Zero(t, st.Acked)
	require.EqualValues(t, 1, b.e.Stats().Refused)

	// Every peer: the same failure, not a wait for the timeout.
	err = a.publish(a.write("refused", "k", "w")).Wait(ctxTimeout(t, 5*time.Second), -1)
	require.ErrorIs(t, err, ErrNotEnoughPeers)

	require.NoError(t, a.publish(a.write("accepted", "k", "v")).Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v", b.value("accepted", "k"))
	st = peerStats(a, "B")
	require.EqualValues(t, 2, st.Refused)
	require.EqualValues(t, 1, st.Acked)
	require.Zero(t, st.Queued)
}

// Records refused for clock skew count as refused in the Ack too: a
// writer whose clock runs more than MaxClockSkew ahead of its peer's does
// not get its writes confirmed.
func TestTicketFailsForChangeRefusedForClockSkew(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	wall := testclock.New(start)
	_, nodes := newCluster(t, 2, func(c *Config) {
		if c.Self == "B" {
			c.Clock = model.NewClock(2, wall.Now)
			c.MaxClockSkew = time.Minute
		}
	})
	a, b := nodes[0], nodes[1]
	ahead := model.Version{Wall: start.Add(2 * time.Minute).UnixNano(), Node: 1}
	skewed := model.Record{ID: "ahead", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("v"), Ver: ahead}}}}
	err := a.publish(skewed).Wait(ctxTimeout(t, 5*time.Second), 1)
	require.ErrorIs(t, err, ErrNotEnoughPeers)
	require.EqualValues(t, 1, b.e.Stats().Skewed)
	require.EqualValues(t, 1, peerStats(a, "B").Refused)
	_, ok := b.store.Lookup("ahead")
	require.False(t, ok)

	// Within the allowed skew it is applied and acknowledged.
	near := model.Version{Wall: start.Add(30 * time.Second).UnixNano(), Node: 1}
	ok2 := model.Record{ID: "near", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("v"), Ver: near}}}}
	require.NoError(t, a.publish(ok2).Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v", b.value("near", "k"))
}

// An Ack reports how many records were refused, not which: a Batch with
// one refusal fails the Tickets of every change it carried, and only
// those. Failing a write that did replicate is the safe error.
func TestRefusalFailsEveryChangeOfItsBatch(t *testing.T) {
	_, a, b, link := frozenPair(t, func(c *Config) { c.MaxInflight = 1 })
	b.store.mu.Lock()
	b.store.refuse = func(r model.Record) bool { return r.ID == "refused" }
	b.store.mu.Unlock()

	// Stop-and-wait behind a held Batch: the next two changes queue and
	// go together in the next Batch.
	t0 := a.publish(a.write("first", "k", "v"))
	waitFor(t, "the first Batch sent", func() bool { return link.count(wire.MsgBatch) == 1 })
	t1 := a.publish(a.write("refused", "k", "v"))
	t2 := a.publish(a.write("neighbour", "k", "v"))
	link.set(func(l *memLink) { l.blocked = false })

	require.NoError(t, t0.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.ErrorIs(t, t1.Wait(ctxTimeout(t, 5*time.Second), 1), ErrNotEnoughPeers)
	require.ErrorIs(t, t2.Wait(ctxTimeout(t, 5*time.Second), 1), ErrNotEnoughPeers)
	require.Equal(t, 2, link.count(wire.MsgBatch))
	require.Equal(t, "v", b.value("neighbour", "k"))
	st := peerStats(a, "B")
	require.EqualValues(t, 1, st.Refused)
	require.EqualValues(t, 2, st.Acked) // first and neighbour

	require.NoError(t, a.publish(a.write("later", "k", "v")).Wait(ctxTimeout(t, 5*time.Second), 1))
}

// Past maxLostRanges the two closest lost ranges merge: every lost
// generation stays lost, only the gap between those two is added, and
// generations between the others are still not lost.
func TestLostRangesMergeTheClosestTwo(t *testing.T) {
	p := &peer{}
	lose := func(lo, hi uint64) {
		p.window.mu.Lock()
		p.window.loseLocked(lo, hi)
		p.window.mu.Unlock()
	}
	for k := uint64(1); k <= maxLostRanges; k++ {
		lose(100*k, 100*k+9) // [100,109], [200,209], ... [1600,1609]
	}
	lose(112, 115) // out of order, 3 past [100,109]: the closest pair
	require.Len(t, p.window.lost, maxLostRanges)
	for k := uint64(1); k <= maxLostRanges; k++ {
		for _, g := range []uint64{100 * k, 100*k + 9} {
			require.True(t, p.window.lostGen(g), g)
		}
		require.False(t, p.window.lostGen(100*k+50), 100*k+50)
	}
	for g := uint64(110); g <= 115; g++ {
		require.True(t, p.window.lostGen(g), g) // the merged gap, and the new range
	}
	require.False(t, p.window.lostGen(116))
	require.False(t, p.window.lostGen(99))
}

// WaitResponsive stops counting on a peer whose stream was lost; Wait, for
// Sync guarantees, still waits for its acknowledgement.
func TestWaitResponsive(t *testing.T) {
	a, tk := frozenTicket(t, 3, "C")

	errc := make(chan error, 1)
	go func() { errc <- tk.WaitResponsive(context.Background()) }()
	waitFor(t, "B acked", func() bool { return peerStats(a, "B").Acked == 1 })
	select {
	case err := <-errc:
		t.Fatalf("WaitResponsive returned %v before C acked or was lost", err)
	default:
	}
	a.e.StreamLost("C")
	require.NoError(t, <-errc)
	require.ErrorIs(t, tk.Wait(ctxTimeout(t, 20*time.Millisecond), -1), context.DeadlineExceeded)
	require.NoError(t, tk.Wait(context.Background(), 1))
}
