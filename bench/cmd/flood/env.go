package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/internal/procstat"
)

// env starts and tracks the node processes of the probes.
type env struct {
	server string
	dir    string // temporary: the key file, the nodes' log
	key    string
	logw   io.Writer
	logf   *os.File

	mu    sync.Mutex
	procs map[*proc.Proc]struct{}
	done  bool
}

func newEnv(server string, verbose bool) (*env, error) {
	dir, err := os.MkdirTemp("", "peersession-flood.")
	if err != nil {
		return nil, err
	}
	e := &env{server: server, dir: dir, procs: map[*proc.Proc]struct{}{}, key: filepath.Join(dir, "key")}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	if err := os.WriteFile(e.key, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if verbose {
		e.logw = os.Stderr
	} else {
		if e.logf, err = os.Create(filepath.Join(dir, "nodes.log")); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		e.logw = e.logf
	}
	return e, nil
}

// node starts node name (bench/cmd/server -variant peer) with the cluster
// key, everything on 127.0.0.1, and waits up to timeout until it serves
// (after WaitReady).
func (e *env) node(name string, timeout time.Duration, args ...string) (*proc.Proc, error) {
	argv := append([]string{"-variant", "peer", "-node", name, "-key-file", e.key,
		"-bind", "127.0.0.1", "-http", "127.0.0.1:0"}, args...)
	p, err := proc.StartLog("node "+name, timeout, e.logw, nil, e.server, argv...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done { // interrupted meanwhile
		go p.Stop()
		return nil, fmt.Errorf("interrupted")
	}
	e.procs[p] = struct{}{}
	return p, nil
}

// stop stops p (SIGTERM, then SIGKILL after 10 s).
func (e *env) stop(p *proc.Proc) {
	if p == nil {
		return
	}
	p.Stop()
	e.mu.Lock()
	delete(e.procs, p)
	e.mu.Unlock()
}

// stopAll stops every node still running, in parallel.
func (e *env) stopAll() {
	e.mu.Lock()
	ps := make([]*proc.Proc, 0, len(e.procs))
	for p := range e.procs {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { e.stop(p) })
	}
	wg.Wait()
}

// close stops every node and removes the temporary directory.
func (e *env) close() {
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
	e.stopAll()
	if e.logf != nil {
		e.logf.Close()
	}
	os.RemoveAll(e.dir)
}

// pair is a two-node cluster: a first, b joined to it.
type pair struct {
	a, b       *proc.Proc
	gossipPort int    // node A's gossip port (TCP and UDP)
	gossipA    string // 127.0.0.1:gossipPort
	args       []string
}

// pair starts nodes a and b with args each and waits until each sees the
// other as a live peer.
func (e *env) pair(args ...string) (*pair, error) {
	port, err := proc.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	pr := &pair{gossipPort: port, gossipA: fmt.Sprintf("127.0.0.1:%d", port), args: args}
	if pr.a, err = e.node("a", 30*time.Second, append([]string{"-gossip-port", strconv.Itoa(port)}, args...)...); err != nil {
		return nil, err
	}
	if pr.b, err = e.node("b", 60*time.Second, append([]string{"-join", pr.gossipA}, args...)...); err != nil {
		e.stop(pr.a)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range []*proc.Proc{pr.a, pr.b} {
		if err := p.WaitPeers(ctx, 1); err != nil {
			e.stop(pr.a)
			e.stop(pr.b)
			return nil, err
		}
	}
	return pr, nil
}

// stats fetches both nodes' /stats (?gc: after a collection).
func (pr *pair) stats(gc bool) (a, b map[string]any, err error) {
	if a, err = stats(pr.a, gc); err != nil {
		return nil, nil, err
	}
	if b, err = stats(pr.b, gc); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

func (e *env) stopPair(pr *pair) {
	if pr == nil {
		return
	}
	var wg sync.WaitGroup
	for _, p := range []*proc.Proc{pr.a, pr.b} {
		if p != nil {
			wg.Go(func() { e.stop(p) })
		}
	}
	wg.Wait()
}

// connCounters are what a flooding worker counts of the connections it
// opens (see redial).
type connCounters struct {
	opened, dialErrs atomic.Int64
	mu               sync.Mutex
	lifetimes        []float64 // seconds, of connections the node ended
}

// redial keeps one connection to addr open at a time until ctx ends,
// opening at most maxConns in all. hold has each until it ends and reports
// whether the node ended it (rather than ctx): if so its lifetime is
// recorded, passed to ended (if set), and the next one is opened pause
// later. A failed dial is counted and tried again pause later.
func (c *connCounters) redial(ctx context.Context, d *net.Dialer, addr string, maxConns int, pause time.Duration,
	hold func(net.Conn) bool, ended func(lifetime time.Duration)) {
	for range maxConns {
		if ctx.Err() != nil {
			return
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() == nil {
				c.dialErrs.Add(1)
				procstat.Sleep(ctx, pause)
			}
			continue
		}
		c.opened.Add(1)
		opened := time.Now()
		byNode := hold(conn)
		conn.Close()
		if byNode {
			l := time.Since(opened)
			if ended != nil {
				ended(l)
			}
			c.mu.Lock()
			c.lifetimes = append(c.lifetimes, l.Seconds())
			c.mu.Unlock()
			procstat.Sleep(ctx, pause)
		}
	}
}

// getJSON fetches u into a map, within timeout.
func getJSON(u string, timeout time.Duration) (map[string]any, error) {
	b, err := proc.GetBody(u, timeout, 16<<20)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// stats fetches p's /stats (?gc: after a collection).
func stats(p *proc.Proc, gc bool) (map[string]any, error) {
	u := p.URL + "/stats"
	if gc {
		u += "?gc"
	}
	return getJSON(u, 5*time.Second)
}

// num reads a number from nested JSON objects; 0 if absent.
func num(m map[string]any, path ...string) float64 {
	f, _ := proc.Get(m, path...).(float64)
	return f
}

// hasPeer reports whether a /stats answer lists peer name as live.
func hasPeer(m map[string]any, name string) bool {
	peers, _ := proc.Get(m, "store", "Replication", "peers").(map[string]any)
	_, ok := peers[name]
	return ok
}

// selfAddr returns the replication stream address a node's /status gives
// for itself (Member.Addr).
func selfAddr(p *proc.Proc) (string, error) {
	m, err := getJSON(p.URL+"/status", 5*time.Second)
	if err != nil {
		return "", err
	}
	ms, _ := m["members"].([]any)
	for _, x := range ms {
		mm, _ := x.(map[string]any)
		if self, _ := mm["self"].(bool); self {
			if a, _ := mm["addr"].(string); a != "" {
				return a, nil
			}
		}
	}
	return "", fmt.Errorf("%s: /status lists no address for itself", p.Name)
}

// Figures from /proc.

// bytesWritten is what a process has written through system calls
// (/proc/PID/io wchar): for a node, its sockets and log.
func bytesWritten(pid int) (int64, error) {
	v, err := procstat.Field(pid, "io", "wchar:")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
}

// established counts established TCP connections whose local port is port
// (the server side of connections to it; /proc/net/tcp, IPv4).
func established(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "01" {
			n++
		}
	}
	return n
}

// Formatting and statistics.

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func mibSigned(b float64) string { return fmt.Sprintf("%+.1f MiB", b/(1<<20)) }

// count formats n with thousands separators.
func count[T int | int64 | uint64 | float64](n T) string {
	v := int64(n)
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// oneConnClient is a load client's: one keep-alive connection, 5 s
// timeouts. CloseIdleConnections ends it.
func oneConnClient() *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true, ResponseHeaderTimeout: 5 * time.Second}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// discard reads (up to 1 MiB of) resp's body and closes it, so its
// connection can be used again.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// findNum finds the first number under key anywhere in nested JSON objects
// (counters a node may report in different places as the library grows).
func findNum(v any, key string) (float64, bool) {
	switch x := v.(type) {
	case map[string]any:
		if f, ok := x[key].(float64); ok {
			return f, true
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if f, ok := findNum(x[k], key); ok {
				return f, true
			}
		}
	case []any:
		for _, y := range x {
			if f, ok := findNum(y, key); ok {
				return f, true
			}
		}
	}
	return 0, false
}
