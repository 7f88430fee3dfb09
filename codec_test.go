package peersession

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// encodeValue's shortcuts for common scalars must produce exactly what
// msgpack produces for them: stored values are compared and replicated as
// bytes.
func TestEncodeValueShortcutsMatchMsgpack(t *testing.T) {
	var ints []int64
	for _, b := range []int64{0, 31, 32, 127, 128, 255, 256, math.MaxUint16, math.MaxUint32, math.MaxInt64,
		-1, -32, -33, math.MinInt8, math.MinInt16, math.MinInt32, math.MinInt64} {
		for _, d := range []int64{-1, 0, 1} {
			if (d < 0 && b == math.MinInt64) || (d > 0 && b == math.MaxInt64) {
				continue
			}
			ints = append(ints, b+d)
		}
	}
	vals := []any{true, false}
	for _, n := range ints {
		vals = append(vals, n, int(n))
	}
	for _, v := range vals {
		want, err := msgpack.Marshal(v)
		require.NoError(t, err)
		got, err := encodeValue(v)
		require.NoError(t, err)
		require.Equal(t, want, got, "%T %v", v, v)
	}
}

// msgpackFields must see a struct's fields as msgpack does: the keys it
// lists are the keys msgpack writes, in the same order.
func TestCodecFieldsMatchMsgpack(t *testing.T) {
	type inner struct {
		A int
		b int
		C string `msgpack:"c"`
	}
	type Inner inner
	type shadow struct {
		A int
		Inner
	}
	type tagged struct {
		X  int    `msgpack:"x,omitempty"`
		Y  int    `msgpack:",omitempty"`
		Z  int    `msgpack:"-"`
		W  int    `msgpack:"w,alias:ww"`
		in inner  `msgpack:"in"`
		P  *Inner `msgpack:",inline"`
		Q  Inner  `msgpack:",noinline"`
	}
	type embeds struct {
		inner
		*Inner `msgpack:"ptr"`
		N      int
	}
	type noInline struct {
		Inner `msgpack:",noinline"`
	}
	for _, v := range []any{
		inner{A: 1, b: 2, C: "c"}, shadow{A: 1, Inner: Inner{A: 2, C: "c"}},
		tagged{X: 1, Y: 2, Z: 3, W: 4, P: &Inner{A: 5}}, embeds{inner{A: 1}, &Inner{A: 2}, 3}, noInline{Inner{A: 1}},
	} {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		d := msgpack.NewDecoder(bytes.NewReader(b))
		n, err := d.DecodeMapLen()
		require.NoError(t, err)
		var want []string
		for range n {
			k, err := d.DecodeString()
			require.NoError(t, err)
			want = append(want, k)
			require.NoError(t, d.Skip())
		}
		var got []string
		for _, f := range msgpackFields(reflect.TypeOf(v), 0).list {
			got = append(got, f.name)
		}
		require.Equal(t, want, got, "%T", v)
	}
	// An alias is a key Get decodes (and checks) too.
	type aliased struct {
		N int8 `msgpack:"n,alias:old"`
	}
	s := valueSession(t)
	require.NoError(t, s.Set("k", map[string]int{"old": 300}))
	_, err := s.Get("k", new(aliased))
	require.ErrorContains(t, err, "300 at .N does not fit in int8")
}
