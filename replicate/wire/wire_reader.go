package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/peersession/peersession/internal/msgp"
	"github.com/peersession/peersession/replicate/model"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// reader decodes msgpack from a byte slice. Its methods read what the
// msgpack.Decoder methods of the same names read, with the same results
// (nil as zero, any int width, str and bin alike), without the
// io.Reader calls per byte that cost msgpack.Decoder most of its time.
// Extension types are refused: no frame carries one (checkStructure
// refuses them).
//
// It never allocates more than the bytes left in b back: a string or
// bytes are only copied out once they are known to be there.
type reader struct {
	b   []byte
	pos int
	// names are the session key names read so far (see key), shared by
	// every record of the frame that uses them.
	names  [8]string
	nNames int
	// keyArena, if not nil, holds an array the records' Keys are carved
	// from, one after another, instead of one allocation per record; its
	// length is how much of it they use. A pooled Batch keeps the arena
	// with it, so a stream of Batches decodes its keys without
	// allocating; what the records' Keys point to is then only valid
	// until the Batch is reused (see Store.Apply).
	keyArena *[]model.KeyValue
}

// errArrayStruct is what msgpack says of a struct array of the wrong length.
var errArrayStruct = errors.New("msgpack: number of fields in array-encoded struct has changed")

// left returns the number of bytes not read yet.
func (r *reader) left() int { return len(r.b) - r.pos }

func (r *reader) code() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, io.ErrUnexpectedEOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) peek() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, io.ErrUnexpectedEOF
	}
	return r.b[r.pos], nil
}

// next returns the next n bytes, aliasing b.
func (r *reader) next(n int) ([]byte, error) {
	if n < 0 || n > r.left() {
		return nil, io.ErrUnexpectedEOF
	}
	p := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return p, nil
}

// uintN reads the big-endian unsigned integer of n (1, 2, 4 or 8) bytes.
func (r *reader) uintN(n int) (uint64, error) {
	p, err := r.next(n)
	if err != nil {
		return 0, err
	}
	return msgp.UintN(p, n), nil
}

// int64 is msgpack.Decoder.DecodeInt64.
func (r *reader) int64() (int64, error) {
	n, err := r.integer("int64")
	return int64(n), err
}

// uint64 is msgpack.Decoder.DecodeUint64: a negative int wraps, as there.
func (r *reader) uint64() (uint64, error) { return r.integer("uint64") }

// integer reads any msgpack int (nil as zero) as the 64 bits of its
// value, a signed form sign-extended, which int64 and uint64 convert as
// msgpack's decoders do. what names the Go type in an error.
func (r *reader) integer(what string) (uint64, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	if c == msgpcode.Nil {
		return 0, nil
	}
	if msgpcode.IsFixedNum(c) {
		return uint64(int8(c)), nil
	}
	if c < msgpcode.Uint8 || c > msgpcode.Int64 {
		return 0, fmt.Errorf("msgpack: invalid code=%x decoding %s", c, what)
	}
	// The codes are uint8, uint16, uint32, uint64 (0xcc-0xcf), then
	// int8 to int64 (0xd0-0xd3): the low two bits give the width.
	size := 1 << (c & 3)
	n, err := r.uintN(size)
	if c >= msgpcode.Int8 { // sign-extend
		shift := 64 - 8*size
		n = uint64(int64(n<<shift) >> shift)
	}
	return n, err
}

// bool is msgpack.Decoder.DecodeBool.
func (r *reader) bool() (bool, error) {
	c, err := r.code()
	if err != nil {
		return false, err
	}
	switch c {
	case msgpcode.Nil, msgpcode.False:
		return false, nil
	case msgpcode.True:
		return true, nil
	}
	return false, fmt.Errorf("msgpack: invalid code=%x decoding bool", c)
}

// bytesLen is msgpack.Decoder.DecodeBytesLen: -1 for nil, and str and
// bin alike. The length is checked against the bytes left.
func (r *reader) bytesLen() (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	if c == msgpcode.Nil {
		return -1, nil
	}
	var n uint64
	switch size := msgp.StrLenSize(c); {
	case size < 0:
		return 0, fmt.Errorf("msgpack: invalid code=%x decoding string/bytes length", c)
	case size == 0:
		n = uint64(c & msgpcode.FixedStrMask)
	default:
		n, err = r.uintN(size)
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(r.left()) {
		return 0, io.ErrUnexpectedEOF
	}
	return int(n), nil
}

// string is msgpack.Decoder.DecodeString: "" for nil.
func (r *reader) string() (string, error) {
	p, err := r.name()
	return string(p), err
}

// key is string for a session key name: the records of one frame repeat a
// handful of names, so the first few distinct ones are allocated once and
// shared (fewer allocations, and fewer objects for the collector to mark
// in the sessions they end up in).
func (r *reader) key() (string, error) {
	p, err := r.name()
	if err != nil || len(p) == 0 {
		return "", err
	}
	for _, s := range r.names[:r.nNames] {
		if s == string(p) {
			return s, nil
		}
	}
	s := string(p)
	if r.nNames < len(r.names) {
		r.names[r.nNames] = s
		r.nNames++
	}
	return s, nil
}

// name reads a str or bin without copying it (valid until b changes; nil
// for nil and empty): a map key naming a struct field, as msgpack's struct
// decoding reads it, or what string and key copy.
func (r *reader) name() ([]byte, error) {
	n, err := r.bytesLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	return r.next(n)
}

// bytes is msgpack.Decoder.DecodeBytes, into a new slice: nil for nil,
// and empty, not nil, for a zero length.
func (r *reader) bytes() ([]byte, error) {
	n, err := r.bytesLen()
	if err != nil || n == -1 {
		return nil, err
	}
	p, err := r.next(n)
	if err != nil {
		return nil, err
	}
	return append(make([]byte, 0, n), p...), nil
}

// mapLen is msgpack.Decoder.DecodeMapLen: -1 for nil.
func (r *reader) mapLen() (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	return r.containerLen(c, true)
}

// arrayLen is msgpack.Decoder.DecodeArrayLen: -1 for nil.
func (r *reader) arrayLen() (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	return r.containerLen(c, false)
}

// containerLen reads the length of the map (isMap) or array whose code c
// was read, checked against the bytes left: -1 for nil.
func (r *reader) containerLen(c byte, isMap bool) (int, error) {
	var n uint64
	var err error
	switch {
	case c == msgpcode.Nil:
		return -1, nil
	case isMap && msgpcode.IsFixedMap(c):
		n = uint64(c & msgpcode.FixedMapMask)
	case !isMap && msgpcode.IsFixedArray(c):
		n = uint64(c & msgpcode.FixedArrayMask)
	case isMap && c == msgpcode.Map16, !isMap && c == msgpcode.Array16:
		n, err = r.uintN(2)
	case isMap && c == msgpcode.Map32, !isMap && c == msgpcode.Array32:
		n, err = r.uintN(4)
	case isMap:
		return 0, fmt.Errorf("msgpack: unexpected code=%x decoding map length", c)
	default:
		return 0, fmt.Errorf("msgpack: invalid code=%x decoding array length", c)
	}
	if err != nil {
		return 0, err
	}
	if isMap {
		n *= 2
	}
	if n > uint64(r.left()) { // each entry takes a byte at least
		return 0, io.ErrUnexpectedEOF
	}
	if isMap {
		n /= 2
	}
	return int(n), nil
}

// structLen reads the header of a struct as msgpack's reflection does: a
// map of n fields (-1 for nil), or, isArray, an array of n fields.
func (r *reader) structLen() (n int, isArray bool, err error) {
	c, err := r.code()
	if err != nil {
		return 0, false, err
	}
	if msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32 {
		n, err = r.containerLen(c, false)
		return n, true, err
	}
	n, err = r.containerLen(c, true)
	return n, false, err
}

// skip moves past one object, as msgpack.Decoder.Skip; extension types
// are refused. Its recursion is bounded by depth, as checkStructure bounds
// nesting.
func (r *reader) skip(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("msgpack: containers nested more than %d deep", maxDepth)
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch {
	case msgpcode.IsFixedNum(c), c == msgpcode.Nil, c == msgpcode.False, c == msgpcode.True:
		r.pos++
		return nil
	case c == msgpcode.Float:
		r.pos++
		_, err = r.next(4)
		return err
	case c == msgpcode.Double:
		r.pos++
		_, err = r.next(8)
		return err
	case c >= msgpcode.Uint8 && c <= msgpcode.Int64:
		_, err = r.int64()
		return err
	case msgpcode.IsFixedString(c), c == msgpcode.Str8, c == msgpcode.Str16, c == msgpcode.Str32,
		c == msgpcode.Bin8, c == msgpcode.Bin16, c == msgpcode.Bin32:
		_, err = r.name()
		return err
	}
	r.pos++
	isMap := msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
	if !isMap && !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		return fmt.Errorf("msgpack: unknown code %x", c)
	}
	n, err := r.containerLen(c, isMap)
	if err != nil {
		return err
	}
	if isMap {
		n *= 2
	}
	for range n {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
