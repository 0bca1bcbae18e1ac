package engine

import (
	"fmt"
	"strings"

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
// [lo, hi], torch.optim.Adam's bias corrections folded into stepSize = lr/(1-β1ᵗ) and
// invSqrtBC2 = 1/sqrt(1-β2ᵗ), and the moments' decay rates β1 and β2 (inputs, so that every
// schedule runs the same compiled graph).
type adamInputs[T any] struct {
	lossInputs[T]
	m, v, lo, hi, stepSize, invSqrtBC2, beta1, beta2 T
}

func (p *adamInputs[T]) slots() []*T {
	return append(p.lossInputs.slots(), &p.m, &p.v, &p.lo, &p.hi, &p.stepSize, &p.invSqrtBC2, &p.beta1, &p.beta2)
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
	return newBatchLossArgs(x, content, style, []Weights{w})
}

// newBatchLossArgs holds the tensors of a batch's loss evaluation (x, content and each style
// layer's targets with the images stacked along the first axis) and each image's weights.
func newBatchLossArgs(x, content *tensors.Tensor, style []*tensors.Tensor, ws []Weights) lossInputs[any] {
	vec := func(f func(Weights) float64) *tensors.Tensor {
		v := make([]float32, len(ws))
		for i, w := range ws {
			v[i] = float32(f(w))
		}
		return tensors.FromValue(v)
	}
	p := lossInputs[any]{x: x, contentTarget: content,
		contentW: vec(func(w Weights) float64 { return w.Content }), tvW: vec(func(w Weights) float64 { return w.TV })}
	for i := range p.styleTargets {
		p.styleTargets[i], p.styleW[i] = style[i], vec(func(w Weights) float64 { return w.Style[i] })
	}
	return p
}

// assertLossShapes checks the targets against the features they are compared with, and that
// there is one weight of each kind an image: a mismatch is a caller's error, reported when the
// graph is built.
func assertLossShapes(p lossInputs[*Node], a *Activations, n int) {
	p.x.AssertDims(3*n, -1, -1)
	p.contentTarget.AssertDims(a.Features[ContentLayer].Shape().Dimensions...)
	p.contentW.AssertDims(n)
	p.tvW.AssertDims(n)
	for i, l := range StyleLayers {
		c := a.Features[l].Shape().Dimensions[0] / n
		p.styleTargets[i].AssertDims(n*c, c)
		p.styleW[i].AssertDims(n)
	}
}

// lossAndGradient is the reference's losses() plus its backward pass, for a batch of N images
// (N = 1 for one): the three loss terms at each image ([N] each) and d(total)/dx. The network runs
// once for the batch; the losses, cheap beside it, are taken image by image.
func (e *Engine) lossAndGradient(p lossInputs[*Node]) (content, style, tv, grad *Node) {
	n := batchOf(p.x)
	a := e.net.Extract(p.x, StyleLayers[len(StyleLayers)-1])
	assertLossShapes(p, a, n)
	grads := map[int][]*Node{} // per layer, each image's gradient
	addGrad := func(l, i int, g *Node) {
		if grads[l] == nil {
			grads[l] = make([]*Node, n)
		}
		if prev := grads[l][i]; prev != nil {
			g = Add(prev, g)
		}
		grads[l][i] = g
	}
	var cs, ss, ts, tgs []*Node
	for i := range n {
		w := func(v *Node) *Node { return Reshape(Slice(v, AxisElem(i))) }
		c, cg := ContentLoss(w(p.contentW), imageOf(a.Features[ContentLayer], n, i), imageOf(p.contentTarget, n, i))
		addGrad(ContentLayer, i, cg)
		var sum *Node
		for k, l := range StyleLayers {
			sl, sg := StyleLayerLoss(w(p.styleW[k]), imageOf(a.Features[l], n, i), imageOf(p.styleTargets[k], n, i))
			if sum == nil {
				sum = sl
			} else {
				sum = Add(sum, sl)
			}
			addGrad(l, i, sg)
		}
		t, tg := TVLoss(w(p.tvW), imageOf(p.x, n, i))
		cs, ss, ts, tgs = append(cs, c), append(ss, sum), append(ts, t), append(tgs, tg)
	}
	featureGrads := map[int]*Node{}
	for l, g := range grads {
		featureGrads[l] = stackImages(g)
	}
	grad = Add(e.net.Backward(a, featureGrads), stackImages(tgs))
	return Stack(cs, 0), Stack(ss, 0), Stack(ts, 0), grad
}

// adamStep is one iteration of the reference's loop as a graph: clamp x to [lo, hi], compute the
// losses and gradient there, and take one torch.optim.Adam step.
// Outputs: the new x, m, v and the content, style and TV losses at the clamped x.
func (e *Engine) adamStep(p adamInputs[*Node]) []*Node {
	dims := p.x.Shape().Dimensions
	p.m.AssertDims(dims...)
	p.v.AssertDims(dims...)
	for _, s := range []*Node{p.lo, p.hi, p.stepSize, p.invSqrtBC2, p.beta1, p.beta2} {
		s.AssertScalar()
	}
	p.x = Clip(p.x, p.lo, p.hi)
	c, s, t, g := e.lossAndGradient(p.lossInputs)
	m := Add(Mul(p.m, p.beta1), Mul(g, OneMinus(p.beta1)))
	v := Add(Mul(p.v, p.beta2), Mul(Square(g), OneMinus(p.beta2)))
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
	outs, err := e.run(e.features, imageTensor(im))
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
	outs, err := e.run(e.targets, imageTensor(im))
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
	outs, err := e.run(e.lossGrad, args(&in)...)
	if err != nil {
		return Losses{}, nil, fmt.Errorf("engine: loss: %w", err)
	}
	l := lossesOf(outs[0], outs[1], outs[2])[0]
	grad := &Image{H: x.H, W: x.W, Data: tensors.MustCopyFlatData[float32](outs[3])}
	for _, t := range outs {
		t.FinalizeAll()
	}
	return l, grad, nil
}

// lossesOf reads each image's losses from the [N] loss vectors a graph returned.
func lossesOf(c, s, t *tensors.Tensor) []Losses {
	cv, sv, tv := tensors.MustCopyFlatData[float32](c), tensors.MustCopyFlatData[float32](s), tensors.MustCopyFlatData[float32](t)
	out := make([]Losses, len(cv))
	for i := range out {
		out[i] = Losses{Content: float64(cv[i]), Style: float64(sv[i]), TV: float64(tv[i])}
		out[i].Total = out[i].Content + out[i].Style + out[i].TV
	}
	return out
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

// run executes a compiled graph, taking its turn (see takeTurn).
func (e *Engine) run(x *Exec, in ...any) ([]*tensors.Tensor, error) {
	defer e.takeTurn()()
	return x.Exec(in...)
}

// precompile compiles a graph for the given inputs without running it, taking its turn.
func (e *Engine) precompile(x *Exec, in ...any) error {
	defer e.takeTurn()()
	return x.PreCompile(in...)
}

// takeTurn waits for this graph run's turn and returns the function that ends it. On the pure-Go
// backend graphs run one at a time: every run draws on one shared pool of workers, and runs that
// overlap (a stylization beside the warm-up, or two workers) can each wait for workers the other
// holds, forever. One run already keeps every core busy there, so nothing is lost; XLA runs
// overlap freely.
func (e *Engine) takeTurn() (done func()) {
	if e.onXLA() {
		return func() {}
	}
	e.serial.Lock()
	return e.serial.Unlock
}

// onXLA reports whether the engine computes on GoMLX's XLA backend.
func (e *Engine) onXLA() bool { return strings.HasPrefix(e.backend.Description(), "xla:") }
