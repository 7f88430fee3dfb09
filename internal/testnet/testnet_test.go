package testnet

import (
	"net"
	"strconv"
	"testing"
)

// A reserved port cannot be bound until it is released, and then can be,
// for TCP and UDP alike.
func TestReservePortHoldsThePortUntilReleased(t *testing.T) {
	port, release := ReservePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("bound TCP %s while reserved", addr)
	}
	if u, err := net.ListenPacket("udp", addr); err == nil {
		u.Close()
		t.Fatalf("bound UDP %s while reserved", addr)
	}
	release()
	release() // harmless
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP %s after release: %v", addr, err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP %s after release: %v", addr, err)
	}
	u.Close()
}
