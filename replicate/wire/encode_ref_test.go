package wire

import (
	"bytes"

	"github.com/peersession/peersession/replicate/model"

	"github.com/vmihailenco/msgpack/v5"
)

// The msgpack.Encoder path EncodeTo took for Batch, TransferChunk and Ack
// before record_append.go: each record through the Encoder-based record
// encoder below (Record's EncodeMsgpack until the codec moved out of the
// data model), the message fields in msgpack's order and forms
// (TestRecordCodecBatchMatchesReflection holds it to msgpack's
// reflection). It is the reference the appender must match byte for byte.

// encodeBody encodes msg as enc.Encode does. Batch, TransferChunk and Ack are
// written field by field, in msgpack's order and forms, so that records
// are encoded directly rather than each boxed in an interface (one
// allocation per record on the hottest path), and an Ack (one per Batch)
// without reflection.
func encodeBody(enc *msgpack.Encoder, msg any) error {
	switch m := msg.(type) {
	case *Batch:
		return encodeRecordsMsg(enc, "s", m.Seq, m.Records, nil)
	case Batch:
		return encodeRecordsMsg(enc, "s", m.Seq, m.Records, nil)
	case *TransferChunk:
		return encodeRecordsMsg(enc, "q", m.Req, m.Records, &m.Done)
	case TransferChunk:
		return encodeRecordsMsg(enc, "q", m.Req, m.Records, &m.Done)
	case *Ack:
		return encodeAck(enc, m.Seq, m.Refused)
	case Ack:
		return encodeAck(enc, m.Seq, m.Refused)
	case *FetchReply:
		return enc.Encode(fetchReplyCodec{m.Req, m.Found, refCodecRecord(m.Record), m.More})
	case FetchReply:
		return enc.Encode(fetchReplyCodec{m.Req, m.Found, refCodecRecord(m.Record), m.More})
	}
	return enc.Encode(msg)
}

// encodeAck writes an Ack as msgpack does: a map of "s", and of "f" when
// refused is not zero (omitempty).
func encodeAck(enc *msgpack.Encoder, seq, refused uint64) error {
	n := 1
	if refused != 0 {
		n = 2
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if err := enc.EncodeString("s"); err != nil {
		return err
	}
	if err := enc.EncodeUint64(seq); err != nil {
		return err
	}
	if refused == 0 {
		return nil
	}
	if err := enc.EncodeString("f"); err != nil {
		return err
	}
	return enc.EncodeUint64(refused)
}

// encodeRecordsMsg writes a Batch (done nil) or a TransferChunk: a map of the
// uint64 field named seqName, "r" (the records, nil as nil) and, for a
// TransferChunk, "d".
func encodeRecordsMsg(enc *msgpack.Encoder, seqName string, seq uint64, recs []model.Record, done *bool) error {
	n := 2
	if done != nil {
		n = 3
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if err := enc.EncodeString(seqName); err != nil {
		return err
	}
	if err := enc.EncodeUint64(seq); err != nil {
		return err
	}
	if err := enc.EncodeString("r"); err != nil {
		return err
	}
	if recs == nil {
		if err := enc.EncodeNil(); err != nil {
			return err
		}
	} else {
		if err := enc.EncodeArrayLen(len(recs)); err != nil {
			return err
		}
		for i := range recs {
			if err := refRecord(enc, recs[i]); err != nil {
				return err
			}
		}
	}
	if done == nil {
		return nil
	}
	if err := enc.EncodeString("d"); err != nil {
		return err
	}
	return enc.EncodeBool(*done)
}

// oldEncode is Encode as it was before record_append.go: validate, the
// reference Encoder path, then the MaxFrame check and checkStructure over
// the frame. Encode must accept and refuse the same messages, and return
// the same frames.
func oldEncode(t MsgType, msg any) ([]byte, error) {
	lim := DefaultLimits
	if err := validate(msg, &lim); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte(FormatVersion)
	buf.WriteByte(byte(t))
	if err := encodeBody(msgpack.NewEncoder(&buf), msg); err != nil {
		return nil, err
	}
	frame := buf.Bytes()
	if err := checkFrameSize(frame, &lim); err != nil {
		return nil, err
	}
	if err := checkStructure(frame[2:], &lim); err != nil {
		return nil, err
	}
	return frame, nil
}

// refRecord writes r as a msgpack map keyed by its field tags, the
// zero omitempty fields left out.
func refRecord(e *msgpack.Encoder, r model.Record) error {
	n := 3 // i, pv, x
	for _, set := range [...]bool{r.Created != 0, r.Deadline != 0, r.IdleTimeout != 0,
		r.Access != 0, r.Principal != "", len(r.Keys) > 0} {
		if set {
			n++
		}
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	if err := encodeString(e, "i", r.ID); err != nil {
		return err
	}
	for _, f := range [...]struct {
		name string
		v    int64
	}{{"c", r.Created}, {"e", r.Deadline}, {"t", r.IdleTimeout}, {"a", r.Access}} {
		if f.v == 0 {
			continue
		}
		if err := e.EncodeString(f.name); err != nil {
			return err
		}
		if err := e.EncodeInt64(f.v); err != nil {
			return err
		}
	}
	if r.Principal != "" {
		if err := encodeString(e, "p", r.Principal); err != nil {
			return err
		}
	}
	if err := e.EncodeString("pv"); err != nil {
		return err
	}
	if err := refVersion(e, r.PrincipalVer); err != nil {
		return err
	}
	if len(r.Keys) > 0 {
		if err := e.EncodeString("k"); err != nil {
			return err
		}
		if err := e.EncodeMapLen(len(r.Keys)); err != nil {
			return err
		}
		for _, kv := range r.Keys {
			if err := e.EncodeString(kv.Key); err != nil {
				return err
			}
			if err := refValue(e, kv.Value); err != nil {
				return err
			}
		}
	}
	if err := e.EncodeString("x"); err != nil {
		return err
	}
	return refVersion(e, r.Dead)
}

// refValue writes v as a msgpack map keyed by its field tags, empty
// Data and a false Deleted left out.
func refValue(e *msgpack.Encoder, v model.Value) error {
	n := 1 // v
	if len(v.Data) > 0 {
		n++
	}
	if v.Deleted {
		n++
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	if len(v.Data) > 0 {
		if err := e.EncodeString("d"); err != nil {
			return err
		}
		if err := e.EncodeBytes(v.Data); err != nil {
			return err
		}
	}
	if err := e.EncodeString("v"); err != nil {
		return err
	}
	if err := refVersion(e, v.Ver); err != nil {
		return err
	}
	if v.Deleted {
		if err := e.EncodeString("x"); err != nil {
			return err
		}
		return e.EncodeBool(true)
	}
	return nil
}

// refVersion writes v as msgpack's reflection does for its as_array
// tag: [wall, seq, node] as fixed-width int64, uint32 and uint64.
func refVersion(e *msgpack.Encoder, v model.Version) error {
	if err := e.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := e.EncodeInt64(v.Wall); err != nil {
		return err
	}
	if err := e.EncodeUint32(v.Seq); err != nil {
		return err
	}
	return e.EncodeUint64(v.Node)
}

// encodeString writes the map entry name: s.
func encodeString(e *msgpack.Encoder, name, s string) error {
	if err := e.EncodeString(name); err != nil {
		return err
	}
	return e.EncodeString(s)
}

// refCodecRecord and refCodecValue are Record and Value as msgpack's own users
// saw them before the codec moved out of the data model: encoded by the
// reference encoder above, decoded by reader.
type (
	refCodecRecord model.Record
	refCodecValue  model.Value
)

func (r refCodecRecord) EncodeMsgpack(e *msgpack.Encoder) error { return refRecord(e, model.Record(r)) }

func (r *refCodecRecord) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeWith(d, func(rd *reader) error { return rd.record((*model.Record)(r)) })
}

func (v refCodecValue) EncodeMsgpack(e *msgpack.Encoder) error { return refValue(e, model.Value(v)) }

// fetchReplyCodec is FetchReply with its record encoded by the reference.
type fetchReplyCodec struct {
	Req    uint64         `msgpack:"q"`
	Found  bool           `msgpack:"f"`
	Record refCodecRecord `msgpack:"r"`
	More   bool           `msgpack:"m,omitempty"`
}
