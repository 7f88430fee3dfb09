package peersession

import "sync/atomic"

// counters are the store's running totals.
type counters struct {
	created, destroyed, expired atomic.Int64
	commitErrors, lateCookies   atomic.Int64
	fetches, fetchHits          atomic.Int64
	refused                     atomic.Int64
}

// Stats is a snapshot of a store's figures.
type Stats struct {
	Sessions int   // sessions held, including expired ones not yet swept
	Bytes    int64 // their keys and values
	Created  int64 // sessions created on this node (and, with NotifyOnReplication, its peers)
	// Destroyed counts sessions ended by Destroy, RenewID or DestroyPrincipal.
	Destroyed int64
	Expired   int64 // sessions swept after expiring
	// CommitErrors counts commits that failed (too large, store full,
	// Sync timeout, ended meanwhile).
	CommitErrors int64
	// LateCookies counts commits after the response headers went out
	// whose new ID or stamp could not reach the client.
	LateCookies int64
	// Fetches counts peer fetches for sessions unknown or stale here
	// (read-your-writes); FetchHits those that found a newer copy.
	Fetches, FetchHits int64
	// Refused counts remote changes the store refused (expired, over a
	// limit).
	Refused int64
	// Replication holds the replication figures; nil on a single node.
	Replication *ReplicationStats
}

// Stats returns the store's current figures.
func (st *Store) Stats() Stats {
	s := Stats{
		Sessions:     st.Len(),
		Bytes:        st.bytes.Load(),
		Created:      st.stats.created.Load(),
		Destroyed:    st.stats.destroyed.Load(),
		Expired:      st.stats.expired.Load(),
		CommitErrors: st.stats.commitErrors.Load(),
		LateCookies:  st.stats.lateCookies.Load(),
		Fetches:      st.stats.fetches.Load(),
		FetchHits:    st.stats.fetchHits.Load(),
		Refused:      st.stats.refused.Load(),
	}
	if st.repl != nil {
		rs := st.repl.stats()
		s.Replication = &rs
	}
	return s
}
