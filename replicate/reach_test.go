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
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	b.store.Apply([]model.Record{b.write("s", "k", "from B")})
	toC := net.link("A", "C")
	toC.set(func(l *memLink) { l.blocked = true }) // C gets nothing: it cannot answer

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
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	b.store.Apply([]model.Record{b.write("s", "k", "from B")})
	toC := net.link("A", "C")
	toC.set(func(l *memLink) { l.partitioned = true })

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

// WaitResponsive stops counting on a peer whose stream was lost; Wait, for
// Sync guarantees, still waits for its acknowledgement.
func TestWaitResponsive(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a := nodes[0]
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	tk := a.publish(a.write("s", "k", "v"))

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
