// Package testcluster starts peersession nodes on loopback for the
// adapters' tests: real memberlist gossip and real replication streams,
// failure detection tuned to well under a second, every wait a condition.
package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/peersession/peersession"
	shared "github.com/peersession/peersession/internal/testcluster"
	"github.com/stretchr/testify/require"
)

const (
	// WaitFor bounds every condition wait in the adapters' tests.
	WaitFor = 10 * time.Second
	// Tick is how often a waited-on condition is checked.
	Tick = 5 * time.Millisecond
)

var key = bytes.Repeat([]byte{7}, 32)

// Single starts a single-node store with the default Config, closed when
// the test ends.
func Single(t testing.TB) *peersession.Store {
	t.Helper()
	st, err := peersession.New(peersession.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

// Node starts a clustered store named name, with cluster label label,
// joined to join (gossip addresses), with opts applied to its Config, and waits until it is
// ready. The store is closed when the test ends.
func Node(t testing.TB, name, label string, gossipPort int, join []string, opts func(*peersession.Config)) *peersession.Store {
	t.Helper()
	st, err := start(t, name, label, gossipPort, join, opts)
	require.NoError(t, err)
	return st
}

func start(t testing.TB, name, label string, gossipPort int, join []string, opts func(*peersession.Config)) (*peersession.Store, error) {
	t.Helper()
	cfg := peersession.Config{Cluster: &peersession.ClusterConfig{
		Name:                name,
		BindPort:            gossipPort,
		Join:                join,
		RejoinInterval:      200 * time.Millisecond,
		Label:               label,
		Keys:                [][]byte{key},
		AntiEntropyInterval: 200 * time.Millisecond,
		// Generous, so that read-your-writes checks hold on a loaded
		// machine running -race; a fetch that finds the session
		// returns as soon as it does.
		FetchTimeout: 2 * time.Second,
		Memberlist:   shared.FastTimers,
	}}
	if os.Getenv("PEERSESSION_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name(), "node", name)
	}
	if opts != nil {
		opts(&cfg)
	}
	st, err := peersession.New(cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
	defer cancel()
	require.NoError(t, st.WaitReady(ctx))
	return st, nil
}

// Pair starts two clustered nodes, "a" and "b", and waits until each sees
// the other alive. opts, if not nil, adjusts both nodes' Config.
func Pair(t testing.TB, opts func(*peersession.Config)) (a, b *peersession.Store) {
	t.Helper()
	nodes := Nodes(t, 2, opts)
	return nodes[0], nodes[1]
}

// Nodes starts n clustered nodes, named "a", "b", ..., and waits until
// each sees all n alive. opts, if not nil, adjusts every node's Config.
//
// The root package has no public getter for a node's gossip address yet,
// so node a binds a free port picked here and the others join
// 127.0.0.1:port.
func Nodes(t testing.TB, n int, opts func(*peersession.Config)) []*peersession.Store {
	t.Helper()
	// A label of its own keeps the nodes apart from other tests' nodes,
	// which may have known a node at the same address before.
	label := fmt.Sprintf("adapters-test-%x", rand.Uint64())
	// The port picked may be taken before node a binds it (tests in
	// other packages run at the same time): pick another.
	var port int
	var first *peersession.Store
	for try := 0; first == nil; try++ {
		port = FreePort(t)
		var err error
		if first, err = start(t, "a", label, port, nil, opts); err != nil && (try == 4 || !errors.Is(err, syscall.EADDRINUSE)) {
			require.NoError(t, err)
		}
	}
	nodes := []*peersession.Store{first}
	seed := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	for i := 1; i < n; i++ {
		nodes = append(nodes, Node(t, string(rune('a'+i)), label, 0, seed, opts))
	}
	require.Eventually(t, func() bool {
		for _, st := range nodes {
			if Alive(st) != n {
				return false
			}
		}
		return true
	}, WaitFor, Tick, "the %d nodes never all saw each other", n)
	return nodes
}

// Serve serves h on a loopback httptest server until the test ends.
func Serve(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// CountUp sends n requests to /incr, alternating over urls, and requires
// each to answer 200 and the count so far: every request saw the write of
// the one before, on whichever node that ran.
func CountUp(t testing.TB, br *shared.Browser, n int, urls ...string) {
	t.Helper()
	for i := range n {
		res, body := br.Get(urls[i%len(urls)] + "/incr")
		require.Equal(t, http.StatusOK, res.StatusCode, "increment %d: %s", i, body)
		require.Equal(t, strconv.Itoa(i+1), body, "increment %d, on node %d", i, i%len(urls))
	}
}

// NonSticky runs test, in parallel subtests, on clusters of 2 and of 3
// nodes with SteadyMembership: serve starts an app over one node's store
// and returns its URL, test gets the URLs of the apps, one a node, to
// alternate requests over as a balancer that is not sticky would.
func NonSticky(t *testing.T, serve func(t *testing.T, st *peersession.Store) string, test func(t *testing.T, urls []string)) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			t.Parallel()
			urls := make([]string, n)
			for i, st := range Nodes(t, n, SteadyMembership) {
				urls[i] = serve(t, st)
			}
			test(t, urls)
		})
	}
}

// Alive returns how many members st sees alive, itself included.
func Alive(st *peersession.Store) int {
	n := 0
	for _, m := range st.Members() {
		if m.State == "alive" {
			n++
		}
	}
	return n
}

// FreePort returns a loopback port that was free for both TCP and UDP a
// moment ago (memberlist needs both on one port).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = l.Close()
		if err != nil {
			continue // taken for UDP: try another
		}
		_ = u.Close()
		return port
	}
	t.Fatal("testcluster: no port free for both TCP and UDP on 127.0.0.1")
	return 0
}

// SteadyMembership gives nodes memberlist's own LAN timings instead of the
// fast failure detection the other tests use: for tests about what a
// healthy cluster guarantees, in which a loaded machine running -race must
// not get a live node suspected and dropped for a moment.
func SteadyMembership(c *peersession.Config) { c.Cluster.Memberlist = nil }
