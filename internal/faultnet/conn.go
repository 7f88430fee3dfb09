package faultnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// ErrCut is the error of an I/O on a connection the Net cut (partition or
// drop), and of a dial it refused.
var ErrCut = errors.New("faultnet: connection cut")

// Dialer returns node's replication dialer, for cluster.Config.Dial.
func (n *Net) Dialer(node string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.open(ctx, node, addr, Replication, func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		})
	}
}

// Listener wraps node's replication listener, for cluster.Config.WrapListener:
// it registers the listener's address as node's, and wraps accepted
// connections so that they stall while node is frozen.
func (n *Net) Listener(node string, ln net.Listener) net.Listener {
	n.register(node, ln.Addr())
	return &listener{Listener: ln, n: n, node: node}
}

type listener struct {
	net.Listener
	n    *Net
	node string
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.n.newConn(c, l.node, "", Replication), nil
}

// open dials addr from node with dial, unless a partition forbids it; while
// node is frozen it waits (bounded by ctx). The connection is the dialing
// end, tracked so that a partition can cut it.
func (n *Net) open(ctx context.Context, node, addr string, kind Kind, dial func(context.Context) (net.Conn, error)) (net.Conn, error) {
	remote := n.nodeAt(addr)
	stalled := false
	for {
		frozen, cut, wake := n.link(node, remote)
		if cut {
			n.count(func(s *Stats) { s.Refused++ })
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %s and %s are partitioned", ErrCut, node, remote)}
		}
		if !frozen {
			break
		}
		if !stalled {
			stalled = true
			n.count(func(s *Stats) { s.Stalls++ })
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
		}
	}
	raw, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	c := n.newConn(raw, node, remote, kind)
	n.track(c)
	if _, cut, _ := n.link(node, remote); cut { // partitioned while dialing
		c.Close()
		n.count(func(s *Stats) { s.Refused++ })
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %s and %s are partitioned", ErrCut, node, remote)}
	}
	return c, nil
}

// link reports whether node (the local end of a dial) is frozen and
// whether it is partitioned from remote, and a channel closed by the next
// change of faults.
func (n *Net) link(node, remote string) (frozen, cut bool, wake <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.frozen[node], remote != "" && n.cut[pair{node, remote}], n.changed
}

// conn is one end of a connection. On the dialing end remote is the other
// node (or "" when its address is unknown) and every fault applies; on
// the accepting end remote is "" and only a freeze of local applies.
type conn struct {
	net.Conn
	n             *Net
	local, remote string
	kind          Kind

	closeOnce sync.Once
	closed    chan struct{}

	wmu  sync.Mutex // serializes writes to Conn, guards held
	held []byte     // written towards a frozen remote, not delivered yet

	mu     sync.Mutex // guards rd, wd and dlWake
	rd, wd time.Time  // deadlines as last set; zero means none
	dlWake chan struct{}
}

func (n *Net) newConn(raw net.Conn, local, remote string, kind Kind) *conn {
	return &conn{Conn: raw, n: n, local: local, remote: remote, kind: kind,
		closed: make(chan struct{}), dlWake: make(chan struct{})}
}

// FreezeBuffer is how many bytes a connection accepts towards a frozen
// node, as its socket buffers would, before writes stall; they are
// delivered when the node thaws.
const FreezeBuffer = 64 << 10

// Write sends b from local to remote, subject to the faults: see the
// package comment.
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.remote != "" && c.n.isFrozen(c.remote) && !c.n.isFrozen(c.local) && len(c.held)+len(b) <= FreezeBuffer {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	drop, err := c.gate("write", c.local, c.remote)
	if err != nil {
		return 0, err
	}
	if drop {
		c.held = nil
		c.cut()
		return len(b), nil // the bytes are lost with the connection
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// flush delivers what was held for a frozen remote, now thawed.
func (c *conn) flush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.flushLocked(); err != nil {
		c.Close()
	}
}

func (c *conn) flushLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// Read receives what remote sent, subject to the faults in that
// direction: they hold or discard data once it has arrived.
func (c *conn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	if k == 0 {
		return k, err
	}
	drop, gerr := c.gate("read", c.remote, c.local)
	if gerr != nil {
		return 0, gerr
	}
	if drop {
		c.cut()
		return 0, c.opErr("read", ErrCut)
	}
	return k, err
}

// gate applies the faults to one message from one node to another: it
// waits out a freeze or a delay (bounded by the deadline of op and by
// Close) and reports whether the message is dropped; err is set when the
// connection is cut, closed, or its deadline passed.
func (c *conn) gate(op, from, to string) (drop bool, err error) {
	stalled := false
	for {
		v := c.n.judge(from, to, c.kind)
		switch {
		case v.stall:
			if !stalled {
				stalled = true
				c.n.count(func(s *Stats) { s.Stalls++ })
			}
			if err := c.wait(op, v.wake, 0); err != nil {
				return false, err
			}
			continue
		case v.cut:
			c.cut()
			return false, c.opErr(op, ErrCut)
		}
		if v.delay > 0 {
			if err := c.wait(op, nil, v.delay); err != nil {
				return false, err
			}
		}
		return v.drop, nil
	}
}

// wait blocks until wake is closed (nil: never) or d has passed (0: no
// limit), returning nil; or until op's deadline passes or the connection
// is closed, returning the error the I/O would have. A deadline set while
// waiting counts.
func (c *conn) wait(op string, wake <-chan struct{}, d time.Duration) error {
	var elapsed <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	for {
		c.mu.Lock()
		deadline, dlWake := c.rd, c.dlWake
		if op == "write" {
			deadline = c.wd
		}
		c.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return c.opErr(op, os.ErrDeadlineExceeded)
			}
			t := time.NewTimer(left)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-wake:
			return nil
		case <-elapsed:
			return nil
		case <-c.closed:
			return c.opErr(op, net.ErrClosed)
		case <-expired:
			return c.opErr(op, os.ErrDeadlineExceeded)
		case <-dlWake:
		}
	}
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// cut closes the connection because of a fault.
func (c *conn) cut() {
	c.n.count(func(s *Stats) { s.Cuts++ })
	c.Close()
}

func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		c.n.untrack(c)
		err = c.Conn.Close()
	})
	return err
}

func (c *conn) SetDeadline(t time.Time) error {
	c.setDeadlines(&t, &t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.setDeadlines(&t, nil)
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.setDeadlines(nil, &t)
	return c.Conn.SetWriteDeadline(t)
}

// setDeadlines records new deadlines (nil: unchanged) and wakes waiters.
func (c *conn) setDeadlines(rd, wd *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rd != nil {
		c.rd = *rd
	}
	if wd != nil {
		c.wd = *wd
	}
	close(c.dlWake)
	c.dlWake = make(chan struct{})
}
