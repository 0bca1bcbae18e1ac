package engine

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestNativeConvolutionsMatchIm2col: the backend's convolution op and im2col give the same
// convolution and the same input gradient, for the stride-2 first layer and a padded 3x3 fire
// expansion, on a batch of two images of odd sizes (where stride 2 leaves a last row and column
// that no window reaches).
func TestNativeConvolutionsMatchIm2col(t *testing.T) {
	net := newTestEngine(t).net
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name        string
		cv          conv
		stride, pad int
		h, w        int
	}{
		{"conv1", net.conv1, 2, 0, 38, 51},
		{"fire 3 expand3x3", net.fires[3].expand3, 1, 1, 13, 10},
	} {
		const n = 2
		ho, wo := outSize(tc.h, tc.cv.k, tc.stride, tc.pad), outSize(tc.w, tc.cv.k, tc.stride, tc.pad)
		x := randomCHW(rng, n*tc.cv.cin, tc.h, tc.w)
		gy := randomCHW(rng, n*tc.cv.cout, ho, wo)
		exec := MustNewExec(goBackend(t), func(x, gy *Node) []*Node {
			inDims := x.Shape().Dimensions
			return []*Node{tc.cv.apply(x, tc.stride, tc.pad), tc.cv.applyNative(x, tc.stride, tc.pad),
				tc.cv.backward(gy, inDims, tc.stride, tc.pad), tc.cv.backwardNative(gy, inDims, tc.stride, tc.pad)}
		})
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, n*tc.cv.cin, tc.h, tc.w),
			tensors.FromFlatDataAndDimensions(gy, n*tc.cv.cout, ho, wo))
		if err != nil {
			t.Fatal(err)
		}
		for i, what := range []string{"convolution", "input gradient"} {
			im2col, native := out[2*i], out[2*i+1]
			if !im2col.Shape().Equal(native.Shape()) {
				t.Fatalf("%s: %s shaped %s natively, %s by im2col", tc.name, what, native.Shape(), im2col.Shape())
			}
			if d := relativeDifference(tensors.MustCopyFlatData[float32](im2col), tensors.MustCopyFlatData[float32](native)); d > 1e-5 {
				t.Errorf("%s: %s differs by %.2g (relative, largest element) between native and im2col", tc.name, what, d)
			}
		}
	}
}

// relativeDifference is the largest |a-b| over the largest |a|.
func relativeDifference(a, b []float32) float64 {
	return largestDifference(a, b) / largestDifference(a, make([]float32, len(a)))
}

func TestParseConvolutions(t *testing.T) {
	for _, s := range []string{"im2col", "native"} {
		if c, err := ParseConvolutions(s); err != nil || string(c) != s {
			t.Errorf("ParseConvolutions(%q) = %q, %v", s, c, err)
		}
	}
	if _, err := ParseConvolutions("winograd"); err == nil {
		t.Error("ParseConvolutions accepted winograd")
	}
}
