package replicate

import (
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// This file holds hand-written msgpack encoders and decoders for Record,
// Value and Version, the bulk of every Batch and SyncChunk. They write
// exactly the bytes msgpack's reflection wrote for these types before they
// existed, and read whatever it read, into equal values; what they save is
// the reflection, and an allocation or more per field.
//
// The wire form (permanent, see FormatVersion):
//
//   - Record: a map of its fields keyed by their msgpack tags, in field
//     order: i, c, e, t, a, p, pv, k, x. c, e, t, a, p and k are left out
//     when zero or empty; i, pv and x are always there.
//   - Value: a map d, v, x; d is left out when empty, x when false.
//   - Version: the array [wall int64, seq uint32, node uint64], each a
//     fixed-width msgpack int (codes 0xd3, 0xce, 0xcf).
//
// Like msgpack's own struct decoding, the decoders take the map's fields
// in any order, skip unknown ones, take nil for any field as its zero
// value (nil for the whole struct as the zero struct), any msgpack int
// width, str or bin for strings and bytes, and, as msgpack does, a struct
// as the array of all its fields in order. A field given twice is decoded
// twice, the last one winning (for Keys, the two maps' entries are
// merged).
//
// They do not look at the Encoder's or Decoder's options (compact ints,
// sorted map keys, array-encoded structs, disallowing unknown fields):
// the codec sets none, and the wire format does not depend on them.

// keysPresize caps the size a decoded Keys map is created with, so that a
// declared length, even one the frame does not back, costs a bounded
// allocation; a larger map grows as its entries arrive.
const keysPresize = 64

// dataChunk caps the buffer a decoded Value.Data is first given, for the
// same reason; a larger value grows by doubling as its bytes arrive.
const dataChunk = 64 << 10

// Field counts of Record and Value, for their array form.
const (
	recordFields = 9
	valueFields  = 3
)

// errArrayStruct is what msgpack says of a struct array of the wrong length.
var errArrayStruct = errors.New("msgpack: number of fields in array-encoded struct has changed")

var (
	_ msgpack.CustomEncoder = Record{}
	_ msgpack.CustomDecoder = (*Record)(nil)
	_ msgpack.CustomEncoder = Value{}
	_ msgpack.CustomDecoder = (*Value)(nil)
	_ msgpack.CustomEncoder = Version{}
)

// EncodeMsgpack writes r as a msgpack map keyed by its field tags, the
// zero omitempty fields left out.
func (r Record) EncodeMsgpack(e *msgpack.Encoder) error {
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
	if err := r.PrincipalVer.EncodeMsgpack(e); err != nil {
		return err
	}
	if len(r.Keys) > 0 {
		if err := e.EncodeString("k"); err != nil {
			return err
		}
		if err := e.EncodeMapLen(len(r.Keys)); err != nil {
			return err
		}
		for k, v := range r.Keys {
			if err := e.EncodeString(k); err != nil {
				return err
			}
			if err := v.EncodeMsgpack(e); err != nil {
				return err
			}
		}
	}
	if err := e.EncodeString("x"); err != nil {
		return err
	}
	return r.Dead.EncodeMsgpack(e)
}

// DecodeMsgpack reads a Record in any form msgpack's reflection accepts
// (see the top of this file). Like msgpack, it sets the fields the map
// holds and leaves the others alone, and adds to r.Keys when it is not
// nil: decode into a zero Record.
func (r *Record) DecodeMsgpack(d *msgpack.Decoder) error {
	n, isArray, err := decodeStructLen(d)
	if err != nil {
		return err
	}
	if isArray {
		return r.decodeArray(d, n)
	}
	if n == -1 {
		*r = Record{}
		return nil
	}
	for range n {
		name, err := d.DecodeString() // no allocation for a one-byte name
		if err != nil {
			return err
		}
		switch name {
		case "i":
			r.ID, err = d.DecodeString()
		case "c":
			r.Created, err = d.DecodeInt64()
		case "e":
			r.Deadline, err = d.DecodeInt64()
		case "t":
			r.IdleTimeout, err = d.DecodeInt64()
		case "a":
			r.Access, err = d.DecodeInt64()
		case "p":
			r.Principal, err = d.DecodeString()
		case "pv":
			err = r.PrincipalVer.DecodeMsgpack(d)
		case "k":
			err = decodeKeys(d, &r.Keys)
		case "x":
			err = r.Dead.DecodeMsgpack(d)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeArray reads the n fields of r's array form, as msgpack does: an
// empty array is the zero Record, and any other length than every field
// is an error.
func (r *Record) decodeArray(d *msgpack.Decoder, n int) error {
	if n <= 0 {
		*r = Record{}
		return nil
	}
	if n != recordFields {
		return errArrayStruct
	}
	var err error
	if r.ID, err = d.DecodeString(); err != nil {
		return err
	}
	for _, p := range [...]*int64{&r.Created, &r.Deadline, &r.IdleTimeout, &r.Access} {
		if *p, err = d.DecodeInt64(); err != nil {
			return err
		}
	}
	if r.Principal, err = d.DecodeString(); err != nil {
		return err
	}
	if err := r.PrincipalVer.DecodeMsgpack(d); err != nil {
		return err
	}
	if err := decodeKeys(d, &r.Keys); err != nil {
		return err
	}
	return r.Dead.DecodeMsgpack(d)
}

// decodeKeys reads a Record's Keys map into *keys: nil sets it to nil,
// and entries are added to it when it is not nil.
func decodeKeys(d *msgpack.Decoder, keys *map[string]Value) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	if n == -1 {
		*keys = nil
		return nil
	}
	m := *keys
	if m == nil {
		m = make(map[string]Value, min(n, keysPresize))
		*keys = m
	}
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return err
		}
		var v Value
		if err := v.DecodeMsgpack(d); err != nil {
			return err
		}
		m[k] = v
	}
	return nil
}

// EncodeMsgpack writes v as a msgpack map keyed by its field tags, empty
// Data and a false Deleted left out.
func (v Value) EncodeMsgpack(e *msgpack.Encoder) error {
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
	if err := v.Ver.EncodeMsgpack(e); err != nil {
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

// DecodeMsgpack reads a Value in any form msgpack's reflection accepts
// (see the top of this file), setting the fields the map holds.
func (v *Value) DecodeMsgpack(d *msgpack.Decoder) error {
	n, isArray, err := decodeStructLen(d)
	if err != nil {
		return err
	}
	if isArray {
		switch {
		case n <= 0:
			*v = Value{}
			return nil
		case n != valueFields:
			return errArrayStruct
		}
		if v.Data, err = decodeData(d); err != nil {
			return err
		}
		if err := v.Ver.DecodeMsgpack(d); err != nil {
			return err
		}
		v.Deleted, err = d.DecodeBool()
		return err
	}
	if n == -1 {
		*v = Value{}
		return nil
	}
	for range n {
		name, err := d.DecodeString()
		if err != nil {
			return err
		}
		switch name {
		case "d":
			v.Data, err = decodeData(d)
		case "v":
			err = v.Ver.DecodeMsgpack(d)
		case "x":
			v.Deleted, err = d.DecodeBool()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeData reads a bin (or str) into a new slice: nil for nil, empty
// and not nil for a zero length, as msgpack's DecodeBytes does. Unlike
// DecodeBytes it does not allocate the declared length up front, only
// what has arrived, so a length the input does not back costs at most
// dataChunk bytes.
func decodeData(d *msgpack.Decoder) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil || n == -1 {
		return nil, err
	}
	b := make([]byte, min(n, dataChunk))
	if err := d.ReadFull(b); err != nil {
		return nil, err
	}
	for len(b) < n {
		off := len(b)
		b = append(b, make([]byte, min(n-off, off))...)
		if err := d.ReadFull(b[off:]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// EncodeMsgpack writes v as msgpack's reflection does for its as_array
// tag: [wall, seq, node] as fixed-width int64, uint32 and uint64.
func (v Version) EncodeMsgpack(e *msgpack.Encoder) error {
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

// decodeStructLen reads the header of a struct as msgpack's reflection
// does: a map of n fields (n is -1 for nil), or an array of n fields
// (isArray). Anything else is an error.
func decodeStructLen(d *msgpack.Decoder) (n int, isArray bool, err error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, false, err
	}
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err = d.DecodeArrayLen()
		return n, true, err
	case msgpcode.IsExt(c): // DecodeMapLen would skip an ext header
		return 0, false, fmt.Errorf("msgpack: unexpected code=%x decoding map length", c)
	}
	n, err = d.DecodeMapLen()
	return n, false, err
}
