package main

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/peersession/peersession"
)

// value is each session's 1 KiB value.
var value = strings.Repeat("v", 1024)

// writer writes new sessions on the ready nodes.
type writer struct {
	mu       sync.Mutex // guards handlers
	handlers []http.Handler
}

// handler returns st's Middleware around a handler that sets one key.
func (w *writer) handler(st *peersession.Store) http.Handler {
	return st.Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if err := peersession.FromContext(r.Context()).Set("v", value); err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
		}
	}))
}

// add makes st one of the nodes written to.
func (w *writer) add(st *peersession.Store) {
	h := w.handler(st)
	w.mu.Lock()
	w.handlers = append(w.handlers, h)
	w.mu.Unlock()
}

// run writes rate sessions a second, each on a random ready node, until
// stop is closed.
func (w *writer) run(rate int, stop <-chan struct{}) {
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		var h http.Handler
		if len(w.handlers) > 0 {
			h = w.handlers[rand.IntN(len(w.handlers))]
		}
		w.mu.Unlock()
		if h != nil {
			write(h)
		}
	}
}

// write creates one session through h.
func write(h http.Handler) {
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil))
}
