package peersession

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/peersession/peersession/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// A session value is msgpack-encoded by Set and decoded by Get, with three
// rules on top of msgpack's own so that nothing is lost silently (see
// docs/values.md):
//
//   - Set refuses a value msgpack cannot store faithfully (checkValue): a
//     struct none of whose fields msgpack stores, funcs, channels, unsafe
//     pointers, uintptrs and complex numbers, wherever they are in the
//     value. What Set knows of a type is worked out once (setInfoOf).
//   - Get refuses an integer that does not fit its destination (checkFit)
//     where msgpack would wrap it, without changing the destination.
//   - Get gives one Go type per kind of value into an interface
//     (normalize): int64 (uint64 above MaxInt64), float64, string, []byte,
//     bool, nil, time.Time, []any and map[string]any, where msgpack gives
//     whichever integer width the encoding used.

// unsupportedError is an ErrUnsupportedValue naming the type refused and
// where it is in the value.
type unsupportedError struct {
	typ  reflect.Type
	path string // where in the value: ".Field", "[2]", `["key"]`; "" for the value itself
	why  string
}

func (e *unsupportedError) Error() string {
	at := ""
	if e.path != "" {
		at = " at " + e.path
	}
	return fmt.Sprintf("%v%s: %s", e.typ, at, e.why)
}

func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupportedValue }

// under returns e as seen from one level up: seg is where e's value sits.
func (e *unsupportedError) under(seg string) *unsupportedError {
	c := *e
	c.path = seg + c.path
	return &c
}

// rangeError is Get's error for an integer that does not fit its
// destination.
type rangeError struct {
	v    uint64
	neg  bool   // v is a negative int64
	typ  string // the destination's Go type
	path string // as unsupportedError's
}

func (e *rangeError) Error() string {
	n := strconv.FormatUint(e.v, 10)
	if e.neg {
		n = strconv.FormatInt(int64(e.v), 10)
	}
	at := ""
	if e.path != "" {
		at = " at " + e.path
	}
	return fmt.Sprintf("the stored integer %s%s does not fit in %s", n, at, e.typ)
}

// valueDecoder is a reusable msgpack decoder over an in-memory value.
type valueDecoder struct {
	r bytes.Reader
	d *msgpack.Decoder
}

var valueDecoders = sync.Pool{New: func() any {
	vd := &valueDecoder{}
	vd.d = msgpack.NewDecoder(&vd.r)
	return vd
}}

// msgpackDecode decodes data into dst with msgpack alone. A panic in
// msgpack (it panics on some values a peer could send, such as a struct's
// key twice, the second into an interface the first filled) is an error.
func msgpackDecode(data []byte, dst any) (err error) {
	vd := valueDecoders.Get().(*valueDecoder)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("msgpack: %v", r) // the decoder is dropped
			return
		}
		vd.r.Reset(nil)
		valueDecoders.Put(vd)
	}()
	vd.r.Reset(data)
	vd.d.Reset(&vd.r)
	return vd.d.Decode(dst)
}

// msgpackInterface decodes data as msgpack.Decoder.DecodeInterface does.
func msgpackInterface(data []byte) (any, error) {
	var v any
	err := msgpackDecode(data, &v)
	return v, err
}

// decodeValue decodes one encoded session value into dst, a pointer. The
// integer and interface destinations most used are decoded here without
// msgpack's reflection; the rest goes through decodeReflect.
func decodeValue(data []byte, dst any) error {
	switch p := dst.(type) {
	case *int:
		return decodeInt(data, p)
	case *int64:
		return decodeInt(data, p)
	case *int32:
		return decodeInt(data, p)
	case *uint64:
		return decodeInt(data, p)
	case *uint:
		return decodeInt(data, p)
	case *string, *[]byte, *bool, *float64, *time.Time:
		return msgpackDecode(data, dst) // nothing to check or normalize
	case *any:
		if p != nil {
			return decodeAny(data, p)
		}
	case *map[string]any:
		if p != nil && len(data) > 0 && (data[0] == msgpcode.Nil || isMapCode(data[0])) {
			w := cursor{b: data}
			if v, err := w.anyValue(); err == nil {
				*p, _ = v.(map[string]any) // nil for nil
				return nil
			}
		}
	case *[]any:
		if p != nil && len(data) > 0 && (data[0] == msgpcode.Nil || isArrayCode(data[0])) {
			w := cursor{b: data}
			if v, err := w.anyValue(); err == nil {
				*p, _ = v.([]any)
				return nil
			}
		}
	}
	return decodeReflect(data, dst)
}

// intAt reads the msgpack integer at the start of b, nil as zero, as
// msgpack's decoders do: v is its value, sign-extended if neg. ok is
// false if b does not start with a whole integer.
func intAt(b []byte) (v uint64, neg, ok bool) {
	if len(b) == 0 {
		return 0, false, false
	}
	c := b[0]
	switch {
	case c <= msgpcode.PosFixedNumHigh:
		return uint64(c), false, true
	case c >= msgpcode.NegFixedNumLow:
		return uint64(int64(int8(c))), true, true
	case c == msgpcode.Nil:
		return 0, false, true
	}
	var n int
	switch c {
	case msgpcode.Uint8, msgpcode.Int8:
		n = 1
	case msgpcode.Uint16, msgpcode.Int16:
		n = 2
	case msgpcode.Uint32, msgpcode.Int32:
		n = 4
	case msgpcode.Uint64, msgpcode.Int64:
		n = 8
	default:
		return 0, false, false
	}
	if len(b) < 1+n {
		return 0, false, false
	}
	v = msgp.UintN(b[1:], n)
	if c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32 || c == msgpcode.Uint64 {
		return v, false, true
	}
	shift := 64 - 8*n // sign-extend the n-byte int
	v = uint64(int64(v<<shift) >> shift)
	return v, int64(v) < 0, true
}

// fits reports whether integer v (negative if neg) fits a Go integer of
// that many bits, signed or not.
func fits(v uint64, neg, signed bool, bits int) bool {
	switch {
	case !signed:
		return !neg && (bits == 64 || v < 1<<bits)
	case neg:
		return bits == 64 || int64(v) >= -1<<(bits-1)
	}
	return v <= 1<<(bits-1)-1
}

// decodeInt decodes the integer data holds into *p, with an error if it
// does not fit T; what is not a whole integer goes to decodeReflect
// (msgpack then says why).
func decodeInt[T int | int64 | int32 | uint64 | uint](data []byte, p *T) error {
	v, neg, ok := intAt(data)
	if !ok {
		return decodeReflect(data, p)
	}
	n := T(v) // v sign-extended when neg, so a value that fits converts back to v
	if uint64(n) != v || (n < 0) != neg {
		return &rangeError{v: v, neg: neg, typ: fmt.Sprintf("%T", n)}
	}
	*p = n
	return nil
}

// decodeAny decodes into *p, replacing what it holds unless that is a
// non-nil pointer, which msgpack decodes into, as encoding/json does.
func decodeAny(data []byte, p *any) error {
	if *p != nil && reflect.TypeOf(*p).Kind() == reflect.Pointer && !reflect.ValueOf(*p).IsNil() {
		return decodeValue(data, *p)
	}
	v, err := anyAt(data)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// anyAt decodes data as Get gives a value into an interface (see
// normAny), directly where it can; msgpack decodes the rest (extension
// types; a malformed value, which it refuses).
func anyAt(data []byte) (any, error) {
	w := cursor{b: data}
	if v, err := w.anyValue(); err == nil {
		return v, nil
	}
	v, err := msgpackInterface(data)
	if err != nil {
		return nil, err
	}
	v, _ = normAny(v)
	return v, nil
}

// normAny returns x, a value msgpack decoded into an interface, with its
// integers as int64 (uint64 above MaxInt64) and floats as float64, in
// []any and map[string]any too (changed in place). changed reports
// whether x itself was replaced.
func normAny(x any) (_ any, changed bool) {
	switch v := x.(type) {
	case int8, int16, int32:
		return reflect.ValueOf(v).Int(), true
	case uint8, uint16, uint32:
		return int64(reflect.ValueOf(v).Uint()), true
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true
		}
	case float32:
		return float64(v), true
	case []any:
		for i, e := range v {
			if n, ok := normAny(e); ok {
				v[i] = n
			}
		}
	case map[string]any:
		for k, e := range v {
			if n, ok := normAny(e); ok {
				v[k] = n
			}
		}
	}
	return x, false
}

// decodeReflect decodes data into dst, a pointer of any type, with
// msgpack, after checking that every integer fits where it goes and
// before normalizing what went into interfaces.
func decodeReflect(data []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return msgpackDecode(data, dst) // which says what is wrong with dst
	}
	p := getPlanOf(rv.Type().Elem())
	if p.check && (!p.signed64 || bytes.IndexByte(data, msgpcode.Uint64) >= 0) {
		if err := checkFit(data, p); err != nil {
			return err
		}
	}
	if p.norm {
		clearStale(rv.Elem(), p)
	}
	if err := msgpackDecode(data, dst); err != nil {
		return err
	}
	if p.norm {
		normalize(rv.Elem(), p)
	}
	return nil
}
