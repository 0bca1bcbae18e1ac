package engine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// torch.optim.Adam's defaults, as the reference uses them.
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// ClampRange is the interval the reference keeps the normalised image in while it clamps.
const ClampRange = 1.5

// Transfer is the reference's transfer(): Adam on the pixels of an image that starts as the
// content image (or noise), minimising content + style + TV loss against content's features and
// the style targets. It returns the final image and the losses before each step.
func (e *Engine) Transfer(ctx context.Context, content *Image, style StyleTargets, w Weights, opt Options, progress Progress) (*Image, []Losses, error) {
	if err := opt.Validate(); err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	ct, err := e.ContentTarget(content)
	if err != nil {
		return nil, nil, err
	}
	x := content.Clone()
	if opt.Init == "noise" {
		rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
		for i := range x.Data {
			x.Data[i] = rng.Float32()
		}
	}
	xt := imageTensor(x)
	shape := xt.Shape()
	in := adamInputs[any]{lossInputs: newLossArgs(xt, featureTensor(ct), style.tensors(), w)}
	// Adam's moments start at zero (FromShape allocates zeroed tensors).
	in.m, in.v = tensors.FromShape(shape), tensors.FromShape(shape)
	history := make([]Losses, 0, opt.Iters)
	lr, adamT := opt.LR, 0
	const unclamped = math.MaxFloat32
	for t := 0; t < opt.Iters; t++ {
		if err := ctx.Err(); err != nil {
			return nil, history, err
		}
		in.lo, in.hi = float32(-unclamped), float32(unclamped)
		if t < opt.ClampUntil {
			in.lo, in.hi = float32(-ClampRange), float32(ClampRange)
		}
		if t == opt.DecayAt {
			// The reference builds a fresh optimizer here: new learning rate, moments and step count.
			lr, adamT = opt.DecayLR, 0
			in.m, in.v = tensors.FromShape(shape), tensors.FromShape(shape)
		}
		adamT++
		in.stepSize = float32(lr / (1 - math.Pow(adamBeta1, float64(adamT))))
		in.invSqrtBC2 = float32(1 / math.Sqrt(1-math.Pow(adamBeta2, float64(adamT))))
		outs, err := e.step.Exec(args(&in)...)
		if err != nil {
			return nil, history, fmt.Errorf("engine: step %d: %w", t, err)
		}
		in.x, in.m, in.v = outs[0], outs[1], outs[2]
		l := lossesOf(outs[3], outs[4], outs[5])
		history = append(history, l)
		if progress != nil {
			progress(t+1, opt.Iters, l)
		}
	}
	out := &Image{H: x.H, W: x.W, Data: tensors.MustCopyFlatData[float32](in.x.(*tensors.Tensor))}
	return out, history, nil
}
