package faultnet

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pipe dials node "b"'s listener from node "a" and returns both ends.
func pipe(t *testing.T, n *Net) (dialed, accepted net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := n.Listener("b", raw)
	t.Cleanup(func() { ln.Close() })
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			got <- c
		}
		close(got)
	}()
	c, err := n.Dialer("a")(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	s := <-got
	require.NotNil(t, s)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestPartitionCutsAndRefuses(t *testing.T) {
	n := New(1)
	c, s := pipe(t, n)
	_, err := c.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)

	n.Partition([]string{"a"}, []string{"b"})
	_, err = s.Read(buf)
	assert.Error(t, err, "the accepting end sees the cut")
	_, err = c.Write([]byte("x"))
	assert.Error(t, err)
	_, err = n.Dialer("a")(t.Context(), "tcp", s.LocalAddr().String())
	assert.ErrorIs(t, err, ErrCut)

	n.Heal()
	c2, err := n.Dialer("a")(t.Context(), "tcp", s.LocalAddr().String())
	require.NoError(t, err)
	c2.Close()
	assert.Equal(t, 1, n.Stats().Refused)
}

func TestDropNextCutsUnderTheWrite(t *testing.T) {
	n := New(1)
	c, s := pipe(t, n)
	n.DropNext("a", "b", Replication, 1)
	k, err := c.Write([]byte("lost"))
	assert.NoError(t, err, "a dropped write looks sent")
	assert.Equal(t, 4, k)
	b, err := io.ReadAll(s)
	assert.NoError(t, err)
	assert.Empty(t, b, "nothing arrives, the connection ends")
	n.DropNext("a", "b", Gossip, 1) // another kind: no effect on streams
	c2, s2 := pipe(t, n)
	_, err = c2.Write([]byte("ok"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(s2, buf)
	assert.NoError(t, err)
}

func TestFreezeHoldsWritesAndStallsReads(t *testing.T) {
	n := New(1)
	c, s := pipe(t, n)
	n.Freeze("b")
	_, err := c.Write([]byte("held"))
	require.NoError(t, err, "the kernel would take it")
	require.NoError(t, s.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	buf := make([]byte, 4)
	_, err = s.Read(buf)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "a frozen node reads nothing")

	// A write beyond the buffer stalls until its deadline.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = c.Write(make([]byte, FreezeBuffer))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	n.Unfreeze("b")
	require.NoError(t, s.SetReadDeadline(time.Time{}))
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	assert.Equal(t, "held", string(buf), "held bytes are delivered on thaw")
}

func TestDialFromFrozenNodeWaits(t *testing.T) {
	n := New(1)
	n.Freeze("a")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	_, err := n.Dialer("a")(ctx, "tcp", "127.0.0.1:1")
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
}

// fakeTransport records packets.
type fakeTransport struct {
	memberlist.NodeAwareTransport
	sent chan []byte
}

func (f *fakeTransport) WriteToAddress(b []byte, _ memberlist.Address) (time.Time, error) {
	f.sent <- b
	return time.Now(), nil
}

func (f *fakeTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), 7000, nil
}

func (f *fakeTransport) Shutdown() error { return nil }

func TestPacketsDroppedDelayedAndSeeded(t *testing.T) {
	n := New(42)
	fa := &fakeTransport{sent: make(chan []byte, 100)}
	ta := n.Transport("a", fa)
	tb := n.Transport("b", &fakeTransport{})
	_, _, err := tb.FinalAdvertiseAddr("", 0) // registers 127.0.0.1:7000 as b
	require.NoError(t, err)
	to := memberlist.Address{Addr: "127.0.0.1:7000"}

	n.DropRate("a", "b", Gossip, 0.5)
	for range 20 {
		_, err := ta.WriteToAddress([]byte("p"), to)
		require.NoError(t, err)
	}
	got := len(fa.sent)
	assert.Greater(t, got, 0)
	assert.Less(t, got, 20)
	// The same seed drops the same packets.
	n2 := New(42)
	fa2 := &fakeTransport{sent: make(chan []byte, 100)}
	ta2 := n2.Transport("a", fa2)
	_, _, _ = n2.Transport("b", &fakeTransport{}).FinalAdvertiseAddr("", 0)
	n2.DropRate("a", "b", Gossip, 0.5)
	for range 20 {
		_, _ = ta2.WriteToAddress([]byte("p"), to)
	}
	assert.Equal(t, got, len(fa2.sent))

	n.DropRate("a", "b", Gossip, 0)
	for len(fa.sent) > 0 {
		<-fa.sent
	}
	n.Delay("a", "b", Gossip, 20*time.Millisecond)
	start := time.Now()
	_, err = ta.WriteToAddress([]byte("late"), to)
	require.NoError(t, err)
	assert.Equal(t, "late", string(<-fa.sent))
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)

	n.Freeze("b")
	_, _ = ta.WriteToAddress([]byte("gone"), to)
	assert.Empty(t, fa.sent)
	require.NoError(t, ta.Shutdown())
	require.NoError(t, ta.Shutdown(), "idempotent")
}
