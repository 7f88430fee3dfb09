package replicate

import (
	"bytes"
	"context"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// minBackoff and maxBackoff bound the pause between failed sends.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
)

// peer is one live peer: a queue of changes coalesced per session, a
// queue of control frames, and the sender goroutine (run) that drains
// both over Network.Send.
//
// The sender sends every waiting control frame (acks, replies, sync
// chunks, digests) before data, and keeps at most Config.MaxInflight
// Batches unacknowledged: while the window has room it drains the whole
// queue (up to MaxBatchBytes) into one Batch and sends it at once, so a
// change never waits for the previous Batch's round trip; once the window
// is full, changes pile up in the queue (coalesced per session) and go
// together in the next Batch when an Ack frees a slot: batching without
// timers, that grows with the load. A Batch not acknowledged within
// AckTimeout is sent again. Control frames go out while Batches wait for
// their Acks, so two nodes waiting on each other's acks never deadlock.
//
// Acks may arrive for any Batch in the window (a resent one is acked
// late), but a Ticket counts only what the oldest-first run of
// acknowledged Batches covers: a change is acknowledged once every Batch
// up to the one carrying it was.
//
// Network.Send is called for one peer only from its sender goroutine, one
// frame at a time, with the peer's context (cancelled by PeerDown and
// Close); a Send that blocks holds up only this peer.
//
// A peer composes its state, each part with its own lock:
//
//   - queue (sendQueue, queue.go): the changes waiting, coalesced per
//     session, and the publish generations;
//   - window (window.go): the Batches in flight, their resends, and the
//     generations acknowledged or lost;
//   - ctrl (ctrlQueue, ctrl.go): the control frames waiting;
//   - ae (aeState, aestate.go): the anti-entropy frames from the peer
//     waiting for its aeLoop.
//
// Lock order: window.mu, then queue.mu, then ctrl.mu, then ae.mu. Only
// two places hold more than one: the sender (nextBatch) and replicating
// hold window.mu while they take queue.mu, so that a batch leaves the
// queue and joins the window in one step; stop holds queue.mu, ctrl.mu
// and ae.mu together, so that down and the three queues change at once.
// peerCounters.mu is taken last (under window.mu, in handleAck), and
// nothing is locked under it.
type peer struct {
	e      *Engine
	id     string
	ctx    context.Context // done when the peer goes down or the engine closes
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: the queue, control queue or in-flight batch changed

	// down is set once the peer goes down, by stop, while it holds the
	// locks of queue, ctrl and ae; read without them by Ticket checks.
	down      atomic.Bool
	transfers atomic.Int32 // state transfers waiting or running for this peer
	counters  peerCounters // atomic, read by Stats
	reach     reach        // whether it answers (reach.go): atomic

	queue  sendQueue
	window window
	ctrl   ctrlQueue
	ae     aeState

	// Used by the sender goroutine only.
	ack    wire.Ack     // the Ack being encoded
	ackBuf bytes.Buffer // holds the Ack frame being sent
	out    wire.Batch   // the Batch being encoded (no allocation to box one)
	// gathered holds the frames of one write (gather.go); one the frame
	// of a write of one.
	gathered gathered
	one      [1][]byte
	ackDue   time.Time    // Acks wait until then for company (see sendPending); zero if none do
	idle     *idleRelease // when to return buffers (idle.go); set by run
}

func newPeer(e *Engine, id string) *peer {
	ctx, cancel := context.WithCancel(e.ctx)
	return &peer{
		e:      e,
		id:     id,
		ctx:    ctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		queue: sendQueue{
			limit:    e.cfg.QueueLimit,
			maxBytes: e.cfg.MaxBatchBytes,
			index:    make(map[string]int),
		},
		window: window{limit: e.cfg.MaxInflight, ackTimeout: e.cfg.AckTimeout},
	}
}

// signal wakes the sender without blocking.
func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop marks the peer down, discards its queues and stops its sender. It
// returns how many queued sessions it dropped (counted as Dropped).
func (p *peer) stop() int {
	p.queue.mu.Lock()
	p.ctrl.mu.Lock()
	p.ae.mu.Lock()
	n := 0
	if !p.down.Load() {
		p.down.Store(true)
		n = p.queue.closeLocked()
		p.ctrl.closeLocked()
		p.ae.closeLocked()
	}
	p.ae.mu.Unlock()
	p.ctrl.mu.Unlock()
	p.queue.mu.Unlock()
	p.cancel()
	if n > 0 {
		p.counters.dropped.Add(uint64(n))
		p.e.st.dropped.Add(uint64(n))
	}
	return n
}

// enqueue merges recs into the queue under a new generation, which it
// returns with how many records the queue limit dropped; ok is false if
// the peer is down. Repairs (anti-entropy pushes) are counted as such.
func (p *peer) enqueue(recs []model.Record, repair bool) (gen uint64, dropped int, ok bool) {
	gen, dropped, warn, ok := p.queue.add(recs)
	if !ok {
		return 0, 0, false
	}
	p.signal()
	if repair {
		p.e.st.repairs.Add(uint64(len(recs) - dropped))
	}
	if dropped > 0 {
		p.counters.dropped.Add(uint64(dropped))
		p.e.st.dropped.Add(uint64(dropped))
		if warn {
			p.e.log.Warn("replicate: peer queue full, dropping changes until it drains (anti-entropy repairs them)",
				"peer", p.id, "limit", p.queue.limit)
		}
	}
	return gen, dropped, true
}

// replicating reports whether changes wait in p's queue, a batch waits
// for its ack or a state transfer to p waits or runs: anti-entropy skips
// p meanwhile, as the digests differ by what is in flight. It holds
// window.mu while it looks at the queue, so that a batch between the two
// (see nextBatch) is not missed.
func (p *peer) replicating() bool {
	if p.transfers.Load() > 0 {
		return true
	}
	p.window.mu.Lock()
	defer p.window.mu.Unlock()
	if len(p.window.inflight) > 0 {
		return true
	}
	p.queue.mu.Lock()
	defer p.queue.mu.Unlock()
	return len(p.queue.index) > 0
}

// run is the sender goroutine.
func (p *peer) run() {
	defer p.e.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	p.idle = newIdleRelease(p.e.releaseAfter)
	defer p.idle.timer.Stop()
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	defer ackTimer.Stop()
	var ackArmed time.Time // when ackTimer fires; zero when stopped
	var armedFor time.Time // when the timer fires; zero when stopped
	for {
		// Send what waits, Acks and control frames first, until nothing
		// does or the window is full.
		sent := false
		for {
			n, ok := p.sendPending()
			if !ok {
				return
			}
			if n == 0 {
				break
			}
			sent = true
		}
		p.idle.arm()
		// The ack timer is moved only to an earlier time, never stopped:
		// at a steady stream of Acks, resetting it for each would cost
		// more than the wake-ups it saves. A firing with nothing held
		// does nothing.
		if due := p.ackDue; !due.IsZero() && (ackArmed.IsZero() || due.Before(ackArmed)) {
			ackArmed = due
			ackTimer.Reset(max(time.Until(due), 0))
		}
		// The timer fires when the oldest unacknowledged send times out.
		if due := p.window.resendDue(); due != armedFor || sent {
			timer.Stop()
			armedFor = due
			if !due.IsZero() {
				timer.Reset(max(time.Until(due), 0))
			}
		}
		select {
		case <-p.wake:
		case <-timer.C:
			armedFor = time.Time{}
			p.window.markTimedOut(time.Now())
		case <-ackTimer.C:
			ackArmed = time.Time{} // held Acks that are due go now
		case <-p.idle.timer.C:
			if p.idle.fired() && p.releaseIdle() {
				p.idle.done()
			}
		case <-p.ctx.Done():
			return
		}
	}
}
