package peersession

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

type ctxKey struct{}

// FromContext returns the request's Session. It panics, with a message
// saying what to do, when ctx carries none: the handler is not wrapped
// with Store.Middleware (or, outside HTTP, ctx was not made by
// NewContext).
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	if s == nil {
		panic(errNoSession)
	}
	return s
}

var errNoSession = errors.New("peersession: FromContext: no session in this context; " +
	"wrap the handler with Store.Middleware (or, outside HTTP, make the context with NewContext)")

// NewContext returns a copy of ctx carrying s, for code that runs a
// handler outside the middleware (tests, non-HTTP entry points).
func NewContext(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// Middleware puts the request's session in its context (see FromContext)
// and saves it if changed.
//
// The session is loaded only on first use, and saved only if the handler
// changed it. The commit point is just before the response headers go out
// — the handler's first WriteHeader, Write or Flush — or when the handler
// returns, whichever is first. So the Set-Cookie header is always in time,
// the body is never buffered (streaming keeps working), and in Sync mode no
// response starts before its change is held by the peers. If the commit
// fails there (too large, store full, Sync timeout), the request is answered
// by Config.ErrorFunc instead and the handler's writes are discarded. A
// session that another request or node ended meanwhile (logout in another
// tab, DestroyPrincipal) is not an error: the changes are dropped, the
// cookie is cleared and the response goes on.
//
// Changes made after the headers went out are committed when the handler
// returns; they are stored and replicated, but a new ID or stamp can no
// longer reach the client: that is logged and counted in
// Stats.LateCookies, and the client keeps its old cookie. Call
// Session.RenewID and Destroy before writing the response.
//
// No lock is held while the handler runs; http.Flusher, http.Hijacker and
// http.ResponseController keep working.
func (st *Store) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st.closed.Load() {
			// No session can be read or saved: answer as every method
			// does (ErrClosed), not with an empty session.
			code := StatusCode(ErrClosed)
			http.Error(w, http.StatusText(code), code)
			return
		}
		token, stamp := st.readToken(r)
		s := st.newSession(token, stamp)
		s.ctx = r.Context()
		sw := &sessionWriter{ResponseWriter: w, st: st, s: s, r: r}
		next.ServeHTTP(sw, r.WithContext(NewContext(r.Context(), s)))
		sw.finish()
	})
}

// sessionWriter commits the session just before the headers go out.
type sessionWriter struct {
	http.ResponseWriter
	st *Store
	s  *Session
	r  *http.Request

	mu      sync.Mutex // guards written and failed
	written bool       // headers are out: later commits cannot set cookies
	failed  bool       // the commit failed and ErrorFunc answered
}

// before runs the commit once, ahead of the first header write. It reports
// whether the handler's write may proceed.
func (w *sessionWriter) before() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written {
		return !w.failed
	}
	w.written = true
	res, err := w.st.commitSending(w.r.Context(), w.s, w.r)
	if err != nil && !w.st.ended(err) {
		w.failed = true
		w.st.fail(w.ResponseWriter, w.r, err)
		return false
	}
	w.st.writeToken(w.ResponseWriter, w.r, res)
	w.st.writeRoute(w.ResponseWriter, w.r, w.s, res)
	return true
}

func (w *sessionWriter) WriteHeader(code int) {
	if w.before() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *sessionWriter) Write(p []byte) (int, error) {
	if !w.before() {
		return 0, errCommitFailed
	}
	return w.ResponseWriter.Write(p)
}

// Flush commits, then flushes the underlying writer if it can.
func (w *sessionWriter) Flush() {
	if w.before() {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Hijack commits (the cookie cannot be sent any more, but the change is
// kept), then hijacks the underlying connection.
func (w *sessionWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.before()
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish commits whatever the handler left uncommitted.
func (w *sessionWriter) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.written {
		w.written = true
		res, err := w.st.commitSending(w.r.Context(), w.s, w.r)
		if err != nil && !w.st.ended(err) {
			w.st.fail(w.ResponseWriter, w.r, err)
			return
		}
		w.st.writeToken(w.ResponseWriter, w.r, res)
		w.st.writeRoute(w.ResponseWriter, w.r, w.s, res)
		return
	}
	if w.failed {
		return
	}
	res, err := w.st.commit(w.r.Context(), w.s)
	switch {
	case err != nil:
		w.st.cfg.Logger.Warn("peersession: commit after the response started failed", "err", err)
		w.st.stats.commitErrors.Add(1)
	case res.send || res.clear:
		w.st.cfg.Logger.Warn("peersession: session changed after the response headers were sent; the client keeps its old cookie (call RenewID/Destroy before writing)", "session", logID(idOfOrEmpty(res.token)))
		w.st.stats.lateCookies.Add(1)
	}
}

// ended handles a commit that found its session ended meanwhile (logged
// out in another tab, DestroyPrincipal, expired): not the request's fault,
// so the response goes on, the changes are dropped and the cookie cleared.
func (st *Store) ended(err error) bool {
	if !errors.Is(err, ErrSessionEnded) {
		return false
	}
	st.stats.commitErrors.Add(1)
	st.cfg.Logger.Debug("peersession: session ended while a request changed it; changes dropped", "err", err)
	return true
}

var errCommitFailed = errors.New("peersession: session commit failed; the response was answered by Config.ErrorFunc")

// logID is how logs name a session: the first 12 characters of its ID
// (the hash of its token, which cannot be turned back into a cookie).
func logID(id string) string { return id[:min(len(id), 12)] }

func idOfOrEmpty(token string) string {
	if token == "" {
		return ""
	}
	return idOf(token)
}

// fail answers a request whose commit failed.
func (st *Store) fail(w http.ResponseWriter, r *http.Request, err error) {
	st.stats.commitErrors.Add(1)
	level := slog.LevelWarn
	if StatusCode(err) < 500 {
		level = slog.LevelDebug // the client's doing (too large, refused): counted, not a warning per request
	} else if errors.Is(err, ErrClockSkew) {
		level = slog.LevelDebug // the fence itself is logged once (clockfence.go)
	}
	st.cfg.Logger.Log(r.Context(), level, "peersession: session not saved", "err", err, "path", r.URL.Path)
	if st.cfg.ErrorFunc != nil {
		st.cfg.ErrorFunc(w, r, err)
		return
	}
	code := StatusCode(err)
	http.Error(w, http.StatusText(code), code)
}
