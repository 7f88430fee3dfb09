package peersession

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/replicate"
	"github.com/peersession/peersession/replicate/model"
)

// replication wires the Store to cluster/ (the network) and replicate/ (the
// protocol engine).
type replication struct {
	st   *Store
	cfg  ClusterConfig
	node *cluster.Node
	eng  *replicate.Engine
	part *partition // the placement in partitioned mode (ClusterConfig.Copies); nil in full replication
	hand *handoff   // partitioned mode: the pushes its peers have yet to acknowledge (handoff.go)
	// handoverWait bounds a push's wait for its peer's acknowledgement
	// (handoff.go): handoverWait, unless a test changed it.
	handoverWait time.Duration

	transferDur  atomic.Int64  // nanoseconds the state transfer took, once ended
	arrivals     *arrivals     // reads waiting for a change on its way (read.go)
	arrivalWait  time.Duration // how long it waits: FetchTimeout/20, at most maxArrivalWait
	alone        atomic.Bool   // became ready without any peer: sync from the first one
	ctx          context.Context
	ready        chan struct{} // closed when the join-time state transfer ended and the clock was compared (waitClock)
	readyErr     error         // set before ready is closed
	stopTransfer context.CancelFunc

	stamps *stampKeys // authenticate the version stamps in cookies (stampmac.go)
	guard  fetchGuard // bounds the fetches reads send (fetchguard.go)
	fence  clockFence // refuses writes while this node's clock is far from its peers' (clockfence.go)
}

// handler adapts cluster's callbacks to the engine. The engine is set
// before the node's Join, and cluster calls the handler only from Join on:
// a peer that joins this node first (between cluster.New and Join) is not
// missed but delivered then.
type handler struct {
	eng  atomic.Pointer[replicate.Engine]
	repl atomic.Pointer[replication]
	part atomic.Pointer[partition] // set in partitioned mode: told of peers before the engine
}

func (h *handler) PeerUp(p cluster.Peer) {
	if pt := h.part.Load(); pt != nil {
		pt.up(p)
	}
	if e := h.eng.Load(); e != nil {
		e.PeerUp(p.ID)
	}
	if r := h.repl.Load(); r != nil {
		r.peerUp()
	}
}

func (h *handler) PeerDown(p cluster.Peer, left bool) {
	if pt := h.part.Load(); pt != nil {
		pt.down(p)
	}
	if e := h.eng.Load(); e != nil {
		e.PeerDown(p.ID, left)
	}
}

func (h *handler) Frame(peer string, frame []byte) {
	if e := h.eng.Load(); e != nil {
		e.HandleFrame(peer, frame)
	}
}

var _ cluster.StreamWatcher = (*handler)(nil)

func (h *handler) StreamLost(peer string) {
	if e := h.eng.Load(); e != nil {
		e.StreamLost(peer)
	}
}

// startReplication starts the cluster node and the replication engine
// for st, sets st.repl, and joins the cluster; h holds the tests' seams
// (see hooks). st.repl is set before the node joins (and before handler
// calls reach st), and never again.
func startReplication(st *Store, cfg ClusterConfig, h hooks) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	handler := &handler{}
	cc := cfg.clusterConfig(st.cfg.Logger, handler)
	cc.Clock = st.cfg.Now // sent in ping acks: peers measure its offset
	if h.faults != nil {
		h.faults(&cc)
	}
	node, err := cluster.New(cc)
	if err != nil {
		if cerr := clusterError(err); cerr != nil {
			return cerr // a field to fix, named as in ClusterConfig
		}
		return fmt.Errorf("peersession: start cluster node: %w", err)
	}
	if h.nodeStarted != nil {
		h.nodeStarted(node)
	}
	arr := &arrivals{}
	var part *partition
	var placement replicate.Placement // nil: full replication
	if cfg.Copies > 0 {
		part = newPartition(cfg.Copies, node.Self())
		placement = part
		handler.part.Store(part)
		st.part.Store(part)
	}
	ackDelay := time.Duration(0) // the default: an Ack may wait up to 2ms for a Batch to go with
	if cfg.Consistency == Sync {
		ackDelay = -1 // a Sync write waits for its Acks: each goes at once
	}
	eng, err := replicate.New(replicate.Config{
		Self:      node.Self().ID,
		Network:   node,
		Store:     wakingStore{replStore{st}, arr},
		Clock:     st.clock,
		Placement: placement,
		EndPrincipal: func(ctx context.Context, p string) ([]string, error) {
			if handler.repl.Load() == nil { // st.repl is set before it
				return nil, errors.New("peersession: this node is still starting")
			}
			return st.endLocalPrincipal(ctx, p)
		},
		Logger:              st.cfg.Logger,
		AntiEntropyInterval: cfg.AntiEntropyInterval,
		AckDelay:            ackDelay,
		// A peer silent to a transfer request may have missed this
		// node's gossip: push/pull membership with it (nudge.go).
		Nudge: (&nudger{pushPull: node.PushPull, every: replicate.DefaultTransferRetry, now: time.Now}).nudge,
	})
	if err != nil {
		_ = node.Close()
		return fmt.Errorf("peersession: start replication: %w", err)
	}
	handler.eng.Store(eng)
	r := &replication{st: st, cfg: cfg, node: node, eng: eng, part: part, ready: make(chan struct{}),
		arrivals: arr, arrivalWait: min(cfg.FetchTimeout/20, maxArrivalWait),
		stamps: newStampKeys(cfg.Keys, cfg.Label)}
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx, r.stopTransfer = ctx, cancel
	r.fence.fencedLog.Every, r.fence.clearLog.Every = 10*time.Second, 10*time.Second
	st.clock.SetTrust(func(wall int64) bool { return r.fence.trusted(r, wall) })
	if part != nil {
		r.hand = newHandoff(r)
		r.handoverWait = cmp.Or(h.handoverWait, handoverWait)
		// Every read of a session this node does not hold is a fetch:
		// past maxFetches a read waits its turn rather than be shed
		// (and told there is no session).
		r.guard.queue = cfg.FetchTimeout
	}
	st.wg.Add(1)
	go r.clockFenceLoop()
	if part != nil {
		st.wg.Add(1)
		go r.rebalanceLoop()
	}
	st.repl = r
	handler.repl.Store(r) // before Join too: a PeerUp may come right after it
	joined := true
	var refused error // seeds answered but refused this node: WaitReady's error
	if err := node.Join(ctx); err != nil {
		joined = false
		if refused = clusterError(err); refused != nil {
			st.cfg.Logger.Error(refused.Error())
		} else {
			st.cfg.Logger.Warn("peersession: no seed answered yet; will keep trying", "err", err)
		}
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		if refused != nil {
			r.readyErr = refused
			close(r.ready)
			return
		}
		start := time.Now()
		if joined {
			r.waitPeers(ctx)
		}
		r.readyErr = r.transferLoop(ctx)
		r.transferDur.Store(int64(max(time.Since(start), 1)))
		if r.readyErr == nil {
			r.waitClock(ctx)
		}
		if r.readyErr == nil && len(eng.Stats().Peers) == 0 {
			r.alone.Store(true) // ready with nobody to sync from
			if len(eng.Stats().Peers) > 0 {
				r.peerUp() // one came up since: its PeerUp found alone unset
			}
		}
		close(r.ready)
	}()
	return nil
}

// peerUp runs the state transfer a node skipped because no peer was
// reachable when it started (it was the first up, or its seeds were
// unreachable): the first peer that appears later is asked for its state,
// in the background. Anti-entropy would get there too, but later.
func (r *replication) peerUp() {
	if !r.alone.CompareAndSwap(true, false) || r.ctx.Err() != nil {
		return
	}
	r.st.wg.Add(1)
	go func() {
		defer r.st.wg.Done()
		if err := r.transferLoop(r.ctx); err != nil && r.ctx.Err() == nil {
			r.st.cfg.Logger.Warn("peersession: late state transfer failed; anti-entropy will repair", "err", err)
		}
	}()
}

// waitPeers waits, briefly, until the engine has heard of every peer the
// join found (membership events are delivered asynchronously), so that the
// state transfer has somebody to ask.
func (r *replication) waitPeers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	want := r.node.NumAlive() - 1 // every member the join found, but us
	for len(r.eng.Stats().Peers) < want {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// transferLoop runs the join-time state transfer (replicate.Engine.Transfer: the
// whole state from one peer, then what differs from each other peer) until
// it completes, or there is no peer to ask. Transfer itself turns to another
// peer when its source goes away mid-transfer or stays silent, and asks
// again a peer that sent nothing (a request or answer lost, declined, or
// parked by a peer that does not know this node yet), so an attempt is not
// bounded in time: a new attempt would ask under a new request ID, and the
// answers to the old one, and the old requests still waiting at a busy
// peer (which then declines the new one), would only delay the join. An
// attempt that finds every peer gone (some may be wrongly declared dead
// under load) is made again; unless the node has refused a peer's stream
// for want of a common wire format (cluster.FormatError): that is the
// error then.
func (r *replication) transferLoop(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		err := r.eng.Transfer(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if fe := r.node.FormatConflict(); fe != nil {
			// A peer runs a release with no wire format in common with
			// this one: a deploy to fix, not a fault retrying cures.
			return fmt.Errorf("peersession: state transfer failed (%v), and %w", err, fe)
		}
		r.st.cfg.Logger.Warn("peersession: state transfer failed; retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// publish replicates local changes; in Sync mode it waits for MinAcks
// acknowledgements.
func (r *replication) publish(ctx context.Context, deltas []model.Record) error {
	_, err := r.publishTicket(ctx, deltas, false)
	return err
}

// publishTicket is publish; with ticket set it always returns the
// changes' Ticket (nil otherwise when nothing waits for it).
func (r *replication) publishTicket(ctx context.Context, deltas []model.Record, ticket bool) (*replicate.Ticket, error) {
	everyPeer := ctx.Value(waitForPeersKey{}) != nil
	if r.cfg.Consistency != Sync && !everyPeer {
		if ticket {
			return r.eng.Publish(deltas...), nil
		}
		r.eng.Enqueue(deltas...) // nothing waits: no Ticket
		return nil, nil
	}
	t := r.eng.Publish(deltas...)
	if r.cfg.Consistency != Sync {
		// WaitForPeers in Async mode: the wait is worth what a read's
		// fetch is (FetchTimeout), and its end is no error: the change is
		// stored here and keeps replicating. Like a fetch, it does not wait
		// for a peer that does not answer (its stream was reset: killed;
		// or it left a fetch unanswered: frozen) until the failure
		// detector declares it dead.
		ctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		defer cancel()
		if err := t.WaitResponsive(ctx); err != nil || !t.Held() {
			r.st.stats.peerWaitsLate.Add(1)
		}
		return t, nil
	}
	minAcks := r.cfg.MinAcks
	if everyPeer {
		minAcks = AllPeers
	}
	if r.part != nil && minAcks > t.Peers() && t.Peers() > 0 {
		// Partitioned: only the live holders other than this node can
		// acknowledge (Copies-1 of them on a holder).
		minAcks = t.Peers()
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.SyncTimeout)
	defer cancel()
	err := r.waitAcks(ctx, t, deltas, minAcks)
	if err == nil {
		return t, nil
	}
	if r.cfg.AcceptOnTimeout {
		r.st.cfg.Logger.Warn("peersession: sync write not acknowledged in time; accepted (AcceptOnTimeout)", "err", err)
		return t, nil
	}
	return t, fmt.Errorf("%w (MinAcks %d, SyncTimeout %v): %v", ErrNotReplicated, minAcks, r.cfg.SyncTimeout, err)
}

// leaveHandover bounds how long a graceful Close, in partitioned mode,
// waits for its sessions to be handed over (see handOverAll).
const leaveHandover = 10 * time.Second

// errNoPeerToAsk is fetchRecord's error in partitioned mode when this node
// has no peer.
var errNoPeerToAsk = errors.New("peersession: no peer to ask")

// close flushes queued changes, leaves the cluster and stops everything,
// in that order.
func (r *replication) close() error {
	if r.part != nil {
		hctx, cancel := context.WithTimeout(context.Background(), leaveHandover)
		r.handOverAll(hctx)
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	flushErr := r.eng.Flush(ctx)
	// A leave that times out waiting for memberlist's broadcast is not a
	// failure worth reporting: the changes are flushed, the peers were
	// told on their streams, and they declare the node gone either way.
	if err := r.node.Leave(2 * time.Second); err != nil {
		r.st.cfg.Logger.Info("peersession: leave not confirmed by gossip in time", "err", err)
	}
	r.stopTransfer()
	r.eng.Close()
	closeErr := r.node.Close()
	return errors.Join(flushErr, closeErr)
}

// WaitReady blocks until the store has its share of the cluster's state:
// at once on a single node; after the join-time state transfer in a
// cluster (the whole state from one peer, then what the others hold that
// it lacked; immediately when it is the first node), and once its clock
// has been compared with a peer's (a probe interval or so; at most three, or 3 s),
// so that a node started with a wrong clock is clock-fenced (ErrClockSkew)
// before it takes a write. Serve requests only after it returns, as Tomcat waits for its state transfer before opening
// its HTTP port.
//
// A node whose seeds answered but refused it (ClusterConfig.Keys or Label
// differ, or a live member has its Name) is misconfigured: WaitReady
// returns, at once, an error saying which field to fix; errors.Is matches
// it to cluster.ErrKeysDiffer, ErrLabelsDiffer or ErrNameTaken. A node
// whose seeds do not answer at all becomes ready alone, and joins them
// when they come up. A node that gets no state because its peers run a
// release with no wire format in common with its own (an upgrade that
// skipped a release: see docs/guarantees.md) gets an error naming both
// formats; errors.Is matches it to cluster.ErrFormatsDiffer.
func (st *Store) WaitReady(ctx context.Context) error {
	if st.repl == nil {
		return nil
	}
	select {
	case <-st.repl.ready:
		return st.repl.readyErr
	case <-ctx.Done():
		return fmt.Errorf("peersession: waiting for the state transfer: %w", ctx.Err())
	}
}

// replicateOut hands local changes to replication; in Sync mode it waits
// for the acknowledgements. A single node has nothing to do.
func (st *Store) replicateOut(ctx context.Context, deltas ...model.Record) error {
	if st.repl == nil {
		return nil
	}
	if err := st.repl.publish(ctx, deltas); err != nil {
		return fmt.Errorf("peersession: %w", err)
	}
	return nil
}

// waitForPeersKey marks a context made by WaitForPeers.
type waitForPeersKey struct{}

// WaitForPeers returns a copy of ctx under which Store.Save and
// Store.Delete return only once every live peer holds the change, so that
// the client's next request finds it on whichever node it reaches, even
// when the client presents no version stamp (see Store.Middleware's
// cookie). It is for adapters whose framework writes its own cookie (scs),
// and costs one replication round trip per save.
//
// In Async mode the wait is bounded by ClusterConfig.FetchTimeout and its
// end is not an error (the change is stored and keeps replicating; it is
// counted in Stats.PeerWaitsLate); in Sync mode it replaces MinAcks with
// AllPeers, within SyncTimeout. A single node does not wait.
func WaitForPeers(ctx context.Context) context.Context {
	return context.WithValue(ctx, waitForPeersKey{}, true)
}
