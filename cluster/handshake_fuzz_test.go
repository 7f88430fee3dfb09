package cluster

import (
	"bytes"
	"io"
	"testing"
)

// FuzzServerHandshake feeds arbitrary bytes to the responder side of the
// stream handshake, as a hostile client connecting to the stream port
// would: it must never panic and never trust the connection (with the
// right key unknown to the fuzzer, no input can complete it).
func FuzzServerHandshake(f *testing.F) {
	psk := streamPSK(bytes.Repeat([]byte{1}, KeySize))
	prologue := []byte("peersession/1test")
	f.Add([]byte(preamble))
	f.Add(append([]byte(preamble), 0xff, 0xff))
	f.Add(append([]byte(preamble), 0x00, 0x30))
	f.Add(append(append([]byte(preamble), 0x00, 0x30), bytes.Repeat([]byte{7}, 48)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		id, recv, _, err := serverHandshake(bytes.NewReader(in), io.Discard, [][32]byte{psk}, prologue, "self", nil)
		if err == nil || recv != nil || id != "" {
			t.Fatalf("a random input completed the handshake: id %q err %v", id, err)
		}
	})
}

// FuzzReadMsg: the unauthenticated length prefix never makes readMsg read
// past its limit or its buffer.
func FuzzReadMsg(f *testing.F) {
	f.Add([]byte{0x00, 0x03, 1, 2, 3}, 8)
	f.Add([]byte{0xff, 0xff}, 16)
	f.Fuzz(func(t *testing.T, in []byte, limit int) {
		limit = max(0, min(limit, 1<<10))
		buf := make([]byte, limit)
		msg, err := readMsg(bytes.NewReader(in), buf, limit)
		if err == nil && len(msg) > limit {
			t.Fatalf("message of %d bytes over limit %d", len(msg), limit)
		}
	})
}
