package peersession

// The route cookie (ClusterConfig.RouteCookie): a route-aware balancer in
// front of real memberlist nodes over loopback keeps every request of a
// session on a node that holds it, and follows the session when it moves.

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/placement"
)

const routeCookie = "psroute"

// withRouteCookie sets ClusterConfig.RouteCookie.
func withRouteCookie(c *Config) { c.Cluster.RouteCookie = routeCookie }

// routeBalancer is a route-aware balancer, as HAProxy's use-server on a
// cookie or an nginx map of the cookie to an upstream: a request whose
// route cookie names a backend goes there, any other to the next backend
// in turn.
type routeBalancer struct {
	*httptest.Server
	next atomic.Uint64

	mu       sync.Mutex // guards backends, names and served
	backends map[string]*url.URL
	names    []string // in the order turns go round
	served   []string // the backend each request went to, in order
}

func newRouteBalancer(t *testing.T) *routeBalancer {
	b := &routeBalancer{backends: map[string]*url.URL{}}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		name, u := b.pick(pr.In)
		b.mu.Lock()
		b.served = append(b.served, name)
		b.mu.Unlock()
		pr.SetURL(u)
	}}
	b.Server = httptest.NewServer(proxy)
	t.Cleanup(b.Close)
	return b
}

// add serves testApp on st as the backend named st's Name.
func (b *routeBalancer) add(t *testing.T, st *Store) {
	srv := httptest.NewServer(testApp(st))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends[st.repl.cfg.Name] = u
	b.names = append(b.names, st.repl.cfg.Name)
}

func (b *routeBalancer) pick(r *http.Request) (string, *url.URL) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, err := r.Cookie(routeCookie); err == nil {
		if u, ok := b.backends[c.Value]; ok {
			return c.Value, u
		}
	}
	name := b.names[int(b.next.Add(1))%len(b.names)]
	return name, b.backends[name]
}

// lastServed returns the backend of the latest request.
func (b *routeBalancer) lastServed() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.served[len(b.served)-1]
}

// owner returns the first holder of the session whose cookie value is
// value under a placement of copies over names.
func owner(copies int, names []string, value string) string {
	tok, _ := parseCookie(value)
	return placement.New(copies, names).Holders(idOf(tok), nil)[0]
}

// In partitioned mode, behind a balancer that follows the route cookie,
// no request costs a fetch: the first lands anywhere and creates the
// session, every later one goes to its owner. After a node joins and the
// sessions it now owns have moved to it, the next request of each such
// session is sent on to it, and still no fetch is served.
func TestRouteCookieKeepsEveryRequestOnAHolder(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) {
		withCopies(2)(c)
		withRouteCookie(c)
		// A write returns once both holders have it, so that the owner
		// has it when the next request arrives (Async would race it).
		c.Cluster.Consistency, c.Cluster.MinAcks = Sync, AllPeers
		c.Cluster.SyncTimeout = 5 * time.Second
	})
	nodes := tc.startAll("a", "b", "c", "d")
	lb := newRouteBalancer(t)
	for _, st := range nodes {
		lb.add(t, st)
	}
	before := []string{"a", "b", "c", "d"}
	after := []string{"a", "b", "c", "d", "e"}

	// Sessions until at least four will be owned by the node that joins.
	var clients []*client
	var cookies []string
	moving := 0
	for i := 0; i < 200 && (len(clients) < 20 || moving < 4); i++ {
		cl := newClient(t, lb.Server)
		res, _ := cl.do("POST", "/set?k=n&v=0")
		require.Equal(t, 200, res.StatusCode)
		v := cl.cookie("session")
		require.NotEmpty(t, v)
		require.Equal(t, owner(2, before, v), cl.cookie(routeCookie), "the route names the session's owner")
		clients, cookies = append(clients, cl), append(cookies, v)
		if owner(2, after, v) == "e" {
			moving++
		}
	}
	require.GreaterOrEqual(t, moving, 4, "no session will move to the joining node")

	for round := 1; round <= 5; round++ {
		for i, cl := range clients {
			res, _ := cl.do("POST", "/set?k=n&v="+string(rune('0'+round)))
			require.Equal(t, 200, res.StatusCode)
			assert.Equal(t, owner(2, before, cookies[i]), lb.lastServed(), "a write went to another node than the owner")
			_, body := cl.do("GET", "/get?k=n")
			require.Equal(t, "true:"+string(rune('0'+round)), body)
		}
	}
	assert.Zero(t, servedBy(nodes...), "a request behind the route-aware balancer cost a fetch")

	e := tc.start("e")
	nodes = append(nodes, e)
	tc.waitMembers(5, nodes...)
	lb.add(t, e)
	waitSettled(t, cookies, nodes...)
	fetched := servedBy(nodes...)

	for i, cl := range clients {
		_, body := cl.do("GET", "/get?k=n")
		require.Equal(t, "true:5", body)
		want := owner(2, after, cookies[i])
		require.Equal(t, want, cl.cookie(routeCookie), "the route did not follow the session's new owner")
		_, body = cl.do("GET", "/get?k=n")
		require.Equal(t, "true:5", body)
		assert.Equal(t, want, lb.lastServed(), "the request after the route changed did not reach the new owner")
	}
	assert.Equal(t, fetched, servedBy(nodes...), "a request after the join cost a fetch")

	// A login's RenewID moves the session to another owner: the route
	// follows the new token.
	cl := clients[0]
	res, _ := cl.do("POST", "/login?u=ann")
	require.Equal(t, 200, res.StatusCode)
	require.NotEqual(t, cookies[0], cl.cookie("session"))
	assert.Equal(t, owner(2, after, cl.cookie("session")), cl.cookie(routeCookie))
}

// In full replication every node holds every session: the route names
// the node that served the request, so the balancer keeps the client
// there (sticky sessions), and a client whose node is gone is moved to
// the node that serves it next.
func TestRouteCookieInFullReplicationNamesTheServingNode(t *testing.T) {
	tc := newTestCluster(t, withRouteCookie)
	nodes := tc.startAll("a", "b", "c")
	lb := newRouteBalancer(t)
	for _, st := range nodes {
		lb.add(t, st)
	}
	cl := newClient(t, lb.Server)
	res, _ := cl.do("POST", "/set?k=n&v=1")
	require.Equal(t, 200, res.StatusCode)
	first := lb.lastServed()
	require.Equal(t, first, cl.cookie(routeCookie))
	for range 10 {
		_, body := cl.do("GET", "/get?k=n")
		require.Equal(t, "true:1", body)
		require.Equal(t, first, lb.lastServed(), "the balancer did not keep the client on its node")
	}

	// The client comes back through another node (its own is gone, or
	// the balancer moved it): the route moves with it.
	other := "a"
	if first == "a" {
		other = "b"
	}
	cl.setCookie(routeCookie, other)
	_, body := cl.do("GET", "/get?k=n")
	require.Equal(t, "true:1", body)
	assert.Equal(t, other, cl.cookie(routeCookie))
}

// routeNode is a one-node cluster with a route cookie, serving testApp.
func routeNode(t *testing.T, opts func(*Config)) *httptest.Server {
	tc := newTestCluster(t, func(c *Config) {
		withRouteCookie(c)
		if opts != nil {
			opts(c)
		}
	})
	st := tc.start("node-1")
	srv := httptest.NewServer(testApp(st))
	t.Cleanup(srv.Close)
	return srv
}

// routeSetCookie returns the route cookie res sets, or nil.
func routeSetCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == routeCookie {
			return c
		}
	}
	return nil
}

// The route cookie takes the session cookie's attributes, is set only
// when the request did not present the route, ended with the session,
// and never set for a request without a session or a client of
// Config.Header.
func TestRouteCookieIsSetOnlyWhenItChanges(t *testing.T) {
	srv := routeNode(t, func(c *Config) {
		c.Cookie = CookieConfig{Path: "/app", Domain: "example.test", SameSite: http.SameSiteStrictMode}
		c.Header = "X-Session"
	})
	do := func(method, path string, header http.Header) *http.Response {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}

	res := do("GET", "/get?k=n", nil)
	assert.Nil(t, routeSetCookie(res), "no session, no route")

	res = do("POST", "/set?k=n&v=1", http.Header{"X-Forwarded-Proto": {"https"}})
	rc := routeSetCookie(res)
	require.NotNil(t, rc, "a new session gets its route")
	assert.Equal(t, "node-1", rc.Value)
	assert.Equal(t, "/app", rc.Path)
	assert.Equal(t, "example.test", rc.Domain)
	assert.Equal(t, http.SameSiteStrictMode, rc.SameSite)
	assert.True(t, rc.Secure, "behind a TLS proxy, Secure as the session cookie")
	assert.True(t, rc.HttpOnly)
	assert.Zero(t, rc.MaxAge)
	assert.True(t, rc.Expires.IsZero(), "a browser-session cookie")

	var session string
	for _, c := range res.Cookies() {
		if c.Name == "session" {
			session = c.Value
		}
	}
	require.NotEmpty(t, session)
	cookies := func(route string) http.Header {
		h := http.Header{"Cookie": {"session=" + session}}
		if route != "" {
			h["Cookie"] = []string{"session=" + session + "; " + routeCookie + "=" + route}
		}
		return h
	}
	assert.Nil(t, routeSetCookie(do("GET", "/get?k=n", cookies("node-1"))), "the route presented is not set again")
	rc = routeSetCookie(do("GET", "/get?k=n", cookies("")))
	require.NotNil(t, rc, "a request without the route gets it")
	assert.Equal(t, "node-1", rc.Value)
	rc = routeSetCookie(do("GET", "/get?k=n", cookies("node-9")))
	require.NotNil(t, rc, "a request with another route gets this one")
	assert.Equal(t, "node-1", rc.Value)

	assert.Nil(t, routeSetCookie(do("GET", "/nothing", cookies(""))), "a request that did not load its session gets no route")
	unknown := http.Header{"Cookie": {"session=" + newToken()}}
	assert.Nil(t, routeSetCookie(do("GET", "/get?k=n", unknown)), "a token of no session gets no route")

	res = do("GET", "/get?k=n", http.Header{"X-Session": {session}})
	assert.Nil(t, routeSetCookie(res), "a client of Config.Header keeps no cookies")

	rc = routeSetCookie(do("POST", "/logout", cookies("node-1")))
	require.NotNil(t, rc, "logging out ends the route too")
	assert.Equal(t, -1, rc.MaxAge)
	assert.Nil(t, routeSetCookie(do("POST", "/logout", cookies(""))), "no route to end")
}

func TestRouteCookieMisconfigurationsAreRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{"an invalid cookie name", func(c *Config) { c.Cluster.RouteCookie = "a route" }, "RouteCookie \"a route\" is not a valid cookie name"},
		{"the session cookie's name", func(c *Config) { c.Cluster.RouteCookie = "session" }, "is the session cookie's name"},
		{"__Host- with a Domain", func(c *Config) { c.Cluster.RouteCookie = "__Host-route"; c.Cookie.Domain = "example.test" }, "__Host- prefix"},
		{"a Name no cookie can carry", func(c *Config) { c.Cluster.RouteCookie = "route"; c.Cluster.Name = "node 1" }, "ClusterConfig.Name \"node 1\" cannot be a route cookie's value"},
		{"no Name at all", func(c *Config) { c.Cluster.RouteCookie = "route"; c.Cluster.Name = "" }, "ClusterConfig.Name is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Cluster: &ClusterConfig{Name: "n"}}
			tt.cfg(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tt.want), "%v", err)
		})
	}
}
