package peersession

import "time"

// Event describes a session's creation or end, passed to Config.OnCreate,
// OnDestroy and OnExpire.
//
// Each session gets at most one OnCreate and at most one of OnDestroy and
// OnExpire per node. Callbacks for different sessions may run concurrently;
// a callback runs on the goroutine that made the change (a request, the
// sweeper, or a replication reader) after the change is applied and with no
// lock held, so it may call the Store. Keep it short: it delays that
// goroutine.
type Event struct {
	// ID is the session's store ID (a hash of its token, safe to log).
	ID string
	// Principal is the user the session was tagged with, if any.
	Principal string
	// Created is when the session was created.
	Created time.Time
	// Remote is true when the change arrived from a peer (only with
	// Config.NotifyOnReplication).
	Remote bool
}
