package peersession

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/wire"
)

// requireIDOf checks the Session's cached ID against its token and the
// store: ID is idOf(Token) and names the stored session.
func requireIDOf(t *testing.T, st *Store, s *Session) {
	t.Helper()
	tok := s.Token()
	if tok == "" {
		require.Empty(t, s.ID())
		return
	}
	require.Equal(t, idOf(tok), s.ID())
	require.NotNil(t, st.lookup(s.ID()), "the ID names a live session")
}

// The Session caches its ID instead of hashing its token again at each
// commit: every change of token must change the ID with it.
func TestSessionIDFollowsItsToken(t *testing.T) {
	st := newTestStore(t, Config{})
	ctx := t.Context()

	s := st.NewSession(ctx)
	require.Empty(t, s.ID())
	require.NoError(t, s.Set("a", 1))
	v, err := st.Save(ctx, s)
	require.NoError(t, err)
	requireIDOf(t, st, s)

	s, err = st.Load(ctx, v)
	require.NoError(t, err)
	requireIDOf(t, st, s)
	require.NoError(t, s.Set("a", 2))
	_, err = st.Save(ctx, s)
	require.NoError(t, err)
	requireIDOf(t, st, s)

	old := s.ID()
	s.RenewID()
	_, err = st.Save(ctx, s)
	require.NoError(t, err)
	requireIDOf(t, st, s)
	require.NotEqual(t, old, s.ID())
	require.Nil(t, st.lookup(old), "renewal ends the old ID")
	require.NoError(t, s.Set("a", 3)) // an update after the renewal goes to the new ID
	_, err = st.Save(ctx, s)
	require.NoError(t, err)
	var n int
	found, err := s.Get("a", &n)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 3, n)
	requireIDOf(t, st, s)

	renewed := s.ID()
	s.Destroy()
	require.Empty(t, s.ID())
	require.NoError(t, s.Set("b", 1)) // a fresh session
	_, err = st.Save(ctx, s)
	require.NoError(t, err)
	requireIDOf(t, st, s)
	require.NotEqual(t, renewed, s.ID())
	require.Nil(t, st.lookup(renewed), "Destroy ends the old ID")

	s.Destroy()
	_, err = st.Save(ctx, s)
	require.NoError(t, err)
	require.Empty(t, s.ID())
	require.Empty(t, s.Token())

	tok := newToken()
	s, err = st.LoadOrCreate(ctx, tok)
	require.NoError(t, err)
	require.Empty(t, s.ID(), "not saved yet")
	require.NoError(t, s.Set("c", 1))
	_, err = st.Save(ctx, s)
	require.NoError(t, err)
	require.Equal(t, tok, s.Token())
	requireIDOf(t, st, s)
}

// An update of a session ended meanwhile clears the ID with the token.
func TestSessionIDClearedWhenEndedMeanwhile(t *testing.T) {
	st := newTestStore(t, Config{})
	ctx := t.Context()
	s := st.NewSession(ctx)
	require.NoError(t, s.Set("a", 1))
	v, err := st.Save(ctx, s)
	require.NoError(t, err)
	s, err = st.Load(ctx, v)
	require.NoError(t, err)
	require.NoError(t, st.Delete(ctx, v))
	require.NoError(t, s.Set("a", 2))
	_, err = st.Save(ctx, s)
	require.ErrorIs(t, err, ErrSessionEnded)
	require.Empty(t, s.Token())
	require.Empty(t, s.ID())
}

// A request's changes are read back before the commit, in any order of
// Set and Delete, and stored as they read.
func TestPendingChangesReadBackAndCommit(t *testing.T) {
	st := newTestStore(t, Config{})
	ctx := t.Context()
	s := st.NewSession(ctx)
	for _, k := range []string{"m", "b", "x", "a"} {
		require.NoError(t, s.Set(k, k))
	}
	v, err := st.Save(ctx, s)
	require.NoError(t, err)

	s, err = st.Load(ctx, v)
	require.NoError(t, err)
	require.NoError(t, s.Set("z", "z"))
	require.NoError(t, s.Set("c", "c"))
	s.Delete("b")
	require.NoError(t, s.Set("m", "M"))
	require.NoError(t, s.Set("c", "C")) // a second Set of one key: the last wins
	s.Delete("nope")
	want := map[string]string{"a": "a", "c": "C", "m": "M", "x": "x", "z": "z"}
	check := func(s *Session) {
		t.Helper()
		assert.Equal(t, []string{"a", "c", "m", "x", "z"}, s.Keys())
		assert.False(t, s.Has("b"))
		for k, w := range want {
			var got string
			found, err := s.Get(k, &got)
			require.NoError(t, err)
			require.True(t, found, k)
			require.Equal(t, w, got, k)
		}
	}
	check(s)
	v, err = st.Save(ctx, s)
	require.NoError(t, err)
	check(s)
	s, err = st.Load(ctx, v)
	require.NoError(t, err)
	check(s)
}

// A commit that fails keeps the request's changes; a later one stores
// them (stamped again).
func TestFailedCommitKeepsChangesForRetry(t *testing.T) {
	st := newTestStore(t, Config{MaxSessionBytes: 1000})
	ctx := t.Context()
	s := st.NewSession(ctx)
	require.NoError(t, s.Set("a", strings.Repeat("a", 100)))
	v, err := st.Save(ctx, s)
	require.NoError(t, err)

	r1, err := st.Load(ctx, v)
	require.NoError(t, err)
	r2, err := st.Load(ctx, v)
	require.NoError(t, err)
	require.NoError(t, r1.Set("b", strings.Repeat("b", 500)))
	require.NoError(t, r2.Set("c", strings.Repeat("c", 500)))
	_, err = st.Save(ctx, r1)
	require.NoError(t, err)
	_, err = st.Save(ctx, r2)
	require.ErrorIs(t, err, ErrTooLarge)
	require.True(t, r2.Changed())

	// Make room, then retry r2's change.
	r3, err := st.Load(ctx, v)
	require.NoError(t, err)
	r3.Delete("b")
	_, err = st.Save(ctx, r3)
	require.NoError(t, err)
	_, err = st.Save(ctx, r2)
	require.NoError(t, err)

	got, err := st.Load(ctx, v)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c"}, got.Keys())
}

// getBytes finds what get finds: maphash.Bytes and maphash.String pick
// the same shard for equal contents.
func TestShardsGetBytesAgreesWithGet(t *testing.T) {
	st := newTestStore(t, Config{})
	ctx := t.Context()
	for range 200 {
		s := st.NewSession(ctx)
		require.NoError(t, s.Set("a", 1))
		_, err := st.Save(ctx, s)
		require.NoError(t, err)
		id := idBytes(s.Token())
		require.Equal(t, idOf(s.Token()), string(id[:]))
		e := st.shards.getBytes(id[:])
		require.NotNil(t, e)
		require.Same(t, st.shards.get(s.ID()), e)
	}
}

var sinkEntry *entry

// A session of up to 8 keys and its entry are one allocation, whose keys
// slice has room for exactly the keys asked for.
func TestNewEntryAllocatesOnceForUpToEightKeys(t *testing.T) {
	for n := range 12 {
		e, keys := newEntry(n)
		require.NotNil(t, e)
		require.Zero(t, len(keys))
		require.Equal(t, n, cap(keys))
		want := 1.0
		if n > 8 {
			want = 2
		}
		allocs := testing.AllocsPerRun(50, func() { sinkEntry, _ = newEntry(n) })
		assert.Equal(t, want, allocs, "%d keys", n)
	}
}

// A write stores the session's stamp with its entry, as the newest
// version the session holds.
func TestEntryStampIsTheNewestVersion(t *testing.T) {
	st := newTestStore(t, Config{})
	tok := create(t, st, map[string]any{"a": 1})
	token, _ := parseCookie(tok)
	for i := range 5 {
		update(t, st, tok, map[string]any{"b": i})
		e := st.lookup(idOf(token))
		require.Equal(t, e.rec.MaxVersion().Wall, e.stamp)
	}
}

// A key name or a value larger than a peer accepts is refused at Set, as a
// session over MaxSessionBytes is: it could be stored here but never
// replicated. The session keeps what it had.
func TestSetRefusesWhatCannotBeReplicated(t *testing.T) {
	st := newTestStore(t, Config{MaxSessionBytes: 4 << 20})
	tok := create(t, st, map[string]any{"a": "kept"})
	s, err := st.Load(t.Context(), tok)
	require.NoError(t, err)

	err = s.Set(strings.Repeat("k", wire.DefaultLimits.MaxKeyLen+1), 1)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "key name")
	require.NoError(t, s.Set(strings.Repeat("k", wire.DefaultLimits.MaxKeyLen), 1), "a key at the limit is fine")

	err = s.Set("big", make([]byte, wire.DefaultLimits.MaxValue))
	require.ErrorIs(t, err, ErrTooLarge, "over the limit once encoded (a bin header)")
	assert.Contains(t, err.Error(), "split it over several keys")
	require.NoError(t, s.Set("fits", make([]byte, wire.DefaultLimits.MaxValue-16)))
	assert.False(t, s.Has("big"))
	_, err = st.Save(t.Context(), s)
	require.NoError(t, err)
	assert.Equal(t, "kept", value(st, tok, "a"))
}
