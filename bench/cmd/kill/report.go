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
	mode := "full replication"
	if o.copies > 0 {
		mode = fmt.Sprintf("partitioned mode, Copies %d", o.copies)
	}
	killed := nodeNames(o.nodes)[o.nodes-1]
	fmt.Fprintf(&b, "### kill -9 of one of %d nodes, %s (%s)\n\n", o.nodes, mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, shared with other work (figures are noisy). %d peersession node processes "+
		"(bench/cmd/server, Async, %s, default ClusterConfig otherwise: FetchTimeout %v, memberlist's LAN failure detection) on 127.0.0.1; "+
		"%d clients, each with its own cookie jar and one session (created on one node, every copy held before the load starts), "+
		"sent by %d workers in turn: GET /rw (read the counter and a 1 KiB value, increment, save), each client's next request "+
		"on the next node, paced at %.0f requests/s in all (a worker waits for its answer; one that fell behind sends at once). "+
		"After %v of warm-up and %v measured, node %s is taken out of the rotation and sent SIGKILL; the load goes on over the "+
		"survivors for at least %v and until %v after every session had its full copies again (each on every one of its holders "+
		"under the survivors' membership, by /where's Store.Holders and /held's Store.All; at most %v). Latency is the "+
		"survivors', by the request's send time; \"≥ FT\" counts requests that took FetchTimeout or more (they waited on a peer). "+
		"\"Not found\": a client's session answered as missing (a false logout); 5xx: other server errors (503: the holders did not "+
		"answer in time). The windows by time since the kill and the one from the verdict on overlap. %d rounds, each on a fresh "+
		"cluster; the tables give the medians of the rounds. Run took %v.\n\n",
		host, runtime.NumCPU(), o.nodes, mode, o.fetchTimeout, max(o.sessions, o.workers), o.workers, o.rate, o.warm, o.before, killed,
		o.after, o.afterDead, o.maxAfter, len(rounds), took.Round(time.Second))

	b.WriteString("| sessions | declared dead by every survivor | full copies again, from the kill | from the verdict | sessions lost | not found | 5xx | ≥ FT | lost writes | not found at set-up |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var dead, full, fromVerdict, lost, missing, fivexx, slow, mism, setup []float64
	everFull := true
	for _, r := range rounds {
		dead = append(dead, r.deadAt.Seconds())
		if r.fullAt < 0 || r.deadAt < 0 {
			everFull = false
		} else {
			full = append(full, r.fullAt.Seconds())
			fromVerdict = append(fromVerdict, (r.fullAt - r.deadAt).Seconds())
		}
		lost = append(lost, float64(r.lost))
		setup = append(setup, float64(r.setup.clients))
		var m, f, sl, mi int
		for _, w := range r.windows {
			if w.name == "after declared dead" {
				continue // overlaps the windows by time since the kill
			}
			m, f, sl, mi = m+w.missing, f+w.fivexx, sl+w.slow, mi+w.mismatch
		}
		missing, fivexx, slow, mism = append(missing, float64(m)), append(fivexx, float64(f)), append(slow, float64(sl)), append(mism, float64(mi))
	}
	fullS, fromS := "never (see each round)", "–"
	if everFull {
		fullS, fromS = fmt.Sprintf("%.1f s", medianF(full)), fmt.Sprintf("%.2f s", medianF(fromVerdict))
	}
	fmt.Fprintf(&b, "| %d | %.1f s | %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n\n", rounds[0].sessions, medianF(dead), fullS, fromS,
		medianF(lost), medianF(missing), medianF(fivexx), medianF(slow), medianF(mism), medianF(setup))
	b.WriteString("Sessions lost: not found on a survivor when each client read its session once more after the load. Not found, 5xx, " +
		"≥ FT and lost writes: survivors' answers from the start of the measured window to the end of the load. Not found at set-up: " +
		"clients whose first read (GET /where, on the node that had just created their session, before the load) answered that the session " +
		"does not exist (asked again every 100 ms, each was found within 10 s, else the round fails; the longest wait is in the per-round table).\n\n")

	b.WriteString("| window | requests/s | p50 | p99 | max | ≥ FT | ≥ FT share | not found | 5xx | other errors | lost writes |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	names := []string{}
	for _, w := range rounds[0].windows {
		names = append(names, w.name)
	}
	for _, name := range names {
		var rate, p50, p99, mx, slow, share, missing, fivexx, errs, mism []float64
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
			missing = append(missing, float64(w.missing))
			fivexx = append(fivexx, float64(w.fivexx))
			errs = append(errs, float64(w.errors))
			mism = append(mism, float64(w.mismatch))
		}
		label := name
		if len(rate) < len(rounds) {
			label += fmt.Sprintf(" (%d of %d rounds)", len(rate), len(rounds))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %.0f | %.2f%% | %.0f | %.0f | %.0f | %.0f |\n", label, medianF(rate),
			ms(time.Duration(medianF(p50))), ms(time.Duration(medianF(p99))), ms(time.Duration(medianF(mx))),
			medianF(slow), medianF(share), medianF(missing), medianF(fivexx), medianF(errs), medianF(mism))
	}

	b.WriteString("\nEach round:\n\n")
	b.WriteString("| round | before: p99, ≥ FT | 0–1 s: p99, ≥ FT | 1–5 s: p99, ≥ FT | 5–15 s: p99, ≥ FT | after dead: p99, ≥ FT | " + killed + " unresponsive on the survivors (first–last) | declared dead (first–last) | full copies again | sessions lost / stale / unchecked | not found at set-up: clients, longest | requests to " + killed + " that failed at the kill |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
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
		un, dd := spread(r.detect, func(d detect) time.Duration { return d.unresponsive }), spread(r.detect, func(d detect) time.Duration { return d.dead })
		fmt.Fprintf(&b, " %s | %s | %s (%s) | %d / %d / %d | %d, %s | %d |\n", un, dd, secs(r.fullAt), r.fullLast, r.lost, r.stale, r.unchecked,
			r.setup.clients, secs(r.setup.longest), failed)
	}

	for _, r := range rounds {
		if len(r.errSamples) > 0 {
			fmt.Fprintf(&b, "\nRound %d, errors the load met (the first of each client, up to five distinct): %q\n", r.n, r.errSamples)
		}
	}
	b.WriteString("\nThe survivors' read path (a + b, medians of the rounds): reads of a session whose client saw a later write " +
		"(made on another node) that waited briefly for it to arrive by replication (waits, and those it reached: hits), " +
		"and peer fetches (fetches, and those that found a newer copy); fetch skips count peers a fetch did not wait " +
		"for (the killed node, once its stream was reset), fetch timeouts the peers a fetch waited on until FetchTimeout.\n\n")
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
		"how many, on which nodes, the slowest, and how late the load generator's own 1 ms sleeper woke at worst in that " +
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
	fmt.Fprintf(&b, "\nRequests sent before the kill (all nodes): %.0f/s (median of the rounds; the target was %.0f/s). "+
		"Lost writes: a survivor answered a counter older than the client's last write; after a kill -9 in Async mode, "+
		"these are writes the killed node acknowledged and had not yet replicated. Stale (after the load): a session whose counter "+
		"is older than the client's last write, the same loss seen at the end.\n", medianF(ach), o.rate)
	return b.String()
}

// slowTimeline lists, second by second since the kill, the survivors'
// requests that took at least ft.
func slowTimeline(r *round, ft time.Duration) string {
	type bucket struct {
		n      int
		byNode map[int8]int
		max    time.Duration
		late   time.Duration // the sleeper's worst lateness in that second
	}
	bs := map[int]*bucket{}
	for _, s := range r.samples {
		if int(s.node) == r.killed || s.lat < ft {
			continue
		}
		sec := int(math.Floor(s.t.Seconds()))
		if bs[sec] == nil {
			bs[sec] = &bucket{byNode: map[int8]int{}}
		}
		bs[sec].n++
		bs[sec].byNode[s.node]++
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
		var on []string
		for node := range int8(len(r.names)) {
			if c := b.byNode[node]; c > 0 {
				on = append(on, fmt.Sprintf("%s %d", r.names[node], c))
			}
		}
		parts = append(parts, fmt.Sprintf("%d–%d s: %d (%s; slowest %s; sleeper late %s)", k, k+1, b.n, strings.Join(on, ", "), ms(b.max), late))
	}
	return strings.Join(parts, ", ")
}

// spread renders the first and last of the survivors' times (never: -1).
func spread(ds []detect, f func(detect) time.Duration) string {
	lo, hi, never := time.Duration(-1), time.Duration(-1), 0
	for _, d := range ds {
		t := f(d)
		if t < 0 {
			never++
			continue
		}
		if lo < 0 || t < lo {
			lo = t
		}
		hi = max(hi, t)
	}
	out := secs(lo) + "–" + secs(hi)
	if lo == hi {
		out = secs(lo)
	}
	if never > 0 {
		out += fmt.Sprintf(" (%d never)", never)
	}
	return out
}
