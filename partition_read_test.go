package peersession

// Reads in partitioned mode on nodes that do not hold the session: a
// client sees its own writes, a read is never told "no session" when the
// holders could not say, and a made-up token costs the holders' answers
// only. Real memberlist nodes over loopback, five or six of them, so that
// there are nodes holding no copy.

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/peersession/peersession/replicate/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowFetchTimeout is the FetchTimeout of the tests that delay replication
// by a part of it: long enough for a loaded test machine.
const slowFetchTimeout = 2 * time.Second

// slowFetch sets slowFetchTimeout.
func slowFetch(c *Config) { c.Cluster.FetchTimeout = slowFetchTimeout }

// sessionHeldBy creates sessions on st until one is held by exactly the
// nodes want names (of nodes), and returns its token.
func sessionHeldBy(t *testing.T, st *Store, nodes []*Store, want ...*Store) string {
	t.Helper()
	for range 10000 {
		tok := create(t, st, map[string]any{"n": "old"})
		hs := holdersOf(st, tok, nodes...)
		if len(hs) == len(want) && containsStore(hs, want[0]) && containsStore(hs, want[len(want)-1]) {
			return tok
		}
	}
	t.Fatal("no session landed on the wanted holders")
	return ""
}

// servedBy sums the fetches nodes answered.
func servedBy(nodes ...*Store) uint64 {
	var n uint64
	for _, st := range nodes {
		n += st.Stats().Replication.FetchesServed
	}
	return n
}

// A client alternating between two nodes that hold none of its session,
// each write made on one of them reaching the holders late (its
// replication to them delayed): every read, on the other node, sees the
// write before it. The cookie's stamp makes the read ask beyond the
// holders. (A read that comes before the holders have the write shows the
// fault; one that comes after, on a stalled machine, passes either way.)
func TestPartitionedClientAlternatingBetweenNonHoldersSeesItsOwnWrites(t *testing.T) {
	fn := faultnet.New(7)
	nodes := fiveNodes(t, fn, withCopies(2), slowFetch, noAntiEntropy)
	a, b, c, d := nodes[0], nodes[1], nodes[2], nodes[3]
	tok, _ := settledOn(t, c, nodes, c, d)
	for _, from := range []string{"a", "b"} {
		for _, to := range []string{"c", "d"} {
			// Less than the holders' half of FetchTimeout: a's and b's
			// fetches from them still answer in time.
			fn.Delay(from, to, faultnet.Replication, slowFetchTimeout/4)
		}
	}

	alternate(t, a, b, 8, tok)
}

// The holders get half of FetchTimeout when the others may be asked after
// them: a holder that does not answer in time leaves the second round the
// time to find the client's own write on the node that made it.
func TestPartitionedReadFindsItsWriteWhenAHolderIsSlow(t *testing.T) {
	fn := faultnet.New(8)
	nodes := fiveNodes(t, fn, withCopies(2), slowFetch, noAntiEntropy)
	a, b, c := nodes[0], nodes[1], nodes[2]
	tok, id := settledOn(t, c, nodes, c, nodes[3])
	fn.DropRate("a", "c", faultnet.Replication, 1)
	fn.DropRate("a", "d", faultnet.Replication, 1)
	token, _ := parseCookie(tok)
	delta := model.Record{ID: id, Keys: []model.KeyValue{{Key: "n", Value: c.shards.get(id).rec.Keys[0].Value}}}
	delta.Keys[0].Value.Data = mustEncode(t, "new")
	delta.Keys[0].Value.Ver = a.clock.Now()
	require.Zero(t, replStore{a}.Apply([]model.Record{model.Merge(c.shards.get(id).rec, delta)}))
	stamped := b.cookieValue(token, a.shards.get(id).stamp)
	fn.Delay("d", "b", faultnet.Replication, 2*slowFetchTimeout) // d answers after the deadline

	got, err := readValue(t.Context(), b, stamped, "n") // once: the deadline's split is the point
	require.NoError(t, err, "the slow holder took the whole deadline")
	assert.Equal(t, "new", got)
}

// mustEncode encodes v as a session value.
func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	data, err := encodeValue(v)
	require.NoError(t, err)
	return data
}

// In partitioned mode every read on a node that does not hold its session
// is a fetch: with the node's fetches all under way, a read waits for a
// slot rather than be told there is no session; and one that cannot get
// one in time fails with ErrStale (503), the client's cookie kept.
func TestPartitionedReadsWaitForAFetchSlotAndAreNeverFalselyMissing(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2), slowFetch) // a queued read waits FetchTimeout for a slot
	a, c, d := nodes[0], nodes[2], nodes[3]
	toks := []string{sessionHeldBy(t, c, nodes, c, d), sessionHeldBy(t, c, nodes, c, d), sessionHeldBy(t, c, nodes, c, d)}
	waitSettled(t, toks, nodes...)
	a.repl.guard.max = 1
	release := holdFetches(t, a)

	var wg sync.WaitGroup
	got := make([]string, 2)
	read := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = readValue(t.Context(), a, toks[i], "n") // once: its wait for a slot is the point
		}()
		require.Eventually(t, func() bool {
			running, _ := a.repl.guard.inFlight("")
			return running == 1 && a.repl.guard.queuedReads() == i
		}, waitFor, tick, "read %d did not take the slot or queue for it", i)
	}
	read(0)

	// No slot before the read's end: shed, but never "no session".
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := a.Load(ctx, toks[2])
	assert.ErrorIs(t, err, ErrStale, "a shed read said the session does not exist")
	assert.NotErrorIs(t, err, ErrNotFound)
	raw, _ := parseCookie(toks[2])
	_, err = a.LoadOrCreate(ctx, raw)
	assert.ErrorIs(t, err, ErrStale, "LoadOrCreate would have made a new session over a live one")
	srv := httptest.NewServer(testApp(a))
	t.Cleanup(srv.Close)
	cl := newClient(t, srv)
	cl.setCookie("session", toks[2])
	res, _ := cl.do("POST", "/set?k=n&v=overwritten") // queued for FetchTimeout, then shed
	assert.Equal(t, 503, res.StatusCode, "a write on a session the node could not fetch")
	assert.Equal(t, toks[2], cl.cookie("session"), "the client lost its cookie")

	read(1)
	release()
	wg.Wait()
	assert.Equal(t, []string{"old", "old"}, got, "a read that waited for a slot did not find its session")
	assert.Equal(t, "old", loadValue(t, a, toks[2], "n"))
	assert.Positive(t, a.Stats().FetchesShed)
}

// A made-up token costs at most Copies fetches, however many nodes: only
// the holders are asked without an authenticated stamp. A holder with the
// session's tombstone asks nobody.
func TestPartitionedMadeUpTokensCostOnlyTheHoldersFetches(t *testing.T) {
	tc := newTestCluster(t, withCopies(2))
	nodes := tc.startAll("a", "b", "c", "d", "e", "f")
	a := nodes[0]
	const tokens = 100
	served0 := servedBy(nodes...)
	for range tokens {
		_, err := a.Load(t.Context(), newToken())
		require.Error(t, err)
		if !errors.Is(err, ErrNotFound) { // ErrStale: a holder slower than FetchTimeout
			assert.ErrorIs(t, err, ErrStale)
		}
		s, err := a.LoadOrCreate(t.Context(), newToken())
		if err == nil {
			assert.True(t, s.IsNew())
		} else {
			assert.ErrorIs(t, err, ErrStale)
		}
	}
	served := servedBy(nodes...) - served0
	assert.LessOrEqual(t, served, uint64(2*2*tokens), "made-up tokens were asked of every node")

	tok := create(t, a, map[string]any{"n": "v"})
	require.NoError(t, a.Delete(t.Context(), tok))
	raw, _ := parseCookie(tok)
	hs := holdersOf(a, tok, nodes...)
	eventuallyEverywhere(t, func(st *Store) bool {
		e := st.shards.get(idOf(raw))
		return e != nil && e.rec.IsDead()
	}, "the holders did not get the tombstone", hs...)
	served0 = servedBy(nodes...)
	for _, h := range hs {
		_, err := h.Load(t.Context(), tok)
		assert.ErrorIs(t, err, ErrNotFound)
	}
	assert.Equal(t, served0, servedBy(nodes...), "a holder with the tombstone asked the others")
}

// A fetch whose deadline passed with a holder silent found nothing it can
// be sure of: it is not remembered as a miss (which would answer "no
// session" for two seconds), and the read fails with ErrStale, not
// ErrNotFound. At the default FetchTimeout.
func TestPartitionedTimeoutIsNotCachedAsAMiss(t *testing.T) {
	fn := faultnet.New(9)
	nodes := fiveNodes(t, fn, noAntiEntropy)
	a, b, c, d := nodes[0], nodes[1], nodes[2], nodes[3]
	fn.DropRate("a", "c", faultnet.Replication, 1) // c, a holder, never gets it
	tok := sessionHeldBy(t, a, nodes, c, d)
	raw, _ := parseCookie(tok)
	id := idOf(raw)
	require.Eventually(t, func() bool { return d.lookup(id) != nil }, waitFor, tick, "d never got the session")
	require.Nil(t, c.shards.get(id))
	fn.Delay("d", "b", faultnet.Replication, time.Second) // d answers after FetchTimeout

	_, err := b.Load(t.Context(), raw)
	assert.ErrorIs(t, err, ErrStale, "a timed-out fetch said the session does not exist")
	b.repl.guard.mu.Lock()
	cached := b.repl.guard.misses.has(id, b.cfg.Now(), false)
	b.repl.guard.mu.Unlock()
	assert.False(t, cached, "a timed-out fetch was cached as a miss")

	fn.Reset()
	require.Eventually(t, func() bool { return loadValue(t, b, raw, "n") == "old" }, waitFor, tick)
}
