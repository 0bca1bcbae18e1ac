package style

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/internal/testutil/testengine"
)

// TestGPUBatchRunsConcurrentRequestsTogether: with GPUBatch, requests of one work shape that
// arrive while another runs are stylized together, each with its own style, compiling nothing
// after warm-up, and every result matches the unbatched one (up to one level of 8-bit rounding).
func TestGPUBatchRunsConcurrentRequestsTogether(t *testing.T) {
	e := testengine.Open(t)
	a, err := e.StyleTargets(engine.NewImage(64, 64))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.StyleTargets(engine.NewImage(48, 80))
	if err != nil {
		t.Fatal(err)
	}
	lib := fakeLibrary{
		"one": {Name: "one", Version: "v1", Targets: a, Weights: engine.Presets["starry_night"]},
		"two": {Name: "two", Version: "v1", Targets: b, Weights: engine.Presets["the_scream"]},
	}
	newFilter := func(batch int, onBatch func(int)) *Filter {
		cfg := NewDefaultConfig()
		cfg.MaxWorkPx, cfg.GPUBatch, cfg.OnBatch = 64, batch, onBatch
		f, err := New(lib, e, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	var mu sync.Mutex
	var sizes []int
	batched := newFilter(4, func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() })
	single := newFilter(1, nil)

	requests := []struct {
		style string
		w, h  int
	}{{"one", 100, 100}, {"two", 90, 95}, {"one", 80, 80}, {"two", 70, 72}}
	run := func(f *Filter, i int) *imaging.RGB {
		r := requests[i]
		q, _ := url.ParseQuery("style=" + r.style + "&iters=3")
		o, err := f.Parse(context.Background(), q)
		if err != nil {
			t.Error(err)
			return nil
		}
		pix := make([]uint8, 3*r.w*r.h)
		for k := range pix {
			pix[k] = uint8(k*7 + i*50)
		}
		img, err := imaging.FromRGB(&imaging.RGB{Width: r.w, Height: r.h, Pix: pix})
		if err != nil {
			t.Error(err)
			return nil
		}
		out, err := o.Apply(context.Background(), img, nil)
		if err != nil {
			t.Error(err)
			return nil
		}
		rgb, _ := out.RGB()
		return rgb
	}
	batched.StartWarmup()
	for len(batched.Warming()) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	before := e.Compilations()
	got := make([]*imaging.RGB, len(requests))
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() { got[i] = run(batched, i) })
	}
	wg.Wait()
	if n := e.Compilations() - before; n != 0 {
		t.Errorf("batched requests after warm-up compiled %d programs, want none", n)
	}
	largest, total := 0, 0
	for _, n := range sizes {
		largest, total = max(largest, n), total+n
	}
	if total != len(requests) || largest < 2 {
		t.Errorf("batch sizes %v: want the %d requests run, some of them together", sizes, len(requests))
	}
	for i := range requests {
		want := run(single, i)
		if got[i] == nil || want == nil {
			continue
		}
		for k := range want.Pix {
			if d := int(got[i].Pix[k]) - int(want.Pix[k]); d < -1 || d > 1 {
				t.Fatalf("request %d: batched pixel value %d, alone %d", i, got[i].Pix[k], want.Pix[k])
			}
		}
	}
}
