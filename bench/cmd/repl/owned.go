package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/peersession/peersession"
)

// ownedPool is the sessions a node updates in a "owned" writing phase:
// sessions it owns (the first of Store.Holders), so that every write is
// made on a holder of its session, as a route-aware balancer sends it in
// partitioned mode (in full replication a node owns what it creates).
// The zero value is an empty pool.
type ownedPool struct {
	mu     sync.Mutex // guards tokens
	tokens []string
}

// fill creates sessions of one size-byte key "v" on st until n of them
// are owned by this node (named name), at most 256·n sessions, keeps the
// owned ones (replacing the pool), and waits (at most limit) until st has
// handed everything to its peers.
func (p *ownedPool) fill(st *peersession.Store, name string, n, size int, limit time.Duration) (created int, err error) {
	ctx := context.Background()
	val := strings.Repeat("v", size)
	var owned []string
	for created = 0; len(owned) < n; created++ {
		if created >= 256*n {
			return created, fmt.Errorf("owned pool: %d of %d sessions owned by %s after creating %d: is %s a member?", len(owned), n, name, created, name)
		}
		s := st.NewSession(ctx)
		if err := s.Set("v", val); err != nil {
			return created, err
		}
		t, err := st.Save(ctx, s)
		if err != nil {
			return created, fmt.Errorf("owned pool: %w", err)
		}
		if hs := st.Holders(t); len(hs) > 0 && hs[0] == name {
			owned = append(owned, t)
		}
	}
	quiesce(st, limit)
	p.mu.Lock()
	p.tokens = owned
	p.mu.Unlock()
	return created, nil
}

// get returns the pool's tokens.
func (p *ownedPool) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens
}
