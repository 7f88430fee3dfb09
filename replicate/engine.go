package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/internal/ratelog"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// Errors callers branch on with errors.Is.
var (
	// ErrClosed: the Engine was closed.
	ErrClosed = errors.New("replicate: engine closed")
	// ErrNotEnoughPeers: fewer peers than asked for exist or can still
	// answer (they went down, or a full queue dropped the change).
	ErrNotEnoughPeers = errors.New("replicate: not enough peers")
)

// logEvery is the least time between two warnings about frames or records
// refused or rejected.
const logEvery = 10 * time.Second

// Engine replicates changes to peers: it queues each change per peer,
// batches and sends them, collects acknowledgements, serves and requests
// state transfers, answers fetches and runs anti-entropy.
//
// Lock order: Engine.mu, then a peer's locks (see peer); callMu and
// notifyMu are taken alone.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // done once Close starts
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the engine started

	transferSem  chan struct{} // a token per running state transfer
	summaryMax   int           // most IDs per Summary frame: maxSummaryEntries; tests lower it
	releaseAfter time.Duration // idle time after which a peer's sender returns its buffers: defaultReleaseAfter; tests lower it
	aeRetryDelay time.Duration // between two looks at a declined Digest: defaultAERetryDelay; tests lower it
	reqSeq       atomic.Uint64 // last Req of a TransferRequest or Fetch
	settled      atomic.Bool   // a Transfer has ended: this node holds the state (see healWithLocked)
	batchSeq     atomic.Uint64 // last Seq of a Batch, to any peer
	flushers     atomic.Int32  // Flush calls waiting

	early  earlyFrames  // frames from peers not yet up
	mu     sync.RWMutex // guards peers, live and closed
	peers  map[string]*peer
	live   []*peer // the values of peers; replaced, never modified
	closed bool

	notifyMu sync.Mutex    // guards notifyCh
	notifyCh chan struct{} // closed at the next broadcast; nil until someone waits

	callMu     sync.Mutex // guards fetches, transfers and principals, and the calls in them
	fetches    map[uint64]*fetchCall
	transfers  map[uint64]*transferCall
	principals map[uint64]*principalCall

	st engineCounters

	// skewLog and rejectLog hold back the warnings about refused and
	// rejected frames: one line per logEvery at most, with the count.
	skewLog, rejectLog ratelog.Limiter
}

// New validates cfg and returns a running Engine with no peers. Call
// PeerUp for each peer, and Close when done.
func New(cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg:          cfg,
		log:          cfg.Logger.With("self", cfg.Self),
		ctx:          ctx,
		cancel:       cancel,
		transferSem:  make(chan struct{}, cfg.MaxTransfers),
		summaryMax:   maxSummaryEntries,
		releaseAfter: defaultReleaseAfter,
		aeRetryDelay: defaultAERetryDelay,
		peers:        make(map[string]*peer),
		fetches:      make(map[uint64]*fetchCall),
		transfers:    make(map[uint64]*transferCall),
		principals:   make(map[uint64]*principalCall),
		skewLog:      ratelog.Limiter{Every: logEvery},
		rejectLog:    ratelog.Limiter{Every: logEvery},
	}
	if cfg.AntiEntropyInterval > 0 {
		e.spawn(e.antiEntropyLoop)
	}
	return e, nil
}

// Close stops every peer's sender and every transfer, wakes every waiter
// with ErrClosed and returns when all the engine's goroutines have
// stopped. Queued changes are discarded. It is safe to call more than once.
func (e *Engine) Close() {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	live := e.live
	e.live = nil
	e.mu.Unlock()
	if !already {
		for _, p := range live {
			p.stop()
		}
		e.cancel()
		e.broadcast()
	}
	e.wg.Wait()
}

// PeerUp starts replicating to peer: a queue and a sender goroutine. It
// does nothing for a peer already up, for Self, or after Close.
func (e *Engine) PeerUp(id string) {
	if id == e.cfg.Self || id == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.peers[id] != nil {
		return
	}
	p := newPeer(e, id)
	e.peers[id] = p
	e.live = append(e.live[:len(e.live):len(e.live)], p)
	e.wg.Add(1)
	go p.run()
	e.log.Debug("replicate: peer up", "peer", id)
	e.healWithLocked(p)
	if early := e.early.take(id); len(early) > 0 {
		e.wg.Add(1)
		go func() { // HandleFrame takes e.mu, held here
			defer e.wg.Done()
			for _, f := range early {
				e.HandleFrame(id, f)
			}
		}()
	}
}

// PeerDown stops replicating to peer: its queued changes are dropped (and
// counted; anti-entropy repairs them once it is back), and tickets,
// fetches and syncs stop waiting for it. left reports a graceful leave
// rather than a failure; it only changes the log level. PeerDown does not
// wait for the sender goroutine to stop; Close does.
func (e *Engine) PeerDown(id string, left bool) {
	e.early.take(id)
	e.mu.Lock()
	p := e.peers[id]
	if p == nil {
		e.mu.Unlock()
		return
	}
	delete(e.peers, id)
	live := make([]*peer, 0, len(e.live))
	for _, q := range e.live {
		if q != p {
			live = append(live, q)
		}
	}
	e.live = live
	e.mu.Unlock()

	dropped := p.stop()
	level := slog.LevelWarn
	if left {
		level = slog.LevelInfo
	}
	e.log.Log(context.Background(), level, "replicate: peer down", "peer", id, "left", left, "dropped", dropped)
	e.broadcast()
	e.peerGone(p)
}

// Publish queues changes for every live peer (with a Placement, each
// change only for the peers that hold its session) and returns a Ticket to
// wait for their acknowledgements with. A change to a session already
// queued for a peer is merged into the queued record. The caller must not
// modify recs (or their Keys) afterwards. Publish never blocks on the
// network; a caller that does not wait may drop the ticket.
func (e *Engine) Publish(recs ...model.Record) *Ticket {
	return e.publish(recs, nil, false)
}

// Push queues changes as Publish does, counted as repairs, each only for
// the peers that hold its session (every peer without a Placement) and for
// which to(peer, id) is true (nil: all of them). The root moves sessions
// with it when membership changes (rebalancing), to the nodes that newly
// hold them. The caller must not modify recs afterwards.
func (e *Engine) Push(to func(peer, id string) bool, recs ...model.Record) *Ticket {
	return e.publish(recs, to, true)
}

// publish is Publish and Push.
func (e *Engine) publish(recs []model.Record, to func(peer, id string) bool, repair bool) *Ticket {
	e.mu.RLock()
	live, closed := e.live, e.closed
	e.mu.RUnlock()
	t := &Ticket{e: e, closed: closed, empty: len(recs) == 0}
	if closed || len(recs) == 0 {
		return t
	}
	t.refs = t.inline[:0]
	if len(live) > len(t.inline) {
		t.refs = make([]ticketRef, 0, len(live))
	}
	hs := e.holdersOf(recs)
	for _, p := range live {
		sub := recsFor(p.id, recs, hs, to)
		if len(sub) == 0 {
			continue // holds none of them
		}
		gen, dropped, ok := p.enqueue(sub, repair)
		if !ok {
			continue // went down meanwhile: it does not count
		}
		t.refs = append(t.refs, ticketRef{p: p, gen: gen, dropped: dropped > 0})
	}
	return t
}

// Enqueue queues changes for every live peer (with a Placement, for those
// that hold their sessions) as Publish does, for a caller that will not
// wait for their acknowledgements: it allocates no Ticket. The caller must
// not modify recs (or their Keys) afterwards.
func (e *Engine) Enqueue(recs ...model.Record) {
	if len(recs) == 0 {
		return
	}
	live, closed := e.livePeers()
	if closed {
		return
	}
	hs := e.holdersOf(recs)
	for _, p := range live {
		if sub := recsFor(p.id, recs, hs, nil); len(sub) > 0 {
			p.enqueue(sub, false)
		}
	}
}

// HandleFrame handles one frame from peer. The network calls it from the
// peer's reader goroutine, in the order the frames were sent; it never
// blocks on the network (replies go through the peer's sender). A frame
// that does not decode is counted as Rejected, logged and dropped.
// HandleFrame keeps no reference to frame after it returns (decoded
// messages hold copies, and a frame kept for later is copied), so the
// caller may reuse its memory.
func (e *Engine) HandleFrame(from string, frame []byte) {
	if e.ctx.Err() != nil {
		return
	}
	_, msg, pooled, err := wire.DecodePooled(frame)
	defer pooled.Release()
	if err != nil {
		e.reject(from, err)
		return
	}
	e.mu.RLock()
	p := e.peers[from] // nil for a peer not (or no longer) up: replies are dropped
	parked := false
	if p == nil {
		switch msg.(type) {
		case *wire.Batch, *wire.TransferRequest, *wire.Fetch, *wire.EndPrincipal:
			// Needs an answer: keep it until PeerUp (see early.go). Parked
			// under e.mu, which PeerUp holds to take the parked frames, so
			// a PeerUp running meanwhile cannot miss it.
			parked = e.early.park(from, frame)
		}
	}
	e.mu.RUnlock()
	if p != nil {
		p.reach.hear()
	}
	if parked {
		if m, ok := msg.(*wire.Batch); ok {
			// Apply now; the parked copy applies again (idempotent) and
			// is acknowledged at PeerUp.
			e.apply(from, m.Records)
		}
		return
	}
	switch m := msg.(type) {
	case *wire.Batch:
		refused := e.apply(from, m.Records)
		if p != nil {
			p.sendAck(m.Seq, refused)
		}
	case *wire.Ack:
		if p != nil {
			p.handleAck(m.Seq, m.Refused)
		}
	case *wire.TransferRequest:
		e.handleTransferRequest(p, m)
	case *wire.TransferChunk:
		e.handleTransferChunk(p, from, m)
	case *wire.Digest:
		e.queueAntiEntropy(p, m)
	case *wire.Summary:
		e.queueAntiEntropy(p, m)
	case *wire.Fetch:
		e.handleFetch(p, m)
	case *wire.FetchReply:
		e.handleFetchReply(p, m)
	case *wire.EndPrincipal:
		e.handleEndPrincipal(p, m)
	case *wire.PrincipalEnded:
		e.handlePrincipalEnded(p, m)
	}
}

// apply applies recs from peer from to the store, after refusing those
// from too far in the future (see skewed) and observing the newest
// version of the rest, and returns how many it did not apply: refused for
// clock skew or by the store. It filters recs in place: they must be the
// engine's own (a decoded message).
func (e *Engine) apply(from string, recs []model.Record) (refused int) {
	if len(recs) == 0 {
		return 0
	}
	var newest model.Version
	ok := recs[:0]
	var skew []model.Record
	wall := e.cfg.Clock.Wall().UnixNano() // one reading for the whole batch
	for _, r := range recs {
		v := r.MaxVersion()
		if e.skewedAt(v, wall) {
			skew = append(skew, r)
			continue
		}
		newest = model.MaxVersion(newest, v)
		ok = append(ok, r)
	}
	if len(skew) > 0 {
		e.refuseSkewed(from, skew)
	}
	if len(ok) == 0 {
		return len(skew)
	}
	e.cfg.Clock.Observe(newest)
	refused = e.cfg.Store.Apply(ok)
	refused = min(max(refused, 0), len(ok))
	e.st.applied.Add(uint64(len(ok) - refused))
	e.st.refused.Add(uint64(refused))
	return refused + len(skew)
}

// reject counts and logs a frame that failed to decode (one line per
// logEvery at most, with the frames since the last).
func (e *Engine) reject(from string, err error) {
	e.st.rejected.Add(1)
	if n, ok := e.rejectLog.Allow(e.cfg.Clock.Wall(), 1); ok {
		e.log.Warn("replicate: frame rejected", "peer", from, "frames", n, "err", err)
	}
}

// spawn runs fn in a goroutine Close waits for; it returns false (and
// does not run fn) once the engine is closed.
func (e *Engine) spawn(fn func()) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
	return true
}

// livePeers returns the live peers (do not modify the slice) and whether
// the engine is closed.
func (e *Engine) livePeers() ([]*peer, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.live, e.closed
}

// notify returns a channel closed at the next broadcast. A waiter takes
// it before checking its condition, so that a change made in between
// still wakes it; with no waiter, a broadcast costs no channel.
func (e *Engine) notify() <-chan struct{} {
	e.notifyMu.Lock()
	defer e.notifyMu.Unlock()
	if e.notifyCh == nil {
		e.notifyCh = make(chan struct{})
	}
	return e.notifyCh
}

// broadcast wakes every Ticket.Wait and Flush to check their condition
// again: an ack arrived, a peer went down or the engine closed.
func (e *Engine) broadcast() {
	e.notifyMu.Lock()
	defer e.notifyMu.Unlock()
	if e.notifyCh != nil {
		close(e.notifyCh)
		e.notifyCh = nil
	}
}

// Flush waits until every change queued before it was called has been
// acknowledged by every live peer it was queued for, for a graceful
// shutdown; changes published meanwhile do not hold it up, and peers that
// go down stop counting. It returns the context's error (wrapped) if ctx
// ends first.
func (e *Engine) Flush(ctx context.Context) error {
	e.flushers.Add(1)
	defer e.flushers.Add(-1)
	e.mu.RLock()
	live, closed := e.live, e.closed
	e.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	// A ticket for everything queued so far: changes published after
	// Flush started do not hold it up.
	t := &Ticket{e: e}
	for _, p := range live {
		gen := p.queue.generation()
		if gen > 0 {
			t.refs = append(t.refs, ticketRef{p: p, gen: gen})
		}
	}
	if len(t.refs) == 0 {
		return nil
	}
	err := t.Wait(ctx, -1)
	switch {
	case e.ctx.Err() != nil:
		return ErrClosed // Close took the peers down, not a flush
	case err != nil:
		return fmt.Errorf("replicate: flush: %w", err)
	}
	return nil
}
