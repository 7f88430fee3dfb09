package peersession

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The cookie (or header) value is the token, optionally followed by "." and
// the session's version stamp in base 36, and on a clustered node by "."
// and the stamp's MAC (stampmac.go):
//
//	<43-character token>[.<stamp>[.<16-character MAC>]]
//
// The stamp is the wall time of the newest write this client has seen. It
// grants nothing: the session is found by the token alone. A node whose copy
// of the session is older than the stamp fetches the session from its peers
// once, with a short bounded wait, before serving the request; that is how a
// client sees its own writes on any node behind a non-sticky balancer. A
// stamp only counts with its MAC, and no later than a minute ahead of the
// node's clock, so a client cannot make one up; and the fetches themselves
// are bounded (fetchguard.go).
const maxStampLen = 13 // base-36 digits of the largest int64

// splitCookie splits a cookie or header value into token, stamp and the
// stamp's MAC as sent (unchecked: see Store.parseValue). Anything
// malformed yields an empty token (no session); a malformed stamp alone is
// ignored, and so is a MAC without a stamp.
func splitCookie(v string) (token string, stamp int64, mac string) {
	token, rest, hasStamp := strings.Cut(v, ".")
	if !validToken(token) {
		return "", 0, ""
	}
	if !hasStamp {
		return token, 0, ""
	}
	rest, mac, _ = strings.Cut(rest, ".")
	if len(rest) > 0 && len(rest) <= maxStampLen {
		if n, err := strconv.ParseInt(rest, 36, 64); err == nil && n > 0 {
			return token, n, mac
		}
	}
	return token, 0, ""
}

// parseCookie is splitCookie without the MAC: the token, and the stamp
// whether authenticated or not. Requests take their stamp from
// Store.parseValue, which checks it.
func parseCookie(v string) (token string, stamp int64) {
	token, stamp, _ = splitCookie(v)
	return token, stamp
}

// formatCookie is parseCookie's inverse: the token, then "." and the stamp
// in base 36 when there is one. Store.cookieValue adds the MAC.
func formatCookie(token string, stamp int64) string {
	if stamp <= 0 {
		return token
	}
	// One allocation, the result's, where concatenation made two.
	var buf [tokenLen + 1 + maxStampLen]byte
	return string(appendCookie(buf[:0], token, stamp))
}

// appendCookie appends token, "." and stamp in base 36 to b.
func appendCookie(b []byte, token string, stamp int64) []byte {
	b = append(b, token...)
	b = append(b, '.')
	return strconv.AppendInt(b, stamp, 36)
}

// readToken returns the token and stamp a request presents: the header
// (when Config.Header is set) first, then the cookie. The stamp is kept
// only if authenticated (Store.parseValue).
func (st *Store) readToken(r *http.Request) (string, int64) {
	if h := st.cfg.Header; h != "" {
		if v := r.Header.Get(h); v != "" {
			return st.parseValue(v)
		}
	}
	// Several cookies of our name can arrive (different paths or
	// domains): one may have been planted from a sibling subdomain or for
	// a longer path (cookie tossing), and comes first. The first
	// well-formed one wins unless it names no live session here and a
	// later one does, so a planted cookie cannot shadow the user's own.
	var first, firstMAC string
	var firstStamp int64
	firstLive := false
	for _, c := range r.CookiesNamed(st.cfg.Cookie.Name) {
		t, s, mac := splitCookie(c.Value)
		switch {
		case t == "":
			continue
		case first == "":
			first, firstStamp, firstMAC = t, s, mac
			continue
		case !firstLive && st.lookup(idOf(first)) == nil:
			if st.lookup(idOf(t)) != nil {
				return t, st.checkStamp(t, s, mac)
			}
		default:
			firstLive = true
		}
	}
	return first, st.checkStamp(first, firstStamp, firstMAC)
}

// NeedsSecure reports whether a session cookie named name, with SameSite
// sameSite, answering r must carry the Secure attribute: r reached the
// server over TLS, itself or through a TLS-terminating proxy that says so
// (X-Forwarded-Proto: https, or Forwarded: proto=https); the name has the
// __Host- or __Secure- prefix; or sameSite is None. Browsers drop a cookie
// of the last two kinds without Secure.
//
// The proxy's header is trusted because it can only make a cookie
// stricter: a client that forges it over plain HTTP gets a cookie its own
// browser will not send back. The middleware applies this rule, and so
// does gorillastore.
func NeedsSecure(r *http.Request, name string, sameSite http.SameSite) bool {
	if r.TLS != nil || sameSite == http.SameSiteNoneMode ||
		strings.HasPrefix(name, "__Host-") || strings.HasPrefix(name, "__Secure-") {
		return true
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		// A chain of proxies lists one scheme each; the first is the
		// client's.
		p, _, _ = strings.Cut(p, ",")
		return strings.EqualFold(strings.TrimSpace(p), "https")
	}
	if f := r.Header.Get("Forwarded"); f != "" {
		f, _, _ = strings.Cut(f, ",") // the first element is the client's hop
		for _, pair := range strings.Split(f, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if strings.EqualFold(k, "proto") {
				return strings.EqualFold(strings.Trim(v, `"`), "https")
			}
		}
	}
	return false
}

// writeToken tells the client what a commit decided: a new token or stamp,
// or that its session ended.
func (st *Store) writeToken(w http.ResponseWriter, r *http.Request, res commitResult) {
	if !res.send && !res.clear {
		return
	}
	cc := st.cfg.Cookie
	c := st.newCookie(r, cc.Name, res.clear)
	if !res.clear {
		c.Value = st.cookieValue(res.token, res.stamp)
		if cc.Persist && res.deadline != 0 {
			c.Expires = time.Unix(0, res.deadline).UTC()
		}
	}
	h := w.Header()
	// Replace, not add, our own earlier Set-Cookie of this response.
	prefix := cc.Name + "="
	kept := h["Set-Cookie"][:0]
	for _, v := range h["Set-Cookie"] {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = kept
	addCookie(h, c)
	if st.cfg.Header != "" {
		h.Set(st.cfg.Header, c.Value)
	}
}

// newCookie returns the cookie name with the session cookie's attributes
// (Path, Domain, Secure, HttpOnly, SameSite), set to expire if clear.
func (st *Store) newCookie(r *http.Request, name string, clear bool) *http.Cookie {
	cc := st.cfg.Cookie
	c := &http.Cookie{
		Name:     name,
		Path:     cc.Path,
		Domain:   cc.Domain,
		Secure:   cc.Secure || NeedsSecure(r, name, cc.SameSite),
		HttpOnly: !cc.AllowScript,
		SameSite: cc.SameSite,
	}
	if clear {
		c.Expires, c.MaxAge = time.Unix(1, 0), -1
	}
	return c
}

// addCookie adds c to the response headers h, with the Cache-Control
// that keeps shared caches from storing it (once per response).
func addCookie(h http.Header, c *http.Cookie) {
	h.Add("Set-Cookie", c.String())
	if !slices.Contains(h["Cache-Control"], `no-cache="Set-Cookie"`) {
		h.Add("Cache-Control", `no-cache="Set-Cookie"`)
	}
}
