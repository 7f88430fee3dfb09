package replicate

import (
	"github.com/peersession/peersession/internal/fixedhash"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// The digest hashes that anti-entropy (antientropy.go) and delta state
// transfers (transfer_serve.go) compare. They are fixed (FNV-1a with a
// finalizer), so digests compare across processes and releases: changing
// one is a wire change.

// fnvOffset, fnvString, fnvUint64 and fmix64 are internal/fixedhash's,
// under the names this file's hashes use.
const fnvOffset = fixedhash.Offset

var (
	fnvString = fixedhash.String
	fnvUint64 = fixedhash.Uint64
	fmix64    = fixedhash.Mix
)

func fnvVersion(h uint64, v model.Version) uint64 {
	return fnvUint64(fnvUint64(fnvUint64(h, uint64(v.Wall)), uint64(v.Seq)), v.Node)
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
