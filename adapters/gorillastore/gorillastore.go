// Package gorillastore is a github.com/gorilla/sessions Store that keeps
// sessions in a peersession Store, so that every instance of an app holds
// every session, replicated without a session server. An existing gorilla
// app becomes clustered by changing the line that makes its store:
//
//	store := gorillastore.New(peerStore) // was sessions.NewCookieStore(key) or NewFilesystemStore(...)
//
// Only the session's ID travels in the cookie: the peersession cookie value
// (a 256-bit random token and a version stamp), which needs no signing. A
// session's Values are gob-encoded, as gorilla's own stores encode them, so
// register custom types with gob.Register as usual; they are kept under one
// key of one peersession session per cookie name.
//
// Save honours the session's Options: Path, Domain, Secure (set as well
// where peersession.NeedsSecure says the cookie needs it), HttpOnly,
// Partitioned and SameSite on the cookie; MaxAge > 0 as the cookie's and
// the server-side lifetime, renewed by every Save (peersession keeps the
// session at least that long, whatever its own IdleTimeout: see
// peersession.Session.SetExpiry); MaxAge == 0 as a browser-session cookie,
// kept on the server for peersession's IdleTimeout and Lifetime; MaxAge < 0
// as delete, on every node.
package gorillastore

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/peersession/peersession"
)

// Store is a gorilla/sessions Store backed by a peersession Store. It is
// safe for concurrent use. Create one with New.
type Store struct {
	// Options are the defaults for new sessions; each session gets a copy
	// that the handler may change before Save.
	Options *sessions.Options

	st  *peersession.Store
	now func() time.Time // the wall clock; time.Now outside tests
}

var _ sessions.Store = (*Store)(nil)

// New returns a gorilla store that keeps its sessions in st. New sessions'
// Options default to Path "/", MaxAge 30 days (as gorilla's own stores),
// HttpOnly and SameSite=Lax.
func New(st *peersession.Store) *Store {
	return &Store{
		Options: &sessions.Options{
			Path:     "/",
			MaxAge:   86400 * 30,
			HttpOnly: true,
			SameSite: http.SameSiteLaxMode,
		},
		st:  st,
		now: time.Now,
	}
}

// MaxAge sets the default MaxAge of new sessions, as gorilla's own stores'
// MaxAge does.
func (s *Store) MaxAge(age int) { s.Options.MaxAge = age }

// valueKey is the peersession key that holds a gorilla session.
const valueKey = "_gorilla"

// record is what the adapter stores under valueKey.
type record struct {
	// Values are the gob-encoded session.Values.
	Values []byte `msgpack:"v"`
	// Expiry is when MaxAge runs out, in Unix nanoseconds; zero for none.
	Expiry int64 `msgpack:"e"`
}

func (r *record) expired(now time.Time) bool {
	return r.Expiry != 0 && now.UnixNano() > r.Expiry
}

// Get returns the request's session of that name, cached for the request
// in gorilla's registry; see New for what it returns.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New returns the session of that name the request's cookie names, or a
// new one (IsNew) if the cookie names none, or an expired one: a client's
// ID is never adopted. Like gorilla's own stores, it returns a usable new
// session along with any error.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	session := sessions.NewSession(s, name)
	opts := *s.Options
	session.Options = &opts
	session.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return session, nil
	}
	ctx := r.Context()
	ps, err := s.st.Load(ctx, c.Value)
	if errors.Is(err, peersession.ErrNotFound) {
		return session, nil
	}
	if err != nil {
		return session, fmt.Errorf("gorillastore: load session %q: %w", name, err)
	}
	var rec record
	found, err := ps.Get(valueKey, &rec)
	switch {
	case err != nil:
		return session, fmt.Errorf("gorillastore: load session %q: %w", name, err)
	case !found:
		return session, nil
	case rec.expired(s.now()):
		if err := s.st.Delete(ctx, c.Value); err != nil {
			return session, fmt.Errorf("gorillastore: end expired session %q: %w", name, err)
		}
		return session, nil
	}
	values := make(map[any]any)
	if err := gob.NewDecoder(bytes.NewReader(rec.Values)).Decode(&values); err != nil {
		return session, fmt.Errorf("gorillastore: decode session %q: %w", name, err)
	}
	if ps.Changed() {
		// Loading found the recorded access time old: record it, as
		// peersession's middleware does, so that a session only read
		// does not end at peersession's IdleTimeout.
		if _, err := s.st.Save(ctx, ps); err != nil {
			if errors.Is(err, peersession.ErrSessionEnded) {
				return session, nil
			}
			return session, fmt.Errorf("gorillastore: record access to session %q: %w", name, err)
		}
	}
	session.ID, session.Values, session.IsNew = c.Value, values, false
	return session, nil
}

// Save stores the session's Values on every node and sets its cookie to
// the session's ID; with Options.MaxAge < 0 it ends the session everywhere
// and expires the cookie instead. A session that ended meanwhile (another
// node destroyed it, or it expired) is not brought back: Save fails with
// an error wrapping peersession.ErrSessionEnded, and the next request gets
// a new session.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, session *sessions.Session) error {
	ctx := r.Context()
	opts := session.Options
	if opts == nil {
		opts = s.Options
	}
	if !opts.Secure && peersession.NeedsSecure(r, session.Name(), opts.SameSite) {
		// As peersession's middleware does: over TLS (or behind a
		// TLS-terminating proxy), and for names and SameSite modes that
		// browsers accept only with Secure.
		o := *opts
		o.Secure = true
		opts = &o
	}
	if opts.MaxAge < 0 {
		if session.ID != "" {
			if err := s.st.Delete(ctx, session.ID); err != nil {
				return fmt.Errorf("gorillastore: delete session %q: %w", session.Name(), err)
			}
		}
		session.ID = ""
		http.SetCookie(w, sessions.NewCookie(session.Name(), "", opts))
		return nil
	}

	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(session.Values); err != nil {
		return fmt.Errorf("gorillastore: encode session %q (gob.Register its value types): %w", session.Name(), err)
	}
	rec := record{Values: buf.Bytes()}
	if opts.MaxAge > 0 {
		rec.Expiry = s.now().Add(time.Duration(opts.MaxAge) * time.Second).UnixNano()
	}

	var ps *peersession.Session
	if session.ID != "" {
		var err error
		ps, err = s.st.Load(ctx, session.ID)
		switch {
		case errors.Is(err, peersession.ErrNotFound):
			// Destroyed (say, "log out everywhere") or expired since
			// New loaded it: saving its values into a fresh session
			// would undo that.
			return fmt.Errorf("gorillastore: save session %q: %w", session.Name(), peersession.ErrSessionEnded)
		case err != nil:
			return fmt.Errorf("gorillastore: save session %q: %w", session.Name(), err)
		}
	} else {
		ps = s.st.NewSession(ctx)
	}
	if err := ps.Set(valueKey, rec); err != nil {
		return fmt.Errorf("gorillastore: save session %q: %w", session.Name(), err)
	}
	if rec.Expiry != 0 {
		// The server keeps the session as long as the cookie lives,
		// whatever peersession's own IdleTimeout and Lifetime say.
		if err := ps.SetExpiry(time.Unix(0, rec.Expiry)); err != nil {
			return fmt.Errorf("gorillastore: save session %q: %w", session.Name(), err)
		}
	}
	v, err := s.st.Save(ctx, ps)
	if err != nil {
		return fmt.Errorf("gorillastore: save session %q: %w", session.Name(), err)
	}
	session.ID = v
	http.SetCookie(w, sessions.NewCookie(session.Name(), v, opts))
	return nil
}
