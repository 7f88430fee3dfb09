package wire

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// Encode accepts too and encodes back to an equal message.
func FuzzDecode(f *testing.F) {
	for _, tc := range codecSamples() {
		frame, err := Encode(tc.t, tc.msg)
		require.NoError(f, err)
		f.Add(frame)
	}
	hdr := []byte{FormatVersion, byte(MsgBatch)}
	for _, body := range [][]byte{
		{},
		{0xdd, 0xff, 0xff, 0xff, 0xff},
		{0xdf, 0xff, 0xff, 0xff, 0xff},
		{0xdb, 0xff, 0xff, 0xff, 0xff},
		{0xc6, 0xff, 0xff, 0xff, 0xff},
		{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'k', 0xdf, 0xff, 0xff, 0xff, 0xfe},
		{0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0},
		{0xd6, 0xff, 0, 0, 0, 0},
		{0xc1},
		{0x80, 0x00},
	} {
		f.Add(append(append([]byte{}, hdr...), body...))
	}
	// Hostile Summaries: lengths that disagree, a bucket out of range or
	// twice, an empty ID, a range over two buckets, a huge declared array.
	for _, v := range []any{
		map[string]any{"b": []uint32{1}, "i": []string{"a", "b"}, "h": []uint64{1}},
		map[string]any{"b": []uint32{DigestBuckets}, "i": []string{}, "h": []uint64{}},
		map[string]any{"b": []uint32{2, 2}},
		map[string]any{"b": []uint32{2}, "i": []string{""}, "h": []uint64{0}},
		map[string]any{"b": []uint32{2, 3}, "l": "a", "u": "b"},
		map[string]any{"b": []uint32{2}, "l": "b", "u": "a"},
		map[string]any{"b": []uint32{2}, "i": 5, "h": "x", "r": 1},
	} {
		f.Add(rawFrame(f, FormatVersion, MsgSummary, v))
	}
	// Hostile TransferRequests: a digest of the wrong length or type, one
	// empty, a huge declared one.
	for _, v := range []any{
		map[string]any{"q": 1, "d": []uint64{1}},
		map[string]any{"q": 1, "d": make([]uint64, DigestBuckets+1)},
		map[string]any{"q": 1, "d": []uint64{}},
		map[string]any{"q": 1, "d": "x"},
		[]any{1, make([]uint64, DigestBuckets)},
	} {
		f.Add(rawFrame(f, FormatVersion, MsgTransferRequest, v))
	}
	f.Add([]byte{FormatVersion, byte(MsgTransferRequest), 0x82, 0xa1, 'q', 0x01, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{FormatVersion, byte(MsgSummary), 0x81, 0xa1, 'i', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{FormatVersion, byte(MsgBuckets), 0x81, 0xa1, 'b', 0x91, 0x01})
	f.Add([]byte{})
	f.Add([]byte{FormatVersion})
	f.Add([]byte{FormatVersion + 1, byte(MsgAck), 0x80})
	f.Add([]byte{FormatVersion, 0xff, 0x80})

	f.Fuzz(func(t *testing.T, frame []byte) {
		mt, msg, err := Decode(frame)
		checkReusedDecode(t, frame, msg, err)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, msg)
			return
		}
		again, err := Encode(mt, msg)
		require.NoError(t, err, "Encode refused what Decode accepted")
		mt2, msg2, err := Decode(again)
		require.NoError(t, err, "Decode refused what Encode produced")
		require.Equal(t, mt, mt2)
		require.Equal(t, normMsg(msg), normMsg(msg2))
	})
}

// fuzzRx is the received Batch FuzzDecode decodes every input into as
// well, as HandleFrame does with its pooled ones: one input's leftovers
// must never show in the next one's result.
var fuzzRx rxBatch

// checkReusedDecode checks that decoding frame into fuzzRx (a reused
// Batch and key arena) gives what a fresh Decode gave (msg, err), and
// then resets fuzzRx as HandleFrame and putBatch do, checking that it is
// all zero past its lengths.
func checkReusedDecode(t *testing.T, frame []byte, msg any, err error) {
	t.Helper()
	rx := &fuzzRx
	_, got, rerr := decodeFrame(frame, DefaultLimits, &rx.b, &rx.keys)
	require.Equal(t, err == nil, rerr == nil, "a reused Batch decodes as a fresh one: %v against %v", rerr, err)
	if err == nil {
		if b, ok := got.(*Batch); ok {
			got = &Batch{Seq: b.Seq, Records: slices.Clone(b.Records)}
		}
		require.Equal(t, normMsg(msg), normMsg(got), "a reused Batch decodes as a fresh one")
	} else {
		rx.b.Records = rx.b.Records[:cap(rx.b.Records)] // as HandleFrame does
	}
	if !rx.reset() {
		fuzzRx = rxBatch{}
		return
	}
	for i, r := range rx.b.Records[:cap(rx.b.Records)] {
		require.Zero(t, r, "record %d of the reused array", i)
	}
	for i, kv := range rx.keys[:cap(rx.keys)] {
		require.Zero(t, kv, "key %d of the reused arena", i)
	}
}
