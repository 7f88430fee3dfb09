package peersession

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.FieldsFunc(l.b.String(), func(r rune) bool { return r == '\n' })
}

// A store that refuses changes from peers says so in its log, with the
// reason: the first refusal at once, then one line per refusalLogEvery at
// most, counting the refusals since the last.
func TestRefusedPeerChangesAreLoggedWithoutFlooding(t *testing.T) {
	clock := newFakeClock()
	var logs lockedBuffer
	full := newTestStore(t, Config{MaxSessions: 1, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	source := newTestStore(t, Config{Now: clock.Now})
	remote := func() replicate.Record {
		tok, _ := parseValue(create(t, source, map[string]any{"k": "v"}))
		return source.lookup(idOf(tok)).rec
	}

	require.Zero(t, replStore{full}.Apply([]replicate.Record{remote()}))
	require.Empty(t, logs.lines())

	require.Equal(t, 1, replStore{full}.Apply([]replicate.Record{remote()}))
	require.Len(t, logs.lines(), 1)
	require.Contains(t, logs.lines()[0], "level=WARN")
	require.Contains(t, logs.lines()[0], "refused=1")
	require.Contains(t, logs.lines()[0], "MaxSessions")

	// Within refusalLogEvery: counted, not logged.
	require.Equal(t, 2, replStore{full}.Apply([]replicate.Record{remote(), remote()}))
	require.Len(t, logs.lines(), 1)

	clock.Advance(refusalLogEvery)
	require.Equal(t, 1, replStore{full}.Apply([]replicate.Record{remote()}))
	require.Len(t, logs.lines(), 2)
	require.Contains(t, logs.lines()[1], "refused=3")
	require.EqualValues(t, 4, full.Stats().Refused)
}
