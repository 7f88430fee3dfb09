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

// metric describes one exported metric.
type metric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newMetric(name, help string, typ prometheus.ValueType, labels ...string) metric {
	return metric{desc: prometheus.NewDesc("peersession_"+name, help, labels, nil), typ: typ}
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// memberStates are the states a member can be in, each always exported
// so that the series do not come and go.
var memberStates = []string{"alive", "suspect", "dead", "left"}

// The metrics. Keep adapters/README.md's table in step: a test checks it.
var (
	mSessions  = newMetric("sessions", "Sessions held by this node, including expired ones not yet swept.", gauge)
	mBytes     = newMetric("session_bytes", "Bytes of keys and values of the sessions held by this node.", gauge)
	mCreated   = newMetric("sessions_created_total", "Sessions created on this node (and, with NotifyOnReplication, on its peers).", counter)
	mDestroyed = newMetric("sessions_destroyed_total", "Sessions ended by Destroy, RenewID or DestroyPrincipal.", counter)
	mExpired   = newMetric("sessions_expired_total", "Sessions swept after expiring.", counter)
	mCommitErr = newMetric("commit_errors_total", "Commits that failed: too large, store full, Sync timeout, ended meanwhile.", counter)
	mLate      = newMetric("late_cookies_total", "Commits after the response headers went out whose new ID or stamp could not reach the client.", counter)
	mFetches   = newMetric("fetches_total", "Peer fetches for sessions unknown or stale on this node (read-your-writes).", counter)
	mFetchHits = newMetric("fetch_hits_total", "Peer fetches that found a newer copy.", counter)
	mRefused   = newMetric("refused_total", "Changes from peers the store refused (expired, over a limit).", counter)

	mMembers = newMetric("members", "Cluster members this node knows, itself included, by state.", gauge, "state")

	mApplied   = newMetric("replication_applied_total", "Records from peers this node's store accepted (batches, repairs, state transfer).", counter)
	mRejected  = newMetric("replication_rejected_total", "Frames from peers dropped as malformed or hostile.", counter)
	mRepairs   = newMetric("replication_repairs_total", "Records anti-entropy sent to repair a peer.", counter)
	mTransfers = newMetric("replication_transfers_total", "Join-time full state transfers (the whole state) this node served.", counter)
	mDeltas    = newMetric("replication_delta_transfers_total", "Join-time delta transfers (the sessions differing from a joining node's digest) this node served.", counter)
	mTransferDur   = newMetric("state_transfer_seconds", "How long this node's join-time state transfer took (0 until it ended).", gauge)
	mDropped   = newMetric("replication_dropped_total", "Changes dropped for any peer (queue full, or queued when it died); anti-entropy repairs them.", counter)

	mQueue    = newMetric("peer_queue_depth", "Changes waiting to be sent to the peer.", gauge, "peer")
	mSent     = newMetric("peer_sent_total", "Changes sent to the peer.", counter, "peer")
	mBatches  = newMetric("peer_batches_total", "Frames (batches of changes) sent to the peer, resends excluded.", counter, "peer")
	mAcked    = newMetric("peer_acked_total", "Changes the peer acknowledged as applied.", counter, "peer")
	mPRefused = newMetric("peer_refused_total", "Changes the peer reported it refused (its store full, the session expired there, or its clock behind).", counter, "peer")
	mFailed   = newMetric("peer_send_failures_total", "Sends to the peer that failed (each is retried).", counter, "peer")
	mPDropped = newMetric("peer_dropped_total", "Changes dropped for the peer.", counter, "peer")
	mRetries  = newMetric("peer_retries_total", "Batches sent to the peer again after an acknowledgement timeout.", counter, "peer")
	mAckLag   = newMetric("peer_ack_lag_seconds", "Send-to-acknowledgement time of the peer's last acknowledged batch.", gauge, "peer")
	mLastAck  = newMetric("peer_last_ack_timestamp_seconds", "When the peer's last acknowledgement arrived (Unix time); absent before the first.", gauge, "peer")
)

var allMetrics = []metric{
	mSessions, mBytes, mCreated, mDestroyed, mExpired, mCommitErr, mLate, mFetches, mFetchHits, mRefused,
	mMembers,
	mApplied, mRejected, mRepairs, mTransfers, mDeltas, mTransferDur, mDropped,
	mQueue, mSent, mBatches, mAcked, mPRefused, mFailed, mPDropped, mRetries, mAckLag, mLastAck,
}

// Describe sends the descriptors of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range allMetrics {
		ch <- m.desc
	}
}

// Collect reads the store's figures and sends them. The members and
// replication metrics appear only on a clustered store, and the per-peer
// ones for each live peer.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	send := func(m metric, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, labels...)
	}
	s := c.st.Stats()
	send(mSessions, float64(s.Sessions))
	send(mBytes, float64(s.Bytes))
	send(mCreated, float64(s.Created))
	send(mDestroyed, float64(s.Destroyed))
	send(mExpired, float64(s.Expired))
	send(mCommitErr, float64(s.CommitErrors))
	send(mLate, float64(s.LateCookies))
	send(mFetches, float64(s.Fetches))
	send(mFetchHits, float64(s.FetchHits))
	send(mRefused, float64(s.Refused))

	r := s.Replication
	if r == nil {
		return // a single node
	}
	states := make(map[string]int, len(memberStates))
	for _, m := range c.st.Members() {
		states[m.State]++
	}
	for _, st := range memberStates {
		send(mMembers, float64(states[st]), st)
	}
	send(mApplied, float64(r.Applied))
	send(mRejected, float64(r.Rejected))
	send(mRepairs, float64(r.Repairs))
	send(mTransfers, float64(r.Transfers))
	send(mDeltas, float64(r.DeltaTransfers))
	send(mTransferDur, r.TransferDuration.Seconds())
	send(mDropped, float64(r.Dropped))
	for peer, p := range r.Peers {
		send(mQueue, float64(p.Queued), peer)
		send(mSent, float64(p.Sent), peer)
		send(mBatches, float64(p.Batches), peer)
		send(mAcked, float64(p.Acked), peer)
		send(mPRefused, float64(p.Refused), peer)
		send(mFailed, float64(p.Failed), peer)
		send(mPDropped, float64(p.Dropped), peer)
		send(mRetries, float64(p.Retries), peer)
		send(mAckLag, p.AckLag.Seconds(), peer)
		if !p.LastAck.IsZero() {
			send(mLastAck, float64(p.LastAck.UnixNano())/float64(time.Second), peer)
		}
	}
}
