package model_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testclock"
	"github.com/peersession/peersession/replicate/model"
)

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b model.Version
		want int
	}{
		{ver(1, 0, 0), ver(1, 0, 0), 0},
		{ver(1, 0, 0), ver(2, 0, 0), -1},
		{ver(2, 0, 0), ver(1, 9, 9), 1},      // wall first
		{ver(1, 1, 0), ver(1, 0, 9), 1},      // then seq
		{ver(1, 0, 1), ver(1, 0, 2), -1},     // then node, the tie-break
		{ver(-1, 0, 0), model.Version{}, -1}, // signed wall
		{ver(1, math.MaxUint32, 0), ver(2, 0, 0), -1},
		{ver(0, 0, math.MaxUint64), ver(0, 1, 0), -1},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.a.Compare(tc.b), "%v vs %v", tc.a, tc.b)
		require.Equal(t, -tc.want, tc.b.Compare(tc.a), "%v vs %v", tc.b, tc.a)
		require.Equal(t, tc.want < 0, tc.a.Less(tc.b))
		if tc.want >= 0 {
			require.Equal(t, tc.a, model.MaxVersion(tc.a, tc.b))
			require.Equal(t, tc.a, model.MaxVersion(tc.b, tc.a))
		}
	}
	require.True(t, model.Version{}.IsZero())
	require.False(t, ver(0, 0, 1).IsZero())
	require.False(t, ver(0, 1, 0).IsZero())
}

func TestClockNowMonotonicFrozen(t *testing.T) {
	wall := testclock.New(time.Unix(1000, 0))
	c := model.NewClock(7, wall.Now)
	require.Equal(t, uint64(7), c.Node())
	prev := c.Now()
	require.Equal(t, ver(time.Unix(1000, 0).UnixNano(), 0, 7), prev)
	for i := 0; i < 1000; i++ {
		v := c.Now()
		require.True(t, prev.Less(v), "%v then %v", prev, v)
		require.Equal(t, prev.Wall, v.Wall, "a frozen wall clock only counts")
		prev = v
	}
}

func TestClockNowWallGoesBack(t *testing.T) {
	wall := testclock.New(time.Unix(1000, 0))
	c := model.NewClock(1, wall.Now)
	a := c.Now()
	wall.Set(time.Unix(900, 0)) // NTP step backwards
	b := c.Now()
	require.True(t, a.Less(b))
	require.Equal(t, a.Wall, b.Wall)
	wall.Set(time.Unix(1001, 0))
	d := c.Now()
	require.Equal(t, ver(time.Unix(1001, 0).UnixNano(), 0, 1), d, "catches up with the wall clock")
}

// A reading SetTrust's function does not trust (a step the caller has not
// judged yet) is passed over: the Version follows the last one on the
// counter alone, and the clock moves on with the next trusted reading.
func TestClockPassesOverAnUntrustedReading(t *testing.T) {
	wall := testclock.New(time.Unix(1000, 0))
	c := model.NewClock(1, wall.Now)
	limit := time.Unix(1001, 0).UnixNano()
	c.SetTrust(func(w int64) bool { return w <= limit })
	a := c.Now()
	wall.Set(time.Unix(1120, 0)) // stepped two minutes ahead
	b := c.Now()
	require.Equal(t, ver(a.Wall, 1, 1), b, "ordered after a, not stamped ahead")
	require.Equal(t, ver(a.Wall, 1, 1), c.Last())
	c.SetTrust(nil)
	require.Equal(t, ver(time.Unix(1120, 0).UnixNano(), 0, 1), c.Now(), "trusted again: the wall clock")
}

func TestClockSeqWraps(t *testing.T) {
	wall := testclock.New(time.Unix(1000, 0))
	c := model.NewClock(1, wall.Now)
	c.Observe(ver(time.Unix(1000, 0).UnixNano(), math.MaxUint32, 2))
	v := c.Now()
	require.Equal(t, ver(time.Unix(1000, 0).UnixNano()+1, 0, 1), v, "borrows a nanosecond")
	require.True(t, ver(time.Unix(1000, 0).UnixNano(), math.MaxUint32, 2).Less(v))
}

func TestClockObserve(t *testing.T) {
	base := time.Unix(1000, 0).UnixNano()
	tests := []struct {
		name   string
		remote model.Version
	}{
		{"remote ahead", ver(base+5e9, 3, 9)},
		{"same wall, larger seq", ver(base, 40, 9)},
		{"same wall and seq, larger node", ver(base, 0, 9)},
		{"remote behind", ver(base-5e9, 99, 9)},
		{"zero", model.Version{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wall := testclock.New(time.Unix(1000, 0))
			c := model.NewClock(1, wall.Now)
			local := c.Now()
			c.Observe(tc.remote)
			next := c.Now()
			require.True(t, tc.remote.Less(next), "next local write %v must order after observed %v", next, tc.remote)
			require.True(t, local.Less(next))
		})
	}
}

func TestClockTieBreakAcrossNodes(t *testing.T) {
	wall := testclock.New(time.Unix(1000, 0))
	a, b := model.NewClock(1, wall.Now), model.NewClock(2, wall.Now)
	va, vb := a.Now(), b.Now()
	require.Equal(t, va.Wall, vb.Wall)
	require.Equal(t, va.Seq, vb.Seq)
	require.NotEqual(t, va, vb, "different nodes never write equal versions")
	require.True(t, va.Less(vb))
}

func TestClockNowDefaultsToTimeNow(t *testing.T) {
	c := model.NewClock(3, nil)
	before := time.Now().UnixNano()
	v := c.Now()
	require.GreaterOrEqual(t, v.Wall, before)
	require.LessOrEqual(t, v.Wall, time.Now().UnixNano())
}

func TestClockConcurrentNowUnique(t *testing.T) {
	for _, frozen := range []bool{true, false} {
		var now func() time.Time
		if frozen {
			now = testclock.New(time.Unix(1000, 0)).Now
		}
		c := model.NewClock(1, now)
		const goroutines, each = 16, 500
		got := make([][]model.Version, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				vs := make([]model.Version, each)
				for i := range vs {
					vs[i] = c.Now()
					if i%50 == 0 {
						c.Observe(ver(vs[i].Wall, vs[i].Seq+3, 2))
					}
				}
				got[g] = vs
			}()
		}
		wg.Wait()
		seen := make(map[model.Version]bool, goroutines*each)
		for _, vs := range got {
			for i, v := range vs {
				require.False(t, seen[v], "duplicate version %v (frozen=%v)", v, frozen)
				seen[v] = true
				if i > 0 {
					require.True(t, vs[i-1].Less(v), "not monotonic within a goroutine")
				}
			}
		}
	}
}

// BenchmarkClockNow is one HLC tick: what every changed key costs at commit.
func BenchmarkClockNow(b *testing.B) {
	c := model.NewClock(1, nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Now()
	}
}

// Last is the latest version issued or observed, which stays ahead of a
// wall clock set back: what a node stamps next is never below it.
func TestClockLastIsTheLatestIssuedOrObserved(t *testing.T) {
	wall := testclock.New(time.Unix(1000, 0))
	c := model.NewClock(3, wall.Now)
	require.True(t, c.Last().Wall == 0 && c.Last().Seq == 0, "nothing yet")
	v := c.Now()
	require.Equal(t, v, c.Last())
	wall.Set(time.Unix(900, 0))
	require.Equal(t, v, c.Last(), "a wall clock set back does not move it")
	c.Observe(ver(time.Unix(2000, 0).UnixNano(), 4, 9))
	require.Equal(t, ver(time.Unix(2000, 0).UnixNano(), 4, 3), c.Last(), "an observed version moves it, with this clock's node")
	require.Equal(t, time.Unix(2000, 0).UnixNano(), c.Now().Wall)
}
