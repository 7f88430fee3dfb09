package peersession

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// principalIndex maps a principal (a user) to the IDs of its live
// sessions, so "log out everywhere" needs no scan of all sessions.
//
// It is updated under the shard lock of the session that changes, so its
// updates for one session happen in the order the session changed.
type principalIndex struct {
	mu sync.Mutex // guards m
	m  map[string]map[string]struct{}
}

// move records that session id's principal changed from old to cur (either
// may be empty).
func (x *principalIndex) move(id, old, cur string) {
	if old == cur {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if old != "" {
		if set := x.m[old]; set != nil {
			delete(set, id)
			if len(set) == 0 {
				delete(x.m, old)
			}
		}
	}
	if cur != "" {
		if x.m == nil {
			x.m = make(map[string]map[string]struct{})
		}
		set := x.m[cur]
		if set == nil {
			set = make(map[string]struct{})
			x.m[cur] = set
		}
		set[id] = struct{}{}
	}
}

// ids returns the session IDs of principal p, sorted.
func (x *principalIndex) ids(p string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]string, 0, len(x.m[p]))
	for id := range x.m[p] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// PrincipalSessions returns the IDs (token hashes, safe to show) of the
// live sessions tagged with principal p by Session.SetPrincipal, on this
// node and, with replication, every node it has heard from; in partitioned
// mode (ClusterConfig.Copies), only those this node holds.
func (st *Store) PrincipalSessions(p string) []string {
	ids := st.principals.ids(p)
	now := st.cfg.Now()
	live := ids[:0]
	for _, id := range ids {
		if e := st.shards.get(id); e != nil && st.alive(e, now) {
			live = append(live, id)
		}
	}
	return live
}

// DestroyPrincipal ends every session tagged with principal p ("log out
// everywhere", after a password change) and returns how many it ended. It
// costs one index lookup, not a scan. In partitioned mode
// (ClusterConfig.Copies) each node indexes only the sessions it holds, so
// it also asks every peer to end the ones it holds, and waits for their
// answers (bounded by ctx, or 10 s if ctx has no deadline); an error then
// says which peers did not answer, and the count is of the sessions ended
// so far.
func (st *Store) DestroyPrincipal(ctx context.Context, p string) (int, error) {
	if p == "" {
		return 0, fmt.Errorf("peersession: DestroyPrincipal needs a principal; an empty one names no user")
	}
	if st.closed.Load() {
		return 0, ErrClosed
	}
	ended, err := st.endLocalPrincipal(ctx, p)
	if err != nil || st.part.Load() == nil {
		return len(ended), err
	}
	// Partitioned: each node indexes only the sessions it holds. Every
	// peer ends its own, and each session counts once.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, endPrincipalWait)
		defer cancel()
	}
	remote, err := st.repl.eng.EndPrincipal(ctx, p)
	all := make(map[string]struct{}, len(ended)+len(remote))
	for _, id := range ended {
		all[id] = struct{}{}
	}
	for _, id := range remote {
		all[id] = struct{}{}
	}
	if err != nil {
		return len(all), fmt.Errorf("peersession: DestroyPrincipal: %w", err)
	}
	return len(all), nil
}

// endPrincipalWait bounds, when the caller's context has no deadline, the
// wait for the peers to end a principal's sessions (partitioned mode).
const endPrincipalWait = 10 * time.Second

// endLocalPrincipal ends the sessions tagged with principal p that this
// node indexes and returns the IDs of those it ended: DestroyPrincipal's
// work on this node, and what a peer's DestroyPrincipal asks of it in
// partitioned mode (replicate.Config.EndPrincipal).
func (st *Store) endLocalPrincipal(ctx context.Context, p string) ([]string, error) {
	var ended []string
	for _, id := range st.principals.ids(p) {
		ok, err := st.destroyID(ctx, id)
		if err != nil {
			return ended, err
		}
		if ok {
			ended = append(ended, id)
		}
	}
	return ended, nil
}
