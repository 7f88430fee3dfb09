package replicate

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"github.com/peersession/peersession/internal/testclock"
	"github.com/peersession/peersession/internal/testlog"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewValidatesConfig(t *testing.T) {
	net := newMemNet(t)
	good := Config{Self: "A", Network: net.endpoint("A"), Store: newMemStore(), Clock: model.NewClock(1, nil)}
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

func TestEnqueueReachesEveryPeer(t *testing.T) {
	_, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.e.Enqueue(a.write("s1", "k", "v1"), a.write("s2", "k", "v2"))
	waitFor(t, "B and C have s1 and s2", func() bool {
		return b.value("s1", "k") == "v1" && c.value("s2", "k") == "v2" && b.value("s2", "k") == "v2" && c.value("s1", "k") == "v1"
	})
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	require.EqualValues(t, 2, peerStats(a, "B").Acked)
	require.EqualValues(t, 2, peerStats(a, "C").Acked)
}

func TestCoalescing(t *testing.T) {
	// Stop-and-wait: changes made while the one batch waits for its ack
	// coalesce into the next.
	_, a, b, link := frozenPair(t, func(c *Config) { c.MaxInflight = 1 })

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

// The queue keeps sessions oldest first, coalesces a change into the
// session's queued entry wherever it is, and stays right when a partly
// drained queue is compacted.
func TestQueueCoalescesAcrossCompaction(t *testing.T) {
	a := newNode(t, newMemNet(t), "A", 1, func(c *Config) { c.MaxBatchBytes = 64 << 10 })
	p := newPeer(a.e, "B") // no sender: the test drains by hand
	const n = 5000
	for i := range n {
		p.enqueue([]model.Record{a.write(sessionID(i), "k", "v0")}, false)
	}
	var got []model.Record
	drain := func() int {
		b := &batch{}
		p.queue.mu.Lock()
		defer p.queue.mu.Unlock()
		p.queue.drainLocked(b)
		got = append(got, b.recs...)
		return len(b.recs)
	}
	for len(got) < 3*n/5 { // past the compaction point
		require.NotZero(t, drain())
	}
	require.Less(t, p.queue.head, 1024, "the drained head was compacted away")
	drained := len(got)
	for i := range n { // every session again: the queued ones coalesce
		p.enqueue([]model.Record{a.write(sessionID(i), "k2", "v1")}, false)
	}
	require.Equal(t, n, len(p.queue.index), "the drained sessions are queued anew, the others coalesced")
	for drain() > 0 {
	}
	require.Len(t, got, drained+n)
	for i, r := range got[drained:n] { // queued twice: both keys, oldest first
		require.Equal(t, sessionID(drained+i), r.ID)
		require.Len(t, r.Keys, 2)
	}
	for i, r := range got[n:] { // drained once already: the new key only
		require.Equal(t, sessionID(i), r.ID)
		require.Len(t, r.Keys, 1)
	}
	require.Empty(t, p.queue.index)
}

func TestWindowPipelinesBatches(t *testing.T) {
	// A frozen peer: every batch sent waits for its ack.
	_, a, b, link := frozenPair(t, nil)

	// While the window has room, each change goes out at once in a batch
	// of its own, without waiting for the previous one's ack.
	for i := range DefaultMaxInflight {
		a.publish(a.write(sessionID(i), "k", "v"))
		waitFor(t, "batch "+itoa(i+1)+" sent", func() bool { return peerStats(a, "B").Batches == uint64(i+1) })
	}
	// The window is full: further changes queue and coalesce.
	var last *Ticket
	for i := range 10 {
		last = a.publish(a.write("later", "k", "v"+itoa(i)), a.write(sessionID(100+i), "k", "v"))
	}
	st := peerStats(a, "B")
	require.EqualValues(t, DefaultMaxInflight, st.Batches)
	require.Equal(t, 11, st.Queued)
	require.ErrorIs(t, last.Wait(ctxTimeout(t, 10*time.Millisecond), 1), context.DeadlineExceeded)

	link.set(func(l *memLink) { l.blocked = false })
	require.NoError(t, last.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v9", b.value("later", "k"))
	require.NoError(t, a.e.Flush(ctxTimeout(t, 5*time.Second)))
	st = peerStats(a, "B")
	require.EqualValues(t, DefaultMaxInflight+1, st.Batches) // the 11 queued sessions went together
	require.EqualValues(t, DefaultMaxInflight+11, st.Acked)
	require.Zero(t, st.Retries)
}

func TestAckCountsOnlyOnceOlderBatchesAre(t *testing.T) {
	// The first batch is lost, the second arrives and is acknowledged: the
	// second change is not acknowledged before the first batch is resent
	// and acknowledged, as the second batch's coverage includes the first.
	net, nodes := newCluster(t, 2, func(c *Config) { c.AckTimeout = time.Hour })
	a, b := nodes[0], nodes[1]
	net.link("A", "B").set(func(l *memLink) { l.dropNext = 1 })
	t1 := a.publish(a.write("s1", "k", "v"))
	waitFor(t, "batch 1 sent", func() bool { return peerStats(a, "B").Batches == 1 })
	t2 := a.publish(a.write("s2", "k", "v"))
	waitFor(t, "batch 2 acknowledged", func() bool { return peerStats(a, "B").Acked == 1 })
	require.Equal(t, "v", b.value("s2", "k"))
	for _, tk := range []*Ticket{t1, t2} {
		_, done, err := tk.check(1, false)
		require.NoError(t, err)
		require.False(t, done)
	}

	// The ack timeout passes (forced here rather than waited for).
	p := a.e.peers["B"]
	p.window.markTimedOut(time.Now().Add(2 * time.Hour))
	p.signal()
	require.NoError(t, t2.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.NoError(t, t1.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v", b.value("s1", "k"))
	st := peerStats(a, "B")
	require.EqualValues(t, 1, st.Retries)
	require.EqualValues(t, 2, st.Acked)
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
	_, a, b, link := frozenPair(t, func(c *Config) { c.QueueLimit, c.MaxInflight = 10, 1 })
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
	net, nodes := newCluster(t, 2, func(c *Config) { c.MaxInflight = 1 })
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

func TestHostileFramesRejected(t *testing.T) {
	var logs testlog.Buffer
	wall := testclock.New(time.Now()) // stands still: every frame within logEvery
	_, nodes := newCluster(t, 2, func(c *Config) {
		if c.Self == "A" {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			c.Clock = model.NewClock(1, wall.Now)
		}
	})
	a, b := nodes[0], nodes[1]
	bad := [][]byte{
		nil,
		{wire.FormatVersion},
		{99, byte(wire.MsgBatch)},
		{wire.FormatVersion, 200},
		{wire.FormatVersion, byte(wire.MsgBatch), 0xc1},
		{wire.FormatVersion, byte(wire.MsgBatch), 0xdd, 0xff, 0xff, 0xff, 0xff}, // huge array, no bytes
		mustEncodeRaw(t, wire.MsgBatch, map[string]any{"s": 1, "r": []map[string]any{{"i": ""}}}),
		mustEncodeRaw(t, wire.MsgDigest, map[string]any{"b": []uint64{1, 2, 3}}),
		mustEncodeRaw(t, wire.MsgTransferRequest, map[string]any{"q": 1, "d": []uint64{1, 2, 3}}),
		mustEncodeRaw(t, wire.MsgBuckets, map[string]any{"b": []uint32{9999}}),
	}
	for _, f := range bad {
		require.NotPanics(t, func() { a.e.HandleFrame("B", f) })
		require.NotPanics(t, func() { a.e.HandleFrame("stranger", f) })
	}
	require.EqualValues(t, 2*len(bad), a.e.Stats().Rejected)
	require.Zero(t, a.store.len())
	// A stream of bad frames costs the log one line per logEvery.
	require.Equal(t, 1, logs.Count("frame rejected"), logs.String())

	// Well-formed but unexpected frames are ignored, not rejected.
	for _, m := range []struct {
		t   wire.MsgType
		msg any
	}{
		{wire.MsgAck, &wire.Ack{Seq: 77}},
		{wire.MsgTransferChunk, &wire.TransferChunk{Req: 5, Done: true}},
		{wire.MsgFetchReply, &wire.FetchReply{Req: 9}},
		{wire.MsgBatch, &wire.Batch{Seq: 1, Records: []model.Record{b.write("s", "k", "v")}}},
	} {
		f, err := wire.Encode(m.t, m.msg)
		require.NoError(t, err)
		a.e.HandleFrame("stranger", f)
	}
	require.EqualValues(t, 2*len(bad), a.e.Stats().Rejected)
	require.Equal(t, "v", a.value("s", "k")) // applied, just not acknowledged
}

// mustEncodeRaw encodes an arbitrary body under a message type header,
// bypassing Encode's validation.

func mustEncodeRaw(t *testing.T, typ wire.MsgType, body any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(body)
	require.NoError(t, err)
	return append([]byte{wire.FormatVersion, byte(typ)}, b...)
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
	waitFor(t, "fetch sent", func() bool { return net.link("A", "C").count(wire.MsgFetch) == 1 })

	a.e.Close()
	a.e.Close()
	for range 3 {
		require.ErrorIs(t, <-errc, ErrClosed)
	}
	require.ErrorIs(t, a.e.Publish(a.write("s", "k", "w")).Wait(context.Background(), 1), ErrClosed)
	require.ErrorIs(t, a.e.Transfer(context.Background()), ErrClosed)
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
	_, a, b, link := frozenPair(t, func(c *Config) { c.MaxBatchBytes, c.MaxInflight = 4<<10, 1 })
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
	nodes[2].store.Apply([]model.Record{nodes[2].write("c", "k", "from C")})
	_, found, err := b.e.Fetch(ctxTimeout(t, 5*time.Second), "c")
	require.NoError(t, err)
	require.True(t, found)
	// PeerDown and Close unblock the stuck Send (goleak checks the rest).
	a.e.PeerDown("C", false)
	require.EqualValues(t, 0, peerStats(a, "B").Queued)
}

func TestClockSkewRefused(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	wall := testclock.New(start)
	var logs testlog.Buffer
	net, nodes := newCluster(t, 2, func(c *Config) {
		if c.Self == "A" {
			c.Clock = model.NewClock(1, wall.Now)
			c.MaxClockSkew = time.Minute
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}
	})
	a, b := nodes[0], nodes[1]
	at := func(d time.Duration) model.Version { return model.Version{Wall: start.Add(d).UnixNano(), Node: 2} }
	key := func(id string, v model.Version) model.Record {
		return model.Record{ID: id, Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("v"), Ver: v}}}}
	}
	recs := []model.Record{
		key("near", at(59*time.Second)),
		key("key", at(61*time.Second)),
		{ID: "principal", Principal: "u", PrincipalVer: at(time.Hour)},
		{ID: "dead", Dead: at(24 * time.Hour)},
		key("past", at(-time.Hour)),
	}
	frame, err := wire.Encode(wire.MsgBatch, &wire.Batch{Seq: 1, Records: recs})
	require.NoError(t, err)
	a.e.HandleFrame("B", frame)

	st := a.e.Stats()
	require.EqualValues(t, 3, st.Skewed)
	require.EqualValues(t, 2, st.Applied)
	require.Zero(t, st.Refused)
	require.Equal(t, "v", a.value("near", "k"))
	require.Equal(t, "v", a.value("past", "k"))
	for _, id := range []string{"key", "principal", "dead"} {
		_, ok := a.store.Lookup(id)
		require.False(t, ok, id)
	}
	// The clock observed the near version, not the skewed ones.
	now := a.e.cfg.Clock.Now()
	require.False(t, now.Less(at(59*time.Second)))
	require.True(t, now.Less(at(61*time.Second)))
	require.Contains(t, logs.String(), "level=WARN")
	require.Contains(t, logs.String(), "peer=B")
	require.Contains(t, logs.String(), "records=3")

	// A fetched record from the future is ignored as well: Fetch would
	// observe it.
	b.store.Apply([]model.Record{key("fetched", at(time.Hour))})
	_, found, err := a.e.Fetch(ctxTimeout(t, 5*time.Second), "fetched")
	require.NoError(t, err)
	require.False(t, found)
	require.EqualValues(t, 4, a.e.Stats().Skewed)
	require.True(t, a.e.cfg.Clock.Now().Less(at(61*time.Second)))

	// Once the local clock catches up, the same records are accepted
	// (but the tombstone from a day ahead).
	wall.Set(start.Add(2 * time.Hour))
	a.e.HandleFrame("B", frame)
	require.EqualValues(t, 5, a.e.Stats().Skewed)
	// One warning per logEvery at most: the fetched record's refusal was
	// held back, and the next line counts it.
	warnings := logs.Count("records from the future")
	require.Equal(t, 2, warnings)
	require.Contains(t, logs.String(), "records=2")
	_, ok := a.store.Lookup("key")
	require.True(t, ok)
	_, ok = a.store.Lookup("dead")
	require.False(t, ok)
	require.Equal(t, "u", func() string { r, _ := a.store.Lookup("principal"); return r.Principal }())
	require.Zero(t, net.link("A", "B").count(wire.MsgSummary))
}

func TestClockSkewDefaultAndDisabled(t *testing.T) {
	_, nodes := newCluster(t, 2, func(c *Config) {
		if c.Self == "B" {
			c.MaxClockSkew = -1
		}
	})
	a, b := nodes[0], nodes[1]
	require.Equal(t, DefaultMaxClockSkew, a.e.cfg.MaxClockSkew)
	future := model.Record{ID: "s", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("v"),
		Ver: model.Version{Wall: time.Now().Add(time.Hour).UnixNano(), Node: 9}}}}}
	frame, err := wire.Encode(wire.MsgBatch, &wire.Batch{Seq: 1, Records: []model.Record{future}})
	require.NoError(t, err)
	a.e.HandleFrame("B", frame)
	b.e.HandleFrame("A", frame)
	require.EqualValues(t, 1, a.e.Stats().Skewed)
	require.Zero(t, b.e.Stats().Skewed)
	require.Equal(t, "v", b.value("s", "k"))
	require.Empty(t, a.value("s", "k"))
}
