package engine

import (
	"context"
	"testing"
)

// The fast schedule spends its budget as promised: a half-size step counts a quarter of a
// full-size one, every budget of at least one ends with full-size steps (so the picture is at
// full resolution), and images too small for a useful half size run at full size only.
func TestFastStagesSpendTheBudget(t *testing.T) {
	for _, tc := range []struct{ iters, h, w int }{{1, 192, 256}, {2, 192, 256}, {5, 192, 288}, {50, 192, 256}, {200, 512, 384}, {50, 96, 128}} {
		stages := fastStages(tc.iters, tc.h, tc.w)
		var cost float64
		for _, s := range stages {
			cost += float64(s.Iters) / float64(s.Div*s.Div)
			if s.LR <= 0 || s.DecayAt < 0 || s.DecayAt >= s.Iters || s.DecayLR <= 0 || s.DecayLR >= s.LR {
				t.Errorf("fastStages(%d, %d, %d): stage %+v does not decay within its run", tc.iters, tc.h, tc.w, s)
			}
		}
		if cost > float64(tc.iters) || cost <= float64(tc.iters)-1 {
			t.Errorf("fastStages(%d, %d, %d) = %+v costs %.2f full-size steps, want %d", tc.iters, tc.h, tc.w, stages, cost, tc.iters)
		}
		if last := stages[len(stages)-1]; last.Div != 1 || last.Iters < 1 {
			t.Errorf("fastStages(%d, %d, %d) = %+v: does not end at full size", tc.iters, tc.h, tc.w, stages)
		}
		coarse := len(stages) > 1
		if want := min(tc.h, tc.w)/2 >= fastMinCoarse && tc.iters >= 2; coarse != want {
			t.Errorf("fastStages(%d, %d, %d) = %+v: half-size stage %t, want %t", tc.iters, tc.h, tc.w, stages, coarse, want)
		}
	}
	if s := fastStages(0, 192, 256); len(s) != 0 {
		t.Errorf("fastStages(0, ...) = %+v, want no steps", s)
	}
}

// The reference schedule is one full-size stage with exactly the options' settings.
func TestReferenceIsOneStage(t *testing.T) {
	o := OptionsFor(Reference, 200)
	got := o.stages(192, 256)
	want := stage{Div: 1, Iters: 200, LR: 3, DecayAt: 180, DecayLR: 0.1, ClampUntil: 190}
	if len(got) != 1 || got[0] != want {
		t.Errorf("reference stages = %+v, want [%+v]", got, want)
	}
}

func TestParseSchedule(t *testing.T) {
	for _, s := range Schedules {
		if got, err := ParseSchedule(string(s)); err != nil || got != s {
			t.Errorf("ParseSchedule(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := ParseSchedule("slow"); err == nil {
		t.Error(`ParseSchedule("slow") succeeded`)
	}
	if ScheduleNames()[0] != string(DefaultSchedule) {
		t.Errorf("ScheduleNames() = %v, want the default %s first", ScheduleNames(), DefaultSchedule)
	}
}

// A fast Transfer runs every stage's steps, reports them against one total, returns a full-size
// image, and lowers the loss at full size; after Warm at that size it compiles nothing.
func TestFastTransfer(t *testing.T) {
	e, gc := newTestEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	content := gc.content.Resized(2*fastMinCoarse, 2*fastMinCoarse*4/3) // large enough for a half-size stage
	const budget = 8
	stages := fastStages(budget, content.H, content.W)
	if len(stages) != 2 {
		t.Fatalf("fastStages = %+v, want a half-size and a full-size stage", stages)
	}
	if err := e.Warm(content.H, content.W); err != nil {
		t.Fatal(err)
	}
	before := e.Compilations()
	calls, total := 0, stages[0].Iters+stages[1].Iters
	w := Presets["starry_night"]
	out, hist, err := e.Transfer(context.Background(), content, st, w, OptionsFor(Fast, budget), func(k, n int, _ Losses) {
		calls++
		if k != calls || n != total {
			t.Errorf("progress(%d, %d), want (%d, %d)", k, n, calls, total)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.Compilations() - before; n != 0 {
		t.Errorf("a fast Transfer at a warm size compiled %d programs", n)
	}
	if len(hist) != total || calls != total {
		t.Errorf("%d losses and %d progress calls, want %d", len(hist), calls, total)
	}
	if out.H != content.H || out.W != content.W {
		t.Fatalf("output %dx%d, want %dx%d", out.W, out.H, content.W, content.H)
	}
	ct, err := e.ContentTarget(content)
	if err != nil {
		t.Fatal(err)
	}
	l0, _, err := e.LossAndGradient(content, ct, st, w)
	if err != nil {
		t.Fatal(err)
	}
	l1, _, err := e.LossAndGradient(out, ct, st, w)
	if err != nil {
		t.Fatal(err)
	}
	if !(l1.Total < l0.Total/2) {
		t.Errorf("loss at full size %.4g after the fast schedule, %.4g at the start: want it at least halved", l1.Total, l0.Total)
	}
}
