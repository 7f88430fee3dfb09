package model

import (
	"slices"
	"time"
)

// Value is one session key's replicated value.
type Value struct {
	// Data is the msgpack encoding of the application's value; nil when
	// Deleted.
	Data []byte `msgpack:"d,omitempty"`
	// Ver is the version of the write that produced this value.
	Ver Version `msgpack:"v"`
	// Deleted marks a key removal (a key-level tombstone).
	Deleted bool `msgpack:"x,omitempty"`
}

// Record is the replicated state of one session, or a change to it (a
// delta: a Record that holds only the fields and keys that changed).
//
// ID is not the client's token but a hash of it, so nothing held in memory,
// shown in status output or sent between nodes can be turned back into a
// working cookie. Times are Unix nanoseconds.
type Record struct {
	// ID identifies the session: the hash of its client token.
	ID string `msgpack:"i"`
	// Created is when the session was created; merge keeps the earliest.
	Created int64 `msgpack:"c,omitempty"`
	// Deadline is the absolute expiry; merge keeps the earliest set one.
	Deadline int64 `msgpack:"e,omitempty"`
	// IdleTimeout is the idle timeout in nanoseconds; merge keeps the
	// largest.
	IdleTimeout int64 `msgpack:"t,omitempty"`
	// Access is the last recorded access; merge keeps the latest.
	Access int64 `msgpack:"a,omitempty"`
	// Principal tags the session with a user; last writer wins by
	// PrincipalVer.
	Principal    string  `msgpack:"p,omitempty"`
	PrincipalVer Version `msgpack:"pv"`
	// Keys holds the session's values, including key removals, sorted by
	// key without repeats (see SortKeys); on the wire, a map.
	Keys []KeyValue `msgpack:"k,omitempty"`
	// Dead is the version of the destroy (or renew) that ended this
	// session; zero while it lives. A dead record is a session-level
	// tombstone: it keeps no keys and no principal, and wins every merge.
	Dead Version `msgpack:"x"`
}

// IsDead reports whether r is a session-level tombstone.
func (r *Record) IsDead() bool { return !r.Dead.IsZero() }

// Expired reports whether r's idle or absolute deadline has passed at now.
// A record that never had its deadlines set does not expire.
func (r *Record) Expired(now time.Time) bool {
	n := now.UnixNano()
	if r.Deadline != 0 && n >= r.Deadline {
		return true
	}
	return r.IdleTimeout != 0 && r.Access != 0 && n >= r.Access+r.IdleTimeout
}

// IdleDeadline returns when r expires for lack of use (Access +
// IdleTimeout), or 0 when it has no idle timeout.
func (r *Record) IdleDeadline() int64 {
	if r.IdleTimeout == 0 || r.Access == 0 {
		return 0
	}
	return r.Access + r.IdleTimeout
}

// MaxVersion returns the newest version of any write in r: a key, the
// principal or the tombstone. Access-time updates carry no version.
func (r *Record) MaxVersion() Version {
	v := MaxVersion(r.PrincipalVer, r.Dead)
	for _, kv := range r.Keys {
		v = MaxVersion(v, kv.Value.Ver)
	}
	return v
}

// Size returns the bytes r's keys and live values take, the figure the
// per-session size limit applies to.
func (r *Record) Size() int {
	n := len(r.Principal)
	for _, kv := range r.Keys {
		n += len(kv.Key) + len(kv.Value.Data)
	}
	return n
}

// EstSize returns a quick estimate of r's encoded size in bytes, never
// less than Size, for the hot paths that only compare against a limit.
func (r *Record) EstSize() int {
	n := 64 + len(r.ID) + len(r.Principal)
	for _, kv := range r.Keys {
		n += 32 + len(kv.Key) + len(kv.Value.Data)
	}
	return n
}

// Clone returns a copy of r with its own Keys; Data slices are shared, as
// they are never modified after encoding.
func (r Record) Clone() Record {
	r.Keys = slices.Clone(r.Keys)
	return r
}
