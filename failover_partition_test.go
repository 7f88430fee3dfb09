package peersession

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFailoverPartitionHeals: {a} | {b, c} while both sides write
// (different keys and the same keys of the same sessions), one side
// destroys a session the other updates, and a session expires; after the
// heal all three hold identical state, nothing destroyed or expired is
// back.
func TestFailoverPartitionHeals(t *testing.T) {
	eachMode(t, testFailoverPartitionHeals)
}

func testFailoverPartitionHeals(t *testing.T, copies func(*Config)) {
	clk := newFakeClock()
	fn := faultnet.New(2)
	tc := newFaultCluster(t, fn, func(c *Config) {
		copies(c)
		c.Now = clk.Now
		c.IdleTimeout = 10 * time.Minute
		c.TouchInterval = time.Minute
		c.SweepInterval = 20 * time.Millisecond
	})
	nodes := tc.startAll("a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	t.Cleanup(fn.Reset) // before the nodes close

	const shared = 10
	toks := make([]string, shared)
	for i := range toks {
		toks[i] = create(t, nodes[i%3], map[string]any{"start": fmt.Sprint(i)})
	}
	// In partitioned mode, a alone during the partition can serve only
	// the sessions it holds a copy of (about two thirds): a session whose
	// holders are both on the other side is not found there, as no node
	// that is cut off from every holder of a session can serve it. b and c
	// together hold a copy of every session.
	// (Who holds what is judged now, with all three up.)
	held := map[string]bool{}
	for _, tok := range toks {
		held[tok] = holds(a, tok)
	}
	aHolds := func(tok string) bool { return held[tok] }
	destroyed := create(t, c, map[string]any{"doomed": "yes"})
	for !holds(a, destroyed) { // one a can destroy while cut off
		destroyed = create(t, c, map[string]any{"doomed": "yes"})
	}
	expiring := create(t, b, map[string]any{"idle": "yes"})
	// Every node has a copy of exactly the sessions it holds (all of
	// them in full replication): none is left where it was written.
	all := append(slices.Clone(toks), destroyed, expiring)
	eventuallyEverywhere(t, func(st *Store) bool {
		for _, tok := range all {
			if holdsCopy(st, tok) != holds(st, tok) {
				return false
			}
		}
		return true
	}, "not replicated", nodes...)

	fn.Partition([]string{"a"}, []string{"b", "c"})
	tc.waitMembers(1, a)
	tc.waitMembers(2, b, c)

	// Both sides write, six minutes on (every write also records the
	// access, so these sessions stay alive).
	clk.Advance(6 * time.Minute)
	ctx := t.Context()
	onA := func(tok, key, val string) {
		t.Helper()
		err := put(ctx, a, tok, key, val)
		if aHolds(tok) {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, ErrNotFound, "a reached a session whose holders are all cut off")
		}
	}
	for i, tok := range toks {
		onA(tok, "a", fmt.Sprint(i))
		require.NoError(t, put(ctx, nodes[1+i%2], tok, "bc", fmt.Sprint(i)))
		onA(tok, "same", "a")
		require.NoError(t, put(ctx, nodes[1+i%2], tok, "same", "bc"))
	}
	require.NoError(t, a.Delete(ctx, destroyed))
	require.NoError(t, put(ctx, b, destroyed, "doomed", "updated after the destroy"))

	// Twelve minutes on, the idle session has expired everywhere; both
	// sides write again.
	clk.Advance(6 * time.Minute)
	for i, tok := range toks {
		onA(tok, "a2", fmt.Sprint(i))
		require.NoError(t, put(ctx, nodes[1+i%2], tok, "bc2", fmt.Sprint(i)))
	}
	idleID := idOf(func() string { t, _ := parseCookie(expiring); return t }())
	eventuallyEverywhere(t, func(st *Store) bool { return !has(st, expiring) && st.shards.get(idleID) == nil },
		"the idle session was not swept", nodes...)
	if a.part.Load() == nil { // (partitioned, each side places on itself alone: no session is shared across)
		require.False(t, sameDigests(nodes...), "the partition changed nothing")
	}

	fn.Heal()
	start := time.Now()
	tc.waitMembers(3, nodes...)
	joined := time.Since(start)
	var why string
	took := eventually(t, func() bool {
		if !sameDigests(nodes...) {
			why = "digests differ"
			return false
		}
		for _, st := range nodes {
			for i, tok := range toks {
				fromA := fmt.Sprint(i) // what a wrote, if it could
				if !aHolds(tok) {
					fromA = ""
				}
				got := []string{value(st, tok, "a"), value(st, tok, "bc"), value(st, tok, "a2"), value(st, tok, "bc2")}
				if want := []string{fromA, fmt.Sprint(i), fromA, fmt.Sprint(i)}; !slices.Equal(got, want) {
					why = fmt.Sprintf("session %d on %s: a, bc, a2, bc2 = %q, want %q", i, st.repl.cfg.Name, got, want)
					return false
				}
			}
		}
		return true
	}, "nodes did not converge after the heal: %v", lazyText(func() string { return why }))
	t.Logf("after the heal: members in %v, identical digests in %v", joined.Round(time.Millisecond), took.Round(time.Millisecond))

	for _, st := range nodes {
		assert.False(t, has(st, destroyed), "the destroyed session came back")
		assert.False(t, has(st, expiring), "the expired session came back")
		for _, tok := range toks {
			assert.Equal(t, value(a, tok, "same"), value(st, tok, "same"), "nodes disagree on a key written on both sides")
		}
	}
	if a.part.Load() == nil {
		assert.Equal(t, shared, a.Len())
	}
	t.Logf("faults: %+v", fn.Stats())
}
