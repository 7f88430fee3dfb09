package peersession

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
)

// plantStale puts one session on a and b at its first version and on b
// alone at its second (applied, never published: anti-entropy must be
// off), and returns its token and the second version's stamp: what a
// client that wrote on b presents to a.
func plantStale(t *testing.T, a, b *Store) (token string, stamp int64) {
	t.Helper()
	// A node up alone asks the first peer that joins for its state (a
	// late state transfer): let b's answer to a go out first, or it could
	// carry the version planted on b alone.
	require.Eventually(t, func() bool {
		r := b.Stats().Replication
		return r.Transfers+r.DeltaTransfers > 0
	}, waitFor, tick, "b served a no state transfer")
	solo := newTestStore(t, Config{})
	tok := create(t, solo, map[string]any{"n": "1"})
	token, _ = parseCookie(tok)
	id := idOf(token)
	for _, st := range []*Store{a, b} {
		require.Zero(t, replStore{st}.Apply([]model.Record{solo.lookup(id).rec}))
	}
	update(t, solo, tok, map[string]any{"n": "2"})
	e := solo.lookup(id)
	require.Zero(t, replStore{b}.Apply([]model.Record{e.rec}))
	require.Equal(t, "1", value(a, token, "n"))
	return token, e.stamp
}

// noAntiEntropy turns anti-entropy off, so that nothing but the path a
// test exercises repairs a copy (the sessions plantStale put on one node
// stay there).
func noAntiEntropy(c *Config) { c.Cluster.AntiEntropyInterval = -1 }

// holdFetches makes st's fetches wait, before they are sent, until the
// returned function is called (at the latest when the test ends).
func holdFetches(t *testing.T, st *Store) (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	st.repl.guard.hold = func(string) { <-ch }
	return release
}

// TestSignedStampFromAnotherNodeFetches: the stamp b issued, MAC and all,
// makes a fetch on a, whose copy is older: read-your-writes holds. It
// still does once b MACs with a new key that a has only added.
func TestSignedStampFromAnotherNodeFetches(t *testing.T) {
	tc := newTestCluster(t, noAntiEntropy)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	srv := httptest.NewServer(testApp(a))
	t.Cleanup(srv.Close)

	newKey := bytes.Repeat([]byte{8}, 32)
	for i, rotate := range []bool{false, true} {
		if rotate {
			require.NoError(t, a.AddKey(newKey))
			require.NoError(t, b.AddKey(newKey))
			require.NoError(t, b.UseKey(newKey))
		}
		token, stamp := plantStale(t, a, b)
		issued := b.cookieValue(token, stamp) // as b's middleware or Save sets it
		if rotate {
			assert.NotEqual(t, signedValue(token, stamp), issued, "b does not MAC with its new key")
		}
		cl := newClient(t, srv)
		cl.setCookie("session", issued)
		_, body := cl.do("GET", "/get?k=n")
		assert.Equal(t, "true:2", body, "a served its stale copy: read-your-writes broken")

		s := a.Stats()
		assert.EqualValues(t, i+1, s.Fetches)
		assert.EqualValues(t, i+1, s.FetchHits)
		assert.Zero(t, s.StampsRejected)
		assert.EqualValues(t, i+1, b.Stats().Replication.FetchesServed)
	}
}

// TestConcurrentFetchesForOneSessionAreMerged: reads of one session stale
// here, arriving while a fetch of it is under way, wait for that fetch
// instead of sending their own: one fetch, one answer from the peer, and
// every read sees the newer copy.
func TestConcurrentFetchesForOneSessionAreMerged(t *testing.T) {
	tc := newTestCluster(t, noAntiEntropy)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	a.repl.arrivalWait = 0 // straight to the fetch
	token, stamp := plantStale(t, a, b)
	release := holdFetches(t, a)
	served0 := b.Stats().Replication.FetchesServed

	const reads = 8
	cookie := signedValue(token, stamp)
	got := make(chan string, reads)
	for range reads {
		go func() {
			s, err := a.Load(t.Context(), cookie)
			if err != nil {
				got <- err.Error()
				return
			}
			var n string
			_, _ = s.Get("n", &n)
			got <- n
		}()
	}
	require.Eventually(t, func() bool {
		running, waiting := a.repl.guard.inFlight(idOf(token))
		return running == 1 && waiting == reads-1
	}, waitFor, tick, "the reads did not all wait for one fetch")
	release()
	for range reads {
		assert.Equal(t, "2", <-got)
	}

	s := a.Stats()
	assert.EqualValues(t, 1, s.Fetches)
	assert.EqualValues(t, reads-1, s.FetchesMerged)
	assert.Equal(t, served0+1, b.Stats().Replication.FetchesServed, "b answered more than one fetch")
}

// TestFetchMissIsNotRepeatedWithinTheWindow: a session no peer has (an
// unknown scs token: LoadOrCreate) is asked for once; asked again within
// missTTL, by the node's clock, it is not fetched again.
func TestFetchMissIsNotRepeatedWithinTheWindow(t *testing.T) {
	clk := newFakeClock()
	tc := newTestCluster(t, func(c *Config) { c.Now = clk.Now })
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	served := func() uint64 { return b.Stats().Replication.FetchesServed }
	served0 := served()

	unknown := newToken()
	loadOrCreate := func() {
		t.Helper()
		s, err := a.LoadOrCreate(t.Context(), unknown)
		require.NoError(t, err)
		require.True(t, s.IsNew())
	}
	loadOrCreate()
	require.EqualValues(t, 1, a.Stats().Fetches)
	require.Equal(t, served0+1, served())

	for range 10 {
		loadOrCreate()
	}
	clk.Advance(missTTL - time.Nanosecond)
	loadOrCreate()
	s := a.Stats()
	assert.EqualValues(t, 1, s.Fetches, "a miss was fetched again within the window")
	assert.EqualValues(t, 11, s.FetchMissesCached)
	assert.Equal(t, served0+1, served())

	clk.Advance(time.Nanosecond)
	loadOrCreate()
	assert.EqualValues(t, 2, a.Stats().Fetches, "a miss was not fetched again after the window")
	assert.Equal(t, served0+2, served())
}

// TestFetchesBeyondTheBoundAreShed: with the node's fetches all under way,
// a read that would fetch is served this node's copy (a stale one; for
// LoadOrCreate's unknown token, a new session) at once, sends nothing and
// is counted. Many unknown scs tokens cost no more fetches than the bound.
func TestFetchesBeyondTheBoundAreShed(t *testing.T) {
	tc := newTestCluster(t, noAntiEntropy)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	a.repl.arrivalWait = 0
	const bound = 3
	a.repl.guard.max = bound
	token, stamp := plantStale(t, a, b)
	release := holdFetches(t, a)
	served0 := b.Stats().Replication.FetchesServed

	var wg sync.WaitGroup
	for range bound {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = a.LoadOrCreate(t.Context(), newToken())
		}()
	}
	require.Eventually(t, func() bool {
		running, _ := a.repl.guard.inFlight("")
		return running == bound
	}, waitFor, tick, "the fetches did not all start")

	const unknown = 50
	for range unknown {
		s, err := a.LoadOrCreate(t.Context(), newToken())
		require.NoError(t, err)
		assert.True(t, s.IsNew())
	}
	s, err := a.Load(t.Context(), signedValue(token, stamp))
	require.NoError(t, err)
	var n string
	_, _ = s.Get("n", &n)
	assert.Equal(t, "1", n, "served a's own copy")

	st := a.Stats()
	assert.EqualValues(t, unknown+1, st.FetchesShed)
	assert.Zero(t, st.Fetches, "the held fetches were counted before they ended")
	assert.Equal(t, served0, b.Stats().Replication.FetchesServed, "b served a fetch past the bound")

	release()
	wg.Wait()
	assert.EqualValues(t, bound, a.Stats().Fetches)
	assert.Equal(t, served0+bound, b.Stats().Replication.FetchesServed)
}

// The negative cache holds at most missCap sessions, dropping the oldest.
func TestFetchMissCacheIsBounded(t *testing.T) {
	var c missCache
	now := time.Now()
	until := now.Add(missTTL)
	for i := range missCap + 10 {
		c.add(fmt.Sprint(i), until, false)
	}
	assert.Len(t, c.until, missCap)
	assert.Len(t, c.order, missCap)
	assert.False(t, c.has("0", now, false), "the oldest was kept")
	assert.True(t, c.has(fmt.Sprint(missCap+9), now, false))
	assert.False(t, c.has(fmt.Sprint(missCap+9), until, false), "kept past its time")
	c.add("10", until.Add(time.Second), false) // renewed: no new slot
	assert.Len(t, c.order, missCap)
	assert.True(t, c.has("10", until, false))
}

// A read with an authenticated stamp trusts only a miss a fetch like its
// own found (thorough): one that asked the holders only may have come
// before the client's own write reached them.
func TestFetchMissCacheAnswersAStampedReadOnlyWithAThoroughMiss(t *testing.T) {
	var c missCache
	now := time.Now()
	c.add("holders only", now.Add(missTTL), false)
	c.add("everyone", now.Add(missTTL), true)
	assert.True(t, c.has("holders only", now, false))
	assert.False(t, c.has("holders only", now, true), "a stamped read trusted a miss of the holders alone")
	assert.True(t, c.has("everyone", now, false))
	assert.True(t, c.has("everyone", now, true))
}
