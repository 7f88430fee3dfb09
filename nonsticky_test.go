package peersession

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNonStickyClientSeesItsOwnWrites(t *testing.T) {
	for _, mode := range []Consistency{Async, Sync} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			eachMode(t, func(t *testing.T, opts func(*Config)) {
				// Three nodes: with two copies, a session may be held by
				// neither node the client alternates between.
				tc := newTestCluster(t, opts)
				nodes := tc.startAll("a", "b", "c")
				alternate(t, nodes[0], nodes[1], 40, "")
			}, func(c *Config) { c.Cluster.Consistency = mode })
		})
	}
}

// alternate serves testApp on a and b and sends it steps writes through
// one browser (one cookie jar) and a balancer alternating on every
// request: the jar sends the cookie to both (same host). Write i, on one
// node, must succeed, and the read that follows, on the other, must see it.
// The browser starts with the session cookie tok, if not "".
func alternate(t *testing.T, a, b *Store, steps int, tok string) {
	t.Helper()
	srvA := httptest.NewServer(testApp(a))
	defer srvA.Close()
	srvB := httptest.NewServer(testApp(b))
	defer srvB.Close()
	cl := newClient(t, srvA)
	if tok != "" {
		cl.setCookie("session", tok)
	}
	servers := []string{srvA.URL, srvB.URL}
	for i := range steps {
		cl.url = servers[i%2]
		res, _ := cl.do("POST", fmt.Sprintf("/set?k=n&v=%d", i))
		require.Equal(t, 200, res.StatusCode, "write %d failed", i)
		cl.url = servers[(i+1)%2]
		_, body := cl.do("GET", "/get?k=n")
		require.Equal(t, fmt.Sprintf("true:%d", i), body, "request %d read a stale value on the other node", i)
	}
}
