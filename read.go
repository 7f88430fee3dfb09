package peersession

import (
	"context"
	"time"
)

// The read path: a session is read from this node's memory, and asked of
// the peers only when the client has seen a newer version than the one
// held here.

// find returns the live entry for token's session, and the time it was
// judged live at. With replication, when the entry is missing or older than
// the client's version stamp, it first fetches the session from the peers
// (one bounded wait). The local lookup allocates nothing: it hashes the
// token into an array and indexes the map with it.
func (st *Store) find(ctx context.Context, token string, stamp int64) (*entry, time.Time) {
	idb := idBytes(token)
	now := st.cfg.Now()
	e := st.shards.getBytes(idb[:])
	if !st.alive(e, now) {
		e = nil
	}
	if st.repl == nil || stamp == 0 || (e != nil && e.stamp >= stamp) {
		return e, now
	}
	id := string(idb[:])
	st.stats.fetches.Add(1)
	if st.repl.fetch(ctx, id) {
		st.stats.fetchHits.Add(1)
	}
	// Look again even if the fetch brought nothing new: replication may
	// have delivered the change meanwhile.
	now = st.cfg.Now()
	if e = st.shards.get(id); !st.alive(e, now) {
		e = nil
	}
	return e, now
}
