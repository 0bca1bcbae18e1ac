package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Compilations counts the graphs the engine has compiled so far: one per graph and input shape,
// for its whole life (compiled graphs are kept).
func (e *Engine) Compilations() int64 { return e.compiles.Load() }

// Warm compiles what a Transfer on an h×w content image runs (its content target and the block
// of Adam steps), so that such a Transfer compiles nothing. A server warms every work shape it uses at
// start-up, since XLA takes seconds to compile a new shape.
func (e *Engine) Warm(h, w int) error {
	im := NewImage(h, w)
	ct, st, err := e.targetsOf(im)
	if err != nil {
		return err
	}
	xt := imageTensor(im)
	in := blockInputs[any]{lossInputs: newLossArgs(xt, featureTensor(ct), st.tensors(), Weights{})}
	in.m, in.v = tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
	in.plan, in.count = planTensor(nil, e.blockSteps()), int32(0)
	if err := tryCatch(func() { err = e.block.PreCompile(args(&in)...) }); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("engine: compiling the Adam step at %dx%d: %w", w, h, err)
	}
	return nil
}
