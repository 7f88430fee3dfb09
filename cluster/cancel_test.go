package cluster

import (
	"context"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stuckConn is a connection whose writes, once stuck is set, block as on a
// full socket buffer until the write deadline passes: a peer that stopped
// reading, without depending on how much the kernel buffers.
type stuckConn struct {
	net.Conn
	mu       sync.Mutex    // guards the fields below
	stuck    bool          // writes block
	deadline time.Time     // the write deadline
	changed  chan struct{} // closed and replaced when deadline changes
	blocked  chan struct{} // closed when a write first blocks
}

func (c *stuckConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if !c.stuck {
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	select {
	case <-c.blocked:
	default:
		close(c.blocked)
	}
	for c.deadline.IsZero() || time.Now().Before(c.deadline) {
		ch, deadline := c.changed, c.deadline
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			timeout = time.After(time.Until(deadline))
		}
		select {
		case <-ch:
		case <-timeout:
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	return 0, os.ErrDeadlineExceeded
}

func (c *stuckConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func TestCancelInterruptsSendToStuckPeer(t *testing.T) {
	t.Parallel()
	dials := &dialRecorder[*stuckConn]{wrap: func(c net.Conn) *stuckConn {
		return &stuckConn{Conn: c, changed: make(chan struct{}), blocked: make(chan struct{})}
	}}
	a, b := pairDialingWith(t, dials.dial)

	// The same context for every Send, as the replication sender does:
	// the first write dials; then the peer stops reading.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, a.Send(ctx, b.Self().ID, []byte("first")))
	conns := dials.dialed()
	require.Len(t, conns, 1)
	sc := conns[0]
	sc.mu.Lock()
	sc.stuck = true
	sc.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- a.Send(ctx, b.Self().ID, []byte("second")) }()
	<-sc.blocked
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(waitFor):
		t.Fatal("Send still blocked after its context was cancelled")
	}

	// The next Send, with another context, dials a new connection (the
	// interrupted write broke the old one) and is not hit by the old
	// context's cancellation. A Send returning nil proves only that the
	// frame reached a stream (b may still be closing the old one as the
	// new one comes in): send until it arrives.
	require.NoError(t, a.Send(context.Background(), b.Self().ID, []byte("third")))
	require.Eventually(t, func() bool {
		fs := b.rec.framesFrom(a.Self().ID)
		if len(fs) >= 2 {
			return true
		}
		_ = a.Send(context.Background(), b.Self().ID, []byte("third"))
		return false
	}, waitFor, tick)
	fs := b.rec.framesFrom(a.Self().ID)
	assert.Equal(t, "first", string(fs[0]))
	for _, f := range fs[1:] {
		assert.Equal(t, "third", string(f), "the interrupted frame is never delivered")
	}
	assert.GreaterOrEqual(t, len(dials.dialed()), 2, "a new connection")
}
