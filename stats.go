package peersession

import (
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/replicate"
)

// counters are the store's running totals.
type counters struct {
	created, destroyed, expired atomic.Int64
	commitErrors, lateCookies   atomic.Int64
	fetches, fetchHits          atomic.Int64
	fetchWaits, fetchWaitHits   atomic.Int64
	refused                     atomic.Int64
	peerWaitsLate               atomic.Int64
	stampsRejected              atomic.Int64
	fetchesMerged, fetchesShed  atomic.Int64
	fetchMissesCached           atomic.Int64
	rebalances, straysDropped   atomic.Int64 // partitioned mode (rebalance.go)
	standIns                    atomic.Int64 // partitioned mode (standin.go)
}

// Stats is a snapshot of a store's figures.
type Stats struct {
	Sessions int   // sessions held, including expired ones not yet swept
	Bytes    int64 // their keys and values, and 64 bytes a key
	// Tombstones counts the marks of ended sessions held (see
	// Config.MaxTombstones); TombstonesDropped those dropped early at
	// that budget.
	Tombstones, TombstonesDropped int64
	Created                       int64 // sessions created on this node (and, with NotifyOnReplication, its peers)
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
	// FetchWaits counts reads of such sessions that first waited briefly
	// for the change to arrive by replication (a client's stamp under a
	// second old; see ClusterConfig.FetchTimeout), and FetchWaitHits
	// those it reached in time: served without a fetch. The others
	// fetched, and are counted in Fetches too.
	FetchWaits, FetchWaitHits int64
	// StampsRejected counts version stamps a client presented that a
	// clustered node ignored (the read used its own copy, without a
	// fetch): without a valid MAC (made up, or from a cookie issued before
	// stamps had one), or more than a minute ahead of its clock.
	StampsRejected int64
	// FetchesMerged counts reads that waited for another read's fetch of
	// the same session instead of sending their own; FetchMissesCached
	// reads that sent none because a fetch of the session found it
	// nowhere in the last 2 s; FetchesShed reads that sent none because
	// 32 fetches were already under way on this node (served this node's
	// copy, or no session). None of them is counted in Fetches.
	FetchesMerged, FetchMissesCached, FetchesShed int64
	// Refused counts remote changes the store refused (expired, over a
	// limit).
	Refused int64
	// PeerWaitsLate counts saves under WaitForPeers, in Async mode, that
	// returned before every live peer held the change (FetchTimeout).
	PeerWaitsLate int64
	// Replication holds the replication figures; nil on a single node.
	Replication *ReplicationStats
}

// Stats returns the store's current figures.
func (st *Store) Stats() Stats {
	s := Stats{
		Sessions:          st.Len(),
		Bytes:             st.bytes.Load(),
		Created:           st.stats.created.Load(),
		Destroyed:         st.stats.destroyed.Load(),
		Expired:           st.stats.expired.Load(),
		CommitErrors:      st.stats.commitErrors.Load(),
		LateCookies:       st.stats.lateCookies.Load(),
		Fetches:           st.stats.fetches.Load(),
		FetchHits:         st.stats.fetchHits.Load(),
		FetchWaits:        st.stats.fetchWaits.Load(),
		FetchWaitHits:     st.stats.fetchWaitHits.Load(),
		StampsRejected:    st.stats.stampsRejected.Load(),
		FetchesMerged:     st.stats.fetchesMerged.Load(),
		FetchMissesCached: st.stats.fetchMissesCached.Load(),
		FetchesShed:       st.stats.fetchesShed.Load(),
		Refused:           st.stats.refused.Load(),
		PeerWaitsLate:     st.stats.peerWaitsLate.Load(),
		Tombstones:        st.tombs.count.Load(),
		TombstonesDropped: st.tombs.dropped.Load(),
	}
	if st.repl != nil {
		rs := st.repl.stats()
		s.Replication = &rs
	}
	return s
}

// ReplicationStats are a node's replication figures.
type ReplicationStats struct {
	// Peers holds each live peer's figures, by configured name.
	Peers map[string]PeerStats `json:"peers"`
	// Applied and Refused count remote changes this node's store accepted
	// and refused; Rejected counts malformed or hostile frames dropped;
	// Skewed counts changes refused for versions too far in the future
	// (a peer's clock ahead by more than a minute).
	Applied, Refused, Rejected, Skewed uint64
	// Repairs counts records anti-entropy sent to repair a peer; Heals
	// counts anti-entropy rounds run at once with a peer that came up (a
	// partition healed, a restart).
	Repairs, Heals uint64
	// Transfers counts join-time full state transfers this node served
	// (its whole state, to a joining node that picked it as its source);
	// DeltaTransfers counts the delta transfers it served (its sessions
	// that differ from a joining node's digest, once that node had the
	// whole state from another member).
	Transfers, DeltaTransfers uint64
	// TransferRetries counts state transfer requests this node sent again
	// while joining, to a peer that had sent it nothing for 2 s (doubling):
	// a request or answer lost, or declined by a busy peer.
	TransferRetries uint64
	// Dropped counts changes dropped for a peer (queue full, or queued
	// when it died); anti-entropy repairs them.
	Dropped uint64
	// TransferDuration is how long this node's join-time state transfer took;
	// zero until it ended.
	TransferDuration time.Duration
	// FetchTimeouts counts peers a read's fetch waited for until
	// FetchTimeout without an answer: each is then not waited for again
	// until it sends something (a frozen peer costs one such wait, not one
	// per read). FetchSkips counts peers a fetch did not wait for because
	// they did not answer: their stream was reset or closed (a killed
	// process), sends to them failed, or they left a fetch unanswered
	// (PeerStats.Unresponsive). FetchesServed counts fetches this node
	// answered for its peers.
	FetchTimeouts, FetchSkips, FetchesServed uint64
	// StreamConnsRefused, HandshakeTimeouts, GossipConnsRefused and
	// GossipConnsCut count connections that the limits before
	// authentication turned away (docs/security.md, "Bounded before
	// authentication"): stream connections refused for a handshake limit
	// or dropped for a first handshake message not sent in time, gossip
	// connections refused for a connection limit or cut off for their
	// size, duration or rate.
	StreamConnsRefused, HandshakeTimeouts, GossipConnsRefused, GossipConnsCut uint64
	// ClockFenced is set while this node refuses writes with ErrClockSkew:
	// its clock differs by more than a minute from a strict majority of
	// its measured peers' (PeerStats.ClockOffset).
	ClockFenced bool
	// FramesOut and FramesIn count the frames this node sent to and
	// received from its peers' streams, BytesOut and BytesIn their bytes
	// (before encryption and framing), and StreamWrites and StreamReads the
	// system calls that carried them: the cost of replication per write.
	FramesOut, FramesIn, BytesOut, BytesIn, StreamWrites, StreamReads uint64
	// In partitioned mode (ClusterConfig.Copies): Rebalances counts the
	// membership changes after which this node moved sessions to their
	// new holders; Strays is how many copies of sessions it does not hold
	// wait to be handed over (see docs/design.md, "Partitioned mode"), and
	// StraysDropped counts those dropped once every holder acknowledged
	// them.
	Rebalances, Strays, StraysDropped int64
	// UnderReplicated is, in partitioned mode, how many sessions this
	// node has pushed, or has to push, to a holder under the current
	// membership that has not acknowledged them yet: a new holder after a
	// membership change, or a holder of a stray. Each is pushed again,
	// with a backoff, until the holder acknowledges it or no longer holds
	// it. 0 means every session this node moves is on all its holders,
	// as far as this node knows: summed over the nodes, 0 once a
	// membership change is fully repaired (see docs/design.md,
	// "Rebalancing"). A holder that refuses a session (its MaxSessions or
	// MaxBytes reached) keeps it counted.
	UnderReplicated int64
	// StandIns counts, in partitioned mode, the Sync writes whose holders
	// had not acknowledged within half of SyncTimeout and were sent to
	// other nodes standing in for them (see docs/design.md).
	StandIns int64
}

// PeerStats are the replication figures for one peer: the engine's own
// (see the fields' comments there), and its clock's offset.
type PeerStats struct {
	replicate.PeerStats
	// ClockOffset is how far the peer's wall clock is ahead of this
	// node's (negative: behind), as last measured on the failure
	// detector's pings, within half their round trip; zero while it is
	// not measured (a peer of a release that does not send its clock, or
	// none of whose pings completed lately). See ClockFenced.
	ClockOffset time.Duration
}

func (r *replication) stats() ReplicationStats {
	es := r.eng.Stats()
	names := map[string]string{}
	for _, p := range r.node.Peers() {
		names[p.ID] = p.Name
	}
	out := ReplicationStats{
		Peers:   make(map[string]PeerStats, len(es.Peers)),
		Applied: es.Applied, Refused: es.Refused, Rejected: es.Rejected, Skewed: es.Skewed,
		Repairs: es.Repairs, Heals: es.Heals, Transfers: es.Transfers, DeltaTransfers: es.DeltaTransfers, Dropped: es.Dropped,
		TransferDuration: time.Duration(r.transferDur.Load()),
		TransferRetries:  es.TransferRetries,
		FetchTimeouts:    es.FetchTimeouts, FetchSkips: es.FetchSkips, FetchesServed: es.FetchesServed,
	}
	cs := r.node.Stats()
	out.StreamConnsRefused, out.HandshakeTimeouts = cs.StreamConnsRefused, cs.HandshakeTimeouts
	out.GossipConnsRefused, out.GossipConnsCut = cs.GossipConnsRefused, cs.GossipConnsCut
	out.FramesOut, out.FramesIn, out.BytesOut, out.BytesIn = cs.FramesOut, cs.FramesIn, cs.BytesOut, cs.BytesIn
	out.StreamWrites, out.StreamReads = cs.StreamWrites, cs.StreamReads
	if r.part != nil {
		out.Rebalances, out.StraysDropped = r.st.stats.rebalances.Load(), r.st.stats.straysDropped.Load()
		out.StandIns = r.st.stats.standIns.Load()
		out.Strays = int64(r.straysWaiting())
		out.UnderReplicated = int64(r.hand.underReplicated())
	}
	offsets := r.node.ClockOffsets()
	out.ClockFenced = r.fence.current(r) != nil
	for id, p := range es.Peers {
		name := names[id]
		if name == "" {
			name = id
		}
		out.Peers[name] = PeerStats{PeerStats: p, ClockOffset: offsets[id]}
	}
	return out
}
