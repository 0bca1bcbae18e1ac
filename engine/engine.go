package engine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/styleproxy/styleproxy/weights"
)

// Version identifies the engine's numerics; it belongs in every cache key of a stylized result,
// and changes whenever a change here changes the pixels produced.
const Version = "nst-1"

// Engine runs style transfer on one GoMLX backend. It is safe for concurrent use; GoMLX compiles
// one graph per image size and keeps it for later calls.
type Engine struct {
	backend backends.Backend
	net     *Network

	once                    sync.Once
	features, targets, step *Exec
	lossGrad                *Exec
	initErr                 error
}

// New returns an engine computing with the network's weights on the given backend.
func New(backend backends.Backend, ck *weights.Checkpoint) (*Engine, error) {
	net, err := NewNetwork(ck)
	if err != nil {
		return nil, err
	}
	return &Engine{backend: backend, net: net}, nil
}

// Backend is the name of the GoMLX backend the engine computes on.
func (e *Engine) Backend() string { return e.backend.Name() }

// Gram is one style layer's Gram matrix target: C×C, row-major.
type Gram struct {
	C    int
	Data []float32
}

// StyleTargets are the Gram matrices of a style image at the style layers: computed once when a
// style is registered, then reused by every request.
type StyleTargets [len(StyleLayers)]Gram

// Losses are the loss terms at one point of the optimisation (already weighted).
type Losses struct {
	Content float64 `json:"content"`
	Style   float64 `json:"style"`
	TV      float64 `json:"tv"`
	Total   float64 `json:"total"`
}

func (e *Engine) init() error {
	e.once.Do(func() {
		e.initErr = tryCatch(func() {
			e.features = MustNewExec(e.backend, func(x *Node) []*Node {
				a := e.net.Extract(x, NumLayers-1)
				return a.Features[:]
			})
			e.targets = MustNewExec(e.backend, func(x *Node) []*Node {
				a := e.net.Extract(x, StyleLayers[len(StyleLayers)-1])
				out := []*Node{a.Features[ContentLayer]}
				for _, l := range StyleLayers {
					out = append(out, GramMatrix(a.Features[l]))
				}
				return out
			})
			e.lossGrad = MustNewExec(e.backend, func(in []*Node) []*Node {
				p := unpackLossInputs(in)
				c, s, t, grad := e.lossAndGradient(p)
				return []*Node{c, s, t, grad}
			})
			e.step = MustNewExec(e.backend, e.adamStep)
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

func imageTensor(im *Image) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float32(nil), im.Data...), 3, im.H, im.W)
}

// FeatureMap is one module's output, [C, H, W] row-major.
type FeatureMap struct {
	Shape []int
	Data  []float32
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

// MinSide is the smallest image side the network accepts: three stride-2 stages must leave at
// least one pixel at the deepest style layer.
const MinSide = 27

func checkSize(im *Image) error {
	if im == nil || im.H < MinSide || im.W < MinSide {
		return fmt.Errorf("engine: image must be at least %dx%d pixels", MinSide, MinSide)
	}
	if len(im.Data) != 3*im.H*im.W {
		return fmt.Errorf("engine: image data has %d values, want %d", len(im.Data), 3*im.H*im.W)
	}
	return nil
}

// lossInputs are the graph inputs shared by the loss-and-gradient and the Adam step graphs.
type lossInputs struct {
	x, contentTarget *Node
	styleTargets     [len(StyleLayers)]*Node
	contentW, tvW    *Node
	styleW           [len(StyleLayers)]*Node
	rest             []*Node
}

const numLossInputs = 2 + 2*len(StyleLayers) + 2

func unpackLossInputs(in []*Node) lossInputs {
	p := lossInputs{x: in[0], contentTarget: in[1]}
	k := 2
	for i := range StyleLayers {
		p.styleTargets[i] = in[k]
		k++
	}
	p.contentW, p.tvW = in[k], in[k+1]
	k += 2
	for i := range StyleLayers {
		p.styleW[i] = in[k]
		k++
	}
	p.rest = in[k:]
	return p
}

func lossArgs(x *tensors.Tensor, content *tensors.Tensor, style []*tensors.Tensor, w Weights) []any {
	args := []any{x, content}
	for _, t := range style {
		args = append(args, t)
	}
	args = append(args, float32(w.Content), float32(w.TV))
	for _, sw := range w.Style {
		args = append(args, float32(sw))
	}
	return args
}

// lossAndGradient is the reference's losses() plus its backward pass: the three loss terms at x
// and d(total)/dx.
func (e *Engine) lossAndGradient(p lossInputs) (content, style, tv, grad *Node) {
	a := e.net.Extract(p.x, StyleLayers[len(StyleLayers)-1])
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
// losses and gradient there, and take one Adam step (torch.optim.Adam's update, with the bias
// corrections folded into stepSize = lr/(1-β1ᵗ) and invSqrtBC2 = 1/sqrt(1-β2ᵗ) by the caller).
// Inputs: the loss inputs, then m, v, lo, hi, stepSize, invSqrtBC2.
// Outputs: the new x, m, v and the content, style and TV losses at the clamped x.
func (e *Engine) adamStep(in []*Node) []*Node {
	p := unpackLossInputs(in)
	m, v, lo, hi, stepSize, invSqrtBC2 := p.rest[0], p.rest[1], p.rest[2], p.rest[3], p.rest[4], p.rest[5]
	p.x = Clip(p.x, lo, hi)
	c, s, t, g := e.lossAndGradient(p)
	m = Add(MulScalar(m, adamBeta1), MulScalar(g, 1-adamBeta1))
	v = Add(MulScalar(v, adamBeta2), MulScalar(Square(g), 1-adamBeta2))
	denom := AddScalar(Mul(Sqrt(v), invSqrtBC2), adamEps)
	x := Sub(p.x, Mul(stepSize, Div(m, denom)))
	return []*Node{x, m, v, c, s, t}
}

// torch.optim.Adam's defaults, as the reference uses them.
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// LossAndGradient evaluates the losses and d(total)/dx at x, for content target features and
// style targets: the quantities the reference's loss_at_x and grad_at_x golden values hold.
func (e *Engine) LossAndGradient(x *Image, content FeatureMap, style StyleTargets, w Weights) (Losses, *Image, error) {
	if err := e.init(); err != nil {
		return Losses{}, nil, err
	}
	if err := checkSize(x); err != nil {
		return Losses{}, nil, err
	}
	outs, err := e.lossGrad.Exec(lossArgs(imageTensor(x), featureTensor(content), style.tensors(), w)...)
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

// Options are the optimisation loop's settings (the reference's transfer()).
type Options struct {
	Iters      int     // Adam steps
	LR         float64 // learning rate until DecayAt
	DecayAt    int     // step at which Adam restarts with DecayLR; -1 = never
	DecayLR    float64
	ClampUntil int    // x is clamped to [-1.5, 1.5] before each step t < ClampUntil
	Init       string // "content" (start from the content image) or "noise" (uniform [0, 1) from Seed)
	Seed       uint64
}

// DefaultIters is the reference's default number of iterations.
const DefaultIters = 200

// DefaultOptions are the reference's loop defaults: 200 iterations, decay at 180, clamp until 190.
func DefaultOptions() Options { return OptionsFor(DefaultIters) }

// OptionsFor scales the reference's schedule to iters iterations, as its bench() does: the
// learning rate decays at 90% of the run and clamping stops for the last 10 iterations.
func OptionsFor(iters int) Options {
	return Options{Iters: iters, LR: 3.0, DecayAt: iters * 9 / 10, DecayLR: 0.1, ClampUntil: iters - 10, Init: "content"}
}

// Validate reports options no loop can run with.
func (o Options) Validate() error {
	switch {
	case o.Iters < 0:
		return fmt.Errorf("iterations must be >= 0, got %d", o.Iters)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("learning rate must be a positive number, got %v", o.LR)
	case o.DecayAt >= 0 && (!(o.DecayLR > 0) || math.IsInf(o.DecayLR, 0)):
		return fmt.Errorf("decay learning rate must be a positive number, got %v", o.DecayLR)
	case o.DecayAt < -1:
		return fmt.Errorf("decay-at must be a step number or -1 (never), got %d", o.DecayAt)
	case o.Init != "content" && o.Init != "noise":
		return fmt.Errorf("init must be content or noise, got %q", o.Init)
	}
	return nil
}

// Progress is told after each step: step k (1-based) of n, with the losses before that step.
type Progress func(k, n int, l Losses)

// ClampRange is the interval the reference keeps the normalised image in while it clamps.
const ClampRange = 1.5

// Transfer is the reference's transfer(): Adam on the pixels of an image that starts as the
// content image (or noise), minimising content + style + TV loss against content's features and
// the style targets. It returns the final image and the losses before each step.
func (e *Engine) Transfer(ctx context.Context, content *Image, style StyleTargets, w Weights, opt Options, progress Progress) (*Image, []Losses, error) {
	if err := opt.Validate(); err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	ct, err := e.ContentTarget(content)
	if err != nil {
		return nil, nil, err
	}
	x := content.Clone()
	if opt.Init == "noise" {
		rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
		for i := range x.Data {
			x.Data[i] = rng.Float32()
		}
	}
	xt := imageTensor(x)
	// Adam's moments start at zero (FromShape allocates zeroed tensors).
	m, v := tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
	contentT, styleT := featureTensor(ct), style.tensors()
	history := make([]Losses, 0, opt.Iters)
	lr, adamT := opt.LR, 0
	const unclamped = math.MaxFloat32
	for t := 0; t < opt.Iters; t++ {
		if err := ctx.Err(); err != nil {
			return nil, history, err
		}
		lo, hi := float32(-unclamped), float32(unclamped)
		if t < opt.ClampUntil {
			lo, hi = -ClampRange, ClampRange
		}
		if t == opt.DecayAt {
			// The reference builds a fresh optimizer here: new learning rate, moments and step count.
			lr, adamT = opt.DecayLR, 0
			m, v = tensors.FromShape(xt.Shape()), tensors.FromShape(xt.Shape())
		}
		adamT++
		stepSize := float32(lr / (1 - math.Pow(adamBeta1, float64(adamT))))
		invSqrtBC2 := float32(1 / math.Sqrt(1-math.Pow(adamBeta2, float64(adamT))))
		args := append(lossArgs(xt, contentT, styleT, w), m, v, lo, hi, stepSize, invSqrtBC2)
		outs, err := e.step.Exec(args...)
		if err != nil {
			return nil, history, fmt.Errorf("engine: step %d: %w", t, err)
		}
		xt, m, v = outs[0], outs[1], outs[2]
		l := lossesOf(outs[3], outs[4], outs[5])
		history = append(history, l)
		if progress != nil {
			progress(t+1, opt.Iters, l)
		}
	}
	out := &Image{H: x.H, W: x.W, Data: tensors.MustCopyFlatData[float32](xt)}
	return out, history, nil
}

// Open locates and loads the weights (weightsPath, else STYLEPROXY_WEIGHTS, else the user cache;
// see weights.Resolve), opens the backend named by backendSpec (see NewBackend) and returns an
// engine on them, with the checkpoint it loaded.
func Open(weightsPath, backendSpec string) (*Engine, *weights.Checkpoint, error) {
	path, err := weights.Resolve(weightsPath)
	if err != nil {
		return nil, nil, err
	}
	ck, err := weights.Load(path)
	if err != nil {
		return nil, nil, err
	}
	b, err := NewBackend(backendSpec)
	if err != nil {
		return nil, nil, err
	}
	e, err := New(b, ck)
	if err != nil {
		return nil, nil, err
	}
	return e, ck, nil
}
