package engine

import (
	"math"
	"slices"
	"testing"
)

func TestBucketFor(t *testing.T) {
	for _, tc := range []struct {
		w, h, work, step int
		want             Bucket
	}{
		{1024, 768, 256, 32, Bucket{256, 192}},
		{768, 1024, 256, 32, Bucket{192, 256}},
		{100, 100, 256, 32, Bucket{256, 256}},   // small images are scaled up to the work size
		{1920, 1080, 512, 32, Bucket{512, 288}}, // 16:9 is exact
		{1000, 700, 512, 32, Bucket{512, 352}},  // 358.4 rounds to 352
		{1000, 970, 100, 32, Bucket{100, 96}},   // 97 is nearer 96 than the square's 100
		{1000, 980, 100, 32, Bucket{100, 100}},  // 98: a tie goes to the larger side
		{64, 40, 64, 32, Bucket{64, 32}},        // 40 is nearer 32 than 64
	} {
		if got := BucketFor(tc.w, tc.h, tc.work, tc.step); got != tc.want {
			t.Errorf("BucketFor(%d, %d, %d, %d) = %v, want %v", tc.w, tc.h, tc.work, tc.step, got, tc.want)
		}
	}
}

// Every image lands in a listed bucket, with its longer side at the work size and its shorter
// side within half a step of where the aspect ratio puts it (or at one step, if shorter).
func TestBucketsCoverEveryImage(t *testing.T) {
	for _, c := range []struct{ work, step, n int }{{256, 32, 15}, {512, 32, 31}, {512, 64, 15}, {64, 32, 3}} {
		all := Buckets(c.work, c.step)
		if len(all) != c.n {
			t.Errorf("Buckets(%d, %d) has %d shapes, want %d: %v", c.work, c.step, len(all), c.n, all)
		}
		for w := 30; w < 2000; w += 37 {
			for h := 30; h < 2000; h += 41 {
				exact := float64(min(w, h)) * float64(c.work) / float64(max(w, h))
				if exact < MinSide {
					continue // refused before bucketing (too thin at the work size)
				}
				b := BucketFor(w, h, c.work, c.step)
				if !slices.Contains(all, b) {
					t.Fatalf("BucketFor(%d, %d) = %v, not in Buckets(%d, %d)", w, h, b, c.work, c.step)
				}
				// Below one step, the short side is raised to one step.
				allowed := max(float64(c.step)/2, float64(c.step)-exact)
				if max(b.W, b.H) != c.work || math.Abs(float64(min(b.W, b.H))-exact) > allowed {
					t.Fatalf("BucketFor(%d, %d) = %v: short side %.1f off by more than half a step", w, h, b, exact)
				}
				if b.W != b.H && (w >= h) != (b.W > b.H) {
					t.Fatalf("BucketFor(%d, %d) = %v turned the image", w, h, b)
				}
			}
		}
	}
	if got := Buckets(256, 32)[:3]; !slices.Equal(got, []Bucket{{256, 192}, {192, 256}, {256, 160}}) {
		t.Errorf("Buckets starts with %v, want the common photo shapes first", got)
	}
}
