package peersession

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		s := st.NewSession(t.Context())
		require.NoError(t, s.Set("k", "v"))
		_, err := st.Save(t.Context(), s)
		require.NoError(t, err)
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
