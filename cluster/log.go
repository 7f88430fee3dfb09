package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"net"
)

// logBridge is an io.Writer for memberlist's *log.Logger: it turns each
// line's "[DEBUG]", "[INFO]", "[WARN]" or "[ERR]" prefix into a slog level.
type logBridge struct {
	l *slog.Logger
}

var logLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

// closedConn is net.ErrClosed's text, which memberlist logs when it
// writes to a socket its own Shutdown closed.
var closedConn = []byte(net.ErrClosed.Error())

func (b logBridge) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lv := range logLevels {
		if bytes.HasPrefix(line, []byte(lv.prefix)) {
			level = lv.level
			line = bytes.TrimSpace(line[len(lv.prefix):])
			break
		}
	}
	if level > slog.LevelDebug && bytes.Contains(line, closedConn) {
		// memberlist's gossip and probe goroutines can still send while
		// Shutdown closes its sockets: part of a shutdown, not an error.
		level = slog.LevelDebug
	}
	if b.l.Enabled(context.Background(), level) {
		b.l.Log(context.Background(), level, string(line), "component", "memberlist")
	}
	return len(p), nil
}

// DefaultLogger is the Logger a nil Config.Logger means: slog.Default's
// handler, as it is at the call, passing warnings and errors only, so that
// what needs fixing (a seed that refused this node, a peer that cannot be
// reached) reaches a program that configured no logging.
func DefaultLogger() *slog.Logger {
	return slog.New(minLevel{slog.Default().Handler(), slog.LevelWarn})
}

// minLevel is a handler passing h the records at min or above.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler { return minLevel{m.h.WithAttrs(as), m.min} }

func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{m.h.WithGroup(g), m.min} }
