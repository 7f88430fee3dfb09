package peersession

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A node restarts and catches up while 80 connections from addresses that
// are no member's keep a peer's stream port busy, redialing as soon as they
// are dropped (issue 19, point 4: they used to hold every handshake slot,
// and the restarted node served only after 36.7 s). Strangers hold at most
// three quarters of the slots, 8 from one address, each for 500 ms at
// most; the restarted node connects from a member's address.
func TestNodeRejoinsWhileStrangersHoldHandshakeSlots(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	tok := create(t, a, map[string]any{"k": "v"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", a, b)
	kill(b)
	tc.waitMembers(1, a)

	stop := holdStreamPort(t, a.repl.node.Self().Addr, 80)
	require.Eventually(t, func() bool {
		return a.repl.node.Stats().StreamConnsRefused > 0
	}, waitFor, tick, "the strangers never filled their share of the slots")

	b2 := tc.start("b") // waits until ready: joined, and the state transfer done
	tc.waitMembers(2, a, b2)
	assert.Equal(t, "v", value(b2, tok, "k"))
	require.Eventually(t, func() bool {
		_, ok := a.Stats().Replication.Peers["b"]
		return ok
	}, waitFor, tick, "a's engine never saw the restarted b")
	require.Eventually(t, func() bool {
		return a.repl.node.Stats().HandshakeTimeouts > 0
	}, waitFor, tick, "the silent connections were never dropped")
	stop()
}

// holdStreamPort keeps k silent connections to addr from loopback aliases
// (127.0.0.2 and up, 8 each), each redialing when dropped, at most 50
// times. It returns a func that stops them and waits; cleanup calls it
// too. It skips the test where aliases cannot be bound (they are Linux's).
func holdStreamPort(t *testing.T, addr string, k int) (stop func()) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: waitFor}
	probe, err := d.Dial("tcp", addr)
	if err != nil && strings.Contains(err.Error(), "assign requested address") {
		t.Skipf("cannot connect from a loopback alias: %v", err)
	}
	require.NoError(t, err)
	probe.Close()

	done := make(chan struct{})
	var mu sync.Mutex // guards live
	live := map[net.Conn]bool{}
	var wg sync.WaitGroup
	for i := range k {
		ip := net.IPv4(127, 0, 0, byte(2+i/8))
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: time.Second}
			for range 50 {
				select {
				case <-done:
					return
				default:
				}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					return
				}
				mu.Lock()
				live[c] = true
				mu.Unlock()
				c.SetReadDeadline(time.Now().Add(waitFor))
				_, _ = io.Copy(io.Discard, c) // until the node drops it
				mu.Lock()
				delete(live, c)
				mu.Unlock()
				c.Close()
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			mu.Lock()
			for c := range live {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}
