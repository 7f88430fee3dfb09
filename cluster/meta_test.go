package cluster

import (
	"bytes"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []nodeMeta{
		{Name: "a", Addr: "127.0.0.1:1"},
		{Name: string(bytes.Repeat([]byte("n"), maxNameLen)), Addr: "[::1]:65535", Leaving: true},
		{Name: "a", Addr: "127.0.0.1:1", Copies: 2},
		{Name: string(bytes.Repeat([]byte("n"), maxNameLen)), Addr: "[::1]:65535", Copies: maxCopies, Leaving: true},
	} {
		b, err := m.encode()
		require.NoError(t, err)
		assert.LessOrEqual(t, len(b), memberlist.MetaMaxSize)
		got, err := decodeMeta(b)
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
}

func TestMetaRejectsMalformed(t *testing.T) {
	good, err := nodeMeta{Name: "a", Addr: "h:1"}.encode()
	require.NoError(t, err)
	bad := [][]byte{
		nil,
		{metaVersion},
		{9, 0, 1, 'a', 3, 'h', ':', '1'},
		good[:len(good)-1],
		append(append([]byte(nil), good...), 0),
		{metaVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		{metaVersion, 0, 0, 0},
		append(append([]byte(nil), good...), 0),          // Copies 0 is never written
		append(append([]byte(nil), good...), 0x82, 0),    // not the minimal encoding of 2
		append(append([]byte(nil), good...), 2, 2),       // trailing byte after Copies
		append(append([]byte(nil), good...), 0x80, 0x02), // 256: over maxCopies
		make([]byte, memberlist.MetaMaxSize+1),
	}
	for _, b := range bad {
		_, err := decodeMeta(b)
		assert.Error(t, err, "%x", b)
	}
	_, err = nodeMeta{Name: string(make([]byte, 600)), Addr: "x"}.encode()
	assert.Error(t, err)
}

// A node in the default mode (Copies 0) advertises what a release without
// the field does, byte for byte, so the two read each other.
func TestMetaWithoutCopiesIsTheOldFormat(t *testing.T) {
	b, err := nodeMeta{Name: "a", Addr: "h:1"}.encode()
	require.NoError(t, err)
	assert.Equal(t, []byte{metaVersion, 0, 1, 'a', 3, 'h', ':', '1'}, b)
	b, err = nodeMeta{Name: "a", Addr: "h:1", Copies: 3}.encode()
	require.NoError(t, err)
	assert.Equal(t, []byte{metaVersion, 0, 1, 'a', 3, 'h', ':', '1', 3}, b)
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := nodeMeta{Name: "a", Addr: "h:1"}.encode()
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, err := m.encode()
		require.NoError(t, err)
		assert.Equal(t, b, again)
	})
}
