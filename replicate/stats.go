package replicate

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of an Engine's counters. Counters only grow; a peer
// that goes down takes its PeerStats with it (its drops stay in Dropped).
type Stats struct {
	// Peers holds each live peer's figures by peer ID.
	Peers map[string]PeerStats
	// Applied counts remote records the store accepted (batches, repairs
	// and state-transfer chunks alike); Refused those it refused.
	Applied, Refused uint64
	// Rejected counts frames that failed to decode or validate.
	Rejected uint64
	// Skewed counts remote records refused because a version in them was
	// more than Config.MaxClockSkew ahead of this node's wall clock (not
	// counted in Refused), and fetched records ignored for the same reason.
	Skewed uint64
	// Repairs counts records anti-entropy queued for a peer.
	Repairs uint64
	// Heals counts anti-entropy rounds run at once with a peer that came
	// up (back from a partition, or restarted) rather than at the next
	// random round.
	Heals uint64
	// Transfers counts full state transfers (TransferRequests without a
	// digest) this node completed serving; DeltaTransfers counts delta
	// transfers (TransferRequests with one), which a joining node asks of
	// every peer but the one that sent it everything.
	Transfers, DeltaTransfers uint64
	// TransferRetries counts state transfer requests this node sent again
	// while joining, to a peer that had sent nothing for
	// Config.TransferRetry (see Transfer).
	TransferRetries uint64
	// Dropped counts changes dropped for any peer, live or gone: queue
	// full, queued when the peer went down, or not encodable.
	Dropped uint64
	// FetchTimeouts counts peers a Fetch gave up on at its deadline, each
	// not waited for again until it sends a frame; FetchSkips counts peers
	// a Fetch did not wait for because they did not answer (see reach.go);
	// FetchesServed counts Fetch requests this node answered for peers.
	FetchTimeouts, FetchSkips, FetchesServed uint64
}

// PeerStats are one peer's figures.
type PeerStats struct {
	// Queued is the number of sessions waiting in the queue now.
	Queued int
	// Sent counts records sent in batches, and Batches the batches (first
	// sends; resends are Retries). A session sent in parts (over
	// DefaultLimits' keys or bytes per record) counts once per part,
	// here and in Acked and Refused.
	Sent, Batches uint64
	// Acked counts records in acknowledged batches that the peer applied;
	// Refused those it reported it did not (refused by its store, or for
	// clock skew: the peer's Refused and Skewed count them).
	Acked, Refused uint64
	// Failed counts Network.Send errors (each retried).
	Failed uint64
	// Dropped counts changes for this peer that were dropped.
	Dropped uint64
	// Retries counts batches sent again after AckTimeout.
	Retries uint64
	// LastAck is when the last ack arrived; zero if none did.
	LastAck time.Time
	// AckLag is the time from the last (re)send of the last acknowledged
	// batch to its ack.
	AckLag time.Duration
	// Format is the wire format the peer reads (see FormatNetwork), or 0
	// while it is not known: no stream with the peer has opened yet, or
	// the Network does not tell.
	Format int
	// Unresponsive is set while Fetch does not wait for the peer: its
	// stream was lost, sends to it fail, or it left a fetch unanswered,
	// and it has sent nothing since (see reach.go).
	Unresponsive bool
}

// engineCounters are the Engine's totals.
type engineCounters struct {
	applied, refused, rejected, skewed, repairs, transfers, deltaTransfers, dropped atomic.Uint64
	fetchTimeouts, fetchSkips, fetchesServed                                        atomic.Uint64
	heals, transferRetries                                                          atomic.Uint64
}

// peerCounters are a peer's counters.
type peerCounters struct {
	sent, batches, acked, refused, failed, dropped, retries atomic.Uint64

	mu      sync.Mutex // guards lastAck and ackLag
	lastAck time.Time
	ackLag  time.Duration
}

func (c *peerCounters) setAck(at time.Time, lag time.Duration) {
	c.mu.Lock()
	c.lastAck, c.ackLag = at, lag
	c.mu.Unlock()
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	live, _ := e.livePeers()
	s := Stats{
		Peers:           make(map[string]PeerStats, len(live)),
		Applied:         e.st.applied.Load(),
		Refused:         e.st.refused.Load(),
		Rejected:        e.st.rejected.Load(),
		Skewed:          e.st.skewed.Load(),
		Repairs:         e.st.repairs.Load(),
		Heals:           e.st.heals.Load(),
		Transfers:       e.st.transfers.Load(),
		Dropped:         e.st.dropped.Load(),
		DeltaTransfers:  e.st.deltaTransfers.Load(),
		TransferRetries: e.st.transferRetries.Load(),
		FetchTimeouts:   e.st.fetchTimeouts.Load(),
		FetchSkips:      e.st.fetchSkips.Load(),
		FetchesServed:   e.st.fetchesServed.Load(),
	}
	for _, p := range live {
		queued := p.queue.len()
		c := &p.counters
		c.mu.Lock()
		lastAck, ackLag := c.lastAck, c.ackLag
		c.mu.Unlock()
		s.Peers[p.id] = PeerStats{
			Queued:  queued,
			Sent:    c.sent.Load(),
			Batches: c.batches.Load(),
			Acked:   c.acked.Load(),
			Refused: c.refused.Load(),
			Failed:  c.failed.Load(),
			Dropped: c.dropped.Load(),
			Retries: c.retries.Load(),
			LastAck: lastAck,
			AckLag:  ackLag,

			Format:       e.peerFormat(p.id),
			Unresponsive: !p.reach.answers(),
		}
	}
	return s
}

// peerFormat is the wire format peer reads, 0 if not known (see
// FormatNetwork).
func (e *Engine) peerFormat(peer string) int {
	fn, ok := e.cfg.Network.(FormatNetwork)
	if !ok {
		return 0
	}
	if f, known := fn.PeerFormat(peer); known {
		return f
	}
	return 0
}
