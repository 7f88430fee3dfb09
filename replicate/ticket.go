package replicate

import (
	"context"
	"fmt"
	"slices"

	"github.com/peersession/peersession/replicate/model"
)

// Ticket tracks the acknowledgements of one Publish: which of the peers
// live at Publish time have applied a batch carrying its changes (or a
// coalesced superset of them).
//
// A Ticket costs one small allocation and nothing afterwards: it holds,
// per peer, the publish generation its changes were queued under, and a
// peer's acknowledged generation only grows. Nobody is notified per
// ticket; Wait re-checks when any ack arrives. Dropping a Ticket is free.
type Ticket struct {
	e      *Engine
	refs   []ticketRef
	inline [4]ticketRef // refs' storage for small clusters: one allocation
	empty  bool         // Publish had no records: nothing to wait for
	closed bool         // Publish came after Close
}

// ticketRef is a ticket's stake in one peer.
type ticketRef struct {
	p       *peer
	gen     uint64 // acked once p.window.ackedGen reaches it
	dropped bool   // the queue limit dropped some of the changes: never acked (nor if p.window.lostGen(gen): not encodable, or refused by p)
}

// Wait waits until minAcks distinct peers have applied the ticket's
// changes:
//
//   - minAcks == 0, or a Publish of no records: returns nil at once.
//   - minAcks > 0: more than the peers live at Publish time fails at once
//     with ErrNotEnoughPeers; so does a wait that can no longer succeed
//     because peers went down or dropped the changes (queue full).
//   - minAcks < 0: every peer live at Publish time; peers that go down
//     meanwhile stop counting (nil if none is left), but a live peer that
//     dropped the changes fails the wait with ErrNotEnoughPeers.
//
// If ctx ends first it returns an error wrapping ctx.Err(); after Close it
// returns ErrClosed. A peer that acknowledged before going down still
// counts.
func (t *Ticket) Wait(ctx context.Context, minAcks int) error {
	return t.wait(ctx, minAcks, false)
}

// WaitResponsive is Wait(ctx, -1) for a best-effort wait: a peer that does
// not answer (see reach.go: its stream was lost, sends to it fail, or it
// left a fetch unanswered, and it has sent nothing since) stops counting
// while it does not, as a peer that went down does, so that a killed or
// frozen peer does not hold the wait up until the failure detector
// declares it dead. It returns nil once every other peer acknowledged.
// Not for Sync guarantees: such a peer may still be alive, and apply the
// changes later.
func (t *Ticket) WaitResponsive(ctx context.Context) error {
	return t.wait(ctx, -1, true)
}

// Held reports whether every peer live at Publish time that is still up
// has applied the ticket's changes: after a WaitResponsive that returned
// nil, false means it stopped counting a peer that did not answer.
func (t *Ticket) Held() bool {
	if t == nil || t.empty {
		return true
	}
	_, done, err := t.check(-1, false)
	return done && err == nil
}

// Peers returns how many peers the ticket's changes were queued for: with
// a Placement, the live peers that hold their sessions.
func (t *Ticket) Peers() int {
	if t == nil {
		return 0
	}
	return len(t.refs)
}

// AckedBy reports whether peer has applied every change of the ticket
// queued for it (false if none was).
func (t *Ticket) AckedBy(peer string) bool {
	if t == nil {
		return false
	}
	for _, r := range t.refs {
		if r.p.id == peer {
			return r.p.window.ackedGen.Load() >= r.gen && !r.dropped && !r.p.window.lostGen(r.gen)
		}
	}
	return false
}

// wait is Wait; responsive makes peers that do not answer count as down.
func (t *Ticket) wait(ctx context.Context, minAcks int, responsive bool) error {
	if t == nil || minAcks == 0 || t.empty {
		return nil
	}
	if t.closed {
		return ErrClosed
	}
	if minAcks > len(t.refs) {
		return fmt.Errorf("%w: %d acknowledgements wanted, %d peers were live", ErrNotEnoughPeers, minAcks, len(t.refs))
	}
	for {
		ch := t.e.notify()
		acked, done, err := t.check(minAcks, responsive)
		switch {
		case done:
			return nil
		case t.e.ctx.Err() != nil:
			return ErrClosed // Close took the peers down: not their failure
		case err != nil:
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replicate: waiting for acknowledgements (%d of %d peers so far): %w",
				acked, t.want(minAcks), ctx.Err())
		case <-t.e.ctx.Done():
		}
	}
}

// check reports how many peers acknowledged, whether that is enough, and
// an error if it can never be. With responsive, a peer that does not
// answer counts as down.
func (t *Ticket) check(minAcks int, responsive bool) (acked int, done bool, err error) {
	possible, mustAck, failed := 0, 0, 0
	for _, r := range t.refs {
		down := r.p.down.Load() || (responsive && !r.p.reach.answers())
		// A change dropped by the queue limit, or from a batch because
		// it did not encode, or in a batch the peer refused records of,
		// is never acknowledged: the peer's Ack for the batch does not
		// cover it.
		dropped := r.dropped || r.p.window.lostGen(r.gen)
		switch {
		case r.p.window.ackedGen.Load() >= r.gen && !dropped:
			acked++
			possible++
		case down:
		case dropped:
			mustAck++
			failed++
		default:
			mustAck++
			possible++
		}
	}
	if minAcks < 0 {
		if failed > 0 {
			return acked, false, fmt.Errorf("%w: %d live peers dropped or refused the changes (queue full, not encodable, or refused by the peer: its store full, the session expired there, or its clock behind)", ErrNotEnoughPeers, failed)
		}
		return acked, mustAck == 0, nil
	}
	if acked >= minAcks {
		return acked, true, nil
	}
	if possible < minAcks {
		return acked, false, fmt.Errorf("%w: %d acknowledgements wanted, only %d peers can still give one (others went down, or dropped or refused the changes)",
			ErrNotEnoughPeers, minAcks, possible)
	}
	return acked, false, nil
}

// want is the number of acknowledgements Wait(minAcks) waits for, for
// error messages.
func (t *Ticket) want(minAcks int) int {
	if minAcks < 0 {
		return len(t.refs)
	}
	return minAcks
}

// Acked returns how many peers have applied the ticket's changes.
func (t *Ticket) Acked() int {
	if t == nil || t.empty {
		return 0
	}
	acked, _, _ := t.check(len(t.refs)+1, false)
	return acked
}

// StandIn queues recs for the live peers of ids that the ticket's changes
// were not queued for, whatever the Placement says, and counts their
// acknowledgements in the ticket from then on; it returns how many it
// queued them for. It is for a Sync write in partitioned mode whose
// session holder does not answer: other nodes stand in for it, and keep
// the records as copies to hand over (so recs should be whole sessions,
// not changes to them). Not safe for concurrent use with Wait.
func (t *Ticket) StandIn(ids []string, recs ...model.Record) int {
	if t == nil || t.closed || len(recs) == 0 {
		return 0
	}
	t.e.mu.RLock()
	live := t.e.live
	t.e.mu.RUnlock()
	n := 0
	for _, p := range live {
		if !slices.Contains(ids, p.id) || slices.ContainsFunc(t.refs, func(r ticketRef) bool { return r.p == p }) {
			continue
		}
		gen, dropped, ok := p.enqueue(recs, false)
		if !ok {
			continue
		}
		t.refs = append(t.refs, ticketRef{p: p, gen: gen, dropped: dropped > 0})
		n++
	}
	return n
}
