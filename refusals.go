package peersession

import (
	"log/slog"
	"time"

	"github.com/peersession/peersession/internal/ratelog"
)

// refusalLogEvery is the least time between two log lines about changes
// from peers that the store refused.
const refusalLogEvery = 10 * time.Second

// refusalLog reports the changes from peers that this node's store refused
// (full, over a size limit, for a session expired here, a malformed
// value): the first at once, then at most one line per refusalLogEvery
// with the count since the last, so that a full store does not flood the
// log. The sending node's Sync writes fail for these changes; this is
// where its operator finds out why.
type refusalLog struct{ lim ratelog.Limiter }

func newRefusalLog() refusalLog {
	return refusalLog{lim: ratelog.Limiter{Every: refusalLogEvery}}
}

// note counts the refusal of a change to session id for err and logs the
// count if the last line is old enough.
func (l *refusalLog) note(log *slog.Logger, now time.Time, id string, err error) {
	if n, ok := l.lim.Allow(now, 1); ok {
		log.Warn("peersession: refusing changes from peers (Sync writes on the sending node fail for them)",
			"refused", n, "session", logID(id), "err", err)
	}
}
