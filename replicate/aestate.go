package replicate

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/peersession/peersession/replicate/wire"
)

// aeState is a peer's anti-entropy state: the Digests and Summaries
// received from it that wait for its aeLoop goroutine (see antientropy.go),
// and whether that goroutine runs.
type aeState struct {
	// declined counts the Digests from the peer declined in a row
	// (changes to it in flight); used by aeLoop only.
	declined atomic.Int32

	mu      sync.Mutex // guards pending, ids, running, closed and the retry fields
	pending []any      // *wire.Digest, retriedDigest and *wire.Summary waiting for aeLoop
	ids     int        // the IDs in the Summaries in pending
	running bool       // an aeLoop goroutine runs for the peer
	closed  bool       // the peer went down: nothing is queued any more

	// retry is the Digest declined last (changes in flight to the peer),
	// queued again after aeRetryDelay as a retriedDigest of retryTries
	// tries by one goroutine at a time (retrying). See retryDigest.
	retry      *wire.Digest
	retryTries int
	retrying   bool
}

// retriedDigest is a Digest declined tries times, queued again.
type retriedDigest struct {
	d     *wire.Digest
	tries int
}

// add queues msg, a *wire.Digest or *wire.Summary, for the peer's aeLoop.
// start reports that none runs: the caller must start one (or call
// stopped if it cannot). full reports that msg was dropped, as
// maxAEPending frames or maxAEPendingIDs Summary IDs wait already. A
// closed aeState drops msg and reports neither.
func (a *aeState) add(msg any) (start, full bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false, false
	}
	ids := 0
	if s, ok := msg.(*wire.Summary); ok {
		ids = len(s.IDs)
	}
	if len(a.pending) >= maxAEPending || a.ids+ids > maxAEPendingIDs {
		return false, true
	}
	a.pending = append(a.pending, msg)
	a.ids += ids
	start = !a.running
	a.running = true
	return start, false
}

// take removes and returns every frame waiting. When none waits, or ctx
// (the peer's) is done, it returns nil and marks the aeLoop stopped: the
// caller must return.
func (a *aeState) take(ctx context.Context) []any {
	a.mu.Lock()
	defer a.mu.Unlock()
	msgs := a.pending
	a.pending, a.ids = nil, 0
	if len(msgs) == 0 || ctx.Err() != nil {
		a.running = false
		return nil
	}
	return msgs
}

// stopped marks the aeLoop that add asked for as not started, and drops
// what waits for it.
func (a *aeState) stopped() {
	a.mu.Lock()
	a.running, a.pending, a.ids = false, nil, 0
	a.mu.Unlock()
}

// closeLocked drops what waits, for good. mu must be held.
func (a *aeState) closeLocked() {
	a.closed = true
	a.pending, a.ids = nil, 0
	a.retry = nil
}
