package replicate

import (
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// Anti-entropy repairs what the queues lost (changes dropped by a full
// queue or queued for a peer that went down, frames lost to a partition).
// It repairs only the records that differ, in one round trip:
//
//  1. Every AntiEntropyInterval (±20%) a node sends its Digest (a hash per
//     bucket of session IDs) to a random live peer to which no change (nor
//     state transfer) is in flight: while one is, their digests differ by
//     what is in flight, which needs no repair. Nor does a node whose own
//     state transfer (Transfer) runs. After maxAESkips rounds skipped in a row
//     a round goes ahead anyway, so constant load cannot starve repairs.
//  2. The peer compares it with its own Digest and answers with Summary
//     frames listing (ID, record hash) of each of its records in the
//     buckets that differ. It declines the Digest while changes of its
//     own are in flight to the node, or its own Transfer runs, at most
//     maxAESkips times in a row; a declined Digest is looked at again
//     every aeRetryDelay and answered once they have landed, or after 5 s
//     regardless (a heal's repair must not wait for the next random
//     round; what is still in flight is merely pushed twice). That is what makes a heal's round (sent the moment a
//     peer comes back, when what queued up for it meanwhile is still in
//     flight, or being resent) repair at once rather than at the next
//     random round, up to 36 s away.
//  3. The node queues for the peer (as ordinary Batches, counted as
//     Repairs) its records in those buckets that are missing from the
//     Summary or whose hash differs, and answers with its own Summary of
//     the same buckets, Reply set.
//  4. The peer queues for the node its records there that the reply lacks
//     or holds another version of.
//
// A record changed on both sides is pushed both ways; one side's version
// may be older, which merging ignores. Digest, Summary and the pushes are
// O(n) walks over the store with no cache: cheap next to the interval for
// the sizes peersession targets. Digests and Summaries from a peer are
// handled off its reader goroutine, by one aeLoop per peer that drains
// them together with one walk.

const (
	// maxSummaryEntries is the most IDs the engine puts in one Summary
	// frame, below DefaultLimits.MaxRecords: ~400 KB of 40-byte IDs.
	maxSummaryEntries = 8000
	// maxAEPending and maxAEPendingIDs bound the Digests and Summaries
	// from one peer waiting for its aeLoop, in frames and in Summary IDs
	// (~64 bytes each decoded); more are dropped, and a later round
	// repairs what they would have. A peer's reader never waits for
	// anti-entropy: two nodes' readers waiting on their own senders could
	// deadlock through the network.
	maxAEPending    = 4096
	maxAEPendingIDs = 1 << 20
	// maxAESkips is how many anti-entropy rounds in a row a node skips
	// because changes are in flight to every peer, and how many Digests
	// in a row from one peer it declines because changes are in flight to
	// that peer.
	maxAESkips = 10
	// defaultAERetryDelay and aeRetries: a declined Digest is looked at
	// again every aeRetryDelay, at most aeRetries times (5 s: a batch lost
	// to a partition waits DefaultAckTimeout to be sent again, and a
	// stream that died silently takes a second or two more to be found
	// dead and dialled again); then it is answered even though changes
	// are still in flight. Dropping it instead left a heal to the next
	// random round: the chaos harness saw a partition heal agree only
	// after 27 s, and one not within 30 s.
	defaultAERetryDelay = 250 * time.Millisecond
	aeRetries           = 20
)

// Digest returns this node's anti-entropy digest: DigestBuckets hashes.
// A session falls into bucket hash(ID) mod DigestBuckets; a bucket's value
// is the XOR of its records' hashes. A record's hash covers its ID, its
// tombstone, its principal's version and each key's name, version and
// removal flag, but not Access (it moves constantly and is replicated
// lazily) nor the values themselves (a version names one write). The
// hashes are fixed (FNV-1a with a finalizer, hash.go), so digests compare
// across processes and releases.
func (e *Engine) Digest() []uint64 { return e.digestOf(nil) }

// DigestWith returns the Digest anti-entropy compares with peer: of every
// session, or, with a Placement, of the sessions both this node and peer
// hold. Two nodes have converged when each one's DigestWith the other is
// the same.
func (e *Engine) DigestWith(peerID string) []uint64 {
	if e.cfg.Placement == nil {
		return e.Digest()
	}
	return e.digestOf(e.sharedWith(&peer{id: peerID}))
}

// digestOf is the Digest of the sessions keep keeps (all if keep is nil):
// in partitioned mode, those both nodes comparing hold.
func (e *Engine) digestOf(keep func(id string) bool) []uint64 {
	d := make([]uint64, wire.DigestBuckets)
	e.cfg.Store.Range(func(r model.Record) bool {
		if keep == nil || keep(r.ID) {
			d[bucketOf(r.ID)] ^= recordHash(&r)
		}
		return true
	})
	return d
}

// antiEntropyLoop runs anti-entropy rounds until the engine closes.
func (e *Engine) antiEntropyLoop() {
	t := time.NewTimer(jitter(e.cfg.AntiEntropyInterval))
	defer t.Stop()
	skipped := 0
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		if e.antiEntropyRound(skipped >= maxAESkips) {
			skipped = 0
		} else {
			skipped++
		}
		t.Reset(jitter(e.cfg.AntiEntropyInterval))
	}
}

// jitter returns d ±20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// antiEntropyRound sends our digest to a random live peer to which no
// change is in flight, or, if force is set and there is none, to a random
// live peer. Unless force is set, it does nothing while a Transfer runs. It
// reports whether it sent a digest.
func (e *Engine) antiEntropyRound(force bool) bool {
	live, _ := e.livePeers()
	if len(live) == 0 {
		return false
	}
	if !force && e.transferring() {
		e.log.Debug("replicate: anti-entropy round skipped: state transfer running")
		return false
	}
	start := rand.IntN(len(live))
	var p *peer
	for i := range live {
		if q := live[(start+i)%len(live)]; !q.replicating() {
			p = q
			break
		}
	}
	if p == nil {
		if !force {
			e.log.Debug("replicate: anti-entropy round skipped: changes in flight to every peer")
			return false
		}
		p = live[start]
	}
	return e.sendDigest(p)
}

// sendDigest sends this node's Digest to p, which answers with Summaries
// of the buckets that differ: an anti-entropy round with p.
func (e *Engine) sendDigest(p *peer) bool {
	frame, err := wire.Encode(wire.MsgDigest, &wire.Digest{Buckets: e.digestOf(e.sharedWith(p))})
	if err != nil {
		e.log.Error("replicate: encode digest", "err", err)
		return false
	}
	if !p.sendCtrl(frame, nil) {
		e.log.Debug("replicate: digest dropped: control queue full or peer down", "peer", p.id)
		return false
	}
	return true
}

// healWithLocked runs an anti-entropy round with p at once, for a peer that has
// just come up (back from a partition, or restarted) while this node holds
// state: what either side missed meanwhile is repaired in a round trip
// rather than at the next random round, which may be a minute away.
// Before this node's first state transfer has ended there is nothing to
// compare (the transfer fetches everything), and during one it would only
// duplicate it. e.mu must be held (PeerUp), and the engine not closed.
func (e *Engine) healWithLocked(p *peer) {
	if !e.settled.Load() {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if !e.transferring() && e.sendDigest(p) {
			e.st.heals.Add(1)
		}
	}()
}

// queueAntiEntropy hands a Digest or Summary from p to p's aeLoop,
// starting it if needed. It never blocks: beyond maxAEPending waiting
// frames it drops msg.
func (e *Engine) queueAntiEntropy(p *peer, msg any) {
	if p == nil {
		return
	}
	start, full := p.ae.add(msg)
	if full {
		e.log.Warn("replicate: anti-entropy frame dropped: too many waiting (a later round repairs what it would have)", "peer", p.id)
		return
	}
	if start && !e.spawn(func() { e.aeLoop(p) }) {
		p.ae.stopped()
	}
}

// aeLoop handles the Digests and Summaries waiting from p, all that
// arrived meanwhile at a time, until none is left or p goes down.
func (e *Engine) aeLoop(p *peer) {
	for {
		msgs := p.ae.take(p.ctx)
		if len(msgs) == 0 {
			return
		}
		var digest *wire.Digest
		tries := 0 // how often digest was declined already
		var sums []*wire.Summary
		for _, m := range msgs {
			switch m := m.(type) {
			case *wire.Digest:
				digest, tries = m, 0 // the latest supersedes the others
			case retriedDigest:
				digest, tries = m.d, m.tries
			case *wire.Summary:
				sums = append(sums, m)
			}
		}
		if len(sums) > 0 {
			e.handleSummaries(p, sums)
		}
		busy := digest != nil && (p.replicating() || e.transferring())
		switch {
		case digest == nil:
		case busy && tries > 0 && tries < aeRetries:
			e.retryDigest(p, digest, tries+1)
		case busy && tries == 0 && p.ae.declined.Add(1) <= maxAESkips:
			e.log.Debug("replicate: anti-entropy digest declined: changes in flight", "peer", p.id)
			e.retryDigest(p, digest, 1)
		default:
			p.ae.declined.Store(0)
			e.answerDigest(p, digest.Buckets)
		}
	}
}

// retryDigest queues d, a Digest from p declined tries times, for p's
// aeLoop again after aeRetryDelay. One goroutine per peer waits at a
// time; a Digest declined meanwhile takes the place of the one it
// carries.
func (e *Engine) retryDigest(p *peer, d *wire.Digest, tries int) {
	p.ae.mu.Lock()
	if p.ae.closed {
		p.ae.mu.Unlock()
		return
	}
	p.ae.retry, p.ae.retryTries = d, tries
	start := !p.ae.retrying
	p.ae.retrying = true
	p.ae.mu.Unlock()
	if !start {
		return
	}
	ok := e.spawn(func() {
		t := time.NewTimer(e.aeRetryDelay)
		defer t.Stop()
		select {
		case <-p.ctx.Done():
		case <-t.C:
		}
		p.ae.mu.Lock()
		d, tries := p.ae.retry, p.ae.retryTries
		p.ae.retry, p.ae.retrying = nil, false
		p.ae.mu.Unlock()
		if d != nil && p.ctx.Err() == nil {
			e.queueAntiEntropy(p, retriedDigest{d: d, tries: tries})
		}
	})
	if !ok {
		p.ae.mu.Lock()
		p.ae.retry, p.ae.retrying = nil, false
		p.ae.mu.Unlock()
	}
}

// scope is the part of the session ID space a Summary covers: the IDs in
// bucket that are >= lo and, unless hi is empty, < hi. A whole bucket has
// both empty.
type scope struct {
	bucket uint32
	lo, hi string
}

func (s scope) whole() bool { return s.lo == "" && s.hi == "" }

func (s scope) has(id string) bool { return id >= s.lo && (s.hi == "" || id < s.hi) }

// entry is one record in a Summary.
type entry struct {
	id   string
	hash uint64
}

// scan walks the store once and calls fn with each record in any of
// scopes that keep keeps (nil keeps all), its digest hash and the indices
// of the scopes it is in (fn must not keep in).
func (e *Engine) scan(scopes []scope, keep func(id string) bool, fn func(r *model.Record, hash uint64, in []int)) {
	var byBucket [wire.DigestBuckets][]int
	for i, s := range scopes {
		byBucket[s.bucket] = append(byBucket[s.bucket], i)
	}
	var in []int
	e.cfg.Store.Range(func(r model.Record) bool {
		in = in[:0]
		for _, i := range byBucket[bucketOf(r.ID)] {
			if scopes[i].has(r.ID) {
				in = append(in, i)
			}
		}
		if len(in) > 0 && (keep == nil || keep(r.ID)) {
			fn(&r, recordHash(&r), in)
		}
		return true
	})
}

// differingBuckets returns a whole-bucket scope for each bucket where our
// Digest of the sessions keep keeps differs from theirs (DigestBuckets
// hashes, as validated).
func (e *Engine) differingBuckets(theirs []uint64, keep func(id string) bool) []scope {
	ours := e.digestOf(keep)
	var scopes []scope
	for i := range ours {
		if ours[i] != theirs[i] {
			scopes = append(scopes, scope{bucket: uint32(i)})
		}
	}
	return scopes
}

// answerDigest answers a peer's digest with Summaries of our records in
// the buckets where it differs from ours.
func (e *Engine) answerDigest(p *peer, theirs []uint64) {
	keep := e.sharedWith(p)
	scopes := e.differingBuckets(theirs, keep)
	if len(scopes) == 0 {
		return
	}
	entries := make([][]entry, len(scopes))
	e.scan(scopes, keep, func(r *model.Record, h uint64, in []int) {
		for _, i := range in {
			entries[i] = append(entries[i], entry{r.ID, h})
		}
	})
	frames, _ := e.sendSummaries(p, scopes, entries, false)
	e.log.Debug("replicate: anti-entropy digests differ", "peer", p.id, "buckets", len(scopes), "summaries", frames)
}

// handleSummaries queues for p our records in the Summaries' scopes that
// they lack or hold another version of, and answers those that are not
// replies with our own Summaries of the same scopes.
func (e *Engine) handleSummaries(p *peer, sums []*wire.Summary) {
	var scopes []scope
	var owner []int // owner[i] is the index in sums of scopes[i]
	hashes := make([]map[string]uint64, len(sums))
	for j, s := range sums {
		hashes[j] = make(map[string]uint64, len(s.IDs))
		for k, id := range s.IDs {
			hashes[j][id] = s.Hashes[k]
		}
		for _, b := range s.Buckets {
			scopes = append(scopes, scope{bucket: b, lo: s.Lo, hi: s.Hi})
			owner = append(owner, j)
		}
	}
	entries := make([][]entry, len(scopes))
	var push []model.Record
	e.scan(scopes, e.sharedWith(p), func(r *model.Record, h uint64, in []int) {
		differs := false
		for _, i := range in {
			j := owner[i]
			if theirs, ok := hashes[j][r.ID]; !ok || theirs != h {
				differs = true
			}
			if !sums[j].Reply {
				entries[i] = append(entries[i], entry{r.ID, h})
			}
		}
		if differs {
			push = append(push, *r)
		}
	})
	if len(push) > 0 {
		p.enqueue(push, true)
	}

	var rs []scope
	var re [][]entry
	seen := make(map[scope]bool)
	for i, s := range scopes {
		if sums[owner[i]].Reply || seen[s] {
			continue
		}
		seen[s] = true
		rs = append(rs, s)
		re = append(re, entries[i])
	}
	frames := 0
	if len(rs) > 0 {
		frames, _ = e.sendSummaries(p, rs, re, true)
	}
	e.log.Debug("replicate: anti-entropy summaries handled", "peer", p.id,
		"summaries", len(sums), "pushed", len(push), "replies", frames)
}

// sendSummaries sends p Summaries covering scopes, entries[i] being our
// records in scopes[i], one frame at a time through p's control queue. It
// packs whole buckets into frames of at most maxSummaryEntries IDs, and
// splits a scope with more (or one that is already an ID range) by ID
// range into frames of its own. It returns how many frames it sent, and
// false if it stopped early (p went down, or a frame did not encode).
func (e *Engine) sendSummaries(p *peer, scopes []scope, entries [][]entry, reply bool) (int, bool) {
	sent := 0
	send := func(s *wire.Summary) bool {
		s.Reply = reply
		if !p.sendEncodedWait(wire.Encode(wire.MsgSummary, s)) {
			return false
		}
		sent++
		return true
	}
	var cur wire.Summary // whole buckets packed so far
	flush := func() bool {
		if len(cur.Buckets) == 0 {
			return true
		}
		ok := send(&cur)
		cur = wire.Summary{}
		return ok
	}
	add := func(s *wire.Summary, es []entry) {
		for _, en := range es {
			s.IDs = append(s.IDs, en.id)
			s.Hashes = append(s.Hashes, en.hash)
		}
	}
	for i, sc := range scopes {
		es := entries[i]
		if sc.whole() && len(es) <= e.summaryMax {
			if len(cur.IDs)+len(es) > e.summaryMax && !flush() {
				return sent, false
			}
			cur.Buckets = append(cur.Buckets, sc.bucket)
			add(&cur, es)
			continue
		}
		// An ID range, or a bucket too large for one frame: frames of its
		// own, each covering the IDs from its first to the next one's.
		slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.id, b.id) })
		for lo := 0; ; lo += e.summaryMax {
			hi := min(lo+e.summaryMax, len(es))
			s := wire.Summary{Buckets: []uint32{sc.bucket}, Lo: sc.lo, Hi: sc.hi}
			if lo > 0 {
				s.Lo = es[lo].id
			}
			if hi < len(es) {
				s.Hi = es[hi].id
			}
			add(&s, es[lo:hi])
			if !send(&s) {
				return sent, false
			}
			if hi == len(es) {
				break
			}
		}
	}
	return sent, flush()
}
