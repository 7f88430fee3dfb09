package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// A connection keeps a small write buffer only: a large frame is sealed
// in a buffer of framePool, which goes back to the pool (and, once runs of
// large frames stop, to the garbage collector) rather than staying with
// the connection.
func TestLargeFrameLeavesNoLargeBufferWithTheConnection(t *testing.T) {
	t.Parallel()
	a, b := pair(t, relaxed)
	big := make([]byte, 1<<20)
	rand.Read(big)
	ctx := context.Background()
	require.NoError(t, a.Send(ctx, b.Self().ID, []byte("small")))
	require.NoError(t, a.Send(ctx, b.Self().ID, big))
	require.NoError(t, a.Send(ctx, b.Self().ID, []byte("small again")))
	waitFrames(t, b, a, 3)
	got := b.rec.framesFrom(a.Self().ID)
	require.True(t, bytes.Equal(big, got[1]), "the 1 MiB frame arrives intact")
	require.Equal(t, []byte("small again"), got[2])

	a.outMu.Lock()
	p := a.outs[b.Self().ID]
	a.outMu.Unlock()
	p.sem <- struct{}{} // no Send writes while the buffer is looked at
	defer func() { <-p.sem }()
	p.mu.Lock()
	c := p.c
	p.mu.Unlock()
	require.NotNil(t, c)
	require.LessOrEqual(t, cap(c.buf), keepBuf, "write buffer kept after a 1 MiB frame")
}
