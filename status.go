package peersession

import (
	"encoding/json"
	"expvar"
	"net/http"
	"runtime/debug"
	"time"
)

// Status is the store's state as StatusHandler shows it. It never holds a
// token or a key. Its JSON form (MarshalJSON) is documented in
// docs/status.md.
type Status struct {
	Node    string   `json:"node,omitempty"`
	Version string   `json:"version"`
	Members []Member `json:"members,omitempty"`
	Stats   Stats    `json:"stats"`
	Config  struct {
		IdleTimeout     time.Duration `json:"idle_timeout"`
		Lifetime        time.Duration `json:"lifetime"`
		TouchInterval   time.Duration `json:"touch_interval"`
		MaxSessionBytes int           `json:"max_session_bytes"`
		MaxSessions     int           `json:"max_sessions"`
		CookieName      string        `json:"cookie_name"`
		Clustered       bool          `json:"clustered"`
		Consistency     string        `json:"consistency,omitempty"`
		MinAcks         int           `json:"min_acks,omitempty"`
		Encrypted       bool          `json:"encrypted,omitempty"`
		Keys            int           `json:"keys,omitempty"`
	} `json:"config"`
}

// String names the consistency mode.
func (c Consistency) String() string {
	if c == Sync {
		return "sync"
	}
	return "async"
}

// Status returns the store's current status.
func (st *Store) Status() Status {
	var s Status
	s.Version = moduleVersion()
	s.Stats = st.Stats()
	c := &s.Config
	c.IdleTimeout = st.cfg.IdleTimeout
	c.Lifetime = st.cfg.Lifetime
	c.TouchInterval = st.cfg.TouchInterval
	c.MaxSessionBytes = st.cfg.MaxSessionBytes
	c.MaxSessions = st.cfg.MaxSessions
	c.CookieName = st.cfg.Cookie.Name
	if r := st.repl; r != nil {
		s.Node = r.cfg.Name
		s.Members = st.Members()
		c.Clustered = true
		c.Consistency = r.cfg.Consistency.String()
		c.MinAcks = r.cfg.MinAcks
		c.Encrypted = len(r.cfg.Keys) > 0
		c.Keys = len(r.cfg.Keys)
	}
	return s
}

// StatusHandler serves Status as JSON: members and their state, session
// count, per-peer replication figures, the module version and a summary of
// the configuration without secrets. Mount it on an internal address or
// behind authentication.
func (st *Store) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st.Status())
	})
}

// Expvar returns the store's Status as an expvar.Var, for
//
//	expvar.Publish("peersession", store.Expvar())
//
// (expvar names are process-wide, so publishing is left to the app).
func (st *Store) Expvar() expvar.Var {
	return expvar.Func(func() any { return st.Status() })
}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/peersession/peersession" {
				return d.Version
			}
		}
		if bi.Main.Path == "github.com/peersession/peersession" {
			return bi.Main.Version
		}
	}
	return "(devel)"
}
