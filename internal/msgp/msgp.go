// Package msgp holds what the wire codec (replicate/wire) and the session
// value codec (the root package) both read of msgpack's encoding, each
// with a decoder of its own over a byte slice.
package msgp

import "encoding/binary"

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
