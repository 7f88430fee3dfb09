package replicate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/placement"
	"github.com/peersession/peersession/replicate/wire"
)

// fixedPlacement is a Placement over the node names of a memNet (the
// names are the peer IDs there), changed by the test.
type fixedPlacement struct {
	v atomic.Pointer[placement.View]
}

func newFixedPlacement(copies int, names ...string) *fixedPlacement {
	p := &fixedPlacement{}
	p.v.Store(placement.New(copies, names))
	return p
}

func (p *fixedPlacement) Holders(id string, dst []string) []string {
	return p.v.Load().Holders(id, dst)
}

func (p *fixedPlacement) holds(node, id string) bool { return p.v.Load().Holds(node, id) }

// In partitioned mode a change goes only to the peers that hold its
// session, and the Ticket waits only for them.
func TestPublishGoesOnlyToHolders(t *testing.T) {
	pl := newFixedPlacement(2, "A", "B", "C", "D")
	_, nodes := newCluster(t, 4, func(c *Config) { c.Placement = pl })
	a := nodes[0]
	var ids []string
	for i := range 200 {
		id := sessionID(i)
		ids = append(ids, id)
		tk := a.publish(a.write(id, "k", "v"))
		others := 2
		if pl.holds("A", id) {
			others = 1
		}
		assert.Equal(t, others, tk.Peers(), "the ticket of %s waits for its holders other than A", id)
		require.NoError(t, tk.Wait(ctxTimeout(t, 10*time.Second), -1))
	}
	for _, n := range nodes[1:] {
		for _, id := range ids {
			assert.Equal(t, pl.holds(n.name, id), n.value(id, "k") == "v", "%s on %s", id, n.name)
		}
	}
}

// A Push goes to the holders for which to says so, and a record none of
// them holds goes nowhere.
func TestPushGoesToTheNewHoldersOnly(t *testing.T) {
	pl := newFixedPlacement(2, "A", "B", "C")
	_, nodes := newCluster(t, 3, func(c *Config) { c.Placement = pl })
	a, b, c := nodes[0], nodes[1], nodes[2]
	var recs []model.Record
	for i := range 100 {
		r := a.write(sessionID(i), "k", "v")
		a.store.Apply([]model.Record{r})
		recs = append(recs, r)
	}
	tk := a.e.Push(func(peer, id string) bool { return peer == "C" }, recs...)
	require.NoError(t, tk.Wait(ctxTimeout(t, 10*time.Second), -1))
	assert.True(t, tk.AckedBy("C"))
	assert.False(t, tk.AckedBy("B"), "B was sent nothing")
	assert.Zero(t, b.store.len())
	for _, r := range recs {
		assert.Equal(t, pl.holds("C", r.ID), c.value(r.ID, "k") == "v")
	}
	assert.EqualValues(t, c.store.len(), a.e.Stats().Repairs, "pushes count as repairs")
}

// A joining node's state transfer brings it the sessions it holds, from
// whichever peers have them, and nothing else.
func TestTransferSendsOnlyWhatTheJoinerHolds(t *testing.T) {
	pl := newFixedPlacement(2, "A", "B", "C")
	net := newMemNet(t)
	opt := func(c *Config) { c.Placement = pl }
	a, b := newNode(t, net, "A", 1, opt), newNode(t, net, "B", 2, opt)
	connectAll([]*testNode{a, b})
	// Each session is where placement over A, B, C puts it, as if C had
	// been a member and died: on A, on B, or on both.
	want := map[string]bool{}
	for i := range 300 {
		id := sessionID(i)
		r := a.write(id, "k", fmt.Sprint(i))
		for _, n := range []*testNode{a, b} {
			if pl.holds(n.name, id) {
				n.store.Apply([]model.Record{r})
			}
		}
		want[id] = pl.holds("C", id)
	}
	c := newNode(t, net, "C", 3, opt)
	connectAll([]*testNode{a, b, c})
	require.NoError(t, c.e.Transfer(ctxTimeout(t, 10*time.Second)))
	for id, holds := range want {
		_, ok := c.store.Lookup(id)
		assert.Equal(t, holds, ok, "%s on C", id)
	}
}

// Anti-entropy compares only the sessions both nodes hold: a session one
// holds and the other does not is no difference to repair.
func TestAntiEntropyComparesOnlySharedSessions(t *testing.T) {
	pl := newFixedPlacement(2, "A", "B", "C")
	_, nodes := newCluster(t, 3, func(c *Config) { c.Placement = pl })
	a, b := nodes[0], nodes[1]
	var shared []string
	for i := range 300 {
		id := sessionID(i)
		r := a.write(id, "k", "v")
		if pl.holds("A", id) {
			a.store.Apply([]model.Record{r}) // never published: B misses what it shares
		}
		if pl.holds("A", id) && pl.holds("B", id) {
			shared = append(shared, id)
		}
	}
	require.NotEmpty(t, shared)
	a.e.mu.RLock()
	toB := a.e.peers["B"]
	a.e.mu.RUnlock()
	require.True(t, a.e.sendDigest(toB), "a round with B")
	waitFor(t, "B repaired the sessions it shares with A", func() bool {
		return !slices.ContainsFunc(shared, func(id string) bool { return b.value(id, "k") != "v" })
	})
	assert.Equal(t, len(shared), b.store.len(), "B got only the sessions it holds")
	assert.Equal(t, a.e.DigestWith("B"), b.e.DigestWith("A"))
}

// EndPrincipal asks every peer to end the principal's sessions it holds
// and returns the union of the IDs they ended; a peer that reads only
// format 1 (which lacks the message) fails the call at once, asking
// nobody.
func TestEndPrincipalAsksEveryPeer(t *testing.T) {
	ended := map[string][]string{"B": {"s1", "s2"}, "C": {"s2", "s3"}}
	var mu sync.Mutex
	asked := map[string]string{}
	_, nodes := newCluster(t, 3, func(c *Config) {
		self := c.Self
		c.EndPrincipal = func(_ context.Context, p string) ([]string, error) {
			mu.Lock()
			defer mu.Unlock()
			asked[self] = p
			return ended[self], nil
		}
	})
	ids, err := nodes[0].e.EndPrincipal(ctxTimeout(t, 10*time.Second), "alice")
	require.NoError(t, err)
	assert.Equal(t, []string{"s1", "s2", "s3"}, ids)
	assert.Equal(t, map[string]string{"B": "alice", "C": "alice"}, asked)

	net := newMemNet(t)
	fn := &formatNet{Network: net.endpoint("A"), formats: map[string]int{"B": 1}}
	e, err := New(Config{Self: "A", Network: fn, Store: newMemStore(), Clock: model.NewClock(1, nil), AntiEntropyInterval: -1})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	e.PeerUp("B")
	_, err = e.EndPrincipal(ctxTimeout(t, 10*time.Second), "alice")
	require.ErrorIs(t, err, ErrFormatTooOld)
	assert.Contains(t, err.Error(), "peer B reads wire format 1")
	assert.Zero(t, net.link("A", "B").count(wire.MsgEndPrincipal), "nobody was asked")
}

// A peer that goes down before it answers fails EndPrincipal, naming it:
// the sessions it held may have moved to a peer that answered already.
func TestEndPrincipalFailsWhenAPeerGoesDownMidCall(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	started := make(chan struct{}, 1)
	_, nodes := newCluster(t, 3, func(c *Config) {
		self := c.Self
		c.EndPrincipal = func(ctx context.Context, _ string) ([]string, error) {
			if self != "C" {
				return []string{"s-" + self}, nil
			}
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		}
	})
	a := nodes[0]
	errc := make(chan error, 1)
	go func() {
		_, err := a.e.EndPrincipal(ctxTimeout(t, 10*time.Second), "alice")
		errc <- err
	}()
	<-started
	a.e.PeerDown("C", false)
	err := <-errc
	require.Error(t, err, "a peer that went down mid-call was counted as done")
	assert.Contains(t, err.Error(), "C: went down before answering")
}
