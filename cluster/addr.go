package cluster

// GossipAddr returns the "host:port" other nodes join this one at: the
// advertised gossip address, for their Config.Seeds.
func (n *Node) GossipAddr() string { return n.advertised }

// NumAlive returns how many members memberlist knows alive, this node
// included. Right after Join it already counts the members the join
// learned of, before their PeerUp events are delivered.
func (n *Node) NumAlive() int { return n.ml.NumMembers() }
