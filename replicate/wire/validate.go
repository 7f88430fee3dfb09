package wire

import (
	"strconv"

	"github.com/peersession/peersession/internal/msgp"
	"github.com/peersession/peersession/replicate/model"
)

// This file holds the two checks around msgpack decoding: checkStructure,
// a walk over the raw body that runs before decoding, and validate, the
// semantic checks on the decoded message.

// checkStructure walks one msgpack object spanning all of body and checks
// what msgpack.Unmarshal trusts: every declared length fits in the bytes
// that are left (a container of n entries needs at least n bytes, a map
// 2n), containers nest at most maxDepth deep, no extension types, and
// nothing follows the object. It also bounds container and string lengths
// and the sum of map entries by lim, so decoding allocates nothing a peer
// declared but did not send, and not much more than it did send.
//
// It does not allocate (unless it returns an error) and its work is linear
// in len(body).
func checkStructure(body []byte, lim *Limits) error {
	w := walker{
		b:          body,
		maxElems:   max(lim.MaxRecords, lim.MaxKeys, DigestBuckets, 64),
		maxBytes:   max(lim.MaxKeyLen, lim.MaxValue),
		maxEntries: lim.MaxEntries,
	}
	if err := w.object(0); err != nil {
		return err
	}
	if w.pos != len(body) {
		return malformed("%d trailing bytes after the message", len(body)-w.pos)
	}
	return nil
}

// CheckValue checks an application value (a Value's Data, when it holds
// msgpack) the way frames are checked before decoding, extension types
// allowed: exactly one well-formed object, every declared length backed by
// bytes, bounded nesting. The store runs it on values from peers, which are
// decoded later by an application's Get, where a declared length that was
// not sent would make msgpack allocate it. Data is opaque to the protocol
// itself, so the codec does not.
func CheckValue(data []byte, lim Limits) error {
	lim = lim.withDefaults()
	w := walker{
		b:          data,
		maxElems:   max(lim.MaxValue, 64),
		maxBytes:   lim.MaxValue,
		maxEntries: lim.MaxEntries,
		allowExt:   true,
	}
	if err := w.object(0); err != nil {
		return err
	}
	if w.pos != len(data) {
		return malformed("value: %d trailing bytes", len(data)-w.pos)
	}
	return nil
}

// walker is checkStructure's cursor.
type walker struct {
	b          []byte
	pos        int
	maxElems   int  // longest array or map
	maxBytes   int  // longest str or bin
	maxEntries int  // most map entries, summed
	entries    int  // map entries seen so far
	allowExt   bool // extension types pass (application values: time.Time)
}

// object checks the object at w.pos, nested in depth containers, and moves
// past it.
func (w *walker) object(depth int) error {
	if w.pos >= len(w.b) {
		return malformed("truncated at byte %d of the body", w.pos)
	}
	c := w.b[w.pos]
	switch {
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		w.pos++
		return nil
	case c <= 0x8f: // fixmap
		w.pos++
		return w.container(uint64(c&0x0f), true, depth)
	case c <= 0x9f: // fixarray
		w.pos++
		return w.container(uint64(c&0x0f), false, depth)
	case c <= 0xbf: // fixstr
		w.pos++
		return w.bytes(uint64(c & 0x1f))
	case c <= 0xd3:
		if n := msgp.FixedLen(c); n > 0 {
			if len(w.b)-w.pos < n {
				return malformed("truncated at byte %d of the body", w.pos)
			}
			w.pos += n
			return nil
		}
	}
	var size int // bytes of length after the code
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		size = 1
	case 0xc5, 0xda, 0xdc, 0xde: // bin16, str16, array16, map16
		size = 2
	case 0xc6, 0xdb, 0xdd, 0xdf: // bin32, str32, array32, map32
		size = 4
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		if !w.allowExt {
			return malformed("extension type (code 0x%02x) at byte %d", c, w.pos)
		}
		n := 2 + (1 << (c - 0xd4)) // code, type, data
		if len(w.b)-w.pos < n {
			return malformed("truncated at byte %d of the body", w.pos)
		}
		w.pos += n
		return nil
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32: length, type, data
		if !w.allowExt {
			return malformed("extension type (code 0x%02x) at byte %d", c, w.pos)
		}
		size = 1 << (c - 0xc7)
		if len(w.b)-w.pos < 2+size {
			return malformed("truncated at byte %d of the body", w.pos)
		}
		n := msgp.UintN(w.b[w.pos+1:], size)
		w.pos += 2 + size // code, length, type
		return w.bytes(n)
	default: // 0xc1, never used
		return malformed("invalid type code 0x%02x at byte %d", c, w.pos)
	}
	if len(w.b)-w.pos < 1+size {
		return malformed("truncated at byte %d of the body", w.pos)
	}
	n := msgp.UintN(w.b[w.pos+1:], size)
	w.pos += 1 + size
	switch c {
	case 0xdc, 0xdd:
		return w.container(n, false, depth)
	case 0xde, 0xdf:
		return w.container(n, true, depth)
	}
	return w.bytes(n)
}

// bytes moves past a str or bin payload of n bytes.
func (w *walker) bytes(n uint64) error {
	if left := uint64(len(w.b) - w.pos); n > left {
		return malformed("string of %d bytes at byte %d, only %d left", n, w.pos, left)
	}
	if n > uint64(w.maxBytes) {
		return tooLarge("string of %d bytes at byte %d, limit %d (MaxKeyLen, MaxValue)", n, w.pos, w.maxBytes)
	}
	w.pos += int(n)
	return nil
}

// container checks and moves past the n entries of an array, or n
// key-value pairs of a map, nested in depth containers.
func (w *walker) container(n uint64, isMap bool, depth int) error {
	objs := n
	if isMap {
		objs = 2 * n
	}
	if left := uint64(len(w.b) - w.pos); objs > left {
		return malformed("container of %d entries at byte %d, only %d bytes left", n, w.pos, left)
	}
	if n > uint64(w.maxElems) {
		return tooLarge("container of %d entries at byte %d, limit %d (MaxRecords, MaxKeys)", n, w.pos, w.maxElems)
	}
	if isMap {
		w.entries += int(n)
		if w.entries > w.maxEntries {
			return tooLarge("more than %d map entries (MaxEntries)", w.maxEntries)
		}
	}
	if objs > 0 && depth+1 > maxDepth {
		return malformed("containers nested more than %d deep", maxDepth)
	}
	for i := uint64(0); i < objs; i++ {
		if err := w.object(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// validate checks a message, a message struct or a pointer to one, against
// lim and the invariants of its type.
func validate(msg any, lim *Limits) error {
	switch m := msg.(type) {
	case *Batch:
		return validateRecords(m.Records, lim)
	case Batch:
		return validateRecords(m.Records, lim)
	case *TransferChunk:
		return validateRecords(m.Records, lim)
	case TransferChunk:
		return validateRecords(m.Records, lim)
	case *TransferRequest:
		return validateTransferRequest(m)
	case TransferRequest:
		return validateTransferRequest(&m)
	case *Digest:
		return validateDigest(m)
	case Digest:
		return validateDigest(&m)
	case *Summary:
		return validateSummary(m, lim)
	case Summary:
		return validateSummary(&m, lim)
	case *Fetch:
		return validateID("fetch", m.ID, lim)
	case Fetch:
		return validateID("fetch", m.ID, lim)
	case *FetchReply:
		return validateReply(m, lim)
	case FetchReply:
		return validateReply(&m, lim)
	case *EndPrincipal:
		return validateEndPrincipal(m, lim)
	case EndPrincipal:
		return validateEndPrincipal(&m, lim)
	case *PrincipalEnded:
		return validatePrincipalEnded(m, lim)
	case PrincipalEnded:
		return validatePrincipalEnded(&m, lim)
	}
	return nil // Ack: nothing to check
}

func validateRecords(recs []model.Record, lim *Limits) error {
	if len(recs) > lim.MaxRecords {
		return tooLarge("%d records, limit %d (MaxRecords)", len(recs), lim.MaxRecords)
	}
	for i := range recs {
		if err := validateRecord(&recs[i], lim, true); err != nil {
			return withRecord(err, i)
		}
	}
	return nil
}

// withRecord prefixes a record error with the record's index.
func withRecord(err error, i int) error {
	if e, ok := err.(*frameError); ok {
		return &frameError{kind: e.kind, msg: "record " + strconv.Itoa(i) + ": " + e.msg, cause: e.cause}
	}
	return err
}

// validateRecord checks one record. needID is false for the record of a
// FetchReply that found nothing.
func validateRecord(r *model.Record, lim *Limits, needID bool) error {
	if needID && r.ID == "" {
		return malformed("empty session ID")
	}
	if len(r.ID) > lim.MaxKeyLen {
		return tooLarge("session ID of %d bytes, limit %d (MaxKeyLen)", len(r.ID), lim.MaxKeyLen)
	}
	if r.Created < 0 || r.Deadline < 0 || r.IdleTimeout < 0 || r.Access < 0 {
		return malformed("negative time (created %d, deadline %d, idle timeout %d, access %d)",
			r.Created, r.Deadline, r.IdleTimeout, r.Access)
	}
	if len(r.Principal) > lim.MaxKeyLen {
		return tooLarge("principal of %d bytes, limit %d (MaxKeyLen)", len(r.Principal), lim.MaxKeyLen)
	}
	if r.PrincipalVer.Wall < 0 {
		return malformed("negative principal version wall time %d", r.PrincipalVer.Wall)
	}
	if r.Dead.Wall < 0 {
		return malformed("negative tombstone version wall time %d", r.Dead.Wall)
	}
	// Merge never produces a tombstone with keys or a principal; one
	// would not merge idempotently (Merge(r, r) drops them).
	if r.IsDead() && (len(r.Keys) > 0 || r.Principal != "" || !r.PrincipalVer.IsZero()) {
		return malformed("tombstone with %d keys or a principal", len(r.Keys))
	}
	if len(r.Keys) > lim.MaxKeys {
		return tooLarge("%d keys, limit %d (MaxKeys)", len(r.Keys), lim.MaxKeys)
	}
	size := len(r.Principal)
	for _, kv := range r.Keys {
		k, v := kv.Key, kv.Value
		if len(k) > lim.MaxKeyLen {
			return tooLarge("key of %d bytes, limit %d (MaxKeyLen)", len(k), lim.MaxKeyLen)
		}
		if len(v.Data) > lim.MaxValue {
			return tooLarge("value of %d bytes, limit %d (MaxValue)", len(v.Data), lim.MaxValue)
		}
		if v.Ver.Wall < 0 {
			return malformed("negative key version wall time %d", v.Ver.Wall)
		}
		if v.Deleted && len(v.Data) > 0 {
			return malformed("removed key with %d bytes of data", len(v.Data))
		}
		size += len(k) + len(v.Data)
	}
	if size > lim.MaxRecordBytes {
		return tooLarge("record of %d bytes, limit %d (MaxRecordBytes)", size, lim.MaxRecordBytes)
	}
	return nil
}

// validateTransferRequest checks that a TransferRequest's digest is absent (a
// full transfer) or a whole Digest (a delta transfer).
func validateTransferRequest(r *TransferRequest) error {
	if len(r.Digest) != 0 && len(r.Digest) != DigestBuckets {
		return malformed("sync request digest of %d buckets, want 0 (whole state) or %d", len(r.Digest), DigestBuckets)
	}
	return nil
}

func validateDigest(d *Digest) error {
	if len(d.Buckets) != DigestBuckets {
		return malformed("digest of %d buckets, want %d", len(d.Buckets), DigestBuckets)
	}
	return nil
}

func validateSummary(s *Summary, lim *Limits) error {
	if len(s.IDs) != len(s.Hashes) {
		return malformed("summary of %d IDs and %d hashes", len(s.IDs), len(s.Hashes))
	}
	if len(s.IDs) > lim.MaxRecords {
		return tooLarge("summary of %d IDs, limit %d (MaxRecords)", len(s.IDs), lim.MaxRecords)
	}
	if len(s.Buckets) == 0 {
		return malformed("summary of no bucket")
	}
	if len(s.Buckets) > DigestBuckets {
		return tooLarge("summary of %d buckets, limit %d", len(s.Buckets), DigestBuckets)
	}
	var seen [DigestBuckets]bool
	for _, b := range s.Buckets {
		if b >= DigestBuckets {
			return malformed("summary bucket %d, want below %d", b, DigestBuckets)
		}
		if seen[b] {
			return malformed("summary bucket %d listed twice", b)
		}
		seen[b] = true
	}
	if s.Lo != "" || s.Hi != "" {
		switch {
		case len(s.Buckets) != 1:
			return malformed("summary ID range over %d buckets, want one", len(s.Buckets))
		case len(s.Lo) > lim.MaxKeyLen || len(s.Hi) > lim.MaxKeyLen:
			return tooLarge("summary ID range bound over %d bytes (MaxKeyLen)", lim.MaxKeyLen)
		case s.Hi != "" && s.Lo >= s.Hi:
			return malformed("summary ID range empty: %q is not below %q", s.Lo, s.Hi)
		}
	}
	for _, id := range s.IDs {
		if err := validateID("summary", id, lim); err != nil {
			return err
		}
	}
	return nil
}

func validateID(what, id string, lim *Limits) error {
	if id == "" {
		return malformed("%s: empty session ID", what)
	}
	if len(id) > lim.MaxKeyLen {
		return tooLarge("%s: session ID of %d bytes, limit %d (MaxKeyLen)", what, len(id), lim.MaxKeyLen)
	}
	return nil
}

func validateReply(r *FetchReply, lim *Limits) error {
	return validateRecord(&r.Record, lim, r.Found)
}

func validateEndPrincipal(m *EndPrincipal, lim *Limits) error {
	if m.Principal == "" {
		return malformed("end-principal: empty principal")
	}
	if len(m.Principal) > lim.MaxKeyLen {
		return tooLarge("end-principal: principal of %d bytes, limit %d (MaxKeyLen)", len(m.Principal), lim.MaxKeyLen)
	}
	return nil
}

func validatePrincipalEnded(m *PrincipalEnded, lim *Limits) error {
	if len(m.IDs) > lim.MaxRecords {
		return tooLarge("principal-ended: %d IDs, limit %d (MaxRecords)", len(m.IDs), lim.MaxRecords)
	}
	for _, id := range m.IDs {
		if err := validateID("principal-ended", id, lim); err != nil {
			return err
		}
	}
	if len(m.Err) > lim.MaxKeyLen {
		return tooLarge("principal-ended: error of %d bytes, limit %d (MaxKeyLen)", len(m.Err), lim.MaxKeyLen)
	}
	return nil
}
