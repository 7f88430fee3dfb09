package model

// Merge returns the join of a and b, two states of (or changes to) the same
// session. It is a pure function and a semilattice join:
//
//   - commutative: Merge(a, b) equals Merge(b, a)
//   - associative: Merge(Merge(a, b), c) equals Merge(a, Merge(b, c))
//   - idempotent: Merge(a, a) equals a
//
// so duplicated, reordered and replayed changes are harmless. The rules:
//
//   - each key: the value with the larger Version wins (last writer wins,
//     node ID breaking ties); a removal is a value like any other
//   - Principal: the larger PrincipalVer wins
//   - Created and Deadline: the earliest non-zero; IdleTimeout: the largest;
//     Access: the latest
//   - Dead: the larger tombstone; a dead result keeps no keys and no
//     principal, so a destroyed session never comes back
//
// Neither argument is modified; the result shares no Keys slice with them.
// Merging records with different IDs is a caller bug; the result keeps a's ID.
func Merge(a, b Record) Record {
	out := mergeFields(a, b)
	if !out.IsDead() {
		out.Keys = mergeKeys(a.Keys, b.Keys)
	}
	return out
}

// MergedLen returns how many keys Merge(a, b) keeps, for MergeInto: none
// when the result is a tombstone.
func MergedLen(a, b Record) int {
	if a.Dead.IsZero() && b.Dead.IsZero() {
		return mergedKeysLen(a.Keys, b.Keys)
	}
	return 0
}

// MergeInto is Merge writing the result's keys into keys' array, which
// must have room for MergedLen(a, b) of them (its length is ignored) and
// share no memory with a's or b's Keys: a store that keeps a session and
// its keys in one allocation merges this way. The result's Keys is nil
// when it has none, as Merge's.
func MergeInto(a, b Record, keys []KeyValue) Record {
	out := mergeFields(a, b)
	if out.IsDead() {
		return out
	}
	if n := mergedKeysLen(a.Keys, b.Keys); n > 0 {
		if cap(keys) < n {
			keys = make([]KeyValue, 0, n)
		}
		out.Keys = mergeKeysInto(keys[:0:n], a.Keys, b.Keys)
	}
	return out
}

// mergeFields is Merge without the keys.
func mergeFields(a, b Record) Record {
	out := Record{
		ID:          a.ID,
		Created:     minNonZero(a.Created, b.Created),
		Deadline:    minNonZero(a.Deadline, b.Deadline),
		IdleTimeout: max(a.IdleTimeout, b.IdleTimeout),
		Access:      max(a.Access, b.Access),
		Dead:        MaxVersion(a.Dead, b.Dead),
	}
	if out.ID == "" {
		out.ID = b.ID
	}
	if out.IsDead() {
		return out
	}
	out.Principal, out.PrincipalVer = a.Principal, a.PrincipalVer
	if a.PrincipalVer.Less(b.PrincipalVer) {
		out.Principal, out.PrincipalVer = b.Principal, b.PrincipalVer
	}
	return out
}

// Newer reports whether merging delta into cur would change cur: whether the
// delta carries any information cur lacks. The engine uses it to skip
// applying (and re-announcing) stale or duplicate changes.
func Newer(cur, delta Record) bool {
	if cur.Dead.Less(delta.Dead) {
		return true
	}
	// Merge keeps a tombstone's times, so they count even when cur is dead.
	if delta.Access > cur.Access || delta.IdleTimeout > cur.IdleTimeout ||
		minNonZero(cur.Created, delta.Created) != cur.Created ||
		minNonZero(cur.Deadline, delta.Deadline) != cur.Deadline {
		return true
	}
	if cur.IsDead() {
		return false
	}
	if cur.PrincipalVer.Less(delta.PrincipalVer) {
		return true
	}
	for _, kv := range delta.Keys {
		if c, ok := cur.Get(kv.Key); !ok || c.Ver.Less(kv.Value.Ver) {
			return true
		}
	}
	return false
}

func minNonZero(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
