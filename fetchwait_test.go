package peersession

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/faultnet"
)

// TestReadWaitsForAChangeInFlight: a client writes on b and reads on a
// while the change is on its way (held in the network here, as on a
// busy machine). The read waits for it instead of fetching: served by
// replication, counted as such, and no fetch is sent.
func TestReadWaitsForAChangeInFlight(t *testing.T) {
	fn := faultnet.New(19)
	tc := newFaultCluster(t, fn, func(c *Config) {
		c.Cluster.AntiEntropyInterval = -1
		c.Cluster.Memberlist = slowDetection
	})
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	t.Cleanup(fn.Reset)
	// Long enough for the test to let the change through while the read
	// waits (the default is a few milliseconds).
	a.repl.arrivalWait = waitFor

	tok := create(t, b, map[string]any{"n": "1"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", a)
	fn.Freeze("b") // b's next change is sent, not delivered
	tok = update(t, b, tok, map[string]any{"n": "2"})

	done := loadAsync(a, tok)
	require.Eventually(t, func() bool { return a.Stats().FetchWaits == 1 }, waitFor, tick, "the read did not wait")
	fn.Unfreeze("b")
	var err error
	require.Eventually(t, returned(done, &err), waitFor, tick, "the read did not return")
	require.NoError(t, err)
	assert.Equal(t, "2", value(a, tok, "n"))

	sa, sb := a.Stats(), b.Stats()
	assert.EqualValues(t, 1, sa.FetchWaitHits, "the change that arrived did not serve the read")
	assert.Zero(t, sa.Fetches, "the read fetched")
	assert.Zero(t, sb.Replication.FetchesServed, "b was asked for the session")
}
