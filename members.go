package peersession

import (
	"sort"
	"time"
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

// ReplicationStats are a node's replication figures.
type ReplicationStats struct {
	// Peers holds each live peer's figures, by configured name.
	Peers map[string]PeerStats `json:"peers"`
	// Applied and Refused count remote changes this node's store accepted
	// and refused; Rejected counts malformed or hostile frames dropped;
	// Skewed counts changes refused for versions too far in the future
	// (a peer's clock ahead by more than a minute).
	Applied, Refused, Rejected, Skewed uint64
	// Repairs counts records anti-entropy sent to repair a peer.
	Repairs uint64
	// Transfers counts join-time full state transfers this node served
	// (its whole state, to a joining node that picked it as its source);
	// DeltaTransfers counts the delta transfers it served (its sessions
	// that differ from a joining node's digest, once that node had the
	// whole state from another member).
	Transfers, DeltaTransfers uint64
	// Dropped counts changes dropped for a peer (queue full, or queued
	// when it died); anti-entropy repairs them.
	Dropped uint64
	// TransferDuration is how long this node's join-time state transfer took;
	// zero until it ended.
	TransferDuration time.Duration
}

// PeerStats are the replication figures for one peer.
type PeerStats struct {
	Queued  int           // changes waiting to be sent now
	Sent    uint64        // changes sent (a session too large for one wire record counts once per part, here and below)
	Batches uint64        // frames sent
	Acked   uint64        // changes the peer acknowledged as applied
	Refused uint64        // changes the peer reported it refused (its store full, the session expired there, its clock behind)
	Failed  uint64        // sends that failed (each retried)
	Dropped uint64        // changes dropped for this peer
	Retries uint64        // batches sent again after an ack timeout
	LastAck time.Time     // when the last acknowledgement arrived
	AckLag  time.Duration // send-to-ack time of the last acknowledged batch
}

func (r *replication) stats() ReplicationStats {
	es := r.eng.Stats()
	names := map[string]string{}
	for _, p := range r.node.Peers() {
		names[p.ID] = p.Name
	}
	out := ReplicationStats{
		Peers:   make(map[string]PeerStats, len(es.Peers)),
		Applied: es.Applied, Refused: es.Refused, Rejected: es.Rejected, Skewed: es.Skewed,
		Repairs: es.Repairs, Transfers: es.Transfers, DeltaTransfers: es.DeltaTransfers, Dropped: es.Dropped,
		TransferDuration: time.Duration(r.transferDur.Load()),
	}
	for id, p := range es.Peers {
		name := names[id]
		if name == "" {
			name = id
		}
		out.Peers[name] = PeerStats(p)
	}
	return out
}
