// Package loadgen is the benchmark's HTTP load generator: a fixed number
// of workers on kept-alive connections, each cycling through sessions it
// created, for a fixed duration.
//
// Every worker keeps one cookie per session it owns (a cookie jar per
// session, in effect: each request carries exactly that session's cookie and
// takes back whatever Set-Cookie the server answers), so the server sees
// Workers × Sessions distinct sessions. Because a worker is the only client
// of its sessions and its requests are sequential, it knows what counter
// value the server must answer: any other value is counted as a mismatch
// (a lost write), separately from transport and HTTP errors.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config says what load to send. Zero fields take the documented defaults.
type Config struct {
	// Targets are base URLs ("http://127.0.0.1:8080"); with more than
	// one, each worker alternates between them on every request
	// (non-sticky balancing). Required.
	Targets []string
	// Path is the measured request path; empty means "/rw".
	Path string
	// InitPath creates a session (answers the counter, 0); empty means
	// "/init".
	InitPath string
	// Workers is the number of concurrent clients; zero means 16.
	Workers int
	// Sessions is the sessions each worker creates and cycles through;
	// zero means 64.
	Sessions int
	// Duration is how long the measured phase runs; zero means 5s.
	Duration time.Duration
	// MaxRequests bounds the measured requests per worker; zero means
	// 10,000,000 (the duration is the bound that matters).
	MaxRequests int
	// Check verifies the counter each response carries.
	Check bool
	// Write says the measured path increments the counter.
	Write bool
	// NoSessions skips session creation and cookies (the ceiling).
	NoSessions bool
	// Timeout bounds one request; zero means 5s.
	Timeout time.Duration
}

// Result is what one run measured.
type Result struct {
	Requests   int           `json:"requests"`
	Errors     int           `json:"errors"`     // transport errors and non-2xx answers
	Mismatches int           `json:"mismatches"` // answers with the wrong counter
	Elapsed    time.Duration `json:"elapsed_ns"`
	RPS        float64       `json:"rps"`
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
	FirstError string        `json:"first_error,omitempty"`
}

func (r Result) String() string {
	s := fmt.Sprintf("%d req in %v: %.0f req/s, p50 %v, p99 %v, max %v, errors %d, mismatches %d",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.RPS, r.P50, r.P99, r.Max, r.Errors, r.Mismatches)
	if r.FirstError != "" {
		s += " (first error: " + r.FirstError + ")"
	}
	return s
}

type session struct {
	cookie string // "name=value" as sent back
	n      int    // the counter the server should hold
}

type worker struct {
	cfg      *Config
	client   *http.Client
	sessions []session
	lat      []time.Duration
	errs     int
	mism     int
	firstErr string
	reqs     int
}

// NewTransport returns the HTTP transport of a load of that many
// concurrent clients: keep-alive connections, enough of them idle for
// every client to reuse one, no compression. Close its idle connections
// when the load is over.
func NewTransport(workers int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * workers,
		MaxIdleConnsPerHost: 2 * workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// Run creates the sessions, then sends load for cfg.Duration and reports.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if len(cfg.Targets) == 0 {
		return Result{}, errors.New("loadgen: Config.Targets is empty")
	}
	if cfg.Path == "" {
		cfg.Path = "/rw"
	}
	if cfg.InitPath == "" {
		cfg.InitPath = "/init"
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	if cfg.Sessions == 0 {
		cfg.Sessions = 64
	}
	if cfg.Duration == 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.MaxRequests == 0 {
		cfg.MaxRequests = 10_000_000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	tr := NewTransport(cfg.Workers)
	defer tr.CloseIdleConnections()
	ws := make([]*worker, cfg.Workers)
	for i := range ws {
		// A client per worker, sharing the pool: cookies are set by hand.
		ws[i] = &worker{cfg: &cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
	}
	if !cfg.NoSessions {
		// Create sessions round-robin over the targets.
		var wg sync.WaitGroup
		errc := make(chan error, len(ws))
		for wi, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < cfg.Sessions; i++ {
					target := cfg.Targets[(wi+i)%len(cfg.Targets)]
					s := session{}
					if err := w.do(ctx, target+cfg.InitPath, &s, modeInit); err != nil {
						errc <- fmt.Errorf("loadgen: create session: %w", err)
						return
					}
					if s.cookie == "" {
						errc <- errors.New("loadgen: create session: no Set-Cookie in the answer")
						return
					}
					w.sessions = append(w.sessions, s)
				}
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return Result{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for wi, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.lat = make([]time.Duration, 0, 1<<16)
			mode := modeRead
			if cfg.Write {
				mode = modeWrite
			}
			for i := 0; i < cfg.MaxRequests && ctx.Err() == nil; i++ {
				target := cfg.Targets[(wi+i)%len(cfg.Targets)]
				var s *session
				if !cfg.NoSessions {
					s = &w.sessions[i%len(w.sessions)]
				}
				t0 := time.Now()
				err := w.do(context.Background(), target+cfg.Path, s, mode)
				w.lat = append(w.lat, time.Since(t0))
				w.reqs++
				if err != nil {
					if errors.Is(err, errMismatch) {
						w.mism++
					} else {
						w.errs++
					}
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var res Result
	var all []time.Duration
	for _, w := range ws {
		res.Requests += w.reqs
		res.Errors += w.errs
		res.Mismatches += w.mism
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
		all = append(all, w.lat...)
	}
	slices.Sort(all)
	res.Elapsed = elapsed
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	res.P50, res.P99 = Quantile(all, 0.50), Quantile(all, 0.99)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	return res, nil
}

var errMismatch = errors.New("counter mismatch")

type mode int

const (
	modeInit  mode = iota // creates the session: the counter starts at 0
	modeRead              // answers the counter
	modeWrite             // answers the counter, then increments it
)

// do sends one request for session s (nil: none) and checks the answer.
func (w *worker) do(ctx context.Context, url string, s *session, m mode) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if s != nil && s.cookie != "" {
		req.Header.Set("Cookie", s.cookie)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %.80s", resp.StatusCode, body)
	}
	if s == nil {
		return nil
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			s.cookie = ""
			continue
		}
		s.cookie = c.Name + "=" + c.Value
	}
	if m == modeInit {
		s.n = 0
		return nil
	}
	got, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return fmt.Errorf("answer %.40q is not a counter", body)
	}
	want := s.n
	s.n = got
	if m == modeWrite {
		s.n = got + 1
	}
	if w.cfg.Check && got != want {
		return fmt.Errorf("%w: got %d, want %d", errMismatch, got, want)
	}
	return nil
}

// Quantile returns the q-quantile of sorted samples (nearest rank).
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
