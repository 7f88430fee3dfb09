package peersession

import (
	"errors"
	"fmt"

	"github.com/peersession/peersession/persist"
	"github.com/peersession/peersession/replicate/model"
)

// openDisk loads Config.DataDir into st, merging every record saved there
// as a change from a peer would be (expired sessions and tombstones past
// their time are dropped), and starts saving st's changes to it. It runs in
// New before the node joins its cluster, so a restarted node serves its
// sessions at once and then merges with its peers by the usual rules.
func openDisk(st *Store) (*persist.Disk, error) {
	keys := [][]byte{}
	if st.cfg.DataKey != nil {
		keys = append(keys, st.cfg.DataKey)
	}
	if st.cfg.Cluster != nil {
		keys = append(keys, st.cfg.Cluster.Keys...)
	}
	now := st.cfg.Now()
	var refused int
	var firstErr error
	apply := func(r model.Record) {
		st.clock.Observe(r.MaxVersion())
		if _, _, err := st.mergeIn(r, applyOpts{now: now}); err != nil && !errors.Is(err, errStale) {
			if refused++; firstErr == nil {
				firstErr = err
			}
		}
	}
	d, stats, err := persist.Open(persist.Config{
		Dir: st.cfg.DataDir, Keys: keys, FlushInterval: st.cfg.FlushInterval, Logger: st.cfg.Logger,
	}, diskSource{st}, apply)
	if err != nil {
		return nil, fmt.Errorf("peersession: Config.DataDir: %w", err)
	}
	if refused > 0 {
		st.cfg.Logger.Warn("peersession: sessions in Config.DataDir refused at load", "count", refused, "err", firstErr)
	}
	st.cfg.Logger.Info("peersession: sessions loaded from Config.DataDir", "dir", st.cfg.DataDir,
		"sessions", st.Len(), "records", stats.Records, "bytes", stats.Bytes, "took", stats.Duration)
	return d, nil
}

// diskSource is the store as persist.Disk reads it: the current entries,
// immutable once stored.
type diskSource struct{ st *Store }

var _ persist.Source = diskSource{}

func (s diskSource) Get(id string) (model.Record, bool) {
	e := s.st.shards.get(id)
	if e == nil {
		return model.Record{}, false
	}
	return e.rec, true
}

func (s diskSource) Each(fn func(*model.Record) bool) {
	s.st.shards.each(func(e *entry) bool { return fn(&e.rec) })
}
