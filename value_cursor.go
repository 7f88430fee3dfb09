package peersession

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/peersession/peersession/internal/msgp"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// cursor reads an encoded value, for checkFit and anyValue.
type cursor struct {
	b   []byte
	pos int
}

func (w *cursor) value(p *getPlan) error {
	if !p.check {
		return w.skip()
	}
	if w.pos >= len(w.b) {
		return errStop
	}
	c := w.b[w.pos]
	if c == msgpcode.Nil && p.kind != planMap && p.kind != planStruct {
		w.pos++ // a nil decodes as the zero value (or a nil slice/pointer)
		return nil
	}
	switch p.kind {
	case planInt, planUint:
		v, neg, ok := intAt(w.b[w.pos:])
		if !ok {
			return errStop
		}
		if !fits(v, neg, p.kind == planInt, p.bits) {
			return &rangeError{v: v, neg: neg, typ: p.typ.String()}
		}
		return w.skip()
	case planPtr:
		return w.value(p.elem)
	case planSeq:
		n, err := w.arrayLen()
		if err != nil {
			return err
		}
		if p.typ.Kind() == reflect.Array && n > p.typ.Len() {
			return errStop
		}
		for i := range n {
			if err := w.value(p.elem); err != nil {
				return under(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return nil
	case planMap:
		n, err := w.mapLen()
		if err != nil {
			return err
		}
		for range n {
			start := w.pos
			if err := w.value(p.key); err != nil {
				return under(err, " (a map key)")
			}
			key := w.b[start:w.pos]
			if err := w.value(p.elem); err != nil {
				return under(err, keySeg(key))
			}
		}
		return nil
	case planStruct:
		if n, err := w.mapLen(); err == nil {
			for range n {
				name, err := w.str()
				if err != nil {
					return err
				}
				f := p.checkedField(name)
				if f == nil {
					if err := w.skip(); err != nil {
						return err
					}
					continue
				}
				if err := w.value(f.plan); err != nil {
					return under(err, "."+f.goName)
				}
			}
			return nil
		}
		n, err := w.arrayLen()
		if err != nil {
			return err
		}
		if n > 0 && n != len(p.list) {
			return errStop
		}
		for _, f := range p.list[:max(n, 0)] {
			if err := w.value(f.plan); err != nil {
				return under(err, "."+f.goName)
			}
		}
		return nil
	}
	return w.skip()
}

// checkedField returns the field under key name if it needs checking.
// Most structs have a few such fields: comparing is cheaper than hashing.
func (p *getPlan) checkedField(name []byte) *getField {
	if len(p.checked) > 8 {
		if f := p.fields[string(name)]; f != nil && f.plan.check {
			return f
		}
		return nil
	}
	for i := range p.checked {
		if p.checked[i].name == string(name) {
			return p.checked[i].field
		}
	}
	return nil
}

// under places a *rangeError one level down, at seg.
func under(err error, seg string) error {
	if re, ok := err.(*rangeError); ok {
		c := *re
		c.path = seg + c.path
		return &c
	}
	return err
}

// keySeg is the path segment for the map entry whose encoded key is b.
func keySeg(b []byte) string {
	if v, err := anyAt(b); err == nil {
		switch k := v.(type) {
		case string:
			return "[" + strconv.Quote(k) + "]"
		case int64, uint64:
			return fmt.Sprintf("[%d]", k)
		}
	}
	return "[…]"
}

// uintN reads the big-endian unsigned integer of n bytes after the code.
func (w *cursor) uintN(n int) (int, error) {
	if w.pos+1+n > len(w.b) {
		return 0, errStop
	}
	v := msgp.UintN(w.b[w.pos+1:], n)
	w.pos += 1 + n
	if v > uint64(len(w.b)) {
		return 0, errStop // more elements or bytes than the value has bytes
	}
	return int(v), nil
}

// arrayLen reads an array header: -1 for nil.
func (w *cursor) arrayLen() (int, error) { return w.containerLen(false) }

// mapLen reads a map header: -1 for nil.
func (w *cursor) mapLen() (int, error) { return w.containerLen(true) }

// containerLen reads a map header (isMap) or an array header: -1 for nil.
func (w *cursor) containerLen(isMap bool) (int, error) {
	if w.pos >= len(w.b) {
		return 0, errStop
	}
	c := w.b[w.pos]
	fixed, mask, c16, c32 := msgpcode.IsFixedArray(c), msgpcode.FixedArrayMask, msgpcode.Array16, msgpcode.Array32
	if isMap {
		fixed, mask, c16, c32 = msgpcode.IsFixedMap(c), msgpcode.FixedMapMask, msgpcode.Map16, msgpcode.Map32
	}
	switch {
	case c == msgpcode.Nil:
		w.pos++
		return -1, nil
	case fixed:
		w.pos++
		return int(c & mask), nil
	case c == c16:
		return w.uintN(2)
	case c == c32:
		return w.uintN(4)
	}
	return 0, errStop
}

// bytesLen reads a str or bin header: -1 for nil.
func (w *cursor) bytesLen() (int, error) {
	if w.pos >= len(w.b) {
		return 0, errStop
	}
	c := w.b[w.pos]
	if c == msgpcode.Nil {
		w.pos++
		return -1, nil
	}
	var n int
	var err error
	switch size := msgp.StrLenSize(c); {
	case size < 0:
		return 0, errStop
	case size == 0:
		w.pos++
		n = int(c & msgpcode.FixedStrMask)
	default:
		n, err = w.uintN(size)
	}
	if err != nil || n > len(w.b)-w.pos {
		return 0, errStop
	}
	return n, nil
}

// str reads a struct's field name (str or bin, as msgpack does).
func (w *cursor) str() ([]byte, error) {
	if w.pos < len(w.b) && msgpcode.IsFixedString(w.b[w.pos]) { // the most common, first
		start := w.pos + 1
		end := start + int(w.b[w.pos]&msgpcode.FixedStrMask)
		if end > len(w.b) {
			return nil, errStop
		}
		w.pos = end
		return w.b[start:end], nil
	}
	n, err := w.bytesLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	s := w.b[w.pos : w.pos+n]
	w.pos += n
	return s, nil
}

func isMapCode(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

func isArrayCode(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

// anyValue reads one value as Get gives it into an interface: what
// msgpack.Decoder.DecodeInterface gives, normalized (see normAny). It
// returns errStop for a value it leaves to msgpack.
func (w *cursor) anyValue() (any, error) {
	if w.pos >= len(w.b) {
		return nil, errStop
	}
	switch c := w.b[w.pos]; {
	case c == msgpcode.Nil:
		w.pos++
		return nil, nil
	case c == msgpcode.True, c == msgpcode.False:
		w.pos++
		return c == msgpcode.True, nil
	case msgpcode.IsFixedString(c), c == msgpcode.Str8, c == msgpcode.Str16, c == msgpcode.Str32:
		n, err := w.bytesLen()
		if err != nil {
			return nil, err
		}
		w.pos += n
		return string(w.b[w.pos-n : w.pos]), nil
	case c == msgpcode.Bin8, c == msgpcode.Bin16, c == msgpcode.Bin32:
		n, err := w.bytesLen()
		if err != nil {
			return nil, err
		}
		w.pos += n
		return bytes.Clone(w.b[w.pos-n : w.pos]), nil
	case c == msgpcode.Float || c == msgpcode.Double:
		n := 4
		if c == msgpcode.Double {
			n = 8
		}
		if w.pos+1+n > len(w.b) {
			return nil, errStop
		}
		p := w.b[w.pos+1:]
		w.pos += 1 + n
		if n == 4 {
			return float64(math.Float32frombits(binary.BigEndian.Uint32(p))), nil
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	case isMapCode(c):
		n, err := w.mapLen()
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, n)
		for range n {
			var k []byte // msgpack.Decoder.DecodeString: str or bin, nil as ""
			if w.pos < len(w.b) && w.b[w.pos] == msgpcode.Nil {
				w.pos++
			} else if k, err = w.str(); err != nil {
				return nil, err
			}
			v, err := w.anyValue()
			if err != nil {
				return nil, err
			}
			m[string(k)] = v
		}
		return m, nil
	case isArrayCode(c):
		n, err := w.arrayLen()
		if err != nil {
			return nil, err
		}
		s := make([]any, n)
		for i := range s {
			if s[i], err = w.anyValue(); err != nil {
				return nil, err
			}
		}
		return s, nil
	case c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow ||
		(c >= msgpcode.Uint8 && c <= msgpcode.Int64):
		v, neg, ok := intAt(w.b[w.pos:])
		if !ok {
			return nil, errStop
		}
		w.pos++
		if c >= msgpcode.Uint8 && c <= msgpcode.Int64 {
			w.pos += 1 << ((c - msgpcode.Uint8) & 3) // 1, 2, 4 or 8 bytes follow
		}
		if !neg && v > math.MaxInt64 {
			return v, nil
		}
		return int64(v), nil
	}
	start := w.pos // an extension type (time.Time): msgpack's
	if err := w.skip(); err != nil {
		return nil, err
	}
	v, err := msgpackInterface(w.b[start:w.pos])
	if err != nil {
		return nil, errStop
	}
	v, _ = normAny(v)
	return v, nil
}

// skip passes over one value.
func (w *cursor) skip() error {
	if w.pos >= len(w.b) {
		return errStop
	}
	c := w.b[w.pos]
	if msgpcode.IsFixedString(c) { // the most common, first
		end := w.pos + 1 + int(c&msgpcode.FixedStrMask)
		if end > len(w.b) {
			return errStop
		}
		w.pos = end
		return nil
	}
	switch {
	case c <= msgpcode.PosFixedNumHigh, c >= msgpcode.NegFixedNumLow,
		c == msgpcode.Nil, c == msgpcode.True, c == msgpcode.False:
		w.pos++
		return nil
	case msgpcode.IsFixedString(c), c == msgpcode.Str8, c == msgpcode.Str16, c == msgpcode.Str32,
		c == msgpcode.Bin8, c == msgpcode.Bin16, c == msgpcode.Bin32:
		n, err := w.bytesLen()
		w.pos += max(n, 0)
		return err
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		n, err := w.mapLen()
		for i := 0; err == nil && i < 2*n; i++ {
			err = w.skip()
		}
		return err
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		n, err := w.arrayLen()
		for i := 0; err == nil && i < n; i++ {
			err = w.skip()
		}
		return err
	}
	size := msgp.FixedLen(c) - 1 // the bytes after the code
	switch c {
	case msgpcode.FixExt1, msgpcode.FixExt2, msgpcode.FixExt4, msgpcode.FixExt8, msgpcode.FixExt16:
		size = 1 + 1<<(c-msgpcode.FixExt1) // the type byte, then the data
	case msgpcode.Ext8, msgpcode.Ext16, msgpcode.Ext32:
		lenBytes := 1 << (c - msgpcode.Ext8)
		n, err := w.uintN(lenBytes) // passes the code and the length
		if err != nil {
			return err
		}
		w.pos -= 1 + lenBytes // back to the code, for the common end below
		size = lenBytes + 1 + n
	default:
		if size <= 0 {
			return errStop
		}
	}
	if w.pos+1+size > len(w.b) {
		return errStop
	}
	w.pos += 1 + size
	return nil
}
