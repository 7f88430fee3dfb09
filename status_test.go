package peersession

import (
	"encoding/json"
	"expvar"
	"fmt"
	"net/http/httptest"
	"reflect"
	"regexp"
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

// The status JSON reads well: one casing (snake_case) for every key,
// durations as numbers of seconds, a time that never happened as null.
func TestStatusJSONIsSnakeCaseWithSecondsAndNulls(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	raw, err := json.Marshal(nodes[0].Status())
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))

	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if !strings.HasSuffix(path, ".peers") { // peers are keyed by node name
					assert.Regexp(t, snake, k, "key %s.%s", path, k)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("status", doc)

	config := doc["config"].(map[string]any)
	assert.Equal(t, 1800.0, config["idle_timeout_seconds"], "30m as seconds")
	stats := doc["stats"].(map[string]any)
	for _, k := range []string{"sessions", "session_bytes", "sessions_created", "fetch_hits", "tombstones"} {
		assert.Contains(t, stats, k)
	}
	repl := stats["replication"].(map[string]any)
	assert.Contains(t, repl, "state_transfer_seconds")
	peer := repl["peers"].(map[string]any)["b"].(map[string]any)
	assert.Contains(t, peer, "ack_lag_seconds")
	assert.Contains(t, peer, "queue_depth")
	assert.Contains(t, peer, "send_failures")
	if _, acked := peer["last_ack"].(string); !acked {
		assert.Nil(t, peer["last_ack"], "no ack yet: null, not year one")
	}
}

// A peer that has never acknowledged anything shows last_ack as null.
func TestStatusJSONShowsAnAbsentTimeAsNull(t *testing.T) {
	v := jsonView(reflect.ValueOf(PeerStats{}))
	m := v.(map[string]any)
	assert.Nil(t, m["last_ack"])
	assert.Equal(t, 0.0, m["ack_lag_seconds"])
	assert.Equal(t, "fetch_hits", snakeCase("FetchHits"))
	assert.Equal(t, "tcp_port", snakeCase("TCPPort"))
}
