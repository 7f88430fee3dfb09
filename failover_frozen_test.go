package peersession

import (
	"fmt"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/require"
)

// TestFailoverFrozenPeerDoesNotStallSyncWrites: with Sync and MinAcks 1, a
// peer that stops answering (but whose TCP port still accepts) does not
// make writes fail, before or after it is declared dead: every write that
// returns is on a second node besides the frozen one. Once the frozen peer
// runs again it catches up.
//
// Full replication runs three nodes. Partitioned mode runs five, with the
// session held by the writer a and the frozen c, so that the ack must come
// from a node that does not hold it (a stand-in) while c looks alive, and
// from c's successor once c is declared dead.
func TestFailoverFrozenPeerDoesNotStallSyncWrites(t *testing.T) {
	eachMode(t, func(t *testing.T, opts func(*Config)) {
		fn := faultnet.New(3)
		tc := newFaultCluster(t, fn, func(c *Config) {
			opts(c)
			c.Cluster.Consistency = Sync
			c.Cluster.MinAcks = 1
			c.MaxSessionBytes = 1 << 20 // room for a key a write, up to 5,000
		})
		names := []string{"a", "b", "c"}
		if copiesOf(opts) > 0 {
			names = append(names, "d", "e")
		}
		nodes := tc.startAll(names...)
		a, c := nodes[0], nodes[2]
		t.Cleanup(fn.Reset)
		var tok string
		if a.part.Load() == nil {
			tok = create(t, a, map[string]any{"start": "x"})
			eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", nodes...)
		} else {
			tok, _ = settledOn(t, a, nodes, a, c)
		}
		others := []*Store{}
		for _, st := range nodes {
			if st != a && st != c {
				others = append(others, st)
			}
		}

		fn.Freeze("c")
		var ws []write
		var before, after []time.Duration
		frozenAt := time.Now()
		until := frozenAt.Add(20 * time.Second)
		for i := 0; i < 5000 && len(after) < 50 && time.Now().Before(until); i++ {
			w := write{"a", tok, fmt.Sprintf("k%d", i), fmt.Sprint(i)}
			start := time.Now()
			require.NoError(t, put(t.Context(), a, w.token, w.key, w.val), "write %d with c frozen", i)
			if alive(a) == len(nodes) {
				before = append(before, time.Since(start))
			} else {
				after = append(after, time.Since(start))
			}
			ws = append(ws, w)
			require.True(t, onAnother(others, w), "an acknowledged write is on no node but a and the frozen c")
		}
		tc.waitMembers(len(nodes)-1, append([]*Store{a}, others...)...)
		declared := time.Since(frozenAt)
		p50b, maxb := percentiles(before)
		p50a, maxa := percentiles(after)
		t.Logf("c frozen: declared dead after %v; %d writes while it looked alive (median %v, max %v), %d after (median %v, max %v)",
			declared.Round(time.Millisecond), len(before), p50b, maxb, len(after), p50a, maxa)

		fn.Unfreeze("c")
		tc.waitMembers(len(nodes), nodes...)
		took := eventually(t, func() bool {
			return sameDigests(nodes...) && len(missingCopy(c, ws)) == 0
		}, "c did not catch up after the freeze")
		if a.part.Load() != nil {
			waitSettled(t, []string{tok}, nodes...)
		}
		t.Logf("c back: caught up in %v; stand-ins %d; faults: %+v", took.Round(time.Millisecond), a.Stats().Replication.StandIns, fn.Stats())
	})
}

// onAnother reports whether some node of nodes has w in a copy of its own
// (not fetched): a write acknowledged in Sync is on a second node.
func onAnother(nodes []*Store, w write) bool {
	for _, st := range nodes {
		if len(missingCopy(st, []write{w})) == 0 {
			return true
		}
	}
	return false
}

// missingCopy returns the writes of ws that st's own copy lacks (st's
// copy only, never fetched: see missing for what a read finds).
func missingCopy(st *Store, ws []write) []write {
	var out []write
	for _, w := range ws {
		t, _ := parseCookie(w.token)
		e := st.lookup(idOf(t))
		if e == nil || entryValue(st, e, w.key) != w.val {
			out = append(out, w)
		}
	}
	return out
}

// copiesOf returns the Copies opts sets (0: full replication).
func copiesOf(opts func(*Config)) int {
	c := Config{Cluster: &ClusterConfig{}}
	opts(&c)
	return c.Cluster.Copies
}
