package replicate

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/internal/testrec"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

func TestFetch(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	b.store.Apply([]model.Record{b.write("s", "k1", "from B")})
	c.store.Apply([]model.Record{c.write("s", "k2", "from C")})

	rec, found, err := a.e.Fetch(ctxTimeout(t, 5*time.Second), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(testrec.Key(rec, "k1").Data))
	require.Equal(t, "from C", string(testrec.Key(rec, "k2").Data))
	require.False(t, a.clock.Now().Less(rec.MaxVersion()))

	_, found, err = a.e.Fetch(ctxTimeout(t, 5*time.Second), "missing")
	require.NoError(t, err)
	require.False(t, found)

	// C frozen: the deadline ends the wait with B's answer, and C, silent
	// since, is not waited for again.
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	start := time.Now()
	rec, found, err = a.e.Fetch(ctxTimeout(t, 50*time.Millisecond), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(testrec.Key(rec, "k1").Data))
	require.Less(t, time.Since(start), 2*time.Second)
	require.EqualValues(t, 1, a.e.Stats().FetchTimeouts)
	require.True(t, a.e.Stats().Peers["C"].Unresponsive)
	rec, found, err = a.e.Fetch(context.Background(), "s") // no deadline: C would hold it for ever
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(testrec.Key(rec, "k1").Data))
	require.EqualValues(t, 1, a.e.Stats().FetchTimeouts)
	require.EqualValues(t, 1, a.e.Stats().FetchSkips)

	// Only frozen C: nobody who answers is an error, at once.
	a.e.PeerDown("B", false)
	_, _, err = a.e.Fetch(context.Background(), "s")
	require.ErrorIs(t, err, ErrNotEnoughPeers)

	// C thawed: the fetches it was sent reach it, it answers, and it is
	// waited for again.
	net.link("A", "C").set(func(l *memLink) { l.blocked = false })
	waitFor(t, "C heard again", func() bool { return !a.e.Stats().Peers["C"].Unresponsive })
	rec, found, err = a.e.Fetch(ctxTimeout(t, 5*time.Second), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from C", string(testrec.Key(rec, "k2").Data))

	// C going down releases the Fetch.
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	errc := make(chan error, 1)
	before := net.link("A", "C").count(wire.MsgFetch)
	go func() {
		_, _, err := a.e.Fetch(context.Background(), "s")
		errc <- err
	}()
	waitFor(t, "fetch sent", func() bool { return net.link("A", "C").count(wire.MsgFetch) == before+1 })
	a.e.PeerDown("C", false)
	require.NoError(t, <-errc)

	_, found, err = a.e.Fetch(context.Background(), "s") // no peers
	require.NoError(t, err)
	require.False(t, found)
}

// bHoldsS starts three nodes, B holding session "s" (k = "from B"), and
// sets A's link to C by cut; it returns A and that link.
func bHoldsS(t *testing.T, cut func(*memLink)) (a *testNode, toC *memLink) {
	t.Helper()
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	b.store.Apply([]model.Record{b.write("s", "k", "from B")})
	toC = net.link("A", "C")
	toC.set(cut)
	return a, toC
}

// fetchS fetches session "s" on tn with no deadline (a wait on a peer
// that does not answer would never end) and checks that B's copy came.
func fetchS(t *testing.T, tn *testNode) {
	t.Helper()
	rec, found, err := tn.e.Fetch(context.Background(), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(testrec.Key(rec, "k").Data))
}

// A peer whose stream the network reports lost is not waited for: the
// Fetch waiting for it returns with the others' answers, and later ones
// do not ask it (but for a probe) until it sends a frame again.
func TestFetchDoesNotWaitForALostStream(t *testing.T) {
	a, toC := bHoldsS(t, func(l *memLink) { l.blocked = true }) // C gets nothing: it cannot answer

	done := make(chan struct{})
	go func() {
		defer close(done)
		fetchS(t, a)
	}()
	waitFor(t, "fetch sent to C", func() bool { return toC.count(wire.MsgFetch) == 1 })
	a.e.StreamLost("C")
	<-done
	require.True(t, peerStats(a, "C").Unresponsive)

	fetchS(t, a)
	st := a.e.Stats()
	require.EqualValues(t, 1, st.FetchSkips)
	require.Zero(t, st.FetchTimeouts)
	require.LessOrEqual(t, toC.count(wire.MsgFetch), 2, "C is asked again only as a probe")

	// C receives what it was sent and answers: it is heard again, and
	// waited for.
	toC.set(func(l *memLink) { l.blocked = false })
	waitFor(t, "C heard again", func() bool { return !peerStats(a, "C").Unresponsive })
	fetchS(t, a)
	require.EqualValues(t, 1, a.e.Stats().FetchSkips)
}

// A peer sends fail to is not waited for while they do; once a send to it
// succeeds again it is.
func TestFetchDoesNotWaitForAnUnreachablePeer(t *testing.T) {
	a, toC := bHoldsS(t, func(l *memLink) { l.partitioned = true })

	fetchS(t, a) // released when the send to C fails
	require.True(t, peerStats(a, "C").Unresponsive)
	fetchS(t, a)
	require.EqualValues(t, 1, a.e.Stats().FetchSkips)
	require.Zero(t, a.e.Stats().FetchTimeouts)

	toC.set(func(l *memLink) { l.partitioned = false })
	waitFor(t, "send to C retried", func() bool { return !peerStats(a, "C").Unresponsive })
	fetchS(t, a)
	require.EqualValues(t, 1, a.e.Stats().FetchSkips)
}
