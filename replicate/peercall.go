package replicate

import "context"

// A peer call sends one request frame to several peers and waits for
// their answers: Fetch (fetch.go) and EndPrincipal (principal.go). Each
// call kind keeps its own table of calls by request number, where its
// reply handler finds the call and adds the answer; the asking, the
// waiting and the giving up are the same, and live here.

// peerCall is what every call waiting for peers has: the peers it still
// waits for (with what the call keeps of each) and a channel closed once
// none is left. Engine.callMu guards pending; the zero value is not
// ready: make one with newPeerCall.
type peerCall[V any] struct {
	pending map[*peer]V
	done    chan struct{}
}

func newPeerCall[V any](peers int) peerCall[V] {
	return peerCall[V]{pending: make(map[*peer]V, peers), done: make(chan struct{})}
}

// waitsFor reports whether the call still waits for p. callMu must be
// held.
func (c *peerCall[V]) waitsFor(p *peer) bool {
	_, ok := c.pending[p]
	return ok
}

// stopWaiting takes p out of the peers the call waits for, and releases
// the call once none is left: p answered, went down, or stopped
// answering. callMu must be held.
func (c *peerCall[V]) stopWaiting(p *peer) {
	if _, ok := c.pending[p]; !ok {
		return
	}
	delete(c.pending, p)
	if len(c.pending) == 0 {
		close(c.done)
	}
}

// waiting returns the call of calls under req if it waits for p's
// answer: a reply to a call that ended, or from a peer it does not wait
// for (not asked, or done), is dropped. callMu must be held.
func waiting[C interface{ waitsFor(p *peer) bool }](calls map[uint64]C, req uint64, p *peer) (C, bool) {
	call, ok := calls[req]
	if !ok || !call.waitsFor(p) {
		var zero C
		return zero, false
	}
	return call, true
}

// callPeers runs one call: it enters call in calls under req (so that
// replies find it), sends frame to each of asked (which the call must
// already wait for), and waits until every one answered or is no longer
// waited for, ctx ends, or the engine closes. A peer a send to failed is
// handed to notSent (nil: nothing to record), callMu held, and not waited
// for. Once the wait ends the call leaves calls and collect runs, callMu
// held, with the wait's outcome: nil, ctx.Err() or ErrClosed, which
// callPeers returns.
func callPeers[C any, V any](ctx context.Context, e *Engine, calls map[uint64]C, req uint64, call C, pc *peerCall[V],
	asked []*peer, frame []byte, notSent func(p *peer), collect func(err error)) error {
	e.callMu.Lock()
	calls[req] = call
	e.callMu.Unlock()
	for _, p := range asked {
		if !p.sendCtrl(frame, nil) {
			e.callMu.Lock()
			if notSent != nil {
				notSent(p)
			}
			pc.stopWaiting(p)
			e.callMu.Unlock()
		}
	}
	var err error
	select {
	case <-pc.done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-e.ctx.Done():
		err = ErrClosed
	}
	e.callMu.Lock()
	defer e.callMu.Unlock()
	delete(calls, req)
	collect(err)
	return err
}
