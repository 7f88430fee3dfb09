package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
)

// network is where the nodes run: the host's loopback, or a network
// namespace each on a bridge. The faults that cut links exist only in
// the second.
type network interface {
	// Host is node i's address, where it binds and is reached.
	Host(i int) string
	// Prefix is the command that runs a program in node i's network
	// (nil on loopback).
	Prefix(i int) []string
	// Drop drops every packet from the nodes in from to those in to.
	Drop(from, to []int) error
	// Netem adds delay and loss (percent) to node i's outgoing packets.
	Netem(i int, delay time.Duration, loss int) error
	// Heal undoes every Drop and Netem.
	Heal() error
	// Close removes what the network created.
	Close() error
}

// errNoNetns is the loopback network's answer to a link fault.
var errNoNetns = errors.New("link faults need network namespaces (run as root)")

// loopback runs every node on 127.0.0.1.
type loopback struct{}

func (loopback) Host(int) string                     { return "127.0.0.1" }
func (loopback) Prefix(int) []string                 { return nil }
func (loopback) Drop(_, _ []int) error               { return errNoNetns }
func (loopback) Netem(int, time.Duration, int) error { return errNoNetns }
func (loopback) Heal() error                         { return nil }
func (loopback) Close() error                        { return nil }

// nodeProc is one node of the cluster: its addresses and data directory
// stay the same across restarts.
type nodeProc struct {
	i           int
	name        string
	httpAddr    string
	gossipPort  int
	dataDir     string
	p           *proc.Proc // nil while down; guarded by cluster.mu
	paused      bool       // guarded by cluster.mu
	clockOffset time.Duration
}

// cluster is the harness's node processes.
type cluster struct {
	bin         string // this program, run as `chaos node`
	net         network
	consistency string
	logLevel    string // the nodes' -log
	keyFile     string
	logw        io.Writer
	nodes       []*nodeProc

	mu    sync.Mutex // guards kills, and each node's p and paused
	kills []killRec  // every kill -9, for accounting Async losses
}

// killRec is one kill -9: which node, when.
type killRec struct {
	node int
	at   time.Time
}

// newCluster lays out n nodes under dir (data directories, key file, log)
// on net; start starts them.
func newCluster(bin string, nw network, n int, consistency, dir string, logw io.Writer) (*cluster, error) {
	c := &cluster{bin: bin, net: nw, consistency: consistency, logw: logw}
	c.keyFile = filepath.Join(dir, "key")
	if err := os.WriteFile(c.keyFile, []byte(newKey()+"\n"), 0o600); err != nil {
		return nil, err
	}
	ports, err := loopbackPorts(nw, 2*n)
	if err != nil {
		return nil, err
	}
	for i := range n {
		host := nw.Host(i)
		httpPort, gossipPort := 8080, 7946
		if ports != nil {
			httpPort, gossipPort = ports[2*i], ports[2*i+1]
		}
		c.nodes = append(c.nodes, &nodeProc{
			i: i, name: fmt.Sprintf("n%d", i+1),
			httpAddr:   net.JoinHostPort(host, strconv.Itoa(httpPort)),
			gossipPort: gossipPort,
			dataDir:    filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
		})
	}
	return c, nil
}

// loopbackPorts returns n distinct ports free a moment ago on loopback
// (all held open together, so none is drawn twice), or nil on a network
// that gives each node an address of its own.
func loopbackPorts(nw network, n int) ([]int, error) {
	if _, ok := nw.(loopback); !ok {
		return nil, nil
	}
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// url is node i's HTTP base URL.
func (c *cluster) url(i int) string { return "http://" + c.nodes[i].httpAddr }

// startAll starts every node, the first alone so that the others join it.
func (c *cluster) startAll(ctx context.Context) error {
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			return err
		}
	}
	return c.waitMembers(ctx)
}

// start starts node i (again), on its data directory.
func (c *cluster) start(i int) error {
	n := c.nodes[i]
	var seeds []string
	for j, o := range c.nodes {
		if j != i {
			seeds = append(seeds, net.JoinHostPort(c.net.Host(j), strconv.Itoa(o.gossipPort)))
		}
	}
	args := []string{"node", "-name", n.name, "-http", n.httpAddr,
		"-bind", c.net.Host(i), "-gossip-port", strconv.Itoa(n.gossipPort),
		"-join", strings.Join(seeds, ","), "-key-file", c.keyFile, "-data-dir", n.dataDir,
		"-consistency", c.consistency, "-clock-offset", n.clockOffset.String(), "-log", c.logLevel}
	p, err := proc.StartLog(n.name, 90*time.Second, c.logw, c.net.Prefix(i), c.bin, args...)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	c.mu.Lock()
	n.p, n.paused = p, false
	c.mu.Unlock()
	return nil
}

// kill sends node i SIGKILL and waits for it to be gone.
func (c *cluster) kill(i int) {
	n := c.nodes[i]
	if n.p == nil {
		return
	}
	_ = syscall.Kill(n.p.Pid(), syscall.SIGKILL)
	<-n.p.Done()
	c.mu.Lock()
	c.kills = append(c.kills, killRec{node: i, at: time.Now()})
	n.p = nil
	c.mu.Unlock()
}

// killsOf returns the kills of node i.
func (c *cluster) killsOf(i int) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, k := range c.kills {
		if k.node == i {
			out = append(out, k.at)
		}
	}
	return out
}

// signal sends node i SIGSTOP (pause) or SIGCONT.
func (c *cluster) signal(i int, pause bool) error {
	n := c.nodes[i]
	if n.p == nil {
		return fmt.Errorf("%s is down", n.name)
	}
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	c.mu.Lock()
	n.paused = pause
	c.mu.Unlock()
	return syscall.Kill(n.p.Pid(), sig)
}

// setClock moves node i's clock offset (kept for its restarts).
func (c *cluster) setClock(i int, d time.Duration) error {
	c.nodes[i].clockOffset = d
	resp, err := httpClient.Post(c.url(i)+"/clock?offset="+d.String(), "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /clock: %s", c.nodes[i].name, resp.Status)
	}
	return nil
}

// waitMembers waits until every node sees every other as a live peer.
func (c *cluster) waitMembers(ctx context.Context) error {
	for i := range c.nodes {
		for {
			var st nodeStats
			err := getJSON(ctx, c.url(i)+"/stats", &st)
			if err == nil && st.Peers == len(c.nodes)-1 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: waiting for %d peers (saw %d, error %v): %w", c.nodes[i].name, len(c.nodes)-1, st.Peers, err, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// stopAll stops every node cleanly (SIGCONT first if paused).
func (c *cluster) stopAll() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n.p == nil {
			continue
		}
		if n.paused {
			_ = syscall.Kill(n.p.Pid(), syscall.SIGCONT)
		}
		wg.Go(n.p.Stop)
	}
	wg.Wait()
}

// running returns the process ID of each node that is up and not
// paused, by node index.
func (c *cluster) running() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]int{}
	for i, n := range c.nodes {
		if n.p != nil && !n.paused {
			out[i] = n.p.Pid()
		}
	}
	return out
}
