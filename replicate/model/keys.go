package model

import (
	"slices"
	"strings"
)

// This file holds Record's keys: a slice sorted by key rather than a map,
// because a Go map of one or two keys (the common session) costs a whole
// bucket group, several times the size of the keys themselves. On the
// wire Keys is still a msgpack map (see record_codec.go).

// KeyValue is one key of a Record and its value.
type KeyValue struct {
	Key   string
	Value Value
}

// Get returns key's value (a removal included) and whether r holds key.
func (r *Record) Get(key string) (Value, bool) {
	if i, ok := SearchKeys(r.Keys, key); ok {
		return r.Keys[i].Value, true
	}
	return Value{}, false
}

// SearchKeys returns the index of key in kvs, sorted by key (as
// Record.Keys), or where it would be inserted, and whether it is there:
// slices.BinarySearchFunc without its indirect calls, which made every
// session read (BenchmarkGet) 60% slower.
func SearchKeys(kvs []KeyValue, key string) (int, bool) {
	lo, hi := 0, len(kvs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if kvs[m].Key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(kvs) && kvs[lo].Key == key
}

// SetKey returns kvs with key set to v, kvs being sorted by key without
// repeats: v replaces key's value where kvs has it, and is inserted in
// order where it does not. kvs's array is reused when it has room.
func SetKey(kvs []KeyValue, key string, v Value) []KeyValue {
	i, ok := SearchKeys(kvs, key)
	if ok {
		kvs[i].Value = v
		return kvs
	}
	return slices.Insert(kvs, i, KeyValue{Key: key, Value: v})
}

// Set sets key to v in r.Keys, keeping them sorted (see SetKey).
func (r *Record) Set(key string, v Value) { r.Keys = SetKey(r.Keys, key, v) }

// SortKeys sorts kvs by key in place and drops repeated keys, the last of
// each winning (as a msgpack map's does), and returns the result: kvs
// shortened, in the manner of slices.Compact. Record.Keys must always be
// so sorted; SortKeys makes a slice built in any order fit to be one.
func SortKeys(kvs []KeyValue) []KeyValue {
	if keysSorted(kvs) {
		return kvs
	}
	slices.SortStableFunc(kvs, compareKeys)
	out := kvs[:0]
	for i, kv := range kvs {
		if i+1 < len(kvs) && kvs[i+1].Key == kv.Key {
			continue // a later value for the same key wins
		}
		out = append(out, kv)
	}
	clear(kvs[len(out):])
	return out
}

// keysSorted reports whether kvs is sorted by key without repeats.
func keysSorted(kvs []KeyValue) bool {
	for i := 1; i < len(kvs); i++ {
		if kvs[i-1].Key >= kvs[i].Key {
			return false
		}
	}
	return true
}

func compareKeys(a, b KeyValue) int { return strings.Compare(a.Key, b.Key) }

// mergeKeys returns the union of the sorted key slices a and b in a new
// slice of exactly the size it needs, the value with the larger Version
// winning for a key in both (a's when they are equal); nil when both are
// empty.
func mergeKeys(a, b []KeyValue) []KeyValue {
	n := mergedKeysLen(a, b)
	if n == 0 {
		return nil
	}
	return mergeKeysInto(make([]KeyValue, 0, n), a, b)
}

// mergedKeysLen returns the length of the union of the sorted key slices
// a and b.
func mergedKeysLen(a, b []KeyValue) int {
	n := len(a) + len(b)
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := strings.Compare(a[i].Key, b[j].Key); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			n--
			i++
			j++
		}
	}
	return n
}

// mergeKeysInto appends the union of a and b (as mergeKeys) to out.
func mergeKeysInto(out, a, b []KeyValue) []KeyValue {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i].Key, b[j].Key); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			kv := a[i]
			if kv.Value.Ver.Less(b[j].Value.Ver) {
				kv = b[j]
			}
			out = append(out, kv)
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
