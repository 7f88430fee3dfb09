package cluster

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"
)

// handshakePair runs a handshake in memory and returns the initiator's
// sending and the responder's receiving CipherStates.
func handshakePair(t *testing.T) (send, recv *noise.CipherState) {
	t.Helper()
	psk := streamPSK(testKey1)
	ini, err := newHandshake(true, psk, []byte("prologue"))
	require.NoError(t, err)
	res, err := newHandshake(false, psk, []byte("prologue"))
	require.NoError(t, err)
	msg1, _, _, err := ini.WriteMessage(nil, nil)
	require.NoError(t, err)
	_, _, _, err = res.ReadMessage(nil, msg1)
	require.NoError(t, err)
	msg2, recv, _, err := res.WriteMessage(nil, nil)
	require.NoError(t, err)
	_, send, _, err = ini.ReadMessage(nil, msg2)
	require.NoError(t, err)
	return send, recv
}

// A streamCipher continues a handshake's CipherState exactly: the same
// ciphertexts as noise.CipherState for the same messages, so either end
// may use either.
func TestStreamCipherIsNoiseTransport(t *testing.T) {
	send, recv := handshakePair(t)
	// One message with noise's own state first, so that ours continues at
	// a nonce other than 0.
	ct, err := send.Encrypt(nil, nil, []byte("confirm"))
	require.NoError(t, err)
	_, err = recv.Decrypt(nil, nil, ct)
	require.NoError(t, err)

	mine, theirs := streamCiphers(t, send, recv)
	for i := range 100 {
		msg := bytes.Repeat([]byte(fmt.Sprint(i)), i+1)
		want, err := send.Encrypt(nil, nil, msg) // noise, one step ahead in step
		require.NoError(t, err)
		got, err := mine.Encrypt(nil, nil, msg)
		require.NoError(t, err)
		require.Equal(t, want, got, "message %d", i)

		pt, err := theirs.Decrypt(nil, nil, got)
		require.NoError(t, err)
		require.Equal(t, msg, pt)
		_, err = recv.Decrypt(nil, nil, want) // keep noise's receiver in step
		require.NoError(t, err)
	}
}

// streamCiphers returns streamCiphers continuing s and r.
func streamCiphers(t *testing.T, s, r *noise.CipherState) (send, recv *streamCipher) {
	t.Helper()
	send, err := newStreamCipher(s)
	require.NoError(t, err)
	recv, err = newStreamCipher(r)
	require.NoError(t, err)
	return send, recv
}

// streamPair returns the two ends of one direction of a fresh stream.
func streamPair(t *testing.T) (send, recv *streamCipher) {
	t.Helper()
	s, r := handshakePair(t)
	return streamCiphers(t, s, r)
}

func TestStreamCipherRefusesTamperingAndReplay(t *testing.T) {
	s, r := streamPair(t)

	first, err := s.Encrypt(nil, nil, []byte("first"))
	require.NoError(t, err)
	bad := bytes.Clone(first)
	bad[0] ^= 1
	_, err = r.Decrypt(nil, nil, bad)
	require.Error(t, err, "tampered")
	pt, err := r.Decrypt(nil, nil, first)
	require.NoError(t, err, "a failed message leaves the nonce as it was")
	require.Equal(t, "first", string(pt))
	_, err = r.Decrypt(nil, nil, first)
	require.Error(t, err, "replayed")

	s.n = math.MaxUint64
	_, err = s.Encrypt(nil, nil, []byte("x"))
	require.ErrorIs(t, err, errNonceExhausted)
}

func TestStreamCipherAllocatesNothing(t *testing.T) {
	s, r := streamPair(t)
	buf, frame := make([]byte, 0, 1024), []byte("a frame")
	allocs := testing.AllocsPerRun(100, func() {
		ct, err := s.Encrypt(buf[:0], nil, frame)
		if err != nil {
			panic(err)
		}
		if _, err := r.Decrypt(ct[:0], nil, ct); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}
