package replicate

import (
	"slices"

	"github.com/peersession/peersession/replicate/model"
)

// Routing in partitioned mode (Config.Placement): which peers a record
// goes to, and which records two nodes compare. Without a Placement every
// peer holds every session, and none of this filters anything.

// holdersOf returns, with a Placement, the holders of each of recs; nil
// without one. The holders of all of them share one backing array (a few
// allocations a publish, not one a record).
func (e *Engine) holdersOf(recs []model.Record) [][]string {
	pl := e.cfg.Placement
	if pl == nil {
		return nil
	}
	hs := make([][]string, len(recs))
	var all []string
	for i := range recs {
		start := len(all)
		all = pl.Holders(recs[i].ID, all)
		hs[i] = all[start:len(all):len(all)]
	}
	return hs
}

// recsFor returns the records of recs that peer is to be sent: those it
// holds (hs[i] are the holders of recs[i]; nil means every peer holds
// every record) and, if to is set, for which to(peer, id) is true too.
// It returns recs itself when every record goes, and never modifies it.
func recsFor(peer string, recs []model.Record, hs [][]string, to func(peer, id string) bool) []model.Record {
	if hs == nil && to == nil {
		return recs
	}
	keep := func(i int) bool {
		return (hs == nil || slices.Contains(hs[i], peer)) && (to == nil || to(peer, recs[i].ID))
	}
	n := 0
	for i := range recs {
		if keep(i) {
			n++
		}
	}
	if n == len(recs) {
		return recs
	}
	if n == 0 {
		return nil
	}
	out := make([]model.Record, 0, n)
	for i := range recs {
		if keep(i) {
			out = append(out, recs[i])
		}
	}
	return out
}

// heldBy returns, with a Placement, a filter keeping the session IDs that
// node (a peer ID, or Self) holds; nil without one.
func (e *Engine) heldBy(node string) func(id string) bool {
	pl := e.cfg.Placement
	if pl == nil {
		return nil
	}
	return func(id string) bool {
		var buf [4]string
		return slices.Contains(pl.Holders(id, buf[:0]), node)
	}
}

// sharedWith returns, with a Placement, a filter keeping the session IDs
// that both this node and p hold: what anti-entropy compares with p. nil
// without one.
func (e *Engine) sharedWith(p *peer) func(id string) bool {
	pl := e.cfg.Placement
	if pl == nil {
		return nil
	}
	self := e.cfg.Self
	return func(id string) bool {
		var buf [4]string
		hs := pl.Holders(id, buf[:0])
		return slices.Contains(hs, self) && slices.Contains(hs, p.id)
	}
}
