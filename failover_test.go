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
func TestFailoverNonStickyReadsWithReplicationImpaired(t *testing.T) {
	cases := []struct {
		name  string
		mode  Consistency
		nodes []string
		steps int
		fault func(fn *faultnet.Net)
		fetch time.Duration
	}{
		{
			// Each replication message between a and b arrives 50ms late:
			// a read on the other node right after a write can only be
			// served by waiting for its fetch.
			name: "Async", mode: Async, nodes: []string{"a", "b"}, steps: 20, fetch: 2 * time.Second,
			fault: func(fn *faultnet.Net) {
				fn.Delay("a", "b", faultnet.Replication, 50*time.Millisecond)
				fn.Delay("b", "a", faultnet.Replication, 50*time.Millisecond)
			},
		},
		{
			// Nothing gets through between a and b; c acknowledges the
			// writes and answers b's and a's fetches.
			name: "Sync", mode: Sync, nodes: []string{"a", "b", "c"}, steps: 15, fetch: 300 * time.Millisecond,
			fault: func(fn *faultnet.Net) {
				fn.DropRate("a", "b", faultnet.Replication, 1)
				fn.DropRate("b", "a", faultnet.Replication, 1)
			},
		},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			fn := faultnet.New(5)
			tc := newFaultCluster(t, fn, func(c *Config) {
				c.Cluster.Consistency = tt.mode
				c.Cluster.FetchTimeout = tt.fetch
				c.Cluster.AntiEntropyInterval = -1 // only the fetch may repair
			})
			nodes := tc.startAll(tt.nodes...)
			t.Cleanup(fn.Reset)
			tt.fault(fn)
			alternate(t, nodes[0], nodes[1], tt.steps, "")
			sa, sb := nodes[0].Stats(), nodes[1].Stats()
			assert.Positive(t, sa.Fetches+sb.Fetches, "no read needed a fetch: the fault did not bite")
			t.Logf("fetches a %d (hits %d), b %d (hits %d); faults: %+v", sa.Fetches, sa.FetchHits, sb.Fetches, sb.FetchHits, fn.Stats())
		})
	}
}
