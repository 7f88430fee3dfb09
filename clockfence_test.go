package peersession

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A node's clock is off by 2 minutes, and its peers' are right: the rule
// is that a node more than a minute from a strict majority of its measured
// peers is fenced, from its only peer in a pair.
func TestJudgeClock(t *testing.T) {
	const m = time.Minute
	for _, c := range []struct {
		name    string
		offsets map[string]time.Duration
		fenced  bool
		skew    time.Duration
	}{
		{"no peer measured", nil, false, 0},
		{"one peer, within", map[string]time.Duration{"a": 30 * time.Second}, false, 0},
		{"one peer, exactly the bound", map[string]time.Duration{"a": -m}, false, 0},
		{"one peer, ahead", map[string]time.Duration{"a": 2 * m}, true, -2 * m},
		{"one peer, behind", map[string]time.Duration{"a": -2 * m}, true, 2 * m},
		{"both peers off: this node is", map[string]time.Duration{"a": -2 * m, "b": -2 * m}, true, 2 * m},
		{"one of two peers off: not a majority", map[string]time.Duration{"a": -2 * m, "b": 0}, false, 0},
		{"two of three", map[string]time.Duration{"a": 2 * m, "b": 3 * m, "c": 0}, true, -2 * m},
		{"two of four: not a strict majority", map[string]time.Duration{"a": 2 * m, "b": 3 * m, "c": 0, "d": 0}, false, 0},
	} {
		v := judgeClock(c.offsets, m)
		if !c.fenced {
			assert.Nil(t, v, c.name)
			continue
		}
		if assert.NotNil(t, v, c.name) {
			assert.Equal(t, c.skew, v.skew, c.name)
			assert.ErrorIs(t, v.err(), ErrClockSkew)
			assert.Contains(t, v.err().Error(), "fix its time sync (NTP)")
		}
	}
}

// shiftable is a wall clock running a settable offset from the real one.
type shiftable struct{ by atomic.Int64 }

func (s *shiftable) Now() time.Time { return time.Now().Add(time.Duration(s.by.Load())) }

// clockCluster starts nodes a, b and c, c's clock running clockC's offset
// from the others'.
func clockCluster(t *testing.T, clockC *shiftable, names ...string) []*Store {
	tc := newTestCluster(t, func(cfg *Config) {
		if cfg.Cluster.Name == "c" {
			cfg.Now = clockC.Now
		}
	})
	return tc.startAll(names...)
}

func fenced(st *Store) bool { return st.Stats().Replication.ClockFenced }

// waitMeasured waits until st has measured the clock of each of its n
// peers, and its fence has been judged twice since.
func waitMeasured(t *testing.T, st *Store, n int) map[string]time.Duration {
	t.Helper()
	var offs map[string]time.Duration
	require.Eventually(t, func() bool {
		offs = st.repl.node.ClockOffsets()
		return len(offs) == n
	}, waitFor, tick)
	r0 := st.repl.fence.rounds.Load()
	require.Eventually(t, func() bool { return st.repl.fence.rounds.Load() >= r0+2 }, waitFor, tick)
	return offs
}

// readyCode is what st's ReadyHandler answers, and its body.
func readyCode(st *Store) (int, string) {
	rec := httptest.NewRecorder()
	st.ReadyHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	return rec.Code, rec.Body.String()
}

// newestStamp is the newest version any record st holds was stamped with.
func newestStamp(st *Store) time.Time {
	var newest int64
	st.shards.each(func(e *entry) bool {
		newest = max(newest, e.rec.MaxVersion().Wall)
		return true
	})
	return time.Unix(0, newest)
}

func TestNodeWithClockFarAheadStopsTakingWritesAndTheOthersGoOn(t *testing.T) {
	var clockC shiftable
	clockC.by.Store(int64(2 * time.Minute))
	nodes := clockCluster(t, &clockC, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()

	// A session written before c is fenced (the window of a probe cycle
	// or two) would be refused by the others: write only once it is.
	require.Eventually(t, func() bool { return fenced(c) }, waitFor, tick, "c never noticed its clock")

	// c refuses every write, before applying it.
	_, err := c.Save(ctx, sessionWith(t, c, "k", "v"))
	require.ErrorIs(t, err, ErrClockSkew)
	assert.Equal(t, http.StatusServiceUnavailable, StatusCode(err))
	assert.Contains(t, err.Error(), "ahead of its peers'")
	assert.Contains(t, err.Error(), "NTP")
	code, body := readyCode(c)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "clock")
	assert.Zero(t, c.Len(), "nothing applied")

	// a and b keep taking writes and replicating them to each other and
	// to c, whose reads keep working.
	waitMeasured(t, a, 2)
	waitMeasured(t, b, 2)
	assert.False(t, fenced(a))
	assert.False(t, fenced(b))
	code, _ = readyCode(a)
	assert.Equal(t, http.StatusOK, code)
	tokA := savedSession(t, a, "from", "a")
	tokB := savedSession(t, b, "from", "b")
	for _, tok := range []string{tokA, tokB} {
		for _, st := range nodes {
			waitValue(t, st, tok, "from")
		}
	}
	s, err := c.Load(ctx, tokA)
	require.NoError(t, err)
	_, err = c.Save(ctx, s) // a read: its touch is dropped, not refused
	require.NoError(t, err)

	// Every kind of write through c fails, and ends nothing.
	s, err = c.Load(ctx, tokB)
	require.NoError(t, err)
	require.NoError(t, s.Set("k", "v"))
	_, err = c.Save(ctx, s)
	assert.ErrorIs(t, err, ErrClockSkew, "Set")
	for name, change := range map[string]func(*Session) error{
		"SetPrincipal": func(s *Session) error { return s.SetPrincipal("alice") },
		"RenewID":      (*Session).RenewID,
		"Destroy":      (*Session).Destroy,
	} {
		s, err := c.Load(ctx, tokB)
		require.NoError(t, err)
		require.NoError(t, change(s))
		_, err = c.Save(ctx, s)
		assert.ErrorIs(t, err, ErrClockSkew, name)
	}
	assert.ErrorIs(t, c.Delete(ctx, tokA), ErrClockSkew)
	sa, err := a.Load(ctx, tokA)
	require.NoError(t, err)
	require.NoError(t, sa.SetPrincipal("bob"))
	save(t, a, sa)
	require.Eventually(t, func() bool { return len(c.PrincipalSessions("bob")) == 1 }, waitFor, tick)
	_, err = c.DestroyPrincipal(ctx, "bob")
	assert.ErrorIs(t, err, ErrClockSkew)
	assert.Len(t, a.PrincipalSessions("bob"), 1)

	// The offsets show in the peer stats and the status JSON.
	ps := a.Stats().Replication.Peers
	assert.InDelta(t, 2*time.Minute, ps["c"].ClockOffset, float64(time.Second))
	assert.InDelta(t, 0, ps["b"].ClockOffset, float64(time.Second))
	view := jsonView(reflect.ValueOf(c.Stats())).(map[string]any)["replication"].(map[string]any)
	assert.Equal(t, true, view["clock_fenced"])
	peerA := view["peers"].(map[string]any)["a"].(map[string]any)
	assert.InDelta(t, -120.0, peerA["clock_offset_seconds"], 1.0)
	assert.Contains(t, peerA, "queue_depth", "the engine's figures beside it")

	// No record anywhere is stamped in the future.
	for _, st := range nodes {
		assert.False(t, newestStamp(st).After(time.Now().Add(time.Second)), "a record from the future")
	}

	// c's clock is set right: it takes writes again, and they replicate.
	clockC.by.Store(0)
	require.Eventually(t, func() bool { return !fenced(c) }, waitFor, tick, "c stayed fenced")
	code, _ = readyCode(c)
	assert.Equal(t, http.StatusOK, code)
	tokC := savedSession(t, c, "from", "c")
	waitValue(t, a, tokC, "from")
	waitValue(t, b, tokC, "from")
}

// Within the bound nothing is fenced: peers accept records 30 s ahead.
func TestClockWithinTheBoundFencesNothing(t *testing.T) {
	var clockC shiftable
	clockC.by.Store(int64(30 * time.Second))
	nodes := clockCluster(t, &clockC, "a", "b", "c")
	offs := waitMeasured(t, nodes[0], 2)
	assert.InDelta(t, 30*time.Second, offs[nodes[2].repl.node.Self().ID], float64(time.Second))
	for _, st := range nodes[1:] {
		waitMeasured(t, st, 2)
	}
	for _, st := range nodes {
		assert.False(t, fenced(st), st.repl.cfg.Name)
	}
	tok := savedSession(t, nodes[2], "from", "c")
	waitValue(t, nodes[0], tok, "from")
	waitValue(t, nodes[1], tok, "from")
}

// In a pair, neither node can tell whose clock is wrong: both are fenced.
func TestPairWithOneWrongClockFencesBoth(t *testing.T) {
	var clockC shiftable
	clockC.by.Store(int64(-2 * time.Minute))
	nodes := clockCluster(t, &clockC, "a", "c")
	for _, st := range nodes {
		require.Eventually(t, func() bool { return fenced(st) }, waitFor, tick, st.repl.cfg.Name)
		_, err := st.Save(context.Background(), sessionWith(t, st, "k", "v"))
		assert.ErrorIs(t, err, ErrClockSkew)
	}
	_, err := nodes[1].Save(context.Background(), sessionWith(t, nodes[1], "k", "v"))
	assert.Contains(t, err.Error(), "behind its peers'")
	assert.False(t, errors.Is(err, ErrNotReplicated))
}

// waitValue waits until st holds session tok with key set.
func waitValue(t *testing.T, st *Store, tok, key string) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err := st.Load(context.Background(), tok)
		if err != nil {
			return false
		}
		var v string
		found, err := s.Get(key, &v)
		return err == nil && found
	}, waitFor, tick, "session never reached %s", st.repl.cfg.Name)
}
