// Package proc starts and stops the benchmark's server processes.
package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a running child process that announced "LISTEN <url>".
type Proc struct {
	Name string
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args (prefix, if any, is prepended: "ip netns exec
// ns"), waits up to timeout for its "LISTEN <url>" line, and returns it.
// Its stderr goes to stderr, prefixed by nothing; the child is killed if
// this process dies.
func Start(name string, timeout time.Duration, prefix []string, bin string, args ...string) (*Proc, error) {
	return StartLog(name, timeout, os.Stderr, prefix, bin, args...)
}

// StartLog is Start with the child's stderr, and its stdout lines other
// than LISTEN, going to logw instead of stderr.
func StartLog(name string, timeout time.Duration, logw io.Writer, prefix []string, bin string, args ...string) (*Proc, error) {
	argv := append(append([]string{}, prefix...), bin)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "LISTEN "); ok {
				select {
				case urlc <- u:
				default:
				}
				continue
			}
			fmt.Fprintf(logw, "[%s] %s\n", name, line)
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.URL = <-urlc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before serving: %v", name, cmd.ProcessState)
	case <-time.After(timeout):
		p.Stop()
		return nil, fmt.Errorf("%s did not serve within %v", name, timeout)
	}
}

// Pid returns the process ID (of the prefix command, if Start had one).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM, waits up to 10s, then kills.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Stats fetches the server's /stats (with ?gc to collect first).
func (p *Proc) Stats(gc bool) (map[string]any, error) {
	u := p.URL + "/stats"
	if gc {
		u += "?gc"
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// GetBody fetches u within timeout and returns its body, at most limit
// bytes of it (0: all); an answer other than 200 OK is an error.
func GetBody(u string, timeout time.Duration, limit int64) ([]byte, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var r io.Reader = resp.Body
	if limit > 0 {
		r = io.LimitReader(r, limit)
	}
	return io.ReadAll(r)
}

// WaitPeers polls /stats until the store reports n live peers.
func (p *Proc) WaitPeers(ctx context.Context, n int) error {
	for {
		m, err := p.Stats(false)
		if err == nil && PeerCount(m) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %d peer(s): %w (last error %v)", p.Name, n, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PeerCount reads store.Replication.Peers from a /stats answer.
func PeerCount(m map[string]any) int {
	r, _ := Get(m, "store", "Replication").(map[string]any)
	peers, _ := r["peers"].(map[string]any)
	return len(peers)
}

// Get walks nested JSON objects.
func Get(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// FreePort returns a TCP port on host that was free a moment ago.
func FreePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
