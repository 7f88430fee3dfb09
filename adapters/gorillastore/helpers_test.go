package gorillastore_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gorilla/sessions"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/gorillastore"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/stretchr/testify/require"
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
	st, err := peersession.New(peersession.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return gorillastore.New(st), st
}

// app is a gorilla application: /put stores the query's v under "foo",
// /get writes it back ("no foo" and 404 if missing), /destroy saves with
// MaxAge -1.
func app(t *testing.T, store sessions.Store) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.Values["foo"] = r.URL.Query().Get("v")
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		v, ok := s.Values["foo"].(string)
		if !ok {
			http.Error(w, "no foo", http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, v)
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.Options.MaxAge = -1
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// browser is an http.Client with a cookie jar. Cookies do not depend on
// the port, so one browser carries its cookie between two test servers
// on 127.0.0.1, as between two nodes behind a load balancer.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, c: &http.Client{Jar: jar}}
}

// get returns the response (body closed) and its body.
func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Get(u)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, string(body)
}

func (b *browser) body(u string) string {
	b.t.Helper()
	_, body := b.get(u)
	return body
}

// cookie returns the browser's session cookie value for u, or "".
func (b *browser) cookie(u string) string {
	pu, err := url.Parse(u)
	require.NoError(b.t, err)
	for _, c := range b.c.Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

type cookie = http.Cookie

func mustURL(t *testing.T, u string) *url.URL {
	t.Helper()
	pu, err := url.Parse(u)
	require.NoError(t, err)
	return pu
}
