package wire

// Tests of the message codec beyond records: Ack against msgpack, the
// TransferRequest wire form, and key names shared within a decoded frame.

import (
	"fmt"
	"strconv"
	"testing"
	"unsafe"

	"github.com/peersession/peersession/replicate/model"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// The records of one frame share their key names: each distinct name (up
// to eight) is allocated once per frame.
func TestDecodeSharesKeyNames(t *testing.T) {
	var recs []model.Record
	for i := range 3 {
		r := model.Record{ID: fmt.Sprintf("session-%06d", i)}
		for _, k := range []string{"cart", "user", "k" + strconv.Itoa(i)} {
			r.Set(k, model.Value{Data: []byte{0xc0}, Ver: model.Version{Wall: 1, Node: 1}})
		}
		recs = append(recs, r)
	}
	frame, err := Encode(MsgBatch, &Batch{Seq: 1, Records: recs})
	require.NoError(t, err)
	_, msg, err := Decode(frame)
	require.NoError(t, err)
	got := msg.(*Batch).Records
	require.Len(t, got, 3)
	name := func(r model.Record, k string) *byte {
		i, ok := model.SearchKeys(r.Keys, k)
		require.True(t, ok, k)
		return unsafe.StringData(r.Keys[i].Key)
	}
	for _, k := range []string{"cart", "user"} {
		require.Equal(t, name(got[0], k), name(got[1], k), k)
		require.Equal(t, name(got[0], k), name(got[2], k), k)
	}
	require.Equal(t, recs, got)
}

// TestAckCodecMatchesMsgpack checks the hand-written Ack encoding and
// decoding against msgpack's reflection, on its own output and on bodies
// in other forms (array, extra fields, other integer widths, nil, wrong
// types).
func TestAckCodecMatchesMsgpack(t *testing.T) {
	edges := []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	for _, seq := range edges {
		for _, refused := range edges {
			a := Ack{Seq: seq, Refused: refused}
			want, err := msgpack.Marshal(&a)
			require.NoError(t, err)
			requireEncodeBody(t, want, &a, a)
			var got Ack
			require.NoError(t, decodeBody(want, &got))
			require.Equal(t, a, got)
		}
	}
	bodies := map[string][]byte{
		"nil":              {0xc0},
		"empty map":        rawBody(t, func(e *msgpack.Encoder) { _ = e.EncodeMapLen(0) }),
		"array":            rawBody(t, func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(1); _ = e.EncodeUint(42) }),
		"empty array":      rawBody(t, func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(0) }),
		"long array":       rawBody(t, func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(2); _ = e.EncodeUint(1); _ = e.EncodeUint(2) }),
		"extra field":      mapBody(t, "x", "y", "s", 7),
		"int8":             mapBody(t, "s", int8(9)),
		"negative":         mapBody(t, "s", -3),
		"string seq":       mapBody(t, "s", "1"),
		"given twice":      mapBody(t, "s", uint(1), "s", uint(2)),
		"not a struct":     rawBody(t, func(e *msgpack.Encoder) { _ = e.EncodeString("s") }),
		"refused first":    mapBody(t, "f", uint(3), "s", uint(9)),
		"full array":       rawBody(t, func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(2); _ = e.EncodeUint(9); _ = e.EncodeUint(3) }),
		"negative refused": mapBody(t, "s", uint(9), "f", -1),
	}
	for name, body := range bodies {
		var ref, got Ack
		refErr := msgpack.Unmarshal(body, &ref)
		gotErr := decodeBody(body, &got)
		require.Equal(t, refErr != nil, gotErr != nil, "%s: msgpack says %v, reader %v", name, refErr, gotErr)
		if refErr == nil {
			require.Equal(t, ref, got, name)
		}
	}
}

// mapBody is rawBody of a map of the keys and values kv, each encoded as
// its Go type says: string as str, int and uint in their shortest form,
// int8 as int8.
func mapBody(t testing.TB, kv ...any) []byte {
	t.Helper()
	return rawBody(t, func(e *msgpack.Encoder) {
		_ = e.EncodeMapLen(len(kv) / 2)
		for _, v := range kv {
			switch v := v.(type) {
			case string:
				_ = e.EncodeString(v)
			case int:
				_ = e.EncodeInt(int64(v))
			case uint:
				_ = e.EncodeUint(uint64(v))
			case int8:
				_ = e.EncodeInt8(v)
			default:
				t.Fatalf("mapBody: no encoding for %T", v)
			}
		}
	})
}

// TestTransferRequestWireForm pins the TransferRequest encoding: a full request
// is byte for byte what it was before the Digest field existed (so peers
// of either release read it alike), and a delta request adds the digest
// as field "d". An older peer skips "d" and serves the whole state:
// correct, only costlier.
func TestTransferRequestWireForm(t *testing.T) {
	type oldTransferRequest struct {
		Req uint64 `msgpack:"q"`
	}
	for _, req := range []uint64{0, 7, 1<<64 - 1} {
		want, err := msgpack.Marshal(&oldTransferRequest{Req: req})
		require.NoError(t, err)
		for _, m := range []any{&TransferRequest{Req: req}, TransferRequest{Req: req}, &TransferRequest{Req: req, Digest: []uint64{}}} {
			frame, err := Encode(MsgTransferRequest, m)
			require.NoError(t, err)
			require.Equal(t, want, frame[2:], "%#v", m)
		}
	}

	d := codecDigest().Buckets
	frame, err := Encode(MsgTransferRequest, &TransferRequest{Req: 3, Digest: d})
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, msgpack.Unmarshal(frame[2:], &fields))
	require.Len(t, fields, 2)
	require.Contains(t, fields, "d")
	var old oldTransferRequest
	require.NoError(t, msgpack.Unmarshal(frame[2:], &old), "an older peer reads a delta request")
	require.Equal(t, uint64(3), old.Req)
	_, msg, err := Decode(frame)
	require.NoError(t, err)
	require.Equal(t, &TransferRequest{Req: 3, Digest: d}, msg)
}
