package peersession

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// appServer serves testApp(st) until the end of the test.
func appServer(t testing.TB, st *Store) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(testApp(st))
	t.Cleanup(srv.Close)
	return srv
}

// testApp is a small app over a store: set, get, login, logout, count.
func testApp(st *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		if err := s.Set(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprint(w, "ok") // the handler writes before returning
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		var v string
		ok, err := FromContext(r.Context()).Get(r.FormValue("k"), &v)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%v:%s", ok, v)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.RenewID()
		require.NoError(nil, s.SetPrincipal(r.FormValue("u")))
		_ = s.Set("user", r.FormValue("u"))
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Destroy()
	})
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		var n int
		_, _ = s.Get(r.FormValue("k"), &n)
		_ = s.Set(r.FormValue("k"), n+1)
	})
	return st.Middleware(mux)
}

func setCookieHeader(t *testing.T, res *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestCookieHasSafeDefaults(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := appServer(t, st)
	res, _ := newClient(t, srv).do("GET", "/set?k=a&v=1")

	c := setCookieHeader(t, res, "session")
	require.NotNil(t, c, "Set-Cookie missing although the handler wrote the body first")
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.False(t, c.Secure, "plain HTTP without Cookie.Secure")
	assert.True(t, c.Expires.IsZero(), "a browser-session cookie by default")
	token, _ := parseCookie(c.Value)
	assert.True(t, validToken(token))
}

func TestCookieAttributesFromConfig(t *testing.T) {
	clk := newFakeClock()
	st := newTestStore(t, Config{Now: clk.Now, Lifetime: time.Hour, Cookie: CookieConfig{
		Name: "JSESSIONID", Domain: "example.com", Path: "/app", Secure: true,
		SameSite: http.SameSiteStrictMode, Persist: true,
	}})
	rec := httptest.NewRecorder()
	testApp(st).ServeHTTP(rec, httptest.NewRequest("GET", "/set?k=a&v=1", nil))

	c := setCookieHeader(t, rec.Result(), "JSESSIONID")
	require.NotNil(t, c)
	assert.Equal(t, "example.com", c.Domain)
	assert.Equal(t, "/app", c.Path)
	assert.True(t, c.Secure)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, clk.Now().Add(time.Hour).Unix(), c.Expires.Unix(), "Persist: Expires is the absolute deadline")
}

func TestSecureCookieOverTLS(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := httptest.NewTLSServer(testApp(st))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/set?k=a&v=1")
	require.NoError(t, err)
	res.Body.Close()
	c := setCookieHeader(t, res, "session")
	require.NotNil(t, c)
	assert.True(t, c.Secure)
}

func TestSessionSurvivesRequests(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=cart&v=apple")
	_, body := cl.do("GET", "/get?k=cart")
	assert.Equal(t, "true:apple", body)
	assert.Equal(t, 1, st.Len())
}

func TestReadOnlyRequestCreatesNoSession(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := appServer(t, st)
	res, body := newClient(t, srv).do("GET", "/get?k=x")
	assert.Equal(t, "false:", body)
	assert.Nil(t, setCookieHeader(t, res, "session"))
	assert.Equal(t, 0, st.Len())
}

func TestForgedOrUnknownIDIsNeverAdopted(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := appServer(t, st)
	for name, planted := range map[string]string{
		"unknown but well-formed": newToken(),
		"with a forged stamp":     newToken() + ".zzzzzz",
		"too short":               "abc",
		"too long":                newToken() + "A",
		"non-canonical last char": newToken()[:tokenLen-1] + "B",
		"bad alphabet":            strings.Repeat("*", tokenLen),
		"oversized":               strings.Repeat("A", 4000),
	} {
		t.Run(name, func(t *testing.T) {
			cl := newClient(t, srv)
			cl.setCookie("session", planted)
			res, _ := cl.do("GET", "/set?k=a&v=1")
			require.Equal(t, 200, res.StatusCode)
			got, _ := parseCookie(cl.cookie("session"))
			require.NotEmpty(t, got)
			plantedToken, _ := parseCookie(planted)
			assert.NotEqual(t, plantedToken, got, "the planted ID was adopted")
			_, body := cl.do("GET", "/get?k=a")
			assert.Equal(t, "true:1", body)
		})
	}
}

func TestRenewIDMovesDataAndKillsOldID(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=cart&v=pear")
	before := cl.cookie("session")
	cl.do("POST", "/login?u=alice")
	after := cl.cookie("session")
	oldTok, _ := parseCookie(before)
	newTok, _ := parseCookie(after)
	require.NotEqual(t, oldTok, newTok)

	_, body := cl.do("GET", "/get?k=cart")
	assert.Equal(t, "true:pear", body, "data moved to the new ID")

	attacker := newClient(t, srv)
	attacker.setCookie("session", before)
	_, body = attacker.do("GET", "/get?k=cart")
	assert.Equal(t, "false:", body, "the old ID is dead")
	assert.Equal(t, 1, st.Len())
	assert.Equal(t, []string{idOf(newTok)}, st.PrincipalSessions("alice"))
}

func TestDestroyEndsSessionAndExpiresCookie(t *testing.T) {
	var destroyed []Event
	st := newTestStore(t, Config{OnDestroy: func(e Event) { destroyed = append(destroyed, e) }})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=a&v=1")
	tok, _ := parseCookie(cl.cookie("session"))
	res, _ := cl.do("POST", "/logout")
	c := setCookieHeader(t, res, "session")
	require.NotNil(t, c)
	assert.Equal(t, -1, c.MaxAge)
	assert.Equal(t, 0, st.Len())
	_, err := st.Load(t.Context(), tok)
	assert.ErrorIs(t, err, ErrNotFound)
	require.Len(t, destroyed, 1)
	assert.Equal(t, idOf(tok), destroyed[0].ID)
}

func TestIdleExpiry(t *testing.T) {
	clk := newFakeClock()
	var expired int
	st := newTestStore(t, Config{Now: clk.Now, IdleTimeout: 10 * time.Minute, OnExpire: func(Event) { expired++ }})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=a&v=1")

	clk.Advance(9 * time.Minute) // used within the idle timeout: kept
	_, body := cl.do("GET", "/get?k=a")
	require.Equal(t, "true:1", body)
	clk.Advance(9 * time.Minute) // 18 minutes after creation, 9 after last use
	_, body = cl.do("GET", "/get?k=a")
	require.Equal(t, "true:1", body, "use moved the idle deadline")

	clk.Advance(10 * time.Minute)
	_, body = cl.do("GET", "/get?k=a")
	assert.Equal(t, "false:", body, "expired sessions are invisible at once")
	assert.Equal(t, 1, st.Sweep())
	assert.Equal(t, 1, expired)
	assert.Equal(t, 0, st.Len())
}

func TestAbsoluteExpiry(t *testing.T) {
	clk := newFakeClock()
	st := newTestStore(t, Config{Now: clk.Now, IdleTimeout: time.Hour, Lifetime: 2 * time.Hour})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=a&v=1")
	for range 3 { // active every 50 minutes: never idle
		clk.Advance(50 * time.Minute)
		_, body := cl.do("GET", "/get?k=a")
		if clk.Now().Sub(newFakeClock().Now()) < 2*time.Hour {
			require.Equal(t, "true:1", body)
		} else {
			assert.Equal(t, "false:", body, "past the absolute lifetime despite activity")
		}
	}
}

func TestReadsDoNotWriteUntilTouchInterval(t *testing.T) {
	clk := newFakeClock()
	st := newTestStore(t, Config{Now: clk.Now, IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=a&v=1")
	id := idOf(must(parseCookie(cl.cookie("session"))))
	created := st.shards.get(id)

	clk.Advance(30 * time.Second)
	cl.do("GET", "/get?k=a")
	assert.Same(t, created, st.shards.get(id), "a read within TouchInterval writes nothing")

	clk.Advance(31 * time.Second)
	cl.do("GET", "/get?k=a")
	touched := st.shards.get(id)
	assert.NotSame(t, created, touched)
	assert.Equal(t, clk.Now().UnixNano(), touched.rec.Access)
}

func must(token string, _ int64) string { return token }

func TestSizeLimitKeepsOldSession(t *testing.T) {
	st := newTestStore(t, Config{MaxSessionBytes: 1024})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=a&v=small")
	res, body := cl.do("POST", "/set?k=b&v="+strings.Repeat("x", 2000))
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	assert.Contains(t, body, "MaxSessionBytes (1024)")
	_, body = cl.do("GET", "/get?k=a")
	assert.Equal(t, "true:small", body)
	_, body = cl.do("GET", "/get?k=b")
	assert.Equal(t, "false:", body)
}

func TestSizeLimitOnConcurrentMergeFailsCommit(t *testing.T) {
	st := newTestStore(t, Config{MaxSessionBytes: 1000})
	tok := savedSession(t, st, "a", strings.Repeat("a", 100))

	// Two requests each stay under the limit, together they would not.
	r1, err := st.Load(t.Context(), tok)
	require.NoError(t, err)
	r2, err := st.Load(t.Context(), tok)
	require.NoError(t, err)
	require.NoError(t, r1.Set("b", strings.Repeat("b", 500)))
	require.NoError(t, r2.Set("c", strings.Repeat("c", 500)))
	_, err = st.Save(t.Context(), r1)
	require.NoError(t, err)
	_, err = st.Save(t.Context(), r2)
	require.ErrorIs(t, err, ErrTooLarge)

	got, err := st.Load(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, got.Keys(), "the failed commit changed nothing")
}

func TestMaxSessionsRefusesNewButKeepsExisting(t *testing.T) {
	st := newTestStore(t, Config{MaxSessions: 2})
	srv := appServer(t, st)
	alice, bob := newClient(t, srv), newClient(t, srv)
	alice.do("POST", "/login?u=alice")
	bob.do("POST", "/login?u=bob")
	res, _ := newClient(t, srv).do("POST", "/set?k=a&v=1")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	_, body := alice.do("GET", "/get?k=user")
	assert.Equal(t, "true:alice", body, "a flood of new sessions evicts nobody")
	assert.Equal(t, 2, st.Len())
}

func TestDestroyPrincipalEndsAllOfItsSessions(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := appServer(t, st)
	laptop, phone, other := newClient(t, srv), newClient(t, srv), newClient(t, srv)
	laptop.do("POST", "/login?u=alice")
	phone.do("POST", "/login?u=alice")
	other.do("POST", "/login?u=bob")
	require.Len(t, st.PrincipalSessions("alice"), 2)

	n, err := st.DestroyPrincipal(t.Context(), "alice")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, c := range []*client{laptop, phone} {
		_, body := c.do("GET", "/get?k=user")
		assert.Equal(t, "false:", body)
	}
	_, body := other.do("GET", "/get?k=user")
	assert.Equal(t, "true:bob", body)
	assert.Empty(t, st.PrincipalSessions("alice"))
}

func TestConcurrentRequestsOnOneSession(t *testing.T) {
	st := newTestStore(t, Config{})
	srv := appServer(t, st)
	cl := newClient(t, srv)
	cl.do("POST", "/set?k=start&v=1")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				cl.do("POST", fmt.Sprintf("/incr?k=k%d", i))
			}
		}()
	}
	wg.Wait()
	s, err := st.Load(t.Context(), cl.cookie("session"))
	require.NoError(t, err)
	for i := range 8 {
		var n int
		ok, err := s.Get(fmt.Sprintf("k%d", i), &n)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, 20, n, "different keys changed concurrently all survive")
	}
}

func TestStreamingHandlerStreamsAndGetsCookie(t *testing.T) {
	st := newTestStore(t, Config{})
	release := make(chan struct{})
	h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = FromContext(r.Context()).Set("k", "v")
		fmt.Fprintln(w, "first")
		require.NoError(t, http.NewResponseController(w).Flush())
		<-release // the client must see "first" before the handler ends
		fmt.Fprintln(w, "second")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	require.NotNil(t, setCookieHeader(t, res, "session"))
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "first\n", line)
	close(release)
}

func TestChangeAfterHeadersIsKeptAndReported(t *testing.T) {
	st := newTestStore(t, Config{})
	h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_ = FromContext(r.Context()).Set("late", "v")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Empty(t, rec.Result().Cookies())
	assert.Equal(t, int64(1), st.Stats().LateCookies)
	assert.Equal(t, 1, st.Len(), "the change is stored")
}

func TestHeaderMode(t *testing.T) {
	st := newTestStore(t, Config{Header: "X-Session-Token"})
	h := testApp(st)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/set?k=a&v=1", nil))
	tok := rec.Header().Get("X-Session-Token")
	require.NotEmpty(t, tok)

	req := httptest.NewRequest("GET", "/get?k=a", nil)
	req.Header.Set("X-Session-Token", tok)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, "true:1", rec.Body.String())
}

func TestHijackAndUnwrapPassThrough(t *testing.T) {
	st := newTestStore(t, Config{})
	h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = FromContext(r.Context()).Set("k", "v")
		conn, buf, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		_ = buf.Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 204, res.StatusCode)
	assert.Equal(t, 1, st.Len())
}

func TestValueIsCopiedAtSet(t *testing.T) {
	st := newTestStore(t, Config{})
	s := st.NewSession(t.Context())
	cart := []string{"apple"}
	require.NoError(t, s.Set("cart", cart))
	cart[0] = "mutated"
	var got []string
	_, err := s.Get("cart", &got)
	require.NoError(t, err)
	assert.Equal(t, []string{"apple"}, got)
}

func TestGetIntoWrongTypeIsAnError(t *testing.T) {
	st := newTestStore(t, Config{})
	s := st.NewSession(t.Context())
	require.NoError(t, s.Set("n", "not a number"))
	var n int
	ok, err := s.Get("n", &n)
	assert.True(t, ok)
	assert.Error(t, err)
	ok, err = s.Get("missing", &n)
	assert.False(t, ok)
	assert.NoError(t, err)
}

func TestConfigErrorsNameTheField(t *testing.T) {
	_, err := New(Config{IdleTimeout: -1})
	assert.ErrorContains(t, err, "Config.IdleTimeout")
	_, err = New(Config{Cookie: CookieConfig{Name: "bad name"}})
	assert.ErrorContains(t, err, "Config.Cookie.Name")
}

func TestCloseIsIdempotentAndRefusesWrites(t *testing.T) {
	st, err := New(Config{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, st.Close())
	s := st.NewSession(t.Context())
	assert.ErrorIs(t, s.Set("a", 1), ErrClosed)
	_, err = st.Save(t.Context(), s)
	assert.True(t, errors.Is(err, ErrClosed))
}

func TestSetAfterDestroyStartsAFreshSessionAndEndsTheOld(t *testing.T) {
	st := newTestStore(t, Config{})
	h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Destroy()
		assert.False(t, s.Has("cart"), "destroyed data is gone at once")
		require.NoError(t, s.Set("flash", "logged out"))
	}))
	old := savedSession(t, st, "cart", "apple")

	req := httptest.NewRequest("POST", "/logout", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: old})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	c := setCookieHeader(t, rec.Result(), "session")
	require.NotNil(t, c)
	fresh, _ := parseCookie(c.Value)
	oldTok, _ := parseCookie(old)
	require.NotEmpty(t, fresh)
	assert.NotEqual(t, oldTok, fresh)
	_, err := st.Load(t.Context(), old)
	assert.ErrorIs(t, err, ErrNotFound, "the old session ended")
	got, err := st.Load(t.Context(), c.Value)
	require.NoError(t, err)
	assert.Equal(t, []string{"flash"}, got.Keys())
}

func TestWriteToSessionEndedMeanwhileIsDroppedNotAnError(t *testing.T) {
	st := newTestStore(t, Config{})
	s := sessionWith(t, st)
	require.NoError(t, s.SetPrincipal("alice"))
	tok := save(t, st, s)

	h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		assert.False(t, s.IsNew())
		_, err := st.DestroyPrincipal(r.Context(), "alice") // "log out everywhere", from another tab
		require.NoError(t, err)
		require.NoError(t, s.Set("k", "v"))
		fmt.Fprint(w, "done")
	}))
	req := httptest.NewRequest("POST", "/", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: tok})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "done", rec.Body.String())
	c := setCookieHeader(t, rec.Result(), "session")
	require.NotNil(t, c)
	assert.Equal(t, -1, c.MaxAge, "the cookie of the ended session is cleared")
	_, err := st.Load(t.Context(), tok)
	assert.ErrorIs(t, err, ErrNotFound, "the session did not come back")
}
