package replicate

import (
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// The digest hashes that anti-entropy (antientropy.go) and delta state
// transfers (transfer_serve.go) compare. They are fixed (FNV-1a with a
// finalizer), so digests compare across processes and releases: changing
// one is a wire change.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvUint64(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime
		v >>= 8
	}
	return h
}

func fnvVersion(h uint64, v model.Version) uint64 {
	return fnvUint64(fnvUint64(fnvUint64(h, uint64(v.Wall)), uint64(v.Seq)), v.Node)
}

// fmix64 is MurmurHash3's finalizer: it spreads FNV's weak high bits.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// bucketOf returns the digest bucket of session id.
func bucketOf(id string) int {
	return int(fmix64(fnvString(fnvOffset, id)) % wire.DigestBuckets)
}

// recordHash returns r's digest hash. Keys are combined with XOR, so
// their order does not matter; each key's hash is seeded with the ID's, so
// equal keys of two sessions in one bucket do not cancel out.
func recordHash(r *model.Record) uint64 {
	idh := fnvString(fnvOffset, r.ID)
	h := fnvVersion(fnvVersion(fnvUint64(idh, 0), r.Dead), r.PrincipalVer)
	sum := fmix64(h)
	for _, kv := range r.Keys {
		kh := fnvVersion(fnvString(fnvUint64(idh, 1), kv.Key), kv.Value.Ver)
		if kv.Value.Deleted {
			kh = fnvUint64(kh, 1)
		}
		sum ^= fmix64(kh)
	}
	return sum
}
