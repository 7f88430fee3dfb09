// Package placement picks the nodes that hold a session in partitioned
// mode (ClusterConfig.Copies): rendezvous, or highest-random-weight,
// hashing of the session ID over the configured names of the live
// members. Each name gets a weight per session ID; the Copies names of
// highest weight hold the session, the first of them its owner.
//
// A membership change moves only the sessions whose top-Copies set it
// changes: adding one node to N takes about Copies/(N+1) of the sessions
// onto it and moves nothing else; removing one moves only the sessions it
// held, each to one other node. There is no table to agree on and nothing
// to gossip: every node that sees the same members computes the same
// holders. The weights are fixed (FNV-1a and MurmurHash3's finalizer), so
// every node and release computes the same ones.
package placement

import (
	"slices"

	"github.com/peersession/peersession/internal/fixedhash"
)

// View is the placement over one set of names: who holds which session.
// It is immutable, and safe for concurrent use.
type View struct {
	copies int
	names  []string // sorted, unique
	seeds  []uint64 // seeds[i] is the hash of names[i]
}

// New returns the placement of sessions on copies of names (duplicates
// are ignored). copies <= 0, or at least len(names), puts every session
// on every name.
func New(copies int, names []string) *View {
	ns := slices.Clone(names)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	v := &View{copies: copies, names: ns, seeds: make([]uint64, len(ns))}
	for i, n := range ns {
		v.seeds[i] = fixedhash.Mix(fixedhash.String(fixedhash.Offset, n) ^ nameSalt)
	}
	return v
}

// Copies returns how many names hold each session: min(copies, names),
// every name when copies <= 0.
func (v *View) Copies() int {
	if v.copies <= 0 || v.copies > len(v.names) {
		return len(v.names)
	}
	return v.copies
}

// Names returns the names, sorted. Do not modify the slice.
func (v *View) Names() []string { return v.names }

// Has reports whether name is one of the view's names.
func (v *View) Has(name string) bool {
	_, ok := slices.BinarySearch(v.names, name)
	return ok
}

// weight is name i's weight for a session ID hashed to h.
func (v *View) weight(i int, h uint64) uint64 { return fixedhash.Mix(h ^ v.seeds[i]) }

// Holders appends to dst the names holding session id, the owner (the
// highest weight) first, and returns it. Of equal weights, the name that
// sorts first ranks higher.
func (v *View) Holders(id string, dst []string) []string {
	n := v.Copies()
	h := fixedhash.String(fixedhash.Offset, id)
	// The n highest weights, by insertion into a short sorted list:
	// n is small (2 or 3), names at most a few dozen.
	var topBuf [8]int
	var wBuf [8]uint64
	top, ws := topBuf[:0], wBuf[:0]
	if n > len(topBuf) {
		top, ws = make([]int, 0, n), make([]uint64, 0, n)
	}
	for i := range v.names {
		w := v.weight(i, h)
		if len(top) == n && w <= ws[n-1] {
			continue
		}
		j := len(top)
		if j == n {
			j--
		} else {
			top, ws = append(top, 0), append(ws, 0)
		}
		for j > 0 && ws[j-1] < w {
			top[j], ws[j] = top[j-1], ws[j-1]
			j--
		}
		top[j], ws[j] = i, w
	}
	for _, i := range top {
		dst = append(dst, v.names[i])
	}
	return dst
}

// Holds reports whether name holds session id: whether it is among
// Holders(id). Equal weights (two names whose hashes collide) rank the
// name that sorts first higher, in both.
func (v *View) Holds(name, id string) bool {
	k, ok := slices.BinarySearch(v.names, name)
	if !ok {
		return false
	}
	n := v.Copies()
	if n == len(v.names) {
		return true
	}
	h := fixedhash.String(fixedhash.Offset, id)
	w := v.weight(k, h)
	above := 0 // names ranked higher: of higher weight, or of equal weight sorting first
	for i := range v.names {
		if wi := v.weight(i, h); wi > w || (wi == w && i < k) {
			if above++; above >= n {
				return false
			}
		}
	}
	return true
}

// nameSalt sets names' hashes apart from session IDs': a node named like a
// session ID weighs nothing special for it.
const nameSalt = 0x9e3779b97f4a7c15
