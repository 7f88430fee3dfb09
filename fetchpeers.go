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
// replication. In partitioned mode it asks the session's holders; and,
// for a read with an authenticated version stamp the holders' copy has not
// reached (a rebalance still moving it, or a write made on a node that
// does not hold it still on its way to them), every other live peer too,
// so that the client's own write is found. A read without a stamp (a
// made-up token among them) costs its holders' answers only: Copies
// fetches at most, whatever the cluster's size. The holders get half the
// deadline when the others may be asked after them, so that the second
// round always has time. complete reports whether every peer asked
// answered: only then is found=false a miss.
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
	askOthers := stamp > stampMissing
	hctx := ctx
	if askOthers {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, r.cfg.FetchTimeout/2)
		defer cancel()
	}
	rec, found, complete, err = r.eng.FetchAll(hctx, id, isHolder)
	if !askOthers || (found && rec.MaxVersion().Wall >= stamp) || ctx.Err() != nil {
		return rec, found, complete || (found && err == nil), err
	}
	rest, found2, complete2, err2 := r.eng.FetchAll(ctx, id, func(peer string) bool { return !isHolder(peer) })
	switch {
	case found && found2:
		return model.Merge(rec, rest), true, true, nil
	case found:
		return rec, true, true, nil
	case found2:
		return rest, true, true, nil
	case err != nil && err2 != nil:
		return model.Record{}, false, false, err
	}
	return model.Record{}, false, complete && complete2 && err == nil && err2 == nil, nil
}
