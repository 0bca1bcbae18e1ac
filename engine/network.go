package engine

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified, as in GoMLX's examples
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/styleproxy/styleproxy/weights"
)

// NumLayers is the number of modules in torchvision's squeezenet1_1.features: 0 conv 3x3/2,
// 1 ReLU, 2 max-pool, 3-4 fire, 5 max-pool, 6-7 fire, 8 max-pool, 9-12 fire.
const NumLayers = 13

type layerKind int

const (
	kindConv layerKind = iota
	kindReLU
	kindPool
	kindFire
)

var layerKinds = [NumLayers]layerKind{
	kindConv, kindReLU, kindPool, kindFire, kindFire, kindPool, kindFire, kindFire, kindPool,
	kindFire, kindFire, kindFire, kindFire,
}

// conv holds one convolution's weights, rearranged once so that the convolution is a single
// matrix product with "patches" whose rows are tap-major (row = tap*Cin + inputChannel), plus a
// last row of ones that the bias column multiplies (cheaper than broadcasting the bias after).
type conv struct {
	cout, cin, k int
	native       nativeKernels   // for Native convolutions (see native.go)
	w            *tensors.Tensor // [cout, k*k*cin + 1]: forward product [W | b]·patches
	wt           *tensors.Tensor // [k*k*cin, cout]: backward product Wᵀ·dY, spread back by col2im
}

type fire struct{ squeeze, expand1, expand3 conv }

// Network is SqueezeNet 1.1's feature extractor with its weights, ready to be built into graphs.
type Network struct {
	conv1  conv
	fires  map[int]fire
	native bool // 3x3 convolutions with the backend's convolution op (see Convolutions)
}

// NewNetwork prepares the network from a checkpoint whose tensors the weights package validated.
func NewNetwork(ck *weights.Checkpoint) (*Network, error) {
	n := &Network{fires: map[int]fire{}}
	var err error
	if n.conv1, err = newConv(ck, "features.0"); err != nil {
		return nil, err
	}
	for l, kind := range layerKinds {
		if kind != kindFire {
			continue
		}
		var f fire
		p := fmt.Sprintf("features.%d.", l)
		if f.squeeze, err = newConv(ck, p+"squeeze"); err != nil {
			return nil, err
		}
		if f.expand1, err = newConv(ck, p+"expand1x1"); err != nil {
			return nil, err
		}
		if f.expand3, err = newConv(ck, p+"expand3x3"); err != nil {
			return nil, err
		}
		n.fires[l] = f
	}
	return n, nil
}

func newConv(ck *weights.Checkpoint, prefix string) (conv, error) {
	w, b := ck.Tensors[prefix+".weight"], ck.Tensors[prefix+".bias"]
	if w == nil || b == nil || len(w.Shape) != 4 || w.Shape[2] != w.Shape[3] || len(b.Data) != w.Shape[0] {
		return conv{}, fmt.Errorf("engine: checkpoint lacks a usable %s convolution", prefix)
	}
	cout, cin, k := w.Shape[0], w.Shape[1], w.Shape[2]
	kk := k * k * cin
	wm := make([]float32, cout*(kk+1))
	wt := make([]float32, kk*cout)
	for o := 0; o < cout; o++ {
		for c := 0; c < cin; c++ {
			for t := 0; t < k*k; t++ {
				v := w.Data[(o*cin+c)*k*k+t]
				row := t*cin + c
				wm[o*(kk+1)+row] = v
				wt[row*cout+o] = v
			}
		}
		wm[o*(kk+1)+kk] = b.Data[o]
	}
	return conv{
		cout: cout, cin: cin, k: k, native: newNativeKernels(w.Data, b.Data, cout, cin, k),
		w:  tensors.FromFlatDataAndDimensions(wm, cout, kk+1),
		wt: tensors.FromFlatDataAndDimensions(wt, kk, cout),
	}, nil
}

// Activations are what a forward pass keeps for the backward pass: Features[l] is the output of
// module l ([C, H, W]); the rest are intermediate values the gradients of ReLU, max-pool and the
// fire modules need.
type Activations struct {
	Features [NumLayers]*Node
	input    *Node
	squeeze  map[int]*Node // fire module's squeeze output (after ReLU)
	pool     map[int]poolState
}

// Extract runs the network up to and including module `last` on x ([3, H, W], or a batch of N
// images as [N*3, H, W], see batch.go): the reference's extract(), stopped early because the
// losses need nothing past the deepest style layer.
func (n *Network) Extract(x *Node, last int) *Activations {
	a := &Activations{input: x, squeeze: map[int]*Node{}, pool: map[int]poolState{}}
	h := x
	for l := 0; l <= last; l++ {
		switch layerKinds[l] {
		case kindConv:
			h = n.convolve(n.conv1, h, 2, 0)
		case kindReLU:
			h = MaxScalar(h, 0.0)
		case kindPool:
			var st poolState
			h, st = maxPool3x3s2Ceil(h)
			a.pool[l] = st
		case kindFire:
			f := n.fires[l]
			s := MaxScalar(f.squeeze.apply(h, 1, 0), 0.0)
			a.squeeze[l] = s
			h = MaxScalar(catChannels(batchOf(x), f.expand1.apply(s, 1, 0), n.convolve(f.expand3, s, 1, 1)), 0.0)
		}
		a.Features[l] = h
	}
	return a
}

// Backward returns d(loss)/d(input image) given d(loss)/d(Features[l]) for some layers (nil for
// the others). It walks the modules from the deepest layer with a gradient back to the image.
func (n *Network) Backward(a *Activations, featureGrads map[int]*Node) *Node {
	last := -1
	for l := range featureGrads {
		last = max(last, l)
	}
	var g *Node
	for l := last; l >= 0; l-- {
		if fg := featureGrads[l]; fg != nil {
			if g == nil {
				g = fg
			} else {
				g = Add(g, fg)
			}
		}
		if g == nil {
			continue
		}
		var in *Node
		if l > 0 {
			in = a.Features[l-1]
		} else {
			in = a.input
		}
		switch layerKinds[l] {
		case kindConv:
			g = n.convolveBackward(n.conv1, g, in.Shape().Dimensions, 2, 0)
		case kindReLU:
			g = reluBackward(a.Features[l], g)
		case kindPool:
			g = maxPoolBackward(a.pool[l], g)
		case kindFire:
			f := n.fires[l]
			g = reluBackward(a.Features[l], g)
			ce := f.expand1.cout
			s := a.squeeze[l]
			ge1, ge3 := splitChannels(batchOf(a.input), g, ce)
			gs := Add(f.expand1.backward(ge1, s.Shape().Dimensions, 1, 0),
				n.convolveBackward(f.expand3, ge3, s.Shape().Dimensions, 1, 1))
			gs = reluBackward(s, gs)
			g = f.squeeze.backward(gs, in.Shape().Dimensions, 1, 0)
		}
	}
	return g
}

// convolve is the 3x3 convolution cv of x, as the network's Convolutions say.
func (n *Network) convolve(cv conv, x *Node, stride, pad int) *Node {
	if n.native {
		return cv.applyNative(x, stride, pad)
	}
	return cv.apply(x, stride, pad)
}

// convolveBackward is the gradient of convolve with respect to its input.
func (n *Network) convolveBackward(cv conv, gy *Node, inDims []int, stride, pad int) *Node {
	if n.native {
		return cv.backwardNative(gy, inDims, stride, pad)
	}
	return cv.backward(gy, inDims, stride, pad)
}

// reluBackward passes g where the ReLU's output is positive (torch's derivative is 0 at 0).
func reluBackward(out, g *Node) *Node {
	return Mul(g, positiveMask(out))
}

// positiveMask is 1 where x > 0 and 0 where x == 0, for x ≥ 0 such as a ReLU's output. Two
// products by a large power of two lift every positive value, subnormals included, to at least
// 1 (or +Inf), and Min clips that to 1. On the pure-Go backend this costs half of a comparison
// and a conversion from bool, whose loops branch on the data.
func positiveMask(x *Node) *Node {
	lift := 0x1p100 // its square overflows float32, and lifts the smallest float32 subnormal past 1
	if x.DType() == dtypes.Float64 {
		lift = 0x1p600
	}
	return MinScalar(MulScalar(MulScalar(x, lift), lift), 1)
}

// outSize is a convolution's output length along one axis.
func outSize(in, k, stride, pad int) int { return (in+2*pad-k)/stride + 1 }

// patches builds the im2col matrices [N, k*k*C + 1, Ho*Wo] of x ([N*C, H, W]: a batch of N
// images of C channels each, stacked along the first axis): row tap*C + c of image n holds its
// channel c shifted by that tap, and the last row is ones (for the bias).
func patches(x *Node, c, k, stride, pad int) (p *Node, ho, wo int) {
	dims := x.Shape().Dimensions
	n, h, w := dims[0]/c, dims[1], dims[2]
	ho, wo = outSize(h, k, stride, pad), outSize(w, k, stride, pad)
	ones := Ones(x.Graph(), shapes.Make(x.DType(), n, 1, ho*wo))
	if k == 1 && stride == 1 && pad == 0 {
		return Concatenate([]*Node{Reshape(x, n, c, h*w), ones}, 1), h, w
	}
	if pad > 0 {
		x = padZeros(padZeros(x, 1, pad, pad), 2, pad, pad)
	}
	taps := make([]*Node, 0, k*k)
	for ky := 0; ky < k; ky++ {
		for kx := 0; kx < k; kx++ {
			taps = append(taps, Reshape(Slice(x, AxisRange(),
				AxisRange(ky, ky+stride*(ho-1)+1).Stride(stride),
				AxisRange(kx, kx+stride*(wo-1)+1).Stride(stride)), n, c, ho*wo))
		}
	}
	return Concatenate(append(taps, ones), 1), ho, wo
}

// constLike embeds a weight tensor in x's graph with x's dtype (float32 in production; the tests
// also run the network in float64 to check its gradient numerically).
func constLike(x *Node, t *tensors.Tensor) *Node {
	c := Const(x.Graph(), t)
	if c.DType() != x.DType() {
		c = ConvertDType(c, x.DType())
	}
	return c
}

// apply is the convolution (with bias) of x ([N*Cin, H, W]) as one matrix product an image.
func (cv conv) apply(x *Node, stride, pad int) *Node {
	p, ho, wo := patches(x, cv.cin, cv.k, stride, pad)
	return Reshape(product(constLike(x, cv.w), p), p.Shape().Dimensions[0]*cv.cout, ho, wo)
}

// backward is the gradient of the convolution with respect to its input ([N*Cin, inDims[1],
// inDims[2]]), given the gradient gy of its output: Wᵀ·gy, then each tap's rows added back where
// the tap read them (col2im), with interior padding for strides.
func (cv conv) backward(gy *Node, inDims []int, stride, pad int) *Node {
	g := gy.Graph()
	dims := gy.Shape().Dimensions
	n, ho, wo := dims[0]/cv.cout, dims[1], dims[2]
	z := product(constLike(gy, cv.wt), Reshape(gy, n, cv.cout, ho*wo)) // [n, k*k*cin, ho*wo]
	h, w := inDims[1], inDims[2]
	if cv.k == 1 && stride == 1 && pad == 0 {
		return Reshape(z, n*cv.cin, h, w)
	}
	z = Reshape(z, n, cv.k*cv.k, cv.cin, ho, wo)
	hp, wp := h+2*pad, w+2*pad
	zero := ScalarZero(g, gy.DType())
	var sum *Node
	for ky := 0; ky < cv.k; ky++ {
		for kx := 0; kx < cv.k; kx++ {
			t := ky*cv.k + kx
			zt := Reshape(Slice(z, AxisRange(), AxisElem(t)), n*cv.cin, ho, wo)
			spanY, spanX := stride*(ho-1)+1, stride*(wo-1)+1
			var placed *Node
			if stride == 1 {
				placed = padZeros(padZeros(zt, 1, ky, hp-ky-spanY), 2, kx, wp-kx-spanX)
			} else {
				placed = Pad(zt, zero, backends.PadAxis{},
					backends.PadAxis{Start: ky, End: hp - ky - spanY, Interior: stride - 1},
					backends.PadAxis{Start: kx, End: wp - kx - spanX, Interior: stride - 1})
			}
			if sum == nil {
				sum = placed
			} else {
				sum = Add(sum, placed)
			}
		}
	}
	if pad > 0 {
		sum = Slice(sum, AxisRange(), AxisRange(pad, pad+h), AxisRange(pad, pad+w))
	}
	return sum
}

// padZeros adds before and after zero slices to x along axis (a concatenation, which copies
// whole rows where a Pad of the last axis goes element by element on the pure-Go backend).
func padZeros(x *Node, axis, before, after int) *Node {
	if before == 0 && after == 0 {
		return x
	}
	parts := make([]*Node, 0, 3)
	slab := func(n int) *Node {
		dims := slices.Clone(x.Shape().Dimensions)
		dims[axis] = n
		return Zeros(x.Graph(), shapes.Make(x.DType(), dims...))
	}
	if before > 0 {
		parts = append(parts, slab(before))
	}
	parts = append(parts, x)
	if after > 0 {
		parts = append(parts, slab(after))
	}
	return Concatenate(parts, axis)
}

// interleave merges a (n+1 long along axis) and b (n long) into a[0], b[0], a[1], ..., a[n].
func interleave(a, b *Node, axis int) *Node {
	n := b.Shape().Dimensions[axis]
	dims := slices.Clone(a.Shape().Dimensions)
	dims[axis] = 2 * (n + 1)
	merged := Reshape(Stack([]*Node{a, padZeros(b, axis, 0, 1)}, axis+1), dims...)
	return SliceAxis(merged, axis, AxisRange(0, 2*n+1))
}
