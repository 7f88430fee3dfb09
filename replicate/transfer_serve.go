package replicate

import (
	"bytes"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// maxPeerTransfers bounds the state transfers one peer may have waiting or
// running at once.
const maxPeerTransfers = 2

// handleTransferRequest starts serving a state transfer to p, the whole state
// or, when m carries a digest, a delta (see serveTransfer), unless p already
// has maxPeerTransfers waiting or running.
func (e *Engine) handleTransferRequest(p *peer, m *wire.TransferRequest) {
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
		e.serveTransfer(p, m.Req, m.Digest)
	}) {
		p.transfers.Add(-1)
	}
}

// serveTransfer answers TransferRequest req from p with TransferChunks, at most
// MaxBatchBytes each, one at a time through p's control queue (so only
// one chunk is held in memory), the last one Done. With no digest they
// hold our whole state (a full transfer); with p's digest, our records in
// the buckets whose hash differs from it (a delta transfer: a single
// empty Done chunk when none does). At most MaxTransfers run at once;
// others wait for a slot.
//
// It first collects the session IDs (cheap, and Range may hold store
// locks), then looks each record up as it fills chunks, so the records
// sent are as fresh as possible and the transfer never holds the whole
// state.
func (e *Engine) serveTransfer(p *peer, req uint64, digest []uint64) {
	select {
	case e.transferSem <- struct{}{}:
	case <-p.ctx.Done():
		return
	}
	defer func() { <-e.transferSem }()

	start := time.Now()
	delta := len(digest) > 0
	var ids []string
	keep := e.heldBy(p.id) // in partitioned mode, only what p holds
	if delta {
		if scopes := e.differingBuckets(digest, keep); len(scopes) > 0 {
			e.scan(scopes, keep, func(r *model.Record, _ uint64, _ []int) { ids = append(ids, r.ID) })
		}
	} else {
		e.cfg.Store.Range(func(r model.Record) bool {
			if keep == nil || keep(r.ID) {
				ids = append(ids, r.ID)
			}
			return true
		})
	}
	budget, maxRecs := e.cfg.MaxBatchBytes, wire.DefaultLimits.MaxRecords
	var chunk []model.Record
	size, chunks, sent := 0, 0, 0
	// Each chunk is encoded into buf: sendCtrlWait returns once the frame
	// was sent, so the next chunk can reuse it (a 1 MiB allocation per
	// chunk otherwise). If it returns false (the peer went down, or a
	// chunk did not encode) the transfer ends, and buf, perhaps still
	// being sent, is not used again.
	var buf bytes.Buffer
	send := func(done bool) bool {
		if !p.sendEncodedWait(wire.EncodeTo(&buf, wire.MsgTransferChunk, &wire.TransferChunk{Req: req, Records: chunk, Done: done})) {
			return false
		}
		chunks++
		sent += len(chunk)
		chunk, size = chunk[:0], 0
		return true
	}
	var parts []model.Record // a session too large for one record, in parts (see wire.AppendParts)
	for _, id := range ids {
		if p.ctx.Err() != nil {
			return
		}
		r, ok := e.cfg.Store.Lookup(id)
		if !ok {
			continue
		}
		sz := r.EstSize()
		n := 1
		if !wire.Fits(&r, sz, &wire.DefaultLimits) {
			parts = wire.AppendParts(parts[:0], r, &wire.DefaultLimits)
			n = len(parts)
		}
		if len(chunk) > 0 && (size+sz > budget || len(chunk)+n > maxRecs) {
			if !send(false) {
				return
			}
		}
		if n == 1 {
			chunk = append(chunk, r)
		} else {
			chunk = append(chunk, parts...)
			clear(parts) // pin no session data
		}
		size += sz
	}
	if !send(true) {
		return
	}
	kind := "full"
	if delta {
		e.st.deltaTransfers.Add(1)
		kind = "delta"
	} else {
		e.st.transfers.Add(1)
	}
	e.log.Info("replicate: state transfer served", "peer", p.id, "kind", kind,
		"records", sent, "chunks", chunks, "took", time.Since(start))
}
