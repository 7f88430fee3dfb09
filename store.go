// Package peersession keeps HTTP sessions in memory and, when clustered,
// replicates every change to the other instances of the app, so that a user
// stays logged in whichever instance the load balancer picks and when one
// of them dies — without a session server.
//
// A Store holds the sessions; its Middleware loads a request's session
// lazily from the cookie and saves it, if changed, just before the response
// headers go out. Handlers use FromContext:
//
//	store, err := peersession.New(peersession.Config{})
//	...
//	defer store.Close()
//	http.ListenAndServe(":8080", store.Middleware(mux))
//
//	// in a handler:
//	s := peersession.FromContext(r.Context())
//	err := s.Set("user_id", 42)
//
// Values are encoded with msgpack when they are set, so mutating a Go value
// after Set changes nothing stored. Each key carries its own version (a
// hybrid logical clock), so two requests that change different keys of one
// session on two nodes both survive.
package peersession

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/persist"
	"github.com/peersession/peersession/replicate/model"
)

// Store holds sessions in a sharded in-memory map and, when Config.Cluster
// is set, replicates them to its peers. Create one with New; it is safe for
// concurrent use. Close it when done.
type Store struct {
	cfg        Config
	clock      *model.Clock
	shards     *shards
	principals principalIndex
	stats      counters
	refusals   refusalLog                // changes from peers the store refused
	admin      adminState                // the admin page's recent warnings and CSRF key (admin.go)
	repl       *replication              // nil on a single node
	part       atomic.Pointer[partition] // the placement in partitioned mode (partition.go); set before the node joins
	disk       *persist.Disk             // nil without Config.DataDir

	count atomic.Int64 // entries that are not tombstones
	bytes atomic.Int64 // sum of their sizes
	tombs tombstones   // the tombstones' count and budget

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	stop      chan struct{} // closed by Close to stop the sweeper
	wg        sync.WaitGroup
}

// New validates cfg, fills in its defaults and starts a Store. With
// Config.Cluster set it also joins the cluster and starts the state
// transfer; see Store.WaitReady.
func New(cfg Config) (*Store, error) { return newStore(cfg, hooks{}) }

// hooks are this package's tests' seams into New: a fault-injecting
// network (internal/faultnet) plugged into the cluster configuration, and
// a pause between starting the cluster node and the replication engine.
type hooks struct {
	faults      func(*cluster.Config)
	nodeStarted func(*cluster.Node)
	// handoverWait replaces the constant of that name (rebalance.go).
	handoverWait time.Duration
}

// newStore is New with the tests' seams.
func newStore(cfg Config, h hooks) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	st := &Store{
		cfg:      cfg,
		shards:   newShards(),
		refusals: newRefusalLog(),
		stop:     make(chan struct{}),
	}
	if cfg.Cluster != nil {
		// Every record of a clustered store names its node.
		st.cfg.Logger = st.cfg.Logger.With("node", cfg.Cluster.Name)
	}
	st.cfg.Logger = st.admin.init(st.cfg.Logger) // keeps recent warnings for AdminHandler
	st.clock = model.NewClock(nodeID(), cfg.Now)
	if cfg.DataDir != "" {
		if st.disk, err = openDisk(st); err != nil {
			return nil, err
		}
	}
	if cfg.Cluster != nil {
		if err = startReplication(st, *cfg.Cluster, h); err != nil { // sets st.repl
			if st.disk != nil {
				_ = st.disk.Close()
			}
			return nil, err
		}
	}
	st.wg.Add(1)
	go st.sweepLoop()
	return st, nil
}

// Close stops the store: it stops taking writes, in partitioned mode
// (ClusterConfig.Copies) hands the sessions it holds over to the nodes
// that hold them without it (bounded: 10 s), flushes queued changes to
// the peers (bounded), leaves the cluster, saves the last changes to
// Config.DataDir and waits for every goroutine the store started. It is
// safe to call more than once; later calls return the first call's result.
func (st *Store) Close() error {
	st.closeOnce.Do(func() {
		st.closed.Store(true)
		if st.repl != nil {
			st.closeErr = st.repl.close()
		}
		close(st.stop)
		st.wg.Wait()
		if st.disk != nil {
			st.closeErr = errors.Join(st.closeErr, st.disk.Close())
		}
	})
	return st.closeErr
}

// Len returns how many sessions the store holds, counting those expired
// but not yet swept.
func (st *Store) Len() int { return int(st.count.Load()) }

// alive reports whether e is a live session at now. A partial record (a
// replicated change that arrived before the session itself, so without a
// creation time) is held but not alive until the rest arrives.
func (st *Store) alive(e *entry, now time.Time) bool {
	return e != nil && !e.partial() && !e.rec.IsDead() && !e.rec.Expired(now)
}

// partial reports whether e holds changes to a session whose creation has
// not arrived yet.
func (e *entry) partial() bool { return e.rec.Created == 0 && !e.rec.IsDead() }

// lookup returns the live entry for id, or nil.
func (st *Store) lookup(id string) *entry {
	e := st.shards.get(id)
	if !st.alive(e, st.cfg.Now()) {
		return nil
	}
	return e
}

// applyOpts says how mergeIn treats one change.
type applyOpts struct {
	mustExist bool      // a local update: the session must still be alive
	now       time.Time // the time to judge expiry at; zero means read the clock
	// replaces is set for a RenewID's new session, which ends the old one
	// in the same commit: it adds no session, so MaxSessions does not
	// refuse it (a logged-in user's re-login works at the cap).
	replaces bool
	// existing is set for a copy of a session that lives on its holders
	// (partitioned mode: a write on a node that does not hold it, or did
	// not when the request loaded it): no creation, so MaxSessions does
	// not refuse it (a logged-in user's write works at the cap).
	existing bool
}

// mergeIn merges delta into the stored session and returns the entry before
// (nil if none) and after. It enforces the size and count limits and
// refuses changes that would bring back an expired session, leaving the
// stored session untouched on error. prev == next means delta held nothing
// new.
func (st *Store) mergeIn(delta model.Record, o applyOpts) (prev, next *entry, err error) {
	prev, next, err = st.mergeShard(delta, o)
	if err == nil && next != prev && st.disk != nil {
		st.disk.Dirty(delta.ID) // saved as it is when the writer gets to it
	}
	if pt := st.part.Load(); pt != nil && err == nil && next != prev && !pt.holds(delta.ID) {
		pt.strays.add(delta.ID) // handed over to its holders, then dropped (rebalance.go)
	}
	if next != prev && next.rec.IsDead() && st.tombs.count.Load() > int64(st.cfg.MaxTombstones) {
		st.dropOldTombstones()
	}
	return prev, next, err
}

// mergeShard is mergeIn's work under delta's shard lock.
func (st *Store) mergeShard(delta model.Record, o applyOpts) (prev, next *entry, err error) {
	now := o.now
	if now.IsZero() {
		now = st.cfg.Now()
	}
	sh := st.shards.of(delta.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()

	prev = sh.m[delta.ID]
	var base model.Record
	if prev != nil {
		base = prev.rec
	}
	wasLive := st.alive(prev, now)
	if o.mustExist && !wasLive {
		return prev, prev, ErrSessionEnded
	}
	if prev != nil && !model.Newer(base, delta) {
		return prev, prev, nil
	}
	next, keys := newEntry(model.MergedLen(base, delta))
	merged := model.MergeInto(base, delta, keys)
	switch {
	case merged.IsDead():
		if merged.Deadline != 0 && now.UnixNano() >= merged.Deadline+int64(tombstoneGrace) {
			return prev, prev, errStale // past the tombstone window: nothing to keep
		}
	case merged.Expired(now):
		return prev, prev, errStale // never bring back an expired session
	case (prev == nil || prev.partial()) && merged.Created != 0 && st.tombs.forgotten(&merged):
		return prev, prev, errForgotten
	}
	size := 0
	if !merged.IsDead() {
		size = sessionSize(&merged)
		if size > st.cfg.MaxSessionBytes && (prev == nil || size > prev.size) {
			return prev, prev, fmt.Errorf("%w: %d bytes, over Config.MaxSessionBytes (%d); store less in the session", ErrTooLarge, size, st.cfg.MaxSessionBytes)
		}
		if (prev == nil || prev.rec.IsDead() || prev.partial()) && !merged.IsDead() && merged.Created != 0 &&
			!o.replaces && !o.existing && st.count.Load() >= int64(st.cfg.MaxSessions) {
			return prev, prev, fmt.Errorf("%w: Config.MaxSessions (%d) reached", ErrTooManySessions, st.cfg.MaxSessions)
		}
		if merged.Created != 0 && !o.replaces { // partial records are not counted (see account)
			held := 0
			if prev != nil && !prev.rec.IsDead() && !prev.partial() {
				held = prev.size
			}
			if size > held && st.bytes.Load()+int64(size-held) > st.cfg.MaxBytes {
				return prev, prev, fmt.Errorf("%w: Config.MaxBytes (%d) reached", ErrTooManySessions, st.cfg.MaxBytes)
			}
		}
	}
	*next = entry{rec: merged, size: size, stamp: merged.MaxVersion().Wall}
	sh.m[delta.ID] = next
	st.principals.move(delta.ID, livePrincipal(prev), livePrincipal(next))
	st.account(prev, next)
	return prev, next, nil
}

// transientEntry returns an entry holding rec that is not stored (a
// fetched copy on a node that does not hold the session, in partitioned
// mode), or nil if rec is expired or a tombstone past its window.
func (st *Store) transientEntry(rec model.Record) *entry {
	now := st.cfg.Now()
	if rec.IsDead() {
		if rec.Deadline != 0 && now.UnixNano() >= rec.Deadline+int64(tombstoneGrace) {
			return nil
		}
	} else if rec.Expired(now) {
		return nil
	}
	e, keys := newEntry(len(rec.Keys))
	rec.Keys = append(keys, rec.Keys...)
	size := 0
	if !rec.IsDead() {
		size = sessionSize(&rec)
	}
	*e = entry{rec: rec, size: size, stamp: rec.MaxVersion().Wall, fetched: true}
	return e
}

// account updates the count, byte and tombstone totals for an entry
// replaced by next (nil when removed).
func (st *Store) account(prev, next *entry) {
	dead := func(e *entry) int64 {
		if e != nil && e.rec.IsDead() {
			return 1
		}
		return 0
	}
	st.tombs.count.Add(dead(next) - dead(prev))
	in := func(e *entry) (int64, int64) {
		if e == nil || e.rec.IsDead() || e.partial() {
			return 0, 0
		}
		return 1, int64(e.size)
	}
	pc, pb := in(prev)
	nc, nb := in(next)
	st.count.Add(nc - pc)
	st.bytes.Add(nb - pb)
}

func livePrincipal(e *entry) string {
	if e == nil || e.rec.IsDead() || e.partial() {
		return ""
	}
	return e.rec.Principal
}

// tombstoneGrace is how long a tombstone outlives the absolute deadline of
// the session it ended, to allow for clock skew between nodes. After that
// any copy of the session is expired everywhere, so nothing can bring it
// back and the tombstone is dropped.
const tombstoneGrace = time.Minute

// errForgotten is mergeIn's refusal of a session this node does not hold
// and may have dropped the tombstone of (see tombstones.go).
var errForgotten = fmt.Errorf("peersession: change refers to a session that may have ended here (its tombstone was dropped at Config.MaxTombstones)")

// keyOverhead is what one key costs in memory beyond its name and value
// (its slot in Keys, the value's version and slice header), counted in a
// session's size so that many small keys cannot hold far more memory than
// Config.MaxSessionBytes says.
const keyOverhead = 64

// sessionSize is what r counts against Config.MaxSessionBytes: its keys'
// names and values, and keyOverhead a key.
func sessionSize(r *model.Record) int { return r.Size() + keyOverhead*len(r.Keys) }

// errStale is mergeIn's refusal of a change to an expired session or a
// tombstone past its window.
var errStale = fmt.Errorf("peersession: change refers to an expired session")

// destroyID ends session id, if it lives, and reports whether it did.
func (st *Store) destroyID(ctx context.Context, id string) (bool, error) {
	if st.closed.Load() {
		return false, ErrClosed
	}
	if err := st.clockFenced(); err != nil {
		return false, err
	}
	e := st.lookup(id)
	if pt := st.part.Load(); pt != nil && (e == nil || !pt.holds(id)) {
		// Partitioned, and this node does not hold the session (or has
		// no copy yet): end what its holders have.
		res := st.repl.fetch(ctx, id)
		if res.entry != nil {
			e = res.entry // not a holder: fetched, not stored
		} else {
			e = st.lookup(id) // a holder: fetched and merged
		}
		if !st.alive(e, st.cfg.Now()) {
			e = nil
		}
		if e == nil && res.unsure {
			// The holders did not answer: the session may live there.
			// End it anyway: a tombstone that outlives any session
			// alive now (Config.Lifetime from now), handed over to the
			// holders as any change made here is.
			e = &entry{rec: model.Record{ID: id}}
		}
	}
	if e == nil {
		return false, nil
	}
	delta := st.tombstone(id, &e.rec)
	prev, next, err := st.mergeIn(delta, applyOpts{})
	if err != nil {
		return false, err
	}
	st.fireEvents(eventBase(prev, e), next, false)
	ended := st.alive(prev, st.cfg.Now())
	if pt := st.part.Load(); pt != nil && !pt.holds(id) {
		ended = true // alive as its holders had it (this node's copy, if any, is not kept up to date)
	}
	return ended, st.replicateOut(ctx, delta)
}

// tombstone returns the change that ends session id, whose record was
// cur. The tombstone is kept until the session could no longer be alive
// anywhere: its deadline, or, for a session without one (SetExpiry), the
// later of its idle expiry and Config.Lifetime from now.
func (st *Store) tombstone(id string, cur *model.Record) model.Record {
	deadline := cur.Deadline
	if deadline == 0 {
		deadline = st.cfg.Now().Add(st.cfg.Lifetime).UnixNano()
		if cur.Access != 0 && cur.IdleTimeout != 0 {
			deadline = max(deadline, cur.Access+cur.IdleTimeout)
		}
	}
	return model.Record{ID: id, Dead: st.clock.Now(), Deadline: deadline}
}

// nodeID returns a random ID for this process's clock, the tie-break
// between writes with equal clock readings.
func nodeID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
