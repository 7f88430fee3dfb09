package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/peersession/peersession/examples/twonode/demo"
	"github.com/peersession/peersession/internal/testlog"
	"github.com/peersession/peersession/internal/testnet"
	"github.com/stretchr/testify/require"
)

// TestRunNode runs two nodes as two `-node` processes would, started at
// once, each joining the other, with a key file, and checks that each
// lists both members on /cluster.
func TestRunNode(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))

	var gossip [2]string
	var release [2]func()
	for i := range gossip {
		gossip[i], release[i] = testnet.ReserveAddr(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var outs [2]testlog.Buffer // each prints its URL once serving
	done := make(chan error, 2)
	for i, name := range []string{"a", "b"} {
		f := nodeFlags{name: name, http: "127.0.0.1:0", gossip: gossip[i], join: gossip[1-i], keyFile: keyFile, consistency: "sync"}
		release[i]()
		go func() {
			err := runNode(ctx, f, &outs[i])
			if errors.Is(err, syscall.EADDRINUSE) {
				// Taken since it was released (a local port of the other
				// node's connections): any port will do, the node joins
				// the other all the same.
				f.gossip = "127.0.0.1:0"
				err = runNode(ctx, f, &outs[i])
			}
			done <- err
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range 2 {
			require.NoError(t, <-done)
		}
	})
	serving := regexp.MustCompile(`serving (http://\S+)`)
	for i := range outs {
		var u string
		require.Eventually(t, func() bool {
			m := serving.FindStringSubmatch(outs[i].String())
			if m != nil {
				u = m[1]
			}
			return m != nil
		}, 30*time.Second, 20*time.Millisecond, "node %d never served", i)
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
		"data-dir no key": {name: "a", http: "127.0.0.1:1", gossip: "127.0.0.1:1", dataDir: "/tmp/x"},
	} {
		_, err := f.config()
		require.Error(t, err, name)
	}
}

// TestNodeDataDirSurvivesRestart runs a -node with -data-dir, logs in,
// stops it and starts it again on its directory: still logged in.
func TestNodeDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cluster.key")
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, os.WriteFile(keyFile, []byte(key), 0o600))
	f := nodeFlags{name: "a", http: "127.0.0.1:0", gossip: "127.0.0.1:0", keyFile: keyFile, dataDir: filepath.Join(dir, "data")}
	cfg, err := f.config()
	require.NoError(t, err)
	require.Equal(t, f.dataDir, cfg.DataDir)

	n, err := demo.StartNode(t.Context(), cfg)
	require.NoError(t, err)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(n.URL()+"/login", url.Values{"user": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, n.Stop(t.Context()))

	n, err = demo.StartNode(t.Context(), cfg)
	require.NoError(t, err)
	defer n.Stop(context.Background())
	u, _ := url.Parse(n.URL())
	old, _ := url.Parse(resp.Request.URL.String())
	jar.SetCookies(u, jar.Cookies(old)) // the new node's port differs
	resp, err = client.Get(n.URL() + "/cart")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), "alice")
}
