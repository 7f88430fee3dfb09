package wire

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzCheckValue: whatever CheckValue accepts decodes (into any) without
// a panic, and a value that declares more than it carries is refused
// before msgpack sees it.
func FuzzCheckValue(f *testing.F) {
	for _, v := range []any{1, "x", []string{"a", "b"}, map[string]any{"k": []int{1, 2}}, 3.5, nil, []byte{1, 2}} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})       // array32 of 4G, no elements
	f.Add([]byte{0xc6, 0xff, 0xff, 0xff, 0xff, 0x00}) // bin32 of 4G
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 1})             // fixext4 (a timestamp)
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckValue(data, Limits{}) != nil {
			return
		}
		var v any
		_ = msgpack.Unmarshal(data, &v)
	})
}
