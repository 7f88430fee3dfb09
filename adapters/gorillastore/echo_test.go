package gorillastore_test

// echo's session middleware (github.com/labstack/echo-contrib/session)
// takes a gorilla sessions.Store: gorillastore serves it as it is, on
// every node of a cluster.

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"
	"github.com/peersession/peersession/adapters/gorillastore"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoApp is app's application written for echo with echo-contrib's
// session middleware over store: /put, /get, /incr, /destroy.
func echoApp(t *testing.T, store *gorillastore.Store) *httptest.Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(session.Middleware(store))
	e.GET("/put", func(c echo.Context) error {
		s, err := session.Get(name, c)
		if err != nil {
			return err
		}
		s.Values["foo"] = c.QueryParam("v")
		return s.Save(c.Request(), c.Response())
	})
	e.GET("/get", func(c echo.Context) error {
		s, err := session.Get(name, c)
		if err != nil {
			return err
		}
		v, ok := s.Values["foo"].(string)
		if !ok {
			return c.String(http.StatusNotFound, missing)
		}
		return c.String(http.StatusOK, v)
	})
	e.GET("/incr", func(c echo.Context) error {
		s, err := session.Get(name, c)
		if err != nil {
			return err
		}
		n, _ := s.Values["n"].(int)
		s.Values["n"] = n + 1
		if err := s.Save(c.Request(), c.Response()); err != nil {
			return err
		}
		return c.String(http.StatusOK, strconv.Itoa(n+1))
	})
	e.GET("/destroy", func(c echo.Context) error {
		s, err := session.Get(name, c)
		if err != nil {
			return err
		}
		s.Options.MaxAge = -1
		return s.Save(c.Request(), c.Response())
	})
	return testcluster.Serve(t, e)
}

// An echo app on each of two nodes, with session.Middleware over
// gorillastore: a value set through one node is read through the other,
// alternating nodes each request sees the previous one's write, and a
// session destroyed through one node is gone on both.
func TestEchoContribSessionOnTwoNodes(t *testing.T) {
	t.Parallel()
	pa, pb := testcluster.Pair(t, nil)
	a, b := echoApp(t, gorillastore.New(pa)), echoApp(t, gorillastore.New(pb))
	br := newBrowser(t)

	res, body := br.Get(a.URL + "/put?v=bar")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, "bar", br.Body(b.URL+"/get"))

	testcluster.CountUp(t, br, 6, a.URL, b.URL)

	old := br.Cookie(a.URL, name)
	br.Get(b.URL + "/destroy")
	require.Eventually(t, func() bool {
		return pa.Stats().Sessions == 0 && pb.Stats().Sessions == 0
	}, waitFor, tick)
	assert.Equal(t, missing, replay(t, a.URL, old).Body(a.URL+"/get"))
}
