package peersession

import (
	"reflect"
)

// clearStale empties the interfaces in dst that msgpack cannot decode
// into (it panics on one holding a non-pointer, left by an earlier Get)
// and the slices of them it would reuse, before decoding.
func clearStale(v reflect.Value, p *getPlan) {
	if !p.norm || !v.CanSet() {
		return
	}
	switch p.kind {
	case planIface:
		if !v.IsNil() && v.Elem().Kind() != reflect.Pointer {
			v.SetZero()
		}
	case planPtr:
		if !v.IsNil() {
			clearStale(v.Elem(), p.elem)
		}
	case planSeq:
		if v.Kind() == reflect.Slice {
			v = v.Slice(0, v.Cap()) // msgpack reuses the backing array
		}
		for i := range v.Len() {
			clearStale(v.Index(i), p.elem)
		}
	case planStruct:
		for _, f := range p.list {
			if fv, err := v.FieldByIndexErr(f.index); err == nil {
				clearStale(fv, f.plan)
			}
		}
	}
}

// normalize applies normAny to every interface in v, which plan p
// describes, after decoding.
func normalize(v reflect.Value, p *getPlan) {
	if !p.norm {
		return
	}
	switch p.kind {
	case planIface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		if n, ok := normAny(v.Interface()); ok {
			v.Set(reflect.ValueOf(n))
		}
	case planPtr:
		if !v.IsNil() {
			normalize(v.Elem(), p.elem)
		}
	case planSeq:
		for i := range v.Len() {
			normalize(v.Index(i), p.elem)
		}
	case planMap:
		if !v.CanSet() {
			return
		}
		if m, ok := v.Interface().(map[string]any); ok {
			normAny(m)
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(p.elem.typ).Elem()
			e.Set(v.MapIndex(k))
			normalize(e, p.elem)
			nk := k
			if p.key.norm {
				nk = reflect.New(p.key.typ).Elem()
				nk.Set(k)
				normalize(nk, p.key)
				v.SetMapIndex(k, reflect.Value{})
			}
			v.SetMapIndex(nk, e)
		}
	case planStruct:
		for _, f := range p.list {
			if fv, err := v.FieldByIndexErr(f.index); err == nil {
				normalize(fv, f.plan)
			}
		}
	}
}
