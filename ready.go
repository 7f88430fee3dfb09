package peersession

import (
	"net/http"
)

// ReadyHandler serves a readiness probe (Kubernetes' readinessProbe, a
// load balancer's health check): 200 once the store can serve — a single
// node at once, a clustered node once its join-time state transfer has
// ended and its clock was compared with a peer's (see WaitReady) — and 503 before that, when joining failed (the
// body says why), while the node is clock-fenced (its clock too far from
// its peers' to take writes: see ErrClockSkew), and again from the moment
// Close begins, so that a node shutting down is taken out of rotation
// while it flushes to its peers.
func (st *Store) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := st.notReady(); err != "" {
			http.Error(w, err, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

// notReady says why the store cannot serve yet, or "" when it can.
func (st *Store) notReady() string {
	if st.closed.Load() {
		return "closing"
	}
	if st.repl == nil {
		return ""
	}
	select {
	case <-st.repl.ready:
		if st.repl.readyErr != nil {
			return st.repl.readyErr.Error()
		}
		if v := st.repl.fence.current(st.repl); v != nil {
			return v.reason()
		}
		return ""
	default:
		return "joining the cluster: state transfer, or the first comparison of clocks with a peer, not done"
	}
}
