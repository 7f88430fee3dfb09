package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFramesArriveInOrder(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)
	const k = 1000
	ctx := context.Background()
	for i := range k {
		require.NoError(t, a.Send(ctx, b.Self().ID, binary.BigEndian.AppendUint32(nil, uint32(i))))
	}
	waitFrames(t, b, a, k)
	for i, f := range b.rec.framesFrom(a.Self().ID) {
		require.Equal(t, uint32(i), binary.BigEndian.Uint32(f))
	}
	st := a.Stats()
	assert.EqualValues(t, k, st.FramesOut)
	assert.EqualValues(t, 4*k, st.BytesOut)
	assert.EqualValues(t, 1, st.HandshakesOK)
	assert.EqualValues(t, k, b.Stats().FramesIn)
}

func TestLargeFrameIsChunked(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)
	big := make([]byte, 1<<20+7)
	rand.Read(big)
	ctx := context.Background()
	require.NoError(t, a.Send(ctx, b.Self().ID, big))
	require.NoError(t, a.Send(ctx, b.Self().ID, []byte{}))
	require.NoError(t, a.Send(ctx, b.Self().ID, big[:maxChunk]))
	require.NoError(t, a.Send(ctx, b.Self().ID, big[:maxChunk+1]))
	waitFrames(t, b, a, 4)
	got := b.rec.framesFrom(a.Self().ID)
	assert.True(t, bytes.Equal(big, got[0]), "1 MiB frame intact")
	assert.Empty(t, got[1])
	assert.True(t, bytes.Equal(big[:maxChunk], got[2]))
	assert.True(t, bytes.Equal(big[:maxChunk+1], got[3]))
}

// Chunked frames are reassembled into a buffer sized from the one before:
// frames that shrink, grow and repeat arrive intact, each no larger than
// it needs to be.
func TestChunkedFramesOfChangingSizes(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)
	big := make([]byte, 3<<20)
	rand.Read(big)
	sizes := []int{3 << 20, 2*maxChunk + 5, 1 << 20, 1 << 20, maxChunk + 1, 3<<20 - 1}
	ctx := context.Background()
	for _, n := range sizes {
		require.NoError(t, a.Send(ctx, b.Self().ID, big[:n]))
	}
	waitFrames(t, b, a, len(sizes))
	for i, f := range b.rec.framesFrom(a.Self().ID) {
		require.True(t, bytes.Equal(big[:sizes[i]], f), "frame %d (%d bytes) intact", i, sizes[i])
		require.LessOrEqual(t, cap(f), 2*len(f), "frame %d holds no more than twice its size", i)
	}
}

func TestMaxFrame(t *testing.T) {
	t.Parallel()
	a, b := pair(t, func(c *Config) { relaxed(c); c.MaxFrame = 1000 })
	err := a.Send(context.Background(), b.Self().ID, make([]byte, 1001))
	assert.ErrorIs(t, err, ErrFrameTooLarge)
	require.NoError(t, a.Send(context.Background(), b.Self().ID, make([]byte, 1000)))
}

func TestReceiverDropsFrameOverMaxFrame(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, func(c *Config) { relaxed(c); c.MaxFrame = 100_000 })
	join(t, a)
	b := newTestNode(t, func(c *Config) { relaxed(c); seeds(a)(c) }) // default MaxFrame: may send more than a accepts
	join(t, b)
	waitPeers(t, a, b)
	require.NoError(t, b.Send(context.Background(), a.Self().ID, make([]byte, 200_000)))
	require.Eventually(t, func() bool { return a.Stats().StreamErrors == 1 }, waitFor, tick)
	assert.Empty(t, a.rec.framesFrom(b.Self().ID))
	// The sender notices the closed stream and redials.
	deliverRetry(t, b, a, []byte("small"))
}

func TestConcurrentSendersKeepPerSenderOrder(t *testing.T) {
	t.Parallel()
	ns := cluster(t, 3, relaxed)
	a, b, c := ns[0], ns[1], ns[2]
	const senders, per = 4, 200
	var wg sync.WaitGroup
	for _, from := range []testNode{a, c} {
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					assert.NoError(t, from.Send(context.Background(), b.Self().ID, []byte(fmt.Sprintf("%d:%d", s, i))))
				}
			}()
		}
	}
	wg.Wait()
	for _, from := range []testNode{a, c} {
		waitFrames(t, b, from, senders*per)
		next := make([]int, senders)
		for _, f := range b.rec.framesFrom(from.Self().ID) {
			var s, i int
			_, err := fmt.Sscanf(string(f), "%d:%d", &s, &i)
			require.NoError(t, err)
			require.Equal(t, next[s], i, "sender %d out of order", s)
			next[s]++
		}
	}
	// Replies travel on the receiver's own outgoing stream.
	require.NoError(t, b.Send(context.Background(), a.Self().ID, []byte("ack")))
	waitFrames(t, a, b, 1)
}

func TestSendUnknownPeerAndCancelled(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)
	assert.ErrorIs(t, a.Send(context.Background(), "nobody-00000000", []byte("x")), ErrUnknownPeer)
	assert.ErrorIs(t, a.Send(context.Background(), a.Self().ID, []byte("x")), ErrUnknownPeer)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, a.Send(ctx, b.Self().ID, []byte("x")), context.Canceled)
	require.NoError(t, a.Send(context.Background(), b.Self().ID, []byte("y")))
}

func TestWrongKeyCannotJoinOrStream(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, nil)
	join(t, a)
	x := newTestNode(t, func(c *Config) {
		c.Keys = [][]byte{testKey2}
		seeds(a)(c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.Error(t, x.Join(ctx))
	assert.Empty(t, a.Peers())
	assert.Empty(t, x.Peers())

	// Dialing a's stream directly with the wrong key fails on both sides.
	_, err := x.dial(ctx, a.Self())
	require.Error(t, err)
	require.Eventually(t, func() bool { return a.Stats().HandshakesFailed == 1 }, waitFor, tick)
	assert.Zero(t, a.Stats().HandshakesOK)
	assert.Empty(t, a.rec.frames)
}

func TestDifferentLabelCannotStream(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, nil)
	x := newTestNode(t, func(c *Config) { c.Label = "other" })
	_, err := x.dial(context.Background(), a.Self())
	require.Error(t, err)
	require.Eventually(t, func() bool { return a.Stats().HandshakesFailed == 1 }, waitFor, tick)
}

// expectDropped waits until the server closes conn.
func expectDropped(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(waitFor))
	_, err := io.Copy(io.Discard, conn)
	require.NoError(t, err, "server should close the connection (EOF), not time out")
}

func TestGarbageAndHugeLengthAreDropped(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)
	inputs := map[string][]byte{
		"garbage":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"huge length":    append([]byte(preamble), 0xff, 0xff),
		"random msg1":    append(append([]byte(preamble), 0, 48), make([]byte, 48)...),
		"short then eof": []byte("PS"),
	}
	failed := a.Stats().HandshakesFailed
	for name, in := range inputs {
		conn, err := net.Dial("tcp", a.Self().Addr)
		require.NoError(t, err, name)
		_, err = conn.Write(in)
		require.NoError(t, err, name)
		if name == "short then eof" {
			conn.(*net.TCPConn).CloseWrite()
		}
		expectDropped(t, conn)
		conn.Close()
		failed++
		require.Eventually(t, func() bool { return a.Stats().HandshakesFailed == failed }, waitFor, tick, name)
	}
	// Still serving.
	require.NoError(t, b.Send(context.Background(), a.Self().ID, []byte("still here")))
	waitFrames(t, a, b, 1)
}

func TestReadMsgBoundsLengthBeforeReading(t *testing.T) {
	// A huge prefix followed by nothing: readMsg refuses without reading on.
	r := bytes.NewReader([]byte{0xff, 0xff})
	_, err := readMsg(r, make([]byte, 64), maxMsg1)
	assert.ErrorIs(t, err, errMsgTooLong)
}

// recordingConn keeps a copy of everything written.
type recordingConn struct {
	net.Conn
	mu      sync.Mutex // guards written
	written []byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.written = append(c.written, p...)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func TestReplayedHandshakeIsRejected(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)

	// Record a legitimate connection from b: handshake, confirmation, one frame.
	raw, err := net.Dial("tcp", a.Self().Addr)
	require.NoError(t, err)
	rec := &recordingConn{Conn: raw}
	send, _, err := clientHandshake(rec, streamPSK(testKey1), b.prologue, b.Self().ID, a.Self().ID, b.cfg.Formats)
	require.NoError(t, err)
	msg, err := appendFrame(nil, send, []byte("once"))
	require.NoError(t, err)
	_, err = rec.Write(msg)
	require.NoError(t, err)
	waitFrames(t, a, b, 1)
	raw.Close()
	ok, failed := a.Stats().HandshakesOK, a.Stats().HandshakesFailed

	// Replay it byte for byte on a fresh connection.
	replay, err := net.Dial("tcp", a.Self().Addr)
	require.NoError(t, err)
	defer replay.Close()
	_, err = replay.Write(rec.written)
	require.NoError(t, err)
	expectDropped(t, replay)
	require.Eventually(t, func() bool { return a.Stats().HandshakesFailed == failed+1 }, waitFor, tick)
	assert.Equal(t, ok, a.Stats().HandshakesOK)
	assert.Len(t, a.rec.framesFrom(b.Self().ID), 1, "replayed frame must not be delivered")
}

func TestKeyRotationWithFramesFlowing(t *testing.T) {
	t.Parallel()
	ns := cluster(t, 2, relaxed)
	a, b := ns[0], ns[1]
	var sent int
	flow := func() {
		t.Helper()
		sent++
		sendRetry(t, a.Node, b.Self().ID, []byte(fmt.Sprint(sent)))
		require.Eventually(t, func() bool {
			got := b.rec.framesFrom(a.Self().ID)
			return len(got) > 0 && string(got[len(got)-1]) == fmt.Sprint(sent)
		}, waitFor, tick)
	}
	flow()
	for _, n := range ns {
		require.NoError(t, n.AddKey(testKey2))
	}
	flow()
	for _, n := range ns {
		require.NoError(t, n.UseKey(testKey2))
	}
	flow()
	for _, n := range ns {
		require.NoError(t, n.RemoveKey(testKey1))
	}
	flow()
	flow()
	assert.GreaterOrEqual(t, a.Stats().Reconnects, uint64(1), "stream made with the removed key is redialed")

	// Only the new key gets in now.
	old := newTestNode(t, func(c *Config) { relaxed(c); seeds(a)(c) })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.Error(t, old.Join(ctx))
	_, err := old.dial(ctx, a.Self())
	require.Error(t, err)

	fresh := newTestNode(t, func(c *Config) {
		relaxed(c)
		c.Keys = [][]byte{testKey2}
		seeds(a)(c)
	})
	join(t, fresh)
	waitPeers(t, a, b, fresh)
	sendRetry(t, fresh.Node, b.Self().ID, []byte("new key"))

	assert.Error(t, a.UseKey(testKey3), "UseKey of a key not on the ring")
	assert.Error(t, a.RemoveKey(testKey2), "the primary key cannot be removed")
	assert.Error(t, a.AddKey([]byte("short")))
}

func TestInsecureLoopbackWithoutKeys(t *testing.T) {
	t.Parallel()
	a, b := pair(t, func(c *Config) { relaxed(c); c.Keys = nil })
	require.NoError(t, a.Send(context.Background(), b.Self().ID, []byte("plain")))
	waitFrames(t, b, a, 1)
}

func TestPeerDownClosesStreams(t *testing.T) {
	t.Parallel()
	a, b := pair(t, nil)
	require.NoError(t, a.Send(context.Background(), b.Self().ID, []byte("x")))
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool { _, ok := a.rec.down(b.Self().ID); return ok }, waitFor, tick)
	a.outMu.Lock()
	assert.Empty(t, a.outs)
	a.outMu.Unlock()
}

// *Node is what replicate.Network asks for (replicate/interfaces.go).
var _ interface {
	Send(ctx context.Context, peer string, frame []byte) error
} = (*Node)(nil)

// SendFrames writes several frames with one system call; each arrives
// whole, in order, as if sent one by one.
func TestSendFramesInOneWrite(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)
	big := make([]byte, 3*maxChunk+11)
	rand.Read(big)
	frames := [][]byte{[]byte("one"), {}, big, []byte("four")}
	ctx := context.Background()
	require.NoError(t, a.Send(ctx, b.Self().ID, []byte("first"))) // dials
	before := a.Stats()
	require.NoError(t, a.SendFrames(ctx, b.Self().ID, frames))
	after := a.Stats()
	assert.EqualValues(t, 1, after.StreamWrites-before.StreamWrites, "one write")
	assert.EqualValues(t, len(frames), after.FramesOut-before.FramesOut)
	assert.EqualValues(t, 3+len(big)+4, after.BytesOut-before.BytesOut)
	waitFrames(t, b, a, 1+len(frames))
	got := b.rec.framesFrom(a.Self().ID)[1:]
	for i := range frames {
		assert.True(t, bytes.Equal(frames[i], got[i]), "frame %d intact", i)
	}
}

func TestSendFramesRefusesAFrameOverMaxFrame(t *testing.T) {
	t.Parallel()
	a, b := pair(t, func(c *Config) { relaxed(c); c.MaxFrame = 1 << 10 })
	err := a.SendFrames(context.Background(), b.Self().ID, [][]byte{[]byte("ok"), make([]byte, 2<<10)})
	require.ErrorIs(t, err, ErrFrameTooLarge)
	assert.Zero(t, a.Stats().FramesOut, "nothing sent")
}
