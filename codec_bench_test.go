package peersession

import "testing"

// benchUser is a typical struct session value: a few exported fields, one
// of them an int that Get checks against its destination.
type benchUser struct {
	ID    int64    `msgpack:"id"`
	Name  string   `msgpack:"name"`
	Roles []string `msgpack:"roles"`
	Admin bool     `msgpack:"admin"`
}

// BenchmarkCodec is Set and Get of the value kinds beyond BenchmarkGet's
// int: a struct (checked once per type at Set; its integers checked
// against the destination at Get) and a map[string]any (its values
// checked one by one at Set, normalized at Get).
func BenchmarkCodec(b *testing.B) {
	st := newTestStore(b, Config{})
	s := st.NewSession(b.Context())
	u := benchUser{ID: 12345, Name: "ada", Roles: []string{"a", "b"}, Admin: true}
	m := map[string]any{"id": 12345, "name": "ada", "n": 2.5, "ok": true}
	for _, bc := range []struct {
		name string
		v    any
		dst  func() any
	}{
		{"struct", u, func() any { return new(benchUser) }},
		{"map", m, func() any { return new(map[string]any) }},
	} {
		b.Run("set/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Set("k", bc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("get/"+bc.name, func(b *testing.B) {
			if err := s.Set("k", bc.v); err != nil {
				b.Fatal(err)
			}
			dst := bc.dst()
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := s.Get("k", dst); !ok || err != nil {
					b.Fatal("missing", err)
				}
			}
		})
	}
}
