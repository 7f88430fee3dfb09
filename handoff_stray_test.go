package peersession

// Strays being handed over in partitioned mode (handoff.go): what a copy
// this node does not hold acknowledges, and when it is dropped.

import (
	"testing"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/testclock"
	"github.com/peersession/peersession/replicate/model"
	"github.com/stretchr/testify/require"
)

// strayRig is a node "x" in partitioned mode with two copies, seeing
// peers a, d and e, and its handoff, without a network: a peer's worker
// is marked running so none starts, and the test reads what each peer
// owes. It is for the bookkeeping of acknowledgements (acked,
// settleStray), which needs nothing else.
type strayRig struct {
	x    *Store
	pt   *partition
	h    *handoff
	solo *Store           // where the test makes sessions
	clk  *testclock.Clock // x's clock
}

func newStrayRig(t *testing.T) *strayRig {
	clk := testclock.New(time.Time{})
	x := newTestStore(t, Config{Now: clk.Now})
	pt := newPartition(2, cluster.Peer{ID: "x-1", Name: "x"})
	for _, n := range []string{"a", "d", "e"} {
		pt.up(cluster.Peer{ID: n + "-1", Name: n})
	}
	x.part.Store(pt)
	r := &replication{st: x, part: pt, ctx: t.Context()}
	h := newHandoff(r)
	r.hand = h
	for _, n := range []string{"a", "d", "e"} {
		h.peers[n+"-1"] = &peerHandoff{ids: map[string]struct{}{}, running: true, kick: make(chan struct{}, 1)}
	}
	return &strayRig{x: x, pt: pt, h: h, clk: clk, solo: newTestStore(t, Config{})}
}

// owes reports whether peer (a Name) owes an acknowledgement of id.
func (g *strayRig) owes(peer, id string) bool {
	g.h.mu.Lock()
	defer g.h.mu.Unlock()
	_, ok := g.h.peers[peer+"-1"].ids[id]
	return ok
}

// handedOver reports whether x hands id over (a stray not dropped yet).
func (g *strayRig) handedOver(id string) bool {
	g.h.mu.Lock()
	defer g.h.mu.Unlock()
	_, ok := g.h.strays[id]
	return ok
}

// down and up take peer (a Name) out of x's view and put it back, as the
// rebalance loop sees it.
func (g *strayRig) down(peer string) {
	g.pt.down(cluster.Peer{ID: peer + "-1", Name: peer})
	g.h.viewChanged(g.pt.view.Load())
}

func (g *strayRig) up(peer string) {
	g.pt.up(cluster.Peer{ID: peer + "-1", Name: peer})
	g.h.viewChanged(g.pt.view.Load())
}

// stray plants on x a copy of a session whose holders are a and d while
// all are up, and a and e once d is gone (never x), and hands it over.
func (g *strayRig) stray(t *testing.T) (tok, id string) {
	names := func(ns ...string) *partView {
		p := newPartition(2, cluster.Peer{ID: "x-1", Name: "x"})
		for _, n := range ns {
			p.up(cluster.Peer{ID: n + "-1", Name: n})
		}
		return p.view.Load()
	}
	all, noD := names("a", "d", "e"), names("a", "e")
	for {
		tok = create(t, g.solo, map[string]any{"n": "1"})
		id = sessionID(tok)
		if all.isHolder("a-1", id) && all.isHolder("d-1", id) && noD.isHolder("e-1", id) && noD.isHolder("a-1", id) {
			break
		}
	}
	require.Zero(t, replStore{g.x}.Apply([]model.Record{g.solo.lookup(id).rec}))
	g.h.stray(id)
	require.True(t, g.owes("a", id) && g.owes("d", id), "the holders do not owe the stray")
	return tok, id
}

// An acknowledgement from a peer that no longer holds the stray is
// forgotten when the view changes, and one from a peer that is not a
// holder is never recorded: a holder that went away (its copy gone with
// a restart, say) and came back must acknowledge the copy again before
// the stray is dropped.
func TestAStrayIsNotDroppedOnAnAcknowledgementFromAnEarlierView(t *testing.T) {
	g := newStrayRig(t)
	_, id := g.stray(t)
	cur := g.x.lookup(id)

	g.h.acked("d-1", id, cur)
	g.down("d") // holders a and e now
	require.True(t, g.owes("e", id), "the new holder does not owe the stray")
	g.h.acked("d-1", id, cur) // a late answer from d, no holder now
	g.up("d")                 // holders a and d again: d has to acknowledge anew
	g.h.acked("a-1", id, cur)
	require.NotNil(t, g.x.lookup(id), "dropped on d's acknowledgement from before it went away")
	require.True(t, g.handedOver(id))
	require.True(t, g.owes("d", id), "d does not owe the stray again")

	g.h.acked("d-1", id, cur)
	require.Nil(t, g.x.lookup(id), "every holder acknowledged the copy, and it is still here")
	require.False(t, g.handedOver(id))
}

// A stray that changed after a holder's acknowledgement is not pushed to
// it again at once: it is left to the stray pass (queued there), which
// pushes it (or drops it, its change acknowledged) at most every
// strayEvery.
func TestAStrayChangedAfterAnAcknowledgementWaitsForTheStrayPass(t *testing.T) {
	g := newStrayRig(t)
	tok, id := g.stray(t)
	old := g.x.lookup(id)
	g.pt.strays.take(1 << 20) // what the plant queued

	update(t, g.solo, tok, map[string]any{"n": "2"})
	require.Zero(t, replStore{g.x}.Apply([]model.Record{g.solo.lookup(id).rec}))
	g.pt.strays.take(1 << 20) // the merge queued it: see that settleStray does too
	g.h.acked("a-1", id, old)
	g.h.acked("d-1", id, old)
	require.False(t, g.owes("a", id) || g.owes("d", id), "the changed stray is pushed again at once")
	require.Equal(t, []string{id}, g.pt.strays.take(1<<20), "the changed stray is not queued for the stray pass")
	require.NotNil(t, g.x.lookup(id))

	g.h.stray(id) // the stray pass
	require.True(t, g.owes("a", id) && g.owes("d", id), "the stray pass does not push the changed copy")
}

// A stray queued for the stray pass while being handed over is one stray
// in ReplicationStats.Strays, not two.
func TestAStrayIsCountedOnce(t *testing.T) {
	g := newStrayRig(t)
	_, id := g.stray(t)
	g.pt.strays.take(1 << 20)
	require.Equal(t, 1, g.h.r.straysWaiting(), "being handed over")
	g.pt.strays.add(id)
	require.Equal(t, 1, g.h.r.straysWaiting(), "being handed over and queued again")
	g.pt.strays.add("another")
	require.Equal(t, 2, g.h.r.straysWaiting(), "and another queued")
}

// A stray that a peer pushed to this node as to a holder (its view has
// this node among the holders, this node's does not: one of the two is
// behind, this node's if it has not heard of a death yet) is kept for
// strayQuiet, even once its holders under this node's view have all
// acknowledged it: long enough for this node's view to catch up, in which
// case it holds the session and keeps the copy (settleStray stops handing
// over what this node holds), rather than dropping it
// on its older view's acknowledgements (with the pusher owing it nothing
// more, nobody would bring it back). After that, it is dropped.
func TestAStrayPushedAsToAHolderIsKeptAWhile(t *testing.T) {
	g := newStrayRig(t)
	_, id := g.stray(t)
	cur := g.x.lookup(id)
	require.Zero(t, replStore{g.x}.Apply([]model.Record{g.solo.lookup(id).rec}), "the same version, pushed by a peer that counts x a holder")
	require.Same(t, cur, g.x.lookup(id), "a no-op merge changed the copy")

	g.h.acked("a-1", id, cur)
	g.h.acked("d-1", id, cur)
	require.NotNil(t, g.x.lookup(id), "dropped right after a peer pushed it here as to a holder")
	require.Contains(t, g.pt.strays.take(1<<20), id, "kept, but not judged again by the stray pass")

	g.h.stray(id) // the stray pass, within strayQuiet
	require.NotNil(t, g.x.lookup(id), "dropped within strayQuiet of the push")
	g.pt.strays.mu.Lock()
	g.pt.strays.pushedAt[id] = g.pt.strays.pushedAt[id].Add(-strayQuiet) // strayQuiet of real time on
	g.pt.strays.mu.Unlock()
	g.h.stray(id)
	require.Nil(t, g.x.lookup(id), "kept past strayQuiet")
}
