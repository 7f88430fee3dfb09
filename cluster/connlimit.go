package cluster

import (
	"net"
	"net/netip"
	"sync"
)

// connLimiter bounds connections held at once, by source IP. A quarter of
// max is kept for members' IPs: strangers hold at most the rest between
// them, and at most perIP from one IP; members are bounded by max alone.
// A connection whose address has no IP (a test transport's) counts as a
// member's.
type connLimiter struct {
	max, perIP int
	isMember   func(netip.Addr) bool

	mu        sync.Mutex // guards total, strangers and byIP
	total     int
	strangers int
	byIP      map[netip.Addr]int // strangers' connections by IP
}

func newConnLimiter(max, perIP int, isMember func(netip.Addr) bool) *connLimiter {
	return &connLimiter{max: max, perIP: perIP, isMember: isMember, byIP: make(map[netip.Addr]int)}
}

// Why a connection was refused, for the log.
const (
	refusedFull      = "at the connection limit"
	refusedStrangers = "at the limit for addresses that are no member's"
	refusedPerIP     = "at the limit for one address"
)

// acquire admits a connection from addr, or returns why not. Each admitted
// connection is released exactly once with the release it returns.
func (l *connLimiter) acquire(addr net.Addr) (release func(), why string) {
	ip, stranger := sourceIP(addr)
	if stranger && l.isMember(ip) {
		stranger = false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.max:
		return nil, refusedFull
	case stranger && l.strangers >= l.max-l.max/memberShareDenominator:
		return nil, refusedStrangers
	case stranger && l.byIP[ip] >= l.perIP:
		return nil, refusedPerIP
	}
	l.total++
	if !stranger {
		return sync.OnceFunc(l.releaseMember), ""
	}
	l.strangers++
	l.byIP[ip]++
	return sync.OnceFunc(func() { l.releaseStranger(ip) }), ""
}

func (l *connLimiter) releaseMember() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
}

func (l *connLimiter) releaseStranger(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	l.strangers--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

// held returns how many connections are admitted and not yet released.
func (l *connLimiter) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// sourceIP returns addr's IP; ok is false when addr has none.
func sourceIP(addr net.Addr) (ip netip.Addr, ok bool) {
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case *net.UDPAddr:
		ip = a.AddrPort().Addr()
	default:
		if addr == nil {
			return ip, false
		}
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return ip, false
		}
		ip = ap.Addr()
	}
	return ip.Unmap(), ip.IsValid()
}
