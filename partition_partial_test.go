package peersession

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Review #8's loss, end to end: a Sync write whose co-holder has only part
// of the session (a change with no session under it, as on a new holder
// the rebalance has not reached yet) survives its writer dying right after
// Save returns, before any push lands. The partial copy is no ack, so a
// stand-in took the whole session; once the writer is declared dead, the
// session is read whole on every node, and its holders under the new
// placement end with whole copies of it.
func TestPartitionedSyncWriteSurvivesItsWriterDyingBesideAPartialCopy(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2), noAntiEntropy, func(c *Config) { c.Cluster.Consistency = Sync })
	c, d := nodes[2], nodes[3]
	tok, id := settledOn(t, c, nodes, c, d)
	require.True(t, d.dropStray(id, d.shards.get(id)), "d's copy changed") // d lacks it, as a new holder would

	require.NoError(t, put(t.Context(), c, tok, "n", "new"))
	kill(c) // before its own rebalance or handover could push anything
	survivors := []*Store{nodes[0], nodes[1], d, nodes[4]}
	eventuallyEverywhere(t, func(st *Store) bool { return alive(st) == 4 }, "c was not declared dead", survivors...)

	for _, st := range survivors {
		assert.Equal(t, "new", loadValue(t, st, tok, "n"), "the Sync write is lost on %s", st.repl.cfg.Name)
	}
	eventuallyEverywhere(t, func(st *Store) bool {
		if !holds(st, tok) {
			return true
		}
		e := st.lookup(id)
		return e != nil && !e.partial() && entryValue(st, e, "n") == "new"
	}, "a holder under the new placement has no whole copy", survivors...)
	waitSettled(t, []string{tok}, survivors...)
}
