package peersession

import (
	"context"
	"slices"
	"time"

	"github.com/peersession/peersession/replicate"
	"github.com/peersession/peersession/replicate/model"
)

// Rebalancing, in partitioned mode: when the live members change, the
// holders of some sessions change. Every node then
//
//  1. pushes each session it holds to the holders under the new view that
//     did not hold it under the old one (through the peers' queues, so it
//     is batched and acknowledged), a chunk at a time; and
//  2. hands over the sessions it no longer holds (strays): it pushes each
//     to all its holders now and drops its own copy only once every one
//     of them has acknowledged it, so a node killed at any moment loses
//     nothing while Copies >= 2.
//
// A copy made for one request on a node that does not hold the session (a
// write there, or a fetch for a read) is a stray too, handed over and
// dropped the same way within about strayEvery.

const (
	// rebalanceChunk is how many sessions one push carries before it
	// waits for their acknowledgements: the peers' queues (65536
	// sessions) never overflow.
	rebalanceChunk = 4096
	// strayEvery is how often strays are handed over and dropped.
	strayEvery = 500 * time.Millisecond
	// handoverWait bounds the wait for one chunk's acknowledgements;
	// what is not acknowledged by then stays, and is tried again.
	handoverWait = 10 * time.Second
)

// rebalanceLoop moves sessions when the placement changes and hands over
// strays, until the replication stops.
func (r *replication) rebalanceLoop() {
	defer r.st.wg.Done()
	t := time.NewTicker(strayEvery)
	defer t.Stop()
	last := r.part.view.Load()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.part.changed:
		case <-t.C:
		}
		if cur := r.part.view.Load(); cur != last {
			if !equalNames(last, cur) {
				r.rebalance(last, cur)
			}
			last = cur
		}
		r.handOverStrays()
	}
}

func equalNames(a, b *partView) bool { return slices.Equal(a.pl.Names(), b.pl.Names()) }

// rebalance walks the store once: it pushes the sessions this node holds
// under cur to the peers that hold them under cur and did not under old,
// and marks those it no longer holds as strays.
func (r *replication) rebalance(old, cur *partView) {
	start := time.Now()
	var push []model.Record
	moved, strayed := 0, 0
	newHolder := func(peer, id string) bool {
		v := r.part.view.Load() // the engine routes by the latest view: so does this
		return v.isHolder(peer, id) && !old.isHolder(peer, id)
	}
	var hs []string
	replStore{r.st}.Range(func(rec model.Record) bool {
		if r.ctx.Err() != nil {
			return false
		}
		hs = cur.pl.Holders(rec.ID, hs[:0])
		if !slices.Contains(hs, r.part.selfName) {
			r.part.strays.add(rec.ID)
			strayed++
			return true
		}
		if slices.ContainsFunc(hs, func(name string) bool { return !old.pl.Holds(name, rec.ID) }) {
			push = append(push, rec) // a node holds it now that did not
		}
		return true
	})
	// Range holds no lock while fn runs, but pushing (and waiting) in it
	// would hold up nothing either; chunks keep each wait short.
	for len(push) > 0 && r.ctx.Err() == nil {
		n := min(rebalanceChunk, len(push))
		chunk := push[:n:n]
		push = push[n:]
		moved += len(chunk)
		r.waitHandover(r.eng.Push(newHolder, chunk...))
	}
	r.st.stats.rebalances.Add(1)
	r.st.cfg.Logger.Info("peersession: rebalanced after a membership change",
		"peers", len(cur.pl.Names())-1, "pushed", moved, "strays", strayed, "took", time.Since(start))
}

// waitHandover waits, bounded, for a push's acknowledgements from every
// live peer it went to that answers.
func (r *replication) waitHandover(t *replicate.Ticket) { r.waitHandoverCtx(r.ctx, t) }

// waitHandoverCtx is waitHandover bounded by ctx too.
func (r *replication) waitHandoverCtx(ctx context.Context, t *replicate.Ticket) {
	ctx, cancel := context.WithTimeout(ctx, handoverWait)
	defer cancel()
	// Not for a peer that does not answer (killed, frozen: see
	// replicate's reach.go), which would hold every handover up until the
	// failure detector declares it dead: a stray it did not acknowledge
	// stays, and is tried again; what a push to it missed, the rebalance
	// after its death or anti-entropy repairs.
	_ = t.WaitResponsive(ctx)
}

// handOverAll, for a graceful Close in partitioned mode, takes this node
// out of the placement and hands every session it has over to the holders
// under the placement without it, waiting (within ctx) for their
// acknowledgements: so a rolling restart never leaves a session with fewer
// copies than Copies. What is not handed over by then, the others'
// rebalance restores once they see the node gone. A node with no peer has
// nobody to hand over to.
func (r *replication) handOverAll(ctx context.Context) {
	if len(r.part.view.Load().names) <= 1 {
		return
	}
	start := time.Now()
	r.part.leave()
	n := 0
	replStore{r.st}.Range(func(rec model.Record) bool {
		r.part.strays.add(rec.ID)
		n++
		return true
	})
	for ctx.Err() == nil && r.part.strays.len() > 0 {
		r.handOver(ctx)
		if r.part.strays.len() > 0 {
			t := time.NewTimer(50 * time.Millisecond) // some holders did not acknowledge yet
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	r.st.cfg.Logger.Info("peersession: sessions handed over before leaving",
		"sessions", n, "count", r.part.strays.len(), "took", time.Since(start))
}

// handOverStrays pushes the strays to their holders and drops each once
// every holder has acknowledged it, unless it changed meanwhile (the change
// made it a stray again) or this node holds it again.
func (r *replication) handOverStrays() { r.handOver(r.ctx) }

// handOver is handOverStrays, bounded by ctx (each push's wait too).
func (r *replication) handOver(ctx context.Context) {
	for ctx.Err() == nil {
		ids := r.part.strays.take(rebalanceChunk)
		if len(ids) == 0 {
			return
		}
		recs := make([]model.Record, 0, len(ids))
		entries := make([]*entry, 0, len(ids))
		held := 0 // dropped as their commit's change was acknowledged
		now := r.st.cfg.Now()
		for _, id := range ids {
			e := r.st.shards.get(id)
			w, wrote := r.part.strays.takeWrite(id)
			if e == nil || r.part.holds(id) {
				continue
			}
			if !e.rec.IsDead() && e.rec.Expired(now) {
				// Expired here: expired on its holders too, which would
				// refuse it (and make the chunk's other strays look
				// unacknowledged). Nothing to hand over.
				r.st.dropStray(id, e)
				continue
			}
			if wrote && w.e == e && r.ackedByHolders(id, w.t) {
				if r.st.dropStray(id, e) {
					held++
				}
				continue
			}
			recs = append(recs, e.rec)
			entries = append(entries, e)
		}
		r.st.stats.straysDropped.Add(int64(held))
		if len(recs) == 0 {
			continue
		}
		t := r.eng.Push(nil, recs...)
		r.waitHandoverCtx(ctx, t)
		dropped, kept := 0, 0
		for i := range recs {
			id := recs[i].ID
			if r.part.holds(id) {
				continue // a holder again: keep it
			}
			if !r.ackedByHolders(id, t) {
				r.part.strays.add(id) // a holder did not acknowledge it (yet): try again
				kept++
				continue
			}
			if r.st.dropStray(id, entries[i]) {
				dropped++
			}
		}
		r.st.stats.straysDropped.Add(int64(dropped))
		if kept > 0 {
			r.st.cfg.Logger.Debug("peersession: strays kept: their holders did not acknowledge them yet", "count", kept, "dropped", dropped)
			return // wait for the next round
		}
	}
}

// dropStray removes session id's copy e, unless it changed since (it is
// no longer e). It fires no event: the session lives on its holders.
func (st *Store) dropStray(id string, e *entry) bool {
	sh := st.shards.of(id)
	sh.mu.Lock()
	if sh.m[id] != e {
		sh.mu.Unlock()
		return false
	}
	delete(sh.m, id)
	st.principals.move(id, livePrincipal(e), "")
	st.account(e, nil)
	sh.mu.Unlock()
	if st.disk != nil {
		st.disk.Dirty(id)
	}
	return true
}

// ackedByHolders reports whether every live holder of session id (none of
// them this node) has acknowledged t's changes.
func (r *replication) ackedByHolders(id string, t *replicate.Ticket) bool {
	var buf [8]string
	hs := r.part.Holders(id, buf[:0])
	if len(hs) == 0 || t == nil {
		return false
	}
	for _, h := range hs {
		if !t.AckedBy(h) {
			return false
		}
	}
	return true
}
