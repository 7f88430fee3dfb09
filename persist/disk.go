package persist

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peersession/peersession/replicate/model"
)

// Source is the state a Disk saves: the store's sessions. Its methods are
// called from the Disk's goroutines, concurrently with the store's
// writers; the records they give must not change afterwards (the store's
// are copy-on-write).
type Source interface {
	// Get returns the record held for id, or false when none is (the
	// session was swept: expired, or a tombstone past its time).
	Get(id string) (model.Record, bool)
	// Each calls fn with every record held, until fn returns false.
	Each(fn func(*model.Record) bool)
}

// Config configures a Disk.
type Config struct {
	// Dir is the data directory, created (0700) if missing.
	Dir string
	// Keys are 32-byte master keys: the first encrypts what is written,
	// each is tried on what is read.
	Keys [][]byte
	// FlushInterval is how often dirty sessions are written and synced;
	// zero means one second.
	FlushInterval time.Duration
	// CompactRatio: a snapshot is written when the logs grow past
	// CompactRatio times the snapshot's size (and MinCompact). Zero means 2.
	CompactRatio int
	// MinCompact is the log size below which no snapshot is written;
	// zero means 4 MiB.
	MinCompact int64
	// Logger receives warnings and errors; nil means slog.Default().
	Logger *slog.Logger
}

const dirtyStripes = 32

// Disk keeps a Source's records in a directory. Dirty is safe for
// concurrent use; Close stops it.
type Disk struct {
	cfg  Config
	src  Source
	log  *slog.Logger
	lock *os.File

	seed   maphash.Seed
	dirty  [dirtyStripes]dirtyStripe
	nDirty atomic.Int64
	kick   chan struct{} // wakes the writer early, when many are dirty
	closed atomic.Bool
	// abandoned stops the writer without a last flush (tests' crash).
	abandoned atomic.Bool

	// Flush progress, for WaitFlushed.
	started  atomic.Uint64 // flushes that have taken the dirty sets
	flushMu  sync.Mutex    // guards done and flushed
	done     uint64        // flushes finished
	flushed  chan struct{} // closed, and replaced, when a flush finishes
	flushErr error         // the last flush's error, guarded by flushMu

	// The writer goroutine's own state.
	file     *os.File        // the log being appended
	fileKeys *fileKeys       // its keys
	gen      uint64          // its generation
	idx      uint64          // its next chunk index
	broken   bool            // a write or sync failed: start a new log
	state    *dirState       // snapshot and log sizes
	snapping bool            // a snapshot is being written
	snapDone chan snapResult // its result
	cw       chunkWriter     // reused encoder
	ids      []string        // reused

	stop chan struct{}
	wg   sync.WaitGroup
}

type dirtyStripe struct {
	mu  sync.Mutex // guards ids
	ids map[string]struct{}
	_   [40]byte // keep stripes on their own cache lines
}

// Open locks cfg.Dir, creating it if needed, loads the records it holds,
// calling apply with each one (a session may come several times, as it
// was at several times: merge them), and starts the writer, which saves
// the records of src that Dirty names. The load's stats come back even
// with an error.
func Open(cfg Config, src Source, apply func(model.Record)) (*Disk, LoadStats, error) {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.CompactRatio <= 0 {
		cfg.CompactRatio = 2
	}
	if cfg.MinCompact <= 0 {
		cfg.MinCompact = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Keys) == 0 {
		return nil, LoadStats{}, errors.New("persist: no key")
	}
	for i, k := range cfg.Keys {
		if len(k) != KeySize {
			return nil, LoadStats{}, fmt.Errorf("persist: key %d has %d bytes; it must have %d", i, len(k), KeySize)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, LoadStats{}, fmt.Errorf("persist: %w", err)
	}
	lock, err := lockDir(filepath.Join(cfg.Dir, lockName))
	if err != nil {
		return nil, LoadStats{}, fmt.Errorf("persist: %s: %w", cfg.Dir, err)
	}
	ds, stats, err := load(cfg.Dir, cfg.Keys, apply)
	if err != nil {
		lock.Close()
		return nil, stats, fmt.Errorf("persist: %w", err)
	}
	d := &Disk{
		cfg: cfg, src: src, log: cfg.Logger, lock: lock,
		seed:     maphash.MakeSeed(),
		kick:     make(chan struct{}, 1),
		flushed:  make(chan struct{}),
		state:    ds,
		snapDone: make(chan snapResult, 1),
		stop:     make(chan struct{}),
	}
	d.cw.log = d.log
	for i := range d.dirty {
		d.dirty[i].ids = make(map[string]struct{})
	}
	if err := d.newLog(); err != nil {
		lock.Close()
		return nil, stats, fmt.Errorf("persist: %w", err)
	}
	for _, w := range stats.Warnings {
		d.log.Warn("persist: " + w)
	}
	d.wg.Add(1)
	go d.run()
	return d, stats, nil
}

// kickAt is how many dirty sessions wake the writer before its interval.
const kickAt = 100_000

// Dirty marks session id as changed: the writer saves its record as it
// is then. It costs a map insert.
func (d *Disk) Dirty(id string) {
	if d.closed.Load() {
		return
	}
	s := &d.dirty[maphash.String(d.seed, id)%dirtyStripes]
	s.mu.Lock()
	n := len(s.ids)
	s.ids[id] = struct{}{}
	added := len(s.ids) > n
	s.mu.Unlock()
	if added && d.nDirty.Add(1) == kickAt {
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

// WaitFlushed waits until every session marked dirty before the call is
// on disk (the next flush ends), and returns that flush's error.
func (d *Disk) WaitFlushed(ctx context.Context) error { return d.waitFlush(ctx, false) }

// Flush writes every session marked dirty before the call and syncs it,
// now rather than at the next interval.
func (d *Disk) Flush(ctx context.Context) error { return d.waitFlush(ctx, true) }

func (d *Disk) waitFlush(ctx context.Context, now bool) error {
	if d.closed.Load() {
		return ErrClosed
	}
	target := d.started.Load() + 1
	if now {
		select {
		case d.kick <- struct{}{}:
		default: // a kick is pending: its flush starts after this point
		}
	}
	for {
		d.flushMu.Lock()
		done, ch, err := d.done, d.flushed, d.flushErr
		d.flushMu.Unlock()
		if done >= target {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close writes what is dirty, syncs it, waits for a snapshot being
// written and releases the directory. Dirty calls after it are ignored.
// It is safe to call more than once.
func (d *Disk) Close() error {
	if d.closed.Swap(true) {
		d.wg.Wait()
		return nil
	}
	close(d.stop)
	d.wg.Wait()
	d.flushMu.Lock()
	err := d.flushErr
	d.flushMu.Unlock()
	return errors.Join(err, d.lock.Close())
}

// abandon stops the writer without writing what is dirty, as a crash
// would (for tests).
func (d *Disk) abandon() {
	d.closed.Store(true)
	d.abandoned.Store(true)
	close(d.stop)
	d.wg.Wait()
	_ = d.lock.Close()
}

// run is the writer goroutine.
func (d *Disk) run() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.FlushInterval)
	defer t.Stop()
	if d.state.compact {
		d.maybeCompact(true)
	}
	for {
		select {
		case <-d.stop:
			if !d.abandoned.Load() {
				d.flush()
			}
			if d.snapping {
				d.snapshotDone(<-d.snapDone)
			}
			if d.file != nil {
				_ = d.file.Close()
			}
			return
		case r := <-d.snapDone:
			d.snapshotDone(r)
			continue
		case <-t.C:
		case <-d.kick:
		}
		d.flush()
		d.maybeCompact(false)
	}
}

// flush writes the dirty sessions' records to the log in one write, and
// syncs it.
func (d *Disk) flush() {
	d.started.Add(1)
	ids := d.ids[:0]
	for i := range d.dirty {
		s := &d.dirty[i]
		s.mu.Lock()
		if len(s.ids) > 0 {
			for id := range s.ids {
				ids = append(ids, id)
			}
			s.ids = make(map[string]struct{}, len(s.ids)/2)
		}
		s.mu.Unlock()
	}
	d.nDirty.Add(-int64(len(ids)))
	err := d.writeRecords(ids)
	if err != nil {
		d.log.Error("persist: saving sessions failed; retrying at the next flush", "dir", d.cfg.Dir, "err", err)
		d.broken = true
		for _, id := range ids {
			d.Dirty(id)
		}
	}
	clear(ids)
	d.ids = ids[:0]
	d.flushMu.Lock()
	d.done++
	d.flushErr = err
	close(d.flushed)
	d.flushed = make(chan struct{})
	d.flushMu.Unlock()
}

func (d *Disk) writeRecords(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if d.broken {
		// After a failed write or sync the file's state is unknown (Linux
		// may have dropped the pages it could not write): start afresh.
		if err := d.newLog(); err != nil {
			return err
		}
		d.broken = false
	}
	cw := &d.cw
	cw.fk, cw.idx, cw.out, cw.n = d.fileKeys, d.idx, cw.out[:0], 0
	written := int64(0)
	write := func() error {
		if len(cw.out) == 0 {
			return nil
		}
		_, err := d.file.Write(cw.out)
		written += int64(len(cw.out))
		cw.out = cw.out[:0]
		return err
	}
	for _, id := range ids {
		if rec, ok := d.src.Get(id); ok {
			cw.add(rec)
		}
		if len(cw.out) >= writeAt {
			if err := write(); err != nil {
				return err
			}
		}
	}
	cw.seal()
	if err := write(); err != nil {
		return err
	}
	if written == 0 {
		return nil
	}
	if err := d.file.Sync(); err != nil {
		return err
	}
	d.idx = cw.idx
	d.state.logs[d.gen] += written
	return nil
}

// writeAt is how many sealed bytes a flush gathers before it writes them:
// most flushes are one write, and a large one holds little memory.
const writeAt = 4 << 20

// newLog closes the current log, if any, and starts the next generation.
func (d *Disk) newLog() error {
	if d.file != nil {
		_ = d.file.Close()
		d.file = nil
	}
	gen := d.state.maxGen + 1
	h, fk, err := newHeader(kindLog, gen, d.cfg.Keys[0])
	if err != nil {
		return err
	}
	f, err := createSynced(d.cfg.Dir, logName(gen), h.raw[:])
	if err != nil {
		return err
	}
	d.state.maxGen = gen
	d.file, d.fileKeys, d.gen, d.idx = f, fk, gen, 0
	d.state.logs[gen] = headerSize
	return nil
}

// createSynced creates dir/name holding first, synced with its directory
// entry, and returns it open for appending.
func createSynced(dir, name string, first []byte) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(first); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// syncDir makes dir's entries (a created, renamed or removed file)
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
