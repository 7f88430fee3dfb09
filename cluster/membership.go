package cluster

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/memberlist"
)

// maxGone bounds how many dead or left members Members keeps reporting.
const maxGone = 64

// dispatch is the single goroutine that turns queued memberlist events into
// membership changes and PeerUp/PeerDown calls, in order, from the first
// Join on (events before it wait in the queue).
func (n *Node) dispatch() {
	select {
	case <-n.stop:
		return
	case <-n.joined:
	}
	for {
		select {
		case <-n.stop:
			return
		case <-n.del.queue.signal:
		}
		for _, e := range n.del.queue.take() {
			select {
			case <-n.stop:
				return
			default:
			}
			n.apply(e)
		}
	}
}

func (n *Node) apply(e event) {
	if e.name == n.self.ID {
		return
	}
	if e.kind == evLeaving {
		n.memMu.Lock()
		if m, ok := n.members[e.name]; ok && m.State == StateAlive {
			n.leaving[e.name] = true
		}
		n.memMu.Unlock()
		return
	}
	meta, err := decodeMeta(e.meta)
	if err != nil {
		n.log.Warn("cluster: ignoring member with bad metadata", "member", e.name, "err", err)
		return
	}
	p := Peer{ID: e.name, Name: meta.Name, Addr: meta.Addr, Gossip: e.gossip}
	switch e.kind {
	case evJoin:
		if n.setAlive(p) {
			n.log.Debug("cluster: peer up", "peer", p.ID, "addr", p.Addr)
			n.cfg.Handler.PeerUp(p)
		}
	case evUpdate:
		n.memMu.Lock()
		m, ok := n.members[p.ID]
		changed := ok && m.State == StateAlive && m.Addr != p.Addr
		if ok && m.State == StateAlive {
			m.Peer = p
			n.refreshMemberIPsLocked()
		}
		n.memMu.Unlock()
		if changed {
			n.dropOut(p.ID)
		}
	case evLeave:
		n.memMu.Lock()
		left := e.state == memberlist.StateLeft || meta.Leaving || n.leaving[p.ID]
		delete(n.leaving, p.ID)
		state := StateDead
		if left {
			state = StateLeft
		}
		m, ok := n.members[p.ID]
		wasAlive := ok && m.State == StateAlive
		if ok {
			m.State = state
		}
		n.memMu.Unlock()
		if !wasAlive {
			return
		}
		n.dropOut(p.ID)
		n.dropIn(p.ID)
		n.forgetPeerFormats(p.ID)
		n.clock.forget(p.ID)
		n.log.Debug("cluster: peer down", "peer", p.ID, "left", left)
		n.cfg.Handler.PeerDown(p, left)
	}
}

// setAlive records p as alive and reports whether it was not alive before.
// It forgets gone members with the same Name, and the oldest gone members
// beyond maxGone.
func (n *Node) setAlive(p Peer) bool {
	n.memMu.Lock()
	defer n.memMu.Unlock()
	defer n.refreshMemberIPsLocked()
	m, ok := n.members[p.ID]
	if ok && m.State == StateAlive {
		m.Peer = p
		return false
	}
	n.members[p.ID] = &Member{Peer: p, State: StateAlive}
	var gone []string
	for id, m := range n.members {
		if m.State != StateAlive && m.State != StateSuspect && id != n.self.ID {
			if m.Name == p.Name {
				delete(n.members, id)
				continue
			}
			gone = append(gone, id)
		}
	}
	if len(gone) > maxGone {
		slices.Sort(gone) // IDs carry no time; drop arbitrary but deterministic ones
		for _, id := range gone[:len(gone)-maxGone] {
			delete(n.members, id)
		}
	}
	return true
}

// refreshMemberIPsLocked rebuilds the set of members' IPs that the
// connection limits prefer (see Limits): the stream and gossip IPs of every
// member held, this node and gone members included. The caller holds memMu
// for writing.
func (n *Node) refreshMemberIPsLocked() {
	ips := make(map[netip.Addr]struct{}, 2*len(n.members))
	for _, m := range n.members {
		for _, hp := range []string{m.Addr, m.Gossip} {
			if ap, err := netip.ParseAddrPort(hp); err == nil {
				ips[ap.Addr().Unmap()] = struct{}{}
			}
		}
	}
	n.memberIPs.Store(&ips)
}

// isMemberIP reports whether ip is a member's (see Limits).
func (n *Node) isMemberIP(ip netip.Addr) bool {
	ips := n.memberIPs.Load()
	if ips == nil {
		return false
	}
	_, ok := (*ips)[ip]
	return ok
}

// alivePeer returns the live peer with this ID.
func (n *Node) alivePeer(id string) (Peer, bool) {
	n.memMu.RLock()
	defer n.memMu.RUnlock()
	m, ok := n.members[id]
	if !ok || m.State != StateAlive || id == n.self.ID {
		return Peer{}, false
	}
	return m.Peer, true
}

// liveNamed returns a live member with this Name other than id.
func (n *Node) liveNamed(name, id string) (Peer, bool) {
	n.memMu.RLock()
	defer n.memMu.RUnlock()
	for mid, m := range n.members {
		if mid != id && m.Name == name && m.State == StateAlive {
			return m.Peer, true
		}
	}
	return Peer{}, false
}

func sortPeers(ps []Peer) {
	slices.SortFunc(ps, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
}
