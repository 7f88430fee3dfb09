package peersession

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
)

func TestLoadOrCreateUsesTheGivenToken(t *testing.T) {
	st := newTestStore(t, Config{})
	tok := newToken()
	s, err := st.LoadOrCreate(t.Context(), tok)
	require.NoError(t, err)
	assert.True(t, s.IsNew())
	require.NoError(t, s.Set("a", 1))
	_, err = st.Save(t.Context(), s)
	require.NoError(t, err)
	assert.Equal(t, tok, s.Token())

	again, err := st.LoadOrCreate(t.Context(), tok)
	require.NoError(t, err)
	assert.False(t, again.IsNew())
	assert.True(t, again.Has("a"))

	require.NoError(t, st.Delete(t.Context(), tok))
	dead, err := st.LoadOrCreate(t.Context(), tok)
	require.NoError(t, err)
	require.NoError(t, dead.Set("a", 2))
	_, err = st.Save(t.Context(), dead)
	assert.ErrorIs(t, err, ErrSessionEnded, "a destroyed token is never reused")

	_, err = st.LoadOrCreate(t.Context(), "short")
	assert.ErrorIs(t, err, ErrInvalidToken)
}

func TestAllIteratesReadOnlySnapshots(t *testing.T) {
	st := newTestStore(t, Config{})
	var ids []string
	for range 3 {
		s := sessionWith(t, st, "k", "v")
		save(t, st, s)
		ids = append(ids, s.ID())
	}
	var seen []string
	for s := range st.All() {
		seen = append(seen, s.ID())
		assert.True(t, s.Has("k"))
		assert.Empty(t, s.Token())
		require.NoError(t, s.Set("k", "changed"))
		_, err := st.Save(t.Context(), s)
		assert.ErrorIs(t, err, ErrReadOnly)
	}
	assert.ElementsMatch(t, ids, seen)
}

// The anti-entropy digest hashes every session through Range; a write to
// a session of the shard being walked must not wait for the walk.
func TestRangeLetsTheShardsWritersIn(t *testing.T) {
	st := newTestStore(t, Config{})
	tok := create(t, st, map[string]any{"n": "before"})

	walked := 0
	replStore{st}.Range(func(model.Record) bool {
		walked++
		saved := make(chan error, 1)
		go func() {
			s, err := st.Load(t.Context(), tok)
			if err == nil {
				_ = s.Set("n", "during the walk")
				_, err = st.Save(t.Context(), s)
			}
			saved <- err
		}()
		select {
		case err := <-saved:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "a Save of the session being walked waited for Range: the walk holds its shard's lock while fn runs")
		}
		return true
	})
	require.Equal(t, 1, walked)
	require.Equal(t, "during the walk", value(st, tok, "n"))
}
