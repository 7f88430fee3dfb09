// Package scsstore is a session store for github.com/alexedwards/scs/v2
// that keeps sessions in a peersession Store, so that every instance of an
// app holds every session, replicated without a session server. An
// existing scs app becomes clustered by changing one line:
//
//	sessionManager.Store = scsstore.New(peerStore)
//
// scs hands the store its own opaque token, an encoded blob and an absolute
// expiry. The adapter keeps them in one peersession session named by a
// token derived from scs's (a SHA-256 hash of it, so any token scs may use
// works, HashTokenInStore included), under one key. scs's expiry is
// enforced by the adapter: Find reports an expired session as not found
// and ends it; peersession keeps the session at least until that expiry,
// whatever its own IdleTimeout (see peersession.Session.SetExpiry), so the
// one line above is all the configuration a clustered scs app needs.
//
// To return tokens from All (scs's Iterate), the adapter keeps scs's token
// in the session, where every node holds it: set scs's HashTokenInStore so
// that what it holds is a hash of the token, not a working one.
//
// scs's cookie carries only its token, not peersession's version stamp,
// so a node cannot tell that a client has seen a newer version than the
// one it holds. On a balancer that is not sticky, a request reaching
// another node right after a Commit could read the session as it was
// before and overwrite the change. So Commit and Delete return only once
// every live peer holds the change (peersession.WaitForPeers): one
// replication round trip per commit (see adapters/README.md for the
// measured cost).
package scsstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/peersession/peersession"
)

// Store is an scs store backed by a peersession Store. It is safe for
// concurrent use. Create one with New.
type Store struct {
	b Backend
	// now is the wall clock; time.Now outside tests.
	now func() time.Time
}

var (
	_ scs.Store            = (*Store)(nil)
	_ scs.CtxStore         = (*Store)(nil)
	_ scs.IterableStore    = (*Store)(nil)
	_ scs.IterableCtxStore = (*Store)(nil)
)

// New returns an scs store that keeps its sessions in b, normally a
// *peersession.Store.
func New(b Backend) *Store {
	return &Store{b: b, now: time.Now}
}

// valueKey is the peersession key that holds an scs session. It is unusual
// enough not to collide with keys an app sets through the peersession
// middleware on the same store.
const valueKey = "_scs"

// record is what the adapter stores under valueKey.
type record struct {
	// Token is scs's token (hashed if scs's HashTokenInStore is set), kept
	// so that All can return it; peersession itself keeps no tokens.
	Token string `msgpack:"t"`
	// Data is scs's encoded session.
	Data []byte `msgpack:"d"`
	// Expiry is scs's absolute expiry, in Unix nanoseconds.
	Expiry int64 `msgpack:"e"`
}

func (r *record) expired(now time.Time) bool { return now.UnixNano() > r.Expiry }

// storeToken returns the peersession token naming the session of scs token
// t: base64url of SHA-256 of a domain-separated t, which has the shape of a
// peersession token whatever t looks like.
func storeToken(t string) string {
	sum := sha256.Sum256([]byte("peersession/scsstore\x00" + t))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Find returns the data for scs token, or found=false, err=nil when it
// names no session or an expired one; err is for faults only. A session
// that exists on another node and has not reached this one yet is fetched
// from the peers. Finding an expired session also ends it.
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// FindCtx is Find with a context, which bounds a fetch from the peers.
func (s *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	st := storeToken(token)
	ps, err := s.b.LoadOrCreate(ctx, st)
	if err != nil {
		return nil, false, fmt.Errorf("scsstore: find: %w", err)
	}
	if ps.IsNew() {
		return nil, false, nil
	}
	var rec record
	found, err := ps.Get(valueKey, &rec)
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("scsstore: find: %w", err)
	case !found:
		return nil, false, nil
	case rec.expired(s.now()):
		if err := s.b.Delete(ctx, st); err != nil {
			return nil, false, fmt.Errorf("scsstore: end expired session: %w", err)
		}
		return nil, false, nil
	}
	if ps.Changed() {
		// Loading found the recorded access time old: record it, as
		// peersession's middleware does, so that a session only read
		// does not end at peersession's IdleTimeout.
		if _, err := s.b.Save(ctx, ps); err != nil {
			if errors.Is(err, peersession.ErrSessionEnded) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("scsstore: record access: %w", err)
		}
	}
	return rec.Data, true, nil
}

// Commit stores b under scs token with the given absolute expiry,
// replacing any data and expiry the token had.
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// CommitCtx is Commit with a context, which bounds the wait for the
// peers (see the package comment).
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	ps, err := s.b.LoadOrCreate(ctx, storeToken(token))
	if err != nil {
		return fmt.Errorf("scsstore: commit: %w", err)
	}
	if err := ps.Set(valueKey, record{Token: token, Data: b, Expiry: expiry.UnixNano()}); err != nil {
		return fmt.Errorf("scsstore: commit: %w", err)
	}
	if err := ps.SetExpiry(expiry); err != nil {
		return fmt.Errorf("scsstore: commit: %w", err)
	}
	if _, err := s.b.Save(peersession.WaitForPeers(ctx), ps); err != nil {
		return fmt.Errorf("scsstore: commit: %w", err)
	}
	return nil
}

// Delete ends the session of scs token on every node. Deleting an unknown
// token is a no-op.
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// DeleteCtx is Delete with a context.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	if err := s.b.Delete(peersession.WaitForPeers(ctx), storeToken(token)); err != nil {
		return fmt.Errorf("scsstore: delete: %w", err)
	}
	return nil
}

// All returns the data of every session that has not expired, by scs
// token; an empty, non-nil map if there is none. Every node holds every
// session, so any node returns the whole cluster's sessions (those that
// have reached it). Sessions of the same peersession store that scsstore
// did not write are skipped.
func (s *Store) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}

// AllCtx is All with a context; it stops early when ctx is done.
func (s *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	out := make(map[string][]byte)
	now := s.now()
	for ps := range s.b.All() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("scsstore: all: %w", err)
		}
		var rec record
		found, err := ps.Get(valueKey, &rec)
		if err != nil {
			return nil, fmt.Errorf("scsstore: all: %w", err)
		}
		if found && !rec.expired(now) {
			out[rec.Token] = rec.Data
		}
	}
	return out, nil
}
