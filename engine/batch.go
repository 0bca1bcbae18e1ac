package engine

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// batchInputs stacks a batch's images, content targets and style targets along their first
// axis ([N*3, H, W], [N*C, h, w], [N*C, C]) and starts Adam's moments at zero.
func (e *Engine) batchInputs(contents []*Image, styles []StyleTargets, ws []Weights, opt Options) (*blockInputs[any], error) {
	n := len(contents)
	if n == 0 || len(styles) != n || len(ws) != n {
		return nil, fmt.Errorf("engine: a batch needs as many style targets and weights as images (%d, %d, %d)", n, len(styles), len(ws))
	}
	var xs, cts []float32
	var ctShape []int
	for _, c := range contents {
		if err := checkSize(c); err != nil {
			return nil, err
		}
		if c.H != contents[0].H || c.W != contents[0].W {
			return nil, fmt.Errorf("engine: a batch's images must share one size, got %dx%d and %dx%d", contents[0].W, contents[0].H, c.W, c.H)
		}
		ct, err := e.ContentTarget(c)
		if err != nil {
			return nil, err
		}
		cts, ctShape = append(cts, ct.Data...), ct.Shape
		xs = append(xs, startImage(c, opt).Data...)
	}
	h, w := contents[0].H, contents[0].W
	xt := tensors.FromFlatDataAndDimensions(xs, 3*n, h, w)
	ct := tensors.FromFlatDataAndDimensions(cts, n*ctShape[0], ctShape[1], ctShape[2])
	style := make([]*tensors.Tensor, len(StyleLayers))
	for l := range style {
		var data []float32
		for _, st := range styles {
			data = append(data, st[l].Data...)
		}
		c := styles[0][l].C
		if len(data) != n*c*c {
			return nil, fmt.Errorf("engine: style targets of layer %d differ in size across the batch", StyleLayers[l])
		}
		style[l] = tensors.FromFlatDataAndDimensions(data, n*c, c)
	}
	in := &blockInputs[any]{lossInputs: newBatchLossArgs(xt, ct, style, ws)}
	// Adam's moments start at zero (FromShape allocates zeroed tensors).
	in.m, in.v = tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
	return in, nil
}

// startImage is where the optimisation starts: the content image, or uniform noise from the seed.
func startImage(content *Image, opt Options) *Image {
	x := content.Clone()
	if opt.Init == "noise" {
		rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
		for i := range x.Data {
			x.Data[i] = rng.Float32()
		}
	}
	return x
}

// splitImages cuts a batch's stacked result ([N*3, H, W]) into its images.
func splitImages(x *tensors.Tensor, n int) []*Image {
	dims := x.Shape().Dimensions
	h, w := dims[1], dims[2]
	data := tensors.MustCopyFlatData[float32](x)
	out := make([]*Image, n)
	for i := range out {
		out[i] = &Image{H: h, W: w, Data: data[i*3*h*w : (i+1)*3*h*w]}
	}
	return out
}
