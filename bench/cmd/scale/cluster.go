package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/replicate/placement"
)

// cluster is n nodes in this process, on 127.0.0.1, all joined to the
// first. The last node records when sessions created elsewhere become
// visible on it (its OnCreate hook, NotifyOnReplication).
type cluster struct {
	nodes  []*peersession.Store
	names  []string  // the nodes' Names, in order
	vis    *recorder // arrivals on the last node
	join   string    // the first node's gossip address
	copies int       // ClusterConfig.Copies
}

// quiet is the logger of every node: errors only, to stderr.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// startCluster starts n nodes and waits (at most limit) until each sees
// the n-1 others as live peers.
func startCluster(n, copies int, limit time.Duration) (*cluster, error) {
	c := &cluster{vis: &recorder{}, copies: copies}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for i := 0; i < n; i++ {
		st, err := c.startNode(ctx, fmt.Sprintf("n%02d", i), i == n-1)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, st)
		c.names = append(c.names, fmt.Sprintf("n%02d", i))
	}
	if err := c.waitPeers(ctx, n-1); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// startNode starts one node joining the cluster (the first one if there
// is none yet) and waits until it is ready; last makes it the node whose
// arrivals are recorded.
func (c *cluster) startNode(ctx context.Context, name string, last bool) (*peersession.Store, error) {
	cc := &peersession.ClusterConfig{Name: name, BindAddr: "127.0.0.1", Copies: c.copies}
	if c.join != "" {
		cc.Join = []string{c.join}
	}
	cfg := peersession.Config{Cluster: cc, Logger: quiet}
	if last {
		rec := c.vis
		cfg.NotifyOnReplication = true
		cfg.OnCreate = func(ev peersession.Event) {
			if ev.Remote {
				rec.add(time.Since(ev.Created))
			}
		}
	}
	st, err := peersession.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	if err := st.WaitReady(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("node %s: not ready: %w", name, err)
	}
	if c.join == "" {
		for _, m := range st.Members() {
			if m.Self {
				c.join = m.Gossip
			}
		}
		if c.join == "" {
			st.Close()
			return nil, fmt.Errorf("node %s: no gossip address among its members", name)
		}
	}
	return st, nil
}

// waitPeers waits until every node has want live peers.
func (c *cluster) waitPeers(ctx context.Context, want int) error {
	for _, st := range c.nodes {
		for {
			rs := st.Stats().Replication
			if rs != nil && len(rs.Peers) >= want {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("a node sees fewer than %d peers: %w", want, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// settle waits (at most limit) until no node has anything queued or
// unacknowledged for a peer; false if limit passed first.
func (c *cluster) settle(limit time.Duration) bool {
	for dl := time.Now().Add(limit); time.Now().Before(dl); time.Sleep(5 * time.Millisecond) {
		if c.idle() {
			return true
		}
	}
	return false
}

// idle reports whether no node has anything queued or unacknowledged
// (nor, partitioned, a stray waiting to be handed over).
func (c *cluster) idle() bool {
	for _, st := range c.nodes {
		rs := st.Stats().Replication
		if rs == nil {
			continue
		}
		if rs.Strays > 0 {
			return false
		}
		for _, p := range rs.Peers {
			if p.Queued > 0 || p.Acked+p.Refused < p.Sent {
				return false
			}
		}
	}
	return true
}

// totals sums the nodes' replication counters.
func (c *cluster) totals() (t counters) {
	for _, st := range c.nodes {
		rs := st.Stats().Replication
		if rs == nil {
			continue
		}
		t.bytesOut += rs.BytesOut
		t.framesOut += rs.FramesOut
		t.writes += rs.StreamWrites
		t.reads += rs.StreamReads
		t.dropped += rs.Dropped
		for _, p := range rs.Peers {
			t.retries += p.Retries
		}
	}
	return t
}

// counters are the cluster's replication counters, summed over nodes.
type counters struct {
	bytesOut, framesOut, writes, reads, dropped, retries uint64
}

func (a counters) minus(b counters) counters {
	return counters{a.bytesOut - b.bytesOut, a.framesOut - b.framesOut, a.writes - b.writes, a.reads - b.reads, a.dropped - b.dropped, a.retries - b.retries}
}

// close closes every node at once and waits for them.
func (c *cluster) close() {
	var wg sync.WaitGroup
	for _, st := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.Close()
		}()
	}
	wg.Wait()
	c.nodes = nil
}

// value is a string of n bytes.
func value(n int) string { return strings.Repeat("v", n) }

// owner returns the index of the node that owns session id (the first of
// its holders) in partitioned mode, and whether the last node holds it;
// in full replication, -1 and true.
func (c *cluster) owner(id string) (int, bool) {
	if c.copies == 0 {
		return -1, true
	}
	hs := placement.New(c.copies, c.names).Holders(id, nil)
	return slices.Index(c.names, hs[0]), slices.Contains(hs, c.names[len(c.names)-1])
}
