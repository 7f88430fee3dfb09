package main

import (
	"sync"
	"time"
)

// ledger is what the clients were told: every acknowledged write, every
// session whose end was acknowledged, and the sessions whose fate an
// unanswered login or logout left open.
type ledger struct {
	mu     sync.Mutex // guards everything below
	tracks map[string]*track
	dead   map[string]ackRec  // acknowledged ends (logout, old ID of a login, DestroyPrincipal)
	counts map[string]*[2]int // per operation: acknowledged, not
	// seen holds the losses and returns already reported ("id/seq", "id").
	seen map[string]bool
}

// track is one session's own key as one client wrote it.
type track struct {
	key  string
	last int      // the highest value acknowledged
	acks []ackRec // every acknowledged write, for accounting Async losses
	// uncertain: a login or logout went unanswered; if the session is
	// gone, it may have been that (not a loss).
	uncertain bool
	dead      bool
	// failed holds the values of writes to this key that got no answer
	// or an error: each may still take effect, at any time after (a node
	// frozen with the request in its socket applies it when it wakes).
	failed map[int]bool
}

// ackRec is one acknowledgement: the value (seq), the node that gave it,
// when.
type ackRec struct {
	seq  int
	node int
	at   time.Time
	how  string // for an end: logout, login (the old ID) or destroy-principal
}

func newLedger() *ledger {
	return &ledger{tracks: map[string]*track{}, dead: map[string]ackRec{}, counts: map[string]*[2]int{}, seen: map[string]bool{}}
}

// count records one operation's outcome.
func (l *ledger) count(op string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts[op]
	if c == nil {
		c = new([2]int)
		l.counts[op] = c
	}
	if ok {
		c[0]++
	} else {
		c[1]++
	}
}

// acked records that node acknowledged key=seq in session id.
func (l *ledger) acked(id, key string, seq, node int, _ bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tracks[id]
	if t == nil {
		t = &track{key: key}
		l.tracks[id] = t
	}
	t.last = max(t.last, seq)
	t.acks = append(t.acks, ackRec{seq: seq, node: node, at: time.Now()})
}

// failedWrite records a write of key=seq to session id that was not
// acknowledged.
func (l *ledger) failedWrite(id, key string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tracks[id]
	if t == nil {
		t = &track{key: key}
		l.tracks[id] = t
	}
	if t.failed == nil {
		t.failed = map[int]bool{}
	}
	t.failed[seq] = true
}

// renewed records an acknowledged login: old's data now lives under new,
// and old must never come back.
func (l *ledger) renewed(old, new, key string, node int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tracks[old]
	l.dead[old] = ackRec{node: node, at: time.Now(), how: "login"}
	if t == nil {
		return
	}
	t.dead = true
	l.tracks[new] = &track{key: key, last: t.last, acks: t.acks, failed: t.failed}
}

// ended records an acknowledged end of session id.
func (l *ledger) ended(id string, node int, how string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead[id] = ackRec{node: node, at: time.Now(), how: how}
	if t := l.tracks[id]; t != nil {
		t.dead = true
	}
}

// intent records an unanswered login or logout of session id.
func (l *ledger) intent(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.tracks[id]; t != nil {
		t.uncertain = true
	}
}
