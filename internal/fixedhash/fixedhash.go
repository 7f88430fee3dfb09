// Package fixedhash holds the hashes peersession computes the same way on
// every node and in every release: FNV-1a (64-bit) over strings and
// integers, and MurmurHash3's 64-bit finalizer to spread FNV's weak high
// bits. replicate's digests (anti-entropy, delta transfers) and
// replicate/placement's session holders are built from them, so changing
// one is a wire change: the values are pinned by tests.
package fixedhash

// Offset is FNV-1a's 64-bit offset basis: the hash of nothing.
const Offset uint64 = 14695981039346656037

const prime = 1099511628211

// String returns h with the bytes of s hashed in, FNV-1a.
func String(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// Uint64 returns h with the 8 bytes of v hashed in, least significant
// first, FNV-1a.
func Uint64(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= prime
		v >>= 8
	}
	return h
}

// Mix is MurmurHash3's 64-bit finalizer (fmix64): a bijection that
// spreads every bit of h over the result.
func Mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
