package engine

import (
	"context"
	"fmt"

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
	out, hist, err := e.TransferBatch(ctx, []*Image{content}, []StyleTargets{style}, []Weights{w}, opt, progress)
	var h []Losses
	if len(hist) > 0 {
		h = hist[0]
	}
	if err != nil {
		return nil, h, err
	}
	return out[0], h, nil
}

// TransferBatch is Transfer for several content images of one size, each with its own style
// targets and weights, under one set of options: one pass of the network a step serves the whole
// batch, which keeps a GPU busy where a single small image cannot. Each image's result and losses
// equal what Transfer gives it alone, up to float rounding. progress hears the first image's
// losses.
func (e *Engine) TransferBatch(ctx context.Context, contents []*Image, styles []StyleTargets, ws []Weights, opt Options, progress Progress) ([]*Image, [][]Losses, error) {
	if err := opt.Validate(); err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	if len(contents) > 1 && !e.batchesInOneGraph() {
		return e.transferOneByOne(ctx, contents, styles, ws, opt, progress)
	}
	in, err := e.batchInputs(contents, styles, ws, opt)
	if err != nil {
		return nil, nil, err
	}
	plan := planSteps(opt.Iters, opt.DecayAt, opt.ClampUntil, opt.LR, opt.DecayLR)
	steps, err := e.runPlan(ctx, in, plan, e.blockSteps(), func(k int, l []Losses) {
		if progress != nil {
			progress(k, opt.Iters, l[0])
		}
	})
	hist := make([][]Losses, len(contents))
	for _, l := range steps {
		for i := range hist {
			hist[i] = append(hist[i], l[i])
		}
	}
	if err != nil {
		return nil, hist, err
	}
	return splitImages(in.x.(*tensors.Tensor), len(contents)), hist, nil
}
