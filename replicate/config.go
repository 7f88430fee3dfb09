package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/peersession/peersession/internal/defaults"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// Defaults for the zero Config fields.
const (
	DefaultQueueLimit          = 65536
	DefaultMaxBatchBytes       = 1 << 20
	DefaultAckTimeout          = 2 * time.Second
	DefaultAntiEntropyInterval = 30 * time.Second
	DefaultMaxTransfers        = 2
	DefaultMaxClockSkew        = time.Minute
	DefaultMaxInflight         = 4
	DefaultAckDelay            = 2 * time.Millisecond
	DefaultTransferRetry       = 2 * time.Second
)

// Config configures an Engine. Self, Network, Store and Clock are required;
// every other zero field means its default.
type Config struct {
	// Self is this node's peer ID, unique per process start.
	Self string
	// Network sends frames to peers.
	Network Network
	// Store is the local session store remote changes are applied to.
	Store Store
	// Clock is this node's clock; the engine observes every remote
	// version it applies.
	Clock *model.Clock
	// Placement, when set, says which peers hold each session
	// (partitioned mode: see Placement); nil means every peer holds every
	// session.
	Placement Placement
	// EndPrincipal ends the sessions tagged with principal that this node
	// holds, as a peer's EndPrincipal asks, and returns their IDs; nil
	// answers such requests with an error. It is called off the peer's
	// reader goroutine, and may block (on Sync acknowledgements, say).
	EndPrincipal func(ctx context.Context, principal string) (ids []string, err error)
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// QueueLimit is the most distinct sessions queued per peer; changes
	// to further sessions are dropped and counted (anti-entropy repairs
	// them). Zero means 65536.
	QueueLimit int
	// MaxBatchBytes is the approximate encoded size of one Batch or
	// TransferChunk frame. Zero means 1 MiB; at most DefaultLimits.MaxFrame/2.
	MaxBatchBytes int
	// AckTimeout is how long an unacknowledged batch waits before it is
	// sent again. Zero means 2s.
	AckTimeout time.Duration
	// MaxInflight is the most Batches sent to one peer and not yet
	// acknowledged. While the window has room a change goes out at once;
	// when it is full, changes coalesce in the queue until an Ack frees a
	// slot. 1 is stop-and-wait. Zero means 4.
	MaxInflight int
	// AckDelay is how long an Ack may wait for company: the Acks waiting
	// for a peer and the Batches the window lets out go in one write, so
	// an Ack held until the next Batch to that peer, or until another
	// Ack, saves a system call on both sides. Acks are held only while
	// fewer than MaxInflight/2 wait (so they do not hold up the peer's
	// window, if its MaxInflight is ours), and only on a node with three
	// peers or more: the calls saved grow with the peers, and a pair's
	// latency would pay for few. And only while the peer's Batches arrive
	// less than AckDelay apart: the Ack for a lone write (after a quiet
	// spell) goes at once. A writer waiting for acknowledgements under
	// load (WaitForPeers, Flush; the root sends every Ack at once in Sync
	// mode) may wait up to about the gap between the peer's Batches
	// longer. Zero means 2ms; negative sends every Ack at once.
	AckDelay time.Duration
	// AntiEntropyInterval is the mean pause between anti-entropy rounds
	// (±20% jitter). Zero means 30s; negative disables anti-entropy.
	AntiEntropyInterval time.Duration
	// MaxTransfers is the most state transfers served at once; further
	// requests wait. Zero means 2.
	MaxTransfers int
	// TransferRetry is how long a joining node's Transfer waits for a peer
	// it asked to send anything (a chunk) before asking it again: a
	// request or answer lost on a reset stream, or declined by a busy
	// peer, then holds the join for this long, not until its context
	// ends. The wait doubles at each new request, up to 4 times this.
	// Zero means 2s; it must not be negative.
	TransferRetry time.Duration
	// Nudge, if set, is called with a peer's ID each time Transfer asks
	// that peer again because it sent nothing for TransferRetry. A peer
	// that has not yet seen this node come up parks its requests until it
	// does (see PeerUp), so Nudge should make the peer learn that this
	// node is alive: the root package pushes this node's membership to it
	// (a memberlist push/pull). Nudge must not block, and may be called
	// concurrently; nil means the engine only asks again.
	Nudge func(peer string)
	// MaxClockSkew is how far ahead of this node's wall clock a remote
	// version may be. A remote record holding a later version (of a key,
	// its principal or its tombstone) is refused, counted as Skewed and
	// never observed, so one peer with a broken clock cannot drag every
	// node's clock into the future. Zero means 1m; negative disables the
	// check.
	MaxClockSkew time.Duration
}

// validate returns an error naming the first field of c that is missing
// or out of range, and what to do about it.
func (c *Config) validate() error {
	switch {
	case c.Self == "":
		return errors.New("replicate: Config.Self is empty; set it to this node's peer ID")
	case c.Network == nil:
		return errors.New("replicate: Config.Network is nil; set it to the cluster's network")
	case c.Store == nil:
		return errors.New("replicate: Config.Store is nil; set it to the local session store")
	case c.Clock == nil:
		return errors.New("replicate: Config.Clock is nil; create one with NewClock")
	case c.QueueLimit < 0, c.MaxBatchBytes < 0, c.AckTimeout < 0, c.MaxTransfers < 0, c.MaxInflight < 0, c.TransferRetry < 0:
		return errors.New("replicate: Config.QueueLimit, MaxBatchBytes, AckTimeout, MaxTransfers, MaxInflight and TransferRetry must not be negative; zero means the default")
	case c.MaxBatchBytes > wire.DefaultLimits.MaxFrame/2:
		return fmt.Errorf("replicate: Config.MaxBatchBytes %d is over %d (half the largest frame a peer accepts)",
			c.MaxBatchBytes, wire.DefaultLimits.MaxFrame/2)
	}
	return nil
}

// setDefaults replaces c's zero fields with their defaults.
func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	defaults.Set(&c.QueueLimit, DefaultQueueLimit)
	defaults.Set(&c.MaxBatchBytes, DefaultMaxBatchBytes)
	defaults.Set(&c.MaxInflight, DefaultMaxInflight)
	defaults.Set(&c.AckTimeout, DefaultAckTimeout)
	defaults.Set(&c.AntiEntropyInterval, DefaultAntiEntropyInterval)
	defaults.Set(&c.MaxTransfers, DefaultMaxTransfers)
	defaults.Set(&c.TransferRetry, DefaultTransferRetry)
	defaults.Set(&c.MaxClockSkew, DefaultMaxClockSkew)
	defaults.Set(&c.AckDelay, DefaultAckDelay)
}
