package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peersession/peersession"
)

// NodeConfig configures one instance of the app.
type NodeConfig struct {
	// Name is the node's cluster name, unique and stable across restarts.
	// Required.
	Name string
	// HTTPAddr is where the app listens; empty means 127.0.0.1:0 (a free
	// port, see Node.URL).
	HTTPAddr string
	// GossipAddr is the cluster address ("ip:port"); empty means
	// 127.0.0.1 and a free port, see Node.GossipAddr.
	GossipAddr string
	// Join lists the gossip addresses of other nodes. The node's own
	// address may be in the list, so every node can get the same list.
	Join []string
	// Keys is the cluster keyring (32-byte keys, see
	// peersession.ReadKeyFile); nil is allowed on loopback addresses.
	Keys [][]byte
	// Consistency is peersession.Async (the default) or peersession.Sync.
	Consistency peersession.Consistency
	// Copies is peersession.ClusterConfig.Copies: zero means every node
	// holds every session; two or more, partitioned mode.
	Copies int
	// DataDir, when set, keeps the node's sessions on disk there
	// (peersession.Config.DataDir), encrypted with Keys[0]: they survive a
	// restart of every node, or a crash.
	DataDir string
	// Memberlist, when set, tunes failure detection (see FastFailureDetection).
	Memberlist func(*memberlist.Config)
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// AdminPassword, when set, serves the store's admin page at /admin/
	// (and its status at /status) on AdminAddr, an internal address apart
	// from the app's, behind basic auth as AdminUser; empty serves none.
	AdminPassword string
	// AdminAddr is the admin page's address; empty means 127.0.0.1:0.
	AdminAddr string
}

// FastFailureDetection shortens memberlist's timers so that a node that
// vanishes without leaving is declared dead within about a hundred
// milliseconds instead of several seconds. That suits a demo and tests on
// one machine; on a real network keep memberlist's defaults, which
// tolerate packet loss and slow hosts.
func FastFailureDetection(c *memberlist.Config) {
	c.ProbeInterval = 50 * time.Millisecond
	c.ProbeTimeout = 25 * time.Millisecond
	c.SuspicionMult = 1
	c.GossipInterval = 10 * time.Millisecond
	c.PushPullInterval = time.Second
}

// Node is one running instance of the app.
type Node struct {
	name   string
	gossip string
	store  *peersession.Store
	srv    *http.Server
	url    string
	served chan struct{} // closed when Serve has returned
	admin  *adminServer  // nil without NodeConfig.AdminPassword
}

// StartNode joins the cluster, waits for the state transfer from the peers
// (so the node never serves a request before it knows the sessions), then
// starts serving HTTP. Stop it with Stop.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Name == "" {
		return nil, errors.New("demo: NodeConfig.Name is empty; give each node a unique name")
	}
	host, port, err := gossipHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, err
	}
	store, err := peersession.New(peersession.Config{
		Logger:  cfg.Logger,
		DataDir: cfg.DataDir,
		Cluster: &peersession.ClusterConfig{
			Name:        cfg.Name,
			BindAddr:    host,
			BindPort:    port,
			Join:        cfg.Join,
			Keys:        cfg.Keys,
			Consistency: cfg.Consistency,
			Copies:      cfg.Copies,
			Memberlist:  cfg.Memberlist,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("demo: start node %s: %w", cfg.Name, err)
	}
	if err := store.WaitReady(ctx); err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("demo: start node %s: %w", cfg.Name, err)
	}
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("demo: start node %s: %w", cfg.Name, err)
	}
	admin, err := startAdmin(cfg, store)
	if err != nil {
		_ = ln.Close()
		_ = store.Close()
		return nil, err
	}
	n := &Node{
		admin:  admin,
		name:   cfg.Name,
		gossip: gossipOf(store),
		store:  store,
		url:    "http://" + ln.Addr().String(),
		served: make(chan struct{}),
		srv: &http.Server{
			Handler:           withReadiness(store, store.Middleware(Handler(cfg.Name, store))),
			ReadHeaderTimeout: 5 * time.Second,
		},
	}
	go func() {
		defer close(n.served)
		if err := n.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) && cfg.Logger != nil {
			cfg.Logger.Error("demo: serve", "node", cfg.Name, "err", err)
		}
	}()
	return n, nil
}

// Stop shuts the node down in the documented order: first the HTTP server
// (no new requests; requests in flight finish and commit their sessions),
// then the store (flushes its changes to the peers and leaves the cluster).
// It is safe to call more than once.
func (n *Node) Stop(ctx context.Context) error {
	err := n.srv.Shutdown(ctx)
	<-n.served
	err = errors.Join(err, n.admin.stop(ctx))
	return errors.Join(err, n.store.Close())
}

// Name returns the node's cluster name.
func (n *Node) Name() string { return n.name }

// URL returns the node's HTTP base URL, such as "http://127.0.0.1:41234".
func (n *Node) URL() string { return n.url }

// GossipAddr returns the address other nodes join this one at.
func (n *Node) GossipAddr() string { return n.gossip }

// Store returns the node's session store.
func (n *Node) Store() *peersession.Store { return n.store }

// gossipHostPort splits a gossip address; "" means 127.0.0.1 and a port
// the store picks.
func gossipHostPort(addr string) (string, int, error) {
	if addr == "" {
		return "127.0.0.1", 0, nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("demo: gossip address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("demo: gossip address %q: bad port", addr)
	}
	return host, port, nil
}

// gossipOf returns the gossip address the store listens on.
func gossipOf(store *peersession.Store) string {
	for _, m := range store.Members() {
		if m.Self {
			return m.Gossip
		}
	}
	return ""
}

// withReadiness serves the store's readiness probe at /readyz (what a
// load balancer or Kubernetes asks; see deploy/kubernetes) and the app
// everywhere else.
func withReadiness(store *peersession.Store, app http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", store.ReadyHandler())
	mux.Handle("/", app)
	return mux
}

// listen listens on TCP address addr, or on a free loopback port when addr
// is empty.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}
