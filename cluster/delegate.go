package cluster

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
)

// delegate adapts memberlist's callbacks to the Node. Callbacks copy what
// they keep, never block and never call back into memberlist: membership
// events go onto an unbounded queue that the Node's dispatcher drains.
type delegate struct {
	meta  atomic.Pointer[[]byte] // current encoded nodeMeta for NodeMeta
	queue *eventQueue
}

var (
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.Delegate      = (*delegate)(nil)
)

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	p := d.meta.Load()
	if p == nil || len(*p) > limit {
		return nil // New validated the size, so this does not happen
	}
	return append([]byte(nil), (*p)...)
}

// NotifyMsg implements memberlist.Delegate; cluster sends no user messages.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; cluster has none.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; cluster has no extra state.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.queue.push(copyEvent(evJoin, n)) }

// NotifyLeave implements memberlist.EventDelegate.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.queue.push(copyEvent(evLeave, n)) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.queue.push(copyEvent(evUpdate, n)) }

type eventKind int

const (
	evJoin eventKind = iota
	evLeave
	evUpdate
	evLeaving // not from memberlist: a peer's stream said it is leaving
)

// event is a copied memberlist notification.
type event struct {
	kind   eventKind
	name   string // memberlist name = Peer.ID
	meta   []byte
	state  memberlist.NodeStateType
	gossip string // host:port
}

func copyEvent(k eventKind, n *memberlist.Node) event {
	return event{kind: k, name: n.Name, meta: append([]byte(nil), n.Meta...), state: n.State, gossip: n.Address()}
}

// eventQueue is an unbounded FIFO with a wake-up channel; push never blocks.
type eventQueue struct {
	mu     sync.Mutex // guards items
	items  []event
	signal chan struct{} // capacity 1: "items may be non-empty"
}

func newEventQueue() *eventQueue { return &eventQueue{signal: make(chan struct{}, 1)} }

func (q *eventQueue) push(e event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take removes and returns everything queued.
func (q *eventQueue) take() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
