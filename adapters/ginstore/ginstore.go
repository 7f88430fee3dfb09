// Package ginstore is a github.com/gin-contrib/sessions Store that keeps
// sessions in a peersession Store, so that every instance of a gin app
// holds every session, replicated without a session server. An existing
// gin app becomes clustered by changing the line that makes its store:
//
//	store := ginstore.New(peerStore) // was cookie.NewStore(secret), redis.NewStore(...), ...
//	r.Use(sessions.Sessions("mysession", store))
//
// gin-contrib/sessions wraps gorilla/sessions, and so does this package: a
// Store is a gorillastore.Store (embedded, so its Get, New, Save and MaxAge
// are the Store's) with the Options method gin-contrib's Store interface
// adds. The semantics are gorillastore's: only the session's ID travels in
// the cookie, values are gob-encoded (gob.Register custom types), a
// session's MaxAge bounds it on the server too, MaxAge < 0 ends it on
// every node, and a session ended elsewhere is not brought back by a
// request that held it.
package ginstore

import (
	"github.com/gin-contrib/sessions"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/gorillastore"
)

// Store is a gin-contrib/sessions Store backed by a peersession Store. It
// is safe for concurrent use, but for Options, which sets the defaults of
// new sessions and is to be called before the app serves. Create one with
// New.
type Store struct {
	// Store is the gorilla store that does the work; its Options field
	// holds the defaults for new sessions.
	*gorillastore.Store
}

var _ sessions.Store = (*Store)(nil)

// New returns a gin-contrib store that keeps its sessions in st. New
// sessions' Options default to gorillastore's: Path "/", MaxAge 30 days,
// HttpOnly and SameSite=Lax.
func New(st *peersession.Store) *Store {
	return &Store{Store: gorillastore.New(st)}
}

// Options replaces the defaults of new sessions, as gin-contrib's own
// stores' Options do: a field left out is its zero value, so pass
// HttpOnly and SameSite along with, say, MaxAge to keep them. MaxAge > 0
// bounds sessions on the server as well as in the browser.
func (s *Store) Options(o sessions.Options) {
	s.Store.Options = o.ToGorillaOptions()
}
