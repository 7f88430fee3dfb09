// Package msgp holds what the wire codec (replicate/wire) and the session
// value codec (the root package) both read of msgpack's encoding, each
// with a decoder of its own over a byte slice.
package msgp

import (
	"encoding/binary"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// UintN returns the big-endian unsigned integer of n bytes (1, 2, 4 or 8)
// at the start of p: the length of a str, bin, array, map or ext, or the
// value of a uint or int. p must hold n bytes.
func UintN(p []byte, n int) uint64 {
	switch n {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	}
	return binary.BigEndian.Uint64(p)
}

// StrLenSize returns how many bytes of big-endian length follow the code
// c of a str or bin: 1, 2 or 4, or 0 for a fixstr, whose length is in c
// (c & msgpcode.FixedStrMask). It returns -1 for any other code.
func StrLenSize(c byte) int {
	switch {
	case msgpcode.IsFixedString(c):
		return 0
	case c == msgpcode.Str8 || c == msgpcode.Bin8:
		return 1
	case c == msgpcode.Str16 || c == msgpcode.Bin16:
		return 2
	case c == msgpcode.Str32 || c == msgpcode.Bin32:
		return 4
	}
	return -1
}

// FixedLen returns the length, code included, of a value whose code c is
// followed by a fixed number of bytes: nil, a bool, a float, or a uint or
// int that is not a fixint. It returns 0 for any other code.
func FixedLen(c byte) int { return int(fixedLens[c]) }

// fixedLens is FixedLen by code, a lookup in the decoders' inner loops.
var fixedLens = func() (lens [256]uint8) {
	for c := range lens {
		switch byte(c) {
		case msgpcode.Nil, msgpcode.False, msgpcode.True:
			lens[c] = 1
		case msgpcode.Uint8, msgpcode.Int8:
			lens[c] = 2
		case msgpcode.Uint16, msgpcode.Int16:
			lens[c] = 3
		case msgpcode.Uint32, msgpcode.Int32, msgpcode.Float:
			lens[c] = 5
		case msgpcode.Uint64, msgpcode.Int64, msgpcode.Double:
			lens[c] = 9
		}
	}
	return lens
}()
