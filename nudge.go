package peersession

import (
	"sync"
	"time"
)

// nudger is the engine's Config.Nudge: when a joining node's state
// transfer finds a peer silent, it has the cluster node push/pull
// membership with that peer (cluster.Node.PushPull), so a peer that
// parked the request because it missed this node's gossip learns that
// this node is up now, not at its next periodic push/pull. It starts at
// most one exchange per peer per every.
type nudger struct {
	pushPull func(peer string) bool // cluster.Node.PushPull
	every    time.Duration          // the least time between two exchanges with one peer
	now      func() time.Time

	mu   sync.Mutex           // guards last
	last map[string]time.Time // when an exchange with each peer last started
}

// nudge starts a push/pull with peer unless one started less than every
// ago. It does not block.
func (n *nudger) nudge(peer string) {
	now := n.now()
	n.mu.Lock()
	if t, ok := n.last[peer]; ok && now.Sub(t) < n.every {
		n.mu.Unlock()
		return
	}
	if n.last == nil {
		n.last = map[string]time.Time{}
	}
	n.last[peer] = now
	n.mu.Unlock()
	if !n.pushPull(peer) {
		n.mu.Lock()
		delete(n.last, peer) // not started: the next nudge may try
		n.mu.Unlock()
	}
}
