package peersession

// A peer that stops answering before memberlist declares it dead: killed
// (its kernel closes its streams at once) or frozen (TCP still accepts,
// nothing answers). A read that must fetch does not wait on the killed
// one at all, and on the frozen one once. Failure detection is slowed down
// here, so that the peer stays a live member for the whole test: these
// are the seconds before the verdict.

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/faultnet"
)

// slowDetection is fastTimers with failure detection too slow to declare
// any node dead during a test.
func slowDetection(c *memberlist.Config) {
	fastTimers(c)
	c.ProbeInterval = time.Minute
}

// newerStamp returns tok with a version stamp just past its own: a client
// that has seen a later write than the one tok was issued for, so a read
// fetches unless that write arrives. The stamp is MAC'd as the test
// cluster's nodes MAC theirs (testKey).
func newerStamp(tok string) string {
	t, stamp := parseCookie(tok)
	return signedValue(t, stamp+1)
}

// loadAsync loads token on st in a goroutine; the channel gets the error.
func loadAsync(st *Store, token string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := st.Load(context.Background(), token)
		done <- err
	}()
	return done
}

// returned reports whether done has a value, keeping it in *err.
func returned(done <-chan error, err *error) func() bool {
	return func() bool {
		select {
		case *err = <-done:
			return true
		default:
			return false
		}
	}
}

// TestKilledPeerIsNotWaitedOn: of three nodes one is killed, and is still
// a live member for the others. A read on a survivor that must fetch gets
// the survivor's answer without waiting on the dead peer: the peer's
// stream closed, so a fetch does not wait for it, although FetchTimeout is
// a minute here.
//
// In partitioned mode (two copies of three) the session is held by a and
// the killed c, so that a's fetch goes to c.
func TestKilledPeerIsNotWaitedOn(t *testing.T) {
	eachMode(t, testKilledPeerIsNotWaitedOn)
}

func testKilledPeerIsNotWaitedOn(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, func(c *Config) {
		opts(c)
		c.Cluster.FetchTimeout = time.Minute
		c.Cluster.Memberlist = slowDetection
	})
	nodes := tc.startAll("a", "b", "c")
	a, c := nodes[0], nodes[2]
	var tok string
	if a.part.Load() == nil {
		tok = create(t, a, map[string]any{"k": "v"})
		eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", nodes...)
	} else {
		tok, _ = settledOn(t, a, nodes, a, c)
		// c stays a live member to the end: a graceful Close of a or b
		// would wait out its handover to c. Their process dies instead.
		t.Cleanup(func() { kill(a); kill(nodes[1]) })
	}

	kill(c)
	var err error
	require.Eventually(t, returned(loadAsync(a, newerStamp(tok)), &err), waitFor, tick,
		"the read waited on the killed peer")
	require.NoError(t, err)

	s := a.Stats()
	assert.EqualValues(t, 1, s.Fetches)
	assert.Zero(t, s.Replication.FetchTimeouts, "a fetch waited on the killed peer until its deadline")
	assert.True(t, s.Replication.Peers["c"].Unresponsive, "the killed peer's lost stream went unnoticed")
	assert.Equal(t, 3, alive(a), "c was declared dead meanwhile: the test proves nothing")
}

// TestFrozenPeerCostsOneFetchTimeout: of three nodes one freezes (TCP
// accepts, nothing answers). The first read on a survivor that fetches
// waits FetchTimeout for it; later ones do not ask it (but for a probe)
// until it answers again, after it thaws.
//
// In partitioned mode (two copies of three) the session is held by a and
// the frozen c, so that a's fetch goes to c.
func TestFrozenPeerCostsOneFetchTimeout(t *testing.T) {
	eachMode(t, testFrozenPeerCostsOneFetchTimeout)
}

func testFrozenPeerCostsOneFetchTimeout(t *testing.T, opts func(*Config)) {
	fn := faultnet.New(18)
	tc := newFaultCluster(t, fn, func(c *Config) {
		opts(c)
		c.Cluster.FetchTimeout = 200 * time.Millisecond
		c.Cluster.AntiEntropyInterval = -1 // c sends nothing unasked
		c.Cluster.Memberlist = slowDetection
	})
	nodes := tc.startAll("a", "b", "c")
	a := nodes[0]
	t.Cleanup(fn.Reset)
	var tok string
	if a.part.Load() == nil {
		tok = create(t, a, map[string]any{"k": "v"})
		eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", nodes...)
	} else {
		tok, _ = settledOn(t, a, nodes, a, nodes[2])
	}
	require.Eventually(t, func() bool {
		p := a.Stats().Replication.Peers["c"]
		return p.Sent > 0 && p.Acked == p.Sent
	}, waitFor, tick, "c did not acknowledge")

	fn.Freeze("c")
	newer := newerStamp(tok)
	load := func() {
		t.Helper()
		_, err := a.Load(t.Context(), newer)
		require.NoError(t, err)
	}
	repl := func() *ReplicationStats { return a.Stats().Replication }
	// The first read waits out FetchTimeout on c (a frame c sent before
	// the freeze may reach a after a read began: then the next one does).
	require.Eventually(t, func() bool { load(); return repl().FetchTimeouts > 0 }, waitFor, tick, "no fetch waited on c")
	require.EqualValues(t, 1, repl().FetchTimeouts)
	fetches, skips := a.Stats().Fetches, repl().FetchSkips

	const reads = 20
	for range reads {
		load()
	}
	assert.EqualValues(t, 1, repl().FetchTimeouts, "a fetch waited on the frozen peer again")
	// Each read skips c once, or in partitioned mode twice: a read whose
	// stamp no copy reaches asks the holders again after the other nodes
	// (fetchstamped.go), and c is a holder.
	skipsPerRead := uint64(1)
	if a.part.Load() != nil {
		skipsPerRead = 2
	}
	assert.Equal(t, fetches+reads, a.Stats().Fetches)
	assert.Equal(t, skips+reads*skipsPerRead, repl().FetchSkips)
	assert.True(t, repl().Peers["c"].Unresponsive)
	assert.Equal(t, 3, alive(a), "c was declared dead meanwhile: the test proves nothing")

	// Thawed, c answers what it was sent, and is waited for again.
	fn.Unfreeze("c")
	require.Eventually(t, func() bool { return !repl().Peers["c"].Unresponsive }, waitFor, tick, "c not heard after it thawed")
	skips = repl().FetchSkips
	load()
	assert.Equal(t, skips, repl().FetchSkips)
	assert.EqualValues(t, 1, repl().FetchTimeouts)
}
