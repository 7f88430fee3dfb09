package peersession

import (
	"context"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testlog"
)

// A node's clock is off by 2 minutes, and its peers' are right: the rule
// is that a node more than a minute from a strict majority of its measured
// peers is fenced, from its only peer in a pair; a node that has measured
// no peer is not judged (WaitReady waits for one).
func TestJudgeClock(t *testing.T) {
	const m = time.Minute
	type offs = map[string]time.Duration
	for _, c := range []struct {
		name     string
		offsets  offs
		steps    offs          // this node's clock stepped since each was measured
		lead     time.Duration // the hybrid clock ahead of the wall clock
		fenced   bool
		ahead    time.Duration
		stamping bool
	}{
		{name: "no peer measured"},
		{name: "no peer measured, stamps far ahead", lead: 2 * m},
		{name: "one peer, within", offsets: offs{"a": 30 * time.Second}},
		{name: "one peer, exactly the bound", offsets: offs{"a": -m}},
		{name: "the peer ahead", offsets: offs{"a": 2 * m}, fenced: true, ahead: -2 * m},
		{name: "the peer behind", offsets: offs{"a": -2 * m}, fenced: true, ahead: 2 * m},
		{name: "both peers off: this node is", offsets: offs{"a": -2 * m, "b": -2 * m}, fenced: true, ahead: 2 * m},
		{name: "one of two peers off: not a majority", offsets: offs{"a": -2 * m, "b": 0}},
		{name: "two of three", offsets: offs{"a": 2 * m, "b": 3 * m, "c": 0}, fenced: true, ahead: -2 * m},
		{name: "two of four: not a strict majority", offsets: offs{"a": 2 * m, "b": 3 * m, "c": 0, "d": 0}},
		// Only the measured peers count: a node that has measured only a
		// wrong clock yet, or whose own clock was stepped before it
		// measured the rest, is fenced until it measures another.
		{name: "one of three peers measured, off", offsets: offs{"a": 2 * m}, fenced: true, ahead: -2 * m},
		// A peer measured before this node's clock was stepped by more
		// than the bound counts as off until it is measured again: its
		// own clock may have been stepped too since (chaos harness: a
		// peer set right just before this node's step).
		{name: "stepped ahead, one sample stale", offsets: offs{"a": -91 * time.Second, "b": time.Second}, steps: offs{"a": 91 * time.Second, "b": 91 * time.Second}, fenced: true, ahead: -time.Second},
		{name: "set right, not measured since", offsets: offs{"a": 0, "b": 0}, steps: offs{"a": -91 * time.Second, "b": -91 * time.Second}, fenced: true},
		{name: "set right, one measured since", offsets: offs{"a": 0, "b": 0, "c": 0}, steps: offs{"a": -91 * time.Second}},
		{name: "stepped within the bound", offsets: offs{"a": 0, "b": 0}, steps: offs{"a": 30 * time.Second, "b": 30 * time.Second}},
		// The clock was ahead, wrote, and was set right: its next
		// versions are still ahead of its peers' clocks.
		{name: "stamps ahead, clock right", offsets: offs{"a": 0, "b": 0}, lead: 2 * m, fenced: true, ahead: 2 * m, stamping: true},
		{name: "stamps ahead within the bound", offsets: offs{"a": 0, "b": 0}, lead: 30 * time.Second},
		{name: "stamps ahead of a clock behind: caught up with the peers'", offsets: offs{"a": 2 * m, "b": 2 * m}, lead: 2 * m, fenced: true, ahead: -2 * m},
	} {
		clocks := make(map[string]cluster.PeerClock)
		for id, d := range c.offsets {
			clocks[id] = cluster.PeerClock{Offset: d, Step: c.steps[id]}
		}
		v := judgeClock(clocks, c.lead, m)
		if !c.fenced {
			assert.Nil(t, v, c.name)
			continue
		}
		if assert.NotNil(t, v, c.name) {
			assert.Equal(t, c.ahead, v.ahead(), c.name)
			assert.Equal(t, c.stamping, v.stamping(), c.name)
			assert.ErrorIs(t, v.err(), ErrClockSkew)
			assert.Contains(t, v.err().Error(), "time sync (NTP)")
		}
	}
}

// shiftable is a wall clock running a settable offset from the real one.
type shiftable struct{ by atomic.Int64 }

func (s *shiftable) Now() time.Time { return time.Now().Add(time.Duration(s.by.Load())) }

// clockCluster starts the named nodes, c's clock running clockC's offset
// from the others', c logging to logs.
func clockCluster(t *testing.T, clockC *shiftable, logs *testlog.Buffer, names ...string) []*Store {
	tc := newTestCluster(t, func(cfg *Config) {
		if cfg.Cluster.Name == "c" {
			cfg.Now = clockC.Now
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
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
	var logs testlog.Buffer
	nodes := clockCluster(t, &clockC, &logs, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()

	// c was judged before it reported ready: fenced before any write.
	require.True(t, fenced(c), "c is fenced once WaitReady returns")
	const fencedLine, liftedLine = "clock-fenced: this node refuses writes", "clock fence lifted"
	require.Eventually(t, func() bool { return logs.Count(fencedLine) == 1 }, waitFor, tick, "c said it is fenced")

	// c refuses every write, before applying it.
	_, err := c.Save(ctx, sessionWith(t, c, "k", "v"))
	require.ErrorIs(t, err, ErrClockSkew)
	assert.Equal(t, http.StatusServiceUnavailable, StatusCode(err))
	assert.Contains(t, err.Error(), "about 2m0s (ahead;")
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

	// And on the admin page.
	_, page := adminGet(t, serveAdmin(t, c), "")
	assert.Contains(t, page, `id="clock-fenced"`)
	assert.Contains(t, page, "−2m0s", "c's peers, behind it")
	_, page = adminGet(t, serveAdmin(t, a), "")
	assert.NotContains(t, page, `id="clock-fenced"`)
	assert.Contains(t, html.UnescapeString(page), `<td class="n warn">+2m0s</td>`, "c, ahead")

	// No record anywhere is stamped in the future.
	for _, st := range nodes {
		assert.False(t, newestStamp(st).After(time.Now().Add(time.Second)), "a record from the future")
	}

	// c's clock is set right: it takes writes again, and they replicate.
	clockC.by.Store(0)
	require.Eventually(t, func() bool { return !fenced(c) }, waitFor, tick, "c stayed fenced")
	require.Eventually(t, func() bool { return logs.Count(liftedLine) == 1 }, waitFor, tick, "c said it is clear")
	assert.Equal(t, 1, logs.Count(fencedLine), "one warning for the whole time it was fenced")
	assert.NotContains(t, logs.String(), "session not saved", "the refused writes are not warned about one by one")
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
	nodes := clockCluster(t, &clockC, &testlog.Buffer{}, "a", "b", "c")
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
	nodes := clockCluster(t, &clockC, &testlog.Buffer{}, "a", "c")
	for _, st := range nodes {
		require.Eventually(t, func() bool { return fenced(st) }, waitFor, tick, st.repl.cfg.Name)
		_, err := st.Save(context.Background(), sessionWith(t, st, "k", "v"))
		assert.ErrorIs(t, err, ErrClockSkew)
	}
	_, err := nodes[1].Save(context.Background(), sessionWith(t, nodes[1], "k", "v"))
	assert.Contains(t, err.Error(), "about 2m0s (behind;")
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

// A node that wrote while its clock was ahead (before it noticed) and then
// had its clock set right still stamps versions ahead of its peers' clocks
// (its hybrid clock never goes back): it stays fenced until their clocks
// catch up with those versions, here by moving every clock on.
func TestNodeThatStampedAheadStaysFencedUntilItsPeersCatchUp(t *testing.T) {
	clocks := map[string]*shiftable{"a": {}, "b": {}, "c": {}}
	clocks["c"].by.Store(int64(2 * time.Minute))
	tc := newTestCluster(t, func(cfg *Config) { cfg.Now = clocks[cfg.Cluster.Name].Now })
	nodes := tc.startAll("a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	require.Eventually(t, func() bool { return fenced(c) }, waitFor, tick)
	c.clock.Now() // what a write in the window before the fence stamps

	clocks["c"].by.Store(0)
	require.Eventually(t, func() bool {
		offs := c.repl.node.ClockOffsets()
		for _, d := range offs {
			if d.Abs() > time.Second {
				return false
			}
		}
		return len(offs) == 2
	}, waitFor, tick, "c never measured its set-right clock")
	waitMeasured(t, c, 2)
	assert.True(t, fenced(c), "its versions are still 2 min ahead")
	_, err := c.Save(context.Background(), sessionWith(t, c, "k", "v"))
	require.ErrorIs(t, err, ErrClockSkew)
	assert.Contains(t, err.Error(), "stamps versions about 2m0s ahead")
	code, _ := readyCode(c)
	assert.Equal(t, http.StatusServiceUnavailable, code)

	for _, clk := range clocks { // two minutes pass
		clk.by.Add(int64(2 * time.Minute))
	}
	require.Eventually(t, func() bool { return !fenced(c) }, waitFor, tick, "c stayed fenced")
	tok := savedSession(t, c, "from", "c")
	waitValue(t, a, tok, "from")
	waitValue(t, b, tok, "from")
}

// Found by the chaos harness: b's clock was set right a moment before c's
// was stepped ahead, and c still held b's sample from while b was ahead:
// corrected for c's step, it said b agreed with c, and c took writes its
// peers refused. A peer measured before a step of more than the bound now
// counts as off until it is measured again, so c's very next write is
// refused whether or not it has measured b since.
func TestClockStepRightAfterAPeerWasSetRightFencesTheNextWrite(t *testing.T) {
	clocks := map[string]*shiftable{"a": {}, "b": {}, "c": {}}
	tc := newTestCluster(t, func(cfg *Config) { cfg.Now = clocks[cfg.Cluster.Name].Now })
	nodes := tc.startAll("a", "b", "c")
	c := nodes[2]
	waitMeasured(t, c, 2)
	bID := nodes[1].repl.node.Self().ID

	clocks["b"].by.Store(int64(92 * time.Second))
	require.Eventually(t, func() bool { return c.repl.node.ClockOffsets()[bID] > time.Minute }, waitFor, tick, "c never measured b ahead")
	clocks["b"].by.Store(0)
	clocks["c"].by.Store(int64(91 * time.Second))
	_, err := c.Save(context.Background(), sessionWith(t, c, "k", "v"))
	require.ErrorIs(t, err, ErrClockSkew, "the very next write")
	assert.Zero(t, nodes[0].Stats().Replication.Skewed, "nothing sent from the future")

	clocks["c"].by.Store(0)
	require.Eventually(t, func() bool { return !fenced(c) }, waitFor, tick, "c stayed fenced once measured again")
	tok := savedSession(t, c, "from", "c")
	waitValue(t, nodes[0], tok, "from")
	waitValue(t, nodes[1], tok, "from")
}

// A verdict that flaps (a clock near the bound) costs at most one line of
// each kind per 10 s, counting the changes since the last line, and the
// last line ends up telling the current verdict.
func TestClockFenceLogsItsChangesRateLimited(t *testing.T) {
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := clockFence{}
	f.fencedLog.Every, f.clearLog.Every = 10*time.Second, 10*time.Second
	fence := judgeClock(map[string]cluster.PeerClock{"a": {Offset: 2 * time.Minute}}, 0, time.Minute)
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	const fencedLine, liftedLine = "clock-fenced", "clock fence lifted"

	f.logChange(nil, at(0), log)
	assert.Empty(t, logs.String(), "not fenced: nothing to say")
	f.logChange(fence, at(1), log)
	f.logChange(fence, at(2), log)
	assert.Equal(t, 1, logs.Count(fencedLine), "one line when fenced")
	f.logChange(nil, at(3), log)
	assert.Equal(t, 1, logs.Count(liftedLine), "one when clear again")
	for s := 4; s < 10; s += 2 { // flapping
		f.logChange(fence, at(s), log)
		f.logChange(nil, at(s+1), log)
	}
	assert.Equal(t, 1, logs.Count(fencedLine), "held back")
	f.logChange(fence, at(11), log)
	assert.Equal(t, 2, logs.Count(fencedLine), "10 s on, the current verdict")
	assert.Contains(t, logs.Lines()[2], "changes=7")
	f.logChange(nil, at(12), log)
	assert.Equal(t, 1, logs.Count(liftedLine), "held back")
	f.logChange(nil, at(13), log)
	f.logChange(nil, at(14), log)
	assert.Equal(t, 2, logs.Count(liftedLine), "the clear verdict, once its 10 s are over")
	f.logChange(nil, at(40), log)
	assert.Len(t, logs.Lines(), 4, "then nothing while it holds")
}

// A node whose clock is stepped while it runs (by hand, an NTP step, the
// chaos harness) refuses its very next write: a step shows in its peers'
// offsets at once, with no ping to wait for. Set back, its very next write
// is taken. Nothing it acknowledged is refused by its peers.
func TestClockStepFencesTheVeryNextWrite(t *testing.T) {
	var clockC shiftable
	nodes := clockCluster(t, &clockC, &testlog.Buffer{}, "a", "b", "c")
	c := nodes[2]
	waitMeasured(t, c, 2)
	var toks []string
	toks = append(toks, savedSession(t, c, "n", "1"))

	clockC.by.Store(int64(2 * time.Minute))
	_, err := c.Save(context.Background(), sessionWith(t, c, "n", "2"))
	require.ErrorIs(t, err, ErrClockSkew, "the very next write")
	code, _ := readyCode(c)
	assert.Equal(t, http.StatusServiceUnavailable, code)

	clockC.by.Store(0)
	toks = append(toks, savedSession(t, c, "n", "3"))
	code, _ = readyCode(c)
	assert.Equal(t, http.StatusOK, code)
	for _, st := range nodes[:2] {
		for _, tok := range toks {
			waitValue(t, st, tok, "n")
		}
		assert.Zero(t, st.Stats().Replication.Skewed, "nothing refused as from the future")
	}
}

// BenchmarkClockFenceCheck is what the fence adds to every write on a
// clustered node: a read of the clock's drift and of the verdict.
func BenchmarkClockFenceCheck(b *testing.B) {
	st, err := New(Config{Cluster: &ClusterConfig{Name: "a", Label: "bench", Keys: [][]byte{testKey}, AntiEntropyInterval: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := st.clockFenced(); err != nil {
			b.Fatal(err)
		}
	}
}

// A version is stamped with the wall clock only when the clock was not
// stepped since the verdict the write was judged by.
func TestStampTrustedOnlyWithoutAStepSinceTheVerdict(t *testing.T) {
	const d = 3 * time.Second // the drift at the verdict
	assert.True(t, stampTrusted(d, d), "no step")
	assert.True(t, stampTrusted(d, d+clockStep), "up to clockStep")
	assert.False(t, stampTrusted(d, d+91*time.Second), "stepped ahead since")
	assert.False(t, stampTrusted(d, d-91*time.Second), "stepped back since")
}
