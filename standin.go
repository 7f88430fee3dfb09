package peersession

import (
	"context"
	"errors"
	"slices"

	"github.com/peersession/peersession/replicate"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/placement"
)

// Stand-ins for a Sync write in partitioned mode. Only a session's holders
// are sent its changes, so a holder that does not answer (frozen, or
// killed and not yet declared dead) or cannot acknowledge (a new holder
// without the session yet) would fail every Sync write that needs its
// acknowledgement. When the holders have not acknowledged within half of
// SyncTimeout, the writer sends the whole session to as many of the next
// nodes in the session's ranking as acknowledgements are missing, and
// counts theirs: each keeps it as a stray, handed over to the holders
// (rebalance.go), and is, when a dead holder is declared dead, the node
// that takes its place.

// waitAcks waits, within ctx, for minAcks acknowledgements of t, the
// ticket of deltas, with stand-ins in partitioned mode.
func (r *replication) waitAcks(ctx context.Context, t *replicate.Ticket, deltas []model.Record, minAcks int) error {
	if r.part == nil || minAcks < 0 {
		return t.Wait(ctx, minAcks)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return t.Wait(ctx, minAcks)
	}
	hctx, cancel := context.WithDeadline(ctx, deadline.Add(-r.cfg.SyncTimeout/2))
	err := t.Wait(hctx, minAcks)
	cancel()
	if err == nil || ctx.Err() != nil || errors.Is(err, replicate.ErrClosed) {
		return err
	}
	need := minAcks - t.Acked()
	if need <= 0 || r.standIn(t, deltas, need) == 0 {
		return t.Wait(ctx, minAcks)
	}
	r.st.stats.standIns.Add(1)
	return t.Wait(ctx, minAcks)
}

// standIn queues the whole sessions of deltas, as stored here, for need
// live nodes that do not hold them, the next in the first session's
// ranking, counted in t; it returns how many it queued them for.
func (r *replication) standIn(t *replicate.Ticket, deltas []model.Record, need int) int {
	v := r.part.view.Load()
	names := v.pl.Names()
	id := deltas[0].ID
	holders := v.pl.Holders(id, nil)
	var ids []string
	for _, name := range placement.New(len(names), names).Holders(id, nil) {
		if len(ids) >= need {
			break
		}
		if name == r.part.selfName || slices.Contains(holders, name) {
			continue
		}
		ids = append(ids, v.ids[name]...)
	}
	if len(ids) == 0 {
		return 0
	}
	whole := make([]model.Record, 0, len(deltas))
	for _, d := range deltas {
		if e := r.st.shards.get(d.ID); e != nil {
			whole = append(whole, e.rec)
		} else {
			whole = append(whole, d)
		}
	}
	return t.StandIn(ids, whole...)
}
