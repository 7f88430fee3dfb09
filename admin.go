package peersession

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// adminState is what the admin page keeps in a Store: the recent warnings
// (admin_log.go) and the key its CSRF tokens are MACed with. Set once by
// init in New, then read only (the ring has its own lock).
type adminState struct {
	warnings warnRing
	key      [32]byte // random per store: tokens do not outlive the process
}

// init draws the CSRF key and returns log wrapped so that its warnings and
// errors are kept for the admin page.
func (a *adminState) init(log *slog.Logger) *slog.Logger {
	_, _ = rand.Read(a.key[:])
	return a.warnings.wrap(log)
}

//go:embed adminpage
var adminFS embed.FS

// The page's style and script are inlined, so the page makes no request
// of its own; the Content-Security-Policy allows exactly them, by hash.
var (
	adminCSS  = mustRead("adminpage/admin.css")
	adminJS   = mustRead("adminpage/admin.js")
	adminTmpl = template.Must(template.New("admin.html").Funcs(template.FuncMap{
		"ago": fmtAgo, "dur": fmtDur, "bytes": fmtBytes, "clock": fmtClock, "offset": fmtOffset,
		"farOff": func(d time.Duration) bool { return d.Abs() > maxClockSkew },
	}).ParseFS(adminFS, "adminpage/admin.html"))
	adminCSP = "default-src 'none'; style-src '" + cspHash(adminCSS) + "'; script-src '" + cspHash(adminJS) +
		"'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

func mustRead(name string) string {
	b, err := adminFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// AdminHandler serves an HTML page for operators: the cluster's members
// and their state; per peer the replication queue, acknowledgement lag,
// refusals and last contact; this node's sessions, bytes and tombstones;
// its last 20 warnings and errors; and a look-up of a principal's sessions
// (see Session.SetPrincipal) that can end one or all of them, on every
// node (as DestroyPrincipal does). The page is self-contained (no request
// leaves it) and works without JavaScript; a short script reloads it every
// 5 seconds while the box for that is ticked.
//
// Access control is the app's job: the page shows user names and can log
// any user out. Mount it on an internal address, behind authentication
// (see the example). It refuses a POST from another site (by its
// Sec-Fetch-Site or Origin header, and by a token in the form, MACed with
// a key random to the store) with 403 Forbidden; behind a proxy that
// rewrites the Host header, keep the original one (Origin is compared with
// it). Mount it at any path: its links and forms are relative.
func (st *Store) AdminHandler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "peersession admin: cross-site request refused", http.StatusForbidden)
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", adminCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the query names a user
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			st.adminPage(w, r)
		case http.MethodPost:
			st.adminPost(w, r)
		default:
			h.Set("Allow", "GET, HEAD, POST")
			http.Error(w, "peersession admin: method not allowed", http.StatusMethodNotAllowed)
		}
	}))
}

// adminIDLen is how much of a session ID (a token hash) the page shows
// and a POST names: 72 bits, unique among one principal's sessions.
const adminIDLen = 12

// adminView is the page's data.
type adminView struct {
	Node, Clock, Version string
	Now                  time.Time
	Members              []Member
	Peers                []adminPeer
	Stats                Stats
	Warnings             []logLine
	Principal            string // looked up; "" for none
	Sessions             []adminSession
	Ended                string // the count a POST ended, for its message; "" for none
	CSRF                 string
	CSS                  template.CSS
	JS                   template.JS
}

// adminPeer is a peer's row.
type adminPeer struct {
	Name, State string
	PeerStats
}

// adminSession is a row of the principal look-up.
type adminSession struct {
	ID                     string // its first adminIDLen characters
	Created, LastUse, Ends time.Time
	Bytes                  int
	Node                   string // where the principal was set, as far as known
}

func (st *Store) adminPage(w http.ResponseWriter, r *http.Request) {
	now := st.cfg.Now()
	v := adminView{
		Node: "single node", Version: moduleVersion(), Now: now,
		Clock: clockID(st.clock.Node()), Stats: st.Stats(), Members: st.Members(),
		Warnings: st.admin.warnings.recent(),
		CSRF:     st.adminToken(now), CSS: template.CSS(adminCSS), JS: template.JS(adminJS),
	}
	if st.repl != nil {
		v.Node = st.repl.cfg.Name
	}
	if rs := v.Stats.Replication; rs != nil {
		state := map[string]string{}
		for _, m := range v.Members {
			if !m.Self {
				state[m.Name] = m.State
			}
		}
		for name, ps := range rs.Peers {
			v.Peers = append(v.Peers, adminPeer{Name: name, State: state[name], PeerStats: ps})
		}
		slices.SortFunc(v.Peers, func(a, b adminPeer) int { return strings.Compare(a.Name, b.Name) })
	}
	q := r.URL.Query()
	if p := strings.TrimSpace(q.Get("principal")); p != "" {
		v.Principal = p
		v.Sessions = st.adminSessions(p, v.Node)
	}
	if n := q.Get("ended"); n != "" {
		if _, err := strconv.Atoi(n); err == nil {
			v.Ended = n
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := adminTmpl.Execute(w, v); err != nil {
		st.cfg.Logger.Warn("peersession: admin page not rendered", "err", err)
	}
}

// adminSessions returns the rows of principal p's live sessions, oldest
// first. self is this node's name.
func (st *Store) adminSessions(p, self string) []adminSession {
	now := st.cfg.Now()
	var out []adminSession
	for _, id := range st.PrincipalSessions(p) {
		e := st.shards.get(id)
		if !st.alive(e, now) {
			continue
		}
		rec := &e.rec
		s := adminSession{
			ID: id[:min(len(id), adminIDLen)], Bytes: e.size,
			Created: time.Unix(0, rec.Created), LastUse: time.Unix(0, rec.Access),
		}
		ends := rec.Deadline
		if idle := rec.IdleDeadline(); idle != 0 && (ends == 0 || idle < ends) {
			ends = idle
		}
		if ends != 0 {
			s.Ends = time.Unix(0, ends)
		}
		// Node IDs of the clock are random per process: only this node's
		// own is known by name here. Another node's page names its own.
		switch n := rec.PrincipalVer.Node; {
		case n == st.clock.Node():
			s.Node = self + " (this node)"
		case n != 0:
			s.Node = "clock " + clockID(n)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b adminSession) int { return a.Created.Compare(b.Created) })
	return out
}

// clockID shows a clock's node ID, the writer of a version.
func clockID(n uint64) string { return fmt.Sprintf("%08x", uint32(n>>32)) }

// adminPost ends one session (form field session: the ID prefix the page
// shows) or all (form field all) of principal p, then sends the browser
// back to the page with the count.
func (st *Store) adminPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "peersession admin: bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	if !st.adminTokenValid(f.Get("csrf"), st.cfg.Now()) {
		http.Error(w, "peersession admin: form expired or forged; reload the page", http.StatusForbidden)
		return
	}
	p := f.Get("principal")
	if p == "" {
		http.Error(w, "peersession admin: no principal named", http.StatusBadRequest)
		return
	}
	var (
		n   int
		err error
	)
	switch prefix := f.Get("session"); {
	case prefix != "":
		if len(prefix) != adminIDLen {
			http.Error(w, "peersession admin: bad session ID", http.StatusBadRequest)
			return
		}
		for _, id := range st.PrincipalSessions(p) {
			if strings.HasPrefix(id, prefix) {
				var ended bool
				ended, err = st.destroyID(r.Context(), id)
				if ended {
					n++
				}
				break
			}
		}
	case f.Get("all") != "":
		n, err = st.DestroyPrincipal(r.Context(), p)
	default:
		http.Error(w, "peersession admin: nothing to do", http.StatusBadRequest)
		return
	}
	if err != nil {
		st.cfg.Logger.Warn("peersession: admin page: ending sessions failed", "principal", p, "ended", n, "err", err)
		http.Error(w, fmt.Sprintf("peersession admin: ended %d; then: %v", n, err), http.StatusInternalServerError)
		return
	}
	st.cfg.Logger.Info("peersession: admin page ended sessions", "principal", p, "ended", n)
	// Relative to the page, wherever the app mounted it.
	w.Header().Set("Location", "?"+url.Values{"principal": {p}, "ended": {strconv.Itoa(n)}}.Encode())
	w.WriteHeader(http.StatusSeeOther)
}

// adminTokenTTL is how long a page's form stays valid.
const adminTokenTTL = 12 * time.Hour

// adminToken returns a fresh CSRF token for a page: its time and a nonce,
// MACed with the store's admin key.
func (st *Store) adminToken(now time.Time) string {
	var b [16 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Unix()))
	_, _ = rand.Read(b[8:16])
	copy(b[16:], st.adminMAC(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// adminTokenValid reports whether tok is a token of this store's, under
// adminTokenTTL old.
func (st *Store) adminTokenValid(tok string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 32 || !hmac.Equal(b[16:], st.adminMAC(b[:16])) {
		return false
	}
	age := now.Sub(time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0))
	return age > -time.Minute && age < adminTokenTTL
}

func (st *Store) adminMAC(msg []byte) []byte {
	m := hmac.New(sha256.New, st.admin.key[:])
	m.Write([]byte("peersession admin csrf\x00"))
	m.Write(msg)
	return m.Sum(nil)[:16]
}

// The template's formatting functions.

func fmtAgo(now, t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + fmtDur(-d)
	}
	return fmtDur(d) + " ago"
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// fmtOffset shows a peer's clock offset with its sign; zero (not
// measured, or exactly so) as a dash.
func fmtOffset(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < 0:
		return "−" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
}

func fmtBytes(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	case n < 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	default:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	}
}

func fmtClock(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
