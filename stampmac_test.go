package peersession

import (
	"bytes"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signedValue is the cookie value a node of a test cluster (testKey)
// issues for token at stamp.
func signedValue(token string, stamp int64) string {
	mac := newStampKeys([][]byte{testKey}, "").sign(token, stamp)
	return formatCookie(token, stamp) + "." + string(mac[:])
}

func TestSplitCookieReadsTheStampMAC(t *testing.T) {
	tok := newToken()
	mac := strings.Repeat("A", stampMACLen)
	for _, c := range []struct {
		in, token string
		stamp     int64
		mac       string
	}{
		{tok, tok, 0, ""},
		{tok + ".abc", tok, 13368, ""},
		{tok + ".abc." + mac, tok, 13368, mac},
		{tok + ".abc.", tok, 13368, ""},
		{tok + ".abc.x.y", tok, 13368, "x.y"}, // kept as sent: verify refuses it
		{tok + "..", tok, 0, ""},
		{tok + ".!!." + mac, tok, 0, ""}, // no stamp: no MAC either
		{tok[:42] + ".abc." + mac, "", 0, ""},
	} {
		gotTok, gotStamp, gotMAC := splitCookie(c.in)
		assert.Equal(t, c.token, gotTok, c.in)
		assert.Equal(t, c.stamp, gotStamp, c.in)
		assert.Equal(t, c.mac, gotMAC, c.in)
	}
}

// A stamp's MAC verifies for its token and stamp only, under any key of
// the ring (rotation), and not once its key is removed; a keyless
// cluster's MAC key is its label's.
func TestStampMACVerifiesUnderAnyKeyOfTheRing(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	tok, other := newToken(), newToken()
	const stamp = int64(1_800_000_000_000_000_000)

	old := newStampKeys([][]byte{k1}, "")
	mac := old.sign(tok, stamp)
	assert.True(t, old.verify(tok, stamp, string(mac[:])))
	assert.False(t, old.verify(tok, stamp+1, string(mac[:])), "another stamp")
	assert.False(t, old.verify(other, stamp, string(mac[:])), "another token")
	assert.False(t, old.verify(tok, stamp, string(mac[:stampMACLen-1])), "truncated")
	assert.False(t, old.verify(tok, stamp, string(mac[:])+"A"), "too long")
	assert.False(t, old.verify(tok, stamp, strings.Repeat("!", stampMACLen)), "not base64url")
	assert.False(t, old.verify(tok, stamp, ""), "none")

	// Rotation: k2 added and made primary; k1's MACs still verify until
	// k1 is removed.
	rotated := newStampKeys([][]byte{k1}, "")
	rotated.add(k2)
	assert.Equal(t, mac, rotated.sign(tok, stamp), "added, not yet used")
	rotated.use(k2)
	mac2 := rotated.sign(tok, stamp)
	assert.NotEqual(t, mac, mac2)
	assert.True(t, old.verify(tok, stamp, string(mac[:])))
	assert.True(t, rotated.verify(tok, stamp, string(mac[:])), "the old key's MAC")
	assert.False(t, old.verify(tok, stamp, string(mac2[:])), "the new key's MAC, on a node without it")
	rotated.remove(k1)
	assert.False(t, rotated.verify(tok, stamp, string(mac[:])), "removed key's MAC")
	assert.True(t, rotated.verify(tok, stamp, string(mac2[:])))

	// Keyless: the label's key, another for another label.
	l1, l2 := newStampKeys(nil, "x"), newStampKeys(nil, "y")
	m := l1.sign(tok, stamp)
	assert.True(t, l1.verify(tok, stamp, string(m[:])))
	assert.False(t, l2.verify(tok, stamp, string(m[:])))
	assert.False(t, old.verify(tok, stamp, string(m[:])))
}

// A clustered node's cookies carry the stamp's MAC; a single node's do
// not (it never fetches).
func TestCookieCarriesTheStampMACInACluster(t *testing.T) {
	single := newTestStore(t, Config{})
	tok := create(t, single, map[string]any{"k": "v"})
	assert.Equal(t, 1, strings.Count(tok, "."), "a single node MACs its stamps: %s", tok)

	tc := newTestCluster(t, nil)
	a := tc.startAll("a")[0]
	tok = create(t, a, map[string]any{"k": "v"})
	token, stamp, mac := splitCookie(tok)
	require.NotZero(t, stamp)
	assert.Len(t, mac, stampMACLen)
	assert.Equal(t, signedValue(token, stamp), tok)
}

// forgeries returns, for the real cookie value tok, values a client could
// make up that name a stamp newer than any node's copy: a random token
// with the largest stamp; the real token with a stamp past its own, with
// no MAC, a made-up one, the MAC of its real stamp, or a valid MAC on a
// stamp more than the allowed clock skew ahead.
func forgeries(tok string) map[string]string {
	token, stamp, mac := splitCookie(tok)
	maxStamp := strconv.FormatInt(math.MaxInt64, 36)
	return map[string]string{
		"random token, max stamp":          newToken() + "." + maxStamp,
		"random token, max stamp, bad MAC": newToken() + "." + maxStamp + "." + strings.Repeat("A", stampMACLen),
		"real token, newer stamp, no MAC":  formatCookie(token, stamp+1),
		"real token, newer stamp, bad MAC": formatCookie(token, stamp+1) + "." + strings.Repeat("A", stampMACLen),
		"real token, newer stamp, its MAC": formatCookie(token, stamp+1) + "." + mac,
		"real token, max stamp, no MAC":    token + "." + maxStamp,
		"real token, signed, past skew":    signedValue(token, math.MaxInt64),
	}
}

// TestForgedStampCausesNoFetch: a stamp the client made up (no valid MAC,
// or beyond the clock skew) is ignored: the node reads its own copy, asks
// no peer (the peer serves no fetch), and counts it.
func TestForgedStampCausesNoFetch(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	tok := create(t, b, map[string]any{"user": "alice"})
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, tok) }, "not replicated", a)
	served := func() uint64 { return b.Stats().Replication.FetchesServed }
	served0 := served()

	srv := httptest.NewServer(testApp(a))
	t.Cleanup(srv.Close)
	for name, forged := range forgeries(tok) {
		t.Run(name, func(t *testing.T) {
			real := strings.HasPrefix(name, "real")
			before := a.Stats()

			// Outside HTTP (Load: gorillastore's path).
			_, err := a.Load(t.Context(), forged)
			if real {
				require.NoError(t, err, "the forged stamp logged the user out")
			} else {
				require.ErrorIs(t, err, ErrNotFound)
			}
			// Through the middleware.
			cl := newClient(t, srv)
			cl.setCookie("session", forged)
			res, body := cl.do("GET", "/get?k=user")
			require.Equal(t, 200, res.StatusCode)
			if real {
				assert.Equal(t, "true:alice", body)
			} else {
				assert.Equal(t, "false:", body)
			}

			after := a.Stats()
			assert.Equal(t, before.Fetches, after.Fetches, "a fetched for a forged stamp")
			assert.Equal(t, before.FetchWaits, after.FetchWaits, "a waited for a forged stamp's change")
			assert.Equal(t, before.StampsRejected+2, after.StampsRejected)
			assert.Equal(t, served0, served(), "b served a fetch for a forged stamp")
		})
	}
}

// TestOldFormatCookieStillLogsIn: a cookie issued before stamps had a MAC
// (token.stamp) still names its session on every node: its stamp is
// ignored, and the request reads the node's copy.
func TestOldFormatCookieStillLogsIn(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	srvA, srvB := httptest.NewServer(testApp(a)), httptest.NewServer(testApp(b))
	t.Cleanup(srvA.Close)
	t.Cleanup(srvB.Close)

	cl := newClient(t, srvA)
	res, _ := cl.do("POST", "/set?k=user&v=alice")
	require.Equal(t, 200, res.StatusCode)
	issued := cl.cookie("session")
	token, stamp, mac := splitCookie(issued)
	require.Len(t, mac, stampMACLen, "the cookie carries no MAC: %s", issued)
	eventuallyEverywhere(t, func(st *Store) bool { return has(st, issued) }, "not replicated", b)

	old := formatCookie(token, stamp) // as issued before the upgrade
	for _, srv := range []*httptest.Server{srvA, srvB} {
		cl.url = srv.URL
		cl.setCookie("session", old)
		res, body := cl.do("GET", "/get?k=user")
		require.Equal(t, 200, res.StatusCode)
		assert.Equal(t, "true:alice", body, "the old cookie did not log the user in")
	}
	for _, st := range nodes {
		s := st.Stats()
		assert.EqualValues(t, 1, s.StampsRejected)
		assert.Zero(t, s.Fetches)
	}

	// A write answers with a cookie whose stamp has its MAC again.
	res, _ = cl.do("POST", "/set?k=user&v=bob")
	require.Equal(t, 200, res.StatusCode)
	assert.Equal(t, token, must(parseCookie(cl.cookie("session"))))
	_, _, mac = splitCookie(cl.cookie("session"))
	assert.Len(t, mac, stampMACLen)
}
