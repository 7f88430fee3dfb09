package peersession

import "time"

// sweepLoop removes expired sessions and old tombstones every
// Config.SweepInterval until Close. Expired sessions are invisible from
// the moment they expire; sweeping only frees their memory and fires
// OnExpire.
func (st *Store) sweepLoop() {
	defer st.wg.Done()
	t := time.NewTicker(st.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-st.stop:
			return
		case <-t.C:
			st.Sweep()
		}
	}
}

// Sweep removes expired sessions and tombstones past their window now, and
// returns how many sessions it expired. The store calls it every
// Config.SweepInterval; an app's tests that set Config.Now call it to
// expire sessions (and fire OnExpire) at once.
func (st *Store) Sweep() int {
	now := st.cfg.Now()
	var expired []*entry
	for i := range st.shards.s {
		sh := &st.shards.s[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			switch {
			case e.rec.IsDead():
				if e.rec.Deadline == 0 || now.UnixNano() >= e.rec.Deadline+int64(tombstoneGrace) {
					delete(sh.m, id)
					st.tombs.count.Add(-1)
				}
			case e.partial():
				// The session never arrived: drop the orphaned change once
				// no session could still be alive to claim it.
				if now.UnixNano() >= e.stamp+int64(st.cfg.Lifetime+tombstoneGrace) {
					delete(sh.m, id)
				}
			case e.rec.Expired(now):
				delete(sh.m, id)
				st.principals.move(id, e.rec.Principal, "")
				st.account(e, nil)
				expired = append(expired, e)
			}
		}
		sh.mu.Unlock()
	}
	st.stats.expired.Add(int64(len(expired)))
	if f := st.cfg.OnExpire; f != nil {
		for _, e := range expired {
			f(eventOf(e, false))
		}
	}
	return len(expired)
}
