package peersession

import "time"

// Event describes a session's creation or end, passed to Config.OnCreate,
// OnDestroy and OnExpire.
//
// Each session gets at most one OnCreate and at most one of OnDestroy and
// OnExpire per node. In partitioned mode (ClusterConfig.Copies) a node
// that ends a session it does not hold gets its OnDestroy too; with
// NotifyOnReplication, a node gets OnCreate each time a session comes to
// it as a holder (again after it moved away and back, on membership
// changes), and OnDestroy or OnExpire only for sessions it holds. Callbacks for different sessions may run concurrently;
// a callback runs on the goroutine that made the change (a request, the
// sweeper, or a replication reader) after the change is applied and with no
// lock held, so it may call the Store. Keep it short: it delays that
// goroutine.
type Event struct {
	// ID is the session's store ID (a hash of its token, safe to log).
	ID string
	// Principal is the user the session was tagged with, if any.
	Principal string
	// Created is when the session was created.
	Created time.Time
	// Remote is true when the change arrived from a peer (only with
	// Config.NotifyOnReplication).
	Remote bool
}

// eventOf is the Event for a change to e, from a peer when remote.
func eventOf(e *entry, remote bool) Event {
	return Event{ID: e.rec.ID, Principal: e.rec.Principal, Created: time.Unix(0, e.rec.Created), Remote: remote}
}

// fireEvents calls OnCreate or OnDestroy for a change from prev to next.
func (st *Store) fireEvents(prev, next *entry, remote bool) {
	if prev == next || (remote && !st.cfg.NotifyOnReplication) {
		return
	}
	st.fireEventsAt(prev, next, remote, st.cfg.Now())
}

// eventBase is the entry a local destroy's OnDestroy is judged from: the
// stored one, prev, unless the request ended a copy fetched from the
// holders (partitioned mode, on a node that does not hold the session):
// that copy was the live session, whatever this node stores.
func eventBase(prev, ended *entry) *entry {
	if ended != nil && ended.fetched && (prev == nil || prev.rec.IsDead() || prev.partial()) {
		return ended
	}
	return prev
}

// fireEventsAt is fireEvents at time now: a batch of remote changes reads
// the clock once.
func (st *Store) fireEventsAt(prev, next *entry, remote bool, now time.Time) {
	if prev == next || (remote && !st.cfg.NotifyOnReplication) {
		return
	}
	wasLive, isLive := st.alive(prev, now), st.alive(next, now)
	switch {
	case !wasLive && isLive && (prev == nil || prev.rec.IsDead() || prev.rec.Created != next.rec.Created):
		st.stats.created.Add(1)
		if f := st.cfg.OnCreate; f != nil {
			f(eventOf(next, remote))
		}
	case wasLive && next.rec.IsDead():
		st.stats.destroyed.Add(1)
		if f := st.cfg.OnDestroy; f != nil {
			f(eventOf(prev, remote))
		}
	}
}
