package peersession

import (
	"context"

	"github.com/peersession/peersession/replicate/model"
)

// A read in partitioned mode whose client presents an authenticated
// version stamp: the session exists (a node issued the stamp), and the
// write the stamp names may not be on its holders yet: it may be on its
// way to them from the node that made it (a node that does not hold the
// session keeps the change as a stray until the holders have it), or a
// rebalance may be moving the session. A copy on the move goes one way
// only, from a node that does not hold the session to its holders, and
// the node it leaves drops its own only once every holder has
// acknowledged it (rebalance.go). So the fetch asks, in this order,
//
//  1. the holders (half of the deadline, so that the rounds after it
//     always have time);
//  2. every other live peer;
//  3. this node's own copy (the stray its own write made: a creation, a
//     write, a RenewID's new session on a node that does not hold it);
//  4. the holders again,
//
// stopping as soon as it has the stamp's version. A copy that left a node
// after that node was asked had reached every holder before the node
// dropped it, so before round 4 was sent: the fetch cannot end empty, or
// older than the stamp, because of a copy moving while it asks (the
// node's own copy dropped by its handover between the fetch's first round
// and the read's answer, then remembered as a miss for missTTL: the false
// "not found" of the 16-node failure run).

// fetchStamped is fetchRecord for a read with an authenticated stamp, in
// partitioned mode; isHolder tells the session's holders among the peers.
func (r *replication) fetchStamped(ctx context.Context, id string, stamp int64, isHolder func(string) bool) (model.Record, bool, bool, error) {
	g := gathered{complete: true}
	hctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout/2)
	g.add(r.eng.FetchAll(hctx, id, isHolder))
	cancel()
	if g.reaches(stamp) || ctx.Err() != nil {
		return g.result()
	}
	g.add(r.eng.FetchAll(ctx, id, func(peer string) bool { return !isHolder(peer) }))
	if own, ok := r.ownCopy(id); ok {
		g.add(own, true, true, nil)
	}
	if g.reaches(stamp) || ctx.Err() != nil {
		return g.result()
	}
	g.add(r.eng.FetchAll(ctx, id, isHolder))
	return g.result()
}

// gathered is what the rounds of a fetch found so far.
type gathered struct {
	rec      model.Record // the merge of the records found
	found    bool
	complete bool  // every peer asked so far answered
	err      error // the first round's error, if any
}

// add merges one round's outcome (Engine.FetchAll's results) in.
func (g *gathered) add(rec model.Record, found, complete bool, err error) {
	switch {
	case found && g.found:
		g.rec = model.Merge(g.rec, rec)
	case found:
		g.rec, g.found = rec, true
	}
	g.complete = g.complete && complete && err == nil
	if g.err == nil {
		g.err = err
	}
}

// reaches reports whether the copy found has the version stamp names.
func (g *gathered) reaches(stamp int64) bool {
	return g.found && g.rec.MaxVersion().Wall >= stamp
}

// result returns what fetchRecord does: the copy found (whatever the
// errors of some rounds), or found=false with complete telling a miss
// from an answer missing, and an error only if nothing was found.
func (g *gathered) result() (model.Record, bool, bool, error) {
	if g.found {
		return g.rec, true, true, nil
	}
	if g.err != nil {
		return model.Record{}, false, false, g.err
	}
	return model.Record{}, false, g.complete, nil
}
