package peersession

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peersession/peersession/cluster"
	"github.com/stretchr/testify/require"
)

// deafTo drops, on every node's memberlist transport, the UDP packets
// sent to one gossip address once it is set: that node hears no gossip,
// only TCP push/pulls (and the replication streams, which are not
// memberlist's).
type deafTo struct {
	addr    atomic.Pointer[string]
	dropped atomic.Int64
}

func (d *deafTo) wrap(tr memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	return &deafTransport{NodeAwareTransport: tr, d: d}
}

func (d *deafTo) drops(addr string) bool {
	if a := d.addr.Load(); a != nil && *a == addr {
		d.dropped.Add(1)
		return true
	}
	return false
}

// deafTransport is a memberlist transport subject to a deafTo.
type deafTransport struct {
	memberlist.NodeAwareTransport
	d *deafTo
}

func (t *deafTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.d.drops(addr) {
		return time.Now(), nil // lost, as a datagram may be
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *deafTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.d.drops(a.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

// A joining node's transfer request parked at a peer that missed its
// gossip is served promptly: the joiner, finding the peer silent for
// TransferRetry, pushes/pulls membership with it, and the peer then sees
// it up. Here n2 hears no gossip at all and memberlist's periodic
// push/pull waits an hour, so without that exchange n2 would learn of n3
// (and serve its requests) only an hour later, and n3's WaitReady would
// not return.
func TestJoinerPushesPullsWithAPeerThatMissedItsGossip(t *testing.T) {
	deaf := &deafTo{}
	var joinOnly []string // set for n3: join n1 only, so that n2 hears of n3 through gossip alone
	var mu sync.Mutex
	tc := newTestCluster(t, func(c *Config) {
		c.Cluster.Memberlist = func(mc *memberlist.Config) {
			fastTimers(mc)
			// Probes to n2 fail over UDP and succeed over memberlist's
			// TCP fallback ping (which tells n2 nothing of members),
			// within a probe interval: give it a second.
			mc.ProbeInterval, mc.ProbeTimeout, mc.TCPTimeout = time.Second, 500*time.Millisecond, 2*time.Second
			mc.PushPullInterval = time.Hour
		}
		mu.Lock()
		if joinOnly != nil {
			c.Cluster.Join = joinOnly
		}
		mu.Unlock()
	})
	tc.hooks = func(string) hooks {
		return hooks{faults: func(cc *cluster.Config) { cc.WrapTransport = deaf.wrap }}
	}
	n1, n2 := tc.start("n1"), tc.start("n2")
	tc.waitMembers(2, n1, n2)
	ctx := context.Background()
	var tokens []string
	for i := range 20 { // n3's sessions arrive through the transfers
		s := n1.NewSession(ctx)
		require.NoError(t, s.Set("k", i))
		tok, err := n1.Save(ctx, s)
		require.NoError(t, err)
		tokens = append(tokens, tok)
	}

	n2Addr := n2.repl.node.GossipAddr()
	deaf.addr.Store(&n2Addr)
	mu.Lock()
	joinOnly = []string{n1.repl.node.GossipAddr()}
	mu.Unlock()
	start := time.Now()
	n3 := tc.start("n3") // fails unless WaitReady returns within waitFor (10 s)
	t.Logf("n3 ready after %v", time.Since(start))

	require.Positive(t, deaf.dropped.Load(), "no gossip to n2 was dropped: the test did not keep n2 unaware")
	require.Positive(t, n3.Stats().Replication.TransferRetries, "n3 never asked again: n2 answered without a push/pull")
	tc.waitMembers(3, n1, n2, n3)
	for _, tok := range tokens {
		require.NotNil(t, n3.lookup(sessionID(tok)), "a session n3 should hold since its transfer")
	}
}

// The nudger starts at most one push/pull per peer per interval, each
// peer on its own, and one that could not start (the peer not live) does
// not count against the next.
func TestNudgerStartsOnePushPullPerPeerPerInterval(t *testing.T) {
	now := time.Unix(1000, 0)
	var started []string
	live := map[string]bool{"a": true, "b": true}
	n := &nudger{
		pushPull: func(p string) bool {
			if !live[p] {
				return false
			}
			started = append(started, p)
			return true
		},
		every: 2 * time.Second,
		now:   func() time.Time { return now },
	}
	n.nudge("a")
	n.nudge("a")
	n.nudge("b")
	n.nudge("c") // not live: not started
	require.Equal(t, []string{"a", "b"}, started)

	now = now.Add(time.Second)
	n.nudge("a")
	live["c"] = true
	n.nudge("c")
	require.Equal(t, []string{"a", "b", "c"}, started, "a within its interval; c now live")

	now = now.Add(time.Second)
	n.nudge("a")
	require.Equal(t, []string{"a", "b", "c", "a"}, started, "a again once its interval passed")
}
