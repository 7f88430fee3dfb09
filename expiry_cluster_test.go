package peersession

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A session read on node B every few minutes stays alive on node A, where
// it is never used: B records the access when it has moved by more than
// TouchInterval and replicates it (a few bytes, not the session), and A's
// idle deadline moves with it. Once the use stops, it expires on both.
func TestActiveSessionOnOneNodeDoesNotExpireOnAnother(t *testing.T) {
	clk := newFakeClock()
	tc := newTestCluster(t, func(c *Config) {
		c.Now, c.IdleTimeout, c.TouchInterval = clk.Now, 10*time.Minute, time.Minute
	})
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	tok := create(t, a, map[string]any{"user": "alice"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", b)
	token, _ := parseCookie(tok)
	id := idOf(token)

	for range 6 { // 36 minutes of reads on B only, every 6 minutes
		clk.Advance(6 * time.Minute)
		s, err := b.Load(t.Context(), tok)
		require.NoError(t, err, "the session expired on b while in use")
		_, err = b.Save(t.Context(), s) // the middleware's commit: records the access
		require.NoError(t, err)
		want := clk.Now().UnixNano()
		require.Eventually(t, func() bool {
			e := a.shards.get(id)
			return e != nil && e.rec.Access == want
		}, waitFor, tick, "b's access time did not reach a")
		require.True(t, has(a, tok), "the session expired on a while in use on b")
	}
	writesBefore := b.shards.get(id)
	s, err := b.Load(t.Context(), tok) // a read within TouchInterval records nothing
	require.NoError(t, err)
	_, err = b.Save(t.Context(), s)
	require.NoError(t, err)
	assert.Same(t, writesBefore, b.shards.get(id))

	clk.Advance(10 * time.Minute) // use stops
	assert.False(t, has(a, tok))
	assert.False(t, has(b, tok))
}

// In partitioned mode the same holds when the session is used only on a
// node that does not hold it: each read there is a fetch, the access it
// records goes to the holders, and their copies stay alive; once the use
// stops, it expires on every node.
func TestPartitionedSessionUsedOnlyOffItsHoldersDoesNotExpire(t *testing.T) {
	clk := newFakeClock()
	tc := newTestCluster(t, func(c *Config) {
		c.Now, c.IdleTimeout, c.TouchInterval = clk.Now, 10*time.Minute, time.Minute
		withCopies(2)(c)
	})
	nodes := tc.startAll("a", "b", "c")
	tok := create(t, nodes[0], map[string]any{"user": "alice"})
	var user *Store // the node that does not hold it
	var holders []*Store
	for _, st := range nodes {
		if holds(st, tok) {
			holders = append(holders, st)
		} else {
			user = st
		}
	}
	require.Len(t, holders, 2)
	eventuallyEverywhere(t, func(st *Store) bool { return holdsCopy(st, tok) == holds(st, tok) }, "not settled", nodes...)
	token, _ := parseCookie(tok)
	id := idOf(token)

	for range 6 { // 36 minutes of reads on the node that does not hold it
		clk.Advance(6 * time.Minute)
		s, err := user.Load(t.Context(), tok)
		require.NoError(t, err, "the session expired while in use")
		_, err = user.Save(t.Context(), s)
		require.NoError(t, err)
		want := clk.Now().UnixNano()
		eventuallyEverywhere(t, func(st *Store) bool {
			e := st.shards.get(id)
			return e != nil && e.rec.Access == want && holdsCopy(st, tok)
		}, "the access did not reach a holder", holders...)
	}
	clk.Advance(10 * time.Minute) // use stops
	for _, st := range nodes {
		assert.False(t, has(st, tok))
	}
}
