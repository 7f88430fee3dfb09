package wire

import "github.com/peersession/peersession/replicate/model"

// FormatVersion is the wire format version, the first byte of every frame.
// A frame with another version is rejected.
const FormatVersion byte = 1

// MsgType is the second byte of every frame: what the msgpack body holds.
//
// The wire format is permanent: ONLY APPEND TO THIS LIST, never renumber.
type MsgType byte

const (
	MsgBatch           MsgType = 1 // Batch: changes to apply, then Ack
	MsgAck             MsgType = 2 // Ack: a Batch was applied
	MsgTransferRequest MsgType = 3 // TransferRequest: send me all your state, or what differs from my digest
	MsgTransferChunk   MsgType = 4 // TransferChunk: part of a state transfer
	MsgDigest          MsgType = 5 // Digest: anti-entropy bucket hashes
	// MsgBuckets (6) was "send me your records in these buckets", the
	// first anti-entropy answer to a Digest; Summary replaced it. The
	// number stays reserved: a frame of type 6 is rejected as unknown.
	MsgBuckets    MsgType = 6
	MsgFetch      MsgType = 7 // Fetch: send me this one session
	MsgFetchReply MsgType = 8 // FetchReply: the answer to a Fetch
	MsgSummary    MsgType = 9 // Summary: record hashes in the buckets that differ
	// Format 2 (see FormatNewest): written only to peers that read it.
	MsgEndPrincipal   MsgType = 10 // EndPrincipal: end every session of this principal you hold
	MsgPrincipalEnded MsgType = 11 // PrincipalEnded: the answer to an EndPrincipal
)

// String returns the message type's name, for logs and errors.
func (t MsgType) String() string {
	switch t {
	case MsgBatch:
		return "batch"
	case MsgAck:
		return "ack"
	case MsgTransferRequest:
		return "transfer-request"
	case MsgTransferChunk:
		return "transfer-chunk"
	case MsgDigest:
		return "digest"
	case MsgBuckets:
		return "buckets (reserved)"
	case MsgFetch:
		return "fetch"
	case MsgFetchReply:
		return "fetch-reply"
	case MsgSummary:
		return "summary"
	case MsgEndPrincipal:
		return "end-principal"
	case MsgPrincipalEnded:
		return "principal-ended"
	}
	return "unknown"
}

// Batch carries changes from one node to a peer. The receiver applies every
// record, then answers with an Ack carrying the same Seq.
type Batch struct {
	Seq     uint64         `msgpack:"s"`
	Records []model.Record `msgpack:"r"`
}

// Ack acknowledges that the Batch with this Seq was handled. Refused is
// how many of its records the receiver did not apply: refused by its store
// (a change to a session expired there, over its size or session limits, a
// malformed value) or for a version too far in its future. The sender does
// not count the changes of a Batch with refusals as acknowledged: a Sync
// write among them fails rather than report a copy the peer does not hold.
// Refused is part of format 1 (see FormatNewest): every release reads it,
// so a receiver reports refusals to every peer; only commits before it
// was added (ad5b2b6, before any release) ignored it.
type Ack struct {
	Seq     uint64 `msgpack:"s"`
	Refused uint64 `msgpack:"f,omitempty"`
}

// TransferRequest asks a peer for state, at join time. Without Digest it asks
// for the peer's whole state (a full transfer). With Digest (the asking
// node's Digest, exactly DigestBuckets hashes) it asks only for the
// peer's records in the buckets whose hash differs from Digest's (a delta
// transfer): what the asking node, having already received a full
// transfer from another peer, may still lack. Either is answered with
// TransferChunks carrying Req, the last one Done.
//
// Digest is omitted from the wire when empty, so a full request encodes
// as it did before the field existed.
type TransferRequest struct {
	Req    uint64   `msgpack:"q"`
	Digest []uint64 `msgpack:"d,omitempty"`
}

// TransferChunk is one part of a state transfer answering TransferRequest Req. The
// last chunk has Done set.
type TransferChunk struct {
	Req     uint64         `msgpack:"q"`
	Records []model.Record `msgpack:"r"`
	Done    bool           `msgpack:"d"`
}

// Digest summarises a node's state for anti-entropy: one hash per bucket of
// session IDs. Len(Buckets) is DigestBuckets.
type Digest struct {
	Buckets []uint64 `msgpack:"b"`
}

// Fetch asks a peer for one session, for read-your-writes.
type Fetch struct {
	Req uint64 `msgpack:"q"`
	ID  string `msgpack:"i"`
}

// FetchReply answers Fetch Req; Found is false when the peer has no record.
// A record too large for one message (see AppendParts) is sent as several
// replies, each a part, More set on all but the last: the asker merges
// them and counts the peer as answered at the last.
type FetchReply struct {
	Req    uint64       `msgpack:"q"`
	Found  bool         `msgpack:"f"`
	Record model.Record `msgpack:"r"`
	More   bool         `msgpack:"m,omitempty"`
}

// Summary lists a node's records in some digest buckets, by ID and
// recordHash, so that a peer can tell which of its own records there the
// node lacks or holds another version of. A node answers a Digest whose
// buckets differ from its own with Summaries of those buckets; the peer
// pushes (as Batches) its records there that are missing from the Summary
// or whose hash differs, and, unless Reply is set, answers with its own
// Summary of the same scope, Reply set, so the node pushes what the peer
// lacks.
//
// A Summary is self-contained: it covers every ID in Buckets, or, when Lo
// or Hi is set, every ID in the single bucket Buckets[0] with Lo <= ID
// (and ID < Hi, when Hi is set). So a node may split its Summary across
// frames (by buckets, or a large bucket by ID range) and the peer handles
// each frame on its own. IDs and Hashes are parallel, in no set order.
type Summary struct {
	Buckets []uint32 `msgpack:"b"`
	Lo      string   `msgpack:"l,omitempty"`
	Hi      string   `msgpack:"u,omitempty"`
	IDs     []string `msgpack:"i"`
	Hashes  []uint64 `msgpack:"h"`
	Reply   bool     `msgpack:"r,omitempty"`
}

// EndPrincipal asks a peer to end every session tagged with Principal that
// it holds ("log out everywhere" in partitioned mode, where each node
// indexes only the sessions it holds). The peer ends them as its own
// DestroyPrincipal would (tombstones, replicated to their holders), then
// answers with PrincipalEnded carrying Req. Format 2.
type EndPrincipal struct {
	Req       uint64 `msgpack:"q"`
	Principal string `msgpack:"p"`
}

// PrincipalEnded answers EndPrincipal Req: the IDs of the sessions the peer
// ended (the asker counts each session once, however many of its holders
// ended it), or, in Err, why it could not end them all (its clock is
// fenced, say). Format 2.
type PrincipalEnded struct {
	Req uint64   `msgpack:"q"`
	IDs []string `msgpack:"i"`
	Err string   `msgpack:"e,omitempty"`
}
