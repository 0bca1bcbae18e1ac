package engine

import (
	"context"
	"fmt"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// A batch of N images travels as one tensor with the images stacked along the first axis: RGB
// images as [N*3, H, W], feature maps as [N*C, H, W], Gram targets as [N*C, C]. Everything
// per-channel (padding, slicing, pooling, ReLU) then works unchanged; convolutions and the losses
// use the helpers below.

// product multiplies the weight matrix w ([A, B]) with each image's matrix in x ([N, B, M]):
// [N, A, M]. A single image takes a plain matrix product.
func product(w *Node, x *Node) *Node {
	dims := x.Shape().Dimensions
	if dims[0] == 1 {
		return InsertAxes(Dot(w, Reshape(x, dims[1], dims[2])).Product(), 0)
	}
	return DotGeneral(BroadcastPrefix(w, dims[0]), []int{2}, []int{0}, x, []int{1}, []int{0})
}

// batchOf is the number of images in a batch of RGB images x ([N*3, H, W]).
func batchOf(x *Node) int { return x.Shape().Dimensions[0] / 3 }

// catChannels joins, image by image, the channels of a ([N*Ca, H, W]) and b ([N*Cb, H, W]).
func catChannels(n int, a, b *Node) *Node {
	da, db := a.Shape().Dimensions, b.Shape().Dimensions
	if n == 1 {
		return Concatenate([]*Node{a, b}, 0)
	}
	cat := Concatenate([]*Node{Reshape(a, n, da[0]/n, da[1], da[2]), Reshape(b, n, db[0]/n, db[1], db[2])}, 1)
	return Reshape(cat, da[0]+db[0], da[1], da[2])
}

// splitChannels undoes catChannels where a had ca channels an image.
func splitChannels(n int, x *Node, ca int) (a, b *Node) {
	d := x.Shape().Dimensions
	c := d[0] / n
	x4 := Reshape(x, n, c, d[1], d[2])
	a = Reshape(Slice(x4, AxisRange(), AxisRange(0, ca)), n*ca, d[1], d[2])
	b = Reshape(Slice(x4, AxisRange(), AxisRange(ca, c)), n*(c-ca), d[1], d[2])
	return a, b
}

// imageOf is image i's part of a batch's stacked tensor f ([N*C, ...]).
func imageOf(f *Node, n, i int) *Node {
	if n == 1 {
		return f
	}
	c := f.Shape().Dimensions[0] / n
	return Slice(f, AxisRange(i*c, (i+1)*c))
}

// stackImages is the inverse of imageOf.
func stackImages(parts []*Node) *Node {
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, 0)
}

// checkBatch checks that a batch has one style and weight set an image, and images of one size
// the network accepts.
func checkBatch(contents []*Image, styles []StyleTargets, ws []Weights) error {
	n := len(contents)
	if n == 0 || len(styles) != n || len(ws) != n {
		return fmt.Errorf("engine: a batch needs as many style targets and weights as images (%d, %d, %d)", n, len(styles), len(ws))
	}
	for _, c := range contents {
		if err := checkSize(c); err != nil {
			return err
		}
		if c.H != contents[0].H || c.W != contents[0].W {
			return fmt.Errorf("engine: a batch's images must share one size, got %dx%d and %dx%d", contents[0].W, contents[0].H, c.W, c.H)
		}
	}
	return nil
}

// batchInputs stacks a batch's starting images xs, content targets (of contents, the size of xs)
// and style targets along their first axis ([N*3, H, W], [N*C, h, w], [N*C, C]) and starts Adam's
// moments at zero.
func (e *Engine) batchInputs(contents, xs []*Image, styles []StyleTargets, ws []Weights) (*blockInputs[any], error) {
	n := len(contents)
	var xd, cts []float32
	var ctShape []int
	for i, c := range contents {
		ct, err := e.ContentTarget(c)
		if err != nil {
			return nil, err
		}
		cts, ctShape = append(cts, ct.Data...), ct.Shape
		xd = append(xd, xs[i].Data...)
	}
	h, w := contents[0].H, contents[0].W
	xt := tensors.FromFlatDataAndDimensions(xd, 3*n, h, w)
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

// batchesInOneGraph reports whether a batch runs as one graph: on XLA, and on the pure-Go backend
// only where a test asks for it (with operations run in sequence). The pure-Go backend's parallel
// mode can deadlock its worker pool on a batch's many concurrent matrix products, and gains
// nothing from batching anyway.
func (e *Engine) batchesInOneGraph() bool {
	return e.oneGraphBatches || e.onXLA()
}

// transferOneByOne is TransferBatch where batches do not run as one graph: each image alone,
// with progress counted over the whole batch.
func (e *Engine) transferOneByOne(ctx context.Context, contents []*Image, styles []StyleTargets, ws []Weights, opt Options, progress Progress) ([]*Image, [][]Losses, error) {
	n := len(contents)
	steps := opt.Iters
	outs, hists := make([]*Image, n), make([][]Losses, n)
	for i := range contents {
		out, hist, err := e.TransferBatch(ctx, contents[i:i+1], styles[i:i+1], ws[i:i+1], opt, func(k, _ int, l Losses) {
			if progress != nil {
				progress(i*steps+k, n*steps, l)
			}
		})
		if len(hist) > 0 {
			hists[i] = hist[0]
		}
		if err != nil {
			return nil, hists, err
		}
		outs[i] = out[0]
	}
	return outs, hists, nil
}
