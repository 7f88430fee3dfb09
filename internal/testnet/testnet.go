// Package testnet hands tests loopback ports that nothing else takes
// before the code under test binds them.
//
// The usual trick, binding port 0 and closing the listener to learn a free
// port, leaves the port free for anyone until the code under test binds
// it; meanwhile every connection a test's nodes open takes a local port
// from the same range, and now and then the reserved one (a node's bind
// then fails with "address already in use"). A reservation here stays
// bound until the test releases it, just before the node binds it.
package testnet

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// ReservePort returns a port on 127.0.0.1 that is free for both TCP and
// UDP (a memberlist gossip port needs both) and holds it bound until
// release is called, or the test ends. Release it just before the node
// that binds it starts. Meanwhile a node joining the port connects to a
// listener that never answers, and times out as it would on a node that
// is slow to start. release may be called more than once.
func ReservePort(t testing.TB) (port int, release func()) {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testnet: no TCP port on loopback: %v", err)
		}
		u, err := net.ListenPacket("udp", l.Addr().String())
		if err != nil {
			l.Close() // taken for UDP: try another
			continue
		}
		var once sync.Once
		release = func() {
			once.Do(func() {
				l.Close()
				u.Close()
			})
		}
		t.Cleanup(release)
		return l.Addr().(*net.TCPAddr).Port, release
	}
	t.Fatal("testnet: no loopback port free for both TCP and UDP in 20 tries")
	return 0, nil
}

// ReserveAddr is ReservePort as a "127.0.0.1:port" address.
func ReserveAddr(t testing.TB) (addr string, release func()) {
	t.Helper()
	port, release := ReservePort(t)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), release
}
