package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// A node's execution trace, reduced to what the stall report needs: the
// garbage collector's mark phases and, for the goroutines that carry
// replication (and the writers that feed it), the intervals each spent
// running, runnable (waiting for a P) or blocked, on the wall clock.

// span is an interval on the wall clock, in Unix nanoseconds.
type span struct{ from, to int64 }

func (s span) overlap(o span) time.Duration {
	return time.Duration(max(0, min(s.to, o.to)-max(s.from, o.from)))
}

// state is one interval of one goroutine: what it was doing and, when
// blocked, where.
type state struct {
	span
	what  string // "running", "runnable", "syscall" or "blocked"
	where string // blocked: the reason and the innermost frames of interest
}

// traced is one node's trace.
type traced struct {
	marks []span             // GC concurrent mark phases
	roles map[string][]state // role -> states of every goroutine in it
}

// roleMarks name what a goroutine does by a function on its stack.
var roleMarks = []struct{ fn, role string }{
	{"replicate.(*peer).run", "sender"},
	{"cluster.(*Node).readFrames", "reader"},
	{"main.write.func", "writer"}, // the harness's writers: closures in write, bench/cmd/repl/node.go
}

// roleOf names what a goroutine does, from any of its stacks.
func roleOf(fns []string) string {
	for _, f := range fns {
		for _, m := range roleMarks {
			if strings.Contains(f, m.fn) {
				return m.role
			}
		}
	}
	return ""
}

// readTrace parses a runtime/trace capture (as /debug/pprof/trace serves it).
func readTrace(data []byte) (*traced, error) {
	r, err := trace.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	t := &traced{roles: map[string][]state{}}
	type g struct {
		role  string
		since trace.Time
		st    trace.GoState
		where string
		hist  []state // before the role was known
	}
	gs := map[trace.GoID]*g{}
	open := map[string]trace.Time{}
	var wall0 int64
	var t0 trace.Time
	clock := false
	wall := func(x trace.Time) int64 { return wall0 + int64(x-t0) }
	var pending []struct {
		name     string
		from, to trace.Time
	}
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch ev.Kind() {
		case trace.EventSync:
			if cs := ev.Sync().ClockSnapshot; cs != nil && !clock {
				wall0, t0, clock = cs.Wall.UnixNano(), cs.Trace, true
			}
		case trace.EventRangeBegin:
			rg := ev.Range()
			open[rg.Name+rg.Scope.String()] = ev.Time()
		case trace.EventRangeEnd:
			rg := ev.Range()
			k := rg.Name + rg.Scope.String()
			if b, ok := open[k]; ok {
				delete(open, k)
				pending = append(pending, struct {
					name     string
					from, to trace.Time
				}{rg.Name, b, ev.Time()})
			}
		case trace.EventStateTransition:
			tr := ev.StateTransition()
			if tr.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			id := tr.Resource.Goroutine()
			from, to := tr.Goroutine()
			x := gs[id]
			if x == nil {
				x = &g{since: ev.Time(), st: from}
				gs[id] = x
			}
			var fns []string
			if tr.Stack != trace.NoStack {
				for f := range tr.Stack.Frames() {
					fns = append(fns, f.Func)
				}
			}
			if x.role == "" {
				if x.role = roleOf(fns); x.role != "" {
					t.roles[x.role] = append(t.roles[x.role], x.hist...)
					x.hist = nil
				}
			}
			s := state{span: span{int64(x.since), int64(ev.Time())}, where: x.where}
			switch x.st {
			case trace.GoRunning:
				s.what = "running"
			case trace.GoRunnable:
				s.what = "runnable"
			case trace.GoSyscall:
				s.what = "syscall"
			default:
				s.what = "blocked"
			}
			if x.role != "" {
				t.roles[x.role] = append(t.roles[x.role], s)
			} else if len(x.hist) < 64 {
				x.hist = append(x.hist, s)
			}
			x.st, x.since, x.where = to, ev.Time(), ""
			if to != trace.GoRunning && to != trace.GoRunnable {
				x.where = strings.TrimSpace(tr.Reason + blockedAt(fns))
			}
		}
	}
	if !clock {
		return nil, fmt.Errorf("the trace has no clock snapshot (a Go 1.25 or later node is needed)")
	}
	for _, p := range pending {
		if p.name == "GC concurrent mark phase" {
			t.marks = append(t.marks, span{wall(p.from), wall(p.to)})
		}
	}
	for role, ss := range t.roles {
		for i := range ss {
			ss[i].from, ss[i].to = wall(trace.Time(ss[i].from)), wall(trace.Time(ss[i].to))
		}
		slices.SortFunc(ss, func(a, b state) int { return int(a.from - b.from) })
		t.roles[role] = ss
	}
	return t, nil
}

// blockedAt names the first frame outside the runtime and sync packages:
// the code that blocked.
func blockedAt(fns []string) string {
	for _, f := range fns {
		if strings.HasPrefix(f, "runtime.") || strings.HasPrefix(f, "sync.") || strings.HasPrefix(f, "internal/") ||
			strings.HasPrefix(f, "syscall.") || strings.HasPrefix(f, "net.") || strings.HasPrefix(f, "bufio.") || strings.HasPrefix(f, "io.") {
			continue
		}
		return " in " + f[strings.LastIndex(f, "/")+1:]
	}
	return ""
}

// timeIn is the time spent in one state ("what (where)").
type timeIn struct {
	k string
	d time.Duration
}

func (e timeIn) String() string { return fmt.Sprintf("%s %.1f ms", e.k, float64(e.d)/1e6) }

// during sums, per "what (where)", the time the role's goroutines spent in
// each state within w, and returns those of 1 ms or more, largest first.
func (t *traced) during(role string, w span) []timeIn {
	sum := map[string]time.Duration{}
	for _, s := range t.roles[role] {
		if s.from >= w.to {
			break
		}
		if d := s.overlap(w); d > 0 {
			k := s.what
			if s.where != "" {
				k += " (" + s.where + ")"
			}
			sum[k] += d
		}
	}
	return sortedDurations(sum)
}

// sortedDurations returns the entries of m of 1 ms or more, largest first.
func sortedDurations(m map[string]time.Duration) []timeIn {
	var out []timeIn
	for k, d := range m {
		if d >= time.Millisecond {
			out = append(out, timeIn{k, d})
		}
	}
	slices.SortFunc(out, func(a, b timeIn) int {
		if a.d != b.d {
			return int(b.d - a.d)
		}
		return strings.Compare(a.k, b.k)
	})
	return out
}

// gcIn returns how much of w the node spent in GC mark phases.
func (t *traced) gcIn(w span) time.Duration {
	var d time.Duration
	for _, m := range t.marks {
		d += m.overlap(w)
	}
	return d
}
