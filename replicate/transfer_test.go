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

// joinSetup returns node A, empty, up to B and C, which both hold n
// sessions (the same versions) and, if own is set, each one session the
// other lacks ("only-on-B", "only-on-C"): written where no change reached
// the other, so whichever peer A picks as its source, the other holds a
// record the source lacks.
func joinSetup(t *testing.T, n int, own bool, opt func(*Config)) (net *memNet, a, b, c *testNode) {
	t.Helper()
	net, nodes := newCluster(t, 3, opt)
	a, b, c = nodes[0], nodes[1], nodes[2]
	shared := make([]model.Record, 0, n)
	for i := range n {
		shared = append(shared, b.write(sessionID(i), "k", "shared"))
	}
	b.store.Apply(shared)
	c.store.Apply(shared)
	if own {
		b.store.Apply([]model.Record{b.write("only-on-B", "k", "B")})
		c.store.Apply([]model.Record{c.write("only-on-C", "k", "C")})
	}
	return net, a, b, c
}

// sourceOf returns the peer that served A the whole state, and the other,
// once both have served what they were asked (full and delta transfers
// together number want).
func sourceOf(t *testing.T, b, c *testNode, want uint64) (source, other *testNode) {
	t.Helper()
	served := func(tn *testNode) uint64 { s := tn.e.Stats(); return s.Transfers + s.DeltaTransfers }
	waitFor(t, "transfers served", func() bool { return served(b)+served(c) == want })
	bs, cs := b.e.Stats(), c.e.Stats()
	require.EqualValues(t, 1, bs.Transfers+cs.Transfers, "exactly one peer sends the whole state")
	if bs.Transfers == 1 {
		return b, c
	}
	return c, b
}

func TestTransferTakesOneFullCopyAndOnlyTheDifferencesFromOtherPeers(t *testing.T) {
	const n = 2000
	net, a, b, c := joinSetup(t, n, true, nil)

	require.NoError(t, a.e.Transfer(ctxTimeout(t, 10*time.Second)))

	require.Equal(t, n+2, a.store.len())
	require.Equal(t, "B", a.value("only-on-B", "k"))
	require.Equal(t, "C", a.value("only-on-C", "k"), "a record only the non-source peer held")
	source, other := sourceOf(t, b, c, 2)
	require.EqualValues(t, 0, source.e.Stats().DeltaTransfers)
	require.EqualValues(t, 1, other.e.Stats().DeltaTransfers)
	require.Equal(t, 1, net.link("A", source.name).count(wire.MsgTransferRequest))
	require.Equal(t, 1, net.link("A", other.name).count(wire.MsgTransferRequest))

	// The other peer sent only its records in the buckets that differ:
	// those of the two sessions each peer alone held.
	differ := map[int]bool{bucketOf("only-on-B"): true, bucketOf("only-on-C"): true}
	delta := 0
	for id := range other.store.snapshot() {
		if differ[bucketOf(id)] {
			delta++
		}
	}
	require.Less(t, delta, n/20, "a delta, not a copy")
	require.EqualValues(t, n+1+delta, a.e.Stats().Applied, "one full copy plus the delta")
	require.Equal(t, 1, net.link(other.name, "A").count(wire.MsgTransferChunk))
}

func TestTransferDeltaFromAPeerThatDiffersInNothingIsOneEmptyChunk(t *testing.T) {
	const n = 500
	net, a, b, c := joinSetup(t, n, false, nil)

	require.NoError(t, a.e.Transfer(ctxTimeout(t, 10*time.Second)))

	require.Equal(t, n, a.store.len())
	_, other := sourceOf(t, b, c, 2)
	require.EqualValues(t, 1, other.e.Stats().DeltaTransfers)
	require.Equal(t, 1, net.link(other.name, "A").count(wire.MsgTransferChunk), "one chunk")
	require.EqualValues(t, n, a.e.Stats().Applied, "the source's records only: the delta chunk was empty")
}

func TestTransferSourceDownMidTransferAnotherPeerSendsTheWholeState(t *testing.T) {
	const n = 1000
	net, a, b, c := joinSetup(t, n, false, func(c *Config) { c.MaxBatchBytes = 4 << 10 })
	// Hold back what B and C send A, to cut the source's transfer short.
	for _, p := range []string{"B", "C"} {
		net.link(p, "A").set(func(l *memLink) { l.blocked = true })
	}
	errc := make(chan error, 1)
	go func() { errc <- a.e.Transfer(context.Background()) }()
	source, other := sourceOf(t, b, c, 1) // every chunk queued on the blocked link
	require.Zero(t, net.link("A", other.name).count(wire.MsgTransferRequest), "no one else asked before the source finished")

	// A applies the source's first two chunks; the rest, the last one with
	// them, are lost as the source goes down.
	src := net.link(source.name, "A")
	require.Greater(t, src.count(wire.MsgTransferChunk), 3)
	src.set(func(l *memLink) { l.q, l.dropping, l.blocked = l.q[:2], true, false })
	waitFor(t, "two chunks applied", func() bool { return src.delivered(wire.MsgTransferChunk) == 2 })
	partial := a.store.len()
	require.Greater(t, partial, 0)
	require.Less(t, partial, n)
	select {
	case err := <-errc:
		t.Fatalf("Transfer returned %v with part of the state", err)
	default:
	}

	a.e.PeerDown(source.name, false)
	net.link(other.name, "A").set(func(l *memLink) { l.blocked = false })
	require.NoError(t, <-errc)
	require.Equal(t, n, a.store.len())
	require.Equal(t, other.e.Digest(), a.e.Digest())
	waitFor(t, "the other peer served the whole state", func() bool { return other.e.Stats().Transfers == 1 })
	require.Zero(t, other.e.Stats().DeltaTransfers)
}

// A peer that serves a delta answers the joining node's digest with its
// records in the buckets that differ, and only those, whatever the
// joining node holds there.
func TestServeDeltaSendsTheDifferingBuckets(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	var recs []model.Record
	for i := range 300 {
		recs = append(recs, b.write(sessionID(i), "k", "v"))
	}
	b.store.Apply(recs)
	a.store.Apply(recs)
	// A lacks one session, holds an older version of another and one B
	// lacks: three buckets (at most) differ.
	lacked, stale := sessionID(7), sessionID(8)
	a.store.mu.Lock()
	delete(a.store.recs, lacked)
	a.store.mu.Unlock()
	b.store.Apply([]model.Record{b.write(stale, "k", "newer")})
	a.store.Apply([]model.Record{a.write("only-on-A", "k", "A")})
	differ := map[int]bool{bucketOf(lacked): true, bucketOf(stale): true, bucketOf("only-on-A"): true}
	want := 0
	for id := range b.store.snapshot() {
		if differ[bucketOf(id)] {
			want++
		}
	}

	// A delta request for this Req, as Transfer sends it; nobody waits for it.
	f, err := wire.Encode(wire.MsgTransferRequest, &wire.TransferRequest{Req: 42, Digest: a.e.Digest()})
	require.NoError(t, err)
	b.e.HandleFrame("A", f)
	waitFor(t, "delta served", func() bool {
		return b.e.Stats().DeltaTransfers == 1 && net.link("B", "A").delivered(wire.MsgTransferChunk) == 1
	})
	require.EqualValues(t, want, a.e.Stats().Applied, "B's records in the differing buckets, no others")
	require.Equal(t, "v", a.value(lacked, "k"))
	require.Equal(t, "newer", a.value(stale, "k"))
	require.Zero(t, b.e.Stats().Transfers, "a delta is not a full transfer")
}

func TestTransferRequestWithADigestOfTheWrongLengthIsRejected(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	b.store.Apply([]model.Record{b.write("s", "k", "v")})
	for _, n := range []int{1, wire.DigestBuckets - 1, wire.DigestBuckets + 1} {
		b.e.HandleFrame("A", rawFrame(t, wire.FormatVersion, wire.MsgTransferRequest, &wire.TransferRequest{Req: 1, Digest: make([]uint64, n)}))
	}
	require.EqualValues(t, 3, b.e.Stats().Rejected)

	// None was answered: the chunk answering A's Transfer is the only one.
	require.NoError(t, a.e.Transfer(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, "v", a.value("s", "k"))
	require.Equal(t, 1, net.link("B", "A").count(wire.MsgTransferChunk))
	require.Zero(t, b.e.Stats().DeltaTransfers)
}
