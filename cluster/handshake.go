package cluster

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/flynn/noise"
)

const prologuePrefix = "peersession/1"

// Handshake message limits: msg1 is an ephemeral key and a tag; msg2 adds
// the responder's ID; the confirmation is 1+16 bytes, an ID and a tag.
const (
	maxMsg1    = 32 + tagSize + 64
	maxMsg2    = 32 + maxIDLen + tagSize
	maxConfirm = 1 + 16 + maxIDLen + tagSize
	maxIDLen   = maxNameLen + 9
)

var (
	cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

	errBadPreamble = errors.New("cluster: stream: bad preamble")
	errNoKey       = errors.New("cluster: stream: handshake matches no key")
	errBadConfirm  = errors.New("cluster: stream: bad confirmation")
)

func newHandshake(initiator bool, psk [32]byte, prologue []byte) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(noise.Config{
		CipherSuite:           cipherSuite,
		Random:                rand.Reader,
		Pattern:               noise.HandshakeNN,
		Initiator:             initiator,
		Prologue:              prologue,
		PresharedKey:          psk[:],
		PresharedKeyPlacement: 0,
	})
}

// clientHandshake runs the initiator side on conn and returns the cipher
// for sending. It fails unless the responder proves knowledge of psk and
// names itself wantID.
func clientHandshake(conn net.Conn, psk [32]byte, prologue []byte, selfID, wantID string) (*streamCipher, error) {
	id, cs, err := clientHello(conn, psk, prologue)
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

// clientHello sends the initiator's first message and reads the
// responder's answer, which proves that it knows psk: it returns the ID
// the responder gave and the cipher state for sending.
func clientHello(conn net.Conn, psk [32]byte, prologue []byte) (string, *noise.CipherState, error) {
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
	buf := make([]byte, maxMsg2)
	msg2, err := readMsg(conn, buf, maxMsg2)
	if err != nil {
		return "", nil, err
	}
	id, cs, _, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return "", nil, fmt.Errorf("cluster: stream: responder failed authentication: %w", err)
	}
	return string(id), cs, nil
}

// probeHandshake runs the initiator side as far as the responder's proof:
// it returns nil if the responder knows psk and is wantID. It sends no
// confirmation, so no stream opens (the responder counts a failed
// handshake).
func probeHandshake(conn net.Conn, psk [32]byte, prologue []byte, wantID string) error {
	id, _, err := clientHello(conn, psk, prologue)
	if err == nil && id != wantID {
		err = fmt.Errorf("cluster: stream: reached %q, want %q", id, wantID)
	}
	return err
}

// serverHandshake runs the responder side: it tries each PSK with a fresh
// handshake state, answers, and trusts the connection only after the
// initiator's confirmation decrypts. It returns the initiator's peer ID,
// the cipher for receiving and the PSK that matched. hello, if not nil, is
// called once the first message (preamble and msg1) is in; its error ends
// the handshake.
func serverHandshake(r io.Reader, w io.Writer, psks [][32]byte, prologue []byte, selfID string, hello func() error) (string, *streamCipher, [32]byte, error) {
	var none [32]byte
	var pre [len(preamble)]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return "", nil, none, err
	}
	if string(pre[:]) != preamble {
		return "", nil, none, errBadPreamble
	}
	buf := make([]byte, maxConfirm)
	msg1, err := readMsg(r, buf, maxMsg1)
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
