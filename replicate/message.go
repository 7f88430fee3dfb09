package replicate

// FormatVersion is the wire format version, the first byte of every frame.
// A frame with another version is rejected.
const FormatVersion byte = 1

// MsgType is the second byte of every frame: what the msgpack body holds.
//
// The wire format is permanent: ONLY APPEND TO THIS LIST, never renumber.
type MsgType byte

const (
	MsgBatch       MsgType = 1 // Batch: changes to apply, then Ack
	MsgAck         MsgType = 2 // Ack: a Batch was applied
	MsgSyncRequest MsgType = 3 // SyncRequest: send me all your state
	MsgSyncChunk   MsgType = 4 // SyncChunk: part of a state transfer
	MsgDigest      MsgType = 5 // Digest: anti-entropy bucket hashes
	MsgBuckets     MsgType = 6 // Buckets: send me your records in these buckets
	MsgFetch       MsgType = 7 // Fetch: send me this one session
	MsgFetchReply  MsgType = 8 // FetchReply: the answer to a Fetch
)

// String returns the message type's name, for logs and errors.
func (t MsgType) String() string {
	switch t {
	case MsgBatch:
		return "batch"
	case MsgAck:
		return "ack"
	case MsgSyncRequest:
		return "sync-request"
	case MsgSyncChunk:
		return "sync-chunk"
	case MsgDigest:
		return "digest"
	case MsgBuckets:
		return "buckets"
	case MsgFetch:
		return "fetch"
	case MsgFetchReply:
		return "fetch-reply"
	}
	return "unknown"
}

// Batch carries changes from one node to a peer. The receiver applies every
// record, then answers with an Ack carrying the same Seq.
type Batch struct {
	Seq     uint64   `msgpack:"s"`
	Records []Record `msgpack:"r"`
}

// Ack acknowledges that the Batch with this Seq was applied.
type Ack struct {
	Seq uint64 `msgpack:"s"`
}

// SyncRequest asks a peer for its whole state (a join-time state transfer).
type SyncRequest struct {
	Req uint64 `msgpack:"q"`
}

// SyncChunk is one part of a state transfer answering SyncRequest Req. The
// last chunk has Done set.
type SyncChunk struct {
	Req     uint64   `msgpack:"q"`
	Records []Record `msgpack:"r"`
	Done    bool     `msgpack:"d"`
}

// Digest summarises a node's state for anti-entropy: one hash per bucket of
// session IDs. Len(Buckets) is DigestBuckets.
type Digest struct {
	Buckets []uint64 `msgpack:"b"`
}

// Buckets asks a peer to send (as Batches) its records in these buckets.
type Buckets struct {
	Buckets []uint32 `msgpack:"b"`
}

// Fetch asks a peer for one session, for read-your-writes.
type Fetch struct {
	Req uint64 `msgpack:"q"`
	ID  string `msgpack:"i"`
}

// FetchReply answers Fetch Req; Found is false when the peer has no record.
type FetchReply struct {
	Req    uint64 `msgpack:"q"`
	Found  bool   `msgpack:"f"`
	Record Record `msgpack:"r"`
}
