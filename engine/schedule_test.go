package engine

import (
	"context"
	"testing"
)

// The fast schedule runs iters steps, decays within its run, clamps throughout, and plans its
// steps with its own moment rates (the bias corrections use them too).
func TestFastStage(t *testing.T) {
	for _, iters := range []int{1, 5, 60, 200} {
		s := fastStage(iters)
		if s.Iters != iters || s.ClampUntil != iters || s.DecayAt < 0 || s.DecayAt >= max(iters, 1) ||
			!(s.DecayLR > 0 && s.DecayLR < s.LR) || s.LR >= 3 || s.Beta1 != fastBeta1 || s.Beta2 != fastBeta2 {
			t.Errorf("fastStage(%d) = %+v", iters, s)
		}
		plan := planSteps(s)
		if len(plan) != iters {
			t.Fatalf("planSteps(fastStage(%d)) has %d steps", iters, len(plan))
		}
		lr := s.LR
		if s.DecayAt == 0 {
			lr = s.DecayLR
		}
		if want := float32(lr / (1 - fastBeta1)); plan[0].stepSize != want || plan[0].beta1 != fastBeta1 || plan[0].beta2 != fastBeta2 {
			t.Errorf("first fast step %+v, want step size %v and betas %v, %v", plan[0], want, fastBeta1, fastBeta2)
		}
	}
}

// The reference schedule is one stage with exactly the options' settings and torch's Adam.
func TestReferenceStage(t *testing.T) {
	got := OptionsFor(Reference, 200).stage()
	want := stage{Iters: 200, LR: 3, DecayAt: 180, DecayLR: 0.1, ClampUntil: 190, Beta1: 0.9, Beta2: 0.999}
	if got != want {
		t.Errorf("reference stage = %+v, want %+v", got, want)
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

// A fast Transfer runs its steps, reports them against one total, returns a full-size image, and
// lowers the loss; after Warm at that size it compiles nothing.
func TestFastTransfer(t *testing.T) {
	e, gc := newTestEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	content := gc.content
	const budget = 8
	if err := e.Warm(content.H, content.W); err != nil {
		t.Fatal(err)
	}
	before := e.Compilations()
	calls, total := 0, budget
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
