package replicate

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

func TestTransferTransfersStateInChunks(t *testing.T) {
	net := newMemNet(t)
	opt := func(c *Config) { c.MaxBatchBytes = 64 << 10 }
	a := newNode(t, net, "A", 1, opt)
	const n = 10000
	recs := make([]model.Record, 0, n)
	for i := range n {
		recs = append(recs, a.write(sessionID(i), "k", "some value of a session"))
	}
	a.store.Apply(recs)

	b := newNode(t, net, "B", 2, opt)
	require.NoError(t, b.e.Transfer(ctxTimeout(t, 5*time.Second))) // no peers yet
	connectAll([]*testNode{a, b})
	require.NoError(t, b.e.Transfer(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, n, b.store.len())
	require.Equal(t, a.e.Digest(), b.e.Digest())
	chunks := net.link("A", "B").count(wire.MsgTransferChunk)
	require.Greater(t, chunks, 5, "chunks")
	require.EqualValues(t, 1, a.e.Stats().Transfers)
	require.EqualValues(t, n, b.e.Stats().Applied)
	t.Logf("%d records in %d chunks", n, chunks)
}

func TestTransferWithFrozenAndDownPeers(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	b.store.Apply([]model.Record{b.write("s", "k", "v")})
	net.link("A", "C").set(func(l *memLink) { l.blocked = true }) // C never answers
	// Transfer waits for every peer asked: frozen C, whether asked for the
	// whole state or (after B sent it) for a delta, holds it up until
	// failure detection takes C down.
	require.ErrorIs(t, a.e.Transfer(ctxTimeout(t, 100*time.Millisecond)), context.DeadlineExceeded)
	errc := make(chan error, 1)
	before := net.link("A", "C").count(wire.MsgTransferRequest)
	go func() { errc <- a.e.Transfer(context.Background()) }()
	waitFor(t, "C asked", func() bool { return net.link("A", "C").count(wire.MsgTransferRequest) == before+1 })
	a.e.PeerDown("C", false)
	require.NoError(t, <-errc, "B sent its whole state, C went down")
	require.Equal(t, "v", a.value("s", "k"))
	a.e.PeerUp("C")

	// Only frozen C left: the context ends the wait.
	a.e.PeerDown("B", false)
	require.ErrorIs(t, a.e.Transfer(ctxTimeout(t, 20*time.Millisecond)), context.DeadlineExceeded)

	// C goes down while Transfer waits for it.
	errc = make(chan error, 1)
	before = net.link("A", "C").count(wire.MsgTransferRequest)
	go func() { errc <- a.e.Transfer(context.Background()) }()
	waitFor(t, "sync request sent", func() bool { return net.link("A", "C").count(wire.MsgTransferRequest) == before+1 })
	a.e.PeerDown("C", false)
	require.ErrorIs(t, <-errc, ErrNotEnoughPeers)
}

// TestTransferLargeState transfers the full size: 100,000 sessions of
// 1 KiB (about 100 MB) in chunks. It always runs (about 10 s under -race).
func TestTransferLargeState(t *testing.T) {
	net := newMemNet(t)
	a := newNode(t, net, "A", 1, nil)
	const n = 100000
	val := make([]byte, 1024)
	recs := make([]model.Record, 0, n)
	for i := range n {
		recs = append(recs, model.Record{ID: sessionID(i), Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: val, Ver: a.clock.Now()}}}})
	}
	a.store.Apply(recs)
	recs = nil
	b := newNode(t, net, "B", 2, nil)
	connectAll([]*testNode{a, b})
	require.NoError(t, b.e.Transfer(ctxTimeout(t, time.Minute)))
	require.Equal(t, n, b.store.len())
	chunks := net.link("A", "B").count(wire.MsgTransferChunk)
	require.Greater(t, chunks, 90)
	t.Logf("%d records of 1 KiB in %d chunks", n, chunks)
}

// The network lends each frame only for the HandleFrame call (memNet
// scribbles over it afterwards). A joiner's TransferRequest and first Batch
// may arrive before the receiver's PeerUp for the joiner: they are kept
// (as copies) and answered once it is up.
func TestFramesBeforePeerUpAreAnsweredOnceUp(t *testing.T) {
	net := newMemNet(t)
	a := newNode(t, net, "A", 1, nil)
	a.store.Apply([]model.Record{a.write("old", "k", "on A")})
	b := newNode(t, net, "B", 2, nil)
	b.e.PeerUp("A") // B knows A; A does not know B yet

	ticket := b.publish(b.write("new", "k", "from B"))
	transferred := make(chan error, 1)
	go func() { transferred <- b.e.Transfer(ctxTimeout(t, 10*time.Second)) }()
	waitFor(t, "A handled B's batch and sync request", func() bool {
		return net.link("B", "A").delivered(wire.MsgBatch) == 1 && net.link("B", "A").delivered(wire.MsgTransferRequest) == 1
	})
	require.Equal(t, "from B", a.value("new", "k"), "a batch is applied at once")
	require.Zero(t, net.link("A", "B").count(wire.MsgAck)+net.link("A", "B").count(wire.MsgTransferChunk), "no answer before PeerUp")

	a.e.PeerUp("B")
	require.NoError(t, <-transferred)
	require.Equal(t, "on A", b.value("old", "k"))
	require.NoError(t, ticket.Wait(ctxTimeout(t, 5*time.Second), 1), "the parked batch is acknowledged")
	require.Zero(t, a.e.Stats().Rejected, "the parked frames were intact")
}
