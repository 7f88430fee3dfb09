package scsstore

import (
	"context"
	"iter"

	"github.com/peersession/peersession"
)

// Backend is what Store needs from a peersession Store; *peersession.Store
// satisfies it. It is an interface, defined here where it is used, so that the adapter
// can be tested against an alternate implementation.
//
// Calls may overlap: Store calls it from concurrent requests.
type Backend interface {
	// LoadOrCreate returns the live session named by token, a token the
	// caller generated, or else a new empty session (IsNew reports true)
	// that Save creates under that token. When the store lacks the
	// session it asks its peers first, within one bounded fetch. token has
	// the shape of the store's own tokens: 43 characters of base64url
	// without padding, encoding 32 bytes.
	LoadOrCreate(ctx context.Context, token string) (*peersession.Session, error)
	// Save commits the session's changes; see peersession.Store.Save.
	Save(ctx context.Context, s *peersession.Session) (string, error)
	// Delete ends the session named by token, everywhere; an unknown
	// token is not an error. See peersession.Store.Delete.
	Delete(ctx context.Context, token string) error
	// All yields a read-only snapshot of every live session the store
	// holds.
	All() iter.Seq[*peersession.Session]
}

var _ Backend = (*peersession.Store)(nil)
