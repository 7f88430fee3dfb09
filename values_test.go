package peersession

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/peersession/peersession/replicate/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// What a value can be (docs/values.md): Set refuses what cannot come back,
// Get refuses an integer that does not fit, and into an interface a value
// comes back as one Go type per kind.

type (
	secret struct{ token string }
	mixed  struct {
		Name  string
		token string
	}
	holdsSecret struct {
		Name string
		S    secret
	}
	level    int8
	withAny  struct{ V any }
	embedded struct {
		secret
		Plain
	}
	Plain struct {
		A int
		B string `msgpack:"b,omitempty"`
	}
	skipped struct {
		Name string
		F    func() `msgpack:"-"`
		c    chan int
	}
	tagged struct {
		ID    int64  `msgpack:"id"`
		Level level  `msgpack:"lvl"`
		Note  string `msgpack:"-"`
	}
	asArray struct {
		_msgpack struct{} `msgpack:",as_array"`
		N        int16
		S        string
	}
	node struct {
		N    uint8
		Next *node
	}
	empty struct{}
)

// valueSession returns a new session of a single-node store.
func valueSession(t *testing.T) *Session {
	t.Helper()
	return newTestStore(t, Config{}).NewSession(t.Context())
}

// TestValueSetRefusesWhatCannotComeBack: issue 18 point 5, a struct whose
// fields are all unexported was stored as {} and came back as its zero
// value; funcs, channels and the rest anywhere in a value are refused by
// type, even where msgpack would have stored an empty slice of them.
func TestValueSetRefusesWhatCannotComeBack(t *testing.T) {
	s := valueSession(t)
	for _, tc := range []struct {
		name string
		v    any
		in   string // in the error: the type and where it is
	}{
		{"unexported only", secret{"t"}, "secret"},
		{"pointer to it", &secret{"t"}, "secret"},
		{"slice of it", []secret{{"t"}}, "secret at [i]"},
		{"map of it", map[string]secret{"a": {"t"}}, "secret at [k]"},
		{"map key", map[secret]int{{"t"}: 1}, "secret at  (a map key)"},
		{"field", holdsSecret{Name: "n", S: secret{"t"}}, "secret at .S"},
		{"embedded, inlined", struct{ secret }{secret{"t"}}, "struct { peersession.secret }"},
		{"in map[string]any", map[string]any{"ok": 1, "x": secret{"t"}}, `secret at ["x"]`},
		{"in []any", []any{1, "a", secret{"t"}}, "secret at [2]"},
		{"in an any field", withAny{V: &secret{"t"}}, "secret at .V"},
		{"func", func() {}, "func()"},
		{"nil func", (func())(nil), "func()"},
		{"empty slice of funcs", []func(){}, "func() at [i]"},
		{"channel", make(chan int), "chan int"},
		{"unsafe pointer", unsafe.Pointer(&s), "unsafe.Pointer"},
		{"uintptr", uintptr(1), "uintptr"},
		{"complex", complex(1, 2), "complex128"},
		{"func in map[string]any", map[string]any{"f": func() {}}, `func() at ["f"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Delete("k")
			var err error
			require.NotPanics(t, func() { err = s.Set("k", tc.v) })
			require.Error(t, err, "Set(%T) must refuse", tc.v)
			require.ErrorIs(t, err, ErrUnsupportedValue)
			require.Contains(t, err.Error(), tc.in)
			require.False(t, s.Has("k"), "a refused Set stores nothing")
		})
	}
}

// TestValueSetAcceptsWhatComesBack: the refusals stop at what would be
// lost. A struct with no fields, fields tagged "-", unexported fields next
// to exported ones (not stored, as encoding/json and gob) and types with
// their own encoding methods (time.Time has no exported fields) pass.
func TestValueSetAcceptsWhatComesBack(t *testing.T) {
	s := valueSession(t)
	for _, v := range []any{
		empty{}, embedded{secret: secret{"t"}, Plain: Plain{A: 1}}, skipped{Name: "n", F: func() {}, c: make(chan int)}, mixed{Name: "n", token: "t"},
		time.Now(), []time.Time{}, map[string]any{"t": time.Now(), "n": nil}, (*secret)(nil) == nil,
		Plain{A: 1}, tagged{ID: 1}, asArray{N: 1}, &node{N: 1, Next: &node{N: 2}},
	} {
		require.NoError(t, s.Set("k", v), "%T", v)
	}
}

// TestValueMixedStructKeepsExportedFields documents the rule for a struct
// with both kinds of fields: the exported ones come back, the unexported
// ones are left as they are in the destination.
func TestValueMixedStructKeepsExportedFields(t *testing.T) {
	s := valueSession(t)
	require.NoError(t, s.Set("k", mixed{Name: "n", token: "t"}))
	var got mixed
	found, err := s.Get("k", &got)
	require.True(t, found)
	require.NoError(t, err)
	require.Equal(t, mixed{Name: "n"}, got)
}

// TestValueGetRefusesIntegersThatDoNotFit: issue 18 point 5,
// Set(uint64(math.MaxUint64)) read into an int64 gave -1, with no error.
// An integer that does not fit its destination is an error, at the top or
// anywhere inside, and the destination is left as it was.
func TestValueGetRefusesIntegersThatDoNotFit(t *testing.T) {
	s := valueSession(t)
	for _, tc := range []struct {
		name string
		v    any
		dst  any // a pointer to a non-zero value, which must stay
		in   string
	}{
		{"MaxUint64 into int64", uint64(math.MaxUint64), ptr(int64(7)), "18446744073709551615 does not fit in int64"},
		{"MaxInt64+1 into int", uint64(math.MaxInt64) + 1, ptr(7), "does not fit in int"},
		{"300 into int8", 300, ptr(int8(7)), "300 does not fit in int8"},
		{"128 into int8", 128, ptr(int8(7)), "int8"},
		{"-129 into int8", -129, ptr(int8(7)), "-129 does not fit in int8"},
		{"-1 into uint", -1, ptr(uint(7)), "-1 does not fit in uint"},
		{"-1 into uint64", int64(-1), ptr(uint64(7)), "uint64"},
		{"256 into uint8", 256, ptr(uint8(7)), "uint8"},
		{"70000 into uint16", 70000, ptr(uint16(7)), "uint16"},
		{"1<<31 into int32", int64(1) << 31, ptr(int32(7)), "int32"},
		{"MinInt64 into uint32", int64(math.MinInt64), ptr(uint32(7)), "uint32"},
		{"named type", 300, ptr(level(7)), "level"},
		{"struct field", struct{ N int }{300}, ptr(struct{ N int8 }{7}), "300 at .N does not fit in int8"},
		{"slice element", []int{1, 300}, ptr([]int8{7}), "at [1]"},
		{"int64 field", struct{ N uint64 }{math.MaxUint64}, ptr(struct{ N int64 }{7}), "18446744073709551615 at .N does not fit in int64"},
		{"int elements", []uint64{1, math.MaxInt64 + 1}, ptr([]int{7}), "9223372036854775808 at [1] does not fit in int"},
		{"map value", map[string]int{"a": -1}, ptr(map[string]uint8{"z": 7}), `-1 at ["a"] does not fit in uint8`},
		{"map key", map[int]string{-5: "a"}, ptr(map[uint]string{7: "z"}), "(a map key)"},
		{"pointer", 1000, ptr(ptr(int8(7))), "int8"},
		{"array-encoded struct", asArray{N: 1000}, ptr(struct {
			_msgpack struct{} `msgpack:",as_array"`
			N        int8
			S        string
		}{N: 7}), "at .N"},
		{"a key twice, the second wins", struct {
			A int `msgpack:"x"`
			B int `msgpack:"x"`
		}{1, 300}, ptr(struct {
			N int8 `msgpack:"x"`
		}{7}), "300 at .N does not fit in int8"},
		{"tagged field", tagged{ID: 1, Level: 3}, ptr(struct {
			ID uint8 `msgpack:"id"`
		}{7}), ""}, // fits: checked below not to fail
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, s.Set("k", tc.v))
			before := reflect.ValueOf(tc.dst).Elem().Interface()
			found, err := s.Get("k", tc.dst)
			require.True(t, found)
			if tc.in == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err, "got %v", reflect.ValueOf(tc.dst).Elem())
			require.Contains(t, err.Error(), tc.in)
			require.Equal(t, before, reflect.ValueOf(tc.dst).Elem().Interface(), "dst must be left as it was")
		})
	}
}

// TestValueGetIntegersAtTheLimits: what fits, fits, through the fast paths
// for the common destinations and through reflection for the others.
func TestValueGetIntegersAtTheLimits(t *testing.T) {
	s := valueSession(t)
	check := func(v, dst, want any) {
		t.Helper()
		require.NoError(t, s.Set("k", v))
		_, err := s.Get("k", dst)
		require.NoError(t, err, "%T %v into %T", v, v, dst)
		require.Equal(t, want, reflect.ValueOf(dst).Elem().Interface())
	}
	check(127, new(int8), int8(127))
	check(-128, new(int8), int8(-128))
	check(255, new(uint8), uint8(255))
	check(uint64(math.MaxUint64), new(uint64), uint64(math.MaxUint64))
	check(uint64(math.MaxUint64), new(uint), uint(math.MaxUint))
	check(int64(math.MinInt64), new(int64), int64(math.MinInt64))
	check(int64(math.MaxInt64), new(int), math.MaxInt)
	check(math.MaxInt32, new(int32), int32(math.MaxInt32))
	check(math.MinInt32, new(int32), int32(math.MinInt32))
	check(math.MaxUint32, new(uint32), uint32(math.MaxUint32))
	check(uint8(200), new(int16), int16(200))
	check(nil, new(int), 0) // nil decodes as zero, as msgpack does
	check(struct{ N int64 }{-5}, new(struct{ N int16 }), struct{ N int16 }{-5})
	check([]int{1, 2, 3}, new([]uint16), []uint16{1, 2, 3})
	check(map[uint16]int{1: 2}, new(map[int8]int8), map[int8]int8{1: 2})
}

// TestValueGetIntoAny: issue 18 point 5, Set(42) read into an any gave an
// int8, so v.(int) panicked, and a map[string]any came back with whatever
// integer widths msgpack picked. Into an interface every integer is an
// int64 (uint64 above MaxInt64), every float a float64.
func TestValueGetIntoAny(t *testing.T) {
	s := valueSession(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
		want any
	}{
		{"small int", 42, int64(42)},
		{"negative int", -3, int64(-3)},
		{"int over 255", 300, int64(300)},
		{"int8", int8(-100), int64(-100)},
		{"uint16", uint16(60000), int64(60000)},
		{"uint64 in range", uint64(5), int64(5)},
		{"MaxUint64", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"MinInt64", int64(math.MinInt64), int64(math.MinInt64)},
		{"float32", float32(1.5), float64(1.5)},
		{"float64", 2.25, 2.25},
		{"string", "héllo", "héllo"},
		{"long string", string(make([]byte, 40)), string(make([]byte, 40))},
		{"bytes stay bytes", []byte{1, 2}, []byte{1, 2}},
		{"bool", true, true},
		{"nil", nil, nil},
		{"duration", 3 * time.Second, int64(3 * time.Second)},
		{"slice", []int{1, 300, -70000}, []any{int64(1), int64(300), int64(-70000)}},
		{"map", map[string]any{"a": 1, "b": uint8(200), "c": []any{int16(-2), float32(0.5)}, "d": map[string]int{"e": 1 << 40}},
			map[string]any{"a": int64(1), "b": int64(200), "c": []any{int64(-2), float64(0.5)}, "d": map[string]any{"e": int64(1 << 40)}}},
		{"struct", Plain{A: 7, B: "x"}, map[string]any{"A": int64(7), "b": "x"}},
		{"pointer", ptr(9), int64(9)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, s.Set("k", tc.v))
			var got any
			found, err := s.Get("k", &got)
			require.True(t, found)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("time", func(t *testing.T) {
		require.NoError(t, s.Set("k", at))
		var got any
		_, err := s.Get("k", &got)
		require.NoError(t, err)
		require.IsType(t, time.Time{}, got)
		require.True(t, at.Equal(got.(time.Time)))
	})
	t.Run("map[string]any destination", func(t *testing.T) {
		require.NoError(t, s.Set("k", map[string]int{"a": 1, "b": 300}))
		var got map[string]any
		_, err := s.Get("k", &got)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"a": int64(1), "b": int64(300)}, got)
	})
	t.Run("[]any destination", func(t *testing.T) {
		require.NoError(t, s.Set("k", []uint16{1, 60000}))
		var got []any
		_, err := s.Get("k", &got)
		require.NoError(t, err)
		require.Equal(t, []any{int64(1), int64(60000)}, got)
	})
	t.Run("any fields and nested maps", func(t *testing.T) {
		type deep struct {
			V  any
			M  map[string]any
			L  []any
			P  *withAny
			MM map[int]any
			A  [2]any
		}
		require.NoError(t, s.Set("k", deep{V: 1, M: map[string]any{"x": 2}, L: []any{3}, P: &withAny{V: float32(4)},
			MM: map[int]any{5: 6}, A: [2]any{7, nil}}))
		var got deep
		_, err := s.Get("k", &got)
		require.NoError(t, err)
		require.Equal(t, deep{V: int64(1), M: map[string]any{"x": int64(2)}, L: []any{int64(3)}, P: &withAny{V: float64(4)},
			MM: map[int]any{5: int64(6)}, A: [2]any{int64(7), nil}}, got)
	})
	t.Run("a map with non-string keys into any is an error", func(t *testing.T) {
		require.NoError(t, s.Set("k", map[int]string{1: "a"}))
		var got any
		_, err := s.Get("k", &got)
		require.Error(t, err)
		var typed map[int]string
		_, err = s.Get("k", &typed)
		require.NoError(t, err)
		require.Equal(t, map[int]string{1: "a"}, typed)
	})
}

// TestValueGetReusedDestination: reading into a destination that already
// holds what an earlier Get put in it works (msgpack refuses an any
// holding a non-pointer, and panics on such an interface in a struct or
// slice).
func TestValueGetReusedDestination(t *testing.T) {
	s := valueSession(t)
	require.NoError(t, s.Set("a", 1))
	require.NoError(t, s.Set("b", "two"))
	var v any
	for _, k := range []string{"a", "b", "a"} {
		_, err := s.Get(k, &v)
		require.NoError(t, err)
	}
	require.Equal(t, int64(1), v)

	require.NoError(t, s.Set("w", withAny{V: 5}))
	var w withAny
	require.NotPanics(t, func() {
		for range 2 {
			_, err := s.Get("w", &w)
			require.NoError(t, err)
		}
	})
	require.Equal(t, withAny{V: int64(5)}, w)

	require.NoError(t, s.Set("l", []any{1, "x"}))
	var l []any
	require.NotPanics(t, func() {
		for range 2 {
			_, err := s.Get("l", &l)
			require.NoError(t, err)
		}
	})
	require.Equal(t, []any{int64(1), "x"}, l)

	// An any holding a pointer is decoded into, as encoding/json does.
	n := 0
	v = &n
	_, err := s.Get("a", &v)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// TestValueRoundTrip: what Set stores, Get gives back into the same type,
// through a save and a load.
func TestValueRoundTrip(t *testing.T) {
	st := newTestStore(t, Config{})
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	cases := []any{
		0, 42, -1, math.MaxInt, math.MinInt, int8(-128), int16(300), int32(-70000), int64(math.MaxInt64),
		uint(math.MaxUint), uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64),
		float32(1.25), math.Pi, math.Inf(-1), "", "text", []byte{0, 1}, true, false,
		level(-3), time.Duration(90 * time.Second), [3]int{1, 2, 3},
		[]string{"a", "b"}, []int{}, map[string]int{"a": 1}, map[int]string{1: "a"}, map[string][]int{"a": {1}},
		Plain{A: 1, B: "b"}, &Plain{A: 2}, tagged{ID: 9, Level: -1}, asArray{N: -5, S: "s"},
		struct{ Plain }{Plain{A: 3}}, &node{N: 1, Next: &node{N: 2}}, empty{},
		map[string]any{"s": "x", "n": int64(1), "f": 1.5, "l": []any{"y", int64(2)}, "m": map[string]any{"t": true}},
	}
	s := st.NewSession(t.Context())
	for i, v := range cases {
		require.NoError(t, s.Set(string(rune('a'+i)), v), "%T", v)
	}
	tok, err := st.Save(t.Context(), s)
	require.NoError(t, err)
	s, err = st.Load(t.Context(), tok)
	require.NoError(t, err)
	for i, v := range cases {
		dst := reflect.New(reflect.TypeOf(v))
		found, err := s.Get(string(rune('a'+i)), dst.Interface())
		require.True(t, found)
		require.NoError(t, err, "%T", v)
		require.Equal(t, v, dst.Elem().Interface(), "%T", v)
	}
	require.NoError(t, s.Set("t", at))
	var got time.Time
	_, err = s.Get("t", &got)
	require.NoError(t, err)
	require.True(t, at.Equal(got), "time.Time comes back as the same instant (in time.Local)")
}

// TestValueErrorsWrap: the sentinel is reachable with errors.Is through
// Set's wrapping, and Set's message names the key.
func TestValueErrorsWrap(t *testing.T) {
	s := valueSession(t)
	err := s.Set("user", secret{"t"})
	require.True(t, errors.Is(err, ErrUnsupportedValue))
	require.Contains(t, err.Error(), `"user"`)
	require.Contains(t, err.Error(), "none of its fields is exported")
}

// FuzzValueDecode: for any value a peer could send (well-formed msgpack),
// Get agrees with msgpack wherever the integers fit, refuses only where
// one does not, never lets one through wrapped, and never panics.
func FuzzValueDecode(f *testing.F) {
	for _, v := range []any{1, -1, 300, uint64(math.MaxUint64), "s", 1.5, []int{1, 300},
		map[string]any{"N": 300, "M": []int{-1, 7}, "P": 1 << 40, "A": int8(3)},
		struct {
			N int
			M []int
		}{-200, []int{65536}}, asArray{N: 1000},
		map[string]any{"N": uint64(math.MaxUint64), "M": []uint64{1, 1 << 63}, "P": map[string]uint64{"a": 1 << 63}}} {
		b, err := msgpack.Marshal(v)
		require.NoError(f, err)
		f.Add(b)
	}
	// A key twice, the second into the interface the first filled: msgpack
	// panics; Get says so in an error.
	f.Add([]byte("\x82\xa1A\xcd\x01\x00\xa1A\xd0\x30"))
	type target struct {
		N int8
		M []uint16
		P *int32
		A any
	}
	type wide struct { // only int64 and int: checkFit only if a Uint64 code is there
		N int64
		M []int
		P map[string]int
	}
	dsts := []func() any{
		func() any { return new(int8) }, func() any { return new(uint16) }, func() any { return new(int64) },
		func() any { return new(uint64) }, func() any { return new(int) }, func() any { return new(uint) },
		func() any { return new(target) }, func() any { return new(map[string]int8) }, func() any { return new(any) },
		func() any { return new([]any) }, func() any { return new(map[string]any) }, func() any { return new(asArray) },
		func() any { return new(wide) },
	}
	// Twins of the destinations with integers, the integers as any: what
	// was stored, unwrapped, to compare with what Get let through.
	twins := map[reflect.Type]func() any{
		reflect.TypeFor[*target](): func() any {
			return new(struct {
				N any
				M []any
				P any
				A any
			})
		},
		reflect.TypeFor[*wide](): func() any {
			return new(struct {
				N any
				M []any
				P map[string]any
			})
		},
		reflect.TypeFor[*map[string]int8](): func() any { return new(map[string]any) },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if wire.CheckValue(data, wire.Limits{}) != nil {
			return // a peer's value is refused before it is stored
		}
		for _, mk := range dsts {
			ours, theirs := mk(), mk()
			errOurs := decodeValue(data, ours)
			errTheirs, panicked := unmarshalRecover(data, theirs)
			if panicked {
				continue // msgpack panics; decodeValue said so in an error
			}
			if errOurs != nil {
				if errTheirs == nil {
					var re *rangeError
					require.ErrorAs(t, errOurs, &re, "%T: msgpack decodes it", ours)
				}
				continue
			}
			require.NoError(t, errTheirs, "%T", ours)
			if p, ok := theirs.(*any); ok {
				*p, _ = normAny(*p)
			} else if plan := getPlanOf(reflect.TypeOf(theirs).Elem()); plan.norm {
				normalize(reflect.ValueOf(theirs).Elem(), plan)
			}
			require.Equal(t, marshalSorted(t, theirs), marshalSorted(t, ours), "%T", ours)

			twin := twins[reflect.TypeOf(ours)]
			if reflect.TypeOf(ours).Elem().Kind() < reflect.Float32 { // the integers
				twin = func() any { return new(any) }
			}
			if twin != nil {
				tw := twin()
				if err, panicked := unmarshalRecover(data, tw); err == nil && !panicked {
					require.Equal(t, numbers(t, tw), numbers(t, ours), "%T: an integer went through wrapped", ours)
				}
			}
		}
	})
}

// numbers prints v with every number as its value whatever its type and
// nil as 0, as a destination of integers holds a nil.
func numbers(t *testing.T, v any) string {
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	var back any
	require.NoError(t, msgpack.Unmarshal(b, &back))
	var zeroNils func(any) any
	zeroNils = func(x any) any {
		switch y := x.(type) {
		case nil:
			return 0
		case []any:
			for i := range y {
				y[i] = zeroNils(y[i])
			}
		case map[string]any:
			for k := range y {
				y[k] = zeroNils(y[k])
			}
		}
		return x
	}
	return fmt.Sprintf("%v", zeroNils(back))
}

// unmarshalRecover is msgpack.Unmarshal, reporting whether it panicked.
func unmarshalRecover(data []byte, dst any) (err error, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	return msgpack.Unmarshal(data, dst), false
}

// marshalSorted is v as msgpack would give it back into an any, printed
// (maps in key order, NaN equal to itself), for comparing.
func marshalSorted(t *testing.T, v any) string {
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	var back any
	require.NoError(t, msgpack.Unmarshal(b, &back))
	return fmt.Sprintf("%#v", back)
}

func ptr[T any](v T) *T { return &v }

// Values outlive releases: a struct stored by one release reads into the
// next one's version of it as docs/values.md says.
func TestValueEvolution(t *testing.T) {
	type userV1 struct {
		Name  string
		Quota int64
		Old   string
	}
	type userV2 struct {
		Name    string
		Quota   int32
		Added   bool
		Renamed string `msgpack:"Old"`
	}
	st := newTestStore(t, Config{})
	s := st.NewSession(t.Context())
	require.NoError(t, s.Set("user", userV1{Name: "alice", Quota: 7, Old: "kept by its tag"}))

	var v2 userV2
	found, err := s.Get("user", &v2)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, userV2{Name: "alice", Quota: 7, Renamed: "kept by its tag"}, v2,
		"added: zero; removed: skipped; renamed with the old name as tag: kept; narrowed: fits")

	require.NoError(t, s.Set("user", userV1{Name: "bob", Quota: 3_000_000_000}))
	_, err = s.Get("user", &v2)
	assert.ErrorContains(t, err, "Quota", "a value that no longer fits names the field")

	// And back: the old release reads what the new one wrote.
	require.NoError(t, s.Set("user", userV2{Name: "carol", Quota: 9, Added: true, Renamed: "r"}))
	var v1 userV1
	_, err = s.Get("user", &v1)
	require.NoError(t, err)
	assert.Equal(t, userV1{Name: "carol", Quota: 9, Old: "r"}, v1)
}
