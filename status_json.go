package peersession

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// The status JSON (StatusHandler, Expvar) has one casing, snake_case;
// durations in seconds, as numbers, their names ending in _seconds; times
// as RFC 3339 strings, and a time that never happened as null; and the
// names of the Prometheus metrics (adapters/prometheus) where a figure is
// the same, without their _total suffix. It is built from the Go values by
// these rules, so a figure added to Stats shows in the JSON as well.
// docs/status.md documents it field by field.

// MarshalJSON writes s as the status JSON.
func (s Status) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonView(reflect.ValueOf(s)))
}

// jsonNames renames the Go fields whose snake_case name would differ from
// the Prometheus metric of the same figure.
var jsonNames = map[string]string{
	"Bytes":            "session_bytes",
	"Created":          "sessions_created",
	"Destroyed":        "sessions_destroyed",
	"Expired":          "sessions_expired",
	"TransferDuration": "state_transfer",
	"Queued":           "queue_depth",
	"Failed":           "send_failures",
}

// jsonView returns v as the status JSON shows it (see the top of this
// file): structs as objects, maps by key, slices as arrays.
func jsonView(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return jsonView(v.Elem())
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			if t.IsZero() {
				return nil
			}
			return t.UTC().Format(time.RFC3339Nano)
		}
		out := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, omitEmpty := jsonFieldName(f)
			if !f.IsExported() || name == "-" {
				continue
			}
			fv := v.Field(i)
			if f.Anonymous && fv.Kind() == reflect.Struct {
				// An embedded struct's fields are the outer one's, as
				// encoding/json has them.
				for k, x := range jsonView(fv).(map[string]any) {
					out[k] = x
				}
				continue
			}
			if omitEmpty && fv.IsZero() {
				continue
			}
			if d, ok := fv.Interface().(time.Duration); ok {
				out[name+"_seconds"] = d.Seconds()
				continue
			}
			out[name] = jsonView(fv)
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[it.Key().String()] = jsonView(it.Value())
		}
		return out
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = jsonView(v.Index(i))
		}
		return out
	}
	return v.Interface()
}

// jsonFieldName is f's name in the status JSON: its json tag's, else its
// jsonNames entry, else its name in snake_case.
func jsonFieldName(f reflect.StructField) (name string, omitEmpty bool) {
	if tag, ok := f.Tag.Lookup("json"); ok {
		name, opts, _ := strings.Cut(tag, ",")
		if name != "" {
			return name, strings.Contains(opts, "omitempty")
		}
	}
	if n, ok := jsonNames[f.Name]; ok {
		return n, false
	}
	return snakeCase(f.Name), false
}

// snakeCase turns a Go name into snake_case: FetchHits is fetch_hits,
// LastAck last_ack, TCPPort tcp_port.
func snakeCase(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			prevLower := i > 0 && !unicode.IsUpper(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if i > 0 && (prevLower || (nextLower && unicode.IsUpper(r[i-1]))) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
