package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Node metadata wire format (permanent):
//
//	version byte (metaVersion), flags byte, uvarint len + Name, uvarint len + stream addr
//	[, uvarint Copies]
//
// Copies is written only when it is not 0, so that a node in the default
// mode advertises exactly what releases without the field do (and they
// read it). A release without the field refuses metadata with it as
// malformed: it never takes a node in partitioned mode for a peer, as it
// must not.
const (
	metaVersion     = 1
	metaFlagLeaving = 1 << 0 // set by Leave just before the memberlist leave
)

// nodeMeta is what a node advertises about itself in memberlist metadata.
type nodeMeta struct {
	Name    string
	Addr    string // replication stream host:port
	Copies  int    // Config.Copies; 0 for a node that does not send it
	Leaving bool
}

func (m nodeMeta) encode() ([]byte, error) {
	b := make([]byte, 0, 2+2*binary.MaxVarintLen16+len(m.Name)+len(m.Addr))
	var flags byte
	if m.Leaving {
		flags |= metaFlagLeaving
	}
	b = append(b, metaVersion, flags)
	b = binary.AppendUvarint(b, uint64(len(m.Name)))
	b = append(b, m.Name...)
	b = binary.AppendUvarint(b, uint64(len(m.Addr)))
	b = append(b, m.Addr...)
	if m.Copies != 0 {
		b = binary.AppendUvarint(b, uint64(m.Copies))
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: node metadata is %d bytes, memberlist allows %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

var errBadMeta = errors.New("cluster: malformed node metadata")

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) < 2 || len(b) > memberlist.MetaMaxSize {
		return m, errBadMeta
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("cluster: node metadata version %d, want %d", b[0], metaVersion)
	}
	if b[1]&^metaFlagLeaving != 0 {
		return m, fmt.Errorf("cluster: node metadata flags %#x: unknown bits; upgrade this node", b[1])
	}
	m.Leaving = b[1]&metaFlagLeaving != 0
	b = b[2:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) || k != len(binary.AppendUvarint(nil, n)) {
			return "", false // truncated, too long, or not the minimal encoding
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	m.Name, ok1 = str()
	m.Addr, ok2 = str()
	if !ok1 || !ok2 || m.Name == "" || m.Addr == "" {
		return nodeMeta{}, errBadMeta
	}
	if len(b) > 0 {
		c, k := binary.Uvarint(b)
		if k != len(b) || k != len(binary.AppendUvarint(nil, c)) || c == 0 || c > maxCopies {
			return nodeMeta{}, errBadMeta // trailing bytes, or not the minimal encoding of 1..maxCopies
		}
		m.Copies = int(c)
	}
	return m, nil
}
