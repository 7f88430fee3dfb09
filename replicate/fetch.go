package replicate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// fetchCall is a Fetch waiting for replies.
type fetchCall struct {
	// peerCall's pending are the peers asked that answer and have not
	// yet: their frame count when asked.
	peerCall[uint64]
	id       string
	answered int
	found    bool
	rec      model.Record // the merge of the records found so far
}

// Fetch asks every live peer for session id in parallel and returns the
// merge of the records found. It returns once every peer asked has
// answered, gone down or stopped answering (see reach.go), or when ctx
// ends: then it returns what arrived (err nil) if at least one peer
// answered, else an error wrapping ctx.Err(). found is false when no peer
// has the session. With no live peers it returns found=false, err=nil at
// once; when every live peer is known not to answer, an error wrapping
// ErrNotEnoughPeers at once.
//
// A peer that does not answer (its stream was lost, sends to it fail, or
// it left an earlier Fetch unanswered and has sent nothing since) is not
// waited for: a killed or frozen peer costs at most one wait, not one per
// Fetch until the failure detector declares it dead. A peer left
// unanswering when ctx's deadline passes is counted (FetchTimeouts) and
// not waited for again until it sends a frame.
//
// Fetch does not apply the record to the local store (the caller decides),
// but it observes its versions, so writes that follow it order after it.
func (e *Engine) Fetch(ctx context.Context, id string) (model.Record, bool, error) {
	return e.FetchFrom(ctx, id, nil)
}

// FetchFrom is Fetch asking only the live peers for which ask(peer ID) is
// true (every live peer if ask is nil): in partitioned mode, the holders of
// the session first. With no such peer it returns found=false, err=nil.
func (e *Engine) FetchFrom(ctx context.Context, id string, ask func(peer string) bool) (model.Record, bool, error) {
	rec, found, _, err := e.FetchAll(ctx, id, ask)
	return rec, found, err
}

// FetchAll is FetchFrom that also reports whether every live peer ask
// chose answered (complete): only then does found=false say that none of
// them has the session, rather than that the ones that answered in time
// lack it. A peer skipped as not answering, gone down, or left pending
// when ctx ended makes it incomplete. With no such peer it is complete.
func (e *Engine) FetchAll(ctx context.Context, id string, ask func(peer string) bool) (rec model.Record, found, complete bool, err error) {
	live, closed := e.livePeers()
	if closed {
		return model.Record{}, false, false, ErrClosed
	}
	if ask != nil {
		live = slices.DeleteFunc(slices.Clone(live), func(p *peer) bool { return !ask(p.id) })
	}
	if len(live) == 0 {
		return model.Record{}, false, true, nil
	}
	req := e.reqSeq.Add(1)
	frame, err := wire.Encode(wire.MsgFetch, &wire.Fetch{Req: req, ID: id})
	if err != nil {
		return model.Record{}, false, false, err
	}
	call := &fetchCall{id: id, peerCall: newPeerCall[uint64](len(live))}
	now := time.Now()
	var asked, probe []*peer
	for _, p := range live {
		if !p.reach.answers() {
			e.st.fetchSkips.Add(1)
			if p.reach.mute() && p.reach.probe(now) {
				probe = append(probe, p) // asked, not waited for
			}
			continue
		}
		call.pending[p] = p.reach.heard.Load()
		asked = append(asked, p)
	}
	for _, p := range probe {
		p.sendCtrl(frame, nil)
	}
	if len(asked) == 0 {
		return model.Record{}, false, false, fmt.Errorf("%w: fetch: none of the %d live peers answers (streams lost, sends failing, or fetches left unanswered)", ErrNotEnoughPeers, len(live))
	}
	var answered int
	var silent map[*peer]uint64
	ctxErr := callPeers(ctx, e, e.fetches, req, call, &call.peerCall, asked, frame, nil, func(err error) {
		rec, found, answered = call.rec, call.found, call.answered
		if errors.Is(err, context.DeadlineExceeded) {
			silent = call.pending // no reply will change it: the call is gone
		}
	})
	complete = answered == len(live)
	for p, heard := range silent {
		e.st.fetchTimeouts.Add(1)
		e.peerSilent(p, heard, "fetch unanswered")
	}
	if ctxErr != nil && answered == 0 {
		if ctxErr == ErrClosed {
			return model.Record{}, false, false, ErrClosed
		}
		return model.Record{}, false, false, fmt.Errorf("replicate: fetch: no peer answered: %w", ctxErr)
	}
	if found {
		e.cfg.Clock.Observe(rec.MaxVersion())
	}
	return rec, found, complete, nil
}

// handleFetch answers a Fetch with our record, through p's control queue.
func (e *Engine) handleFetch(p *peer, m *wire.Fetch) {
	if p == nil {
		return
	}
	e.st.fetchesServed.Add(1)
	rec, ok := e.cfg.Store.Lookup(m.ID)
	if !ok {
		e.sendFetchReply(p, &wire.FetchReply{Req: m.Req})
		return
	}
	// A session over one record's limits goes in parts, the last one
	// closing the answer (see FetchReply).
	parts := wire.AppendParts(nil, rec, &wire.DefaultLimits)
	for i, part := range parts {
		if !e.sendFetchReply(p, &wire.FetchReply{Req: m.Req, Found: true, Record: part, More: i < len(parts)-1}) {
			return
		}
	}
}

// sendFetchReply queues one FetchReply for p; false means it was not sent.
func (e *Engine) sendFetchReply(p *peer, reply *wire.FetchReply) bool {
	frame, err := wire.Encode(wire.MsgFetchReply, reply)
	if err != nil {
		e.log.Error("replicate: encode fetch reply", "peer", p.id, "err", err)
		return false
	}
	if !p.sendCtrl(frame, nil) {
		e.log.Debug("replicate: fetch reply dropped: control queue full or peer down", "peer", p.id)
		return false
	}
	return true
}

// handleFetchReply merges a reply into the Fetch waiting for it, if any.
// A reply for another session ID than asked is ignored, and so is a record
// from too far in the future (counted as Skewed): Fetch observes it.
func (e *Engine) handleFetchReply(p *peer, m *wire.FetchReply) {
	if p == nil {
		return
	}
	e.callMu.Lock()
	defer e.callMu.Unlock()
	call, ok := waiting(e.fetches, m.Req, p)
	if !ok {
		return
	}
	if !m.More {
		call.answered++
	}
	switch {
	case !m.Found || m.Record.ID != call.id:
	case e.skewed(m.Record.MaxVersion()):
		e.refuseSkewed(p.id, []model.Record{m.Record}) // as if not found
	case call.found:
		call.rec = model.Merge(call.rec, m.Record)
	default:
		call.rec, call.found = m.Record, true
	}
	if !m.More {
		call.stopWaiting(p)
	}
}

// peerGone stops every Fetch, Transfer and EndPrincipal from waiting for p.
func (e *Engine) peerGone(p *peer) {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	for _, call := range e.fetches {
		call.stopWaiting(p)
	}
	for _, call := range e.transfers {
		e.transferChangedLocked(call, p, transferGone)
	}
	for _, call := range e.principals {
		if call.waitsFor(p) {
			// Its sessions may have been handed to a peer that has
			// answered already: the call cannot say all are ended.
			call.errs = append(call.errs, p.id+": went down before answering (the sessions it held may live on where they moved: call again)")
		}
		call.stopWaiting(p)
	}
}
