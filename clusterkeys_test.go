package peersession

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseKey(t *testing.T) {
	k := GenerateKey()
	got, err := ParseKey(base64.StdEncoding.EncodeToString(k) + "\n")
	require.NoError(t, err)
	assert.Equal(t, k, got)

	_, err = ParseKey("not base64!")
	assert.ErrorContains(t, err, "head -c 32 /dev/urandom | base64")
	_, err = ParseKey(base64.StdEncoding.EncodeToString(k[:16]))
	assert.ErrorContains(t, err, "16 bytes, want 32")
}

func TestReadKeyFile(t *testing.T) {
	k := GenerateKey()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600))
	got, err := ReadKeyFile(path)
	require.NoError(t, err)
	assert.Equal(t, k, got)
	_, err = ReadKeyFile(filepath.Join(t.TempDir(), "missing"))
	assert.Error(t, err)
}
