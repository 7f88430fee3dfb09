package cluster

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogBridgeLevels(t *testing.T) {
	var buf bytes.Buffer
	l := log.New(newLogBridge(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))), "", 0)
	l.Printf("[DEBUG] memberlist: d")
	l.Printf("[WARN] memberlist: w")
	l.Printf("[ERR] memberlist: e")
	l.Printf("[INFO] memberlist: i")
	l.Printf("no prefix")
	out := buf.String()
	assert.Contains(t, out, `level=DEBUG msg="memberlist: d"`)
	assert.Contains(t, out, `level=WARN msg="memberlist: w"`)
	assert.Contains(t, out, `level=ERROR msg="memberlist: e"`)
	assert.Contains(t, out, `level=INFO msg="memberlist: i"`)
	assert.Contains(t, out, `level=INFO msg="no prefix"`)
	assert.Contains(t, out, "component=memberlist")
}

func TestLogBridgeClosedSocketAtShutdownIsDebug(t *testing.T) {
	var buf bytes.Buffer
	l := log.New(newLogBridge(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))), "", 0)
	l.Printf("[ERR] memberlist: Failed to send gossip to 127.0.0.1:1: write udp 127.0.0.1:2->127.0.0.1:1: use of closed network connection")
	l.Printf("[ERR] memberlist: Failed to send gossip to 127.0.0.1:1: connection refused")
	out := buf.String()
	assert.Contains(t, out, `level=DEBUG msg="memberlist: Failed to send gossip to 127.0.0.1:1: write udp`)
	assert.Contains(t, out, `level=ERROR msg="memberlist: Failed to send gossip to 127.0.0.1:1: connection refused"`)
}

// A Config without a Logger logs warnings and errors to slog.Default's
// handler, and nothing below.
func TestDefaultLoggerPassesWarningsToSlogDefault(t *testing.T) {
	cfg, err := Config{Name: "a", Handler: newRecorder()}.withDefaults()
	require.NoError(t, err)
	h, ok := cfg.Logger.Handler().(minLevel)
	require.True(t, ok, "the default Logger is %T", cfg.Logger.Handler())
	assert.Equal(t, slog.Default().Handler(), h.h)

	var buf bytes.Buffer
	l := slog.New(minLevel{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), slog.LevelWarn}).With("node", "a")
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.WithGroup("g").Error("e", "k", 1)
	assert.NotContains(t, buf.String(), "msg=d")
	assert.NotContains(t, buf.String(), "msg=i")
	assert.Contains(t, buf.String(), "level=WARN msg=w node=a")
	assert.Contains(t, buf.String(), "level=ERROR msg=e node=a g.k=1")
}

// Repeats of a memberlist line share a kind whatever their details: the
// address, the label, the error.
func TestLogBridgeLineKinds(t *testing.T) {
	for line, kind := range map[string]string{
		"memberlist: Decrypt packet failed: cipher: message authentication failed from=127.0.0.1:7946": "Decrypt packet failed",
		`memberlist: discarding packet with unacceptable label "x": from=10.0.0.1:1`:                   "discarding packet with unacceptable label",
		"memberlist: msg type (200) not supported from=10.0.0.1:1":                                     "msg type",
		"memberlist: Too many pending push/pull requests":                                              "Too many pending push/pull requests",
		"memberlist: Failed to send gossip to 127.0.0.1:1: connection refused":                         "Failed to send gossip to",
	} {
		assert.Equal(t, kind, lineKind([]byte(line)), line)
	}
}

// A line repeated within the interval is held back, without holding back
// another kind; the next line of its kind after the interval carries the
// count of the lines it stands for.
func TestLogBridgeHoldsBackRepeats(t *testing.T) {
	var buf bytes.Buffer
	b := newLogBridge(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b.now = func() time.Time { return now }
	l := log.New(b, "", 0)
	for i := range 100 {
		l.Printf("[ERR] memberlist: Decrypt packet failed: bad %d from=127.0.0.1:%d", i, 1000+i)
	}
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: n1)")
	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, "Decrypt packet failed"), out)
	assert.Equal(t, 1, strings.Count(out, "Refuting a suspect message"), out)
	assert.NotContains(t, out, "count=")

	now = now.Add(logEvery)
	l.Printf("[ERR] memberlist: Decrypt packet failed: bad again")
	assert.Contains(t, buf.String(), `msg="memberlist: Decrypt packet failed: bad again" component=memberlist count=100`)
}
