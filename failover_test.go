package peersession

// Failover tests (issue 4): nodes killed, partitioned, frozen and
// restarted under writes, on the real loopback network with faults
// injected by internal/faultnet. Every wait is a condition with a bound;
// every load loop is bounded in count and time.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// convergeWithin bounds how long nodes may take to agree after a fault
// ends.
const convergeWithin = 20 * time.Second

// newFaultCluster is newTestCluster with every node on fn, named by its
// ClusterConfig.Name.
func newFaultCluster(t *testing.T, fn *faultnet.Net, opts func(*Config)) *testCluster {
	tc := newTestCluster(t, opts)
	tc.hooks = func(name string) hooks {
		return hooks{faults: func(cc *cluster.Config) {
			cc.WrapTransport = func(tr memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
				return fn.Transport(name, tr)
			}
			cc.Dial = fn.Dialer(name)
			cc.WrapListener = func(ln net.Listener) net.Listener { return fn.Listener(name, ln) }
		}}
	}
	return tc
}

// put loads token's session on st, sets key and saves: one write.
func put(ctx context.Context, st *Store, token, key, val string) error {
	s, err := st.Load(ctx, token)
	if err != nil {
		return err
	}
	if err := s.Set(key, val); err != nil {
		return err
	}
	_, err = st.Save(ctx, s)
	return err
}

// write is one write: key set to val in token's session, through node.
type write struct{ node, token, key, val string }

// writeLog collects the acknowledged writes of concurrent writers.
type writeLog struct {
	mu     sync.Mutex // guards acked and failed
	acked  []write
	failed int
}

func (l *writeLog) add(w write, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		return
	}
	l.acked = append(l.acked, w)
}

func (l *writeLog) snapshot() ([]write, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked), l.failed
}

// missing returns the writes of ws that st does not hold.
func missing(st *Store, ws []write) []write {
	var out []write
	read := map[string]*entry{} // each session read once, as a read finds it
	for _, w := range ws {
		e, ok := read[w.token]
		if !ok {
			e = readEntry(st, w.token)
			read[w.token] = e
		}
		if e == nil || entryValue(st, e, w.key) != w.val {
			out = append(out, w)
		}
	}
	return out
}

// sameDigests reports whether the nodes have converged: in full
// replication, every node has the same anti-entropy digest; in partitioned
// mode, every pair has the same digest of the sessions both hold, and no
// node has copies of sessions it does not hold waiting to be handed over.
func sameDigests(nodes ...*Store) bool {
	if nodes[0].part.Load() == nil {
		d := nodes[0].repl.eng.Digest()
		for _, st := range nodes[1:] {
			if !slices.Equal(d, st.repl.eng.Digest()) {
				return false
			}
		}
		return true
	}
	for i, x := range nodes {
		if x.repl.straysWaiting() > 0 {
			return false
		}
		for _, y := range nodes[i+1:] {
			if !slices.Equal(x.repl.eng.DigestWith(y.repl.node.Self().ID), y.repl.eng.DigestWith(x.repl.node.Self().ID)) {
				return false
			}
		}
	}
	return true
}

// heldBy reports whether st has a copy of each of tokens that it holds
// (every one in full replication; see holds).
func heldBy(st *Store, tokens []string) bool {
	for _, tok := range tokens {
		if holds(st, tok) && !holdsCopy(st, tok) {
			return false
		}
	}
	return true
}

// eventually waits for cond, bounded by convergeWithin, and returns how
// long it took.
func eventually(t *testing.T, cond func() bool, msg string, args ...any) time.Duration {
	t.Helper()
	start := time.Now()
	require.Eventually(t, cond, convergeWithin, tick, append([]any{msg}, args...)...)
	return time.Since(start)
}

// lazyText is a message argument written when the message is: what a
// condition found at its last try.
type lazyText func() string

func (f lazyText) String() string { return f() }

// percentiles returns the median and the largest of ds.
func percentiles(ds []time.Duration) (p50, top time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)-1]
}

// TestFailoverKillUnderWrites: three nodes take writes to many sessions,
// one dies without leaving half-way. Sync loses no acknowledged write;
// Async keeps every write that reached a survivor and reports how many
// the victim took with it.
func TestFailoverKillUnderWrites(t *testing.T) {
	eachMode(t, testFailoverKillUnderWrites)
}

func testFailoverKillUnderWrites(t *testing.T, copies func(*Config)) {
	for _, mode := range []Consistency{Sync, Async} {
		t.Run(map[Consistency]string{Sync: "Sync", Async: "Async"}[mode], func(t *testing.T) {
			const (
				sessions  = 30
				perWriter = 300
			)
			fn := faultnet.New(1)
			tc := newFaultCluster(t, fn, func(c *Config) { c.Cluster.Consistency = mode; copies(c) })
			nodes := tc.startAll("a", "b", "c")
			a, b, c := nodes[0], nodes[1], nodes[2]
			toks := make([]string, sessions)
			for i := range toks {
				toks[i] = create(t, nodes[i%3], map[string]any{"s": fmt.Sprint(i)})
			}
			eventuallyEverywhere(t, func(st *Store) bool { return heldBy(st, toks) }, "sessions not replicated", nodes...)

			var log writeLog
			var done atomic.Int64
			var wg sync.WaitGroup
			until := time.Now().Add(30 * time.Second)
			for w, st := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := []string{"a", "b", "c"}[w]
					for i := range perWriter {
						if time.Now().After(until) || st.closed.Load() {
							return
						}
						wr := write{name, toks[(w*7+i)%sessions], fmt.Sprintf("w%d-%d", w, i), fmt.Sprint(i)}
						err := put(context.Background(), st, wr.token, wr.key, wr.val)
						if err != nil && st.closed.Load() {
							return // the victim: not acknowledged
						}
						log.add(wr, err)
						done.Add(1)
					}
				}()
			}
			require.Eventually(t, func() bool { return done.Load() >= perWriter }, waitFor, tick, "writers stalled")
			kill(c)
			// What reached a survivor by now must survive.
			acked, _ := log.snapshot()
			var reached []write
			for _, w := range acked {
				if w.node == "c" && (value(a, w.token, w.key) == w.val || value(b, w.token, w.key) == w.val) {
					reached = append(reached, w)
				}
			}
			wg.Wait()
			acked, failed := log.snapshot()
			var fromVictim, fromSurvivors []write
			for _, w := range acked {
				if w.node == "c" {
					fromVictim = append(fromVictim, w)
				} else {
					fromSurvivors = append(fromSurvivors, w)
				}
			}

			must := append(slices.Clone(fromSurvivors), reached...)
			if mode == Sync {
				must = acked
			}
			took := eventually(t, func() bool {
				return sameDigests(a, b) && len(missing(a, must)) == 0 && len(missing(b, must)) == 0
			}, "survivors did not converge (missing on a: %d, on b: %d)", len(missing(a, must)), len(missing(b, must)))
			lost := missing(a, fromVictim)
			assert.Equal(t, lost, missing(b, fromVictim), "survivors disagree")
			t.Logf("%v: %d writes acknowledged (%d by the victim, %d had reached a survivor at the kill), %d failed; "+
				"victim took %d acknowledged writes with it; survivors converged in %v",
				mode, len(acked), len(fromVictim), len(reached), failed, len(lost), took.Round(time.Millisecond))
			if mode == Sync {
				assert.Empty(t, lost, "Sync lost acknowledged writes")
			}
		})
	}
}

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

// TestFailoverFrozenPeerDoesNotStallSyncWrites: with Sync, MinAcks 1 and
// three nodes, a peer that stops answering (but whose TCP port still
// accepts) does not make writes fail, before or after it is declared dead;
// once it runs again it catches up.
func TestFailoverFrozenPeerDoesNotStallSyncWrites(t *testing.T) {
	fn := faultnet.New(3)
	tc := newFaultCluster(t, fn, func(c *Config) {
		c.Cluster.Consistency = Sync
		c.Cluster.MinAcks = 1
		c.MaxSessionBytes = 1 << 20 // room for a key a write, up to 5,000
	})
	nodes := tc.startAll("a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	t.Cleanup(fn.Reset)
	tok := create(t, a, map[string]any{"start": "x"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", nodes...)

	fn.Freeze("c")
	var ws []write
	var before, after []time.Duration
	frozenAt := time.Now()
	until := frozenAt.Add(20 * time.Second)
	for i := 0; i < 5000 && len(after) < 50 && time.Now().Before(until); i++ {
		w := write{"a", tok, fmt.Sprintf("k%d", i), fmt.Sprint(i)}
		start := time.Now()
		require.NoError(t, put(t.Context(), a, w.token, w.key, w.val), "write %d with c frozen", i)
		if alive(a) == 3 {
			before = append(before, time.Since(start))
		} else {
			after = append(after, time.Since(start))
		}
		ws = append(ws, w)
		require.Empty(t, missing(b, ws[i:]), "an acknowledged write is not on b")
	}
	tc.waitMembers(2, a, b)
	declared := time.Since(frozenAt)
	p50b, maxb := percentiles(before)
	p50a, maxa := percentiles(after)
	t.Logf("c frozen: declared dead after %v; %d writes while it looked alive (median %v, max %v), %d after (median %v, max %v)",
		declared.Round(time.Millisecond), len(before), p50b, maxb, len(after), p50a, maxa)

	fn.Unfreeze("c")
	tc.waitMembers(3, nodes...)
	took := eventually(t, func() bool { return sameDigests(nodes...) && len(missing(c, ws)) == 0 },
		"c did not catch up after the freeze")
	t.Logf("c back: caught up in %v; faults: %+v", took.Round(time.Millisecond), fn.Stats())
}

// TestFailoverRollingRestart restarts every node in turn (Close, then a new
// process with the same name) while a writer keeps writing to live nodes:
// every acknowledged write ends up on every node.
func TestFailoverRollingRestart(t *testing.T) {
	eachMode(t, testFailoverRollingRestart)
}

func testFailoverRollingRestart(t *testing.T, copies func(*Config)) {
	for _, mode := range []Consistency{Async, Sync} {
		t.Run(map[Consistency]string{Sync: "Sync", Async: "Async"}[mode], func(t *testing.T) {
			const (
				sessions  = 40
				maxWrites = 20000
			)
			fn := faultnet.New(4)
			tc := newFaultCluster(t, fn, func(c *Config) { c.Cluster.Consistency = mode; copies(c) })
			names := []string{"a", "b", "c"}
			nodes := tc.startAll(names...)
			toks := make([]string, sessions)
			for i := range toks {
				toks[i] = create(t, nodes[i%3], map[string]any{"s": fmt.Sprint(i)})
			}
			eventuallyEverywhere(t, func(st *Store) bool { return heldBy(st, toks) }, "not replicated", nodes...)

			var mu sync.Mutex // guards live
			live := map[string]*Store{"a": nodes[0], "b": nodes[1], "c": nodes[2]}
			pick := func(i int) (string, *Store) {
				mu.Lock()
				defer mu.Unlock()
				for j := range names {
					name := names[(i+j)%len(names)]
					if st := live[name]; st != nil {
						return name, st
					}
				}
				return "", nil
			}
			var log writeLog
			var writes atomic.Int64
			stop := make(chan struct{})
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				// Steady, not flat out: at most one write per tick, so
				// the load is the same on fast and slow machines.
				pace := time.NewTicker(2 * time.Millisecond)
				defer pace.Stop()
				until := time.Now().Add(60 * time.Second)
				for i := 0; i < maxWrites && time.Now().Before(until); i++ {
					select {
					case <-stop:
						return
					case <-pace.C:
					}
					name, st := pick(i)
					w := write{name, toks[i%sessions], fmt.Sprintf("r%d", i), fmt.Sprint(i)}
					log.add(w, put(context.Background(), st, w.token, w.key, w.val))
					writes.Add(1)
				}
			}()
			progress := func(n int64) {
				t.Helper()
				target := writes.Load() + n
				require.Eventually(t, func() bool { return writes.Load() >= target }, waitFor, tick, "the writer stalled")
			}

			progress(100)
			var closeErrs []string
			for _, name := range names {
				mu.Lock()
				old := live[name]
				delete(live, name) // the balancer takes it out first
				var others []*Store
				var seeds []string
				for _, st := range live {
					others = append(others, st)
					seeds = append(seeds, st.repl.node.GossipAddr())
				}
				mu.Unlock()
				// Known issue (replicate/): under steady writes elsewhere,
				// anti-entropy keeps pushing whole buckets and acks keep
				// flowing, so the Flush in Close, which waits for every
				// peer to be idle at once, can time out although the
				// node's own changes went out. Logged, not failed: what
				// this test promises is checked below, that nothing
				// acknowledged is lost.
				if err := old.Close(); err != nil {
					closeErrs = append(closeErrs, fmt.Sprintf("%s: %v", name, err))
				}
				tc.waitMembers(2, others...)
				progress(100)

				tc.mu.Lock()
				tc.seeds = seeds
				tc.mu.Unlock()
				st := tc.start(name) // WaitReady: the state transfer is done
				tc.waitMembers(3, append(others, st)...)
				mu.Lock()
				live[name] = st
				mu.Unlock()
				progress(100)
			}
			close(stop)
			<-writerDone

			final := []*Store{live["a"], live["b"], live["c"]}
			acked, failed := log.snapshot()
			took := eventually(t, func() bool {
				for _, st := range final {
					if len(missing(st, acked)) > 0 {
						return false
					}
				}
				return sameDigests(final...)
			}, "acknowledged writes lost in the rolling restart (missing on a: %d, b: %d, c: %d)",
				len(missing(final[0], acked)), len(missing(final[1], acked)), len(missing(final[2], acked)))
			t.Logf("%v: %d writes acknowledged, %d failed (node closing); all nodes hold them all %v after the last restart",
				mode, len(acked), failed, took.Round(time.Millisecond))
			if len(closeErrs) > 0 {
				t.Logf("KNOWN ISSUE: graceful Close failed to flush in time: %v", closeErrs)
			}
		})
	}
}

// TestFailoverNonStickyReadsWithReplicationImpaired: a client alternating
// between nodes on every request sees its own writes although replication
// between those two nodes is delayed (Async) or dropped (Sync, a third
// node acknowledging): the read-side peer fetch is what serves them.
func TestFailoverNonStickyReadsWithReplicationImpaired(t *testing.T) {
	cases := []struct {
		name  string
		mode  Consistency
		nodes []string
		steps int
		fault func(fn *faultnet.Net)
		fetch time.Duration
	}{
		{
			// Each replication message between a and b arrives 50ms late:
			// a read on the other node right after a write can only be
			// served by waiting for its fetch.
			name: "Async", mode: Async, nodes: []string{"a", "b"}, steps: 20, fetch: 2 * time.Second,
			fault: func(fn *faultnet.Net) {
				fn.Delay("a", "b", faultnet.Replication, 50*time.Millisecond)
				fn.Delay("b", "a", faultnet.Replication, 50*time.Millisecond)
			},
		},
		{
			// Nothing gets through between a and b; c acknowledges the
			// writes and answers b's and a's fetches.
			name: "Sync", mode: Sync, nodes: []string{"a", "b", "c"}, steps: 15, fetch: 300 * time.Millisecond,
			fault: func(fn *faultnet.Net) {
				fn.DropRate("a", "b", faultnet.Replication, 1)
				fn.DropRate("b", "a", faultnet.Replication, 1)
			},
		},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			fn := faultnet.New(5)
			tc := newFaultCluster(t, fn, func(c *Config) {
				c.Cluster.Consistency = tt.mode
				c.Cluster.FetchTimeout = tt.fetch
				c.Cluster.AntiEntropyInterval = -1 // only the fetch may repair
			})
			nodes := tc.startAll(tt.nodes...)
			t.Cleanup(fn.Reset)
			tt.fault(fn)
			alternate(t, nodes[0], nodes[1], tt.steps)
			sa, sb := nodes[0].Stats(), nodes[1].Stats()
			assert.Positive(t, sa.Fetches+sb.Fetches, "no read needed a fetch: the fault did not bite")
			t.Logf("fetches a %d (hits %d), b %d (hits %d); faults: %+v", sa.Fetches, sa.FetchHits, sb.Fetches, sb.FetchHits, fn.Stats())
		})
	}
}
