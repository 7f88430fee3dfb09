package demo_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/examples/twonode/demo"
)

// A node serves its readiness probe at /readyz (deploy/kubernetes points
// its readinessProbe there): 200 once it serves, 503 once it stops.
func TestNodeServesItsReadiness(t *testing.T) {
	n, err := demo.StartNode(t.Context(), demo.NodeConfig{Name: "solo"})
	require.NoError(t, err)
	res, err := http.Get(n.URL() + "/readyz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Empty(t, res.Cookies(), "the probe creates no session")
	require.NoError(t, n.Stop(t.Context()))
}
