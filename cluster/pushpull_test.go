package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// PushPull starts an exchange only with a live peer, and none once the
// node is closed.
func TestPushPullStartsOnlyWithALivePeer(t *testing.T) {
	a, b := pair(t, nil)
	require.True(t, a.PushPull(b.Self().ID), "a live peer")
	require.False(t, a.PushPull("no-such-peer"), "an unknown peer")
	require.False(t, a.PushPull(a.Self().ID), "this node itself")
	require.NoError(t, a.Close())
	require.False(t, a.PushPull(b.Self().ID), "after Close")
}
