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
	f.Add(append(append([]byte(preamble), 0x00, 0x32), bytes.Repeat([]byte{7}, 50)...)) // msg1 with a 2-byte payload's length
	f.Fuzz(func(t *testing.T, in []byte) {
		acc, err := serverHandshake(bytes.NewReader(in), io.Discard, [][32]byte{psk}, prologue, "self", Formats{1, 2}, nil)
		if err == nil || acc.recv != nil || acc.id != "" {
			t.Fatalf("a random input completed the handshake: id %q err %v", acc.id, err)
		}
	})
}

// FuzzHandshakePayloads: the wire-format ranges in the handshake's
// payloads (the initiator's, and the responder's after its ID) parse
// without panicking, and whatever parses is a valid range that writes
// back to the bytes it came from.
func FuzzHandshakePayloads(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1})
	f.Add([]byte{1, 2, 9, 9})
	f.Add([]byte{2, 1})
	f.Add([]byte{0, 0})
	f.Add([]byte("n1-0011aabb\x00\x01\x02"))
	f.Add([]byte("n1-0011aabb\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if fm, announced, err := parseFormats(in); err == nil {
			if !fm.valid() {
				t.Fatalf("parseFormats(%x) gave invalid %v", in, fm)
			}
			if announced && !bytes.HasPrefix(in, fm.append(nil)) {
				t.Fatalf("parseFormats(%x) = %v, which writes %x", in, fm, fm.append(nil))
			}
		}
		id, fm, announced, err := parseAnswer(in)
		if err != nil {
			return
		}
		if !fm.valid() || bytes.IndexByte([]byte(id), 0) >= 0 {
			t.Fatalf("parseAnswer(%x) = %q, %v", in, id, fm)
		}
		if out := appendAnswer(nil, id, fm, announced); !bytes.HasPrefix(in, out) {
			t.Fatalf("parseAnswer(%x) = %q %v %v, which writes %x", in, id, fm, announced, out)
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
