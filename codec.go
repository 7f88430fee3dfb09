package peersession

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

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

// ErrUnsupportedValue is returned (wrapped) by Session.Set for a value
// msgpack cannot store faithfully: a struct none of whose fields would be
// stored (all unexported or tagged "-"), a func, channel, unsafe.Pointer,
// uintptr or complex number, anywhere in the value. Nothing is stored.
var ErrUnsupportedValue = errors.New("peersession: value cannot be stored faithfully")

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

// ---- Encoding (Set) ----

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

// ---- Struct fields as msgpack sees them ----

// mpField is one field of a struct as msgpack v5 encodes and decodes it.
type mpField struct {
	goName string // the Go field name, for errors
	name   string // the msgpack key
	index  []int  // for reflect.Value.FieldByIndex
	typ    reflect.Type
}

// mpFields are a struct's fields as msgpack v5 (types.go, getFields) sees
// them with no custom struct tag: list in encoding order, byName for
// decoding (aliases and an inlined struct's own name included).
type mpFields struct {
	list   []*mpField
	byName map[string]*mpField
}

func (fs *mpFields) add(f *mpField) {
	fs.byName[f.name] = f
	fs.list = append(fs.list, f)
}

// maxInline bounds the depth of inlined embedded structs (msgpack itself
// recurses without end on a struct embedding a pointer to itself).
const maxInline = 16

// msgpackFields mirrors msgpack's getFields: a field tagged "-" or
// unexported (unless embedded) is skipped; an embedded struct is inlined
// unless tagged noinline, it has encoding methods, or one of its fields
// would shadow one already there.
func msgpackFields(t reflect.Type, depth int) *mpFields {
	fs := &mpFields{byName: map[string]*mpField{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts := parseTag(sf.Tag.Get("msgpack"))
		if name == "-" {
			continue
		}
		if sf.PkgPath != "" && !sf.Anonymous {
			continue
		}
		f := &mpField{goName: sf.Name, name: name, index: sf.Index, typ: sf.Type}
		if f.name == "" {
			f.name = sf.Name
		}
		_, noinline := opts["noinline"]
		if sf.Anonymous && !noinline && depth < maxInline {
			_, inline := opts["inline"]
			if inline {
				inner := sf.Type
				for inner.Kind() == reflect.Pointer {
					inner = inner.Elem()
				}
				if inner.Kind() == reflect.Struct {
					for _, g := range msgpackFields(inner, depth+1).list {
						if _, ok := fs.byName[g.name]; !ok {
							fs.add(inlined(f, g))
						}
					}
				}
			} else {
				inline = inlineAuto(fs, sf.Type, f, depth)
			}
			if inline {
				fs.byName[f.name] = f
				continue
			}
		}
		fs.add(f)
		if alias, ok := opts["alias"]; ok {
			fs.byName[alias] = f
		}
	}
	return fs
}

// inlineAuto is msgpack's shouldInline: an embedded struct (or pointer to
// one) encoded as a struct is inlined unless one of its fields would
// shadow one already in fs.
func inlineAuto(fs *mpFields, t reflect.Type, f *mpField, depth int) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || hasMethods(t, encoderIfaces) || hasMethods(t, decoderIfaces) {
		return false
	}
	inner := msgpackFields(t, depth+1).list
	for _, g := range inner {
		if _, ok := fs.byName[g.name]; ok {
			return false
		}
	}
	for _, g := range inner {
		fs.add(inlined(f, g))
	}
	return true
}

// inlined returns inner field g of embedded field f, as a field of f's
// struct.
func inlined(f, g *mpField) *mpField {
	c := *g
	c.index = append(append([]int(nil), f.index...), g.index...)
	return &c
}

// parseTag splits a msgpack struct tag into its name and options (an
// option's value after a colon, as alias:other), as tagparser.Parse does
// for the tags msgpack understands.
func parseTag(tag string) (name string, opts map[string]string) {
	for i, part := range strings.Split(tag, ",") {
		key, value, hasValue := strings.Cut(strings.TrimSpace(part), ":")
		if i == 0 && !hasValue {
			name = key
			continue
		}
		if opts == nil {
			opts = map[string]string{}
		}
		opts[strings.TrimSpace(key)] = strings.TrimSpace(value)
	}
	return name, opts
}

// ---- Decoding (Get) ----

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
		if n, ok, err := signedAt(data, strconv.IntSize, "int"); ok {
			if err == nil {
				*p = int(n)
			}
			return err
		}
	case *int64:
		if n, ok, err := signedAt(data, 64, "int64"); ok {
			if err == nil {
				*p = n
			}
			return err
		}
	case *int32:
		if n, ok, err := signedAt(data, 32, "int32"); ok {
			if err == nil {
				*p = int32(n)
			}
			return err
		}
	case *uint64:
		if n, ok, err := unsignedAt(data, 64, "uint64"); ok {
			if err == nil {
				*p = n
			}
			return err
		}
	case *uint:
		if n, ok, err := unsignedAt(data, strconv.IntSize, "uint"); ok {
			if err == nil {
				*p = uint(n)
			}
			return err
		}
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
	switch c {
	case msgpcode.Uint8:
		return uint64(b[1]), false, true
	case msgpcode.Uint16:
		return uint64(binary.BigEndian.Uint16(b[1:])), false, true
	case msgpcode.Uint32:
		return uint64(binary.BigEndian.Uint32(b[1:])), false, true
	case msgpcode.Uint64:
		return binary.BigEndian.Uint64(b[1:]), false, true
	case msgpcode.Int8:
		v = uint64(int64(int8(b[1])))
	case msgpcode.Int16:
		v = uint64(int64(int16(binary.BigEndian.Uint16(b[1:]))))
	case msgpcode.Int32:
		v = uint64(int64(int32(binary.BigEndian.Uint32(b[1:]))))
	default:
		v = binary.BigEndian.Uint64(b[1:])
	}
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

// signedAt reads the integer at the start of data for a signed
// destination of bits bits, named typ. ok is false if data holds no
// integer (msgpack then says why).
func signedAt(data []byte, bits int, typ string) (n int64, ok bool, err error) {
	v, neg, ok := intAt(data)
	if !ok {
		return 0, false, nil
	}
	if !fits(v, neg, true, bits) {
		return 0, true, &rangeError{v: v, neg: neg, typ: typ}
	}
	return int64(v), true, nil
}

// unsignedAt is signedAt for an unsigned destination.
func unsignedAt(data []byte, bits int, typ string) (n uint64, ok bool, err error) {
	v, neg, ok := intAt(data)
	if !ok {
		return 0, false, nil
	}
	if !fits(v, neg, false, bits) {
		return 0, true, &rangeError{v: v, neg: neg, typ: typ}
	}
	return v, true, nil
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
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
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

// planKind is what a getPlan node is.
type planKind uint8

const (
	planSkip   planKind = iota // nothing to check or normalize: strings, floats, bytes, types with decoding methods
	planInt                    // a signed integer of bits bits
	planUint                   // an unsigned integer
	planPtr                    // *elem
	planSeq                    // a slice or array of elem
	planMap                    // map[key]elem
	planStruct                 // fields
	planIface                  // an empty interface: normalized after decoding
)

// getPlan is what Get knows of a destination type: the shape of the
// integers and interfaces in it. Plans of recursive types are cyclic.
type getPlan struct {
	typ       reflect.Type
	kind      planKind
	bits      int
	elem, key *getPlan
	fields    map[string]*getField // by msgpack key
	list      []*getField          // in encoding order, for a struct encoded as an array
	checked   []namedField         // the fields that need checkFit, by msgpack key
	check     bool                 // an integer inside needs checkFit
	norm      bool                 // an interface inside needs normalize
	// signed64 is set on a destination whose integers are all int or
	// int64: only a uint64 over MaxInt64 does not fit one, and msgpack
	// writes that with the Uint64 code, so a value without that byte
	// needs no checkFit.
	signed64 bool
}

// namedField is a struct field under one of its msgpack keys.
type namedField struct {
	name  string
	field *getField
}

// getField is one field of a planStruct.
type getField struct {
	goName string
	index  []int
	plan   *getPlan
}

// getPlans caches a *getPlan per destination type (what dst points to).
var getPlans sync.Map

func getPlanOf(t reflect.Type) *getPlan {
	if v, ok := getPlans.Load(t); ok {
		return v.(*getPlan)
	}
	memo := map[reflect.Type]*getPlan{}
	p := buildPlan(t, memo)
	// check and norm propagate up, round cycles too: until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, q := range memo {
			c, n := q.kind == planInt || q.kind == planUint, q.kind == planIface
			for _, sub := range q.children() {
				c, n = c || sub.check, n || sub.norm
			}
			if c != q.check || n != q.norm {
				q.check, q.norm, changed = c, n, true
			}
		}
	}
	p.signed64 = true
	for _, q := range memo {
		if (q.kind == planInt || q.kind == planUint) && (q.kind == planUint || q.bits != 64) {
			p.signed64 = false
		}
		for name, f := range q.fields {
			if f.plan.check {
				q.checked = append(q.checked, namedField{name, f})
			}
		}
	}
	v, _ := getPlans.LoadOrStore(t, p)
	return v.(*getPlan)
}

func (p *getPlan) children() []*getPlan {
	var c []*getPlan
	if p.elem != nil {
		c = append(c, p.elem)
	}
	if p.key != nil {
		c = append(c, p.key)
	}
	for _, f := range p.list {
		c = append(c, f.plan)
	}
	for _, f := range p.fields {
		c = append(c, f.plan)
	}
	return c
}

func buildPlan(t reflect.Type, memo map[reflect.Type]*getPlan) *getPlan {
	if p := memo[t]; p != nil {
		return p
	}
	p := &getPlan{typ: t}
	memo[t] = p
	if hasMethods(t, decoderIfaces) {
		return p // decoded by its own methods
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind, p.bits = planInt, t.Bits()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		p.kind, p.bits = planUint, t.Bits()
	case reflect.Pointer:
		p.kind, p.elem = planPtr, buildPlan(t.Elem(), memo)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 { // bytes are bin, not an array
			p.kind, p.elem = planSeq, buildPlan(t.Elem(), memo)
		}
	case reflect.Map:
		p.kind, p.key, p.elem = planMap, buildPlan(t.Key(), memo), buildPlan(t.Elem(), memo)
	case reflect.Interface:
		if t.NumMethod() == 0 {
			p.kind = planIface
		}
	case reflect.Struct:
		p.kind = planStruct
		fs := msgpackFields(t, 0)
		byField := map[*mpField]*getField{}
		field := func(f *mpField) *getField {
			if g := byField[f]; g != nil {
				return g
			}
			g := &getField{goName: f.goName, index: f.index, plan: buildPlan(f.typ, memo)}
			byField[f] = g
			return g
		}
		p.fields = make(map[string]*getField, len(fs.byName))
		for name, f := range fs.byName {
			p.fields[name] = field(f)
		}
		for _, f := range fs.list {
			p.list = append(p.list, field(f))
		}
	}
	return p
}

// errStop stops checkFit where msgpack will fail anyway (a code the
// destination does not take, a malformed value): msgpack then says why.
var errStop = errors.New("stop")

// checkFit returns a *rangeError for the first integer in data that does
// not fit where plan p puts it.
func checkFit(data []byte, p *getPlan) error {
	w := cursor{b: data}
	if err := w.value(p); err != nil && err != errStop {
		return err
	}
	return nil
}

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
	p := w.b[w.pos+1:]
	w.pos += 1 + n
	var v uint64
	switch n {
	case 1:
		v = uint64(p[0])
	case 2:
		v = uint64(binary.BigEndian.Uint16(p))
	default:
		v = uint64(binary.BigEndian.Uint32(p))
	}
	if v > uint64(len(w.b)) {
		return 0, errStop // more elements or bytes than the value has bytes
	}
	return int(v), nil
}

// arrayLen reads an array header: -1 for nil.
func (w *cursor) arrayLen() (int, error) {
	if w.pos >= len(w.b) {
		return 0, errStop
	}
	c := w.b[w.pos]
	switch {
	case c == msgpcode.Nil:
		w.pos++
		return -1, nil
	case msgpcode.IsFixedArray(c):
		w.pos++
		return int(c & msgpcode.FixedArrayMask), nil
	case c == msgpcode.Array16:
		return w.uintN(2)
	case c == msgpcode.Array32:
		return w.uintN(4)
	}
	return 0, errStop
}

// mapLen reads a map header: -1 for nil.
func (w *cursor) mapLen() (int, error) {
	if w.pos >= len(w.b) {
		return 0, errStop
	}
	c := w.b[w.pos]
	switch {
	case c == msgpcode.Nil:
		w.pos++
		return -1, nil
	case msgpcode.IsFixedMap(c):
		w.pos++
		return int(c & msgpcode.FixedMapMask), nil
	case c == msgpcode.Map16:
		return w.uintN(2)
	case c == msgpcode.Map32:
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
	var n int
	var err error
	switch {
	case c == msgpcode.Nil:
		w.pos++
		return -1, nil
	case msgpcode.IsFixedString(c):
		w.pos++
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8 || c == msgpcode.Bin8:
		n, err = w.uintN(1)
	case c == msgpcode.Str16 || c == msgpcode.Bin16:
		n, err = w.uintN(2)
	case c == msgpcode.Str32 || c == msgpcode.Bin32:
		n, err = w.uintN(4)
	default:
		return 0, errStop
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
	var size int
	switch c {
	case msgpcode.Uint8, msgpcode.Int8:
		size = 1
	case msgpcode.Uint16, msgpcode.Int16:
		size = 2
	case msgpcode.Uint32, msgpcode.Int32, msgpcode.Float:
		size = 4
	case msgpcode.Uint64, msgpcode.Int64, msgpcode.Double:
		size = 8
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
		return errStop
	}
	if w.pos+1+size > len(w.b) {
		return errStop
	}
	w.pos += 1 + size
	return nil
}

// clearStale empties the interfaces in dst that msgpack cannot decode
// into (it panics on one holding a non-pointer, left by an earlier Get)
// and the slices of them it would reuse, before decoding.
func clearStale(v reflect.Value, p *getPlan) {
	if !p.norm || !v.CanSet() {
		return
	}
	switch p.kind {
	case planIface:
		if !v.IsNil() && v.Elem().Kind() != reflect.Pointer {
			v.SetZero()
		}
	case planPtr:
		if !v.IsNil() {
			clearStale(v.Elem(), p.elem)
		}
	case planSeq:
		if v.Kind() == reflect.Slice {
			v = v.Slice(0, v.Cap()) // msgpack reuses the backing array
		}
		for i := range v.Len() {
			clearStale(v.Index(i), p.elem)
		}
	case planStruct:
		for _, f := range p.list {
			if fv, err := v.FieldByIndexErr(f.index); err == nil {
				clearStale(fv, f.plan)
			}
		}
	}
}

// normalize applies normAny to every interface in v, which plan p
// describes, after decoding.
func normalize(v reflect.Value, p *getPlan) {
	if !p.norm {
		return
	}
	switch p.kind {
	case planIface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		if n, ok := normAny(v.Interface()); ok {
			v.Set(reflect.ValueOf(n))
		}
	case planPtr:
		if !v.IsNil() {
			normalize(v.Elem(), p.elem)
		}
	case planSeq:
		for i := range v.Len() {
			normalize(v.Index(i), p.elem)
		}
	case planMap:
		if !v.CanSet() {
			return
		}
		if m, ok := v.Interface().(map[string]any); ok {
			normAny(m)
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(p.elem.typ).Elem()
			e.Set(v.MapIndex(k))
			normalize(e, p.elem)
			nk := k
			if p.key.norm {
				nk = reflect.New(p.key.typ).Elem()
				nk.Set(k)
				normalize(nk, p.key)
				v.SetMapIndex(k, reflect.Value{})
			}
			v.SetMapIndex(nk, e)
		}
	case planStruct:
		for _, f := range p.list {
			if fv, err := v.FieldByIndexErr(f.index); err == nil {
				normalize(fv, f.plan)
			}
		}
	}
}
