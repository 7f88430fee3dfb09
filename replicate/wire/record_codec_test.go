package wire

import (
	"bytes"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/peersession/peersession/replicate/internal/testrec"
	"github.com/peersession/peersession/replicate/model"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// The shadow types below are Record, Value, Batch and TransferChunk as they
// were before record_codec.go: the same fields and tags, no methods, so
// msgpack encodes and decodes them by reflection. versionReflect keeps
// Version's as_array tag and its decoder (codec.go, older than this file)
// but not its EncodeMsgpack. They are the reference the hand-written
// codec must match byte for byte and value for value.

type versionReflect model.Version

func (v *versionReflect) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeWith(d, func(rd *reader) error { return rd.version((*model.Version)(v)) })
}

// decodeWith reads d's next object and decodes it with read, the
// hand-written decoder under test.
func decodeWith(d *msgpack.Decoder, read func(*reader) error) error {
	raw, err := d.DecodeRaw()
	if err != nil {
		return err
	}
	return read(&reader{b: raw})
}

type valueReflect struct {
	Data    []byte         `msgpack:"d,omitempty"`
	Ver     versionReflect `msgpack:"v"`
	Deleted bool           `msgpack:"x,omitempty"`
}

type recordReflect struct {
	ID           string                  `msgpack:"i"`
	Created      int64                   `msgpack:"c,omitempty"`
	Deadline     int64                   `msgpack:"e,omitempty"`
	IdleTimeout  int64                   `msgpack:"t,omitempty"`
	Access       int64                   `msgpack:"a,omitempty"`
	Principal    string                  `msgpack:"p,omitempty"`
	PrincipalVer versionReflect          `msgpack:"pv"`
	Keys         map[string]valueReflect `msgpack:"k,omitempty"`
	Dead         versionReflect          `msgpack:"x"`
}

type batchReflect struct {
	Seq     uint64          `msgpack:"s"`
	Records []recordReflect `msgpack:"r"`
}

type transferChunkReflect struct {
	Req     uint64          `msgpack:"q"`
	Records []recordReflect `msgpack:"r"`
	Done    bool            `msgpack:"d"`
}

func toReflect(r model.Record) recordReflect {
	rr := recordReflect{ID: r.ID, Created: r.Created, Deadline: r.Deadline, IdleTimeout: r.IdleTimeout,
		Access: r.Access, Principal: r.Principal, PrincipalVer: versionReflect(r.PrincipalVer), Dead: versionReflect(r.Dead)}
	if r.Keys != nil {
		rr.Keys = make(map[string]valueReflect, len(r.Keys))
		for _, kv := range r.Keys {
			rr.Keys[kv.Key] = valueReflect{Data: kv.Value.Data, Ver: versionReflect(kv.Value.Ver), Deleted: kv.Value.Deleted}
		}
	}
	return rr
}

// fromReflect converts back, keeping nil and empty apart, so that
// require.Equal compares decoders exactly.
func fromReflect(rr recordReflect) model.Record {
	r := model.Record{ID: rr.ID, Created: rr.Created, Deadline: rr.Deadline, IdleTimeout: rr.IdleTimeout,
		Access: rr.Access, Principal: rr.Principal, PrincipalVer: model.Version(rr.PrincipalVer), Dead: model.Version(rr.Dead)}
	if rr.Keys != nil {
		m := make(map[string]model.Value, len(rr.Keys))
		for k, v := range rr.Keys {
			m[k] = model.Value{Data: v.Data, Ver: model.Version(v.Ver), Deleted: v.Deleted}
		}
		r.Keys = testrec.KeysOf(m)
	}
	return r
}

func fromReflectAll(rrs []recordReflect) []model.Record {
	if rrs == nil {
		return nil
	}
	out := make([]model.Record, len(rrs))
	for i, rr := range rrs {
		out[i] = fromReflect(rr)
	}
	return out
}

// randRecords returns n records from randRecord.
func randRecords(rng *rand.Rand, n int) []model.Record {
	recs := make([]model.Record, n)
	for i := range recs {
		recs[i] = randRecord(rng)
	}
	return recs
}

// randRecord returns a record that exercises every field and encoding
// width: strings of 0 to 300 bytes (fixstr, str8, str16), extreme ints,
// zero and random versions, nil, empty and large Keys (a map16 on the wire), and
// values nil, empty, small and large (bin8, bin16, bin32), deleted or not.
// It need not pass validate: the codec encodes what it is given.
func randRecord(rng *rand.Rand) model.Record {
	str := func() string {
		n := [...]int{0, 1, 2, 5, 31, 32, 255, 256, 300}[rng.IntN(9)]
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	i64 := func() int64 {
		switch rng.IntN(8) {
		case 0, 1:
			return 0
		case 2:
			return [...]int64{1, -1, 127, 128, -32, -33, 255, 65536, math.MaxInt64, math.MinInt64}[rng.IntN(10)]
		}
		return rng.Int64()
	}
	ver := func() model.Version {
		if rng.IntN(3) == 0 {
			return model.Version{}
		}
		return model.Version{Wall: i64(), Seq: rng.Uint32() >> rng.IntN(33), Node: rng.Uint64() >> rng.IntN(65)}
	}
	r := model.Record{ID: str(), Created: i64(), Deadline: i64(), IdleTimeout: i64(), Access: i64(),
		PrincipalVer: ver(), Dead: ver()}
	if rng.IntN(2) == 0 {
		r.Principal = str()
	}
	switch rng.IntN(6) {
	case 0: // nil Keys
	case 1:
		r.Keys = []model.KeyValue{}
	default:
		n := 1 + rng.IntN([...]int{1, 4, 20}[rng.IntN(3)])
		r.Keys = make([]model.KeyValue, 0, n)
		for range n {
			v := model.Value{Ver: ver(), Deleted: rng.IntN(4) == 0}
			switch rng.IntN(7) {
			case 0: // nil
			case 1:
				v.Data = []byte{}
			case 2:
				v.Data = bytes.Repeat([]byte{byte(rng.IntN(256))}, 300)
			case 3:
				if rng.IntN(20) == 0 {
					v.Data = make([]byte, 70000)
				}
			default:
				v.Data = []byte(str())
			}
			r.Set(str(), v)
		}
	}
	return r
}

// TestRecordCodecMatchesReflection is the compatibility proof: over many
// random records, the hand-written encoding is the reflection encoding of
// the same record with Keys as a map (byte for byte up to the order of
// Keys, which the reference's map randomises and the codec writes sorted:
// equal length, and every Value byte for byte), and each side's decoder
// reads what the other side wrote into an equal record.
func TestRecordCodecMatchesReflection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		r := randRecord(rng)
		want := testrec.Norm(r) // what survives the wire: empty is omitted

		old, err := msgpack.Marshal(toReflect(r))
		require.NoError(t, err)
		neu := appendRecord(nil, &r)
		byValue, err := msgpack.Marshal(refCodecRecord(r))
		require.NoError(t, err)
		require.Len(t, neu, len(old), "record %d", i)
		require.Len(t, byValue, len(old), "record %d", i)
		if len(r.Keys) <= 1 {
			require.Equal(t, old, neu, "record %d", i)
			require.Equal(t, old, byValue, "record %d", i)
		}
		for _, kv := range r.Keys {
			v := kv.Value
			ov, err := msgpack.Marshal(valueReflect{Data: v.Data, Ver: versionReflect(v.Ver), Deleted: v.Deleted})
			require.NoError(t, err)
			nv := appendValue(nil, &v)
			require.Equal(t, ov, nv, "record %d key %q", i, kv.Key)
		}

		// Old bytes, new decoders: msgpack's (through DecodeMsgpack) and
		// reader's (what Decode uses).
		var got model.Record
		require.NoError(t, msgpack.Unmarshal(old, (*refCodecRecord)(&got)))
		require.Equal(t, want, got, "record %d", i)
		var got2 model.Record
		rd := reader{b: old}
		require.NoError(t, rd.record(&got2))
		require.Equal(t, len(old), rd.pos)
		require.Equal(t, want, got2, "record %d", i)

		// New bytes, old decoder.
		var rr recordReflect
		require.NoError(t, msgpack.Unmarshal(neu, &rr))
		require.Equal(t, want, fromReflect(rr), "record %d", i)
	}
}

// TestRecordCodecBatchMatchesReflection checks the same of whole Batch and
// TransferChunk bodies, which Decode reads with reader.
func TestRecordCodecBatchMatchesReflection(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		recs := randRecords(rng, rng.IntN(20))
		rrs := make([]recordReflect, len(recs))
		for j, r := range recs {
			rrs[j] = toReflect(r)
		}
		if len(recs) == 0 && i%2 == 0 {
			recs, rrs = nil, nil // encodes as nil
		}
		b := Batch{Seq: rng.Uint64(), Records: recs}
		old, err := msgpack.Marshal(batchReflect{Seq: b.Seq, Records: rrs})
		require.NoError(t, err)
		neu, _ := appendBody(nil, &b)
		require.Len(t, neu, len(old))
		// Encode writes Batch by hand (encodeBody): the same bytes as
		// msgpack.
		requireEncodeBody(t, neu, &b, b)

		var got Batch
		require.NoError(t, decodeBody(old, &got))
		var ref batchReflect
		require.NoError(t, msgpack.Unmarshal(old, &ref))
		require.Equal(t, Batch{Seq: ref.Seq, Records: fromReflectAll(ref.Records)}, got)
		require.Equal(t, normMsg(&b), normMsg(&got))
		ref = batchReflect{}
		require.NoError(t, msgpack.Unmarshal(neu, &ref))
		require.Equal(t, normMsg(&b), normMsg(&Batch{Seq: ref.Seq, Records: fromReflectAll(ref.Records)}))

		c := TransferChunk{Req: rng.Uint64(), Records: recs, Done: i%3 == 0}
		old, err = msgpack.Marshal(transferChunkReflect{Req: c.Req, Records: rrs, Done: c.Done})
		require.NoError(t, err)
		neuc, _ := appendBody(nil, &c)
		requireEncodeBody(t, neuc, &c, c)
		var gotc TransferChunk
		require.NoError(t, decodeBody(old, &gotc))
		var refc transferChunkReflect
		require.NoError(t, msgpack.Unmarshal(old, &refc))
		require.Equal(t, TransferChunk{Req: refc.Req, Records: fromReflectAll(refc.Records), Done: refc.Done}, gotc)
		require.Equal(t, normMsg(&c), normMsg(&gotc))
	}
}

// rawBody builds a msgpack body by hand, to put fields in any order, give
// them twice, of unusual types, or of the wrong type.
func rawBody(t testing.TB, build func(e *msgpack.Encoder)) []byte {
	t.Helper()
	var buf bytes.Buffer
	build(msgpack.NewEncoder(&buf))
	return buf.Bytes()
}

// requireEncodeBody checks that encodeBody writes want for each of msgs
// (a message and its pointer: Encode takes either).
func requireEncodeBody(t testing.TB, want []byte, msgs ...any) {
	t.Helper()
	for _, m := range msgs {
		require.Equal(t, want, rawBody(t, func(e *msgpack.Encoder) { require.NoError(t, encodeBody(e, m)) }), "%#v", m)
	}
}

// recordDecodings decodes body as a Record three ways: by reflection (the
// reference), through msgpack's Decoder (refCodecRecord), and with reader. It returns the
// three results and errors.
func recordDecodings(body []byte) (ref, custom, fast model.Record, refErr, customErr, fastErr error) {
	var rr recordReflect
	if refErr = msgpack.Unmarshal(body, &rr); refErr == nil {
		ref = fromReflect(rr)
	}
	customErr = msgpack.Unmarshal(body, (*refCodecRecord)(&custom))
	rd := reader{b: body}
	fastErr = rd.record(&fast)
	return
}

func TestRecordCodecEdgeCases(t *testing.T) {
	v1 := model.Version{Wall: 1, Seq: 2, Node: 3}
	v2 := model.Version{Wall: 4, Seq: 5, Node: 6}
	enc := func(e *msgpack.Encoder, kv ...any) { // a map of the pairs in kv
		_ = e.EncodeMapLen(len(kv) / 2)
		for _, x := range kv {
			_ = e.Encode(x)
		}
	}
	rawVer := func(e *msgpack.Encoder) { _ = e.Encode(v1) }
	tests := []struct {
		name  string
		body  func(e *msgpack.Encoder)
		want  *model.Record // nil: just agree with reflection
		isErr bool
	}{
		{"fields reversed", func(e *msgpack.Encoder) {
			enc(e, "x", v1, "k", map[string]model.Value{"a": {Data: []byte("1"), Ver: v1}}, "pv", v1, "p", "u",
				"a", 4, "t", 3, "e", 2, "c", 1, "i", "id")
		}, &model.Record{ID: "id", Created: 1, Deadline: 2, IdleTimeout: 3, Access: 4, Principal: "u", PrincipalVer: v1,
			Keys: []model.KeyValue{{Key: "a", Value: model.Value{Data: []byte("1"), Ver: v1}}}, Dead: v1}, false},
		{"unknown fields skipped", func(e *msgpack.Encoder) {
			enc(e, "zz", map[string]any{"n": []any{1, "x", nil, 2.5, true}}, "i", "id", "",
				[]byte{1, 2}, strings.Repeat("long", 20), float32(1.5), "q", nil, "w", uint64(math.MaxUint64), "u", -5)
		}, &model.Record{ID: "id"}, false},
		{"nil for every field", func(e *msgpack.Encoder) {
			enc(e, "i", nil, "c", nil, "e", nil, "t", nil, "a", nil, "p", nil, "pv", nil, "k", nil, "x", nil)
		}, &model.Record{}, false},
		{"nil record", func(e *msgpack.Encoder) { _ = e.EncodeNil() }, &model.Record{}, false},
		{"empty map record", func(e *msgpack.Encoder) { _ = e.EncodeMapLen(0) }, &model.Record{}, false},
		{"empty keys stay a map", func(e *msgpack.Encoder) { enc(e, "i", "a", "k", map[string]model.Value{}) },
			&model.Record{ID: "a", Keys: []model.KeyValue{}}, false},
		{"value fields nil", func(e *msgpack.Encoder) {
			enc(e, "i", "a", "k", map[string]any{"k": map[string]any{"d": nil, "v": nil, "x": nil}})
		}, &model.Record{ID: "a", Keys: []model.KeyValue{{Key: "k", Value: model.Value{}}}}, false},
		{"nil value", func(e *msgpack.Encoder) { enc(e, "i", "a", "k", map[string]any{"k": nil}) },
			&model.Record{ID: "a", Keys: []model.KeyValue{{Key: "k", Value: model.Value{}}}}, false},
		{"empty data", func(e *msgpack.Encoder) { enc(e, "k", map[string]any{"k": map[string]any{"d": []byte{}}}) },
			&model.Record{Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte{}}}}}, false},
		{"deleted without data", func(e *msgpack.Encoder) {
			enc(e, "i", "a", "k", map[string]any{"k": map[string]any{"x": true, "v": v1}})
		}, &model.Record{ID: "a", Keys: []model.KeyValue{{Key: "k", Value: model.Value{Ver: v1, Deleted: true}}}}, false},
		{"value unknown fields and order", func(e *msgpack.Encoder) {
			enc(e, "k", map[string]any{"k": map[string]any{"x": false, "?": []int{1}, "v": v1, "d": "str as bytes"}})
		}, &model.Record{Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("str as bytes"), Ver: v1}}}}, false},
		{"int widths", func(e *msgpack.Encoder) {
			enc(e, "c", uint8(200), "e", int8(-3), "t", uint16(60000), "a", int32(-70000), "i", []byte("bin id"))
		}, &model.Record{ID: "bin id", Created: 200, Deadline: -3, IdleTimeout: 60000, Access: -70000}, false},
		{"version widths", func(e *msgpack.Encoder) {
			enc(e, "pv", []any{5, uint8(6), uint16(7)}, "x", []any{-1})
		}, &model.Record{PrincipalVer: model.Version{Wall: 5, Seq: 6, Node: 7}, Dead: model.Version{Wall: -1}}, false},
		{"version extra elements", func(e *msgpack.Encoder) { enc(e, "x", []any{1, 2, 3, "more", []int{4}}) },
			&model.Record{Dead: model.Version{Wall: 1, Seq: 2, Node: 3}}, false},
		{"field twice", func(e *msgpack.Encoder) {
			enc(e, "i", "a", "k", map[string]model.Value{"1": {Ver: v1}}, "i", "b", "k", map[string]model.Value{"2": {Ver: v1}})
		}, &model.Record{ID: "b", Keys: []model.KeyValue{{Key: "1", Value: model.Value{Ver: v1}}, {Key: "2", Value: model.Value{Ver: v1}}}}, false},
		{"keys out of order", func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("k")
			_ = e.EncodeMapLen(3)
			for _, k := range []string{"c", "a", "b"} {
				_ = e.EncodeString(k)
				_ = e.Encode(model.Value{Data: []byte(k), Ver: v1})
			}
		}, &model.Record{Keys: []model.KeyValue{{Key: "a", Value: model.Value{Data: []byte("a"), Ver: v1}}, {Key: "b", Value: model.Value{Data: []byte("b"), Ver: v1}},
			{Key: "c", Value: model.Value{Data: []byte("c"), Ver: v1}}}}, false},
		{"key repeated: last wins", func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("k")
			_ = e.EncodeMapLen(4)
			for i, k := range []string{"b", "a", "b", "a"} {
				_ = e.EncodeString(k)
				_ = e.Encode(model.Value{Data: []byte{byte('0' + i)}, Ver: v1})
			}
		}, &model.Record{Keys: []model.KeyValue{{Key: "a", Value: model.Value{Data: []byte("3"), Ver: v1}}, {Key: "b", Value: model.Value{Data: []byte("2"), Ver: v1}}}}, false},
		{"key repeated across fields", func(e *msgpack.Encoder) {
			enc(e, "k", map[string]model.Value{"1": {Ver: v1}, "2": {Ver: v1}}, "k", map[string]model.Value{"1": {Ver: v2}})
		}, &model.Record{Keys: []model.KeyValue{{Key: "1", Value: model.Value{Ver: v2}}, {Key: "2", Value: model.Value{Ver: v1}}}}, false},
		{"keys then nil", func(e *msgpack.Encoder) { enc(e, "k", map[string]model.Value{"1": {Ver: v1}}, "k", nil) },
			&model.Record{}, false},
		{"map16 header", func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(17) // more than a fixmap holds
			for i := range 16 {
				_ = e.EncodeString("u" + strconv.Itoa(i))
				_ = e.EncodeInt(int64(i))
			}
			_ = e.EncodeString("i")
			_ = e.EncodeString("a")
		}, &model.Record{ID: "a"}, false},
		{"array form", func(e *msgpack.Encoder) {
			_ = e.Encode([]any{"id", 1, 2, 3, 4, "p", v1, map[string]any{"k": []any{[]byte("d"), v1, true}}, v1})
		}, &model.Record{ID: "id", Created: 1, Deadline: 2, IdleTimeout: 3, Access: 4, Principal: "p", PrincipalVer: v1,
			Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte("d"), Ver: v1, Deleted: true}}}, Dead: v1}, false},
		{"empty array", func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(0) }, &model.Record{}, false},
		{"short array", func(e *msgpack.Encoder) { _ = e.Encode([]any{"id", 1}) }, nil, true},
		{"value short array", func(e *msgpack.Encoder) { enc(e, "k", map[string]any{"k": []any{1}}) }, nil, true},
		{"int as string", func(e *msgpack.Encoder) { enc(e, "c", "1") }, nil, true},
		{"float int", func(e *msgpack.Encoder) { enc(e, "c", 1.0) }, nil, true},
		{"string as int", func(e *msgpack.Encoder) { enc(e, "i", 1) }, nil, true},
		{"int field name", func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeInt(1); _ = e.EncodeInt(2) }, nil, true},
		{"keys as array", func(e *msgpack.Encoder) { enc(e, "k", []int{1}) }, nil, true},
		{"key as int", func(e *msgpack.Encoder) { enc(e, "k", map[int]model.Value{1: {}}) }, nil, true},
		{"bool as int", func(e *msgpack.Encoder) { enc(e, "k", map[string]any{"k": map[string]any{"x": 1}}) }, nil, true},
		{"version as map", func(e *msgpack.Encoder) { enc(e, "pv", map[string]any{"Wall": 1}) }, nil, true},
		{"not a map", func(e *msgpack.Encoder) { _ = e.EncodeString("record") }, nil, true},
		{"truncated", func(e *msgpack.Encoder) { _ = e.EncodeMapLen(2); _ = e.EncodeString("i") }, nil, true},
		{"raw version", func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("x"); rawVer(e) },
			&model.Record{Dead: v1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := rawBody(t, tc.body)
			ref, custom, fast, refErr, customErr, fastErr := recordDecodings(body)
			if tc.isErr {
				require.Error(t, refErr, "reflection accepts it")
				require.Error(t, customErr)
				require.Error(t, fastErr)
				return
			}
			require.NoError(t, refErr)
			require.NoError(t, customErr)
			require.NoError(t, fastErr)
			require.Equal(t, ref, custom)
			require.Equal(t, ref, fast)
			if tc.want != nil {
				require.Equal(t, *tc.want, fast)
			}
		})
	}
}

// TestRecordCodecZeroVersionsAndTombstone pins the bytes of two small
// records: a fresh one, and a tombstone.
func TestRecordCodecPinnedBytes(t *testing.T) {
	zeroVer := "93d30000000000000000ce00000000cf0000000000000000"
	for _, tc := range []struct {
		r    model.Record
		want string
	}{
		{model.Record{ID: "a"}, "83a169a161a27076" + zeroVer + "a178" + zeroVer},
		{model.Record{ID: "a", Dead: model.Version{Wall: 1, Seq: 2, Node: 3}},
			"83a169a161a27076" + zeroVer + "a178" + "93d30000000000000001ce00000002cf0000000000000003"},
		{model.Record{ID: "a", Created: 1, Keys: []model.KeyValue{{Key: "k", Value: model.Value{Ver: model.Version{}, Deleted: true}}}},
			"85a169a161a163d30000000000000001a27076" + zeroVer + "a16b81a16b82a176" + zeroVer + "a178c3a178" + zeroVer},
	} {
		got := appendRecord(nil, &tc.r)
		require.Equal(t, tc.want, bytesHex(got))
		old, err := msgpack.Marshal(toReflect(tc.r))
		require.NoError(t, err)
		require.Equal(t, tc.want, bytesHex(old))
	}
}

func bytesHex(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}

// TestRecordCodecHostileLengths checks that reader, used on its own
// (without checkStructure in front), allocates nothing a few bytes
// declare. (Record.DecodeMsgpack reads through msgpack's Skip, which
// reads a declared string in chunks of up to 1 MiB: a few MiB for these
// bodies, where reflection allocated all 4 GiB of a declared bin32.)
func TestRecordCodecHostileLengths(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xfe}
	for name, body := range map[string][]byte{
		"keys map32":   append([]byte{0x81, 0xa1, 'k', 0xdf}, huge...),
		"id str32":     append([]byte{0x81, 0xa1, 'i', 0xdb}, huge...),
		"data bin32":   append([]byte{0x81, 0xa1, 'k', 0x81, 0xa1, 'k', 0x81, 0xa1, 'd', 0xc6}, huge...),
		"record arr32": append([]byte{0xdd}, huge...),
		"batch r32":    append([]byte{0x81, 0xa1, 'r', 0xdd}, huge...),
		"records arr":  append([]byte{0x81, 0xa1, 'r', 0xdc, 0x10, 0x00}, bytes.Repeat([]byte{0xc0}, 0x0fff)...),
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 100 {
				var r model.Record
				rd := reader{b: body}
				require.Error(t, rd.record(&r))
				var b Batch
				rd = reader{b: body}
				_ = rd.batch(&b) // some of these are not batches
			}
			runtime.ReadMemStats(&after)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(100<<10))
		})
	}
}

// FuzzRecordCodec is a differential test: on any body that passes
// checkStructure (all a peer's frame can be when it reaches the
// decoders), reader and Record.DecodeMsgpack accept exactly what msgpack's
// reflection accepted, into the same record; and Batch bodies likewise.
// What they accept re-encodes into bytes reflection reads back equal.
func FuzzRecordCodec(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		r := randRecord(rng)
		if len(r.ID) > 40 {
			r.ID = r.ID[:40]
		}
		b, err := msgpack.Marshal(toReflect(r))
		require.NoError(f, err)
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	for _, s := range codecSamples() {
		if frame, err := Encode(s.t, s.msg); err == nil && (s.t == MsgBatch || s.t == MsgTransferChunk) {
			f.Add(frame[2:])
		}
	}
	f.Add([]byte{0xc0})
	f.Add([]byte{0x90})
	f.Add([]byte{0x92, 0x01, 0x90})
	lim := DefaultLimits
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkStructure(body, &lim) != nil {
			return
		}
		ref, custom, fast, refErr, customErr, fastErr := recordDecodings(body)
		require.Equal(t, refErr == nil, customErr == nil, "reflection: %v, DecodeMsgpack: %v", refErr, customErr)
		require.Equal(t, refErr == nil, fastErr == nil, "reflection: %v, reader: %v", refErr, fastErr)
		if refErr == nil {
			require.Equal(t, ref, custom)
			require.Equal(t, ref, fast)
			again := appendRecord(nil, &fast)
			var rr recordReflect
			require.NoError(t, msgpack.Unmarshal(again, &rr))
			require.Equal(t, testrec.Norm(fast), fromReflect(rr))
		}

		var rb batchReflect
		rbErr := msgpack.Unmarshal(body, &rb)
		var b Batch
		bErr := decodeBody(body, &b)
		require.Equal(t, rbErr == nil, bErr == nil, "reflection: %v, reader: %v", rbErr, bErr)
		if rbErr == nil {
			require.Equal(t, Batch{Seq: rb.Seq, Records: fromReflectAll(rb.Records)}, b)
		}
	})
}

// BenchmarkRecordCodec compares one record's encoding and decoding by
// reflection (the shadow types) with the hand-written codec.
func BenchmarkRecordCodec(b *testing.B) {
	r := codecRecord("session-id", 4, 200)
	rr := toReflect(r)
	frame, err := msgpack.Marshal(rr)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode/reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = msgpack.Marshal(&rr)
		}
	})
	b.Run("encode/custom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = appendRecord(nil, &r)
		}
	})
	b.Run("decode/reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out recordReflect
			_ = msgpack.Unmarshal(frame, &out)
		}
	})
	b.Run("decode/reader", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out model.Record
			rd := reader{b: frame}
			_ = rd.record(&out)
		}
	})
}
