// Package testrec holds helpers shared by the tests of the data model, the
// wire codec and the engine.
package testrec

import (
	"maps"
	"slices"

	"github.com/peersession/peersession/replicate/model"
)

// Norm returns r as it comes back from the wire: empty Keys and empty
// value Data are omitted there, so they decode as nil.
func Norm(r model.Record) model.Record {
	if len(r.Keys) == 0 {
		r.Keys = nil
		return r
	}
	kvs := slices.Clone(r.Keys)
	for i := range kvs {
		if len(kvs[i].Value.Data) == 0 {
			kvs[i].Value.Data = nil
		}
	}
	r.Keys = kvs
	return r
}

// KeysOf returns m as a sorted Keys slice; nil for nil, empty for empty.
func KeysOf(m map[string]model.Value) []model.KeyValue {
	if m == nil {
		return nil
	}
	kvs := make([]model.KeyValue, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kvs = append(kvs, model.KeyValue{Key: k, Value: m[k]})
	}
	return kvs
}

// Key returns key's value in r, the zero Value when r lacks it.
func Key(r model.Record, key string) model.Value {
	v, _ := r.Get(key)
	return v
}
