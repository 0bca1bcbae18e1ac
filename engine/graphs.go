package engine

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/support/exceptions"
)

// init compiles (lazily, per image size) the engine's four graphs: every module's features, the
// style and content targets, the losses with their gradient, and one Adam step. GoMLX builds a
// graph function once per new set of input shapes, right before compiling it, so each build is
// counted as a compilation.
func (e *Engine) init() error {
	e.once.Do(func() {
		e.initErr = tryCatch(func() {
			e.features = MustNewExec(e.backend, func(x *Node) []*Node {
				e.compiles.Add(1)
				a := e.net.Extract(x, NumLayers-1)
				return a.Features[:]
			})
			e.targets = MustNewExec(e.backend, func(x *Node) []*Node {
				e.compiles.Add(1)
				a := e.net.Extract(x, StyleLayers[len(StyleLayers)-1])
				out := []*Node{a.Features[ContentLayer]}
				for _, l := range StyleLayers {
					out = append(out, GramMatrix(a.Features[l]))
				}
				return out
			})
			e.lossGrad = MustNewExec(e.backend, func(in []*Node) []*Node {
				e.compiles.Add(1)
				var p lossInputs[*Node]
				bind(&p, in)
				c, s, t, grad := e.lossAndGradient(p)
				return []*Node{c, s, t, grad}
			})
			e.step = MustNewExec(e.backend, func(in []*Node) []*Node {
				e.compiles.Add(1)
				var p adamInputs[*Node]
				bind(&p, in)
				return e.adamStep(p)
			})
			e.block = MustNewExec(e.backend, func(in []*Node) []*Node {
				e.compiles.Add(1)
				var p blockInputs[*Node]
				bind(&p, in)
				return e.adamBlock(p)
			})
			// Never evict a compiled shape: recompiling would stall a request for seconds on XLA.
			for _, x := range []*Exec{e.features, e.targets, e.lossGrad, e.step, e.block} {
				x.SetMaxCache(-1)
			}
		})
	})
	return e.initErr
}

// tryCatch turns the panics GoMLX raises while building or running graphs into errors.
func tryCatch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("engine: %w", e)
			} else {
				err = fmt.Errorf("engine: %v", r)
			}
		}
	}()
	fn()
	return nil
}

// lossInputs are the inputs of the loss graphs. The same struct serves both sides of a call: T is
// *Node inside the graph, and any (a tensor or a float32 scalar) for Exec's arguments; slots fixes
// their order once for both.
type lossInputs[T any] struct {
	x, contentTarget T
	styleTargets     [len(StyleLayers)]T
	contentW, tvW    T
	styleW           [len(StyleLayers)]T
}

func (p *lossInputs[T]) slots() []*T {
	s := []*T{&p.x, &p.contentTarget, &p.contentW, &p.tvW}
	for i := range p.styleTargets {
		s = append(s, &p.styleTargets[i], &p.styleW[i])
	}
	return s
}

// adamInputs are the Adam step's inputs: the loss inputs, the moments m and v, the clamp range
// [lo, hi] and torch.optim.Adam's bias corrections folded into stepSize = lr/(1-β1ᵗ) and
// invSqrtBC2 = 1/sqrt(1-β2ᵗ).
type adamInputs[T any] struct {
	lossInputs[T]
	m, v, lo, hi, stepSize, invSqrtBC2 T
}

func (p *adamInputs[T]) slots() []*T {
	return append(p.lossInputs.slots(), &p.m, &p.v, &p.lo, &p.hi, &p.stepSize, &p.invSqrtBC2)
}

type slotted[T any] interface{ slots() []*T }

// bind fills the inputs from a graph's parameters.
func bind(p slotted[*Node], in []*Node) {
	slots := p.slots()
	if len(in) != len(slots) {
		exceptions.Panicf("engine: graph given %d inputs, want %d", len(in), len(slots))
	}
	for i, s := range slots {
		*s = in[i]
	}
}

// args lists the inputs as Exec's arguments.
func args(p slotted[any]) []any {
	slots := p.slots()
	out := make([]any, len(slots))
	for i, s := range slots {
		out[i] = *s
	}
	return out
}

// newLossArgs holds the tensors and weights of one loss evaluation at x.
func newLossArgs(x, content *tensors.Tensor, style []*tensors.Tensor, w Weights) lossInputs[any] {
	p := lossInputs[any]{x: x, contentTarget: content, contentW: float32(w.Content), tvW: float32(w.TV)}
	for i := range p.styleTargets {
		p.styleTargets[i], p.styleW[i] = style[i], float32(w.Style[i])
	}
	return p
}

// assertLossShapes checks the targets against the features they are compared with, and that the
// weights are scalars: a mismatch is a caller's error, reported when the graph is built.
func assertLossShapes(p lossInputs[*Node], a *Activations) {
	p.x.AssertDims(3, -1, -1)
	p.contentTarget.AssertDims(a.Features[ContentLayer].Shape().Dimensions...)
	p.contentW.AssertScalar()
	p.tvW.AssertScalar()
	for i, l := range StyleLayers {
		c := a.Features[l].Shape().Dimensions[0]
		p.styleTargets[i].AssertDims(c, c)
		p.styleW[i].AssertScalar()
	}
}

// lossAndGradient is the reference's losses() plus its backward pass: the three loss terms at x
// and d(total)/dx.
func (e *Engine) lossAndGradient(p lossInputs[*Node]) (content, style, tv, grad *Node) {
	a := e.net.Extract(p.x, StyleLayers[len(StyleLayers)-1])
	assertLossShapes(p, a)
	featureGrads := map[int]*Node{}
	addGrad := func(l int, g *Node) {
		if prev := featureGrads[l]; prev != nil {
			g = Add(prev, g)
		}
		featureGrads[l] = g
	}
	content, cg := ContentLoss(p.contentW, a.Features[ContentLayer], p.contentTarget)
	addGrad(ContentLayer, cg)
	for i, l := range StyleLayers {
		sl, sg := StyleLayerLoss(p.styleW[i], a.Features[l], p.styleTargets[i])
		if style == nil {
			style = sl
		} else {
			style = Add(style, sl)
		}
		addGrad(l, sg)
	}
	tv, tg := TVLoss(p.tvW, p.x)
	grad = Add(e.net.Backward(a, featureGrads), tg)
	return content, style, tv, grad
}

// adamStep is one iteration of the reference's loop as a graph: clamp x to [lo, hi], compute the
// losses and gradient there, and take one torch.optim.Adam step.
// Outputs: the new x, m, v and the content, style and TV losses at the clamped x.
func (e *Engine) adamStep(p adamInputs[*Node]) []*Node {
	dims := p.x.Shape().Dimensions
	p.m.AssertDims(dims...)
	p.v.AssertDims(dims...)
	for _, s := range []*Node{p.lo, p.hi, p.stepSize, p.invSqrtBC2} {
		s.AssertScalar()
	}
	p.x = Clip(p.x, p.lo, p.hi)
	c, s, t, g := e.lossAndGradient(p.lossInputs)
	m := Add(MulScalar(p.m, adamBeta1), MulScalar(g, 1-adamBeta1))
	v := Add(MulScalar(p.v, adamBeta2), MulScalar(Square(g), 1-adamBeta2))
	denom := AddScalar(Mul(Sqrt(v), p.invSqrtBC2), adamEps)
	x := Sub(p.x, Mul(p.stepSize, Div(m, denom)))
	return []*Node{x, m, v, c, s, t}
}

// Features is the reference's extract(): the output of every module of the network for image im.
// As in torchvision, whose first ReLU works in place, features[0] is the conv1 output after ReLU
// and so equals features[1].
func (e *Engine) Features(im *Image) ([]FeatureMap, error) {
	if err := e.init(); err != nil {
		return nil, err
	}
	outs, err := e.features.Exec(imageTensor(im))
	if err != nil {
		return nil, fmt.Errorf("engine: features: %w", err)
	}
	fm := make([]FeatureMap, len(outs))
	for i, t := range outs {
		fm[i] = FeatureMap{Shape: t.Shape().Dimensions, Data: tensors.MustCopyFlatData[float32](t)}
		t.FinalizeAll()
	}
	fm[0] = fm[1]
	return fm, nil
}

// ContentTarget is the content image's features at the content layer, which the content loss
// compares against.
func (e *Engine) ContentTarget(im *Image) (FeatureMap, error) {
	fm, _, err := e.targetsOf(im)
	return fm, err
}

// StyleTargets computes the Gram matrices of a style image at the style layers.
func (e *Engine) StyleTargets(im *Image) (StyleTargets, error) {
	_, st, err := e.targetsOf(im)
	return st, err
}

func (e *Engine) targetsOf(im *Image) (FeatureMap, StyleTargets, error) {
	var st StyleTargets
	if err := e.init(); err != nil {
		return FeatureMap{}, st, err
	}
	if err := checkSize(im); err != nil {
		return FeatureMap{}, st, err
	}
	outs, err := e.targets.Exec(imageTensor(im))
	if err != nil {
		return FeatureMap{}, st, fmt.Errorf("engine: targets: %w", err)
	}
	defer func() {
		for _, t := range outs {
			t.FinalizeAll()
		}
	}()
	content := FeatureMap{Shape: outs[0].Shape().Dimensions, Data: tensors.MustCopyFlatData[float32](outs[0])}
	for i := range st {
		t := outs[1+i]
		st[i] = Gram{C: t.Shape().Dimensions[0], Data: tensors.MustCopyFlatData[float32](t)}
	}
	return content, st, nil
}

// LossAndGradient evaluates the losses and d(total)/dx at x, for content target features and
// style targets: the quantities the reference's loss_at_x and grad_at_x golden values hold.
func (e *Engine) LossAndGradient(x *Image, content FeatureMap, style StyleTargets, w Weights) (Losses, *Image, error) {
	if err := e.init(); err != nil {
		return Losses{}, nil, err
	}
	if err := checkSize(x); err != nil {
		return Losses{}, nil, err
	}
	in := newLossArgs(imageTensor(x), featureTensor(content), style.tensors(), w)
	outs, err := e.lossGrad.Exec(args(&in)...)
	if err != nil {
		return Losses{}, nil, fmt.Errorf("engine: loss: %w", err)
	}
	l := lossesOf(outs[0], outs[1], outs[2])
	grad := &Image{H: x.H, W: x.W, Data: tensors.MustCopyFlatData[float32](outs[3])}
	for _, t := range outs {
		t.FinalizeAll()
	}
	return l, grad, nil
}

func lossesOf(c, s, t *tensors.Tensor) Losses {
	l := Losses{
		Content: float64(tensors.ToScalar[float32](c)),
		Style:   float64(tensors.ToScalar[float32](s)),
		TV:      float64(tensors.ToScalar[float32](t)),
	}
	l.Total = l.Content + l.Style + l.TV
	return l
}

func imageTensor(im *Image) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float32(nil), im.Data...), 3, im.H, im.W)
}

func featureTensor(f FeatureMap) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float32(nil), f.Data...), f.Shape...)
}

func (st StyleTargets) tensors() []*tensors.Tensor {
	out := make([]*tensors.Tensor, len(st))
	for i, g := range st {
		out[i] = tensors.FromFlatDataAndDimensions(append([]float32(nil), g.Data...), g.C, g.C)
	}
	return out
}
