package peersession

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// adminLogin saves a new session of user on st, as an app's login does, and
// returns its token.
func adminLogin(t *testing.T, st *Store, user string) string {
	t.Helper()
	s := st.NewSession(t.Context())
	require.NoError(t, s.SetPrincipal(user))
	require.NoError(t, s.Set("user", user))
	tok, err := st.Save(t.Context(), s)
	require.NoError(t, err)
	return tok
}

// adminGet fetches the admin page of srv (query q) and returns its body.
func adminGet(t *testing.T, srv *httptest.Server, q string) (*http.Response, string) {
	t.Helper()
	res, err := srv.Client().Get(srv.URL + "/admin/" + q)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	return res, string(b)
}

// adminPost posts form to the admin page of srv as a browser on the page
// would (same origin), with extra headers h, and returns the response.
func adminPost(t *testing.T, srv *httptest.Server, form url.Values, h map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/admin/?principal=x", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range h {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	c := *srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

var (
	csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	sidRe  = regexp.MustCompile(`name="session" value="([^"]+)"`)
)

// field returns the first submatch of re in page.
func field(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	require.NotNil(t, m, "%s not in the page", re)
	return m[1]
}

// serveAdmin mounts st's admin page at /admin/ on a test server.
func serveAdmin(t *testing.T, st *Store) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", st.AdminHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// The page is plain HTML: everything is in the markup a browser without
// JavaScript gets, nothing is loaded from elsewhere, and the only script
// is the inline one the policy names by hash.
func TestAdminPageRendersWithoutJS(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	a := nodes[0]
	tok := adminLogin(t, a, "dave")
	id := idOf(mustToken(t, tok))
	a.cfg.Logger.Warn("peersession: test warning", "peer", "b", slog.Group("g", "k", 1))

	srv := serveAdmin(t, a)
	res, page := adminGet(t, srv, "?principal=dave")
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	csp := res.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, cspHash(adminJS))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))

	for _, want := range []string{
		`<span class="node" id="node">a</span>`,                       // the node
		`<td>a <span class="tag">this node</span></td>`, `<td>b</td>`, // both members, alive
		`<span class="dot"></span>alive`,
		`<h2>Replication to peers</h2>`,
		`<dd id="sessions">1</dd>`,                          // the node's sessions
		`<code class="sid">` + id[:adminIDLen] + `…</code>`, // dave's session, by ID prefix
		`a (this node)`,                                     // logged in on a
		`End all sessions of dave (1)`,
		`peersession: test warning`, `peer=b g.k=1`, // the warning ring
		"<style>" + adminCSS + "</style>", "<script>" + adminJS + "</script>",
	} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, id, "the page shows a prefix of the ID, not all of it")
	for _, external := range []string{"http:", "https:", "//", "<link", "src=", "@import", "url("} {
		assert.NotContains(t, strings.ReplaceAll(page, adminJS, ""), external, "the page loads nothing")
	}
	// The forms post to the page itself, wherever it is mounted.
	assert.Equal(t, 3, strings.Count(page, `action=""`))

	_, page = adminGet(t, srv, "?principal=nobody")
	assert.Contains(t, page, `No live session of nobody.`)

	// A single node has no members and no replication section.
	single := newTestStore(t, Config{})
	_, page = adminGet(t, serveAdmin(t, single), "")
	assert.Contains(t, page, "A single node: no cluster.")
	assert.NotContains(t, page, "Replication to peers")
}

// A POST from another site, without the page's token, or with a token of
// another store ends nothing.
func TestAdminRefusesCrossSitePosts(t *testing.T) {
	st := newTestStore(t, Config{})
	tok := adminLogin(t, st, "erin")
	srv := serveAdmin(t, st)
	_, page := adminGet(t, srv, "?principal=erin")
	form := url.Values{"csrf": {field(t, csrfRe, page)}, "principal": {"erin"}, "all": {"1"}}

	other := newTestStore(t, Config{})
	adminLogin(t, other, "erin")
	_, otherPage := adminGet(t, serveAdmin(t, other), "?principal=erin")
	for name, c := range map[string]struct {
		form url.Values
		h    map[string]string
	}{
		"cross-site fetch metadata": {form, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"same-site, other origin":   {form, map[string]string{"Sec-Fetch-Site": "same-site"}},
		"foreign Origin":            {form, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}},
		"no token":                  {url.Values{"principal": {"erin"}, "all": {"1"}}, nil},
		"forged token":              {url.Values{"csrf": {strings.Repeat("A", 43)}, "principal": {"erin"}, "all": {"1"}}, nil},
		"another store's token":     {url.Values{"csrf": {field(t, csrfRe, otherPage)}, "principal": {"erin"}, "all": {"1"}}, nil},
	} {
		res := adminPost(t, srv, c.form, c.h)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, name)
		require.True(t, has(st, tok), "%s: the session survives", name)
	}

	// The same form from the page itself works; so does a client that
	// sends neither header (not a browser), with the token.
	res := adminPost(t, srv, form, map[string]string{"Sec-Fetch-Site": "", "Origin": ""})
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "?ended=1&principal=erin", res.Header.Get("Location"))
	assert.False(t, has(st, tok))

	// A token expires.
	assert.True(t, st.adminTokenValid(st.adminToken(st.cfg.Now()), st.cfg.Now()))
	assert.False(t, st.adminTokenValid(st.adminToken(st.cfg.Now().Add(-adminTokenTTL)), st.cfg.Now()))
}

// Ending a session on one node's page ends it on every node; so does
// ending all of a user's sessions.
func TestAdminRevocationEndsSessionEverywhere(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	t1, t2 := adminLogin(t, a, "frank"), adminLogin(t, a, "frank")
	other := adminLogin(t, a, "grace")
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, t1) && has(st, t2) && has(st, other) },
		"sessions not replicated", a, b)

	srv := serveAdmin(t, b) // b's page: the sessions were created on a
	_, page := adminGet(t, srv, "?principal=frank")
	assert.Equal(t, 2, strings.Count(page, `name="session"`))
	assert.Contains(t, page, "clock "+clockID(a.clock.Node()), "created on a, as b sees it")
	target := idOf(mustToken(t, t1))[:adminIDLen]
	require.Contains(t, page, `value="`+target+`"`)

	res := adminPost(t, srv, url.Values{"csrf": {field(t, csrfRe, page)}, "principal": {"frank"}, "session": {target}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "?ended=1&principal=frank", res.Header.Get("Location"))
	eventuallyEverywhere(t, func(st *Store) bool { return !has(st, t1) }, "ended session lives on", a, b)
	assert.True(t, has(a, t2) && has(b, t2), "frank's other session lives")

	_, page = adminGet(t, srv, "?principal=frank&ended=1")
	assert.Contains(t, page, "Ended 1 session of frank, on every node.")
	assert.Equal(t, 1, strings.Count(page, `name="session"`))
	require.NotContains(t, page, `value="`+target+`"`)

	res = adminPost(t, srv, url.Values{"csrf": {field(t, csrfRe, page)}, "principal": {"frank"}, "all": {"1"}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "?ended=1&principal=frank", res.Header.Get("Location"))
	eventuallyEverywhere(t, func(st *Store) bool { return !has(st, t2) }, "ended session lives on", a, b)
	assert.True(t, has(a, other) && has(b, other), "another user's session lives")
	assert.Empty(t, a.PrincipalSessions("frank"))

	// A session ID prefix of another user's session ends nothing.
	gid := idOf(mustToken(t, other))[:adminIDLen]
	_, page = adminGet(t, srv, "?principal=grace")
	res = adminPost(t, srv, url.Values{"csrf": {field(t, csrfRe, page)}, "principal": {"frank"}, "session": {gid}}, nil)
	require.Equal(t, "?ended=0&principal=frank", res.Header.Get("Location"))
	assert.True(t, has(b, other))
}

// The ring keeps the last warnRingSize warnings and errors, newest first,
// and passes every record on to the app's handler.
func TestAdminWarnRing(t *testing.T) {
	var w warnRing
	var sink strings.Builder
	log := w.wrap(slog.New(slog.NewTextHandler(&sink, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Info("info: not kept")
	for i := range warnRingSize + 5 {
		log.With("node", "a").WithGroup("g").Warn("w", "i", i)
	}
	log.Error("last", "err", io.EOF)
	got := w.recent()
	require.Len(t, got, warnRingSize)
	assert.Equal(t, "last", got[0].Message)
	assert.Equal(t, "err=EOF", got[0].Attrs)
	assert.Equal(t, "node=a g.i=24", got[1].Attrs)
	assert.Equal(t, "node=a g.i=6", got[warnRingSize-1].Attrs)
	assert.Equal(t, warnRingSize+7, strings.Count(sink.String(), "\n"), "every record reaches the app's handler")

	// A discarding logger still fills the ring.
	var w2 warnRing
	w2.wrap(slog.New(slog.DiscardHandler)).Warn("kept")
	assert.Len(t, w2.recent(), 1)
}

// mustToken returns the token part of a cookie value.
func mustToken(t *testing.T, cookie string) string {
	t.Helper()
	tok, _ := parseCookie(cookie)
	require.NotEmpty(t, tok)
	return tok
}
