package engine

import (
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified, as in GoMLX's examples
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// poolState is what a max-pool keeps for its backward pass.
type poolState struct {
	first *Node // [N*C*Ho*Wo, 1] int64: flat index into the input of each window's first maximum
	in    []int // input dimensions [N*C, H, W]
}

// maxPool3x3s2Ceil is torch's MaxPool2d(3, stride=2, ceil_mode=True): windows that run past the
// bottom or right edge are cut short, which padding with -inf reproduces. It also notes where
// each window's maximum came from, for the backward pass.
func maxPool3x3s2Ceil(x *Node) (*Node, poolState) {
	dims := x.Shape().Dimensions
	planes, h, w := dims[0], dims[1], dims[2]
	ho, wo := (h-3+1)/2+1, (w-3+1)/2+1 // ceil((h-3)/2) + 1
	hp, wp := 2*(ho-1)+3, 2*(wo-1)+3
	st := poolState{in: slices.Clone(dims)}
	if hp > h || wp > w {
		negInf := Scalar(x.Graph(), x.DType(), -3.4e38)
		x = Pad(x, negInf, backends.PadAxis{}, backends.PadAxis{End: hp - h}, backends.PadAxis{End: wp - w})
	}
	m := planes * ho * wo
	taps := make([]*Node, 9)
	for ky := 0; ky < 3; ky++ {
		for kx := 0; kx < 3; kx++ {
			t := Slice(x, AxisRange(), AxisRange(ky, ky+2*(ho-1)+1).Stride(2), AxisRange(kx, kx+2*(wo-1)+1).Stride(2))
			taps[ky*3+kx] = Reshape(t, 1, m)
		}
	}
	stack := Concatenate(taps, 0) // [9, m], tap-major in torch's scan order
	y := taps[0]
	for _, t := range taps[1:] {
		y = Max(y, t)
	}
	y = Reshape(y, planes, ho, wo)
	// ArgMax keeps the first of tied maxima, as torch does. Tap t = 3*ky + kx sits at offset
	// ky*W + kx from the window's corner, that is t + (t/3)*(W-3).
	t := Reshape(ArgMax(stack, 0, dtypes.Int64), m) // int64: a batch of large images passes 2³¹ elements
	offset := Add(t, MulScalar(DivScalar(t, 3), float64(w-3)))
	st.first = Reshape(Add(windowCorners(x.Graph(), planes, h, w, ho, wo), offset), m, 1)
	return y, st
}

// windowCorners is the flat input index of each pooling window's top-left element.
func windowCorners(g *Graph, planes, h, w, ho, wo int) *Node {
	corners := make([]int64, 0, planes*ho*wo)
	for p := 0; p < planes; p++ {
		for a := 0; a < ho; a++ {
			for b := 0; b < wo; b++ {
				corners = append(corners, int64(p*h*w+2*a*w+2*b))
			}
		}
	}
	return Const(g, corners)
}

// maxPoolBackward sends each output's gradient to one input, as torch does: the first element of
// the window, in row-major scan order, that holds the window's maximum. Flat areas tie many
// elements of a window; sending the gradient to each of them would multiply it. Overlapping
// windows add their contributions. The -inf padding of ceil mode never holds a maximum, since
// every window starts inside the input.
func maxPoolBackward(st poolState, gy *Node) *Node {
	size := st.in[0] * st.in[1] * st.in[2]
	flat := ScatterSum(Zeros(gy.Graph(), shapes.Make(gy.DType(), size)), st.first, Reshape(gy, gy.Shape().Size()), false, false)
	return Reshape(flat, st.in...)
}
