package persist

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peersession/peersession/replicate/model"
)

// File names in the directory.
const (
	snapshotName = "snapshot"
	snapshotTmp  = "snapshot.tmp"
	logPrefix    = "log-"
	lockName     = "LOCK"
)

func logName(gen uint64) string { return fmt.Sprintf("%s%016x", logPrefix, gen) }

// LoadStats says what a load found.
type LoadStats struct {
	Records  int           // records read (a session may have several)
	Files    int           // files read
	Bytes    int64         // their size
	Duration time.Duration // the time the load took
	// Warnings describes what was skipped: a log's torn last write.
	Warnings []string
}

// dirState is what a load leaves for the writer.
type dirState struct {
	snapGen   uint64           // the snapshot's generation; 0 when none
	snapBytes int64            // its size
	logs      map[uint64]int64 // logs after the snapshot, by generation: their sizes
	maxGen    uint64           // the highest generation seen
	compact   bool             // compact soon: a torn log, or a file under an older key
}

// load reads dir's snapshot and logs, calling apply with every record.
func load(dir string, keys [][]byte, apply func(model.Record)) (*dirState, LoadStats, error) {
	start := time.Now()
	var stats LoadStats
	ds := &dirState{logs: make(map[uint64]int64)}
	if err := os.Remove(filepath.Join(dir, snapshotTmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, stats, err
	}
	gens, err := logGens(dir)
	if err != nil {
		return nil, stats, err
	}
	snap := filepath.Join(dir, snapshotName)
	if fi, err := os.Stat(snap); err == nil {
		f, err := loadFile(snap, fi.Size(), kindSnapshot, keys, apply)
		if err != nil {
			return nil, stats, fileError(snap, err)
		}
		ds.snapGen, ds.snapBytes, ds.maxGen = f.gen, fi.Size(), f.gen
		ds.compact = ds.compact || f.keyIndex > 0
		stats.add(f, fi.Size())
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, stats, err
	}
	for _, g := range gens {
		path := filepath.Join(dir, logName(g))
		if g <= ds.snapGen {
			// Covered by the snapshot: a crash came between its rename and
			// the removal of the logs it holds.
			if err := os.Remove(path); err != nil {
				return nil, stats, err
			}
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, stats, err
		}
		f, err := loadFile(path, fi.Size(), kindLog, keys, apply)
		switch {
		case errors.Is(err, errTorn):
			stats.Warnings = append(stats.Warnings, fmt.Sprintf("%s: %v: the writes after it were lost in a crash and are skipped", path, err))
			ds.compact = true
		case err != nil:
			return nil, stats, fileError(path, err)
		}
		if f.gen != g {
			return nil, stats, fileError(path, fmt.Errorf("%w: its header says generation %d", ErrCorrupt, f.gen))
		}
		ds.logs[g] = fi.Size()
		ds.maxGen = max(ds.maxGen, g)
		ds.compact = ds.compact || f.keyIndex > 0
		stats.add(f, fi.Size())
	}
	stats.Duration = time.Since(start)
	return ds, stats, nil
}

func (s *LoadStats) add(f fileResult, size int64) {
	s.Files++
	s.Bytes += size
	s.Records += f.records
}

// fileError wraps a load error with the file and what to do about it.
func fileError(path string, err error) error {
	hint := "the data directory is damaged; move it aside to start without it (peers may still hold the sessions)"
	switch {
	case errors.Is(err, ErrForeign):
		hint = "move it out of the data directory, which holds only peersession's files"
	case errors.Is(err, ErrWrongKey):
		hint = "give the key it was written with (after a key rotation, keep the old key in the keyring until the node has restarted once)"
	case errors.Is(err, ErrVersion):
		hint = "it was written by another release of peersession; run that release, or move the directory aside"
	}
	return fmt.Errorf("%s: %w; %s", path, err, hint)
}

// logGens returns the generations of dir's logs, ascending.
func logGens(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var gens []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, logPrefix) {
			continue
		}
		g, err := strconv.ParseUint(name[len(logPrefix):], 16, 64)
		if err != nil || logName(g) != name {
			continue // not one of ours
		}
		gens = append(gens, g)
	}
	slices.Sort(gens)
	return gens, nil
}

// fileResult is what loadFile read.
type fileResult struct {
	gen      uint64
	keyIndex int
	records  int
}

// loadFile reads one file of kind want, of size bytes. A log's torn end
// comes back as an error wrapping errTorn, with every record before it
// applied; any other error means the file is unusable.
func loadFile(path string, size int64, want byte, keys [][]byte, apply func(model.Record)) (fileResult, error) {
	var res fileResult
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hb [headerSize]byte
	n, err := io.ReadFull(r, hb[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return res, err
	}
	h, fk, ki, err := parseHeader(hb[:n], keys)
	if err != nil {
		if want == kindLog && errors.Is(err, ErrTruncated) {
			// A log cut within its header: created just before a crash.
			return res, fmt.Errorf("%w: %w", errTorn, err)
		}
		return res, err
	}
	if h.kind != want {
		return res, fmt.Errorf("%w: a file of kind %q under the name of kind %q", ErrCorrupt, h.kind, want)
	}
	res.gen, res.keyIndex = h.gen, ki
	ended := false
	err = readChunks(r, size, fk, func(typ byte, plain []byte) error {
		if ended {
			return fmt.Errorf("%w: data after the snapshot's end", ErrCorrupt)
		}
		switch {
		case typ == chunkRecords:
			n, err := decodeRecords(plain, apply)
			res.records += n
			return err
		case typ == chunkEnd && want == kindSnapshot && len(plain) == 16:
			if got := binary.BigEndian.Uint64(plain[:8]); got != uint64(res.records) {
				return fmt.Errorf("%w: the snapshot's end counts %d records, %d read", ErrCorrupt, got, res.records)
			}
			ended = true
			return nil
		}
		return fmt.Errorf("%w: unexpected chunk of type %q", ErrCorrupt, typ)
	})
	if want == kindSnapshot {
		if errors.Is(err, errTorn) {
			// A snapshot is renamed into place only once whole and synced.
			return res, fmt.Errorf("%w: %w", ErrTruncated, err)
		}
		if err == nil && !ended {
			return res, fmt.Errorf("%w: the snapshot has no end chunk", ErrTruncated)
		}
	}
	return res, err
}
