package cluster

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testlog"
)

// Connections that never finish their handshake hold at most
// Limits.Handshakes slots, even from a member's address (this node's own
// here); further ones are closed at once and counted, and the warning
// about them is one line, not one per connection.
func TestPendingHandshakesAreBounded(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	a := newTestNode(t, func(c *Config) {
		c.DialTimeout = time.Minute // the silent connections keep their slots
		c.Limits.HelloTimeout = time.Minute
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for range DefaultHandshakes {
		c, err := net.Dial("tcp", a.Self().Addr)
		require.NoError(t, err)
		defer c.Close()
	}
	require.Eventually(t, func() bool { return a.hsLim.held() == DefaultHandshakes }, waitFor, tick)

	const extra = 3
	for range extra {
		c, err := net.Dial("tcp", a.Self().Addr)
		require.NoError(t, err)
		expectDropped(t, c)
		c.Close()
	}
	require.EqualValues(t, extra, a.Stats().HandshakesFailed)
	require.EqualValues(t, extra, a.Stats().StreamConnsRefused)
	require.Equal(t, 1, logs.Count("too many pending stream handshakes"))
}
