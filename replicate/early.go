package replicate

import (
	"bytes"
	"sync"
)

// The network may deliver a peer's first frames before it reports the peer
// up (the peer learned of the membership first). Frames that need an
// answer — a TransferRequest, a Fetch, a Batch to acknowledge — would then be
// lost, and a joining node would wait for its state transfer forever. They
// are parked here, bounded, and handled once the peer is up.
const (
	maxEarlyFrames = 32 // per peer
	maxEarlyPeers  = 64
)

// earlyFrames holds frames from peers not yet up.
type earlyFrames struct {
	mu sync.Mutex // guards m
	m  map[string][][]byte
}

// park keeps a copy of frame from peer for later (the network lends
// frames); it reports false when full.
func (q *earlyFrames) park(peer string, frame []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = make(map[string][][]byte)
	}
	fs, ok := q.m[peer]
	if (!ok && len(q.m) >= maxEarlyPeers) || len(fs) >= maxEarlyFrames {
		return false
	}
	q.m[peer] = append(fs, bytes.Clone(frame))
	return true
}

// take removes and returns the frames parked for peer.
func (q *earlyFrames) take(peer string) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	fs := q.m[peer]
	delete(q.m, peer)
	return fs
}
