package engine

import (
	"math"
	"testing"
)

func TestResized(t *testing.T) {
	// A constant image stays constant at any size.
	flat := NewImage(7, 9)
	for i := range flat.Data {
		flat.Data[i] = 0.25
	}
	for _, size := range [][2]int{{3, 4}, {14, 18}, {7, 9}, {5, 13}} {
		r := flat.Resized(size[0], size[1])
		if r.H != size[0] || r.W != size[1] || len(r.Data) != 3*size[0]*size[1] {
			t.Fatalf("Resized(%d, %d) is %dx%d with %d values", size[0], size[1], r.H, r.W, len(r.Data))
		}
		for _, v := range r.Data {
			if math.Abs(float64(v)-0.25) > 1e-6 {
				t.Fatalf("Resized(%d, %d) of a flat image has %v", size[0], size[1], v)
			}
		}
	}
	// Halving weighs the source pixels with a triangle twice as wide as when enlarging (PIL's and
	// torchvision's antialiased bilinear): per axis 1/7, 3/7, 3/7 (and the edge's share folded in).
	// Averaging the two rows gives 1, 1, 6, 6; then (3·1 + 3·1 + 1·6)/7 and (1·1 + 3·6 + 3·6)/7. The
	// channels stay apart.
	im := NewImage(2, 4)
	copy(im.Data, []float32{0, 2, 4, 8, 2, 0, 8, 4 /* G */, 1, 1, 1, 1, 1, 1, 1, 1 /* B */, 0, 0, 0, 0, 0, 0, 0, 0})
	h := im.Resized(1, 2)
	if want := []float32{12.0 / 7, 37.0 / 7, 1, 1, 0, 0}; !closeAll(h.Data, want, 1e-6) {
		t.Errorf("halved = %v, want %v", h.Data, want)
	}
	// Doubling interpolates between neighbours (half-pixel centres, edges held), as
	// torch.nn.functional.interpolate(mode="bilinear", align_corners=False) does.
	row := NewImage(1, 2)
	copy(row.Data, []float32{0, 4, 0, 0, 0, 0})
	d := row.Resized(1, 4)
	if want := []float32{0, 1, 3, 4}; !closeAll(d.Data[:4], want, 1e-6) {
		t.Errorf("doubled = %v, want %v", d.Data[:4], want)
	}
}

func closeAll(got, want []float32, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol {
			return false
		}
	}
	return true
}
