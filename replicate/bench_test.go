package replicate

import (
	"context"
	"testing"
	"time"

	"github.com/peersession/peersession/replicate/model"
)

// BenchmarkPublishApply publishes one-key changes to distinct sessions on
// A and waits until B applied them all: records/s through queue, batching,
// codec, memnet and apply.
func BenchmarkPublishApply(b *testing.B) {
	_, nodes := newCluster(b, 2, nil)
	a := nodes[0]
	val := make([]byte, 100)
	b.ResetTimer()
	for i := range b.N {
		a.e.Publish(model.Record{ID: sessionID(i % 100000), Keys: []model.KeyValue{{Key: "k", Value: model.Value{Data: val, Ver: a.clock.Now()}}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.e.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	st := a.e.Stats().Peers["B"]
	b.ReportMetric(float64(st.Sent)/float64(max(st.Batches, 1)), "records/batch")
}

// BenchmarkMergeBatch merges a batch of 100 one-key deltas into 10-key
// records, as a store's Apply does.
func BenchmarkMergeBatch(b *testing.B) {
	c := model.NewClock(1, nil)
	cur := make([]model.Record, 100)
	deltas := make([]model.Record, 100)
	for i := range cur {
		cur[i] = model.Record{ID: sessionID(i), Keys: make([]model.KeyValue, 0, 10)}
		for k := range 10 { // key0 … key9: in order
			cur[i].Keys = append(cur[i].Keys, model.KeyValue{Key: "key" + itoa(k), Value: model.Value{Data: make([]byte, 50), Ver: c.Now()}})
		}
		deltas[i] = model.Record{ID: sessionID(i), Keys: []model.KeyValue{{Key: "key3", Value: model.Value{Data: make([]byte, 50), Ver: c.Now()}}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := range deltas {
			_ = model.Merge(cur[i], deltas[i])
		}
	}
	b.ReportMetric(float64(b.N*len(deltas))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDigest computes the anti-entropy digest of 10,000 sessions of
// two keys each (the walk every AntiEntropyInterval), over the tests'
// in-memory store, whose Range copies every record.
func BenchmarkDigest(b *testing.B) {
	_, nodes := newCluster(b, 1, nil)
	a := nodes[0]
	recs := make([]model.Record, 10000)
	for i := range recs {
		recs[i] = a.write(sessionID(i), "cart", "three items", "user", "ann")
	}
	a.store.Apply(recs)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = a.e.Digest()
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}
