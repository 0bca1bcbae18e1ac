package engine

import (
	"context"
	"testing"
)

// TestWarmShapesCompileNothingLater: after Warm at a size, a Transfer there compiles nothing, and
// a Transfer at a size never warmed compiles its programs (so the count tells them apart).
func TestWarmShapesCompileNothingLater(t *testing.T) {
	e, gc := newTestEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	transfer := func(h, w int) int64 {
		t.Helper()
		before := e.Compilations()
		if _, _, err := e.Transfer(context.Background(), NewImage(h, w), st, Presets["starry_night"], OptionsFor(Reference, 2), nil); err != nil {
			t.Fatal(err)
		}
		return e.Compilations() - before
	}
	before := e.Compilations()
	if err := e.Warm(40, 56); err != nil {
		t.Fatal(err)
	}
	if n := e.Compilations() - before; n != 2 {
		t.Errorf("Warm compiled %d programs, want 2 (content target and Adam step)", n)
	}
	if n := transfer(40, 56); n != 0 {
		t.Errorf("a Transfer at a warm size compiled %d programs, want none", n)
	}
	if n := transfer(56, 40); n != 2 {
		t.Errorf("a Transfer at a cold size compiled %d programs, want 2", n)
	}
	if n := transfer(56, 40); n != 0 {
		t.Errorf("a second Transfer at the same size compiled %d programs, want none", n)
	}
}
