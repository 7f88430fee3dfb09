package cluster

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidation(t *testing.T) {
	h := newRecorder()
	ok := Config{Name: "a", Handler: h}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"loopback without key is fine", func(c *Config) {}, ""},
		{"missing name", func(c *Config) { c.Name = "" }, "Name is required"},
		{"long name", func(c *Config) { c.Name = string(bytes.Repeat([]byte("x"), 200)) }, "Name"},
		{"missing handler", func(c *Config) { c.Handler = nil }, "Handler is required"},
		{"bind not an IP", func(c *Config) { c.BindAddr = "localhost" }, "not an IP"},
		{"unspecified bind without advertise", func(c *Config) { c.BindAddr = "0.0.0.0"; c.Keys = [][]byte{testKey1} }, "AdvertiseAddr"},
		{"unspecified v6 bind without advertise", func(c *Config) { c.BindAddr = "::"; c.Keys = [][]byte{testKey1} }, "AdvertiseAddr"},
		{"non-loopback without key", func(c *Config) { c.BindAddr = "10.1.2.3" }, "Config.Keys is empty and Config.BindAddr 10.1.2.3 is not loopback"},
		{"unspecified bind without key asks for the key first", func(c *Config) { c.BindAddr = "0.0.0.0" }, "make one with `openssl rand -base64 32`"},
		{"non-loopback insecure", func(c *Config) { c.BindAddr = "10.1.2.3"; c.Insecure = true }, ""},
		{"non-loopback with key", func(c *Config) { c.BindAddr = "10.1.2.3"; c.Keys = [][]byte{testKey1} }, ""},
		{"short key", func(c *Config) { c.Keys = [][]byte{make([]byte, 16)} }, "Config.Keys[0] is 16 bytes, want 32"},
		{"a brace in a value is no field", func(c *Config) { c.BindAddr = "{Keys}" }, `Config.BindAddr "{Keys}" is not an IP`},
		{"bad advertise", func(c *Config) { c.AdvertiseAddr = "0.0.0.0" }, "AdvertiseAddr"},
		{"bad port", func(c *Config) { c.StreamPort = 70000 }, "StreamPort"},
		{"long label", func(c *Config) { c.Label = string(bytes.Repeat([]byte("x"), 300)) }, "Label"},
		{"negative", func(c *Config) { c.MaxFrame = -1 }, "Config.MaxFrame must not be negative"},
		{"one copy", func(c *Config) { c.Copies = 1 }, "Config.Copies 1 is out of range"},
		{"too many copies", func(c *Config) { c.Copies = maxCopies + 1 }, "Config.Copies 256 is out of range"},
		{"two copies", func(c *Config) { c.Copies = 2 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			got, err := c.withDefaults()
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotNil(t, got.Logger)
				assert.Equal(t, DefaultMaxFrame, got.MaxFrame)
				assert.Equal(t, DefaultDialTimeout, got.DialTimeout)
				assert.Equal(t, DefaultRejoinInterval, got.RejoinInterval)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "cluster: "), err.Error())
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, ce.Message(func(f string) string { return "Other." + f }), "Other."+ce.Field,
				"a wrapper words the message in its own field names")
		})
	}
}

// Binding every interface without a key is first of all a node open to
// anyone: the first error asks for the key, not for AdvertiseAddr.
func TestConfigAllInterfacesWithoutKeyAsksForTheKey(t *testing.T) {
	_, err := Config{Name: "a", Handler: newRecorder(), BindAddr: "0.0.0.0"}.withDefaults()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Keys", ce.Field)
	assert.Equal(t, "cluster: Config.Keys is empty and Config.BindAddr 0.0.0.0 is not loopback: "+
		"anyone who can reach the ports could read and forge what the nodes exchange. "+
		"Give every node the same 32-byte key (make one with `openssl rand -base64 32`), "+
		"or set Config.Insecure to run unencrypted", err.Error())
	assert.NotContains(t, err.Error(), "AdvertiseAddr")
}

func TestNewRejectsNonLoopbackWithoutKey(t *testing.T) {
	_, err := New(Config{Name: "a", Handler: newRecorder(), BindAddr: "0.0.0.0", AdvertiseAddr: "127.0.0.1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Insecure")
}

func TestDefaultsBindLoopback(t *testing.T) {
	n := newTestNode(t, func(c *Config) { c.Tune = nil; c.RejoinInterval = 0; c.DialTimeout = 0 })
	assert.Contains(t, n.Self().Addr, "127.0.0.1:")
	assert.Equal(t, "127.0.0.1", n.ml.LocalNode().Addr.String())
}
