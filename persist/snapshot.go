package persist

import (
	"bufio"
	"os"
	"path/filepath"
	"time"

	"github.com/peersession/peersession/replicate/model"
)

// snapResult is a snapshot's outcome, sent to the writer.
type snapResult struct {
	gen  uint64 // the generation it covers: logs up to it are in it
	size int64
	n    int // records
	took time.Duration
	err  error
}

// maybeCompact starts a snapshot when the logs have grown past
// CompactRatio times the snapshot (and MinCompact), or when force is set
// (after a load that found a torn log or a file under an older key). It
// runs on the writer goroutine: it ends the current log, so that the
// snapshot, taken after it, covers it, and the writer goes on appending to
// the next one while the snapshot is written.
func (d *Disk) maybeCompact(force bool) {
	if d.snapping {
		return
	}
	var logs int64
	for _, n := range d.state.logs {
		logs += n
	}
	if !force && (logs < d.cfg.MinCompact || logs < int64(d.cfg.CompactRatio)*d.state.snapBytes) {
		return
	}
	covered := d.gen
	if err := d.newLog(); err != nil {
		d.log.Error("persist: starting a new log failed", "dir", d.cfg.Dir, "err", err)
		d.broken = true
		return
	}
	d.snapping = true
	key := d.cfg.Keys[0]
	go func() { d.snapDone <- d.writeSnapshot(covered, key) }()
}

// writeSnapshot writes every record of the source to a new snapshot
// covering the logs up to gen: to a temporary file, synced, then renamed
// over the old one.
func (d *Disk) writeSnapshot(gen uint64, key []byte) (res snapResult) {
	start := time.Now()
	res.gen = gen
	dir := d.cfg.Dir
	tmp := filepath.Join(dir, snapshotTmp)
	fail := func(err error) snapResult {
		_ = os.Remove(tmp)
		res.err = err
		return res
	}
	h, fk, err := newHeader(kindSnapshot, gen, key)
	if err != nil {
		return fail(err)
	}
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	_, _ = w.Write(h.raw[:])
	cw := chunkWriter{fk: fk, log: d.log}
	var werr error
	d.src.Each(func(r *model.Record) bool {
		cw.add(*r)
		if len(cw.out) >= 1<<20 {
			_, werr = w.Write(cw.out)
			cw.out = cw.out[:0]
		}
		return werr == nil
	})
	if werr != nil {
		return fail(werr)
	}
	cw.end()
	if _, err := w.Write(cw.out); err != nil {
		return fail(err)
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, snapshotName)); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	fi, err := os.Stat(filepath.Join(dir, snapshotName))
	if err != nil {
		return fail(err)
	}
	res.size, res.n, res.took = fi.Size(), cw.n, time.Since(start)
	return res
}

// snapshotDone, on the writer goroutine, removes the logs a new snapshot
// covers.
func (d *Disk) snapshotDone(r snapResult) {
	d.snapping = false
	if r.err != nil {
		d.log.Error("persist: writing a snapshot failed; the logs are kept", "dir", d.cfg.Dir, "err", r.err)
		return
	}
	d.state.snapGen, d.state.snapBytes = r.gen, r.size
	for g := range d.state.logs {
		if g > r.gen {
			continue
		}
		if err := os.Remove(filepath.Join(d.cfg.Dir, logName(g))); err != nil {
			d.log.Error("persist: removing a compacted log failed", "dir", d.cfg.Dir, "err", err)
			continue
		}
		delete(d.state.logs, g)
	}
	if err := syncDir(d.cfg.Dir); err != nil {
		d.log.Error("persist: syncing the data directory failed", "dir", d.cfg.Dir, "err", err)
	}
	d.log.Debug("persist: snapshot written", "dir", d.cfg.Dir, "sessions", r.n, "bytes", r.size, "took", r.took)
}
