package replicate

import (
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrMalformed is wrapped by every Decode error caused by the frame itself.
var ErrMalformed = errors.New("replicate: malformed frame")

// Encode returns a frame: FormatVersion, t, then the msgpack body of msg.
func Encode(t MsgType, msg any) ([]byte, error) {
	body, err := msgpack.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("replicate: encode %s: %w", t, err)
	}
	return append([]byte{FormatVersion, byte(t)}, body...), nil
}

// Decode validates and decodes a frame, returning its type and a pointer to
// the message struct (*Batch, *Ack, ...).
// TODO(codec): structural validation before decode; limits.
func Decode(frame []byte) (MsgType, any, error) {
	if len(frame) < 2 {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrMalformed, len(frame))
	}
	if frame[0] != FormatVersion {
		return 0, nil, fmt.Errorf("%w: format version %d, want %d", ErrMalformed, frame[0], FormatVersion)
	}
	t := MsgType(frame[1])
	var msg any
	switch t {
	case MsgBatch:
		msg = new(Batch)
	case MsgAck:
		msg = new(Ack)
	case MsgSyncRequest:
		msg = new(SyncRequest)
	case MsgSyncChunk:
		msg = new(SyncChunk)
	case MsgDigest:
		msg = new(Digest)
	case MsgBuckets:
		msg = new(Buckets)
	case MsgFetch:
		msg = new(Fetch)
	case MsgFetchReply:
		msg = new(FetchReply)
	default:
		return 0, nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, t)
	}
	if err := msgpack.Unmarshal(frame[2:], msg); err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %v", ErrMalformed, t, err)
	}
	return t, msg, nil
}
