// Package testclock is a wall clock for tests: it moves only when told,
// so that what depends on the time (expiry, clock skew, rate limits) is
// tested without waiting for it.
package testclock

import (
	"sync"
	"time"
)

// Clock shows a time that moves only when told. Its zero value shows the
// real time when it is first read; New starts it at a given time. Pass
// its Now method as a clock (peersession.Config.Now, model.Clock).
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// New returns a Clock showing t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the time the Clock shows.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

// Set moves the Clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the Clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.nowLocked().Add(d)
}

func (c *Clock) nowLocked() time.Time {
	if c.t.IsZero() {
		c.t = time.Now()
	}
	return c.t
}
