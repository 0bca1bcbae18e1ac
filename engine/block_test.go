package engine

import (
	"context"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/weights"
)

func TestPlanStepsFollowsTheReferenceLoop(t *testing.T) {
	plan := planSteps(stage{Iters: 6, DecayAt: 4, ClampUntil: 3, LR: 3.0, DecayLR: 0.1, Beta1: adamBeta1, Beta2: adamBeta2})
	for i, p := range plan {
		clamped := p.lo == -ClampRange && p.hi == ClampRange
		if clamped != (i < 3) {
			t.Errorf("step %d clamped = %t, want %t", i, clamped, i < 3)
		}
		if (p.keep == 0) != (i == 4) {
			t.Errorf("step %d keep = %v: the moments restart at the decay step only", i, p.keep)
		}
	}
	if got, want := plan[0].stepSize, float32(3.0/(1-0.9)); got != want {
		t.Errorf("first step size %v, want %v", got, want)
	}
	if got, want := plan[4].stepSize, float32(0.1/(1-0.9)); got != want {
		t.Errorf("step size after the decay %v, want %v (Adam's step count restarts)", got, want)
	}
}

// TestBlocksMatchSingleSteps runs the same plan (clamping, then a decay restart) one Adam step
// per call and in blocks of four on the device loop; image and losses must agree. The pure-Go
// backend runs the loop with its operations in sequence, as its parallel mode can deadlock in a
// While loop (which is why production uses blocks only on XLA).
func TestBlocksMatchSingleSteps(t *testing.T) {
	e, gc := sequentialEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := e.ContentTarget(gc.content)
	if err != nil {
		t.Fatal(err)
	}
	w := Presets["the_scream"]
	plan := planSteps(stage{Iters: 6, DecayAt: 4, ClampUntil: 3, LR: 3.0, DecayLR: 0.1, Beta1: adamBeta1, Beta2: adamBeta2})
	xt := imageTensor(gc.content)

	single := adamInputs[any]{lossInputs: newLossArgs(xt, featureTensor(ct), st.tensors(), w)}
	single.m, single.v = tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
	var want []Losses
	for _, p := range plan {
		if p.keep == 0 {
			single.m, single.v = tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
		}
		single.lo, single.hi, single.stepSize, single.invSqrtBC2, single.beta1, single.beta2 = p.lo, p.hi, p.stepSize, p.invSqrtBC2, p.beta1, p.beta2
		outs, err := e.step.Exec(args(&single)...)
		if err != nil {
			t.Fatal(err)
		}
		single.x, single.m, single.v = outs[0], outs[1], outs[2]
		want = append(want, lossesOf(outs[3], outs[4], outs[5])[0])
	}

	block := blockInputs[any]{lossInputs: newLossArgs(imageTensor(gc.content), featureTensor(ct), st.tensors(), w)}
	block.m, block.v = tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
	steps := 0
	got, err := e.runPlan(context.Background(), &block, plan, 4, func(k int, _ []Losses) { steps = k })
	if n := e.Compilations(); n != 4 {
		t.Errorf("%d graphs compiled, want 4 (targets at the style's and the content's size, step, block)", n)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || steps != len(plan) {
		t.Fatalf("%d losses, progress to %d; want %d", len(got), steps, len(plan))
	}
	for i := range want {
		assertClose(t, "total loss", got[i][0].Total, want[i].Total, 1e-4)
	}
	a := tensors.MustCopyFlatData[float32](single.x.(*tensors.Tensor))
	b := tensors.MustCopyFlatData[float32](block.x.(*tensors.Tensor))
	if worst := largestDifference(a, b); worst > 1e-4 {
		t.Errorf("blocks and single steps differ by up to %g in x", worst)
	}
}

// sequentialEngine is an engine of its own on the pure-Go backend with operations run in
// sequence, the mode in which its While loop is safe.
func sequentialEngine(t *testing.T) *Engine {
	t.Helper()
	path, err := weights.Resolve(testutil.Weights(t))
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := Open(path, "go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return e
}
