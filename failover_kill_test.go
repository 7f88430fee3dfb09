package peersession

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
