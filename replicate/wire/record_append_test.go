package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/peersession/peersession/replicate/model"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// requireAppendMatches checks that appendBody writes for msg the bytes of
// the reference Encoder path (encodeBody), after any prefix, and that appendedEntries
// counts the map entries checkStructure's walker counts in them.
func requireAppendMatches(t testing.TB, msg any) {
	t.Helper()
	want := rawBody(t, func(e *msgpack.Encoder) { require.NoError(t, encodeBody(e, msg)) })

	got, ok := appendBody(nil, msg)
	require.True(t, ok, "%T", msg)
	require.Equal(t, want, got)

	prefix := []byte{FormatVersion, 0x42}
	got, ok = appendBody(bytes.Clone(prefix), msg)
	require.True(t, ok)
	require.Equal(t, append(prefix, want...), got)

	require.Equal(t, walkEntries(t, want), appendedEntries(msg))
}

// walkEntries returns the map entries checkStructure counts in body,
// without its limits.
func walkEntries(t testing.TB, body []byte) int {
	t.Helper()
	w := walker{b: body, maxElems: math.MaxInt, maxBytes: math.MaxInt, maxEntries: math.MaxInt}
	require.NoError(t, w.object(0))
	require.Equal(t, len(body), w.pos)
	return w.entries
}

// requireEncodeMatchesOld checks that Encode accepts msg exactly when the
// encoder before the appender did (oldEncode), with the same frame, and
// refuses it for the same reason (ErrTooLarge or not).
func requireEncodeMatchesOld(t testing.TB, mt MsgType, msg any) {
	t.Helper()
	want, wantErr := oldEncode(mt, msg)
	got, err := Encode(mt, msg)
	if wantErr != nil {
		require.Error(t, err)
		require.Equal(t, errors.Is(wantErr, ErrTooLarge), errors.Is(err, ErrTooLarge), "old: %v, new: %v", wantErr, err)
		return
	}
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// lengthEdges are the lengths where msgpack changes a str, bin, array or
// map header: fix forms end at 15 or 31, 8-bit ones at 255, 16-bit ones
// at 65535.
var lengthEdges = []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536}

// int64Edges are int64s around msgpack's int forms; EncodeInt64 writes
// all of them in 9 bytes, and the appender must too.
var int64Edges = []int64{0, 1, -1, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536,
	math.MaxInt32, math.MinInt32, math.MaxUint32, math.MaxInt64, math.MinInt64}

// uint64Edges likewise, for Ack and Batch sequence numbers.
var uint64Edges = []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1,
	1 << 63, math.MaxUint64}

func TestAppendMatchesEncoderTable(t *testing.T) {
	v := model.Version{Wall: 1_700_000_000_000_000_000, Seq: 7, Node: 3}
	maxVer := model.Version{Wall: math.MaxInt64, Seq: math.MaxUint32, Node: math.MaxUint64}
	var recs []model.Record
	for _, n := range lengthEdges {
		s := strings.Repeat("s", n)
		recs = append(recs,
			model.Record{ID: s},
			model.Record{ID: "p", Principal: s, PrincipalVer: v},
			model.Record{ID: "k", Keys: []model.KeyValue{{Key: s, Value: model.Value{Ver: v}}}},
			model.Record{ID: "d", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: bytes.Repeat([]byte{0xc1}, n), Ver: v}}}},
		)
	}
	for _, n := range []int{15, 16, 65535, 65536} { // fixmap, map16, map32 Keys
		r := model.Record{ID: "many", Keys: make([]model.KeyValue, n)}
		for i := range r.Keys {
			r.Keys[i] = model.KeyValue{Key: strings.Repeat("k", i%3) + string(rune('0'+i%10)), Value: model.Value{Ver: model.Version{Seq: uint32(i)}, Deleted: i%2 == 0}}
		}
		recs = append(recs, r)
	}
	for _, x := range int64Edges {
		recs = append(recs,
			model.Record{ID: "t", Created: x, Deadline: -x, IdleTimeout: x / 2, Access: x ^ 1},
			model.Record{ID: "v", PrincipalVer: model.Version{Wall: x}, Dead: model.Version{Wall: -x, Seq: uint32(x), Node: uint64(x)}},
		)
	}
	recs = append(recs,
		model.Record{},               // every field zero: i "" and both versions
		model.Record{ID: "nil keys"}, // k left out
		model.Record{ID: "empty", Keys: []model.KeyValue{}}, // k left out too
		model.Record{ID: "dead", Dead: v},
		model.Record{ID: "max", Created: math.MaxInt64, Principal: "u", PrincipalVer: maxVer, Dead: maxVer},
		model.Record{ID: "values", Keys: []model.KeyValue{
			{Key: "", Value: model.Value{}},                                 // empty key, zero value
			{Key: "deleted", Value: model.Value{Ver: v, Deleted: true}},     // x true
			{Key: "empty data", Value: model.Value{Data: []byte{}, Ver: v}}, // d left out
			{Key: "nil data", Value: model.Value{Data: nil, Ver: maxVer}},   // d left out
			{Key: "data", Value: model.Value{Data: []byte{0x93, 1, 2, 3}, Ver: v}},
			{Key: "deleted with data", Value: model.Value{Data: []byte("x"), Ver: v, Deleted: true}}, // validate refuses; the codec writes it
		}},
		codecRecord("full", 20, 300),
	)
	for i, r := range recs {
		for _, seq := range []uint64{0, uint64(i), math.MaxUint64} {
			requireAppendMatches(t, &Batch{Seq: seq, Records: []model.Record{r}})
			requireAppendMatches(t, TransferChunk{Req: seq, Records: []model.Record{r}, Done: i%2 == 0})
			requireAppendMatches(t, &FetchReply{Req: seq, Found: true, Record: r, More: i%2 == 0})
		}
	}
	requireAppendMatches(t, &Batch{Seq: 1, Records: recs}) // array16 of records
	for _, n := range []int{0, 15, 16, 65535, 65536} {     // records: fixarray to array32
		requireAppendMatches(t, Batch{Seq: 2, Records: make([]model.Record, n)})
	}
	for _, done := range []bool{false, true} {
		requireAppendMatches(t, &TransferChunk{Req: 3, Done: done})                            // nil records: nil
		requireAppendMatches(t, &TransferChunk{Req: 3, Records: []model.Record{}, Done: done}) // empty: an empty array
		requireAppendMatches(t, TransferChunk{Req: 4, Records: recs, Done: done})
	}
	requireAppendMatches(t, Batch{})
	requireAppendMatches(t, FetchReply{})
	requireAppendMatches(t, &FetchReply{Req: 5, More: true})
	requireAppendMatches(t, &Batch{Records: []model.Record{}})
	for _, seq := range uint64Edges {
		requireAppendMatches(t, Ack{Seq: seq})
		requireAppendMatches(t, &Ack{Seq: seq})
		requireAppendMatches(t, &Ack{Seq: 7, Refused: seq}) // zero: omitted
		requireAppendMatches(t, Ack{Seq: seq, Refused: seq})
		requireAppendMatches(t, &Batch{Seq: seq})
	}
}

// TestAppendMatchesEncoderRandom is the property test: over many random
// records (randRecord: every field form, lengths across str8/str16/str32
// and bin8/bin16/bin32), the appender writes the Encoder's bytes, and
// Encode answers as the encoder before it did.
func TestAppendMatchesEncoderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 300 {
		recs := randRecords(rng, rng.IntN(24))
		switch {
		case len(recs) == 0 && i%2 == 0:
			recs = nil
		case len(recs) == 0:
			recs = []model.Record{}
		}
		seq := uint64Edges[rng.IntN(len(uint64Edges))] ^ rng.Uint64()>>rng.IntN(65)
		msgs := []struct {
			t   MsgType
			msg any
		}{
			{MsgBatch, &Batch{Seq: seq, Records: recs}},
			{MsgBatch, Batch{Seq: seq, Records: recs}},
			{MsgTransferChunk, &TransferChunk{Req: seq, Records: recs, Done: i%3 == 0}},
			{MsgTransferChunk, TransferChunk{Req: seq, Records: recs, Done: i%3 == 1}},
			{MsgAck, &Ack{Seq: seq}},
			{MsgAck, Ack{Seq: seq, Refused: seq >> rng.IntN(65)}},
		}
		for _, m := range msgs {
			requireAppendMatches(t, m.msg)
			requireEncodeMatchesOld(t, m.t, m.msg)
		}
	}
}

// TestEncodeMatchesOldSamples: every sample message, the hot ones through
// the appender and the others through msgpack.Encoder, encodes as before.
func TestEncodeMatchesOldSamples(t *testing.T) {
	for _, tc := range codecSamples() {
		want, err := oldEncode(tc.t, tc.msg)
		require.NoError(t, err, tc.name)
		got, err := Encode(tc.t, tc.msg)
		require.NoError(t, err, tc.name)
		require.Equal(t, want, got, tc.name)
	}
}

// TestEncodeMaxEntries checks the one limit validate does not cover, the
// sum of map entries, now that Encode no longer walks an appended frame:
// a Batch of exactly MaxEntries entries (under MaxFrame) encodes and a
// default peer decodes it; one entry more is refused, as the old encoder
// (checkStructure) refused it, with ErrTooLarge.
func TestEncodeMaxEntries(t *testing.T) {
	// A record of k removed keys has 4 + 3k entries: i, pv, x, k, and for
	// each key its Keys entry and its value's v and x. The Batch has 2
	// more (s, r): 2 + 349*(4+3*1000) + (4+3*58) is exactly 1<<20.
	keys := func(k int) []model.KeyValue {
		kvs := make([]model.KeyValue, k)
		for i := range kvs {
			kvs[i] = model.KeyValue{Key: strconv.Itoa(i), Value: model.Value{Ver: model.Version{Wall: 1}, Deleted: true}}
		}
		return kvs
	}
	thousand := keys(1000)
	recs := make([]model.Record, 350)
	for i := range recs {
		recs[i] = model.Record{ID: "s" + strconv.Itoa(i), Keys: thousand}
	}
	recs[349].Keys = keys(58)
	b := &Batch{Seq: 1, Records: recs}
	require.Equal(t, DefaultLimits.MaxEntries, appendedEntries(b))

	frame, err := Encode(MsgBatch, b)
	require.NoError(t, err)
	require.Less(t, len(frame), DefaultLimits.MaxFrame)
	require.Equal(t, DefaultLimits.MaxEntries, walkEntries(t, frame[2:]))
	old, err := oldEncode(MsgBatch, b)
	require.NoError(t, err)
	require.Equal(t, old, frame)
	_, _, err = Decode(frame)
	require.NoError(t, err)

	recs[0].Created = 1 // one entry more
	_, err = Encode(MsgBatch, b)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "(MaxEntries)")
	_, err = oldEncode(MsgBatch, b)
	require.ErrorIs(t, err, ErrTooLarge)
}

// TestEncodeToReusesBuffer checks EncodeTo's contract with the appender:
// the frame is buf's bytes, and a buffer large enough is not replaced.
func TestEncodeToReusesBuffer(t *testing.T) {
	var buf bytes.Buffer
	big, err := EncodeTo(&buf, MsgBatch, codecBatch(8, 4, 100))
	require.NoError(t, err)
	require.Equal(t, big, buf.Bytes())
	small, err := EncodeTo(&buf, MsgAck, &Ack{Seq: 5})
	require.NoError(t, err)
	require.Equal(t, small, buf.Bytes())
	require.Same(t, &big[0], &small[0], "the second frame reuses the first one's array")
	want, err := Encode(MsgAck, &Ack{Seq: 5})
	require.NoError(t, err)
	require.Equal(t, want, small)
}

// fuzzSource turns fuzz input into record fields, zeros once it runs out.
type fuzzSource struct{ b []byte }

// byte returns the next input byte.
func (s *fuzzSource) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

// u64 returns the next 8 input bytes as a uint64, or fewer when the
// first says so: small values are as interesting as large ones.
func (s *fuzzSource) u64() uint64 {
	c := s.byte()
	if c < 0x80 {
		return uint64(c) // 0..127, and below as negative int64s when shifted
	}
	var p [8]byte
	for i := range p {
		p[i] = s.byte()
	}
	x := binary.BigEndian.Uint64(p[:])
	if c&1 != 0 {
		x = -x
	}
	return x
}

// length returns a length: a small one from the input, or one at an
// edge where msgpack's header changes.
func (s *fuzzSource) length() int {
	c := s.byte()
	if c < 0xe0 {
		return int(c % 40)
	}
	return lengthEdges[int(c)%len(lengthEdges)]
}

// str returns a string of length() bytes, taken from the input as far as
// it goes.
func (s *fuzzSource) str() string {
	b := make([]byte, s.length())
	s.b = s.b[copy(b, s.b):]
	return string(b)
}

// data returns Value.Data: nil, empty or length() bytes.
func (s *fuzzSource) data() []byte {
	switch c := s.byte(); c % 4 {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	return []byte(s.str())
}

// version returns a Version, zero half the time.
func (s *fuzzSource) version() model.Version {
	if s.byte()%2 == 0 {
		return model.Version{}
	}
	return model.Version{Wall: int64(s.u64()), Seq: uint32(s.u64()), Node: s.u64()}
}

// record returns a Record from the input.
func (s *fuzzSource) record() model.Record {
	flags := s.byte()
	r := model.Record{ID: s.str()}
	for i, p := range [...]*int64{&r.Created, &r.Deadline, &r.IdleTimeout, &r.Access} {
		if flags&(1<<i) != 0 {
			*p = int64(s.u64())
		}
	}
	if flags&0x10 != 0 {
		r.Principal = s.str()
	}
	r.PrincipalVer = s.version()
	switch {
	case flags&0x20 != 0:
		r.Keys = make([]model.KeyValue, int(s.byte()%20))
		for i := range r.Keys {
			r.Keys[i] = model.KeyValue{Key: s.str(), Value: model.Value{Data: s.data(), Ver: s.version(), Deleted: s.byte()%2 == 0}}
		}
	case flags&0x40 != 0:
		r.Keys = []model.KeyValue{}
	}
	if flags&0x80 != 0 {
		r.Dead = s.version()
	}
	return r
}

// FuzzAppendMatchesEncoder builds Batches, TransferChunks and Acks from fuzz
// input and checks that the appender writes the reference Encoder's bytes
// and that Encode answers as the encoder before it did.
func FuzzAppendMatchesEncoder(f *testing.F) {
	f.Add(uint64(0), false, uint8(0), []byte{})
	f.Add(uint64(1), true, uint8(1), []byte{0xff, 5, 'a', 'b', 'c', 'd', 'e'})
	f.Add(uint64(math.MaxUint64), false, uint8(3), bytes.Repeat([]byte{0xf7, 0x83, 1, 2, 3, 4, 5, 6, 7, 8}, 8))
	f.Add(uint64(1<<32), true, uint8(2), []byte{0x21, 3, 'i', 'd', '1', 1, 0x81, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3, 2})
	f.Add(uint64(128), false, uint8(4), []byte{0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea})
	f.Fuzz(func(t *testing.T, seq uint64, done bool, nrecs uint8, data []byte) {
		src := &fuzzSource{b: data}
		var recs []model.Record
		if nrecs%8 != 0 || done {
			recs = make([]model.Record, nrecs%8)
		}
		for i := range recs {
			recs[i] = src.record()
		}
		for _, m := range []struct {
			t   MsgType
			msg any
		}{
			{MsgBatch, &Batch{Seq: seq, Records: recs}},
			{MsgTransferChunk, TransferChunk{Req: seq, Records: recs, Done: done}},
			{MsgAck, &Ack{Seq: seq}},
			{MsgAck, &Ack{Seq: seq, Refused: uint64(nrecs) << (seq % 64)}},
		} {
			requireAppendMatches(t, m.msg)
			requireEncodeMatchesOld(t, m.t, m.msg)
		}
	})
}
