package peersession

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// warnRingSize is how many warning and error records the admin page keeps.
const warnRingSize = 20

// warnRing keeps the store's last warnRingSize warning and error log
// records for the admin page. Its zero value is ready.
type warnRing struct {
	mu   sync.Mutex // guards recs and next
	recs []logLine  // up to warnRingSize, oldest overwritten first
	next int        // where the next record goes once recs is full
}

// logLine is one kept record, formatted.
type logLine struct {
	Time    time.Time
	Level   slog.Level
	Message string
	Attrs   string // "key=value key=value", groups dotted
}

// add keeps l, dropping the oldest record when the ring is full.
func (w *warnRing) add(l logLine) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.recs) < warnRingSize {
		w.recs = append(w.recs, l)
		return
	}
	w.recs[w.next] = l
	w.next = (w.next + 1) % warnRingSize
}

// recent returns the kept records, newest first.
func (w *warnRing) recent() []logLine {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]logLine, 0, len(w.recs))
	for i := range w.recs {
		// Newest is just before next (or the last appended).
		j := (w.next - 1 - i + 2*len(w.recs)) % len(w.recs)
		out = append(out, w.recs[j])
	}
	return out
}

// wrap returns a logger that passes every record to l's handler, as
// before, and also keeps the warnings and errors in w, even those l's
// handler drops (a store given slog.DiscardHandler still shows its
// warnings on the admin page).
func (w *warnRing) wrap(l *slog.Logger) *slog.Logger {
	return slog.New(&ringHandler{ring: w, next: l.Handler()})
}

// ringHandler is the slog.Handler of warnRing.wrap.
type ringHandler struct {
	ring   *warnRing
	next   slog.Handler
	attrs  string // formatted attributes added by WithAttrs
	prefix string // the open groups, dotted, each followed by "."
}

var _ slog.Handler = (*ringHandler)(nil)

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.prefix, a)
			return true
		})
		h.ring.add(logLine{Time: r.Time, Level: r.Level, Message: r.Message, Attrs: strings.TrimSpace(b.String())})
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.prefix, a)
	}
	return &ringHandler{ring: h.ring, next: h.next.WithAttrs(as), attrs: b.String(), prefix: h.prefix}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &ringHandler{ring: h.ring, next: h.next.WithGroup(name), attrs: h.attrs, prefix: h.prefix + name + "."}
}

// appendAttr writes " key=value" for a, groups flattened with dots, and
// nothing for an empty attribute.
func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(a.Value.String())
}
