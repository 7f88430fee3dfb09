package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The same seed, kinds and node count give the same steps: that is what
// makes a failing run replayable from its printed seed.
func TestScheduleReplaysFromItsSeed(t *testing.T) {
	a, b := newSchedule(42, allFaults, 5), newSchedule(42, allFaults, 5)
	other := newSchedule(43, allFaults, 5)
	differs := false
	for range 200 {
		sa, sb, so := a.next(), b.next(), other.next()
		require.Equal(t, sa, sb)
		differs = differs || sa.String() != so.String()
	}
	assert.True(t, differs, "another seed gives another schedule")
}

// Every step is well formed: targets among the nodes, the two sides of a
// partition disjoint and covering every node, clock offsets on the right
// side of the one-minute skew limit.
func TestScheduleStepsAreWellFormed(t *testing.T) {
	for _, nodes := range []int{3, 4, 5} {
		sc := newSchedule(7, allFaults, nodes)
		seen := map[faultKind]bool{}
		for range 500 {
			s := sc.next()
			seen[s.Kind] = true
			require.True(t, s.Node >= 0 && s.Node < nodes, s.String())
			require.Positive(t, s.Gap)
			require.Positive(t, s.Hold)
			switch s.Kind {
			case faultPartition, faultOneWay:
				require.NotEmpty(t, s.Side, s.String())
				require.NotEmpty(t, s.Other, s.String())
				all := map[int]bool{}
				for _, n := range append(append([]int{}, s.Side...), s.Other...) {
					require.False(t, all[n], "node %d on both sides: %s", n, s)
					all[n] = true
				}
				require.Len(t, all, nodes, s.String())
			case faultClock:
				require.Less(t, s.Offset.Seconds(), 60.0, s.String())
			case faultSkew:
				require.Greater(t, s.Offset.Seconds(), 60.0, s.String())
			}
		}
		assert.Len(t, seen, len(allFaults), "500 steps draw every kind")
	}
}

func TestParseFaults(t *testing.T) {
	k, err := parseFaults("partition, kill,partition")
	require.NoError(t, err)
	assert.Equal(t, []faultKind{faultPartition, faultKill}, k)
	k, err = parseFaults("all")
	require.NoError(t, err)
	assert.Equal(t, allFaults, k)
	_, err = parseFaults("kill,meteor")
	assert.ErrorContains(t, err, `unknown kind "meteor"`)
}
