package peersession

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lateClient is a client of a server of st's middleware where /login sets
// user alice, /whoami answers the user, and /late writes the response
// header and then calls late with the session.
func lateClient(t *testing.T, st *Store, late func(s *Session)) *client {
	t.Helper()
	srv := httptest.NewServer(st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		switch r.URL.Path {
		case "/login":
			require.NoError(t, s.Set("user", "alice"))
		case "/late":
			w.WriteHeader(http.StatusOK)
			late(s)
		case "/whoami":
			var u string
			_, _ = s.Get("user", &u)
			_, _ = w.Write([]byte(u))
		}
	})))
	t.Cleanup(srv.Close)
	return newClient(t, srv)
}

// RenewID after the response headers went out would give the session an
// ID the client never learns, logging the user out: it returns
// ErrHeadersSent and changes nothing, so the user keeps the session.
func TestRenewIDAfterHeadersIsAnErrorAndKeepsTheSession(t *testing.T) {
	st := newTestStore(t, Config{})
	c := lateClient(t, st, func(s *Session) {
		err := s.RenewID()
		assert.ErrorIs(t, err, ErrHeadersSent)
		assert.Contains(t, err.Error(), "before writing the response")
	})
	c.do("POST", "/login")
	before := c.cookie("session")
	c.do("POST", "/late")
	assert.Equal(t, before, c.cookie("session"), "no new cookie was sent")
	_, body := c.do("GET", "/whoami")
	assert.Equal(t, "alice", body, "the session the client holds is still alive")
	assert.Zero(t, st.Stats().LateCookies, "nothing changed after the headers")
}

// Destroy after the headers still ends the session (a logout must log
// out), and says that the cookie could not be cleared.
func TestDestroyAfterHeadersEndsTheSessionAndSaysSo(t *testing.T) {
	st := newTestStore(t, Config{})
	c := lateClient(t, st, func(s *Session) { assert.ErrorIs(t, s.Destroy(), ErrHeadersSent) })
	c.do("POST", "/login")
	require.Equal(t, 1, st.Len())
	c.do("POST", "/late")
	sess, err := st.Load(context.Background(), c.cookie("session"))
	assert.ErrorIs(t, err, ErrNotFound, "the session ended: %v", sess)
}

// After Close every method says ErrClosed, and the middleware answers
// 503 rather than serve an empty session as if the user were logged out.
func TestEverythingAfterCloseIsErrClosed(t *testing.T) {
	st, err := New(Config{})
	require.NoError(t, err)
	ctx := context.Background()
	s := sessionWith(t, st, "k", "v")
	require.NoError(t, s.SetPrincipal("alice"))
	tok := save(t, st, s)
	require.NoError(t, st.Close())

	_, err = st.Load(ctx, tok)
	assert.ErrorIs(t, err, ErrClosed, "Load")
	_, err = st.Save(ctx, s)
	assert.ErrorIs(t, err, ErrClosed, "Save")
	assert.ErrorIs(t, st.Delete(ctx, tok), ErrClosed, "Delete")
	_, err = st.DestroyPrincipal(ctx, "alice")
	assert.ErrorIs(t, err, ErrClosed, "DestroyPrincipal")
	fresh := st.NewSession(ctx)
	assert.ErrorIs(t, fresh.Set("k", "v"), ErrClosed, "Set")
	assert.ErrorIs(t, fresh.SetPrincipal("bob"), ErrClosed, "SetPrincipal")
	assert.ErrorIs(t, fresh.RenewID(), ErrClosed, "RenewID")
	assert.ErrorIs(t, fresh.Destroy(), ErrClosed, "Destroy")
	_, err = fresh.Get("k", new(string))
	assert.ErrorIs(t, err, ErrClosed, "Get")

	called := false
	h := st.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.False(t, called, "the handler does not run on a closed store")
}
