package model

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Version orders writes across the cluster. It is a hybrid logical clock
// reading (Wall, Seq) plus the writing node's ID as the deterministic
// tie-break, so two different writes never compare equal.
//
// On the wire a Version is a msgpack array [wall, seq, node].
type Version struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Wall is wall-clock time in Unix nanoseconds, never behind the
	// largest Wall the clock has seen.
	Wall int64
	// Seq counts writes within one Wall value.
	Seq uint32
	// Node identifies the writer; it breaks ties between equal clocks.
	Node uint64
}

// IsZero reports whether v is the zero Version (no write).
func (v Version) IsZero() bool { return v.Wall == 0 && v.Seq == 0 && v.Node == 0 }

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o:
// by Wall, then Seq, then Node.
func (v Version) Compare(o Version) int {
	switch {
	case v.Wall != o.Wall:
		return cmp(v.Wall < o.Wall)
	case v.Seq != o.Seq:
		return cmp(v.Seq < o.Seq)
	case v.Node != o.Node:
		return cmp(v.Node < o.Node)
	}
	return 0
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}

// MaxVersion returns the newer of a and b.
func MaxVersion(a, b Version) Version {
	if a.Less(b) {
		return b
	}
	return a
}

// Clock is a hybrid logical clock. Its readings never go backwards, stay
// close to wall time, and move past every remote reading it observes, so a
// write that causally follows another always gets a larger Version.
//
// The zero Clock is not usable; create one with NewClock. It is safe for
// concurrent use.
type Clock struct {
	node  uint64
	now   func() time.Time
	trust atomic.Pointer[func(wall int64) bool] // see SetTrust; nil: every reading

	mu   sync.Mutex // guards wall and seq
	wall int64
	seq  uint32
}

// NewClock returns a clock for the node with the given ID. now is the wall
// clock; nil means time.Now.
func NewClock(node uint64, now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{node: node, now: now}
}

// Node returns the node ID stamped on this clock's versions.
func (c *Clock) Node() uint64 { return c.node }

// Wall returns the wall clock's reading (not the hybrid clock's): what a
// remote version's Wall is compared with to bound clock skew.
func (c *Clock) Wall() time.Time { return c.now() }

// SetTrust makes Now ask trust whether it may use each reading of the wall
// clock (Unix nanoseconds); a reading it does not trust is passed over, and
// the Version is ordered after the last one on the counter alone, as when
// the wall clock is behind. The root uses it to keep a write whose clock
// was stepped after the write was judged (see its clock fence) from being
// stamped in its peers' future. trust must be fast and must not call the
// Clock. nil trusts every reading.
func (c *Clock) SetTrust(trust func(wall int64) bool) {
	if trust == nil {
		c.trust.Store(nil)
		return
	}
	c.trust.Store(&trust)
}

// Now returns a new Version, larger than every Version this clock has
// returned or observed.
func (c *Clock) Now() Version {
	pt := c.now().UnixNano()
	if trust := c.trust.Load(); trust != nil && !(*trust)(pt) {
		pt = math.MinInt64 // the counter alone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt > c.wall {
		c.wall, c.seq = pt, 0
	} else {
		c.seq++
		if c.seq == 0 { // counter wrapped: borrow a nanosecond
			c.wall++
		}
	}
	return Version{Wall: c.wall, Seq: c.seq, Node: c.node}
}

// Last returns the latest Version this clock returned or observed: the
// zero Version before the first. Its Wall may be ahead of the wall clock
// (a remote version observed, or the wall clock set back since).
func (c *Clock) Last() Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Version{Wall: c.wall, Seq: c.seq, Node: c.node}
}

// Observe moves the clock past a remote version, so that later local
// writes order after it. Versions far in the future are still observed;
// callers bound clock skew where they accept remote input (the Engine
// refuses versions more than Config.MaxClockSkew ahead of Wall).
func (c *Clock) Observe(v Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.Wall > c.wall || (v.Wall == c.wall && v.Seq > c.seq) {
		c.wall, c.seq = v.Wall, v.Seq
	}
}
