package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunNode runs two nodes as two `-node` processes would, with a key
// file, and checks that each lists both members on /cluster.
func TestRunNode(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))

	gossip := []string{freeAddr(t), freeAddr(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var urls []string
	done := make(chan error, 2)
	for i, name := range []string{"a", "b"} {
		httpAddr := freeAddr(t)
		urls = append(urls, "http://"+httpAddr)
		f := nodeFlags{name: name, http: httpAddr, gossip: gossip[i], join: gossip[1-i], keyFile: keyFile, consistency: "sync"}
		go func() { done <- runNode(ctx, f, io.Discard) }()
	}
	t.Cleanup(func() {
		cancel()
		for range 2 {
			require.NoError(t, <-done)
		}
	})
	for _, u := range urls {
		require.Eventually(t, func() bool {
			resp, err := http.Get(u + "/cluster")
			if err != nil {
				return false // not serving yet
			}
			defer resp.Body.Close()
			var v struct{ Members []string }
			return json.NewDecoder(resp.Body).Decode(&v) == nil && slices.Equal(v.Members, []string{"a", "b"})
		}, 30*time.Second, 20*time.Millisecond, "%s never listed both members", u)
	}
}

func TestNodeFlagsErrors(t *testing.T) {
	for name, f := range map[string]nodeFlags{
		"no http":         {name: "a", gossip: "127.0.0.1:1"},
		"no gossip":       {name: "a", http: "127.0.0.1:1"},
		"bad consistency": {name: "a", http: "127.0.0.1:1", gossip: "127.0.0.1:1", consistency: "eventual"},
		"missing key":     {name: "a", http: "127.0.0.1:1", gossip: "127.0.0.1:1", keyFile: "/nonexistent"},
	} {
		_, err := f.config()
		require.Error(t, err, name)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}
