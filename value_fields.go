package peersession

import (
	"reflect"
	"strings"
)

// mpField is one field of a struct as msgpack v5 encodes and decodes it.
type mpField struct {
	goName string // the Go field name, for errors
	name   string // the msgpack key
	index  []int  // for reflect.Value.FieldByIndex
	typ    reflect.Type
}

// mpFields are a struct's fields as msgpack v5 (types.go, getFields) sees
// them with no custom struct tag: list in encoding order, byName for
// decoding (aliases and an inlined struct's own name included).
type mpFields struct {
	list   []*mpField
	byName map[string]*mpField
}

func (fs *mpFields) add(f *mpField) {
	fs.byName[f.name] = f
	fs.list = append(fs.list, f)
}

// maxInline bounds the depth of inlined embedded structs (msgpack itself
// recurses without end on a struct embedding a pointer to itself).
const maxInline = 16

// msgpackFields mirrors msgpack's getFields: a field tagged "-" or
// unexported (unless embedded) is skipped; an embedded struct is inlined
// unless tagged noinline, it has encoding methods, or one of its fields
// would shadow one already there.
func msgpackFields(t reflect.Type, depth int) *mpFields {
	fs := &mpFields{byName: map[string]*mpField{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts := parseTag(sf.Tag.Get("msgpack"))
		if name == "-" {
			continue
		}
		if sf.PkgPath != "" && !sf.Anonymous {
			continue
		}
		f := &mpField{goName: sf.Name, name: name, index: sf.Index, typ: sf.Type}
		if f.name == "" {
			f.name = sf.Name
		}
		_, noinline := opts["noinline"]
		if sf.Anonymous && !noinline && depth < maxInline {
			_, inline := opts["inline"]
			if inline {
				inner := sf.Type
				for inner.Kind() == reflect.Pointer {
					inner = inner.Elem()
				}
				if inner.Kind() == reflect.Struct {
					for _, g := range msgpackFields(inner, depth+1).list {
						if _, ok := fs.byName[g.name]; !ok {
							fs.add(inlined(f, g))
						}
					}
				}
			} else {
				inline = inlineAuto(fs, sf.Type, f, depth)
			}
			if inline {
				fs.byName[f.name] = f
				continue
			}
		}
		fs.add(f)
		if alias, ok := opts["alias"]; ok {
			fs.byName[alias] = f
		}
	}
	return fs
}

// inlineAuto is msgpack's shouldInline: an embedded struct (or pointer to
// one) encoded as a struct is inlined unless one of its fields would
// shadow one already in fs.
func inlineAuto(fs *mpFields, t reflect.Type, f *mpField, depth int) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || hasMethods(t, encoderIfaces) || hasMethods(t, decoderIfaces) {
		return false
	}
	inner := msgpackFields(t, depth+1).list
	for _, g := range inner {
		if _, ok := fs.byName[g.name]; ok {
			return false
		}
	}
	for _, g := range inner {
		fs.add(inlined(f, g))
	}
	return true
}

// inlined returns inner field g of embedded field f, as a field of f's
// struct.
func inlined(f, g *mpField) *mpField {
	c := *g
	c.index = append(append([]int(nil), f.index...), g.index...)
	return &c
}

// parseTag splits a msgpack struct tag into its name and options (an
// option's value after a colon, as alias:other), as tagparser.Parse does
// for the tags msgpack understands.
func parseTag(tag string) (name string, opts map[string]string) {
	for i, part := range strings.Split(tag, ",") {
		key, value, hasValue := strings.Cut(strings.TrimSpace(part), ":")
		if i == 0 && !hasValue {
			name = key
			continue
		}
		if opts == nil {
			opts = map[string]string{}
		}
		opts[strings.TrimSpace(key)] = strings.TrimSpace(value)
	}
	return name, opts
}
