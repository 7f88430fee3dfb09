package replicate

import (
	"math/rand/v2"
	"time"
)

// Anti-entropy repairs what the queues lost (changes dropped by a full
// queue or queued for a peer that went down, frames lost to a partition).
// Every AntiEntropyInterval (±20%) a node sends its Digest to one random
// live peer. The peer compares it with its own, queues its records in the
// buckets that differ for the sender (as ordinary Batches, counted as
// Repairs) and answers Buckets naming them, so the sender queues its
// records in those buckets too. Merging makes both sides equal.
//
// Both the digest and the bucket scans are O(n) walks over the store with
// no cache: cheap next to the interval for the sizes peersession targets.

// Digest returns this node's anti-entropy digest: DigestBuckets hashes.
// A session falls into bucket hash(ID) mod DigestBuckets; a bucket's value
// is the XOR of its records' hashes. A record's hash covers its ID, its
// tombstone, its principal's version and each key's name, version and
// removal flag, but not Access (it moves constantly and is replicated
// lazily) nor the values themselves (a version names one write). The
// hashes are fixed (FNV-1a with a finalizer), so digests compare across
// processes and releases.
func (e *Engine) Digest() []uint64 {
	d := make([]uint64, DigestBuckets)
	e.cfg.Store.Range(func(r Record) bool {
		d[bucketOf(r.ID)] ^= recordHash(&r)
		return true
	})
	return d
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvUint64(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime
		v >>= 8
	}
	return h
}

func fnvVersion(h uint64, v Version) uint64 {
	return fnvUint64(fnvUint64(fnvUint64(h, uint64(v.Wall)), uint64(v.Seq)), v.Node)
}

// fmix64 is MurmurHash3's finalizer: it spreads FNV's weak high bits.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// bucketOf returns the digest bucket of session id.
func bucketOf(id string) int {
	return int(fmix64(fnvString(fnvOffset, id)) % DigestBuckets)
}

// recordHash returns r's digest hash. Keys are combined with XOR, so the
// map's order does not matter; each key's hash is seeded with the ID's, so
// equal keys of two sessions in one bucket do not cancel out.
func recordHash(r *Record) uint64 {
	idh := fnvString(fnvOffset, r.ID)
	h := fnvVersion(fnvVersion(fnvUint64(idh, 0), r.Dead), r.PrincipalVer)
	sum := fmix64(h)
	for k, v := range r.Keys {
		kh := fnvVersion(fnvString(fnvUint64(idh, 1), k), v.Ver)
		if v.Deleted {
			kh = fnvUint64(kh, 1)
		}
		sum ^= fmix64(kh)
	}
	return sum
}

// antiEntropyLoop runs anti-entropy rounds until the engine closes.
func (e *Engine) antiEntropyLoop() {
	t := time.NewTimer(jitter(e.cfg.AntiEntropyInterval))
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		e.antiEntropyRound()
		t.Reset(jitter(e.cfg.AntiEntropyInterval))
	}
}

// jitter returns d ±20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// antiEntropyRound sends our digest to one random live peer.
func (e *Engine) antiEntropyRound() {
	live, _ := e.livePeers()
	if len(live) == 0 {
		return
	}
	p := live[rand.IntN(len(live))]
	frame, err := Encode(MsgDigest, &Digest{Buckets: e.Digest()})
	if err != nil {
		e.log.Error("replicate: encode digest", "err", err)
		return
	}
	p.sendCtrl(frame, nil)
}

// handleDigest compares a peer's digest with ours in a goroutine (one per
// peer at a time; a digest arriving meanwhile is dropped: the next round
// sends another).
func (e *Engine) handleDigest(p *peer, theirs []uint64) {
	if p == nil || len(theirs) != DigestBuckets || !p.aeBusy.CompareAndSwap(false, true) {
		return
	}
	if !e.spawn(func() {
		defer p.aeBusy.Store(false)
		e.answerDigest(p, theirs)
	}) {
		p.aeBusy.Store(false)
	}
}

// answerDigest asks p for its records in the buckets where our digests
// differ, and queues ours in them for p.
func (e *Engine) answerDigest(p *peer, theirs []uint64) {
	ours := e.Digest()
	var diff []uint32
	var want [DigestBuckets]bool
	for i := range ours {
		if ours[i] != theirs[i] {
			diff = append(diff, uint32(i))
			want[i] = true
		}
	}
	if len(diff) == 0 {
		return
	}
	frame, err := Encode(MsgBuckets, &Buckets{Buckets: diff})
	if err != nil {
		e.log.Error("replicate: encode buckets", "err", err)
		return
	}
	p.sendCtrl(frame, nil)
	n := e.pushBuckets(p, &want)
	e.log.Debug("replicate: anti-entropy found differences", "peer", p.id, "buckets", len(diff), "pushed", n)
}

// handleBuckets queues our records in the buckets p asked for, in a
// goroutine (one per peer at a time).
func (e *Engine) handleBuckets(p *peer, buckets []uint32) {
	if p == nil || len(buckets) == 0 || !p.bucketsBusy.CompareAndSwap(false, true) {
		return
	}
	var want [DigestBuckets]bool
	for _, b := range buckets {
		if b < DigestBuckets {
			want[b] = true
		}
	}
	if !e.spawn(func() {
		defer p.bucketsBusy.Store(false)
		e.pushBuckets(p, &want)
	}) {
		p.bucketsBusy.Store(false)
	}
}

// pushBuckets queues for p every record of ours in the wanted buckets and
// returns how many.
func (e *Engine) pushBuckets(p *peer, want *[DigestBuckets]bool) int {
	var recs []Record
	e.cfg.Store.Range(func(r Record) bool {
		if want[bucketOf(r.ID)] {
			recs = append(recs, r)
		}
		return true
	})
	if len(recs) > 0 {
		p.enqueue(recs, true)
	}
	return len(recs)
}
