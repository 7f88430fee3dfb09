package scsstore_test

// Two clustered nodes on loopback, each with its own scs session manager
// over its own peersession store: what scs writes on one, scs reads on the
// other.

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/peersession/peersession/adapters/scsstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoApps starts two clustered nodes and an scs app on each, with the
// given scs lifetime.
func twoApps(t *testing.T, lifetime time.Duration) (a, b *node, sa, sb *scsstore.Store) {
	t.Helper()
	pa, pb := testcluster.Pair(t, nil)
	sa, sb = scsstore.New(pa), scsstore.New(pb)
	a = &node{sm: manager(sa, lifetime, 0), st: pa}
	b = &node{sm: manager(sb, lifetime, 0), st: pb}
	a.url, b.url = app(t, a.sm).URL, app(t, b.sm).URL
	return a, b, sa, sb
}

// node is one node: its scs manager, its store and its app's URL.
type node struct {
	sm  *scs.SessionManager
	st  *peersession.Store
	url string
}

func TestClusterWriteOnAReadOnB(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoApps(t, time.Hour)
	br := newBrowser(t)

	br.Get(a.url + "/put?v=bar")
	require.Eventually(t, func() bool { return b.st.Stats().Sessions == 1 }, waitFor, tick)
	assert.Equal(t, "bar", br.Body(b.url+"/get"))

	// And back: a change made on B is what A serves next.
	br.Get(b.url + "/put?v=baz")
	require.Eventually(t, func() bool { return br.Body(a.url+"/get") == "baz" }, waitFor, tick)
}

func TestClusterDestroyOnBEndsOnA(t *testing.T) {
	t.Parallel()
	a, b, sa, _ := twoApps(t, time.Hour)
	br := newBrowser(t)

	br.Get(a.url + "/put?v=bar")
	token := scsCookie(t, br, a.url)
	require.Eventually(t, func() bool { return br.Body(b.url+"/get") == "bar" }, waitFor, tick)

	br.Get(b.url + "/destroy")
	require.Eventually(t, func() bool {
		_, found, err := sa.Find(token)
		return err == nil && !found && a.st.Stats().Sessions == 0
	}, waitFor, tick)
	assert.Equal(t, missing, br.Body(a.url+"/get"))
}

func TestClusterExpiry(t *testing.T) {
	t.Parallel()
	a, b, sa, sb := twoApps(t, 300*time.Millisecond)
	br := newBrowser(t)

	br.Get(a.url + "/put?v=bar")
	token := scsCookie(t, br, a.url)
	require.Eventually(t, func() bool {
		_, found, err := sb.Find(token)
		return err == nil && found
	}, waitFor, tick, "B never had the session")

	require.Eventually(t, func() bool {
		_, foundA, errA := sa.Find(token)
		_, foundB, errB := sb.Find(token)
		return errA == nil && errB == nil && !foundA && !foundB
	}, waitFor, tick)
	assert.Equal(t, missing, br.Body(b.url+"/get"))
	// Ending the expired session on one node ends it on both.
	require.Eventually(t, func() bool {
		return a.st.Stats().Sessions == 0 && b.st.Stats().Sessions == 0
	}, waitFor, tick)
}

func TestClusterIterate(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoApps(t, time.Hour)
	for _, v := range []string{"0", "1", "2"} {
		newBrowser(t).Get(a.url + "/put?v=" + v)
	}
	require.Eventually(t, func() bool { return b.st.Stats().Sessions == 3 }, waitFor, tick)

	// Iterate on B sees A's sessions, and what it changes reaches A.
	var got []string
	require.NoError(t, b.sm.Iterate(t.Context(), func(ctx context.Context) error {
		v := b.sm.GetString(ctx, "foo")
		got = append(got, v)
		if v == "1" {
			return b.sm.Destroy(ctx)
		}
		return nil
	}))
	sort.Strings(got)
	assert.Equal(t, []string{"0", "1", "2"}, got)
	require.Eventually(t, func() bool { return a.st.Stats().Sessions == 2 }, waitFor, tick)

	got = nil
	require.NoError(t, a.sm.Iterate(t.Context(), func(ctx context.Context) error {
		got = append(got, a.sm.GetString(ctx, "foo"))
		return nil
	}))
	sort.Strings(got)
	assert.Equal(t, []string{"0", "2"}, got)
}

// A request that lands on B right after A wrote sees the write: B fetches
// a session it lacks before answering, so no wait is needed.
func TestClusterReadYourWrites(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoApps(t, time.Hour)
	for i := range 20 {
		// The property holds while B sees A up (under heavy load
		// memberlist may suspect a live node for a moment).
		require.Eventually(t, func() bool {
			return testcluster.Alive(a.st) == 2 && testcluster.Alive(b.st) == 2
		}, waitFor, tick)
		br := newBrowser(t)
		br.Get(a.url + "/put?v=x")
		res, body := br.Get(b.url + "/get")
		require.Equal(t, http.StatusOK, res.StatusCode, "request %d", i)
		require.Equal(t, "x", body)
	}
}

// On a balancer that is not sticky, back-to-back increments alternating
// over every node lose nothing in peersession's default Async mode: scs's
// cookie carries no version stamp, so Commit returns only once every live
// peer holds the change, and the next request reads it wherever it lands.
func TestNonStickyIncrementsLoseNothing(t *testing.T) {
	serve := func(t *testing.T, st *peersession.Store) string {
		return app(t, manager(scsstore.New(st), time.Hour, 0)).URL
	}
	testcluster.NonSticky(t, serve, func(t *testing.T, urls []string) {
		br := newBrowser(t)
		const increments = 2000
		for i := range increments {
			res, _ := br.Get(urls[i%len(urls)] + "/incr")
			require.Equal(t, http.StatusOK, res.StatusCode, "increment %d", i)
		}
		for _, u := range urls {
			assert.Equal(t, strconv.Itoa(increments), br.Body(u+"/count"), "every increment counted, read on %s", u)
		}
	})
}
