package peersession

// Writes in partitioned mode on nodes that do not hold the session (or
// did not when the request began): a commit applies to the copy the
// request loaded, and a Delete ends the session even when its holders did
// not answer. Real memberlist nodes over loopback.

import (
	"sync"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/peersession/peersession/replicate/placement"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request loads a session on a node that does not hold it (a copy
// fetched from the holders); a holder dies mid-request and the node
// becomes a holder before any copy reached it. The commit still applies
// to the copy loaded: the session lives on, with the write.
func TestPartitionedCommitOnANodeThatBecameAHolderMidRequest(t *testing.T) {
	fn := faultnet.New(10)
	nodes := fiveNodes(t, fn, noAntiEntropy)
	tok := create(t, nodes[0], map[string]any{"n": "old"})
	hs := holdersOf(nodes[0], tok, nodes...)
	dying, other := hs[0], hs[1]
	raw, _ := parseCookie(tok)
	id := idOf(raw)
	var rest []string // the names left once dying is gone
	for _, st := range nodes {
		if st != dying {
			rest = append(rest, st.repl.cfg.Name)
		}
	}
	var next *Store // the node that holds the session once dying is gone
	for _, st := range nodes {
		if !containsStore(hs, st) && placement.New(2, rest).Holds(st.repl.cfg.Name, id) {
			next = st
		}
	}
	require.NotNil(t, next)
	waitSettled(t, []string{tok}, nodes...)

	s, err := next.Load(t.Context(), tok)
	require.NoError(t, err)
	require.NoError(t, s.Set("n", "new"))
	fn.DropRate(other.repl.cfg.Name, next.repl.cfg.Name, faultnet.Replication, 1) // no copy reaches next
	kill(dying)
	require.Eventually(t, func() bool { return holds(next, tok) }, waitFor, tick, "%s never became a holder", next.repl.cfg.Name)
	require.Nil(t, next.shards.get(id), "a copy reached the new holder: the test proves nothing")

	_, err = next.Save(t.Context(), s)
	require.NoError(t, err, "the commit ended a live session")
	fn.Reset()
	assert.Equal(t, "new", value(next, tok, "n"))
	require.Eventually(t, func() bool { return value(other, tok, "n") == "new" }, waitFor, tick, "the other holder never got the write")
}

// Store.Delete on a node that does not hold the session ends it even when
// the fetch from its holders fails: a tombstone is written anyway and
// handed over to them. At the default FetchTimeout.
func TestPartitionedDeleteWhenTheHoldersDoNotAnswer(t *testing.T) {
	fn := faultnet.New(11)
	nodes := fiveNodes(t, fn, noAntiEntropy)
	a, c, d := nodes[0], nodes[2], nodes[3]
	tok, id := settledOn(t, c, nodes, c, d)
	fn.DropRate("c", "a", faultnet.Replication, 1) // the holders' answers to a are lost
	fn.DropRate("d", "a", faultnet.Replication, 1)

	require.NoError(t, a.Delete(t.Context(), tok))
	eventuallyEverywhere(t, func(st *Store) bool {
		e := st.shards.get(id)
		return e != nil && e.rec.IsDead()
	}, "the holders never got the tombstone", c, d)
	for _, st := range nodes[1:] {
		_, err := st.Load(t.Context(), tok)
		assert.ErrorIs(t, err, ErrNotFound, "the session lives on %s", st.repl.cfg.Name)
	}
}

// A holder that has only part of a session (a change that came before the
// session itself, as on a new holder the rebalance has not reached yet)
// does not acknowledge the change: a Sync write is never counted as held
// by a node that could not serve the session if the writer died. Another
// node stands in (standin.go): when Save returns, a node besides the
// writer holds the whole session with the write.
func TestPartitionedSyncIsNotAcknowledgedByAPartialCopy(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2), noAntiEntropy, func(c *Config) { c.Cluster.Consistency = Sync })
	c, d := nodes[2], nodes[3]
	tok, id := settledOn(t, c, nodes, c, d)
	require.True(t, d.dropStray(id, d.shards.get(id)), "d's copy changed") // d lacks it, as a new holder would

	require.NoError(t, put(t.Context(), c, tok, "n", "new"))
	e := d.shards.get(id)
	require.NotNil(t, e, "d did not keep the change")
	assert.True(t, e.partial())
	var on []string
	for _, st := range nodes {
		if e := st.lookup(id); st != c && e != nil && entryValue(st, e, "n") == "new" {
			on = append(on, st.repl.cfg.Name)
		}
	}
	assert.NotEmpty(t, on, "the Sync write returned held whole by its writer alone")
	assert.EqualValues(t, 1, c.Stats().Replication.StandIns)
}

// A RenewID (a login) on a node that does not hold the session, whose
// session was destroyed on its holders during the request (a logout in
// another tab), does not bring it back under a new ID.
func TestPartitionedRenewDoesNotReviveASessionDestroyedMidRequest(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2))
	a, c, d := nodes[0], nodes[2], nodes[3]
	tok, id := settledOn(t, c, nodes, c, d)

	s, err := a.Load(t.Context(), tok)
	require.NoError(t, err)
	require.NoError(t, s.RenewID())
	require.NoError(t, c.Delete(t.Context(), tok))
	eventuallyEverywhere(t, func(st *Store) bool {
		e := st.shards.get(id)
		return e != nil && e.rec.IsDead()
	}, "the holders did not get the tombstone", c, d)

	renewed, err := a.Save(t.Context(), s)
	require.ErrorIs(t, err, ErrSessionEnded, "the renew brought a destroyed session back")
	assert.Empty(t, renewed)
}

// A node at Config.MaxSessions takes a logged-in user's write on a
// session it does not hold: the copy it stores for the handover is no
// creation.
func TestPartitionedWriteOnANodeAtItsSessionCap(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2), func(c *Config) {
		if c.Cluster.Name == "a" {
			c.MaxSessions = 1
		}
	})
	a, b, c, d := nodes[0], nodes[1], nodes[2], nodes[3]
	// Each created on a holder, under a token chosen for its holders: no
	// other session is made (a would refuse those it holds).
	createOn := func(st *Store, raw string) string {
		s, err := st.LoadOrCreate(t.Context(), raw)
		require.NoError(t, err)
		require.NoError(t, s.Set("n", "old"))
		v, err := st.Save(t.Context(), s)
		require.NoError(t, err)
		return v
	}
	createOn(a, tokenHeldBy(a, nodes, a, b)) // a at its cap
	require.Eventually(t, func() bool { return a.Len() == 1 && b.Len() == 1 }, waitFor, tick)
	tok := createOn(c, tokenHeldBy(a, nodes, c, d))
	eventuallyEverywhere(t, func(st *Store) bool { return holdsCopy(st, tok) }, "not on its holders", c, d)

	require.NoError(t, put(t.Context(), a, tok, "n", "new"), "a write refused at the cap on a node that does not hold the session")
	require.Eventually(t, func() bool { return value(c, tok, "n") == "new" }, waitFor, tick)
}

// tokenHeldBy returns a new token whose session, under the placement st
// sees, the two nodes of want hold.
func tokenHeldBy(st *Store, nodes []*Store, want ...*Store) string {
	for {
		raw := newToken()
		hs := holdersOf(st, raw, nodes...)
		if len(hs) == 2 && containsStore(hs, want[0]) && containsStore(hs, want[1]) {
			return raw
		}
	}
}

// A Sync write whose other holder is frozen (alive to the failure detector
// for a while, answering nothing) does not fail: after half of SyncTimeout
// the next node in the session's ranking stands in for it, and holds the
// whole session with the write when Save returns.
func TestPartitionedSyncWriteWithAFrozenHolder(t *testing.T) {
	fn := faultnet.New(12)
	nodes := fiveNodes(t, fn, withCopies(2), func(c *Config) {
		c.Cluster.Consistency = Sync
		c.Cluster.MinAcks = 1
	})
	a, c := nodes[0], nodes[2]
	tok, id := settledOn(t, a, nodes, a, c)

	fn.Freeze("c")
	require.NoError(t, put(t.Context(), a, tok, "n", "new"), "a Sync write failed with one holder frozen")
	var on []string
	for _, st := range nodes {
		if st != a && st != c {
			if e := st.shards.get(id); e != nil && entryValue(st, e, "n") == "new" {
				on = append(on, st.repl.cfg.Name)
			}
		}
	}
	assert.NotEmpty(t, on, "no other node held the acknowledged write")
	assert.EqualValues(t, 1, a.Stats().Replication.StandIns)
}

// A node that ends a session it does not hold (Delete, or Destroy in a
// request) calls its OnDestroy, as it would for one it holds.
func TestPartitionedOnDestroyOnANodeThatDoesNotHoldTheSession(t *testing.T) {
	var mu sync.Mutex
	var destroyed []string // on a
	nodes := fiveNodes(t, nil, withCopies(2), func(c *Config) {
		if c.Cluster.Name == "a" {
			c.OnDestroy = func(e Event) {
				mu.Lock()
				defer mu.Unlock()
				destroyed = append(destroyed, e.ID)
			}
		}
	})
	a, c, d := nodes[0], nodes[2], nodes[3]
	byDelete := sessionHeldBy(t, c, nodes, c, d)
	byDestroy := sessionHeldBy(t, c, nodes, c, d)
	waitSettled(t, []string{byDelete, byDestroy}, nodes...)

	require.NoError(t, a.Delete(t.Context(), byDelete))
	s, err := a.Load(t.Context(), byDestroy)
	require.NoError(t, err)
	s.Destroy()
	_, err = a.Save(t.Context(), s)
	require.NoError(t, err)

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{idOf(mustToken(t, byDelete)), idOf(mustToken(t, byDestroy))}, destroyed)
}

// A write on a node that does not hold the session costs its holders the
// change only: once they have acknowledged it, the copy the node stored
// goes without being pushed to them whole again.
func TestPartitionedWriteOnANonHolderIsNotPushedTwice(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2))
	a, c, d := nodes[0], nodes[2], nodes[3]
	tok, _ := settledOn(t, c, nodes, c, d)
	repairs0 := a.Stats().Replication.Repairs
	dropped0 := a.Stats().Replication.StraysDropped

	require.NoError(t, put(t.Context(), a, tok, "n", "new"))
	require.Eventually(t, func() bool { return a.Stats().Replication.StraysDropped == dropped0+1 }, waitFor, tick, "the stray was never dropped")
	assert.Equal(t, repairs0, a.Stats().Replication.Repairs, "the session was pushed whole after its change")
	for _, h := range []*Store{c, d} {
		assert.Equal(t, "new", value(h, tok, "n"))
	}
}

// A stray that has expired is dropped, not pushed to holders that would
// refuse it.
func TestPartitionedExpiredStrayIsDroppedNotPushed(t *testing.T) {
	clk := newFakeClock()
	nodes := fiveNodes(t, nil, withCopies(2), func(c *Config) {
		c.Now = clk.Now
		c.IdleTimeout = 10 * time.Minute
		c.SweepInterval = time.Hour // the handover, not the sweeper, must drop it
	})
	a, c, d := nodes[0], nodes[2], nodes[3]
	_, id := settledOn(t, c, nodes, c, d)
	repairs0 := a.Stats().Replication.Repairs

	clk.Advance(11 * time.Minute)
	// A stray on a the moment it expires (pushed as a stray would be).
	rec := c.shards.get(id).rec
	a.shards.of(id).mu.Lock()
	e, keys := newEntry(len(rec.Keys))
	rec.Keys = append(keys, rec.Keys...)
	*e = entry{rec: rec, size: sessionSize(&rec), stamp: rec.MaxVersion().Wall}
	a.shards.of(id).m[id] = e
	a.account(nil, e)
	a.shards.of(id).mu.Unlock()
	a.repl.part.strays.add(id)

	require.Eventually(t, func() bool { return a.shards.get(id) == nil }, waitFor, tick, "the expired stray stayed")
	assert.Equal(t, repairs0, a.Stats().Replication.Repairs, "an expired stray was pushed")
}
