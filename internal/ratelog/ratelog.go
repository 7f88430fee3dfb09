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

// DefaultMaxKinds is how many kinds a zero Kinds.MaxKinds allows.
const DefaultMaxKinds = 64

// Kinds is a Limiter per kind of line, for a source whose lines come in
// many kinds (memberlist's log). At most MaxKinds kinds get a Limiter of
// their own; lines of further kinds share one, so that a source whose
// lines vary (an address, a label from the network) can neither grow the
// set nor slip past it. Set Every; the zero value lets every line through.
type Kinds struct {
	// Every is the least time between two lines of one kind.
	Every time.Duration
	// MaxKinds bounds the kinds with a Limiter of their own; zero means
	// DefaultMaxKinds.
	MaxKinds int

	mu     sync.Mutex          // guards byKind and other
	byKind map[string]*Limiter // lazily initialized
	other  *Limiter            // for kinds past MaxKinds; lazily initialized
}

// Allow is Limiter.Allow for the line's kind.
func (k *Kinds) Allow(kind string, now time.Time, n int) (total int, ok bool) {
	return k.limiter(kind).Allow(now, n)
}

func (k *Kinds) limiter(kind string) *Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.byKind[kind]; ok {
		return l
	}
	limit := k.MaxKinds
	if limit <= 0 {
		limit = DefaultMaxKinds
	}
	if len(k.byKind) >= limit {
		if k.other == nil {
			k.other = &Limiter{Every: k.Every}
		}
		return k.other
	}
	if k.byKind == nil {
		k.byKind = make(map[string]*Limiter)
	}
	l := &Limiter{Every: k.Every}
	k.byKind[kind] = l
	return l
}
