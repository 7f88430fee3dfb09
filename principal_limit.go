package peersession

import (
	"context"
	"slices"

	"github.com/peersession/peersession/replicate/model"
)

// LoginPolicy says what a login past Config.MaxSessionsPerPrincipal does.
type LoginPolicy int

const (
	// EndOldest (the default) lets the new login in and ends the user's
	// oldest sessions, by login order, down to the limit.
	EndOldest LoginPolicy = iota
	// RefuseNew refuses a login past the limit with ErrTooManyLogins. Two
	// logins at once on two nodes may both be let in; once each node has
	// heard of both, the later one ends.
	RefuseNew
)

// The limit holds cluster-wide without coordination: every node, whenever
// it learns of a session tagged with a principal (a login here, or one
// replicated from a peer), orders that principal's live sessions by the
// version of the write that tagged them (a hybrid logical clock reading,
// unique and totally ordered) and ends those past the limit: the oldest
// under EndOldest, the newest under RefuseNew. Nodes that hold the same
// sessions end the same ones, so simultaneous logins on every node settle,
// once replication has carried them everywhere, on the same survivors.

// principalLimitLocked refuses, under RefuseNew, a commit of s that would
// tag it with a principal already at its limit on this node. s.mu must be
// held.
func (st *Store) principalLimitLocked(s *Session) error {
	limit := st.cfg.MaxSessionsPerPrincipal
	if limit == 0 || st.cfg.LoginPolicy != RefuseNew || s.principal == nil || *s.principal == "" {
		return nil
	}
	p := *s.principal
	if s.base != nil && s.base.rec.Principal == p {
		return nil // not a new login
	}
	n := 0
	for _, id := range st.principals.ids(p) {
		if id != s.id && st.lookup(id) != nil {
			n++
		}
	}
	if n >= limit {
		return ErrTooManyLogins
	}
	return nil
}

// enforcePrincipalLimit ends principal p's sessions past
// Config.MaxSessionsPerPrincipal (see the top of this file). It is called
// after a change that tagged a session with p has been stored.
func (st *Store) enforcePrincipalLimit(p string) {
	limit := st.cfg.MaxSessionsPerPrincipal
	if limit == 0 || p == "" {
		return
	}
	ids := st.principals.ids(p)
	if len(ids) <= limit {
		return
	}
	type login struct {
		id  string
		ver model.Version
	}
	live := make([]login, 0, len(ids))
	for _, id := range ids {
		if e := st.lookup(id); e != nil && e.rec.Principal == p {
			live = append(live, login{id, e.rec.PrincipalVer})
		}
	}
	if len(live) <= limit {
		return
	}
	slices.SortFunc(live, func(a, b login) int { return a.ver.Compare(b.ver) })
	extra := live[:len(live)-limit] // the oldest
	if st.cfg.LoginPolicy == RefuseNew {
		extra = live[limit:] // the newest: those that came past the limit
	}
	for _, l := range extra {
		// Every node ends the same sessions; the tombstones it sends make
		// it happen sooner on a node that has not heard of them all yet.
		if _, err := st.destroyID(context.Background(), l.id); err != nil {
			st.cfg.Logger.Warn("peersession: ending a session past Config.MaxSessionsPerPrincipal failed",
				"session", logID(l.id), "err", err)
		}
	}
}

// String names the policy.
func (p LoginPolicy) String() string {
	if p == RefuseNew {
		return "refuse-new"
	}
	return "end-oldest"
}
