package replicate

import (
	"context"
	"fmt"
	"time"
)

// syncCall is a Sync waiting for a peer to finish its state transfer.
type syncCall struct {
	pending   map[*peer]bool // peers asked that are still up and not done
	completed int            // peers that sent all of their state
	done      chan struct{}  // closed once err is final
	err       error
}

// Sync performs the join-time state transfer: it asks every live peer for
// its whole state, applies the chunks as they arrive, and returns once every
// peer asked has sent all of its state or gone down. Waiting for all, not
// the first, matters: a peer's snapshot lacks the writes other peers had
// not yet replicated to it, and those were published before this node was
// their peer. It returns nil at once when there are no peers, an error
// wrapping ErrNotEnoughPeers if every peer asked went down first, and an
// error wrapping ctx.Err() if ctx ends first.
func (e *Engine) Sync(ctx context.Context) error {
	live, closed := e.livePeers()
	if closed {
		return ErrClosed
	}
	if len(live) == 0 {
		return nil
	}
	req := e.reqSeq.Add(1)
	frame, err := Encode(MsgSyncRequest, &SyncRequest{Req: req})
	if err != nil {
		return err
	}
	call := &syncCall{pending: make(map[*peer]bool, len(live)), done: make(chan struct{})}
	for _, p := range live {
		call.pending[p] = true
	}
	e.callMu.Lock()
	e.syncs[req] = call
	e.callMu.Unlock()
	defer func() {
		e.callMu.Lock()
		delete(e.syncs, req)
		e.callMu.Unlock()
	}()
	asked := 0
	for _, p := range live {
		if p.sendCtrl(frame, nil) {
			asked++
		} else {
			e.syncPeerGone(call, p)
		}
	}
	e.log.Info("replicate: state transfer requested", "peers", asked)
	start := time.Now()
	select {
	case <-call.done:
		if call.err == nil {
			e.log.Info("replicate: state transfer done", "took", time.Since(start))
		}
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("replicate: sync: no peer finished its state transfer: %w", ctx.Err())
	case <-e.ctx.Done():
		return ErrClosed
	}
}

// syncing reports whether a Sync is running: this node's state is still
// arriving, so anti-entropy would only repair (by a second transfer) what
// the first is about to deliver.
func (e *Engine) syncing() bool {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	return len(e.syncs) > 0
}

// syncPeerGone stops call from waiting for p.
func (e *Engine) syncPeerGone(call *syncCall, p *peer) {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	e.finishSyncLocked(call, p, fmt.Errorf("replicate: sync: %w: every peer asked went down", ErrNotEnoughPeers))
}

// finishSyncLocked removes p from call's pending peers: it completed (err
// nil) or went down. call is done once none is left: with nil if any peer
// completed, else with err. callMu must be held.
func (e *Engine) finishSyncLocked(call *syncCall, p *peer, err error) {
	if !call.pending[p] {
		return
	}
	delete(call.pending, p)
	if err == nil {
		call.completed++
	}
	if len(call.pending) == 0 {
		if call.completed == 0 {
			call.err = err
		}
		close(call.done)
	}
}

// handleSyncChunk applies a chunk and, on the last one, ends the Sync
// waiting for it. Chunks are applied whoever asked: merging is idempotent.
func (e *Engine) handleSyncChunk(p *peer, from string, m *SyncChunk) {
	e.apply(from, m.Records)
	if !m.Done || p == nil {
		return
	}
	e.callMu.Lock()
	defer e.callMu.Unlock()
	if call := e.syncs[m.Req]; call != nil {
		e.finishSyncLocked(call, p, nil)
	}
}

// handleSyncRequest starts serving a state transfer to p, unless p already
// has maxPeerTransfers waiting or running.
func (e *Engine) handleSyncRequest(p *peer, req uint64) {
	if p == nil {
		return
	}
	if p.transfers.Add(1) > maxPeerTransfers {
		p.transfers.Add(-1)
		e.log.Warn("replicate: state transfer request ignored: too many for this peer", "peer", p.id)
		return
	}
	if !e.spawn(func() {
		defer p.transfers.Add(-1)
		e.serveSync(p, req)
	}) {
		p.transfers.Add(-1)
	}
}

// serveSync sends p our whole state as SyncChunks, at most
// MaxBatchBytes each, one at a time through p's control queue (so only
// one chunk is held in memory), the last one Done. At most MaxTransfers
// run at once; others wait for a slot.
//
// It first collects the session IDs (cheap, and Range may hold store
// locks), then looks each record up as it fills chunks, so the records
// sent are as fresh as possible and the transfer never holds the whole
// state.
func (e *Engine) serveSync(p *peer, req uint64) {
	select {
	case e.transferSem <- struct{}{}:
	case <-p.ctx.Done():
		return
	}
	defer func() { <-e.transferSem }()

	start := time.Now()
	var ids []string
	e.cfg.Store.Range(func(r Record) bool {
		ids = append(ids, r.ID)
		return true
	})
	budget, maxRecs := e.cfg.MaxBatchBytes, DefaultLimits.MaxRecords
	var chunk []Record
	size, chunks, sent := 0, 0, 0
	send := func(done bool) bool {
		frame, err := Encode(MsgSyncChunk, &SyncChunk{Req: req, Records: chunk, Done: done})
		if err != nil {
			e.log.Error("replicate: state transfer aborted: encode chunk", "peer", p.id, "err", err)
			return false
		}
		if !p.sendCtrlWait(frame) {
			return false
		}
		chunks++
		sent += len(chunk)
		chunk, size = chunk[:0], 0
		return true
	}
	for _, id := range ids {
		if p.ctx.Err() != nil {
			return
		}
		r, ok := e.cfg.Store.Lookup(id)
		if !ok {
			continue
		}
		sz := recordSize(&r)
		if len(chunk) > 0 && (size+sz > budget || len(chunk) >= maxRecs) {
			if !send(false) {
				return
			}
		}
		chunk = append(chunk, r)
		size += sz
	}
	if !send(true) {
		return
	}
	e.st.transfers.Add(1)
	e.log.Info("replicate: state transfer served", "peer", p.id, "records", sent, "chunks", chunks, "took", time.Since(start))
}
