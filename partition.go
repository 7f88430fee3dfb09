package peersession

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/replicate"
	"github.com/peersession/peersession/replicate/placement"
)

// Partitioned mode (ClusterConfig.Copies >= 2): each session is held by
// Copies nodes, picked by rendezvous hashing of its ID over the configured
// Names of the live members (replicate/placement). partition is that
// placement as this node sees it, kept up to date from membership events:
// the engine routes by it (replicate.Placement), reads and writes ask it
// whether this node holds a session, and rebalance.go moves the sessions
// when it changes.

// partition is the placement over the live members, this node included.
type partition struct {
	copies   int
	selfName string
	selfID   string
	view     atomic.Pointer[partView] // replaced, never modified
	changed  chan struct{}            // capacity 1: view changed (rebalance.go)
	strays   strays                   // copies this node does not hold, to hand over and drop

	mu      sync.Mutex        // guards members and the view's replacement
	members map[string]string // live peer ID → Name, this node included
}

// partView is one placement and the peer IDs of each name in it (a node
// restarted under its Name may be up twice until its previous run is
// found dead).
type partView struct {
	pl    *placement.View
	ids   map[string][]string // Name → peer IDs
	names map[string]string   // peer ID → Name
}

var _ replicate.Placement = (*partition)(nil)

func newPartition(copies int, self cluster.Peer) *partition {
	p := &partition{copies: copies, selfName: self.Name, selfID: self.ID,
		changed: make(chan struct{}, 1), members: map[string]string{self.ID: self.Name}}
	p.mu.Lock()
	p.refreshLocked()
	p.mu.Unlock()
	return p
}

// up adds a live peer; down removes one. Both run before the engine hears
// of the peer, so that the engine never routes to a peer the placement
// does not know.
func (p *partition) up(peer cluster.Peer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.members[peer.ID] = peer.Name
	p.refreshLocked()
}

// leave takes this node out of the placement, for a graceful Close: it
// holds nothing from then on, and every session here is handed over.
func (p *partition) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.members, p.selfID)
	p.refreshLocked()
}

func (p *partition) down(peer cluster.Peer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.members, peer.ID)
	p.refreshLocked()
}

// refreshLocked builds the view of the members and signals a rebalance if
// the names changed. p.mu must be held.
func (p *partition) refreshLocked() {
	v := &partView{ids: make(map[string][]string), names: make(map[string]string, len(p.members))}
	names := make([]string, 0, len(p.members))
	for id, name := range p.members {
		v.ids[name] = append(v.ids[name], id)
		v.names[id] = name
		names = append(names, name)
	}
	v.pl = placement.New(p.copies, names)
	old := p.view.Swap(v)
	if old == nil || !slices.Equal(old.pl.Names(), v.pl.Names()) {
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
}

// Holders implements replicate.Placement: the peer IDs of the live nodes
// holding session id, this node's among them if it is one.
func (p *partition) Holders(id string, dst []string) []string {
	return p.view.Load().holders(id, dst)
}

// holders appends to dst the peer IDs of the nodes holding session id
// under v.
func (v *partView) holders(id string, dst []string) []string {
	var buf [8]string
	for _, name := range v.pl.Holders(id, buf[:0]) {
		dst = append(dst, v.ids[name]...)
	}
	return dst
}

// holds reports whether this node holds session id.
func (p *partition) holds(id string) bool {
	return p.view.Load().pl.Holds(p.selfName, id)
}

// isHolder reports whether peer (an ID) holds session id under v.
func (v *partView) isHolder(peer, id string) bool {
	name, ok := v.names[peer]
	return ok && v.pl.Holds(name, id)
}

// strays are the sessions this node has a copy of but does not hold: it
// wrote or fetched them for a request, or held them before a membership
// change. rebalance.go pushes each to its holders and drops it once they
// have acknowledged it. The zero value is ready to use.
type strays struct {
	mu  sync.Mutex // guards ids, wrote and pushedAt
	ids map[string]struct{}
	// pushedAt is, for a stray a peer pushed a change of to this node as
	// to a holder, when: it is not dropped until strayQuiet after (see
	// quiet).
	pushedAt map[string]time.Time
	// wrote is, for a stray a commit here made, that commit's Ticket and
	// the entry it stored: once every holder has acknowledged the change
	// and the entry is unchanged, the stray is dropped without pushing
	// the whole session again (see replication.handOver).
	wrote map[string]strayWrite
}

// strayWrite is a commit's change to a stray (see strays.wrote).
type strayWrite struct {
	t *replicate.Ticket
	e *entry
}

// written records that a commit stored e, a stray, and published its
// change with t.
func (s *strays) written(id string, t *replicate.Ticket, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote == nil {
		s.wrote = make(map[string]strayWrite)
	}
	s.wrote[id] = strayWrite{t: t, e: e}
}

// pushed records that a peer pushed a change of stray id to this node,
// as to a holder, at now.
func (s *strays) pushed(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pushedAt == nil {
		s.pushedAt = make(map[string]time.Time)
	}
	s.pushedAt[id] = now
}

// quiet reports whether stray id may be dropped as of now: no peer
// pushed it to this node as to a holder within strayQuiet. It forgets a
// push older than that.
func (s *strays) quiet(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.pushedAt[id]
	if !ok {
		return true
	}
	if now.Sub(at) < strayQuiet {
		return false
	}
	delete(s.pushedAt, id)
	if len(s.pushedAt) == 0 {
		s.pushedAt = nil // a map never shrinks: drop the peak's buckets
	}
	return true
}

// takeWrite removes and returns the commit recorded for stray id, if any.
func (s *strays) takeWrite(id string) (strayWrite, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.wrote[id]
	if ok {
		delete(s.wrote, id)
	}
	return w, ok
}

func (s *strays) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = make(map[string]struct{})
	}
	s.ids[id] = struct{}{}
}

// take removes and returns up to max IDs.
func (s *strays) take(max int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, min(max, len(s.ids)))
	for id := range s.ids {
		if len(out) == max {
			break
		}
		out = append(out, id)
		delete(s.ids, id)
	}
	return out
}

// len returns how many strays wait.
func (s *strays) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// Holders returns the Names of the live nodes that hold the session named
// by token (a cookie value, as Load takes), its owner first: in
// partitioned mode (ClusterConfig.Copies) the Copies nodes its placement
// picks, whether or not the session exists; in full replication every
// live member, this node first. A single node returns nil. It is for a
// route-aware balancer: sending a session's requests to one of its
// holders (the owner, say, as WildFly's affinity cookie names a route)
// spares the fetch that a read on another node costs in partitioned mode.
func (st *Store) Holders(token string) []string {
	if st.repl == nil {
		return nil
	}
	pt := st.part.Load()
	if pt == nil {
		out := []string{st.repl.cfg.Name}
		for _, m := range st.Members() {
			if !m.Self && m.State == "alive" {
				out = append(out, m.Name)
			}
		}
		return out
	}
	t, _ := parseCookie(token)
	if t == "" {
		return nil
	}
	return pt.view.Load().pl.Holders(idOf(t), nil)
}
