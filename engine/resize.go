package engine

import "math"

// Resized returns the image resampled to h×w with a triangle (bilinear) filter whose support
// widens with the scale factor when shrinking, as PIL's and torchvision's antialiased bilinear
// resize do: enlarging interpolates between neighbours, shrinking averages every source pixel
// under an output pixel, so neither step adds blocks or aliasing.
func (im *Image) Resized(h, w int) *Image {
	if h == im.H && w == im.W {
		return im.Clone()
	}
	rows, cols := resampleWeights(im.H, h), resampleWeights(im.W, w)
	tmp := make([]float32, im.H*w) // one channel resampled along x
	out := NewImage(h, w)
	for c := 0; c < 3; c++ {
		src := im.Data[c*im.H*im.W : (c+1)*im.H*im.W]
		for y := 0; y < im.H; y++ {
			row := src[y*im.W : (y+1)*im.W]
			for x, t := range cols {
				tmp[y*w+x] = t.apply(row, 1)
			}
		}
		dst := out.Data[c*h*w : (c+1)*h*w]
		for y, t := range rows {
			for x := 0; x < w; x++ {
				dst[y*w+x] = t.apply(tmp[x:], w)
			}
		}
	}
	return out
}

// taps are the source pixels (first, first+1, ...) one output pixel mixes, with their weights.
type taps struct {
	first   int
	weights []float32
}

// apply mixes src[(first+i)*stride] with the weights.
func (t taps) apply(src []float32, stride int) float32 {
	var s float32
	for i, wt := range t.weights {
		s += wt * src[(t.first+i)*stride]
	}
	return s
}

// resampleWeights computes, for each of the n output pixels along an axis of m source pixels,
// the taps of a triangle filter centred on the output pixel's centre (half-pixel convention).
func resampleWeights(m, n int) []taps {
	scale := float64(m) / float64(n)
	support := max(scale, 1) // the filter's half-width in source pixels
	out := make([]taps, n)
	for i := range out {
		centre := (float64(i) + 0.5) * scale
		lo := max(int(math.Floor(centre-support)), 0)
		hi := min(int(math.Ceil(centre+support)), m)
		var ws []float32
		var total float64
		for j := lo; j < hi; j++ {
			wt := 1 - math.Abs((float64(j)+0.5-centre)/support)
			if wt < 0 {
				wt = 0
			}
			ws = append(ws, float32(wt))
			total += wt
		}
		for k := range ws {
			ws[k] = float32(float64(ws[k]) / total)
		}
		out[i] = taps{first: lo, weights: ws}
	}
	return out
}
