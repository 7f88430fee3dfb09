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
