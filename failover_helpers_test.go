package peersession

import (
	"context"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/faultnet"
	"github.com/stretchr/testify/require"
)

// convergeWithin bounds how long nodes may take to agree after a fault
// ends.
const convergeWithin = 20 * time.Second

// newFaultCluster is newTestCluster with every node on fn, named by its
// ClusterConfig.Name.
func newFaultCluster(t *testing.T, fn *faultnet.Net, opts func(*Config)) *testCluster {
	tc := newTestCluster(t, opts)
	tc.hooks = func(name string) hooks {
		return hooks{faults: func(cc *cluster.Config) {
			cc.WrapTransport = func(tr memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
				return fn.Transport(name, tr)
			}
			cc.Dial = fn.Dialer(name)
			cc.WrapListener = func(ln net.Listener) net.Listener { return fn.Listener(name, ln) }
		}}
	}
	return tc
}

// put loads token's session on st, sets key and saves: one write.
func put(ctx context.Context, st *Store, token, key, val string) error {
	s, err := st.Load(ctx, token)
	if err != nil {
		return err
	}
	if err := s.Set(key, val); err != nil {
		return err
	}
	_, err = st.Save(ctx, s)
	return err
}

// write is one write: key set to val in token's session, through node.
type write struct{ node, token, key, val string }

// writeLog collects the acknowledged writes of concurrent writers.
type writeLog struct {
	mu     sync.Mutex // guards acked and failed
	acked  []write
	failed int
}

func (l *writeLog) add(w write, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		return
	}
	l.acked = append(l.acked, w)
}

func (l *writeLog) snapshot() ([]write, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked), l.failed
}

// missing returns the writes of ws that st does not hold.
func missing(st *Store, ws []write) []write {
	var out []write
	read := map[string]*entry{} // each session read once, as a read finds it
	for _, w := range ws {
		e, ok := read[w.token]
		if !ok {
			e = readEntry(st, w.token)
			read[w.token] = e
		}
		if e == nil || entryValue(st, e, w.key) != w.val {
			out = append(out, w)
		}
	}
	return out
}

// sameDigests reports whether the nodes have converged: in full
// replication, every node has the same anti-entropy digest; in partitioned
// mode, every pair has the same digest of the sessions both hold, and no
// node has copies of sessions it does not hold waiting to be handed over.
func sameDigests(nodes ...*Store) bool {
	if nodes[0].part.Load() == nil {
		d := nodes[0].repl.eng.Digest()
		for _, st := range nodes[1:] {
			if !slices.Equal(d, st.repl.eng.Digest()) {
				return false
			}
		}
		return true
	}
	for i, x := range nodes {
		if x.repl.straysWaiting() > 0 {
			return false
		}
		for _, y := range nodes[i+1:] {
			if !slices.Equal(x.repl.eng.DigestWith(y.repl.node.Self().ID), y.repl.eng.DigestWith(x.repl.node.Self().ID)) {
				return false
			}
		}
	}
	return true
}

// heldBy reports whether st has a copy of each of tokens that it holds
// (every one in full replication; see holds).
func heldBy(st *Store, tokens []string) bool {
	for _, tok := range tokens {
		if holds(st, tok) && !holdsCopy(st, tok) {
			return false
		}
	}
	return true
}

// eventually waits for cond, bounded by convergeWithin, and returns how
// long it took.
func eventually(t *testing.T, cond func() bool, msg string, args ...any) time.Duration {
	t.Helper()
	start := time.Now()
	require.Eventually(t, cond, convergeWithin, tick, append([]any{msg}, args...)...)
	return time.Since(start)
}

// lazyText is a message argument written when the message is: what a
// condition found at its last try.
type lazyText func() string

func (f lazyText) String() string { return f() }

// percentiles returns the median and the largest of ds.
func percentiles(ds []time.Duration) (p50, top time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)-1]
}
