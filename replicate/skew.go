package replicate

import (
	"time"

	"github.com/peersession/peersession/replicate/model"
)

// A remote version more than Config.MaxClockSkew ahead of this node's wall
// clock is refused (counted as Skewed) and never observed, so that one
// peer with a broken clock cannot drag every node's clock into the future.

// skewed reports whether v is more than MaxClockSkew ahead of this
// node's wall clock.
func (e *Engine) skewed(v model.Version) bool {
	return e.skewedAt(v, e.cfg.Clock.Wall().UnixNano())
}

// skewedAt is skewed against the wall clock reading wall.
func (e *Engine) skewedAt(v model.Version, wall int64) bool {
	return e.cfg.MaxClockSkew > 0 && v.Wall-wall > int64(e.cfg.MaxClockSkew)
}

// refuseSkewed counts and logs records refused for their clock skew (one
// line per logEvery at most, with the records since the last).
func (e *Engine) refuseSkewed(from string, recs []model.Record) {
	e.st.skewed.Add(uint64(len(recs)))
	wall := e.cfg.Clock.Wall()
	n, ok := e.skewLog.Allow(wall, len(recs))
	if !ok {
		return
	}
	var newest model.Version
	for i := range recs {
		newest = model.MaxVersion(newest, recs[i].MaxVersion())
	}
	ahead := time.Duration(newest.Wall - wall.UnixNano())
	e.log.Warn("replicate: records from the future refused: the peer's clock (or a writer's) is ahead of ours",
		"peer", from, "records", n, "ahead", ahead, "max_skew", e.cfg.MaxClockSkew, "session", recs[0].ID[:min(len(recs[0].ID), 12)])
}
