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
