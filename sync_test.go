package peersession

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSyncWriteIsOnAPeerWhenItReturns(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) { c.Cluster.Consistency = Sync })
	nodes := tc.startAll("a", "b")
	for i := range 20 {
		tok := create(t, nodes[0], map[string]any{"i": fmt.Sprint(i)})
		require.Equal(t, fmt.Sprint(i), value(nodes[1], tok, "i"), "Save returned before b applied the change")
	}
}

// In partitioned mode, a Sync write returns once MinAcks of the session's
// holders other than the writer have applied it (capped at how many there
// are): written on a node that does not hold it, both holders can answer;
// on a holder, the other one.
func TestPartitionedSyncWriteIsOnItsHoldersWhenItReturns(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) {
		c.Cluster.Consistency, c.Cluster.Copies, c.Cluster.MinAcks = Sync, 2, AllPeers
	})
	nodes := tc.startAll("a", "b", "c", "d")
	for i := range 20 {
		w := nodes[i%len(nodes)]
		tok := create(t, w, map[string]any{"i": fmt.Sprint(i)})
		for _, st := range nodes {
			if holds(st, tok) {
				require.True(t, holdsCopy(st, tok), "Save on %s returned before holder %s applied it", w.repl.cfg.Name, st.repl.cfg.Name)
			}
		}
	}
	tc2 := newTestCluster(t, func(c *Config) { c.Cluster.Consistency, c.Cluster.Copies, c.Cluster.MinAcks = Sync, 2, 3 })
	pair := tc2.startAll("a", "b")
	tok := create(t, pair[0], map[string]any{"i": "capped"})
	require.True(t, holdsCopy(pair[1], tok), "MinAcks 3 is capped at the one other holder")
}

// A Sync write the peer refuses (here its store is full) fails with
// ErrNotReplicated instead of reporting a copy the peer does not hold; the
// writing node keeps the change, and the next write the peer accepts
// succeeds.
//
// In partitioned mode, two copies of two nodes: b holds every session and
// there is no other node to stand in for it (with one, the write succeeds:
// TestPartitionedSyncIsNotAcknowledgedByAPartialCopy).
func TestSyncWriteThePeerRefusesFails(t *testing.T) {
	eachMode(t, testSyncWriteThePeerRefusesFails)
}

func testSyncWriteThePeerRefusesFails(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, func(c *Config) {
		opts(c)
		c.Cluster.Consistency = Sync
		if c.Cluster.Name == "b" {
			c.MaxSessions = 2
		}
	})
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	first := create(t, a, map[string]any{"n": "1"})
	create(t, a, map[string]any{"n": "2"})

	s := a.NewSession(t.Context())
	require.NoError(t, s.Set("n", "3"))
	_, err := a.Save(t.Context(), s)
	require.ErrorIs(t, err, ErrNotReplicated)
	require.ErrorContains(t, err, "refused")
	require.Equal(t, 3, a.Len())
	require.Equal(t, 2, b.Len())
	require.EqualValues(t, 1, a.Stats().Replication.Peers["b"].Refused)
	require.EqualValues(t, 1, b.Stats().Refused)

	// b accepts changes to the sessions it holds.
	tok := update(t, a, first, map[string]any{"n": "1b"})
	require.Empty(t, missingCopy(b, []write{{"a", tok, "n", "1b"}}), "b's own copy lacks the write")
}
