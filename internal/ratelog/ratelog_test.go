package ratelog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The first occurrence is logged at once; within Every the rest are only
// counted, and the next line carries them all.
func TestLimiterLetsOneLinePerInterval(t *testing.T) {
	l := Limiter{Every: 10 * time.Second}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

	total, ok := l.Allow(t0, 3)
	require.True(t, ok)
	require.Equal(t, 3, total)

	_, ok = l.Allow(t0.Add(time.Second), 1)
	require.False(t, ok)
	_, ok = l.Allow(t0.Add(9*time.Second), 2)
	require.False(t, ok)

	total, ok = l.Allow(t0.Add(10*time.Second), 1)
	require.True(t, ok)
	require.Equal(t, 4, total)
}

// The zero Limiter lets every line through.
func TestZeroLimiterLetsEverythingThrough(t *testing.T) {
	var l Limiter
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		total, ok := l.Allow(t0, i)
		require.True(t, ok)
		require.Equal(t, i, total)
	}
}

// Each kind has its own interval; past MaxKinds, new kinds share one
// Limiter, so that lines that vary cannot grow the set or slip through.
func TestKindsLimitEachKindAndBoundTheirNumber(t *testing.T) {
	k := Kinds{Every: 10 * time.Second, MaxKinds: 2}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

	_, ok := k.Allow("a", t0, 1)
	require.True(t, ok)
	_, ok = k.Allow("a", t0, 1)
	require.False(t, ok)
	_, ok = k.Allow("b", t0, 1)
	require.True(t, ok, "another kind has its own interval")

	_, ok = k.Allow("c", t0, 1)
	require.True(t, ok)
	_, ok = k.Allow("d", t0, 1)
	require.False(t, ok, "kinds past MaxKinds share one Limiter")
	require.Len(t, k.byKind, 2)

	total, ok := k.Allow("e", t0.Add(10*time.Second), 1)
	require.True(t, ok)
	require.Equal(t, 2, total)
}
