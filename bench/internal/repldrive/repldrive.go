// Package repldrive starts `repl node` processes (bench/cmd/repl) and
// drives them through their control endpoint: the code that the
// replication report (cmd/repl) and the stall diagnosis (diag/stalls)
// share, and the JSON types a node answers with.
package repldrive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/loadgen"
)

// Figures are latency quantiles in microseconds.
type Figures struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_us"`
	P99   float64 `json:"p99_us"`
	Max   float64 `json:"max_us"`
}

// FiguresOf sorts d and returns its quantiles.
func FiguresOf(d []time.Duration) Figures {
	slices.Sort(d)
	f := Figures{Count: len(d)}
	if len(d) > 0 {
		f.P50 = float64(loadgen.Quantile(d, 0.5)) / 1e3
		f.P99 = float64(loadgen.Quantile(d, 0.99)) / 1e3
		f.Max = float64(d[len(d)-1]) / 1e3
	}
	return f
}

// WriteResult is a node's answer to /write: one writing phase.
type WriteResult struct {
	Writes    int     `json:"writes"`
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Rate      float64 `json:"rate"`
	Save      Figures `json:"save"` // Save latency on the writer
	// StartNS is when the timed writing began (Unix nanoseconds), after
	// an update phase created its sessions.
	StartNS int64 `json:"start_unix_ns"`
	// Probes counts the probe sessions saved (not in Writes or Rate);
	// ProbeErrors the probe saves that failed.
	Probes      int `json:"probes"`
	ProbeErrors int `json:"probe_errors"`
}

// Cluster is a set of `repl node` processes started from Bin.
type Cluster struct {
	Bin    string       // the repl binary
	Copies int          // the nodes' ClusterConfig.Copies (0: full replication)
	Nodes  []*proc.Proc // a, b, c, ... in the order started
	Port   int          // node a's gossip port
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, p := range c.Nodes {
		p.Stop()
	}
	c.Nodes = nil
}

// Start starts node a and, for n > 1, nodes joining it, and waits until
// each sees the others.
func (c *Cluster) Start(consistency string, n int) error {
	var err error
	if c.Port, err = proc.FreePort("127.0.0.1"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		args := []string{"node", "-name", string(rune('a' + i)), "-consistency", consistency, "-copies", fmt.Sprint(c.Copies)}
		if i == 0 {
			args = append(args, "-gossip-port", fmt.Sprint(c.Port))
		} else {
			args = append(args, "-join", fmt.Sprintf("127.0.0.1:%d", c.Port))
		}
		if err := c.Add(args...); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range c.Nodes {
		if err := p.WaitPeers(ctx, n-1); err != nil {
			return err
		}
	}
	return nil
}

// Add starts one more node: args are "node", "-name", NAME and its flags.
func (c *Cluster) Add(args ...string) error {
	p, err := proc.Start("node "+args[2], 90*time.Second, nil, c.Bin, append(args, "-v")...)
	if err != nil {
		return err
	}
	c.Nodes = append(c.Nodes, p)
	return nil
}

// Call GETs path (with query q, if any) from p and decodes the JSON
// answer into v.
func Call(p *proc.Proc, path string, q url.Values, v any) error {
	c := http.Client{Timeout: 5 * time.Minute}
	u := p.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Num is the number at path in a JSON answer (0 if none).
func Num(m map[string]any, path ...string) float64 {
	f, _ := proc.Get(m, path...).(float64)
	return f
}

// Settle waits (at most 60s) until a has nothing queued for its peers and
// the peer's applied count has not moved for half a second, so that one
// phase's backlog does not count against the next.
func Settle(a, peer *proc.Proc) {
	last, since := -1.0, time.Now()
	for dl := time.Now().Add(60 * time.Second); time.Now().Before(dl); time.Sleep(50 * time.Millisecond) {
		var as, ps map[string]any
		if Call(a, "/stats", nil, &as) != nil || Call(peer, "/stats", nil, &ps) != nil {
			return
		}
		queued := 0.0
		peers, _ := proc.Get(as, "store", "Replication", "peers").(map[string]any)
		for _, p := range peers {
			q, _ := proc.Get(p.(map[string]any), "Queued").(float64)
			queued += q
		}
		ap := Num(ps, "store", "Replication", "Applied")
		if ap != last || queued > 0 {
			last, since = ap, time.Now()
			continue
		}
		if time.Since(since) > 500*time.Millisecond {
			return
		}
	}
}

// WaitVisible waits (at most 15s) until the peer has recorded n sessions
// created (since q's "since", if set) arriving from the writer.
func WaitVisible(peer *proc.Proc, q url.Values, n int) error {
	for dl := time.Now().Add(15 * time.Second); time.Now().Before(dl); time.Sleep(50 * time.Millisecond) {
		var st map[string]any
		if err := Call(peer, "/stats", q, &st); err != nil {
			return err
		}
		if int(Num(st, "visible_recorded")) >= n {
			return nil
		}
	}
	return nil // the report shows how many arrived
}

// UpdateRound is one round of a key-update phase.
type UpdateRound struct {
	W                WriteResult
	Vis              Figures // the probes' visibility on the peer
	Applied, Dropped float64
	Drain            time.Duration // from the writers' end to the peer done
}

// Sustained reports whether the round kept up with rate: nothing dropped,
// the peer done within a second of the writers, no error, and the writers
// within 5% of the rate.
func (r UpdateRound) Sustained(rate int) bool {
	return r.Dropped == 0 && r.Drain <= time.Second && r.W.Errors == 0 && r.W.Rate >= 0.95*float64(rate)
}

// UpdatePhase runs one round of key updates at rate on a, with probes,
// and measures it on peer; must ends the program on an error.
func UpdatePhase(a, peer *proc.Proc, rate, probeRate int, dur time.Duration, must func(error)) UpdateRound {
	Settle(a, peer)
	var vis Figures
	must(Call(peer, "/vis", nil, &vis)) // reset
	var before, aBefore map[string]any
	must(Call(peer, "/stats", nil, &before))
	must(Call(a, "/stats", nil, &aBefore))
	var w WriteResult
	must(Call(a, "/write", url.Values{"kind": {"update"}, "rate": {fmt.Sprint(rate)}, "workers": {"4"}, "sessions": {"4096"}, "probe": {fmt.Sprint(probeRate)}, "dur": {dur.String()}}, &w))
	writeEnd := time.Now()
	var after, aStats map[string]any
	last, stable := -1.0, time.Now()
	for dl := time.Now().Add(30 * time.Second); time.Now().Before(dl); time.Sleep(20 * time.Millisecond) {
		must(Call(peer, "/stats", nil, &after))
		must(Call(a, "/stats", nil, &aStats))
		ap := Num(after, "store", "Replication", "Applied")
		queued := Num(aStats, "store", "Replication", "peers", "b", "Queued")
		if ap != last {
			last, stable = ap, time.Now()
			continue
		}
		if queued == 0 && time.Since(stable) > 200*time.Millisecond {
			break
		}
	}
	drain := max(stable.Sub(writeEnd), 0)
	// Wait (bounded) for the peer to have seen every probe; only sessions
	// created since the writers started count, not the 4,096 the round
	// created to update.
	since := url.Values{"since": {fmt.Sprint(w.StartNS)}}
	must(WaitVisible(peer, since, w.Probes))
	must(Call(peer, "/vis", since, &vis))
	return UpdateRound{
		W:       w,
		Vis:     vis,
		Applied: Num(after, "store", "Replication", "Applied") - Num(before, "store", "Replication", "Applied"),
		Dropped: Num(aStats, "store", "Replication", "Dropped") - Num(aBefore, "store", "Replication", "Dropped"),
		Drain:   drain,
	}
}
