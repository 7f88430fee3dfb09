package peersession

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/peersession/peersession/replicate/model"
)

// commitResult tells the middleware what the client must be told after a
// commit.
type commitResult struct {
	token    string // the token the client should now hold
	stamp    int64  // the session's version stamp (read-your-writes)
	deadline int64  // the session's absolute deadline, for Persist cookies
	send     bool   // send the cookie (token or stamp changed)
	clear    bool   // expire the client's cookie
}

// commit saves s's pending changes: it stamps each changed key with the next
// clock value, merges the change into the store and hands it to
// replication. On error nothing is stored and s keeps its changes.
func (st *Store) commit(ctx context.Context, s *Session) (commitResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.commitLocked(ctx, s)
}

// commitSending is commit at the point the response headers go out: the
// session is marked sent, so that a RenewID or Destroy after it says
// their cookie cannot reach the client.
func (st *Store) commitSending(ctx context.Context, s *Session, r *http.Request) (commitResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.sent = true }()
	if allow := st.cfg.AllowNew; allow != nil && s.createsLocked() && !allow(r) {
		return commitResult{}, ErrNewSessionRefused
	}
	return st.commitLocked(ctx, s)
}

// touchOnlyLocked reports whether s's only pending change is a touch of
// its last access. s.mu must be held.
func (s *Session) touchOnlyLocked() bool {
	return s.touch && len(s.dirty) == 0 && s.principal == nil && !s.destroy && !s.renew && s.expiry == 0
}

// createsLocked reports whether committing s now would create a session.
// s.mu must be held.
func (s *Session) createsLocked() bool {
	return s.loaded && s.base == nil && !s.destroy &&
		(len(s.dirty) > 0 || (s.principal != nil && *s.principal != ""))
}

// commitLocked is commit with s.mu held.
func (st *Store) commitLocked(ctx context.Context, s *Session) (commitResult, error) {
	if !s.loaded || !s.changedLocked() {
		return commitResult{}, nil
	}
	if st.closed.Load() {
		return commitResult{}, ErrClosed
	}
	if err := st.clockFenced(); err != nil {
		if s.touchOnlyLocked() {
			// A read's touch (TouchInterval) is no write the client
			// asked for: dropped, so that reads keep working.
			s.touch = false
			return commitResult{}, nil
		}
		return commitResult{}, err
	}
	if err := s.checkWritableLocked(); err != nil {
		return commitResult{}, err
	}
	if s.loadErr != nil && s.createsLocked() {
		// The client's session may exist (its holders did not answer):
		// a new one would replace its cookie and log it out.
		return commitResult{}, s.loadErr
	}
	if err := st.principalLimitLocked(s); err != nil {
		return commitResult{}, err
	}
	var tagged string // a principal this commit tags the session with
	if s.principal != nil && !s.destroy {
		tagged = *s.principal
	}
	res, err := st.commitKindLocked(ctx, s)
	if err == nil && tagged != "" {
		st.enforcePrincipalLimit(tagged)
	}
	return res, err
}

// commitKindLocked is commitLocked's commit of each kind of change.
func (st *Store) commitKindLocked(ctx context.Context, s *Session) (commitResult, error) {
	switch {
	case s.destroy:
		return st.commitDestroyLocked(ctx, s)
	case s.base == nil:
		return st.commitNewLocked(ctx, s)
	case s.renew:
		return st.commitRenewLocked(ctx, s)
	}
	return st.commitUpdateLocked(ctx, s)
}

// deltaLocked returns the session's pending changes as a record for id,
// each stamped with a fresh version. Its Keys is s.dirty itself (already
// sorted), stamped in place: a commit that succeeds drops s.dirty
// (resetLocked) before the delta goes to replication, which may keep it; one
// that fails keeps s.dirty, and the next attempt stamps it again.
func (st *Store) deltaLocked(s *Session, id string) model.Record {
	d := model.Record{ID: id}
	if len(s.dirty) > 0 {
		for i := range s.dirty {
			s.dirty[i].Value.Ver = st.clock.Now()
		}
		d.Keys = s.dirty
	}
	if s.principal != nil {
		d.Principal, d.PrincipalVer = *s.principal, st.clock.Now()
	}
	if s.expiry != 0 {
		// Merge keeps the largest idle timeout and the latest access, so
		// the session lasts until the expiry on every node.
		now := st.cfg.Now().UnixNano()
		d.Access = now
		d.IdleTimeout = max(int64(st.cfg.IdleTimeout), s.expiry-now)
	}
	return d
}

func (st *Store) commitNewLocked(ctx context.Context, s *Session) (commitResult, error) {
	if len(s.dirty) == 0 && (s.principal == nil || *s.principal == "") {
		s.resetLocked(nil)
		return commitResult{}, nil // nothing worth a session
	}
	token := s.chosen
	if token == "" {
		token = newToken()
	}
	id := idOf(token)
	if s.chosen != "" {
		e := st.shards.get(id)
		if pt := st.part.Load(); pt != nil && (e == nil || !pt.holds(id)) {
			// Partitioned: the tombstone, if any, is on the holders
			// (this node may hold the session without a copy yet, or
			// have a stray copy older than their tombstone).
			got, err := st.holdersCopy(ctx, id)
			if err != nil {
				return commitResult{}, err
			}
			if got != nil {
				e = got
			}
		}
		if e != nil && e.rec.IsDead() {
			return commitResult{}, fmt.Errorf("%w: the token names a destroyed session", ErrSessionEnded)
		}
	}
	now := st.cfg.Now()
	d := st.deltaLocked(s, id)
	d.Created, d.Access = now.UnixNano(), now.UnixNano()
	if s.expiry == 0 {
		d.Deadline = now.Add(st.cfg.Lifetime).UnixNano()
	} // else the framework keeps the absolute lifetime (SetExpiry)
	d.IdleTimeout = max(int64(st.cfg.IdleTimeout), d.IdleTimeout)
	prev, next, err := st.mergeIn(d, applyOpts{})
	if err != nil {
		return commitResult{}, err
	}
	s.token, s.id, s.chosen = token, id, ""
	s.resetLocked(next)
	st.fireEvents(prev, next, false)
	res := st.resultFor(next, token, true)
	return res, st.replicateOut(ctx, d)
}

func (st *Store) commitUpdateLocked(ctx context.Context, s *Session) (commitResult, error) {
	d := st.deltaLocked(s, s.id)
	now := st.cfg.Now()
	if s.touch {
		d.Access = now.UnixNano()
	}
	var next *entry
	var err error
	if st.commitsWhole(s) {
		// Partitioned, and the request loaded a copy fetched from the
		// holders (not stored), or this node no longer holds the session
		// (its copy may be handed over and dropped since): that copy is
		// what the change applies to, whether or not this node holds the
		// session by now. Stored on a node that does not hold it, it is
		// handed over and dropped (rebalance.go).
		_, next, err = st.mergeIn(model.Merge(s.base.rec, d), applyOpts{now: now, existing: true})
	} else {
		_, next, err = st.mergeIn(d, applyOpts{mustExist: true, now: now})
	}
	if errors.Is(err, ErrSessionEnded) {
		s.resetLocked(nil)
		s.token, s.id = "", ""
		return commitResult{clear: true}, err
	}
	if err != nil {
		return commitResult{}, err
	}
	versioned := len(d.Keys) > 0 || s.principal != nil
	s.resetLocked(next)
	res := st.resultFor(next, s.token, versioned)
	if pt := st.part.Load(); pt != nil && !pt.holds(next.rec.ID) {
		// A stray: its holders have the session, and get this change;
		// once they acknowledge it the stray goes without being pushed
		// whole (rebalance.go).
		t, err := st.repl.publishTicket(ctx, []model.Record{d}, true)
		pt.strays.written(next.rec.ID, t, next)
		if err != nil {
			return res, fmt.Errorf("peersession: %w", err)
		}
		return res, nil
	}
	return res, st.replicateOut(ctx, d)
}

func (st *Store) commitRenewLocked(ctx context.Context, s *Session) (commitResult, error) {
	oldID := s.id
	cur := st.lookup(oldID)
	if st.commitsWhole(s) {
		cur = s.base // see commitUpdateLocked
		// The copy loaded may have been destroyed on the holders during
		// the request (a logout in another tab): renewing it would bring
		// it back under the new ID. Ask them what they have now.
		now, err := st.holdersCopy(ctx, oldID)
		if err != nil {
			return commitResult{}, err
		}
		if now != nil && now.rec.IsDead() {
			s.resetLocked(nil)
			s.token, s.id = "", ""
			return commitResult{clear: true}, ErrSessionEnded
		}
		if now != nil && st.alive(now, st.cfg.Now()) {
			cur = st.transientEntry(model.Merge(cur.rec, now.rec))
		}
	}
	if cur == nil {
		s.resetLocked(nil)
		s.token, s.id = "", ""
		return commitResult{clear: true}, ErrSessionEnded
	}
	token := newToken()
	now := st.cfg.Now()
	full := model.Merge(cur.rec, st.deltaLocked(s, oldID))
	d := model.Record{
		ID:          idOf(token),
		Created:     full.Created,
		Deadline:    full.Deadline, // renewal does not extend the lifetime
		IdleTimeout: full.IdleTimeout,
		Access:      now.UnixNano(),
		Principal:   full.Principal,
	}
	if d.Principal != "" {
		d.PrincipalVer = st.clock.Now()
	}
	for _, kv := range full.Keys { // in order, so d.Keys is sorted too
		if !kv.Value.Deleted {
			if d.Keys == nil {
				d.Keys = make([]model.KeyValue, 0, len(full.Keys))
			}
			kv.Value.Ver = st.clock.Now()
			d.Keys = append(d.Keys, kv)
		}
	}
	prev, next, err := st.mergeIn(d, applyOpts{replaces: true})
	if err != nil {
		return commitResult{}, err
	}
	tomb := st.tombstone(oldID, &full)
	oldPrev, oldNext, err := st.mergeIn(tomb, applyOpts{})
	if err != nil {
		return commitResult{}, fmt.Errorf("peersession: renew: end old ID: %w", err)
	}
	s.token, s.id = token, d.ID
	s.resetLocked(next)
	st.fireEvents(oldPrev, oldNext, false)
	st.fireEvents(prev, next, false)
	return st.resultFor(next, token, true), st.replicateOut(ctx, d, tomb)
}

func (st *Store) commitDestroyLocked(ctx context.Context, s *Session) (commitResult, error) {
	var tomb model.Record
	if s.ended != nil {
		tomb = st.tombstone(s.ended.rec.ID, &s.ended.rec)
		prev, next, err := st.mergeIn(tomb, applyOpts{})
		if err != nil && err != errStale {
			return commitResult{}, err
		}
		st.fireEvents(eventBase(prev, s.ended), next, false)
	}
	s.ended, s.destroy = nil, false
	res := commitResult{clear: true}
	if len(s.dirty) > 0 || (s.principal != nil && *s.principal != "") {
		// Written to after Destroy: a fresh session with a new ID.
		var err error
		if res, err = st.commitNewLocked(ctx, s); err != nil {
			return commitResult{}, err
		}
	} else {
		s.resetLocked(nil)
	}
	if tomb.ID == "" {
		return res, nil
	}
	return res, st.replicateOut(ctx, tomb)
}

// holdersCopy fetches session id from its holders (partitioned mode) for
// a commit that must not act on a copy they have ended meanwhile: what
// they have, merged with this node's copy (nil if none has anything), or
// errHoldersSilent when they did not all answer.
func (st *Store) holdersCopy(ctx context.Context, id string) (*entry, error) {
	res := st.repl.fetch(ctx, id)
	if res.unsure {
		return nil, errHoldersSilent
	}
	if res.entry != nil {
		return res.entry, nil // not a holder: fetched, not stored
	}
	return st.shards.get(id), nil // a holder: fetched and merged (or nothing anywhere)
}

// commitsWhole reports whether a commit of s applies its change to the
// whole session the request loaded rather than to the stored one: in
// partitioned mode, when that snapshot was fetched from the holders and
// not stored (the path is chosen by where the snapshot came from, not by
// whether this node holds the session now: it may have become a holder
// during the request, before any copy reached it), or when this node no
// longer holds the session; unless this node has its tombstone. s.mu must
// be held.
func (st *Store) commitsWhole(s *Session) bool {
	pt := st.part.Load()
	if pt == nil || s.base == nil || s.id == "" || !st.alive(s.base, st.cfg.Now()) {
		return false
	}
	if !s.base.fetched && pt.holds(s.id) {
		return false
	}
	e := st.shards.get(s.id)
	return e == nil || !e.rec.IsDead()
}

// resetLocked clears s's pending changes after a commit; base is the
// session's new snapshot.
func (s *Session) resetLocked(base *entry) {
	s.base, s.dirty, s.principal = base, nil, nil
	s.touch, s.destroy, s.renew = false, false, false
	s.size, s.expiry = 0, 0
	if base != nil {
		s.size = base.size
		s.stamp = base.stamp
	}
}

// resultFor returns the commit result for a session now stored as e.
func (st *Store) resultFor(e *entry, token string, send bool) commitResult {
	return commitResult{
		token:    token,
		stamp:    e.stamp,
		deadline: e.rec.Deadline,
		send:     send,
	}
}
