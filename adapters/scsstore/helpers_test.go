package scsstore_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/peersession/peersession/adapters/scsstore"
	shared "github.com/peersession/peersession/internal/testcluster"
)

const (
	waitFor = testcluster.WaitFor
	tick    = testcluster.Tick
)

// newStore returns an scsstore over a single-node peersession store,
// closed at the end of the test.
func newStore(t *testing.T) (*scsstore.Store, *peersession.Store) {
	t.Helper()
	st := testcluster.Single(t)
	return scsstore.New(st), st
}

// app is an scs application, as in scs's own session tests: /put stores
// the query's v under "foo", /get writes it back (500 if missing), /incr
// adds one to the int "n" and /count writes it, /destroy and /renew do
// what they say.
func app(t *testing.T, sm *scs.SessionManager) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "foo", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, ok := sm.Get(r.Context(), "foo").(string)
		if !ok {
			http.Error(w, "foo does not exist in session", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, v)
	})
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "n", sm.GetInt(r.Context(), "n")+1)
	})
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strconv.Itoa(sm.GetInt(r.Context(), "n")))
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return testcluster.Serve(t, sm.LoadAndSave(mux))
}

// manager returns an scs session manager using store.
func manager(store scs.Store, lifetime, idle time.Duration) *scs.SessionManager {
	sm := scs.New()
	sm.Store = store
	sm.Lifetime = lifetime
	sm.IdleTimeout = idle
	return sm
}

// browser is a browser stand-in with a cookie jar. Cookies do not depend
// on the port, so one browser carries its session cookie between two test
// servers on 127.0.0.1, as between two nodes behind a load balancer.
type browser = shared.Browser

func newBrowser(t *testing.T) *browser { return shared.NewBrowser(t) }

const missing = "foo does not exist in session\n"
