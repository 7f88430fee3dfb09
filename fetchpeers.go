package peersession

import (
	"context"
	"errors"
	"slices"

	"github.com/peersession/peersession/replicate/model"
)

// Fetching a session from the peers, for a read: every live peer in full
// replication; in partitioned mode its holders first (see fetchRecord).

// fetch asks the peers for session id and merges what they have; it
// reports whether anything new arrived, or whether the peers that
// answered in time all lack the session. Reads call it through the fetch
// guard (Store.fetchNewer). What it finds is merged into the store, except
// in partitioned mode on a node that does not hold the session: then it is
// returned in fetchResult.entry, for the read alone.
func (r *replication) fetch(ctx context.Context, id string) fetchResult {
	return r.fetchAt(ctx, id, 0)
}

// fetchAt is fetch for a read that needs session id at version stamp or
// later (see fetchRecord).
func (r *replication) fetchAt(ctx context.Context, id string, stamp int64) fetchResult {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	rec, found, complete, err := r.fetchRecord(ctx, id, stamp)
	if err != nil {
		// Alone, this node holds every session: lacking it, it has
		// none. Otherwise the holders did not answer: maybe.
		return fetchResult{unsure: r.part != nil && !errors.Is(err, errNoPeerToAsk)}
	}
	if !found {
		if r.part != nil && !complete {
			// Some holder did not answer in time: the session may be
			// there. Not a miss to remember, and not "no session".
			return fetchResult{unsure: true}
		}
		// A miss a stamped read can trust only if its fetch asked as far
		// as a stamped read's does (see fetchGuard.do).
		return fetchResult{missing: true, thorough: r.part == nil || stamp > stampMissing}
	}
	if checkValues(&rec) != nil {
		return fetchResult{}
	}
	if r.part != nil && !r.part.holds(id) {
		// Not a holder: the copy serves this read and is not kept (a
		// write that follows stores it, for as long as it takes to hand
		// it over: see commitUpdateLocked and rebalance.go).
		if local := r.st.shards.get(id); local != nil {
			rec = model.Merge(local.rec, rec)
		}
		e := r.st.transientEntry(rec)
		return fetchResult{entry: e, hit: e != nil}
	}
	prev, next, err := r.st.mergeIn(rec, applyOpts{})
	if err != nil {
		return fetchResult{}
	}
	r.arrivals.arrived(id) // other reads may wait for it
	r.st.fireEvents(prev, next, true)
	return fetchResult{hit: prev != next}
}

// fetchRecord asks the peers for session id: every live peer in full
// replication. In partitioned mode it asks the session's holders; a read
// with an authenticated version stamp the holders' copy has not reached
// asks further (see fetchStamped), so that the client's own write is
// found. A read without a stamp (a made-up token among them) costs its
// holders' answers only: Copies fetches at most, whatever the cluster's
// size (twice that when this node's own copy was handed over while they
// were asked). complete reports whether every peer asked answered: only then is
// found=false a miss.
func (r *replication) fetchRecord(ctx context.Context, id string, stamp int64) (rec model.Record, found, complete bool, err error) {
	if r.part == nil {
		rec, found, err = r.eng.Fetch(ctx, id)
		return rec, found, err == nil, err
	}
	if len(r.part.view.Load().names) <= 1 {
		// No peer (cut off, or alone): nobody was asked, which says
		// nothing of the session: not a miss to remember.
		return model.Record{}, false, false, errNoPeerToAsk
	}
	var buf [8]string
	hs := r.part.Holders(id, buf[:0])
	isHolder := func(peer string) bool { return slices.Contains(hs, peer) }
	if stamp > stampMissing {
		return r.fetchStamped(ctx, id, stamp, isHolder)
	}
	_, hadOwn := r.ownCopy(id)
	rec, found, complete, err = r.eng.FetchAll(ctx, id, isHolder)
	if !found {
		// This node's own copy (a stray a write here made) is the
		// session too; and one handed over while the holders were asked
		// is on them now (see fetchStamped).
		if own, ok := r.ownCopy(id); ok {
			return own, true, true, nil
		}
		if hadOwn && err == nil && ctx.Err() == nil {
			rec, found, complete, err = r.eng.FetchAll(ctx, id, isHolder)
		}
	}
	return rec, found, complete || (found && err == nil), err
}

// ownCopy returns this node's own copy of session id, live or a
// tombstone (not a partial record: that is no session).
func (r *replication) ownCopy(id string) (model.Record, bool) {
	rec, ok := replStore{r.st}.Lookup(id)
	if !ok || (!rec.IsDead() && rec.Created == 0) {
		return model.Record{}, false
	}
	return rec, true
}
