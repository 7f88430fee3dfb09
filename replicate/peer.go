package replicate

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
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
type peer struct {
	e      *Engine
	id     string
	ctx    context.Context // done when the peer goes down or the engine closes
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: the queue, control queue or in-flight batch changed

	// ackedGen is the highest publish generation whose changes an
	// acknowledged Batch carried; a Ticket compares its generation to it.
	ackedGen atomic.Uint64
	down     atomic.Bool // set (under mu) when the peer goes down

	lostAny    atomic.Bool  // lost is not empty: read without mu by Ticket checks
	transfers  atomic.Int32 // state transfers waiting or running for this peer
	aeDeclined atomic.Int32 // Digests from p declined in a row (changes to p in flight)
	counters   peerCounters // atomic, read by Stats

	mu        sync.Mutex     // guards every field below
	queue     map[string]int // session ID -> its entry's index in order
	order     []queued       // the queued sessions, oldest first, from head on
	head      int
	gen       uint64         // publish generation: incremented by every enqueue
	overflow  bool           // the queue is full (logged once per episode)
	inflight  []*batch       // sent and not yet retired, oldest first; at most MaxInflight
	lost      []genRange     // generations whose changes a batch dropped (see loseLocked)
	spare     []*batch       // retired batches, for reuse (see window.go)
	drained   []model.Record // the last batch's record slice, cleared, for the next drain
	ctrl      []ctrlFrame
	ctrlSends int   // control frames taken from ctrl and not yet sent
	ae        []any // *Digest and *Summary from p waiting for aeLoop
	aeIDs     int   // the IDs in the Summaries in ae
	aeRunning bool  // an aeLoop goroutine runs for p

	// Used by the sender goroutine only.
	ack    wire.Ack     // the Ack being encoded
	ackBuf bytes.Buffer // holds the Ack frame being sent
	out    wire.Batch   // the Batch being encoded (no allocation to box one)
}

// maxOrderKept is the most queue entries whose array an emptied queue
// keeps for reuse.
const maxOrderKept = 4096

// queued is a session's coalesced changes waiting in a peer's queue. The
// entries live in a slice, and the map holds their indices, not the
// entries: a map value over 128 bytes is stored (and allocated) apart.
type queued struct {
	rec model.Record
	gen uint64 // generation that first queued it
}

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

func newPeer(e *Engine, id string) *peer {
	ctx, cancel := context.WithCancel(e.ctx)
	return &peer{
		e:      e,
		id:     id,
		ctx:    ctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		queue:  make(map[string]int),
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
	p.mu.Lock()
	n := 0
	if !p.down.Load() {
		p.down.Store(true)
		n = len(p.queue)
		p.queue = nil
		p.order = nil
		p.ctrl = nil
		p.ae, p.aeIDs = nil, 0
	}
	p.mu.Unlock()
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
	p.mu.Lock()
	if p.down.Load() {
		p.mu.Unlock()
		return 0, 0, false
	}
	p.gen++
	gen = p.gen
	limit := p.e.cfg.QueueLimit
	for i := range recs {
		r := &recs[i]
		if at, ok := p.queue[r.ID]; ok {
			q := &p.order[at]
			q.rec = model.Merge(q.rec, *r)
			continue
		}
		if len(p.queue) >= limit {
			dropped++
			continue
		}
		p.queue[r.ID] = len(p.order)
		p.order = append(p.order, queued{rec: *r, gen: gen})
	}
	warn := dropped > 0 && !p.overflow
	p.overflow = dropped > 0 || p.overflow
	p.mu.Unlock()
	p.signal()
	if repair {
		p.e.st.repairs.Add(uint64(len(recs) - dropped))
	}
	if dropped > 0 {
		p.counters.dropped.Add(uint64(dropped))
		p.e.st.dropped.Add(uint64(dropped))
		if warn {
			p.e.log.Warn("replicate: peer queue full, dropping changes until it drains (anti-entropy repairs them)",
				"peer", p.id, "limit", limit)
		}
	}
	return gen, dropped, true
}

// drainLocked takes the oldest queued records, up to MaxBatchBytes (at
// least one) and DefaultLimits.MaxRecords, into a new batch.
func (p *peer) drainLocked() *batch {
	budget := p.e.cfg.MaxBatchBytes
	maxRecs := wire.DefaultLimits.MaxRecords
	// Every record is estimated at over 100 bytes (EstSize).
	recs := p.drained
	p.drained = nil
	if want := min(len(p.queue), maxRecs, budget/100+1); cap(recs) < want {
		recs = make([]model.Record, 0, want)
	}
	size := 0
	oldest := uint64(0) // the oldest generation queued in the batch
	for p.head < len(p.order) && len(recs) < maxRecs {
		q := &p.order[p.head]
		sz := q.rec.EstSize()
		if len(recs) > 0 && size+sz > budget {
			break
		}
		if wire.Fits(&q.rec, sz, &wire.DefaultLimits) {
			recs = append(recs, q.rec)
		} else {
			// Changes coalesced (or a repair) into more keys or bytes
			// than one record may carry: sent in parts.
			parts := wire.AppendParts(recs, q.rec, &wire.DefaultLimits)
			if len(recs) > 0 && len(parts) > maxRecs {
				clear(parts[len(recs):])
				recs = parts[:len(recs)]
				break
			}
			recs = parts
		}
		if oldest == 0 {
			oldest = q.gen
		}
		size += sz
		delete(p.queue, q.rec.ID)
		*q = queued{}
		p.head++
	}
	// Seqs are unique across the engine's peers and their incarnations,
	// so a late Ack from before a PeerDown/PeerUp never matches.
	b := p.takeSpareLocked()
	b.seq, b.recs, b.n = p.e.batchSeq.Add(1), recs, len(recs)
	// The batch's records hold the changes queued from generation oldest
	// on, up to the current one (later changes coalesce into queued
	// records): what a Ticket may wait for in it.
	b.oldest, b.newest = oldest, p.gen
	if p.head == len(p.order) {
		p.order, p.head = p.order[:0], 0
		if cap(p.order) > maxOrderKept {
			p.order = nil // a burst is over: do not pin its array
		}
		b.covers = p.gen
		p.overflow = false
	} else {
		// Every generation before the oldest still queued is covered.
		b.covers = p.order[p.head].gen - 1
		if p.head > 1024 && p.head*2 > len(p.order) {
			p.order = append(p.order[:0:0], p.order[p.head:]...)
			p.head = 0
			for i := range p.order {
				p.queue[p.order[i].rec.ID] = i
			}
		}
	}
	return b
}

// sendCtrl queues a control frame for the sender. It drops the frame when
// the control queue is full (unless sent is not nil: the caller waits for
// it, which bounds those) or the peer is down.
func (p *peer) sendCtrl(frame []byte, sent chan struct{}) bool {
	p.mu.Lock()
	if p.down.Load() || (sent == nil && len(p.ctrl) >= maxCtrlQueue) {
		p.mu.Unlock()
		return false
	}
	p.ctrl = append(p.ctrl, ctrlFrame{frame: frame, sent: sent})
	p.mu.Unlock()
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
	p.mu.Lock()
	ok := !p.down.Load() && len(p.ctrl) < maxCtrlQueue
	if ok {
		p.ctrl = append(p.ctrl, ctrlFrame{ackSeq: seq, ackRefused: uint64(max(refused, 0))})
	}
	p.mu.Unlock()
	if !ok {
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

// replicating reports whether changes wait in p's queue, a batch waits
// for its ack or a state transfer to p waits or runs: anti-entropy skips
// p meanwhile, as the digests differ by what is in flight.
func (p *peer) replicating() bool {
	if p.transfers.Load() > 0 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) > 0 || len(p.inflight) > 0
}

// idle reports whether nothing waits to be sent or acknowledged.
func (p *peer) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down.Load() || (len(p.queue) == 0 && len(p.inflight) == 0 && len(p.ctrl) == 0 && p.ctrlSends == 0)
}

// run is the sender goroutine.
func (p *peer) run() {
	defer p.e.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armedFor time.Time // when the timer fires; zero when stopped
	for {
		if !p.sendControl() {
			return
		}
		// Send what the window allows, control frames first each time.
		sent := false
		for {
			b := p.nextBatch()
			if b == nil {
				break
			}
			if !p.sendFrame(b.frame) {
				return
			}
			sent = true
			if !p.sendControl() {
				return
			}
		}
		// The timer fires when the oldest unacknowledged send times out.
		if due := p.resendDue(); due != armedFor || sent {
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
			p.markTimedOut(time.Now())
		case <-p.ctx.Done():
			return
		}
	}
}

// sendControl sends every queued control frame; false means the peer
// went down.
func (p *peer) sendControl() bool {
	for {
		p.mu.Lock()
		if len(p.ctrl) == 0 {
			p.mu.Unlock()
			return true
		}
		c := p.ctrl[0]
		p.ctrl[0] = ctrlFrame{}
		if len(p.ctrl) == 1 {
			p.ctrl = p.ctrl[:0] // keep the array: the usual queue is one Ack
		} else {
			p.ctrl = p.ctrl[1:]
		}
		p.ctrlSends++
		p.mu.Unlock()
		frame := c.frame
		if frame == nil {
			var err error
			if frame, err = p.ackFrame(c.ackSeq, c.ackRefused); err != nil {
				p.e.log.Error("replicate: encode ack", "err", err)
			}
		}
		ok := frame == nil || p.sendFrame(frame)
		p.mu.Lock()
		p.ctrlSends--
		p.mu.Unlock()
		if !ok {
			return false
		}
		if c.sent != nil {
			close(c.sent)
		}
		if p.e.flushers.Load() > 0 {
			p.e.broadcast()
		}
	}
}

// sendFrame sends frame, retrying with exponential backoff while the peer
// is up; false means it went down first.
func (p *peer) sendFrame(frame []byte) bool {
	delay := minBackoff
	var t *time.Timer
	for {
		err := p.e.cfg.Network.Send(p.ctx, p.id, frame)
		if err == nil {
			if t != nil {
				t.Stop()
			}
			return true
		}
		if p.ctx.Err() != nil {
			return false
		}
		p.counters.failed.Add(1)
		if delay == minBackoff { // the first failure of a streak

			p.e.log.Warn("replicate: send failed, retrying", "peer", p.id, "err", err, "backoff", delay)
		} else {
			p.e.log.Debug("replicate: send failed, retrying", "peer", p.id, "err", err, "backoff", delay)
		}
		if t == nil {
			t = time.NewTimer(delay)
		} else {
			t.Reset(delay)
		}
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return false
		}
		delay = min(2*delay, maxBackoff)
	}
}
