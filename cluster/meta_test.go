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
		make([]byte, memberlist.MetaMaxSize+1),
	}
	for _, b := range bad {
		_, err := decodeMeta(b)
		assert.Error(t, err, "%x", b)
	}
	_, err = nodeMeta{Name: string(make([]byte, 600)), Addr: "x"}.encode()
	assert.Error(t, err)
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
