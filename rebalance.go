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
//  1. makes each holder under the new view that did not hold a session
//     it holds owe it an acknowledgement (handoff.go): that peer's worker
//     pushes it through the peer's queue, batched and acknowledged, and
//     again after a backoff until the peer acknowledges it or no longer
//     holds it; and
//  2. hands over the sessions it no longer holds (strays): every holder
//     owes an acknowledgement of the copy here, and the copy is dropped
//     only once each of them gave it, so a node killed at any moment
//     loses nothing while Copies >= 2.
//
// A copy made for one request on a node that does not hold the session (a
// write there) is a stray too, handed over and dropped the same way
// within about strayEvery. The loop below only decides what is owed: it
// never waits for a peer, so no peer holds up a rebalance, a handover, or
// a push to another peer.

const (
	// rebalanceChunk is how many sessions one push carries before it
	// waits for their acknowledgement: the peers' queues (65536
	// sessions) never overflow.
	rebalanceChunk = 4096
	// strayEvery is how often strays are handed over and dropped.
	strayEvery = 500 * time.Millisecond
	// strayQuiet is how long a stray a peer pushed to this node as to a
	// holder is kept at least (strays.quiet): one of the two views is
	// behind, and if it is this node's (a death it has not heard of yet
	// makes it a holder), its view catches up within memberlist's gossip
	// spread, well under this; dropped on its older view's
	// acknowledgements, the copy would be missing on a holder that
	// nobody owes it to.
	strayQuiet = 2 * time.Second
	// handoverWait bounds the wait for one chunk's acknowledgement;
	// what is not acknowledged by then is pushed again later.
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
			r.hand.viewChanged(cur)
			if !equalNames(last, cur) {
				r.rebalance(last, cur)
			}
			last = cur
		}
		r.handOverStrays()
	}
}

func equalNames(a, b *partView) bool { return slices.Equal(a.pl.Names(), b.pl.Names()) }

// rebalance walks the store once: the peers that hold a session this node
// holds under cur and did not under old owe it an acknowledgement, and
// the sessions this node no longer holds become strays.
func (r *replication) rebalance(old, cur *partView) {
	start := time.Now()
	moved, strayed := 0, 0
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
		for _, name := range hs {
			if name == r.part.selfName || old.pl.Holds(name, rec.ID) {
				continue
			}
			for _, peer := range cur.ids[name] { // a node holds it now that did not
				r.hand.want(peer, rec.ID)
				moved++
			}
		}
		return true
	})
	r.st.stats.rebalances.Add(1)
	r.st.cfg.Logger.Info("peersession: rebalanced after a membership change",
		"peers", len(cur.pl.Names())-1, "pushed", moved, "strays", strayed, "took", time.Since(start))
}

// handOverAll, for a graceful Close in partitioned mode, takes this node
// out of the placement and hands every session it has over to the holders
// under the placement without it, waiting (within ctx) for their
// acknowledgements: so a rolling restart never leaves a session with fewer
// copies than Copies. What is not handed over by then, the others'
// rebalance restores once they see the node gone. A node with no peer has
// nobody to hand over to.
func (r *replication) handOverAll(ctx context.Context) {
	if len(r.part.view.Load().names) <= 1 || r.ctx.Err() != nil {
		return // nobody to hand over to, or the replication has stopped
	}
	start := time.Now()
	r.part.leave()
	n := 0
	replStore{r.st}.Range(func(rec model.Record) bool {
		r.part.strays.add(rec.ID)
		n++
		return true
	})
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		r.handOverStrays()
		if ctx.Err() != nil || r.ctx.Err() != nil || r.straysWaiting() == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	r.st.cfg.Logger.Info("peersession: sessions handed over before leaving",
		"sessions", n, "count", r.straysWaiting(), "took", time.Since(start))
}

// straysWaiting returns how many strays wait to be handed over, or are
// being handed over (one queued again while being handed over counted
// once).
func (r *replication) straysWaiting() int { return r.hand.strayCountWith(&r.part.strays) }

// handOverStrays hands the strays that came up since it last ran over to
// their holders (handoff.stray), except those it may drop at once: expired
// here, or written here with every holder's acknowledgement of the write's
// change (the copy unchanged since). It does not wait for anyone.
func (r *replication) handOverStrays() {
	for {
		ids := r.part.strays.take(rebalanceChunk)
		if len(ids) == 0 {
			return
		}
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
				// refuse it. Nothing to hand over.
				r.hand.forgetStray(id, nil)
				r.st.dropStray(id, e)
				continue
			}
			if wrote && w.e == e && r.ackedByHolders(id, w.t) && r.part.strays.quiet(id, time.Now()) {
				r.hand.forgetStray(id, nil)
				if r.st.dropStray(id, e) {
					held++
				}
				continue
			}
			r.hand.stray(id)
		}
		r.st.stats.straysDropped.Add(int64(held))
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
