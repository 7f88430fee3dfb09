// Command twonode is peersession's demo: an app whose sessions survive a
// load balancer that is not sticky, and the loss of a node.
//
// With no flags it runs nodes A and B and a round-robin proxy in front of
// them in one process, walks through a scripted session (log in, fill a
// cart on alternating nodes, stop A, keep shopping on B, start A again),
// then serves until interrupted so you can open the proxy in a browser:
//
//	go run ./examples/twonode          # -once: exit after the walkthrough
//
// With -node it runs one node per process, to try real processes:
//
//	go run ./examples/twonode -node a -http 127.0.0.1:8081 -gossip 127.0.0.1:7946 -join 127.0.0.1:7947
//	go run ./examples/twonode -node b -http 127.0.0.1:8082 -gossip 127.0.0.1:7947 -join 127.0.0.1:7946
//
// Add -data-dir DIR (with -key-file) to keep a node's sessions on disk,
// so that they survive stopping every node, or kill -9.
//
// Each node also serves peersession's admin page at /admin/ on an
// internal address of its own (-admin with -node), behind basic auth as
// user admin with the -admin-password password, or a random one printed
// at start.
//
// Endpoints: POST /login (form user), POST /cart (form item), GET /cart,
// POST /logout, GET /cluster, and the HTML page at /.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/examples/twonode/demo"
)

// registerFlags defines the command's flags on fs: the demo's, and the
// -node mode's in nf.
func registerFlags(fs *flag.FlagSet) (nf *nodeFlags, once *bool, proxyAddr *string) {
	nf = new(nodeFlags)
	once = fs.Bool("once", false, "exit after the walkthrough: status 0 only if every step held")
	proxyAddr = fs.String("proxy", "127.0.0.1:8080", "demo: the proxy's listen address (a free port if this one is taken)")
	fs.StringVar(&nf.name, "node", "", "run one node with this name instead of the demo")
	fs.StringVar(&nf.http, "http", "", "-node: HTTP listen address, such as 127.0.0.1:8081")
	fs.StringVar(&nf.gossip, "gossip", "", "-node: cluster address, such as 127.0.0.1:7946")
	fs.StringVar(&nf.join, "join", "", "-node: comma-separated cluster addresses of other nodes (host names resolve to every address they name)")
	fs.StringVar(&nf.keyFile, "key-file", "", "-node: file holding the 32-byte cluster key in base64 (required off loopback)")
	fs.StringVar(&nf.consistency, "consistency", "async", "-node: async, or sync (a write waits for a peer's acknowledgement)")
	fs.IntVar(&nf.copies, "copies", 0, "-node: partitioned mode, each session held by this many nodes (2 or more; the same on every node); 0 means every node holds every session")
	fs.StringVar(&nf.dataDir, "data-dir", "", "-node: keep the sessions in this directory, encrypted with the -key-file key, so they survive a restart or crash")
	fs.StringVar(&nf.admin, "admin", "", "-node: the admin page's internal address (default 127.0.0.1 and a free port)")
	fs.StringVar(&nf.adminPassword, "admin-password", "", "the admin pages' basic-auth password, user admin (default: a random one, printed)")
	return nf, once, proxyAddr
}

// nodeFlags are the -node mode's flags.
type nodeFlags struct {
	name, http, gossip, join, keyFile, consistency, dataDir string
	admin, adminPassword                                    string
	copies                                                  int
}

func main() {
	nf, once, proxyAddr := registerFlags(flag.CommandLine)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if nf.name != "" {
		err = runNode(ctx, *nf, os.Stdout)
	} else {
		err = runDemo(ctx, *proxyAddr, isSet("proxy"), *once, nf.adminPassword)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "twonode:", err)
		os.Exit(1)
	}
}

func runDemo(ctx context.Context, proxyAddr string, proxySet, once bool, adminPassword string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := demo.Start(ctx, demo.Config{ProxyAddr: proxyAddr, Logger: logger, AdminPassword: adminPassword})
	if errors.Is(err, syscall.EADDRINUSE) && !proxySet {
		// The default port is taken: any free one will do.
		d, err = demo.Start(ctx, demo.Config{Logger: logger, AdminPassword: adminPassword})
	}
	if err != nil {
		return err
	}
	defer shutdown(d.Close)

	fmt.Printf("node A   %s   (cluster address %s)\n", d.Node(demo.A).URL(), d.Node(demo.A).GossipAddr())
	fmt.Printf("node B   %s   (cluster address %s)\n", d.Node(demo.B).URL(), d.Node(demo.B).GossipAddr())
	fmt.Printf("proxy    %s   <- open this one\n", d.URL())
	fmt.Printf("admin    %s and %s   (user %s, password %s)\n\n",
		d.Node(demo.A).AdminURL(), d.Node(demo.B).AdminURL(), demo.AdminUser, d.AdminPassword())
	werr := d.Walkthrough(ctx, os.Stdout)
	if once {
		return werr
	}
	if werr != nil {
		fmt.Fprintln(os.Stderr, "twonode:", werr)
	}
	fmt.Printf("\nServing: open %s and reload to see the nodes alternate. Ctrl-C stops.\n", d.URL())
	<-ctx.Done()
	return nil
}

// config turns the flags into a node configuration.
func (f nodeFlags) config() (demo.NodeConfig, error) {
	if f.http == "" || f.gossip == "" {
		return demo.NodeConfig{}, errors.New("-node needs -http and -gossip addresses")
	}
	cfg := demo.NodeConfig{
		Name:       f.name,
		HTTPAddr:   f.http,
		GossipAddr: f.gossip,
		DataDir:    f.dataDir,
		Copies:     f.copies,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),

		AdminAddr: f.admin, AdminPassword: f.adminPassword,
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = demo.RandomPassword()
	}
	if f.dataDir != "" && f.keyFile == "" {
		return cfg, errors.New("-data-dir needs -key-file: the sessions on disk are encrypted with the cluster key (make one with `openssl rand -base64 32 > key`)")
	}
	if f.join != "" {
		cfg.Join = strings.Split(f.join, ",")
	}
	if f.keyFile != "" {
		key, err := peersession.ReadKeyFile(f.keyFile)
		if err != nil {
			return cfg, err
		}
		cfg.Keys = [][]byte{key}
	}
	switch f.consistency {
	case "async", "":
		cfg.Consistency = peersession.Async
	case "sync":
		cfg.Consistency = peersession.Sync
	default:
		return cfg, fmt.Errorf("-consistency is %q; use async or sync", f.consistency)
	}
	return cfg, nil
}

// runNode runs one node until ctx ends, then shuts it down.
func runNode(ctx context.Context, f nodeFlags, out io.Writer) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	n, err := demo.StartNode(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node %s serving %s (cluster address %s). Ctrl-C stops.\n", n.Name(), n.URL(), n.GossipAddr())
	fmt.Fprintf(out, "admin page %s (user %s, password %s)\n", n.AdminURL(), demo.AdminUser, cfg.AdminPassword)
	<-ctx.Done()
	shutdown(n.Stop)
	return nil
}

// shutdown runs stop (a Demo's or Node's: HTTP server first, then store)
// with a deadline for requests still in flight.
func shutdown(stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "twonode: shutdown:", err)
	}
}

// isSet reports whether flag name was given on the command line.
func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
