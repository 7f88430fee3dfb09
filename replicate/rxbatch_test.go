package replicate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// Received Batches are decoded into pooled Batches, record arrays and key
// arenas (rxBatch): these tests check that nothing of one Batch shows in
// the next, and what a store may keep of the records it is given.

// keepingStore is a memStore that also keeps every record applied with
// all the Store contract allows it to keep without a copy: the strings and
// the values' Data. Only the Keys slice is copied.
type keepingStore struct {
	*memStore
	kept []model.Record
}

func (s *keepingStore) Apply(recs []model.Record) int {
	s.mu.Lock()
	for _, r := range recs {
		r.Keys = slices.Clone(r.Keys)
		s.kept = append(s.kept, r)
	}
	s.mu.Unlock()
	return s.memStore.Apply(recs)
}

// HandleFrame decodes Batches into pooled Batches, record arrays and key
// arrays; what a store may keep of one Batch's records (strings, values)
// must not change when the next ones are decoded into the same memory.
func TestReceivedBatchesReuseNothingAStoreKept(t *testing.T) {
	net := newMemNet(t)
	st := &keepingStore{memStore: newMemStore()}
	clock := model.NewClock(1, nil)
	e, err := New(Config{Self: "A", Network: net.endpoint("A"), Store: st, Clock: clock, AntiEntropyInterval: -1})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	e.PeerUp("B")

	var sent []model.Record
	for i := range 20 {
		var recs []model.Record
		for j := range 3 {
			r := model.Record{ID: sessionID(10*i + j)}
			r.Set("k", model.Value{Data: []byte(fmt.Sprintf("batch %d record %d", i, j)), Ver: clock.Now()})
			r.Set(fmt.Sprintf("key-%d", j), model.Value{Data: []byte("x"), Ver: clock.Now()})
			recs = append(recs, r)
		}
		frame, err := wire.Encode(wire.MsgBatch, &wire.Batch{Seq: uint64(i + 1), Records: recs})
		require.NoError(t, err)
		e.HandleFrame("B", frame)
		sent = append(sent, recs...)
	}
	require.Equal(t, sent, st.kept)
}
