package peersession

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length of a cluster key: 32 bytes (AES-256).
const KeySize = 32

// GenerateKey returns a new random cluster key. From a shell:
//
//	head -c 32 /dev/urandom | base64
func GenerateKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

// ParseKey decodes a cluster key written in standard base64, as from an
// environment variable; surrounding white space (a trailing newline) is
// allowed.
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("peersession: cluster key is not base64: %w; make one with: head -c 32 /dev/urandom | base64", err)
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("peersession: cluster key is %d bytes, want %d; make one with: head -c 32 /dev/urandom | base64", len(k), KeySize)
	}
	return k, nil
}

// ReadKeyFile reads a cluster key file: the key in standard base64, a
// trailing newline allowed.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("peersession: read cluster key: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// AddKey adds a key to the cluster keyring; it is accepted from peers at
// once but not used to send until UseKey. Key rotation on a live cluster:
// AddKey(new) on every node, then UseKey(new) on every node, then
// RemoveKey(old) on every node.
func (st *Store) AddKey(k []byte) error {
	if st.repl == nil {
		return errSingleNode
	}
	return st.repl.node.AddKey(k)
}

// UseKey makes a key already in the keyring the primary one, used for
// everything this node sends.
func (st *Store) UseKey(k []byte) error {
	if st.repl == nil {
		return errSingleNode
	}
	return st.repl.node.UseKey(k)
}

// RemoveKey removes a key that is not primary from the keyring.
func (st *Store) RemoveKey(k []byte) error {
	if st.repl == nil {
		return errSingleNode
	}
	return st.repl.node.RemoveKey(k)
}

var errSingleNode = fmt.Errorf("peersession: the store has no Config.Cluster; keys are for clusters")
