// Command server serves the benchmark handler — read a counter and a 1 KiB
// value from the session, increment the counter, save — behind one session
// implementation chosen by -variant:
//
//	none       no sessions: the ceiling
//	scs-mem    scs v2 with its memstore
//	scs-redis  scs v2 with redisstore against -redis
//	peer       peersession; with -join (or -gossip-port and a peer that
//	           joins it) a cluster node, Async or Sync (-consistency);
//	           with -data-dir and -key-file its sessions also on disk;
//	           with -copies n in partitioned mode
//
// Paths: /init creates a session (counter 0 and the 1 KiB value; with
// ?pad=N also an N-byte value) and answers "0"; /rw answers the counter it
// read and stores it plus one; /ro answers the counter and changes nothing
// (peer: a session that is not found answers 500 with X-Session-Missing
// set, a read the store could not make its StatusCode: 503 when a
// partitioned session's holders did not answer);
// /login logs in as the demo does (RenewID, principal and user set: with
// the cookie of the last login, each one replaces the session and leaves a
// tombstone) and /logout destroys the session (peer only); /stats (outside
// the session middleware) answers the store's figures as JSON, /status
// (peer) the store's StatusHandler; /where (peer) the session's ID and
// holders (Store.Holders) as JSON, /held (peer, outside the middleware) the
// IDs of the sessions the node has a copy of; /debug/pprof/ profiles.
//
// The server prints "LISTEN <url>" on stdout once it serves (for a cluster
// node, after WaitReady) and stops cleanly on SIGINT/SIGTERM.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gomodule/redigo/redis"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/bench/internal/node"
)

var blob = strings.Repeat("x", 1024)

// MissingHeader is set on the answer of /rw and /ro when the request's
// session was not found (the status stays 500, as before).
const MissingHeader = "X-Session-Missing"

func main() {
	variant := flag.String("variant", "peer", "none, scs-mem, scs-redis or peer")
	httpAddr := flag.String("http", "127.0.0.1:0", "HTTP listen address")
	redisAddr := flag.String("redis", "127.0.0.1:6390", "redis address for scs-redis")
	nodeName := flag.String("node", "", "peer: cluster node name (empty: a single node)")
	var nf node.Flags
	nf.Register(flag.CommandLine, "peer: ")
	keyFile := flag.String("key-file", "", "peer: cluster key file (base64), required off loopback")
	maxTombstones := flag.Int("max-tombstones", 0, "peer: Config.MaxTombstones (0: the default, MaxSessions)")
	dataDir := flag.String("data-dir", "", "peer: Config.DataDir, encrypted with the -key-file key (required with it)")
	flag.Parse()

	var handler http.Handler
	var stats func() any
	var closeFn func()
	var status http.Handler
	var held http.Handler
	switch *variant {
	case "none":
		handler = noSessions()
	case "scs-mem", "scs-redis":
		sm := scs.New()
		sm.Lifetime = 24 * time.Hour
		sm.IdleTimeout = 30 * time.Minute
		if *variant == "scs-redis" {
			pool := &redis.Pool{
				MaxIdle:     256,
				IdleTimeout: 4 * time.Minute,
				Dial:        func() (redis.Conn, error) { return redis.Dial("tcp", *redisAddr) },
			}
			c := pool.Get()
			if _, err := c.Do("PING"); err != nil {
				log.Fatalf("server: redis at %s: %v", *redisAddr, err)
			}
			c.Close()
			sm.Store = redisstore.New(pool)
			closeFn = func() { pool.Close() }
		} else {
			sm.Store = memstore.New()
		}
		handler = sm.LoadAndSave(scsHandlers(sm))
	case "peer":
		cfg := peersession.Config{Logger: nf.Logger(), MaxTombstones: *maxTombstones, DataDir: *dataDir}
		var key []byte
		if *keyFile != "" {
			k, err := peersession.ReadKeyFile(*keyFile)
			if err != nil {
				log.Fatal(err)
			}
			key = k
		}
		if *nodeName != "" {
			cc := nf.Cluster("server", *nodeName)
			if key != nil {
				cc.Keys = [][]byte{key}
			}
			cfg.Cluster = cc
		}
		if *dataDir != "" {
			if key == nil {
				log.Fatal("server: -data-dir needs -key-file: the files are encrypted with that key")
			}
			cfg.DataKey = key
		}
		st := node.Start(cfg, 60*time.Second)
		handler = st.Middleware(peerHandlers(st))
		held = heldHandler(st)
		stats = func() any { return st.Stats() }
		status = st.StatusHandler()
		closeFn = func() {
			if err := st.Close(); err != nil {
				log.Printf("server: close store: %v", err)
			}
		}
	default:
		log.Fatalf("server: -variant %q: want none, scs-mem, scs-redis or peer", *variant)
	}

	mux := http.NewServeMux()
	mux.Handle("/init", handler)
	mux.Handle("/rw", handler)
	mux.Handle("/ro", handler)
	if status != nil {
		mux.Handle("/login", handler)
		mux.Handle("/logout", handler)
		mux.Handle("/where", handler)
		mux.Handle("/status", status)
		mux.Handle("/held", held)
	}
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		if r.URL.Query().Has("gc") {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		out := map[string]any{"variant": *variant, "heap_alloc": ms.HeapAlloc, "goroutines": runtime.NumGoroutine()}
		if stats != nil {
			out["store"] = stats()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	node.Pprof(mux)

	node.Serve(*httpAddr, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute})
	if closeFn != nil {
		closeFn()
	}
}

func noSessions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The same answer without any session work: the ceiling.
		_, _ = w.Write([]byte("0"))
	})
}

func scsHandlers(sm *scs.SessionManager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.URL.Path == "/init" {
			sm.Put(ctx, "n", 0)
			sm.Put(ctx, "blob", blob)
			_, _ = w.Write([]byte("0"))
			return
		}
		n := sm.GetInt(ctx, "n")
		if b := sm.GetString(ctx, "blob"); len(b) != len(blob) {
			http.Error(w, "session lost its 1 KiB value", http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/rw" {
			sm.Put(ctx, "n", n+1)
		}
		_, _ = w.Write([]byte(strconv.Itoa(n)))
	})
}

// answer writes body, or err with the status peersession gives it.
func answer(w http.ResponseWriter, body string, err error) {
	if err != nil {
		http.Error(w, err.Error(), peersession.StatusCode(err))
		return
	}
	_, _ = w.Write([]byte(body))
}

// Where is /where's answer: the request's session ID and its holders
// (Store.Holders of the request's cookie).
type Where struct {
	ID      string   `json:"id"`
	Holders []string `json:"holders"`
}

// heldHandler answers /held: the IDs of the sessions st has a copy of
// (Store.All), as a JSON list.
func heldHandler(st *peersession.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := make([]string, 0, st.Len())
		for s := range st.All() {
			ids = append(ids, s.ID())
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ids)
	})
}

func peerHandlers(st *peersession.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := peersession.FromContext(r.Context())
		switch r.URL.Path {
		case "/where":
			var holders []string
			if c, err := r.Cookie("session"); err == nil {
				holders = st.Holders(c.Value)
			}
			var n int
			if ok, err := s.Get("n", &n); err != nil {
				http.Error(w, fmt.Sprintf("session not read: %v", err), peersession.StatusCode(err))
				return
			} else if !ok {
				w.Header().Set(MissingHeader, "1")
				http.Error(w, "no session", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(Where{ID: s.ID(), Holders: holders})
			return
		case "/init":
			err := s.Set("n", 0)
			if err == nil {
				err = s.Set("blob", blob)
			}
			if pad, _ := strconv.Atoi(r.URL.Query().Get("pad")); pad > 0 && err == nil {
				err = s.Set("pad", strings.Repeat("p", pad))
			}
			answer(w, "0", err)
			return
		case "/login":
			// As the demo's login: a new ID (no session fixation), the
			// principal, the user.
			err := s.RenewID()
			if err == nil {
				err = s.SetPrincipal("user")
			}
			if err == nil {
				err = s.Set("user", "user")
			}
			answer(w, "ok", err)
			return
		case "/logout":
			answer(w, "ok", s.Destroy())
			return
		}
		var n int
		var b string
		if ok, err := s.Get("n", &n); err != nil {
			// The store could not tell (in partitioned mode, the
			// session's holders did not answer: 503, retry).
			http.Error(w, fmt.Sprintf("session not read: %v", err), peersession.StatusCode(err))
			return
		} else if !ok {
			// No such session here: a client that had one was logged
			// out (bench/cmd/kill counts these by the header).
			w.Header().Set(MissingHeader, "1")
			http.Error(w, "session lost its counter (no session)", http.StatusInternalServerError)
			return
		}
		if ok, err := s.Get("blob", &b); !ok || err != nil || len(b) != len(blob) {
			http.Error(w, "session lost its 1 KiB value", http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/rw" {
			if err := s.Set("n", n+1); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		_, _ = w.Write([]byte(strconv.Itoa(n)))
	})
}
