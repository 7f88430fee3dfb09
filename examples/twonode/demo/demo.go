package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peersession/peersession"
)

// Config configures Start.
type Config struct {
	// ProxyAddr is where the load balancer listens; empty means
	// 127.0.0.1:0.
	ProxyAddr string
	// Memberlist tunes the nodes' failure detection; nil means
	// FastFailureDetection, right for nodes on one machine.
	Memberlist func(*memberlist.Config)
	// Logger receives the stores' logs; nil discards them.
	Logger *slog.Logger
	// AdminPassword guards each node's admin page (Node.AdminURL, user
	// AdminUser); empty means a random one, see Demo.AdminPassword.
	AdminPassword string
}

// Demo is two nodes, A and B, behind a round-robin proxy, all in one
// process. Its methods must not be called concurrently.
type Demo struct {
	cfg    Config
	confs  [2]NodeConfig // the HTTP address is kept, so a node restarts where the proxy expects it
	nodes  [2]*Node      // nil while stopped
	proxy  *http.Server
	url    string
	served chan struct{} // closed when the proxy's Serve has returned
}

// Node names, and their index in a Demo.
const (
	A = 0
	B = 1
)

// Start starts nodes A and B, then the proxy in front of them. Close it
// with Close.
func Start(ctx context.Context, cfg Config) (d *Demo, err error) {
	if cfg.Memberlist == nil {
		cfg.Memberlist = FastFailureDetection
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = RandomPassword()
	}
	d = &Demo{cfg: cfg, served: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = d.Close(context.Background())
		}
	}()
	// Loopback needs no key, but a cluster should have one: it encrypts
	// and authenticates the gossip and the replication streams.
	keys := [][]byte{peersession.GenerateKey()}
	for i, name := range []string{"A", "B"} {
		d.confs[i] = NodeConfig{
			Name:       name,
			Keys:       keys,
			Memberlist: cfg.Memberlist,
			Logger:     cfg.Logger,

			AdminPassword: cfg.AdminPassword,
		}
	}
	var urls []string
	for i := range d.confs {
		if err := d.StartNode(ctx, i); err != nil {
			return d, err
		}
		// Keep the HTTP port for restarts: the proxy knows the node by it.
		d.confs[i].HTTPAddr = strings.TrimPrefix(d.nodes[i].URL(), "http://")
		d.confs[i].AdminAddr = d.nodes[i].admin.addr
		urls = append(urls, d.nodes[i].URL())
	}
	proxy, err := NewProxy(urls...)
	if err != nil {
		return d, err
	}
	ln, err := listen(cfg.ProxyAddr)
	if err != nil {
		return d, fmt.Errorf("demo: proxy: %w", err)
	}
	d.url = "http://" + ln.Addr().String()
	d.proxy = &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(d.served)
		_ = d.proxy.Serve(ln) // returns ErrServerClosed after Shutdown
	}()
	return d, nil
}

// AdminPassword returns the password of the nodes' admin pages.
func (d *Demo) AdminPassword() string { return d.cfg.AdminPassword }

// URL returns the proxy's base URL, the one a user opens.
func (d *Demo) URL() string { return d.url }

// Node returns node i (A or B), or nil while it is stopped.
func (d *Demo) Node(i int) *Node { return d.nodes[i] }

// StartNode starts node i (A or B), which joins the other node if it
// runs; it returns once the node has the cluster's sessions and serves.
func (d *Demo) StartNode(ctx context.Context, i int) error {
	if d.nodes[i] != nil {
		return fmt.Errorf("demo: node %s is running", d.confs[i].Name)
	}
	cfg := d.confs[i]
	if other := d.nodes[1-i]; other != nil {
		cfg.Join = []string{other.GossipAddr()}
	}
	n, err := StartNode(ctx, cfg)
	if err != nil {
		return err
	}
	d.nodes[i] = n
	return nil
}

// StopNode stops node i (A or B) gracefully; see Node.Stop.
func (d *Demo) StopNode(ctx context.Context, i int) error {
	n := d.nodes[i]
	if n == nil {
		return nil
	}
	d.nodes[i] = nil
	return n.Stop(ctx)
}

// Close stops the proxy and both nodes.
func (d *Demo) Close(ctx context.Context) error {
	var errs []error
	if d.proxy != nil {
		errs = append(errs, d.proxy.Shutdown(ctx))
		<-d.served
		d.proxy = nil
	}
	for i := range d.nodes {
		errs = append(errs, d.StopNode(ctx, i))
	}
	return errors.Join(errs...)
}
