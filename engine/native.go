package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified, as in GoMLX's examples
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Convolutions is how the network computes its 3x3 convolutions (the 1x1 ones are matrix
// products either way), forward and backward.
type Convolutions string

const (
	// Im2col gathers each convolution's patches with slices into one matrix product and spreads
	// the gradient back tap by tap (col2im). It is the fast way on the pure-Go backend, whose own
	// convolution is a plain loop.
	Im2col Convolutions = "im2col"
	// Native uses the backend's convolution op: forward, and for the gradient the transposed
	// convolution (the flipped kernel over the gradient, dilated by the stride). One op where
	// im2col has dozens: a much smaller program for XLA to compile.
	Native Convolutions = "native"
)

// ParseConvolutions reads a Convolutions name.
func ParseConvolutions(s string) (Convolutions, error) {
	switch c := Convolutions(s); c {
	case Im2col, Native:
		return c, nil
	}
	return "", fmt.Errorf("unknown convolutions %q (known: %s, %s)", s, Im2col, Native)
}

// WithConvolutions picks how the network computes its 3x3 convolutions (default Im2col).
func WithConvolutions(c Convolutions) Option {
	return func(e *Engine) { e.net.native = c == Native }
}

// Convolutions is how the engine computes the network's 3x3 convolutions.
func (e *Engine) Convolutions() Convolutions {
	if e.net.native {
		return Native
	}
	return Im2col
}

// nativeKernels are a convolution's weights as the backend's convolution op takes them.
type nativeKernels struct {
	kernel  *tensors.Tensor // [cout, cin, k, k], torch's layout
	flipped *tensors.Tensor // the kernel turned by 180 degrees in space, for the transposed convolution
	bias    *tensors.Tensor // [cout]
}

func newNativeKernels(w, b []float32, cout, cin, k int) nativeKernels {
	flipped := make([]float32, len(w))
	for oc := 0; oc < cout*cin; oc++ {
		for t := 0; t < k*k; t++ {
			flipped[oc*k*k+k*k-1-t] = w[oc*k*k+t]
		}
	}
	return nativeKernels{
		kernel:  tensors.FromFlatDataAndDimensions(w, cout, cin, k, k),
		flipped: tensors.FromFlatDataAndDimensions(flipped, cout, cin, k, k),
		bias:    tensors.FromFlatDataAndDimensions(b, cout),
	}
}

// nchw lays out input, kernel and output as [N, C, H, W], with the kernel in torch's
// [out, in, kH, kW] (or, for the transposed convolution, its channels swapped).
func nchw(transposed bool) backends.ConvolveAxesConfig {
	kin, kout := 1, 0
	if transposed {
		kin, kout = 0, 1
	}
	return backends.ConvolveAxesConfig{
		InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
		KernelInputChannels: kin, KernelOutputChannels: kout, KernelSpatial: []int{2, 3},
		OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
	}
}

// applyNative is apply with the backend's convolution op.
func (cv conv) applyNative(x *Node, stride, pad int) *Node {
	dims := x.Shape().Dimensions
	n, h, w := dims[0]/cv.cin, dims[1], dims[2]
	y := ConvGeneral(Reshape(x, n, cv.cin, h, w), constLike(x, cv.native.kernel), nchw(false),
		[]int{stride, stride}, [][2]int{{pad, pad}, {pad, pad}}, nil, nil, 1, 1)
	yd := y.Shape().Dimensions
	y = Add(y, BroadcastToDims(Reshape(constLike(x, cv.native.bias), 1, cv.cout, 1, 1), yd...))
	return Reshape(y, n*cv.cout, yd[2], yd[3])
}

// backwardNative is backward as a transposed convolution: the gradient, dilated by the stride
// and padded by k-1-pad (plus the rows and columns no window reached, at the end), convolved
// with the flipped kernel, its channels swapped.
func (cv conv) backwardNative(gy *Node, inDims []int, stride, pad int) *Node {
	dims := gy.Shape().Dimensions
	n, ho, wo := dims[0]/cv.cout, dims[1], dims[2]
	h, w := inDims[1], inDims[2]
	edge := cv.k - 1 - pad
	padding := [][2]int{
		{edge, edge + h - ((ho-1)*stride + cv.k - 2*pad)},
		{edge, edge + w - ((wo-1)*stride + cv.k - 2*pad)},
	}
	// Every setting spelled out: the pure-Go backend's dilated loop indexes the kernel dilations.
	one := []int{1, 1}
	g := ConvGeneral(Reshape(gy, n, cv.cout, ho, wo), constLike(gy, cv.native.flipped), nchw(true),
		one, padding, []int{stride, stride}, one, 1, 1)
	return Reshape(g, n*cv.cin, h, w)
}
