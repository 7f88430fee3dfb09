package replicate

import (
	"sync"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// maxOrderKept is the most queue entries whose array an emptied queue
// keeps for reuse.
const maxOrderKept = 4096

// maxDrainedKept is the largest record slice kept for the next drain.
const maxDrainedKept = 4096

// sendQueue is a peer's queue of changes waiting to be sent: one entry per
// session, oldest first, a change to a session already queued being merged
// into its entry. Every enqueue is a new publish generation; the batches
// drained from the queue say which generations they carry (see batch), which
// is what a Ticket waits for.
//
// The sender drains it into batches of the in-flight window (see
// peer.nextBatch), holding window.mu while it takes mu.
type sendQueue struct {
	limit    int // Config.QueueLimit; set at creation
	maxBytes int // Config.MaxBatchBytes; set at creation

	mu       sync.Mutex     // guards every field below
	index    map[string]int // session ID -> its entry's index in order
	order    []queued       // the queued sessions, oldest first, from head on
	head     int
	gen      uint64         // publish generation: incremented by every enqueue
	overflow bool           // the queue is full (logged once per episode)
	drained  []model.Record // the last batch's record slice, cleared, for the next drain
	peak     int            // most sessions queued at once since the last releaseIdle
	closed   bool           // the peer went down: nothing is queued any more
}

// queued is a session's coalesced changes waiting in a peer's queue. The
// entries live in a slice, and the map holds their indices, not the
// entries: a map value over 128 bytes is stored (and allocated) apart.
type queued struct {
	rec model.Record
	gen uint64 // generation that first queued it
}

// add merges recs into the queue under a new generation, which it returns
// with how many records the queue limit dropped; warn is set when that
// starts an episode of a full queue (to be logged), and ok is false if
// the queue is closed.
func (q *sendQueue) add(recs []model.Record) (gen uint64, dropped int, warn, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, 0, false, false
	}
	q.gen++
	gen = q.gen
	for i := range recs {
		r := &recs[i]
		if at, ok := q.index[r.ID]; ok {
			e := &q.order[at]
			e.rec = model.Merge(e.rec, *r)
			continue
		}
		if len(q.index) >= q.limit {
			dropped++
			continue
		}
		q.index[r.ID] = len(q.order)
		q.order = append(q.order, queued{rec: *r, gen: gen})
	}
	q.peak = max(q.peak, len(q.index))
	warn = dropped > 0 && !q.overflow
	q.overflow = dropped > 0 || q.overflow
	return gen, dropped, warn, true
}

// drainLocked moves the oldest queued records, up to maxBytes (at least
// one) and DefaultLimits.MaxRecords, into b, and sets the generations b
// carries and covers. mu must be held.
func (q *sendQueue) drainLocked(b *batch) {
	budget := q.maxBytes
	maxRecs := wire.DefaultLimits.MaxRecords
	// Every record is estimated at over 100 bytes (EstSize).
	recs := q.drained
	q.drained = nil
	if want := min(len(q.index), maxRecs, budget/100+1); cap(recs) < want {
		recs = make([]model.Record, 0, want)
	}
	size := 0
	oldest := uint64(0) // the oldest generation queued in the batch
	for q.head < len(q.order) && len(recs) < maxRecs {
		e := &q.order[q.head]
		sz := e.rec.EstSize()
		if len(recs) > 0 && size+sz > budget {
			break
		}
		if wire.Fits(&e.rec, sz, &wire.DefaultLimits) {
			recs = append(recs, e.rec)
		} else {
			// Changes coalesced (or a repair) into more keys or bytes
			// than one record may carry: sent in parts.
			parts := wire.AppendParts(recs, e.rec, &wire.DefaultLimits)
			if len(recs) > 0 && len(parts) > maxRecs {
				clear(parts[len(recs):])
				recs = parts[:len(recs)]
				break
			}
			recs = parts
		}
		if oldest == 0 {
			oldest = e.gen
		}
		size += sz
		delete(q.index, e.rec.ID)
		*e = queued{}
		q.head++
	}
	b.recs, b.n = recs, len(recs)
	// The batch's records hold the changes queued from generation oldest
	// on, up to the current one (later changes coalesce into queued
	// records): what a Ticket may wait for in it.
	b.oldest, b.newest = oldest, q.gen
	if q.head == len(q.order) {
		q.order, q.head = q.order[:0], 0
		if cap(q.order) > maxOrderKept {
			q.order = nil // a burst is over: do not pin its array
		}
		b.covers = q.gen
		q.overflow = false
	} else {
		// Every generation before the oldest still queued is covered.
		b.covers = q.order[q.head].gen - 1
		if q.head > 1024 && q.head*2 > len(q.order) {
			q.order = append(q.order[:0:0], q.order[q.head:]...)
			q.head = 0
			for i := range q.order {
				q.index[q.order[i].rec.ID] = i
			}
		}
	}
}

// reuseDrained keeps recs, a batch's records once encoded, for the next
// drainLocked, cleared so that they pin no session data.
func (q *sendQueue) reuseDrained(recs []model.Record) {
	if cap(recs) > maxDrainedKept {
		return
	}
	clear(recs)
	q.mu.Lock()
	q.drained = recs[:0]
	q.mu.Unlock()
}

// len returns how many sessions are queued.
func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.index)
}

// generation returns the last publish generation.
func (q *sendQueue) generation() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.gen
}

// closeLocked empties the queue for good and returns how many sessions it
// held. mu must be held.
func (q *sendQueue) closeLocked() int {
	n := len(q.index)
	q.closed = true
	q.index = nil
	q.order = nil
	return n
}
