package cluster

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedLog is a log sink safe for the node's goroutines.
type lockedLog struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// Connections that never finish their handshake hold at most
// maxPendingHandshakes slots; further ones are closed at once and counted,
// and the warning about them is one line, not one per connection.
func TestPendingHandshakesAreBounded(t *testing.T) {
	t.Parallel()
	var logs lockedLog
	a := newTestNode(t, func(c *Config) {
		c.DialTimeout = time.Minute // the silent connections keep their slots
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for range maxPendingHandshakes {
		c, err := net.Dial("tcp", a.Self().Addr)
		require.NoError(t, err)
		defer c.Close()
	}
	require.Eventually(t, func() bool { return len(a.hsSem) == maxPendingHandshakes }, waitFor, tick)

	const extra = 3
	for range extra {
		c, err := net.Dial("tcp", a.Self().Addr)
		require.NoError(t, err)
		expectDropped(t, c)
		c.Close()
	}
	require.EqualValues(t, extra, a.Stats().HandshakesFailed)
	require.Equal(t, 1, logs.count("too many pending stream handshakes"))
}
