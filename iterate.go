package peersession

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// ErrInvalidToken is returned by LoadOrCreate for a token that is not 43
// characters of base64url encoding 32 bytes.
var ErrInvalidToken = errors.New("peersession: token must be 43 characters of base64url encoding 32 bytes")

// ErrReadOnly is returned when saving a session obtained from Store.All.
var ErrReadOnly = errors.New("peersession: session from Store.All is a read-only snapshot; Load it by token to change it")

// LoadOrCreate returns the live session named by token, or a new, empty
// session that Save will create under that very token. It is for adapters
// whose framework chooses its own tokens (scs); HTTP requests go through
// Middleware, which never adopts a client's token. The token must be
// unguessable (32 bytes from crypto/rand, base64url). A missing session is
// first asked of the peers (one bounded fetch). Saving a new session under
// a token whose session was destroyed fails with ErrSessionEnded.
func (st *Store) LoadOrCreate(ctx context.Context, token string) (*Session, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	if !validToken(token) {
		return nil, ErrInvalidToken
	}
	s := st.newSession(token, 1) // stamp 1: fetch from peers only when missing here
	s.ctx = ctx
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(ctx)
	if s.base == nil {
		s.chosen = token
	}
	return s, nil
}

// All iterates over read-only snapshots of the live sessions on this node
// (with replication: of the whole cluster as this node knows it). Their
// Token is empty: the store keeps no tokens. Saving one fails with
// ErrReadOnly.
func (st *Store) All() iter.Seq[*Session] {
	return func(yield func(*Session) bool) {
		now := st.cfg.Now()
		var live []*entry
		st.shards.each(func(e *entry) bool {
			if st.alive(e, now) {
				live = append(live, e)
			}
			return true
		})
		for _, e := range live {
			s := &Session{st: st, loaded: true, base: e, size: e.size, snapshotID: e.rec.ID}
			if !yield(s) {
				return
			}
		}
	}
}

// checkWritableLocked refuses commits of snapshots.
func (s *Session) checkWritableLocked() error {
	if s.snapshotID != "" {
		return fmt.Errorf("%w (session %s)", ErrReadOnly, s.snapshotID)
	}
	return nil
}
