package cluster

import (
	"bytes"
	"log"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
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
