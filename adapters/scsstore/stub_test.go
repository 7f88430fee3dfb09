package scsstore_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/scsstore"
)

// backendOf returns st as an scsstore.Backend: st itself once the root
// package has LoadOrCreate and All, and until then a stub that emulates
// them over the root's present API. The stub keeps, in this process, a
// directory from the caller's chosen tokens to the tokens peersession
// issued; nodes of one test share a directory, which stands in for being
// able to name a session. The sessions themselves, their data, expiry and
// replication are the real thing.
func backendOf(st *peersession.Store, dir *directory) scsstore.Backend {
	if b, ok := any(st).(scsstore.Backend); ok {
		return b
	}
	return &stubBackend{st: st, dir: dir}
}

// directory maps chosen tokens to peersession cookie values.
type directory struct {
	mu     sync.Mutex        // guards values and chosen
	values map[string]string // chosen token → last value Save returned (token.stamp)
	chosen map[string]string // peersession token → chosen token
}

func newDirectory() *directory {
	return &directory{values: map[string]string{}, chosen: map[string]string{}}
}

type stubBackend struct {
	st  *peersession.Store
	dir *directory

	mu      sync.Mutex // guards pending
	pending map[*peersession.Session]string
}

var _ scsstore.Backend = (*stubBackend)(nil)

func (b *stubBackend) LoadOrCreate(ctx context.Context, token string) (*peersession.Session, error) {
	if raw, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("stub: token %q is not 43 characters of base64url", token)
	}
	b.dir.mu.Lock()
	v, ok := b.dir.values[token]
	b.dir.mu.Unlock()
	if ok {
		// v carries the stamp of the last save: a node without that
		// version fetches it from its peers, as LoadOrCreate will.
		s, err := b.st.Load(ctx, v)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, peersession.ErrNotFound) {
			return nil, err
		}
	}
	s := b.st.NewSession(ctx)
	b.mu.Lock()
	if b.pending == nil {
		b.pending = map[*peersession.Session]string{}
	}
	b.pending[s] = token
	b.mu.Unlock()
	return s, nil
}

func (b *stubBackend) Save(ctx context.Context, s *peersession.Session) (string, error) {
	b.mu.Lock()
	chosen, isNew := b.pending[s]
	delete(b.pending, s)
	b.mu.Unlock()
	if !isNew {
		b.dir.mu.Lock()
		chosen = b.dir.chosen[s.Token()]
		b.dir.mu.Unlock()
	}
	v, err := b.st.Save(ctx, s)
	if err != nil || v == "" {
		return v, err
	}
	b.dir.mu.Lock()
	b.dir.values[chosen] = v
	b.dir.chosen[s.Token()] = chosen
	b.dir.mu.Unlock()
	return v, nil
}

func (b *stubBackend) Delete(ctx context.Context, token string) error {
	b.dir.mu.Lock()
	v, ok := b.dir.values[token]
	b.dir.mu.Unlock()
	if !ok {
		return nil
	}
	return b.st.Delete(ctx, v)
}

func (b *stubBackend) All() iter.Seq[*peersession.Session] {
	return func(yield func(*peersession.Session) bool) {
		b.dir.mu.Lock()
		values := slices.Collect(maps.Values(b.dir.values))
		b.dir.mu.Unlock()
		for _, v := range values {
			s, err := b.st.Load(context.Background(), v)
			if err != nil {
				continue
			}
			if !yield(s) {
				return
			}
		}
	}
}
