package peersession

import (
	"errors"
	"reflect"
	"sync"
)

// What Get checks of an encoded value before msgpack decodes it into a
// destination: a plan per destination type (see codec.go).

// planKind is what a getPlan node is.
type planKind uint8

const (
	planSkip   planKind = iota // nothing to check or normalize: strings, floats, bytes, types with decoding methods
	planInt                    // a signed integer of bits bits
	planUint                   // an unsigned integer
	planPtr                    // *elem
	planSeq                    // a slice or array of elem
	planMap                    // map[key]elem
	planStruct                 // fields
	planIface                  // an empty interface: normalized after decoding
)

// getPlan is what Get knows of a destination type: the shape of the
// integers and interfaces in it. Plans of recursive types are cyclic.
type getPlan struct {
	typ       reflect.Type
	kind      planKind
	bits      int
	elem, key *getPlan
	fields    map[string]*getField // by msgpack key
	list      []*getField          // in encoding order, for a struct encoded as an array
	checked   []namedField         // the fields that need checkFit, by msgpack key
	check     bool                 // an integer inside needs checkFit
	norm      bool                 // an interface inside needs normalize
	// signed64 is set on a destination whose integers are all int or
	// int64: only a uint64 over MaxInt64 does not fit one, and msgpack
	// writes that with the Uint64 code, so a value without that byte
	// needs no checkFit.
	signed64 bool
}

// namedField is a struct field under one of its msgpack keys.
type namedField struct {
	name  string
	field *getField
}

// getField is one field of a planStruct.
type getField struct {
	goName string
	index  []int
	plan   *getPlan
}

// getPlans caches a *getPlan per destination type (what dst points to).
var getPlans sync.Map

func getPlanOf(t reflect.Type) *getPlan {
	if v, ok := getPlans.Load(t); ok {
		return v.(*getPlan)
	}
	memo := map[reflect.Type]*getPlan{}
	p := buildPlan(t, memo)
	// check and norm propagate up, round cycles too: until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, q := range memo {
			c, n := q.kind == planInt || q.kind == planUint, q.kind == planIface
			for _, sub := range q.children() {
				c, n = c || sub.check, n || sub.norm
			}
			if c != q.check || n != q.norm {
				q.check, q.norm, changed = c, n, true
			}
		}
	}
	p.signed64 = true
	for _, q := range memo {
		if (q.kind == planInt || q.kind == planUint) && (q.kind == planUint || q.bits != 64) {
			p.signed64 = false
		}
		for name, f := range q.fields {
			if f.plan.check {
				q.checked = append(q.checked, namedField{name, f})
			}
		}
	}
	v, _ := getPlans.LoadOrStore(t, p)
	return v.(*getPlan)
}

func (p *getPlan) children() []*getPlan {
	var c []*getPlan
	if p.elem != nil {
		c = append(c, p.elem)
	}
	if p.key != nil {
		c = append(c, p.key)
	}
	for _, f := range p.list {
		c = append(c, f.plan)
	}
	for _, f := range p.fields {
		c = append(c, f.plan)
	}
	return c
}

func buildPlan(t reflect.Type, memo map[reflect.Type]*getPlan) *getPlan {
	if p := memo[t]; p != nil {
		return p
	}
	p := &getPlan{typ: t}
	memo[t] = p
	if hasMethods(t, decoderIfaces) {
		return p // decoded by its own methods
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind, p.bits = planInt, t.Bits()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		p.kind, p.bits = planUint, t.Bits()
	case reflect.Pointer:
		p.kind, p.elem = planPtr, buildPlan(t.Elem(), memo)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 { // bytes are bin, not an array
			p.kind, p.elem = planSeq, buildPlan(t.Elem(), memo)
		}
	case reflect.Map:
		p.kind, p.key, p.elem = planMap, buildPlan(t.Key(), memo), buildPlan(t.Elem(), memo)
	case reflect.Interface:
		if t.NumMethod() == 0 {
			p.kind = planIface
		}
	case reflect.Struct:
		p.kind = planStruct
		fs := msgpackFields(t, 0)
		byField := map[*mpField]*getField{}
		field := func(f *mpField) *getField {
			if g := byField[f]; g != nil {
				return g
			}
			g := &getField{goName: f.goName, index: f.index, plan: buildPlan(f.typ, memo)}
			byField[f] = g
			return g
		}
		p.fields = make(map[string]*getField, len(fs.byName))
		for name, f := range fs.byName {
			p.fields[name] = field(f)
		}
		for _, f := range fs.list {
			p.list = append(p.list, field(f))
		}
	}
	return p
}

// errStop stops checkFit where msgpack will fail anyway (a code the
// destination does not take, a malformed value): msgpack then says why.
var errStop = errors.New("stop")

// checkFit returns a *rangeError for the first integer in data that does
// not fit where plan p puts it.
func checkFit(data []byte, p *getPlan) error {
	w := cursor{b: data}
	if err := w.value(p); err != nil && err != errStop {
		return err
	}
	return nil
}
