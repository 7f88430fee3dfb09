// Command kill measures what a kill -9 of one node costs the survivors:
// three peersession node processes (bench/cmd/server, Async) clustered on
// 127.0.0.1, a paced round-robin load over the three (non-sticky: every
// request goes to the next node; a cookie jar per client, one session per
// client, so every read follows the write the client made on another
// node), then SIGKILL of node c. The balancer takes c out of its rotation
// at the moment of the kill (an ideal health check), so what is measured is
// the survivors' own latency: while c is still a live member for them (it
// takes memberlist some seconds to declare it dead) and after.
//
// Each round starts a fresh cluster and reports the survivors' request
// latency (p50, p99, max) and how many requests took FetchTimeout (100 ms,
// the library's default) or more, in windows: the last seconds before the
// kill, the first second after it, 1–5 s, 5–15 s, and from the moment both
// survivors had declared c dead (its entry gone from their replication
// peers) to the end of the load. The windows by time since the kill and
// the last one overlap. With -rounds N it prints each round and the
// medians of the rounds; -out writes the markdown report.
//
// The rate (8,000 requests/s by default, what this 2-core machine serves
// with room to spare) matters: the slower a client's next request, the
// more often the write it follows has already arrived, and a read that
// finds it asks no peer, dead or alive. At 3,000 requests/s on a quiet
// machine, a build whose reads waited on the killed peer showed it in a
// few requests; at 8,000, in 2–3% of them for the seconds before the
// verdict.
//
// Every load loop is bounded by a duration and a request count, every
// request by a timeout; the nodes are stopped on return and killed by the
// kernel should this process die.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
)

type options struct {
	server       string
	rounds       int
	workers      int
	rate         float64
	warm         time.Duration
	before       time.Duration
	after        time.Duration // load after the kill, at least
	afterDead    time.Duration // load after both survivors declared c dead, at least
	maxAfter     time.Duration // bound on the load after the kill
	fetchTimeout time.Duration
	timeout      time.Duration
	out          string
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "./server", "the bench server binary (bench/cmd/server)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds, each on a fresh three-node cluster")
	flag.IntVar(&o.workers, "workers", 16, "clients, each with its own cookie jar and one session")
	flag.Float64Var(&o.rate, "rate", 8000, "requests/s over all clients (paced)")
	flag.DurationVar(&o.warm, "warm", time.Second, "load before the measured window, not reported")
	flag.DurationVar(&o.before, "before", 5*time.Second, "measured load before the kill")
	flag.DurationVar(&o.after, "after", 15*time.Second, "load after the kill, at least")
	flag.DurationVar(&o.afterDead, "after-dead", 5*time.Second, "load after both survivors declared the node dead, at least")
	flag.DurationVar(&o.maxAfter, "max-after", 60*time.Second, "load after the kill, at most")
	flag.DurationVar(&o.fetchTimeout, "fetch-timeout", 100*time.Millisecond, "the nodes' ClusterConfig.FetchTimeout (the library's default), to count requests that took it")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "bound on one request")
	flag.StringVar(&o.out, "out", "", "also write the markdown report here")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("kill: ")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var rounds []*round
	for r := 1; r <= o.rounds; r++ {
		rd, err := runRound(ctx, &o, r)
		if err != nil {
			log.Fatalf("round %d: %v", r, err)
		}
		rounds = append(rounds, rd)
		fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", r, o.rounds, rd.brief())
	}
	rep := report(&o, rounds, time.Since(start))
	fmt.Print(rep)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// sample is one request: when it was sent (from the round's kill), how
// long it took, to which node, and how it ended.
type sample struct {
	t    time.Duration // send time - kill time (negative before the kill)
	lat  time.Duration
	node int8
	res  int8
}

// lateMin is the lateness of a 1 ms sleep the report lists.
const lateMin = 20 * time.Millisecond

const (
	resOK       = iota
	resError    // transport error or non-2xx
	resMismatch // a counter other than the client's last write + 1: a lost write
)

// detect is what one survivor's /stats said about c after the kill.
type detect struct {
	unresponsive time.Duration // c's PeerStats.Unresponsive first seen set; -1: never
	dead         time.Duration // c first missing from Replication.Peers; -1: never
}

type round struct {
	n        int
	samples  []sample
	late     []sample // the sleeper's wake-ups ≥ lateMin late: t, lateness
	killed   int
	names    []string
	detect   []detect // per survivor
	deadAt   time.Duration
	end      time.Duration    // the load's end, from the kill
	stats0   []map[string]any // survivors' /stats at the start of the measured window
	stats1   []map[string]any // at the kill
	stats2   []map[string]any // at the end
	windows  []window
	achieved float64 // requests/s sent before the kill
}

type window struct {
	name      string
	from, to  time.Duration
	survivors bool
	reqs      int
	errors    int
	mismatch  int
	p50, p99  time.Duration
	max       time.Duration
	slow      int // ≥ FetchTimeout
}

func (w window) rate() float64 {
	d := (w.to - w.from).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(w.reqs) / d
}

func (r *round) brief() string {
	var b strings.Builder
	for _, w := range r.windows {
		fmt.Fprintf(&b, "%s: p50 %s p99 %s ≥FT %d/%d; ", w.name, ms(w.p50), ms(w.p99), w.slow, w.reqs)
	}
	fmt.Fprintf(&b, "dead after %s", secs(r.deadAt))
	return b.String()
}

func runRound(ctx context.Context, o *options, n int) (*round, error) {
	names := []string{"a", "b", "c"}
	const killed = 2
	var procs []*proc.Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	port, err := proc.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		args := []string{"-variant", "peer", "-consistency", "async", "-node", name}
		if i == 0 {
			args = append(args, "-gossip-port", strconv.Itoa(port))
		} else {
			args = append(args, "-join", fmt.Sprintf("127.0.0.1:%d", port))
		}
		p, err := proc.Start(name, 60*time.Second, nil, o.server, args...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, p := range procs {
		if err := p.WaitPeers(wctx, len(names)-1); err != nil {
			return nil, err
		}
	}
	rd := &round{n: n, killed: killed, names: names}
	urls := make([]string, len(procs))
	for i, p := range procs {
		urls[i] = p.URL
	}
	survivors := []int{0, 1}

	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * o.workers,
		MaxIdleConnsPerHost: 2 * o.workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()

	// live is the balancer's rotation: all three, then the survivors.
	var live atomic.Pointer[[]int]
	all := []int{0, 1, 2}
	live.Store(&all)
	loadStart := time.Now()
	stopAt := atomic.Int64{}
	stopAt.Store(loadStart.Add(o.warm + o.before + o.maxAfter).UnixNano())
	// A sleeper of its own: how late this process wakes from 1 ms sleeps
	// tells a stall of the machine (or of this process) from one of the
	// nodes.
	sleeperDone := make(chan struct{})
	var late []sample
	go func() {
		defer close(sleeperDone)
		for time.Now().UnixNano() < stopAt.Load() && ctx.Err() == nil {
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			if l := time.Since(t0) - time.Millisecond; l >= lateMin {
				late = append(late, sample{t: t0.Sub(loadStart), lat: l})
			}
		}
	}()
	maxReqs := int(o.rate/float64(o.workers)*(o.warm+o.before+o.maxAfter).Seconds()) + 100

	type wres struct {
		samples []sample
		err     error
	}
	results := make([]wres, o.workers)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) * float64(o.workers) / o.rate)
	for wi := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Transport: tr, Jar: jar, Timeout: o.timeout}
			cl := client{c: c}
			// The session is created on the client's first node.
			if err := cl.init(urls[wi%len(urls)]); err != nil {
				results[wi].err = err
				return
			}
			ss := make([]sample, 0, maxReqs)
			// Spread the clients' first requests over one interval.
			next := time.Now().Add(time.Duration(wi) * interval / time.Duration(o.workers))
			for i := 0; i < maxReqs && ctx.Err() == nil; i++ {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				now := time.Now()
				if now.UnixNano() >= stopAt.Load() {
					break
				}
				// Paced, without bursts to catch up: a client that fell
				// behind (its last answer was slow) sends at once.
				next = next.Add(interval)
				if next.Before(now) {
					next = now
				}
				rot := *live.Load()
				node := rot[(wi+i)%len(rot)]
				t0 := time.Now()
				res := cl.rw(urls[node])
				lat := time.Since(t0)
				ss = append(ss, sample{t: t0.Sub(loadStart), lat: lat, node: int8(node), res: int8(res)})
			}
			results[wi].samples = ss
		}()
	}

	// The measured window before the kill starts after the warm-up.
	sleepCtx(ctx, o.warm)
	rd.stats0 = statsOf(procs, survivors)
	sleepCtx(ctx, o.before)
	if ctx.Err() != nil {
		stopAt.Store(0)
		wg.Wait()
		<-sleeperDone
		return nil, ctx.Err()
	}
	rd.stats1 = statsOf(procs, survivors)

	// The kill: out of the rotation, then SIGKILL.
	live.Store(&survivors)
	kt := time.Now()
	if err := syscall.Kill(procs[killed].Pid(), syscall.SIGKILL); err != nil {
		return nil, fmt.Errorf("kill -9 %s: %w", names[killed], err)
	}

	// Poll the survivors until both declared c dead.
	rd.detect = make([]detect, len(survivors))
	for i := range rd.detect {
		rd.detect[i] = detect{unresponsive: -1, dead: -1}
	}
	for {
		el := time.Since(kt)
		done := true
		for i, s := range survivors {
			st, err := procs[s].Stats(false)
			if err != nil {
				done = false
				continue
			}
			peers, _ := proc.Get(st, "store", "Replication", "peers").(map[string]any)
			pc, ok := peers[names[killed]].(map[string]any)
			if !ok {
				if rd.detect[i].dead < 0 {
					rd.detect[i].dead = el
				}
			} else {
				done = false
				if u, _ := pc["Unresponsive"].(bool); u && rd.detect[i].unresponsive < 0 {
					rd.detect[i].unresponsive = el
				}
			}
		}
		if done {
			rd.deadAt = el
			break
		}
		if el > o.maxAfter || ctx.Err() != nil {
			rd.deadAt = -1
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	end := o.after
	if rd.deadAt >= 0 {
		end = max(end, rd.deadAt+o.afterDead)
	}
	end = min(end, o.maxAfter)
	if rem := time.Until(kt.Add(end)); rem > 0 {
		sleepCtx(ctx, rem)
	}
	stopAt.Store(time.Now().UnixNano())
	wg.Wait()
	<-sleeperDone
	rd.end = time.Since(kt)
	rd.stats2 = statsOf(procs, survivors)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Rebase the samples on the kill time; the warm-up's are dropped.
	var pre int
	off := kt.Sub(loadStart)
	for wi := range results {
		if err := results[wi].err; err != nil {
			return nil, fmt.Errorf("client %d: %w", wi, err)
		}
		for _, s := range results[wi].samples {
			s.t -= off
			if s.t < -o.before {
				continue
			}
			if s.t < 0 {
				pre++
			}
			rd.samples = append(rd.samples, s)
		}
	}
	rd.achieved = float64(pre) / o.before.Seconds()
	for _, l := range late {
		l.t -= off
		if l.t >= -o.before {
			rd.late = append(rd.late, l)
		}
	}

	isSurvivor := func(node int8) bool { return int(node) != killed }
	type wdef struct {
		name     string
		from, to time.Duration
	}
	defs := []wdef{
		{"before the kill", -o.before, 0},
		{"0–1 s after", 0, time.Second},
		{"1–5 s after", time.Second, 5 * time.Second},
		{"5–15 s after", 5 * time.Second, 15 * time.Second},
	}
	if rd.deadAt >= 0 {
		defs = append(defs, wdef{"after declared dead", rd.deadAt, rd.end})
	}
	for _, d := range defs {
		w := window{name: d.name, from: d.from, to: min(d.to, rd.end), survivors: true}
		var lats []time.Duration
		for _, s := range rd.samples {
			if s.t < w.from || s.t >= w.to || !isSurvivor(s.node) {
				continue
			}
			w.reqs++
			switch s.res {
			case resError:
				w.errors++
			case resMismatch:
				w.mismatch++
			}
			lats = append(lats, s.lat)
			if s.lat >= o.fetchTimeout {
				w.slow++
			}
		}
		slices.Sort(lats)
		w.p50, w.p99 = quantile(lats, 0.5), quantile(lats, 0.99)
		if len(lats) > 0 {
			w.max = lats[len(lats)-1]
		}
		rd.windows = append(rd.windows, w)
	}
	return rd, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func statsOf(procs []*proc.Proc, which []int) []map[string]any {
	out := make([]map[string]any, len(which))
	for i, w := range which {
		out[i], _ = procs[w].Stats(false)
	}
	return out
}

// client is one browser: a cookie jar, one session, the counter it wrote
// last.
type client struct {
	c *http.Client
	n int // the counter the session should hold
}

func (cl *client) get(url string) (int, error) {
	resp, err := cl.c.Get(url)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("HTTP %d: %.80s", resp.StatusCode, body)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return 0, fmt.Errorf("answer %.40q is not a counter", body)
	}
	return v, nil
}

func (cl *client) init(base string) error {
	v, err := cl.get(base + "/init")
	if err != nil {
		return err
	}
	if v != 0 {
		return errors.New("/init did not answer 0")
	}
	cl.n = 0
	return nil
}

// rw reads the counter and increments it; a counter other than the one
// this client wrote last is a lost write, after which the client goes on
// from what the server holds.
func (cl *client) rw(base string) int {
	v, err := cl.get(base + "/rw")
	if err != nil {
		return resError
	}
	want := cl.n
	cl.n = v + 1
	if v != want {
		return resMismatch
	}
	return resOK
}

// quantile returns the q-quantile of sorted samples (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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
