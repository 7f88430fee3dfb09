package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// cutConn is a connection whose next Write, once cut is set, writes only
// its first cut bytes and fails, closing the connection: a stream that
// dies in the middle of a write of several frames.
type cutConn struct {
	net.Conn
	mu  sync.Mutex // guards cut
	cut int        // bytes the next Write gets through; -1: all
}

func (c *cutConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	cut := c.cut
	c.cut = -1
	c.mu.Unlock()
	if cut < 0 || cut >= len(b) {
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:cut])
	c.Conn.Close()
	return n, errors.New("cutConn: cut")
}

// A write of several frames cut short on an older connection: SendFrames
// redials and writes only the frames not entirely handed to the kernel,
// so none arrives twice and none is lost.
func TestSendFramesCutShortWritesTheRestOnce(t *testing.T) {
	t.Parallel()
	dials := &dialRecorder[*cutConn]{wrap: func(c net.Conn) *cutConn { return &cutConn{Conn: c, cut: -1} }}
	a, b := pairDialingWith(t, dials.dial)
	ctx := context.Background()
	require.NoError(t, a.Send(ctx, b.Self().ID, []byte("first"))) // dials
	waitFrames(t, b, a, 1)

	// Each of these frames is one sealed message of 2+1+3+16 bytes: the
	// cut lets the first two through whole and 5 bytes of the third.
	const sealed = 2 + 1 + 3 + tagSize
	conns := dials.dialed()
	require.Len(t, conns, 1)
	conns[0].mu.Lock()
	conns[0].cut = 2*sealed + 5
	conns[0].mu.Unlock()
	require.NoError(t, a.SendFrames(ctx, b.Self().ID, [][]byte{[]byte("one"), []byte("two"), []byte("six")}))

	waitFrames(t, b, a, 4)
	got := b.rec.framesFrom(a.Self().ID)
	require.Equal(t, [][]byte{[]byte("first"), []byte("one"), []byte("two"), []byte("six")}, got)
	require.Len(t, dials.dialed(), 2, "redialed once")
	require.EqualValues(t, 4, a.Stats().FramesOut)
}
