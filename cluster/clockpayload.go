package cluster

import (
	"encoding/binary"
	"time"
)

// The clock payload is what this node appends to memberlist's direct ping
// acks (memberlist.PingDelegate.AckPayload): its wall clock at the moment
// it answered, so that the prober can measure the offset between the two
// clocks (clockoffsets.go). It travels inside memberlist's packet, which
// is encrypted and authenticated under the cluster key when Keys are set.
//
// Its layout is permanent:
//
//	"psclk"   5 bytes  tag
//	0x01      1 byte   version
//	wall      8 bytes  big-endian int64, Unix nanoseconds, > 0
//
// A payload of any other length, tag or version, or a wall that is not
// positive, is not a clock reading: nodes of releases before it send none,
// a newer release may send another version, and a hostile peer anything.
// Such payloads are ignored.
const (
	clockTag        = "psclk"
	clockVersion    = 1
	clockPayloadLen = len(clockTag) + 1 + 8
)

// encodeClockPayload returns the payload carrying wall.
func encodeClockPayload(wall time.Time) []byte {
	b := make([]byte, clockPayloadLen)
	copy(b, clockTag)
	b[len(clockTag)] = clockVersion
	binary.BigEndian.PutUint64(b[len(clockTag)+1:], uint64(wall.UnixNano()))
	return b
}

// decodeClockPayload returns the wall clock reading b carries, and false
// when b is not a clock payload of this version (see the layout above).
func decodeClockPayload(b []byte) (time.Time, bool) {
	if len(b) != clockPayloadLen || string(b[:len(clockTag)]) != clockTag || b[len(clockTag)] != clockVersion {
		return time.Time{}, false
	}
	ns := int64(binary.BigEndian.Uint64(b[len(clockTag)+1:]))
	if ns <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}
