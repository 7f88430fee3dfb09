package cluster

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
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

// A fixed BindPort is the advertised port when AdvertisePort is zero
// (memberlist alone would advertise port 0), with and without the hooks.
func TestFixedBindPortIsAdvertised(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"plain": nil,
		"wrapped": func(c *Config) {
			c.WrapTransport = func(tr memberlist.NodeAwareTransport) memberlist.NodeAwareTransport { return tr }
		},
	} {
		t.Run(name, func(t *testing.T) {
			port, release := testnet.ReservePort(t)
			release()
			n := newTestNode(t, func(c *Config) {
				c.BindPort = port
				if mod != nil {
					mod(c)
				}
			})
			assert.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), n.GossipAddr())
		})
	}
}
