package replicate

import "time"

// A burst of changes grows a peer's buffers: the queue's index and array,
// the record slice a drain fills, the frame buffers of the batches in
// flight (kept as spares once retired) and the control queue. They are
// kept while changes flow, so that a steady stream allocates none, and
// returned once the peer has been idle for a while: with many peers, what
// one burst left in each would otherwise stay allocated for good, several
// MiB per peer (issue 23).

// defaultReleaseAfter is how long a peer's sender waits with nothing to
// send before it returns the buffers a burst grew (see releaseIdle).
const defaultReleaseAfter = 2 * time.Second

// Buffers at most this large are kept when a peer goes idle: what a
// trickle of changes uses.
const (
	keepIndex    = 64       // sessions whose queue index is kept
	keepFrameBuf = 64 << 10 // frame buffer bytes kept
	keepCtrl     = 16       // control queue entries kept
)

// releaseIdle returns the buffers of p that are larger than a trickle of
// changes needs and hold nothing now: the queue's when it is empty, the
// spare batches' frame buffers when no batch is in flight, the control
// queue's when it is empty. It reports whether all of them were
// (nothing in flight or waiting). It drops spares rather than reusing them, so
// it may run while the sender writes a batch's frame (the sender calls
// it when the peer has been idle; tests call it directly).
func (p *peer) releaseIdle() (all bool) {
	w, q, c := &p.window, &p.queue, &p.ctrl
	all = true
	w.mu.Lock()
	all = all && len(w.inflight) == 0
	if len(w.inflight) == 0 {
		kept := w.spare[:0]
		for _, b := range w.spare {
			if b.buf.Cap() <= keepFrameBuf {
				kept = append(kept, b)
			}
		}
		clear(w.spare[len(kept):])
		w.spare = kept
	}
	w.mu.Unlock()

	q.mu.Lock()
	all = all && len(q.index) == 0
	if len(q.index) == 0 && !q.closed {
		if q.peak > keepIndex {
			q.index = make(map[string]int) // a map never shrinks
		}
		q.peak = 0
		q.order, q.head = nil, 0
		q.drained = nil
	}
	q.mu.Unlock()

	c.mu.Lock()
	all = all && len(c.frames) == 0
	if len(c.frames) == 0 && cap(c.frames) > keepCtrl {
		c.frames = nil
	}
	c.mu.Unlock()
	return all

}

// idleRelease is the sender's clock for releaseIdle: it is armed while
// there is something to release, and releases once a whole period (Engine.releaseAfter)
// went by without a send.
type idleRelease struct {
	after    time.Duration
	timer    *time.Timer
	armed    bool   // timer is running
	released bool   // nothing was sent since the last release
	sends    uint64 // frames the sender sent, ever
	armedAt  uint64 // sends when the timer was armed
}

// newIdleRelease returns a stopped idleRelease of period after.
func newIdleRelease(after time.Duration) *idleRelease {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &idleRelease{after: after, timer: t, released: true}
}

// sent counts one frame sent.
func (r *idleRelease) sent() {
	r.sends++
	r.released = false
}

// arm starts the timer unless it runs or nothing was sent since the last
// release.
func (r *idleRelease) arm() {
	if r.armed || r.released {
		return
	}
	r.armed, r.armedAt = true, r.sends
	r.timer.Reset(r.after)
}

// fired handles the timer's firing: it reports whether the sender has
// been idle for the whole period. If not, the next arm starts another.
func (r *idleRelease) fired() bool {
	r.armed = false
	return r.sends == r.armedAt
}

// done records a release that found nothing in use: the timer is armed
// again only after the next send. (A release that found a batch in
// flight or changes queued is tried again a period later.)
func (r *idleRelease) done() { r.released = true }
