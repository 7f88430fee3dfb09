package cluster

// PushPull starts, in the background, a memberlist push/pull with the live
// peer id: the two nodes exchange their whole membership over TCP, as they
// do every PushPullInterval (30 s by default) and as a join does, so that
// a peer that missed this node's gossip (UDP lost or late on a busy
// machine) learns that this node is alive now rather than at its next
// periodic push/pull. The exchange is memberlist's Join with the peer's
// address, which is safe with a node memberlist already knows: it merges
// state like the periodic exchange, and the join checks (keys, label,
// Name, Copies) apply as to any join.
//
// It reports whether the exchange was started: false if id is not a live
// peer or the node is closing. Its outcome is only logged (at Debug): it is
// a hint, and memberlist's periodic push/pull remains the fallback. Close
// waits for it; it is bounded by memberlist's TCPTimeout.
func (n *Node) PushPull(id string) bool {
	p, ok := n.alivePeer(id)
	if !ok || p.Gossip == "" {
		return false
	}
	return n.goroutine(func() {
		if _, err := n.ml.Join([]string{p.Gossip}); err != nil {
			n.log.Debug("cluster: push/pull with a peer failed", "peer", id, "gossip", p.Gossip, "err", err)
		}
	})
}
