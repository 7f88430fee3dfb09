package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peersession/peersession/internal/ratelog"
)

// Node is one running member of a cluster. Create it with New, then Join;
// stop it with Leave (optional, graceful) and Close.
type Node struct {
	cfg      Config
	self     Peer
	log      *slog.Logger
	ml       *memberlist.Memberlist
	keyring  *memberlist.Keyring
	del      *delegate
	clock    *clockProbe // memberlist's ping delegate: peers' clock offsets
	ln       net.Listener
	prologue []byte
	stats    counters
	hsLim    *connLimiter    // bounds incoming stream connections still in their handshake
	hsLog    ratelog.Limiter // holds back the warning about handshakes refused by hsLim
	gossip   *gossipGuard    // bounds incoming gossip connections
	// advertised is this node's advertised gossip address, set once New
	// has created memberlist (it does not change after): read without
	// memberlist's lock, which Leave's UpdateNode holds.
	advertised string
	mlLog      *logBridge // memberlist's log, held back per kind of line

	memberIPs atomic.Pointer[map[netip.Addr]struct{}] // members' IPs (see Limits); written under memMu
	names     *nameGuard                              // memberlist's merge and alive delegate: one live node per Name

	refused    atomic.Bool     // the last join found seeds, and all that answered refused this node
	refusalLog ratelog.Limiter // holds back the warning about seeds refusing this node

	fmtMu       sync.Mutex         // guards peerFmt and fmtConflict
	peerFmt     map[string]Formats // the wire formats each peer announced (see PeerFormats)
	fmtConflict *FormatError       // the latest stream refused for want of a common format
	fmtLog      ratelog.Limiter    // holds back the log of streams refused for their formats

	lifeMu sync.Mutex // guards closed, and orders wg.Add against Close's wg.Wait
	closed bool
	stop   chan struct{} // closed by Close
	wg     sync.WaitGroup

	joinOnce sync.Once
	joined   chan struct{} // closed by the first Join: Handler calls wait for it

	leaveMu sync.Mutex  // serializes Leave, and Leave against memberlist shutdown in Close
	left    atomic.Bool // Leave has begun

	memMu   sync.RWMutex // guards members and leaving
	members map[string]*Member
	leaving map[string]bool // live peers whose stream announced a graceful leave

	outMu sync.Mutex // guards outs
	outs  map[string]*outPeer

	inMu     sync.Mutex // guards ins and inByPeer
	ins      map[*inConn]struct{}
	inByPeer map[string]*inConn
}

// New validates cfg and starts memberlist and the stream listener. It does
// not contact any other node: call Join for that. Other nodes may join
// this one and open streams to it as soon as New returns, but the Handler
// hears of them only once Join is called (see Handler), so a caller can
// finish wiring its Handler up between New and Join without missing any.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("cluster: random node ID: %w", err)
	}
	n := &Node{
		cfg:      cfg,
		log:      cfg.Logger,
		prologue: append([]byte(prologuePrefix), cfg.Label...),
		hsLog:    ratelog.Limiter{Every: 10 * time.Second},
		stop:     make(chan struct{}),
		joined:   make(chan struct{}),
		members:  make(map[string]*Member),
		leaving:  make(map[string]bool),
		outs:     make(map[string]*outPeer),
		ins:      make(map[*inConn]struct{}),
		inByPeer: make(map[string]*inConn),
		peerFmt:  make(map[string]Formats),
		fmtLog:   ratelog.Limiter{Every: 10 * time.Second},
		del:      &delegate{queue: newEventQueue()},
	}
	n.clock = newClockProbe(cfg.Clock, &n.stats.clockPayloadsIgnored)
	n.self.ID = cfg.Name + "-" + hex.EncodeToString(suffix[:])
	n.self.Name = cfg.Name
	n.names = newNameGuard(n)
	n.hsLim = newConnLimiter(cfg.Limits.Handshakes, cfg.Limits.HandshakesPerIP, n.isMemberIP)
	n.refusalLog.Every = 10 * time.Second
	n.log = n.log.With("node", n.self.ID)

	n.ln, err = listenStream(net.Listen, cfg)
	if err != nil {
		return nil, err
	}
	port := n.ln.Addr().(*net.TCPAddr).Port
	if cfg.WrapListener != nil {
		n.ln = cfg.WrapListener(n.ln)
	}
	n.self.Addr = net.JoinHostPort(cfg.AdvertiseAddr, strconv.Itoa(port))
	if err := n.setMeta(false); err != nil {
		n.ln.Close()
		return nil, err
	}

	if len(cfg.Keys) > 0 {
		n.keyring, err = memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
	} else {
		n.keyring, err = memberlist.NewKeyring(nil, nil)
	}
	if err != nil {
		n.ln.Close()
		return nil, fmt.Errorf("cluster: keyring: %w", err)
	}

	mlc := memberlist.DefaultLANConfig()
	mlc.Name = n.self.ID
	mlc.BindAddr = cfg.BindAddr
	mlc.BindPort = cfg.BindPort
	mlc.AdvertiseAddr = cfg.AdvertiseAddr
	mlc.AdvertisePort = cfg.AdvertisePort
	if mlc.AdvertisePort == 0 {
		// memberlist takes AdvertisePort as is once AdvertiseAddr is set
		// (always, here): 0 would advertise port 0 for a fixed BindPort.
		// A BindPort of 0 stays 0, and memberlist fills in the bound one.
		mlc.AdvertisePort = cfg.BindPort
	}
	mlc.Label = cfg.Label
	mlc.EnableCompression = false
	mlc.Keyring = n.keyring
	mlc.GossipVerifyIncoming = len(cfg.Keys) > 0
	mlc.GossipVerifyOutgoing = len(cfg.Keys) > 0
	mlc.Delegate = n.del
	mlc.Events = n.del
	mlc.Merge = n.names
	mlc.Alive = n.names
	n.mlLog = newLogBridge(n.log)
	mlc.Logger = log.New(n.mlLog, "", 0)
	mlc.Ping = n.clock
	if cfg.Tune != nil {
		cfg.Tune(mlc)
	}
	n.clock.probe = mlc.ProbeInterval
	guard := func(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		lim := newConnLimiter(cfg.Limits.GossipConns, cfg.Limits.GossipConnsPerIP, n.isMemberIP)
		n.gossip = newGossipGuard(t, lim, cfg.Limits, &n.stats, n.log)
		return n.gossip
	}
	if err := wrapTransport(mlc, cfg.WrapTransport, guard); err != nil {
		n.ln.Close()
		return nil, err
	}

	n.memMu.Lock()
	n.members[n.self.ID] = &Member{Peer: n.self, State: StateAlive}
	n.refreshMemberIPsLocked()
	n.memMu.Unlock()
	n.goroutine(n.dispatch)
	n.ml, err = memberlist.Create(mlc)
	if err != nil {
		mlc.Transport.Shutdown() // Create does not always shut it down; twice is harmless
		n.ln.Close()
		n.markClosed()
		n.wg.Wait()
		return nil, fmt.Errorf("cluster: memberlist: %w", withErrno(err))
	}
	ln := n.ml.LocalNode()
	n.advertised = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	n.names.setStarted(n.ml)
	n.goroutine(n.acceptLoop)
	if len(cfg.Keys) == 0 && !net.ParseIP(cfg.BindAddr).IsLoopback() {
		n.log.Warn("cluster: running without keys: gossip and streams are not encrypted or authenticated", "bind", cfg.BindAddr)
	}
	n.log.Debug("cluster node started", "gossip", n.ml.LocalNode().Address(), "stream", n.self.Addr)
	return n, nil
}

// listenStream opens the stream listener on BindAddr and StreamPort. A
// StreamPort of 0 takes a free port other than BindPort, which memberlist
// binds next: the kernel may offer a port just freed, such as a BindPort
// that a caller found free and released a moment ago. Such a port is held
// while another is taken, so that it cannot be offered again.
func listenStream(listen func(network, addr string) (net.Listener, error), cfg Config) (net.Listener, error) {
	addr := net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.StreamPort))
	ln, err := listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: stream listener: %w", err)
	}
	if cfg.StreamPort != 0 || cfg.BindPort == 0 || ln.Addr().(*net.TCPAddr).Port != cfg.BindPort {
		return ln, nil
	}
	defer ln.Close() // the gossip port: free it for memberlist once another is bound
	other, err := listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: stream listener: %w", err)
	}
	return other, nil
}

// setMeta encodes this node's metadata for the delegate to hand out.
func (n *Node) setMeta(leaving bool) error {
	b, err := nodeMeta{Name: n.self.Name, Addr: n.self.Addr, Copies: n.cfg.Copies, Leaving: leaving}.encode()
	if err != nil {
		return err
	}
	n.del.meta.Store(&b)
	return nil
}

// goroutine runs f in a goroutine Close waits for. It reports false, and
// does not run f, once Close has begun.
func (n *Node) goroutine(f func()) bool {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

func (n *Node) isClosed() bool {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	return n.closed
}

// Join contacts Seeds (except this node's own address) and starts the
// background re-join loop, which joins Seeds again every RejoinInterval
// while this node sees fewer live peers than it has seeds. The first Join
// also starts the Handler calls: the membership events and streams that
// arrived since New are delivered from then on, in order.
//
// Join returns nil when there are no other seeds (the first node of a
// cluster) or when at least one seed took this node in. When seeds answered
// but none took it in (their keys or label differ, or a live node has its
// Name) it returns a *JoinError: a misconfiguration to report. When no seed
// answered it returns another error; the node is still usable and the
// re-join loop keeps trying, so a caller starting a whole cluster at once
// may log that error and carry on. It returns ctx.Err() if ctx ends first.
func (n *Node) Join(ctx context.Context) error {
	if n.isClosed() {
		return ErrClosed
	}
	seeds := n.otherSeeds()
	n.joinOnce.Do(func() {
		close(n.joined)
		if len(seeds) > 0 {
			n.goroutine(func() { n.rejoinLoop(seeds) })
		}
	})
	if len(seeds) == 0 {
		return nil
	}
	res := make(chan error, 1)
	if !n.goroutine(func() {
		targets := n.unknownSeeds(seeds)
		if len(targets) == 0 { // the seeds name only this node
			res <- nil
			return
		}
		res <- n.joinSeeds(targets)
	}) {
		return ErrClosed
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// otherSeeds returns Seeds without this node's own gossip address.
func (n *Node) otherSeeds() []string {
	local := n.ml.LocalNode()
	me := map[string]bool{
		local.Address(): true,
		net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(int(local.Port))): true,
	}
	var out []string
	for _, s := range n.cfg.Seeds {
		if !me[s] {
			out = append(out, s)
		}
	}
	return out
}

// Self returns this node's own Peer.
func (n *Node) Self() Peer {
	p := n.self
	p.Gossip = n.GossipAddr()
	return p
}

// Peers returns the live peers, excluding this node, sorted by ID.
func (n *Node) Peers() []Peer {
	n.memMu.RLock()
	defer n.memMu.RUnlock()
	var ps []Peer
	for id, m := range n.members {
		if id != n.self.ID && m.State == StateAlive {
			ps = append(ps, m.Peer)
		}
	}
	sortPeers(ps)
	return ps
}

// Members returns every member this node has seen, itself included, with
// its state, sorted by ID. Dead and left members are kept until a member
// with the same Name comes up, and at most maxGone of them.
func (n *Node) Members() []Member {
	n.memMu.RLock()
	defer n.memMu.RUnlock()
	ms := make([]Member, 0, len(n.members))
	for _, m := range n.members {
		ms = append(ms, *m)
	}
	sortMembers(ms)
	return ms
}

// Leave announces a graceful departure: peers report PeerDown with
// left=true. The node keeps running until Close. Leave is idempotent; it
// returns an error if the announcement did not go out within timeout (zero
// means wait without limit), and ErrClosed after Close.
func (n *Node) Leave(timeout time.Duration) error {
	n.leaveMu.Lock()
	defer n.leaveMu.Unlock()
	if n.isClosed() {
		return ErrClosed
	}
	if n.left.Load() {
		return nil
	}
	n.left.Store(true)
	start := time.Now()
	// memberlist v0.7.0 does not tell NotifyLeave whether a node left or
	// died (issue hashicorp/memberlist#293), so announce the intent first,
	// on every peer's stream and in metadata; peers consult both when the
	// leave arrives. Two channels, because a peer may learn of the leave
	// through a push/pull that carries no metadata.
	var errs []error
	n.announceLeaving(timeout)
	if err := n.setMeta(true); err == nil {
		if err := n.ml.UpdateNode(timeout); err != nil {
			errs = append(errs, err)
		}
	}
	rest := timeout
	if timeout > 0 {
		rest = max(timeout-time.Since(start), time.Millisecond)
	}
	if err := n.ml.Leave(rest); err != nil {
		errs = append(errs, err)
	}
	n.memMu.Lock()
	n.members[n.self.ID].State = StateLeft
	n.memMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// announceLeaving tells every live peer on its stream that this node is
// leaving, concurrently, within timeout (zero: DialTimeout). Failures only
// make peers report a dead instead of a left node, so they are logged.
func (n *Node) announceLeaving(timeout time.Duration) {
	if timeout <= 0 || timeout > n.cfg.DialTimeout {
		timeout = n.cfg.DialTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout/2)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range n.Peers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.send(ctx, p.ID, nil, msgLeaving); err != nil {
				n.log.Debug("cluster: could not announce leave", "peer", p.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}

// Close shuts down memberlist, the listener and every stream, and returns
// once all of the Node's goroutines have stopped. Without a prior Leave,
// peers see this node as failed. Close is idempotent; no Handler calls are
// made after it returns.
func (n *Node) Close() error {
	if !n.markClosed() {
		n.wg.Wait()
		return nil
	}
	n.leaveMu.Lock()
	err := n.ml.Shutdown()
	n.leaveMu.Unlock()
	n.ln.Close()
	n.closeStreams()
	n.wg.Wait()
	if err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	return nil
}

// markClosed marks the node closed and stops its loops; it reports whether
// this call did so.
func (n *Node) markClosed() bool {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.closed {
		return false
	}
	n.closed = true
	close(n.stop)
	return true
}

// closeStreams closes every outgoing and incoming connection.
func (n *Node) closeStreams() {
	n.outMu.Lock()
	outs := n.outs
	n.outs = make(map[string]*outPeer)
	n.outMu.Unlock()
	for _, p := range outs {
		p.shut()
	}
	n.inMu.Lock()
	for c := range n.ins {
		c.conn.Close()
	}
	n.inMu.Unlock()
}
