package peersession

import (
	"sort"
)

// Member is a cluster member as this node sees it.
type Member struct {
	// Name is the member's configured name (ClusterConfig.Name).
	Name string `json:"name"`
	// ID is unique to one start of the member's process.
	ID string `json:"id"`
	// Addr is its replication stream address.
	Addr string `json:"addr"`
	// Gossip is its gossip address, what ClusterConfig.Join takes.
	Gossip string `json:"gossip"`
	// State is "alive", "suspect", "dead" or "left".
	State string `json:"state"`
	// Self marks this node.
	Self bool `json:"self,omitempty"`
}

// Members returns the cluster members this node knows, itself included,
// sorted by name; a single node returns nil.
func (st *Store) Members() []Member {
	if st.repl == nil {
		return nil
	}
	self := st.repl.node.Self().ID
	var out []Member
	for _, m := range st.repl.node.Members() {
		mm := Member{Name: m.Name, ID: m.ID, Addr: m.Addr, Gossip: m.Gossip, State: m.State, Self: m.ID == self}
		if mm.Self {
			mm.Gossip = st.repl.node.GossipAddr()
		}
		out = append(out, mm)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}
