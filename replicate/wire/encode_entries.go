package wire

import "github.com/peersession/peersession/replicate/model"

// Why EncodeTo need not walk an appended frame with checkStructure.
//
// checkStructure (validate.go) checks that a body is one well-formed
// msgpack object, nested at most maxDepth deep, without extension types,
// with every array and map at most max(MaxRecords, MaxKeys, DigestBuckets,
// 64) long, every str and bin at most max(MaxKeyLen, MaxValue) bytes, and
// at most MaxEntries map entries summed. For a body the appender wrote
// (record_append.go) from a message validate accepted with DefaultLimits:
//
//   - it is one well-formed object, without extensions: the appender
//     writes nothing else;
//   - it nests six deep at most (body, records, record, keys, value,
//     version);
//   - its arrays are the records (at most MaxRecords, by validate) and
//     Versions (3), its maps the body (at most 3 entries), records (9),
//     Keys (at most MaxKeys, by validate) and Values (3);
//   - its strs and bins are field names (2 bytes at most), IDs,
//     principals and keys (MaxKeyLen, by validate) and Data (MaxValue, by
//     validate);
//
// which leaves the sum of map entries, which validate does not bound and
// appendedEntries counts without walking the bytes.

// appendedEntries returns the number of map entries checkStructure would
// count in the body appendBody writes for msg: every map's length, summed.
// It is zero for a message appendBody does not write.
func appendedEntries(msg any) int {
	switch m := msg.(type) {
	case *Batch:
		return 2 + recordsEntries(m.Records)
	case Batch:
		return 2 + recordsEntries(m.Records)
	case *TransferChunk:
		return 3 + recordsEntries(m.Records)
	case TransferChunk:
		return 3 + recordsEntries(m.Records)
	case *Ack:
		return ackEntries(*m)
	case Ack:
		return ackEntries(m)
	case *FetchReply:
		return fetchReplyEntries(m)
	case FetchReply:
		return fetchReplyEntries(&m)
	}
	return 0
}

// recordsEntries returns the map entries of recs as appendRecord writes
// them: each record's fields, its Keys map, and each Value's fields.
// (Versions are arrays, and Data is a bin whatever it holds.)
func recordsEntries(recs []model.Record) int {
	n := 0
	for i := range recs {
		r := &recs[i]
		n += 3 // i, pv, x
		for _, set := range [...]bool{r.Created != 0, r.Deadline != 0, r.IdleTimeout != 0,
			r.Access != 0, r.Principal != ""} {
			if set {
				n++
			}
		}
		if len(r.Keys) > 0 {
			n += 1 + len(r.Keys) // the "k" field, then the map's entries
		}
		for j := range r.Keys {
			v := &r.Keys[j].Value
			n++ // v
			if len(v.Data) > 0 {
				n++
			}
			if v.Deleted {
				n++
			}
		}
	}
	return n
}

// ackEntries returns the map entries appendAck writes for a: "s", and
// "f" when Refused is set.
func ackEntries(a Ack) int {
	if a.Refused != 0 {
		return 2
	}
	return 1
}

// fetchReplyEntries returns the map entries appendFetchReply writes for
// m: q, f, r, m when More is set, and the record's.
func fetchReplyEntries(m *FetchReply) int {
	n := 3
	if m.More {
		n++
	}
	return n + recordsEntries([]model.Record{m.Record})
}
