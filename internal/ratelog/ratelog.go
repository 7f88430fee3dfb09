// Package ratelog holds back a repeated log line: the first occurrence goes
// out at once, then at most one line per interval, which carries the count
// of what was held back. A peer that keeps sending what this node refuses
// then costs the log one line per interval, not one per frame.
package ratelog

import (
	"sync"
	"time"
)

// Limiter decides when a repeated line may be logged. Its zero value lets
// every line through; set Every.
type Limiter struct {
	// Every is the least time between two lines.
	Every time.Duration

	mu   sync.Mutex // guards last and held
	last time.Time  // when a line was last let through; zero before the first
	held int        // occurrences counted since then
}

// Allow counts n occurrences at now and reports whether to log a line for
// them; if so, total is every occurrence since the last line, these
// included.
func (l *Limiter) Allow(now time.Time, n int) (total int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held += n
	if !l.last.IsZero() && now.Sub(l.last) < l.Every {
		return 0, false
	}
	total, l.held, l.last = l.held, 0, now
	return total, true
}
