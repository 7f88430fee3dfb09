package msgp

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUintNReadsBigEndianOfEachSize(t *testing.T) {
	p := []byte{0x81, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff}
	for _, tc := range []struct {
		n    int
		want uint64
	}{
		{1, 0x81},
		{2, 0x8102},
		{4, 0x81020304},
		{8, 0x8102030405060708},
	} {
		assert.Equal(t, tc.want, UintN(p, tc.n), "%d bytes", tc.n)
	}
}

// FixedLen gives the lengths of msgpack's spec for the codes followed by
// a fixed number of bytes, and zero for every other code: fixints, which
// are their own value, and the codes followed by a length.
func TestFixedLenOfEachCode(t *testing.T) {
	want := map[byte]int{
		0xc0: 1, 0xc2: 1, 0xc3: 1, // nil, false, true
		0xca: 5, 0xcb: 9, // float32, float64
		0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9, // uint8-64
		0xd0: 2, 0xd1: 3, 0xd2: 5, 0xd3: 9, // int8-64
	}
	for c := range 256 {
		assert.Equal(t, want[byte(c)], FixedLen(byte(c)), "code 0x%02x", c)
	}
}

func TestStrLenSizeOfEachCode(t *testing.T) {
	for c := range 256 {
		want := -1
		switch {
		case c >= 0xa0 && c <= 0xbf: // fixstr
			want = 0
		case c == 0xd9 || c == 0xc4: // str8, bin8
			want = 1
		case c == 0xda || c == 0xc5: // str16, bin16
			want = 2
		case c == 0xdb || c == 0xc6: // str32, bin32
			want = 4
		}
		assert.Equal(t, want, StrLenSize(byte(c)), "code 0x%02x", c)
	}
}
