package peersession

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// standalone matches "Config." not preceded by a letter: a field named as
// cluster.Config names it, not as the user wrote it (ClusterConfig.).
var standalone = regexp.MustCompile(`\bConfig\.`)

func TestParseKeyFormats(t *testing.T) {
	k := GenerateKey()
	k[0], k[1] = 0xfb, 0xff // so that standard and URL-safe base64 differ
	tests := []struct {
		name, text string
	}{
		{"standard base64", base64.StdEncoding.EncodeToString(k)},
		{"standard base64, newline", base64.StdEncoding.EncodeToString(k) + "\n"},
		{"standard base64 unpadded", base64.RawStdEncoding.EncodeToString(k)},
		{"URL-safe base64", base64.URLEncoding.EncodeToString(k)},
		{"URL-safe base64 unpadded", base64.RawURLEncoding.EncodeToString(k)},
		{"hex (openssl rand -hex 32)", hex.EncodeToString(k) + "\n"},
		{"hex upper case", strings.ToUpper(hex.EncodeToString(k))},
		{"surrounding space", "  " + base64.StdEncoding.EncodeToString(k) + " \r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.text)
			require.NoError(t, err)
			assert.Equal(t, k, got)
		})
	}
}

// Every error names the field the key is for, says how to make one, and
// never quotes the key.
func TestParseKeyErrors(t *testing.T) {
	k := GenerateKey()
	const how = "make one with `openssl rand -base64 32`, or GenerateKey in Go"
	tests := []struct {
		name, text, want string
	}{
		{"empty", " \n", "peersession: the cluster key (ClusterConfig.Keys) is empty; " + how},
		{"16 bytes", base64.StdEncoding.EncodeToString(k[:16]), "peersession: the cluster key (ClusterConfig.Keys) decodes from base64 to 16 bytes, want 32 (nor is it 64 hex digits); " + how},
		{"48 bytes", base64.StdEncoding.EncodeToString(append(k, k[:16]...)), "decodes from base64 to 48 bytes, want 32"},
		{"short hex", hex.EncodeToString(k[:31]), "is 62 hex digits, want 64"},
		{"neither", "not a key!", "peersession: the cluster key (ClusterConfig.Keys) is neither base64 nor hex (10 characters); " + how},
		{"hex with a typo", hex.EncodeToString(k)[:63] + "g", "decodes from base64 to 48 bytes, want 32 (nor is it 64 hex digits)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKey(tt.text)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "ClusterConfig.Keys")
			assert.NotRegexp(t, standalone, err.Error())
			if s := strings.TrimSpace(tt.text); s != "" {
				assert.NotContains(t, err.Error(), s, "the error quotes the key")
			}
		})
	}
}

func TestReadKeyFileFormats(t *testing.T) {
	k := GenerateKey()
	k[0] = 0x80 // not text
	tests := []struct {
		name    string
		content []byte
	}{
		{"base64 with newline (openssl rand -base64 32 > key)", []byte(base64.StdEncoding.EncodeToString(k) + "\n")},
		{"URL-safe base64", []byte(base64.RawURLEncoding.EncodeToString(k))},
		{"hex with newline (openssl rand -hex 32 > key)", []byte(hex.EncodeToString(k) + "\n")},
		{"raw 32 bytes (head -c 32 /dev/urandom > key)", k},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			require.NoError(t, os.WriteFile(path, tt.content, 0o600))
			got, err := ReadKeyFile(path)
			require.NoError(t, err)
			assert.Equal(t, k, got)
		})
	}
}

func TestReadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	_, err := ReadKeyFile(missing)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "peersession: read the cluster key (ClusterConfig.Keys): open "+missing)

	for name, content := range map[string][]byte{
		"31 raw bytes":     GenerateKey()[:31],
		"33 raw bytes":     append(GenerateKey(), 0x80),
		"32 bytes of text": []byte(strings.Repeat("k", 31) + "\n"),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			require.NoError(t, os.WriteFile(path, content, 0o600))
			_, err := ReadKeyFile(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "peersession: the cluster key (ClusterConfig.Keys) ")
			assert.Contains(t, err.Error(), "(in "+path+": the key as text, or 32 raw bytes)")
			assert.NotRegexp(t, standalone, err.Error())
		})
	}
}
