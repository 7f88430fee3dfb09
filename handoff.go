package peersession

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/peersession/peersession/replicate/model"
)

// Handing sessions to the peers that must hold them, in partitioned mode:
// what the rebalance pushes to a new holder, and a stray to each of its
// holders (rebalance.go). Each (peer, session) pair waits here until that
// peer has acknowledged the session; one worker goroutine per peer pushes
// that peer's sessions through its queue, a chunk at a time, and waits
// only for that peer. So a peer that is slow, frozen or refusing holds up
// no push to any other peer, and a push it leaves unacknowledged (its
// queue was full, it refused the records, it did not answer in time, it
// was not up in the engine yet) is pushed again after a backoff, until the
// peer acknowledges it or no longer holds the session.

const (
	// retryFirst and retryMax bound the backoff between a peer's rounds
	// when a round left sessions unacknowledged: it doubles from
	// retryFirst up to retryMax.
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
)

// retryAfter is the backoff after the failures-th round in a row that
// left sessions unacknowledged (failures >= 1).
func retryAfter(failures int) time.Duration {
	return min(retryFirst<<min(failures-1, 16), retryMax) // the shift capped: no overflow
}

// handoff is the pushes waiting for their peers' acknowledgements.
type handoff struct {
	r *replication

	mu    sync.Mutex              // guards peers, waits and strays
	peers map[string]*peerHandoff // peer ID → the sessions it has to acknowledge
	// waits is, per session, how many peers have not acknowledged it
	// yet: ReplicationStats.UnderReplicated is its length.
	waits map[string]int
	// strays are the strays being handed over: per holder (peer ID), the
	// copy it acknowledged. Each is dropped once every current holder
	// acknowledged the copy stored here (settleStray).
	strays map[string]map[string]*entry
}

// peerHandoff is one peer's share of a handoff.
type peerHandoff struct {
	ids     map[string]struct{} // sessions to push until the peer acknowledges them
	running bool                // its worker runs
	kick    chan struct{}       // capacity 1: cut the worker's backoff short (the view changed)
}

func newHandoff(r *replication) *handoff {
	return &handoff{r: r, peers: map[string]*peerHandoff{}, waits: map[string]int{},
		strays: map[string]map[string]*entry{}}
}

// want makes peer owe an acknowledgement of session id, and starts the
// peer's worker if it does not run. It does nothing once the replication
// stops.
func (h *handoff) want(peer, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.wantLocked(peer, id)
}

func (h *handoff) wantLocked(peer, id string) {
	if h.r.ctx.Err() != nil {
		return
	}
	p := h.peers[peer]
	if p == nil {
		p = &peerHandoff{ids: map[string]struct{}{}, kick: make(chan struct{}, 1)}
		h.peers[peer] = p
	}
	if _, ok := p.ids[id]; ok {
		return
	}
	p.ids[id] = struct{}{}
	h.waits[id]++
	if !p.running {
		p.running = true
		h.r.st.wg.Add(1)
		go h.run(peer, p)
	}
}

// doneLocked removes the pair (peer, id), if it waits.
func (h *handoff) doneLocked(peer, id string) {
	p := h.peers[peer]
	if p == nil {
		return
	}
	if _, ok := p.ids[id]; !ok {
		return
	}
	delete(p.ids, id)
	if h.waits[id]--; h.waits[id] <= 0 {
		delete(h.waits, id)
		if len(h.waits) == 0 {
			h.waits = map[string]int{} // a map never shrinks: drop the peak's buckets
		}
	}
}

// done removes the pair (peer, id): acknowledged, or no longer owed.
func (h *handoff) done(peer, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.doneLocked(peer, id)
}

// underReplicated returns how many sessions some peer has yet to
// acknowledge.
func (h *handoff) underReplicated() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waits)
}

// strayCountWith returns how many strays are being handed over or wait
// in queued (the stray pass's queue), each counted once.
func (h *handoff) strayCountWith(queued *strays) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	queued.mu.Lock() // after h.mu, as judgeStray takes them
	defer queued.mu.Unlock()
	n := len(queued.ids)
	for id := range h.strays {
		if _, ok := queued.ids[id]; !ok {
			n++
		}
	}
	return n
}

// viewChanged forgets what the peers gone from the placement owed, wakes
// every worker (each looks at its sessions again under the new placement
// at once rather than at the end of its backoff), and judges each stray
// being handed over again: this node may hold it now, or it may have new
// holders.
func (h *handoff) viewChanged(v *partView) {
	h.mu.Lock()
	for peer, p := range h.peers {
		if _, ok := v.names[peer]; !ok {
			for id := range p.ids {
				h.doneLocked(peer, id)
			}
		}
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	strays := make([]string, 0, len(h.strays))
	for id := range h.strays {
		strays = append(strays, id)
	}
	h.mu.Unlock()
	for _, id := range strays {
		h.settleStray(id, false)
	}
}

// batch returns the sessions peer owes, or nil (and marks its worker
// stopped) when it owes none or the replication stops.
func (h *handoff) batch(peer string, p *peerHandoff) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(p.ids) == 0 || h.r.ctx.Err() != nil {
		p.running = false
		if len(p.ids) == 0 {
			delete(h.peers, peer)
		}
		return nil
	}
	ids := make([]string, 0, len(p.ids))
	for id := range p.ids {
		ids = append(ids, id)
	}
	return ids
}

// run is peer's worker: it pushes what peer owes, a round at a time, and
// backs off after a round that left some of it unacknowledged.
func (h *handoff) run(peer string, p *peerHandoff) {
	defer h.r.st.wg.Done()
	failures := 0
	for {
		ids := h.batch(peer, p)
		if ids == nil {
			return
		}
		left := h.round(peer, ids)
		if left == 0 {
			failures = 0
			continue
		}
		failures++
		wait := retryAfter(failures)
		level := slog.LevelDebug
		if failures == 1 {
			level = slog.LevelInfo
		}
		h.r.st.cfg.Logger.Log(context.Background(), level, "peersession: a holder has not acknowledged the sessions pushed to it; pushing them again",
			"peer", peer, "sessions", left, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-h.r.ctx.Done():
		case <-p.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// round pushes ids to peer in chunks of rebalanceChunk sessions, each
// waiting for peer's acknowledgement (bounded by r.handoverWait), and
// returns how many are left unacknowledged (see pushAll).
func (h *handoff) round(peer string, ids []string) (left int) {
	return pushAll(ids, rebalanceChunk,
		func(part []string) pushChunk { return h.collect(peer, part) },
		func(c pushChunk) (int, bool, bool) { return h.push(peer, c) },
		h.r.ctx.Err)
}

// pushFunc pushes a chunk to one peer and returns how many of its
// sessions are left unacknowledged, whether the peer answered, and
// whether it refused some (or its queue dropped them): handoff.push.
type pushFunc func(c pushChunk) (left int, answered, refused bool)

// pushAll is one round of a peer's worker: it pushes ids in chunks of
// size sessions (collect makes each; nothing to push in it: skipped) and
// returns how many are left unacknowledged, those it did not get to
// included. A chunk the peer does not answer for ends the round (pushing
// more would only fill its queue); one it refused records of is split
// (see split), and one whose halves it both refused records of ends the
// round too: that peer refuses widely (its store full, its clock behind),
// and the next round, after the backoff, tries again, rather than every
// record owed being sent three times a round. stop ends the round early
// (the replication stops).
func pushAll(ids []string, size int, collect func([]string) pushChunk, push pushFunc, stop func() error) (left int) {
	for len(ids) > 0 && stop() == nil {
		n := min(size, len(ids))
		part := ids[:n]
		ids = ids[n:]
		c := collect(part)
		if len(c.recs) == 0 {
			continue
		}
		l, answered, refused := push(c)
		if refused {
			var widely bool
			l, answered, widely = split(c, push)
			answered = answered && !widely
		}
		left += l
		if !answered {
			return left + len(ids) // not answering, not up yet, or refusing widely: the rest next round
		}
	}
	return left
}

// split pushes the two halves of c, which the peer refused records of,
// apart, and a half it refused records of split again, so that the
// records it takes are acknowledged without those it refuses (one refused
// record makes its whole batch unacknowledged). When it refuses records
// of both halves, it stops there. It returns how many are left
// unacknowledged, whether the peer answered, and whether it refused
// records of both of c's halves: nothing of c taken, the peer refuses
// widely.
func split(c pushChunk, push pushFunc) (left int, answered, widely bool) {
	if len(c.recs) == 1 {
		return 1, true, true
	}
	halves := c.halves()
	var refused [2]bool
	for i, half := range halves {
		l, ok, ref := push(half)
		left, refused[i] = left+l, ref
		if !ok {
			if i == 0 {
				left += len(halves[1].recs)
			}
			return left, false, false
		}
	}
	if refused[0] && refused[1] {
		return left, true, true
	}
	for i, half := range halves {
		if refused[i] {
			l, ok, _ := split(half, push)
			return left - len(half.recs) + l, ok, false
		}
	}
	return left, true, false
}

// pushChunk is sessions to push to a peer, their entries here and IDs.
type pushChunk struct {
	recs    []model.Record
	entries []*entry
	ids     []string
}

func (c pushChunk) halves() [2]pushChunk {
	m := len(c.recs) / 2
	return [2]pushChunk{
		{c.recs[:m:m], c.entries[:m:m], c.ids[:m:m]},
		{c.recs[m:], c.entries[m:], c.ids[m:]},
	}
}

// push pushes c to peer and waits for its acknowledgement (bounded by
// r.handoverWait), and returns how many sessions are left
// unacknowledged, whether peer answered, and whether it refused some (or
// its queue dropped them).
func (h *handoff) push(peer string, c pushChunk) (left int, answered, refused bool) {
	r := h.r
	t := r.eng.Push(func(p, _ string) bool { return p == peer }, c.recs...)
	ctx, cancel := context.WithTimeout(r.ctx, r.handoverWait)
	err := t.WaitResponsive(ctx)
	cancel()
	if !t.AckedBy(peer) {
		answered = err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && r.ctx.Err() == nil
		return len(c.recs), answered, answered
	}
	for i := range c.recs {
		h.acked(peer, c.ids[i], c.entries[i])
	}
	return 0, true, false
}

// collect returns the copies of ids to push to peer; it forgets the pairs that no longer need a push: peer does not
// hold the session under the current placement, or there is no live copy
// here to push (gone, expired, a tombstone past its window).
func (h *handoff) collect(peer string, ids []string) (c pushChunk) {
	r := h.r
	v := r.part.view.Load()
	now := r.st.cfg.Now()
	for _, id := range ids {
		e := r.st.shards.get(id)
		switch {
		case !v.isHolder(peer, id):
			h.done(peer, id)
			h.settleStray(id, false) // a stray waiting for peer alone may go now
		case e == nil || stale(e.rec, now):
			// Nothing here worth a push (the sweeper removes what is
			// stale); an expired stray goes now.
			h.done(peer, id)
			h.forgetStray(id, e)
		default:
			c.recs = append(c.recs, e.rec)
			c.entries = append(c.entries, e)
			c.ids = append(c.ids, id)
		}
	}
	return c
}

// stale reports whether rec would be refused by any node as of now: an
// expired session, or a tombstone past its window.
func stale(rec model.Record, now time.Time) bool {
	if rec.IsDead() {
		return rec.Deadline != 0 && now.UnixNano() >= rec.Deadline+int64(tombstoneGrace)
	}
	return rec.Expired(now)
}

// acked records that peer acknowledged session id's copy e. An
// acknowledgement counts towards dropping a stray only from a holder of
// it under the current view (the view may have changed since the push
// was collected).
func (h *handoff) acked(peer, id string, e *entry) {
	v := h.r.part.view.Load()
	h.mu.Lock()
	h.doneLocked(peer, id)
	acks, stray := h.strays[id]
	if stray && v.isHolder(peer, id) {
		acks[peer] = e
	}
	h.mu.Unlock()
	if stray {
		h.settleStray(id, false)
	}
}

// stray hands session id over: every holder that has not acknowledged
// its copy here owes it. It is called from the stray pass (every
// strayEvery at most for one session: the backoff of a stray written
// again and again).
func (h *handoff) stray(id string) {
	h.mu.Lock()
	if h.strays[id] == nil {
		h.strays[id] = map[string]*entry{}
	}
	h.mu.Unlock()
	h.settleStray(id, true)
}

// settleStray drops stray id once every current holder has acknowledged
// the copy stored here. Otherwise it makes the holders with no recorded
// acknowledgement owe it (a new holder, or one whose acknowledgement is
// still to come), and with renew those whose recorded acknowledgement is
// of an older copy too. Without renew (an acknowledgement, or a view
// change) a copy changed since is left to the stray pass (handOverStrays),
// where a change already acknowledged by every holder drops it without a
// push; so a stray written again and again is not pushed whole at once
// after every acknowledgement. A stray that is gone, or held here again,
// is no longer handed over. The view is read once: held, the holders and
// their acknowledgements all come from it, and the copy is dropped only
// if the view is still the same then (else judged again under the new
// one).
func (h *handoff) settleStray(id string, renew bool) {
	r := h.r
	for {
		v := r.part.view.Load()
		cur := r.st.shards.get(id)
		var buf [8]string
		hs := v.holders(id, buf[:0])
		acks := h.judgeStray(id, cur, v.pl.Holds(r.part.selfName, id), hs, renew)
		if acks == nil {
			return
		}
		if r.part.view.Load() != v {
			h.restoreStray(id, acks)
			continue // the view changed meanwhile: judge again under the new one
		}
		if _, member := v.names[r.part.selfID]; member && !r.part.strays.quiet(id, time.Now()) {
			// A peer pushed it here as to a holder lately: kept until
			// this node's view has had time to catch up (the stray
			// pass judges it again).
			h.restoreStray(id, acks)
			r.part.strays.add(id)
			return
		}
		if !r.st.dropStray(id, cur) {
			// It changed meanwhile: the stray pass hands the new copy over
			// (a change merged or written here queues it there too).
			h.restoreStray(id, acks)
			r.part.strays.add(id)
			return
		}
		r.st.stats.straysDropped.Add(1)
		return
	}
}

// judgeStray is settleStray's bookkeeping under h.mu, for stray id whose
// copy here is cur, held here or not, whose holders are hs. When id is
// being handed over and every holder acknowledged cur, it stops handing
// it over and returns its acknowledgements (for restoreStray, should the
// drop not happen); otherwise nil.
func (h *handoff) judgeStray(id string, cur *entry, held bool, hs []string, renew bool) map[string]*entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	acks, ok := h.strays[id]
	if !ok {
		return nil
	}
	if cur == nil || held || len(hs) == 0 {
		h.deleteStrayLocked(id)
		return nil
	}
	for p := range acks {
		if !slices.Contains(hs, p) {
			delete(acks, p) // no longer a holder: its copy may be gone by now
		}
	}
	all, changed := true, false
	for _, p := range hs {
		switch a := acks[p]; {
		case a == cur:
		case a == nil || renew:
			all = false
			h.wantLocked(p, id)
		default:
			all, changed = false, true
		}
	}
	if changed {
		h.r.part.strays.add(id) // the stray pass hands the changed copy over
	}
	if !all {
		return nil
	}
	h.deleteStrayLocked(id)
	return acks
}

// restoreStray hands stray id over again, with acks, after judgeStray
// stopped it but the copy was not dropped; unless it is being handed over
// again already.
func (h *handoff) restoreStray(id string, acks map[string]*entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.strays[id]; !ok {
		h.strays[id] = acks
	}
}

// deleteStrayLocked stops handing stray id over. h.mu must be held.
func (h *handoff) deleteStrayLocked(id string) {
	delete(h.strays, id)
	if len(h.strays) == 0 {
		h.strays = map[string]map[string]*entry{} // a map never shrinks: drop the peak's buckets
	}
}

// forgetStray stops handing stray id over, and drops e, its stale copy
// (nil: none), unless this node holds it now.
func (h *handoff) forgetStray(id string, e *entry) {
	h.mu.Lock()
	_, ok := h.strays[id]
	h.deleteStrayLocked(id)
	h.mu.Unlock()
	if ok && e != nil && !h.r.part.holds(id) && h.r.st.dropStray(id, e) {
		h.r.st.stats.straysDropped.Add(1)
	}
}
