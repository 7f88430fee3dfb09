package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"time"
)

// report is a run's figures and verdict.
type report struct {
	o       options
	begin   time.Time
	run     time.Duration
	nem     *nemesis
	final   heal
	ledger  *ledger
	samples []sample
}

// heals returns every check: each fault's heal, then the final one.
func (r report) heals() []heal { return append(slices.Clone(r.nem.heals), r.final) }

// print writes the summary and reports whether every check passed.
func (r report) print(w io.Writer) bool {
	var b bytes.Buffer
	ok := r.body(&b)
	_, _ = w.Write(b.Bytes())
	return ok
}

// writeMarkdown writes the report to path.
func (r report) writeMarkdown(path string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Chaos run (bench/run.sh chaos)\n\n")
	fmt.Fprintf(&b, "%s, %s/%s, %d CPUs. Replay: `%s`.\n\n", r.begin.UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), r.o.replay())
	r.body(&b)
	fmt.Fprintf(&b, "\n## Schedule\n\n")
	for _, h := range r.nem.heals {
		fmt.Fprintf(&b, "- %s: %s\n", h.step, h.summary())
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// body writes the figures as markdown and reports whether every check
// passed.
func (r report) body(b *bytes.Buffer) bool {
	ok := true
	fail := func(format string, a ...any) {
		ok = false
		fmt.Fprintf(b, "**FAIL**: "+format+"\n\n", a...)
	}
	o := r.o
	fmt.Fprintf(b, "Seed %d; %v of faults (%v in all); %d nodes, %s, %s; %d clients × %v operations/s.\n\n",
		o.seed, o.duration, r.run.Round(time.Second), o.nodes, o.consistency,
		map[string]string{"on": "network namespaces on a bridge", "off": "loopback"}[o.netns], o.clients, o.rate)

	fmt.Fprintf(b, "| faults injected | count |\n|---|---|\n")
	total := 0
	for _, k := range allFaults {
		if n := r.nem.faults[k]; n > 0 {
			fmt.Fprintf(b, "| %s | %d |\n", k, n)
			total += n
		}
	}
	fmt.Fprintf(b, "| all | %d |\n\n", total)

	r.ledger.mu.Lock()
	fmt.Fprintf(b, "| operation | acknowledged | not |\n|---|---|---|\n")
	ops := make([]string, 0, len(r.ledger.counts))
	for k := range r.ledger.counts {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	acked := 0
	for _, k := range ops {
		c := r.ledger.counts[k]
		fmt.Fprintf(b, "| %s | %d | %d |\n", k, c[0], c[1])
		acked += c[0]
	}
	fmt.Fprintf(b, "| all | %d | |\n\n", acked)
	r.ledger.mu.Unlock()

	var lost []loss
	var back []comeback
	indet := r.final.v.indeterminate
	late := 0
	for _, h := range r.heals() {
		late += h.v.lateUnacked
		lost = append(lost, h.v.lost...)
		back = append(back, h.v.comebacks...)
	}
	var unaccounted, accounted []time.Duration
	for _, l := range lost {
		if l.accounted {
			accounted = append(accounted, l.age)
		} else {
			unaccounted = append(unaccounted, 0)
		}
	}
	fmt.Fprintf(b, "Acknowledged writes lost: %d", len(lost))
	if len(accounted) > 0 {
		fmt.Fprintf(b, " (%d accounted for by a kill -9 of the node that acknowledged them, %v to %v after)", len(accounted), slices.Min(accounted).Round(time.Millisecond), slices.Max(accounted).Round(time.Millisecond))
	}
	fmt.Fprintf(b, ". Ended sessions back: %d. Sessions whose login or logout went unanswered, then gone: %d. "+
		"Values of unanswered writes found over later acknowledged ones (the request applied late, allowed): %d.\n\n", len(back), indet, late)
	for i, l := range lost {
		if i == 20 {
			fmt.Fprintf(b, "- … %d more\n", len(lost)-20)
			break
		}
		fmt.Fprintf(b, "- lost: session %.12s key %s=%d acknowledged by n%d at +%v; held %q (accounted: %v, %v)\n",
			l.id, l.key, l.ack.seq, l.ack.node+1, l.ack.at.Sub(r.begin).Round(time.Millisecond), l.have, l.accounted, l.age.Round(time.Millisecond))
	}
	for _, c := range back {
		fmt.Fprintf(b, "- back: session %.12s, ended (%s) by n%d at +%v (accounted: %v)\n", c.id, c.end.how, c.end.node+1, c.end.at.Sub(r.begin).Round(time.Millisecond), c.accounted)
	}
	if len(lost) > 0 || len(back) > 0 {
		b.WriteString("\n")
	}
	switch {
	case o.consistency == "sync" && len(lost) > 0:
		fail("%d acknowledged writes lost in Sync mode", len(lost))
	case len(unaccounted) > 0:
		fail("%d acknowledged writes lost without a kill of their node within %v", len(unaccounted), lossWindow)
	}
	for _, c := range back {
		if o.consistency == "sync" || !c.accounted {
			fail("ended sessions came back")
			break
		}
	}

	// Time to agree, by kind and in all: from the heal, and from the
	// moment membership was whole again (every node listing every other
	// as a live peer), which is what the 5 s target counts from (issue
	// 20): how soon memberlist sees a frozen or cut-off node again is
	// its failure detector's business, shown in the middle column.
	type times struct{ heal, whole, after []time.Duration }
	byKind := map[faultKind]*times{}
	all := &times{}
	late = 0
	for _, h := range r.heals() {
		after := h.agree - max(h.whole, 0)
		if !h.agreed || h.whole < 0 || after > o.agree {
			late++
		}
		t := byKind[h.step.Kind]
		if t == nil {
			t = &times{}
			byKind[h.step.Kind] = t
		}
		for _, x := range []*times{t, all} {
			if x == all && h.step.Kind == "final" {
				continue
			}
			x.heal = append(x.heal, h.agree)
			x.whole = append(x.whole, max(h.whole, 0))
			x.after = append(x.after, after)
		}
	}
	fmt.Fprintf(b, "| time to agree (p50 / p99 / max) | heals | from the heal | membership whole again | agreed after that |\n|---|---|---|---|---|\n")
	row := func(name string, t *times) {
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s |\n", name, len(t.heal), pcts(t.heal), pcts(t.whole), pcts(t.after))
	}
	for _, k := range append(slices.Clone(allFaults), "final") {
		if t := byKind[k]; t != nil {
			row(string(k), t)
		}
	}
	if len(all.heal) > 0 {
		row("all faults", all)
	}
	b.WriteString("\n")
	if late > 0 {
		fail("%d of %d checks did not agree within %v of membership being whole again", late, len(r.heals()), o.agree)
	}

	// Resources.
	fmt.Fprintf(b, "| node | minute | RSS MiB | heap MiB | goroutines | sockets | sessions | tombstones |\n|---|---|---|---|---|---|---|---|\n")
	for n := range o.nodes {
		last := map[int]sample{}
		for _, s := range r.samples {
			if s.node == n {
				last[int(s.at/time.Minute)] = s // the last sample of each minute
			}
		}
		mins := make([]int, 0, len(last))
		for m := range last {
			mins = append(mins, m)
		}
		sort.Ints(mins)
		for _, m := range mins {
			s := last[m]
			fmt.Fprintf(b, "| n%d | %d | %.0f | %.0f | %d | %d | %d | %d |\n", n+1, m, float64(s.rss)/(1<<20), float64(s.heap)/(1<<20), s.goroutines, s.sockets, s.sessions, s.tombstones)
		}
	}
	b.WriteString("\n")
	for _, bd := range bounded(r.samples, o.nodes, r.run) {
		if !bd.ok {
			fail("%s grew from a peak of %.0f in the first third of the run to %.0f in the last", bd.name, bd.first, bd.last)
		}
	}
	if ok {
		fmt.Fprintf(b, "Every check passed.\n")
	}
	return ok
}

// pcts formats p50 | p99 | max of d.
func pcts(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration { // nearest rank
		return s[max(0, int(math.Ceil(p*float64(len(s))))-1)]
	}
	r := func(x time.Duration) string { return x.Round(time.Millisecond).String() }
	return fmt.Sprintf("%s / %s / %s", r(at(0.50)), r(at(0.99)), r(s[len(s)-1]))
}
