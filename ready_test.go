package peersession

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func probe(st *Store) (int, string) {
	rec := httptest.NewRecorder()
	st.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// A readiness probe passes once the node can serve and fails again as
// soon as Close begins, so a balancer stops sending it requests while it
// flushes and leaves.
func TestReadyHandler(t *testing.T) {
	tc := newTestCluster(t, nil)
	a := tc.start("a")
	code, _ := probe(a)
	assert.Equal(t, http.StatusOK, code, "ready after WaitReady")

	single, err := New(Config{})
	require.NoError(t, err)
	code, _ = probe(single)
	assert.Equal(t, http.StatusOK, code, "a single node is ready at once")
	require.NoError(t, single.Close())
	code, body := probe(single)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "closing")
}

// A node still in its state transfer is not ready.
func TestReadyHandlerBeforeTheStateTransferEnds(t *testing.T) {
	st := newTestStore(t, Config{})
	st.repl = &replication{ready: make(chan struct{})} // a transfer that has not ended
	code, body := probe(st)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "state transfer")
	st.repl = nil
}
