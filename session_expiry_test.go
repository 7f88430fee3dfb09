package peersession

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SetExpiry keeps a session at least until the framework's expiry, past
// the store's IdleTimeout and Lifetime, and each call extends it; the
// store still ends it once that expiry has passed without a renewal.
func TestSetExpiryOutlivesTheStoresTimeouts(t *testing.T) {
	clk := newFakeClock()
	st := newTestStore(t, Config{Now: clk.Now, IdleTimeout: 10 * time.Minute, Lifetime: time.Hour})
	ctx := context.Background()

	s := sessionWith(t, st, "k", "v")
	require.NoError(t, s.SetExpiry(clk.Now().Add(30*24*time.Hour)))
	tok := save(t, st, s)

	clk.Advance(2 * time.Hour) // past IdleTimeout and Lifetime
	st.Sweep()
	s, err := st.Load(ctx, tok)
	require.NoError(t, err, "the framework's 30 days hold, not the store's hour")

	// Renewed a day before it runs out, it lasts another 30 days idle.
	clk.Advance(29 * 24 * time.Hour)
	require.NoError(t, s.SetExpiry(clk.Now().Add(30*24*time.Hour)))
	save(t, st, s)
	clk.Advance(20 * 24 * time.Hour)
	st.Sweep()
	_, err = st.Load(ctx, tok)
	require.NoError(t, err)

	// Left alone past the last expiry, it goes.
	clk.Advance(11 * 24 * time.Hour)
	st.Sweep()
	_, err = st.Load(ctx, tok)
	assert.ErrorIs(t, err, ErrNotFound, "30 days idle after the last renewal")
	assert.Zero(t, st.Len(), "and the sweep removed it")
}

// A destroyed session that had no deadline of its own (SetExpiry) leaves
// a tombstone kept as long as the session could still be alive on a peer
// that missed the destroy: a destroyed session never comes back.
func TestTombstoneOfASetExpirySessionOutlivesItsIdleExpiry(t *testing.T) {
	clk := newFakeClock()
	st := newTestStore(t, Config{Now: clk.Now, IdleTimeout: 10 * time.Minute, Lifetime: time.Hour})
	s := sessionWith(t, st, "k", "v")
	require.NoError(t, s.SetExpiry(clk.Now().Add(30*24*time.Hour)))
	tok := save(t, st, s)
	require.NoError(t, st.Delete(context.Background(), tok))
	clk.Advance(29 * 24 * time.Hour)
	st.Sweep()
	token, _ := parseCookie(tok)
	e := st.shards.get(idOf(token))
	require.NotNil(t, e, "the tombstone is still held")
	assert.True(t, e.rec.IsDead())
}

// Without SetExpiry the store's IdleTimeout ends an idle session, as
// before: SetExpiry is what makes the difference above.
func TestWithoutSetExpiryTheIdleTimeoutEndsTheSession(t *testing.T) {
	clk := newFakeClock()
	st := newTestStore(t, Config{Now: clk.Now, IdleTimeout: 10 * time.Minute, Lifetime: time.Hour})
	tok := savedSession(t, st, "k", "v")
	clk.Advance(11 * time.Minute)
	_, err := st.Load(context.Background(), tok)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestSetExpiryOfAZeroTimeIsAnError(t *testing.T) {
	st := newTestStore(t, Config{})
	assert.Error(t, st.NewSession(context.Background()).SetExpiry(time.Time{}))
}
