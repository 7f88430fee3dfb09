package replicate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/peersession/peersession/replicate/internal/testrec"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// memNet is an in-memory Network connecting engines. Each directed link
// (from, to) has its own goroutine delivering frames in order. A link can
// be partitioned (Send fails), dropping (Send succeeds, frames vanish) or
// blocked (Send succeeds, frames wait until unblocked: a frozen peer).
type memNet struct {
	mu      sync.Mutex // guards engines, links and closed
	engines map[string]*Engine
	links   map[[2]string]*memLink
	closed  bool
	wg      sync.WaitGroup // link goroutines
}

// memLink is one direction between two nodes.
type memLink struct {
	from, to string
	writes   atomic.Int64 // SendFrames calls

	mu          sync.Mutex // guards every field below
	cond        *sync.Cond // signalled when q, blocked or closed change
	q           [][]byte
	partitioned bool
	dropping    bool
	dropNext    int                     // drop this many frames, then deliver again
	dropIf      func(frame []byte) bool // drops the frames it is true for (nil: none)
	blocked     bool
	stalled     bool // Send itself blocks until unstalled or its ctx ends
	closed      bool
	sent        map[wire.MsgType]int // frames accepted by Send, by type
	handled     map[wire.MsgType]int // frames HandleFrame returned from, by type
}

var errPartitioned = errors.New("memnet: link partitioned")

func newMemNet(t testing.TB) *memNet {
	n := &memNet{engines: make(map[string]*Engine), links: make(map[[2]string]*memLink)}
	t.Cleanup(n.close)
	return n
}

// endpoint returns the Network node self sends through.
func (n *memNet) endpoint(self string) Network { return memEndpoint{n: n, self: self} }

func (n *memNet) register(name string, e *Engine) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.engines[name] = e
}

func (n *memNet) engine(name string) *Engine {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.engines[name]
}

// link returns the link from → to, starting its goroutine on first use.
func (n *memNet) link(from, to string) *memLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := [2]string{from, to}
	l := n.links[key]
	if l == nil {
		l = &memLink{from: from, to: to, sent: make(map[wire.MsgType]int), handled: make(map[wire.MsgType]int), closed: n.closed}
		l.cond = sync.NewCond(&l.mu)
		n.links[key] = l
		if !n.closed {
			n.wg.Add(1)
			go n.deliver(l)
		}
	}
	return l
}

func (n *memNet) deliver(l *memLink) {
	defer n.wg.Done()
	for {
		l.mu.Lock()
		for !l.closed && (len(l.q) == 0 || l.blocked) {
			l.cond.Wait()
		}
		if l.closed {
			l.mu.Unlock()
			return
		}
		f := l.q[0]
		l.q[0] = nil
		l.q = l.q[1:]
		l.mu.Unlock()
		var typ wire.MsgType
		if len(f) >= 2 {
			typ = wire.MsgType(f[1])
		}
		if e := n.engine(l.to); e != nil {
			e.HandleFrame(l.from, f)
		}
		// The network lends frames (cluster.Handler.Frame): scribble over
		// this one, as the next read would, so that an engine keeping a
		// reference to it fails the tests.
		for i := range f {
			f[i] = 0xc1
		}
		if len(f) >= 2 {
			l.mu.Lock()
			l.handled[typ]++
			l.mu.Unlock()
		}
	}
}

func (n *memNet) close() {
	n.mu.Lock()
	n.closed = true
	links := make([]*memLink, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.mu.Unlock()
	for _, l := range links {
		l.set(func(l *memLink) { l.closed = true })
	}
	n.wg.Wait()
}

// set changes the link's state under its lock and wakes its goroutine.
func (l *memLink) set(fn func(*memLink)) {
	l.mu.Lock()
	fn(l)
	l.cond.Broadcast()
	l.mu.Unlock()
}

// count returns how many frames of type t Send accepted.
func (l *memLink) count(t wire.MsgType) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent[t]
}

// delivered returns how many frames of type t the receiver has handled.
func (l *memLink) delivered(t wire.MsgType) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handled[t]
}

// Both directions between a and b.
func (n *memNet) both(a, b string, fn func(*memLink)) {
	n.link(a, b).set(fn)
	n.link(b, a).set(fn)
}

type memEndpoint struct {
	n    *memNet
	self string
}

func (ep memEndpoint) Send(ctx context.Context, peer string, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l := ep.n.link(ep.self, peer)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stalled {
		stop := context.AfterFunc(ctx, func() { l.set(func(*memLink) {}) })
		defer stop()
		for l.stalled && !l.closed && ctx.Err() == nil {
			l.cond.Wait()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	switch {
	case l.closed:
		return errors.New("memnet: closed")
	case l.partitioned:
		return errPartitioned
	}
	if len(frame) >= 2 {
		l.sent[wire.MsgType(frame[1])]++
	}
	if l.dropping {
		return nil
	}
	if l.dropNext > 0 {
		l.dropNext--
		return nil
	}
	if l.dropIf != nil && l.dropIf(frame) {
		return nil
	}
	l.q = append(l.q, append([]byte(nil), frame...))
	l.cond.Broadcast()
	return nil
}

// SendFrames makes memEndpoint a FramesSender: the frames go as if sent
// one by one (a failure stops at the frame it hits), and writes counts
// the calls.
func (ep memEndpoint) SendFrames(ctx context.Context, peer string, frames [][]byte) error {
	ep.n.link(ep.self, peer).writes.Add(1)
	for _, f := range frames {
		if err := ep.Send(ctx, peer, f); err != nil {
			return err
		}
	}
	return nil
}

// memStore is a Store over a map.
type memStore struct {
	mu     sync.Mutex // guards recs and refuse
	recs   map[string]model.Record
	refuse func(model.Record) bool // nil accepts everything
}

func newMemStore() *memStore { return &memStore{recs: make(map[string]model.Record)} }

func (s *memStore) Apply(recs []model.Record) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	refused := 0
	for _, r := range recs {
		if s.refuse != nil && s.refuse(r) {
			refused++
			continue
		}
		if cur, ok := s.recs[r.ID]; ok {
			s.recs[r.ID] = model.Merge(cur, r)
		} else {
			s.recs[r.ID] = r.Clone()
		}
	}
	return refused
}

func (s *memStore) Lookup(id string) (model.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	return r, ok
}

func (s *memStore) Range(fn func(model.Record) bool) {
	s.mu.Lock()
	recs := make([]model.Record, 0, len(s.recs))
	for _, r := range s.recs {
		recs = append(recs, r)
	}
	s.mu.Unlock()
	for _, r := range recs {
		if !fn(r) {
			return
		}
	}
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

func (s *memStore) snapshot() map[string]model.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.recs)
}

// testNode is one engine on a memNet.
type testNode struct {
	name  string
	e     *Engine
	store *memStore
	clock *model.Clock
}

// newNode adds a node named name to n without telling anyone.
func newNode(t testing.TB, n *memNet, name string, id uint64, opt func(*Config)) *testNode {
	t.Helper()
	tn := &testNode{name: name, store: newMemStore(), clock: model.NewClock(id, nil)}
	cfg := Config{
		Self:                name,
		Network:             n.endpoint(name),
		Store:               tn.store,
		Clock:               tn.clock,
		AntiEntropyInterval: -1,
	}
	if opt != nil {
		opt(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	tn.e = e
	n.register(name, e)
	t.Cleanup(e.Close)
	return tn
}

// newCluster returns n nodes named A, B, C, ... all up to each other.
func newCluster(t testing.TB, size int, opt func(*Config)) (*memNet, []*testNode) {
	t.Helper()
	net := newMemNet(t)
	nodes := make([]*testNode, size)
	for i := range nodes {
		nodes[i] = newNode(t, net, string(rune('A'+i)), uint64(i+1), opt)
	}
	connectAll(nodes)
	return net, nodes
}

// frozenPair returns a network of two nodes, A and B, up to each other, whose link
// A→B holds every frame (B looks frozen to A: no batch is acked) until
// the test unblocks it.
func frozenPair(t testing.TB, opt func(*Config)) (net *memNet, a, b *testNode, link *memLink) {
	t.Helper()
	net, nodes := newCluster(t, 2, opt)
	link = net.link("A", "B")
	link.set(func(l *memLink) { l.blocked = true })
	return net, nodes[0], nodes[1], link
}

func connectAll(nodes []*testNode) {
	for _, a := range nodes {
		for _, b := range nodes {
			a.e.PeerUp(b.name)
		}
	}
}

// write returns a change to session id setting key k to v at the node's
// clock.
func (tn *testNode) write(id string, kv ...string) model.Record {
	r := model.Record{ID: id, Keys: make([]model.KeyValue, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Set(kv[i], model.Value{Data: []byte(kv[i+1]), Ver: tn.clock.Now()})
	}
	return r
}

// publish applies changes locally, as the root store does, and publishes
// them.
func (tn *testNode) publish(recs ...model.Record) *Ticket {
	tn.store.Apply(recs)
	return tn.e.Publish(recs...)
}

// value returns the value of key k of session id in tn's store.
func (tn *testNode) value(id, k string) string {
	r, ok := tn.store.Lookup(id)
	if !ok {
		return ""
	}
	return string(testrec.Key(r, k).Data)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, what)
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func peerStats(tn *testNode, peer string) PeerStats { return tn.e.Stats().Peers[peer] }

func sessionID(i int) string { return fmt.Sprintf("session-%06d", i) }

// rawFrame encodes v with msgpack behind a header, bypassing Encode's
// checks, to build frames Encode refuses. v must carry no records (the
// wire codec alone writes those in their wire form).
func rawFrame(t testing.TB, version byte, mt wire.MsgType, v any) []byte {
	t.Helper()
	body, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return append([]byte{version, byte(mt)}, body...)
}
