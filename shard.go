package peersession

import (
	"hash/maphash"
	"sync"

	"github.com/peersession/peersession/replicate/model"
)

// shardCount spreads sessions over this many independently locked maps, so
// writers of different sessions rarely contend and readers never wait for
// the writer of another session.
const shardCount = 64

// entry is an immutable snapshot of one session (copy-on-write): a writer
// builds a new entry and swaps the map's pointer, so a reader holding an
// entry needs no lock.
type entry struct {
	rec   model.Record
	size  int   // rec.Size(), cached
	stamp int64 // rec.MaxVersion().Wall, cached: the session's version stamp
	// fetched marks a copy fetched from the holders for a read and not
	// stored (partitioned mode: Store.transientEntry).
	fetched bool
}

// newEntry returns an empty entry and an empty slice with room for n keys
// that, for up to 8 keys, share one allocation: a write replaces a
// session's entry and keys together, so a session costs the collector one
// object instead of two. The slice's capacity is exactly n.
func newEntry(n int) (*entry, []model.KeyValue) {
	switch {
	case n <= 0:
		return new(entry), nil
	case n == 1:
		x := new(struct {
			e entry
			k [1]model.KeyValue
		})
		return &x.e, x.k[:0:n]
	case n == 2:
		x := new(struct {
			e entry
			k [2]model.KeyValue
		})
		return &x.e, x.k[:0:n]
	case n <= 4:
		x := new(struct {
			e entry
			k [4]model.KeyValue
		})
		return &x.e, x.k[:0:n]
	case n <= 8:
		x := new(struct {
			e entry
			k [8]model.KeyValue
		})
		return &x.e, x.k[:0:n]
	}
	return new(entry), make([]model.KeyValue, 0, n)
}

// shard is one part of the session map.
type shard struct {
	mu sync.RWMutex // guards m
	m  map[string]*entry
}

type shards struct {
	seed maphash.Seed
	s    [shardCount]shard
}

func newShards() *shards {
	ss := &shards{seed: maphash.MakeSeed()}
	for i := range ss.s {
		ss.s[i].m = make(map[string]*entry)
	}
	return ss
}

// of returns the shard that holds id.
func (ss *shards) of(id string) *shard {
	return &ss.s[maphash.String(ss.seed, id)%shardCount]
}

// get returns id's entry, expired and dead ones included.
func (ss *shards) get(id string) *entry {
	sh := ss.of(id)
	sh.mu.RLock()
	e := sh.m[id]
	sh.mu.RUnlock()
	return e
}

// getBytes is get for an ID held in a byte slice (see idBytes), without
// making a string of it. maphash.Bytes and maphash.String agree on equal
// contents, so it picks the same shard as of.
func (ss *shards) getBytes(id []byte) *entry {
	sh := &ss.s[maphash.Bytes(ss.seed, id)%shardCount]
	sh.mu.RLock()
	e := sh.m[string(id)] // the compiler does not allocate this string
	sh.mu.RUnlock()
	return e
}

// each calls fn with every entry, one shard at a time. It copies a
// shard's entries under its read lock and calls fn after releasing it
// (entries are immutable), so a slow fn (an anti-entropy digest hashing
// every session) never holds back the shard's writers, and fn may call
// back into the shards. An entry replaced after its shard was copied is
// seen as it was when copied.
func (ss *shards) each(fn func(*entry) bool) {
	var buf []*entry
	for i := range ss.s {
		sh := &ss.s[i]
		sh.mu.RLock()
		for _, e := range sh.m {
			buf = append(buf, e)
		}
		sh.mu.RUnlock()
		for _, e := range buf {
			if !fn(e) {
				return
			}
		}
		buf = buf[:0]
	}
}
