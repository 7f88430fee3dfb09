package peersession

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/peersession/peersession/replicate/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// At Config.MaxSessions a RenewID (an existing user logging in again)
// still works: it replaces a session and adds none.
func TestRenewIDWorksAtTheSessionCap(t *testing.T) {
	st := newTestStore(t, Config{MaxSessions: 2})
	srv := appServer(t, st)
	alice, bob := newClient(t, srv), newClient(t, srv)
	alice.do("POST", "/set?k=a&v=1")
	bob.do("POST", "/set?k=b&v=2")
	require.Equal(t, 2, st.Len())

	res, _ := alice.do("POST", "/login?u=alice")
	assert.Equal(t, http.StatusOK, res.StatusCode, "re-login at the cap")
	_, body := alice.do("GET", "/get?k=a")
	assert.Equal(t, "true:1", body, "the data moved to the new ID")
	assert.Equal(t, 2, st.Len())

	res, _ = newClient(t, srv).do("POST", "/set?k=c&v=3")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "a new session is still refused")
}

// A peer at the cap applies a replicated RenewID too: the old session's
// tombstone is applied before the new session, which then fits.
func TestPeerAtTheCapAppliesARenewal(t *testing.T) {
	src := newTestStore(t, Config{})
	dst := newTestStore(t, Config{MaxSessions: 1})
	ctx := context.Background()
	tok := savedSession(t, src, "k", "v")
	old := src.lookup(idOf(strings.SplitN(tok, ".", 2)[0])).rec
	require.Zero(t, replStore{dst}.Apply([]model.Record{old}))

	s, err := src.Load(ctx, tok)
	require.NoError(t, err)
	require.NoError(t, s.RenewID())
	tok2, err := src.Save(ctx, s)
	require.NoError(t, err)
	newRec := src.lookup(idOf(strings.SplitN(tok2, ".", 2)[0])).rec
	tomb := src.shards.get(old.ID).rec
	require.True(t, tomb.IsDead())
	// The renewal's batch carries the new session first, as the commit
	// publishes it.
	assert.Zero(t, replStore{dst}.Apply([]model.Record{newRec, tomb}), "nothing refused")
	assert.NotNil(t, dst.lookup(newRec.ID))
	assert.Equal(t, 1, dst.Len())
}

// Config.AllowNew limits session creation per client: a refused request
// gets 429 (its own fault, not the server's), and requests that only use
// an existing session are not asked.
func TestAllowNewLimitsSessionCreationPerClient(t *testing.T) {
	created := map[string]int{}
	st := newTestStore(t, Config{AllowNew: func(r *http.Request) bool {
		ip := r.Header.Get("X-Client")
		created[ip]++
		return created[ip] <= 2
	}})
	h := testApp(st)
	newReq := func(client string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/set?k=a&v=1", nil)
		req.Header.Set("X-Client", client)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	assert.Equal(t, http.StatusOK, newReq("1.2.3.4").Code)
	assert.Equal(t, http.StatusOK, newReq("1.2.3.4").Code)
	rec := newReq("1.2.3.4")
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, http.StatusOK, newReq("5.6.7.8").Code, "another client is not limited")
	assert.Equal(t, 3, st.Len())
}
