package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClockPayloadCarriesTheWallClockToTheNanosecond(t *testing.T) {
	wall := time.Date(2026, 12, 7, 9, 30, 0, 123456789, time.UTC)
	b := encodeClockPayload(wall)
	require.Len(t, b, clockPayloadLen)
	got, ok := decodeClockPayload(b)
	require.True(t, ok)
	assert.True(t, got.Equal(wall), "got %v", got)
}

// Whatever is not a clock reading of this version is ignored: what older
// releases send (nothing), a newer version, a truncated or padded
// payload, another tag, a wall clock before 1970.
func TestClockPayloadDecoderIgnoresAnythingElse(t *testing.T) {
	good := encodeClockPayload(time.Unix(1_800_000_000, 0))
	with := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, b := range map[string][]byte{
		"none":        nil,
		"empty":       {},
		"truncated":   good[:len(good)-1],
		"padded":      append(append([]byte(nil), good...), 0),
		"other tag":   with(func(b []byte) []byte { b[0] = 'x'; return b }),
		"version 2":   with(func(b []byte) []byte { b[len(clockTag)] = 2; return b }),
		"version 0":   with(func(b []byte) []byte { b[len(clockTag)] = 0; return b }),
		"zero wall":   encodeClockPayload(time.Unix(0, 0)),
		"before 1970": encodeClockPayload(time.Unix(-1, 0)),
		"all ones": with(func(b []byte) []byte {
			copy(b[len(clockTag)+1:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			return b
		}),
		"msgpack": {0x81, 0xa4, 'w', 'a', 'l', 'l', 0xcf, 1, 2, 3, 4, 5, 6, 7, 8},
	} {
		_, ok := decodeClockPayload(b)
		assert.False(t, ok, name)
	}
}

// The decoder never panics, and what it accepts is exactly an encoding of
// the time it returns.
func FuzzDecodeClockPayload(f *testing.F) {
	f.Add(encodeClockPayload(time.Unix(1_800_000_000, 5)))
	f.Add([]byte{})
	f.Add([]byte("psclk\x01"))
	f.Add([]byte("psclk\x02\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wall, ok := decodeClockPayload(b)
		if !ok {
			return
		}
		if wall.UnixNano() <= 0 {
			t.Fatalf("accepted a wall clock at or before 1970: %v", wall)
		}
		if string(encodeClockPayload(wall)) != string(b) {
			t.Fatalf("accepted %x, which is not the encoding of %v", b, wall)
		}
	})
}
