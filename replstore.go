package peersession

import (
	"fmt"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// The Store as the replication engine sees it (replicate.Store): what it
// applies remote changes through, and reads snapshots from.

// replStore is the Store as replicate sees it.
type replStore struct{ st *Store }

// wakingStore is the replStore the engine is given: it wakes the reads
// waiting for the sessions it applies changes to (see Store.awaitArrival).
type wakingStore struct {
	replStore
	arrivals *arrivals
}

// Apply applies recs, then wakes the reads waiting for any of them (a
// refused one too: the read looks again, and waits on).
func (w wakingStore) Apply(recs []model.Record) (refused int) {
	refused = w.replStore.Apply(recs)
	for i := range recs {
		w.arrivals.arrived(recs[i].ID)
	}
	return refused
}

// Apply merges remote changes. A change to a session this node does not
// hold yet (it arrived before the state transfer or a repair brought the
// session) is kept as a partial record, invisible until the rest arrives,
// so that the acknowledgement sent for it is true.
func (a replStore) Apply(recs []model.Record) (refused int) {
	// One clock reading for the whole batch. mergeIn copies each record's
	// keys into the session's own entry: a record's Keys slice is the
	// engine's (replicate.Store).
	opts := applyOpts{now: a.st.cfg.Now()}
	// Tombstones first: a RenewID arrives as the new session and the
	// tombstone of the old one, and at Config.MaxSessions the new one fits
	// only once the old one has gone (merges commute, so the order
	// changes nothing else).
	partial := 0
	for _, dead := range [...]bool{true, false} {
		for i := range recs {
			if recs[i].IsDead() == dead {
				r, p := a.apply(&recs[i], opts)
				refused, partial = refused+r, partial+p
			}
		}
	}
	a.st.stats.refused.Add(int64(refused))
	return refused + partial
}

// apply merges one remote record and reports refused 1 if the store
// refused it. In partitioned mode it reports partial 1 for a change kept
// as a partial record (this node lacks the session it changes: a new
// holder the rebalance has not reached yet, or a lost creation): kept, but
// not acknowledged as applied, so that a Sync write is not counted as held
// by a node that could not serve it, and a stray is not dropped on its
// strength (the writer's Ticket sees it refused).
func (a replStore) apply(rec *model.Record, opts applyOpts) (refused, partial int) {
	if err := checkValues(rec); err != nil {
		a.st.refusals.note(a.st.cfg.Logger, opts.now, rec.ID, fmt.Errorf("malformed value: %w", err))
		return 1, 0
	}
	pt := a.st.part.Load()
	// A change to a stray here (a copy of a session this node does not
	// hold under its view): the sender counts this node among the
	// holders, so one of the two views is behind. The copy is kept for
	// strayQuiet at least (see strays.pushed), long enough for this
	// node's view to catch up if it is the one behind, rather than being
	// dropped on its older view's acknowledgements.
	stray := pt != nil && a.st.shards.get(rec.ID) != nil && !pt.holds(rec.ID)
	prev, next, err := a.st.mergeIn(*rec, opts)
	if err != nil {
		a.st.refusals.note(a.st.cfg.Logger, opts.now, rec.ID, err)
		return 1, 0
	}
	if stray {
		pt.strays.pushed(rec.ID, time.Now()) // real time: a gossip spread, not the sessions' clock
	}
	if pt != nil && next != nil && next.partial() {
		partial = 1
	}
	a.st.fireEventsAt(prev, next, true, opts.now)
	if p := livePrincipal(next); p != "" && p != livePrincipal(prev) {
		a.st.enforcePrincipalLimit(p)
	}
	return 0, partial
}

// checkValues checks that every value of a remote record is well-formed
// msgpack, so that a later Get cannot be made to allocate what a peer
// declared but did not send.
func checkValues(rec *model.Record) error {
	for _, kv := range rec.Keys {
		if kv.Value.Deleted {
			continue
		}
		if err := wire.CheckValue(kv.Value.Data, wire.Limits{}); err != nil {
			return fmt.Errorf("key %q: %w", kv.Key, err)
		}
	}
	return nil
}

// Lookup returns the record for id, tombstones included, unless expired.
func (a replStore) Lookup(id string) (model.Record, bool) {
	e := a.st.shards.get(id)
	if e == nil || (!e.rec.IsDead() && e.rec.Expired(a.st.cfg.Now())) {
		return model.Record{}, false
	}
	return e.rec, true
}

// Range calls fn with every live session and tombstone.
func (a replStore) Range(fn func(model.Record) bool) {
	now := a.st.cfg.Now()
	a.st.shards.each(func(e *entry) bool {
		if !e.rec.IsDead() && e.rec.Expired(now) {
			return true
		}
		return fn(e.rec)
	})
}
