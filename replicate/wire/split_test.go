package wire

import (
	"fmt"
	"testing"

	"github.com/peersession/peersession/replicate/model"

	"github.com/stretchr/testify/require"
)

// A session may hold more keys (or bytes) than one Record on the wire may
// carry (Limits.MaxKeys, MaxRecordBytes): the store limits a session by
// its size only. Every path that sends whole records (a peer's queue,
// where changes coalesce; anti-entropy, which pushes whole records; the
// state transfer) sends such a session as several records, which merge
// back into it.

func TestSplitRecord(t *testing.T) {
	lim := DefaultLimits
	lim.MaxKeys, lim.MaxRecordBytes = 3, 40
	r := model.Record{ID: "s", Created: 5, Deadline: 9, Access: 7, IdleTimeout: 3, Principal: "alice", PrincipalVer: model.Version{Wall: 4}}
	for i := range 8 {
		r.Set(fmt.Sprintf("key%d", i), model.Value{Data: []byte("value"), Ver: model.Version{Wall: int64(i + 1)}})
	}

	parts := AppendParts(nil, r, &lim)
	require.Greater(t, len(parts), 2)
	merged := model.Record{}
	for i, p := range parts {
		require.NoError(t, validateRecord(&p, &lim, true), "part %d", i)
		require.Equal(t, i == len(parts)-1, p.Created != 0, "only the last part carries the creation: a session is not visible half-sent")
		merged = model.Merge(merged, p)
	}
	require.Equal(t, r, merged, "the parts merge back into the record")

	// A record within the limits is sent as it is.
	small := model.Record{ID: "s", Created: 5, Keys: r.Keys[:2]}
	require.Equal(t, []model.Record{small}, AppendParts(nil, small, &lim))
}

// A change coalesced in a peer's queue into a record of more than MaxKeys
// keys reaches the peer, and a Sync write counting on the peer's ack is on
// the peer when the ack arrives.
