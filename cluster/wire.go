package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/flynn/noise"
)

// preamble opens every stream: magic "PSN" and the protocol version.
const preamble = "PSN\x01"

// Transport message types: the first plaintext byte. ONLY APPEND.
const (
	msgConfirm  byte = 1 // initiator's confirmation: 16 random bytes + its peer ID
	msgData     byte = 2 // last (or only) chunk of a frame
	msgDataMore byte = 3 // chunk of a frame; more follow
	msgLeaving  byte = 4 // the sender is about to leave gracefully (no payload)
)

const (
	tagSize = 16
	// maxChunk is the frame payload carried by one Noise message.
	maxChunk = noise.MaxMsgLen - tagSize - 1
	// retainBuf is the largest frame buffer framePool keeps (see
	// bufpool.go): room for a sealed frame of a full batch or
	// state-transfer chunk (about 1 MiB, grown by append to 2), so that a
	// run of them reuses buffers rather than allocating and faulting in a
	// fresh one each.
	retainBuf = 4 << 20
)

var errMsgTooLong = errors.New("cluster: stream message longer than allowed")

// readMsg reads one length-prefixed message into buf (len(buf) >= limit).
// The length is unauthenticated, so it is checked against limit before any
// read of the body.
func readMsg(r io.Reader, buf []byte, limit int) ([]byte, error) {
	// The length prefix is read into buf too (a local array would escape
	// through io.Reader: one allocation per message).
	if len(buf) < 2 {
		return nil, fmt.Errorf("%w: buffer of %d bytes", errMsgTooLong, len(buf))
	}
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return nil, err
	}
	size := int(binary.BigEndian.Uint16(buf[:2]))
	if size > limit || size > len(buf) {
		return nil, fmt.Errorf("%w: %d > %d", errMsgTooLong, size, min(limit, len(buf)))
	}
	if _, err := io.ReadFull(r, buf[:size]); err != nil {
		return nil, err
	}
	return buf[:size], nil
}

// appendMsg appends msg with its length prefix.
func appendMsg(buf, msg []byte) []byte {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(msg)))
	return append(buf, msg...)
}

// appendSealed appends one length-prefixed transport message of type typ,
// encrypted in place with cs. len(payload) must be at most maxChunk.
func appendSealed(buf []byte, cs *streamCipher, typ byte, payload []byte) ([]byte, error) {
	off := len(buf) + 2
	buf = slices.Grow(buf, 2+1+len(payload)+tagSize)
	buf = buf[:off+1+len(payload)]
	buf[off] = typ
	copy(buf[off+1:], payload)
	ct, err := cs.Encrypt(buf[off:off], nil, buf[off:])
	if err != nil {
		return buf[:off-2], err
	}
	binary.BigEndian.PutUint16(buf[off-2:], uint16(len(ct)))
	return buf[:off+len(ct)], nil
}

// appendFrame appends frame as one or more transport messages.
func appendFrame(buf []byte, cs *streamCipher, frame []byte) ([]byte, error) {
	for {
		chunk := frame[:min(len(frame), maxChunk)]
		frame = frame[len(chunk):]
		typ := msgDataMore
		if len(frame) == 0 {
			typ = msgData
		}
		var err error
		if buf, err = appendSealed(buf, cs, typ, chunk); err != nil || typ == msgData {
			return buf, err
		}
	}
}
