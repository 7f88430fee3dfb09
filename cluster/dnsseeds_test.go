package cluster

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeDNS answers for one name with the addresses it is set to, as a
// Kubernetes headless Service's name answers with its pods' addresses.
type fakeDNS struct {
	mu    sync.Mutex // guards addrs
	addrs []string
}

func (d *fakeDNS) set(addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = addrs
}

func (d *fakeDNS) lookup(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if host != "nodes.test" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]string(nil), d.addrs...), nil
}

// A seed given as a host name is resolved again every RejoinInterval, and
// the addresses that are not members yet are joined even by a node that
// already has peers: two islands merge as soon as the name names both,
// and after every node restarted on a new address they find each other
// again through the same name.
func TestSeedNameIsResolvedAgainAndIslandsMerge(t *testing.T) {
	ip := func(i int) string { return "127.0.0." + strconv.Itoa(i) }
	l, err := net.Listen("tcp", ip(2)+":0")
	if err != nil {
		t.Skipf("cannot bind %s (loopback aliases are Linux's): %v", ip(2), err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	var dns fakeDNS
	start := func(i int) testNode {
		n := newTestNode(t, func(c *Config) {
			c.BindAddr, c.BindPort = ip(i), port
			c.Seeds = []string{net.JoinHostPort("nodes.test", strconv.Itoa(port))}
			c.LookupHost = dns.lookup
		})
		// A seed not up yet is no error worth failing on: the node keeps
		// trying, which is what this test is about.
		_ = n.Join(t.Context())
		return n
	}

	dns.set(ip(2))
	a := start(2)
	dns.set(ip(3))
	b := start(3)
	require.Equal(t, 1, a.NumAlive(), "two islands: each name named only its own node")
	require.Equal(t, 1, b.NumAlive())

	dns.set(ip(2), ip(3))
	require.Eventually(t, func() bool { return a.NumAlive() == 2 && b.NumAlive() == 2 }, waitFor, tick,
		"the islands never merged")

	a.Close()
	b.Close()
	dns.set(ip(4), ip(5))
	c, d := start(4), start(5)
	require.Eventually(t, func() bool { return c.NumAlive() == 2 && d.NumAlive() == 2 }, waitFor, tick,
		"the nodes on their new addresses never found each other")
}
