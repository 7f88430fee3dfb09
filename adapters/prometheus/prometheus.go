// Package prometheus exposes a peersession Store's figures to Prometheus:
// a prometheus.Collector that reads Store.Stats and Store.Members at each
// scrape, so it costs nothing between scrapes.
//
//	reg.MustRegister(psprom.New(store))
//
// (imported as psprom beside client_golang's prometheus package). The
// metrics are listed, with their types, labels and meaning, in
// adapters/README.md. To tell several stores in one process apart, register
// each through prometheus.WrapRegistererWith with a label of your own.
//
// Per-peer counters start again from zero when a peer reconnects (its
// replication state is new); rate() and increase() allow for that.
package prometheus

import (
	"time"

	"github.com/peersession/peersession"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector of one peersession Store's figures.
// It is safe for concurrent use, as prometheus requires.
type Collector struct {
	st *peersession.Store
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector of st's figures.
func New(st *peersession.Store) *Collector { return &Collector{st: st} }

type (
	stats     = peersession.Stats
	replStats = *peersession.ReplicationStats
	peerStats = peersession.PeerStats
)

// metric is one exported metric, its value read from figures of type T.
type metric[T any] struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(T) float64
}

func newMetric[T any](name string, typ prometheus.ValueType, help string, value func(T) float64, labels ...string) metric[T] {
	return metric[T]{desc: prometheus.NewDesc("peersession_"+name, help, labels, nil), typ: typ, value: value}
}

// send sends the metric's value in figures f.
func (m metric[T]) send(ch chan<- prometheus.Metric, f T, labels ...string) {
	ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(f), labels...)
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// memberStates are the states a member can be in, each always exported
// so that the series do not come and go.
var memberStates = []string{"alive", "suspect", "dead", "left"}

// The metrics, in the order Describe gives them. Keep adapters/README.md's
// table in step: a test checks it.
var (
	storeMetrics = []metric[stats]{
		newMetric("sessions", gauge, "Sessions held by this node, including expired ones not yet swept.",
			func(s stats) float64 { return float64(s.Sessions) }),
		newMetric("session_bytes", gauge, "Bytes of keys and values of the sessions held by this node, and 64 a key.",
			func(s stats) float64 { return float64(s.Bytes) }),
		newMetric("tombstones", gauge, "Marks of ended sessions held by this node (Config.MaxTombstones bounds them).",
			func(s stats) float64 { return float64(s.Tombstones) }),
		newMetric("tombstones_dropped_total", counter, "Tombstones dropped early at Config.MaxTombstones.",
			func(s stats) float64 { return float64(s.TombstonesDropped) }),
		newMetric("sessions_created_total", counter, "Sessions created on this node (and, with NotifyOnReplication, on its peers).",
			func(s stats) float64 { return float64(s.Created) }),
		newMetric("sessions_destroyed_total", counter, "Sessions ended by Destroy, RenewID or DestroyPrincipal.",
			func(s stats) float64 { return float64(s.Destroyed) }),
		newMetric("sessions_expired_total", counter, "Sessions swept after expiring.",
			func(s stats) float64 { return float64(s.Expired) }),
		newMetric("commit_errors_total", counter, "Commits that failed: too large, store full, Sync timeout, ended meanwhile.",
			func(s stats) float64 { return float64(s.CommitErrors) }),
		newMetric("late_cookies_total", counter, "Commits after the response headers went out whose new ID or stamp could not reach the client.",
			func(s stats) float64 { return float64(s.LateCookies) }),
		newMetric("fetches_total", counter, "Peer fetches for sessions unknown or stale on this node (read-your-writes).",
			func(s stats) float64 { return float64(s.Fetches) }),
		newMetric("fetch_hits_total", counter, "Peer fetches that found a newer copy.",
			func(s stats) float64 { return float64(s.FetchHits) }),
		newMetric("fetch_waits_total", counter, "Reads of sessions stale on this node that first waited briefly for the change to arrive by replication.",
			func(s stats) float64 { return float64(s.FetchWaits) }),
		newMetric("fetch_wait_hits_total", counter, "Such waits the change reached in time: reads served without a peer fetch.",
			func(s stats) float64 { return float64(s.FetchWaitHits) }),
		newMetric("stamps_rejected_total", counter, "Version stamps clients presented that were ignored (no valid MAC, or over a minute ahead): read from this node's copy, no fetch.",
			func(s stats) float64 { return float64(s.StampsRejected) }),
		newMetric("fetches_merged_total", counter, "Reads that waited for another read's fetch of the same session instead of sending their own.",
			func(s stats) float64 { return float64(s.FetchesMerged) }),
		newMetric("fetch_misses_cached_total", counter, "Reads that sent no fetch because one found the session on no peer in the last 2 s.",
			func(s stats) float64 { return float64(s.FetchMissesCached) }),
		newMetric("fetches_shed_total", counter, "Reads that sent no fetch because 32 were already under way on this node: served this node's copy.",
			func(s stats) float64 { return float64(s.FetchesShed) }),
		newMetric("refused_total", counter, "Changes from peers the store refused (expired, over a limit).",
			func(s stats) float64 { return float64(s.Refused) }),
		newMetric("peer_waits_late_total", counter, "Saves under WaitForPeers (scsstore's commits) that returned, in Async mode, before every live peer held the change.",
			func(s stats) float64 { return float64(s.PeerWaitsLate) }),
	}

	// mMembers is sent once for each of memberStates, with its count.
	mMembers = newMetric("members", gauge, "Cluster members this node knows, itself included, by state.",
		func(n int) float64 { return float64(n) }, "state")

	replMetrics = []metric[replStats]{
		newMetric("replication_applied_total", counter, "Records from peers this node's store accepted (batches, repairs, state transfer).",
			func(r replStats) float64 { return float64(r.Applied) }),
		newMetric("replication_rejected_total", counter, "Frames from peers dropped as malformed or hostile.",
			func(r replStats) float64 { return float64(r.Rejected) }),
		newMetric("replication_repairs_total", counter, "Records anti-entropy sent to repair a peer.",
			func(r replStats) float64 { return float64(r.Repairs) }),
		newMetric("replication_transfers_total", counter, "Join-time full state transfers (the whole state) this node served.",
			func(r replStats) float64 { return float64(r.Transfers) }),
		newMetric("replication_delta_transfers_total", counter, "Join-time delta transfers (the sessions differing from a joining node's digest) this node served.",
			func(r replStats) float64 { return float64(r.DeltaTransfers) }),
		newMetric("replication_transfer_retries_total", counter, "State transfer requests this node sent again while joining, to a peer that had sent it nothing for a while (a request or answer lost, or declined by a busy peer).",
			func(r replStats) float64 { return float64(r.TransferRetries) }),
		newMetric("state_transfer_seconds", gauge, "How long this node's join-time state transfer took (0 until it ended).",
			func(r replStats) float64 { return r.TransferDuration.Seconds() }),
		newMetric("replication_dropped_total", counter, "Changes dropped for any peer (queue full, or queued when it died); anti-entropy repairs them.",
			func(r replStats) float64 { return float64(r.Dropped) }),
		newMetric("replication_fetch_timeouts_total", counter, "Peers a fetch waited for until FetchTimeout without an answer (then not waited for until they send again).",
			func(r replStats) float64 { return float64(r.FetchTimeouts) }),
		newMetric("replication_fetch_skips_total", counter, "Peers a fetch did not wait for: their stream was reset or closed, sends to them failed, or they left a fetch unanswered.",
			func(r replStats) float64 { return float64(r.FetchSkips) }),
		newMetric("replication_fetches_served_total", counter, "Fetches this node answered for its peers.",
			func(r replStats) float64 { return float64(r.FetchesServed) }),
		newMetric("replication_under_replicated", gauge, "Partitioned mode: sessions this node moves to a holder (after a membership change, or a stray) that the holder has yet to acknowledge; always 0 in full replication.",
			func(r replStats) float64 { return float64(r.UnderReplicated) }),
		newMetric("replication_rebalances_total", counter, "Partitioned mode: membership changes after which this node moved sessions to their new holders.",
			func(r replStats) float64 { return float64(r.Rebalances) }),
		newMetric("replication_strays", gauge, "Partitioned mode: copies of sessions this node does not hold, waiting to be handed over to their holders.",
			func(r replStats) float64 { return float64(r.Strays) }),
		newMetric("replication_strays_dropped_total", counter, "Partitioned mode: stray copies dropped once every holder acknowledged them.",
			func(r replStats) float64 { return float64(r.StraysDropped) }),
		newMetric("replication_stand_ins_total", counter, "Partitioned mode: Sync writes whose holders had not acknowledged within half of SyncTimeout, sent to other nodes standing in for them.",
			func(r replStats) float64 { return float64(r.StandIns) }),
		newMetric("clock_fenced", gauge, "1 while this node refuses writes (ErrClockSkew) because its clock is more than a minute from most of its peers', else 0.",
			func(r replStats) float64 { return b2f(r.ClockFenced) }),
	}

	peerMetrics = []metric[peerStats]{
		newMetric("peer_queue_depth", gauge, "Changes waiting to be sent to the peer.",
			func(p peerStats) float64 { return float64(p.Queued) }, "peer"),
		newMetric("peer_sent_total", counter, "Changes sent to the peer.",
			func(p peerStats) float64 { return float64(p.Sent) }, "peer"),
		newMetric("peer_batches_total", counter, "Frames (batches of changes) sent to the peer, resends excluded.",
			func(p peerStats) float64 { return float64(p.Batches) }, "peer"),
		newMetric("peer_acked_total", counter, "Changes the peer acknowledged as applied.",
			func(p peerStats) float64 { return float64(p.Acked) }, "peer"),
		newMetric("peer_refused_total", counter, "Changes the peer reported it refused (its store full, the session expired there, or its clock behind).",
			func(p peerStats) float64 { return float64(p.Refused) }, "peer"),
		newMetric("peer_send_failures_total", counter, "Sends to the peer that failed (each is retried).",
			func(p peerStats) float64 { return float64(p.Failed) }, "peer"),
		newMetric("peer_dropped_total", counter, "Changes dropped for the peer.",
			func(p peerStats) float64 { return float64(p.Dropped) }, "peer"),
		newMetric("peer_retries_total", counter, "Batches sent to the peer again after an acknowledgement timeout.",
			func(p peerStats) float64 { return float64(p.Retries) }, "peer"),
		newMetric("peer_ack_lag_seconds", gauge, "Send-to-acknowledgement time of the peer's last acknowledged batch.",
			func(p peerStats) float64 { return p.AckLag.Seconds() }, "peer"),
		newMetric("peer_unresponsive", gauge, "1 while fetches do not wait for the peer (its stream was lost, sends to it fail, or it left a fetch unanswered, and it has sent nothing since), else 0.",
			func(p peerStats) float64 { return b2f(p.Unresponsive) }, "peer"),
		newMetric("peer_clock_offset_seconds", gauge, "How far the peer's clock is ahead of this node's (negative: behind), as last measured on the failure detector's pings; 0 while not measured.",
			func(p peerStats) float64 { return p.ClockOffset.Seconds() }, "peer"),
	}

	// mLastAck is sent only for a peer that has acknowledged.
	mLastAck = newMetric("peer_last_ack_timestamp_seconds", gauge, "When the peer's last acknowledgement arrived (Unix time); absent before the first.",
		func(p peerStats) float64 { return float64(p.LastAck.UnixNano()) / float64(time.Second) }, "peer")
)

// b2f is 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Describe sends the descriptors of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range storeMetrics {
		ch <- m.desc
	}
	ch <- mMembers.desc
	for _, m := range replMetrics {
		ch <- m.desc
	}
	for _, m := range peerMetrics {
		ch <- m.desc
	}
	ch <- mLastAck.desc
}

// Collect reads the store's figures and sends them. The members and
// replication metrics appear only on a clustered store, and the per-peer
// ones for each live peer.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Stats()
	for _, m := range storeMetrics {
		m.send(ch, s)
	}

	r := s.Replication
	if r == nil {
		return // a single node
	}
	states := make(map[string]int, len(memberStates))
	for _, m := range c.st.Members() {
		states[m.State]++
	}
	for _, st := range memberStates {
		mMembers.send(ch, states[st], st)
	}
	for _, m := range replMetrics {
		m.send(ch, r)
	}
	for peer, p := range r.Peers {
		for _, m := range peerMetrics {
			m.send(ch, p, peer)
		}
		if !p.LastAck.IsZero() {
			mLastAck.send(ch, p, peer)
		}
	}
}
