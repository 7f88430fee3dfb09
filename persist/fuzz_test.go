package persist

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// victim is a session destroyed in FuzzLoad's snapshot: no log may bring
// it back.
var victim = model.Record{ID: "victim", Dead: model.Version{Wall: 1 << 40, Node: 1}, Deadline: 1 << 62}

// sealedFile returns a file of kind and gen holding chunks of recs, and,
// for a snapshot, its end.
func sealedFile(tb testing.TB, kind byte, gen uint64, recs ...model.Record) []byte {
	tb.Helper()
	h, fk, err := newHeader(kind, gen, testKey)
	if err != nil {
		tb.Fatal(err)
	}
	cw := chunkWriter{fk: fk, out: h.raw[:]}
	for _, r := range recs {
		cw.add(r)
		cw.seal() // a chunk each
	}
	if kind == kindSnapshot {
		cw.end()
	}
	return cw.out
}

// FuzzLoad loads a directory whose snapshot destroyed a session and whose
// logs are the fuzzer's: one as raw bytes (headers, lengths, torn ends,
// garbage), one holding a chunk that authenticates but whose plaintext is
// the fuzzer's (what only a holder of the key could write). Whatever they
// hold, the load returns an error or loads, never panics, and never brings
// the destroyed session back.
func FuzzLoad(f *testing.F) {
	live := victim
	live.Dead, live.Created, live.Access = model.Version{}, 1, 1
	live.Keys = []model.KeyValue{{Key: "k", Value: model.Value{Data: []byte{0xa1, 'x'}, Ver: model.Version{Wall: 1 << 41, Node: 2}}}}
	log := sealedFile(f, kindLog, 2, session(1, "a"), live, session(2, "b"))
	frame, err := wire.Encode(wire.MsgBatch, &wire.Batch{Records: []model.Record{live, session(3, "c")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(log, frame)
	f.Add(log[:len(log)-5], []byte{})
	f.Add(log[:headerSize+3], []byte{wire.FormatVersion, byte(wire.MsgBatch), 0x80})
	f.Add([]byte{}, []byte{wire.FormatVersion, byte(wire.MsgAck), 0x81, 0xa1, 's', 0x01})
	f.Add(append(log, 0, 0, 0, 0, 1, 2, 3), frame[:len(frame)/2])
	snap := sealedFile(f, kindSnapshot, 1, victim, session(4, "d"))

	dir := f.TempDir() // reused: each input rewrites every file
	f.Fuzz(func(t *testing.T, raw, plain []byte) {
		write := func(name string, b []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(snapshotName, snap)
		write(logName(2), raw)
		h, fk, err := newHeader(kindLog, 3, testKey)
		if err != nil {
			t.Fatal(err)
		}
		write(logName(3), fk.sealChunk(h.raw[:], chunkRecords, 0, plain))

		src := newMemSource()
		if _, _, err := load(dir, [][]byte{testKey}, src.merge); err != nil {
			return
		}
		if r, ok := src.Get(victim.ID); !ok || !r.IsDead() {
			t.Fatalf("the destroyed session came back: %+v", r)
		}
	})
}
