package wire

// The wire formats this build reads and writes: the range a node
// announces to its peers in the stream handshake (cluster.Config.Formats),
// which refuses a peer whose range does not overlap it.
//
// Format 1 is every frame this package writes today, FormatVersion first:
// the messages and fields held by the golden frames in testdata/golden,
// the Ack's Refused count ("f") included. The previous release (the
// commit in examples/twonode/testdata/previous-release) reads all of it,
// Refused too: its nodes count a Batch with refusals as not acknowledged,
// as this build does. Nodes announce no range before this build; a peer
// that announces none speaks format 1.
//
// How the format may change (ONLY THIS WAY):
//   - A field whose absence means its zero value, and which older nodes
//     may ignore without breaking a guarantee, may be added to a message
//     within the format: the decoder skips the fields it does not know.
//   - Anything else (a field whose meaning an older node would get wrong
//     by ignoring it, a new message type an older node must answer, a new
//     encoding) is a new format: FormatNewest goes up, and the engine
//     writes it only to peers whose PeerFormat is that high, keeping the
//     older form for the others, until a later release raises
//     FormatOldest and drops it. Each release speaks its predecessor's
//     newest format, so that a rolling upgrade never meets a pair of nodes
//     with no format in common.
//
// Format 2 is format 1 and two message types: EndPrincipal and
// PrincipalEnded, which partitioned mode (the root's ClusterConfig.Copies)
// needs for DestroyPrincipal. Its frames keep FormatVersion (1) as their
// first byte: the header is unchanged, every format-1 frame is a format-2
// frame (the golden frames of format 1 are written byte for byte as
// before), and a format-1 node rejects the new types as unknown, which is
// why they go only to peers whose format is 2 or more. A node in
// partitioned mode never has a format-1 peer: an older release is refused
// by the Copies check in node metadata (cluster.ErrCopiesDiffer), and a
// partitioned node announces FormatPartitioned..FormatNewest in its
// stream handshakes, so a node that reads only format 1 finds no format
// in common with it (cluster.ErrFormatsDiffer).
const (
	// FormatOldest is the oldest format this build still reads and writes.
	FormatOldest = int(FormatVersion)
	// FormatNewest is the newest format this build reads and writes.
	FormatNewest = 2
	// FormatPartitioned is the oldest format a node in partitioned mode
	// speaks: it announces FormatPartitioned..FormatNewest in its stream
	// handshakes, so that a peer reading only format 1 is refused, both
	// ways, with an error naming both ranges.
	FormatPartitioned = 2
)
