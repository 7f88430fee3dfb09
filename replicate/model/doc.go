// Package model is the replicated session data model shared by
// peersession's store and its replication engine: versions (a hybrid
// logical clock), records, and the pure rules that merge them.
//
// A session's replicated state is a Record. A Record is a join-semilattice
// element (a state-based CRDT): Merge is commutative, associative and
// idempotent, so a change (a delta: a Record holding only the keys that
// changed) can be delivered any number of times, in any order, and every
// replica that has seen the same set of changes holds the same Record.
//
// The package has no dependencies beyond the standard library; the wire
// form of its types belongs to package wire.
package model
