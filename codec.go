package peersession

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
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
