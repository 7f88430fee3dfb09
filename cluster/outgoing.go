package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Reconnect backoff after a failed dial or handshake.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// outPeer is the sending side towards one peer: at most one connection,
// dialed lazily and redialed after failures.
type outPeer struct {
	n  *Node
	id string

	// sem is a one-token semaphore held by the Send that is dialing or
	// writing. Holding it guards the current connection's cipher and write
	// buffer (a CipherState is single-writer), ends, the backoff fields
	// and the watch fields (see watchLocked) below.
	sem       chan struct{}
	ends      []int // scratch for writeLocked
	failures  int
	retryAt   time.Time
	lastErr   error
	connected bool // a connection was established before (for Reconnects)
	watchCtx  context.Context
	stopWatch func() bool   // context.AfterFunc's stop for watchCtx
	watchDone chan struct{} // closed once the callback for watchCtx ran

	mu   sync.Mutex // guards c and gone
	c    *outConn
	gone bool // peer is down or node closed: no more connections
}

// outConn is one established outgoing connection.
type outConn struct {
	conn net.Conn
	psk  [32]byte
	send *streamCipher // guarded by the outPeer's sem
	buf  []byte        // write buffer, guarded by the outPeer's sem
}

// watchLocked makes a cancellation of ctx interrupt the writes on the
// current connection (through its write deadline). The registration is
// kept from one Send to the next while callers pass the same ctx (the
// replication sender always does), so that a write costs none. The caller
// holds p.sem.
func (p *outPeer) watchLocked(ctx context.Context) {
	if p.watchCtx == ctx {
		return
	}
	p.unwatchLocked()
	if ctx.Done() == nil {
		return // never cancelled
	}
	done := make(chan struct{})
	p.watchCtx, p.watchDone = ctx, done
	p.stopWatch = context.AfterFunc(ctx, func() {
		defer close(done)
		p.mu.Lock()
		c := p.c
		p.mu.Unlock()
		if c != nil {
			c.conn.SetWriteDeadline(time.Unix(1, 0))
		}
	})
}

// unwatchLocked undoes watchLocked, waiting for the callback if it started
// so that it cannot hit a later write. The caller holds p.sem.
func (p *outPeer) unwatchLocked() {
	if p.stopWatch != nil && !p.stopWatch() {
		<-p.watchDone
	}
	p.watchCtx, p.stopWatch, p.watchDone = nil, nil, nil
}

// Send writes frame to the peer's stream, dialing and authenticating it
// first if needed. It returns once the frame is handed to the kernel, which
// proves nothing about delivery. Send is safe for concurrent use; frames to
// one peer arrive in the order their Sends returned. It returns
// ErrUnknownPeer if peerID is not a live member and ErrFrameTooLarge above
// Config.MaxFrame. ctx bounds waiting for other Sends, dialing and the
// write; a write that fails or is cut short closes the connection. If the
// connection was an older one, Send redials once and writes again (the
// failed write was incomplete, so this does not duplicate the frame);
// otherwise the next Send redials. After a failed dial, Sends fail fast until a backoff
// (50ms doubling to 5s) has passed.
func (n *Node) Send(ctx context.Context, peerID string, frame []byte) error {
	one := [1][]byte{frame}
	return n.send(ctx, peerID, one[:], msgData)
}

// SendFrames is Send for several frames, written in order with one
// system call (up to the kernel's socket buffer): a sender with several
// frames waiting for one peer pays for one write, and the peer's reader
// for one read, rather than one each. If writing on an older connection
// fails, SendFrames redials once and writes the frames that were not
// entirely handed to the kernel; it returns an error if any frame is not.
func (n *Node) SendFrames(ctx context.Context, peerID string, frames [][]byte) error {
	return n.send(ctx, peerID, frames, msgData)
}

// send writes frames (typ msgData) or a payload-less control message.
func (n *Node) send(ctx context.Context, peerID string, frames [][]byte, typ byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, f := range frames {
		if len(f) > n.cfg.MaxFrame {
			return fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, len(f), n.cfg.MaxFrame)
		}
	}
	peer, ok := n.alivePeer(peerID)
	if !ok {
		if n.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("%w: %q", ErrUnknownPeer, peerID)
	}
	p, err := n.outPeer(peerID)
	if err != nil {
		return err
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()

	// A connection kept from earlier may have died without the watcher
	// noticing yet: if writing on it fails, redial once and write what was
	// not written. This cannot duplicate a frame: the frames entirely
	// handed to the kernel are not written again, and the receiver drops
	// an incomplete message with the old connection.
	todo := frames
	for attempt := 0; ; attempt++ {
		c, fresh, err := p.connLocked(ctx, peer)
		if err != nil {
			return err
		}
		done, err := p.writeLocked(ctx, c, todo, typ)
		n.countOut(todo[:done])
		todo = todo[done:]
		if err == nil {
			break
		}
		p.drop(c)
		if fresh || attempt > 0 || ctx.Err() != nil {
			return fmt.Errorf("cluster: send to %s: %w", peerID, err)
		}
	}
	return nil
}

// countOut counts frames as sent.
func (n *Node) countOut(frames [][]byte) {
	for _, f := range frames {
		n.stats.framesOut.Add(1)
		n.stats.bytesOut.Add(uint64(len(f)))
	}
}

// outPeer returns the sending side for id, creating it.
func (n *Node) outPeer(id string) (*outPeer, error) {
	n.outMu.Lock()
	defer n.outMu.Unlock()
	if n.isClosed() {
		return nil, ErrClosed
	}
	p, ok := n.outs[id]
	if !ok {
		p = &outPeer{n: n, id: id, sem: make(chan struct{}, 1)}
		n.outs[id] = p
	}
	return p, nil
}

// dropOut closes and forgets the sending side for id.
func (n *Node) dropOut(id string) {
	n.outMu.Lock()
	p := n.outs[id]
	delete(n.outs, id)
	n.outMu.Unlock()
	if p != nil {
		p.shut()
	}
}

// connLocked returns the current connection, dialing one if there is none;
// fresh reports a new one. The caller holds p.sem.
func (p *outPeer) connLocked(ctx context.Context, peer Peer) (c *outConn, fresh bool, err error) {
	p.mu.Lock()
	c, gone := p.c, p.gone
	p.mu.Unlock()
	if gone {
		return nil, false, fmt.Errorf("%w: %q", ErrUnknownPeer, p.id)
	}
	if c != nil {
		return c, false, nil
	}
	c, err = p.dialLocked(ctx, peer)
	return c, true, err
}

// dialLocked dials a new connection unless a backoff is pending. The
// caller holds p.sem.
func (p *outPeer) dialLocked(ctx context.Context, peer Peer) (*outConn, error) {
	if wait := time.Until(p.retryAt); wait > 0 {
		return nil, fmt.Errorf("cluster: peer %s unreachable, next dial in %v: %w", p.id, wait.Round(time.Millisecond), p.lastErr)
	}
	c, err := p.n.dial(ctx, peer)
	if err != nil && ctx.Err() != nil {
		return nil, err // the caller gave up: not the peer's fault, no backoff
	}
	if err != nil {
		p.failures++
		p.retryAt = time.Now().Add(min(minBackoff<<min(p.failures-1, 10), maxBackoff))
		p.lastErr = err
		return nil, err
	}
	p.failures, p.lastErr = 0, nil
	if p.connected {
		p.n.stats.reconnects.Add(1)
	}
	p.connected = true
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		c.conn.Close()
		return nil, fmt.Errorf("%w: %q", ErrUnknownPeer, p.id)
	}
	p.c = c
	p.mu.Unlock()
	if !p.n.goroutine(func() { p.watch(c) }) {
		p.drop(c)
		return nil, ErrClosed
	}
	return c, nil
}

// writeLocked seals frames (or a control message of type typ) and writes
// them in one call. It returns how many of frames were entirely written
// (none for a control message). The caller holds p.sem.
func (p *outPeer) writeLocked(ctx context.Context, c *outConn, frames [][]byte, typ byte) (done int, err error) {
	// A cancelled ctx interrupts the write through the deadline. A ctx
	// cancelled before the deadline is set is caught by the check after.
	p.watchLocked(ctx)
	deadline, _ := ctx.Deadline() // zero: none
	if err := c.conn.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	buf := c.buf[:0]
	var big *[]byte // from framePool, for frames over keepBuf (see bufpool.go)
	if size > keepBuf {
		big = takeBuf()
		buf = *big
	}
	ends := p.ends[:0] // where each sealed frame ends in buf
	if typ == msgData {
		for _, f := range frames {
			if buf, err = appendFrame(buf, c.send, f); err != nil {
				break
			}
			ends = append(ends, len(buf))
		}
	} else {
		buf, err = appendSealed(buf, c.send, typ, nil)
		ends = append(ends, len(buf))
	}
	p.ends = ends[:0]
	if err == nil {
		var n int
		n, err = c.conn.Write(buf)
		p.n.stats.streamWrites.Add(1)
		for typ == msgData && done < len(ends) && ends[done] <= n {
			done++
		}
	}
	if big != nil {
		*big = buf
		giveBuf(big)
	} else {
		c.buf = buf
	}
	if err != nil && ctx.Err() != nil {
		return done, fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return done, err
}

// watch reads the outgoing connection, which the peer never writes to
// after the handshake: any return means it is closed or broken, so the next
// Send redials instead of writing into a dead socket.
func (p *outPeer) watch(c *outConn) {
	var b [1]byte
	_, err := c.conn.Read(b[:])
	if err == nil {
		err = errors.New("unexpected data from peer")
	}
	p.n.log.Debug("cluster: outgoing stream ended", "peer", p.id, "err", err)
	// Still current: nobody here closed it (whoever does forgets it first),
	// so the peer or the network did.
	if p.drop(c) {
		p.n.streamLost(p.id)
	}
}

// drop closes c and forgets it; it reports whether c was still current.
func (p *outPeer) drop(c *outConn) bool {
	p.mu.Lock()
	current := p.c == c
	if current {
		p.c = nil
	}
	p.mu.Unlock()
	c.conn.Close()
	return current
}

// dropIfPSK drops the current connection if it was made with psk.
func (p *outPeer) dropIfPSK(psk [32]byte) {
	p.mu.Lock()
	c := p.c
	p.mu.Unlock()
	if c != nil && c.psk == psk {
		p.drop(c)
	}
}

// shut closes the connection and refuses new ones.
func (p *outPeer) shut() {
	p.mu.Lock()
	p.gone = true
	c := p.c
	p.c = nil
	p.mu.Unlock()
	if c != nil {
		c.conn.Close()
	}
}

// dial connects to peer's stream and runs the initiator handshake with the
// primary key, bounded by ctx and Config.DialTimeout.
func (n *Node) dial(ctx context.Context, peer Peer) (*outConn, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	conn, err := n.cfg.Dial(ctx, "tcp", peer.Addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: dial %s at %s: %w", peer.ID, peer.Addr, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		conn.SetDeadline(time.Unix(1, 0))
	})
	psk := n.streamPSKs()[0]
	send, err := n.dialHandshake(conn, psk, peer)
	if !stop() {
		<-fired
		if err == nil {
			err = ctx.Err()
		}
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		n.stats.handshakesFailed.Add(1)
		conn.Close()
		return nil, fmt.Errorf("cluster: handshake with %s at %s: %w", peer.ID, peer.Addr, err)
	}
	n.stats.handshakesOK.Add(1)
	return &outConn{conn: conn, psk: psk, send: send}, nil
}
