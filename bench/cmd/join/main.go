// Command join measures how long nodes take to join a cluster: it starts
// -nodes nodes in this process on 127.0.0.1, one after another, each
// joining the first, and times each one's WaitReady (state transfer plus
// the clock check); -rounds times, closing every node between rounds. It
// prints each join's time, then the median, 90th percentile and longest
// of the joins (the first node of each round, alone, is not counted), and
// how many warnings the nodes logged about the state transfer. The first
// node is given -sessions sessions of 1 KiB before the others join, and
// during the joins new sessions are written at -rate a second on the
// nodes already ready (each write goes through a node's Middleware in
// this process, no HTTP server), so the joins transfer state and race
// writes as in a deploy.
//
//	go run ./cmd/join -nodes 16 -copies 2 -rounds 3 -sessions 20000 -rate 200
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peersession/peersession"
)

func main() {
	nodes := flag.Int("nodes", 16, "nodes per round")
	copies := flag.Int("copies", 0, "ClusterConfig.Copies (0: full replication)")
	rounds := flag.Int("rounds", 3, "rounds, each starting every node anew")
	limit := flag.Duration("limit", 3*time.Minute, "the longest one node may take to be ready")
	sessions := flag.Int("sessions", 0, "sessions of 1 KiB the first node holds before the joins")
	rate := flag.Int("rate", 0, "sessions written a second, on the ready nodes, during the joins")
	flag.Parse()
	if *nodes < 2 || *rounds < 1 || *copies < 0 || *sessions < 0 || *rate < 0 || *rate > 10000 {
		log.Fatal("join: -nodes must be at least 2, -rounds at least 1, -copies and -sessions not negative, -rate 0-10000")
	}
	warns := &warnLog{}
	logger := slog.New(slog.NewTextHandler(warns, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var joins []time.Duration
	for r := range *rounds {
		d, err := round(*nodes, *copies, *sessions, *rate, *limit, logger)
		joins = append(joins, d...)
		fmt.Printf("round %d: %s\n", r+1, strings.Join(durations(d), " "))
		if err != nil {
			log.Fatalf("join: round %d: %v", r+1, err)
		}
	}
	slices.Sort(joins)
	fmt.Printf("joins %d: median %s  p90 %s  max %s  over 5s %d\n", len(joins),
		joins[len(joins)/2].Round(time.Millisecond), joins[len(joins)*9/10].Round(time.Millisecond),
		joins[len(joins)-1].Round(time.Millisecond), countOver(joins, 5*time.Second))
	fmt.Printf("warnings: %s\n", warns.summary())
}

// round starts n nodes one after another and returns how long each but
// the first took to be ready; every node is closed before it returns.
func round(n, copies, sessions, rate int, limit time.Duration, logger *slog.Logger) ([]time.Duration, error) {
	var stores []*peersession.Store
	w := &writer{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
		for _, st := range stores {
			st.Close()
		}
	}()
	if rate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(rate, stop)
		}()
	}
	var join string
	var took []time.Duration
	for i := range n {
		cc := &peersession.ClusterConfig{Name: fmt.Sprintf("n%02d", i), BindAddr: "127.0.0.1", Copies: copies}
		if join != "" {
			cc.Join = []string{join}
		}
		st, err := peersession.New(peersession.Config{Cluster: cc, Logger: logger})
		if err != nil {
			return took, err
		}
		stores = append(stores, st)
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		start := time.Now()
		err = st.WaitReady(ctx)
		cancel()
		if err != nil {
			return took, fmt.Errorf("node %d not ready: %w", i, err)
		}
		if i == 0 {
			w.add(st)
			h := w.handler(st)
			for range sessions {
				write(h)
			}
			for _, m := range st.Members() {
				if m.Self {
					join = m.Gossip
				}
			}
			continue
		}
		took = append(took, time.Since(start))
		w.add(st)
	}
	return took, nil
}

func durations(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond).String()
	}
	return out
}

func countOver(ds []time.Duration, lim time.Duration) int {
	n := 0
	for _, d := range ds {
		if d > lim {
			n++
		}
	}
	return n
}

// warnLog counts the warnings logged, by message.
type warnLog struct {
	mu sync.Mutex // guards n
	n  map[string]int
}

func (w *warnLog) Write(p []byte) (int, error) {
	msg := "?"
	if i := bytes.Index(p, []byte(`msg="`)); i >= 0 {
		rest := p[i+5:]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			msg = string(rest[:j])
		}
	}
	if os.Getenv("JOIN_LOG") != "" {
		os.Stderr.Write(p)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == nil {
		w.n = make(map[string]int)
	}
	w.n[msg]++
	return len(p), nil
}

func (w *warnLog) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for m, c := range w.n {
		if strings.Contains(m, "transfer") || strings.Contains(m, "ready") {
			parts = append(parts, fmt.Sprintf("%q×%d", m, c))
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none about the state transfer"
	}
	return strings.Join(parts, ", ")
}
