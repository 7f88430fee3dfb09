package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/bench/internal/figures"
	"github.com/peersession/peersession/bench/internal/procstat"
)

// Probe 1, login churn: one client re-posts /login with the cookie of its
// last login (RenewID: a new session replaces the old, whose tombstone
// stays), as fast as it can, against node A of a fresh pair. Both nodes'
// RSS and tombstone counts are sampled each second.

type churnSample struct {
	t                          time.Duration
	logins                     int64
	rssA, rssB                 int64
	tombA, tombB, dropA, dropB float64
	sessA, sessB               float64
}

type churnRun struct {
	label       string
	maxTombs    int // 0: the default
	logins      int64
	errors      int64
	elapsed     time.Duration
	samples     []churnSample
	heapA0      float64 // heap after GC before the load
	heapB0      float64
	heapA1      float64 // and after
	heapB1      float64
	end         map[string]any // A's and B's final /stats
	endB        map[string]any
	statusCodes map[int]int
	warm        int // the sample that ends the warm-up
}

func runChurn(e *env, o *options) *section {
	s := &section{title: "1. Login churn"}
	s.setup = fmt.Sprintf("One client (one keep-alive connection) POSTs /login to node A with the cookie of its previous login, as fast as it can, "+
		"for %v (at most %s logins) per run: each login is a RenewID (principal and user set), so the session count stays at 1 while every "+
		"login ends a session, whose tombstone both nodes keep. RSS (/proc/PID/status VmRSS) of both node processes and their /stats "+
		"(Sessions, Tombstones, TombstonesDropped) are sampled each second; heap after a forced GC before and after. Growth per minute: "+
		"the RSS at the end against the RSS after the first %v (a warm-up: the processes' own start-up growth, first buffers and "+
		"connections, would otherwise dominate a few seconds), extrapolated ×60 for the hour.",
		o.churnDur, count(o.churnMax), o.churnWarm)
	var runs []*churnRun
	for _, r := range strings.Split(o.churnRuns, ",") {
		switch strings.TrimSpace(r) {
		case "cap":
			runs = append(runs, &churnRun{label: "MaxTombstones " + count(o.churnCap), maxTombs: o.churnCap})
		case "default":
			runs = append(runs, &churnRun{label: "default (MaxTombstones = MaxSessions = 1,000,000)"})
		case "":
		default:
			s.err = fmt.Errorf("-churn-runs: unknown run %q (want cap, default)", r)
			return s
		}
	}
	for _, r := range runs {
		log := func(f string, a ...any) { fmt.Fprintf(e.logw, "[churn] "+f+"\n", a...) }
		log("run %s", r.label)
		if err := churnOnce(e, o, r); err != nil {
			s.err = fmt.Errorf("%s: %w", r.label, err)
			return s
		}
	}

	s.table = [][]string{{"figure"}}
	for _, r := range runs {
		s.table[0] = append(s.table[0], r.label)
	}
	add := func(name string, f func(r *churnRun) string) {
		row := []string{name}
		for _, r := range runs {
			row = append(row, f(r))
		}
		s.table = append(s.table, row)
	}
	add("logins (errors)", func(r *churnRun) string {
		return fmt.Sprintf("%s in %s (%s)", count(r.logins), secs(r.elapsed), count(r.errors))
	})
	add("logins/s (median of seconds)", func(r *churnRun) string { return count(figures.Median(r.perSecond())) })
	for _, n := range []string{"A", "B"} {
		add("node "+n+" RSS at 0 s → after the warm-up → at the end", func(r *churnRun) string {
			return fmt.Sprintf("%s → %s → %s", mib(float64(r.rss(n, 0))), mib(float64(r.rss(n, r.warm))), mib(float64(r.rss(n, len(r.samples)-1))))
		})
		add("node "+n+" RSS growth after the warm-up, per minute (per hour)", func(r *churnRun) string {
			v := r.slope(n) * 60
			return fmt.Sprintf("%s (%s)", mibSigned(v), mibSigned(v*60))
		})
		add("node "+n+" heap after GC, start → end", func(r *churnRun) string {
			a, b := r.heapA0, r.heapA1
			if n == "B" {
				a, b = r.heapB0, r.heapB1
			}
			return fmt.Sprintf("%s → %s", mib(a), mib(b))
		})
		add("node "+n+" sessions / tombstones / dropped at the end", func(r *churnRun) string {
			m := r.end
			if n == "B" {
				m = r.endB
			}
			return fmt.Sprintf("%s / %s / %s", count(num(m, "store", "Sessions")), count(num(m, "store", "Tombstones")), count(num(m, "store", "TombstonesDropped")))
		})
	}
	add("tombstones on A at each second", func(r *churnRun) string {
		var parts []string
		for _, x := range r.samples {
			parts = append(parts, count(x.tombA))
		}
		return strings.Join(parts, " ")
	})
	add("heap per tombstone held (A, after GC)", func(r *churnRun) string {
		if b := r.perTomb(); b > 0 {
			return fmt.Sprintf("%.0f B", b)
		}
		return "n/a"
	})

	// The summary: the bound is the tombstone budget times what one costs.
	per := 0.0
	for _, r := range runs {
		if b := r.perTomb(); b > 0 && r.maxTombs == 0 {
			per = b // the default run holds the most: the steadiest figure
		}
	}
	for _, r := range runs {
		if per == 0 {
			per = r.perTomb()
		}
	}
	for _, r := range runs {
		limit := r.maxTombs
		if limit == 0 {
			limit = 1_000_000
		}
		v := r.slope("A") * 60
		fig := fmt.Sprintf("%s logins/s for %s; %s tombstones held at the end, %s dropped; node A heap after GC %s → %s; "+
			"node A RSS %s → %s after the warm-up: %s/min (%s/h extrapolated)",
			count(figures.Median(r.perSecond())), secs(r.elapsed),
			count(num(r.end, "store", "Tombstones")), count(num(r.end, "store", "TombstonesDropped")),
			mib(r.heapA0), mib(r.heapA1),
			mib(float64(r.rss("A", r.warm))), mib(float64(r.rss("A", len(r.samples)-1))), mibSigned(v), mibSigned(v*60))
		bound := fmt.Sprintf("tombstones ≤ MaxTombstones (%s)", count(limit))
		if per > 0 {
			bound += fmt.Sprintf(" × ~%.0f B of heap after GC ≈ %s per node", per, mib(float64(limit)*per))
			if rate := figures.Median(r.perSecond()); r.maxTombs == 0 && rate > 0 {
				bound += fmt.Sprintf(", reached after ~%.0f min at this rate; then flat", float64(limit)/rate/60)
			}
		}
		s.summary = append(s.summary, [3]string{"login churn, " + r.label, fig, bound})
	}
	s.notes = append(s.notes,
		"RSS over a few seconds includes the garbage collector's headroom (heap goal = 2 × live heap at GOGC 100): the heap after GC and the tombstone count are the steadier figures; "+
			"with the small budget the count stops at MaxTombstones (dropping the oldest down to 90%) while logins go on.",
		"Node B holds the same tombstones: each RenewID replicates as the new session plus the old one's tombstone.")
	return s
}

// perSecond is the logins in each whole second of the run.
func (r *churnRun) perSecond() []float64 {
	var out []float64
	for i := 1; i < len(r.samples); i++ {
		dt := (r.samples[i].t - r.samples[i-1].t).Seconds()
		if dt > 0.5 {
			out = append(out, float64(r.samples[i].logins-r.samples[i-1].logins)/dt)
		}
	}
	return out
}

// rss is node n's RSS at sample i.
func (r *churnRun) rss(n string, i int) int64 {
	i = min(i, len(r.samples)-1)
	if n == "B" {
		return r.samples[i].rssB
	}
	return r.samples[i].rssA
}

// slope is node n's RSS growth in bytes/s from the end of the warm-up to
// the last sample.
func (r *churnRun) slope(n string) float64 {
	i, j := min(r.warm, len(r.samples)-1), len(r.samples)-1
	dt := (r.samples[j].t - r.samples[i].t).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(r.rss(n, j)-r.rss(n, i)) / dt
}

// perTomb is node A's heap growth after GC per tombstone it holds.
func (r *churnRun) perTomb() float64 {
	t := num(r.end, "store", "Tombstones")
	if t < 1000 {
		return 0
	}
	return (r.heapA1 - r.heapA0) / t
}

func churnOnce(e *env, o *options, r *churnRun) error {
	var args []string
	if r.maxTombs > 0 {
		args = []string{"-max-tombstones", strconv.Itoa(r.maxTombs)}
	}
	pr, err := e.pair(args...)
	if err != nil {
		return err
	}
	defer e.stopPair(pr)

	sa, sb, err := pr.stats(true)
	if err != nil {
		return err
	}
	r.heapA0, r.heapB0 = num(sa, "heap_alloc"), num(sb, "heap_alloc")

	var logins, errs atomic.Int64
	sample := func(t time.Duration, prev churnSample) churnSample {
		x := churnSample{t: t, logins: logins.Load()}
		x.rssA, _ = procstat.RSS(pr.a.Pid())
		x.rssB, _ = procstat.RSS(pr.b.Pid())
		x.tombA, x.dropA, x.sessA = prev.tombA, prev.dropA, prev.sessA
		x.tombB, x.dropB, x.sessB = prev.tombB, prev.dropB, prev.sessB
		if m, err := getJSON(pr.a.URL+"/stats", time.Second); err == nil {
			x.tombA, x.dropA, x.sessA = num(m, "store", "Tombstones"), num(m, "store", "TombstonesDropped"), num(m, "store", "Sessions")
		}
		if m, err := getJSON(pr.b.URL+"/stats", time.Second); err == nil {
			x.tombB, x.dropB, x.sessB = num(m, "store", "Tombstones"), num(m, "store", "TombstonesDropped"), num(m, "store", "Sessions")
		}
		return x
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.churnDur)
	defer cancel()
	start := time.Now()
	r.samples = append(r.samples, sample(0, churnSample{}))
	var wg sync.WaitGroup
	codes := map[int]int{}
	wg.Go(func() {
		c := oneConnClient()
		defer c.CloseIdleConnections()
		cookie := ""
		for logins.Load() < int64(o.churnMax) && ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, pr.a.URL+"/login", nil)
			if cookie != "" {
				req.Header.Set("Cookie", "session="+cookie)
			}
			resp, err := c.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					errs.Add(1)
					procstat.Sleep(ctx, 10*time.Millisecond)
				}
				continue
			}
			discard(resp)
			codes[resp.StatusCode]++
			if resp.StatusCode != http.StatusOK {
				errs.Add(1)
				continue
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == "session" {
					cookie = ck.Value
				}
			}
			logins.Add(1)
		}
	})
	r.warm = -1
	procstat.Every(ctx, time.Second, func() {
		t := time.Since(start)
		r.samples = append(r.samples, sample(t, r.samples[len(r.samples)-1]))
		if r.warm < 0 && t >= o.churnWarm-100*time.Millisecond {
			r.warm = len(r.samples) - 1
		}
	})
	wg.Wait()
	r.elapsed = time.Since(start)
	r.logins, r.errors, r.statusCodes = logins.Load(), errs.Load(), codes
	r.samples = append(r.samples, sample(r.elapsed, r.samples[len(r.samples)-1]))
	if r.warm < 0 {
		r.warm = 0
	}

	// Let replication drain, then the heap after GC.
	time.Sleep(time.Second)
	if r.end, r.endB, err = pr.stats(true); err != nil {
		return err
	}
	r.heapA1, r.heapB1 = num(r.end, "heap_alloc"), num(r.endB, "heap_alloc")
	if r.logins == 0 {
		return fmt.Errorf("no login succeeded (%d errors, statuses %v)", r.errors, codes)
	}
	return nil
}
