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
// the style targets, as opt's schedule asks. It returns the final image and the losses before
// each step.
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
	if err := checkBatch(contents, styles, ws); err != nil {
		return nil, nil, err
	}
	if len(contents) > 1 && !e.batchesInOneGraph() {
		return e.transferOneByOne(ctx, contents, styles, ws, opt, progress)
	}
	n := len(contents)
	xs := make([]*Image, n)
	for i, c := range contents {
		xs[i] = startImage(c, opt)
	}
	in, err := e.batchInputs(contents, xs, styles, ws)
	if err != nil {
		return nil, nil, err
	}
	st := opt.stage()
	hist := make([][]Losses, n)
	steps, err := e.runPlan(ctx, in, planSteps(st), e.blockSteps(), func(k int, l []Losses) {
		if progress != nil {
			progress(k, st.Iters, l[0])
		}
	})
	for _, l := range steps {
		for i := range hist {
			hist[i] = append(hist[i], l[i])
		}
	}
	if err != nil {
		return nil, hist, err
	}
	xs = splitImages(in.x.(*tensors.Tensor), n)
	return xs, hist, nil
}
