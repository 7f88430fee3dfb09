package cluster

// Peer identifies one running process of a cluster member.
type Peer struct {
	// ID is the unique memberlist name of this process start: the
	// configured Name, "-", and 8 random hex digits. A restart is a new ID.
	ID string
	// Name is the configured node name (Config.Name).
	Name string
	// Addr is the replication stream address, host:port.
	Addr string
	// Gossip is the memberlist address, host:port, for other nodes'
	// Config.Seeds.
	Gossip string
}

// Member states reported by Members.
const (
	StateAlive = "alive"
	// StateSuspect is reserved: memberlist v0.7.0 does not expose
	// suspicion to its delegates, so Members does not report it yet.
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// Member is a peer as this node currently sees it.
type Member struct {
	Peer
	// State is one of StateAlive, StateSuspect, StateDead, StateLeft.
	State string
}
