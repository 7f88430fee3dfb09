package peersession

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/peersession/peersession/replicate/model"
)

// Load returns the session named by token (a cookie or header value as
// the middleware would read it) for use outside HTTP handlers. It returns
// ErrNotFound for a malformed, unknown or expired token. Change the session
// with its methods and save it with Save.
func (st *Store) Load(ctx context.Context, token string) (*Session, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	t, stamp := parseCookie(token)
	s := st.newSession(t, stamp)
	s.ctx = ctx
	s.mu.Lock()
	s.loadLocked(ctx)
	found := s.base != nil
	s.mu.Unlock()
	if !found {
		return nil, ErrNotFound
	}
	return s, nil
}

// NewSession returns an empty session for use outside HTTP handlers; Save
// creates it and returns its token.
func (st *Store) NewSession(ctx context.Context) *Session {
	s := st.newSession("", 0)
	s.ctx = ctx
	return s
}

// Save commits s's changes, as the middleware does at the commit point,
// and returns the value the client should now present (token and version
// stamp): "" when the session was destroyed or holds nothing.
func (st *Store) Save(ctx context.Context, s *Session) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(ctx)
	res, err := st.commitLocked(ctx, s)
	if err != nil {
		return "", err
	}
	if s.token == "" {
		return "", nil
	}
	stamp := res.stamp
	if stamp == 0 {
		stamp = s.stamp
	}
	return formatCookie(s.token, stamp), nil
}

// Delete ends the session named by token, everywhere. Deleting an unknown
// session is not an error.
func (st *Store) Delete(ctx context.Context, token string) error {
	t, _ := parseCookie(token)
	if t == "" {
		return nil
	}
	_, err := st.destroyID(ctx, idOf(t))
	return err
}

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

// nodeID returns a random ID for this process's clock, the tie-break
// between writes with equal clock readings.
func nodeID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
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
