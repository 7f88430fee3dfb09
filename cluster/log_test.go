package cluster

import (
	"bytes"
	"log"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogBridgeLevels(t *testing.T) {
	var buf bytes.Buffer
	l := log.New(logBridge{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}, "", 0)
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
	l := log.New(logBridge{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}, "", 0)
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
