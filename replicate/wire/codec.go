package wire

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/peersession/peersession/replicate/model"

	"github.com/vmihailenco/msgpack/v5"
)

// DigestBuckets is the number of buckets session IDs hash into for
// anti-entropy: a Digest carries exactly this many hashes and a Summary
// names indices below it. Changing it changes the wire format.
const DigestBuckets = 256

// maxDepth bounds how deeply containers may nest in a frame body. The
// deepest legitimate path (Batch, records, record, keys, value, version) is
// six levels.
const maxDepth = 16

// Sentinel errors. Every Decode error caused by the frame itself wraps
// ErrMalformed; those caused by a limit also wrap ErrTooLarge, and a frame
// of another format version also wraps ErrVersion, so callers can branch
// with errors.Is on the one they care about.
var (
	// ErrMalformed: the frame is not a valid message.
	ErrMalformed = errors.New("replicate: malformed frame")
	// ErrTooLarge: the frame, or something in it, is over a Limits field.
	// Encode returns it too, so a sender can split what it sends.
	ErrTooLarge = errors.New("replicate: frame over limit")
	// ErrVersion: the frame has another FormatVersion; the peer runs an
	// incompatible release and one of the two nodes needs an upgrade.
	ErrVersion = errors.New("replicate: unsupported format version")
)

// Limits bounds what DecodeLimits accepts, and so the memory and work a
// frame from a peer can cost. A zero field means the DefaultLimits value.
type Limits struct {
	// MaxFrame is the largest frame in bytes, header included.
	MaxFrame int
	// MaxRecords is the most records in one Batch or TransferChunk, and the
	// most entries (IDs) in one Summary.
	MaxRecords int
	// MaxKeys is the most keys in one Record.
	MaxKeys int
	// MaxKeyLen is the longest key, Record ID, Principal or Fetch ID, in
	// bytes.
	MaxKeyLen int
	// MaxValue is the largest Value.Data in bytes.
	MaxValue int
	// MaxRecordBytes is the largest Record.Size: its principal, keys and
	// values summed.
	MaxRecordBytes int
	// MaxEntries is the most map entries in one frame, summed over every
	// map (record fields and session keys alike). Each decoded session key
	// costs ~100 bytes of Go map, so this bounds the memory a small frame
	// of tiny keys can inflate into.
	MaxEntries int
}

// DefaultLimits are the limits Decode applies. They are far above what the
// engine sends (it splits batches well below MaxFrame) and far below what
// would hurt a node: a frame that passes them decodes into at most roughly
// MaxFrame plus MaxEntries*100 bytes (~116 MiB worst case, tens of KiB
// for a typical batch).
//
//   - MaxFrame 16 MiB: a state-transfer chunk of many sessions
//   - MaxRecords 10000 per Batch or TransferChunk, entries per Summary
//   - MaxKeys 1024 per session
//   - MaxKeyLen 1 KiB for keys, IDs and principals
//   - MaxValue and MaxRecordBytes 1 MiB: a session is meant to be small
//   - MaxEntries 1<<20 map entries per frame
var DefaultLimits = Limits{
	MaxFrame:       16 << 20,
	MaxRecords:     10000,
	MaxKeys:        1024,
	MaxKeyLen:      1024,
	MaxValue:       1 << 20,
	MaxRecordBytes: 1 << 20,
	MaxEntries:     1 << 20,
}

// withDefaults returns l with every zero (or negative) field set from
// DefaultLimits.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	d := DefaultLimits
	def(&l.MaxFrame, d.MaxFrame)
	def(&l.MaxRecords, d.MaxRecords)
	def(&l.MaxKeys, d.MaxKeys)
	def(&l.MaxKeyLen, d.MaxKeyLen)
	def(&l.MaxValue, d.MaxValue)
	def(&l.MaxRecordBytes, d.MaxRecordBytes)
	def(&l.MaxEntries, d.MaxEntries)
	return l
}

// frameError is a codec error: its message says what is wrong, and it
// wraps ErrMalformed, its kind (ErrTooLarge, ErrVersion) and any cause.
type frameError struct {
	kind  error // ErrMalformed, ErrTooLarge or ErrVersion
	msg   string
	cause error // from msgpack, or nil
}

func (e *frameError) Error() string {
	s := e.kind.Error() + ": " + e.msg
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *frameError) Unwrap() []error {
	errs := []error{e.kind}
	if e.kind != ErrMalformed {
		errs = append(errs, ErrMalformed)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

func malformed(format string, args ...any) error {
	return &frameError{kind: ErrMalformed, msg: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) error {
	return &frameError{kind: ErrTooLarge, msg: fmt.Sprintf(format, args...)}
}

// bufPool holds encoding buffers; Encode copies the frame out, so a buffer
// is reused as soon as Encode returns.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// MaxPooledBuf is the largest encoding buffer worth keeping (bufPool keeps
// none larger): room for a
// full batch or state-transfer chunk (MaxBatchBytes is 1 MiB by default,
// and a buffer grows by doubling), so that a run of them reuses buffers;
// a larger one, from a huge chunk, is not pinned.
const MaxPooledBuf = 4 << 20

// Encode returns a frame: FormatVersion, t, then the msgpack body of msg.
// msg is the message struct for t, or a pointer to it (Batch or *Batch for
// MsgBatch, and so on).
//
// Encode applies the checks Decode applies with DefaultLimits, so it never
// returns a frame a peer with default limits would refuse; an error for a
// limit wraps ErrTooLarge (split the batch), any other wraps ErrMalformed.
func Encode(t MsgType, msg any) ([]byte, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	frame, err := EncodeTo(buf, t, msg)
	if err == nil {
		frame = bytes.Clone(frame)
	}
	if buf.Cap() <= MaxPooledBuf {
		bufPool.Put(buf)
	}
	return frame, err
}

// EncodeTo is Encode writing the frame into buf (reset first): the frame
// returned is buf's bytes, valid until buf is used again. A sender that
// keeps a frame until it is acknowledged reuses buffers this way.
func EncodeTo(buf *bytes.Buffer, t MsgType, msg any) ([]byte, error) {
	mt, ok := msgType(msg)
	if !ok {
		return nil, fmt.Errorf("replicate: encode %s: unsupported message %T", t, msg)
	}
	if mt != t {
		return nil, fmt.Errorf("replicate: encode %s: message is a %T (%s)", t, msg, mt)
	}
	lim := DefaultLimits
	if err := validate(msg, &lim); err != nil {
		return nil, fmt.Errorf("replicate: encode %s: %w", t, err)
	}

	buf.Reset()
	if frame, ok := appendBody(append(buf.AvailableBuffer(), FormatVersion, byte(t)), msg); ok {
		// Hand buf the frame's array, grown by append if it had to be, so
		// that buf.Bytes() is the frame and the next frame reuses it.
		*buf = *bytes.NewBuffer(frame)
		if err := checkFrameSize(frame, &lim); err != nil {
			return nil, fmt.Errorf("replicate: encode %s: %w", t, err)
		}
		// validate bounds all that checkStructure would check of an
		// appended frame but the sum of map entries (encode_entries.go).
		if n := appendedEntries(msg); n > lim.MaxEntries {
			return nil, fmt.Errorf("replicate: encode %s: %w", t,
				tooLarge("more than %d map entries (MaxEntries)", lim.MaxEntries))
		}
		return frame, nil
	}

	buf.WriteByte(FormatVersion)
	buf.WriteByte(byte(t))
	enc := msgpack.GetEncoder()
	enc.Reset(buf)
	err := enc.Encode(msg)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, fmt.Errorf("replicate: encode %s: %w", t, err)
	}
	frame := buf.Bytes()
	if err := checkFrameSize(frame, &lim); err != nil {
		return nil, fmt.Errorf("replicate: encode %s: %w", t, err)
	}
	// validate bounds everything but the sum of map entries (MaxEntries).
	if err := checkStructure(frame[2:], &lim); err != nil {
		return nil, fmt.Errorf("replicate: encode %s: %w", t, err)
	}
	return frame, nil
}

// checkFrameSize refuses a frame over lim.MaxFrame, as DecodeLimits does.
func checkFrameSize(frame []byte, lim *Limits) error {
	if len(frame) > lim.MaxFrame {
		return tooLarge("frame of %d bytes, limit %d (MaxFrame)", len(frame), lim.MaxFrame)
	}
	return nil
}

// Decode is DecodeLimits with DefaultLimits.
func Decode(frame []byte) (MsgType, any, error) {
	return DecodeLimits(frame, DefaultLimits)
}

// DecodeLimits validates and decodes a frame, returning its type and a
// pointer to the message struct (*Batch, *Ack, ...). Zero fields of lim
// mean the DefaultLimits value.
//
// The frame is checked in three passes, each cheap next to the one after:
// the header and size; then the msgpack structure (every declared length
// fits in the bytes left, nesting at most 16 deep, no extension types,
// exactly one object); only then is it decoded, and the message checked
// against lim and the invariants of its type. So a hostile frame costs at
// most a pass over its bytes, never an allocation it declares but lacks.
//
// Every error wraps ErrMalformed; one for a limit also wraps ErrTooLarge,
// and one for another format version also wraps ErrVersion. The result
// does not alias frame.
func DecodeLimits(frame []byte, lim Limits) (MsgType, any, error) {
	return decodeFrame(frame, lim, nil, nil)
}

// decodeFrame is DecodeLimits decoding a Batch into b, not a new one, when
// b is not nil. b.Records must be cleared (zero Records) up to its
// capacity: the decoder reuses that array. When keys is not nil, the
// records' Keys are carved out of the array *keys holds (see
// reader.keyArena), which must be cleared likewise.
func decodeFrame(frame []byte, lim Limits, b *Batch, keys *[]model.KeyValue) (MsgType, any, error) {
	lim = lim.withDefaults()
	if len(frame) > lim.MaxFrame {
		return 0, nil, tooLarge("frame of %d bytes, limit %d (MaxFrame)", len(frame), lim.MaxFrame)
	}
	if len(frame) < 2 {
		return 0, nil, malformed("%d bytes, shorter than the header", len(frame))
	}
	if frame[0] != FormatVersion {
		return 0, nil, &frameError{kind: ErrVersion,
			msg: fmt.Sprintf("format version %d, this node speaks %d", frame[0], FormatVersion)}
	}
	t := MsgType(frame[1])
	var msg any
	if t == MsgBatch && b != nil {
		msg = b
	} else {
		msg = newMsg(t)
	}
	if msg == nil {
		return 0, nil, malformed("unknown message type %d", frame[1])
	}
	body := frame[2:]
	if err := checkStructure(body, &lim); err != nil {
		return 0, nil, err
	}
	if err := decodeBodyKeys(body, msg, keys); err != nil {
		return 0, nil, &frameError{kind: ErrMalformed, msg: t.String(), cause: err}
	}
	if err := validate(msg, &lim); err != nil {
		return 0, nil, err
	}
	return t, msg, nil
}

// decodeBody decodes body into msg, a pointer from newMsg: the messages
// that carry records, and Ack, with reader (record_codec.go), the others
// with msgpack.
func decodeBody(body []byte, msg any) error {
	return decodeBodyKeys(body, msg, nil)
}

// decodeBodyKeys is decodeBody with the records' Keys appended to *keys
// (see reader.keyArena) when keys is not nil.
func decodeBodyKeys(body []byte, msg any, keys *[]model.KeyValue) error {
	rd := reader{b: body, keyArena: keys}
	switch m := msg.(type) {
	case *Batch:
		return rd.batch(m)
	case *TransferChunk:
		return rd.transferChunk(m)
	case *Ack:
		return rd.ack(m)
	case *FetchReply:
		return rd.fetchReply(m)
	}
	return msgpack.Unmarshal(body, msg)
}

// newMsg returns a pointer to a new message struct for t, or nil for an
// unknown type.
func newMsg(t MsgType) any {
	switch t {
	case MsgBatch:
		return new(Batch)
	case MsgAck:
		return new(Ack)
	case MsgTransferRequest:
		return new(TransferRequest)
	case MsgTransferChunk:
		return new(TransferChunk)
	case MsgDigest:
		return new(Digest)
	case MsgFetch:
		return new(Fetch)
	case MsgFetchReply:
		return new(FetchReply)
	case MsgSummary:
		return new(Summary)
	case MsgEndPrincipal:
		return new(EndPrincipal)
	case MsgPrincipalEnded:
		return new(PrincipalEnded)
	}
	return nil
}

// msgType returns the message type of msg, a message struct or a non-nil
// pointer to one.
func msgType(msg any) (MsgType, bool) {
	switch m := msg.(type) {
	case Batch:
		return MsgBatch, true
	case *Batch:
		return MsgBatch, m != nil
	case Ack:
		return MsgAck, true
	case *Ack:
		return MsgAck, m != nil
	case TransferRequest:
		return MsgTransferRequest, true
	case *TransferRequest:
		return MsgTransferRequest, m != nil
	case TransferChunk:
		return MsgTransferChunk, true
	case *TransferChunk:
		return MsgTransferChunk, m != nil
	case Digest:
		return MsgDigest, true
	case *Digest:
		return MsgDigest, m != nil
	case Fetch:
		return MsgFetch, true
	case *Fetch:
		return MsgFetch, m != nil
	case FetchReply:
		return MsgFetchReply, true
	case *FetchReply:
		return MsgFetchReply, m != nil
	case Summary:
		return MsgSummary, true
	case *Summary:
		return MsgSummary, m != nil
	case EndPrincipal:
		return MsgEndPrincipal, true
	case *EndPrincipal:
		return MsgEndPrincipal, m != nil
	case PrincipalEnded:
		return MsgPrincipalEnded, true
	case *PrincipalEnded:
		return MsgPrincipalEnded, m != nil
	}
	return 0, false
}
