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
// Endpoints: POST /login (form user), POST /cart (form item), GET /cart,
// POST /logout, GET /cluster, and the HTML page at /.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/examples/twonode/demo"
)

func main() {
	var (
		once        = flag.Bool("once", false, "exit after the walkthrough: status 0 only if every step held")
		proxyAddr   = flag.String("proxy", "127.0.0.1:8080", "demo: the proxy's listen address (a free port if this one is taken)")
		node        = flag.String("node", "", "run one node with this name instead of the demo")
		httpAddr    = flag.String("http", "", "-node: HTTP listen address, such as 127.0.0.1:8081")
		gossipAddr  = flag.String("gossip", "", "-node: cluster address, such as 127.0.0.1:7946")
		join        = flag.String("join", "", "-node: comma-separated cluster addresses of other nodes")
		keyFile     = flag.String("key-file", "", "-node: file holding the 32-byte cluster key in base64 (required off loopback)")
		consistency = flag.String("consistency", "async", "-node: async or sync (sync: a write waits for a peer's acknowledgement)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if *node != "" {
		err = runNode(ctx, *node, *httpAddr, *gossipAddr, *join, *keyFile, *consistency)
	} else {
		err = runDemo(ctx, *proxyAddr, isSet("proxy"), *once)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "twonode:", err)
		os.Exit(1)
	}
}

func runDemo(ctx context.Context, proxyAddr string, proxySet, once bool) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := demo.Start(ctx, demo.Config{ProxyAddr: proxyAddr, Logger: logger})
	if err != nil && !proxySet {
		// The default port is taken: any free one will do.
		d, err = demo.Start(ctx, demo.Config{Logger: logger})
	}
	if err != nil {
		return err
	}
	defer shutdown(d.Close)

	fmt.Printf("node A   %s   (cluster address %s)\n", d.Node(demo.A).URL(), d.Node(demo.A).GossipAddr())
	fmt.Printf("node B   %s   (cluster address %s)\n", d.Node(demo.B).URL(), d.Node(demo.B).GossipAddr())
	fmt.Printf("proxy    %s   <- open this one\n\n", d.URL())
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

func runNode(ctx context.Context, name, httpAddr, gossipAddr, join, keyFile, consistency string) error {
	if httpAddr == "" || gossipAddr == "" {
		return errors.New("-node needs -http and -gossip addresses")
	}
	cfg := demo.NodeConfig{
		Name:       name,
		HTTPAddr:   httpAddr,
		GossipAddr: gossipAddr,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if join != "" {
		cfg.Join = strings.Split(join, ",")
	}
	if keyFile != "" {
		key, err := demo.ReadKeyFile(keyFile)
		if err != nil {
			return err
		}
		cfg.Keys = [][]byte{key}
	}
	switch consistency {
	case "async":
		cfg.Consistency = peersession.Async
	case "sync":
		cfg.Consistency = peersession.Sync
	default:
		return fmt.Errorf("-consistency is %q; use async or sync", consistency)
	}
	n, err := demo.StartNode(ctx, cfg)
	if err != nil {
		return err
	}
	defer shutdown(n.Stop)
	fmt.Printf("node %s serving %s (cluster address %s). Ctrl-C stops.\n", name, n.URL(), n.GossipAddr())
	<-ctx.Done()
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
