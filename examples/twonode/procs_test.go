package main

// Black-box helpers: the demo built as a binary and run as `-node`
// processes, the way an operator deploys it. Tests that stop, kill -9,
// restart or upgrade nodes use them (restart_test.go, dns_test.go, the
// mixed-version test).
//
//	bin := demoBinary(t)                        // built once per test binary
//	a := startNode(t, "a", nodeOptions{Bin: bin, Args: []string{"-http", ..., "-gossip", ...}})
//	a.Stop()                                    // SIGTERM: a clean shutdown
//	a.Kill()                                    // kill -9
//
// A node's output (stdout and stderr) is kept, and written to the test's
// log when the test fails. Every node still running when its test ends is
// killed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/testlog"
)

// TestMain removes the demo binaries built by buildDemo once every test
// has run.
func TestMain(m *testing.M) {
	code := m.Run()
	builds.removeAll()
	os.Exit(code)
}

// builds holds the demo binaries built so far, one per source tree and
// build flags, for the life of the test binary.
var builds buildCache

type buildCache struct {
	mu   sync.Mutex // guards dir and bins
	dir  string     // where the binaries are; "" until the first build
	bins map[string]*build
}

// build is one binary: built once, by the first test that asks for it.
type build struct {
	once sync.Once
	path string // set before once runs
	err  error  // set by once
}

// demoBinary returns the path of the demo (./examples/twonode) built from
// this source tree, building it on the first call.
func demoBinary(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..")) // go test runs in the package's directory
	if err != nil {
		t.Fatal(err)
	}
	return buildDemo(t, root)
}

// buildDemo returns the path of the demo built from the module rooted at
// srcRoot (this tree, or another one: a git worktree of an older commit
// for a mixed-version test), with extra `go build` flags such as -race.
// The first call for a (srcRoot, flags) pair builds it; later calls, from
// any test of this binary, return the same file. The build's output is
// in the failure.
func buildDemo(t testing.TB, srcRoot string, flags ...string) string {
	t.Helper()
	b, err := builds.get(srcRoot, flags)
	if err != nil {
		t.Fatal(err)
	}
	b.once.Do(func() {
		args := append([]string{"build", "-o", b.path}, flags...)
		cmd := exec.Command("go", append(args, "./examples/twonode")...)
		cmd.Dir = srcRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s in %s: %w\n%s", strings.Join(cmd.Args[1:], " "), srcRoot, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// get returns the build entry of srcRoot and flags, making the
// directory binaries go in on the first call.
func (c *buildCache) get(srcRoot string, flags []string) (*build, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "peersession-twonode-bin-")
		if err != nil {
			return nil, fmt.Errorf("a directory for the demo binary: %w", err)
		}
		c.dir, c.bins = dir, map[string]*build{}
	}
	key := srcRoot + "\x00" + strings.Join(flags, "\x00")
	b := c.bins[key]
	if b == nil {
		b = &build{path: filepath.Join(c.dir, fmt.Sprintf("twonode-%d", len(c.bins)))}
		c.bins[key] = b
	}
	return b, nil
}

// removeAll deletes every binary built.
func (c *buildCache) removeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// nodeOptions says how startNode runs one `-node` process.
type nodeOptions struct {
	// Bin is the demo binary; empty means demoBinary(t).
	Bin string
	// Prefix runs the binary through a command, such as
	// []string{"ip", "netns", "exec", "ns1"} (netns.Net.Prefix) to run it
	// in a network namespace. It must exec the binary, not fork it, so
	// that Stop's and Kill's signals reach the node.
	Prefix []string
	// Args are the flags after `-node NAME`: -http (an address the test
	// can reach, with a port or :0), -gossip, -join, -key-file, ...
	Args []string
	// ReadyPath is polled on the node's HTTP address until it answers
	// 200 OK; empty means "/readyz". Binaries older than /readyz can use
	// "/cluster".
	ReadyPath string
	// Timeout bounds the wait for the node to be ready; zero means 60s
	// (a race-detector build on a busy machine, or a join that waits for
	// a peer that is itself starting).
	Timeout time.Duration
}

// nodeProc is one running `-node` process.
type nodeProc struct {
	t    testing.TB
	Name string
	// URL is the node's HTTP base URL, from its "serving" line.
	URL  string
	cmd  *exec.Cmd
	out  *testlog.Buffer // stdout and stderr
	done chan struct{}   // closed when the process has exited
	err  error           // cmd.Wait's; read after done
}

// servingLine is what a node prints once it serves: "node a serving
// http://127.0.0.1:41234 (cluster address ...)".
var servingLine = regexp.MustCompile(`node \S+ serving (http://\S+)`)

// startNode runs the demo as node name with opts, and returns once the
// node serves and its ReadyPath answers 200; it fails the test if the
// process exits first, or is not ready within opts.Timeout. The node is
// killed when the test ends if it still runs; its output goes to the
// test's log if the test failed.
func startNode(t testing.TB, name string, opts nodeOptions) *nodeProc {
	t.Helper()
	p, err := launchNode(t, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launchNode is startNode returning its error instead of failing the
// test, for goroutines that start several nodes at once (startNodes).
func launchNode(t testing.TB, name string, opts nodeOptions) (*nodeProc, error) {
	t.Helper()
	if opts.Bin == "" {
		opts.Bin = demoBinary(t)
	}
	if opts.ReadyPath == "" {
		opts.ReadyPath = "/readyz"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	argv := append(append(append([]string{}, opts.Prefix...), opts.Bin, "-node", name), opts.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	out := new(testlog.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	// The node dies with the test binary, should it die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node %s: start %s: %w", name, strings.Join(argv, " "), err)
	}
	p := &nodeProc{t: t, Name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("node %s (%s) output:\n%s", name, strings.Join(argv, " "), p.Output())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	if err := p.waitReady(ctx, opts.ReadyPath); err != nil {
		p.Kill()
		return p, fmt.Errorf("node %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	return p, nil
}

// startNodes starts one node per name at once, as a deploy that
// restarts every node does (each node's join may wait for the others),
// with the options opts gives node i, and returns them in order once
// every one is ready; or the errors of those that did not start.
func startNodes(t testing.TB, names []string, opts func(i int) nodeOptions) ([]*nodeProc, error) {
	t.Helper()
	procs := make([]*nodeProc, len(names))
	errs := make([]error, len(names))
	o := make([]nodeOptions, len(names))
	for i := range names {
		if o[i] = opts(i); o[i].Bin == "" {
			o[i].Bin = demoBinary(t) // built here, not in the goroutines
		}
	}
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { procs[i], errs[i] = launchNode(t, name, o[i]) })
	}
	wg.Wait()
	return procs, errors.Join(errs...)
}

// waitReady waits for the serving line, then for path to answer 200.
func (p *nodeProc) waitReady(ctx context.Context, path string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no serving line yet"
	for {
		if p.URL == "" {
			if m := servingLine.FindStringSubmatch(p.out.String()); m != nil {
				p.URL = m[1]
			}
		}
		if p.URL != "" {
			last = p.probe(ctx, client, path)
			if last == "" {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before it was ready (%v)", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %s)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// probe GETs path on the node: "" for 200 OK, else what it got.
func (p *nodeProc) probe(ctx context.Context, client *http.Client, path string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "GET " + path + ": " + resp.Status
	}
	return ""
}

// Stop sends SIGTERM and waits for a clean exit (status 0); the node is
// killed, and the test fails, if it has not exited within 30s.
func (p *nodeProc) Stop() {
	p.t.Helper()
	if err := p.Terminate(); err != nil {
		p.t.Fatal(err)
	}
}

// Terminate is Stop returning its error instead of failing the test, for
// goroutines that stop several nodes at once.
func (p *nodeProc) Terminate() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		return fmt.Errorf("node %s did not exit within 30s of SIGTERM", p.Name)
	}
	if p.err != nil {
		return fmt.Errorf("node %s exited after SIGTERM with %v", p.Name, p.err)
	}
	return nil
}

// Kill sends SIGKILL (kill -9: no shutdown at all) and waits until the
// process is gone. Killing a node that has exited does nothing.
func (p *nodeProc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Output returns what the node has printed so far, stdout and stderr.
func (p *nodeProc) Output() string { return p.out.String() }

// loopbackAddr returns "127.0.0.1:port" with a port that is free for TCP
// and UDP now and lies below the kernel's ephemeral range, so that no
// outgoing connection takes it while its node is down between two
// restarts (as one could take a port from testnet.ReserveAddr once it
// is released). Ports are picked at random, to keep clear of tests
// running at the same time.
func loopbackAddr(t testing.TB) string {
	t.Helper()
	lo := ephemeralLow()
	for range 100 {
		port := 10000 + rand.IntN(lo-10000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no free loopback port below the ephemeral range in 100 tries")
	return ""
}

// ephemeralLow is the lowest port the kernel hands outgoing connections
// (net.ipv4.ip_local_port_range), or 32768 if it cannot be read.
func ephemeralLow() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := bytes.Fields(raw); len(f) == 2 {
			if lo, err := strconv.Atoi(string(f[0])); err == nil && lo > 11000 {
				return lo
			}
		}
	}
	return 32768
}

// The helpers themselves: a node process is built, started, ready on
// /readyz, serves the app, and exits with status 0 on SIGTERM.
func TestNodeProcessStartsAndStops(t *testing.T) {
	n := startNode(t, "solo", nodeOptions{Args: []string{"-http", "127.0.0.1:0", "-gossip", loopbackAddr(t)}})
	resp, err := http.Get(n.URL + "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"members":["solo"]`) {
		t.Fatalf("GET /cluster: %s %s", resp.Status, body)
	}
	n.Stop()
	if strings.Contains(n.Output(), "shutdown:") {
		t.Fatalf("the node reported a shutdown error:\n%s", n.Output())
	}
}

// waitUntil polls cond every 50ms, on the test's goroutine, until it
// reports done, and fails the test with cond's last state, and msg, if
// that takes longer than timeout.
func waitUntil(t testing.TB, timeout time.Duration, cond func() (done bool, state string), msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after %v: %s", fmt.Sprintf(msg, args...), timeout, state)
		}
		time.Sleep(50 * time.Millisecond) // the polling interval
	}
}
