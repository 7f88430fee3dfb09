package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peersession/peersession/internal/ratelog"
)

// gossipGuard wraps memberlist's transport to bound the incoming gossip TCP
// connections before memberlist reads them: memberlist v0.7.0 reads a
// push/pull of up to 20 MiB into memory before it decrypts or checks
// anything, keeps a connection up to its TCPTimeout, and accepts any number
// of them. The guard admits connections by source IP (connLimiter), and
// hands memberlist each one as a guardConn, which ends the exchange at
// Limits.GossipBytes, Limits.GossipTimeout or below Limits.GossipMinRate.
// Packets (UDP) and outgoing connections pass through untouched.
type gossipGuard struct {
	memberlist.NodeAwareTransport
	lim    *connLimiter
	limits Limits
	stats  *counters
	log    *slog.Logger

	refusedLog ratelog.Limiter // holds back the warning about refused connections
	cutLog     ratelog.Limiter // holds back the warning about connections cut off

	out       chan net.Conn
	stopping  chan struct{} // closed when Shutdown begins: nothing more is handed on
	innerDone chan struct{} // closed once the wrapped transport has shut down
	wg        sync.WaitGroup
	shutOnce  sync.Once
	shutErr   error

	mu    sync.Mutex // guards conns
	conns map[*guardConn]struct{}

	largest atomic.Int64 // the most bytes one connection sent (what a push/pull takes, for tests)
}

var _ memberlist.NodeAwareTransport = (*gossipGuard)(nil)

func newGossipGuard(t memberlist.NodeAwareTransport, lim *connLimiter, limits Limits, stats *counters, log *slog.Logger) *gossipGuard {
	g := &gossipGuard{
		NodeAwareTransport: t,
		lim:                lim,
		limits:             limits,
		stats:              stats,
		log:                log,
		refusedLog:         ratelog.Limiter{Every: 10 * time.Second},
		cutLog:             ratelog.Limiter{Every: 10 * time.Second},
		out:                make(chan net.Conn),
		stopping:           make(chan struct{}),
		innerDone:          make(chan struct{}),
		conns:              make(map[*guardConn]struct{}),
	}
	g.wg.Add(1)
	go g.forward()
	return g
}

// StreamCh implements memberlist.Transport: the admitted connections.
func (g *gossipGuard) StreamCh() <-chan net.Conn { return g.out }

// forward admits the wrapped transport's connections and hands them on.
// It drains the wrapped transport until that has shut down, since its
// accept loop blocks on handing over a connection.
func (g *gossipGuard) forward() {
	defer g.wg.Done()
	in := g.NodeAwareTransport.StreamCh()
	for {
		select {
		case <-g.innerDone:
			return
		case conn := <-in:
			c := g.admit(conn)
			if c == nil {
				continue
			}
			select {
			case g.out <- c:
			case <-g.stopping:
				c.Close()
			}
		}
	}
}

// admit returns conn as a guardConn, or closes it and returns nil if it is
// over a connection limit or the guard is shutting down.
func (g *gossipGuard) admit(conn net.Conn) *guardConn {
	release, why := g.lim.acquire(conn.RemoteAddr())
	if why != "" {
		g.stats.gossipConnsRefused.Add(1)
		if k, ok := g.refusedLog.Allow(time.Now(), 1); ok {
			g.log.Warn("cluster: gossip connection refused", "remote", conn.RemoteAddr(), "why", why, "refused", k)
		}
		conn.Close()
		return nil
	}
	now := time.Now()
	c := &guardConn{
		Conn:    conn,
		g:       g,
		release: release,
		end:     now.Add(g.limits.GossipTimeout),
		rateAt:  now.Add(gossipRateGrace),
		minRate: int64(max(g.limits.GossipMinRate, 0)),
		max:     int64(g.limits.GossipBytes),
	}
	g.mu.Lock()
	if g.conns == nil { // shut down
		g.mu.Unlock()
		release()
		conn.Close()
		return nil
	}
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	conn.SetDeadline(c.end)
	return c
}

func (g *gossipGuard) forget(c *guardConn, read int64) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	for {
		l := g.largest.Load()
		if read <= l || g.largest.CompareAndSwap(l, read) {
			return
		}
	}
}

// Shutdown implements memberlist.Transport: it shuts the wrapped transport
// down and closes the connections still being served. It may be called
// more than once.
func (g *gossipGuard) Shutdown() error {
	g.shutOnce.Do(func() {
		close(g.stopping)
		g.shutErr = g.NodeAwareTransport.Shutdown()
		close(g.innerDone)
		g.wg.Wait()
		g.mu.Lock()
		conns := g.conns
		g.conns = nil
		g.mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	return g.shutErr
}

// errGossipCut is what memberlist reads from a guardConn that went past a
// limit.
var errGossipCut = errors.New("cluster: gossip connection cut off")

// Why a gossip connection was cut off, for the log and the error.
const (
	cutBytes    = "sent more than Limits.GossipBytes"
	cutDeadline = "took longer than Limits.GossipTimeout"
	cutSlow     = "sent less than Limits.GossipMinRate"
)

// guardConn is one admitted incoming gossip connection as memberlist sees
// it. Reads stop at max bytes, at end, and at the rate deadline: once the
// connection is a second old (rateAt), it must have sent minRate bytes for
// every second past that. A read that hits a limit cuts the connection
// off: it is closed, and memberlist reads errGossipCut. memberlist reads
// and sets deadlines from one goroutine; Close may come from another.
type guardConn struct {
	net.Conn
	g       *gossipGuard
	release func() // frees the connection's slot
	end     time.Time
	rateAt  time.Time
	minRate int64 // bytes a second; 0: none
	max     int64

	mu    sync.Mutex // guards read, asked and cut
	read  int64
	asked time.Time // the read deadline memberlist set; zero: none
	cut   bool

	closeOnce sync.Once
}

// ownDeadlineLocked is when the connection hits the deadline or falls
// below the minimum rate if nothing more arrives. The caller holds mu.
func (c *guardConn) ownDeadlineLocked() time.Time {
	if c.minRate <= 0 {
		return c.end
	}
	d := c.rateAt.Add(time.Duration(float64(c.read) / float64(c.minRate) * float64(time.Second)))
	if d.After(c.end) {
		return c.end
	}
	return d
}

func (c *guardConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.cut {
		c.mu.Unlock()
		return 0, errGossipCut
	}
	left := c.max - c.read
	own := c.ownDeadlineLocked()
	d := earlier(c.asked, own)
	c.mu.Unlock()
	if left <= 0 {
		return 0, c.cutOff(cutBytes)
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.read += int64(n)
		c.mu.Unlock()
		c.g.stats.gossipBytesIn.Add(uint64(n))
	}
	if err != nil && d.Equal(own) && isTimeout(err) {
		why := cutSlow
		if own.Equal(c.end) {
			why = cutDeadline
		}
		return n, c.cutOff(why)
	}
	return n, err
}

// cutOff closes the connection for going past a limit, counts it once, and
// returns the error memberlist is to read.
func (c *guardConn) cutOff(why string) error {
	c.mu.Lock()
	first := !c.cut
	c.cut = true
	read := c.read
	c.mu.Unlock()
	if first {
		c.g.stats.gossipConnsCut.Add(1) // counted before the sender can see the close
		c.Conn.Close()
		if k, ok := c.g.cutLog.Allow(time.Now(), 1); ok {
			c.g.log.Warn("cluster: gossip connection cut off", "remote", c.RemoteAddr(), "why", why, "read", read, "cut", k)
		}
	}
	return fmt.Errorf("%w: %s", errGossipCut, why)
}

// SetDeadline keeps the connection's own limits: the write deadline is
// never past end, and each Read applies the earlier of t and its own.
func (c *guardConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *guardConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.asked = t
	d := earlier(t, c.ownDeadlineLocked())
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(d)
}

func (c *guardConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(earlier(t, c.end))
}

// Close closes the connection and frees its slot; it may be called more
// than once.
func (c *guardConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.mu.Lock()
		read := c.read
		c.mu.Unlock()
		c.release()
		c.g.forget(c, read)
	})
	return err
}

// earlier returns the earlier of deadline t (zero: none) and d.
func earlier(t, d time.Time) time.Time {
	if t.IsZero() || d.Before(t) {
		return d
	}
	return t
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
