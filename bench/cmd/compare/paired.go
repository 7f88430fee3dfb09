package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/peersession/peersession/bench/internal/figures"
	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/loadgen"
)

// The paired measurement of alternating ÷ sticky throughput: one pair of
// nodes per consistency, and on it, cycle after cycle, a short slice of
// each load in turn: sticky (every request to A), then its alternating
// variants (A and B in turn), the order rotating each cycle. Each cycle
// gives a ratio of loads run within seconds of each other on the same
// processes, so the machine's other work, which moves the separate runs'
// figures by 2× on a shared 2-core machine, mostly cancels out; the
// figure is the median of the cycles' ratios.

// pairedResult is one sticky variant and its alternating ones, measured
// in cycles on one cluster.
type pairedResult struct {
	names []string    // the sticky variant first
	rps   [][]float64 // rps[i][c]: names[i] in cycle c
	errs  []int
	mism  []int
	notes []string
}

// runPaired measures each group of vs (a variant followed by the ones
// compared with it, see rotate) that has more than one member, in mode m.
// An alternating variant runs on its baseline's cluster; any other (a
// data-directory one) on a cluster of its own, started beside the
// baseline's and kept running, idle while the other is loaded.
func runPaired(bin string, vs []variant, m string, cycles int, slice time.Duration, lc loadgen.Config, sessions int) ([]pairedResult, error) {
	var out []pairedResult
	for _, g := range groupsOf(vs) {
		if len(g) < 2 {
			continue
		}
		pr, err := runPairedGroup(bin, g, m, cycles, slice, lc, sessions)
		if err != nil {
			return out, fmt.Errorf("%s: %w", g[0].name, err)
		}
		out = append(out, pr)
	}
	return out, nil
}

func runPairedGroup(bin string, g []variant, m string, cycles int, slice time.Duration, lc loadgen.Config, sessions int) (pairedResult, error) {
	pr := pairedResult{rps: make([][]float64, len(g)), errs: make([]int, len(g)), mism: make([]int, len(g))}
	clusters := make([][]*proc.Proc, len(g)) // clusters[i]: the processes g[i] runs on
	var all []*proc.Proc
	defer func() {
		for _, p := range all {
			p.Stop()
		}
	}()
	for i, v := range g {
		pr.names = append(pr.names, v.name)
		if i > 0 && v.alternate {
			clusters[i] = clusters[0]
			continue
		}
		procs, err := startServers(bin, "", v)
		all = append(all, procs...)
		if err != nil {
			return pr, err
		}
		clusters[i] = procs
	}
	for c := 0; c < cycles; c++ {
		for k := range g {
			i := (k + c) % len(g)
			v := g[i]
			cfg := v.load(lc, clusters[i], m)
			cfg.Sessions = sessions
			if v.sessions > 0 {
				cfg.Sessions = v.sessions
			}
			cfg.Duration = slice
			r, err := loadgen.Run(context.Background(), cfg)
			if err != nil {
				return pr, err
			}
			pr.rps[i] = append(pr.rps[i], r.RPS)
			pr.errs[i] += r.Errors
			pr.mism[i] += r.Mismatches
			fmt.Fprintf(os.Stderr, "paired %s cycle %d/%d %-17s: %s\n", m, c+1, cycles, v.name, r)
		}
	}
	for _, p := range all {
		if st, err := p.Stats(false); err == nil {
			if n := serverNotes(p.Name, st, true); n != "" {
				pr.notes = append(pr.notes, n)
			}
		}
	}
	return pr, nil
}

// groupsOf splits vs into groups: a variant and the ones compared with it
// (see baseOf) that follow it.
func groupsOf(vs []variant) [][]variant {
	var groups [][]variant
	for _, v := range vs {
		if n := len(groups); n > 0 && baseOf[v.name] != "" && baseOf[v.name] == groups[n-1][0].name {
			groups[n-1] = append(groups[n-1], v)
			continue
		}
		groups = append(groups, []variant{v})
	}
	return groups
}

func renderPaired(prs []pairedResult, m string, cycles int, slice time.Duration, workers, sessions int) string {
	if len(prs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#### throughput ÷ the baseline's, %s, paired (%d cycles × %v a load; median of the cycles' ratios)\n\n", m, cycles, slice)
	fmt.Fprintf(&b, "The baseline's node processes and, for a data-directory variant, its own beside them, all kept running; in each cycle, a %v slice of each load in turn (order rotating), "+
		"%d clients, each slice creating its own sessions (%d per client, or the variant's own count) before it runs. "+
		"An alternating variant runs on its sticky baseline's pair. Each cycle's ratio compares loads run seconds apart on the same processes.\n\n", slice, workers, sessions)
	b.WriteString("| variants | median ratio | middle half of the ratios | range | median req/s (variant, baseline) | errors (variant, baseline) | lost writes (variant, baseline) |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, pr := range prs {
		for i := 1; i < len(pr.names); i++ {
			var xs []float64
			for c := range pr.rps[i] {
				if c < len(pr.rps[0]) && pr.rps[0][c] > 0 {
					xs = append(xs, pr.rps[i][c]/pr.rps[0][c])
				}
			}
			if len(xs) == 0 {
				continue
			}
			q1, q3 := quartiles(xs)
			fmt.Fprintf(&b, "| %s ÷ %s | **%.2f×** | %.2f–%.2f | %.2f–%.2f | %.0f, %.0f | %d, %d | %d, %d |\n",
				pr.names[i], pr.names[0], figures.Median(xs), q1, q3, slices.Min(xs), slices.Max(xs),
				figures.Median(pr.rps[i]), figures.Median(pr.rps[0]), pr.errs[i], pr.errs[0], pr.mism[i], pr.mism[0])
		}
	}
	b.WriteString("\n")
	var notes []string
	for _, pr := range prs {
		notes = append(notes, pr.notes...)
	}
	if len(notes) > 0 {
		b.WriteString("Servers of the paired runs: " + strings.Join(notes, "; ") + ".\n\n")
	}
	return b.String()
}

// quartiles returns the 25th and 75th percentiles (nearest rank).
func quartiles(xs []float64) (float64, float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return at(0.25), at(0.75)
}
