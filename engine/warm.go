package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Compilations counts the graphs the engine has compiled so far: one per graph and input shape,
// for its whole life (compiled graphs are kept).
func (e *Engine) Compilations() int64 { return e.compiles.Load() }

// Warm compiles what a Transfer on an h×w content image runs (its content target and its block
// of Adam steps, see blockSteps), so that such a Transfer compiles nothing. A server warms every
// work shape it uses at start-up, since XLA takes seconds to compile a new shape.
func (e *Engine) Warm(h, w int) error {
	im := NewImage(h, w)
	ct, st, err := e.targetsOf(im)
	if err != nil {
		return err
	}
	xt := imageTensor(im)
	var (
		graph = e.block
		in    slotted[any]
	)
	losses := newLossArgs(xt, featureTensor(ct), st.tensors(), Weights{})
	zeros := tensors.FromShape(xt.Shape())
	if size := e.blockSteps(); size > 1 {
		in = &blockInputs[any]{lossInputs: losses, m: zeros, v: zeros, plan: planTensor(nil, size), count: int32(0)}
	} else {
		graph = e.step
		in = &adamInputs[any]{lossInputs: losses, m: zeros, v: zeros, lo: float32(0), hi: float32(0), stepSize: float32(0), invSqrtBC2: float32(0)}
	}
	if err := tryCatch(func() { err = graph.PreCompile(args(in)...) }); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("engine: compiling the Adam step at %dx%d: %w", w, h, err)
	}
	return nil
}
