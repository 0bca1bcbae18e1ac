// Package imagingtest makes images for tests of the packages that handle them: one noisy image
// in every input format imaging accepts, carrying metadata that no output may keep.
package imagingtest

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/styleproxy/styleproxy/imaging"
)

// Samples encodes a noisy w x h image in every input format Decode accepts, with EXIF (Artist,
// GPS) and XMP fields the outputs must not keep.
func Samples(t testing.TB, w, h int) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(w * h)))
	pix := make([]uint8, 3*w*h)
	rng.Read(pix)
	im, err := imaging.FromRGB(&imaging.RGB{Width: w, Height: h, Pix: pix})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	plain, err := im.Encode(imaging.JPEG, 90)
	if err != nil {
		t.Fatal(err)
	}
	// The JPEG with an EXIF and an XMP segment after its SOI marker is the source of the rest.
	app1 := func(payload []byte) []byte {
		return append([]byte{0xff, 0xe1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}, payload...)
	}
	tagged := append([]byte{0xff, 0xd8}, app1(exifWithArtist("Secret Artist"))...)
	tagged = append(tagged, app1([]byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><exif:GPSLatitude>48,31N</exif:GPSLatitude></x:xmpmeta>"))...)
	tagged = append(tagged, plain[2:]...)
	ref, err := vips.LoadImageFromBuffer(tagged, vips.NewImportParams())
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	pp := vips.NewPngExportParams()
	pp.StripMetadata = false
	wp := vips.NewWebpExportParams()
	wp.StripMetadata = false
	ap := vips.NewAvifExportParams()
	ap.Effort = 0
	encoders := map[string]func() ([]byte, *vips.ImageMetadata, error){
		"jpeg": func() ([]byte, *vips.ImageMetadata, error) { return tagged, nil, nil },
		"png":  func() ([]byte, *vips.ImageMetadata, error) { return ref.ExportPng(pp) },
		"webp": func() ([]byte, *vips.ImageMetadata, error) { return ref.ExportWebp(wp) },
		"gif":  func() ([]byte, *vips.ImageMetadata, error) { return ref.ExportGIF(vips.NewGifExportParams()) },
		"tiff": func() ([]byte, *vips.ImageMetadata, error) { return ref.ExportTiff(vips.NewTiffExportParams()) },
		"avif": func() ([]byte, *vips.ImageMetadata, error) { return ref.ExportAvif(ap) },
	}
	out := map[string][]byte{}
	for name, enc := range encoders {
		if name == "avif" && !imaging.CanEncode(imaging.AVIF) {
			continue
		}
		b, _, err := enc()
		if err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

// exifWithArtist is an EXIF block (as libvips stores it, "Exif\0\0" and a little-endian TIFF
// structure) whose IFD0 holds one Artist tag.
func exifWithArtist(artist string) []byte {
	var b bytes.Buffer
	b.WriteString("Exif\x00\x00II*\x00")
	le := binary.LittleEndian
	binary.Write(&b, le, uint32(8)) // IFD0 offset
	binary.Write(&b, le, uint16(1)) // one entry
	binary.Write(&b, le, uint16(0x013b))
	binary.Write(&b, le, uint16(2)) // ASCII
	binary.Write(&b, le, uint32(len(artist)+1))
	binary.Write(&b, le, uint32(8+2+12+4)) // value offset, after the IFD
	binary.Write(&b, le, uint32(0))        // no next IFD
	b.WriteString(artist + "\x00")
	return b.Bytes()
}

// Pattern encodes, in format f, a smooth w x h picture whose pixels depend on seed, so that two
// seeds give two different images.
func Pattern(t testing.TB, w, h, seed int, f imaging.Format) []byte {
	t.Helper()
	pix := make([]uint8, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * (y*w + x)
			pix[i] = uint8(x*255/w + seed*37)
			pix[i+1] = uint8(y*255/h + seed*91)
			pix[i+2] = uint8((x*y)/(w+1) + seed*13)
		}
	}
	return Encode(t, w, h, pix, f, 95)
}

// Encode encodes packed 8-bit RGB pixels (see imaging.RGB) as a w x h image in format f at
// quality q.
func Encode(t testing.TB, w, h int, pix []uint8, f imaging.Format, q int) []byte {
	t.Helper()
	im, err := imaging.FromRGB(&imaging.RGB{Width: w, Height: h, Pix: pix})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	b, err := im.Encode(f, q)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
