package model

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGet(t *testing.T) {
	v1, v2 := Value{Data: []byte("1")}, Value{Deleted: true}
	r := Record{Keys: []KeyValue{{"a", v1}, {"c", v2}}}
	for _, tc := range []struct {
		key  string
		want Value
		ok   bool
	}{{"a", v1, true}, {"c", v2, true}, {"", Value{}, false}, {"b", Value{}, false}, {"d", Value{}, false}} {
		got, ok := r.Get(tc.key)
		require.Equal(t, tc.ok, ok, tc.key)
		require.Equal(t, tc.want, got, tc.key)
	}
	_, ok := (&Record{}).Get("a")
	require.False(t, ok)
}

func TestSortKeys(t *testing.T) {
	val := func(s string) Value { return Value{Data: []byte(s)} }
	tests := []struct {
		name     string
		in, want []KeyValue
	}{
		{"nil", nil, nil},
		{"empty", []KeyValue{}, []KeyValue{}},
		{"sorted", []KeyValue{{"a", val("1")}, {"b", val("2")}}, []KeyValue{{"a", val("1")}, {"b", val("2")}}},
		{"reversed", []KeyValue{{"b", val("2")}, {"a", val("1")}}, []KeyValue{{"a", val("1")}, {"b", val("2")}}},
		{"repeat: last wins", []KeyValue{{"b", val("1")}, {"a", val("x")}, {"b", val("2")}, {"b", val("3")}},
			[]KeyValue{{"a", val("x")}, {"b", val("3")}}},
		{"adjacent repeat", []KeyValue{{"a", val("1")}, {"a", val("2")}}, []KeyValue{{"a", val("2")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got := SortKeys(in)
			require.Equal(t, tc.want, got)
			require.True(t, keysSorted(got))
			for _, kv := range in[len(got):] {
				require.Zero(t, kv, "dropped entries are cleared")
			}
		})
	}
}

// TestSortKeysMatchesMap checks SortKeys and Get against a map filled in
// the same order, over random slices with repeats.
func TestSortKeysMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		n := rng.IntN(20)
		kvs := make([]KeyValue, n)
		m := make(map[string]Value, n)
		for i := range kvs {
			kvs[i] = KeyValue{fmt.Sprint(rng.IntN(8)), Value{Ver: Version{Wall: int64(i)}}}
			m[kvs[i].Key] = kvs[i].Value
		}
		r := Record{Keys: SortKeys(kvs)}
		require.Len(t, r.Keys, len(m))
		require.True(t, keysSorted(r.Keys))
		for k := range 9 {
			want, wantOK := m[fmt.Sprint(k)]
			got, ok := r.Get(fmt.Sprint(k))
			require.Equal(t, wantOK, ok)
			require.Equal(t, want, got)
		}
	}
}
