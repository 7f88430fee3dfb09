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

// Handshake message limits: msg1 is an ephemeral key, the initiator's
// wire-format range (see formats.go) and a tag; msg2 adds the responder's
// ID and range; the confirmation is 1+16 bytes, an ID and a tag. (Releases
// before format ranges read msg2 up to 32+maxIDLen+tagSize bytes: they
// never get a range in it.)
const (
	maxMsg1    = 32 + tagSize + maxFormatsLen
	maxMsg2    = 32 + maxIDLen + 1 + maxFormatsLen + tagSize
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
// for sending and the wire formats the responder speaks. It fails unless
// the responder proves knowledge of psk and names itself wantID, and with
// a *FormatError (sending no confirmation) when the two speak no format in
// common.
func clientHandshake(conn net.Conn, psk [32]byte, prologue []byte, selfID, wantID string, ours Formats) (*streamCipher, Formats, error) {
	id, theirs, announced, cs, err := clientHello(conn, psk, prologue, ours)
	if err != nil {
		return nil, Formats{}, err
	}
	send, err := newStreamCipher(cs)
	if err != nil {
		return nil, Formats{}, err
	}
	if id != wantID {
		return nil, Formats{}, fmt.Errorf("cluster: stream: reached %q, want %q", id, wantID)
	}
	if !ours.overlaps(theirs) {
		return nil, theirs, &FormatError{Peer: id, Addr: remoteAddr(conn), Ours: ours, Theirs: theirs, Announced: announced}
	}
	confirm := make([]byte, 16, 16+len(selfID))
	if _, err := rand.Read(confirm); err != nil {
		return nil, Formats{}, err
	}
	confirm = append(confirm, selfID...)
	out, err := appendSealed(nil, send, msgConfirm, confirm)
	if err != nil {
		return nil, Formats{}, err
	}
	if _, err := conn.Write(out); err != nil {
		return nil, Formats{}, err
	}
	return send, theirs, nil
}

// clientHello sends the initiator's first message, announcing ours, and
// reads the responder's answer, which proves that it knows psk: it returns
// the ID and the wire formats the responder gave (announced false: it gave
// none, format 1) and the cipher state for sending.
func clientHello(conn net.Conn, psk [32]byte, prologue []byte, ours Formats) (string, Formats, bool, *noise.CipherState, error) {
	hs, err := newHandshake(true, psk, prologue)
	if err != nil {
		return "", Formats{}, false, nil, err
	}
	msg1, _, _, err := hs.WriteMessage(nil, ours.append(nil))
	if err != nil {
		return "", Formats{}, false, nil, err
	}
	if _, err := conn.Write(appendMsg([]byte(preamble), msg1)); err != nil {
		return "", Formats{}, false, nil, err
	}
	buf := make([]byte, maxMsg2)
	msg2, err := readMsg(conn, buf, maxMsg2)
	if err != nil {
		return "", Formats{}, false, nil, err
	}
	answer, cs, _, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return "", Formats{}, false, nil, fmt.Errorf("cluster: stream: responder failed authentication: %w", err)
	}
	id, theirs, announced, err := parseAnswer(answer)
	if err != nil {
		return "", Formats{}, false, nil, err
	}
	return id, theirs, announced, cs, nil
}

// probeHandshake runs the initiator side as far as the responder's proof:
// it returns nil if the responder knows psk and is wantID. It sends no
// confirmation, so no stream opens (the responder counts a failed
// handshake).
func probeHandshake(conn net.Conn, psk [32]byte, prologue []byte, wantID string, ours Formats) error {
	id, _, _, _, err := clientHello(conn, psk, prologue, ours)
	if err == nil && id != wantID {
		err = fmt.Errorf("cluster: stream: reached %q, want %q", id, wantID)
	}
	return err
}

// accepted is what the responder side of a completed handshake learnt.
type accepted struct {
	id      string        // the initiator's peer ID
	recv    *streamCipher // the cipher for receiving
	psk     [32]byte      // the PSK that matched
	formats Formats       // the wire formats the initiator speaks
}

// serverHandshake runs the responder side: it tries each PSK with a fresh
// handshake state, answers, and trusts the connection only after the
// initiator's confirmation decrypts. hello, if not nil, is called once
// the first message (preamble and msg1) is in; its error ends the
// handshake. An initiator that speaks no wire format in ours ends it with
// a *FormatError (without its Peer and Addr, which the caller knows
// better): one that announced its range is answered first, with ours, so
// that it can tell why.
func serverHandshake(r io.Reader, w io.Writer, psks [][32]byte, prologue []byte, selfID string, ours Formats, hello func() error) (accepted, error) {
	var pre [len(preamble)]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return accepted{}, err
	}
	if string(pre[:]) != preamble {
		return accepted{}, errBadPreamble
	}
	buf := make([]byte, maxConfirm)
	msg1, err := readMsg(r, buf, maxMsg1)
	if err != nil {
		return accepted{}, err
	}
	if hello != nil {
		if err := hello(); err != nil {
			return accepted{}, err
		}
	}
	var hs *noise.HandshakeState
	var psk [32]byte
	var announce []byte
	for _, k := range psks {
		trial, err := newHandshake(false, k, prologue)
		if err != nil {
			return accepted{}, err
		}
		if payload, _, _, err := trial.ReadMessage(nil, msg1); err == nil {
			hs, psk, announce = trial, k, payload
			break
		}
	}
	if hs == nil {
		return accepted{}, errNoKey
	}
	theirs, announced, err := parseFormats(announce)
	if err != nil {
		return accepted{}, err
	}
	compatible := ours.overlaps(theirs)
	if !compatible && !announced {
		return accepted{}, &FormatError{Ours: ours, Theirs: theirs}
	}
	msg2, cs, _, err := hs.WriteMessage(nil, appendAnswer(nil, selfID, ours, announced))
	if err != nil {
		return accepted{}, err
	}
	recv, err := newStreamCipher(cs)
	if err != nil {
		return accepted{}, err
	}
	if _, err := w.Write(appendMsg(nil, msg2)); err != nil {
		return accepted{}, err
	}
	if !compatible {
		return accepted{}, &FormatError{Ours: ours, Theirs: theirs, Announced: true}
	}
	msg3, err := readMsg(r, buf, maxConfirm)
	if err != nil {
		return accepted{}, err
	}
	pt, err := recv.Decrypt(msg3[:0], nil, msg3)
	if err != nil {
		return accepted{}, fmt.Errorf("%w: %w", errBadConfirm, err)
	}
	if len(pt) < 1+16+1 || pt[0] != msgConfirm || bytes.IndexByte(pt[17:], 0) >= 0 {
		return accepted{}, errBadConfirm
	}
	return accepted{id: string(pt[17:]), recv: recv, psk: psk, formats: theirs}, nil
}
