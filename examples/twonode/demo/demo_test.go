package demo_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/examples/twonode/demo"
	"github.com/peersession/peersession/internal/testnet"
	"github.com/stretchr/testify/require"
)

func TestWalkthrough(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := demo.Start(ctx, demo.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })

	var out bytes.Buffer
	err = d.Walkthrough(ctx, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	require.Contains(t, out.String(), "Every step held.")
}

// TestNodesWithKeyFile starts two nodes as the -node flags do: fixed
// addresses, each joining the other, with a key read from a file.
func TestNodesWithKeyFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	key := bytes.Repeat([]byte{7}, 32)
	require.NoError(t, os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	got, err := peersession.ReadKeyFile(keyFile)
	require.NoError(t, err)
	require.Equal(t, key, got)

	// Both ports are released before a starts: a, joining b, would
	// otherwise wait for memberlist's TCP timeout on b's held port.
	var gossip []string
	var releases []func()
	for range 2 {
		addr, release := testnet.ReserveAddr(t)
		gossip, releases = append(gossip, addr), append(releases, release)
	}
	for _, release := range releases {
		release()
	}
	var nodes []*demo.Node
	for i, name := range []string{"a", "b"} {
		cfg := demo.NodeConfig{
			Name:        name,
			GossipAddr:  gossip[i],
			Join:        gossip, // its own address is skipped
			Keys:        [][]byte{got},
			Consistency: peersession.Sync,
			Memberlist:  demo.FastFailureDetection,
		}
		n, err := demo.StartNode(ctx, cfg)
		if errors.Is(err, syscall.EADDRINUSE) {
			// Taken since it was released: any port will do, the nodes
			// still find each other through the other address.
			cfg.GossipAddr = "127.0.0.1:0"
			n, err = demo.StartNode(ctx, cfg)
		}
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			var v demo.ClusterView
			getJSON(t, http.DefaultClient, n.URL()+"/cluster", &v)
			return v.Node == n.Name() && slices.Equal(v.Members, []string{"a", "b"})
		}, 10*time.Second, 20*time.Millisecond, "node %s never saw both members", n.Name())
	}

	// In Sync mode a login on a is held by b when the answer arrives.
	c := newClient(t)
	var cart demo.Cart
	postJSON(t, c, nodes[0].URL()+"/login", url.Values{"user": {"bob"}}, &cart)
	require.Equal(t, "bob", cart.User)
	getJSON(t, c, nodes[1].URL()+"/cart", &cart)
	require.Equal(t, demo.Cart{Node: "b", User: "bob", Items: []string{}}, cart)
}

// TestEndpoints checks the HTTP contract on a single node.
func TestEndpoints(t *testing.T) {
	srv := soloServer(t)
	c := newClient(t)

	raw := func(method, path string) string {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		require.NoError(t, err)
		return strings.TrimSpace(b.String())
	}
	require.JSONEq(t, `{"node":"solo","user":"","items":[]}`, raw("GET", "/cart"))
	require.JSONEq(t, `{"node":"solo","members":["solo"],"sessions":0}`, raw("GET", "/cluster"))

	// Adding to the cart needs a login.
	resp, err := c.PostForm(srv.URL+"/cart", url.Values{"item": {"x"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	var cart demo.Cart
	postJSON(t, c, srv.URL+"/login", url.Values{"user": {"carol"}}, &cart)
	require.Equal(t, demo.Cart{Node: "solo", User: "carol", Items: []string{}}, cart)
	postJSON(t, c, srv.URL+"/cart", url.Values{"item": {"tea"}}, &cart)
	require.Equal(t, []string{"tea"}, cart.Items)

	// A browser form gets 303 See Other back to the page.
	noFollow := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(srv.URL+"/cart", url.Values{"item": {"<b>cake</b>"}, "redirect": {"/"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/", resp.Header.Get("Location"))

	page := raw("GET", "/")
	require.Contains(t, page, `Served by node <span id="node">solo</span>`)
	require.Contains(t, page, "<li>tea</li>")
	require.Contains(t, page, "&lt;b&gt;cake&lt;/b&gt;", "items are escaped")

	// Logging in as someone else keeps nothing of the previous user's cart.
	postJSON(t, c, srv.URL+"/login", url.Values{"user": {"dan"}}, &cart)
	require.Equal(t, demo.Cart{Node: "solo", User: "dan", Items: []string{}}, cart)

	postJSON(t, c, srv.URL+"/logout", nil, &cart)
	require.JSONEq(t, `{"node":"solo","user":"","items":[]}`, raw("GET", "/cart"))
}

// soloServer serves the demo's handler on a node of its own, "solo".
func soloServer(t *testing.T) *httptest.Server {
	store, err := peersession.New(peersession.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	srv := httptest.NewServer(store.Middleware(demo.Handler("solo", store)))
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 5 * time.Second}
}

func getJSON(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func postJSON(t *testing.T, c *http.Client, u string, form url.Values, v any) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}
