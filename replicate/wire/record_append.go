package wire

import (
	"encoding/binary"

	"github.com/peersession/peersession/replicate/model"
)

// This file holds the msgpack appender for the frames a node sends most:
// Batch, TransferChunk and Ack. It appends to a []byte the exact bytes that
// msgpack.Encoder writes for them through Record, Value and Version's
// EncodeMsgpack (record_codec.go), which stay the encoding for msgpack's
// own users. What it saves on the hot path is the Encoder: an interface
// call through io.Writer and an error check for every code and length.
//
// The forms are those msgpack v5.4.1's Encoder picks with its default
// options (GetEncoder's Reset clears every flag, so compact ints and
// interned strings are off):
//
//   - EncodeMapLen, EncodeArrayLen: fix form below 16, then the 16-bit
//     form up to 65535, then the 32-bit one.
//   - EncodeString: fixstr below 32 bytes, then str8 below 256, str16 up
//     to 65535, str32.
//   - EncodeBytes: nil for a nil slice, otherwise bin8 below 256 (msgpack
//     has no fixbin), bin16 up to 65535, bin32.
//   - EncodeInt64, EncodeUint32, EncodeUint64: always fixed width (0xd3,
//     0xce, 0xcf); only the reflection path's *Cond variants would
//     shorten them, under UseCompactInts.
//   - EncodeBool: 0xc3 or 0xc2; EncodeNil: 0xc0.
//
// TestAppendMatchesEncoder and FuzzAppendMatchesEncoder hold the two
// encoders to the same bytes.

// msgpack type codes the appender writes.
const (
	mpNil     = 0xc0
	mpFalse   = 0xc2
	mpTrue    = 0xc3
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpUint32  = 0xce
	mpUint64  = 0xcf
	mpInt64   = 0xd3
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpArray16 = 0xdc
	mpArray32 = 0xdd
	mpMap16   = 0xde
	mpMap32   = 0xdf
	mpFixMap  = 0x80
	mpFixArr  = 0x90
	mpFixStr  = 0xa0
)

// appendBody appends the msgpack body of msg, as EncodeTo's Encoder
// would write it, when msg is one the appender knows (a Batch, TransferChunk
// or Ack, or a pointer to one); otherwise it returns b and false, and the
// caller uses msgpack.Encoder. The type switch mirrors msgType: a struct
// and a pointer to it encode alike.
func appendBody(b []byte, msg any) ([]byte, bool) {
	switch m := msg.(type) {
	case *Batch:
		return appendRecordsMsg(b, 's', m.Seq, m.Records, nil), true
	case Batch:
		return appendRecordsMsg(b, 's', m.Seq, m.Records, nil), true
	case *TransferChunk:
		return appendRecordsMsg(b, 'q', m.Req, m.Records, &m.Done), true
	case TransferChunk:
		return appendRecordsMsg(b, 'q', m.Req, m.Records, &m.Done), true
	case *Ack:
		return appendAck(b, m.Seq, m.Refused), true
	case Ack:
		return appendAck(b, m.Seq, m.Refused), true
	case *FetchReply:
		return appendFetchReply(b, m), true
	case FetchReply:
		return appendFetchReply(b, &m), true
	}
	return b, false
}

// appendAck appends an Ack: the map {"s": seq}, or {"s": seq, "f":
// refused} when refused is not zero (omitempty), each a uint64.
func appendAck(b []byte, seq, refused uint64) []byte {
	if refused == 0 {
		b = append(b, mpFixMap|1, mpFixStr|1, 's')
		return appendUint64(b, seq)
	}
	b = append(b, mpFixMap|2, mpFixStr|1, 's')
	b = appendUint64(b, seq)
	b = append(b, mpFixStr|1, 'f')
	return appendUint64(b, refused)
}

// appendFetchReply appends a FetchReply: the map q, f, r and, when set
// (omitempty), m.
func appendFetchReply(b []byte, m *FetchReply) []byte {
	n := byte(3)
	if m.More {
		n = 4
	}
	b = append(b, mpFixMap|n, mpFixStr|1, 'q')
	b = appendUint64(b, m.Req)
	b = append(b, mpFixStr|1, 'f')
	b = appendBool(b, m.Found)
	b = append(b, mpFixStr|1, 'r')
	b = appendRecord(b, &m.Record)
	if m.More {
		b = append(b, mpFixStr|1, 'm')
		b = appendBool(b, true)
	}
	return b
}

// appendRecordsMsg appends a Batch (done nil) or a TransferChunk: a map of the
// uint64 field named seqName, "r" (the records; a nil slice as nil, an
// empty one as an empty array, as msgpack tells them apart) and, for a
// TransferChunk, "d". Field names are one byte, so a fixstr each.
func appendRecordsMsg(b []byte, seqName byte, seq uint64, recs []model.Record, done *bool) []byte {
	n := byte(2)
	if done != nil {
		n = 3
	}
	b = append(b, mpFixMap|n, mpFixStr|1, seqName)
	b = appendUint64(b, seq)
	b = append(b, mpFixStr|1, 'r')
	if recs == nil {
		b = append(b, mpNil)
	} else {
		b = appendArrayLen(b, len(recs))
		for i := range recs {
			b = appendRecord(b, &recs[i])
		}
	}
	if done == nil {
		return b
	}
	b = append(b, mpFixStr|1, 'd')
	return appendBool(b, *done)
}

// appendRecord appends r as Record.EncodeMsgpack writes it: a map of its
// fields in order i, c, e, t, a, p, pv, k, x, the zero omitempty ones (c,
// e, t, a, p, k) left out. At most nine fields, so always a fixmap.
func appendRecord(b []byte, r *model.Record) []byte {
	n := byte(3) // i, pv, x
	if r.Created != 0 {
		n++
	}
	if r.Deadline != 0 {
		n++
	}
	if r.IdleTimeout != 0 {
		n++
	}
	if r.Access != 0 {
		n++
	}
	if r.Principal != "" {
		n++
	}
	if len(r.Keys) > 0 {
		n++
	}
	b = append(b, mpFixMap|n, mpFixStr|1, 'i')
	b = appendString(b, r.ID)
	b = appendOptInt64(b, 'c', r.Created)
	b = appendOptInt64(b, 'e', r.Deadline)
	b = appendOptInt64(b, 't', r.IdleTimeout)
	b = appendOptInt64(b, 'a', r.Access)
	if r.Principal != "" {
		b = append(b, mpFixStr|1, 'p')
		b = appendString(b, r.Principal)
	}
	b = append(b, mpFixStr|2, 'p', 'v')
	b = appendVersion(b, r.PrincipalVer)
	if len(r.Keys) > 0 {
		b = append(b, mpFixStr|1, 'k')
		b = appendMapLen(b, len(r.Keys))
		for i := range r.Keys {
			kv := &r.Keys[i]
			b = appendString(b, kv.Key)
			b = appendValue(b, &kv.Value)
		}
	}
	b = append(b, mpFixStr|1, 'x')
	return appendVersion(b, r.Dead)
}

// appendOptInt64 appends the record field name: v, unless v is zero
// (omitempty).
func appendOptInt64(b []byte, name byte, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, mpFixStr|1, name)
	return appendInt64(b, v)
}

// appendValue appends v as Value.EncodeMsgpack writes it: the map d, v, x,
// d left out when empty and x when false.
func appendValue(b []byte, v *model.Value) []byte {
	n := byte(1) // v
	if len(v.Data) > 0 {
		n++
	}
	if v.Deleted {
		n++
	}
	b = append(b, mpFixMap|n)
	if len(v.Data) > 0 {
		b = append(b, mpFixStr|1, 'd')
		b = appendBytes(b, v.Data)
	}
	b = append(b, mpFixStr|1, 'v')
	b = appendVersion(b, v.Ver)
	if v.Deleted {
		b = append(b, mpFixStr|1, 'x', mpTrue)
	}
	return b
}

// appendVersion appends v as Version.EncodeMsgpack writes it: the array
// [wall, seq, node] of fixed-width ints, 24 bytes whatever the values.
func appendVersion(b []byte, v model.Version) []byte {
	b = append(b, mpFixArr|3)
	b = appendInt64(b, v.Wall)
	b = append(b, mpUint32)
	b = binary.BigEndian.AppendUint32(b, v.Seq)
	return appendUint64(b, v.Node)
}

// appendMapLen appends a map header of n entries, as EncodeMapLen.
func appendMapLen(b []byte, n int) []byte {
	return appendContainerLen(b, n, mpFixMap, mpMap16, mpMap32)
}

// appendArrayLen appends an array header of n elements, as
// EncodeArrayLen.
func appendArrayLen(b []byte, n int) []byte {
	return appendContainerLen(b, n, mpFixArr, mpArray16, mpArray32)
}

// appendContainerLen appends the shortest header of a map or array of n
// items: the fix form (its code or'ed with n) below 16, else the 16-bit
// or the 32-bit form.
func appendContainerLen(b []byte, n int, fix, c16, c32 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, c32), uint32(n))
}

// appendString appends s as EncodeString (without interning): the
// shortest str header, then the bytes.
func appendString(b []byte, s string) []byte {
	if n := len(s); n < 32 {
		b = append(b, mpFixStr|byte(n))
	} else {
		b = appendSizedLen(b, n, mpStr8, mpStr16, mpStr32)
	}
	return append(b, s...)
}

// appendBytes appends p as EncodeBytes: nil for a nil slice, otherwise
// the shortest bin header (bin8 even for a few bytes), then the bytes.
func appendBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, mpNil)
	}
	return append(appendSizedLen(b, len(p), mpBin8, mpBin16, mpBin32), p...)
}

// appendSizedLen appends the header of a str or bin of n bytes: its 8-bit
// form below 256, else the 16-bit or the 32-bit one.
func appendSizedLen(b []byte, n int, c8, c16, c32 byte) []byte {
	switch {
	case n < 256:
		return append(b, c8, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, c32), uint32(n))
}

// appendInt64 appends n as EncodeInt64: always the 9-byte int64 form.
func appendInt64(b []byte, n int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(n))
}

// appendUint64 appends n as EncodeUint64: always the 9-byte uint64 form.
func appendUint64(b []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpUint64), n)
}

// appendBool appends v as EncodeBool.
func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}
