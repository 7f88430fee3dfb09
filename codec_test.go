package peersession

import (
	"math"
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
