package peersession

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

func TestNonLoopbackWithoutKeyRefusesToStart(t *testing.T) {
	_, err := New(Config{Cluster: &ClusterConfig{Name: "a", BindAddr: "0.0.0.0", AdvertiseAddr: "10.1.2.3"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "openssl rand -base64 32", "the error says how to make a key")
}

// A captured replication frame replayed later cannot bring back a
// destroyed session: while the tombstone lives it wins the merge, and after
// the tombstone window the replayed session is past its absolute deadline
// and refused.
func TestReplayedCreateCannotResurrectDestroyedSession(t *testing.T) {
	clk := newFakeClock()
	tc := newTestCluster(t, func(c *Config) { c.Now = clk.Now; c.Lifetime = time.Hour })
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	tok := create(t, a, map[string]any{"user": "alice"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", b)

	// The attacker (or a confused peer) recorded the create.
	token, _ := parseCookie(tok)
	captured, err := wire.Encode(wire.MsgBatch, &wire.Batch{Seq: 1, Records: []model.Record{a.shards.get(idOf(token)).rec}})
	require.NoError(t, err)
	replay := func() { b.repl.eng.HandleFrame(a.repl.node.Self().ID, bytes.Clone(captured)) }

	require.NoError(t, a.Delete(t.Context(), tok))
	eventuallyEverywhere(t, func(st *Store) bool { return !has(st, tok) }, "destroy not replicated", b)

	replay()
	assert.False(t, has(b, tok), "replay within the tombstone window resurrected the session")

	clk.Advance(time.Hour + tombstoneGrace + time.Second) // past the deadline and the window
	b.Sweep()
	require.Nil(t, b.shards.get(idOf(token)), "the tombstone is gone")
	refusedBefore := b.Stats().Refused
	replay()
	require.Eventually(t, func() bool { return b.Stats().Refused > refusedBefore }, waitFor, tick)
	assert.False(t, has(b, tok), "replay after the window resurrected the session")
	assert.Nil(t, b.shards.get(idOf(token)))
}

// Key rotation on a live cluster: add the new key everywhere, make it
// primary everywhere, remove the old one, with writes flowing; nothing is
// lost or rejected, and a node holding only the old key is locked out.
func TestKeyRotationUnderWrites(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b", "c")
	newKey := GenerateKey()

	var (
		mu      sync.Mutex // guards written
		written []string
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000 && !stop.Load(); i++ {
			tok := create(t, nodes[i%3], map[string]any{"i": fmt.Sprint(i)})
			mu.Lock()
			written = append(written, tok)
			mu.Unlock()
		}
	}()
	step := func(f func(st *Store) error) {
		for _, st := range nodes {
			require.NoError(t, f(st))
		}
	}
	step(func(st *Store) error { return st.AddKey(newKey) })
	step(func(st *Store) error { return st.UseKey(newKey) })
	step(func(st *Store) error { return st.RemoveKey(testKey) })
	stop.Store(true)
	wg.Wait()

	tok := create(t, nodes[0], map[string]any{"after": "rotation"})
	eventuallyEverywhere(t, func(st *Store) bool { return value(st, tok, "after") == "rotation" }, "write after rotation not replicated", nodes...)
	mu.Lock()
	defer mu.Unlock()
	eventuallyEverywhere(t, func(st *Store) bool {
		for _, w := range written {
			if !has(st, w) {
				return false
			}
		}
		return true
	}, "a write made during rotation was lost", nodes...)
	for _, st := range nodes {
		assert.Zero(t, st.Stats().Replication.Rejected, "a frame was rejected during rotation")
	}

	// A node with only the old key cannot join any more.
	old, err := New(Config{Cluster: &ClusterConfig{Name: "old", Join: tc.seeds, Label: "test", Keys: [][]byte{testKey}, Memberlist: fastTimers}})
	require.NoError(t, err)
	defer old.Close()
	assert.Equal(t, 0, old.Len())
	assert.Equal(t, 3, alive(nodes[0]))
}

// A value a peer sends is decoded later by the application's Get; one that
// declares more than it carries (msgpack would allocate the declared
// length) is refused when it arrives, and the rest of the batch applies.
func TestHostileValueFromPeerIsRefused(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	now := time.Now().UnixNano()
	good := model.Record{ID: idOf(newToken()), Created: now, Access: now, Deadline: now + int64(time.Hour), IdleTimeout: int64(time.Hour),
		Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte{0xa1, 'v'}, Ver: a.clock.Now()}}}}
	bad := good.Clone()
	bad.ID = idOf(newToken())
	bad.Keys[0].Value = model.Value{Data: []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, Ver: a.clock.Now()} // "k": an array of 4G elements, no bytes
	frame, err := wire.Encode(wire.MsgBatch, &wire.Batch{Seq: 1, Records: []model.Record{bad, good}})
	require.NoError(t, err)
	refused := b.Stats().Refused
	b.repl.eng.HandleFrame(a.repl.node.Self().ID, frame)
	require.Eventually(t, func() bool { return b.shards.get(good.ID) != nil }, waitFor, tick)
	assert.Nil(t, b.shards.get(bad.ID))
	assert.Equal(t, refused+1, b.Stats().Refused)
}
