package cluster

// Handler receives membership events and frames from a Node.
//
// Calls are made from the Node's own goroutines, never from inside a
// memberlist callback, never before the first Join (what arrives earlier
// waits for it) and never after Close has returned. PeerUp and
// PeerDown are delivered in order from a single goroutine. Frame calls for
// one peer are serialized and in stream order; calls for different peers
// may overlap, and Frame may overlap PeerUp/PeerDown. A slow Handler slows
// down only what it is called from: a slow Frame stalls that peer's
// stream (TCP back-pressure), a slow PeerUp delays later membership events.
//
// A Frame from a peer may arrive just before this node's PeerUp for it (the
// sender learnt of the membership first) and, briefly, after its PeerDown.
// Handler methods may call any Node method except Close, which waits for
// them to return.
type Handler interface {
	// PeerUp reports a peer that became alive. Send to it works from now on.
	PeerUp(p Peer)
	// PeerDown reports a peer that is gone: left is true for a graceful
	// Leave, false when it was declared dead (failed or unreachable).
	PeerDown(p Peer, left bool)
	// Frame delivers one frame from the peer with this ID. The frame is
	// lent: it is valid only until Frame returns, after which the Node
	// reuses its memory for the next frame, so a Handler copies what it
	// keeps.
	Frame(peerID string, frame []byte)
}

// StreamWatcher is what a Handler may also implement to hear that a live
// peer's stream broke, before the failure detector's verdict: a killed
// process's kernel resets its connections at once, while memberlist takes
// seconds to declare it dead.
type StreamWatcher interface {
	// StreamLost reports that a stream with a live peer, in either
	// direction, ended by the peer's doing or the network's: the peer
	// closed or reset it, or it broke. Streams this node closes itself
	// (the peer went down, a newer stream replaced it, its key was
	// removed, Close) are not reported. It is no verdict: a live peer may
	// also close a stream (say, it removed the key the stream was made
	// with), and the next Send redials. PeerDown stays the authority.
	//
	// StreamLost is called from the stream's own goroutine, never before
	// the first Join nor after Close returns; it may overlap any other
	// call, and must return quickly.
	StreamLost(peerID string)
}

// streamLost tells the Handler, if it is a StreamWatcher, that a stream
// with the live peer id ended by the peer's doing or the network's.
func (n *Node) streamLost(id string) {
	w, ok := n.cfg.Handler.(StreamWatcher)
	if !ok || n.isClosed() {
		return
	}
	select {
	case <-n.joined:
	default:
		return // no Handler calls before the first Join
	}
	if _, alive := n.alivePeer(id); alive {
		w.StreamLost(id)
	}
}
