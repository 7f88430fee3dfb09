package persist

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

const (
	// chunkTarget is the plaintext size a chunk is closed at: large enough
	// that a chunk's fixed costs (a frame header, a nonce, a tag) are
	// nothing, small enough that a torn write loses little and a reader
	// holds little.
	chunkTarget = 1 << 20
	// chunkMaxRecords bounds the records of one chunk, well below the
	// wire's Limits.MaxRecords.
	chunkMaxRecords = 4096
)

// chunkWriter seals records into chunks appended to out.
type chunkWriter struct {
	fk    *fileKeys
	idx   uint64 // the next chunk's index in its file
	recs  []model.Record
	size  int          // recs' EstSize summed
	frame bytes.Buffer // EncodeTo's buffer, reused
	out   []byte       // sealed chunks not yet written
	n     int          // records sealed
	log   *slog.Logger
}

// add adds r, split into parts (wire.AppendParts) when it is too large
// for one wire record.
func (w *chunkWriter) add(r model.Record) {
	sz := r.EstSize()
	if wire.Fits(&r, sz, &wire.DefaultLimits) {
		w.addOne(r, sz)
		return
	}
	for _, p := range wire.AppendParts(nil, r, &wire.DefaultLimits) {
		w.addOne(p, p.EstSize())
	}
}

func (w *chunkWriter) addOne(r model.Record, sz int) {
	if len(w.recs) > 0 && (w.size+sz > chunkTarget || len(w.recs) >= chunkMaxRecords) {
		w.seal()
	}
	w.recs = append(w.recs, r)
	w.size += sz
}

// seal closes the chunk being filled, if any.
func (w *chunkWriter) seal() {
	if len(w.recs) == 0 {
		return
	}
	frame, err := wire.EncodeTo(&w.frame, wire.MsgBatch, &wire.Batch{Seq: w.idx, Records: w.recs})
	if err == nil {
		w.sealFrame(frame, len(w.recs))
	} else {
		// A record the wire refuses (a single value over its limits,
		// which no peer would take either): save the others.
		for i := range w.recs {
			frame, err := wire.EncodeTo(&w.frame, wire.MsgBatch, &wire.Batch{Seq: w.idx, Records: w.recs[i : i+1]})
			if err != nil {
				w.log.Error("persist: a session cannot be saved", "err", err)
				continue
			}
			w.sealFrame(frame, 1)
		}
	}
	clear(w.recs)
	w.recs = w.recs[:0]
	w.size = 0
}

func (w *chunkWriter) sealFrame(frame []byte, n int) {
	w.out = w.fk.sealChunk(w.out, chunkRecords, w.idx, frame)
	w.idx++
	w.n += n
}

// end appends a snapshot's end chunk, after sealing what is pending.
func (w *chunkWriter) end() {
	w.seal()
	var p [16]byte
	binary.BigEndian.PutUint64(p[:8], uint64(w.n))
	binary.BigEndian.PutUint64(p[8:], w.idx)
	w.out = w.fk.sealChunk(w.out, chunkEnd, w.idx, p[:])
	w.idx++
}

// errTorn is what readChunks returns, wrapped with the offset, for a log
// whose last write was cut short.
var errTorn = errors.New("torn write at the end")

// readChunks reads the chunks after the header from r, of size bytes in
// all (header included), and calls fn with each one's type and plaintext
// (valid until fn returns). It returns, wrapped with the offset:
// errTorn when the last chunk is cut short or does not authenticate, or
// the file ends in zeros where a chunk should be (what a crash leaves);
// ErrCorrupt when a chunk that is not the last is damaged.
func readChunks(r *bufio.Reader, size int64, fk *fileKeys, fn func(typ byte, plain []byte) error) error {
	off := int64(headerSize)
	var body, plain []byte
	var lenBuf [4]byte
	for idx := uint64(0); off < size; idx++ {
		left := size - off
		if left < 4 {
			return fmt.Errorf("offset %d: %w (%d bytes)", off, errTorn, left)
		}
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		n := int64(binary.BigEndian.Uint32(lenBuf[:]))
		if n < 1+nonceSize+tagSize || n > maxChunk {
			if n == 0 && allZero(r) {
				return fmt.Errorf("offset %d: %w (%d zero bytes)", off, errTorn, left)
			}
			return fmt.Errorf("offset %d: %w: chunk length %d", off, ErrCorrupt, n)
		}
		if n > left-4 {
			return fmt.Errorf("offset %d: %w (chunk of %d bytes, %d left)", off, errTorn, n, left-4)
		}
		if int64(cap(body)) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		typ, p, err := fk.openChunk(plain[:0], body, idx)
		if err != nil {
			if off+4+n == size {
				return fmt.Errorf("offset %d: %w (%v)", off, errTorn, err)
			}
			return fmt.Errorf("offset %d: %w", off, err)
		}
		plain = p
		if err := fn(typ, plain); err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		off += 4 + n
	}
	return nil
}

// allZero reports whether r holds nothing but zero bytes from here on.
func allZero(r *bufio.Reader) bool {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return true
		}
		if b != 0 {
			return false
		}
	}
}

// decodeRecords decodes a records chunk's plaintext, a wire Batch frame,
// and calls apply with each record.
func decodeRecords(plain []byte, apply func(model.Record)) (int, error) {
	t, msg, err := wire.Decode(plain)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	b, ok := msg.(*wire.Batch)
	if t != wire.MsgBatch || !ok {
		return 0, fmt.Errorf("%w: a %s frame where records belong", ErrCorrupt, t)
	}
	for _, rec := range b.Records {
		apply(rec)
	}
	return len(b.Records), nil
}
