package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// Proxy is a round-robin load balancer, the one in front of every
// clustered app. It is not sticky: consecutive requests of one user land
// on different nodes, which is what peersession makes work. A backend that
// refuses the connection (a stopped node) is skipped: the request goes to
// the next one.
type Proxy struct {
	backends []*httputil.ReverseProxy
	next     atomic.Uint64 // the backend the next request starts with
}

// maxBody bounds the request body the proxy buffers, so that it can send
// it again to another backend.
const maxBody = 1 << 20

// NewProxy returns a Proxy for the given base URLs ("http://host:port").
func NewProxy(backends ...string) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, errors.New("demo: NewProxy needs at least one backend")
	}
	p := &Proxy{}
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("demo: backend %q is not a base URL like http://127.0.0.1:8081", b)
		}
		p.backends = append(p.backends, &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
			},
			ErrorHandler: reportError,
		})
	}
	return p, nil
}

// attemptKey carries a *error in a request's context, where the
// ErrorHandler of a backend leaves the error instead of answering.
type attemptKey struct{}

func reportError(w http.ResponseWriter, r *http.Request, err error) {
	if p, ok := r.Context().Value(attemptKey{}).(*error); ok {
		*p = err
		return
	}
	http.Error(w, "bad gateway", http.StatusBadGateway)
}

// ServeHTTP sends r to the next backend, and to the following ones while
// they cannot be reached.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "request body unreadable or over 1 MiB", http.StatusBadRequest)
		return
	}
	start := p.next.Add(1) - 1
	for i := range len(p.backends) {
		var failed error
		ctx := context.WithValue(r.Context(), attemptKey{}, &failed)
		req := r.Clone(ctx)
		req.Body = io.NopCloser(bytes.NewReader(body))
		p.backends[(start+uint64(i))%uint64(len(p.backends))].ServeHTTP(w, req)
		// Only a refused connection is safe to retry: the backend has
		// not seen the request, so it cannot be applied twice.
		if failed == nil || !unreachable(failed) || r.Context().Err() != nil {
			if failed != nil {
				http.Error(w, "bad gateway", http.StatusBadGateway)
			}
			return
		}
	}
	http.Error(w, "no backend reachable", http.StatusBadGateway)
}

// unreachable reports whether err means the backend could not be dialed.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
