package engine

import (
	"fmt"
	"slices"
)

// Bucket is a work shape: the size, in pixels, an optimisation runs at. A server stylizes every
// image at one of a fixed set of buckets, so that it compiles each shape once (see Warm), before
// the first request, and never on a request's path.
type Bucket struct{ W, H int }

func (b Bucket) String() string { return fmt.Sprintf("%dx%d", b.W, b.H) }

// shortSides are the shorter sides a bucket may have at work size work: the multiples of step
// below work, and work itself (the square).
func shortSides(work, step int) []int {
	var s []int
	for v := step; v < work; v += step {
		s = append(s, v)
	}
	return append(s, work)
}

// BucketFor is the work shape of a w×h image: its longer side becomes work and its shorter side
// the allowed length nearest to its scaled length (the larger on a tie). The aspect ratio moves by
// at most half a step on the shorter side (a side under one step is raised to one step); the
// final resize to the output box restores it.
func BucketFor(w, h, work, step int) Bucket {
	long, short := max(w, h), min(w, h)
	exact := float64(short) * float64(work) / float64(long)
	best := 0
	for _, s := range shortSides(work, step) {
		if best == 0 || abs(float64(s)-exact) <= abs(float64(best)-exact) {
			best = s
		}
	}
	if w >= h {
		return Bucket{W: work, H: best}
	}
	return Bucket{W: best, H: work}
}

// Buckets lists every work shape at work size work and step: landscape, square and portrait,
// the shapes most photos take first (4:3, 3:2 and 16:9 either way, and the square), so that a
// server warming them in order is ready for most requests early.
func Buckets(work, step int) []Bucket {
	var all []Bucket
	for _, r := range [][2]int{{4, 3}, {3, 4}, {3, 2}, {2, 3}, {16, 9}, {9, 16}, {1, 1}} {
		if b := BucketFor(r[0], r[1], work, step); !slices.Contains(all, b) {
			all = append(all, b)
		}
	}
	for _, s := range slices.Backward(shortSides(work, step)) {
		for _, b := range []Bucket{{W: work, H: s}, {W: s, H: work}} {
			if !slices.Contains(all, b) {
				all = append(all, b)
			}
		}
	}
	return all
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
