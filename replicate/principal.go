package replicate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/peersession/peersession/replicate/wire"
)

// Ending a principal's sessions on every node, for "log out everywhere"
// in partitioned mode: each node indexes only the sessions it holds, so
// the node asked asks every peer (EndPrincipal, format 2) to end those it
// holds, and counts the union of the IDs they ended.

// ErrFormatTooOld: a live peer reads only a wire format that lacks a
// message the call needs (see wire.FormatNewest).
var ErrFormatTooOld = errors.New("replicate: a peer reads an older wire format")

// principalCall is an EndPrincipal waiting for replies.
type principalCall struct {
	peerCall[struct{}] // the peers asked that have not answered or gone down
	ids                map[string]struct{}
	errs               []string // the peers' errors, "peer: err"
}

// EndPrincipal asks every live peer to end the sessions tagged with
// principal that it holds (through Config.EndPrincipal) and returns the
// IDs they ended, each once. It returns once every peer asked has
// answered or gone down. It fails with an error wrapping ErrFormatTooOld
// at once if a live peer reads a wire format older than 2 (nothing is
// asked); with one wrapping ctx.Err() if ctx ends first (the IDs returned
// are those ended so far); with the peers' own errors, if they could not
// end theirs (a clock fence, say), or went down before answering (what
// they held may have moved to a peer that answered already: call again);
// and with ErrClosed after Close.
func (e *Engine) EndPrincipal(ctx context.Context, principal string) ([]string, error) {
	live, closed := e.livePeers()
	if closed {
		return nil, ErrClosed
	}
	for _, p := range live {
		if f := e.peerFormat(p.id); f != 0 && f < 2 {
			return nil, fmt.Errorf("%w: peer %s reads wire format %d, and ending a principal's sessions on every node takes format 2; upgrade it", ErrFormatTooOld, p.id, f)
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	req := e.reqSeq.Add(1)
	frame, err := wire.Encode(wire.MsgEndPrincipal, &wire.EndPrincipal{Req: req, Principal: principal})
	if err != nil {
		return nil, err
	}
	call := &principalCall{peerCall: newPeerCall[struct{}](len(live)), ids: make(map[string]struct{})}
	for _, p := range live {
		call.pending[p] = struct{}{}
	}
	var ids, errs []string
	var missing int
	notSent := func(p *peer) {
		call.errs = append(call.errs, p.id+": not asked: its control queue is full or it went down")
	}
	ctxErr := callPeers(ctx, e, e.principals, req, call, &call.peerCall, live, frame, notSent, func(error) {
		ids = make([]string, 0, len(call.ids))
		for id := range call.ids {
			ids = append(ids, id)
		}
		errs, missing = slices.Clone(call.errs), len(call.pending)
	})
	slices.Sort(ids)
	switch {
	case ctxErr == ErrClosed:
		return ids, ErrClosed
	case ctxErr != nil:
		return ids, fmt.Errorf("replicate: end principal: %d of %d peers did not answer: %w", missing, len(live), ctxErr)
	case len(errs) > 0:
		return ids, fmt.Errorf("replicate: end principal: %s", strings.Join(errs, "; "))
	}
	return ids, nil
}

// handleEndPrincipal ends, off the reader goroutine, the sessions of the
// principal this node holds, and answers p with their IDs.
func (e *Engine) handleEndPrincipal(p *peer, m *wire.EndPrincipal) {
	if p == nil {
		return
	}
	e.spawn(func() {
		reply := &wire.PrincipalEnded{Req: m.Req}
		if end := e.cfg.EndPrincipal; end == nil {
			reply.Err = "this node cannot end a principal's sessions for its peers"
		} else {
			ids, err := end(p.ctx, m.Principal)
			if err != nil {
				reply.Err = err.Error()
			}
			if max := wire.DefaultLimits.MaxRecords; len(ids) > max {
				ids = ids[:max] // all ended; the count of the reply is short
			}
			reply.IDs = ids
		}
		if max := wire.DefaultLimits.MaxKeyLen; len(reply.Err) > max {
			reply.Err = reply.Err[:max]
		}
		frame, err := wire.Encode(wire.MsgPrincipalEnded, reply)
		if err != nil {
			e.log.Error("replicate: encode principal-ended", "peer", p.id, "err", err)
			return
		}
		p.sendCtrl(frame, nil)
	})
}

// handlePrincipalEnded adds a peer's answer to the EndPrincipal waiting
// for it, if any.
func (e *Engine) handlePrincipalEnded(p *peer, m *wire.PrincipalEnded) {
	if p == nil {
		return
	}
	e.callMu.Lock()
	defer e.callMu.Unlock()
	call, ok := waiting(e.principals, m.Req, p)
	if !ok {
		return
	}
	for _, id := range m.IDs {
		call.ids[id] = struct{}{}
	}
	if m.Err != "" {
		call.errs = append(call.errs, p.id+": "+m.Err)
	}
	call.stopWaiting(p)
}
