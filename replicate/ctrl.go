package replicate

import (
	"math"
	"sync"
	"time"

	"github.com/peersession/peersession/replicate/wire"
)

// maxCtrlQueue bounds the control frames (acks, replies) waiting for one
// peer's sender; beyond it they are dropped (the peer resends or asks
// again).
const maxCtrlQueue = 4096

// ctrlFrame is a control frame waiting for the sender; sent, if not nil,
// is closed once Network.Send has taken it. An Ack (one per Batch
// received) is queued as just its fields, with frame nil, and encoded by
// the sender into a buffer it reuses.
type ctrlFrame struct {
	frame      []byte
	sent       chan struct{}
	ackSeq     uint64 // frame is nil: an Ack for Batch ackSeq
	ackRefused uint64 // and the Batch's records not applied
}

// ctrlQueue is a peer's queue of control frames (acks, replies, state
// transfer chunks, digests and summaries), which its sender sends before
// any Batch.
type ctrlQueue struct {
	mu       sync.Mutex // guards frames, closed, others, ackSince, lastAck and ackGap
	frames   []ctrlFrame
	closed   bool      // the peer went down: nothing is queued any more
	others   int       // frames in frames that are not Acks
	ackSince time.Time // when the oldest Ack in frames was queued, about (see acksOnly); zero if none
	lastAck  time.Time // when the latest Ack was queued; zero if none yet
	// ackGap is the time between the latest Ack queued and the one before
	// it (the peer's Batches arriving that far apart); the longest
	// Duration after the first.
	ackGap time.Duration
}

// push queues f; it reports false, dropping f, if the queue is closed or,
// when bounded is set, full.
func (c *ctrlQueue) push(f ctrlFrame, bounded bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || (bounded && len(c.frames) >= maxCtrlQueue) {
		return false
	}
	c.frames = append(c.frames, f)
	if f.isAck() {
		now := time.Now()
		if c.ackSince.IsZero() {
			c.ackSince = now
		}
		c.ackGap = time.Duration(math.MaxInt64)
		if !c.lastAck.IsZero() {
			c.ackGap = now.Sub(c.lastAck)
		}
		c.lastAck = now
	} else {
		c.others++
	}
	return true
}

// isAck reports whether f is an Ack (queued as its fields only).
func (f *ctrlFrame) isAck() bool { return f.frame == nil && f.sent == nil }

// acksOnly reports whether the frames waiting are all Acks, at least
// one, how many, since when the oldest has waited (or a later time, if
// older Acks were sent and some were left), and how long before the
// latest Ack the one before it was queued (see ackGap).
func (c *ctrlQueue) acksOnly() (since time.Time, n int, gap time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ackSince, len(c.frames), c.ackGap, len(c.frames) > 0 && c.others == 0
}

// pop removes and returns the oldest frame; false if there is none.
func (c *ctrlQueue) pop() (ctrlFrame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.frames) == 0 {
		return ctrlFrame{}, false
	}
	f := c.frames[0]
	c.frames[0] = ctrlFrame{}
	if !f.isAck() {
		c.others--
	}
	if len(c.frames) == 1 {
		c.frames = c.frames[:0] // keep the array: the usual queue is one Ack
		c.ackSince = time.Time{}
	} else {
		c.frames = c.frames[1:]
	}
	return f, true
}

// closeLocked empties the queue for good. mu must be held.
func (c *ctrlQueue) closeLocked() {
	c.closed = true
	c.frames = nil
}

// sendCtrl queues a control frame for the sender. It drops the frame when
// the control queue is full (unless sent is not nil: the caller waits for
// it, which bounds those) or the peer is down.
func (p *peer) sendCtrl(frame []byte, sent chan struct{}) bool {
	if !p.ctrl.push(ctrlFrame{frame: frame, sent: sent}, sent == nil) {
		return false
	}
	p.signal()
	return true
}

// sendCtrlWait queues a control frame and waits until it is sent; false
// means the peer went down first.
func (p *peer) sendCtrlWait(frame []byte) bool {
	sent := make(chan struct{})
	if !p.sendCtrl(frame, sent) {
		return false
	}
	select {
	case <-sent:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// sendEncodedWait is sendCtrlWait for the result of encoding a frame
// (Encode's or encodeTo's): an encoding error is logged and reported as
// false, like a peer gone down, so that the caller stops.
func (p *peer) sendEncodedWait(frame []byte, err error) bool {
	if err != nil {
		p.e.log.Error("replicate: control frame not sent: it does not encode", "peer", p.id, "err", err)
		return false
	}
	return p.sendCtrlWait(frame)
}

// sendAck queues the Ack for Batch seq, refused of whose records were not
// applied.
func (p *peer) sendAck(seq uint64, refused int) {
	if !p.ctrl.push(ctrlFrame{ackSeq: seq, ackRefused: uint64(max(refused, 0))}, true) {
		p.e.log.Debug("replicate: ack dropped: control queue full or peer down", "peer", p.id)
		return
	}
	p.signal()
}

// ackFrame encodes the Ack for Batch seq (refused of whose records were
// not applied) into the sender's ack buffer; the frame is valid until the
// next call. Only the sender calls it.
func (p *peer) ackFrame(seq, refused uint64) ([]byte, error) {
	p.ack = wire.Ack{Seq: seq, Refused: refused}
	return wire.EncodeTo(&p.ackBuf, wire.MsgAck, &p.ack)
}
