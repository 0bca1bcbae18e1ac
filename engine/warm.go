package engine

import (
	"fmt"
)

// Compilations counts the graphs the engine has compiled so far: one per graph and input shape,
// for its whole life (compiled graphs are kept).
func (e *Engine) Compilations() int64 { return e.compiles.Load() }

// Warm compiles what a Transfer on an h×w content image runs under any schedule (the content
// target and the block of Adam steps, see blockSteps), so that such
// a Transfer compiles nothing. A server warms every work shape it uses at start-up, since XLA
// takes seconds to compile a new shape.
func (e *Engine) Warm(h, w int) error { return e.WarmBatch(h, w, 1) }

// WarmBatch is Warm for a TransferBatch of n images of h×w (where batches run as one graph).
func (e *Engine) WarmBatch(h, w, n int) error {
	if n > 1 && !e.batchesInOneGraph() {
		n = 1
	}
	return e.warmSize(h, w, n)
}

// warmSize compiles the content target and the Adam steps for n images of h×w.
func (e *Engine) warmSize(h, w, n int) error {
	im := NewImage(h, w)
	_, st, err := e.targetsOf(im)
	if err != nil {
		return err
	}
	contents, styles, ws := make([]*Image, n), make([]StyleTargets, n), make([]Weights, n)
	for i := range n {
		contents[i], styles[i] = im, st
	}
	in, err := e.batchInputs(contents, contents, styles, ws)
	if err != nil {
		return err
	}
	graph, inputs := e.block, slotted[any](in)
	if size := e.blockSteps(); size > 1 {
		in.plan, in.count = planTensor(nil, size), int32(0)
	} else {
		graph = e.step
		inputs = &adamInputs[any]{lossInputs: in.lossInputs, m: in.m, v: in.v,
			lo: float32(0), hi: float32(0), stepSize: float32(0), invSqrtBC2: float32(0), beta1: float32(0), beta2: float32(0)}
	}
	if perr := tryCatch(func() { err = e.precompile(graph, args(inputs)...) }); perr != nil {
		err = perr
	}
	if err != nil && graph == e.block && e.giveUpBlocks(err) {
		return e.warmSize(h, w, n)
	}
	if err != nil {
		return fmt.Errorf("engine: compiling the Adam steps at %dx%d for %d images: %w", w, h, n, err)
	}
	return nil
}
