package peersession

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// A token is what the client holds: 256 bits from crypto/rand, base64url
// without padding (43 characters). The store never keeps tokens: it keys
// sessions by idOf(token), a SHA-256 hash, so nothing in memory, in status
// output, in logs or on the replication wire can be turned back into a
// working cookie (scs's HashTokenInStore, always on).
const (
	tokenBytes = 32
	tokenLen   = 43 // base64.RawURLEncoding.EncodedLen(tokenBytes)
)

// newToken returns a fresh random token.
func newToken() string {
	var b [tokenBytes]byte
	_, _ = rand.Read(b[:]) // never fails; panics on an unusable source
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// b64url maps a byte to its value in the base64url alphabet, or 0xff.
var b64url = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// validToken reports whether t has the exact shape of a token this package
// issues: 43 characters of the URL-safe alphabet whose last one encodes no
// stray bits (so one token has one spelling). Anything else is treated as
// no token at all, never adopted.
func validToken(t string) bool {
	if len(t) != tokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		if b64url[t[i]] == 0xff {
			return false
		}
	}
	// 43 characters carry 258 bits: the last character's low two bits
	// must be zero for the spelling to be canonical.
	return b64url[t[tokenLen-1]]&3 == 0
}

// idLen is the length of a session ID, idOf's result.
const idLen = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)

// idOf returns the store key of a token: base64url(SHA-256(token)).
func idOf(token string) string {
	id := idBytes(token)
	return string(id[:])
}

// idBytes is idOf into an array, so that a lookup by token (shards.getBytes)
// allocates nothing: no copy of the token to hash, no encoded string.
func idBytes(token string) (id [idLen]byte) {
	var buf [tokenLen]byte // a token fits; anything longer is copied to the heap
	sum := sha256.Sum256(append(buf[:0], token...))
	base64.RawURLEncoding.Encode(id[:], sum[:])
	return id
}
