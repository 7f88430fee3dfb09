package peersession

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/require"
)

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
