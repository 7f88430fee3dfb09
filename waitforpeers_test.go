package peersession

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A save under WaitForPeers, in the default Async mode, returns only once
// every live peer holds the change: read right then, straight from each
// peer's memory (no fetch), it is there. Deletes likewise. The wait is
// bounded: a save that returned early (a peer that did not answer in
// time, as on a machine too loaded to keep up) says so in PeerWaitsLate,
// and only such a save may find a peer without the change.
//
// In partitioned mode (two copies of three) "every peer" is every other
// holder of the session: only they are sent it.
func TestSaveUnderWaitForPeersIsOnEveryPeerWhenItReturns(t *testing.T) {
	eachMode(t, testSaveUnderWaitForPeersIsOnEveryPeerWhenItReturns)
}

func testSaveUnderWaitForPeersIsOnEveryPeerWhenItReturns(t *testing.T, opts func(*Config)) {
	tc := newTestCluster(t, opts)
	a, b, c := tc.start("a"), tc.start("b"), tc.start("c")
	require.Eventually(t, func() bool {
		return len(a.Stats().Replication.Peers) == 2
	}, waitFor, tick, "a never had both peers live")
	ctx := WaitForPeers(t.Context())
	held := 0
	for i := range 20 {
		s := a.NewSession(ctx)
		require.NoError(t, s.Set("n", i))
		late := a.Stats().PeerWaitsLate
		tok, err := a.Save(ctx, s)
		require.NoError(t, err)
		token, _ := parseCookie(tok)
		peers := []*Store{b, c}
		if a.part.Load() != nil {
			peers = holdersOf(a, tok, b, c)
		}
		if a.Stats().PeerWaitsLate == late {
			held++
			for _, st := range peers {
				assert.NotNil(t, st.lookup(idOf(token)), "write %d on a peer when Save returned", i)
			}
		}
		late = a.Stats().PeerWaitsLate
		require.NoError(t, a.Delete(ctx, tok))
		if a.Stats().PeerWaitsLate == late {
			for _, st := range peers {
				assert.Nil(t, st.lookup(idOf(token)), "delete %d on a peer when Delete returned", i)
			}
		}
	}
	assert.Positive(t, held, "no save waited for its peers")
}
