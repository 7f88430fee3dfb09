package persist

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/peersession/peersession/replicate/model"
)

// BenchmarkLoad100k loads a directory holding 100,000 sessions of 1 KiB,
// from a snapshot and from a log, into a map: the disk's share of a
// restart (the root's BenchmarkPersistRestart adds the store's merge).
func BenchmarkLoad100k(b *testing.B) {
	big := string(bytes.Repeat([]byte{'x'}, 1024))
	for _, kind := range []byte{kindSnapshot, kindLog} {
		b.Run(string(kind), func(b *testing.B) {
			dir := b.TempDir()
			h, fk, err := newHeader(kind, 1, testKey)
			if err != nil {
				b.Fatal(err)
			}
			cw := chunkWriter{fk: fk, out: h.raw[:]}
			for i := range 100_000 {
				cw.add(session(i, big))
			}
			if kind == kindSnapshot {
				cw.end()
			} else {
				cw.seal()
			}
			name := snapshotName
			if kind == kindLog {
				name = logName(1)
			}
			writeFile(b, dir, name, cw.out)
			b.SetBytes(int64(len(cw.out)))
			for b.Loop() {
				n := 0
				if _, _, err := load(dir, [][]byte{testKey}, func(r model.Record) { n++ }); err != nil || n != 100_000 {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func writeFile(tb testing.TB, dir, name string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
