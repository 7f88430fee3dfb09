package peersession

import (
	"context"
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
	rec, found, err := r.fetchRecord(ctx, id, stamp)
	if err != nil {
		return fetchResult{}
	}
	if !found {
		return fetchResult{missing: true}
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
// replication; in partitioned mode its holders first and, if none of them
// has it, or not at version stamp (a rebalance still moving it, or a write
// made on a node that does not hold it still on its way to them), every
// other live peer too, within the same deadline, so that a session that
// exists somewhere is found, and a client's own write too.
func (r *replication) fetchRecord(ctx context.Context, id string, stamp int64) (model.Record, bool, error) {
	if r.part == nil {
		return r.eng.Fetch(ctx, id)
	}
	if len(r.part.view.Load().names) <= 1 {
		// No peer (cut off, or alone): nobody was asked, which says
		// nothing of the session: not a miss to remember.
		return model.Record{}, false, errNoPeerToAsk
	}
	var buf [8]string
	hs := r.part.Holders(id, buf[:0])
	isHolder := func(peer string) bool { return slices.Contains(hs, peer) }
	rec, found, err := r.eng.FetchFrom(ctx, id, isHolder)
	if (found && rec.MaxVersion().Wall >= stamp) || ctx.Err() != nil {
		return rec, found, err
	}
	rest, found2, err2 := r.eng.FetchFrom(ctx, id, func(peer string) bool { return !isHolder(peer) })
	switch {
	case found && found2:
		return model.Merge(rec, rest), true, nil
	case found:
		return rec, true, nil
	case found2:
		return rest, true, nil
	case err != nil && err2 != nil:
		return model.Record{}, false, err
	}
	return model.Record{}, false, nil
}
