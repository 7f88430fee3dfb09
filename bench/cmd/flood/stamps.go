package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/bench/internal/figures"
	"github.com/peersession/peersession/bench/internal/procstat"
)

// Probe 3, forged stamps: GET /ro on node A at a paced rate with a cookie
// whose version stamp the client made up. A stamp newer than A's copy of
// the session (or for a session A does not hold) may make A ask its peers;
// node B answers with the whole session. A's Fetches, B's FetchesServed,
// B's CPU time and bytes written are read before and after each phase.

type stampPhase struct {
	label  string
	cookie func() string // the cookie value, per request

	sent, ok, other int64
	elapsed         time.Duration
	fetches         float64 // A's Stats.Fetches delta
	fetchWaits      float64
	fetchHits       float64
	perSec          []float64 // A's fetches in each second
	served          float64   // B's Replication.FetchesServed delta
	cpuB, cpuA      time.Duration
	wcharB          int64
	// A's counters of reads that sent no fetch, where the node has them.
	rejected, merged, cached, shed float64
	haveRejected                   bool
}

func runStamps(e *env, o *options) *section {
	s := &section{title: "3. Forged stamps"}
	s.setup = fmt.Sprintf("GET /ro on node A at %s requests/s (paced, %d keep-alive connections) for %v per phase, each request with a cookie "+
		"`token.stamp` (the stamp in base 36: cookie.go's formatCookie). The real session was made on A by /init with a %s-byte value "+
		"(near the 64 KiB cap) and replicated to B. Before and after each phase: A's Stats.Fetches (peer fetches), B's "+
		"Replication.FetchesServed, B's CPU time (/proc/PID/stat utime+stime) and bytes written (/proc/PID/io wchar).",
		count(o.stampsRate), o.stampsWorkers, o.stampsDur, count(o.stampsPad))
	pr, err := e.pair()
	if err != nil {
		s.err = err
		return s
	}
	defer e.stopPair(pr)

	// The real session: made on A, held by B.
	real, err := makeSession(pr.a.URL, o.stampsPad)
	if err != nil {
		s.err = err
		return s
	}
	token, _, _ := strings.Cut(real, ".")
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := stats(pr.b, false)
		if err == nil && num(m, "store", "Sessions") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			s.err = fmt.Errorf("node B did not receive the session within 10 s (last error %v)", err)
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	maxStamp := strconv.FormatInt(math.MaxInt64, 36)
	phases := []*stampPhase{
		{label: "real token, its own stamp (baseline)", cookie: func() string { return real }},
		{label: "random token, stamp max int64", cookie: func() string { return randomToken() + "." + maxStamp }},
		{label: "real token, stamp max int64", cookie: func() string { return token + "." + maxStamp }},
		{label: "real token, stamp now + 50 s (inside a minute's clock skew)", cookie: func() string {
			return token + "." + strconv.FormatInt(time.Now().Add(50*time.Second).UnixNano(), 36)
		}},
	}
	if parts := strings.Split(real, "."); len(parts) == 3 {
		// The cookie carries a MAC of token and stamp: a forger keeps
		// the real MAC and changes the stamp.
		phases = append(phases, &stampPhase{label: "real token, stamp now + 50 s, the real cookie's MAC", cookie: func() string {
			return token + "." + strconv.FormatInt(time.Now().Add(50*time.Second).UnixNano(), 36) + "." + parts[2]
		}})
	}
	for _, ph := range phases {
		if err := stampsPhase(pr, o, ph); err != nil {
			s.err = fmt.Errorf("%s: %w", ph.label, err)
			return s
		}
	}

	s.table = [][]string{{"phase", "requests (200 / other)", "requests/s", "A's peer fetches (per request)", "A's fetches/s, median of seconds",
		"B fetches served", "B bytes written", "B CPU", "A CPU", "A's stamps rejected / fetches merged / misses cached / shed"}}
	for _, ph := range phases {
		rps := float64(ph.sent) / ph.elapsed.Seconds()
		per := 0.0
		if ph.sent > 0 {
			per = ph.fetches / float64(ph.sent)
		}
		s.table = append(s.table, []string{ph.label,
			fmt.Sprintf("%s (%s / %s)", count(ph.sent), count(ph.ok), count(ph.other)),
			count(rps),
			fmt.Sprintf("%s (%.3f)", count(ph.fetches), per),
			count(figures.Median(ph.perSec)),
			count(ph.served),
			mib(float64(ph.wcharB)),
			secs(ph.cpuB), secs(ph.cpuA), ph.skipped()})
	}
	s.notes = append(s.notes,
		"The baseline phase presents the stamp the server set: no fetch is expected. Any fetch in the other phases was caused by a stamp the client made up.",
		"A random token answers 500 from /ro (the bench handler wants its counter); the session layer's work is done before that.",
		"The last column counts reads that sent no fetch, by the node's own counters (Stats.StampsRejected, FetchesMerged, FetchMissesCached, FetchesShed; \"n/a\" where the node has none).",
		"FetchWaits (a read first waiting up to 5 ms for a change in flight, when the stamp is under a second old or in the future) per phase: "+fetchWaitList(phases)+".")
	var perReq []string
	bytesPh := phases[1]
	for _, ph := range phases[1:] {
		perReq = append(perReq, fmt.Sprintf("%.2f", ph.fetches/float64(max(1, ph.sent))))
		if ph.wcharB > bytesPh.wcharB {
			bytesPh = ph
		}
	}
	forged, maxRatio, maxRate := 0.0, 0.0, 0.0
	for _, ph := range phases[1:] {
		forged += ph.fetches
		maxRatio = max(maxRatio, ph.fetches/float64(max(1, ph.sent)))
		maxRate = max(maxRate, figures.Median(ph.perSec))
	}
	var labels []string
	for _, ph := range phases[1:] {
		labels = append(labels, ph.label)
	}
	fig := fmt.Sprintf("peer fetches by node A per forged request: %s (%s); up to %s fetches/s (median of seconds)",
		strings.Join(perReq, " / "), strings.Join(labels, " / "), count(maxRate))
	bound := "none: every forged stamp ignored"
	switch {
	case forged > 0 && maxRatio < 0.5:
		bound = fmt.Sprintf("bounded: at most %.3f fetches per forged request, %s/s (median of seconds); node B wrote %s and spent %s CPU in %s (%s)",
			maxRatio, count(maxRate), mib(float64(bytesPh.wcharB)), secs(bytesPh.cpuB), secs(bytesPh.elapsed), bytesPh.label)
	case forged > 0:
		bound = fmt.Sprintf("not bounded: one fetch per forged request, at the request rate; node B wrote %s (%s/s) and spent %s CPU in %s answering them (%s)",
			mib(float64(bytesPh.wcharB)), mib(float64(bytesPh.wcharB)/bytesPh.elapsed.Seconds()), secs(bytesPh.cpuB), secs(bytesPh.elapsed), bytesPh.label)
	}
	s.summary = append(s.summary, [3]string{fmt.Sprintf("forged stamps, %s requests/s", count(o.stampsRate)), fig, bound})

	return s
}

func fetchWaitList(ps []*stampPhase) string {
	var out []string
	for _, p := range ps {
		out = append(out, count(p.fetchWaits))
	}
	return strings.Join(out, ", ")
}

// randomToken is a well-formed token no node issued: 32 random bytes in
// unpadded base64url (43 characters, the last canonical).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// makeSession creates a session on url with a pad-byte value and returns
// its cookie value.
func makeSession(url string, pad int) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("%s/init?pad=%d", url, pad))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/init: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "session" {
			return ck.Value, nil
		}
	}
	return "", fmt.Errorf("/init set no session cookie")
}

// stampsSnap is what stampsPhase reads before and after a phase.
type stampsSnap struct {
	a, b       map[string]any // the nodes' /stats
	cpuA, cpuB time.Duration
	wB         int64 // B's bytes written
}

func snapStamps(pr *pair) (stampsSnap, error) {
	var s stampsSnap
	var err error
	if s.a, s.b, err = pr.stats(false); err != nil {
		return s, err
	}
	s.cpuA, _ = procstat.CPU(pr.a.Pid())
	s.cpuB, _ = procstat.CPU(pr.b.Pid())
	s.wB, _ = bytesWritten(pr.b.Pid())
	return s, nil
}

func stampsPhase(pr *pair, o *options, ph *stampPhase) error {
	s0, err := snapStamps(pr)
	if err != nil {
		return err
	}
	a0 := s0.a

	ctx, cancel := context.WithTimeout(context.Background(), o.stampsDur)
	defer cancel()
	var sent, okN, other atomic.Int64
	workers := max(1, o.stampsWorkers)
	interval := time.Duration(float64(time.Second) * float64(workers) / float64(max(1, o.stampsRate)))
	maxPer := int64(o.stampsRate)*int64(o.stampsDur/time.Second+1)/int64(workers) + 1
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := oneConnClient()
			defer c.CloseIdleConnections()
			// Workers start spread over one interval.
			next := start.Add(interval * time.Duration(w) / time.Duration(workers))
			for i := int64(0); i < maxPer; i++ {
				if !procstat.Sleep(ctx, time.Until(next)) {
					return
				}
				next = next.Add(interval)
				// Not ctx: a request in flight at the phase's end runs
				// to its answer (the client's timeout bounds it).
				req, _ := http.NewRequest(http.MethodGet, pr.a.URL+"/ro", nil)
				req.Header.Set("Cookie", "session="+ph.cookie())
				sent.Add(1)
				resp, err := c.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				discard(resp)
				if resp.StatusCode == http.StatusOK {
					okN.Add(1)
				} else {
					other.Add(1)
				}
			}
		})
	}
	last := num(a0, "store", "Fetches")
	procstat.Every(ctx, time.Second, func() {
		if m, err := getJSON(pr.a.URL+"/stats", time.Second); err == nil {
			f := num(m, "store", "Fetches")
			ph.perSec = append(ph.perSec, f-last)
			last = f
		}
	})
	wg.Wait()
	ph.elapsed = time.Since(start)
	ph.sent, ph.ok, ph.other = sent.Load(), okN.Load(), other.Load()
	// Fetches in flight end within FetchTimeout.
	time.Sleep(300 * time.Millisecond)
	s1, err := snapStamps(pr)
	if err != nil {
		return err
	}
	a1 := s1.a
	ph.fetches = num(a1, "store", "Fetches") - num(a0, "store", "Fetches")
	ph.fetchWaits = num(a1, "store", "FetchWaits") - num(a0, "store", "FetchWaits")
	ph.fetchHits = num(a1, "store", "FetchHits") - num(a0, "store", "FetchHits")
	ph.served = num(s1.b, "store", "Replication", "FetchesServed") - num(s0.b, "store", "Replication", "FetchesServed")
	ph.cpuA, ph.cpuB, ph.wcharB = s1.cpuA-s0.cpuA, s1.cpuB-s0.cpuB, s1.wB-s0.wB
	delta := func(key string) (float64, bool) {
		x0, ok0 := findNum(a0, key)
		x1, ok1 := findNum(a1, key)
		return x1 - x0, ok0 && ok1
	}
	ph.rejected, ph.haveRejected = delta("StampsRejected")
	ph.merged, _ = delta("FetchesMerged")
	ph.cached, _ = delta("FetchMissesCached")
	ph.shed, _ = delta("FetchesShed")
	return nil
}

func (ph *stampPhase) skipped() string {
	if !ph.haveRejected {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s / %s / %s", count(ph.rejected), count(ph.merged), count(ph.cached), count(ph.shed))
}
