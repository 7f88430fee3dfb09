package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peersession/peersession/internal/ratelog"
)

// Unique names. A Name is one node's: two live nodes configured with the
// same one are refused when they meet, at the join. The memberlist names
// (Peer.ID) differ, so memberlist itself sees no conflict.
//
// A node restarted under its Name must not be taken for a second one,
// though the cluster may still count its previous run alive until the
// failure detector notices it is gone. So a node with the same Name is a
// conflict only if it proves it runs: a stream handshake, stopped before
// a stream opens, shows it knows the key and is that very process (a
// memberlist ping would carry gossip along, and let the nodes meet). A
// previous run bound to the same gossip address is not even asked: the
// address is the new run's now.

// nameGuard is memberlist's merge and alive delegate: it refuses a join
// that would make two live nodes of one Name members together, and an
// alive message about another node with this node's Name.
//
// memberlist calls NotifyAlive with its node lock held, and NotifyMerge
// from its join and push/pull handling: neither calls memberlist.
type nameGuard struct {
	n       *Node
	started atomic.Pointer[string] // this node's gossip address, once memberlist.Create returned
	log     ratelog.Limiter        // holds back the warning about refused joins

	mu     sync.Mutex      // guards taken and copies
	taken  *Peer           // a live node found with this node's Name, for Join
	copies *copiesConflict // a member found with another Config.Copies, for Join
}

// copiesConflict is a member whose Config.Copies differs from this node's.
type copiesConflict struct {
	peer   Peer
	copies int
}

var (
	_ memberlist.MergeDelegate = (*nameGuard)(nil)
	_ memberlist.AliveDelegate = (*nameGuard)(nil)
)

func newNameGuard(n *Node) *nameGuard {
	return &nameGuard{n: n, log: ratelog.Limiter{Every: 10 * time.Second}}
}

// setStarted records this node's gossip address, once memberlist.Create
// returned.
func (g *nameGuard) setStarted(ml *memberlist.Memberlist) {
	addr := ml.LocalNode().Address()
	g.started.Store(&addr)
}

// NotifyAlive implements memberlist.AliveDelegate: another node with this
// node's Name is never a peer, whether it is a second node so configured
// or this node's previous run.
func (g *nameGuard) NotifyAlive(p *memberlist.Node) error {
	self := g.n.self
	if p.Name == self.ID {
		return nil
	}
	meta, err := decodeMeta(p.Meta)
	if err != nil {
		return nil // bad metadata: the dispatcher logs and skips it
	}
	if meta.Copies != g.n.cfg.Copies {
		return g.refuseCopies(Peer{ID: p.Name, Name: meta.Name, Addr: meta.Addr, Gossip: p.Address()}, meta.Copies)
	}
	if meta.Name != self.Name {
		return nil
	}
	return fmt.Errorf("cluster: %s has this node's Name %q: a second node with that name, "+
		"or this node's previous run not yet found dead", p.Name, self.Name)
}

// NotifyMerge implements memberlist.MergeDelegate. It sees the members a
// join brings: on the joining node the seed's, on the seed the joining
// node's. It refuses the join when one of them has a Name that a live
// node on this side has (this node included) under another ID, and both
// are alive.
func (g *nameGuard) NotifyMerge(peers []*memberlist.Node) error {
	self := g.n.self
	for _, mp := range peers {
		if mp.Name == self.ID || (mp.State != memberlist.StateAlive && mp.State != memberlist.StateSuspect) {
			continue
		}
		meta, err := decodeMeta(mp.Meta)
		if err != nil {
			continue
		}
		p := Peer{ID: mp.Name, Name: meta.Name, Addr: meta.Addr, Gossip: mp.Address()}
		if meta.Copies != g.n.cfg.Copies {
			g.mu.Lock()
			g.copies = &copiesConflict{peer: p, copies: meta.Copies}
			g.mu.Unlock()
			return g.refuseCopies(p, meta.Copies)
		}
		if p.Name == self.Name {
			if gossip := g.started.Load(); gossip != nil {
				if p.Gossip == *gossip {
					continue // this node's previous run: its address is this node's now
				}
				self.Gossip = *gossip
			}
			if g.answers(p) {
				g.mu.Lock()
				g.taken = &p
				g.mu.Unlock()
				return g.refuse(p, self)
			}
			continue
		}
		held, ok := g.n.liveNamed(p.Name, p.ID)
		if ok && held.Gossip != p.Gossip && g.answers(held) && g.answers(p) {
			return g.refuse(p, held)
		}
	}
	return nil
}

// refuse logs and returns the refusal of a join where p has the Name of
// held, a live node on this side.
func (g *nameGuard) refuse(p, held Peer) error {
	if n, ok := g.log.Allow(time.Now(), 1); ok {
		g.n.log.Warn("cluster: refused a join: two live nodes have the same Name; give each node its own",
			"name", p.Name, "member", held.ID, "gossip", held.Gossip, "other", p.ID, "other_gossip", p.Gossip, "refusals", n)
	}
	return fmt.Errorf("cluster: %s (%s) and %s (%s) are both alive with Name %q", held.ID, held.Gossip, p.ID, p.Gossip, p.Name)
}

// refuseCopies logs and returns the refusal of p, whose Config.Copies is
// copies, not this node's: the members of one cluster must agree on where
// data lives.
func (g *nameGuard) refuseCopies(p Peer, copies int) error {
	if n, ok := g.log.Allow(time.Now(), 1); ok {
		g.n.log.Warn("cluster: refused a member with another Copies; give every node the same",
			"member", p.ID, "gossip", p.Gossip, "peer_copies", copies, "copies", g.n.cfg.Copies, "refusals", n)
	}
	return fmt.Errorf("cluster: %s (%s) has Copies %d, this node %d", p.ID, p.Gossip, copies, g.n.cfg.Copies)
}

// takeCopies returns, and forgets, the member a merge found with another
// Config.Copies.
func (g *nameGuard) takeCopies() (copiesConflict, bool) { return take(&g.mu, &g.copies) }

// answers reports whether the process p.ID answers at its stream address
// p.Addr (see probeHandshake), within DialTimeout.
func (g *nameGuard) answers(p Peer) bool {
	n := g.n
	if n.isClosed() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.DialTimeout)
	defer cancel()
	conn, err := n.cfg.Dial(ctx, "tcp", p.Addr)
	if err == nil {
		deadline, _ := ctx.Deadline()
		conn.SetDeadline(deadline)
		err = probeHandshake(conn, n.streamPSKs()[0], n.prologue, p.ID, n.cfg.Formats)
		conn.Close()
	}
	if err != nil {
		n.log.Debug("cluster: a node with a clashing Name does not answer: taken for a previous run", "member", p.ID, "addr", p.Addr, "err", err)
		return false
	}
	return true
}

// takeTaken returns, and forgets, the live node a merge found holding this
// node's Name.
func (g *nameGuard) takeTaken() (Peer, bool) { return take(&g.mu, &g.taken) }

// take returns, and clears, what *p points to, under mu; false if nil.
func take[T any](mu *sync.Mutex, p **T) (T, bool) {
	mu.Lock()
	defer mu.Unlock()
	v := *p
	*p = nil
	if v == nil {
		var zero T
		return zero, false
	}
	return *v, true
}
