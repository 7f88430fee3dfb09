package replicate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// A change that cannot be sent at all (a value over Limits.MaxValue) is
// dropped, and a Ticket waiting for it fails: the peer's Ack for the Batch
// that should have carried it does not count for it.
func TestTicketFailsForChangeThatCannotBeEncoded(t *testing.T) {
	_, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	huge := model.Record{ID: "huge", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: make([]byte, wire.DefaultLimits.MaxValue+1), Ver: a.clock.Now()}}}}
	tk := a.publish(huge)
	err := tk.Wait(ctxTimeout(t, 5*time.Second), 1)
	require.ErrorIs(t, err, ErrNotEnoughPeers)
	_, ok := b.store.Lookup("huge")
	require.False(t, ok)

	// The peer's later changes are acknowledged as usual.
	require.NoError(t, a.publish(a.write("s", "k", "v")).Wait(ctxTimeout(t, 5*time.Second), 1))
	require.Equal(t, "v", b.value("s", "k"))
	require.Positive(t, a.e.Stats().Dropped)
}
