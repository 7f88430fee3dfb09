package ginstore_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"github.com/peersession/peersession/adapters/ginstore"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	shared "github.com/peersession/peersession/internal/testcluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const name = "app-session"

// app is a gin application over store: /put stores the query's v under
// "foo", /get writes it back (404 "no foo" if missing), /delete removes
// "foo", /incr adds one to the int "n" and writes the new count, /logout
// saves with MaxAge -1.
func app(t *testing.T, store sessions.Store) *httptest.Server {
	r := gin.New()
	r.Use(sessions.Sessions(name, store))
	save := func(c *gin.Context, s sessions.Session) bool {
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return false
		}
		return true
	}
	r.GET("/put", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("foo", c.Query("v"))
		if save(c, s) {
			c.String(http.StatusOK, "ok")
		}
	})
	r.GET("/get", func(c *gin.Context) {
		v, ok := sessions.Default(c).Get("foo").(string)
		if !ok {
			c.String(http.StatusNotFound, "no foo")
			return
		}
		c.String(http.StatusOK, v)
	})
	r.GET("/delete", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Delete("foo")
		if save(c, s) {
			c.String(http.StatusOK, "ok")
		}
	})
	r.GET("/incr", func(c *gin.Context) {
		s := sessions.Default(c)
		n, _ := s.Get("n").(int)
		s.Set("n", n+1)
		if save(c, s) {
			c.String(http.StatusOK, strconv.Itoa(n+1))
		}
	})
	r.GET("/logout", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Options(sessions.Options{Path: "/", MaxAge: -1})
		if save(c, s) {
			c.String(http.StatusOK, "ok")
		}
	})
	return testcluster.Serve(t, r)
}

// A gin app on each of two nodes: what one writes, the other reads, with
// every request on the other node than the last; a key deleted on one is
// gone on the other; a logout on one ends the session on both.
func TestClusterGinApps(t *testing.T) {
	t.Parallel()
	pa, pb := testcluster.Pair(t, nil)
	a, b := app(t, ginstore.New(pa)), app(t, ginstore.New(pb))
	br := shared.NewBrowser(t)

	br.Get(a.URL + "/put?v=bar")
	assert.Equal(t, "bar", br.Body(b.URL+"/get"))
	testcluster.CountUp(t, br, 6, a.URL, b.URL)

	br.Get(b.URL + "/delete")
	assert.Equal(t, "no foo", br.Body(a.URL+"/get"))
	assert.Equal(t, 1, pa.Stats().Sessions, "deleting a key keeps the session")

	old := br.Cookie(a.URL, name)
	br.Get(b.URL + "/logout")
	require.Eventually(t, func() bool {
		return pa.Stats().Sessions == 0 && pb.Stats().Sessions == 0
	}, testcluster.WaitFor, testcluster.Tick)
	replayed := shared.NewBrowser(t)
	replayed.SetCookie(a.URL, name, old)
	res, _ := replayed.Get(a.URL + "/incr")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.NotEqual(t, old, replayed.Cookie(a.URL, name), "the ended session's ID is not adopted")
}

// New sessions get gorillastore's defaults until Options replaces them, as
// gin-contrib's own stores' Options do; a MaxAge set there also bounds the
// session on the server.
func TestOptions(t *testing.T) {
	t.Parallel()
	st := testcluster.Single(t)
	store := ginstore.New(st)
	assert.Equal(t, "/", store.Store.Options.Path)
	assert.Equal(t, 86400*30, store.Store.Options.MaxAge)
	assert.True(t, store.Store.Options.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, store.Store.Options.SameSite)

	srv := app(t, store)
	br := shared.NewBrowser(t)
	res, _ := br.Get(srv.URL + "/put?v=bar")
	cookies := res.Cookies()
	require.Len(t, cookies, 1)
	assert.True(t, cookies[0].HttpOnly)
	assert.Equal(t, 86400*30, cookies[0].MaxAge)

	store.Options(sessions.Options{Path: "/", MaxAge: 1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	br = shared.NewBrowser(t)
	res, _ = br.Get(srv.URL + "/put?v=short")
	cookies = res.Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.Equal(t, 1, c.MaxAge)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.False(t, c.Secure)

	// Presented after its MaxAge, as by a client ignoring Max-Age, the
	// cookie names nothing: the server ended the session.
	replayed := shared.NewBrowser(t)
	replayed.SetCookie(srv.URL, name, c.Value)
	require.Eventually(t, func() bool { return replayed.Body(srv.URL+"/get") == "no foo" }, testcluster.WaitFor, testcluster.Tick)
	assert.Equal(t, 1, st.Stats().Sessions, "only the first session is left")
}

// ginstore's Store is a gorilla store too: an app may hand it to code
// written for gorilla/sessions.
func TestIsAGorillaStore(t *testing.T) {
	t.Parallel()
	var store gsessions.Store = ginstore.New(testcluster.Single(t))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	s, err := store.Get(r, name)
	require.NoError(t, err)
	s.Values["k"] = "v"
	w := httptest.NewRecorder()
	require.NoError(t, s.Save(r, w))
	require.Len(t, w.Result().Cookies(), 1)
}
