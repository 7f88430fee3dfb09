package peersession

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testclock"
	"github.com/peersession/peersession/internal/testcluster"
)

// newFakeClock returns a clock for Config.Now that moves only when told.
func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
}

// newTestStore returns a single-node store closed at the end of the test.
func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	st, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

// sessionWith returns a new, unsaved session of st holding the key/value
// pairs kv (key, value, key, value...).
func sessionWith(t testing.TB, st *Store, kv ...any) *Session {
	t.Helper()
	s := st.NewSession(context.Background())
	for i := 0; i+1 < len(kv); i += 2 {
		require.NoError(t, s.Set(kv[i].(string), kv[i+1]))
	}
	return s
}

// save saves s on st and returns its cookie value.
func save(t testing.TB, st *Store, s *Session) string {
	t.Helper()
	tok, err := st.Save(context.Background(), s)
	require.NoError(t, err)
	return tok
}

// savedSession creates a session of st holding the key/value pairs kv,
// saves it and returns its cookie value.
func savedSession(t testing.TB, st *Store, kv ...any) string {
	t.Helper()
	return save(t, st, sessionWith(t, st, kv...))
}

// client is a browser stand-in (an http.Client with its own cookie jar)
// talking to one server.
type client struct {
	*testcluster.Browser
	t   testing.TB
	url string
}

func newClient(t testing.TB, srv *httptest.Server) *client {
	t.Helper()
	return &client{Browser: testcluster.NewBrowser(t), t: t, url: srv.URL}
}

// do runs a request and returns the response with its body read.
func (c *client) do(method, path string) (*http.Response, string) {
	c.t.Helper()
	return c.Do(method, c.url+path)
}

// cookie returns the jar's session cookie value for the server, or "".
func (c *client) cookie(name string) string {
	c.t.Helper()
	return c.Cookie(c.url, name)
}

// setCookie plants a cookie in the jar, as an attacker would.
func (c *client) setCookie(name, value string) {
	c.t.Helper()
	c.SetCookie(c.url, name, value)
}
