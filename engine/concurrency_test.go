package engine

import (
	"context"
	"sync"
	"testing"
)

// Transfers and a warm-up at the same time, as a server runs them (a request beside the
// start-up compilation, two workers), all finish, and each transfer gives what it gives alone.
func TestConcurrentTransfers(t *testing.T) {
	e, gc := newTestEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	w, opt := Presets["starry_night"], OptionsFor(Fast, 4)
	alone, _, err := e.Transfer(context.Background(), gc.content, st, w, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs, errs := make([]*Image, 3), make([]error, 4)
	for i := range outs {
		wg.Go(func() { outs[i], _, errs[i] = e.Transfer(context.Background(), gc.content, st, w, opt, nil) })
	}
	wg.Go(func() { errs[3] = e.Warm(gc.content.H+8, gc.content.W+8) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	for i, out := range outs {
		for j, v := range out.Data {
			if v != alone.Data[j] {
				t.Fatalf("concurrent transfer %d differs from the transfer alone at %d: %v != %v", i, j, v, alone.Data[j])
			}
		}
	}
}
