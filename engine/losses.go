package engine

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
)

// The reference's loss setup: the content loss compares module 3's output (fire3), the style loss
// the Gram matrices of modules 1 (conv1 after ReLU), 4, 6 and 7.
var (
	ContentLayer = 3
	StyleLayers  = [4]int{1, 4, 6, 7}
)

// Weights are the loss weights: the reference's content_weight, style_weights (one per style
// layer) and tv_weight.
type Weights struct {
	Content float64    `json:"content_weight"`
	Style   [4]float64 `json:"style_weights"`
	TV      float64    `json:"tv_weight"`
}

// Presets are the reference's three example settings, by the name of the artwork they suit.
var Presets = map[string]Weights{
	"composition_vii": {Content: 5e-2, Style: [4]float64{20000, 500, 12, 1}, TV: 5e-2},
	"the_scream":      {Content: 3e-2, Style: [4]float64{200000, 800, 12, 1}, TV: 2e-2},
	"starry_night":    {Content: 6e-2, Style: [4]float64{300000, 1000, 15, 3}, TV: 2e-2},
}

// GramMatrix is the reference's gram(f): F·Fᵀ over the spatial positions, divided by H*W*C, for
// features f of shape [C, H, W]; the result is [C, C].
func GramMatrix(f *Node) *Node {
	dims := f.Shape().Dimensions
	c, hw := dims[0], dims[1]*dims[2]
	flat := Reshape(f, c, hw)
	// F·Fᵀ as a plain [C, HW]·[HW, C] product: backends have their fastest kernels for that
	// layout, and the transposed copy is small beside the product.
	g := Dot(flat, Transpose(flat, 0, 1)).Product()
	return DivScalar(g, float64(c*hw))
}

// ContentLoss is the reference's content_loss: weight * Σ (cur - target)², and its gradient
// with respect to cur. weight is a scalar node so one compiled graph serves every style.
func ContentLoss(weight, cur, target *Node) (loss, grad *Node) {
	diff := Sub(cur, target)
	loss = Mul(weight, ReduceAllSum(Square(diff)))
	grad = Mul(MulScalar(weight, 2.0), diff)
	return loss, grad
}

// StyleLayerLoss is one layer's term of the reference's style_loss: weight * Σ (gram(f) - target)²,
// and its gradient with respect to f: 4 * weight * (G - target)·F / (H*W*C), since G is symmetric.
func StyleLayerLoss(weight, f, target *Node) (loss, grad *Node) {
	dims := f.Shape().Dimensions
	c, hw := dims[0], dims[1]*dims[2]
	diff := Sub(GramMatrix(f), target)
	loss = Mul(weight, ReduceAllSum(Square(diff)))
	scale := MulScalar(weight, 4.0/float64(c*hw))
	grad = Dot(Mul(scale, diff), Reshape(f, c, hw)).Product()
	return loss, Reshape(grad, dims...)
}

// TVLoss is the reference's tv_loss for an image x ([C, H, W]): weight times the summed squares of
// the differences between vertically and horizontally neighbouring pixels, and its gradient.
func TVLoss(weight, x *Node) (loss, grad *Node) {
	dims := x.Shape().Dimensions
	h, w := dims[1], dims[2]
	dy := Sub(Slice(x, AxisRange(), AxisRange(1, h)), Slice(x, AxisRange(), AxisRange(0, h-1)))
	dx := Sub(Slice(x, AxisRange(), AxisRange(), AxisRange(1, w)), Slice(x, AxisRange(), AxisRange(), AxisRange(0, w-1)))
	loss = Mul(weight, Add(ReduceAllSum(Square(dy)), ReduceAllSum(Square(dx))))
	// Each difference pulls its two pixels apart: +2*weight*d on the later one, -2*weight*d on the earlier.
	gy := Sub(padZeros(dy, 1, 1, 0), padZeros(dy, 1, 0, 1))
	gx := Sub(padZeros(dx, 2, 1, 0), padZeros(dx, 2, 0, 1))
	grad = Mul(MulScalar(weight, 2.0), Add(gy, gx))
	return loss, grad
}
