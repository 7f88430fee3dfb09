package replicate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/peersession/peersession/replicate/wire"
)

// The join-time state transfer (Transfer) costs one full copy of the state,
// not one per peer:
//
//  1. The joining node asks one live peer, the source, for its whole state
//     (a TransferRequest without a digest) and applies the TransferChunks as they
//     arrive. If the source goes down before its last chunk, the node asks
//     the next live peer for the whole state, and so on.
//  2. Once the source's last chunk is applied, the node computes its own
//     Digest and sends it, in a TransferRequest, to every other peer it knew
//     when Transfer started. Each answers with TransferChunks holding its records
//     in the buckets whose hash differs (one empty chunk if none does):
//     the writes the source had not received yet, as they were published
//     before the joining node was anyone's peer. Merging makes the
//     records the node already holds harmless.
//  3. Transfer ends when the source and every other peer have sent their last
//     chunk or gone down.
//
// A peer that sends nothing (no chunk) for Config.TransferRetry after it
// was asked is asked again, with the wait doubling up to 4 times that:
// a request or its answer can be lost without the peer going down (a
// stream reset under it, a peer declining while it serves too many
// transfers to this node, a request parked until the peer saw this node
// up and dropped there). Without this, one such peer held the join until
// the caller's context ended. A peer's last chunk answers any of the
// requests sent to it (they share Req), and a duplicate answer is merged
// like any other, so asking again never costs more than a second answer.
// Each time it asks again it also calls Config.Nudge: a peer that parks the
// request because it has not seen this node up (its gossip lost or late)
// then learns of it at once, not at its next periodic push/pull.
//
// Which peer is the source does not matter for correctness (step 2 covers
// what it lacks), so it is chosen at random: nodes joining together (a
// rolling restart, a scale-out) then spread the full copies over the
// members instead of all loading the same one, and a peer slow to serve
// is not picked by every joiner.

// transferState is where one peer asked by a Sync stands.
type transferState uint8

const (
	transferAsked transferState = iota + 1 // asked; its last chunk not applied yet
	transferDone                           // its last chunk was applied
	transferGone                           // went down (or the request was dropped) first
)

// transferCall is one Transfer in progress: the peers it asked, each for the
// whole state or for a delta, and where each stands.
type transferCall struct {
	peers   map[*peer]transferState // every peer asked; guarded by Engine.callMu
	heard   map[*peer]bool          // peers that sent a chunk since last looked at; guarded by Engine.callMu
	changed chan struct{}           // capacity 1: a state in peers changed
}

// maxTransferRetries caps the doubling of Config.TransferRetry.
const maxTransferRetries = 4

// maxSilentSource is how many times a source that sent nothing is asked
// again before the whole state is asked of the next peer.
const maxSilentSource = 2

// Transfer performs the join-time state transfer described above: the whole
// state from one peer (another if that one goes down first), then, from
// every other peer live when Transfer started, the records in the digest
// buckets where it differs from this node. Chunks are applied as they
// arrive. Peers that come up during Transfer are not asked.
//
// It returns nil at once when there are no peers, and once a full
// transfer completed and every other peer asked has completed its delta
// transfer or gone down. It returns an error wrapping ErrNotEnoughPeers
// if every peer went down before any full transfer completed, one
// wrapping ctx.Err() if ctx ends first, and ErrClosed if the engine
// closes.
func (e *Engine) Transfer(ctx context.Context) error {
	live, closed := e.livePeers()
	if closed {
		return ErrClosed
	}
	if len(live) == 0 {
		e.settled.Store(true) // nobody to ask: this node's state is the state
		return nil
	}
	req := e.reqSeq.Add(1)
	call := &transferCall{peers: make(map[*peer]transferState, len(live)), heard: make(map[*peer]bool), changed: make(chan struct{}, 1)}
	e.callMu.Lock()
	e.transfers[req] = call
	e.callMu.Unlock()
	defer func() {
		e.callMu.Lock()
		delete(e.transfers, req)
		e.callMu.Unlock()
	}()

	start := time.Now()
	order := slices.Clone(live)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	source, err := e.transferFull(ctx, call, req, order)
	if err != nil {
		return err
	}
	full := time.Since(start)
	asked, err := e.transferDeltas(ctx, call, req, order)
	if err != nil {
		return err
	}
	e.log.Info("replicate: state transfer done", "source", source.id, "full", full,
		"delta_peers", asked, "took", time.Since(start))
	e.settled.Store(true)
	return nil
}

// transferFull asks the peers in order, one at a time, for their whole state
// until one has sent all of it, and returns that one.
func (e *Engine) transferFull(ctx context.Context, call *transferCall, req uint64, order []*peer) (*peer, error) {
	frame, err := wire.Encode(wire.MsgTransferRequest, &wire.TransferRequest{Req: req})
	if err != nil {
		return nil, err
	}
	for _, p := range order {
		if !e.transferAsk(call, p, frame) {
			continue
		}
		e.log.Info("replicate: state transfer requested", "peer", p.id)
		silent, abandoned := 0, false
		err := e.transferWait(ctx, call, func() bool { return call.peers[p] != transferAsked || abandoned }, func() {
			if !e.transferSilent(call, p) {
				silent = 0
				return
			}
			if silent++; silent > maxSilentSource {
				// Silent after being asked again and again (it may not
				// know this node yet): take the whole state from another
				// peer; this one is asked for a delta later.
				e.callMu.Lock()
				abandoned = true
				e.callMu.Unlock()
				return
			}
			e.log.Warn("replicate: state transfer source sent nothing yet; asking again", "peer", p.id)
			e.st.transferRetries.Add(1)
			e.nudge(p)
			e.transferAsk(call, p, frame)
		})
		if err != nil {
			return nil, fmt.Errorf("replicate: sync: the state transfer from %s did not finish: %w", p.id, err)
		}
		if e.transferStateOf(call, p) == transferDone {
			return p, nil
		}
		if abandoned {
			e.log.Warn("replicate: state transfer source sent nothing; asking another peer", "peer", p.id)
			continue
		}
		e.log.Warn("replicate: state transfer source went down; asking another peer", "peer", p.id)
	}
	return nil, fmt.Errorf("replicate: sync: %w: every peer went down before sending its whole state", ErrNotEnoughPeers)
}

// transferDeltas sends this node's Digest to every peer in order but the
// source, and waits until each has sent its records in the buckets that
// differ, or gone down. It returns how many it asked. (A peer that went
// down is asked again in vain, its peer being down for good; one whose
// control queue was full is asked again.)
func (e *Engine) transferDeltas(ctx context.Context, call *transferCall, req uint64, order []*peer) (int, error) {
	var frame []byte
	asked := 0
	for _, p := range order {
		if e.transferStateOf(call, p) == transferDone {
			continue // the source
		}
		if frame == nil {
			var err error
			frame, err = wire.Encode(wire.MsgTransferRequest, &wire.TransferRequest{Req: req, Digest: e.digestOf(e.heldBy(e.cfg.Self))})
			if err != nil {
				return 0, err
			}
		}
		if e.transferAsk(call, p, frame) {
			asked++
		}
	}
	if asked == 0 {
		return 0, nil
	}
	e.log.Info("replicate: delta transfers requested", "peers", asked)
	err := e.transferWait(ctx, call, func() bool {
		for _, st := range call.peers {
			if st == transferAsked {
				return false
			}
		}
		return true
	}, func() { e.transferAskSilent(call, req) })
	if err != nil {
		return asked, fmt.Errorf("replicate: sync: whole state received, but a delta transfer did not finish: %w", err)
	}
	return asked, nil
}

// transferAskSilent asks again, with a fresh digest (what arrived since
// narrows the answer), every peer that call still waits for and that sent
// no chunk since the last look.
func (e *Engine) transferAskSilent(call *transferCall, req uint64) {
	e.callMu.Lock()
	var silent []*peer
	for p, st := range call.peers {
		if st == transferAsked && !call.heard[p] {
			silent = append(silent, p)
		}
	}
	clear(call.heard)
	e.callMu.Unlock()
	if len(silent) == 0 {
		return
	}
	frame, err := wire.Encode(wire.MsgTransferRequest, &wire.TransferRequest{Req: req, Digest: e.digestOf(e.heldBy(e.cfg.Self))})
	if err != nil {
		e.log.Error("replicate: delta transfer request did not encode", "err", err)
		return
	}
	for _, p := range silent {
		e.log.Warn("replicate: delta transfer unanswered; asking again", "peer", p.id)
		e.st.transferRetries.Add(1)
		e.nudge(p)
		e.transferAsk(call, p, frame)
	}
}

// nudge tells the network (Config.Nudge) that p, asked for a transfer,
// stayed silent: p may not know yet that this node is up, and then parks
// the request until it does.
func (e *Engine) nudge(p *peer) {
	if e.cfg.Nudge != nil {
		e.cfg.Nudge(p.id)
	}
}

// transferSilent reports whether p, asked by call, still owes its last
// chunk and sent none since the last look; it forgets what p sent.
func (e *Engine) transferSilent(call *transferCall, p *peer) bool {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	heard := call.heard[p]
	delete(call.heard, p)
	return call.peers[p] == transferAsked && !heard
}

// transferAsk records p as asked by call, then sends it frame. It reports
// whether it did: false if p is down or its control queue is full.
func (e *Engine) transferAsk(call *transferCall, p *peer, frame []byte) bool {
	e.callMu.Lock()
	call.peers[p] = transferAsked
	e.callMu.Unlock()
	if p.sendCtrl(frame, nil) {
		return true
	}
	e.callMu.Lock()
	e.transferChangedLocked(call, p, transferGone)
	e.callMu.Unlock()
	return false
}

// transferStateOf returns where p stands in call, zero if it was not asked.
func (e *Engine) transferStateOf(call *transferCall, p *peer) transferState {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	return call.peers[p]
}

// transferWait waits until cond, called with callMu held, holds. Each time
// Config.TransferRetry passes without (doubling each time, up to
// maxTransferRetries times it) it calls retry, without callMu. It returns
// ctx's error if ctx ends first, ErrClosed if the engine closes.
func (e *Engine) transferWait(ctx context.Context, call *transferCall, cond func() bool, retry func()) error {
	wait := e.cfg.TransferRetry
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		e.callMu.Lock()
		ok := cond()
		e.callMu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-call.changed:
		case <-t.C:
			retry()
			wait = min(2*wait, maxTransferRetries*e.cfg.TransferRetry)
			t.Reset(wait)
		case <-ctx.Done():
			return ctx.Err()
		case <-e.ctx.Done():
			return ErrClosed
		}
	}
}

// transferring reports whether a Sync is running: this node's state is still
// arriving, so anti-entropy would only repair (by a second transfer) what
// the first is about to deliver.
func (e *Engine) transferring() bool {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	return len(e.transfers) > 0
}

// transferChangedLocked moves p, if call is waiting for it, to st (transferDone
// or transferGone) and wakes the Transfer. callMu must be held.
func (e *Engine) transferChangedLocked(call *transferCall, p *peer, st transferState) {
	if call.peers[p] != transferAsked {
		return
	}
	call.peers[p] = st
	select {
	case call.changed <- struct{}{}:
	default:
	}
}

// handleTransferChunk applies a chunk and, on the last one, tells the Transfer
// waiting for it. Chunks are applied whoever asked: merging is idempotent.
// The Transfer hears of the last chunk only once all of the peer's chunks
// are applied: they arrive in order and are applied on the peer's reader
// goroutine.
func (e *Engine) handleTransferChunk(p *peer, from string, m *wire.TransferChunk) {
	e.apply(from, m.Records)
	if p == nil {
		return
	}
	e.callMu.Lock()
	defer e.callMu.Unlock()
	call := e.transfers[m.Req]
	if call == nil {
		return
	}
	call.heard[p] = true
	if m.Done {
		e.transferChangedLocked(call, p, transferDone)
	}
}
