package peersession

import (
	"encoding/json"
	"expvar"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusHandlerShowsFiguresButNoSecrets(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	tok := create(t, nodes[0], map[string]any{"user": "alice"})
	eventuallyEverywhere(t, func(st *Store) bool { return st.Len() == 1 }, "not replicated", nodes...)

	rec := httptest.NewRecorder()
	nodes[0].StatusHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var s Status
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &s))
	assert.Equal(t, "a", s.Node)
	assert.Equal(t, 1, s.Stats.Sessions)
	assert.Len(t, s.Members, 2)
	assert.True(t, s.Config.Encrypted)
	require.NotNil(t, s.Stats.Replication)
	assert.Contains(t, s.Stats.Replication.Peers, "b")

	token, _ := parseCookie(tok)
	assert.NotContains(t, body, token, "status shows a token")
	for _, k := range [][]byte{testKey} {
		assert.NotContains(t, body, string(k))
	}
	assert.False(t, strings.Contains(expvarString(nodes[0]), token))
}

func expvarString(st *Store) string {
	var v expvar.Var = st.Expvar()
	return v.String()
}
