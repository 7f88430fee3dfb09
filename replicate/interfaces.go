package replicate

import (
	"context"

	"github.com/peersession/peersession/replicate/model"
)

// Network moves frames to peers. cluster.Node implements it.
//
// Send may be called concurrently, also for the same peer; frames to one
// peer arrive in the order their Send calls returned. Send returns once the
// frame is written to the peer's stream, which proves nothing about the peer
// having applied it: that is what Ack is for. Send keeps no reference to
// frame once it returns: the engine reuses the memory of the frames it
// sends.
type Network interface {
	Send(ctx context.Context, peer string, frame []byte) error
}

// FramesSender is a Network that also writes several frames to one peer
// at once (cluster.Node does, with one system call). A peer's sender uses
// it for the Acks and Batches waiting together, so that a busy stream
// costs a write per wake-up rather than one per frame. SendFrames has
// Send's contract for each frame, in order; on an error, some of the
// frames may have been written (the sender sends them all again: Acks
// and Batches may arrive twice).
type FramesSender interface {
	SendFrames(ctx context.Context, peer string, frames [][]byte) error
}

// FormatNetwork is what a Network may also implement to say which wire
// format a peer reads: the newest both nodes speak, learnt in the
// handshake of a stream with it (cluster.Node implements it). false means
// not known yet (no stream has opened); a peer is then taken to read
// wire.FormatOldest. The engine reports it in PeerStats.Format, and writes
// a peer nothing that format lacks (see wire.FormatNewest). PeerFormat may
// be called concurrently and must not block.
type FormatNetwork interface {
	PeerFormat(peer string) (format int, known bool)
}

// Store is the local session store the engine applies remote changes to and
// reads snapshots from. The root package's store implements it.
//
// All methods may be called concurrently with each other and with local
// writes.
type Store interface {
	// Apply merges each record into the local state. It refuses records
	// the store's policy rejects (expired, past the tombstone window,
	// over the size limit) and returns how many it refused. It may keep
	// the records' strings and their values' Data, but neither the recs
	// slice nor any record's Keys slice: the engine reuses both once
	// Apply returns (the Keys of a Batch's records share one pooled
	// array).
	Apply(recs []model.Record) (refused int)
	// Lookup returns the local record with this ID, tombstones included.
	Lookup(id string) (model.Record, bool)
	// Range calls fn with each record, tombstones included, until fn
	// returns false. fn must not call back into the Store.
	Range(fn func(model.Record) bool)
}

// Placement says which nodes hold each session in partitioned mode (the
// root's ClusterConfig.Copies), where a session is held by a few nodes
// rather than all. With one, the engine sends a change only to the peers
// that hold its session, Tickets wait only for them, anti-entropy compares
// only the sessions both sides hold, and a state transfer sends a peer only
// the sessions it holds. The root package implements it over the live
// members (replicate/placement).
//
// Holders may be called concurrently and must not block. Its answer
// changes with membership: the root moves the sessions (rebalancing) when
// it does.
type Placement interface {
	// Holders appends to dst the IDs of the live nodes (Self among them
	// if this node is one) that hold session id, and returns it.
	Holders(id string, dst []string) []string
}
