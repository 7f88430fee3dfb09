package peersession

import (
	"testing"

	"github.com/peersession/peersession/internal/faultnet"
)

// The set-up most partitioned-mode tests share: five nodes, so that a
// session has two holders and three nodes that hold nothing of it, and a
// session settled on the holders a test wants.

// fiveNodes starts nodes "a" to "e" in partitioned mode with two copies
// of each session (at the default FetchTimeout: withCopies(2) among opts
// for the longer one), opts applied in order, and waits until each sees
// all five. With fn, they talk through its faulty network, whose faults
// are cleared when the test ends, before the nodes close.
func fiveNodes(t *testing.T, fn *faultnet.Net, opts ...func(*Config)) []*Store {
	t.Helper()
	configure := func(c *Config) {
		c.Cluster.Copies = 2
		for _, o := range opts {
			o(c)
		}
	}
	var tc *testCluster
	if fn == nil {
		tc = newTestCluster(t, configure)
	} else {
		tc = newFaultCluster(t, fn, configure)
	}
	nodes := tc.startAll("a", "b", "c", "d", "e")
	if fn != nil {
		t.Cleanup(fn.Reset)
	}
	return nodes
}

// settledOn creates a session on st held by the two nodes want (of
// nodes), waits until it is on them and nowhere else, and returns its
// cookie value and ID.
func settledOn(t *testing.T, st *Store, nodes []*Store, want ...*Store) (tok, id string) {
	t.Helper()
	tok = sessionHeldBy(t, st, nodes, want...)
	waitSettled(t, []string{tok}, nodes...)
	raw, _ := parseCookie(tok)
	return tok, idOf(raw)
}
