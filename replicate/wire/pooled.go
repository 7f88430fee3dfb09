package wire

import (
	"sync"

	"github.com/peersession/peersession/replicate/model"
)

// Batches arrive by the thousand a second on a busy stream. DecodePooled
// decodes each into a pooled Batch, with the arrays its records and the
// records' Keys are decoded into, so that a stream of Batches allocates
// none of them per Batch: the receiver keeps no received Batch, record
// array or Keys slice once it has applied them (it may keep the records'
// strings and values, not the slices).

// batchPool holds the rxBatches DecodePooled decodes into.
var batchPool = sync.Pool{New: func() any { return new(rxBatch) }}

// rxBatch is a received Batch and the key arena of its records (see
// reader.keyArena).
type rxBatch struct {
	b    Batch
	keys []model.KeyValue
}

// Largest arrays a pooled rxBatch keeps: a Batch of very many records,
// or of very large sessions, does not pin its arrays.
const (
	maxRecordsKept  = 4096
	maxKeyArenaKept = 1 << 14
)

// Pooled holds the pooled arrays of a Batch decoded by DecodePooled. Its
// zero value holds none.
type Pooled struct{ rx *rxBatch }

// Release returns the arrays to the pool, cleared so that they pin no
// session data. The Batch decoded into them, its Records and their Keys
// slices must not be used afterwards. Release is a no-op for a zero
// Pooled.
func (p Pooled) Release() {
	if p.rx != nil && p.rx.reset() {
		batchPool.Put(p.rx)
	}
}

// DecodePooled is DecodeLimits with DefaultLimits, decoding a Batch into
// pooled arrays: the caller calls Release on the Pooled it returns once
// it no longer uses the Batch (see the top of this file). Other messages
// are decoded as Decode does, with a zero Pooled.
func DecodePooled(frame []byte) (MsgType, any, Pooled, error) {
	if len(frame) < 2 || MsgType(frame[1]) != MsgBatch {
		t, msg, err := decodeFrame(frame, DefaultLimits, nil, nil)
		return t, msg, Pooled{}, err
	}
	rx := batchPool.Get().(*rxBatch)
	t, msg, err := decodeFrame(frame, DefaultLimits, &rx.b, &rx.keys)
	if err != nil {
		// The decoder may have filled records past the length: reset
		// clears up to the length, so extend it over the whole array.
		rx.b.Records = rx.b.Records[:cap(rx.b.Records)]
		Pooled{rx}.Release()
		return 0, nil, Pooled{}, err
	}
	return t, msg, Pooled{rx}, nil
}

// reset clears rx for the next Batch and reports whether its arrays are
// small enough to keep. Only the records up to the Batch's length are
// cleared: the array is zero past it (decodeFrame's contract, which
// DecodePooled keeps by extending the length over the whole array when a
// decode fails), and a small Batch in a large array clears only itself.
func (rx *rxBatch) reset() bool {
	recs := rx.b.Records
	if cap(recs) > maxRecordsKept || cap(rx.keys) > maxKeyArenaKept {
		return false
	}
	clear(recs)
	clear(rx.keys)
	*rx = rxBatch{b: Batch{Records: recs[:0]}, keys: rx.keys[:0]}
	return true
}
