package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/peersession/peersession/replicate/model"
)

// The Keys of a received Batch's records are carved out of one array that
// the next Batch reuses: a store must copy them (Store.Apply), and the
// arena must give each record its own slots.
func TestReceivedKeysShareAReusedArray(t *testing.T) {
	var arena []model.KeyValue
	decode := func(recs []model.Record) []model.Record {
		frame, err := Encode(MsgBatch, &Batch{Seq: 1, Records: recs})
		require.NoError(t, err)
		clear(arena)
		arena = arena[:0]
		var b Batch
		_, msg, err := decodeFrame(frame, DefaultLimits, &b, &arena)
		require.NoError(t, err)
		return msg.(*Batch).Records
	}
	mk := func(id string, keys ...string) model.Record {
		r := model.Record{ID: id}
		for _, k := range keys {
			r.Set(k, model.Value{Data: []byte(id + "/" + k), Ver: model.Version{Wall: 1, Node: 1}})
		}
		return r
	}
	want := []model.Record{mk("a", "x", "y"), mk("b"), mk("c", "z"), mk("d", "k1", "k2", "k3")}
	got := decode(want)
	require.Equal(t, want, got)
	require.Len(t, arena, 6, "the records' keys take consecutive slots of the arena")
	for _, r := range got {
		require.Equal(t, len(r.Keys), cap(r.Keys), "a record's Keys ends where the next one's begins")
	}
	first := &arena[0]
	got2 := decode([]model.Record{mk("e", "q", "r")})
	require.Same(t, first, &arena[0], "the next Batch reuses the array")
	require.Equal(t, "q", got[0].Keys[0].Key, "so a record kept from the first Batch sees the second's keys")
	require.Equal(t, mk("e", "q", "r"), got2[0])
}

// A Batch that fails to decode halfway has filled part of a pooled record
// array past its length: DecodePooled clears all of it before pooling it,
// so the next Batch decoded into that array inherits nothing.
func TestBatchFailingMidDecodeLeavesNothingPooled(t *testing.T) {
	recs := make([]model.Record, 20)
	for i := range recs {
		recs[i] = model.Record{ID: fmt.Sprintf("session-%06d", i), Principal: "leak"}
	}
	frame, err := Encode(MsgBatch, &Batch{Seq: 1, Records: recs})
	require.NoError(t, err)
	// Make the last record's principal a number: the frame is well formed
	// msgpack, and decoding fails at the last record.
	i := bytes.LastIndex(frame, []byte("\xa4leak"))
	require.Positive(t, i)
	bad := append(bytes.Clone(frame[:i]), append([]byte{0x05}, frame[i+5:]...)...)
	// A good Batch first, so that a pooled record array exists.
	_, _, pooled, err := DecodePooled(frame)
	require.NoError(t, err)
	pooled.Release()
	_, _, _, err = DecodePooled(bad)
	require.ErrorIs(t, err, ErrMalformed, "the frame is refused")
	rx := batchPool.Get().(*rxBatch)
	defer batchPool.Put(rx)
	for j, r := range rx.b.Records[:cap(rx.b.Records)] {
		require.Zero(t, r, "pooled record %d", j)
	}
}

// A reused Batch's record array is zero past its length after a decode
// (Release clears only up to the length): a Batch that names its records
// twice, the second array shorter, leaves none of the first array's
// records behind.
func TestReusedBatchIsZeroPastItsLength(t *testing.T) {
	recs := func(n int, tag string) []model.Record {
		out := make([]model.Record, n)
		for i := range out {
			out[i] = model.Record{ID: fmt.Sprintf("%s-%d", tag, i), Created: 1}
			out[i].Set("k", model.Value{Data: []byte(tag), Ver: model.Version{Wall: 1, Node: 1}})
		}
		return out
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	require.NoError(t, enc.EncodeMapLen(3))
	require.NoError(t, enc.EncodeString("s"))
	require.NoError(t, enc.EncodeUint64(1))
	for _, rs := range [][]model.Record{recs(100, "first"), recs(10, "second")} {
		require.NoError(t, enc.EncodeString("r"))
		require.NoError(t, enc.EncodeArrayLen(len(rs)))
		for _, r := range rs {
			require.NoError(t, refRecord(enc, r))
		}
	}
	b := Batch{Records: make([]model.Record, 0, 128)}
	rd := reader{b: buf.Bytes()}
	require.NoError(t, rd.batch(&b))
	require.Equal(t, recs(10, "second"), b.Records)
	for i, r := range b.Records[len(b.Records):cap(b.Records)] {
		require.Zero(t, r, "record %d past the length", len(b.Records)+i)
	}
}
