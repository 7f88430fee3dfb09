package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testlog"
	"github.com/peersession/peersession/internal/testnet"
)

// joinWithin joins n, bounded in time: a refusal must come back at once,
// not after retries.
func joinWithin(t *testing.T, n testNode) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	start := time.Now()
	err := n.Join(ctx)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Join did not return in time")
	t.Logf("Join returned after %v", time.Since(start).Round(time.Millisecond))
	return err
}

// A seed that answers but cannot authenticate the joining node (keys or
// label differ) is a misconfiguration: Join returns a *JoinError naming
// the seed and the field to fix, on the first attempt, and the seed does
// not take the node in. A seed that does not answer is not a refusal.
func TestJoinRefusedBySeedOfAnotherKeyOrLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		seed, joiner func(*Config)
		want         error
		text         string
	}{
		{"keys differ", nil, func(c *Config) { c.Keys = [][]byte{testKey2} }, ErrKeysDiffer,
			"answered but could not authenticate this node: the cluster keys differ (Config.Keys): give every node the same key"},
		{"only the seed has a key", nil, func(c *Config) { c.Keys = nil }, ErrKeysDiffer,
			"answered but could not authenticate this node: the seed uses a cluster key and this node has none (Config.Keys)"},
		{"only this node has a key", func(c *Config) { c.Keys = nil }, nil, ErrKeysDiffer,
			"answered but could not authenticate this node: this node has a cluster key (Config.Keys) and the seed has none"},
		{"labels differ", nil, func(c *Config) { c.Label = "other" }, ErrLabelsDiffer,
			`answered but closed the connection without a reply, as a node with another cluster label does: this node's Config.Label is "other"`},
		{"only the seed has a label", nil, func(c *Config) { c.Label = "" }, ErrLabelsDiffer, `this node's Config.Label is ""`},
		{"label and key differ", nil, func(c *Config) { c.Label = "other"; c.Keys = [][]byte{testKey2} }, ErrLabelsDiffer, "Config.Label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seed := newTestNode(t, tt.seed)
			join(t, seed)
			joiner := newTestNode(t, func(c *Config) {
				if tt.joiner != nil {
					tt.joiner(c)
				}
				seeds(seed)(c)
			})
			err := joinWithin(t, joiner)
			var je *JoinError
			require.ErrorAs(t, err, &je)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, seed.gossipAddr(), je.Seed)
			assert.Contains(t, err.Error(), "cluster: join: seed "+seed.gossipAddr()+" answered")
			assert.Contains(t, err.Error(), tt.text)
			assert.Empty(t, joiner.Peers())
			assert.Equal(t, 1, seed.NumAlive(), "the seed took the node in")
		})
	}
	t.Run("no answer is no refusal", func(t *testing.T) {
		t.Parallel()
		addr, release := testnet.ReserveAddr(t)
		release() // nothing listens: connection refused
		n := newTestNode(t, func(c *Config) { c.Seeds = []string{addr} })
		err := joinWithin(t, n)
		require.Error(t, err)
		var je *JoinError
		assert.False(t, errors.As(err, &je), "%v", err)
		assert.Contains(t, err.Error(), "cluster: join: no seed reachable: failed to join "+addr)
	})
}

// One seed refusing while another takes the node in is no failure: Join
// succeeds, and the refusal is logged.
func TestJoinThroughAnotherSeedLogsTheRefusal(t *testing.T) {
	t.Parallel()
	good := newTestNode(t, nil)
	join(t, good)
	other := newTestNode(t, func(c *Config) { c.Keys = [][]byte{testKey2} })
	join(t, other)
	var logs testlog.Buffer
	n := newTestNode(t, func(c *Config) {
		c.Seeds = []string{other.gossipAddr(), good.gossipAddr()}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	require.NoError(t, joinWithin(t, n))
	waitPeers(t, good, n)
	assert.Contains(t, logs.String(), "a seed refused this node; joined through another")
	assert.Contains(t, logs.String(), "seed "+other.gossipAddr()+" answered but could not authenticate this node: the cluster keys differ")
}

// startNamed starts a node named name, with its log in logs.
func startNamed(t *testing.T, name string, logs *testlog.Buffer, mod func(*Config)) testNode {
	t.Helper()
	return newTestNode(t, func(c *Config) {
		c.Name = name
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		if mod != nil {
			mod(c)
		}
	})
}

// A second live node with the Name of a member is refused, whichever
// member it joins through: its Join returns ErrNameTaken naming the
// holder, and no member takes it in, the holder included.
func TestSecondNodeWithTheSameNameIsRefused(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"the holder", "another member"} {
		t.Run("via "+via, func(t *testing.T) {
			t.Parallel()
			var holderLogs, otherLogs testlog.Buffer
			holder := startNamed(t, "x", &holderLogs, nil)
			join(t, holder)
			other := startNamed(t, "y", &otherLogs, seeds(holder))
			join(t, other)
			waitPeers(t, holder, other)
			seed, seedLogs := holder, &holderLogs
			if via == "another member" {
				seed, seedLogs = other, &otherLogs
			}

			dup := newTestNode(t, func(c *Config) { c.Name = "x"; c.Seeds = []string{seed.gossipAddr()} })
			err := joinWithin(t, dup)
			var je *JoinError
			require.ErrorAs(t, err, &je)
			require.ErrorIs(t, err, ErrNameTaken)
			assert.Equal(t, holder.Self().ID, je.Holder.ID)
			assert.Equal(t, fmt.Sprintf(`cluster: join: seed %s answered, but Config.Name "x" is taken: node %s (%s) is alive with that name; give each node its own Config.Name`,
				seed.gossipAddr(), holder.Self().ID, holder.gossipAddr()), err.Error())

			// The seed decided too (it answered before it did): once it
			// logged the refusal, neither member has the newcomer.
			require.Eventually(t, func() bool { return strings.Contains(seedLogs.String(), "refused a join") }, waitFor, tick)
			assert.Contains(t, seedLogs.String(), "other="+dup.Self().ID)
			for _, m := range []testNode{holder, other} {
				assert.Equal(t, 2, m.NumAlive())
				_, ok := m.alivePeer(dup.Self().ID)
				assert.False(t, ok)
			}
			assert.Empty(t, dup.Peers())
			// The members still talk to each other.
			sendRetry(t, holder.Node, other.Self().ID, []byte("still here"))
			waitFrames(t, other, holder, 1)
		})
	}
}

// A node restarted under its Name while the cluster still counts its
// previous run alive (the failure detector has not noticed yet) is no
// second node: it joins, and never takes its previous run for a peer.
func TestRestartedNodeIsNotRefusedForItsOwnName(t *testing.T) {
	t.Parallel()
	slowDetection := func(c *Config) {
		c.Tune = func(mc *memberlist.Config) {
			fastTimers(mc)
			mc.ProbeInterval = time.Minute // the previous run stays alive all test long
		}
	}
	a := newTestNode(t, slowDetection)
	join(t, a)
	b := newTestNode(t, func(c *Config) { c.Name = "b"; seeds(a)(c) })
	join(t, b)
	waitPeers(t, a, b)
	old := b.Self().ID
	require.NoError(t, b.Close()) // no Leave: a still counts it alive

	b2 := newTestNode(t, func(c *Config) { c.Name = "b"; seeds(a)(c) })
	require.NoError(t, joinWithin(t, b2))
	_, ok := a.alivePeer(old)
	require.True(t, ok, "a no longer counts the previous run alive: the test tests nothing")
	for _, m := range b2.ml.Members() {
		assert.NotEqual(t, old, m.Name, "the restarted node took its previous run for a member")
	}
	require.Eventually(t, func() bool {
		_, aSees := a.alivePeer(b2.Self().ID)
		_, b2Sees := b2.alivePeer(a.Self().ID)
		return aSees && b2Sees
	}, waitFor, tick)
}
