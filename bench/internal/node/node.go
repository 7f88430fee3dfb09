// Package node is what the bench's server programs (cmd/server, cmd/repl's
// node) share: a peersession node set up from flags, pprof, and an HTTP
// server that announces "LISTEN <url>" and stops on SIGINT/SIGTERM.
package node

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peersession/peersession"
)

// Flags are a node's flags: -bind, -gossip-port, -join, -consistency,
// -copies and -v.
type Flags struct {
	Bind        string
	GossipPort  int
	Join        string // comma-separated gossip addresses
	Consistency string // "async" or "sync"
	Copies      int    // ClusterConfig.Copies: 0 full replication, n >= 2 partitioned
	Verbose     bool
}

// Register defines the flags on fs, each help text after prefix.
func (f *Flags) Register(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&f.Bind, "bind", "127.0.0.1", prefix+"gossip and replication bind address")
	fs.IntVar(&f.GossipPort, "gossip-port", 0, prefix+"gossip port (0: any)")
	fs.StringVar(&f.Join, "join", "", prefix+"comma-separated gossip addresses to join")
	fs.StringVar(&f.Consistency, "consistency", "async", prefix+"async or sync")
	fs.IntVar(&f.Copies, "copies", 0, prefix+"ClusterConfig.Copies: 0 full replication, 2 or more partitioned mode (each session on that many nodes)")
	fs.BoolVar(&f.Verbose, "v", false, "log the store's warnings to stderr")
}

// Cluster is the ClusterConfig of node name the flags describe. A
// consistency other than async or sync exits the program, naming prog.
func (f *Flags) Cluster(prog, name string) *peersession.ClusterConfig {
	cc := &peersession.ClusterConfig{Name: name, BindAddr: f.Bind, BindPort: f.GossipPort, Copies: f.Copies}
	if f.Join != "" {
		cc.Join = strings.Split(f.Join, ",")
	}
	switch f.Consistency {
	case "async":
	case "sync":
		cc.Consistency = peersession.Sync
	default:
		log.Fatalf("%s: -consistency %q: want async or sync", prog, f.Consistency)
	}
	return cc
}

// Logger is a logger of the store's warnings to stderr with -v, else nil
// (the store's default).
func (f *Flags) Logger() *slog.Logger {
	if !f.Verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Start starts a store from cfg and waits, at most wait, until it is
// ready; it exits the program if either fails.
func Start(cfg peersession.Config, wait time.Duration) *peersession.Store {
	st, err := peersession.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := st.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
	return st
}

// Pprof serves net/http/pprof's index, CPU profile and trace on mux.
func Pprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// Serve listens on addr, serves srv there, prints "LISTEN http://<addr>"
// on stdout, and returns once SIGINT or SIGTERM came and srv was shut
// down (in-flight requests get 5 seconds). It exits the program if it
// cannot listen or serve.
func Serve(addr string, srv *http.Server) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Printf("LISTEN http://%s\n", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	<-done
}
