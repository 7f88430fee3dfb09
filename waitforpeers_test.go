package peersession

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A save under WaitForPeers, in the default Async mode, returns only once
// every live peer holds the change: read right then, straight from each
// peer's memory (no fetch), it is there. Deletes likewise.
func TestSaveUnderWaitForPeersIsOnEveryPeerWhenItReturns(t *testing.T) {
	tc := newTestCluster(t, nil)
	a, b, c := tc.start("a"), tc.start("b"), tc.start("c")
	require.Eventually(t, func() bool {
		return len(a.Stats().Replication.Peers) == 2
	}, waitFor, tick, "a never had both peers live")
	ctx := WaitForPeers(t.Context())
	for i := range 20 {
		s := a.NewSession(ctx)
		require.NoError(t, s.Set("n", i))
		tok, err := a.Save(ctx, s)
		require.NoError(t, err)
		token, _ := parseCookie(tok)
		for _, st := range []*Store{b, c} {
			assert.NotNil(t, st.lookup(idOf(token)), "write %d on a peer when Save returned", i)
		}
		require.NoError(t, a.Delete(ctx, tok))
		for _, st := range []*Store{b, c} {
			assert.Nil(t, st.lookup(idOf(token)), "delete %d on a peer when Delete returned", i)
		}
	}
	assert.Zero(t, a.Stats().PeerWaitsLate)
}
