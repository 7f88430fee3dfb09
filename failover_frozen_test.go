package peersession

import (
	"fmt"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/require"
)

// TestFailoverFrozenPeerDoesNotStallSyncWrites: with Sync, MinAcks 1 and
// three nodes, a peer that stops answering (but whose TCP port still
// accepts) does not make writes fail, before or after it is declared dead;
// once it runs again it catches up.
func TestFailoverFrozenPeerDoesNotStallSyncWrites(t *testing.T) {
	fn := faultnet.New(3)
	tc := newFaultCluster(t, fn, func(c *Config) {
		c.Cluster.Consistency = Sync
		c.Cluster.MinAcks = 1
		c.MaxSessionBytes = 1 << 20 // room for a key a write, up to 5,000
	})
	nodes := tc.startAll("a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	t.Cleanup(fn.Reset)
	tok := create(t, a, map[string]any{"start": "x"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", nodes...)

	fn.Freeze("c")
	var ws []write
	var before, after []time.Duration
	frozenAt := time.Now()
	until := frozenAt.Add(20 * time.Second)
	for i := 0; i < 5000 && len(after) < 50 && time.Now().Before(until); i++ {
		w := write{"a", tok, fmt.Sprintf("k%d", i), fmt.Sprint(i)}
		start := time.Now()
		require.NoError(t, put(t.Context(), a, w.token, w.key, w.val), "write %d with c frozen", i)
		if alive(a) == 3 {
			before = append(before, time.Since(start))
		} else {
			after = append(after, time.Since(start))
		}
		ws = append(ws, w)
		require.Empty(t, missing(b, ws[i:]), "an acknowledged write is not on b")
	}
	tc.waitMembers(2, a, b)
	declared := time.Since(frozenAt)
	p50b, maxb := percentiles(before)
	p50a, maxa := percentiles(after)
	t.Logf("c frozen: declared dead after %v; %d writes while it looked alive (median %v, max %v), %d after (median %v, max %v)",
		declared.Round(time.Millisecond), len(before), p50b, maxb, len(after), p50a, maxa)

	fn.Unfreeze("c")
	tc.waitMembers(3, nodes...)
	took := eventually(t, func() bool { return sameDigests(nodes...) && len(missing(c, ws)) == 0 },
		"c did not catch up after the freeze")
	t.Logf("c back: caught up in %v; faults: %+v", took.Round(time.Millisecond), fn.Stats())
}
