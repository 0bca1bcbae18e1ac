package style

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/engine"
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
		if got := bucketFor(tc.w, tc.h, tc.work, tc.step); got != tc.want {
			t.Errorf("bucketFor(%d, %d, %d, %d) = %v, want %v", tc.w, tc.h, tc.work, tc.step, got, tc.want)
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
				if exact < engine.MinSide {
					continue // refused before bucketing (too thin at the work size)
				}
				b := bucketFor(w, h, c.work, c.step)
				if !slices.Contains(all, b) {
					t.Fatalf("bucketFor(%d, %d) = %v, not in Buckets(%d, %d)", w, h, b, c.work, c.step)
				}
				// Below one step, the short side is raised to one step.
				allowed := max(float64(c.step)/2, float64(c.step)-exact)
				if max(b.W, b.H) != c.work || math.Abs(float64(min(b.W, b.H))-exact) > allowed {
					t.Fatalf("bucketFor(%d, %d) = %v: short side %.1f off by more than half a step", w, h, b, exact)
				}
				if b.W != b.H && (w >= h) != (b.W > b.H) {
					t.Fatalf("bucketFor(%d, %d) = %v turned the image", w, h, b)
				}
			}
		}
	}
	if got := Buckets(256, 32)[:3]; !slices.Equal(got, []Bucket{{256, 192}, {192, 256}, {256, 160}}) {
		t.Errorf("Buckets starts with %v, want the common photo shapes first", got)
	}
}

// A request waiting for a bucket that has not started moves it to the front; the warmer compiles
// each bucket once and reports errors to the requests that wait for that bucket.
func TestWarmerServesWaitersFirst(t *testing.T) {
	a, b, c := Bucket{64, 48}, Bucket{48, 64}, Bucket{64, 64}
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []Bucket
	w := newWarmer([]Bucket{a, b, c}, func(x Bucket) error {
		mu.Lock()
		order = append(order, x)
		mu.Unlock()
		if x == a {
			<-gate // hold the first bucket until the waiter has asked for c
		}
		if x == b {
			return errors.New("boom")
		}
		return nil
	}, nil)
	w.start(1)
	for started := false; !started; time.Sleep(time.Millisecond) {
		mu.Lock()
		started = len(order) == 1
		mu.Unlock()
	}
	waited := make(chan error)
	go func() { waited <- w.wait(context.Background(), c) }()
	for deadline := time.Now().Add(5 * time.Second); ; {
		w.mu.Lock()
		front := len(w.queue) > 0 && w.queue[0] == c
		w.mu.Unlock()
		if front {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter's bucket never moved to the front")
		}
		time.Sleep(time.Millisecond)
	}
	if got := w.warming(); len(got) != 3 {
		t.Errorf("warming() = %v while the first bucket compiles, want all three", got)
	}
	close(gate)
	if err := <-waited; err != nil {
		t.Errorf("wait(c) = %v", err)
	}
	if err := w.wait(context.Background(), b); err == nil || err.Error() != "boom" {
		t.Errorf("wait(b) = %v, want the compile error", err)
	}
	if !slices.Equal(order, []Bucket{a, c, b}) {
		t.Errorf("compiled %v, want a, then the awaited c, then b", order)
	}
	if got := w.warming(); len(got) != 0 {
		t.Errorf("warming() = %v after all finished", got)
	}
	if err := w.wait(context.Background(), Bucket{1, 1}); err != nil {
		t.Errorf("wait on an unknown bucket = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w2 := newWarmer([]Bucket{a}, func(Bucket) error { return nil }, nil)
	if err := w2.wait(ctx, a); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context = %v", err)
	}
}
