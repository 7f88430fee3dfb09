package peersession

import (
	"fmt"
	"net/http"
	"strings"
)

// The route cookie (ClusterConfig.RouteCookie) is for a route-aware
// balancer: it names the node the session's next request should go to,
// as WildFly's affinity does (its jvmRoute suffix of JSESSIONID). In
// partitioned mode that is the session's owner, the first of its holders,
// so that no read costs a fetch; in full replication, where every node
// holds every session, the node that served the request (WildFly's
// "local" affinity: plain stickiness, sparing the stamp's fetch after a
// write on another node). It is a cookie of its own, not a suffix of the
// session cookie, so that the session cookie's format (and its signed
// stamp) stays as it is and a balancer reads the route without parsing.
//
// Computing it is local and cheap (the placement over the live members
// as this node sees it), so it never delays or fails a request. A node
// that names another owner than the cookie does, after a rebalance or a
// RenewID, sets it again; the balancer's next request follows.

// checkRouteCookie reports a RouteCookie that cannot work with cookie, the
// session cookie's settings, or with this node's Name.
func (c *ClusterConfig) checkRouteCookie(cookie CookieConfig) error {
	name := c.RouteCookie
	switch {
	case name == "":
		return nil
	case !validCookieName(name):
		return fmt.Errorf("peersession: ClusterConfig.RouteCookie %q is not a valid cookie name", name)
	case name == cookie.Name:
		return fmt.Errorf("peersession: ClusterConfig.RouteCookie %q is the session cookie's name (Config.Cookie.Name); give the route cookie a name of its own", name)
	case strings.HasPrefix(name, "__Host-") && (cookie.Domain != "" || cookie.Path != "/"):
		return fmt.Errorf("peersession: ClusterConfig.RouteCookie %q has the __Host- prefix, which browsers accept only with Path \"/\" and no Domain (it takes Config.Cookie's); clear Config.Cookie.Domain and Path", name)
	case c.Name != "" && !validRoute(c.Name): // an empty Name is reported as such (cluster.Config)
		return fmt.Errorf("peersession: ClusterConfig.Name %q cannot be a route cookie's value (ClusterConfig.RouteCookie): "+
			"use printable ASCII without spaces, '\"', ',', ';' or '\\'", c.Name)
	}
	return nil
}

// validRoute reports whether a node Name can be a cookie value as it is
// (RFC 6265's cookie-octet, unquoted), so that the balancer reads the Name
// itself.
func validRoute(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b <= ' ' || b >= 0x7f, b == '"', b == ',', b == ';', b == '\\':
			return false
		}
	}
	return true
}

// route returns the Name of the node a balancer should send the next
// request of token's session to ("" on a single node): its owner in
// partitioned mode, this node in full replication.
func (st *Store) route(token string) string {
	if st.repl == nil {
		return ""
	}
	pt := st.part.Load()
	if pt == nil {
		return st.repl.cfg.Name
	}
	var buf [8]string
	if hs := pt.view.Load().pl.Holders(idOf(token), buf[:0]); len(hs) > 0 {
		return hs[0]
	}
	return ""
}

// writeRoute sets the route cookie, at the commit point, when the request
// did not present the route of the session it now has (s, committed as
// res), and expires it with a session the commit ended. A client that
// sends its token in Config.Header keeps no cookies, and gets none.
func (st *Store) writeRoute(w http.ResponseWriter, r *http.Request, s *Session, res commitResult) {
	if st.repl == nil || st.repl.cfg.RouteCookie == "" {
		return
	}
	if h := st.cfg.Header; h != "" && r.Header.Get(h) != "" {
		return
	}
	name := st.repl.cfg.RouteCookie
	var have string
	if c, err := r.Cookie(name); err == nil {
		have = c.Value
	}
	var want string
	if token := s.routedToken(res); token != "" {
		want = st.route(token)
	}
	switch {
	case res.clear && have != "":
		// The session ended: so does its route.
	case want == "" || want == have || !validRoute(want):
		// No session, the route already presented, or a peer's Name
		// that no cookie can carry (each node checks only its own).
		return
	}
	c := st.newCookie(r, name, res.clear)
	if !res.clear {
		c.Value = want
	}
	addCookie(w.Header(), c)
}

// routedToken returns the token of the session whose route the client
// should hold after the commit res: one the request committed, or loaded
// and found; "" for a token the request never loaded, or of no session.
func (s *Session) routedToken(res commitResult) string {
	if res.token != "" {
		return res.token
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded || s.base == nil {
		return ""
	}
	return s.token
}
