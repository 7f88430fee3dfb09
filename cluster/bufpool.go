package cluster

import "sync"

// Frame buffers: a connection keeps a write buffer of at most keepBuf
// bytes, enough for the frames of a trickle of changes (an Ack, a small
// Batch). A larger frame (a full Batch, a state-transfer chunk) is sealed
// into, or reassembled in, a buffer of framePool, given back once written
// or handled: a run of large frames reuses a few buffers, shared by all
// peers, and the garbage collector empties the pool when the runs stop, so
// that an idle peer pins no MiB-sized buffer (issue 23).
const keepBuf = 64 << 10

// framePool holds *[]byte buffers of at most retainBuf bytes.
var framePool sync.Pool

// takeBuf returns an empty buffer from framePool, or a new one.
func takeBuf() *[]byte {
	if b, ok := framePool.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// giveBuf returns b to framePool, unless it grew over retainBuf.
func giveBuf(b *[]byte) {
	if cap(*b) > retainBuf {
		return
	}
	*b = (*b)[:0]
	framePool.Put(b)
}
