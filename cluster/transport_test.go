package cluster

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peersession/peersession/internal/testnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingTransport counts the packets a node sends.
type countingTransport struct {
	memberlist.NodeAwareTransport
	packets *atomic.Int64
}

func (c countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.packets.Add(1)
	return c.NodeAwareTransport.WriteToAddress(b, a)
}

// countingListener counts the stream connections a node accepts.
type countingListener struct {
	net.Listener
	accepted *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func TestNetworkHooksCarryTheTraffic(t *testing.T) {
	var packets, dials, accepted atomic.Int64
	hooks := func(c *Config) {
		c.WrapTransport = func(tr memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			return countingTransport{tr, &packets}
		}
		c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		c.WrapListener = func(ln net.Listener) net.Listener { return countingListener{ln, &accepted} }
	}
	ns := cluster(t, 2, hooks)
	sendRetry(t, ns[0].Node, ns[1].Self().ID, []byte("over the hooks"))
	require.Eventually(t, func() bool { return len(ns[1].rec.framesFrom(ns[0].Self().ID)) > 0 }, waitFor, tick)
	require.Eventually(t, func() bool { return packets.Load() > 0 }, waitFor, tick, "no probe went through WrapTransport")
	assert.Positive(t, dials.Load(), "the stream was not dialed with Dial")
	assert.Positive(t, accepted.Load(), "the stream was not accepted through WrapListener")
}

// transports are the two ways a Node builds memberlist's transport: its
// own (plain), or through Config.WrapTransport (here a pass-through).
var transports = map[string]func(*Config){
	"plain": nil,
	"wrapped": func(c *Config) {
		c.WrapTransport = func(tr memberlist.NodeAwareTransport) memberlist.NodeAwareTransport { return tr }
	},
}

// A fixed BindPort is the advertised port when AdvertisePort is zero
// (memberlist alone would advertise port 0), with and without the hooks.
func TestFixedBindPortIsAdvertised(t *testing.T) {
	for name, mod := range transports {
		t.Run(name, func(t *testing.T) {
			var n testNode
			var port int
			for try := 0; n.Node == nil; try++ {
				var release func()
				port, release = testnet.ReservePort(t)
				release()
				var err error
				n, err = startTestNode(t, func(c *Config) {
					c.BindPort = port
					if mod != nil {
						mod(c)
					}
				})
				if !errors.Is(err, syscall.EADDRINUSE) || try == 4 {
					require.NoError(t, err)
				} // else taken between release and bind, as any free port may be: another
			}
			assert.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), n.GossipAddr())
		})
	}
}

// A gossip port already in use fails New with an error that says so and
// that errors.Is matches to syscall.EADDRINUSE (memberlist's own error
// drops the errno), with and without the transport hook.
func TestPortInUseIsEADDRINUSE(t *testing.T) {
	for name, mod := range transports {
		t.Run(name, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer taken.Close()
			_, err = startTestNode(t, func(c *Config) {
				c.BindPort = taken.Addr().(*net.TCPAddr).Port
				if mod != nil {
					mod(c)
				}
			})
			require.ErrorIs(t, err, syscall.EADDRINUSE)
			assert.Contains(t, err.Error(), "address already in use")
		})
	}
}

// The kernel may offer the stream listener (port 0) the very port that
// memberlist is about to bind as BindPort, when that port was just freed.
// The stream listener then takes another and frees that one for memberlist.
func TestStreamListenerLeavesTheGossipPortFree(t *testing.T) {
	offered, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gossip := offered.Addr().(*net.TCPAddr).Port
	calls := 0
	listen := func(network, addr string) (net.Listener, error) {
		calls++
		if calls == 1 {
			return offered, nil // as if the kernel picked the gossip port
		}
		return net.Listen(network, addr)
	}
	ln, err := listenStream(listen, Config{BindAddr: "127.0.0.1", BindPort: gossip})
	require.NoError(t, err)
	defer ln.Close()
	assert.NotEqual(t, gossip, ln.Addr().(*net.TCPAddr).Port)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(gossip)))
	require.NoError(t, err, "the gossip port was not freed")
	l.Close()
}
