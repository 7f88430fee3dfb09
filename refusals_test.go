package peersession

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testlog"
	"github.com/peersession/peersession/replicate/model"
)

// A store that refuses changes from peers says so in its log, with the
// reason: the first refusal at once, then one line per refusalLogEvery at
// most, counting the refusals since the last.
func TestRefusedPeerChangesAreLoggedWithoutFlooding(t *testing.T) {
	clock := newFakeClock()
	var logs testlog.Buffer
	full := newTestStore(t, Config{MaxSessions: 1, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	source := newTestStore(t, Config{Now: clock.Now})
	remote := func() model.Record {
		tok, _ := parseCookie(create(t, source, map[string]any{"k": "v"}))
		return source.lookup(idOf(tok)).rec
	}

	require.Zero(t, replStore{full}.Apply([]model.Record{remote()}))
	require.Empty(t, logs.Lines())

	require.Equal(t, 1, replStore{full}.Apply([]model.Record{remote()}))
	require.Len(t, logs.Lines(), 1)
	require.Contains(t, logs.Lines()[0], "level=WARN")
	require.Contains(t, logs.Lines()[0], "refused=1")
	require.Contains(t, logs.Lines()[0], "MaxSessions")

	// Within refusalLogEvery: counted, not logged.
	require.Equal(t, 2, replStore{full}.Apply([]model.Record{remote(), remote()}))
	require.Len(t, logs.Lines(), 1)

	clock.Advance(refusalLogEvery)
	require.Equal(t, 1, replStore{full}.Apply([]model.Record{remote()}))
	require.Len(t, logs.Lines(), 2)
	require.Contains(t, logs.Lines()[1], "refused=3")
	require.EqualValues(t, 4, full.Stats().Refused)
}
