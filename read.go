package peersession

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/replicate"
)

// The read path: a session is read from this node's memory, and asked of
// the peers only when the client has seen a newer version than the one
// held here, and that version does not arrive by replication first.

// maxArrivalWait bounds how long a read waits for a change already on its
// way before it asks the peers: a twentieth of ClusterConfig.FetchTimeout,
// at most this (5ms with the default FetchTimeout). A change reaches a peer
// in well under a millisecond on a LAN, and the client's next request
// comes at least a round trip after the write's answer: a read that
// misses a change usually finds it in flight, and a fetch would only wait
// for it at the cost of a round trip and the peer's work.
const maxArrivalWait = 5 * time.Millisecond

// inFlightFor is how recent a client's stamp must be for a read to wait
// for the change it names: a change made longer ago that has not arrived
// is not on its way (it was lost, or the session expired or is unknown
// here), so the read asks the peers at once.
const inFlightFor = time.Second

// maxStampAhead is how far ahead of this node's clock a client's stamp
// may be: as far as the engine accepts a peer's versions to be
// (replicate.DefaultMaxClockSkew). No node issues a stamp further ahead.
const maxStampAhead = replicate.DefaultMaxClockSkew

// stampMissing is the stamp of a read that needs the session only if this
// node lacks it, without the client having shown any version of it
// (LoadOrCreate): no authenticated stamp, so, in partitioned mode, only
// the session's holders are asked (see replication.fetchRecord).
const stampMissing = 1

// errHoldersSilent is a read's error, in partitioned mode, when the
// session could not be fetched (its holders did not answer in time, or the
// node's fetches were all taken for longer than FetchTimeout): the
// session may exist, so the read is not told there is none.
var errHoldersSilent = fmt.Errorf("%w: the session's holders did not answer in time (partitioned mode); retry", ErrStale)

// find returns the live entry for token's session, and the time it was
// judged live at. With replication, when the entry is missing or older than
// the client's version stamp, it waits briefly for the change if it can be
// on its way (see maxArrivalWait), then fetches the session from the peers
// (one bounded wait, through the fetch guard: see fetchguard.go). The
// stamp must be authenticated already (Store.parseValue); one more than a
// minute ahead of this node's clock is ignored. The local lookup allocates
// nothing: it hashes the token into an array and indexes the map with it.
//
// In partitioned mode, a read that could not learn whether the session
// exists (see errHoldersSilent) returns nil and that error.
func (st *Store) find(ctx context.Context, token string, stamp int64) (*entry, time.Time, error) {
	idb := idBytes(token)
	now := st.cfg.Now()
	e := st.shards.getBytes(idb[:])
	ended := e != nil && e.rec.IsDead()
	if !st.alive(e, now) {
		e = nil
	}
	if st.repl == nil {
		return e, now, nil
	}
	if pt := st.repl.part; pt != nil {
		// Partitioned: a node that does not hold the session does not
		// trust its copy (it is not kept up to date), and one that holds
		// it but has no copy may be a new holder the session is on its
		// way to: both ask (the holders first). A holder with the
		// session's tombstone knows it ended: it asks nobody.
		if id := string(idb[:]); !pt.holds(id) || (e == nil && !ended) {
			if stamp-now.UnixNano() > int64(maxStampAhead) {
				st.stats.stampsRejected.Add(1)
				stamp = 0
			}
			return st.fetchNewer(ctx, id, stamp)
		}
		if ended {
			return nil, now, nil // a holder with the tombstone, whatever the stamp
		}
	}
	if stamp == 0 || (e != nil && e.stamp >= stamp) {
		return e, now, nil
	}
	if stamp-now.UnixNano() > int64(maxStampAhead) {
		st.stats.stampsRejected.Add(1)
		return e, now, nil
	}
	id := string(idb[:])
	if stamp > now.Add(-inFlightFor).UnixNano() && st.repl.arrivalWait > 0 {
		st.stats.fetchWaits.Add(1)
		if got, at := st.awaitArrival(ctx, id, stamp); got != nil {
			st.stats.fetchWaitHits.Add(1)
			return got, at, nil
		}
	}
	return st.fetchNewer(ctx, id, stamp)
}

// fetchNewer fetches session id from the peers, through the fetch guard,
// for a read that needs it at version stamp or later, and returns what
// this node holds then (with errHoldersSilent if that is nothing and the
// fetch could not tell whether the session exists: partitioned mode).
func (st *Store) fetchNewer(ctx context.Context, id string, stamp int64) (*entry, time.Time, error) {
	for tries := 1; ; tries++ {
		outcome, res := st.repl.guard.do(ctx, id, st.cfg.Now(), stamp > stampMissing, func(ctx context.Context, id string) fetchResult {
			return st.repl.fetchAt(ctx, id, stamp)
		})
		// Look again even if nothing new was fetched: replication may
		// have delivered the change meanwhile.
		now := st.cfg.Now()
		e := st.shards.get(id)
		if res.entry != nil {
			e = res.entry // partitioned, not a holder: the copy fetched
		}
		if !st.alive(e, now) {
			e = nil
		}
		switch outcome {
		case fetchSent:
			st.stats.fetches.Add(1)
			if res.hit {
				st.stats.fetchHits.Add(1)
			}
		case fetchMerged:
			st.stats.fetchesMerged.Add(1)
			// The fetch waited for may have been sent before the write
			// this read must see was made: if it did not bring it, one
			// more (sent, or waited for, after this read came).
			if tries == 1 && (e == nil || e.stamp < stamp) && ctx.Err() == nil {
				continue
			}
		case fetchCached:
			st.stats.fetchMissesCached.Add(1)
		case fetchShed:
			st.stats.fetchesShed.Add(1)
		}
		if e == nil && res.unsure {
			return nil, now, errHoldersSilent
		}
		return e, now, nil
	}
}

// awaitArrival waits, up to the replication's arrivalWait or until ctx
// ends, for session id to be live here at version stamp or later, woken
// by each change to it that replication applies. It returns the entry and
// the time it was judged live at, or nil if it did not come in time.
func (st *Store) awaitArrival(ctx context.Context, id string, stamp int64) (*entry, time.Time) {
	arr := st.repl.arrivals
	t := time.NewTimer(st.repl.arrivalWait)
	defer t.Stop()
	for {
		// Watch before looking, so that a change applied in between still
		// wakes the wait.
		w := arr.watch(id)
		now := st.cfg.Now()
		if e := st.shards.get(id); st.alive(e, now) && e.stamp >= stamp {
			arr.unwatch(id, w)
			return e, now
		}
		select {
		case <-w.ch:
			arr.unwatch(id, w)
		case <-t.C:
			arr.unwatch(id, w)
			return nil, now
		case <-ctx.Done():
			arr.unwatch(id, w)
			return nil, now
		}
	}
}

// arrivals wakes the reads waiting for a change to a session to arrive
// from a peer (see Store.awaitArrival). The zero value is ready to use.
type arrivals struct {
	waiting atomic.Int32 // sessions in byID: arrived takes no lock while zero
	mu      sync.Mutex   // guards byID and the n of the arrivals in it
	byID    map[string]*arrival
}

// arrival is the reads waiting for one session.
type arrival struct {
	ch chan struct{} // closed when a change to the session is applied
	n  int           // reads waiting on ch
}

// watch returns the arrival of session id, which the caller waits on and
// then hands back to unwatch.
func (a *arrivals) watch(id string) *arrival {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.byID[id]
	if w == nil {
		if a.byID == nil {
			a.byID = make(map[string]*arrival)
		}
		w = &arrival{ch: make(chan struct{})}
		a.byID[id] = w
		a.waiting.Add(1)
	}
	w.n++
	return w
}

// unwatch ends one wait on w, forgetting w with its last one.
func (a *arrivals) unwatch(id string, w *arrival) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.n--
	if w.n == 0 && a.byID[id] == w {
		delete(a.byID, id)
		a.waiting.Add(-1)
	}
}

// arrived wakes the reads waiting for session id: a change to it was
// applied. With nobody waiting it costs one atomic load.
func (a *arrivals) arrived(id string) {
	if a.waiting.Load() == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.byID[id]; w != nil {
		close(w.ch)
		delete(a.byID, id)
		a.waiting.Add(-1)
	}
}
