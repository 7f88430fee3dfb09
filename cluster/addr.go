package cluster

import (
	"net"
	"strconv"
)

// GossipAddr returns the "host:port" other nodes join this one at: the
// advertised gossip address, for their Config.Seeds.
func (n *Node) GossipAddr() string {
	ln := n.ml.LocalNode()
	return net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
}

// NumAlive returns how many members memberlist knows alive, this node
// included. Right after Join it already counts the members the join
// learned of, before their PeerUp events are delivered.
func (n *Node) NumAlive() int { return n.ml.NumMembers() }
