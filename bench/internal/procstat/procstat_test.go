package procstat

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

func TestReadsThisProcess(t *testing.T) {
	pid := os.Getpid()
	if n, err := RSS(pid); err != nil || n <= 0 {
		t.Fatalf("RSS = %d, %v; want > 0", n, err)
	}
	if _, err := CPU(pid); err != nil {
		t.Fatalf("CPU: %v", err)
	}
	before := Sockets(pid)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if after := Sockets(pid); after != before+1 {
		t.Fatalf("Sockets = %d after a listener, %d before", after, before)
	}
	if _, err := Field(pid, "status", "NoSuchKey:"); err == nil {
		t.Fatal("Field found a key /proc does not have")
	}
	if _, err := RSS(-1); err == nil {
		t.Fatal("RSS of no process: no error")
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep slept through a cancelled context")
	}
	if !Sleep(context.Background(), 0) {
		t.Fatal("Sleep(0) reported a cancelled context")
	}
}
