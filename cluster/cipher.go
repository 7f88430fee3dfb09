package cluster

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"math"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

// streamCipher is one direction of a stream's Noise transport encryption
// after the handshake: ChaChaPoly keyed with the handshake's output, the
// nonce 32 zero bits then the message counter, little-endian (the Noise
// spec's ChaChaPoly nonce, exactly what noise.CipherState uses). It
// exists because noise.CipherState allocates each message's nonce: two
// allocations per replicated Batch and two per Ack. A streamCipher is used
// by one goroutine at a time.
type streamCipher struct {
	aead  cipher.AEAD
	n     uint64   // the next message's nonce
	nonce [12]byte // n as the AEAD's nonce; a field, so it never escapes per call
}

var errNonceExhausted = errors.New("cluster: stream cipher nonce exhausted; reconnect")

// newStreamCipher continues cs, a ChaChaPoly transport state from the
// handshake, at its key and nonce.
func newStreamCipher(cs *noise.CipherState) (*streamCipher, error) {
	k := cs.UnsafeKey()
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return nil, err
	}
	return &streamCipher{aead: aead, n: cs.Nonce()}, nil
}

// next sets nonce to n, or fails once n reaches 2^64−1, which Noise
// reserves.
func (c *streamCipher) next() error {
	if c.n == math.MaxUint64 {
		return errNonceExhausted
	}
	binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	return nil
}

// Encrypt appends plaintext, encrypted and authenticated with ad, to out
// (which may be plaintext[:0], to encrypt in place).
func (c *streamCipher) Encrypt(out, ad, plaintext []byte) ([]byte, error) {
	if err := c.next(); err != nil {
		return nil, err
	}
	out = c.aead.Seal(out, c.nonce[:], plaintext, ad)
	c.n++
	return out, nil
}

// Decrypt authenticates ciphertext and ad and appends the plaintext to
// out (which may be ciphertext[:0]). A message that fails leaves the
// nonce as it was, as noise.CipherState does.
func (c *streamCipher) Decrypt(out, ad, ciphertext []byte) ([]byte, error) {
	if err := c.next(); err != nil {
		return nil, err
	}
	out, err := c.aead.Open(out, c.nonce[:], ciphertext, ad)
	if err != nil {
		return nil, err
	}
	c.n++
	return out, nil
}
