package engine

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive

	"github.com/styleproxy/styleproxy/weights"
)

// Version identifies the engine's numerics; it belongs in every cache key of a stylized result,
// and changes whenever a change here changes the pixels produced.
const Version = "nst-5"

// Engine runs style transfer on one GoMLX backend. It is safe for concurrent use; it compiles
// one graph per image size and keeps it for later calls (see Warm and Compilations).
type Engine struct {
	backend backends.Backend
	net     *Network

	once                    sync.Once
	features, targets, step *Exec
	lossGrad, block         *Exec
	initErr                 error
	compiles                atomic.Int64 // graphs built, see Compilations
	blockSize               int          // Adam steps a graph call, if set (tests); see blockSteps
	noBlocks                atomic.Bool  // the block graph failed here; see giveUpBlocks
	oneGraphBatches         bool         // batches as one graph on any backend (tests); see batchesInOneGraph
	serial                  sync.Mutex   // held while a graph runs, where runs must not overlap; see run
}

// An Option adjusts an engine made by New or Open (see WithConvolutions).
type Option func(*Engine)

// New returns an engine computing with the network's weights on the given backend.
func New(backend backends.Backend, ck *weights.Checkpoint, opts ...Option) (*Engine, error) {
	net, err := NewNetwork(ck)
	if err != nil {
		return nil, err
	}
	e := &Engine{backend: backend, net: net}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Backend is the name of the GoMLX backend the engine computes on.
func (e *Engine) Backend() string { return BackendName(e.backend) }

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

// FeatureMap is one module's output, [C, H, W] row-major.
type FeatureMap struct {
	Shape []int
	Data  []float32
}

// Options are the optimisation's settings.
type Options struct {
	Schedule Schedule
	// Iters is the number of Adam steps.
	Iters int
	// The reference loop's settings; Fast sets its own and wants these zero.
	LR         float64 // learning rate until DecayAt
	DecayAt    int     // step at which Adam restarts with DecayLR; -1 = never
	DecayLR    float64
	ClampUntil int    // x is clamped to [-1.5, 1.5] before each step t < ClampUntil
	Init       string // "content" (start from the content image) or "noise" (uniform [0, 1) from Seed)
	Seed       uint64
}

// DefaultSchedule is the schedule a caller gets unless it asks for another.
const DefaultSchedule = Fast

// DefaultIters is the default number of steps: what the fast schedule needs to reach the loss
// the reference reaches in its 200 iterations on every pair of the shared pictures, with some
// room to spare (bench/quality.sh PAIRS=all).
const DefaultIters = 80

// ReferenceIters is the reference's own number of iterations.
const ReferenceIters = 200

// DefaultOptions are the default schedule with its default number of steps.
func DefaultOptions() Options { return OptionsFor(DefaultSchedule, DefaultIters) }

// OptionsFor is schedule s for iters steps. Under Reference it scales the reference's
// loop to iters iterations as its bench() does: the learning rate decays at 90% of the run and
// clamping stops for the last 10 iterations.
func OptionsFor(s Schedule, iters int) Options {
	o := Options{Schedule: s, Iters: iters, Init: "content"}
	if s == Reference {
		o.LR, o.DecayAt, o.DecayLR, o.ClampUntil = 3.0, iters*9/10, 0.1, iters-10
	}
	return o
}

// Validate reports options no loop can run with.
func (o Options) Validate() error {
	switch {
	case o.Schedule != Reference && o.Schedule != Fast:
		return fmt.Errorf("schedule must be %s or %s, got %q", Fast, Reference, o.Schedule)
	case o.Iters < 0:
		return fmt.Errorf("iterations must be >= 0, got %d", o.Iters)
	case o.Init != "content" && o.Init != "noise":
		return fmt.Errorf("init must be content or noise, got %q", o.Init)
	case o.Schedule == Fast:
		if o.LR != 0 || o.DecayAt != 0 || o.DecayLR != 0 || o.ClampUntil != 0 {
			return fmt.Errorf("the learning rate, decay and clamping are the reference schedule's settings; the fast schedule sets its own")
		}
		return nil
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("learning rate must be a positive number, got %v", o.LR)
	case o.DecayAt >= 0 && (!(o.DecayLR > 0) || math.IsInf(o.DecayLR, 0)):
		return fmt.Errorf("decay learning rate must be a positive number, got %v", o.DecayLR)
	case o.DecayAt < -1:
		return fmt.Errorf("decay-at must be a step number or -1 (never), got %d", o.DecayAt)
	}
	return nil
}

// Progress is told after each step: step k (1-based) of n, with the losses before that step.
type Progress func(k, n int, l Losses)

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
