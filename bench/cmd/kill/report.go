package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/peersession/peersession/bench/internal/figures"
	"github.com/peersession/peersession/bench/internal/proc"
)

// quantile returns the q-quantile of sorted samples (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// medianF is stats.Median, NaN for no samples (the report shows NaN).
func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return figures.Median(xs)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func secs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func num(m map[string]any, path ...string) float64 {
	v, _ := proc.Get(m, path...).(float64)
	return v
}

// delta sums a counter's growth over the survivors between two snapshots.
func delta(a, b []map[string]any, path ...string) float64 {
	var s float64
	for i := range a {
		s += num(b[i], path...) - num(a[i], path...)
	}
	return s
}

func report(o *options, rounds []*round, took time.Duration) string {
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "### kill -9 of one of three nodes (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, shared with other work (figures are noisy). Three peersession node processes "+
		"(bench/cmd/server, Async, default ClusterConfig: FetchTimeout %v, memberlist's LAN failure detection) on 127.0.0.1; "+
		"%d clients, each with its own cookie jar and one session (created on one node), send GET /rw (read the counter "+
		"and a 1 KiB value, increment, save) round-robin over the nodes, paced at %.0f requests/s in all (a client "+
		"waits for its answer; one that fell behind sends at once). After %v of warm-up and %v measured, node c is "+
		"taken out of the rotation and sent SIGKILL; the load goes on over a and b for at least %v and until %v after "+
		"both had declared c dead (c gone from their /stats replication peers; at most %v). Latency is the survivors' "+
		"(a and b), by the request's send time; \"≥ FT\" counts requests that took FetchTimeout or more. The windows by "+
		"time since the kill and the one from the verdict on overlap. %d rounds, each on a fresh cluster; the table "+
		"gives the medians of the rounds. Run took %v.\n\n",
		host, runtime.NumCPU(), o.fetchTimeout, o.workers, o.rate, o.warm, o.before, o.after, o.afterDead, o.maxAfter,
		len(rounds), took.Round(time.Second))

	b.WriteString("| window | requests/s | p50 | p99 | max | ≥ FT | ≥ FT share | errors | lost writes |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	names := []string{}
	for _, w := range rounds[0].windows {
		names = append(names, w.name)
	}
	for _, name := range names {
		var rate, p50, p99, mx, slow, share, errs, mism []float64
		for _, r := range rounds {
			i := slices.IndexFunc(r.windows, func(w window) bool { return w.name == name })
			if i < 0 {
				continue
			}
			w := r.windows[i]
			rate = append(rate, w.rate())
			p50 = append(p50, float64(w.p50))
			p99 = append(p99, float64(w.p99))
			mx = append(mx, float64(w.max))
			slow = append(slow, float64(w.slow))
			share = append(share, 100*float64(w.slow)/float64(max(w.reqs, 1)))
			errs = append(errs, float64(w.errors))
			mism = append(mism, float64(w.mismatch))
		}
		label := name
		if len(rate) < len(rounds) {
			label += fmt.Sprintf(" (%d of %d rounds)", len(rate), len(rounds))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %.0f | %.2f%% | %.0f | %.0f |\n", label, medianF(rate),
			ms(time.Duration(medianF(p50))), ms(time.Duration(medianF(p99))), ms(time.Duration(medianF(mx))),
			medianF(slow), medianF(share), medianF(errs), medianF(mism))
	}

	b.WriteString("\nEach round:\n\n")
	b.WriteString("| round | before: p99, ≥ FT | 0–1 s: p99, ≥ FT | 1–5 s: p99, ≥ FT | 5–15 s: p99, ≥ FT | after dead: p99, ≥ FT | c unresponsive on a, b | c declared dead on a, b | requests to c that failed at the kill |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rounds {
		fmt.Fprintf(&b, "| %d |", r.n)
		for _, name := range []string{"before the kill", "0–1 s after", "1–5 s after", "5–15 s after", "after declared dead"} {
			i := slices.IndexFunc(r.windows, func(w window) bool { return w.name == name })
			if i < 0 {
				b.WriteString(" – |")
				continue
			}
			w := r.windows[i]
			fmt.Fprintf(&b, " %s, %d of %d |", ms(w.p99), w.slow, w.reqs)
		}
		var failed int
		for _, s := range r.samples {
			if int(s.node) == r.killed && s.res != resOK {
				failed++
			}
		}
		fmt.Fprintf(&b, " %s, %s | %s, %s | %d |\n", secs(r.detect[0].unresponsive), secs(r.detect[1].unresponsive),
			secs(r.detect[0].dead), secs(r.detect[1].dead), failed)
	}

	b.WriteString("\nThe survivors' read path (a + b, medians of the rounds): reads of a session whose client saw a later write " +
		"(made on another node) that waited briefly for it to arrive by replication (waits, and those it reached: hits), " +
		"and peer fetches (fetches, and those that found a newer copy); fetch skips count peers a fetch did not wait " +
		"for (c, once its stream was reset), fetch timeouts the peers a fetch waited on until FetchTimeout.\n\n")
	b.WriteString("| period | waits | wait hits | fetches | fetch hits | fetch skips | fetch timeouts | replication dropped |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, per := range []struct {
		name string
		a, b func(*round) []map[string]any
	}{
		{"before the kill (measured window)", func(r *round) []map[string]any { return r.stats0 }, func(r *round) []map[string]any { return r.stats1 }},
		{"from the kill to the end", func(r *round) []map[string]any { return r.stats1 }, func(r *round) []map[string]any { return r.stats2 }},
	} {
		var cols [7][]float64
		for _, r := range rounds {
			a, z := per.a(r), per.b(r)
			for i, p := range [][]string{
				{"store", "FetchWaits"}, {"store", "FetchWaitHits"}, {"store", "Fetches"}, {"store", "FetchHits"},
				{"store", "Replication", "FetchSkips"}, {"store", "Replication", "FetchTimeouts"}, {"store", "Replication", "Dropped"},
			} {
				cols[i] = append(cols[i], delta(a, z, p...))
			}
		}
		fmt.Fprintf(&b, "| %s |", per.name)
		for _, c := range cols {
			fmt.Fprintf(&b, " %.0f |", medianF(c))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nWhen the requests that took FetchTimeout or more were sent (survivors only; by second since the kill: " +
		"how many, on which node, the slowest, and how late the load generator's own 1 ms sleeper woke at worst in that " +
		"second — a sleeper as late as the requests means the machine, not a node, stalled):\n\n")
	for _, r := range rounds {
		fmt.Fprintf(&b, "- round %d: %s\n", r.n, slowTimeline(r, o.fetchTimeout))
	}
	b.WriteString("\nThe sleeper's wake-ups at least " + ms(lateMin) + " late, per window (count, worst; medians of the rounds):")
	for _, w := range rounds[0].windows {
		var cnt, worst []float64
		for _, r := range rounds {
			i := slices.IndexFunc(r.windows, func(x window) bool { return x.name == w.name })
			if i < 0 {
				continue
			}
			from, to := r.windows[i].from, r.windows[i].to
			var c, m float64
			for _, l := range r.late {
				if l.t >= from && l.t < to {
					c++
					m = max(m, float64(l.lat))
				}
			}
			cnt = append(cnt, c)
			worst = append(worst, m)
		}
		fmt.Fprintf(&b, " %s %.0f, %s;", w.name, medianF(cnt), ms(time.Duration(medianF(worst))))
	}
	b.WriteString("\n")
	var ach []float64
	for _, r := range rounds {
		ach = append(ach, r.achieved)
	}
	fmt.Fprintf(&b, "\nRequests sent before the kill (all three nodes): %.0f/s (median of the rounds; the target was %.0f/s). "+
		"Lost writes: a survivor answered a counter older than the client's last write; after a kill -9 in Async mode, "+
		"these are writes c acknowledged and had not yet replicated.\n", medianF(ach), o.rate)
	return b.String()
}

// slowTimeline lists, second by second since the kill, the survivors'
// requests that took at least ft.
func slowTimeline(r *round, ft time.Duration) string {
	type bucket struct {
		n, a, b int
		max     time.Duration
		late    time.Duration // the sleeper's worst lateness in that second
	}
	bs := map[int]*bucket{}
	for _, s := range r.samples {
		if int(s.node) == r.killed || s.lat < ft {
			continue
		}
		sec := int(math.Floor(s.t.Seconds()))
		if bs[sec] == nil {
			bs[sec] = &bucket{}
		}
		bs[sec].n++
		if s.node == 0 {
			bs[sec].a++
		} else {
			bs[sec].b++
		}
		bs[sec].max = max(bs[sec].max, s.lat)
	}
	for _, l := range r.late {
		if b := bs[int(math.Floor(l.t.Seconds()))]; b != nil {
			b.late = max(b.late, l.lat)
		}
	}
	if len(bs) == 0 {
		return "none"
	}
	var keys []int
	for k := range bs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		b := bs[k]
		late := "under " + ms(lateMin)
		if b.late > 0 {
			late = ms(b.late)
		}
		parts = append(parts, fmt.Sprintf("%d–%d s: %d (a %d, b %d; slowest %s; sleeper late %s)", k, k+1, b.n, b.a, b.b, ms(b.max), late))
	}
	return strings.Join(parts, ", ")
}
