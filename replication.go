package peersession

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/replicate"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// Consistency says when a write counts as done in a cluster.
type Consistency int

const (
	// Async (the default) returns once the change is applied locally;
	// peers get it within the replication lag, typically well under a
	// millisecond. A node that dies can take its last unreplicated
	// changes with it.
	Async Consistency = iota
	// Sync returns only once ClusterConfig.MinAcks peers have applied the
	// change, so a single node can die without losing an acknowledged
	// write.
	Sync
)

// AllPeers as ClusterConfig.MinAcks waits, in Sync mode, for every peer
// that was live when the write was made.
const AllPeers = -1

// ClusterConfig joins a Store to a cluster. Every field but Name has a
// default; Keys is required unless every address is loopback or Insecure
// is set.
type ClusterConfig struct {
	// Name is this node's name, unique in the cluster and stable across
	// restarts. Required.
	Name string
	// BindAddr is the IP address to listen on for gossip and replication;
	// empty means 127.0.0.1. Binding a non-loopback address requires Keys
	// (or Insecure).
	BindAddr string
	// BindPort is the gossip port (TCP and UDP); zero picks a free port.
	// When it is taken, New fails with an error that errors.Is matches to
	// syscall.EADDRINUSE.
	BindPort int
	// AdvertiseAddr and AdvertisePort are what peers dial; empty and zero
	// mean BindAddr and the bound port. Set them behind NAT.
	AdvertiseAddr string
	AdvertisePort int
	// StreamPort is the replication stream port on BindAddr; zero picks a
	// free port (it is advertised to peers in gossip).
	StreamPort int
	// Join lists gossip addresses ("host:port") of nodes to join. A node
	// keeps retrying them, so members may start in any order and a
	// partitioned node finds its way back.
	Join []string
	// RejoinInterval is how often Join is retried; zero means 10s.
	RejoinInterval time.Duration
	// Label separates clusters sharing a network; nodes with another
	// label ignore each other.
	Label string
	// Keys is the cluster keyring: 32-byte keys, the first one primary
	// (used to send); the others are still accepted, for rotation. Keys
	// encrypt gossip (AES-256-GCM) and secure the replication streams
	// (Noise NNpsk0). See ParseKey and GenerateKey.
	Keys [][]byte
	// Insecure allows a non-loopback BindAddr without Keys. Never in
	// production: anyone who can reach the port can read and forge
	// sessions.
	Insecure bool

	// Consistency is Async (the default) or Sync.
	Consistency Consistency
	// MinAcks is, in Sync mode, how many peers must have applied a change
	// before the write returns; zero means 1, AllPeers means every live
	// peer.
	MinAcks int
	// SyncTimeout bounds the wait for acknowledgements in Sync mode; zero
	// means one second. On timeout the change stays applied locally and
	// keeps replicating, and the commit fails with ErrNotReplicated
	// (the middleware answers 500) unless AcceptOnTimeout is set, which
	// logs and counts instead.
	SyncTimeout     time.Duration
	AcceptOnTimeout bool
	// FetchTimeout bounds the wait when a request presents a session that
	// this node lacks or holds at an older version than the client has
	// seen, and the node asks its peers; zero means 100ms.
	FetchTimeout time.Duration
	// AntiEntropyInterval is how often a node compares digests with a
	// random peer and repairs differences; zero means 30s, negative turns
	// it off.
	AntiEntropyInterval time.Duration

	// Memberlist, when set, adjusts the memberlist configuration after
	// peersession has set it up (tests shorten failure detection).
	Memberlist func(*memberlist.Config)

	// faults, set only by this package's tests, plugs a fault-injecting
	// network (internal/faultnet) into the cluster configuration.
	faults func(*cluster.Config)
	// nodeStarted, set only by this package's tests, runs between starting
	// the cluster node and starting the replication engine.
	nodeStarted func(*cluster.Node)
}

// ErrNotReplicated is returned by a Sync-mode commit whose change was not
// acknowledged by ClusterConfig.MinAcks peers within SyncTimeout, or that
// a peer refused (its store full, the session expired there, its clock a
// minute or more behind this node's: the peer logs why, and its Stats
// count them as Refused or, for the clock, Replication.Skewed). The change
// is applied locally and keeps replicating.
var ErrNotReplicated = errors.New("peersession: change not acknowledged by enough peers in time")

// replication wires the Store to cluster/ (the network) and replicate/ (the
// protocol engine).
type replication struct {
	st   *Store
	cfg  ClusterConfig
	node *cluster.Node
	eng  *replicate.Engine

	transferDur  atomic.Int64 // nanoseconds the state transfer took, once ended
	alone    atomic.Bool  // became ready without any peer: sync from the first one
	ctx      context.Context
	ready    chan struct{} // closed when the join-time state transfer ended
	readyErr error         // set before ready is closed
	stopTransfer context.CancelFunc
}

// handler adapts cluster's callbacks to the engine. The engine is set
// before the node's Join, and cluster calls the handler only from Join on:
// a peer that joins this node first (between cluster.New and Join) is not
// missed but delivered then.
type handler struct {
	eng  atomic.Pointer[replicate.Engine]
	repl atomic.Pointer[replication]
}

func (h *handler) PeerUp(p cluster.Peer) {
	if e := h.eng.Load(); e != nil {
		e.PeerUp(p.ID)
	}
	if r := h.repl.Load(); r != nil {
		r.peerUp()
	}
}

func (h *handler) PeerDown(p cluster.Peer, left bool) {
	if e := h.eng.Load(); e != nil {
		e.PeerDown(p.ID, left)
	}
}

func (h *handler) Frame(peer string, frame []byte) {
	if e := h.eng.Load(); e != nil {
		e.HandleFrame(peer, frame)
	}
}

func startReplication(st *Store, cfg ClusterConfig) (*replication, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("peersession: ClusterConfig.Name is empty; give each node a unique, stable name")
	}
	if cfg.MinAcks == 0 {
		cfg.MinAcks = 1
	}
	if cfg.SyncTimeout == 0 {
		cfg.SyncTimeout = time.Second
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 100 * time.Millisecond
	}
	h := &handler{}
	cc := cluster.Config{
		Name:           cfg.Name,
		BindAddr:       cfg.BindAddr,
		BindPort:       cfg.BindPort,
		AdvertiseAddr:  cfg.AdvertiseAddr,
		AdvertisePort:  cfg.AdvertisePort,
		StreamPort:     cfg.StreamPort,
		Seeds:          cfg.Join,
		RejoinInterval: cfg.RejoinInterval,
		Label:          cfg.Label,
		Keys:           cfg.Keys,
		Insecure:       cfg.Insecure,
		Logger:         st.cfg.Logger,
		Handler:        h,
		Tune:           cfg.Memberlist,
	}
	if cfg.faults != nil {
		cfg.faults(&cc)
	}
	node, err := cluster.New(cc)
	if err != nil {
		return nil, fmt.Errorf("peersession: start cluster node: %w", err)
	}
	if cfg.nodeStarted != nil {
		cfg.nodeStarted(node)
	}
	eng, err := replicate.New(replicate.Config{
		Self:                node.Self().ID,
		Network:             node,
		Store:               replStore{st},
		Clock:               st.clock,
		Logger:              st.cfg.Logger,
		AntiEntropyInterval: cfg.AntiEntropyInterval,
	})
	if err != nil {
		_ = node.Close()
		return nil, fmt.Errorf("peersession: start replication: %w", err)
	}
	h.eng.Store(eng)
	r := &replication{st: st, cfg: cfg, node: node, eng: eng, ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx, r.stopTransfer = ctx, cancel
	h.repl.Store(r) // before Join too: a PeerUp may come right after it
	joined := true
	if err := node.Join(ctx); err != nil {
		joined = false
		st.cfg.Logger.Warn("peersession: no seed answered yet; will keep trying", "err", err)
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		start := time.Now()
		if joined {
			r.waitPeers(ctx)
		}
		r.readyErr = r.transferLoop(ctx)
		r.transferDur.Store(int64(max(time.Since(start), 1)))
		if r.readyErr == nil && len(eng.Stats().Peers) == 0 {
			r.alone.Store(true) // ready with nobody to sync from
			if len(eng.Stats().Peers) > 0 {
				r.peerUp() // one came up since: its PeerUp found alone unset
			}
		}
		close(r.ready)
	}()
	return r, nil
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
// peer when its source goes away mid-transfer; an attempt that times out,
// or finds every peer gone (some may be wrongly declared dead under load),
// is made again.
func (r *replication) transferLoop(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	attempt := 5 * time.Second // grows: a large state may need longer
	for {
		// Bound each attempt: a request or final chunk lost with a broken
		// connection would otherwise keep the node from ever being ready.
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := r.eng.Transfer(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		attempt = min(2*attempt, 5*time.Minute)
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
	if r.cfg.Consistency != Sync {
		r.eng.Enqueue(deltas...) // nothing waits: no Ticket
		return nil
	}
	t := r.eng.Publish(deltas...)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.SyncTimeout)
	defer cancel()
	err := t.Wait(ctx, r.cfg.MinAcks)
	if err == nil {
		return nil
	}
	if r.cfg.AcceptOnTimeout {
		r.st.cfg.Logger.Warn("peersession: sync write not acknowledged in time; accepted (AcceptOnTimeout)", "err", err)
		return nil
	}
	return fmt.Errorf("%w (MinAcks %d, SyncTimeout %v): %v", ErrNotReplicated, r.cfg.MinAcks, r.cfg.SyncTimeout, err)
}

// fetch asks the peers for session id and merges what they have; it
// reports whether anything new arrived.
func (r *replication) fetch(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	rec, found, err := r.eng.Fetch(ctx, id)
	if err != nil || !found || checkValues(&rec) != nil {
		return false
	}
	prev, next, err := r.st.mergeIn(rec, applyOpts{})
	if err != nil {
		return false
	}
	r.st.fireEvents(prev, next, true)
	return prev != next
}

// close flushes queued changes, leaves the cluster and stops everything,
// in that order.
func (r *replication) close() error {
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
// it lacked; immediately when it is the first node). Serve requests only
// after it returns, as Tomcat waits for its state transfer before opening
// its HTTP port.
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

// replStore is the Store as replicate sees it.
type replStore struct{ st *Store }

// Apply merges remote changes. A change to a session this node does not
// hold yet (it arrived before the state transfer or a repair brought the
// session) is kept as a partial record, invisible until the rest arrives,
// so that the acknowledgement sent for it is true.
func (a replStore) Apply(recs []model.Record) (refused int) {
	// One clock reading for the whole batch. mergeIn copies each record's
	// keys into the session's own entry: a record's Keys slice is the
	// engine's (replicate.Store).
	opts := applyOpts{now: a.st.cfg.Now()}
	for _, rec := range recs {
		if err := checkValues(&rec); err != nil {
			a.st.refusals.note(a.st.cfg.Logger, opts.now, rec.ID, fmt.Errorf("malformed value: %w", err))
			refused++
			continue
		}
		prev, next, err := a.st.mergeIn(rec, opts)
		if err != nil {
			a.st.refusals.note(a.st.cfg.Logger, opts.now, rec.ID, err)
			refused++
			continue
		}
		a.st.fireEventsAt(prev, next, true, opts.now)
	}
	a.st.stats.refused.Add(int64(refused))
	return refused
}

// checkValues checks that every value of a remote record is well-formed
// msgpack, so that a later Get cannot be made to allocate what a peer
// declared but did not send.
func checkValues(rec *model.Record) error {
	for _, kv := range rec.Keys {
		if kv.Value.Deleted {
			continue
		}
		if err := wire.CheckValue(kv.Value.Data, wire.Limits{}); err != nil {
			return fmt.Errorf("key %q: %w", kv.Key, err)
		}
	}
	return nil
}

// Lookup returns the record for id, tombstones included, unless expired.
func (a replStore) Lookup(id string) (model.Record, bool) {
	e := a.st.shards.get(id)
	if e == nil || (!e.rec.IsDead() && e.rec.Expired(a.st.cfg.Now())) {
		return model.Record{}, false
	}
	return e.rec, true
}

// Range calls fn with every live session and tombstone.
func (a replStore) Range(fn func(model.Record) bool) {
	now := a.st.cfg.Now()
	a.st.shards.each(func(e *entry) bool {
		if !e.rec.IsDead() && e.rec.Expired(now) {
			return true
		}
		return fn(e.rec)
	})
}
