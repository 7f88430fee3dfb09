package peersession

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is an injectable wall clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestStore returns a single-node store closed at the end of the test.
func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	st, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

// client is a browser stand-in: an http.Client with its own cookie jar.
type client struct {
	t   testing.TB
	c   *http.Client
	url string
}

func newClient(t testing.TB, srv *httptest.Server) *client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &client{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
}

// do runs a request and returns the response with its body read.
func (c *client) do(method, path string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, nil)
	require.NoError(c.t, err)
	res, err := c.c.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return res, string(b)
}

// cookie returns the jar's session cookie value for the server, or "".
func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.url)
	for _, k := range c.c.Jar.Cookies(u) {
		if k.Name == name {
			return k.Value
		}
	}
	return ""
}

// setCookie plants a cookie in the jar, as an attacker would.
func (c *client) setCookie(name, value string) {
	u, _ := url.Parse(c.url)
	c.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}
