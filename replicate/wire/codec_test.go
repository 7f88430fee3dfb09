package wire

import (
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/peersession/peersession/replicate/internal/testrec"
	"github.com/peersession/peersession/replicate/model"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// codecRecord returns a valid record with n keys of size-byte values.
func codecRecord(id string, n, size int) model.Record {
	r := model.Record{
		ID:           id,
		Created:      1_700_000_000_000_000_000,
		Deadline:     1_700_086_400_000_000_000,
		IdleTimeout:  30 * 60 * 1e9,
		Access:       1_700_000_100_000_000_000,
		Principal:    "user-42",
		PrincipalVer: model.Version{Wall: 1_700_000_000_000_000_001, Seq: 1, Node: 7},
		Keys:         make([]model.KeyValue, 0, n+1),
	}
	for i := 0; i < n; i++ {
		k := "key-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		r.Set(k, model.Value{
			Data: bytes.Repeat([]byte{byte(i)}, size),
			Ver:  model.Version{Wall: 1_700_000_000_000_000_000 + int64(i), Seq: uint32(i), Node: 3},
		})
	}
	if n > 0 {
		r.Set("gone", model.Value{Ver: model.Version{Wall: 1_700_000_000_000_000_500, Node: 4}, Deleted: true})
	}
	return r
}

func codecBatch(records, keys, size int) *Batch {
	b := &Batch{Seq: 99}
	for i := 0; i < records; i++ {
		b.Records = append(b.Records, codecRecord("session-"+strings.Repeat("z", i%7)+string(rune('A'+i%26)), keys, size))
	}
	return b
}

// summaryOf returns a Summary of bucket 0 with n IDs.
func summaryOf(n int) *Summary {
	s := &Summary{Buckets: []uint32{0}, IDs: make([]string, n), Hashes: make([]uint64, n)}
	for i := range s.IDs {
		s.IDs[i] = "id-" + strconv.Itoa(i)
		s.Hashes[i] = uint64(i)
	}
	return s
}

func codecDigest() *Digest {
	d := &Digest{Buckets: make([]uint64, DigestBuckets)}
	for i := range d.Buckets {
		d.Buckets[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	return d
}

// codecSamples is one valid message of every type, and some edge cases.
func codecSamples() []struct {
	name string
	t    MsgType
	msg  any
} {
	return []struct {
		name string
		t    MsgType
		msg  any
	}{
		{"batch", MsgBatch, codecBatch(3, 4, 20)},
		{"batch/empty", MsgBatch, &Batch{Seq: 1}},
		{"batch/tombstone", MsgBatch, &Batch{Seq: 2, Records: []model.Record{{ID: "dead", Dead: model.Version{Wall: 5, Seq: 1, Node: 2}}}}},
		{"ack", MsgAck, &Ack{Seq: 1<<64 - 1}},
		{"transfer-request", MsgTransferRequest, &TransferRequest{Req: 7}},
		{"transfer-request/delta", MsgTransferRequest, &TransferRequest{Req: 9, Digest: codecDigest().Buckets}},
		{"transfer-chunk", MsgTransferChunk, &TransferChunk{Req: 7, Records: codecBatch(2, 1, 5).Records, Done: true}},
		{"transfer-chunk/empty", MsgTransferChunk, &TransferChunk{Req: 8, Done: true}},
		{"digest", MsgDigest, codecDigest()},
		{"summary", MsgSummary, &Summary{Buckets: []uint32{0, 17, DigestBuckets - 1}, IDs: []string{"a", "b"}, Hashes: []uint64{1, 1<<64 - 1}}},
		{"summary/reply-range", MsgSummary, &Summary{Buckets: []uint32{3}, Lo: "m", Hi: "t", IDs: []string{"p"}, Hashes: []uint64{7}, Reply: true}},
		{"summary/empty-buckets", MsgSummary, &Summary{Buckets: []uint32{5, 6}}},
		{"fetch", MsgFetch, &Fetch{Req: 3, ID: "abc"}},
		{"fetch-reply", MsgFetchReply, &FetchReply{Req: 3, Found: true, Record: codecRecord("abc", 2, 8)}},
		{"fetch-reply/not-found", MsgFetchReply, &FetchReply{Req: 4}},
		{"end-principal", MsgEndPrincipal, &EndPrincipal{Req: 5, Principal: "alice"}},
		{"principal-ended", MsgPrincipalEnded, &PrincipalEnded{Req: 5, IDs: []string{"abc", "def"}}},
		{"principal-ended/error", MsgPrincipalEnded, &PrincipalEnded{Req: 6, Err: "clock fenced"}},
	}
}

// rawFrame encodes v with msgpack behind a header, bypassing Encode's
// checks, to build frames Encode refuses.
func rawFrame(t testing.TB, version byte, mt MsgType, v any) []byte {
	t.Helper()
	body := rawBody(t, func(e *msgpack.Encoder) { require.NoError(t, encodeBody(e, v)) })
	return append([]byte{version, byte(mt)}, body...)
}

// normMsg makes equal messages compare equal with require.Equal: nil and
// empty slices and maps are the same on the wire.
func normMsg(msg any) any {
	normRecs := func(rs []model.Record) []model.Record {
		if len(rs) == 0 {
			return nil
		}
		out := make([]model.Record, len(rs))
		for i, r := range rs {
			out[i] = testrec.Norm(r)
		}
		return out
	}
	switch m := msg.(type) {
	case *Batch:
		c := *m
		c.Records = normRecs(c.Records)
		return &c
	case *TransferChunk:
		c := *m
		c.Records = normRecs(c.Records)
		return &c
	case *Summary:
		c := *m
		if len(c.IDs) == 0 {
			c.IDs = nil
		}
		if len(c.Hashes) == 0 {
			c.Hashes = nil
		}
		return &c
	case *Digest:
		c := *m
		if len(c.Buckets) == 0 {
			c.Buckets = nil
		}
		return &c
	case *TransferRequest:
		c := *m
		if len(c.Digest) == 0 {
			c.Digest = nil
		}
		return &c
	case *FetchReply:
		c := *m
		c.Record = testrec.Norm(c.Record)
		return &c
	}
	return msg
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range codecSamples() {
		t.Run(tc.name, func(t *testing.T) {
			frame, err := Encode(tc.t, tc.msg)
			require.NoError(t, err)
			require.Equal(t, FormatVersion, frame[0])
			require.Equal(t, byte(tc.t), frame[1])

			mt, msg, err := Decode(frame)
			require.NoError(t, err)
			require.Equal(t, tc.t, mt)
			require.Equal(t, normMsg(tc.msg), normMsg(msg))

			// A value encodes like a pointer to it (up to map order).
			byValue, err := Encode(tc.t, derefMsg(tc.msg))
			require.NoError(t, err)
			require.Len(t, byValue, len(frame))
			_, msg2, err := Decode(byValue)
			require.NoError(t, err)
			require.Equal(t, normMsg(msg), normMsg(msg2))
		})
	}
}

// derefMsg returns the struct a message pointer points to.
func derefMsg(msg any) any {
	switch m := msg.(type) {
	case *Batch:
		return *m
	case *Ack:
		return *m
	case *TransferRequest:
		return *m
	case *TransferChunk:
		return *m
	case *Digest:
		return *m
	case *Summary:
		return *m
	case *Fetch:
		return *m
	case *FetchReply:
		return *m
	case *EndPrincipal:
		return *m
	case *PrincipalEnded:
		return *m
	}
	panic("not a message pointer")
}

func TestCodecEncodeRefuses(t *testing.T) {
	big := codecRecord("big", 1, 0)
	big.Set("v", model.Value{Data: make([]byte, DefaultLimits.MaxValue+1), Ver: model.Version{Wall: 1}})
	tests := []struct {
		name string
		t    MsgType
		msg  any
		is   error // nil: a caller bug, neither sentinel
	}{
		{"type mismatch", MsgAck, &Batch{}, nil},
		{"not a message", MsgAck, 42, nil},
		{"nil pointer", MsgAck, (*Ack)(nil), nil},
		{"unknown type", MsgType(200), &Ack{}, nil},
		{"value over limit", MsgBatch, &Batch{Records: []model.Record{big}}, ErrTooLarge},
		{"too many records", MsgBatch, &Batch{Records: make([]model.Record, DefaultLimits.MaxRecords+1)}, ErrTooLarge},
		{"empty ID", MsgBatch, &Batch{Records: []model.Record{{}}}, ErrMalformed},
		{"short digest", MsgDigest, &Digest{Buckets: []uint64{1}}, ErrMalformed},
		{"sync request short digest", MsgTransferRequest, &TransferRequest{Req: 1, Digest: []uint64{1}}, ErrMalformed},
		{"summary bucket out of range", MsgSummary, &Summary{Buckets: []uint32{DigestBuckets}}, ErrMalformed},
		{"summary too many IDs", MsgSummary, summaryOf(DefaultLimits.MaxRecords + 1), ErrTooLarge},
		{"end-principal without principal", MsgEndPrincipal, &EndPrincipal{Req: 1}, ErrMalformed},
		{"principal-ended empty ID", MsgPrincipalEnded, &PrincipalEnded{Req: 1, IDs: []string{""}}, ErrMalformed},
		{"principal-ended too many IDs", MsgPrincipalEnded, &PrincipalEnded{Req: 1, IDs: make([]string, DefaultLimits.MaxRecords+1)}, ErrTooLarge},
		{"buckets is reserved", MsgBuckets, &Summary{Buckets: []uint32{1}}, nil},
		{"fetch without ID", MsgFetch, Fetch{Req: 1}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame, err := Encode(tc.t, tc.msg)
			require.Error(t, err)
			require.Nil(t, frame)
			require.True(t, strings.HasPrefix(err.Error(), "replicate: "), err.Error())
			if tc.is == nil {
				require.NotErrorIs(t, err, ErrMalformed)
			} else {
				require.ErrorIs(t, err, tc.is)
			}
		})
	}
}

func TestDecodeHostile(t *testing.T) {
	valid, err := Encode(MsgBatch, codecBatch(2, 2, 4))
	require.NoError(t, err)
	hdr := []byte{FormatVersion, byte(MsgBatch)}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	nest := func(n int) []byte { // n nested one-element arrays around nil
		return cat(hdr, bytes.Repeat([]byte{0x91}, n), []byte{0xc0})
	}

	tests := []struct {
		name  string
		frame []byte
		is    error
		msg   string // in the error
	}{
		{"nil", nil, ErrMalformed, "shorter than the header"},
		{"empty", []byte{}, ErrMalformed, "shorter than the header"},
		{"one byte", []byte{FormatVersion}, ErrMalformed, "shorter than the header"},
		{"header only", hdr, ErrMalformed, "truncated"},
		{"future version", cat([]byte{FormatVersion + 1}, valid[1:]), ErrVersion, "format version 2"},
		{"version zero", cat([]byte{0}, valid[1:]), ErrVersion, "format version 0"},
		{"type zero", cat([]byte{FormatVersion, 0}, valid[2:]), ErrMalformed, "unknown message type 0"},
		{"type unknown", cat([]byte{FormatVersion, 200}, valid[2:]), ErrMalformed, "unknown message type 200"},
		{"trailing garbage", cat(valid, []byte{0x00}), ErrMalformed, "1 trailing bytes"},
		{"two objects", cat(valid, valid[2:]), ErrMalformed, "trailing bytes"},
		{"never-used code", cat(hdr, []byte{0xc1}), ErrMalformed, "invalid type code 0xc1"},
		{"fixext", cat(hdr, []byte{0x81, 0xa1, 's', 0xd4, 0x01, 0x00}), ErrMalformed, "extension type"},
		{"ext8", cat(hdr, []byte{0xc7, 0x01, 0x05, 0x00}), ErrMalformed, "extension type"},
		{"time ext", cat(hdr, []byte{0xd6, 0xff, 0, 0, 0, 0}), ErrMalformed, "extension type"},
		{"array32 of 4G", cat(hdr, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}), ErrMalformed, "container of 4294967295 entries"},
		{"map32 of 4G", cat(hdr, []byte{0xdf, 0xff, 0xff, 0xff, 0xff}), ErrMalformed, "container of 4294967295 entries"},
		{"str32 of 4G", cat(hdr, []byte{0xdb, 0xff, 0xff, 0xff, 0xff}), ErrMalformed, "string of 4294967295 bytes"},
		{"bin32 of 4G", cat(hdr, []byte{0xc6, 0xff, 0xff, 0xff, 0xff}), ErrMalformed, "string of 4294967295 bytes"},
		{"array16 of 64K", cat(hdr, []byte{0xdc, 0xff, 0xff}), ErrMalformed, "container of 65535 entries"},
		{"map16 of 64K", cat(hdr, []byte{0xde, 0xff, 0xff}), ErrMalformed, "container of 65535 entries"},
		{"records array32 of 4G", cat(hdr, []byte{0x81, 0xa1, 'r', 0xdd, 0xff, 0xff, 0xff, 0xff}), ErrMalformed, "4294967295 entries"},
		{"keys map32 of 4G", cat(hdr, []byte{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'k', 0xdf, 0xff, 0xff, 0xff, 0xff}), ErrMalformed, "4294967295 entries"},
		{"truncated length", cat(hdr, []byte{0xdd, 0xff}), ErrMalformed, "truncated"},
		{"truncated int", cat(hdr, []byte{0xcf, 0x01}), ErrMalformed, "truncated"},
		{"map missing a value", cat(hdr, []byte{0x81, 0xa1, 's'}), ErrMalformed, "truncated at byte 3"},
		{"map short of bytes", cat(hdr, []byte{0x82, 0xa1, 's'}), ErrMalformed, "container of 2 entries at byte 1, only 2 bytes left"},
		{"nested 16 deep", nest(16), ErrMalformed, "msgpack"}, // structure fine, not a Batch
		{"nested 17 deep", nest(17), ErrMalformed, "nested more than 16 deep"},
		{"nested 100000 deep", nest(100000), ErrMalformed, "nested more than 16 deep"},
		{"wrong shape", cat(hdr, []byte{0x81, 0xa1, 'r', 0xa1, 'x'}), ErrMalformed, "msgpack"},
		{"over MaxFrame", make([]byte, DefaultLimits.MaxFrame+1), ErrTooLarge, "MaxFrame"},
		{"string over MaxValue", cat(hdr, []byte{0xc6, 0x00, 0x10, 0x00, 0x01}, make([]byte, 1<<20+1)), ErrTooLarge, "string of 1048577 bytes"},
		{"array over MaxRecords", cat(hdr, []byte{0xdc, 0xff, 0xff}, make([]byte, 0xffff)), ErrTooLarge, "container of 65535 entries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mt, msg, err := Decode(tc.frame)
			require.Error(t, err)
			require.Zero(t, mt)
			require.Nil(t, msg)
			require.ErrorIs(t, err, tc.is)
			require.ErrorIs(t, err, ErrMalformed) // every frame error
			require.Contains(t, err.Error(), tc.msg)
			require.True(t, strings.HasPrefix(err.Error(), "replicate: "), err.Error())
			if tc.is != ErrVersion {
				require.NotErrorIs(t, err, ErrVersion)
			}
		})
	}
}

func TestDecodeTruncatedEveryPrefix(t *testing.T) {
	frame, err := Encode(MsgBatch, codecBatch(3, 3, 10))
	require.NoError(t, err)
	for n := 0; n < len(frame); n++ {
		_, msg, err := Decode(frame[:n])
		require.ErrorIs(t, err, ErrMalformed, "prefix of %d bytes", n)
		require.Nil(t, msg)
	}
	_, _, err = Decode(frame)
	require.NoError(t, err)
}

// TestDecodeHugeLengthsDoNotAllocate checks that a few bytes declaring a
// huge container or string cost nothing: msgpack v5.4.1 alone allocates
// the declared size first (vmihailenco/msgpack#376, #401).
func TestDecodeHugeLengthsDoNotAllocate(t *testing.T) {
	hdr := []byte{FormatVersion, byte(MsgBatch)}
	for _, code := range []byte{0xdd, 0xdf, 0xdb, 0xc6} {
		frame := append(append([]byte{}, hdr...), code, 0xff, 0xff, 0xff, 0xff)
		nested := append(append([]byte{}, hdr...), 0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'k', code, 0xff, 0xff, 0xff, 0xfe)
		for _, f := range [][]byte{frame, nested} {
			allocs := testing.AllocsPerRun(100, func() {
				if _, _, err := Decode(f); !errors.Is(err, ErrMalformed) {
					t.Fatalf("% x: err %v", f, err)
				}
			})
			require.LessOrEqual(t, allocs, 8.0, "code 0x%02x", code) // the error only

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i := 0; i < 100; i++ {
				_, _, _ = Decode(f)
			}
			runtime.ReadMemStats(&after)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "code 0x%02x", code)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	small := Limits{MaxRecords: 2, MaxKeys: 3, MaxKeyLen: 8, MaxValue: 16, MaxRecordBytes: 40, MaxEntries: 100}
	rec := func(edit func(*model.Record)) model.Record {
		r := model.Record{ID: "id", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("v"), Ver: model.Version{Wall: 1}}}}}
		if edit != nil {
			edit(&r)
		}
		return r
	}
	batch := func(recs ...model.Record) []byte {
		return rawFrame(t, FormatVersion, MsgBatch, &Batch{Seq: 1, Records: recs})
	}
	manyKeys := func(n int) func(*model.Record) {
		return func(r *model.Record) {
			for i := 0; i < n; i++ {
				r.Set("m"+strconv.Itoa(i), model.Value{Ver: model.Version{Wall: 1}, Deleted: true})
			}
		}
	}
	tests := []struct {
		name  string
		frame []byte
		lim   Limits
		is    error // nil: accepted
		msg   string
	}{
		{"at every limit", batch(rec(manyKeys(2)), rec(func(r *model.Record) {
			r.ID = "12345678"
			r.Set("k", model.Value{Data: make([]byte, 16), Ver: model.Version{Wall: 1}})
		})), small, nil, ""},
		{"records", batch(rec(nil), rec(nil), rec(nil)), small, ErrTooLarge, "3 records, limit 2 (MaxRecords)"},
		{"keys", batch(rec(manyKeys(3))), small, ErrTooLarge, "record 0: 4 keys, limit 3 (MaxKeys)"},
		{"key length", batch(rec(func(r *model.Record) { r.Set("123456789", model.Value{Ver: model.Version{Wall: 1}}) })), small, ErrTooLarge, "key of 9 bytes"},
		{"ID length", batch(rec(nil), rec(func(r *model.Record) { r.ID = "123456789" })), small, ErrTooLarge, "record 1: session ID of 9 bytes"},
		{"principal length", batch(rec(func(r *model.Record) { r.Principal = "123456789" })), small, ErrTooLarge, "principal of 9 bytes"},
		{"value", batch(rec(func(r *model.Record) { r.Set("k", model.Value{Data: make([]byte, 17)}) })), small, ErrTooLarge, "string of 17 bytes"},
		{"record bytes", batch(rec(func(r *model.Record) {
			r.Principal = "pppppppp"
			r.Set("a", model.Value{Data: make([]byte, 16)})
			r.Set("b", model.Value{Data: make([]byte, 16)})
		})), small, ErrTooLarge, "record of 44 bytes, limit 40 (MaxRecordBytes)"},
		{"frame", batch(rec(nil)), Limits{MaxFrame: 10}, ErrTooLarge, "(MaxFrame)"},
		{"entries", batch(rec(manyKeys(2)), rec(manyKeys(2))), Limits{MaxEntries: 20}, ErrTooLarge, "(MaxEntries)"},
		{"default records", batch(make([]model.Record, DefaultLimits.MaxRecords+1)...), Limits{}, ErrTooLarge, "limit 10000"},
		{"default keys", batch(rec(manyKeys(DefaultLimits.MaxKeys))), Limits{}, ErrTooLarge, "1025 keys, limit 1024 (MaxKeys)"},
		{"summary at limits", rawFrame(t, FormatVersion, MsgSummary, &Summary{Buckets: []uint32{1}, Lo: "12345678", IDs: []string{"12345678", "b"}, Hashes: []uint64{1, 2}}), small, nil, ""},
		{"summary IDs", rawFrame(t, FormatVersion, MsgSummary, summaryOf(3)), small, ErrTooLarge, "summary of 3 IDs, limit 2 (MaxRecords)"},
		{"summary ID length", rawFrame(t, FormatVersion, MsgSummary, &Summary{Buckets: []uint32{1}, IDs: []string{"123456789"}, Hashes: []uint64{1}}), small, ErrTooLarge, "summary: session ID of 9 bytes"},
		{"summary range bound length", rawFrame(t, FormatVersion, MsgSummary, &Summary{Buckets: []uint32{1}, Hi: "123456789"}), small, ErrTooLarge, "summary ID range bound"},
		{"summary default IDs", rawFrame(t, FormatVersion, MsgSummary, summaryOf(DefaultLimits.MaxRecords+1)), Limits{}, ErrTooLarge, "limit 10000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, msg, err := DecodeLimits(tc.frame, tc.lim)
			if tc.is == nil {
				require.NoError(t, err)
				require.NotNil(t, msg)
				return
			}
			require.ErrorIs(t, err, tc.is)
			require.ErrorIs(t, err, ErrMalformed)
			require.Contains(t, err.Error(), tc.msg)
			require.Nil(t, msg)
		})
	}
}

func TestDecodeSemantic(t *testing.T) {
	v1 := model.Version{Wall: 1}
	batch := func(r model.Record) []byte {
		return rawFrame(t, FormatVersion, MsgBatch, &Batch{Records: []model.Record{r}})
	}
	summary := func(s Summary) []byte { return rawFrame(t, FormatVersion, MsgSummary, &s) }
	tests := []struct {
		name  string
		frame []byte
		msg   string
	}{
		{"empty record ID", batch(model.Record{}), "record 0: empty session ID"},
		{"negative created", batch(model.Record{ID: "a", Created: -1}), "negative time"},
		{"negative idle timeout", batch(model.Record{ID: "a", IdleTimeout: -1}), "negative time"},
		{"negative key wall", batch(model.Record{ID: "a", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Ver: model.Version{Wall: -5}}}}}), "negative key version"},
		{"negative principal wall", batch(model.Record{ID: "a", PrincipalVer: model.Version{Wall: -5}}), "negative principal version"},
		{"negative tombstone wall", batch(model.Record{ID: "a", Dead: model.Version{Wall: -5}}), "negative tombstone version"},
		{"removal with data", batch(model.Record{ID: "a", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("x"), Ver: v1, Deleted: true}}}}), "removed key with 1 bytes"},
		{"digest short", rawFrame(t, FormatVersion, MsgDigest, &Digest{Buckets: make([]uint64, DigestBuckets-1)}), "digest of 255 buckets, want 256"},
		{"digest long", rawFrame(t, FormatVersion, MsgDigest, &Digest{Buckets: make([]uint64, DigestBuckets+1)}), "digest of 257 buckets"},
		{"digest missing", rawFrame(t, FormatVersion, MsgDigest, map[string]any{}), "digest of 0 buckets"},
		{"sync request digest short", rawFrame(t, FormatVersion, MsgTransferRequest, &TransferRequest{Req: 1, Digest: make([]uint64, 5)}), "sync request digest of 5 buckets, want 0 (whole state) or 256"},
		{"sync request digest long", rawFrame(t, FormatVersion, MsgTransferRequest, &TransferRequest{Req: 1, Digest: make([]uint64, DigestBuckets+1)}), "sync request digest of 257 buckets"},
		{"buckets type reserved", rawFrame(t, FormatVersion, MsgBuckets, map[string]any{"b": []uint32{3}}), "unknown message type 6"},
		{"summary no bucket", summary(Summary{}), "summary of no bucket"},
		{"summary bucket out of range", summary(Summary{Buckets: []uint32{3, DigestBuckets}}), "summary bucket 256"},
		{"summary bucket twice", summary(Summary{Buckets: []uint32{3, 4, 3}}), "summary bucket 3 listed twice"},
		{"summary more IDs", summary(Summary{Buckets: []uint32{1}, IDs: []string{"a", "b"}, Hashes: []uint64{1}}), "summary of 2 IDs and 1 hashes"},
		{"summary more hashes", summary(Summary{Buckets: []uint32{1}, IDs: []string{"a"}, Hashes: []uint64{1, 2}}), "summary of 1 IDs and 2 hashes"},
		{"summary empty ID", summary(Summary{Buckets: []uint32{1}, IDs: []string{"a", ""}, Hashes: []uint64{1, 2}}), "summary: empty session ID"},
		{"summary range over buckets", summary(Summary{Buckets: []uint32{1, 2}, Lo: "a"}), "summary ID range over 2 buckets"},
		{"summary range empty", summary(Summary{Buckets: []uint32{1}, Lo: "b", Hi: "b"}), "summary ID range empty"},
		{"summary range reversed", summary(Summary{Buckets: []uint32{1}, Lo: "c", Hi: "b"}), "summary ID range empty"},
		{"tombstone with keys", batch(model.Record{ID: "a", Dead: v1, Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("x"), Ver: v1}}}}), "tombstone with 1 keys"},
		{"tombstone with removed key", batch(model.Record{ID: "a", Dead: v1, Keys: []model.KeyValue{{Key: "k", Value: model.Value{Ver: v1, Deleted: true}}}}), "tombstone with 1 keys"},
		{"tombstone with principal", batch(model.Record{ID: "a", Dead: v1, Principal: "u"}), "tombstone with 0 keys or a principal"},
		{"tombstone with principal version", batch(model.Record{ID: "a", Dead: v1, PrincipalVer: v1}), "tombstone with 0 keys or a principal"},
		{"fetch empty ID", rawFrame(t, FormatVersion, MsgFetch, &Fetch{Req: 1}), "fetch: empty session ID"},
		{"found reply without ID", rawFrame(t, FormatVersion, MsgFetchReply, &FetchReply{Found: true}), "empty session ID"},
		{"sync chunk bad record", rawFrame(t, FormatVersion, MsgTransferChunk, &TransferChunk{Records: []model.Record{{ID: "a"}, {}}}), "record 1: empty session ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, msg, err := Decode(tc.frame)
			require.ErrorIs(t, err, ErrMalformed)
			require.NotErrorIs(t, err, ErrTooLarge)
			require.Contains(t, err.Error(), tc.msg)
			require.Nil(t, msg)
		})
	}
}

// TestDecodeTolerant pins what Decode accepts from a newer or differently
// built peer: unknown fields, and any msgpack int width.
func TestDecodeTolerant(t *testing.T) {
	frame := rawFrame(t, FormatVersion, MsgAck, map[string]any{"s": uint8(5), "future": []any{1, "x", nil}})
	mt, msg, err := Decode(frame)
	require.NoError(t, err)
	require.Equal(t, MsgAck, mt)
	require.Equal(t, &Ack{Seq: 5}, msg)
}

func TestDecodeLimitsDefaults(t *testing.T) {
	require.Equal(t, DefaultLimits, Limits{}.withDefaults())
	require.Equal(t, DefaultLimits, Limits{MaxFrame: -1}.withDefaults())
	got := Limits{MaxKeys: 5}.withDefaults()
	require.Equal(t, 5, got.MaxKeys)
	require.Equal(t, DefaultLimits.MaxFrame, got.MaxFrame)
}

func TestCodecDecodeDoesNotAliasFrame(t *testing.T) {
	frame, err := Encode(MsgBatch, codecBatch(1, 1, 4))
	require.NoError(t, err)
	_, msg, err := Decode(frame)
	require.NoError(t, err)
	want := normMsg(msg)
	for i := range frame {
		frame[i] = 0
	}
	require.Equal(t, want, normMsg(msg))
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := codecBatch(32, 4, 200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(MsgBatch, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) { benchDecodeBatch(b, 32, true) }

func BenchmarkDecodeBatch10(b *testing.B) { benchDecodeBatch(b, 10, false) }

// benchDecodeBatch decodes a Batch of n records of 4 keys of 200 bytes
// (setBytes: reporting MB/s).
func benchDecodeBatch(b *testing.B, n int, setBytes bool) {
	frame, err := Encode(MsgBatch, codecBatch(n, 4, 200))
	if err != nil {
		b.Fatal(err)
	}
	if setBytes {
		b.SetBytes(int64(len(frame)))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckStructureBatch(b *testing.B) {
	frame, err := Encode(MsgBatch, codecBatch(32, 4, 200))
	if err != nil {
		b.Fatal(err)
	}
	lim := DefaultLimits
	b.ReportAllocs()
	for b.Loop() {
		if err := checkStructure(frame[2:], &lim); err != nil {
			b.Fatal(err)
		}
	}
}
