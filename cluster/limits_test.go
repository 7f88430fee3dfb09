package cluster

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testlog"
)

// The limits before authentication: on the gossip port (memberlist's TCP)
// and on the stream port's handshakes. Strangers connect from loopback
// aliases (127.0.0.2 and up), which Linux routes to lo; the nodes' own
// connections leave from 127.0.0.1, a member's address. The tests that open
// many connections or send many packets do not run in parallel, so that
// their load does not slow the package's timing-sensitive tests.

// dialFrom connects to addr from the loopback alias ip; the connection is
// closed at cleanup. It skips the test where aliases cannot be bound.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitFor}
	c, err := d.Dial("tcp", addr)
	if err != nil && strings.Contains(err.Error(), "assign requested address") {
		t.Skipf("cannot connect from %s (loopback aliases are Linux's): %v", ip, err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// stranger returns the i-th stranger address, 8 connections to each.
func stranger(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i/8) }

// holdingTimers are fast timers with memberlist's TCPTimeout long, so that
// only the guard can end an incoming gossip connection early.
func holdingTimers(c *memberlist.Config) {
	fastTimers(c)
	c.TCPTimeout = time.Minute
}

// pushPullHeader is what a client without the key can send: the label
// header, memberlist's encrypted-message type (0x0a) and a declared
// length, which memberlist v0.7.0 accepts up to 20 MiB and reads into
// memory before decrypting.
func pushPullHeader(label string, declared uint32) []byte {
	b := []byte{244, byte(len(label))}
	b = append(b, label...)
	b = append(b, 0x0a)
	return binary.BigEndian.AppendUint32(b, declared)
}

// A connection that declares 20 MB and sends as fast as it can is cut off
// at Limits.GossipBytes: the node reads no more than that.
func TestGossipConnOverByteCapIsCut(t *testing.T) {
	const limit = 64 << 10
	a := newTestNode(t, func(c *Config) {
		c.Tune = holdingTimers
		c.Limits.GossipBytes = limit
	})
	conn, err := net.Dial("tcp", a.gossipAddr())
	require.NoError(t, err)
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(waitFor))
	_, err = conn.Write(pushPullHeader("test", 20_000_000))
	require.NoError(t, err)
	filler := make([]byte, 32<<10)
	sent := 0
	for sent < 20_000_000 {
		n, err := conn.Write(filler)
		sent += n
		if err != nil {
			break
		}
	}
	require.Less(t, sent, 20_000_000, "the node read the whole declared length")
	require.Eventually(t, func() bool { return a.Stats().GossipConnsCut == 1 }, waitFor, tick)
	st := a.Stats()
	assert.LessOrEqual(t, st.GossipBytesIn, uint64(limit))
	assert.Zero(t, st.GossipConnsRefused)
}

// A connection that declares 20 MB and then trickles is cut off once it
// falls below Limits.GossipMinRate (a second in), long before memberlist's
// own TCPTimeout (a minute here, 10s by default), having sent what little
// it sent.
func TestSlowGossipSenderIsCut(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, func(c *Config) { c.Tune = holdingTimers })
	conn, err := net.Dial("tcp", a.gossipAddr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(append(pushPullHeader("test", 20_000_000), make([]byte, 100)...))
	require.NoError(t, err)
	expectDropped(t, conn)
	st := a.Stats()
	assert.EqualValues(t, 1, st.GossipConnsCut)
	assert.LessOrEqual(t, st.GossipBytesIn, uint64(200))
}

// The whole exchange ends at Limits.GossipTimeout, however fast the sender.
func TestGossipConnPastTimeoutIsCut(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, func(c *Config) {
		c.Tune = holdingTimers
		c.Limits.GossipMinRate = -1
		c.Limits.GossipTimeout = 200 * time.Millisecond
	})
	conn, err := net.Dial("tcp", a.gossipAddr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(pushPullHeader("test", 20_000_000))
	require.NoError(t, err)
	expectDropped(t, conn)
	assert.EqualValues(t, 1, a.Stats().GossipConnsCut)
}

// More than Limits.GossipConnsPerIP connections from one stranger address
// are refused at once; another address still gets in.
func TestGossipConnsPerStrangerIPAreBounded(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, func(c *Config) {
		c.Tune = holdingTimers
		c.Limits.GossipMinRate = -1
		c.Limits.GossipTimeout = time.Minute
	})
	for range DefaultGossipConnsPerIP {
		dialFrom(t, "127.0.0.2", a.gossipAddr())
	}
	require.Eventually(t, func() bool { return a.gossip.lim.held() == DefaultGossipConnsPerIP }, waitFor, tick)

	expectDropped(t, dialFrom(t, "127.0.0.2", a.gossipAddr()))
	assert.EqualValues(t, 1, a.Stats().GossipConnsRefused)

	dialFrom(t, "127.0.0.3", a.gossipAddr())
	require.Eventually(t, func() bool { return a.gossip.lim.held() == DefaultGossipConnsPerIP+1 }, waitFor, tick)
	assert.EqualValues(t, 1, a.Stats().GossipConnsRefused)
}

// Strangers hold at most three quarters of the gossip connections; a node
// connecting from a member's address still joins and push-pulls.
func TestMemberJoinsWhileStrangersHoldGossipSlots(t *testing.T) {
	hold := func(c *Config) {
		c.Tune = holdingTimers
		c.Limits.GossipMinRate = -1
		c.Limits.GossipTimeout = time.Minute
	}
	a := newTestNode(t, hold)
	join(t, a)
	const strangers = 80
	for i := range strangers {
		dialFrom(t, stranger(i), a.gossipAddr())
	}
	share := DefaultGossipConns - DefaultGossipConns/4
	require.Eventually(t, func() bool { return a.Stats().GossipConnsRefused == strangers-uint64(share) }, waitFor, tick)
	require.Equal(t, share, a.gossip.lim.held())

	b := newTestNode(t, func(c *Config) {
		hold(c)
		seeds(a)(c)
	})
	join(t, b)
	waitPeers(t, a, b)
	assert.EqualValues(t, strangers-share, a.Stats().GossipConnsRefused, "a member's connection was refused")
}

// The gossip byte cap fits peersession's push/pull: measured on a
// three-node cluster with the longest names, a member costs well under
// DefaultGossipBytes / 2,000.
func TestGossipBytesFitPushPull(t *testing.T) {
	t.Parallel()
	var seq int
	ns := cluster(t, 3, func(c *Config) {
		seq++
		c.Name = fmt.Sprintf("%0*d", maxNameLen, seq)
	})
	// After every node sees every other, each one's next push/pull
	// carries all three.
	var after [3]uint64
	for i, n := range ns {
		after[i] = n.Stats().GossipBytesIn
	}
	require.Eventually(t, func() bool {
		for i, n := range ns {
			if n.Stats().GossipBytesIn == after[i] {
				return false
			}
		}
		return true
	}, waitFor, tick)
	var largest int64
	for _, n := range ns {
		largest = max(largest, n.gossip.largest.Load())
	}
	perMember := largest / 3
	t.Logf("largest push/pull with 3 members of %d-byte names: %d bytes, %d a member", maxNameLen, largest, perMember)
	assert.Less(t, perMember*2000, int64(DefaultGossipBytes))
}

// A silent connection to the stream port loses its handshake slot at
// Limits.HelloTimeout, though DialTimeout would allow it a minute.
func TestSilentStreamConnIsDroppedAtHelloTimeout(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, func(c *Config) { c.DialTimeout = time.Minute })
	conn, err := net.Dial("tcp", a.Self().Addr)
	require.NoError(t, err)
	defer conn.Close()
	expectDropped(t, conn)
	st := a.Stats()
	assert.EqualValues(t, 1, st.HandshakeTimeouts)
	assert.EqualValues(t, 1, st.HandshakesFailed)
	assert.Zero(t, a.hsLim.held())
}

// Silent connections from strangers hold at most three quarters of the
// handshake slots and Limits.HandshakesPerIP from one address; a peer
// connects, and reconnects, meanwhile.
func TestPeerConnectsWhileStrangersHoldHandshakeSlots(t *testing.T) {
	hold := func(c *Config) {
		relaxed(c)
		c.DialTimeout = time.Minute
		c.Limits.HelloTimeout = time.Minute
	}
	a, b := pair(t, hold)
	const strangers = 80
	for i := range strangers {
		dialFrom(t, stranger(i), a.Self().Addr)
	}
	share := DefaultHandshakes - DefaultHandshakes/4
	require.Eventually(t, func() bool { return a.Stats().StreamConnsRefused == strangers-uint64(share) }, waitFor, tick)
	require.Equal(t, share, a.hsLim.held())
	expectDropped(t, dialFrom(t, stranger(0), a.Self().Addr)) // over the per-IP limit

	sendRetry(t, b.Node, a.Self().ID, []byte("one"))
	waitFrames(t, a, b, 1)
	b.dropOut(a.Self().ID)
	sendRetry(t, b.Node, a.Self().ID, []byte("two"))
	waitFrames(t, a, b, 2)

	st := a.Stats()
	assert.EqualValues(t, 2, st.HandshakesOK)
	assert.EqualValues(t, strangers-share+1, st.StreamConnsRefused)
	assert.Zero(t, st.HandshakeTimeouts)
}

// 5,000 malformed UDP packets make memberlist log 5,000 errors; the log
// gets one line (two if the run straddles the 10s interval).
func TestMalformedPacketsAreLoggedOnce(t *testing.T) {
	var logs testlog.Buffer
	a := newTestNode(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	conn, err := net.Dial("udp", a.gossipAddr())
	require.NoError(t, err)
	defer conn.Close()
	packet := make([]byte, 64)
	for i := range packet {
		packet[i] = 0xff
	}
	const packets, batch = 5000, 100
	base := a.mlLog.lines.Load()
	for sent := 0; sent < packets; {
		for range batch {
			_, err := conn.Write(packet)
			require.NoError(t, err)
			sent++
		}
		// Keep the node's socket buffer from overflowing: wait until it
		// has caught up to within a batch.
		require.Eventually(t, func() bool { return a.mlLog.lines.Load()-base >= uint64(sent-batch) }, waitFor, time.Millisecond)
	}
	require.Eventually(t, func() bool { return a.mlLog.lines.Load()-base >= packets-batch }, waitFor, time.Millisecond)
	lines := 0
	for _, l := range logs.Lines() {
		if strings.Contains(l, "component=memberlist") {
			lines++
		}
	}
	assert.Positive(t, lines)
	assert.LessOrEqual(t, lines, 2, "%s", logs.String())
}

func TestNegativeLimitIsAConfigError(t *testing.T) {
	_, err := Config{Name: "a", Handler: newRecorder(), Limits: Limits{GossipBytes: -1}}.withDefaults()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Limits", ce.Field)
	assert.Contains(t, err.Error(), "Config.Limits.GossipBytes must not be negative")
}
