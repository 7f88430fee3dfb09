package replicate

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// Received Batches are decoded into pooled Batches, record arrays and key
// arenas (rxBatch): these tests check that nothing of one Batch shows in
// the next, and what a store may keep of the records it is given.

// keepingStore is a memStore that also keeps every record applied with
// all the Store contract allows it to keep without a copy: the strings and
// the values' Data. Only the Keys slice is copied.
type keepingStore struct {
	*memStore
	kept []Record
}

func (s *keepingStore) Apply(recs []Record) int {
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
	clock := NewClock(1, nil)
	e, err := New(Config{Self: "A", Network: net.endpoint("A"), Store: st, Clock: clock, AntiEntropyInterval: -1})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	e.PeerUp("B")

	var sent []Record
	for i := range 20 {
		var recs []Record
		for j := range 3 {
			r := Record{ID: sessionID(10*i + j)}
			r.setKey("k", Value{Data: []byte(fmt.Sprintf("batch %d record %d", i, j)), Ver: clock.Now()})
			r.setKey(fmt.Sprintf("key-%d", j), Value{Data: []byte("x"), Ver: clock.Now()})
			recs = append(recs, r)
		}
		frame, err := Encode(MsgBatch, &Batch{Seq: uint64(i + 1), Records: recs})
		require.NoError(t, err)
		e.HandleFrame("B", frame)
		sent = append(sent, recs...)
	}
	require.Equal(t, sent, st.kept)
}

// The Keys of a received Batch's records are carved out of one array that
// the next Batch reuses: a store must copy them (Store.Apply), and the
// arena must give each record its own slots.
func TestReceivedKeysShareAReusedArray(t *testing.T) {
	var arena []KeyValue
	decode := func(recs []Record) []Record {
		frame, err := Encode(MsgBatch, &Batch{Seq: 1, Records: recs})
		require.NoError(t, err)
		clear(arena)
		arena = arena[:0]
		var b Batch
		_, msg, err := decodeFrame(frame, DefaultLimits, &b, &arena)
		require.NoError(t, err)
		return msg.(*Batch).Records
	}
	mk := func(id string, keys ...string) Record {
		r := Record{ID: id}
		for _, k := range keys {
			r.setKey(k, Value{Data: []byte(id + "/" + k), Ver: Version{Wall: 1, Node: 1}})
		}
		return r
	}
	want := []Record{mk("a", "x", "y"), mk("b"), mk("c", "z"), mk("d", "k1", "k2", "k3")}
	got := decode(want)
	require.Equal(t, want, got)
	require.Len(t, arena, 6, "the records' keys take consecutive slots of the arena")
	for _, r := range got {
		require.Equal(t, len(r.Keys), cap(r.Keys), "a record's Keys ends where the next one's begins")
	}
	first := &arena[0]
	got2 := decode([]Record{mk("e", "q", "r")})
	require.Same(t, first, &arena[0], "the next Batch reuses the array")
	require.Equal(t, "q", got[0].Keys[0].Key, "so a record kept from the first Batch sees the second's keys")
	require.Equal(t, mk("e", "q", "r"), got2[0])
}

// A Batch that fails to decode halfway has filled part of a pooled record
// array past its length: HandleFrame clears all of it before pooling it,
// so the next Batch decoded into that array inherits nothing.
func TestBatchFailingMidDecodeLeavesNothingPooled(t *testing.T) {
	net := newMemNet(t)
	e, err := New(Config{Self: "A", Network: net.endpoint("A"), Store: newMemStore(), Clock: NewClock(1, nil), AntiEntropyInterval: -1})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	recs := make([]Record, 20)
	for i := range recs {
		recs[i] = Record{ID: sessionID(i), Principal: "leak"}
	}
	frame, err := Encode(MsgBatch, &Batch{Seq: 1, Records: recs})
	require.NoError(t, err)
	// Make the last record's principal a number: the frame is well formed
	// msgpack, and decoding fails at the last record.
	i := bytes.LastIndex(frame, []byte("\xa4leak"))
	require.Positive(t, i)
	bad := append(bytes.Clone(frame[:i]), append([]byte{0x05}, frame[i+5:]...)...)
	// A good Batch first, so that a pooled record array exists.
	e.HandleFrame("B", frame)
	before := e.Stats().Rejected
	e.HandleFrame("B", bad)
	require.Equal(t, before+1, e.Stats().Rejected, "the frame is refused")
	rx := batchPool.Get().(*rxBatch)
	defer batchPool.Put(rx)
	for j, r := range rx.b.Records[:cap(rx.b.Records)] {
		require.Zero(t, r, "pooled record %d", j)
	}
}

// A reused Batch's record array is zero past its length after a decode
// (putBatch clears only up to the length): a Batch that names its records
// twice, the second array shorter, leaves none of the first array's
// records behind.
func TestReusedBatchIsZeroPastItsLength(t *testing.T) {
	recs := func(n int, tag string) []Record {
		out := make([]Record, n)
		for i := range out {
			out[i] = Record{ID: fmt.Sprintf("%s-%d", tag, i), Created: 1}
			out[i].setKey("k", Value{Data: []byte(tag), Ver: Version{Wall: 1, Node: 1}})
		}
		return out
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	require.NoError(t, enc.EncodeMapLen(3))
	require.NoError(t, enc.EncodeString("s"))
	require.NoError(t, enc.EncodeUint64(1))
	for _, rs := range [][]Record{recs(100, "first"), recs(10, "second")} {
		require.NoError(t, enc.EncodeString("r"))
		require.NoError(t, enc.Encode(rs))
	}
	b := Batch{Records: make([]Record, 0, 128)}
	rd := reader{b: buf.Bytes()}
	require.NoError(t, rd.batch(&b))
	require.Equal(t, recs(10, "second"), b.Records)
	for i, r := range b.Records[len(b.Records):cap(b.Records)] {
		require.Zero(t, r, "record %d past the length", len(b.Records)+i)
	}
}
