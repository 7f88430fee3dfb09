package peersession

// Integration tests of replication: real memberlist nodes and real Noise
// streams over loopback, failure detection tuned to well under a second,
// every wait a condition (require.Eventually), never a fixed sleep.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteOnOneNodeIsReadableOnAll(t *testing.T) {
	eachMode(t, func(t *testing.T, opts func(*Config)) {
		tc := newTestCluster(t, opts)
		nodes := tc.startAll("a", "b", "c")
		a, b, c := nodes[0], nodes[1], nodes[2]

		tok := create(t, a, map[string]any{"user": "alice"})
		eventuallyEverywhere(t, func(st *Store) bool { return value(st, tok, "user") == "alice" }, "write on a not on b and c", b, c)

		tok = update(t, b, tok, map[string]any{"cart": "apple"})
		eventuallyEverywhere(t, func(st *Store) bool { return value(st, tok, "cart") == "apple" }, "update on b not on a and c", a, c)
		eventuallyEverywhere(t, func(st *Store) bool { return holdsCopy(st, tok) == holds(st, tok) }, "copies where the session is not held", a, b, c)
	})
}

func TestDestroyOnOneNodeIsGoneEverywhere(t *testing.T) {
	eachMode(t, func(t *testing.T, opts func(*Config)) {
		tc := newTestCluster(t, opts)
		nodes := tc.startAll("a", "b", "c")
		a, b, c := nodes[0], nodes[1], nodes[2]
		tok := create(t, a, map[string]any{"user": "alice"})
		eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", b, c)

		require.NoError(t, b.Delete(t.Context(), tok))
		eventuallyEverywhere(t, func(st *Store) bool { return !has(st, tok) && !holdsCopy(st, tok) }, "destroy on b not seen", a, b, c)
		assert.Equal(t, 0, a.Len())
	})
}

func TestRenewIDLeavesOldIDDeadEverywhere(t *testing.T) {
	eachMode(t, func(t *testing.T, opts func(*Config)) {
		tc := newTestCluster(t, opts)
		nodes := tc.startAll("a", "b", "c")
		a, b, c := nodes[0], nodes[1], nodes[2]
		old := create(t, a, map[string]any{"cart": "pear"})
		eventuallyEverywhere(t, func(st *Store) bool { return has(st, old) }, "not replicated", c)

		s, err := c.Load(t.Context(), old)
		require.NoError(t, err)
		s.RenewID()
		require.NoError(t, s.SetPrincipal("alice"))
		renewed, err := c.Save(t.Context(), s)
		require.NoError(t, err)

		// Each node indexes the principal's sessions it holds: all of
		// them in full replication.
		eventuallyEverywhere(t, func(st *Store) bool {
			indexed := 0
			if holds(st, renewed) {
				indexed = 1
			}
			return !has(st, old) && value(st, renewed, "cart") == "pear" && len(st.PrincipalSessions("alice")) == indexed
		}, "renew on c not seen everywhere", a, b, c)
	})
}

func TestConcurrentWritesToDifferentKeysBothSurvive(t *testing.T) {
	eachMode(t, testConcurrentWritesToDifferentKeysBothSurvive)
}

func testConcurrentWritesToDifferentKeysBothSurvive(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, opts)
	nodes := tc.startAll("a", "b", "c")
	a, b := nodes[0], nodes[1]
	tok := create(t, a, map[string]any{"start": "x"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", b)

	// Both load the same version, then each changes its own key.
	sa, err := a.Load(t.Context(), tok)
	require.NoError(t, err)
	sb, err := b.Load(t.Context(), tok)
	require.NoError(t, err)
	require.NoError(t, sa.Set("from-a", "1"))
	require.NoError(t, sb.Set("from-b", "2"))
	var wg sync.WaitGroup
	for _, p := range []struct {
		st *Store
		s  *Session
	}{{a, sa}, {b, sb}} {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := p.st.Save(context.Background(), p.s); assert.NoError(t, err) }()
	}
	wg.Wait()
	eventuallyEverywhere(t, func(st *Store) bool {
		return value(st, tok, "from-a") == "1" && value(st, tok, "from-b") == "2"
	}, "a write to a different key was lost", nodes...)
}

func TestConcurrentWritesToSameKeyEndWithOneWinner(t *testing.T) {
	eachMode(t, testConcurrentWritesToSameKeyEndWithOneWinner)
}

func testConcurrentWritesToSameKeyEndWithOneWinner(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, opts)
	nodes := tc.startAll("a", "b", "c")
	tok := create(t, nodes[0], map[string]any{"k": "start"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", nodes...)

	var wg sync.WaitGroup
	for i, st := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				s, err := st.Load(context.Background(), tok)
				if !assert.NoError(t, err) {
					return
				}
				_ = s.Set("k", fmt.Sprintf("node%d-%d", i, j))
				_, err = st.Save(context.Background(), s)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	eventuallyEverywhere(t, func(st *Store) bool {
		return value(st, tok, "k") == value(nodes[0], tok, "k")
	}, "nodes disagree on the winner", nodes...)
	assert.Regexp(t, `node\d-19`, value(nodes[0], tok, "k"), "the winner is a last write of some node")
}

// Values of any msgpack-encodable type replicate, extension types (a
// time.Time) included.
func TestTypedValuesReplicate(t *testing.T) {
	eachMode(t, testTypedValuesReplicate)
}

func testTypedValuesReplicate(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, opts)
	nodes := tc.startAll("a", "b", "c")
	when := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	type cart struct{ Items []string }
	tok := create(t, nodes[0], map[string]any{"when": when, "cart": cart{Items: []string{"apple"}}})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", nodes[1])
	s, err := nodes[1].Load(t.Context(), tok)
	require.NoError(t, err)
	var gotWhen time.Time
	var gotCart cart
	_, err = s.Get("when", &gotWhen)
	require.NoError(t, err)
	_, err = s.Get("cart", &gotCart)
	require.NoError(t, err)
	assert.True(t, when.Equal(gotWhen))
	assert.Equal(t, []string{"apple"}, gotCart.Items)
	assert.Zero(t, nodes[1].Stats().Refused)
}
