package replicate

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

func TestAntiEntropyRepairsAfterPartition(t *testing.T) {
	net, nodes := newCluster(t, 3, func(c *Config) { c.AntiEntropyInterval = 5 * time.Millisecond })
	a, b, c := nodes[0], nodes[1], nodes[2]
	for i := range 50 {
		a.publish(a.write(sessionID(i), "k", "v"))
	}
	waitFor(t, "initial replication", func() bool { return b.store.len() == 50 && c.store.len() == 50 })

	// Partition A from B and C; the membership layer reports it down.
	for _, other := range []*testNode{b, c} {
		net.both("A", other.name, func(l *memLink) { l.partitioned = true })
		a.e.PeerDown(other.name, false)
		other.e.PeerDown("A", false)
	}
	for i := range 20 {
		a.publish(a.write(sessionID(i), "k", "from A"))
		b.publish(b.write(sessionID(100+i), "k", "from B"))
	}
	c.publish(c.write(sessionID(30), "k", "from C"))
	// A write no queue ever carries: only anti-entropy can move it.
	b.store.Apply([]model.Record{b.write(sessionID(40), "k", "B only")})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())

	for _, other := range []*testNode{b, c} {
		net.both("A", other.name, func(l *memLink) { l.partitioned = false })
	}
	connectAll(nodes)
	waitFor(t, "digests equal", func() bool {
		da := a.e.Digest()
		return equalDigest(da, b.e.Digest()) && equalDigest(da, c.e.Digest())
	})
	require.Equal(t, a.store.snapshot(), b.store.snapshot())
	require.Equal(t, a.store.snapshot(), c.store.snapshot())
	require.Equal(t, "from A", c.value(sessionID(5), "k"))
	require.Equal(t, "from B", a.value(sessionID(105), "k"))
	require.Equal(t, "B only", a.value(sessionID(40), "k"))
	require.Equal(t, "from C", a.value(sessionID(30), "k"))
	st := []Stats{a.e.Stats(), b.e.Stats(), c.e.Stats()}
	require.Positive(t, st[0].Repairs+st[1].Repairs+st[2].Repairs)
}

func equalDigest(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Digests are compared across processes and releases: a record's hash and
// bucket are fixed functions of its ID and versions, pinned here.
func TestDigestHashesAreFixed(t *testing.T) {
	r := model.Record{
		ID:           "s3cr3t-session-id-0123456789abcdefghijklmno",
		PrincipalVer: model.Version{Wall: 1700000000000000000, Seq: 3, Node: 7},
		Keys: []model.KeyValue{
			{Key: "cart", Value: model.Value{Data: []byte{0x01}, Ver: model.Version{Wall: 1700000000000000001, Seq: 1, Node: 7}}},
			{Key: "gone", Value: model.Value{Ver: model.Version{Wall: 1700000000000000002, Node: 9}, Deleted: true}},
		},
		Access: 123, // not hashed
	}
	dead := model.Record{ID: "another", Dead: model.Version{Wall: 5, Seq: 6, Node: 7}}

	require.Equal(t, uint64(0x4ac556663a7857c6), recordHash(&r))
	require.Equal(t, 167, bucketOf(r.ID))
	require.Equal(t, uint64(0x6ca6fbe295c60cea), recordHash(&dead))
	require.Equal(t, 166, bucketOf(dead.ID))
}

func TestDigest(t *testing.T) {
	net := newMemNet(t)
	a := newNode(t, net, "A", 1, nil)
	b := newNode(t, net, "B", 2, nil)
	require.Len(t, a.e.Digest(), wire.DigestBuckets)
	require.Equal(t, make([]uint64, wire.DigestBuckets), a.e.Digest())

	r := a.write("s", "k1", "v1", "k2", "v2")
	a.store.Apply([]model.Record{r})
	b.store.Apply([]model.Record{r})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// Access is excluded.
	b.store.Apply([]model.Record{{ID: "s", Access: 12345}})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// A missing older key shows even though the newest version is equal.
	old := model.Record{ID: "t", Keys: []model.KeyValue{{Key: "old", Value: model.Value{Data: []byte("x"), Ver: a.clock.Now()}}}}
	newer := model.Record{ID: "t", Keys: []model.KeyValue{{Key: "new", Value: model.Value{Data: []byte("y"), Ver: a.clock.Now()}}}}
	a.store.Apply([]model.Record{old, newer})
	b.store.Apply([]model.Record{newer})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())
	b.store.Apply([]model.Record{old})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// Tombstones count.
	a.store.Apply([]model.Record{{ID: "s", Dead: a.clock.Now()}})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())

	// Fixed across processes: the hash of a known record never changes.
	known := model.Record{ID: "id", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Ver: model.Version{Wall: 1, Seq: 2, Node: 3}}}}}
	require.Equal(t, uint64(0xe036b66f0f7b63e7), recordHash(&known), "%#x", recordHash(&known))
	require.Equal(t, 54, bucketOf("id"))
}

// diverge gives a and b (which both hold sessions 0..n-1) differ
// differences: a changes differ/2 shared sessions and b creates differ/2
// sessions a lacks, none of which any queue carries.
func diverge(t *testing.T, a, b *testNode, n, differ int) {
	t.Helper()
	shared := make([]model.Record, 0, n)
	for i := range n {
		shared = append(shared, a.write(sessionID(i), "k", "v", "p", "q"))
	}
	a.store.Apply(shared)
	b.store.Apply(shared)
	require.Equal(t, a.e.Digest(), b.e.Digest())
	for i := range differ / 2 {
		a.store.Apply([]model.Record{a.write(sessionID(i*(n/differ)), "k", "from A")})
		b.store.Apply([]model.Record{b.write(sessionID(n+i), "k", "from B")})
	}
	require.NotEqual(t, a.e.Digest(), b.e.Digest())
}

func waitConverged(t *testing.T, a, b *testNode) {
	t.Helper()
	waitFor(t, "digests equal", func() bool { return equalDigest(a.e.Digest(), b.e.Digest()) })
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	require.NoError(t, b.e.Flush(ctxTimeout(t, 5*time.Second)))
	require.Equal(t, a.store.snapshot(), b.store.snapshot())
}

func TestAntiEntropyRepairsOnlyDifferences(t *testing.T) {
	const n, differ = 2000, 50
	net, nodes := newCluster(t, 2, nil) // rounds run by hand
	a, b := nodes[0], nodes[1]
	diverge(t, a, b, n, differ)

	// One round trip converges: A's digest, B's summary, A's reply.
	require.True(t, a.e.antiEntropyRound(false))
	waitConverged(t, a, b)
	require.Equal(t, "from A", b.value(sessionID(0), "k"))
	require.Equal(t, "from B", a.value(sessionID(n), "k"))

	repairs := a.e.Stats().Repairs + b.e.Stats().Repairs
	t.Logf("%d differences among %d sessions: %d repairs, %d+%d summaries", differ, n, repairs,
		net.link("B", "A").count(wire.MsgSummary), net.link("A", "B").count(wire.MsgSummary))
	// A changed record is pushed both ways (one side's version is older:
	// the merge ignores it); a new one only by the side that has it.
	require.GreaterOrEqual(t, repairs, uint64(differ))
	require.LessOrEqual(t, repairs, uint64(3*differ))
	require.Equal(t, 1, net.link("A", "B").count(wire.MsgDigest))
	require.Equal(t, 1, net.link("B", "A").count(wire.MsgSummary))
	require.Equal(t, 1, net.link("A", "B").count(wire.MsgSummary))
	require.Zero(t, net.link("A", "B").count(wire.MsgBuckets)+net.link("B", "A").count(wire.MsgBuckets))

	// Equal digests: a round costs one Digest and nothing else.
	require.True(t, b.e.antiEntropyRound(false))
	waitFor(t, "A handled the digest", func() bool {
		return net.link("B", "A").delivered(wire.MsgDigest) == 1 && aeIdle(a, "B")
	})
	require.Equal(t, 1, net.link("A", "B").count(wire.MsgSummary))
	require.Equal(t, repairs, a.e.Stats().Repairs+b.e.Stats().Repairs)
}

// TestAntiEntropySplitsSummaries makes buckets larger than a Summary frame
// holds, so that both the summary and its reply split buckets by ID range.
func TestAntiEntropySplitsSummaries(t *testing.T) {
	const n, differ = 3000, 60
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	a.e.summaryMax, b.e.summaryMax = 5, 5 // ~12 sessions per bucket
	diverge(t, a, b, n, differ)
	require.True(t, b.e.antiEntropyRound(false))
	waitConverged(t, a, b)
	repairs := a.e.Stats().Repairs + b.e.Stats().Repairs
	ab, ba := net.link("A", "B").count(wire.MsgSummary), net.link("B", "A").count(wire.MsgSummary)
	t.Logf("%d repairs, %d+%d summaries", repairs, ab, ba)
	require.LessOrEqual(t, repairs, uint64(3*differ))
	require.Greater(t, ab, differ/2)
	require.Greater(t, ba, differ/2)
}

func TestAntiEntropyQuietWhileReplicating(t *testing.T) {
	const n = 5000
	net, a, b, link := frozenPair(t, nil)
	for i := range n {
		a.publish(a.write(sessionID(i), "k", "v"))
	}
	waitFor(t, "a batch in flight", func() bool { return peerStats(a, "B").Batches >= 1 })

	// The digests differ by what is in flight: A skips its round, and
	// declines B's digest.
	require.False(t, a.e.antiEntropyRound(false))
	require.True(t, b.e.antiEntropyRound(false))
	waitFor(t, "A handled the digest", func() bool {
		return net.link("B", "A").delivered(wire.MsgDigest) == 1 && aeIdle(a, "B")
	})
	require.Zero(t, link.count(wire.MsgSummary))
	require.Zero(t, a.e.Stats().Repairs+b.e.Stats().Repairs)

	// Load that never ends does not starve anti-entropy: a forced round
	// goes ahead, and so does the digest after maxAESkips declined in a
	// row.
	require.True(t, a.e.antiEntropyRound(true))
	waitFor(t, "forced digest sent", func() bool { return link.count(wire.MsgDigest) == 1 })
	for i := 2; i <= maxAESkips; i++ {
		require.True(t, b.e.antiEntropyRound(false))
		waitFor(t, "A handled the digest", func() bool {
			return net.link("B", "A").delivered(wire.MsgDigest) == i && aeIdle(a, "B")
		})
	}
	require.Zero(t, link.count(wire.MsgSummary))
	require.True(t, b.e.antiEntropyRound(false))
	waitFor(t, "A answered a digest", func() bool { return link.count(wire.MsgSummary) > 0 })

	link.set(func(l *memLink) { l.blocked = false })
	waitConverged(t, a, b)
	require.Equal(t, n, b.store.len())
}

// aeIdle reports whether tn's anti-entropy worker for peer has nothing
// left to do.
func aeIdle(tn *testNode, peer string) bool {
	tn.e.mu.RLock()
	p := tn.e.peers[peer]
	tn.e.mu.RUnlock()
	p.ae.mu.Lock()
	defer p.ae.mu.Unlock()
	return !p.ae.running && len(p.ae.pending) == 0
}

func TestAntiEntropyHostileSummary(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	a.store.Apply([]model.Record{a.write("s", "k", "v")})
	bad := [][]byte{
		rawFrame(t, wire.FormatVersion, wire.MsgSummary, map[string]any{"b": []uint32{uint32(bucketOf("s"))}, "i": []string{"s", "t"}, "h": []uint64{1}}),
		rawFrame(t, wire.FormatVersion, wire.MsgSummary, map[string]any{"b": []uint32{wire.DigestBuckets + 5}}),
		rawFrame(t, wire.FormatVersion, wire.MsgSummary, map[string]any{"b": []uint32{1}, "i": []string{""}, "h": []uint64{1}}),
		rawFrame(t, wire.FormatVersion, wire.MsgSummary, &wire.Summary{Buckets: []uint32{1}, IDs: make([]string, wire.DefaultLimits.MaxRecords+1), Hashes: make([]uint64, wire.DefaultLimits.MaxRecords+1)}),
	}
	for _, f := range bad {
		a.e.HandleFrame("B", f)
	}
	require.EqualValues(t, len(bad), a.e.Stats().Rejected)
	require.True(t, aeIdle(a, "B"))
	require.Zero(t, a.e.Stats().Repairs)

	// A valid Summary that lists IDs in other buckets, or none at all,
	// costs only the pushes of what really differs.
	f, err := wire.Encode(wire.MsgSummary, &wire.Summary{Buckets: []uint32{uint32(bucketOf("s"))}, IDs: []string{"elsewhere"}, Hashes: []uint64{7}, Reply: true})
	require.NoError(t, err)
	a.e.HandleFrame("B", f)
	waitFor(t, "B has s", func() bool { return b.value("s", "k") == "v" })
	require.EqualValues(t, 1, a.e.Stats().Repairs)
	require.Zero(t, net.link("A", "B").count(wire.MsgSummary), "a reply is not answered")
}

// TestAntiEntropyWaitsForSync checks that a node whose state transfer runs
// neither starts rounds nor answers digests: the transfer is about to
// deliver what they would repair, a second time.
func TestAntiEntropyWaitsForSync(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	b.store.Apply([]model.Record{b.write("s", "k", "v")})
	net.link("B", "A").set(func(l *memLink) { l.blocked = true }) // B's chunks wait
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.e.Transfer(ctx) }()
	waitFor(t, "sync running", a.e.transferring)

	require.False(t, a.e.antiEntropyRound(false))
	f, err := wire.Encode(wire.MsgDigest, &wire.Digest{Buckets: b.e.Digest()})
	require.NoError(t, err)
	a.e.HandleFrame("B", f)
	waitFor(t, "A handled the digest", func() bool { return aeIdle(a, "B") })
	require.Zero(t, net.link("A", "B").count(wire.MsgSummary))
	require.True(t, a.e.antiEntropyRound(true), "a forced round goes ahead")

	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	require.False(t, a.e.transferring())
	net.link("B", "A").set(func(l *memLink) { l.blocked = false })
}

// When a peer comes back (a partition heals, or it restarts), the two
// nodes compare digests at once, so what each missed meanwhile is repaired
// in a round trip, not at the next random anti-entropy round (turned off
// here: without the exchange on PeerUp they would never agree).
func TestPeerComingBackIsHealedAtOnce(t *testing.T) {
	net, nodes := newCluster(t, 2, func(c *Config) { c.AntiEntropyInterval = -1 })
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		require.NoError(t, n.e.Transfer(ctxTimeout(t, 5*time.Second)))
	}
	a.store.Apply([]model.Record{a.write("before", "k", "v")})
	b.store.Apply([]model.Record{b.write("before", "k", "v")})

	// A partition: each declares the other down, and both take writes.
	net.both("A", "B", func(l *memLink) { l.partitioned = true })
	a.e.PeerDown("B", false)
	b.e.PeerDown("A", false)
	for i := range 20 {
		a.store.Apply([]model.Record{a.write(sessionID(i), "from", "A")})
		b.store.Apply([]model.Record{b.write(sessionID(100+i), "from", "B")})
	}
	require.NotEqual(t, a.e.Digest(), b.e.Digest())

	net.both("A", "B", func(l *memLink) { l.partitioned = false })
	a.e.PeerUp("B")
	b.e.PeerUp("A")
	waitFor(t, "the two sides agree", func() bool { return slices.Equal(a.e.Digest(), b.e.Digest()) })
	assert.Equal(t, "A", b.value(sessionID(0), "from"))
	assert.Equal(t, "B", a.value(sessionID(100), "from"))
	assert.Positive(t, a.e.Stats().Heals+b.e.Stats().Heals)
}

// A heal's digest that finds changes in flight to its sender is answered
// once they have landed, not dropped. Here only B saw A go and come back
// (memberlist's verdicts need not agree: after a partition, one side can
// declare the other dead a moment after the heal), so B's digest is the
// only one sent, and A, with a batch to B still in flight, declines it.
// Random rounds are off: without the retry the two would never agree.
func TestHealDigestDeclinedWhileChangesInFlightIsAnsweredOnceTheyLand(t *testing.T) {
	net, a, b, toB := healWithABatchInFlight(t, defaultAERetryDelay)
	waitFor(t, "A declined B's digest", func() bool {
		return net.link("B", "A").delivered(wire.MsgDigest) == 1 && aeIdle(a, "B")
	})
	require.Zero(t, toB.count(wire.MsgSummary), "declined while the batch is in flight")
	landAndAgree(t, a, b, toB)
}

// A heal's Digest declined for the whole retry window (the batch in flight
// is stuck: a stream that died silently, a peer slow to ack) is answered
// anyway rather than dropped, so the heal does not wait for the next random
// round (the chaos harness saw a heal agree only after 27 s): what is in
// flight is merely pushed twice, which merging ignores.
func TestHealDigestDeclinedForTheWholeRetryWindowIsAnsweredAnyway(t *testing.T) {
	_, a, b, toB := healWithABatchInFlight(t, time.Millisecond) // the window: aeRetries looks, 1 ms apart
	waitFor(t, "A answered B's digest while its batch is still in flight", func() bool {
		return toB.count(wire.MsgSummary) >= 1
	})
	require.Zero(t, peerStats(a, "B").Acked, "the batch is still in flight")
	landAndAgree(t, a, b, toB)
}

// healWithABatchInFlight starts A and B, has B see A go and come back
// with 20 sessions written meanwhile, while A's batch of one change to B
// is held on the blocked link toB; A looks at a declined Digest again
// every retryDelay.
func healWithABatchInFlight(t *testing.T, retryDelay time.Duration) (net *memNet, a, b *testNode, toB *memLink) {
	t.Helper()
	net, nodes := newCluster(t, 2, func(c *Config) { c.AntiEntropyInterval = -1 })
	a, b = nodes[0], nodes[1]
	for _, n := range nodes {
		require.NoError(t, n.e.Transfer(ctxTimeout(t, 5*time.Second)))
	}
	a.e.aeRetryDelay = retryDelay
	b.e.PeerDown("A", false)
	for i := range 20 {
		b.store.Apply([]model.Record{b.write(sessionID(i), "from", "B")}) // written while A was away
	}
	toB = net.link("A", "B")
	toB.set(func(l *memLink) { l.blocked = true })
	a.publish(a.write("in-flight", "from", "A"))
	waitFor(t, "A's batch in flight", func() bool { return peerStats(a, "B").Batches >= 1 })
	b.e.PeerUp("A")
	return net, a, b, toB
}

// landAndAgree lets A's batch land and waits until A and B agree, each
// holding what the other wrote.
func landAndAgree(t *testing.T, a, b *testNode, toB *memLink) {
	t.Helper()
	toB.set(func(l *memLink) { l.blocked = false })
	waitFor(t, "the two sides agree", func() bool { return slices.Equal(a.e.Digest(), b.e.Digest()) })
	assert.Equal(t, "B", a.value(sessionID(0), "from"))
	assert.Equal(t, "A", b.value("in-flight", "from"))
}

// A node that has not finished its first state transfer does not heal
// with a peer that comes up: the transfer brings it everything, and a
// digest exchange would only send it all again.
func TestNodeStillJoiningDoesNotHeal(t *testing.T) {
	_, nodes := newCluster(t, 2, func(c *Config) { c.AntiEntropyInterval = -1 })
	a := nodes[0]
	a.e.PeerDown("B", false)
	a.e.PeerUp("B")
	assert.Zero(t, a.e.Stats().Heals)
}
