package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"
)

// inConn is one incoming stream; it is only read from.
type inConn struct {
	conn   net.Conn
	psk    [32]byte      // set once authenticated; read under Node.inMu
	done   chan struct{} // closed when its goroutine has finished
	peerID string
}

// acceptLoop accepts stream connections until the listener is closed.
func (n *Node) acceptLoop() {
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("cluster: accept failed", "err", err)
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-n.stop:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		release, why := n.hsLim.acquire(conn.RemoteAddr())
		if why != "" {
			n.stats.handshakesFailed.Add(1)
			n.stats.streamConnsRefused.Add(1)
			if refused, ok := n.hsLog.Allow(time.Now(), 1); ok {
				n.log.Warn("cluster: too many pending stream handshakes, refusing", "remote", conn.RemoteAddr(), "why", why, "refused", refused)
			}
			conn.Close()
			continue
		}
		c := &inConn{conn: conn, done: make(chan struct{})}
		n.inMu.Lock()
		n.ins[c] = struct{}{}
		n.inMu.Unlock()
		if !n.goroutine(func() { n.serveIn(c, release) }) {
			release()
			n.forgetIn(c)
			conn.Close()
		}
	}
}

func (n *Node) forgetIn(c *inConn) {
	n.inMu.Lock()
	delete(n.ins, c)
	if c.peerID != "" && n.inByPeer[c.peerID] == c {
		delete(n.inByPeer, c.peerID)
	}
	n.inMu.Unlock()
}

// dropIn closes the incoming stream from id, if any.
func (n *Node) dropIn(id string) {
	n.inMu.Lock()
	c := n.inByPeer[id]
	n.inMu.Unlock()
	if c != nil {
		c.conn.Close()
	}
}

// serveIn authenticates an incoming stream and delivers its frames. The
// connection's handshake slot is freed with release once the handshake
// is over.
//
// The first handshake message must arrive within Limits.HelloTimeout (a
// node sends it as soon as it has connected), the whole handshake within
// DialTimeout: a client without the key holds a slot for no longer.
func (n *Node) serveIn(c *inConn, release func()) {
	defer close(c.done)
	defer n.forgetIn(c)
	defer c.conn.Close()

	start := time.Now()
	c.conn.SetDeadline(start.Add(min(n.cfg.Limits.HelloTimeout, n.cfg.DialTimeout)))
	hello := false
	gotHello := func() error {
		hello = true
		return c.conn.SetDeadline(start.Add(n.cfg.DialTimeout))
	}
	r := bufio.NewReaderSize(countReads{c.conn, &n.stats.streamReads}, 32<<10)
	acc, err := n.acceptHandshake(r, c.conn, gotHello)
	id, recv, psk := acc.id, acc.recv, acc.psk
	release()
	if err == nil {
		err = c.conn.SetDeadline(time.Time{})
	}
	if err != nil {
		n.stats.handshakesFailed.Add(1)
		if !hello && isTimeout(err) {
			n.stats.handshakeTimeouts.Add(1)
		}
		n.log.Debug("cluster: incoming stream handshake failed", "remote", c.conn.RemoteAddr(), "hello", hello, "err", err)
		return
	}
	n.stats.handshakesOK.Add(1)

	// One reader per peer: a newer stream replaces an older one, and waits
	// for the older reader to finish so Frame calls stay serialized.
	n.inMu.Lock()
	c.peerID, c.psk = id, psk
	old := n.inByPeer[id]
	n.inByPeer[id] = c
	n.inMu.Unlock()
	if old != nil {
		old.conn.Close()
		<-old.done
	}

	err = n.readFrames(r, id, recv)
	if errors.Is(err, net.ErrClosed) { // closed here: by a newer stream, PeerDown, RemoveKey or Close
		n.log.Debug("cluster: incoming stream closed", "peer", id)
		return
	}
	if errors.Is(err, io.EOF) {
		n.log.Debug("cluster: incoming stream closed by the peer", "peer", id)
		n.streamLost(id)
		return
	}
	if _, ok := err.(net.Error); ok {
		n.log.Debug("cluster: incoming stream failed", "peer", id, "err", err)
		n.streamLost(id)
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) { // closed by the peer mid-message
		n.streamLost(id)
	}
	n.stats.streamErrors.Add(1)
	n.log.Warn("cluster: dropping incoming stream", "peer", id, "err", err)
}

var errProtocol = errors.New("cluster: stream protocol violation")

// readFrames decrypts and reassembles frames until the stream fails.
//
// Frames are lent to the Handler (see Handler.Frame): a frame of one
// message is handed on where it was decrypted, in buf, and a chunked frame
// in acc. So a stream of small frames
// allocates nothing, and a run of large ones (a state transfer) reuses
// buffers of framePool rather than allocating and faulting in fresh
// memory per frame (see bufpool.go).
func (n *Node) readFrames(r io.Reader, id string, recv *streamCipher) error {
	// No frame reaches the Handler before the first Join (see New); until
	// then the peer's frames wait in TCP's buffers.
	select {
	case <-n.stop:
		return net.ErrClosed
	case <-n.joined:
	}
	buf := make([]byte, noise.MaxMsgLen)
	var acc *[]byte  // reassembles a chunked frame: from framePool, given back after it
	inFrame := false // a chunk of the current frame is in acc
	for {
		msg, err := readMsg(r, buf, noise.MaxMsgLen)
		if err != nil {
			return err
		}
		pt, err := recv.Decrypt(msg[:0], nil, msg)
		if err != nil {
			return fmt.Errorf("%w: decrypt: %w", errProtocol, err)
		}
		if len(pt) == 1 && pt[0] == msgLeaving && !inFrame {
			n.del.queue.push(event{kind: evLeaving, name: id})
			continue
		}
		if len(pt) == 0 || (pt[0] != msgData && pt[0] != msgDataMore) {
			return fmt.Errorf("%w: unexpected message", errProtocol)
		}
		payload := pt[1:]
		if inFrame && len(*acc)+len(payload) > n.cfg.MaxFrame {
			return fmt.Errorf("%w: frame over MaxFrame %d", errProtocol, n.cfg.MaxFrame)
		}
		if pt[0] == msgDataMore && !inFrame {
			acc, inFrame = takeBuf(), true
		}
		if pt[0] == msgDataMore {
			*acc = append(*acc, payload...)
			continue
		}
		frame := payload
		if inFrame {
			*acc = append(*acc, payload...)
			frame = *acc
		}
		n.stats.framesIn.Add(1)
		n.stats.bytesIn.Add(uint64(len(frame)))
		n.cfg.Handler.Frame(id, frame)
		if inFrame {
			giveBuf(acc)
			acc, inFrame = nil, false
		}
	}
}
