package cluster

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/testnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThreeNodesSeeEachOther(t *testing.T) {
	t.Parallel()
	ns := cluster(t, 3, nil)
	for _, n := range ns {
		self := n.Self()
		assert.True(t, strings.HasPrefix(self.ID, self.Name+"-"), self.ID)
		assert.Len(t, self.ID, len(self.Name)+1+8)
		var want []string
		for _, o := range ns {
			if o.Node != n.Node {
				want = append(want, o.Self().ID)
			}
		}
		require.Eventually(t, func() bool { return len(n.rec.upIDs()) == 2 }, waitFor, tick)
		assert.ElementsMatch(t, want, n.rec.upIDs())
		var got []string
		for _, p := range n.Peers() {
			got = append(got, p.ID)
			assert.NotEmpty(t, p.Addr)
			assert.NotEmpty(t, p.Name)
		}
		assert.ElementsMatch(t, want, got)
		ms := n.Members()
		require.Len(t, ms, 3)
		for _, m := range ms {
			assert.Equal(t, StateAlive, m.State)
		}
	}
	// Peers carry the name and stream address each node advertises.
	for _, p := range ns[0].Peers() {
		for _, o := range ns {
			if o.Self().ID == p.ID {
				assert.Equal(t, o.Self(), p)
			}
		}
	}
}

func TestLeaveIsLeftCloseIsDead(t *testing.T) {
	t.Parallel()
	ns := cluster(t, 3, nil)
	a, b, c := ns[0], ns[1], ns[2]

	require.NoError(t, b.Leave(time.Second))
	require.NoError(t, b.Leave(time.Second), "Leave is idempotent")
	for _, n := range []testNode{a, c} {
		require.Eventually(t, func() bool { _, ok := n.rec.down(b.Self().ID); return ok }, waitFor, tick)
		d, _ := n.rec.down(b.Self().ID)
		assert.True(t, d.Left, "graceful leave must be reported as left")
		assert.Equal(t, b.Self(), d.Peer)
	}
	require.NoError(t, b.Close())

	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")
	require.Eventually(t, func() bool { _, ok := a.rec.down(c.Self().ID); return ok }, waitFor, tick)
	d, _ := a.rec.down(c.Self().ID)
	assert.False(t, d.Left, "a closed node without Leave is dead")

	states := map[string]string{}
	for _, m := range a.Members() {
		states[m.ID] = m.State
	}
	assert.Equal(t, map[string]string{
		a.Self().ID: StateAlive,
		b.Self().ID: StateLeft,
		c.Self().ID: StateDead,
	}, states)
	assert.Empty(t, a.Peers())
	err := a.Send(context.Background(), c.Self().ID, []byte("x"))
	assert.ErrorIs(t, err, ErrUnknownPeer)

	assert.ErrorIs(t, c.Leave(time.Second), ErrClosed)
	assert.ErrorIs(t, c.Join(context.Background()), ErrClosed)
	assert.ErrorIs(t, c.Send(context.Background(), a.Self().ID, nil), ErrClosed)
}

func TestRestartWithSameNameRejoins(t *testing.T) {
	t.Parallel()
	a, b := pair(t, nil)
	oldID := b.Self().ID
	require.NoError(t, b.Close())

	b2 := newTestNode(t, func(c *Config) {
		c.Name = b.Self().Name
		seeds(a)(c)
	})
	join(t, b2)
	assert.NotEqual(t, oldID, b2.Self().ID)
	assert.Equal(t, b.Self().Name, b2.Self().Name)
	require.Eventually(t, func() bool {
		_, ok := a.alivePeer(b2.Self().ID)
		return ok
	}, waitFor, tick)
	sendRetry(t, a.Node, b2.Self().ID, []byte("hello again"))
	waitFrames(t, b2, a, 1)
	// The old process is eventually declared dead and then forgotten, since
	// a member with its name is up.
	require.Eventually(t, func() bool { _, ok := a.rec.down(oldID); return ok }, waitFor, tick)
}

func TestJoinNoSeedReachableThenRejoin(t *testing.T) {
	t.Parallel()
	// Reserve a port for a node that is not running yet.
	port, release := testnet.ReservePort(t)

	b := newTestNode(t, func(c *Config) {
		c.Seeds = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	err := b.Join(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no seed reachable")

	// The seed comes up later and has no seeds of its own: the re-join
	// loop finds it.
	release()
	a := newTestNode(t, func(c *Config) { c.BindPort = port })
	join(t, a)
	waitPeers(t, a, b)
}

// A node can be joined as soon as New returns, but its Handler hears of
// the peers and their frames only from its first Join on: a caller wires
// its Handler up between New and Join without missing anything, because
// everything that arrived before is delivered then, in order.
func TestHandlerHearsNothingBeforeJoin(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, nil)
	b := newTestNode(t, seeds(a))
	join(t, b)
	require.Eventually(t, func() bool { _, ok := b.alivePeer(a.Self().ID); return ok }, waitFor, tick)
	sendRetry(t, b.Node, a.Self().ID, []byte("before a's Join"))
	require.Eventually(t, func() bool { return a.NumAlive() == 2 }, waitFor, tick, "a's memberlist never learnt of b")

	assert.Empty(t, a.rec.upIDs(), "PeerUp before Join")
	assert.Empty(t, a.rec.framesFrom(b.Self().ID), "Frame before Join")
	assert.Empty(t, a.Peers())

	join(t, a)
	require.Eventually(t, func() bool {
		return slices.Equal(a.rec.upIDs(), []string{b.Self().ID}) && len(a.rec.framesFrom(b.Self().ID)) == 1
	}, waitFor, tick)
	assert.Equal(t, "before a's Join", string(a.rec.framesFrom(b.Self().ID)[0]))
}

func TestJoinWithoutSeedsOrOnlySelf(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, nil)
	join(t, a)
	b := newTestNode(t, nil)
	b.cfg.Seeds = []string{b.gossipAddr()}
	join(t, b)
	assert.Empty(t, b.Peers())
}

func TestJoinContextCancelled(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers makes memberlist's join
	// hang until its TCP timeout; the context ends Join first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	b := newTestNode(t, func(c *Config) { c.Seeds = []string{l.Addr().String()} })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = b.Join(ctx)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}
