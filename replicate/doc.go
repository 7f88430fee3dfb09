// Package replicate is peersession's replication protocol and engine.
//
// It defines the wire messages and their validated msgpack codec, the hybrid
// logical clock that versions every write, the pure merge rules that make
// replicas converge, and the engine that queues changes per peer, batches
// them, collects acknowledgements, transfers state to a joining node and runs
// anti-entropy.
//
// A joining node's state transfer (Engine.Sync) costs one full copy of the
// state: one peer sends all of it, then every other peer only its records
// in the digest buckets where it differs from the joining node, which is
// what the first peer had not received yet (transfer.go).
//
// The package imports neither the root package nor cluster/. It talks to the
// network through the Network interface and to the session store through the
// Store interface, both defined here where they are used.
//
// # Data model
//
// A session's replicated state is a Record. A Record is a join-semilattice
// element (a state-based CRDT): Merge is commutative, associative and
// idempotent, so a change (a delta: a Record holding only the keys that
// changed) can be delivered any number of times, in any order, and every
// replica that has seen the same set of changes holds the same Record.
package replicate
