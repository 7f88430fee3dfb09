package wire

import (
	"bytes"
	"testing"
)

// BenchmarkEncodeToBatch encodes the Batch of BenchmarkEncodeBatch into a
// reused buffer, as a peer's sender does (window.go): the encoding alone,
// without Encode's copy of the frame out of its pooled buffer.
func BenchmarkEncodeToBatch(b *testing.B) {
	batch := codecBatch(32, 4, 200)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		frame, err := EncodeTo(&buf, MsgBatch, batch)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(frame)))
	}
}
