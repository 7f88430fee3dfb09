package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/internal/ratelog"
)

// logBridge is an io.Writer for memberlist's *log.Logger: it turns each
// line's "[DEBUG]", "[INFO]", "[WARN]" or "[ERR]" prefix into a slog level,
// and holds back repeated lines as the library's own warnings are: at most
// one line per logEvery of each kind (see lineKind), carrying in "count"
// how many lines of that kind it stands for. memberlist logs an error for
// every malformed packet and connection, so without this anyone who can
// reach the gossip port could fill the log. Debug lines, which a program
// asks for, are not held back.
type logBridge struct {
	l     *slog.Logger
	kinds ratelog.Kinds
	now   func() time.Time // time.Now; tests move it
	lines atomic.Uint64    // lines memberlist wrote, for tests
}

// logEvery is the least time between two memberlist lines of one kind.
const logEvery = 10 * time.Second

func newLogBridge(l *slog.Logger) *logBridge {
	return &logBridge{l: l, kinds: ratelog.Kinds{Every: logEvery}, now: time.Now}
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

func (b *logBridge) Write(p []byte) (int, error) {
	b.lines.Add(1)
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
	ctx := context.Background()
	if !b.l.Enabled(ctx, level) {
		return len(p), nil
	}
	if level <= slog.LevelDebug {
		b.l.Log(ctx, level, string(line), "component", "memberlist")
		return len(p), nil
	}
	count, ok := b.kinds.Allow(level.String()+" "+lineKind(line), b.now(), 1)
	if !ok {
		return len(p), nil
	}
	if count > 1 {
		b.l.Log(ctx, level, string(line), "component", "memberlist", "count", count)
	} else {
		b.l.Log(ctx, level, string(line), "component", "memberlist")
	}
	return len(p), nil
}

// maxKindLen bounds a line's kind.
const maxKindLen = 48

// lineKind is what repeats of a memberlist line share: its words up to the
// first detail that varies (a colon before an error, a quoted label, a
// number or an address, a parenthesis), after the "memberlist: " prefix;
// "Decrypt packet failed" for "memberlist: Decrypt packet failed: cipher:
// message authentication failed from=1.2.3.4:7946".
func lineKind(line []byte) string {
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	end := 0
	for end < len(line) && end < maxKindLen {
		c := line[end]
		if c == ':' || c == '"' || c == '\'' || c == '(' || c == '[' || c == '=' || c == '%' || (c >= '0' && c <= '9') {
			break
		}
		end++
	}
	return string(bytes.TrimSpace(line[:end]))
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
