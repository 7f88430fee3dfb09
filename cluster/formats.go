package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Wire-format versions in the stream handshake.
//
// The frames a Node carries are in a format its Handler defines (the
// replication messages); Config.Formats says which versions of it this
// node speaks. The handshake tells each side the other's range, so that
// a node can be refused when the two have no version in common, and so
// that the Handler can learn which version a peer reads (PeerFormats)
// before it uses a field that an older format does not have.
//
// Where the range travels (permanent):
//
//   - The initiator's first message carries it as its Noise payload: the
//     bytes min, max (a later release may append more, which this one
//     ignores). The payload is encrypted and authenticated with the key,
//     like the rest of the handshake. Releases before formats existed send
//     an empty payload: that means format 1 only. They ignore a payload
//     they get, so an announcing initiator completes its handshake with
//     them.
//   - The responder's answer carries its peer ID. To an initiator that
//     announced a range it appends a NUL byte and its own range (min, max,
//     and perhaps more bytes, ignored). An ID never contains NUL (Config
//     refuses such a Name), so an answer without one is a responder of a
//     release before formats: format 1 only. An initiator that announced
//     nothing gets the bare ID, as such releases expect.
//
// A node refuses a stream, in either direction, when the ranges do not
// overlap: it logs both ranges and what to do, and New's user learns of
// it through FormatConflict. A responder refuses a silent initiator it
// cannot talk to before answering (it has no range of its own to tell
// it), and an announcing one after answering with its range, so that
// both ends can name both versions.

// Formats is a range of wire-format versions, both ends included.
type Formats struct {
	Min, Max uint8
}

// legacyFormats is what a peer that announces no range speaks: it is a
// release from before formats were announced, and those all speak format 1.
var legacyFormats = Formats{Min: 1, Max: 1}

// maxFormatsLen bounds the range's bytes in a handshake message: min and
// max, and room for what later releases may append.
const maxFormatsLen = 64

func (f Formats) valid() bool { return 1 <= f.Min && f.Min <= f.Max }

// overlaps reports whether f and g have a version in common.
func (f Formats) overlaps(g Formats) bool { return max(f.Min, g.Min) <= min(f.Max, g.Max) }

// String is "1" for a single version, "1-3" for a range.
func (f Formats) String() string {
	if f.Min == f.Max {
		return fmt.Sprint(f.Min)
	}
	return fmt.Sprintf("%d-%d", f.Min, f.Max)
}

func (f Formats) append(b []byte) []byte { return append(b, f.Min, f.Max) }

var errBadFormats = errors.New("cluster: stream: malformed wire-format range in handshake")

// parseFormats reads a range written by append (and ignores what follows
// it); empty means the peer announced none: legacyFormats, announced false.
func parseFormats(b []byte) (f Formats, announced bool, err error) {
	if len(b) == 0 {
		return legacyFormats, false, nil
	}
	if len(b) < 2 || len(b) > maxFormatsLen {
		return Formats{}, true, errBadFormats
	}
	f = Formats{Min: b[0], Max: b[1]}
	if !f.valid() {
		return Formats{}, true, errBadFormats
	}
	return f, true, nil
}

// appendAnswer writes the responder's answer payload: its ID, and its
// range after a NUL if the initiator announced one.
func appendAnswer(b []byte, selfID string, ours Formats, announced bool) []byte {
	b = append(b, selfID...)
	if announced {
		b = ours.append(append(b, 0))
	}
	return b
}

// parseAnswer splits the responder's answer payload into its ID and its
// range; announced false (and legacyFormats) when it gave none.
func parseAnswer(b []byte) (id string, f Formats, announced bool, err error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), legacyFormats, false, nil
	}
	f, announced, err = parseFormats(b[i+1:])
	if err == nil && !announced {
		err = errBadFormats // a NUL and nothing after it
	}
	return string(b[:i]), f, true, err
}

// FormatError is a stream refused because the two nodes speak no wire
// format in common (see Config.Formats): one of them runs a release too
// old or too new for the other. errors.Is matches it to
// ErrFormatsDiffer.
type FormatError struct {
	// Peer is the other node's peer ID, when the handshake got as far
	// as learning it; Addr is its stream address (the remote end of the
	// connection).
	Peer, Addr string
	// Ours is this node's range, Theirs the peer's. Announced is false
	// for a peer of a release that announces none (format 1 only).
	Ours, Theirs Formats
	Announced    bool
}

// ErrFormatsDiffer is what a *FormatError matches with errors.Is.
var ErrFormatsDiffer = errors.New("cluster: the wire formats differ")

func (e *FormatError) Unwrap() error { return ErrFormatsDiffer }

func (e *FormatError) Error() string {
	who := e.Addr
	if e.Peer != "" {
		who = e.Peer + " at " + e.Addr
	}
	theirs := "wire format " + e.Theirs.String()
	if !e.Announced {
		theirs = "wire format 1 only (it announces none: a release from before format versions)"
	}
	return fmt.Sprintf("cluster: peer %s speaks %s and this node speaks %s: no format in common, "+
		"so their streams are refused; upgrade one release at a time (each release speaks its "+
		"predecessor's format), or run builds whose format ranges overlap", who, theirs, e.Ours)
}

// formatRefused logs a stream refused for want of a common format (one
// line per 10s at most) and keeps it for FormatConflict.
func (n *Node) formatRefused(fe *FormatError) {
	n.fmtMu.Lock()
	n.fmtConflict = fe
	n.fmtMu.Unlock()
	if held, ok := n.fmtLog.Allow(time.Now(), 1); ok {
		n.log.Error("cluster: stream refused: the peer speaks no wire format in common with this node; upgrade one release at a time",
			"peer", fe.Peer, "addr", fe.Addr, "formats", fe.Ours.String(), "peer_formats", fe.Theirs.String(),
			"refused", held, "err", fe)
	}
}

// FormatConflict returns the latest stream refused because its peer speaks
// no wire format in common with this node, or nil if there has been none.
// A node that cannot get its state from any peer reports it as the
// reason (the peers that could serve it may all be of another release).
func (n *Node) FormatConflict() *FormatError {
	n.fmtMu.Lock()
	defer n.fmtMu.Unlock()
	return n.fmtConflict
}

// PeerFormats returns the range of wire formats the peer with this ID
// announced in the handshake of a stream, in either direction, that this
// node completed with it; false if none has completed yet (the caller
// should then use no field a format-1 peer lacks). A peer ID is one
// process start, so its range does not change.
func (n *Node) PeerFormats(id string) (Formats, bool) {
	n.fmtMu.Lock()
	defer n.fmtMu.Unlock()
	f, ok := n.peerFmt[id]
	return f, ok
}

// maxPeerFormats bounds the ranges kept: past it, those of peers that are
// not alive members are forgotten (a handshake may complete just after
// its peer's PeerDown forgot it).
const maxPeerFormats = 1024

// PeerFormat returns the newest wire format both this node and the peer
// with this ID speak (see PeerFormats): the one to write to it.
func (n *Node) PeerFormat(id string) (int, bool) {
	f, ok := n.PeerFormats(id)
	if !ok {
		return 0, false
	}
	return int(min(f.Max, n.cfg.Formats.Max)), true
}

// setPeerFormats records the range a peer announced in a handshake.
func (n *Node) setPeerFormats(id string, f Formats) {
	n.fmtMu.Lock()
	n.peerFmt[id] = f
	crowded := len(n.peerFmt) > maxPeerFormats
	n.fmtMu.Unlock()
	if !crowded {
		return
	}
	n.fmtMu.Lock()
	defer n.fmtMu.Unlock()
	for id := range n.peerFmt { // alivePeer takes memMu: never held with fmtMu the other way round
		if _, ok := n.alivePeer(id); !ok {
			delete(n.peerFmt, id)
		}
	}
}

// dialHandshake runs the initiator handshake on conn with peer, records
// the formats it speaks, and logs and keeps a format conflict.
func (n *Node) dialHandshake(conn net.Conn, psk [32]byte, peer Peer) (*streamCipher, error) {
	send, theirs, err := clientHandshake(conn, psk, n.prologue, n.self.ID, peer.ID, n.cfg.Formats)
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Addr = peer.Addr
		n.formatRefused(fe)
	}
	if err == nil {
		n.setPeerFormats(peer.ID, theirs)
	}
	return send, err
}

// acceptHandshake runs the responder handshake on conn (read through r),
// records the formats the initiator speaks, and logs and keeps a format
// conflict.
func (n *Node) acceptHandshake(r io.Reader, conn net.Conn, hello func() error) (accepted, error) {
	acc, err := serverHandshake(r, conn, n.streamPSKs(), n.prologue, n.self.ID, n.cfg.Formats, hello)
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Addr = remoteAddr(conn)
		n.formatRefused(fe)
	}
	if err == nil {
		n.setPeerFormats(acc.id, acc.formats)
	}
	return acc, err
}

// forgetPeerFormats forgets a peer that is gone.
func (n *Node) forgetPeerFormats(id string) {
	n.fmtMu.Lock()
	delete(n.peerFmt, id)
	n.fmtMu.Unlock()
}

// remoteAddr is conn's remote address, or "" without one.
func remoteAddr(conn net.Conn) string {
	if a := conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
