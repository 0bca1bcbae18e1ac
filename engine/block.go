package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// stepParams are one Adam step's settings, worked out on the host: the clamp range, the step size
// lr/(1-β1ᵗ), the bias correction 1/sqrt(1-β2ᵗ), keep, which is 0 where the reference builds a
// fresh optimizer (the moments restart from zero) and 1 elsewhere, and the moments' decay rates.
type stepParams struct{ lo, hi, stepSize, invSqrtBC2, keep, beta1, beta2 float32 }

const numStepParams = 7

// planSteps lists the settings of each of the stage's Adam steps, precomputed so that a block of
// steps can run on the device.
func planSteps(s stage) []stepParams {
	out := make([]stepParams, s.Iters)
	lr, adamT := s.LR, 0
	for t := range out {
		p := &out[t]
		p.lo, p.hi, p.keep = -math.MaxFloat32, math.MaxFloat32, 1
		p.beta1, p.beta2 = float32(s.Beta1), float32(s.Beta2)
		if t < s.ClampUntil {
			p.lo, p.hi = -ClampRange, ClampRange
		}
		if t == s.DecayAt {
			lr, adamT, p.keep = s.DecayLR, 0, 0
		}
		adamT++
		p.stepSize = float32(lr / (1 - math.Pow(s.Beta1, float64(adamT))))
		p.invSqrtBC2 = float32(1 / math.Sqrt(1-math.Pow(s.Beta2, float64(adamT))))
	}
	return out
}

// blockSteps is how many Adam steps one graph call runs. On XLA a step takes milliseconds, most
// of them launching work and waiting for the losses, so a block of steps saves nearly all of
// that; the pure-Go backend has nothing to save, and one step a call keeps its progress reports
// and cancellation (checked between calls) per step, and keeps off its While loop (see runSteps).
func (e *Engine) blockSteps() int {
	if e.blockSize > 0 {
		return e.blockSize
	}
	if e.noBlocks.Load() {
		return 1
	}
	if e.onXLA() {
		return xlaBlockSteps
	}
	return 1
}

const xlaBlockSteps = 25

// planTensor packs steps into a [size, numStepParams] tensor, zero past len(steps).
func planTensor(steps []stepParams, size int) *tensors.Tensor {
	flat := make([]float32, size*numStepParams)
	for i, p := range steps {
		copy(flat[i*numStepParams:], []float32{p.lo, p.hi, p.stepSize, p.invSqrtBC2, p.keep, p.beta1, p.beta2})
	}
	return tensors.FromFlatDataAndDimensions(flat, size, numStepParams)
}

// blockInputs are the inputs of a block of Adam steps: the loss inputs (x is where the block
// starts), the moments, the steps' settings ([B, numStepParams]) and how many of them to run
// (an int32 at most B).
type blockInputs[T any] struct {
	lossInputs[T]
	m, v, plan, count T
}

func (p *blockInputs[T]) slots() []*T {
	return append(p.lossInputs.slots(), &p.m, &p.v, &p.plan, &p.count)
}

// adamBlock runs count Adam steps in one graph call with a device-side loop (GoMLX's While), so
// the host neither launches each step nor waits for its losses.
// Outputs: the new x, m, v and each image's losses before each step ([B, N, 3]: content, style,
// TV; rows past count are zero).
func (e *Engine) adamBlock(p blockInputs[*Node]) []*Node {
	g := p.x.Graph()
	size := p.plan.Shape().Dimensions[0]
	p.count.AssertScalar()
	n := batchOf(p.x)
	// The loop's state is the step number, the losses so far and every input: the loop's closures
	// read nothing from the enclosing graph, which XLA's GoMLX backend (v0.27.2) does not allow.
	state := []*Node{ScalarZero(g, dtypes.Int32), Zeros(g, shapes.Make(p.x.DType(), size, n, 3))}
	for _, v := range p.slots() {
		state = append(state, *v)
	}
	params := func(g *Graph) (t, losses *Node, q blockInputs[*Node]) {
		ps := make([]*Node, len(state))
		for i, s := range state {
			ps[i] = Parameter(g, fmt.Sprintf("state%d", i), s.Shape())
		}
		bind(&q, ps[2:])
		return ps[0], ps[1], q
	}
	cond := NewClosure(g, func(g *Graph) []*Node {
		t, _, q := params(g)
		return []*Node{LessThan(t, q.count)}
	})
	body := NewClosure(g, func(g *Graph) []*Node {
		t, losses, q := params(g)
		// Row t of the plan, and the losses' row t, through a one-hot mask: the pure-Go backend
		// has no dynamic slicing, and a mask over a few dozen rows costs nothing.
		hot := ConvertDType(Equal(Iota(g, shapes.Make(dtypes.Int32, size), 0), t), q.plan.DType())
		row := ReduceSum(Mul(q.plan, Reshape(hot, size, 1)), 0)
		at := func(i int) *Node { return Reshape(Slice(row, AxisRange(i, i+1))) }
		keep := at(4)
		out := e.adamStep(adamInputs[*Node]{lossInputs: q.lossInputs, m: Mul(q.m, keep), v: Mul(q.v, keep),
			lo: at(0), hi: at(1), stepSize: at(2), invSqrtBC2: at(3), beta1: at(5), beta2: at(6)})
		l := Reshape(Stack([]*Node{out[3], out[4], out[5]}, 1), 1, n, 3)
		q.x, q.m, q.v = out[0], out[1], out[2]
		next := []*Node{AddScalar(t, 1), Add(losses, Mul(Reshape(hot, size, 1, 1), l))}
		for _, v := range q.slots() {
			next = append(next, *v)
		}
		return next
	})
	res := While(cond, body, state...)
	var q blockInputs[*Node]
	bind(&q, res[2:])
	return []*Node{q.x, q.m, q.v, res[1]}
}

// runPlan takes the planned Adam steps from in (x, m and v are replaced as it goes), size steps
// per graph call, and returns the losses before each step, one an image. progress hears of every
// step once its block has run; ctx is checked between blocks.
func (e *Engine) runPlan(ctx context.Context, in *blockInputs[any], plan []stepParams, size int, progress func(k int, l []Losses)) ([][]Losses, error) {
	history := make([][]Losses, 0, len(plan))
	for start := 0; start < len(plan); start += size {
		if err := ctx.Err(); err != nil {
			return history, err
		}
		steps := plan[start:min(start+size, len(plan))]
		losses, err := e.runSteps(in, steps, size)
		if err != nil {
			return history, fmt.Errorf("engine: steps %d-%d: %w", start, start+len(steps)-1, err)
		}
		for _, l := range losses {
			history = append(history, l)
			if progress != nil {
				progress(len(history), l)
			}
		}
	}
	return history, nil
}

// runSteps runs one graph call: the block graph, or the single-step graph when blocks are one
// step long (the pure-Go backend, whose While loop can deadlock its worker pool when the loop
// body runs its operations in parallel). It returns each step's losses, one an image.
func (e *Engine) runSteps(in *blockInputs[any], steps []stepParams, size int) ([][]Losses, error) {
	if size == 1 {
		p := steps[0]
		if p.keep == 0 {
			shape := in.x.(*tensors.Tensor).Shape()
			in.m, in.v = tensors.FromShape(shape), tensors.FromShape(shape)
		}
		a := adamInputs[any]{lossInputs: in.lossInputs, m: in.m, v: in.v, lo: p.lo, hi: p.hi,
			stepSize: p.stepSize, invSqrtBC2: p.invSqrtBC2, beta1: p.beta1, beta2: p.beta2}
		outs, err := e.run(e.step, args(&a)...)
		if err != nil {
			return nil, err
		}
		in.x, in.m, in.v = outs[0], outs[1], outs[2]
		return [][]Losses{lossesOf(outs[3], outs[4], outs[5])}, nil
	}
	in.plan, in.count = planTensor(steps, size), int32(len(steps))
	outs, err := e.run(e.block, args(in)...)
	if err != nil {
		if !e.giveUpBlocks(err) {
			return nil, err
		}
		var losses [][]Losses
		for i := range steps {
			l, err := e.runSteps(in, steps[i:i+1], 1)
			if err != nil {
				return nil, err
			}
			losses = append(losses, l...)
		}
		return losses, nil
	}
	in.x, in.m, in.v = outs[0], outs[1], outs[2]
	n := outs[3].Shape().Dimensions[1]
	flat := tensors.MustCopyFlatData[float32](outs[3])
	outs[3].FinalizeAll()
	losses := make([][]Losses, len(steps))
	for i := range losses {
		losses[i] = make([]Losses, n)
		for j := range n {
			v := flat[(i*n+j)*3:]
			l := Losses{Content: float64(v[0]), Style: float64(v[1]), TV: float64(v[2])}
			l.Total = l.Content + l.Style + l.TV
			losses[i][j] = l
		}
	}
	return losses, nil
}

// giveUpBlocks switches the engine to one step a call after the block graph failed, logging why,
// and reports whether it did (false if it had already, or blocks were forced for a test): the
// device loop has not been run on every backend, and one step a call always works.
func (e *Engine) giveUpBlocks(err error) bool {
	if e.blockSize > 0 || !e.noBlocks.CompareAndSwap(false, true) {
		return false
	}
	slog.Warn("engine: the device loop failed, running one Adam step a call from now on", "error", firstLine(err.Error()))
	return true
}
