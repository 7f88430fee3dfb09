package peersession

// Handing sessions over in partitioned mode (handoff.go): a push a holder
// does not acknowledge is pushed again by the rebalance itself, and a
// holder that does not answer holds up no push to any other peer. Real
// memberlist nodes over loopback; anti-entropy off where it could repair
// what the test is about.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peersession/peersession/internal/faultnet"
	"github.com/peersession/peersession/internal/testclock"
	"github.com/peersession/peersession/replicate/placement"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A peer that keeps leaving pushes unacknowledged is sent them again
// after 100 ms, then twice as long each time, up to 5 s, for ever.
func TestRetryBackoffDoublesUpToItsBound(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 6: 3200 * time.Millisecond,
		7: 5 * time.Second, 40: 5 * time.Second, 1000: 5 * time.Second,
	} {
		assert.Equal(t, want, retryAfter(failures), "after %d failed rounds", failures)
	}
}

// underReplicated sums ReplicationStats.UnderReplicated over nodes.
func underReplicated(nodes ...*Store) int64 {
	var n int64
	for _, st := range nodes {
		n += st.Stats().Replication.UnderReplicated
	}
	return n
}

// sessionID returns the session ID of token.
func sessionID(token string) string {
	raw, _ := parseCookie(token)
	return idOf(raw)
}

// createOn creates n sessions, each on one of on in turn, holding
// "n" = its index.
func createOn(t *testing.T, n int, on ...*Store) []string {
	var tokens []string
	for i := range n {
		tokens = append(tokens, create(t, on[i%len(on)], map[string]any{"n": fmt.Sprint(i)}))
	}
	return tokens
}

// requireValues requires each of tokens to read its index on every node.
func requireValues(t *testing.T, tokens []string, nodes ...*Store) {
	t.Helper()
	for _, st := range nodes {
		for i, tok := range tokens {
			require.Equal(t, fmt.Sprint(i), loadValue(t, st, tok, "n"), "session %d on %s", i, st.repl.cfg.Name)
		}
	}
}

// A session pushed to its new holder after a membership change, which the
// holder does not acknowledge, is pushed again by the rebalance itself
// until it is: not left to anti-entropy (off here). The new holder c
// refuses the pushes at first (its clock two minutes behind makes every
// version from the future to it), and takes them once its clock is right.
// Meanwhile the pushers count those sessions in UnderReplicated, and
// every node counts 0 once every session is on its holders again.
func TestPartitionedRebalanceRetriesAPushItsNewHolderRefused(t *testing.T) {
	clk := testclock.New(time.Time{}) // c's clock: the real time of its first reading, then only when set
	tc := newTestCluster(t, func(c *Config) {
		withCopies(2)(c)
		c.Cluster.AntiEntropyInterval = -1 // only the rebalance may repair
		if c.Cluster.Name == "c" {
			c.Now = clk.Now
		}
	})
	nodes := tc.startAll("a", "b", "c", "d", "e")
	c, e, survivors := nodes[2], nodes[4], nodes[:4]
	tokens := createOn(t, 150, nodes[0], nodes[1], nodes[3], nodes[4])
	waitSettled(t, tokens, nodes...)
	assert.Zero(t, underReplicated(nodes...), "settled, yet some session counts as under-replicated")
	after := placement.New(2, []string{"a", "b", "c", "d"})
	toC := 0
	for _, tok := range tokens {
		if holds(e, tok) && !holds(c, tok) && after.Holds("c", sessionID(tok)) {
			toC++
		}
	}
	require.NotZero(t, toC, "no session of e moves to c: pick more sessions")

	clk.Set(time.Now().Add(-2 * time.Minute))
	kill(e)
	tc.waitMembers(4, survivors...)
	require.Eventually(t, func() bool {
		return c.Stats().Replication.Skewed > 0 && underReplicated(survivors...) > 0
	}, waitFor, tick, "c did not refuse the pushes, or nobody counts them")
	t.Logf("%d sessions of e's move to c; c refused %d records; %d sessions under-replicated",
		toC, c.Stats().Replication.Skewed, underReplicated(survivors...))

	clk.Set(time.Now()) // c takes them from now on
	waitSettled(t, tokens, survivors...)
	require.Eventually(t, func() bool { return underReplicated(survivors...) == 0 }, waitFor, tick,
		"every session is on its holders, and still counted under-replicated")
	requireValues(t, tokens, survivors...)
}

// A new holder that refuses one session for good (over its
// MaxSessionBytes) keeps only that one unacknowledged: the sessions pushed
// in the same chunk get through in smaller chunks, and the pusher counts
// just the one under-replicated.
func TestPartitionedRebalanceGetsTheOthersPastASessionItsHolderRefuses(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) {
		withCopies(2)(c)
		c.Cluster.AntiEntropyInterval = -1
		if c.Cluster.Name == "c" {
			c.MaxSessionBytes = 4 << 10
		}
	})
	nodes := tc.startAll("a", "b", "c", "d", "e")
	c, d, e, survivors := nodes[2], nodes[3], nodes[4], nodes[:4]
	before, after := placement.New(2, []string{"a", "b", "c", "d", "e"}), placement.New(2, []string{"a", "b", "c", "d"})
	movesToC := func() string { // a token for a session d pushes to c once e is gone
		for {
			tok := newToken()
			if id := idOf(tok); before.Holds("d", id) && before.Holds("e", id) && after.Holds("c", id) {
				return tok
			}
		}
	}
	createAs := func(tok string, kv map[string]any) string {
		s, err := d.LoadOrCreate(t.Context(), tok)
		require.NoError(t, err)
		for k, v := range kv {
			require.NoError(t, s.Set(k, v))
		}
		return save(t, d, s)
	}
	var tokens []string
	for i := range 12 {
		tokens = append(tokens, createAs(movesToC(), map[string]any{"n": fmt.Sprint(i)}))
	}
	big := createAs(movesToC(), map[string]any{"blob": strings.Repeat("x", 8<<10)})
	all := append(slices.Clone(tokens), big)
	eventuallyEverywhere(t, func(st *Store) bool {
		for _, tok := range all {
			if holdsCopy(st, tok) != holds(st, tok) {
				return false
			}
		}
		return true
	}, "the sessions did not settle", nodes...)

	kill(e)
	tc.waitMembers(4, survivors...)
	killed := time.Now()
	require.Eventually(t, func() bool {
		for _, tok := range tokens {
			if !holdsCopy(c, tok) {
				return false
			}
		}
		return underReplicated(survivors...) == 1
	}, waitFor, tick, "the sessions pushed with the refused one did not get through, or the count is not 1 (%v)",
		lazyText(func() string {
			missing := 0
			for _, tok := range tokens {
				if !holdsCopy(c, tok) {
					missing++
				}
			}
			return fmt.Sprintf("%d under-replicated, %d missing on c", underReplicated(survivors...), missing)
		}))
	t.Logf("%d sessions through to c and the refused one alone under-replicated %v after the kill",
		len(tokens), time.Since(killed).Round(time.Millisecond))
	assert.False(t, holdsCopy(c, big), "c took a session over its MaxSessionBytes")
	assert.EqualValues(t, 1, d.Stats().Replication.UnderReplicated, "d, the pusher, counts another")
	requireValues(t, tokens, survivors...)
	// Gone, so that closing the nodes hands nothing over c refuses (each
	// Close would wait out its 10 s for it).
	require.NoError(t, d.Delete(t.Context(), big))
}

// slowDeath keeps a frozen node a member for much longer than a test: its
// peers suspect it for 20 s at least before they declare it dead.
func slowDeath(m *memberlist.Config) {
	fastTimers(m)
	m.SuspicionMult = 200
}

// A graceful Close hands its sessions over to their holders, and a holder
// that does not answer (frozen, not declared dead) holds up only the
// sessions it holds: the others are handed over and dropped at once,
// however long a wait for the frozen one may last (here longer than the
// test). Once it answers again, the rest follows.
func TestPartitionedHandoverIsNotHeldUpByAFrozenHolder(t *testing.T) {
	fn := faultnet.New(7)
	tc := newFrozenCluster(t, fn)
	nodes := tc.startAll("a", "b", "c", "d", "e")
	a := nodes[0]
	tokens := createOn(t, 200, nodes...)
	waitSettled(t, tokens, nodes...)
	without := placement.New(2, []string{"b", "c", "d", "e"})
	var toE, others []string // a's sessions, by whether e holds them once a is gone
	for _, tok := range tokens {
		switch {
		case !holds(a, tok):
		case without.Holds("e", sessionID(tok)):
			toE = append(toE, tok)
		default:
			others = append(others, tok)
		}
	}
	require.NotEmpty(t, toE, "e holds none of a's sessions: pick more sessions")
	require.NotEmpty(t, others)

	t.Cleanup(fn.Reset)
	fn.Freeze("e")
	handedOver := make(chan struct{})
	go func() {
		defer close(handedOver)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a.repl.handOverAll(ctx)
	}()
	t.Cleanup(func() { fn.Reset(); <-handedOver })

	require.Eventually(t, func() bool {
		for _, tok := range others {
			if holdsCopy(a, tok) {
				return false
			}
		}
		return true
	}, waitFor, tick, "a's sessions that e does not hold were not handed over while e is frozen")
	for _, tok := range toE {
		assert.True(t, holdsCopy(a, tok), "a dropped a session e has not acknowledged")
	}
	for _, tok := range others {
		copies := 0
		for _, st := range nodes[1:4] {
			if holdsCopy(st, tok) {
				copies++
			}
		}
		assert.Equal(t, 2, copies, "a session a handed over is not on its two holders")
	}
	assert.NotZero(t, a.Stats().Replication.UnderReplicated, "e owes a acknowledgements, yet a counts nothing")
	select {
	case <-handedOver:
		t.Fatal("the handover ended while e, a holder, has acknowledged nothing")
	default:
	}

	fn.Unfreeze("e")
	<-handedOver
	assert.Zero(t, a.Len(), "a kept sessions after handing them all over")
	assert.Zero(t, a.Stats().Replication.UnderReplicated)
}

// And the other way: a rebalance push to a holder that does not answer
// holds up neither the pushes to the other new holders nor the handover
// of strays. When a leaves, the rebalance pushes a's sessions to their
// new holders, e among them, frozen; the others get theirs, and a stray
// written meanwhile on w, a node that owes e a push, is handed over and
// dropped, while e has acknowledged nothing.
func TestPartitionedRebalanceIsNotHeldUpByAFrozenHolder(t *testing.T) {
	fn := faultnet.New(8)
	tc := newFrozenCluster(t, fn)
	nodes := tc.startAll("a", "b", "c", "d", "e")
	a, e, survivors := nodes[0], nodes[4], nodes[1:]
	tokens := createOn(t, 300, nodes...)
	waitSettled(t, tokens, nodes...)
	after := placement.New(2, []string{"b", "c", "d", "e"})
	// a's sessions, by whether e is their new holder (those e held with a
	// are left out: frozen e is their only pusher).
	var toE, others []string
	var w *Store // a node that will push one of them to e
	for _, tok := range tokens {
		switch {
		case !holds(a, tok) || holds(e, tok):
		case after.Holds("e", sessionID(tok)):
			toE = append(toE, tok)
			for _, st := range survivors[:3] {
				if w == nil && holds(st, tok) {
					w = st
				}
			}
		default:
			others = append(others, tok)
		}
	}
	require.NotEmpty(t, toE, "e is the new holder of none of a's sessions: pick more sessions")
	var stray string // a session held by neither w, e nor a: w's write makes a stray of it
	for _, tok := range tokens {
		if !holds(a, tok) && !holds(w, tok) && !holds(e, tok) {
			stray = tok
			break
		}
	}
	require.NotEmpty(t, stray)

	t.Cleanup(fn.Reset)
	fn.Freeze("e")
	// a leaves without handing anything over (that is the other test):
	// each of its sessions has one copy left, and the rebalance brings it
	// to two.
	require.NoError(t, a.repl.node.Leave(2*time.Second))
	kill(a)
	require.Eventually(t, func() bool {
		for _, st := range survivors[:3] {
			if len(st.repl.part.view.Load().pl.Names()) != 4 {
				return false
			}
		}
		return true
	}, waitFor, tick, "the others did not see a leave")
	tok := update(t, w, stray, map[string]any{"w": "written on " + w.repl.cfg.Name})
	require.True(t, holdsCopy(w, tok), "the write left no stray")

	require.Eventually(t, func() bool {
		for _, tok := range others {
			for _, st := range survivors[:3] {
				if holds(st, tok) && !holdsCopy(st, tok) {
					return false
				}
			}
		}
		return !holdsCopy(w, tok) && w.repl.straysWaiting() == 0
	}, waitFor, tick, "the pushes to the other holders, or %s's stray, waited for frozen e", w.repl.cfg.Name)
	require.NotZero(t, w.Stats().Replication.UnderReplicated, "e owes w, yet w counts nothing")

	fn.Unfreeze("e")
	waitSettled(t, tokens, survivors...)
	require.Eventually(t, func() bool { return underReplicated(survivors...) == 0 }, waitFor, tick)
	requireValues(t, tokens, survivors...)
	assert.Equal(t, "written on "+w.repl.cfg.Name, loadValue(t, e, tok, "w"))
}

// newFrozenCluster is a fault cluster in partitioned mode whose nodes
// declare a frozen node dead only after the test (slowDeath), and whose
// pushes wait for an acknowledgement longer than the test too: so a push
// held up by a frozen node stays held up.
func newFrozenCluster(t *testing.T, fn *faultnet.Net) *testCluster {
	tc := newFaultCluster(t, fn, func(c *Config) {
		withCopies(2)(c)
		c.Cluster.AntiEntropyInterval = -1
		c.Cluster.Memberlist = slowDeath
	})
	faults := tc.hooks
	tc.hooks = func(name string) hooks {
		h := faults(name)
		h.handoverWait = time.Hour
		return h
	}
	return tc
}
