package cluster

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"

	"github.com/flynn/noise"
)

// The stream handshake of the last release before wire-format ranges
// (commit 5b3128a), verbatim but for the names: a fixture for the tests
// that new nodes and nodes of that release still talk (formats_test.go).
// Do not change it; it is what such nodes run.

func legacyClientHandshake(conn net.Conn, psk [32]byte, prologue []byte, selfID, wantID string) (*streamCipher, error) {
	id, cs, err := legacyClientHello(conn, psk, prologue)
	if err != nil {
		return nil, err
	}
	send, err := newStreamCipher(cs)
	if err != nil {
		return nil, err
	}
	if id != wantID {
		return nil, fmt.Errorf("cluster: stream: reached %q, want %q", id, wantID)
	}
	confirm := make([]byte, 16, 16+len(selfID))
	if _, err := rand.Read(confirm); err != nil {
		return nil, err
	}
	confirm = append(confirm, selfID...)
	out, err := appendSealed(nil, send, msgConfirm, confirm)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	return send, nil
}

// legacyClientHello sends the initiator's first message and reads the
// responder's answer, which proves that it knows psk: it returns the ID
// the responder gave and the cipher state for sending.
func legacyClientHello(conn net.Conn, psk [32]byte, prologue []byte) (string, *noise.CipherState, error) {
	hs, err := newHandshake(true, psk, prologue)
	if err != nil {
		return "", nil, err
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return "", nil, err
	}
	if _, err := conn.Write(appendMsg([]byte(preamble), msg1)); err != nil {
		return "", nil, err
	}
	buf := make([]byte, legacyMaxMsg2)
	msg2, err := readMsg(conn, buf, legacyMaxMsg2)
	if err != nil {
		return "", nil, err
	}
	id, cs, _, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return "", nil, fmt.Errorf("cluster: stream: responder failed authentication: %w", err)
	}
	return string(id), cs, nil
}

// legacyServerHandshake runs the responder side: it tries each PSK with a fresh
// handshake state, answers, and trusts the connection only after the
// initiator's confirmation decrypts. It returns the initiator's peer ID,
// the cipher for receiving and the PSK that matched. hello, if not nil, is
// called once the first message (preamble and msg1) is in; its error ends
// the handshake.
func legacyServerHandshake(r io.Reader, w io.Writer, psks [][32]byte, prologue []byte, selfID string, hello func() error) (string, *streamCipher, [32]byte, error) {
	var none [32]byte
	var pre [len(preamble)]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return "", nil, none, err
	}
	if string(pre[:]) != preamble {
		return "", nil, none, errBadPreamble
	}
	buf := make([]byte, maxConfirm)
	msg1, err := readMsg(r, buf, legacyMaxMsg1)
	if err != nil {
		return "", nil, none, err
	}
	if hello != nil {
		if err := hello(); err != nil {
			return "", nil, none, err
		}
	}
	var hs *noise.HandshakeState
	var psk [32]byte
	for _, k := range psks {
		trial, err := newHandshake(false, k, prologue)
		if err != nil {
			return "", nil, none, err
		}
		if _, _, _, err := trial.ReadMessage(nil, msg1); err == nil {
			hs, psk = trial, k
			break
		}
	}
	if hs == nil {
		return "", nil, none, errNoKey
	}
	msg2, cs, _, err := hs.WriteMessage(nil, []byte(selfID))
	if err != nil {
		return "", nil, none, err
	}
	recv, err := newStreamCipher(cs)
	if err != nil {
		return "", nil, none, err
	}
	if _, err := w.Write(appendMsg(nil, msg2)); err != nil {
		return "", nil, none, err
	}
	msg3, err := readMsg(r, buf, maxConfirm)
	if err != nil {
		return "", nil, none, err
	}
	pt, err := recv.Decrypt(msg3[:0], nil, msg3)
	if err != nil {
		return "", nil, none, fmt.Errorf("%w: %w", errBadConfirm, err)
	}
	if len(pt) < 1+16+1 || pt[0] != msgConfirm || bytes.IndexByte(pt[17:], 0) >= 0 {
		return "", nil, none, errBadConfirm
	}
	return string(pt[17:]), recv, psk, nil
}

// The longest first message and answer such a node reads.
const legacyMaxMsg1 = 32 + tagSize + 64

const legacyMaxMsg2 = 32 + maxIDLen + tagSize
