package cluster

import (
	"io"
	"sync/atomic"
)

// Stats are cumulative counters since New.
type Stats struct {
	HandshakesOK     uint64 // stream handshakes completed, both directions
	HandshakesFailed uint64 // stream handshakes failed or refused, both directions
	FramesIn         uint64 // frames delivered to Handler.Frame
	FramesOut        uint64 // frames written by Send
	BytesIn          uint64 // frame bytes delivered (payload, before framing)
	BytesOut         uint64 // frame bytes sent (payload, before framing)
	// StreamWrites and StreamReads count the system calls that wrote and
	// read the replication streams (reads include those of incoming
	// handshakes): with FramesOut and FramesIn, what a frame costs in
	// calls into the kernel.
	StreamWrites, StreamReads uint64
	Reconnects                uint64 // outgoing connections re-established after one was lost
	StreamErrors              uint64 // authenticated incoming streams dropped for a protocol violation

	// The limits on what is held before authentication (Limits):

	// StreamConnsRefused counts incoming stream connections closed at once
	// for a pending-handshake limit (also counted in HandshakesFailed).
	StreamConnsRefused uint64
	// HandshakeTimeouts counts incoming stream connections dropped for
	// not sending the first handshake message within Limits.HelloTimeout
	// (also counted in HandshakesFailed).
	HandshakeTimeouts uint64
	// GossipConnsRefused counts incoming gossip TCP connections closed at
	// once for a connection limit.
	GossipConnsRefused uint64
	// GossipConnsCut counts incoming gossip TCP connections cut off for
	// sending more than Limits.GossipBytes, taking longer than
	// Limits.GossipTimeout or sending slower than Limits.GossipMinRate.
	GossipConnsCut uint64
	// GossipBytesIn counts the bytes memberlist read from incoming gossip
	// TCP connections.
	GossipBytesIn uint64
	// ClockPayloadsIgnored counts ping acks whose payload was not a clock
	// reading (see Node.ClockOffsets): from a newer release, or garbage.
	// Acks without a payload (older releases) are not counted.
	ClockPayloadsIgnored uint64
}

// counters backs Stats with atomics.
type counters struct {
	handshakesOK, handshakesFailed atomic.Uint64
	framesIn, framesOut            atomic.Uint64
	bytesIn, bytesOut              atomic.Uint64
	streamWrites, streamReads      atomic.Uint64
	reconnects, streamErrors       atomic.Uint64

	streamConnsRefused, handshakeTimeouts atomic.Uint64
	gossipConnsRefused, gossipConnsCut    atomic.Uint64
	gossipBytesIn                         atomic.Uint64
	clockPayloadsIgnored                  atomic.Uint64
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	c := &n.stats
	return Stats{
		HandshakesOK:     c.handshakesOK.Load(),
		HandshakesFailed: c.handshakesFailed.Load(),
		FramesIn:         c.framesIn.Load(),
		FramesOut:        c.framesOut.Load(),
		BytesIn:          c.bytesIn.Load(),
		BytesOut:         c.bytesOut.Load(),
		StreamWrites:     c.streamWrites.Load(),
		StreamReads:      c.streamReads.Load(),
		Reconnects:       c.reconnects.Load(),
		StreamErrors:     c.streamErrors.Load(),

		StreamConnsRefused: c.streamConnsRefused.Load(),
		HandshakeTimeouts:  c.handshakeTimeouts.Load(),
		GossipConnsRefused: c.gossipConnsRefused.Load(),
		GossipConnsCut:     c.gossipConnsCut.Load(),
		GossipBytesIn:      c.gossipBytesIn.Load(),

		ClockPayloadsIgnored: c.clockPayloadsIgnored.Load(),
	}
}

// countReads counts the Read calls on r (each one system call on a
// connection) in n.
type countReads struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countReads) Read(b []byte) (int, error) {
	c.n.Add(1)
	return c.r.Read(b)
}
