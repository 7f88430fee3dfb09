package peersession

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/peersession/peersession/cluster"
)

// KeySize is the length of a cluster key: 32 bytes (AES-256).
const KeySize = 32

// makeKey says how to make a cluster key, for error messages.
const makeKey = "make one with `openssl rand -base64 32`, or GenerateKey in Go"

// GenerateKey returns a new random cluster key. From a shell:
//
//	openssl rand -base64 32
func GenerateKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

// keyEncodings are the base64 forms ParseKey reads.
var keyEncodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
}

// ParseKey decodes a cluster key (for ClusterConfig.Keys) written as text,
// as from an environment variable: base64, standard or URL-safe, padded or
// not (`openssl rand -base64 32`), or 64 hex digits (`openssl rand -hex
// 32`). Surrounding white space, a trailing newline say, is allowed. Its
// errors never quote the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("peersession: the cluster key (ClusterConfig.Keys) is empty; %s", makeKey)
	}
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	decoded := -1
	for _, enc := range keyEncodings {
		k, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(k) == KeySize {
			return k, nil
		}
		decoded = len(k)
	}
	const prefix = "peersession: the cluster key (ClusterConfig.Keys)"
	switch {
	case isHex(s):
		return nil, fmt.Errorf("%s is %d hex digits, want %d; %s", prefix, len(s), 2*KeySize, makeKey)
	case decoded >= 0:
		return nil, fmt.Errorf("%s decodes from base64 to %d bytes, want %d (nor is it %d hex digits); %s", prefix, decoded, KeySize, 2*KeySize, makeKey)
	}
	return nil, fmt.Errorf("%s is neither base64 nor hex (%d characters); %s", prefix, len(s), makeKey)
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ReadKeyFile reads a cluster key file (for ClusterConfig.Keys): the key as
// text, as ParseKey reads it (`openssl rand -base64 32 > key`), or the 32
// raw bytes (`head -c 32 /dev/urandom > key`).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("peersession: read the cluster key (ClusterConfig.Keys): %w", err)
	}
	if len(b) == KeySize && !isText(b) {
		return b, nil // raw: no text form of a key is 32 characters long
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s: the key as text, or %d raw bytes)", err, path, KeySize)
	}
	return k, nil
}

// isText reports whether b is printable ASCII and white space: a key
// written out as text rather than raw bytes.
func isText(b []byte) bool {
	for _, c := range b {
		if (c < ' ' || c > '~') && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// AddKey adds a key to the cluster keyring; it is accepted from peers at
// once (and so are the version stamps in cookies MAC'd under it) but not
// used to send until UseKey. Key rotation on a live cluster:
// AddKey(new) on every node, then UseKey(new) on every node, then
// RemoveKey(old) on every node.
func (st *Store) AddKey(k []byte) error {
	return st.changeKeys(k, (*cluster.Node).AddKey, (*stampKeys).add)
}

// UseKey makes a key already in the keyring the primary one, used for
// everything this node sends.
func (st *Store) UseKey(k []byte) error {
	return st.changeKeys(k, (*cluster.Node).UseKey, (*stampKeys).use)
}

// RemoveKey removes a key that is not primary from the keyring.
func (st *Store) RemoveKey(k []byte) error {
	return st.changeKeys(k, (*cluster.Node).RemoveKey, (*stampKeys).remove)
}

// changeKeys makes one keyring change: in the cluster node's keyring and,
// once that took, in the keys of the cookies' version stamps.
func (st *Store) changeKeys(k []byte, node func(*cluster.Node, []byte) error, stamps func(*stampKeys, []byte)) error {
	if st.repl == nil {
		return errSingleNode
	}
	if err := node(st.repl.node, k); err != nil {
		return err
	}
	stamps(st.repl.stamps, k)
	return nil
}

var errSingleNode = fmt.Errorf("peersession: the store has no Config.Cluster; keys are for clusters")
