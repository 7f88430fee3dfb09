package placement

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/peersession/peersession/internal/fixedhash"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i)
	}
	return out
}

func reversed(s []string) []string {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15+uint64(i)) // hex like a session ID
	}
	return out
}

func TestHoldersAreCopiesDistinctNamesOwnerFirst(t *testing.T) {
	v := New(2, []string{"c", "a", "b", "a"})
	assert.Equal(t, []string{"a", "b", "c"}, v.Names(), "sorted, duplicates dropped")
	assert.Equal(t, 2, v.Copies())
	for _, id := range ids(1000) {
		hs := v.Holders(id, nil)
		require.Len(t, hs, 2)
		assert.NotEqual(t, hs[0], hs[1])
		for _, n := range v.Names() {
			assert.Equal(t, slices.Contains(hs, n), v.Holds(n, id), "Holds agrees with Holders for %s", n)
		}
		h := fixedhash.String(fixedhash.Offset, id)
		wi := func(name string) uint64 { k, _ := slices.BinarySearch(v.names, name); return v.weight(k, h) }
		assert.Greater(t, wi(hs[0]), wi(hs[1]), "the owner comes first")
	}
	assert.False(t, v.Holds("z", ids(1)[0]), "a name not in the view holds nothing")
}

func TestCopiesAtLeastTheNamesOrZeroPutsEverythingEverywhere(t *testing.T) {
	for _, copies := range []int{0, 3, 5} {
		v := New(copies, []string{"a", "b", "c"})
		assert.Equal(t, 3, v.Copies())
		for _, id := range ids(100) {
			hs := v.Holders(id, nil)
			slices.Sort(hs)
			assert.Equal(t, []string{"a", "b", "c"}, hs)
			assert.True(t, v.Holds("b", id))
		}
	}
	assert.Empty(t, New(2, nil).Holders("x", nil), "no names hold nothing")
}

// Every node computes the same holders, in every process and release:
// the weights are fixed functions of the names and the ID.
func TestHoldersAreFixed(t *testing.T) {
	v := New(2, names(8))
	assert.Equal(t, []string{"node-0", "node-2"}, v.Holders("session-one", nil))
	assert.Equal(t, []string{"node-0", "node-7"}, v.Holders("session-two", nil))
	assert.Equal(t, v.Holders("session-two", nil), New(2, reversed(names(8))).Holders("session-two", nil), "order of names does not matter")
}

// Each name holds about Copies/N of the sessions: within a few percent of
// it over 100k IDs.
func TestBalance(t *testing.T) {
	all := ids(100_000)
	for _, n := range []int{4, 8, 16, 32} {
		for _, copies := range []int{2, 3} {
			t.Run(fmt.Sprintf("N=%d/copies=%d", n, copies), func(t *testing.T) {
				v := New(copies, names(n))
				count := map[string]int{}
				var buf []string
				for _, id := range all {
					buf = v.Holders(id, buf[:0])
					for _, h := range buf {
						count[h]++
					}
				}
				want := float64(len(all)*copies) / float64(n)
				for name, c := range count {
					dev := math.Abs(float64(c)-want) / want
					assert.Less(t, dev, 0.05, "%s holds %d sessions, %.1f%% off the mean %.0f", name, c, 100*dev, want)
				}
				assert.Len(t, count, n)
			})
		}
	}
}

// A membership change moves only the sessions whose holders it changes:
// about Copies/(N+1) of them when a node joins (all onto it), about
// Copies/N when one leaves (only those it held).
func TestOneNodeMoreOrLessMovesAboutCopiesOverN(t *testing.T) {
	all := ids(100_000)
	for _, n := range []int{4, 8, 16, 32} {
		const copies = 2
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			before := New(copies, names(n))
			joined := New(copies, append(names(n), "newcomer"))
			left := New(copies, names(n)[1:])
			var moved, movedOff, gone int
			var b, j, l []string
			for _, id := range all {
				b, j, l = before.Holders(id, b[:0]), joined.Holders(id, j[:0]), left.Holders(id, l[:0])
				for _, h := range b {
					if !slices.Contains(j, h) {
						moved++
						assert.Contains(t, j, "newcomer", "a session moved to a node other than the one that joined")
					}
					if !slices.Contains(l, h) {
						movedOff++
						assert.Equal(t, "node-0", h, "a session left a node that stayed")
					}
				}
				if slices.Contains(b, "node-0") {
					gone++
				}
			}
			wantJoin := float64(len(all)*copies) / float64(n+1)
			assert.InEpsilon(t, wantJoin, float64(moved), 0.05, "join moved %d copies", moved)
			assert.Equal(t, gone, movedOff, "a leave moves exactly the copies the node held")
			assert.InEpsilon(t, float64(len(all)*copies)/float64(n), float64(gone), 0.05)
		})
	}
}

func BenchmarkHolders(b *testing.B) {
	for _, n := range []int{4, 32} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			v := New(2, names(n))
			id := ids(1)[0]
			var buf []string
			for b.Loop() {
				buf = v.Holders(id, buf[:0])
			}
		})
	}
}

// Holds and Holders agree when weights tie (two names whose hashes
// collide, made so here by giving them the same seed): the name that sorts
// first ranks higher in both, and exactly Copies names hold each session.
func TestHoldsAgreesWithHoldersOnTiedWeights(t *testing.T) {
	for _, copies := range []int{1, 2, 3} {
		v := New(copies, names(5))
		v.seeds[2] = v.seeds[1] // node-1 and node-2 weigh the same for every session
		for _, id := range ids(2000) {
			hs := v.Holders(id, nil)
			require.Len(t, hs, copies)
			held := 0
			for _, n := range v.Names() {
				if v.Holds(n, id) {
					held++
					require.Contains(t, hs, n, "copies %d, session %s: Holds says %s, Holders %v", copies, id, n, hs)
				}
			}
			require.Equal(t, copies, held, "copies %d, session %s: Holders %v", copies, id, hs)
			if slices.Contains(hs, "node-2") {
				require.Contains(t, hs, "node-1", "node-2 ranked above node-1, its equal that sorts first")
			}
		}
	}
}
