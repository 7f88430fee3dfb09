package scsstore_test

// The behaviour tests scs applies to its own stores (memstore's
// find/commit/delete/expiry/cleanup tests, and the session tests in scs's
// session_test.go that run on its default store), rewritten against
// scsstore. adapters/README.md lists them.

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/scsstore"
	"github.com/peersession/peersession/internal/testclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memstore: TestFind.
func TestFind(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	require.NoError(t, s.Commit("session_token", []byte("encoded_data"), time.Now().Add(time.Minute)))

	b, found, err := s.Find("session_token")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, []byte("encoded_data"), b)
}

// memstore: TestFindMissing.
func TestFindMissing(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	b, found, err := s.Find("missing_session_token")
	require.NoError(t, err)
	assert.False(t, found)
	assert.Nil(t, b)
}

// memstore: TestCommitNew. The data lands in one peersession session.
func TestCommitNew(t *testing.T) {
	t.Parallel()
	s, st := newStore(t)
	require.NoError(t, s.Commit("session_token", []byte("encoded_data"), time.Now().Add(time.Minute)))
	assert.Equal(t, 1, st.Stats().Sessions)

	b, found, err := s.Find("session_token")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, []byte("encoded_data"), b)
}

// memstore: TestCommitUpdated. The data and the expiry are replaced.
func TestCommitUpdated(t *testing.T) {
	t.Parallel()
	s, st := newStore(t)
	require.NoError(t, s.Commit("session_token", []byte("encoded_data"), time.Now().Add(time.Minute)))
	require.NoError(t, s.Commit("session_token", []byte("new_encoded_data"), time.Now().Add(time.Hour)))
	assert.Equal(t, 1, st.Stats().Sessions)

	b, found, err := s.Find("session_token")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, []byte("new_encoded_data"), b)

	// A later commit may also shorten the expiry.
	require.NoError(t, s.Commit("session_token", []byte("new_encoded_data"), time.Now().Add(-time.Second)))
	_, found, err = s.Find("session_token")
	require.NoError(t, err)
	assert.False(t, found)
}

// memstore: TestExpiry. Found before the expiry, not found after it.
func TestExpiry(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	require.NoError(t, s.Commit("session_token", []byte("encoded_data"), time.Now().Add(100*time.Millisecond)))

	_, found, err := s.Find("session_token")
	require.NoError(t, err)
	require.True(t, found)

	require.Eventually(t, func() bool {
		_, found, err := s.Find("session_token")
		return err == nil && !found
	}, waitFor, tick)
}

// memstore: TestDelete; and deleting an unknown token is a no-op.
func TestDelete(t *testing.T) {
	t.Parallel()
	s, st := newStore(t)
	require.NoError(t, s.Commit("session_token", []byte("encoded_data"), time.Now().Add(time.Minute)))
	require.NoError(t, s.Delete("session_token"))

	_, found, err := s.Find("session_token")
	require.NoError(t, err)
	assert.False(t, found)
	assert.Equal(t, 0, st.Stats().Sessions)
	assert.NoError(t, s.Delete("session_token"))
	assert.NoError(t, s.Delete("never_existed"))
}

// memstore: TestCleanupInterval. scs's memstore drops expired items on a
// timer; scsstore ends an expired session when Find meets it (and
// peersession's sweeper frees whatever its own expiry ends).
func TestExpiredSessionIsEnded(t *testing.T) {
	t.Parallel()
	s, st := newStore(t)
	require.NoError(t, s.Commit("session_token", []byte("encoded_data"), time.Now().Add(-time.Millisecond)))
	require.Equal(t, 1, st.Stats().Sessions)

	_, found, err := s.Find("session_token")
	require.NoError(t, err)
	assert.False(t, found)
	assert.Equal(t, 0, st.Stats().Sessions)
	assert.Equal(t, int64(1), st.Stats().Destroyed)
}

// memstore's All: only sessions that have not expired; an empty map, not
// nil, when there are none.
func TestAll(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	all, err := s.All()
	require.NoError(t, err)
	require.NotNil(t, all)
	assert.Empty(t, all)

	require.NoError(t, s.Commit("one", []byte("1"), time.Now().Add(time.Minute)))
	require.NoError(t, s.Commit("two", []byte("2"), time.Now().Add(time.Minute)))
	require.NoError(t, s.Commit("gone", []byte("3"), time.Now().Add(-time.Second)))
	all, err = s.All()
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"one": []byte("1"), "two": []byte("2")}, all)
}

// The Ctx variants behave as the plain ones, and AllCtx honours its
// context.
func TestCtxVariants(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	require.NoError(t, s.CommitCtx(ctx, "session_token", []byte("encoded_data"), time.Now().Add(time.Minute)))
	b, found, err := s.FindCtx(ctx, "session_token")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, []byte("encoded_data"), b)

	all, err := s.AllCtx(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 1)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.AllCtx(cancelled)
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, s.DeleteCtx(ctx, "session_token"))
	_, found, err = s.FindCtx(ctx, "session_token")
	require.NoError(t, err)
	assert.False(t, found)
}

// scs session_test.go: TestLifetime.
func TestLifetime(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	srv := app(t, manager(s, 300*time.Millisecond, 0))
	br := newBrowser(t)

	br.Get(srv.URL + "/put?v=bar")
	assert.Equal(t, "bar", br.Body(srv.URL+"/get"))
	require.Eventually(t, func() bool { return br.Body(srv.URL+"/get") == missing }, waitFor, tick)
}

// scs session_test.go: TestIdleTimeout. Use keeps the session beyond its
// idle timeout; idleness ends it before its lifetime.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	const idle = 200 * time.Millisecond
	srv := app(t, manager(s, time.Minute, idle))
	br := newBrowser(t)

	br.Get(srv.URL + "/put?v=bar")
	start := time.Now()
	for time.Since(start) < 3*idle { // requests far closer together than idle
		require.Equal(t, "bar", br.Body(srv.URL+"/get"))
	}
	// Idle: poll with the bare store, not the browser, which would
	// keep the session alive.
	token := scsCookie(t, br, srv.URL)
	require.Eventually(t, func() bool {
		_, found, err := s.Find(token)
		return err == nil && !found
	}, waitFor, tick)
	assert.Equal(t, missing, br.Body(srv.URL+"/get"))
}

// scs session_test.go: TestDestroy.
func TestDestroy(t *testing.T) {
	t.Parallel()
	s, st := newStore(t)
	sm := manager(s, time.Hour, 0)
	srv := app(t, sm)
	br := newBrowser(t)

	br.Get(srv.URL + "/put?v=bar")
	require.Equal(t, 1, st.Stats().Sessions)
	res, _ := br.Get(srv.URL + "/destroy")
	cookie := res.Header.Get("Set-Cookie")
	assert.True(t, strings.HasPrefix(cookie, sm.Cookie.Name+"=;"), cookie)
	assert.Contains(t, cookie, "Max-Age=0")
	assert.Equal(t, missing, br.Body(srv.URL+"/get"))
	assert.Equal(t, 0, st.Stats().Sessions)
}

// scs session_test.go: TestRenewToken. The data moves to the new token;
// the old one names nothing.
func TestRenewToken(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	srv := app(t, manager(s, time.Hour, 0))
	br := newBrowser(t)

	br.Get(srv.URL + "/put?v=bar")
	old := scsCookie(t, br, srv.URL)
	br.Get(srv.URL + "/renew")
	renewed := scsCookie(t, br, srv.URL)
	assert.NotEqual(t, old, renewed)
	assert.Equal(t, "bar", br.Body(srv.URL+"/get"))

	_, found, err := s.Find(old)
	require.NoError(t, err)
	assert.False(t, found)
}

// scs session_test.go: TestIterate.
func TestIterate(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	sm := manager(s, time.Hour, 0)
	srv := app(t, sm)
	for _, v := range []string{"0", "1", "2"} {
		newBrowser(t).Get(srv.URL + "/put?v=" + v)
	}

	var got []string
	require.NoError(t, sm.Iterate(t.Context(), func(ctx context.Context) error {
		got = append(got, sm.GetString(ctx, "foo"))
		return nil
	}))
	sort.Strings(got)
	assert.Equal(t, []string{"0", "1", "2"}, got)

	err := sm.Iterate(t.Context(), func(context.Context) error { return assert.AnError })
	assert.ErrorIs(t, err, assert.AnError)
}

// scsCookie returns the browser's scs session token for url.
func scsCookie(t *testing.T, br *browser, url string) string {
	t.Helper()
	v := br.Cookie(url, scs.New().Cookie.Name)
	if v == "" {
		t.Fatal("no scs cookie")
	}
	return v
}

// One line is enough: the session lives as long as scs's Lifetime, not
// peersession's own IdleTimeout, with nothing else configured to match.
func TestSessionLivesForTheScsLifetimeNotThePeersessionIdleTimeout(t *testing.T) {
	var clk testclock.Clock
	st, err := peersession.New(peersession.Config{IdleTimeout: time.Minute, Lifetime: time.Hour, Now: clk.Now})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	srv := app(t, manager(scsstore.New(st), 24*time.Hour, 0))
	br := newBrowser(t)
	br.Get(srv.URL + "/put?v=bar")

	clk.Advance(2 * time.Hour) // past peersession's IdleTimeout and Lifetime
	st.Sweep()
	assert.Equal(t, "bar", br.Body(srv.URL+"/get"))
}
