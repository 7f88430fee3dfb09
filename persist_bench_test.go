package peersession

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPersistSave is BenchmarkSave (the commit of one changed key,
// from parallel goroutines) without and with Config.DataDir: what saving
// to disk adds to the write path is the difference. cpu-ns/op counts the
// process's CPU time, the background writer's included, which on a shared
// machine is steadier than wall time.
func BenchmarkPersistSave(b *testing.B) {
	for _, sessions := range []int{1000, 100_000} {
		for _, mode := range []string{"memory", "datadir"} {
			b.Run(fmt.Sprintf("%s/%d", mode, sessions), func(b *testing.B) {
				benchPersistSave(b, mode == "datadir", sessions)
			})
		}
	}
}

// benchPersistSave commits one changed key of sessions sessions of 1 KiB,
// in turn: with 1,000, the writer saves each a few times a flush and
// writes it once; with 100,000, most writes are to a session not yet
// dirty, and each costs the writer a record of 1 KiB.
func benchPersistSave(b *testing.B, disk bool, sessions int) {
	{
		{
			cfg := Config{Logger: quietLogger()}
			if disk {
				cfg.DataDir, cfg.DataKey = b.TempDir(), dataKey
			}
			st := newTestStore(b, cfg)
			tokens := benchSessions(b, st, sessions)
			b.ResetTimer()
			cpu := cpuTime()
			b.Cleanup(func() {
				// The writer's work counts: the process's CPU time, per op.
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
			parallelOn(b, tokens, setN(b, st))
		}
	}
}

// BenchmarkPersistRestart is a restart of a node holding 100,000 sessions
// of 1 KiB on its data directory: New (which loads them all, ready to
// serve) then Close. The sessions are in the log the writer wrote, one
// record each, as after a crash before any snapshot.
func BenchmarkPersistRestart(b *testing.B) {
	dir := b.TempDir()
	cfg := Config{DataDir: dir, DataKey: dataKey, Logger: quietLogger()}
	st, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	benchSessions(b, st, 100_000)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime()
	for b.Loop() {
		st, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if st.Len() != 100_000 {
			b.Fatalf("%d sessions loaded", st.Len())
		}
		b.StopTimer()
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the CPU time the process has used: on a machine shared
// with other work, the figure wall time hides.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
