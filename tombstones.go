package peersession

import (
	"container/heap"
	"sync/atomic"

	"github.com/peersession/peersession/replicate/model"
)

// A destroyed or renewed session leaves a tombstone, kept until the
// session's absolute deadline (plus tombstoneGrace) so that no copy of it
// on a peer can bring it back. A client that logs in and out in a loop
// makes one a request, and they would grow every node's memory for a day:
// Config.MaxTombstones bounds them. Past it, the oldest tombstones are
// dropped early, and the node remembers, as one number (the watermark),
// the newest write any dropped tombstone ended: a live session this node
// does not hold whose newest write is no later than that could be one of
// them, so it is refused rather than brought back. Sessions written since
// (every new one, every renewal, every session in use) are not affected.

// tombstones tracks the store's tombstones.
type tombstones struct {
	count   atomic.Int64 // tombstones held
	dropped atomic.Int64 // tombstones dropped early at the budget
	// watermark is the Dead wall time (Unix nanoseconds) of the newest
	// tombstone dropped early; zero while none has been.
	watermark atomic.Int64
	dropping  atomic.Bool // a dropOldTombstones runs
}

// forgotten reports whether a live record this node does not hold must be
// refused: its newest write is no later than the newest write ended by a
// tombstone dropped early, so it could be that session.
func (t *tombstones) forgotten(r *model.Record) bool {
	w := t.watermark.Load()
	return w != 0 && r.MaxVersion().Wall <= w
}

// dropOldTombstones drops the oldest tombstones once the store holds more
// than Config.MaxTombstones: down to 90% of it, so that the walk over the
// shards it takes is paid once per tenth of the budget, not per
// tombstone. One runs at a time; a writer that finds one running goes on.
func (st *Store) dropOldTombstones() {
	limit := int64(st.cfg.MaxTombstones)
	if st.tombs.count.Load() <= limit || !st.tombs.dropping.CompareAndSwap(false, true) {
		return
	}
	defer st.tombs.dropping.Store(false)
	n := int(st.tombs.count.Load() - limit + limit/10)
	if n <= 0 {
		return
	}
	// The n oldest, in a max-heap by Dead: its top is the youngest kept.
	var old tombHeap
	for i := range st.shards.s {
		sh := &st.shards.s[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if !e.rec.IsDead() {
				continue
			}
			if len(old) < n {
				heap.Push(&old, tombRef{id: id, dead: e.rec.Dead})
			} else if e.rec.Dead.Less(old[0].dead) {
				old[0] = tombRef{id: id, dead: e.rec.Dead}
				heap.Fix(&old, 0)
			}
		}
		sh.mu.Unlock()
	}
	var newest int64
	for _, ref := range old {
		sh := st.shards.of(ref.id)
		sh.mu.Lock()
		if e := sh.m[ref.id]; e != nil && e.rec.IsDead() && e.rec.Dead == ref.dead {
			delete(sh.m, ref.id)
			st.tombs.count.Add(-1)
			st.tombs.dropped.Add(1)
			newest = max(newest, ref.dead.Wall)
		}
		sh.mu.Unlock()
	}
	for w := st.tombs.watermark.Load(); newest > w; w = st.tombs.watermark.Load() {
		if st.tombs.watermark.CompareAndSwap(w, newest) {
			break
		}
	}
	st.cfg.Logger.Warn("peersession: Config.MaxTombstones reached; dropped the oldest tombstones early",
		"dropped", len(old), "max_tombstones", limit)
}

// tombRef names a tombstone: its session ID and its Dead version, which
// tell whether the entry under that ID is still this tombstone.
type tombRef struct {
	id   string
	dead model.Version
}

// tombHeap is a max-heap of tombRefs by Dead version (container/heap).
type tombHeap []tombRef

func (h tombHeap) Len() int           { return len(h) }
func (h tombHeap) Less(i, j int) bool { return h[j].dead.Less(h[i].dead) }
func (h tombHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tombHeap) Push(x any)        { *h = append(*h, x.(tombRef)) }
func (h *tombHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
