package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testlog"
)

// The bytes a range adds to the handshake's payloads, as written by this
// release and read by every later one.
func TestFormatPayloadsGolden(t *testing.T) {
	assert.Equal(t, []byte{1, 2}, Formats{1, 2}.append(nil), "initiator's payload")
	assert.Equal(t, []byte("n1-0011aabb\x00\x01\x02"), appendAnswer(nil, "n1-0011aabb", Formats{1, 2}, true), "answer to an announcing initiator")
	assert.Equal(t, []byte("n1-0011aabb"), appendAnswer(nil, "n1-0011aabb", Formats{1, 2}, false), "answer to a silent one")

	for _, c := range []struct {
		in        string
		want      Formats
		announced bool
		bad       bool
	}{
		{in: "", want: Formats{1, 1}},
		{in: "\x01\x01", want: Formats{1, 1}, announced: true},
		{in: "\x02\x05", want: Formats{2, 5}, announced: true},
		{in: "\x01\x02later", want: Formats{1, 2}, announced: true}, // a later release's additions are ignored
		{in: "\x01", bad: true},
		{in: "\x00\x01", bad: true},
		{in: "\x03\x02", bad: true},
	} {
		f, announced, err := parseFormats([]byte(c.in))
		if c.bad {
			assert.ErrorIs(t, err, errBadFormats, "%q", c.in)
			continue
		}
		require.NoError(t, err, "%q", c.in)
		assert.Equal(t, c.want, f, "%q", c.in)
		assert.Equal(t, c.announced, announced, "%q", c.in)
	}

	id, f, announced, err := parseAnswer([]byte("n1-0011aabb"))
	require.NoError(t, err)
	assert.Equal(t, "n1-0011aabb", id)
	assert.Equal(t, legacyFormats, f, "an answer without a range is a release before ranges: format 1")
	assert.False(t, announced)
	_, _, _, err = parseAnswer([]byte("n1-0011aabb\x00"))
	assert.ErrorIs(t, err, errBadFormats, "a NUL with no range after it")
}

// hsEnd is one end of a handshake under test: this
// release's with a range, or the previous release's (legacy).
type hsEnd struct {
	legacy bool
	f      Formats
}

type hsResult struct {
	peerID  string  // the ID the end learnt of its peer ("" if none)
	formats Formats // the range it learnt
	err     error
}

// formatsHandshake runs one handshake between client and server over a pipe
// and returns what each end made of it.
func formatsHandshake(t *testing.T, client, server hsEnd) (c, s hsResult) {
	t.Helper()
	psk := streamPSK(testKey1)
	prologue := []byte(prologuePrefix + "test")
	cc, sc := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer sc.Close() // a refusal closes the connection
		if server.legacy {
			s.peerID, _, _, s.err = legacyServerHandshake(sc, sc, [][32]byte{psk}, prologue, "server-00000001", nil)
			s.formats = legacyFormats
			return
		}
		var acc accepted
		acc, s.err = serverHandshake(sc, sc, [][32]byte{psk}, prologue, "server-00000001", server.f, nil)
		s.peerID, s.formats = acc.id, acc.formats
	}()
	if client.legacy {
		_, c.err = legacyClientHandshake(cc, psk, prologue, "client-00000002", "server-00000001")
		c.formats = legacyFormats
	} else {
		_, c.formats, c.err = clientHandshake(cc, psk, prologue, "client-00000002", "server-00000001", client.f)
	}
	cc.Close()
	wg.Wait()
	return c, s
}

func TestHandshakeWithThePreviousRelease(t *testing.T) {
	t.Run("new initiator, old responder", func(t *testing.T) {
		c, s := formatsHandshake(t, hsEnd{f: Formats{1, 2}}, hsEnd{legacy: true})
		require.NoError(t, c.err)
		require.NoError(t, s.err, "the old responder ignores the range in the first message")
		assert.Equal(t, "client-00000002", s.peerID)
		assert.Equal(t, legacyFormats, c.formats, "an answer without a range means format 1")
	})
	t.Run("old initiator, new responder", func(t *testing.T) {
		c, s := formatsHandshake(t, hsEnd{legacy: true}, hsEnd{f: Formats{1, 2}})
		require.NoError(t, c.err, "the old initiator gets the bare ID it expects")
		require.NoError(t, s.err)
		assert.Equal(t, "client-00000002", s.peerID)
		assert.Equal(t, legacyFormats, s.formats, "no range in the first message means format 1")
	})
	t.Run("both new", func(t *testing.T) {
		c, s := formatsHandshake(t, hsEnd{f: Formats{1, 2}}, hsEnd{f: Formats{1, 3}})
		require.NoError(t, c.err)
		require.NoError(t, s.err)
		assert.Equal(t, Formats{1, 3}, c.formats)
		assert.Equal(t, Formats{1, 2}, s.formats)
	})
}

func TestHandshakeRefusesDisjointFormats(t *testing.T) {
	var fe *FormatError
	t.Run("new initiator past the old responder", func(t *testing.T) {
		c, s := formatsHandshake(t, hsEnd{f: Formats{2, 3}}, hsEnd{legacy: true})
		require.ErrorAs(t, c.err, &fe)
		assert.Equal(t, FormatError{Peer: "server-00000001", Addr: "pipe", Ours: Formats{2, 3}, Theirs: Formats{1, 1}}, *fe)
		assert.Error(t, s.err, "no confirmation: the old responder never trusts the stream")
		assert.Empty(t, s.peerID)
	})
	t.Run("old initiator, new responder past it", func(t *testing.T) {
		c, s := formatsHandshake(t, hsEnd{legacy: true}, hsEnd{f: Formats{2, 3}})
		require.ErrorAs(t, s.err, &fe)
		assert.Equal(t, FormatError{Ours: Formats{2, 3}, Theirs: Formats{1, 1}}, *fe)
		assert.Error(t, c.err, "refused before any answer")
	})
	for _, pair := range [][2]Formats{{{1, 1}, {2, 2}}, {{2, 2}, {1, 1}}, {{1, 2}, {3, 4}}} {
		t.Run("both new "+pair[0].String()+" and "+pair[1].String(), func(t *testing.T) {
			c, s := formatsHandshake(t, hsEnd{f: pair[0]}, hsEnd{f: pair[1]})
			require.ErrorAs(t, c.err, &fe)
			assert.Equal(t, FormatError{Peer: "server-00000001", Addr: "pipe", Ours: pair[0], Theirs: pair[1], Announced: true}, *fe)
			require.ErrorAs(t, s.err, &fe, "the responder answers with its range, then refuses")
			assert.Equal(t, FormatError{Ours: pair[1], Theirs: pair[0], Announced: true}, *fe)
			assert.ErrorIs(t, s.err, ErrFormatsDiffer)
		})
	}
}

func TestFormatErrorNamesBothVersionsAndWhatToDo(t *testing.T) {
	msg := (&FormatError{Peer: "n2-00aa", Addr: "10.0.0.2:7947", Ours: Formats{2, 3}, Theirs: Formats{1, 1}, Announced: true}).Error()
	assert.Contains(t, msg, "n2-00aa at 10.0.0.2:7947 speaks wire format 1 and this node speaks 2-3")
	assert.Contains(t, msg, "upgrade one release at a time")
	msg = (&FormatError{Addr: "10.0.0.2:41000", Ours: Formats{2, 2}, Theirs: legacyFormats}).Error()
	assert.Contains(t, msg, "10.0.0.2:41000 speaks wire format 1 only (it announces none")
}

func TestNodesWithoutACommonFormatRefuseEachOthersStreams(t *testing.T) {
	t.Parallel()
	var logA testlog.Buffer
	a := newTestNode(t, func(c *Config) {
		c.Formats = Formats{1, 1}
		c.Logger = slog.New(slog.NewTextHandler(&logA, nil))
	})
	join(t, a)
	b := newTestNode(t, func(c *Config) {
		relaxed(c)
		c.Formats = Formats{2, 2}
		seeds(a)(c)
	})
	join(t, b) // membership does not depend on formats
	waitPeers(t, a, b)

	ctx := context.Background()
	err := b.Send(ctx, a.Self().ID, []byte("x"))
	require.ErrorIs(t, err, ErrFormatsDiffer)
	fe := b.FormatConflict()
	require.NotNil(t, fe)
	assert.Equal(t, a.Self().ID, fe.Peer)
	assert.Equal(t, Formats{2, 2}, fe.Ours)
	assert.Equal(t, Formats{1, 1}, fe.Theirs)
	require.Eventually(t, func() bool { return a.FormatConflict() != nil }, waitFor, tick)
	assert.Equal(t, Formats{2, 2}, a.FormatConflict().Theirs)
	assert.Contains(t, logA.String(), "speaks wire format 2 and this node speaks 1")

	err = a.Send(ctx, b.Self().ID, []byte("x"))
	require.ErrorIs(t, err, ErrFormatsDiffer)
	assert.Empty(t, a.rec.framesFrom(b.Self().ID))
	assert.Empty(t, b.rec.framesFrom(a.Self().ID))
	_, known := a.PeerFormats(b.Self().ID)
	assert.False(t, known)
}

func TestPeerFormatsAreLearntFromStreamsEitherWay(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, func(c *Config) { relaxed(c); c.Formats = Formats{1, 2} })
	join(t, a)
	b := newTestNode(t, func(c *Config) { relaxed(c); c.Formats = Formats{1, 3}; seeds(a)(c) })
	join(t, b)
	waitPeers(t, a, b)
	_, known := a.PeerFormats(b.Self().ID)
	assert.False(t, known, "no stream yet")

	sendRetry(t, a.Node, b.Self().ID, []byte("hello"))
	f, ok := a.PeerFormats(b.Self().ID)
	require.True(t, ok, "learnt by the initiator")
	assert.Equal(t, Formats{1, 3}, f)
	waitFrames(t, b, a, 1)
	f, ok = b.PeerFormats(a.Self().ID)
	require.True(t, ok, "learnt by the responder")
	assert.Equal(t, Formats{1, 2}, f)
	assert.Nil(t, a.FormatConflict())
	v, ok := a.PeerFormat(b.Self().ID)
	assert.True(t, ok)
	assert.Equal(t, 2, v, "the newest both speak: a writes b format 2")
	v, _ = b.PeerFormat(a.Self().ID)
	assert.Equal(t, 2, v)

	require.NoError(t, b.Close())
	require.Eventually(t, func() bool { _, ok := a.PeerFormats(b.Self().ID); return !ok }, waitFor, tick, "forgotten once the peer is gone")
}

func TestConfigFormats(t *testing.T) {
	_, err := startTestNode(t, func(c *Config) { c.Formats = Formats{2, 1} })
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Formats", ce.Field)
	_, err = startTestNode(t, func(c *Config) { c.Name = "a\x00b" })
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Name", ce.Field)
	n := newTestNode(t, nil)
	assert.Equal(t, legacyFormats, n.cfg.Formats, "zero means format 1, what releases before ranges speak")
	assert.False(t, errors.Is(err, ErrFormatsDiffer))
	assert.True(t, strings.HasPrefix(ce.Error(), "cluster: "))
}
