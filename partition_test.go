package peersession

// Partitioned mode (ClusterConfig.Copies): each session on Copies nodes,
// readable on every node, moved when membership changes, never lost and
// never "not found" meanwhile. Real memberlist nodes over loopback.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/faultnet"
	"github.com/peersession/peersession/replicate/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withCopies sets ClusterConfig.Copies. The tests run at the default
// FetchTimeout (100 ms): a fetch a holder is too slow to answer is no
// "not found" (TestPartitionedTimeoutIsNotCachedAsAMiss), it fails with
// ErrStale, which the readers of these suites retry (see loadValue).
func withCopies(n int) func(*Config) {
	return func(c *Config) { c.Cluster.Copies = n }
}

// loadValue loads token on st, as a client would (fetching it from its
// holders when st does not hold it), and returns key's value ("" if the
// session or key is missing, or on error). A read that fails with
// ErrStale (a 503: a holder did not answer within FetchTimeout, as on a
// loaded test machine) is made again, as a client retries a 503, for up
// to waitFor: so only a wrong answer, never a slow one, fails a test.
func loadValue(t testing.TB, st *Store, token, key string) string {
	v, _ := retryStale(func() (string, error) { return readValue(t.Context(), st, token, key) })
	return v
}

// retryStale calls read until it returns an error other than ErrStale,
// for up to waitFor.
func retryStale[T any](read func() (T, error)) (T, error) {
	deadline := time.Now().Add(waitFor)
	for {
		v, err := read()
		if !errors.Is(err, ErrStale) || time.Now().After(deadline) {
			return v, err
		}
	}
}

// readValue is loadValue once, with the error: Load's, or ErrNotFound for
// a session without key.
func readValue(ctx context.Context, st *Store, token, key string) (string, error) {
	s, err := st.Load(ctx, token)
	if err != nil {
		return "", err
	}
	var v string
	if ok, err := s.Get(key, &v); err != nil || !ok {
		return "", cmp.Or(err, ErrNotFound)
	}
	return v, nil
}

// holdersOf returns the nodes of nodes that hold token's session under
// the placement st sees.
func holdersOf(st *Store, token string, nodes ...*Store) []*Store {
	tok, _ := parseCookie(token)
	id := idOf(tok)
	var out []*Store
	for _, n := range nodes {
		if st.repl.part.view.Load().pl.Holds(n.repl.cfg.Name, id) {
			out = append(out, n)
		}
	}
	return out
}

// settled reports whether every node holds exactly the sessions the
// placement gives it, each of tokens on its holders, and no strays wait.
func settled(tokens []string, nodes ...*Store) bool { return unsettled(tokens, nodes...) == "" }

// unsettled says why the sessions have not settled ("" if they have).
func unsettled(tokens []string, nodes ...*Store) string {
	for _, st := range nodes {
		if n := st.repl.straysWaiting(); n > 0 {
			return fmt.Sprintf("%d strays wait on %s", n, st.repl.cfg.Name)
		}
		if n := len(st.repl.part.view.Load().pl.Names()); n != len(nodes) {
			return fmt.Sprintf("%s places on %d nodes", st.repl.cfg.Name, n)
		}
	}
	for i, tok := range tokens {
		hs := holdersOf(nodes[0], tok, nodes...)
		for _, st := range nodes {
			if holdsCopy(st, tok) != containsStore(hs, st) {
				return fmt.Sprintf("session %d: on %s %v, holder %v", i, st.repl.cfg.Name, holdsCopy(st, tok), containsStore(hs, st))
			}
		}
	}
	return ""
}

// waitSettled waits until the sessions have settled on their holders.
func waitSettled(t *testing.T, tokens []string, nodes ...*Store) {
	t.Helper()
	var why string
	if !assert.Eventually(t, func() bool { why = unsettled(tokens, nodes...); return why == "" }, waitFor, tick) {
		t.Fatalf("the sessions never settled on their holders: %s", why)
	}
}

func containsStore(s []*Store, st *Store) bool {
	for _, x := range s {
		if x == st {
			return true
		}
	}
	return false
}

func TestPartitionedWriteOnAnyNodeIsReadableOnEveryNode(t *testing.T) {
	tc := newTestCluster(t, withCopies(2))
	nodes := tc.startAll("a", "b", "c", "d")
	var tokens []string
	for i := range 40 {
		w := nodes[i%len(nodes)]
		tok := create(t, w, map[string]any{"n": fmt.Sprint(i)})
		tokens = append(tokens, tok)
		for _, r := range nodes {
			assert.Equal(t, fmt.Sprint(i), loadValue(t, r, tok, "n"), "session %d written on %s, read on %s", i, w.repl.cfg.Name, r.repl.cfg.Name)
		}
	}
	waitSettled(t, tokens, nodes...)
	total := 0
	for _, st := range nodes {
		total += st.Len()
	}
	assert.Equal(t, 2*len(tokens), total, "each session is held twice")
}

// reader reads every token on every node of on, round after round, until
// stopped, and counts the reads that did not find the session (or found
// the wrong value): with Copies >= 2 there must be none, whatever the
// membership does meanwhile. A read that fails with ErrStale is counted
// apart: at the default FetchTimeout (100 ms) a fetch a holder answers
// late on a loaded test machine (or behind a joining node's state
// transfer on the same stream) fails so, and the client retries it.
type reader struct {
	stop    chan struct{}
	done    chan struct{}
	reads   int
	slowest time.Duration // the longest read
	misses  []string
	stale   int // reads that failed with ErrStale (503: a holder did not answer within FetchTimeout)
}

func startReader(t *testing.T, tokens []string, want func(i int) string, on ...*Store) *reader {
	r := &reader{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			for i, tok := range tokens {
				for _, st := range on {
					select {
					case <-r.stop:
						return
					default:
					}
					r.reads++
					start := time.Now()
					got, err := readValue(t.Context(), st, tok, "n")
					r.slowest = max(r.slowest, time.Since(start))
					if errors.Is(err, ErrStale) {
						r.stale++ // a client retries it: slow, not wrong
						continue
					}
					if got != want(i) {
						r.misses = append(r.misses, fmt.Sprintf("session %d on %s: %q (%v)", i, st.repl.cfg.Name, got, err))
					}
				}
			}
		}
	}()
	return r
}

// end stops the reader after at least one more read and returns what it
// saw.
func (r *reader) end() (reads int, misses []string) {
	close(r.stop)
	<-r.done
	return r.reads, r.misses
}

// Whenever a node joins, leaves or is killed, every session is brought
// back to exactly its holders under the new membership (Copies of them),
// none is lost, and no read anywhere meanwhile finds a session missing.
func TestPartitionedRebalance(t *testing.T) {
	testRebalance(t, 4, 200, "join", "leave", "kill")
}

// testRebalance starts n nodes holding sessions, then makes each change (a
// fresh cluster each): a node joins, the last one leaves gracefully, or it
// is killed. (The same at 16 node processes under HTTP load is the bench's
// failure run: bench/run.sh kill -nodes 16 -copies 2.)
func testRebalance(t *testing.T, n, sessions int, changes ...string) {
	for _, change := range changes {
		t.Run(change, func(t *testing.T) {
			tc := newTestCluster(t, withCopies(2))
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("n%02d", i)
			}
			nodes := tc.startAll(names...)
			var tokens []string
			for i := range sessions {
				tokens = append(tokens, create(t, nodes[i%len(nodes)], map[string]any{"n": fmt.Sprint(i)}))
			}
			want := func(i int) string { return fmt.Sprint(i) }
			waitSettled(t, tokens, nodes...)

			survivors := nodes
			if change != "join" {
				survivors = nodes[:n-1]
			}
			rd := startReader(t, tokens, want, survivors...)
			after := survivors
			began := time.Now()
			switch change {
			case "join":
				e := tc.start(fmt.Sprintf("n%02d", n))
				after = append(append([]*Store(nil), nodes...), e)
				tc.waitMembers(n+1, after...)
			case "leave":
				// A graceful Close hands its sessions over first, while
				// the others still count d a member (and so have not
				// rebalanced): each session has its two copies on them.
				ctx, cancel := context.WithTimeout(t.Context(), waitFor)
				nodes[n-1].repl.handOverAll(ctx)
				cancel()
				require.Equal(t, n, alive(nodes[0]), "the last node is still a member")
				for i, tok := range tokens {
					copies := 0
					for _, st := range survivors {
						if holdsCopy(st, tok) {
							copies++
						}
					}
					require.GreaterOrEqual(t, copies, 2, "session %d has %d copies after the last node handed its sessions over", i, copies)
				}
				assert.Zero(t, nodes[n-1].Len(), "the last node kept sessions it handed over")
				require.NoError(t, nodes[n-1].Close())
				tc.waitMembers(n-1, after...)
			case "kill":
				kill(nodes[n-1])
				tc.waitMembers(n-1, after...)
			}
			changed := time.Now()
			waitSettled(t, tokens, after...)
			require.Eventually(t, func() bool { return underReplicated(after...) == 0 }, waitFor, tick,
				"every session is on its holders, and some node still counts one under-replicated")
			reads, misses := rd.end()
			t.Logf("%s at %d nodes: every session on exactly its holders %v after the change began (%v after every node saw the new membership); %d reads during it, the slowest %v, %d failed with ErrStale (to retry)",
				change, n, time.Since(began).Round(time.Millisecond), time.Since(changed).Round(time.Millisecond), reads, rd.slowest.Round(time.Millisecond), rd.stale)
			assert.Empty(t, misses, "reads that did not find a session (of %d)", reads)

			total := 0
			for _, st := range after {
				total += st.Len()
				for i, tok := range tokens {
					require.Equal(t, want(i), loadValue(t, st, tok, "n"))
				}
			}
			assert.Equal(t, 2*len(tokens), total, "each session is held exactly twice")
			if change == "join" {
				e := after[n]
				assert.NotZero(t, e.Len(), "the new node holds nothing")
				var dropped int64
				for _, st := range after {
					dropped += st.Stats().Replication.StraysDropped
				}
				assert.NotZero(t, dropped, "no node dropped what it no longer holds")
			}
		})
	}
}

// Each node holds about Copies/N of the sessions, not all of them: memory
// per node falls as nodes are added.
func TestPartitionedNodesHoldCopiesOverNOfTheSessions(t *testing.T) {
	tc := newTestCluster(t, withCopies(2))
	nodes := tc.startAll("a", "b", "c", "d", "e", "f")
	const n = 600
	var tokens []string
	for i := range n {
		tokens = append(tokens, create(t, nodes[i%len(nodes)], map[string]any{"n": fmt.Sprint(i)}))
	}
	waitSettled(t, tokens, nodes...)
	mean := 2 * n / len(nodes) // 200
	total := 0
	for _, st := range nodes {
		total += st.Len()
		// Rendezvous hashing spreads 600 sessions within a few standard
		// deviations (~12) of the mean.
		assert.InDelta(t, mean, st.Len(), float64(mean)/4, "%s holds %d sessions", st.repl.cfg.Name, st.Len())
	}
	assert.Equal(t, 2*n, total)
}

// Every node of a cluster must place sessions alike: a node whose Copies
// differs from its seeds' is refused, and WaitReady says so, naming both
// values; the cluster goes on without it. A Copies of 1 is refused by New.
func TestCopiesThatDifferAreRefused(t *testing.T) {
	for _, tt := range []struct {
		name            string
		cluster, joiner int
	}{
		{"partitioned node, full cluster", 0, 2},
		{"full node, partitioned cluster", 2, 0},
		{"other copies", 2, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, withCopies(tt.cluster))
			nodes := tc.startAll("a", "b")
			seed := tc.seeds[0]
			cfg := ClusterConfig{Name: "intruder", Join: []string{seed}, Label: "test", Keys: [][]byte{testKey},
				Memberlist: fastTimers, Copies: tt.joiner}
			st, err := New(Config{Cluster: &cfg, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			err = refusalWithin(t, st)
			require.ErrorIs(t, err, cluster.ErrCopiesDiffer)
			assert.Contains(t, err.Error(), fmt.Sprintf("has ClusterConfig.Copies %d and this node %d: give every node the same ClusterConfig.Copies",
				tt.cluster, tt.joiner))
			assert.Equal(t, 1, alive(st))
			for _, n := range nodes {
				assert.Equal(t, 2, alive(n), "a member took the node in")
			}
			assertServes(t, nodes[0], nodes[1])
		})
	}
	_, err := New(Config{MaxSessionsPerPrincipal: 3, Cluster: &ClusterConfig{Name: "a", Copies: 2}})
	require.ErrorContains(t, err, "peersession: Config.MaxSessionsPerPrincipal is not supported with ClusterConfig.Copies (partitioned mode)")
	for copies, want := range map[int]string{
		1:  "peersession: ClusterConfig.Copies is 1: a session on one node is lost when that node dies; set 2 or more",
		-1: "peersession: ClusterConfig.Copies -1 is out of range",
	} {
		_, err := New(Config{Cluster: &ClusterConfig{Name: "a", Copies: copies}})
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), want), err.Error())
	}
}

// "Log out everywhere" finds every session of a user, whichever nodes
// hold them: each node indexes only its own, so the node asked asks every
// peer, and counts each session once however many holders ended it.
func TestPartitionedDestroyPrincipalEndsSessionsOnEveryNode(t *testing.T) {
	tc := newTestCluster(t, withCopies(2))
	nodes := tc.startAll("a", "b", "c", "d")
	var alice, bob []string
	for i := range 24 {
		st := nodes[i%len(nodes)]
		s := sessionWith(t, st, "n", fmt.Sprint(i))
		user := "alice"
		if i%3 == 0 {
			user = "bob"
		}
		require.NoError(t, s.SetPrincipal(user))
		tok := save(t, st, s)
		if user == "alice" {
			alice = append(alice, tok)
		} else {
			bob = append(bob, tok)
		}
	}
	waitSettled(t, append(append([]string(nil), alice...), bob...), nodes...)
	asker := nodes[0]
	require.Less(t, len(asker.PrincipalSessions("alice")), len(alice), "the asker indexes only the sessions it holds")

	n, err := asker.DestroyPrincipal(t.Context(), "alice")
	require.NoError(t, err)
	assert.Equal(t, len(alice), n, "each of alice's sessions counted once")
	for _, st := range nodes {
		for _, tok := range alice {
			_, err := st.Load(t.Context(), tok)
			assert.ErrorIs(t, err, ErrNotFound, "alice's session still loads on %s", st.repl.cfg.Name)
		}
		for i, tok := range bob {
			assert.NotEmpty(t, loadValue(t, st, tok, "n"), "bob's session %d is gone on %s", i, st.repl.cfg.Name)
		}
		assert.Empty(t, st.PrincipalSessions("alice"))
	}
	n, err = nodes[2].DestroyPrincipal(t.Context(), "alice")
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left to end")
}

// Holders names the nodes a route-aware balancer can send a session's
// requests to: in partitioned mode its Copies holders, owner first, the
// same on every node; in full replication every live member.
func TestHoldersNamesTheNodesThatHoldASession(t *testing.T) {
	eachMode(t, func(t *testing.T, opts func(*Config)) {
		tc := newTestCluster(t, opts)
		nodes := tc.startAll("a", "b", "c")
		tok := create(t, nodes[1], map[string]any{"k": "v"})
		hs := nodes[0].Holders(tok)
		if nodes[0].part.Load() == nil {
			assert.Equal(t, []string{"a", "b", "c"}, hs)
			return
		}
		require.Len(t, hs, 2)
		for _, st := range nodes {
			assert.Equal(t, hs, st.Holders(tok), "%s places it elsewhere", st.repl.cfg.Name)
			assert.Equal(t, slices.Contains(hs, st.repl.cfg.Name), holds(st, tok))
		}
		assert.Nil(t, nodes[0].Holders("not a token"))
	})
	assert.Nil(t, newTestStore(t, Config{}).Holders("x"), "a single node")
}

// A read with a client's version stamp that the session's holders have not
// reached (here: a write made on a node that does not hold the session,
// whose replication to the holders is cut) asks the other nodes too, and
// finds the write: read-your-writes holds off the holders as well.
func TestPartitionedReadFindsAWriteItsHoldersLack(t *testing.T) {
	fn := faultnet.New(6)
	tc := newFaultCluster(t, fn, func(c *Config) {
		withCopies(2)(c)
		c.Cluster.AntiEntropyInterval = -1 // only the fetch may bring it
	})
	nodes := tc.startAll("a", "b", "c", "d")
	a, b := nodes[0], nodes[1]
	tok := ""
	for tok == "" || holds(a, tok) || holds(b, tok) { // a session held by c and d
		tok = create(t, nodes[2], map[string]any{"n": "old"})
	}
	eventuallyEverywhere(t, func(st *Store) bool { return holdsCopy(st, tok) == holds(st, tok) }, "not settled", nodes...)
	t.Cleanup(fn.Reset)
	fn.DropRate("a", "c", faultnet.Replication, 1)
	fn.DropRate("a", "d", faultnet.Replication, 1)

	// A newer write on a that c and d never get, as a stray on a.
	solo := newTestStore(t, Config{})
	newer := solo.lookup(idOf(mustToken(t, create(t, solo, map[string]any{"n": "new"})))).rec
	token, _ := parseCookie(tok)
	id := idOf(token)
	kv, _ := newer.Get("n")
	kv.Ver = a.clock.Now()
	delta := model.Record{ID: id, Keys: []model.KeyValue{{Key: "n", Value: kv}}}
	require.Zero(t, replStore{a}.Apply([]model.Record{model.Merge(nodes[2].shards.get(id).rec, delta)}))
	stamped := b.cookieValue(token, a.shards.get(id).stamp) // what the client of that write holds

	assert.Equal(t, "new", loadValue(t, b, stamped, "n"), "the read did not find the client's own write")
	assert.Equal(t, "old", loadValue(t, b, tok, "n"), "without the stamp, the holders' copy serves")
}

// A token whose session was destroyed cannot be saved again through
// LoadOrCreate, also on a node that does not hold the session (the
// tombstone is on its holders).
func TestPartitionedLoadOrCreateRefusesADestroyedToken(t *testing.T) {
	tc := newTestCluster(t, withCopies(2))
	nodes := tc.startAll("a", "b", "c", "d")
	tok := newToken()
	s, err := nodes[0].LoadOrCreate(t.Context(), tok)
	require.NoError(t, err)
	require.NoError(t, s.Set("k", "v"))
	_, err = nodes[0].Save(t.Context(), s)
	require.NoError(t, err)
	require.NoError(t, nodes[0].Delete(t.Context(), tok))
	id := idOf(tok)
	eventuallyEverywhere(t, func(st *Store) bool {
		e := st.shards.get(id)
		return !holds(st, tok) || (e != nil && e.rec.IsDead())
	}, "the holders did not get the tombstone", nodes...)
	for _, st := range nodes {
		if holds(st, tok) {
			continue
		}
		s, err := st.LoadOrCreate(t.Context(), tok)
		require.NoError(t, err)
		require.True(t, s.IsNew())
		require.NoError(t, s.Set("k", "again"))
		_, err = st.Save(t.Context(), s)
		require.ErrorIs(t, err, ErrSessionEnded, "saved under a destroyed token on %s", st.repl.cfg.Name)
	}
}

// Partitioned mode needs wire format 2 of every peer (DestroyPrincipal's
// messages): a node that reads only format 1 is refused, and WaitReady
// says why, naming both formats.
func TestPartitionedModeRefusesAPeerOfFormatOne(t *testing.T) {
	tc := newTestCluster(t, withCopies(2))
	nodes := tc.startAll("a", "b")
	_, err := tc.startSpeaking("old", 2, cluster.Formats{Min: 1, Max: 1})
	require.ErrorIs(t, err, cluster.ErrFormatsDiffer)
	assert.Contains(t, err.Error(), "speaks wire format 2 and this node speaks 1")
	assertServes(t, nodes[0], nodes[1])
}
