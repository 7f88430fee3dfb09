package cluster

import (
	"time"

	"github.com/peersession/peersession/internal/defaults"
)

// Defaults for zero Limits fields.
const (
	DefaultGossipConns      = 64
	DefaultGossipConnsPerIP = 8
	// DefaultGossipBytes is generous for peersession's own push/pull,
	// which carries the member list and nothing else: under 400 bytes a
	// member at the longest names (TestGossipBytesFitPushPull measures
	// it), so 1 MiB fits over 2,000 members.
	DefaultGossipBytes     = 1 << 20
	DefaultGossipTimeout   = 5 * time.Second
	DefaultGossipMinRate   = 64 << 10
	DefaultHandshakes      = 64
	DefaultHandshakesPerIP = 8
	DefaultHelloTimeout    = 500 * time.Millisecond
	gossipRateGrace        = time.Second // the first second of a gossip connection needs no rate
	memberShareDenominator = 4           // a quarter of each connection limit is kept for members
)

// Limits bound what a client that does not hold the cluster key can make
// a node hold: connections to the gossip port (memberlist's TCP, which
// reads a push/pull of up to 20 MiB before it decrypts anything), and
// replication stream connections that have not finished their handshake.
// Zero fields take the defaults.
//
// Connections are told apart by source IP. An IP that is a member's (the
// advertised address of this node, of a live member, or of a gone member
// still remembered: a restarted node is known by its address) counts as a
// member's; any other is a stranger's. A quarter of each connection limit
// is kept for members: strangers hold at most the other three quarters
// between them, and at most the per-IP limit from one IP; members are
// bounded by the whole limit only. A connection over a limit is closed at
// once and counted (Stats). A member whose outgoing connections leave from
// another address than the one it advertises (a host with several
// interfaces) counts as a stranger.
type Limits struct {
	// GossipConns bounds the incoming gossip TCP connections served at
	// once; zero means 64.
	GossipConns int
	// GossipConnsPerIP bounds those from one stranger IP; zero means 8.
	GossipConnsPerIP int
	// GossipBytes caps what one incoming gossip connection may send; the
	// connection is cut off past it. Zero means 1 MiB (see
	// DefaultGossipBytes); a cluster of thousands of members raises it.
	GossipBytes int
	// GossipTimeout bounds one incoming gossip connection, whole exchange;
	// zero means 5s. memberlist's own TCPTimeout still applies if shorter.
	GossipTimeout time.Duration
	// GossipMinRate, in bytes a second: once an incoming gossip connection
	// is a second old, it is cut off when it has sent less than that on
	// average since it was accepted (a slow sender holding a slot). Zero
	// means 64 KiB/s; negative means no minimum.
	GossipMinRate int
	// Handshakes bounds the incoming stream connections still in their
	// handshake; zero means 64.
	Handshakes int
	// HandshakesPerIP bounds those from one stranger IP; zero means 8.
	HandshakesPerIP int
	// HelloTimeout is how long an incoming stream connection may take to
	// send the first handshake message (which a node sends as soon as it
	// has connected); zero means 500ms. Config.DialTimeout bounds the
	// whole handshake.
	HelloTimeout time.Duration
}

// withDefaults validates l and returns a copy with defaults filled in.
func (l Limits) withDefaults() (Limits, error) {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"GossipConns", int64(l.GossipConns)}, {"GossipConnsPerIP", int64(l.GossipConnsPerIP)},
		{"GossipBytes", int64(l.GossipBytes)}, {"GossipTimeout", int64(l.GossipTimeout)},
		{"Handshakes", int64(l.Handshakes)}, {"HandshakesPerIP", int64(l.HandshakesPerIP)},
		{"HelloTimeout", int64(l.HelloTimeout)},
	} {
		if f.v < 0 {
			return l, configErr("Limits", "{Limits}."+f.name+" must not be negative")
		}
	}
	defaults.Set(&l.GossipConns, DefaultGossipConns)
	defaults.Set(&l.GossipConnsPerIP, DefaultGossipConnsPerIP)
	defaults.Set(&l.GossipBytes, DefaultGossipBytes)
	defaults.Set(&l.GossipTimeout, DefaultGossipTimeout)
	defaults.Set(&l.GossipMinRate, DefaultGossipMinRate)
	defaults.Set(&l.Handshakes, DefaultHandshakes)
	defaults.Set(&l.HandshakesPerIP, DefaultHandshakesPerIP)
	defaults.Set(&l.HelloTimeout, DefaultHelloTimeout)
	return l, nil
}
