package peersession

import (
	"context"
	"fmt"
	"slices"
	"sync"
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
// node and, with replication, every node it has heard from.
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
// costs one index lookup, not a scan.
func (st *Store) DestroyPrincipal(ctx context.Context, p string) (int, error) {
	if p == "" {
		return 0, fmt.Errorf("peersession: DestroyPrincipal needs a principal; an empty one names no user")
	}
	if st.closed.Load() {
		return 0, ErrClosed
	}
	n := 0
	for _, id := range st.principals.ids(p) {
		ended, err := st.destroyID(ctx, id)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}
