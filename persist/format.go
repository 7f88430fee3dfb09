package persist

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// The file format (see the package comment). It is permanent: a new
// version gets a new formatVersion, and chunk types are append-only.
const (
	magic         = "peersess"
	formatVersion = 1

	kindSnapshot byte = 'S'
	kindLog      byte = 'L'

	chunkRecords byte = 'R' // a wire Batch frame
	chunkEnd     byte = 'E' // a snapshot's end: record and chunk counts

	headerSize = 56
	saltEnd    = 40 // the header's bytes the keys are derived from
	nonceSize  = 12
	tagSize    = 16
	// chunkPrefix is a chunk's bytes before its ciphertext: length, type,
	// nonce.
	chunkPrefix = 4 + 1 + nonceSize
	// maxChunk bounds a chunk's length field: a wire frame is at most 16
	// MiB (wire.DefaultLimits.MaxFrame), and the writer makes them near 1
	// MiB. A larger length is corruption, not a reason to allocate.
	maxChunk = 16<<20 + 1 + nonceSize + tagSize
	// KeySize is the length of a master key.
	KeySize = 32
)

const (
	infoKey   = "peersession persist v1 chunk key"
	infoCheck = "peersession persist v1 key check"
)

// fileKeys are one file's keys, derived from a master key and its header.
type fileKeys struct {
	aead  cipher.AEAD
	check [16]byte
}

// deriveKeys derives the chunk key and the key check of the file whose
// header starts with hdr (at least saltEnd bytes) from master.
func deriveKeys(master, hdr []byte) (*fileKeys, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("persist: key of %d bytes; it must be %d", len(master), KeySize)
	}
	salt := hdr[:saltEnd]
	k, err := hkdf.Key(sha256.New, master, salt, infoKey, 32)
	if err != nil {
		return nil, err
	}
	c, err := hkdf.Key(sha256.New, master, salt, infoCheck, 16)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	fk := &fileKeys{aead: aead}
	copy(fk.check[:], c)
	return fk, nil
}

// header is a file's parsed header.
type header struct {
	kind byte
	gen  uint64
	raw  [headerSize]byte
}

// newHeader returns the header of a new file of kind and gen, with a
// fresh salt, and its keys under master.
func newHeader(kind byte, gen uint64, master []byte) (*header, *fileKeys, error) {
	h := &header{kind: kind, gen: gen}
	copy(h.raw[:], magic)
	h.raw[8] = formatVersion
	h.raw[9] = kind
	binary.BigEndian.PutUint64(h.raw[16:24], gen)
	if _, err := rand.Read(h.raw[24:saltEnd]); err != nil {
		return nil, nil, err
	}
	fk, err := deriveKeys(master, h.raw[:])
	if err != nil {
		return nil, nil, err
	}
	copy(h.raw[saltEnd:], fk.check[:])
	return h, fk, nil
}

// parseHeader checks b's header and returns it with the keys of the first
// of keys whose check matches. keyIndex is that key's index in keys.
func parseHeader(b []byte, keys [][]byte) (h *header, fk *fileKeys, keyIndex int, err error) {
	if len(b) < headerSize {
		if bytes.HasPrefix([]byte(magic), b) || bytes.HasPrefix(b, []byte(magic)) {
			return nil, nil, 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrTruncated, len(b), headerSize)
		}
		return nil, nil, 0, fmt.Errorf("%w: %d bytes and no peersession header", ErrForeign, len(b))
	}
	if string(b[:8]) != magic {
		return nil, nil, 0, fmt.Errorf("%w: it does not start with %q", ErrForeign, magic)
	}
	if b[8] != formatVersion {
		return nil, nil, 0, fmt.Errorf("%w: format version %d; this build reads %d", ErrVersion, b[8], formatVersion)
	}
	h = &header{kind: b[9], gen: binary.BigEndian.Uint64(b[16:24])}
	copy(h.raw[:], b)
	if h.kind != kindSnapshot && h.kind != kindLog {
		return nil, nil, 0, fmt.Errorf("%w: unknown file kind %q", ErrCorrupt, h.kind)
	}
	for i, k := range keys {
		fk, err := deriveKeys(k, h.raw[:])
		if err != nil {
			return nil, nil, 0, err
		}
		if hmac.Equal(fk.check[:], h.raw[saltEnd:]) {
			return h, fk, i, nil
		}
	}
	return nil, nil, 0, fmt.Errorf("%w: none of the %d keys given opens it", ErrWrongKey, len(keys))
}

// sealChunk appends to dst the chunk of type typ and index idx holding
// plain.
func (fk *fileKeys) sealChunk(dst []byte, typ byte, idx uint64, plain []byte) []byte {
	n := 1 + nonceSize + len(plain) + tagSize
	dst = slices.Grow(dst, 4+n)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, typ)
	nonce := len(dst)
	dst = append(dst, make([]byte, nonceSize)...)
	_, _ = rand.Read(dst[nonce:])
	var aad [9]byte
	binary.BigEndian.PutUint64(aad[:], idx)
	aad[8] = typ
	return fk.aead.Seal(dst, dst[nonce:nonce+nonceSize], plain, aad[:])
}

// openChunk decrypts the body of a chunk (its bytes after the length) of
// index idx, returning its type and plaintext (appended to dst).
func (fk *fileKeys) openChunk(dst, body []byte, idx uint64) (byte, []byte, error) {
	if len(body) < 1+nonceSize+tagSize {
		return 0, nil, fmt.Errorf("%w: chunk %d of %d bytes", ErrCorrupt, idx, len(body))
	}
	typ := body[0]
	var aad [9]byte
	binary.BigEndian.PutUint64(aad[:], idx)
	aad[8] = typ
	plain, err := fk.aead.Open(dst, body[1:1+nonceSize], body[1+nonceSize:], aad[:])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: chunk %d does not authenticate", ErrCorrupt, idx)
	}
	return typ, plain, nil
}
