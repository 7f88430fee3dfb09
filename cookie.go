package peersession

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The cookie (or header) value is the token, optionally followed by "." and
// the session's version stamp in base 36:
//
//	<43-character token>[.<stamp>]
//
// The stamp is the wall time of the newest write this client has seen. It
// grants nothing: the session is found by the token alone. A node whose copy
// of the session is older than the stamp fetches the session from its peers
// once, with a short bounded wait, before serving the request; that is how a
// client sees its own writes on any node behind a non-sticky balancer. A
// forged stamp therefore costs at most one bounded peer fetch.
const maxStampLen = 13 // base-36 digits of the largest int64

// parseCookie splits a cookie or header value into token and stamp. Anything
// malformed yields an empty token (no session); a malformed stamp alone is
// ignored.
func parseCookie(v string) (token string, stamp int64) {
	token, rest, hasStamp := strings.Cut(v, ".")
	if !validToken(token) {
		return "", 0
	}
	if hasStamp && len(rest) > 0 && len(rest) <= maxStampLen {
		if n, err := strconv.ParseInt(rest, 36, 64); err == nil && n > 0 {
			stamp = n
		}
	}
	return token, stamp
}

// formatCookie is parseCookie's inverse: the token, then "." and the stamp
// in base 36 when there is one.
func formatCookie(token string, stamp int64) string {
	if stamp <= 0 {
		return token
	}
	// One allocation, the result's, where concatenation made two.
	var buf [tokenLen + 1 + maxStampLen]byte
	b := append(buf[:0], token...)
	b = append(b, '.')
	return string(strconv.AppendInt(b, stamp, 36))
}

// readToken returns the token and stamp a request presents: the header
// (when Config.Header is set) first, then the cookie.
func (st *Store) readToken(r *http.Request) (string, int64) {
	if h := st.cfg.Header; h != "" {
		if v := r.Header.Get(h); v != "" {
			return parseCookie(v)
		}
	}
	// Several cookies of our name can arrive (different paths or
	// domains): one may have been planted from a sibling subdomain or for
	// a longer path (cookie tossing), and comes first. The first
	// well-formed one wins unless it names no live session here and a
	// later one does, so a planted cookie cannot shadow the user's own.
	var first string
	var firstStamp int64
	firstLive := false
	for _, c := range r.CookiesNamed(st.cfg.Cookie.Name) {
		t, s := parseCookie(c.Value)
		switch {
		case t == "":
			continue
		case first == "":
			first, firstStamp = t, s
			continue
		case !firstLive && st.lookup(idOf(first)) == nil:
			if st.lookup(idOf(t)) != nil {
				return t, s
			}
		default:
			firstLive = true
		}
	}
	return first, firstStamp
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
	c := &http.Cookie{
		Name:     cc.Name,
		Path:     cc.Path,
		Domain:   cc.Domain,
		Secure:   cc.Secure || NeedsSecure(r, cc.Name, cc.SameSite),
		HttpOnly: !cc.AllowScript,
		SameSite: cc.SameSite,
	}
	if res.clear {
		c.Expires, c.MaxAge = time.Unix(1, 0), -1
	} else {
		c.Value = formatCookie(res.token, res.stamp)
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
	h.Add("Set-Cookie", c.String())
	h.Add("Cache-Control", `no-cache="Set-Cookie"`)
	if st.cfg.Header != "" {
		h.Set(st.cfg.Header, c.Value)
	}
}
