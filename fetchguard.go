package peersession

import (
	"context"
	"sync"
	"time"
)

// What reads can make the peers do. A read fetches a session from every
// peer when the client has seen a newer version than this node holds (its
// authenticated stamp), and LoadOrCreate when this node lacks the session.
// Clients choose when that happens, so the fetches are bounded here, on
// the node that would send them:
//
//   - one fetch at a time for a session: the reads that need it while one
//     is under way wait for it (singleflight), and are counted in
//     Stats.FetchesMerged;
//   - a session no peer had is not asked for again for missTTL (a
//     negative cache of at most missCap sessions), counted in
//     Stats.FetchMissesCached; in partitioned mode a read with an
//     authenticated stamp trusts only a miss that a read like it found
//     (see fetchStamped), never one that asked the holders only, which
//     the client's own write may have been on its way to;
//   - at most maxFetches fetches under way node-wide: past that a read is
//     served this node's copy (or no session), counted in
//     Stats.FetchesShed. In partitioned mode, where every read of a
//     session this node does not hold is a fetch, a read first waits up to
//     FetchTimeout for a slot, and one shed then fails with ErrStale
//     rather than be told there is no session (see errHoldersSilent).
const (
	maxFetches = 32
	missTTL    = 2 * time.Second
	missCap    = 4096
)

// fetchResult is what one fetch found.
type fetchResult struct {
	hit     bool // a newer copy of the session arrived and was merged
	missing bool // every peer asked answered, and none had the session
	// thorough is set with missing when the fetch asked every peer a
	// read with an authenticated stamp asks (see fetchStamped): only such
	// a miss answers such a read from the cache.
	thorough bool
	// unsure is set, in partitioned mode, when the fetch found nothing
	// but not every holder answered: the session may exist, and the read
	// must not be told there is none (see Store.find).
	unsure bool
	// entry is, in partitioned mode on a node that does not hold the
	// session, the copy fetched (merged with this node's, if any) for the
	// reads to use: it is not stored here (see replication.fetch).
	entry *entry
}

// fetchOutcome is what fetchGuard.do did for a read.
type fetchOutcome int

const (
	fetchSent   fetchOutcome = iota // this read's fetch was sent
	fetchMerged                     // it waited for another read's fetch of the session
	fetchCached                     // a fetch of the session found nothing a moment ago: not sent
	fetchShed                       // maxFetches were under way: not sent
)

// fetchGuard applies the bounds above. The zero value is ready to use, with
// the default bounds; its methods may be called concurrently.
type fetchGuard struct {
	// max bounds the fetches under way; zero means maxFetches. Tests set
	// it before the store serves.
	max int
	// hold, when set (by tests, before the store serves), is called by
	// each fetch before it is sent.
	hold func(id string)
	// queue, when positive, is how long a read waits for one of the max
	// slots before it is shed (partitioned mode, where every read on a
	// node that does not hold its session is a fetch); zero sheds at once.
	// Set before the store serves.
	queue time.Duration

	mu      sync.Mutex         // guards the fields below
	running int                // fetches under way
	flights map[string]*flight // the fetch under way for each session; lazily initialized
	misses  missCache
	freed   chan struct{} // closed, and replaced, when a slot frees up; lazily initialized
	queued  int           // reads waiting for a slot (see queue)
}

// flight is one fetch under way, which the reads of its session wait for.
type flight struct {
	done    chan struct{} // closed when the fetch has ended and its result is merged
	waiting int           // reads waiting for it; guarded by fetchGuard.mu
	entry   *entry        // the fetch's fetchResult.entry; set before done is closed
	unsure  bool          // the fetch's fetchResult.unsure; set before done is closed
}

// do runs fetch for session id, or waits for the one under way, or
// neither; now is the time for the negative cache, stamped whether the
// read has an authenticated version stamp (it trusts only a thorough
// miss). With g.queue set, a read that finds every slot taken waits up to
// g.queue (or until ctx ends) for one.
func (g *fetchGuard) do(ctx context.Context, id string, now time.Time, stamped bool,
	fetch func(context.Context, string) fetchResult) (fetchOutcome, fetchResult) {
	var queued *time.Timer
	defer func() {
		if queued != nil {
			queued.Stop()
		}
	}()
again:
	g.mu.Lock()
	if g.misses.has(id, now, stamped) {
		g.mu.Unlock()
		return fetchCached, fetchResult{}
	}
	if f := g.flights[id]; f != nil {
		f.waiting++
		g.mu.Unlock()
		select {
		case <-f.done:
			return fetchMerged, fetchResult{entry: f.entry, unsure: f.unsure} // set before done closed
		case <-ctx.Done():
		}
		return fetchMerged, fetchResult{unsure: g.queue > 0}
	}
	if g.running >= g.limit() {
		if g.queue <= 0 {
			g.mu.Unlock()
			return fetchShed, fetchResult{}
		}
		if g.freed == nil {
			g.freed = make(chan struct{})
		}
		freed := g.freed
		g.queued++
		g.mu.Unlock()
		if queued == nil {
			queued = time.NewTimer(g.queue)
		}
		gotSlot := false
		select {
		case <-freed:
			gotSlot = true
		case <-queued.C:
		case <-ctx.Done():
		}
		g.mu.Lock()
		g.queued--
		g.mu.Unlock()
		if gotSlot {
			goto again
		}
		return fetchShed, fetchResult{unsure: true}
	}
	g.running++
	f := &flight{done: make(chan struct{})}
	if g.flights == nil {
		g.flights = make(map[string]*flight)
	}
	g.flights[id] = f
	g.mu.Unlock()

	var res fetchResult
	defer func() {
		// Even if fetch panicked: never leave a flight open or a slot
		// taken.
		g.mu.Lock()
		g.running--
		delete(g.flights, id)
		if res.missing {
			g.misses.add(id, now.Add(missTTL), res.thorough)
		}
		f.entry, f.unsure = res.entry, res.unsure
		if g.freed != nil {
			close(g.freed) // the reads queued for a slot look again
			g.freed = nil
		}
		g.mu.Unlock()
		close(f.done)
	}()
	if g.hold != nil {
		g.hold(id)
	}
	res = fetch(ctx, id)
	return fetchSent, res
}

func (g *fetchGuard) limit() int {
	if g.max > 0 {
		return g.max
	}
	return maxFetches
}

// inFlight returns how many fetches are under way, and how many reads
// wait for the one of session id.
func (g *fetchGuard) inFlight(id string) (running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.flights[id]; f != nil {
		waiting = f.waiting
	}
	return g.running, waiting
}

// queuedReads returns how many reads wait for a slot.
func (g *fetchGuard) queuedReads() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.queued
}

// missCache holds the sessions a fetch found nowhere, each until a time,
// at most missCap of them: past that the oldest entry goes. The zero value
// is empty. Its user guards it.
type missCache struct {
	until map[string]miss // lazily initialized
	order []string        // the keys of until, oldest first from next on, as a ring
	next  int             // where the next key goes once order is full
}

// miss is one session found nowhere.
type miss struct {
	until    time.Time
	thorough bool // see fetchResult.thorough
}

// has reports whether id is cached at now, for a read with an
// authenticated stamp (stamped) only if the miss is thorough. An entry
// whose time is up stays, not cached, until add overwrites or renews it:
// each key of until is in order exactly once.
func (c *missCache) has(id string, now time.Time, stamped bool) bool {
	m, ok := c.until[id]
	return ok && now.Before(m.until) && (m.thorough || !stamped)
}

// add caches id until u.
func (c *missCache) add(id string, u time.Time, thorough bool) {
	if c.until == nil {
		c.until = make(map[string]miss)
	}
	if _, ok := c.until[id]; ok {
		c.until[id] = miss{until: u, thorough: thorough}
		return
	}
	if len(c.order) < missCap {
		c.order = append(c.order, id)
	} else {
		old := c.order[c.next]
		delete(c.until, old)
		c.order[c.next] = id
		c.next = (c.next + 1) % missCap
	}
	c.until[id] = miss{until: u, thorough: thorough}
}
