package peersession

import (
	"testing"
	"time"
)

// BenchmarkReplicationLatency is one write at a time: create a session on
// A, then wait until B's OnCreate hook reports it. An op is the
// write-to-visible latency of a lone change over a real encrypted stream
// on loopback, with both nodes in this process (bench/cmd/repl times it
// between two processes).
func BenchmarkReplicationLatency(b *testing.B) {
	a, err := New(Config{Cluster: &ClusterConfig{Name: "a", Label: "bench", Keys: [][]byte{testKey}, AntiEntropyInterval: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	seen := make(chan string, 1)
	nb, err := New(Config{
		Cluster: &ClusterConfig{Name: "b", Label: "bench", Keys: [][]byte{testKey}, AntiEntropyInterval: -1,
			Join: []string{a.repl.node.GossipAddr()}},
		NotifyOnReplication: true,
		OnCreate: func(ev Event) {
			if ev.Remote {
				seen <- ev.ID
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer nb.Close()
	if err := nb.WaitReady(b.Context()); err != nil {
		b.Fatal(err)
	}
	write := func(i int) {
		s := a.NewSession(b.Context())
		_ = s.Set("n", i)
		if _, err := a.Save(b.Context(), s); err != nil {
			b.Fatal(err)
		}
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			b.Fatalf("write %d not visible on B after 10s", i)
		}
	}
	write(-1) // the first change dials and handshakes
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		write(i)
	}
	b.StopTimer() // not the Closes
}
