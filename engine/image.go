package engine

import "fmt"

// Mean and Std are torchvision's ImageNet normalisation constants, per RGB channel.
var (
	Mean = [3]float32{0.485, 0.456, 0.406}
	Std  = [3]float32{0.229, 0.224, 0.225}
)

// Image is a normalised image in CHW layout: channel c, row y, column x at Data[(c*H+y)*W+x].
type Image struct {
	H, W int
	Data []float32
}

// NewImage returns a zero image of the given size.
func NewImage(h, w int) *Image { return &Image{H: h, W: w, Data: make([]float32, 3*h*w)} }

// FromRGB normalises packed 8-bit RGB pixels (row-major, 3 bytes a pixel) as the reference does:
// pixels/255, then (v - mean)/std per channel, in float32.
func FromRGB(w, h int, pix []uint8) (*Image, error) {
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("engine: image size %dx%d: must be positive", w, h)
	}
	if len(pix) != 3*w*h {
		return nil, fmt.Errorf("engine: %d bytes of pixels for a %dx%d RGB image, want %d", len(pix), w, h, 3*w*h)
	}
	im := NewImage(h, w)
	plane := h * w
	for i := 0; i < plane; i++ {
		for c := 0; c < 3; c++ {
			v := float32(pix[3*i+c]) / 255
			im.Data[c*plane+i] = (v - Mean[c]) / Std[c]
		}
	}
	return im, nil
}

// RGB converts back to packed 8-bit RGB the way the reference writes its PNG: v*std + mean,
// clamped to [0, 1], then scaled to 0-255 and rounded half up.
func (im *Image) RGB() []uint8 {
	plane := im.H * im.W
	pix := make([]uint8, 3*plane)
	for i := 0; i < plane; i++ {
		for c := 0; c < 3; c++ {
			v := im.Data[c*plane+i]*Std[c] + Mean[c]
			v = min(max(v, 0), 1)
			pix[3*i+c] = uint8(v*255 + 0.5)
		}
	}
	return pix
}

// Clone returns a deep copy.
func (im *Image) Clone() *Image {
	return &Image{H: im.H, W: im.W, Data: append([]float32(nil), im.Data...)}
}
