package replicate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewValidatesConfig(t *testing.T) {
	net := newMemNet(t)
	good := Config{Self: "A", Network: net.endpoint("A"), Store: newMemStore(), Clock: NewClock(1, nil)}
	for name, mut := range map[string]func(*Config){
		"self":      func(c *Config) { c.Self = "" },
		"network":   func(c *Config) { c.Network = nil },
		"store":     func(c *Config) { c.Store = nil },
		"clock":     func(c *Config) { c.Clock = nil },
		"negative":  func(c *Config) { c.QueueLimit = -1 },
		"big batch": func(c *Config) { c.MaxBatchBytes = 1 << 30 },
	} {
		cfg := good
		mut(&cfg)
		_, err := New(cfg)
		require.Error(t, err, name)
	}
	e, err := New(good)
	require.NoError(t, err)
	e.Close()
}

func TestPublishReachesEveryPeer(t *testing.T) {
	_, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.publish(a.write("s1", "k", "v1"))
	waitFor(t, "B and C have s1", func() bool {
		return b.value("s1", "k") == "v1" && c.value("s1", "k") == "v1"
	})
	// And back: B's change reaches A and C.
	b.publish(b.write("s1", "k", "v2"))
	waitFor(t, "A and C have v2", func() bool {
		return a.value("s1", "k") == "v2" && c.value("s1", "k") == "v2"
	})
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	st := a.e.Stats()
	require.EqualValues(t, 1, st.Peers["B"].Acked)
	require.EqualValues(t, 1, st.Peers["C"].Acked)
	require.EqualValues(t, 1, st.Applied) // B's change
	require.False(t, st.Peers["B"].LastAck.IsZero())
	// The clock observed B's write.
	bs, _ := b.store.Lookup("s1")
	require.False(t, a.clock.Now().Less(bs.MaxVersion()))
}

func TestCoalescing(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	link := net.link("A", "B")
	link.set(func(l *memLink) { l.blocked = true })

	a.publish(a.write("s", "k", "v0"))
	waitFor(t, "first batch in flight", func() bool { return peerStats(a, "B").Batches == 1 })
	for i := 1; i <= 100; i++ {
		a.publish(a.write("s", "k", "v"+itoa(i), "k"+itoa(i%3), "x"))
	}
	require.Equal(t, 1, peerStats(a, "B").Queued)

	link.set(func(l *memLink) { l.blocked = false })
	waitFor(t, "B has the latest value", func() bool { return b.value("s", "k") == "v100" })
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	st := peerStats(a, "B")
	require.EqualValues(t, 2, st.Batches)
	require.EqualValues(t, 2, st.Sent)
	rec, _ := b.store.Lookup("s")
	require.Len(t, rec.Keys, 4) // k, k0, k1, k2
}

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

func TestTicketReleasedByPeerDown(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a := nodes[0]
	net.link("A", "B").set(func(l *memLink) { l.blocked = true })
	tk := a.publish(a.write("s", "k", "v"))
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

func TestResendAfterDroppedFrame(t *testing.T) {
	net, nodes := newCluster(t, 2, func(c *Config) { c.AckTimeout = 10 * time.Millisecond })
	a, b := nodes[0], nodes[1]
	net.link("A", "B").set(func(l *memLink) { l.dropNext = 1 })
	tk := a.publish(a.write("s", "k", "v"))
	require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v", b.value("s", "k"))
	st := peerStats(a, "B")
	require.GreaterOrEqual(t, st.Retries, uint64(1))
	require.EqualValues(t, 1, st.Batches)

	// A lost ack is resent too: the duplicate batch applies harmlessly.
	net.link("B", "A").set(func(l *memLink) { l.dropNext = 1 })
	tk = a.publish(a.write("s", "k", "w"))
	require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "w", b.value("s", "k"))
}

func TestSendErrorsRetried(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	link := net.link("A", "B")
	link.set(func(l *memLink) { l.partitioned = true })
	tk := a.publish(a.write("s", "k", "v"))
	waitFor(t, "a failed send", func() bool { return peerStats(a, "B").Failed >= 2 })
	link.set(func(l *memLink) { l.partitioned = false })
	require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v", b.value("s", "k"))
}

func TestQueueLimitDrops(t *testing.T) {
	net, nodes := newCluster(t, 2, func(c *Config) { c.QueueLimit = 10 })
	a, b := nodes[0], nodes[1]
	link := net.link("A", "B")
	link.set(func(l *memLink) { l.blocked = true })
	a.publish(a.write("first", "k", "v"))
	waitFor(t, "first batch in flight", func() bool { return peerStats(a, "B").Batches == 1 })

	var tickets []*Ticket
	for i := range 20 {
		tickets = append(tickets, a.publish(a.write(sessionID(i), "k", "v")))
	}
	st := peerStats(a, "B")
	require.Equal(t, 10, st.Queued)
	require.EqualValues(t, 10, st.Dropped)
	require.EqualValues(t, 10, a.e.Stats().Dropped)
	// A change to a queued session still coalesces.
	a.publish(a.write(sessionID(0), "k", "w"))
	require.EqualValues(t, 10, peerStats(a, "B").Dropped)

	// A dropped change fails its ticket fast.
	require.ErrorIs(t, tickets[15].Wait(context.Background(), 1), ErrNotEnoughPeers)
	require.ErrorIs(t, tickets[15].Wait(context.Background(), -1), ErrNotEnoughPeers)

	link.set(func(l *memLink) { l.blocked = false })
	require.NoError(t, tickets[0].Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "w", b.value(sessionID(0), "k"))
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	require.Equal(t, 11, b.store.len())
}

func TestPeerDownCountsDropped(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a := nodes[0]
	net.link("A", "B").set(func(l *memLink) { l.blocked = true })
	a.publish(a.write("first", "k", "v"))
	waitFor(t, "first batch in flight", func() bool { return peerStats(a, "B").Batches == 1 })
	for i := range 5 {
		a.publish(a.write(sessionID(i), "k", "v"))
	}
	a.e.PeerDown("B", true)
	st := a.e.Stats()
	require.EqualValues(t, 5, st.Dropped)
	require.NotContains(t, st.Peers, "B")
	// Publishing with no peers is fine, and Flush has nothing to wait for.
	require.ErrorIs(t, a.publish(a.write("x", "k", "v")).Wait(context.Background(), 1), ErrNotEnoughPeers)
	require.NoError(t, a.e.Flush(ctxTimeout(t, time.Second)))
	// The peer can come back.
	a.e.PeerUp("B")
	require.Contains(t, a.e.Stats().Peers, "B")
}

func TestFlush(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	for i := range 100 {
		a.publish(a.write(sessionID(i), "k", "v"))
	}
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	require.Equal(t, 100, b.store.len())
	require.Equal(t, 100, c.store.len())

	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	a.publish(a.write("late", "k", "v"))
	require.ErrorIs(t, a.e.Flush(ctxTimeout(t, 20*time.Millisecond)), context.DeadlineExceeded)
	a.e.PeerDown("C", false)
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
}

func TestSyncTransfersStateInChunks(t *testing.T) {
	net := newMemNet(t)
	opt := func(c *Config) { c.MaxBatchBytes = 64 << 10 }
	a := newNode(t, net, "A", 1, opt)
	const n = 10000
	recs := make([]Record, 0, n)
	for i := range n {
		recs = append(recs, a.write(sessionID(i), "k", "some value of a session"))
	}
	a.store.Apply(recs)

	b := newNode(t, net, "B", 2, opt)
	require.NoError(t, b.e.Sync(ctxTimeout(t, 5*time.Second))) // no peers yet
	connectAll([]*testNode{a, b})
	require.NoError(t, b.e.Sync(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, n, b.store.len())
	require.Equal(t, a.e.Digest(), b.e.Digest())
	chunks := net.link("A", "B").count(MsgSyncChunk)
	require.Greater(t, chunks, 5, "chunks")
	require.EqualValues(t, 1, a.e.Stats().Transfers)
	require.EqualValues(t, n, b.e.Stats().Applied)
	t.Logf("%d records in %d chunks", n, chunks)
}

func TestSyncWithFrozenAndDownPeers(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	b.store.Apply([]Record{b.write("s", "k", "v")})
	net.link("A", "C").set(func(l *memLink) { l.blocked = true }) // C never answers
	require.NoError(t, a.e.Sync(ctxTimeout(t, 5*time.Second)))
	require.Equal(t, "v", a.value("s", "k"))

	// Only frozen C left: the context ends the wait.
	a.e.PeerDown("B", false)
	require.ErrorIs(t, a.e.Sync(ctxTimeout(t, 20*time.Millisecond)), context.DeadlineExceeded)

	// C goes down while Sync waits for it.
	errc := make(chan error, 1)
	before := net.link("A", "C").count(MsgSyncRequest)
	go func() { errc <- a.e.Sync(context.Background()) }()
	waitFor(t, "sync request sent", func() bool { return net.link("A", "C").count(MsgSyncRequest) == before+1 })
	a.e.PeerDown("C", false)
	require.ErrorIs(t, <-errc, ErrNotEnoughPeers)
}

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
	b.store.Apply([]Record{b.write(sessionID(40), "k", "B only")})
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

func TestDigest(t *testing.T) {
	net := newMemNet(t)
	a := newNode(t, net, "A", 1, nil)
	b := newNode(t, net, "B", 2, nil)
	require.Len(t, a.e.Digest(), DigestBuckets)
	require.Equal(t, make([]uint64, DigestBuckets), a.e.Digest())

	r := a.write("s", "k1", "v1", "k2", "v2")
	a.store.Apply([]Record{r})
	b.store.Apply([]Record{r})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// Access is excluded.
	b.store.Apply([]Record{{ID: "s", Access: 12345}})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// A missing older key shows even though the newest version is equal.
	old := Record{ID: "t", Keys: map[string]Value{"old": {Data: []byte("x"), Ver: a.clock.Now()}}}
	newer := Record{ID: "t", Keys: map[string]Value{"new": {Data: []byte("y"), Ver: a.clock.Now()}}}
	a.store.Apply([]Record{old, newer})
	b.store.Apply([]Record{newer})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())
	b.store.Apply([]Record{old})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// Tombstones count.
	a.store.Apply([]Record{{ID: "s", Dead: a.clock.Now()}})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())

	// Fixed across processes: the hash of a known record never changes.
	known := Record{ID: "id", Keys: map[string]Value{"k": {Ver: Version{Wall: 1, Seq: 2, Node: 3}}}}
	require.Equal(t, uint64(0xe036b66f0f7b63e7), recordHash(&known), "%#x", recordHash(&known))
	require.Equal(t, 54, bucketOf("id"))
}

func TestFetch(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	b.store.Apply([]Record{b.write("s", "k1", "from B")})
	c.store.Apply([]Record{c.write("s", "k2", "from C")})

	rec, found, err := a.e.Fetch(ctxTimeout(t, 5*time.Second), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(rec.Keys["k1"].Data))
	require.Equal(t, "from C", string(rec.Keys["k2"].Data))
	require.False(t, a.clock.Now().Less(rec.MaxVersion()))

	_, found, err = a.e.Fetch(ctxTimeout(t, 5*time.Second), "missing")
	require.NoError(t, err)
	require.False(t, found)

	// C frozen: the deadline ends the wait with B's answer.
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	start := time.Now()
	rec, found, err = a.e.Fetch(ctxTimeout(t, 50*time.Millisecond), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(rec.Keys["k1"].Data))
	require.Less(t, time.Since(start), 2*time.Second)

	// Only frozen C: no answer at all is an error.
	a.e.PeerDown("B", false)
	_, _, err = a.e.Fetch(ctxTimeout(t, 20*time.Millisecond), "s")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// C going down releases the Fetch.
	errc := make(chan error, 1)
	before := net.link("A", "C").count(MsgFetch)
	go func() {
		_, _, err := a.e.Fetch(context.Background(), "s")
		errc <- err
	}()
	waitFor(t, "fetch sent", func() bool { return net.link("A", "C").count(MsgFetch) == before+1 })
	a.e.PeerDown("C", false)
	require.NoError(t, <-errc)

	_, found, err = a.e.Fetch(context.Background(), "s") // no peers
	require.NoError(t, err)
	require.False(t, found)
}

func TestHostileFramesRejected(t *testing.T) {
	_, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	bad := [][]byte{
		nil,
		{FormatVersion},
		{99, byte(MsgBatch)},
		{FormatVersion, 200},
		{FormatVersion, byte(MsgBatch), 0xc1},
		{FormatVersion, byte(MsgBatch), 0xdd, 0xff, 0xff, 0xff, 0xff}, // huge array, no bytes
		mustEncodeRaw(t, MsgBatch, map[string]any{"s": 1, "r": []map[string]any{{"i": ""}}}),
		mustEncodeRaw(t, MsgDigest, map[string]any{"b": []uint64{1, 2, 3}}),
		mustEncodeRaw(t, MsgBuckets, map[string]any{"b": []uint32{9999}}),
	}
	for _, f := range bad {
		require.NotPanics(t, func() { a.e.HandleFrame("B", f) })
		require.NotPanics(t, func() { a.e.HandleFrame("stranger", f) })
	}
	require.EqualValues(t, 2*len(bad), a.e.Stats().Rejected)
	require.Zero(t, a.store.len())

	// Well-formed but unexpected frames are ignored, not rejected.
	for _, m := range []struct {
		t   MsgType
		msg any
	}{
		{MsgAck, &Ack{Seq: 77}},
		{MsgSyncChunk, &SyncChunk{Req: 5, Done: true}},
		{MsgFetchReply, &FetchReply{Req: 9}},
		{MsgBatch, &Batch{Seq: 1, Records: []Record{b.write("s", "k", "v")}}},
	} {
		f, err := Encode(m.t, m.msg)
		require.NoError(t, err)
		a.e.HandleFrame("stranger", f)
	}
	require.EqualValues(t, 2*len(bad), a.e.Stats().Rejected)
	require.Equal(t, "v", a.value("s", "k")) // applied, just not acknowledged
}

// mustEncodeRaw encodes an arbitrary body under a message type header,
// bypassing Encode's validation.
func mustEncodeRaw(t *testing.T, typ MsgType, body any) []byte {
	t.Helper()
	b, err := msgpackMarshal(body)
	require.NoError(t, err)
	return append([]byte{FormatVersion, byte(typ)}, b...)
}

func TestCloseIdempotent(t *testing.T) {
	net, nodes := newCluster(t, 3, func(c *Config) { c.AntiEntropyInterval = time.Millisecond })
	a := nodes[0]
	net.link("A", "B").set(func(l *memLink) { l.blocked = true })
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	tk := a.publish(a.write("s", "k", "v"))
	errc := make(chan error, 3)
	go func() { errc <- tk.Wait(context.Background(), 1) }()
	go func() { errc <- a.e.Flush(context.Background()) }()
	go func() { _, _, err := a.e.Fetch(context.Background(), "s"); errc <- err }()
	waitFor(t, "fetch sent", func() bool { return net.link("A", "C").count(MsgFetch) == 1 })

	a.e.Close()
	a.e.Close()
	for range 3 {
		require.ErrorIs(t, <-errc, ErrClosed)
	}
	require.ErrorIs(t, a.e.Publish(a.write("s", "k", "w")).Wait(context.Background(), 1), ErrClosed)
	require.ErrorIs(t, a.e.Sync(context.Background()), ErrClosed)
	require.ErrorIs(t, a.e.Flush(context.Background()), ErrClosed)
	_, _, err := a.e.Fetch(context.Background(), "s")
	require.ErrorIs(t, err, ErrClosed)
	a.e.PeerUp("D")
	a.e.HandleFrame("B", []byte{1})
	require.Empty(t, a.e.Stats().Peers)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestBatchSplitsAtMaxBatchBytes(t *testing.T) {
	net, nodes := newCluster(t, 2, func(c *Config) { c.MaxBatchBytes = 4 << 10 })
	a, b := nodes[0], nodes[1]
	link := net.link("A", "B")
	link.set(func(l *memLink) { l.blocked = true })
	a.publish(a.write("first", "k", "v"))
	waitFor(t, "first batch in flight", func() bool { return peerStats(a, "B").Batches == 1 })
	val := string(make([]byte, 1000))
	for i := range 40 {
		a.publish(a.write(sessionID(i), "k", val))
	}
	link.set(func(l *memLink) { l.blocked = false })
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	require.Equal(t, 41, b.store.len())
	st := peerStats(a, "B")
	require.EqualValues(t, 41, st.Sent)
	require.EqualValues(t, 41, st.Acked)
	require.GreaterOrEqual(t, st.Batches, uint64(1+40*1000/(4<<10)))
	require.LessOrEqual(t, st.Batches, uint64(1+(40+2)/3)) // 3 records of ~1.1 KB fit 4 KiB
}

func TestStalledSendDoesNotBlockOthers(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	net.link("A", "C").set(func(l *memLink) { l.stalled = true }) // Send to C blocks
	for i := range 10 {
		tk := a.publish(a.write(sessionID(i), "k", "v"))
		require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
	}
	require.Equal(t, 10, b.store.len())
	// C's replies to A still flow while A's sender to C is stuck.
	nodes[2].store.Apply([]Record{nodes[2].write("c", "k", "from C")})
	_, found, err := b.e.Fetch(ctxTimeout(t, 5*time.Second), "c")
	require.NoError(t, err)
	require.True(t, found)
	// PeerDown and Close unblock the stuck Send (goleak checks the rest).
	a.e.PeerDown("C", false)
	require.EqualValues(t, 0, peerStats(a, "B").Queued)
}

func TestSyncLargeState(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB state transfer")
	}
	net := newMemNet(t)
	a := newNode(t, net, "A", 1, nil)
	const n = 100000
	val := make([]byte, 1024)
	recs := make([]Record, 0, n)
	for i := range n {
		recs = append(recs, Record{ID: sessionID(i), Keys: map[string]Value{"k": {Data: val, Ver: a.clock.Now()}}})
	}
	a.store.Apply(recs)
	recs = nil
	b := newNode(t, net, "B", 2, nil)
	connectAll([]*testNode{a, b})
	require.NoError(t, b.e.Sync(ctxTimeout(t, time.Minute)))
	require.Equal(t, n, b.store.len())
	chunks := net.link("A", "B").count(MsgSyncChunk)
	require.Greater(t, chunks, 90)
	t.Logf("%d records of 1 KiB in %d chunks", n, chunks)
}
