package wire

import (
	"github.com/peersession/peersession/replicate/model"
)

// This file holds hand-written msgpack encoders and decoders for Record,
// Value and Version, the bulk of every Batch and TransferChunk. They write
// exactly the bytes msgpack's reflection wrote for these types before they
// existed, and read whatever it read, into equal values; what they save is
// the reflection, and an allocation or more per field. (EncodeTo writes
// the frames that carry records with record_append.go's appender, which
// writes the same bytes without an Encoder; these encoders remain for
// msgpack's own users.)
//
// The wire form (permanent, see FormatVersion):
//
//   - Record: a map of its fields keyed by their msgpack tags, in field
//     order: i, c, e, t, a, p, pv, k, x. c, e, t, a, p and k are left out
//     when zero or empty; i, pv and x are always there.
//   - Value: a map d, v, x; d is left out when empty, x when false.
//   - Version: the array [wall int64, seq uint32, node uint64], each a
//     fixed-width msgpack int (codes 0xd3, 0xce, 0xcf).
//
// Like msgpack's own struct decoding, the decoders take the map's fields
// in any order, skip unknown ones, take nil for any field as its zero
// value (nil for the whole struct as the zero struct), any msgpack int
// width, str or bin for strings and bytes, and, as msgpack does, a struct
// as the array of all its fields in order. A field given twice is decoded
// twice, the last one winning (for Keys, the two maps' entries are
// merged). Keys is written in key order and read into key order, repeated
// keys dropped as a map would drop them (the last one wins).
//
// They do not look at the Encoder's or Decoder's options (compact ints,
// sorted map keys, array-encoded structs, disallowing unknown fields):
// the codec sets none, and the wire format does not depend on them.

// keysPresize caps the capacity a decoded Keys slice is created with, so
// that a declared length, even one the frame does not back, costs a
// bounded allocation; a larger slice grows as its entries arrive.
const keysPresize = 64

// maxRecordsPresize caps the capacity a decoded []Record is created
// with, likewise (and so does the number of bytes left, as every record
// takes at least one): a whole batch of the largest size (MaxRecords) is
// decoded without growing its slice.
const maxRecordsPresize = 10000

// Field counts of Record and Value, for their array form.
const (
	recordFields = 9
	valueFields  = 3
)

// record decodes a Record (see the top of this file).
func (r *reader) record(rec *model.Record) error {
	n, isArray, err := r.structLen()
	if err != nil {
		return err
	}
	if isArray {
		return r.recordArray(rec, n)
	}
	if n == -1 {
		*rec = model.Record{}
		return nil
	}
	for range n {
		name, err := r.name()
		if err != nil {
			return err
		}
		switch string(name) {
		case "i":
			rec.ID, err = r.string()
		case "c":
			rec.Created, err = r.int64()
		case "e":
			rec.Deadline, err = r.int64()
		case "t":
			rec.IdleTimeout, err = r.int64()
		case "a":
			rec.Access, err = r.int64()
		case "p":
			rec.Principal, err = r.string()
		case "pv":
			err = r.version(&rec.PrincipalVer)
		case "k":
			err = r.keys(&rec.Keys)
		case "x":
			err = r.version(&rec.Dead)
		default:
			err = r.skip(0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// recordArray reads the n fields of a Record's array form, as msgpack
// does: an empty array is the zero Record, and any length but the number
// of fields is an error.
func (r *reader) recordArray(rec *model.Record, n int) error {
	if n <= 0 {
		*rec = model.Record{}
		return nil
	}
	if n != recordFields {
		return errArrayStruct
	}
	var err error
	if rec.ID, err = r.string(); err != nil {
		return err
	}
	for _, p := range [...]*int64{&rec.Created, &rec.Deadline, &rec.IdleTimeout, &rec.Access} {
		if *p, err = r.int64(); err != nil {
			return err
		}
	}
	if rec.Principal, err = r.string(); err != nil {
		return err
	}
	if err := r.version(&rec.PrincipalVer); err != nil {
		return err
	}
	if err := r.keys(&rec.Keys); err != nil {
		return err
	}
	return r.version(&rec.Dead)
}

// keys reads a Record's Keys map into *keys, as msgpack reads a map: nil
// sets it to nil, and entries are added to it when it is not nil, a
// repeated key's last value winning. The result is sorted (SortKeys).
func (r *reader) keys(keys *[]model.KeyValue) error {
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	if n == -1 {
		*keys = nil
		return nil
	}
	kvs := *keys
	if kvs == nil {
		kvs = r.newKeys(n)
	}
	for range n {
		var kv model.KeyValue
		if kv.Key, err = r.key(); err != nil {
			return err
		}
		if err := r.value(&kv.Value); err != nil {
			return err
		}
		kvs = append(kvs, kv)
	}
	*keys = model.SortKeys(kvs)
	return nil
}

// newKeys returns an empty slice for a Keys map of n entries: the next n
// free slots of the key arena, if the reader has one and n is not over
// keysPresize (a record with more keys gets its own slice, and a declared
// length the frame does not back costs a bounded allocation either way),
// else a new slice. The arena's slots are taken now, so the slice is
// capped at them and appending n entries never touches another record's.
func (r *reader) newKeys(n int) []model.KeyValue {
	if r.keyArena == nil || n > keysPresize {
		return make([]model.KeyValue, 0, min(n, keysPresize))
	}
	a := *r.keyArena
	if cap(a)-len(a) < n {
		// A new array: the records decoded so far keep the old one.
		a = make([]model.KeyValue, 0, max(2*cap(a), keyArenaMin, n))
	}
	l := len(a)
	*r.keyArena = a[:l+n]
	return a[l : l : l+n]
}

// keyArenaMin is the smallest key arena allocated: room for the keys of a
// typical Batch.
const keyArenaMin = 256

// value decodes a Value.
func (r *reader) value(v *model.Value) error {
	n, isArray, err := r.structLen()
	if err != nil {
		return err
	}
	if isArray {
		switch {
		case n <= 0:
			*v = model.Value{}
			return nil
		case n != valueFields:
			return errArrayStruct
		}
		if v.Data, err = r.bytes(); err != nil {
			return err
		}
		if err := r.version(&v.Ver); err != nil {
			return err
		}
		v.Deleted, err = r.bool()
		return err
	}
	if n == -1 {
		*v = model.Value{}
		return nil
	}
	for range n {
		name, err := r.name()
		if err != nil {
			return err
		}
		switch string(name) {
		case "d":
			v.Data, err = r.bytes()
		case "v":
			err = r.version(&v.Ver)
		case "x":
			v.Deleted, err = r.bool()
		default:
			err = r.skip(0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// version decodes a Version.
func (r *reader) version(v *model.Version) error {
	n, err := r.arrayLen()
	if err != nil {
		return err
	}
	*v = model.Version{}
	for i := range max(n, 0) {
		switch i {
		case 0:
			v.Wall, err = r.int64()
		case 1:
			var seq uint64
			seq, err = r.uint64()
			v.Seq = uint32(seq)
		case 2:
			v.Node, err = r.uint64()
		default:
			err = r.skip(0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// The messages that carry records are decoded with reader too, as
// msgpack's reflection decodes them (fields in any order, unknown ones
// skipped, nil as zero, the array form), so that Decode never goes through
// msgpack.Decoder for a record.

// The field names of the messages object decodes, in the order of their
// array form.
var (
	batchFields         = []string{"s", "r"}
	ackFields           = []string{"s", "f"}
	transferChunkFields = []string{"q", "r", "d"}
	fetchReplyFields    = []string{"q", "f", "r", "m"}
)

// object reads a message struct as msgpack's struct decoding does: nil or
// an empty array calls reset (the zero value); an array must hold exactly
// one value per name, read in order; a map's entries are read by name,
// unknown ones skipped, a name given twice read twice. field(i) reads the
// value of names[i].
func (r *reader) object(names []string, reset func(), field func(i int) error) error {
	n, isArray, err := r.structLen()
	switch {
	case err != nil:
		return err
	case isArray && n <= 0, n == -1:
		reset()
		return nil
	case isArray && n != len(names):
		return errArrayStruct
	case isArray:
		for i := range names {
			if err := field(i); err != nil {
				return err
			}
		}
		return nil
	}
	for range n {
		name, err := r.name()
		if err != nil {
			return err
		}
		if i := fieldIndex(names, name); i >= 0 {
			err = field(i)
		} else {
			err = r.skip(0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fieldIndex returns the index of name in names, or -1.
func fieldIndex(names []string, name []byte) int {
	for i, known := range names {
		if known == string(name) {
			return i
		}
	}
	return -1
}

// batch decodes a Batch.
func (r *reader) batch(b *Batch) error {
	// Keep the records' array (empty) for decodeFrame's reused Batches.
	return r.object(batchFields, func() { *b = Batch{Records: b.Records[:0]} }, func(i int) (err error) {
		if i == 0 {
			b.Seq, err = r.uint64()
		} else {
			err = r.records(&b.Records)
		}
		return err
	})
}

// ack decodes an Ack: one per Batch, so it skips msgpack's reflection too.
func (r *reader) ack(a *Ack) error {
	return r.object(ackFields, func() { *a = Ack{} }, func(i int) (err error) {
		if i == 0 {
			a.Seq, err = r.uint64()
		} else {
			a.Refused, err = r.uint64()
		}
		return err
	})
}

// transferChunk decodes a TransferChunk.
func (r *reader) transferChunk(c *TransferChunk) error {
	return r.object(transferChunkFields, func() { *c = TransferChunk{} }, func(i int) (err error) {
		switch i {
		case 0:
			c.Req, err = r.uint64()
		case 1:
			err = r.records(&c.Records)
		default:
			c.Done, err = r.bool()
		}
		return err
	})
}

// fetchReply decodes a FetchReply.
func (r *reader) fetchReply(f *FetchReply) error {
	return r.object(fetchReplyFields, func() { *f = FetchReply{} }, func(i int) (err error) {
		switch i {
		case 0:
			f.Req, err = r.uint64()
		case 1:
			f.Found, err = r.bool()
		case 2:
			err = r.record(&f.Record)
		default:
			f.More, err = r.bool()
		}
		return err
	})
}

// records decodes a []Record as msgpack decodes a slice: nil for nil,
// empty and not nil for an empty array, and otherwise n elements, the
// ones *recs already has decoded into (as msgpack does, should a field be
// given twice).
func (r *reader) records(recs *[]model.Record) error {
	n, err := r.arrayLen()
	switch {
	case err != nil:
		return err
	case n == -1:
		*recs = nil
		return nil
	case n == 0 && *recs == nil:
		*recs = []model.Record{}
		return nil
	}
	s := *recs
	if s == nil {
		s = make([]model.Record, 0, min(n, maxRecordsPresize, len(r.b)-r.pos))
	}
	if n < len(s) {
		// A second array for the same field, shorter than the first:
		// the records past it go, leaving the array zero past its
		// length (see decodeFrame's reused Batches).
		clear(s[n:])
	}
	s = s[:min(n, cap(s))]
	for i := range n {
		if i == len(s) {
			s = append(s, model.Record{})
		}
		if err := r.record(&s[i]); err != nil {
			return err
		}
	}
	*recs = s
	return nil
}
