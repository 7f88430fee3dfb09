package peersession

// Nodes starting: alone, at once, or joined by a peer while still wiring
// up, on the real loopback network.

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/testnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A node whose seeds were all unreachable when it started becomes ready
// with what it has; when a peer appears later, it pulls that peer's state
// at once (anti-entropy is off here, so only that can deliver it).
func TestNodeStartedAloneSyncsWhenAPeerAppears(t *testing.T) {
	eachMode(t, testNodeStartedAloneSyncsWhenAPeerAppears)
}

func testNodeStartedAloneSyncsWhenAPeerAppears(t *testing.T, opts func(*Config)) {
	port, release := testnet.ReservePort(t)
	cfg := func(name string, bind int, join ...string) Config {
		c := Config{Cluster: &ClusterConfig{Name: name, BindPort: bind, Join: join, Label: "test", Keys: [][]byte{testKey},
			AntiEntropyInterval: -1, RejoinInterval: 200 * time.Millisecond, Memberlist: fastTimers}}
		opts(&c)
		return c
	}
	a, err := New(cfg("a", 0, fmt.Sprintf("127.0.0.1:%d", port))) // b is not up yet
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	require.NoError(t, a.WaitReady(t.Context()))
	tok := create(t, a, map[string]any{"made": "while alone"})

	release()
	b, err := New(cfg("b", port))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.WaitReady(t.Context()))
	// b's own copy: in partitioned mode a read on b would fetch it from a.
	require.Eventually(t, func() bool { return len(missingCopy(b, []write{{"a", tok, "made", "while alone"}})) == 0 }, waitFor, tick,
		"the node that came up later never got the session")
}

// Nodes started at once, each given every node's address (a deployment's
// replicas coming up together), all end up replicating with each other:
// with MinAcks 2, a Sync save on any of the three returns only once both
// others applied it. Anti-entropy is off: only the peers' streams carry
// the changes.
func TestNodesStartedAtOnceAllReplicate(t *testing.T) {
	names := []string{"a", "b", "c"}
	ports := make([]int, len(names))
	var addrs []string
	for i := range names {
		var release func()
		ports[i], release = testnet.ReservePort(t)
		release() // just below, every node binds its own at once
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	stores := make([]*Store, len(names))
	errs := make(chan error, len(names))
	for i, name := range names {
		go func() {
			cfg := Config{Cluster: &ClusterConfig{Name: name, BindPort: ports[i], Join: addrs,
				Label: "test", Keys: [][]byte{testKey}, AntiEntropyInterval: -1, RejoinInterval: 200 * time.Millisecond,
				Memberlist: fastTimers, Consistency: Sync, MinAcks: 2, SyncTimeout: waitFor}}
			var err error
			stores[i], err = New(cfg)
			if errors.Is(err, syscall.EADDRINUSE) {
				// Taken since it was released (a local port of another
				// node's connection): any port will do, this node
				// joins the others all the same.
				cfg.Cluster.BindPort = 0
				stores[i], err = New(cfg)
			}
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				defer cancel()
				err = stores[i].WaitReady(ctx)
			}
			errs <- err
		}()
	}
	var err error
	for range names {
		err = errors.Join(err, <-errs)
	}
	for _, st := range stores {
		if st != nil {
			t.Cleanup(func() { _ = st.Close() })
		}
	}
	require.NoError(t, err)
	tc := &testCluster{t: t}
	tc.waitMembers(len(names), stores...)
	for i, st := range stores {
		tok := create(t, st, map[string]any{"made": "on " + names[i]}) // Sync: both others applied it
		for _, other := range stores {
			assert.Equal(t, "on "+names[i], value(other, tok, "made"))
		}
	}
}

// A node that another joins while it is still starting (its cluster node
// is up, its replication engine not yet) still replicates with it: here
// a's re-join loop reaches b in that window, and b must sync a's session
// from a and a must get b's writes.
func TestNodeJoinedWhileStartingReplicatesWithThePeer(t *testing.T) {
	eachMode(t, testNodeJoinedWhileStartingReplicatesWithThePeer)
}

func testNodeJoinedWhileStartingReplicatesWithThePeer(t *testing.T, opts func(*Config)) {
	port, release := testnet.ReservePort(t)
	with := func(c Config) Config { opts(&c); return c }
	a, err := New(with(Config{Cluster: &ClusterConfig{Name: "a", Join: []string{fmt.Sprintf("127.0.0.1:%d", port)},
		Label: "test", Keys: [][]byte{testKey}, AntiEntropyInterval: -1, RejoinInterval: 200 * time.Millisecond,
		Memberlist: fastTimers}})) // b is not up yet
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	require.NoError(t, a.WaitReady(t.Context()))
	tok := create(t, a, map[string]any{"made": "on a"})

	release()
	b, err := newStore(with(Config{Cluster: &ClusterConfig{Name: "b", BindPort: port, Label: "test", Keys: [][]byte{testKey},
		AntiEntropyInterval: -1, Memberlist: fastTimers, Consistency: Sync}}),
		hooks{nodeStarted: func(n *cluster.Node) {
			require.Eventually(t, func() bool { return n.NumAlive() == 2 }, waitFor, tick, "a never re-joined b")
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.WaitReady(t.Context()))
	// Each node's own copy: in partitioned mode a read would fetch it.
	require.Eventually(t, func() bool { return len(missingCopy(b, []write{{"a", tok, "made", "on a"}})) == 0 }, waitFor, tick,
		"b never got a's session")
	update(t, b, tok, map[string]any{"made": "on b"}) // Sync: a acknowledged it
	assert.Empty(t, missingCopy(a, []write{{"b", tok, "made", "on b"}}), "a did not acknowledge with the write")
}

// A gossip port already taken fails New with an error that says so and
// that errors.Is matches to syscall.EADDRINUSE, so a caller can pick
// another port.
func TestNewOnATakenPortIsEADDRINUSE(t *testing.T) {
	port, _ := testnet.ReservePort(t) // held: taken
	_, err := New(Config{Cluster: &ClusterConfig{Name: "a", BindPort: port, Label: "test", Keys: [][]byte{testKey}}})
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Contains(t, err.Error(), "address already in use")
}
