package gorillastore_test

import (
	"encoding/gob"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/gorillastore"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/peersession/peersession/internal/testclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cookie holds the peersession cookie value and nothing else:
// token[.stamp], none of the session's values.
var idOnly = regexp.MustCompile(`^[A-Za-z0-9_-]{43}(\.[0-9a-z]+)?$`)

func TestSaveStoresOnlyTheIDInTheCookie(t *testing.T) {
	t.Parallel()
	store, st := newStore(t)
	srv := app(t, store)
	br := newBrowser(t)

	br.Get(srv.URL + "/put?v=secret-value")
	v := br.Cookie(srv.URL, name)
	assert.Regexp(t, idOnly, v)
	assert.NotContains(t, v, "secret")
	assert.Equal(t, 1, st.Stats().Sessions)
	assert.Equal(t, "secret-value", br.Body(srv.URL+"/get"))

	// Further saves change the version stamp, not the session.
	br.Get(srv.URL + "/put?v=other")
	assert.Equal(t, strings.SplitN(v, ".", 2)[0], strings.SplitN(br.Cookie(srv.URL, name), ".", 2)[0])
	assert.Equal(t, "other", br.Body(srv.URL+"/get"))
	assert.Equal(t, 1, st.Stats().Sessions)
}

type cart struct {
	Items []string
	Total int
}

func init() { gob.Register(cart{}) }

// Values round-trip through gob, with any key and value type gob knows.
func TestValuesRoundTrip(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	values := map[any]any{
		"user":  "alice",
		"id":    int64(42),
		3:       true,
		"tags":  []string{"a", "b"},
		"cart":  cart{Items: []string{"book"}, Total: 12},
		"ratio": 0.5,
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	s, err := store.New(r, name)
	require.NoError(t, err)
	for k, v := range values {
		s.Values[k] = v
	}
	require.NoError(t, store.Save(r, w, s))

	r = httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	got, err := store.New(r, name)
	require.NoError(t, err)
	assert.False(t, got.IsNew)
	assert.Equal(t, s.ID, got.ID)
	assert.Equal(t, values, got.Values)
}

// A value gob cannot encode fails Save and says what to do.
func TestUnregisteredTypeFails(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	type unregistered struct{ A int }
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	s, err := store.New(r, name)
	require.NoError(t, err)
	s.Values["x"] = unregistered{1}
	err = store.Save(r, httptest.NewRecorder(), s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gob.Register")
}

// Get caches the session in gorilla's registry for the request, as
// gorilla's own stores do.
func TestGetIsCachedPerRequest(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	s1, err := store.Get(r, name)
	require.NoError(t, err)
	s2, err := store.Get(r, name)
	require.NoError(t, err)
	assert.Same(t, s1, s2)
	assert.True(t, s1.IsNew)
}

// Save writes the cookie with the session's Options.
func TestOptionsAreHonoured(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	store.Options = &sessions.Options{
		Path: "/app", Domain: "example.com", MaxAge: 3600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	}
	r := httptest.NewRequest(http.MethodGet, "/app", nil)
	s, err := store.New(r, name)
	require.NoError(t, err)
	s.Values["foo"] = "bar"
	w := httptest.NewRecorder()
	require.NoError(t, store.Save(r, w, s))

	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.Equal(t, name, c.Name)
	assert.Equal(t, s.ID, c.Value)
	assert.Equal(t, "/app", c.Path)
	assert.Equal(t, "example.com", c.Domain)
	assert.Equal(t, 3600, c.MaxAge)
	assert.True(t, c.Secure)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)

	// A session's own Options override the store's defaults, and
	// changing them does not change the store's.
	s.Options.MaxAge = 0
	s.Options.Path = "/"
	w = httptest.NewRecorder()
	require.NoError(t, store.Save(r, w, s))
	c = w.Result().Cookies()[0]
	assert.Equal(t, 0, c.MaxAge)
	assert.Equal(t, "/", c.Path)
	assert.Equal(t, 3600, store.Options.MaxAge)

	store.MaxAge(60)
	assert.Equal(t, 60, store.Options.MaxAge)
}

// MaxAge < 0 deletes the session on the server and expires the cookie;
// presenting the old cookie again gets a new session.
func TestNegativeMaxAgeDeletes(t *testing.T) {
	t.Parallel()
	store, st := newStore(t)
	srv := app(t, store)
	br := newBrowser(t)

	br.Get(srv.URL + "/put?v=bar")
	old := br.Cookie(srv.URL, name)
	require.Equal(t, 1, st.Stats().Sessions)

	res, _ := br.Get(srv.URL + "/destroy")
	setCookie := res.Header.Get("Set-Cookie")
	assert.True(t, strings.HasPrefix(setCookie, name+"=;"), setCookie)
	assert.Contains(t, setCookie, "Max-Age=0")
	assert.Equal(t, 0, st.Stats().Sessions)
	assert.Empty(t, br.Cookie(srv.URL, name))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: old})
	s, err := store.New(r, name)
	require.NoError(t, err)
	assert.True(t, s.IsNew)
	assert.Empty(t, s.Values)
}

// MaxAge > 0 also bounds the session on the server.
func TestMaxAgeExpiresOnTheServer(t *testing.T) {
	t.Parallel()
	store, st := newStore(t)
	store.MaxAge(1)
	srv := app(t, store)
	br := newBrowser(t)

	br.Get(srv.URL + "/put?v=bar")
	v := br.Cookie(srv.URL, name)
	require.NotEmpty(t, v)
	// Present the cookie beyond its browser lifetime, as a client
	// ignoring Max-Age would.
	require.Eventually(t, func() bool {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: name, Value: v})
		s, err := store.New(r, name)
		return err == nil && s.IsNew
	}, waitFor, tick)
	assert.Equal(t, 0, st.Stats().Sessions, "finding it expired ends it")
}

// A cookie naming no session is never adopted: Save issues a new ID.
func TestUnknownIDIsNotAdopted(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	planted := strings.Repeat("A", 43)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: planted})
	s, err := store.New(r, name)
	require.NoError(t, err)
	assert.True(t, s.IsNew)
	s.Values["foo"] = "bar"
	require.NoError(t, store.Save(r, httptest.NewRecorder(), s))
	assert.NotEqual(t, planted, strings.SplitN(s.ID, ".", 2)[0])
}

// A session destroyed while a request held it is not brought back by
// that request's Save.
func TestSaveAfterDestroyElsewhereFails(t *testing.T) {
	t.Parallel()
	store, st := newStore(t)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	s, err := store.New(r, name)
	require.NoError(t, err)
	s.Values["user"] = "alice"
	require.NoError(t, store.Save(r, httptest.NewRecorder(), s))

	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: s.ID})
	held, err := store.New(r, name)
	require.NoError(t, err)
	require.NoError(t, st.Delete(t.Context(), s.ID)) // "log out everywhere"
	held.Values["cart"] = "book"
	err = store.Save(r, httptest.NewRecorder(), held)
	assert.ErrorIs(t, err, peersession.ErrSessionEnded)
	assert.Equal(t, 0, st.Stats().Sessions)
}

// Two named sessions in one request are two peersession sessions and two
// cookies.
func TestTwoNamedSessions(t *testing.T) {
	t.Parallel()
	store, st := newStore(t)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	for _, n := range []string{"one", "two"} {
		s, err := store.Get(r, n)
		require.NoError(t, err)
		s.Values["n"] = n
	}
	require.NoError(t, sessions.Save(r, w))
	assert.Len(t, w.Result().Cookies(), 2)
	assert.Equal(t, 2, st.Stats().Sessions)
}

// One line is enough: the session lives as long as gorilla's MaxAge (30
// days by default), not peersession's own IdleTimeout, with nothing else
// configured to match.
func TestSessionLivesForMaxAgeNotThePeersessionIdleTimeout(t *testing.T) {
	var clk testclock.Clock
	st, err := peersession.New(peersession.Config{IdleTimeout: time.Minute, Lifetime: time.Hour, Now: clk.Now})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	srv := app(t, gorillastore.New(st))
	br := newBrowser(t)
	br.Get(srv.URL + "/put?v=bar")

	clk.Advance(2 * time.Hour) // past peersession's IdleTimeout and Lifetime
	st.Sweep()
	assert.Equal(t, "bar", br.Body(srv.URL+"/get"))
}

// Behind a TLS-terminating proxy, and for __Host- names, the cookie is
// Secure even though gorilla's default Options leave Secure off: browsers
// would drop a __Host- cookie without it, and an https site's cookie
// should never travel in clear.
func TestCookieIsSecureBehindATLSProxy(t *testing.T) {
	st := testcluster.Single(t)
	store := gorillastore.New(st)
	for _, tc := range []struct {
		name, cookie string
		header       string
		want         bool
	}{
		{"plain http", "s", "", false},
		{"X-Forwarded-Proto https", "s", "https", true},
		{"__Host- name", "__Host-s", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set("X-Forwarded-Proto", tc.header)
			}
			w := httptest.NewRecorder()
			s, err := store.New(r, tc.cookie)
			require.NoError(t, err)
			s.Values["k"] = "v"
			require.NoError(t, s.Save(r, w))
			cookies := w.Result().Cookies()
			require.Len(t, cookies, 1)
			assert.Equal(t, tc.want, cookies[0].Secure)
			assert.False(t, store.Options.Secure, "the store's defaults are not changed")
		})
	}
}
