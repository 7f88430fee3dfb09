package faultnet

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport wraps node's memberlist transport (for cluster.Config's
// WrapTransport): packets and streams it sends are subject to the faults,
// and the address it advertises is registered as node's.
func (n *Net) Transport(node string, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	return &transport{NodeAwareTransport: t, n: n, node: node, timers: make(map[*time.Timer]struct{})}
}

type transport struct {
	memberlist.NodeAwareTransport
	n    *Net
	node string

	mu     sync.Mutex // guards timers and down
	timers map[*time.Timer]struct{}
	down   bool
	wg     sync.WaitGroup // delayed packets being sent
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	aip, aport, err := t.NodeAwareTransport.FinalAdvertiseAddr(ip, port)
	if err == nil {
		t.n.registerString(t.node, net.JoinHostPort(aip.String(), strconv.Itoa(aport)))
	}
	return aip, aport, err
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet unless a fault drops it (reporting
// success, as a lost datagram would), or later when one delays it.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	v := t.n.judge(t.node, t.n.nodeAt(a.Addr), Gossip)
	switch {
	case v.stall || v.cut || v.drop:
		t.n.count(func(s *Stats) { s.PacketsDropped++ })
		return time.Now(), nil
	case v.delay > 0:
		t.later(v.delay, append([]byte(nil), b...), a)
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

// later sends a packet after d, unless the transport shuts down first.
func (t *transport) later(d time.Duration, b []byte, a memberlist.Address) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return
	}
	t.n.count(func(s *Stats) { s.PacketsDelayed++ })
	t.wg.Add(1)
	var timer *time.Timer
	timer = time.AfterFunc(d, func() {
		defer t.wg.Done()
		t.mu.Lock()
		delete(t.timers, timer)
		down := t.down
		t.mu.Unlock()
		if !down {
			_, _ = t.NodeAwareTransport.WriteToAddress(b, a)
		}
	})
	t.timers[timer] = struct{}{}
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream unless a partition forbids it; the
// connection is subject to the faults.
func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return t.n.open(ctx, t.node, a.Addr, Gossip, func(ctx context.Context) (net.Conn, error) {
		left := timeout
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		if left <= 0 {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
		}
		return t.NodeAwareTransport.DialAddressTimeout(a, left)
	})
}

// Shutdown drops the delayed packets not sent yet and shuts the wrapped
// transport down. It is idempotent.
func (t *transport) Shutdown() error {
	t.mu.Lock()
	already := t.down
	t.down = true
	for timer := range t.timers {
		if timer.Stop() {
			t.wg.Done()
		}
		delete(t.timers, timer)
	}
	t.mu.Unlock()
	t.wg.Wait()
	if already {
		return nil
	}
	return t.NodeAwareTransport.Shutdown()
}
