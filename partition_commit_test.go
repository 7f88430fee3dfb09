package peersession

// Writes in partitioned mode on nodes that do not hold the session (or
// did not when the request began): a commit applies to the copy the
// request loaded, and a Delete ends the session even when its holders did
// not answer. Real memberlist nodes over loopback.

import (
	"testing"

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
	tc := newFaultCluster(t, fn, func(c *Config) {
		c.Cluster.Copies = 2
		c.Cluster.AntiEntropyInterval = -1
	})
	nodes := tc.startAll("a", "b", "c", "d", "e")
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
	t.Cleanup(fn.Reset)
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
	tc := newFaultCluster(t, fn, func(c *Config) {
		c.Cluster.Copies = 2
		c.Cluster.AntiEntropyInterval = -1
	})
	nodes := tc.startAll("a", "b", "c", "d", "e")
	a, c, d := nodes[0], nodes[2], nodes[3]
	tok := sessionHeldBy(t, c, nodes, c, d)
	waitSettled(t, []string{tok}, nodes...)
	t.Cleanup(fn.Reset)
	fn.DropRate("c", "a", faultnet.Replication, 1) // the holders' answers to a are lost
	fn.DropRate("d", "a", faultnet.Replication, 1)

	require.NoError(t, a.Delete(t.Context(), tok))
	raw, _ := parseCookie(tok)
	id := idOf(raw)
	eventuallyEverywhere(t, func(st *Store) bool {
		e := st.shards.get(id)
		return e != nil && e.rec.IsDead()
	}, "the holders never got the tombstone", c, d)
	for _, st := range nodes[1:] {
		_, err := st.Load(t.Context(), tok)
		assert.ErrorIs(t, err, ErrNotFound, "the session lives on %s", st.repl.cfg.Name)
	}
}
