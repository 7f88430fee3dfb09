package peersession

// Failover tests (issue 4): nodes killed, partitioned, frozen and
// restarted under writes, on the real loopback network with faults
// injected by internal/faultnet. Every wait is a condition with a bound;
// every load loop is bounded in count and time.

import (
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/assert"
)

// TestFailoverNonStickyReadsWithReplicationImpaired: a client alternating
// between nodes on every request sees its own writes although replication
// between those two nodes is delayed (Async) or dropped (Sync, a third
// node acknowledging): the read-side peer fetch is what serves them.
//
// Partitioned mode runs five nodes, the client's session settled on the
// holders that keep the scenario: a and b in Async (each write reaches the
// other holder late, so a read there must fetch), a and c in Sync (c
// acknowledges the writes on a and on b, and answers both their fetches).
func TestFailoverNonStickyReadsWithReplicationImpaired(t *testing.T) {
	cases := []struct {
		name    string
		mode    Consistency
		nodes   []string
		holders []string // in partitioned mode, the session's two holders
		steps   int
		fault   func(fn *faultnet.Net)
		fetch   time.Duration
	}{
		{
			// Each replication message between a and b arrives 50ms late:
			// a read on the other node right after a write can only be
			// served by waiting for its fetch.
			name: "Async", mode: Async, nodes: []string{"a", "b"}, holders: []string{"a", "b"}, steps: 20, fetch: 2 * time.Second,
			fault: func(fn *faultnet.Net) {
				fn.Delay("a", "b", faultnet.Replication, 50*time.Millisecond)
				fn.Delay("b", "a", faultnet.Replication, 50*time.Millisecond)
			},
		},
		{
			// Nothing gets through between a and b; c acknowledges the
			// writes and answers b's and a's fetches.
			name: "Sync", mode: Sync, nodes: []string{"a", "b", "c"}, holders: []string{"a", "c"}, steps: 15, fetch: 300 * time.Millisecond,
			fault: func(fn *faultnet.Net) {
				fn.DropRate("a", "b", faultnet.Replication, 1)
				fn.DropRate("b", "a", faultnet.Replication, 1)
			},
		},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, opts func(*Config)) {
				fn := faultnet.New(5)
				tc := newFaultCluster(t, fn, func(c *Config) {
					opts(c)
					c.Cluster.Consistency = tt.mode
					c.Cluster.FetchTimeout = tt.fetch
					c.Cluster.AntiEntropyInterval = -1 // only the fetch may repair
				})
				names := tt.nodes
				if copiesOf(opts) > 0 {
					names = []string{"a", "b", "c", "d", "e"}
				}
				nodes := tc.startAll(names...)
				t.Cleanup(fn.Reset)
				tok := ""
				if nodes[0].part.Load() != nil {
					h0, h1 := nodes[tt.holders[0][0]-'a'], nodes[tt.holders[1][0]-'a']
					tok, _ = settledOn(t, nodes[0], nodes, h0, h1)
				}
				tt.fault(fn)
				alternate(t, nodes[0], nodes[1], tt.steps, tok)
				sa, sb := nodes[0].Stats(), nodes[1].Stats()
				assert.Positive(t, sa.Fetches+sb.Fetches, "no read needed a fetch: the fault did not bite")
				t.Logf("fetches a %d (hits %d), b %d (hits %d); faults: %+v", sa.Fetches, sa.FetchHits, sb.Fetches, sb.FetchHits, fn.Stats())
			})
		})
	}
}
