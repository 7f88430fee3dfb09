package cluster

import (
	"crypto/sha256"
	"fmt"
)

// streamPSK derives a stream's Noise PSK from a keyring key, so the bytes
// used as a memberlist AES key are never used directly as a Noise PSK.
func streamPSK(key []byte) [32]byte {
	return sha256.Sum256(append([]byte(prologuePrefix+" stream psk\x00"), key...))
}

// insecurePSK is the PSK used when the keyring is empty. It is derived from
// the label alone and is not secret: it only keeps the code path identical.
func insecurePSK(label string) [32]byte {
	return sha256.Sum256([]byte(prologuePrefix + " insecure psk\x00" + label))
}

// streamPSKs returns the PSKs to accept, the one to dial with first.
func (n *Node) streamPSKs() [][32]byte {
	keys := n.keyring.GetKeys() // primary first
	if len(keys) == 0 {
		return [][32]byte{insecurePSK(n.cfg.Label)}
	}
	psks := make([][32]byte, len(keys))
	for i, k := range keys {
		psks[i] = streamPSK(k)
	}
	return psks
}

func checkKey(k []byte) error {
	if len(k) != KeySize {
		return fmt.Errorf("cluster: key is %d bytes, want %d", len(k), KeySize)
	}
	return nil
}

// keyringOp checks k and that the node is open, then runs op (a keyring
// method) on k; op's error is wrapped as "cluster: <verb> key: ...".
func (n *Node) keyringOp(verb string, k []byte, op func([]byte) error) error {
	if err := checkKey(k); err != nil {
		return err
	}
	if n.isClosed() {
		return ErrClosed
	}
	if err := op(k); err != nil {
		return fmt.Errorf("cluster: %s key: %w", verb, err)
	}
	return nil
}

// AddKey installs k on the keyring (gossip and streams) so that it is
// accepted; UseKey makes it the one used to encrypt. Rotate by AddKey on
// every node, then UseKey on every node, then RemoveKey of the old key.
func (n *Node) AddKey(k []byte) error {
	return n.keyringOp("add", k, func(k []byte) error { return n.keyring.AddKey(append([]byte(nil), k...)) })
}

// UseKey makes an installed key the primary one: gossip is encrypted and
// new streams are dialed with it. Established streams are kept.
func (n *Node) UseKey(k []byte) error {
	return n.keyringOp("use", k, n.keyring.UseKey)
}

// RemoveKey removes a key that is not the primary one. Streams that were
// authenticated with it are closed (outgoing ones are redialed with the
// primary key on the next Send).
func (n *Node) RemoveKey(k []byte) error {
	if err := n.keyringOp("remove", k, n.keyring.RemoveKey); err != nil {
		return err
	}
	psk := streamPSK(k)
	n.outMu.Lock()
	for _, p := range n.outs {
		p.dropIfPSK(psk)
	}
	n.outMu.Unlock()
	n.inMu.Lock()
	for c := range n.ins {
		if c.psk == psk {
			c.conn.Close()
		}
	}
	n.inMu.Unlock()
	return nil
}
