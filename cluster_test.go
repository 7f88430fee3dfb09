package peersession

// Integration tests of replication: real memberlist nodes and real Noise
// streams over loopback, failure detection tuned to well under a second,
// every wait a condition (require.Eventually), never a fixed sleep.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testcluster"
	"github.com/peersession/peersession/replicate/model"
)

const (
	waitFor = 10 * time.Second
	tick    = 5 * time.Millisecond
)

var antiEntropyInterval = func() time.Duration {
	if os.Getenv("AE_OFF") != "" {
		return -1
	}
	return 200 * time.Millisecond
}()

var testKey = bytes.Repeat([]byte{7}, 32)

// fastTimers makes memberlist detect a dead node in well under a second.
var fastTimers = testcluster.FastTimers

// testCluster is a set of nodes started in one test.
type testCluster struct {
	t     *testing.T
	mu    sync.Mutex // guards nodes
	nodes map[string]*Store
	seeds []string
	opts  func(*Config)
	hooks func(name string) hooks // nil: none
}

func newTestCluster(t *testing.T, opts func(*Config)) *testCluster {
	return &testCluster{t: t, nodes: map[string]*Store{}, opts: opts}
}

// start starts (or restarts) node name, joined to the nodes started before,
// and waits until it is ready.
func (tc *testCluster) start(name string) *Store {
	tc.t.Helper()
	cfg := Config{Cluster: &ClusterConfig{
		Name:                name,
		Join:                slices.Clone(tc.seeds),
		RejoinInterval:      200 * time.Millisecond,
		Label:               "test",
		Keys:                [][]byte{testKey},
		AntiEntropyInterval: antiEntropyInterval,
		Memberlist:          fastTimers,
	}}
	if os.Getenv("PEERSESSION_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	}
	if tc.opts != nil {
		tc.opts(&cfg)
	}
	var h hooks
	if tc.hooks != nil {
		h = tc.hooks(name)
	}
	st, err := newStore(cfg, h)
	require.NoError(tc.t, err)
	tc.t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(tc.t, st.WaitReady(ctx))
	tc.mu.Lock()
	tc.nodes[name] = st
	if len(tc.seeds) < 3 {
		tc.seeds = append(tc.seeds, st.repl.node.GossipAddr())
	}
	tc.mu.Unlock()
	return st
}

// startAll starts the named nodes and waits until each sees all of them.
func (tc *testCluster) startAll(names ...string) []*Store {
	var out []*Store
	for _, n := range names {
		out = append(out, tc.start(n))
	}
	tc.waitMembers(len(names), out...)
	return out
}

// waitMembers waits until every node sees n alive members.
func (tc *testCluster) waitMembers(n int, nodes ...*Store) {
	tc.t.Helper()
	require.Eventually(tc.t, func() bool {
		for _, st := range nodes {
			if alive(st) != n {
				return false
			}
		}
		return true
	}, waitFor, tick, "members never converged to %d", n)
}

func alive(st *Store) int {
	n := 0
	for _, m := range st.Members() {
		if m.State == "alive" {
			n++
		}
	}
	return n
}

// kill stops a node without leaving: its process died.
func kill(st *Store) {
	st.closed.Store(true)
	st.repl.stopTransfer()
	st.repl.eng.Close()
	_ = st.repl.node.Close()
}

// create saves a new session holding kv on st and returns its token.
func create(t *testing.T, st *Store, kv map[string]any) string {
	t.Helper()
	s := st.NewSession(t.Context())
	for k, v := range kv {
		require.NoError(t, s.Set(k, v))
	}
	tok, err := st.Save(t.Context(), s)
	require.NoError(t, err)
	return tok
}

// update loads token on st, sets kv and saves.
func update(t *testing.T, st *Store, token string, kv map[string]any) string {
	t.Helper()
	s, err := st.Load(t.Context(), token)
	require.NoError(t, err)
	for k, v := range kv {
		require.NoError(t, s.Set(k, v))
	}
	tok, err := st.Save(t.Context(), s)
	require.NoError(t, err)
	return tok
}

// readEntry returns token's live session on st as a read finds it: this
// node's copy in full replication; in partitioned mode, on a node that does
// not hold the session or has no copy, what its holders have.
func readEntry(st *Store, token string) *entry {
	t, _ := parseCookie(token)
	if st.part.Load() != nil {
		// A fetch a holder answered too late is tried again (see loadValue).
		e, _ := retryStale(func() (*entry, error) {
			e, _, err := st.find(context.Background(), t, 0)
			return e, err
		})
		return e
	}
	return st.lookup(idOf(t))
}

// value returns key's value in token's session on st ("" if missing), as
// a read finds it (readEntry).
func value(st *Store, token, key string) string {
	e := readEntry(st, token)
	if e == nil {
		return ""
	}
	return entryValue(st, e, key)
}

// entryValue returns key's value in session e of st ("" if missing).
func entryValue(st *Store, e *entry, key string) string {
	var v string
	if kv, ok := e.rec.Get(key); ok && !kv.Deleted {
		s := &Session{st: st, loaded: true, base: e}
		_, _ = s.Get(key, &v)
	}
	return v
}

// has reports whether token names a live session on st, as a read finds
// it (readEntry).
func has(st *Store, token string) bool { return readEntry(st, token) != nil }

// holdsCopy reports whether st has a live copy of token's session of its
// own (in partitioned mode, only the session's holders should).
func holdsCopy(st *Store, token string) bool {
	t, _ := parseCookie(token)
	return st.lookup(idOf(t)) != nil
}

// holds reports whether st holds token's session: every node in full
// replication; its holders in partitioned mode.
func holds(st *Store, token string) bool {
	pt := st.part.Load()
	t, _ := parseCookie(token)
	return pt == nil || pt.holds(idOf(t))
}

// replicationModes are the modes the replication suites run in: full
// replication (the default) and partitioned mode with two copies.
var replicationModes = []struct {
	name   string
	copies int
}{{"full", 0}, {"copies=2", 2}}

// eachMode runs fn as a subtest in each replication mode, with the
// option that sets it (and opts, if any) for newTestCluster.
func eachMode(t *testing.T, fn func(t *testing.T, opts func(*Config)), opts ...func(*Config)) {
	for _, m := range replicationModes {
		t.Run(m.name, func(t *testing.T) {
			fn(t, func(c *Config) {
				c.Cluster.Copies = m.copies // at the default FetchTimeout (see withCopies)
				for _, o := range opts {
					o(c)
				}
			})
		})
	}
}

func eventuallyEverywhere(t *testing.T, cond func(st *Store) bool, msg string, nodes ...*Store) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, st := range nodes {
			if !cond(st) {
				return false
			}
		}
		return true
	}, waitFor, tick, msg)
}

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

func TestJoiningNodeGetsEverySession(t *testing.T) {
	eachMode(t, testJoiningNodeGetsEverySession)
}

// In partitioned mode, "every session" is every session the joining node
// holds; it reads the others from their holders.
func testJoiningNodeGetsEverySession(t *testing.T, opts func(*Config)) {
	// The full 100,000 x 1 KiB join is measured by bench/ (and
	// replicate's TestSyncLargeState); a normal run uses 3,000 sessions of
	// 1 KiB, which still takes several chunks from each peer.
	const n = 3000
	tc := newTestCluster(t, opts)
	nodes := tc.startAll("a", "b")
	blob := string(bytes.Repeat([]byte{'x'}, 1024))
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = create(t, nodes[i%2], map[string]any{"i": fmt.Sprint(i), "blob": blob})
	}
	c := tc.start("c") // WaitReady returned: the state transfer is done
	held := 0
	for _, tok := range tokens {
		if holds(c, tok) {
			held++
			assert.True(t, holdsCopy(c, tok), "a session c holds did not come with the state transfer")
		}
	}
	assert.Equal(t, held, c.Len())
	for i, tok := range tokens {
		require.Equal(t, fmt.Sprint(i), value(c, tok, "i"))
	}
}

// A joining node takes the whole state from one member and only what
// differs from the others: a session that only one of two members holds
// (a write the other has not received yet) still reaches it, whichever
// member sent the whole state.
func TestJoiningNodeGetsASessionOnlyOneMemberHolds(t *testing.T) {
	// No anti-entropy: it would copy the sessions below between a and b.
	tc := newTestCluster(t, func(c *Config) { c.Cluster.AntiEntropyInterval = -1 })
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	for i := range 100 {
		create(t, nodes[i%2], map[string]any{"i": fmt.Sprint(i)})
	}
	eventuallyEverywhere(t, func(st *Store) bool { return st.Len() == 100 }, "not replicated", a, b)

	// One session on a alone and one on b alone: made on a single node,
	// applied locally, never published.
	solo := newTestStore(t, Config{})
	onlyA := create(t, solo, map[string]any{"on": "a"})
	onlyB := create(t, solo, map[string]any{"on": "b"})
	plant := func(st *Store, tok string) {
		tok, _ = parseCookie(tok)
		require.Zero(t, replStore{st}.Apply([]model.Record{solo.lookup(idOf(tok)).rec}))
	}
	plant(a, onlyA)
	plant(b, onlyB)
	require.False(t, has(b, onlyA) || has(a, onlyB))

	// Transfers served so far (b's own join) and from now on.
	served := func() (full, delta uint64) {
		ra, rb := a.Stats().Replication, b.Stats().Replication
		return ra.Transfers + rb.Transfers, ra.DeltaTransfers + rb.DeltaTransfers
	}
	full0, delta0 := served()

	c := tc.start("c") // WaitReady returned: the state transfer is done
	assert.Equal(t, 102, c.Len())
	assert.Equal(t, "a", value(c, onlyA, "on"))
	assert.Equal(t, "b", value(c, onlyB, "on"))
	require.Eventually(t, func() bool {
		full, delta := served()
		return full+delta == full0+delta0+2
	}, waitFor, tick, "a and b did not both serve c")
	full, delta := served()
	assert.Equal(t, full0+1, full, "one member sent its whole state")
	assert.Equal(t, delta0+1, delta, "the other sent what differed")
}

func TestKilledNodeLosesNothingAndRejoins(t *testing.T) {
	eachMode(t, testKilledNodeLosesNothingAndRejoins)
}

func testKilledNodeLosesNothingAndRejoins(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, opts)
	nodes := tc.startAll("a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	var tokens []string
	for i := range 50 {
		tokens = append(tokens, create(t, nodes[i%3], map[string]any{"i": fmt.Sprint(i)}))
	}
	// Every node holds a copy of each session it holds: all of them in
	// full replication.
	heldEverywhere := func(st *Store) bool {
		for _, tok := range tokens {
			if holdsCopy(st, tok) != holds(st, tok) {
				return false
			}
		}
		return true
	}
	eventuallyEverywhere(t, heldEverywhere, "not replicated", nodes...)

	kill(c)
	tc.waitMembers(2, a, b)
	// a and b hold everything now (two copies of three: both, once c is gone).
	eventuallyEverywhere(t, heldEverywhere, "not brought back to its copies", a, b)
	for _, tok := range tokens {
		assert.True(t, holdsCopy(a, tok) && holdsCopy(b, tok))
	}
	// Writes while c is down.
	tok := create(t, a, map[string]any{"while": "down"})

	c2 := tc.start("c") // same name, new process
	tc.waitMembers(3, a, b, c2)
	tokens = append(tokens, tok)
	eventuallyEverywhere(t, func(st *Store) bool {
		return heldEverywhere(st) && value(st, tok, "while") == "down"
	}, "restarted node did not converge", a, b, c2)
	if c2.part.Load() == nil {
		assert.Equal(t, 51, c2.Len())
	}
}

func TestWrongKeyOrLabelCannotJoinOrRead(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	create(t, nodes[0], map[string]any{"secret": "x"})

	for name, mod := range map[string]func(*ClusterConfig){
		"wrong key":   func(c *ClusterConfig) { c.Keys = [][]byte{bytes.Repeat([]byte{9}, 32)} },
		"wrong label": func(c *ClusterConfig) { c.Label = "other" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ClusterConfig{Name: "intruder", Join: tc.seeds, Label: "test", Keys: [][]byte{testKey}, Memberlist: fastTimers}
			mod(&cfg)
			st, err := New(Config{Cluster: &cfg})
			require.NoError(t, err)
			defer st.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			require.Error(t, st.WaitReady(ctx), "the intruder is told it was refused (misconfig_test.go)")
			assert.Equal(t, 0, st.Len(), "the intruder read sessions")
			assert.Equal(t, 1, alive(st), "the intruder sees only itself")
			assert.Equal(t, 2, alive(nodes[0]), "the cluster let the intruder in")
		})
	}
}

func TestNonStickyClientSeesItsOwnWrites(t *testing.T) {
	for _, mode := range []Consistency{Async, Sync} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			eachMode(t, func(t *testing.T, opts func(*Config)) {
				// Three nodes: with two copies, a session may be held by
				// neither node the client alternates between.
				tc := newTestCluster(t, opts)
				nodes := tc.startAll("a", "b", "c")
				alternate(t, nodes[0], nodes[1], 40)
			}, func(c *Config) { c.Cluster.Consistency = mode })
		})
	}
}

// alternate serves testApp on a and b and sends it steps writes through
// one browser (one cookie jar) and a balancer alternating on every
// request: the jar sends the cookie to both (same host). Write i, on one
// node, must succeed, and the read that follows, on the other, must see it.
func alternate(t *testing.T, a, b *Store, steps int) {
	t.Helper()
	srvA := httptest.NewServer(testApp(a))
	defer srvA.Close()
	srvB := httptest.NewServer(testApp(b))
	defer srvB.Close()
	cl := newClient(t, srvA)
	servers := []string{srvA.URL, srvB.URL}
	for i := range steps {
		cl.url = servers[i%2]
		res, _ := cl.do("POST", fmt.Sprintf("/set?k=n&v=%d", i))
		require.Equal(t, 200, res.StatusCode, "write %d failed", i)
		cl.url = servers[(i+1)%2]
		_, body := cl.do("GET", "/get?k=n")
		require.Equal(t, fmt.Sprintf("true:%d", i), body, "request %d read a stale value on the other node", i)
	}
}

func TestSyncWriteIsOnAPeerWhenItReturns(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) { c.Cluster.Consistency = Sync })
	nodes := tc.startAll("a", "b")
	for i := range 20 {
		tok := create(t, nodes[0], map[string]any{"i": fmt.Sprint(i)})
		require.Equal(t, fmt.Sprint(i), value(nodes[1], tok, "i"), "Save returned before b applied the change")
	}
}

// In partitioned mode, a Sync write returns once MinAcks of the session's
// holders other than the writer have applied it (capped at how many there
// are): written on a node that does not hold it, both holders can answer;
// on a holder, the other one.
func TestPartitionedSyncWriteIsOnItsHoldersWhenItReturns(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) {
		c.Cluster.Consistency, c.Cluster.Copies, c.Cluster.MinAcks = Sync, 2, AllPeers
	})
	nodes := tc.startAll("a", "b", "c", "d")
	for i := range 20 {
		w := nodes[i%len(nodes)]
		tok := create(t, w, map[string]any{"i": fmt.Sprint(i)})
		for _, st := range nodes {
			if holds(st, tok) {
				require.True(t, holdsCopy(st, tok), "Save on %s returned before holder %s applied it", w.repl.cfg.Name, st.repl.cfg.Name)
			}
		}
	}
	tc2 := newTestCluster(t, func(c *Config) { c.Cluster.Consistency, c.Cluster.Copies, c.Cluster.MinAcks = Sync, 2, 3 })
	pair := tc2.startAll("a", "b")
	tok := create(t, pair[0], map[string]any{"i": "capped"})
	require.True(t, holdsCopy(pair[1], tok), "MinAcks 3 is capped at the one other holder")
}

// A Sync write the peer refuses (here its store is full) fails with
// ErrNotReplicated instead of reporting a copy the peer does not hold; the
// writing node keeps the change, and the next write the peer accepts
// succeeds.
func TestSyncWriteThePeerRefusesFails(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) {
		c.Cluster.Consistency = Sync
		if c.Cluster.Name == "b" {
			c.MaxSessions = 2
		}
	})
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	first := create(t, a, map[string]any{"n": "1"})
	create(t, a, map[string]any{"n": "2"})

	s := a.NewSession(t.Context())
	require.NoError(t, s.Set("n", "3"))
	_, err := a.Save(t.Context(), s)
	require.ErrorIs(t, err, ErrNotReplicated)
	require.ErrorContains(t, err, "refused")
	require.Equal(t, 3, a.Len())
	require.Equal(t, 2, b.Len())
	require.EqualValues(t, 1, a.Stats().Replication.Peers["b"].Refused)
	require.EqualValues(t, 1, b.Stats().Refused)

	// b accepts changes to the sessions it holds.
	tok := update(t, a, first, map[string]any{"n": "1b"})
	require.Equal(t, "1b", value(b, tok, "n"))
}

func TestGracefulCloseFlushesAndLeaves(t *testing.T) {
	eachMode(t, testGracefulCloseFlushesAndLeaves)
}

func testGracefulCloseFlushesAndLeaves(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, opts)
	nodes := tc.startAll("a", "b")
	var tokens []string
	for i := range 200 {
		tokens = append(tokens, create(t, nodes[0], map[string]any{"i": fmt.Sprint(i)}))
	}
	require.NoError(t, nodes[0].Close())
	require.NoError(t, nodes[0].Close(), "Close is idempotent")
	for _, tok := range tokens {
		require.True(t, has(nodes[1], tok), "a change queued at Close was not flushed")
	}
	tc.waitMembers(1, nodes[1])
	for _, m := range nodes[1].Members() {
		if m.Name == "a" {
			assert.Equal(t, "left", m.State)
		}
	}
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
