package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// maxPoolGradLoops is torch's max-pool 3x3/2 (ceil mode) backward written as loops: each window,
// cut short at the bottom and right edges, sends its gradient to the first element in row-major
// order that holds its maximum (torch keeps a candidate only when a later one is strictly larger).
func maxPoolGradLoops(x []float32, c, h, w int, gy []float32) []float32 {
	ho, wo := (h-3+1)/2+1, (w-3+1)/2+1
	gx := make([]float32, len(x))
	for ch := 0; ch < c; ch++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				best := -1
				for y := 2 * i; y < min(2*i+3, h); y++ {
					for xx := 2 * j; xx < min(2*j+3, w); xx++ {
						k := (ch*h+y)*w + xx
						if best < 0 || x[k] > x[best] {
							best = k
						}
					}
				}
				gx[best] += gy[(ch*ho+i)*wo+j]
			}
		}
	}
	return gx
}

// TestMaxPoolBackwardSendsTiesToTheFirstMaximum holds the max-pool's backward pass to torch's
// rule on inputs full of ties (flat areas, and the zeros a ReLU leaves), at odd sizes where ceil
// mode cuts the last windows short.
func TestMaxPoolBackwardSendsTiesToTheFirstMaximum(t *testing.T) {
	b := goBackend(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, dims := range [][3]int{{2, 7, 9}, {1, 5, 5}, {3, 8, 6}} {
		c, h, w := dims[0], dims[1], dims[2]
		x := make([]float32, c*h*w)
		for i := range x {
			x[i] = float32(rng.IntN(3)) // values 0, 1, 2: most windows hold ties
		}
		ho, wo := (h-3+1)/2+1, (w-3+1)/2+1
		gy := randomCHW(rng, c, ho, wo)
		exec := MustNewExec(b, func(x, gy *Node) *Node {
			_, st := maxPool3x3s2Ceil(x)
			return maxPoolBackward(st, gy)
		})
		out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(x, c, h, w), tensors.FromFlatDataAndDimensions(gy, c, ho, wo))
		if err != nil {
			t.Fatal(err)
		}
		got := tensors.MustCopyFlatData[float32](out)
		want := maxPoolGradLoops(x, c, h, w, gy)
		for i := range want {
			if d := got[i] - want[i]; d > 1e-6 || d < -1e-6 {
				t.Fatalf("%v: gradient at input %d = %v, want %v", dims, i, got[i], want[i])
			}
		}
	}
}

// TestReLUBackwardIsZeroAtZero: torch's ReLU has derivative 0 at exactly 0, where flat dark
// areas put many of its inputs, and 1 at every positive value, the smallest subnormal and the
// largest finite value included, in both precisions the engine runs in.
func TestReLUBackwardIsZeroAtZero(t *testing.T) {
	exec := MustNewExec(goBackend(t), func(x, g *Node) *Node { return reluBackward(MaxScalar(x, 0.0), g) })
	check := func(x, want, got any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ReLU backward of 5 at %v = %v, want %v", x, got, want)
		}
	}
	x32 := []float32{-1, 0, math.SmallestNonzeroFloat32, 1e-30, 2, math.MaxFloat32}
	out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(x32, 6), tensors.FromFlatDataAndDimensions([]float32{5, 5, 5, 5, 5, 5}, 6))
	if err != nil {
		t.Fatal(err)
	}
	check(x32, []float32{0, 0, 5, 5, 5, 5}, tensors.MustCopyFlatData[float32](out))
	x64 := []float64{-1, 0, math.SmallestNonzeroFloat64, 1e-300, 2, math.MaxFloat64}
	out, err = exec.Exec1(tensors.FromFlatDataAndDimensions(x64, 6), tensors.FromFlatDataAndDimensions([]float64{5, 5, 5, 5, 5, 5}, 6))
	if err != nil {
		t.Fatal(err)
	}
	check(x64, []float64{0, 0, 5, 5, 5, 5}, tensors.MustCopyFlatData[float64](out))
}
