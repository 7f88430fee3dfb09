package gorillastore_test

// Two clustered nodes on loopback, each with its own gorilla store over
// its own peersession store: what gorilla writes on one, gorilla reads on
// the other.

import (
	"net/http/httptest"
	"testing"

	"github.com/peersession/peersession"

	"github.com/peersession/peersession/adapters/gorillastore"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoApps starts two clustered nodes and a gorilla app on each; maxAge,
// if not 0, is both gorilla stores' MaxAge.
func twoApps(t *testing.T, maxAge int) (a, b *httptest.Server, pa, pb *peersession.Store) {
	t.Helper()
	pa, pb = testcluster.Pair(t, nil)
	sa, sb := gorillastore.New(pa), gorillastore.New(pb)
	if maxAge != 0 {
		sa.MaxAge(maxAge)
		sb.MaxAge(maxAge)
	}
	return app(t, sa), app(t, sb), pa, pb
}

func TestClusterWriteOnAReadOnB(t *testing.T) {
	t.Parallel()
	a, b, _, pb := twoApps(t, 0)
	br := newBrowser(t)

	br.Get(a.URL + "/put?v=bar")
	require.Eventually(t, func() bool { return pb.Stats().Sessions == 1 }, waitFor, tick)
	assert.Equal(t, "bar", br.Body(b.URL+"/get"))

	// Alternating nodes, each request sees the previous one's write: the
	// cookie's version stamp makes a stale node fetch first.
	for i, v := range []string{"1", "2", "3", "4"} {
		srv, other := a, b
		if i%2 == 1 {
			srv, other = b, a
		}
		br.Get(srv.URL + "/put?v=" + v)
		require.Equal(t, v, br.Body(other.URL+"/get"))
	}
}

func TestClusterDestroyOnBEndsOnA(t *testing.T) {
	t.Parallel()
	a, b, pa, _ := twoApps(t, 0)
	br := newBrowser(t)

	br.Get(a.URL + "/put?v=bar")
	old := br.Cookie(a.URL, name)
	require.Equal(t, "bar", br.Body(b.URL+"/get"))
	br.Get(b.URL + "/destroy")

	require.Eventually(t, func() bool { return pa.Stats().Sessions == 0 }, waitFor, tick)
	// The old cookie, replayed on A, names nothing.
	br2 := replay(t, a.URL, old)
	assert.Equal(t, missing, br2.Body(a.URL+"/get"))
}

func TestClusterExpiry(t *testing.T) {
	t.Parallel()
	a, b, pa, pb := twoApps(t, 1)
	br := newBrowser(t)

	br.Get(a.URL + "/put?v=bar")
	v := br.Cookie(a.URL, name)
	require.Eventually(t, func() bool { return pb.Stats().Sessions == 1 }, waitFor, tick)

	// Replay the cookie after its MaxAge, as a client ignoring Max-Age
	// would: B refuses it, and finding it expired ends it on both.
	br2 := replay(t, b.URL, v)
	require.Eventually(t, func() bool { return br2.Body(b.URL+"/get") == missing }, waitFor, tick)
	require.Eventually(t, func() bool {
		return pa.Stats().Sessions == 0 && pb.Stats().Sessions == 0
	}, waitFor, tick)
}

// On a balancer that is not sticky, back-to-back increments alternating
// over every node lose nothing in peersession's default Async mode: the
// cookie carries peersession's version stamp, so a node that has not yet
// received the last change fetches it before reading.
func TestNonStickyIncrementsLoseNothing(t *testing.T) {
	serve := func(t *testing.T, st *peersession.Store) string { return app(t, gorillastore.New(st)).URL }
	testcluster.NonSticky(t, serve, func(t *testing.T, urls []string) {
		testcluster.CountUp(t, newBrowser(t), 2000, urls...)
	})
}
