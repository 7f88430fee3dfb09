// Package persist keeps a store's sessions on disk, so that they survive a
// restart of the node, a crash included.
//
// A directory holds a snapshot (the whole state at some point) and logs
// (the records changed since), both made of the replication protocol's own
// Batch frames (package wire), each frame sealed with AES-256-GCM as one
// chunk. The store marks each session it changes dirty (Disk.Dirty, a map
// insert); a background writer saves the dirty sessions' current records
// every FlushInterval in one write and one fsync, so a crash loses at most
// the last interval. When the logs grow past a multiple of the snapshot,
// a new snapshot is written beside (temporary file, fsync, rename) and the
// logs it covers are deleted. Loading replays the snapshot, then the logs
// in order: every record written is a whole session as it was at the
// time, and merge (package model) is idempotent and commutative, so
// replaying a session twice or out of order is harmless.
//
// The format, permanent like the wire's (see docs/persistence.md):
//
//	file   = header chunk*
//	header = "peersess" version(1) kind('S' snapshot, 'L' log) 6 zero bytes
//	         gen(uint64) salt(16 random bytes) check(16)
//	chunk  = length(uint32, of what follows) type('R' records, 'E' end)
//	         nonce(12) AES-256-GCM(key, nonce, plaintext, aad=index(uint64) type)
//
// Integers are big-endian. The chunk key and check are HKDF-SHA256 of the
// master key (the cluster key, or Config.DataKey), salted with the
// header's first 40 bytes, so every file has keys of its own and a chunk
// cannot move to another file, index or type unnoticed. check tells which
// key of a keyring opened a file. An 'R' chunk's plaintext is a wire Batch
// frame (Seq is the chunk's index); an 'E' chunk ends a snapshot and holds
// its record and chunk counts (two uint64). A snapshot of generation G
// holds everything in logs up to G; a log of generation G holds records
// saved after log G-1's.
package persist
