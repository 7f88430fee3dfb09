package model_test

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/internal/testrec"
	"github.com/peersession/peersession/replicate/model"
)

func ver(wall int64, seq uint32, node uint64) model.Version {
	return model.Version{Wall: wall, Seq: seq, Node: node}
}

func val(data string, v model.Version) model.Value { return model.Value{Data: []byte(data), Ver: v} }

func del(v model.Version) model.Value { return model.Value{Ver: v, Deleted: true} }

func TestMergeRules(t *testing.T) {
	tests := []struct {
		name string
		a, b model.Record
		want model.Record
	}{
		{
			name: "newer key wins",
			a:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("old", ver(1, 0, 1))}}},
			b:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("new", ver(2, 0, 1))}}},
			want: model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("new", ver(2, 0, 1))}}},
		},
		{
			name: "seq breaks equal wall",
			a:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("second", ver(5, 1, 1))}}},
			b:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("first", ver(5, 0, 9))}}},
			want: model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("second", ver(5, 1, 1))}}},
		},
		{
			name: "node breaks equal clocks",
			a:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("node2", ver(5, 0, 2))}}},
			b:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("node1", ver(5, 0, 1))}}},
			want: model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("node2", ver(5, 0, 2))}}},
		},
		{
			name: "keys union",
			a:    model.Record{ID: "s", Keys: []model.KeyValue{{"a", val("1", ver(1, 0, 1))}}},
			b:    model.Record{ID: "s", Keys: []model.KeyValue{{"b", val("2", ver(1, 0, 2))}}},
			want: model.Record{ID: "s", Keys: []model.KeyValue{{"a", val("1", ver(1, 0, 1))}, {"b", val("2", ver(1, 0, 2))}}},
		},
		{
			name: "newer removal wins",
			a:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("v", ver(1, 0, 1))}}},
			b:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", del(ver(2, 0, 1))}}},
			want: model.Record{ID: "s", Keys: []model.KeyValue{{"k", del(ver(2, 0, 1))}}},
		},
		{
			name: "newer write beats older removal",
			a:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", del(ver(2, 0, 1))}}},
			b:    model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("back", ver(3, 0, 1))}}},
			want: model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("back", ver(3, 0, 1))}}},
		},
		{
			name: "principal last writer wins",
			a:    model.Record{ID: "s", Principal: "alice", PrincipalVer: ver(3, 0, 1)},
			b:    model.Record{ID: "s", Principal: "bob", PrincipalVer: ver(2, 0, 1)},
			want: model.Record{ID: "s", Principal: "alice", PrincipalVer: ver(3, 0, 1)},
		},
		{
			name: "principal logout is a write",
			a:    model.Record{ID: "s", Principal: "alice", PrincipalVer: ver(3, 0, 1)},
			b:    model.Record{ID: "s", PrincipalVer: ver(4, 0, 1)},
			want: model.Record{ID: "s", PrincipalVer: ver(4, 0, 1)},
		},
		{
			name: "times: created and deadline earliest set, idle and access largest",
			a:    model.Record{ID: "s", Created: 100, Deadline: 0, IdleTimeout: 10, Access: 500},
			b:    model.Record{ID: "s", Created: 0, Deadline: 900, IdleTimeout: 30, Access: 400},
			want: model.Record{ID: "s", Created: 100, Deadline: 900, IdleTimeout: 30, Access: 500},
		},
		{
			name: "times: both set",
			a:    model.Record{ID: "s", Created: 100, Deadline: 800},
			b:    model.Record{ID: "s", Created: 90, Deadline: 900},
			want: model.Record{ID: "s", Created: 90, Deadline: 800},
		},
		{
			name: "tombstone wins and clears keys and principal",
			a: model.Record{ID: "s", Created: 1, Principal: "alice", PrincipalVer: ver(9, 0, 1),
				Keys: []model.KeyValue{{"k", val("v", ver(9, 0, 1))}}},
			b:    model.Record{ID: "s", Dead: ver(5, 0, 2)},
			want: model.Record{ID: "s", Created: 1, Dead: ver(5, 0, 2)},
		},
		{
			name: "larger tombstone wins",
			a:    model.Record{ID: "s", Dead: ver(5, 0, 2)},
			b:    model.Record{ID: "s", Dead: ver(5, 1, 1), Access: 7},
			want: model.Record{ID: "s", Dead: ver(5, 1, 1), Access: 7},
		},
		{
			name: "empty ID takes the other",
			a:    model.Record{},
			b:    model.Record{ID: "s", Access: 1},
			want: model.Record{ID: "s", Access: 1},
		},
		{
			name: "both empty",
			a:    model.Record{ID: "s"},
			b:    model.Record{ID: "s", Keys: []model.KeyValue{}},
			want: model.Record{ID: "s"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.a.Clone(), tc.b.Clone()
			require.Equal(t, tc.want, model.Merge(tc.a, tc.b), "Merge(a, b)")
			require.Equal(t, testrec.Norm(tc.want), testrec.Norm(model.Merge(tc.b, tc.a)), "Merge(b, a)")
			require.Equal(t, a, tc.a, "a modified")
			require.Equal(t, b, tc.b, "b modified")
		})
	}
}

func TestMergeSharesNoKeys(t *testing.T) {
	a := model.Record{ID: "s", Keys: []model.KeyValue{{"a", val("1", ver(1, 0, 1))}}}
	b := model.Record{ID: "s", Keys: []model.KeyValue{{"b", val("2", ver(1, 0, 1))}}}
	m := model.Merge(a, b)
	m.Keys[0].Value = val("changed", ver(2, 0, 1))
	m.Set("c", val("3", ver(1, 0, 1)))
	require.Equal(t, []model.KeyValue{{"a", val("1", ver(1, 0, 1))}}, a.Keys)
	require.Equal(t, []model.KeyValue{{"b", val("2", ver(1, 0, 1))}}, b.Keys)
	require.Len(t, model.Merge(a, model.Record{ID: "s"}).Keys, 1)
	require.NotSame(t, &a.Keys[0], &model.Merge(a, model.Record{ID: "s"}).Keys[0], "a copy even with nothing to merge")
}

func TestMergeIntoAllocatesOnlyWithoutRoom(t *testing.T) {
	a := model.Record{ID: "s", Keys: []model.KeyValue{{"a", val("1", ver(1, 0, 1))}, {"b", val("1", ver(1, 0, 1))}}}
	b := model.Record{ID: "s", Keys: []model.KeyValue{{"b", val("2", ver(2, 0, 1))}, {"c", val("2", ver(1, 0, 1))}}}
	require.Equal(t, 3, model.MergedLen(a, b))
	small := make([]model.KeyValue, 0, 2)
	m := model.MergeInto(a, b, small)
	require.Equal(t, model.Merge(a, b), m, "too little room: a new array")
	require.Zero(t, small[:1][0].Key, "the small array is left alone")
	room := make([]model.KeyValue, 0, 3)
	require.Zero(t, testing.AllocsPerRun(100, func() { m = model.MergeInto(a, b, room) }))
	require.Equal(t, model.Merge(a, b), m)
	dead := model.Record{ID: "s", Dead: ver(3, 0, 1)}
	require.Zero(t, model.MergedLen(a, dead), "a tombstone keeps no keys")
	require.Nil(t, model.MergeInto(a, dead, room).Keys)
	require.Nil(t, model.MergeInto(model.Record{ID: "s"}, model.Record{ID: "s"}, room).Keys, "no keys: nil, as Merge")
}

func TestMergeNewer(t *testing.T) {
	cur := model.Record{ID: "s", Created: 10, Deadline: 100, IdleTimeout: 5, Access: 50,
		Principal: "alice", PrincipalVer: ver(3, 0, 1),
		Keys: []model.KeyValue{{"k", val("v", ver(3, 0, 1))}}}
	dead := model.Record{ID: "s", Created: 10, Access: 50, Dead: ver(4, 0, 1)}
	tests := []struct {
		name  string
		cur   model.Record
		delta model.Record
		want  bool
	}{
		{"empty delta", cur, model.Record{ID: "s"}, false},
		{"itself", cur, cur, false},
		{"older key", cur, model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("x", ver(2, 0, 1))}}}, false},
		{"newer key", cur, model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("x", ver(3, 0, 2))}}}, true},
		{"new key", cur, model.Record{ID: "s", Keys: []model.KeyValue{{"j", del(ver(1, 0, 1))}}}, true},
		{"later access", cur, model.Record{ID: "s", Access: 51}, true},
		{"earlier access", cur, model.Record{ID: "s", Access: 49}, false},
		{"larger idle", cur, model.Record{ID: "s", IdleTimeout: 6}, true},
		{"earlier created", cur, model.Record{ID: "s", Created: 9}, true},
		{"later created", cur, model.Record{ID: "s", Created: 11}, false},
		{"earlier deadline", cur, model.Record{ID: "s", Deadline: 99}, true},
		{"newer principal", cur, model.Record{ID: "s", PrincipalVer: ver(3, 0, 2)}, true},
		{"tombstone", cur, model.Record{ID: "s", Dead: ver(1, 0, 1)}, true},
		{"dead: older tombstone", dead, model.Record{ID: "s", Dead: ver(3, 0, 1)}, false},
		{"dead: newer tombstone", dead, model.Record{ID: "s", Dead: ver(4, 0, 2)}, true},
		{"dead: keys", dead, model.Record{ID: "s", Keys: []model.KeyValue{{"k", val("v", ver(9, 0, 1))}}}, false},
		{"dead: later access", dead, model.Record{ID: "s", Access: 60}, true},
		{"dead: earlier created", dead, model.Record{ID: "s", Created: 9}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, model.Newer(tc.cur, tc.delta))
			changed := !equalRecords(tc.cur, model.Merge(tc.cur, tc.delta))
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

func (g mergeGen) version() model.Version {
	return model.Version{Wall: int64(1 + g.r.Intn(3)), Seq: uint32(g.r.Intn(2)), Node: uint64(1 + g.r.Intn(2))}
}

func (g mergeGen) time() int64 { return []int64{0, 0, 10, 20, 30}[g.r.Intn(5)] }

func (g mergeGen) record() model.Record {
	r := model.Record{ID: "s", Created: g.time(), Deadline: g.time(), IdleTimeout: g.time(), Access: g.time()}
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
		r.Keys = make([]model.KeyValue, 0, n)
	}
	for i := 0; i < n; i++ {
		k := string(rune('a' + g.r.Intn(4)))
		v := g.version()
		if v.Node == 2 && v.Seq == 1 {
			r.Set(k, model.Value{Ver: v, Deleted: true})
		} else {
			r.Set(k, model.Value{Data: []byte(fmt.Sprintf("%s=%v", k, v)), Ver: v})
		}
	}
	return r
}

func equalRecords(a, b model.Record) bool {
	return fmt.Sprintf("%#v", testrec.Norm(a)) == fmt.Sprintf("%#v", testrec.Norm(b)) &&
		len(a.Keys) == len(b.Keys) && sameKeys(a, b)
}

func sameKeys(a, b model.Record) bool {
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
func checkMergeLaws(t testing.TB, a, b, c model.Record) {
	t.Helper()
	ab := model.Merge(a, b)
	require.Equal(t, testrec.Norm(ab), testrec.Norm(model.Merge(b, a)), "commutative")
	require.Equal(t, testrec.Norm(model.Merge(ab, c)), testrec.Norm(model.Merge(a, model.Merge(b, c))), "associative")
	require.Equal(t, testrec.Norm(a), testrec.Norm(model.Merge(a, a)), "idempotent")
	require.Equal(t, testrec.Norm(ab), testrec.Norm(model.Merge(ab, b)), "absorbs a merged delta")
	for _, p := range [][2]model.Record{{a, b}, {b, a}, {ab, c}, {a, ab}} {
		cur, d := p[0], p[1]
		n := model.MergedLen(cur, d)
		require.Len(t, model.Merge(cur, d).Keys, n, "MergedLen")
		buf := make([]model.KeyValue, 1, max(n, 1)) // a length, which MergeInto ignores
		into := model.MergeInto(cur, d, buf)
		require.Equal(t, model.Merge(cur, d), into, "MergeInto equals Merge")
		if n > 0 {
			require.Same(t, &buf[:1][0], &into.Keys[0], "MergeInto writes into the array it is given")
			require.Equal(t, n, cap(into.Keys), "and caps the result at its keys")
		}
		require.Equal(t, !equalRecords(cur, model.Merge(cur, d)), model.Newer(cur, d),
			"Newer(cur, d) must be true iff Merge(cur, d) != cur\ncur=%+v\nd=%+v", cur, d)
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(int64(1), int64(2), int64(3))
	f.Add(int64(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, sa, sb, sc int64) {
		rec := func(seed int64) model.Record { return mergeGen{rand.New(rand.NewSource(seed))}.record() }
		checkMergeLaws(t, rec(sa), rec(sb), rec(sc))
	})
}
