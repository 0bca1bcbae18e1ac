package engine

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func goBackend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomCHW(rng *rand.Rand, c, h, w int) []float32 {
	v := make([]float32, c*h*w)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func randomCHW64(rng *rand.Rand, c, h, w int) []float64 {
	v := make([]float64, c*h*w)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// numericGrad is the central-difference derivative of f (computed in float64) at x.
func numericGrad(f func([]float64) float64, x []float32) []float64 {
	xs := make([]float64, len(x))
	for i, v := range x {
		xs[i] = float64(v)
	}
	g := make([]float64, len(x))
	const h = 1e-4
	for i := range xs {
		old := xs[i]
		xs[i] = old + h
		up := f(xs)
		xs[i] = old - h
		down := f(xs)
		xs[i] = old
		g[i] = (up - down) / (2 * h)
	}
	return g
}

// gram64 is the reference's gram() in float64 loops, for [c, hw] data.
func gram64(f []float64, c, hw int) []float64 {
	g := make([]float64, c*c)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			var s float64
			for k := 0; k < hw; k++ {
				s += f[i*hw+k] * f[j*hw+k]
			}
			g[i*c+j] = s / float64(c*hw)
		}
	}
	return g
}

func assertVecClose(t *testing.T, what string, got []float32, want []float64, rel float64) {
	t.Helper()
	var scale float64
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > rel*scale || math.IsNaN(float64(got[i])) {
			t.Errorf("%s[%d] = %.6g, want %.6g", what, i, got[i], want[i])
			return
		}
	}
}

// TestLossesAgainstDirectComputation checks each loss against plain float64 loops and its
// gradient against central differences of those loops.
func TestLossesAgainstDirectComputation(t *testing.T) {
	b := goBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const c, h, w = 3, 5, 7
	x := randomCHW(rng, c, h, w)
	target := randomCHW(rng, c, h, w)
	// Gram targets are symmetric, as every Gram matrix is; the gradient formula relies on it.
	other := randomCHW(rng, c, h, w)
	other64 := make([]float64, len(other))
	for i, v := range other {
		other64[i] = float64(v)
	}
	gramTarget := make([]float32, c*c)
	for i, v := range gram64(other64, c, h*w) {
		gramTarget[i] = float32(v)
	}
	const weight = 0.7
	tests := []struct {
		name  string
		graph func(wt, x, target *Node) (loss, grad *Node)
		ref   func(x []float64) float64
		tgt   *tensors.Tensor
	}{
		{
			name:  "content",
			graph: ContentLoss,
			tgt:   tensors.FromFlatDataAndDimensions(target, c, h, w),
			ref: func(x []float64) float64 {
				var s float64
				for i := range x {
					d := x[i] - float64(target[i])
					s += d * d
				}
				return weight * s
			},
		},
		{
			name:  "style layer",
			graph: StyleLayerLoss,
			tgt:   tensors.FromFlatDataAndDimensions(gramTarget, c, c),
			ref: func(x []float64) float64 {
				g := gram64(x, c, h*w)
				var s float64
				for i := range g {
					d := g[i] - float64(gramTarget[i])
					s += d * d
				}
				return weight * s
			},
		},
		{
			name: "total variation",
			graph: func(wt, x, _ *Node) (*Node, *Node) {
				return TVLoss(wt, x)
			},
			tgt: tensors.FromFlatDataAndDimensions(target, c, h, w),
			ref: func(x []float64) float64 {
				var s float64
				for ch := 0; ch < c; ch++ {
					for y := 0; y < h; y++ {
						for xx := 0; xx < w; xx++ {
							i := (ch*h+y)*w + xx
							if y+1 < h {
								d := x[i+w] - x[i]
								s += d * d
							}
							if xx+1 < w {
								d := x[i+1] - x[i]
								s += d * d
							}
						}
					}
				}
				return weight * s
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exec := MustNewExec(b, func(wt, x, target *Node) (*Node, *Node) { return tc.graph(wt, x, target) })
			outs, err := exec.Exec(float32(weight), tensors.FromFlatDataAndDimensions(x, c, h, w), tc.tgt)
			if err != nil {
				t.Fatal(err)
			}
			xs := make([]float64, len(x))
			for i, v := range x {
				xs[i] = float64(v)
			}
			wantLoss := tc.ref(xs)
			if got := float64(tensors.ToScalar[float32](outs[0])); math.Abs(got-wantLoss) > 1e-5*math.Abs(wantLoss) {
				t.Errorf("loss = %.7g, want %.7g", got, wantLoss)
			}
			assertVecClose(t, "gradient", tensors.MustCopyFlatData[float32](outs[1]), numericGrad(tc.ref, x), 1e-3)
		})
	}
}

func TestGramMatrixIsNormalisedByHWC(t *testing.T) {
	b := goBackend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dims := range [][3]int{{1, 1, 1}, {4, 3, 5}, {16, 9, 2}} {
		c, h, w := dims[0], dims[1], dims[2]
		f := randomCHW(rng, c, h, w)
		got, err := MustNewExec(b, GramMatrix).Exec1(tensors.FromFlatDataAndDimensions(f, c, h, w))
		if err != nil {
			t.Fatal(err)
		}
		f64 := make([]float64, len(f))
		for i, v := range f {
			f64[i] = float64(v)
		}
		assertVecClose(t, "gram", tensors.MustCopyFlatData[float32](got), gram64(f64, c, h*w), 1e-5)
	}
}

// TestNetworkBackwardMatchesNumericDerivative checks the explicit backward pass of every module
// kind (strided conv, ReLU, ceil-mode max-pool, fire) against a numeric derivative of the forward
// pass, on a small image and a random linear function of each probed layer.
func TestNetworkBackwardMatchesNumericDerivative(t *testing.T) {
	e := newTestEngine(t)
	rng := rand.New(rand.NewPCG(5, 6))
	const h, w = 29, 31 // odd sizes exercise the ceil-mode pooling edges
	x := randomCHW64(rng, 3, h, w)
	for _, layer := range []int{0, 1, 2, 3, 5, 7} {
		// loss = Σ probe ⊙ features[layer], all in float64 so that central differences are exact
		// to many digits.
		var probe []float64
		lossGraph := func(x, p *Node) *Node {
			a := e.net.Extract(x, layer)
			return ReduceAllSum(Mul(a.Features[layer], p))
		}
		gradGraph := func(x, p *Node) *Node {
			a := e.net.Extract(x, layer)
			return e.net.Backward(a, map[int]*Node{layer: p})
		}
		shapeOf := MustNewExec(e.backend, func(x *Node) *Node { return e.net.Extract(x, layer).Features[layer] })
		f, err := shapeOf.Exec1(tensors.FromFlatDataAndDimensions(x, 3, h, w))
		if err != nil {
			t.Fatal(err)
		}
		dims := f.Shape().Dimensions
		probe = randomCHW64(rng, dims[0], dims[1], dims[2])
		pt := tensors.FromFlatDataAndDimensions(probe, dims...)
		lossExec, gradExec := MustNewExec(e.backend, lossGraph), MustNewExec(e.backend, gradGraph)
		g, err := gradExec.Exec1(tensors.FromFlatDataAndDimensions(x, 3, h, w), pt)
		if err != nil {
			t.Fatal(err)
		}
		grad := tensors.MustCopyFlatData[float64](g)
		// Spot-check a few pixels with central differences (a step small enough that hardly any
		// ReLU or max-pool decision flips: conv1's weights are large).
		for _, i := range []int{0, 5 * w, len(x)/2 + 7, len(x) - 1} {
			eval := func(delta float64) float64 {
				xp := append([]float64(nil), x...)
				xp[i] += delta
				out, err := lossExec.Exec1(tensors.FromFlatDataAndDimensions(xp, 3, h, w), pt)
				if err != nil {
					t.Fatal(err)
				}
				return tensors.ToScalar[float64](out)
			}
			const step = 1e-6
			num := (eval(step) - eval(-step)) / (2 * step)
			if d := math.Abs(num - grad[i]); d > 1e-4*max(math.Abs(num), 1) {
				t.Errorf("layer %d, input %d: gradient %.5g, numeric %.5g", layer, i, grad[i], num)
			}
		}
	}
}
