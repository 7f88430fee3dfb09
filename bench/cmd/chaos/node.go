package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/bench/internal/node"
)

// sessionHeader carries the session token between the harness's clients
// and the nodes (Config.Header): one header, whatever node a request goes
// to, where cookies would be kept per host.
const sessionHeader = "X-Session"

// runNode is `chaos node`: one peersession node process for the harness.
// It is a test program, not the benchmark server: besides the session
// paths it serves /dump (every session's data, for the checker) and
// /clock (moves this node's clock), which no real deployment should.
//
// Session paths (under the middleware, token in X-Session):
//
//	POST /w?k=K&v=V           Set(K, V)
//	POST /login?p=P           RenewID, SetPrincipal(P), Set("user", P)
//	POST /logout              Destroy
//
// /login and /logout answer "existing", or "new" when this node held no
// session for the token (nothing was renewed or ended: a new session).
//
// Outside the middleware:
//
//	POST /destroy-principal?p=P  DestroyPrincipal(P); answers the IDs this
//	                             node held for P before (JSON)
//	GET  /dump[?full=1]          the digest of every live session's ID,
//	                             principal, keys and values (and them)
//	POST /clock?offset=D         Config.Now runs D ahead of the real clock
//	GET  /stats                  goroutines, heap, sessions, live peers
func runNode(args []string) {
	fs := flag.NewFlagSet("chaos node", flag.ExitOnError)
	name := fs.String("name", "", "cluster node name (required)")
	httpAddr := fs.String("http", "127.0.0.1:0", "HTTP listen address")
	keyFile := fs.String("key-file", "", "cluster key file (base64): the cluster's and the data directory's key")
	dataDir := fs.String("data-dir", "", "Config.DataDir (needs -key-file)")
	clockOffset := fs.Duration("clock-offset", 0, "start with the node's clock this far ahead (test only)")
	logLevel := fs.String("log", "warn", "the store's log level on stderr: debug, info, warn or error")
	var nf node.Flags
	nf.Register(fs, "")
	_ = fs.Parse(args)
	if *name == "" {
		log.Fatal("chaos node: -name is required")
	}

	var offset atomic.Int64 // nanoseconds Config.Now runs ahead
	offset.Store(int64(*clockOffset))
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		log.Fatalf("chaos node: -log: %v", err)
	}
	cfg := peersession.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Header: sessionHeader,
		// The wall clock moved by the offset, without Go's monotonic
		// reading, as a stepped system clock would be.
		Now:     func() time.Time { return time.Now().Round(0).Add(time.Duration(offset.Load())) },
		DataDir: *dataDir,
		Cluster: nf.Cluster("chaos node", *name),
	}
	if *keyFile != "" {
		k, err := peersession.ReadKeyFile(*keyFile)
		if err != nil {
			log.Fatal(err)
		}
		cfg.Cluster.Keys = [][]byte{k}
	} else if *dataDir != "" {
		log.Fatal("chaos node: -data-dir needs -key-file")
	}
	st := node.Start(cfg, 60*time.Second)

	mux := http.NewServeMux()
	sess := st.Middleware(sessionPaths())
	mux.Handle("POST /w", sess)
	mux.Handle("POST /login", sess)
	mux.Handle("POST /logout", sess)
	mux.HandleFunc("POST /destroy-principal", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("p")
		ids := st.PrincipalSessions(p)
		if _, err := st.DestroyPrincipal(r.Context(), p); err != nil {
			http.Error(w, err.Error(), peersession.StatusCode(err))
			return
		}
		writeJSON(w, ids)
	})
	mux.HandleFunc("GET /dump", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, dumpStore(st, r.URL.Query().Has("full")))
	})
	mux.HandleFunc("POST /clock", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("offset"))
		if err != nil {
			http.Error(w, "offset: "+err.Error(), http.StatusBadRequest)
			return
		}
		offset.Store(int64(d))
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := st.Stats()
		out := nodeStats{Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc, Sessions: s.Sessions, Tombstones: s.Tombstones}
		if s.Replication != nil {
			out.Peers = len(s.Replication.Peers)
			out.Skewed = s.Replication.Skewed
			out.Heals = s.Replication.Heals
		}
		writeJSON(w, out)
	})
	node.Serve(*httpAddr, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute})
	if err := st.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos node: close:", err)
	}
}

// nodeStats is a node's /stats answer.
type nodeStats struct {
	Goroutines int    `json:"goroutines"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	Sessions   int    `json:"sessions"`
	Tombstones int64  `json:"tombstones"`
	Peers      int    `json:"peers"`
	Skewed     uint64 `json:"skewed"`
	Heals      uint64 `json:"heals"`
}

// sessionPaths is the handler behind the middleware.
func sessionPaths() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := peersession.FromContext(r.Context())
		q := r.URL.Query()
		// A login or logout through a node that holds no such session
		// (it did not reach it yet, and no peer answered its fetch) ends
		// nothing: say so, for the checker.
		answer := "ok"
		if r.URL.Path != "/w" {
			answer = map[bool]string{true: "new", false: "existing"}[s.IsNew()]
		}
		var err error
		switch r.URL.Path {
		case "/w":
			err = s.Set(q.Get("k"), q.Get("v"))
		case "/login":
			if err = s.RenewID(); err == nil {
				if err = s.SetPrincipal(q.Get("p")); err == nil {
					err = s.Set("user", q.Get("p"))
				}
			}
		case "/logout":
			err = s.Destroy()
		}
		if err != nil {
			http.Error(w, err.Error(), peersession.StatusCode(err))
			return
		}
		// The first byte written is the commit point: a commit that fails
		// (a Sync write no peer acknowledged) answers an error instead.
		fmt.Fprintln(w, answer)
	})
}

// dumped is one session as /dump shows it.
type dumped struct {
	ID        string            `json:"id"`
	Principal string            `json:"p,omitempty"`
	Values    map[string]string `json:"kv"`
}

// dump is /dump's answer.
type dump struct {
	Digest   string   `json:"digest"`
	Count    int      `json:"count"`
	Sessions []dumped `json:"sessions,omitempty"`
}

// dumpStore reads every live session of st, sorted by ID, and digests
// them; full keeps the sessions in the answer.
func dumpStore(st *peersession.Store, full bool) dump {
	var all []dumped
	for s := range st.All() {
		d := dumped{ID: s.ID(), Principal: s.Principal(), Values: map[string]string{}}
		for _, k := range s.Keys() {
			var v any
			if _, err := s.Get(k, &v); err != nil {
				d.Values[k] = "!error: " + err.Error()
				continue
			}
			d.Values[k] = fmt.Sprint(v)
		}
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	h := sha256.New()
	enc := json.NewEncoder(h) // map keys are encoded sorted
	for _, d := range all {
		_ = enc.Encode(d)
	}
	out := dump{Digest: hex.EncodeToString(h.Sum(nil))[:16], Count: len(all)}
	if full {
		out.Sessions = all
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
