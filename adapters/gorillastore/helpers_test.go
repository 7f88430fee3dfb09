package gorillastore_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gorilla/sessions"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/gorillastore"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	shared "github.com/peersession/peersession/internal/testcluster"
)

const (
	waitFor = testcluster.WaitFor
	tick    = testcluster.Tick
	name    = "app-session"
	missing = "no foo\n"
)

// newStore returns a gorilla store over a single-node peersession store
// closed at the end of the test.
func newStore(t *testing.T) (*gorillastore.Store, *peersession.Store) {
	t.Helper()
	st := testcluster.Single(t)
	return gorillastore.New(st), st
}

// app is a gorilla application: /put stores the query's v under "foo",
// /get writes it back ("no foo" and 404 if missing), /incr adds one to
// the int "n" and writes the new count, /destroy saves with MaxAge -1.
func app(t *testing.T, store sessions.Store) *httptest.Server {
	mux := http.NewServeMux()
	// handle serves path with h, given the request's session; an error
	// (store.Get's or h's) answers 500.
	handle := func(path string, h func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s, err := store.Get(r, name)
			if err == nil {
				err = h(w, r, s)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
	}
	handle("/put", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		s.Values["foo"] = r.URL.Query().Get("v")
		return s.Save(r, w)
	})
	handle("/get", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		v, ok := s.Values["foo"].(string)
		if !ok {
			http.Error(w, "no foo", http.StatusNotFound)
			return nil
		}
		_, err := io.WriteString(w, v)
		return err
	})
	handle("/incr", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		n, _ := s.Values["n"].(int)
		s.Values["n"] = n + 1
		if err := s.Save(r, w); err != nil {
			return err
		}
		_, err := io.WriteString(w, strconv.Itoa(n+1))
		return err
	})
	handle("/destroy", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		s.Options.MaxAge = -1
		return s.Save(r, w)
	})
	return testcluster.Serve(t, mux)
}

// browser is a browser stand-in with a cookie jar. Cookies do not depend
// on the port, so one browser carries its cookie between two test servers
// on 127.0.0.1, as between two nodes behind a load balancer.
type browser = shared.Browser

func newBrowser(t *testing.T) *browser { return shared.NewBrowser(t) }

// replay returns a new browser whose only cookie is the session cookie v
// for u, as a client replaying an old cookie would have.
func replay(t *testing.T, u, v string) *browser {
	br := newBrowser(t)
	br.SetCookie(u, name, v)
	return br
}
