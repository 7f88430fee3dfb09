package peersession

import (
	"context"
	"fmt"
	"iter"
)

// Sessions by token, outside HTTP handlers: for adapters (scs, gorilla)
// and for jobs that work on a user's session.

// Load returns the session named by token (a cookie or header value as
// the middleware would read it: its version stamp counts only with its
// MAC) for use outside HTTP handlers. It returns ErrNotFound for a
// malformed, unknown or expired token; in partitioned mode
// (ClusterConfig.Copies), an error wrapping ErrStale when the session's
// holders did not answer in time (it may exist: retry). Change the session
// with its methods and save it with Save.
func (st *Store) Load(ctx context.Context, token string) (*Session, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	t, stamp := st.parseValue(token)
	s := st.newSession(t, stamp)
	s.ctx = ctx
	s.mu.Lock()
	s.loadLocked(ctx)
	found, err := s.base != nil, s.loadErr
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
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
	if st.closed.Load() {
		return "", ErrClosed
	}
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
	return st.cookieValue(s.token, stamp), nil
}

// Delete ends the session named by token, everywhere. Deleting an unknown
// session is not an error.
func (st *Store) Delete(ctx context.Context, token string) error {
	if st.closed.Load() {
		return ErrClosed
	}
	t, _ := parseCookie(token)
	if t == "" {
		return nil
	}
	_, err := st.destroyID(ctx, idOf(t))
	return err
}

// LoadOrCreate returns the live session named by token, or a new, empty
// session that Save will create under that very token. It is for adapters
// whose framework chooses its own tokens (scs); HTTP requests go through
// Middleware, which never adopts a client's token. The token must be
// unguessable (32 bytes from crypto/rand, base64url). A missing session is
// first asked of the peers (one bounded fetch), within the bounds every
// fetch keeps (docs/security.md, "Forged stamps"): concurrent calls for one
// token share one fetch; a token no peer had is not asked about again for
// 2 s; and while 32 fetches are under way on the node, none is sent and the
// session is new (Stats.FetchesShed). In partitioned mode only the
// session's holders are asked, a read waits up to FetchTimeout for one of
// the 32 rather than be shed, and when the holders do not answer in time
// LoadOrCreate fails with an error wrapping ErrStale (the session may
// exist: retry). Saving a new session under a token whose session was
// destroyed fails with ErrSessionEnded.
func (st *Store) LoadOrCreate(ctx context.Context, token string) (*Session, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	if !validToken(token) {
		return nil, ErrInvalidToken
	}
	s := st.newSession(token, stampMissing) // fetch from peers only when missing here
	s.ctx = ctx
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(ctx)
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	if s.base == nil {
		s.chosen = token
	}
	return s, nil
}

// All iterates over read-only snapshots of the live sessions on this node
// (with replication: of the whole cluster as this node knows it; in
// partitioned mode, ClusterConfig.Copies, of those this node holds). Their
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
