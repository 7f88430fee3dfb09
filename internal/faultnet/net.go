// Package faultnet is a fault-injecting network for tests: it wraps the real
// loopback transports of cluster nodes (memberlist's NetTransport for
// gossip, and the replication stream dialer and listener) so that a test
// can partition nodes, drop or delay their messages, and freeze a node as
// if its process were stopped, then heal it all.
//
// memberlist's MockNetwork cannot do this (it neither drops traffic nor
// survives a closed peer), and tests want the real sockets anyway.
//
// One Net serves every node of a test. A node is known by the name a test
// gives it; the wrappers learn which addresses belong to which node as the
// node binds them, so traffic towards an address nobody registered passes
// untouched.
//
// Where faults apply: packets are dropped or delayed by the sending node's
// wrapper. A connection is judged by its dialing end, which knows both
// nodes: its writes carry the dialer's traffic to the other node and its
// reads the other node's traffic back, so faults in both directions are
// applied there. On the accepting end only Freeze applies (the accepting
// end cannot tell who dialed).
//
// The faults:
//
//   - Partition: no traffic between two groups of nodes. Packets are
//     dropped, dials fail at once, and connections already open between
//     the groups are cut (closed) when the partition starts.
//   - Drop (DropRate, DropNext): a dropped packet is not sent. A dropped
//     stream write is reported as written and the connection is cut under
//     it, as when a peer's connection resets after the kernel took the
//     bytes: the bytes are lost, later writes need a new connection. A
//     dropped read cuts the connection likewise.
//   - Delay: packets are sent late (they may overtake each other); stream
//     writes and reads wait before they happen, which keeps a stream in
//     order. Delays are capped at MaxDelay.
//   - Freeze: the node neither sends nor receives packets; connections to
//     it still open (the kernel accepts them) but it reads and answers
//     nothing until Unfreeze. Writes towards it are taken, as socket
//     buffers would, up to FreezeBuffer bytes per connection, then stall;
//     its own reads, writes and dials stall. A stall ends at Unfreeze, at
//     the I/O's deadline, or at Close. memberlist then declares the node
//     dead, and a write towards it stalls only the goroutine writing.
//
// Randomness (DropRate) comes from a generator seeded by New, so a test
// that sends the same messages in the same order drops the same ones;
// concurrent senders still interleave as the scheduler pleases.
package faultnet

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Kind selects which traffic a drop or delay rule applies to.
type Kind uint8

const (
	// Gossip is memberlist's traffic: packets (probes, gossip) and its
	// streams (push/pull, fallback probes).
	Gossip Kind = 1 << iota
	// Replication is cluster's replication streams.
	Replication
	// All is every kind of traffic.
	All = Gossip | Replication
)

// MaxDelay caps every delay, so that a test cannot hang on one.
const MaxDelay = 5 * time.Second

// Net is the fault controller shared by the wrappers of every node of a
// test. Its methods are safe for concurrent use; its zero value is not
// usable, create one with New.
type Net struct {
	mu      sync.Mutex // guards every field below
	rng     *rand.Rand
	addrs   map[string]string // "ip:port" → node name
	cut     map[pair]bool     // pairs partitioned from each other (both orders)
	rules   map[rule]*action
	frozen  map[string]bool
	conns   map[*conn]struct{} // dialing ends of open connections
	changed chan struct{}      // closed and replaced by every change of faults
	stats   Stats
}

// pair is a direction between two nodes.
type pair struct{ from, to string }

// rule keys a drop or delay setting.
type rule struct {
	from, to string
	kind     Kind
}

// action is what happens to messages matching a rule.
type action struct {
	rate  float64       // drop probability
	next  int           // drop the next this many
	delay time.Duration // delay each
}

// Stats counts what the Net did, for tests to log.
type Stats struct {
	PacketsDropped int // packets not sent
	PacketsDelayed int
	Cuts           int // connections cut (partition, drop)
	Refused        int // dials refused (partition)
	Stalls         int // reads, writes and dials held by a freeze
}

// New returns a Net with no faults whose random drops follow seed.
func New(seed uint64) *Net {
	return &Net{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		addrs:   make(map[string]string),
		cut:     make(map[pair]bool),
		rules:   make(map[rule]*action),
		frozen:  make(map[string]bool),
		conns:   make(map[*conn]struct{}),
		changed: make(chan struct{}),
	}
}

// Stats returns the counts so far.
func (n *Net) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Partition cuts every pair of nodes with one in a and the other in b, in
// both directions, until Heal. Partitions add up.
func (n *Net) Partition(a, b []string) {
	n.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			n.cut[pair{x, y}] = true
			n.cut[pair{y, x}] = true
		}
	}
	var doomed []*conn
	for c := range n.conns {
		if n.cut[pair{c.local, c.remote}] {
			doomed = append(doomed, c)
		}
	}
	n.stats.Cuts += len(doomed)
	n.changedLocked()
	n.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

// Heal ends every partition. Drop and delay rules and freezes stay.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	n.changedLocked()
}

// DropRate drops each message of kind from node from to node to with
// probability p (0 ends the rule's drops).
func (n *Net) DropRate(from, to string, kind Kind, p float64) {
	n.set(from, to, kind, func(a *action) { a.rate = p })
}

// DropNext drops the next count messages of kind from node from to node
// to.
func (n *Net) DropNext(from, to string, kind Kind, count int) {
	n.set(from, to, kind, func(a *action) { a.next = count })
}

// Delay delays each message of kind from node from to node to by d, at
// most MaxDelay (0 ends the delay).
func (n *Net) Delay(from, to string, kind Kind, d time.Duration) {
	n.set(from, to, kind, func(a *action) { a.delay = min(max(d, 0), MaxDelay) })
}

func (n *Net) set(from, to string, kind Kind, f func(*action)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range []Kind{Gossip, Replication} {
		if kind&k == 0 {
			continue
		}
		r := rule{from, to, k}
		a := n.rules[r]
		if a == nil {
			a = &action{}
			n.rules[r] = a
		}
		f(a)
		if *a == (action{}) {
			delete(n.rules, r)
		}
	}
	n.changedLocked()
}

// Freeze makes node stop sending and receiving, as a stopped process:
// see the package comment.
func (n *Net) Freeze(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.frozen[node] = true
	n.changedLocked()
}

// Unfreeze lets a frozen node run again; what was written to it meanwhile
// is delivered.
func (n *Net) Unfreeze(node string) {
	n.mu.Lock()
	delete(n.frozen, node)
	n.changedLocked()
	thawed := n.heldLocked()
	n.mu.Unlock()
	for _, c := range thawed {
		c.flush()
	}
}

// Reset ends every fault: partitions, drop and delay rules, freezes.
func (n *Net) Reset() {
	n.mu.Lock()
	clear(n.cut)
	clear(n.rules)
	clear(n.frozen)
	n.changedLocked()
	thawed := n.heldLocked()
	n.mu.Unlock()
	for _, c := range thawed {
		c.flush()
	}
}

// heldLocked returns the open connections to nodes no longer frozen,
// which may hold data for them.
func (n *Net) heldLocked() []*conn {
	var out []*conn
	for c := range n.conns {
		if !n.frozen[c.remote] {
			out = append(out, c)
		}
	}
	return out
}

func (n *Net) isFrozen(node string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.frozen[node]
}

// changedLocked wakes everything waiting for the faults to change.
func (n *Net) changedLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// register records that addr belongs to node.
func (n *Net) register(node string, addr net.Addr) {
	if addr == nil {
		return
	}
	n.registerString(node, addr.String())
}

func (n *Net) registerString(node, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[addr] = node
}

// nodeAt returns the node that registered addr, or "".
func (n *Net) nodeAt(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addrs[addr]
}

// verdict is what to do with one message.
type verdict struct {
	drop  bool          // do not deliver (a packet), cut (a stream)
	cut   bool          // partitioned
	stall bool          // a frozen node is involved: wait for a change
	delay time.Duration // deliver late
	wake  <-chan struct{}
}

// judge decides the fate of one message of kind from node from to node to
// ("" for an unknown node, which only a freeze of the other can affect).
// It consumes a DropNext count and a random draw when a rule applies.
func (n *Net) judge(from, to string, kind Kind) verdict {
	n.mu.Lock()
	defer n.mu.Unlock()
	v := verdict{wake: n.changed}
	switch {
	case n.frozen[from] || n.frozen[to]:
		v.stall = true
		return v
	case from == "" || to == "":
		return v
	case n.cut[pair{from, to}]:
		v.cut = true
		return v
	}
	a := n.rules[rule{from, to, kind}]
	if a == nil {
		return v
	}
	switch {
	case a.next > 0:
		a.next--
		v.drop = true
	case a.rate > 0 && n.rng.Float64() < a.rate:
		v.drop = true
	}
	v.delay = a.delay
	return v
}

// track and untrack keep the dialing ends of open connections, to cut
// them when a partition starts.
func (n *Net) track(c *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns[c] = struct{}{}
}

func (n *Net) untrack(c *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, c)
}

func (n *Net) count(f func(*Stats)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.stats)
}
