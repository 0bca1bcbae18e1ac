package engine

import (
	"context"
	"fmt"
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
	in := blockInputs[any]{lossInputs: newLossArgs(xt, featureTensor(ct), style.tensors(), w)}
	// Adam's moments start at zero (FromShape allocates zeroed tensors).
	in.m, in.v = tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
	plan := planSteps(opt.Iters, opt.DecayAt, opt.ClampUntil, opt.LR, opt.DecayLR)
	history, err := e.runPlan(ctx, &in, plan, e.blockSteps(), func(k int, l Losses) {
		if progress != nil {
			progress(k, opt.Iters, l)
		}
	})
	if err != nil {
		return nil, history, err
	}
	out := &Image{H: x.H, W: x.W, Data: tensors.MustCopyFlatData[float32](in.x.(*tensors.Tensor))}
	return out, history, nil
}
