package persist

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
)

// memSource is a Source over a map, merging what is put in it.
type memSource struct {
	mu sync.Mutex // guards m
	m  map[string]model.Record
}

func newMemSource() *memSource { return &memSource{m: make(map[string]model.Record)} }

func (s *memSource) Get(id string) (model.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	return r, ok
}

func (s *memSource) Each(fn func(*model.Record) bool) {
	s.mu.Lock()
	recs := make([]model.Record, 0, len(s.m))
	for _, r := range s.m {
		recs = append(recs, r)
	}
	s.mu.Unlock()
	for i := range recs {
		if !fn(&recs[i]) {
			return
		}
	}
}

// merge merges r in, as the store's mergeIn does.
func (s *memSource) merge(r model.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[r.ID] = model.Merge(s.m[r.ID], r)
}

func (s *memSource) snapshot() map[string]model.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]model.Record, len(s.m))
	for k, v := range s.m {
		m[k] = v
	}
	return m
}

var (
	testKey  = bytes.Repeat([]byte{1}, KeySize)
	otherKey = bytes.Repeat([]byte{2}, KeySize)
)

func session(i int, value string) model.Record {
	v := model.Version{Wall: int64(1000 + i), Seq: 1, Node: 7}
	return model.Record{
		ID: fmt.Sprintf("session-%05d", i), Created: 1, Access: 1, Deadline: 1 << 62,
		Principal: fmt.Sprintf("user-%d", i), PrincipalVer: v,
		Keys: []model.KeyValue{{Key: "v", Value: model.Value{Data: []byte(value), Ver: v}}},
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// open opens dir with a fresh source and returns both; the Disk is closed
// at the end of the test unless the test closes it.
func open(t *testing.T, dir string, cfg Config) (*Disk, *memSource, LoadStats) {
	t.Helper()
	d, src, stats, err := tryOpen(dir, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d, src, stats
}

func tryOpen(dir string, cfg Config) (*Disk, *memSource, LoadStats, error) {
	cfg.Dir = dir
	if cfg.Keys == nil {
		cfg.Keys = [][]byte{testKey}
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 5 * time.Millisecond
	}
	src := newMemSource()
	d, stats, err := Open(cfg, src, src.merge)
	return d, src, stats, err
}

// put merges r into src and marks it dirty, as the store does.
func put(d *Disk, src *memSource, r model.Record) {
	src.merge(r)
	d.Dirty(r.ID)
}

func TestPersistRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d, src, _ := open(t, dir, Config{})
	for i := range 100 {
		put(d, src, session(i, "a"))
	}
	require.NoError(t, d.WaitFlushed(t.Context()))
	for i := range 50 {
		put(d, src, session(i, "b")) // same version: merge keeps one
	}
	tomb := model.Record{ID: session(3, "").ID, Dead: model.Version{Wall: 5000, Node: 7}, Deadline: 1 << 62}
	put(d, src, tomb)
	want := src.snapshot()
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close twice")

	_, src2, stats := open(t, dir, Config{})
	require.Equal(t, want, src2.snapshot())
	require.Empty(t, stats.Warnings)
	got := src2.m[tomb.ID]
	require.True(t, got.IsDead())
}

func TestPersistSnapshotCompacts(t *testing.T) {
	dir := t.TempDir()
	d, src, _ := open(t, dir, Config{MinCompact: 1})
	big := string(bytes.Repeat([]byte{'x'}, 1024))
	for round := range 5 {
		for i := range 200 {
			r := session(i, big)
			r.Access = int64(round + 2)
			put(d, src, r)
		}
		require.NoError(t, d.WaitFlushed(t.Context()))
	}
	want := src.snapshot()
	require.NoError(t, d.Close())
	_, err := os.Stat(filepath.Join(dir, snapshotName))
	require.NoError(t, err, "a snapshot was written")
	gens, err := logGens(dir)
	require.NoError(t, err)
	require.Less(t, len(gens), 5, "compacted logs are removed")

	_, src2, _ := open(t, dir, Config{})
	require.Equal(t, want, src2.snapshot())
}

func TestPersistAbandonKeepsFlushed(t *testing.T) {
	dir := t.TempDir()
	d, src, _ := open(t, dir, Config{FlushInterval: time.Hour})
	for i := range 10 {
		put(d, src, session(i, "kept"))
	}
	require.NoError(t, d.Flush(t.Context()))
	want := src.snapshot()
	put(d, src, session(99, "lost")) // never flushed
	d.abandon()

	_, src2, _ := open(t, dir, Config{})
	require.Equal(t, want, src2.snapshot())
}

func TestPersistLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Config{})
	_, _, _, err := tryOpen(dir, Config{})
	require.ErrorIs(t, err, ErrLocked)
}

// written returns a directory holding one log with n sessions, closed,
// and the path of that log.
func written(t *testing.T, n int) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	d, src, _ := open(t, dir, Config{})
	for i := range n {
		put(d, src, session(i, "v"))
		if i%10 == 9 {
			require.NoError(t, d.WaitFlushed(t.Context())) // several chunks
		}
	}
	require.NoError(t, d.Close())
	gens, err := logGens(dir)
	require.NoError(t, err)
	for _, g := range gens {
		p := filepath.Join(dir, logName(g))
		if fi, _ := os.Stat(p); fi.Size() > headerSize {
			log = p
		}
	}
	require.NotEmpty(t, log)
	return dir, log
}

func TestPersistTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func([]byte) []byte
	}{
		{"cut in the last chunk", func(b []byte) []byte { return b[:len(b)-7] }},
		{"cut in a length", func(b []byte) []byte { return append(b, 0, 0) }},
		{"zeros appended", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }},
		{"last chunk zeroed", func(b []byte) []byte {
			b = bytes.Clone(b)
			clear(b[len(b)-20:])
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, log := written(t, 30)
			b, err := os.ReadFile(log)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(log, tc.cut(b), 0o600))
			_, src, stats := open(t, dir, Config{})
			require.Len(t, stats.Warnings, 1)
			require.Contains(t, stats.Warnings[0], "torn")
			require.GreaterOrEqual(t, len(src.m), 20, "the chunks before the tear are loaded")
		})
	}
}

func TestPersistDamagedFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir, log string)
		keys   [][]byte
		want   error
	}{
		{"flipped bit in a middle chunk", func(t *testing.T, _, log string) {
			b, _ := os.ReadFile(log)
			b[headerSize+40] ^= 1
			require.NoError(t, os.WriteFile(log, b, 0o600))
		}, nil, ErrCorrupt},
		{"foreign file", func(t *testing.T, _, log string) {
			require.NoError(t, os.WriteFile(log, []byte("#!/bin/sh\necho hello, this is not a data file at all, but long enough\n"), 0o600))
		}, nil, ErrForeign},
		{"newer format", func(t *testing.T, _, log string) {
			b, _ := os.ReadFile(log)
			b[8] = 9
			require.NoError(t, os.WriteFile(log, b, 0o600))
		}, nil, ErrVersion},
		{"wrong key", func(*testing.T, string, string) {}, [][]byte{otherKey}, ErrWrongKey},
		{"a log under the snapshot's name", func(t *testing.T, dir, log string) {
			b, _ := os.ReadFile(log)
			b[9] = kindSnapshot // keys are derived from the header: it no longer opens
			require.NoError(t, os.WriteFile(filepath.Join(dir, snapshotName), b, 0o600))
		}, nil, ErrWrongKey},
		{"swapped chunks", func(t *testing.T, _, log string) {
			b, _ := os.ReadFile(log)
			// the first two chunks, swapped: each fails its index
			n1 := 4 + int(uint32(b[headerSize])<<24|uint32(b[headerSize+1])<<16|uint32(b[headerSize+2])<<8|uint32(b[headerSize+3]))
			c1 := bytes.Clone(b[headerSize : headerSize+n1])
			rest := b[headerSize+n1:]
			n2 := 4 + int(uint32(rest[0])<<24|uint32(rest[1])<<16|uint32(rest[2])<<8|uint32(rest[3]))
			out := append(bytes.Clone(b[:headerSize]), rest[:n2]...)
			out = append(out, c1...)
			out = append(out, rest[n2:]...)
			require.NoError(t, os.WriteFile(log, out, 0o600))
		}, nil, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, log := written(t, 30)
			tc.damage(t, dir, log)
			_, _, _, err := tryOpen(dir, Config{Keys: tc.keys})
			require.ErrorIs(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestPersistTruncatedSnapshot(t *testing.T) {
	dir := t.TempDir()
	d, src, _ := open(t, dir, Config{MinCompact: 1})
	for i := range 50 {
		put(d, src, session(i, "v"))
	}
	require.NoError(t, d.WaitFlushed(t.Context()))
	put(d, src, session(60, "v"))
	require.NoError(t, d.WaitFlushed(t.Context()))
	require.NoError(t, d.Close())
	snap := filepath.Join(dir, snapshotName)
	b, err := os.ReadFile(snap)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(snap, b[:len(b)-10], 0o600))
	_, _, _, err = tryOpen(dir, Config{})
	require.ErrorIs(t, err, ErrTruncated)
}

func TestPersistKeyRotation(t *testing.T) {
	dir := t.TempDir()
	d, src, _ := open(t, dir, Config{Keys: [][]byte{otherKey}})
	for i := range 20 {
		put(d, src, session(i, "v"))
	}
	want := src.snapshot()
	require.NoError(t, d.Close())

	// The new key first, the old one still in the keyring: it loads, and
	// compacts everything under the new key.
	d, src2, _ := open(t, dir, Config{Keys: [][]byte{testKey, otherKey}})
	require.Equal(t, want, src2.snapshot())
	require.NoError(t, d.Close())
	_, src3, _ := open(t, dir, Config{Keys: [][]byte{testKey}})
	require.Equal(t, want, src3.snapshot())
}

func TestPersistBadKey(t *testing.T) {
	_, _, _, err := tryOpen(t.TempDir(), Config{Keys: [][]byte{[]byte("short")}})
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrCorrupt))
}
