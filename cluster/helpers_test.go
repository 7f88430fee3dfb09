package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testcluster"
)

var (
	testKey1 = bytes.Repeat([]byte{1}, KeySize)
	testKey2 = bytes.Repeat([]byte{2}, KeySize)
	testKey3 = bytes.Repeat([]byte{3}, KeySize)
)

const (
	waitFor = 5 * time.Second
	tick    = 5 * time.Millisecond
)

// fastTimers makes failure detection take well under a second, with
// enough slack (suspicion of 200-400ms) that a loaded CI machine running
// -race does not declare live nodes dead: testcluster's timers, probing
// twice as often.
func fastTimers(c *memberlist.Config) {
	testcluster.FastTimers(c)
	c.ProbeInterval = 50 * time.Millisecond
	c.ProbeTimeout = 40 * time.Millisecond
	c.SuspicionMult = 4
	c.RetransmitMult = 2
}

// relaxed is a Config modifier for tests that move data and need no quick
// failure detection: slower probes keep a CPU-starved -race run from
// declaring live nodes dead mid-test.
func relaxed(c *Config) {
	c.Tune = func(mc *memberlist.Config) {
		fastTimers(mc)
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 150 * time.Millisecond
		mc.SuspicionMult = 6
	}
}

type downEvent struct {
	Peer Peer
	Left bool
}

// recorder is a Handler that records everything it is given.
type recorder struct {
	mu     sync.Mutex // guards the fields below
	ups    []Peer
	downs  []downEvent
	frames map[string][][]byte
}

func newRecorder() *recorder { return &recorder{frames: make(map[string][][]byte)} }

func (r *recorder) PeerUp(p Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups = append(r.ups, p)
}

func (r *recorder) PeerDown(p Peer, left bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.downs = append(r.downs, downEvent{p, left})
}

func (r *recorder) Frame(id string, f []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames[id] = append(r.frames[id], bytes.Clone(f)) // f is lent
}

func (r *recorder) framesFrom(id string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames[id]...)
}

func (r *recorder) upIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, p := range r.ups {
		ids = append(ids, p.ID)
	}
	return ids
}

func (r *recorder) down(id string) (downEvent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.downs) - 1; i >= 0; i-- { // the latest one
		if d := r.downs[i]; d.Peer.ID == id {
			return d, true
		}
	}
	return downEvent{}, false
}

type testNode struct {
	*Node
	rec *recorder
}

var nodeSeq struct {
	mu sync.Mutex
	n  int
}

// newTestNode starts a node on 127.0.0.1 with fast timers and testKey1;
// mod may change the Config. It does not join.
func newTestNode(t *testing.T, mod func(*Config)) testNode {
	t.Helper()
	n, err := startTestNode(t, mod)
	require.NoError(t, err)
	return n
}

// startTestNode is newTestNode returning New's error.
func startTestNode(t *testing.T, mod func(*Config)) (testNode, error) {
	t.Helper()
	nodeSeq.mu.Lock()
	nodeSeq.n++
	name := fmt.Sprintf("n%d", nodeSeq.n)
	nodeSeq.mu.Unlock()
	rec := newRecorder()
	cfg := Config{
		Name:           name,
		Label:          "test",
		Keys:           [][]byte{testKey1},
		Handler:        rec,
		Tune:           fastTimers,
		RejoinInterval: 100 * time.Millisecond,
		DialTimeout:    time.Second,
	}
	if testing.Verbose() && os.Getenv("CLUSTER_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		return testNode{}, err
	}
	t.Cleanup(func() { n.Close() })
	return testNode{n, rec}, nil
}

// gossipAddr is the node's memberlist address, for Seeds.
func (n *Node) gossipAddr() string { return n.ml.LocalNode().Address() }

// seeds returns a Config modifier joining the given nodes.
func seeds(ns ...testNode) func(*Config) {
	return func(c *Config) {
		for _, n := range ns {
			c.Seeds = append(c.Seeds, n.gossipAddr())
		}
	}
}

func join(t *testing.T, n testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, n.Join(ctx))
}

// cluster starts k joined nodes and waits until all see each other.
func cluster(t *testing.T, k int, mod func(*Config)) []testNode {
	t.Helper()
	ns := []testNode{newTestNode(t, mod)}
	join(t, ns[0])
	for i := 1; i < k; i++ {
		n := newTestNode(t, func(c *Config) {
			if mod != nil {
				mod(c)
			}
			seeds(ns[0])(c)
		})
		join(t, n)
		ns = append(ns, n)
	}
	waitPeers(t, ns...)
	return ns
}

// pair starts two joined nodes that see each other.
func pair(t *testing.T, mod func(*Config)) (a, b testNode) {
	t.Helper()
	ns := cluster(t, 2, mod)
	return ns[0], ns[1]
}

// waitFrames waits until to has received n frames from from.
func waitFrames(t *testing.T, to, from testNode, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(to.rec.framesFrom(from.Self().ID)) == n }, waitFor, tick)
}

// waitPeers waits until every node sees every other as a live peer.
func waitPeers(t *testing.T, ns ...testNode) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, n := range ns {
			if len(n.Peers()) != len(ns)-1 {
				return false
			}
			if _, ok := n.alivePeer(n.Self().ID); ok {
				return false
			}
			for _, o := range ns {
				if _, ok := n.alivePeer(o.Self().ID); o.Node != n.Node && !ok {
					return false
				}
			}
		}
		return true
	}, waitFor, tick)
}

// sendRetry sends until it succeeds (connections may be re-established).
func sendRetry(t *testing.T, from *Node, to string, frame []byte) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return from.Send(ctx, to, frame) == nil
	}, waitFor, 20*time.Millisecond)
}

// deliverRetry sends frame from from to to until to has received it: a
// Send that returns nil proves only that the frame reached a stream, and
// one written into a stream the receiver has just closed is lost (the
// sender notices, and redials, only at its next write). It returns the
// frames to has received from from, each of them frame.
func deliverRetry(t *testing.T, from, to testNode, frame []byte) [][]byte {
	t.Helper()
	require.Eventually(t, func() bool {
		if len(to.rec.framesFrom(from.Self().ID)) > 0 {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = from.Send(ctx, to.Self().ID, frame)
		return false
	}, waitFor, 20*time.Millisecond)
	got := to.rec.framesFrom(from.Self().ID)
	for _, f := range got {
		require.Equal(t, frame, f)
	}
	return got
}

// dialRecorder is a Config.Dial that wraps each stream connection it
// opens with wrap and keeps them, in order, for the test to reach.
type dialRecorder[T net.Conn] struct {
	wrap  func(net.Conn) T
	mu    sync.Mutex // guards conns
	conns []T
}

// dial is the Config.Dial.
func (r *dialRecorder[T]) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := r.wrap(conn)
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	return c, nil
}

// dialed returns the connections opened so far.
func (r *dialRecorder[T]) dialed() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.conns...)
}

// pairDialingWith starts node a, whose stream connections go through dial,
// and node b joined to it, and waits until each lists the other.
func pairDialingWith(t *testing.T, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (a, b testNode) {
	t.Helper()
	a = newTestNode(t, func(c *Config) {
		relaxed(c)
		c.Dial = dial
	})
	join(t, a)
	b = newTestNode(t, func(c *Config) { relaxed(c); seeds(a)(c) })
	join(t, b)
	waitPeers(t, a, b)
	return a, b
}
