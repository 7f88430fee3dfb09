package replicate

import "time"

// holdAcksPeers is the fewest peers with which Acks are held (see
// Config.AckDelay): a write costs a frame and an Ack per peer, so the
// system calls saved grow with the peers, while with one or two the
// latency of a pair is what matters (issue 23, bench/NOTES.md).
const holdAcksPeers = 3

// holdAcks reports whether Acks may wait for company: with
// holdAcksPeers peers or more.
func (e *Engine) holdAcks() bool {
	live, _ := e.livePeers()
	return len(live) >= holdAcksPeers
}

// maxGather bounds the bytes of the frames the sender writes at once
// (at least one frame is written, whatever its size).
const maxGather = 256 << 10

// gathered is what the sender writes to its peer at once: the Acks
// waiting, then the Batches the window lets out, so that a busy stream
// costs one write (and the peer one read) per wake-up rather than one per
// frame (see FramesSender). Used by the sender goroutine only.
type gathered struct {
	frames [][]byte
	acks   []byte // the Ack frames, one after the other
	ackEnd []int  // where each Ack frame ends in acks
	size   int    // bytes in frames, and in the Acks not yet in frames
}

// addAck copies an encoded Ack frame (valid until the next ackFrame).
func (g *gathered) addAck(frame []byte) {
	g.acks = append(g.acks, frame...)
	g.ackEnd = append(g.ackEnd, len(g.acks))
	g.size += len(frame)
}

// ackFrames puts the Acks copied so far into frames: acks no longer grows
// once they are sliced.
func (g *gathered) ackFrames() {
	start := 0
	for _, end := range g.ackEnd {
		g.frames = append(g.frames, g.acks[start:end:end])
		start = end
	}
}

// add adds a frame that stays valid until the write.
func (g *gathered) add(frame []byte) {
	g.frames = append(g.frames, frame)
	g.size += len(frame)
}

// reset empties g for the next write, keeping its arrays (and dropping
// its references to Batch frames).
func (g *gathered) reset() {
	clear(g.frames)
	g.frames, g.acks, g.ackEnd, g.size = g.frames[:0], g.acks[:0], g.ackEnd[:0], 0
}

// sendPending writes what waits for the peer: the Acks in the control
// queue (up to its first other frame), then the Batches the window lets
// out, together (up to maxGather bytes); then that other control frame,
// alone, as it was queued after those Acks and may need its sender woken
// (see sendCtrlWait). Acks with nothing else to go with wait up to
// Config.AckDelay: then it writes nothing and sets p.ackDue. It returns
// how many frames it wrote; false means the peer went down.
func (p *peer) sendPending() (int, bool) {
	g := &p.gathered
	defer g.reset()
	p.ackDue = time.Time{}
	// Acks alone wait up to AckDelay for a Batch to go with them, or for
	// more Acks, but never enough of them to fill the peer's window (its
	// MaxInflight taken to be ours): held Acks must not hold up its Batches.
	// And only while the peer's Batches come less than AckDelay apart, so
	// that the next one's Ack is likely company within that time: a lone
	// write (a writer waiting for its Acks through WaitForPeers, at a low
	// rate) is acknowledged at once, as with Nagle's algorithm left off.
	var first *batch
	if d := p.e.cfg.AckDelay; d > 0 && p.e.holdAcks() {
		if since, n, gap, ok := p.ctrl.acksOnly(); ok && gap < d && n < max(p.e.cfg.MaxInflight/2, 1) {
			if due := since.Add(d); time.Now().Before(due) {
				if first = p.nextBatch(); first == nil {
					p.ackDue = due
					return 0, true
				}
			}
		}
	}
	var other ctrlFrame // a control frame that is not an Ack, to send alone
	for g.size < maxGather {
		c, ok := p.ctrl.pop()
		if !ok {
			break
		}
		if c.frame != nil || c.sent != nil {
			other = c
			break
		}
		frame, err := p.ackFrame(c.ackSeq, c.ackRefused)
		if err != nil {
			p.e.log.Error("replicate: encode ack", "err", err)
			continue
		}
		g.addAck(frame)
	}
	g.ackFrames()
	if first != nil {
		g.add(first.frame)
	}
	for other.frame == nil && other.sent == nil && g.size < maxGather {
		b := p.nextBatch()
		if b == nil {
			break
		}
		g.add(b.frame)
	}
	n := len(g.frames)
	if n > 0 && !p.sendFrames(g.frames) {
		return n, false
	}
	if other.frame != nil || other.sent != nil {
		if other.frame != nil {
			p.one[0] = other.frame
			ok := p.sendFrames(p.one[:])
			p.one[0] = nil
			if !ok {
				return n, false
			}
			n++
		}
		if other.sent != nil {
			close(other.sent)
		}
	}
	if n > 0 && p.e.flushers.Load() > 0 {
		p.e.broadcast()
	}
	return n, true
}

// sendFrames sends frames in order, at once if the Network is a
// FramesSender, retrying with exponential backoff while the peer is up;
// false means it went down first.
func (p *peer) sendFrames(frames [][]byte) bool {
	multi, _ := p.e.cfg.Network.(FramesSender)
	delay := minBackoff
	var t *time.Timer
	for {
		var err error
		switch {
		case len(frames) == 1 || multi == nil:
			for len(frames) > 0 && err == nil {
				if err = p.e.cfg.Network.Send(p.ctx, p.id, frames[0]); err == nil {
					frames = frames[1:]
					p.idle.sent()
				}
			}
		default:
			if err = multi.SendFrames(p.ctx, p.id, frames); err == nil {
				p.idle.sent()
			}
		}
		if err == nil {
			if t != nil {
				t.Stop()
				p.reach.sendFailing.Store(false)
			}
			return true
		}
		if p.ctx.Err() != nil {
			return false
		}
		p.counters.failed.Add(1)
		p.e.sendFailed(p)
		if delay == minBackoff { // the first failure of a streak
			p.e.log.Warn("replicate: send failed, retrying", "peer", p.id, "err", err, "backoff", delay)
		} else {
			p.e.log.Debug("replicate: send failed, retrying", "peer", p.id, "err", err, "backoff", delay)
		}
		if t == nil {
			t = time.NewTimer(delay)
		} else {
			t.Reset(delay)
		}
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return false
		}
		delay = min(2*delay, maxBackoff)
	}
}
