package peersession

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
	"sync/atomic"
)

// A version stamp makes a node ask its peers for a session (read.go), so
// a clustered node authenticates the stamps it issues: the cookie value is
// token.stamp.mac, the MAC an HMAC-SHA256 of the token and the stamp,
// truncated to stampMACBytes, under a key derived from the cluster key. A
// stamp without a valid MAC (forged, or from a cookie issued before
// stamps had one) is ignored: the request reads this node's copy, as if
// it had presented no stamp, and is counted in Stats.StampsRejected.
//
// The MAC key is HMAC-SHA256 of a fixed label under each cluster key, so
// that the cluster key itself is never used for anything else. Stamps are
// MAC'd with the primary key and accepted under any key of the ring: key
// rotation (Store.AddKey, UseKey, RemoveKey) turns this ring as it turns
// the cluster's. A cluster without Keys (loopback, or Insecure) derives
// its one MAC key from its Label, as cluster/ derives its stream PSK: it
// is not secret and only keeps the code path the same. A single node
// issues no MAC: it never fetches, so its stamps cost nothing.

// stampMACBytes is the length of a stamp's MAC: 96 bits, 16 characters of
// base64url.
const (
	stampMACBytes = 12
	stampMACLen   = 16 // base64.RawURLEncoding.EncodedLen(stampMACBytes)
)

// stampKeys are the keys that authenticate version stamps, the primary one
// first; make them with newStampKeys. Every method may be called
// concurrently; MACs are computed without a lock.
type stampKeys struct {
	mu   sync.Mutex                  // serializes changes to ring
	ring atomic.Pointer[[]*stampKey] // replaced whole on every change, read without a lock
}

// stampKey is one MAC key, with the HMAC states that compute under it.
type stampKey struct {
	from []byte    // the cluster key it was derived from; nil for the keyless one
	pool sync.Pool // of *stampHMAC under this key
}

// stampHMAC is an HMAC under one key and the scratch space for one MAC,
// pooled so that computing a MAC allocates nothing.
type stampHMAC struct {
	h   hash.Hash
	buf [tokenLen + 8]byte
	sum [sha256.Size]byte
}

// stampMACLabel is what a cluster key MACs to make a stamp MAC key.
const stampMACLabel = "peersession/1 stamp mac\x00"

// newStampKeys returns the stamp keys of a cluster with the keyring keys
// (primary first) and label.
func newStampKeys(keys [][]byte, label string) *stampKeys {
	var ring []*stampKey
	for _, k := range keys {
		ring = append(ring, newStampKey(k, ""))
	}
	if len(ring) == 0 {
		ring = append(ring, newStampKey(nil, label))
	}
	sk := &stampKeys{}
	sk.ring.Store(&ring)
	return sk
}

// newStampKey derives the MAC key of cluster key from, or, with from nil,
// the keyless cluster's from its label.
func newStampKey(from []byte, label string) *stampKey {
	var macKey []byte
	if from != nil {
		m := hmac.New(sha256.New, from)
		m.Write([]byte(stampMACLabel))
		macKey = m.Sum(nil)
		from = bytes.Clone(from)
	} else {
		sum := sha256.Sum256([]byte("peersession/1 insecure stamp mac\x00" + label))
		macKey = sum[:]
	}
	k := &stampKey{from: from}
	k.pool.New = func() any { return &stampHMAC{h: hmac.New(sha256.New, macKey)} }
	return k
}

// mac writes the MAC of token's stamp under k into out.
func (k *stampKey) mac(out *[stampMACBytes]byte, token string, stamp int64) {
	s := k.pool.Get().(*stampHMAC)
	in := append(s.buf[:0], token...)
	in = binary.BigEndian.AppendUint64(in, uint64(stamp))
	s.h.Reset()
	s.h.Write(in)
	copy(out[:], s.h.Sum(s.sum[:0]))
	k.pool.Put(s)
}

// sign returns the MAC of token's stamp under the primary key, as it
// goes in the cookie.
func (sk *stampKeys) sign(token string, stamp int64) [stampMACLen]byte {
	var m [stampMACBytes]byte
	(*sk.ring.Load())[0].mac(&m, token, stamp)
	var text [stampMACLen]byte
	base64.RawURLEncoding.Encode(text[:], m[:])
	return text
}

// verify reports whether text is the MAC of token's stamp under any key
// of the ring.
func (sk *stampKeys) verify(token string, stamp int64, text string) bool {
	var got, want [stampMACBytes]byte
	if len(text) != stampMACLen {
		return false
	}
	// 16 characters carry exactly 12 bytes: one spelling per MAC.
	if n, err := base64.RawURLEncoding.Decode(got[:], []byte(text)); err != nil || n != stampMACBytes {
		return false
	}
	for _, k := range *sk.ring.Load() {
		k.mac(&want, token, stamp)
		if hmac.Equal(got[:], want[:]) {
			return true
		}
	}
	return false
}

// The keyring changes, after the cluster's own keyring took them: add
// accepts MACs under k, use also makes them with it, remove no longer
// accepts them.

func (sk *stampKeys) add(k []byte) {
	sk.change(func(ring []*stampKey) []*stampKey {
		if indexKey(ring, k) >= 0 {
			return ring
		}
		return append(ring, newStampKey(k, ""))
	})
}

func (sk *stampKeys) use(k []byte) {
	sk.change(func(ring []*stampKey) []*stampKey {
		i := indexKey(ring, k)
		if i < 0 {
			return append([]*stampKey{newStampKey(k, "")}, ring...)
		}
		return append(append([]*stampKey{ring[i]}, ring[:i]...), ring[i+1:]...)
	})
}

func (sk *stampKeys) remove(k []byte) {
	sk.change(func(ring []*stampKey) []*stampKey {
		if i := indexKey(ring, k); i > 0 { // never the primary
			return append(ring[:i:i], ring[i+1:]...)
		}
		return ring
	})
}

// change replaces the ring with what fn makes of a copy of it.
func (sk *stampKeys) change(fn func([]*stampKey) []*stampKey) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	old := *sk.ring.Load()
	ring := fn(append([]*stampKey(nil), old...))
	sk.ring.Store(&ring)
}

// indexKey returns the index of the key derived from cluster key k in
// ring, or -1.
func indexKey(ring []*stampKey, k []byte) int {
	for i, sk := range ring {
		if sk.from != nil && bytes.Equal(sk.from, k) {
			return i
		}
	}
	return -1
}

// cookieValue returns what the client is to present for token's session
// at version stamp: the token, the stamp and, on a clustered node, the
// stamp's MAC.
func (st *Store) cookieValue(token string, stamp int64) string {
	if stamp <= 0 || st.repl == nil {
		return formatCookie(token, stamp)
	}
	mac := st.repl.stamps.sign(token, stamp)
	// One allocation, the result's.
	var buf [tokenLen + 1 + maxStampLen + 1 + stampMACLen]byte
	b := appendCookie(buf[:0], token, stamp)
	b = append(b, '.')
	return string(append(b, mac[:]...))
}

// parseValue splits a cookie or header value, as parseCookie does, and
// keeps its stamp only if the stamp is authenticated: on a single node
// (which never fetches) any stamp; in a cluster one whose MAC is valid.
// A stamp without one is counted (Stats.StampsRejected) and dropped: the
// request reads this node's copy.
func (st *Store) parseValue(v string) (token string, stamp int64) {
	token, stamp, mac := splitCookie(v)
	return token, st.checkStamp(token, stamp, mac)
}

// checkStamp returns stamp if mac authenticates it for token (see
// parseValue), else zero.
func (st *Store) checkStamp(token string, stamp int64, mac string) int64 {
	if stamp == 0 || st.repl == nil {
		return stamp
	}
	if !st.repl.stamps.verify(token, stamp, mac) {
		st.stats.stampsRejected.Add(1)
		return 0
	}
	return stamp
}
