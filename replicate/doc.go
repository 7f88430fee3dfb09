// Package replicate is peersession's replication engine.
//
// It queues changes per peer, batches them, collects acknowledgements,
// transfers state to a joining node, fetches single sessions for
// read-your-writes and runs anti-entropy. It builds on two packages of its
// own: model (the data model: versions, records and their pure merge
// rules) and wire (the messages and their validated msgpack codec).
//
// A joining node's state transfer (Engine.Transfer) costs one full copy of
// the state: one peer sends all of it, then every other peer only its
// records in the digest buckets where it differs from the joining node,
// which is what the first peer had not received yet (transfer.go).
//
// The package imports neither the root package nor cluster/. It talks to the
// network through the Network interface and to the session store through the
// Store interface, both defined here where they are used.
package replicate
