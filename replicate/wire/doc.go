// Package wire is the replication protocol's wire format: the messages
// peers exchange and their msgpack codec.
//
// A frame is a format version byte, a message type byte and the msgpack
// body of the message (see FormatVersion and MsgType; both are permanent,
// and message types are append-only). Decoding validates before it
// allocates: a frame's structure is checked against Limits first, so a
// hostile frame costs at most a pass over its bytes. The frames a node
// sends most (Batch, TransferChunk, Ack, FetchReply) are written by a
// hand-written appender and read by a hand-written reader; the tests hold
// both to the bytes msgpack's reflection writes for the same structs.
package wire
