package replicate

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

func ver(wall int64, seq uint32, node uint64) Version {
	return Version{Wall: wall, Seq: seq, Node: node}
}

func val(data string, v Version) Value { return Value{Data: []byte(data), Ver: v} }

func del(v Version) Value { return Value{Ver: v, Deleted: true} }

func TestMergeRules(t *testing.T) {
	tests := []struct {
		name string
		a, b Record
		want Record
	}{
		{
			name: "newer key wins",
			a:    Record{ID: "s", Keys: []KeyValue{{"k", val("old", ver(1, 0, 1))}}},
			b:    Record{ID: "s", Keys: []KeyValue{{"k", val("new", ver(2, 0, 1))}}},
			want: Record{ID: "s", Keys: []KeyValue{{"k", val("new", ver(2, 0, 1))}}},
		},
		{
			name: "seq breaks equal wall",
			a:    Record{ID: "s", Keys: []KeyValue{{"k", val("second", ver(5, 1, 1))}}},
			b:    Record{ID: "s", Keys: []KeyValue{{"k", val("first", ver(5, 0, 9))}}},
			want: Record{ID: "s", Keys: []KeyValue{{"k", val("second", ver(5, 1, 1))}}},
		},
		{
			name: "node breaks equal clocks",
			a:    Record{ID: "s", Keys: []KeyValue{{"k", val("node2", ver(5, 0, 2))}}},
			b:    Record{ID: "s", Keys: []KeyValue{{"k", val("node1", ver(5, 0, 1))}}},
			want: Record{ID: "s", Keys: []KeyValue{{"k", val("node2", ver(5, 0, 2))}}},
		},
		{
			name: "keys union",
			a:    Record{ID: "s", Keys: []KeyValue{{"a", val("1", ver(1, 0, 1))}}},
			b:    Record{ID: "s", Keys: []KeyValue{{"b", val("2", ver(1, 0, 2))}}},
			want: Record{ID: "s", Keys: []KeyValue{{"a", val("1", ver(1, 0, 1))}, {"b", val("2", ver(1, 0, 2))}}},
		},
		{
			name: "newer removal wins",
			a:    Record{ID: "s", Keys: []KeyValue{{"k", val("v", ver(1, 0, 1))}}},
			b:    Record{ID: "s", Keys: []KeyValue{{"k", del(ver(2, 0, 1))}}},
			want: Record{ID: "s", Keys: []KeyValue{{"k", del(ver(2, 0, 1))}}},
		},
		{
			name: "newer write beats older removal",
			a:    Record{ID: "s", Keys: []KeyValue{{"k", del(ver(2, 0, 1))}}},
			b:    Record{ID: "s", Keys: []KeyValue{{"k", val("back", ver(3, 0, 1))}}},
			want: Record{ID: "s", Keys: []KeyValue{{"k", val("back", ver(3, 0, 1))}}},
		},
		{
			name: "principal last writer wins",
			a:    Record{ID: "s", Principal: "alice", PrincipalVer: ver(3, 0, 1)},
			b:    Record{ID: "s", Principal: "bob", PrincipalVer: ver(2, 0, 1)},
			want: Record{ID: "s", Principal: "alice", PrincipalVer: ver(3, 0, 1)},
		},
		{
			name: "principal logout is a write",
			a:    Record{ID: "s", Principal: "alice", PrincipalVer: ver(3, 0, 1)},
			b:    Record{ID: "s", PrincipalVer: ver(4, 0, 1)},
			want: Record{ID: "s", PrincipalVer: ver(4, 0, 1)},
		},
		{
			name: "times: created and deadline earliest set, idle and access largest",
			a:    Record{ID: "s", Created: 100, Deadline: 0, IdleTimeout: 10, Access: 500},
			b:    Record{ID: "s", Created: 0, Deadline: 900, IdleTimeout: 30, Access: 400},
			want: Record{ID: "s", Created: 100, Deadline: 900, IdleTimeout: 30, Access: 500},
		},
		{
			name: "times: both set",
			a:    Record{ID: "s", Created: 100, Deadline: 800},
			b:    Record{ID: "s", Created: 90, Deadline: 900},
			want: Record{ID: "s", Created: 90, Deadline: 800},
		},
		{
			name: "tombstone wins and clears keys and principal",
			a: Record{ID: "s", Created: 1, Principal: "alice", PrincipalVer: ver(9, 0, 1),
				Keys: []KeyValue{{"k", val("v", ver(9, 0, 1))}}},
			b:    Record{ID: "s", Dead: ver(5, 0, 2)},
			want: Record{ID: "s", Created: 1, Dead: ver(5, 0, 2)},
		},
		{
			name: "larger tombstone wins",
			a:    Record{ID: "s", Dead: ver(5, 0, 2)},
			b:    Record{ID: "s", Dead: ver(5, 1, 1), Access: 7},
			want: Record{ID: "s", Dead: ver(5, 1, 1), Access: 7},
		},
		{
			name: "empty ID takes the other",
			a:    Record{},
			b:    Record{ID: "s", Access: 1},
			want: Record{ID: "s", Access: 1},
		},
		{
			name: "both empty",
			a:    Record{ID: "s"},
			b:    Record{ID: "s", Keys: []KeyValue{}},
			want: Record{ID: "s"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.a.Clone(), tc.b.Clone()
			require.Equal(t, tc.want, Merge(tc.a, tc.b), "Merge(a, b)")
			require.Equal(t, normRecord(tc.want), normRecord(Merge(tc.b, tc.a)), "Merge(b, a)")
			require.Equal(t, a, tc.a, "a modified")
			require.Equal(t, b, tc.b, "b modified")
		})
	}
}

func TestMergeSharesNoKeys(t *testing.T) {
	a := Record{ID: "s", Keys: []KeyValue{{"a", val("1", ver(1, 0, 1))}}}
	b := Record{ID: "s", Keys: []KeyValue{{"b", val("2", ver(1, 0, 1))}}}
	m := Merge(a, b)
	m.Keys[0].Value = val("changed", ver(2, 0, 1))
	m.setKey("c", val("3", ver(1, 0, 1)))
	require.Equal(t, []KeyValue{{"a", val("1", ver(1, 0, 1))}}, a.Keys)
	require.Equal(t, []KeyValue{{"b", val("2", ver(1, 0, 1))}}, b.Keys)
	require.Len(t, Merge(a, Record{ID: "s"}).Keys, 1)
	require.NotSame(t, &a.Keys[0], &Merge(a, Record{ID: "s"}).Keys[0], "a copy even with nothing to merge")
}

func TestMergeIntoAllocatesOnlyWithoutRoom(t *testing.T) {
	a := Record{ID: "s", Keys: []KeyValue{{"a", val("1", ver(1, 0, 1))}, {"b", val("1", ver(1, 0, 1))}}}
	b := Record{ID: "s", Keys: []KeyValue{{"b", val("2", ver(2, 0, 1))}, {"c", val("2", ver(1, 0, 1))}}}
	require.Equal(t, 3, MergedLen(a, b))
	small := make([]KeyValue, 0, 2)
	m := MergeInto(a, b, small)
	require.Equal(t, Merge(a, b), m, "too little room: a new array")
	require.Zero(t, small[:1][0].Key, "the small array is left alone")
	room := make([]KeyValue, 0, 3)
	require.Zero(t, testing.AllocsPerRun(100, func() { m = MergeInto(a, b, room) }))
	require.Equal(t, Merge(a, b), m)
	dead := Record{ID: "s", Dead: ver(3, 0, 1)}
	require.Zero(t, MergedLen(a, dead), "a tombstone keeps no keys")
	require.Nil(t, MergeInto(a, dead, room).Keys)
	require.Nil(t, MergeInto(Record{ID: "s"}, Record{ID: "s"}, room).Keys, "no keys: nil, as Merge")
}

func TestMergeNewer(t *testing.T) {
	cur := Record{ID: "s", Created: 10, Deadline: 100, IdleTimeout: 5, Access: 50,
		Principal: "alice", PrincipalVer: ver(3, 0, 1),
		Keys: []KeyValue{{"k", val("v", ver(3, 0, 1))}}}
	dead := Record{ID: "s", Created: 10, Access: 50, Dead: ver(4, 0, 1)}
	tests := []struct {
		name  string
		cur   Record
		delta Record
		want  bool
	}{
		{"empty delta", cur, Record{ID: "s"}, false},
		{"itself", cur, cur, false},
		{"older key", cur, Record{ID: "s", Keys: []KeyValue{{"k", val("x", ver(2, 0, 1))}}}, false},
		{"newer key", cur, Record{ID: "s", Keys: []KeyValue{{"k", val("x", ver(3, 0, 2))}}}, true},
		{"new key", cur, Record{ID: "s", Keys: []KeyValue{{"j", del(ver(1, 0, 1))}}}, true},
		{"later access", cur, Record{ID: "s", Access: 51}, true},
		{"earlier access", cur, Record{ID: "s", Access: 49}, false},
		{"larger idle", cur, Record{ID: "s", IdleTimeout: 6}, true},
		{"earlier created", cur, Record{ID: "s", Created: 9}, true},
		{"later created", cur, Record{ID: "s", Created: 11}, false},
		{"earlier deadline", cur, Record{ID: "s", Deadline: 99}, true},
		{"newer principal", cur, Record{ID: "s", PrincipalVer: ver(3, 0, 2)}, true},
		{"tombstone", cur, Record{ID: "s", Dead: ver(1, 0, 1)}, true},
		{"dead: older tombstone", dead, Record{ID: "s", Dead: ver(3, 0, 1)}, false},
		{"dead: newer tombstone", dead, Record{ID: "s", Dead: ver(4, 0, 2)}, true},
		{"dead: keys", dead, Record{ID: "s", Keys: []KeyValue{{"k", val("v", ver(9, 0, 1))}}}, false},
		{"dead: later access", dead, Record{ID: "s", Access: 60}, true},
		{"dead: earlier created", dead, Record{ID: "s", Created: 9}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Newer(tc.cur, tc.delta))
			changed := !equalRecords(tc.cur, Merge(tc.cur, tc.delta))
			require.Equal(t, tc.want, changed, "Newer disagrees with Merge")
		})
	}
}

// mergeGen generates small random records of one session, from small
// domains so that versions, keys and times collide often. It keeps the
// invariants real records have: equal versions mean the same write (so the
// same value), a zero PrincipalVer has no principal, and a dead record has
// no keys and no principal.
type mergeGen struct{ r *rand.Rand }

func (g mergeGen) version() Version {
	return Version{Wall: int64(1 + g.r.Intn(3)), Seq: uint32(g.r.Intn(2)), Node: uint64(1 + g.r.Intn(2))}
}

func (g mergeGen) time() int64 { return []int64{0, 0, 10, 20, 30}[g.r.Intn(5)] }

func (g mergeGen) record() Record {
	r := Record{ID: "s", Created: g.time(), Deadline: g.time(), IdleTimeout: g.time(), Access: g.time()}
	if g.r.Intn(6) == 0 {
		r.Dead = g.version()
		return r
	}
	if g.r.Intn(2) == 0 {
		r.PrincipalVer = g.version()
		r.Principal = fmt.Sprintf("user@%v", r.PrincipalVer) // "" means logged out
		if r.PrincipalVer.Seq == 1 {
			r.Principal = ""
		}
	}
	n := g.r.Intn(4)
	if n > 0 {
		r.Keys = make([]KeyValue, 0, n)
	}
	for i := 0; i < n; i++ {
		k := string(rune('a' + g.r.Intn(4)))
		v := g.version()
		if v.Node == 2 && v.Seq == 1 {
			r.setKey(k, Value{Ver: v, Deleted: true})
		} else {
			r.setKey(k, Value{Data: []byte(fmt.Sprintf("%s=%v", k, v)), Ver: v})
		}
	}
	return r
}

func equalRecords(a, b Record) bool {
	return fmt.Sprintf("%#v", normRecord(a)) == fmt.Sprintf("%#v", normRecord(b)) &&
		len(a.Keys) == len(b.Keys) && sameKeys(a, b)
}

func sameKeys(a, b Record) bool {
	for _, kv := range a.Keys {
		v := kv.Value
		w, ok := b.Get(kv.Key)
		if !ok || v.Ver != w.Ver || v.Deleted != w.Deleted || string(v.Data) != string(w.Data) {
			return false
		}
	}
	return true
}

func TestMergeProperties(t *testing.T) {
	g := mergeGen{rand.New(rand.NewSource(1))}
	for i := 0; i < 2000; i++ {
		a, b, c := g.record(), g.record(), g.record()
		checkMergeLaws(t, a, b, c)
		if t.Failed() {
			t.Fatalf("iteration %d:\na=%+v\nb=%+v\nc=%+v", i, a, b, c)
		}
	}
}

// checkMergeLaws checks the semilattice laws on a, b and c, and that
// Newer agrees with Merge.
func checkMergeLaws(t testing.TB, a, b, c Record) {
	t.Helper()
	ab := Merge(a, b)
	require.Equal(t, normRecord(ab), normRecord(Merge(b, a)), "commutative")
	require.Equal(t, normRecord(Merge(ab, c)), normRecord(Merge(a, Merge(b, c))), "associative")
	require.Equal(t, normRecord(a), normRecord(Merge(a, a)), "idempotent")
	require.Equal(t, normRecord(ab), normRecord(Merge(ab, b)), "absorbs a merged delta")
	for _, p := range [][2]Record{{a, b}, {b, a}, {ab, c}, {a, ab}} {
		cur, d := p[0], p[1]
		n := MergedLen(cur, d)
		require.Len(t, Merge(cur, d).Keys, n, "MergedLen")
		buf := make([]KeyValue, 1, max(n, 1)) // a length, which MergeInto ignores
		into := MergeInto(cur, d, buf)
		require.Equal(t, Merge(cur, d), into, "MergeInto equals Merge")
		if n > 0 {
			require.Same(t, &buf[:1][0], &into.Keys[0], "MergeInto writes into the array it is given")
			require.Equal(t, n, cap(into.Keys), "and caps the result at its keys")
		}
		require.Equal(t, !equalRecords(cur, Merge(cur, d)), Newer(cur, d),
			"Newer(cur, d) must be true iff Merge(cur, d) != cur\ncur=%+v\nd=%+v", cur, d)
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(int64(1), int64(2), int64(3))
	f.Add(int64(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, sa, sb, sc int64) {
		rec := func(seed int64) Record { return mergeGen{rand.New(rand.NewSource(seed))}.record() }
		checkMergeLaws(t, rec(sa), rec(sb), rec(sc))
	})
}
