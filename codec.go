package peersession

import (
	"bytes"
	"encoding/binary"
	"math"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// valueDecoder is a reusable msgpack decoder over an in-memory value; the
// pool keeps a session read free of allocations for scalar values.
type valueDecoder struct {
	r bytes.Reader
	d *msgpack.Decoder
}

var valueDecoders = sync.Pool{New: func() any {
	vd := &valueDecoder{}
	vd.d = msgpack.NewDecoder(&vd.r)
	return vd
}}

// decodeValue decodes one encoded session value into dst.
func decodeValue(data []byte, dst any) error {
	vd := valueDecoders.Get().(*valueDecoder)
	vd.r.Reset(data)
	vd.d.Reset(&vd.r)
	err := vd.d.Decode(dst)
	vd.r.Reset(nil)
	valueDecoders.Put(vd)
	return err
}

// valueEncoder is a reusable msgpack encoder into a buffer, the
// counterpart of valueDecoder.
type valueEncoder struct {
	buf bytes.Buffer
	e   *msgpack.Encoder
}

var valueEncoders = sync.Pool{New: func() any {
	ve := &valueEncoder{}
	ve.e = msgpack.NewEncoder(&ve.buf)
	return ve
}}

// maxPooledValue is the largest buffer encodeValue returns to its pool.
const maxPooledValue = 64 << 10

// encodeValue returns v's msgpack encoding in a slice of its own, sized to
// fit: a stored value lives as long as its session, and msgpack.Marshal's
// buffer takes 64 bytes for a one-byte int.
func encodeValue(v any) ([]byte, error) {
	switch v := v.(type) { // the common scalars, without the pool and reflection
	case int64:
		return appendInt64(make([]byte, 0, 9), v), nil
	case int:
		return appendInt(nil, int64(v)), nil
	case bool:
		if v {
			return []byte{msgpcode.True}, nil
		}
		return []byte{msgpcode.False}, nil
	}
	ve := valueEncoders.Get().(*valueEncoder)
	ve.buf.Reset()
	ve.e.Reset(&ve.buf)
	err := ve.e.Encode(v)
	var data []byte
	if err == nil {
		data = bytes.Clone(ve.buf.Bytes())
	}
	if ve.buf.Cap() <= maxPooledValue {
		valueEncoders.Put(ve)
	}
	return data, err
}

// appendInt64 appends n as msgpack.Encoder.Encode encodes an int64 (without
// UseCompactInts): always the 9-byte form.
func appendInt64(b []byte, n int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Int64), uint64(n))
}

// appendInt appends n as msgpack.Encoder.EncodeInt does, as Encode encodes
// an int: in the fewest bytes.
func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0 && n <= math.MaxInt8, n < 0 && n >= int64(int8(msgpcode.NegFixedNumLow)):
		return append(b, byte(n))
	case n >= 0 && n <= math.MaxUint8:
		return append(b, msgpcode.Uint8, byte(n))
	case n >= 0 && n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Uint16), uint16(n))
	case n >= 0 && n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.Uint32), uint32(n))
	case n >= 0:
		return binary.BigEndian.AppendUint64(append(b, msgpcode.Uint64), uint64(n))
	case n >= math.MinInt8:
		return append(b, msgpcode.Int8, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Int16), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.Int32), uint32(n))
	}
	return appendInt64(b, n)
}
