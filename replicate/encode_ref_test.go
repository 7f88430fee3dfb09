package replicate

import (
	"bytes"

	"github.com/vmihailenco/msgpack/v5"
)

// The msgpack.Encoder path encodeTo took for Batch, SyncChunk and Ack
// before record_append.go: each record through Record.EncodeMsgpack, the
// message fields in msgpack's order and forms (TestRecordCodecBatchMatches
// Reflection holds it to msgpack's reflection). It is the reference the
// appender must match byte for byte.

// encodeBody encodes msg as enc.Encode does. Batch, SyncChunk and Ack are
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
	case *SyncChunk:
		return encodeRecordsMsg(enc, "q", m.Req, m.Records, &m.Done)
	case SyncChunk:
		return encodeRecordsMsg(enc, "q", m.Req, m.Records, &m.Done)
	case *Ack:
		return encodeAck(enc, m.Seq, m.Refused)
	case Ack:
		return encodeAck(enc, m.Seq, m.Refused)
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

// encodeRecordsMsg writes a Batch (done nil) or a SyncChunk: a map of the
// uint64 field named seqName, "r" (the records, nil as nil) and, for a
// SyncChunk, "d".
func encodeRecordsMsg(enc *msgpack.Encoder, seqName string, seq uint64, recs []Record, done *bool) error {
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
			if err := recs[i].EncodeMsgpack(enc); err != nil {
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
