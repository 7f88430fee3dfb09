package peersession

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/testcluster"
	"github.com/stretchr/testify/require"
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
