package wire

import "github.com/peersession/peersession/replicate/model"

// A session may hold more keys, or more bytes, than one Record on the
// wire may carry (Limits.MaxKeys, Limits.MaxRecordBytes): the store bounds
// a session by its size only, and the changes to one session coalesce in
// a peer's queue, and anti-entropy and the state transfer send whole
// sessions. Such a record is sent as several parts, each within the
// limits, which merge back into it (Merge is a join per key): a record
// that could not be encoded would be dropped, and with it every change
// coalesced into it, and anti-entropy would retry, and fail, forever.

// Fits reports whether r, whose EstSize is sz, may be sent as one
// record under lim. EstSize overestimates Record.Size, so the exact
// size is computed only for records near the limit.
func Fits(r *model.Record, sz int, lim *Limits) bool {
	return len(r.Keys) <= lim.MaxKeys && (sz <= lim.MaxRecordBytes || r.Size() <= lim.MaxRecordBytes)
}

// AppendParts appends r to dst, split into parts of at most lim.MaxKeys
// keys and lim.MaxRecordBytes bytes if it exceeds either, and returns
// dst. Each part carries the session's times (merge keeps them
// idempotently); the principal goes in the first part only, and the
// creation time in the last only, so that a node which lacks the session
// holds the parts as a partial record, invisible (see Store), until the
// last one arrives. A single key over MaxRecordBytes gets a part of its
// own, which still does not encode (the caller drops it). The parts share
// r's Keys array.
func AppendParts(dst []model.Record, r model.Record, lim *Limits) []model.Record {
	if Fits(&r, r.EstSize(), lim) {
		return append(dst, r)
	}
	keys := r.Keys
	part := r
	part.Created = 0
	part.Keys = nil
	first := true
	for len(keys) > 0 {
		p := part
		if !first {
			p.Principal, p.PrincipalVer = "", model.Version{}
		}
		first = false
		size, n := len(p.Principal), 0
		for n < len(keys) && n < lim.MaxKeys {
			kv := &keys[n]
			sz := len(kv.Key) + len(kv.Value.Data)
			if n > 0 && size+sz > lim.MaxRecordBytes {
				break
			}
			size += sz
			n++
		}
		p.Keys = keys[:n:n]
		keys = keys[n:]
		if len(keys) == 0 {
			p.Created = r.Created
		}
		dst = append(dst, p)
	}
	return dst
}
