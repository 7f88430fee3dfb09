// Package defaults fills in a configuration's zero fields: the ladder of
// "if zero, set the default" that every Config of peersession, cluster
// and replicate has, one line a field.
package defaults

// Set sets *field to def when it holds its zero value.
func Set[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
