package peersession

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// What Set refuses, and how it encodes (see codec.go).

// valueEncoder is a reusable msgpack encoder into a buffer.
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
// buffer takes 64 bytes for a one-byte int. It refuses (ErrUnsupportedValue)
// what msgpack cannot store faithfully.
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
	if err := checkValue(v); err != nil {
		return nil, err
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

// checkValue returns an *unsupportedError if v, or any value inside it,
// cannot be stored faithfully. The types of a value are checked once per
// type; only values held in interfaces (a map[string]any's) are looked at
// one by one.
func checkValue(v any) error {
	switch v := v.(type) {
	case nil, string, []byte, bool, float64, float32, time.Time, time.Duration,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return nil
	case []any:
		for i, e := range v {
			if err := checkValue(e); err != nil {
				return err.(*unsupportedError).under("[" + strconv.Itoa(i) + "]")
			}
		}
		return nil
	case map[string]any:
		for k, e := range v {
			if err := checkValue(e); err != nil {
				return err.(*unsupportedError).under("[" + strconv.Quote(k) + "]")
			}
		}
		return nil
	}
	if err := checkReflect(reflect.ValueOf(v)); err != nil {
		return err // not a nil *unsupportedError in an error
	}
	return nil
}

// checkReflect is checkValue for a value of any type.
func checkReflect(v reflect.Value) *unsupportedError {
	info := setInfoOf(v.Type())
	if info.err != nil || !info.dynamic {
		return info.err
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		if v.CanInterface() {
			if err := checkValue(v.Elem().Interface()); err != nil {
				return err.(*unsupportedError)
			}
			return nil
		}
		return checkReflect(v.Elem())
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return checkReflect(v.Elem())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := checkReflect(v.Index(i)); err != nil {
				return err.under("[" + strconv.Itoa(i) + "]")
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			k := it.Key()
			if err := checkReflect(k); err != nil {
				return err.under(" (a map key)")
			}
			if err := checkReflect(it.Value()); err != nil {
				return err.under(mapSeg(k))
			}
		}
	case reflect.Struct:
		for _, f := range info.fields {
			fv, err := v.FieldByIndexErr(f.index)
			if err != nil {
				continue // a nil embedded pointer: msgpack skips it too
			}
			if err := checkReflect(fv); err != nil {
				return err.under("." + f.goName)
			}
		}
	}
	return nil
}

// mapSeg is the path segment of a map entry with key k.
func mapSeg(k reflect.Value) string {
	switch k.Kind() {
	case reflect.String:
		return "[" + strconv.Quote(k.String()) + "]"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "[" + strconv.FormatInt(k.Int(), 10) + "]"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "[" + strconv.FormatUint(k.Uint(), 10) + "]"
	}
	return "[…]"
}

// setInfo is what Set knows of a type.
type setInfo struct {
	err     *unsupportedError // non-nil: the type is refused
	dynamic bool              // it holds interfaces, whose values are checked one by one
	fields  []*mpField        // a struct's fields as msgpack encodes them, for the walk
}

// setInfos caches a *setInfo per reflect.Type.
var setInfos sync.Map

func setInfoOf(t reflect.Type) *setInfo {
	if v, ok := setInfos.Load(t); ok {
		return v.(*setInfo)
	}
	info := &setInfo{}
	info.dynamic, info.err = checkType(t, map[reflect.Type]bool{})
	if t.Kind() == reflect.Struct && !hasMethods(t, encoderIfaces) {
		info.fields = msgpackFields(t, 0).list
	}
	v, _ := setInfos.LoadOrStore(t, info)
	return v.(*setInfo)
}

var (
	errorType = reflect.TypeFor[error]()
	// encoderIfaces and decoderIfaces are what msgpack asks of a type,
	// or of a pointer to it, before encoding or decoding it by its kind.
	encoderIfaces = []reflect.Type{reflect.TypeFor[msgpack.CustomEncoder](), reflect.TypeFor[msgpack.Marshaler](),
		reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.TextMarshaler]()}
	decoderIfaces = []reflect.Type{reflect.TypeFor[msgpack.CustomDecoder](), reflect.TypeFor[msgpack.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()}
)

// hasMethods reports whether t or *t implements one of ifaces: msgpack
// then leaves the type's encoding to it, and so do we.
func hasMethods(t reflect.Type, ifaces []reflect.Type) bool {
	for _, i := range ifaces {
		if t.Implements(i) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(i)) {
			return true
		}
	}
	return false
}

// checkType reports whether a value of type t holds interfaces (dynamic)
// and whether t is refused. seen holds the types already on the way, for
// recursive types.
func checkType(t reflect.Type, seen map[reflect.Type]bool) (dynamic bool, err *unsupportedError) {
	if seen[t] {
		return false, nil
	}
	seen[t] = true
	if t == errorType || hasMethods(t, encoderIfaces) {
		return false, nil // encoded as a string, or as its methods say
	}
	refuse := func(why string) (bool, *unsupportedError) {
		return false, &unsupportedError{typ: t, why: why}
	}
	switch t.Kind() {
	case reflect.Func:
		return refuse("a func cannot be stored")
	case reflect.Chan:
		return refuse("a channel cannot be stored")
	case reflect.UnsafePointer:
		return refuse("an unsafe.Pointer cannot be stored")
	case reflect.Uintptr:
		return refuse("a uintptr cannot be stored (msgpack has no encoding for it)")
	case reflect.Complex64, reflect.Complex128:
		return refuse("msgpack has no complex numbers; store the real and imaginary parts")
	case reflect.Interface:
		return true, nil
	case reflect.Pointer, reflect.Slice, reflect.Array:
		d, err := checkType(t.Elem(), seen)
		if err != nil && t.Kind() != reflect.Pointer {
			err = err.under("[i]")
		}
		return d, err
	case reflect.Map:
		dk, err := checkType(t.Key(), seen)
		if err != nil {
			return false, err.under(" (a map key)")
		}
		de, err := checkType(t.Elem(), seen)
		if err != nil {
			return false, err.under("[k]")
		}
		return dk || de, nil
	case reflect.Struct:
		fs := msgpackFields(t, 0)
		if len(fs.list) == 0 && hasDataFields(t) && !customEncoding(t) {
			return refuse("none of its fields is exported, so it would be stored as {} and read back " +
				"as its zero value: export them, or give the type a MarshalMsgpack method")
		}
		for _, f := range fs.list {
			d, err := checkType(f.typ, seen)
			if err != nil {
				if customEncoding(t) {
					return false, nil
				}
				return false, err.under("." + f.goName)
			}
			dynamic = dynamic || d
		}
		return dynamic, nil
	}
	return false, nil
}

// hasDataFields reports whether a struct type has a field that could
// hold data (not "_", not msgpack's options field).
func hasDataFields(t reflect.Type) bool {
	for i := range t.NumField() {
		if n := t.Field(i).Name; n != "_" && n != "_msgpack" {
			return true
		}
	}
	return false
}

// customEncoding reports whether msgpack encodes a zero t otherwise than
// as a struct (a type registered with msgpack.Register or RegisterExt),
// before a struct type is refused.
func customEncoding(t reflect.Type) (custom bool) {
	defer func() {
		if recover() != nil {
			custom = false
		}
	}()
	b, err := msgpack.Marshal(reflect.New(t).Elem().Interface())
	if err != nil || len(b) == 0 {
		return false
	}
	c := b[0]
	isMap := msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
	isArray := msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
	return !isMap && !isArray
}
