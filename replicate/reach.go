package replicate

import (
	"sync/atomic"
	"time"
)

// Whether a peer answers, between the failure detector's verdicts.
//
// memberlist takes seconds to declare a peer dead, but the streams know
// sooner: a killed process's kernel resets its connections at once, and a
// send to it is refused. A frozen process (stopped, swapping, behind a
// firewall that drops) still takes TCP but answers nothing. Fetch waits
// for every peer it asks, so without this every read that fetches would
// wait out its deadline on such a peer until it is declared dead.
//
// A peer does not answer, for Fetch, while it is
//
//   - unreachable: the sender is retrying a failed Network.Send (a dial
//     refused, a write that failed); the next successful Send ends it; or
//   - mute: the network reported its stream lost (Engine.StreamLost), or it
//     left a Fetch unanswered until the Fetch's deadline, and it has sent no
//     frame since. Its next frame, of any kind, ends it.
//
// Fetch neither waits for such a peer nor, when it turns so, keeps waiting
// for it. It still asks a mute peer now and then (probeEvery), without
// waiting for it, so that a live peer wrongly taken for mute (its stream
// was closed while it was alive) answers and is heard again.
//
// Tickets are unaffected, except through WaitResponsive: a peer that does
// not answer may still apply and acknowledge a change later, and only the
// failure detector (PeerDown) may make a Sync write stop counting on it.

// probeEvery is how often a Fetch asks a mute peer anyway, without
// waiting for its answer.
const probeEvery = 100 * time.Millisecond

// reach is what a peer's frames and the sends to it tell about whether it
// answers. The zero value is a peer that answers. Every field is atomic.
type reach struct {
	heard  atomic.Uint64 // frames received from the peer
	muteAt atomic.Uint64 // heard+1 as of the latest sign of silence: mute while heard+1 equals it
	probed atomic.Int64  // when a Fetch last asked the peer while it was mute (UnixNano)
	// sendFailing is set while the sender retries a failed Send.
	sendFailing atomic.Bool
}

// hear records a frame from the peer: it is not mute.
func (r *reach) hear() { r.heard.Add(1) }

// mute reports whether the peer has sent nothing since the latest sign of
// silence.
func (r *reach) mute() bool { return r.muteAt.Load() == r.heard.Load()+1 }

// answers reports whether a Fetch should wait for the peer.
func (r *reach) answers() bool { return !r.sendFailing.Load() && !r.mute() }

// silentSince records a sign of silence as of frame count h (a value of
// heard): the peer is mute unless a frame arrived since. It reports
// whether the peer is mute.
func (r *reach) silentSince(h uint64) bool {
	for {
		m := r.muteAt.Load()
		if m >= h+1 || r.muteAt.CompareAndSwap(m, h+1) {
			break
		}
	}
	return r.heard.Load() == h
}

// probe reports whether a Fetch should ask the mute peer now (without
// waiting for it): once per probeEvery at most.
func (r *reach) probe(now time.Time) bool {
	last := r.probed.Load()
	if now.UnixNano()-last < int64(probeEvery) {
		return false
	}
	return r.probed.CompareAndSwap(last, now.UnixNano())
}

// StreamLost tells the engine that the network saw its stream with peer
// end by the peer's doing or the network's (reset, closed, cut), before
// any verdict of the failure detector: a killed process's kernel resets its
// connections at once. The peer is mute (see reach) until it sends a
// frame: Fetches stop waiting for it. It does nothing for a peer not up.
// StreamLost never blocks on the network.
func (e *Engine) StreamLost(id string) {
	e.mu.RLock()
	p := e.peers[id]
	e.mu.RUnlock()
	if p == nil {
		return
	}
	e.peerSilent(p, p.reach.heard.Load(), "stream lost")
}

// peerSilent records a sign that p does not answer, as of its frame count
// h. If p is mute (nothing heard since h), no Fetch waits for it any more,
// and ticket waits check again (see WaitResponsive).
func (e *Engine) peerSilent(p *peer, h uint64, why string) {
	was := p.reach.mute()
	if !p.reach.silentSince(h) {
		return
	}
	if !was {
		e.log.Info("replicate: peer not answering; reads stop waiting for it until it sends again", "peer", p.id, "why", why)
	}
	e.stopWaitingFor(p)
}

// sendFailed marks p unreachable until a Send to it succeeds again: no
// Fetch waits for it meanwhile. The sender calls it when a Send fails.
func (e *Engine) sendFailed(p *peer) {
	if p.reach.sendFailing.Swap(true) {
		return
	}
	e.stopWaitingFor(p)
}

// stopWaitingFor releases every Fetch waiting for p, and wakes ticket
// waits to check again.
func (e *Engine) stopWaitingFor(p *peer) {
	e.callMu.Lock()
	for _, call := range e.fetches {
		call.stopWaiting(p)
	}
	e.callMu.Unlock()
	e.broadcast()
}
