package main

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peersession/peersession/bench/internal/procstat"
)

func TestFigures(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
	if tok := randomToken(); len(tok) != 43 || strings.ContainsAny(tok, "+/=") {
		t.Errorf("randomToken = %q: want 43 base64url characters", tok)
	}
}

func TestProcFigures(t *testing.T) {
	pid := os.Getpid()
	if r, err := procstat.RSS(pid); err != nil || r <= 0 {
		t.Errorf("rssBytes = %d, %v", r, err)
	}
	if _, err := procstat.CPU(pid); err != nil {
		t.Errorf("cpuTime: %v", err)
	}
	if _, err := bytesWritten(pid); err != nil && !errors.Is(err, os.ErrPermission) {
		t.Errorf("bytesWritten: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	before := procstat.Sockets(pid)
	c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := established(ln.Addr().(*net.TCPAddr).Port); got != 1 {
		t.Errorf("established = %d, want 1 (the accepted side)", got)
	}
	if got := procstat.Sockets(pid); got != before+2 {
		t.Errorf("sockets = %d, want %d", got, before+2)
	}
}

func TestRender(t *testing.T) {
	s := &section{title: "x", table: [][]string{{"a", "b"}, {"1", "p|q"}}, summary: [][3]string{{"x", "fig", "bound"}}, err: errors.New("boom")}
	out := render([]*section{s}, time.Second)
	for _, want := range []string{"| x | fig | bound |", "| a | b |\n|---|--:|", `| 1 | p\|q |`, "**failed**: boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
