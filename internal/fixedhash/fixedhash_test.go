package fixedhash

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The values are fixed: digests and placements compare across nodes and
// releases. FNV-1a's are the published test vectors, fmix64's MurmurHash3's.
func TestHashesAreFixed(t *testing.T) {
	assert.Equal(t, uint64(0xcbf29ce484222325), String(Offset, ""))
	assert.Equal(t, uint64(0xaf63dc4c8601ec8c), String(Offset, "a"))
	assert.Equal(t, uint64(0x85944171f73967e8), String(Offset, "foobar"))
	assert.Equal(t, String(String(Offset, "\x01"), "\x00\x00\x00\x00\x00\x00\x00"), Uint64(Offset, 1), "little-endian bytes")
	assert.Zero(t, Mix(0))
	assert.Equal(t, uint64(0xb456bcfc34c2cb2c), Mix(1), "MurmurHash3's fmix64(1)")
}
