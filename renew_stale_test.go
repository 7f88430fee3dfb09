package peersession

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/faultnet"
)

// A login (RenewID) on a node whose copy of the session lags behind a
// write the client has already seen, with no peer answering its fetch (a
// partition, Async mode), is refused with ErrStale: renewing the old copy
// would end the session everywhere, the newer copy with it, and the
// writes only it holds would be lost. Found by the chaos harness (issue
// 21: bench/run.sh chaos -seed 5 -consistency async -faults oneway).
func TestRenewIDOnAStaleCopyIsRefused(t *testing.T) {
	fn := faultnet.New(21)
	tc := newFaultCluster(t, fn, func(c *Config) {
		c.Cluster.FetchTimeout = 200 * time.Millisecond
		c.Cluster.AntiEntropyInterval = -1 // only replication and the fetch move data
	})
	nodes := tc.startAll("a", "b")
	t.Cleanup(fn.Reset)
	a, b := nodes[0], nodes[1]
	app := func(st *Store) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
			if err := FromContext(r.Context()).Set("n", r.FormValue("v")); err != nil {
				http.Error(w, err.Error(), StatusCode(err))
				return
			}
			fmt.Fprint(w, "ok")
		})
		mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
			if err := FromContext(r.Context()).RenewID(); err != nil {
				if !errors.Is(err, ErrStale) {
					t.Errorf("RenewID: %v, want ErrStale or nothing", err)
				}
				http.Error(w, err.Error(), StatusCode(err))
				return
			}
			fmt.Fprint(w, "ok")
		})
		return st.Middleware(mux)
	}
	srvA, srvB := httptest.NewServer(app(a)), httptest.NewServer(app(b))
	t.Cleanup(srvA.Close)
	t.Cleanup(srvB.Close)
	cl := newClient(t, srvA)

	res, _ := cl.do("POST", "/set?v=1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	token := cl.cookie(defaultCookieName)
	eventually(t, func() bool { return value(b, token, "n") == "1" }, "b never got the first write")

	// Nothing passes between a and b any more: b keeps n=1.
	fn.DropRate("a", "b", faultnet.Replication, 1)
	fn.DropRate("b", "a", faultnet.Replication, 1)
	res, _ = cl.do("POST", "/set?v=2")
	require.Equal(t, http.StatusOK, res.StatusCode, "an Async write is acknowledged by its node alone")

	cl.url = srvB.URL
	res, body := cl.do("POST", "/login")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, body)
	assert.Contains(t, body, ErrStale.Error())
	assert.Equal(t, "1", value(b, token, "n"), "b changed nothing")
	assert.Equal(t, "2", value(a, token, "n"))

	// Healed, the login goes through on b, with the newer data.
	fn.Reset()
	eventually(t, func() bool {
		res, _ := cl.do("POST", "/set?v=3") // a write b replicates, and a fetch that now works
		return res.StatusCode == http.StatusOK && value(a, token, "n") == "3"
	}, "a and b never reconnected")
	res, body = cl.do("POST", "/login")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	renewed := cl.cookie(defaultCookieName)
	require.NotEqual(t, token, renewed)
	eventually(t, func() bool { return value(a, renewed, "n") == "3" && value(a, token, "n") == "" },
		"the renewed session never reached a with its data, or the old ID survived")
}
