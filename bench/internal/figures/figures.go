// Package figures computes what the bench programs report over their
// rounds and samples.
package figures

import "slices"

// Median returns the median of xs, the mean of the middle two for an even
// count, or 0 for none. xs is left as it was.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
