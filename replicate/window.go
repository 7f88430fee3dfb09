package replicate

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// The in-flight window of a peer: Batches sent and not yet acknowledged
// (at most Config.MaxInflight), their acks, their resends after
// AckTimeout, and the generation a Ticket counts as acknowledged.

// window is a peer's in-flight window. Its sender fills it from the
// peer's queue (see nextBatch) and the peer's Acks empty it (handleAck).
type window struct {
	limit      int           // Config.MaxInflight; set at creation
	ackTimeout time.Duration // Config.AckTimeout; set at creation

	// ackedGen is the highest publish generation whose changes an
	// acknowledged Batch carried; a Ticket compares its generation to
	// it. Written under mu, read without it.
	ackedGen atomic.Uint64
	lostAny  atomic.Bool // lost is not empty: read without mu by Ticket checks

	mu       sync.Mutex // guards inflight (and the batches in it), lost and spare
	inflight []*batch   // sent and not yet retired, oldest first; at most limit
	lost     []genRange // generations whose changes a batch dropped (see loseLocked)
	spare    []*batch   // retired batches, for reuse (see takeSpareLocked)
}

// batch is a Batch in flight to a peer.
type batch struct {
	seq    uint64
	recs   []model.Record // nil once encoded
	n      int            // records in the batch
	frame  []byte
	buf    *bytes.Buffer // holds frame
	covers uint64        // every generation up to this one is in this or an earlier batch
	oldest uint64        // the changes in recs are of generations oldest..newest
	newest uint64
	sentAt time.Time // the last (re)send
	resend bool      // the ack timed out: send frame again
	acked  bool      // acknowledged; retired once every older batch is
}

// handleAck marks the in-flight batch with Seq seq acknowledged and
// retires the acknowledged head of the window; stale and duplicate acks
// are ignored. An Ack reporting refused records makes the batch's changes
// lost (see loseLocked): the window moves on, but a Ticket for one of them
// is never acknowledged by this peer.
func (p *peer) handleAck(seq, refused uint64) {
	now := time.Now()
	w := &p.window
	w.mu.Lock()
	var b *batch
	for _, f := range w.inflight {
		if f.seq == seq {
			b = f
			break
		}
	}
	if b == nil || b.acked || b.frame == nil {
		w.mu.Unlock()
		return
	}
	b.acked = true
	n := uint64(b.n) // once retired, b may be reused
	refused = min(refused, n)
	if refused > 0 {
		w.loseLocked(b.oldest, b.newest)
	}
	p.counters.setAck(now, now.Sub(b.sentAt))
	retired := w.retireLocked()
	w.mu.Unlock()
	p.counters.acked.Add(n - refused)
	p.signal()
	if refused > 0 {
		p.counters.refused.Add(refused)
		p.e.log.Debug("replicate: peer refused changes (its Stats count them as Refused or Skewed)", "peer", p.id, "refused", refused, "batch", n)
	}
	if retired > 0 || refused > 0 {
		p.e.broadcast()
	}
}

// retireLocked removes the acknowledged batches at the head of the window
// and advances ackedGen to what they cover: changes count as acknowledged
// once no older batch is missing. It returns how many it removed. mu must
// be held.
func (w *window) retireLocked() int {
	retired := 0
	for retired < len(w.inflight) && w.inflight[retired].acked {
		b := w.inflight[retired]
		if b.covers > w.ackedGen.Load() {
			w.ackedGen.Store(b.covers)
		}
		w.spareLocked(b)
		retired++
	}
	if retired > 0 {
		n := copy(w.inflight, w.inflight[retired:])
		clear(w.inflight[n:])
		w.inflight = w.inflight[:n]
	}
	return retired
}

// resendDue returns when the earliest unacknowledged batch times out; zero
// when none waits.
func (w *window) resendDue() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var due time.Time
	for _, b := range w.inflight {
		if b.acked || b.resend || b.frame == nil {
			continue
		}
		if at := b.sentAt.Add(w.ackTimeout); due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return due
}

// markTimedOut flags for resending every unacknowledged batch sent
// AckTimeout or more before now.
func (w *window) markTimedOut(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.inflight {
		if !b.acked && b.frame != nil && !now.Before(b.sentAt.Add(w.ackTimeout)) {
			b.resend = true
		}
	}
}

// nextBatch returns the batch to send now, if any: an in-flight one whose
// ack timed out (oldest first), else a new one drained from the queue when
// the window has room. It counts the send (before it happens, so the
// counters never lag an ack).
func (p *peer) nextBatch() *batch {
	w, q := &p.window, &p.queue
	for {
		w.mu.Lock()
		for _, b := range w.inflight {
			if b.resend && !b.acked {
				b.resend = false
				b.sentAt = time.Now()
				w.mu.Unlock()
				p.counters.retries.Add(1)
				return b
			}
		}
		// Lock order: window.mu, then queue.mu. The batch is drained and
		// joins the window in one step under window.mu, so that the peer
		// never looks idle (see replicating) between drain and send; no
		// ack can match it before it is sent (handleAck ignores a batch
		// with no frame yet).
		if len(w.inflight) >= w.limit {
			w.mu.Unlock()
			return nil
		}
		q.mu.Lock()
		if len(q.index) == 0 {
			q.mu.Unlock()
			w.mu.Unlock()
			return nil
		}
		b := w.takeSpareLocked()
		// Seqs are unique across the engine's peers and their
		// incarnations, so a late Ack from before a PeerDown/PeerUp
		// never matches.
		b.seq = p.e.batchSeq.Add(1)
		q.drainLocked(b)
		q.mu.Unlock()
		w.inflight = append(w.inflight, b)
		drained := b.recs
		w.mu.Unlock()

		frame, recs, err := p.encode(b, drained)
		q.reuseDrained(drained)
		w.mu.Lock()
		lost := err != nil || len(recs) < len(drained)
		if lost {
			// Records that do not encode were dropped: the peer's Ack
			// for this batch must not count for the changes in them.
			w.loseLocked(b.oldest, b.newest)
		}
		if err != nil {
			// Nothing in it could be encoded (counted as dropped): it
			// counts as acknowledged, so that the window moves on.
			b.recs, b.n, b.acked = nil, 0, true
			w.retireLocked()
			w.mu.Unlock()
			p.e.broadcast() // tickets for its changes fail now
			continue
		}
		b.frame, b.recs, b.n = frame, nil, len(recs)
		b.sentAt = time.Now()
		w.mu.Unlock()
		if lost {
			p.e.broadcast()
		}
		p.counters.batches.Add(1)
		p.counters.sent.Add(uint64(len(recs)))
		return b
	}
}

// encode encodes recs into Batch seq in buf, returning the frame and the
// records in it. If that fails (a record over a Limits field), it drops the
// records that cannot be encoded on their own, counts and logs them, and
// encodes the rest; an error means nothing was left.
func (p *peer) encode(b *batch, recs []model.Record) ([]byte, []model.Record, error) {
	buf, seq := b.buf, b.seq
	p.out = wire.Batch{Seq: seq, Records: recs}
	frame, err := wire.EncodeTo(buf, wire.MsgBatch, &p.out)
	p.out = wire.Batch{}
	if err == nil {
		return frame, recs, nil
	}
	good := recs[:0:0]
	for _, r := range recs {
		if _, err1 := wire.Encode(wire.MsgBatch, &wire.Batch{Records: []model.Record{r}}); err1 != nil {
			p.e.log.Error("replicate: change cannot be encoded, dropped", "peer", p.id, "err", err1)
			continue
		}
		good = append(good, r)
	}
	if bad := len(recs) - len(good); bad > 0 {
		p.counters.dropped.Add(uint64(bad))
		p.e.st.dropped.Add(uint64(bad))
	}
	if len(good) == 0 {
		return nil, nil, err
	}
	p.out = wire.Batch{Seq: seq, Records: good}
	frame, err = wire.EncodeTo(buf, wire.MsgBatch, &p.out)
	p.out = wire.Batch{}
	if err != nil {
		p.counters.dropped.Add(uint64(len(good)))
		p.e.st.dropped.Add(uint64(len(good)))
		p.e.log.Error("replicate: batch cannot be encoded, dropped", "peer", p.id, "err", err)
		return nil, nil, err
	}
	return frame, good, nil
}

// Reuse on the sender's path, so that a stream of Batches allocates
// neither a batch, a frame nor a record slice per Batch. A retired batch,
// with its frame buffer, becomes a spare (at most MaxInflight are kept),
// and only the sender goroutine takes spares, in nextBatch: it holds no
// batch then, so a batch retired by an Ack that arrived while it was
// being resent (the sender reads b.frame without the lock) is not reused
// before that send returned. Network.Send keeps no reference to a frame
// after it returns. The record slice is kept by the queue (see
// sendQueue.reuseDrained).

// takeSpareLocked returns a spare batch, zeroed but for its frame buffer,
// or a new one. mu must be held.
func (w *window) takeSpareLocked() *batch {
	if n := len(w.spare); n > 0 {
		b := w.spare[n-1]
		w.spare[n-1] = nil
		w.spare = w.spare[:n-1]
		*b = batch{buf: b.buf}
		return b
	}
	return &batch{buf: new(bytes.Buffer)}
}

// spareLocked keeps retired batch b for a later one, unless its frame
// buffer is large or enough are kept. mu must be held.
func (w *window) spareLocked(b *batch) {
	if b.buf != nil && b.buf.Cap() <= wire.MaxPooledBuf && len(w.spare) < w.limit {
		w.spare = append(w.spare, b)
	}
}

// maxLostRanges bounds the generation ranges a peer remembers as lost;
// beyond it the two closest are merged into one, which may fail tickets
// whose changes, between them, did arrive (never the reverse).
const maxLostRanges = 16

// genRange is an inclusive range of publish generations.
type genRange struct{ lo, hi uint64 }

// loseLocked records that changes of generations lo..hi may have been
// dropped from a batch (they did not encode) or refused by the peer: a
// Ticket for one of them is never acknowledged by this peer, as if the
// queue limit had dropped it.
// The range can hold changes that were sent, coalesced with dropped ones
// or in the same batch: failing a write that did replicate is the safe
// error. mu must be held.
//
// The ranges are kept sorted by their start. Past maxLostRanges the two
// neighbours with the smallest gap between them are merged, so that the
// generations wrongly counted as lost are as few as the bound allows (a
// peer that refuses changes now and then must not fail every Sync write
// made since the first refusal).
func (w *window) loseLocked(lo, hi uint64) {
	i := len(w.lost)
	for i > 0 && w.lost[i-1].lo > lo {
		i--
	}
	w.lost = slices.Insert(w.lost, i, genRange{lo: lo, hi: hi})
	if len(w.lost) > maxLostRanges {
		gap := func(j int) uint64 { // between w.lost[j] and w.lost[j+1]; 0 if they overlap
			return w.lost[j+1].lo - min(w.lost[j].hi, w.lost[j+1].lo)
		}
		best := 0
		for j := 1; j+1 < len(w.lost); j++ {
			if gap(j) < gap(best) {
				best = j
			}
		}
		w.lost[best].hi = max(w.lost[best].hi, w.lost[best+1].hi)
		w.lost = slices.Delete(w.lost, best+1, best+2)
	}
	w.lostAny.Store(true)
}

// lostGen reports whether the change queued under generation gen may
// have been dropped from a batch (see loseLocked).
func (w *window) lostGen(gen uint64) bool {
	if !w.lostAny.Load() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.lost {
		if r.lo <= gen && gen <= r.hi {
			return true
		}
	}
	return false
}
