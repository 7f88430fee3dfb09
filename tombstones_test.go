package peersession

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
)

// entries counts what the store's maps hold: sessions, tombstones and
// partial records.
func entries(st *Store) int {
	n := 0
	for i := range st.shards.s {
		sh := &st.shards.s[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// A client that creates and destroys sessions in a loop (a login flood)
// leaves a tombstone each time: the store holds no more than
// Config.MaxTombstones of them, however long the loop.
func TestCreateDestroyChurnStaysWithinTheTombstoneBudget(t *testing.T) {
	st := newTestStore(t, Config{MaxSessions: 100, MaxTombstones: 1000})
	ctx := context.Background()
	for i := range 20_000 {
		tok := savedSession(t, st, "k", i)
		require.NoError(t, st.Delete(ctx, tok))
	}
	stats := st.Stats()
	assert.Zero(t, stats.Sessions)
	assert.LessOrEqual(t, stats.Tombstones, int64(1000))
	assert.LessOrEqual(t, entries(st), 1000, "the maps hold no more than the budget")
	assert.Positive(t, stats.TombstonesDropped)
	assert.Equal(t, stats.Tombstones, int64(entries(st)), "every entry left is a counted tombstone")
}

// RenewID in a loop on one session (a re-login flood) leaves a tombstone
// per renewal: bounded the same way, and the session keeps its data.
func TestRenewChurnStaysWithinTheTombstoneBudget(t *testing.T) {
	st := newTestStore(t, Config{MaxTombstones: 500})
	ctx := context.Background()
	tok := savedSession(t, st, "user", "alice")
	for range 5000 {
		s, err := st.Load(ctx, tok)
		require.NoError(t, err)
		require.NoError(t, s.RenewID())
		tok, err = st.Save(ctx, s)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, entries(st), 501)
	s, err := st.Load(ctx, tok)
	require.NoError(t, err)
	var user string
	_, err = s.Get("user", &user)
	require.NoError(t, err)
	assert.Equal(t, "alice", user)
}

// A destroyed session never comes back, even once its tombstone has been
// dropped at the budget: a peer that missed the destroy and sends the
// session again is refused. Sessions written since are not affected.
func TestSessionWhoseTombstoneWasDroppedDoesNotComeBack(t *testing.T) {
	src := newTestStore(t, Config{})
	dst := newTestStore(t, Config{MaxTombstones: 10})
	ctx := context.Background()
	saved := func(st *Store, v string) model.Record {
		token, _ := parseCookie(savedSession(t, st, "k", v))
		return st.shards.get(idOf(token)).rec
	}
	victim := saved(src, "victim")
	require.Zero(t, replStore{dst}.Apply([]model.Record{victim}))
	ended, err := dst.destroyID(ctx, victim.ID) // src never hears of it
	require.NoError(t, err)
	require.True(t, ended)

	for i := range 50 { // enough tombstones to drop the victim's
		r := saved(dst, fmt.Sprint(i))
		_, err := dst.destroyID(ctx, r.ID)
		require.NoError(t, err)
	}
	require.Nil(t, dst.shards.get(victim.ID), "the victim's tombstone was dropped")

	assert.Equal(t, 1, replStore{dst}.Apply([]model.Record{victim}), "the stale copy is refused")
	assert.Nil(t, dst.lookup(victim.ID), "the destroyed session did not come back")

	fresh := saved(src, "new")
	assert.Zero(t, replStore{dst}.Apply([]model.Record{fresh}), "a session written since is accepted")
	assert.NotNil(t, dst.lookup(fresh.ID))
}

// A session's size counts a per-key overhead, so that many tiny keys
// cannot hold far more memory than MaxSessionBytes: six-byte keys fit
// about a thousand to the default 64 KiB, not ten thousand.
func TestManySmallKeysCountTheirOverhead(t *testing.T) {
	st := newTestStore(t, Config{})
	s := st.NewSession(context.Background())
	n := 0
	for ; n < 20_000; n++ {
		if err := s.Set(fmt.Sprintf("%06d", n), true); err != nil {
			require.ErrorIs(t, err, ErrTooLarge)
			break
		}
	}
	assert.Less(t, n, 1000, "keys that fit in 64 KiB")
	assert.Greater(t, n, 800)
}

// The session data a node holds has a node-wide budget: past
// Config.MaxBytes, new or growing sessions are refused (as at
// MaxSessions), the sessions held stay, and ending some makes room.
func TestMaxBytesBoundsTheNode(t *testing.T) {
	st := newTestStore(t, Config{MaxBytes: 16 << 10})
	ctx := context.Background()
	value := strings.Repeat("x", 1000)
	var toks []string
	var err error
	for range 100 {
		s := st.NewSession(ctx)
		require.NoError(t, s.Set("v", value))
		var tok string
		if tok, err = st.Save(ctx, s); err != nil {
			break
		}
		toks = append(toks, tok)
	}
	require.ErrorIs(t, err, ErrTooManySessions)
	assert.Contains(t, err.Error(), "Config.MaxBytes")
	assert.LessOrEqual(t, st.Stats().Bytes, int64(16<<10))
	assert.NotEmpty(t, toks)
	for _, tok := range toks {
		_, err := st.Load(ctx, tok)
		assert.NoError(t, err, "the sessions held stay")
	}
	require.NoError(t, st.Delete(ctx, toks[0]))
	s := st.NewSession(ctx)
	require.NoError(t, s.Set("v", value))
	_, err = st.Save(ctx, s)
	assert.NoError(t, err, "ending a session made room")
}
